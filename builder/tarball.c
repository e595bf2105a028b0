#include "tarball.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <search.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "fsutil.h"
#include "util.h"

#define TAR_MAX_MEMBERS 1000000
#define TAR_NAME_MAX 4096
#define CHUNK (1 << 16)

struct tar_ctx {
	struct archive *a;
	const char *name;
	struct diags *d;
};

static int tar_sink(void *ctx, const void *data, size_t len) {
	struct tar_ctx *c = ctx;
	if (archive_write_data(c->a, data, len) != (la_ssize_t)len) {
		diag_error(c->d, NULL, "cannot write '%s' into the tarball: %s", c->name, archive_error_string(c->a));
		return -EIO;
	}
	return 0;
}

static int add_file(struct archive *a, struct archive_entry *e, const char *full, const char *name, time_t mtime,
		    struct diags *d) {
	struct stat st;
	if (lstat(full, &st) < 0) {
		int r = -errno;
		diag_error(d, NULL, "cannot stat '%s': %s", full, strerror(errno));
		return r;
	}
	archive_entry_clear(e);
	archive_entry_set_pathname(e, name);
	archive_entry_set_uid(e, 0);
	archive_entry_set_gid(e, 0);
	archive_entry_set_uname(e, "root");
	archive_entry_set_gname(e, "root");
	archive_entry_set_mtime(e, mtime, 0);
	archive_entry_set_perm(e, st.st_mode & 07777);
	if (S_ISLNK(st.st_mode)) {
		char target[4096];
		ssize_t n = readlink(full, target, sizeof(target) - 1);
		if (n < 0)
			return -errno;
		target[n] = '\0';
		archive_entry_set_filetype(e, AE_IFLNK);
		archive_entry_set_symlink(e, target);
		archive_entry_set_size(e, 0);
	} else {
		archive_entry_set_filetype(e, AE_IFREG);
		archive_entry_set_size(e, st.st_size);
	}
	if (archive_write_header(a, e) != ARCHIVE_OK) {
		diag_error(d, NULL, "cannot write '%s' into the tarball: %s", name, archive_error_string(a));
		return -EIO;
	}
	if (!S_ISREG(st.st_mode))
		return 0;
	struct tar_ctx c = { a, name, d };
	return stream_file(full, tar_sink, &c, NULL, d);
}

int tarball_write(const char *dir, const char *top, const char *out_path, time_t mtime, struct diags *d) {
	struct strv files = STRV_INIT;
	int r = tree_list(dir, &files, d);
	if (r < 0) {
		strv_release(&files);
		return r;
	}
	struct atomic_file f = ATOMIC_FILE_INIT;
	r = atomic_open(&f, out_path, 0644, d);
	if (r < 0) {
		strv_release(&files);
		return r;
	}
	struct archive *a = archive_write_new();
	struct archive_entry *e = archive_entry_new();
	if (!a || !e)
		abort();
	if (archive_write_set_format_pax_restricted(a) != ARCHIVE_OK || archive_write_open_fd(a, f.fd) != ARCHIVE_OK) {
		diag_error(d, NULL, "cannot write '%s': %s", out_path, archive_error_string(a));
		r = -EIO;
	}
	for (size_t i = 0; i < files.n && r == 0; i++) {
		_cleanup_free_ char *full = path_join(dir, files.v[i]);
		_cleanup_free_ char *name = path_join(top, files.v[i]);
		r = add_file(a, e, full, name, mtime, d);
	}
	if (r == 0 && archive_write_close(a) != ARCHIVE_OK) {
		diag_error(d, NULL, "cannot write '%s': %s", out_path, archive_error_string(a));
		r = -EIO;
	}
	archive_write_free(a);
	archive_entry_free(e);
	strv_release(&files);
	if (r < 0) {
		atomic_abort(&f);
		return r;
	}
	return atomic_commit(&f, d);
}

/* ---- reading ---------------------------------------------------------- */

struct reader {
	const char *tar;
	const char *out;        /* extract below this directory, or NULL: check only */
	const char *hold;
	size_t hold_limit;
	struct tarball_contents c;
	void *seen;             /* tsearch(3) tree over the strings of c.files */
	char *chunk;
};

static int cmp_str(const void *a, const void *b) {
	return strcmp(a, b);
}

static bool seen_file(const struct reader *w, const char *rel) {
	return tfind(rel, &w->seen, cmp_str) != NULL;
}

static void remember_file(struct reader *w, const char *rel) {
	strv_push(&w->c.files, rel);
	if (!tsearch(w->c.files.v[w->c.files.n - 1], &w->seen, cmp_str))
		die_oom();
}

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

static int read_error(struct archive *a, const char *tar, struct diags *d) {
	const char *why = archive_error_string(a);
	diag_error(d, NULL, "cannot read '%s': %s", tar, why ? why : "unknown error");
	return -EIO;
}

static int name_error(const struct reader *w, enum name_kind k, const char *name, struct diags *d) {
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

static int read_held(struct reader *w, struct archive *a, struct diags *d) {
	struct buf b = { .limit = w->hold_limit };
	for (;;) {
		la_ssize_t n = archive_read_data(a, w->chunk, CHUNK);
		if (n == 0)
			break;
		if (n < 0) {
			buf_release(&b);
			return read_error(a, w->tar, d);
		}
		if (buf_append(&b, w->chunk, (size_t)n) < 0) {
			diag_error(d, NULL, "'%s': %s is larger than %zu bytes", w->tar, w->hold, w->hold_limit);
			buf_release(&b);
			return -EFBIG;
		}
	}
	free(w->c.held);
	w->c.held = buf_steal(&b, &w->c.held_len);
	return 0;
}

static int extract_file(struct reader *w, struct archive *a, const char *rel, struct diags *d) {
	int r = mkdirs_for_file(w->out, rel, 0755, d);
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
		la_ssize_t n = archive_read_data(a, w->chunk, CHUNK);
		if (n == 0)
			break;
		if (n < 0) {
			r = read_error(a, w->tar, d);
			break;
		}
		r = write_all(fd, w->chunk, (size_t)n);
		if (r < 0) {
			diag_error(d, NULL, "cannot write '%s': %s", full, strerror(-r));
			break;
		}
		w->c.size += (uint64_t)n;
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

/* A hard link `name` (at `rel`) to the member `target`. */
static int read_hardlink(struct reader *w, const char *name, const char *rel, const char *target, struct diags *d) {
	char *ltop = NULL, *lrel = NULL;
	enum name_kind k = split_member(target, &ltop, &lrel);
	bool inside = k == NAME_OK && streq(ltop, w->c.top);
	free(ltop);
	_cleanup_free_ char *lrel_owned = lrel;
	if (!inside) {
		diag_error(d, NULL, "'%s' in '%s' is a hard link to '%s', outside the bundle: refusing it", name, w->tar, target);
		return -EINVAL;
	}
	if (!seen_file(w, lrel) || !*rel || seen_file(w, rel)) {
		diag_error(d, NULL, "'%s' in '%s' is a hard link to '%s', which is not a file before it", name, w->tar, target);
		return -EINVAL;
	}
	remember_file(w, rel);
	if (!w->out)
		return 0;
	int r = mkdirs_for_file(w->out, rel, 0755, d);
	_cleanup_free_ char *from = path_join(w->out, lrel);
	_cleanup_free_ char *to = path_join(w->out, rel);
	if (r == 0 && link(from, to) < 0) {
		r = -errno;
		diag_error(d, NULL, "cannot link '%s' to '%s': %s", to, from, strerror(errno));
	}
	return r;
}

static int read_member(struct reader *w, struct archive *a, struct archive_entry *e, struct diags *d) {
	const char *name = archive_entry_pathname(e);
	char *top = NULL, *rel = NULL;
	enum name_kind k = split_member(name, &top, &rel);
	if (k == NAME_EMPTY && name && archive_entry_filetype(e) == AE_IFDIR)
		return 0;  /* "./": the directory the tar was made in */
	if (k != NAME_OK)
		return name_error(w, k, name, d);
	_cleanup_free_ char *rel_owned = rel;
	if (!w->c.top) {
		w->c.top = top;
	} else if (!streq(w->c.top, top)) {
		diag_error(d, NULL, "'%s' holds '%s' beside '%s/': a bundle's tar holds one top directory ('pxe/...', as "
			   "dlws-mkimage writes it)", w->tar, name, w->c.top);
		free(top);
		return -EINVAL;
	} else {
		free(top);
	}
	const char *hardlink = archive_entry_hardlink(e);
	mode_t type = archive_entry_filetype(e);
	if (hardlink)
		return read_hardlink(w, name, rel, hardlink, d);
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
		return w->out && *rel ? mkdirs_under(w->out, rel, 0755, d) : 0;
	if (type != AE_IFREG) {
		diag_error(d, NULL, "'%s' in '%s' is a device, fifo or socket: a bundle holds only files and directories", name, w->tar);
		return -EINVAL;
	}
	if (!*rel) {
		diag_error(d, NULL, "'%s' in '%s' is outside any top directory: a bundle's tar holds one directory "
			   "('pxe/...', as dlws-mkimage writes it)", name, w->tar);
		return -EINVAL;
	}
	if (seen_file(w, rel)) {
		diag_error(d, NULL, "'%s' holds '%s' twice", w->tar, name);
		return -EINVAL;
	}
	remember_file(w, rel);
	if (w->hold && streq(rel, w->hold)) {
		int r = read_held(w, a, d);
		if (r == 0 && w->out) {
			_cleanup_free_ char *full = path_join(w->out, rel);
			r = write_file_atomic(full, w->c.held, w->c.held_len, 0644, d);
		}
		return r;
	}
	if (w->out)
		return extract_file(w, a, rel, d);
	if (archive_entry_size_is_set(e) && archive_entry_size(e) > 0)
		w->c.size += (uint64_t)archive_entry_size(e);  /* shown, never relied on */
	if (archive_read_data_skip(a) < ARCHIVE_WARN)
		return read_error(a, w->tar, d);
	return 0;
}

static int read_members(struct reader *w, struct archive *a, struct diags *d) {
	if (archive_read_open_filename(a, w->tar, CHUNK) != ARCHIVE_OK) {
		int e = archive_errno(a);
		if (e > 0 && e != EILSEQ) {
			diag_error(d, NULL, "cannot open '%s': %s", w->tar, strerror(e));
			return -e;
		}
		diag_error(d, NULL, "'%s' is neither a bundle directory nor a tar of one", w->tar);
		return -EINVAL;
	}
	size_t members = 0;
	for (;;) {
		struct archive_entry *e;
		int s = archive_read_next_header(a, &e);
		if (s == ARCHIVE_EOF)
			break;
		if (s < ARCHIVE_WARN)
			return read_error(a, w->tar, d);
		if (++members > TAR_MAX_MEMBERS) {
			diag_error(d, NULL, "'%s' holds more than %d members", w->tar, TAR_MAX_MEMBERS);
			return -EFBIG;
		}
		int r = read_member(w, a, e, d);
		if (r < 0)
			return r;
	}
	if (!members) {
		diag_error(d, NULL, "'%s' is empty", w->tar);
		return -EINVAL;
	}
	return 0;
}

static void no_free(void *p) {
}

int tarball_read(const char *tar, const char *out, const char *hold, size_t hold_limit, struct tarball_contents *ret,
		 struct diags *d) {
	struct reader w = { .tar = tar, .out = out, .hold = hold, .hold_limit = hold_limit, .chunk = xmalloc(CHUNK) };
	struct archive *a = archive_read_new();
	if (!a)
		die_oom();
	archive_read_support_filter_gzip(a);
	archive_read_support_filter_xz(a);
	archive_read_support_filter_zstd(a);
	archive_read_support_format_tar(a);
	int r = read_members(&w, a, d);
	archive_read_free(a);
	tdestroy(w.seen, no_free);
	free(w.chunk);
	if (r < 0) {
		tarball_contents_release(&w.c);
		return r;
	}
	strv_sort(&w.c.files);
	*ret = w.c;
	return 0;
}

void tarball_contents_release(struct tarball_contents *c) {
	free(c->top);
	strv_release(&c->files);
	free(c->held);
	*c = (struct tarball_contents)TARBALL_CONTENTS_INIT;
}
