#!/usr/bin/env bash
# Makes the binary seeds of fuzz/corpus/ (GPT images, payload segments, a
# PXE tar, an ISO, publish bundles) and the manifest seeds that must hash
# real bytes. Their output is committed, each under 64 KiB, so the
# regression runs need none of these tools; run again (as root or not)
# after a format change:   fuzz/mkseeds.sh
# Needs sgdisk (gdisk), bsdtar (libarchive-tools), cpio, xorriso, openssl.
# Nothing secret: the one certificate is public, and no private key is made.
set -euo pipefail
cd "$(dirname "$0")/.."
c=fuzz/corpus
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export SOURCE_DATE_EPOCH=0 TZ=UTC
mkdir -p $c/agent_gpt $c/agent_manifest $c/reader $c/tarball $c/manifest

# ---- agent_gpt: the first 34 sectors (MBR, header, 128 entries) of small
# GPT disks laid out like the installer's targets; the first byte is the
# harness's control byte (sector size 0 = probe; 4 = fix CRCs).
gpt() {
	local name=$1 ctl=$2
	shift 2
	truncate -s 4M "$tmp/disk"
	sgdisk -Z "$tmp/disk" >/dev/null 2>&1 || true
	sgdisk "$@" "$tmp/disk" >/dev/null
	{ printf "\\x$ctl"; head -c $((34 * 512)) "$tmp/disk"; } >"$c/agent_gpt/$name"
	rm -f "$tmp/disk"
}
gpt flatcar-layout 00 -n 1:2048:+1M -c 1:EFI-SYSTEM -t 1:ef00 -n 2:0:+512K -c 2:BIOS-BOOT -t 2:ef02 \
	-n 6:0:+512K -c 6:OEM -n 9:0:0 -c 9:ROOT
gpt one-partition-fixcrc 04 -n 1:2048:0 -c 1:ROOT
gpt unicode-names 01 -n 1:2048:+1M -c 1:'Grüße-✓' -n 2:0:0 -c 2:'ROOT'
gpt empty-table 02 -o
# A 4096-byte-sector table: sgdisk cannot make one in a file, so move the
# header and entries of a 512-byte one and let the harness fix the CRCs.
{
	printf '\x06'
	head -c 512 "$c/agent_gpt/one-partition-fixcrc" | tail -c +2 | head -c 512
	head -c 3584 /dev/zero
	tail -c +514 "$c/agent_gpt/one-partition-fixcrc" | head -c 512 |
		python3 -c 'import sys,struct; h=bytearray(sys.stdin.buffer.read()); h[72:80]=struct.pack("<Q",2); sys.stdout.buffer.write(h)'
	head -c 3584 /dev/zero
	tail -c +1026 "$c/agent_gpt/one-partition-fixcrc" | head -c 16384
} >"$c/agent_gpt/sector-4096-fixcrc"

# ---- a payload tree as the builder lays one out (stand-in content)
p=$tmp/seg
d=$p/usr/share/oem/dlws
mkdir -p $d/manifest.d $d/rootfs/etc/kubernetes/pki $d/rootfs/opt/bin $p/usr/share/oem
printf '#!/bin/sh\necho kubectl stand-in\n' >$d/rootfs/opt/bin/kubectl
chmod 0755 $d/rootfs/opt/bin/kubectl
printf 'DLWS_HOSTNAME=dlws-master\nDLWS_IP=192.168.255.10\nDLWS_ROLE=master\n' >$d/node.env
printf '{"ignition":{"version":"3.4.0"},"storage":{"files":[]}}\n' >$p/usr/share/oem/config.ign
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout /dev/null \
	-subj /CN=kube-ca -days 3650 -out $d/rootfs/etc/kubernetes/pki/ca.crt 2>/dev/null
crt=$(base64 -w0 <$d/rootfs/etc/kubernetes/pki/ca.crt)
cat >$d/rootfs/etc/kubernetes/admin.conf <<EOT
apiVersion: v1
kind: Config
clusters:
- cluster: { certificate-authority-data: $crt, server: 'https://192.168.255.10:6443' }
  name: dlws
users:
- name: kubernetes-admin
  user: { client-certificate-data: $crt, client-key-data: bm90IGEga2V5Cg== }
EOT
chmod 0600 $d/rootfs/etc/kubernetes/admin.conf
cp recipes/templates/cloud-config.yml $d/rootfs/etc/user_data 2>/dev/null || true
(
	cd $p
	echo "# dlws payload manifest, segment 'node': sha256 size mode path"
	find usr -type f ! -path '*/manifest.d/*' | LC_ALL=C sort | while read -r f; do
		printf '%s %s %04o /%s\n' "$(sha256sum <"$f" | cut -c1-64)" "$(stat -c %s "$f")" "0$(stat -c %a "$f")" "$f"
	done
) >$tmp/manifest
cp $tmp/manifest $d/manifest.d/node
cp $tmp/manifest $c/manifest/node
segment() { (cd "$1" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet --reproducible) | gzip -n -9; }
segment $p >$tmp/node.cpio.gz
cp $tmp/node.cpio.gz $c/reader/segment-node.cpio.gz

# ---- a PXE tar: a tree with its SHA256SUMS, the segment inside
t=$tmp/pxe
mkdir -p $t/pxelinux.cfg $t/master $t/nodes
cp $tmp/node.cpio.gz $t/nodes/dlws-master.cpio.gz
printf 'stand-in kernel\n' >$t/master/vmlinuz
printf 'DEFAULT master\nLABEL master\n  KERNEL master/vmlinuz\n  APPEND initrd=master/base.img\n' >$t/pxelinux.cfg/default
printf '#!ipxe\nkernel master/vmlinuz\nboot\n' >$t/boot.ipxe
printf '{"tool":"dlws-mkimage","version":"0.1.0","built":"1970-01-01T00:00:00Z","cluster":"dlws","recipes":[{"name":"master","role":"master","recipe":"../../recipes/master.recipe","nodes":["dlws-master"],"payload_sha256":"%s","entries":[]}]}\n' \
	"$(sha256sum <$tmp/manifest | cut -c1-64)" >$t/dlws-build.json
(cd $t && find . -type f ! -name SHA256SUMS | sed 's|^\./||' | LC_ALL=C sort | xargs sha256sum >SHA256SUMS)
tar -C $tmp --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 --format=ustar -cf $c/reader/pxe.tar pxe
# An initrd-style ISO: the same tree, El Torito pointing at the kernel.
xorriso -as mkisofs -quiet -no-pad -R -V DLWS_MASTER -b master/vmlinuz -no-emul-boot -boot-load-size 1 \
	-o $tmp/out.iso $t 2>/dev/null
cp $tmp/out.iso $c/reader/small.iso

# ---- tarball: publish bundles, "<top>/<path>", SHA256SUMS at the top
b=$tmp/bundle
mkdir -p $b/pxe-20260101/master
printf 'kernel\n' >$b/pxe-20260101/master/vmlinuz
printf 'initrd\n' >$b/pxe-20260101/master/base.img
(cd $b/pxe-20260101 && sha256sum master/vmlinuz master/base.img >SHA256SUMS)
tar -C $b --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 --format=ustar -cf $c/tarball/bundle.tar pxe-20260101
ln $b/pxe-20260101/master/vmlinuz $b/pxe-20260101/master/vmlinuz.link
tar -C $b --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 --format=ustar -cf $c/tarball/hardlink.tar pxe-20260101
tar -C $b --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 --format=ustar -czf $c/tarball/bundle.tar.gz pxe-20260101

# ---- agent_manifest: lines over the harness's fake root (fuzz_agent_manifest.c)
kubectl=$(printf '#!/bin/sh\necho kubectl stand-in\n' | sha256sum | cut -c1-64)
conf=$(printf 'DLWS_INSTALL_DEVICE=auto\n' | sha256sum | cut -c1-64)
empty=$(printf '' | sha256sum | cut -c1-64)
cat >$c/agent_manifest/all-match <<EOT
# dlws payload manifest, segment 'shared': sha256 size mode path
$kubectl 33 0600 /usr/share/oem/dlws/rootfs/opt/bin/kubectl
$conf 25 0600 /usr/share/oem/dlws/install.conf
$empty 0 0600 /usr/share/oem/dlws/large/os.img.bz2
EOT
cat >$c/agent_manifest/damaged <<EOT
$kubectl 34 0755 /usr/share/oem/dlws/rootfs/opt/bin/kubectl
$empty 0 0644 /usr/share/oem/dlws/missing
${conf^^}	25	0600	/usr/share/oem/dlws/install.conf  
not a line
$empty 0 0600 /usr/share/oem/dlws
EOT

# ---- text seeds: the shipped recipes, cluster, templates and overlays, and
# what a render of them gives (cloud-configs, as the schema check sees them).
mkdir -p $c/recipe $c/cluster $c/yaml $c/template $c/cloudconfig $c/sha256sums $c/agent_conf
for r in recipes/*.recipe; do cp "$r" "$c/recipe/$(basename "$r")"; done
for r in recipes/flatcar/*.recipe; do cp "$r" "$c/recipe/flatcar-$(basename "$r")"; done
cp recipes/cluster.yaml $c/cluster/cluster.yaml
for f in recipes/*.recipe recipes/cluster.yaml recipes/templates/*.yaml recipes/templates/*.yml; do
	cp "$f" "$c/yaml/$(basename "$f")"
done
for f in recipes/templates/*; do cp "$f" "$c/template/$(basename "$f")"; done
find overlays -type f | while read -r f; do cp "$f" "$c/template/overlay-$(echo "${f#overlays/}" | tr / -)"; done
if [ -x ./dlws-mkimage ]; then
	for r in master etcd worker; do
		./dlws-mkimage render "recipes/$r.recipe" 2>/dev/null |
			awk -v out="$c/cloudconfig/rendered-$r" '/^# --- / { if (keep) exit; keep = /user_data/; next } keep { print > out }'
	done
fi
cp vendor/SHA256SUMS $c/sha256sums/vendor 2>/dev/null || true
(cd $tmp/pxe && cat SHA256SUMS) >$c/sha256sums/pxe
printf '%s *bin/kubectl\n%s  bin/etcd\n' "$kubectl" "$empty" >$c/sha256sums/binary-mode
sha=$(printf 'image' | sha256sum | cut -c1-64)
printf 'DLWS_INSTALL_DEVICE=auto\nDLWS_INSTALL_WIPE=0\nDLWS_INSTALL_IMAGE="/usr/share/oem/dlws/large/os.img.bz2"\nDLWS_INSTALL_IMAGE_SIZE=8589934592\nDLWS_INSTALL_IMAGE_SHA256=%s\nDLWS_INSTALL_MEDIUM=/dev/sr0\n' "$sha" \
	>$c/agent_conf/local-image
printf '# written by dlws-mkimage\nexport DLWS_INSTALL_DEVICE=/dev/vda\nDLWS_INSTALL_WIPE=1\nDLWS_INSTALL_IMAGE='"'"'http://192.168.255.1:8080/flatcar/os.img.bz2'"'"'\nDLWS_INSTALL_IMAGE_SIZE=1024\nDLWS_INSTALL_IMAGE_SHA256=%s\n' "$sha" \
	>$c/agent_conf/url-image

# Small seeds keep the fuzzers fast; an ISO cannot be much smaller than
# ~82 KiB (16 sectors of system area, descriptors, path tables, directories).
find $c -type f -size +96k | sed 's/^/mkseeds: too big: /' | grep . >&2 && exit 1
exit 0
