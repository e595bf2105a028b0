/* What the commands share: common options, reporting, build options. */
#include "cmd.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int cmd_common_option(int c, struct cmd_ctx *ctx, const char *name, const char *usage) {
	switch (c) {
	case 'q': ctx->verbosity = 0; return -1;
	case 'v': ctx->verbosity = 2; return -1;
	case 'h': fputs(usage, stdout); return EXIT_SUCCESS;
	default:
		fprintf(stderr, "try 'dlws-mkimage %s --help'\n", name);
		return EXIT_USAGE;
	}
}

int cmd_usage_error(const char *name, const char *fmt, ...) {
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "dlws-mkimage: %s: ", name);
	vfprintf(stderr, fmt, ap);
	fputs(" (see --help)\n", stderr);
	va_end(ap);
	return EXIT_USAGE;
}

void cmd_progress_init(const struct cmd_ctx *ctx, bool at_once, struct progress *ret) {
	double delay = PROGRESS_DELAY_S;
	const char *s = getenv("DLWS_PROGRESS_DELAY");
	if (s && *s) {
		char *end;
		double v = strtod(s, &end);
		if (!*end && v >= 0 && v < 1e6)
			delay = v;
	}
	progress_init(ret, ctx->verbosity > 0 && isatty(STDERR_FILENO), at_once ? 0 : delay);
}

int cmd_report(struct diags *d, int r) {
	diags_print(d, stderr);
	diags_release(d);
	return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}

/* SOURCE_DATE_EPOCH: unset or empty is 0 (and no build time is
 * recorded); anything but a decimal count of seconds is refused, as the
 * reproducible-builds specification asks. */
static int source_date_epoch(time_t *ret, bool *ret_set, struct diags *d) {
	const char *s = getenv("SOURCE_DATE_EPOCH");
	*ret = 0;
	*ret_set = false;
	if (!s || !*s)
		return 0;
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (*end || errno || v < 0 || s[0] < '0' || s[0] > '9' || v > (long long)253402300799) {
		diag_error(d, NULL, "SOURCE_DATE_EPOCH is '%s', not a count of seconds since 1970", s);
		return -EINVAL;
	}
	*ret = (time_t)v;
	*ret_set = true;
	return 0;
}

int cmd_build_opts(const char *const *sets, size_t n_sets, struct build_opts *ret, struct diags *d) {
	*ret = (struct build_opts){
		.sets = sets,
		.n_sets = n_sets,
		.now = time(NULL),
	};
	return source_date_epoch(&ret->epoch, &ret->epoch_set, d);
}

static void lock_waiting(void *ctx, const char *path, const char *who) {
	const struct cmd_ctx *c = ctx;
	if (c->verbosity > 0)
		fprintf(stderr, "waiting for %s to finish with '%s'\n", who, path);
}

int cmd_lock(struct build *const *builds, size_t n, bool outputs, bool shared, bool no_wait, const char *what,
	     const struct cmd_ctx *ctx, struct lock_set *ret, struct diags *d) {
	struct strv paths = STRV_INIT;
	for (size_t i = 0; i < n; i++) {
		const struct recipe *rc = builds[i]->recipe;
		strv_push(&paths, rc->pki.dir);
		const char *out[] = { rc->outputs.initrd, rc->outputs.pxe, rc->outputs.iso, rc->outputs.disk };
		for (size_t k = 0; outputs && k < sizeof(out) / sizeof(*out); k++)
			if (out[k])
				strv_push(&paths, out[k]);
	}
	const struct lock_opts o = {
		.no_wait = no_wait, .shared = shared, .what = what, .waiting = lock_waiting, .ctx = (void *)ctx,
	};
	int r = lock_set_take(ret, &paths, &o, d);
	strv_release(&paths);
	return r;
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

/* The builds see their PKI where it is again. */
static void pki_dirs_restore(struct cmd_pki *p) {
	for (size_t i = 0; i < p->n_builds; i++)
		p->builds[i]->pki.dir = p->builds[i]->recipe->pki.dir;
}

int cmd_pki_prepare(struct build *const *builds, size_t n, const struct cmd_ctx *ctx, bool all, struct cmd_pki *ret,
		    struct diags *d) {
	*ret = (struct cmd_pki){
		.stages = xcalloc(n ? n : 1, sizeof(*ret->stages)),
		.reports = xcalloc(n ? n : 1, sizeof(*ret->reports)),
		.builds = builds,
		.n_builds = n,
	};
	/* One stage per directory, however the recipes spell it: two stages of
	 * one directory would remove each other's work. */
	char **keys = xcalloc(n ? n : 1, sizeof(*keys));
	int r = 0;
	for (size_t i = 0; i < n && r == 0; i++)
		r = lock_file_for(builds[i]->recipe->pki.dir, true, &keys[i], d);
	for (size_t i = 0; i < n && r == 0; i++) {
		size_t first = 0;
		while (!streq(keys[first], keys[i]))
			first++;
		if (first < i)
			continue;
		/* Looked at where it is first: staging links every file of
		 * the directory (a cluster of 1,000 nodes has 2,000), for a
		 * run that most often changes nothing. */
		struct build *b = builds[i];
		struct pki_report *rep = &ret->reports[ret->n_reports++];
		r = pki_unchanged(&b->pki, rep, d);
		if (r != 0) {
			r = r < 0 ? r : 0;
			continue;
		}
		struct pki_stage st;
		r = pki_stage_begin(builds[i]->recipe->pki.dir, &st, d);
		if (r < 0)
			break;
		b->pki.dir = st.tmp;
		size_t first_diag = d->n;
		r = pki_ensure(&b->pki, rep, d);
		diags_rename_dir(d, first_diag, st.tmp, st.dir);
		if (r < 0 || !pki_report_changed(rep)) {
			b->pki.dir = b->recipe->pki.dir;
			pki_stage_abort(&st);
			continue;
		}
		ret->stages[ret->n++] = st;
		for (size_t k = i + 1; k < n; k++)
			if (streq(keys[k], keys[i]))
				builds[k]->pki.dir = st.tmp;
	}
	for (size_t i = 0; i < n; i++)
		free(keys[i]);
	free(keys);
	if (r < 0)
		cmd_pki_abort(ret);
	return r;
}

static void cmd_pki_release(struct cmd_pki *p) {
	for (size_t i = 0; i < p->n; i++)
		pki_stage_abort(&p->stages[i]);
	for (size_t i = 0; i < p->n_reports; i++)
		pki_report_release(&p->reports[i]);
	pki_dirs_restore(p);
	free(p->stages);
	free(p->reports);
	*p = (struct cmd_pki)CMD_PKI_INIT;
}

int cmd_pki_commit(struct cmd_pki *p, const struct cmd_ctx *ctx, bool all, struct diags *d) {
	int r = 0;
	for (size_t i = 0; i < p->n && r == 0; i++)
		r = pki_stage_commit(&p->stages[i], d);
	for (size_t i = 0; i < p->n_reports && r == 0 && ctx->verbosity > 0; i++)
		print_pki_report(&p->reports[i], all || ctx->verbosity > 1);
	cmd_pki_release(p);
	return r;
}

void cmd_pki_abort(struct cmd_pki *p) {
	cmd_pki_release(p);
}
