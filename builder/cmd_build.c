/* dlws-mkimage [build] RECIPE...: every output the recipes list. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cache.h"
#include "cmd.h"
#include "disk.h"
#include "filesum.h"
#include "fsutil.h"
#include "hash.h"
#include "iso.h"
#include "pxe.h"
#include "util.h"

enum { OPT_NO_WAIT = 0x100, OPT_NO_CACHE, OPT_CACHE_MAX };

static const char usage[] =
	"usage: dlws-mkimage [build] [OPTIONS] RECIPE...\n"
	"\n"
	"Builds every output the recipes list (outputs.initrd, outputs.pxe, outputs.iso,\n"
	"outputs.disk).\n"
	"Every recipe is loaded and checked before anything is written; outputs are\n"
	"written beside their targets and put in place together.\n"
	"\n"
	"options:\n"
	"  -s, --set KEY=VALUE   override a template value for this run (e.g. values.x=y)\n"
	CMD_NO_WAIT_HELP
	"      --no-cache        make every segment and output anew and hash every file (the cache is\n"
	"                        neither read nor filled)\n"
	"      --cache-max SIZE  keep the build cache (.cache beside the first output) under SIZE\n"
	"                        (e.g. 2G; default 4G), the least recently used dropped first\n"
	"  -q, --quiet           print errors only\n"
	"  -v, --verbose         print every step\n"
	"  -h, --help            show this help\n";

static void say_written(const struct pending *out, const char *what, const char *path, size_t n_nodes) {
	if (strv_contains(&out->fresh, path))
		fprintf(stderr, "%s %s is up to date (%zu node%s)\n", what, path, n_nodes, n_nodes == 1 ? "" : "s");
	else if (pending_kept(out, path))
		fprintf(stderr, "wrote %s %s (%zu node%s; written over the ISO of the build before last: %.1f MB of large files already in place)\n",
			what, path, n_nodes, n_nodes == 1 ? "" : "s", (double)pending_kept(out, path) / 1e6);
	else
		fprintf(stderr, "wrote %s %s (%zu node%s)\n", what, path, n_nodes, n_nodes == 1 ? "" : "s");
}

/* The build cache: ".cache" in the directory of the recipe's first output
 * (out/.cache for the shipped recipes). */
static char *cache_dir_for(const struct recipe *rc) {
	const char *out = rc->outputs.initrd ? rc->outputs.initrd
		: rc->outputs.pxe ? rc->outputs.pxe
		: rc->outputs.iso ? rc->outputs.iso
		: rc->outputs.disk;
	const char *slash = out ? strrchr(out, '/') : NULL;
	_cleanup_free_ char *dir = slash ? xstrndup(out, (size_t)(slash - out)) : xstrdup(".");
	return path_join(dir, ".cache");
}

static void say_cache(const struct cache *c) {
	const char *damaged = c->damaged ? " (damaged entries made again)" : "";
	if (!c->misses)
		fprintf(stderr, "nothing changed in the payload: all %u segments from the build cache%s\n", c->hits, damaged);
	else
		fprintf(stderr, "build cache: %u segment%s reused, %u made%s\n", c->hits, c->hits == 1 ? "" : "s",
			c->misses, damaged);
}

/* Recipes naming the same outputs.pxe.path share one bundle, with an entry
 * per role (the first recipe's is the default). */
struct bundle {
	const char *path;
	const struct build **builds;
	size_t n, n_nodes;
	struct strv kept;       /* recipes kept from the bundle's last build */
};

static size_t group_bundles(struct build **builds, int n, struct bundle *ret) {
	size_t k = 0;
	for (int i = 0; i < n; i++) {
		const char *path = builds[i]->recipe->outputs.pxe;
		if (!path)
			continue;
		struct bundle *g = NULL;
		for (size_t j = 0; j < k && !g; j++)
			if (streq(ret[j].path, path))
				g = &ret[j];
		if (!g) {
			g = &ret[k++];
			*g = (struct bundle){ .path = path, .builds = xcalloc((size_t)n, sizeof(*g->builds)) };
		}
		g->builds[g->n++] = builds[i];
		g->n_nodes += builds[i]->n_nodes;
	}
	return k;
}

int cmd_build(int argc, char **argv, struct cmd_ctx *ctx) {
	static const struct option longopts[] = {
		{ "set", required_argument, NULL, 's' },
		{ "no-wait", no_argument, NULL, OPT_NO_WAIT },
		{ "no-cache", no_argument, NULL, OPT_NO_CACHE },
		{ "cache-max", required_argument, NULL, OPT_CACHE_MAX },
		CMD_COMMON_LONGOPTS,
		{ 0 },
	};
	struct strv sets = STRV_INIT;
	bool no_wait = false, no_cache = false;
	uint64_t cache_max = CACHE_DEFAULT_MAX;
	int c;
	optind = 0;
	while ((c = getopt_long(argc, argv, "s:" CMD_COMMON_SHORTOPTS, longopts, NULL)) != -1) {
		if (c == 's') {
			strv_push(&sets, optarg);
			continue;
		}
		if (c == OPT_NO_WAIT) {
			no_wait = true;
			continue;
		}
		if (c == OPT_NO_CACHE) {
			no_cache = true;
			continue;
		}
		if (c == OPT_CACHE_MAX) {
			if (parse_size(optarg, &cache_max) < 0) {
				strv_release(&sets);
				return cmd_usage_error("build", "--cache-max takes a size such as 2G, not '%s'", optarg);
			}
			continue;
		}
		int k = cmd_common_option(c, ctx, "build", usage);
		if (k >= 0) {
			strv_release(&sets);
			return k;
		}
	}
	char **rest = argv + optind;
	int n_rest = argc - optind;
	if (n_rest < 1) {
		strv_release(&sets);
		return cmd_usage_error("build", "needs at least one RECIPE");
	}
	struct build_opts opts;
	struct diags d = DIAGS_INIT;
	int r = cmd_build_opts((const char *const *)sets.v, sets.n, &opts, &d);
	struct progress progress;
	cmd_progress_init(ctx, false, &progress);
	opts.progress = &progress;
	/* Every recipe is loaded and checked before anything is written. */
	struct build **builds = xcalloc((size_t)n_rest, sizeof(*builds));
	for (int i = 0; i < n_rest; i++) {
		int k = build_load(rest[i], &opts, &builds[i], &d);
		if (k < 0)
			r = k;
	}
	struct bundle *bundles = xcalloc((size_t)n_rest, sizeof(*bundles));
	size_t n_bundles = r == 0 ? group_bundles(builds, n_rest, bundles) : 0;
	for (size_t i = 0; i < n_bundles; i++) {
		int k = pxe_check(bundles[i].builds, bundles[i].n, &d);
		if (k < 0)
			r = k;
	}
	/* From here on this build owns its PKI directories and outputs. The
	 * PKI is made in a stage and committed with the outputs: a failure
	 * below leaves both as they were. */
	struct lock_set locks = LOCK_SET_INIT;
	struct cmd_pki pki = CMD_PKI_INIT;
	if (r == 0)
		r = cmd_lock(builds, (size_t)n_rest, true, false, no_wait, "build", ctx, &locks, &d);
	/* Stages are flushed once, before they are put in place. */
	fsutil_defer_sync();
	/* Sums of files not changed since an earlier build are not taken again. */
	_cleanup_free_ char *cache_dir = r == 0 && !no_cache ? cache_dir_for(builds[0]->recipe) : NULL;
	_cleanup_free_ char *sums = cache_dir ? path_join(cache_dir, "sums") : NULL;
	if (sums)
		filesum_load(sums);
	/* and certificates found sound are not parsed again (one file per PKI
	 * directory: pki.checked) */
	struct strv checked = STRV_INIT;
	for (int i = 0; i < n_rest && cache_dir; i++) {
		/* named by its place, made yet or not: the name of its lock
		 * (its parent's real path; a first build has no keys/ yet) */
		const char *dir = builds[i]->recipe->pki.dir;
		struct diags quiet = DIAGS_INIT;
		_cleanup_free_ char *place = NULL;
		if (lock_file_for(dir, false, &place, &quiet) < 0)
			place = xstrdup(dir);
		diags_release(&quiet);
		char hex[SHA256_HEX_LEN + 1];
		sha256_hex(place, strlen(place), hex);
		strv_push_take(&checked, xasprintf("%s/pki-checked-%.16s", cache_dir, hex));
		builds[i]->pki.checked = checked.v[checked.n - 1];
	}
	for (int i = 0; i < n_rest && r == 0; i++)
		r = build_check_pins(builds[i], &d);
	/* The cache before the PKI: a first build's PKI remembers there what
	 * it found sound (pki.checked). */
	struct cache cache = CACHE_INIT;
	if (r == 0 && cache_dir) {
		cache_open(&cache, cache_dir, cache_max, &d);
		opts.cache = &cache;
	}
	if (r == 0)
		r = cmd_pki_prepare(builds, (size_t)n_rest, ctx, false, &pki, &d);
	/* Outputs are written beside their targets and put in place together. */
	struct pending out = PENDING_INIT;
	struct strv disks_kept = STRV_INIT;
	for (int i = 0; i < n_rest && r == 0; i++)
		if (builds[i]->recipe->outputs.initrd)
			r = build_write_initrd_output(builds[i], &out, &d);
	for (size_t i = 0; i < n_bundles && r == 0; i++)
		r = pxe_write_bundle(bundles[i].builds, bundles[i].n, bundles[i].path, &bundles[i].kept, &out, &d);
	for (int i = 0; i < n_rest && r == 0; i++)
		if (builds[i]->recipe->outputs.iso)
			r = iso_write(builds[i], &out, &d);
	/* Every recipe's disks in one libguestfs appliance: it takes half a minute to start. */
	if (r == 0 && disk_wanted(builds, (size_t)n_rest))
		r = disk_write(builds, (size_t)n_rest, &disks_kept, &out, &d);
	int synced = fsutil_sync_deferred(r == 0 && (out.tmp.n || pki.n), &d);
	if (r == 0)
		r = synced;
	/* The PKI first: outputs are made from it, never the other way. */
	if (r == 0)
		r = cmd_pki_commit(&pki, ctx, false, &d);
	if (r == 0)
		r = pending_commit(&out, &d);
	pending_abort(&out);
	cmd_pki_abort(&pki);
	if (r == 0 && ctx->verbosity > 0 && cache.dir && cache.hits + cache.misses)
		say_cache(&cache);
	if (r == 0)
		cache_outputs_record(&cache);
	if (cache.dir && sums)
		filesum_save(sums);
	cache_close(&cache);
	lock_set_release(&locks);
	for (int i = 0; i < n_rest && r == 0 && ctx->verbosity > 0; i++)
		if (builds[i]->recipe->outputs.initrd)
			say_written(&out, "initrd segments", builds[i]->recipe->outputs.initrd, builds[i]->n_nodes);
	for (size_t i = 0; i < n_bundles && r == 0 && ctx->verbosity > 0; i++) {
		say_written(&out, "PXE bundle", bundles[i].path, bundles[i].n_nodes);
		for (size_t k = 0; k < bundles[i].kept.n; k++)
			fprintf(stderr, "kept %s in %s from its last build (rebuild it with its recipe to refresh it)\n",
				bundles[i].kept.v[k], bundles[i].path);
	}
	for (int i = 0; i < n_rest && r == 0 && ctx->verbosity > 0; i++)
		if (builds[i]->recipe->outputs.iso)
			say_written(&out, "ISO", builds[i]->recipe->outputs.iso, builds[i]->n_nodes);
	for (int i = 0; i < n_rest && r == 0 && ctx->verbosity > 0; i++)
		if (builds[i]->recipe->outputs.disk)
			say_written(&out, "disks", builds[i]->recipe->outputs.disk, builds[i]->n_nodes);
	/* One name per kept disk, a directory's together. */
	for (size_t i = 0, k; i < disks_kept.n && r == 0 && ctx->verbosity > 0; i = k) {
		for (k = i; k < disks_kept.n && streq(disks_kept.v[k], disks_kept.v[i]);)
			k++;
		fprintf(stderr, "kept %zu disk%s of other nodes in %s (rebuild their recipes to refresh them)\n", k - i,
			k - i == 1 ? "" : "s", disks_kept.v[i]);
	}
	strv_release(&disks_kept);
	strv_release(&out.fresh);
	strv_release(&out.kept);
	strv_release(&checked);
	for (size_t i = 0; i < n_bundles; i++) {
		free(bundles[i].builds);
		strv_release(&bundles[i].kept);
	}
	free(bundles);
	for (int i = 0; i < n_rest; i++)
		build_free(builds[i]);
	free(builds);
	strv_release(&sets);
	progress_abort(&progress);
	return cmd_report(&d, r);
}

