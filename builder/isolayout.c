/* Where an image's large files lie (isolayout.h). */
#include "isolayout.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "isofile.h"
#include "util.h"

#define BLOCK 2048

/* A data source over a descriptor that reads nothing at or past `limit`. */
struct limited {
	int fd;
	uint64_t limit;
};

static int ds_open(IsoDataSource *s) {
	(void)s;
	return 1;
}

static int ds_close(IsoDataSource *s) {
	(void)s;
	return 1;
}

static int ds_read(IsoDataSource *s, uint32_t lba, uint8_t *buf) {
	const struct limited *l = s->data;
	uint64_t off = (uint64_t)lba * BLOCK;
	if (off + BLOCK > l->limit)
		return ISO_DATA_SOURCE_FAILURE;
	size_t got = 0;
	while (got < BLOCK) {
		ssize_t n = pread(l->fd, buf + got, BLOCK - got, (off_t)(off + got));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return ISO_DATA_SOURCE_FAILURE;
		got += (size_t)n;
	}
	return 1;
}

static void ds_free(IsoDataSource *s) {
	free(s->data);
}

int isolayout_read(int fd, uint64_t limit, const char *const *paths, const char *const *sums, size_t n,
		   struct iso_extents *ret) {
	*ret = (struct iso_extents)ISO_EXTENTS_INIT;
	IsoDataSource *src = xcalloc(1, sizeof(*src));
	struct limited *l = xmalloc(sizeof(*l));
	*l = (struct limited){ fd, limit };
	*src = (IsoDataSource){ .refcount = 1, .open = ds_open, .close = ds_close, .read_block = ds_read,
				.free_data = ds_free, .data = l };
	IsoImage *img = NULL;
	IsoReadOpts *ro = NULL;
	int k = iso_image_new("read-back", &img);
	if (k >= 0)
		k = iso_read_opts_new(&ro, 0);
	if (k >= 0) {
		/* The Rock Ridge tree names the files; nothing else is needed. */
		iso_read_opts_set_no_joliet(ro, 1);
		iso_read_opts_set_no_iso1999(ro, 1);
		iso_read_opts_set_no_md5(ro, 1);
		k = iso_image_import(img, src, ro, NULL);
	}
	for (size_t i = 0; i < n && k >= 0; i++) {
		IsoNode *node = NULL;
		if (iso_tree_path_to_node(img, paths[i], &node) != 1 || iso_node_get_type(node) != LIBISO_FILE)
			continue;
		int count = 0;
		struct iso_file_section *sections = NULL;
		if (iso_file_get_old_image_sections((IsoFile *)node, &count, &sections, 0) == 1 && count == 1 &&
		    sections[0].size > 0) {
			struct iso_extent e = { (uint64_t)sections[0].block * BLOCK, sections[0].size, "" };
			snprintf(e.sum, sizeof(e.sum), "%s", sums[i]);
			isolayout_add(ret, &e);
		}
		free(sections);
	}
	if (ro)
		iso_read_opts_free(ro);
	if (img)
		iso_image_unref(img);
	iso_data_source_unref(src);
	if (k < 0)
		isolayout_release(ret);
	return k < 0 ? -EIO : 0;
}

char *isolayout_format(const struct iso_extents *e) {
	struct buf b = BUF_INIT;
	for (size_t i = 0; i < e->n; i++)
		(void)buf_printf(&b, "extent %" PRIu64 " %" PRIu64 " %s\n", e->v[i].offset, e->v[i].size, e->v[i].sum);
	size_t len;
	return buf_steal(&b, &len);
}

/* A decimal number of digits only, that fits: the end, or NULL. */
static const char *number(const char *p, uint64_t *ret) {
	uint64_t v = 0;
	const char *start = p;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (v > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
			return NULL;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	*ret = v;
	return p > start ? p : NULL;
}

/* One line: "extent <offset> <size> <sum>", up to its newline. */
static bool parse_line(const char *p, struct iso_extent *e) {
	static const char prefix[] = "extent ";
	if (strncmp(p, prefix, strlen(prefix)) != 0)
		return false;
	p = number(p + strlen(prefix), &e->offset);
	if (!p || *p++ != ' ' || !(p = number(p, &e->size)) || *p++ != ' ')
		return false;
	size_t n = strspn(p, "0123456789abcdef");
	if (n != SHA256_HEX_LEN || (p[n] != '\n' && p[n] != '\0'))
		return false;
	memcpy(e->sum, p, n);
	e->sum[n] = '\0';
	return e->size > 0 && e->offset % BLOCK == 0 && e->offset + e->size > e->offset;
}

void isolayout_parse(const char *text, struct iso_extents *ret) {
	*ret = (struct iso_extents)ISO_EXTENTS_INIT;
	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
		struct iso_extent e;
		if (parse_line(p, &e))
			isolayout_add(ret, &e);
	}
}

void isolayout_add(struct iso_extents *e, const struct iso_extent *x) {
	e->v = xrealloc(e->v, (e->n + 1) * sizeof(*e->v));
	e->v[e->n++] = *x;
}

bool isolayout_has(const struct iso_extents *e, const struct iso_extent *x) {
	for (size_t i = 0; i < e->n; i++)
		if (e->v[i].offset == x->offset && e->v[i].size == x->size && streq(e->v[i].sum, x->sum))
			return true;
	return false;
}

void isolayout_release(struct iso_extents *e) {
	free(e->v);
	*e = (struct iso_extents)ISO_EXTENTS_INIT;
}
