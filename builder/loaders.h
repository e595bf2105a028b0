/* The bootloaders that go onto media, taken from Debian's packages:
 * syslinux (pxelinux, isolinux) and GRUB. Their locations can be moved
 * with DLWS_SYSLINUX_DIR, DLWS_PXELINUX and DLWS_GRUB_EFI_DIR. */
#pragma once
#include "diag.h"

/* Copies pxelinux.0 and the syslinux modules its menu needs into `dir`. */
int loaders_copy_pxelinux(const char *dir, struct diags *d);
/* Builds a GRUB EFI image for network boot that reads grub.cfg from the
 * root of the server it was loaded from. */
int loaders_grub_netboot(const char *out_path, struct diags *d);
