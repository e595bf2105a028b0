# tests/lib/pxe-boot.sh — network-boot helpers for boot tests (source it
# from bash after tests/lib/qemu-boot.sh, or let it source that itself).
#
#   pxe_boot_bios NAME TFTPDIR BOOTFILE MAC LOGFILE [TIMEOUT]
#       SeaBIOS + QEMU's iPXE option ROM boot from the network: QEMU user
#       networking (`-netdev user,tftp=TFTPDIR,bootfile=BOOTFILE,restrict=on`,
#       its built-in DHCP and TFTP server; nothing else is reachable), a
#       virtio-net NIC with MAC, `-boot n`.  BOOTFILE is a path relative to
#       TFTPDIR: pxelinux.0 / lpxelinux.0 (PXELINUX), boot.ipxe (an iPXE
#       script: the ROM runs it), ...
#       SeaBIOS's serial console is switched on (fw_cfg etc/sercon-port), so
#       the firmware, iPXE and the bootloader print to LOGFILE too.
#
#   pxe_boot_uefi NAME TFTPDIR BOOTFILE MAC LOGFILE [TIMEOUT]
#       The same under OVMF: the code flash read-only, a private copy of the
#       variable store (a temp file, removed afterwards).  BOOTFILE is an EFI
#       program (bootx64.efi = a GRUB network image) or an iPXE script: the
#       EFI iPXE driver in QEMU's efi-virtio.rom does the DHCP/TFTP.
#
#   Both return qemu_boot's codes (0 the guest stopped by itself, 3 kernel
#   panic, 124 timeout, other: QEMU failed) and set QEMU_BOOT_SECS and
#   QEMU_BOOT_END; 2 for bad arguments (missing TFTPDIR or BOOTFILE, a
#   malformed MAC, no OVMF).  TIMEOUT defaults to 180 seconds.
#
#   Environment:
#     PXE_NIC        NIC model (default virtio-net-pci)
#     PXE_ROMFILE    unset: QEMU's default option ROM for the NIC
#                    (efi-virtio.rom from ipxe-qemu, which holds both the
#                    BIOS and the EFI iPXE); a path: that ROM; empty: no ROM
#                    (UEFI then uses OVMF's own virtio-net driver and PXE)
#     PXE_SERCON     BIOS only: 0 leaves SeaBIOS's serial console off
#     OVMF_CODE, OVMF_VARS   firmware pair (default: the 4M pair in
#                    /usr/share/OVMF, else the 2M pair)
#   plus qemu_boot's QEMU, QEMU_ACCEL, QEMU_EXTRA_ARGS.
#
# shellcheck shell=bash

if ! declare -F qemu_boot >/dev/null 2>&1; then
    # shellcheck source=qemu-boot.sh source-path=SCRIPTDIR
    . "$(dirname "${BASH_SOURCE[0]}")/qemu-boot.sh"
fi

# _pxe_check NAME TFTPDIR BOOTFILE MAC: argument checks shared by both.
_pxe_check() {
    local name=$1 dir=$2 file=$3 mac=$4
    if [ ! -d "$dir" ]; then
        echo "ERROR: $name: TFTP root $dir is not a directory" >&2
        return 2
    fi
    if [ ! -f "$dir/$file" ]; then
        echo "ERROR: $name: boot file $dir/$file does not exist" >&2
        return 2
    fi
    if ! [[ $mac =~ ^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$ ]]; then
        echo "ERROR: $name: malformed MAC '$mac' (want xx:xx:xx:xx:xx:xx)" >&2
        return 2
    fi
    return 0
}

# _pxe_net_args TFTPDIR BOOTFILE MAC: prints the -netdev/-device pair, one
# argument per line.  Commas in values are doubled (QEMU option escaping).
_pxe_net_args() {
    local dir bootfile=$2 mac=$3 dev
    dir=$(cd "$1" && pwd) || return 2
    dev="${PXE_NIC:-virtio-net-pci},netdev=n0,mac=$mac,bootindex=1"
    if [ "${PXE_ROMFILE+set}" = set ]; then
        dev+=",romfile=${PXE_ROMFILE//,/,,}"
    fi
    printf '%s\n' -netdev \
        "user,id=n0,restrict=on,tftp=${dir//,/,,},bootfile=${bootfile//,/,,}" \
        -device "$dev"
}

pxe_boot_bios() {
    if [ $# -lt 5 ] || [ $# -gt 6 ]; then
        echo "usage: pxe_boot_bios NAME TFTPDIR BOOTFILE MAC LOGFILE [TIMEOUT]" >&2
        return 2
    fi
    local name=$1 dir=$2 bootfile=$3 mac=$4 log=$5 secs=${6:-180}
    _pxe_check "$name" "$dir" "$bootfile" "$mac" || return 2
    local net sercon=() rc
    mapfile -t net < <(_pxe_net_args "$dir" "$bootfile" "$mac")
    [ "${#net[@]}" = 4 ] || return 2
    if [ "${PXE_SERCON:-1}" != 0 ]; then
        # SeaBIOS reads etc/sercon-port as a little-endian integer: 0x3f8.
        local port
        port=$(mktemp "${TMPDIR:-/tmp}/pxe-sercon.XXXXXX") || return 2
        printf '\370\003' >"$port"
        sercon=(-fw_cfg "name=etc/sercon-port,file=$port")
    fi
    qemu_boot "$name" "$secs" "$log" -- -boot n "${sercon[@]}" "${net[@]}"
    rc=$?
    [ "${#sercon[@]}" = 0 ] || rm -f "$port"
    return "$rc"
}

# _pxe_ovmf: sets _PXE_CODE and _PXE_VARS to a matching firmware pair.
_pxe_ovmf() {
    _PXE_CODE=${OVMF_CODE:-}
    _PXE_VARS=${OVMF_VARS:-}
    if [ -z "$_PXE_CODE" ] || [ -z "$_PXE_VARS" ]; then
        local d=/usr/share/OVMF
        if [ -f "$d/OVMF_CODE_4M.fd" ] && [ -f "$d/OVMF_VARS_4M.fd" ]; then
            _PXE_CODE=${_PXE_CODE:-$d/OVMF_CODE_4M.fd}
            _PXE_VARS=${_PXE_VARS:-$d/OVMF_VARS_4M.fd}
        else
            _PXE_CODE=${_PXE_CODE:-$d/OVMF_CODE.fd}
            _PXE_VARS=${_PXE_VARS:-$d/OVMF_VARS.fd}
        fi
    fi
    if [ ! -f "$_PXE_CODE" ] || [ ! -f "$_PXE_VARS" ]; then
        echo "ERROR: OVMF firmware not found ($_PXE_CODE, $_PXE_VARS; apt-get install ovmf)" >&2
        return 2
    fi
}

pxe_boot_uefi() {
    if [ $# -lt 5 ] || [ $# -gt 6 ]; then
        echo "usage: pxe_boot_uefi NAME TFTPDIR BOOTFILE MAC LOGFILE [TIMEOUT]" >&2
        return 2
    fi
    local name=$1 dir=$2 bootfile=$3 mac=$4 log=$5 secs=${6:-180}
    _pxe_check "$name" "$dir" "$bootfile" "$mac" || return 2
    _pxe_ovmf || return 2
    local net vars rc
    mapfile -t net < <(_pxe_net_args "$dir" "$bootfile" "$mac")
    [ "${#net[@]}" = 4 ] || return 2
    vars=$(mktemp "${TMPDIR:-/tmp}/pxe-ovmf-vars.XXXXXX") || return 2
    if ! cp "$_PXE_VARS" "$vars"; then
        rm -f "$vars"
        return 2
    fi
    qemu_boot "$name" "$secs" "$log" -- -boot n \
        -drive "if=pflash,format=raw,unit=0,readonly=on,file=${_PXE_CODE//,/,,}" \
        -drive "if=pflash,format=raw,unit=1,file=${vars//,/,,}" \
        "${net[@]}"
    rc=$?
    rm -f "$vars"
    return "$rc"
}
