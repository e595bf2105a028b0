#include "reader.h"

#include <archive.h>
#include <archive_entry.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "buildinfo.h"
#include "compress.h"
#include "disk.h"
#include "fsutil.h"
#include "stage.h"

#define ISO_SECTOR 2048
#define PULL_BUF (64 * 1024)

const char *reader_kind_name(enum reader_kind k) {
	static const char *const names[] = { "pxe-tree", "pxe-tar", "initrd-dir", "iso", "segment", "disk" };
	return k < ARRAY_SIZE(names) ? names[k] : "?";
}

/* ---- names ------------------------------------------------------------ */

bool reader_name_ok(const char *name) {
	return strlen(name) < 4096 && path_is_plain_relative(name);
}

/* An entry's name without "./" prefixes and trailing '/'; "" for the root. */
static char *entry_name(const char *raw) {
	while (raw[0] == '.' && raw[1] == '/')
		raw += 2;
	size_t n = strlen(raw);
	while (n && raw[n - 1] == '/')
		n--;
	if (n == 1 && raw[0] == '.')
		n = 0;
	return xstrndup(raw, n);
}

/* A name for messages: what the image says, made printable. */
static char *printable(const char *s) {
	struct buf b = BUF_INIT;
	for (size_t i = 0; s[i] && i < 200; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] >= 0x7f)
			buf_printf(&b, "\\x%02x", (unsigned char)s[i]);
		else
			buf_putc(&b, s[i]);
	return buf_steal(&b, NULL);
}

bool reader_is_text(const char *text, size_t len) {
	const unsigned char *s = (const unsigned char *)text;
	for (size_t i = 0; i < len;) {
		unsigned c = s[i];
		if (c < 0x80) {
			if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f)
				return false;
			i++;
			continue;
		}
		/* UTF-8: the lead byte says how many continuation bytes follow;
		 * overlong forms, surrogates and code points above U+10FFFF are not text. */
		size_t n = c >= 0xc2 && c <= 0xdf ? 1 : c >= 0xe0 && c <= 0xef ? 2 : c >= 0xf0 && c <= 0xf4 ? 3 : 0;
		if (!n || n >= len - i)
			return false;
		for (size_t k = 1; k <= n; k++)
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
		if ((c == 0xe0 && s[i + 1] < 0xa0) || (c == 0xed && s[i + 1] >= 0xa0) || (c == 0xf0 && s[i + 1] < 0x90) ||
		    (c == 0xf4 && s[i + 1] >= 0x90))
			return false;
		i += n + 1;
	}
	return true;
}

/* ---- files and lists ---------------------------------------------------- */

static void file_release(struct reader_file *f) {
	free(f->path);
	free(f->data);
	free(f->head);
}

static int cmp_file(const void *a, const void *b) {
	return strcmp(((const struct reader_file *)a)->path, ((const struct reader_file *)b)->path);
}

const struct reader_file *reader_find(const struct reader_file *v, size_t n, const char *path) {
	struct reader_file key = { .path = (char *)path };
	return n ? bsearch(&key, v, n, sizeof(*v), cmp_file) : NULL;
}

/* Sorts; a path listed twice (a crafted archive) is an error. */
static int files_finish(struct reader_file *v, size_t n, const char *where, char **ret_error) {
	if (n > 1)
		qsort(v, n, sizeof(*v), cmp_file);
	for (size_t i = 1; i < n; i++)
		if (streq(v[i - 1].path, v[i].path)) {
			_cleanup_free_ char *p = printable(v[i].path);
			*ret_error = xasprintf("'%s' holds '%s' twice", where, p);
			return -EINVAL;
		}
	return 0;
}

/* Which files are kept in memory: small text that inspect reads. */
static bool keep_outer(const char *path) {
	return streq(path, BUILDINFO_FILE) || streq(path, SHA256SUMS_NAME) || streq(path, "isolinux/isolinux.cfg") ||
	       streq(path, "boot/grub/grub.cfg") || streq(path, "grub.cfg") || streq(path, "boot.ipxe") ||
	       startswith(path, "pxelinux.cfg/") || (startswith(path, "grub/") && endswith(path, ".cfg"));
}

/* Kept in every segment; anything else is kept while the segment is read
 * when it is text, and only if the segment turns out to be per_node
 * (segment_trim). */
static bool keep_inner(const char *path) {
	const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	return startswith(path, PAYLOAD_MANIFESTS "/") || streq(path, PAYLOAD_IGNITION) ||
	       streq(path, PAYLOAD_OEM "/cloud-config.yml") || streq(path, PAYLOAD_DIR "/node.env") || streq(base, "user_data") ||
	       endswith(base, ".crt") || endswith(base, ".conf") || streq(base, "kubeconfig");
}

/* ---- pulling bytes ------------------------------------------------------ */

/* One file's bytes as they stream past, from an archive entry or an fd:
 * hashed and counted, optionally kept (up to READER_KEEP_LIMIT) and the
 * first sector kept. */
struct pull {
	struct archive *a;      /* read the current entry of this, or */
	int fd;                 /* this file */
	struct sha256 *h;
	uint64_t size;
	struct buf *keep;       /* NULL: not kept */
	bool keep_over;
	bool text_only;         /* stop keeping at the first NUL byte */
	bool binary;            /* text_only, and a NUL byte was seen */
	unsigned char *head;
	size_t head_len;
	bool want_head;
	bool eof;
	char *error;            /* a read error, owned */
	char buf[PULL_BUF];
};

static ssize_t pull_some(struct pull *p) {
	if (p->eof || p->error)
		return 0;
	ssize_t n;
	if (p->a) {
		n = archive_read_data(p->a, p->buf, sizeof(p->buf));
		if (n < 0) {
			p->error = xstrdup(archive_error_string(p->a) ? archive_error_string(p->a) : "read error");
			return -1;
		}
	} else {
		do
			n = read(p->fd, p->buf, sizeof(p->buf));
		while (n < 0 && errno == EINTR);
		if (n < 0) {
			p->error = xstrdup(strerror(errno));
			return -1;
		}
	}
	if (n == 0) {
		p->eof = true;
		return 0;
	}
	sha256_update(p->h, p->buf, (size_t)n);
	p->size += (uint64_t)n;
	if (p->want_head && p->head_len < ISO_SECTOR) {
		if (!p->head)
			p->head = xmalloc(ISO_SECTOR);
		size_t k = (size_t)n < ISO_SECTOR - p->head_len ? (size_t)n : ISO_SECTOR - p->head_len;
		memcpy(p->head + p->head_len, p->buf, k);
		p->head_len += k;
	}
	if (p->keep && p->text_only && !p->binary && memchr(p->buf, 0, (size_t)n)) {
		p->binary = true;
		buf_release(p->keep);
	}
	if (p->keep && !p->binary && !p->keep_over && buf_append(p->keep, p->buf, (size_t)n) < 0)
		p->keep_over = true;
	return n;
}

static la_ssize_t pull_read_cb(struct archive *a, void *ctx, const void **out) {
	struct pull *p = ctx;
	ssize_t n = pull_some(p);
	*out = p->buf;
	if (n < 0) {
		archive_set_error(a, EIO, "%s", p->error);
		return -1;
	}
	return n;
}

static void pull_drain(struct pull *p) {
	while (pull_some(p) > 0)
		;
}

/* ---- segments ----------------------------------------------------------- */

struct keep_budget {
	size_t used;
};

/* Keeps what `p` kept of file `f`, within the budget; a binary file (a
 * text_only pull that saw a NUL) is not wanted, so not "not_kept". */
static void keep_take(struct reader_file *f, struct buf *kb, const struct pull *p, struct keep_budget *budget) {
	if (p->binary) {
		buf_release(kb);
		return;
	}
	if (p->keep_over || (kb->data && budget->used + kb->len > READER_KEEP_TOTAL)) {
		buf_release(kb);
		f->not_kept = true;
		return;
	}
	if (!kb->data) {
		if (f->size == 0)
			f->data = xstrdup("");
		return;
	}
	budget->used += kb->len;
	f->data = buf_steal(kb, &f->len);
}

/* What a segment that is not per_node need not keep: its text beyond
 * keep_inner's, given back to the budget. */
static void segment_trim(struct reader_segment *seg, struct keep_budget *budget) {
	seg->per_node = reader_find(seg->files, seg->n, PAYLOAD_MANIFESTS "/node") ||
			reader_find(seg->files, seg->n, PAYLOAD_MANIFESTS "/role");
	if (seg->per_node)
		return;
	for (size_t i = 0; i < seg->n; i++) {
		struct reader_file *f = &seg->files[i];
		if (keep_inner(f->path))
			continue;
		f->not_kept = false;
		if (f->data) {
			budget->used -= f->len;
			free(f->data);
			f->data = NULL;
			f->len = 0;
		}
	}
}

/* Reads the segment whose bytes `src` gives, into `seg`. */
static void read_segment(struct pull *src, struct reader_segment *seg, struct keep_budget *budget) {
	struct archive *a = archive_read_new();
	if (!a)
		die_oom();
	archive_read_support_filter_gzip(a);
	archive_read_support_filter_xz(a);
	archive_read_support_filter_zstd(a);
	archive_read_support_format_cpio(a);
	struct buf err = BUF_INIT;
	uint64_t total = 0;
	if (archive_read_open(a, src, NULL, pull_read_cb, NULL) != ARCHIVE_OK) {
		buf_printf(&err, "not a payload segment (a zstd, xz or gzip compressed cpio): %s",
			   archive_error_string(a) ? archive_error_string(a) : "?");
		goto out;
	}
	for (size_t count = 0;; count++) {
		struct archive_entry *e;
		int r = archive_read_next_header(a, &e);
		if (r == ARCHIVE_EOF)
			break;
		if (r < ARCHIVE_WARN) {
			buf_printf(&err, "unreadable: %s", archive_error_string(a) ? archive_error_string(a) : "?");
			goto out;
		}
		if (count >= READER_MAX_ENTRIES) {
			buf_printf(&err, "holds more than %d entries", READER_MAX_ENTRIES);
			goto out;
		}
		const char *raw = archive_entry_pathname(e) ? archive_entry_pathname(e) : "";
		_cleanup_free_ char *name = entry_name(raw);
		if (!name[0])
			continue;
		if (!reader_name_ok(name)) {
			_cleanup_free_ char *p = printable(raw);
			buf_printf(&err, "refusing entry '%s': not a plain relative name", p);
			goto out;
		}
		GROW(seg->files, seg->cap, seg->n + 1);
		struct reader_file *f = &seg->files[seg->n++];
		*f = (struct reader_file){ .path = xstrdup(name), .mode = archive_entry_perm(e) & 07777 };
		mode_t type = archive_entry_filetype(e);
		if (archive_entry_hardlink(e) || type == AE_IFLNK) {
			f->type = READER_LINK;
			continue;
		}
		if (type == AE_IFDIR) {
			f->type = READER_DIR;
			continue;
		}
		if (type != AE_IFREG) {
			f->type = READER_OTHER;
			continue;
		}
		struct buf kb = { .limit = READER_KEEP_LIMIT };
		bool always = keep_inner(name);
		struct pull in = { .a = a, .h = sha256_new(), .keep = &kb, .text_only = !always };
		uint64_t before = total;
		while (pull_some(&in) > 0)
			if (before + in.size > READER_SEGMENT_MAX)
				break;
		f->size = in.size;
		total += in.size;
		sha256_final_hex(in.h, f->sha256);
		keep_take(f, &kb, &in, budget);
		free(in.head);
		if (in.error) {
			buf_printf(&err, "unreadable at '%s': %s", f->path, in.error);
			free(in.error);
			goto out;
		}
		if (total > READER_SEGMENT_MAX) {
			buf_printf(&err, "unpacks to more than %llu bytes", (unsigned long long)READER_SEGMENT_MAX);
			goto out;
		}
	}
out:
	archive_read_free(a);
	char *dup = NULL;
	if (!err.data && files_finish(seg->files, seg->n, seg->path, &dup) < 0)
		seg->error = dup;
	else if (err.data)
		seg->error = buf_steal(&err, NULL);
	buf_release(&err);
	if (seg->error && seg->n > 1)
		qsort(seg->files, seg->n, sizeof(*seg->files), cmp_file);
	segment_trim(seg, budget);
}

/* ---- the output's own files --------------------------------------------- */

static bool is_segment_name(const char *path) {
	return compress_suffix_len(path) > 0;
}

struct reading {
	struct reader_output *o;
	struct keep_budget budget;
	bool want_head;
};

/* Streams one file of the output from `p`: a segment is read as it goes
 * by, the rest is hashed (and kept when small and of interest). */
static int add_file(struct reading *rd, const char *name, unsigned mode, struct pull *p, char **ret_error) {
	struct reader_output *o = rd->o;
	struct buf kb = { .limit = READER_KEEP_OUTER_LIMIT };
	p->h = sha256_new();
	p->keep = keep_outer(name) ? &kb : NULL;
	p->want_head = rd->want_head;
	if (is_segment_name(name)) {
		GROW(o->segs, o->cap_segs, o->n_segs + 1);
		struct reader_segment *seg = &o->segs[o->n_segs++];
		*seg = (struct reader_segment){ .path = xstrdup(name) };
		read_segment(p, seg, &rd->budget);
	}
	pull_drain(p);
	GROW(o->files, o->cap, o->n + 1);
	struct reader_file *f = &o->files[o->n++];
	*f = (struct reader_file){ .path = xstrdup(name), .type = READER_REG, .mode = mode & 07777, .size = p->size,
				   .head = p->head, .head_len = p->head_len };
	sha256_final_hex(p->h, f->sha256);
	p->h = NULL;
	keep_take(f, &kb, p, &rd->budget);
	if (p->error) {
		_cleanup_free_ char *pn = printable(name);
		*ret_error = xasprintf("cannot read '%s' in '%s': %s", pn, o->path, p->error);
		free(p->error);
		p->error = NULL;
		return -EIO;
	}
	return 0;
}

static void add_other(struct reader_output *o, const char *name, enum reader_type type, unsigned mode) {
	GROW(o->files, o->cap, o->n + 1);
	o->files[o->n++] = (struct reader_file){ .path = xstrdup(name), .type = type, .mode = mode & 07777 };
}

/* An ISO or a tar; `strip_top`: the tar's names start with the tree's name. */
static int read_archive(struct reading *rd, bool iso, char **ret_error) {
	struct reader_output *o = rd->o;
	struct archive *a = archive_read_new();
	if (!a)
		die_oom();
	if (iso)
		archive_read_support_format_iso9660(a);
	else
		archive_read_support_format_tar(a);
	int r = 0;
	_cleanup_free_ char *top = NULL;
	if (archive_read_open_filename(a, o->path, PULL_BUF) != ARCHIVE_OK) {
		*ret_error = xasprintf("cannot read '%s': %s", o->path, archive_error_string(a) ? archive_error_string(a) : "?");
		r = -EINVAL;
		goto out;
	}
	for (size_t count = 0; r == 0; count++) {
		struct archive_entry *e;
		int k = archive_read_next_header(a, &e);
		if (k == ARCHIVE_EOF)
			break;
		if (k < ARCHIVE_WARN) {
			*ret_error = xasprintf("cannot read '%s': %s", o->path, archive_error_string(a) ? archive_error_string(a) : "?");
			r = -EINVAL;
			break;
		}
		if (count >= READER_MAX_ENTRIES) {
			*ret_error = xasprintf("'%s' holds more than %d entries", o->path, READER_MAX_ENTRIES);
			r = -EFBIG;
			break;
		}
		const char *raw = archive_entry_pathname(e) ? archive_entry_pathname(e) : "";
		_cleanup_free_ char *full = entry_name(raw);
		if (full[0] && !reader_name_ok(full)) {
			_cleanup_free_ char *p = printable(raw);
			*ret_error = xasprintf("refusing entry '%s' in '%s': not a plain relative name", p, o->path);
			r = -EINVAL;
			break;
		}
		const char *name = full;
		if (!iso && full[0]) {
			/* "pxe/boot.ipxe": every name under one top directory. */
			const char *slash = strchr(full, '/');
			size_t tl = slash ? (size_t)(slash - full) : strlen(full);
			if (!top)
				top = xstrndup(full, tl);
			if (strlen(top) != tl || strncmp(top, full, tl) != 0) {
				_cleanup_free_ char *p = printable(raw);
				*ret_error = xasprintf("refusing entry '%s' in '%s': not under '%s/'", p, o->path, top);
				r = -EINVAL;
				break;
			}
			name = slash ? slash + 1 : "";
		}
		if (!name[0])
			continue;
		mode_t type = archive_entry_filetype(e);
		unsigned mode = archive_entry_perm(e);
		if (archive_entry_hardlink(e) || type == AE_IFLNK)
			add_other(o, name, READER_LINK, mode);
		else if (type == AE_IFDIR)
			add_other(o, name, READER_DIR, mode);
		else if (type != AE_IFREG)
			add_other(o, name, READER_OTHER, mode);
		else {
			struct pull *p = xcalloc(1, sizeof(*p));
			p->a = a;
			r = add_file(rd, name, mode, p, ret_error);
			free(p);
		}
	}
out:
	archive_read_free(a);
	return r;
}

static int read_tree(struct reading *rd, struct diags *d, char **ret_error) {
	struct reader_output *o = rd->o;
	struct strv names = STRV_INIT;
	int r = tree_list(o->path, &names, d);
	for (size_t i = 0; i < names.n && r == 0; i++) {
		_cleanup_free_ char *full = path_join(o->path, names.v[i]);
		int fd = open(full, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
		struct stat st;
		if (fd < 0 && errno == ELOOP) {
			add_other(o, names.v[i], READER_LINK, 0777);
			continue;
		}
		if (fd < 0 || fstat(fd, &st) < 0) {
			*ret_error = xasprintf("cannot open '%s': %s", full, strerror(errno));
			r = -errno;
			if (fd >= 0)
				close(fd);
			break;
		}
		if (!S_ISREG(st.st_mode)) {
			add_other(o, names.v[i], READER_OTHER, st.st_mode);
			close(fd);
			continue;
		}
		struct pull *p = xcalloc(1, sizeof(*p));
		p->fd = fd;
		r = add_file(rd, names.v[i], st.st_mode, p, ret_error);
		free(p);
		close(fd);
	}
	strv_release(&names);
	return r;
}

static int read_lone_segment(struct reading *rd, char **ret_error) {
	struct reader_output *o = rd->o;
	int fd = open(o->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		*ret_error = xasprintf("cannot open '%s': %s", o->path, strerror(errno));
		return -errno;
	}
	const char *base = strrchr(o->path, '/') ? strrchr(o->path, '/') + 1 : o->path;
	GROW(o->segs, o->cap_segs, 1);
	o->segs[0] = (struct reader_segment){ .path = xstrdup(base) };
	o->n_segs = 1;
	struct pull *p = xcalloc(1, sizeof(*p));
	p->fd = fd;
	p->h = sha256_new();
	read_segment(p, &o->segs[0], &rd->budget);
	sha256_free(p->h);
	int r = 0;
	if (p->error) {
		*ret_error = xasprintf("cannot read '%s': %s", o->path, p->error);
		r = -EIO;
	}
	free(p->error);
	free(p->head);
	free(p);
	close(fd);
	return r;
}

/* ---- El Torito ---------------------------------------------------------- */

static uint32_t le32(const unsigned char *p) {
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static bool read_at(int fd, uint64_t off, void *buf, size_t len) {
	ssize_t n = pread(fd, buf, len, (off_t)off);
	return n == (ssize_t)len;
}

static void boot_add(struct reader_output *o, size_t *cap, unsigned platform, const unsigned char *e) {
	GROW(o->boot, *cap, o->n_boot + 1);
	struct reader_boot_image *b = &o->boot[o->n_boot++];
	*b = (struct reader_boot_image){ .bootable = e[0] == 0x88, .sectors = (uint32_t)e[6] | (uint32_t)e[7] << 8,
					 .load_rba = le32(e + 8) };
	if (platform == 0)
		strcpy(b->platform, "BIOS");
	else if (platform == 0xef)
		strcpy(b->platform, "UEFI");
	else
		snprintf(b->platform, sizeof(b->platform), "0x%02x", (unsigned char)platform);
}

/* The boot record volume descriptor and its catalog (one sector is plenty
 * for the entries an ISO of ours has; more are not looked for). A medium
 * without one, or with a damaged one, has no boot images. */
static void read_el_torito(struct reader_output *o) {
	int fd = open(o->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	struct stat st;
	unsigned char vd[ISO_SECTOR], cat[ISO_SECTOR];
	uint32_t cat_lba = 0;
	if (fstat(fd, &st) < 0)
		goto out;
	for (unsigned s = 16; s < 16 + 32; s++) {
		if (!read_at(fd, (uint64_t)s * ISO_SECTOR, vd, sizeof(vd)) || memcmp(vd + 1, "CD001", 5) != 0 || vd[0] == 255)
			break;
		if (vd[0] == 0 && memcmp(vd + 7, "EL TORITO SPECIFICATION", 23) == 0) {
			cat_lba = le32(vd + 0x47);
			break;
		}
	}
	if (!cat_lba || (uint64_t)cat_lba * ISO_SECTOR + ISO_SECTOR > (uint64_t)st.st_size ||
	    !read_at(fd, (uint64_t)cat_lba * ISO_SECTOR, cat, sizeof(cat)))
		goto out;
	/* The validation entry: header 1, key bytes 55 AA, words summing to 0. */
	unsigned sum = 0;
	for (int i = 0; i < 32; i += 2)
		sum += (unsigned)cat[i] | (unsigned)cat[i + 1] << 8;
	if (cat[0] != 1 || cat[30] != 0x55 || cat[31] != 0xaa || (sum & 0xffff) != 0)
		goto out;
	size_t cap = 0;
	boot_add(o, &cap, cat[1], cat + 32);
	for (size_t off = 64; off + 32 <= sizeof(cat);) {
		const unsigned char *h = cat + off;
		if (h[0] != 0x90 && h[0] != 0x91)
			break;
		unsigned n = (unsigned)h[2] | (unsigned)h[3] << 8;
		off += 32;
		for (unsigned k = 0; k < n && off + 32 <= sizeof(cat) && o->n_boot < 64; k++, off += 32)
			boot_add(o, &cap, h[1], cat + off);
		if (h[0] == 0x91)
			break;
	}
	/* Which file each image is: the one whose first sector lies there. */
	for (size_t i = 0; i < o->n_boot; i++) {
		struct reader_boot_image *b = &o->boot[i];
		unsigned char sector[ISO_SECTOR];
		if ((uint64_t)b->load_rba * ISO_SECTOR + ISO_SECTOR > (uint64_t)st.st_size ||
		    !read_at(fd, (uint64_t)b->load_rba * ISO_SECTOR, sector, sizeof(sector)))
			continue;
		for (size_t k = 0; k < o->n && !b->path; k++) {
			const struct reader_file *f = &o->files[k];
			if (f->head && f->head_len == (f->size < ISO_SECTOR ? f->size : ISO_SECTOR) && f->head_len &&
			    memcmp(f->head, sector, f->head_len) == 0 && !streq(f->path, "isolinux/boot.cat"))
				b->path = xstrdup(f->path);
		}
	}
out:
	close(fd);
}

/* ---- opening ------------------------------------------------------------ */

static bool sniff(int fd, uint64_t off, const char *magic, size_t len) {
	char buf[16];
	return len <= sizeof(buf) && read_at(fd, off, buf, len) && memcmp(buf, magic, len) == 0;
}

static int identify(const char *path, enum reader_kind *ret, bool *ret_qcow2, struct diags *d) {
	struct stat st;
	if (stat(path, &st) < 0) {
		int e = errno;
		diag_error(d, NULL, "cannot open '%s': %s", path, strerror(e));
		return -e;
	}
	if (S_ISDIR(st.st_mode)) {
		_cleanup_free_ char *def = path_join(path, "pxelinux.cfg/default");
		_cleanup_free_ char *ipxe = path_join(path, "boot.ipxe");
		_cleanup_free_ char *info = path_join(path, BUILDINFO_FILE);
		_cleanup_free_ char *sums = path_join(path, SHA256SUMS_NAME);
		if (path_exists(def) || path_exists(ipxe))
			*ret = READER_PXE_TREE;
		else if (path_exists(info) || path_exists(sums))
			*ret = READER_INITRD_DIR;
		else {
			diag_error(d, NULL, "'%s' is not an output of dlws-mkimage (no %s, no %s)", path, BUILDINFO_FILE, SHA256SUMS_NAME);
			return -EINVAL;
		}
		return 0;
	}
	if (!S_ISREG(st.st_mode)) {
		diag_error(d, NULL, "'%s' is not a file or directory", path);
		return -EINVAL;
	}
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		diag_error(d, NULL, "cannot open '%s': %s", path, strerror(e));
		return -e;
	}
	int r = 0;
	if (sniff(fd, 16 * ISO_SECTOR + 1, "CD001", 5))
		*ret = READER_ISO;
	else if (sniff(fd, 257, "ustar", 5))
		*ret = READER_PXE_TAR;
	else if (sniff(fd, 0, "\x1f\x8b", 2) || sniff(fd, 0, "\x28\xb5\x2f\xfd", 4) || sniff(fd, 0, "\xfd" "7zXZ\0", 6))
		*ret = READER_SEGMENT;
	else if (sniff(fd, 0, "QFI\xfb", 4) || sniff(fd, 512, "EFI PART", 8)) {
		*ret = READER_DISK;
		*ret_qcow2 = sniff(fd, 0, "QFI\xfb", 4);
	} else {
		diag_error(d, NULL, "'%s' is not an output of dlws-mkimage (a PXE tree or tar, an initrd directory, an ISO or "
			   "a .cpio.zst, .cpio.xz or .cpio.gz segment)", path);
		r = -EINVAL;
	}
	close(fd);
	return r;
}

int reader_open(const char *path, struct reader_output *ret, struct diags *d) {
	enum reader_kind kind = READER_SEGMENT;
	bool qcow2 = false;
	int r = identify(path, &kind, &qcow2, d);
	if (r < 0)
		return r;
	struct reader_output o = { .kind = kind, .path = xstrdup(path) };
	struct reading rd = { .o = &o, .want_head = kind == READER_ISO };
	char *error = NULL;
	switch (kind) {
	case READER_PXE_TREE:
	case READER_INITRD_DIR:
		r = read_tree(&rd, d, &error);
		break;
	case READER_PXE_TAR:
	case READER_ISO:
		r = read_archive(&rd, kind == READER_ISO, &error);
		break;
	case READER_SEGMENT:
		r = read_lone_segment(&rd, &error);
		break;
	case READER_DISK:
		o.disk_format = qcow2 ? "qcow2" : "raw";
		r = disk_read(path, qcow2, &o, d);
		break;
	}
	if (r == 0)
		r = files_finish(o.files, o.n, path, &error);
	if (r == 0 && kind == READER_ISO)
		read_el_torito(&o);
	if (r < 0) {
		if (error)
			diag_error(d, NULL, "%s", error);
		free(error);
		reader_release(&o);
		return r;
	}
	*ret = o;
	return 0;
}

void reader_release(struct reader_output *o) {
	for (size_t i = 0; i < o->n; i++)
		file_release(&o->files[i]);
	free(o->files);
	for (size_t i = 0; i < o->n_segs; i++) {
		for (size_t k = 0; k < o->segs[i].n; k++)
			file_release(&o->segs[i].files[k]);
		free(o->segs[i].files);
		free(o->segs[i].path);
		free(o->segs[i].error);
	}
	free(o->segs);
	for (size_t i = 0; i < o->n_boot; i++)
		free(o->boot[i].path);
	free(o->boot);
	free(o->path);
	*o = (struct reader_output)READER_OUTPUT_INIT;
}

/* ---- manifests ---------------------------------------------------------- */

void reader_manifest_release(struct reader_manifest *m) {
	for (size_t i = 0; i < m->n; i++)
		free(m->v[i].path);
	free(m->v);
	*m = (struct reader_manifest){ 0 };
}

static bool parse_line(const char *at, size_t len, struct reader_manifest_line *ret, const struct srcloc *loc,
		       struct diag_batch *p) {
	_cleanup_free_ char *line = xstrndup(at, len);
	if (strlen(line) != len) {
		diag_batch_error(p, loc, "holds a NUL byte");
		return false;
	}
	char *f[5] = { 0 };
	size_t n = 0;
	char *save = NULL;
	for (char *w = strtok_r(line, " ", &save); w && n < 5; w = strtok_r(NULL, " ", &save))
		f[n++] = w;
	if (n != 4) {
		diag_batch_error(p, loc, "expected '<sha256> <size> <mode> /<path>'");
		return false;
	}
	if (strlen(f[0]) != SHA256_HEX_LEN || !is_sha256_hex(f[0])) {
		diag_batch_error(p, loc, "not a sha256: '%.70s'", f[0]);
		return false;
	}
	char *end;
	errno = 0;
	unsigned long long size = strtoull(f[1], &end, 10);
	if (f[1][0] < '0' || f[1][0] > '9' || *end || errno == ERANGE || size > READER_MANIFEST_SIZE_MAX) {
		diag_batch_error(p, loc, "absurd size '%.30s'", f[1]);
		return false;
	}
	unsigned long mode = strtoul(f[2], &end, 8);
	if (f[2][0] < '0' || f[2][0] > '7' || *end || mode > 07777) {
		diag_batch_error(p, loc, "bad mode '%.10s'", f[2]);
		return false;
	}
	if (f[3][0] != '/' || !reader_name_ok(f[3] + 1)) {
		_cleanup_free_ char *pp = printable(f[3]);
		diag_batch_error(p, loc, "refusing path '%s': not a plain absolute path inside the payload", pp);
		return false;
	}
	for (int i = 0; i <= SHA256_HEX_LEN; i++)
		ret->sha256[i] = (char)(f[0][i] >= 'A' && f[0][i] <= 'F' ? f[0][i] - 'A' + 'a' : f[0][i]);
	ret->size = size;
	ret->mode = (unsigned)mode;
	ret->path = xstrdup(f[3] + 1);
	return true;
}

int reader_manifest_parse(const char *text, size_t len, const char *name, struct reader_manifest *ret, struct diags *d) {
	struct reader_manifest m = { 0 };
	struct diag_batch p = { d, 0 };
	const char *end = text + len;
	int line = 0;
	for (const char *at = text; at < end;) {
		line++;
		const char *nl = memchr(at, '\n', (size_t)(end - at));
		size_t n = (size_t)((nl ? nl : end) - at);
		struct srcloc loc = { name, line, 0 };
		if (n && at[0] != '#') {
			struct reader_manifest_line l;
			if (parse_line(at, n, &l, &loc, &p)) {
				GROW(m.v, m.cap, m.n + 1);
				m.v[m.n++] = l;
				m.total += l.size;
			}
		}
		at = nl ? nl + 1 : end;
	}
	int r = diag_batch_end(&p);
	if (r < 0) {
		reader_manifest_release(&m);
		return r;
	}
	*ret = m;
	return 0;
}

/* ---- boot menus --------------------------------------------------------- */

bool reader_mac_ok(const char *mac) {
	if (!mac || strlen(mac) != 17)
		return false;
	for (int i = 0; i < 17; i++)
		if (i % 3 == 2 ? mac[i] != ':' : !isxdigit((unsigned char)mac[i]))
			return false;
	return true;
}

static bool label_ok(const char *s) {
	size_t n = strlen(s);
	if (n == 0 || n > 255)
		return false;
	for (const char *c = s; *c; c++)
		if (!isalnum((unsigned char)*c) && *c != '.' && *c != '_' && *c != ':' && *c != '-')
			return false;
	return true;
}

/* An entry being read; added to the menu when it ends. */
struct pending_entry {
	int line;               /* where it starts, 0: none */
	char *label, *title, *kernel, *cmdline;
	struct strv initrds;
	struct strv initrd_names;       /* iPXE: the kernel line's initrd= names */
	bool too_many;
	bool refused;           /* a path was refused (and said so): left out */
};

static void pending_release(struct pending_entry *e) {
	free(e->label);
	free(e->title);
	free(e->kernel);
	free(e->cmdline);
	strv_release(&e->initrds);
	strv_release(&e->initrd_names);
	*e = (struct pending_entry){ 0 };
}

struct menu_parse {
	enum reader_bootcfg kind;
	const char *name;
	struct boot_menu *m;
	struct strv *problems;
	char *default_label;
	int default_line;
	bool too_many, too_many_macs;
	int *lines;             /* where each entry of m starts */
	size_t lines_cap;
	size_t n_problems;
};

#define MENU_PROBLEMS_MAX 20    /* said per menu; the rest counted */

static void menu_problem(struct menu_parse *mp, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void menu_problem(struct menu_parse *mp, int line, const char *fmt, ...) {
	if (mp->n_problems++ >= MENU_PROBLEMS_MAX)
		return;
	va_list ap;
	va_start(ap, fmt);
	_cleanup_free_ char *msg = xvasprintf(fmt, ap);
	va_end(ap);
	strv_push_take(mp->problems, xasprintf("%s:%d: %s", mp->name, line, msg));
}

/* A path as the menu names it, as a path from the boot root: syslinux
 * and GRUB may start it with '/', iPXE's are relative to the script. */
static char *menu_path(const struct menu_parse *mp, const char *p) {
	if (mp->kind != READER_BOOT_IPXE && p[0] == '/')
		p++;
	return reader_name_ok(p) ? xstrdup(p) : NULL;
}

static void entry_end(struct menu_parse *mp, struct pending_entry *e) {
	if (!e->line)
		return;
	_cleanup_free_ char *shown = printable(e->label ? e->label : "");
	const char *why = NULL;
	if (e->refused) {
		pending_release(e);
		return;
	}
	if (!label_ok(e->label))
		why = "not a label of [A-Za-z0-9._:-]";
	else if (!e->kernel)
		why = "no kernel";
	else if (e->title && (strlen(e->title) > READER_BOOT_TEXT_MAX || !reader_is_text(e->title, strlen(e->title))))
		why = "its title is not printable text";
	else if (e->cmdline && (strlen(e->cmdline) > READER_BOOT_TEXT_MAX || !reader_is_text(e->cmdline, strlen(e->cmdline))))
		why = "its command line is not printable text";
	char many[48];
	snprintf(many, sizeof(many), "more than %d initrds", READER_BOOT_INITRDS_MAX);
	if (!why && e->too_many)
		why = many;
	if (why) {
		menu_problem(mp, e->line, "entry '%s': %s", shown, why);
		pending_release(e);
		return;
	}
	if (mp->kind == READER_BOOT_IPXE) {
		/* iPXE hands an EFI kernel only the initrds its command line names. */
		bool same = e->initrd_names.n == e->initrds.n;
		for (size_t i = 0; same && i < e->initrds.n; i++) {
			const char *base = strrchr(e->initrds.v[i], '/') ? strrchr(e->initrds.v[i], '/') + 1 : e->initrds.v[i];
			same = streq(base, e->initrd_names.v[i]);
		}
		if (!same)
			menu_problem(mp, e->line, "entry '%s': the kernel line's initrd= names are not the initrds it loads", shown);
	}
	if (mp->m->n >= READER_BOOT_ENTRIES_MAX) {
		if (!mp->too_many)
			menu_problem(mp, e->line, "more than %d entries", READER_BOOT_ENTRIES_MAX);
		mp->too_many = true;
		pending_release(e);
		return;
	}
	struct boot_entry *be = boot_menu_add(mp->m, e->label, e->title ? e->title : "", e->kernel, e->cmdline ? e->cmdline : "");
	if (!e->title) {
		free(be->title);
		be->title = NULL;
	}
	be->initrds = e->initrds;
	e->initrds = (struct strv)STRV_INIT;
	GROW(mp->lines, mp->lines_cap, mp->m->n);
	mp->lines[mp->m->n - 1] = e->line;
	pending_release(e);
}

/* The words of `s` split at `sep` (a string of separators), empty ones
 * skipped; false when there are more than `max`. */
static bool split_words(const char *s, const char *sep, struct strv *ret, size_t max) {
	for (const char *at = s; *at;) {
		size_t skip = strspn(at, sep);
		at += skip;
		size_t n = strcspn(at, sep);
		if (!n)
			break;
		if (ret->n >= max)
			return false;
		strv_push_take(ret, xstrndup(at, n));
		at += n;
	}
	return true;
}

/* Sets a path field, or says why not. */
static void set_path(struct menu_parse *mp, int line, struct pending_entry *e, char **field, const char *p) {
	char *path = menu_path(mp, p);
	if (!path) {
		_cleanup_free_ char *shown = printable(p);
		menu_problem(mp, line, "refusing path '%s': not a plain path inside the boot root", shown);
		/* The entry is left out: a half-read entry would mislead. */
		e->refused = true;
		return;
	}
	free(*field);
	*field = path;
}

static void set_initrds(struct menu_parse *mp, int line, struct pending_entry *e, const char *list, const char *sep) {
	struct strv words = STRV_INIT;
	if (!split_words(list, sep, &words, READER_BOOT_INITRDS_MAX))
		e->too_many = true;
	for (size_t i = 0; i < words.n; i++) {
		char *path = menu_path(mp, words.v[i]);
		if (!path) {
			_cleanup_free_ char *shown = printable(words.v[i]);
			menu_problem(mp, line, "refusing path '%s': not a plain path inside the boot root", shown);
			e->refused = true;
			break;
		}
		if (e->initrds.n >= READER_BOOT_INITRDS_MAX) {
			free(path);
			e->too_many = true;
			break;
		}
		strv_push_take(&e->initrds, path);
	}
	strv_release(&words);
}

static void entry_start(struct menu_parse *mp, struct pending_entry *e, int line, const char *label) {
	entry_end(mp, e);
	*e = (struct pending_entry){ .line = line, .label = xstrdup(label) };
}

/* The word at `s` (up to a space or tab), and where the rest starts. */
static char *word(const char *s, const char **ret_rest) {
	s += strspn(s, " \t");
	size_t n = strcspn(s, " \t");
	*ret_rest = s + n + strspn(s + n, " \t");
	return xstrndup(s, n);
}

static void syslinux_line(struct menu_parse *mp, struct pending_entry *e, int line, const char *s) {
	const char *rest;
	_cleanup_free_ char *kw = word(s, &rest);
	if (strcasecmp(kw, "LABEL") == 0)
		entry_start(mp, e, line, rest);
	else if (strcasecmp(kw, "DEFAULT") == 0 && !mp->default_label) {
		mp->default_label = xstrdup(rest);
		mp->default_line = line;
	} else if (!e->line)
		return;
	else if (strcasecmp(kw, "MENU") == 0) {
		const char *title;
		_cleanup_free_ char *sub = word(rest, &title);
		if (strcasecmp(sub, "LABEL") == 0) {
			free(e->title);
			e->title = xstrdup(title);
		}
	} else if (strcasecmp(kw, "KERNEL") == 0 || strcasecmp(kw, "LINUX") == 0)
		set_path(mp, line, e, &e->kernel, rest);
	else if (strcasecmp(kw, "INITRD") == 0)
		set_initrds(mp, line, e, rest, ",");
	else if (strcasecmp(kw, "APPEND") == 0) {
		free(e->cmdline);
		e->cmdline = xstrdup(rest);
	}
}

static void grub_line(struct menu_parse *mp, struct pending_entry *e, int line, const char *s) {
	const char *rest;
	_cleanup_free_ char *kw = word(s, &rest);
	if (streq(kw, "menuentry")) {
		/* menuentry 'TITLE' --id LABEL { */
		const char *q = rest[0] == '\'' ? strchr(rest + 1, '\'') : NULL;
		const char *id = q ? strstr(q, " --id ") : NULL;
		if (!q || !id) {
			menu_problem(mp, line, "a menuentry not as dlws-mkimage writes it ('TITLE' --id LABEL {)");
			entry_end(mp, e);
			return;
		}
		const char *after;
		_cleanup_free_ char *label = word(id + 6, &after);
		entry_start(mp, e, line, label);
		e->title = xstrndup(rest + 1, (size_t)(q - rest - 1));
	} else if (streq(kw, "set") && startswith(rest, "default=") && !mp->default_label) {
		mp->default_label = xstrdup(rest + 8);
		mp->default_line = line;
	} else if (!e->line)
		return;
	else if (streq(kw, "}"))
		entry_end(mp, e);
	else if (streq(kw, "linux") || streq(kw, "linuxefi")) {
		const char *cmdline;
		_cleanup_free_ char *kernel = word(rest, &cmdline);
		set_path(mp, line, e, &e->kernel, kernel);
		free(e->cmdline);
		e->cmdline = xstrdup(cmdline);
	} else if (streq(kw, "initrd") || streq(kw, "initrdefi"))
		set_initrds(mp, line, e, rest, " \t");
}

struct dispatch {
	char *mac, *label;
	int line;
};

static void ipxe_line(struct menu_parse *mp, struct pending_entry *e, int line, const char *s, struct dispatch **dv, size_t *dn,
		      size_t *dcap) {
	const char *rest;
	_cleanup_free_ char *kw = word(s, &rest);
	if (kw[0] == ':')
		entry_start(mp, e, line, kw + 1);
	else if (streq(kw, "iseq") && startswith(rest, "${mac} ")) {
		/* iseq ${mac} MAC && goto LABEL || */
		const char *r2, *r3, *r4, *r5;
		_cleanup_free_ char *mac = word(rest + 7, &r2);
		_cleanup_free_ char *and = word(r2, &r3);
		_cleanup_free_ char *go = word(r3, &r4);
		_cleanup_free_ char *label = word(r4, &r5);
		if (!streq(and, "&&") || !streq(go, "goto") || !streq(r5, "||")) {
			menu_problem(mp, line, "a per-MAC line not as dlws-mkimage writes it (iseq ${mac} MAC && goto LABEL ||)");
			return;
		}
		if (*dn >= READER_BOOT_ENTRIES_MAX) {
			if (!mp->too_many_macs)
				menu_problem(mp, line, "more than %d per-MAC lines", READER_BOOT_ENTRIES_MAX);
			mp->too_many_macs = true;
			return;
		}
		GROW(*dv, *dcap, *dn + 1);
		(*dv)[(*dn)++] = (struct dispatch){ .mac = xstrdup(mac), .label = xstrdup(label), .line = line };
	} else if (streq(kw, "goto") && !e->line && !mp->default_label) {
		mp->default_label = xstrdup(rest);
		mp->default_line = line;
	} else if (!e->line)
		return;
	else if (streq(kw, "kernel")) {
		/* kernel PATH [initrd=NAME]... CMDLINE */
		const char *after;
		_cleanup_free_ char *kernel = word(rest, &after);
		set_path(mp, line, e, &e->kernel, kernel);
		strv_release(&e->initrd_names);
		while (startswith(after, "initrd=")) {
			const char *next;
			char *w = word(after, &next);
			if (e->initrd_names.n < READER_BOOT_INITRDS_MAX)
				strv_push(&e->initrd_names, w + 7);
			else
				e->too_many = true;
			free(w);
			after = next;
		}
		free(e->cmdline);
		e->cmdline = xstrdup(after);
	} else if (streq(kw, "initrd"))
		set_initrds(mp, line, e, rest, " \t");
	else if (streq(kw, "boot"))
		entry_end(mp, e);
}

static int cmp_by_label(const void *a, const void *b, void *ctx) {
	const struct boot_entry *v = ctx;
	size_t x = *(const size_t *)a, y = *(const size_t *)b;
	int c = strcmp(v[x].label, v[y].label);
	return c ? c : (x > y) - (x < y);
}

static void entry_free(struct boot_entry *e) {
	free(e->label);
	free(e->title);
	free(e->kernel);
	free(e->cmdline);
	free(e->mac);
	strv_release(&e->initrds);
}

/* Leaves out every entry whose label an earlier one has (as syslinux,
 * GRUB and iPXE would find the first), saying so; returns the entries'
 * indexes sorted by label, for menu_find. */
static size_t *menu_dedup(struct menu_parse *mp) {
	struct boot_menu *m = mp->m;
	size_t *idx = xcalloc(m->n + 1, sizeof(*idx));
	for (size_t i = 0; i < m->n; i++)
		idx[i] = i;
	qsort_r(idx, m->n, sizeof(*idx), cmp_by_label, m->v);
	bool *gone = xcalloc(m->n + 1, sizeof(*gone));
	size_t n_gone = 0;
	for (size_t i = 1; i < m->n; i++)
		if (streq(m->v[idx[i]].label, m->v[idx[i - 1]].label)) {
			menu_problem(mp, mp->lines[idx[i]], "entry '%s' is defined twice", m->v[idx[i]].label);
			gone[idx[i]] = true;
			n_gone++;
		}
	if (n_gone) {
		size_t *new_index = xcalloc(m->n + 1, sizeof(*new_index));
		size_t k = 0;
		for (size_t i = 0; i < m->n; i++) {
			if (gone[i]) {
				entry_free(&m->v[i]);
				continue;
			}
			new_index[i] = k;
			m->v[k++] = m->v[i];
		}
		size_t j = 0;
		for (size_t i = 0; i < m->n; i++)
			if (!gone[idx[i]])
				idx[j++] = new_index[idx[i]];
		m->n = k;
		free(new_index);
	}
	free(gone);
	return idx;
}

static struct boot_entry *menu_find(struct boot_menu *m, const size_t *by_label, const char *label) {
	size_t lo = 0, hi = m->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(m->v[by_label[mid]].label, label);
		if (c == 0)
			return &m->v[by_label[mid]];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

void reader_bootcfg_parse(const char *text, size_t len, enum reader_bootcfg kind, const char *name, struct boot_menu *ret,
			  struct strv *problems) {
	*ret = (struct boot_menu)BOOT_MENU_INIT;
	struct menu_parse mp = { .kind = kind, .name = name, .m = ret, .problems = problems };
	struct pending_entry e = { 0 };
	struct dispatch *dv = NULL;
	size_t dn = 0, dcap = 0;
	const char *end = text + len;
	int line = 0;
	bool first = true;
	for (const char *at = text; at < end;) {
		line++;
		const char *nl = memchr(at, '\n', (size_t)(end - at));
		size_t n = (size_t)((nl ? nl : end) - at);
		const char *next = nl ? nl + 1 : end;
		if (n && at[n - 1] == '\r')
			n--;
		if (n > READER_BOOT_LINE_MAX) {
			menu_problem(&mp, line, "longer than %d bytes", READER_BOOT_LINE_MAX);
			at = next;
			continue;
		}
		_cleanup_free_ char *l = xstrndup(at, n);
		at = next;
		if (strlen(l) != n) {
			menu_problem(&mp, line, "holds a NUL byte");
			continue;
		}
		const char *s = l + strspn(l, " \t");
		if (kind == READER_BOOT_IPXE && first) {
			first = false;
			if (!streq(s, "#!ipxe")) {
				menu_problem(&mp, line, "not an iPXE script (no #!ipxe)");
				break;
			}
			continue;
		}
		if (!*s || s[0] == '#')
			continue;
		if (kind == READER_BOOT_SYSLINUX)
			syslinux_line(&mp, &e, line, s);
		else if (kind == READER_BOOT_GRUB)
			grub_line(&mp, &e, line, s);
		else
			ipxe_line(&mp, &e, line, s, &dv, &dn, &dcap);
	}
	if (e.line && kind != READER_BOOT_SYSLINUX)
		menu_problem(&mp, e.line, "entry '%s' does not end", label_ok(e.label) ? e.label : "?");
	else
		entry_end(&mp, &e);
	pending_release(&e);
	size_t *by_label = menu_dedup(&mp);
	for (size_t i = 0; i < dn; i++) {
		struct boot_entry *be = menu_find(ret, by_label, dv[i].label);
		_cleanup_free_ char *shown = printable(dv[i].label);
		_cleanup_free_ char *mac = printable(dv[i].mac);
		if (!reader_mac_ok(dv[i].mac))
			menu_problem(&mp, dv[i].line, "'%s' is not a MAC address", mac);
		else if (!be)
			menu_problem(&mp, dv[i].line, "goto '%s' names no entry", shown);
		else if (!be->mac) {
			be->mac = xstrdup(dv[i].mac);
			for (char *c = be->mac; *c; c++)
				*c = (char)tolower((unsigned char)*c);
		}
		free(dv[i].mac);
		free(dv[i].label);
	}
	free(dv);
	ret->default_entry = ret->n;
	if (mp.default_label) {
		const struct boot_entry *def = menu_find(ret, by_label, mp.default_label);
		if (def)
			ret->default_entry = (size_t)(def - ret->v);
		else {
			_cleanup_free_ char *shown = printable(mp.default_label);
			menu_problem(&mp, mp.default_line, "the default '%s' names no entry", shown);
		}
		free(mp.default_label);
	}
	free(by_label);
	free(mp.lines);
	if (mp.n_problems > MENU_PROBLEMS_MAX)
		strv_push_take(problems, xasprintf("%s: %zu more problems", name, mp.n_problems - MENU_PROBLEMS_MAX));
}

/* ---- verifying ---------------------------------------------------------- */

static void check_file(const struct reader_file *f, const char *want_sha, uint64_t want_size, bool check_size,
		       const char *where, const char *path, struct strv *problems, size_t *checked) {
	if (!f)
		strv_push_take(problems, xasprintf("%s: '%s' is missing", where, path));
	else if (f->type != READER_REG)
		strv_push_take(problems, xasprintf("%s: '%s' is not a regular file", where, path));
	else if (check_size && f->size != want_size)
		strv_push_take(problems, xasprintf("%s: '%s' has %llu bytes, expected %llu", where, path,
						   (unsigned long long)f->size, (unsigned long long)want_size));
	else if (!streq(f->sha256, want_sha))
		strv_push_take(problems, xasprintf("%s: '%s' does not match its checksum (expected %.12s..., got %.12s...)",
						   where, path, want_sha, f->sha256));
	else
		(*checked)++;
}

static void verify_segment(const struct reader_output *o, const struct reader_segment *seg, struct strv *problems,
			   size_t *checked, size_t *elsewhere) {
	if (seg->error) {
		strv_push_take(problems, xasprintf("%s: %s", seg->path, seg->error));
		return;
	}
	size_t n_manifests = 0;
	static const char large[] = PAYLOAD_LARGE "/";
	for (size_t i = 0; i < seg->n; i++) {
		const struct reader_file *mf = &seg->files[i];
		if (!startswith(mf->path, PAYLOAD_MANIFESTS "/") || mf->type != READER_REG)
			continue;
		n_manifests++;
		_cleanup_free_ char *where = xasprintf("%s: /%s", seg->path, mf->path);
		if (!mf->data) {
			strv_push_take(problems, xasprintf("%s: larger than %zu bytes", where, READER_KEEP_LIMIT));
			continue;
		}
		struct diags d = DIAGS_INIT;
		struct reader_manifest m;
		if (reader_manifest_parse(mf->data, mf->len, where, &m, &d) < 0) {
			for (size_t k = 0; k < d.n; k++)
				if (d.v[k].level == DIAG_ERROR)
					strv_push_take(problems, d.v[k].line ? xasprintf("%s:%d: %s", d.v[k].file, d.v[k].line, d.v[k].msg)
									     : xasprintf("%s: %s", d.v[k].file, d.v[k].msg));
			diags_release(&d);
			continue;
		}
		diags_release(&d);
		for (size_t k = 0; k < m.n; k++) {
			const struct reader_manifest_line *l = &m.v[k];
			const struct reader_file *f = reader_find(seg->files, seg->n, l->path);
			_cleanup_free_ char *shown = xasprintf("/%s", l->path);
			if (!f && startswith(l->path, large)) {
				/* Kept on the boot medium (iso.c fill()). */
				if (o->kind != READER_ISO) {
					(*elsewhere)++;
					continue;
				}
				_cleanup_free_ char *on_medium = xasprintf("dlws/large/%s", l->path + strlen(large));
				f = reader_find(o->files, o->n, on_medium);
				free(shown);
				shown = xasprintf("%s (/%s)", on_medium, l->path);
			}
			check_file(f, l->sha256, l->size, true, seg->path, shown, problems, checked);
		}
		reader_manifest_release(&m);
	}
	if (n_manifests == 0)
		strv_push_take(problems, xasprintf("%s: holds no manifest (%s/)", seg->path, PAYLOAD_MANIFESTS));
}

/* A disk's manifest against what disk_read found; the build metadata
 * names the manifest's sum, so neither changes alone. */
static void verify_disk(const struct reader_output *o, struct strv *problems, size_t *checked) {
	const struct reader_file *mf = reader_find(o->files, o->n, DISK_READ_MANIFEST);
	const struct reader_file *bf = reader_find(o->files, o->n, DISK_READ_BUILDINFO);
	struct diags d = DIAGS_INIT;
	struct reader_manifest m = { 0 };
	if (!mf || !mf->data || reader_manifest_parse(mf->data, mf->len, DISK_READ_MANIFEST, &m, &d) < 0) {
		strv_push_take(problems, xasprintf("%s: /%s is missing or unreadable", o->path, DISK_READ_MANIFEST));
		diags_release(&d);
		return;
	}
	struct buildinfo info;
	if (!bf || !bf->data || buildinfo_parse(bf->data, bf->len, DISK_READ_BUILDINFO, &info, &d) < 0)
		strv_push_take(problems, xasprintf("%s: /%s is missing or unreadable", o->path, DISK_READ_BUILDINFO));
	else {
		if (info.n_recipes != 1 || !info.recipes[0].payload_sha256 || !streq(info.recipes[0].payload_sha256, mf->sha256))
			strv_push_take(problems, xasprintf("%s: /%s does not match the payload_sha256 in /%s", o->path, DISK_READ_MANIFEST,
							   DISK_READ_BUILDINFO));
		else
			(*checked)++;
		buildinfo_release(&info);
	}
	diags_release(&d);
	for (size_t k = 0; k < m.n; k++) {
		const struct reader_manifest_line *l = &m.v[k];
		const struct reader_file *f = reader_find(o->files, o->n, l->path);
		_cleanup_free_ char *shown = xasprintf("/%s", l->path);
		if (f && f->type == READER_REG && f->mode != l->mode)
			strv_push_take(problems, xasprintf("%s: '%s' has mode %04o, expected %04o", o->path, shown, f->mode, l->mode));
		else
			check_file(f, l->sha256, l->size, true, o->path, shown, problems, checked);
	}
	reader_manifest_release(&m);
}

void reader_verify(const struct reader_output *o, struct strv *problems, size_t *checked, size_t *elsewhere) {
	*checked = *elsewhere = 0;
	if (o->kind == READER_DISK) {
		verify_disk(o, problems, checked);
		return;
	}
	const struct reader_file *sums = reader_find(o->files, o->n, SHA256SUMS_NAME);
	if (o->kind == READER_PXE_TREE || o->kind == READER_PXE_TAR || o->kind == READER_INITRD_DIR) {
		if (!sums || sums->type != READER_REG || !sums->data)
			strv_push_take(problems, xasprintf("%s: %s is missing or unreadable", o->path, SHA256SUMS_NAME));
		else {
			struct diags d = DIAGS_INIT;
			struct sha256sums s;
			if (sha256sums_parse(sums->data, sums->len, SHA256SUMS_NAME, &s, &d) < 0) {
				for (size_t k = 0; k < d.n; k++)
					if (d.v[k].level == DIAG_ERROR)
						strv_push_take(problems, xasprintf("%s:%d: %s", SHA256SUMS_NAME, d.v[k].line, d.v[k].msg));
			} else {
				for (size_t k = 0; k < s.n; k++)
					check_file(reader_find(o->files, o->n, s.v[k].path), s.v[k].hex, 0, false, SHA256SUMS_NAME,
						   s.v[k].path, problems, checked);
				/* A file the sums do not cover was put there after the build. */
				for (size_t k = 0; k < o->n; k++)
					if (o->files[k].type == READER_REG && !streq(o->files[k].path, SHA256SUMS_NAME) &&
					    !sha256sums_find(&s, o->files[k].path))
						strv_push_take(problems, xasprintf("%s: '%s' is not listed", SHA256SUMS_NAME, o->files[k].path));
				sha256sums_release(&s);
			}
			diags_release(&d);
		}
	}
	for (size_t i = 0; i < o->n_segs; i++)
		verify_segment(o, &o->segs[i], problems, checked, elsewhere);
	if (o->kind != READER_SEGMENT && o->n_segs == 0)
		strv_push_take(problems, xasprintf("%s: holds no payload segment (*.cpio.zst, .xz or .gz)", o->path));
}

/* ---- secrets ------------------------------------------------------------ */

static int b64_value(unsigned char c) {
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+' || c == '-')
		return 62;
	if (c == '/' || c == '_')
		return 63;
	return -1;
}

char *reader_base64_decode(const char *s, size_t len, size_t limit, size_t *ret_len) {
	struct buf b = { .limit = limit };
	unsigned acc = 0;
	int bits = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == ' ' || c == '\n' || c == '\r' || c == '\t')
			continue;
		if (c == '=')
			break;
		int v = b64_value(c);
		if (v < 0) {
			buf_release(&b);
			return NULL;
		}
		acc = (acc << 6) | (unsigned)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (buf_putc(&b, (char)((acc >> bits) & 0xff)) < 0) {
				buf_release(&b);
				return NULL;
			}
		}
	}
	return buf_steal(&b, ret_len);
}

static bool is_token_char(char c) {
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool is_b64_char(char c) {
	return (c >= 'A' && c <= 'Z') || is_token_char(c) || c == '+' || c == '/';
}

/* Whether the base64 run decodes to text naming a private key. */
static bool b64_is_private_key(const char *s, size_t len) {
	size_t n = 0;
	_cleanup_free_ char *dec = reader_base64_decode(s, len, 1 << 20, &n);
	return dec && memmem(dec, n, "PRIVATE KEY", 11);
}

/* Keys whose value is a secret, matched whole and case-sensitively. */
static const char *const secret_keys[] = {
	"client-key-data", "token-secret", "token", "id-token", "refresh-token", "access-token", "password",
	"private-key", "private_key", "certificateKey", "certificate-key", "secret", "client-secret", "clientSecret",
	"identitytoken", "auth",
};
/* Command-line flags whose value is a secret (kubeadm join and init). */
static const char *const secret_flags[] = {
	"--token", "--discovery-token", "--tls-bootstrap-token", "--certificate-key", "--password",
};

static bool is_word_char(char c) {
	return isalnum((unsigned char)c) || c == '-' || c == '_';
}

/* A bootstrap token at `at`: [a-z0-9]{6}.[a-z0-9]{16}, not followed by
 * more of it. */
static bool is_bootstrap_token(const char *at, size_t left) {
	if (left < 23 || at[6] != '.' || (left > 23 && is_token_char(at[23])))
		return false;
	for (size_t k = 0; k < 23; k++)
		if (k != 6 && !is_token_char(at[k]))
			return false;
	return true;
}

/* Where a PEM private key block that starts at `i` ends (past its END
 * line's dashes, or `len` when it does not end), or 0 when none starts
 * there. Also percent-encoded ("-----BEGIN%20RSA%20PRIVATE%20KEY-----"). */
static size_t private_key_end(const char *text, size_t len, size_t i) {
	const char *at = text + i, *end = text + len;
	if (len - i < 15 || strncmp(at, "-----BEGIN", 10) != 0)
		return 0;
	size_t span = (size_t)(end - at - 10) < 200 ? (size_t)(end - at - 10) : 200;
	const char *head_end = memmem(at + 10, span, "-----", 5);
	if (!head_end || !memmem(at + 10, (size_t)(head_end - at - 10), "PRIVATE", 7) ||
	    !memmem(at + 10, (size_t)(head_end - at - 10), "KEY", 3))
		return 0;
	const char *endm = memmem(head_end + 5, (size_t)(end - head_end - 5), "-----END", 8);
	if (!endm)
		return len;
	span = (size_t)(end - endm - 8) < 200 ? (size_t)(end - endm - 8) : 200;
	const char *close = memmem(endm + 8, span, "-----", 5);
	return close ? (size_t)(close + 5 - text) : len;
}

/* "key: |" or "key: >": every more indented line after it is the value. */
static size_t mask_block(struct buf *b, const char *text, size_t len, size_t i, size_t key_col) {
	while (i < len) {
		size_t eol = i;
		while (eol < len && text[eol] != '\n')
			eol++;
		size_t ind = 0;
		while (i + ind < eol && (text[i + ind] == ' ' || text[i + ind] == '\t'))
			ind++;
		bool blank = i + ind == eol || (i + ind + 1 == eol && text[i + ind] == '\r');
		if (!blank && ind <= key_col)
			break;
		buf_append(b, text + i, ind);
		if (!blank)
			buf_puts(b, "(hidden)");
		i = eol;
		if (i < len) {
			buf_putc(b, '\n');
			i++;
		}
	}
	return i;
}

/* A secret key's value at `at` ("key" already matched, `kl` long): the
 * masked text goes to `b`; returns how much of `at` it covers, 0 when it
 * is not "key: value" / "key=value" with a value to mask. */
static size_t mask_key_value(struct buf *b, const char *text, size_t len, size_t i, size_t kl, bool token_key) {
	const char *at = text + i;
	size_t left = len - i, j = kl;
	if (j < left && (at[j] == '"' || at[j] == '\''))
		j++;
	while (j < left && (at[j] == ' ' || at[j] == '\t'))
		j++;
	if (j >= left || (at[j] != ':' && at[j] != '='))
		return 0;
	j++;
	while (j < left && (at[j] == ' ' || at[j] == '\t'))
		j++;
	if (j < left && (at[j] == '|' || at[j] == '>')) {
		size_t line_start = i;
		while (line_start > 0 && text[line_start - 1] != '\n')
			line_start--;
		size_t eol = j;
		while (eol < left && at[eol] != '\n')
			eol++;
		buf_append(b, at, eol);
		if (eol == left)
			return eol;
		buf_putc(b, '\n');
		return mask_block(b, text, len, i + eol + 1, i - line_start) - i;
	}
	char quote = j < left && (at[j] == '"' || at[j] == '\'') ? at[j] : 0;
	if (quote)
		j++;
	/* A bootstrap token keeps its id: the token rule masks its secret. */
	if (token_key && is_bootstrap_token(at + j, left - j))
		return 0;
	size_t v = j;
	while (v < left && at[v] != '\n' && at[v] != '\r' && (quote ? at[v] != quote : at[v] != ',' && at[v] != '}'))
		v++;
	if (v == j)
		return 0;
	buf_append(b, at, j);
	buf_puts(b, "(hidden)");
	return v;
}

/* "--flag=value" or "--flag value" for a secret flag at `at`. */
static size_t mask_flag(struct buf *b, const char *at, size_t left) {
	for (size_t k = 0; k < ARRAY_SIZE(secret_flags); k++) {
		size_t fl = strlen(secret_flags[k]);
		if (left <= fl + 1 || strncmp(at, secret_flags[k], fl) != 0 || (at[fl] != '=' && at[fl] != ' '))
			continue;
		size_t j = fl + 1;
		while (at[fl] == ' ' && j < left && at[j] == ' ')
			j++;
		bool quoted = j < left && (at[j] == '"' || at[j] == '\'');
		size_t s = j + quoted;
		if (is_bootstrap_token(at + s, left - s))
			return 0;
		/* "--token --other": no value. */
		if (s >= left || at[s] == '-')
			return 0;
		size_t v = s;
		if (quoted)
			while (v < left && at[v] != at[j] && at[v] != '\n')
				v++;
		else
			while (v < left && at[v] != ' ' && at[v] != '\t' && at[v] != '\n' && at[v] != '\r' && at[v] != '"' && at[v] != '\'')
				v++;
		if (v == s)
			return 0;
		buf_append(b, at, s);
		buf_puts(b, "(hidden)");
		return v;
	}
	return 0;
}

char *reader_mask_secrets(const char *text, size_t len) {
	struct buf b = BUF_INIT;
	size_t i = 0;
	while (i < len) {
		const char *at = text + i;
		size_t left = len - i;
		/* A PEM private key block, whatever its kind. */
		size_t pk = private_key_end(text, len, i);
		if (pk) {
			buf_puts(&b, "(private key hidden)");
			i = pk;
			continue;
		}
		bool at_word = i == 0 || !is_word_char(text[i - 1]);
		size_t n = 0;
		if (at_word && at[0] == '-' && left > 2 && at[1] == '-')
			n = mask_flag(&b, at, left);
		/* key: value for keys that hold secrets. */
		for (size_t k = 0; at_word && !n && k < ARRAY_SIZE(secret_keys); k++) {
			size_t kl = strlen(secret_keys[k]);
			if (left > kl && strncmp(at, secret_keys[k], kl) == 0 && !is_word_char(at[kl]))
				n = mask_key_value(&b, text, len, i, kl, streq(secret_keys[k], "token"));
		}
		if (n) {
			i += n;
			continue;
		}
		/* A bootstrap token: [a-z0-9]{6}.[a-z0-9]{16}, standing alone. */
		if (at_word && is_bootstrap_token(at, left)) {
			buf_append(&b, at, 7);
			buf_puts(&b, "****************");
			i += 23;
			continue;
		}
		/* Base64 that decodes to a private key (embedded in YAML or JSON). */
		if (at_word && is_b64_char(*at)) {
			size_t j = 0;
			while (j < left && is_b64_char(at[j]))
				j++;
			while (j < left && at[j] == '=')
				j++;
			if (j >= 40 && b64_is_private_key(at, j)) {
				buf_puts(&b, "(private key hidden)");
				i += j;
				continue;
			}
			buf_append(&b, at, j);
			i += j;
			continue;
		}
		buf_putc(&b, *at);
		i++;
	}
	return buf_steal(&b, NULL);
}
