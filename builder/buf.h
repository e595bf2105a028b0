/* A growable byte buffer with a size limit, always NUL-terminated. */
#pragma once
#include <stdarg.h>
#include <stddef.h>

struct buf {
	char *data;     /* owned; NUL-terminated when non-NULL */
	size_t len, cap;
	size_t limit;   /* 0 means BUF_DEFAULT_LIMIT */
};
#define BUF_INIT { 0 }
#define BUF_DEFAULT_LIMIT ((size_t)256 << 20)

/* Each returns 0, or -EFBIG when the limit would be exceeded (buffer unchanged). */
int buf_append(struct buf *b, const void *data, size_t len);
int buf_puts(struct buf *b, const char *s);
int buf_putc(struct buf *b, char c);
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int buf_vprintf(struct buf *b, const char *fmt, va_list ap);
void buf_reset(struct buf *b);
/* Hands the data to the caller (never NULL) and empties the buffer. */
char *buf_steal(struct buf *b, size_t *ret_len);
void buf_release(struct buf *b);
