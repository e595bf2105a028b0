/* Build metadata inside outputs (dlws-build.json at the top of a PXE
 * tree): the tool and version, the build time (SOURCE_DATE_EPOCH), the
 * cluster, and every recipe the output serves with its role and nodes, so
 * that a later build into the same output knows what it already serves. */
#pragma once
#include <stddef.h>
#include <time.h>

#include "build.h"
#include "util.h"

#define BUILDINFO_FILE "dlws-build.json"

struct buildinfo_recipe {
	char *name, *role;
	char *recipe;           /* the recipe's path, relative to the output's directory */
	struct strv nodes;
};

struct buildinfo {
	char *tool_version, *built, *cluster;
	struct buildinfo_recipe *recipes;
	size_t n_recipes;
};

/* The metadata of `builds` written into the output at `output` (recipe
 * paths relative to `output`, which need not exist yet). */
char *buildinfo_json(const struct build *const *builds, size_t n, const char *output);
/* Reads `path`; -ENOENT (not reported) when there is none. Only the fields
 * above are read; a file that is not such metadata is an error. */
int buildinfo_read(const char *path, struct buildinfo *ret, struct diags *d);
void buildinfo_release(struct buildinfo *b);
/* A recipe path read from the metadata of `output`, as a path from the
 * current directory. */
char *buildinfo_recipe_path(const char *output, const char *recipe);
