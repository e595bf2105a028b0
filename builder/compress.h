/* How payload segments are compressed: zstd (the default), xz or gzip, the
 * three a Linux kernel unpacks an initrd with (CONFIG_RD_ZSTD, RD_XZ,
 * RD_GZIP: all on in Flatcar's and Debian's kernels).
 *
 * A compressor is a stream: bytes in, compressed bytes written to a file
 * descriptor as they come, never a whole file held. zstd and xz compress on
 * every core (zstd's jobs, xz's independent blocks) and their output does
 * not depend on how many cores there are: equal inputs give equal bytes on
 * any machine. gzip runs on one core; it is there for kernels without zstd.
 *
 * What each writes, for the kernel's decompressors (lib/decompress_*.c):
 *   zstd  one frame with a content checksum, window of the level (8 MiB at
 *         most up to level 19)
 *   xz    LZMA2 only (no BCJ filter), CRC32 check: the kernel's xz decoder
 *         does not check CRC64; blocks of 8 MiB
 *   gzip  one member, no name and mtime 0 in its header */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "diag.h"

enum compress_method { COMPRESS_ZSTD, COMPRESS_XZ, COMPRESS_GZIP };

struct compression {
	enum compress_method method;
	int level;              /* 0: the method's default */
};
#define COMPRESSION_DEFAULT { COMPRESS_ZSTD, 0 }

/* "zstd", "xz", "gzip". */
const char *compress_name(enum compress_method m);
/* What a segment's file name ends with: ".cpio.zst", ".cpio.xz", ".cpio.gz". */
const char *compress_suffix(enum compress_method m);
/* The length of the segment suffix `name` ends with (any method's), else 0. */
size_t compress_suffix_len(const char *name);
/* 0, or -EINVAL for a name not above. */
int compress_parse(const char *name, enum compress_method *ret);
/* The levels a method takes, and its default. */
void compress_levels(enum compress_method m, int *ret_min, int *ret_max, int *ret_default);
/* The level `c` compresses at (its default resolved). */
int compress_level(const struct compression *c);
/* "zstd -3, 2 MiB jobs": all that shapes the bytes besides the input (for
 * cache keys and messages). */
char *compress_describe(const struct compression *c);

struct compressor;
/* A compressor writing to `fd`; `path` names it in messages. `size`: about
 * how many bytes will come (0: unknown), for how many threads to use; the
 * bytes written do not depend on it. */
int compressor_new(const struct compression *c, int fd, const char *path, uint64_t size, struct compressor **ret,
		   struct diags *d);
/* Compresses `len` bytes. < 0: -errno of a failed write (not reported:
 * the caller names what it was writing), or -EIO when the compressor
 * itself failed (reported; compressor_failed). */
int compressor_write(struct compressor *c, const void *data, size_t len);
/* Writes what is left and the stream's end; fails as compressor_write. */
int compressor_finish(struct compressor *c);
bool compressor_failed(const struct compressor *c);
/* The bytes written from now on are hashed into `h` too (the caller's:
 * it finishes and frees it), so that a file just written is not read
 * again for its sum. */
struct sha256;
void compressor_sum(struct compressor *c, struct sha256 *h);
void compressor_free(struct compressor *c);
/* Frees what the calling thread keeps for its next compressor: a thread
 * that compressed calls it before it ends. */
void compress_thread_end(void);
