/* OS disk images as shipped (raw, .bz2, .gz, .xz, .zst), read with
 * libarchive's raw reader, never whole in memory. */
#pragma once
#include <stdint.h>
#include "diag.h"

/* The size of the image once decompressed: what a target disk must hold. */
int rawimage_size(const char *path, uint64_t *ret, struct diags *d);
