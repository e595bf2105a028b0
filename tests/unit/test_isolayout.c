/* Where an image's large files lie: read back from an image libisofs
 * wrote, whole and from its directory records only (every data extent
 * found where the file's bytes are); refused when the records lie past the
 * limit; the record's lines parsed back, hostile ones skipped. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "fsutil.h"
#include "hash.h"
#include "isofile.h"
#include "isolayout.h"
#include "util.h"

static char root[] = "/tmp/dlws-test-isolayout.XXXXXX";

/* A file of `size` bytes of a pattern seeded by `seed`; its sum in `sum`. */
static char *make_file(const char *name, size_t size, unsigned seed, char sum[SHA256_HEX_LEN + 1]) {
	char *p = path_join(root, name);
	char *data = xmalloc(size);
	for (size_t i = 0; i < size; i++)
		data[i] = (char)((i * 131 + seed * 7) % 251);
	struct diags d = DIAGS_INIT;
	CHECK_INTEQ(write_file_atomic(p, data, size, 0644, &d), 0);
	diags_release(&d);
	sha256_hex(data, size, sum);
	free(data);
	return p;
}

/* An image of `files` under /big (and an empty file), written by
 * libisofs to `out`; its size. */
static uint64_t make_image(const char *out, char *const *files, size_t n) {
	IsoImage *img = NULL;
	CHECK(iso_image_new("T", &img) >= 0);
	IsoDir *big = NULL;
	CHECK(iso_tree_add_new_dir(iso_image_get_root(img), "big", &big) >= 0);
	for (size_t i = 0; i < n; i++)
		CHECK(iso_tree_add_node(img, big, files[i], NULL) >= 0);
	_cleanup_free_ char *empty = path_join(root, "empty");
	close(open(empty, O_WRONLY | O_CREAT | O_TRUNC, 0644));
	CHECK(iso_tree_add_node(img, big, empty, NULL) >= 0);
	IsoWriteOpts *o = NULL;
	CHECK(iso_write_opts_new(&o, 0) >= 0);
	iso_write_opts_set_rockridge(o, 1);
	struct burn_source *bs = NULL;
	CHECK(iso_image_create_burn_source(img, o, &bs) >= 0);
	int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	unsigned char buf[2048];
	uint64_t total = 0;
	int k;
	while ((k = bs->read_xt(bs, buf, sizeof(buf))) > 0) {
		CHECK_INTEQ(write_all(fd, buf, (size_t)k), 0);
		total += (uint64_t)k;
	}
	close(fd);
	bs->free_data(bs);
	free(bs);
	iso_write_opts_free(o);
	iso_image_unref(img);
	return total;
}

static void test_read(void) {
	char s1[SHA256_HEX_LEN + 1], s2[SHA256_HEX_LEN + 1];
	_cleanup_free_ char *f1 = make_file("one", 300000, 1, s1);
	_cleanup_free_ char *f2 = make_file("two", 5000, 2, s2);
	char *files[] = { f1, f2 };
	_cleanup_free_ char *iso = path_join(root, "t.iso");
	uint64_t size = make_image(iso, files, 2);
	CHECK(size > 300000);
	const char *paths[] = { "/big/one", "/big/two", "/big/empty", "/big/none" };
	const char *sums[] = { s1, s2, s1, s2 };
	int fd = open(iso, O_RDONLY | O_CLOEXEC);
	struct iso_extents e;
	CHECK_INTEQ(isolayout_read(fd, size, paths, sums, 4, &e), 0);
	/* the empty file and the missing one have none */
	CHECK_INTEQ(e.n, 2);
	uint64_t lowest = UINT64_MAX;
	for (size_t i = 0; i < e.n; i++) {
		const char *want = streq(e.v[i].sum, s1) ? f1 : f2;
		CHECK_INTEQ(e.v[i].offset % 2048, 0);
		CHECK(e.v[i].offset + e.v[i].size <= size);
		char *bytes = xmalloc(e.v[i].size), *data = NULL;
		size_t len = 0;
		struct diags d = DIAGS_INIT;
		CHECK(pread(fd, bytes, e.v[i].size, (off_t)e.v[i].offset) == (ssize_t)e.v[i].size);
		CHECK_INTEQ(read_file(want, 1 << 20, &data, &len, &d), 0);
		CHECK(len == e.v[i].size && memcmp(bytes, data, len) == 0);
		diags_release(&d);
		free(bytes);
		free(data);
		if (e.v[i].offset < lowest)
			lowest = e.v[i].offset;
	}
	/* The directory records come before any data: read from them alone,
	 * the same extents. */
	struct iso_extents early;
	CHECK_INTEQ(isolayout_read(fd, lowest, paths, sums, 4, &early), 0);
	CHECK_INTEQ(early.n, e.n);
	for (size_t i = 0; i < e.n && i < early.n; i++)
		CHECK(isolayout_has(&early, &e.v[i]));
	/* Past the volume descriptors, nothing: refused, nothing known. */
	struct iso_extents none;
	CHECK(isolayout_read(fd, 16 * 2048, paths, sums, 4, &none) < 0);
	CHECK_INTEQ(none.n, 0);
	/* A short file as well. */
	CHECK_INTEQ(truncate(iso, 17 * 2048), 0);
	CHECK(isolayout_read(fd, size, paths, sums, 4, &none) < 0);
	close(fd);
	/* The record's text and back. */
	_cleanup_free_ char *text = isolayout_format(&e);
	struct iso_extents back;
	isolayout_parse(text, &back);
	CHECK_INTEQ(back.n, e.n);
	_cleanup_free_ char *again = isolayout_format(&back);
	CHECK_STREQ(again, text);
	isolayout_release(&back);
	isolayout_release(&early);
	isolayout_release(&e);
}

static void test_parse(void) {
	static const char S[] = "abe6a38c387ff68cdacb102544ff43f4e3560b4f7c1d0cdd77e64d6e85b0892b";
	_cleanup_free_ char *text = xasprintf(
		"extent 104448 27904000 %s\n"
		"extent 104449 10 %s\n"                 /* not on a block */
		"extent 2048 0 %s\n"                    /* empty */
		"extent 18446744073709549568 4096 %s\n" /* past 2^64 */
		"extent 4096 10 %.63s\n"                /* a short sum */
		"extent 4096 10 %sX\n"                  /* a long one */
		"extent 4096 10 %s trailing\n"
		"extents 4096 10 %s\n"
		"extent -4096 10 %s\n"
		"\n"
		"extent 8192 99999999999999999999999 %s\n"
		"extent 6144 7 %s",                     /* no newline at the end */
		S, S, S, S, S, S, S, S, S, S, S);
	struct iso_extents e;
	isolayout_parse(text, &e);
	CHECK_INTEQ(e.n, 2);
	if (e.n == 2) {
		CHECK(e.v[0].offset == 104448 && e.v[0].size == 27904000);
		CHECK_STREQ(e.v[0].sum, S);
		CHECK(e.v[1].offset == 6144 && e.v[1].size == 7);
	}
	struct iso_extent x = { 6144, 7, "" };
	memcpy(x.sum, S, sizeof(x.sum));
	CHECK(isolayout_has(&e, &x));
	x.size = 8;
	CHECK(!isolayout_has(&e, &x));
	isolayout_release(&e);
	isolayout_parse("", &e);
	CHECK_INTEQ(e.n, 0);
	isolayout_parse(NULL, &e);
	CHECK_INTEQ(e.n, 0);
}

int main(void) {
	if (!mkdtemp(root) || iso_init() < 0)
		return 1;
	test_read();
	test_parse();
	iso_finish();
	rm_rf(root);
	return check_summary("test_isolayout");
}
