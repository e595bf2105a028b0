#include "stage.h"

#include <dirent.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "filesum.h"
#include "fsutil.h"
#include "hash.h"
#include "util.h"

/* Overlays are trees the user controls; bound how deep we walk them. */
#define MAX_TREE_DEPTH 32

char *stage_payload_path(const char *dest) {
	_cleanup_free_ char *norm = path_normalize_dest(dest);
	if (!norm)
		return NULL;
	if (startswith(norm, PAYLOAD_OEM "/"))
		return xstrdup(norm);
	return xasprintf(PAYLOAD_ROOTFS "/%s", norm);
}

static void entry_release(struct stage_entry *e) {
	free(e->path);
	free(e->data);
	free(e->src);
	free(e->link);
	memset(e, 0, sizeof(*e));
}

/* A slot for `path`: the earlier entry at that path, emptied, or a new one. */
static struct stage_entry *slot(struct stage *s, const char *path) {
	for (size_t i = 0; i < s->n; i++)
		if (streq(s->v[i].path, path)) {
			entry_release(&s->v[i]);
			s->v[i].path = xstrdup(path);
			return &s->v[i];
		}
	GROW(s->v, s->cap, s->n + 1);
	struct stage_entry *e = &s->v[s->n++];
	e->path = xstrdup(path);
	return e;
}

const struct stage_entry *stage_find(const struct stage *s, const char *path) {
	for (size_t i = 0; i < s->n; i++)
		if (streq(s->v[i].path, path))
			return &s->v[i];
	return NULL;
}

int stage_add_data(struct stage *s, const char *path, const void *data, size_t len, unsigned mode, struct diags *d) {
	struct stage_entry *e = slot(s, path);
	e->type = STAGE_FILE;
	e->mode = mode & 07777;
	e->data = xmalloc(len + 1);
	memcpy(e->data, data, len);
	e->data[len] = '\0';
	e->size = len;
	sha256_hex(data, len, e->sha256);
	return 0;
}

int stage_add_file(struct stage *s, const char *path, const char *src, unsigned mode, const char *want_sha256,
		   const struct srcloc *at, struct diags *d) {
	char sum[65];
	uint64_t size;
	/* Taken before the hash: a change during or after it moves ctime. */
	struct stat st;
	if (stat(src, &st) < 0) {
		int k = -errno;
		diag_error(d, at, "cannot open '%s': %s", src, strerror(errno));
		return k;
	}
	int r = filesum(src, sum, &size, d);
	if (r < 0)
		return r;
	if (want_sha256 && !streq(sum, want_sha256)) {
		diag_error(d, at, "sha256 mismatch for '%s': expected %s, got %s", src, want_sha256, sum);
		return -EBADMSG;
	}
	struct stage_entry *e = slot(s, path);
	e->type = STAGE_FILE;
	e->mode = mode & 07777;
	e->src = xstrdup(src);
	e->size = size;
	memcpy(e->sha256, sum, sizeof(sum));
	e->id = (struct stage_file_id){ st.st_dev, st.st_ino, st.st_ctim };
	return 0;
}

int stage_entry_unchanged(const struct stage_entry *e, struct diags *d) {
	if (!e->src)
		return 0;
	struct stat st;
	if (stat(e->src, &st) == 0 && st.st_dev == e->id.dev && st.st_ino == e->id.ino && (uint64_t)st.st_size == e->size &&
	    st.st_ctim.tv_sec == e->id.ctime.tv_sec && st.st_ctim.tv_nsec == e->id.ctime.tv_nsec)
		return 0;
	diag_error(d, NULL, "'%s' changed while the output was written", e->src);
	return -EIO;
}

int stage_add_symlink(struct stage *s, const char *path, const char *target, struct diags *d) {
	struct stage_entry *e = slot(s, path);
	e->type = STAGE_SYMLINK;
	e->mode = 0777;
	e->link = xstrdup(target);
	return 0;
}

static int add_tree(struct stage *s, const char *prefix, const char *dir, int depth, const struct srcloc *at, struct diags *d) {
	if (depth > MAX_TREE_DEPTH) {
		diag_error(d, at, "'%s' is nested deeper than %d levels", dir, MAX_TREE_DEPTH);
		return -ELOOP;
	}
	struct strv names = STRV_INIT;
	int r = dir_names(dir, &names, at, d);
	for (size_t i = 0; i < names.n && r == 0; i++) {
		_cleanup_free_ char *src = path_join(dir, names.v[i]);
		_cleanup_free_ char *dest = prefix[0] ? path_join(prefix, names.v[i]) : xstrdup(names.v[i]);
		struct stat st;
		if (lstat(src, &st) < 0) {
			r = -errno;
			diag_error(d, at, "cannot stat '%s': %s", src, strerror(errno));
		} else if (S_ISLNK(st.st_mode)) {
			char target[4096];
			ssize_t n = readlink(src, target, sizeof(target) - 1);
			if (n < 0) {
				r = -errno;
				diag_error(d, at, "cannot read link '%s': %s", src, strerror(errno));
				break;
			}
			target[n] = '\0';
			struct stage_entry *e = slot(s, dest);
			e->type = STAGE_SYMLINK;
			e->mode = 0777;
			e->link = xstrdup(target);
		} else if (S_ISDIR(st.st_mode)) {
			struct stage_entry *e = slot(s, dest);
			e->type = STAGE_DIR;
			e->mode = st.st_mode & 07777;
			r = add_tree(s, dest, src, depth + 1, at, d);
		} else if (S_ISREG(st.st_mode)) {
			r = stage_add_file(s, dest, src, st.st_mode, NULL, at, d);
		} else {
			diag_error(d, at, "'%s' is not a regular file, directory or symlink", src);
			r = -EINVAL;
		}
	}
	strv_release(&names);
	return r;
}

int stage_add_tree(struct stage *s, const char *prefix, const char *dir, const struct srcloc *at, struct diags *d) {
	return add_tree(s, prefix, dir, 0, at, d);
}

static int cmp_entry(const void *a, const void *b) {
	return strcmp(((const struct stage_entry *)a)->path, ((const struct stage_entry *)b)->path);
}

void stage_sort(struct stage *s) {
	if (s->n > 1)
		qsort(s->v, s->n, sizeof(*s->v), cmp_entry);
}

int stage_add_manifest(struct stage *s, const char *segment, struct diags *d) {
	stage_sort(s);
	struct buf b = BUF_INIT;
	buf_printf(&b, "# dlws payload manifest, segment '%s': sha256 size mode path\n", segment);
	for (size_t i = 0; i < s->n; i++) {
		const struct stage_entry *e = &s->v[i];
		if (e->type == STAGE_FILE)
			buf_printf(&b, "%s %llu %04o /%s\n", e->sha256, (unsigned long long)e->size, e->mode, e->path);
	}
	_cleanup_free_ char *path = xasprintf(PAYLOAD_MANIFESTS "/%s", segment);
	int r = stage_add_data(s, path, b.data, b.len, 0644, d);
	buf_release(&b);
	return r;
}

size_t stage_move_large(struct stage *s, uint64_t threshold, struct diags *d) {
	static const char dir[] = PAYLOAD_DIR "/";
	stage_sort(s);
	size_t moved = 0;
	struct buf ids = BUF_INIT;
	for (size_t i = 0; i < s->n; i++) {
		struct stage_entry *e = &s->v[i];
		/* What the live system runs (the install agent, the payload
		 * script that finds the medium) stays in the initrd. */
		if (e->type != STAGE_FILE || !e->src || e->size < threshold || !startswith(e->path, dir) ||
		    streq(e->path, PAYLOAD_DIR "/install") || startswith(e->path, PAYLOAD_BIN "/"))
			continue;
		char *large = xasprintf(PAYLOAD_LARGE "/%s", e->path + strlen(dir));
		free(e->path);
		e->path = large;
		e->on_medium = true;
		buf_printf(&ids, "%s %s\n", e->sha256, large);
		moved++;
	}
	if (moved) {
		/* Named by what it holds: the live system takes no other medium. */
		char id[SHA256_HEX_LEN + 1];
		sha256_hex(ids.data, ids.len, id);
		id[32] = '\n';
		stage_add_data(s, PAYLOAD_MEDIUM_ID, id, 33, 0644, d);
	}
	buf_release(&ids);
	return moved;
}

int stage_check(const struct stage *s, struct diags *d) {
	int r = 0;
	for (size_t i = 0; i < s->n; i++) {
		const char *path = s->v[i].path;
		for (const char *p = strchr(path, '/'); p; p = strchr(p + 1, '/')) {
			_cleanup_free_ char *parent = xstrndup(path, (size_t)(p - path));
			struct stage_entry key = { .path = parent };
			const struct stage_entry *e = bsearch(&key, s->v, s->n, sizeof(*s->v), cmp_entry);
			if (!e || e->type == STAGE_DIR)
				continue;
			/* Unpacking would write through the link, possibly outside
			 * the payload, or fail on a file in the way. */
			diag_error(d, NULL, "'/%s' would be placed under '/%s', which is a %s in the payload", path, parent,
				   e->type == STAGE_SYMLINK ? "symlink" : "file");
			r = -EINVAL;
			break;
		}
	}
	return r;
}

void stage_release(struct stage *s) {
	for (size_t i = 0; i < s->n; i++)
		entry_release(&s->v[i]);
	free(s->v);
	*s = (struct stage)STAGE_INIT;
}

void stage_key(const struct stage *s, const char *salt, char hex[SHA256_HEX_LEN + 1]) {
	struct stage sorted = *s;
	sorted.v = xmalloc(s->n * sizeof(*s->v) + 1);
	if (s->n)
		memcpy(sorted.v, s->v, s->n * sizeof(*s->v));
	stage_sort(&sorted);
	struct sha256 *h = sha256_new();
	sha256_update(h, salt, strlen(salt) + 1);
	for (size_t i = 0; i < sorted.n; i++) {
		const struct stage_entry *e = &sorted.v[i];
		/* What is on the medium is in the manifest, not in the segment. */
		if (e->on_medium)
			continue;
		_cleanup_free_ char *line = xasprintf("%d %o %llu %s %s", (int)e->type, e->mode, (unsigned long long)e->size,
						      e->type == STAGE_SYMLINK ? e->link : e->type == STAGE_FILE ? e->sha256 : "-",
						      e->path);
		sha256_update(h, line, strlen(line) + 1);
	}
	sha256_final_hex(h, hex);
	free(sorted.v);
}
