/* What the commands share: common options, reporting, build options. */
#include "cmd.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

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

int cmd_report(struct diags *d, int r) {
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

struct build_opts cmd_build_opts(const char *const *sets, size_t n_sets) {
	return (struct build_opts){
		.sets = sets,
		.n_sets = n_sets,
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

int cmd_ensure_pki(const struct build *b, const struct cmd_ctx *ctx, bool all, struct diags *d) {
	struct pki_report rep = PKI_REPORT_INIT;
	int r = pki_ensure(&b->pki, &rep, d);
	if (r == 0 && ctx->verbosity > 0)
		print_pki_report(&rep, all || ctx->verbosity > 1);
	pki_report_release(&rep);
	return r;
}
