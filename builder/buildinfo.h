/* Build metadata inside outputs (dlws-build.json at the top of a PXE
 * tree): the tool and version, the build time (SOURCE_DATE_EPOCH; none
 * when it is unset), the cluster, and every recipe the output serves with
 * its role, nodes, the sums of its payload and of its inputs and its boot
 * entries, so that a later build into the same output can keep what
 * it does not rebuild. */
#pragma once
#include <stddef.h>
#include <time.h>

#include "bootcfg.h"
#include "build.h"
#include "util.h"

#define BUILDINFO_FILE "dlws-build.json"

struct buildinfo_recipe {
	char *name, *role;
	char *recipe;           /* the recipe's path, relative to the output (a directory) or the
				 * directory of an output file */
	struct strv nodes;      /* hostnames */
	char *payload_sha256;   /* segment_sizes.payload_sha256: what its nodes get */
	char *inputs_sha256;    /* build_inputs_sum: what that was made from ("" when unknown) */
	struct boot_menu entries;       /* its boot entries, paths from the output's root */
};

struct buildinfo {
	char *tool_version, *cluster;
	char *built;            /* "YYYY-MM-DDTHH:MM:SSZ", NULL: SOURCE_DATE_EPOCH was unset */
	/* The cluster's boot_server (NULL without one): where the output's
	 * dnsmasq.conf and nginx.conf expect it, root/current. */
	char *server_address, *server_root;
	struct buildinfo_recipe *recipes;
	size_t n_recipes, cap;
};

/* Starts the metadata of an output that `builds` write now. */
void buildinfo_init(struct buildinfo *info, const struct build *const *builds, size_t n);
/* Adds `b`, its path relative to the directory `output` (which need not
 * exist yet; for an output file, the file's directory), the
 * sums of the payload it wrote there and of its inputs, and the entries
 * menu->v[first..menu->n) (menu may be NULL). */
void buildinfo_add_build(struct buildinfo *info, const struct build *b, const char *output, const char *payload_sha256,
			 const char *inputs_sha256, const struct boot_menu *menu, size_t first);
/* Adds a copy of `r`: a recipe an output keeps from an earlier build. */
void buildinfo_add_kept(struct buildinfo *info, const struct buildinfo_recipe *r);
char *buildinfo_json(const struct buildinfo *info);
/* Reads `path`; -ENOENT (not reported) when there is none. A file that is
 * not such metadata, or names paths outside the output, is an error. */
int buildinfo_read(const char *path, struct buildinfo *ret, struct diags *d);
/* The same over the file's text; `path` names it in messages. */
int buildinfo_parse(const char *text, size_t len, const char *path, struct buildinfo *ret, struct diags *d);
void buildinfo_release(struct buildinfo *info);
/* A recipe path read from the metadata of `output`, as a path from the
 * current directory. */
char *buildinfo_recipe_path(const char *output, const char *recipe);
