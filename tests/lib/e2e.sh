# Sourced by tests/e2e/*.sh: a fresh temp dir per test script, PASS/FAIL
# reporting, and a small project fixture built from the shipped recipes.
# No pipefail: "cmd | grep -q" would fail at random when grep quits early
# and cmd dies of SIGPIPE.
set -u
ROOT=${DLWS_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
MK=${DLWS_MKIMAGE:-$ROOT/dlws-mkimage}
WORK=$(mktemp -d /tmp/dlws-e2e.XXXXXX)
KEEP_WORK=0
FAILED=0
trap '[ "$KEEP_WORK" = 1 ] || rm -rf "$WORK"' EXIT
. "$ROOT/tests/lib/flip.sh"

pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; FAILED=1; }
skip() { echo "SKIP $1: $2"; }
finish() { exit "$FAILED"; }

# check NAME CMD...: PASS when CMD succeeds.
check() {
	local name=$1
	shift
	if "$@"; then pass "$name"; else fail "$name" "'$*' failed"; fi
}

# A copy of the shipped recipes, templates and overlays, with a stand-in
# base (the build packages it without booting it) and small stand-in
# binaries pinned in vendor/SHA256SUMS, like `make vendor` writes.
make_project() {
	local dir=$1
	mkdir -p "$dir/out/base" "$dir/vendor/bin"
	cp -r "$ROOT/recipes" "$ROOT/overlays" "$dir/"
	printf 'stand-in kernel\n' >"$dir/out/base/vmlinuz"
	printf 'stand-in initrd\n' >"$dir/out/base/initrd.img"
	for b in kubectl etcd etcdctl; do
		printf '#!/bin/sh\necho %s stand-in\n' "$b" >"$dir/vendor/bin/$b"
		chmod 0755 "$dir/vendor/bin/$b"
	done
	(cd "$dir/vendor/bin" && sha256sum kubectl etcd etcdctl >../SHA256SUMS)
}

# pxe_tar DIR: the project's recipes also write <pxe path>.tar
# (outputs.pxe.tar), for the tests of the tarball.
pxe_tar() {
	sed -i 's|^\(  pxe: { path: [^ ,}]*\)|\1, tar: true|' "$1"/recipes/*.recipe
	grep -q 'pxe: { path: [^ ]*, tar: true' "$1/recipes/master.recipe" || { fail pxe_tar "no outputs.pxe line in $1/recipes"; finish; }
}

# List and extract payload segments with an independent reader.
segment_list() { bsdtar -tf "$1"; }
segment_cat() { bsdtar -xOf "$1" "$2"; }

# k8s_images DIR [ROLE]: `docker save` stand-ins (a manifest.json naming the
# image, no layers) of every image Kubernetes v1.34.2 with flannel runs on
# ROLE (master: all eight; worker: kube-proxy, coredns, pause, flannel and
# its CNI plugin), as the shipped cluster values pin them, one archive each
# with DIR/SHA256SUMS; prints the recipe's images: entries (paths relative
# to a recipe in recipes/, DIR relative to the project).
k8s_images() {
	local dir=$1 role=${2:-master} name ref d
	local -a all=(
		kube-apiserver=registry.k8s.io/kube-apiserver:v1.34.2
		kube-controller-manager=registry.k8s.io/kube-controller-manager:v1.34.2
		kube-scheduler=registry.k8s.io/kube-scheduler:v1.34.2
		kube-proxy=registry.k8s.io/kube-proxy:v1.34.2
		coredns=registry.k8s.io/coredns/coredns:v1.12.1
		pause=registry.k8s.io/pause:3.10.1
		flannel=ghcr.io/flannel-io/flannel:v0.27.4
		flannel-cni-plugin=ghcr.io/flannel-io/flannel-cni-plugin:v1.7.1-flannel1
	)
	mkdir -p "$dir"
	for pair in "${all[@]}"; do
		name=${pair%%=*} ref=${pair#*=}
		case "$role:$name" in worker:kube-apiserver|worker:kube-controller-manager|worker:kube-scheduler) continue ;; esac
		d=$(mktemp -d "$WORK/img.XXXXXX")
		printf '{"architecture":"amd64","os":"linux"}' >"$d/config.json"
		printf '[{"Config":"config.json","RepoTags":["%s"],"Layers":[]}]' "$ref" >"$d/manifest.json"
		tar -C "$d" -cf "$dir/$name.tar" config.json manifest.json
		rm -rf "$d"
		printf '  - { src: ../%s/%s.tar, sha256sums: ../%s/SHA256SUMS }\n' "$dir" "$name" "$dir"
	done
	(cd "$dir" && sha256sum -- *.tar >SHA256SUMS)
}

# image_standin FILE REF: a `docker save` archive of image REF with one
# small layer, as a recipe's images: entry must name one.
image_standin() {
	local d
	d=$(mktemp -d "$WORK/img.XXXXXX")
	echo layer >"$d/file" && tar -C "$d" -cf "$d/layer.tar" file
	printf '{"architecture":"amd64","os":"linux"}' >"$d/config.json"
	printf '[{"Config":"config.json","RepoTags":["%s"],"Layers":["layer.tar"]}]' "$2" >"$d/manifest.json"
	tar -C "$d" -cf "$1" config.json manifest.json layer.tar
	rm -rf "$d"
}

# supplied_standins DIR: stand-ins for what recipes/flatcar/ reads from
# supplied/ besides sysexts and images: Flatcar's PXE kernel and initrd, its
# disk image, etcd's binaries (the tests make the rest to suit themselves).
supplied_standins() {
	local s=$1 b
	mkdir -p "$s/flatcar" "$s/sysext" "$s/etcd" "$s/images"
	printf 'stand-in Flatcar PXE kernel\n' >"$s/flatcar/flatcar_production_pxe.vmlinuz"
	printf 'stand-in Flatcar PXE initrd\n' >"$s/flatcar/flatcar_production_pxe_image.cpio.gz"
	head -c 1048576 /dev/zero | bzip2 >"$s/flatcar/flatcar_production_image.bin.bz2"
	for b in etcd etcdctl; do
		printf '#!/bin/sh\necho %s\n' "$b" >"$s/etcd/$b"
		chmod 0755 "$s/etcd/$b"
	done
}
