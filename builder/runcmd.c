#include "runcmd.h"

#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "buf.h"
#include "util.h"

extern char **environ;

#define OUTPUT_LIMIT ((size_t)64 << 10)

static const char *last_line(struct buf *b) {
	if (!b->data)
		return "";
	while (b->len && (b->data[b->len - 1] == '\n' || b->data[b->len - 1] == ' '))
		b->data[--b->len] = '\0';
	const char *nl = strrchr(b->data, '\n');
	return nl ? nl + 1 : b->data;
}

int run_command(const char *const *argv, struct diags *d) {
	int pipefd[2];
	if (pipe2(pipefd, O_CLOEXEC) < 0) {
		int r = -errno;
		diag_error(d, NULL, "cannot run '%s': %s", argv[0], strerror(errno));
		return r;
	}
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, pipefd[1], STDOUT_FILENO);
	posix_spawn_file_actions_adddup2(&fa, pipefd[1], STDERR_FILENO);
	posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
	pid_t pid;
	int e = posix_spawnp(&pid, argv[0], &fa, NULL, (char *const *)argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(pipefd[1]);
	if (e != 0) {
		close(pipefd[0]);
		diag_error(d, NULL, "cannot run '%s': %s", argv[0], strerror(e));
		return e == ENOENT ? -ENOENT : -e;
	}
	/* Keep reading past the limit so the child never blocks on a full pipe. */
	struct buf out = { .limit = OUTPUT_LIMIT };
	char chunk[4096];
	for (;;) {
		ssize_t n = read(pipefd[0], chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		(void)buf_append(&out, chunk, (size_t)n);
	}
	close(pipefd[0]);
	int status;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	int r = 0;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		r = 0;
	else if (WIFEXITED(status) && WEXITSTATUS(status) == 127) {
		diag_error(d, NULL, "cannot run '%s': not found", argv[0]);
		r = -ENOENT;
	} else {
		diag_error(d, NULL, "'%s' failed (%s %d): %s", argv[0], WIFEXITED(status) ? "exit status" : "signal",
			   WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), last_line(&out));
		r = -EIO;
	}
	buf_release(&out);
	return r;
}
