#include "fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "filesum.h"
#include "hash.h"
#include "util.h"

int stream_file(const char *path, stream_sink sink, void *ctx, uint64_t *ret_size, struct diags *d) {
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int r = -errno;
		diag_error(d, NULL, "cannot open '%s': %s", path, strerror(errno));
		return r;
	}
	int r = stream_fd(fd, path, sink, ctx, ret_size, d);
	close(fd);
	return r;
}

int stream_fd(int fd, const char *path, stream_sink sink, void *ctx, uint64_t *ret_size, struct diags *d) {
	static _Thread_local char chunk[1 << 17];
	uint64_t total = 0;
	int r = 0;
	for (;;) {
		ssize_t n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			diag_error(d, NULL, "cannot read '%s': %s", path, strerror(errno));
			break;
		}
		if (n == 0)
			break;
		total += (uint64_t)n;
		r = sink(ctx, chunk, (size_t)n);
		if (r < 0)
			break;
	}
	if (r == 0 && ret_size)
		*ret_size = total;
	return r;
}

void writeback_start(int fd, uint64_t *started, uint64_t end) {
	if (end < *started + (8 << 20))
		return;
	/* Unsupported (some file systems) only leaves it all to the flush. */
	(void)sync_file_range(fd, (off_t)*started, (off_t)(end - *started), SYNC_FILE_RANGE_WRITE);
	*started = end;
}

int write_all(int fd, const void *data, size_t len) {
	const char *p = data;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

struct read_ctx {
	struct buf b;
	const char *path;
	struct diags *d;
};

static int read_sink(void *ctx, const void *data, size_t len) {
	struct read_ctx *c = ctx;
	if (buf_append(&c->b, data, len) < 0) {
		diag_error(c->d, NULL, "cannot read '%s': larger than %zu bytes", c->path, c->b.limit);
		return -EFBIG;
	}
	return 0;
}

int read_file(const char *path, size_t limit, char **ret, size_t *ret_len, struct diags *d) {
	struct read_ctx c = { .b = { .limit = limit }, .path = path, .d = d };
	int r = stream_file(path, read_sink, &c, NULL, d);
	if (r < 0) {
		buf_release(&c.b);
		return r;
	}
	*ret = buf_steal(&c.b, ret_len);
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

int atomic_open_over(struct atomic_file *f, const char *path, mode_t mode, const char *spare, bool *ret_reused,
		     struct diags *d) {
	*ret_reused = false;
	int fd = spare ? open(spare, O_WRONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC) : -1;
	struct stat st;
	/* A write lease is granted only while no other descriptor of the
	 * file is open: nobody reads the old image (a VM booted from it, a
	 * flash) while it is written over. Released at once: nothing opens
	 * the spare's name but builds of this output, which hold its lock. */
	bool usable = fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_nlink == 1 &&
		      fcntl(fd, F_SETLEASE, F_WRLCK) == 0;
	if (usable)
		(void)fcntl(fd, F_SETLEASE, F_UNLCK);
	char *tmp = xasprintf("%s.tmp", path);
	if (usable && rename(spare, tmp) == 0 && fcntl(fd, F_SETFL, 0) == 0 && fchmod(fd, mode) == 0) {
		f->path = xstrdup(path);
		f->tmp = tmp;
		f->fd = fd;
		*ret_reused = true;
		return 0;
	}
	free(tmp);
	if (fd >= 0)
		close(fd);
	return atomic_open(f, path, mode, d);
}

/* Deferred syncing: one open file per file system written to. */
#define SYNC_FS_MAX 16
static pthread_mutex_t sync_lock = PTHREAD_MUTEX_INITIALIZER;   /* segments are written on threads */
static bool sync_deferred;
static int sync_fds[SYNC_FS_MAX];
static dev_t sync_devs[SYNC_FS_MAX];
static size_t n_sync;

void fsutil_defer_sync(void) {
	pthread_mutex_lock(&sync_lock);
	sync_deferred = true;
	pthread_mutex_unlock(&sync_lock);
}

/* Remembers the file system of `fd`; false when there is no room left
 * (the file is then synced at once). */
static bool defer_locked(int fd) {
	struct stat st;
	if (!sync_deferred || fstat(fd, &st) < 0)
		return false;
	for (size_t i = 0; i < n_sync; i++)
		if (sync_devs[i] == st.st_dev)
			return true;
	if (n_sync == SYNC_FS_MAX)
		return false;
	int dup_fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (dup_fd < 0)
		return false;
	sync_fds[n_sync] = dup_fd;
	sync_devs[n_sync++] = st.st_dev;
	return true;
}

static bool defer(int fd) {
	pthread_mutex_lock(&sync_lock);
	bool r = defer_locked(fd);
	pthread_mutex_unlock(&sync_lock);
	return r;
}

int fsutil_sync_deferred(bool flush, struct diags *d) {
	int r = 0;
	pthread_mutex_lock(&sync_lock);
	for (size_t i = 0; i < n_sync; i++) {
		if (flush && syncfs(sync_fds[i]) < 0 && r == 0) {
			r = -errno;
			diag_error(d, NULL, "cannot flush what was written: %s", strerror(errno));
		}
		close(sync_fds[i]);
	}
	n_sync = 0;
	sync_deferred = false;
	pthread_mutex_unlock(&sync_lock);
	return r;
}

int atomic_commit(struct atomic_file *f, struct diags *d) {
	int r = 0;
	if (!defer(f->fd) && fsync(f->fd) < 0) {
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
	r = write_all(f.fd, data, len);
	if (r < 0) {
		diag_error(d, NULL, "cannot write '%s': %s", f.tmp, strerror(-r));
		atomic_abort(&f);
		return r;
	}
	return atomic_commit(&f, d);
}

int write_file_staged(const char *path, const void *data, size_t len, mode_t mode, struct diags *d) {
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0) {
		int r = -errno;
		diag_error(d, NULL, "cannot create '%s': %s", path, strerror(errno));
		return r;
	}
	(void)fchmod(fd, mode);
	int r = write_all(fd, data, len);
	if (r == 0 && !defer(fd) && fsync(fd) < 0)
		r = -errno;
	if (close(fd) < 0 && r == 0)
		r = -errno;
	if (r < 0) {
		diag_error(d, NULL, "cannot write '%s': %s", path, strerror(-r));
		unlink(path);
	}
	return r;
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

int mkdirs_under(const char *root, const char *rel, mode_t mode, struct diags *d) {
	_cleanup_free_ char *path = path_join(root, rel);
	size_t skip = strlen(root);
	for (char *s = path + skip + 1;; s++) {
		if (*s != '/' && *s != '\0')
			continue;
		char c = *s;
		*s = '\0';
		if (mkdir(path, mode) == 0) {
			(void)chmod(path, mode);
		} else if (errno != EEXIST) {
			int r = -errno;
			diag_error(d, NULL, "cannot create '%s': %s", path, strerror(errno));
			return r;
		}
		*s = c;
		if (!c)
			return 0;
	}
}

int mkdirs_for_file(const char *root, const char *rel_file, mode_t mode, struct diags *d) {
	const char *slash = strrchr(rel_file, '/');
	if (!slash)
		return 0;
	_cleanup_free_ char *dir = xstrndup(rel_file, (size_t)(slash - rel_file));
	return mkdirs_under(root, dir, mode, d);
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

/* The parent of `path` synced, so a rename in it survives a crash. */
static void sync_parent(const char *path) {
	_cleanup_free_ char *p = xstrdup(path);
	char *slash = strrchr(p, '/');
	const char *dir = slash ? (slash == p ? "/" : (*slash = '\0', p)) : ".";
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		(void)fsync(fd);
		close(fd);
	}
}

int dir_replace(const char *tmp, const char *dst, struct diags *d) {
	/* One exchange: at every instant `dst` is the old tree or the new one,
	 * even if we are killed; the old one is left at `tmp` to remove. */
	if (renameat2(AT_FDCWD, tmp, AT_FDCWD, dst, RENAME_EXCHANGE) == 0) {
		sync_parent(dst);
		rm_rf(tmp);
		return 0;
	}
	if (errno != ENOENT && errno != EINVAL && errno != ENOSYS) {
		int r = -errno;
		diag_error(d, NULL, "cannot rename '%s' to '%s': %s", tmp, dst, strerror(errno));
		return r;
	}
	/* No `dst` yet, or a file system without exchange: two renames. */
	_cleanup_free_ char *old = xasprintf("%s.old", dst);
	rm_rf(old);
	bool had_old = path_exists(dst);
	if (had_old && rename(dst, old) < 0) {
		int r = -errno;
		diag_error(d, NULL, "cannot move '%s' aside: %s", dst, strerror(errno));
		return r;
	}
	if (rename(tmp, dst) < 0) {
		int r = -errno;
		diag_error(d, NULL, "cannot rename '%s' to '%s': %s", tmp, dst, strerror(errno));
		if (had_old)
			(void)rename(old, dst);
		return r;
	}
	sync_parent(dst);
	rm_rf(old);
	return 0;
}

int dir_link_copy(const char *src, const char *dst, mode_t mode, struct diags *d) {
	if (mkdir(dst, mode) < 0) {
		int r = -errno;
		diag_error(d, NULL, "cannot create '%s': %s", dst, strerror(errno));
		return r;
	}
	struct strv names = STRV_INIT;
	int r = dir_names(src, &names, NULL, d);
	for (size_t i = 0; i < names.n && r == 0; i++) {
		_cleanup_free_ char *from = path_join(src, names.v[i]);
		_cleanup_free_ char *to = path_join(dst, names.v[i]);
		struct stat st;
		if (lstat(from, &st) < 0) {
			r = -errno;
			diag_error(d, NULL, "cannot read '%s': %s", from, strerror(errno));
		} else if (!S_ISREG(st.st_mode)) {
			diag_error(d, NULL, "'%s' is not a regular file: '%s' holds files only", from, src);
			r = -EINVAL;
		} else if (link(from, to) < 0) {
			r = -errno;
			diag_error(d, NULL, "cannot link '%s' to '%s': %s", from, to, strerror(errno));
		}
	}
	strv_release(&names);
	return r;
}

int dir_names(const char *dir, struct strv *ret, const struct srcloc *at, struct diags *d) {
	DIR *dh = opendir(dir);
	if (!dh) {
		int r = -errno;
		diag_error(d, at, "cannot open directory '%s': %s", dir, strerror(errno));
		return r;
	}
	struct dirent *de;
	while ((de = readdir(dh)))
		if (!streq(de->d_name, ".") && !streq(de->d_name, ".."))
			strv_push(ret, de->d_name);
	closedir(dh);
	/* Sorted, so outputs do not depend on directory order. */
	strv_sort(ret);
	return 0;
}

static int list_into(const char *root, const char *rel, struct strv *out, int depth, struct diags *d) {
	_cleanup_free_ char *dir = rel[0] ? path_join(root, rel) : xstrdup(root);
	if (depth > 32) {
		diag_error(d, NULL, "'%s' is nested too deep", dir);
		return -ELOOP;
	}
	struct strv names = STRV_INIT;
	int r = dir_names(dir, &names, NULL, d);
	for (size_t i = 0; i < names.n && r == 0; i++) {
		char *child = rel[0] ? path_join(rel, names.v[i]) : xstrdup(names.v[i]);
		_cleanup_free_ char *full = path_join(root, child);
		struct stat st;
		if (lstat(full, &st) == 0 && S_ISDIR(st.st_mode)) {
			r = list_into(root, child, out, depth + 1, d);
			free(child);
		} else {
			strv_push_take(out, child);
		}
	}
	strv_release(&names);
	return r;
}

int tree_list(const char *dir, struct strv *ret, struct diags *d) {
	int r = list_into(dir, "", ret, 0, d);
	strv_sort(ret);
	return r;
}

/* What sha256sums_write writes for `dir`, into `b`. */
static int sha256sums_text(const char *dir, const char *name, struct buf *b, struct diags *d) {
	struct strv files = STRV_INIT;
	int r = tree_list(dir, &files, d);
	for (size_t i = 0; i < files.n && r == 0; i++) {
		if (streq(files.v[i], name))
			continue;
		_cleanup_free_ char *full = path_join(dir, files.v[i]);
		struct stat st;
		if (lstat(full, &st) < 0 || !S_ISREG(st.st_mode))
			continue;
		char sum[SHA256_HEX_LEN + 1];
		r = filesum(full, sum, NULL, d);
		if (r == 0)
			buf_printf(b, "%s  %s\n", sum, files.v[i]);
	}
	strv_release(&files);
	return r;
}

int sha256sums_write(const char *dir, const char *name, struct diags *d) {
	struct buf b = BUF_INIT;
	int r = sha256sums_text(dir, name, &b, d);
	if (r == 0) {
		_cleanup_free_ char *out = path_join(dir, name);
		r = write_file_atomic(out, b.data ? b.data : "", b.len, 0644, d);
	}
	buf_release(&b);
	return r;
}

bool tree_up_to_date(const char *tmp, const char *dst, const char *name) {
	struct stat st;
	if (lstat(dst, &st) < 0 || !S_ISDIR(st.st_mode))
		return false;
	_cleanup_free_ char *want_path = path_join(tmp, name);
	_cleanup_free_ char *have_path = path_join(dst, name);
	struct diags quiet = DIAGS_INIT;
	char *want = NULL, *have_list = NULL;
	size_t want_len = 0, have_list_len = 0;
	struct buf have = BUF_INIT;
	bool same = read_file(want_path, 64u << 20, &want, &want_len, &quiet) == 0 &&
		    read_file(have_path, 64u << 20, &have_list, &have_list_len, &quiet) == 0 &&
		    want_len == have_list_len && memcmp(want, have_list, want_len) == 0 &&
		    sha256sums_text(dst, name, &have, &quiet) == 0 && have.len == want_len &&
		    memcmp(have.data ? have.data : "", want, want_len) == 0;
	free(want);
	free(have_list);
	buf_release(&have);
	diags_release(&quiet);
	return same;
}

bool is_sha256_hex(const char *p) {
	for (int i = 0; i < SHA256_HEX_LEN; i++)
		if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f') || (p[i] >= 'A' && p[i] <= 'F')))
			return false;
	return true;
}

bool path_is_plain_relative(const char *p) {
	if (!*p || *p == '/')
		return false;
	for (const char *s = p; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f || *s == '\\')
			return false;
	for (const char *s = p;;) {
		const char *e = strchrnul(s, '/');
		size_t n = (size_t)(e - s);
		if (n == 0 || (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
			return false;
		if (!*e)
			return true;
		s = e + 1;
	}
}

static int cmp_sum(const void *a, const void *b) {
	return strcmp(((const struct sha256sum *)a)->path, ((const struct sha256sum *)b)->path);
}

/* One line, "<hex>  <path>" or "<hex> *<path>"; the path (owned) or NULL
 * with the problem reported. */
static char *parse_sum_line(const char *at, size_t n, const struct srcloc *loc, struct diag_batch *p) {
	if (n < SHA256_HEX_LEN + 3 || !is_sha256_hex(at) || at[64] != ' ' || (at[65] != ' ' && at[65] != '*')) {
		diag_batch_error(p, loc, "expected '<sha256 in hex>  <path>'");
		return NULL;
	}
	char *path = xstrndup(at + 66, n - 66);
	if (strlen(path) != n - 66 || !path_is_plain_relative(path))
		diag_batch_error(p, loc, "'%s' is not a plain relative path", path);
	else if (streq(path, SHA256SUMS_NAME))
		diag_batch_error(p, loc, "%s lists itself", SHA256SUMS_NAME);
	else
		return path;
	free(path);
	return NULL;
}

int sha256sums_parse(const char *text, size_t len, const char *file, struct sha256sums *ret, struct diags *d) {
	struct sha256sums s = SHA256SUMS_INIT;
	struct diag_batch p = { d, 0 };
	const char *end = text + len;
	int line = 0;
	for (const char *at = text; at < end;) {
		line++;
		const char *nl = memchr(at, '\n', (size_t)(end - at));
		struct srcloc loc = { file, line, 0 };
		char *path = parse_sum_line(at, (size_t)((nl ? nl : end) - at), &loc, &p);
		if (path) {
			GROW(s.v, s.cap, s.n + 1);
			struct sha256sum *e = &s.v[s.n++];
			e->path = path;
			for (int i = 0; i < SHA256_HEX_LEN; i++)
				e->hex[i] = (char)(at[i] >= 'A' && at[i] <= 'F' ? at[i] - 'A' + 'a' : at[i]);
			e->hex[SHA256_HEX_LEN] = '\0';
		}
		at = nl ? nl + 1 : end;
	}
	if (s.n)
		qsort(s.v, s.n, sizeof(*s.v), cmp_sum);
	struct srcloc whole = { file, 0, 0 };
	for (size_t i = 1; i < s.n; i++)
		if (streq(s.v[i - 1].path, s.v[i].path))
			diag_batch_error(&p, &whole, "'%s' is listed twice", s.v[i].path);
	if (p.n == 0 && s.n == 0)
		diag_batch_error(&p, &whole, "lists no files");
	int r = diag_batch_end(&p);
	if (r < 0) {
		sha256sums_release(&s);
		return r;
	}
	*ret = s;
	return 0;
}

const struct sha256sum *sha256sums_find(const struct sha256sums *s, const char *path) {
	struct sha256sum key = { .path = (char *)path };
	return s->n ? bsearch(&key, s->v, s->n, sizeof(*s->v), cmp_sum) : NULL;
}

void sha256sums_release(struct sha256sums *s) {
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i].path);
	free(s->v);
	*s = (struct sha256sums)SHA256SUMS_INIT;
}

struct copy_ctx {
	struct atomic_file *f;
	struct diags *d;
};

static int copy_sink(void *ctx, const void *data, size_t len) {
	struct copy_ctx *c = ctx;
	int r = write_all(c->f->fd, data, len);
	if (r < 0)
		diag_error(c->d, NULL, "cannot write '%s': %s", c->f->tmp, strerror(-r));
	return r;
}

int copy_file(const char *src, const char *dst, unsigned mode, struct diags *d) {
	/* Opened before the target, so a missing source leaves no temp file. */
	if (access(src, R_OK) < 0) {
		int r = -errno;
		diag_error(d, NULL, "cannot open '%s': %s", src, strerror(errno));
		return r;
	}
	struct atomic_file f = ATOMIC_FILE_INIT;
	int r = atomic_open(&f, dst, mode, d);
	if (r < 0)
		return r;
	struct copy_ctx c = { &f, d };
	r = stream_file(src, copy_sink, &c, NULL, d);
	if (r < 0) {
		atomic_abort(&f);
		return r;
	}
	return atomic_commit(&f, d);
}

void pending_add(struct pending *p, const char *tmp, const char *dst) {
	strv_push(&p->tmp, tmp);
	strv_push(&p->dst, dst);
	strv_push(&p->keep, "");
}

void pending_add_keeping(struct pending *p, const char *tmp, const char *dst, const char *keep) {
	strv_push(&p->tmp, tmp);
	strv_push(&p->dst, dst);
	strv_push(&p->keep, keep ? keep : "");
}

/* `tmp` over `dst`, what `dst` was moved to `keep`; false (errno set)
 * when that cannot be done, and nothing was. */
static bool replace_keeping(const char *tmp, const char *dst, const char *keep) {
	struct stat st;
	if (lstat(dst, &st) < 0 || !S_ISREG(st.st_mode) || st.st_nlink != 1) {
		errno = EINVAL;
		return false;
	}
	if (renameat2(AT_FDCWD, tmp, AT_FDCWD, dst, RENAME_EXCHANGE) < 0)
		return false;
	/* the old file is at `tmp` now: kept, or let go */
	if (rename(tmp, keep) < 0)
		unlink(tmp);
	return true;
}

int pending_commit(struct pending *p, struct diags *d) {
	int r = 0;
	for (size_t i = 0; i < p->tmp.n && r == 0; i++) {
		struct stat st;
		if (!p->tmp.v[i][0]) {
			if (unlink(p->dst.v[i]) < 0 && errno != ENOENT) {
				r = -errno;
				diag_error(d, NULL, "cannot remove '%s': %s", p->dst.v[i], strerror(errno));
			}
		} else if (lstat(p->tmp.v[i], &st) == 0 && S_ISDIR(st.st_mode)) {
			r = dir_replace(p->tmp.v[i], p->dst.v[i], d);
		} else if (p->keep.v[i][0] && replace_keeping(p->tmp.v[i], p->dst.v[i], p->keep.v[i])) {
			continue;
		} else if (rename(p->tmp.v[i], p->dst.v[i]) < 0) {
			r = -errno;
			diag_error(d, NULL, "cannot rename '%s' to '%s': %s", p->tmp.v[i], p->dst.v[i], strerror(errno));
		}
	}
	pending_abort(p);
	return r;
}

void pending_note_kept(struct pending *p, const char *dst, uint64_t bytes) {
	_cleanup_free_ char *line = xasprintf("%llu %s", (unsigned long long)bytes, dst);
	strv_push(&p->kept, line);
}

uint64_t pending_kept(const struct pending *p, const char *dst) {
	for (size_t i = 0; i < p->kept.n; i++) {
		const char *name = strchr(p->kept.v[i], ' ');
		if (name && streq(name + 1, dst))
			return strtoull(p->kept.v[i], NULL, 10);
	}
	return 0;
}

void pending_remove(struct pending *p, const char *dst) {
	strv_push(&p->tmp, "");
	strv_push(&p->dst, dst);
	strv_push(&p->keep, "");
}

void pending_fresh(struct pending *p, const char *tmp, const char *dst) {
	if (tmp)
		rm_rf(tmp);
	strv_push(&p->fresh, dst);
}

void pending_abort(struct pending *p) {
	for (size_t i = 0; i < p->tmp.n; i++)
		if (p->tmp.v[i][0])
			rm_rf(p->tmp.v[i]);
	strv_release(&p->tmp);
	strv_release(&p->dst);
	strv_release(&p->keep);
}
