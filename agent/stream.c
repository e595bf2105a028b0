#include "stream.h"

#include <archive.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "sha256.h"

enum {
	PROGRESS_SECONDS = 10,
	/* What one read of the image asks for (a pipe gives at most 64 KiB). */
	SOURCE_CHUNK = 1 << 20,
	/* No byte from the client for this long: the download is stuck. More
	 * than curl's own retries take (5 of them, 1+2+4+8+16 s apart, each
	 * connect at most 10 s). */
	STALL_SECONDS = 300,
	/* Bytes after the end of the compressed data are hashed like the rest,
	 * but an endless stream must end. */
	TRAILING_LIMIT = 64 << 20,
	CLIENT_STDERR_LIMIT = 2048,
};

struct stream {
	struct stream_source src;  /* its strings are the caller's */
	struct archive *a;
	int fd;                    /* the file, or the read end of the client's stdout */
	bool eof;                  /* fd gave end-of-file: every byte of the image was read */
	uint64_t read;
	struct sha256 *hash;
	char sha256[SHA256_HEX + 1];  /* once eof: of every byte read */
	bool hashed;
	bool read_failed;
	char read_error[512];      /* why, when reading (not decompressing) failed */
	unsigned char *in;         /* the read callback's buffer, SOURCE_CHUNK */
	char *out;                 /* decompressed data, STREAM_CHUNK */
	char filter[32];
	/* The client, for a URL. */
	char client[16];           /* "curl", "wget"; "" for a file */
	pid_t pid;                 /* 0 when there is none */
	int err_fd;                /* the read end of its stderr, or -1 */
	bool reaped, killed;
	int status;                /* its wait status, once reaped */
	char err_text[CLIENT_STDERR_LIMIT + 1];  /* the end of what it said on stderr */
	size_t err_len;
};

/* "from " before a URL: "the OS image from http://..." but "the OS image /usr/...". */
static const char *from(const struct stream *s)
{
	return s->src.is_url ? "from " : "";
}

/* --- the client ------------------------------------------------------------- */

/* A program on PATH (absolute entries only: the agent runs as root), else in
 * the usual places of a live system. */
static int find_program(const char *name, char *out, size_t n)
{
	static const char fallback[] = "/usr/bin:/bin:/usr/sbin:/sbin";
	const char *path = getenv("PATH");

	for (int pass = 0; pass < 2; pass++) {
		const char *p = pass == 0 ? (path ? path : "") : fallback;
		while (*p) {
			size_t len = strcspn(p, ":");
			struct stat st;
			int w = snprintf(out, n, "%.*s/%s", (int)len, p, name);
			if (p[0] == '/' && w > 0 && (size_t)w < n && stat(out, &st) == 0 && S_ISREG(st.st_mode) &&
			    access(out, X_OK) == 0)
				return 0;
			p += len;
			if (*p == ':')
				p++;
		}
	}
	return -ENOENT;
}

/* Keeps the end of what the client says on stderr; closes err_fd at its end. */
static void client_stderr(struct stream *s)
{
	char buf[512];
	ssize_t got = read(s->err_fd, buf, sizeof buf);

	if (got < 0 && errno == EINTR)
		return;
	if (got <= 0) {
		close(s->err_fd);
		s->err_fd = -1;
		return;
	}
	if ((size_t)got > CLIENT_STDERR_LIMIT)
		got = CLIENT_STDERR_LIMIT;
	if (s->err_len + (size_t)got > CLIENT_STDERR_LIMIT) {
		size_t drop = s->err_len + (size_t)got - CLIENT_STDERR_LIMIT;
		memmove(s->err_text, s->err_text + drop, s->err_len - drop);
		s->err_len -= drop;
	}
	memcpy(s->err_text + s->err_len, buf, (size_t)got);
	s->err_len += (size_t)got;
	s->err_text[s->err_len] = '\0';
}

/* Waits for the client (killing it first if asked), and logs what it said. */
static void client_reap(struct stream *s, bool kill_it)
{
	char *line, *next;

	if (s->pid <= 0 || s->reaped)
		return;
	if (kill_it && kill(s->pid, SIGKILL) == 0)
		s->killed = true;
	/* It has exited or is dying: its stderr ends. */
	while (s->err_fd >= 0)
		client_stderr(s);
	while (waitpid(s->pid, &s->status, 0) < 0) {
		if (errno != EINTR) {
			s->status = 0x7f00;  /* as if it exited with 127 */
			break;
		}
	}
	s->reaped = true;
	for (line = s->err_text; line && *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		if (*line)
			log_step("%s", line);
		if (next)
			next[-1] = '\n';
	}
}

/* Whether the client, reaped and not killed by us, failed; why in buf. */
static bool client_failed(struct stream *s, char *buf, size_t n)
{
	char last[256] = "";
	size_t len;

	if (s->pid <= 0 || !s->reaped || s->killed)
		return false;
	if (WIFEXITED(s->status) && WEXITSTATUS(s->status) == 0)
		return false;
	/* The last line it said: its own reason. */
	len = s->err_len;
	while (len > 0 && (s->err_text[len - 1] == '\n' || s->err_text[len - 1] == '\r'))
		len--;
	if (len > 0) {
		size_t start = len;
		while (start > 0 && s->err_text[start - 1] != '\n')
			start--;
		snprintf(last, sizeof last, ": %.*s", (int)(len - start), s->err_text + start);
	}
	if (WIFEXITED(s->status))
		snprintf(buf, n, "%s exited with status %d%s", s->client, WEXITSTATUS(s->status), last);
	else if (WIFSIGNALED(s->status))
		snprintf(buf, n, "%s was killed by signal %d (%s)%s", s->client, WTERMSIG(s->status),
			 strsignal(WTERMSIG(s->status)), last);
	else
		snprintf(buf, n, "%s failed (wait status %#x)%s", s->client, (unsigned)s->status, last);
	return true;
}

static void move_fd(int from_fd, int to_fd)
{
	if (from_fd == to_fd)
		fcntl(to_fd, F_SETFD, 0);
	else if (dup2(from_fd, to_fd) < 0)
		_exit(127);
}

/* Starts curl (else wget) writing the image to a pipe: no shell, the URL
 * one argument (conf_check_url allowed nothing an option or a shell reads). */
static int client_start(struct stream *s, struct agent_err *e)
{
	char path[AGENT_PATH_MAX];
	const char *argv[10];
	int out[2] = { -1, -1 }, err[2] = { -1, -1 };
	pid_t pid;

	if (find_program("curl", path, sizeof path) == 0) {
		const char *curl[] = { "curl", "-fsS", "--retry", "5", "--retry-connrefused",
				       "--connect-timeout", "10", s->src.image, NULL };
		memcpy(argv, curl, sizeof curl);
	} else if (find_program("wget", path, sizeof path) == 0) {
		const char *wget[] = { "wget", "-q", "-O", "-", s->src.image, NULL };
		memcpy(argv, wget, sizeof wget);
	} else {
		return err_set(e, -ENOENT, "cannot fetch the OS image from %s: neither curl nor wget is in "
			       "PATH, /usr/bin, /bin, /usr/sbin or /sbin", s->src.display);
	}
	snprintf(s->client, sizeof s->client, "%s", argv[0]);
	if (pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0) {
		int r = -errno;
		if (out[0] >= 0) {
			close(out[0]);
			close(out[1]);
		}
		return err_set(e, r, "cannot make a pipe for %s: %s", s->client, strerror(-r));
	}
	/* Nothing buffered may be written twice. */
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid == 0) {
		int null = open("/dev/null", O_RDONLY);
		if (null > 0) {
			dup2(null, 0);
			close(null);
		}
		move_fd(err[1], 2);
		move_fd(out[1], 1);
		execv(path, (char *const *)argv);
		dprintf(2, "cannot run %s: %s\n", path, strerror(errno));
		_exit(127);
	}
	close(out[1]);
	close(err[1]);
	if (pid < 0) {
		int r = -errno;
		close(out[0]);
		close(err[0]);
		return err_set(e, r, "cannot start %s: %s", s->client, strerror(-r));
	}
	s->pid = pid;
	s->fd = out[0];
	s->err_fd = err[0];
	log_step("fetching the OS image from %s with %s (%s)", s->src.display, s->client, path);
	return 0;
}

/* --- reading: every byte is hashed ---------------------------------------------- */

static ssize_t source_read(struct stream *s)
{
	for (;;) {
		ssize_t got;
		int r;

		if (s->eof)
			return 0;
		if (s->pid > 0) {
			/* Its stderr too, so that it never blocks on a full pipe. */
			struct pollfd p[2] = { { s->fd, POLLIN, 0 }, { s->err_fd, POLLIN, 0 } };
			int n = poll(p, 2, STALL_SECONDS * 1000);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0) {
				r = -errno;
				snprintf(s->read_error, sizeof s->read_error, "poll: %s", strerror(-r));
				s->read_failed = true;
				return r;
			}
			if (n == 0) {
				snprintf(s->read_error, sizeof s->read_error, "no data from %s for %d s", s->client,
					 STALL_SECONDS);
				s->read_failed = true;
				return -ETIMEDOUT;
			}
			if (s->err_fd >= 0 && p[1].revents)
				client_stderr(s);
			if (!p[0].revents)
				continue;
		}
		got = read(s->fd, s->in, SOURCE_CHUNK);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			r = -errno;
			snprintf(s->read_error, sizeof s->read_error, "byte %llu: %s", (unsigned long long)s->read,
				 strerror(-r));
			s->read_failed = true;
			return r;
		}
		if (got == 0) {
			s->eof = true;
			return 0;
		}
		r = sha256_update(s->hash, s->in, (size_t)got);
		if (r < 0) {
			snprintf(s->read_error, sizeof s->read_error, "sha256 failed");
			s->read_failed = true;
			return r;
		}
		s->read += (uint64_t)got;
		return got;
	}
}

static la_ssize_t read_callback(struct archive *a, void *userdata, const void **buf)
{
	struct stream *s = userdata;
	ssize_t got = source_read(s);

	if (got < 0) {
		archive_set_error(a, (int)-got, "%s", s->read_error);
		return ARCHIVE_FATAL;
	}
	*buf = s->in;
	return got;
}

/* At end-of-file: the sha256 of every byte read. */
static int hash_done(struct stream *s)
{
	int r;

	if (s->hashed)
		return 0;
	r = sha256_final(s->hash, s->sha256);
	if (r == 0)
		s->hashed = true;
	return r;
}

static bool hash_differs(struct stream *s)
{
	return s->src.sha256 && s->eof && hash_done(s) == 0 && strcmp(s->sha256, s->src.sha256) != 0;
}

/* A libarchive failure, or the read under it. */
static int archive_failed(struct stream *s, const char *what, struct agent_err *e)
{
	if (s->read_failed)
		return err_set(e, -EIO, "cannot read the OS image %s%s: %s", from(s), s->src.display, s->read_error);
	return err_set(e, -EIO, "cannot %s the OS image %s%s: %s", what, from(s), s->src.display,
		       archive_error_string(s->a));
}

/* After a failure while reading: when the image had ended, the client's own
 * failure or a wrong sha256 is the cause to report (an HTTP error leaves an
 * empty or cut stream). Otherwise the client, if any, is stopped. */
static int failed(struct stream *s, int r, struct agent_err *e)
{
	char why[sizeof e->msg], was[sizeof e->msg];

	if (!s->eof) {
		client_reap(s, true);
		return r;
	}
	client_reap(s, false);
	if (client_failed(s, why, sizeof why))
		return err_set(e, -EIO, "cannot fetch the OS image from %s: %s", s->src.display, why);
	if (hash_differs(s)) {
		snprintf(was, sizeof was, "%s", e->msg);
		return err_set(e, -EBADMSG, "the OS image %s%s has sha256 %s, install.conf expects %s (%s)", from(s),
			       s->src.display, s->sha256, s->src.sha256, was);
	}
	return r;
}

int stream_open(const struct stream_source *src, struct stream **ret, struct agent_err *e)
{
	struct archive_entry *entry;
	struct stream *s = calloc(1, sizeof *s);
	int r;

	if (!s)
		return err_set(e, -ENOMEM, "out of memory");
	s->src = *src;
	s->fd = -1;
	s->err_fd = -1;
	s->a = archive_read_new();
	s->hash = sha256_new();
	s->in = malloc(SOURCE_CHUNK);
	s->out = malloc(STREAM_CHUNK);
	if (!s->a || !s->hash || !s->in || !s->out) {
		r = err_set(e, -ENOMEM, "out of memory");
		goto fail;
	}
	if (archive_read_support_filter_all(s->a) != ARCHIVE_OK ||
	    archive_read_support_format_raw(s->a) != ARCHIVE_OK) {
		r = err_set(e, -EIO, "libarchive: %s", archive_error_string(s->a));
		goto fail;
	}
	if (src->is_url) {
		r = client_start(s, e);
		if (r < 0)
			goto fail;
	} else {
		s->fd = open(src->image, O_RDONLY | O_CLOEXEC);
		if (s->fd < 0) {
			r = err_set(e, -errno, "cannot open the OS image %s: %s", src->display, strerror(errno));
			goto fail;
		}
	}
	if (archive_read_open(s->a, s, NULL, read_callback, NULL) != ARCHIVE_OK) {
		r = failed(s, archive_failed(s, "open", e), e);
		goto fail;
	}
	r = archive_read_next_header(s->a, &entry);
	if (r == ARCHIVE_EOF) {
		r = failed(s, err_set(e, -ENODATA, "the OS image %s%s is empty", from(s), src->display), e);
		goto fail;
	}
	if (r < ARCHIVE_WARN) {
		r = failed(s, archive_failed(s, "read", e), e);
		goto fail;
	}
	snprintf(s->filter, sizeof s->filter, "%s", archive_filter_name(s->a, 0));
	*ret = s;
	return 0;
fail:
	stream_free(s);
	return r;
}

static int flush_chunk(struct stream *s, int fd, size_t len, uint64_t *written, const char *display,
		       struct agent_err *e)
{
	int r;

	if (len == 0)
		return 0;
	if (*written + len > s->src.size)
		return err_set(e, -EFBIG, "the OS image %s%s is larger than install.conf's DLWS_INSTALL_IMAGE_SIZE "
			       "(%llu bytes)", from(s), s->src.display, (unsigned long long)s->src.size);
	r = write_all(fd, s->out, len);
	if (r < 0)
		return err_set(e, r, "cannot write %s at byte %llu: %s", display, (unsigned long long)*written,
			       strerror(-r));
	*written += len;
	return 0;
}

/* The rest of the image after its compressed data: read and hashed. */
static int read_rest(struct stream *s, struct agent_err *e)
{
	uint64_t trailing = 0;

	while (!s->eof) {
		ssize_t got = source_read(s);
		if (got < 0)
			return err_set(e, (int)got, "cannot read the OS image %s%s: %s", from(s), s->src.display,
				       s->read_error);
		trailing += (uint64_t)got;
		if (trailing > TRAILING_LIMIT)
			return err_set(e, -EFBIG, "the OS image %s%s goes on for more than %d MiB after the end of "
				       "its compressed data", from(s), s->src.display, TRAILING_LIMIT >> 20);
	}
	return 0;
}

int stream_copy(struct stream *s, int fd, const char *display, struct stream_result *ret,
		struct agent_err *e)
{
	double start = now_seconds(), last = start;
	uint64_t written = 0;
	size_t fill = 0;
	char why[sizeof e->msg];
	int r;

	log_step("streaming the OS image %s%s (%s) to %s", from(s), s->src.display, s->filter, display);
	for (;;) {
		la_ssize_t got = archive_read_data(s->a, s->out + fill, STREAM_CHUNK - fill);
		double now;
		if (got < 0) {
			if (s->read_failed)
				r = archive_failed(s, "read", e);
			else
				r = err_set(e, -EIO, "cannot decompress the OS image %s%s at byte %llu: %s", from(s),
					    s->src.display, (unsigned long long)(written + fill),
					    archive_error_string(s->a));
			return failed(s, r, e);
		}
		if (got == 0)
			break;
		fill += (size_t)got;
		if (fill < STREAM_CHUNK)
			continue;
		r = flush_chunk(s, fd, fill, &written, display, e);
		if (r < 0)
			return failed(s, r, e);
		fill = 0;
		now = now_seconds();
		if (now - last >= PROGRESS_SECONDS) {
			log_step("%llu MiB written, %llu MiB read (%.1f MB/s)", (unsigned long long)(written >> 20),
				 (unsigned long long)(s->read >> 20), (double)written / 1e6 / (now - start));
			last = now;
		}
	}
	r = flush_chunk(s, fd, fill, &written, display, e);
	if (r == 0)
		r = read_rest(s, e);
	if (r < 0)
		return failed(s, r, e);
	client_reap(s, false);
	if (client_failed(s, why, sizeof why))
		return err_set(e, -EIO, "cannot fetch the OS image from %s: %s", s->src.display, why);
	r = hash_done(s);
	if (r < 0)
		return err_set(e, r, "cannot hash the OS image %s%s", from(s), s->src.display);
	if (s->src.sha256 && strcmp(s->sha256, s->src.sha256) != 0)
		return err_set(e, -EBADMSG, "the OS image %s%s has sha256 %s, install.conf expects %s", from(s),
			       s->src.display, s->sha256, s->src.sha256);
	if (written != s->src.size)
		return err_set(e, -EBADMSG, "the OS image %s%s is %llu bytes uncompressed, install.conf says %llu",
			       from(s), s->src.display, (unsigned long long)written,
			       (unsigned long long)s->src.size);
	if (fsync(fd) < 0)
		return err_set(e, -errno, "cannot sync %s: %s", display, strerror(errno));
	ret->bytes = written;
	ret->read = s->read;
	ret->seconds = now_seconds() - start;
	snprintf(ret->filter, sizeof ret->filter, "%s", s->filter);
	snprintf(ret->sha256, sizeof ret->sha256, "%s", s->sha256);
	snprintf(ret->client, sizeof ret->client, "%s", s->client);
	return 0;
}

void stream_free(struct stream *s)
{
	if (!s)
		return;
	client_reap(s, true);
	if (s->a)
		archive_read_free(s->a);
	if (s->fd >= 0)
		close(s->fd);
	if (s->err_fd >= 0)
		close(s->err_fd);
	sha256_free(s->hash);
	free(s->in);
	free(s->out);
	free(s);
}
