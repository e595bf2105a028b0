#!/bin/sh
# dlws-payload: puts a node's payload in place on its live system.
#
# The same script runs on Flatcar (from the units of the payload's Ignition
# config: dlws-payload.service, dlws-medium.service) and on the default base
# (its /init), so the boot tests prove the flow production runs. POSIX sh,
# using only what both have: Flatcar's /usr/bin (coreutils, util-linux) and
# busybox.
#
#   dlws-payload place   verify the payload files that came in the initrd,
#                        then copy the rootfs into / and link the container
#                        images into /var/lib/dlws/images (early boot:
#                        before modules-load, sysctl, containerd, kubelet)
#   dlws-payload hostname  name the node before the kubelet starts: the name
#                        its media give, else (an unlisted worker) one made
#                        from its MAC unless DHCP named it
#   dlws-payload large   find the boot medium by its medium id (read-only),
#                        bind its dlws/large at /usr/share/oem/dlws/large,
#                        verify the large files and link them into place
#                        (after udev: the medium must have appeared)
#
# Console lines (the interface tests and operators rely on; base/README.md):
#   DLWS-FILE: <sha256|-> <path>        every manifest line checked
#   DLWS-VERIFY: FAIL <path>: <reason>  one per failed line
#   DLWS-PAYLOAD: OK <n> files | FAIL <k> of <n> files | NONE     (place)
#   DLWS-MEDIUM: <device> (<fstype>) | NOT FOUND (...)             (large)
#   DLWS-LARGE: OK <n> files | FAIL <k> of <n> files               (large)
# Exit status: 0 when everything verified (or there was nothing to do), 1
# otherwise; nothing is copied or linked from a payload that failed.
#
# Kernel command line: dlws.medium=LABEL (try that label first),
# dlws.medium_timeout=N (seconds to wait for the medium, default 20).
# Environment: DLWS_ROOT (default /): where the live root is, for tests.

PATH=/usr/sbin:/usr/bin:/sbin:/bin
export PATH
umask 022

ROOT=${DLWS_ROOT:-}
OEM=$ROOT/usr/share/oem
DLWS=$OEM/dlws
# Manifest paths are absolute on the live system; $ROOT prefixes them here.
LARGE_PATH=/usr/share/oem/dlws/large
LARGE=$ROOT$LARGE_PATH
IMAGES=$ROOT/var/lib/dlws/images
MEDIUM_MNT=$ROOT/run/dlws/medium
CR=$(printf '\r')

say() { printf '%s\n' "$*"; }
log() { printf 'dlws-payload: %s\n' "$*"; }

MEDIUM= MEDIUM_TIMEOUT=20
CMDLINE=
read -r CMDLINE </proc/cmdline 2>/dev/null
set -f
for arg in $CMDLINE; do
    case "$arg" in
        dlws.medium=*) MEDIUM=${arg#*=} ;;
        dlws.medium_timeout=*) MEDIUM_TIMEOUT=${arg#*=} ;;
    esac
done
set +f
case "$MEDIUM_TIMEOUT" in ''|*[!0-9]*) MEDIUM_TIMEOUT=20 ;; esac

fragments() {
    for f in "$DLWS"/manifest.d/*; do
        [ -f "$f" ] && printf '%s\n' "$f"
    done
}

NFILES=0 NFAIL=0

fail() {   # $1 = path, $2 = reason
    NFAIL=$((NFAIL + 1))
    say "DLWS-VERIFY: FAIL $1: $2"
}

verify_line() {   # sum size mode path where
    sum=$1 size=$2 mode=$3 path=$4 where=$5
    NFILES=$((NFILES + 1))
    ok=1
    case "$sum" in *[A-F]*) sum=$(printf '%s' "$sum" | tr A-F a-f) ;; esac
    case "$sum" in *[!0-9a-f]*) ok=0 ;; esac
    [ "${#sum}" -eq 64 ] || ok=0
    case "$size" in ''|*[!0-9]*) ok=0 ;; esac
    case "$mode" in ''|*[!0-7]*) ok=0 ;; esac
    [ "${#mode}" -le 5 ] || ok=0
    case "$path" in /*) ;; *) ok=0 ;; esac
    if [ "$ok" = 0 ]; then
        say "DLWS-FILE: - ${path:-$where}"
        fail "${path:-$where}" "malformed manifest line ($where)"
        return
    fi
    f=$ROOT$path
    if [ -L "$f" ]; then
        say "DLWS-FILE: - $path"; fail "$path" "is a symbolic link"; return
    elif [ ! -e "$f" ]; then
        say "DLWS-FILE: - $path"; fail "$path" "missing"; return
    elif [ ! -f "$f" ]; then
        say "DLWS-FILE: - $path"; fail "$path" "not a regular file"; return
    fi
    st=$(stat -c '%s %a' "$f")
    got_size=${st% *} got_mode=${st#* }
    got_sum=$(sha256sum "$f" 2>/dev/null); got_sum=${got_sum%% *}
    say "DLWS-FILE: ${got_sum:--} $path"
    want_mode=${mode#"${mode%%[!0]*}"}; want_mode=${want_mode:-0}
    want_size=${size#"${size%%[!0]*}"}; want_size=${want_size:-0}
    why=
    [ "$got_size" = "$want_size" ] || why="size $got_size, expected $want_size"
    [ "$got_mode" = "$want_mode" ] || why="${why:+$why; }mode $got_mode, expected $want_mode"
    [ "$got_sum" = "$sum" ] || why="${why:+$why; }sha256 $got_sum, expected $sum"
    [ -z "$why" ] || fail "$path" "$why"
}

# verify small|large: the manifest lines in the initrd, or those on the medium.
verify() {
    which=$1
    for frag in $(fragments); do
        n=0
        while read -r f1 f2 f3 f4 || [ -n "$f1" ]; do
            n=$((n + 1))
            f4=${f4%"$CR"}
            case "$f1" in ''|'#'*|"$CR") continue ;; esac
            case "$f4" in
                "$LARGE_PATH"/*) [ "$which" = large ] || continue ;;
                *) [ "$which" = small ] || continue ;;
            esac
            verify_line "$f1" "$f2" "$f3" "$f4" "${frag##*/}:$n"
        done <"$frag"
    done
}

large_paths() {   # every manifest path on the medium
    for frag in $(fragments); do
        while read -r _s _z _m p || [ -n "$_s" ]; do
            p=${p%"$CR"}
            case "$p" in "$LARGE_PATH"/*) printf '%s\n' "$p" ;; esac
        done <"$frag"
    done
}

# link_into DIR FILE: a symbolic link to FILE (a live path) as DIR/<name>.
link_into() {
    mkdir -p "$1" && ln -sf "$2" "$1/${2##*/}"
}

place() {
    if [ -z "$(fragments)" ]; then
        say "DLWS-PAYLOAD: NONE"
        return 0
    fi
    verify small
    if [ "$NFAIL" != 0 ]; then
        say "DLWS-PAYLOAD: FAIL $NFAIL of $NFILES files"
        return 1
    fi
    say "DLWS-PAYLOAD: OK $NFILES files"
    if [ -d "$DLWS/rootfs" ]; then
        cp -a "$DLWS/rootfs/." "$ROOT/" || { log "copying the payload rootfs into / failed"; return 1; }
        log "payload rootfs copied into /"
    fi
    # flatcar-install keeps the cloud-config's directory private.
    [ ! -d "$ROOT/var/lib/flatcar-install" ] || chmod 0700 "$ROOT/var/lib/flatcar-install"
    nimg=0
    for f in "$DLWS"/images/*; do
        [ -f "$f" ] || continue
        link_into "$IMAGES" "${f#"$ROOT"}" && nimg=$((nimg + 1))
    done
    [ "$nimg" = 0 ] || log "linked $nimg container images into /var/lib/dlws/images"
    return 0
}

try_medium() {   # $1 = block device: mount it, bind its dlws/large if it is ours
    dev=$1
    grep -q "^$dev " /proc/mounts && return 1
    mounted=
    for fs in iso9660 vfat ext4; do
        if mount -r -t "$fs" "$dev" "$MEDIUM_MNT" 2>/dev/null; then
            mounted=$fs; break
        fi
    done
    [ -n "$mounted" ] || return 1
    if [ -d "$MEDIUM_MNT/dlws/large" ] && [ -f "$MEDIUM_MNT/dlws/medium-id" ] &&
       [ "$(cat "$MEDIUM_MNT/dlws/medium-id")" = "$WANT_ID" ]; then
        mkdir -p "$LARGE"
        if mount --bind "$MEDIUM_MNT/dlws/large" "$LARGE"; then
            say "DLWS-MEDIUM: $dev ($mounted)"
            return 0
        fi
    fi
    umount "$MEDIUM_MNT" 2>/dev/null
    return 1
}

find_medium() {
    if [ ! -f "$DLWS/medium-id" ]; then
        say "DLWS-MEDIUM: NOT FOUND (the payload has no dlws/medium-id)"
        return 1
    fi
    WANT_ID=$(cat "$DLWS/medium-id")
    mkdir -p "$MEDIUM_MNT"
    tries=$((MEDIUM_TIMEOUT * 2 + 1))
    while [ "$tries" -gt 0 ]; do
        tries=$((tries - 1))
        cands=
        [ -z "$MEDIUM" ] || cands=$(findfs "LABEL=$MEDIUM" 2>/dev/null)
        for dev in $cands /dev/sr* /dev/vd* /dev/sd* /dev/nvme*n* /dev/mmcblk*; do
            [ -b "$dev" ] || continue
            try_medium "$dev" && return 0
        done
        [ "$tries" -gt 0 ] && sleep 0.5
    done
    say "DLWS-MEDIUM: NOT FOUND (medium-id $WANT_ID${MEDIUM:+, label $MEDIUM})"
    return 1
}

large() {
    paths=$(large_paths)
    [ -n "$paths" ] || return 0
    missing=0
    while IFS= read -r p; do
        [ -e "$ROOT$p" ] || missing=1
    done <<EOF
$paths
EOF
    # A PXE boot has them in RAM; an ISO or a stick has them on the medium.
    if [ "$missing" = 1 ]; then
        find_medium
    fi
    verify large
    if [ "$NFAIL" != 0 ]; then
        say "DLWS-LARGE: FAIL $NFAIL of $NFILES files"
        return 1
    fi
    say "DLWS-LARGE: OK $NFILES files"
    nlarge=0
    while IFS= read -r p; do
        case "$p" in
            "$LARGE_PATH"/rootfs/*)
                rel=${p#"$LARGE_PATH"/rootfs/}
                mkdir -p "$ROOT/${rel%/*}" && ln -sf "$p" "$ROOT/$rel" && nlarge=$((nlarge + 1)) ;;
            "$LARGE_PATH"/images/*)
                link_into "$IMAGES" "$p" && nlarge=$((nlarge + 1)) ;;
        esac
    done <<EOF
$paths
EOF
    log "linked $nlarge large files from the boot medium"
    return 0
}

# The node's name before the kubelet starts (its identity is
# system:node:<name>): the one its media give (node.env), else, for a node
# booted from its role's default entry, one made from its MAC, unless DHCP
# named it. With DLWS_ROOT (tests) the name is only printed.
name_node() {
    want=
    if [ -f "$DLWS/node.env" ]; then
        want=$(sed -n 's/^DLWS_HOSTNAME=//p' "$DLWS/node.env" | head -n 1)
        want=${want%"$CR"}
        want=${want#\"}; want=${want%\"}
    fi
    if [ -z "$want" ]; then
        now=$(cat "$ROOT/proc/sys/kernel/hostname" 2>/dev/null)
        case "$now" in
            ''|localhost|localhost.*|'(none)') ;;
            *) say "DLWS-NODENAME: $now (DHCP)"; return 0 ;;
        esac
        role=$(sed -n 's/^DLWS_ROLE=//p' "$DLWS/node.env" 2>/dev/null | head -n 1)
        for i in "$ROOT"/sys/class/net/*; do
            [ "$(cat "$i/type" 2>/dev/null)" = 1 ] || continue
            mac=$(tr -d ':\n' <"$i/address")
            [ -n "$mac" ] && [ "$mac" != 000000000000 ] || continue
            want=${role:-node}-$mac
            break
        done
    fi
    if [ -z "$want" ]; then
        say "DLWS-NODENAME: NONE (no name in the media, no network interface)"
        return 1
    fi
    say "DLWS-NODENAME: $want"
    [ -z "$ROOT" ] || return 0
    if command -v hostnamectl >/dev/null 2>&1; then
        hostnamectl set-hostname "$want"
    else
        hostname "$want" && printf '%s\n' "$want" >/etc/hostname
    fi
}

case "${1:-}" in
    place) place ;;
    large) large ;;
    hostname) name_node ;;
    *) echo "usage: dlws-payload place|large|hostname" >&2; exit 2 ;;
esac
