/* dlws-mkimage verify: every checksum inside an output, recomputed. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "cmd.h"
#include "reader.h"

static const char usage[] =
	"usage: dlws-mkimage verify OUTPUT\n"
	"\n"
	"Recomputes the checksum of every file every payload manifest inside OUTPUT\n"
	"lists (and, for a PXE tree, its tar or an initrd directory, every file of\n"
	"SHA256SUMS), reading the output without unpacking or mounting it. OUTPUT is a\n"
	"PXE tree or its .tar, an initrd directory, a hybrid ISO, one segment\n"
	"(.cpio.zst|xz|gz) or one disk (its OEM/dlws-manifest, read through a read-only\n"
	"libguestfs appliance). Names each file that differs or is missing.\n"
	"\n"
	"options:\n"
	"  -q, --quiet           print errors only\n"
	"  -v, --verbose         print every step\n"
	"  -h, --help            show this help\n"
	"\n"
	"exit status: 0 every file matches, 1 a file differs, is missing or the\n"
	"output cannot be read, 2 usage.\n";

int cmd_verify(int argc, char **argv, struct cmd_ctx *ctx) {
	static const struct option longopts[] = { CMD_COMMON_LONGOPTS, { 0 } };
	int c;
	optind = 0;
	while ((c = getopt_long(argc, argv, CMD_COMMON_SHORTOPTS, longopts, NULL)) != -1) {
		int k = cmd_common_option(c, ctx, "verify", usage);
		if (k >= 0)
			return k;
	}
	if (argc - optind != 1)
		return cmd_usage_error("verify", "needs exactly one OUTPUT");
	struct diags d = DIAGS_INIT;
	struct reader_output o;
	int r = reader_open(argv[optind], &o, &d);
	if (r < 0)
		return cmd_report(&d, r);
	struct strv problems = STRV_INIT;
	size_t checked = 0, elsewhere = 0;
	reader_verify(&o, &problems, &checked, &elsewhere);
	for (size_t i = 0; i < problems.n; i++)
		diag_error(&d, NULL, "%s", problems.v[i]);
	if (problems.n)
		diag_error(&d, NULL, "'%s': %zu of %zu files failed verification", o.path, problems.n, problems.n + checked);
	else if (ctx->verbosity > 0) {
		printf("%s: verified %zu files\n", o.path, checked);
		if (elsewhere)
			printf("%s: %zu files the manifests keep on a boot medium were not checked (verify the ISO)\n", o.path, elsewhere);
	}
	r = problems.n ? -EBADMSG : 0;
	strv_release(&problems);
	reader_release(&o);
	return cmd_report(&d, r);
}
