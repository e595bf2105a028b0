#!/usr/bin/env bash
# asan-pass: no (boots three VMs; its only dlws-mkimage use is one build,
# which the other tests already run under ASan)
# The install unit under the REAL systemd: on Flatcar the node's Ignition
# config runs the install agent from dlws-install.service (Type=oneshot,
# TimeoutStartSec=infinity, ExecStartPost=systemctl --no-block <after>)
# because coreos-cloudinit stopped waiting for it after 10 minutes and cut
# long installs off. We cannot boot Flatcar here, so this test boots a tiny
# VM whose PID 1 is the host's systemd (Debian 12: systemd 252; built by
# tests/lib/mksystemdvm.sh) with that unit copied verbatim from the
# config.ign of a real build, and a stand-in agent that "writes the image"
# for 11 minutes of guest time.
#
# Simulated time: QEMU runs with -icount shift=0,sleep=off. The guest clock
# is then QEMU's virtual clock (1 ns per guest instruction: the same guest
# timeline on a fast or a loaded host), and with sleep=off it jumps to the
# next timer whenever the guest is idle, so 11 minutes of `sleep` pass in
# seconds of wall time -- while systemd's own timers (a start timeout would
# be one) run on that same clock. (shift=auto,sleep=off works too, but its
# guest times depend on the host's speed.)
#
#   ok            the unit as built: the stand-in finishes after 660 s, systemd
#                 neither times it out nor kills it, and the unit's
#                 ExecStartPost powers the VM off.
#   control       the same VM with ONLY TimeoutStartSec=infinity replaced by
#                 TimeoutStartSec=10min (coreos-cloudinit's 10-minute wait,
#                 as systemd would enforce it): systemd cuts the install off
#                 at 600 s, no completion, no after-step. Shows that the
#                 harness catches a cut-off.
#   failed        the stand-in exits 1 after 110 s: the unit fails and its
#                 ExecStartPost (the poweroff) does not run.
#
# How we know who ended the VM: the VM's /usr/bin/systemctl is a wrapper
# that prints "DLWS-TEST-SYSTEMCTL: <unit> ran 'systemctl ARGS'" (the unit
# from its cgroup) before running the real systemctl; the unit's after-step
# is poweroff. The control and failed VMs have one more unit,
# dlws-test-watchdog.timer (ordered after dlws-install.service): 120 s of
# guest time after the install ended, its service prints DLWS-TEST-WATCHDOG
# and *reboots*, which ends QEMU (-no-reboot) as "reboot", never "poweroff".
# (Chosen over FailureAction= or a drop-in, which would change the unit.)
# The ok VM has no such unit: only the unit under test can end it.
#
# Environment: DLWS_BASE_DIR (kernel: default out/base/vmlinuz, `make
# base`), BOOT_TIMEOUT (wall seconds per boot, default 150), KEEP_LOGS=1
# keeps the console logs even on success.
# shellcheck source=../lib/e2e.sh
. "$(dirname "$0")/../lib/e2e.sh"
# shellcheck source=../lib/qemu-boot.sh
. "$ROOT/tests/lib/qemu-boot.sh"
NAME=test_install_timeout
BOOT_TIMEOUT=${BOOT_TIMEOUT:-150}
ICOUNT=shift=0,sleep=off
export LC_ALL=C
T0=$(date +%s.%N)

# Console logs live apart from WORK so that a failure keeps only them.
LOGS=$(mktemp -d "${TMPDIR:-/tmp}/dlws-$NAME-logs.XXXXXX")
cleanup() {
	rm -rf "$WORK"
	if [ "$TESTS_FAILED" != 0 ] || [ "${KEEP_LOGS:-0}" = 1 ]; then
		echo "console logs kept in $LOGS"
	else
		rm -rf "$LOGS"
	fi
}
trap cleanup EXIT

ok() { TESTS_PASSED=$((TESTS_PASSED + 1)); echo "PASS $1"; }
bad() { TESTS_FAILED=$((TESTS_FAILED + 1)); echo "FAIL $1: $2"; }
die() { bad "$1" "$2"; tests_summary >/dev/null; exit 1; }

# --- what is needed ------------------------------------------------------------
# Only QEMU and systemd may be missing (the suite installs both): then SKIP.
if ! command -v qemu-system-x86_64 >/dev/null 2>&1; then
	echo "SKIP $NAME: qemu-system-x86_64 is not installed (apt-get install qemu-system-x86);"
	echo "SKIP $NAME: the install unit's missing start timeout is NOT tested"
	exit 0
fi
if [ ! -x /usr/lib/systemd/systemd ] || [ ! -x /usr/bin/systemctl ]; then
	echo "SKIP $NAME: systemd is not installed (apt-get install systemd);"
	echo "SKIP $NAME: the install unit's missing start timeout is NOT tested"
	exit 0
fi
for t in bsdtar jq cpio gzip bzip2; do
	command -v "$t" >/dev/null 2>&1 || die setup "'$t' is not installed (see scripts/install-deps.sh)"
done
KERNEL=${DLWS_BASE_DIR:-$ROOT/out/base}/vmlinuz
[ -f "$KERNEL" ] || die setup "no kernel at $KERNEL (run 'make base')"

# --- the unit under test, from a real build ---------------------------------
cd "$WORK" || die setup "no work dir"
make_project p
cd p || die setup "no project"
sed -i 's|^  cmdline: .*|&\n  image: ../out/os.img.bz2|' recipes/master.recipe
printf 'install: { device: auto, after: poweroff }\n' >>recipes/master.recipe
printf 'stand-in OS image\n' | bzip2 >out/os.img.bz2
# The agent and payload script in the payload do not matter here (the VM
# runs the stand-in below), so the build does not need `make`'s.
printf '#!/bin/sh\nexit 0\n' >"$WORK/agent-stand-in"
export DLWS_AGENT=$WORK/agent-stand-in DLWS_PAYLOAD_SCRIPT=$WORK/agent-stand-in
"$MK" -q recipes/master.recipe >"$WORK/build.out" 2>&1 ||
	die build "recipes/master.recipe with install: did not build: $(head -5 "$WORK/build.out")"
IGN=$WORK/config.ign
bsdtar -xOf out/master-initrd/node-dlws-master.cpio.zst usr/share/oem/config.ign >"$IGN" 2>/dev/null ||
	die build "no usr/share/oem/config.ign in node-dlws-master.cpio.zst"
UNIT=$WORK/dlws-install.service
# -j: the contents exactly, without a newline added.
jq -j '.systemd.units[] | select(.name == "dlws-install.service") | .contents' "$IGN" >"$UNIT"
[ -s "$UNIT" ] || die unit "no dlws-install.service in config.ign"
[ "$(jq '[.systemd.units[] | select(.name == "dlws-install.service") | .enabled] == [true]' "$IGN")" = true ] ||
	die unit "dlws-install.service is not enabled in config.ign"
echo "unit under test (from config.ign):"
sed 's/^/    | /' "$UNIT"
grep -qx 'ExecStartPost=/usr/bin/systemctl --no-block poweroff' "$UNIT" ||
	die unit "no 'ExecStartPost=/usr/bin/systemctl --no-block poweroff' line (after: poweroff)"

# The control: the one TimeoutStartSec= line becomes coreos-cloudinit's 10
# minutes; nothing else changes (checked with diff).
CONTROL=$WORK/dlws-install.service.control
[ "$(grep -c '^TimeoutStartSec=' "$UNIT")" = 1 ] ||
	die control "the unit has not exactly one TimeoutStartSec= line to replace"
sed 's/^TimeoutStartSec=.*/TimeoutStartSec=10min/' "$UNIT" >"$CONTROL"
d=$(diff "$UNIT" "$CONTROL" | grep -c '^[<>]')
[ "$d" = 2 ] || die control "the control differs from the unit in more than one line"

# --- the VMs -------------------------------------------------------------------
echo "building the systemd VM initramfs"
TMPDIR=$WORK bash "$ROOT/tests/lib/mksystemdvm.sh" "$WORK/systemd.cpio.gz" 2>"$WORK/mksystemdvm.err" ||
	die setup "tests/lib/mksystemdvm.sh failed: $(cat "$WORK/mksystemdvm.err")"

WRITE_SECS=660 # 11 minutes: longer than coreos-cloudinit's 10
WATCHDOG_SECS=120

# variant NAME UNIT-FILE FAIL-AFTER WATCHDOG -> $WORK/NAME.img: the systemd
# VM plus a segment with the unit, its stand-in dependencies and agent.
# FAIL-AFTER: seconds of writing after which the stand-in exits 1 (0: never).
variant() {
	local name=$1 unit=$2 fail_after=$3 watchdog=$4 v=$WORK/v-$1
	local sys=$v/etc/systemd/system
	mkdir -p "$sys/multi-user.target.wants" "$v/usr/share/oem/dlws" "$v/usr/lib/dlws-test"
	# The unit under test, byte for byte, enabled as `systemctl enable`
	# (and so Ignition's enabled: true) does.
	cp "$unit" "$sys/dlws-install.service"
	ln -s ../dlws-install.service "$sys/multi-user.target.wants/dlws-install.service"
	# Stand-ins for the two units it Requires=/Wants= and is ordered after,
	# which on a node put the payload in place (not what is tested here).
	local u
	for u in dlws-payload dlws-medium; do
		cat >"$sys/$u.service" <<-EOF
			# Test stand-in for the node's $u.service: does nothing.
			[Unit]
			Description=Stand-in for $u.service (test)

			[Service]
			Type=oneshot
			RemainAfterExit=yes
			ExecStart=/usr/bin/true
		EOF
	done
	# The stand-in agent. It writes to /dev/console itself: the VM has no
	# journald, so the unit's StandardOutput=journal+console goes nowhere.
	cat >"$v/usr/share/oem/dlws/install" <<-EOF
		#!/bin/sh
		# Test stand-in for the install agent: "writes the OS image" for
		# $WRITE_SECS s of guest time in 10 s steps$([ "$fail_after" = 0 ] || echo ", fails after $fail_after s").
		exec >/dev/console 2>&1
		total=$WRITE_SECS fail_after=$fail_after t=0
		read -r start _ </proc/uptime
		trap 'read -r now _ </proc/uptime; echo "DLWS-STANDIN: terminated by SIGTERM after \$t s written (guest uptime \$now s, started at \$start s)"; exit 143' TERM
		echo "DLWS-STANDIN: install started at guest uptime \$start s"
		while [ \$t -lt \$total ]; do
		    sleep 10
		    t=\$((t + 10))
		    [ \$((t % 110)) != 0 ] || echo "stand-in install: \$t s of \$total s written"
		    if [ \$fail_after != 0 ] && [ \$t -ge \$fail_after ]; then
		        echo "DLWS-STANDIN: simulated write error after \$t s, exiting 1"
		        exit 1
		    fi
		done
		read -r now _ </proc/uptime
		echo "DLWS-STANDIN: install complete after \$total s"
		echo "DLWS-STANDIN: guest uptime \$now s (started at \$start s)"
		exit 0
	EOF
	chmod 0755 "$v/usr/share/oem/dlws/install"
	if [ "$watchdog" = 1 ]; then
		# Test harness only (control and failed VMs): a timer that ends the
		# VM when nothing else does, $WATCHDOG_SECS s of guest time after the
		# install ended (After= waits for success and failure alike). It
		# reboots, so the VM's end tells it apart from the unit's poweroff.
		cat >"$sys/dlws-test-watchdog.timer" <<-EOF
			[Unit]
			Description=Test watchdog: reboot the VM if it is still up
			DefaultDependencies=no
			After=dlws-install.service

			[Timer]
			OnActiveSec=$WATCHDOG_SECS
			AccuracySec=1s

			[Install]
			WantedBy=multi-user.target
		EOF
		ln -s ../dlws-test-watchdog.timer "$sys/multi-user.target.wants/dlws-test-watchdog.timer"
		cat >"$sys/dlws-test-watchdog.service" <<-EOF
			[Unit]
			Description=Test watchdog: reboot the VM
			DefaultDependencies=no

			[Service]
			Type=oneshot
			ExecStart=/usr/lib/dlws-test/watchdog
		EOF
		cat >"$v/usr/lib/dlws-test/watchdog" <<-EOF
			#!/bin/sh
			read -r now _ </proc/uptime
			echo "DLWS-TEST-WATCHDOG: still up $WATCHDOG_SECS s after the install ended (guest uptime \$now s); rebooting" >/dev/console
			exec /usr/bin/systemctl --no-block reboot
		EOF
		chmod 0755 "$v/usr/lib/dlws-test/watchdog"
	fi
	bash "$ROOT/tests/lib/mksystemdvm.sh" --pack "$v" "$WORK/$name.seg.gz" ||
		die setup "packing the $name segment failed"
	cat "$WORK/systemd.cpio.gz" "$WORK/$name.seg.gz" >"$WORK/$name.img"
}

APPEND="console=ttyS0 loglevel=4 panic=1 systemd.unit=multi-user.target systemd.log_target=console"
# status_unit_format=name: "[FAILED] Failed to start dlws-install.service."
# (with descriptions, status lines are cut to 80 columns on a serial console).
APPEND="$APPEND systemd.log_level=info systemd.show_status=1 systemd.status_unit_format=name"
APPEND="$APPEND systemd.log_color=0"
TIMES=()
# boot NAME WANT-END: boots NAME.img; PASS if QEMU ended by itself with
# WANT-END (poweroff | reboot). Sets LOG.
boot() {
	local name=$1 want=$2 rc up
	LOG=$LOGS/$name.console.log
	qemu_boot "$name" "$BOOT_TIMEOUT" "$LOG" -- -kernel "$KERNEL" -initrd "$WORK/$name.img" \
		-append "$APPEND" -icount "$ICOUNT" -m 512
	rc=$?
	# Guest uptime at the end: the timestamp of the kernel's last message
	# ("reboot: Power down" / "Restarting system" when the VM ended).
	up=$(console_text "$LOG" | sed -n 's/^\[ *\([0-9]*\.[0-9]*\)\] .*/\1/p' | tail -1)
	TIMES+=("$name: ${QEMU_BOOT_SECS}s wall, ${up:-?}s guest")
	echo "TIME $name: ${QEMU_BOOT_SECS} s of wall time, guest uptime at the end ${up:-?} s (end: $QEMU_BOOT_END)"
	if [ "$rc" = 0 ] && [ "$QEMU_BOOT_END" = "$want" ]; then
		ok "$name: the VM ended by itself with a $want"
	else
		bad "$name" "the VM did not end with a $want (rc=$rc, end=$QEMU_BOOT_END); console log: $LOG"
	fi
}
# line_of ERE: number of the first console line matching ERE (0: none).
line_of() { console_text "$LOG" | grep -nEm1 -- "$1" | cut -d: -f1 | grep . || echo 0; }
# assert_before ERE1 ERE2 MSG: both appear, ERE1 first.
assert_before() {
	local a b
	a=$(line_of "$1") b=$(line_of "$2")
	if [ "$a" != 0 ] && [ "$b" != 0 ] && [ "$a" -lt "$b" ]; then ok "$3"; else bad "$3" "lines $a and $b in $LOG"; fi
}
# uptime_of ERE: the first number after "uptime " on the first line matching ERE.
uptime_of() { console_text "$LOG" | grep -Em1 -- "$1" | sed -n 's/.*uptime \([0-9.]*\) s.*/\1/p'; }
# assert_range VALUE MIN MAX MSG
assert_range() {
	if [ -n "$1" ] && awk -v v="$1" -v a="$2" -v b="$3" 'BEGIN { exit !(v >= a && v <= b) }'; then
		ok "$4 ($1)"
	else
		bad "$4" "'${1:-none}' is not in [$2, $3] ($LOG)"
	fi
}

NOT_CUT='dlws-install\.service: .*(timed out|[Kk]illing|Failed with result)|Failed to start dlws-install\.service|^DLWS-STANDIN: terminated'
POST_RAN="^DLWS-TEST-SYSTEMCTL: dlws-install\.service ran 'systemctl --no-block poweroff'$"

# --- ok: the unit as built --------------------------------------------------
variant ok "$UNIT" 0 0
if cmp -s "$UNIT" "$WORK/v-ok/etc/systemd/system/dlws-install.service"; then
	ok "ok: the VM's dlws-install.service is config.ign's, byte for byte"
else
	bad ok "the VM's dlws-install.service differs from config.ign's"
fi
boot ok poweroff
assert_console "$LOG" '^systemd [0-9]+.* running in system mode' \
	"ok: the real systemd runs as PID 1"
assert_console "$LOG" '^DLWS-STANDIN: install started' "ok: systemd started the install unit"
assert_console_line "$LOG" "stand-in install: $WRITE_SECS s of $WRITE_SECS s written" \
	"ok: still writing after coreos-cloudinit's 10 minutes"
assert_console_line "$LOG" "DLWS-STANDIN: install complete after $WRITE_SECS s" "ok: the 11-minute install completed"
refute_console "$LOG" "$NOT_CUT" "ok: systemd neither timed out nor killed dlws-install.service"
assert_console "$LOG" "$POST_RAN" "ok: the unit's ExecStartPost ran 'systemctl --no-block poweroff'"
assert_before '^DLWS-STANDIN: install complete' "$POST_RAN" "ok: the after-step ran after the install completed"
assert_console "$LOG" 'Reached target poweroff\.target' "ok: systemd powered off"
s=$(uptime_of '^DLWS-STANDIN: guest uptime') st=$(console_text "$LOG" | sed -n 's/.*started at \([0-9.]*\) s).*/\1/p' | head -1)
[ -n "$s" ] && [ -n "$st" ] && s=$(awk -v a="$s" -v b="$st" 'BEGIN { printf "%.2f", a - b }')
assert_range "$s" "$WRITE_SECS" $((WRITE_SECS + 30)) "ok: guest seconds the stand-in ran"

# --- control: TimeoutStartSec=10min -------------------------------------------
variant control "$CONTROL" 0 1
boot control reboot
assert_console "$LOG" '^DLWS-STANDIN: install started' "control: systemd started the install unit"
assert_console "$LOG" 'dlws-install\.service: start operation timed out' "control: systemd timed the install out"
assert_console "$LOG" '^DLWS-STANDIN: terminated by SIGTERM' "control: the stand-in was killed"
refute_console "$LOG" "^DLWS-STANDIN: install complete" "control: the install did not complete"
assert_console "$LOG" "^dlws-install\.service: Failed with result 'timeout'" "control: the unit failed (timeout)"
assert_console "$LOG" '^\[FAILED\] Failed to start dlws-install\.service' "control: [FAILED] dlws-install.service"
refute_console "$LOG" "^DLWS-TEST-SYSTEMCTL: dlws-install\.service ran" "control: the after-step did not run"
assert_console "$LOG" '^DLWS-TEST-WATCHDOG: ' "control: the VM stayed up until the test's watchdog"
k=$(uptime_of '^DLWS-STANDIN: terminated') st=$(uptime_of '^DLWS-STANDIN: install started')
[ -n "$k" ] && [ -n "$st" ] && k=$(awk -v a="$k" -v b="$st" 'BEGIN { printf "%.2f", a - b }')
assert_range "$k" 595 610 "control: cut off after 10 minutes of guest time"

# --- failed: the stand-in exits 1 --------------------------------------------
variant failed "$UNIT" 110 1
boot failed reboot
assert_console_line "$LOG" "DLWS-STANDIN: simulated write error after 110 s, exiting 1" "failed: the stand-in failed"
assert_console "$LOG" 'dlws-install\.service: Main process exited, code=exited, status=1/FAILURE' "failed: systemd saw exit status 1"
assert_console "$LOG" "^dlws-install\.service: Failed with result 'exit-code'" "failed: the unit failed (exit-code)"
assert_console "$LOG" '^\[FAILED\] Failed to start dlws-install\.service' "failed: [FAILED] dlws-install.service"
refute_console "$LOG" "^DLWS-TEST-SYSTEMCTL: dlws-install\.service ran" "failed: the after-step (poweroff) did not run"
assert_console "$LOG" '^DLWS-TEST-WATCHDOG: ' "failed: the VM stayed up until the test's watchdog"
refute_console "$LOG" 'Reached target poweroff\.target' "failed: no poweroff"

echo "QEMU -icount $ICOUNT; $(printf '%s; ' "${TIMES[@]}")total $(_qb_elapsed "$T0" "$(date +%s.%N)") s"
if tests_summary; then
	echo "PASS $NAME"
	exit 0
fi
echo "FAIL $NAME (console logs in $LOGS)"
exit 1
