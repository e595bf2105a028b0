#!/usr/bin/env bash
# Tests of dlws-install (agent/) against fake live systems: a payload tree
# under mktemp, read with --root, and a disk image file as the target, whose
# ROOT/OEM files go to --target-root/--target-oem instead of a mount. Images
# named by an http:// URL come from a small python3 server on 127.0.0.1
# (started and killed here), fetched by the host's curl, and by busybox wget
# in an empty chroot. The real install on a real disk is the QEMU e2e
# test's job.
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
# shellcheck source=../lib/flip.sh
. "$here/tests/lib/flip.sh"
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
chroot_proc= chroot_mounts= loopdev= servers=
cleanup() {
	local m p
	for p in $servers; do kill "$p" 2>/dev/null; done
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
flip_byte "$f" 3
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
flip_byte "$R$DLWS/large/os/disk.img.xz" 100
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

# --- 8. install.conf: the image's sha256 and http:// URLs ------------------------
R=$T/conf
make_root "$R" "$img"
sha64=$(printf x | sha256sum | cut -d' ' -f1)
# bad_conf NAME WHAT EXPECTED LINE...: install.conf with the device, the size
# and LINE... (from line 3 on) is refused with EXPECTED (after the file name).
bad_conf() {
	local name=$1 what=$2 want=$3
	shift 3
	{ echo "DLWS_INSTALL_DEVICE=$R/target.img"; echo "DLWS_INSTALL_IMAGE_SIZE=$IMAGE_SIZE"; printf '%s\n' "$@"; } \
		>"$R$DLWS/install.conf"
	run "$name" "$R" --dry-run
	if [ "$rc" = 1 ] && grep -qxF "DLWS-INSTALL-ERROR: $DLWS/install.conf$want" "$T/$name.out"; then
		pass "install.conf: $what"
	else
		fail "install.conf: $what (rc=$rc)"; show "$name"
	fi
}
bad_conf conf_sha_upper "an uppercase sha256 is refused with file:line" \
	":4: DLWS_INSTALL_IMAGE_SHA256 must be 64 lowercase hex digits, not '${sha64^^}'" \
	"DLWS_INSTALL_IMAGE=$DLWS/os/disk.img" "DLWS_INSTALL_IMAGE_SHA256=${sha64^^}"
bad_conf conf_sha_short "a sha256 of 63 digits is refused" \
	":3: DLWS_INSTALL_IMAGE_SHA256 must be 64 lowercase hex digits, not '${sha64:1}'" \
	"DLWS_INSTALL_IMAGE_SHA256=${sha64:1}" "DLWS_INSTALL_IMAGE=$DLWS/os/disk.img"
bad_conf conf_sha_long "a sha256 with a 65th character is refused" \
	":3: DLWS_INSTALL_IMAGE_SHA256 must be 64 lowercase hex digits, not '${sha64}0'" \
	"DLWS_INSTALL_IMAGE_SHA256=${sha64}0" "DLWS_INSTALL_IMAGE=$DLWS/os/disk.img"
bad_conf conf_https "https:// is refused (no CA store in the live system)" \
	":3: DLWS_INSTALL_IMAGE: https:// is not supported (the live system has no CA certificates to check the server with): use http://, DLWS_INSTALL_IMAGE_SHA256 protects the image" \
	"DLWS_INSTALL_IMAGE=https://192.168.255.1/worker/os/flatcar_production_image.bin.bz2" "DLWS_INSTALL_IMAGE_SHA256=$sha64"
bad_conf conf_ftp "ftp:// is refused" \
	":3: DLWS_INSTALL_IMAGE: 'ftp://' URLs are not supported, only http:// (or an absolute path)" \
	"DLWS_INSTALL_IMAGE=ftp://192.168.255.1/os.bin.bz2" "DLWS_INSTALL_IMAGE_SHA256=$sha64"
bad_conf conf_semicolon "';' in the URL's path is refused" \
	":3: DLWS_INSTALL_IMAGE: character ';' is not allowed in the URL's path (letters, digits, \"-._~/+,=:@\" and %XX escapes are)" \
	'DLWS_INSTALL_IMAGE=http://192.168.255.1/os.bin;reboot' "DLWS_INSTALL_IMAGE_SHA256=$sha64"
bad_conf conf_dollar "'\$(...)' in the URL's path is refused" \
	":3: DLWS_INSTALL_IMAGE: character '\$' is not allowed in the URL's path (letters, digits, \"-._~/+,=:@\" and %XX escapes are)" \
	'DLWS_INSTALL_IMAGE=http://192.168.255.1/$(reboot)' "DLWS_INSTALL_IMAGE_SHA256=$sha64"
bad_conf conf_backtick "'\`' in the URL's host is refused" \
	":3: DLWS_INSTALL_IMAGE: character '\`' is not allowed in the URL's host (a name or an IPv4 address: letters, digits, '.', '-')" \
	'DLWS_INSTALL_IMAGE=http://boot`id`/os.bin' "DLWS_INSTALL_IMAGE_SHA256=$sha64"
bad_conf conf_space "a blank in the URL is refused" \
	":3: DLWS_INSTALL_IMAGE: character \\x20 is not allowed in the URL's path (letters, digits, \"-._~/+,=:@\" and %XX escapes are)" \
	'DLWS_INSTALL_IMAGE="http://boot/os bin"' "DLWS_INSTALL_IMAGE_SHA256=$sha64"
bad_conf conf_query "a query ('?', a glob character) is refused" \
	":3: DLWS_INSTALL_IMAGE: character '?' is not allowed in the URL's path (letters, digits, \"-._~/+,=:@\" and %XX escapes are)" \
	'DLWS_INSTALL_IMAGE=http://boot/os.bin?x=1' "DLWS_INSTALL_IMAGE_SHA256=$sha64"
bad_conf conf_userinfo "a user name in the URL is refused" \
	":3: DLWS_INSTALL_IMAGE: character '@' is not allowed in the URL's host (a name or an IPv4 address: letters, digits, '.', '-')" \
	'DLWS_INSTALL_IMAGE=http://root@boot/os.bin' "DLWS_INSTALL_IMAGE_SHA256=$sha64"
bad_conf conf_port "a port out of range is refused" \
	":3: DLWS_INSTALL_IMAGE: the URL's port must be a number from 1 to 65535, not '65536'" \
	'DLWS_INSTALL_IMAGE=http://boot:65536/os.bin' "DLWS_INSTALL_IMAGE_SHA256=$sha64"
bad_conf conf_nopath "a URL without a path is refused" \
	":3: DLWS_INSTALL_IMAGE: the URL has no path to the image" \
	'DLWS_INSTALL_IMAGE=http://boot:8080' "DLWS_INSTALL_IMAGE_SHA256=$sha64"
bad_conf conf_badescape "a '%' that starts no escape is refused" \
	":3: DLWS_INSTALL_IMAGE: '%' in the URL's path must start an escape %XX of two hex digits" \
	'DLWS_INSTALL_IMAGE=http://boot/os%zz.bin' "DLWS_INSTALL_IMAGE_SHA256=$sha64"
bad_conf conf_nosha "an http:// URL without a sha256 is refused" \
	": DLWS_INSTALL_IMAGE is an http:// URL but DLWS_INSTALL_IMAGE_SHA256 is not set (nothing would check the download)" \
	'DLWS_INSTALL_IMAGE=http://192.168.255.1/worker/os/flatcar_production_image.bin.bz2'
bad_conf conf_relative "a relative image path is refused with file:line" \
	":3: DLWS_INSTALL_IMAGE must be an absolute path or an http:// URL, not 'os/disk.img'" \
	'DLWS_INSTALL_IMAGE=os/disk.img' "DLWS_INSTALL_IMAGE_SHA256=$sha64"
# What the builder writes for PXE: accepted; a dry run fetches nothing.
u='http://192.168.255.1:8080/worker-1/os/flatcar_production_image.bin.bz2'
{ echo "DLWS_INSTALL_DEVICE=$R/target.img"; echo "DLWS_INSTALL_IMAGE_SIZE=$IMAGE_SIZE"
  echo "DLWS_INSTALL_IMAGE=$u"; echo "export DLWS_INSTALL_IMAGE_SHA256='$sha64'"; } >"$R$DLWS/install.conf"
run conf_url_ok "$R" --dry-run
if [ "$rc" = 0 ] && grep -qxF "dlws-install: install.conf: device $R/target.img, wipe no, image $u ($IMAGE_SIZE bytes, sha256 $sha64)" "$T/conf_url_ok.out" &&
   grep -qxF "dlws-install: dry run: would write $u ($IMAGE_SIZE bytes) to $R/target.img" "$T/conf_url_ok.out" &&
   ! grep -q "fetching" "$T/conf_url_ok.out"; then
	pass "install.conf: an http:// URL with host:port and a sha256 is accepted; a dry run fetches nothing"
else
	fail "install.conf: an http:// URL (rc=$rc)"; show conf_url_ok
fi

# --- 9. the sha256 of a local image, checked as it streams -----------------------
# unbootable FILE: the first MiB, the image's backup GPT and the end of FILE
# are zero (a failed install must not boot).
unbootable() {
	[ "$(head -c 1048576 "$1" | tr -d '\0' | wc -c)" = 0 ] &&
	[ "$(head -c "$IMAGE_SIZE" "$1" | tail -c $((33 * 512)) | tr -d '\0' | wc -c)" = 0 ] &&
	[ "$(tail -c $((33 * 512)) "$1" | tr -d '\0' | wc -c)" = 0 ]
}
xz_sha=$(sha "$img.xz")
R=$T/localsha
make_root "$R" "$img.xz" large
write_conf "$R" "$R/target.img" 0 "$DLWS/os/disk.img.xz" "DLWS_INSTALL_IMAGE_SHA256=$xz_sha"
run localsha "$R"
if [ "$rc" = 0 ] && [ "$(head -c "$IMAGE_SIZE" "$R/target.img" | sha256sum | cut -d' ' -f1)" = "$img_sha" ] &&
   grep -qxF "dlws-install: read $(stat -c %s "$img.xz") bytes of the OS image $DLWS/large/os/disk.img.xz: sha256 $xz_sha, as install.conf expects" "$T/localsha.out"; then
	pass "a local image with install.conf's sha256: hashed in the streaming pass, installed"
else
	fail "a local image with install.conf's sha256 (rc=$rc)"; show localsha
fi
rm -f "$R/target.img"; truncate -s 20M "$R/target.img"
write_conf "$R" "$R/target.img" 0 "$DLWS/os/disk.img.xz" "DLWS_INSTALL_IMAGE_SHA256=$sha64"
run localsha2 "$R"
if [ "$rc" = 1 ] &&
   grep -qxF "DLWS-INSTALL-ERROR: the OS image $DLWS/large/os/disk.img.xz has sha256 $xz_sha, install.conf expects $sha64" "$T/localsha2.out" &&
   grep -qxF "dlws-install: the install failed: made $R/target.img unbootable (zeroed its first MiB and its backup GPT)" "$T/localsha2.out" &&
   unbootable "$R/target.img" && is_empty_dir "$T/localsha2.root"; then
	pass "a local image whose sha256 is not install.conf's: refused after streaming, target made unbootable"
else
	fail "a local image with a wrong sha256 (rc=$rc)"; show localsha2
fi

# --- 10. the OS image over http:// -------------------------------------------------
# A small server on loopback: /ok/NAME serves www/NAME; /cut/NAME sends the
# Content-Length and half the body, then closes; /nolen/NAME half the body
# without a Content-Length (the client cannot tell it is short); /stall/NAME
# half the body, touches PORTFILE.half and waits (to be killed).
cat >"$T/server.py" <<'PY'
import http.server, os, socketserver, sys, time
root, portfile = sys.argv[1], sys.argv[2]
class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"
    def log_message(self, *args):
        pass
    def do_GET(self):
        mode, _, name = self.path.lstrip("/").partition("/")
        path = os.path.join(root, os.path.basename(name))
        if mode not in ("ok", "cut", "nolen", "stall") or not os.path.isfile(path):
            self.send_error(404)
            return
        with open(path, "rb") as f:
            data = f.read()
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        if mode != "nolen":
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if mode == "ok":
            self.wfile.write(data)
            return
        self.wfile.write(data[:len(data) // 2])
        self.wfile.flush()
        if mode == "stall":
            open(portfile + ".half", "w").close()
            time.sleep(120)
class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
server = Server(("127.0.0.1", 0), Handler)
with open(portfile + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.rename(portfile + ".tmp", portfile)
server.serve_forever()
PY
srv_pid= port= http_url=
# start_server NAME: a server in the background; $srv_pid, $port.
start_server() {
	local i
	rm -f "$T/port.$1" "$T/port.$1.half"
	python3 "$T/server.py" "$T/www" "$T/port.$1" 2>"$T/server.$1.err" &
	srv_pid=$!
	servers="$servers $srv_pid"
	for i in $(seq 100); do
		[ -s "$T/port.$1" ] && break
		sleep 0.1
	done
	port=$(cat "$T/port.$1" 2>/dev/null)
	[ -n "$port" ]
}
fresh_target() { rm -f "$1/target.img"; truncate -s 20M "$1/target.img"; }
zero_sha=$(head -c 20M /dev/zero | sha256sum | cut -d' ' -f1)

http_tests() {
	local R=$T/http url bz_sha half_sha
	mkdir -p "$T/www"
	cp "$img.bz2" "$T/www/disk.img.bz2"
	cp "$img" "$T/www/disk.img"
	bz_sha=$(sha "$img.bz2")
	if ! start_server main; then
		fail "http: the test server did not start"; sed 's/^/    | /' "$T/server.main.err"
		return
	fi
	url=http://127.0.0.1:$port
	http_url=$url
	make_root "$R" "$img"

	write_conf "$R" "$R/target.img" 0 "$url/ok/disk.img.bz2" "DLWS_INSTALL_IMAGE_SHA256=$bz_sha"
	run http "$R"
	if [ "$rc" = 0 ] && [ "$(head -c "$IMAGE_SIZE" "$R/target.img" | sha256sum | cut -d' ' -f1)" = "$img_sha" ] &&
	   grep -q "^dlws-install: fetching the OS image from $url/ok/disk.img.bz2 with curl (/[a-z/]*/curl)$" "$T/http.out" &&
	   grep -qxF "dlws-install: read $(stat -c %s "$img.bz2") bytes of the OS image from $url/ok/disk.img.bz2 with curl: sha256 $bz_sha, as install.conf expects" "$T/http.out" &&
	   grep -qxF "DLWS-INSTALL: done on $R/target.img" "$T/http.out" && [ -f "$T/http.root/var/log/dlws-install.log" ]; then
		pass "http: the image fetched with curl, sha256 checked, streamed byte-identically ($(sed -n 's/.*wrote [0-9]* bytes .* (\([0-9.]* MB\/s\), .*/\1/p' "$T/http.out"))"
	else
		fail "http: install from a URL (rc=$rc)"; show http
	fi

	fresh_target "$R"
	write_conf "$R" "$R/target.img" 0 "$url/ok/disk.img.bz2" "DLWS_INSTALL_IMAGE_SHA256=$img_sha"
	run http_sha "$R"
	if [ "$rc" = 1 ] &&
	   grep -qxF "DLWS-INSTALL-ERROR: the OS image from $url/ok/disk.img.bz2 has sha256 $bz_sha, install.conf expects $img_sha" "$T/http_sha.out" &&
	   grep -qxF "dlws-install: the install failed: made $R/target.img unbootable (zeroed its first MiB and its backup GPT)" "$T/http_sha.out" &&
	   unbootable "$R/target.img" && is_empty_dir "$T/http_sha.root" && ! grep -q "^DLWS-INSTALL: done" "$T/http_sha.out"; then
		pass "http: a wrong sha256: refused, both sums named, target made unbootable"
	else
		fail "http: a wrong sha256 (rc=$rc)"; show http_sha
	fi

	fresh_target "$R"
	write_conf "$R" "$R/target.img" 0 "$url/ok/nothere.bin.bz2" "DLWS_INSTALL_IMAGE_SHA256=$bz_sha"
	run http_404 "$R"
	if [ "$rc" = 1 ] &&
	   grep -qxF "DLWS-INSTALL-ERROR: cannot fetch the OS image from $url/ok/nothere.bin.bz2: curl exited with status 22: curl: (22) The requested URL returned error: 404" "$T/http_404.out" &&
	   [ "$(sha "$R/target.img")" = "$zero_sha" ] && ! grep -q "unbootable" "$T/http_404.out"; then
		pass "http: a 404: curl's exit status and message named, target untouched"
	else
		fail "http: a 404 (rc=$rc)"; show http_404
	fi

	fresh_target "$R"
	write_conf "$R" "$R/target.img" 0 "$url/cut/disk.img.bz2" "DLWS_INSTALL_IMAGE_SHA256=$bz_sha"
	run http_cut "$R"
	if [ "$rc" = 1 ] &&
	   grep -q "^DLWS-INSTALL-ERROR: cannot fetch the OS image from $url/cut/disk.img.bz2: curl exited with status 18: curl: (18) " "$T/http_cut.out" &&
	   unbootable "$R/target.img"; then
		pass "http: the server closes the connection mid-body: curl's status 18 named, target made unbootable"
	else
		fail "http: a connection closed mid-body (rc=$rc)"; show http_cut
	fi

	fresh_target "$R"
	write_conf "$R" "$R/target.img" 0 "$url/nolen/disk.img.bz2" "DLWS_INSTALL_IMAGE_SHA256=$bz_sha"
	run http_nolen "$R"
	half_sha=$(head -c $(($(stat -c %s "$img.bz2") / 2)) "$img.bz2" | sha256sum | cut -d' ' -f1)
	if [ "$rc" = 1 ] &&
	   grep -q "^DLWS-INSTALL-ERROR: the OS image from $url/nolen/disk.img.bz2 has sha256 $half_sha, install.conf expects $bz_sha (cannot decompress " "$T/http_nolen.out" &&
	   unbootable "$R/target.img"; then
		pass "http: half a .bz2 without a Content-Length (curl succeeds): the sha256 names it, target made unbootable"
	else
		fail "http: a short .bz2 download (rc=$rc)"; show http_nolen
	fi

	fresh_target "$R"
	write_conf "$R" "$R/target.img" 0 "$url/nolen/disk.img" "DLWS_INSTALL_IMAGE_SHA256=$img_sha"
	run http_short "$R"
	half_sha=$(head -c $((IMAGE_SIZE / 2)) "$img" | sha256sum | cut -d' ' -f1)
	if [ "$rc" = 1 ] &&
	   grep -qxF "DLWS-INSTALL-ERROR: the OS image from $url/nolen/disk.img has sha256 $half_sha, install.conf expects $img_sha" "$T/http_short.out" &&
	   unbootable "$R/target.img"; then
		pass "http: half a raw image without a Content-Length: the sha256 refuses it, target made unbootable"
	else
		fail "http: a short raw download (rc=$rc)"; show http_short
	fi

	# The right image, but install.conf's size is not its size.
	fresh_target "$R"
	write_conf "$R" "$R/target.img" 0 "$url/ok/disk.img.bz2" "DLWS_INSTALL_IMAGE_SHA256=$bz_sha"
	sed -i "s/^DLWS_INSTALL_IMAGE_SIZE=.*/DLWS_INSTALL_IMAGE_SIZE=$((IMAGE_SIZE + 4096))/" "$R$DLWS/install.conf"
	run http_size "$R"
	if [ "$rc" = 1 ] &&
	   grep -qxF "DLWS-INSTALL-ERROR: the OS image from $url/ok/disk.img.bz2 is $IMAGE_SIZE bytes uncompressed, install.conf says $((IMAGE_SIZE + 4096))" "$T/http_size.out" &&
	   [ "$(head -c 1048576 "$R/target.img" | tr -d '\0' | wc -c)" = 0 ]; then
		pass "http: an image shorter than DLWS_INSTALL_IMAGE_SIZE: refused, target made unbootable"
	else
		fail "http: an image shorter than DLWS_INSTALL_IMAGE_SIZE (rc=$rc)"; show http_size
	fi
	fresh_target "$R"
	sed -i "s/^DLWS_INSTALL_IMAGE_SIZE=.*/DLWS_INSTALL_IMAGE_SIZE=$((IMAGE_SIZE / 2))/" "$R$DLWS/install.conf"
	run http_size2 "$R"
	if [ "$rc" = 1 ] &&
	   grep -qxF "DLWS-INSTALL-ERROR: the OS image from $url/ok/disk.img.bz2 is larger than install.conf's DLWS_INSTALL_IMAGE_SIZE ($((IMAGE_SIZE / 2)) bytes)" "$T/http_size2.out" &&
	   [ "$(head -c 1048576 "$R/target.img" | tr -d '\0' | wc -c)" = 0 ] &&
	   [ "$(tail -c +$((IMAGE_SIZE / 2 + 1)) "$R/target.img" | tr -d '\0' | wc -c)" = 0 ]; then
		pass "http: an image longer than DLWS_INSTALL_IMAGE_SIZE: stopped there, target made unbootable"
	else
		fail "http: an image longer than DLWS_INSTALL_IMAGE_SIZE (rc=$rc)"; show http_size2
	fi

	# The server killed while it sends the image.
	if start_server stall; then
		local spid=$srv_pid agent_pid i
		fresh_target "$R"
		write_conf "$R" "$R/target.img" 0 "http://127.0.0.1:$port/stall/disk.img" "DLWS_INSTALL_IMAGE_SHA256=$img_sha"
		mkdir -p "$T/http_kill.root" "$T/http_kill.oem"
		"$DLWS_INSTALL" --root "$R" --target-root "$T/http_kill.root" --target-oem "$T/http_kill.oem" >"$T/http_kill.out" 2>&1 &
		agent_pid=$!
		for i in $(seq 200); do
			[ -e "$T/port.stall.half" ] && break
			sleep 0.05
		done
		sleep 0.3
		{ kill -9 "$spid"; wait "$spid"; } 2>/dev/null
		wait "$agent_pid"
		rc=$?
		if [ "$rc" = 1 ] && [ -e "$T/port.stall.half" ] &&
		   grep -q "^DLWS-INSTALL-ERROR: cannot fetch the OS image from http://127.0.0.1:$port/stall/disk.img: curl exited with status \(18\|56\): curl: (\(18\|56\)) " "$T/http_kill.out" &&
		   unbootable "$R/target.img"; then
			pass "http: the server killed mid-stream: curl's failure named, target made unbootable"
		else
			fail "http: the server killed mid-stream (rc=$rc)"; show http_kill
		fi
	else
		fail "http: the second test server did not start"
	fi
}
if ! command -v python3 >/dev/null; then
	skip "http: python3 is not installed (it serves the image in these tests)"
elif ! command -v curl >/dev/null; then
	skip "http: curl is not installed (the agent's first choice of client)"
else
	http_tests
fi

# --- 11. statically linked, runs with nothing around it (the default paths) -------
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

# The default base has no curl: busybox wget, found by the agent in an empty
# chroot with only busybox in /bin (the test server is on the shared loopback).
wget_test() {
	local R=$T/wget bz_sha
	bz_sha=$(sha "$img.bz2")
	make_root "$R" "$img"
	cp "$DLWS_INSTALL" "$R$DLWS/install"
	mkdir -p "$R/bin" "$R/proc" "$R/troot" "$R/toem"
	cp "$busybox" "$R/bin/busybox"
	ln -s busybox "$R/bin/wget"
	write_conf "$R" /target.img 0 "$http_url/ok/disk.img.bz2" "DLWS_INSTALL_IMAGE_SHA256=$bz_sha"
	if ! mount -t proc proc "$R/proc" 2>/dev/null; then
		skip "busybox wget: cannot mount /proc here"
		return
	fi
	chroot_proc=$R/proc
	chroot "$R" "$DLWS/install" --root / --target-root /troot --target-oem /toem >"$T/wget.out" 2>&1
	rc=$?
	if [ "$rc" = 0 ] && [ "$(head -c "$IMAGE_SIZE" "$R/target.img" | sha256sum | cut -d' ' -f1)" = "$img_sha" ] &&
	   grep -qxF "dlws-install: fetching the OS image from $http_url/ok/disk.img.bz2 with wget (/bin/wget)" "$T/wget.out" &&
	   grep -qxF "dlws-install: read $(stat -c %s "$img.bz2") bytes of the OS image from $http_url/ok/disk.img.bz2 with wget: sha256 $bz_sha, as install.conf expects" "$T/wget.out"; then
		pass "busybox wget (no curl in the live system): fetched, sha256 checked, streamed byte-identically"
	else
		fail "busybox wget install (rc=$rc)"; show wget
	fi
	rm -f "$R/target.img"; truncate -s 20M "$R/target.img"
	write_conf "$R" /target.img 0 "$http_url/ok/nothere.bin.bz2" "DLWS_INSTALL_IMAGE_SHA256=$bz_sha"
	chroot "$R" "$DLWS/install" --root / --target-root /troot --target-oem /toem >"$T/wget2.out" 2>&1
	rc=$?
	if [ "$rc" = 1 ] &&
	   grep -q "^DLWS-INSTALL-ERROR: cannot fetch the OS image from $http_url/ok/nothere.bin.bz2: wget exited with status 1: wget: server returned error: HTTP/1.0 404 " "$T/wget2.out" &&
	   [ "$(sha "$R/target.img")" = "$zero_sha" ]; then
		pass "busybox wget and a 404: wget's exit status and message named, target untouched"
	else
		fail "busybox wget and a 404 (rc=$rc)"; show wget2
	fi
	umount "$R/proc"; chroot_proc=
}
busybox=
for b in /bin/busybox /usr/bin/busybox; do
	[ -x "$b" ] && ! ldd "$b" >/dev/null 2>&1 && { busybox=$b; break; }
done
if [ "$static" = 0 ]; then
	skip "busybox wget: runs in a chroot, needs the static binary"
elif [ "$(id -u)" != 0 ]; then
	skip "busybox wget: needs root (chroot)"
elif [ -z "$http_url" ]; then
	skip "busybox wget: no test server (python3 or curl is missing)"
elif [ -z "$busybox" ]; then
	skip "busybox wget: no statically linked busybox (apt-get install busybox-static)"
else
	wget_test
fi

# --- 12. the real path on a loop device: BLKRRPART, /dev nodes, mount(2) -------
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
