/* Locks between dlws-mkimage processes: flock(2) on a lock file that holds
 * the holder's "<pid> <hostname> <what>". The kernel drops a flock when its
 * holder dies, however it dies, so a stale lock of a killed build is taken
 * over at once; the text only names a live holder to whoever waits.
 *
 * Builds lock each PKI directory and each output path they write, certs
 * its PKI directory, render reads the PKI under a shared lock, publish
 * reads a bundle under one and locks the boot server's root. Paths are
 * locked in sorted order, so two processes never wait on each other. */
#pragma once
#include <stdbool.h>
#include "diag.h"
#include "util.h"

/* Told once, before waiting: the lock file and its holder in words
 * ("pid 12 (build)", see lock_holder_words). */
typedef void (*lock_wait_fn)(void *ctx, const char *file, const char *who);

struct lock_opts {
	bool no_wait;           /* -EBUSY instead of waiting */
	bool shared;            /* a reader: many at once, no writer meanwhile */
	const char *what;       /* this process's work, for others' messages: "build", "certs" */
	lock_wait_fn waiting;   /* may be NULL */
	void *ctx;
};

/* The lock file of `path` (a directory or file that may not exist yet):
 * ".<name>.lock" beside it, so it survives `path` being replaced, named by
 * its parent's real path. A missing parent is created with `create`, else
 * -ENOENT (not reported). */
int lock_file_for(const char *path, bool create, char **ret, struct diags *d);

/* Takes the lock on `file` (created 0644 when missing; a shared lock
 * creates nothing, and a missing file is 0 with *ret_fd = -1). When it is held
 * and o->no_wait: -EBUSY, not reported, with the holder's text in
 * *ret_holder (may be NULL; owned) for the caller's message. When
 * `optional` and the file cannot be created (a read-only directory):
 * 0 with *ret_fd = -1, since nobody can write there to race us. */
int lock_take(const char *file, const struct lock_opts *o, bool optional, int *ret_fd, char **ret_holder,
	      struct diags *d);
void lock_release(int fd);

/* Several paths' locks, taken in sorted order. */
struct lock_set {
	struct strv files, paths;       /* parallel: the lock file of each path */
	int *fds;
	size_t n;                       /* taken */
};
#define LOCK_SET_INIT { STRV_INIT, STRV_INIT, NULL, 0 }
/* Locks `paths` (each place once) through lock_file_for, skipping for a
 * shared lock those whose parent is missing; o->waiting is
 * told the path, not its lock file. With no_wait, a
 * held one is reported as "'PATH' is in use by pid 12 (build): not waiting
 * (--no-wait)". On failure the ones taken are released. */
int lock_set_take(struct lock_set *s, const struct strv *paths, const struct lock_opts *o, struct diags *d);
void lock_set_release(struct lock_set *s);

/* This process's "<pid> <hostname> <what>" (`what` may be NULL). */
char *lock_holder_text(const char *what);
/* A holder's text in words: "pid 12", "pid 12 on host7", or "another
 * process"; lock_holder_words adds its work: "pid 12 (build)". */
char *lock_holder_describe(const char *holder);
char *lock_holder_words(const char *holder);
