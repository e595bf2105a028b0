#!/usr/bin/env bash
# Tests of dlws-install (agent/) against fake live systems: a payload tree
# under mktemp, read with --root, and a disk image file as the target, whose
# ROOT/OEM files go to --target-root/--target-oem instead of a mount. The
# real install on a real disk is the QEMU e2e test's job.
#
#   tests/agent/test-agent.sh       builds out/agent/dlws-install first
#   DLWS_INSTALL=path tests/agent/test-agent.sh   tests that binary instead
#   DLWS_INSTALL_DYNAMIC=1 ...      it is a dynamic (ASan) build: the tests
#                                   that need the static binary say SKIP
#   AGENT_TEST_KEEP=1 ...           keep the temp dir (outputs in NAME.out)
#
# Prints PASS/FAIL/SKIP lines; exits 1 if anything failed.
set -uo pipefail

here=$(cd "$(dirname "$0")/../.." && pwd)
cd "$here" || exit 1

if [ -z "${DLWS_INSTALL:-}" ]; then
	make -s -f agent/agent.mk out/agent/dlws-install >/dev/null 2>&1 ||
		make -f agent/agent.mk out/agent/dlws-install || { echo "FAIL: build"; exit 1; }
	DLWS_INSTALL=$here/out/agent/dlws-install
fi

for tool in sgdisk gzip bzip2 xz zstd sha256sum stat truncate; do
	if ! command -v "$tool" >/dev/null; then
		echo "FAIL: $tool is missing (scripts/install-deps.sh installs it)"
		exit 1
	fi
done

T=$(mktemp -d "${TMPDIR:-/tmp}/test-agent.XXXXXX")
chroot_proc= chroot_mounts= loopdev=
cleanup() {
	local m
	[ -n "$chroot_proc" ] && umount "$chroot_proc" 2>/dev/null
	for m in $chroot_mounts; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null; done
	umount "$T/loopcheck" 2>/dev/null
	[ -n "$loopdev" ] && losetup -d "$loopdev" 2>/dev/null
	if [ "${AGENT_TEST_KEEP:-0}" = 1 ]; then
		echo "kept: $T"
	else
		rm -rf "$T"
	fi
}
trap cleanup EXIT

npass=0 nfail=0
pass() { echo "PASS: $*"; npass=$((npass + 1)); }
fail() { echo "FAIL: $*"; nfail=$((nfail + 1)); }
skip() { echo "SKIP: $*"; }
sha() { sha256sum "$1" | cut -d' ' -f1; }
sgdisk_q() { sgdisk "$@" >/dev/null 2>&1 || { echo "FAIL: sgdisk $*"; exit 1; }; }
mode() { stat -c %a "$1"; }

OEM=/usr/share/oem
DLWS=$OEM/dlws
IMAGE_SIZE=$((16 * 1024 * 1024))

# --- the OS image: Flatcar's partition names and numbers ---------------------
img=$T/disk.img
truncate -s "$IMAGE_SIZE" "$img"
sgdisk_q -o \
	-n 1:2048:+2M -t 1:ef00 -c 1:EFI-SYSTEM \
	-n 6:0:+2M -t 6:8300 -c 6:OEM \
	-n 9:0:0 -t 9:8300 -c 9:ROOT "$img" >/dev/null
# Real file systems in OEM and ROOT (the loop-device test mounts them), and
# random content in ROOT, so that a stream that drops or reorders data shows.
part_fs() {   # partition-number mkfs-command...
	local n=$1 start size
	shift
	start=$(sgdisk -i "$n" "$img" | sed -n 's/^First sector: \([0-9]*\).*/\1/p')
	size=$(sgdisk -i "$n" "$img" | sed -n 's/^Partition size: \([0-9]*\) sectors.*/\1/p')
	rm -f "$T/fs"
	truncate -s $((size * 512)) "$T/fs"
	"$@" "$T/fs" >/dev/null 2>&1 || { echo "FAIL: $* (for partition $n)"; exit 1; }
	dd if="$T/fs" of="$img" bs=512 seek="$start" conv=notrunc status=none
	rm -f "$T/fs"
}
head -c $((3 * 1024 * 1024)) /dev/urandom >"$T/random"
part_fs 9 mkfs.ext4 -q -F -L ROOT -d "$(mkdir -p "$T/rootfs/var/lib" && cp "$T/random" "$T/rootfs/var/lib/random" && echo "$T/rootfs")"
# OEM is vfat when the running kernel can mount it (the loop-device test).
if command -v mkfs.vfat >/dev/null && grep -qw vfat /proc/filesystems; then
	part_fs 6 mkfs.vfat -n OEM
else
	part_fs 6 mkfs.ext4 -q -F -L OEM
fi
img_sha=$(sha "$img")
gzip -n -c "$img" >"$img.gz"
bzip2 -c "$img" >"$img.bz2"
xz -T1 -c "$img" >"$img.xz"
zstd -q -c "$img" >"$img.zst"

# The numbers sgdisk gives each name: what the agent must find.
want_parts=$(sgdisk -p "$img" | awk '$1 ~ /^[0-9]+$/ { n[$NF] = $1 }
	END { printf "EFI-SYSTEM=%s OEM=%s ROOT=%s", n["EFI-SYSTEM"], n["OEM"], n["ROOT"] }')

# --- a fake live system -----------------------------------------------------
# make_root DIR IMAGE_FILE [large]: the payload with IMAGE_FILE as the OS
# image (under large/os when "large"), a manifest of every payload file,
# and install.conf pointing at DIR/target.img.
make_root() {
	local r=$1 image=$2 where=${3:-small} ext=
	case "$image" in *.gz|*.bz2|*.xz|*.zst) ext=.${image##*.} ;; esac
	mkdir -p "$r$DLWS/manifest.d" "$r$DLWS/rootfs/opt/bin" "$r$DLWS/rootfs/etc/kubernetes/ssl" "$r$DLWS/rootfs/var/lib/flatcar-install" \
		"$r$DLWS/large/rootfs/opt/bin" "$r$DLWS/images" "$r$DLWS/large/images" "$r/dev"
	# The cloud-config travels as a rootfs file, where flatcar-install -c puts it.
	printf '#cloud-config\nhostname: node1\n' >"$r$DLWS/rootfs/var/lib/flatcar-install/user_data"
	chmod 0600 "$r$DLWS/rootfs/var/lib/flatcar-install/user_data"
	printf '{"ignition":{"version":"3.0.0"}}\n' >"$r$OEM/config.ign"
	printf '#!/bin/sh\necho kubelet\n' >"$r$DLWS/rootfs/opt/bin/kubelet"
	chmod 0755 "$r$DLWS/rootfs/opt/bin/kubelet"
	printf -- '-----BEGIN PRIVATE KEY-----\nfake\n' >"$r$DLWS/rootfs/etc/kubernetes/ssl/worker-key.pem"
	chmod 0600 "$r$DLWS/rootfs/etc/kubernetes/ssl/worker-key.pem"
	printf -- '-----BEGIN CERTIFICATE-----\nfake\n' >"$r$DLWS/rootfs/etc/kubernetes/ssl/ca.pem"
	chmod 0644 "$r$DLWS/rootfs/etc/kubernetes/ssl/ca.pem"
	printf '#!/bin/sh\necho kubectl\n' >"$r$DLWS/large/rootfs/opt/bin/kubectl"
	chmod 0755 "$r$DLWS/large/rootfs/opt/bin/kubectl"
	head -c 3000 /dev/urandom >"$r$DLWS/images/hyperkube.tar"
	head -c 5000 /dev/urandom >"$r$DLWS/large/images/etcd.tar"
	chmod 0644 "$r$DLWS/images/hyperkube.tar" "$r$DLWS/large/images/etcd.tar"
	if [ "$where" = large ]; then
		mkdir -p "$r$DLWS/large/os"
		cp "$image" "$r$DLWS/large/os/disk.img$ext"
	else
		mkdir -p "$r$DLWS/os"
		cp "$image" "$r$DLWS/os/disk.img$ext"
	fi
	(cd "$r" && find ."$OEM" -type f ! -path "*/manifest.d/*" | LC_ALL=C sort | while read -r f; do
		printf '%s %s %s %s\n' "$(sha "$f")" "$(stat -c %s "$f")" "$(mode "$f")" "${f#.}"
	done) >"$T/manifest.all"
	grep -v " $DLWS/large/" "$T/manifest.all" >"$r$DLWS/manifest.d/00-payload"
	{ echo "# large files, on the boot medium"; grep " $DLWS/large/" "$T/manifest.all"; } \
		>"$r$DLWS/manifest.d/20-large"
	truncate -s 20M "$r/target.img"
	write_conf "$r" "$r/target.img" 0 "$DLWS/os/disk.img$ext"
}

# write_conf DIR DEVICE WIPE IMAGE [extra lines]
write_conf() {
	{
		echo "# written by dlws-mkimage"
		echo "DLWS_INSTALL_DEVICE=$2"
		echo "DLWS_INSTALL_WIPE=$3"
		echo "DLWS_INSTALL_IMAGE=\"$4\""
		echo "DLWS_INSTALL_IMAGE_SIZE=$IMAGE_SIZE"
		if [ $# -ge 5 ]; then printf '%s\n' "$5"; fi
	} >"$1$DLWS/install.conf"
}

# run NAME ROOT [args...]: runs the agent with --root ROOT and target dirs
# NAME.root/NAME.oem; output in $T/NAME.out, exit status in $rc.
run() {
	local name=$1 r=$2
	shift 2
	mkdir -p "$T/$name.root" "$T/$name.oem"
	"$DLWS_INSTALL" --root "$r" --target-root "$T/$name.root" --target-oem "$T/$name.oem" "$@" \
		>"$T/$name.out" 2>&1
	rc=$?
}

show() { sed 's/^/    | /' "$T/$1.out"; }

is_empty_dir() { [ -z "$(ls -A "$1")" ]; }

# --- 1. a damaged payload installs nothing ------------------------------------
R=$T/flip
make_root "$R" "$img"
before=$(sha "$R/target.img")
f=$R$DLWS/rootfs/opt/bin/kubelet
printf '\x01' | dd of="$f" bs=1 seek=3 conv=notrunc status=none
run flip "$R"
if [ "$rc" = 1 ] &&
   grep -q "^DLWS-INSTALL-ERROR: payload file $DLWS/rootfs/opt/bin/kubelet is damaged (sha256 [0-9a-f]\{64\}, expected [0-9a-f]\{64\})$" "$T/flip.out" &&
   [ "$(sha "$R/target.img")" = "$before" ] && is_empty_dir "$T/flip.root" && is_empty_dir "$T/flip.oem"; then
	pass "a flipped byte in the payload: refused, file named, target untouched, nothing installed"
else
	fail "a flipped byte in the payload (rc=$rc)"; show flip
fi

# A flipped byte in the OS image on the medium (large/), and a wrong mode.
R=$T/flip2
make_root "$R" "$img.xz" large
before=$(sha "$R/target.img")
printf '\x00' | dd of="$R$DLWS/large/os/disk.img.xz" bs=1 seek=100 conv=notrunc status=none
chmod 0644 "$R$DLWS/rootfs/opt/bin/kubelet"
run flip2 "$R"
if [ "$rc" = 1 ] &&
   grep -q "^DLWS-INSTALL-ERROR: payload file $DLWS/large/os/disk.img.xz is damaged (sha256 " "$T/flip2.out" &&
   grep -q "^DLWS-INSTALL-ERROR: payload file $DLWS/rootfs/opt/bin/kubelet is damaged (mode 644, expected 755)$" "$T/flip2.out" &&
   [ "$(sha "$R/target.img")" = "$before" ] && is_empty_dir "$T/flip2.root"; then
	pass "a damaged OS image on the medium and a wrong mode: both named, target untouched"
else
	fail "a damaged OS image and a wrong mode (rc=$rc)"; show flip2
fi

R=$T/missing
make_root "$R" "$img"
rm "$R$DLWS/images/hyperkube.tar"
run missing "$R"
if [ "$rc" = 1 ] && grep -q "^DLWS-INSTALL-ERROR: payload file $DLWS/images/hyperkube.tar is damaged (missing)$" "$T/missing.out"; then
	pass "a missing payload file: refused and named"
else
	fail "a missing payload file (rc=$rc)"; show missing
fi

# --- 2. a disk that already has partitions ---------------------------------------
R=$T/parts
make_root "$R" "$img"
sgdisk_q -o -n 1:2048:+1M -c 1:old "$R/target.img" >/dev/null
before=$(sha "$R/target.img")
run parts "$R"
if [ "$rc" = 1 ] &&
   grep -qx "DLWS-INSTALL-ERROR: $R/target.img already has partitions (set install.wipe: true to overwrite it)" "$T/parts.out" &&
   [ "$(sha "$R/target.img")" = "$before" ] && is_empty_dir "$T/parts.root"; then
	pass "a GPT target without wipe: refused, untouched"
else
	fail "a GPT target without wipe (rc=$rc)"; show parts
fi

R=$T/mbr
make_root "$R" "$img"
if command -v sfdisk >/dev/null; then
	echo 'label: dos
start=2048, size=2048, type=83' | sfdisk -q "$R/target.img" >/dev/null
	before=$(sha "$R/target.img")
	run mbr "$R"
	if [ "$rc" = 1 ] && grep -q "already has partitions" "$T/mbr.out" && grep -q "MBR partition table" "$T/mbr.out" &&
	   [ "$(sha "$R/target.img")" = "$before" ]; then
		pass "an MBR target without wipe: refused, untouched"
	else
		fail "an MBR target without wipe (rc=$rc)"; show mbr
	fi
else
	skip "MBR target: sfdisk (fdisk) is not installed"
fi

R=$T/wipe
make_root "$R" "$img"
sgdisk_q -o -n 1:2048:+1M -c 1:old "$R/target.img" >/dev/null
write_conf "$R" "$R/target.img" 1 "$DLWS/os/disk.img"
run wipe "$R"
if [ "$rc" = 0 ] && [ "$(head -c "$IMAGE_SIZE" "$R/target.img" | sha256sum | cut -d' ' -f1)" = "$img_sha" ] &&
   [ "$(tail -c +$((IMAGE_SIZE + 1)) "$R/target.img" | tr -d '\0' | wc -c)" = 0 ]; then
	pass "the same target with wipe: overwritten, the old backup GPT at its end zeroed"
else
	fail "the same target with wipe (rc=$rc)"; show wipe
fi

# --- 3. too small, bad install.conf, no ROOT ------------------------------------
R=$T/small
make_root "$R" "$img"
truncate -s 8M "$R/target.img"
run small "$R"
if [ "$rc" = 1 ] && grep -qx "DLWS-INSTALL-ERROR: $R/target.img is too small: 8388608 bytes, the image needs $IMAGE_SIZE bytes" "$T/small.out"; then
	pass "a target smaller than the image: refused, both sizes named"
else
	fail "a target smaller than the image (rc=$rc)"; show small
fi

R=$T/badconf
make_root "$R" "$img"
sed -i '/DLWS_INSTALL_DEVICE/d' "$R$DLWS/install.conf"
run badconf "$R"
if [ "$rc" = 1 ] && grep -qx "DLWS-INSTALL-ERROR: $DLWS/install.conf: DLWS_INSTALL_DEVICE is not set" "$T/badconf.out"; then
	pass "install.conf without a device: refused"
else
	fail "install.conf without a device (rc=$rc)"; show badconf
fi
write_conf "$R" "$R/target.img" yes "$DLWS/os/disk.img"
run badconf2 "$R"
if [ "$rc" = 1 ] && grep -qx "DLWS-INSTALL-ERROR: $DLWS/install.conf:3: DLWS_INSTALL_WIPE must be 0 or 1, not 'yes'" "$T/badconf2.out"; then
	pass "install.conf with a bad wipe value: refused with file:line"
else
	fail "install.conf with a bad wipe value (rc=$rc)"; show badconf2
fi

noroot=$T/noroot.img
cp "$img" "$noroot"
sgdisk_q -c 9:DATA "$noroot" >/dev/null
R=$T/noroot
make_root "$R" "$noroot"
run noroot "$R"
if [ "$rc" = 1 ] && grep -q "^DLWS-INSTALL-ERROR: the image written to $R/target.img has no partition named ROOT$" "$T/noroot.out" &&
   is_empty_dir "$T/noroot.root"; then
	pass "an image without a ROOT partition: one clear error"
else
	fail "an image without a ROOT partition (rc=$rc)"; show noroot
fi

# --- 4. streaming: every compression, byte-identical ----------------------------
for ext in "" .gz .bz2 .xz .zst; do
	name=stream${ext#.}
	where=small
	[ "$ext" = .zst ] && where=large   # the payload lookup rule for the image
	R=$T/$name
	make_root "$R" "$img$ext" "$where"
	run "$name" "$R"
	got=$(head -c "$IMAGE_SIZE" "$R/target.img" | sha256sum | cut -d' ' -f1)
	speed=$(sed -n 's/.*wrote [0-9]* bytes .* (\([0-9.]* MB\/s\), \([a-z0-9]*\)).*/\1, filter \2/p' "$T/$name.out")
	if [ "$rc" = 0 ] && [ "$got" = "$img_sha" ] && grep -qx "DLWS-INSTALL: done on $R/target.img" "$T/$name.out"; then
		label="image${ext:- (raw)}"
		[ "$where" = large ] && label="$label from large/"
		pass "$label streamed byte-identically ($speed)"
	else
		fail "image${ext:- (raw)} streamed (rc=$rc, sha $got)"; show "$name"
	fi
done

# --- 5. partitions by GPT name ----------------------------------------------------
parts=$(sed -n 's/^dlws-install: partitions: \(EFI-SYSTEM=[0-9-]* OEM=[0-9-]* ROOT=[0-9-]*\) .*/\1/p' "$T/streamxz.out")
if [ "$parts" = "$want_parts" ]; then
	pass "GPT partitions found by name: $parts (sgdisk -p agrees)"
else
	fail "GPT partitions: agent '$parts', sgdisk '$want_parts'"
fi

# --- 6. files and modes on the target -----------------------------------------
R=$T/streamxz
TR=$T/streamxz.root
check_file() {   # path-on-target mode source
	local p=$TR/$1
	if [ ! -f "$p" ]; then
		fail "/$1: missing on the target"
	elif [ "$(mode "$p")" != "$2" ]; then
		fail "/$1: mode $(mode "$p"), expected $2"
	elif [ "$(stat -c %u:%g "$p")" != 0:0 ]; then
		fail "/$1: owner $(stat -c %u:%g "$p"), expected 0:0"
	elif [ "$(sha "$p")" != "$(sha "$3")" ]; then
		fail "/$1: content differs from $3"
	else
		pass "/$1: $2, root, content matches"
	fi
}
check_file var/lib/flatcar-install/user_data 600 "$R$DLWS/rootfs/var/lib/flatcar-install/user_data"
[ "$(mode "$TR/var/lib/flatcar-install")" = 700 ] && pass "/var/lib/flatcar-install: 700 (as flatcar-install's umask 077 makes it)" ||
	fail "/var/lib/flatcar-install: mode $(mode "$TR/var/lib/flatcar-install")"
check_file opt/bin/kubelet 755 "$R$DLWS/rootfs/opt/bin/kubelet"
check_file etc/kubernetes/ssl/worker-key.pem 600 "$R$DLWS/rootfs/etc/kubernetes/ssl/worker-key.pem"
check_file etc/kubernetes/ssl/ca.pem 644 "$R$DLWS/rootfs/etc/kubernetes/ssl/ca.pem"
check_file opt/bin/kubectl 755 "$R$DLWS/large/rootfs/opt/bin/kubectl"
check_file var/lib/dlws/images/hyperkube.tar 644 "$R$DLWS/images/hyperkube.tar"
check_file var/lib/dlws/images/etcd.tar 644 "$R$DLWS/large/images/etcd.tar"
[ "$(mode "$TR/etc/kubernetes/ssl")" = 755 ] && [ "$(mode "$TR/opt/bin")" = 755 ] &&
	pass "directories made for the rootfs: 755" || fail "directory modes: ssl $(mode "$TR/etc/kubernetes/ssl"), opt/bin $(mode "$TR/opt/bin")"
# The images' unit comes with the payload's Ignition config, not from the agent.
if [ ! -e "$TR/etc/systemd/system/dlws-load-images.service" ]; then
	pass "no unit written by the agent (the Ignition config carries dlws-load-images.service)"
else
	fail "the agent wrote a unit of its own"
fi
p=$T/streamxz.oem/config.ign
if [ -f "$p" ] && [ "$(mode "$p")" = 600 ] && [ "$(sha "$p")" = "$(sha "$R$OEM/config.ign")" ]; then
	pass "/config.ign on OEM: 600, content matches"
else
	fail "/config.ign on OEM"
fi
log=$TR/var/log/dlws-install.log
if [ -f "$log" ] && grep -q '^dlws-install: payload verified: 9 files$' "$log" &&
   grep -q '^dlws-install: wrote 16777216 bytes' "$log" && grep -q '^dlws-install: partitions: ' "$log"; then
	pass "/var/log/dlws-install.log on ROOT has the steps"
else
	fail "/var/log/dlws-install.log"; [ -f "$log" ] && sed 's/^/    | /' "$log"
fi

# Without container images: no unit, nothing under /var/lib/dlws.
R=$T/noimages
make_root "$R" "$img"
rm "$R$DLWS/images/hyperkube.tar" "$R$DLWS/large/images/etcd.tar"
sed -i '/\/images\//d' "$R$DLWS/manifest.d/"*
run noimages "$R"
if [ "$rc" = 0 ] && grep -qx "dlws-install: installed 0 container images (0 bytes)" "$T/noimages.out" &&
   [ ! -e "$T/noimages.root/var/lib/dlws" ] && [ ! -e "$T/noimages.root/etc/systemd" ]; then
	pass "no container images: no unit, no /var/lib/dlws"
else
	fail "no container images (rc=$rc)"; show noimages
fi

# --- 7. auto: the first suitable disk in /sys/block ------------------------------
R=$T/auto
make_root "$R" "$img"
disk() {   # name size-in-sectors removable [partition...]
	local d=$R/sys/block/$1 n=$1 sectors=$2 i=1 major=$((240 + ndisks))
	ndisks=$((ndisks + 1))
	mkdir -p "$d/queue"
	echo "$2" >"$d/size"; echo "$3" >"$d/removable"; echo 512 >"$d/queue/logical_block_size"
	echo "$major:0" >"$d/dev"
	shift 3
	for p in "$@"; do
		mkdir -p "$d/$p"; echo "$i" >"$d/$p/partition"; echo "$major:$i" >"$d/$p/dev"; i=$((i + 1))
	done
	# The device node, as devtmpfs would have it; an image file below --root.
	truncate -s $((sectors * 512)) "$R/dev/$n"
}
ndisks=0
big=$((64 * 1024 * 1024 / 512))
disk loop0 "$big" 0
disk sr0 "$big" 1
disk vda "$big" 0 vda1
disk vdb "$big" 1
disk vdc 1024 0
disk vdc2 "$big" 0
printf 'CD001' | dd of="$R/dev/vdc2" bs=1 seek=32769 conv=notrunc status=none
disk vdd "$big" 0
disk vde "$big" 0
mkdir -p "$R/proc/self"
vda_major=$(cut -d: -f1 "$R/sys/block/vda/dev")
echo "25 1 $vda_major:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw" >"$R/proc/self/mountinfo"
write_conf "$R" auto 0 "$DLWS/os/disk.img"
run auto "$R" --dry-run
if [ "$rc" = 0 ] && grep -q "^dlws-install: target /dev/vdd: 67108864 bytes" "$T/auto.out" &&
   grep -q "disk vda: skipped (vda1 is mounted on /)" "$T/auto.out" && grep -q "disk vdb: skipped (removable)" "$T/auto.out" &&
   grep -q "disk vdc: skipped (524288 bytes, smaller than the image)" "$T/auto.out" &&
   grep -q "disk vdc2: skipped (holds an ISO 9660 file system: boot media)" "$T/auto.out" &&
   grep -qx "dlws-install: not considered (loop, ram, sr, zram, dm, md): loop0 sr0" "$T/auto.out"; then
	pass "auto: /dev/vdd chosen (loop0, sr0, mounted vda, removable vdb, small vdc, ISO 9660 vdc2 skipped)"
else
	fail "auto (rc=$rc)"; show auto
fi
write_conf "$R" auto 0 "$DLWS/os/disk.img" "DLWS_INSTALL_MEDIUM=/dev/vdd"
run auto2 "$R" --dry-run
if [ "$rc" = 0 ] && grep -q "^dlws-install: target /dev/vde: 67108864 bytes" "$T/auto2.out" &&
   grep -q "disk vdd: skipped (the boot medium)" "$T/auto2.out"; then
	pass "auto: the boot medium (DLWS_INSTALL_MEDIUM=/dev/vdd) is skipped, /dev/vde chosen"
else
	fail "auto with a medium (rc=$rc)"; show auto2
fi
# Full install on the auto-chosen disk: /dev/vdd below --root is an image file.
write_conf "$R" auto 0 "$DLWS/os/disk.img"
run auto3 "$R"
if [ "$rc" = 0 ] && grep -qx "DLWS-INSTALL: done on /dev/vdd" "$T/auto3.out" &&
   [ "$(head -c "$IMAGE_SIZE" "$R/dev/vdd" | sha256sum | cut -d' ' -f1)" = "$img_sha" ]; then
	pass "auto: installed onto the chosen disk"
else
	fail "auto install (rc=$rc)"; show auto3
fi
write_conf "$R" auto 0 "$DLWS/os/disk.img" "DLWS_INSTALL_MEDIUM=/dev/vde"
echo "$big" >"$R/sys/block/vdd/size"
mkdir -p "$R/sys/block/vdd/vdd1"; echo 1 >"$R/sys/block/vdd/vdd1/partition"
run auto4 "$R" --dry-run
if [ "$rc" = 1 ] && grep -qx "DLWS-INSTALL-ERROR: /dev/vdd already has partitions (set install.wipe: true to overwrite it)" "$T/auto4.out"; then
	pass "auto: the chosen disk with partitions is refused without wipe (not silently passed over)"
else
	fail "auto with partitions (rc=$rc)"; show auto4
fi
write_conf "$R" auto 0 "$DLWS/os/disk.img" "DLWS_INSTALL_MEDIUM=/dev/vdd1"
rm -rf "$R/sys/block/vde"
run auto5 "$R" --dry-run
if [ "$rc" = 1 ] && grep -qx "DLWS-INSTALL-ERROR: no disk to install on (the image needs $IMAGE_SIZE bytes): vda: vda1 is mounted on /; vdb: removable; vdc: 524288 bytes, smaller than the image; vdc2: holds an ISO 9660 file system: boot media; vdd: the boot medium" "$T/auto5.out"; then
	pass "auto: no suitable disk gives one line with every reason"
else
	fail "auto without a disk (rc=$rc)"; show auto5
fi

# --- 8. statically linked, runs with nothing around it (the default paths) -------
static=1
[ "${DLWS_INSTALL_DYNAMIC:-0}" = 1 ] && static=0
if [ "$static" = 0 ]; then
	skip "statically linked: DLWS_INSTALL_DYNAMIC=1 (a sanitizer build)"
elif readelf -lW "$DLWS_INSTALL" 2>/dev/null | grep -q "Elf file type is EXEC" && ! readelf -lW "$DLWS_INSTALL" | grep -q INTERP; then
	pass "statically linked ($(stat -c %s "$DLWS_INSTALL") bytes)"
else
	fail "not statically linked: $(readelf -lW "$DLWS_INSTALL" | grep -E "type is|INTERP")"
fi
if [ "$static" = 0 ]; then
	skip "empty chroot: the binary is dynamic"
elif [ "$(id -u)" = 0 ]; then
	R=$T/chroot
	make_root "$R" "$img.bz2"
	write_conf "$R" /target.img 0 "$DLWS/os/disk.img.bz2"
	cp "$DLWS_INSTALL" "$R$DLWS/install"
	mkdir -p "$R/proc"
	if mount -t proc proc "$R/proc" 2>/dev/null; then
		chroot_proc=$R/proc
		chroot "$R" "$DLWS/install" --dry-run >"$T/chroot.out" 2>&1
		rc=$?
		umount "$R/proc"; chroot_proc=
		if [ "$rc" = 0 ] && grep -qx "dlws-install: target /target.img: 20971520 bytes (an image file)" "$T/chroot.out"; then
			pass "runs in an empty chroot (no libraries, no /etc) with the real default paths"
		else
			fail "run in an empty chroot (rc=$rc)"; show chroot
		fi
	else
		skip "empty chroot: cannot mount /proc here"
	fi
else
	skip "empty chroot: needs root"
fi

# --- 9. the real path on a loop device: BLKRRPART, /dev nodes, mount(2) -------
# The agent runs in a chroot whose /usr/share/oem is the fake payload, with
# the real /proc, /sys and /dev: no --root, no --target-root. (OEM and ROOT
# change when files are put on them: only the first 3 MiB, the GPT and
# EFI-SYSTEM, are compared with the image.)
loop_test() {
	local R=$T/loop L name mnt=$T/loopcheck
	R=$T/loop
	make_root "$R" "$img.xz"
	cp "$DLWS_INSTALL" "$R$DLWS/install"
	truncate -s 24M "$T/loopdisk.img"
	L=$(losetup -f --show -P "$T/loopdisk.img" 2>/dev/null) || { skip "loop device: losetup -P failed"; return; }
	loopdev=$L
	name=${L#/dev/}
	write_conf "$R" "$L" 0 "$DLWS/os/disk.img.xz"
	mkdir -p "$R/proc" "$R/sys" "$R/run" "$R/dev"
	if ! { mount -t proc proc "$R/proc" && chroot_mounts="$R/proc" &&
	       mount --bind /sys "$R/sys" && chroot_mounts="$R/sys $chroot_mounts" &&
	       mount -t devtmpfs devtmpfs "$R/dev" && chroot_mounts="$R/dev $chroot_mounts" &&
	       mount -t tmpfs tmpfs "$R/run" && chroot_mounts="$R/run $chroot_mounts"; } 2>/dev/null; then
		skip "loop device: cannot mount /proc, /sys, /dev, /run for the chroot"
		return
	fi
	chroot "$R" "$DLWS/install" >"$T/loop.out" 2>&1
	rc=$?
	if [ "$rc" = 0 ] && grep -qx "DLWS-INSTALL: done on $L" "$T/loop.out" &&
	   grep -q "^dlws-install: re-read the partition table of $L$" "$T/loop.out" &&
	   grep -q "^dlws-install: mounted /dev/${name}p9 (ROOT, ext4) on /run/dlws-install/root$" "$T/loop.out" &&
	   [ "$(head -c 3M "$L" | sha256sum | cut -d' ' -f1)" = "$(head -c 3M "$img" | sha256sum | cut -d' ' -f1)" ] &&
	   ! grep -q "/run/dlws-install/" /proc/self/mountinfo; then
		pass "loop device $L: streamed, partitions re-read, ROOT (${name}p9) and OEM mounted and unmounted"
		if grep -q "adding it from the GPT (BLKPG)" "$T/loop.out"; then
			echo "    (this kernel did not parse the GPT after BLKRRPART; the agent added the partitions with BLKPG)"
		fi
	else
		fail "loop device install (rc=$rc)"; show loop
		return
	fi
	# What is on the partitions, read by the host's own mount.
	mkdir -p "$mnt"
	if mount -o ro "/dev/${name}p9" "$mnt"; then
		local ok=1
		[ "$(mode "$mnt/var/lib/flatcar-install/user_data")" = 600 ] &&
		[ "$(sha "$mnt/var/lib/flatcar-install/user_data")" = "$(sha "$R$DLWS/rootfs/var/lib/flatcar-install/user_data")" ] &&
		[ "$(mode "$mnt/opt/bin/kubelet")" = 755 ] &&
		[ "$(sha "$mnt/opt/bin/kubelet")" = "$(sha "$R$DLWS/rootfs/opt/bin/kubelet")" ] &&
		[ "$(mode "$mnt/etc/kubernetes/ssl/worker-key.pem")" = 600 ] &&
		[ "$(sha "$mnt/var/lib/random")" = "$(sha "$T/random")" ] &&
		[ -f "$mnt/var/lib/dlws/images/etcd.tar" ] &&
		grep -q "^dlws-install: writing this log" "$mnt/var/log/dlws-install.log" || ok=0
		umount "$mnt"
		[ "$ok" = 1 ] && pass "ROOT on ${name}p9 (mounted read-only by the test): user_data 600, kubelet 755, key 600, images, log, the image's own files intact" ||
			fail "ROOT on ${name}p9: files or modes wrong"
	else
		fail "cannot mount /dev/${name}p9 to check it"
	fi
	if mount -o ro "/dev/${name}p6" "$mnt"; then
		[ "$(sha "$mnt/config.ign")" = "$(sha "$R$OEM/config.ign")" ] &&
			pass "config.ign on OEM (${name}p6)" || fail "config.ign on OEM (${name}p6)"
		umount "$mnt"
	else
		fail "cannot mount /dev/${name}p6 to check it"
	fi
	# Now the disk has partitions (in sysfs): refused without wipe.
	before=$(sha "$L")
	chroot "$R" "$DLWS/install" >"$T/loop2.out" 2>&1
	rc=$?
	if [ "$rc" = 1 ] && grep -q "^dlws-install: $L: has partition ${name}p[0-9]*$" "$T/loop2.out" &&
	   grep -qx "DLWS-INSTALL-ERROR: $L already has partitions (set install.wipe: true to overwrite it)" "$T/loop2.out" &&
	   [ "$(sha "$L")" = "$before" ]; then
		pass "loop device with partitions: refused without wipe, untouched"
	else
		fail "loop device with partitions (rc=$rc)"; show loop2
	fi
	# A mounted partition: refused even with wipe. (Inside the chroot: a
	# process sees only the mounts below its root in /proc/self/mountinfo.)
	write_conf "$R" "$L" 1 "$DLWS/os/disk.img.xz"
	mkdir -p "$R/mnt"
	mount -o ro "/dev/${name}p9" "$R/mnt"
	chroot "$R" "$DLWS/install" >"$T/loop3.out" 2>&1
	rc=$?
	umount "$R/mnt"
	if [ "$rc" = 1 ] && grep -qx "DLWS-INSTALL-ERROR: $L is in use: ${name}p9 is mounted on /mnt" "$T/loop3.out" &&
	   [ "$(sha "$L")" = "$before" ]; then
		pass "loop device with a mounted partition: refused even with wipe, untouched"
	else
		fail "loop device with a mounted partition (rc=$rc)"; show loop3
	fi
	# A partition as the target.
	write_conf "$R" "/dev/${name}p9" 1 "$DLWS/os/disk.img.xz"
	chroot "$R" "$DLWS/install" >"$T/loop4.out" 2>&1
	rc=$?
	if [ "$rc" = 1 ] && grep -qx "DLWS-INSTALL-ERROR: /dev/${name}p9 is a partition (${name}p9), not a whole disk" "$T/loop4.out"; then
		pass "a partition as the target: refused"
	else
		fail "a partition as the target (rc=$rc)"; show loop4
	fi
}
if [ "$static" = 0 ]; then
	skip "loop device: runs in a chroot, needs the static binary"
elif [ "$(id -u)" = 0 ] && command -v losetup >/dev/null && [ -e /dev/loop-control ]; then
	loop_test
else
	skip "loop device: needs root, losetup and /dev/loop-control"
fi

echo "agent tests: $npass passed, $nfail failed"
[ "$nfail" = 0 ]
