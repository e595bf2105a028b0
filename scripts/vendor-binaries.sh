#!/bin/bash
# vendor-binaries.sh DIR — put real binaries for the default recipes into
# DIR/bin, taken from Debian packages WITHOUT installing them system-wide:
#   kubectl   from kubernetes-client
#   etcd      from etcd-server
#   etcdctl   from etcd-client
# The .debs are fetched with `apt-get download` into DIR/debs (verified by
# apt against the signed package index), unpacked with `dpkg-deb -x` into
# DIR/root, and the binaries copied to DIR/bin.  DIR/SHA256SUMS and
# DIR/PACKAGES record what was vendored (for the recipes' sha256 pins).
# Idempotent: does nothing when every binary exists and is newer than this
# script (FORCE=1 redoes it).  `apt-get update` is run only when
# `apt-get download` fails (it needs root).
set -euo pipefail
export LC_ALL=C

prog=vendor-binaries.sh
die() { printf '%s: error: %s\n' "$prog" "$*" >&2; exit 1; }
[ $# -eq 1 ] || { printf 'usage: %s DIR\n' "$prog" >&2; exit 2; }
dir=$1
self=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")

# package:binary (path inside the package)
wanted="kubernetes-client:usr/bin/kubectl etcd-server:usr/bin/etcd etcd-client:usr/bin/etcdctl"

uptodate=1
for w in $wanted; do
    b=$dir/bin/${w##*/}
    { [ -x "$b" ] && [ "$b" -nt "$self" ]; } || uptodate=0
done
if [ "$uptodate" = 1 ] && [ "${FORCE:-0}" != 1 ]; then
    echo "$prog: $dir/bin is up to date"
    exit 0
fi

for t in apt-get apt-cache dpkg-deb sha256sum; do
    command -v "$t" >/dev/null 2>&1 || die "'$t' not found; this script needs Debian's apt and dpkg"
done

pkgs=
for w in $wanted; do pkgs="$pkgs ${w%%:*}"; done

check_known() {   # is every package in apt's index?
    local p missing=
    for p in $pkgs; do
        apt-cache show "$p" >/dev/null 2>&1 || missing="$missing $p"
    done
    printf '%s' "$missing"
}
missing=$(check_known)
if [ -n "$missing" ]; then
    if [ "$(id -u)" = 0 ]; then
        echo "$prog: not in apt's package index:$missing; running apt-get update"
        apt-get update -qq || die "apt-get update failed"
        missing=$(check_known)
    fi
fi
if [ -n "$missing" ]; then
    hint=
    case " $missing " in
        *" kubernetes-client "*)
            hint=" (packages that mention kubectl: $(apt-cache search --names-only kubectl 2>/dev/null |
                cut -d' ' -f1 | tr '\n' ' '))" ;;
    esac
    die "no such package in this system's Debian release:$missing$hint"
fi

mkdir -p "$dir/debs" "$dir/bin" "$dir/root"
dir=$(cd "$dir" && pwd)

# apt-get download writes into the current directory; as root it drops
# privileges to _apt, so download into a private directory _apt may write.
download() {
    local tmp rc=0
    tmp=$(mktemp -d "${TMPDIR:-/tmp}/dlws-vendor.XXXXXX")
    if [ "$(id -u)" = 0 ] && id _apt >/dev/null 2>&1; then
        chown _apt "$tmp" || true
    fi
    # shellcheck disable=SC2086
    (cd "$tmp" && apt-get download -q $pkgs) || rc=$?
    if [ "$rc" = 0 ]; then
        rm -f "$dir"/debs/*.deb
        mv "$tmp"/*.deb "$dir/debs/"
    fi
    rm -rf "$tmp"
    return "$rc"
}
if ! download; then
    [ "$(id -u)" = 0 ] || die "apt-get download failed (and apt-get update needs root)"
    echo "$prog: apt-get download failed; running apt-get update and retrying"
    apt-get update -qq || die "apt-get update failed"
    download || die "apt-get download$pkgs failed"
fi

rm -rf "$dir/root"
mkdir -p "$dir/root"
: > "$dir/PACKAGES.tmp"
for deb in "$dir"/debs/*.deb; do
    dpkg-deb -x "$deb" "$dir/root"
    printf '%s %s %s\n' "$(dpkg-deb -f "$deb" Package)" "$(dpkg-deb -f "$deb" Version)" \
        "$(basename "$deb")" >> "$dir/PACKAGES.tmp"
done
: > "$dir/SHA256SUMS.tmp"
for w in $wanted; do
    src=$dir/root/${w#*:}
    name=${w##*/}
    [ -f "$src" ] || die "${w%%:*} does not contain /${w#*:}"
    install -m 0755 "$src" "$dir/bin/.$name.tmp"
    mv -f "$dir/bin/.$name.tmp" "$dir/bin/$name"
    (cd "$dir/bin" && sha256sum "$name") >> "$dir/SHA256SUMS.tmp"
done
mv -f "$dir/PACKAGES.tmp" "$dir/PACKAGES"
mv -f "$dir/SHA256SUMS.tmp" "$dir/SHA256SUMS"

"$dir/bin/kubectl" version --client --short >/dev/null 2>&1 ||
    "$dir/bin/kubectl" version --client >/dev/null 2>&1 ||
    die "$dir/bin/kubectl does not run"
"$dir/bin/etcd" --version >/dev/null 2>&1 || die "$dir/bin/etcd does not run"
echo "$prog: vendored into $dir/bin:"
sed 's/^/  /' "$dir/PACKAGES"
sed 's/^/  /' "$dir/SHA256SUMS"
