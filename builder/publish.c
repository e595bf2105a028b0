/* A publish and a rollback step by step: the bundle read and checked,
 * the landed tree checked against it, `current` switched, old releases
 * pruned; the root itself is publish_local.c or publish_remote.c. */
#include "publish.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buildinfo.h"
#include "publish_int.h"
#include "tarball.h"

void publish_note(const struct publish_opts *o, bool verbose, const char *fmt, ...) {
	if (!o->note)
		return;
	va_list ap;
	va_start(ap, fmt);
	_cleanup_free_ char *msg = xvasprintf(fmt, ap);
	va_end(ap);
	o->note(o->note_ctx, verbose, msg);
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

time_t publish_release_time(const char *id) {
	struct tm tm = {
		.tm_year = digits(id, 4) - 1900, .tm_mon = digits(id + 4, 2) - 1, .tm_mday = digits(id + 6, 2),
		.tm_hour = digits(id + 9, 2), .tm_min = digits(id + 11, 2), .tm_sec = digits(id + 13, 2),
	};
	return timegm(&tm);
}

char *publish_release_id(time_t now, const char *latest, const char sums_hex[SHA256_HEX_LEN + 1]) {
	time_t t = now;
	if (publish_is_release_id(latest) && publish_release_time(latest) >= t)
		t = publish_release_time(latest) + 1;
	struct tm tm;
	char stamp[64];
	gmtime_r(&t, &tm);
	strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
	return xasprintf("%s-%.8s", stamp, sums_hex);
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

/* ---- bundles ---------------------------------------------------------- */

static void bundle_release(struct bundle *b) {
	if (b->tmpdir)
		rm_rf(b->tmpdir);
	free(b->tmpdir);
	free(b->dir);
	free(b->sums_text);
	sha256sums_release(&b->sums);
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
	_cleanup_free_ char *where = b->is_tar ? xasprintf("%s:%s", b->arg, SHA256SUMS_NAME) : path_join(b->arg, SHA256SUMS_NAME);
	return sha256sums_parse(text, len, where, &b->sums, d);
}

/* A tree must hold what its SHA256SUMS lists and nothing else, files and
 * directories only (the sums themselves are checked where it lands). */
static int tree_check(struct bundle *b, struct diags *d) {
	struct strv files = STRV_INIT;
	int r = tree_list(b->dir, &files, d);
	struct diag_batch p = { d, 0 };
	for (size_t i = 0; i < files.n && r == 0; i++) {
		_cleanup_free_ char *full = path_join(b->dir, files.v[i]);
		struct stat st;
		if (lstat(full, &st) < 0)
			diag_batch_error(&p, NULL, "cannot stat '%s': %s", full, strerror(errno));
		else if (S_ISLNK(st.st_mode))
			diag_batch_error(&p, NULL, "'%s' is a symbolic link: a bundle holds only files and directories", full);
		else if (!S_ISREG(st.st_mode))
			diag_batch_error(&p, NULL, "'%s' is not a regular file: a bundle holds only files and directories", full);
		else if (streq(files.v[i], SHA256SUMS_NAME))
			continue;
		else if (!sha256sums_find(&b->sums, files.v[i]))
			diag_batch_error(&p, NULL, "'%s' is not listed in '%s/%s'", full, b->arg, SHA256SUMS_NAME);
		else
			b->size += (uint64_t)st.st_size;
	}
	for (size_t i = 0; i < b->sums.n && r == 0; i++)
		if (!strv_sorted_contains(&files, b->sums.v[i].path))
			diag_batch_error(&p, NULL, "'%s/%s' is listed in '%s/%s' but missing", b->arg, b->sums.v[i].path, b->arg, SHA256SUMS_NAME);
	strv_release(&files);
	return r < 0 ? r : diag_batch_end(&p);
}

/* The members of a checked tar against its SHA256SUMS. */
static int tar_check_listing(const struct bundle *b, const struct tarball_contents *c, struct diags *d) {
	struct diag_batch p = { d, 0 };
	for (size_t i = 0; i < c->files.n; i++) {
		const char *f = c->files.v[i];
		if (!streq(f, SHA256SUMS_NAME) && !sha256sums_find(&b->sums, f))
			diag_batch_error(&p, NULL, "'%s/%s' in '%s' is not listed in its %s", c->top, f, b->arg, SHA256SUMS_NAME);
	}
	for (size_t i = 0; i < b->sums.n; i++)
		if (!strv_sorted_contains(&c->files, b->sums.v[i].path))
			diag_batch_error(&p, NULL, "'%s/%s' is listed in the %s of '%s' but missing from it", c->top, b->sums.v[i].path,
					 SHA256SUMS_NAME, b->arg);
	return diag_batch_end(&p);
}

/* Reads a bundle's tar (extracting it into `out` unless NULL), which must
 * hold a SHA256SUMS at its top. */
static int tar_read(const char *tar, const char *out, struct tarball_contents *ret, struct diags *d) {
	int r = tarball_read(tar, out, SHA256SUMS_NAME, SUMS_LIMIT, ret, d);
	if (r == 0 && !ret->held) {
		diag_error(d, NULL, "'%s' has no %s at the top of '%s/': not a bundle", tar, SHA256SUMS_NAME, ret->top);
		tarball_contents_release(ret);
		r = -EINVAL;
	}
	return r;
}

/* Checked again: the file may have changed since bundle_open read it. */
int bundle_extract(const struct bundle *b, const char *out, struct diags *d) {
	struct tarball_contents c = TARBALL_CONTENTS_INIT;
	int r = tar_read(b->arg, out, &c, d);
	if (r == 0 && (c.held_len != b->sums_len || memcmp(c.held, b->sums_text, b->sums_len) != 0)) {
		diag_error(d, NULL, "'%s' changed while it was read", b->arg);
		r = -EAGAIN;
	}
	if (r == 0)
		r = tar_check_listing(b, &c, d);
	tarball_contents_release(&c);
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
		_cleanup_free_ char *sums = path_join(path, SHA256SUMS_NAME);
		struct stat ss;
		if (lstat(sums, &ss) < 0 || !S_ISREG(ss.st_mode)) {
			diag_error(d, NULL, "'%s' has no %s: not a bundle (dlws-mkimage writes one at the top of every PXE tree)",
				   path, SHA256SUMS_NAME);
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
	struct tarball_contents c = TARBALL_CONTENTS_INIT;
	int r = tar_read(path, NULL, &c, d);
	if (r == 0) {
		r = bundle_take_sums(b, c.held, c.held_len, d);
		c.held = NULL;
	}
	if (r == 0)
		r = tar_check_listing(b, &c, d);
	b->size = c.size;
	tarball_contents_release(&c);
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
	return bundle_extract(b, b->dir, d);
}

/* ---- checking a landed tree ------------------------------------------- */

void scan_add(struct scan *s, const char *path, const char *hex) {
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
static int scan_check(struct scan *s, const char *text, size_t len, const struct sha256sums *sums, const char *where,
		      const struct bundle *b, struct diags *d) {
	struct diag_batch p = { d, 0 };
	if (!s->sums_text)
		diag_batch_error(&p, NULL, "'%s/%s' is missing", where, SHA256SUMS_NAME);
	else if (s->sums_len != len || memcmp(s->sums_text, text, len) != 0)
		diag_batch_error(&p, NULL, "'%s/%s' differs from the %s of '%s'", where, SHA256SUMS_NAME, SHA256SUMS_NAME, b ? b->arg : where);
	if (s->n)
		qsort(s->v, s->n, sizeof(*s->v), cmp_found);
	for (size_t i = 0; i < s->n; i++) {
		const struct found *f = &s->v[i];
		const struct sha256sum *want = sha256sums_find(sums, f->path);
		if (streq(f->path, SHA256SUMS_NAME) && f->regular)
			continue;
		if (!f->regular)
			diag_batch_error(&p, NULL, "'%s/%s' is not a regular file", where, f->path);
		else if (!want)
			diag_batch_error(&p, NULL, "'%s/%s' is not listed in its %s", where, f->path, SHA256SUMS_NAME);
		else if (!streq(want->hex, f->hex) && b) {
			_cleanup_free_ char *src = bundle_file(b, f->path);
			diag_batch_error(&p, NULL, "%s does not match its sum in the bundle's %s (checked after copying it to '%s'): refusing the bundle",
				src, SHA256SUMS_NAME, where);
		} else if (!streq(want->hex, f->hex)) {
			diag_batch_error(&p, NULL, "'%s/%s' does not match its sum in %s", where, f->path, SHA256SUMS_NAME);
		}
	}
	for (size_t i = 0; i < sums->n; i++) {
		struct found key = { .path = sums->v[i].path };
		if (!s->n || !bsearch(&key, s->v, s->n, sizeof(*s->v), cmp_found))
			diag_batch_error(&p, NULL, "'%s/%s' is missing (listed in its %s)", where, sums->v[i].path, SHA256SUMS_NAME);
	}
	return diag_batch_end(&p);
}

/* ---- server roots: what is there -------------------------------------- */

void state_release(struct state *st) {
	free(st->current);
	free(st->current_target);
	free(st->current_info);
	strv_release(&st->releases);
	strv_release(&st->partials);
}

void state_add_entry(struct state *st, const char *name) {
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
void state_set_current(struct state *st, const char *target) {
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

/* ---- locks ------------------------------------------------------------ */

int lock_busy_error(const struct publish_dest *dest, const char *holder, struct diags *d) {
	_cleanup_free_ char *who = lock_holder_describe(holder);
	diag_error(d, NULL, "'%s' is being published by %s: not waiting (--no-wait)", dest->label, who);
	return -EBUSY;
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
	*s = (struct server){ .dest = dest, .opts = o, .lock_fd = -1, .rlock = REMOTE_LOCK_INIT };
	if (dest->host)
		return remote_lock(dest, o, create, &s->rlock, st, d);
	return local_open(dest, o, create, &s->lock_fd, st, d);
}

static void server_close(struct server *s) {
	local_unlock(s->lock_fd);
	s->lock_fd = -1;
	remote_unlock(&s->rlock);
}

static int server_remove(struct server *s, const struct strv *names, struct diags *d) {
	if (!names->n)
		return 0;
	if (s->dest->host)
		return remote_remove(s->dest, &s->rlock, names, d);
	int r = 0;
	for (size_t i = 0; i < names->n && r == 0; i++)
		r = local_remove(s->dest, names->v[i], d);
	return r;
}

static void server_remove_quietly(struct server *s, const char *name) {
	struct strv one = STRV_INIT;
	struct diags quiet = DIAGS_INIT;
	strv_push(&one, name);
	if (s->dest->host)
		(void)remote_remove(s->dest, NULL, &one, &quiet);
	else
		(void)local_remove(s->dest, name, &quiet);
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
	if (s->dest->host)
		return remote_switch(s->dest, &s->rlock, id, promote, d);
	return local_switch(s->dest, id, promote, d);
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
		publish_note(o, false, "'%s/current' points to '%s', which is missing: replacing it", dest->label, st->current_target);
	if (st->partials.n) {
		r = server_remove(s, &st->partials, d);
		if (r < 0)
			return r;
		for (size_t i = 0; i < st->partials.n; i++) {
			publish_note(o, false, "removed '%s/releases/%s', left by an interrupted publish", dest->label, st->partials.v[i]);
			strv_push(&res->stale, st->partials.v[i]);
		}
	}
	_cleanup_free_ char *id = publish_release_id(o->now, state_latest(st), b->sums_hex);
	_cleanup_free_ char *partial = xasprintf("%s.partial", id);
	publish_note(o, true, "copying '%s' to '%s/releases/%s'", b->arg, dest->label, partial);
	r = dest->host ? remote_land(dest, b, id, st, o, d) : local_land(dest, b, id, st, res, d);
	struct scan sc = { 0 };
	if (r == 0) {
		publish_note(o, true, "checking '%s/releases/%s' against its %s", dest->label, partial, SHA256SUMS_NAME);
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

/* The bundle's dnsmasq.conf and nginx.conf serve boot_server.root/current
 * (its dlws-build.json says which root): a publish elsewhere would serve
 * nothing until the servers are pointed there. The same directory by
 * another name (a symlinked /srv/boot) is the same root. */
static void check_served_root(const struct buildinfo *info, const struct publish_dest *dest, struct diags *d) {
	if (!info->server_root)
		return;
	char real[PATH_MAX];
	const char *here = !dest->host && realpath(dest->path, real) ? real : dest->path;
	if (streq(here, info->server_root) || streq(dest->path, info->server_root))
		return;
	if (dest->host ? remote_same_dir(dest, info->server_root) : local_same_dir(dest, info->server_root))
		return;
	diag_warning(d, NULL, "the bundle's dnsmasq.conf and nginx.conf serve '%s/current' (boot_server.root in "
		     "the cluster values), not '%s/current': point them here, or set boot_server.root to '%s'",
		     info->server_root, here, here);
}

/* "role 'worker'", "nodes 'a', 'b'": the names of `v` not in `keep`,
 * appended to `out` after " and " when it holds something. */
static void append_lost(struct buf *out, const char *one, const char *many, const struct strv *v, const struct strv *keep) {
	size_t n = 0;
	for (size_t i = 0; i < v->n; i++)
		n += !strv_contains(keep, v->v[i]);
	for (size_t i = 0, k = 0; i < v->n; i++) {
		if (strv_contains(keep, v->v[i]))
			continue;
		if (k++ == 0)
			buf_printf(out, "%s%s ", out->len ? " and " : "", n == 1 ? one : many);
		buf_printf(out, "%s'%s'", k > 1 ? ", " : "", v->v[i]);
	}
}

/* A bundle built from some of the recipes alone would stop the others'
 * nodes from booting: published all the same (it may be meant), but the
 * roles and nodes the release it replaced served and it does not are
 * named. Both say what they serve in their dlws-build.json. */
static void check_lost_roles(const char *text, size_t len, const char *meta, const struct bundle *b,
			     const struct publish_dest *dest, const struct state *st, struct diags *d) {
	if (!st->current || !st->current_info)
		return;
	struct publish_release now = { 0 }, was = { 0 };
	_cleanup_free_ char *was_meta = xasprintf("%s/releases/%s/%s", dest->label, st->current, BUILDINFO_FILE);
	if (release_info_from_buildinfo(text, len, meta, &now) &&
	    release_info_from_buildinfo(st->current_info, st->current_info_len, was_meta, &was)) {
		struct buf lost = BUF_INIT;
		append_lost(&lost, "role", "roles", &was.roles, &now.roles);
		append_lost(&lost, "node", "nodes", &was.nodes, &now.nodes);
		if (lost.len)
			diag_warning(d, NULL, "'%s' does not serve %s, which the release it replaced (%s) served: they no longer boot "
				     "from '%s' (build all the recipes into one bundle, or --rollback)",
				     b->arg, lost.data, st->current, dest->label);
		buf_release(&lost);
	}
	strv_release(&now.roles);
	strv_release(&now.nodes);
	strv_release(&was.roles);
	strv_release(&was.nodes);
}

/* What a publish that went through warns about, from the new release's
 * dlws-build.json: in the bundle, or (a local tar) where it landed. */
static void check_published(const struct bundle *b, const struct publish_dest *dest, const struct state *st,
			    const struct publish_result *res, struct diags *d) {
	_cleanup_free_ char *dir = b->dir ? xstrdup(b->dir)
			    : !dest->host && res->id ? xasprintf("%s/releases/%s", dest->path, res->id) : NULL;
	if (!dir)
		return;
	_cleanup_free_ char *meta = path_join(dir, BUILDINFO_FILE);
	struct diags quiet = DIAGS_INIT;
	char *text = NULL;
	size_t len = 0;
	struct buildinfo info;
	if (path_exists(meta) && read_file(meta, SUMS_LIMIT, &text, &len, &quiet) == 0 &&
	    buildinfo_parse(text, len, meta, &info, &quiet) == 0) {
		check_served_root(&info, dest, d);
		buildinfo_release(&info);
		if (!res->unchanged)
			check_lost_roles(text, len, meta, b, dest, st, d);
	}
	free(text);
	diags_release(&quiet);
}

int publish_bundle(const char *bundle, const struct publish_dest *dest, const struct publish_opts *opts,
		   struct publish_result *ret, struct diags *d) {
	struct bundle b = { 0 };
	struct state st = { 0 };
	struct publish_result res = PUBLISH_RESULT_INIT;
	struct server s = { .lock_fd = -1, .rlock = REMOTE_LOCK_INIT };
	/* A bad bundle is refused before the root is touched. */
	int r = bundle_open(bundle, dest->host != NULL, &b, d);
	if (r == 0)
		r = server_open(&s, dest, opts, true, &st, d);
	if (r == 0)
		r = publish_locked(&s, &b, &st, &res, d);
	if (r == 0)
		check_published(&b, dest, &st, &res, d);
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
	publish_note(s->opts, true, "checking '%s/releases/%s' against its %s", dest->label, target, SHA256SUMS_NAME);
	struct scan sc = { 0 };
	struct sha256sums sums = SHA256SUMS_INIT;
	_cleanup_free_ char *where = xasprintf("%s/releases/%s", dest->label, target);
	_cleanup_free_ char *sums_name = xasprintf("%s/%s", where, SHA256SUMS_NAME);
	r = server_scan(s, target, &sc, d);
	if (r == 0 && !sc.sums_text) {
		diag_error(d, NULL, "'%s' is missing: cannot check the release", sums_name);
		r = -ENOENT;
	}
	if (r == 0)
		r = sha256sums_parse(sc.sums_text, sc.sums_len, sums_name, &sums, d);
	if (r == 0) {
		char *text = xstrndup(sc.sums_text, sc.sums_len);
		r = scan_check(&sc, text, sc.sums_len, &sums, where, NULL, d);
		free(text);
		res->n_files = sums.n;
	}
	sha256sums_release(&sums);
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

struct publish_release *releases_of(const struct state *st) {
	struct publish_release *v = xcalloc(st->releases.n ? st->releases.n : 1, sizeof(*v));
	for (size_t i = 0; i < st->releases.n; i++) {
		v[i].id = xstrdup(st->releases.v[i]);
		v[i].published = publish_release_time(v[i].id);
		v[i].current = streq(v[i].id, st->current);
	}
	return v;
}

static void push_unique(struct strv *s, const char *str) {
	if (!strv_contains(s, str))
		strv_push(s, str);
}

bool release_info_from_buildinfo(const char *text, size_t len, const char *where, struct publish_release *rel) {
	struct buildinfo info;
	struct diags quiet = DIAGS_INIT;
	bool ok = text && buildinfo_parse(text, len, where, &info, &quiet) == 0;
	diags_release(&quiet);
	if (!ok)
		return false;
	for (size_t i = 0; i < info.n_recipes; i++) {
		push_unique(&rel->roles, info.recipes[i].role);
		for (size_t k = 0; k < info.recipes[i].nodes.n; k++)
			push_unique(&rel->nodes, info.recipes[i].nodes.v[k]);
	}
	strv_sort(&rel->roles);
	strv_sort(&rel->nodes);
	buildinfo_release(&info);
	return true;
}

int publish_list(const struct publish_dest *dest, struct publish_release **ret, size_t *ret_n, struct diags *d) {
	return dest->host ? remote_list(dest, ret, ret_n, d) : local_list(dest, ret, ret_n, d);
}
