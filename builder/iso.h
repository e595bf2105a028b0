/* Hybrid ISO images, written with libisofs: ISO 9660 with Rock Ridge and
 * Joliet; El Torito entries for BIOS (isolinux) and UEFI (a FAT image with
 * GRUB); an isohybrid MBR and a GPT in the system area, so that the same
 * file boots as a CD and when written to a USB stick, on both firmwares.
 *
 *   /isolinux/{isolinux.bin,ldlinux.c32,menu.c32,libutil.c32,isolinux.cfg,boot.cat}
 *   /boot/grub/grub.cfg   /boot/efi.img (EFI/BOOT/BOOTX64.EFI)
 *   /<recipe>/{vmlinuz,base.img,shared.cpio.zst}   /nodes/<hostname>.cpio.zst
 *   /dlws/medium-id   /dlws/large/<path>   large payload files, read from
 *                     the medium by the live system, never loaded into RAM
 */
#pragma once
#include "build.h"

/* Writes outputs.iso beside its target, to be put in place by pending_commit. */
int iso_write(const struct build *b, struct pending *out, struct diags *d);
