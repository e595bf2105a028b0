#include "runcmd.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util.h"

#define OUTPUT_LIMIT ((size_t)64 << 10)

static void close_fd(int *fd) {
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* Puts `fd` at `target` without close-on-exec. */
static int move_fd(int fd, int target) {
	if (fd == target)
		return fcntl(fd, F_SETFD, 0);
	return dup2(fd, target) < 0 ? -1 : 0;
}

int child_start(const char *const *argv, unsigned flags, struct child *ret, struct diags *d) {
	bool with_stdin = flags & CHILD_STDIN, merge = flags & CHILD_MERGE_STDERR;
	int in[2] = { -1, -1 }, out[2] = { -1, -1 }, err[2] = { -1, -1 }, ex[2] = { -1, -1 };
	if ((with_stdin && pipe2(in, O_CLOEXEC) < 0) || pipe2(out, O_CLOEXEC) < 0 || (!merge && pipe2(err, O_CLOEXEC) < 0) ||
	    pipe2(ex, O_CLOEXEC) < 0) {
		int r = -errno;
		diag_error(d, NULL, "cannot run '%s': %s", argv[0], strerror(errno));
		for (int i = 0; i < 2; i++) {
			close_fd(&in[i]);
			close_fd(&out[i]);
			close_fd(&err[i]);
			close_fd(&ex[i]);
		}
		return r;
	}
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid == 0) {
		(void)prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		int nul = with_stdin ? in[0] : open("/dev/null", O_RDONLY);
		if (nul < 0 || move_fd(nul, STDIN_FILENO) < 0 || move_fd(out[1], STDOUT_FILENO) < 0 ||
		    move_fd(merge ? STDOUT_FILENO : err[1], STDERR_FILENO) < 0)
			_exit(127);
		signal(SIGPIPE, SIG_DFL);
		execvp(argv[0], (char *const *)argv);
		int e = errno;
		(void)!write(ex[1], &e, sizeof(e));
		_exit(127);
	}
	int fork_errno = errno;
	close_fd(&in[0]);
	close_fd(&out[1]);
	close_fd(&err[1]);
	close_fd(&ex[1]);
	/* The exec's errno comes through `ex`; a successful exec closes it. */
	int e = pid < 0 ? fork_errno : 0;
	if (pid > 0) {
		ssize_t n;
		while ((n = read(ex[0], &e, sizeof(e))) < 0 && errno == EINTR)
			;
		if (n != (ssize_t)sizeof(e))
			e = 0;
		else
			while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
				;
	}
	close_fd(&ex[0]);
	if (e) {
		close_fd(&in[1]);
		close_fd(&out[0]);
		close_fd(&err[0]);
		diag_error(d, NULL, "cannot run '%s': %s", argv[0], strerror(e));
		return -e;
	}
	*ret = (struct child){ pid, in[1], out[0], err[0] };
	return 0;
}

bool child_pump(struct child *c, struct buf *out, struct buf *err) {
	struct pollfd p[2];
	int *fds[2];
	struct buf *bufs[2];
	nfds_t n = 0;
	if (c->out >= 0) {
		p[n] = (struct pollfd){ .fd = c->out, .events = POLLIN };
		fds[n] = &c->out;
		bufs[n++] = out;
	}
	if (c->err >= 0) {
		p[n] = (struct pollfd){ .fd = c->err, .events = POLLIN };
		fds[n] = &c->err;
		bufs[n++] = err;
	}
	if (n == 0)
		return false;
	if (poll(p, n, -1) < 0)
		return true;  /* EINTR */
	for (nfds_t i = 0; i < n; i++) {
		if (!p[i].revents)
			continue;
		char chunk[16384];
		ssize_t k = read(*fds[i], chunk, sizeof(chunk));
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			close_fd(fds[i]);
		else
			(void)buf_append(bufs[i], chunk, (size_t)k);
	}
	return true;
}

int child_finish(struct child *c, struct buf *out, struct buf *err) {
	close_fd(&c->in);
	while (child_pump(c, out, err))
		;
	int status = 0;
	while (c->pid > 0 && waitpid(c->pid, &status, 0) < 0 && errno == EINTR)
		;
	c->pid = -1;
	return status;
}

bool child_running(struct child *c) {
	int status;
	if (c->pid > 0 && waitpid(c->pid, &status, WNOHANG) == 0)
		return true;
	c->pid = -1;
	return false;
}

const char *child_status_text(int status, char buf[64]) {
	if (WIFEXITED(status))
		snprintf(buf, 64, "exit status %d", WEXITSTATUS(status));
	else
		snprintf(buf, 64, "signal %d", WIFSIGNALED(status) ? WTERMSIG(status) : 0);
	return buf;
}

int run_capture(const char *const *argv, struct buf *out, struct buf *err, int *ret_status, struct diags *d) {
	struct child c = CHILD_INIT;
	int r = child_start(argv, 0, &c, d);
	if (r == 0)
		*ret_status = child_finish(&c, out, err);
	return r;
}

static const char *last_line(struct buf *b) {
	if (!b->data)
		return "";
	while (b->len && (b->data[b->len - 1] == '\n' || b->data[b->len - 1] == ' '))
		b->data[--b->len] = '\0';
	const char *nl = strrchr(b->data, '\n');
	return nl ? nl + 1 : b->data;
}

int run_command(const char *const *argv, struct diags *d) {
	struct child c = CHILD_INIT;
	int r = child_start(argv, CHILD_MERGE_STDERR, &c, d);
	if (r < 0)
		return r;
	struct buf out = { .limit = OUTPUT_LIMIT }, unused = BUF_INIT;
	int status = child_finish(&c, &out, &unused);
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		r = 0;
	} else if (WIFEXITED(status) && WEXITSTATUS(status) == 127) {
		diag_error(d, NULL, "cannot run '%s': not found", argv[0]);
		r = -ENOENT;
	} else {
		char how[64];
		diag_error(d, NULL, "'%s' failed (%s): %s", argv[0], child_status_text(status, how), last_line(&out));
		r = -EIO;
	}
	buf_release(&out);
	return r;
}
