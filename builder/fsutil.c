#include "fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "util.h"

int read_file(const char *path, size_t limit, char **ret, size_t *ret_len, struct diags *d) {
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int r = -errno;
		diag_error(d, NULL, "cannot open '%s': %s", path, strerror(errno));
		return r;
	}
	struct buf b = { .limit = limit };
	char chunk[65536];
	int r = 0;
	for (;;) {
		ssize_t n = read(fd, chunk, sizeof(chunk));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			diag_error(d, NULL, "cannot read '%s': %s", path, strerror(errno));
			break;
		}
		if (n == 0)
			break;
		if (buf_append(&b, chunk, (size_t)n) < 0) {
			r = -EFBIG;
			diag_error(d, NULL, "cannot read '%s': larger than %zu bytes", path, limit);
			break;
		}
	}
	close(fd);
	if (r < 0) {
		buf_release(&b);
		return r;
	}
	*ret = buf_steal(&b, ret_len);
	return 0;
}

int atomic_open(struct atomic_file *f, const char *path, mode_t mode, struct diags *d) {
	f->path = xstrdup(path);
	f->tmp = xasprintf("%s.tmp", path);
	f->fd = open(f->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (f->fd < 0) {
		int r = -errno;
		diag_error(d, NULL, "cannot create '%s': %s", f->tmp, strerror(errno));
		free(f->path);
		free(f->tmp);
		*f = (struct atomic_file)ATOMIC_FILE_INIT;
		return r;
	}
	/* The umask must not widen or narrow what we asked for (keys are 0600). */
	(void)fchmod(f->fd, mode);
	return 0;
}

int atomic_commit(struct atomic_file *f, struct diags *d) {
	int r = 0;
	if (fsync(f->fd) < 0) {
		r = -errno;
		diag_error(d, NULL, "cannot write '%s': %s", f->tmp, strerror(errno));
	}
	if (close(f->fd) < 0 && r == 0) {
		r = -errno;
		diag_error(d, NULL, "cannot write '%s': %s", f->tmp, strerror(errno));
	}
	f->fd = -1;
	if (r == 0 && rename(f->tmp, f->path) < 0) {
		r = -errno;
		diag_error(d, NULL, "cannot rename '%s' to '%s': %s", f->tmp, f->path, strerror(errno));
	}
	if (r < 0)
		unlink(f->tmp);
	free(f->path);
	free(f->tmp);
	*f = (struct atomic_file)ATOMIC_FILE_INIT;
	return r;
}

void atomic_abort(struct atomic_file *f) {
	if (f->fd >= 0)
		close(f->fd);
	if (f->tmp)
		unlink(f->tmp);
	free(f->path);
	free(f->tmp);
	*f = (struct atomic_file)ATOMIC_FILE_INIT;
}

int write_file_atomic(const char *path, const void *data, size_t len, mode_t mode, struct diags *d) {
	struct atomic_file f = ATOMIC_FILE_INIT;
	int r = atomic_open(&f, path, mode, d);
	if (r < 0)
		return r;
	const char *p = data;
	while (len > 0) {
		ssize_t n = write(f.fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			diag_error(d, NULL, "cannot write '%s': %s", f.tmp, strerror(errno));
			atomic_abort(&f);
			return r;
		}
		p += n;
		len -= (size_t)n;
	}
	return atomic_commit(&f, d);
}

int mkdir_p(const char *path, mode_t mode) {
	char *p = xstrdup(path);
	int r = 0;
	for (char *s = p + 1; ; s++) {
		if (*s != '/' && *s != '\0')
			continue;
		char c = *s;
		*s = '\0';
		if (mkdir(p, mode) < 0 && errno != EEXIST) {
			r = -errno;
			break;
		}
		*s = c;
		if (!c)
			break;
	}
	free(p);
	return r;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
	return remove(path) < 0 && errno != ENOENT ? -1 : 0;
}

int rm_rf(const char *path) {
	struct stat st;
	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	return nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS) < 0 ? -errno : 0;
}

char *path_relative_to(const char *base_file, const char *rel) {
	if (rel[0] == '/')
		return xstrdup(rel);
	const char *slash = strrchr(base_file, '/');
	if (!slash)
		return xstrdup(rel);
	return xasprintf("%.*s/%s", (int)(slash - base_file), base_file, rel);
}

char *path_join(const char *a, const char *b) {
	size_t la = strlen(a);
	while (*b == '/')
		b++;
	if (la && a[la - 1] == '/')
		return xasprintf("%s%s", a, b);
	return xasprintf("%s/%s", a, b);
}

bool path_exists(const char *path) {
	struct stat st;
	return lstat(path, &st) == 0;
}

char *path_normalize_dest(const char *path) {
	struct buf b = BUF_INIT;
	const char *p = path;
	while (*p) {
		while (*p == '/')
			p++;
		const char *e = strchrnul(p, '/');
		size_t len = (size_t)(e - p);
		if (len == 0 || (len == 1 && p[0] == '.')) {
			/* skip */
		} else if (len == 2 && p[0] == '.' && p[1] == '.') {
			buf_release(&b);
			return NULL;
		} else {
			if (b.len)
				buf_putc(&b, '/');
			buf_append(&b, p, len);
		}
		p = e;
	}
	if (!b.len) {
		buf_release(&b);
		return NULL;
	}
	return buf_steal(&b, NULL);
}
