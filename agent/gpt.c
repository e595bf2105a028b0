#include "gpt.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { GPT_MAX_ENTRIES = 4096, GPT_MAX_ENTRY_SIZE = 4096 };

static uint32_t crc32_ieee(const unsigned char *p, size_t n)
{
	static uint32_t table[256];
	uint32_t crc = 0xffffffffu;

	if (!table[1]) {
		for (uint32_t i = 0; i < 256; i++) {
			uint32_t c = i;
			for (int k = 0; k < 8; k++)
				c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
			table[i] = c;
		}
	}
	while (n--)
		crc = table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return crc ^ 0xffffffffu;
}

static uint32_t le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const unsigned char *p)
{
	return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

static int pread_full(int fd, void *buf, size_t n, uint64_t off)
{
	size_t done = 0;

	while (done < n) {
		ssize_t got = pread(fd, (char *)buf + done, n - done, (off_t)(off + done));
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			return -errno;
		if (got == 0)
			return -ENODATA;
		done += (size_t)got;
	}
	return 0;
}

/* UTF-16LE (up to 36 units, NUL-terminated) to UTF-8; unpaired surrogates become '?'. */
static void name_to_utf8(const unsigned char *u16, char *out)
{
	size_t o = 0;

	for (int i = 0; i < 36; i++) {
		uint32_t c = (uint32_t)u16[2 * i] | (uint32_t)u16[2 * i + 1] << 8;
		if (c == 0)
			break;
		if (c >= 0xd800 && c < 0xdc00 && i + 1 < 36) {
			uint32_t lo = (uint32_t)u16[2 * i + 2] | (uint32_t)u16[2 * i + 3] << 8;
			if (lo >= 0xdc00 && lo < 0xe000) {
				c = 0x10000 + ((c - 0xd800) << 10) + (lo - 0xdc00);
				i++;
			} else {
				c = '?';
			}
		} else if (c >= 0xd800 && c < 0xe000) {
			c = '?';
		}
		if (c < 0x80) {
			out[o++] = (char)c;
		} else if (c < 0x800) {
			out[o++] = (char)(0xc0 | c >> 6);
			out[o++] = (char)(0x80 | (c & 0x3f));
		} else if (c < 0x10000) {
			out[o++] = (char)(0xe0 | c >> 12);
			out[o++] = (char)(0x80 | ((c >> 6) & 0x3f));
			out[o++] = (char)(0x80 | (c & 0x3f));
		} else {
			/* 4 bytes for 2 UTF-16 units: still within 3 bytes per unit. */
			out[o++] = (char)(0xf0 | c >> 18);
			out[o++] = (char)(0x80 | ((c >> 12) & 0x3f));
			out[o++] = (char)(0x80 | ((c >> 6) & 0x3f));
			out[o++] = (char)(0x80 | (c & 0x3f));
		}
	}
	out[o] = '\0';
}

static bool is_zero(const unsigned char *p, size_t n)
{
	while (n--)
		if (*p++)
			return false;
	return true;
}

/* -ENOENT when there is no "EFI PART" at LBA 1 for this sector size. */
static int read_at(int fd, unsigned sector, struct gpt *g, struct agent_err *e)
{
	unsigned char hdr[4096], *entries = NULL;
	uint32_t hdr_size, hdr_crc, n_entries, entry_size, entries_crc;
	uint64_t entries_lba;
	size_t array_size;
	int r;

	r = pread_full(fd, hdr, sector, sector);
	if (r == -ENODATA)
		return -ENOENT;
	if (r < 0)
		return err_set(e, r, "cannot read the GPT header: %s", strerror(-r));
	if (memcmp(hdr, "EFI PART", 8) != 0)
		return -ENOENT;
	hdr_size = le32(hdr + 12);
	hdr_crc = le32(hdr + 16);
	if (hdr_size < 92 || hdr_size > sector)
		return err_set(e, -EBADMSG, "GPT header size %u is invalid", hdr_size);
	memset(hdr + 16, 0, 4);
	if (crc32_ieee(hdr, hdr_size) != hdr_crc)
		return err_set(e, -EBADMSG, "GPT header checksum mismatch");
	entries_lba = le64(hdr + 72);
	n_entries = le32(hdr + 80);
	entry_size = le32(hdr + 84);
	entries_crc = le32(hdr + 88);
	if (n_entries == 0 || n_entries > GPT_MAX_ENTRIES || entry_size < 128 ||
	    entry_size > GPT_MAX_ENTRY_SIZE || entry_size % 8)
		return err_set(e, -EBADMSG, "GPT entry array (%u entries of %u bytes) is invalid",
			       n_entries, entry_size);
	array_size = (size_t)n_entries * entry_size;
	entries = malloc(array_size);
	g->parts = calloc(n_entries, sizeof *g->parts);
	if (!entries || !g->parts) {
		free(entries);
		return err_set(e, -ENOMEM, "out of memory");
	}
	r = pread_full(fd, entries, array_size, entries_lba * sector);
	if (r < 0) {
		free(entries);
		return err_set(e, r, "cannot read the GPT entries: %s", strerror(-r));
	}
	if (crc32_ieee(entries, array_size) != entries_crc) {
		free(entries);
		return err_set(e, -EBADMSG, "GPT entry array checksum mismatch");
	}
	g->sector = sector;
	for (uint32_t i = 0; i < n_entries; i++) {
		const unsigned char *ent = entries + (size_t)i * entry_size;
		struct gpt_part *p;
		if (is_zero(ent, 16))
			continue;
		p = &g->parts[g->n++];
		p->number = i + 1;
		p->first_lba = le64(ent + 32);
		p->last_lba = le64(ent + 40);
		name_to_utf8(ent + 56, p->name);
	}
	free(entries);
	return 0;
}

int gpt_read(int fd, unsigned sector, struct gpt *ret, struct agent_err *e)
{
	static const unsigned try_sizes[] = { 512, 4096 };
	struct gpt g = GPT_INIT;
	int r = -ENOENT;

	for (size_t i = 0; i < sizeof try_sizes / sizeof *try_sizes && r == -ENOENT; i++) {
		unsigned s = sector ? sector : try_sizes[i];
		if (sector && i > 0)
			break;
		if (s > 4096 || s < 512 || (s & (s - 1)))
			return err_set(e, -EINVAL, "unsupported sector size %u", s);
		r = read_at(fd, s, &g, e);
		if (r < 0)
			gpt_release(&g);
	}
	if (r == -ENOENT)
		return err_set(e, r, "no GPT (no \"EFI PART\" header at LBA 1)");
	if (r < 0)
		return r;
	*ret = g;
	return 0;
}

const struct gpt_part *gpt_find(const struct gpt *g, const char *name)
{
	for (size_t i = 0; i < g->n; i++)
		if (strcmp(g->parts[i].name, name) == 0)
			return &g->parts[i];
	return NULL;
}

void gpt_release(struct gpt *g)
{
	free(g->parts);
	g->parts = NULL;
	g->n = 0;
}

int disk_label_probe(int fd, unsigned sector, const char **what)
{
	unsigned char buf[8192];
	ssize_t got;
	size_t have = 0;

	*what = "";
	while (have < sizeof buf) {
		got = pread(fd, buf + have, sizeof buf - have, (off_t)have);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			return -errno;
		if (got == 0)
			break;
		have += (size_t)got;
	}
	/* Any sector size: image files do not tell us theirs. */
	for (unsigned s = 512; s <= 4096; s *= 2) {
		if (sector && s != sector)
			continue;
		if (have >= 2 * s && memcmp(buf + s, "EFI PART", 8) == 0) {
			*what = "a GPT header at LBA 1";
			return 1;
		}
	}
	if (have >= 512 && buf[510] == 0x55 && buf[511] == 0xaa) {
		for (int i = 0; i < 4; i++) {
			if (buf[446 + 16 * i + 4] != 0) {
				*what = "an MBR partition table";
				return 1;
			}
		}
	}
	return 0;
}
