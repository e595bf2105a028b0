/* The status line of long steps; see progress.h. */
#include "progress.h"

#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

#define BAR_WIDTH 20
#define BAR_MIN 6               /* narrower than this: no bar at all */
#define LABEL_MIN 9             /* labels are padded to this ("verifying") */
/* Everything on the line but the label and the bar:
 * " [" "] " "100%" " " "%10s" " " "%10s/s" "  " "0:00:00 left   " */
#define LINE_FIXED (2 + 2 + 4 + 1 + 10 + 1 + 12 + 2 + 15)

static double now_seconds(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A line wider than the terminal wraps, and \r then redraws only its last
 * row: the bar narrows, then goes, then the label is cut. */
static unsigned columns(void) {
	struct winsize ws;
	if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 40)
		return ws.ws_col;
	return 80;
}

const char *progress_size(uint64_t n, char buf[32]) {
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB" };
	if (n < 1024) {
		snprintf(buf, 32, "%llu B", (unsigned long long)n);
		return buf;
	}
	double v = (double)n;
	size_t u = 0;
	while (v >= 1024 && u + 1 < ARRAY_SIZE(units)) {
		v /= 1024;
		u++;
	}
	snprintf(buf, 32, "%.1f %s", v, units[u]);
	return buf;
}

const char *progress_duration(double secs, char buf[32]) {
	unsigned long s = secs < 0 ? 0 : (unsigned long)(secs + 0.5);
	if (s >= 3600)
		snprintf(buf, 32, "%lu:%02lu:%02lu", s / 3600, s / 60 % 60, s % 60);
	else
		snprintf(buf, 32, "%lu:%02lu", s / 60, s % 60);
	return buf;
}

static void draw(struct progress *p, uint64_t done, bool end, double now) {
	if (done > p->total)
		done = p->total;
	size_t label_len = strlen(p->label);
	size_t avail = columns() - 1;   /* the last column would wrap on some terminals */
	size_t shown_label = label_len < LABEL_MIN ? LABEL_MIN : label_len;
	size_t room = avail > LINE_FIXED + shown_label ? avail - LINE_FIXED - shown_label : 0;
	size_t width = room > BAR_WIDTH ? BAR_WIDTH : room;
	char label[sizeof(p->label)];
	if (width < BAR_MIN) {
		width = 0;
		size_t max = avail > LINE_FIXED - 3 ? avail - (LINE_FIXED - 3) : LABEL_MIN;
		if (label_len > max && max > 3)      /* the end of a path says most */
			snprintf(label, sizeof(label), "..%s", p->label + label_len - (max - 2));
		else
			snprintf(label, sizeof(label), "%s", p->label);
	} else {
		snprintf(label, sizeof(label), "%s", p->label);
	}
	char bar[BAR_WIDTH + 4] = "";
	if (width) {
		size_t fill = p->total ? (size_t)(done * width / p->total) : width;
		bar[0] = '[';
		for (size_t i = 0; i < width; i++)
			bar[1 + i] = i < fill ? '#' : '-';
		bar[1 + width] = ']';
		bar[2 + width] = ' ';
		bar[3 + width] = '\0';
	}
	char sz[32], rate[32], t[32];
	double secs = now - p->start;
	double bps = secs > 0 ? (double)done / secs : 0;
	if (bps > 0)
		progress_size((uint64_t)bps, rate);
	else
		snprintf(rate, sizeof(rate), "--");
	fprintf(stderr, "\r%-*s %s%3u%% %10s %10s/s  ", LABEL_MIN, label, bar,
		(unsigned)(p->total ? done * 100 / p->total : 100), progress_size(done, sz), rate);
	if (end)
		fprintf(stderr, "done in %s \n", progress_duration(secs, t));
	else if (bps > 0 && done > 0)
		fprintf(stderr, "%s left   ", progress_duration((double)(p->total - done) / bps, t));
	else
		fputs("--:-- left   ", stderr);
	fflush(stderr);
	p->shown = true;
	p->open = !end;
	p->last = now;
}

void progress_init(struct progress *p, bool on, double delay) {
	*p = (struct progress){ .on = on, .delay = delay > 0 ? delay : 0 };
}

void progress_begin(struct progress *p, const char *label, uint64_t total) {
	if (!p)
		return;
	progress_abort(p);      /* a step left open by its writer ends here */
	snprintf(p->label, sizeof(p->label), "%s", label);
	p->total = total;
	p->start = now_seconds();
	p->last = 0;
	p->shown = false;
	if (p->on && p->delay == 0)
		draw(p, 0, false, p->start);
}

void progress_update(struct progress *p, uint64_t done) {
	if (!p || !p->on)
		return;
	double now = now_seconds();
	if (!p->shown && now - p->start < p->delay)
		return;
	if (p->shown && now - p->last < 1.0 / PROGRESS_HZ)
		return;
	draw(p, done, false, now);
}

void progress_end(struct progress *p) {
	if (!p)
		return;
	double now = now_seconds();
	p->elapsed = now - p->start;
	if (p->on && (p->shown || now - p->start >= p->delay))
		draw(p, p->total, true, now);
	p->shown = false;
}

void progress_abort(struct progress *p) {
	if (!p)
		return;
	if (p->open)
		fputc('\n', stderr);
	p->open = p->shown = false;
}
