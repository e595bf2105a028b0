/* Pre-installed disk images (outputs.disk), made offline with libguestfs:
 * the OS image (base.image) with one node's payload put where the install
 * agent puts it on a real install (builder/layout.h, agent/place.c):
 *
 *   ROOT  the payload rootfs at its paths with its modes; the cloud-config
 *         as LAYOUT_USER_DATA (0600, its directory 0700); container images
 *         in LAYOUT_IMAGES_DIR; the log as LAYOUT_INSTALL_LOG
 *   OEM   the node's Ignition config as LAYOUT_IGNITION (0600)
 *
 * One disk per node, in the directory outputs.disk.path names:
 *   <path>/<hostname>.img      raw (format: raw, the default)
 *   <path>/<hostname>.qcow2    format: qcow2
 * each 0600 (it holds the node's private keys). With outputs.disk.size the
 * disk is that big: the GPT is grown (its backup header moved to the end)
 * and so are ROOT (the last partition, as on Flatcar) and its ext4. */
#pragma once
#include <stdbool.h>
#include "build.h"

bool disk_wanted(struct build *const *builds, size_t n);

/* Writes the outputs.disk of every build beside its target, to be put in
 * place by pending_commit. Each recipe's OS image is decompressed once and
 * copied per node; one libguestfs appliance (one launch) writes every
 * node's disk of every recipe. */
int disk_write(struct build *const *builds, size_t n, struct pending *out, struct diags *d);
