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
#include "lock.h"
#include "progress.h"

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

/* The status line of a command's long steps (progress.h), for build_opts:
 * on when standard error is a terminal and not -q. A build's steps show
 * once they have run PROGRESS_DELAY_S ($DLWS_PROGRESS_DELAY, in seconds),
 * `at_once` ones (flash) from their start. */
void cmd_progress_init(const struct cmd_ctx *ctx, bool at_once, struct progress *ret);
/* Prints and releases `d`; the exit status for r (< 0: failure). A command
 * with a progress line ends it first (progress_abort). */
int cmd_report(struct diags *d, int r);
/* The options of a build: --set values, SOURCE_DATE_EPOCH (a bad one is
 * reported: -EINVAL), the time now. */
int cmd_build_opts(const char *const *sets, size_t n_sets, struct build_opts *ret, struct diags *d);
/* --no-wait, for the commands that take locks (lock.h). */
#define CMD_NO_WAIT_HELP "      --no-wait         fail at once when another dlws-mkimage holds what this needs\n"

/* Locks what `builds` need: their PKI directories (shared with `shared`,
 * for readers) and, with `outputs`, every output path they write. Tells
 * about a wait unless -q. */
int cmd_lock(struct build *const *builds, size_t n, bool outputs, bool shared, bool no_wait, const char *what,
	     const struct cmd_ctx *ctx, struct lock_set *ret, struct diags *d);

/* The PKI directories of a command's builds, each made or refreshed in a
 * stage (pki_stage) and seen by the builds there until committed. */
struct cmd_pki {
	struct pki_stage *stages;       /* the directories that change */
	size_t n;
	struct pki_report *reports;     /* every directory's */
	size_t n_reports;
	struct build *const *builds;
	size_t n_builds;
};
#define CMD_PKI_INIT { 0 }
/* Runs pki_ensure for every PKI directory of `builds` (once each). The
 * caller holds cmd_lock's locks. The commit says what changed (every file
 * with `all`, else a count of reused ones); an abort says nothing, since
 * nothing changed. */
int cmd_pki_prepare(struct build *const *builds, size_t n, const struct cmd_ctx *ctx, bool all, struct cmd_pki *ret,
		    struct diags *d);
int cmd_pki_commit(struct cmd_pki *p, const struct cmd_ctx *ctx, bool all, struct diags *d);
void cmd_pki_abort(struct cmd_pki *p);

int cmd_init(int argc, char **argv, struct cmd_ctx *ctx);
int cmd_build(int argc, char **argv, struct cmd_ctx *ctx);
int cmd_render(int argc, char **argv, struct cmd_ctx *ctx);
int cmd_certs(int argc, char **argv, struct cmd_ctx *ctx);
int cmd_flash(int argc, char **argv, struct cmd_ctx *ctx);
int cmd_publish(int argc, char **argv, struct cmd_ctx *ctx);
int cmd_inspect(int argc, char **argv, struct cmd_ctx *ctx);
int cmd_verify(int argc, char **argv, struct cmd_ctx *ctx);
