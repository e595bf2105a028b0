#include "stream.h"

#include <archive.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

enum { PROGRESS_SECONDS = 10 };

static int flush_chunk(int fd, const char *buf, size_t len, uint64_t *written, uint64_t limit,
		       const char *display, struct agent_err *e)
{
	int r;

	if (len == 0)
		return 0;
	if (*written + len > limit)
		return err_set(e, -EFBIG, "the image is larger than %s (%llu bytes)", display,
			       (unsigned long long)limit);
	r = write_all(fd, buf, len);
	if (r < 0)
		return err_set(e, r, "cannot write %s at byte %llu: %s", display,
			       (unsigned long long)*written, strerror(-r));
	*written += len;
	return 0;
}

int stream_image(const char *image, const char *image_display, int fd, const char *display,
		 uint64_t limit, struct stream_result *ret, struct agent_err *e)
{
	struct archive *a = archive_read_new();
	struct archive_entry *entry;
	double start = now_seconds(), last = start;
	uint64_t written = 0;
	size_t fill = 0;
	char *buf = malloc(STREAM_CHUNK);
	int r = 0;

	if (!a || !buf) {
		r = err_set(e, -ENOMEM, "out of memory");
		goto out;
	}
	if (archive_read_support_filter_all(a) != ARCHIVE_OK ||
	    archive_read_support_format_raw(a) != ARCHIVE_OK) {
		r = err_set(e, -EIO, "libarchive: %s", archive_error_string(a));
		goto out;
	}
	if (archive_read_open_filename(a, image, STREAM_CHUNK) != ARCHIVE_OK) {
		r = err_set(e, -EIO, "cannot open the image '%s': %s", image_display, archive_error_string(a));
		goto out;
	}
	r = archive_read_next_header(a, &entry);
	if (r == ARCHIVE_EOF) {
		r = err_set(e, -ENODATA, "the image '%s' is empty", image_display);
		goto out;
	}
	if (r < ARCHIVE_WARN) {
		r = err_set(e, -EIO, "cannot read the image '%s': %s", image_display, archive_error_string(a));
		goto out;
	}
	r = 0;
	snprintf(ret->filter, sizeof ret->filter, "%s", archive_filter_name(a, 0));
	log_step("streaming %s (%s) to %s", image_display, ret->filter, display);
	for (;;) {
		la_ssize_t got = archive_read_data(a, buf + fill, STREAM_CHUNK - fill);
		double now;
		if (got < 0) {
			r = err_set(e, -EIO, "cannot decompress the image '%s' at byte %llu: %s", image_display,
				    (unsigned long long)(written + fill), archive_error_string(a));
			goto out;
		}
		if (got == 0)
			break;
		fill += (size_t)got;
		if (fill < STREAM_CHUNK)
			continue;
		r = flush_chunk(fd, buf, fill, &written, limit, display, e);
		if (r < 0)
			goto out;
		fill = 0;
		now = now_seconds();
		if (now - last >= PROGRESS_SECONDS) {
			log_step("%llu MiB written (%.1f MB/s)", (unsigned long long)(written >> 20),
				 (double)written / 1e6 / (now - start));
			last = now;
		}
	}
	r = flush_chunk(fd, buf, fill, &written, limit, display, e);
	if (r < 0)
		goto out;
	if (fsync(fd) < 0) {
		r = err_set(e, -errno, "cannot sync %s: %s", display, strerror(errno));
		goto out;
	}
	ret->bytes = written;
	ret->seconds = now_seconds() - start;
out:
	if (a)
		archive_read_free(a);
	free(buf);
	return r;
}
