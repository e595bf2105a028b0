/* File contents for libisofs, read in large pieces (isofile.h). */
#include "isofile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* libisofs asks for 2 KiB at a time; the file is read this much at once. */
#define PIECE (512 * 1024)

struct isofile {
	char *path;
	uint64_t size;          /* what the image declares */
	uint64_t left;          /* of `size`, not yet read from the file */
	ino_t id;
	int fd;
	unsigned char *buf;
	size_t pos, len;
};

static int open_error(int e) {
	switch (e) {
	case ENOENT:
		return ISO_FILE_DOESNT_EXIST;
	case EACCES:
	case EPERM:
		return ISO_FILE_ACCESS_DENIED;
	case ENOMEM:
		return ISO_OUT_OF_MEM;
	default:
		return ISO_FILE_ERROR;
	}
}

static int f_open(IsoStream *s) {
	struct isofile *f = s->data;
	if (f->fd >= 0)
		return ISO_FILE_ALREADY_OPENED;
	int fd = open(f->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return open_error(errno);
	struct stat st;
	if (fstat(fd, &st) < 0) {
		int e = errno;
		close(fd);
		return open_error(e);
	}
	f->buf = malloc(PIECE);
	if (!f->buf) {
		close(fd);
		return ISO_OUT_OF_MEM;
	}
	(void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	f->fd = fd;
	f->pos = f->len = 0;
	f->left = f->size;
	/* As libisofs's own streams say it: the image keeps the size it
	 * declared, padded or cut. */
	if ((uint64_t)st.st_size > f->size)
		return 2;
	return (uint64_t)st.st_size < f->size ? 3 : 1;
}

static int f_close(IsoStream *s) {
	struct isofile *f = s->data;
	if (f->fd < 0)
		return ISO_FILE_NOT_OPENED;
	close(f->fd);
	f->fd = -1;
	free(f->buf);
	f->buf = NULL;
	return 1;
}

static off_t f_get_size(IsoStream *s) {
	return (off_t)((struct isofile *)s->data)->size;
}

/* All of `count` bytes, or fewer only at the end (the next call says 0). */
static int f_read(IsoStream *s, void *out, size_t count) {
	struct isofile *f = s->data;
	if (f->fd < 0)
		return ISO_FILE_NOT_OPENED;
	if (count > INT32_MAX)
		count = INT32_MAX;
	size_t got = 0;
	while (got < count) {
		if (f->pos == f->len) {
			if (f->left == 0)
				break;
			size_t want = f->left < PIECE ? (size_t)f->left : PIECE;
			ssize_t n = read(f->fd, f->buf, want);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0)
				return ISO_FILE_READ_ERROR;
			if (n == 0) {
				f->left = 0;
				break;
			}
			f->pos = 0;
			f->len = (size_t)n;
			f->left -= (uint64_t)n;
		}
		size_t k = count - got < f->len - f->pos ? count - got : f->len - f->pos;
		memcpy((unsigned char *)out + got, f->buf + f->pos, k);
		f->pos += k;
		got += k;
	}
	return (int)got;
}

static int f_is_repeatable(IsoStream *s) {
	(void)s;
	return 1;
}

/* fs 0 and device 0: an identity of the caller's (libisofs's serial_id). */
static void f_get_id(IsoStream *s, unsigned int *fs_id, dev_t *dev_id, ino_t *ino_id) {
	*fs_id = 0;
	*dev_id = 0;
	*ino_id = ((struct isofile *)s->data)->id;
}

static void f_free(IsoStream *s) {
	struct isofile *f = s->data;
	if (f->fd >= 0)
		close(f->fd);
	free(f->buf);
	free(f->path);
	free(f);
}

static int f_update_size(IsoStream *s) {
	struct isofile *f = s->data;
	struct stat st;
	if (stat(f->path, &st) < 0)
		return open_error(errno);
	f->size = (uint64_t)st.st_size;
	return 1;
}

static IsoStream *f_get_input_stream(IsoStream *s, int flag) {
	(void)s;
	(void)flag;
	return NULL;
}

static IsoStreamIface isofile_class = {
	.version = 2,
	.type = "user",
	.open = f_open,
	.close = f_close,
	.get_size = f_get_size,
	.read = f_read,
	.is_repeatable = f_is_repeatable,
	.get_id = f_get_id,
	.free = f_free,
	.update_size = f_update_size,
	.get_input_stream = f_get_input_stream,
};

int isofile_stream_new(const char *path, uint64_t size, ino_t id, IsoStream **ret) {
	IsoStream *s = calloc(1, sizeof(*s));
	struct isofile *f = calloc(1, sizeof(*f));
	char *copy = strdup(path);
	if (!s || !f || !copy) {
		free(s);
		free(f);
		free(copy);
		return ISO_OUT_OF_MEM;
	}
	*f = (struct isofile){ .path = copy, .size = size, .id = id, .fd = -1 };
	*s = (IsoStream){ .class = &isofile_class, .refcount = 1, .data = f };
	*ret = s;
	return 1;
}
