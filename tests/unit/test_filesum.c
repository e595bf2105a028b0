/* File sums remembered by identity: a file changed in place is hashed
 * again even at the same size with its mtime put back (ctime moves); a
 * sum survives a save and load; a sum taken right after the file changed
 * ("racy") is not saved; a damaged memo file is ignored. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "filesum.h"
#include "fsutil.h"
#include "hash.h"
#include "util.h"

static char root[] = "/tmp/dlws-test-filesum.XXXXXX";

static void put(const char *path, const char *text) {
	struct diags d = DIAGS_INIT;
	CHECK_INTEQ(write_file_atomic(path, text, strlen(text), 0644, &d), 0);
	diags_release(&d);
}

/* Rewrites `path` in place (same inode) and puts its mtime back. */
static void rewrite_in_place(const char *path, const char *text) {
	struct stat st;
	CHECK_INTEQ(stat(path, &st), 0);
	int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
	CHECK(fd >= 0);
	CHECK_INTEQ(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	struct timespec t[2] = { st.st_atim, st.st_mtim };
	CHECK_INTEQ(utimensat(AT_FDCWD, path, t, 0), 0);
}

static void sum_of(const char *path, char hex[SHA256_HEX_LEN + 1]) {
	struct diags d = DIAGS_INIT;
	uint64_t size = 0;
	CHECK_INTEQ(filesum(path, hex, &size, &d), 0);
	diags_release(&d);
}

static void expect(const char *path, const char *text) {
	char want[SHA256_HEX_LEN + 1], got[SHA256_HEX_LEN + 1];
	sha256_hex(text, strlen(text), want);
	sum_of(path, got);
	CHECK_STREQ(got, want);
}

static void test_change_seen(void) {
	filesum_reset();
	_cleanup_free_ char *f = path_join(root, "kubelet");
	put(f, "version one");
	expect(f, "version one");
	expect(f, "version one");
	/* Same size, same inode, mtime put back: ctime still moved. */
	rewrite_in_place(f, "version two");
	expect(f, "version two");
	struct diags d = DIAGS_INIT;
	char hex[SHA256_HEX_LEN + 1];
	_cleanup_free_ char *missing = path_join(root, "missing");
	CHECK_INTEQ(filesum(missing, hex, NULL, &d), -ENOENT);
	CHECK_INTEQ(d.n_errors, 1);
	diags_release(&d);
}

static void test_save_load(void) {
	filesum_reset();
	_cleanup_free_ char *old = path_join(root, "old");
	_cleanup_free_ char *fresh = path_join(root, "fresh");
	_cleanup_free_ char *memo = path_join(root, "sums");
	put(old, "made a while ago");
	/* Changed two seconds before it is hashed: not racy. */
	struct timespec t[2] = { { time(NULL) - 2, 0 }, { time(NULL) - 2, 0 } };
	CHECK_INTEQ(utimensat(AT_FDCWD, old, t, 0), 0);
	sleep(2); /* its ctime (set now by utimensat) too */
	put(fresh, "just made");
	/* changed "after" it is hashed (mtime ahead): racy however slow we are */
	struct timespec ahead[2] = { { time(NULL) + 10, 0 }, { time(NULL) + 10, 0 } };
	CHECK_INTEQ(utimensat(AT_FDCWD, fresh, ahead, 0), 0);
	expect(old, "made a while ago");
	expect(fresh, "just made");
	filesum_save(memo);
	_cleanup_free_ char *text = NULL;
	size_t len = 0;
	struct diags d = DIAGS_INIT;
	CHECK_INTEQ(read_file(memo, 1 << 16, &text, &len, &d), 0);
	diags_release(&d);
	/* The header and the old file's line; the racy one is left out. */
	size_t lines = 0;
	for (size_t i = 0; i < len; i++)
		lines += text[i] == '\n';
	CHECK_INTEQ(lines, 2);
	char want[SHA256_HEX_LEN + 1];
	sha256_hex("made a while ago", strlen("made a while ago"), want);
	CHECK(text && strstr(text, want) != NULL);

	/* Loaded into a new run: the remembered sum is used. Proven by a
	 * memo that lies: its sum is returned for the unchanged file. */
	char *lie = xstrdup(text);
	char *at = strstr(lie, want);
	memset(at, '0', SHA256_HEX_LEN);
	put(memo, lie);
	free(lie);
	filesum_reset();
	filesum_load(memo);
	char got[SHA256_HEX_LEN + 1];
	sum_of(old, got);
	CHECK_STREQ(got, "0000000000000000000000000000000000000000000000000000000000000000");
	/* A change is seen all the same. */
	rewrite_in_place(old, "made a while agO");
	expect(old, "made a while agO");

	/* Damaged or foreign memo files remember nothing. */
	filesum_reset();
	put(memo, "not a memo\n1 2 3\n");
	filesum_load(memo);
	expect(fresh, "just made");
}

int main(void) {
	CHECK(mkdtemp(root) != NULL);
	test_change_seen();
	test_save_load();
	rm_rf(root);
	return check_summary("test_filesum");
}
