/* Small helpers for the install agent: errors, the (test) file-system root,
 * the payload lookup rule, files and directories. */
#pragma once
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define AGENT_PATH_MAX 4096

/* One error for the command layer: set once, by the function that failed,
 * lowercase and without a trailing period. */
struct agent_err {
	char msg[2048];
};

/* Sets e->msg and returns rc (a negative errno), so `return err_set(...)`. */
int err_set(struct agent_err *e, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Live-system paths (/usr/share/oem, /sys, /proc, and /dev for disks found
 * by `auto`) are read below this directory: "" normally, --root DIR in tests. */
void root_set(const char *dir);
bool root_is_fake(void);
/* buf = root + abs_path; -ENAMETOOLONG if it does not fit. */
int rooted(char *buf, size_t n, const char *abs_path);

/* buf = a + "/" + b (b may start with "/"); -ENAMETOOLONG if it does not fit. */
int path_join(char *buf, size_t n, const char *a, const char *b);

/* The payload lookup rule: a file at LAYOUT_LIVE_DLWS/X may instead be at
 * LAYOUT_LIVE_LARGE/X. payload_alt gives the live path of the alternative
 * (-EINVAL when live_path is not below LAYOUT_LIVE_DLWS or already large).
 * payload_locate puts the rooted path that exists in `out`: live_path's,
 * else its alternative's; -ENOENT (out = live_path's) when neither does. */
int payload_alt(const char *live_path, char *out, size_t n);
int payload_locate(const char *live_path, char *out, size_t n);

/* Reads a small file (sysfs attributes) into buf, trailing newlines removed. */
int read_small(const char *path, char *buf, size_t n);
int read_u64(const char *path, uint64_t *ret);

/* Creates the missing directories of `dir` with `mode`; existing ones are
 * left as they are. */
int mkdir_p(const char *dir, mode_t mode);
/* The same for the directory that will hold `path`. */
int mkdir_parent(const char *path, mode_t mode);

/* Writes a file owned by root with exactly `mode`: the data goes to a temp
 * beside `dst` and is renamed over it, so `dst` is never half-written. */
int copy_file(const char *src, const char *dst, mode_t mode, uint64_t *ret_bytes, struct agent_err *e);
int write_file(const char *dst, const void *data, size_t len, mode_t mode, struct agent_err *e);

/* write(2) all of buf, retrying short writes and EINTR. */
int write_all(int fd, const void *buf, size_t len);
double now_seconds(void);
