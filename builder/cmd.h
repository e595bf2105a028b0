/* The commands, one file each (cmd_<name>.c), as glue over the module
 * APIs; main.c holds the command table. A command gets its own argv
 * (argv[0] is its name), parses its options with getopt_long, prints, and
 * returns the process's exit status. */
#pragma once
#include <getopt.h>
#include <stdbool.h>
#include <time.h>

#include "build.h"
#include "diag.h"

enum {
	EXIT_USAGE = 2,         /* bad command line */
};

/* What every command shares: -q / -v given before or after the command. */
struct cmd_ctx {
	int verbosity;          /* 0 = -q (errors only), 1 default, 2 = -v */
};

/* The options every command takes, to end its longopts with:
 *   static const struct option longopts[] = { ..., CMD_COMMON_LONGOPTS, { 0 } }; */
#define CMD_COMMON_SHORTOPTS "qvh"
#define CMD_COMMON_LONGOPTS \
	{ "quiet", no_argument, NULL, 'q' }, { "verbose", no_argument, NULL, 'v' }, { "help", no_argument, NULL, 'h' }

/* Handles a common option `c` in a command's getopt loop: returns -1 when
 * the loop goes on, else the exit status to return (help printed: 0;
 * an unknown option: EXIT_USAGE with a hint). */
int cmd_common_option(int c, struct cmd_ctx *ctx, const char *name, const char *usage);
/* A command's usage error: "dlws-mkimage: NAME: MESSAGE (see --help)". */
int cmd_usage_error(const char *name, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prints and releases `d`; the exit status for r (< 0: failure). */
int cmd_report(struct diags *d, int r);
/* Build options from --set pairs and the environment (SOURCE_DATE_EPOCH). */
struct build_opts cmd_build_opts(const char *const *sets, size_t n_sets);
/* Creates or refreshes the PKI of b, printing what changed (every file
 * with `all`, else a count of reused ones). */
int cmd_ensure_pki(const struct build *b, const struct cmd_ctx *ctx, bool all, struct diags *d);

int cmd_init(int argc, char **argv, struct cmd_ctx *ctx);
int cmd_build(int argc, char **argv, struct cmd_ctx *ctx);
int cmd_render(int argc, char **argv, struct cmd_ctx *ctx);
int cmd_certs(int argc, char **argv, struct cmd_ctx *ctx);
int cmd_flash(int argc, char **argv, struct cmd_ctx *ctx);
int cmd_publish(int argc, char **argv, struct cmd_ctx *ctx);
int cmd_inspect(int argc, char **argv, struct cmd_ctx *ctx);
int cmd_verify(int argc, char **argv, struct cmd_ctx *ctx);
