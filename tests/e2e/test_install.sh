#!/usr/bin/env bash
# `make install` into a DESTDIR and `make uninstall`. The installed tool,
# run from another directory with no DLWS_* variables, builds a copy of the
# installed examples: the payload script and the install agent are found
# beside the executable (PREFIX/lib/dlws-mkimage), the base and vendor paths
# of the examples point at the installed ones. The man page passes
# `mandoc -T lint` and `man --warnings` and names the same long options as
# every --help; the bash completion completes commands, options and the
# cluster's hostnames. Uninstall leaves no file behind.
# asan-pass: no   (it checks the installed files and the installed, plain build)
. "$(dirname "$0")/../lib/e2e.sh"
. "$ROOT/tests/lib/installed.sh"
cd "$WORK"
unset DLWS_AGENT DLWS_PAYLOAD_SCRIPT
DEST=$WORK/root
P=$DEST/usr
installed=$P/bin/dlws-mkimage

if make -C "$ROOT" -s install DESTDIR="$DEST" PREFIX=/usr >make-install.log 2>&1; then
	pass install
else
	fail install "make install failed: $(tail -5 make-install.log)"
	finish
fi

# Every file where the layout says, with its mode.
missing=
for f in bin/dlws-mkimage:755 lib/dlws-mkimage/dlws-install:755 lib/dlws-mkimage/dlws-payload:755 \
	lib/dlws-mkimage/vendor/bin/kubectl:755 lib/dlws-mkimage/vendor/bin/etcd:755 \
	lib/dlws-mkimage/vendor/bin/etcdctl:755 lib/dlws-mkimage/vendor/SHA256SUMS:644 \
	share/dlws-mkimage/base/vmlinuz:644 share/dlws-mkimage/base/initrd.img:644 \
	share/dlws-mkimage/examples/recipes/master.recipe:644 share/dlws-mkimage/examples/recipes/etcd.recipe:644 \
	share/dlws-mkimage/examples/recipes/worker.recipe:644 share/dlws-mkimage/examples/recipes/cluster.yaml:644 \
	share/dlws-mkimage/examples/recipes/templates/cloud-config.yml:644 \
	share/dlws-mkimage/examples/recipes/flatcar/master.recipe:644 \
	share/dlws-mkimage/examples/overlays/common/etc/sysctl.d/90-dlws.conf:644 \
	share/dlws-mkimage/examples/supplied/README:644 \
	share/man/man1/dlws-mkimage.1:644 share/bash-completion/completions/dlws-mkimage:644; do
	path=$P/${f%:*} mode=${f#*:}
	[ -f "$path" ] && [ "$(stat -c %a "$path")" = "$mode" ] || missing="$missing ${f%:*}"
done
[ -z "$missing" ] && pass install-layout || fail install-layout "missing or wrong mode:$missing"
cmp -s "$P/lib/dlws-mkimage/dlws-install" "$ROOT/out/agent/dlws-install" &&
	cmp -s "$P/share/dlws-mkimage/examples/recipes/templates/cloud-config.yml" "$ROOT/recipes/templates/cloud-config.yml" &&
	pass install-contents || fail install-contents "installed files differ from the tree's"

# The default examples point at the installed base and vendor binaries; keys,
# outputs and supplied/ stay relative to the copy.
ex=$P/share/dlws-mkimage/examples/recipes
if grep -qx '  kernel: /usr/share/dlws-mkimage/base/vmlinuz' "$ex/master.recipe" &&
	grep -q 'src: /usr/lib/dlws-mkimage/vendor/bin/kubectl, .*sha256sums: /usr/lib/dlws-mkimage/vendor/SHA256SUMS' "$ex/master.recipe" &&
	grep -q 'src: /usr/lib/dlws-mkimage/vendor/bin/etcd,' "$ex/etcd.recipe" &&
	! grep -q '\.\./out/base\|\.\./vendor' "$ex"/*.recipe "$ex"/flatcar/*.recipe &&
	grep -q 'pki: { dir: \.\./keys }' "$ex/master.recipe" &&
	grep -q '\.\./\.\./supplied/' "$ex/flatcar/master.recipe" &&
	head -1 "$ex/master.recipe" | grep -q '^# Installed example'; then
	pass examples-paths
else
	fail examples-paths "$(grep -n 'kernel:\|vendor\|pki:' "$ex/master.recipe")"
fi

# An operator's copy. DESTDIR stages what will be /usr: point the copy at
# the staged files, as they will be at /usr once packaged.
if installed_build_master "$installed" "$P/share/dlws-mkimage/examples" "$WORK/ex" "$P"; then
	pass installed-build
else
	fail installed-build "$(tail -5 "$WORK/ex.log")"
fi
mkdir elsewhere
cd elsewhere
if segment_cat ../ex/out/master-initrd/shared.cpio.zst usr/share/oem/dlws/bin/dlws-payload >../payload 2>/dev/null &&
	cmp -s ../payload "$P/lib/dlws-mkimage/dlws-payload"; then
	pass installed-payload-script
else
	fail installed-payload-script "the payload's dlws-payload is not the installed one"
fi

# The install agent too: a recipe with install: (a stand-in OS image).
head -c 65536 /dev/zero >../ex/os.img
cat >../ex/recipes/probe.recipe <<EOR
recipe: 1
name: probe
role: etcd
cluster: cluster.yaml
base: { kernel: $P/share/dlws-mkimage/base/vmlinuz, initrd: $P/share/dlws-mkimage/base/initrd.img, image: ../os.img }
pki: { dir: ../keys }
install: { device: auto, after: poweroff }
outputs:
  initrd: { path: ../out/probe-initrd }
EOR
if "$installed" -q "$WORK/ex/recipes/probe.recipe" >../probe.log 2>&1 &&
	segment_cat ../ex/out/probe-initrd/shared.cpio.zst usr/share/oem/dlws/install >../agent 2>/dev/null &&
	cmp -s ../agent "$P/lib/dlws-mkimage/dlws-install"; then
	pass installed-agent
else
	fail installed-agent "$(tail -3 ../probe.log)"
fi
# Without the installed payload script the build fails: nothing else was found.
mv "$P/lib/dlws-mkimage/dlws-payload" ../dlws-payload.away
if "$installed" -q "$WORK/ex/recipes/probe.recipe" >../noscript.log 2>&1; then
	fail installed-lookup "built without the installed payload script"
else
	grep -q 'cannot find the payload script' ../noscript.log && pass installed-lookup ||
		fail installed-lookup "$(tail -3 ../noscript.log)"
fi
mv ../dlws-payload.away "$P/lib/dlws-mkimage/dlws-payload"
cd "$WORK"

# The man page.
page=$P/share/man/man1/dlws-mkimage.1
if command -v mandoc >/dev/null; then
	if out=$(mandoc -T lint "$page" 2>&1) && [ -z "$out" ]; then pass man-mandoc-lint; else fail man-mandoc-lint "$out"; fi
else
	skip man-mandoc-lint "mandoc is not installed (Debian package mandoc; make deps installs it)"
fi
if out=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$page" 2>&1 >/dev/null) && [ -z "$out" ]; then
	pass man-warnings
else
	fail man-warnings "$out"
fi
MANWIDTH=80 man -l "$page" 2>/dev/null | col -b >man.txt
grep -q '^EXIT STATUS' man.txt && grep -q 'DLWS_PAYLOAD_SCRIPT' man.txt && grep -q 'boot_server' man.txt &&
	pass man-renders || fail man-renders "the rendered page lacks EXIT STATUS, ENVIRONMENT or boot_server"
if out=$("$ROOT/tests/lib/check-man-options.sh" "$installed" "$page" 2>&1); then
	pass man-options
else
	fail man-options "$out"
fi
# The cross-check notices an option the man page invents.
sed '/^\.SS "verify/a .TP\n.B \\-\\-bogus\nNot an option.' "$page" >bogus.1
"$ROOT/tests/lib/check-man-options.sh" "$installed" bogus.1 2>&1 | grep -q "verify: the man page documents '--bogus'" &&
	pass man-options-negative || fail man-options-negative "an invented --bogus went unnoticed"

# The bash completion, driven the way readline drives it.
comp=$P/share/bash-completion/completions/dlws-mkimage
complete_words() {
	bash -c '. "$1"; shift; COMP_CWORD=$1; shift; COMP_WORDS=("$@"); _dlws_mkimage; printf "%s\n" "${COMPREPLY[@]}"' \
		_ "$comp" "$@"
}
bash -c '. "$1" && complete -p dlws-mkimage' _ "$comp" | grep -qx 'complete -F _dlws_mkimage dlws-mkimage' &&
	pass completion-registered || fail completion-registered "complete -p dlws-mkimage shows no _dlws_mkimage"
complete_words 1 dlws-mkimage re | grep -qx render &&
	[ "$(complete_words 1 dlws-mkimage ins)" = inspect ] &&
	[ "$(complete_words 1 dlws-mkimage ini)" = init ] &&
	pass completion-command || fail completion-command "$(complete_words 1 dlws-mkimage re | tr '\n' ' ')"
[ "$(complete_words 2 dlws-mkimage publish --ro | tr '\n' ' ')" = "--rollback --rollback= " ] &&
	[ "$(complete_words 2 dlws-mkimage certs --rot)" = --rotate-token ] &&
	pass completion-option || fail completion-option "$(complete_words 2 dlws-mkimage publish --ro | tr '\n' ' ')"
[ "$(complete_words 3 dlws-mkimage render --node dlws-w "$WORK/ex/recipes/worker.recipe" | tr '\n' ' ')" = "dlws-worker1 dlws-worker2 " ] &&
	[ "$(complete_words 4 dlws-mkimage render "$WORK/ex/recipes/master.recipe" --node dlws-m)" = dlws-master ] &&
	pass completion-hostname || fail completion-hostname "$(complete_words 3 dlws-mkimage render --node dlws-w "$WORK/ex/recipes/worker.recipe" | tr '\n' ' ')"
# Block-style cluster values with comments: only hostname: entries count.
mkdir -p blk
cat >blk/c.yaml <<'EOY'
masters:
  - hostname: m1          # the first
    ip: 10.0.0.1
# - hostname: commented-out
workers:
  - ip: 10.0.0.2
    hostname: "w1"
  - { ip: 10.0.0.3, hostname: w2, mac: "52:54:00:00:00:03" }
values: { note: "hostname: not-a-node" }
EOY
printf 'recipe: 1\ncluster: c.yaml   # values\n' >blk/x.recipe
[ "$(cd blk && complete_words 3 dlws-mkimage render --node '' x.recipe | tr '\n' ' ')" = "m1 w1 w2 " ] &&
	pass completion-hostname-block || fail completion-hostname-block "$(cd blk && complete_words 3 dlws-mkimage render --node '' x.recipe | tr '\n' ' ')"
(cd ex && [ "$(complete_words 2 dlws-mkimage build recipes/ma)" = recipes/master.recipe ]) &&
	pass completion-recipe || fail completion-recipe "$(cd ex && complete_words 2 dlws-mkimage build recipes/ma | tr '\n' ' ')"

# make uninstall removes every file it installed.
if make -C "$ROOT" -s uninstall DESTDIR="$DEST" PREFIX=/usr >make-uninstall.log 2>&1; then
	left=$(find "$DEST" ! -type d)
	[ -z "$left" ] && [ ! -e "$P/lib/dlws-mkimage" ] && [ ! -e "$P/share/dlws-mkimage" ] &&
		pass uninstall || fail uninstall "left behind: $left"
else
	fail uninstall "make uninstall failed: $(tail -5 make-uninstall.log)"
fi
finish
