/* File helpers: whole-file reads with a limit, atomic writes, paths. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "diag.h"
#include "hash.h"
#include "util.h"

/* Streams `path` to `sink` in chunks; a sink returns 0 or a negative errno
 * (and reports its own errors). Open/read errors are reported as "cannot
 * open/read 'path': reason". The size read goes to ret_size (may be NULL). */
typedef int (*stream_sink)(void *ctx, const void *data, size_t len);
int stream_file(const char *path, stream_sink sink, void *ctx, uint64_t *ret_size, struct diags *d);
/* The same from an open `fd` (left open), `path` naming it in messages. */
int stream_fd(int fd, const char *path, stream_sink sink, void *ctx, uint64_t *ret_size, struct diags *d);
/* write(2) until all of `data` is written; 0 or -errno. */
int write_all(int fd, const void *data, size_t len);

/* For a large file written in order: starts writing back to disk what was
 * written since the last call, once that is 8 MiB or more, and does not
 * wait for it (sync_file_range(2)): the flush before the file is put in
 * place then waits for little. `*started` is how far writeback was started
 * (0 at first), `end` how far the file is written. */
void writeback_start(int fd, uint64_t *started, uint64_t end);

/* Reads a whole file (NUL-terminated) up to `limit` bytes. Errors are
 * reported as "cannot read 'path': reason"; returns 0 or -errno. */
int read_file(const char *path, size_t limit, char **ret, size_t *ret_len, struct diags *d);

/* Writing an artifact: data goes to "<path>.tmp" beside the target, is
 * fsynced, then renamed over the target by atomic_commit. On any failure
 * atomic_abort removes the temp, so a failed build never leaves a
 * half-written file where a good one was. */
struct atomic_file {
	char *path, *tmp;
	int fd;
};
#define ATOMIC_FILE_INIT { NULL, NULL, -1 }
int atomic_open(struct atomic_file *f, const char *path, mode_t mode, struct diags *d);
/* atomic_open, writing over the blocks of the file `spare` (a large
 * output this one replaced, kept for that: see pending_add_keeping)
 * instead of new ones, when that is safe: `spare` is a regular file with
 * no other name that no process has open (a write lease can be taken),
 * on the file system of the target; else a new file as atomic_open. The
 * writer must write every byte it wants and then cut the file there
 * (ftruncate): what the spare held past that is not the new file's.
 * Writing over allocated blocks spares the file system allocating them,
 * and freeing the old ones (discarding them, on a file system mounted
 * with `discard`). *ret_reused says which it was. */
int atomic_open_over(struct atomic_file *f, const char *path, mode_t mode, const char *spare, bool *ret_reused,
		     struct diags *d);
int atomic_commit(struct atomic_file *f, struct diags *d);
void atomic_abort(struct atomic_file *f);
int write_file_atomic(const char *path, const void *data, size_t len, mode_t mode, struct diags *d);
/* Writes a new file into a stage (a directory nothing else sees until it
 * is renamed into place): no temp and rename of its own; synced as
 * atomic_commit syncs (at once, or with the deferred sync). */
int write_file_staged(const char *path, const void *data, size_t len, mode_t mode, struct diags *d);

/* A build writes thousands of files into stages that become visible only
 * by a later rename (pending_commit, the PKI's exchange). Between
 * fsutil_defer_sync and fsutil_sync_deferred, atomic_commit does not fsync
 * each file: fsutil_sync_deferred flushes each file system written to
 * once (syncfs(2)), and must come before those renames. Without `flush`
 * (nothing is to be renamed into place: syncfs would only wait for what
 * others wrote) it only ends the deferral. */
void fsutil_defer_sync(void);
int fsutil_sync_deferred(bool flush, struct diags *d);

int mkdir_p(const char *path, mode_t mode);
/* Creates the directories of `rel` below `root` (which exists) with
 * exactly `mode`, whatever the umask; errors reported. mkdirs_for_file
 * creates those of a file's path `rel_file` ("a/b/f": a, a/b). */
int mkdirs_under(const char *root, const char *rel, mode_t mode, struct diags *d);
int mkdirs_for_file(const char *root, const char *rel_file, mode_t mode, struct diags *d);
/* Removes a tree (for temp dirs we made); missing is fine. */
int rm_rf(const char *path);
/* `rel` resolved against the directory of `base_file`; absolute `rel` is kept. */
char *path_relative_to(const char *base_file, const char *rel);
char *path_join(const char *a, const char *b);
bool path_exists(const char *path);
/* Normalises a target path ("/opt//bin/./x" -> "opt/bin/x"); NULL when it
 * escapes the root ("..") or is empty. */
char *path_normalize_dest(const char *path);
/* "a/b": relative, no empty, "." or ".." component, no control characters
 * or backslashes (nothing sha256sum(1) would escape). */
bool path_is_plain_relative(const char *p);

/* Replaces directory `dst` by `tmp` in one atomic exchange (two renames
 * where the file system cannot exchange), so readers and a crash see the
 * old tree or the new one, never a mix or neither; then removes the old. */
int dir_replace(const char *tmp, const char *dst, struct diags *d);
/* Makes directory `dst` (mode `mode`) holding hard links to the files of
 * `src`, which must hold regular files only: a copy to change by renaming
 * new files over its links, leaving `src` as it was. */
int dir_link_copy(const char *src, const char *dst, mode_t mode, struct diags *d);
/* SHA256SUMS files, as sha256sum(1) writes and -c reads them. */
#define SHA256SUMS_NAME "SHA256SUMS"
/* Writes `name` inside `dir`: "<sha256>  <relative path>" for every regular
 * file below `dir` (sorted, itself excluded), as sha256sum -c reads it. */
int sha256sums_write(const char *dir, const char *name, struct diags *d);
/* Whether the tree `dst` holds exactly what the tree `tmp` does: the same
 * files with the same sums, by `tmp`'s list `name` (sha256sums_write) and
 * `dst`'s files hashed now (filesum.h: a file not changed since it was
 * last hashed is not read again). */
bool tree_up_to_date(const char *tmp, const char *dst, const char *name);

/* A parsed SHA256SUMS, sorted by path. */
struct sha256sum {
	char *path;
	char hex[SHA256_HEX_LEN + 1];   /* lowercase */
};
struct sha256sums {
	struct sha256sum *v;
	size_t n, cap;
};
#define SHA256SUMS_INIT { 0 }
/* Parses "<64 hex digits>  <path>" lines ("<hex> *<path>" too); paths must
 * be plain relative paths ("a/b", no "..", ".", "//", backslashes or
 * control characters), each listed once, and not SHA256SUMS itself. Every
 * bad line is reported as FILE:LINE; *ret is set only on success. */
int sha256sums_parse(const char *text, size_t len, const char *file, struct sha256sums *ret, struct diags *d);
const struct sha256sum *sha256sums_find(const struct sha256sums *s, const char *path);
void sha256sums_release(struct sha256sums *s);
/* Whether `p` starts with 64 hex digits. */
bool is_sha256_hex(const char *p);
/* The names in `dir` (not . and ..), sorted; errors reported at `at`. */
int dir_names(const char *dir, struct strv *ret, const struct srcloc *at, struct diags *d);
/* Lists regular files and symlinks below `dir`, relative and sorted. */
int tree_list(const char *dir, struct strv *ret, struct diags *d);
/* Copies a regular file (mode `mode`), atomically. */
int copy_file(const char *src, const char *dst, unsigned mode, struct diags *d);

/* Outputs of one build, written beside their targets and put in place
 * together at the end: a build either replaces all its outputs or none. */
struct pending {
	struct strv tmp, dst;
	/* per entry: where the file it replaces is kept (pending_add_keeping), or "" */
	struct strv keep;
	/* Outputs found up to date and left as they are (pending_fresh);
	 * the caller reports and releases them. */
	struct strv fresh;
	/* "<bytes> <dst>": of a file written over its spare, what was left
	 * as the spare had it (pending_note_kept); the caller releases it. */
	struct strv kept;
};
#define PENDING_INIT { STRV_INIT, STRV_INIT, STRV_INIT, STRV_INIT, STRV_INIT }
void pending_note_kept(struct pending *p, const char *dst, uint64_t bytes);
/* What pending_note_kept said of `dst`: 0 when nothing. */
uint64_t pending_kept(const struct pending *p, const char *dst);
void pending_add(struct pending *p, const char *tmp, const char *dst);
/* pending_add for a file: the file `dst` it replaces is moved to `keep`
 * (exchanged with the new one, then renamed: readers of `dst` see the
 * old file or the new, never none), for atomic_open_over to write the
 * next one over; removed instead when it has another name or cannot be
 * moved there. */
void pending_add_keeping(struct pending *p, const char *tmp, const char *dst, const char *keep);
/* `dst` is an output this build no longer makes: removed with the commit,
 * so that a stale one is not taken for this build's. */
void pending_remove(struct pending *p, const char *dst);
/* `dst` is up to date: its temp `tmp` (may be NULL) is removed now. */
void pending_fresh(struct pending *p, const char *tmp, const char *dst);
/* Renames every temp over its target (directories via dir_replace). */
int pending_commit(struct pending *p, struct diags *d);
/* Removes every temp that was not committed. */
void pending_abort(struct pending *p);
