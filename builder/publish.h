/* Publishing PXE bundles to a boot server's root, locally or over ssh,
 * so that clients only ever boot a complete, verified tree:
 *
 *   DEST/releases/<id>/          one published bundle each; <id> is the UTC
 *                                time and a short hash of its SHA256SUMS
 *                                (20261201T181500Z-3fa2c1d9), so ids sort by age
 *   DEST/releases/<id>.partial/  a tree being copied or removed (the next
 *                                publish removes a stale one)
 *   DEST/current                 symlink "releases/<id>": what dnsmasq's
 *                                tftp-root and nginx's root name
 *   DEST/.publish.lock           flock(2)ed by the publish in progress, which
 *                                writes "<pid> <hostname>" into it
 *
 * A tree lands in <id>.partial, is checked there against its SHA256SUMS
 * (every listed file with its sum, nothing unlisted), is renamed to <id>,
 * and goes live by one rename(2) of a new symlink over `current`: killed at
 * any point, a publish leaves `current` on a complete release.
 *
 * A remote root ("[user@]host:path") is written with rsync over ssh
 * (--link-dest to the kept releases, so unchanged files are hard links and
 * are not sent again) and handled with a few POSIX sh scripts run through
 * the same ssh: the server needs sh, coreutils, find, flock(1) and rsync. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "diag.h"
#include "hash.h"
#include "util.h"

#define PUBLISH_KEEP_DEFAULT 5

/* Where a bundle is published. All strings owned. */
struct publish_dest {
	char *label;    /* as given, for messages: "/srv/boot", "boot1:/srv/boot" */
	char *host;     /* "[user@]host" for a remote root, NULL for a local one */
	char *path;     /* the root directory (on host) */
	char *ssh;      /* the ssh command line for a remote root */
	struct strv ssh_argv;   /* ssh, split into words the way rsync -e splits it */
};
#define PUBLISH_DEST_INIT { 0 }
/* Parses DEST the way rsync does: a ':' before any '/' makes it remote
 * (write "./a:b" for a local name with a colon). `ssh` is the ssh command
 * line ("ssh -p 2222 -i key"); NULL means $DLWS_MKIMAGE_SSH, else "ssh". */
int publish_dest_parse(const char *spec, const char *ssh, struct publish_dest *ret, struct diags *d);
void publish_dest_release(struct publish_dest *p);

/* Progress, passed on as it happens (a wait for the lock must show while
 * it waits); `verbose` marks the steps only -v shows. */
typedef void (*publish_note_fn)(void *ctx, bool verbose, const char *msg);

struct publish_opts {
	unsigned keep;          /* releases to keep (>= 1); see publish_bundle */
	bool no_wait;           /* fail with -EBUSY instead of waiting for the lock */
	time_t now;             /* the new release's time */
	publish_note_fn note;   /* may be NULL */
	void *note_ctx;
};

/* What a publish or a rollback did. Strings owned. */
struct publish_result {
	char *id;               /* the release current now */
	char *previous;         /* the release current before, or NULL */
	bool unchanged;         /* nothing changed: the bundle is what is current */
	size_t n_files;         /* files in the release (SHA256SUMS not counted) */
	size_t n_linked;        /* of those, hard-linked from a kept release (local roots) */
	uint64_t size;          /* bytes of those files */
	struct strv removed;    /* releases removed (--keep) */
	struct strv stale;      /* .partial trees of interrupted publishes removed */
};
#define PUBLISH_RESULT_INIT { 0 }
void publish_result_release(struct publish_result *r);

/* Publishes `bundle` (a PXE tree with SHA256SUMS at its top, or a tar of
 * one whose members are "<top>/<path>") to `dest`. Returns 0 (with
 * ret->unchanged when its SHA256SUMS is the current release's), -EBUSY
 * when another publish holds the lock and opts->no_wait is set, or another
 * negative errno, reported in `d` naming the file or place; on failure
 * `current` is untouched. Afterwards only the newest opts->keep releases
 * are kept, besides the current one, the one before it (where a rollback
 * goes) and the one it replaced. */
int publish_bundle(const char *bundle, const struct publish_dest *dest, const struct publish_opts *opts,
		   struct publish_result *ret, struct diags *d);

/* Makes release `id` current again (NULL: the one before the current one)
 * after checking it against its SHA256SUMS. ret->unchanged when it is
 * current already. */
int publish_rollback(const struct publish_dest *dest, const char *id, const struct publish_opts *opts,
		     struct publish_result *ret, struct diags *d);

struct publish_release {
	char *id;
	time_t published;       /* from the id */
	uint64_t size;          /* apparent size of its tree, as du -sb counts it */
	bool current;
	struct strv roles;      /* from its dlws-build.json, else top-level directories with a vmlinuz */
	struct strv nodes;      /* hostnames, from the same, else nodes/<hostname>.cpio.* */
};
/* The releases in `dest`, oldest first (*ret_n may be 0). The caller frees
 * them with publish_releases_free. */
int publish_list(const struct publish_dest *dest, struct publish_release **ret, size_t *ret_n, struct diags *d);
void publish_releases_free(struct publish_release *v, size_t n);

/* The parts below are exposed for the unit tests. */

/* "20261201T181500Z-3fa2c1d9": 8 digits, T, 6 digits, Z, -, 8 hex digits. */
bool publish_is_release_id(const char *s);
/* The id of a release published at `now` whose SHA256SUMS hashes to
 * `sums_hex`, later than `latest` (the newest id in the root, or NULL) so
 * that ids keep the order of publication even within a second. */
char *publish_release_id(time_t now, const char *latest, const char sums_hex[SHA256_HEX_LEN + 1]);

/* Splits a command line into words as rsync splits -e: blanks separate,
 * '...' and "..." quote, a backslash escapes (not inside '...'). Returns
 * -EINVAL on an unbalanced quote or an empty line. */
int publish_split_words(const char *line, struct strv *ret);
/* `s` single-quoted for sh. */
char *publish_sh_quote(const char *s);
