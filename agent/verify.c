#include "verify.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "paths.h"
#include "sha256.h"

enum { FRAGMENT_LIMIT = 16 << 20, MANIFEST_MAX_LINES = 1 << 20 };

struct manifest {
	char **paths;   /* owned; live paths of the lines that verified */
	size_t n, cap;
};

struct manifest *manifest_new(void)
{
	return calloc(1, sizeof(struct manifest));
}

void manifest_free(struct manifest *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->n; i++)
		free(m->paths[i]);
	free(m->paths);
	free(m);
}

static int manifest_add(struct manifest *m, const char *path)
{
	if (m->n == m->cap) {
		size_t ncap = m->cap ? m->cap * 2 : 64;
		char **p;
		if (ncap > MANIFEST_MAX_LINES)
			return -E2BIG;
		p = realloc(m->paths, ncap * sizeof *p);
		if (!p)
			return -ENOMEM;
		m->paths = p;
		m->cap = ncap;
	}
	m->paths[m->n] = strdup(path);
	if (!m->paths[m->n])
		return -ENOMEM;
	m->n++;
	return 0;
}

bool manifest_has(const struct manifest *m, const char *live_path)
{
	for (size_t i = 0; i < m->n; i++)
		if (strcmp(m->paths[i], live_path) == 0)
			return true;
	return false;
}

struct line {
	char sha[65];
	unsigned long long size;
	unsigned mode;
	const char *path;
};

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

/* "<sha256> <size> <mode> <path>": the rest after the third field is the path. */
static bool parse_line(char *s, struct line *l)
{
	char *end;
	size_t n;

	for (n = 0; n < 64; n++) {
		if (!isxdigit((unsigned char)s[n]))
			return false;
		l->sha[n] = (char)tolower((unsigned char)s[n]);
	}
	l->sha[64] = '\0';
	s += 64;
	if (!is_blank(*s))
		return false;
	while (is_blank(*s))
		s++;
	if (!isdigit((unsigned char)*s))
		return false;
	errno = 0;
	l->size = strtoull(s, &end, 10);
	if (errno || !is_blank(*end))
		return false;
	s = end;
	while (is_blank(*s))
		s++;
	for (n = 0; s[n] >= '0' && s[n] <= '7'; n++)
		;
	if (n == 0 || n > 5 || !is_blank(s[n]))
		return false;
	l->mode = (unsigned)strtoul(s, NULL, 8);
	s += n;
	while (is_blank(*s))
		s++;
	n = strlen(s);
	while (n > 0 && is_blank(s[n - 1]))
		s[--n] = '\0';
	if (s[0] != '/')
		return false;
	l->path = s;
	return true;
}

/* Checks one line; reason[0] stays '\0' when the file matches. */
static int check_file(const struct line *l, char *reason, size_t n)
{
	char path[AGENT_PATH_MAX], sum[65];
	struct stat st;
	size_t len = 0;
	int r;

	reason[0] = '\0';
	r = rooted(path, sizeof path, l->path);
	if (r < 0)
		return r;
	if (lstat(path, &st) < 0) {
		snprintf(reason, n, "%s", errno == ENOENT ? "missing" : strerror(errno));
		return 0;
	}
	if (S_ISLNK(st.st_mode)) {
		snprintf(reason, n, "is a symbolic link");
		return 0;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(reason, n, "not a regular file");
		return 0;
	}
	if ((unsigned long long)st.st_size != l->size)
		len += (size_t)snprintf(reason + len, n - len, "size %llu, expected %llu",
					(unsigned long long)st.st_size, l->size);
	if ((st.st_mode & 07777) != l->mode && len < n)
		len += (size_t)snprintf(reason + len, n - len, "%smode %o, expected %o",
					len ? "; " : "", (unsigned)(st.st_mode & 07777), l->mode);
	r = sha256_file(path, sum);
	if (r < 0) {
		if (len < n)
			snprintf(reason + len, n - len, "%scannot read: %s", len ? "; " : "", strerror(-r));
		return 0;
	}
	if (strcmp(sum, l->sha) != 0 && len < n)
		snprintf(reason + len, n - len, "%ssha256 %s, expected %s", len ? "; " : "", sum, l->sha);
	return 0;
}

static int read_fragment(const char *path, char **ret)
{
	char *buf;
	size_t len = 0, cap = 65536;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	buf = malloc(cap + 1);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	for (;;) {
		ssize_t got;
		if (len == cap) {
			char *p;
			if (cap >= FRAGMENT_LIMIT) {
				free(buf);
				close(fd);
				return -EFBIG;
			}
			cap *= 2;
			p = realloc(buf, cap + 1);
			if (!p) {
				free(buf);
				close(fd);
				return -ENOMEM;
			}
			buf = p;
		}
		got = read(fd, buf + len, cap - len);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			int r = -errno;
			free(buf);
			close(fd);
			return r;
		}
		if (got == 0)
			break;
		len += (size_t)got;
	}
	close(fd);
	buf[len] = '\0';
	*ret = buf;
	return 0;
}

static int skip_dots(const struct dirent *d)
{
	return d->d_name[0] != '.';
}

int manifest_verify(struct manifest *m, manifest_damaged_fn damaged, void *userdata,
		    unsigned *ret_files, unsigned *ret_damaged, struct agent_err *e)
{
	char dir[AGENT_PATH_MAX];
	struct dirent **names = NULL;
	unsigned files = 0, bad = 0, fragments = 0;
	int count, r = 0;

	r = rooted(dir, sizeof dir, LAYOUT_LIVE_MANIFESTS);
	if (r < 0)
		return err_set(e, r, "path too long");
	count = scandir(dir, &names, skip_dots, alphasort);
	if (count < 0) {
		if (errno == ENOENT)
			return err_set(e, -ENOENT, "no payload manifest (%s is missing)", LAYOUT_LIVE_MANIFESTS);
		return err_set(e, -errno, "cannot read '%s': %s", LAYOUT_LIVE_MANIFESTS, strerror(errno));
	}
	for (int i = 0; i < count && r == 0; i++) {
		char path[AGENT_PATH_MAX], *text = NULL, *s, *next;
		struct stat st;
		int lineno = 0;

		if (path_join(path, sizeof path, dir, names[i]->d_name) < 0 ||
		    stat(path, &st) < 0 || !S_ISREG(st.st_mode))
			continue;
		fragments++;
		r = read_fragment(path, &text);
		if (r < 0) {
			err_set(e, r, "cannot read manifest fragment '%s/%s': %s",
				LAYOUT_LIVE_MANIFESTS, names[i]->d_name, strerror(-r));
			break;
		}
		for (s = text; s && r == 0; s = next) {
			char reason[512], where[300];
			struct line l;
			size_t n;

			next = strchr(s, '\n');
			if (next)
				*next++ = '\0';
			lineno++;
			n = strlen(s);
			if (n > 0 && s[n - 1] == '\r')
				s[--n] = '\0';
			while (is_blank(*s))
				s++;
			if (*s == '\0' || *s == '#')
				continue;
			files++;
			if (!parse_line(s, &l)) {
				snprintf(where, sizeof where, "%s:%d", names[i]->d_name, lineno);
				snprintf(reason, sizeof reason, "malformed manifest line (%s)", where);
				bad++;
				damaged(where, reason, userdata);
				continue;
			}
			r = check_file(&l, reason, sizeof reason);
			if (r < 0) {
				err_set(e, r, "cannot check '%s': %s", l.path, strerror(-r));
				break;
			}
			if (reason[0]) {
				bad++;
				damaged(l.path, reason, userdata);
				continue;
			}
			r = manifest_add(m, l.path);
			if (r < 0)
				err_set(e, r, "manifest too large: %s", strerror(-r));
		}
		free(text);
	}
	for (int i = 0; i < count; i++)
		free(names[i]);
	free(names);
	if (r < 0)
		return r;
	if (fragments == 0)
		return err_set(e, -ENOENT, "no payload manifest (%s is empty)", LAYOUT_LIVE_MANIFESTS);
	*ret_files = files;
	*ret_damaged = bad;
	return bad ? -EBADMSG : 0;
}
