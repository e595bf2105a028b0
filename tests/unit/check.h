/* A minimal unit-test harness: each test binary prints one line per
 * failed check and a summary, and exits non-zero when anything failed. */
#pragma once
#include <stdio.h>
#include <string.h>

static int check_failed, check_total;

#define CHECK(cond) do { \
	check_total++; \
	if (!(cond)) { check_failed++; fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); } \
} while (0)

#define CHECK_STREQ(a, b) do { \
	const char *_a = (a), *_b = (b); \
	check_total++; \
	if (!_a || !_b || strcmp(_a, _b) != 0) { \
		check_failed++; \
		fprintf(stderr, "%s:%d: check failed: %s == %s\n  got:      \"%s\"\n  expected: \"%s\"\n", \
			__FILE__, __LINE__, #a, #b, _a ? _a : "(null)", _b ? _b : "(null)"); \
	} \
} while (0)

#define CHECK_INTEQ(a, b) do { \
	long long _a = (long long)(a), _b = (long long)(b); \
	check_total++; \
	if (_a != _b) { check_failed++; fprintf(stderr, "%s:%d: check failed: %s == %s (%lld != %lld)\n", __FILE__, __LINE__, #a, #b, _a, _b); } \
} while (0)

static inline int check_summary(const char *name) {
	printf("%s: %d checks, %d failed\n", name, check_total, check_failed);
	return check_failed ? 1 : 0;
}
