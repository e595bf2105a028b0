#include "diag.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "util.h"

void diag_vadd(struct diags *d, enum diag_level level, const struct srcloc *at, const char *fmt, va_list ap) {
	GROW(d->v, d->cap, d->n + 1);
	struct diag *g = &d->v[d->n++];
	g->level = level;
	g->file = at && at->file ? xstrdup(at->file) : NULL;
	g->line = at ? at->line : 0;
	g->col = at ? at->col : 0;
	if (vasprintf(&g->msg, fmt, ap) < 0)
		g->msg = xstrdup("(message lost: out of memory)");
	if (level == DIAG_ERROR)
		d->n_errors++;
}

#define DEFINE_DIAG(fn, level) \
	void fn(struct diags *d, const struct srcloc *at, const char *fmt, ...) { \
		va_list ap; \
		va_start(ap, fmt); \
		diag_vadd(d, level, at, fmt, ap); \
		va_end(ap); \
	}
DEFINE_DIAG(diag_error, DIAG_ERROR)
DEFINE_DIAG(diag_warning, DIAG_WARNING)
DEFINE_DIAG(diag_note, DIAG_NOTE)

void diag_batch_error(struct diag_batch *b, const struct srcloc *at, const char *fmt, ...) {
	if (b->n++ >= DIAG_BATCH_SHOWN)
		return;
	va_list ap;
	va_start(ap, fmt);
	diag_vadd(b->d, DIAG_ERROR, at, fmt, ap);
	va_end(ap);
}

int diag_batch_end(struct diag_batch *b) {
	if (b->n > DIAG_BATCH_SHOWN)
		diag_note(b->d, NULL, "%zu more problems not shown", b->n - DIAG_BATCH_SHOWN);
	return b->n ? -EINVAL : 0;
}

void diags_print(const struct diags *d, FILE *f) {
	static const char *const names[] = { "error", "warning", "note" };
	for (size_t i = 0; i < d->n; i++) {
		const struct diag *g = &d->v[i];
		if (g->file) {
			fputs(g->file, f);
			if (g->line) {
				fprintf(f, ":%d", g->line);
				if (g->col)
					fprintf(f, ":%d", g->col);
			}
			fputs(": ", f);
		} else {
			fputs("dlws-mkimage: ", f);
		}
		fprintf(f, "%s: %s\n", names[g->level], g->msg);
	}
}

void diags_append(struct diags *to, struct diags *from) {
	for (size_t i = 0; i < from->n; i++) {
		GROW(to->v, to->cap, to->n + 1);
		to->v[to->n++] = from->v[i];
		to->n_errors += from->v[i].level == DIAG_ERROR;
	}
	free(from->v);
	*from = (struct diags)DIAGS_INIT;
}

void diags_release(struct diags *d) {
	for (size_t i = 0; i < d->n; i++) {
		free(d->v[i].file);
		free(d->v[i].msg);
	}
	free(d->v);
	*d = (struct diags)DIAGS_INIT;
}

void diags_rename_dir(struct diags *d, size_t from, const char *old_dir, const char *new_dir) {
	size_t n = strlen(old_dir);
	for (size_t i = from; i < d->n; i++) {
		const char *m = d->v[i].msg;
		struct buf b = BUF_INIT;
		const char *p;
		while ((p = strstr(m, old_dir))) {
			char next = p[n];
			bool whole = (p == d->v[i].msg || p[-1] == '\'' || p[-1] == ' ') && (next == '/' || next == '\'');
			buf_append(&b, m, (size_t)(p - m));
			buf_puts(&b, whole ? new_dir : old_dir);
			m = p + n;
		}
		if (m == d->v[i].msg) {
			buf_release(&b);
			continue;
		}
		buf_puts(&b, m);
		free(d->v[i].msg);
		d->v[i].msg = buf_steal(&b, NULL);
	}
}
