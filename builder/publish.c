#include "publish.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "buf.h"
#include "fsutil.h"

#define SUMS_LIMIT ((size_t)16 << 20)           /* a SHA256SUMS is ~100 bytes a file */
#define TAR_MAX_MEMBERS 1000000
#define TAR_NAME_MAX 4096
#define LINK_SOURCES_MAX 8                      /* kept releases to hard-link from */
#define ERRORS_SHOWN 10                         /* per check; the rest are counted */
#define LOCK_NAME ".publish.lock"
#define EXIT_BUSY 75                            /* the remote lock script: held, not waiting */
#define STR_(x) #x
#define STR(x) STR_(x)
#define ID_LEN 25

/* ---- small helpers ---------------------------------------------------- */

static void note(const struct publish_opts *o, bool verbose, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void note(const struct publish_opts *o, bool verbose, const char *fmt, ...) {
	if (!o->note)
		return;
	va_list ap;
	va_start(ap, fmt);
	char *msg = NULL;
	if (vasprintf(&msg, fmt, ap) < 0)
		die_oom();
	va_end(ap);
	o->note(o->note_ctx, verbose, msg);
	free(msg);
}

/* Reports the first ERRORS_SHOWN problems of a check and counts the rest,
 * so a tree of garbage gives a readable answer. */
struct problems {
	struct diags *d;
	size_t n;
};

static void problem(struct problems *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void problem(struct problems *p, const char *fmt, ...) {
	if (p->n++ >= ERRORS_SHOWN)
		return;
	va_list ap;
	va_start(ap, fmt);
	diag_vadd(p->d, DIAG_ERROR, NULL, fmt, ap);
	va_end(ap);
}

static int problems_end(struct problems *p) {
	if (p->n > ERRORS_SHOWN)
		diag_note(p->d, NULL, "%zu more problems not shown", p->n - ERRORS_SHOWN);
	return p->n ? -EINVAL : 0;
}

static int fsync_path(const char *path, struct diags *d) {
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 || fsync(fd) < 0) {
		int r = -errno;
		diag_error(d, NULL, "cannot sync '%s': %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return r;
	}
	close(fd);
	return 0;
}

/* Creates the directories of `rel` below `root` (which exists), 0755
 * whatever the umask: the tree is served to everyone. */
static int mkdirs_under(const char *root, const char *rel, struct diags *d) {
	_cleanup_free_ char *path = path_join(root, rel);
	size_t skip = strlen(root);
	for (char *s = path + skip + 1;; s++) {
		if (*s != '/' && *s != '\0')
			continue;
		char c = *s;
		*s = '\0';
		if (mkdir(path, 0755) == 0) {
			(void)chmod(path, 0755);
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

/* The directory part of a relative path ("" for a top-level name). */
static char *rel_dirname(const char *rel) {
	const char *slash = strrchr(rel, '/');
	return slash ? xstrndup(rel, (size_t)(slash - rel)) : xstrdup("");
}

static int mkdirs_for(const char *root, const char *rel_file, struct diags *d) {
	_cleanup_free_ char *dir = rel_dirname(rel_file);
	return dir[0] ? mkdirs_under(root, dir, d) : 0;
}

static int cmp_strp(const void *a, const void *b) {
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool strv_sorted_contains(const struct strv *s, const char *str) {
	return s->n && bsearch(&str, s->v, s->n, sizeof(*s->v), cmp_strp);
}

/* A string set for the members of a tar (a bundle may have many). */
struct strset {
	char **v;
	size_t n, cap;  /* cap: 0 or a power of two */
};

static size_t str_hash(const char *s) {
	uint64_t h = 1469598103934665603ULL;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return (size_t)h;
}

static char **strset_slot(const struct strset *s, const char *k) {
	size_t i = str_hash(k) & (s->cap - 1);
	while (s->v[i] && !streq(s->v[i], k))
		i = (i + 1) & (s->cap - 1);
	return &s->v[i];
}

static bool strset_contains(const struct strset *s, const char *k) {
	return s->cap && *strset_slot(s, k);
}

static void strset_add(struct strset *s, const char *k) {
	if (2 * (s->n + 1) > s->cap) {
		struct strset bigger = { .cap = s->cap ? 2 * s->cap : 64 };
		bigger.v = xcalloc(bigger.cap, sizeof(*bigger.v));
		for (size_t i = 0; i < s->cap; i++)
			if (s->v[i])
				*strset_slot(&bigger, s->v[i]) = s->v[i];
		free(s->v);
		s->v = bigger.v;
		s->cap = bigger.cap;
	}
	char **slot = strset_slot(s, k);
	if (!*slot) {
		*slot = xstrdup(k);
		s->n++;
	}
}

static void strset_release(struct strset *s) {
	for (size_t i = 0; i < s->cap; i++)
		free(s->v[i]);
	free(s->v);
	*s = (struct strset){ 0 };
}

/* ---- release ids ------------------------------------------------------ */

bool publish_is_release_id(const char *s) {
	if (!s || strlen(s) != ID_LEN)
		return false;
	for (int i = 0; i < ID_LEN; i++) {
		char c = s[i];
		bool ok;
		if (i == 8)
			ok = c == 'T';
		else if (i == 15)
			ok = c == 'Z';
		else if (i == 16)
			ok = c == '-';
		else if (i < 16)
			ok = c >= '0' && c <= '9';
		else
			ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
		if (!ok)
			return false;
	}
	return true;
}

static int digits(const char *s, int n) {
	int v = 0;
	for (int i = 0; i < n; i++)
		v = v * 10 + (s[i] - '0');
	return v;
}

static time_t release_time(const char *id) {
	struct tm tm = {
		.tm_year = digits(id, 4) - 1900, .tm_mon = digits(id + 4, 2) - 1, .tm_mday = digits(id + 6, 2),
		.tm_hour = digits(id + 9, 2), .tm_min = digits(id + 11, 2), .tm_sec = digits(id + 13, 2),
	};
	return timegm(&tm);
}

char *publish_release_id(time_t now, const char *latest, const char sums_hex[SHA256_HEX_LEN + 1]) {
	time_t t = now;
	if (publish_is_release_id(latest) && release_time(latest) >= t)
		t = release_time(latest) + 1;
	struct tm tm;
	char stamp[64];
	gmtime_r(&t, &tm);
	strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
	return xasprintf("%s-%.8s", stamp, sums_hex);
}

/* ---- SHA256SUMS ------------------------------------------------------- */

static bool is_hex64(const char *p) {
	for (int i = 0; i < SHA256_HEX_LEN; i++)
		if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f') || (p[i] >= 'A' && p[i] <= 'F')))
			return false;
	return true;
}

/* "a/b": no empty, "." or ".." component, nothing sha256sum would escape. */
static bool plain_rel_path(const char *p) {
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
	return strcmp(((const struct publish_sum *)a)->path, ((const struct publish_sum *)b)->path);
}

int publish_sums_parse(const char *text, size_t len, const char *file, struct publish_sums *ret, struct diags *d) {
	struct publish_sums s = PUBLISH_SUMS_INIT;
	struct problems p = { d, 0 };
	const char *end = text + len;
	int line = 0;
	for (const char *at = text; at < end;) {
		line++;
		const char *nl = memchr(at, '\n', (size_t)(end - at));
		const char *le = nl ? nl : end;
		size_t n = (size_t)(le - at);
		struct srcloc loc = { file, line, 0 };
		if (n < SHA256_HEX_LEN + 3 || !is_hex64(at) || at[64] != ' ' || (at[65] != ' ' && at[65] != '*')) {
			if (p.n++ < ERRORS_SHOWN)
				diag_error(d, &loc, "expected '<sha256 in hex>  <path>'");
		} else {
			char *path = xstrndup(at + 66, n - 66);
			if (strlen(path) != n - 66 || !plain_rel_path(path)) {
				if (p.n++ < ERRORS_SHOWN)
					diag_error(d, &loc, "'%s' is not a plain relative path", path);
				free(path);
			} else if (streq(path, PUBLISH_SUMS_NAME)) {
				if (p.n++ < ERRORS_SHOWN)
					diag_error(d, &loc, "%s lists itself", PUBLISH_SUMS_NAME);
				free(path);
			} else {
				GROW(s.v, s.cap, s.n + 1);
				struct publish_sum *e = &s.v[s.n++];
				e->path = path;
				for (int i = 0; i < SHA256_HEX_LEN; i++)
					e->hex[i] = (char)(at[i] >= 'A' && at[i] <= 'F' ? at[i] - 'A' + 'a' : at[i]);
				e->hex[SHA256_HEX_LEN] = '\0';
			}
		}
		at = nl ? nl + 1 : end;
	}
	if (s.n)
		qsort(s.v, s.n, sizeof(*s.v), cmp_sum);
	struct srcloc whole = { file, 0, 0 };
	for (size_t i = 1; i < s.n; i++)
		if (streq(s.v[i - 1].path, s.v[i].path) && p.n++ < ERRORS_SHOWN)
			diag_error(d, &whole, "'%s' is listed twice", s.v[i].path);
	if (p.n == 0 && s.n == 0) {
		diag_error(d, &whole, "lists no files");
		p.n++;
	}
	int r = problems_end(&p);
	if (r < 0) {
		publish_sums_release(&s);
		return r;
	}
	*ret = s;
	return 0;
}

const struct publish_sum *publish_sums_find(const struct publish_sums *s, const char *path) {
	struct publish_sum key = { .path = (char *)path };
	return s->n ? bsearch(&key, s->v, s->n, sizeof(*s->v), cmp_sum) : NULL;
}

void publish_sums_release(struct publish_sums *s) {
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i].path);
	free(s->v);
	*s = (struct publish_sums)PUBLISH_SUMS_INIT;
}

/* ---- command lines ---------------------------------------------------- */

int publish_split_words(const char *line, struct strv *ret) {
	struct strv v = STRV_INIT;
	struct buf w = BUF_INIT;
	bool in_word = false;
	int r = 0;
	for (const char *p = line;; p++) {
		char c = *p;
		if (c == '\0' || c == ' ' || c == '\t' || c == '\n') {
			if (in_word)
				strv_push_take(&v, buf_steal(&w, NULL));
			in_word = false;
			if (!c)
				break;
			continue;
		}
		in_word = true;
		if (c == '\'') {
			const char *q = strchr(p + 1, '\'');
			if (!q) {
				r = -EINVAL;
				break;
			}
			buf_append(&w, p + 1, (size_t)(q - p - 1));
			p = q;
		} else if (c == '"') {
			for (p++; *p && *p != '"'; p++) {
				if (*p == '\\' && (p[1] == '"' || p[1] == '\\'))
					p++;
				buf_putc(&w, *p);
			}
			if (!*p) {
				r = -EINVAL;
				break;
			}
		} else if (c == '\\' && p[1]) {
			buf_putc(&w, *++p);
		} else {
			buf_putc(&w, c);
		}
	}
	buf_release(&w);
	if (r == 0 && v.n == 0)
		r = -EINVAL;
	if (r < 0) {
		strv_release(&v);
		return r;
	}
	*ret = v;
	return 0;
}

char *publish_sh_quote(const char *s) {
	struct buf b = BUF_INIT;
	buf_putc(&b, '\'');
	for (; *s; s++) {
		if (*s == '\'')
			buf_puts(&b, "'\\''");
		else
			buf_putc(&b, *s);
	}
	buf_putc(&b, '\'');
	return buf_steal(&b, NULL);
}

/* ---- destinations ----------------------------------------------------- */

int publish_dest_parse(const char *spec, const char *ssh, struct publish_dest *ret, struct diags *d) {
	if (!spec || !*spec) {
		diag_error(d, NULL, "the destination is empty");
		return -EINVAL;
	}
	struct publish_dest p = PUBLISH_DEST_INIT;
	p.label = xstrdup(spec);
	const char *colon = strchr(spec, ':'), *slash = strchr(spec, '/');
	if (colon && (!slash || colon < slash)) {
		p.host = xstrndup(spec, (size_t)(colon - spec));
		p.path = xstrdup(colon + 1);
		const char *at = strrchr(p.host, '@');
		const char *hostname = at ? at + 1 : p.host;
		if (!*hostname || p.host[0] == '-' || strpbrk(p.host, " \t\n'\"\\")) {
			diag_error(d, NULL, "'%s' names no usable host before ':' (write './%s' for a local directory)", spec, spec);
			publish_dest_release(&p);
			return -EINVAL;
		}
		if (!*p.path) {
			diag_error(d, NULL, "'%s' names no directory on '%s'", spec, p.host);
			publish_dest_release(&p);
			return -EINVAL;
		}
		const char *env = getenv("DLWS_MKIMAGE_SSH");
		p.ssh = xstrdup(ssh ? ssh : env && *env ? env : "ssh");
		if (publish_split_words(p.ssh, &p.ssh_argv) < 0) {
			diag_error(d, NULL, "cannot split the ssh command '%s' into words (an unbalanced quote?)", p.ssh);
			publish_dest_release(&p);
			return -EINVAL;
		}
	} else {
		p.path = xstrdup(spec);
	}
	*ret = p;
	return 0;
}

void publish_dest_release(struct publish_dest *p) {
	free(p->label);
	free(p->host);
	free(p->path);
	free(p->ssh);
	strv_release(&p->ssh_argv);
	*p = (struct publish_dest)PUBLISH_DEST_INIT;
}

void publish_result_release(struct publish_result *r) {
	free(r->id);
	free(r->previous);
	strv_release(&r->removed);
	strv_release(&r->stale);
	*r = (struct publish_result)PUBLISH_RESULT_INIT;
}

void publish_releases_free(struct publish_release *v, size_t n) {
	for (size_t i = 0; i < n; i++) {
		free(v[i].id);
		strv_release(&v[i].roles);
		strv_release(&v[i].nodes);
	}
	free(v);
}

/* ---- child processes (rsync, ssh) ------------------------------------- */

struct child {
	pid_t pid;
	int in, out, err;       /* our ends of its stdin (or -1), stdout, stderr */
};
#define CHILD_INIT { -1, -1, -1, -1 }

static void close_fd(int *fd) {
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* Puts `fd` at `target` without close-on-exec. */
static int move_fd(int fd, int target) {
	if (fd == target)
		return fcntl(fd, F_SETFD, 0);
	return dup2(fd, target) < 0 ? -1 : 0;
}

static int child_start(const char *const *argv, bool with_stdin, struct child *c, struct diags *d) {
	int in[2] = { -1, -1 }, out[2] = { -1, -1 }, err[2] = { -1, -1 }, ex[2] = { -1, -1 };
	if ((with_stdin && pipe2(in, O_CLOEXEC) < 0) || pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0 ||
	    pipe2(ex, O_CLOEXEC) < 0) {
		int r = -errno;
		diag_error(d, NULL, "cannot run '%s': %s", argv[0], strerror(errno));
		for (int i = 0; i < 2; i++) {
			close_fd(&in[i]);
			close_fd(&out[i]);
			close_fd(&err[i]);
			close_fd(&ex[i]);
		}
		return r;
	}
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid == 0) {
		/* It dies with us: a killed publish must not leave an rsync
		 * writing into the root, or an ssh holding its lock. */
		(void)prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		int nul = with_stdin ? in[0] : open("/dev/null", O_RDONLY);
		if (nul < 0 || move_fd(nul, STDIN_FILENO) < 0 || move_fd(out[1], STDOUT_FILENO) < 0 ||
		    move_fd(err[1], STDERR_FILENO) < 0)
			_exit(127);
		signal(SIGPIPE, SIG_DFL);
		execvp(argv[0], (char *const *)argv);
		int e = errno;
		(void)!write(ex[1], &e, sizeof(e));
		_exit(127);
	}
	int fork_errno = errno;
	close_fd(&in[0]);
	close_fd(&out[1]);
	close_fd(&err[1]);
	close_fd(&ex[1]);
	int e = pid < 0 ? fork_errno : 0;
	if (pid > 0) {
		ssize_t n;
		while ((n = read(ex[0], &e, sizeof(e))) < 0 && errno == EINTR)
			;
		if (n != (ssize_t)sizeof(e))
			e = 0;
		else
			while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
				;
	}
	close_fd(&ex[0]);
	if (e) {
		close_fd(&in[1]);
		close_fd(&out[0]);
		close_fd(&err[0]);
		diag_error(d, NULL, "cannot run '%s': %s", argv[0], strerror(e));
		return -e;
	}
	*c = (struct child){ pid, in[1], out[0], err[0] };
	return 0;
}

/* One round of reading whatever the child wrote; false once both its
 * stdout and stderr are closed. Output past a buffer's limit is dropped
 * (the child must never block on a full pipe). */
static bool child_pump(struct child *c, struct buf *out, struct buf *err) {
	struct pollfd p[2];
	int *fds[2];
	struct buf *bufs[2];
	nfds_t n = 0;
	if (c->out >= 0) {
		p[n] = (struct pollfd){ .fd = c->out, .events = POLLIN };
		fds[n] = &c->out;
		bufs[n++] = out;
	}
	if (c->err >= 0) {
		p[n] = (struct pollfd){ .fd = c->err, .events = POLLIN };
		fds[n] = &c->err;
		bufs[n++] = err;
	}
	if (n == 0)
		return false;
	if (poll(p, n, -1) < 0)
		return true;  /* EINTR */
	for (nfds_t i = 0; i < n; i++) {
		if (!p[i].revents)
			continue;
		char chunk[16384];
		ssize_t k = read(*fds[i], chunk, sizeof(chunk));
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			close_fd(fds[i]);
		else
			(void)buf_append(bufs[i], chunk, (size_t)k);
	}
	return true;
}

/* Closes its stdin, reads it to the end and returns its wait status. */
static int child_finish(struct child *c, struct buf *out, struct buf *err) {
	close_fd(&c->in);
	while (child_pump(c, out, err))
		;
	int status = 0;
	while (c->pid > 0 && waitpid(c->pid, &status, 0) < 0 && errno == EINTR)
		;
	c->pid = -1;
	return status;
}

static int run_capture(const char *const *argv, struct buf *out, struct buf *err, int *ret_status, struct diags *d) {
	struct child c = CHILD_INIT;
	int r = child_start(argv, false, &c, d);
	if (r == 0)
		*ret_status = child_finish(&c, out, err);
	return r;
}

/* The last lines of a tool's stderr (ssh's warnings about known hosts left
 * out), last first; `n` at most. */
static void stderr_lines(struct buf *err, struct strv *ret, size_t n) {
	if (!err->data)
		return;
	char *s = err->data;
	for (char *e = s + err->len; e > s && ret->n < n;) {
		while (e > s && (e[-1] == '\n' || e[-1] == '\r' || e[-1] == ' '))
			*--e = '\0';
		char *start = e;
		while (start > s && start[-1] != '\n')
			start--;
		if (*start && !startswith(start, "Warning: Permanently added"))
			strv_push(ret, start);
		e = start;
	}
}

static const char *status_text(int status, char buf[64]) {
	if (WIFEXITED(status))
		snprintf(buf, 64, "exit status %d", WEXITSTATUS(status));
	else
		snprintf(buf, 64, "signal %d", WIFSIGNALED(status) ? WTERMSIG(status) : 0);
	return buf;
}

/* ---- bundles ---------------------------------------------------------- */

struct bundle {
	const char *arg;        /* as given */
	bool is_tar;
	char *dir;              /* the tree to copy from: the bundle, or the tar extracted */
	char *tmpdir;           /* our extraction of a tar, removed at the end */
	char *sums_text;
	size_t sums_len;
	char sums_hex[SHA256_HEX_LEN + 1];      /* of sums_text: the bundle's identity */
	struct publish_sums sums;
	uint64_t size;
};

static void bundle_release(struct bundle *b) {
	if (b->tmpdir)
		rm_rf(b->tmpdir);
	free(b->tmpdir);
	free(b->dir);
	free(b->sums_text);
	publish_sums_release(&b->sums);
}

/* How a bundle's file is named in messages. */
static char *bundle_file(const struct bundle *b, const char *rel) {
	if (b->is_tar)
		return xasprintf("'%s' in '%s'", rel, b->arg);
	_cleanup_free_ char *path = path_join(b->arg, rel);
	return xasprintf("'%s'", path);
}

static int bundle_take_sums(struct bundle *b, char *text, size_t len, struct diags *d) {
	b->sums_text = text;
	b->sums_len = len;
	sha256_hex(text, len, b->sums_hex);
	_cleanup_free_ char *where = b->is_tar ? xasprintf("%s:%s", b->arg, PUBLISH_SUMS_NAME) : path_join(b->arg, PUBLISH_SUMS_NAME);
	return publish_sums_parse(text, len, where, &b->sums, d);
}

/* A tree must hold what its SHA256SUMS lists and nothing else, files and
 * directories only (the sums themselves are checked where it lands). */
static int tree_check(struct bundle *b, struct diags *d) {
	struct strv files = STRV_INIT;
	int r = tree_list(b->dir, &files, d);
	struct problems p = { d, 0 };
	for (size_t i = 0; i < files.n && r == 0; i++) {
		_cleanup_free_ char *full = path_join(b->dir, files.v[i]);
		struct stat st;
		if (lstat(full, &st) < 0)
			problem(&p, "cannot stat '%s': %s", full, strerror(errno));
		else if (S_ISLNK(st.st_mode))
			problem(&p, "'%s' is a symbolic link: a bundle holds only files and directories", full);
		else if (!S_ISREG(st.st_mode))
			problem(&p, "'%s' is not a regular file: a bundle holds only files and directories", full);
		else if (streq(files.v[i], PUBLISH_SUMS_NAME))
			continue;
		else if (!publish_sums_find(&b->sums, files.v[i]))
			problem(&p, "'%s' is not listed in '%s/%s'", full, b->arg, PUBLISH_SUMS_NAME);
		else
			b->size += (uint64_t)st.st_size;
	}
	for (size_t i = 0; i < b->sums.n && r == 0; i++)
		if (!strv_sorted_contains(&files, b->sums.v[i].path))
			problem(&p, "'%s/%s' is listed in '%s/%s' but missing", b->arg, b->sums.v[i].path, b->arg, PUBLISH_SUMS_NAME);
	strv_release(&files);
	return r < 0 ? r : problems_end(&p);
}

/* Reading a bundle's tar: every member is "<top>/<path>" under one top
 * directory, a directory or a regular file (or a hard link to an earlier
 * one); names, links and types are checked before a byte is written, and
 * sizes in headers are never trusted (data is read to its end). */
struct tar_walk {
	const char *tar;
	const char *out;        /* extract below this directory, or NULL: check only */
	char *top;
	struct strset files;    /* regular members, relative to top */
	char *sums_text;
	size_t sums_len;
	uint64_t size;
	char *chunk;
};

enum name_kind { NAME_OK, NAME_EMPTY, NAME_ABSOLUTE, NAME_DOTDOT, NAME_BADCHAR };

/* Splits a member name into its top directory and the path below it ("" for the top itself). */
static enum name_kind split_member(const char *name, char **ret_top, char **ret_rel) {
	if (!name || !*name)
		return NAME_EMPTY;
	if (name[0] == '/')
		return NAME_ABSOLUTE;
	if (strlen(name) > TAR_NAME_MAX)
		return NAME_BADCHAR;
	for (const char *s = name; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f || *s == '\\')
			return NAME_BADCHAR;
	struct buf rel = BUF_INIT;
	char *top = NULL;
	for (const char *s = name;;) {
		const char *e = strchrnul(s, '/');
		size_t n = (size_t)(e - s);
		if (n == 2 && s[0] == '.' && s[1] == '.') {
			free(top);
			buf_release(&rel);
			return NAME_DOTDOT;
		}
		if (n && !(n == 1 && s[0] == '.')) {
			if (!top) {
				top = xstrndup(s, n);
			} else {
				if (rel.len)
					buf_putc(&rel, '/');
				buf_append(&rel, s, n);
			}
		}
		if (!*e)
			break;
		s = e + 1;
	}
	if (!top) {
		buf_release(&rel);
		return NAME_EMPTY;
	}
	*ret_top = top;
	*ret_rel = buf_steal(&rel, NULL);
	return NAME_OK;
}

/* Whether a symlink at `rel` to `target` stays inside the tree. */
static bool link_stays_inside(const char *rel, const char *target) {
	if (target[0] == '/')
		return false;
	int depth = 0;
	for (const char *s = rel; *s; s++)
		depth += *s == '/';
	for (const char *s = target;;) {
		const char *e = strchrnul(s, '/');
		size_t n = (size_t)(e - s);
		if (n == 2 && s[0] == '.' && s[1] == '.') {
			if (--depth < 0)
				return false;
		} else if (n && !(n == 1 && s[0] == '.')) {
			depth++;
		}
		if (!*e)
			return true;
		s = e + 1;
	}
}

static int tar_read_error(struct archive *a, const char *tar, struct diags *d) {
	const char *why = archive_error_string(a);
	diag_error(d, NULL, "cannot read '%s': %s", tar, why ? why : "unknown error");
	return -EIO;
}

static int tar_name_error(const struct tar_walk *w, enum name_kind k, const char *name, struct diags *d) {
	switch (k) {
	case NAME_EMPTY:
		diag_error(d, NULL, "'%s' holds a member without a name", w->tar);
		break;
	case NAME_ABSOLUTE:
		diag_error(d, NULL, "'%s' holds '%s', an absolute name: refusing it", w->tar, name);
		break;
	case NAME_DOTDOT:
		diag_error(d, NULL, "'%s' holds '%s', which leaves the bundle's directory ('..'): refusing it", w->tar, name);
		break;
	default:
		diag_error(d, NULL, "'%s' holds a member whose name is too long or has control characters or backslashes", w->tar);
		break;
	}
	return -EINVAL;
}

static int tar_read_sums(struct tar_walk *w, struct archive *a, struct diags *d) {
	struct buf b = { .limit = SUMS_LIMIT };
	for (;;) {
		la_ssize_t n = archive_read_data(a, w->chunk, 1 << 16);
		if (n == 0)
			break;
		if (n < 0) {
			buf_release(&b);
			return tar_read_error(a, w->tar, d);
		}
		if (buf_append(&b, w->chunk, (size_t)n) < 0) {
			diag_error(d, NULL, "'%s': %s is larger than %zu bytes", w->tar, PUBLISH_SUMS_NAME, SUMS_LIMIT);
			buf_release(&b);
			return -EFBIG;
		}
	}
	free(w->sums_text);
	w->sums_text = buf_steal(&b, &w->sums_len);
	return 0;
}

static int tar_extract_file(struct tar_walk *w, struct archive *a, const char *rel, struct diags *d) {
	int r = mkdirs_for(w->out, rel, d);
	if (r < 0)
		return r;
	_cleanup_free_ char *full = path_join(w->out, rel);
	int fd = open(full, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0) {
		r = -errno;
		diag_error(d, NULL, "cannot create '%s': %s", full, strerror(errno));
		return r;
	}
	(void)fchmod(fd, 0644);
	for (;;) {
		la_ssize_t n = archive_read_data(a, w->chunk, 1 << 16);
		if (n == 0)
			break;
		if (n < 0) {
			r = tar_read_error(a, w->tar, d);
			break;
		}
		r = write_all(fd, w->chunk, (size_t)n);
		if (r < 0) {
			diag_error(d, NULL, "cannot write '%s': %s", full, strerror(-r));
			break;
		}
		w->size += (uint64_t)n;
	}
	if (r == 0 && fsync(fd) < 0) {
		r = -errno;
		diag_error(d, NULL, "cannot write '%s': %s", full, strerror(errno));
	}
	if (close(fd) < 0 && r == 0) {
		r = -errno;
		diag_error(d, NULL, "cannot write '%s': %s", full, strerror(errno));
	}
	return r;
}

static int tar_member(struct tar_walk *w, struct archive *a, struct archive_entry *e, struct diags *d) {
	const char *name = archive_entry_pathname(e);
	char *top = NULL, *rel = NULL;
	enum name_kind k = split_member(name, &top, &rel);
	if (k == NAME_EMPTY && name && archive_entry_filetype(e) == AE_IFDIR)
		return 0;  /* "./": the directory the tar was made in */
	if (k != NAME_OK)
		return tar_name_error(w, k, name, d);
	_cleanup_free_ char *rel_owned = rel;
	if (!w->top) {
		w->top = top;
	} else if (!streq(w->top, top)) {
		diag_error(d, NULL, "'%s' holds '%s' beside '%s/': a bundle's tar holds one top directory ('pxe/...', as "
			   "dlws-mkimage writes it)", w->tar, name, w->top);
		free(top);
		return -EINVAL;
	} else {
		free(top);
	}
	const char *hardlink = archive_entry_hardlink(e);
	mode_t type = archive_entry_filetype(e);
	if (hardlink) {
		char *ltop = NULL, *lrel = NULL;
		k = split_member(hardlink, &ltop, &lrel);
		bool inside = k == NAME_OK && streq(ltop, w->top);
		free(ltop);
		_cleanup_free_ char *lrel_owned = lrel;
		if (!inside) {
			diag_error(d, NULL, "'%s' in '%s' is a hard link to '%s', outside the bundle: refusing it", name, w->tar, hardlink);
			return -EINVAL;
		}
		if (!strset_contains(&w->files, lrel) || !*rel || strset_contains(&w->files, rel)) {
			diag_error(d, NULL, "'%s' in '%s' is a hard link to '%s', which is not a file before it", name, w->tar, hardlink);
			return -EINVAL;
		}
		strset_add(&w->files, rel);
		if (!w->out)
			return 0;
		int r = mkdirs_for(w->out, rel, d);
		_cleanup_free_ char *from = path_join(w->out, lrel);
		_cleanup_free_ char *to = path_join(w->out, rel);
		if (r == 0 && link(from, to) < 0) {
			r = -errno;
			diag_error(d, NULL, "cannot link '%s' to '%s': %s", to, from, strerror(errno));
		}
		return r;
	}
	if (type == AE_IFLNK) {
		const char *target = archive_entry_symlink(e);
		if (!target || !link_stays_inside(rel, target))
			diag_error(d, NULL, "'%s' in '%s' is a symbolic link to '%s', outside the bundle: refusing it", name, w->tar,
				   target ? target : "");
		else
			diag_error(d, NULL, "'%s' in '%s' is a symbolic link: a bundle holds only files and directories", name, w->tar);
		return -EINVAL;
	}
	if (type == AE_IFDIR)
		return w->out && *rel ? mkdirs_under(w->out, rel, d) : 0;
	if (type != AE_IFREG) {
		diag_error(d, NULL, "'%s' in '%s' is a device, fifo or socket: a bundle holds only files and directories", name, w->tar);
		return -EINVAL;
	}
	if (!*rel) {
		diag_error(d, NULL, "'%s' in '%s' is outside any top directory: a bundle's tar holds one directory "
			   "('pxe/...', as dlws-mkimage writes it)", name, w->tar);
		return -EINVAL;
	}
	if (strset_contains(&w->files, rel)) {
		diag_error(d, NULL, "'%s' holds '%s' twice", w->tar, name);
		return -EINVAL;
	}
	strset_add(&w->files, rel);
	if (streq(rel, PUBLISH_SUMS_NAME)) {
		int r = tar_read_sums(w, a, d);
		if (r == 0 && w->out) {
			_cleanup_free_ char *full = path_join(w->out, rel);
			r = write_file_atomic(full, w->sums_text, w->sums_len, 0644, d);
		}
		return r;
	}
	if (w->out)
		return tar_extract_file(w, a, rel, d);
	if (archive_entry_size_is_set(e) && archive_entry_size(e) > 0)
		w->size += (uint64_t)archive_entry_size(e);  /* shown, never relied on */
	if (archive_read_data_skip(a) < ARCHIVE_WARN)
		return tar_read_error(a, w->tar, d);
	return 0;
}

static int tar_walk(struct tar_walk *w, struct diags *d) {
	struct archive *a = archive_read_new();
	if (!a)
		die_oom();
	archive_read_support_filter_gzip(a);
	archive_read_support_filter_xz(a);
	archive_read_support_filter_zstd(a);
	archive_read_support_format_tar(a);
	w->chunk = xmalloc(1 << 16);
	int r = 0;
	if (archive_read_open_filename(a, w->tar, 1 << 16) != ARCHIVE_OK) {
		int e = archive_errno(a);
		if (e > 0 && e != EILSEQ) {
			diag_error(d, NULL, "cannot open '%s': %s", w->tar, strerror(e));
			r = -e;
		} else {
			diag_error(d, NULL, "'%s' is neither a bundle directory nor a tar of one", w->tar);
			r = -EINVAL;
		}
	}
	size_t members = 0;
	while (r == 0) {
		struct archive_entry *e;
		int s = archive_read_next_header(a, &e);
		if (s == ARCHIVE_EOF)
			break;
		if (s < ARCHIVE_WARN) {
			r = tar_read_error(a, w->tar, d);
			break;
		}
		if (++members > TAR_MAX_MEMBERS) {
			diag_error(d, NULL, "'%s' holds more than %d members", w->tar, TAR_MAX_MEMBERS);
			r = -EFBIG;
			break;
		}
		r = tar_member(w, a, e, d);
	}
	archive_read_free(a);
	free(w->chunk);
	w->chunk = NULL;
	if (r == 0 && !members) {
		diag_error(d, NULL, "'%s' is empty", w->tar);
		r = -EINVAL;
	}
	if (r == 0 && !w->sums_text) {
		diag_error(d, NULL, "'%s' has no %s at the top of '%s/': not a bundle", w->tar, PUBLISH_SUMS_NAME, w->top);
		r = -EINVAL;
	}
	return r;
}

static void tar_walk_release(struct tar_walk *w) {
	free(w->top);
	strset_release(&w->files);
	free(w->sums_text);
	free(w->chunk);
}

/* The members of a checked tar against its SHA256SUMS. */
static int tar_check_listing(const struct bundle *b, const struct tar_walk *w, struct diags *d) {
	struct problems p = { d, 0 };
	for (size_t i = 0; i < w->files.cap; i++) {
		const char *f = w->files.v[i];
		if (f && !streq(f, PUBLISH_SUMS_NAME) && !publish_sums_find(&b->sums, f))
			problem(&p, "'%s/%s' in '%s' is not listed in its %s", w->top, f, b->arg, PUBLISH_SUMS_NAME);
	}
	for (size_t i = 0; i < b->sums.n; i++)
		if (!strset_contains(&w->files, b->sums.v[i].path))
			problem(&p, "'%s/%s' is listed in the %s of '%s' but missing from it", w->top, b->sums.v[i].path,
				PUBLISH_SUMS_NAME, b->arg);
	return problems_end(&p);
}

/* Extracts the tar into `out` (an empty directory), checking it again:
 * the file may have changed since bundle_open read it. */
static int tar_extract(const struct bundle *b, const char *out, struct diags *d) {
	struct tar_walk w = { .tar = b->arg, .out = out };
	int r = tar_walk(&w, d);
	if (r == 0 && (w.sums_len != b->sums_len || memcmp(w.sums_text, b->sums_text, b->sums_len) != 0)) {
		diag_error(d, NULL, "'%s' changed while it was read", b->arg);
		r = -EAGAIN;
	}
	if (r == 0)
		r = tar_check_listing(b, &w, d);
	tar_walk_release(&w);
	return r;
}

/* Reads and checks a bundle before anything is written: its SHA256SUMS,
 * and that it holds exactly the files listed. A tar going to a remote root
 * is extracted to a temporary directory, for rsync. */
static int bundle_open(const char *path, bool need_tree, struct bundle *b, struct diags *d) {
	b->arg = path;
	struct stat st;
	if (stat(path, &st) < 0) {
		int r = -errno;
		diag_error(d, NULL, "cannot open '%s': %s", path, strerror(errno));
		return r;
	}
	if (S_ISDIR(st.st_mode)) {
		b->dir = xstrdup(path);
		_cleanup_free_ char *sums = path_join(path, PUBLISH_SUMS_NAME);
		struct stat ss;
		if (lstat(sums, &ss) < 0 || !S_ISREG(ss.st_mode)) {
			diag_error(d, NULL, "'%s' has no %s: not a bundle (dlws-mkimage writes one at the top of every PXE tree)",
				   path, PUBLISH_SUMS_NAME);
			return -ENOENT;
		}
		char *text = NULL;
		size_t len = 0;
		int r = read_file(sums, SUMS_LIMIT, &text, &len, d);
		if (r == 0)
			r = bundle_take_sums(b, text, len, d);
		return r < 0 ? r : tree_check(b, d);
	}
	if (!S_ISREG(st.st_mode)) {
		diag_error(d, NULL, "'%s' is neither a bundle directory nor a tar of one", path);
		return -EINVAL;
	}
	b->is_tar = true;
	struct tar_walk w = { .tar = path };
	int r = tar_walk(&w, d);
	if (r == 0) {
		r = bundle_take_sums(b, w.sums_text, w.sums_len, d);
		w.sums_text = NULL;
	}
	if (r == 0)
		r = tar_check_listing(b, &w, d);
	b->size = w.size;
	tar_walk_release(&w);
	if (r < 0 || !need_tree)
		return r;
	const char *tmp = getenv("TMPDIR");
	b->tmpdir = xasprintf("%s/dlws-publish.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(b->tmpdir)) {
		r = -errno;
		diag_error(d, NULL, "cannot create '%s': %s", b->tmpdir, strerror(errno));
		free(b->tmpdir);
		b->tmpdir = NULL;
		return r;
	}
	(void)chmod(b->tmpdir, 0755);
	b->dir = xstrdup(b->tmpdir);
	return tar_extract(b, b->dir, d);
}

/* ---- checking a landed tree ------------------------------------------- */

/* What is in a tree: every entry but directories, with the sums of the
 * regular files, and the text of its SHA256SUMS. */
struct found {
	char *path;
	char hex[SHA256_HEX_LEN + 1];
	bool regular;
};
struct scan {
	struct found *v;
	size_t n, cap;
	char *sums_text;        /* NULL when it has none */
	size_t sums_len;
};

static void scan_add(struct scan *s, const char *path, const char *hex) {
	GROW(s->v, s->cap, s->n + 1);
	struct found *f = &s->v[s->n++];
	*f = (struct found){ .path = xstrdup(path), .regular = hex != NULL };
	if (hex)
		memcpy(f->hex, hex, SHA256_HEX_LEN + 1);
}

static void scan_release(struct scan *s) {
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i].path);
	free(s->v);
	free(s->sums_text);
	*s = (struct scan){ 0 };
}

static int cmp_found(const void *a, const void *b) {
	return strcmp(((const struct found *)a)->path, ((const struct found *)b)->path);
}

/* Checks a scanned tree, `where`, against `sums` (parsed from `text`):
 * its SHA256SUMS must be that text, every listed file present with its sum,
 * and nothing else there. `b` is the bundle it was copied from, or NULL. */
static int scan_check(struct scan *s, const char *text, size_t len, const struct publish_sums *sums, const char *where,
		      const struct bundle *b, struct diags *d) {
	struct problems p = { d, 0 };
	if (!s->sums_text)
		problem(&p, "'%s/%s' is missing", where, PUBLISH_SUMS_NAME);
	else if (s->sums_len != len || memcmp(s->sums_text, text, len) != 0)
		problem(&p, "'%s/%s' differs from the %s of '%s'", where, PUBLISH_SUMS_NAME, PUBLISH_SUMS_NAME, b ? b->arg : where);
	if (s->n)
		qsort(s->v, s->n, sizeof(*s->v), cmp_found);
	for (size_t i = 0; i < s->n; i++) {
		const struct found *f = &s->v[i];
		const struct publish_sum *want = publish_sums_find(sums, f->path);
		if (streq(f->path, PUBLISH_SUMS_NAME) && f->regular)
			continue;
		if (!f->regular)
			problem(&p, "'%s/%s' is not a regular file", where, f->path);
		else if (!want)
			problem(&p, "'%s/%s' is not listed in its %s", where, f->path, PUBLISH_SUMS_NAME);
		else if (!streq(want->hex, f->hex) && b) {
			_cleanup_free_ char *src = bundle_file(b, f->path);
			problem(&p, "%s does not match its sum in the bundle's %s (checked after copying it to '%s'): refusing the bundle",
				src, PUBLISH_SUMS_NAME, where);
		} else if (!streq(want->hex, f->hex)) {
			problem(&p, "'%s/%s' does not match its sum in %s", where, f->path, PUBLISH_SUMS_NAME);
		}
	}
	for (size_t i = 0; i < sums->n; i++) {
		struct found key = { .path = sums->v[i].path };
		if (!s->n || !bsearch(&key, s->v, s->n, sizeof(*s->v), cmp_found))
			problem(&p, "'%s/%s' is missing (listed in its %s)", where, sums->v[i].path, PUBLISH_SUMS_NAME);
	}
	return problems_end(&p);
}

/* ---- server roots: what is there -------------------------------------- */

struct state {
	char *current;          /* the release `current` points at, or NULL */
	char *current_target;   /* what `current` points at, when it is no release */
	bool current_foreign;   /* `current` exists and is not a symlink to a release */
	char current_sums[SHA256_HEX_LEN + 1];  /* hash of current's SHA256SUMS, or "" */
	struct strv releases;   /* ids, sorted (oldest first) */
	struct strv partials;   /* "<id>.partial" */
};

static void state_release(struct state *st) {
	free(st->current);
	free(st->current_target);
	strv_release(&st->releases);
	strv_release(&st->partials);
}

static void state_add_entry(struct state *st, const char *name) {
	size_t n = strlen(name);
	if (publish_is_release_id(name))
		strv_push(&st->releases, name);
	else if (n == ID_LEN + 8 && endswith(name, ".partial")) {
		_cleanup_free_ char *id = xstrndup(name, ID_LEN);
		if (publish_is_release_id(id))
			strv_push(&st->partials, name);
	}
}

/* After every entry is in: what `current` (a symlink to `target`) names:
 * "releases/<id>" as we write it, or a path ending in "/releases/<id>". */
static void state_set_current(struct state *st, const char *target) {
	strv_sort(&st->releases);
	strv_sort(&st->partials);
	if (!target)
		return;
	static const char dir[] = "releases/";
	const size_t dl = sizeof(dir) - 1;
	const char *base = strrchr(target, '/');
	base = base ? base + 1 : target;
	size_t prefix = (size_t)(base - target);
	bool ours = publish_is_release_id(base) && prefix >= dl && strncmp(base - dl, dir, dl) == 0 &&
		    (prefix == dl || target[prefix - dl - 1] == '/');
	if (ours && strv_sorted_contains(&st->releases, base))
		st->current = xstrdup(base);
	else
		st->current_target = xstrdup(target);
	if (!ours)
		st->current_foreign = true;
}

static const char *state_latest(const struct state *st) {
	return st->releases.n ? st->releases.v[st->releases.n - 1] : NULL;
}

/* ---- local roots ------------------------------------------------------ */

static int local_check_root(const char *path, struct diags *d) {
	struct stat st;
	if (stat(path, &st) < 0) {
		int r = -errno;
		diag_error(d, NULL, "cannot open '%s': %s", path, strerror(errno));
		return r;
	}
	if (!S_ISDIR(st.st_mode)) {
		diag_error(d, NULL, "'%s' is not a directory", path);
		return -ENOTDIR;
	}
	return 0;
}

static char *holder_text(void) {
	char host[256] = "";
	if (gethostname(host, sizeof(host) - 1) < 0 || !host[0])
		strcpy(host, "localhost");
	return xasprintf("%ld %s", (long)getpid(), host);
}

/* "pid 123" or "pid 123 on build7" from a lock file's "<pid> <hostname>". */
static char *holder_describe(const char *holder) {
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

static int busy_error(const struct publish_dest *dest, const char *holder, struct diags *d) {
	_cleanup_free_ char *who = holder_describe(holder);
	diag_error(d, NULL, "'%s' is being published by %s: not waiting (--no-wait)", dest->label, who);
	return -EBUSY;
}

/* The holder's line; a holder that has just taken the lock may not have
 * written it yet. */
static char *local_read_holder(int fd) {
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

static int local_lock(const struct publish_dest *dest, const struct publish_opts *o, int *ret_fd, struct diags *d) {
	_cleanup_free_ char *path = path_join(dest->path, LOCK_NAME);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0) {
		int r = -errno;
		diag_error(d, NULL, "cannot open '%s': %s", path, strerror(errno));
		return r;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno != EWOULDBLOCK) {
			int r = -errno;
			diag_error(d, NULL, "cannot lock '%s': %s", path, strerror(errno));
			close(fd);
			return r;
		}
		_cleanup_free_ char *holder = local_read_holder(fd);
		if (o->no_wait) {
			close(fd);
			return busy_error(dest, holder, d);
		}
		_cleanup_free_ char *who = holder_describe(holder);
		note(o, false, "waiting for the publish of %s to finish", who);
		while (flock(fd, LOCK_EX) < 0) {
			if (errno != EINTR) {
				int r = -errno;
				diag_error(d, NULL, "cannot lock '%s': %s", path, strerror(errno));
				close(fd);
				return r;
			}
		}
	}
	_cleanup_free_ char *me = holder_text();
	_cleanup_free_ char *line = xasprintf("%s\n", me);
	if (ftruncate(fd, 0) < 0 || pwrite(fd, line, strlen(line), 0) < 0) {
		int r = -errno;
		diag_error(d, NULL, "cannot write '%s': %s", path, strerror(errno));
		close(fd);
		return r;
	}
	*ret_fd = fd;
	return 0;
}

static void local_unlock(int fd) {
	if (fd < 0)
		return;
	(void)!ftruncate(fd, 0);
	close(fd);
}

static int local_state(const struct publish_dest *dest, struct state *st, struct diags *d) {
	_cleanup_free_ char *rel = path_join(dest->path, "releases");
	_cleanup_free_ char *cur = path_join(dest->path, "current");
	struct strv names = STRV_INIT;
	int r = 0;
	if (path_exists(rel))
		r = dir_names(rel, &names, NULL, d);
	for (size_t i = 0; i < names.n; i++)
		state_add_entry(st, names.v[i]);
	strv_release(&names);
	if (r < 0)
		return r;
	char target[PATH_MAX];
	ssize_t n = readlink(cur, target, sizeof(target) - 1);
	if (n < 0 && errno == EINVAL) {
		st->current_foreign = true;
		state_set_current(st, NULL);
		return 0;
	}
	if (n < 0 && errno != ENOENT) {
		r = -errno;
		diag_error(d, NULL, "cannot read '%s': %s", cur, strerror(errno));
		return r;
	}
	if (n >= 0)
		target[n] = '\0';
	state_set_current(st, n >= 0 ? target : NULL);
	if (st->current) {
		_cleanup_free_ char *sums = path_join(cur, PUBLISH_SUMS_NAME);
		struct diags quiet = DIAGS_INIT;
		char *text = NULL;
		size_t len = 0;
		if (read_file(sums, SUMS_LIMIT, &text, &len, &quiet) == 0)
			sha256_hex(text, len, st->current_sums);
		free(text);
		diags_release(&quiet);
	}
	return 0;
}

/* Files of the kept releases by sum, to hard-link instead of copying. */
struct link_source {
	char hex[SHA256_HEX_LEN + 1];
	char *path;
};
struct link_sources {
	struct link_source *v;
	size_t n, cap;
};

static int cmp_link_source(const void *a, const void *b) {
	return strcmp(((const struct link_source *)a)->hex, ((const struct link_source *)b)->hex);
}

static void link_sources_add_release(struct link_sources *ls, const char *dir) {
	_cleanup_free_ char *sums_path = path_join(dir, PUBLISH_SUMS_NAME);
	struct diags quiet = DIAGS_INIT;
	char *text = NULL;
	size_t len = 0;
	struct publish_sums sums = PUBLISH_SUMS_INIT;
	if (read_file(sums_path, SUMS_LIMIT, &text, &len, &quiet) == 0 &&
	    publish_sums_parse(text, len, sums_path, &sums, &quiet) == 0) {
		for (size_t i = 0; i < sums.n; i++) {
			GROW(ls->v, ls->cap, ls->n + 1);
			struct link_source *e = &ls->v[ls->n++];
			memcpy(e->hex, sums.v[i].hex, sizeof(e->hex));
			e->path = path_join(dir, sums.v[i].path);
		}
	}
	publish_sums_release(&sums);
	free(text);
	diags_release(&quiet);
}

/* The current release first, then the newest others. */
static void link_sources_load(struct link_sources *ls, const char *root, const struct state *st) {
	size_t used = 0;
	if (st->current) {
		_cleanup_free_ char *dir = xasprintf("%s/releases/%s", root, st->current);
		link_sources_add_release(ls, dir);
		used++;
	}
	for (size_t i = st->releases.n; i-- > 0 && used < LINK_SOURCES_MAX;) {
		if (streq(st->releases.v[i], st->current))
			continue;
		_cleanup_free_ char *dir = xasprintf("%s/releases/%s", root, st->releases.v[i]);
		link_sources_add_release(ls, dir);
		used++;
	}
	/* Stable: for equal sums the first loaded (the current release) wins. */
	for (size_t i = 1; i < ls->n; i++)
		for (size_t k = i; k > 0 && cmp_link_source(&ls->v[k - 1], &ls->v[k]) > 0; k--) {
			struct link_source t = ls->v[k];
			ls->v[k] = ls->v[k - 1];
			ls->v[k - 1] = t;
		}
}

static const struct link_source *link_sources_find(const struct link_sources *ls, const char *hex) {
	size_t lo = 0, hi = ls->n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (strcmp(ls->v[mid].hex, hex) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < ls->n && streq(ls->v[lo].hex, hex) ? &ls->v[lo] : NULL;
}

static void link_sources_release(struct link_sources *ls) {
	for (size_t i = 0; i < ls->n; i++)
		free(ls->v[i].path);
	free(ls->v);
}

/* Hard-links `dst` to a kept file when the bundle's file `src` has the
 * content its sum names and a kept file still holds it. Decided by what
 * the files hold, never by the listing: a changed file in the bundle is
 * copied, and the check of the landed tree names it. */
static bool link_kept(const struct link_sources *ls, const char *hex, const char *src, const char *dst) {
	const struct link_source *kept = link_sources_find(ls, hex);
	if (!kept)
		return false;
	struct diags quiet = DIAGS_INIT;
	char have[SHA256_HEX_LEN + 1], theirs[SHA256_HEX_LEN + 1];
	struct stat st;
	bool ok = lstat(kept->path, &st) == 0 && S_ISREG(st.st_mode) && sha256_file_hex(src, have, NULL, &quiet) == 0 &&
		  streq(have, hex) && sha256_file_hex(kept->path, theirs, NULL, &quiet) == 0 && streq(theirs, hex) &&
		  link(kept->path, dst) == 0;
	diags_release(&quiet);
	return ok;
}

static int fsync_dirs(const char *dir, int depth, struct diags *d) {
	if (depth > 32)
		return 0;
	struct strv names = STRV_INIT;
	int r = dir_names(dir, &names, NULL, d);
	for (size_t i = 0; i < names.n && r == 0; i++) {
		_cleanup_free_ char *sub = path_join(dir, names.v[i]);
		struct stat st;
		if (lstat(sub, &st) == 0 && S_ISDIR(st.st_mode))
			r = fsync_dirs(sub, depth + 1, d);
	}
	strv_release(&names);
	return r < 0 ? r : fsync_path(dir, d);
}

static int local_land(const struct publish_dest *dest, const struct bundle *b, const char *id, const struct state *st,
		      struct publish_result *res, struct diags *d) {
	_cleanup_free_ char *partial = xasprintf("%s/releases/%s.partial", dest->path, id);
	if (mkdir(partial, 0755) < 0) {
		int r = -errno;
		diag_error(d, NULL, "cannot create '%s': %s", partial, strerror(errno));
		return r;
	}
	(void)chmod(partial, 0755);
	int r = 0;
	if (b->is_tar && !b->dir) {
		r = tar_extract(b, partial, d);
	} else {
		struct link_sources ls = { 0 };
		link_sources_load(&ls, dest->path, st);
		for (size_t i = 0; i < b->sums.n && r == 0; i++) {
			const struct publish_sum *s = &b->sums.v[i];
			_cleanup_free_ char *src = path_join(b->dir, s->path);
			_cleanup_free_ char *dst = path_join(partial, s->path);
			r = mkdirs_for(partial, s->path, d);
			if (r < 0)
				break;
			if (link_kept(&ls, s->hex, src, dst))
				res->n_linked++;
			else
				r = copy_file(src, dst, 0644, d);
		}
		link_sources_release(&ls);
		if (r == 0) {
			_cleanup_free_ char *sums = path_join(partial, PUBLISH_SUMS_NAME);
			r = write_file_atomic(sums, b->sums_text, b->sums_len, 0644, d);
		}
	}
	if (r == 0)
		r = fsync_dirs(partial, 0, d);
	return r;
}

static int local_scan(const char *dir, struct scan *s, struct diags *d) {
	struct strv files = STRV_INIT;
	int r = tree_list(dir, &files, d);
	for (size_t i = 0; i < files.n && r == 0; i++) {
		_cleanup_free_ char *full = path_join(dir, files.v[i]);
		struct stat st;
		if (lstat(full, &st) < 0) {
			r = -errno;
			diag_error(d, NULL, "cannot stat '%s': %s", full, strerror(errno));
		} else if (!S_ISREG(st.st_mode)) {
			scan_add(s, files.v[i], NULL);
		} else if (streq(files.v[i], PUBLISH_SUMS_NAME)) {
			r = read_file(full, SUMS_LIMIT, &s->sums_text, &s->sums_len, d);
			char hex[SHA256_HEX_LEN + 1];
			if (r == 0) {
				sha256_hex(s->sums_text, s->sums_len, hex);
				scan_add(s, files.v[i], hex);
			}
		} else {
			char hex[SHA256_HEX_LEN + 1];
			r = sha256_file_hex(full, hex, NULL, d);
			if (r == 0)
				scan_add(s, files.v[i], hex);
		}
	}
	strv_release(&files);
	return r;
}

static int local_rename(const char *from, const char *to, struct diags *d) {
	if (rename(from, to) < 0) {
		int r = -errno;
		diag_error(d, NULL, "cannot rename '%s' to '%s': %s", from, to, strerror(errno));
		return r;
	}
	return 0;
}

/* Promotes releases/<id>.partial (when `promote`) and points `current` at
 * releases/<id>: a new symlink renamed over the old one, so a reader sees
 * the old release or the new one, never neither. */
static int local_switch(const struct publish_dest *dest, const char *id, bool promote, struct diags *d) {
	_cleanup_free_ char *releases = path_join(dest->path, "releases");
	_cleanup_free_ char *final = xasprintf("%s/%s", releases, id);
	_cleanup_free_ char *partial = xasprintf("%s.partial", final);
	_cleanup_free_ char *link_new = path_join(dest->path, "current.new");
	_cleanup_free_ char *cur = path_join(dest->path, "current");
	_cleanup_free_ char *target = xasprintf("releases/%s", id);
	int r = 0;
	if (promote) {
		r = local_rename(partial, final, d);
		if (r == 0)
			r = fsync_path(releases, d);
	}
	if (r < 0)
		return r;
	if (unlink(link_new) < 0 && errno != ENOENT) {
		r = -errno;
		diag_error(d, NULL, "cannot remove '%s': %s", link_new, strerror(errno));
		return r;
	}
	if (symlink(target, link_new) < 0) {
		r = -errno;
		diag_error(d, NULL, "cannot create '%s': %s", link_new, strerror(errno));
		return r;
	}
	r = local_rename(link_new, cur, d);
	if (r < 0) {
		unlink(link_new);
		return r;
	}
	return fsync_path(dest->path, d);
}

/* Removes releases/<name>; a release is renamed to <id>.partial first, so
 * that one interrupted halfway is never taken for a complete one. */
static int local_remove(const struct publish_dest *dest, const char *name, struct diags *d) {
	_cleanup_free_ char *path = xasprintf("%s/releases/%s", dest->path, name);
	_cleanup_free_ char *partial = endswith(name, ".partial") ? xstrdup(path) : xasprintf("%s.partial", path);
	if (!streq(path, partial)) {
		int r = local_rename(path, partial, d);
		if (r < 0)
			return r;
	}
	int r = rm_rf(partial);
	if (r < 0)
		diag_error(d, NULL, "cannot remove '%s': %s", partial, strerror(-r));
	return r;
}

struct inode_seen {
	dev_t dev;
	ino_t ino;
};

/* Apparent size of a tree as du -sb counts it: hard links once. */
static uint64_t tree_size(const char *dir, struct inode_seen **seen, size_t *n, size_t *cap, int depth) {
	struct stat st;
	if (lstat(dir, &st) < 0)
		return 0;
	uint64_t size = (uint64_t)st.st_size;
	if (!S_ISDIR(st.st_mode) || depth > 32)
		return size;
	struct strv names = STRV_INIT;
	struct diags quiet = DIAGS_INIT;
	if (dir_names(dir, &names, NULL, &quiet) == 0)
		for (size_t i = 0; i < names.n; i++) {
			_cleanup_free_ char *sub = path_join(dir, names.v[i]);
			struct stat s2;
			if (lstat(sub, &s2) < 0)
				continue;
			if (S_ISDIR(s2.st_mode)) {
				size += tree_size(sub, seen, n, cap, depth + 1);
				continue;
			}
			bool dup = false;
			if (s2.st_nlink > 1) {
				for (size_t k = 0; k < *n && !dup; k++)
					dup = (*seen)[k].dev == s2.st_dev && (*seen)[k].ino == s2.st_ino;
				if (!dup) {
					GROW(*seen, *cap, *n + 1);
					(*seen)[(*n)++] = (struct inode_seen){ s2.st_dev, s2.st_ino };
				}
			}
			if (!dup)
				size += (uint64_t)s2.st_size;
		}
	strv_release(&names);
	diags_release(&quiet);
	return size;
}

static void local_release_info(const char *dir, struct publish_release *rel) {
	struct inode_seen *seen = NULL;
	size_t n = 0, cap = 0;
	rel->size = tree_size(dir, &seen, &n, &cap, 0);
	free(seen);
	struct strv names = STRV_INIT;
	struct diags quiet = DIAGS_INIT;
	if (dir_names(dir, &names, NULL, &quiet) == 0)
		for (size_t i = 0; i < names.n; i++) {
			_cleanup_free_ char *kernel = xasprintf("%s/%s/vmlinuz", dir, names.v[i]);
			struct stat st;
			if (lstat(kernel, &st) == 0 && S_ISREG(st.st_mode))
				strv_push(&rel->roles, names.v[i]);
		}
	strv_release(&names);
	_cleanup_free_ char *nodes = path_join(dir, "nodes");
	if (path_exists(nodes) && dir_names(nodes, &names, NULL, &quiet) == 0)
		for (size_t i = 0; i < names.n; i++)
			if (endswith(names.v[i], ".cpio.gz") && strlen(names.v[i]) > strlen(".cpio.gz"))
				strv_push_take(&rel->nodes, xstrndup(names.v[i], strlen(names.v[i]) - strlen(".cpio.gz")));
	strv_release(&names);
	diags_release(&quiet);
}

/* ---- remote roots: a few sh scripts over ssh -------------------------- */

/* Every script gets the root ($1) and its label for messages ($2). */
#define SH_PROLOGUE \
	"set -u\n" \
	"die() { printf '%s\\n' \"$*\" >&2; exit 1; }\n" \
	"[ -d \"$1\" ] || die \"'$2' is not a directory\"\n" \
	"cd \"$1\" || die \"cannot enter '$2'\"\n"

/* What is in the root: `current` and the entries of releases/. */
#define SH_STATE \
	"if [ -L current ]; then\n" \
	"  printf 'current %s\\n' \"$(readlink current)\"\n" \
	"  [ ! -f current/SHA256SUMS ] || printf 'sums %s\\n' \"$(sha256sum <current/SHA256SUMS | cut -c1-64)\"\n" \
	"elif [ -e current ]; then echo current-not-link; fi\n" \
	"for f in releases/*; do [ -e \"$f\" ] && printf 'entry %s\\n' \"${f#releases/}\"; done\n"

/* Holds the lock until our end of its stdin closes (we finish, or die);
 * a publish ($5 = create) creates a missing root. */
static const char sh_lock[] =
	"[ \"$5\" != create ] || [ -e \"$1\" ] || mkdir -p -- \"$1\" || { printf \"cannot create '%s'\\n\" \"$2\" >&2; exit 1; }\n"
	SH_PROLOGUE
	"mkdir -p releases || die \"cannot create '$2/releases'\"\n"
	"exec 9>>" LOCK_NAME "\n"
	"if ! flock -n 9; then\n"
	"  printf 'busy %s\\n' \"$(head -n 1 " LOCK_NAME ")\"\n"
	"  [ \"$4\" = wait ] || exit " STR(EXIT_BUSY) "\n"
	"  flock 9 || die \"cannot lock '$2/" LOCK_NAME "'\"\n"
	"fi\n"
	"printf '%s\\n' \"$3\" >" LOCK_NAME "\n"
	SH_STATE
	"echo ready\n"
	"cat >/dev/null\n"
	": >" LOCK_NAME "\n";

static const char sh_list[] = SH_PROLOGUE
	SH_STATE
	"for f in releases/*; do\n"
	"  n=${f#releases/}\n"
	"  case $n in *.partial) continue;; esac\n"
	"  [ -d \"$f\" ] && [ ! -L \"$f\" ] || continue\n"
	"  printf 'size %s %s\\n' \"$n\" \"$(du -sb \"$f\" | cut -f1)\"\n"
	"  for v in \"$f\"/*/vmlinuz; do [ -f \"$v\" ] || continue; v=${v%/vmlinuz}; printf 'role %s %s\\n' \"$n\" \"${v##*/}\"; done\n"
	"  for c in \"$f\"/nodes/*.cpio.gz; do [ -f \"$c\" ] || continue; c=${c##*/}; printf 'node %s %s\\n' \"$n\" \"${c%.cpio.gz}\"; done\n"
	"done\n";

/* Lists releases/$3 for the check: its SHA256SUMS (length-prefixed), then
 * "<sum>  ./<path>" for every file and "other ./<path>" for anything else
 * that is not a directory. */
static const char sh_scan[] = SH_PROLOGUE
	"cd \"releases/$3\" || die \"cannot enter '$2/releases/$3'\"\n"
	"if [ -f SHA256SUMS ]; then printf 'sums %s\\n' \"$(wc -c <SHA256SUMS)\"; cat SHA256SUMS; else echo nosums; fi\n"
	"find . ! -type d ! -type f -exec printf 'other %s\\n' {} + || die \"cannot list '$2/releases/$3'\"\n"
	"find . -type f -exec sha256sum {} + || die \"cannot read the files of '$2/releases/$3'\"\n";

/* Promotes releases/$3.partial when $4 is 1, then points `current` at releases/$3. */
static const char sh_switch[] = SH_PROLOGUE
	"r=releases/$3\n"
	"if [ \"$4\" = 1 ]; then\n"
	"  [ ! -e \"$r\" ] || die \"'$2/$r' exists already\"\n"
	"  mv -T \"$r.partial\" \"$r\" || die \"cannot rename '$2/$r.partial' to '$2/$r'\"\n"
	"fi\n"
	"[ -d \"$r\" ] && [ ! -L \"$r\" ] || die \"'$2/$r' is not a directory\"\n"
	"if [ -e current ] && [ ! -L current ]; then die \"'$2/current' is not a symbolic link: refusing to replace it\"; fi\n"
	"find \"$r\" -exec sync -- {} + 2>/dev/null || sync\n"
	"rm -f current.new && ln -s \"$r\" current.new || die \"cannot create '$2/current.new'\"\n"
	"mv -T current.new current || die \"cannot rename '$2/current.new' to '$2/current'\"\n"
	"sync -- . 2>/dev/null || sync\n";

/* Removes releases/$3...; a release goes through <id>.partial. */
static const char sh_remove[] = SH_PROLOGUE
	"cd releases || exit 0\n"
	"shift 2\n"
	"for n; do\n"
	"  case $n in *.partial) ;; *) mv -T \"$n\" \"$n.partial\" || die \"cannot rename '$n' in releases/\"; n=$n.partial;; esac\n"
	"  rm -rf \"$n\" || die \"cannot remove '$n' in releases/\"\n"
	"done\n";

/* ssh ... HOST "sh -c 'SCRIPT' dlws-publish 'ROOT' 'LABEL' 'ARG'...": the
 * remote login shell only has to pass quoted words on to sh. */
static void remote_argv(const struct publish_dest *dest, const char *script, const char *const *args, size_t n_args,
			struct strv *argv) {
	for (size_t i = 0; i < dest->ssh_argv.n; i++)
		strv_push(argv, dest->ssh_argv.v[i]);
	strv_push(argv, dest->host);
	struct buf cmd = BUF_INIT;
	_cleanup_free_ char *q = publish_sh_quote(script);
	buf_printf(&cmd, "sh -c %s dlws-publish", q);
	const char *fixed[] = { dest->path, dest->label };
	for (size_t i = 0; i < 2 + n_args; i++) {
		_cleanup_free_ char *a = publish_sh_quote(i < 2 ? fixed[i] : args[i - 2]);
		buf_printf(&cmd, " %s", a);
	}
	strv_push_take(argv, buf_steal(&cmd, NULL));
}

static int remote_failed(const struct publish_dest *dest, int status, struct buf *err, struct diags *d) {
	struct strv lines = STRV_INIT;
	stderr_lines(err, &lines, 4);
	const char *last = lines.n ? lines.v[0] : "no message";
	char st[64];
	if (WIFEXITED(status) && WEXITSTATUS(status) == 255)
		diag_error(d, NULL, "cannot run commands on '%s' with '%s': %s", dest->host, dest->ssh, last);
	else if (WIFEXITED(status) && WEXITSTATUS(status) == 1 && lines.n)
		diag_error(d, NULL, "%s", last);
	else
		diag_error(d, NULL, "a command on '%s' failed (%s): %s", dest->host, status_text(status, st), last);
	for (size_t i = lines.n; i-- > 1;)
		diag_note(d, NULL, "%s", lines.v[i]);
	strv_release(&lines);
	return -EIO;
}

static int remote_sh(const struct publish_dest *dest, const char *script, const char *const *args, size_t n_args,
		     struct buf *out, struct diags *d) {
	struct strv argv = STRV_INIT;
	remote_argv(dest, script, args, n_args, &argv);
	struct buf err = { .limit = 64 << 10 };
	int status = 0;
	int r = run_capture((const char *const *)argv.v, out, &err, &status, d);
	if (r == 0 && status != 0)
		r = remote_failed(dest, status, &err, d);
	buf_release(&err);
	strv_release(&argv);
	return r;
}

/* Lines of a script's output: each call returns the next one (NUL-terminated in place), NULL at the end. */
static char *next_line(char **cursor, char *end) {
	if (*cursor >= end)
		return NULL;
	char *line = *cursor;
	char *nl = memchr(line, '\n', (size_t)(end - line));
	if (nl) {
		*nl = '\0';
		*cursor = nl + 1;
	} else {
		*cursor = end;
	}
	return line;
}

static void remote_parse_state(char *text, size_t len, struct state *st) {
	char *cursor = text, *line;
	const char *target = NULL;
	while ((line = next_line(&cursor, text + len))) {
		if (startswith(line, "current "))
			target = line + strlen("current ");
		else if (streq(line, "current-not-link"))
			st->current_foreign = true;
		else if (startswith(line, "sums ") && strlen(line) == 5 + SHA256_HEX_LEN && is_hex64(line + 5))
			memcpy(st->current_sums, line + 5, SHA256_HEX_LEN + 1);
		else if (startswith(line, "entry "))
			state_add_entry(st, line + strlen("entry "));
	}
	state_set_current(st, target);
	if (!st->current)
		st->current_sums[0] = '\0';
}

/* The ssh session holding the remote root's lock. */
struct remote_lock {
	struct child c;
	struct buf out, err;
};

static int remote_lock(const struct publish_dest *dest, const struct publish_opts *o, bool create, struct remote_lock *lk,
		       struct state *st, struct diags *d) {
	_cleanup_free_ char *me = holder_text();
	const char *args[] = { me, o->no_wait ? "nowait" : "wait", create ? "create" : "exists" };
	struct strv argv = STRV_INIT;
	remote_argv(dest, sh_lock, args, 3, &argv);
	lk->err.limit = 64 << 10;
	int r = child_start((const char *const *)argv.v, true, &lk->c, d);
	strv_release(&argv);
	if (r < 0)
		return r;
	size_t seen = 0;
	bool ready = false, waited = false;
	char *holder = NULL;
	while (!ready && child_pump(&lk->c, &lk->out, &lk->err)) {
		char *nl;
		while (!ready && lk->out.data && (nl = memchr(lk->out.data + seen, '\n', lk->out.len - seen))) {
			char *line = xstrndup(lk->out.data + seen, (size_t)(nl - lk->out.data - seen));
			seen = (size_t)(nl - lk->out.data) + 1;
			if (streq(line, "ready")) {
				ready = true;
			} else if (startswith(line, "busy ") && !waited) {
				free(holder);
				holder = xstrdup(line + 5);
				if (!o->no_wait) {
					_cleanup_free_ char *who = holder_describe(holder);
					note(o, false, "waiting for the publish of %s to finish", who);
				}
				waited = true;
			}
			free(line);
		}
	}
	if (ready) {
		remote_parse_state(lk->out.data, seen, st);
		free(holder);
		return 0;
	}
	int status = child_finish(&lk->c, &lk->out, &lk->err);
	if (WIFEXITED(status) && WEXITSTATUS(status) == EXIT_BUSY)
		r = busy_error(dest, holder, d);
	else
		r = remote_failed(dest, status, &lk->err, d);
	free(holder);
	return r;
}

/* The lock is ours while the session holding it lasts: a dropped
 * connection must not let a publish switch `current` unlocked. */
static int remote_lock_held(const struct publish_dest *dest, struct remote_lock *lk, struct diags *d) {
	int status;
	if (lk->c.pid > 0 && waitpid(lk->c.pid, &status, WNOHANG) == 0)
		return 0;
	lk->c.pid = -1;
	diag_error(d, NULL, "lost the lock on '%s': the ssh session holding it ended", dest->label);
	return -EIO;
}

static void remote_unlock(struct remote_lock *lk) {
	if (lk->c.pid > 0 || lk->c.in >= 0 || lk->c.out >= 0 || lk->c.err >= 0)
		(void)child_finish(&lk->c, &lk->out, &lk->err);
	buf_release(&lk->out);
	buf_release(&lk->err);
}

static int remote_land(const struct publish_dest *dest, const struct bundle *b, const char *id, const struct state *st,
		       const struct publish_opts *o, struct diags *d) {
	struct strv argv = STRV_INIT;
	/* -c: decide by content, never by size and time (a tar's files all
	 * carry one mtime); no -t and fixed modes, so an unchanged file
	 * matches its kept copy in every attribute and is hard-linked. */
	const char *fixed[] = { "rsync", "-r", "-c", "-p", "--chmod=D755,F644", "-e" };
	for (size_t i = 0; i < ARRAY_SIZE(fixed); i++)
		strv_push(&argv, fixed[i]);
	strv_push(&argv, dest->ssh);
	size_t used = 0;
	if (st->current) {
		strv_push_take(&argv, xasprintf("--link-dest=../%s", st->current));
		used++;
	}
	for (size_t i = st->releases.n; i-- > 0 && used < LINK_SOURCES_MAX;)
		if (!streq(st->releases.v[i], st->current)) {
			strv_push_take(&argv, xasprintf("--link-dest=../%s", st->releases.v[i]));
			used++;
		}
	strv_push_take(&argv, xasprintf("%s/", b->dir));
	strv_push_take(&argv, xasprintf("%s:%s/releases/%s.partial/", dest->host, dest->path, id));
	note(o, true, "running rsync to '%s:%s/releases/%s.partial/'", dest->host, dest->path, id);
	struct buf out = BUF_INIT, err = { .limit = 64 << 10 };
	int status = 0;
	int r = run_capture((const char *const *)argv.v, &out, &err, &status, d);
	if (r == 0 && status != 0) {
		struct strv lines = STRV_INIT;
		stderr_lines(&err, &lines, 4);
		char stx[64];
		diag_error(d, NULL, "cannot copy '%s' to '%s' with rsync (%s): %s", b->arg, dest->label, status_text(status, stx),
			   lines.n ? lines.v[0] : "no message");
		for (size_t i = lines.n; i-- > 1;)
			diag_note(d, NULL, "%s", lines.v[i]);
		strv_release(&lines);
		r = -EIO;
	}
	buf_release(&out);
	buf_release(&err);
	strv_release(&argv);
	return r;
}

static int remote_scan(const struct publish_dest *dest, const char *name, struct scan *s, struct diags *d) {
	struct buf out = BUF_INIT;
	const char *args[] = { name };
	int r = remote_sh(dest, sh_scan, args, 1, &out, d);
	if (r < 0) {
		buf_release(&out);
		return r;
	}
	char *text = out.data ? out.data : (char *)"";
	char *end = text + out.len, *cursor = text;
	char *first = next_line(&cursor, end);
	unsigned long long n = 0;
	if (first && startswith(first, "sums ")) {
		char *e;
		n = strtoull(first + 5, &e, 10);
		if (n > (unsigned long long)(end - cursor) || n > SUMS_LIMIT) {
			diag_error(d, NULL, "cannot read '%s/releases/%s/%s': unexpected answer", dest->label, name, PUBLISH_SUMS_NAME);
			buf_release(&out);
			return -EIO;
		}
		s->sums_text = xstrndup(cursor, (size_t)n);
		s->sums_len = (size_t)n;
		cursor += n;
	}
	char *line;
	while ((line = next_line(&cursor, end))) {
		if (startswith(line, "other ./"))
			scan_add(s, line + strlen("other ./"), NULL);
		else if (strlen(line) > SHA256_HEX_LEN + 4 && is_hex64(line) && startswith(line + SHA256_HEX_LEN, "  ./")) {
			line[SHA256_HEX_LEN] = '\0';
			scan_add(s, line + SHA256_HEX_LEN + 4, line);
		}
		else if (*line)
			scan_add(s, line, NULL);  /* a name sha256sum had to escape: not ours */
	}
	buf_release(&out);
	return 0;
}

static void remote_parse_list(char *text, size_t len, const struct state *st, struct publish_release **ret, size_t *ret_n) {
	struct publish_release *v = xcalloc(st->releases.n ? st->releases.n : 1, sizeof(*v));
	for (size_t i = 0; i < st->releases.n; i++) {
		v[i].id = xstrdup(st->releases.v[i]);
		v[i].published = release_time(v[i].id);
		v[i].current = streq(v[i].id, st->current);
	}
	char *cursor = text, *line;
	while ((line = next_line(&cursor, text + len))) {
		char *sp1 = strchr(line, ' ');
		char *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
		if (!sp2)
			continue;
		*sp1 = *sp2 = '\0';
		const char *id = sp1 + 1, *value = sp2 + 1;
		struct publish_release *rel = NULL;
		for (size_t i = 0; i < st->releases.n && !rel; i++)
			if (streq(v[i].id, id))
				rel = &v[i];
		if (!rel)
			continue;
		if (streq(line, "size"))
			rel->size = strtoull(value, NULL, 10);
		else if (streq(line, "role"))
			strv_push(&rel->roles, value);
		else if (streq(line, "node"))
			strv_push(&rel->nodes, value);
	}
	*ret = v;
	*ret_n = st->releases.n;
}

/* ---- one root, local or remote ---------------------------------------- */

struct server {
	const struct publish_dest *dest;
	const struct publish_opts *opts;
	int lock_fd;
	struct remote_lock rlock;
};

/* Takes the root's lock and reads what is there; `create`s a missing root. */
static int server_open(struct server *s, const struct publish_dest *dest, const struct publish_opts *o, bool create,
		       struct state *st, struct diags *d) {
	*s = (struct server){ .dest = dest, .opts = o, .lock_fd = -1, .rlock = { .c = CHILD_INIT } };
	if (dest->host)
		return remote_lock(dest, o, create, &s->rlock, st, d);
	int r = 0;
	if (create && !path_exists(dest->path) && mkdir_p(dest->path, 0755) < 0) {
		r = -errno;
		diag_error(d, NULL, "cannot create '%s': %s", dest->path, strerror(errno));
		return r;
	}
	r = local_check_root(dest->path, d);
	_cleanup_free_ char *releases = path_join(dest->path, "releases");
	if (r == 0 && mkdir(releases, 0755) < 0 && errno != EEXIST) {
		r = -errno;
		diag_error(d, NULL, "cannot create '%s': %s", releases, strerror(errno));
	}
	if (r == 0)
		r = local_lock(dest, o, &s->lock_fd, d);
	if (r == 0)
		r = local_state(dest, st, d);
	return r;
}

static void server_close(struct server *s) {
	local_unlock(s->lock_fd);
	s->lock_fd = -1;
	remote_unlock(&s->rlock);
}

static int server_remove(struct server *s, const struct strv *names, struct diags *d) {
	if (!names->n)
		return 0;
	int r = 0;
	if (s->dest->host) {
		r = remote_lock_held(s->dest, &s->rlock, d);
		if (r < 0)
			return r;
		struct buf out = BUF_INIT;
		r = remote_sh(s->dest, sh_remove, (const char *const *)names->v, names->n, &out, d);
		buf_release(&out);
		return r;
	}
	for (size_t i = 0; i < names->n && r == 0; i++)
		r = local_remove(s->dest, names->v[i], d);
	return r;
}

static void server_remove_quietly(struct server *s, const char *name) {
	struct strv one = STRV_INIT;
	struct diags quiet = DIAGS_INIT;
	strv_push(&one, name);
	struct buf out = BUF_INIT;
	if (s->dest->host)
		(void)remote_sh(s->dest, sh_remove, (const char *const *)one.v, 1, &out, &quiet);
	else
		(void)local_remove(s->dest, name, &quiet);
	buf_release(&out);
	strv_release(&one);
	diags_release(&quiet);
}

static int server_scan(struct server *s, const char *name, struct scan *sc, struct diags *d) {
	if (s->dest->host)
		return remote_scan(s->dest, name, sc, d);
	_cleanup_free_ char *dir = xasprintf("%s/releases/%s", s->dest->path, name);
	return local_scan(dir, sc, d);
}

static int server_switch(struct server *s, const char *id, bool promote, struct diags *d) {
	if (!s->dest->host)
		return local_switch(s->dest, id, promote, d);
	int r = remote_lock_held(s->dest, &s->rlock, d);
	if (r < 0)
		return r;
	struct buf out = BUF_INIT;
	const char *args[] = { id, promote ? "1" : "0" };
	r = remote_sh(s->dest, sh_switch, args, 2, &out, d);
	buf_release(&out);
	return r;
}

/* The releases --keep removes once `current` is `cur`: all but the newest
 * `keep`, the current one, the one before it (where --rollback goes) and
 * `was`, the one current until now. */
static void prune_list(const struct strv *ids, const char *cur, const char *was, unsigned keep, struct strv *ret) {
	size_t at = ids->n;
	for (size_t i = 0; i < ids->n; i++)
		if (streq(ids->v[i], cur))
			at = i;
	for (size_t i = 0; i < ids->n; i++) {
		bool kept = i + keep >= ids->n || i == at || (at < ids->n && i + 1 == at) || streq(ids->v[i], was);
		if (!kept)
			strv_push(ret, ids->v[i]);
	}
}

static int refuse_foreign_current(const struct publish_dest *dest, const struct state *st, struct diags *d) {
	if (!st->current_foreign)
		return 0;
	if (st->current_target)
		diag_error(d, NULL, "'%s/current' points to '%s', not to a release in '%s/releases': refusing to replace it (move it away first)",
			   dest->label, st->current_target, dest->label);
	else
		diag_error(d, NULL, "'%s/current' is not a symbolic link: refusing to replace it (move it away first)", dest->label);
	return -EEXIST;
}

static int publish_locked(struct server *s, const struct bundle *b, struct state *st, struct publish_result *res,
			  struct diags *d) {
	const struct publish_dest *dest = s->dest;
	const struct publish_opts *o = s->opts;
	int r = refuse_foreign_current(dest, st, d);
	if (r < 0)
		return r;
	res->n_files = b->sums.n;
	res->size = b->size;
	if (st->current && streq(st->current_sums, b->sums_hex)) {
		res->unchanged = true;
		res->id = xstrdup(st->current);
		return 0;
	}
	if (st->current_target)
		note(o, false, "'%s/current' points to '%s', which is missing: replacing it", dest->label, st->current_target);
	if (st->partials.n) {
		r = server_remove(s, &st->partials, d);
		if (r < 0)
			return r;
		for (size_t i = 0; i < st->partials.n; i++) {
			note(o, false, "removed '%s/releases/%s', left by an interrupted publish", dest->label, st->partials.v[i]);
			strv_push(&res->stale, st->partials.v[i]);
		}
	}
	_cleanup_free_ char *id = publish_release_id(o->now, state_latest(st), b->sums_hex);
	_cleanup_free_ char *partial = xasprintf("%s.partial", id);
	note(o, true, "copying '%s' to '%s/releases/%s'", b->arg, dest->label, partial);
	r = dest->host ? remote_land(dest, b, id, st, o, d) : local_land(dest, b, id, st, res, d);
	struct scan sc = { 0 };
	if (r == 0) {
		note(o, true, "checking '%s/releases/%s' against its %s", dest->label, partial, PUBLISH_SUMS_NAME);
		r = server_scan(s, partial, &sc, d);
	}
	_cleanup_free_ char *where = xasprintf("%s/releases/%s", dest->label, partial);
	if (r == 0)
		r = scan_check(&sc, b->sums_text, b->sums_len, &b->sums, where, b, d);
	scan_release(&sc);
	if (r == 0)
		r = server_switch(s, id, true, d);
	if (r < 0) {
		server_remove_quietly(s, partial);
		return r;
	}
	res->id = xstrdup(id);
	res->previous = st->current ? xstrdup(st->current) : NULL;

	struct strv ids = STRV_INIT, prune = STRV_INIT;
	for (size_t i = 0; i < st->releases.n; i++)
		strv_push(&ids, st->releases.v[i]);
	strv_push(&ids, id);
	prune_list(&ids, id, st->current, o->keep, &prune);
	if (prune.n) {
		struct diags pd = DIAGS_INIT;
		if (server_remove(s, &prune, &pd) == 0) {
			for (size_t i = 0; i < prune.n; i++)
				strv_push(&res->removed, prune.v[i]);
		} else {
			/* Published all the same: what is left is removed next time. */
			for (size_t i = 0; i < pd.n; i++)
				diag_warning(d, NULL, "%s", pd.v[i].msg);
		}
		diags_release(&pd);
	}
	strv_release(&ids);
	strv_release(&prune);
	return 0;
}

int publish_bundle(const char *bundle, const struct publish_dest *dest, const struct publish_opts *opts,
		   struct publish_result *ret, struct diags *d) {
	struct bundle b = { 0 };
	struct state st = { 0 };
	struct publish_result res = PUBLISH_RESULT_INIT;
	struct server s = { .lock_fd = -1, .rlock = { .c = CHILD_INIT } };
	/* A bad bundle is refused before the root is touched. */
	int r = bundle_open(bundle, dest->host != NULL, &b, d);
	if (r == 0)
		r = server_open(&s, dest, opts, true, &st, d);
	if (r == 0)
		r = publish_locked(&s, &b, &st, &res, d);
	server_close(&s);
	state_release(&st);
	bundle_release(&b);
	if (r < 0) {
		publish_result_release(&res);
		return r;
	}
	*ret = res;
	return 0;
}

static int rollback_locked(struct server *s, const char *want, struct state *st, struct publish_result *res,
			   struct diags *d) {
	const struct publish_dest *dest = s->dest;
	int r = refuse_foreign_current(dest, st, d);
	if (r < 0)
		return r;
	const char *target = NULL;
	if (want) {
		if (!strv_sorted_contains(&st->releases, want)) {
			diag_error(d, NULL, "there is no release '%s' in '%s/releases'", want, dest->label);
			return -ENOENT;
		}
		target = want;
	} else {
		if (!st->current) {
			diag_error(d, NULL, "'%s/current' does not point to a release: nothing to roll back from (name one with --rollback=ID)",
				   dest->label);
			return -ENOENT;
		}
		for (size_t i = 1; i < st->releases.n; i++)
			if (streq(st->releases.v[i], st->current))
				target = st->releases.v[i - 1];
		if (!target) {
			diag_error(d, NULL, "there is no release before '%s' in '%s/releases'", st->current, dest->label);
			return -ENOENT;
		}
	}
	res->id = xstrdup(target);
	res->previous = st->current ? xstrdup(st->current) : NULL;
	if (streq(target, st->current)) {
		res->unchanged = true;
		return 0;
	}
	/* Whatever happened to it since, a release goes live only complete. */
	note(s->opts, true, "checking '%s/releases/%s' against its %s", dest->label, target, PUBLISH_SUMS_NAME);
	struct scan sc = { 0 };
	struct publish_sums sums = PUBLISH_SUMS_INIT;
	_cleanup_free_ char *where = xasprintf("%s/releases/%s", dest->label, target);
	_cleanup_free_ char *sums_name = xasprintf("%s/%s", where, PUBLISH_SUMS_NAME);
	r = server_scan(s, target, &sc, d);
	if (r == 0 && !sc.sums_text) {
		diag_error(d, NULL, "'%s' is missing: cannot check the release", sums_name);
		r = -ENOENT;
	}
	if (r == 0)
		r = publish_sums_parse(sc.sums_text, sc.sums_len, sums_name, &sums, d);
	if (r == 0) {
		char *text = xstrndup(sc.sums_text, sc.sums_len);
		r = scan_check(&sc, text, sc.sums_len, &sums, where, NULL, d);
		free(text);
		res->n_files = sums.n;
	}
	publish_sums_release(&sums);
	scan_release(&sc);
	if (r == 0)
		r = server_switch(s, target, false, d);
	return r;
}

int publish_rollback(const struct publish_dest *dest, const char *id, const struct publish_opts *opts,
		     struct publish_result *ret, struct diags *d) {
	if (id && !publish_is_release_id(id)) {
		diag_error(d, NULL, "'%s' is not a release id (like 20261201T181500Z-3fa2c1d9; see --list)", id);
		return -EINVAL;
	}
	struct state st = { 0 };
	struct publish_result res = PUBLISH_RESULT_INIT;
	struct server s;
	int r = server_open(&s, dest, opts, false, &st, d);
	if (r == 0)
		r = rollback_locked(&s, id, &st, &res, d);
	server_close(&s);
	state_release(&st);
	if (r < 0) {
		publish_result_release(&res);
		return r;
	}
	*ret = res;
	return 0;
}

int publish_list(const struct publish_dest *dest, struct publish_release **ret, size_t *ret_n, struct diags *d) {
	struct state st = { 0 };
	int r = 0;
	if (dest->host) {
		struct buf out = BUF_INIT;
		r = remote_sh(dest, sh_list, NULL, 0, &out, d);
		if (r == 0) {
			char *text = out.data ? out.data : (char *)"";
			/* The state lines come first; both parsers skip what is not theirs. */
			char *copy = xstrndup(text, out.len);
			remote_parse_state(copy, out.len, &st);
			free(copy);
			remote_parse_list(text, out.len, &st, ret, ret_n);
		}
		buf_release(&out);
		state_release(&st);
		return r;
	}
	r = local_check_root(dest->path, d);
	if (r == 0)
		r = local_state(dest, &st, d);
	if (r == 0) {
		struct publish_release *v = xcalloc(st.releases.n ? st.releases.n : 1, sizeof(*v));
		for (size_t i = 0; i < st.releases.n; i++) {
			v[i].id = xstrdup(st.releases.v[i]);
			v[i].published = release_time(v[i].id);
			v[i].current = streq(v[i].id, st.current);
			_cleanup_free_ char *dir = xasprintf("%s/releases/%s", dest->path, v[i].id);
			local_release_info(dir, &v[i]);
		}
		*ret = v;
		*ret_n = st.releases.n;
	}
	state_release(&st);
	return r;
}
