#!/usr/bin/env bash
# asan-pass: no (the agent is a static C program built once; the builder's
# part is exercised under ASan by the other tests)
# Unattended offline install, proven in QEMU with no network: boot the ISO
# (a PXE install fetches its image over HTTP: test_boot_server.sh)
# with a blank disk; the VM installs and powers off by itself; the target
# disk is then read with independent tools (sgdisk, debugfs).
. "$(dirname "$0")/../lib/e2e.sh"
. "$ROOT/tests/lib/qemu-boot.sh"
base=$ROOT/out/base
agent=$ROOT/out/agent/dlws-install
[ -f "$base/vmlinuz" ] || { fail setup "no default base in $base (run 'make base')"; finish; }
[ -x "$agent" ] || { fail setup "no install agent at $agent (run 'make')"; finish; }
cd "$WORK"
make_project p
cp "$base/vmlinuz" "$base/initrd.img" p/out/base/
cd p
export DLWS_AGENT=$agent
bash "$ROOT/tests/lib/mkosimage.sh" out/os.img >/dev/null 2>&1 || { fail setup "mkosimage failed"; finish; }
bzip2 -k out/os.img
# A large stand-in kubectl (kept on the ISO medium) with a marker to find it.
{ printf 'DLWS-TEST-KUBECTL-MARKER'; head -c 3000000 /dev/urandom; } >vendor/bin/kubectl
chmod 0755 vendor/bin/kubectl
(cd vendor/bin && sha256sum kubectl etcd etcdctl >../SHA256SUMS)
# A container image as docker save writes it, pinned.
mkdir -p images && image_standin images/hyperkube.tar registry.k8s.io/hyperkube:v1.34.2
hk_sum=$(sha256sum <images/hyperkube.tar | cut -d' ' -f1)
for r in master worker; do
	sed -i 's|^  cmdline: .*|  cmdline: "console=ttyS0 quiet panic=1 dlws.test"\n  image: ../out/os.img.bz2|' recipes/$r.recipe
	# after: reboot, so the tests see that a failed install powers off instead.
	printf 'install: { device: auto, after: reboot }\nimages:\n  - { src: ../images/hyperkube.tar, sha256: %s }\n' "$hk_sum" >>recipes/$r.recipe
done
"$MK" -q recipes/master.recipe recipes/worker.recipe || { fail build "recipes with install: did not build"; finish; }
# On Flatcar the node's Ignition config runs the agent (dlws-install.service),
# not the cloud-config: coreos-cloudinit stops waiting for a unit after 10
# minutes, an install must never be cut off.
cc=$(bsdtar -xOf out/master-initrd/node-dlws-master.cpio.zst usr/share/oem/dlws/rootfs/var/lib/flatcar-install/user_data)
unit=$(bsdtar -xOf out/master-initrd/node-dlws-master.cpio.zst usr/share/oem/config.ign |
	jq -r '.systemd.units[] | select(.name == "dlws-install.service") | select(.enabled) | .contents')
if grep -qx 'ExecStart=/usr/share/oem/dlws/install' <<<"$unit" && grep -qx 'TimeoutStartSec=infinity' <<<"$unit" &&
	grep -qx 'ExecStartPost=/usr/bin/systemctl --no-block reboot' <<<"$unit" && ! grep -q dlws-install <<<"$cc"; then
	pass live_ignition_runs_agent
else
	fail live_ignition_runs_agent "no enabled dlws-install.service without a start timeout in config.ign (or it is in the cloud-config)"
fi
logs=${DLWS_TEST_LOGS:-$ROOT/out/test-logs}
mkdir -p "$logs"
sha() { sha256sum | cut -d' ' -f1; }

# root_fs DISK OUT [NAME]: the ROOT (or NAME) partition of DISK, found by its
# GPT name, as a file.
root_fs() {
	local n start end
	n=$(sgdisk -p "$1" | awk -v want="${3:-ROOT}" '$7 == want {print $1}')
	[ -n "$n" ] || return 1
	start=$(sgdisk -i "$n" "$1" | awk '/First sector/ {print $3}')
	end=$(sgdisk -i "$n" "$1" | awk '/Last sector/ {print $3}')
	dd if="$1" of="$2" bs=512 skip="$start" count=$((end - start + 1)) status=none
}
# in_root FS PATH: sha256 of a file in an ext4 image, read by debugfs.
in_root() { debugfs -R "cat /$2" "$1" 2>/dev/null | sha; }
mode_in_root() { debugfs -R "stat /$2" "$1" 2>/dev/null | grep -o 'Mode: *[0-7]*' | awk '{print $2}'; }

# check_installed NAME DISK HOST SEGMENT: the payload of HOST is on DISK.
check_installed() {
	local name=$1 disk=$2 host=$3 seg=$4 fs=$WORK/root-$1.img
	if ! root_fs "$disk" "$fs"; then
		fail "$name" "no ROOT partition on the target disk"
		return
	fi
	local want_cc want_key want_kubectl why=""
	want_cc=$(bsdtar -xOf "$seg" usr/share/oem/dlws/rootfs/var/lib/flatcar-install/user_data | sha)
	want_key=$(sha <"keys/kubelet-$host.conf")
	want_kubectl=$(sha <vendor/bin/kubectl)
	[ "$(in_root "$fs" var/lib/flatcar-install/user_data)" = "$want_cc" ] || why="$why user_data;"
	[ "$(in_root "$fs" etc/kubernetes/kubelet.conf)" = "$want_key" ] || why="$why kubelet.conf;"
	[ "$(mode_in_root "$fs" etc/kubernetes/kubelet.conf)" = 0600 ] || why="$why kubelet.conf mode $(mode_in_root "$fs" etc/kubernetes/kubelet.conf);"
	[ "$(in_root "$fs" opt/bin/kubectl)" = "$want_kubectl" ] || why="$why kubectl;"
	[ "$(mode_in_root "$fs" opt/bin/kubectl)" = 0755 ] || why="$why kubectl mode;"
	[ "$(in_root "$fs" var/lib/dlws/images/hyperkube.tar)" = "$hk_sum" ] || why="$why image;"
	# Read whole, then grep: never a pipe that grep -q can cut short.
	local log ign
	log=$(debugfs -R "cat /var/log/dlws-install.log" "$fs" 2>/dev/null)
	# The Ignition config on OEM: Flatcar's first boot enables the units it
	# carries (dlws-load-images.service imports the images into containerd).
	if root_fs "$disk" "$WORK/oem-$name.img" OEM; then
		[ "$(in_root "$WORK/oem-$name.img" config.ign)" = "$(bsdtar -xOf "$seg" usr/share/oem/config.ign | sha)" ] || why="$why config.ign;"
		ign=$(debugfs -R "cat /config.ign" "$WORK/oem-$name.img" 2>/dev/null)
		jq -r '.systemd.units[] | select(.name == "dlws-load-images.service") | .contents' <<<"$ign" |
			grep -q 'ctr --namespace k8s.io images import' || why="$why images unit;"
	else
		why="$why no OEM partition;"
	fi
	grep -q 'DLWS-INSTALL\|dlws-install' <<<"$log" || why="$why log;"
	[ "$(in_root "$fs" etc/os-release)" = "$(echo 'stand-in OS image for dlws-mkimage tests' | sha)" ] || why="$why os image;"
	if [ -z "$why" ]; then pass "$name"; else fail "$name" "wrong on the target:$why"; fi
}

# boot_install NAME DISK QEMU-ARGS...: boots, expects a power-off by itself.
boot_install() {
	local name=$1 disk=$2 log=$logs/install-$1.log
	shift 2
	qemu_boot "install-$name" 300 "$log" -- -drive "file=$disk,format=raw,if=virtio" "$@"
	local rc=$?
	echo "boot $name took ${QEMU_BOOT_SECS}s (end: $QEMU_BOOT_END)"
	console_text "$log" >"$WORK/console-$name"
	[ $rc -eq 0 ] || { fail "$name" "QEMU ended with $rc ($QEMU_BOOT_END); console log kept at $log"; return 1; }
}

iso=$PWD/out/master.iso
truncate -s 128M "$WORK/blank.img"
if boot_install iso_bios "$WORK/blank.img" -drive "file=$iso,format=raw,media=cdrom,readonly=on" -boot d; then
	c=$WORK/console-iso_bios
	if grep -qx 'DLWS-INSTALL: rc=0' "$c" && grep -q '^DLWS-DONE' "$c" && [ "$QEMU_BOOT_END" = reboot ]; then
		pass iso_install_then_after_step
	else
		fail iso_install_then_after_step "$(grep -E 'DLWS-(INSTALL|PAYLOAD)' "$c" | tr '\n' ' ') end: $QEMU_BOOT_END"
	fi
	check_installed iso_install_payload_on_disk "$WORK/blank.img" dlws-master out/master-initrd/node-dlws-master.cpio.zst
fi

# A flipped byte in a payload file on the medium: nothing is installed.
cp "$iso" "$WORK/bad.iso"
off=$(grep -obUaF 'DLWS-TEST-KUBECTL-MARKER' "$WORK/bad.iso" | head -1 | cut -d: -f1)
flip_byte "$WORK/bad.iso" $((off + 100))
truncate -s 128M "$WORK/blank2.img"
if boot_install flipped_byte "$WORK/blank2.img" -drive "file=$WORK/bad.iso,format=raw,media=cdrom,readonly=on" -boot d; then
	c=$WORK/console-flipped_byte
	if grep -q '^DLWS-VERIFY: FAIL /usr/share/oem/dlws/large/rootfs/opt/bin/kubectl' "$c" && ! grep -qx 'DLWS-INSTALL: rc=0' "$c" &&
		[ "$QEMU_BOOT_END" = poweroff ] &&
		[ "$(sha <"$WORK/blank2.img")" = "$(head -c 128M /dev/zero | sha)" ]; then
		pass flipped_byte_refused_target_untouched
	else
		fail flipped_byte_refused_target_untouched "$(grep -E 'DLWS-(VERIFY|INSTALL)' "$c" | tr '\n' ' ')"
	fi
fi

# A target that already holds partitions, without wipe: refused, untouched.
cp out/os.img "$WORK/used.img" && truncate -s 128M "$WORK/used.img"
before=$(sha <"$WORK/used.img")
if boot_install used_disk "$WORK/used.img" -drive "file=$iso,format=raw,media=cdrom,readonly=on" -boot d; then
	c=$WORK/console-used_disk
	if grep -q 'DLWS-INSTALL-ERROR: .*already has partitions' "$c" && ! grep -qx 'DLWS-INSTALL: rc=0' "$c" && [ "$(sha <"$WORK/used.img")" = "$before" ] &&
		[ "$QEMU_BOOT_END" = poweroff ] && grep -q 'install failed: powering off instead of rebooting' "$c"; then
		pass partitioned_target_refused_untouched
	else
		fail partitioned_target_refused_untouched "$(grep -E 'DLWS-INSTALL' "$c" | tr '\n' ' ')"
	fi
fi

# A worker installed from a PXE bundle fetches its OS image over HTTP from
# the boot server: tests/e2e/test_boot_server.sh.
finish
