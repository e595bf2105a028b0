#include "disk.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/blkpg.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "gpt.h"
#include "log.h"
#include "paths.h"

enum { MAX_MOUNTS = 4096 };

struct mount_entry {
	unsigned major, minor;
	char where[256];
};

struct mounts {
	struct mount_entry *v;
	size_t n;
};

static void mounts_release(struct mounts *m)
{
	free(m->v);
	m->v = NULL;
	m->n = 0;
}

/* /proc/self/mountinfo: "36 35 98:0 /root /mnt rw,... - ext4 /dev/vda1 rw". */
static int mounts_load(struct mounts *m, struct agent_err *e)
{
	char path[AGENT_PATH_MAX], line[8192];
	FILE *f;
	int r = rooted(path, sizeof path, "/proc/self/mountinfo");

	m->v = NULL;
	m->n = 0;
	if (r < 0)
		return err_set(e, r, "path too long");
	f = fopen(path, "re");
	if (!f) {
		/* A fake root for tests need not have /proc; the live system must. */
		if (root_is_fake() && errno == ENOENT)
			return 0;
		return err_set(e, -errno, "cannot read /proc/self/mountinfo: %s", strerror(errno));
	}
	m->v = calloc(MAX_MOUNTS, sizeof *m->v);
	if (!m->v) {
		fclose(f);
		return err_set(e, -ENOMEM, "out of memory");
	}
	while (m->n < MAX_MOUNTS && fgets(line, sizeof line, f)) {
		struct mount_entry *me = &m->v[m->n];
		char where[256];
		if (sscanf(line, "%*s %*s %u:%u %*s %255s", &me->major, &me->minor, where) != 3)
			continue;
		snprintf(me->where, sizeof me->where, "%s", where);
		m->n++;
	}
	fclose(f);
	return 0;
}

static int sys_block_path(char *buf, size_t n, const char *disk, const char *rest)
{
	char abs[AGENT_PATH_MAX];
	int len = snprintf(abs, sizeof abs, "/sys/block/%s%s%s", disk, rest ? "/" : "", rest ? rest : "");

	if (len < 0 || (size_t)len >= sizeof abs)
		return -ENAMETOOLONG;
	return rooted(buf, n, abs);
}

static int read_dev(const char *path, unsigned *major, unsigned *minor)
{
	char buf[64];
	int r = read_small(path, buf, sizeof buf);

	if (r < 0)
		return r;
	return sscanf(buf, "%u:%u", major, minor) == 2 ? 0 : -EINVAL;
}

/* The partitions of a disk as sysfs lists them: child directories with a
 * "partition" file. Calls fn(child, number) for each; stops when fn != 0. */
typedef int (*part_fn)(const char *disk, const char *child, unsigned number, void *userdata);

static int for_each_partition(const char *disk, part_fn fn, void *userdata)
{
	char dir[AGENT_PATH_MAX];
	struct dirent **names = NULL;
	int count, r = 0;

	if (sys_block_path(dir, sizeof dir, disk, NULL) < 0)
		return -ENAMETOOLONG;
	count = scandir(dir, &names, NULL, alphasort);
	if (count < 0)
		return -errno;
	for (int i = 0; i < count; i++) {
		char part[AGENT_PATH_MAX], rel[600];
		uint64_t number;
		if (r == 0 && names[i]->d_name[0] != '.') {
			snprintf(rel, sizeof rel, "%s/partition", names[i]->d_name);
			if (sys_block_path(part, sizeof part, disk, rel) == 0 &&
			    read_u64(part, &number) == 0)
				r = fn(disk, names[i]->d_name, (unsigned)number, userdata);
		}
		free(names[i]);
	}
	free(names);
	return r;
}

struct mounted_query {
	const struct mounts *m;
	char found[600];
};

static const char *mounted_where(const struct mounts *m, unsigned major, unsigned minor)
{
	for (size_t i = 0; i < m->n; i++)
		if (m->v[i].major == major && m->v[i].minor == minor)
			return m->v[i].where;
	return NULL;
}

static int partition_mounted(const char *disk, const char *child, unsigned number, void *userdata)
{
	struct mounted_query *q = userdata;
	char path[AGENT_PATH_MAX], rel[600];
	unsigned major, minor;
	const char *where;

	snprintf(rel, sizeof rel, "%s/dev", child);
	if (sys_block_path(path, sizeof path, disk, rel) < 0 || read_dev(path, &major, &minor) < 0)
		return 0;
	where = mounted_where(q->m, major, minor);
	if (!where)
		return 0;
	snprintf(q->found, sizeof q->found, "%s is mounted on %s", child, where);
	return 1;
}

/* "" when nothing of the disk is mounted, else what is. */
static void disk_mounted(const struct mounts *m, const char *disk, char *out, size_t n)
{
	struct mounted_query q = { m, "" };
	char path[AGENT_PATH_MAX];
	unsigned major, minor;
	const char *where;

	out[0] = '\0';
	if (sys_block_path(path, sizeof path, disk, "dev") == 0 && read_dev(path, &major, &minor) == 0 &&
	    (where = mounted_where(m, major, minor))) {
		snprintf(out, n, "%s is mounted on %s", disk, where);
		return;
	}
	if (for_each_partition(disk, partition_mounted, &q) > 0)
		snprintf(out, n, "%s", q.found);
}

static int first_partition(const char *disk, const char *child, unsigned number, void *userdata)
{
	snprintf(userdata, 256, "%s", child);
	return 1;
}

static int is_child(const char *disk, const char *child, unsigned number, void *userdata)
{
	return strcmp(child, userdata) == 0;
}

/* The boot medium's name, the disk part of it: /dev/sr0 -> sr0, /dev/sdb1 -> sdb1. */
static void medium_name(const char *medium, char *out, size_t n)
{
	char real[PATH_MAX];
	const char *base;

	out[0] = '\0';
	if (!medium[0])
		return;
	if (realpath(medium, real))
		medium = real;
	base = strrchr(medium, '/');
	if (snprintf(out, n, "%s", base ? base + 1 : medium) >= (int)n)
		out[0] = '\0'; /* no sysfs name is that long */
}

/* Whether `disk` is the medium or holds it as a partition. */
static bool is_medium(const char *disk, const char *medium)
{
	char copy[256];

	if (!medium[0])
		return false;
	if (strcmp(disk, medium) == 0)
		return true;
	snprintf(copy, sizeof copy, "%s", medium);
	return for_each_partition(disk, is_child, copy) > 0;
}

static bool has_prefix(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

static const char *skipped_kind(const char *name)
{
	static const char *const kinds[] = { "loop", "ram", "sr", "zram", "dm-", "md" };

	for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++)
		if (has_prefix(name, kinds[i]))
			return kinds[i];
	return NULL;
}

static void sysfs_geometry(struct disk_target *t)
{
	char path[AGENT_PATH_MAX];
	uint64_t v;

	t->sector = 512;
	if (sys_block_path(path, sizeof path, t->name, "queue/logical_block_size") == 0 &&
	    read_u64(path, &v) == 0 && v >= 512 && v <= 4096)
		t->sector = (unsigned)v;
}

static void append(char *buf, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void append(char *buf, size_t n, const char *fmt, ...)
{
	size_t len = strlen(buf);
	va_list ap;

	if (len + 1 >= n)
		return;
	va_start(ap, fmt);
	vsnprintf(buf + len, n - len, fmt, ap);
	va_end(ap);
}

/* A hybrid ISO written to a USB stick that is neither removable nor mounted
 * (no large files were needed) would otherwise look like any other disk:
 * an ISO 9660 volume descriptor at byte 32769 marks boot media. */
static void looks_like_media(const char *name, char *why, size_t n)
{
	char abs[300], path[AGENT_PATH_MAX], buf[5];
	int fd;

	snprintf(abs, sizeof abs, "/dev/%s", name);
	if (rooted(path, sizeof path, abs) < 0)
		return;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(why, n, "cannot open %s: %s", abs, strerror(errno));
		return;
	}
	if (pread(fd, buf, sizeof buf, 32769) == (ssize_t)sizeof buf && memcmp(buf, "CD001", 5) == 0)
		snprintf(why, n, "holds an ISO 9660 file system: boot media");
	close(fd);
}

static int choose_auto(const struct install_conf *c, const struct mounts *m, struct disk_target *t,
		       struct agent_err *e)
{
	char dir[AGENT_PATH_MAX], medium[256], why_not[1024] = "", not_disks[1024] = "";
	struct dirent **names = NULL;
	int count, r = -ENODEV;

	medium_name(c->medium, medium, sizeof medium);
	if (rooted(dir, sizeof dir, "/sys/block") < 0)
		return err_set(e, -ENAMETOOLONG, "path too long");
	count = scandir(dir, &names, NULL, alphasort);
	if (count < 0)
		return err_set(e, -errno, "cannot list /sys/block: %s", strerror(errno));
	for (int i = 0; i < count; i++) {
		const char *name = names[i]->d_name;
		char path[AGENT_PATH_MAX], why[700] = "";
		uint64_t v, size = 0;

		if (r == 0 || name[0] == '.')
			goto next;
		if (skipped_kind(name)) {
			append(not_disks, sizeof not_disks, " %s", name);
			goto next;
		} else if (sys_block_path(path, sizeof path, name, "removable") == 0 &&
			   read_u64(path, &v) == 0 && v == 1) {
			snprintf(why, sizeof why, "removable");
		} else if (is_medium(name, medium)) {
			snprintf(why, sizeof why, "the boot medium");
		} else {
			disk_mounted(m, name, why, sizeof why);
			if (!why[0]) {
				if (sys_block_path(path, sizeof path, name, "size") < 0 ||
				    read_u64(path, &v) < 0)
					snprintf(why, sizeof why, "size unknown");
				else if ((size = v * 512) < c->image_size)
					snprintf(why, sizeof why, "%llu bytes, smaller than the image",
						 (unsigned long long)size);
			}
			if (!why[0])
				looks_like_media(name, why, sizeof why);
		}
		if (why[0]) {
			log_step("disk %s: skipped (%s)", name, why);
			append(why_not, sizeof why_not, "%s%s: %s", why_not[0] ? "; " : "", name, why);
			goto next;
		}
		snprintf(t->name, sizeof t->name, "%s", name);
		snprintf(t->display, sizeof t->display, "/dev/%s", name);
		if (rooted(t->path, sizeof t->path, t->display) < 0) {
			r = err_set(e, -ENAMETOOLONG, "path too long");
			goto next;
		}
		t->size = size;
		sysfs_geometry(t);
		/* Only below a fake --root can /dev/<disk> be an image file. */
		{
			struct stat st;
			t->is_file = root_is_fake() && stat(t->path, &st) == 0 && S_ISREG(st.st_mode);
		}
		r = 0;
	next:
		free(names[i]);
	}
	free(names);
	if (not_disks[0])
		log_step("not considered (loop, ram, sr, zram, dm, md):%s", not_disks);
	if (r == -ENODEV)
		return err_set(e, r, "no disk to install on (the image needs %llu bytes)%s%s",
			       (unsigned long long)c->image_size, why_not[0] ? ": " : "", why_not);
	return r;
}

/* The sysfs name of a block device: /sys/dev/block/MAJ:MIN -> .../vdb. */
static int block_name(dev_t rdev, char *name, size_t n, bool *is_partition)
{
	char abs[128], link[AGENT_PATH_MAX], real[PATH_MAX], part[AGENT_PATH_MAX];
	const char *base;

	snprintf(abs, sizeof abs, "/sys/dev/block/%u:%u", major(rdev), minor(rdev));
	if (rooted(link, sizeof link, abs) < 0 || !realpath(link, real))
		return -ENOENT;
	base = strrchr(real, '/');
	if (snprintf(name, n, "%s", base ? base + 1 : real) >= (int)n ||
	    snprintf(part, sizeof part, "%s/partition", real) >= (int)sizeof part)
		return -ENAMETOOLONG;
	*is_partition = access(part, F_OK) == 0;
	return 0;
}

static int choose_given(const struct install_conf *c, struct disk_target *t, struct agent_err *e)
{
	struct stat st;
	bool is_partition = false;
	char path[AGENT_PATH_MAX];
	uint64_t v;

	snprintf(t->display, sizeof t->display, "%s", c->device);
	snprintf(t->path, sizeof t->path, "%s", c->device);
	if (stat(t->path, &st) < 0)
		return err_set(e, -errno, "cannot use %s: %s", t->display, strerror(errno));
	if (S_ISREG(st.st_mode)) {
		t->is_file = true;
		t->size = (uint64_t)st.st_size;
		t->sector = 0;
		return 0;
	}
	if (!S_ISBLK(st.st_mode))
		return err_set(e, -ENOTBLK, "%s is not a block device", t->display);
	if (block_name(st.st_rdev, t->name, sizeof t->name, &is_partition) < 0)
		return err_set(e, -ENOENT, "%s: no /sys/dev/block/%u:%u for it", t->display,
			       major(st.st_rdev), minor(st.st_rdev));
	if (is_partition)
		return err_set(e, -EINVAL, "%s is a partition (%s), not a whole disk", t->display, t->name);
	if (sys_block_path(path, sizeof path, t->name, "size") < 0 || read_u64(path, &v) < 0)
		return err_set(e, -EIO, "cannot read the size of %s from /sys/block/%s/size",
			       t->display, t->name);
	t->size = v * 512;
	sysfs_geometry(t);
	return 0;
}

static int check_blank(const struct install_conf *c, const struct disk_target *t, struct agent_err *e)
{
	char first[256] = "";
	const char *what = "";
	int fd, r;

	if (t->name[0] && for_each_partition(t->name, first_partition, first) > 0) {
		log_step("%s: has partition %s", t->display, first);
		what = "partitions";
	}
	fd = open(t->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return err_set(e, -errno, "cannot open %s: %s", t->display, strerror(errno));
	r = disk_label_probe(fd, t->sector, &what);
	close(fd);
	if (r < 0)
		return err_set(e, r, "cannot read %s: %s", t->display, strerror(-r));
	if (r > 0)
		log_step("%s: has %s", t->display, what);
	if (r == 0 && !first[0])
		return 0;
	if (c->wipe) {
		log_step("%s: already has partitions; overwriting them (install.wipe)", t->display);
		return 0;
	}
	return err_set(e, -EEXIST, "%s already has partitions (set install.wipe: true to overwrite it)",
		       t->display);
}

int disk_choose(const struct install_conf *c, struct disk_target *t, struct agent_err *e)
{
	struct mounts m;
	char medium[256], why[700];
	int r;

	memset(t, 0, sizeof *t);
	r = mounts_load(&m, e);
	if (r < 0)
		return r;
	if (strcmp(c->device, "auto") == 0)
		r = choose_auto(c, &m, t, e);
	else
		r = choose_given(c, t, e);
	if (r < 0)
		goto out;
	log_step("target %s: %llu bytes%s", t->display, (unsigned long long)t->size,
		 t->is_file ? " (an image file)" : "");
	if (t->name[0]) {
		medium_name(c->medium, medium, sizeof medium);
		if (is_medium(t->name, medium)) {
			r = err_set(e, -EBUSY, "%s is the boot medium (%s)", t->display, c->medium);
			goto out;
		}
		disk_mounted(&m, t->name, why, sizeof why);
		if (why[0]) {
			r = err_set(e, -EBUSY, "%s is in use: %s", t->display, why);
			goto out;
		}
	}
	if (t->size < c->image_size) {
		r = err_set(e, -ENOSPC, "%s is too small: %llu bytes, the image needs %llu bytes",
			    t->display, (unsigned long long)t->size, (unsigned long long)c->image_size);
		goto out;
	}
	r = check_blank(c, t, e);
out:
	mounts_release(&m);
	return r;
}

static void sleep_seconds(double s)
{
	struct timespec ts = { (time_t)s, (long)((s - (double)(time_t)s) * 1e9) };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

int disk_reread(const struct disk_target *t, struct agent_err *e)
{
	static const double waits[] = { 0, 1, 2, 4 };
	int fd, r = 0;

	fd = open(t->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return err_set(e, -errno, "cannot open %s: %s", t->display, strerror(errno));
	for (size_t i = 0; i < sizeof waits / sizeof *waits; i++) {
		sleep_seconds(waits[i]);
		if (ioctl(fd, BLKRRPART) == 0) {
			r = 0;
			break;
		}
		r = -errno;
		log_step("re-reading the partition table of %s failed: %s", t->display, strerror(errno));
	}
	close(fd);
	if (r < 0)
		return err_set(e, r, "cannot re-read the partition table of %s: %s", t->display, strerror(-r));
	return 0;
}

int disk_add_partition(const struct disk_target *t, unsigned number, uint64_t start, uint64_t length,
		       struct agent_err *e)
{
	struct blkpg_partition part = {
		.start = (long long)start,
		.length = (long long)length,
		.pno = (int)number,
	};
	struct blkpg_ioctl_arg arg = {
		.op = BLKPG_ADD_PARTITION,
		.datalen = sizeof part,
		.data = &part,
	};
	int fd, r = 0;

	fd = open(t->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return err_set(e, -errno, "cannot open %s: %s", t->display, strerror(errno));
	if (ioctl(fd, BLKPG, &arg) < 0)
		r = err_set(e, -errno, "cannot add partition %u of %s: %s", number, t->display, strerror(errno));
	close(fd);
	return r;
}

struct find_query {
	unsigned number;
	char child[256];
};

static int find_number(const char *disk, const char *child, unsigned number, void *userdata)
{
	struct find_query *q = userdata;

	if (number != q->number)
		return 0;
	snprintf(q->child, sizeof q->child, "%s", child);
	return 1;
}

int disk_partition_node(const struct disk_target *t, unsigned number, double timeout,
			char *out, size_t n, struct agent_err *e)
{
	double deadline = now_seconds() + timeout;
	struct find_query q = { number, "" };
	char path[AGENT_PATH_MAX], rel[300], dev[300];
	unsigned major, minor;
	struct stat st;

	while (for_each_partition(t->name, find_number, &q) <= 0) {
		if (now_seconds() > deadline)
			return err_set(e, -ETIMEDOUT, "partition %u of %s did not appear in /sys/block/%s "
				       "within %.0f s", number, t->display, t->name, timeout);
		sleep_seconds(0.1);
	}
	snprintf(rel, sizeof rel, "%s/dev", q.child);
	if (sys_block_path(path, sizeof path, t->name, rel) < 0 ||
	    read_dev(path, &major, &minor) < 0)
		return err_set(e, -EIO, "cannot read /sys/block/%s/%s/dev", t->name, q.child);
	snprintf(dev, sizeof dev, "/dev/%s", q.child);
	for (;;) {
		if (rooted(out, n, dev) < 0)
			return err_set(e, -ENAMETOOLONG, "path too long");
		if (stat(out, &st) == 0 && S_ISBLK(st.st_mode) && st.st_rdev == makedev(major, minor))
			return 0;
		if (now_seconds() > deadline)
			break;
		sleep_seconds(0.1);
	}
	/* No devtmpfs node in time: make our own. */
	if (snprintf(out, n, "%s/%s", AGENT_RUN_DIR, q.child) >= (int)n)
		return err_set(e, -ENAMETOOLONG, "path too long");
	mkdir_p(AGENT_RUN_DIR, 0700);
	unlink(out);
	if (mknod(out, S_IFBLK | 0600, makedev(major, minor)) < 0)
		return err_set(e, -errno, "%s did not appear and cannot make %s: %s", dev, out, strerror(errno));
	log_step("%s did not appear; using %s (%u:%u)", dev, out, major, minor);
	return 0;
}
