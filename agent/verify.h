/* The payload manifest (base/README.md, "Manifest format"): every fragment
 * in LAYOUT_LIVE_MANIFESTS, lines "<sha256> <size> <mode> <path>". The agent
 * checks it again itself before it installs anything. */
#pragma once
#include <stdbool.h>

#include "util.h"

struct manifest;

struct manifest *manifest_new(void);
void manifest_free(struct manifest *m);

/* Called once per manifest line that does not match the file it names:
 * `path` is the live path (or "<fragment>:<line>" for a malformed line),
 * `reason` as /init words it ("missing", "size 3, expected 4", ...). */
typedef void (*manifest_damaged_fn)(const char *path, const char *reason, void *userdata);

/* Reads every fragment (in name order) and checks every line: exists,
 * regular file, size, mode, sha256. Returns 0 when all n lines match,
 * -EBADMSG when some do not (each reported through `damaged`), another
 * negative errno with `e` set when the manifest itself cannot be read or
 * there is none. */
int manifest_verify(struct manifest *m, manifest_damaged_fn damaged, void *userdata,
		    unsigned *ret_files, unsigned *ret_damaged, struct agent_err *e);

/* Whether a verified line names this live path. */
bool manifest_has(const struct manifest *m, const char *live_path);
