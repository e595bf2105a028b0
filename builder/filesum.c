/* File sums remembered by identity (filesum.h). Only the files a build
 * asked for are saved: the memo does not grow with files long gone. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "filesum.h"
#include "fsutil.h"
#include "util.h"

#define MEMO_VERSION "dlws-mkimage filesum 2"
#define NS 1000000000LL

struct ident {
	uint64_t dev, ino, size;
	int64_t mtime_ns, ctime_ns;
};

struct memo {
	struct ident id;
	int64_t hashed_ns;      /* when the sum was taken (CLOCK_REALTIME) */
	char sum[SHA256_HEX_LEN + 1];
	bool used;
	bool seen;              /* asked for in this run: saved */
	bool object;            /* a build cache object: ctime not compared */
};

/* Open addressing by (dev, ino); a slot holds the last identity seen. */
static struct memo *table;
static size_t cap, count;
/* Segments are made on threads: the table is used under this lock. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static uint64_t slot_of(uint64_t dev, uint64_t ino) {
	uint64_t h = (dev * 0x9e3779b97f4a7c15ULL) ^ (ino * 0xc2b2ae3d27d4eb4fULL);
	return (h ^ (h >> 29)) & (cap - 1);
}

static struct memo *find(uint64_t dev, uint64_t ino) {
	if (!cap)
		return NULL;
	for (uint64_t i = slot_of(dev, ino);; i = (i + 1) & (cap - 1)) {
		if (!table[i].used)
			return &table[i];
		if (table[i].id.dev == dev && table[i].id.ino == ino)
			return &table[i];
	}
}

static void remember(const struct ident *id, const char *sum, int64_t hashed_ns, bool seen) {
	if ((count + 1) * 2 > cap) {
		struct memo *old = table;
		size_t old_cap = cap;
		cap = cap ? cap * 2 : 256;
		table = xcalloc(cap, sizeof(*table));
		count = 0;
		for (size_t i = 0; i < old_cap; i++)
			if (old[i].used)
				remember(&old[i].id, old[i].sum, old[i].hashed_ns, old[i].seen);
		free(old);
	}
	struct memo *m = find(id->dev, id->ino);
	if (!m->used)
		count++;
	*m = (struct memo){ .id = *id, .hashed_ns = hashed_ns, .used = true, .seen = seen };
	memcpy(m->sum, sum, sizeof(m->sum));
}

static struct ident ident_of(const struct stat *st) {
	return (struct ident){
		.dev = (uint64_t)st->st_dev,
		.ino = (uint64_t)st->st_ino,
		.size = (uint64_t)st->st_size,
		.mtime_ns = (int64_t)st->st_mtim.tv_sec * NS + st->st_mtim.tv_nsec,
		.ctime_ns = (int64_t)st->st_ctim.tv_sec * NS + st->st_ctim.tv_nsec,
	};
}

static bool same(const struct ident *a, const struct ident *b) {
	return memcmp(a, b, sizeof(*a)) == 0;
}

static int64_t now_ns(void) {
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * NS + ts.tv_nsec;
}

/* How close to its last change a sum may have been taken and still be
 * trusted: a write in the same tick of the file system's clock would not
 * move ctime. Timestamps with nanoseconds tick with the kernel's coarse
 * clock (a jiffy, 10 ms at most); whole seconds (FAT, some network file
 * systems) by up to two. */
static int64_t racy_ns(const struct ident *id) {
	return id->ctime_ns % NS == 0 && id->mtime_ns % NS == 0 ? 2 * NS : 20 * (NS / 1000);
}

static bool racy(const struct memo *m) {
	int64_t w = racy_ns(&m->id);
	return (!m->object && m->id.ctime_ns > m->hashed_ns - w) || m->id.mtime_ns > m->hashed_ns - w;
}

/* Whether `m` holds the sum of the file `id` is; with `any_ctime`, for a
 * build cache object, a ctime moved by hard links is not a change. */
static bool hit(const struct memo *m, const struct ident *id, bool any_ctime) {
	if (!m || !m->used || racy(m))
		return false;
	if (!any_ctime)
		return same(&m->id, id);
	return m->id.dev == id->dev && m->id.ino == id->ino && m->id.size == id->size && m->id.mtime_ns == id->mtime_ns;
}

static int digest(void *ctx, const void *data, size_t len) {
	sha256_update(ctx, data, len);
	return 0;
}

/* The remembered sum of the file `st` describes: true and `hex`. */
static bool recall(const struct stat *st, bool any_ctime, char hex[SHA256_HEX_LEN + 1], uint64_t *ret_size) {
	struct ident id = ident_of(st);
	pthread_mutex_lock(&lock);
	struct memo *m = find(id.dev, id.ino);
	bool found = hit(m, &id, any_ctime);
	if (found) {
		m->seen = true;
		m->object |= any_ctime;
		m->id.ctime_ns = id.ctime_ns;
		memcpy(hex, m->sum, SHA256_HEX_LEN + 1);
	}
	pthread_mutex_unlock(&lock);
	if (found && ret_size)
		*ret_size = id.size;
	return found;
}

static int sum_file(const char *path, bool any_ctime, char hex[SHA256_HEX_LEN + 1], uint64_t *ret_size, struct diags *d) {
	/* A file whose sum is remembered is not even opened. */
	struct stat st;
	if (stat(path, &st) == 0 && S_ISREG(st.st_mode) && recall(&st, any_ctime, hex, ret_size))
		return 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int r = -errno;
		diag_error(d, NULL, "cannot open '%s': %s", path, strerror(errno));
		return r;
	}
	if (fstat(fd, &st) < 0) {
		int r = -errno;
		diag_error(d, NULL, "cannot read '%s': %s", path, strerror(errno));
		close(fd);
		return r;
	}
	struct ident before = ident_of(&st);
	if (recall(&st, any_ctime, hex, ret_size)) {
		close(fd);
		return 0;
	}
	int64_t started = now_ns();
	struct sha256 *h = sha256_new();
	uint64_t total = 0;
	int r = stream_fd(fd, path, digest, h, &total, d);
	if (r < 0) {
		sha256_free(h);
		close(fd);
		return r;
	}
	sha256_final_hex(h, hex);
	/* Remembered only when the file did not change while it was read. */
	if (fstat(fd, &st) == 0) {
		struct ident after = ident_of(&st);
		if (same(&before, &after) && total == after.size) {
			pthread_mutex_lock(&lock);
			remember(&after, hex, started, true);
			find(after.dev, after.ino)->object = any_ctime;
			pthread_mutex_unlock(&lock);
		}
	}
	close(fd);
	if (ret_size)
		*ret_size = total;
	return 0;
}

int filesum(const char *path, char hex[SHA256_HEX_LEN + 1], uint64_t *ret_size, struct diags *d) {
	return sum_file(path, false, hex, ret_size, d);
}

int filesum_object(const char *path, char hex[SHA256_HEX_LEN + 1], uint64_t *ret_size, struct diags *d) {
	return sum_file(path, true, hex, ret_size, d);
}

void filesum_note(const char *path, const char *hex) {
	struct stat st;
	if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
		struct ident id = ident_of(&st);
		/* Vouched for: saved as if hashed well after its change. */
		pthread_mutex_lock(&lock);
		remember(&id, hex, id.ctime_ns > id.mtime_ns ? id.ctime_ns + 2 * NS : id.mtime_ns + 2 * NS, true);
		pthread_mutex_unlock(&lock);
	}
}

void filesum_load(const char *path) {
	FILE *f = fopen(path, "re");
	if (!f)
		return;
	char line[256];
	if (!fgets(line, sizeof(line), f) || !streq(line, MEMO_VERSION "\n")) {
		fclose(f);
		return;
	}
	while (fgets(line, sizeof(line), f)) {
		struct ident id;
		int64_t hashed;
		char sum[SHA256_HEX_LEN + 2], kind[2];
		if (sscanf(line, "%" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNd64 " %" SCNd64 " %" SCNd64 " %65s %1s", &id.dev,
			   &id.ino, &id.size, &id.mtime_ns, &id.ctime_ns, &hashed, sum, kind) != 8 ||
		    strlen(sum) != SHA256_HEX_LEN || !is_sha256_hex(sum) || (kind[0] != 'o' && kind[0] != 'f'))
			continue;
		const struct memo *m = find(id.dev, id.ino);
		if (!m || !m->used) {
			remember(&id, sum, hashed, false);
			find(id.dev, id.ino)->object = kind[0] == 'o';
		}
	}
	fclose(f);
}

void filesum_save(const char *path) {
	struct buf b = BUF_INIT;
	buf_printf(&b, "%s\n", MEMO_VERSION);
	for (size_t i = 0; i < cap; i++) {
		const struct memo *m = &table[i];
		if (!m->used || !m->seen || racy(m))
			continue;
		/* o: a build cache object (filesum_object), f: a file */
		buf_printf(&b, "%" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRId64 " %" PRId64 " %" PRId64 " %s %c\n", m->id.dev,
			   m->id.ino, m->id.size, m->id.mtime_ns, m->id.ctime_ns, m->hashed_ns, m->sum,
			   m->object ? 'o' : 'f');
	}
	struct diags quiet = DIAGS_INIT;
	write_file_atomic(path, b.data, b.len, 0644, &quiet);
	diags_release(&quiet);
	buf_release(&b);
}

void filesum_reset(void) {
	free(table);
	table = NULL;
	cap = count = 0;
}
