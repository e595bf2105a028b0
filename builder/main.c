/* dlws-mkimage: the command table and option parsing; each cmd_* is glue
 * over the module APIs and the one place that prints. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "build.h"
#include "layout.h"
#include "units.h"
#include "fsutil.h"
#include "pki.h"
#include "iso.h"
#include "pxe.h"
#include "util.h"

#define EXIT_USAGE 2
#define OPT_ROTATE_TOKEN 256    /* long options without a short one */

static int verbosity = 1; /* 0 = -q, 2 = -v */

static const char usage_text[] =
	"usage: dlws-mkimage [OPTIONS] RECIPE...          build every output the recipes list\n"
	"       dlws-mkimage build [OPTIONS] RECIPE...\n"
	"       dlws-mkimage render [--set KEY=VALUE]... [--node HOSTNAME] RECIPE\n"
	"       dlws-mkimage certs [--list | --rotate-token] RECIPE\n"
	"\n"
	"Builds self-contained boot media for DL Workspace Kubernetes clusters: renders\n"
	"the cloud-config, creates or reuses the cluster PKI and writes the payload, so\n"
	"that nothing is downloaded at install time.\n"
	"\n"
	"options:\n"
	"  -s, --set KEY=VALUE   override a template value for this run (e.g. values.x=y)\n"
	"  -n, --node HOSTNAME   render: only this node\n"
	"  -l, --list            certs: show subject, SANs and expiry of every certificate,\n"
	"                        and the bootstrap token's id (never its secret)\n"
	"      --rotate-token    certs: make a new bootstrap token (workers join with it)\n"
	"  -q, --quiet           print errors only\n"
	"  -v, --verbose         print every step\n"
	"  -h, --help            show this help\n"
	"  -V, --version         show the version\n"
	"\n"
	"environment: SOURCE_DATE_EPOCH sets every timestamp inside outputs (default 0).\n";

struct cmd_args {
	struct strv sets;
	const char *node;
	bool list;
	bool rotate_token;
	char **rest;
	int n_rest;
};

static int report(struct diags *d, int r) {
	diags_print(d, stderr);
	diags_release(d);
	return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}

static time_t source_date_epoch(void) {
	const char *s = getenv("SOURCE_DATE_EPOCH");
	if (!s || !*s)
		return 0;
	char *end;
	long long v = strtoll(s, &end, 10);
	return *end || v < 0 ? 0 : (time_t)v;
}

static struct build_opts make_opts(const struct cmd_args *a) {
	return (struct build_opts){
		.sets = (const char *const *)a->sets.v,
		.n_sets = a->sets.n,
		.epoch = source_date_epoch(),
		.now = time(NULL),
	};
}

static void print_pki_report(const struct pki_report *rep, bool all) {
	size_t reused = 0;
	for (size_t i = 0; i < rep->n; i++) {
		const struct pki_event *e = &rep->v[i];
		switch (e->action) {
		case PKI_CREATED:
			fprintf(stderr, "created %s\n", e->name);
			break;
		case PKI_REISSUED:
			fprintf(stderr, "reissued %s: %s\n", e->name, e->reason ? e->reason : "changed");
			break;
		case PKI_REUSED:
			reused++;
			if (all)
				fprintf(stderr, "reused %s\n", e->name);
			break;
		case PKI_REMOVED:
			fprintf(stderr, "removed %s: %s\n", e->name, e->reason ? e->reason : "superseded");
			break;
		}
	}
	if (!all && reused)
		fprintf(stderr, "reused %zu file%s of the pki\n", reused, reused == 1 ? "" : "s");
}

static int ensure_pki(const struct build *b, bool all, struct diags *d) {
	struct pki_report rep = PKI_REPORT_INIT;
	int r = pki_ensure(&b->pki, &rep, d);
	if (r == 0 && verbosity > 0)
		print_pki_report(&rep, all || verbosity > 1);
	pki_report_release(&rep);
	return r;
}

static void say_written(const char *what, const char *path, size_t n_nodes) {
	if (verbosity > 0)
		fprintf(stderr, "wrote %s %s (%zu node%s)\n", what, path, n_nodes, n_nodes == 1 ? "" : "s");
}

/* Recipes naming the same outputs.pxe.path share one bundle, with an entry
 * per role (the first recipe's is the default). */
struct bundle {
	const char *path;
	const struct build **builds;
	size_t n, n_nodes;
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

static int cmd_build(struct cmd_args *a) {
	if (a->n_rest < 1) {
		fputs("dlws-mkimage: build needs at least one RECIPE (see --help)\n", stderr);
		return EXIT_USAGE;
	}
	struct build_opts opts = make_opts(a);
	struct diags d = DIAGS_INIT;
	int r = 0;
	/* Every recipe is loaded and checked before anything is written. */
	struct build **builds = xcalloc((size_t)a->n_rest, sizeof(*builds));
	for (int i = 0; i < a->n_rest; i++) {
		int k = build_load(a->rest[i], &opts, &builds[i], &d);
		if (k < 0)
			r = k;
	}
	struct bundle *bundles = xcalloc((size_t)a->n_rest, sizeof(*bundles));
	size_t n_bundles = r == 0 ? group_bundles(builds, a->n_rest, bundles) : 0;
	for (size_t i = 0; i < n_bundles; i++) {
		int k = pxe_check(bundles[i].builds, bundles[i].n, &d);
		if (k < 0)
			r = k;
	}
	for (int i = 0; i < a->n_rest && r == 0; i++)
		r = ensure_pki(builds[i], false, &d);
	/* Outputs are written beside their targets and put in place together. */
	struct pending out = PENDING_INIT;
	for (int i = 0; i < a->n_rest && r == 0; i++)
		if (builds[i]->recipe->outputs.initrd)
			r = build_write_initrd_output(builds[i], &out, &d);
	for (size_t i = 0; i < n_bundles && r == 0; i++)
		r = pxe_write_bundle(bundles[i].builds, bundles[i].n, bundles[i].path, &out, &d);
	for (int i = 0; i < a->n_rest && r == 0; i++)
		if (builds[i]->recipe->outputs.iso)
			r = iso_write(builds[i], &out, &d);
	if (r == 0)
		r = pending_commit(&out, &d);
	else
		pending_abort(&out);
	for (int i = 0; i < a->n_rest && r == 0 && verbosity > 0; i++)
		if (builds[i]->recipe->outputs.initrd)
			say_written("initrd segments", builds[i]->recipe->outputs.initrd, builds[i]->n_nodes);
	for (size_t i = 0; i < n_bundles && r == 0 && verbosity > 0; i++)
		say_written("PXE bundle", bundles[i].path, bundles[i].n_nodes);
	for (int i = 0; i < a->n_rest && r == 0 && verbosity > 0; i++)
		if (builds[i]->recipe->outputs.iso)
			say_written("ISO", builds[i]->recipe->outputs.iso, builds[i]->n_nodes);
	for (size_t i = 0; i < n_bundles; i++)
		free(bundles[i].builds);
	free(bundles);
	for (int i = 0; i < a->n_rest; i++)
		build_free(builds[i]);
	free(builds);
	return report(&d, r);
}

/* render needs certificate paths and PEMs; before the first build there is
 * no PKI yet, so a throwaway one in a temp dir stands in for it. */
static int render_pki(struct build *b, char **ret_tmpdir, struct diags *d) {
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
	if (verbosity > 0)
		fprintf(stderr, "note: no PKI in '%s' yet: rendered with a throwaway one (run 'dlws-mkimage certs')\n",
			b->recipe->pki.dir);
	return r;
}

static int cmd_render(struct cmd_args *a) {
	if (a->n_rest != 1) {
		fputs("dlws-mkimage: render needs exactly one RECIPE (see --help)\n", stderr);
		return EXIT_USAGE;
	}
	struct build_opts opts = make_opts(a);
	struct diags d = DIAGS_INIT;
	struct build *b = NULL;
	char *tmpdir = NULL;
	int r = build_load(a->rest[0], &opts, &b, &d);
	if (r == 0 && a->node && !cluster_find_node(b->cluster, a->node)) {
		diag_error(&d, NULL, "no node '%s' in '%s'", a->node, b->cluster->path);
		r = -ENOENT;
	}
	if (r == 0)
		r = render_pki(b, &tmpdir, &d);
	/* Render everything first: a dry run prints all of it or none. */
	struct buf out = BUF_INIT;
	for (size_t i = 0; r == 0 && i < b->n_nodes; i++) {
		const struct node *n = b->nodes[i];
		if (a->node && !streq(a->node, n->hostname))
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
	free(tmpdir);
	build_free(b);
	return report(&d, r);
}

static void print_cert_list(const struct pki_cert_info *v, size_t n, time_t now) {
	for (size_t i = 0; i < n; i++) {
		char date[32];
		struct tm tm;
		gmtime_r(&v[i].not_after, &tm);
		strftime(date, sizeof(date), "%Y-%m-%d", &tm);
		long days = (long)((v[i].not_after - now) / 86400);
		printf("%s\n  subject: %s\n  issuer:  %s\n  expires: %s (%ld days)\n", v[i].file, v[i].subject, v[i].issuer, date, days);
		if (v[i].n_sans) {
			printf("  sans:    ");
			for (size_t k = 0; k < v[i].n_sans; k++)
				printf("%s%s", k ? ", " : "", v[i].sans[k]);
			putchar('\n');
		}
	}
}

/* The token's public part and where it reaches; the secret stays hidden. */
static void print_token(const struct pki_token_info *t) {
	printf("bootstrap-token\n  id:      %s\n  secret:  (hidden)\n  expires: never\n  used in: ", t->id);
	for (size_t i = 0; i < t->used_in.n; i++)
		printf("%s%s", i ? ", " : "", t->used_in.v[i]);
	printf("%s\n  on nodes: workers' %s (whoever holds a worker's medium can join a worker), "
	       "masters' %s\n", t->used_in.n ? "" : "(nothing yet)", PKI_NODE_BOOTSTRAP_KUBELET_CONF,
	       PKI_NODE_BOOTSTRAP_TOKEN_SECRET);
}

static int cmd_certs(struct cmd_args *a) {
	if (a->n_rest != 1) {
		fputs("dlws-mkimage: certs needs exactly one RECIPE (see --help)\n", stderr);
		return EXIT_USAGE;
	}
	if (a->list && a->rotate_token) {
		fputs("dlws-mkimage: certs takes --list or --rotate-token, not both (see --help)\n", stderr);
		return EXIT_USAGE;
	}
	struct build_opts opts = make_opts(a);
	struct diags d = DIAGS_INIT;
	struct build *b = NULL;
	int r = build_load(a->rest[0], &opts, &b, &d);
	if (r == 0 && a->list) {
		struct pki_cert_info *v = NULL;
		size_t n = 0;
		r = pki_list(b->pki.dir, &v, &n, &d);
		if (r == 0)
			print_cert_list(v, n, opts.now);
		pki_cert_info_free(v, n);
		struct pki_token_info t = { 0 };
		if (r == 0)
			r = pki_token_info(b->pki.dir, &t, &d);
		if (r == 0)
			print_token(&t);
		else if (r == -ENOENT)
			r = 0;  /* a PKI made before tokens: `certs` makes one */
		pki_token_info_release(&t);
	} else if (r == 0) {
		b->pki.rotate_token = a->rotate_token;
		r = ensure_pki(b, true, &d);
	}
	build_free(b);
	return report(&d, r);
}

static const struct {
	const char *name;
	int (*fn)(struct cmd_args *a);
} commands[] = {
	{ "build", cmd_build },
	{ "render", cmd_render },
	{ "certs", cmd_certs },
};

int main(int argc, char **argv) {
	static const struct option longopts[] = {
		{ "set", required_argument, NULL, 's' },
		{ "node", required_argument, NULL, 'n' },
		{ "list", no_argument, NULL, 'l' },
		{ "rotate-token", no_argument, NULL, OPT_ROTATE_TOKEN },
		{ "quiet", no_argument, NULL, 'q' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 },
	};
	struct cmd_args a = { .sets = STRV_INIT };
	int c;
	while ((c = getopt_long(argc, argv, "s:n:lqvhV", longopts, NULL)) != -1) {
		switch (c) {
		case 's': strv_push(&a.sets, optarg); break;
		case 'n': a.node = optarg; break;
		case 'l': a.list = true; break;
		case OPT_ROTATE_TOKEN: a.rotate_token = true; break;
		case 'q': verbosity = 0; break;
		case 'v': verbosity = 2; break;
		case 'h': fputs(usage_text, stdout); strv_release(&a.sets); return EXIT_SUCCESS;
		case 'V': puts("dlws-mkimage " DLWS_VERSION); strv_release(&a.sets); return EXIT_SUCCESS;
		default:
			fputs("try 'dlws-mkimage --help'\n", stderr);
			strv_release(&a.sets);
			return EXIT_USAGE;
		}
	}
	a.rest = argv + optind;
	a.n_rest = argc - optind;
	int (*fn)(struct cmd_args *) = cmd_build;
	if (a.n_rest > 0) {
		for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
			if (streq(a.rest[0], commands[i].name)) {
				fn = commands[i].fn;
				a.rest++;
				a.n_rest--;
				break;
			}
	}
	if (a.n_rest == 0) {
		fputs(usage_text, stderr);
		strv_release(&a.sets);
		return EXIT_USAGE;
	}
	int r = fn(&a);
	strv_release(&a.sets);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "dlws-mkimage: cannot write to standard output: %s\n", strerror(errno));
		return EXIT_FAILURE;
	}
	return r;
}
