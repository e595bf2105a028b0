#include "buf.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "util.h"

static size_t limit_of(const struct buf *b) {
	return b->limit ? b->limit : BUF_DEFAULT_LIMIT;
}

int buf_append(struct buf *b, const void *data, size_t len) {
	if (len > limit_of(b) || b->len > limit_of(b) - len)
		return -EFBIG;
	if (b->len + len + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 64;
		while (cap < b->len + len + 1)
			cap *= 2;
		b->data = xrealloc(b->data, cap);
		b->cap = cap;
	}
	if (len)
		memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
	return 0;
}

int buf_puts(struct buf *b, const char *s) {
	return buf_append(b, s, strlen(s));
}

int buf_putc(struct buf *b, char c) {
	return buf_append(b, &c, 1);
}

int buf_vprintf(struct buf *b, const char *fmt, va_list ap) {
	char *s = NULL;
	int n = vasprintf(&s, fmt, ap);
	if (n < 0)
		return -ENOMEM;
	int r = buf_append(b, s, (size_t)n);
	free(s);
	return r;
}

int buf_printf(struct buf *b, const char *fmt, ...) {
	va_list ap;
	va_start(ap, fmt);
	int r = buf_vprintf(b, fmt, ap);
	va_end(ap);
	return r;
}

void buf_reset(struct buf *b) {
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
}

char *buf_steal(struct buf *b, size_t *ret_len) {
	char *p = b->data ? b->data : xstrdup("");
	if (ret_len)
		*ret_len = b->len;
	b->data = NULL;
	b->len = b->cap = 0;
	return p;
}

void buf_release(struct buf *b) {
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}
