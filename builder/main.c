/* dlws-mkimage: the command table. Options before the command (-q, -v,
 * --help, --version) are the tool's; each command parses the rest of its
 * command line itself (cmd_<name>.c). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cmd.h"
#include "util.h"

static const char usage_text[] =
	"usage: dlws-mkimage [-q|-v] RECIPE...                build every output the recipes list\n"
	"       dlws-mkimage [-q|-v] COMMAND [OPTIONS] ARGS...\n"
	"\n"
	"Builds self-contained boot media for DL Workspace Kubernetes clusters: renders\n"
	"the cloud-config, creates or reuses the cluster PKI and writes the payload, so\n"
	"that nothing is downloaded at install time.\n"
	"\n"
	"commands:\n"
	"  init --name NAME --master HOST=IP[,MAC] [OPTIONS] DIR\n"
	"                                write a new cluster's recipes, templates and overlays\n"
	"  build RECIPE...               the same as without a command\n"
	"  render [--set K=V] [--node HOST] RECIPE\n"
	"                                print the rendered configs; writes nothing\n"
	"  certs [--list | --rotate-token] RECIPE\n"
	"                                create, refresh or list the cluster PKI\n"
	"  publish [OPTIONS] BUNDLE DEST put a PXE bundle on a boot server (--list, --rollback)\n"
	"  flash [--yes] IMAGE DEVICE    write an image to a USB stick safely, then verify it\n"
	"  inspect [--json] OUTPUT       show what an output holds (build, boot entries, certs, configs)\n"
	"  verify OUTPUT                 recompute every checksum inside an output\n"
	"\n"
	"options:\n"
	"  -q, --quiet           print errors only\n"
	"  -v, --verbose         print every step\n"
	"  -h, --help            show this help ('dlws-mkimage COMMAND --help' for a command's)\n"
	"  -V, --version         show the version\n"
	"\n"
	"exit status: 0 success, 1 failure, 2 usage (some commands document more).\n"
	"environment: SOURCE_DATE_EPOCH sets every timestamp inside outputs (default 0).\n";

static const struct {
	const char *name;
	int (*fn)(int argc, char **argv, struct cmd_ctx *ctx);
} commands[] = {
	{ "init", cmd_init },
	{ "build", cmd_build },
	{ "render", cmd_render },
	{ "certs", cmd_certs },
	{ "publish", cmd_publish },
	{ "flash", cmd_flash },
	{ "inspect", cmd_inspect },
	{ "verify", cmd_verify },
};

/* A first word that names no command and no file, and does not look like
 * a path, is a mistyped command rather than a missing recipe. */
static int unknown_command(const char *word) {
	const char *names[ARRAY_SIZE(commands)];
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		names[i] = commands[i].name;
	const char *m = closest_match(word, names, ARRAY_SIZE(names));
	if (m)
		fprintf(stderr, "dlws-mkimage: unknown command '%s' (did you mean '%s'?)\n", word, m);
	else
		fprintf(stderr, "dlws-mkimage: unknown command '%s' (see --help)\n", word);
	return EXIT_USAGE;
}

int main(int argc, char **argv) {
	static const struct option longopts[] = {
		{ "quiet", no_argument, NULL, 'q' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 },
	};
	struct cmd_ctx ctx = { .verbosity = 1 };
	int c, first;
	/* '+': stop at the first word, the command's options are its own. An
	 * option the tool does not know (--set before the recipes) is build's:
	 * the whole line goes to build. */
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+qvhV", longopts, NULL)) != -1) {
		switch (c) {
		case 'q': ctx.verbosity = 0; break;
		case 'v': ctx.verbosity = 2; break;
		case 'h': fputs(usage_text, stdout); return EXIT_SUCCESS;
		case 'V': puts("dlws-mkimage " DLWS_VERSION); return EXIT_SUCCESS;
		default:
			opterr = 1;
			argv[0] = "dlws-mkimage build";
			return cmd_build(argc, argv, &ctx);
		}
	}
	opterr = 1;
	first = optind;
	if (first >= argc) {
		fputs(usage_text, stderr);
		return EXIT_USAGE;
	}
	int r = -1;
	for (size_t i = 0; i < ARRAY_SIZE(commands) && r < 0; i++)
		if (streq(argv[first], commands[i].name)) {
			/* getopt names argv[0] in its messages. */
			_cleanup_free_ char *name = xasprintf("dlws-mkimage %s", commands[i].name);
			argv[first] = name;
			r = commands[i].fn(argc - first, argv + first, &ctx);
		}
	if (r < 0) {
		struct stat st;
		const char *w = argv[first];
		if (w[0] != '-' && !strchr(w, '/') && !strchr(w, '.') && stat(w, &st) < 0)
			return unknown_command(w);
		/* dlws-mkimage RECIPE...: build, with argv[0] standing for it. */
		argv[first - 1] = "dlws-mkimage build";
		r = cmd_build(argc - first + 1, argv + first - 1, &ctx);
	}
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "dlws-mkimage: cannot write to standard output: %s\n", strerror(errno));
		return EXIT_FAILURE;
	}
	return r;
}
