/* The build cache: see cache.h. */
#include "cache.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "filesum.h"
#include "fsutil.h"
#include "util.h"

static char *object_path(const struct cache *c, const char *key, const char *suffix) {
	return xasprintf("%s/objects/%s%s", c->dir, key, suffix);
}

void cache_open(struct cache *c, const char *dir, uint64_t max, struct diags *d) {
	*c = (struct cache)CACHE_INIT;
	c->max = max;
	_cleanup_free_ char *objects = path_join(dir, "objects");
	_cleanup_free_ char *tmp = path_join(dir, "tmp");
	_cleanup_free_ char *lock = path_join(dir, ".lock");
	int r = mkdir_p(objects, 0755);
	if (r == 0)
		r = mkdir_p(tmp, 0755);
	int fd = r == 0 ? open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644) : -1;
	if (fd < 0 || flock(fd, LOCK_SH) < 0) {
		diag_warning(d, NULL, "not using the build cache '%s': %s", dir, strerror(r < 0 ? -r : errno));
		if (fd >= 0)
			close(fd);
		return;
	}
	c->dir = xstrdup(dir);
	c->lock_fd = fd;
}

/* The entry's recorded size and sum; false when it has none. */
static bool read_sum(const char *path, uint64_t *size, char sum[SHA256_HEX_LEN + 1]) {
	FILE *f = fopen(path, "re");
	if (!f)
		return false;
	unsigned long long n;
	bool ok = fscanf(f, "%llu %64s", &n, sum) == 2 && strlen(sum) == SHA256_HEX_LEN;
	fclose(f);
	*size = n;
	return ok;
}

static void drop(const struct cache *c, const char *key) {
	_cleanup_free_ char *obj = object_path(c, key, "");
	_cleanup_free_ char *sum = object_path(c, key, ".sum");
	unlink(sum);
	unlink(obj);
}

static int get(struct cache *c, const char *key, const char *dst, unsigned mode, unsigned *hits, unsigned *misses,
	       struct diags *d) {
	if (!c || !c->dir)
		return 0;
	_cleanup_free_ char *obj = object_path(c, key, "");
	_cleanup_free_ char *sum_path = object_path(c, key, ".sum");
	uint64_t want_size;
	char want[SHA256_HEX_LEN + 1];
	if (!read_sum(sum_path, &want_size, want)) {
		(*misses)++;
		return 0;
	}
	/* Checked on every use: a byte flipped on disk must never ship. */
	struct diags quiet = DIAGS_INIT;
	char got[SHA256_HEX_LEN + 1];
	uint64_t size = 0;
	int r = filesum_object(obj, got, &size, &quiet);
	diags_release(&quiet);
	if (r < 0 || size != want_size || !streq(got, want)) {
		diag_note(d, NULL, "the build cache's entry %.12s was damaged: made again", key);
		drop(c, key);
		c->damaged++;
		(*misses)++;
		return 0;
	}
	unlink(dst);
	if (link(obj, dst) < 0) {
		r = copy_file(obj, dst, mode, d);
		if (r < 0)
			return r;
	}
	filesum_note(dst, got);
	/* Its last use, for pruning. */
	utimensat(AT_FDCWD, sum_path, NULL, 0);
	(*hits)++;
	return 1;
}

int cache_get(struct cache *c, const char *key, const char *dst, unsigned mode, struct diags *d) {
	return get(c, key, dst, mode, &c->hits, &c->misses, d);
}

int cache_fetch(struct cache *c, const char *key, const char *dst, unsigned mode, struct diags *d) {
	unsigned hits = 0, misses = 0;
	return get(c, key, dst, mode, &hits, &misses, d);
}

int cache_read(struct cache *c, const char *key, char **ret, struct diags *d) {
	if (!c || !c->dir)
		return 0;
	_cleanup_free_ char *obj = object_path(c, key, "");
	_cleanup_free_ char *sum_path = object_path(c, key, ".sum");
	uint64_t want_size;
	char want[SHA256_HEX_LEN + 1], got[SHA256_HEX_LEN + 1];
	if (!read_sum(sum_path, &want_size, want))
		return 0;
	struct diags quiet = DIAGS_INIT;
	char *text = NULL;
	size_t len = 0;
	int r = read_file(obj, 1u << 20, &text, &len, &quiet);
	diags_release(&quiet);
	if (r == 0)
		sha256_hex(text, len, got);
	if (r < 0 || len != want_size || !streq(got, want)) {
		diag_note(d, NULL, "the build cache's entry %.12s was damaged: made again", key);
		drop(c, key);
		c->damaged++;
		free(text);
		return 0;
	}
	utimensat(AT_FDCWD, sum_path, NULL, 0);
	*ret = text;
	return 1;
}

void cache_write(struct cache *c, const char *key, const char *text, struct diags *d) {
	if (!c || !c->dir)
		return;
	_cleanup_free_ char *tmp = xasprintf("%s/tmp/%s.%ld.text", c->dir, key, (long)getpid());
	struct diags quiet = DIAGS_INIT;
	if (write_file_atomic(tmp, text, strlen(text), 0444, &quiet) == 0) {
		char sum[SHA256_HEX_LEN + 1];
		sha256_hex(text, strlen(text), sum);
		filesum_note(tmp, sum);         /* not read back to be summed */
		cache_put(c, key, tmp, d);
	} else {
		diag_warning(d, NULL, "cannot add to the build cache '%s': %s", c->dir, quiet.n ? quiet.v[0].msg : "?");
	}
	unlink(tmp);
	diags_release(&quiet);
}

int cache_copy(struct cache *c, const char *src, const char *dst, struct diags *d) {
	if (!c || !c->dir)
		return copy_file(src, dst, 0644, d);
	char sum[SHA256_HEX_LEN + 1];
	int r = filesum(src, sum, NULL, d);
	if (r < 0)
		return r;
	char key[SHA256_HEX_LEN + 1];
	_cleanup_free_ char *what = xasprintf("dlws-mkimage file %s", sum);
	sha256_hex(what, strlen(what), key);
	r = cache_fetch(c, key, dst, 0644, d);
	if (r != 0)
		return r < 0 ? r : 0;
	r = copy_file(src, dst, 0644, d);
	if (r == 0)
		cache_put(c, key, dst, d);
	return r;
}

void cache_put(struct cache *c, const char *key, const char *src, struct diags *d) {
	if (!c->dir)
		return;
	struct diags quiet = DIAGS_INIT;
	char sum[SHA256_HEX_LEN + 1];
	uint64_t size;
	int r = filesum(src, sum, &size, &quiet);
	diags_release(&quiet);
	_cleanup_free_ char *tmp = xasprintf("%s/tmp/%s.%ld", c->dir, key, (long)getpid());
	_cleanup_free_ char *tmp_sum = xasprintf("%s.sum", tmp);
	_cleanup_free_ char *obj = object_path(c, key, "");
	_cleanup_free_ char *obj_sum = object_path(c, key, ".sum");
	_cleanup_free_ char *text = xasprintf("%llu %s\n", (unsigned long long)size, sum);
	unlink(tmp);
	/* The bytes first, then their sum: the sum's rename makes the entry. */
	if (r == 0 && link(src, tmp) < 0)
		r = copy_file(src, tmp, 0444, &quiet);
	if (r == 0)
		r = write_file_atomic(tmp_sum, text, strlen(text), 0444, &quiet);
	if (r == 0 && rename(tmp, obj) < 0)
		r = -errno;
	if (r == 0 && rename(tmp_sum, obj_sum) < 0)
		r = -errno;
	if (r == 0)
		c->added += size;
	if (r < 0) {
		diag_warning(d, NULL, "cannot add to the build cache '%s': %s", c->dir,
			     quiet.n ? quiet.v[0].msg : strerror(-r));
		unlink(tmp);
		unlink(tmp_sum);
	}
	diags_release(&quiet);
}

struct entry {
	char *key;
	uint64_t size;
	struct timespec used;
};

static int by_use(const void *a, const void *b) {
	const struct entry *x = a, *y = b;
	if (x->used.tv_sec != y->used.tv_sec)
		return x->used.tv_sec < y->used.tv_sec ? -1 : 1;
	if (x->used.tv_nsec != y->used.tv_nsec)
		return x->used.tv_nsec < y->used.tv_nsec ? -1 : 1;
	return strcmp(x->key, y->key);
}

/* The oldest used entries go until the rest fits c->max: the bytes kept. */
static uint64_t prune(struct cache *c) {
	_cleanup_free_ char *objects = path_join(c->dir, "objects");
	DIR *dh = opendir(objects);
	if (!dh)
		return 0;
	struct entry *v = NULL;
	size_t n = 0, cap = 0;
	uint64_t total = 0;
	struct dirent *de;
	while ((de = readdir(dh))) {
		const char *name = de->d_name;
		size_t len = strlen(name);
		if (name[0] == '.')
			continue;
		_cleanup_free_ char *path = path_join(objects, name);
		struct stat st;
		if (len > 4 && streq(name + len - 4, ".sum"))
			continue;
		_cleanup_free_ char *sum = xasprintf("%s.sum", path);
		struct stat sst;
		if (stat(path, &st) < 0)
			continue;
		if (stat(sum, &sst) < 0) {
			unlink(path);   /* bytes without a sum: never made whole */
			continue;
		}
		GROW(v, cap, n + 1);
		v[n++] = (struct entry){ xstrdup(name), (uint64_t)st.st_size, sst.st_mtim };
		total += (uint64_t)st.st_size;
	}
	closedir(dh);
	/* Spares (cache_spare) only spare writes: the first to go. */
	_cleanup_free_ char *spares = path_join(c->dir, "spares");
	dh = opendir(spares);
	while (dh && (de = readdir(dh))) {
		if (de->d_name[0] == '.')
			continue;
		_cleanup_free_ char *path = path_join(spares, de->d_name);
		struct stat st;
		if (lstat(path, &st) < 0)
			continue;
		if (total + (uint64_t)st.st_size > c->max || !S_ISREG(st.st_mode))
			unlink(path);
		else
			total += (uint64_t)st.st_size;
	}
	if (dh)
		closedir(dh);
	if (n)
		qsort(v, n, sizeof(*v), by_use);
	for (size_t i = 0; i < n; i++) {
		if (total > c->max) {
			drop(c, v[i].key);
			total -= v[i].size;
		}
		free(v[i].key);
	}
	free(v);
	return total;
}

/* A full look at objects/ stats every entry: 4,000 files after one build
 * of 1,000 nodes, and more with each build. So the cache keeps a count:
 * `size` ("<bytes> <closes since the last look>") as of the last look,
 * and `added`, a line of bytes per build since, appended under the shared
 * lock. Entries are looked at when the count passes c->max, when it
 * cannot be read, and every LOOK_EVERY closes (a build killed before it
 * counted what it added). The count errs high, never low but for those. */
#define LOOK_EVERY 32

static void count_added(struct cache *c) {
	if (!c->added)
		return;
	_cleanup_free_ char *path = path_join(c->dir, "added");
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return;
	char line[32];
	int n = snprintf(line, sizeof(line), "%llu\n", (unsigned long long)c->added);
	(void)!write(fd, line, (size_t)n);
	close(fd);
	c->added = 0;
}

/* Under the exclusive lock: nobody else is adding, so whatever is in tmp/
 * was left by a killed build; then the entries beyond c->max go. */
static void tidy(struct cache *c) {
	_cleanup_free_ char *tmp = path_join(c->dir, "tmp");
	_cleanup_free_ char *size_path = path_join(c->dir, "size");
	_cleanup_free_ char *added_path = path_join(c->dir, "added");
	rm_rf(tmp);
	mkdir(tmp, 0755);
	struct diags quiet = DIAGS_INIT;
	char *text = NULL;
	size_t len;
	unsigned long long total = 0, n;
	unsigned closes = 0;
	bool known = read_file(size_path, 4096, &text, &len, &quiet) == 0 && sscanf(text, "%llu %u", &total, &closes) == 2;
	free(text);
	text = NULL;
	if (known && read_file(added_path, 1u << 20, &text, &len, &quiet) == 0)
		for (char *p = text; sscanf(p, "%llu", &n) == 1; p = strchr(p, '\n') + 1) {
			total += n;
			if (!strchr(p, '\n'))
				break;
		}
	free(text);
	if (!known || total > c->max || ++closes >= LOOK_EVERY) {
		total = prune(c);
		closes = 0;
	}
	_cleanup_free_ char *line = xasprintf("%llu %u\n", total, closes);
	if (write_file_atomic(size_path, line, strlen(line), 0644, &quiet) == 0)
		unlink(added_path);
	diags_release(&quiet);
}

/* <dir>/<sha256 of the output's absolute path>: NULL when its directory
 * does not exist. */
static char *per_output(const struct cache *c, const char *dir_name, const char *path) {
	const char *slash = strrchr(path, '/');
	_cleanup_free_ char *dir = slash ? xstrndup(path, (size_t)(slash - path)) : xstrdup(".");
	_cleanup_free_ char *real = realpath(dir[0] ? dir : "/", NULL);
	if (!real)
		return NULL;
	_cleanup_free_ char *abs = xasprintf("%s/%s", real, slash ? slash + 1 : path);
	char hex[SHA256_HEX_LEN + 1];
	sha256_hex(abs, strlen(abs), hex);
	return xasprintf("%s/%s/%s", c->dir, dir_name, hex);
}

static char *output_record(const struct cache *c, const char *path) {
	return per_output(c, "outputs", path);
}

static char *identity(const char *path);
static char *made_identity(const char *path);
static char *read_small(const char *path);

char *cache_spare(struct cache *c, const char *path, char **ret_layout) {
	*ret_layout = NULL;
	if (!c || !c->dir)
		return NULL;
	_cleanup_free_ char *dir = path_join(c->dir, "spares");
	if (mkdir_p(dir, 0755) < 0)
		return NULL;
	char *spare = per_output(c, "spares", path);
	/* After this build the spare is the output it replaces: counted now,
	 * as what grows (the count errs high, not low). */
	struct stat out, old;
	if (spare && stat(path, &out) == 0 && S_ISREG(out.st_mode)) {
		uint64_t had = stat(spare, &old) == 0 ? (uint64_t)old.st_size : 0;
		if ((uint64_t)out.st_size > had)
			c->added += (uint64_t)out.st_size - had;
	}
	if (!spare)
		return NULL;
	/* The spare there now: its layout, while it is the file it was. It is
	 * written over next, whatever becomes of this build: the record goes. */
	_cleanup_free_ char *layout_path = xasprintf("%s.layout", spare);
	_cleanup_free_ char *text = read_small(layout_path);
	_cleanup_free_ char *id = identity(spare);
	size_t id_len = id ? strlen(id) : 0;
	if (text && id && strncmp(text, id, id_len) == 0 && text[id_len] == '\n')
		*ret_layout = xstrdup(text + id_len + 1);
	unlink(layout_path);
	/* The output there now becomes the spare: its layout goes with it,
	 * when its record is of this very file (cache_outputs_record). */
	_cleanup_free_ char *rec_path = output_record(c, path);
	_cleanup_free_ char *rec = rec_path ? read_small(rec_path) : NULL;
	_cleanup_free_ char *out_id = identity(path);
	char *nl = rec ? strchr(rec, '\n') : NULL;
	const char *rec_id = rec ? strchr(rec, ' ') : NULL;
	if (nl && rec_id && out_id && rec_id < nl && (size_t)(nl - rec_id - 1) == strlen(out_id) &&
	    strncmp(rec_id + 1, out_id, strlen(out_id)) == 0 && nl[1]) {
		_cleanup_free_ char *made = made_identity(path);
		strv_push(&c->to_spare, spare);
		strv_push(&c->to_spare_ids, made ? made : "");
		strv_push(&c->to_spare_layouts, nl + 1);
	}
	return spare;
}

static char *identity(const char *path) {
	struct stat st;
	if (lstat(path, &st) < 0 || !S_ISREG(st.st_mode))
		return NULL;
	return xasprintf("%llu %llu %llu %lld.%09ld %lld.%09ld", (unsigned long long)st.st_dev,
			 (unsigned long long)st.st_ino, (unsigned long long)st.st_size, (long long)st.st_mtim.tv_sec,
			 st.st_mtim.tv_nsec, (long long)st.st_ctim.tv_sec, st.st_ctim.tv_nsec);
}

/* The identity without the ctime: what a rename (an output becoming the
 * spare) leaves as it was. */
static char *made_identity(const char *path) {
	struct stat st;
	if (lstat(path, &st) < 0 || !S_ISREG(st.st_mode))
		return NULL;
	return xasprintf("%llu %llu %llu %lld.%09ld", (unsigned long long)st.st_dev, (unsigned long long)st.st_ino,
			 (unsigned long long)st.st_size, (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
}

/* A record's text, NULL when it cannot be read. */
static char *read_small(const char *path) {
	struct diags quiet = DIAGS_INIT;
	char *text = NULL;
	size_t len;
	int r = read_file(path, 1u << 20, &text, &len, &quiet);
	diags_release(&quiet);
	return r == 0 ? text : NULL;
}

bool cache_output_fresh(const struct cache *c, const char *path, const char *key) {
	if (!c || !c->dir)
		return false;
	_cleanup_free_ char *rec = output_record(c, path);
	_cleanup_free_ char *id = identity(path);
	if (!rec || !id)
		return false;
	_cleanup_free_ char *text = read_small(rec);
	_cleanup_free_ char *want = xasprintf("%s %s\n", key, id);
	return text && strncmp(text, want, strlen(want)) == 0;
}

void cache_output_made(struct cache *c, const char *path, const char *key, const char *layout) {
	if (!c || !c->dir)
		return;
	strv_push(&c->made_paths, path);
	strv_push(&c->made_keys, key);
	strv_push(&c->made_layouts, layout ? layout : "");
}

static void release_records(struct cache *c) {
	strv_release(&c->made_paths);
	strv_release(&c->made_keys);
	strv_release(&c->made_layouts);
	strv_release(&c->to_spare);
	strv_release(&c->to_spare_ids);
	strv_release(&c->to_spare_layouts);
}

void cache_outputs_record(struct cache *c) {
	if (!c->dir)
		return;
	_cleanup_free_ char *dir = path_join(c->dir, "outputs");
	struct diags quiet = DIAGS_INIT;
	if (mkdir_p(dir, 0755) == 0)
		for (size_t i = 0; i < c->made_paths.n; i++) {
			_cleanup_free_ char *rec = output_record(c, c->made_paths.v[i]);
			_cleanup_free_ char *id = identity(c->made_paths.v[i]);
			if (!rec || !id)
				continue;
			_cleanup_free_ char *text = xasprintf("%s %s\n%s", c->made_keys.v[i], id, c->made_layouts.v[i]);
			write_file_atomic(rec, text, strlen(text), 0644, &quiet);
		}
	/* Outputs that became spares, untouched since made (their inode,
	 * size and mtime as their record had them; the rename moved ctime):
	 * their layouts are recorded with the spare's identity now. */
	for (size_t i = 0; i < c->to_spare.n; i++) {
		_cleanup_free_ char *made = made_identity(c->to_spare.v[i]);
		_cleanup_free_ char *id = identity(c->to_spare.v[i]);
		_cleanup_free_ char *layout_path = xasprintf("%s.layout", c->to_spare.v[i]);
		if (made && id && streq(made, c->to_spare_ids.v[i])) {
			_cleanup_free_ char *text = xasprintf("%s\n%s", id, c->to_spare_layouts.v[i]);
			write_file_atomic(layout_path, text, strlen(text), 0644, &quiet);
		}
	}
	diags_release(&quiet);
	release_records(c);
}

void cache_close(struct cache *c) {
	release_records(c);
	if (!c->dir)
		return;
	count_added(c);
	/* Another build using the cache now: it tidies when it is done. */
	if (flock(c->lock_fd, LOCK_EX | LOCK_NB) == 0)
		tidy(c);
	close(c->lock_fd);
	free(c->dir);
	c->dir = NULL;
	c->lock_fd = -1;
}
