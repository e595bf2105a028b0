/* The status line of a long step on standard error, redrawn in place:
 *
 *   writing   [########------------]  43%   51.2 MiB   120.0 MiB/s  0:12 left
 *
 * at most PROGRESS_HZ times a second with \r, and finished with a newline
 * ("done in 0:04"). The command layer owns one (progress_init: on only when
 * standard error is a terminal and not -q) and hands it to the writers
 * (build_opts.progress for a build's); they report bytes done of a total
 * and never print themselves. A NULL or switched-off progress draws nothing, so modules
 * call these freely. Steps run one after another: one line at a time. */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#define PROGRESS_HZ 10
/* A build's steps show only once they have run this long: a step that is
 * over at once leaves no line behind. DLWS_PROGRESS_DELAY overrides it. */
#define PROGRESS_DELAY_S 1.0

struct progress {
	bool on;                /* draw at all */
	double delay;           /* seconds a step runs before its line shows; 0: at once */
	/* The step under way. */
	char label[64];
	uint64_t total;
	double start, last;     /* monotonic seconds: the step's start, the last draw */
	bool shown;             /* its line has been drawn */
	bool open;              /* a line is on the screen without its newline */
	double elapsed;         /* the last finished step's duration (also when off) */
};

void progress_init(struct progress *p, bool on, double delay);
/* A step of `total` bytes starts; with delay 0 its line shows at once. */
void progress_begin(struct progress *p, const char *label, uint64_t total);
void progress_update(struct progress *p, uint64_t done);
/* The step is complete: a line that showed is drawn at 100% and ended. */
void progress_end(struct progress *p);
/* The step failed: an open line is ended so that errors start on their own. */
void progress_abort(struct progress *p);

/* For people: "512 B", "16.0 MiB". */
const char *progress_size(uint64_t n, char buf[32]);
/* "0:05", "1:02:03". */
const char *progress_duration(double secs, char buf[32]);
