#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "paths.h"

static char root_dir[AGENT_PATH_MAX];

int err_set(struct agent_err *e, int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof e->msg, fmt, ap);
	va_end(ap);
	return rc;
}

void root_set(const char *dir)
{
	size_t len;

	snprintf(root_dir, sizeof root_dir, "%s", dir ? dir : "");
	len = strlen(root_dir);
	while (len > 0 && root_dir[len - 1] == '/')
		root_dir[--len] = '\0';
}

bool root_is_fake(void)
{
	return root_dir[0] != '\0';
}

int rooted(char *buf, size_t n, const char *abs_path)
{
	int len = snprintf(buf, n, "%s%s", root_dir, abs_path);

	return len < 0 || (size_t)len >= n ? -ENAMETOOLONG : 0;
}

int path_join(char *buf, size_t n, const char *a, const char *b)
{
	size_t la = strlen(a);
	int len;

	while (la > 1 && a[la - 1] == '/')
		la--;
	while (*b == '/')
		b++;
	len = snprintf(buf, n, "%.*s/%s", (int)la, a, b);
	return len < 0 || (size_t)len >= n ? -ENAMETOOLONG : 0;
}

int payload_alt(const char *live_path, char *out, size_t n)
{
	static const char dlws[] = LAYOUT_LIVE_DLWS "/";
	static const char large[] = LAYOUT_LIVE_LARGE "/";
	int len;

	if (strncmp(live_path, dlws, sizeof dlws - 1) != 0 ||
	    strncmp(live_path, large, sizeof large - 1) == 0)
		return -EINVAL;
	len = snprintf(out, n, "%s%s", large, live_path + sizeof dlws - 1);
	return len < 0 || (size_t)len >= n ? -ENAMETOOLONG : 0;
}

int payload_locate(const char *live_path, char *out, size_t n)
{
	char alt[AGENT_PATH_MAX], alt_rooted[AGENT_PATH_MAX];
	int r = rooted(out, n, live_path);

	if (r < 0)
		return r;
	if (access(out, F_OK) == 0)
		return 0;
	if (payload_alt(live_path, alt, sizeof alt) == 0 &&
	    rooted(alt_rooted, sizeof alt_rooted, alt) == 0 &&
	    access(alt_rooted, F_OK) == 0) {
		snprintf(out, n, "%s", alt_rooted);
		return 0;
	}
	return -ENOENT;
}

int read_small(const char *path, char *buf, size_t n)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t got;

	if (fd < 0)
		return -errno;
	got = read(fd, buf, n - 1);
	if (got < 0) {
		int r = -errno;
		close(fd);
		return r;
	}
	close(fd);
	buf[got] = '\0';
	while (got > 0 && (buf[got - 1] == '\n' || buf[got - 1] == '\r'))
		buf[--got] = '\0';
	return 0;
}

int read_u64(const char *path, uint64_t *ret)
{
	char buf[64], *end;
	unsigned long long v;
	int r = read_small(path, buf, sizeof buf);

	if (r < 0)
		return r;
	errno = 0;
	v = strtoull(buf, &end, 10);
	if (errno || end == buf || *end)
		return -EINVAL;
	*ret = v;
	return 0;
}

int mkdir_p(const char *dir, mode_t mode)
{
	char buf[AGENT_PATH_MAX];
	size_t len = strlen(dir);

	if (len == 0 || len >= sizeof buf)
		return -ENAMETOOLONG;
	memcpy(buf, dir, len + 1);
	for (char *p = buf + 1; ; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char c = *p;
		*p = '\0';
		if (mkdir(buf, mode) < 0 && errno != EEXIST)
			return -errno;
		*p = c;
		if (c == '\0')
			break;
	}
	{
		struct stat st;
		if (stat(dir, &st) < 0)
			return -errno;
		if (!S_ISDIR(st.st_mode))
			return -ENOTDIR;
	}
	return 0;
}

int mkdir_parent(const char *path, mode_t mode)
{
	char buf[AGENT_PATH_MAX];
	char *slash;

	if (strlen(path) >= sizeof buf)
		return -ENAMETOOLONG;
	strcpy(buf, path);
	slash = strrchr(buf, '/');
	if (!slash || slash == buf)
		return 0;
	*slash = '\0';
	return mkdir_p(buf, mode);
}

int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t w = write(fd, p, len);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (w == 0)
			return -EIO;
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

/* The temp beside dst: same directory, so the rename is atomic. */
static int temp_beside(char *buf, size_t n, const char *dst)
{
	const char *slash = strrchr(dst, '/');
	int len;

	if (slash)
		len = snprintf(buf, n, "%.*s/.%s.dlws-tmp", (int)(slash - dst), dst, slash + 1);
	else
		len = snprintf(buf, n, ".%s.dlws-tmp", dst);
	return len < 0 || (size_t)len >= n ? -ENAMETOOLONG : 0;
}

/* Owner root, then the mode: chown after chmod would clear setuid bits. A
 * non-root test run cannot chown; there the files keep the runner's owner. */
static int set_owner_mode(int fd, mode_t mode)
{
	if (fchown(fd, 0, 0) < 0 && !(errno == EPERM && geteuid() != 0))
		return -errno;
	if (fchmod(fd, mode) < 0)
		return -errno;
	return 0;
}

struct out_file {
	char tmp[AGENT_PATH_MAX];
	int fd;
};

static int out_open(struct out_file *o, const char *dst, mode_t mode, struct agent_err *e)
{
	int r = temp_beside(o->tmp, sizeof o->tmp, dst);

	o->fd = -1;
	if (r < 0)
		return err_set(e, r, "path too long: '%s'", dst);
	unlink(o->tmp);
	o->fd = open(o->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (o->fd < 0)
		return err_set(e, -errno, "cannot create '%s': %s", o->tmp, strerror(errno));
	r = set_owner_mode(o->fd, mode);
	if (r < 0) {
		close(o->fd);
		unlink(o->tmp);
		o->fd = -1;
		return err_set(e, r, "cannot set owner and mode of '%s': %s", o->tmp, strerror(-r));
	}
	return 0;
}

static int out_commit(struct out_file *o, const char *dst, struct agent_err *e)
{
	int r = 0;

	if (close(o->fd) < 0)
		r = err_set(e, -errno, "cannot write '%s': %s", o->tmp, strerror(errno));
	o->fd = -1;
	if (r == 0 && rename(o->tmp, dst) < 0)
		r = err_set(e, -errno, "cannot rename '%s' to '%s': %s", o->tmp, dst, strerror(errno));
	if (r < 0)
		unlink(o->tmp);
	return r;
}

static void out_abort(struct out_file *o)
{
	if (o->fd >= 0)
		close(o->fd);
	o->fd = -1;
	unlink(o->tmp);
}

int copy_file(const char *src, const char *dst, mode_t mode, uint64_t *ret_bytes, struct agent_err *e)
{
	enum { CHUNK = 1 << 20 };
	struct out_file o;
	uint64_t total = 0;
	char *buf;
	int in, r;

	in = open(src, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return err_set(e, -errno, "cannot open '%s': %s", src, strerror(errno));
	buf = malloc(CHUNK);
	if (!buf) {
		close(in);
		return err_set(e, -ENOMEM, "out of memory copying '%s'", src);
	}
	r = out_open(&o, dst, mode, e);
	while (r == 0) {
		ssize_t got = read(in, buf, CHUNK);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			r = err_set(e, -errno, "cannot read '%s': %s", src, strerror(errno));
			break;
		}
		if (got == 0)
			break;
		r = write_all(o.fd, buf, (size_t)got);
		if (r < 0)
			r = err_set(e, r, "cannot write '%s': %s", o.tmp, strerror(-r));
		total += (uint64_t)got;
	}
	free(buf);
	close(in);
	if (r < 0) {
		out_abort(&o);
		return r;
	}
	r = out_commit(&o, dst, e);
	if (r == 0 && ret_bytes)
		*ret_bytes = total;
	return r;
}

int write_file(const char *dst, const void *data, size_t len, mode_t mode, struct agent_err *e)
{
	struct out_file o;
	int r = out_open(&o, dst, mode, e);

	if (r < 0)
		return r;
	r = write_all(o.fd, data, len);
	if (r < 0) {
		err_set(e, r, "cannot write '%s': %s", o.tmp, strerror(-r));
		out_abort(&o);
		return r;
	}
	return out_commit(&o, dst, e);
}

double now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}
