#!/usr/bin/env bash
# Runs the whole suite: unit test binaries from BUILD/tests, then every
# tests/e2e/test_*.sh. Each e2e script prints "PASS name" / "FAIL name: why"
# (and "SKIP name: why" only where something cannot run); the last line is
# the summary CI reads.
#
# With ASAN_BUILD set (make check), the suite runs again with the tool, the
# unit tests and the agent built with ASan/UBSan: memory errors, leaks and
# undefined behaviour fail the run. The e2e scripts of both passes share
# nothing (each has its own temp dir, namespaces and ports), so they run as
# one queue on TEST_JOBS slots (default: one per core), the slowest of the
# last run first; each report prints when its script ends.
set -uo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
DLWS_MKIMAGE=${DLWS_MKIMAGE:-$PWD/dlws-mkimage}
export DLWS_ROOT=$PWD
only=${TESTS:-}
jobs=${TEST_JOBS:-$(nproc)}
times=$PWD/out/test-times      # "<seconds> <name>" of the last run, for the order

passed=0 failed=0 skipped=0
failures=()
count() {
	local name=$1 out=$2
	local p f s
	p=$(grep -c '^PASS ' "$out" || true)
	f=$(grep -c '^FAIL ' "$out" || true)
	s=$(grep -c '^SKIP ' "$out" || true)
	passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
	[ "$f" -eq 0 ] || failures+=("$name")
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
start=$(date +%s)

# Unit binaries: quick, one after the other.
units() {
	local prefix=$1 unit_dir=$2
	for t in "$unit_dir"/test_*; do
		[ -x "$t" ] || continue
		name=${prefix}unit/$(basename "$t")
		[ -z "$only" ] || [[ $name == *$only* ]] || continue
		if DLWS_UNIT_DIR=$unit_dir "$t" >"$tmp/out" 2>&1; then
			echo "PASS $name"
			passed=$((passed + 1))
		else
			echo "FAIL $name"
			sed 's/^/    /' "$tmp/out" | tail -40
			failed=$((failed + 1))
			failures+=("$name")
		fi
	done
}
units "" "$PWD/$build/tests"
if [ -n "${ASAN_BUILD:-}" ]; then
	export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1} UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
	units "asan/" "$PWD/$ASAN_BUILD/tests"
fi

# The e2e queue: "name" lines, the slowest of the last run first.
: >"$tmp/queue"
for t in tests/e2e/test_*.sh; do
	base=$(basename "$t" .sh)
	for prefix in "" ${ASAN_BUILD:+asan/}; do
		name=${prefix}e2e/$base
		[ -z "$only" ] || [[ $name == *$only* ]] || continue
		# A script that runs none of our C code has nothing to find under ASan.
		[ -n "$prefix" ] && grep -q '^# asan-pass: no' "$t" && continue
		last=$(awk -v n="$name" '$2 == n { print $1 }' "$times" 2>/dev/null)
		echo "${last:-0} $name" >>"$tmp/queue"
	done
done
sort -k1,1nr -k2 "$tmp/queue" | awk '{ print $2 }' >"$tmp/order"

# run_one NAME: one script, its output in $tmp/NAME.out, "<rc> <seconds>"
# in $tmp/NAME.rc when it ends.
run_one() {
	local name=$1 f=$tmp/${1//\//_}
	local t=tests/e2e/${name##*/}.sh t0=$SECONDS
	if [[ $name == asan/* ]]; then
		DLWS_MKIMAGE=$PWD/$ASAN_BUILD/dlws-mkimage DLWS_UNIT_DIR=$PWD/$ASAN_BUILD/tests DLWS_ASAN_PASS=1 \
			DLWS_TEST_LOGS=$PWD/out/test-logs/asan bash "$t" >"$f.out" 2>&1
	else
		# DLWS_ASAN_ALSO: the script's ASan pass is in this run too.
		env -u ASAN_OPTIONS -u UBSAN_OPTIONS DLWS_MKIMAGE="$DLWS_MKIMAGE" DLWS_UNIT_DIR="$PWD/$build/tests" \
			DLWS_ASAN_ALSO="$(grep -qx "asan/$name" "$tmp/order" && echo 1)" bash "$t" >"$f.out" 2>&1
	fi
	echo "$? $((SECONDS - t0))" >"$f.rc.tmp" && mv "$f.rc.tmp" "$f.rc"
}

report() {
	local name=$1 f=$tmp/${1//\//_} rc secs
	read -r rc secs <"$f.rc"
	echo "== $name (${secs}s)"
	echo "$secs $name" >>"$tmp/times"
	grep -E '^(PASS|FAIL|SKIP) ' "$f.out" | sed 's/^/  /'
	count "$name" "$f.out"
	if [ "$rc" -ne 0 ] && ! grep -q '^FAIL ' "$f.out"; then
		echo "  FAIL $name: exited $rc without a FAIL line"
		failed=$((failed + 1))
		failures+=("$name")
	fi
	if [ "$rc" -ne 0 ]; then
		sed 's/^/    | /' "$f.out" | grep -vE '^    \| (PASS|SKIP) ' | tail -30
	fi
}

mkdir -p out/test-logs/asan
: >"$tmp/times"
mapfile -t order <"$tmp/order"
running=()
# Reports every script that has ended; keeps the others running.
reap() {
	local still=() r
	for r in "${running[@]}"; do
		if [ -e "$tmp/${r//\//_}.rc" ]; then report "$r"; else still+=("$r"); fi
	done
	running=("${still[@]}")
}
for name in "${order[@]}"; do
	while [ ${#running[@]} -ge "$jobs" ]; do
		reap
		[ ${#running[@]} -lt "$jobs" ] || sleep 0.2
	done
	run_one "$name" &
	running+=("$name")
done
while [ ${#running[@]} -gt 0 ]; do
	reap
	[ ${#running[@]} -eq 0 ] || sleep 0.2
done
wait
[ -n "$only" ] || sort -k1,1nr "$tmp/times" >"$times" 2>/dev/null

echo
echo "suite took $(( $(date +%s) - start ))s"
[ ${#failures[@]} -eq 0 ] || echo "failed: ${failures[*]}"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
