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
#include "layout.h"
#include "reader.h"

bool disk_wanted(struct build *const *builds, size_t n);

/* Writes the outputs.disk of every build beside its target, to be put in
 * place by pending_commit. Each recipe's OS image is decompressed once and
 * copied per node; one libguestfs appliance (one launch) writes every
 * node's disk of every recipe. Disks already in an outputs.disk
 * directory of nodes this build does not make (files named
 * <hostname>.img or <hostname>.qcow2) stay: hard-linked into the new
 * directory, the directory's target pushed to `kept` once per disk. */
int disk_write(struct build *const *builds, size_t n, struct strv *kept, struct pending *out, struct diags *d);

/* Reading a disk back (inspect, verify), as untrusted input: through one
 * read-only libguestfs launch with the format given (never guessed), the
 * partitions found by GPT label. Appends to o->files, named by partition:
 * DISK_READ_BUILDINFO and DISK_READ_MANIFEST (their text kept), then every
 * file the manifest lists as "ROOT/<path>" or "OEM/<path>" with its type,
 * mode, size and sha256 as read on the disk; the configs, certificates and
 * kubeconfigs among them are kept (never a .key). A file the manifest
 * lists but the disk lacks is not added. A missing, oversize or malformed
 * manifest, or a path in it outside ROOT or OEM, is an error; so is a
 * qcow2 with a backing or external data file. */
#define DISK_READ_BUILDINFO LAYOUT_PART_OEM "/" LAYOUT_DISK_BUILDINFO
#define DISK_READ_MANIFEST LAYOUT_PART_OEM "/" LAYOUT_DISK_MANIFEST
int disk_read(const char *path, bool qcow2, struct reader_output *o, struct diags *d);
