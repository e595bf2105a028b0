#include "place.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "paths.h"

#define IMAGES_DIR "/" LAYOUT_IMAGES_DIR

/* Makes the missing directories of `rel_dir` below `base` (mode `mode`,
 * owner root), refusing to follow a symbolic link: on a mounted target an
 * absolute link would lead out of it, into the live system. */
static int make_dirs(const char *base, const char *rel_dir, mode_t mode, unsigned *made, struct agent_err *e)
{
	char path[AGENT_PATH_MAX];
	size_t blen = strlen(base);
	const char *s = rel_dir;

	if (blen + 1 + strlen(rel_dir) >= sizeof path)
		return err_set(e, -ENAMETOOLONG, "path too long: '%s'", rel_dir);
	memcpy(path, base, blen + 1);
	while (*s) {
		struct stat st;
		size_t n;
		while (*s == '/')
			s++;
		n = strcspn(s, "/");
		if (n == 0)
			break;
		path[blen++] = '/';
		memcpy(path + blen, s, n);
		blen += n;
		path[blen] = '\0';
		s += n;
		if (lstat(path, &st) == 0) {
			if (S_ISLNK(st.st_mode))
				return err_set(e, -ELOOP, "'%s' on the target is a symbolic link", path);
			if (!S_ISDIR(st.st_mode))
				return err_set(e, -ENOTDIR, "'%s' on the target is not a directory", path);
			continue;
		}
		if (errno != ENOENT)
			return err_set(e, -errno, "cannot stat '%s': %s", path, strerror(errno));
		if (mkdir(path, mode) < 0)
			return err_set(e, -errno, "cannot create '%s': %s", path, strerror(errno));
		if ((lchown(path, 0, 0) < 0 && !(errno == EPERM && geteuid() != 0)) || chmod(path, mode) < 0)
			return err_set(e, -errno, "cannot set owner and mode of '%s': %s", path, strerror(errno));
		if (made)
			(*made)++;
	}
	return 0;
}

static int dir_of(const char *rel, char *out, size_t n)
{
	const char *slash = strrchr(rel, '/');

	if (!slash) {
		out[0] = '\0';
		return 0;
	}
	if ((size_t)(slash - rel) >= n)
		return -ENAMETOOLONG;
	memcpy(out, rel, (size_t)(slash - rel));
	out[slash - rel] = '\0';
	return 0;
}

/* Copies `src` to `base/rel` with `mode`, making missing parents 0755. */
static int place_file(const char *src, const char *base, const char *rel, mode_t mode,
		      unsigned *dirs, uint64_t *bytes, struct agent_err *e)
{
	char parent[AGENT_PATH_MAX], dst[AGENT_PATH_MAX];
	struct stat st;
	int r;

	if (dir_of(rel, parent, sizeof parent) < 0 || path_join(dst, sizeof dst, base, rel) < 0)
		return err_set(e, -ENAMETOOLONG, "path too long: '%s'", rel);
	r = make_dirs(base, parent, 0755, dirs, e);
	if (r < 0)
		return r;
	if (lstat(dst, &st) == 0 && S_ISDIR(st.st_mode))
		return err_set(e, -EISDIR, "'%s' on the target is a directory", dst);
	return copy_file(src, dst, mode, bytes, e);
}

int place_user_data(const char *root, struct agent_err *e)
{
	char src[AGENT_PATH_MAX], parent[AGENT_PATH_MAX], grandparent[AGENT_PATH_MAX];
	int r;

	if (rooted(src, sizeof src, LAYOUT_LIVE_CLOUD_CONFIG) < 0)
		return err_set(e, -ENAMETOOLONG, "path too long");
	if (access(src, F_OK) < 0)
		return -ENOENT;
	/* flatcar-install's umask 077 makes the directory it creates 0700. */
	if (dir_of(LAYOUT_USER_DATA, parent, sizeof parent) < 0 ||
	    dir_of(parent, grandparent, sizeof grandparent) < 0)
		return err_set(e, -ENAMETOOLONG, "path too long");
	r = make_dirs(root, grandparent, 0755, NULL, e);
	if (r == 0)
		r = make_dirs(root, parent, 0700, NULL, e);
	if (r == 0)
		r = place_file(src, root, LAYOUT_USER_DATA, 0600, NULL, NULL, e);
	return r;
}

/* Copies the tree at live directory `live_dir` (rooted `src_dir`) below
 * `dst_base`; with `shadow`, entries that also exist below it are skipped
 * (a file in dlws/X wins over dlws/large/X). */
static int copy_tree(const char *src_dir, const char *live_dir, const char *shadow, const char *dst_base,
		     const char *rel, const struct manifest *m, struct place_stats *st, struct agent_err *e)
{
	char dir[AGENT_PATH_MAX];
	struct dirent **names = NULL;
	int count, r = 0;

	if (path_join(dir, sizeof dir, src_dir, rel) < 0)
		return err_set(e, -ENAMETOOLONG, "path too long");
	count = scandir(dir, &names, NULL, alphasort);
	if (count < 0)
		return err_set(e, -errno, "cannot read '%s%s%s': %s", live_dir, rel[0] ? "/" : "", rel,
			       strerror(errno));
	for (int i = 0; i < count; i++) {
		const char *name = names[i]->d_name;
		char sub[AGENT_PATH_MAX], src[AGENT_PATH_MAX], live[AGENT_PATH_MAX], dst[AGENT_PATH_MAX];
		struct stat sst;

		if (r < 0 || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
			goto next;
		if ((rel[0] ? snprintf(sub, sizeof sub, "%s/%s", rel, name) :
			      snprintf(sub, sizeof sub, "%s", name)) >= (int)sizeof sub ||
		    path_join(src, sizeof src, src_dir, sub) < 0 ||
		    path_join(live, sizeof live, live_dir, sub) < 0 ||
		    path_join(dst, sizeof dst, dst_base, sub) < 0) {
			r = err_set(e, -ENAMETOOLONG, "path too long: '%s'", sub);
			goto next;
		}
		if (lstat(src, &sst) < 0) {
			r = err_set(e, -errno, "cannot stat '%s': %s", live, strerror(errno));
			goto next;
		}
		if (shadow) {
			char other[AGENT_PATH_MAX];
			struct stat ost;
			if (path_join(other, sizeof other, shadow, sub) == 0 && lstat(other, &ost) == 0 &&
			    !S_ISDIR(sst.st_mode))
				goto next;
		}
		if (S_ISDIR(sst.st_mode)) {
			r = make_dirs(dst_base, sub, 0755, &st->dirs, e);
			if (r == 0)
				r = copy_tree(src_dir, live_dir, shadow, dst_base, sub, m, st, e);
		} else if (S_ISREG(sst.st_mode)) {
			uint64_t bytes = 0;
			if (!manifest_has(m, live))
				log_step("warning: %s is not in the payload manifest (not verified)", live);
			r = place_file(src, dst_base, sub, sst.st_mode & 07777, &st->dirs, &bytes, e);
			if (r == 0) {
				log_step("installed /%s (%04o, %llu bytes)", sub, (unsigned)(sst.st_mode & 07777),
					 (unsigned long long)bytes);
				st->files++;
				st->bytes += bytes;
			}
		} else if (S_ISLNK(sst.st_mode)) {
			char target[AGENT_PATH_MAX], parent[AGENT_PATH_MAX];
			ssize_t len = readlink(src, target, sizeof target - 1);
			if (len < 0) {
				r = err_set(e, -errno, "cannot read link '%s': %s", live, strerror(errno));
				goto next;
			}
			target[len] = '\0';
			if (dir_of(sub, parent, sizeof parent) == 0)
				r = make_dirs(dst_base, parent, 0755, &st->dirs, e);
			if (r < 0)
				goto next;
			if (unlink(dst) < 0 && errno != ENOENT) {
				r = err_set(e, -errno, "cannot replace '%s': %s", dst, strerror(errno));
				goto next;
			}
			if (symlink(target, dst) < 0) {
				r = err_set(e, -errno, "cannot create link '%s': %s", dst, strerror(errno));
				goto next;
			}
			if (lchown(dst, 0, 0) < 0 && !(errno == EPERM && geteuid() != 0)) {
				r = err_set(e, -errno, "cannot set owner of '%s': %s", dst, strerror(errno));
				goto next;
			}
			log_step("installed /%s -> %s", sub, target);
			st->links++;
		} else {
			log_step("warning: %s is not a file, directory or link; skipped", live);
		}
	next:
		free(names[i]);
	}
	free(names);
	return r;
}

/* Walks dlws/X and then dlws/large/X (skipping what dlws/X already had). */
static int copy_payload_tree(const char *live_dir, const char *dst_base, const struct manifest *m,
			     struct place_stats *st, struct agent_err *e)
{
	char src[AGENT_PATH_MAX], alt_live[AGENT_PATH_MAX], alt[AGENT_PATH_MAX];
	struct stat sst;
	bool have_main;
	int r = 0;

	if (rooted(src, sizeof src, live_dir) < 0 || payload_alt(live_dir, alt_live, sizeof alt_live) < 0 ||
	    rooted(alt, sizeof alt, alt_live) < 0)
		return err_set(e, -ENAMETOOLONG, "path too long");
	have_main = stat(src, &sst) == 0 && S_ISDIR(sst.st_mode);
	if (have_main)
		r = copy_tree(src, live_dir, NULL, dst_base, "", m, st, e);
	if (r == 0 && stat(alt, &sst) == 0 && S_ISDIR(sst.st_mode))
		r = copy_tree(alt, alt_live, have_main ? src : NULL, dst_base, "", m, st, e);
	return r;
}

int place_rootfs(const char *root, const struct manifest *m, struct place_stats *st, struct agent_err *e)
{
	return copy_payload_tree(LAYOUT_LIVE_ROOTFS, root, m, st, e);
}

/* Only the regular files at the top of dlws/images (and large/images). */
static int copy_images(const char *src_dir, const char *live_dir, const char *shadow, const char *root,
		       const struct manifest *m, struct place_stats *st, struct agent_err *e)
{
	struct dirent **names = NULL;
	int count, r = 0;

	count = scandir(src_dir, &names, NULL, alphasort);
	if (count < 0)
		return errno == ENOENT ? 0 : err_set(e, -errno, "cannot read '%s': %s", live_dir, strerror(errno));
	for (int i = 0; i < count; i++) {
		const char *name = names[i]->d_name;
		char src[AGENT_PATH_MAX], live[AGENT_PATH_MAX], other[AGENT_PATH_MAX], rel[AGENT_PATH_MAX];
		struct stat sst;
		uint64_t bytes = 0;

		if (r < 0 || name[0] == '.' || path_join(src, sizeof src, src_dir, name) < 0 ||
		    path_join(live, sizeof live, live_dir, name) < 0 || stat(src, &sst) < 0)
			goto next;
		if (!S_ISREG(sst.st_mode)) {
			log_step("warning: %s is not a regular file; skipped", live);
			goto next;
		}
		if (shadow && path_join(other, sizeof other, shadow, name) == 0 && access(other, F_OK) == 0)
			goto next;
		if (!manifest_has(m, live))
			log_step("warning: %s is not in the payload manifest (not verified)", live);
		if (path_join(rel, sizeof rel, LAYOUT_IMAGES_DIR, name) < 0) {
			r = err_set(e, -ENAMETOOLONG, "path too long: '%s'", name);
			goto next;
		}
		r = place_file(src, root, rel, sst.st_mode & 07777, NULL, &bytes, e);
		if (r == 0) {
			log_step("installed container image %s/%s (%llu bytes)", IMAGES_DIR, name,
				 (unsigned long long)bytes);
			st->files++;
			st->bytes += bytes;
		}
	next:
		free(names[i]);
	}
	free(names);
	return r;
}

int place_images(const char *root, const struct manifest *m, struct place_stats *st, struct agent_err *e)
{
	char src[AGENT_PATH_MAX], alt_live[AGENT_PATH_MAX], alt[AGENT_PATH_MAX], dst_dir[AGENT_PATH_MAX];
	struct stat sst;
	bool have_main;
	int r;

	if (rooted(src, sizeof src, LAYOUT_LIVE_IMAGES_DIR) < 0 ||
	    payload_alt(LAYOUT_LIVE_IMAGES_DIR, alt_live, sizeof alt_live) < 0 ||
	    rooted(alt, sizeof alt, alt_live) < 0 || path_join(dst_dir, sizeof dst_dir, root, LAYOUT_IMAGES_DIR) < 0)
		return err_set(e, -ENAMETOOLONG, "path too long");
	r = make_dirs(root, LAYOUT_IMAGES_DIR, 0755, NULL, e);
	if (r < 0)
		return r;
	have_main = stat(src, &sst) == 0 && S_ISDIR(sst.st_mode);
	unsigned before = st->files;
	r = copy_images(src, LAYOUT_LIVE_IMAGES_DIR, NULL, root, m, st, e);
	if (r == 0)
		r = copy_images(alt, alt_live, have_main ? src : NULL, root, m, st, e);
	if (r < 0)
		return r;
	if (st->files == before) {
		/* No images: leave no trace (rmdir fails, harmlessly, on what was there before). */
		char parent[AGENT_PATH_MAX];
		rmdir(dst_dir);
		if (dir_of(dst_dir, parent, sizeof parent) == 0)
			rmdir(parent);
		return 0;
	}
	/* dlws-load-images.service (the payload's Ignition config, on OEM)
	 * imports them on first boot. */
	return 0;
}

bool ignition_present(void)
{
	char path[AGENT_PATH_MAX];

	return rooted(path, sizeof path, LAYOUT_LIVE_IGNITION) == 0 && access(path, F_OK) == 0;
}

int place_ignition(const char *oem, struct agent_err *e)
{
	char src[AGENT_PATH_MAX];

	if (rooted(src, sizeof src, LAYOUT_LIVE_IGNITION) < 0)
		return err_set(e, -ENAMETOOLONG, "path too long");
	return place_file(src, oem, LAYOUT_IGNITION, 0600, NULL, NULL, e);
}

int place_log(const char *root, struct agent_err *e)
{
	char parent[AGENT_PATH_MAX], dst[AGENT_PATH_MAX];
	int r;

	if (dir_of(LAYOUT_INSTALL_LOG, parent, sizeof parent) < 0 ||
	    path_join(dst, sizeof dst, root, LAYOUT_INSTALL_LOG) < 0)
		return err_set(e, -ENAMETOOLONG, "path too long");
	r = make_dirs(root, parent, 0755, NULL, e);
	if (r < 0)
		return r;
	const char *text = log_text(); /* may add a line: before log_length */
	return write_file(dst, text, log_length(), 0644, e);
}
