/* A content-addressed cache of what builds make from their inputs (the
 * compressed payload segments), so a rebuild redoes only what changed.
 *
 * An entry is named by a key: the sha256 of everything its bytes are made
 * from (cache_key_*), never of mtimes. In the cache directory:
 *   objects/<key>         the bytes (read-only; outputs may hard-link them)
 *   objects/<key>.sum     "<size> <sha256 of the bytes>": written last, so
 *                         an entry without it does not exist
 *   tmp/                  entries being added (temp + rename: a crash or a
 *                         concurrent build never leaves half an entry)
 *   spares/<sha of path>  the file an output file replaced, kept so that
 *                         the next build writes over its blocks
 *                         (cache_spare); counted, and dropped first
 *   spares/<sha of path>.layout
 *                         "<identity>" of that file, then what its output
 *                         record said of it (an ISO's extents): written
 *                         only while the file is as it was made
 *   outputs/<sha of path> "<key> <identity>" of an output file made from
 *                         `key`: a build that would make it again from the
 *                         same key leaves it as it is (cache_output_fresh);
 *                         then lines the output's writer gives (isolayout.h)
 *   sums                  file sums remembered across builds (filesum.h)
 *   size, added           the bytes in objects/, counted so that pruning
 *                         need not stat every entry after every build
 *   .lock                 shared by builds, exclusive while pruning
 * Every use checks the entry's size and sha256 against its .sum: a
 * truncated or corrupted entry (or an output hard-linked to it and then
 * changed) is removed and rebuilt, never used. */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "diag.h"
#include "hash.h"
#include "util.h"

#define CACHE_DEFAULT_MAX (4ULL << 30)          /* bytes */

struct cache {
	char *dir;              /* NULL: caching is off (--no-cache) */
	uint64_t max;           /* bytes kept after a build, oldest use dropped first */
	int lock_fd;
	unsigned hits, misses, damaged;
	uint64_t added;         /* bytes this build put in, not yet counted */
	struct strv made_paths, made_keys, made_layouts;        /* cache_output_made, to record */
	/* cache_spare: outputs becoming spares, "<dev> <ino> <size> <mtime>"
	 * as they were made, and their layouts, for cache_outputs_record */
	struct strv to_spare, to_spare_ids, to_spare_layouts;
};
#define CACHE_INIT { NULL, CACHE_DEFAULT_MAX, -1, 0, 0, 0, 0, STRV_INIT, STRV_INIT, STRV_INIT, STRV_INIT, STRV_INIT, STRV_INIT }

/* Opens (creating) the cache at `dir` under a shared lock. A cache that
 * cannot be made is reported as a warning and left off: a build never
 * fails for its cache. */
void cache_open(struct cache *c, const char *dir, uint64_t max, struct diags *d);
/* Drops the oldest entries beyond c->max (when no other build uses the
 * cache: pruning takes the lock exclusively, without waiting) and closes. */
void cache_close(struct cache *c);

/* 1 and `dst` holds the entry's bytes (a hard link, else a copy, mode
 * `mode`), 0 when there is none (a damaged one is removed), < 0 on an
 * I/O error writing `dst` (reported). */
int cache_get(struct cache *c, const char *key, const char *dst, unsigned mode, struct diags *d);
/* cache_get for what is not a payload segment (a boot loader image): not
 * counted in hits and misses. */
int cache_fetch(struct cache *c, const char *key, const char *dst, unsigned mode, struct diags *d);
/* Small entries held in memory (what a node's inputs made: cache_write),
 * checked as every entry. cache_read: 1 and *ret (NUL-terminated, to
 * free), 0 when there is none or it is damaged. Neither is counted in
 * hits and misses. */
int cache_read(struct cache *c, const char *key, char **ret, struct diags *d);
void cache_write(struct cache *c, const char *key, const char *text, struct diags *d);
/* Copies `src` to `dst` (mode 0644) through the cache: a hard link of the
 * cache's copy of those bytes (keyed by their sum), made now when there is
 * none. A large input (a kernel, an OS image) put in every build's output
 * is then neither copied nor hashed again. Without a cache: copy_file. */
int cache_copy(struct cache *c, const char *src, const char *dst, struct diags *d);
/* Adds the file `src` as `key`. Failing to add is a warning, not an error. */
void cache_put(struct cache *c, const char *key, const char *src, struct diags *d);

/* Outputs up to date. An output file is recorded with the key of all that
 * went into it and its identity on disk (device, inode, size, mtime,
 * ctime: any write to it, or another file in its place, moves them).
 * Whether the file at `path` was recorded as made from `key` and is still
 * that file. */
bool cache_output_fresh(const struct cache *c, const char *path, const char *key);
/* Notes that `path` is being made from `key`, with `layout` (lines the
 * writer reads back from a spare: cache_spare; may be NULL); recorded by
 * cache_outputs_record once the outputs are in place. */
void cache_output_made(struct cache *c, const char *path, const char *key, const char *layout);
void cache_outputs_record(struct cache *c);
/* Where the file at `path` (an output file) goes when a new one replaces
 * it, for the build after to write over (atomic_open_over,
 * pending_add_keeping); NULL without a cache. Only an output's own
 * builds, which hold its lock, use it. *ret_layout: the layout recorded
 * with the spare there now, when it is still the file it was made as
 * (same device, inode, size, mtime and ctime as when it became the
 * spare, which it became untouched since made), else NULL. */
char *cache_spare(struct cache *c, const char *path, char **ret_layout);
