/* dlws-mkimage flash: an image onto a USB stick, checked, confirmed,
 * written, read back. The checks and the I/O are flash.c's; this file asks
 * and shows. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cmd.h"
#include "flash.h"
#include "util.h"

#define OPT_ALLOW_FILE 256      /* long options without a short one */

/* The exit statuses scripts rely on (documented in usage and the README). */
enum {
	EXIT_FLASH_REFUSED = 3,         /* unsafe target or not confirmed: nothing written */
	EXIT_FLASH_MISMATCH = 4,        /* written, but the read-back differs */
};

static const char usage[] =
	"usage: dlws-mkimage flash [OPTIONS] IMAGE DEVICE\n"
	"\n"
	"Writes IMAGE (a hybrid ISO, a disk image) onto DEVICE, a USB stick or other\n"
	"block device, then reads DEVICE back and compares its sha256 with the image's.\n"
	"Shows the device (model, size, removable) and asks to type 'yes' first.\n"
	"Refuses, before writing anything, a device that is mounted (itself or a\n"
	"partition), used as swap or by device-mapper or md, opened exclusively by\n"
	"someone else, that holds the running system (/, /boot, /usr) or IMAGE, that\n"
	"is smaller than IMAGE, or that is not a block device.\n"
	"\n"
	"options:\n"
	"  -y, --yes             write without asking (needed when standard input is\n"
	"                        not a terminal)\n"
	"      --allow-file      DEVICE may be a regular file (created when missing)\n"
	"  -q, --quiet           print errors only (no device summary, no progress)\n"
	"  -v, --verbose         print every step\n"
	"  -h, --help            show this help\n"
	"\n"
	"A progress bar (rate, time left) shows while standard error is a terminal.\n"
	"\n"
	"exit status:\n"
	"  0  written and verified\n"
	"  1  error (I/O, bad input such as a missing IMAGE)\n"
	"  2  usage\n"
	"  3  refused: unsafe device, or not confirmed; nothing was written\n"
	"  4  written, but the device reads back differently from IMAGE\n";

/* "16.0 MiB" */
static const char *human_size(uint64_t n, char buf[32]) {
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

/* "1:05", "1:02:03" */
static const char *clock_time(double secs, char buf[32]) {
	unsigned long s = secs < 0 ? 0 : (unsigned long)(secs + 0.5);
	if (s >= 3600)
		snprintf(buf, 32, "%lu:%02lu:%02lu", s / 3600, s / 60 % 60, s % 60);
	else
		snprintf(buf, 32, "%lu:%02lu", s / 60, s % 60);
	return buf;
}

static double now_seconds(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One status line per phase, redrawn in place with \r; only on a terminal. */
struct progress {
	bool on;
	bool open;              /* a line is drawn without its newline yet */
	double start, last;
	double elapsed[2];      /* per phase, for the summary */
};

static void progress_draw(void *ctx, enum flash_phase phase, uint64_t done, uint64_t total) {
	struct progress *p = ctx;
	double now = now_seconds();
	if (done == 0) {
		p->start = now;
		p->last = 0;
	}
	p->elapsed[phase] = now - p->start;
	bool end = done >= total;
	if (!p->on || (done != 0 && !end && now - p->last < 0.1))
		return;
	p->last = now;
	enum { WIDTH = 20 };
	char bar[WIDTH + 1], sz[32], rate[32], t[32];
	size_t fill = total ? (size_t)(done * WIDTH / total) : WIDTH;
	for (size_t i = 0; i < WIDTH; i++)
		bar[i] = i < fill ? '#' : '-';
	bar[WIDTH] = '\0';
	double secs = now - p->start;
	double bps = secs > 0 ? (double)done / secs : 0;
	if (bps > 0)
		human_size((uint64_t)bps, rate);
	else
		snprintf(rate, sizeof(rate), "--");
	fprintf(stderr, "\r%-9s [%s] %3u%% %10s %10s/s  ", phase == FLASH_WRITING ? "writing" : "verifying", bar,
		(unsigned)(total ? done * 100 / total : 100), human_size(done, sz), rate);
	if (end)
		fprintf(stderr, "done in %s \n", clock_time(secs, t));
	else if (bps > 0 && done > 0)
		fprintf(stderr, "%s left   ", clock_time((double)(total - done) / bps, t));
	else
		fputs("--:-- left   ", stderr);
	p->open = !end;
	fflush(stderr);
}

/* What is about to be overwritten, in the user's terms. */
static void describe(const struct flash *f) {
	char a[32];
	fprintf(stderr, "image:  %s, %s (%llu bytes)\n", f->image, human_size(f->image_size, a), (unsigned long long)f->image_size);
	if (f->is_file) {
		if (f->create)
			fprintf(stderr, "device: %s, a new regular file\n", f->target);
		else
			fprintf(stderr, "device: %s, a regular file of %s (%llu bytes)\n", f->target, human_size(f->size, a), (unsigned long long)f->size);
		return;
	}
	_cleanup_free_ char *what = NULL;
	if (f->backing_file)
		what = xasprintf("loop device of '%s'", f->backing_file);
	else if (f->dm_name)
		what = xasprintf("device-mapper '%s'", f->dm_name);
	else if (f->vendor || f->model)
		what = xasprintf("%s%s%s", f->vendor ? f->vendor : "", f->vendor && f->model ? " " : "", f->model ? f->model : "");
	else
		what = xstrdup("unknown model");
	/* A /dev/disk/by-id/ path: the kernel's name too. */
	_cleanup_free_ char *dev = xasprintf("/dev/%s", f->name);
	_cleanup_free_ char *shown = streq(dev, f->target) ? xstrdup(f->target) : xasprintf("%s (%s)", f->target, dev);
	fprintf(stderr, "device: %s, %s%s%s%s, %s (%llu bytes), %s\n", shown, what, f->usb ? " on USB" : "",
		f->is_partition ? ", a partition of /dev/" : "", f->is_partition ? f->disk : "",
		human_size(f->size, a), (unsigned long long)f->size,
		f->removable == 1 ? "removable" : f->removable == 0 ? "not removable" : "removable: unknown");
}

static int confirm(const struct flash *f, struct diags *d) {
	if (!isatty(STDIN_FILENO)) {
		diag_error(d, NULL, "refusing '%s': not confirmed, standard input is not a terminal (--yes writes without asking)", f->target);
		return FLASH_REFUSED;
	}
	fprintf(stderr, "everything on '%s' will be overwritten; type 'yes' to write: ", f->target);
	fflush(stderr);
	char line[64];
	if (!fgets(line, sizeof(line), stdin)) {
		line[0] = '\0';
		fputc('\n', stderr);   /* end of input: the prompt's line is still open */
	}
	line[strcspn(line, "\r\n")] = '\0';
	if (!streq(line, "yes")) {
		diag_error(d, NULL, "refusing '%s': not confirmed (typed '%s', not 'yes'); nothing written", f->target, line);
		return FLASH_REFUSED;
	}
	return 0;
}

static int run(struct flash *f, const struct cmd_ctx *ctx, bool yes, struct progress *p, struct diags *d) {
	int r = flash_check(f, d);
	if (r == 0)
		r = flash_open_target(f, d);
	if (r != 0)
		return r;
	if (ctx->verbosity > 0 || !yes)
		describe(f);
	if (!yes && (r = confirm(f, d)) != 0)
		return r;
	if (ctx->verbosity > 1)
		fprintf(stderr, "writing in %u MiB blocks, %s\n", FLASH_BLOCK_SIZE >> 20,
			f->direct ? "O_DIRECT" : "through the page cache (the device does not take O_DIRECT)");
	r = flash_write(f, progress_draw, p, d);
	if (r != 0)
		return r;
	char a[32], b[32];
	if (ctx->verbosity > 0)
		fprintf(stderr, "wrote %s (%llu bytes) to %s in %s\n", human_size(f->image_size, a), (unsigned long long)f->image_size,
			f->target, clock_time(p->elapsed[FLASH_WRITING], b));
	uint64_t at;
	r = flash_verify(f, progress_draw, p, &at, d);
	if (r == 0 && ctx->verbosity > 0)
		fprintf(stderr, "verified: %s reads back as the image (sha256 %s)\n", f->target, f->sha256);
	return r;
}

int cmd_flash(int argc, char **argv, struct cmd_ctx *ctx) {
	static const struct option longopts[] = {
		{ "yes", no_argument, NULL, 'y' },
		{ "allow-file", no_argument, NULL, OPT_ALLOW_FILE },
		CMD_COMMON_LONGOPTS,
		{ 0 },
	};
	bool yes = false, allow_file = false;
	int c;
	optind = 0;
	while ((c = getopt_long(argc, argv, "y" CMD_COMMON_SHORTOPTS, longopts, NULL)) != -1) {
		if (c == 'y')
			yes = true;
		else if (c == OPT_ALLOW_FILE)
			allow_file = true;
		else {
			int k = cmd_common_option(c, ctx, "flash", usage);
			if (k >= 0)
				return k;
		}
	}
	if (argc - optind != 2)
		return cmd_usage_error("flash", "needs exactly IMAGE and DEVICE");
	struct diags d = DIAGS_INIT;
	struct progress p = { .on = ctx->verbosity > 0 && isatty(STDERR_FILENO) };
	struct flash *f = NULL;
	int r = flash_new(argv[optind], argv[optind + 1], allow_file, &f, &d);
	if (r == 0)
		r = run(f, ctx, yes, &p, &d);
	if (p.open)
		fputc('\n', stderr);
	flash_free(f);
	diags_print(&d, stderr);
	diags_release(&d);
	return r == 0 ? EXIT_SUCCESS : r == FLASH_REFUSED ? EXIT_FLASH_REFUSED : r == FLASH_MISMATCH ? EXIT_FLASH_MISMATCH : EXIT_FAILURE;
}
