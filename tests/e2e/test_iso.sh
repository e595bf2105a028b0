#!/usr/bin/env bash
# Hybrid ISOs read back with independent tools: the ISO 9660 volume
# (sector 16), Rock Ridge and Joliet, both El Torito entries, the isohybrid
# MBR and GPT, the payload files and the large files kept on the medium;
# reproducibility; and the bad inputs that must leave no ISO behind.
. "$(dirname "$0")/../lib/e2e.sh"
cd "$WORK"
make_project p
cd p
# A stand-in binary big enough to be kept on the medium (over 1 MiB).
head -c 3000000 /dev/urandom >vendor/bin/kubectl && chmod 0755 vendor/bin/kubectl
# A copy of it (the same bytes in another file) on the medium: stored once.
cp vendor/bin/kubectl vendor/kubectl-copy
sed -i "\|dest: /opt/bin/kubectl,|a\\  - { src: ../vendor/kubectl-copy, dest: /opt/bin/kubectl-alike, mode: \"0755\", sha256: $(sha256sum <vendor/bin/kubectl | cut -d' ' -f1) }" recipes/master.recipe
(cd vendor/bin && sha256sum kubectl etcd etcdctl >../SHA256SUMS)
"$MK" -q recipes/master.recipe || { fail build_iso "master recipe did not build"; finish; }
iso=out/master.iso
check iso_volume_descriptor bash -c "[ \"\$(dd if=$iso bs=2048 skip=16 count=1 status=none | head -c 6 | tail -c 5)\" = CD001 ]"
info=$(isoinfo -d -i $iso 2>/dev/null)
if grep -q 'Volume id: DLWS_MASTER' <<<"$info" && grep -q 'Rock Ridge signatures' <<<"$info" && grep -q 'Joliet with UCS level' <<<"$info"; then
	pass iso_rock_ridge_joliet_label
else
	fail iso_rock_ridge_joliet_label "$info"
fi
et=$(xorriso -indev $iso -report_el_torito plain 2>/dev/null)
if grep -qE 'El Torito boot img : +1 +BIOS +y +none' <<<"$et" && grep -qE 'El Torito boot img : +2 +UEFI +y +none' <<<"$et" &&
	grep -q 'El Torito img path :   1  /isolinux/isolinux.bin' <<<"$et" && grep -q 'El Torito img path :   2  /boot/efi.img' <<<"$et"; then
	pass el_torito_bios_and_uefi
else
	fail el_torito_bios_and_uefi "$et"
fi
sa=$(xorriso -indev $iso -report_system_area plain 2>/dev/null)
if grep -q 'System area summary: MBR isohybrid .*GPT' <<<"$sa" && grep -qE 'GPT partition path : +2 +/boot/efi.img' <<<"$sa"; then pass isohybrid_mbr_and_gpt; else fail isohybrid_mbr_and_gpt "$sa"; fi
fd=$(fdisk -l $iso 2>/dev/null)
if grep -qE "^${iso}1 +\\* +0 " <<<"$fd" && grep -qE "^${iso}2 .* ef EFI" <<<"$fd"; then pass fdisk_hybrid_table; else fail fdisk_hybrid_table "$fd"; fi
# The ESP holds GRUB where UEFI looks for it on removable media.
d=$(mktemp -d "$WORK/esp.XXXX")
bsdtar -xf $iso -C "$d" boot/efi.img
if mdir -i "$d/boot/efi.img" ::/EFI/BOOT 2>/dev/null | grep -q 'BOOTX64  EFI'; then pass esp_has_bootx64; else fail esp_has_bootx64 "no EFI/BOOT/BOOTX64.EFI"; fi

lba=$(xorriso -indev $iso -find /dlws/large/rootfs/opt/bin -type f -exec report_lba -- 2>/dev/null | grep -E '/kubectl(-alike)?'"'"'?$')
if [ "$(wc -l <<<"$lba")" = 2 ] && [ "$(awk '{print $6}' <<<"$lba" | sort -u | wc -l)" = 1 ]; then
	pass alike_files_stored_once
else
	fail alike_files_stored_once "$lba"
fi

list=$(bsdtar -tf $iso | sed "s,^\./,,")
check payload_files_on_iso bash -c "for f in master/vmlinuz master/base.img master/shared.cpio.zst nodes/dlws-master.cpio.zst dlws/medium-id dlws/large/rootfs/opt/bin/kubectl isolinux/isolinux.cfg boot/grub/grub.cfg; do grep -qx \"\$f\" <<<'$list' || exit 1; done"
big=$(bsdtar -tvf $iso dlws/large/rootfs/opt/bin/kubectl)
# Read by name, as the live system's mount reads it (bsdtar lists one of
# two names of one extent as a link to the other, with no data of its own).
xorriso -osirrox on -indev $iso -extract /dlws/large/rootfs/opt/bin/kubectl "$WORK/kubectl.out" >/dev/null 2>&1
if [[ $big == -rwxr-xr-x* ]] && [ "$(sha256sum <"$WORK/kubectl.out" | cut -d' ' -f1)" = "$(sha256sum <vendor/bin/kubectl | cut -d' ' -f1)" ]; then
	pass large_file_on_medium_with_mode
else
	fail large_file_on_medium_with_mode "$big"
fi
bsdtar -xf $iso -C "$d" master/shared.cpio.zst dlws/medium-id
if ! bsdtar -tf "$d/master/shared.cpio.zst" | grep -q 'opt/bin/kubectl' &&
	bsdtar -xOf "$d/master/shared.cpio.zst" usr/share/oem/dlws/manifest.d/shared | grep -q ' 0755 /usr/share/oem/dlws/large/rootfs/opt/bin/kubectl$' &&
	[ "$(bsdtar -xOf "$d/master/shared.cpio.zst" usr/share/oem/dlws/medium-id)" = "$(cat "$d/dlws/medium-id")" ]; then
	pass large_file_not_in_initrd
else
	fail large_file_not_in_initrd "kubectl is in the initrd, or the manifest/medium-id disagree"
fi
cfg=$(bsdtar -xOf $iso isolinux/isolinux.cfg)
grub=$(bsdtar -xOf $iso boot/grub/grub.cfg)
if grep -q '^DEFAULT dlws-master$' <<<"$cfg" && grep -qE '^TIMEOUT [1-9][0-9]?$' <<<"$cfg" && grep -q '^LABEL rescue$' <<<"$cfg" &&
	grep -A5 '^LABEL rescue$' <<<"$cfg" | grep -q 'APPEND .*dlws.noinstall' && grep -q "menuentry 'rescue: dlws-master without installing'" <<<"$grub" &&
	grep -q 'dlws.medium=DLWS_MASTER' <<<"$cfg"; then
	pass menus_default_and_rescue
else
	fail menus_default_and_rescue "$cfg"
fi
sum1=$(sha256sum <$iso)
sleep 2 # FAT and ISO times have 2 s and 1 s steps: a clock leak would show
"$MK" -q recipes/master.recipe
if [ "$(sha256sum <$iso)" = "$sum1" ]; then pass iso_reproducible; else fail iso_reproducible "a second build differs"; fi

# Bad inputs: a clear message, exit 1, no ISO and no temp left, the old ISO kept.
sed -i 's|iso: { path: ../out/master.iso, max_size: 4G }|iso: { path: ../out/master.iso, max_size: 2M }|' recipes/master.recipe
err=$("$MK" recipes/master.recipe 2>&1 >/dev/null)
if [ $? = 1 ] && grep -qE '^recipes/master.recipe:[0-9]+:8: error: the ISO takes [0-9]+ bytes, more than max_size 2097152$' <<<"$err" &&
	[ "$(sha256sum <$iso)" = "$sum1" ] && [ -z "$(ls out | grep -E 'pending|parts|tmp')" ]; then
	pass too_big_for_max_size
else
	fail too_big_for_max_size "$err / $(ls out)"
fi
sed -i 's|max_size: 2M }|max_size: 4G, label: dlws-master }|' recipes/master.recipe
err=$("$MK" recipes/master.recipe 2>&1 >/dev/null)
if [ $? = 1 ] && grep -qE "^recipes/master.recipe:[0-9]+:[0-9]+: error: invalid volume label 'dlws-master' \(1 to 32 of A-Z, 0-9 and '_'\)$" <<<"$err"; then
	pass invalid_label
else
	fail invalid_label "$err"
fi
finish
