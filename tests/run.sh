#!/usr/bin/env bash
# Runs the whole suite: unit test binaries from BUILD/tests, then every
# tests/e2e/test_*.sh. Each e2e script prints "PASS name" / "FAIL name: why"
# (and "SKIP name: why" only where something cannot run); the last line is
# the summary CI reads.
set -uo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
export DLWS_MKIMAGE=${DLWS_MKIMAGE:-$PWD/dlws-mkimage}
export DLWS_ROOT=$PWD
export DLWS_UNIT_DIR=$PWD/$build/tests
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

start=$(date +%s)
for t in "$build"/tests/test_*; do
	[ -x "$t" ] || continue
	name=unit/$(basename "$t")
	[ -z "$only" ] || [[ $name == *$only* ]] || continue
	if "$t" >"$tmp/out" 2>&1; then
		echo "PASS $name" | tee -a "$tmp/log"
		passed=$((passed + 1))
	else
		echo "FAIL $name" | tee -a "$tmp/log"
		sed 's/^/    /' "$tmp/out" | tail -40
		failed=$((failed + 1))
		failures+=("$name")
	fi
done

for t in tests/e2e/test_*.sh; do
	name=e2e/$(basename "$t" .sh)
	[ -z "$only" ] || [[ $name == *$only* ]] || continue
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

echo
echo "suite took $(( $(date +%s) - start ))s"
[ ${#failures[@]} -eq 0 ] || echo "failed: ${failures[*]}"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
