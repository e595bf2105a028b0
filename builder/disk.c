#include "disk.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <guestfs.h>
#include <linux/fs.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "buildinfo.h"
#include "fsutil.h"
#include "layout.h"
#include "progress.h"
#include "rawimage.h"
#include "runcmd.h"
#include "util.h"

#ifndef DLWS_VERSION
#define DLWS_VERSION "unknown"
#endif

/* libguestfs is opened when a disk is first worked on, not linked: the
 * libraries it brings (libvirt, GLib, GnuTLS and some forty more) took
 * every run of the tool, disks or none, 30 ms to load. */
#define GFS_FUNCS(X) \
	X(add_drive_opts) X(blockdev_getsize64) X(blockdev_getsz) X(checksum) X(chmod) X(close) X(cp) X(create) X(e2fsck) \
	X(free_statns) X(last_errno) X(last_error) X(launch) X(list_devices) X(ln_s) X(lstatns) \
	X(mkdir_mode) X(mkmountpoint) X(mount) X(mount_options) X(mount_ro) X(part_expand_gpt) \
	X(part_resize) X(pread_device) X(read_file) X(realpath) X(resize2fs) X(rm_f) X(set_error_handler) \
	X(shutdown) X(sync) X(umask) X(umount_all) X(upload) X(vfs_type) X(write)

static struct {
	void *lib;
#define GFS_POINTER(name) __typeof__(guestfs_##name) *name;
	GFS_FUNCS(GFS_POINTER)
#undef GFS_POINTER
} gfs;

static int gfs_open(struct diags *d) {
	if (gfs.lib)
		return 0;
	void *lib = dlopen("libguestfs.so.0", RTLD_NOW | RTLD_LOCAL);
	if (!lib) {
		diag_error(d, NULL, "disk images need libguestfs (Debian package libguestfs0): %s", dlerror());
		return -ENOENT;
	}
	const char *missing = NULL;
	/* memcpy: ISO C has no conversion from dlsym's void * to a function's. */
#define GFS_SYMBOL(name) \
	{ \
		void *sym = dlsym(lib, "guestfs_" #name); \
		if (sym) \
			memcpy(&gfs.name, &sym, sizeof(sym)); \
		else if (!missing) \
			missing = "guestfs_" #name; \
	}
	GFS_FUNCS(GFS_SYMBOL)
#undef GFS_SYMBOL
	if (missing) {
		diag_error(d, NULL, "disk images need libguestfs, and this one has no %s", missing);
		dlclose(lib);
		return -ENOENT;
	}
	gfs.lib = lib;
	return 0;
}

/* Image files have 512-byte sectors (the GPT of an OS image says so too). */
#define SECTOR 512
/* Rendered data up to this size goes in one guestfs_write message (the
 * protocol's limit is 2-4 MiB); larger data is uploaded from a file. */
#define WRITE_MAX ((size_t)1 << 20)
#define COPY_CHUNK ((size_t)1 << 20)

static const char rootfs_prefix[] = PAYLOAD_ROOTFS "/";
static const char images_prefix[] = PAYLOAD_DIR "/images/";

/* One recipe's disks: its shared payload (staged once) and its OS image. */
struct disk_recipe {
	const struct build *b;
	const char *dir;                /* the temp directory beside outputs.disk (in ctx.dirs) */
	struct stage shared;
	char **first;                   /* per shared entry: where it was put first (a guest path), or NULL */
	uint64_t image_size, disk_size;
	uint64_t gpt_entry_sectors;     /* the GPT's partition array */
	int root_num, oem_num;          /* partition numbers (0: none) */
	bool root_is_last;              /* ROOT ends after every other partition: it can grow */
};

struct disk_node {
	struct disk_recipe *dr;
	const struct node *node;
	struct stage stage;
	char *file;
	char *dev;                      /* its device in the appliance */
	char root[32], oem[32];         /* where ROOT and OEM are mounted in the appliance */
	struct strv dirs;               /* directories known to exist on ROOT (guest paths) */
	struct strv fresh;              /* those of them this build made: empty but for what it put there */
	struct buf log;
	struct buf manifest;            /* LAYOUT_DISK_MANIFEST */
};

struct disk_ctx {
	guestfs_h *g;
	struct diags *d;
	struct strv dirs, dsts;         /* temp directories and their targets */
	struct disk_recipe *recipes;
	size_t n_recipes;
	struct disk_node *nodes;
	size_t n_nodes;
	uint64_t placed;                /* bytes of the node being filled put so far, for progress */
	struct progress *progress;      /* the builds' status line (build_opts), may be NULL */
};

bool disk_wanted(struct build *const *builds, size_t n) {
	for (size_t i = 0; i < n; i++)
		if (builds[i]->recipe->outputs.disk)
			return true;
	return false;
}

static int gfail(struct disk_ctx *c, const struct disk_node *n, const char *what, const char *path) {
	const char *why = gfs.last_error(c->g);
	diag_error(c->d, NULL, "cannot make the disk '%s': %s%s%s%s: %s", n->file, what, path ? " '" : "", path ? path : "",
		   path ? "'" : "", why ? why : "unknown libguestfs error");
	return -EIO;
}

/* --- the disk files, on the build machine ------------------------------- */

static uint64_t le(const unsigned char *p, int n) {
	uint64_t v = 0;
	for (int i = n - 1; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static uint64_t be64(const unsigned char *p) {
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

/* A GPT read from bytes: by the builder from the image file, by the
 * reader through the appliance (the disk may be qcow2). */
struct gpt {
	uint64_t array_lba, count, entry_size;
	int root_num, oem_num;          /* partition numbers (0: none) */
	bool root_is_last;              /* ROOT ends after every other partition */
};

/* The header (LBA 1): where the partition array is and how big it is.
 * -ENOENT: no GPT; -EINVAL: one this tool does not read. */
static int gpt_header(const unsigned char *h, size_t len, struct gpt *ret) {
	if (len < 92 || memcmp(h, "EFI PART", 8) != 0)
		return -ENOENT;
	*ret = (struct gpt){ .array_lba = le(h + 72, 8), .count = le(h + 80, 4), .entry_size = le(h + 84, 4) };
	/* Bounded: the array is read whole, in one message through the appliance. */
	if (ret->entry_size < 128 || ret->entry_size > 4096 || ret->count > 1024 || ret->count * ret->entry_size > ((size_t)1 << 20) ||
	    ret->array_lba < 2)
		return -EINVAL;
	return 0;
}

/* The partitions named ROOT and OEM, by label, in the array `e`. */
static void gpt_entries(const unsigned char *e, struct gpt *g) {
	uint64_t max_last = 0, root_last = 0;
	for (uint64_t i = 0; i < g->count; i++) {
		const unsigned char *p = e + i * g->entry_size;
		uint64_t last = le(p + 40, 8);
		if (le(p, 8) == 0 && le(p + 8, 8) == 0)
			continue; /* unused entry */
		char name[37] = "";
		for (int k = 0; k < 36; k++) {
			uint64_t ch = le(p + 56 + 2 * k, 2);
			name[k] = ch < 128 ? (char)ch : '?';
			if (!ch)
				break;
		}
		if (streq(name, LAYOUT_PART_ROOT)) {
			g->root_num = (int)(i + 1);
			root_last = last;
		} else if (streq(name, LAYOUT_PART_OEM)) {
			g->oem_num = (int)(i + 1);
		}
		if (last > max_last)
			max_last = last;
	}
	g->root_is_last = root_last == max_last;
}

/* The partitions named ROOT and OEM, read from the image's GPT on the
 * build machine: asking the appliance costs seconds per partition. */
static int read_gpt(struct disk_recipe *dr, const char *file, struct diags *d) {
	const char *image = dr->b->recipe->base.image;
	const struct srcloc *at = &dr->b->recipe->outputs.disk_loc;
	unsigned char h[SECTOR];
	struct gpt g;
	int fd = open(file, O_RDONLY | O_CLOEXEC);
	int r = fd < 0 || pread(fd, h, sizeof(h), SECTOR) != (ssize_t)sizeof(h) ? -ENOENT : gpt_header(h, sizeof(h), &g);
	if (r == -ENOENT)
		diag_error(d, at, "the OS image '%s' has no GPT", image);
	else if (r < 0)
		diag_error(d, at, "the OS image '%s' has a GPT this tool cannot read (%llu entries of %llu bytes)", image,
			   (unsigned long long)g.count, (unsigned long long)g.entry_size);
	if (r < 0) {
		if (fd >= 0)
			close(fd);
		return r;
	}
	size_t len = g.count * g.entry_size;
	unsigned char *e = xmalloc(len + 1);
	ssize_t got = pread(fd, e, len, (off_t)(g.array_lba * SECTOR));
	close(fd);
	if (got == (ssize_t)len)
		gpt_entries(e, &g);
	free(e);
	if (got != (ssize_t)len) {
		diag_error(d, at, "cannot read the GPT of the OS image '%s'", image);
		return -EIO;
	}
	if (!g.root_num) {
		diag_error(d, at, "the OS image '%s' has no partition named %s", image, LAYOUT_PART_ROOT);
		return -ENOENT;
	}
	dr->gpt_entry_sectors = (len + SECTOR - 1) / SECTOR;
	dr->root_num = g.root_num;
	dr->oem_num = g.oem_num;
	dr->root_is_last = g.root_is_last;
	return 0;
}

/* Copies a sparse file: a reflink where the file system has them, else
 * its data extents only. */
static int clone_file(const char *src, const char *dst, struct diags *d) {
	int in = open(src, O_RDONLY | O_CLOEXEC);
	if (in < 0) {
		int err = errno;
		diag_error(d, NULL, "cannot open '%s': %s", src, strerror(err));
		return -err;
	}
	int out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (out < 0) {
		int err = errno;
		diag_error(d, NULL, "cannot create '%s': %s", dst, strerror(err));
		close(in);
		return -err;
	}
	int r = 0;
	struct stat st;
	if (fstat(in, &st) < 0)
		r = -errno;
	if (r == 0 && ioctl(out, FICLONE, in) < 0) {
		char *buf = xmalloc(COPY_CHUNK);
		off_t off = 0;
		while (r == 0 && off < st.st_size) {
			off_t data = lseek(in, off, SEEK_DATA);
			if (data < 0) {
				if (errno != ENXIO)
					r = -errno;
				break;
			}
			off_t hole = lseek(in, data, SEEK_HOLE);
			if (hole < 0) {
				r = -errno;
				break;
			}
			for (off = data; off < hole && r == 0;) {
				size_t want = (size_t)(hole - off) < COPY_CHUNK ? (size_t)(hole - off) : COPY_CHUNK;
				ssize_t k = pread(in, buf, want, off);
				if (k <= 0) {
					r = k < 0 ? -errno : -EIO;
					break;
				}
				for (ssize_t w = 0; w < k && r == 0;) {
					ssize_t x = pwrite(out, buf + w, (size_t)(k - w), off + w);
					if (x < 0)
						r = -errno;
					else
						w += x;
				}
				off += k;
			}
		}
		free(buf);
		if (r == 0 && ftruncate(out, st.st_size) < 0)
			r = -errno;
	}
	if (close(out) < 0 && r == 0)
		r = -errno;
	close(in);
	if (r < 0) {
		diag_error(d, NULL, "cannot copy '%s' to '%s': %s", src, dst, strerror(-r));
		unlink(dst);
	}
	return r;
}

static int find_dir(struct disk_ctx *c, const char *target, const char **ret) {
	for (size_t i = 0; i < c->dsts.n; i++)
		if (streq(c->dsts.v[i], target)) {
			*ret = c->dirs.v[i];
			return 0;
		}
	_cleanup_free_ char *dir = xasprintf("%s.tmp", target);
	rm_rf(dir);
	int r = mkdir_p(dir, 0755);
	if (r < 0) {
		diag_error(c->d, NULL, "cannot create '%s': %s", dir, strerror(-r));
		return r;
	}
	strv_push(&c->dsts, target);
	strv_push(&c->dirs, dir);
	*ret = c->dirs.v[c->dirs.n - 1];
	return 0;
}

/* The recipe's payload, and each node's: as the agent would see them. */
static int stage_recipe(struct disk_ctx *c, const struct build *b) {
	struct disk_recipe *dr = &c->recipes[c->n_recipes++];
	dr->b = b;
	int r = find_dir(c, b->recipe->outputs.disk, &dr->dir);
	if (r == 0)
		r = build_stage_shared(b, &(struct segment_opts){ .installed = true }, &dr->shared, c->d);
	if (r < 0)
		return r;
	dr->first = xcalloc(dr->shared.n + 1, sizeof(*dr->first));
	for (size_t i = 0; i < b->n_nodes && r == 0; i++) {
		struct disk_node *n = &c->nodes[c->n_nodes];
		*n = (struct disk_node){ .dr = dr, .node = b->nodes[i], .log = { .limit = (size_t)1 << 20 } };
		r = build_stage_node(b, b->nodes[i], &n->stage, c->d);
		if (r < 0)
			break;
		c->n_nodes++;
		n->file = xasprintf("%s/%s.%s", dr->dir, n->node->hostname, b->recipe->outputs.disk_qcow2 ? "qcow2" : "img");
		for (size_t k = 0; k + 1 < c->n_nodes; k++)
			if (streq(c->nodes[k].file, n->file)) {
				diag_error(c->d, &b->recipe->outputs.disk_loc, "two nodes named '%s' would share the disk '%s'",
					   n->node->hostname, b->recipe->outputs.disk);
				r = -EEXIST;
			}
	}
	return r;
}

/* Decompresses the OS image once, then makes every node's disk of it. */
static int make_files(struct disk_ctx *c, struct disk_recipe *dr, struct disk_node *nodes, size_t n) {
	const struct recipe *rc = dr->b->recipe;
	_cleanup_free_ char *tmpl = xasprintf("%s/.%s.os", dr->dir, rc->name);
	int r = rawimage_extract(rc->base.image, tmpl, &dr->image_size, c->d);
	if (r < 0)
		return r;
	dr->disk_size = dr->image_size;
	r = read_gpt(dr, tmpl, c->d);
	if (r < 0) {
	} else if (rc->outputs.disk_size && rc->outputs.disk_size < dr->image_size) {
		diag_error(c->d, &rc->outputs.disk_size_loc, "'size' %llu is smaller than the OS image '%s' (%llu bytes)",
			   (unsigned long long)rc->outputs.disk_size, rc->base.image, (unsigned long long)dr->image_size);
		r = -EINVAL;
	} else if (rc->outputs.disk_size > dr->image_size) {
		dr->disk_size = rc->outputs.disk_size;
		if (!dr->root_is_last) {
			diag_error(c->d, &rc->outputs.disk_size_loc, "cannot grow the OS image '%s': its %s partition is not the last one",
				   rc->base.image, LAYOUT_PART_ROOT);
			r = -EINVAL;
		} else if (truncate(tmpl, (off_t)dr->disk_size) < 0) {
			r = -errno;
			diag_error(c->d, NULL, "cannot grow '%s': %s", tmpl, strerror(-r));
		}
	}
	for (size_t i = 0; i < n && r == 0; i++) {
		if (rc->outputs.disk_qcow2) {
			const char *argv[] = { "qemu-img", "convert", "-q", "-f", "raw", "-O", "qcow2", tmpl, nodes[i].file, NULL };
			r = run_command(argv, c->d);
			if (r == 0 && chmod(nodes[i].file, 0600) < 0) {
				r = -errno;
				diag_error(c->d, NULL, "cannot set the mode of '%s': %s", nodes[i].file, strerror(-r));
			}
		} else if (i + 1 == n) {
			if (rename(tmpl, nodes[i].file) < 0 || chmod(nodes[i].file, 0600) < 0) {
				r = -errno;
				diag_error(c->d, NULL, "cannot rename '%s' to '%s': %s", tmpl, nodes[i].file, strerror(-r));
			}
		} else {
			r = clone_file(tmpl, nodes[i].file, c->d);
		}
	}
	unlink(tmpl);
	return r;
}

/* --- inside the appliance ------------------------------------------------ */

/* Makes the missing directories of guest path `dir` below `base` (the
 * mount point), the last one with `last_mode`, the others 0755; like the
 * agent, never through a symbolic link on the target. */
static int ensure_dirs(struct disk_ctx *c, struct disk_node *n, const char *base, const char *rel_dir, unsigned last_mode) {
	_cleanup_free_ char *path = xasprintf("%s/%s", base, rel_dir);
	size_t blen = strlen(base);
	/* Below a directory made here nothing else exists: no need to look. */
	bool parent_fresh = false;
	for (char *p = path + blen + 1; *p;) {
		char *slash = strchr(p, '/');
		bool last = !slash;
		if (slash)
			*slash = '\0';
		if (*p && strv_contains(&n->dirs, path)) {
			parent_fresh = strv_contains(&n->fresh, path);
		} else if (*p) {
			struct guestfs_statns *st = parent_fresh ? NULL : gfs.lstatns(c->g, path);
			if (!st && (parent_fresh || gfs.last_errno(c->g) == ENOENT)) {
				/* The appliance's umask is 0: the mode is as given. */
				if (gfs.mkdir_mode(c->g, path, (int)(last ? last_mode : 0755)) < 0)
					return gfail(c, n, "cannot create", path + blen);
				strv_push(&n->fresh, path);
				parent_fresh = true;
			} else if (!st) {
				return gfail(c, n, "cannot stat", path + blen);
			} else {
				int64_t fmt = st->st_mode & S_IFMT;
				gfs.free_statns(st);
				if (fmt == S_IFLNK) {
					diag_error(c->d, NULL, "cannot make the disk '%s': '%s' on ROOT is a symbolic link", n->file, path + blen);
					return -ELOOP;
				}
				if (fmt != S_IFDIR) {
					diag_error(c->d, NULL, "cannot make the disk '%s': '%s' on ROOT is not a directory", n->file, path + blen);
					return -ENOTDIR;
				}
			}
			strv_push(&n->dirs, path);
		}
		if (last)
			break;
		*slash = '/';
		p = slash + 1;
	}
	return 0;
}

static char *parent_of(const char *rel) {
	const char *slash = strrchr(rel, '/');
	return slash ? xstrndup(rel, (size_t)(slash - rel)) : xstrdup("");
}

/* A file at `rel` below mount point `base` with `mode`: copied inside the
 * appliance from where the same shared file was put first (`first`),
 * else uploaded. Records where it went in *first when that is NULL. */
static int put_file(struct disk_ctx *c, struct disk_node *n, const char *base, const char *rel, const struct stage_entry *e,
		    unsigned mode, char **first) {
	_cleanup_free_ char *parent = parent_of(rel);
	int r = *parent ? ensure_dirs(c, n, base, parent, 0755) : 0;
	if (r < 0)
		return r;
	_cleanup_free_ char *path = xasprintf("%s/%s", base, rel);
	_cleanup_free_ char *parent_path = xasprintf("%s/%s", base, parent);
	/* Never write through what is there: a link would lead elsewhere. */
	if (!strv_contains(&n->fresh, parent_path) && gfs.rm_f(c->g, path) < 0)
		return gfail(c, n, "cannot replace", path + strlen(base));
	if (first && *first) {
		if (gfs.cp(c->g, *first, path) < 0)
			return gfail(c, n, "cannot copy", path + strlen(base));
	} else if (e->src) {
		if (gfs.upload(c->g, e->src, path) < 0)
			return gfail(c, n, "cannot upload", path + strlen(base));
	} else if (e->size <= WRITE_MAX) {
		if (gfs.write(c->g, path, e->data, (size_t)e->size) < 0)
			return gfail(c, n, "cannot write", path + strlen(base));
	} else {
		_cleanup_free_ char *tmp = xasprintf("%s/.data", n->dr->dir);
		r = write_file_atomic(tmp, e->data, (size_t)e->size, 0600, c->d);
		if (r == 0 && gfs.upload(c->g, tmp, path) < 0)
			r = gfail(c, n, "cannot upload", path + strlen(base));
		unlink(tmp);
		if (r < 0)
			return r;
	}
	if (gfs.chmod(c->g, (int)mode, path) < 0)
		return gfail(c, n, "cannot set the mode of", path + strlen(base));
	if (first && !*first)
		*first = xstrdup(path);
	return 0;
}

/* The payload as the live system holds it once every segment is unpacked:
 * the node's entries win over the shared ones at the same path. */
struct merged {
	const struct stage_entry *e;
	size_t shared_index;    /* SIZE_MAX: the node's own */
};

static int merged_cmp(const void *a, const void *b) {
	return strcmp(((const struct merged *)a)->e->path, ((const struct merged *)b)->e->path);
}

static struct merged *merge(const struct disk_node *n, size_t *ret_n) {
	const struct stage *sh = &n->dr->shared, *own = &n->stage;
	struct merged *v = xcalloc(sh->n + own->n + 1, sizeof(*v));
	size_t k = 0;
	for (size_t i = 0; i < sh->n; i++)
		if (!stage_find(own, sh->v[i].path))
			v[k++] = (struct merged){ &sh->v[i], i };
	for (size_t i = 0; i < own->n; i++)
		v[k++] = (struct merged){ &own->v[i], SIZE_MAX };
	qsort(v, k, sizeof(*v), merged_cmp);
	*ret_n = k;
	return v;
}

static char **first_slot(struct disk_node *n, const struct merged *m) {
	return m->shared_index == SIZE_MAX ? NULL : &n->dr->first[m->shared_index];
}

static void say(struct disk_node *n, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(struct disk_node *n, const char *fmt, ...) {
	va_list ap;
	va_start(ap, fmt);
	char *line = NULL;
	if (vasprintf(&line, fmt, ap) < 0)
		die_oom();
	va_end(ap);
	buf_printf(&n->log, "%s\n", line);
	free(line);
}

/* A line of the disk's manifest: a file as it is now on partition `part`. */
static void note(struct disk_node *n, const char *part, const char *rel, const char *sha256, uint64_t size, unsigned mode) {
	if (buf_printf(&n->manifest, "%s %llu %04o /%s/%s\n", sha256, (unsigned long long)size, mode, part, rel) < 0)
		die_oom();
}

/* What place_root puts on a node's disk (its rootfs files and container
 * images): the total of the node's progress line, one step per file. */
static uint64_t root_bytes(const struct merged *v, size_t nv) {
	uint64_t n = 0;
	for (size_t i = 0; i < nv; i++) {
		const struct stage_entry *e = v[i].e;
		bool image = startswith(e->path, images_prefix) && !strchr(e->path + strlen(images_prefix), '/');
		if (e->type == STAGE_FILE && (startswith(e->path, rootfs_prefix) || image))
			n += e->size;
	}
	return n;
}

static void placed(struct disk_ctx *c, uint64_t size) {
	c->placed += size;
	progress_update(c->progress, c->placed);
}

/* ROOT: as place_user_data, place_rootfs and place_images leave it. */
static int place_root(struct disk_ctx *c, struct disk_node *n, const struct merged *v, size_t nv) {
	static const char user_data[] = PAYLOAD_ROOTFS "/" LAYOUT_USER_DATA;
	int r = 0;
	/* The cloud-config first: its directory is 0700, as flatcar-install makes it. */
	for (size_t i = 0; i < nv && r == 0; i++) {
		if (!streq(v[i].e->path, user_data) || v[i].e->type != STAGE_FILE)
			continue;
		_cleanup_free_ char *parent = parent_of(LAYOUT_USER_DATA);
		_cleanup_free_ char *grand = parent_of(parent);
		r = ensure_dirs(c, n, n->root, grand, 0755);
		if (r == 0)
			r = ensure_dirs(c, n, n->root, parent, 0700);
		if (r == 0)
			r = put_file(c, n, n->root, LAYOUT_USER_DATA, v[i].e, 0600, NULL);
		if (r == 0)
			say(n, "installed the cloud-config as /%s (0600)", LAYOUT_USER_DATA);
	}
	unsigned files = 0, links = 0;
	uint64_t bytes = 0;
	for (size_t i = 0; i < nv && r == 0; i++) {
		const struct stage_entry *e = v[i].e;
		if (!startswith(e->path, rootfs_prefix))
			continue;
		const char *rel = e->path + strlen(rootfs_prefix);
		if (e->type == STAGE_DIR) {
			r = ensure_dirs(c, n, n->root, rel, 0755);
		} else if (e->type == STAGE_SYMLINK) {
			_cleanup_free_ char *parent = parent_of(rel);
			_cleanup_free_ char *path = xasprintf("%s/%s", n->root, rel);
			r = *parent ? ensure_dirs(c, n, n->root, parent, 0755) : 0;
			if (r == 0 && (gfs.rm_f(c->g, path) < 0 || gfs.ln_s(c->g, e->link, path) < 0))
				r = gfail(c, n, "cannot create the link", path + strlen(n->root));
			if (r == 0) {
				say(n, "installed /%s -> %s", rel, e->link);
				links++;
			}
		} else if (streq(e->path, user_data)) {
			/* In place already; the rootfs copy gives it its payload mode. */
			_cleanup_free_ char *path = xasprintf("%s/%s", n->root, rel);
			if (e->mode != 0600 && gfs.chmod(c->g, (int)e->mode, path) < 0)
				r = gfail(c, n, "cannot set the mode of", path + strlen(n->root));
			note(n, LAYOUT_PART_ROOT, rel, e->sha256, e->size, e->mode);
			placed(c, e->size);
			files++;
			bytes += e->size;
		} else {
			r = put_file(c, n, n->root, rel, e, e->mode, first_slot(n, &v[i]));
			if (r == 0) {
				placed(c, e->size);
				note(n, LAYOUT_PART_ROOT, rel, e->sha256, e->size, e->mode);
				say(n, "installed /%s (%04o, %llu bytes)", rel, e->mode, (unsigned long long)e->size);
				files++;
				bytes += e->size;
			}
		}
	}
	if (r == 0)
		say(n, "installed the payload rootfs: %u files (%llu bytes), %u links", files, (unsigned long long)bytes, links);
	/* Only the regular files at the top of the payload's images/. */
	for (size_t i = 0; i < nv && r == 0; i++) {
		const struct stage_entry *e = v[i].e;
		if (!startswith(e->path, images_prefix) || strchr(e->path + strlen(images_prefix), '/') || e->type != STAGE_FILE)
			continue;
		const char *name = e->path + strlen(images_prefix);
		_cleanup_free_ char *rel = xasprintf("%s/%s", LAYOUT_IMAGES_DIR, name);
		r = put_file(c, n, n->root, rel, e, e->mode, first_slot(n, &v[i]));
		if (r == 0) {
			placed(c, e->size);
			note(n, LAYOUT_PART_ROOT, rel, e->sha256, e->size, e->mode);
			say(n, "installed container image /%s (%llu bytes)", rel, (unsigned long long)e->size);
		}
	}
	return r;
}

/* OEM: the node's Ignition config, as place_ignition leaves it. OEM
 * also gets the disk's build metadata (write_meta), so it must exist. */
static int place_oem(struct disk_ctx *c, struct disk_node *n, const char *oem_dev) {
	if (!oem_dev) {
		diag_error(c->d, NULL, "cannot make the disk '%s': '%s' has no partition named %s (for the Ignition config and %s)",
			   n->file, n->dr->b->recipe->base.image, LAYOUT_PART_OEM, LAYOUT_DISK_BUILDINFO);
		return -ENOENT;
	}
	if (gfs.mkmountpoint(c->g, n->oem) < 0 || gfs.mount(c->g, oem_dev, n->oem) < 0)
		return gfail(c, n, "cannot mount " LAYOUT_PART_OEM, oem_dev);
	const struct stage_entry *ign = stage_find(&n->stage, PAYLOAD_IGNITION);
	if (!ign)
		return 0;
	int r = put_file(c, n, n->oem, LAYOUT_IGNITION, ign, 0600, NULL);
	if (r == 0) {
		note(n, LAYOUT_PART_OEM, LAYOUT_IGNITION, ign->sha256, ign->size, 0600);
		say(n, "installed the Ignition config as %s on %s (0600)", LAYOUT_IGNITION, LAYOUT_PART_OEM);
	}
	return r;
}

/* On OEM, last: the manifest of everything above, and the build metadata
 * of this one node, its payload_sha256 the manifest's sum. */
static int write_meta(struct disk_ctx *c, struct disk_node *n) {
	const struct build *const one[] = { n->dr->b };
	struct stage_entry man = { .data = n->manifest.data ? n->manifest.data : "", .size = n->manifest.len };
	sha256_hex(man.data, n->manifest.len, man.sha256);
	size_t i = 0;
	while (i + 1 < one[0]->n_nodes && one[0]->nodes[i] != n->node)
		i++;
	char inputs[SHA256_HEX_LEN + 1];
	int r = build_inputs_sum(one[0], &n->dr->shared, i, 1, inputs, c->d);
	if (r < 0)
		return r;
	struct buildinfo info;
	buildinfo_init(&info, one, 1);
	buildinfo_add_build(&info, one[0], n->dr->b->recipe->outputs.disk, man.sha256, inputs, NULL, 0);
	strv_release(&info.recipes[0].nodes);
	strv_push(&info.recipes[0].nodes, n->node->hostname);
	char *json = buildinfo_json(&info);
	buildinfo_release(&info);
	struct stage_entry meta = { .data = json, .size = strlen(json) };
	r = put_file(c, n, n->oem, LAYOUT_DISK_MANIFEST, &man, 0644, NULL);
	if (r == 0)
		r = put_file(c, n, n->oem, LAYOUT_DISK_BUILDINFO, &meta, 0644, NULL);
	free(json);
	return r;
}

static char *part_dev(const char *dev, int num) {
	size_t len = strlen(dev);
	bool digit = len && dev[len - 1] >= '0' && dev[len - 1] <= '9';
	return xasprintf("%s%s%d", dev, digit ? "p" : "", num);
}

/* Grows the GPT to the end of the (already bigger) disk, then ROOT, the
 * last partition, and its ext4 to the end of the GPT's usable space. */
static int grow_root(struct disk_ctx *c, struct disk_node *n, const char *root_dev) {
	const char *image = n->dr->b->recipe->base.image;
	int root_num = n->dr->root_num;
	_cleanup_free_ char *fs = gfs.vfs_type(c->g, root_dev);
	if (!fs)
		return gfail(c, n, "cannot read the file system of", root_dev);
	if (!startswith(fs, "ext")) {
		diag_error(c->d, &n->dr->b->recipe->outputs.disk_size_loc,
			   "cannot grow the OS image '%s': its %s partition holds %s, not ext4", image, LAYOUT_PART_ROOT, fs);
		return -EINVAL;
	}
	int64_t sectors = gfs.blockdev_getsz(c->g, n->dev);
	if (sectors < 0 || gfs.part_expand_gpt(c->g, n->dev) < 0)
		return gfail(c, n, "cannot move the backup GPT to the end of", n->dev);
	/* The backup header is the last sector, its partition array before it. */
	int64_t last_usable = sectors - 2 - (int64_t)n->dr->gpt_entry_sectors;
	if (gfs.part_resize(c->g, n->dev, root_num, last_usable) < 0)
		return gfail(c, n, "cannot grow", root_dev);
	if (gfs.e2fsck(c->g, root_dev, GUESTFS_E2FSCK_CORRECT, 1, GUESTFS_E2FSCK_FORCEALL, 0, -1) < 0 || gfs.resize2fs(c->g, root_dev) < 0)
		return gfail(c, n, "cannot grow the file system on", root_dev);
	say(n, "grew the disk to %llu bytes and %s to its end", (unsigned long long)n->dr->disk_size, LAYOUT_PART_ROOT);
	return 0;
}

static int mount_root(struct disk_ctx *c, struct disk_node *n, const char *dev) {
	if (gfs.mkmountpoint(c->g, n->root) < 0)
		return gfail(c, n, "cannot mount " LAYOUT_PART_ROOT, dev);
	/* As the agent tries them: ext4, then btrfs with its root subvolume. */
	_cleanup_free_ char *fs = gfs.vfs_type(c->g, dev);
	if (fs && streq(fs, "btrfs") && gfs.mount_options(c->g, "subvol=root", dev, n->root) == 0)
		return 0;
	if (gfs.mount(c->g, dev, n->root) < 0)
		return gfail(c, n, "cannot mount " LAYOUT_PART_ROOT, dev);
	return 0;
}

static int write_log(struct disk_ctx *c, struct disk_node *n) {
	_cleanup_free_ char *parent = parent_of(LAYOUT_INSTALL_LOG);
	int r = ensure_dirs(c, n, n->root, parent, 0755);
	_cleanup_free_ char *path = xasprintf("%s/%s", n->root, LAYOUT_INSTALL_LOG);
	const char *log = n->log.data ? n->log.data : "";
	if (r == 0 && (gfs.rm_f(c->g, path) < 0 || gfs.write(c->g, path, log, n->log.len) < 0 ||
		       gfs.chmod(c->g, 0644, path) < 0))
		r = gfail(c, n, "cannot write", path + strlen(n->root));
	if (r == 0) {
		char sum[SHA256_HEX_LEN + 1];
		sha256_hex(log, n->log.len, sum);
		note(n, LAYOUT_PART_ROOT, LAYOUT_INSTALL_LOG, sum, n->log.len, 0644);
	}
	return r;
}

static int fill_node(struct disk_ctx *c, struct disk_node *n, size_t index) {
	const struct recipe *rc = n->dr->b->recipe;
	snprintf(n->root, sizeof(n->root), "/root%zu", index);
	snprintf(n->oem, sizeof(n->oem), "/oem%zu", index);
	const char *image = strrchr(rc->base.image, '/') ? strrchr(rc->base.image, '/') + 1 : rc->base.image;
	say(n, "dlws-mkimage %s: pre-installed disk of %s (%s) from the OS image %s (%llu bytes); no installer ran",
	    DLWS_VERSION, n->node->hostname, role_name(n->node->role), image, (unsigned long long)n->dr->image_size);
	int r = 0;
	_cleanup_free_ char *root_dev = part_dev(n->dev, n->dr->root_num);
	_cleanup_free_ char *oem_dev = n->dr->oem_num ? part_dev(n->dev, n->dr->oem_num) : NULL;
	if (n->dr->disk_size > n->dr->image_size)
		r = grow_root(c, n, root_dev);
	if (r == 0)
		r = mount_root(c, n, root_dev);
	size_t nv = 0;
	struct merged *v = r == 0 ? merge(n, &nv) : NULL;
	if (r == 0) {
		const char *slash = strrchr(n->file, '/');
		c->placed = 0;
		progress_begin(c->progress, slash ? slash + 1 : n->file, root_bytes(v, nv));
		r = place_root(c, n, v, nv);
		if (r == 0)
			progress_end(c->progress);
		else
			progress_abort(c->progress);
	}
	free(v);
	if (r == 0)
		r = place_oem(c, n, oem_dev);
	if (r == 0)
		r = write_log(c, n);
	if (r == 0)
		r = write_meta(c, n);
	return r;
}

static int run_appliance(struct disk_ctx *c) {
	int opened = gfs_open(c->d);
	if (opened < 0)
		return opened;
	c->g = gfs.create();
	if (!c->g) {
		diag_error(c->d, NULL, "cannot start libguestfs (guestfs_create failed)");
		return -EIO;
	}
	/* Errors come back through guestfs_last_error; modules don't print. */
	gfs.set_error_handler(c->g, NULL, NULL);
	for (size_t i = 0; i < c->n_nodes; i++) {
		const char *format = c->nodes[i].dr->b->recipe->outputs.disk_qcow2 ? "qcow2" : "raw";
		/* The disks are new files that are removed on any failure:
		 * nothing to keep safe from a crash until the final sync. */
		if (gfs.add_drive_opts(c->g, c->nodes[i].file, GUESTFS_ADD_DRIVE_OPTS_FORMAT, format,
					   GUESTFS_ADD_DRIVE_OPTS_CACHEMODE, "unsafe", -1) < 0)
			return gfail(c, &c->nodes[i], "cannot add", c->nodes[i].file);
	}
	if (gfs.launch(c->g) < 0) {
		const char *why = gfs.last_error(c->g);
		diag_error(c->d, NULL, "cannot start the libguestfs appliance: %s (libguestfs-test-tool tells more)",
			   why ? why : "unknown error");
		return -EIO;
	}
	/* Modes exactly as the payload gives them (the agent's chmod after mkdir). */
	if (gfs.umask(c->g, 0) < 0)
		return gfail(c, &c->nodes[0], "cannot set the umask", NULL);
	char **devs = gfs.list_devices(c->g);
	if (!devs)
		return gfail(c, &c->nodes[0], "cannot list the disks", NULL);
	size_t k = 0;
	for (; devs[k]; k++)
		if (k < c->n_nodes)
			c->nodes[k].dev = xstrdup(devs[k]);
	for (size_t i = 0; devs[i]; i++)
		free(devs[i]);
	free(devs);
	if (k != c->n_nodes) {
		diag_error(c->d, NULL, "the libguestfs appliance has %zu disks, not %zu", k, c->n_nodes);
		return -EIO;
	}
	int r = 0;
	for (size_t i = 0; i < c->n_nodes && r == 0; i++)
		r = fill_node(c, &c->nodes[i], i);
	if (r == 0 && (gfs.umount_all(c->g) < 0 || gfs.sync(c->g) < 0))
		r = gfail(c, &c->nodes[0], "cannot unmount the disks", NULL);
	/* Shutting down flushes qemu's caches to the files. */
	if (r == 0 && gfs.shutdown(c->g) < 0)
		r = gfail(c, &c->nodes[0], "cannot close the libguestfs appliance", NULL);
	return r;
}

/* Disks of nodes this build does not make, already in a target directory:
 * hard links in the new one, so that building one recipe never drops
 * another's disks. Only names this tool writes; never a link. */
static int keep_others(struct disk_ctx *c, struct strv *kept) {
	for (size_t i = 0; i < c->dsts.n; i++) {
		DIR *dir = opendir(c->dsts.v[i]);
		if (!dir && errno == ENOENT)
			continue;
		if (!dir) {
			int err = errno;
			diag_error(c->d, NULL, "cannot read '%s': %s", c->dsts.v[i], strerror(err));
			return -err;
		}
		int r = 0;
		for (struct dirent *de; r == 0 && (de = readdir(dir));) {
			const char *dot = strrchr(de->d_name, '.');
			if (!dot || !(streq(dot, ".img") || streq(dot, ".qcow2")))
				continue;
			_cleanup_free_ char *host = xstrndup(de->d_name, (size_t)(dot - de->d_name));
			bool made = !hostname_valid(host);
			for (size_t k = 0; k < c->n_nodes && !made; k++)
				made = streq(c->nodes[k].dr->dir, c->dirs.v[i]) && streq(c->nodes[k].node->hostname, host);
			_cleanup_free_ char *src = path_join(c->dsts.v[i], de->d_name);
			struct stat st;
			if (made || lstat(src, &st) < 0 || !S_ISREG(st.st_mode))
				continue;
			_cleanup_free_ char *dst = path_join(c->dirs.v[i], de->d_name);
			if (link(src, dst) < 0) {
				r = -errno;
				diag_error(c->d, NULL, "cannot keep the disk '%s': %s", src, strerror(-r));
			} else
				strv_push(kept, c->dsts.v[i]);
		}
		closedir(dir);
		if (r < 0)
			return r;
	}
	return 0;
}

int disk_write(struct build *const *builds, size_t n, struct strv *kept, struct pending *out, struct diags *d) {
	struct disk_ctx c = { .d = d, .progress = n ? builds[0]->opts->progress : NULL };
	size_t total = 0;
	for (size_t i = 0; i < n; i++)
		if (builds[i]->recipe->outputs.disk)
			total += builds[i]->n_nodes;
	c.recipes = xcalloc(n + 1, sizeof(*c.recipes));
	c.nodes = xcalloc(total + 1, sizeof(*c.nodes));
	int r = 0;
	for (size_t i = 0; i < n && r == 0; i++)
		if (builds[i]->recipe->outputs.disk)
			r = stage_recipe(&c, builds[i]);
	size_t first = 0;
	for (size_t i = 0; i < c.n_recipes && r == 0; i++) {
		size_t count = 0;
		while (first + count < c.n_nodes && c.nodes[first + count].dr == &c.recipes[i])
			count++;
		r = make_files(&c, &c.recipes[i], &c.nodes[first], count);
		first += count;
	}
	if (r == 0)
		r = run_appliance(&c);
	if (c.g)
		gfs.close(c.g);
	if (r == 0)
		r = keep_others(&c, kept);
	for (size_t i = 0; i < c.n_nodes; i++) {
		struct disk_node *nd = &c.nodes[i];
		stage_release(&nd->stage);
		free(nd->file);
		free(nd->dev);
		strv_release(&nd->dirs);
		strv_release(&nd->fresh);
		buf_release(&nd->log);
		buf_release(&nd->manifest);
	}
	for (size_t i = 0; i < c.n_recipes; i++) {
		struct disk_recipe *dr = &c.recipes[i];
		for (size_t k = 0; dr->first && k < dr->shared.n; k++)
			free(dr->first[k]);
		free(dr->first);
		stage_release(&dr->shared);
	}
	free(c.nodes);
	free(c.recipes);
	for (size_t i = 0; i < c.dirs.n; i++) {
		if (r == 0)
			pending_add(out, c.dirs.v[i], c.dsts.v[i]);
		else
			rm_rf(c.dirs.v[i]);
	}
	strv_release(&c.dirs);
	strv_release(&c.dsts);
	return r;
}

/* --- reading a disk back -------------------------------------------------- */

#define READ_ROOT "/root"
#define READ_OEM "/oem"

struct disk_reader {
	guestfs_h *g;
	const char *path;
	struct reader_output *o;
	struct diags *d;
	size_t kept;            /* bytes of file text held, up to READER_KEEP_TOTAL */
};

static int rfail(struct disk_reader *rd, const char *what, const char *arg) {
	const char *why = gfs.last_error(rd->g);
	diag_error(rd->d, NULL, "cannot read the disk '%s': %s%s%s%s: %s", rd->path, what, arg ? " '" : "", arg ? arg : "",
		   arg ? "'" : "", why ? why : "unknown libguestfs error");
	return -EIO;
}

/* A qcow2 header naming another file would make libguestfs read it. */
static int check_qcow2(const char *path, struct diags *d) {
	unsigned char h[80];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t got = fd < 0 ? -1 : pread(fd, h, sizeof(h), 0);
	if (fd >= 0)
		close(fd);
	if (got < 72) {
		diag_error(d, NULL, "cannot read the qcow2 header of '%s'", path);
		return -EIO;
	}
	uint64_t version = be64(h + 4) >> 32, backing = be64(h + 8);
	/* Version 3: incompatible feature bit 2 is an external data file. */
	bool external = version >= 3 && got >= 80 && (be64(h + 72) & 4);
	if (backing || external) {
		diag_error(d, NULL, "refusing the disk '%s': its qcow2 header names %s (dlws-mkimage never writes one)", path,
			   backing ? "a backing file" : "an external data file");
		return -EINVAL;
	}
	return 0;
}

static struct reader_file *add_read(struct disk_reader *rd, const char *name) {
	struct reader_output *o = rd->o;
	GROW(o->files, o->cap, o->n + 1);
	struct reader_file *f = &o->files[o->n++];
	*f = (struct reader_file){ .path = xstrdup(name), .type = READER_OTHER };
	return f;
}

/* Whether inspect reads this file's text: configs, certificates and
 * kubeconfigs; never a key. */
static bool keep_on_disk(const char *name) {
	return streq(name, LAYOUT_PART_OEM "/" LAYOUT_IGNITION) || streq(name, LAYOUT_PART_ROOT "/" LAYOUT_USER_DATA) ||
	       (startswith(name, LAYOUT_PART_ROOT "/etc/") && endswith(name, ".crt")) ||
	       (startswith(name, LAYOUT_PART_ROOT "/etc/kubernetes/") && (endswith(name, ".conf") || endswith(name, "/kubeconfig")));
}

/* The file `name` ("ROOT/<path>", "OEM/<path>") as the disk holds it; not
 * added when absent. Never through a link: the appliance's realpath must
 * be the path itself. `text`: keep its content. `listed`: the manifest's
 * line for it, hashed there only when the disk's size is the one listed
 * (a sparse file of any size would take for ever: verify tells the
 * sizes differ); NULL: hash the kept text. */
static int read_one(struct disk_reader *rd, const char *name, bool text, const struct reader_manifest_line *listed) {
	const char *rel = strchr(name, '/') + 1;
	_cleanup_free_ char *gpath = xasprintf("%s/%s", startswith(name, LAYOUT_PART_ROOT "/") ? READ_ROOT : READ_OEM, rel);
	struct guestfs_statns *st = gfs.lstatns(rd->g, gpath);
	if (!st)
		return 0;
	struct reader_file *f = add_read(rd, name);
	int64_t fmt = st->st_mode & S_IFMT;
	f->mode = (unsigned)(st->st_mode & 07777);
	f->size = st->st_size < 0 ? 0 : (uint64_t)st->st_size;
	gfs.free_statns(st);
	if (fmt == S_IFLNK)
		f->type = READER_LINK;
	if (fmt != S_IFREG)
		return 0;
	_cleanup_free_ char *real = gfs.realpath(rd->g, gpath);
	if (!real || !streq(real, gpath)) {
		f->type = READER_LINK;
		return 0;
	}
	f->type = READER_REG;
	if (text && f->size <= READER_KEEP_LIMIT && rd->kept + f->size <= READER_KEEP_TOTAL) {
		size_t len = 0;
		char *data = gfs.read_file(rd->g, gpath, &len);
		if (!data)
			return rfail(rd, "cannot read", name);
		f->data = xmalloc(len + 1);
		memcpy(f->data, data, len);
		f->data[len] = '\0';
		f->len = len;
		free(data);
		rd->kept += len;
		if (!listed)
			sha256_hex(f->data, f->len, f->sha256);
	}
	if (listed && listed->size == f->size) {
		_cleanup_free_ char *hex = gfs.checksum(rd->g, "sha256", gpath);
		if (!hex || strlen(hex) != SHA256_HEX_LEN)
			return rfail(rd, "cannot checksum", name);
		memcpy(f->sha256, hex, sizeof(f->sha256));
	}
	return 0;
}

/* Names and sizes from the disk's manifest, before any file is read: only
 * files below ROOT or OEM, each once, none bigger than its partition, nor
 * all of a partition's together (a sparse file of any size would be hashed
 * for ever). Every bad line is reported. */
static int check_listed(struct disk_reader *rd, const struct reader_manifest *m, const char *where, const char *root_dev,
			const char *oem_dev) {
	static const char *const parts[] = { LAYOUT_PART_ROOT, LAYOUT_PART_OEM };
	int64_t sizes[2] = { gfs.blockdev_getsize64(rd->g, root_dev), gfs.blockdev_getsize64(rd->g, oem_dev) };
	if (sizes[0] < 0 || sizes[1] < 0)
		return rfail(rd, "cannot read the size of", sizes[0] < 0 ? root_dev : oem_dev);
	uint64_t totals[2] = { 0, 0 };
	struct srcloc at = { where, 0, 0 };
	struct diag_batch b = { rd->d, 0 };
	for (size_t i = 0; i < m->n; i++) {
		const char *p = m->v[i].path;
		int k = startswith(p, LAYOUT_PART_ROOT "/") ? 0 : startswith(p, LAYOUT_PART_OEM "/") ? 1 : -1;
		bool twice = false;
		for (size_t j = 0; j < i && !twice; j++)
			twice = streq(m->v[j].path, p);
		if (k < 0 || !path_is_plain_relative(strchr(p, '/') + 1) || streq(p, DISK_READ_MANIFEST) || streq(p, DISK_READ_BUILDINFO))
			diag_batch_error(&b, &at, "refusing '/%.200s': not a payload file below /%s/ or /%s/", p, LAYOUT_PART_ROOT,
					 LAYOUT_PART_OEM);
		else if (twice)
			diag_batch_error(&b, &at, "refusing '/%.200s': listed twice", p);
		else if (m->v[i].size > (uint64_t)sizes[k])
			diag_batch_error(&b, &at, "refusing '/%.200s': %llu bytes, more than the %s partition holds (%lld bytes)", p,
					 (unsigned long long)m->v[i].size, parts[k], (long long)sizes[k]);
		else
			totals[k] += m->v[i].size;
	}
	for (int k = 0; k < 2; k++)
		if (totals[k] > (uint64_t)sizes[k])
			diag_batch_error(&b, &at, "refusing the files below /%s/: %llu bytes together, more than the partition holds (%lld bytes)",
					 parts[k], (unsigned long long)totals[k], (long long)sizes[k]);
	return diag_batch_end(&b);
}

static int mount_ro(struct disk_reader *rd, const char *dev, const char *at, bool root) {
	_cleanup_free_ char *fs = gfs.vfs_type(rd->g, dev);
	if (root && fs && streq(fs, "btrfs") && gfs.mount_options(rd->g, "ro,subvol=root", dev, at) == 0)
		return 0;
	if (gfs.mount_ro(rd->g, dev, at) < 0)
		return rfail(rd, "cannot mount", root ? LAYOUT_PART_ROOT : LAYOUT_PART_OEM);
	return 0;
}

static int read_disk(struct disk_reader *rd, bool qcow2) {
	guestfs_h *g = rd->g;
	/* Read-only: an overlay takes every write; the format is the one the
	 * header says, never probed by libguestfs. */
	if (gfs.add_drive_opts(g, rd->path, GUESTFS_ADD_DRIVE_OPTS_FORMAT, qcow2 ? "qcow2" : "raw",
				   GUESTFS_ADD_DRIVE_OPTS_READONLY, 1, -1) < 0)
		return rfail(rd, "cannot add it", NULL);
	if (gfs.launch(g) < 0)
		return rfail(rd, "cannot start the libguestfs appliance (libguestfs-test-tool tells more)", NULL);
	char **devs = gfs.list_devices(g);
	if (!devs || !devs[0]) {
		if (devs)
			free(devs);
		return rfail(rd, "cannot list the disks", NULL);
	}
	_cleanup_free_ char *dev = devs[0];
	for (size_t i = 1; devs[i]; i++)
		free(devs[i]);
	free(devs);
	size_t len = 0;
	struct gpt gp;
	_cleanup_free_ char *h = gfs.pread_device(g, dev, SECTOR, SECTOR, &len);
	if (!h)
		return rfail(rd, "cannot read the GPT", NULL);
	int r = gpt_header((unsigned char *)h, len, &gp);
	if (r < 0) {
		diag_error(rd->d, NULL, "the disk '%s' has %s", rd->path, r == -ENOENT ? "no GPT" : "a GPT this tool cannot read");
		return r;
	}
	size_t want = gp.count * gp.entry_size;
	_cleanup_free_ char *e = gfs.pread_device(g, dev, (int)want, (int64_t)(gp.array_lba * SECTOR), &len);
	if (!e || len != want)
		return e ? (diag_error(rd->d, NULL, "the disk '%s' has a truncated GPT", rd->path), -EINVAL)
			 : rfail(rd, "cannot read the GPT", NULL);
	gpt_entries((unsigned char *)e, &gp);
	if (!gp.root_num || !gp.oem_num) {
		diag_error(rd->d, NULL, "the disk '%s' has no partition named %s: not a disk of dlws-mkimage", rd->path,
			   gp.root_num ? LAYOUT_PART_OEM : LAYOUT_PART_ROOT);
		return -ENOENT;
	}
	_cleanup_free_ char *root_dev = part_dev(dev, gp.root_num);
	_cleanup_free_ char *oem_dev = part_dev(dev, gp.oem_num);
	if (gfs.mkmountpoint(g, READ_ROOT) < 0 || gfs.mkmountpoint(g, READ_OEM) < 0)
		return rfail(rd, "cannot make mount points", NULL);
	r = mount_ro(rd, root_dev, READ_ROOT, true);
	if (r == 0)
		r = mount_ro(rd, oem_dev, READ_OEM, false);
	if (r == 0)
		r = read_one(rd, DISK_READ_BUILDINFO, true, NULL);
	if (r == 0)
		r = read_one(rd, DISK_READ_MANIFEST, true, NULL);
	if (r < 0)
		return r;
	const struct reader_file *mf = reader_find(rd->o->files, rd->o->n, DISK_READ_MANIFEST);
	if (!mf || mf->type != READER_REG || !mf->data) {
		diag_error(rd->d, NULL, "the disk '%s' has no readable /%s%s (at most %zu bytes): not a disk of this version of "
			   "dlws-mkimage", rd->path, DISK_READ_MANIFEST, mf && mf->type == READER_REG ? " within the limit" : "",
			   READER_KEEP_LIMIT);
		return -EINVAL;
	}
	/* Messages name the disk and its manifest: "<disk>: /OEM/dlws-manifest:LINE: ...". */
	_cleanup_free_ char *where = xasprintf("%s: /%s", rd->path, DISK_READ_MANIFEST);
	struct reader_manifest m;
	r = reader_manifest_parse(mf->data, mf->len, where, &m, rd->d);
	if (r < 0)
		return r;
	r = check_listed(rd, &m, where, root_dev, oem_dev);
	for (size_t i = 0; i < m.n && r == 0; i++)
		r = read_one(rd, m.v[i].path, keep_on_disk(m.v[i].path), &m.v[i]);
	reader_manifest_release(&m);
	return r;
}

int disk_read(const char *path, bool qcow2, struct reader_output *o, struct diags *d) {
	if (qcow2) {
		int r = check_qcow2(path, d);
		if (r < 0)
			return r;
	}
	int opened = gfs_open(d);
	if (opened < 0)
		return opened;
	struct disk_reader rd = { .path = path, .o = o, .d = d };
	rd.g = gfs.create();
	if (!rd.g) {
		diag_error(d, NULL, "cannot start libguestfs (guestfs_create failed)");
		return -EIO;
	}
	gfs.set_error_handler(rd.g, NULL, NULL);
	int r = read_disk(&rd, qcow2);
	gfs.close(rd.g);
	return r;
}
