/* Diagnostics: modules collect messages here and never print; the command
 * layer prints them once, compiler-style ("file:line:col: error: msg"). */
#pragma once
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

/* A place in an input file. line/col are 1-based; 0 means unknown.
 * `file` is not owned: it points at a string that outlives the location
 * (a recipe's or template's path kept by its owner). */
struct srcloc {
	const char *file;
	int line, col;
};

enum diag_level { DIAG_ERROR, DIAG_WARNING, DIAG_NOTE };

struct diag {
	enum diag_level level;
	char *file;     /* owned copy, may be NULL */
	int line, col;
	char *msg;      /* owned; lowercase, no trailing period */
};

struct diags {
	struct diag *v;
	size_t n, cap;
	size_t n_errors;
};
#define DIAGS_INIT { 0 }

void diag_error(struct diags *d, const struct srcloc *at, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void diag_warning(struct diags *d, const struct srcloc *at, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void diag_note(struct diags *d, const struct srcloc *at, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Messages from index `from` on name `old_dir` (a directory, as
 * "'<old_dir>'" or "<old_dir>/...") as `new_dir`: work done in a stage
 * directory is told by the path the user knows. */
void diags_rename_dir(struct diags *d, size_t from, const char *old_dir, const char *new_dir);
void diag_vadd(struct diags *d, enum diag_level level, const struct srcloc *at, const char *fmt, va_list ap);

/* A check that can find many problems (a tree of garbage) reports the
 * first DIAG_BATCH_SHOWN and counts the rest, so the answer stays readable. */
#define DIAG_BATCH_SHOWN 10
struct diag_batch {
	struct diags *d;
	size_t n;       /* problems found */
};
void diag_batch_error(struct diag_batch *b, const struct srcloc *at, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Notes how many were not shown; returns 0 when none was found, else -EINVAL. */
int diag_batch_end(struct diag_batch *b);
/* "file:line:col: error: msg" (parts that are unknown are left out). */
void diags_print(const struct diags *d, FILE *f);
void diags_release(struct diags *d);
/* Moves every message of `from` to the end of `to`. */
void diags_append(struct diags *to, struct diags *from);
