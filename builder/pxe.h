/* PXE bundles: a directory usable as-is as a TFTP (and HTTP) root, serving
 * BIOS clients (pxelinux), UEFI clients (GRUB) and iPXE, with one entry per
 * role and one per node with a MAC; plus "<path>.tar" of the same tree.
 *
 *   pxelinux.0 ldlinux.c32 menu.c32 libutil.c32 pxelinux.cfg/{default,01-<mac>}
 *   bootx64.efi grub.cfg grub/<mac>.cfg      boot.ipxe   dnsmasq.conf   SHA256SUMS
 *   <recipe>/{vmlinuz,base.img,shared.cpio.zst}   nodes/<hostname>.cpio.zst
 *   dlws-build.json (what the bundle serves: buildinfo.h)
 *
 * With boot_server: in the cluster values, a boot server's whole set-up:
 * dnsmasq.conf (DHCP proxy or full, TFTP for iPXE only: undionly.kpxe,
 * snponly.efi), nginx.conf (HTTP for boot.ipxe and everything it loads) and
 * <recipe>/os/<image>, the OS image installs fetch over HTTP. */
#pragma once
#include <stddef.h>
#include "build.h"

/* Where a recipe's OS image lies in the bundle: <recipe>/os/<image>. */
#define PXE_IMAGE_DIR "os"

/* Recipes sharing a bundle must not claim the same name, node or MAC, must
 * share one cluster, none may ship a CA key (include_ca_key: the tree is
 * served to anyone), installs need the boot server's address, and together
 * they must keep serving every recipe the bundle already serves. */
int pxe_check(const struct build *const *builds, size_t n, struct diags *d);
/* Writes one bundle serving every build in `builds` (they share
 * outputs.pxe.path), and its tarball when one of them asks (outputs.pxe.tar;
 * else a tarball of an earlier build is removed), beside their targets, to
 * be put in place by pending_commit; the first build's role entry is the
 * default. A tree or tarball already up to date is left as it is.
 * Recipes the bundle served before and `builds` do not make are kept from
 * its last build (their names pushed to `kept`). */
int pxe_write_bundle(const struct build *const *builds, size_t n, const char *path, struct strv *kept, struct pending *out,
		     struct diags *d);
