/* dlws-install: the unattended offline installer that runs inside the live
 * system (base/README.md runs it as LAYOUT_LIVE_AGENT after verifying the
 * payload). It checks the payload again, picks and checks the target disk,
 * streams the OS image onto it, and puts the payload where flatcar-install
 * would (builder/layout.h). The OS image comes from the live system (the
 * boot medium) or, for PXE, from the boot server over http://, checked
 * against install.conf's sha256 as it streams; nothing else is fetched. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "conf.h"
#include "disk.h"
#include "gpt.h"
#include "log.h"
#include "paths.h"
#include "place.h"
#include "stream.h"
#include "util.h"
#include "verify.h"

#ifndef DLWS_VERSION
#define DLWS_VERSION "unknown"
#endif

#define ROOT_MOUNT AGENT_RUN_DIR "/root"
#define OEM_MOUNT AGENT_RUN_DIR "/oem"

/* Seconds to wait for the new partitions in sysfs and /dev. */
enum { PARTITION_TIMEOUT = 10 };
/* flatcar-install zeroes the end of the disk too: old backup GPTs and ZFS
 * labels live there and would outlive the new image otherwise. */
enum { TAIL_ZERO_BYTES = 512 * 1024 };
/* A failed install zeroes the protective MBR, the boot code and the primary
 * GPT (the first MiB: GPT disks start their first partition there or later)
 * and the backup GPT (the last 33 sectors). */
enum { HEAD_ZERO_BYTES = 1024 * 1024, BACKUP_GPT_SECTORS = 33 };

struct opts {
	bool dry_run;
	const char *root;         /* --root: read the live system below this */
	const char *target_root;  /* --target-root: ROOT's files for an image-file target */
	const char *target_oem;   /* --target-oem: OEM's files for an image-file target */
};

/* What a failure must undo: mounts, and a target written to. */
struct install_state {
	bool root, oem;           /* ROOT_MOUNT, OEM_MOUNT are mounted */
	bool wrote;               /* the target was opened for writing */
	struct disk_target target;
	uint64_t image_size;
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: dlws-install [--dry-run] [--root DIR [--target-root DIR] [--target-oem DIR]]\n"
		"\n"
		"Installs the OS image and the payload onto the target disk, as\n"
		"%s says. Run by the live system after it verified the payload.\n"
		"\n"
		"  --dry-run          check the payload and choose the target; write nothing\n"
		"  --root DIR         (tests) read %s, /sys, /proc and /dev below DIR\n"
		"  --target-root DIR  (tests) when the target is an image file: put ROOT's\n"
		"                     files in DIR instead of mounting the partition\n"
		"  --target-oem DIR   (tests) the same for the OEM partition\n"
		"  --help, --version\n",
		LAYOUT_LIVE_INSTALL_CONF, "/usr/share/oem");
}

static void on_damaged(const char *path, const char *reason, void *userdata)
{
	if (path[0] == '/')
		log_error("payload file %s is damaged (%s)", path, reason);
	else
		log_error("payload manifest line %s is malformed", path);
}

/* Zeroes [from, to) of fd. */
static int zero_range(int fd, uint64_t from, uint64_t to, const char *what, const char *display,
		      struct agent_err *e)
{
	static const char zeros[64 * 1024];
	uint64_t off = from;

	while (off < to) {
		size_t n = to - off < sizeof zeros ? (size_t)(to - off) : sizeof zeros;
		ssize_t w = pwrite(fd, zeros, n, (off_t)off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return err_set(e, w < 0 ? -errno : -EIO, "cannot clear %s of %s: %s", what, display,
				       w < 0 ? strerror(errno) : "short write");
		off += (uint64_t)w;
	}
	return 0;
}

static int zero_tail(int fd, uint64_t disk_size, uint64_t image_size, const char *display,
		     struct agent_err *e)
{
	uint64_t off = disk_size > TAIL_ZERO_BYTES ? disk_size - TAIL_ZERO_BYTES : 0;

	if (off < image_size)
		off = image_size;
	return zero_range(fd, off, disk_size, "the end", display, e);
}

/* After a failed install the target holds part of an image, or one that
 * failed its checks, or one without its payload: nothing may boot it (a
 * node that powers on again must not come up half-installed). Only the
 * partition tables and the boot code go: the partitions' contents (the
 * install log on ROOT) stay. */
static int make_unbootable(const struct disk_target *t, uint64_t image_size, struct agent_err *e)
{
	uint64_t gpt = (uint64_t)BACKUP_GPT_SECTORS * (t->sector ? t->sector : 512);
	uint64_t image_end = image_size < t->size ? image_size : t->size;
	int fd, r;

	fd = open(t->path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return err_set(e, -errno, "cannot open %s: %s", t->display, strerror(errno));
	r = zero_range(fd, 0, t->size < HEAD_ZERO_BYTES ? t->size : HEAD_ZERO_BYTES, "the first MiB",
		       t->display, e);
	/* The disk's backup GPT, and the image's where it was written. */
	if (r == 0)
		r = zero_range(fd, t->size > gpt ? t->size - gpt : 0, t->size, "the backup GPT", t->display, e);
	if (r == 0 && image_end < t->size)
		r = zero_range(fd, image_end > gpt ? image_end - gpt : 0, image_end, "the image's backup GPT",
			       t->display, e);
	if (r == 0 && fsync(fd) < 0)
		r = err_set(e, -errno, "cannot sync %s: %s", t->display, strerror(errno));
	close(fd);
	return r;
}

struct fs_try {
	const char *type, *data;
};

static int mount_first(const char *dev, const char *dir, const struct fs_try *tries, size_t n,
		       const char *label, struct agent_err *e)
{
	char why[512] = "";
	size_t len = 0;
	int r;

	r = mkdir_p(dir, 0700);
	if (r < 0)
		return err_set(e, r, "cannot create %s: %s", dir, strerror(-r));
	for (size_t i = 0; i < n; i++) {
		if (mount(dev, dir, tries[i].type, 0, tries[i].data) == 0) {
			log_step("mounted %s (%s, %s%s%s) on %s", dev, label, tries[i].type,
				 tries[i].data ? " " : "", tries[i].data ? tries[i].data : "", dir);
			return 0;
		}
		if (len < sizeof why)
			len += (size_t)snprintf(why + len, sizeof why - len, "%s%s%s%s: %s", len ? "; " : "",
						tries[i].type, tries[i].data ? " " : "",
						tries[i].data ? tries[i].data : "", strerror(errno));
	}
	return err_set(e, -EIO, "cannot mount %s (%s): %s", dev, label, why);
}

static void unmount(const char *dir)
{
	for (int i = 0; i < 20; i++) {
		if (umount2(dir, 0) == 0)
			return;
		if (errno != EBUSY)
			break;
		nanosleep(&(struct timespec){ 0, 200 * 1000 * 1000 }, NULL);
	}
	log_step("cannot unmount %s (%s); detaching it", dir, strerror(errno));
	umount2(dir, MNT_DETACH);
}

/* Where the image is: its own path in the live system, or large/. */
static int locate_image(const char *live, char *path, size_t n, char *display, size_t dn, struct agent_err *e)
{
	char alt[AGENT_PATH_MAX];

	if (rooted(path, n, live) < 0)
		return err_set(e, -ENAMETOOLONG, "path too long");
	if (access(path, R_OK) == 0) {
		snprintf(display, dn, "%s", live);
		return 0;
	}
	if (payload_alt(live, alt, sizeof alt) == 0 && rooted(path, n, alt) == 0 && access(path, R_OK) == 0) {
		snprintf(display, dn, "%s", alt);
		return 0;
	}
	if (payload_alt(live, alt, sizeof alt) == 0)
		return err_set(e, -ENOENT, "the OS image %s is missing (nor is it at %s)", live, alt);
	return err_set(e, -ENOENT, "the OS image %s is missing", live);
}

/* The node of a partition we found in the GPT. The kernel normally has it
 * after BLKRRPART; if it does not (no GPT support in this kernel), we add
 * it ourselves from the table we read. */
static int partition_node(const struct disk_target *t, const struct gpt *g, const struct gpt_part *p,
			  char *node, size_t n, struct agent_err *e)
{
	/* Once the kernel missed one partition it misses them all: don't wait again. */
	static bool kernel_missed;
	int r;

	if (kernel_missed) {
		log_step("adding partition %u of %s from the GPT (BLKPG)", p->number, t->display);
	} else {
		r = disk_partition_node(t, p->number, PARTITION_TIMEOUT, node, n, e);
		if (r != -ETIMEDOUT)
			return r;
		kernel_missed = true;
		log_step("%s; adding it from the GPT (BLKPG)", e->msg);
	}
	r = disk_add_partition(t, p->number, p->first_lba * g->sector,
			       (p->last_lba - p->first_lba + 1) * g->sector, e);
	if (r == 0)
		r = disk_partition_node(t, p->number, PARTITION_TIMEOUT, node, n, e);
	return r;
}

static int install(const struct opts *o, struct install_state *ms, char *done_on, size_t done_n,
		   struct agent_err *e)
{
	char conf_path[AGENT_PATH_MAX], image[AGENT_PATH_MAX], image_display[AGENT_PATH_MAX];
	char node[AGENT_PATH_MAX];
	const struct gpt_part *root_part, *oem_part, *efi_part;
	struct install_conf c;
	struct disk_target t;
	struct stream_source src;
	struct stream_result sr = { 0 };
	struct stream *st = NULL;
	struct place_stats rootfs = { 0 }, images = { 0 };
	struct gpt g = GPT_INIT;
	struct manifest *m = NULL;
	const char *root_dir;
	unsigned files = 0, damaged = 0;
	int fd = -1, r;

	/* 1. What the builder asked for. */
	if (rooted(conf_path, sizeof conf_path, LAYOUT_LIVE_INSTALL_CONF) < 0)
		return err_set(e, -ENAMETOOLONG, "path too long");
	r = conf_load(conf_path, LAYOUT_LIVE_INSTALL_CONF, &c, e);
	if (r < 0)
		return r;
	log_step("install.conf: device %s, wipe %s, image %s (%llu bytes%s%s)%s%s", c.device, c.wipe ? "yes" : "no",
		 c.image, (unsigned long long)c.image_size, c.image_sha256[0] ? ", sha256 " : "", c.image_sha256,
		 c.medium[0] ? ", boot medium " : "", c.medium);

	/* 2. The payload, checked again: nothing is installed from a damaged medium. */
	m = manifest_new();
	if (!m)
		return err_set(e, -ENOMEM, "out of memory");
	r = manifest_verify(m, on_damaged, NULL, &files, &damaged, e);
	if (r == -EBADMSG)
		r = err_set(e, r, "%u of %u payload files are damaged; nothing was installed", damaged, files);
	if (r < 0)
		goto out;
	log_step("payload verified: %u files", files);
	if (c.image_is_url) {
		snprintf(image, sizeof image, "%s", c.image);
		snprintf(image_display, sizeof image_display, "%s", c.image);
	} else {
		r = locate_image(c.image, image, sizeof image, image_display, sizeof image_display, e);
		if (r < 0)
			goto out;
		if (!manifest_has(m, image_display) && !c.image_sha256[0])
			log_step("warning: the OS image %s is neither in the payload manifest nor has a sha256 in "
				 "install.conf (not verified)", image_display);
	}

	/* 3. The target: every check passes before it is opened for writing. */
	r = disk_choose(&c, &t, e);
	if (r < 0)
		goto out;
	snprintf(done_on, done_n, "%s", t.display);
	if (t.is_file && !o->dry_run && !o->target_root) {
		r = err_set(e, -EINVAL, "%s is a regular file, not a disk: --target-root DIR is needed", t.display);
		goto out;
	}
	if (!t.is_file && (o->target_root || o->target_oem)) {
		r = err_set(e, -EINVAL, "--target-root and --target-oem are only for image-file targets");
		goto out;
	}
	if (o->dry_run) {
		log_step("dry run: would write %s (%llu bytes) to %s", image_display,
			 (unsigned long long)c.image_size, t.display);
		goto out;
	}

	/* 4. The image: its start first, so that an image that cannot be read or
	 * fetched leaves the target untouched. O_EXCL on a block device fails if
	 * anything has it open exclusively (a mounted partition, LVM, md). */
	src = (struct stream_source){
		.image = image, .is_url = c.image_is_url, .display = image_display,
		.sha256 = c.image_sha256[0] ? c.image_sha256 : NULL, .size = c.image_size,
	};
	r = stream_open(&src, &st, e);
	if (r < 0)
		goto out;
	fd = open(t.path, O_WRONLY | O_CLOEXEC | (t.is_file ? 0 : O_EXCL));
	if (fd < 0) {
		int err = errno;
		r = err_set(e, -err, "cannot open %s for writing: %s%s", t.display, strerror(err),
			    err == EBUSY ? " (something holds it: a mounted partition, LVM, md?)" : "");
		goto out;
	}
	ms->wrote = true;
	ms->target = t;
	ms->image_size = c.image_size;
	r = zero_tail(fd, t.size, c.image_size, t.display, e);
	if (r == 0)
		r = stream_copy(st, fd, t.display, &sr, e);
	stream_free(st);
	st = NULL;
	if (close(fd) < 0 && r == 0)
		r = err_set(e, -errno, "cannot write %s: %s", t.display, strerror(errno));
	fd = -1;
	if (r < 0)
		goto out;
	log_step("wrote %llu bytes to %s in %.2f s (%.1f MB/s, %s)", (unsigned long long)sr.bytes, t.display,
		 sr.seconds, sr.seconds > 0 ? (double)sr.bytes / 1e6 / sr.seconds : 0.0, sr.filter);
	log_step("read %llu bytes of the OS image %s%s%s%s: sha256 %s%s", (unsigned long long)sr.read,
		 c.image_is_url ? "from " : "", image_display, sr.client[0] ? " with " : "", sr.client, sr.sha256,
		 c.image_sha256[0] ? ", as install.conf expects" : " (install.conf gives none to check)");
	if (!t.is_file) {
		r = disk_reread(&t, e);
		if (r < 0)
			goto out;
		log_step("re-read the partition table of %s", t.display);
	}

	/* 5. The partitions, by GPT name. */
	fd = open(t.path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		r = err_set(e, -errno, "cannot open %s: %s", t.display, strerror(errno));
		goto out;
	}
	r = gpt_read(fd, t.is_file ? 0 : t.sector, &g, e);
	close(fd);
	fd = -1;
	if (r < 0) {
		char why[sizeof e->msg];
		snprintf(why, sizeof why, "%s", e->msg);
		r = err_set(e, r, "the image written to %s: %s", t.display, why);
		goto out;
	}
	root_part = gpt_find(&g, LAYOUT_PART_ROOT);
	oem_part = gpt_find(&g, LAYOUT_PART_OEM);
	efi_part = gpt_find(&g, LAYOUT_PART_EFI);
	log_step("partitions: %s=%d %s=%d %s=%d (of %zu)", LAYOUT_PART_EFI, efi_part ? (int)efi_part->number : -1,
		 LAYOUT_PART_OEM, oem_part ? (int)oem_part->number : -1, LAYOUT_PART_ROOT,
		 root_part ? (int)root_part->number : -1, g.n);
	if (!root_part) {
		r = err_set(e, -ENOENT, "the image written to %s has no partition named %s", t.display,
			    LAYOUT_PART_ROOT);
		goto out;
	}
	if (t.is_file) {
		root_dir = o->target_root;
		log_step("%s is an image file: writing %s's files to %s", t.display, LAYOUT_PART_ROOT, root_dir);
	} else {
		static const struct fs_try root_fs[] = {
			{ "ext4", NULL }, { "btrfs", "subvol=root" }, { "btrfs", NULL },
		};
		r = partition_node(&t, &g, root_part, node, sizeof node, e);
		if (r == 0)
			r = mount_first(node, ROOT_MOUNT, root_fs, sizeof root_fs / sizeof *root_fs,
					LAYOUT_PART_ROOT, e);
		if (r < 0)
			goto out;
		ms->root = true;
		root_dir = ROOT_MOUNT;
	}

	/* 6. The payload on ROOT (and OEM). */
	r = place_user_data(root_dir, e);
	if (r == -ENOENT) {
		log_step("no cloud-config in the payload (%s)", LAYOUT_LIVE_CLOUD_CONFIG);
		r = 0;
	} else if (r == 0) {
		log_step("installed %s as /%s (0600)", LAYOUT_LIVE_CLOUD_CONFIG, LAYOUT_USER_DATA);
	}
	if (r == 0)
		r = place_rootfs(root_dir, m, &rootfs, e);
	if (r < 0)
		goto out;
	log_step("installed the payload rootfs: %u files (%llu bytes), %u links, %u new directories",
		 rootfs.files, (unsigned long long)rootfs.bytes, rootfs.links, rootfs.dirs);
	r = place_images(root_dir, m, &images, e);
	if (r < 0)
		goto out;
	log_step("installed %u container images (%llu bytes)", images.files, (unsigned long long)images.bytes);
	if (ignition_present()) {
		const char *oem_dir = o->target_oem;
		if (!oem_part) {
			r = err_set(e, -ENOENT, "the payload has an Ignition config but the image has no "
				    "partition named %s", LAYOUT_PART_OEM);
			goto out;
		}
		if (t.is_file && !oem_dir) {
			r = err_set(e, -EINVAL, "%s is an image file: --target-oem DIR is needed for the "
				    "Ignition config", t.display);
			goto out;
		}
		if (!t.is_file) {
			static const struct fs_try oem_fs[] = {
				{ "ext4", NULL }, { "btrfs", NULL }, { "vfat", NULL },
			};
			r = partition_node(&t, &g, oem_part, node, sizeof node, e);
			if (r == 0)
				r = mount_first(node, OEM_MOUNT, oem_fs, sizeof oem_fs / sizeof *oem_fs,
						LAYOUT_PART_OEM, e);
			if (r < 0)
				goto out;
			ms->oem = true;
			oem_dir = OEM_MOUNT;
		}
		r = place_ignition(oem_dir, e);
		if (r < 0)
			goto out;
		log_step("installed %s as %s on %s (0600)", LAYOUT_LIVE_IGNITION, LAYOUT_IGNITION, LAYOUT_PART_OEM);
	}
	log_step("writing this log to /%s on %s", LAYOUT_INSTALL_LOG, LAYOUT_PART_ROOT);
	r = place_log(root_dir, e);
out:
	stream_free(st);
	gpt_release(&g);
	manifest_free(m);
	if (fd >= 0)
		close(fd);
	return r;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "dry-run", no_argument, NULL, 'n' },
		{ "root", required_argument, NULL, 'R' },
		{ "target-root", required_argument, NULL, 'T' },
		{ "target-oem", required_argument, NULL, 'O' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct opts o = { 0 };
	struct install_state ms = { 0 };
	struct agent_err e = { "" };
	char done_on[AGENT_PATH_MAX] = "";
	int c, r;

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'n': o.dry_run = true; break;
		case 'R': o.root = optarg; break;
		case 'T': o.target_root = optarg; break;
		case 'O': o.target_oem = optarg; break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("dlws-install %s\n", DLWS_VERSION); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "dlws-install: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	if ((o.target_root || o.target_oem) && !o.root) {
		fprintf(stderr, "dlws-install: --target-root and --target-oem need --root (they are for tests)\n");
		return 2;
	}
	umask(022);
	root_set(o.root);
	log_step("dlws-install %s%s%s%s", DLWS_VERSION, o.dry_run ? ", dry run" : "",
		 o.root ? ", live system at " : "", o.root ? o.root : "");

	r = install(&o, &ms, done_on, sizeof done_on, &e);
	if (r < 0) {
		log_error("%s", e.msg);
		if (ms.wrote) {
			struct agent_err e2;
			if (make_unbootable(&ms.target, ms.image_size, &e2) < 0)
				log_step("the install failed, and %s could not be made unbootable: %s",
					 ms.target.display, e2.msg);
			else
				log_step("the install failed: made %s unbootable (zeroed its first MiB and its "
					 "backup GPT)", ms.target.display);
		}
		/* The log on the target says why, when there is a target to say it on. */
		if (ms.root) {
			struct agent_err e2;
			if (place_log(ROOT_MOUNT, &e2) < 0)
				log_step("cannot write the log: %s", e2.msg);
		}
	}
	if (ms.oem)
		unmount(OEM_MOUNT);
	if (ms.root)
		unmount(ROOT_MOUNT);
	sync();
	if (r == 0 && !o.dry_run)
		log_line("DLWS-INSTALL: done on %s", done_on);
	log_release();
	if (fflush(stdout) != 0 || ferror(stdout))
		return 1;
	return r < 0 ? 1 : 0;
}
