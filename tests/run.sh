#!/usr/bin/env bash
# Runs the whole suite: unit test binaries from BUILD/tests, then every
# tests/e2e/test_*.sh. Each e2e script prints "PASS name" / "FAIL name: why"
# (and "SKIP name: why" only where something cannot run); the last line is
# the summary CI reads.
set -uo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
DLWS_MKIMAGE=${DLWS_MKIMAGE:-$PWD/dlws-mkimage}
export DLWS_ROOT=$PWD
only=${TESTS:-}

passed=0 failed=0 skipped=0
failures=()
count() {
	local name=$1 out=$2
	local p f s
	p=$(grep -c '^PASS ' "$out" || true)
	f=$(grep -c '^FAIL ' "$out" || true)
	s=$(grep -c '^SKIP ' "$out" || true)
	passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
	grep -E '^(FAIL|SKIP) ' "$out" | sed "s|^|  $name: |" || true
	[ "$f" -eq 0 ] || failures+=("$name")
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# One pass: unit binaries of a build dir, then every e2e script with a
# given dlws-mkimage binary. Names get a prefix so passes stay apart.
run_pass() {
	local prefix=$1 unit_dir=$2 tool=$3
	local tmp=$tmp/pass${prefix%/}
	mkdir -p "$tmp"
	export DLWS_MKIMAGE=$tool DLWS_UNIT_DIR=$unit_dir
	for t in "$unit_dir"/test_*; do
		[ -x "$t" ] || continue
		name=${prefix}unit/$(basename "$t")
		[ -z "$only" ] || [[ $name == *$only* ]] || continue
		if "$t" >"$tmp/out" 2>&1; then
			echo "PASS $name"
			passed=$((passed + 1))
		else
			echo "FAIL $name"
			sed 's/^/    /' "$tmp/out" | tail -40
			failed=$((failed + 1))
			failures+=("$name")
		fi
	done
	for t in tests/e2e/test_*.sh; do
		name=${prefix}e2e/$(basename "$t" .sh)
		[ -z "$only" ] || [[ $name == *$only* ]] || continue
		# A script that runs none of our C code has nothing to find under ASan.
		[ -n "$prefix" ] && grep -q '^# asan-pass: no' "$t" && continue
		t0=$(date +%s)
		bash "$t" >"$tmp/out" 2>&1
		rc=$?
		echo "== $name ($(( $(date +%s) - t0 ))s)"
		grep -E '^(PASS|FAIL|SKIP) ' "$tmp/out" | sed 's/^/  /'
		count "$name" "$tmp/out" >/dev/null
		if [ $rc -ne 0 ] && ! grep -q '^FAIL ' "$tmp/out"; then
			echo "  FAIL $name: exited $rc without a FAIL line"
			failed=$((failed + 1))
			failures+=("$name")
		fi
		if [ $rc -ne 0 ]; then
			sed 's/^/    | /' "$tmp/out" | grep -vE '^    \| (PASS|SKIP) ' | tail -30
		fi
	done
	echo "$passed $failed $skipped ${failures[*]}" >"$tmp/counts"
}

start=$(date +%s)
# The same suite again with the tool and unit tests built with ASan/UBSan
# (make check builds them): memory errors, leaks and undefined behaviour
# fail the run. The two passes share nothing (each test has its own temp
# dir, namespaces and ports), so they run side by side, one per core; the
# ASan pass's report is printed when both are done. DLWS_TEST_SERIAL=1 runs
# them one after the other.
asan_pid=
if [ -n "${ASAN_BUILD:-}" ]; then
	asan_pass() {
		export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1} UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
		export DLWS_ASAN_PASS=1 DLWS_TEST_LOGS=$PWD/out/test-logs/asan
		mkdir -p "$DLWS_TEST_LOGS"
		run_pass "asan/" "$PWD/$ASAN_BUILD/tests" "$PWD/$ASAN_BUILD/dlws-mkimage"
	}
	if [ "${DLWS_TEST_SERIAL:-0}" = 1 ]; then
		run_pass "" "$PWD/$build/tests" "$DLWS_MKIMAGE"
		(asan_pass) >"$tmp/asan.log" 2>&1
	else
		(asan_pass) >"$tmp/asan.log" 2>&1 &
		asan_pid=$!
		run_pass "" "$PWD/$build/tests" "$DLWS_MKIMAGE"
		wait "$asan_pid"
	fi
else
	run_pass "" "$PWD/$build/tests" "$DLWS_MKIMAGE"
fi
read -r passed failed skipped rest <"$tmp/pass/counts"
read -ra failures <<<"$rest"
if [ -n "${ASAN_BUILD:-}" ]; then
	cat "$tmp/asan.log"
	if read -r p f s rest <"$tmp/passasan/counts"; then
		passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
		read -ra more <<<"$rest"
		failures+=("${more[@]}")
	else
		echo "FAIL asan: the ASan pass ended without a summary"
		failed=$((failed + 1))
		failures+=("asan")
	fi
fi

echo
echo "suite took $(( $(date +%s) - start ))s"
[ ${#failures[@]} -eq 0 ] || echo "failed: ${failures[*]}"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
