/* dlws-mkimage publish: puts a PXE bundle on a boot server as a new
 * release and switches `current` to it; lists and rolls back releases. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "cmd.h"
#include "jsonout.h"
#include "progress.h"
#include "publish.h"
#include "util.h"

#define OPT_NO_WAIT 256         /* long options without a short one */
#define OPT_JSON 257

static const char usage[] =
	"usage: dlws-mkimage publish [OPTIONS] BUNDLE DEST\n"
	"       dlws-mkimage publish --list [--json] DEST\n"
	"       dlws-mkimage publish --rollback[=ID] DEST\n"
	"\n"
	"Publishes a PXE bundle (the tree outputs.pxe names, or its .tar) to DEST, a\n"
	"boot server's root: a local directory, or [USER@]HOST:PATH reached with rsync\n"
	"over ssh. The tree lands in DEST/releases/<id>/, is checked there against its\n"
	"SHA256SUMS, and then DEST/current, the path dnsmasq's tftp-root and nginx's\n"
	"root name, is switched to it in one atomic step. Clients never see a partial\n"
	"tree, even when a publish is killed. The release id goes to standard output.\n"
	"\n"
	"options:\n"
	"  -k, --keep N          keep the newest N releases (default 5); the current\n"
	"                        one and the one before it are always kept\n"
	"  -l, --list            show DEST's releases: id, date, size, roles and nodes\n"
	"                        (* marks the current one)\n"
	"      --json            with --list: the same as one JSON object (shape in\n"
	"                        dlws-mkimage(1), JSON OUTPUT)\n"
	"  -r, --rollback[=ID]   make the release before the current one current again,\n"
	"                        or release ID; it is checked against its SHA256SUMS first\n"
	"      --no-wait         fail at once when another publish to DEST is running\n"
	"                        (the default is to wait for it)\n"
	"  -e, --ssh CMD         the ssh command for a remote DEST, e.g.\n"
	"                        'ssh -p 2222 -i ~/.ssh/boot' (default: $DLWS_MKIMAGE_SSH,\n"
	"                        else ssh); rsync gets it as -e\n"
	"  -q, --quiet           print errors only\n"
	"  -v, --verbose         print every step\n"
	"  -h, --help            show this help\n"
	"\n"
	"A remote server needs sh, coreutils, find, flock(1) and rsync.\n"
	"exit status: 0 success (also when nothing changed), 1 failure, 2 usage.\n";

static void print_note(void *ctx, bool verbose, const char *msg) {
	const struct cmd_ctx *c = ctx;
	if (c->verbosity >= (verbose ? 2 : 1))
		fprintf(stderr, "%s\n", msg);
}

/* The --list date, UTC. */
static void format_date(time_t t, char out[32]) {
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, 32, "%Y-%m-%d %H:%M:%S", &tm);
}

static void print_list(const struct publish_release *v, size_t n) {
	printf("  %-25s  %-19s  %9s  %s\n", "RELEASE", "PUBLISHED (UTC)", "SIZE", "SERVES");
	for (size_t i = 0; i < n; i++) {
		char date[32], size[32];
		format_date(v[i].published, date);
		progress_size(v[i].size, size);
		struct buf serves = BUF_INIT;
		for (size_t k = 0; k < v[i].roles.n; k++)
			buf_printf(&serves, "%s%s", k ? ", " : "", v[i].roles.v[k]);
		if (!v[i].roles.n)
			buf_puts(&serves, "no roles");
		for (size_t k = 0; k < v[i].nodes.n; k++)
			buf_printf(&serves, "%s%s", k ? ", " : "; nodes ", v[i].nodes.v[k]);
		printf("%c %-25s  %-19s  %9s  %s\n", v[i].current ? '*' : ' ', v[i].id, date, size, serves.data);
		buf_release(&serves);
	}
}

/* --list --json: {"dest": ..., "releases": [{id, published, size, current,
 * roles, nodes}]}, oldest first (the man page's JSON OUTPUT). */
static void print_list_json(const struct publish_dest *dest, const struct publish_release *v, size_t n) {
	json_object *root = json_checked(json_object_new_object());
	json_object_object_add(root, "dest", json_str(dest->label));
	json_object *list = json_checked(json_object_new_array());
	for (size_t i = 0; i < n; i++) {
		json_object *o = json_checked(json_object_new_object());
		json_object_object_add(o, "id", json_str(v[i].id));
		json_object_object_add(o, "published", json_time(v[i].published));
		json_object_object_add(o, "size", json_i64((int64_t)v[i].size));
		json_object_object_add(o, "current", json_boolean(v[i].current));
		json_object_object_add(o, "roles", json_str_array(&v[i].roles));
		json_object_object_add(o, "nodes", json_str_array(&v[i].nodes));
		json_object_array_add(list, o);
	}
	json_object_object_add(root, "releases", list);
	json_print(root);
}

static int do_list(const struct publish_dest *dest, bool json, const struct cmd_ctx *ctx, struct diags *d) {
	struct publish_release *v = NULL;
	size_t n = 0;
	int r = publish_list(dest, &v, &n, d);
	if (r == 0 && json)
		print_list_json(dest, v, n);
	else if (r == 0 && n)
		print_list(v, n);
	else if (r == 0 && ctx->verbosity > 0)
		fprintf(stderr, "no releases in '%s'\n", dest->label);
	publish_releases_free(v, n);
	return r;
}

static void say_published(const char *bundle, const struct publish_dest *dest, const struct publish_result *res,
			  const struct publish_opts *o) {
	if (res->unchanged) {
		fprintf(stderr, "'%s' is the current release %s of '%s' already: nothing changed\n", bundle, res->id, dest->label);
		return;
	}
	char size[32];
	progress_size(res->size, size);
	fprintf(stderr, "published '%s' to '%s' as %s (%zu files, %s", bundle, dest->label, res->id, res->n_files, size);
	if (res->n_linked)
		fprintf(stderr, ", %zu hard-linked from kept releases", res->n_linked);
	fprintf(stderr, "); current: %s -> %s\n", res->previous ? res->previous : "(none)", res->id);
	for (size_t i = 0; i < res->removed.n; i++)
		fprintf(stderr, "removed release %s (--keep %u)\n", res->removed.v[i], o->keep);
}

int cmd_publish(int argc, char **argv, struct cmd_ctx *ctx) {
	static const struct option longopts[] = {
		{ "keep", required_argument, NULL, 'k' },
		{ "list", no_argument, NULL, 'l' },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "rollback", optional_argument, NULL, 'r' },
		{ "no-wait", no_argument, NULL, OPT_NO_WAIT },
		{ "ssh", required_argument, NULL, 'e' },
		CMD_COMMON_LONGOPTS,
		{ 0 },
	};
	struct publish_opts o = { .keep = PUBLISH_KEEP_DEFAULT, .note = print_note, .note_ctx = ctx };
	bool list = false, json = false, rollback = false, keep_given = false;
	const char *rollback_id = NULL, *ssh = NULL;
	int c;
	optind = 0;
	while ((c = getopt_long(argc, argv, "k:lr::e:" CMD_COMMON_SHORTOPTS, longopts, NULL)) != -1) {
		switch (c) {
		case 'k': {
			char *end;
			errno = 0;
			unsigned long v = strtoul(optarg, &end, 10);
			if (errno || end == optarg || *end || optarg[0] == '-' || v < 1 || v > 100000)
				return cmd_usage_error("publish", "--keep takes a number of releases, at least 1, not '%s'", optarg);
			o.keep = (unsigned)v;
			keep_given = true;
			break;
		}
		case 'l': list = true; break;
		case OPT_JSON: json = true; break;
		case 'r': rollback = true; rollback_id = optarg; break;
		case OPT_NO_WAIT: o.no_wait = true; break;
		case 'e': ssh = optarg; break;
		default: {
			int k = cmd_common_option(c, ctx, "publish", usage);
			if (k >= 0)
				return k;
		}
		}
	}
	int n_args = argc - optind;
	if (list && rollback)
		return cmd_usage_error("publish", "takes --list or --rollback, not both");
	if (json && !list)
		return cmd_usage_error("publish", "--json goes with --list");
	if (keep_given && (list || rollback))
		return cmd_usage_error("publish", "--keep applies to a publish, not to --%s", list ? "list" : "rollback");
	if ((list || rollback) && n_args != 1)
		return cmd_usage_error("publish", "--%s needs exactly one DEST", list ? "list" : "rollback");
	if (!list && !rollback && n_args != 2)
		return cmd_usage_error("publish", "needs a BUNDLE and a DEST");
	if (rollback_id && !*rollback_id)
		return cmd_usage_error("publish", "--rollback= needs a release id (see --list)");
	const char *dest_arg = argv[argc - 1];

	struct diags d = DIAGS_INIT;
	struct publish_dest dest = PUBLISH_DEST_INIT;
	int r = publish_dest_parse(dest_arg, ssh, &dest, &d);
	if (r < 0)
		return cmd_report(&d, r);
	o.now = time(NULL);
	struct publish_result res = PUBLISH_RESULT_INIT;
	if (list) {
		r = do_list(&dest, json, ctx, &d);
	} else if (rollback) {
		r = publish_rollback(&dest, rollback_id, &o, &res, &d);
		if (r == 0 && ctx->verbosity > 0) {
			if (res.unchanged)
				fprintf(stderr, "%s is the current release of '%s' already: nothing changed\n", res.id, dest.label);
			else
				fprintf(stderr, "rolled back '%s': current: %s -> %s\n", dest.label, res.previous ? res.previous : "(none)",
					res.id);
		}
	} else {
		r = publish_bundle(argv[optind], &dest, &o, &res, &d);
		if (r == 0 && ctx->verbosity > 0)
			say_published(argv[optind], &dest, &res, &o);
	}
	if (r == 0 && res.id)
		puts(res.id);
	publish_result_release(&res);
	publish_dest_release(&dest);
	return cmd_report(&d, r);
}
