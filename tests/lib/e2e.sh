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

# List and extract payload segments with an independent reader.
segment_list() { bsdtar -tf "$1"; }
segment_cat() { bsdtar -xOf "$1" "$2"; }
