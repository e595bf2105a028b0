/* Publishing to a directory on this machine: flock(2) on the lock file,
 * files hard-linked from kept releases when their content is the same,
 * everything fsynced before `current` moves. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buildinfo.h"
#include "compress.h"
#include "lock.h"
#include "publish_int.h"

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

/* The root's lock; its holder is always a publish. */
static void lock_waiting(void *ctx, const char *file, const char *who) {
	(void)file;
	publish_note(ctx, false, "waiting for the publish of %s to finish", who);
}

static int local_lock(const struct publish_dest *dest, const struct publish_opts *o, int *ret_fd, struct diags *d) {
	_cleanup_free_ char *path = path_join(dest->path, LOCK_NAME);
	_cleanup_free_ char *holder = NULL;
	const struct lock_opts lo = { .no_wait = o->no_wait, .waiting = lock_waiting, .ctx = (void *)o };
	int r = lock_take(path, &lo, false, ret_fd, &holder, d);
	return r == -EBUSY ? lock_busy_error(dest, holder, d) : r;
}

void local_unlock(int fd) {
	lock_release(fd);
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
		_cleanup_free_ char *sums = path_join(cur, SHA256SUMS_NAME);
		_cleanup_free_ char *info = path_join(cur, BUILDINFO_FILE);
		struct diags quiet = DIAGS_INIT;
		char *text = NULL;
		size_t len = 0;
		if (read_file(sums, SUMS_LIMIT, &text, &len, &quiet) == 0)
			sha256_hex(text, len, st->current_sums);
		free(text);
		if (path_exists(info))
			(void)read_file(info, SUMS_LIMIT, &st->current_info, &st->current_info_len, &quiet);
		diags_release(&quiet);
	}
	return 0;
}

/* Makes directory `path` 0755 whatever the umask, when it is missing:
 * nginx and dnsmasq's TFTP read the root as other users (www-data,
 * dnsmasq), and a root made 0700 under umask 077 would serve nothing. */
static int local_mkdir(const char *path, struct diags *d) {
	if (mkdir(path, 0755) < 0) {
		if (errno == EEXIST)
			return 0;
		int r = -errno;
		diag_error(d, NULL, "cannot create '%s': %s", path, strerror(errno));
		return r;
	}
	if (chmod(path, 0755) < 0) {
		int r = -errno;
		diag_error(d, NULL, "cannot make '%s' readable by all (chmod 0755): %s", path, strerror(errno));
		return r;
	}
	return 0;
}

/* The root and every missing directory above it, each as local_mkdir makes it. */
static int local_create_root(const char *path, struct diags *d) {
	_cleanup_free_ char *p = xstrdup(path);
	for (char *s = p + 1;; s++) {
		if (*s != '/' && *s != '\0')
			continue;
		char c = *s;
		*s = '\0';
		int r = local_mkdir(p, d);
		if (r < 0)
			return r;
		*s = c;
		if (!c)
			return 0;
	}
}

int local_open(const struct publish_dest *dest, const struct publish_opts *o, bool create, int *ret_lock_fd,
	       struct state *st, struct diags *d) {
	int r = 0;
	if (create && !path_exists(dest->path)) {
		r = local_create_root(dest->path, d);
		if (r < 0)
			return r;
	}
	r = local_check_root(dest->path, d);
	_cleanup_free_ char *releases = path_join(dest->path, "releases");
	if (r == 0)
		r = local_mkdir(releases, d);
	if (r == 0)
		r = local_lock(dest, o, ret_lock_fd, d);
	if (r == 0)
		r = local_state(dest, st, d);
	return r;
}

/* Files of the kept releases by sum, to hard-link instead of copying. */
struct link_source {
	char hex[SHA256_HEX_LEN + 1];
	char *path;
	size_t order;           /* loaded before the ones with a larger order */
};
struct link_sources {
	struct link_source *v;
	size_t n, cap;
};

static int cmp_link_source(const void *a, const void *b) {
	const struct link_source *x = a, *y = b;
	int c = strcmp(x->hex, y->hex);
	return c ? c : (x->order > y->order) - (x->order < y->order);
}

static void link_sources_add_release(struct link_sources *ls, const char *dir) {
	_cleanup_free_ char *sums_path = path_join(dir, SHA256SUMS_NAME);
	struct diags quiet = DIAGS_INIT;
	char *text = NULL;
	size_t len = 0;
	struct sha256sums sums = SHA256SUMS_INIT;
	if (read_file(sums_path, SUMS_LIMIT, &text, &len, &quiet) == 0 &&
	    sha256sums_parse(text, len, sums_path, &sums, &quiet) == 0) {
		for (size_t i = 0; i < sums.n; i++) {
			GROW(ls->v, ls->cap, ls->n + 1);
			struct link_source *e = &ls->v[ls->n++];
			memcpy(e->hex, sums.v[i].hex, sizeof(e->hex));
			e->path = path_join(dir, sums.v[i].path);
			e->order = ls->n - 1;
		}
	}
	sha256sums_release(&sums);
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
	/* One file a sum: the first loaded (from the current release) wins. */
	if (ls->n)
		qsort(ls->v, ls->n, sizeof(*ls->v), cmp_link_source);
	size_t kept = 0;
	for (size_t i = 0; i < ls->n; i++) {
		if (kept && streq(ls->v[kept - 1].hex, ls->v[i].hex))
			free(ls->v[i].path);
		else
			ls->v[kept++] = ls->v[i];
	}
	ls->n = kept;
}

static int cmp_link_source_hex(const void *key, const void *elem) {
	return strcmp(key, ((const struct link_source *)elem)->hex);
}

static const struct link_source *link_sources_find(const struct link_sources *ls, const char *hex) {
	return ls->n ? bsearch(hex, ls->v, ls->n, sizeof(*ls->v), cmp_link_source_hex) : NULL;
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

int local_land(const struct publish_dest *dest, const struct bundle *b, const char *id, const struct state *st,
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
		r = bundle_extract(b, partial, d);
	} else {
		struct link_sources ls = { 0 };
		link_sources_load(&ls, dest->path, st);
		for (size_t i = 0; i < b->sums.n && r == 0; i++) {
			const struct sha256sum *s = &b->sums.v[i];
			_cleanup_free_ char *src = path_join(b->dir, s->path);
			_cleanup_free_ char *dst = path_join(partial, s->path);
			r = mkdirs_for_file(partial, s->path, 0755, d);
			if (r < 0)
				break;
			if (link_kept(&ls, s->hex, src, dst))
				res->n_linked++;
			else
				r = copy_file(src, dst, 0644, d);
		}
		link_sources_release(&ls);
		if (r == 0) {
			_cleanup_free_ char *sums = path_join(partial, SHA256SUMS_NAME);
			r = write_file_atomic(sums, b->sums_text, b->sums_len, 0644, d);
		}
	}
	if (r == 0)
		r = fsync_dirs(partial, 0, d);
	return r;
}

int local_scan(const char *dir, struct scan *s, struct diags *d) {
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
		} else if (streq(files.v[i], SHA256SUMS_NAME)) {
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
int local_switch(const struct publish_dest *dest, const char *id, bool promote, struct diags *d) {
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
int local_remove(const struct publish_dest *dest, const char *name, struct diags *d) {
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

/* Roles and nodes from the release's dlws-build.json; a tree without one
 * (from before it was written) is guessed from: the top-level directories
 * with a vmlinuz, and nodes/<hostname>.cpio.gz. */
static void local_release_info(const char *dir, struct publish_release *rel) {
	struct inode_seen *seen = NULL;
	size_t n = 0, cap = 0;
	rel->size = tree_size(dir, &seen, &n, &cap, 0);
	free(seen);
	struct diags quiet = DIAGS_INIT;
	_cleanup_free_ char *meta = path_join(dir, BUILDINFO_FILE);
	_cleanup_free_ char *text = NULL;
	size_t len = 0;
	bool known = path_exists(meta) && read_file(meta, SUMS_LIMIT, &text, &len, &quiet) == 0 &&
		     release_info_from_buildinfo(text, len, meta, rel);
	struct strv names = STRV_INIT;
	if (!known && dir_names(dir, &names, NULL, &quiet) == 0)
		for (size_t i = 0; i < names.n; i++) {
			_cleanup_free_ char *kernel = xasprintf("%s/%s/vmlinuz", dir, names.v[i]);
			struct stat st;
			if (lstat(kernel, &st) == 0 && S_ISREG(st.st_mode))
				strv_push(&rel->roles, names.v[i]);
		}
	strv_release(&names);
	_cleanup_free_ char *nodes = path_join(dir, "nodes");
	if (!known && path_exists(nodes) && dir_names(nodes, &names, NULL, &quiet) == 0)
		for (size_t i = 0; i < names.n; i++)
			if (compress_suffix_len(names.v[i]))
				strv_push_take(&rel->nodes,
					       xstrndup(names.v[i], strlen(names.v[i]) - compress_suffix_len(names.v[i])));
	strv_release(&names);
	diags_release(&quiet);
}

int local_list(const struct publish_dest *dest, struct publish_release **ret, size_t *ret_n, struct diags *d) {
	struct state st = { 0 };
	int r = local_check_root(dest->path, d);
	if (r == 0)
		r = local_state(dest, &st, d);
	if (r == 0) {
		struct publish_release *v = releases_of(&st);
		for (size_t i = 0; i < st.releases.n; i++) {
			_cleanup_free_ char *dir = xasprintf("%s/releases/%s", dest->path, v[i].id);
			local_release_info(dir, &v[i]);
		}
		*ret = v;
		*ret_n = st.releases.n;
	}
	state_release(&st);
	return r;
}

bool local_same_dir(const struct publish_dest *dest, const char *other) {
	struct stat a, b;
	return stat(dest->path, &a) == 0 && stat(other, &b) == 0 && S_ISDIR(a.st_mode) && a.st_dev == b.st_dev &&
	       a.st_ino == b.st_ino;
}
