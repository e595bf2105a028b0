/* Reading a GPT: the header at LBA 1 and its entry array, read by us so the
 * agent needs neither blkid nor udev to find partitions by name. */
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "util.h"

struct gpt_part {
	unsigned number;        /* entry index + 1, as the kernel numbers partitions */
	char name[3 * 36 + 1];  /* the UTF-16LE name as UTF-8 */
	uint64_t first_lba, last_lba;
};

struct gpt {
	unsigned sector;        /* the logical block size the header was found with */
	size_t n;
	struct gpt_part *parts; /* owned; the used entries, in entry order */
};
#define GPT_INIT { 0, 0, NULL }

/* Reads the primary GPT of the disk open on fd, checking both CRCs. `sector`
 * is the logical block size, or 0 to try 512 and then 4096 (image files). */
int gpt_read(int fd, unsigned sector, struct gpt *ret, struct agent_err *e);
const struct gpt_part *gpt_find(const struct gpt *g, const char *name);
void gpt_release(struct gpt *g);

/* Whether the first sectors hold a partition table: an MBR signature with a
 * non-empty entry, or "EFI PART" at LBA 1. *what says which ("" if none). */
int disk_label_probe(int fd, unsigned sector, const char **what);
