# Sourced by the tests of an installed dlws-mkimage (test_install: `make
# install` into a DESTDIR; test_deb: the .deb). What an operator does after
# installing, once: copy the installed examples and build the copy.

# installed_build_master TOOL EXAMPLES COPY [STAGED]: copies the installed
# examples directory EXAMPLES to COPY and builds COPY/recipes/master.recipe
# with TOOL from another directory (COPY.cwd), with no DLWS_* variables.
# STAGED is a staging prefix such as DESTDIR/usr: the absolute
# /usr/share/dlws-mkimage and /usr/lib/dlws-mkimage paths of the copy's
# recipes are pointed into it, where the files are until they are at /usr.
# Returns 0 when the build succeeded and left the ISO, the PXE bundle, the
# payload segments and the PKI in the copy; the tool's output is in COPY.log.
installed_build_master() {
	local tool=$1 examples=$2 copy=$3 staged=${4:-}
	cp -r "$examples" "$copy" || return 1
	if [ -n "$staged" ]; then
		sed -i "s|/usr/share/dlws-mkimage/|$staged/share/dlws-mkimage/|g; s|/usr/lib/dlws-mkimage/|$staged/lib/dlws-mkimage/|g" \
			"$copy"/recipes/*.recipe || return 1
	fi
	mkdir -p "$copy.cwd"
	(cd "$copy.cwd" && env -u DLWS_AGENT -u DLWS_PAYLOAD_SCRIPT "$tool" -q "$copy/recipes/master.recipe") >"$copy.log" 2>&1 &&
		[ -s "$copy/out/master.iso" ] && [ -s "$copy/out/pxe/SHA256SUMS" ] &&
		[ -s "$copy/out/master-initrd/shared.cpio.zst" ] && [ -s "$copy/keys/ca.pem" ]
}
