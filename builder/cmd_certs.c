/* dlws-mkimage certs: the cluster PKI alone (create, refresh, list). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmd.h"
#include "jsonout.h"
#include "pki.h"
#include "util.h"

#define OPT_ROTATE_TOKEN 256    /* long options without a short one */
#define OPT_JSON 257
#define OPT_NO_WAIT 258

static const char usage[] =
	"usage: dlws-mkimage certs [--list | --rotate-token] RECIPE\n"
	"\n"
	"Creates the cluster PKI the recipe names, or refreshes it (re-issues what\n"
	"changed or expires soon), and writes nothing else.\n"
	"\n"
	"options:\n"
	"  -l, --list            show subject, SANs and expiry of every certificate,\n"
	"                        and the bootstrap token's id (never its secret)\n"
	"      --json            with --list: the same as one JSON object (shape in\n"
	"                        dlws-mkimage(1), JSON OUTPUT)\n"
	"      --rotate-token    make a new bootstrap token (workers join with it)\n"
	CMD_NO_WAIT_HELP
	"  -q, --quiet           print errors only\n"
	"  -v, --verbose         print every step\n"
	"  -h, --help            show this help\n";

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

/* --list --json: {"pki_dir", "certificates": [{file, subject, issuer, sans,
 * not_after, days_left}], "token": {id, used_in} | null}; the secret never
 * (the man page's JSON OUTPUT). */
static void print_list_json(const char *dir, const struct pki_cert_info *v, size_t n, const struct pki_token_info *t,
			    time_t now) {
	json_object *root = json_checked(json_object_new_object());
	json_object_object_add(root, "pki_dir", json_str(dir));
	json_object *certs = json_checked(json_object_new_array());
	for (size_t i = 0; i < n; i++) {
		json_object *o = json_checked(json_object_new_object());
		json_object_object_add(o, "file", json_str(v[i].file));
		json_object_object_add(o, "subject", json_str(v[i].subject));
		json_object_object_add(o, "issuer", json_str(v[i].issuer));
		json_object *sans = json_checked(json_object_new_array());
		for (size_t k = 0; k < v[i].n_sans; k++)
			json_object_array_add(sans, json_str(v[i].sans[k]));
		json_object_object_add(o, "sans", sans);
		json_object_object_add(o, "not_after", json_time(v[i].not_after));
		json_object_object_add(o, "days_left", json_i64((int64_t)((v[i].not_after - now) / 86400)));
		json_object_array_add(certs, o);
	}
	json_object_object_add(root, "certificates", certs);
	json_object *token = NULL;
	if (t && t->id) {
		token = json_checked(json_object_new_object());
		json_object_object_add(token, "id", json_str(t->id));
		json_object_object_add(token, "used_in", json_str_array(&t->used_in));
	}
	json_object_object_add(root, "token", token);
	json_print(root);
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

int cmd_certs(int argc, char **argv, struct cmd_ctx *ctx) {
	static const struct option longopts[] = {
		{ "list", no_argument, NULL, 'l' },
		{ "rotate-token", no_argument, NULL, OPT_ROTATE_TOKEN },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "no-wait", no_argument, NULL, OPT_NO_WAIT },
		CMD_COMMON_LONGOPTS,
		{ 0 },
	};
	bool list = false, rotate_token = false, json = false, no_wait = false;
	int c;
	optind = 0;
	while ((c = getopt_long(argc, argv, "l" CMD_COMMON_SHORTOPTS, longopts, NULL)) != -1) {
		if (c == 'l')
			list = true;
		else if (c == OPT_ROTATE_TOKEN)
			rotate_token = true;
		else if (c == OPT_JSON)
			json = true;
		else if (c == OPT_NO_WAIT)
			no_wait = true;
		else {
			int k = cmd_common_option(c, ctx, "certs", usage);
			if (k >= 0)
				return k;
		}
	}
	if (argc - optind != 1)
		return cmd_usage_error("certs", "needs exactly one RECIPE");
	if (list && rotate_token)
		return cmd_usage_error("certs", "takes --list or --rotate-token, not both");
	if (json && !list)
		return cmd_usage_error("certs", "--json goes with --list");
	struct build_opts opts;
	struct diags d = DIAGS_INIT;
	struct build *b = NULL;
	struct lock_set locks = LOCK_SET_INIT;
	int r = cmd_build_opts(NULL, 0, &opts, &d);
	if (r == 0)
		r = build_load(argv[optind], &opts, &b, &d);
	/* A listing reads the PKI as a whole: not while a build changes it. */
	if (r == 0)
		r = cmd_lock(&b, 1, false, list, no_wait, "certs", ctx, &locks, &d);
	if (r == 0 && list) {
		struct pki_cert_info *v = NULL;
		size_t n = 0;
		struct pki_token_info t = { 0 };
		r = pki_list(b->pki.dir, &v, &n, &d);
		int tr = r == 0 ? pki_token_info(b->pki.dir, &t, &d) : 0;
		if (tr < 0 && tr != -ENOENT)
			r = tr;         /* -ENOENT: a PKI made before tokens; `certs` makes one */
		if (r == 0 && json)
			print_list_json(b->pki.dir, v, n, tr == 0 ? &t : NULL, opts.now);
		else if (r == 0) {
			print_cert_list(v, n, opts.now);
			if (tr == 0)
				print_token(&t);
		}
		pki_cert_info_free(v, n);
		pki_token_info_release(&t);
	} else if (r == 0) {
		b->pki.rotate_token = rotate_token;
		struct cmd_pki pki = CMD_PKI_INIT;
		r = cmd_pki_prepare(&b, 1, ctx, true, &pki, &d);
		if (r == 0)
			r = cmd_pki_commit(&pki, ctx, true, &d);
		cmd_pki_abort(&pki);
	}
	lock_set_release(&locks);
	build_free(b);
	return cmd_report(&d, r);
}

