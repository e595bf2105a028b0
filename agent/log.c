#include "log.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { LOG_LIMIT = 1 << 20 };

static char *text;
static unsigned long len, cap, dropped;

/* The last 128 bytes are kept for the note about dropped lines. */
static void keep(const char *line, bool note)
{
	size_t n = strlen(line);

	if (len + n + 1 > LOG_LIMIT - (note ? 0 : 128)) {
		dropped++;
		return;
	}
	if (len + n + 1 > cap) {
		unsigned long ncap = cap ? cap * 2 : 4096;
		char *p;
		while (ncap < len + n + 1)
			ncap *= 2;
		p = realloc(text, ncap);
		if (!p) {
			dropped++;
			return;
		}
		text = p;
		cap = ncap;
	}
	memcpy(text + len, line, n + 1);
	len += n;
}

static void emit(FILE *f, const char *prefix, const char *fmt, va_list ap)
{
	char line[4096];
	size_t n;

	snprintf(line, sizeof line, "%s", prefix);
	n = strlen(line);
	vsnprintf(line + n, sizeof line - n - 1, fmt, ap);
	n = strlen(line);
	line[n] = '\n';
	line[n + 1] = '\0';
	/* stdout and stderr both go to the console: keep them in order. */
	fflush(stdout);
	fputs(line, f);
	fflush(f);
	keep(line, false);
}

void log_step(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	emit(stdout, "dlws-install: ", fmt, ap);
	va_end(ap);
}

void log_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	emit(stderr, "DLWS-INSTALL-ERROR: ", fmt, ap);
	va_end(ap);
}

void log_line(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	emit(stdout, "", fmt, ap);
	va_end(ap);
}

const char *log_text(void)
{
	if (dropped) {
		char note[64];
		snprintf(note, sizeof note, "(%lu more lines not kept)\n", dropped);
		dropped = 0;
		keep(note, true);
	}
	return text ? text : "";
}

unsigned long log_length(void)
{
	return len;
}

void log_release(void)
{
	free(text);
	text = NULL;
	len = cap = dropped = 0;
}
