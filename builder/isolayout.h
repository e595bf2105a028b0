/* Where an image's large files lie: the extents of their data, read back
 * from the image's own directory records with libisofs's reader.
 *
 * An ISO a build writes over its spare (cache_spare) leaves in place the
 * extents whose bytes the spare already holds: the same file, by sum, at
 * the same offset and size in both images. libisofs tells no extent of an
 * image it writes; it writes every directory record before any file's
 * data, so the records are read back from the image being written, no
 * further than it has been written (a block past that is the spare's, and
 * is never read).
 *
 * The extents are kept with the output's record as text, a line each:
 *   extent <offset> <size> <sha256 of the file>
 */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "hash.h"

struct iso_extent {
	uint64_t offset, size;          /* bytes from the image's start */
	char sum[SHA256_HEX_LEN + 1];
};

struct iso_extents {
	struct iso_extent *v;
	size_t n;
};
#define ISO_EXTENTS_INIT { NULL, 0 }

/* The extents of the files at `paths` (absolute in the image, "/a/b"),
 * whose sums are `sums`, in the image held by the first `limit` bytes of
 * `fd`. A file stored in more than one extent, or empty, has none. < 0
 * when the image cannot be read within `limit` (nothing is known then). */
int isolayout_read(int fd, uint64_t limit, const char *const *paths, const char *const *sums, size_t n,
		   struct iso_extents *ret);

/* The record's lines, and back: a line that is not an extent is skipped. */
char *isolayout_format(const struct iso_extents *e);
void isolayout_parse(const char *text, struct iso_extents *ret);

/* Appends a copy of `x` to `e`. */
void isolayout_add(struct iso_extents *e, const struct iso_extent *x);
/* Whether [offset, offset + size) with `sum` is one of `e`'s extents. */
bool isolayout_has(const struct iso_extents *e, const struct iso_extent *x);

void isolayout_release(struct iso_extents *e);
