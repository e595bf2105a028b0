# Sourced by tests: flip_byte FILE OFFSET inverts every bit of the byte at
# OFFSET, so the file always changes (writing a fixed byte does nothing
# when the file already holds it: 1 run in 256 on compressed data).
flip_byte() {
	local b
	b=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
	[ -n "$b" ] || { echo "flip_byte: $1 has no byte at $2" >&2; return 1; }
	# shellcheck disable=SC2059
	printf "\\$(printf '%03o' $((255 - b)))" |
		dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}
