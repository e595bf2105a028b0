#!/usr/bin/env bash
# The status line of a build's long steps: under a pseudo-terminal the
# payload segment's compression and the ISO's writing show a percentage,
# rate and time left, redrawn in place and ended with "done in"; nothing of
# it with standard error on a file or with -q; steps over before
# DLWS_PROGRESS_DELAY leave no line; outputs are the same either way.
# Builds use --no-cache: a segment from the cache is not compressed.
. "$(dirname "$0")/../lib/e2e.sh"
command -v script >/dev/null || { skip progress "script(1) (util-linux) is not installed"; finish; }
cd "$WORK"
make_project p
cd p
# 64 MiB that gzip cannot shrink: compressing it takes a second or more.
mkdir -p overlays/common/opt
head -c 64M /dev/urandom >overlays/common/opt/big.bin
# Only the ISO, with the file in the shared segment rather than on the medium.
sed -i '/^outputs:/,$d' recipes/master.recipe
printf 'outputs:\n  iso: { path: ../out/master.iso, large_file_size: 1G }\n' >>recipes/master.recipe

# Lines drawn in place: the text between carriage returns and newlines.
draws() { tr '\r' '\n' <"$1" | grep -a "$2"; }

# -q under a terminal: nothing (this first build also makes the PKI).
DLWS_PROGRESS_DELAY=0 script -qec "'$MK' -q --no-cache recipes/master.recipe" /dev/null >tty.out 2>&1
rc=$?
if [ $rc = 0 ] && ! grep -aq '%\|left\|done in' tty.out; then
	pass progress_quiet_on_terminal
else
	fail progress_quiet_on_terminal "rc=$rc $(od -c tty.out | head)"
fi

# Standard error on a file: nothing, whatever the delay.
DLWS_PROGRESS_DELAY=0 "$MK" --no-cache recipes/master.recipe >/dev/null 2>err
rc=$?
cp out/master.iso plain.iso
if [ $rc = 0 ] && [ "$(tr -cd '\r' <err | wc -c)" = 0 ] && ! grep -q '%\|left\|done in' err && grep -q '^wrote ISO' err; then
	pass progress_absent_off_terminal
else
	fail progress_absent_off_terminal "rc=$rc $(od -c err | head)"
fi

# A terminal: the shared segment and the ISO, each from its first draw
# to 100% and "done in", a rate and the time left on the way.
DLWS_PROGRESS_DELAY=0 script -qec "'$MK' --no-cache recipes/master.recipe" /dev/null >tty.out 2>&1
rc=$?
seg=$(draws tty.out '^shared\.cpio\.zst ')
iso=$(draws tty.out '^master\.iso ')
if [ $rc = 0 ] &&
	grep -Eq '\[#*-+\] +[0-9]{1,2}% +[0-9.]+ [KM]iB +[0-9.]+ [KM]iB/s  [0-9]:[0-9][0-9] left' <<<"$seg" &&
	grep -Eq '\[#+\] 100% +64\.0 MiB .* done in [0-9]:[0-9][0-9]' <<<"$seg" &&
	grep -Eq '\[#+\] 100% +[0-9.]+ MiB +[0-9.]+ [KMG]iB/s  done in [0-9]:[0-9][0-9]' <<<"$iso" &&
	grep -aq $'\r''shared\.cpio\.zst ' tty.out && grep -aq $'\r''master\.iso ' tty.out; then
	pass progress_segment_and_iso_on_terminal
else
	fail progress_segment_and_iso_on_terminal "rc=$rc $(tr '\r' '\n' <tty.out | grep -av '^created' | tail -20)"
fi
# Each step's line ends once, with its "done"; messages start on a line of their own.
if [ "$(grep -c 'done in' <<<"$seg")" = 1 ] && [ "$(grep -c 'done in' <<<"$iso")" = 1 ] &&
	grep -aq '^wrote ISO' <(tr -d '\r' <tty.out); then
	pass progress_lines_end_once
else
	fail progress_lines_end_once "$(tr '\r' '\n' <tty.out | grep -a 'done in\|wrote')"
fi
# At most ~10 draws a second: 64 MiB through gzip would otherwise draw
# hundreds of times (once per 64 KiB block).
secs=$(grep -Eo 'done in [0-9]+:[0-9][0-9]' <<<"$seg" | sed 's/done in //' | awk -F: '{ print $1 * 60 + $2 }')
n=$(wc -l <<<"$seg")
if [ -n "$secs" ] && [ "$n" -le $(((secs + 1) * 10 + 3)) ]; then
	pass progress_redraw_rate_limited
else
	fail progress_redraw_rate_limited "$n draws in ${secs}s"
fi
# No line wider than the terminal (80 columns under script): a wrapped
# line is not redrawn in place.
wide=$(tr '\r' '\n' <tty.out | awk 'length($0) > 79' | head -3)
if [ -z "$wide" ]; then pass progress_fits_terminal; else fail progress_fits_terminal "$wide"; fi
if cmp -s plain.iso out/master.iso; then
	pass progress_output_identical
else
	fail progress_output_identical "the ISO differs with progress shown"
fi

# The default delay: a node's small segment is over long before it, so
# it leaves no line.
script -qec "'$MK' --no-cache recipes/master.recipe" /dev/null >tty.out 2>&1
rc=$?
if [ $rc = 0 ] && ! draws tty.out 'dlws-master\.cpio\.zst' >/dev/null && grep -aq '^wrote ISO' <(tr -d '\r' <tty.out); then
	pass progress_delay_hides_quick_steps
else
	fail progress_delay_hides_quick_steps "rc=$rc $(tr '\r' '\n' <tty.out | grep -av '^created' | tail)"
fi
finish
