#!/usr/bin/env bash
# payload.sh CACHE SCALE — the benchmark's payload: real ELF binaries taken
# out of Debian packages (never installed), standing in for what a master
# carries, plus a `docker save`-style archive of the eight images a
# Kubernetes v1.34.2 master runs, whose one layer is made of real files.
#
#   full   ~193 MB of ELF: kubelet <- containerd, kubectl (kubernetes-client),
#          docker, kube-proxy <- ctr, etcd, etcdctl; a ~28 MB image archive
#   small  ~20 MB of ELF: kubelet <- runc, kubectl <- containerd-shim-runc-v2;
#          a ~6 MB image archive (for developing the bench itself)
#
# The .debs are fetched once with `apt-get download` (apt checks them
# against the signed index) into CACHE/debs; the payload is made in
# CACHE/payload-SCALE and reused while it is newer than this script.
# Writes there: bin/*, images/k8s-images.tar, SHA256SUMS and files.list
# ("SRC DEST MODE" per file, SRC relative to the payload directory).
# Prints the payload directory on stdout; everything else goes to stderr.
set -euo pipefail
export LC_ALL=C

prog=bench/payload.sh
die() { printf '%s: error: %s\n' "$prog" "$*" >&2; exit 1; }
note() { printf '%s: %s\n' "$prog" "$*" >&2; }
[ $# -eq 2 ] || { printf 'usage: %s CACHE full|small\n' "$prog" >&2; exit 2; }
cache=$1 scale=$2
self=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")
root=$(cd "$(dirname "$self")/.." && pwd)

# package:path-in-package=name-in-payload:dest
case "$scale" in
full)
	bins="containerd:usr/bin/containerd=kubelet:/opt/bin/kubelet
kubernetes-client:usr/bin/kubectl=kubectl:/opt/bin/kubectl
docker.io:usr/bin/docker=docker:/opt/bin/docker
containerd:usr/bin/ctr=kube-proxy:/opt/bin/kube-proxy
etcd-server:usr/bin/etcd=etcd:/opt/bin/etcd
etcd-client:usr/bin/etcdctl=etcdctl:/opt/bin/etcdctl"
	layer="docker.io:usr/bin/dnet docker.io:usr/sbin/ovrouter" ;;
small)
	bins="runc:usr/sbin/runc=kubelet:/opt/bin/kubelet
containerd:usr/bin/containerd-shim-runc-v2=kubectl:/opt/bin/kubectl"
	layer="containerd:usr/bin/containerd-shim" ;;
*) die "unknown scale '$scale' (full or small)" ;;
esac

out=$cache/payload-$scale
if [ -f "$out/.done" ] && [ "$out/.done" -nt "$self" ] && [ "${FORCE:-0}" != 1 ]; then
	note "payload ($scale) is up to date in $out"
	printf '%s\n' "$out"
	exit 0
fi

for t in apt-get apt-cache dpkg-deb sha256sum tar; do
	command -v "$t" >/dev/null 2>&1 || die "'$t' not found; the payload is made with Debian's apt and dpkg"
done

pkgs=$( { for b in $bins; do printf '%s\n' "${b%%:*}"; done
	  for l in $layer; do printf '%s\n' "${l%%:*}"; done; } | sort -u)

mkdir -p "$cache/debs"
cache=$(cd "$cache" && pwd)
out=$cache/payload-$scale

have_deb() { compgen -G "$cache/debs/${1}_*.deb" >/dev/null; }

# vendor/ may hold some of them already (make vendor): no need to fetch twice.
need=
for p in $pkgs; do
	if ! have_deb "$p"; then
		for v in "$root"/vendor/debs/"${p}"_*.deb; do
			[ -f "$v" ] && cp "$v" "$cache/debs/"
		done
	fi
	have_deb "$p" || need="$need $p"
done

# apt-get download writes into the current directory and, as root, drops to
# _apt: download into a private directory _apt may write.
download() {
	local tmp rc=0
	tmp=$(mktemp -d "${TMPDIR:-/tmp}/dlws-bench-debs.XXXXXX")
	if [ "$(id -u)" = 0 ] && id _apt >/dev/null 2>&1; then chown _apt "$tmp" || true; fi
	# shellcheck disable=SC2086
	(cd "$tmp" && apt-get download -q $need >&2) || rc=$?
	[ "$rc" = 0 ] && mv "$tmp"/*.deb "$cache/debs/"
	rm -rf "$tmp"
	return "$rc"
}
if [ -n "$need" ]; then
	note "fetching$need (once; cached in $cache/debs)"
	if ! download; then
		[ "$(id -u)" = 0 ] || die "apt-get download$need failed (apt-get update needs root)"
		note "apt-get download failed; running apt-get update and retrying"
		apt-get update -qq || die "apt-get update failed"
		download || die "apt-get download$need failed (is the Debian mirror reachable?)"
	fi
fi

# Unpack what is needed into a fresh tree, then move it into place.
rm -rf "$out.new"
mkdir -p "$out.new/root" "$out.new/bin" "$out.new/images"
for p in $pkgs; do
	deb=$(ls -1 "$cache/debs/${p}"_*.deb | sort -V | tail -n 1)
	dpkg-deb -x "$deb" "$out.new/root/$p" || die "cannot unpack '$deb'"
	printf '%s %s\n' "$p" "$(dpkg-deb -f "$deb" Version)" >>"$out.new/PACKAGES"
done

: >"$out.new/files.list"
for b in $bins; do
	pkg=${b%%:*} rest=${b#*:}
	inpkg=${rest%%=*} rest=${rest#*=}
	name=${rest%%:*} dest=${rest#*:}
	src=$out.new/root/$pkg/$inpkg
	[ -f "$src" ] || die "$pkg does not contain /$inpkg"
	head -c 4 "$src" | grep -q 'ELF' || die "$pkg's /$inpkg is not an ELF file"
	install -m 0755 "$src" "$out.new/bin/$name"
	printf 'bin/%s %s 0755\n' "$name" "$dest" >>"$out.new/files.list"
done

# A `docker save` archive as docker 20.10 writes it: manifest.json naming
# every image (here the eight of a v1.34.2 master, sharing one layer),
# <config digest>.json, <layer id>/layer.tar, repositories. Everything at
# mtime 0 and owned by root, so the archive is the same on every run.
img=$out.new/img
mkdir -p "$img/layer/usr/local/bin"
for l in $layer; do
	src=$out.new/root/${l%%:*}/${l#*:}
	[ -f "$src" ] || die "${l%%:*} does not contain /${l#*:}"
	install -m 0755 "$src" "$img/layer/usr/local/bin/"
done
tar -C "$img/layer" --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -cf "$img/layer.tar" usr
layer_sum=$(sha256sum "$img/layer.tar" | cut -d' ' -f1)
mkdir -p "$img/save/$layer_sum"
mv "$img/layer.tar" "$img/save/$layer_sum/layer.tar"
printf '1.0' >"$img/save/$layer_sum/VERSION"
printf '{"id":"%s","created":"1970-01-01T00:00:00Z","os":"linux"}' "$layer_sum" >"$img/save/$layer_sum/json"
refs="registry.k8s.io/kube-apiserver:v1.34.2 registry.k8s.io/kube-controller-manager:v1.34.2
registry.k8s.io/kube-scheduler:v1.34.2 registry.k8s.io/kube-proxy:v1.34.2
registry.k8s.io/coredns/coredns:v1.12.1 registry.k8s.io/pause:3.10.1
ghcr.io/flannel-io/flannel:v0.27.4 ghcr.io/flannel-io/flannel-cni-plugin:v1.7.1-flannel1"
manifest='[' repos='{' sep=
for ref in $refs; do
	cfg=$(printf '{"architecture":"amd64","os":"linux","config":{"Labels":{"ref":"%s"}},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' "$ref" "$layer_sum")
	cfg_sum=$(printf '%s' "$cfg" | sha256sum | cut -d' ' -f1)
	printf '%s' "$cfg" >"$img/save/$cfg_sum.json"
	manifest="$manifest$sep{\"Config\":\"$cfg_sum.json\",\"RepoTags\":[\"$ref\"],\"Layers\":[\"$layer_sum/layer.tar\"]}"
	repos="$repos$sep\"${ref%:*}\":{\"${ref##*:}\":\"$cfg_sum\"}"
	sep=,
done
printf '%s]' "$manifest" >"$img/save/manifest.json"
printf '%s}' "$repos" >"$img/save/repositories"
tar -C "$img/save" --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -cf "$out.new/images/k8s-images.tar" .
printf 'images/k8s-images.tar\n' >"$out.new/images.list"

rm -rf "$out.new/root" "$img"
(cd "$out.new" && sha256sum bin/* images/* >SHA256SUMS)
touch "$out.new/.done"
rm -rf "$out"
mv "$out.new" "$out"
note "payload ($scale): $(du -sh --apparent-size "$out" | cut -f1) in $out"
sed 's/^/  /' "$out/PACKAGES" >&2
printf '%s\n' "$out"
