/* Writing an image onto a USB stick (or any block device): every safety
 * check before the first byte, large aligned writes, then a read-back whose
 * sha256 must equal the image's. Nothing here prints: findings and refusals
 * go to diags, progress to a callback.
 *
 * Use: flash_new (facts, no writes) -> flash_check (refusals) ->
 * flash_open_target (exclusive open) -> [confirmed] flash_create (a new
 * file only) -> flash_write -> flash_verify. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "diag.h"
#include "hash.h"

/* Outcomes that are neither success (0) nor an error (-errno). */
enum {
	FLASH_REFUSED = 1,      /* a safety check said no; the reason is in diags */
	FLASH_MISMATCH = 2,     /* written, but the device reads back differently */
};

enum flash_phase { FLASH_WRITING, FLASH_VERIFYING };
/* Called with done == 0 when a phase starts, after every block, and with
 * done == total when it ends. */
typedef void (*flash_progress_fn)(void *ctx, enum flash_phase phase, uint64_t done, uint64_t total);

#define FLASH_BLOCK_SIZE (4u << 20)   /* bytes per write and read */

struct flash_part {
	char *name;             /* kernel name, "sdb1" */
	dev_t dev;
};

/* One flash job; owns every pointer and descriptor in it. */
struct flash {
	char *image;
	int image_fd;
	uint64_t image_size;
	dev_t image_dev;
	ino_t image_ino;

	char *target;           /* the path as given */
	bool allow_file;        /* a regular file may stand for the device */
	bool is_block;
	bool is_file;           /* a regular file (or, with create, none yet) */
	bool create;            /* the file does not exist: flash_create makes it */
	mode_t target_mode;     /* S_IFMT of what is there */
	dev_t rdev;             /* block device: its number */
	dev_t file_dev;         /* regular file: st_dev and st_ino */
	ino_t file_ino;
	uint64_t size;          /* bytes; a regular file's current size */
	unsigned block;         /* logical block size: O_DIRECT's alignment */
	char *name;             /* kernel name ("sdb", "loop3", "sdb1"), NULL for a file */
	char *disk;             /* when the target is a partition: its disk's name */
	bool is_partition;
	dev_t disk_dev;         /* and that disk's number */
	struct flash_part *parts;       /* a whole disk's partitions */
	size_t n_parts;
	char *vendor, *model;   /* sysfs device/vendor and device/model, trimmed; may be NULL */
	char *backing_file;     /* a loop device's backing file, or NULL */
	char *dm_name;          /* a device-mapper device's name, or NULL */
	int removable;          /* sysfs removable: 1, 0, or -1 when unknown */
	bool usb;               /* sits on a USB bus */

	int fd;                 /* the target, from flash_open_target */
	bool direct;            /* fd takes O_DIRECT */
	bool created;           /* flash_create made the file */
	char sha256[SHA256_HEX_LEN + 1];        /* the image's, set by flash_write */
};

/* Opens IMAGE (a regular file) and gathers what sysfs tells about TARGET;
 * opens nothing for writing. A TARGET that is missing is an error unless
 * allow_file (then it is created later). Returns 0 or -errno (reported). */
int flash_new(const char *image, const char *target, bool allow_file, struct flash **ret, struct diags *d);
void flash_free(struct flash *f);

/* Every safety check: not a block device (without allow_file), the image
 * itself or the device that holds it, the running system (/, /boot, /usr),
 * mounted (itself or a partition), swap, held by device-mapper or md,
 * smaller than the image. 0 when safe, FLASH_REFUSED with the reason
 * reported, or -errno. */
int flash_check(struct flash *f, struct diags *d);

/* Opens the target for writing, exclusively: a block device another user
 * holds (mounted meanwhile) is FLASH_REFUSED, so is one that changed since
 * flash_check. Takes O_DIRECT where the target allows it. A file to create
 * (allow_file, missing) is not made here, only checked for: its directory
 * must take it. */
int flash_open_target(struct flash *f, struct diags *d);

/* Makes that file, once the write is confirmed, so that a refusal leaves
 * none behind; nothing to do for any other target. 0 or -errno (reported). */
int flash_create(struct flash *f, struct diags *d);

/* Writes the image from byte 0, in FLASH_BLOCK_SIZE blocks, and flushes;
 * sets f->sha256. A file made by flash_create is removed on failure.
 * Returns 0 or -errno (reported). */
int flash_write(struct flash *f, flash_progress_fn progress, void *ctx, struct diags *d);

/* Drops cached pages and reads the first image-size bytes back: 0 when
 * their sha256 equals the image's, FLASH_MISMATCH (reported) with the
 * first differing byte in *ret_offset (UINT64_MAX when a second read no
 * longer differs), or -errno. */
int flash_verify(struct flash *f, flash_progress_fn progress, void *ctx, uint64_t *ret_offset, struct diags *d);
