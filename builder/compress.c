/* Segment compression: zstd, xz or gzip, streamed to a file descriptor. */
#include <errno.h>
#include <lzma.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include "compress.h"
#include "fsutil.h"
#include "hash.h"
#include "util.h"

#define OUT_SIZE (256u << 10)
/* xz blocks: compressed independently (one per thread at a time), so the
 * output is the same whatever the number of threads. 3 of them per thread
 * are in memory. */
#define XZ_BLOCK_SIZE (8u << 20)
/* zstd's jobs: what each thread compresses at a time. Its default (four
 * windows, 8 MiB at level 3) costs 45 MiB with two threads; 2 MiB keeps a
 * build near 20 MiB for 0.4% in size. Fixed, so the bytes are too. */
#define ZSTD_JOB_SIZE (2 << 20)
/* More threads than this gain little on a segment and cost memory. */
#define MAX_THREADS 8

static const struct method_info {
	const char *name, *suffix;
	int min, max, def;
} methods[] = {
	[COMPRESS_ZSTD] = { "zstd", ".cpio.zst", 1, 19, 3 },
	[COMPRESS_XZ] = { "xz", ".cpio.xz", 0, 9, 6 },
	[COMPRESS_GZIP] = { "gzip", ".cpio.gz", 1, 9, 6 },
};

const char *compress_name(enum compress_method m) {
	return methods[m].name;
}

const char *compress_suffix(enum compress_method m) {
	return methods[m].suffix;
}

size_t compress_suffix_len(const char *name) {
	for (size_t i = 0; i < ARRAY_SIZE(methods); i++)
		if (endswith(name, methods[i].suffix) && strlen(name) > strlen(methods[i].suffix))
			return strlen(methods[i].suffix);
	return 0;
}

int compress_parse(const char *name, enum compress_method *ret) {
	for (size_t i = 0; i < ARRAY_SIZE(methods); i++)
		if (streq(name, methods[i].name)) {
			*ret = (enum compress_method)i;
			return 0;
		}
	return -EINVAL;
}

void compress_levels(enum compress_method m, int *ret_min, int *ret_max, int *ret_default) {
	*ret_min = methods[m].min;
	*ret_max = methods[m].max;
	*ret_default = methods[m].def;
}

int compress_level(const struct compression *c) {
	return c->level ? c->level : methods[c->method].def;
}

char *compress_describe(const struct compression *c) {
	switch (c->method) {
	case COMPRESS_ZSTD:
		return xasprintf("zstd -%d, %d MiB jobs", compress_level(c), ZSTD_JOB_SIZE >> 20);
	case COMPRESS_XZ:
		return xasprintf("xz -%d, %u MiB blocks, crc32", compress_level(c), XZ_BLOCK_SIZE >> 20);
	case COMPRESS_GZIP:
		break;
	}
	return xasprintf("%s -%d", compress_name(c->method), compress_level(c));
}

struct compressor {
	struct compression c;
	int fd;
	const char *path;
	struct diags *d;
	unsigned char *out;
	struct sha256 *sum;     /* compressor_sum: what is written, hashed */
	ZSTD_CCtx *zstd;
	lzma_stream xz;
	z_stream gz;
	bool failed;            /* the compressor itself failed (reported) */
};

static int fail(struct compressor *c, const char *what) {
	c->failed = true;
	diag_error(c->d, NULL, "cannot compress '%s' (%s): %s", c->path, compress_name(c->c.method), what);
	return -EIO;
}

/* A zstd context kept from the last compressor, with its workers: a build
 * of 1,000 nodes compresses 1,000 small segments, and would start and stop
 * the threads of each. One per thread (compress_thread_end). A process
 * forked since has none of those workers: it neither uses nor frees the
 * context (it would wait for them forever). */
static _Thread_local ZSTD_CCtx *spare_zstd;
static _Thread_local pid_t spare_pid;

void compress_thread_end(void) {
	if (spare_zstd && spare_pid == getpid())
		ZSTD_freeCCtx(spare_zstd);
	spare_zstd = NULL;
}

static ZSTD_CCtx *zstd_context(void) {
	ZSTD_CCtx *z = spare_zstd && spare_pid == getpid() ? spare_zstd : ZSTD_createCCtx();
	spare_zstd = NULL;
	return z;
}

/* A thread per job (zstd) or block (xz) of `size` bytes, up to one per
 * core: a node's small segment needs no more than one, and a build makes
 * them on every core at once. */
static unsigned threads_for(uint64_t size, uint64_t unit) {
	unsigned cores = cores_available(MAX_THREADS);
	uint64_t units = size ? (size + unit - 1) / unit : cores;
	return units < cores ? (unsigned)(units ? units : 1) : cores;
}

int compressor_new(const struct compression *comp, int fd, const char *path, uint64_t size, struct compressor **ret,
		   struct diags *d) {
	struct compressor *c = xcalloc(1, sizeof(*c));
	*c = (struct compressor){ .c = *comp, .fd = fd, .path = path, .d = d, .out = xmalloc(OUT_SIZE),
				  .xz = LZMA_STREAM_INIT };
	int level = compress_level(comp), r = 0;
	switch (comp->method) {
	case COMPRESS_ZSTD:
		c->zstd = zstd_context();
		if (!c->zstd)
			abort();
		/* Workers >= 1 even on one core: the output of zstd's
		 * multi-threaded mode is the same for any number of them,
		 * and differs from its single-threaded mode. (xz's, too, for
		 * any number of threads.) */
		if (ZSTD_isError(ZSTD_CCtx_setParameter(c->zstd, ZSTD_c_compressionLevel, level)) ||
		    ZSTD_isError(ZSTD_CCtx_setParameter(c->zstd, ZSTD_c_checksumFlag, 1)) ||
		    ZSTD_isError(ZSTD_CCtx_setParameter(c->zstd, ZSTD_c_nbWorkers, (int)threads_for(size, ZSTD_JOB_SIZE))) ||
		    ZSTD_isError(ZSTD_CCtx_setParameter(c->zstd, ZSTD_c_jobSize, ZSTD_JOB_SIZE)))
			r = fail(c, "libzstd without multi-threading");
		break;
	case COMPRESS_XZ: {
		lzma_mt mt = {
			.threads = threads_for(size, XZ_BLOCK_SIZE),
			.block_size = XZ_BLOCK_SIZE,
			.preset = (uint32_t)level,
			.check = LZMA_CHECK_CRC32,
		};
		lzma_ret k = lzma_stream_encoder_mt(&c->xz, &mt);
		if (k != LZMA_OK)
			r = fail(c, k == LZMA_MEM_ERROR ? "out of memory" : "liblzma refused the settings");
		break;
	}
	case COMPRESS_GZIP:
		/* windowBits 15 + 16: a gzip member; zlib's header has no
		 * name and mtime 0, so equal inputs give equal bytes. */
		if (deflateInit2(&c->gz, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
			r = fail(c, "zlib refused the settings");
		break;
	}
	if (r < 0) {
		compressor_free(c);
		return r;
	}
	*ret = c;
	return 0;
}

void compressor_sum(struct compressor *c, struct sha256 *h) {
	c->sum = h;
}

/* The first `n` bytes of c->out, to the file. */
static int put(struct compressor *c, size_t n) {
	if (c->sum)
		sha256_update(c->sum, c->out, n);
	return write_all(c->fd, c->out, n);
}

static int run_zstd(struct compressor *c, const void *data, size_t len, ZSTD_EndDirective end) {
	ZSTD_inBuffer in = { data, len, 0 };
	for (;;) {
		ZSTD_outBuffer out = { c->out, OUT_SIZE, 0 };
		size_t left = ZSTD_compressStream2(c->zstd, &out, &in, end);
		if (ZSTD_isError(left))
			return fail(c, ZSTD_getErrorName(left));
		int r = put(c, out.pos);
		if (r < 0)
			return r;
		if (end == ZSTD_e_end ? left == 0 : in.pos == in.size)
			return 0;
	}
}

static int run_xz(struct compressor *c, const void *data, size_t len, lzma_action action) {
	c->xz.next_in = data;
	c->xz.avail_in = len;
	for (;;) {
		c->xz.next_out = c->out;
		c->xz.avail_out = OUT_SIZE;
		lzma_ret k = lzma_code(&c->xz, action);
		if (k != LZMA_OK && k != LZMA_STREAM_END)
			return fail(c, k == LZMA_MEM_ERROR ? "out of memory" : "liblzma failed");
		int r = put(c, OUT_SIZE - c->xz.avail_out);
		if (r < 0)
			return r;
		if (action == LZMA_FINISH ? k == LZMA_STREAM_END : c->xz.avail_in == 0)
			return 0;
	}
}

static int run_gzip(struct compressor *c, const void *data, size_t len, int flush) {
	/* zlib counts in uInt: feed it in pieces it can count. */
	const unsigned char *p = data;
	do {
		size_t n = len > (1u << 30) ? (1u << 30) : len;
		c->gz.next_in = (unsigned char *)p;
		c->gz.avail_in = (uInt)n;
		p += n;
		len -= n;
		int f = len ? Z_NO_FLUSH : flush, k;
		do {
			c->gz.next_out = c->out;
			c->gz.avail_out = OUT_SIZE;
			k = deflate(&c->gz, f);
			if (k == Z_STREAM_ERROR)
				return fail(c, "zlib failed");
			int r = put(c, OUT_SIZE - c->gz.avail_out);
			if (r < 0)
				return r;
		} while (f == Z_FINISH ? k != Z_STREAM_END : c->gz.avail_out == 0);
	} while (len);
	return 0;
}

int compressor_write(struct compressor *c, const void *data, size_t len) {
	if (!len)
		return 0;
	switch (c->c.method) {
	case COMPRESS_ZSTD:
		return run_zstd(c, data, len, ZSTD_e_continue);
	case COMPRESS_XZ:
		return run_xz(c, data, len, LZMA_RUN);
	case COMPRESS_GZIP:
		return run_gzip(c, data, len, Z_NO_FLUSH);
	}
	return -EINVAL;
}

int compressor_finish(struct compressor *c) {
	switch (c->c.method) {
	case COMPRESS_ZSTD:
		return run_zstd(c, "", 0, ZSTD_e_end);
	case COMPRESS_XZ:
		return run_xz(c, "", 0, LZMA_FINISH);
	case COMPRESS_GZIP:
		return run_gzip(c, "", 0, Z_FINISH);
	}
	return -EINVAL;
}

bool compressor_failed(const struct compressor *c) {
	return c->failed;
}

void compressor_free(struct compressor *c) {
	if (!c)
		return;
	/* Kept for the next compressor, its settings set again by it. */
	if (c->zstd && (!spare_zstd || spare_pid != getpid()) &&
	    !ZSTD_isError(ZSTD_CCtx_reset(c->zstd, ZSTD_reset_session_only))) {
		spare_zstd = c->zstd;
		spare_pid = getpid();
	} else {
		ZSTD_freeCCtx(c->zstd);
	}
	lzma_end(&c->xz);
	if (c->c.method == COMPRESS_GZIP)
		deflateEnd(&c->gz);
	free(c->out);
	free(c);
}
