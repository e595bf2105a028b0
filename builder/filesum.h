/* The sha256 of files, each hashed once for as long as it stays the same
 * file.
 *
 * A build reads its inputs' sums several times (pins checked, payload
 * staged for each output, cache entries verified, SHA256SUMS written). A
 * sum is remembered by the file's identity: device, inode, size, mtime and
 * ctime. Any write to a file moves its ctime, which no program can set
 * back, so a changed file is always hashed again; a file only touched is
 * hashed again and found the same.
 *
 * Sums are also remembered across builds (filesum_load/save: a file in the
 * build cache, so --no-cache hashes everything). A sum taken within a
 * second of the file's last change is not saved: a write in the same clock
 * tick would not move ctime ("racy" files, as git calls them). */
#pragma once
#include <stdint.h>

#include "diag.h"
#include "hash.h"

/* The sum of the file at `path` (following symlinks) and its size. */
int filesum(const char *path, char hex[SHA256_HEX_LEN + 1], uint64_t *ret_size, struct diags *d);

/* filesum for an object of the build cache (cache.h): made once and never
 * written in place, but hard-linked into outputs, and every hard link
 * made or removed moves its ctime. Its identity is device, inode, size
 * and mtime: a write moves mtime (and cache_get checks the size too). */
int filesum_object(const char *path, char hex[SHA256_HEX_LEN + 1], uint64_t *ret_size, struct diags *d);

/* Records `hex` as the sum of `path` as it is now, for a caller that
 * vouches for it: a hard link just made to a file whose sum was just
 * checked (link(2) moves the file's ctime), in a place nothing writes to
 * (the build cache's objects). Saved even though its ctime is recent. */
void filesum_note(const char *path, const char *hex);

/* Remembers the sums saved at `path` by an earlier build (a missing or
 * damaged file remembers nothing). */
void filesum_load(const char *path);
/* Saves what is remembered to `path` (atomically); a failure only costs
 * the next build its hashing. */
void filesum_save(const char *path);
/* Forgets everything (tests). */
void filesum_reset(void);
