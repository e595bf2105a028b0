/* The install agent's GPT reader (agent/gpt.c) and its label probe, on a
 * disk image in a memfd: the agent reads the target disk itself, and the
 * disk is whatever sat in the machine.
 *
 * Input: one control byte, then the image. Its low bits pick the sector
 * size asked for (0 = probe, 512, 4096); bit 2 set makes the harness
 * recompute the header and entry CRCs first, so that the fuzzer gets past
 * the checksums to the entries. */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz.h"
#include "gpt.h"

static uint32_t crc32_ieee(const unsigned char *p, size_t n) {
	uint32_t crc = 0xffffffffu;
	while (n--) {
		crc ^= *p++;
		for (int k = 0; k < 8; k++)
			crc = crc & 1 ? 0xedb88320u ^ (crc >> 1) : crc >> 1;
	}
	return crc ^ 0xffffffffu;
}

static uint32_t get32(const unsigned char *p) {
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put32(unsigned char *p, uint32_t v) {
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

/* Makes the header at LBA 1 of `sector` bytes consistent, where it fits. */
static void fix_crcs(unsigned char *img, size_t size, size_t sector) {
	if (size < 2 * sector)
		return;
	unsigned char *hdr = img + sector;
	if (memcmp(hdr, "EFI PART", 8) != 0)
		return;
	uint64_t lba = (uint64_t)get32(hdr + 72) | (uint64_t)get32(hdr + 76) << 32;
	uint64_t array = (uint64_t)get32(hdr + 80) * get32(hdr + 84);
	if (lba < size / sector && array <= size - lba * sector)
		put32(hdr + 88, crc32_ieee(img + lba * sector, (size_t)array));
	uint32_t hdr_size = get32(hdr + 12);
	if (hdr_size >= 92 && hdr_size <= sector) {
		put32(hdr + 16, 0);
		put32(hdr + 16, crc32_ieee(hdr, hdr_size));
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	static const unsigned sectors[] = { 0, 512, 4096, 0 };
	if (size < 1)
		return 0;
	unsigned sector = sectors[data[0] & 3];
	bool fix = data[0] & 4;
	size_t len = size - 1;
	unsigned char *img = malloc(len ? len : 1);
	if (!img)
		abort();
	memcpy(img, data + 1, len);
	if (fix) {
		fix_crcs(img, len, 512);
		fix_crcs(img, len, 4096);
	}
	int fd = memfd_create("fuzz-disk", MFD_CLOEXEC);
	if (fd < 0 || (len && write(fd, img, len) != (ssize_t)len))
		abort();
	free(img);

	struct gpt g = GPT_INIT;
	struct agent_err e;
	if (gpt_read(fd, sector, &g, &e) == 0) {
		for (size_t i = 0; i < g.n; i++) {
			if (strlen(g.parts[i].name) >= sizeof(g.parts[i].name) || gpt_find(&g, g.parts[i].name) == NULL)
				abort();
		}
		(void)gpt_find(&g, "ROOT");
		gpt_release(&g);
	}
	const char *what;
	(void)disk_label_probe(fd, sector, &what);
	close(fd);
	return 0;
}
