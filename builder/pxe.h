/* PXE bundles: a directory usable as-is as a TFTP (and HTTP) root, serving
 * BIOS clients (pxelinux), UEFI clients (GRUB) and iPXE, with one entry per
 * role and one per node with a MAC; plus "<path>.tar" of the same tree.
 *
 *   pxelinux.0 ldlinux.c32 menu.c32 libutil.c32 pxelinux.cfg/{default,01-<mac>}
 *   bootx64.efi grub.cfg grub/<mac>.cfg      boot.ipxe   dnsmasq.conf   SHA256SUMS
 *   <recipe>/{vmlinuz,base.img,shared.cpio.gz}   nodes/<hostname>.cpio.gz
 */
#pragma once
#include <stddef.h>
#include "build.h"

/* Recipes sharing a bundle must not claim the same name, node or MAC, and
 * none may ship a CA key (include_ca_key): the tree is served to anyone. */
int pxe_check(const struct build *const *builds, size_t n, struct diags *d);
/* Writes one bundle serving every build in `builds` (they share
 * outputs.pxe.path) and its tarball beside their targets, to be put in
 * place by pending_commit; the first build's role entry is the default. */
int pxe_write_bundle(const struct build *const *builds, size_t n, const char *path, struct pending *out, struct diags *d);
