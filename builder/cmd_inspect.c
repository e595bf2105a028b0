/* dlws-mkimage inspect: what an output holds, read back from it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "cmd.h"
#include "inspect.h"
#include "reader.h"

#define OPT_JSON 256

static const char usage[] =
	"usage: dlws-mkimage inspect [--json] [-v] OUTPUT\n"
	"\n"
	"Shows what an output holds: its type, build metadata (tool version, build\n"
	"time, cluster, recipes with roles, nodes, payload and input sums), boot entries\n"
	"(El Torito, isolinux, pxelinux, GRUB and iPXE, per-node MACs), the payload\n"
	"manifests, every certificate (subject, SANs, expiry) and the rendered\n"
	"configs with secrets masked. OUTPUT is a PXE tree or its .tar, an initrd\n"
	"directory, a hybrid ISO, one payload segment (.cpio.zst|xz|gz) or one disk (raw or\n"
	"qcow2, read through a read-only libguestfs appliance); it is read, never\n"
	"unpacked or mounted on this machine. Private keys and token secrets are\n"
	"never shown.\n"
	"\n"
	"options:\n"
	"      --json            the same as one JSON object (shape in dlws-mkimage(1),\n"
	"                        JSON OUTPUT)\n"
	"  -q, --quiet           print errors only\n"
	"  -v, --verbose         every manifest line, every menu entry, per-MAC menus and\n"
	"                        the configs' text\n"
	"  -h, --help            show this help\n"
	"\n"
	"exit status: 0 shown, 1 unreadable or damaged (what could be read is shown).\n";

int cmd_inspect(int argc, char **argv, struct cmd_ctx *ctx) {
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, OPT_JSON },
		CMD_COMMON_LONGOPTS,
		{ 0 },
	};
	bool json = false;
	int c;
	optind = 0;
	while ((c = getopt_long(argc, argv, CMD_COMMON_SHORTOPTS, longopts, NULL)) != -1) {
		if (c == OPT_JSON)
			json = true;
		else {
			int k = cmd_common_option(c, ctx, "inspect", usage);
			if (k >= 0)
				return k;
		}
	}
	if (argc - optind != 1)
		return cmd_usage_error("inspect", "needs exactly one OUTPUT");
	struct diags d = DIAGS_INIT;
	struct reader_output o;
	int r = reader_open(argv[optind], &o, &d);
	if (r < 0)
		return cmd_report(&d, r);
	struct inspect_opts opts = { .manifest_entries = ctx->verbosity > 1, .config_text = ctx->verbosity > 1, .now = time(NULL) };
	struct strv problems = STRV_INIT;
	char *text = json ? inspect_json(&o, &opts, &problems) : inspect_text(&o, &opts, &problems);
	if (ctx->verbosity > 0 || json)
		fputs(text, stdout);
	free(text);
	for (size_t i = 0; i < problems.n; i++)
		diag_error(&d, NULL, "%s", problems.v[i]);
	r = problems.n ? -EINVAL : 0;
	strv_release(&problems);
	reader_release(&o);
	return cmd_report(&d, r);
}
