#!/usr/bin/env bash
# The Debian package: `dpkg-buildpackage -b -us -uc` on a copy of the tree
# (it writes the .deb beside the tree it builds, so never next to the
# checkout) builds a .deb that lintian passes without errors, that holds
# the tool, the agent, the man page and the completion, and that depends on
# every library the tool links and every package whose programs and boot
# loaders a build uses. dpkg installs it into a temporary root that has a
# copy of this machine's package database, so dpkg itself checks the
# dependencies against what is installed here; then, in a private mount
# namespace whose /usr is that root's /usr over this machine's, the
# installed /usr/bin/dlws-mkimage runs and builds a copy of the installed
# examples, as an operator would. Purging removes every file.
# asan-pass: no   (it builds and checks the package's own, plain build)
. "$(dirname "$0")/../lib/e2e.sh"
. "$ROOT/tests/lib/installed.sh"
cd "$WORK"
version=$(cat "$ROOT/VERSION")

for t in dpkg-buildpackage dh lintian fakeroot git; do
	if ! command -v "$t" >/dev/null; then
		skip deb "'$t' is not installed (make deps installs dpkg-dev, debhelper, lintian, fakeroot)"
		finish
	fi
done
if ! git -C "$ROOT" rev-parse --git-dir >/dev/null 2>&1; then
	skip deb "$ROOT is not a git checkout: the tree's files are what git lists"
	finish
fi

# The tree as it is, uncommitted and new files included, without what the
# build makes (.gitignore): a fresh build, as a package build is.
mkdir src
git -C "$ROOT" ls-files -z --cached --others --exclude-standard |
	(cd "$ROOT" && while IFS= read -r -d '' f; do [ -e "$f" ] || [ -L "$f" ] && printf '%s\0' "$f"; done) |
	(cd "$ROOT" && tar --null -T - -cf -) | tar -C src -xf -

# The unit tests are the suite's own first pass (tests/run.sh), so nocheck;
# a fast compressor for a 90 MB package that is unpacked at once: the
# package's contents are the same.
t0=$(date +%s)
if (cd src && DEB_BUILD_OPTIONS="nocheck parallel=2 noautodbgsym" \
	DPKG_DEB_COMPRESSOR_TYPE=gzip DPKG_DEB_COMPRESSOR_LEVEL=1 \
	dpkg-buildpackage -b -us -uc) >build.log 2>&1 && [ -f "dlws-mkimage_${version}_amd64.deb" ]; then
	pass deb-build
	echo "  (dpkg-buildpackage took $(( $(date +%s) - t0 ))s)"
else
	fail deb-build "$(tail -5 build.log)"
	finish
fi
deb=$WORK/dlws-mkimage_${version}_amd64.deb

[ "$(dpkg-deb -f "$deb" Version)" = "$version" ] &&
	[ "$(cd "$ROOT" && dpkg-parsechangelog -S Version)" = "$version" ] &&
	pass deb-version || fail deb-version "package $(dpkg-deb -f "$deb" Version), debian/changelog or VERSION differ ($version)"

# Errors fail (lintian exits 1; 2 when it could not check); warnings are
# shown for the record. debian/dlws-mkimage.lintian-overrides says why the
# static agent and Debian's own kubectl and etcd are as they are.
lintian "$deb" >lintian.txt 2>&1
lintian_rc=$?
grep '^W: ' lintian.txt | sed 's/^/  lintian: /'
if [ "$lintian_rc" = 0 ] && ! grep -q '^E: ' lintian.txt; then
	pass deb-lintian
else
	fail deb-lintian "exit $lintian_rc: $(grep -v '^N:\|running with root' lintian.txt | head -5)"
fi

dpkg-deb -c "$deb" | awk '{print $1 " " $6}' >contents.txt
missing=
for f in -rwxr-xr-x:./usr/bin/dlws-mkimage -rw-r--r--:./usr/share/man/man1/dlws-mkimage.1.gz \
	-rw-r--r--:./usr/share/bash-completion/completions/dlws-mkimage \
	-rwxr-xr-x:./usr/lib/dlws-mkimage/dlws-install -rwxr-xr-x:./usr/lib/dlws-mkimage/dlws-payload \
	-rwxr-xr-x:./usr/lib/dlws-mkimage/vendor/bin/kubectl -rw-r--r--:./usr/lib/dlws-mkimage/vendor/SHA256SUMS \
	-rw-r--r--:./usr/share/dlws-mkimage/base/vmlinuz -rw-r--r--:./usr/share/dlws-mkimage/examples/recipes/master.recipe \
	-rw-r--r--:./usr/share/doc/dlws-mkimage/copyright; do
	grep -qx -- "${f%%:*} ${f#*:}" contents.txt || missing="$missing ${f#*:}"
done
[ -z "$missing" ] && pass deb-contents || fail deb-contents "missing or wrong mode:$missing"

# Every library the tool links (its DT_NEEDED, found as this machine's
# loader finds it) comes from a package the .deb depends on.
depends=$(dpkg-deb -f "$deb" Depends)
depends_on() { case ", $depends," in *", $1 "* | *", $1,"*) return 0 ;; esac; return 1; }
owner() {   # the package that ships a file: under /lib or /usr/lib, one place with a merged /usr
	local p
	p=$(dpkg-query -S "$1" 2>/dev/null || dpkg-query -S "/usr${1#/usr}" 2>/dev/null ||
		dpkg-query -S "${1#/usr}" 2>/dev/null) || return 1
	p=${p%%: *}
	printf '%s\n' "${p%%:*}"
}
dpkg-deb --fsys-tarfile "$deb" | tar -xOf - ./usr/bin/dlws-mkimage >tool
chmod +x tool
bad=
libs=$(readelf -d tool | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
for so in $libs; do
	path=$(ldconfig -p | awk -v so="$so" '$1 == so && /x86-64/ {print $NF; exit}')
	pkg=$(owner "$path") && depends_on "$pkg" || bad="$bad $so(${pkg:-no package})"
done
[ -n "$libs" ] && [ -z "$bad" ] && pass deb-depends-libraries ||
	fail deb-depends-libraries "not in Depends:$bad ($depends)"

# What a build runs and copies (builder/loaders.c, the defaults of the
# DLWS_* directories): the ISO's isolinux and GRUB EFI image, the PXE
# bundle's pxelinux, GRUB netboot image and iPXE.
bad=
for f in grub-mkimage mkfs.fat mmd mcopy /usr/lib/ISOLINUX/isolinux.bin /usr/lib/ISOLINUX/isohdpfx.bin \
	/usr/lib/PXELINUX/pxelinux.0 /usr/lib/syslinux/modules/bios/menu.c32 /usr/lib/ipxe/undionly.kpxe \
	/usr/lib/ipxe/snponly.efi /usr/lib/grub/x86_64-efi/linux.mod; do
	case $f in /*) path=$f ;; *) path=$(command -v "$f") ;; esac
	pkg=$(owner "$path") && depends_on "$pkg" || bad="$bad $f(${pkg:-not installed here})"
done
[ -z "$bad" ] && pass deb-depends-tools || fail deb-depends-tools "not in Depends:$bad"

# dpkg -i into a temporary root with this machine's package database: no
# dependency forced, file conflicts with installed packages checked.
# --no-triggers: man-db's trigger would run in the root, which has no shell.
R=$WORK/root
mkdir -p "$R/var/lib"
cp -a /var/lib/dpkg "$R/var/lib/"
rm -f "$R"/var/lib/dpkg/lock*
if dpkg --root="$R" --no-triggers -i "$deb" >dpkg-i.log 2>&1 &&
	dpkg --root="$R" -s dlws-mkimage 2>/dev/null | grep -qx 'Status: install ok installed' &&
	dpkg --root="$R" -V dlws-mkimage >dpkg-V.log 2>&1 && [ ! -s dpkg-V.log ]; then
	pass deb-install
else
	fail deb-install "$(tail -5 dpkg-i.log dpkg-V.log)"
	finish
fi

# The installed package as it would be at /usr: its files over this
# machine's /usr in a private mount namespace (nothing changes outside it).
cat >run-installed.sh <<'EOS'
mount -t overlay dlws-deb -o "lowerdir=$R/usr:/usr" /usr || exit 3
cmp -s /usr/bin/dlws-mkimage "$R/usr/bin/dlws-mkimage" || exit 4
/usr/bin/dlws-mkimage --version >version.txt 2>&1
. "$ROOT/tests/lib/installed.sh"
installed_build_master /usr/bin/dlws-mkimage /usr/share/dlws-mkimage/examples "$WORK/ex"
EOS
rc=3
if unshare --mount true 2>/dev/null; then
	R=$R ROOT=$ROOT WORK=$WORK unshare --mount --propagation private bash run-installed.sh
	rc=$?
fi
if [ "$rc" = 3 ] || [ "$rc" = 4 ]; then
	# No mount namespace or overlay here (not root, a restricted container):
	# run it from the root with the examples pointed there.
	echo "  (no overlay over /usr in a mount namespace: running the installed tool from $R)"
	"$R/usr/bin/dlws-mkimage" --version >version.txt 2>&1
	installed_build_master "$R/usr/bin/dlws-mkimage" "$R/usr/share/dlws-mkimage/examples" "$WORK/ex" "$R/usr"
	rc=$?
fi
[ "$(cat version.txt)" = "dlws-mkimage $version" ] && pass deb-installed-version ||
	fail deb-installed-version "$(head -3 version.txt)"
[ "$rc" = 0 ] && pass deb-installed-build || fail deb-installed-build "$(tail -5 "$WORK/ex.log")"
# The payload step in the media is the package's (found beside the
# installed tool), not some checkout's.
if segment_cat ex/out/master-initrd/shared.cpio.zst usr/share/oem/dlws/bin/dlws-payload >payload 2>/dev/null &&
	cmp -s payload "$R/usr/lib/dlws-mkimage/dlws-payload"; then
	pass deb-installed-payload-script
else
	fail deb-installed-payload-script "the payload's dlws-payload is not the package's"
fi

if dpkg --root="$R" --no-triggers -P dlws-mkimage >dpkg-P.log 2>&1; then
	left=$(find "$R" -path "$R/var" -prune -o ! -type d -print)
	[ -z "$left" ] && [ ! -e "$R/usr/lib/dlws-mkimage" ] && [ ! -e "$R/usr/share/dlws-mkimage" ] &&
		pass deb-purge || fail deb-purge "left behind: $left"
else
	fail deb-purge "$(tail -5 dpkg-P.log)"
fi
finish
