#!/usr/bin/env bash
# outputs.disk: pre-installed disk images, one per node, made offline with
# libguestfs from a stand-in OS image (tests/lib/mkosimage.sh: GPT with
# EFI-SYSTEM, OEM and ROOT). Two recipes in one build (one appliance
# launch, counted in libguestfs's own trace): the master as a raw disk
# grown to 96M, the workers as qcow2. The disks are read back independently
# with one `guestfish --ro` session (every key at 0600 and every
# certificate as keys/ has it, by its own lstat and checksum), sgdisk and
# qemu-img; bad inputs fail before anything is written.
# Then the master's raw disk boots alone in QEMU with no NIC, in the default
# base's installed-system mode (root=LABEL=ROOT), and finds its own hostname,
# user_data, config.ign and keys; a copy without user_data reports FAIL.
. "$(dirname "$0")/../lib/e2e.sh"
for t in guestfish qemu-img sgdisk; do
	command -v "$t" >/dev/null || { skip disk "$t is not installed (libguestfs-tools, qemu-utils, gdisk)"; finish; }
done
# libguestfs is opened when a disk is worked on: the tool is not linked with
# it (its forty-odd libraries would slow every run down). The ASan build
# is (see the Makefile): the plain one is checked.
if ldd "$ROOT/dlws-mkimage" >/dev/null 2>&1 && ! ldd "$ROOT/dlws-mkimage" | grep -q libguestfs; then
	pass libguestfs_opened_only_for_disks
else
	fail libguestfs_opened_only_for_disks "$(ldd "$ROOT/dlws-mkimage" 2>&1 | grep -i guestfs)"
fi
cd "$WORK"
make_project p
cd p
bash "$ROOT/tests/lib/mkosimage.sh" out/os.img >/dev/null 2>&1 || { fail setup "mkosimage failed"; finish; }
bzip2 -k out/os.img
zstd -q -k out/os.img
os_size=$(stat -c %s out/os.img)
sha() { sha256sum | cut -d' ' -f1; }
# A container image as docker save writes it, pinned.
mkdir -p images && image_standin images/hyperkube.tar registry.k8s.io/hyperkube:v1.34.2
hk_sum=$(sha <images/hyperkube.tar)
# A kubectl big enough to take several upload chunks.
{ printf 'DLWS-TEST-KUBECTL'; head -c 3000000 /dev/urandom; } >vendor/bin/kubectl
(cd vendor/bin && sha256sum kubectl etcd etcdctl >../SHA256SUMS)

# recipe NAME IMAGE OUTPUTS...: recipes/NAME.recipe with base.image IMAGE
# (none when "-") and the outputs given (one YAML line each).
recipe() {
	local name=$1 image=$2 role
	shift 2
	role=${name%%-*}
	[ -f recipes/$role.orig ] || cp recipes/$role.recipe recipes/$role.orig
	sed -e '/^outputs:/,$d' recipes/$role.orig >recipes/$name.recipe
	[ "$image" = - ] || sed -i "s|^  cmdline: .*|&\n  image: $image|" recipes/$name.recipe
	[ "$role" = master ] && printf 'images:\n  - { src: ../images/hyperkube.tar, sha256: %s }\n' "$hk_sum" >>recipes/$name.recipe
	printf 'outputs:\n' >>recipes/$name.recipe
	for o in "$@"; do printf '  %s\n' "$o" >>recipes/$name.recipe; done
}
# line_of FILE TEXT: the line number where TEXT first appears.
line_of() { grep -nF -- "$2" "$1" | head -1 | cut -d: -f1; }

# --- bad inputs: one clear message at the recipe's place, exit 1, nothing written
recipe master-noimage - 'disk: { path: ../out/bad1 }'
out=$("$MK" -q recipes/master-noimage.recipe 2>&1)
rc=$?
l=$(line_of recipes/master-noimage.recipe 'disk:')
if [ $rc -eq 1 ] && [ "$out" = "recipes/master-noimage.recipe:$l:9: error: 'outputs.disk' needs 'base.image': the OS image the disks are made from" ] &&
	[ ! -e out/bad1 ] && [ ! -e out/bad1.tmp ]; then
	pass no_base_image_refused
else
	fail no_base_image_refused "rc=$rc: $out"
fi
recipe master-small ../out/os.img.bz2 'disk: { path: ../out/bad2, size: 16M }'
out=$("$MK" -q recipes/master-small.recipe 2>&1)
rc=$?
l=$(line_of recipes/master-small.recipe 'disk:')
if [ $rc -eq 1 ] && [ "$out" = "recipes/master-small.recipe:$l:36: error: 'size' 16777216 is smaller than the OS image 'recipes/../out/os.img.bz2' ($os_size bytes)" ] &&
	[ ! -e out/bad2 ] && [ ! -e out/bad2.tmp ]; then
	pass size_smaller_than_image_refused
else
	fail size_smaller_than_image_refused "rc=$rc: $out; $(ls out)"
fi
recipe master-file ../out/os.img.bz2 'disk: { path: ../out/master.img }'
out=$("$MK" -q recipes/master-file.recipe 2>&1)
rc=$?
if [ $rc -eq 1 ] && grep -q "^recipes/master-file.recipe:[0-9]*:17: error: 'path' is the directory that gets one disk per node" <<<"$out" &&
	[ "$(echo "$out" | wc -l)" = 1 ] && [ ! -e out/master.img ]; then
	pass disk_path_is_a_directory
else
	fail disk_path_is_a_directory "rc=$rc: $out"
fi

# --- the build: both recipes, one launch
recipe master ../out/os.img.bz2 'initrd: { path: ../out/master-initrd }' 'disk: { path: ../out/disks, size: 96M }'
recipe worker ../out/os.img.zst 'initrd: { path: ../out/worker-initrd }' 'disk: { path: ../out/wdisks, format: qcow2 }'
# LIBGUESTFS_TRACE=1: libguestfs prints every call made on a handle to
# stderr (the data written too: the file stays in $WORK).
t0=$(date +%s)
if ! LIBGUESTFS_TRACE=1 "$MK" -q recipes/master.recipe recipes/worker.recipe 2>"$WORK/build.trace"; then
	fail build "recipes with outputs.disk did not build: $(grep -v '^libguestfs: trace: ' "$WORK/build.trace" | head -5)"
	finish
fi
echo "build of 3 disks (2 recipes) took $(($(date +%s) - t0))s"
# One handle, its three disks added, then one launch: every disk of both
# recipes is made in that appliance.
calls=$(grep -oE '^libguestfs: trace: (add_drive "|launch$|close$)' "$WORK/build.trace" | awk '{print $3}' | tr -d '"' | tr '\n' ' ')
if [ "$calls" = "add_drive add_drive add_drive launch close " ] && ! grep -v '^libguestfs: trace: ' "$WORK/build.trace" | grep -q .; then
	pass one_libguestfs_launch_per_build
else
	fail one_libguestfs_launch_per_build "calls: '$calls'; $(grep -v '^libguestfs: trace: ' "$WORK/build.trace" | head -3)"
fi
m=out/disks/dlws-master.img w1=out/wdisks/dlws-worker1.qcow2 w2=out/wdisks/dlws-worker2.qcow2
if [ -f $m ] && [ -f $w1 ] && [ -f $w2 ] && [ "$(ls out/disks)" = dlws-master.img ] &&
	[ "$(ls out/wdisks | tr '\n' ' ')" = "dlws-worker1.qcow2 dlws-worker2.qcow2 " ] &&
	[ "$(stat -c %a $m $w1 $w2 | sort -u)" = 600 ] && ! ls -a out | grep -q '\.tmp$'; then
	pass one_disk_per_node
else
	fail one_disk_per_node "$(ls -la out out/disks out/wdisks)"
fi

# --- qcow2 and size, with the host's own tools
if qemu-img check -q $w1 && qemu-img check -q $w2 && qemu-img info $w1 | grep -q '^file format: qcow2' &&
	[ "$(qemu-img info --output=json $w1 | jq '."virtual-size"')" = "$os_size" ]; then
	pass qcow2_passes_qemu_img_check
else
	fail qcow2_passes_qemu_img_check "$(qemu-img check $w1 2>&1; qemu-img info $w1)"
fi
root_end=$(sgdisk -p $m | awk '$7 == "ROOT" {print $3}')
if [ "$(stat -c %s $m)" = $((96 << 20)) ] && sgdisk -v $m | grep -q 'No problems found' &&
	[ "$root_end" = $(((96 << 20) / 512 - 34)) ]; then
	pass size_grows_gpt_and_root
else
	fail size_grows_gpt_and_root "size $(stat -c %s $m), ROOT ends at $root_end; $(sgdisk -v $m)"
fi

# --- read back: one guestfish session for every disk
# The rootfs each node's segments carry (its recipe's shared ones, then its
# own), unpacked on the host: what its disk must hold, read independently.
# keyfiles HOST, certfiles HOST: the files of that tree that hold a private
# key (*.key, a kubeconfig's client-key-data), and the *.crt.
hosts=(dlws-master dlws-worker1 dlws-worker2)
for h in "${hosts[@]}"; do
	d=out/worker-initrd
	[ $h = dlws-master ] && d=out/master-initrd
	mkdir -p "$WORK/tree-$h"
	for s in $(ls $d/*.cpio.zst | grep -v '/node-') $d/node-$h.cpio.zst; do
		bsdtar -xf $s -C "$WORK/tree-$h"
	done
done
keyfiles() {
	(cd "$WORK/tree-$1/usr/share/oem/dlws/rootfs" && { find . -type f -name '*.key'; grep -rlE 'client-key-data|PRIVATE KEY' .; } | sed 's#^\./##' | sort -u)
}
certfiles() { (cd "$WORK/tree-$1/usr/share/oem/dlws/rootfs" && find . -type f -name '*.crt' | sed 's#^\./##' | sort); }
# Each query prints a marker line, then its answer.
q=$WORK/queries
: >"$q"
ask() { printf 'echo @%s\n%s\n' "$1" "$2" >>"$q"; }
printf 'run\n' >>"$q"
disks=(-a $m -a $w1 -a $w2)
devs=(sda sdb sdc)
files="var/lib/flatcar-install/user_data etc/kubernetes/kubelet.conf opt/bin/kubectl etc/os-release var/log/dlws-install.log"
for i in 0 1 2; do
	d=${devs[$i]} h=${hosts[$i]}
	printf 'mount /dev/%s9 /\n' "$d" >>"$q"
	for f in $files; do
		ask "$h:$f" "checksum sha256 /$f"
		ask "$h:$f:mode" "lstatns /$f"
	done
	ask "$h:dir-mode" "lstatns /var/lib/flatcar-install"
	# Workers have no images: a leading '-' lets guestfish go on after the error.
	ask "$h:image" "-checksum sha256 /var/lib/dlws/images/hyperkube.tar"
	ask "$h:pki" "find /etc/kubernetes/pki"
	ask "$h:all" "find /"
	for f in $(keyfiles $h) $(certfiles $h); do
		ask "$h:read:$f:mode" "lstatns /$f"
		ask "$h:read:$f" "checksum sha256 /$f"
	done
	ask "$h:log" "cat /var/log/dlws-install.log"
	ask "$h:statvfs" "statvfs /"
	printf 'umount-all\nmount /dev/%s6 /\n' "$d" >>"$q"
	ask "$h:ign" "checksum sha256 /config.ign"
	ask "$h:ign:mode" "lstatns /config.ign"
	printf 'umount-all\n' >>"$q"
done
t0=$(date +%s)
guestfish --ro "${disks[@]}" <"$q" >"$WORK/answers" 2>"$WORK/answers.err"
echo "guestfish read-back took $(($(date +%s) - t0))s"
# answer KEY: the lines after marker @KEY, up to the next marker.
answer() { awk -v k="@$1" '$0 == k {on = 1; next} /^@/ {on = 0} on' "$WORK/answers"; }
mode_of() { printf '%04o' $(($(answer "$1" | awk '$1 == "st_mode:" {print $2}') & 07777)); }

# check_node HOST SEGMENT: HOST's payload is on its disk where the agent puts it.
check_node() {
	local h=$1 seg=$2 why=""
	[ "$(answer "$h:var/lib/flatcar-install/user_data")" = "$(segment_cat "$seg" usr/share/oem/dlws/rootfs/var/lib/flatcar-install/user_data | sha)" ] || why="$why user_data;"
	[ "$(mode_of "$h:var/lib/flatcar-install/user_data:mode")" = 0600 ] || why="$why user_data mode;"
	[ "$(mode_of "$h:dir-mode")" = 0700 ] || why="$why user_data dir mode $(mode_of "$h:dir-mode");"
	[ "$(answer "$h:etc/kubernetes/kubelet.conf")" = "$(sha <keys/kubelet-$h.conf)" ] || why="$why kubelet.conf;"
	[ "$(mode_of "$h:etc/kubernetes/kubelet.conf:mode")" = 0600 ] || why="$why kubelet.conf mode;"
	[ "$(answer "$h:opt/bin/kubectl")" = "$(sha <vendor/bin/kubectl)" ] || why="$why kubectl;"
	[ "$(mode_of "$h:opt/bin/kubectl:mode")" = 0755 ] || why="$why kubectl mode;"
	[ "$(answer "$h:etc/os-release")" = "$(echo 'stand-in OS image for dlws-mkimage tests' | sha)" ] || why="$why os image;"
	[ "$(answer "$h:ign")" = "$(segment_cat "$seg" usr/share/oem/config.ign | sha)" ] || why="$why config.ign;"
	[ "$(mode_of "$h:ign:mode")" = 0600 ] || why="$why config.ign mode;"
	answer "$h:log" | grep -q "pre-installed disk of $h" || why="$why log;"
	# Every certificate and key the node's segment carries, with its mode.
	local f n=0
	for f in $(segment_list "$seg" | sed -n 's#^usr/share/oem/dlws/rootfs/etc/kubernetes/pki/\(.*\.\(crt\|key\|pem\|pub\)\)$#\1#p'); do
		n=$((n + 1))
		answer "$h:pki" | grep -qx "/$f" || why="$why pki/$f missing;"
	done
	[ $n -gt 0 ] || why="$why no certificates in the segment;"
	if [ -z "$why" ]; then pass "payload_on_disk_$h"; else fail "payload_on_disk_$h" "wrong on the disk:$why"; fi
}
if ! grep -qx '@dlws-worker2:ign:mode' "$WORK/answers"; then
	fail read_back "guestfish read nothing: $(tail -3 "$WORK/answers.err")"
	finish
fi
check_node dlws-master out/master-initrd/node-dlws-master.cpio.zst
check_node dlws-worker1 out/worker-initrd/node-dlws-worker1.cpio.zst
check_node dlws-worker2 out/worker-initrd/node-dlws-worker2.cpio.zst

# in_keys HOST PATH: the file of keys/ that PATH (of HOST's rootfs) is, if any.
in_keys() {
	local f=${2#etc/kubernetes/pki/}
	case $2 in
	etc/kubernetes/kubelet.conf) echo keys/kubelet-$1.conf ;;
	var/lib/kube-proxy/kubeconfig.conf) echo keys/kube-proxy.conf ;;
	etc/kubernetes/pki/sa.key) echo keys/service-account-key.pem ;;
	etc/kubernetes/pki/*.key) echo "keys/${f%.key}-key.pem" ;;
	etc/kubernetes/pki/*.crt) f=${f%.crt} && echo "keys/${f//\//-}.pem" ;;
	etc/kubernetes/*/*) ;;
	etc/kubernetes/*.conf) echo "keys/${2#etc/kubernetes/}" ;;
	esac
}
# st_mode HOST:PATH:mode: its st_mode in octal (100600: a regular file, 0600).
st_mode() { printf '%o' "$(answer "$1" | awk '$1 == "st_mode:" {print $2}')"; }
# Every file holding a private key, by the disk's own lstat: a regular
# file, 0600, the bytes of the payload and of keys/; no other *.key on the
# disk. Every certificate: the bytes of the payload and of keys/.
why_keys= why_certs=
for h in "${hosts[@]}"; do
	tree=$WORK/tree-$h/usr/share/oem/dlws/rootfs
	for f in $(keyfiles $h); do
		[ "$(st_mode "$h:read:$f:mode")" = 100600 ] || why_keys="$why_keys $h:/$f is $(st_mode "$h:read:$f:mode");"
		k=$(in_keys $h $f)
		[ "$(answer "$h:read:$f")" = "$(sha <"$tree/$f")" ] && { [ -z "$k" ] || [ "$(answer "$h:read:$f")" = "$(sha <"$k")" ]; } ||
			why_keys="$why_keys $h:/$f differs;"
	done
	keyfiles $h | grep -qx etc/kubernetes/kubelet.conf || why_keys="$why_keys $h: no kubelet.conf in the payload;"
	unchecked=$(comm -23 <(answer "$h:all" | grep '\.key$' | sort) <(keyfiles $h))
	[ -z "$unchecked" ] || why_keys="$why_keys $h: unchecked $unchecked;"
	n=0
	for f in $(certfiles $h); do
		n=$((n + 1))
		[ "$(st_mode "$h:read:$f:mode")" = 100644 ] && [ "$(answer "$h:read:$f")" = "$(sha <"$tree/$f")" ] &&
			[ "$(answer "$h:read:$f")" = "$(sha <"$(in_keys $h $f)")" ] || why_certs="$why_certs $h:/$f;"
	done
	[ $n -ge 1 ] || why_certs="$why_certs $h: none;"
	unchecked=$(comm -23 <(answer "$h:all" | grep '\.crt$' | sort) <(certfiles $h))
	[ -z "$unchecked" ] || why_certs="$why_certs $h: unchecked $unchecked;"
done
keyfiles dlws-master | grep -qx etc/kubernetes/pki/apiserver.key || why_keys="$why_keys no apiserver.key in the payload;"
if [ -z "$why_keys" ]; then pass keys_0600_read_from_disk; else fail keys_0600_read_from_disk "$why_keys"; fi
if [ -z "$why_certs" ]; then pass certificates_on_disk_are_the_pki; else fail certificates_on_disk_are_the_pki "$why_certs"; fi
if [ "$(answer dlws-master:image)" = "$hk_sum" ] && [ -z "$(answer dlws-worker1:image)" ]; then
	pass container_images_in_images_dir
else
	fail container_images_in_images_dir "master: $(answer dlws-master:image)"
fi
# ROOT's file system fills the grown partition (it was ~30M in the image).
blocks=$(answer dlws-master:statvfs | awk '$1 == "blocks:" {print $2}')
bsize=$(answer dlws-master:statvfs | awk '$1 == "bsize:" {print $2}')
wblocks=$(answer dlws-worker1:statvfs | awk '$1 == "blocks:" {print $2}')
if [ -n "$blocks" ] && [ $((blocks * bsize)) -gt $((70 << 20)) ] && [ $((wblocks * bsize)) -lt $((40 << 20)) ]; then
	pass root_file_system_grown
else
	fail root_file_system_grown "master ROOT $blocks x $bsize, worker ROOT $wblocks blocks"
fi
# --- boot: a pre-installed disk boots by itself, network off -------------------
# The default base's installed-system mode (root=LABEL=ROOT, as Flatcar's
# GRUB passes it; base/README.md) finds ROOT and OEM, mounts them read-only
# and reports what Flatcar's first boot reads (Ignition: OEM config.ign;
# coreos-cloudinit: ROOT user_data). Only the disk: no payload initrd, no NIC.
base=$ROOT/out/base
if [ -n "${DLWS_ASAN_PASS:-}" ]; then
	# What a boot proves is the base's reading of the disk: no tool code runs.
	echo "ran in the plain pass: installed_disk_boots (no dlws-mkimage code runs in a boot)"
elif ! command -v qemu-system-x86_64 >/dev/null; then
	skip installed_disk_boots "qemu-system-x86_64 is not installed (qemu-system-x86)"
elif [ ! -f "$base/vmlinuz" ] || [ ! -f "$base/initrd.img" ]; then
	fail installed_disk_boots "no default base in $base (run 'make base')"
else
	. "$ROOT/tests/lib/qemu-boot.sh"
	boot_logs=${DLWS_TEST_LOGS:-$ROOT/out/test-logs}
	mkdir -p "$boot_logs"
	# boot_disk NAME DISK ROOT: boots DISK alone with root=ROOT; its console
	# is in $WORK/console-NAME.
	boot_disk() {
		local log=$boot_logs/disk-$1.log rc
		qemu_boot "disk-$1" 120 "$log" -- -kernel "$base/vmlinuz" -initrd "$base/initrd.img" \
			-append "console=ttyS0 panic=1 root=$3" -drive "file=$2,format=raw,if=virtio" -nic none
		rc=$?
		echo "boot of $1 took ${QEMU_BOOT_SECS}s (end: $QEMU_BOOT_END)"
		console_text "$log" >"$WORK/console-$1"
		[ $rc -eq 0 ] && [ "$QEMU_BOOT_END" = poweroff ] && return 0
		fail "installed_disk_boots_$1" "QEMU ended with $rc ($QEMU_BOOT_END); console log kept at $log"
		return 1
	}
	# line_in NAME LINE: the console of boot NAME has exactly LINE.
	line_in() { grep -qxF -- "$2" "$WORK/console-$1"; }
	seg=out/master-initrd/node-dlws-master.cpio.zst
	want_ud=$(segment_cat $seg usr/share/oem/dlws/rootfs/var/lib/flatcar-install/user_data | sha)
	want_ign=$(segment_cat $seg usr/share/oem/config.ign | sha)
	# Made before the first boot: a copy of the master's disk without user_data.
	cp --sparse=always $m "$WORK/no-user-data.img"
	guestfish -a "$WORK/no-user-data.img" run : mount /dev/sda9 / : rm /var/lib/flatcar-install/user_data 2>"$WORK/rm.err" ||
		fail disk_without_user_data_fails "guestfish rm failed: $(tail -2 "$WORK/rm.err")"
	if boot_disk master $m LABEL=ROOT; then
		c=$WORK/console-master
		if line_in master 'DLWS-HOSTNAME: dlws-master' && line_in master 'DLWS-INSTALLED: OK' &&
			grep -qx 'DLWS-INSTALLED: ROOT /dev/vda9 OEM /dev/vda6' "$c"; then
			pass installed_disk_boots_own_hostname
		else
			fail installed_disk_boots_own_hostname "$(grep -E '^DLWS-(HOSTNAME|INSTALLED)' "$c" | tr '\n' ' ')"
		fi
		if line_in master "DLWS-FILE: $want_ud /var/lib/flatcar-install/user_data" &&
			line_in master "DLWS-FILE: $want_ign /oem/config.ign"; then
			pass installed_disk_boot_reads_user_data_and_ignition
		else
			fail installed_disk_boot_reads_user_data_and_ignition "want $want_ud, $want_ign; $(grep -E 'user_data|config.ign' "$c" | tr '\n' ' ')"
		fi
		# The kubelet's kubeconfig and every key the node's segment carries.
		why=
		line_in master "DLWS-FILE: $(sha <keys/kubelet-dlws-master.conf) /etc/kubernetes/kubelet.conf" || why="$why kubelet.conf;"
		n=0
		for f in $(segment_list $seg | sed -n 's#^usr/share/oem/dlws/rootfs/\(etc/kubernetes/pki/.*\.key\)$#\1#p'); do
			n=$((n + 1))
			line_in master "DLWS-FILE: $(segment_cat $seg "usr/share/oem/dlws/rootfs/$f" | sha) /$f" || why="$why $f;"
		done
		[ $n -gt 0 ] || why="$why no keys in the segment;"
		if [ -z "$why" ]; then pass installed_disk_boot_reads_kubelet_keys; else fail installed_disk_boot_reads_kubelet_keys "wrong or missing:$why"; fi
	fi
	# By GPT partition name this time: the other way to find ROOT and OEM.
	if boot_disk no_user_data "$WORK/no-user-data.img" PARTLABEL=ROOT; then
		if line_in no_user_data 'DLWS-INSTALLED: FAIL no /var/lib/flatcar-install/user_data on ROOT' &&
			line_in no_user_data 'DLWS-FILE: - /var/lib/flatcar-install/user_data' &&
			line_in no_user_data 'DLWS-INSTALLED: ROOT /dev/vda9 OEM /dev/vda6' &&
			line_in no_user_data "DLWS-FILE: $want_ign /oem/config.ign" && ! line_in no_user_data 'DLWS-INSTALLED: OK'; then
			pass disk_without_user_data_fails
		else
			fail disk_without_user_data_fails "$(grep -E '^DLWS-(INSTALLED|FILE: . )' "$WORK/console-no_user_data" | tr '\n' ' ')"
		fi
	fi
fi

# --- one recipe built alone into a directory other recipes' disks are in:
# those stay (the same files, hard-linked), a foreign name is not copied.
inode() { stat -c %i "$1"; }
i1=$(inode $w1) i2=$(inode $w2)
: >out/wdisks/notes.txt
recipe master-keep ../out/os.img.bz2 'disk: { path: ../out/wdisks }'
out=$("$MK" recipes/master-keep.recipe 2>&1)
rc=$?
if [ $rc = 0 ] && [ "$(ls out/wdisks | tr '\n' ' ')" = "dlws-master.img dlws-worker1.qcow2 dlws-worker2.qcow2 " ] &&
	[ "$(inode $w1) $(inode $w2)" = "$i1 $i2" ] && grep -q "^kept 2 disks of other nodes in .*out/wdisks " <<<"$out"; then
	pass one_recipe_keeps_other_disks
else
	fail one_recipe_keeps_other_disks "rc=$rc: $out; $(ls out/wdisks)"
fi
finish
