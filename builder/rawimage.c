#include "rawimage.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>

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
