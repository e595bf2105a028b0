/* Small helpers shared by every module: allocation that cannot fail,
 * scope cleanup, string vectors. */
#pragma once
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Allocation failure is not a recoverable condition for a build tool:
 * these abort with a message instead of returning NULL. */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *xvasprintf(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));
/* For libraries that return NULL on allocation failure. */
void die_oom(void) __attribute__((noreturn));

/* Grows *v (element size `size`) so that index `need-1` fits. */
void grow_array(void **v, size_t *cap, size_t need, size_t size);
#define GROW(v, cap, need) grow_array((void **)&(v), &(cap), (need), sizeof(*(v)))

static inline void freep(void *p) { free(*(void **)p); }
static inline void fclosep(FILE **f) { if (*f) fclose(*f); }
#define _cleanup_(f) __attribute__((cleanup(f)))
#define _cleanup_free_ _cleanup_(freep)
#define _cleanup_fclose_ _cleanup_(fclosep)

static inline bool streq(const char *a, const char *b) { return a && b && __builtin_strcmp(a, b) == 0; }
bool startswith(const char *s, const char *prefix);
bool endswith(const char *s, const char *suffix);

/* A NULL-terminated vector of owned strings. */
struct strv {
	char **v;
	size_t n, cap;
};
#define STRV_INIT { 0 }
void strv_push(struct strv *s, const char *str);        /* copies str */
void strv_push_take(struct strv *s, char *str);         /* takes ownership */
bool strv_contains(const struct strv *s, const char *str);
void strv_sort(struct strv *s);
/* strv_contains for a sorted vector (binary search). */
bool strv_sorted_contains(const struct strv *s, const char *str);
void strv_release(struct strv *s);

/* Levenshtein distance, for did-you-mean suggestions. */
size_t edit_distance(const char *a, const char *b);
/* The candidate closest to `word`, or NULL when none is close enough. */
const char *closest_match(const char *word, const char *const *candidates, size_t n);

/* The cores this process may run on (its CPU affinity), at least 1 and at
 * most `max`. */
unsigned cores_available(unsigned max);
