/* Running the few external tools that are the right way to do a job
 * (grub-mkimage builds GRUB images, rsync and ssh reach a boot server;
 * nothing else does). Children die with us (PR_SET_PDEATHSIG): a killed
 * run must not leave an rsync writing, or an ssh holding a lock. */
#pragma once
#include <stdbool.h>
#include <sys/types.h>

#include "buf.h"
#include "diag.h"

/* A running child and our ends of its pipes (-1 once closed). */
struct child {
	pid_t pid;
	int in, out, err;       /* its stdin (-1 unless CHILD_STDIN), stdout, stderr */
};
#define CHILD_INIT { -1, -1, -1, -1 }

enum {
	CHILD_STDIN = 1 << 0,           /* a pipe to its stdin (else /dev/null) */
	CHILD_MERGE_STDERR = 1 << 1,    /* its stderr goes to the stdout pipe */
};

/* Starts argv[0] (looked up in PATH). Returns 0, or -errno when it could
 * not be run (-ENOENT: no such program), reported as "cannot run 'x': why". */
int child_start(const char *const *argv, unsigned flags, struct child *ret, struct diags *d);
/* Waits for output and reads what there is; false once stdout and stderr
 * are both closed. Output past a buffer's limit is dropped (the child must
 * never block on a full pipe). */
bool child_pump(struct child *c, struct buf *out, struct buf *err);
/* Closes its stdin, reads its output to the end, reaps it and returns its
 * wait status. Does nothing on a child already finished. */
int child_finish(struct child *c, struct buf *out, struct buf *err);
/* Whether it still runs (reaps it when it has ended). */
bool child_running(struct child *c);
/* "exit status 3" or "signal 9", in `buf`. */
const char *child_status_text(int status, char buf[64]);

/* Runs argv and collects its stdout and stderr; *ret_status is its wait
 * status. Returns 0 when it ran, else as child_start. */
int run_capture(const char *const *argv, struct buf *out, struct buf *err, int *ret_status, struct diags *d);

/* Runs argv[0] (looked up in PATH) and waits. Its output is collected, not
 * printed; on failure the last line of it goes into the message. Returns 0,
 * or -ENOENT when the program is missing, or -EIO when it failed. */
int run_command(const char *const *argv, struct diags *d);
