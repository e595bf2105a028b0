#!/usr/bin/env bash
# inspect and verify read a pre-installed disk (outputs.disk) back through
# a read-only libguestfs appliance: inspect --json shows type disk, the
# node's build metadata from OEM, the manifest's counts, certificates
# checked against openssl's view of keys/*.pem, no private key; verify
# passes on a fresh raw disk and names the file after one byte of it is
# flipped on the host; a qcow2 disk inspects too; a GPT disk that is not
# ours (the stand-in OS image: no OEM/dlws-manifest) is refused with exit 1.
# Launches run two at a time (each is 15-30 s without KVM).
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

# Launches in two rounds: the raw disk and the foreign image, then the
# qcow2 disk and the raw disk with one byte flipped.
t0=$(date +%s)
"$MK" inspect --json $m >"$WORK/raw.json" 2>"$WORK/raw.err" &
p1=$!
"$MK" -v verify $m >"$WORK/verify.out" 2>&1 &
p2=$!
"$MK" inspect out/os.img >"$WORK/os.out" 2>&1 &
p3=$!
wait $p1 && check_json inspect_disk_raw "$WORK/raw.json" raw master dlws-master "CN=kube-apiserver" ||
	fail inspect_disk_raw "exit: $(head -3 "$WORK/raw.err")"
if wait $p2 && grep -q "^$m: verified [0-9]* files" "$WORK/verify.out"; then
	pass verify_disk_passes
else
	fail verify_disk_passes "$(head -5 "$WORK/verify.out")"
fi
wait $p3
rc=$?
if [ $rc = 1 ] && grep -q "error: the disk 'out/os.img' has no readable /OEM/dlws-manifest" "$WORK/os.out"; then
	pass foreign_disk_refused
else
	fail foreign_disk_refused "rc=$rc: $(cat "$WORK/os.out")"
fi
echo "first round took $(($(date +%s) - t0))s"

t0=$(date +%s)
offsets=$(grep -obUa 'DLWS-TEST-KUBECTL' $m | cut -d: -f1)
for o in $offsets; do flip_byte "$m" "$o"; done
"$MK" inspect --json $w >"$WORK/qcow2.json" 2>"$WORK/qcow2.err" &
p1=$!
"$MK" verify $m >"$WORK/flipped.out" 2>&1 &
p2=$!
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
echo "second round took $(($(date +%s) - t0))s"
finish
