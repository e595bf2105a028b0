#!/usr/bin/env bash
# check-man-options.sh TOOL MANPAGE: the man page and the --help texts name
# the same long options. Every long option `TOOL --help` or `TOOL CMD --help`
# prints appears in the man page (a command's in its COMMANDS subsection),
# and every option the man page documents (a .TP tag) appears in that
# command's --help (the OPTIONS section's in the tool's own). Prints one line
# per mismatch; exit 1 if there is any.
set -u
tool=$1 page=$2
commands="init build render certs flash publish inspect verify"
bad=0

long_options() { grep -oE -- '--[a-z][a-z0-9-]*' | sort -u; }
# troff to plain text enough for option names: \- is -, fonts dropped.
plain() { sed -e 's/\\-/-/g' -e 's/\\f[BIRP]//g' -e 's/\\&//g'; }
# The lines of one section: .SH OPTIONS, or the .SS whose first word is CMD.
section() {
	awk -v want="$1" '
		/^\.S[HS] / { t = $0; sub(/^\.S[HS] +"?/, "", t); split(t, w, /[ "]/); on = (w[1] == want); next }
		on' "$page"
}
# Option names in .TP tags (the line after .TP).
tags() { awk 'p ~ /^\.TP/ { print } { p = $0 }'; }
help_of() {
	if [ "$1" = tool ]; then "$tool" --help; else "$tool" "$1" --help; fi
}

[ -r "$page" ] || { echo "cannot read '$page'"; exit 1; }
for cmd in tool $commands; do
	if ! help=$(help_of "$cmd" 2>&1); then
		echo "'$cmd --help' failed"
		bad=1
		continue
	fi
	help_opts=$(printf '%s\n' "$help" | long_options)
	if [ "$cmd" = tool ]; then
		text=$(plain <"$page")
		sect=$(section OPTIONS)
	else
		sect=$(section "$cmd")
		text=$(printf '%s\n' "$sect" | plain)
		[ -n "$sect" ] || { echo "man page: no COMMANDS subsection for '$cmd'"; bad=1; continue; }
	fi
	for o in $help_opts; do
		printf '%s\n' "$text" | long_options | grep -qxF -- "$o" ||
			{ echo "$cmd: '$o' is in --help but not in the man page"; bad=1; }
	done
	for o in $(printf '%s\n' "$sect" | tags | plain | long_options); do
		printf '%s\n' "$help_opts" | grep -qxF -- "$o" ||
			{ echo "$cmd: the man page documents '$o' but --help does not print it"; bad=1; }
	done
done
exit "$bad"
