/* Flashing an image onto a block device; see flash.h. What the device is
 * and what uses it comes from sysfs (/sys/dev/block, /sys/class/block) and
 * /proc (mountinfo, swaps), never from parsing tool output. */
#include "flash.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/fs.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "util.h"

#define FILE_ALIGN 4096u        /* O_DIRECT on a regular file: a safe alignment for every filesystem */
#define MAX_STACK_DEPTH 16      /* dm on md on partitions... */

static const char *const system_paths[] = { "/", "/boot", "/boot/efi", "/usr" };

/* A small sysfs file, trailing blanks trimmed; NULL when absent. */
static char *sysfs_vread(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));
static char *sysfs_vread(const char *fmt, va_list ap) {
	char path[PATH_MAX];
	int n = vsnprintf(path, sizeof(path), fmt, ap);
	if (n < 0 || (size_t)n >= sizeof(path))
		return NULL;
	FILE *fp = fopen(path, "re");
	if (!fp)
		return NULL;
	char line[PATH_MAX];
	char *s = fgets(line, sizeof(line), fp);
	fclose(fp);
	if (!s)
		return NULL;
	size_t len = strlen(line);
	while (len && isspace((unsigned char)line[len - 1]))
		line[--len] = '\0';
	size_t lead = strspn(line, " \t");
	return len > lead ? xstrdup(line + lead) : NULL;
}

static char *sysfs_read(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *sysfs_read(const char *fmt, ...) {
	va_list ap;
	va_start(ap, fmt);
	char *s = sysfs_vread(fmt, ap);
	va_end(ap);
	return s;
}

static bool sysfs_u64(uint64_t *ret, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool sysfs_u64(uint64_t *ret, const char *fmt, ...) {
	va_list ap;
	va_start(ap, fmt);
	_cleanup_free_ char *s = sysfs_vread(fmt, ap);
	va_end(ap);
	char *end;
	if (!s)
		return false;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end)
		return false;
	*ret = v;
	return true;
}

static bool parse_dev(const char *s, dev_t *ret) {
	unsigned ma, mi;
	if (!s || sscanf(s, "%u:%u", &ma, &mi) != 2)
		return false;
	*ret = makedev(ma, mi);
	return true;
}

/* The number of block device `name` (a kernel name) from sysfs. */
static bool sysfs_dev(const char *name, dev_t *ret) {
	_cleanup_free_ char *s = sysfs_read("/sys/class/block/%s/dev", name);
	return parse_dev(s, ret);
}

/* Mount points and sources are escaped in mountinfo and swaps: "\040" for
 * a blank, "\011", "\012", "\134". */
static void unescape_octal(char *s) {
	char *w = s;
	for (char *p = s; *p; p++) {
		if (p[0] == '\\' && p[1] >= '0' && p[1] <= '3' && p[2] >= '0' && p[2] <= '7' && p[3] >= '0' && p[3] <= '7') {
			*w++ = (char)((p[1] - '0') * 64 + (p[2] - '0') * 8 + (p[3] - '0'));
			p += 3;
		} else {
			*w++ = *p;
		}
	}
	*w = '\0';
}

/* ---- the image and the target, as found ---- */

static int open_image(struct flash *f, struct diags *d) {
	f->image_fd = open(f->image, O_RDONLY | O_CLOEXEC);
	if (f->image_fd < 0) {
		int r = -errno;
		diag_error(d, NULL, "cannot open image '%s': %s", f->image, strerror(errno));
		return r;
	}
	struct stat st;
	if (fstat(f->image_fd, &st) < 0) {
		int r = -errno;
		diag_error(d, NULL, "cannot read image '%s': %s", f->image, strerror(errno));
		return r;
	}
	if (S_ISDIR(st.st_mode)) {
		diag_error(d, NULL, "image '%s' is a directory", f->image);
		return -EISDIR;
	}
	if (!S_ISREG(st.st_mode)) {
		diag_error(d, NULL, "image '%s' is not a regular file", f->image);
		return -EINVAL;
	}
	if (st.st_size == 0) {
		diag_error(d, NULL, "image '%s' is empty", f->image);
		return -EINVAL;
	}
	f->image_size = (uint64_t)st.st_size;
	f->image_dev = st.st_dev;
	f->image_ino = st.st_ino;
	return 0;
}

/* Partitions are the children of a disk's sysfs directory that have a
 * "partition" file; each has its own "dev". */
static void probe_partitions(struct flash *f) {
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "/sys/class/block/%s", f->name);
	DIR *dp = opendir(dir);
	if (!dp)
		return;
	struct dirent *e;
	size_t cap = 0;
	while ((e = readdir(dp))) {
		if (e->d_name[0] == '.')
			continue;
		_cleanup_free_ char *part = sysfs_read("/sys/class/block/%s/%s/partition", f->name, e->d_name);
		dev_t dev;
		if (!part || !sysfs_dev(e->d_name, &dev))
			continue;
		GROW(f->parts, cap, f->n_parts + 1);
		f->parts[f->n_parts++] = (struct flash_part){ .name = xstrdup(e->d_name), .dev = dev };
	}
	closedir(dp);
}

static int probe_block(struct flash *f, struct diags *d) {
	char link[64], real[PATH_MAX];
	snprintf(link, sizeof(link), "/sys/dev/block/%u:%u", major(f->rdev), minor(f->rdev));
	if (!realpath(link, real)) {
		int r = -errno;
		diag_error(d, NULL, "cannot find '%s' in sysfs (%s): %s", f->target, link, strerror(errno));
		return r;
	}
	f->name = xstrdup(strrchr(real, '/') + 1);
	char partfile[PATH_MAX + 16];
	snprintf(partfile, sizeof(partfile), "%s/partition", real);
	f->is_partition = access(partfile, F_OK) == 0;
	if (f->is_partition) {
		*strrchr(real, '/') = '\0';
		f->disk = xstrdup(strrchr(real, '/') + 1);
		if (!sysfs_dev(f->disk, &f->disk_dev))
			f->disk_dev = f->rdev;
	} else {
		probe_partitions(f);
	}
	const char *disk = f->is_partition ? f->disk : f->name;
	uint64_t sectors = 0, lbs = 0, removable;
	/* sysfs "size" counts 512-byte sectors whatever the logical block size. */
	if (sysfs_u64(&sectors, "/sys/class/block/%s/size", f->name))
		f->size = sectors * 512;
	f->block = sysfs_u64(&lbs, "/sys/class/block/%s/queue/logical_block_size", disk) && lbs ? (unsigned)lbs : 512;
	f->vendor = sysfs_read("/sys/class/block/%s/device/vendor", disk);
	f->model = sysfs_read("/sys/class/block/%s/device/model", disk);
	f->backing_file = sysfs_read("/sys/class/block/%s/loop/backing_file", disk);
	f->dm_name = sysfs_read("/sys/class/block/%s/dm/name", disk);
	f->removable = sysfs_u64(&removable, "/sys/class/block/%s/removable", disk) ? removable != 0 : -1;
	char dlink[PATH_MAX];
	snprintf(dlink, sizeof(dlink), "/sys/class/block/%s", disk);
	if (realpath(dlink, real))
		f->usb = strstr(real, "/usb") != NULL;
	return 0;
}

static int probe_target(struct flash *f, struct diags *d) {
	struct stat st;
	if (stat(f->target, &st) < 0) {
		if (errno == ENOENT && f->allow_file) {
			f->is_file = f->create = true;
			f->block = FILE_ALIGN;
			return 0;
		}
		int r = -errno;
		diag_error(d, NULL, "cannot open '%s': %s", f->target, strerror(errno));
		return r;
	}
	f->target_mode = st.st_mode & S_IFMT;
	if (S_ISREG(st.st_mode)) {
		f->is_file = true;
		f->size = (uint64_t)st.st_size;
		f->file_dev = st.st_dev;
		f->file_ino = st.st_ino;
		f->block = FILE_ALIGN;
		return 0;
	}
	if (!S_ISBLK(st.st_mode))
		return 0;       /* flash_check refuses it */
	f->is_block = true;
	f->rdev = st.st_rdev;
	return probe_block(f, d);
}

int flash_new(const char *image, const char *target, bool allow_file, struct flash **ret, struct diags *d) {
	struct flash *f = xcalloc(1, sizeof(*f));
	f->image = xstrdup(image);
	f->target = xstrdup(target);
	f->allow_file = allow_file;
	f->image_fd = f->fd = -1;
	f->removable = -1;
	int r = open_image(f, d);
	if (r == 0)
		r = probe_target(f, d);
	if (r < 0) {
		flash_free(f);
		return r;
	}
	*ret = f;
	return 0;
}

void flash_free(struct flash *f) {
	if (!f)
		return;
	if (f->image_fd >= 0)
		close(f->image_fd);
	if (f->fd >= 0)
		close(f->fd);
	for (size_t i = 0; i < f->n_parts; i++)
		free(f->parts[i].name);
	free(f->parts);
	free(f->image);
	free(f->target);
	free(f->name);
	free(f->disk);
	free(f->vendor);
	free(f->model);
	free(f->backing_file);
	free(f->dm_name);
	free(f);
}

/* ---- what lies on the target ---- */

/* How a device relates to the target. The disk of a partition counts: a
 * mounted whole-disk filesystem covers the partition too. */
enum on_target { ON_NONE, ON_ITSELF, ON_PARTITION, ON_DISK, ON_STACK };

static enum on_target dev_on_target(const struct flash *f, dev_t dev, const char **ret_part, int depth) {
	if (!f->is_block || dev == 0)
		return ON_NONE;
	if (dev == f->rdev)
		return ON_ITSELF;
	if (f->is_partition && dev == f->disk_dev)
		return ON_DISK;
	for (size_t i = 0; i < f->n_parts; i++)
		if (dev == f->parts[i].dev) {
			if (ret_part)
				*ret_part = f->parts[i].name;
			return ON_PARTITION;
		}
	if (depth >= MAX_STACK_DEPTH)
		return ON_NONE;
	/* A device built on the target (dm, md) lists it among its slaves. */
	char dir[64];
	snprintf(dir, sizeof(dir), "/sys/dev/block/%u:%u/slaves", major(dev), minor(dev));
	DIR *dp = opendir(dir);
	if (!dp)
		return ON_NONE;
	enum on_target on = ON_NONE;
	struct dirent *e;
	while (on == ON_NONE && (e = readdir(dp))) {
		dev_t slave;
		if (e->d_name[0] != '.' && sysfs_dev(e->d_name, &slave) && dev_on_target(f, slave, NULL, depth + 1) != ON_NONE)
			on = ON_STACK;
	}
	closedir(dp);
	return on;
}

/* "it", "its partition '/dev/sdb1'", ...: the subject of a refusal. */
static char *on_target_subject(const struct flash *f, enum on_target on, const char *part, const char *source) {
	switch (on) {
	case ON_PARTITION: return xasprintf("its partition '/dev/%s'", part);
	case ON_DISK: return xasprintf("its disk '/dev/%s'", f->disk);
	case ON_STACK: return source ? xasprintf("'%s', which is built on it,", source) : xstrdup("a device built on it");
	default: return xstrdup("it");
	}
}

struct mount {
	dev_t dev;              /* mountinfo's major:minor */
	dev_t source_dev;       /* the source's, when it is a block device (btrfs shows an anonymous dev above) */
	char *where, *source;
};

struct mounts {
	struct mount *v;
	size_t n, cap;
};

static void mounts_release(struct mounts *m) {
	for (size_t i = 0; i < m->n; i++) {
		free(m->v[i].where);
		free(m->v[i].source);
	}
	free(m->v);
}

/* "36 35 98:0 /root /mnt rw,relatime shared:1 - ext4 /dev/sdb1 rw" */
static int mounts_load(struct mounts *m, struct diags *d) {
	FILE *fp = fopen("/proc/self/mountinfo", "re");
	if (!fp) {
		int r = -errno;
		diag_error(d, NULL, "cannot read '/proc/self/mountinfo': %s", strerror(errno));
		return r;
	}
	char *line = NULL;
	size_t len = 0;
	while (getline(&line, &len, fp) > 0) {
		char devs[32], where[PATH_MAX];
		if (sscanf(line, "%*s %*s %31s %*s %4095s", devs, where) != 2)
			continue;
		dev_t dev;
		if (!parse_dev(devs, &dev))
			continue;
		const char *sep = strstr(line, " - ");
		char fstype[256], source[PATH_MAX] = "";
		if (!sep || sscanf(sep + 3, "%255s %4095s", fstype, source) < 1)
			continue;
		unescape_octal(where);
		unescape_octal(source);
		GROW(m->v, m->cap, m->n + 1);
		struct mount *e = &m->v[m->n++];
		*e = (struct mount){ .dev = dev, .where = xstrdup(where), .source = xstrdup(source) };
		struct stat st;
		/* Only device nodes: stat on another source could hang (autofs, NFS). */
		if (startswith(source, "/dev/") && stat(source, &st) == 0 && S_ISBLK(st.st_mode))
			e->source_dev = st.st_rdev;
	}
	free(line);
	fclose(fp);
	return 0;
}

/* Where a file whose st_dev is `dev` lives, relative to the target: the
 * device itself, or the block device its mount names as source. */
static enum on_target file_on_target(const struct flash *f, dev_t dev, const struct mounts *m, const char **ret_part, const char **ret_source) {
	enum on_target on = dev_on_target(f, dev, ret_part, 0);
	for (size_t i = 0; on == ON_NONE && i < m->n; i++)
		if (m->v[i].dev == dev && m->v[i].source_dev) {
			on = dev_on_target(f, m->v[i].source_dev, ret_part, 0);
			*ret_source = m->v[i].source;
		}
	return on;
}

static int refuse(struct diags *d, const struct flash *f, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int refuse(struct diags *d, const struct flash *f, const char *fmt, ...) {
	va_list ap;
	va_start(ap, fmt);
	_cleanup_free_ char *why = xvasprintf(fmt, ap);
	va_end(ap);
	diag_error(d, NULL, "refusing '%s': %s", f->target, why);
	return FLASH_REFUSED;
}

static int check_image_and_system(const struct flash *f, const struct mounts *m, struct diags *d) {
	const char *part = NULL, *source = NULL;
	enum on_target on = file_on_target(f, f->image_dev, m, &part, &source);
	if (on != ON_NONE) {
		_cleanup_free_ char *who = on_target_subject(f, on, part, source);
		return refuse(d, f, "%s holds the image '%s'", who, f->image);
	}
	for (size_t i = 0; i < ARRAY_SIZE(system_paths); i++) {
		struct stat st;
		if (stat(system_paths[i], &st) < 0)
			continue;
		part = source = NULL;
		on = file_on_target(f, st.st_dev, m, &part, &source);
		if (on != ON_NONE) {
			_cleanup_free_ char *who = on_target_subject(f, on, part, source);
			return refuse(d, f, "%s holds the running system ('%s')", who, system_paths[i]);
		}
	}
	return 0;
}

static int check_mounted(const struct flash *f, const struct mounts *m, struct diags *d) {
	for (size_t i = 0; i < m->n; i++) {
		const char *part = NULL;
		enum on_target on = dev_on_target(f, m->v[i].dev, &part, 0);
		if (on == ON_NONE)
			on = dev_on_target(f, m->v[i].source_dev, &part, 0);
		if (on != ON_NONE) {
			_cleanup_free_ char *who = on_target_subject(f, on, part, m->v[i].source);
			return refuse(d, f, "%s is mounted on '%s'", who, m->v[i].where);
		}
	}
	return 0;
}

/* "/dev/sdb2  partition  1048572  0  -2", or a swap file. */
static int check_swap(const struct flash *f, struct diags *d) {
	FILE *fp = fopen("/proc/swaps", "re");
	if (!fp)
		return 0;       /* no swap support at all */
	char *line = NULL;
	size_t len = 0;
	int r = 0;
	while (r == 0 && getline(&line, &len, fp) > 0) {
		char name[PATH_MAX];
		struct stat st;
		if (sscanf(line, "%4095s", name) != 1 || streq(name, "Filename"))
			continue;
		unescape_octal(name);
		if (stat(name, &st) < 0)
			continue;
		const char *part = NULL;
		enum on_target on = dev_on_target(f, S_ISBLK(st.st_mode) ? st.st_rdev : st.st_dev, &part, 0);
		if (on != ON_NONE) {
			_cleanup_free_ char *who = on_target_subject(f, on, part, name);
			r = refuse(d, f, "%s is in use as swap", who);
		}
	}
	free(line);
	fclose(fp);
	return r;
}

/* A device-mapper or md device on the target lists itself under holders/. */
static int check_holders_of(const struct flash *f, const char *name, enum on_target on, struct diags *d) {
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "/sys/class/block/%s/holders", name);
	DIR *dp = opendir(dir);
	if (!dp)
		return 0;
	struct dirent *e;
	int r = 0;
	while (r == 0 && (e = readdir(dp))) {
		if (e->d_name[0] == '.')
			continue;
		_cleanup_free_ char *dm = sysfs_read("/sys/class/block/%s/dm/name", e->d_name);
		_cleanup_free_ char *md = sysfs_read("/sys/class/block/%s/md/level", e->d_name);
		_cleanup_free_ char *what = dm ? xasprintf(" (device-mapper '%s')", dm) : md ? xasprintf(" (md %s)", md) : xstrdup("");
		_cleanup_free_ char *who = on_target_subject(f, on, name, NULL);
		r = refuse(d, f, "%s is in use by '%s'%s", who, e->d_name, what);
	}
	closedir(dp);
	return r;
}

static int check_holders(const struct flash *f, struct diags *d) {
	int r = check_holders_of(f, f->name, ON_ITSELF, d);
	if (r == 0 && f->is_partition)
		r = check_holders_of(f, f->disk, ON_DISK, d);
	for (size_t i = 0; r == 0 && i < f->n_parts; i++)
		r = check_holders_of(f, f->parts[i].name, ON_PARTITION, d);
	return r;
}

int flash_check(struct flash *f, struct diags *d) {
	if (f->is_file && !f->create && f->file_dev == f->image_dev && f->file_ino == f->image_ino)
		return refuse(d, f, "it is the image itself");
	if (f->is_file && !f->allow_file)
		return refuse(d, f, "a regular file, not a block device (--allow-file writes to a file)");
	if (f->is_file)
		return 0;
	if (!f->is_block)
		return refuse(d, f, "%s, not a block device", S_ISDIR(f->target_mode) ? "a directory" : S_ISCHR(f->target_mode) ? "a character device" : "a special file");
	struct mounts m = { 0 };
	int r = mounts_load(&m, d);
	if (r == 0)
		r = check_image_and_system(f, &m, d);
	if (r == 0)
		r = check_mounted(f, &m, d);
	if (r == 0)
		r = check_swap(f, d);
	if (r == 0)
		r = check_holders(f, d);
	if (r == 0 && f->size < f->image_size)
		r = refuse(d, f, "too small: %llu bytes, the image has %llu", (unsigned long long)f->size, (unsigned long long)f->image_size);
	mounts_release(&m);
	return r;
}

/* ---- writing and reading back ---- */

/* F_SETFL refuses O_DIRECT with EINVAL exactly where open(2) would (tmpfs,
 * some FUSE filesystems); toggling it also lets the unaligned tail of the
 * image go through the page cache. */
static int set_direct(int fd, bool on) {
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0)
		return -errno;
	fl = on ? fl | O_DIRECT : fl & ~O_DIRECT;
	return fcntl(fd, F_SETFL, fl) < 0 ? -errno : 0;
}

/* A file to create: its directory must take it. Made only once the write
 * is confirmed (flash_create), so that a refusal leaves nothing behind. */
static int check_new_file(const struct flash *f, struct diags *d) {
	const char *slash = strrchr(f->target, '/');
	_cleanup_free_ char *dir = !slash ? xstrdup(".") : slash == f->target ? xstrdup("/") : xstrndup(f->target, (size_t)(slash - f->target));
	struct stat st;
	int r = 0;
	if (stat(dir, &st) < 0)
		r = -errno;
	else if (!S_ISDIR(st.st_mode))
		r = -ENOTDIR;
	else if (access(dir, W_OK | X_OK) < 0)
		r = -errno;
	if (r < 0)
		diag_error(d, NULL, "cannot create '%s': %s", f->target, strerror(-r));
	return r;
}

int flash_create(struct flash *f, struct diags *d) {
	if (!f->create || f->fd >= 0)
		return 0;
	f->fd = open(f->target, O_RDWR | O_CLOEXEC | O_CREAT | O_EXCL, 0666);
	if (f->fd < 0) {
		int r = -errno;
		diag_error(d, NULL, "cannot create '%s': %s", f->target, strerror(errno));
		return r;
	}
	f->created = true;
	f->direct = FLASH_BLOCK_SIZE % f->block == 0 && set_direct(f->fd, true) == 0;
	return 0;
}

int flash_open_target(struct flash *f, struct diags *d) {
	if (f->create)
		return check_new_file(f, d);
	int flags = O_RDWR | O_CLOEXEC;
	if (f->is_block)
		flags |= O_EXCL;        /* block devices only: the kernel's claim, EBUSY while mounted or held */
	f->fd = open(f->target, flags);
	if (f->fd < 0) {
		if (errno == EBUSY)
			return refuse(d, f, "busy: someone else holds it (mounted in another mount namespace, or opened exclusively)");
		int r = -errno;
		diag_error(d, NULL, "cannot open '%s' for writing: %s", f->target, strerror(errno));
		return r;
	}
	struct stat st;
	if (fstat(f->fd, &st) < 0) {
		int r = -errno;
		diag_error(d, NULL, "cannot open '%s' for writing: %s", f->target, strerror(errno));
		return r;
	}
	/* What was checked must be what is open: the path may have changed. */
	if (f->is_block) {
		uint64_t size = 0;
		int lbs = 0;
		if (!S_ISBLK(st.st_mode) || st.st_rdev != f->rdev)
			return refuse(d, f, "it changed since it was checked");
		if (ioctl(f->fd, BLKGETSIZE64, &size) == 0)
			f->size = size;
		if (ioctl(f->fd, BLKSSZGET, &lbs) == 0 && lbs > 0)
			f->block = (unsigned)lbs;
		if (f->size < f->image_size)
			return refuse(d, f, "too small: %llu bytes, the image has %llu", (unsigned long long)f->size, (unsigned long long)f->image_size);
	} else if (!S_ISREG(st.st_mode) || st.st_dev != f->file_dev || st.st_ino != f->file_ino) {
		return refuse(d, f, "it changed since it was checked");
	}
	f->direct = FLASH_BLOCK_SIZE % f->block == 0 && set_direct(f->fd, true) == 0;
	return 0;
}

static void *aligned_buffer(void) {
	void *p = NULL;
	if (posix_memalign(&p, FILE_ALIGN, FLASH_BLOCK_SIZE) != 0)
		die_oom();
	return p;
}

/* pread until `len` bytes or end of file; the count, or -errno. */
static ssize_t pread_full(int fd, void *buf, size_t len, uint64_t off) {
	size_t got = 0;
	while (got < len) {
		ssize_t n = pread(fd, (char *)buf + got, len - got, (off_t)(off + got));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

static int pwrite_all(int fd, const void *buf, size_t len, uint64_t off) {
	size_t done = 0;
	while (done < len) {
		ssize_t n = pwrite(fd, (const char *)buf + done, len - done, (off_t)(off + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -ENOSPC;
		done += (size_t)n;
	}
	return 0;
}

static void no_progress(void *ctx, enum flash_phase phase, uint64_t done, uint64_t total) {
}

static int write_blocks(struct flash *f, void *buf, struct sha256 *md, flash_progress_fn progress, void *ctx, struct diags *d) {
	uint64_t total = f->image_size;
	progress(ctx, FLASH_WRITING, 0, total);
	for (uint64_t off = 0; off < total;) {
		size_t len = total - off < FLASH_BLOCK_SIZE ? (size_t)(total - off) : FLASH_BLOCK_SIZE;
		ssize_t n = pread_full(f->image_fd, buf, len, off);
		if (n < 0) {
			diag_error(d, NULL, "cannot read image '%s': %s", f->image, strerror((int)-n));
			return (int)n;
		}
		if ((size_t)n < len) {
			diag_error(d, NULL, "image '%s' shrank while it was written", f->image);
			return -EIO;
		}
		sha256_update(md, buf, len);
		/* O_DIRECT takes whole logical blocks; a shorter tail goes
		 * through the page cache rather than padding the device. */
		size_t direct_len = f->direct ? len - len % f->block : 0;
		int r = direct_len ? pwrite_all(f->fd, buf, direct_len, off) : 0;
		if (r == -EINVAL && f->direct) {
			/* An alignment stricter than the logical block: the
			 * page cache takes the rest (rewriting this block). */
			f->direct = false;
			direct_len = 0;
			r = 0;
		}
		if (r == 0 && direct_len < len) {
			set_direct(f->fd, false);
			r = pwrite_all(f->fd, (char *)buf + direct_len, len - direct_len, off + direct_len);
		}
		if (r < 0) {
			diag_error(d, NULL, "cannot write '%s' at byte %llu: %s", f->target, (unsigned long long)off, strerror(-r));
			return r;
		}
		off += len;
		progress(ctx, FLASH_WRITING, off, total);
	}
	struct stat st;
	if (fstat(f->image_fd, &st) == 0 && (uint64_t)st.st_size != total) {
		diag_error(d, NULL, "image '%s' changed size while it was written", f->image);
		return -EIO;
	}
	if (fsync(f->fd) < 0) {
		int r = -errno;
		diag_error(d, NULL, "cannot flush '%s': %s", f->target, strerror(errno));
		return r;
	}
	return 0;
}

int flash_write(struct flash *f, flash_progress_fn progress, void *ctx, struct diags *d) {
	void *buf = aligned_buffer();
	struct sha256 *md = sha256_new();
	int r = write_blocks(f, buf, md, progress ? progress : no_progress, ctx, d);
	sha256_final_hex(md, f->sha256);
	free(buf);
	if (r < 0 && f->created && unlink(f->target) == 0)
		f->created = false;
	return r;
}

/* Reads [off, off + len) of the target into buf; with O_DIRECT the read is
 * rounded up to whole blocks (the device is at least that large). */
static ssize_t read_back(struct flash *f, void *buf, size_t len, uint64_t off) {
	size_t want = f->direct ? (len + f->block - 1) / f->block * f->block : len;
	ssize_t n = pread_full(f->fd, buf, want, off);
	if (n == -EINVAL && f->direct && set_direct(f->fd, false) == 0) {
		f->direct = false;      /* as in write_blocks; the cache was dropped before */
		n = pread_full(f->fd, buf, len, off);
	}
	return n < 0 ? n : n < (ssize_t)len ? n : (ssize_t)len;
}

/* The first byte where image and target differ, or UINT64_MAX. */
static int first_difference(struct flash *f, void *dev_buf, uint64_t *ret, struct diags *d) {
	void *img_buf = aligned_buffer();
	int r = 0;
	*ret = UINT64_MAX;
	for (uint64_t off = 0; off < f->image_size && *ret == UINT64_MAX;) {
		size_t len = f->image_size - off < FLASH_BLOCK_SIZE ? (size_t)(f->image_size - off) : FLASH_BLOCK_SIZE;
		ssize_t a = pread_full(f->image_fd, img_buf, len, off);
		ssize_t b = read_back(f, dev_buf, len, off);
		if (a < 0 || b < 0) {
			r = a < 0 ? (int)a : (int)b;
			diag_error(d, NULL, "cannot read '%s' at byte %llu: %s", a < 0 ? f->image : f->target, (unsigned long long)off, strerror(-r));
			break;
		}
		size_t n = (size_t)(a < b ? a : b);
		for (size_t i = 0; i < n; i++)
			if (((unsigned char *)img_buf)[i] != ((unsigned char *)dev_buf)[i]) {
				*ret = off + i;
				break;
			}
		if (*ret == UINT64_MAX && n < len)
			*ret = off + n;
		off += len;
	}
	free(img_buf);
	return r;
}

static int read_back_sha256(struct flash *f, void *buf, flash_progress_fn progress, void *ctx, char hex[SHA256_HEX_LEN + 1], struct diags *d) {
	struct sha256 *md = sha256_new();
	uint64_t total = f->image_size;
	int r = 0;
	progress(ctx, FLASH_VERIFYING, 0, total);
	for (uint64_t off = 0; off < total;) {
		size_t len = total - off < FLASH_BLOCK_SIZE ? (size_t)(total - off) : FLASH_BLOCK_SIZE;
		ssize_t n = read_back(f, buf, len, off);
		if (n < 0) {
			r = (int)n;
			diag_error(d, NULL, "cannot read back '%s' at byte %llu: %s", f->target, (unsigned long long)off, strerror(-r));
			break;
		}
		if ((size_t)n < len) {
			r = -EIO;
			diag_error(d, NULL, "cannot read back '%s': it ends at byte %llu", f->target, (unsigned long long)(off + (uint64_t)n));
			break;
		}
		sha256_update(md, buf, len);
		off += len;
		progress(ctx, FLASH_VERIFYING, off, total);
	}
	sha256_final_hex(md, hex);
	return r;
}

int flash_verify(struct flash *f, flash_progress_fn progress, void *ctx, uint64_t *ret_offset, struct diags *d) {
	/* Read the device, not what the page cache kept of the write. */
	if (f->direct && set_direct(f->fd, true) < 0)
		f->direct = false;
	if (f->is_block && ioctl(f->fd, BLKFLSBUF, 0) < 0 && !f->direct)
		diag_warning(d, NULL, "cannot drop the cached pages of '%s' (%s): the read-back may come from memory", f->target, strerror(errno));
	if (f->is_file)
		posix_fadvise(f->fd, 0, 0, POSIX_FADV_DONTNEED);
	void *buf = aligned_buffer();
	char hex[SHA256_HEX_LEN + 1];
	int r = read_back_sha256(f, buf, progress ? progress : no_progress, ctx, hex, d);
	if (r == 0 && !streq(hex, f->sha256)) {
		uint64_t at;
		r = first_difference(f, buf, &at, d);
		if (r == 0) {
			if (at == UINT64_MAX)
				diag_error(d, NULL, "'%s' reads back differently from the image (sha256 %s), yet the same on a second read: the device is unreliable", f->target, hex);
			else
				diag_error(d, NULL, "'%s' reads back differently from the image: first difference at byte %llu", f->target, (unsigned long long)at);
			*ret_offset = at;
			r = FLASH_MISMATCH;
		}
	}
	free(buf);
	return r;
}
