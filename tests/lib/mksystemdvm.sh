#!/usr/bin/env bash
# mksystemdvm.sh OUT.cpio.gz
#     A tiny initramfs whose PID 1 is the host's real systemd, for boot tests
#     of systemd units under QEMU (serial console only: no kernel module is
#     needed). It holds:
#       /init -> /usr/lib/systemd/systemd (the kernel runs it as PID 1)
#       /usr/lib/systemd/{systemd,systemd-shutdown}, /usr/bin/systemctl,
#       the shared libraries ldd lists for them (with their symlinks) and the
#       dynamic loader; merged /usr (/bin, /sbin, /lib, /lib64 are symlinks,
#       as on Debian 12 and Flatcar, so systemd sees no split /usr);
#       the host's unit files that a boot to multi-user.target and a
#       poweroff/reboot need (a fixed list, below; nothing from *.wants/, so
#       no host service is pulled in);
#       busybox-static as /usr/bin/sh and a few applets (sleep, cat, echo,
#       true, false);
#       /etc/os-release (the host's), an empty /etc/machine-id (systemd mounts
#       a transient one; empty means "not the first boot", so no preset run),
#       /etc/passwd and /etc/group with root only.
#     No journald, udev or D-Bus: units with StandardOutput=journal+console
#     still run (systemd logs "Failed to connect stdout to the journal
#     socket, ignoring" and discards their output), so test programs should
#     write to /dev/console themselves.
#     The systemctl a unit runs is a small wrapper that first prints
#       DLWS-TEST-SYSTEMCTL: <unit> ran 'systemctl ARGS'
#     to /dev/console (the unit is read from /proc/self/cgroup) and then execs
#     the real systemctl (/usr/lib/dlws-test/systemctl): it shows which unit
#     asked for a poweroff or reboot, without touching the unit.
#
# mksystemdvm.sh --pack DIR OUT.cpio.gz
#     Packs DIR's contents the same way, as a segment to concatenate after the
#     base (the kernel unpacks concatenated cpios into one root, later ones
#     winning): e.g. /etc/systemd/system/* and the programs under test.
#
# Deterministic: entries sorted, owner 0:0, every mtime SOURCE_DATE_EPOCH
# (default 0), cpio --reproducible, gzip -n. Environment: SYSTEMD_DIR
# (default /usr/lib/systemd), SYSTEMCTL (default /usr/bin/systemctl),
# BUSYBOX (default /bin/busybox), SOURCE_DATE_EPOCH.
set -euo pipefail
export LC_ALL=C

die() { echo "mksystemdvm: $*" >&2; exit 1; }

pack() { # pack DIR OUT
	local dir=$1 out=$2 sde=${SOURCE_DATE_EPOCH:-0}
	case "$sde" in '' | *[!0-9]*) die "SOURCE_DATE_EPOCH='$sde' is not a number" ;; esac
	find "$dir" -exec touch -h -d "@$sde" {} +
	(cd "$dir" && find . -mindepth 1 | sed 's|^\./||' | sort |
		cpio --quiet --reproducible -o -H newc -R 0:0) | gzip -n -6 >"$out.tmp"
	mv -f "$out.tmp" "$out"
}

if [ "${1:-}" = --pack ]; then
	[ $# = 3 ] || die "usage: mksystemdvm.sh --pack DIR OUT.cpio.gz"
	[ -d "$2" ] || die "$2: not a directory"
	pack "$2" "$3"
	exit 0
fi
[ $# = 1 ] || die "usage: mksystemdvm.sh OUT.cpio.gz | --pack DIR OUT.cpio.gz"
out=$1

sd=${SYSTEMD_DIR:-/usr/lib/systemd}
systemctl=${SYSTEMCTL:-/usr/bin/systemctl}
busybox=${BUSYBOX:-/bin/busybox}
for f in "$sd/systemd" "$sd/systemd-shutdown" "$systemctl"; do
	[ -x "$f" ] || die "$f not found (apt-get install systemd)"
done
[ -x "$busybox" ] || die "$busybox not found (apt-get install busybox-static)"
if ldd "$busybox" >/dev/null 2>&1; then
	die "$busybox is dynamically linked (apt-get install busybox-static)"
fi
for t in ldd cpio gzip find sort; do
	command -v "$t" >/dev/null 2>&1 || die "'$t' is not installed"
done

root=$(mktemp -d "${TMPDIR:-/tmp}/mksystemdvm.XXXXXX")
trap 'rm -rf "$root"' EXIT

# Merged /usr.
mkdir -p "$root"/usr/{bin,sbin,lib,lib64} "$root"/{etc,proc,sys,dev,run,tmp,root,var}
ln -s usr/bin "$root/bin"
ln -s usr/sbin "$root/sbin"
ln -s usr/lib "$root/lib"
ln -s usr/lib64 "$root/lib64"
ln -s ../run "$root/var/run"
chmod 1777 "$root/tmp"
chmod 0700 "$root/root"

# put SRC: copies the host file SRC to the same place under /usr in the VM
# (/lib/x -> /usr/lib/x, ...), following and copying a chain of symlinks.
put() {
	local src=$1 n=0 dir dest
	while :; do
		dir=$(readlink -f "$(dirname "$src")")
		dest=$root$dir/$(basename "$src")
		mkdir -p "$root$dir"
		if [ -L "$src" ]; then
			[ -e "$dest" ] || [ -L "$dest" ] || cp -P "$src" "$dest"
			local t
			t=$(readlink "$src")
			case "$t" in /*) src=$t ;; *) src=$dir/$t ;; esac
			n=$((n + 1))
			[ $n -lt 20 ] || die "symlink loop at $1"
		else
			[ -e "$dest" ] || cp "$src" "$dest"
			return 0
		fi
	done
}

mkdir -p "$root/usr/lib/systemd" "$root/usr/lib/dlws-test"
put "$sd/systemd"
put "$sd/systemd-shutdown"
# The real systemctl, under another name; /usr/bin/systemctl is the wrapper.
cp "$(readlink -f "$systemctl")" "$root/usr/lib/dlws-test/systemctl"
# Every shared library (and the loader) the three binaries need.
ldd "$sd/systemd" "$sd/systemd-shutdown" "$systemctl" |
	awk '/=> \// { print $3 } /^[ \t]*\/[^ ]*ld-linux/ { print $1 }' | sort -u >"$root/libs"
[ -s "$root/libs" ] || die "ldd listed no libraries for $sd/systemd"
while read -r lib; do
	put "$lib"
done <"$root/libs"
rm -f "$root/libs"
ln -s ../lib/systemd/systemd "$root/usr/sbin/init"
ln -s usr/lib/systemd/systemd "$root/init"

cat >"$root/usr/bin/systemctl" <<'EOF'
#!/bin/sh
# Test wrapper (tests/lib/mksystemdvm.sh): says which unit runs systemctl
# with which arguments, then runs the real one.
unit=host
while read -r cg; do
	case "$cg" in 0::*) unit=${cg##*/} ;; esac
done </proc/self/cgroup
echo "DLWS-TEST-SYSTEMCTL: $unit ran 'systemctl $*'" >/dev/console
exec /usr/lib/dlws-test/systemctl "$@"
EOF
chmod 0755 "$root/usr/bin/systemctl"

cp "$busybox" "$root/usr/bin/busybox"
for a in sh sleep cat echo true false; do
	ln -s busybox "$root/usr/bin/$a"
done

# The units a boot to multi-user.target and a poweroff/reboot/halt go
# through. Their dependencies outside this list (emergency.service,
# rescue.service, ...) are simply not found, which is harmless unless used.
units="basic.target ctrl-alt-del.target emergency.target exit.target final.target
  halt.target local-fs-pre.target local-fs.target multi-user.target paths.target
  poweroff.target reboot.target rescue.target shutdown.target slices.target
  sockets.target swap.target sysinit.target timers.target umount.target
  systemd-exit.service systemd-halt.service
  systemd-poweroff.service systemd-reboot.service"
mkdir -p "$root/usr/lib/systemd/system"
for u in $units; do
	[ -e "$sd/system/$u" ] || die "$sd/system/$u not found"
	cp -P "$sd/system/$u" "$root/usr/lib/systemd/system/$u"
done

cp "$(readlink -f /etc/os-release)" "$root/usr/lib/os-release"
ln -s ../usr/lib/os-release "$root/etc/os-release"
: >"$root/etc/machine-id"
echo 'root:x:0:0:root:/root:/bin/sh' >"$root/etc/passwd"
echo 'root:x:0:' >"$root/etc/group"
mkdir -p "$root/etc/systemd/system"

pack "$root" "$out"
