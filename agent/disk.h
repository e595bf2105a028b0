/* The target disk: choosing it (a given device or `auto`), the checks that
 * must pass before it is opened for writing, and its partitions' devices. */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "conf.h"
#include "util.h"

struct disk_target {
	char display[AGENT_PATH_MAX]; /* what messages call it: /dev/vdb, or the file */
	char path[AGENT_PATH_MAX];    /* what is opened (below --root for `auto`) */
	char name[256];               /* the sysfs name (vdb, nvme0n1); "" for a file */
	bool is_file;                 /* a disk image file (tests): no BLKRRPART, no mounts */
	uint64_t size;                /* bytes */
	unsigned sector;              /* logical block size; 0 if unknown (files) */
};

/* Picks the target from c->device ("auto": the first disk in /sys/block by
 * name that is not a loop/ram/sr/zram/dm/md device, not removable, not the
 * boot medium, has nothing mounted, is at least c->image_size bytes and does
 * not hold an ISO 9660 file system, i.e. is not install media) and
 * checks it: a whole disk, not the medium, nothing mounted, large enough,
 * and without partitions unless c->wipe. Only reads; never writes. */
int disk_choose(const struct install_conf *c, struct disk_target *ret, struct agent_err *e);

/* After the new table was written: asks the kernel to re-read it, retrying
 * after 1, 2 and 4 s as flatcar-install does. */
int disk_reread(const struct disk_target *t, struct agent_err *e);

/* Tells the kernel about one partition itself (BLKPG_ADD_PARTITION), for
 * when re-reading the table did not make it appear: a kernel without GPT
 * support. `start` and `length` are in bytes. */
int disk_add_partition(const struct disk_target *t, unsigned number, uint64_t start, uint64_t length,
		       struct agent_err *e);

/* The device node of partition `number` of the disk: waits up to `timeout`
 * seconds for the partition in /sys/block/<disk>/ and for /dev/<child> as
 * sysfs names it (vdb9, sdb9, nvme0n1p9) from devtmpfs; when sysfs has it
 * but /dev does not, makes a node in AGENT_RUN_DIR. */
int disk_partition_node(const struct disk_target *t, unsigned number, double timeout,
			char *out, size_t n, struct agent_err *e);
