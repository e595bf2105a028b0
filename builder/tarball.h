/* A directory tree as one ustar file, for carrying a bundle to a server,
 * and reading one back. */
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "diag.h"
#include "util.h"

/* Entries sorted, owner root, every mtime `mtime`; written atomically. The
 * members are named "<top>/<path>". */
int tarball_write(const char *dir, const char *top, const char *out_path, time_t mtime, struct diags *d);

/* What tarball_read found in a tar of one tree. Strings owned. */
struct tarball_contents {
	char *top;              /* the top directory */
	struct strv files;      /* regular members (hard links too), relative to top, sorted */
	uint64_t size;          /* their bytes but the held file's (from the headers when only checking) */
	char *held;             /* the held file's content, NULL when the tar has none */
	size_t held_len;
};
#define TARBALL_CONTENTS_INIT { 0 }
/* Reads a tar as tarball_write writes it (gzip, xz or zstd compressed too):
 * every member "<top>/<path>" below one top directory, a directory or a
 * regular file, or a hard link to an earlier file. Names, links and types
 * are checked before a byte is written, and sizes in headers are never
 * trusted. With `out` NULL it only checks; else it extracts below `out`
 * (an existing empty directory): directories 0755, files 0644, each file
 * fsynced. The top-level file named `hold` (may be NULL) is also read into
 * memory, at most `hold_limit` bytes. Returns 0 or -errno, reported. */
int tarball_read(const char *tar, const char *out, const char *hold, size_t hold_limit, struct tarball_contents *ret,
		 struct diags *d);
void tarball_contents_release(struct tarball_contents *c);
