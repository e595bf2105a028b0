/* Child processes: output captured apart or merged, exit statuses in
 * words, a missing program told apart from a failing one. */
#include <errno.h>
#include <string.h>
#include <sys/wait.h>

#include "buf.h"
#include "check.h"
#include "diag.h"
#include "runcmd.h"
#include "util.h"

static void test_capture(void) {
	struct diags d = DIAGS_INIT;
	struct buf out = BUF_INIT, err = BUF_INIT;
	int status = 0;
	const char *argv[] = { "sh", "-c", "echo out; echo err >&2; exit 3", NULL };
	CHECK_INTEQ(run_capture(argv, &out, &err, &status, &d), 0);
	CHECK_STREQ(out.data, "out\n");
	CHECK_STREQ(err.data, "err\n");
	char how[64];
	CHECK_STREQ(child_status_text(status, how), "exit status 3");
	buf_release(&out);
	buf_release(&err);

	/* A pipe to its stdin; it runs until we close it. */
	struct child c = CHILD_INIT;
	const char *cat[] = { "cat", NULL };
	CHECK_INTEQ(child_start(cat, CHILD_STDIN, &c, &d), 0);
	CHECK(write(c.in, "hi", 2) == 2);
	CHECK(child_running(&c));
	status = child_finish(&c, &out, &err);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	CHECK_STREQ(out.data, "hi");
	CHECK(!child_running(&c));
	buf_release(&out);
	buf_release(&err);
	CHECK_INTEQ(d.n, 0);
	diags_release(&d);
}

static void test_run_command(void) {
	static const struct {
		const char *script;
		int r;
		const char *error;
	} cases[] = {
		{ "true", 0, NULL },
		{ "echo first; echo last line >&2; exit 2", -EIO, "'sh' failed (exit status 2): last line" },
		{ "kill -9 $$", -EIO, "'sh' failed (signal 9): " },
		{ "exit 127", -ENOENT, "cannot run 'sh': not found" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct diags d = DIAGS_INIT;
		const char *argv[] = { "sh", "-c", cases[i].script, NULL };
		CHECK_INTEQ(run_command(argv, &d), cases[i].r);
		if (cases[i].error)
			CHECK(d.n == 1 && streq(d.v[0].msg, cases[i].error));
		else
			CHECK_INTEQ(d.n, 0);
		diags_release(&d);
	}
	struct diags d = DIAGS_INIT;
	const char *missing[] = { "dlws-no-such-program", NULL };
	CHECK_INTEQ(run_command(missing, &d), -ENOENT);
	CHECK(d.n == 1 && streq(d.v[0].msg, "cannot run 'dlws-no-such-program': No such file or directory"));
	diags_release(&d);
}

int main(void) {
	test_capture();
	test_run_command();
	return check_summary("test_runcmd");
}
