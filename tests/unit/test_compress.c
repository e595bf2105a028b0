/* Segment compression: each method's stream is read back by its own
 * command-line tool (zstd, xz, gzip) byte for byte, in what the kernel's
 * decompressors take (xz: CRC32 check, LZMA2 only; zstd: one frame with a
 * checksum; gzip: mtime 0); equal input gives equal bytes however it is
 * fed and on one core or many; names, suffixes and levels. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "compress.h"
#include "fsutil.h"
#include "util.h"

static char root[] = "/tmp/dlws-test-compress.XXXXXX";

static char *run(const char *cmd) {
	FILE *p = popen(cmd, "r");
	CHECK(p != NULL);
	char *out = xcalloc(1, 1 << 16);
	size_t n = p ? fread(out, 1, (1 << 16) - 1, p) : 0;
	out[n] = '\0';
	if (p)
		CHECK_INTEQ(pclose(p), 0);
	return out;
}

/* 17 MiB that compresses some and not entirely: three xz blocks and
 * zstd jobs. */
static unsigned char *input(size_t *ret_len) {
	size_t len = 17u << 20;
	unsigned char *v = xmalloc(len);
	unsigned x = 12345;
	for (size_t i = 0; i < len; i++) {
		x = x * 1103515245u + 12345u;
		v[i] = (i / 4096) % 3 ? (unsigned char)(x >> 24) : (unsigned char)"kubelet --config "[i % 17];
	}
	*ret_len = len;
	return v;
}

/* Compresses `v` fed in pieces of `piece` bytes into `path`, told to
 * expect `size` bytes (compressor_new). */
static void compress_sized(const struct compression *c, const unsigned char *v, size_t len, size_t piece, const char *path,
			   uint64_t size) {
	struct diags d = DIAGS_INIT;
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	CHECK(fd >= 0);
	struct compressor *z = NULL;
	CHECK_INTEQ(compressor_new(c, fd, path, size, &z, &d), 0);
	for (size_t off = 0; z && off < len; off += piece)
		CHECK_INTEQ(compressor_write(z, v + off, len - off < piece ? len - off : piece), 0);
	if (z)
		CHECK_INTEQ(compressor_finish(z), 0);
	compressor_free(z);
	close(fd);
	CHECK_INTEQ(d.n, 0);
	diags_release(&d);
}

static void compress_to(const struct compression *c, const unsigned char *v, size_t len, size_t piece, const char *path) {
	compress_sized(c, v, len, piece, path, 0);
}

static bool same_file(const char *a, const char *b) {
	_cleanup_free_ char *cmd = xasprintf("cmp -s %s %s && echo same", a, b);
	_cleanup_free_ char *out = run(cmd);
	return streq(out, "same\n");
}

static void test_round_trip(void) {
	static const struct {
		struct compression c;
		const char *tool;       /* decompresses to stdout */
	} cases[] = {
		{ { COMPRESS_ZSTD, 0 }, "zstd -q -dc" },
		{ { COMPRESS_ZSTD, 9 }, "zstd -q -dc" },
		{ { COMPRESS_XZ, 1 }, "xz -dc" },
		{ { COMPRESS_GZIP, 0 }, "gzip -dc" },
		{ { COMPRESS_GZIP, 1 }, "gzip -dc" },
	};
	size_t len;
	_cleanup_free_ unsigned char *v = input(&len);
	_cleanup_free_ char *plain = path_join(root, "plain");
	struct diags d = DIAGS_INIT;
	CHECK_INTEQ(write_file_atomic(plain, v, len, 0644, &d), 0);
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		_cleanup_free_ char *how = compress_describe(&cases[i].c);
		fprintf(stderr, "  %s\n", how);
		_cleanup_free_ char *out = xasprintf("%s/seg%zu%s", root, i, compress_suffix(cases[i].c.method));
		compress_to(&cases[i].c, v, len, 10240, out);
		_cleanup_free_ char *back = xasprintf("%s/back%zu", root, i);
		_cleanup_free_ char *cmd = xasprintf("%s %s > %s && echo ok", cases[i].tool, out, back);
		_cleanup_free_ char *ok = run(cmd);
		CHECK_STREQ(ok, "ok\n");
		CHECK(same_file(plain, back));
		/* Fed in other pieces: the same bytes. */
		_cleanup_free_ char *again = xasprintf("%s/again%zu", root, i);
		compress_to(&cases[i].c, v, len, 1 << 20, again);
		CHECK(same_file(out, again));
	}
	diags_release(&d);
}

/* What the kernel's decompressors need. */
static void test_kernel_formats(void) {
	size_t len;
	_cleanup_free_ unsigned char *v = input(&len);
	_cleanup_free_ char *xz = path_join(root, "k.cpio.xz");
	compress_to(&(struct compression){ COMPRESS_XZ, 1 }, v, len, 65536, xz);
	/* xz --robot --list: "stream ... check" names CRC32; several blocks */
	_cleanup_free_ char *cmd = xasprintf("xz --robot --list %s | awk '$1 == \"file\" {print $2, $7}'", xz);
	_cleanup_free_ char *list = run(cmd);
	CHECK_STREQ(list, "1 CRC32\n");
	free(cmd);
	cmd = xasprintf("xz --robot --list -vv %s | awk '$1 == \"block\"' | wc -l", xz);
	_cleanup_free_ char *blocks = run(cmd);
	CHECK(atoi(blocks) == 3);
	free(cmd);
	cmd = xasprintf("xz --robot --list -vv %s | awk '$1 == \"block\" {print $NF}' | sort -u", xz);
	_cleanup_free_ char *filters = run(cmd);
	CHECK_STREQ(filters, "--lzma2=dict=1MiB\n");

	_cleanup_free_ char *zst = path_join(root, "k.cpio.zst");
	compress_to(&(struct compression){ COMPRESS_ZSTD, 0 }, v, len, 65536, zst);
	free(cmd);
	cmd = xasprintf("zstd -lv %s 2>&1 | grep -oE '^ *(# Zstandard Frames: [0-9]+|Check: [A-Z0-9]+)'", zst);
	_cleanup_free_ char *frames = run(cmd);
	CHECK_STREQ(frames, "# Zstandard Frames: 1\nCheck: XXH64\n");

	_cleanup_free_ char *gz = path_join(root, "k.cpio.gz");
	compress_to(&(struct compression){ COMPRESS_GZIP, 1 }, v, len, 65536, gz);
	free(cmd);
	/* magic, deflate, no flags, mtime 0 */
	cmd = xasprintf("head -c 8 %s | od -An -tx1 | tr -d ' \\n'", gz);
	_cleanup_free_ char *head = run(cmd);
	CHECK_STREQ(head, "1f8b080000000000");
}

/* One core or all, one thread (a small segment) or one per core: zstd's
 * and xz's bytes must not depend on it (cache keys and reproducible
 * builds). */
static void test_cores(void) {
	size_t len;
	_cleanup_free_ unsigned char *v = input(&len);
	cpu_set_t all, one;
	CHECK_INTEQ(sched_getaffinity(0, sizeof(all), &all), 0);
	CPU_ZERO(&one);
	for (int i = 0; i < CPU_SETSIZE; i++)
		if (CPU_ISSET(i, &all)) {
			CPU_SET(i, &one);
			break;
		}
	static const struct compression cs[] = { { COMPRESS_ZSTD, 0 }, { COMPRESS_XZ, 1 } };
	for (size_t i = 0; i < ARRAY_SIZE(cs); i++) {
		_cleanup_free_ char *a = xasprintf("%s/all%zu", root, i);
		_cleanup_free_ char *b = xasprintf("%s/one%zu", root, i);
		compress_to(&cs[i], v, len, 65536, a);
		CHECK_INTEQ(sched_setaffinity(0, sizeof(one), &one), 0);
		compress_to(&cs[i], v, len, 65536, b);
		CHECK_INTEQ(sched_setaffinity(0, sizeof(all), &all), 0);
		CHECK(same_file(a, b));
		_cleanup_free_ char *small = xasprintf("%s/small%zu", root, i);
		compress_sized(&cs[i], v, len, 65536, small, 1);
		CHECK(same_file(a, small));
	}
}

static void test_names(void) {
	enum compress_method m;
	CHECK_INTEQ(compress_parse("zstd", &m), 0);
	CHECK_INTEQ(m, COMPRESS_ZSTD);
	CHECK_INTEQ(compress_parse("xz", &m), 0);
	CHECK_INTEQ(m, COMPRESS_XZ);
	CHECK_INTEQ(compress_parse("gzip", &m), 0);
	CHECK_INTEQ(m, COMPRESS_GZIP);
	CHECK_INTEQ(compress_parse("gz", &m), -EINVAL);
	CHECK_INTEQ(compress_parse("lz4", &m), -EINVAL);
	CHECK_STREQ(compress_suffix(COMPRESS_ZSTD), ".cpio.zst");
	CHECK_INTEQ(compress_suffix_len("nodes/a.cpio.zst"), 9);
	CHECK_INTEQ(compress_suffix_len("a.cpio.xz"), 8);
	CHECK_INTEQ(compress_suffix_len("a.cpio.gz"), 8);
	CHECK_INTEQ(compress_suffix_len(".cpio.gz"), 0);
	CHECK_INTEQ(compress_suffix_len("a.cpio"), 0);
	CHECK_INTEQ(compress_suffix_len("a.tar.gz"), 0);
	int min, max, def;
	compress_levels(COMPRESS_ZSTD, &min, &max, &def);
	CHECK(min == 1 && max == 19 && def == 3);
	compress_levels(COMPRESS_XZ, &min, &max, &def);
	CHECK(min == 0 && max == 9 && def == 6);
	_cleanup_free_ char *dflt = compress_describe(&(struct compression)COMPRESSION_DEFAULT);
	CHECK_STREQ(dflt, "zstd -3, 2 MiB jobs");
}

/* A failing write is the caller's to name: -errno, nothing reported. */
static void test_write_error(void) {
	struct diags d = DIAGS_INIT;
	int fd = open("/dev/full", O_WRONLY | O_CLOEXEC);
	CHECK(fd >= 0);
	struct compressor *z = NULL;
	CHECK_INTEQ(compressor_new(&(struct compression){ COMPRESS_GZIP, 1 }, fd, "/dev/full", 0, &z, &d), 0);
	size_t len;
	_cleanup_free_ unsigned char *v = input(&len);
	int r = compressor_write(z, v, len);
	if (r == 0)
		r = compressor_finish(z);
	CHECK_INTEQ(r, -ENOSPC);
	CHECK(!compressor_failed(z));
	CHECK_INTEQ(d.n, 0);
	compressor_free(z);
	close(fd);
	diags_release(&d);
}

int main(void) {
	CHECK(mkdtemp(root) != NULL);
	test_names();
	test_round_trip();
	test_kernel_formats();
	test_cores();
	test_write_error();
	rm_rf(root);
	return check_summary("test_compress");
}
