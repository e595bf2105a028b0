/* The bootloaders that go onto media, taken from Debian's packages:
 * syslinux (pxelinux, isolinux), GRUB and iPXE. Their locations can be
 * moved with DLWS_SYSLINUX_DIR, DLWS_PXELINUX, DLWS_GRUB_EFI_DIR and
 * DLWS_IPXE_DIR. */
#pragma once
#include "diag.h"

/* Copies pxelinux.0 and the syslinux modules its menu needs into `dir`. */
int loaders_copy_pxelinux(const char *dir, struct diags *d);
/* iPXE as the first stage a boot server hands over TFTP: undionly.kpxe
 * (BIOS PXE ROMs) and snponly.efi (UEFI, over the firmware's own network
 * driver); iPXE then loads the rest over HTTP. Copied into `dir`. */
#define IPXE_BIOS "undionly.kpxe"
#define IPXE_EFI "snponly.efi"
int loaders_copy_ipxe(const char *dir, struct diags *d);
struct cache;
/* Builds a GRUB EFI image for network boot that reads grub.cfg from the
 * root of the server it was loaded from. With `cache` (may be NULL), an
 * image made before from the same grub files is taken from it. */
int loaders_grub_netboot(const char *out_path, struct cache *cache, struct diags *d);

/* isolinux.bin, the syslinux modules its menu needs, and the isohybrid MBR
 * template (isohdpfx.bin), for BIOS boots from CD and from a disk. */
struct isolinux_files {
	char *isolinux_bin, *mbr;
	char *modules[3];       /* ldlinux.c32 menu.c32 libutil.c32 */
};
int loaders_isolinux(struct isolinux_files *ret, struct diags *d);
void loaders_isolinux_release(struct isolinux_files *f);
/* Writes a FAT image holding EFI/BOOT/BOOTX64.EFI: GRUB finding the file
 * system labelled `label` and reading its /boot/grub/grub.cfg. `work` is a
 * scratch directory. Deterministic for the same `epoch`; taken from
 * `cache` (may be NULL) as loaders_grub_netboot. */
int loaders_efi_image(const char *out_path, const char *label, const char *work, long long epoch, struct cache *cache,
		      struct diags *d);
