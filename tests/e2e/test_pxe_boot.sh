#!/usr/bin/env bash
# asan-pass: no (boots a bundle that test_pxe builds under ASan too)
# PXE bundles proven by network boots in QEMU, with QEMU's own DHCP/TFTP
# and restrict=on (nothing but the bundle is reachable): BIOS through the
# iPXE ROM loading pxelinux.0, UEFI (OVMF) loading bootx64.efi, and the
# iPXE script. Each node finds its own hostname and identity, never another's;
# an unknown MAC gets the role's default entry.
. "$(dirname "$0")/../lib/e2e.sh"
. "$ROOT/tests/lib/qemu-boot.sh"
base=$ROOT/out/base
[ -f "$base/vmlinuz" ] || { fail setup "no default base in $base (run 'make base')"; finish; }
ovmf_code=/usr/share/OVMF/OVMF_CODE_4M.fd ovmf_vars=/usr/share/OVMF/OVMF_VARS_4M.fd
cd "$WORK"
make_project p
cp "$base/vmlinuz" "$base/initrd.img" p/out/base/
cd p
sed -i 's|^  cmdline: .*|  cmdline: "console=ttyS0 quiet panic=1 dlws.test"|' recipes/*.recipe
"$MK" -q recipes/worker.recipe recipes/etcd.recipe || { fail build "bundle did not build"; finish; }
logs=${DLWS_TEST_LOGS:-$ROOT/out/test-logs}
mkdir -p "$logs"

# pxe_boot NAME FIRMWARE(bios|uefi) BOOTFILE MAC
pxe_boot() {
	local name=$1 fw=$2 bootfile=$3 mac=$4 log=$logs/pxe-$1.log
	local args=(-boot n -netdev "user,id=n0,tftp=$PWD/out/pxe,bootfile=$bootfile,restrict=on"
		-device "virtio-net-pci,netdev=n0,mac=$mac")
	if [ "$fw" = uefi ]; then
		cp "$ovmf_vars" "$WORK/vars-$name.fd"
		args+=(-machine q35 -drive "if=pflash,format=raw,readonly=on,file=$ovmf_code"
			-drive "if=pflash,format=raw,file=$WORK/vars-$name.fd")
	fi
	qemu_boot "pxe-$name" 240 "$log" -- "${args[@]}"
	local rc=$?
	echo "boot $name took ${QEMU_BOOT_SECS}s (end: $QEMU_BOOT_END)"
	console_text "$log" >"$WORK/console-$name"
	if [ $rc -ne 0 ]; then
		fail "$name" "QEMU ended with $rc ($QEMU_BOOT_END); console log kept at $log"
		return 1
	fi
}

sha() { sha256sum <"$1" | cut -d' ' -f1; }
rootfs=/usr/share/oem/dlws/rootfs
# identity HOST: "KEYS-FILE NODE-PATH" of HOST's own identity: a worker's
# kubelet.conf (its client certificate and key embedded); an etcd node's
# server key (it has no kubelet identity).
identity() {
	case $1 in
		*etcd*) echo "keys/etcd-$1-server-key.pem $rootfs/etc/kubernetes/pki/etcd/server.key" ;;
		*) echo "keys/kubelet-$1.conf $rootfs/etc/kubernetes/kubelet.conf" ;;
	esac
}

# expect_node NAME HOST OTHER: the console shows HOST's hostname, a good
# payload with HOST's identity and cloud-config, and nothing of OTHER's.
expect_node() {
	local name=$1 host=$2 other=$3 c=$WORK/console-$1
	local cc id_src id_path
	read -r id_src id_path <<<"$(identity "$host")"
	cc=$(bsdtar -xOf "out/pxe/nodes/$host.cpio.zst" usr/share/oem/dlws/rootfs/var/lib/flatcar-install/user_data | sha256sum | cut -d' ' -f1)
	if grep -qx "DLWS-HOSTNAME: $host" "$c" && grep -q '^DLWS-PAYLOAD: OK ' "$c" &&
		grep -qx "DLWS-FILE: $(sha "$id_src") $id_path" "$c" &&
		grep -qx "DLWS-FILE: $cc /usr/share/oem/dlws/rootfs/var/lib/flatcar-install/user_data" "$c"; then
		pass "$name"
	else
		fail "$name" "$(grep -E '^DLWS-(HOSTNAME|PAYLOAD|VERIFY)' "$c" | tr '\n' ' ') (log: $logs/pxe-$name.log)"
	fi
	if [ -n "$other" ] && grep -qe "$(sha "keys/kubelet-$other.conf")" -e "$(sha "keys/kubelet-$other-key.pem")" "$c"; then
		fail "${name}_not_$other" "$other's kubelet.conf or key reached $host"
	elif [ -n "$other" ]; then
		pass "${name}_not_$other"
	fi
}

pxe_boot bios_pxelinux_worker1 bios pxelinux.0 52:54:00:00:21:01 && expect_node bios_pxelinux_worker1 dlws-worker1 dlws-worker2
pxe_boot bios_pxelinux_worker2 bios pxelinux.0 52:54:00:00:21:02 && expect_node bios_pxelinux_worker2 dlws-worker2 dlws-worker1
# An unknown MAC: the role's default entry, with the role segment (the
# bootstrap kubeconfig that lets it join) and no node's kubelet.conf.
if pxe_boot bios_pxelinux_unknown_mac bios pxelinux.0 52:54:00:99:99:99; then
	c=$WORK/console-bios_pxelinux_unknown_mac
	if grep -q '^DLWS-PAYLOAD: OK ' "$c" && grep -q ' /usr/share/oem/dlws/rootfs/opt/bin/kubectl$' "$c" &&
		grep -qx "DLWS-FILE: $(sha keys/bootstrap-kubelet.conf) $rootfs/etc/kubernetes/bootstrap-kubelet.conf" "$c" &&
		! grep -q " $rootfs/etc/kubernetes/kubelet\.conf$" "$c" &&
		! grep -qe "$(sha keys/kubelet-dlws-worker1.conf)" -e "$(sha keys/kubelet-dlws-worker2.conf)" "$c" &&
		grep -qx 'DLWS-HOSTNAME: (none)' "$c"; then
		pass unknown_mac_gets_role_default
	else
		fail unknown_mac_gets_role_default "$(grep -E '^DLWS-(HOSTNAME|PAYLOAD)|kubelet' "$c" | tr '\n' ' ')"
	fi
fi
if [ -f "$ovmf_code" ]; then
	pxe_boot uefi_grub_worker2 uefi bootx64.efi 52:54:00:00:21:02 && expect_node uefi_grub_worker2 dlws-worker2 dlws-worker1
	pxe_boot uefi_grub_etcd1 uefi bootx64.efi 52:54:00:00:11:01 && expect_node uefi_grub_etcd1 dlws-etcd1 ""
else
	fail uefi_grub "OVMF is not installed ($ovmf_code; make deps installs ovmf)"
fi
pxe_boot bios_ipxe_script_etcd1 bios boot.ipxe 52:54:00:00:11:01 && expect_node bios_ipxe_script_etcd1 dlws-etcd1 ""
finish
