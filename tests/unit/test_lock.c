/* Locks between processes: exclusive and shared, --no-wait naming the
 * holder, a killed holder's lock taken over at once, one lock file per
 * place however its path is spelled, and sets taken in sorted order. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "diag.h"
#include "fsutil.h"
#include "lock.h"
#include "util.h"

static char root[] = "/tmp/dlws-test-lock.XXXXXX";

/* A holder in another process, like another dlws-mkimage: takes the lock
 * on `file` (shared or not) as `what`, says so on a pipe, and sleeps until
 * killed. */
static pid_t holder_start(const char *file, bool shared, const char *what) {
	int p[2];
	if (pipe(p) < 0)
		abort();
	pid_t pid = fork();
	if (pid == 0) {
		close(p[0]);
		struct diags d = DIAGS_INIT;
		const struct lock_opts o = { .shared = shared, .what = what };
		int fd;
		if (lock_take(file, &o, false, &fd, NULL, &d) < 0)
			_exit(1);
		(void)!write(p[1], "x", 1);
		for (;;)
			pause();
	}
	close(p[1]);
	char c;
	CHECK(read(p[0], &c, 1) == 1);
	close(p[0]);
	return pid;
}

static void holder_kill(pid_t pid) {
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

static void test_file_for(void) {
	struct diags d = DIAGS_INIT;
	_cleanup_free_ char *a = NULL, *b = NULL, *c = NULL, *want = xasprintf("%s/.keys.lock", root);
	_cleanup_free_ char *keys = path_join(root, "keys"), *other = xasprintf("%s/sub/../keys/", root);
	_cleanup_free_ char *sub = path_join(root, "sub");
	CHECK_INTEQ(mkdir(sub, 0755), 0);
	CHECK_INTEQ(lock_file_for(keys, false, &a, &d), 0);
	CHECK_STREQ(a, want);
	CHECK_INTEQ(lock_file_for(other, false, &b, &d), 0);
	CHECK_STREQ(b, want);
	/* A missing parent: made for a writer, left alone for a reader. */
	_cleanup_free_ char *deep = xasprintf("%s/out/x/pxe", root), *deep_dir = xasprintf("%s/out/x", root);
	CHECK_INTEQ(lock_file_for(deep, false, &c, &d), -ENOENT);
	CHECK(!path_exists(deep_dir));
	CHECK_INTEQ(lock_file_for(deep, true, &c, &d), 0);
	CHECK(path_exists(deep_dir));
	CHECK_INTEQ(d.n, 0);
	diags_release(&d);
}

static void test_exclusive(void) {
	struct diags d = DIAGS_INIT;
	_cleanup_free_ char *file = path_join(root, ".a.lock");
	pid_t pid = holder_start(file, false, "build");

	const struct lock_opts nowait = { .no_wait = true, .what = "certs" };
	int fd = 7;
	_cleanup_free_ char *holder = NULL;
	CHECK_INTEQ(lock_take(file, &nowait, false, &fd, &holder, &d), -EBUSY);
	CHECK_INTEQ(fd, -1);
	_cleanup_free_ char *want = xasprintf("pid %ld (build)", (long)pid);
	_cleanup_free_ char *words = lock_holder_words(holder);
	CHECK_STREQ(words, want);
	const struct lock_opts reader = { .no_wait = true, .shared = true };
	CHECK_INTEQ(lock_take(file, &reader, false, &fd, NULL, &d), -EBUSY);
	CHECK_INTEQ(d.n, 0);    /* -EBUSY is the caller's to tell */

	/* Killed, however: the kernel drops its lock and the file's text is
	 * only stale words. */
	holder_kill(pid);
	CHECK_INTEQ(lock_take(file, &nowait, false, &fd, NULL, &d), 0);
	CHECK(fd >= 0);
	char text[128] = "";
	int rfd = open(file, O_RDONLY);
	CHECK(read(rfd, text, sizeof(text) - 1) > 0);
	_cleanup_free_ char *mine = lock_holder_text("certs");
	CHECK(startswith(text, mine));
	lock_release(fd);
	CHECK(read(rfd, text, sizeof(text)) == 0 || lseek(rfd, 0, SEEK_END) == 0);
	close(rfd);
	diags_release(&d);
}

static void test_shared(void) {
	struct diags d = DIAGS_INIT;
	_cleanup_free_ char *file = path_join(root, ".b.lock");
	CHECK_INTEQ(write_file_atomic(file, "", 0, 0644, &d), 0);      /* a writer has been here */
	pid_t pid = holder_start(file, true, NULL);
	const struct lock_opts reader = { .no_wait = true, .shared = true };
	const struct lock_opts writer = { .no_wait = true, .what = "build" };
	int fd;
	CHECK_INTEQ(lock_take(file, &reader, false, &fd, NULL, &d), 0);
	lock_release(fd);
	CHECK_INTEQ(lock_take(file, &writer, false, &fd, NULL, &d), -EBUSY);
	holder_kill(pid);

	/* A reader creates no lock file: nobody has written there. */
	_cleanup_free_ char *none = path_join(root, ".none.lock");
	CHECK_INTEQ(lock_take(none, &reader, false, &fd, NULL, &d), 0);
	CHECK_INTEQ(fd, -1);
	CHECK(!path_exists(none));
	CHECK_INTEQ(d.n, 0);
	diags_release(&d);
}

static void test_set(void) {
	struct diags d = DIAGS_INIT;
	struct strv paths = STRV_INIT;
	strv_push_take(&paths, xasprintf("%s/out/pxe", root));
	strv_push_take(&paths, xasprintf("%s/keys", root));
	strv_push_take(&paths, xasprintf("%s/sub/../keys", root));
	strv_push_take(&paths, xasprintf("%s/out/a.iso", root));
	const struct lock_opts o = { .no_wait = true, .what = "build" };
	struct lock_set s;
	CHECK_INTEQ(lock_set_take(&s, &paths, &o, &d), 0);
	CHECK_INTEQ(s.n, 3);
	for (size_t i = 1; i < s.n; i++)
		CHECK(strcmp(s.files.v[i - 1], s.files.v[i]) < 0);

	/* Held by us: another process is refused, naming the path it wanted. */
	pid_t pid = fork();
	if (pid == 0) {
		struct diags cd = DIAGS_INIT;
		struct strv one = STRV_INIT;
		strv_push_take(&one, xasprintf("%s/out/pxe", root));
		struct lock_set cs;
		int r = lock_set_take(&cs, &one, &o, &cd);
		_cleanup_free_ char *want = xasprintf("'%s/out/pxe' is in use by pid %ld (build): not waiting (--no-wait)",
						      root, (long)getppid());
		_exit(r == -EBUSY && cd.n == 1 && streq(cd.v[0].msg, want) ? 0 : 1);
	}
	int status;
	waitpid(pid, &status, 0);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	lock_set_release(&s);
	CHECK_INTEQ(s.n, 0);
	CHECK_INTEQ(d.n, 0);
	strv_release(&paths);
	diags_release(&d);
}

int main(void) {
	if (!mkdtemp(root))
		return 1;
	test_file_for();
	test_exclusive();
	test_shared();
	test_set();
	rm_rf(root);
	return check_summary("test_lock");
}
