/* A directory tree as one ustar file, for carrying a bundle to a server. */
#pragma once
#include <time.h>
#include "diag.h"

/* Entries sorted, owner root, every mtime `mtime`; written atomically. The
 * members are named "<top>/<path>". */
int tarball_write(const char *dir, const char *top, const char *out_path, time_t mtime, struct diags *d);
