#include "fuzz.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char scratch[PATH_MAX];
static char joined[PATH_MAX];

static int remove_one(const char *path, const struct stat *st, int type, struct FTW *ftw) {
	(void)st;
	(void)type;
	(void)ftw;
	remove(path);
	return 0;
}

static void remove_scratch(void) {
	nftw(scratch, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

const char *fuzz_dir(void) {
	if (scratch[0])
		return scratch;
	const char *tmp = getenv("TMPDIR");
	snprintf(scratch, sizeof(scratch), "%s/dlws-fuzz.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(scratch)) {
		fprintf(stderr, "fuzz: cannot make '%s': %s\n", scratch, strerror(errno));
		abort();
	}
	atexit(remove_scratch);
	return scratch;
}

const char *fuzz_path(const char *rel) {
	snprintf(joined, sizeof(joined), "%s/%s", fuzz_dir(), rel);
	return joined;
}

static void make_parents(char *path) {
	for (char *p = strchr(path + 1, '/'); p; p = strchr(p + 1, '/')) {
		*p = '\0';
		if (mkdir(path, 0700) < 0 && errno != EEXIST) {
			fprintf(stderr, "fuzz: cannot make '%s': %s\n", path, strerror(errno));
			abort();
		}
		*p = '/';
	}
}

const char *fuzz_write(const char *rel, const void *data, size_t len) {
	const char *path = fuzz_path(rel);
	make_parents(joined);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		fprintf(stderr, "fuzz: cannot write '%s': %s\n", path, strerror(errno));
		abort();
	}
	const char *p = data;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			fprintf(stderr, "fuzz: cannot write '%s': %s\n", path, strerror(errno));
			abort();
		}
		p += n;
		len -= (size_t)n;
	}
	close(fd);
	return path;
}

char *fuzz_strdup(const uint8_t *data, size_t len) {
	char *s = malloc(len + 1);
	if (!s)
		abort();
	memcpy(s, data, len);
	s[len] = '\0';
	return s;
}

/* ASan's defaults for every harness (ASAN_OPTIONS still overrides them).
 * The size fields of archive headers are 32 bits, and libarchive reserves
 * what a header claims for its read-ahead before it finds the bytes are
 * not there: under ASan, 4 GiB takes seconds to map and fails the run as
 * out-of-memory though the tool only asks and moves on (glibc maps it
 * lazily). Here an allocation above 1 GiB fails as on a small machine
 * instead: libarchive reports it, and an xmalloc of ours that asks for
 * that much aborts, which is a finding. */
const char *__asan_default_options(void);
const char *__asan_default_options(void) {
	return "allocator_may_return_null=1:max_allocation_size_mb=1024";
}
