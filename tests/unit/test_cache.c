/* The build cache: a miss, then a hit by hard link with the same bytes; a
 * truncated or corrupted entry is removed and reported as a miss, never
 * used; an entry without its sum does not exist; pruning drops the least
 * recently used beyond the bound and whatever a killed build left in tmp/,
 * looking at every entry only when the count of bytes says so; a cache
 * that cannot be made leaves caching off with a warning. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cache.h"
#include "check.h"
#include "fsutil.h"
#include "util.h"

static char root[] = "/tmp/dlws-test-cache.XXXXXX";

static char *put_file(const char *name, const char *text) {
	char *p = path_join(root, name);
	struct diags d = DIAGS_INIT;
	CHECK_INTEQ(write_file_atomic(p, text, strlen(text), 0644, &d), 0);
	diags_release(&d);
	return p;
}

static char *slurp(const char *path) {
	struct diags d = DIAGS_INIT;
	char *s = NULL;
	size_t len;
	if (read_file(path, 1 << 20, &s, &len, &d) < 0)
		s = NULL;
	diags_release(&d);
	return s;
}

static const char K1[] = "1111111111111111111111111111111111111111111111111111111111111111";
static const char K2[] = "2222222222222222222222222222222222222222222222222222222222222222";
static const char K3[] = "3333333333333333333333333333333333333333333333333333333333333333";

static void test_get_put(void) {
	struct diags d = DIAGS_INIT;
	_cleanup_free_ char *dir = path_join(root, "cache");
	struct cache c;
	cache_open(&c, dir, CACHE_DEFAULT_MAX, &d);
	CHECK(c.dir != NULL);
	_cleanup_free_ char *src = put_file("seg1", "segment bytes");
	_cleanup_free_ char *dst = path_join(root, "out1");
	CHECK_INTEQ(cache_get(&c, K1, dst, 0644, &d), 0);
	CHECK(!path_exists(dst));
	cache_put(&c, K1, src, &d);
	CHECK_INTEQ(cache_get(&c, K1, dst, 0644, &d), 1);
	_cleanup_free_ char *got = slurp(dst);
	CHECK_STREQ(got, "segment bytes");
	CHECK_INTEQ(c.hits, 1);
	CHECK_INTEQ(c.misses, 1);

	/* Corrupted in place (an output hard-linked to it, then changed): a
	 * miss, and the entry is gone. */
	_cleanup_free_ char *obj = xasprintf("%s/objects/%s", dir, K1);
	int fd = open(obj, O_WRONLY);
	CHECK(fd >= 0 && pwrite(fd, "X", 1, 0) == 1);
	close(fd);
	_cleanup_free_ char *dst2 = path_join(root, "out2");
	CHECK_INTEQ(cache_get(&c, K1, dst2, 0644, &d), 0);
	CHECK(!path_exists(dst2) && !path_exists(obj));
	CHECK_INTEQ(c.damaged, 1);

	/* Truncated: the same. */
	cache_put(&c, K2, src, &d);
	_cleanup_free_ char *obj2 = xasprintf("%s/objects/%s", dir, K2);
	CHECK_INTEQ(truncate(obj2, 4), 0);
	CHECK_INTEQ(cache_get(&c, K2, dst2, 0644, &d), 0);
	CHECK_INTEQ(c.damaged, 2);

	/* Bytes without their sum (a build killed between the renames). */
	_cleanup_free_ char *obj3 = xasprintf("%s/objects/%s", dir, K3);
	struct diags q = DIAGS_INIT;
	CHECK_INTEQ(copy_file(src, obj3, 0444, &q), 0);
	diags_release(&q);
	CHECK_INTEQ(cache_get(&c, K3, dst2, 0644, &d), 0);
	cache_close(&c);
	CHECK(!path_exists(obj3));      /* pruned: no count yet, every entry looked at */
	for (size_t i = 0; i < d.n; i++)
		CHECK(d.v[i].level == DIAG_NOTE);
	diags_release(&d);
}

static void test_prune(void) {
	struct diags d = DIAGS_INIT;
	_cleanup_free_ char *dir = path_join(root, "small");
	struct cache c;
	cache_open(&c, dir, 25, &d);    /* room for two 10-byte entries */
	_cleanup_free_ char *src = put_file("ten", "0123456789");
	cache_put(&c, K1, src, &d);
	usleep(20000);
	cache_put(&c, K2, src, &d);
	usleep(20000);
	cache_put(&c, K3, src, &d);
	usleep(20000);
	_cleanup_free_ char *dst = path_join(root, "o");
	CHECK_INTEQ(cache_get(&c, K1, dst, 0644, &d), 1);       /* K1 used last now */
	_cleanup_free_ char *stale = xasprintf("%s/tmp/left.123", dir);
	CHECK_INTEQ(copy_file(src, stale, 0644, &d), 0);
	cache_close(&c);
	_cleanup_free_ char *o1 = xasprintf("%s/objects/%s", dir, K1);
	_cleanup_free_ char *o2 = xasprintf("%s/objects/%s", dir, K2);
	_cleanup_free_ char *o3 = xasprintf("%s/objects/%s", dir, K3);
	CHECK(path_exists(o1) && !path_exists(o2) && path_exists(o3));
	CHECK(!path_exists(stale));
	CHECK_INTEQ(d.n, 0);
	diags_release(&d);
}


static char *size_of(const char *dir) {
	_cleanup_free_ char *p = path_join(dir, "size");
	return slurp(p);
}

/* The count in `size` and `added` spares a look at every entry: sum-less
 * bytes planted in objects/ (which only a look removes) show when one was
 * taken. */
static void test_count(void) {
	struct diags d = DIAGS_INIT;
	_cleanup_free_ char *dir = path_join(root, "count");
	_cleanup_free_ char *src = put_file("ten2", "0123456789");
	_cleanup_free_ char *junk = xasprintf("%s/objects/junk", dir);
	struct cache c, c2;

	cache_open(&c, dir, 25, &d);
	cache_put(&c, K1, src, &d);
	cache_close(&c);
	_cleanup_free_ char *s1 = size_of(dir);
	CHECK_STREQ(s1, "10 0\n");             /* none before: looked */

	CHECK_INTEQ(copy_file(src, junk, 0644, &d), 0);
	usleep(20000);
	cache_open(&c, dir, 25, &d);
	cache_put(&c, K2, src, &d);
	cache_close(&c);
	_cleanup_free_ char *s2 = size_of(dir);
	CHECK_STREQ(s2, "20 1\n");             /* fits: counted, not looked */
	CHECK(path_exists(junk));

	/* two builds at once: the first counts what it added, the last tidies */
	usleep(20000);
	cache_open(&c, dir, 25, &d);
	cache_open(&c2, dir, 25, &d);
	cache_put(&c, K3, src, &d);
	cache_close(&c);
	_cleanup_free_ char *added = path_join(dir, "added");
	_cleanup_free_ char *a = slurp(added);
	CHECK_STREQ(a, "10\n");
	_cleanup_free_ char *s3 = size_of(dir);
	CHECK_STREQ(s3, "20 1\n");
	cache_close(&c2);
	/* 30 > 25: looked, the oldest (K1) dropped, the junk gone */
	_cleanup_free_ char *s4 = size_of(dir);
	CHECK_STREQ(s4, "20 0\n");
	CHECK(!path_exists(junk) && !path_exists(added));
	_cleanup_free_ char *o1 = xasprintf("%s/objects/%s", dir, K1);
	_cleanup_free_ char *o3 = xasprintf("%s/objects/%s", dir, K3);
	CHECK(!path_exists(o1) && path_exists(o3));

	/* a look every 32 closes, whatever the count */
	CHECK_INTEQ(copy_file(src, junk, 0644, &d), 0);
	for (int i = 1; i < 32; i++) {
		cache_open(&c, dir, 25, &d);
		cache_close(&c);
	}
	CHECK(path_exists(junk));
	cache_open(&c, dir, 25, &d);
	cache_close(&c);
	CHECK(!path_exists(junk));

	/* a count that cannot be read: looked */
	_cleanup_free_ char *size = path_join(dir, "size");
	CHECK_INTEQ(copy_file(src, junk, 0644, &d), 0);
	struct diags q = DIAGS_INIT;
	CHECK_INTEQ(write_file_atomic(size, "garbage", 7, 0644, &q), 0);
	diags_release(&q);
	cache_open(&c, dir, 25, &d);
	cache_close(&c);
	CHECK(!path_exists(junk));
	_cleanup_free_ char *s5 = size_of(dir);
	CHECK_STREQ(s5, "20 0\n");
	CHECK_INTEQ(d.n, 0);
	diags_release(&d);
}

static void test_unusable(void) {
	struct diags d = DIAGS_INIT;
	_cleanup_free_ char *file = put_file("plain", "x");
	_cleanup_free_ char *dir = path_join(file, "cache");    /* under a file */
	struct cache c;
	cache_open(&c, dir, CACHE_DEFAULT_MAX, &d);
	CHECK(c.dir == NULL);
	CHECK(d.n == 1 && d.v[0].level == DIAG_WARNING);
	_cleanup_free_ char *dst = path_join(root, "never");
	CHECK_INTEQ(cache_get(&c, K1, dst, 0644, &d), 0);
	cache_put(&c, K1, file, &d);
	cache_close(&c);
	CHECK_INTEQ(d.n, 1);
	diags_release(&d);
}

int main(void) {
	if (!mkdtemp(root))
		return 1;
	test_get_put();
	test_prune();
	test_count();
	test_unusable();
	rm_rf(root);
	return check_summary("test_cache");
}
