#!/usr/bin/env bash
# inspect and verify read a pre-installed disk (outputs.disk) back through
# a read-only libguestfs appliance: inspect --json of a raw and a qcow2 disk
# in the man page's shape, field by field: the node's build metadata from
# OEM against the tool, recipe and cluster, payload_sha256 and the
# manifest's counts against the disk's manifest (read with guestfish),
# every certificate against openssl's view of its keys/*.pem, days left
# included; no private key. verify passes on a fresh raw disk and names the
# file after one byte of it is flipped on the host; a GPT disk that is not
# ours (the stand-in OS image: no OEM/dlws-manifest) is refused with exit 1.
# Crafted copies of the raw disk (altered in one guestfish session) are
# read as hostile: manifest lines with '..', absurd sizes, a path out of
# the partitions, a name listed twice, a sparse 1 TiB file; links out of
# the tree where the manifest lists files. Each is refused or named, and
# nothing is written outside the temporary directory (TMPDIR).
# Launches run three at a time (each is 15-30 s without KVM). With the
# ASan pass in the same run, the plain pass stops after the first round.
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
SOURCE_DATE_EPOCH=1700000000 "$MK" -q recipes/master.recipe recipes/worker.recipe || { fail build "recipes with outputs.disk did not build"; finish; }
echo "build took $(($(date +%s) - t0))s"
m=out/disks/dlws-master.img w=out/wdisks/dlws-worker1.qcow2

# check_json NAME JSON DISK FORMAT RECIPE NODE MANIFEST T0 T1: inspect --json
# of DISK (run between T0 and T1) field by field: the build metadata
# against the tool, the recipe and cluster.yaml; payload_sha256 and the
# manifest's counts against MANIFEST (the disk's, read with guestfish);
# every certificate the manifest lists (a .crt, a kubeconfig's
# client-certificate-data) against openssl's view of its keys/*.pem.
check_json() {
	if python3 - "$@" "$("$MK" --version)" <<'PY'; then pass "$1"; else fail "$1" "see above"; fi
import base64, calendar, datetime, hashlib, json, os, re, subprocess, sys
name, path, disk, fmt, recipe, node, manifest, t0, t1, version = sys.argv[1:]
text = open(path).read()
assert "PRIVATE KEY" not in text and "BEGIN RSA" not in text, "a private key in the output"
m = json.loads(text)
assert m["output"] == disk and m["type"] == "disk" and m["disk"]["format"] == fmt, (m["output"], m["type"], m["disk"])
assert m["problems"] == [] and m["segments"] == [], (m["problems"], m["segments"])
assert m["boot"] and all(v == [] for v in m["boot"].values()), m["boot"]
def value(f, key):  # a "key: value" line of a YAML file
    return next(mm.group(1) for line in open(f) if (mm := re.match(rf"^{key}:\s*(\S+)", line)))
b = m["build"]
want = {"tool": "dlws-mkimage", "version": version.split()[-1], "built": "2023-11-14T22:13:20Z",
        "cluster": value("recipes/cluster.yaml", "cluster_name")}
assert {k: b[k] for k in want} == want, (b, want)
[r] = b["recipes"]
assert (r["name"], r["role"], r["nodes"], r["entries"]) == (value(recipe, "name"), value(recipe, "role"), [node], []), r
assert os.path.normpath(os.path.join(os.path.dirname(disk), r["recipe"])) == recipe, r["recipe"]
mtext = open(manifest, "rb").read()
assert r["payload_sha256"] == hashlib.sha256(mtext).hexdigest(), "payload_sha256 is not the manifest's sum"
lines = [l.split(" ", 3) for l in mtext.decode().splitlines() if l and not l.startswith("#")]
assert m["disk"]["manifest"] == {"name": "dlws-manifest", "files": len(lines), "bytes": sum(int(l[1]) for l in lines)}, m["disk"]
def sha(f):
    return hashlib.sha256(open(f, "rb").read()).hexdigest()
certs = {}  # path on the disk: (source, the keys/*.pem it is)
for s, size, mode, p in lines:
    pki = "/ROOT/etc/kubernetes/pki/"
    if p.startswith(pki) and p.endswith(".crt"):
        pem = "keys/" + p[len(pki):-4].replace("/", "-") + ".pem"
        assert sha(pem) == s, (p, pem)
        certs[p] = ("file", pem)
    elif re.fullmatch(r"/ROOT/etc/kubernetes/[^/]+\.conf", p):
        base = os.path.basename(p)[:-5]
        conf = f"keys/kubelet-{node}.conf" if base == "kubelet" else f"keys/{base}.conf"
        data = re.search(r"client-certificate-data:\s*(\S+)", open(conf).read()) if os.path.exists(conf) else None
        if data:
            assert sha(conf) == s, (p, conf)
            assert base64.b64decode(data.group(1)) == open(conf[:-5] + ".pem", "rb").read(), conf
            certs[p] = ("kubeconfig", conf[:-5] + ".pem")
assert "/ROOT/etc/kubernetes/pki/ca.crt" in certs and "/ROOT/etc/kubernetes/kubelet.conf" in certs, certs
got = {c["path"]: c for c in m["certificates"]}
assert {p: c["source"] for p, c in got.items()} == {p: v[0] for p, v in certs.items()}, (sorted(got), sorted(certs))
for p, (source, pem) in certs.items():
    out = subprocess.run(["openssl", "x509", "-in", pem, "-noout", "-subject", "-issuer", "-enddate", "-ext", "subjectAltName",
                          "-nameopt", "oneline,-space_eq"], capture_output=True, text=True, check=True).stdout.splitlines()
    x = dict(l.split("=", 1) for l in out if re.match(r"^(subject|issuer|notAfter)=", l))
    sans = [s.strip().replace("IP Address:", "IP:") for l in out if l.startswith("    ") for s in l.split(",")]
    end = datetime.datetime.strptime(" ".join(x["notAfter"].split()), "%b %d %H:%M:%S %Y GMT")
    c = got[p]
    want = {"segment": "ROOT", "subject": x["subject"], "issuer": x["issuer"], "sans": sans,
            "not_after": end.strftime("%Y-%m-%dT%H:%M:%SZ")}
    assert {k: c[k] for k in want} == want, (p, c, want)
    end = calendar.timegm(end.timetuple())
    assert (end - int(t1)) // 86400 <= c["days_left"] <= (end - int(t0)) // 86400, (p, c["days_left"])
configs = {c["path"]: c["text"] for c in m["configs"]}
assert "/OEM/config.ign" in configs and "/ROOT/var/lib/flatcar-install/user_data" in configs, list(configs)
PY
}

# Crafted copies of the raw disk, altered below while nothing reads it.
# When the ASan pass runs as well, the second round and the hostile disks
# are its alone: the same checks of the tool's code, with memory errors
# caught; the plain pass (the tool that opens libguestfs with dlopen, not
# linked with it as the ASan build is) reads the raw disk with inspect and
# verify, and leaves nine appliance launches to it.
hostile_here=1
[ -z "${DLWS_ASAN_PASS:-}" ] && [ -n "${DLWS_ASAN_ALSO:-}" ] && hostile_here=
H=$WORK/hostile
mkdir -p "$H" "$WORK/tmp"
if [ -n "$hostile_here" ]; then
	for h in h1 h2 h3; do cp --sparse=always $m "$H/$h.img"; done
	adds="add $H/h1.img format:raw
add $H/h2.img format:raw
add $H/h3.img format:raw" raw=sdd qcow=sde
else
	adds="" raw=sda qcow=sdb
fi
zero=0000000000000000000000000000000000000000000000000000000000000000
tib=1099511627776
# One guestfish session: h1 gets manifest lines the parser refuses, h2
# lines it takes but the disk reader must not (1 TiB of a sparse file
# there, a path out of ROOT and OEM, a name listed twice), h3 links where
# the manifest lists files (out of the tree, up and out, a linked
# directory) and a listed file grown to a sparse 1 TiB.
{
	[ -z "$adds" ] || echo "$adds"
	cat <<EOF
add $m readonly:true format:raw
add $w readonly:true format:qcow2
run
mount-ro /dev/${raw}6 /
download /dlws-manifest $WORK/raw.manifest
umount-all
mount-ro /dev/${qcow}6 /
download /dlws-manifest $WORK/qcow2.manifest
umount-all
EOF
	[ -z "$hostile_here" ] || cat <<EOF
mount /dev/sda6 /
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
} >"$WORK/craft"

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
wait $p1
rc=$?
t1=$(date +%s)
if wait $p3; then
	[ $rc = 0 ] && check_json inspect_disk_raw "$WORK/raw.json" $m raw recipes/master.recipe dlws-master "$WORK/raw.manifest" $t0 $t1 ||
		fail inspect_disk_raw "exit $rc: $(head -3 "$WORK/raw.err")"
else
	fail hostile_disks "guestfish could not read or craft the disks: $(tail -3 "$WORK/craft.out")"
	finish
fi
check inspect_disk_raw_documented_shape python3 "$ROOT/tests/lib/check-json-shape.py" "$ROOT/man/dlws-mkimage.1" Outputs: "$WORK/raw.json"
if wait $p2 && grep -q "^$m: verified [0-9]* files" "$WORK/verify.out"; then
	pass verify_disk_passes
else
	fail verify_disk_passes "$(head -5 "$WORK/verify.out")"
fi
echo "first round took $(($(date +%s) - t0))s"
if [ -z "$hostile_here" ]; then
	echo "ran in the ASan pass: inspect_disk_qcow2*, verify_disk_names_flipped_file, foreign_disk_refused, hostile_disk_*"
	finish
fi

t0=$(date +%s)
offsets=$(grep -obUa 'DLWS-TEST-KUBECTL' $m | cut -d: -f1)
for o in $offsets; do flip_byte "$m" "$o"; done
"$MK" inspect --json $w >"$WORK/qcow2.json" 2>"$WORK/qcow2.err" &
p1=$!
"$MK" verify $m >"$WORK/flipped.out" 2>&1 &
p2=$!
"$MK" inspect out/os.img >"$WORK/os.out" 2>&1 &
p3=$!
wait $p1
rc=$?
[ $rc = 0 ] && check_json inspect_disk_qcow2 "$WORK/qcow2.json" $w qcow2 recipes/worker.recipe dlws-worker1 "$WORK/qcow2.manifest" $t0 $(date +%s) ||
	fail inspect_disk_qcow2 "exit $rc: $(head -3 "$WORK/qcow2.err")"
check inspect_disk_qcow2_documented_shape python3 "$ROOT/tests/lib/check-json-shape.py" "$ROOT/man/dlws-mkimage.1" Outputs: "$WORK/qcow2.json"
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
n=$(wc -l <"$WORK/raw.manifest")
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
linked=$(grep -c ' /ROOT/etc/kubernetes/pki/' "$WORK/raw.manifest")
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
