/* Inside publish: what publish.c (bundles, checks, the steps of a publish
 * and a rollback) shares with the two kinds of root it writes to,
 * publish_local.c (a directory here) and publish_remote.c (a directory on
 * a server, over ssh and rsync). Not for other modules. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "buf.h"
#include "diag.h"
#include "fsutil.h"
#include "lock.h"
#include "publish.h"
#include "runcmd.h"
#include "util.h"

#define SUMS_LIMIT ((size_t)16 << 20)   /* a SHA256SUMS is ~100 bytes a file */
#define LINK_SOURCES_MAX 8              /* kept releases to hard-link from */
#define LOCK_NAME ".publish.lock"
#define ID_LEN 25

void publish_note(const struct publish_opts *o, bool verbose, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
time_t publish_release_time(const char *id);

/* The bundle being published, read and checked. */
struct bundle {
	const char *arg;        /* as given */
	bool is_tar;
	char *dir;              /* the tree to copy from: the bundle, or the tar extracted; NULL for a tar not extracted */
	char *tmpdir;           /* our extraction of a tar, removed at the end */
	char *sums_text;
	size_t sums_len;
	char sums_hex[SHA256_HEX_LEN + 1];      /* of sums_text: the bundle's identity */
	struct sha256sums sums;
	uint64_t size;
};
/* Extracts a tar bundle into `out` (an empty directory), checking it again. */
int bundle_extract(const struct bundle *b, const char *out, struct diags *d);

/* What is in a root. */
struct state {
	char *current;          /* the release `current` points at, or NULL */
	char *current_target;   /* what `current` points at, when it is no release */
	bool current_foreign;   /* `current` exists and is not a symlink to a release */
	char current_sums[SHA256_HEX_LEN + 1];  /* hash of current's SHA256SUMS, or "" */
	char *current_info;     /* current's dlws-build.json (what it serves), or NULL */
	size_t current_info_len;
	struct strv releases;   /* ids, sorted (oldest first) */
	struct strv partials;   /* "<id>.partial" */
};
/* An entry of releases/; then, once all are in, what `current` points at
 * (NULL: nothing, or not a symlink). */
void state_add_entry(struct state *st, const char *name);
void state_set_current(struct state *st, const char *target);
void state_release(struct state *st);

/* What is in a landed tree: every entry but directories, with the sums of
 * the regular files, and the text of its SHA256SUMS. */
struct found {
	char *path;
	char hex[SHA256_HEX_LEN + 1];
	bool regular;
};
struct scan {
	struct found *v;
	size_t n, cap;
	char *sums_text;        /* NULL when it has none */
	size_t sums_len;
};
/* `hex` NULL: not a regular file. */
void scan_add(struct scan *s, const char *path, const char *hex);

/* The releases of `st`, for --list; sizes, roles and nodes left empty. */
struct publish_release *releases_of(const struct state *st);
/* Roles and nodes of a release from its build metadata (`text`, the
 * dlws-build.json it holds, named `where`; NULL when it has none); false
 * when there is none that reads, so the caller guesses from the tree. */
bool release_info_from_buildinfo(const char *text, size_t len, const char *where, struct publish_release *rel);

/* "'DEST' is being published by ...": -EBUSY. The lock's text is
 * lock_holder_text(NULL), "<pid> <hostname>", here and on a remote root. */
int lock_busy_error(const struct publish_dest *dest, const char *holder, struct diags *d);

/* ---- a local root (publish_local.c) ---- */
int local_open(const struct publish_dest *dest, const struct publish_opts *o, bool create, int *ret_lock_fd,
	       struct state *st, struct diags *d);
void local_unlock(int fd);
/* Copies (or hard-links from kept releases) the bundle into releases/<id>.partial. */
int local_land(const struct publish_dest *dest, const struct bundle *b, const char *id, const struct state *st,
	       struct publish_result *res, struct diags *d);
int local_scan(const char *dir, struct scan *s, struct diags *d);
int local_switch(const struct publish_dest *dest, const char *id, bool promote, struct diags *d);
int local_remove(const struct publish_dest *dest, const char *name, struct diags *d);
int local_list(const struct publish_dest *dest, struct publish_release **ret, size_t *ret_n, struct diags *d);
/* Whether `other` names the directory `dest` is (symlinks followed). */
bool local_same_dir(const struct publish_dest *dest, const char *other);

/* ---- a remote root (publish_remote.c) ---- */
/* The ssh session holding the remote root's lock while it lasts. */
struct remote_lock {
	struct child c;
	struct buf out, err;
};
#define REMOTE_LOCK_INIT { CHILD_INIT, BUF_INIT, BUF_INIT }
int remote_lock(const struct publish_dest *dest, const struct publish_opts *o, bool create, struct remote_lock *lk,
		struct state *st, struct diags *d);
void remote_unlock(struct remote_lock *lk);
int remote_land(const struct publish_dest *dest, const struct bundle *b, const char *id, const struct state *st,
		const struct publish_opts *o, struct diags *d);
int remote_scan(const struct publish_dest *dest, const char *name, struct scan *s, struct diags *d);
/* With `lk`, fails unless its session still holds the lock. */
int remote_switch(const struct publish_dest *dest, struct remote_lock *lk, const char *id, bool promote, struct diags *d);
int remote_remove(const struct publish_dest *dest, struct remote_lock *lk, const struct strv *names, struct diags *d);
int remote_list(const struct publish_dest *dest, struct publish_release **ret, size_t *ret_n, struct diags *d);
/* Whether `other` names the directory `dest` is on its server (symlinks
 * followed); false too when the server cannot be asked. */
bool remote_same_dir(const struct publish_dest *dest, const char *other);
