# Sourced by tests: unpack_all SRC... DEST copies every output into DEST
# and unpacks every container in it, recursively, with independent tools:
# an ISO with bsdtar (and its FAT EFI image with mtools), a tar with tar,
# gzip/bzip2/xz/zstd by decompressing, a cpio with bsdtar, a squashfs with
# unsquashfs, a disk image with guestfish --ro. What a container holds goes
# into "<container>.d/" beside it, and the container itself stays, so a
# grep -r over DEST reads every byte both as packed and as unpacked.
# Directories are made writable (an ISO's are not) so DEST can be removed;
# file modes stay as the container recorded them.

# unpack_kind DESCRIPTION: sets UNPACK_KIND to the reader of a file that
# file(1) describes so. One file(1) run per directory level and no
# subshell per file: a process per file costs seconds here.
unpack_kind() {
	case $1 in
	"ISO 9660"*) UNPACK_KIND=iso ;;
	gzip*) UNPACK_KIND=gzip ;;
	bzip2*) UNPACK_KIND=bzip2 ;;
	XZ*) UNPACK_KIND=xz ;;
	Zstandard*) UNPACK_KIND=zstd ;;
	*cpio\ archive*) UNPACK_KIND=cpio ;;
	*tar\ archive*) UNPACK_KIND=tar ;;
	Squashfs*) UNPACK_KIND=squashfs ;;
	*FAT\ \(*) UNPACK_KIND=fat ;;
	QEMU\ QCOW* | *"ID=0xee"*) UNPACK_KIND=disk ;; # qcow2, or a GPT's protective MBR
	*) UNPACK_KIND=plain ;;
	esac
}

# unpack_files FILE...: unpacks each FILE into FILE.d (a compressed one into
# FILE.d/data), then whatever that holds. Returns non-zero when a container
# could not be read: an audit must not pass over bytes it never saw.
unpack_files() {
	[ $# -gt 0 ] || return 0
	local -a kinds inner
	local f kind d i=0 rc=0 desc
	mapfile -t kinds < <(file -b -- "$@")
	for f; do
		desc=${kinds[i]}
		i=$((i + 1))
		unpack_kind "$desc"
		kind=$UNPACK_KIND
		[ "$kind" = plain ] && continue
		d=$f.d
		mkdir -p "$d"
		case $kind in
		gzip) gzip -dc <"$f" >"$d/data" ;;
		bzip2) bzip2 -dc <"$f" >"$d/data" ;;
		xz) xz -dc <"$f" >"$d/data" ;;
		zstd) zstd -qdc <"$f" >"$d/data" ;;
		cpio | tar | iso) bsdtar -xpf "$f" -C "$d" ;;
		fat) mcopy -s -n -i "$f" '::*' "$d/" ;;
		squashfs) unsquashfs -q -n -f -d "$d/root" "$f" >/dev/null ;;
		# Needs libguestfs; a test that includes disks checks for it first.
		disk) guestfish --ro -a "$f" -i copy-out / "$d" ;;
		esac || { echo "unpack: cannot read $kind '$f' ($desc)" >&2; rc=1; continue; }
		[ "$kind" = iso ] && find "$d" -type d -exec chmod u+rwx {} +
		# Listed before any is unpacked: find must not meet the new ".d" trees.
		mapfile -d '' inner < <(find "$d" -type f -print0)
		unpack_files "${inner[@]}" || rc=1
	done
	return $rc
}

# unpack_all SRC... DEST: copies each SRC (file or directory) into DEST and
# unpacks every file in it.
unpack_all() {
	local dest=${*: -1} files
	mkdir -p "$dest"
	cp -a "${@:1:$#-1}" "$dest/" || return 1
	mapfile -d '' files < <(find "$dest" -type f -print0)
	unpack_files "${files[@]}"
}
