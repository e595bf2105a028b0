#!/usr/bin/env bash
# inspect and verify read a pre-installed disk (outputs.disk) back through
# a read-only libguestfs appliance: inspect --json shows type disk, the
# node's build metadata from OEM, the manifest's counts, certificates
# checked against openssl's view of keys/*.pem, no private key; verify
# passes on a fresh raw disk and names the file after one byte of it is
# flipped on the host; a qcow2 disk inspects too; a GPT disk that is not
# ours (the stand-in OS image: no OEM/dlws-manifest) is refused with exit 1.
# Crafted copies of the raw disk (altered in one guestfish session) are
# read as hostile: manifest lines with '..', absurd sizes, a path out of
# the partitions, a name listed twice, a sparse 1 TiB file; links out of
# the tree where the manifest lists files. Each is refused or named, and
# nothing is written outside the temporary directory (TMPDIR).
# Launches run three at a time (each is 15-30 s without KVM).
. "$(dirname "$0")/../lib/e2e.sh"
for t in qemu-img guestfish; do
	command -v "$t" >/dev/null || { skip disk_inspect "$t is not installed (qemu-utils, libguestfs-tools)"; finish; }
done
cd "$WORK"
make_project p
cd p
bash "$ROOT/tests/lib/mkosimage.sh" out/os.img >/dev/null 2>&1 || { fail setup "mkosimage failed"; finish; }
{ printf 'DLWS-TEST-KUBECTL'; head -c 200000 /dev/urandom; } >vendor/bin/kubectl
(cd vendor/bin && sha256sum kubectl etcd etcdctl >../SHA256SUMS)
for role in master worker; do
	sed -i -e '/^outputs:/,$d' -e "s|^  cmdline: .*|&\n  image: ../out/os.img|" recipes/$role.recipe
done
printf 'outputs:\n  disk: { path: ../out/disks }\n' >>recipes/master.recipe
printf 'outputs:\n  disk: { path: ../out/wdisks, format: qcow2 }\n' >>recipes/worker.recipe
t0=$(date +%s)
"$MK" -q recipes/master.recipe recipes/worker.recipe || { fail build "recipes with outputs.disk did not build"; finish; }
echo "build took $(($(date +%s) - t0))s"
m=out/disks/dlws-master.img w=out/wdisks/dlws-worker1.qcow2

# check_json NAME FILE TYPE-FORMAT RECIPE NODE SUBJECT
check_json() {
	if python3 - "$@" <<'PY'; then pass "$1"; else fail "$1" "see above"; fi
import json, subprocess, sys, glob
name, path, fmt, recipe, node, subject = sys.argv[1:]
text = open(path).read()
assert "PRIVATE KEY" not in text and "BEGIN RSA" not in text, "a private key in the output"
m = json.loads(text)
assert m["type"] == "disk" and m["disk"]["format"] == fmt, (m["type"], m["disk"])
assert m["problems"] == [], m["problems"]
b = m["build"]
assert b["tool"] == "dlws-mkimage" and b["cluster"] == "dlws-lab", b
assert [(r["name"], r["nodes"]) for r in b["recipes"]] == [(recipe, [node])], b["recipes"]
man = m["disk"]["manifest"]
assert man["files"] > 10 and man["bytes"] > 200000, man
assert len(b["recipes"][0]["payload_sha256"]) == 64
pki = set()
for f in glob.glob("keys/*.pem"):
    if "BEGIN CERTIFICATE" in open(f).read():
        pki.add(subprocess.run(["openssl", "x509", "-in", f, "-noout", "-subject", "-nameopt", "oneline,-space_eq"],
                               capture_output=True, text=True, check=True).stdout.strip().removeprefix("subject="))
subjects = {c["subject"] for c in m["certificates"]}
assert subject in subjects, subjects
assert subjects <= pki, subjects - pki
assert all(c["path"].startswith("/ROOT/etc/") and c["segment"] == "ROOT" for c in m["certificates"])
configs = {c["path"]: c["text"] for c in m["configs"]}
assert "/OEM/config.ign" in configs and "/ROOT/var/lib/flatcar-install/user_data" in configs, list(configs)
PY
}

# Crafted copies of the raw disk, altered below while nothing reads it.
H=$WORK/hostile
mkdir -p "$H" "$WORK/tmp"
for h in h1 h2 h3; do cp --sparse=always $m "$H/$h.img"; done
zero=0000000000000000000000000000000000000000000000000000000000000000
tib=1099511627776
# One guestfish session: h1 gets manifest lines the parser refuses, h2
# lines it takes but the disk reader must not (1 TiB of a sparse file
# there, a path out of ROOT and OEM, a name listed twice), h3 links where
# the manifest lists files (out of the tree, up and out, a linked
# directory) and a listed file grown to a sparse 1 TiB.
cat >"$WORK/craft" <<EOF
add $H/h1.img format:raw
add $H/h2.img format:raw
add $H/h3.img format:raw
run
mount /dev/sda6 /
download /dlws-manifest $WORK/manifest
write-append /dlws-manifest "$zero 1 0644 /ROOT/../../etc/shadow\n"
write-append /dlws-manifest "$zero 99999999999999999999 0644 /ROOT/etc/hostname\n"
umount-all
mount /dev/sdb9 /
touch /var/lib/huge.img
truncate-size /var/lib/huge.img $tib
umount-all
mount /dev/sdb6 /
write-append /dlws-manifest "$zero $tib 0644 /ROOT/var/lib/huge.img\n$zero 1 0644 /etc/passwd\n$zero 1 0755 /ROOT/opt/bin/kubectl\n"
umount-all
mount /dev/sdc9 /
rm /opt/bin/kubectl
ln-s /etc/shadow /opt/bin/kubectl
rm /etc/kubernetes/kubelet.conf
ln-s ../../../../../../../etc/passwd /etc/kubernetes/kubelet.conf
mv /etc/kubernetes/pki /etc/kubernetes/pki.real
ln-s pki.real /etc/kubernetes/pki
truncate-size /etc/containerd/config.toml $tib
umount-all
EOF

# Launches in rounds of three: the raw disk and the crafting; the qcow2
# disk, the raw disk with one byte flipped and the foreign image; then
# the crafted disks.
t0=$(date +%s)
"$MK" inspect --json $m >"$WORK/raw.json" 2>"$WORK/raw.err" &
p1=$!
"$MK" -v verify $m >"$WORK/verify.out" 2>&1 &
p2=$!
guestfish <"$WORK/craft" >"$WORK/craft.out" 2>&1 &
p3=$!
wait $p1 && check_json inspect_disk_raw "$WORK/raw.json" raw master dlws-master "CN=kube-apiserver" ||
	fail inspect_disk_raw "exit: $(head -3 "$WORK/raw.err")"
if wait $p2 && grep -q "^$m: verified [0-9]* files" "$WORK/verify.out"; then
	pass verify_disk_passes
else
	fail verify_disk_passes "$(head -5 "$WORK/verify.out")"
fi
wait $p3 || { fail hostile_disks "guestfish could not craft them: $(tail -3 "$WORK/craft.out")"; finish; }
echo "first round took $(($(date +%s) - t0))s"

t0=$(date +%s)
offsets=$(grep -obUa 'DLWS-TEST-KUBECTL' $m | cut -d: -f1)
for o in $offsets; do flip_byte "$m" "$o"; done
"$MK" inspect --json $w >"$WORK/qcow2.json" 2>"$WORK/qcow2.err" &
p1=$!
"$MK" verify $m >"$WORK/flipped.out" 2>&1 &
p2=$!
"$MK" inspect out/os.img >"$WORK/os.out" 2>&1 &
p3=$!
wait $p1 && check_json inspect_disk_qcow2 "$WORK/qcow2.json" qcow2 worker dlws-worker1 "O=system:nodes, CN=system:node:dlws-worker1" ||
	fail inspect_disk_qcow2 "exit: $(head -3 "$WORK/qcow2.err")"
wait $p2
rc=$?
out=$(cat "$WORK/flipped.out")
if [ -n "$offsets" ] && [ $rc = 1 ] &&
	grep -q "error: $m: '/ROOT/opt/bin/kubectl' does not match its checksum" <<<"$out" &&
	grep -q "error: '$m': 1 of [0-9]* files failed verification" <<<"$out"; then
	pass verify_disk_names_flipped_file
else
	fail verify_disk_names_flipped_file "offsets '$offsets' rc=$rc: $out"
fi
wait $p3
rc=$?
if [ $rc = 1 ] && grep -q "error: the disk 'out/os.img' has no readable /OEM/dlws-manifest" "$WORK/os.out"; then
	pass foreign_disk_refused
else
	fail foreign_disk_refused "rc=$rc: $(cat "$WORK/os.out")"
fi
echo "second round took $(($(date +%s) - t0))s"

# --- the crafted disks, read with TMPDIR in the test's own directory (the
# appliance cache stays where it was: building it there takes minutes).
# A time limit: reading what a hostile disk claims must not take for ever.
export LIBGUESTFS_CACHEDIR=${LIBGUESTFS_CACHEDIR:-${TMPDIR:-/var/tmp}}
sums_before=$(cd "$H" && sha256sum h1.img h2.img h3.img)
for f in h1.json h1.inspect h1.verify h1.rc h2.json h2.inspect h2.verify h2.rc h3.json h3.inspect h3.verify h3.rc listing listing.after; do
	: >"$H/$f"
done
find "$WORK" | sort >"$H/listing"
# hostile inspect|verify NAME: that command on $H/NAME.img in the background:
# inspect --json's stdout in NAME.json and stderr in NAME.inspect, verify's
# both in NAME.verify, "<command> <exit status>" lines in NAME.rc.
hostile() {
	{
		if [ $1 = inspect ]; then
			TMPDIR=$WORK/tmp timeout 600 "$MK" inspect --json "$H/$2.img" >"$H/$2.json" 2>"$H/$2.inspect"
		else
			TMPDIR=$WORK/tmp timeout 600 "$MK" verify "$H/$2.img" >"$H/$2.verify" 2>&1
		fi
		echo "$1 $?" >>"$H/$2.rc"
	} &
}
t0=$(date +%s)
hostile inspect h1
hostile verify h1
hostile inspect h2
wait
hostile verify h2
hostile inspect h3
hostile verify h3
wait
echo "crafted disks took $(($(date +%s) - t0))s"
# refused NAME LINE...: inspect and verify both exited 1 with exactly
# LINEs on stderr; inspect printed no JSON.
refused() {
	local h=$1 want
	shift
	want=$(printf '%s\n' "$@")
	[ "$(sort "$H/$h.rc" | tr '\n' ' ')" = "inspect 1 verify 1 " ] &&
		[ "$(cat "$H/$h.inspect")" = "$want" ] && [ "$(cat "$H/$h.verify")" = "$want" ] && [ ! -s "$H/$h.json" ]
}
n=$(wc -l <"$WORK/manifest")
if refused h1 "$H/h1.img: /OEM/dlws-manifest:$((n + 1)): error: refusing path '/ROOT/../../etc/shadow': not a plain absolute path inside the payload" \
	"$H/h1.img: /OEM/dlws-manifest:$((n + 2)): error: absurd size '99999999999999999999'"; then
	pass hostile_disk_manifest_lines_refused
else
	fail hostile_disk_manifest_lines_refused "$(cat "$H/h1.rc" "$H/h1.inspect" "$H/h1.verify")"
fi
root_bytes=$(sgdisk -i 9 $m | awk '/^Partition size:/ {print $3 * 512}')
if refused h2 "$H/h2.img: /OEM/dlws-manifest: error: refusing '/ROOT/var/lib/huge.img': $tib bytes, more than the ROOT partition holds ($root_bytes bytes)" \
	"$H/h2.img: /OEM/dlws-manifest: error: refusing '/etc/passwd': not a payload file below /ROOT/ or /OEM/" \
	"$H/h2.img: /OEM/dlws-manifest: error: refusing '/ROOT/opt/bin/kubectl': listed twice"; then
	pass hostile_disk_paths_and_sizes_refused
else
	fail hostile_disk_paths_and_sizes_refused "$(cat "$H/h2.rc" "$H/h2.inspect" "$H/h2.verify")"
fi
# h3: verify names every file that is a link or below one, and the one
# whose size is not the manifest's (not hashed: 1 TiB of zeros would take
# hours); inspect shows no certificate or config read through a link.
linked=$(grep -c ' /ROOT/etc/kubernetes/pki/' "$WORK/manifest")
why=
grep -qx 'verify 1' "$H/h3.rc" || why="$why verify's exit;"
# inspect does not compare files with the manifest (verify does): 0 for now.
grep -qx 'inspect [01]' "$H/h3.rc" || why="$why inspect's exit;"
v=$(cat "$H/h3.verify")
for f in /ROOT/opt/bin/kubectl /ROOT/etc/kubernetes/kubelet.conf /ROOT/etc/kubernetes/pki/apiserver.crt /ROOT/etc/kubernetes/pki/etcd/ca.crt \
	/ROOT/etc/kubernetes/pki/sa.key; do
	grep -qxF "dlws-mkimage: error: $H/h3.img: '$f' is not a regular file" <<<"$v" || why="$why $f;"
done
grep -qxF "dlws-mkimage: error: $H/h3.img: '/ROOT/etc/containerd/config.toml' has $tib bytes, expected 512" <<<"$v" || why="$why config.toml;"
[ "$(tail -1 <<<"$v")" = "dlws-mkimage: error: '$H/h3.img': $((linked + 3)) of $((n + 1)) files failed verification" ] &&
	[ "$(wc -l <<<"$v")" = $((linked + 4)) ] || why="$why the count;"
python3 - "$H/h3.json" <<'PY' || why="$why inspect;"
import json, sys
text = open(sys.argv[1]).read()
m = json.loads(text)
assert "root:" not in text and "PRIVATE KEY" not in text, "text from a link target"
linked = ("/ROOT/etc/kubernetes/pki/", "/ROOT/etc/kubernetes/kubelet.conf", "/ROOT/opt/bin/kubectl")
shown = [c["path"] for c in m["certificates"] + m["configs"]]
assert shown and not [p for p in shown if p.startswith(linked)], shown
# inspect does not compare the files with the manifest (verify does): if
# it comes to, only linked files may be named.
assert all(any(l in p for l in linked) for p in m["problems"]), m["problems"]
PY
if [ -z "$why" ] && ! grep -q 'AddressSanitizer\|runtime error' "$H/h3.inspect" "$H/h3.verify"; then
	pass hostile_disk_links_not_followed
else
	fail hostile_disk_links_not_followed "wrong:$why $(cat "$H/h3.rc") $v $(head -5 "$H/h3.inspect")"
fi
# Nothing written: the libguestfs temporary directory is gone, nothing new
# in the test's tree, the disks read as they were.
find "$WORK" | sort >"$H/listing.after"
if [ -z "$(ls -A "$WORK/tmp")" ] && cmp -s "$H/listing" "$H/listing.after" &&
	[ "$(cd "$H" && sha256sum h1.img h2.img h3.img)" = "$sums_before" ]; then
	pass hostile_disk_nothing_written
else
	fail hostile_disk_nothing_written "$(ls -A "$WORK/tmp"; diff "$H/listing" "$H/listing.after")"
fi
finish
