# tests/lib/qemu-boot.sh — helpers for boot tests (source it from bash).
#
#   qemu_boot NAME TIMEOUT LOGFILE -- QEMU-ARGS...
#       Boots qemu-system-x86_64 under software emulation with the serial
#       console written to LOGFILE, no network (unless QEMU-ARGS bring one),
#       -no-reboot, under `timeout`.  Returns
#         0    the guest stopped by itself (powered off, or rebooted: with
#              -no-reboot a reboot ends QEMU too; QEMU_BOOT_END tells which)
#         3    the guest kernel panicked
#         124  it did not finish within TIMEOUT seconds (a TIMEOUT: line is
#              printed; the console log is kept)
#         other  QEMU failed (its stderr is in LOGFILE.qemu.err)
#       Sets QEMU_BOOT_SECS (wall seconds, e.g. 9.3) and QEMU_BOOT_END
#       (poweroff | reboot | panic | timeout | error | unknown).
#       Defaults that QEMU-ARGS can override: -m 512, -cpu max, -nic none
#       (left out when the args contain -nic/-netdev/-net).
#       Environment: QEMU (binary), QEMU_ACCEL (default tcg; "kvm:tcg" uses
#       KVM where there is one), QEMU_EXTRA_ARGS (word-split, appended).
#
#   console_text LOGFILE            the log without CRs and terminal escapes
#   assert_console LOGFILE ERE MSG        some line matches ERE (grep -E)
#   assert_console_line LOGFILE LINE MSG  some line is exactly LINE
#   refute_console LOGFILE ERE MSG        no line matches ERE
#       Each prints "PASS MSG" or "FAIL MSG (...)", counts into
#       TESTS_PASSED / TESTS_FAILED, and returns 0 / 1.
#   tests_summary                   prints "N passed, N failed"; returns 1 if
#                                   anything failed
#
# shellcheck shell=bash

TESTS_PASSED=${TESTS_PASSED:-0}
TESTS_FAILED=${TESTS_FAILED:-0}
QEMU_BOOT_SECS=
QEMU_BOOT_END=

_qb_now() { date +%s.%N; }
_qb_elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

qemu_boot() {
    if [ $# -lt 4 ] || [ "$4" != "--" ]; then
        echo "usage: qemu_boot NAME TIMEOUT LOGFILE -- QEMU-ARGS..." >&2
        return 2
    fi
    local name=$1 secs=$2 log=$3
    shift 4
    local qemu=${QEMU:-qemu-system-x86_64}
    if ! command -v "$qemu" >/dev/null 2>&1; then
        echo "ERROR: $qemu not found (apt-get install qemu-system-x86)" >&2
        QEMU_BOOT_END=error
        return 127
    fi
    local have_net=0 have_mem=0 have_cpu=0 a
    for a in "$@"; do
        case "$a" in
            -nic|-netdev|-net) have_net=1 ;;
            -m) have_mem=1 ;;
            -cpu) have_cpu=1 ;;
        esac
    done
    local args=(-machine "accel=${QEMU_ACCEL:-tcg}" -display none -vga none
                -monitor none -serial "file:$log" -no-reboot)
    [ "$have_mem" = 1 ] || args+=(-m 512)
    [ "$have_cpu" = 1 ] || args+=(-cpu max)
    [ "$have_net" = 1 ] || args+=(-nic none)
    mkdir -p "$(dirname "$log")"
    : > "$log"
    local t0 t1 rc
    t0=$(_qb_now)
    # shellcheck disable=SC2086
    timeout -k 5 "$secs" "$qemu" "${args[@]}" "$@" ${QEMU_EXTRA_ARGS:-} \
        </dev/null >"$log.qemu.out" 2>"$log.qemu.err"
    rc=$?
    t1=$(_qb_now)
    QEMU_BOOT_SECS=$(_qb_elapsed "$t0" "$t1")
    if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
        QEMU_BOOT_END=timeout
        echo "TIMEOUT: $name did not finish within ${secs}s; console log kept at $log"
        return 124
    fi
    if [ "$rc" != 0 ]; then
        QEMU_BOOT_END=error
        echo "ERROR: $name: QEMU exited with $rc; stderr:" >&2
        sed 's/^/  /' "$log.qemu.err" >&2
        return "$rc"
    fi
    if grep -q 'Kernel panic' "$log"; then
        QEMU_BOOT_END=panic
        echo "PANIC: $name: the guest kernel panicked; console log kept at $log"
        return 3
    elif grep -q 'reboot: Power down' "$log"; then
        QEMU_BOOT_END=poweroff
    elif grep -q 'reboot: Restarting system' "$log"; then
        QEMU_BOOT_END=reboot
    else
        QEMU_BOOT_END=unknown
    fi
    return 0
}

console_text() {
    tr -d '\r' <"$1" | sed -e 's/\x1b\[[0-9;?]*[A-Za-z]//g' -e 's/\x1b[c78]//g'
}

assert_console() {
    local log=$1 re=$2 msg=$3
    if console_text "$log" | grep -Eq -- "$re"; then
        TESTS_PASSED=$((TESTS_PASSED + 1)); echo "PASS $msg"; return 0
    fi
    TESTS_FAILED=$((TESTS_FAILED + 1))
    echo "FAIL $msg (no line matching /$re/ in $log)"
    return 1
}

assert_console_line() {
    local log=$1 line=$2 msg=$3
    if console_text "$log" | grep -Fxq -- "$line"; then
        TESTS_PASSED=$((TESTS_PASSED + 1)); echo "PASS $msg"; return 0
    fi
    TESTS_FAILED=$((TESTS_FAILED + 1))
    echo "FAIL $msg (no line '$line' in $log)"
    return 1
}

refute_console() {
    local log=$1 re=$2 msg=$3 hit
    if hit=$(console_text "$log" | grep -Em1 -- "$re"); then
        TESTS_FAILED=$((TESTS_FAILED + 1))
        echo "FAIL $msg (unexpected line '$hit' in $log)"
        return 1
    fi
    TESTS_PASSED=$((TESTS_PASSED + 1)); echo "PASS $msg"; return 0
}

tests_summary() {
    echo "$TESTS_PASSED passed, $TESTS_FAILED failed"
    [ "$TESTS_FAILED" = 0 ]
}
