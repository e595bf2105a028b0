#!/bin/bash
# asan-pass: no (boots the base with hand-made payloads; runs no dlws-mkimage code)
# e2e: boot the default base (out/base) under QEMU with hand-made payloads and
# check the payload contract of base/init (see base/README.md):
#   1. payload in two initrd segments -> DLWS-PAYLOAD: OK (the payload's
#      own dlws-payload script, run by /init as Flatcar's units run it),
#      hostname from node.env, DLWS-FILE lines, rootfs copied, install agent
#      run, poweroff
#   2. one byte flipped in a payload file (plus a wrong mode, a missing file
#      and a malformed manifest line) -> DLWS-VERIFY: FAIL <path>: <reason>,
#      DLWS-PAYLOAD: FAIL, install skipped, still powers off
#   3. a large file that lives on the boot medium (ext4 disk, plus a decoy
#      disk with another medium-id; and an ISO as CD-ROM when xorriso exists)
#   4. no payload at all -> DLWS-PAYLOAD: NONE
# Environment: DLWS_BASE_DIR (default out/base, built if missing or stale),
# BOOT_TIMEOUT (seconds per boot, default 120), KEEP_LOGS=1 keeps the
# work directory even on success.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=../lib/qemu-boot.sh
. "$ROOT/tests/lib/qemu-boot.sh"
. "$ROOT/tests/lib/flip.sh"
NAME=test_base_boot
BOOT_TIMEOUT=${BOOT_TIMEOUT:-120}
export LC_ALL=C

die() { echo "FAIL $NAME: $*"; exit 1; }

for t in qemu-system-x86_64 cpio gzip sha256sum; do
    command -v "$t" >/dev/null 2>&1 || die "'$t' is not installed (see scripts/install-deps.sh)"
done

# --- the base ----------------------------------------------------------------
BASE=${DLWS_BASE_DIR:-$ROOT/out/base}
if [ -z "${DLWS_BASE_DIR:-}" ]; then
    if [ ! -f "$BASE/vmlinuz" ] || [ ! -f "$BASE/initrd.img" ] ||
       [ "$ROOT/base/init" -nt "$BASE/initrd.img" ] ||
       [ "$ROOT/base/mkbase.sh" -nt "$BASE/initrd.img" ]; then
        echo "building the base into $BASE"
        "$ROOT/base/mkbase.sh" "$BASE" || die "base/mkbase.sh failed"
    fi
fi
[ -f "$BASE/vmlinuz" ] && [ -f "$BASE/initrd.img" ] || die "no base in $BASE"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/dlws-$NAME.XXXXXX")
finish() {
    if [ "$TESTS_FAILED" != 0 ] || [ "${KEEP_LOGS:-0}" = 1 ]; then
        echo "console logs kept in $WORK"
    else
        rm -rf "$WORK"
    fi
}
trap finish EXIT

OEM=usr/share/oem
DL=$OEM/dlws
TIMES=()

# manifest_line ROOTDIR RELPATH -> "<sha256> <size> <0mode> /RELPATH"
manifest_line() {
    local f=$1/$2
    printf '%s %s 0%s /%s\n' "$(sha256sum "$f" | cut -d' ' -f1)" \
        "$(stat -c %s "$f")" "$(stat -c %a "$f")" "$2"
}
# pack DIR OUT: a gzip'd newc cpio of DIR's contents, as the builder makes
pack() {
    (cd "$1" && find . -mindepth 1 | sed 's|^\./||' | sort |
        cpio --quiet -o -H newc -R 0:0) | gzip -n > "$2"
}
sha() { sha256sum "$1" | cut -d' ' -f1; }

boot() {   # boot NAME INITRD APPEND [QEMU-ARGS...]
    local n=$1 initrd=$2 append=$3
    shift 3
    local log=$WORK/$n.console.log rc
    qemu_boot "$n" "$BOOT_TIMEOUT" "$log" -- \
        -kernel "$BASE/vmlinuz" -initrd "$initrd" -append "$append" "$@"
    rc=$?
    TIMES+=("$n ${QEMU_BOOT_SECS}s")
    echo "TIME $n ${QEMU_BOOT_SECS}s (end: $QEMU_BOOT_END)"
    if [ "$rc" = 0 ] && [ "$QEMU_BOOT_END" = poweroff ]; then
        TESTS_PASSED=$((TESTS_PASSED + 1)); echo "PASS $n: the VM powered off by itself"
    else
        TESTS_FAILED=$((TESTS_FAILED + 1))
        echo "FAIL $n: the VM did not power off by itself (rc=$rc, end=$QEMU_BOOT_END); log: $log"
    fi
    LOG=$log
}

# --- payload 1: two segments, as two initrds -------------------------------
P=$WORK/p1
SEG_A=$WORK/seg-a SEG_B=$WORK/seg-b
mkdir -p "$SEG_A/$DL/manifest.d" "$SEG_A/$DL/bin" "$SEG_B/$DL/manifest.d" \
    "$SEG_B/$DL/rootfs/opt/bin" "$SEG_B/$DL/rootfs/etc/kubernetes/ssl"
cat > "$SEG_A/$OEM/cloud-config.yml" <<'EOF'
#cloud-config
hostname: "from-cloud-config"
ssh_authorized_keys:
  - ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e core@e2e
EOF
printf '# e2e node\nDLWS_HOSTNAME=e2e-node-1\nDLWS_IP="10.0.0.21"\nDLWS_ROLE=worker\n' \
    > "$SEG_A/$DL/node.env"
cat > "$SEG_A/$DL/install" <<'EOF'
#!/bin/sh
# e2e stand-in for the install agent: proves the rootfs was copied into /
# and node.env was exported, then exits 3 so the test sees rc=3.
if [ -x /opt/bin/kubelet ] && [ -f /etc/kubernetes/ssl/worker-key.pem ]; then
    echo "e2e-install: rootfs present, role=$DLWS_ROLE ip=$DLWS_IP kubelet=$(/opt/bin/kubelet)"
else
    echo "e2e-install: rootfs missing"
fi
exit 3
EOF
printf '#!/bin/sh\necho kubelet-e2e-v1\n' > "$SEG_B/$DL/rootfs/opt/bin/kubelet"
head -c 1675 /dev/urandom | base64 > "$SEG_B/$DL/rootfs/etc/kubernetes/ssl/worker-key.pem"
# The payload's own step, as the builder puts it in every payload.
cp "$ROOT/agent/dlws-payload.sh" "$SEG_A/$DL/bin/dlws-payload"
chmod 0644 "$SEG_A/$OEM/cloud-config.yml" "$SEG_A/$DL/node.env"
chmod 0755 "$SEG_A/$DL/install" "$SEG_A/$DL/bin/dlws-payload" "$SEG_B/$DL/rootfs/opt/bin/kubelet"
chmod 0600 "$SEG_B/$DL/rootfs/etc/kubernetes/ssl/worker-key.pem"
FILES_A="$OEM/cloud-config.yml $DL/node.env $DL/install $DL/bin/dlws-payload"
FILES_B="$DL/rootfs/opt/bin/kubelet $DL/rootfs/etc/kubernetes/ssl/worker-key.pem"
{ echo "# segment a"; echo; for f in $FILES_A; do manifest_line "$SEG_A" "$f"; done; } \
    > "$SEG_A/$DL/manifest.d/00-config"
for f in $FILES_B; do manifest_line "$SEG_B" "$f"; done > "$SEG_B/$DL/manifest.d/10-rootfs"
pack "$SEG_A" "$WORK/seg-a.cpio.gz"
pack "$SEG_B" "$WORK/seg-b.cpio.gz"
cat "$BASE/initrd.img" "$WORK/seg-a.cpio.gz" "$WORK/seg-b.cpio.gz" > "$WORK/initrd-ok.img"

boot ok "$WORK/initrd-ok.img" "console=ttyS0 dlws.test quiet"
assert_console_line "$LOG" "DLWS-PAYLOAD: OK 6 files" "ok: DLWS-PAYLOAD: OK 6 files"
assert_console_line "$LOG" "DLWS-HOSTNAME: e2e-node-1" "ok: hostname from node.env"
for f in $FILES_A; do
    assert_console_line "$LOG" "DLWS-FILE: $(sha "$SEG_A/$f") /$f" "ok: DLWS-FILE /$f"
done
for f in $FILES_B; do
    assert_console_line "$LOG" "DLWS-FILE: $(sha "$SEG_B/$f") /$f" "ok: DLWS-FILE /$f"
done
refute_console "$LOG" '^DLWS-VERIFY: FAIL' "ok: no verification failure"
assert_console_line "$LOG" "e2e-install: rootfs present, role=worker ip=10.0.0.21 kubelet=kubelet-e2e-v1" \
    "ok: rootfs copied into / and node.env exported to the install agent"
assert_console_line "$LOG" "DLWS-INSTALL: rc=3" "ok: install agent exit code reported"
assert_console_line "$LOG" "DLWS-DONE" "ok: DLWS-DONE"

# --- payload 2: one byte flipped in the kubelet ------------------------------
cp -a "$SEG_B" "$WORK/seg-b-bad"
K=$WORK/seg-b-bad/$DL/rootfs/opt/bin/kubelet
flip_byte "$K" 12
pack "$WORK/seg-b-bad" "$WORK/seg-b-bad.cpio.gz"
# and a segment with other kinds of failure: wrong mode, missing file,
# malformed manifest line
C=$WORK/seg-c
mkdir -p "$C/$DL/manifest.d" "$C/$DL/rootfs/etc"
printf 'mode test\n' > "$C/$DL/rootfs/etc/motd"
chmod 0644 "$C/$DL/rootfs/etc/motd"
{
    manifest_line "$C" "$DL/rootfs/etc/motd" | sed 's/ 0644 / 0600 /'
    printf '%s 5 0644 /%s/rootfs/etc/not-there\n' "$(printf x | sha256sum | cut -d' ' -f1)" "$DL"
    printf 'not-a-checksum 5 0644 /%s/rootfs/etc/motd\n' "$DL"
} > "$C/$DL/manifest.d/30-broken"
pack "$C" "$WORK/seg-c.cpio.gz"
cat "$BASE/initrd.img" "$WORK/seg-a.cpio.gz" "$WORK/seg-b-bad.cpio.gz" "$WORK/seg-c.cpio.gz" \
    > "$WORK/initrd-bad.img"

boot bad "$WORK/initrd-bad.img" "console=ttyS0 dlws.test quiet"
assert_console "$LOG" "^DLWS-VERIFY: FAIL /$DL/rootfs/opt/bin/kubelet: sha256 " \
    "bad: DLWS-VERIFY: FAIL for the flipped file"
assert_console_line "$LOG" "DLWS-VERIFY: FAIL /$DL/rootfs/etc/motd: mode 644, expected 600" \
    "bad: mode mismatch reported"
assert_console_line "$LOG" "DLWS-VERIFY: FAIL /$DL/rootfs/etc/not-there: missing" \
    "bad: missing file reported"
assert_console_line "$LOG" "DLWS-VERIFY: FAIL /$DL/rootfs/etc/motd: malformed manifest line (30-broken:3)" \
    "bad: malformed manifest line reported"
assert_console_line "$LOG" "DLWS-PAYLOAD: FAIL 4 of 9 files" "bad: DLWS-PAYLOAD: FAIL 4 of 9 files"
assert_console_line "$LOG" "DLWS-FILE: $(sha "$K") /$DL/rootfs/opt/bin/kubelet" \
    "bad: DLWS-FILE shows the sha256 the node actually got"
assert_console_line "$LOG" "DLWS-INSTALL: skipped (payload not verified)" "bad: install agent not run"
refute_console "$LOG" '^e2e-install:' "bad: rootfs not used"
assert_console_line "$LOG" "DLWS-DONE" "bad: DLWS-DONE"

# --- payload 3: a large file on the boot medium -----------------------------
MID="e2e-medium-$(date +%s)-$$"
P3=$WORK/seg-large
mkdir -p "$P3/$DL/manifest.d"
printf '%s\n' "$MID" > "$P3/$DL/medium-id"
MED=$WORK/medium
mkdir -p "$MED/dlws/large/images"
head -c 3000000 /dev/urandom > "$MED/dlws/large/images/os.bin"
chmod 0644 "$MED/dlws/large/images/os.bin"
printf '%s\n' "$MID" > "$MED/dlws/medium-id"
LARGE_SHA=$(sha "$MED/dlws/large/images/os.bin")
printf '%s %s 0644 /%s/large/images/os.bin\n' "$LARGE_SHA" 3000000 "$DL" \
    > "$P3/$DL/manifest.d/20-large"
manifest_line "$P3" "$DL/medium-id" >> "$P3/$DL/manifest.d/20-large"
pack "$P3" "$WORK/seg-large.cpio.gz"
cat "$BASE/initrd.img" "$WORK/seg-a.cpio.gz" "$WORK/seg-b.cpio.gz" "$WORK/seg-large.cpio.gz" \
    > "$WORK/initrd-large.img"
DECOY=$WORK/decoy
mkdir -p "$DECOY/dlws/large/images"
printf 'some-other-medium\n' > "$DECOY/dlws/medium-id"
head -c 3000000 /dev/zero > "$DECOY/dlws/large/images/os.bin"

if command -v mke2fs >/dev/null 2>&1; then
    mke2fs -q -F -t ext4 -L DECOY -d "$DECOY" "$WORK/decoy.img" 16M >/dev/null 2>&1 &&
    mke2fs -q -F -t ext4 -L DLWSMEDIA -d "$MED" "$WORK/medium.img" 16M >/dev/null 2>&1 ||
        die "mke2fs -d failed"
    boot large-disk "$WORK/initrd-large.img" "console=ttyS0 dlws.test quiet dlws.medium=DLWSMEDIA" \
        -drive "file=$WORK/decoy.img,format=raw,if=virtio,readonly=on" \
        -drive "file=$WORK/medium.img,format=raw,if=virtio,readonly=on"
    assert_console "$LOG" '^DLWS-MEDIUM: /dev/vdb \(ext4\)$' "large-disk: medium found by medium-id, decoy skipped"
    assert_console_line "$LOG" "DLWS-FILE: $LARGE_SHA /$DL/large/images/os.bin" "large-disk: large file verified"
    assert_console_line "$LOG" "DLWS-PAYLOAD: OK 7 files" "large-disk: DLWS-PAYLOAD: OK 7 files (in the initrd)"
    assert_console_line "$LOG" "DLWS-LARGE: OK 1 files" "large-disk: DLWS-LARGE: OK 1 files (on the medium)"
    assert_console_line "$LOG" "dlws-payload: linked 1 large files from the boot medium" "large-disk: the image linked into place"
else
    echo "SKIP large-disk: mke2fs not installed"
fi

if command -v xorriso >/dev/null 2>&1; then
    xorriso -as mkisofs -quiet -R -V DLWSISO -o "$WORK/medium.iso" "$MED" >/dev/null 2>&1 ||
        die "xorriso failed"
    boot large-iso "$WORK/initrd-large.img" "console=ttyS0 dlws.test quiet" \
        -cdrom "$WORK/medium.iso"
    assert_console "$LOG" '^DLWS-MEDIUM: /dev/sr0 \(iso9660\)$' "large-iso: medium found on the CD-ROM"
    assert_console_line "$LOG" "DLWS-PAYLOAD: OK 7 files" "large-iso: DLWS-PAYLOAD: OK 7 files"
    assert_console_line "$LOG" "DLWS-LARGE: OK 1 files" "large-iso: DLWS-LARGE: OK 1 files"
else
    echo "SKIP large-iso: xorriso not installed"
fi

# --- no payload -----------------------------------------------------------------
boot none "$BASE/initrd.img" "console=ttyS0 dlws.test quiet"
assert_console_line "$LOG" "DLWS-PAYLOAD: NONE" "none: DLWS-PAYLOAD: NONE"
assert_console_line "$LOG" "DLWS-DONE" "none: DLWS-DONE"

echo "boot times: ${TIMES[*]}"
if tests_summary; then
    echo "PASS $NAME"
    exit 0
fi
echo "FAIL $NAME (console logs in $WORK)"
exit 1
