/* OS disk images as shipped (raw, .bz2, .gz, .xz, .zst), read with
 * libarchive's raw reader, never whole in memory. */
#pragma once
#include <stdint.h>
#include "diag.h"

/* The size of the image once decompressed: what a target disk must hold. */
int rawimage_size(const char *path, uint64_t *ret, struct diags *d);

/* Decompresses the image into the new file `dst` (mode 0644), streaming:
 * runs of zeros become holes, so a mostly empty disk image costs only its
 * data on the build machine. Returns the decompressed size. */
int rawimage_extract(const char *path, const char *dst, uint64_t *ret_size, struct diags *d);
