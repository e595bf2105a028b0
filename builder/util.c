#include "util.h"

#include <sched.h>
#include <stdarg.h>
#include <string.h>
#include <unistd.h>

void die_oom(void) {
	fputs("dlws-mkimage: out of memory\n", stderr);
	abort();
}

void *xmalloc(size_t n) {
	void *p = malloc(n ? n : 1);
	if (!p)
		die_oom();
	return p;
}

void *xcalloc(size_t n, size_t size) {
	void *p = calloc(n ? n : 1, size ? size : 1);
	if (!p)
		die_oom();
	return p;
}

void *xrealloc(void *p, size_t n) {
	p = realloc(p, n ? n : 1);
	if (!p)
		die_oom();
	return p;
}

char *xstrdup(const char *s) {
	return xstrndup(s, strlen(s));
}

char *xstrndup(const char *s, size_t n) {
	char *p = xmalloc(n + 1);
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

char *xvasprintf(const char *fmt, va_list ap) {
	char *s = NULL;
	if (vasprintf(&s, fmt, ap) < 0)
		die_oom();
	return s;
}

char *xasprintf(const char *fmt, ...) {
	va_list ap;
	va_start(ap, fmt);
	char *s = xvasprintf(fmt, ap);
	va_end(ap);
	return s;
}

void grow_array(void **v, size_t *cap, size_t need, size_t size) {
	if (need <= *cap)
		return;
	size_t n = *cap ? *cap * 2 : 8;
	while (n < need)
		n *= 2;
	*v = xrealloc(*v, n * size);
	memset((char *)*v + *cap * size, 0, (n - *cap) * size);
	*cap = n;
}

bool startswith(const char *s, const char *prefix) {
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

bool endswith(const char *s, const char *suffix) {
	size_t a = strlen(s), b = strlen(suffix);
	return a >= b && strcmp(s + a - b, suffix) == 0;
}

void strv_push_take(struct strv *s, char *str) {
	GROW(s->v, s->cap, s->n + 2);
	s->v[s->n++] = str;
	s->v[s->n] = NULL;
}

void strv_push(struct strv *s, const char *str) {
	strv_push_take(s, xstrdup(str));
}

bool strv_contains(const struct strv *s, const char *str) {
	for (size_t i = 0; i < s->n; i++)
		if (streq(s->v[i], str))
			return true;
	return false;
}

static int cmp_str(const void *a, const void *b) {
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void strv_sort(struct strv *s) {
	if (s->n > 1)
		qsort(s->v, s->n, sizeof(char *), cmp_str);
}

bool strv_sorted_contains(const struct strv *s, const char *str) {
	return s->n && bsearch(&str, s->v, s->n, sizeof(char *), cmp_str);
}

void strv_release(struct strv *s) {
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
	*s = (struct strv)STRV_INIT;
}

size_t edit_distance(const char *a, const char *b) {
	size_t la = strlen(a), lb = strlen(b);
	size_t *row = xcalloc(lb + 1, sizeof(size_t));
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t diag = row[0];
		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t up = row[j];
			size_t best = diag + (a[i - 1] != b[j - 1]);
			if (row[j] + 1 < best)
				best = row[j] + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	size_t d = row[lb];
	free(row);
	return d;
}

const char *closest_match(const char *word, const char *const *candidates, size_t n) {
	const char *best = NULL;
	size_t best_d = (size_t)-1;
	/* A suggestion further away than a third of the word is noise. */
	size_t max = strlen(word) / 3 + 1;
	for (size_t i = 0; i < n; i++) {
		size_t d = edit_distance(word, candidates[i]);
		if (d < best_d) {
			best_d = d;
			best = candidates[i];
		}
	}
	return best_d <= max ? best : NULL;
}

unsigned cores_available(unsigned max) {
	cpu_set_t set;
	long n = sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set) : sysconf(_SC_NPROCESSORS_ONLN);
	return n < 1 ? 1 : (unsigned long)n > max ? max : (unsigned)n;
}
