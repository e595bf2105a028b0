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
 *   .lock                 shared by builds, exclusive while pruning
 * Every use checks the entry's size and sha256 against its .sum: a
 * truncated or corrupted entry (or an output hard-linked to it and then
 * changed) is removed and rebuilt, never used. */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "diag.h"
#include "hash.h"

#define CACHE_DEFAULT_MAX (4ULL << 30)          /* bytes */

struct cache {
	char *dir;              /* NULL: caching is off (--no-cache) */
	uint64_t max;           /* bytes kept after a build, oldest use dropped first */
	int lock_fd;
	unsigned hits, misses, damaged;
};
#define CACHE_INIT { NULL, CACHE_DEFAULT_MAX, -1, 0, 0, 0 }

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
/* Adds the file `src` as `key`. Failing to add is a warning, not an error. */
void cache_put(struct cache *c, const char *key, const char *src, struct diags *d);
