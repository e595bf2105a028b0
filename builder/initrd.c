/* Writes a staged payload as an initrd segment: a compressed newc cpio
 * (compress.h), the format the kernel unpacks when a bootloader loads it
 * after the base initrd. */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "compress.h"
#include "filesum.h"
#include "fsutil.h"
#include "hash.h"
#include "progress.h"
#include "stage.h"
#include "util.h"

struct writer {
	struct archive *a;
	struct archive_entry *e;
	time_t mtime;
	unsigned ino;
	struct strv dirs;       /* directories already written */
	struct diags *d;
	const char *out;
	uint64_t done;          /* file bytes written, for progress */
	struct progress *progress;
	struct compressor *z;   /* where libarchive's cpio bytes go */
	bool z_failed;          /* the compressor failed and said why */
};

/* What a segment's files hold: the bytes the compressor chews on. */
static uint64_t stage_file_bytes(const struct stage *s) {
	uint64_t n = 0;
	for (size_t i = 0; i < s->n; i++)
		if (s->v[i].type == STAGE_FILE && !s->v[i].on_medium)
			n += s->v[i].size;
	return n;
}

static int archive_fail(struct writer *w, const char *what) {
	/* A full or failing disk is told as such, not as libarchive's
	 * "Write error" about whichever entry it was writing. */
	if (w->z_failed)
		return -EIO;
	int e = archive_errno(w->a);
	if (e == ENOSPC || e == EDQUOT || e == EIO || e == EROFS || e == EFBIG) {
		diag_error(w->d, NULL, "cannot write '%s': %s", w->out, strerror(e));
		return -e;
	}
	diag_error(w->d, NULL, "cannot write '%s': %s: %s", w->out, what, archive_error_string(w->a));
	return -EIO;
}

static void entry_reset(struct writer *w, const char *path, mode_t type, unsigned perm) {
	archive_entry_clear(w->e);
	archive_entry_set_pathname(w->e, path);
	archive_entry_set_filetype(w->e, type);
	archive_entry_set_perm(w->e, perm);
	archive_entry_set_size(w->e, 0);
	/* Owner root and one fixed time: outputs depend on inputs only. */
	archive_entry_set_uid(w->e, 0);
	archive_entry_set_gid(w->e, 0);
	archive_entry_set_mtime(w->e, w->mtime, 0);
	archive_entry_set_ino(w->e, ++w->ino);
	archive_entry_set_nlink(w->e, type == AE_IFDIR ? 2 : 1);
}

/* Writes the parents of `path` that were not written yet, 0755. */
static int write_parents(struct writer *w, const char *path) {
	for (const char *p = strchr(path, '/'); p; p = strchr(p + 1, '/')) {
		_cleanup_free_ char *dir = xstrndup(path, (size_t)(p - path));
		if (strv_contains(&w->dirs, dir))
			continue;
		entry_reset(w, dir, AE_IFDIR, 0755);
		if (archive_write_header(w->a, w->e) != ARCHIVE_OK)
			return archive_fail(w, dir);
		strv_push(&w->dirs, dir);
	}
	return 0;
}

struct content_ctx {
	struct writer *w;
	const struct stage_entry *e;
	uint64_t total;
	struct sha256 *sum;
};

static int content_sink(void *ctx, const void *data, size_t len) {
	struct content_ctx *c = ctx;
	c->total += len;
	if (c->total > c->e->size) {
		diag_error(c->w->d, NULL, "'%s' changed while the payload was written", c->e->src);
		return -EIO;
	}
	sha256_update(c->sum, data, len);
	if (archive_write_data(c->w->a, data, len) != (la_ssize_t)len)
		return archive_fail(c->w, c->e->path);
	c->w->done += len;
	progress_update(c->w->progress, c->w->done);
	return 0;
}

/* A file's bytes, hashed as they go: the manifest holds the sum the stage
 * took (and a pin checked), and a file rewritten in between, even at the
 * same size, must not ship under it. */
static int write_content(struct writer *w, const struct stage_entry *e) {
	if (e->data) {
		if (e->size && archive_write_data(w->a, e->data, e->size) != (la_ssize_t)e->size)
			return archive_fail(w, e->path);
		w->done += e->size;
		progress_update(w->progress, w->done);
		return 0;
	}
	struct content_ctx c = { w, e, 0, sha256_new() };
	int r = stream_file(e->src, content_sink, &c, NULL, w->d);
	char sum[SHA256_HEX_LEN + 1];
	sha256_final_hex(c.sum, sum);
	if (r == 0 && (c.total != e->size || !streq(sum, e->sha256))) {
		diag_error(w->d, NULL, "'%s' changed while the payload was written", e->src);
		r = -EIO;
	}
	return r;
}

static int write_entry(struct writer *w, const struct stage_entry *e) {
	if (e->on_medium)
		return 0;
	int r = write_parents(w, e->path);
	if (r < 0)
		return r;
	switch (e->type) {
	case STAGE_DIR:
		if (strv_contains(&w->dirs, e->path))
			return 0;
		entry_reset(w, e->path, AE_IFDIR, e->mode);
		strv_push(&w->dirs, e->path);
		break;
	case STAGE_SYMLINK:
		entry_reset(w, e->path, AE_IFLNK, 0777);
		archive_entry_set_symlink(w->e, e->link);
		break;
	case STAGE_FILE:
		entry_reset(w, e->path, AE_IFREG, e->mode);
		archive_entry_set_size(w->e, (la_int64_t)e->size);
		break;
	}
	if (archive_write_header(w->a, w->e) != ARCHIVE_OK)
		return archive_fail(w, e->path);
	return e->type == STAGE_FILE ? write_content(w, e) : 0;
}

/* libarchive writes the cpio stream here; a failed write keeps its errno
 * for archive_fail. */
static la_ssize_t to_compressor(struct archive *a, void *ctx, const void *data, size_t len) {
	struct writer *w = ctx;
	int r = compressor_write(w->z, data, len);
	if (r < 0) {
		w->z_failed = compressor_failed(w->z);
		archive_set_error(a, -r, "%s", strerror(-r));
		return -1;
	}
	return (la_ssize_t)len;
}

int initrd_write(const struct stage *s, const char *out_path, const struct compression *comp, time_t mtime,
		 struct progress *progress, uint64_t *ret_size, struct diags *d) {
	static const struct compression default_comp = COMPRESSION_DEFAULT;
	/* Entries must come parents first; the caller's order is not trusted. */
	struct stage sorted = *s;
	sorted.v = xmalloc(s->n * sizeof(*s->v) + 1);
	if (s->n)
		memcpy(sorted.v, s->v, s->n * sizeof(*s->v));
	stage_sort(&sorted);
	int r = stage_check(&sorted, d);
	struct atomic_file f = ATOMIC_FILE_INIT;
	if (r == 0)
		r = atomic_open(&f, out_path, 0644, d);
	if (r < 0) {
		free(sorted.v);
		return r;
	}
	struct sha256 *sum = NULL;
	struct writer w = { .a = archive_write_new(), .e = archive_entry_new(), .mtime = mtime, .d = d, .out = out_path, .progress = progress };
	if (!w.a || !w.e)
		abort();
	r = compressor_new(comp ? comp : &default_comp, f.fd, out_path, stage_file_bytes(&sorted), &w.z, d);
	if (r < 0)
		goto out;
	sum = sha256_new();
	compressor_sum(w.z, sum);
	if (archive_write_set_format_cpio_newc(w.a) != ARCHIVE_OK) {
		r = archive_fail(&w, "setup");
		goto out;
	}
	archive_write_set_bytes_in_last_block(w.a, 1);
	if (archive_write_open2(w.a, &w, NULL, to_compressor, NULL, NULL) != ARCHIVE_OK) {
		r = archive_fail(&w, "open");
		goto out;
	}
	/* Compressing a large segment takes a while: shown by the bytes of
	 * its files, which is what gzip chews on. */
	const char *slash = strrchr(out_path, '/');
	progress_begin(progress, slash ? slash + 1 : out_path, stage_file_bytes(&sorted));
	for (size_t i = 0; i < sorted.n && r == 0; i++)
		r = write_entry(&w, &sorted.v[i]);
	if (r == 0 && archive_write_close(w.a) != ARCHIVE_OK)
		r = archive_fail(&w, "close");
	if (r == 0) {
		r = compressor_finish(w.z);
		if (r < 0 && !compressor_failed(w.z))
			diag_error(d, NULL, "cannot write '%s': %s", out_path, strerror(-r));
	}
	if (r == 0)
		progress_end(progress);
	else
		progress_abort(progress);
out:
	archive_write_free(w.a);
	archive_entry_free(w.e);
	compressor_free(w.z);
	strv_release(&w.dirs);
	free(sorted.v);
	if (r < 0) {
		sha256_free(sum);
		atomic_abort(&f);
		return r;
	}
	struct stat st;
	if (fstat(f.fd, &st) == 0 && ret_size)
		*ret_size = (uint64_t)st.st_size;
	char hex[SHA256_HEX_LEN + 1];
	sha256_final_hex(sum, hex);
	r = atomic_commit(&f, d);
	/* its sum known: the cache and SHA256SUMS do not read it again */
	if (r == 0)
		filesum_note(out_path, hex);
	return r;
}
