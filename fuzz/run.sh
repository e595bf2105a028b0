#!/usr/bin/env bash
# Runs the libFuzzer harnesses built by fuzz/fuzz.mk (in $FUZZ_BUILD).
#   fuzz/run.sh regress [NAME...]   each harness once over every file of
#                                   fuzz/corpus/NAME; "PASS fuzz_NAME" or
#                                   "FAIL fuzz_NAME: why" per harness
#   fuzz/run.sh fuzz [NAME...]      each for $FUZZ_TIME seconds, one after
#                                   the other; executions, cov and ft of each
# Without names: every fuzz/fuzz_*.c. New corpus entries and crashes go to
# $FUZZ_BUILD/corpus/NAME and $FUZZ_BUILD/artifacts/NAME, never into the
# committed seeds: a crash becomes a seed (fuzz/corpus/NAME/crash-WHAT) by
# hand, with its fix.
set -uo pipefail
cd "$(dirname "$0")/.."
mode=${1:-}
shift || true
build=${FUZZ_BUILD:-build-fuzz}
time=${FUZZ_TIME:-600}
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
	for f in fuzz/fuzz_*.c; do
		names+=("$(basename "$f" .c | sed 's/^fuzz_//')")
	done
fi
if [ -n "${FUZZ:-}" ]; then
	IFS=, read -r -a names <<<"$FUZZ"
fi
# No harness may wait on a terminal (a recipe can name /dev/stdin).
exec </dev/null
# The limits a finding must break: 25 s for one input, 2.5 GiB of memory.
common=(-timeout=25 -rss_limit_mb=2560)
failed=0
# The harnesses' scratch directories: a harness that dies of a finding
# cannot remove its own.
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

regress() {
	local name=$1 bin=$build/fuzz_$1 log
	local -a seeds=(fuzz/corpus/"$name"/*)
	if [ ! -x "$bin" ]; then
		echo "FAIL fuzz_$name: $bin is not built (make fuzz-build)"
		return 1
	fi
	if [ ! -e "${seeds[0]}" ]; then
		echo "FAIL fuzz_$name: no seeds in fuzz/corpus/$name"
		return 1
	fi
	log=$(mktemp)
	# Files, not the directory: each runs once and nothing is written.
	if TMPDIR=$scratch "$bin" "${common[@]}" "${seeds[@]}" >"$log" 2>&1; then
		echo "PASS fuzz_$name (${#seeds[@]} inputs)"
		rm -f "$log"
		return 0
	fi
	local why
	why=$(grep -m1 -E 'ERROR|SUMMARY|runtime error' "$log")
	echo "FAIL fuzz_$name: ${why:-exited non-zero}"
	grep -E '^Running: ' "$log" | tail -1 | sed 's/^Running: /    input: /'
	grep -v -E '^(Running:|Executed) ' "$log" | tail -30 | sed 's/^/    | /'
	rm -f "$log"
	return 1
}

fuzz() {
	local name=$1 bin=$build/fuzz_$1 log dict=()
	local corpus=$build/corpus/$name artifacts=$build/artifacts/$name/
	mkdir -p "$corpus" "$artifacts" "$build/logs"
	log=$build/logs/$name.log
	# One dictionary per harness: its own words, and YAML's for those whose
	# input is (or renders) YAML.
	local words=()
	[ -f "fuzz/$name.dict" ] && words+=("fuzz/$name.dict")
	case $name in recipe | cluster | cloudconfig | template) words+=(fuzz/yaml.dict) ;; esac
	if [ ${#words[@]} -gt 0 ]; then
		mkdir -p "$build/dict"
		cat "${words[@]}" >"$build/dict/$name.dict"
		dict=(-dict="$build/dict/$name.dict")
	fi
	TMPDIR=$scratch "$bin" "${common[@]}" "${dict[@]}" -max_total_time="$time" -print_final_stats=1 \
		-artifact_prefix="$artifacts" "$corpus" "fuzz/corpus/$name" >"$log" 2>&1
	local rc=$?
	# libFuzzer's last status line ("#N DONE cov: C ft: F corp: ...") and
	# its final stats.
	local done execs cov ft
	done=$(grep -E '^#[0-9]+' "$log" | tail -1)
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
	cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$done")
	ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$done")
	printf '%-16s execs %-10s cov %-6s ft %-6s corpus %s' "fuzz_$name" "${execs:-?}" "${cov:-?}" "${ft:-?}" \
		"$(find "$corpus" -type f | wc -l) new"
	if [ $rc -ne 0 ]; then
		printf '  FAILED (exit %d): %s; see %s\n' "$rc" "$(ls "$artifacts" | tail -1)" "$log"
		return 1
	fi
	printf '\n'
}

for n in "${names[@]}"; do
	case $mode in
	regress) regress "$n" || failed=1 ;;
	fuzz) fuzz "$n" || failed=1 ;;
	*) echo "usage: fuzz/run.sh regress|fuzz [NAME...]" >&2; exit 2 ;;
	esac
done
exit $failed
