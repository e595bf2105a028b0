/* dlws-mkimage render: the rendered configs of a recipe, a dry run. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "cmd.h"
#include "fsutil.h"
#include "layout.h"
#include "units.h"
#include "util.h"

enum { OPT_NO_WAIT = 0x100 };

static const char usage[] =
	"usage: dlws-mkimage render [--set KEY=VALUE]... [--node HOSTNAME] RECIPE\n"
	"\n"
	"Prints every config the recipe renders, per node, and the Ignition config\n"
	"of dlws-mkimage's units; writes nothing (before the first build, with a\n"
	"throwaway PKI).\n"
	"\n"
	"options:\n"
	"  -s, --set KEY=VALUE   override a template value for this run (e.g. values.x=y)\n"
	"  -n, --node HOSTNAME   only this node\n"
	CMD_NO_WAIT_HELP
	"  -q, --quiet           print errors only\n"
	"  -v, --verbose         print every step\n"
	"  -h, --help            show this help\n";

/* render needs certificate paths and PEMs; before the first build there is
 * no PKI yet, so a throwaway one in a temp dir stands in for it. */
static int render_pki(struct build *b, const struct cmd_ctx *ctx, char **ret_tmpdir, struct diags *d) {
	_cleanup_free_ char *ca = path_join(b->pki.dir, "ca.pem");
	*ret_tmpdir = NULL;
	if (path_exists(ca))
		return 0;
	char tmpl[] = "/tmp/dlws-render-pki.XXXXXX";
	if (!mkdtemp(tmpl)) {
		diag_error(d, NULL, "cannot create a temporary directory: %s", strerror(errno));
		return -errno;
	}
	*ret_tmpdir = xstrdup(tmpl);
	b->pki.dir = *ret_tmpdir;
	struct pki_report rep = PKI_REPORT_INIT;
	int r = pki_ensure(&b->pki, &rep, d);
	pki_report_release(&rep);
	if (ctx->verbosity > 0)
		fprintf(stderr, "note: no PKI in '%s' yet: rendered with a throwaway one (run 'dlws-mkimage certs')\n",
			b->recipe->pki.dir);
	return r;
}

int cmd_render(int argc, char **argv, struct cmd_ctx *ctx) {
	static const struct option longopts[] = {
		{ "set", required_argument, NULL, 's' },
		{ "node", required_argument, NULL, 'n' },
		{ "no-wait", no_argument, NULL, OPT_NO_WAIT },
		CMD_COMMON_LONGOPTS,
		{ 0 },
	};
	struct strv sets = STRV_INIT;
	const char *node = NULL;
	bool no_wait = false;
	int c;
	optind = 0;
	while ((c = getopt_long(argc, argv, "s:n:" CMD_COMMON_SHORTOPTS, longopts, NULL)) != -1) {
		if (c == 's') {
			strv_push(&sets, optarg);
			continue;
		}
		if (c == 'n') {
			node = optarg;
			continue;
		}
		if (c == OPT_NO_WAIT) {
			no_wait = true;
			continue;
		}
		int k = cmd_common_option(c, ctx, "render", usage);
		if (k >= 0) {
			strv_release(&sets);
			return k;
		}
	}
	if (argc - optind != 1) {
		strv_release(&sets);
		return cmd_usage_error("render", "needs exactly one RECIPE");
	}
	struct build_opts opts;
	struct diags d = DIAGS_INIT;
	struct build *b = NULL;
	char *tmpdir = NULL;
	int r = cmd_build_opts((const char *const *)sets.v, sets.n, &opts, &d);
	if (r == 0)
		r = build_load(argv[optind], &opts, &b, &d);
	if (r == 0 && node && !cluster_find_node(b->cluster, node)) {
		diag_error(&d, NULL, "no node '%s' in '%s'", node, b->cluster->path);
		r = -ENOENT;
	}
	/* The PKI is read as a whole: not while a build or certs changes it. */
	struct lock_set locks = LOCK_SET_INIT;
	if (r == 0)
		r = cmd_lock(&b, 1, false, true, no_wait, "render", ctx, &locks, &d);
	if (r == 0)
		r = render_pki(b, ctx, &tmpdir, &d);
	/* Render everything first: a dry run prints all of it or none. */
	struct buf out = BUF_INIT;
	for (size_t i = 0; r == 0 && i < b->n_nodes; i++) {
		const struct node *n = b->nodes[i];
		if (node && !streq(node, n->hostname))
			continue;
		struct rendered *v = NULL;
		size_t nv = 0;
		int k = build_render(b, n, &v, &nv, &d);
		if (k < 0) {
			r = k;
			continue;
		}
		for (size_t j = 0; j < nv; j++) {
			buf_printf(&out, "# --- %s: %s (from %s)\n", n->hostname, v[j].config->dest, v[j].config->template);
			buf_append(&out, v[j].text, v[j].len);
			if (v[j].len && v[j].text[v[j].len - 1] != '\n')
				buf_putc(&out, '\n');
		}
		rendered_free(v, nv);
		/* What dlws-mkimage adds: the node's Ignition config (its units). */
		_cleanup_free_ char *ign = units_ignition_config(b->recipe);
		buf_printf(&out, "# --- %s: %s (dlws-mkimage's units)\n%s", n->hostname, LAYOUT_LIVE_IGNITION, ign);
	}
	if (r == 0 && out.len)
		fwrite(out.data, 1, out.len, stdout);
	buf_release(&out);
	if (tmpdir)
		rm_rf(tmpdir);
	lock_set_release(&locks);
	free(tmpdir);
	build_free(b);
	strv_release(&sets);
	return cmd_report(&d, r);
}

