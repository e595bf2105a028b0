/* The payload tree of one initrd segment, and its manifest.
 *
 * Where things go (the payload contract, see base/README.md):
 *   usr/share/oem/cloud-config.yml          the rendered cloud-config
 *   usr/share/oem/dlws/rootfs/<path>        files for the node's root fs
 *   usr/share/oem/dlws/node.env             DLWS_HOSTNAME=.. (node segments)
 *   usr/share/oem/dlws/manifest.d/<segment> "<sha256> <size> <mode> <path>"
 * A config whose dest is under /usr/share/oem/ is placed there as is; every
 * other dest goes under the rootfs folder. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>
#include "diag.h"
#include "hash.h"

#define PAYLOAD_OEM "usr/share/oem"
#define PAYLOAD_DIR PAYLOAD_OEM "/dlws"
#define PAYLOAD_ROOTFS PAYLOAD_DIR "/rootfs"
#define PAYLOAD_MANIFESTS PAYLOAD_DIR "/manifest.d"
#define PAYLOAD_LARGE PAYLOAD_DIR "/large"
#define PAYLOAD_MEDIUM_ID PAYLOAD_DIR "/medium-id"
#define PAYLOAD_BIN PAYLOAD_DIR "/bin"
#define PAYLOAD_SCRIPT PAYLOAD_BIN "/dlws-payload"
#define PAYLOAD_IGNITION PAYLOAD_OEM "/config.ign"

enum stage_type { STAGE_FILE, STAGE_DIR, STAGE_SYMLINK };

struct stage_entry {
	char *path;             /* relative to the initrd root, normalised */
	enum stage_type type;
	unsigned mode;          /* permission bits */
	char *data;             /* FILE: content held in memory (owned), or */
	char *src;              /* FILE: content streamed from this file (owned) */
	char *link;             /* SYMLINK: target, stored as written */
	uint64_t size;
	char sha256[65];
	bool on_medium;         /* FILE kept on the boot medium under PAYLOAD_LARGE:
				 * in the manifest, not in the initrd */
	struct stage_file_id {  /* FILE from src: what it was when hashed */
		dev_t dev;
		ino_t ino;
		struct timespec ctime;
	} id;
};

struct stage {
	struct stage_entry *v;
	size_t n, cap;
};
#define STAGE_INIT { 0 }

/* Whether the source of file entry `e` is still what was hashed (same
 * inode, size and change time: any write since moves ctime). A writer that
 * hands the path to a library (libisofs reads it later) checks this after
 * writing; -EIO reported when it changed. */
int stage_entry_unchanged(const struct stage_entry *e, struct diags *d);

/* Where a file with absolute `dest` lives inside the payload. */
char *stage_payload_path(const char *dest);

/* Each add replaces an earlier entry at the same path (later ones win). */
int stage_add_data(struct stage *s, const char *path, const void *data, size_t len, unsigned mode, struct diags *d);
/* Adds a file read from disk. When `want_sha256` is set and differs, the
 * error names the file, both sums and `at`. */
int stage_add_file(struct stage *s, const char *path, const char *src, unsigned mode, const char *want_sha256,
		   const struct srcloc *at, struct diags *d);
/* Adds a symlink at `path` pointing at `target` (stored as written). */
int stage_add_symlink(struct stage *s, const char *path, const char *target, struct diags *d);
/* Adds every entry below `dir` under `prefix`, keeping modes and keeping
 * symlinks as symlinks (never followed). */
int stage_add_tree(struct stage *s, const char *prefix, const char *dir, const struct srcloc *at, struct diags *d);
/* Moves every file of at least `threshold` bytes under PAYLOAD_DIR to the
 * boot medium: PAYLOAD_DIR/X is listed as PAYLOAD_LARGE/X (so a rootfs file
 * becomes PAYLOAD_LARGE/rootfs/...). Adds PAYLOAD_MEDIUM_ID naming the
 * medium that must hold them. Returns the number moved. */
size_t stage_move_large(struct stage *s, uint64_t threshold, struct diags *d);
/* Adds PAYLOAD_MANIFESTS/<segment> listing every file staged so far. */
int stage_add_manifest(struct stage *s, const char *segment, struct diags *d);
const struct stage_entry *stage_find(const struct stage *s, const char *path);
void stage_sort(struct stage *s);
/* Every path must lie under directories only: never under a symlink or a
 * file of the payload. `s` must be sorted (stage_sort). */
int stage_check(const struct stage *s, struct diags *d);
void stage_release(struct stage *s);

/* The cache key of the segment initrd_write makes of `s` (cache.h): the
 * sha256 of `salt` (what else shapes the bytes: the tool's version, the
 * compression, the mtime) and of every entry, in the order it is written,
 * by path, type, mode, size and content sum or link target. */
void stage_key(const struct stage *s, const char *salt, char hex[SHA256_HEX_LEN + 1]);

/* Writes the tree as a newc cpio compressed as `comp` says (NULL: the
 * default, compress.h), owner root, every mtime `mtime`, parents created
 * 0755, atomically (tmp + rename). Returns the size written. `progress`
 * (may be NULL) shows how far a long one is. */
struct compression;
struct progress;
int initrd_write(const struct stage *s, const char *out_path, const struct compression *comp, time_t mtime,
		 struct progress *progress, uint64_t *ret_size, struct diags *d);
