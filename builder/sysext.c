#include "sysext.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqfs/block_processor.h>
#include <sqfs/block_writer.h>
#include <sqfs/compressor.h>
#include <sqfs/data_reader.h>
#include <sqfs/dir.h>
#include <sqfs/dir_reader.h>
#include <sqfs/dir_writer.h>
#include <sqfs/error.h>
#include <sqfs/frag_table.h>
#include <sqfs/id_table.h>
#include <sqfs/inode.h>
#include <sqfs/io.h>
#include <sqfs/meta_writer.h>
#include <sqfs/super.h>

#include "buf.h"
#include "filesum.h"
#include "fsutil.h"
#include "hash.h"
#include "util.h"

/* mksquashfs's and gensquashfs's defaults: what Flatcar's bakery makes. */
#define BLOCK_SIZE (128u << 10)
/* Images are padded to whole 4 KiB blocks, as both tools do: a loop
 * device reads whole blocks. */
#define DEVBLK_SIZE 4096u
/* Compression is the slow part; libsquashfs keeps the output in order
 * whatever the number of workers (blocks carry sequence numbers). */
#define MAX_WORKERS 4u
#define MAX_BACKLOG 32u
/* A dest is a path from a recipe; bound how deep the tree (and our
 * recursion over it) goes. */
#define MAX_DEPTH 64
#define NO_XATTR 0xFFFFFFFFu

char *sysext_node_path(const struct recipe_sysext *x) {
	if (x->src) {
		const char *base = strrchr(x->src, '/') ? strrchr(x->src, '/') + 1 : x->src;
		return xasprintf(SYSEXT_IMAGE_DIR "/%s/%s", x->name, base);
	}
	return xasprintf(SYSEXT_IMAGE_DIR "/%s/%s-%s-" SYSEXT_ARCH ".raw", x->name, x->name, x->version);
}

char *sysext_link_path(const struct recipe_sysext *x) {
	return xasprintf(SYSEXT_LINK_DIR "/%s.raw", x->name);
}

char *sysext_release_text(const struct recipe_sysext *x) {
	struct buf b = BUF_INIT;
	buf_printf(&b, "ID=%s\n", x->id);
	/* With ID=_any systemd-sysext compares neither level nor version. */
	if (x->sysext_level)
		buf_printf(&b, "SYSEXT_LEVEL=%s\n", x->sysext_level);
	buf_printf(&b, "ARCHITECTURE=%s\n", x->architecture);
	if (x->reload_manager)
		buf_puts(&b, "EXTENSION_RELOAD_MANAGER=1\n");
	return buf_steal(&b, NULL);
}

static const char *sqfs_error_text(int e) {
	switch (e) {
	case SQFS_ERROR_ALLOC: return "out of memory";
	case SQFS_ERROR_IO: return "input/output error";
	case SQFS_ERROR_COMPRESSOR: return "the compressor failed";
	case SQFS_ERROR_CORRUPTED: return "the image is corrupted";
	case SQFS_ERROR_UNSUPPORTED: return "unsupported squashfs feature";
	case SQFS_ERROR_OVERFLOW: return "a value does not fit squashfs";
	case SQFS_ERROR_OUT_OF_BOUNDS: return "a read past the end of the image";
	case SFQS_ERROR_SUPER_MAGIC: return "not a squashfs image";
	case SFQS_ERROR_SUPER_VERSION: return "unsupported squashfs version";
	case SQFS_ERROR_SUPER_BLOCK_SIZE: return "invalid block size";
	case SQFS_ERROR_NOT_DIR: return "not a directory";
	case SQFS_ERROR_NO_ENTRY: return "no such file or directory";
	case SQFS_ERROR_LINK_LOOP: return "too many levels of symbolic links";
	case SQFS_ERROR_NOT_FILE: return "not a regular file";
	case SQFS_ERROR_ARG_INVALID: return "invalid argument";
	case SQFS_ERROR_SEQUENCE: return "calls out of sequence";
	default: return "internal error";
	}
}

/* The image file as libsquashfs sees it: our own read-write fd on the
 * temp file, so that a write error keeps its errno. */
struct fd_file {
	sqfs_file_t base;
	int fd;
	sqfs_u64 size;
	int err;        /* errno of the last failed call, 0 if none */
};

static int fd_read_at(sqfs_file_t *base, sqfs_u64 offset, void *buffer, size_t size) {
	struct fd_file *f = (struct fd_file *)base;
	if (offset > f->size || size > f->size - offset)
		return SQFS_ERROR_OUT_OF_BOUNDS;
	char *p = buffer;
	while (size > 0) {
		ssize_t n = pread(f->fd, p, size, (off_t)offset);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			f->err = n < 0 ? errno : EIO;
			return SQFS_ERROR_IO;
		}
		p += n;
		size -= (size_t)n;
		offset += (sqfs_u64)n;
	}
	return 0;
}

static int fd_write_at(sqfs_file_t *base, sqfs_u64 offset, const void *buffer, size_t size) {
	struct fd_file *f = (struct fd_file *)base;
	const char *p = buffer;
	sqfs_u64 end = offset + size;
	while (size > 0) {
		ssize_t n = pwrite(f->fd, p, size, (off_t)offset);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			f->err = errno;
			return SQFS_ERROR_IO;
		}
		p += n;
		size -= (size_t)n;
		offset += (sqfs_u64)n;
	}
	if (end > f->size)
		f->size = end;
	return 0;
}

static sqfs_u64 fd_get_size(const sqfs_file_t *base) {
	return ((const struct fd_file *)base)->size;
}

static int fd_truncate(sqfs_file_t *base, sqfs_u64 size) {
	struct fd_file *f = (struct fd_file *)base;
	if (ftruncate(f->fd, (off_t)size) < 0) {
		f->err = errno;
		return SQFS_ERROR_IO;
	}
	f->size = size;
	return 0;
}

/* The fd is closed by whoever opened it. */
static void fd_destroy(sqfs_object_t *obj) {
	(void)obj;
}

/* The image's tree: directories made for the dests, sorted by name. */
struct img_node {
	char *name;
	bool dir;
	unsigned mode;                  /* permission bits */
	const struct recipe_file *file; /* a file: from disk, or */
	const char *data;               /* the extension-release, from memory */
	size_t len;
	uint64_t size;                  /* a file from disk: its size when its pin was checked */
	struct img_node **kids;
	size_t n_kids, cap_kids;
	unsigned n_subdirs;
	sqfs_inode_generic_t *inode;    /* a file's, filled in by the block processor */
	sqfs_u32 ino;
	sqfs_u64 ref;                   /* where its inode is: metadata block << 16 | offset */
};

static void img_node_free(struct img_node *n) {
	if (!n)
		return;
	for (size_t i = 0; i < n->n_kids; i++)
		img_node_free(n->kids[i]);
	free(n->kids);
	free(n->name);
	sqfs_free(n->inode);
	free(n);
}

static struct img_node *img_node_new(const char *name, size_t len, bool dir, unsigned mode) {
	struct img_node *n = xcalloc(1, sizeof(*n));
	n->name = xstrndup(name, len);
	n->dir = dir;
	n->mode = mode;
	return n;
}

/* Adds a file at `path` ("usr/bin/kubelet"), making its directories. */
static struct img_node *tree_add(struct img_node *root, const char *path, const struct srcloc *at, struct diags *d) {
	struct img_node *dir = root;
	int depth = 0;
	for (const char *p = path;;) {
		const char *slash = strchr(p, '/');
		size_t len = slash ? (size_t)(slash - p) : strlen(p);
		if (++depth > MAX_DEPTH) {
			diag_error(d, at, "'/%s' is nested deeper than %d levels", path, MAX_DEPTH);
			return NULL;
		}
		struct img_node *found = NULL;
		for (size_t i = 0; i < dir->n_kids && !found; i++)
			if (strlen(dir->kids[i]->name) == len && memcmp(dir->kids[i]->name, p, len) == 0)
				found = dir->kids[i];
		if (found && (!slash || !found->dir)) {
			diag_error(d, at, "'/%s' collides with another file of the image", path);
			return NULL;
		}
		if (!found) {
			found = img_node_new(p, len, slash != NULL, slash ? 0755 : 0);
			GROW(dir->kids, dir->cap_kids, dir->n_kids + 1);
			dir->kids[dir->n_kids++] = found;
			dir->n_subdirs += found->dir;
		}
		if (!slash)
			return found;
		dir = found;
		p = slash + 1;
	}
}

static int cmp_node(const void *a, const void *b) {
	return strcmp((*(struct img_node *const *)a)->name, (*(struct img_node *const *)b)->name);
}

/* Sorted by name, as squashfs directories must be; inode numbers in
 * post-order, so every directory's entries are numbered before it. */
static sqfs_u32 tree_finish(struct img_node *n, sqfs_u32 next) {
	if (n->n_kids > 1)
		qsort(n->kids, n->n_kids, sizeof(*n->kids), cmp_node);
	for (size_t i = 0; i < n->n_kids; i++)
		next = tree_finish(n->kids[i], next);
	n->ino = next;
	return next + 1;
}

struct writer {
	const char *out;        /* the image path, for messages */
	struct fd_file file;
	sqfs_u32 mtime;
	sqfs_compressor_t *cmp, *uncmp;
	sqfs_block_writer_t *blkwr;
	sqfs_frag_table_t *frags;
	sqfs_block_processor_t *proc;
	sqfs_meta_writer_t *inodes, *dirs;
	sqfs_dir_writer_t *dirw;
	sqfs_id_table_t *ids;
	sqfs_super_t super;
	struct diags *d;
};

/* A libsquashfs error as "cannot write 'out': what: reason". */
static int fail(struct writer *w, int code, const char *what) {
	if (code == SQFS_ERROR_IO && w->file.err)
		diag_error(w->d, NULL, "cannot write '%s': %s: %s", w->out, what, strerror(w->file.err));
	else
		diag_error(w->d, NULL, "cannot write '%s': %s: %s", w->out, what, sqfs_error_text(code));
	return code == SQFS_ERROR_ALLOC ? -ENOMEM : -EIO;
}

static unsigned workers(void) {
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n < 1 ? 1 : (unsigned)n > MAX_WORKERS ? MAX_WORKERS : (unsigned)n;
}

static int writer_open(struct writer *w) {
	int k = sqfs_super_init(&w->super, BLOCK_SIZE, w->mtime, SQFS_COMP_GZIP);
	if (k)
		return fail(w, k, "superblock");
	sqfs_compressor_config_t cfg;
	k = sqfs_compressor_config_init(&cfg, SQFS_COMP_GZIP, BLOCK_SIZE, 0);
	if (k == 0)
		k = sqfs_compressor_create(&cfg, &w->cmp);
	if (k)
		return fail(w, k, "compressor");
	/* A decompressor lets the block processor compare a fragment it would
	 * deduplicate byte for byte, not by checksum alone. */
	cfg.flags |= SQFS_COMP_FLAG_UNCOMPRESS;
	k = sqfs_compressor_create(&cfg, &w->uncmp);
	if (k)
		return fail(w, k, "decompressor");
	k = sqfs_super_write(&w->super, &w->file.base);
	if (k)
		return fail(w, k, "superblock");
	k = w->cmp->write_options(w->cmp, &w->file.base);
	if (k < 0)
		return fail(w, k, "compressor options");
	if (k > 0)
		w->super.flags |= SQFS_FLAG_COMPRESSOR_OPTIONS;
	w->blkwr = sqfs_block_writer_create(&w->file.base, DEVBLK_SIZE, 0);
	w->frags = sqfs_frag_table_create(0);
	w->ids = sqfs_id_table_create(0);
	w->inodes = sqfs_meta_writer_create(&w->file.base, w->cmp, 0);
	/* Directories are written after the inodes, so they wait in memory. */
	w->dirs = sqfs_meta_writer_create(&w->file.base, w->cmp, SQFS_META_WRITER_KEEP_IN_MEMORY);
	w->dirw = w->dirs ? sqfs_dir_writer_create(w->dirs, 0) : NULL;
	if (!w->blkwr || !w->frags || !w->ids || !w->inodes || !w->dirw)
		return fail(w, SQFS_ERROR_ALLOC, "writers");
	sqfs_block_processor_desc_t desc = {
		.size = sizeof(desc),
		.max_block_size = BLOCK_SIZE,
		.num_workers = workers(),
		.max_backlog = MAX_BACKLOG,
		.cmp = w->cmp,
		.wr = w->blkwr,
		.tbl = w->frags,
		.file = &w->file.base,
		.uncmp = w->uncmp,
	};
	k = sqfs_block_processor_create_ex(&desc, &w->proc);
	if (k)
		return fail(w, k, "block processor");
	return 0;
}

static void writer_close(struct writer *w) {
	/* The processor first: its workers use the compressor and writers. */
	sqfs_destroy(w->proc);
	sqfs_destroy(w->dirw);
	sqfs_destroy(w->dirs);
	sqfs_destroy(w->inodes);
	sqfs_destroy(w->ids);
	sqfs_destroy(w->frags);
	sqfs_destroy(w->blkwr);
	sqfs_destroy(w->uncmp);
	sqfs_destroy(w->cmp);
}

struct append_ctx {
	struct writer *w;
	int code;
};

static int append_sink(void *ctx, const void *data, size_t len) {
	struct append_ctx *c = ctx;
	int k = sqfs_block_processor_append(c->w->proc, data, len);
	if (k) {
		c->code = k;
		return -EIO;
	}
	return 0;
}

/* File data, in the tree's (sorted) order. */
static int write_data(struct writer *w, struct img_node *n) {
	if (n->dir) {
		for (size_t i = 0; i < n->n_kids; i++) {
			int r = write_data(w, n->kids[i]);
			if (r < 0)
				return r;
		}
		return 0;
	}
	int k = sqfs_block_processor_begin_file(w->proc, &n->inode, NULL, 0);
	if (k)
		return fail(w, k, n->name);
	if (n->file) {
		struct append_ctx c = { w, 0 };
		uint64_t size = 0;
		int r = stream_file(n->file->src, append_sink, &c, &size, w->d);
		if (r < 0)
			return c.code ? fail(w, c.code, n->file->src) : r;
		if (size != n->size) {
			diag_error(w->d, &n->file->loc, "'%s' changed while the image was made", n->file->src);
			return -EAGAIN;
		}
	} else if (n->len) {
		k = sqfs_block_processor_append(w->proc, n->data, n->len);
		if (k)
			return fail(w, k, n->name);
	}
	k = sqfs_block_processor_end_file(w->proc);
	return k ? fail(w, k, n->name) : 0;
}

/* Inodes, children before parents (a directory lists where its entries'
 * inodes are); directory listings go to the in-memory table. */
static int write_inodes(struct writer *w, struct img_node *n, sqfs_u32 parent_ino) {
	sqfs_inode_generic_t *inode;
	sqfs_inode_generic_t *made = NULL;
	int k;
	if (n->dir) {
		for (size_t i = 0; i < n->n_kids; i++) {
			int r = write_inodes(w, n->kids[i], n->ino);
			if (r < 0)
				return r;
		}
		k = sqfs_dir_writer_begin(w->dirw, 0);
		for (size_t i = 0; i < n->n_kids && k == 0; i++) {
			const struct img_node *kid = n->kids[i];
			k = sqfs_dir_writer_add_entry(w->dirw, kid->name, kid->ino, kid->ref,
						      (sqfs_u16)((kid->dir ? SQFS_INODE_MODE_DIR : SQFS_INODE_MODE_REG) | kid->mode));
		}
		if (k == 0)
			k = sqfs_dir_writer_end(w->dirw);
		if (k)
			return fail(w, k, "directory table");
		made = inode = sqfs_dir_writer_create_inode(w->dirw, 0, NO_XATTR, parent_ino);
		if (!inode)
			return fail(w, SQFS_ERROR_ALLOC, "directory inode");
		/* ".", "..", and each subdirectory's "..". */
		if (inode->base.type == SQFS_INODE_DIR)
			inode->data.dir.nlink = 2 + n->n_subdirs;
		else
			inode->data.dir_ext.nlink = 2 + n->n_subdirs;
		inode->base.mode = (sqfs_u16)(SQFS_INODE_MODE_DIR | n->mode);
	} else {
		inode = n->inode;
		inode->base.mode = (sqfs_u16)(SQFS_INODE_MODE_REG | n->mode);
	}
	inode->base.mod_time = w->mtime;
	inode->base.inode_number = n->ino;
	k = sqfs_id_table_id_to_index(w->ids, 0, &inode->base.uid_idx);
	if (k == 0)
		k = sqfs_id_table_id_to_index(w->ids, 0, &inode->base.gid_idx);
	sqfs_u64 block = 0;
	sqfs_u32 offset = 0;
	sqfs_meta_writer_get_position(w->inodes, &block, &offset);
	n->ref = (block << 16) | offset;
	if (k == 0)
		k = sqfs_meta_writer_write_inode(w->inodes, inode);
	sqfs_free(made);
	return k ? fail(w, k, "inode table") : 0;
}

static int pad(struct writer *w) {
	sqfs_u64 size = w->file.size;
	if (size % DEVBLK_SIZE == 0)
		return 0;
	if (fd_truncate(&w->file.base, size + (DEVBLK_SIZE - size % DEVBLK_SIZE)))
		return fail(w, SQFS_ERROR_IO, "padding");
	return 0;
}

static int write_image(struct writer *w, struct img_node *root, sqfs_u32 n_inodes) {
	int r = writer_open(w);
	if (r == 0)
		r = write_data(w, root);
	int k = r == 0 ? sqfs_block_processor_finish(w->proc) : 0;
	if (k)
		return fail(w, k, "data blocks");
	if (r < 0)
		return r;

	w->super.inode_count = n_inodes;
	w->super.inode_table_start = w->file.size;
	/* The root's ".." is numbered past the last inode, as mksquashfs does. */
	r = write_inodes(w, root, n_inodes + 1);
	if (r < 0)
		return r;
	w->super.root_inode_ref = root->ref;
	k = sqfs_meta_writer_flush(w->inodes);
	if (k == 0)
		k = sqfs_meta_writer_flush(w->dirs);
	if (k)
		return fail(w, k, "metadata");
	w->super.directory_table_start = w->file.size;
	k = sqfs_meta_write_write_to_file(w->dirs);
	if (k)
		return fail(w, k, "directory table");
	k = sqfs_frag_table_write(w->frags, &w->file.base, &w->super, w->cmp);
	if (k)
		return fail(w, k, "fragment table");
	k = sqfs_id_table_write(w->ids, &w->file.base, &w->super, w->cmp);
	if (k)
		return fail(w, k, "id table");
	/* 0x0040, which sqfs_super_init sets, means "data was deduplicated"
	 * (the squashfs format; libsquashfs's name for it reads the other way
	 * round): true, the block processor stores duplicates once. */
	w->super.bytes_used = w->file.size;
	k = sqfs_super_write(&w->super, &w->file.base);
	if (k)
		return fail(w, k, "superblock");
	return pad(w);
}

/* The pins, all of them before anything is written: each mismatch is
 * reported at its recipe entry. */
static int check_pins(const struct recipe_sysext *x, uint64_t *sizes, struct diags *d) {
	int r = 0;
	for (size_t i = 0; i < x->n_files; i++) {
		const struct recipe_file *f = &x->files[i];
		char sum[SHA256_HEX_LEN + 1];
		int k = filesum(f->src, sum, &sizes[i], d);
		if (k < 0)
			return k;
		if (!streq(sum, f->sha256)) {
			diag_error(d, &f->loc, "sha256 mismatch for '%s': expected %s, got %s", f->src, f->sha256, sum);
			r = -EBADMSG;
		}
	}
	return r;
}

int sysext_write(const struct recipe_sysext *x, const char *path, time_t epoch, struct diags *d) {
	if (epoch < 0 || (uint64_t)epoch > UINT32_MAX) {
		diag_error(d, &x->loc, "SOURCE_DATE_EPOCH %lld does not fit squashfs's 32-bit timestamps", (long long)epoch);
		return -ERANGE;
	}
	uint64_t *sizes = xcalloc(x->n_files + 1, sizeof(*sizes));
	int r = check_pins(x, sizes, d);
	_cleanup_free_ char *release = sysext_release_text(x);
	_cleanup_free_ char *release_path = xasprintf(SYSEXT_RELEASE_DIR "/extension-release.%s", x->name);
	struct img_node *root = img_node_new("", 0, true, 0755);
	struct img_node *rel = r == 0 ? tree_add(root, release_path, &x->loc, d) : NULL;
	if (r == 0 && !rel)
		r = -EINVAL;
	if (rel) {
		rel->mode = 0644;
		rel->data = release;
		rel->len = strlen(release);
	}
	for (size_t i = 0; i < x->n_files && r == 0; i++) {
		const struct recipe_file *f = &x->files[i];
		struct img_node *n = tree_add(root, f->dest + 1, &f->loc, d);
		if (!n) {
			r = -EINVAL;
			break;
		}
		n->file = f;
		n->mode = f->mode & 07777;
		n->size = sizes[i];
	}
	free(sizes);
	sqfs_u32 n_inodes = tree_finish(root, 1) - 1;

	struct atomic_file af = ATOMIC_FILE_INIT;
	struct writer w = {
		.out = path,
		.file = {
			.base = {
				.base = { .destroy = fd_destroy },
				.read_at = fd_read_at,
				.write_at = fd_write_at,
				.get_size = fd_get_size,
				.truncate = fd_truncate,
			},
			.fd = -1,
		},
		.mtime = (sqfs_u32)epoch,
		.d = d,
	};
	if (r == 0)
		r = atomic_open(&af, path, 0644, d);
	/* libsquashfs reads back what it wrote to compare duplicates: a
	 * read-write fd on the same temp file (atomic_open's is write-only). */
	if (r == 0 && (w.file.fd = open(af.tmp, O_RDWR | O_CLOEXEC)) < 0) {
		r = -errno;
		diag_error(d, NULL, "cannot open '%s': %s", af.tmp, strerror(errno));
	}
	if (r == 0)
		r = write_image(&w, root, n_inodes);
	writer_close(&w);
	img_node_free(root);
	if (w.file.fd >= 0 && close(w.file.fd) < 0 && r == 0) {
		r = -errno;
		diag_error(d, NULL, "cannot write '%s': %s", af.tmp, strerror(errno));
	}
	if (af.fd < 0)
		return r;
	if (r < 0) {
		atomic_abort(&af);
		return r;
	}
	return atomic_commit(&af, d);
}

/* "hsqs": a squashfs superblock, little-endian. */
static bool is_squashfs(const char *path) {
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	char magic[4];
	bool yes = pread(fd, magic, sizeof(magic), 0) == (ssize_t)sizeof(magic) && memcmp(magic, "hsqs", 4) == 0;
	close(fd);
	return yes;
}

/* The image's extension-release must let systemd-sysext merge it on the
 * nodes (x86-64): an ARCHITECTURE= of another machine leaves them without
 * what it carries (the kubelet, a driver). Small: read whole, bounded. */
static int check_release_arch(sqfs_file_t *file, const sqfs_super_t *super, sqfs_compressor_t *cmp,
			      const sqfs_inode_generic_t *inode, const struct recipe_sysext *x, struct diags *d, int *ret_r) {
	enum { RELEASE_LIMIT = 64 << 10 };
	sqfs_u64 size = 0;
	if (sqfs_inode_get_file_size(inode, &size) != 0 || size > RELEASE_LIMIT)
		return 0; /* not a plain small file: systemd-sysext will say so */
	sqfs_data_reader_t *dr = sqfs_data_reader_create(file, super->block_size, cmp, 0);
	if (!dr)
		return SQFS_ERROR_ALLOC;
	int k = sqfs_data_reader_load_fragment_table(dr, super);
	char *text = xcalloc(1, (size_t)size + 1);
	if (k == 0) {
		sqfs_s32 n = sqfs_data_reader_read(dr, inode, 0, text, (sqfs_u32)size);
		k = n < 0 ? n : 0;
	}
	if (k == 0) {
		for (char *line = text; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
			if (!startswith(line, "ARCHITECTURE="))
				continue;
			size_t len = strcspn(line + 13, "\n\r");
			_cleanup_free_ char *arch = xstrndup(line + 13, len);
			if (len >= 2 && arch[0] == '"' && arch[len - 1] == '"') {
				memmove(arch, arch + 1, len - 2);
				arch[len - 2] = '\0';
			}
			if (!streq(arch, "x86-64") && !streq(arch, "_any")) {
				diag_error(d, &x->name_loc, "'%s' is for ARCHITECTURE=%s: systemd-sysext would not merge it on x86-64 nodes",
					   x->src, arch);
				*ret_r = -EINVAL;
			}
		}
	}
	free(text);
	sqfs_destroy(dr);
	return k;
}

/* What extension-release files the image has, for the note. */
static void note_release_files(sqfs_dir_reader_t *rd, const sqfs_inode_generic_t *root, const struct recipe_sysext *x,
			       struct diags *d) {
	sqfs_inode_generic_t *dir = NULL;
	struct buf names = BUF_INIT;
	if (sqfs_dir_reader_find_by_path(rd, root, SYSEXT_RELEASE_DIR, &dir) == 0 &&
	    sqfs_dir_reader_open_dir(rd, dir, 0) == 0) {
		sqfs_dir_entry_t *ent = NULL;
		while (sqfs_dir_reader_read(rd, &ent) == 0) {
			buf_printf(&names, "%s'%.*s'", names.len ? ", " : "", (int)ent->size + 1, (const char *)ent->name);
			sqfs_free(ent);
		}
	}
	sqfs_free(dir);
	if (names.len)
		diag_note(d, &x->name_loc, "'%s' holds %s", SYSEXT_RELEASE_DIR, names.data);
	else
		diag_note(d, &x->name_loc, "it has no '%s' at all: is it a system extension?", SYSEXT_RELEASE_DIR);
	buf_release(&names);
}

int sysext_check_prebuilt(const struct recipe_sysext *x, struct diags *d) {
	if (!is_squashfs(x->src))
		return 0;
	sqfs_file_t *file = sqfs_open_file(x->src, SQFS_FILE_OPEN_READ_ONLY);
	if (!file) {
		int e = errno ? errno : EIO;
		diag_error(d, NULL, "cannot open '%s': %s", x->src, strerror(e));
		return -e;
	}
	sqfs_super_t super;
	sqfs_compressor_config_t cfg;
	sqfs_compressor_t *cmp = NULL;
	sqfs_dir_reader_t *rd = NULL;
	sqfs_inode_generic_t *root = NULL, *inode = NULL;
	const char *what = "superblock";
	int k = sqfs_super_read(&super, file);
	if (k == 0) {
		what = "compressor";
		k = sqfs_compressor_config_init(&cfg, (SQFS_COMPRESSOR)super.compression_id, super.block_size,
						SQFS_COMP_FLAG_UNCOMPRESS);
	}
	if (k == 0)
		k = sqfs_compressor_create(&cfg, &cmp);
	if (k == 0 && (super.flags & SQFS_FLAG_COMPRESSOR_OPTIONS))
		k = cmp->read_options(cmp, file);
	if (k == 0) {
		what = "root directory";
		rd = sqfs_dir_reader_create(&super, cmp, file, 0);
		k = rd ? sqfs_dir_reader_get_root_inode(rd, &root) : SQFS_ERROR_ALLOC;
	}
	_cleanup_free_ char *want = xasprintf(SYSEXT_RELEASE_DIR "/extension-release.%s", x->name);
	int r = 0;
	if (k == 0) {
		k = sqfs_dir_reader_find_by_path(rd, root, want, &inode);
		if (k == SQFS_ERROR_NO_ENTRY || k == SQFS_ERROR_NOT_DIR) {
			diag_error(d, &x->name_loc, "'%s' has no '%s': systemd-sysext would not merge it as '%s'", x->src, want, x->name);
			note_release_files(rd, root, x, d);
			r = -EINVAL;
			k = 0;
		} else if (k == 0) {
			what = "extension-release";
			k = check_release_arch(file, &super, cmp, inode, x, d, &r);
		}
	}
	if (k == SQFS_ERROR_UNSUPPORTED && streq(what, "compressor")) {
		/* e.g. LZO, which this libsquashfs may lack: the kernel may
		 * still read it, so it is not refused, only left unchecked. */
		diag_warning(d, &x->loc, "cannot check '%s': its compressor is not supported here", x->src);
	} else if (k) {
		diag_error(d, &x->loc, "cannot read '%s': %s: %s", x->src, what, sqfs_error_text(k));
		r = -EIO;
	}
	sqfs_free(inode);
	sqfs_free(root);
	sqfs_destroy(rd);
	sqfs_destroy(cmp);
	sqfs_destroy(file);
	return r;
}

struct sysext_work {
	char *dir;              /* made on first use */
	char **made;            /* per recipe image: its path once made */
	size_t n;
};

struct sysext_work *sysext_work_new(void) {
	return xcalloc(1, sizeof(struct sysext_work));
}

void sysext_work_free(struct sysext_work *w) {
	if (!w)
		return;
	if (w->dir)
		rm_rf(w->dir);
	for (size_t i = 0; i < w->n; i++)
		free(w->made[i]);
	free(w->made);
	free(w->dir);
	free(w);
}

static int work_dir(struct sysext_work *w, struct diags *d) {
	if (w->dir)
		return 0;
	const char *tmp = getenv("TMPDIR");
	char *tmpl = xasprintf("%s/dlws-sysext.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(tmpl)) {
		int e = errno;
		diag_error(d, NULL, "cannot create '%s': %s", tmpl, strerror(e));
		free(tmpl);
		return -e;
	}
	w->dir = tmpl;
	return 0;
}

/* The image's file: made into the build's temp directory once. */
static int made_image(struct sysext_work *w, size_t i, const struct recipe_sysext *x, const char *node_path, time_t epoch,
		      struct diags *d) {
	if (w->made[i])
		return 0;
	int r = work_dir(w, d);
	if (r < 0)
		return r;
	char *path = path_join(w->dir, strrchr(node_path, '/') + 1);
	r = sysext_write(x, path, epoch, d);
	if (r < 0) {
		free(path);
		return r;
	}
	w->made[i] = path;
	return 0;
}

int sysext_stage(struct sysext_work *w, const struct recipe *rc, time_t epoch, struct stage *s, struct diags *d) {
	if (!w->made) {
		w->made = xcalloc(rc->n_sysexts + 1, sizeof(*w->made));
		w->n = rc->n_sysexts;
	}
	int result = 0;
	for (size_t i = 0; i < rc->n_sysexts && i < w->n; i++) {
		const struct recipe_sysext *x = &rc->sysexts[i];
		_cleanup_free_ char *node_path = sysext_node_path(x);
		_cleanup_free_ char *link_path = sysext_link_path(x);
		_cleanup_free_ char *image = stage_payload_path(node_path);
		_cleanup_free_ char *link = stage_payload_path(link_path);
		int r;
		if (x->src) {
			r = stage_add_file(s, image, x->src, 0644, x->sha256, &x->loc, d);
			if (r == 0)
				r = sysext_check_prebuilt(x, d);
		} else {
			r = made_image(w, i, x, node_path, epoch, d);
			if (r == 0)
				r = stage_add_file(s, image, w->made[i], 0644, NULL, &x->loc, d);
		}
		if (r == 0)
			r = stage_add_symlink(s, link, node_path, d);
		if (r < 0 && result == 0)
			result = r;
		/* A wrong pin or image is a recipe error: report the others too. */
		if (r < 0 && r != -EBADMSG && r != -EINVAL)
			break;
	}
	return result;
}
