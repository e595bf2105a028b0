/* Locks between dlws-mkimage processes: flock(2) on small files. */
#include "lock.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "fsutil.h"

int lock_file_for(const char *path, bool create, char **ret, struct diags *d) {
	_cleanup_free_ char *p = xstrdup(path);
	size_t n = strlen(p);
	while (n > 1 && p[n - 1] == '/')
		p[--n] = '\0';
	char *slash = strrchr(p, '/');
	const char *name = slash ? slash + 1 : p;
	_cleanup_free_ char *parent = slash ? xstrndup(p, slash == p ? 1 : (size_t)(slash - p)) : xstrdup(".");
	if (!*name || streq(name, ".") || streq(name, "..")) {
		diag_error(d, NULL, "cannot lock '%s': not a file or directory name", path);
		return -EINVAL;
	}
	/* One file per place however it is spelled ("keys", "recipes/../keys"):
	 * the same process must never lock one file through two opens. */
	int r = create ? mkdir_p(parent, 0755) : 0;
	char real[PATH_MAX];
	if (r == 0 && !realpath(parent, real))
		r = -errno;
	if (r == -ENOENT && !create)
		return r;
	if (r < 0) {
		diag_error(d, NULL, "cannot open '%s': %s", parent, strerror(-r));
		return r;
	}
	*ret = xasprintf("%s/.%s.lock", streq(real, "/") ? "" : real, name);
	return 0;
}

char *lock_holder_text(const char *what) {
	char host[256] = "";
	if (gethostname(host, sizeof(host) - 1) < 0 || !host[0])
		strcpy(host, "localhost");
	if (!what)
		return xasprintf("%ld %s", (long)getpid(), host);
	return xasprintf("%ld %s %s", (long)getpid(), host, what);
}

char *lock_holder_describe(const char *holder) {
	char host[256] = "";
	gethostname(host, sizeof(host) - 1);
	long pid = 0;
	char who[256] = "";
	if (!holder || sscanf(holder, "%ld %255s", &pid, who) < 1 || pid <= 0)
		return xstrdup("another process");
	if (!who[0] || streq(who, host))
		return xasprintf("pid %ld", pid);
	return xasprintf("pid %ld on %s", pid, who);
}

char *lock_holder_words(const char *holder) {
	_cleanup_free_ char *who = lock_holder_describe(holder);
	char what[64] = "";
	if (!holder || sscanf(holder, "%*d %*255s %63s", what) != 1)
		return xstrdup(who);
	return xasprintf("%s (%s)", who, what);
}

/* The holder's line; a holder that has just taken the lock may not have
 * written it yet. */
static char *read_holder(int fd) {
	char text[256];
	for (int tries = 0; tries < 20; tries++) {
		ssize_t n = pread(fd, text, sizeof(text) - 1, 0);
		if (n > 0) {
			text[n] = '\0';
			text[strcspn(text, "\n")] = '\0';
			return xstrdup(text);
		}
		usleep(50 * 1000);
	}
	return NULL;
}

int lock_take(const char *file, const struct lock_opts *o, bool optional, int *ret_fd, char **ret_holder,
	      struct diags *d) {
	*ret_fd = -1;
	if (ret_holder)
		*ret_holder = NULL;
	/* A reader creates nothing: without a lock file no writer has been here. */
	int fd = open(file, O_RDWR | O_CLOEXEC | O_NOFOLLOW | (o->shared ? 0 : O_CREAT), 0644);
	if (fd < 0 && (optional || o->shared) && (errno == EACCES || errno == EROFS || errno == EPERM))
		fd = open(file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		int r = -errno;
		if ((optional || o->shared) && (r == -EACCES || r == -EROFS || r == -EPERM))
			return 0;
		if (o->shared && r == -ENOENT)
			return 0;
		diag_error(d, NULL, "cannot open the lock file '%s': %s", file, strerror(-r));
		return r;
	}
	int how = o->shared ? LOCK_SH : LOCK_EX;
	if (flock(fd, how | LOCK_NB) < 0) {
		if (errno != EWOULDBLOCK) {
			int r = -errno;
			diag_error(d, NULL, "cannot lock '%s': %s", file, strerror(errno));
			close(fd);
			return r;
		}
		char *holder = read_holder(fd);
		if (o->no_wait) {
			close(fd);
			if (ret_holder)
				*ret_holder = holder;
			else
				free(holder);
			return -EBUSY;
		}
		if (o->waiting) {
			_cleanup_free_ char *who = lock_holder_words(holder);
			o->waiting(o->ctx, file, who);
		}
		free(holder);
		while (flock(fd, how) < 0) {
			if (errno != EINTR) {
				int r = -errno;
				diag_error(d, NULL, "cannot lock '%s': %s", file, strerror(errno));
				close(fd);
				return r;
			}
		}
	}
	/* A reader leaves the holder's line to the writers. */
	if (!o->shared) {
		_cleanup_free_ char *me = lock_holder_text(o->what);
		_cleanup_free_ char *line = xasprintf("%s\n", me);
		if (ftruncate(fd, 0) < 0 || pwrite(fd, line, strlen(line), 0) < 0) {
			int r = -errno;
			diag_error(d, NULL, "cannot write '%s': %s", file, strerror(errno));
			close(fd);
			return r;
		}
	}
	*ret_fd = fd;
	return 0;
}

void lock_release(int fd) {
	if (fd < 0)
		return;
	/* Emptied first: a holder's line never outlives the lock (a reader's
	 * may fail on a read-only file, and there is no line to remove then). */
	(void)!ftruncate(fd, 0);
	close(fd);
}

struct set_waiting {
	const struct lock_opts *o;
	const char *path;
};

/* The waiting message names the path, not its lock file. */
static void set_waiting(void *ctx, const char *file, const char *who) {
	(void)file;
	const struct set_waiting *w = ctx;
	w->o->waiting(w->o->ctx, w->path, who);
}

int lock_set_take(struct lock_set *s, const struct strv *paths, const struct lock_opts *o, struct diags *d) {
	*s = (struct lock_set)LOCK_SET_INIT;
	/* "<lock file>\n<path>", sorted by lock file */
	struct strv pairs = STRV_INIT;
	int r = 0;
	for (size_t i = 0; i < paths->n && r == 0; i++) {
		_cleanup_free_ char *f = NULL;
		r = lock_file_for(paths->v[i], !o->shared, &f, d);
		if (r == -ENOENT && o->shared) {
			r = 0;          /* nothing there to read */
			continue;
		}
		bool dup = false;
		for (size_t k = 0; r == 0 && k < pairs.n && !dup; k++)
			dup = startswith(pairs.v[k], f) && pairs.v[k][strlen(f)] == '\n';
		if (r == 0 && !dup)
			strv_push_take(&pairs, xasprintf("%s\n%s", f, paths->v[i]));
	}
	strv_sort(&pairs);
	for (size_t i = 0; i < pairs.n; i++) {
		char *nl = strchr(pairs.v[i], '\n');
		strv_push_take(&s->files, xstrndup(pairs.v[i], (size_t)(nl - pairs.v[i])));
		strv_push(&s->paths, nl + 1);
	}
	strv_release(&pairs);
	s->fds = xcalloc(s->files.n ? s->files.n : 1, sizeof(*s->fds));
	for (size_t i = 0; i < s->files.n && r == 0; i++) {
		struct set_waiting w = { o, s->paths.v[i] };
		struct lock_opts lo = *o;
		lo.waiting = o->waiting ? set_waiting : NULL;
		lo.ctx = &w;
		_cleanup_free_ char *holder = NULL;
		r = lock_take(s->files.v[i], &lo, false, &s->fds[i], &holder, d);
		if (r == -EBUSY) {
			_cleanup_free_ char *who = lock_holder_words(holder);
			diag_error(d, NULL, "'%s' is in use by %s: not waiting (--no-wait)", s->paths.v[i], who);
		}
		if (r == 0)
			s->n = i + 1;
	}
	if (r < 0)
		lock_set_release(s);
	return r;
}

void lock_set_release(struct lock_set *s) {
	for (size_t i = s->n; i > 0; i--)
		lock_release(s->fds[i - 1]);
	free(s->fds);
	strv_release(&s->files);
	strv_release(&s->paths);
	*s = (struct lock_set)LOCK_SET_INIT;
}
