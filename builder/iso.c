#include "iso.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bootcfg.h"
#include "cache.h"
#include "filesum.h"
#include "fsutil.h"
#include "hash.h"
#include "buildinfo.h"
#include "isofile.h"
#include "isolayout.h"
#include "loaders.h"
#include "progress.h"
#include "util.h"

#define MENU_TIMEOUT_S 3
#define MBR_TEMPLATE_MAX 512
/* libisofs's ring buffer between its writer thread and ours. */
#define FIFO_BYTES (2 << 20)
/* Sort weights: right after the directory records the boot catalog and
 * the boot images (reading the image back reads them), then the large
 * files, each in its own place, so that a change to a small file (a
 * segment) moves none of them. */
#define WEIGHT_BOOT (1 << 30)
#define WEIGHT_LARGE (1 << 29)

struct iso_ctx {
	IsoImage *image;
	time_t epoch;
	struct diags *d;
	const char *out;
	char payload_sha256[SHA256_HEX_LEN + 1];        /* of the segments fill() wrote */
	char inputs_sha256[SHA256_HEX_LEN + 1];         /* and of what they are made from */
	/* The large files the medium carries by path: libisofs reads them
	 * while writing, so they are checked unchanged after it. */
	struct stage large;
	struct progress *progress;      /* may be NULL */
	/* The output's key (cache.h): the writer's settings and every file
	 * of the image by path, mode and sum, in the order added. */
	struct sha256 *key;
	/* The data's identity of each content added (isofile.h): by sum. */
	struct content { char sum[SHA256_HEX_LEN + 1]; ino_t id; } *contents;
	size_t n_contents;
	/* The large files by their path in the image ("/dlws/large/...") and
	 * sum; where they lie in the image written, as text (isolayout.h). */
	struct strv large_paths, large_sums;
	char *layout;
	uint64_t kept;          /* bytes of the spare left in place */
};

/* Files with the same contents get the same identity: stored once. */
static ino_t content_id(struct iso_ctx *c, const char *sum) {
	for (size_t i = 0; i < c->n_contents; i++)
		if (streq(c->contents[i].sum, sum))
			return c->contents[i].id;
	c->contents = xrealloc(c->contents, (c->n_contents + 1) * sizeof(*c->contents));
	struct content *e = &c->contents[c->n_contents++];
	memcpy(e->sum, sum, sizeof(e->sum));
	e->id = serial_id++;
	return e->id;
}

static int iso_fail(struct iso_ctx *c, int code, const char *what) {
	diag_error(c->d, NULL, "cannot write '%s': %s: %s", c->out, what, iso_error_to_msg(code));
	return -EIO;
}

static void own(IsoNode *n, mode_t mode, time_t t) {
	iso_node_set_permissions(n, mode);
	iso_node_set_uid(n, 0);
	iso_node_set_gid(n, 0);
	iso_node_set_mtime(n, t);
	iso_node_set_atime(n, t);
	iso_node_set_ctime(n, t);
}

/* The directory at `path` ("a/b"), made as needed. */
static int dir_at(struct iso_ctx *c, const char *path, IsoDir **ret) {
	IsoDir *dir = iso_image_get_root(c->image);
	_cleanup_free_ char *copy = xstrdup(path);
	char *save = NULL;
	for (char *part = strtok_r(copy, "/", &save); part; part = strtok_r(NULL, "/", &save)) {
		IsoNode *node = NULL;
		if (iso_dir_get_node(dir, part, &node) == 1 && iso_node_get_type(node) == LIBISO_DIR) {
			dir = (IsoDir *)node;
			continue;
		}
		IsoDir *sub = NULL;
		int r = iso_tree_add_new_dir(dir, part, &sub);
		if (r < 0)
			return iso_fail(c, r, path);
		own((IsoNode *)sub, 0755, c->epoch);
		dir = sub;
	}
	*ret = dir;
	return 0;
}

/* Where libisofs writes the file at `path` ("/a/b"): the greater `w`,
 * the nearer the start. */
static void weigh(struct iso_ctx *c, const char *path, int w) {
	IsoNode *node = NULL;
	if (iso_tree_path_to_node(c->image, path, &node) == 1)
		iso_node_set_sort_weight(node, w);
}

/* Adds the file at `src` on disk as `path` in the image. */
static int add_file(struct iso_ctx *c, const char *path, const char *src, mode_t mode) {
	_cleanup_free_ char *parent = xstrdup(path);
	char *slash = strrchr(parent, '/');
	const char *name = slash ? slash + 1 : path;
	if (slash)
		*slash = '\0';
	IsoDir *dir = NULL;
	int r = dir_at(c, slash ? parent : "", &dir);
	if (r < 0)
		return r;
	/* libisofs takes local paths as absolute ones. */
	_cleanup_free_ char *abs = realpath(src, NULL);
	if (!abs) {
		int e = errno;
		diag_error(c->d, NULL, "cannot open '%s': %s", src, strerror(e));
		return -e;
	}
	char sum[SHA256_HEX_LEN + 1];
	uint64_t size = 0;
	r = filesum(abs, sum, &size, c->d);
	if (r < 0)
		return r;
	IsoStream *stream = NULL;
	int k = isofile_stream_new(abs, size, content_id(c, sum), &stream);
	IsoFile *file = NULL;
	if (k >= 0) {
		k = iso_image_add_new_file(c->image, dir, name, stream, &file);
		if (k < 0)
			iso_stream_unref(stream);
	}
	if (k < 0)
		return iso_fail(c, k, src);
	own((IsoNode *)file, mode, c->epoch);
	_cleanup_free_ char *line = xasprintf("file %s %o %s\n", path, (unsigned)mode, sum);
	sha256_update(c->key, line, strlen(line));
	return 0;
}

static int add_text(struct iso_ctx *c, const char *work, const char *path, char *text) {
	_cleanup_free_ char *flat = xstrdup(path);
	for (char *p = flat; *p; p++)
		if (*p == '/')
			*p = '_';
	_cleanup_free_ char *src = path_join(work, flat);
	int r = write_file_atomic(src, text, strlen(text), 0644, c->d);
	free(text);
	return r < 0 ? r : add_file(c, path, src, 0644);
}

/* Which entry boots unattended: the node's own when the recipe has one
 * node, else the role's (a medium for many nodes must be told which). */
static void make_menu(const struct build *b, struct boot_menu *m) {
	_cleanup_free_ char *medium = xasprintf("dlws.medium=%s", b->recipe->outputs.iso_label);
	build_menu_entries(b, medium, m);
	/* A medium boots by its menu, never by a MAC: its entries (and its
	 * dlws-build.json) name none, so a replaced NIC leaves the ISO as it is. */
	for (size_t i = 0; i < m->n; i++) {
		free(m->v[i].mac);
		m->v[i].mac = NULL;
	}
	m->default_entry = b->n_nodes == 1 ? 1 : 0;
	/* Rescue: the default's live system, without running an install. */
	const struct boot_entry *def = &m->v[m->default_entry];
	_cleanup_free_ char *rtitle = xasprintf("rescue: %s without installing", def->label);
	_cleanup_free_ char *rcmd = xasprintf("%s dlws.noinstall", def->cmdline);
	_cleanup_free_ char *rkernel = xstrdup(def->kernel);
	struct strv initrds = STRV_INIT;
	for (size_t i = 0; i < def->initrds.n; i++)
		strv_push(&initrds, def->initrds.v[i]);
	struct boot_entry *re = boot_menu_add(m, "rescue", rtitle, rkernel, rcmd);
	re->initrds = initrds;
}

/* The tree: kernel, initrds, segments, large files, bootloaders, menus. */
static int fill(struct iso_ctx *c, const struct build *b, const char *work) {
	const struct recipe *rc = b->recipe;
	_cleanup_free_ char *rdir = path_join(work, rc->name);
	_cleanup_free_ char *ndir = path_join(work, "nodes");
	if (mkdir_p(rdir, 0755) < 0 || mkdir_p(ndir, 0755) < 0) {
		diag_error(c->d, NULL, "cannot create '%s': %s", rdir, strerror(errno));
		return -errno;
	}
	const char *suffix = compress_suffix(rc->compression.method);
	_cleanup_free_ char *shared_file = build_segment_file(b, "shared");
	_cleanup_free_ char *shared = path_join(rdir, shared_file);
	struct stage *large = &c->large;
	struct segment_sizes sizes = { 0 };
	int r = build_write_segments(b, shared, ndir, "", &(struct segment_opts){ .large_threshold = rc->outputs.iso_large },
				     large, &sizes, c->d);
	memcpy(c->payload_sha256, sizes.payload_sha256, sizeof(c->payload_sha256));
	memcpy(c->inputs_sha256, sizes.inputs_sha256, sizeof(c->inputs_sha256));
	segment_sizes_release(&sizes);
	_cleanup_free_ char *k = xasprintf("%s/vmlinuz", rc->name);
	_cleanup_free_ char *bi = xasprintf("%s/base.img", rc->name);
	_cleanup_free_ char *si = xasprintf("%s/%s", rc->name, shared_file);
	if (r == 0)
		r = add_file(c, k, rc->base.kernel, 0644);
	if (r == 0)
		r = add_file(c, bi, rc->base.initrd, 0644);
	if (r == 0)
		r = add_file(c, si, shared, 0644);
	if (r == 0 && build_has_role_segment(b)) {
		_cleanup_free_ char *role_file = build_segment_file(b, BUILD_ROLE_SEGMENT);
		_cleanup_free_ char *ri = xasprintf("%s/%s", rc->name, role_file);
		_cleanup_free_ char *role = path_join(rdir, role_file);
		r = add_file(c, ri, role, 0644);
	}
	for (size_t i = 0; i < b->n_nodes && r == 0; i++) {
		_cleanup_free_ char *name = xasprintf("nodes/%s%s", b->nodes[i]->hostname, suffix);
		_cleanup_free_ char *src = path_join(work, name);
		r = add_file(c, name, src, 0644);
	}
	/* Large files keep their payload mode: the live system checks it. */
	static const char large_prefix[] = PAYLOAD_LARGE "/";
	for (size_t i = 0; i < large->n && r == 0; i++) {
		const struct stage_entry *e = &large->v[i];
		if (e->on_medium) {
			_cleanup_free_ char *path = xasprintf("dlws/large/%s", e->path + strlen(large_prefix));
			_cleanup_free_ char *abs = xasprintf("/%s", path);
			r = add_file(c, path, e->src, e->mode);
			weigh(c, abs, WEIGHT_LARGE - (int)i);
			strv_push(&c->large_paths, abs);
			strv_push(&c->large_sums, e->sha256);
		} else if (streq(e->path, PAYLOAD_MEDIUM_ID)) {
			r = add_text(c, work, "dlws/medium-id", xstrndup(e->data, e->size));
		}
	}
	return r;
}

static int add_boot(struct iso_ctx *c, const struct build *b, const char *work, struct isolinux_files *isl, IsoWriteOpts *opts) {
	struct boot_menu menu = { .timeout_s = MENU_TIMEOUT_S };
	make_menu(b, &menu);
	int r = add_file(c, "isolinux/isolinux.bin", isl->isolinux_bin, 0644);
	static const char *const names[] = { "ldlinux.c32", "menu.c32", "libutil.c32" };
	for (size_t i = 0; i < ARRAY_SIZE(names) && r == 0; i++) {
		_cleanup_free_ char *p = xasprintf("isolinux/%s", names[i]);
		r = add_file(c, p, isl->modules[i], 0644);
	}
	if (r == 0)
		r = add_text(c, work, "isolinux/isolinux.cfg", bootcfg_syslinux(&menu, NULL, "/"));
	if (r == 0)
		r = add_text(c, work, "boot/grub/grub.cfg", bootcfg_grub(&menu, NULL));
	/* What the medium carries, for inspect: dlws-build.json at its root. */
	struct buildinfo info;
	const char *iso = b->recipe->outputs.iso;
	_cleanup_free_ char *iso_dir = strrchr(iso, '/') ? xstrndup(iso, (size_t)(strrchr(iso, '/') - iso)) : xstrdup(".");
	buildinfo_init(&info, &b, 1);
	buildinfo_add_build(&info, b, iso_dir, c->payload_sha256, c->inputs_sha256, &menu, 0);
	if (r == 0)
		r = add_text(c, work, BUILDINFO_FILE, buildinfo_json(&info));
	buildinfo_release(&info);
	boot_menu_release(&menu);
	_cleanup_free_ char *efi = path_join(work, "efi.img");
	if (r == 0)
		r = loaders_efi_image(efi, b->recipe->outputs.iso_label, work, (long long)c->epoch, b->opts->cache, c->d);
	if (r == 0)
		r = add_file(c, "boot/efi.img", efi, 0644);
	if (r < 0)
		return r;

	ElToritoBootImage *bios = NULL, *uefi = NULL;
	int k = iso_image_set_boot_image(c->image, "/isolinux/isolinux.bin", ELTORITO_NO_EMUL, "/isolinux/boot.cat", &bios);
	if (k < 0)
		return iso_fail(c, k, "BIOS boot image");
	el_torito_set_load_size(bios, 4);
	iso_image_set_boot_catalog_weight(c->image, WEIGHT_BOOT + 2);
	weigh(c, "/isolinux/isolinux.bin", WEIGHT_BOOT + 1);
	weigh(c, "/boot/efi.img", WEIGHT_BOOT);
	el_torito_set_isolinux_options(bios, 1 /* boot info table */, 0);
	k = iso_image_add_boot_image(c->image, "/boot/efi.img", ELTORITO_NO_EMUL, 0, &uefi);
	if (k < 0)
		return iso_fail(c, k, "UEFI boot image");
	el_torito_set_boot_platform_id(uefi, 0xef);
	/* Mentioned in the GPT as a partition, so UEFI finds it on a stick. */
	el_torito_set_isolinux_options(uefi, 1 << 2, 0);

	/* The isohybrid MBR: SeaBIOS and PC firmware boot the stick by it. */
	char *area = xcalloc(1, 32768);
	char *mbr = NULL;
	size_t len = 0;
	r = read_file(isl->mbr, MBR_TEMPLATE_MAX, &mbr, &len, c->d);
	if (r == 0) {
		char sum[SHA256_HEX_LEN + 1];
		sha256_hex(mbr, len, sum);
		_cleanup_free_ char *line = xasprintf("mbr %s\n", sum);
		sha256_update(c->key, line, strlen(line));
		memcpy(area, mbr, len);
		k = iso_write_opts_set_system_area(opts, area, 1 << 1 /* isohybrid MBR */, 0);
		if (k < 0)
			r = iso_fail(c, k, "system area");
	}
	free(mbr);
	free(area);
	return r;
}

static IsoWriteOpts *make_opts(struct iso_ctx *c, const struct build *b) {
	IsoWriteOpts *opts = NULL;
	if (iso_write_opts_new(&opts, 0) < 0)
		return NULL;
	iso_write_opts_set_iso_level(opts, 3);
	iso_write_opts_set_rockridge(opts, 1);
	/* Rock Ridge 1.10 without file serial numbers: libisofs would number
	 * files from their inodes on the build machine, which differ per build. */
	iso_write_opts_set_rrip_version_1_10(opts, 1);
	iso_write_opts_set_rrip_1_10_px_ino(opts, 0);
	iso_write_opts_set_joliet(opts, 1);
	iso_write_opts_set_allow_deep_paths(opts, 1);
	iso_write_opts_set_always_gmt(opts, 1);
	iso_write_opts_set_fifo_size(opts, FIFO_BYTES / 2048);
	iso_write_opts_set_sort_files(opts, 1);
	iso_write_opts_set_replace_timestamps(opts, 1);
	iso_write_opts_set_default_timestamp(opts, c->epoch);
	/* Reproducible: volume times from SOURCE_DATE_EPOCH, GPT GUID from the recipe. */
	char uuid[32];
	struct tm tm;
	gmtime_r(&c->epoch, &tm);
	strftime(uuid, sizeof(uuid), "%Y%m%d%H%M%S00", &tm);
	iso_write_opts_set_pvd_times(opts, c->epoch, c->epoch, 0, c->epoch, uuid);
	char hex[SHA256_HEX_LEN + 1];
	_cleanup_free_ char *seed = xasprintf("dlws-mkimage %s %s", b->recipe->name, b->recipe->outputs.iso_label);
	sha256_hex(seed, strlen(seed), hex);
	uint8_t guid[16];
	for (int i = 0; i < 16; i++)
		sscanf(hex + 2 * i, "%2hhx", &guid[i]);
	guid[7] = (uint8_t)((guid[7] & 0x0f) | 0x40);
	guid[8] = (uint8_t)((guid[8] & 0x3f) | 0x80);
	iso_write_opts_set_gpt_guid(opts, guid, 1);
	return opts;
}

/* libisofs's writer thread puts the image into a ring buffer a 2 KiB sector
 * at a time, under a lock, and wakes a reader waiting on it for each one:
 * a system call per sector when the reader is the faster. So the reader
 * waits, without the lock, until a good part of `chunk` is there (or the
 * writer is done) and takes only what is there: a read never blocks. */
static int read_image(struct burn_source *src, unsigned char *buf, size_t chunk) {
	for (;;) {
		size_t cap = 0, free_bytes = 0;
		int state = iso_ring_buffer_get_status(src, &cap, &free_bytes);
		size_t there = cap > free_bytes ? cap - free_bytes : 0;
		size_t enough = chunk < cap / 2 ? chunk : cap / 2;
		if (state == 1 && there < enough) {
			nanosleep(&(struct timespec){ .tv_nsec = 200 * 1000 }, NULL);
			continue;
		}
		if (state != 1 && state != 2)   /* failing, or worse */
			return -1;
		if (there == 0)                 /* state 2: all of it read */
			return 0;
		return src->read_xt(src, buf, (int)(there < chunk ? there : chunk));
	}
}

/* Where the image goes: written over a spare, the extents of large files
 * the spare holds at the same place are left as they are. */
struct placer {
	int fd;                 /* the image being written */
	int rfd;                /* the same, read back (-1: not over a spare) */
	uint64_t pos;           /* bytes of the image placed */
	bool known;             /* the image's own layout read back */
	uint64_t first;         /* the first byte the spare may hold already */
	struct iso_extents spare, keep, now;
};

/* The extents of the image's large files, read back from its first
 * `limit` bytes (those written: its directory records come first). */
static void learn(struct iso_ctx *c, struct placer *p, int fd, uint64_t limit) {
	p->known = true;
	isolayout_release(&p->now);
	if (isolayout_read(fd, limit, (const char *const *)c->large_paths.v, (const char *const *)c->large_sums.v,
			   c->large_paths.n, &p->now) < 0)
		return;
	for (size_t i = 0; i < p->now.n; i++)
		if (isolayout_has(&p->spare, &p->now.v[i]))
			isolayout_add(&p->keep, &p->now.v[i]);
}

static int place(struct iso_ctx *c, struct placer *p, const unsigned char *buf, size_t n) {
	while (n > 0) {
		size_t m = n;
		bool skip = false;
		if (!p->known && p->pos + n > p->first) {
			m = (size_t)(p->first - p->pos);
			if (m == 0) {
				learn(c, p, p->rfd, p->pos);
				continue;
			}
		} else {
			for (size_t i = 0; i < p->keep.n; i++) {
				const struct iso_extent *e = &p->keep.v[i];
				if (e->offset <= p->pos && p->pos < e->offset + e->size) {
					skip = true;
					m = (size_t)(e->offset + e->size - p->pos < m ? e->offset + e->size - p->pos : m);
				} else if (e->offset > p->pos && e->offset - p->pos < m) {
					m = (size_t)(e->offset - p->pos);
				}
			}
		}
		if (skip) {
			if (lseek(p->fd, (off_t)m, SEEK_CUR) < 0)
				return -errno;
			c->kept += m;
		} else {
			int r = write_all(p->fd, buf, m);
			if (r < 0)
				return r;
		}
		p->pos += m;
		buf += m;
		n -= m;
	}
	return 0;
}

static int write_image(struct iso_ctx *c, IsoWriteOpts *opts, const char *tmp_path, const char *spare,
		       const char *spare_layout, uint64_t *ret_size) {
	/* The image this one replaces: its cached pages would be dropped at
	 * the rename anyway. Given back now (the file stays as it is on disk),
	 * the new image's pages are those instead of other files' caches. */
	int old = open(c->out, O_RDONLY | O_CLOEXEC);
	if (old >= 0) {
		(void)posix_fadvise(old, 0, 0, POSIX_FADV_DONTNEED);
		close(old);
	}
	struct burn_source *src = NULL;
	int k = iso_image_create_burn_source(c->image, opts, &src);
	if (k < 0)
		return iso_fail(c, k, "image generation");
	struct atomic_file f = ATOMIC_FILE_INIT;
	bool over = false;
	int r = atomic_open_over(&f, tmp_path, 0644, spare, &over, c->d);
	struct placer p = { .fd = f.fd, .rfd = -1, .first = UINT64_MAX };
	/* The spare's large files that this image has too, by sum: from the
	 * first of them on, the image's layout is read back as it is written. */
	if (r == 0 && over && spare_layout) {
		struct iso_extents all;
		isolayout_parse(spare_layout, &all);
		for (size_t i = 0; i < all.n; i++)
			if (strv_contains(&c->large_sums, all.v[i].sum)) {
				isolayout_add(&p.spare, &all.v[i]);
				if (all.v[i].offset < p.first)
					p.first = all.v[i].offset;
			}
		isolayout_release(&all);
		if (p.spare.n)
			p.rfd = open(f.tmp, O_RDONLY | O_CLOEXEC);
		if (p.rfd < 0)
			p.first = UINT64_MAX;
	}
	const size_t chunk = FIFO_BYTES / 2;
	unsigned char *buf = xmalloc(chunk);
	uint64_t total = 0, written_back = 0;
	/* libisofs knows the image's size before writing it. */
	off_t size = src->get_size ? src->get_size(src) : 0;
	const char *slash = strrchr(c->out, '/');
	if (r == 0)
		progress_begin(c->progress, slash ? slash + 1 : c->out, size > 0 ? (uint64_t)size : 0);
	while (r == 0) {
		int n = read_image(src, buf, chunk);
		if (n == 0)
			break;
		if (n < 0) {
			diag_error(c->d, NULL, "cannot write '%s': libisofs failed while generating the image", c->out);
			r = -EIO;
			break;
		}
		r = place(c, &p, buf, (size_t)n);
		if (r < 0) {
			diag_error(c->d, NULL, "cannot write '%s': %s", f.tmp, strerror(-r));
			break;
		}
		total += (uint64_t)n;
		writeback_start(f.fd, &written_back, total);
		progress_update(c->progress, total);
	}
	if (r == 0 && size > 0 && total != (uint64_t)size) {
		diag_error(c->d, NULL, "cannot write '%s': libisofs gave %llu bytes of a %llu-byte image", c->out,
			   (unsigned long long)total, (unsigned long long)size);
		r = -EIO;
	}
	/* written over a spare: what it held past the image is not the image's */
	if (r == 0 && over && ftruncate(f.fd, (off_t)total) < 0) {
		r = -errno;
		diag_error(c->d, NULL, "cannot write '%s': %s", f.tmp, strerror(errno));
	}
	/* Where its large files lie, for the build that writes over it. */
	if (r == 0) {
		if (!p.known || !p.now.n) {
			int rfd = p.rfd >= 0 ? p.rfd : open(f.tmp, O_RDONLY | O_CLOEXEC);
			if (rfd >= 0) {
				learn(c, &p, rfd, total);
				if (rfd != p.rfd)
					close(rfd);
			}
		}
		c->layout = isolayout_format(&p.now);
	}
	if (p.rfd >= 0)
		close(p.rfd);
	isolayout_release(&p.spare);
	isolayout_release(&p.keep);
	isolayout_release(&p.now);
	if (r == 0)
		progress_end(c->progress);
	else
		progress_abort(c->progress);
	if (r < 0 && src->cancel)
		src->cancel(src);
	src->free_data(src);
	free(src);
	free(buf);
	if (r < 0) {
		if (f.fd >= 0)
			atomic_abort(&f);
		return r;
	}
	*ret_size = total;
	return atomic_commit(&f, c->d);
}

int iso_write(const struct build *b, struct pending *out, struct diags *d) {
	const struct recipe *rc = b->recipe;
	_cleanup_free_ char *work = xasprintf("%s.parts", rc->outputs.iso);
	_cleanup_free_ char *tmp = xasprintf("%s.pending", rc->outputs.iso);
	rm_rf(work);
	if (mkdir_p(work, 0755) < 0) {
		diag_error(d, NULL, "cannot create '%s': %s", work, strerror(errno));
		return -errno;
	}
	struct iso_ctx c = {
		.epoch = b->opts->epoch, .d = d, .out = rc->outputs.iso, .large = STAGE_INIT, .progress = b->opts->progress,
		.key = sha256_new(),
	};
	/* What else shapes the bytes: this writer (the tool's version), the
	 * volume's label and times, the GPT GUID's seed (make_opts). */
	_cleanup_free_ char *settings = xasprintf("dlws-mkimage %s iso\nlayout isofile, large files first\nlabel %s\nrecipe %s\nepoch %lld\n", DLWS_VERSION,
						  rc->outputs.iso_label, rc->name, (long long)c.epoch);
	sha256_update(c.key, settings, strlen(settings));
	struct isolinux_files isl = { 0 };
	IsoWriteOpts *opts = NULL;
	int r = loaders_isolinux(&isl, d);
	if (r == 0 && iso_init() < 0) {
		diag_error(d, NULL, "cannot start libisofs");
		r = -EIO;
	}
	if (r == 0) {
		int k = iso_image_new(rc->outputs.iso_label, &c.image);
		if (k < 0)
			r = iso_fail(&c, k, "new image");
	}
	if (r == 0) {
		iso_tree_set_follow_symlinks(c.image, 0);
		iso_image_set_ignore_aclea(c.image, 1 | 2);
		iso_image_set_volume_id(c.image, rc->outputs.iso_label);
		iso_image_set_application_id(c.image, "DLWS-MKIMAGE");
		own((IsoNode *)iso_image_get_root(c.image), 0755, c.epoch);
		opts = make_opts(&c, b);
		if (!opts)
			r = iso_fail(&c, ISO_OUT_OF_MEM, "options");
	}
	if (r == 0)
		r = fill(&c, b, work);
	if (r == 0)
		r = add_boot(&c, b, work, &isl, opts);
	uint64_t size = 0;
	char key[SHA256_HEX_LEN + 1];
	sha256_final_hex(c.key, key);
	bool fresh = r == 0 && cache_output_fresh(b->opts->cache, rc->outputs.iso, key);
	struct stat st;
	_cleanup_free_ char *spare = NULL;
	if (fresh && stat(rc->outputs.iso, &st) == 0) {
		size = (uint64_t)st.st_size;
	} else if (r == 0) {
		_cleanup_free_ char *spare_layout = NULL;
		spare = cache_spare(b->opts->cache, rc->outputs.iso, &spare_layout);
		r = write_image(&c, opts, tmp, spare, spare_layout, &size);
	}
	for (size_t i = 0; i < c.large.n && r == 0; i++)
		if (c.large.v[i].on_medium)
			r = stage_entry_unchanged(&c.large.v[i], d);
	stage_release(&c.large);
	if (r == 0 && rc->outputs.max_iso && size > rc->outputs.max_iso) {
		diag_error(d, &rc->outputs.iso_loc, "the ISO takes %llu bytes, more than max_size %llu",
			   (unsigned long long)size, (unsigned long long)rc->outputs.max_iso);
		r = -EFBIG;
	}
	if (opts)
		iso_write_opts_free(opts);
	if (c.image)
		iso_image_unref(c.image);
	iso_finish();
	free(c.contents);
	strv_release(&c.large_paths);
	strv_release(&c.large_sums);
	loaders_isolinux_release(&isl);
	rm_rf(work);
	if (r < 0 || fresh)
		free(c.layout);
	if (r < 0) {
		unlink(tmp);
		return r;
	}
	if (fresh) {
		pending_fresh(out, NULL, rc->outputs.iso);
		return 0;
	}
	pending_add_keeping(out, tmp, rc->outputs.iso, spare);
	cache_output_made(b->opts->cache, rc->outputs.iso, key, c.layout);
	if (c.kept)
		pending_note_kept(out, rc->outputs.iso, c.kept);
	free(c.layout);
	return 0;
}
