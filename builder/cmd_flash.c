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
#include "progress.h"
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
	"  -q, --quiet           no progress, only errors (and the device summary when\n"
	"                        it asks before writing, without --yes)\n"
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

/* flash.c's phases on the status line; the write's time for the summary. */
struct flash_progress {
	struct progress line;
	double elapsed[2];
};

static void flash_progress(void *ctx, enum flash_phase phase, uint64_t done, uint64_t total) {
	struct flash_progress *p = ctx;
	if (done == 0)
		progress_begin(&p->line, phase == FLASH_WRITING ? "writing" : "verifying", total);
	if (done < total) {
		progress_update(&p->line, done);
		return;
	}
	progress_end(&p->line);
	p->elapsed[phase] = p->line.elapsed;
}

/* What is about to be overwritten, in the user's terms. */
static void describe(const struct flash *f) {
	char a[32];
	fprintf(stderr, "image:  %s, %s (%llu bytes)\n", f->image, progress_size(f->image_size, a), (unsigned long long)f->image_size);
	if (f->is_file) {
		if (f->create)
			fprintf(stderr, "device: %s, a new regular file\n", f->target);
		else
			fprintf(stderr, "device: %s, a regular file of %s (%llu bytes)\n", f->target, progress_size(f->size, a), (unsigned long long)f->size);
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
		progress_size(f->size, a), (unsigned long long)f->size,
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

static int run(struct flash *f, const struct cmd_ctx *ctx, bool yes, struct flash_progress *p, struct diags *d) {
	int r = flash_check(f, d);
	if (r == 0)
		r = flash_open_target(f, d);
	if (r != 0)
		return r;
	if (ctx->verbosity > 0 || !yes)
		describe(f);
	if (!yes && (r = confirm(f, d)) != 0)
		return r;
	r = flash_create(f, d);
	if (r != 0)
		return r;
	if (ctx->verbosity > 1)
		fprintf(stderr, "writing in %u MiB blocks, %s\n", FLASH_BLOCK_SIZE >> 20,
			f->direct ? "O_DIRECT" : "through the page cache (the device does not take O_DIRECT)");
	r = flash_write(f, flash_progress, p, d);
	if (r != 0)
		return r;
	char a[32], b[32];
	if (ctx->verbosity > 0)
		fprintf(stderr, "wrote %s (%llu bytes) to %s in %s\n", progress_size(f->image_size, a), (unsigned long long)f->image_size,
			f->target, progress_duration(p->elapsed[FLASH_WRITING], b));
	uint64_t at;
	r = flash_verify(f, flash_progress, p, &at, d);
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
	struct flash_progress p = { 0 };
	cmd_progress_init(ctx, true, &p.line);
	struct flash *f = NULL;
	int r = flash_new(argv[optind], argv[optind + 1], allow_file, &f, &d);
	if (r == 0)
		r = run(f, ctx, yes, &p, &d);
	progress_abort(&p.line);
	flash_free(f);
	diags_print(&d, stderr);
	diags_release(&d);
	return r == 0 ? EXIT_SUCCESS : r == FLASH_REFUSED ? EXIT_FLASH_REFUSED : r == FLASH_MISMATCH ? EXIT_FLASH_MISMATCH : EXIT_FAILURE;
}
