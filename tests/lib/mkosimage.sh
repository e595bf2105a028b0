#!/usr/bin/env bash
# mkosimage.sh OUT.img: a small disk image with Flatcar's partition layout
# (GPT: 1 EFI-SYSTEM vfat, 6 OEM ext4, 9 ROOT ext4; names and file system
# labels as Flatcar's), the stand-in for flatcar_production_image.bin in
# install tests. Built without root: file systems are made in files and
# copied into place.
set -euo pipefail
out=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mib=$((1024 * 1024))
truncate -s 48M "$out"
sgdisk -o \
	-n 1:2048:+8M -t 1:ef00 -c 1:EFI-SYSTEM \
	-n 6:0:+8M -t 6:8300 -c 6:OEM \
	-n 9:0:0 -t 9:8300 -c 9:ROOT "$out" >/dev/null 2>&1
part() { sgdisk -i "$1" "$out" | awk -v k="$2" '$0 ~ k {print $3}'; }
place() { # place NUM FILE: copy a file system image into partition NUM
	local start
	start=$(part "$1" 'First sector')
	dd if="$2" of="$out" bs=512 seek="$start" conv=notrunc status=none
}
sectors() { echo $(( $(part "$1" 'Last sector') - $(part "$1" 'First sector') + 1 )); }
mkfs.fat -C -n EFI-SYSTEM "$work/efi" $(( $(sectors 1) / 2 )) >/dev/null
mkdir -p "$work/oem" "$work/root/etc"
echo "stand-in OS image for dlws-mkimage tests" >"$work/root/etc/os-release"
mkfs.ext4 -q -F -L OEM -d "$work/oem" "$work/oem.img" $(( $(sectors 6) / 2 ))k
mkfs.ext4 -q -F -L ROOT -d "$work/root" "$work/root.img" $(( $(sectors 9) / 2 ))k
place 1 "$work/efi"
place 6 "$work/oem.img"
place 9 "$work/root.img"
