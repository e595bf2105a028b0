#!/usr/bin/env bash
# asan-pass: no (boots an ISO that test_iso builds under ASan too)
# The same hybrid ISO booted four ways with no network: BIOS as a CD, BIOS
# from a USB stick it was written to, UEFI (OVMF) as a CD, UEFI from the
# stick. The live system finds the large file on the medium by its id,
# checks the whole manifest and reports on the serial console.
. "$(dirname "$0")/../lib/e2e.sh"
. "$ROOT/tests/lib/qemu-boot.sh"
base=$ROOT/out/base
[ -f "$base/vmlinuz" ] || { fail setup "no default base in $base (run 'make base')"; finish; }
ovmf_code=/usr/share/OVMF/OVMF_CODE_4M.fd ovmf_vars=/usr/share/OVMF/OVMF_VARS_4M.fd
[ -f "$ovmf_code" ] || { fail setup "OVMF is not installed ($ovmf_code; make deps installs ovmf)"; finish; }
cd "$WORK"
make_project p
cp "$base/vmlinuz" "$base/initrd.img" p/out/base/
cd p
sed -i 's|^  cmdline: .*|  cmdline: "console=ttyS0 quiet panic=1 dlws.test"|' recipes/*.recipe
# Large enough to stay on the medium (over 1 MiB), never loaded into RAM.
head -c 5000000 /dev/urandom >vendor/bin/kubectl && chmod 0755 vendor/bin/kubectl
(cd vendor/bin && sha256sum kubectl etcd etcdctl >../SHA256SUMS)
"$MK" -q recipes/master.recipe || { fail build "master recipe did not build"; finish; }
iso=$PWD/out/master.iso
logs=${DLWS_TEST_LOGS:-$ROOT/out/test-logs}
mkdir -p "$logs"
kubectl_sum=$(sha256sum <vendor/bin/kubectl | cut -d' ' -f1)
key_sum=$(sha256sum <keys/kubelet-dlws-master.conf | cut -d' ' -f1)

# iso_boot NAME FIRMWARE(bios|uefi) MEDIUM(cd|usb)
iso_boot() {
	local name=$1 fw=$2 medium=$3 log=$logs/iso-$1.log
	local args=()
	if [ "$medium" = cd ]; then
		args+=(-drive "file=$iso,format=raw,media=cdrom,readonly=on" -boot d)
	else
		# The stick is the ISO file itself, as dd would have written it.
		args+=(-drive "if=none,id=stick,file=$iso,format=raw,snapshot=on" -device qemu-xhci -device "usb-storage,drive=stick,bootindex=0")
	fi
	if [ "$fw" = uefi ]; then
		cp "$ovmf_vars" "$WORK/vars-$name.fd"
		args+=(-machine q35 -drive "if=pflash,format=raw,readonly=on,file=$ovmf_code" -drive "if=pflash,format=raw,file=$WORK/vars-$name.fd")
	fi
	qemu_boot "iso-$name" 240 "$log" -- "${args[@]}"
	local rc=$?
	echo "boot $name took ${QEMU_BOOT_SECS}s (end: $QEMU_BOOT_END)"
	local c
	c=$(console_text "$log")
	if [ $rc -ne 0 ]; then
		fail "$name" "QEMU ended with $rc ($QEMU_BOOT_END); console log kept at $log"
	elif grep -q '^DLWS-PAYLOAD: OK ' <<<"$c" && grep -q '^DLWS-MEDIUM: /dev/' <<<"$c" &&
		grep -qx "DLWS-FILE: $kubectl_sum /usr/share/oem/dlws/large/rootfs/opt/bin/kubectl" <<<"$c" &&
		grep -qx "DLWS-FILE: $key_sum /usr/share/oem/dlws/rootfs/etc/kubernetes/kubelet.conf" <<<"$c" &&
		grep -qx 'DLWS-HOSTNAME: dlws-master' <<<"$c" && grep -q 'linked 1 large files from the boot medium' <<<"$c"; then
		pass "$name"
	else
		fail "$name" "$(grep -E '^DLWS-(PAYLOAD|MEDIUM|VERIFY|HOSTNAME)' <<<"$c" | tr '\n' ' ') (log: $log)"
	fi
}

iso_boot bios_cd bios cd
iso_boot bios_usb_stick bios usb
iso_boot uefi_cd uefi cd
iso_boot uefi_usb_stick uefi usb
finish
