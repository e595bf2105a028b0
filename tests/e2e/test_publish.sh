#!/usr/bin/env bash
# `dlws-mkimage publish`: PXE bundles the tool builds, published to a boot
# server's root on this machine and over ssh to a real sshd on loopback.
# Releases land beside each other, `current` switches atomically and
# serves what was built byte for byte; --list, --rollback, --keep; a
# publish SIGKILLed halfway leaves `current` on the old release; two at
# once take turns (or the second is refused with --no-wait); a tampered
# bundle and a tar that climbs out of its directory are refused with
# nothing written; modes that let nginx and dnsmasq read what is served
# whatever the umask; a `current` publish did not make is left alone; a
# bundle serving fewer roles than the release it replaces is warned about.
. "$(dirname "$0")/../lib/e2e.sh"
SSHD_PID=
cleanup() {
	[ -z "$SSHD_PID" ] || kill "$SSHD_PID" 2>/dev/null
	[ "$KEEP_WORK" = 1 ] || rm -rf "$WORK"
}
trap cleanup EXIT

cd "$WORK"
make_project p
pxe_tar p
cd p
if ! "$MK" -q recipes/master.recipe recipes/worker.recipe; then fail build_bundle_1 "build failed"; finish; fi
cp -a out/pxe "$WORK/b1" && cp out/pxe.tar "$WORK/b1.tar"
# The second bundle: another kernel command line, so the menus differ and
# the kernels, loaders and segments do not.
sed -i 's|flatcar.autologin"|flatcar.autologin dlws.release=2"|' recipes/master.recipe recipes/worker.recipe
if ! "$MK" -q recipes/master.recipe recipes/worker.recipe; then fail build_bundle_2 "build failed"; finish; fi
cp -a out/pxe "$WORK/b2" && cp out/pxe.tar "$WORK/b2.tar"
if cmp -s "$WORK/b1/SHA256SUMS" "$WORK/b2/SHA256SUMS"; then fail bundles_differ "the two builds are the same"; finish; fi
cd "$WORK"
# A third: the master alone (another project: a bundle keeps the roles it
# served), its servers pointed at $WORK/served (boot_server.root), a
# symlink to the root it is published to below.
make_project p3
sed -i "s|^  root: /srv/boot|  root: $WORK/served|" p3/recipes/cluster.yaml
if ! (cd p3 && "$MK" -q recipes/master.recipe); then fail build_bundle_master "build failed"; finish; fi
cp -a p3/out/pxe "$WORK/bm"

# same_tree DIR BUNDLE: DIR holds exactly the bundle, byte for byte.
same_tree() { diff -r "$1" "$2" >/dev/null; }
current_of() { readlink "$1/current"; }
releases_of() { ls "$1/releases" | tr '\n' ' '; }
# pub NAME ARGS...: runs publish, keeping stdout, stderr and status.
pub() {
	local name=$1
	shift
	timeout 300 "$MK" publish "$@" >"$WORK/$name.out" 2>"$WORK/$name.err"
	echo $? >"$WORK/$name.rc"
}
rc_of() { cat "$WORK/$1.rc"; }
err_of() { cat "$WORK/$1.err"; }
# modes_ok TOP ROOT: every directory under TOP (what publish made above
# ROOT, ROOT, releases/, the releases and theirs) is 0755, every file of
# the releases 0644.
modes_ok() {
	[ -z "$(find "$1" -type d ! -perm 0755)" ] && [ -z "$(find "$2/releases" -type f ! -perm 0644)" ] &&
		[ -n "$(find "$2/releases" -mindepth 2 -type d)" ]
}
# modes_shown TOP: what modes_ok found wrong, for the failure.
modes_shown() { find "$1" \( \( -type d ! -perm 0755 \) -o \( -type f ! -name .publish.lock ! -perm 0644 \) \) -printf '%m %p\n' | head -5; }
# served_to_others ROOT BUNDLE: a user of no group of ours (as www-data
# and dnsmasq are) reads what ROOT/current serves.
served_to_others() {
	local as=(setpriv --reuid=nobody --regid=nogroup --clear-groups)
	"${as[@]}" cat "$1/current/pxelinux.cfg/default" | cmp -s - "$2/pxelinux.cfg/default" &&
		"${as[@]}" cat "$1/current/worker/vmlinuz" | cmp -s - "$2/worker/vmlinuz" &&
		"${as[@]}" ls "$1/current/worker" >/dev/null
}

# ---- a local root -----------------------------------------------------------
S=$WORK/srv/boot
pub l1 -q b1 "$S"
id1=$(cat "$WORK/l1.out")
# The bundles' dnsmasq.conf and nginx.conf serve /srv/boot/current
# (boot_server.root): publishing elsewhere says so.
if grep -qF "warning: the bundle's dnsmasq.conf and nginx.conf serve '/srv/boot/current' (boot_server.root in the cluster values), not '$S/current'" "$WORK/l1.err"; then
	pass warns_when_root_differs
else
	fail warns_when_root_differs "$(err_of l1)"
fi
if [ "$(rc_of l1)" = 0 ] && [ "$(current_of "$S")" = "releases/$id1" ] && same_tree "$S/current" b1 &&
	[[ $id1 =~ ^[0-9]{8}T[0-9]{6}Z-[0-9a-f]{8}$ ]] && [ "${id1#*-}" = "$(sha256sum <b1/SHA256SUMS | cut -c1-8)" ]; then
	pass local_first_publish_is_current
else
	fail local_first_publish_is_current "rc $(rc_of l1), id '$id1', current $(current_of "$S"): $(err_of l1)"
fi
pub l2 b2 "$S"
id2=$(cat "$WORK/l2.out")
if [ "$(rc_of l2)" = 0 ] && [ "$(releases_of "$S")" = "$id1 $id2 " ] && [ "$(current_of "$S")" = "releases/$id2" ] &&
	same_tree "$S/current" b2 && same_tree "$S/releases/$id1" b1; then
	pass local_second_publish_two_releases
else
	fail local_second_publish_two_releases "rc $(rc_of l2), releases $(releases_of "$S"), current $(current_of "$S"): $(err_of l2)"
fi
# What did not change is a hard link to the kept copy, not a second copy.
check local_unchanged_files_hard_linked bash -c "[ \$(stat -c %i '$S/releases/$id1/bootx64.efi') = \$(stat -c %i '$S/releases/$id2/bootx64.efi') ] &&
	[ \$(stat -c %i '$S/releases/$id1/pxelinux.cfg/default') != \$(stat -c %i '$S/releases/$id2/pxelinux.cfg/default') ]"
check local_no_partial_left bash -c "! ls -d '$S'/releases/*.partial '$S/current.new' 2>/dev/null | grep -q ."
check local_served_files_readable bash -c "[ \$(stat -c %a '$S/current/worker/vmlinuz') = 644 ] && [ \$(stat -c %a '$S/current/worker') = 755 ]"
# nginx (www-data) and dnsmasq's TFTP (user dnsmasq) read the root as
# other users: under umask 077 a publish (a tree, then a tar) still makes
# every directory 0755, the root's missing parents too, and files 0644.
chmod 0711 "$WORK"
U=$WORK/u077/srv/boot
(
	umask 077
	pub u1 b1 "$U"
	pub u2 b2.tar "$U"
)
if [ "$(rc_of u1)" = 0 ] && [ "$(rc_of u2)" = 0 ] && modes_ok "$WORK/u077" "$U"; then
	pass local_modes_whatever_the_umask
else
	fail local_modes_whatever_the_umask "rc $(rc_of u1)/$(rc_of u2): $(modes_shown "$WORK/u077") $(err_of u1; err_of u2)"
fi
check local_served_to_other_users served_to_others "$U" b2

pub l3 b2 "$S"
if [ "$(rc_of l3)" = 0 ] && grep -q "already: nothing changed" "$WORK/l3.err" && [ "$(cat "$WORK/l3.out")" = "$id2" ] &&
	[ "$(releases_of "$S")" = "$id1 $id2 " ] && [ "$(current_of "$S")" = "releases/$id2" ]; then
	pass local_identical_republish_is_noop
else
	fail local_identical_republish_is_noop "rc $(rc_of l3), releases $(releases_of "$S"): $(err_of l3)"
fi

pub list1 --list "$S"
if [ "$(rc_of list1)" = 0 ] && grep -qE "^  $id1  [0-9-]{10} [0-9:]{8} .* master, worker; nodes dlws-master, dlws-worker1, dlws-worker2$" "$WORK/list1.out" &&
	grep -qE "^\* $id2 " "$WORK/list1.out" && ! grep -qE "^\* $id1 " "$WORK/list1.out"; then
	pass local_list_marks_current
else
	fail local_list_marks_current "$(cat "$WORK/list1.out") $(err_of list1)"
fi
pub list2 --list --json "$S"
check local_list_json python3 -c "
import json, re, sys
m = json.load(open('$WORK/list2.out'))
assert m['dest'] == '$S', m
v = m['releases']
assert [r['id'] for r in v] == ['$id1', '$id2'], v
assert [r['current'] for r in v] == [False, True], v
assert v[0]['roles'] == ['master', 'worker'] and 'dlws-worker1' in v[0]['nodes'] and v[0]['size'] > 0, v
assert v[0]['published'] == re.sub(r'^(....)(..)(..)T(..)(..)(..)Z-.*', r'\\1-\\2-\\3T\\4:\\5:\\6Z', v[0]['id']), v[0]
"
check local_list_json_documented_shape python3 "$ROOT/tests/lib/check-json-shape.py" "$ROOT/man/dlws-mkimage.1" Releases: "$WORK/list2.out"

pub rb1 --rollback "$S"
if [ "$(rc_of rb1)" = 0 ] && [ "$(current_of "$S")" = "releases/$id1" ] && same_tree "$S/current" b1 && [ "$(cat "$WORK/rb1.out")" = "$id1" ]; then
	pass local_rollback_serves_first_bundle
else
	fail local_rollback_serves_first_bundle "rc $(rc_of rb1), current $(current_of "$S"): $(err_of rb1)"
fi
pub rb2 --rollback "$S"
if [ "$(rc_of rb2)" = 1 ] && grep -qF "there is no release before '$id1'" "$WORK/rb2.err" && [ "$(current_of "$S")" = "releases/$id1" ]; then
	pass local_rollback_past_oldest_refused
else
	fail local_rollback_past_oldest_refused "rc $(rc_of rb2): $(err_of rb2)"
fi
pub rb3 --rollback="$id2" "$S"
if [ "$(rc_of rb3)" = 0 ] && [ "$(current_of "$S")" = "releases/$id2" ] && same_tree "$S/current" b2; then
	pass local_rollback_to_id
else
	fail local_rollback_to_id "rc $(rc_of rb3), current $(current_of "$S"): $(err_of rb3)"
fi
# A release damaged since it was published does not go live again: the
# check names what is wrong, `current` stays. (Its pxelinux.cfg/default
# is no hard link of the current release's: the menus differ.)
flip_byte "$S/releases/$id1/pxelinux.cfg/default" 10
pub rbd --rollback "$S"
flip_byte "$S/releases/$id1/pxelinux.cfg/default" 10
if [ "$(rc_of rbd)" = 1 ] && grep -qxF "dlws-mkimage: error: '$S/releases/$id1/pxelinux.cfg/default' does not match its sum in SHA256SUMS" "$WORK/rbd.err" &&
	[ "$(current_of "$S")" = "releases/$id2" ]; then
	pass local_rollback_to_damaged_release_refused
else
	fail local_rollback_to_damaged_release_refused "rc $(rc_of rbd), current $(current_of "$S"): $(err_of rbd)"
fi
mv "$S/releases/$id1/SHA256SUMS" "$WORK/id1.sums"
pub rbs --rollback="$id1" "$S"
mv "$WORK/id1.sums" "$S/releases/$id1/SHA256SUMS"
if [ "$(rc_of rbs)" = 1 ] && grep -qxF "dlws-mkimage: error: '$S/releases/$id1/SHA256SUMS' is missing: cannot check the release" "$WORK/rbs.err" &&
	[ "$(current_of "$S")" = "releases/$id2" ]; then
	pass local_rollback_without_sums_refused
else
	fail local_rollback_without_sums_refused "rc $(rc_of rbs), current $(current_of "$S"): $(err_of rbs)"
fi

pub lt b1.tar "$S"
id3=$(cat "$WORK/lt.out")
if [ "$(rc_of lt)" = 0 ] && [ "$(current_of "$S")" = "releases/$id3" ] && same_tree "$S/current" b1 && [[ $id3 > $id2 ]]; then
	pass local_publish_from_tar
else
	fail local_publish_from_tar "rc $(rc_of lt), current $(current_of "$S"): $(err_of lt)"
fi
# --keep 2 after a fourth: the newest two stay (one of them current, the
# other the one before it), the oldest two go.
pub lk --keep 2 b2 "$S"
id4=$(cat "$WORK/lk.out")
if [ "$(rc_of lk)" = 0 ] && [ "$(releases_of "$S")" = "$id3 $id4 " ] && grep -q "removed release $id1 (--keep 2)" "$WORK/lk.err" &&
	same_tree "$S/current" b2 && same_tree "$S/releases/$id3" b1; then
	pass local_keep_prunes_oldest
else
	fail local_keep_prunes_oldest "rc $(rc_of lk), releases $(releases_of "$S"): $(err_of lk)"
fi

# A `current` that publish did not make (a directory, a link elsewhere) is
# the administrator's: publish and rollback leave it and say so.
F=$WORK/foreign
mkdir -p "$F/current" && echo mine >"$F/current/index.html"
pub fd b1 "$F"
if [ "$(rc_of fd)" = 1 ] && grep -qxF "dlws-mkimage: error: '$F/current' is not a symbolic link: refusing to replace it (move it away first)" "$WORK/fd.err" &&
	[ "$(cat "$F/current/index.html")" = mine ] && [ -z "$(ls "$F/releases")" ]; then
	pass foreign_current_directory_refused
else
	fail foreign_current_directory_refused "rc $(rc_of fd): $(err_of fd)"
fi
F2=$WORK/foreign2
mkdir -p "$F2" && ln -s /var/www "$F2/current"
pub fl b1 "$F2"
pub flr --rollback "$F2"
msg="dlws-mkimage: error: '$F2/current' points to '/var/www', not to a release in '$F2/releases': refusing to replace it (move it away first)"
if [ "$(rc_of fl)" = 1 ] && grep -qxF "$msg" "$WORK/fl.err" && [ "$(rc_of flr)" = 1 ] && grep -qxF "$msg" "$WORK/flr.err" &&
	[ "$(readlink "$F2/current")" = /var/www ] && [ -z "$(ls "$F2/releases")" ]; then
	pass foreign_current_link_refused
else
	fail foreign_current_link_refused "rc $(rc_of fl)/$(rc_of flr): $(err_of fl) $(err_of flr)"
fi

# The master's bundle alone after master and worker: published (it may be
# meant), with a warning naming what no longer boots. Its servers serve
# $WORK/served, a symlink to the root: the same root, no warning about it.
M=$WORK/srv/real
ln -s "$M" "$WORK/served"
pub m1 b1 "$M"
mid1=$(cat "$WORK/m1.out")
pub m2 bm "$M"
if [ "$(rc_of m2)" = 0 ] && [ "$(current_of "$M")" = "releases/$(cat "$WORK/m2.out")" ] &&
	grep -qxF "dlws-mkimage: warning: 'bm' does not serve role 'worker' and nodes 'dlws-worker1', 'dlws-worker2', which the release it replaced ($mid1) served: they no longer boot from '$M' (build all the recipes into one bundle, or --rollback)" "$WORK/m2.err" &&
	! grep -q 'does not serve' "$WORK/l2.err" "$WORK/m1.err"; then
	pass warns_when_roles_lost
else
	fail warns_when_roles_lost "rc $(rc_of m2): $(err_of m2)"
fi
if [ "$(rc_of m2)" = 0 ] && ! grep -q "dnsmasq.conf and nginx.conf serve" "$WORK/m2.err" && grep -q "dnsmasq.conf and nginx.conf serve" "$WORK/m1.err"; then
	pass no_root_warning_through_symlink
else
	fail no_root_warning_through_symlink "$(err_of m2)"
fi

# ---- refusals: one message naming the place, exit 1, `current` untouched -----
# refused NAME EXPECTED ARGS...
refused() {
	local name=$1 expected=$2
	shift 2
	local before
	before=$(current_of "$S")
	pub "$name" "$@"
	local n_err
	n_err=$(grep -c 'error:' "$WORK/$name.err")
	if [ "$(rc_of "$name")" = 1 ] && grep -qF -- "$expected" "$WORK/$name.err" && [ "$n_err" = 1 ] &&
		[ "$(current_of "$S")" = "$before" ] && [ "$(releases_of "$S")" = "$id3 $id4 " ] &&
		! ls -d "$S"/releases/*.partial 2>/dev/null | grep -q .; then
		pass "$name"
	else
		fail "$name" "rc $(rc_of "$name"), current $(current_of "$S"), releases $(releases_of "$S"): $(err_of "$name")"
	fi
}
# (a file no other in the tree is a hard link of: the roles share vmlinuz)
cp -a b1 tampered
flip_byte tampered/worker/shared.cpio.zst 2
refused tampered_file_refused "'tampered/worker/shared.cpio.zst' does not match its sum in the bundle's SHA256SUMS" tampered "$S"
cp -a b1 nosums && rm nosums/SHA256SUMS
refused bundle_without_sums_refused "'nosums' has no SHA256SUMS" nosums "$S"
cp -a b1 extra && echo stray >extra/worker/stray.txt
refused unlisted_file_refused "'extra/worker/stray.txt' is not listed in 'extra/SHA256SUMS'" extra "$S"
cp -a b1 linked && ln -s /etc/passwd linked/passwd
refused symlink_in_tree_refused "'linked/passwd' is a symbolic link" linked "$S"
touch plainfile
refused dest_not_a_directory "'$WORK/plainfile' is not a directory" b1 "$WORK/plainfile"
if "$MK" publish b1 >/dev/null 2>&1; [ $? = 2 ]; then pass usage_exit_2; else fail usage_exit_2 "publish with one argument"; fi

# Tars that try to leave the tree, crafted with Python's tarfile.
python3 - "$WORK" <<'EOF'
import io, sys, tarfile
work = sys.argv[1]
def make(name, members):
    with tarfile.open(f"{work}/{name}.tar", "w") as t:
        for m in members:
            i = tarfile.TarInfo(m[0])
            data = m[2] if len(m) > 2 else b""
            i.type = m[1]
            if m[1] == tarfile.REGTYPE:
                i.size = len(data)
            elif m[1] in (tarfile.SYMTYPE, tarfile.LNKTYPE):
                i.linkname = m[3]
            t.addfile(i, io.BytesIO(data) if m[1] == tarfile.REGTYPE else None)
sums = b"0" * 64 + b"  evil\n"
make("dotdot", [("pxe/SHA256SUMS", tarfile.REGTYPE, sums), ("pxe/../evil", tarfile.REGTYPE, b"gotcha\n")])
make("absolute", [("pxe/SHA256SUMS", tarfile.REGTYPE, sums), (f"{work}/evil-abs", tarfile.REGTYPE, b"gotcha\n")])
make("symlink", [("pxe/SHA256SUMS", tarfile.REGTYPE, sums), ("pxe/evil", tarfile.SYMTYPE, b"", "../../../../etc")])
make("hardlink", [("pxe/SHA256SUMS", tarfile.REGTYPE, sums), ("pxe/evil", tarfile.LNKTYPE, b"", "/etc/passwd")])
make("device", [("pxe/SHA256SUMS", tarfile.REGTYPE, sums), ("pxe/evil", tarfile.CHRTYPE)])
EOF
refused tar_dotdot_refused "'dotdot.tar' holds 'pxe/../evil', which leaves the bundle's directory" dotdot.tar "$S"
refused tar_absolute_refused "'absolute.tar' holds '$WORK/evil-abs', an absolute name" absolute.tar "$S"
refused tar_symlink_escape_refused "'pxe/evil' in 'symlink.tar' is a symbolic link to '../../../../etc', outside the bundle" symlink.tar "$S"
refused tar_hardlink_escape_refused "'pxe/evil' in 'hardlink.tar' is a hard link to '/etc/passwd', outside the bundle" hardlink.tar "$S"
refused tar_device_refused "'pxe/evil' in 'device.tar' is a device, fifo or socket" device.tar "$S"
check tar_nothing_written_outside bash -c "! find '$WORK' / -maxdepth 1 -name 'evil*' 2>/dev/null | grep -q . && ! find '$WORK/srv' -name 'evil*' | grep -q ."

# ---- killed halfway, and two publishes at once -------------------------------
# A big bundle (200 MB of random data) so that copying and checking take
# long enough to be caught in the act.
cp -a b1 big
head -c 200M /dev/urandom >big/worker/big.bin
(cd big && sha256sum worker/big.bin >>SHA256SUMS)
# Polls with a builtin: a local publish of it takes well under a second.
wait_for_partial() {
	local i
	for i in $(seq 1 6000); do
		compgen -G "$1/releases/*.partial" >/dev/null && return 0
		sleep 0.005
	done
	return 1
}
before=$(current_of "$S")
"$MK" -q publish big "$S" >/dev/null 2>"$WORK/kill.err" &
pid=$!
started=0
wait_for_partial "$S" && started=1
kill -9 "$pid" 2>/dev/null
{ wait "$pid"; } 2>/dev/null
if [ $started = 1 ] && ls -d "$S"/releases/*.partial >/dev/null 2>&1 && [ "$(current_of "$S")" = "$before" ] &&
	same_tree "$S/current" b2 && [ "$(releases_of "$S" | tr ' ' '\n' | grep -vc partial)" = 2 ]; then
	pass killed_publish_leaves_current_intact
else
	fail killed_publish_leaves_current_intact "started $started, current $(current_of "$S") (was $before), releases $(releases_of "$S")"
fi
pub after_kill big "$S"
if [ "$(rc_of after_kill)" = 0 ] && grep -q "left by an interrupted publish" "$WORK/after_kill.err" &&
	! ls -d "$S"/releases/*.partial 2>/dev/null | grep -q . && same_tree "$S/current" big; then
	pass next_publish_cleans_partial
else
	fail next_publish_cleans_partial "rc $(rc_of after_kill), releases $(releases_of "$S"): $(err_of after_kill)"
fi

# Two at once, made to overlap whatever the machine's load: a stand-in
# holder has the lock while both start (each says it waits); when it lets
# go, one takes the lock and the other waits on until it is done. Both end
# published, one after the other, and nothing is left half-done.
pub rb_big --rollback "$S"
(
	exec 9>>"$S/.publish.lock"
	flock 9
	echo "$BASHPID $(uname -n)" >"$S/.publish.lock"
	touch "$WORK/lheld"
	for _ in $(seq 1 600); do [ -e "$WORK/lrelease" ] && break; sleep 0.1; done
) &
lh=$!
for _ in $(seq 1 100); do [ -e "$WORK/lheld" ] && break; sleep 0.05; done
"$MK" publish --keep 10 big "$S" >"$WORK/c1.out" 2>"$WORK/c1.err" &
p1=$!
"$MK" publish --keep 10 b1 "$S" >"$WORK/c2.out" 2>"$WORK/c2.err" &
p2=$!
for _ in $(seq 1 600); do
	grep -qF "waiting for the publish of pid $lh" "$WORK/c1.err" 2>/dev/null &&
		grep -qF "waiting for the publish of pid $lh" "$WORK/c2.err" 2>/dev/null && break
	sleep 0.1
done
both_waited=no
grep -qF "waiting for the publish of pid $lh" "$WORK/c1.err" && grep -qF "waiting for the publish of pid $lh" "$WORK/c2.err" && both_waited=yes
touch "$WORK/lrelease"
wait "$p1"
rc1=$?
wait "$p2"
rc2=$?
{ wait "$lh"; } 2>/dev/null
id_big=$(cat "$WORK/c1.out") id_b1=$(cat "$WORK/c2.out")
if [[ $id_big > $id_b1 ]]; then last=big last_id=$id_big; else last=b1 last_id=$id_b1; fi
if [ $rc1 = 0 ] && [ $rc2 = 0 ] && [ $both_waited = yes ] && [ "$id_big" != "$id_b1" ] &&
	[ "$(current_of "$S")" = "releases/$last_id" ] && same_tree "$S/current" "$last" &&
	same_tree "$S/releases/$id_big" big && same_tree "$S/releases/$id_b1" b1 &&
	! ls -d "$S"/releases/*.partial >/dev/null 2>&1; then
	pass concurrent_publish_waits_for_lock
else
	fail concurrent_publish_waits_for_lock "rc $rc1/$rc2, waited: $both_waited, current $(current_of "$S"): $(cat "$WORK/c1.err" "$WORK/c2.err")"
fi
# --no-wait: refused at once, naming the holder: a real publish of content
# no release has (nothing to hard-link: its copy takes a while).
pub rb_b2 --rollback="$id4" "$S"
cp -a b1 big2
head -c 200M /dev/urandom >big2/worker/big.bin
(cd big2 && sha256sum worker/big.bin >>SHA256SUMS)
"$MK" -q publish big2 "$S" >/dev/null 2>"$WORK/holder.err" &
holder=$!
wait_for_partial "$S"
before=$(current_of "$S")
pub nowait --no-wait b2 "$S"
wait "$holder"
if [ "$(rc_of nowait)" = 1 ] && grep -qF "'$S' is being published by pid $holder: not waiting (--no-wait)" "$WORK/nowait.err" &&
	same_tree "$S/current" big2; then
	pass no_wait_refused_naming_holder
else
	fail no_wait_refused_naming_holder "rc $(rc_of nowait): $(err_of nowait)"
fi

# ---- a remote root, over ssh to an sshd of our own on loopback -------------
if [ ! -x /usr/sbin/sshd ] || ! command -v ssh >/dev/null || ! command -v rsync >/dev/null; then
	fail remote_setup "openssh-server, openssh-client and rsync are needed (make deps)"
	finish
fi
mkdir -p "$WORK/ssh" /run/sshd
ssh-keygen -q -t ed25519 -N '' -f "$WORK/ssh/host_key"
ssh-keygen -q -t ed25519 -N '' -f "$WORK/ssh/client_key"
cp "$WORK/ssh/client_key.pub" "$WORK/ssh/authorized_keys"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# Under umask 077, as the sessions of a server with a strict umask run:
# what publish makes there must be readable by nginx and dnsmasq all the same.
(umask 077; exec /usr/sbin/sshd -D -e -f /dev/null -o ListenAddress=127.0.0.1 -o Port="$port" -o HostKey="$WORK/ssh/host_key" \
	-o AuthorizedKeysFile="$WORK/ssh/authorized_keys" -o StrictModes=no -o PidFile="$WORK/ssh/sshd.pid" \
	-o PasswordAuthentication=no -o KbdInteractiveAuthentication=no -o PermitRootLogin=prohibit-password \
	2>"$WORK/ssh/sshd.log") &
SSHD_PID=$!
SSH="ssh -F /dev/null -p $port -i $WORK/ssh/client_key -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes -o LogLevel=ERROR"
up=0
for i in $(seq 1 100); do
	$SSH "$(id -un)@127.0.0.1" true 2>/dev/null && { up=1; break; }
	sleep 0.1
done
if [ $up = 0 ]; then fail remote_setup "sshd did not come up: $(cat "$WORK/ssh/sshd.log")"; finish; fi
R=$WORK/remote/boot
D="$(id -un)@127.0.0.1:$R"

pub r1 --ssh "$SSH" b1 "$D"
rid1=$(cat "$WORK/r1.out")
if [ "$(rc_of r1)" = 0 ] && [ "$(current_of "$R")" = "releases/$rid1" ] && same_tree "$R/current" b1; then
	pass remote_first_publish
else
	fail remote_first_publish "rc $(rc_of r1): $(err_of r1)"
fi
# Under umask 077 on both ends, a tree and a tar: 0755 and 0644 there too.
RU=$WORK/u077r/srv/boot
(
	umask 077
	pub ru1 --ssh "$SSH" b1 "$(id -un)@127.0.0.1:$RU"
	pub ru2 --ssh "$SSH" b2.tar "$(id -un)@127.0.0.1:$RU"
)
if [ "$(rc_of ru1)" = 0 ] && [ "$(rc_of ru2)" = 0 ] && modes_ok "$WORK/u077r" "$RU"; then
	pass remote_modes_whatever_the_umask
else
	fail remote_modes_whatever_the_umask "rc $(rc_of ru1)/$(rc_of ru2): $(modes_shown "$WORK/u077r") $(err_of ru1; err_of ru2)"
fi
check remote_served_to_other_users served_to_others "$RU" b2
# The server is asked whether boot_server.root is the root by another
# name: $WORK/served is, /srv/boot is not.
pub rm --ssh "$SSH" bm "$(id -un)@127.0.0.1:$M"
if [ "$(rc_of rm)" = 0 ] && ! grep -q "dnsmasq.conf and nginx.conf serve" "$WORK/rm.err" &&
	grep -qF "warning: the bundle's dnsmasq.conf and nginx.conf serve '/srv/boot/current' (boot_server.root in the cluster values), not '$R/current'" "$WORK/r1.err"; then
	pass remote_no_root_warning_through_symlink
else
	fail remote_no_root_warning_through_symlink "$(err_of rm) $(err_of r1)"
fi
# The ssh command from the environment this time, and the bundle's tar.
DLWS_MKIMAGE_SSH=$SSH pub r2 b2.tar "$D"
rid2=$(cat "$WORK/r2.out")
if [ "$(rc_of r2)" = 0 ] && [ "$(releases_of "$R")" = "$rid1 $rid2 " ] && [ "$(current_of "$R")" = "releases/$rid2" ] &&
	same_tree "$R/current" b2 && same_tree "$R/releases/$rid1" b1 && ! ls "$R"/releases/*.partial >/dev/null 2>&1; then
	pass remote_second_publish_from_tar
else
	fail remote_second_publish_from_tar "rc $(rc_of r2), releases $(releases_of "$R"): $(err_of r2)"
fi
check remote_unchanged_files_hard_linked bash -c "[ \$(stat -c %i '$R/releases/$rid1/bootx64.efi') = \$(stat -c %i '$R/releases/$rid2/bootx64.efi') ]"
pub r3 --ssh "$SSH" b2 "$D"
if [ "$(rc_of r3)" = 0 ] && grep -q "nothing changed" "$WORK/r3.err" && [ "$(releases_of "$R")" = "$rid1 $rid2 " ]; then
	pass remote_identical_republish_is_noop
else
	fail remote_identical_republish_is_noop "rc $(rc_of r3): $(err_of r3)"
fi
# Checked there: the tampered file travels, the check on the server names it.
before=$(current_of "$R")
pub rt --ssh "$SSH" tampered "$D"
if [ "$(rc_of rt)" = 1 ] && grep -qF "'tampered/worker/shared.cpio.zst' does not match its sum" "$WORK/rt.err" &&
	grep -qF "checked after copying it to '$D/releases/" "$WORK/rt.err" && [ "$(current_of "$R")" = "$before" ] &&
	! ls "$R"/releases/*.partial >/dev/null 2>&1; then
	pass remote_tampered_file_refused
else
	fail remote_tampered_file_refused "rc $(rc_of rt): $(err_of rt)"
fi
pub rl --ssh "$SSH" --list "$D"
if [ "$(rc_of rl)" = 0 ] && grep -qE "^  $rid1 .* master, worker; nodes dlws-master" "$WORK/rl.out" && grep -qE "^\* $rid2 " "$WORK/rl.out"; then
	pass remote_list_marks_current
else
	fail remote_list_marks_current "$(cat "$WORK/rl.out") $(err_of rl)"
fi
pub rr --ssh "$SSH" --rollback "$D"
if [ "$(rc_of rr)" = 0 ] && [ "$(current_of "$R")" = "releases/$rid1" ] && same_tree "$R/current" b1; then
	pass remote_rollback
else
	fail remote_rollback "rc $(rc_of rr), current $(current_of "$R"): $(err_of rr)"
fi
pub rbad --ssh "ssh -F /dev/null -p 1 -o BatchMode=yes -o ConnectTimeout=5" b1 "127.0.0.1:$R"
if [ "$(rc_of rbad)" = 1 ] && grep -qF "cannot run commands on '127.0.0.1' with 'ssh -F /dev/null -p 1" "$WORK/rbad.err" &&
	grep -q "Connection refused" "$WORK/rbad.err"; then
	pass remote_ssh_failure_shows_ssh_stderr
else
	fail remote_ssh_failure_shows_ssh_stderr "rc $(rc_of rbad): $(err_of rbad)"
fi
pub rnd --ssh "$SSH" b1 "$(id -un)@127.0.0.1:$WORK/plainfile"
if [ "$(rc_of rnd)" = 1 ] && grep -qF "'$(id -un)@127.0.0.1:$WORK/plainfile' is not a directory" "$WORK/rnd.err"; then
	pass remote_dest_not_a_directory
else
	fail remote_dest_not_a_directory "rc $(rc_of rnd): $(err_of rnd)"
fi
# Killed while rsync copies: the rsync and the ssh holding the lock die
# with it, `current` stays, and the next publish goes through. Meanwhile a
# local publish to the same root finds the lock the remote one holds with
# flock(1): one lock for both ways in.
before=$(current_of "$R")
"$MK" -q publish --ssh "$SSH" big "$D" >/dev/null 2>"$WORK/rkill.err" &
pid=$!
started=0
wait_for_partial "$R" && started=1
pub lnw --no-wait b2 "$R"
kill -9 "$pid" 2>/dev/null
{ wait "$pid"; } 2>/dev/null
if [ $started = 1 ] && [ "$(current_of "$R")" = "$before" ] && same_tree "$R/current" b1; then
	pass remote_killed_publish_leaves_current_intact
else
	fail remote_killed_publish_leaves_current_intact "started $started, current $(current_of "$R") (was $before): $(cat "$WORK/rkill.err")"
fi
if [ "$(rc_of lnw)" = 1 ] && grep -qF "'$R' is being published by pid $pid: not waiting (--no-wait)" "$WORK/lnw.err"; then
	pass local_no_wait_sees_remote_lock
else
	fail local_no_wait_sees_remote_lock "rc $(rc_of lnw): $(err_of lnw)"
fi
pub rafter --ssh "$SSH" big "$D"
if [ "$(rc_of rafter)" = 0 ] && grep -q "left by an interrupted publish" "$WORK/rafter.err" &&
	! ls -d "$R"/releases/*.partial 2>/dev/null | grep -q . && same_tree "$R/current" big; then
	pass remote_next_publish_after_kill
else
	fail remote_next_publish_after_kill "rc $(rc_of rafter), releases $(releases_of "$R"): $(err_of rafter)"
fi
# Another publisher holding the lock (a shell taking it with flock(1) and
# writing its pid, as the remote side does): --no-wait is refused naming
# it, a plain publish waits for it, saying so, and then goes through.
# The holder keeps the lock until the waiting publish has said so (or a
# minute passed): no race with how long ssh takes to connect.
(
	exec 9>>"$R/.publish.lock"
	flock 9
	echo "$BASHPID $(uname -n)" >"$R/.publish.lock"
	touch "$WORK/held"
	for _ in $(seq 1 600); do [ -e "$WORK/release" ] && break; sleep 0.1; done
) &
fake=$!
for i in $(seq 1 100); do [ -e "$WORK/held" ] && break; sleep 0.05; done
pub rnw --ssh "$SSH" --no-wait b2 "$D"
pub rwait --ssh "$SSH" b2 "$D" &
waiter=$!
for _ in $(seq 1 600); do grep -q "waiting for the publish" "$WORK/rwait.err" 2>/dev/null && break; sleep 0.1; done
touch "$WORK/release"
wait "$waiter"
{ wait "$fake"; } 2>/dev/null
if [ "$(rc_of rnw)" = 1 ] && grep -qF "'$D' is being published by pid $fake: not waiting (--no-wait)" "$WORK/rnw.err"; then
	pass remote_no_wait_refused_naming_holder
else
	fail remote_no_wait_refused_naming_holder "rc $(rc_of rnw): $(err_of rnw)"
fi
if [ "$(rc_of rwait)" = 0 ] && grep -qF "waiting for the publish of pid $fake to finish" "$WORK/rwait.err" && same_tree "$R/current" b2; then
	pass remote_publish_waits_for_lock
else
	fail remote_publish_waits_for_lock "rc $(rc_of rwait): $(err_of rwait)"
fi
# --keep on a remote root: the releases past it go there too; the new one
# and the one it replaced (the one before it) stay.
read -ra kept_before <<<"$(releases_of "$R")"
pub rk --ssh "$SSH" --keep 1 b1 "$D"
rid_k=$(cat "$WORK/rk.out")
last_before=${kept_before[${#kept_before[@]} - 1]}
gone=("${kept_before[@]:0:${#kept_before[@]}-1}")
said=yes
for x in "${gone[@]}"; do grep -qxF "removed release $x (--keep 1)" "$WORK/rk.err" || said=no; done
if [ "$(rc_of rk)" = 0 ] && [ ${#gone[@]} -ge 2 ] && [ $said = yes ] && [ "$(releases_of "$R")" = "$last_before $rid_k " ] &&
	same_tree "$R/current" b1 && same_tree "$R/releases/$last_before" b2; then
	pass remote_keep_prunes_oldest
else
	fail remote_keep_prunes_oldest "rc $(rc_of rk), before: ${kept_before[*]}, after: $(releases_of "$R"): $(err_of rk)"
fi

# A server without flock(1) has no lock to give: said so, before anything
# is made there. The remote commands run with a PATH of everything here
# but flock, through an ssh command of the test's own.
mkdir -p "$WORK/noflock"
for f in /usr/local/bin/* /usr/bin/* /bin/* /usr/sbin/* /sbin/*; do
	n=${f##*/}
	[ "$n" = flock ] || [ -e "$WORK/noflock/$n" ] || ln -s "$f" "$WORK/noflock/$n"
done
printf '#!/bin/bash\nexec %s "${@:1:$#-1}" "PATH=%s; export PATH; ${!#}"\n' "$SSH" "$WORK/noflock" >"$WORK/ssh-noflock"
chmod +x "$WORK/ssh-noflock"
NF="$(id -un)@127.0.0.1:$WORK/remote/noflock"
pub nf --ssh "$WORK/ssh-noflock" b1 "$NF"
pub nfw --ssh "$WORK/ssh-noflock" --no-wait b1 "$NF"
msg="dlws-mkimage: error: cannot lock '$NF': '127.0.0.1' has no flock(1) (util-linux)"
if [ "$(rc_of nf)" = 1 ] && [ "$(rc_of nfw)" = 1 ] && grep -qxF "$msg" "$WORK/nf.err" && grep -qxF "$msg" "$WORK/nfw.err" &&
	! grep -q 'waiting\|being published' "$WORK/nf.err" "$WORK/nfw.err" && [ ! -e "$WORK/remote/noflock" ]; then
	pass remote_without_flock_said_so
else
	fail remote_without_flock_said_so "rc $(rc_of nf)/$(rc_of nfw): $(err_of nf) $(err_of nfw)"
fi
finish
