#include "tarball.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsutil.h"
#include "util.h"

struct tar_ctx {
	struct archive *a;
	const char *name;
	struct diags *d;
};

static int tar_sink(void *ctx, const void *data, size_t len) {
	struct tar_ctx *c = ctx;
	if (archive_write_data(c->a, data, len) != (la_ssize_t)len) {
		diag_error(c->d, NULL, "cannot write '%s' into the tarball: %s", c->name, archive_error_string(c->a));
		return -EIO;
	}
	return 0;
}

static int add_file(struct archive *a, struct archive_entry *e, const char *full, const char *name, time_t mtime,
		    struct diags *d) {
	struct stat st;
	if (lstat(full, &st) < 0) {
		int r = -errno;
		diag_error(d, NULL, "cannot stat '%s': %s", full, strerror(errno));
		return r;
	}
	archive_entry_clear(e);
	archive_entry_set_pathname(e, name);
	archive_entry_set_uid(e, 0);
	archive_entry_set_gid(e, 0);
	archive_entry_set_uname(e, "root");
	archive_entry_set_gname(e, "root");
	archive_entry_set_mtime(e, mtime, 0);
	archive_entry_set_perm(e, st.st_mode & 07777);
	if (S_ISLNK(st.st_mode)) {
		char target[4096];
		ssize_t n = readlink(full, target, sizeof(target) - 1);
		if (n < 0)
			return -errno;
		target[n] = '\0';
		archive_entry_set_filetype(e, AE_IFLNK);
		archive_entry_set_symlink(e, target);
		archive_entry_set_size(e, 0);
	} else {
		archive_entry_set_filetype(e, AE_IFREG);
		archive_entry_set_size(e, st.st_size);
	}
	if (archive_write_header(a, e) != ARCHIVE_OK) {
		diag_error(d, NULL, "cannot write '%s' into the tarball: %s", name, archive_error_string(a));
		return -EIO;
	}
	if (!S_ISREG(st.st_mode))
		return 0;
	struct tar_ctx c = { a, name, d };
	return stream_file(full, tar_sink, &c, NULL, d);
}

int tarball_write(const char *dir, const char *top, const char *out_path, time_t mtime, struct diags *d) {
	struct strv files = STRV_INIT;
	int r = tree_list(dir, &files, d);
	if (r < 0) {
		strv_release(&files);
		return r;
	}
	struct atomic_file f = ATOMIC_FILE_INIT;
	r = atomic_open(&f, out_path, 0644, d);
	if (r < 0) {
		strv_release(&files);
		return r;
	}
	struct archive *a = archive_write_new();
	struct archive_entry *e = archive_entry_new();
	if (!a || !e)
		abort();
	if (archive_write_set_format_pax_restricted(a) != ARCHIVE_OK || archive_write_open_fd(a, f.fd) != ARCHIVE_OK) {
		diag_error(d, NULL, "cannot write '%s': %s", out_path, archive_error_string(a));
		r = -EIO;
	}
	for (size_t i = 0; i < files.n && r == 0; i++) {
		_cleanup_free_ char *full = path_join(dir, files.v[i]);
		_cleanup_free_ char *name = path_join(top, files.v[i]);
		r = add_file(a, e, full, name, mtime, d);
	}
	if (r == 0 && archive_write_close(a) != ARCHIVE_OK) {
		diag_error(d, NULL, "cannot write '%s': %s", out_path, archive_error_string(a));
		r = -EIO;
	}
	archive_write_free(a);
	archive_entry_free(e);
	strv_release(&files);
	if (r < 0) {
		atomic_abort(&f);
		return r;
	}
	return atomic_commit(&f, d);
}
