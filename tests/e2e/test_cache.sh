#!/usr/bin/env bash
# The build cache (out/.cache): a rebuild with nothing changed makes no
# segment and says so, and its outputs are byte for byte those of a clean
# --no-cache build and left in place (an output changed on disk is made
# again); a template change remakes only the segments it touches
# (reported), outputs again equal to a clean build; a truncated or
# corrupted entry is found and made again, never used; two builds sharing
# the cache at once both come out right; --cache-max bounds it; --no-cache
# neither reads nor fills it.
. "$(dirname "$0")/../lib/e2e.sh"
cd "$WORK"
make_project p
# A kubectl large enough to lie on the ISOs as a file of its own
# (outputs.iso.large_file_size, 1M by default), new bytes each time.
big_kubectl() {
	{ printf '#!/bin/sh\nexit 0\n'; head -c 3000000 /dev/urandom; } >p/vendor/bin/kubectl
	(cd p/vendor/bin && sha256sum kubectl etcd etcdctl >../SHA256SUMS)
}
big_kubectl
M=recipes/master.recipe W=recipes/worker.recipe E=recipes/etcd.recipe
export SOURCE_DATE_EPOCH=1700000000

# sums DIR: every output file with its sha256 (not the cache, the locks or
# the stand-in base).
sums() {
	(cd "$1/out" && find . -type f ! -path './.cache/*' ! -name '.*.lock' ! -path './base/*' -print0 |
		sort -z | xargs -0r sha256sum)
}
# clean DIR: the same recipes built again without the cache, in a copy.
clean() {
	rm -rf "$WORK/clean" && cp -a "$1" "$WORK/clean" && rm -rf "$WORK/clean/out/.cache"
	(cd "$WORK/clean" && "$MK" -q --no-cache "${@:2}") && [ ! -e "$WORK/clean/out/.cache" ]
}

err=$(cd p && "$MK" $M $W 2>&1 >/dev/null) || fail first_build "$err"
n=$(grep -oE '[0-9]+ made' <<<"$err" | grep -oE '[0-9]+')
if [ -n "$n" ] && [ "$n" -gt 0 ] && [ -d p/out/.cache/objects ]; then
	pass "first_build_fills_the_cache ($n segments made)"
else
	fail first_build_fills_the_cache "$err"
fi

# What the PKI found sound is remembered from the first build on, under
# one name however often keys/ is made again.
checked=$(cd p/out/.cache && ls -d pki-checked-* 2>/dev/null)
err=$(cd p && "$MK" $M $W 2>&1 >/dev/null)
rc=$?
check pki_checked_remembered_from_the_first_build test -n "$checked" -a "$checked" = "$(cd p/out/.cache && ls -d pki-checked-*)"
if [ $rc = 0 ] && grep -qE '^nothing changed in the payload: all [0-9]+ segments from the build cache$' <<<"$err"; then
	pass no_change_rebuild_makes_nothing_and_says_so
else
	fail no_change_rebuild_makes_nothing_and_says_so "rc $rc: $err"
fi
if clean p $M $W && [ "$(sums p)" = "$(sums "$WORK/clean")" ]; then
	pass no_change_rebuild_equals_clean_build
else
	fail no_change_rebuild_equals_clean_build "$(diff <(sums p) <(sums "$WORK/clean") | head -5)"
fi

# Outputs already up to date are left as they are: the same files (inodes),
# and said so. One changed on disk is made again.
inodes() { (cd p/out && stat -c '%i %n' master.iso worker.iso pxe/SHA256SUMS pxe/worker/shared.cpio.zst master-initrd/SHA256SUMS); }
before=$(inodes)
err=$(cd p && "$MK" $M $W 2>&1 >/dev/null)
if [ -n "$before" ] && [ "$(inodes)" = "$before" ] && grep -q '^ISO recipes/../out/master.iso is up to date' <<<"$err" &&
	grep -q '^PXE bundle recipes/../out/pxe is up to date' <<<"$err"; then
	pass up_to_date_outputs_left_in_place
else
	fail up_to_date_outputs_left_in_place "$(diff <(echo "$before") <(inodes)): $err"
fi
flip_byte p/out/master.iso 40000
err=$(cd p && "$MK" $M $W 2>&1 >/dev/null)
if grep -q '^wrote ISO recipes/../out/master.iso' <<<"$err" && [ "$(sums p)" = "$(sums "$WORK/clean")" ]; then
	pass output_changed_on_disk_is_made_again
else
	fail output_changed_on_disk_is_made_again "$err $(diff <(sums p) <(sums "$WORK/clean") | head -5)"
fi

# One node's MAC changed: no template names `mac`, so no segment is made
# (a node whose inputs were seen is found by their key, not rendered); the
# boot menus that name MACs change. Once a template names it, that node's
# segment is made again, and only it.
# The other nodes' menus are the same files (hard links of the old
# tree's): a NIC replaced in a cluster of 1,000 makes two new menu files.
menus() { (cd p/out/pxe && stat -c '%i %n' grub/52:54:00:00:21:02.cfg pxelinux.cfg/01-52-54-00-00-21-02 pxelinux.cfg/default); }
menus_before=$(menus)
sed -i 's/\(hostname: dlws-worker1, .*mac: "\)52:54:00:00:21:01"/\152:54:00:00:21:aa"/' p/recipes/cluster.yaml
err=$(cd p && "$MK" $M $W 2>&1 >/dev/null)
if [ -n "$menus_before" ] && [ "$(menus)" = "$menus_before" ] && [ -f p/out/pxe/pxelinux.cfg/01-52-54-00-00-21-aa ] &&
	[ ! -e p/out/pxe/pxelinux.cfg/01-52-54-00-00-21-01 ]; then
	pass unchanged_menus_kept_as_they_are
else
	fail unchanged_menus_kept_as_they_are "$(diff <(echo "$menus_before") <(menus)) $(ls p/out/pxe/pxelinux.cfg)"
fi
if grep -qE '^nothing changed in the payload: all [0-9]+ segments from the build cache$' <<<"$err" &&
	grep -q '^wrote PXE bundle' <<<"$err" && [ -f p/out/pxe/grub/52:54:00:00:21:aa.cfg ] && clean p $M $W &&
	[ "$(sums p)" = "$(sums "$WORK/clean")" ]; then
	pass mac_change_makes_no_segment
else
	fail mac_change_makes_no_segment "$err $(ls p/out/pxe/grub) $(diff <(sums p) <(sums "$WORK/clean") | head -3)"
fi
printf '# {{ node.mac }}\n' >>p/recipes/templates/kubelet-config.yaml
(cd p && "$MK" -q $M $W) || fail mac_named build
sed -i 's/52:54:00:00:21:aa"/52:54:00:00:21:bb"/' p/recipes/cluster.yaml
err=$(cd p && "$MK" $M $W 2>&1 >/dev/null)
if grep -qE '^build cache: [0-9]+ segments reused, 1 made$' <<<"$err" && clean p $M $W && [ "$(sums p)" = "$(sums "$WORK/clean")" ]; then
	pass mac_named_in_a_template_remakes_its_node
else
	fail mac_named_in_a_template_remakes_its_node "$err"
fi
sed -i '$d' p/recipes/templates/kubelet-config.yaml

# A template only workers render: each worker's segment and the role's are
# made again, not the shared ones nor any master's.
echo '# changed' >>p/recipes/templates/kubelet-config.yaml
err=$(cd p && "$MK" $M $W 2>&1 >/dev/null)
rc=$?
workers=$(awk '/^workers:/ { w = 1; next } /^[a-z]/ { w = 0 } w && /hostname:/ { n++ } END { print n + 0 }' p/recipes/cluster.yaml)
# per output (initrd directory, PXE bundle, ISO): the same segments, made
# once and then reused within the build
if [ $rc = 0 ] && grep -qE "^build cache: [0-9]+ segments? reused, $((workers + 1)) made$" <<<"$err"; then
	pass "template_change_remakes_only_its_segments ($((workers + 1)) made)"
else
	fail template_change_remakes_only_its_segments "rc $rc, $workers workers: $err"
fi
if clean p $M $W && [ "$(sums p)" = "$(sums "$WORK/clean")" ]; then
	pass template_change_rebuild_equals_clean_build
else
	fail template_change_rebuild_equals_clean_build "$(diff <(sums p) <(sums "$WORK/clean") | head -5)"
fi

# The ISO a build replaces is kept in the cache (spares/<sha of its
# path>), and the next build that changes the ISO writes over that file's
# blocks and exchanges it into place: the ISO is then that inode, and byte
# for byte a clean build's, also when the spare was longer. A spare that
# a process still reads, or an ISO with another name, is left as it is.
spare() { printf '%s/out/%s' "$(cd p && pwd -P)" "$1" | sha256sum | sed 's| .*||; s|^|p/out/.cache/spares/|'; }
sw=$(spare worker.iso)
cp p/recipes/templates/kubelet-config.yaml "$WORK/kubelet-config.keep"
edit_rebuild() { echo "# $1" >>p/recipes/templates/kubelet-config.yaml && (cd p && "$MK" -q $M $W); }
edit_rebuild spare-1
ino=$(stat -c %i "$sw" 2>/dev/null)
edit_rebuild spare-2
if [ -n "$ino" ] && [ "$(stat -c %i p/out/worker.iso)" = "$ino" ] && [ -f "$sw" ] && clean p $M $W &&
	[ "$(sums p)" = "$(sums "$WORK/clean")" ]; then
	pass iso_written_over_its_spare
else
	fail iso_written_over_its_spare "spare inode ${ino:-none}, ISO $(stat -c %i p/out/worker.iso); $(diff <(sums p) <(sums "$WORK/clean") | head -3)"
fi
head -c 3M /dev/urandom >>"$sw"
ino=$(stat -c %i "$sw")
edit_rebuild spare-3
if [ "$(stat -c %i p/out/worker.iso)" = "$ino" ] && clean p $M $W && [ "$(sums p)" = "$(sums "$WORK/clean")" ]; then
	pass longer_spare_cut_to_the_image
else
	fail longer_spare_cut_to_the_image "$(stat -c '%i %s' p/out/worker.iso) against $ino; $(diff <(sums p) <(sums "$WORK/clean") | head -3)"
fi
# Held open (a VM booted from the old image, say): not written over.
sleep 600 <"$sw" &
holder=$!
held=$(sha256sum <"$sw") ino=$(stat -c %i "$sw")
edit_rebuild spare-4
if [ "$(stat -c %i p/out/worker.iso)" != "$ino" ] && [ "$(stat -L -c %i /proc/$holder/fd/0)" = "$ino" ] &&
	[ "$(sha256sum </proc/$holder/fd/0)" = "$held" ] && clean p $M $W && [ "$(sums p)" = "$(sums "$WORK/clean")" ]; then
	pass spare_held_open_left_alone
else
	fail spare_held_open_left_alone "ISO $(stat -c %i p/out/worker.iso), spare was $ino"
fi
kill $holder 2>/dev/null
wait $holder 2>/dev/null
# An ISO with another name (kept by hand) never becomes a spare.
ln p/out/worker.iso "$WORK/kept.iso"
kept=$(sha256sum <"$WORK/kept.iso")
edit_rebuild spare-5 && edit_rebuild spare-6
if [ "$(sha256sum <"$WORK/kept.iso")" = "$kept" ] && [ "$(stat -c %h "$WORK/kept.iso")" = 1 ] && clean p $M $W &&
	[ "$(sums p)" = "$(sums "$WORK/clean")" ]; then
	pass iso_with_another_name_left_alone
else
	fail iso_with_another_name_left_alone "kept.iso changed or still linked ($(stat -c %h "$WORK/kept.iso") names)"
fi
rm -f "$WORK/kept.iso"

# Large files lie right after the directory records and the boot images,
# each in its own place. A build writing over the spare leaves the extents
# the spare holds already as they are, by the layout recorded with the
# spare while it is the file a build made (same inode, size, mtime and
# ctime), and says how much. The layout is the ISO's own, as xorriso
# reads it; the ISO is byte for byte a clean build's.
edit_rebuild spare-7 && edit_rebuild spare-8
echo "# spare-9" >>p/recipes/templates/kubelet-config.yaml
err=$(cd p && "$MK" $M $W 2>&1 >/dev/null)
mb=$(awk -v b="$(stat -c %s p/vendor/bin/kubectl)" 'BEGIN { printf "%.1f", b / 1e6 }')
if grep -qE "^wrote ISO recipes/../out/worker.iso \([0-9]+ nodes; written over the ISO of the build before last: $mb MB of large files already in place\)$" <<<"$err" &&
	clean p $M $W && [ "$(sums p)" = "$(sums "$WORK/clean")" ]; then
	pass iso_large_files_left_in_place
else
	fail iso_large_files_left_in_place "$err $(diff <(sums p) <(sums "$WORK/clean") | head -3)"
fi
# The worker ISO's record (outputs/<sha of its path>) against xorriso's
# report of where /dlws/large's files lie.
record=p/out/.cache/outputs/${sw##*/}
lba=$(xorriso -indev p/out/worker.iso -find /dlws/large -type f -exec report_lba -- 2>/dev/null |
	sed -n "s|^File data lba: *0 *, *\([0-9]*\) *, *[0-9]* *, *\([0-9]*\) *, '/dlws/large/rootfs/opt/bin/kubectl'\$|\1 \2|p")
want="extent $((${lba% *} * 2048)) ${lba#* } $(sha256sum <p/vendor/bin/kubectl | cut -d' ' -f1)"
if [ -n "$lba" ] && [ "$(grep '^extent ' "$record")" = "$want" ]; then
	pass layout_record_is_xorrisos
else
	fail layout_record_is_xorrisos "xorriso: '$lba'; record: $(grep '^extent ' "$record" 2>&1); want '$want'"
fi
# The spare (the ISO of spare-8's build) changed inside kubectl's extent,
# its mtime put back: its ctime moved, so it is written over whole.
off=$((${lba% *} * 2048 + 1000))
mtime=$(stat -c %y "$sw")
printf 'X' | dd of="$sw" bs=1 seek=$off conv=notrunc status=none && touch -d "$mtime" "$sw"
# written_whole NAME: a rebuild writes the worker ISO with nothing left in
# place, and it is a clean build's.
written_whole() {
	local err
	err=$(cd p && "$MK" $M $W 2>&1 >/dev/null)
	if grep -qE "^wrote ISO recipes/../out/worker.iso \([0-9]+ nodes\)$" <<<"$err" && clean p $M $W &&
		[ "$(sums p)" = "$(sums "$WORK/clean")" ]; then
		pass "$1"
	else
		fail "$1" "$err $(diff <(sums p) <(sums "$WORK/clean") | head -3)"
	fi
}
echo "# spare-10" >>p/recipes/templates/kubelet-config.yaml
written_whole spare_changed_since_written_over_whole
# kubectl changed, the same size: the spare's extent holds the old one.
edit_rebuild spare-11
big_kubectl
written_whole changed_large_file_written_in_full
cp "$WORK/kubelet-config.keep" p/recipes/templates/kubelet-config.yaml
(cd p && "$MK" -q $M $W) && clean p $M $W || fail spares "rebuild failed"

# Damaged entries: the largest truncated, another with a byte flipped.
mapfile -t objs < <(find p/out/.cache/objects -type f ! -name '*.sum' -printf '%s %p\n' | sort -rn | awk '{ print $2 }')
truncate -s 100 "${objs[0]}"
flip_byte "${objs[1]}" 20
err=$(cd p && "$MK" $M $W 2>&1 >/dev/null)
rc=$?
if [ $rc = 0 ] && grep -q "damaged entries made again" <<<"$err" && grep -q "note: the build cache's entry .* was damaged: made again" <<<"$err"; then
	pass damaged_entries_found_and_made_again
else
	fail damaged_entries_found_and_made_again "rc $rc: $err"
fi
check damaged_entries_never_used test "$(sums p)" = "$(sums "$WORK/clean")"
verified=yes
for o in p/out/master.iso p/out/worker.iso p/out/pxe; do "$MK" verify "$o" >/dev/null 2>&1 || verified="no: $o"; done
check outputs_verify_after_damage test "$verified" = yes

# An output is a hard link of its cache entry: changing it in place must
# not poison the next build.
seg=$(find p/out/pxe -name shared.cpio.zst | head -1)
flip_byte "$seg" 50
(cd p && "$MK" -q $M $W) && [ "$(sums p)" = "$(sums "$WORK/clean")" ] &&
	pass output_changed_in_place_does_not_poison_the_cache ||
	fail output_changed_in_place_does_not_poison_the_cache "$(diff <(sums p) <(sums "$WORK/clean") | head -3)"

# Two builds at once (different outputs, one cache).
rm -rf p/out/.cache
(cd p && "$MK" -q $M >m.log 2>&1; echo $? >m.rc) &
(cd p && "$MK" -q $E >e.log 2>&1; echo $? >e.rc) &
wait
if [ "$(cat p/m.rc p/e.rc | tr -d '\n')" = 00 ] && clean p $M $E && [ "$(sums p)" = "$(sums "$WORK/clean")" ]; then
	pass concurrent_builds_share_the_cache
else
	fail concurrent_builds_share_the_cache "rc $(cat p/m.rc p/e.rc | tr '\n' ' '): $(cat p/m.log p/e.log)"
fi
check no_temp_left_in_cache test -z "$(ls -A p/out/.cache/tmp)"

# --cache-max: what stays fits (the entries of this build alone do not, so
# the oldest go).
(cd p && "$MK" -q --cache-max 20K $M $W) || fail cache_max "build failed"
size=$(find p/out/.cache/objects p/out/.cache/spares -type f ! -name '*.sum' -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }')
check "cache_max_bounds_the_cache ($size bytes, spares too)" test "$size" -le 20480
err=$(cd p && "$MK" --cache-max lots $M 2>&1)
check cache_max_needs_a_size test "$(tail -1 <<<"$err")" = "dlws-mkimage: build: --cache-max takes a size such as 2G, not 'lots' (see --help)"

rm -rf p/out/.cache
(cd p && "$MK" -q --no-cache $M) && check no_cache_makes_no_cache test ! -e p/out/.cache

# Node segments are made on every core. Eight workers built on all of
# them equal the same build on one core (taskset: one worker thread), with
# and without the cache, also after one worker's address changed (every
# node's /etc/hosts names it: all eight and the role's made again); what
# the nodes say is said once, in their order, as one thread says it.
make_project many
awk '{ print } /hostname: dlws-worker2,/ { for (i = 3; i <= 8; i++) printf "  - { hostname: dlws-worker%d, ip: 192.168.255.%d, mac: \"52:54:00:00:21:%02x\" }\n", i, 20 + i, i }' \
	many/recipes/cluster.yaml >many/cluster.yaml && mv many/cluster.yaml many/recipes/cluster.yaml
# like_one_core NAME MADE: the worker recipe built here (MADE segments made)
# equals a clean build of a copy on one core.
like_one_core() {
	local err
	err=$(cd many && "$MK" $W 2>&1 >/dev/null)
	rm -rf "$WORK/one" && cp -a many "$WORK/one" && rm -rf "$WORK/one/out/.cache"
	if grep -qE "^build cache: [0-9]+ segments? reused, $2 made\$" <<<"$err" &&
		(cd "$WORK/one" && taskset -c 0 "$MK" -q --no-cache $W) && [ "$(sums many)" = "$(sums "$WORK/one")" ]; then
		pass "$1"
	else
		fail "$1" "$err $(diff <(sums many) <(sums "$WORK/one") | head -5)"
	fi
}
like_one_core nodes_on_every_core_equal_one_core 10
sed -i 's/dlws-worker5, ip: 192.168.255.25,/dlws-worker5, ip: 192.168.255.99,/' many/recipes/cluster.yaml
like_one_core address_change_on_every_core_equals_one_core 9
# an error in every node's config: said once, for the first node
printf '{{ nosuch.name }}\n' >>many/recipes/templates/kubelet-config.yaml
err=$(cd many && "$MK" $W 2>&1)
rc=$?
one=$(cd many && taskset -c 0 "$MK" $W 2>&1)
if [ $rc = 1 ] && [ "$(grep -c "undefined name 'nosuch.name'" <<<"$err")" = 1 ] && [ "$err" = "$one" ]; then
	pass node_errors_said_once_in_order
else
	fail node_errors_said_once_in_order "rc $rc: $err // one core: $one"
fi
# one in a later node's only: named for that node, and nothing written
sed -i '$d' many/recipes/templates/kubelet-config.yaml
printf '{{ if node.hostname == "dlws-worker7" }}{{ nosuch.name }}{{ end }}\n' >>many/recipes/templates/kubelet-config.yaml
before=$(sums many)
err=$(cd many && "$MK" $W 2>&1)
rc=$?
one=$(cd many && taskset -c 0 "$MK" $W 2>&1)
if [ $rc = 1 ] && [ "$(grep -c "undefined name 'nosuch.name'" <<<"$err")" = 1 ] && [ "$err" = "$one" ] &&
	[ "$(sums many)" = "$before" ]; then
	pass later_node_error_said_once
else
	fail later_node_error_said_once "rc $rc: $err // one core: $one"
fi
finish
