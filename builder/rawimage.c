#include "rawimage.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>

#include "fsutil.h"
#include "util.h"

int rawimage_size(const char *path, uint64_t *ret, struct diags *d) {
	struct archive *a = archive_read_new();
	if (!a)
		abort();
	archive_read_support_filter_all(a);
	archive_read_support_format_raw(a);
	int r = 0;
	struct archive_entry *e;
	if (archive_read_open_filename(a, path, 1 << 20) != ARCHIVE_OK || archive_read_next_header(a, &e) != ARCHIVE_OK) {
		diag_error(d, NULL, "cannot read the OS image '%s': %s", path, archive_error_string(a));
		r = -EIO;
	}
	uint64_t total = 0;
	static char chunk[1 << 20];
	while (r == 0) {
		la_ssize_t n = archive_read_data(a, chunk, sizeof(chunk));
		if (n == 0)
			break;
		if (n < 0) {
			diag_error(d, NULL, "cannot read the OS image '%s': %s", path, archive_error_string(a));
			r = -EIO;
			break;
		}
		total += (uint64_t)n;
	}
	archive_read_free(a);
	if (r == 0)
		*ret = total;
	return r;
}

/* Holes are made in blocks of this size: the file system's usual one. */
#define HOLE_BLOCK 4096

static bool all_zero(const char *p, size_t n) {
	static const char zeros[HOLE_BLOCK];
	return memcmp(p, zeros, n) == 0;
}

/* Writes `n` bytes at the current offset, seeking over zero blocks. */
static int write_sparse(int fd, const char *p, size_t n) {
	while (n > 0) {
		size_t k = n < HOLE_BLOCK ? n : HOLE_BLOCK;
		if (all_zero(p, k)) {
			if (lseek(fd, (off_t)k, SEEK_CUR) < 0)
				return -errno;
		} else {
			int r = write_all(fd, p, k);
			if (r < 0)
				return r;
		}
		p += k;
		n -= k;
	}
	return 0;
}

int rawimage_extract(const char *path, const char *dst, uint64_t *ret_size, struct diags *d) {
	struct archive *a = archive_read_new();
	if (!a)
		abort();
	archive_read_support_filter_all(a);
	archive_read_support_format_raw(a);
	struct archive_entry *e;
	if (archive_read_open_filename(a, path, 1 << 20) != ARCHIVE_OK || archive_read_next_header(a, &e) != ARCHIVE_OK) {
		diag_error(d, NULL, "cannot read the OS image '%s': %s", path, archive_error_string(a));
		archive_read_free(a);
		return -EIO;
	}
	int fd = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		int err = errno;
		diag_error(d, NULL, "cannot create '%s': %s", dst, strerror(err));
		archive_read_free(a);
		return -err;
	}
	enum { CHUNK = 1 << 20 };
	char *chunk = xmalloc(CHUNK);
	uint64_t total = 0;
	int r = 0;
	for (;;) {
		la_ssize_t n = archive_read_data(a, chunk, CHUNK);
		if (n == 0)
			break;
		if (n < 0) {
			diag_error(d, NULL, "cannot read the OS image '%s': %s", path, archive_error_string(a));
			r = -EIO;
			break;
		}
		r = write_sparse(fd, chunk, (size_t)n);
		if (r < 0) {
			diag_error(d, NULL, "cannot write '%s': %s", dst, strerror(-r));
			break;
		}
		total += (uint64_t)n;
	}
	free(chunk);
	archive_read_free(a);
	/* A trailing hole: the size comes from ftruncate. */
	if (r == 0 && ftruncate(fd, (off_t)total) < 0) {
		r = -errno;
		diag_error(d, NULL, "cannot write '%s': %s", dst, strerror(-r));
	}
	if (close(fd) < 0 && r == 0) {
		r = -errno;
		diag_error(d, NULL, "cannot write '%s': %s", dst, strerror(-r));
	}
	if (r < 0) {
		unlink(dst);
		return r;
	}
	*ret_size = total;
	return 0;
}
