/* Putting the payload where flatcar-install would on the installed system
 * (builder/layout.h): `root` is where the ROOT file system is mounted (or
 * --target-root), `oem` the OEM file system's. Everything written is owned
 * by root and written to a temp beside it first. */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "util.h"
#include "verify.h"

struct place_stats {
	unsigned files, dirs, links;
	uint64_t bytes;
};

/* The cloud-config as LAYOUT_USER_DATA, mode 0600 in a 0700 directory, as
 * flatcar-install (umask 077, cp) leaves it. 0 when placed, -ENOENT (e
 * unset) when the payload has no cloud-config. */
int place_user_data(const char *root, struct agent_err *e);

/* Every file below LAYOUT_LIVE_ROOTFS (and its large/ counterpart) at its
 * path below root with its mode; directories that do not exist yet are
 * made 0755, existing ones are left alone. */
int place_rootfs(const char *root, const struct manifest *m, struct place_stats *st, struct agent_err *e);

/* Every regular file in LAYOUT_LIVE_IMAGES_DIR (and large/) into
 * LAYOUT_IMAGES_DIR, where dlws-load-images.service (the payload's Ignition
 * config) imports them on first boot. Nothing when there are no images. */
int place_images(const char *root, const struct manifest *m, struct place_stats *st, struct agent_err *e);

/* Whether the payload has an Ignition config. */
bool ignition_present(void);
/* It as LAYOUT_IGNITION on OEM, mode 0600 (as flatcar-install leaves it). */
int place_ignition(const char *oem, struct agent_err *e);

/* The log so far as LAYOUT_INSTALL_LOG, mode 0644. */
int place_log(const char *root, struct agent_err *e);

