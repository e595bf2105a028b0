#!/bin/bash
# mkbase.sh OUTDIR — build the built-in default base OS of dlws-mkimage.
#
# The stand-in for Flatcar's PXE live system: Debian's kernel plus a small
# initrd made of busybox-static, the kernel modules needed to reach disks and
# boot media, and base/init, which follows the payload contract described in
# base/README.md.  Writes OUTDIR/vmlinuz and OUTDIR/initrd.img (gzip'd newc
# cpio).  The initrd is byte-identical for identical inputs: sorted entries,
# owner 0:0, every mtime = SOURCE_DATE_EPOCH (default 0), gzip -n.
#
# Environment (all optional):
#   KERNEL=/boot/vmlinuz-X    kernel to use (default: newest /boot/vmlinuz-*)
#   MODDIR=/lib/modules/X     its modules (default: /lib/modules/<version>)
#   BUSYBOX=/bin/busybox      a statically linked busybox
#   SOURCE_DATE_EPOCH=N       mtime of every initrd entry (default 0)
#   DLWS_BASE_EXTRA_MODULES="a b"  more modules (with dependencies) to include
set -euo pipefail
umask 022
export LC_ALL=C

prog=mkbase.sh
die() { printf '%s: error: %s\n' "$prog" "$*" >&2; exit 1; }
warn() { printf '%s: warning: %s\n' "$prog" "$*" >&2; }

[ $# -eq 1 ] || { printf 'usage: %s OUTDIR\n' "$prog" >&2; exit 2; }
outdir=$1
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
init_script=$here/init
[ -f "$init_script" ] || die "$init_script is missing"

for tool in cpio gzip find sort; do
    command -v "$tool" >/dev/null 2>&1 || die "'$tool' is required (apt-get install $tool)"
done

# --- kernel --------------------------------------------------------------
if [ -n "${KERNEL:-}" ]; then
    kernel=$KERNEL
    [ -f "$kernel" ] || die "KERNEL=$kernel: no such file"
else
    kernel=$(ls -1 /boot/vmlinuz-* 2>/dev/null | sort -V | tail -n 1 || true)
    [ -n "$kernel" ] && [ -f "$kernel" ] ||
        die "no kernel found (/boot/vmlinuz-* is missing); install one: apt-get install linux-image-amd64"
fi
[ -r "$kernel" ] || die "$kernel is not readable"
kver=${kernel##*/vmlinuz-}
[ "$kver" != "$kernel" ] || [ -n "${MODDIR:-}" ] ||
    die "cannot tell the kernel version from the name '$kernel' (expected vmlinuz-VERSION); set MODDIR"
moddir=${MODDIR:-/lib/modules/$kver}
kver=${moddir%/}; kver=${kver##*/}
[ -f "$moddir/modules.dep" ] ||
    die "no kernel modules for $kver ($moddir/modules.dep is missing); install the matching linux-image package"

# --- busybox -------------------------------------------------------------
if [ -n "${BUSYBOX:-}" ]; then
    busybox=$BUSYBOX
else
    busybox=
    for b in /bin/busybox /usr/bin/busybox; do
        [ -x "$b" ] && { busybox=$b; break; }
    done
fi
[ -n "$busybox" ] && [ -x "$busybox" ] ||
    die "busybox-static is not installed (no executable ${busybox:-/bin/busybox}); install it: apt-get install busybox-static"
if ldd "$busybox" >/dev/null 2>&1; then
    die "$busybox is dynamically linked; the base needs busybox-static: apt-get install busybox-static"
fi

# --- which modules -------------------------------------------------------
# Wanted at boot: disks (virtio, SATA/IDE, SCSI, USB mass storage), CD-ROM,
# the file systems of boot media and installed systems, and the NICs a PXE
# install fetches the OS image with (virtio-net, e1000: QEMU's) plus
# af_packet for udhcpc's raw socket (built in on Debian's kernel).
# crc32c/crc64 implementations are soft dependencies of ext4/jbd2/t10-pi
# (loaded through the crypto API), so they are listed explicitly.
wanted="virtio_pci virtio_blk virtio_scsi virtio_net virtio_console e1000 af_packet
 ata_piix ata_generic ahci libata sd_mod sr_mod cdrom
 usb_storage uas xhci_pci xhci_hcd ehci_pci ehci_hcd ohci_pci uhci_hcd
 isofs vfat fat nls_cp437 nls_iso8859_1 nls_utf8
 crc32c_generic crc32c_intel crc64_rocksoft_generic
 mbcache jbd2 crc16 ext4 loop squashfs overlay
 ${DLWS_BASE_EXTRA_MODULES:-}"

declare -A modpath=() moddeps=() builtin=() seen=()
norm() { local n=${1##*/}; n=${n%%.ko*}; REPLY=${n//-/_}; }   # module name, no fork
while IFS= read -r line; do
    [ -n "$line" ] || continue
    p=${line%%:*}
    norm "$p"; n=$REPLY
    modpath[$n]=$p
    moddeps[$n]=${line#*:}
done < "$moddir/modules.dep"
if [ -f "$moddir/modules.builtin" ]; then
    while IFS= read -r p; do norm "$p"; builtin[$REPLY]=1; done < "$moddir/modules.builtin"
fi

order=()
visit() {   # depth-first: dependencies before the module itself
    local n=$1 d
    [ -z "${seen[$n]:-}" ] || return 0
    seen[$n]=1
    for d in ${moddeps[$n]}; do norm "$d"; visit "$REPLY"; done
    order+=("$n")
}
for w in $wanted; do
    norm "$w"; n=$REPLY
    if [ -n "${modpath[$n]:-}" ]; then
        visit "$n"
    elif [ -z "${builtin[$n]:-}" ]; then
        warn "module $w is neither in $moddir/modules.dep nor built in; skipped"
    fi
done

# --- stage the tree ------------------------------------------------------
mkdir -p "$outdir"
outdir=$(cd "$outdir" && pwd)
stage=$(mktemp -d "${TMPDIR:-/tmp}/dlws-mkbase.XXXXXX")
cleanup() { rm -rf "$stage" "$outdir/.initrd.img.tmp.$$" "$outdir/.vmlinuz.tmp.$$"; }
trap cleanup EXIT
root=$stage/root
mkdir -p "$root"
for d in bin sbin usr/bin usr/sbin dev proc sys tmp run mnt media root etc etc/dlws \
         usr/share/oem lib/modules/"$kver"; do
    mkdir -p "$root/$d"
done
chmod 1777 "$root/tmp"
chmod 0700 "$root/root"

install -m 0755 "$busybox" "$root/bin/busybox"
while IFS= read -r a; do
    case "$a" in
        ''|linuxrc|bin/busybox) continue ;;
    esac
    [ -e "$root/$a" ] || [ -L "$root/$a" ] || ln -s /bin/busybox "$root/$a"
done < <("$busybox" --list-full | sort)
install -m 0755 "$init_script" "$root/init"

# udhcpc's event script (/init runs udhcpc for an OS image on the boot
# server): puts the lease on the interface and writes /etc/resolv.conf.
mkdir -p "$root/etc/udhcpc"
cat > "$root/etc/udhcpc/default.script" <<'EOF'
#!/bin/sh
# udhcpc's event script in the dlws-mkimage default base (base/mkbase.sh).
# udhcpc passes the event in $1 and the lease in the environment: interface,
# ip, subnet, mask, broadcast, router, dns, domain. /init reads
# /run/dlws/net.<interface> for its DLWS-NET line.
case "$1" in
    deconfig)
        ip -4 addr flush dev "$interface" 2>/dev/null
        ip link set dev "$interface" up ;;
    bound|renew)
        ifconfig "$interface" "$ip" ${subnet:+netmask "$subnet"} ${broadcast:+broadcast "$broadcast"} || exit 1
        while route del default dev "$interface" 2>/dev/null; do :; done
        metric=0
        for r in $router; do
            route add default gw "$r" dev "$interface" metric "$metric"
            metric=$((metric + 1))
        done
        {
            [ -z "$domain" ] || printf 'search %s\n' "$domain"
            for ns in $dns; do printf 'nameserver %s\n' "$ns"; done
        } > /etc/resolv.conf
        mkdir -p /run/dlws
        printf '%s%s%s\n' "$ip" "${mask:+/$mask}" "${router:+ via ${router%% *}}" > "/run/dlws/net.$interface" ;;
esac
exit 0
EOF
chmod 0755 "$root/etc/udhcpc/default.script"

printf 'root:x:0:0:root:/root:/bin/sh\n' > "$root/etc/passwd"
printf 'root:x:0:\n' > "$root/etc/group"
printf 'localhost\n' > "$root/etc/hostname"
chmod 0644 "$root/etc/passwd" "$root/etc/group" "$root/etc/hostname"

# Modules, uncompressed (busybox insmod cannot read .ko.xz/.ko.zst), plus a
# modules.dep for busybox modprobe and the load order base/init follows.
mdst=$root/lib/modules/$kver
: > "$mdst/modules.dep"
: > "$root/etc/dlws/modules.load"
for n in "${order[@]}"; do
    p=${modpath[$n]}
    rel=${p%.ko*}.ko
    mkdir -p "$mdst/$(dirname "$rel")"
    case "$p" in
        *.ko)     cp "$moddir/$p" "$mdst/$rel" ;;
        *.ko.xz)  command -v xz >/dev/null || die "xz is needed to unpack $p (apt-get install xz-utils)"
                  xz -dc "$moddir/$p" > "$mdst/$rel" ;;
        *.ko.zst) command -v zstd >/dev/null || die "zstd is needed to unpack $p (apt-get install zstd)"
                  zstd -qdc "$moddir/$p" > "$mdst/$rel" ;;
        *.ko.gz)  gzip -dc "$moddir/$p" > "$mdst/$rel" ;;
        *)        die "unknown module file type: $p" ;;
    esac
    chmod 0644 "$mdst/$rel"
    deps=
    for d in ${moddeps[$n]}; do deps="$deps ${d%.ko*}.ko"; done
    printf '%s:%s\n' "$rel" "$deps" >> "$mdst/modules.dep"
    printf '%s\n' "$rel" >> "$root/etc/dlws/modules.load"
done
for f in modules.builtin modules.builtin.modinfo modules.order; do
    [ -f "$moddir/$f" ] && install -m 0644 "$moddir/$f" "$mdst/$f"
done

bbver=$("$busybox" 2>&1 | head -n 1 || true)
{
    printf 'DLWS_BASE=dlws-mkimage-default\n'
    printf 'KERNEL_VERSION=%s\n' "$kver"
    printf 'BUSYBOX=%s\n' "${bbver%% multi-call*}"
    printf 'MODULES=%s\n' "${#order[@]}"
} > "$root/etc/dlws/base-release"
chmod 0644 "$root/etc/dlws/base-release" "$mdst/modules.dep" "$root/etc/dlws/modules.load"

# --- pack ----------------------------------------------------------------
sde=${SOURCE_DATE_EPOCH:-0}
case "$sde" in ''|*[!0-9]*) die "SOURCE_DATE_EPOCH='$sde' is not a number" ;; esac
find "$root" -exec touch -h -d "@$sde" {} +
( cd "$root" && find . -mindepth 1 | sed 's|^\./||' | sort |
    cpio --quiet --reproducible -o -H newc -R 0:0 ) |
    gzip -n -6 > "$outdir/.initrd.img.tmp.$$"
cp "$kernel" "$outdir/.vmlinuz.tmp.$$"
chmod 0644 "$outdir/.initrd.img.tmp.$$" "$outdir/.vmlinuz.tmp.$$"
mv -f "$outdir/.vmlinuz.tmp.$$" "$outdir/vmlinuz"
mv -f "$outdir/.initrd.img.tmp.$$" "$outdir/initrd.img"

printf '%s: %s/vmlinuz (%s), %s/initrd.img (%s bytes, %d modules)\n' "$prog" \
    "$outdir" "$kver" "$outdir" "$(stat -c %s "$outdir/initrd.img")" "${#order[@]}"
