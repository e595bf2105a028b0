#!/usr/bin/env bash
# systemd-sysext images (recipe key `sysext:`): one the builder makes from
# pinned stand-in binaries and one prebuilt with mksquashfs, read back with
# independent tools: unsquashfs (owners, modes, sizes, mtimes, content, the
# extension-release), systemd-dissect (does systemd take it as a system
# extension, under which name), bsdtar on the payload segment (the images at
# /opt/extensions, the /etc/extensions links), the manifest; a second build
# gives the same bytes; bad inputs exit 1 with their exact message and leave
# nothing behind.
. "$(dirname "$0")/../lib/e2e.sh"
cd "$WORK"
export TZ=UTC SOURCE_DATE_EPOCH=1700000000
# The build's temp images go here: it must be empty after every build.
export TMPDIR=$WORK/tmp
mkdir -p "$TMPDIR"

if ! command -v mksquashfs >/dev/null || ! command -v unsquashfs >/dev/null; then
	skip sysext "squashfs-tools is not installed (make deps)"
	finish
fi

# The project: stand-in base, a cluster with one master and one worker,
# stand-in Kubernetes binaries and units, a prebuilt extension.
mkdir -p p/base p/recipes p/bin p/units p/images p/nvidia/usr/bin p/nvidia/usr/lib/extension-release.d
cd p
printf 'stand-in kernel\n' >base/vmlinuz
printf 'stand-in initrd\n' >base/initrd.img
cat >recipes/cluster.yaml <<'EOF'
cluster_name: lab
masters:
  - { hostname: m1, ip: 192.168.255.10 }
workers:
  - { hostname: w1, ip: 192.168.255.21 }
EOF
for b in kubelet kubeadm kubectl bridge; do
	printf '#!/bin/sh\necho %s stand-in\n' "$b" >"bin/$b"
done
# Larger than a block (128 KiB), so data blocks and a fragment are both used.
head -c 300000 /dev/urandom >bin/kubelet
printf '[Service]\nExecStart=/usr/bin/kubelet\n' >units/kubelet.service
printf '[Service]\nEnvironment=KUBELET_KUBECONFIG_ARGS=--kubeconfig=/etc/kubernetes/kubelet.conf\n' >units/10-kubeadm.conf
(cd bin && sha256sum kubelet kubeadm kubectl bridge >SHA256SUMS)
# A prebuilt extension (e.g. an NVIDIA driver for GPU workers), made as
# the bakery does: mksquashfs, all files root's, extension-release.<name>.
printf '#!/bin/sh\necho nvidia-smi stand-in\n' >nvidia/usr/bin/nvidia-smi
chmod 0755 nvidia/usr/bin/nvidia-smi
printf 'ID=_any\nARCHITECTURE=x86-64\n' >nvidia/usr/lib/extension-release.d/extension-release.nvidia-driver
mksquashfs nvidia images/nvidia-driver-570.raw -all-root -noappend -quiet >/dev/null
(cd images && sha256sum nvidia-driver-570.raw >SHA256SUMS)
KUBELET_SUM=$(sha256sum <bin/kubelet | cut -d' ' -f1)
NVIDIA_SUM=$(sha256sum <images/nvidia-driver-570.raw | cut -d' ' -f1)

cat >recipes/worker.recipe <<EOF
recipe: 1
name: worker
role: worker
cluster: cluster.yaml
base: { kernel: ../base/vmlinuz, initrd: ../base/initrd.img }
pki: { dir: ../keys }
sysext:
  - name: kubernetes
    version: v1.34.2
    reload_manager: true
    files:
      - { src: ../bin/kubelet, dest: /usr/bin/kubelet, mode: "0755", sha256: $KUBELET_SUM }
      - { src: ../bin/kubeadm, dest: /usr/bin/kubeadm, mode: "0755", sha256sums: ../bin/SHA256SUMS }
      - { src: ../bin/kubectl, dest: /usr/bin/kubectl, mode: "0755", sha256sums: ../bin/SHA256SUMS }
      - { src: ../bin/bridge, dest: /opt/cni/bin/bridge, mode: "0755", sha256sums: ../bin/SHA256SUMS }
      - { src: ../units/kubelet.service, dest: /usr/lib/systemd/system/kubelet.service, sha256: $(sha256sum <units/kubelet.service | cut -d' ' -f1) }
      - { src: ../units/10-kubeadm.conf, dest: /usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf, sha256: $(sha256sum <units/10-kubeadm.conf | cut -d' ' -f1) }
  - { name: nvidia-driver, src: ../images/nvidia-driver-570.raw, sha256sums: ../images/SHA256SUMS }
outputs:
  initrd: { path: ../out/worker-initrd }
EOF
# A node with a kubelet runs pods: the build wants their images too.
{ echo "images:"; k8s_images k8s-images worker; } >>recipes/worker.recipe

t0=$(date +%s%N)
if "$MK" -q recipes/worker.recipe; then
	pass build_with_sysext
else
	fail build_with_sysext "the recipe did not build"
	finish
fi
t1=$(date +%s%N)
echo "# the first build took $(( (t1 - t0) / 1000000 )) ms"
check temp_images_removed bash -c "[ -z \"\$(ls -A '$TMPDIR')\" ]"

seg=out/worker-initrd/shared.cpio.zst
R=usr/share/oem/dlws/rootfs
K=opt/extensions/kubernetes/kubernetes-v1.34.2-x86-64.raw
N=opt/extensions/nvidia-driver/nvidia-driver-570.raw
listing=$(bsdtar -tvf "$seg")
check image_in_payload grep -qE "^-rw-r--r-- .* 0 +0 .* $R/$K\$" <<<"$listing"
check prebuilt_in_payload grep -qE "^-rw-r--r-- .* 0 +0 .* $R/$N\$" <<<"$listing"
check link_kubernetes grep -qE "^l.* $R/etc/extensions/kubernetes.raw -> /$K\$" <<<"$listing"
check link_prebuilt grep -qE "^l.* $R/etc/extensions/nvidia-driver.raw -> /$N\$" <<<"$listing"
x=$WORK/x
mkdir -p "$x"
bsdtar -xf "$seg" -C "$x"
img=$x/$R/$K
check prebuilt_unchanged cmp -s "$x/$R/$N" images/nvidia-driver-570.raw
manifest=$x/usr/share/oem/dlws/manifest.d/shared
check manifest_lists_image grep -qx "$(sha256sum <"$img" | cut -d' ' -f1) $(stat -c %s "$img") 0644 /$R/$K" "$manifest"
check manifest_lists_prebuilt grep -qx "$NVIDIA_SUM $(stat -c %s images/nvidia-driver-570.raw) 0644 /$R/$N" "$manifest"

# The made image, read by unsquashfs: every entry, owner, mode, size and
# mtime (SOURCE_DATE_EPOCH), sorted; nothing outside /usr and /opt.
got=$(unsquashfs -lln "$img" | awk '{ print $1, $2, ($1 ~ /^d/ ? "-" : $3), $4, $5, $6 }')
want="drwxr-xr-x 0/0 - 2023-11-14 22:13 squashfs-root
drwxr-xr-x 0/0 - 2023-11-14 22:13 squashfs-root/opt
drwxr-xr-x 0/0 - 2023-11-14 22:13 squashfs-root/opt/cni
drwxr-xr-x 0/0 - 2023-11-14 22:13 squashfs-root/opt/cni/bin
-rwxr-xr-x 0/0 $(stat -c %s bin/bridge) 2023-11-14 22:13 squashfs-root/opt/cni/bin/bridge
drwxr-xr-x 0/0 - 2023-11-14 22:13 squashfs-root/usr
drwxr-xr-x 0/0 - 2023-11-14 22:13 squashfs-root/usr/bin
-rwxr-xr-x 0/0 $(stat -c %s bin/kubeadm) 2023-11-14 22:13 squashfs-root/usr/bin/kubeadm
-rwxr-xr-x 0/0 $(stat -c %s bin/kubectl) 2023-11-14 22:13 squashfs-root/usr/bin/kubectl
-rwxr-xr-x 0/0 300000 2023-11-14 22:13 squashfs-root/usr/bin/kubelet
drwxr-xr-x 0/0 - 2023-11-14 22:13 squashfs-root/usr/lib
drwxr-xr-x 0/0 - 2023-11-14 22:13 squashfs-root/usr/lib/extension-release.d
-rw-r--r-- 0/0 75 2023-11-14 22:13 squashfs-root/usr/lib/extension-release.d/extension-release.kubernetes
drwxr-xr-x 0/0 - 2023-11-14 22:13 squashfs-root/usr/lib/systemd
drwxr-xr-x 0/0 - 2023-11-14 22:13 squashfs-root/usr/lib/systemd/system
-rw-r--r-- 0/0 $(stat -c %s units/kubelet.service) 2023-11-14 22:13 squashfs-root/usr/lib/systemd/system/kubelet.service
drwxr-xr-x 0/0 - 2023-11-14 22:13 squashfs-root/usr/lib/systemd/system/kubelet.service.d
-rw-r--r-- 0/0 $(stat -c %s units/10-kubeadm.conf) 2023-11-14 22:13 squashfs-root/usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf"
if [ "$got" = "$want" ]; then
	pass image_listing
else
	fail image_listing "unsquashfs -lln differs: $(diff <(echo "$want") <(echo "$got") | tr '\n' ' ')"
fi
release=$(unsquashfs -cat "$img" usr/lib/extension-release.d/extension-release.kubernetes)
if [ "$release" = $'ID=flatcar\nSYSEXT_LEVEL=1.0\nARCHITECTURE=x86-64\nEXTENSION_RELOAD_MANAGER=1' ]; then
	pass extension_release
else
	fail extension_release "got: $release"
fi
same=1
for f in usr/bin/kubelet:bin/kubelet usr/bin/kubeadm:bin/kubeadm usr/bin/kubectl:bin/kubectl opt/cni/bin/bridge:bin/bridge \
	usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf:units/10-kubeadm.conf; do
	unsquashfs -cat "$img" "${f%%:*}" | cmp -s - "${f#*:}" || { same=0; echo "differs: ${f%%:*}"; }
done
if [ $same = 1 ]; then pass image_content_equals_sources; else fail image_content_equals_sources "a file differs from its source"; fi
check image_padded_to_4k bash -c "[ \$(( \$(stat -c %s '$img') % 4096 )) = 0 ]"

# systemd's own reader: the image is a system extension under the name of
# its /etc/extensions link, and not under its versioned file name (the
# extension-release must match the image name).
if ! command -v systemd-dissect >/dev/null; then
	skip systemd_dissect "systemd-dissect is not installed (Debian package systemd-container: make deps)"
else
	mkdir -p "$WORK/ext"
	ln -s "$img" "$WORK/ext/kubernetes.raw"
	ln -s "$x/$R/$N" "$WORK/ext/nvidia-driver.raw"
	if ! out=$(systemd-dissect --json=short "$WORK/ext/kubernetes.raw" 2>&1); then
		# It attaches the image to a loop device: root and /dev/loop-control.
		skip systemd_dissect "systemd-dissect cannot attach a loop device here: $out"
	else
		json_is() { jq -e "$1" <<<"$2" >/dev/null || { echo "$2"; return 1; }; }
		check dissect_is_system_extension json_is '.useSystemExtension == true and .mounts[0].fstype == "squashfs"' "$out"
		check dissect_extension_release json_is \
			'.extensionRelease == ["ID=flatcar","SYSEXT_LEVEL=1.0","ARCHITECTURE=x86-64","EXTENSION_RELOAD_MANAGER=1"]' "$out"
		out=$(systemd-dissect --json=short "$img" 2>&1)
		check dissect_name_must_match json_is '.useSystemExtension == false' "$out"
		out=$(systemd-dissect --json=short "$WORK/ext/nvidia-driver.raw" 2>&1)
		check dissect_prebuilt json_is '.useSystemExtension == true and .extensionRelease == ["ID=_any","ARCHITECTURE=x86-64"]' "$out"
	fi
fi

# Identical inputs, identical bytes: the image and the segment.
first=$(sha256sum <"$img" | cut -d' ' -f1)
sha256sum out/worker-initrd/*.cpio.zst >"$WORK/first"
"$MK" -q recipes/worker.recipe
check reproducible_segments sha256sum -c --quiet "$WORK/first"
mkdir -p "$WORK/x2"
bsdtar -xf "$seg" -C "$WORK/x2"
check reproducible_image [ "$(sha256sum <"$WORK/x2/$R/$K" | cut -d' ' -f1)" = "$first" ]

# On an ISO, a large image stays on the medium like any large file: the
# manifest lists it under dlws/large, the link stays in the initrd.
if [ ! -e /usr/lib/ISOLINUX/isolinux.bin ] || ! command -v xorriso >/dev/null; then
	skip iso_keeps_image_on_medium "isolinux or xorriso is not installed (make deps)"
else
	sed -e 's|^  initrd: .*|  iso: { path: ../out/w.iso, large_file_size: 64K }|' recipes/worker.recipe >recipes/iso.recipe
	if "$MK" -q recipes/iso.recipe; then
		L=usr/share/oem/dlws/large/rootfs/$K
		bsdtar -xOf out/w.iso worker/shared.cpio.zst >"$WORK/iso-shared.cpio.zst"
		check iso_image_on_medium bash -c "bsdtar -xOf out/w.iso dlws/large/rootfs/$K | cmp -s - '$img'"
		check iso_manifest_lists_large grep -qx "$first $(stat -c %s "$img") 0644 /$L" \
			<(bsdtar -xOf "$WORK/iso-shared.cpio.zst" usr/share/oem/dlws/manifest.d/shared)
		check iso_link_in_initrd grep -qE "^l.* $R/etc/extensions/kubernetes.raw -> /$K\$" <(bsdtar -tvf "$WORK/iso-shared.cpio.zst")
		check iso_temp_images_removed bash -c "[ -z \"\$(ls -A '$TMPDIR')\" ]"
	else
		fail iso_keeps_image_on_medium "the ISO recipe did not build"
	fi
fi

# Bad inputs: exit 1, the exact messages, no output and no temp image left.
# case_ NAME EXPECTED-STDERR MUTATION: the mutation edits a copy of the
# recipe (recipes/bad.recipe, writing ../out/bad).
case_() {
	local name=$1 expected=$2 mutation=$3
	sed -e 's|../out/worker-initrd|../out/bad|' recipes/worker.recipe >recipes/bad.recipe
	(eval "$mutation") || { fail "$name" "mutation failed"; return; }
	local err rc
	err=$("$MK" -q recipes/bad.recipe 2>&1 >/dev/null)
	rc=$?
	if [ $rc -ne 1 ]; then
		fail "$name" "exit status $rc, expected 1 (stderr: $err)"
	elif [ "$err" != "$expected" ]; then
		fail "$name" "expected: $expected
got: $err"
	elif [ -e out/bad ] || [ -e out/bad.tmp ] || [ -n "$(ls -A "$TMPDIR")" ]; then
		fail "$name" "left behind: $(ls -d out/bad* 2>/dev/null) $(ls -A "$TMPDIR")"
	else
		pass "$name"
	fi
	rm -rf "$TMPDIR" out/bad out/bad.tmp && mkdir -p "$TMPDIR"
}
B=recipes/bad.recipe
BIN_BAD=$(printf 'tampered\n' | sha256sum | cut -d' ' -f1)
case_ bad_wrong_sha256_of_file \
	"$B:12:9: error: sha256 mismatch for 'recipes/../bin/kubelet': expected $BIN_BAD, got $KUBELET_SUM" \
	"sed -i 's/$KUBELET_SUM/$BIN_BAD/' $B"
case_ bad_wrong_sha256_of_prebuilt \
	"$B:18:5: error: sha256 mismatch for 'recipes/../images/nvidia-driver-570.raw': expected $BIN_BAD, got $NVIDIA_SUM" \
	"sed -i 's|sha256sums: ../images/SHA256SUMS|sha256: $BIN_BAD|' $B"
case_ bad_dest_outside_usr_opt \
	"$B:15:37: error: 'dest' '/etc/cni/bridge' is not below /usr or /opt, the only trees systemd-sysext merges" \
	"sed -i 's|dest: /opt/cni/bin/bridge|dest: /etc/cni/bridge|' $B"
case_ bad_unknown_key \
	"$B:9:5: error: unknown key 'verison' in sysext entry (did you mean 'version'?)
$B:8:5: error: missing required key 'version' in sysext entry" \
	"sed -i 's/^    version:/    verison:/' $B"
case_ bad_missing_name \
	"$B:18:5: error: missing required key 'name' in sysext entry" \
	"sed -i 's/{ name: nvidia-driver, /{ /' $B"
case_ bad_image_name \
	"$B:8:11: error: invalid image name 'kube/rnetes' (up to 64 letters, digits, '.', '_' and '-', starting with a letter or digit, without '.raw')" \
	"sed -i 's|name: kubernetes|name: kube/rnetes|' $B"
case_ bad_src_and_files \
	"$B:12:7: error: give either 'src' (a prebuilt image) or 'files' (an image to make), not both" \
	"sed -i 's|^    reload_manager: true|    src: ../images/nvidia-driver-570.raw|' $B"
case_ bad_prebuilt_name_mismatch \
	"$B:18:13: error: 'recipes/../images/nvidia-driver-570.raw' has no 'usr/lib/extension-release.d/extension-release.nvidia': systemd-sysext would not merge it as 'nvidia'
$B:18:13: note: 'usr/lib/extension-release.d' holds 'extension-release.nvidia-driver'" \
	"sed -i 's|name: nvidia-driver,|name: nvidia,|' $B"
# An extension for another machine: systemd-sysext would not merge it on
# the x86-64 nodes, which would come up without what it carries.
mkdir -p arm/usr/bin arm/usr/lib/extension-release.d
printf '#!/bin/sh\necho arm stand-in\n' >arm/usr/bin/nvidia-smi
printf 'ID=_any\nARCHITECTURE="arm64"\n' >arm/usr/lib/extension-release.d/extension-release.nvidia-driver
mksquashfs arm images/nvidia-arm64.raw -all-root -noappend -quiet >/dev/null
ARM_SUM=$(sha256sum <images/nvidia-arm64.raw | cut -d' ' -f1)
case_ bad_prebuilt_other_architecture \
	"$B:18:13: error: 'recipes/../images/nvidia-arm64.raw' is for ARCHITECTURE=arm64: systemd-sysext would not merge it on x86-64 nodes" \
	"sed -i 's|src: ../images/nvidia-driver-570.raw, sha256sums: ../images/SHA256SUMS|src: ../images/nvidia-arm64.raw, sha256: $ARM_SUM|' $B"
rm -f recipes/bad.recipe
finish
