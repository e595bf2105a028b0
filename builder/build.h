/* A build: one recipe with its cluster values, PKI and rendered payload.
 * The command layer drives these steps; each reports into diags. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include "buf.h"
#include "fsutil.h"
#include "cluster.h"
#include "diag.h"
#include "hash.h"
#include "pki.h"
#include "recipe.h"
#include "stage.h"
#include "util.h"

/* On a node's boot entries: Flatcar runs Ignition on this boot. */
#define FLATCAR_FIRST_BOOT "flatcar.first_boot=1"

struct build_opts {
	const char *const *sets;        /* "KEY=VALUE" overrides of template values */
	size_t n_sets;
	time_t epoch;                   /* SOURCE_DATE_EPOCH: mtimes in outputs (0 when unset) */
	bool epoch_set;                 /* SOURCE_DATE_EPOCH was given: the build time in metadata */
	time_t now;                     /* for certificate validity */
	struct cache *cache;            /* segments made before (cache.h); NULL: none */
	struct progress *progress;      /* the status line of long steps (progress.h); NULL: none */
};

struct build_memo;
struct cache;
struct progress;
struct sysext_work;

struct build {
	struct recipe *recipe;
	struct cluster *cluster;
	const struct node **nodes;      /* the cluster's nodes of the recipe's role */
	size_t n_nodes;
	struct pki_config pki;
	char *apiserver_url;
	const struct build_opts *opts;
	struct sysext_work *sysext;     /* the systemd-sysext images this build makes (owned) */
	struct build_memo *memo;        /* what every node's rendering shares, made once (owned) */
};

/* Loads the recipe and its cluster values; the role must have nodes. */
int build_load(const char *recipe_path, const struct build_opts *opts, struct build **ret, struct diags *d);
void build_free(struct build *b);

/* One rendered config of one node. */
struct rendered {
	const struct recipe_config *config;
	char *text;
	size_t len;
};
void rendered_free(struct rendered *v, size_t n);

/* Renders every config of the recipe for `node`. The PKI must exist in
 * b->pki.dir (certificate paths and PEMs are template values). */
int build_render(const struct build *b, const struct node *node, struct rendered **ret, size_t *ret_n, struct diags *d);

/* How an output carries the shared segment. */
struct segment_opts {
	/* Files of this size or more stay on the boot medium (stage_move_large); 0: none. */
	uint64_t large_threshold;
	/* Where an install fetches the OS image (a PXE bundle's HTTP URL), which
	 * then stays out of the segment; NULL: the image travels in it. */
	const char *image_url;
	/* For a disk that is already installed (outputs.disk): without what an
	 * install needs (the agent, install.conf, the OS image). */
	bool installed;
};

/* Checks every pinned file (files:, images:) against its sha256, reporting
 * each mismatch at its entry: before the PKI or any output is made, so a
 * wrong pin never costs a PKI (staging checks again what it reads). */
int build_check_pins(const struct build *b, struct diags *d);

/* The shared segment: files: and overlays (the large part, one per role). */
int build_stage_shared(const struct build *b, const struct segment_opts *o, struct stage *ret, struct diags *d);
/* One node's segment: rendered configs, its certificates and keys, node.env.
 * With node NULL, the role's segment (build_has_role_segment). */
int build_stage_node(const struct build *b, const struct node *node, struct stage *ret, struct diags *d);

/* Workers have a role segment, "<recipe>/role.cpio.zst" beside the shared
 * one: what the role's default entry boots to join without a node's
 * identity (a MAC not in the cluster values). */
#define BUILD_ROLE_SEGMENT "role"
bool build_has_role_segment(const struct build *b);

/* A segment's file name: `name` and the suffix of the recipe's compression
 * ("shared" -> "shared.cpio.zst"). */
char *build_segment_file(const struct build *b, const char *name);

/* The boot entries of a recipe: one for the role (kernel, base initrd and
 * shared segment) and one per node (plus its segment), paths relative to
 * the boot root as "<recipe>/..." and "nodes/<hostname>.cpio.zst", the
 * kernel command line base.cmdline plus dlws.* arguments and `extra`. */
struct boot_menu;
void build_menu_entries(const struct build *b, const char *extra, struct boot_menu *m);

/* Sizes of what a node's bootloader loads: the base initrd, the shared
 * segment, and each node's segment (parallel to b->nodes). */
struct segment_sizes {
	uint64_t base, shared, role;
	uint64_t *node;
	/* What the segments deliver: sha256 over their manifests' sums (shared,
	 * role, nodes in order), for build metadata. */
	char payload_sha256[SHA256_HEX_LEN + 1];
	char inputs_sha256[SHA256_HEX_LEN + 1];         /* build_inputs_sum of every node */
};
void segment_sizes_release(struct segment_sizes *s);
/* The sha256 of what the payload of nodes[first..first+n) (and of the
 * role, when it has a segment) is made from, whatever output carries it:
 * the tool's version, the compression and SOURCE_DATE_EPOCH; the recipe
 * and cluster files; the base kernel, initrd and OS image; each file the
 * `shared` stage takes from outside as it is; the role's and each node's
 * input key (templates, the values they name, PKI files). Equal sums:
 * the same inputs, hence the same payload bytes. */
int build_inputs_sum(const struct build *b, const struct stage *shared, size_t first, size_t n,
		     char ret[SHA256_HEX_LEN + 1], struct diags *d);
/* Writes the shared segment to `shared_path` and each node's segment to
 * "<node_dir>/<node_prefix><hostname>.cpio.zst" (build_segment_file), the
 * shared one as `o` says;
 * with `ret_shared`, the shared stage is handed back (for the files it
 * keeps on the medium). */
int build_write_segments(const struct build *b, const char *shared_path, const char *node_dir, const char *node_prefix,
			 const struct segment_opts *o, struct stage *ret_shared, struct segment_sizes *ret, struct diags *d);
/* Every node's base + shared + node segment must fit `max` (0: no limit). */
int build_check_initrd_size(const struct build *b, const struct segment_sizes *s, uint64_t max, const struct srcloc *at,
			    const char *what, struct diags *d);

/* Writes outputs.initrd beside its target, to be put in place by
 * pending_commit: a directory with shared.cpio.zst, one
 * node-<hostname>.cpio.zst per node and SHA256SUMS (the suffix as the
 * recipe's compression). */
int build_write_initrd_output(const struct build *b, struct pending *out, struct diags *d);
