/* systemd-sysext images: how Flatcar takes Kubernetes (and, e.g., an NVIDIA
 * driver): a file system image whose /usr and /opt systemd-sysext merges
 * over the host's at boot (flatcar/sysext-bakery, man systemd-sysext).
 *
 * Each image of a recipe goes into the payload's rootfs (the shared
 * segment: images are per role, not per node), placed as Flatcar places
 * its own:
 *   /opt/extensions/<name>/<name>-<version>-x86-64.raw   a made image
 *   /opt/extensions/<name>/<file name of src>            a prebuilt one
 *   /etc/extensions/<name>.raw -> that path              what systemd-sysext looks for
 * systemd-sysext takes the image name from the link (<name>) and merges the
 * image only when it holds usr/lib/extension-release.d/extension-release.<name>
 * matching the host: ID= (or ID=_any), SYSEXT_LEVEL= (or VERSION_ID=), and
 * ARCHITECTURE= when given.
 *
 * libsquashfs (squashfs-tools-ng) is used here and nowhere else. */
#pragma once
#include <time.h>
#include "diag.h"
#include "recipe.h"
#include "stage.h"

#define SYSEXT_IMAGE_DIR "/opt/extensions"
#define SYSEXT_LINK_DIR "/etc/extensions"
#define SYSEXT_RELEASE_DIR "usr/lib/extension-release.d"
/* What the media boot; in every made image's file name. */
#define SYSEXT_ARCH "x86-64"

/* Where the image lives on the node: "/opt/extensions/<name>/<file>". */
char *sysext_node_path(const struct recipe_sysext *x);
/* "/etc/extensions/<name>.raw". */
char *sysext_link_path(const struct recipe_sysext *x);
/* The extension-release a made image carries (ID=, SYSEXT_LEVEL=,
 * ARCHITECTURE=, EXTENSION_RELOAD_MANAGER=). */
char *sysext_release_text(const struct recipe_sysext *x);

/* Makes the image of `x` (one made from files) at `path`, a squashfs (gzip,
 * 128 KiB blocks, as mksquashfs makes by default): owner root:root,
 * directories 0755, files with their recipe modes, every mtime `epoch`,
 * directories sorted, so identical inputs give identical bytes. Every
 * file's pin is checked first (each mismatch reported at its recipe
 * entry); files are streamed, never held whole in memory. Written to
 * "<path>.tmp", fsynced and renamed; on failure nothing is left. */
int sysext_write(const struct recipe_sysext *x, const char *path, time_t epoch, struct diags *d);

/* A prebuilt image that is a squashfs must hold the extension-release
 * systemd-sysext will look for under its name. Other formats (erofs, ext4,
 * a GPT disk image) are taken as they are. */
int sysext_check_prebuilt(const struct recipe_sysext *x, struct diags *d);

/* The images one build makes, in a temp directory (under $TMPDIR) that
 * lives as long as the build: every output reads them, the ISO writer
 * until its last byte. sysext_work_free removes it (NULL is fine). */
struct sysext_work;
struct sysext_work *sysext_work_new(void);
void sysext_work_free(struct sysext_work *w);

/* Adds every image of `rc` and its /etc/extensions link to the payload
 * rootfs of `s`. A made image is made once per build; a prebuilt one is
 * checked against its pin and sysext_check_prebuilt. */
int sysext_stage(struct sysext_work *w, const struct recipe *rc, time_t epoch, struct stage *s, struct diags *d);
