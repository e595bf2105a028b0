#!/usr/bin/env bash
# asan-pass: no (the harnesses are built with ASan/UBSan themselves)
# The libFuzzer harnesses (fuzz/) once over their corpora: the shipped
# recipes, templates and fixtures, and every crash the fuzzers ever found
# (fuzz/corpus/NAME/crash-*), so a fixed parser bug stays fixed. One
# PASS/FAIL per harness; `make fuzz` is the long run.
. "$(dirname "$0")/../lib/e2e.sh"

if ! command -v clang >/dev/null; then
	skip fuzz-regress "clang is not installed (make deps installs it)"
	finish
fi
if ! make -s -C "$ROOT" fuzz-build >"$WORK/build.log" 2>&1; then
	fail fuzz-build "make fuzz-build failed: $(grep -m1 -E 'error|Error' "$WORK/build.log")"
	sed 's/^/    | /' "$WORK/build.log" | tail -20
	finish
fi
# Every scratch file of the runs goes below this test's $WORK, and must be
# gone when they are.
mkdir "$WORK/tmp"
TMPDIR=$WORK/tmp "$ROOT/fuzz/run.sh" regress >"$WORK/run.log" 2>&1
cat "$WORK/run.log"
grep -q '^FAIL ' "$WORK/run.log" && FAILED=1
grep -q '^PASS ' "$WORK/run.log" || fail fuzz-regress "no harness ran"
leftover=$(find "$WORK/tmp" -mindepth 1 -maxdepth 1)
[ -z "$leftover" ] || fail fuzz-scratch "the runs left files behind: $leftover"
finish
