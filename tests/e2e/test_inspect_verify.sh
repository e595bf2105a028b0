#!/usr/bin/env bash
# inspect and verify read every output type back without unpacking it:
# inspect's JSON checked field by field against the recipes and against
# openssl's view of keys/*.pem, never a private key or token secret in
# what it prints; verify passes on fresh outputs and names the file after
# one byte is flipped (a large file on an ISO, a file inside a PXE segment
# repacked as a valid cpio, a plain file of a PXE tree); hostile inputs are
# refused with a message and exit 1, and nothing is written anywhere.
. "$(dirname "$0")/../lib/e2e.sh"
cd "$WORK"
make_project p
pxe_tar p
cd p
# kubectl over 1 MiB stays on the ISO as it is (dlws/large/...): a marker
# finds its bytes in the image.
{ printf '#!/bin/sh\n# DLWS-TEST-KUBECTL-MARKER\n'; head -c 1200000 /dev/urandom | base64 -w 76; } >vendor/bin/kubectl
(cd vendor/bin && sha256sum kubectl etcd etcdctl >../SHA256SUMS)
# A build time of our own (2026-01-01T00:00:00Z): the metadata says it.
if SOURCE_DATE_EPOCH=1767225600 "$MK" -q recipes/master.recipe recipes/worker.recipe recipes/etcd.recipe; then
	pass build_outputs
else
	fail build_outputs "build failed"
	finish
fi

# inspect --json on each output type, field by field.
inspect_json() { # NAME OUTPUT TYPE RECIPES NODES [BUILT, "" for none]
	local name=$1 out=$2
	if ! "$MK" -v inspect --json "$out" >"$WORK/$name.json" 2>"$WORK/$name.err"; then
		fail "inspect_$name" "exit $?: $(head -3 "$WORK/$name.err")"
		return
	fi
	"$MK" -v inspect "$out" >"$WORK/$name.txt" 2>&1
	if python3 - "$WORK/$name.json" "$3" "$4" "$5" "$WORK/$name.txt" "${6-2026-01-01T00:00:00Z}" <<'PY'; then pass "inspect_$name"; else fail "inspect_$name" "see above"; fi
import json, re, subprocess, sys, glob
m = json.load(open(sys.argv[1]))
want_type, want_recipes, want_nodes = sys.argv[2], sys.argv[3].split(), sys.argv[4].split()
txt, built = open(sys.argv[5]).read(), sys.argv[6] or None
assert m["type"] == want_type, m["type"]
assert m["problems"] == [], m["problems"]
if want_recipes:
    b = m["build"]
    assert b["tool"] == "dlws-mkimage" and b["built"] == built and b["cluster"] == "dlws-lab", b
    if built:
        assert f"built by dlws-mkimage {b['version']} at {built}, cluster dlws-lab\n" in txt
    else:
        assert f"built by dlws-mkimage {b['version']} (no build time: SOURCE_DATE_EPOCH was not set), cluster dlws-lab\n" in txt
    assert [r["name"] for r in b["recipes"]] == want_recipes, b["recipes"]
    assert sorted(n for r in b["recipes"] for n in r["nodes"]) == sorted(want_nodes)
    for r in b["recipes"]:
        assert len(r["payload_sha256"]) == 64 and (r["entries"] or want_type == "initrd-dir"), r
        assert re.fullmatch(r"[0-9a-f]{64}", r["inputs_sha256"]), r
        assert f"  payload: {r['payload_sha256']}\n  inputs:  {r['inputs_sha256']}\n" in txt
else:
    assert m["build"] is None
# openssl's view of every certificate the PKI holds
pki = {}
for f in glob.glob("keys/*.pem"):
    t = open(f).read()
    if "BEGIN CERTIFICATE" not in t:
        continue
    subj = subprocess.run(["openssl", "x509", "-in", f, "-noout", "-subject", "-nameopt", "oneline,-space_eq"],
                          capture_output=True, text=True, check=True).stdout.strip().removeprefix("subject=")
    ext = subprocess.run(["openssl", "x509", "-in", f, "-noout", "-ext", "subjectAltName"],
                         capture_output=True, text=True).stdout.splitlines()
    sans = [s.strip().replace("IP Address:", "IP:") for s in ext[1].split(",")] if len(ext) > 1 else []
    pki.setdefault(subj, []).append(sans)
certs = m["certificates"]
for c in certs:
    assert c["subject"] in pki, ("not in keys/", c["subject"])
    assert c["sans"] in pki[c["subject"]], (c["subject"], c["sans"], pki[c["subject"]])
    assert c["days_left"] > 300 and c["not_after"].endswith("Z"), c
    assert c["path"].startswith("/usr/share/oem/dlws/rootfs/etc/") or c["path"].startswith("/usr/share/oem/dlws/rootfs/var/"), c
segs = {s["path"]: s for s in m["segments"]}
assert segs and all(s["error"] is None and s["manifests"] for s in segs.values()), segs
for s in segs.values():
    for man in s["manifests"]:
        assert man["files"] == len(man["entries"]) and man["bytes"] == sum(e["size"] for e in man["entries"]), man
subjects = {c["subject"] for c in certs}
if "dlws-master" in want_nodes:
    api = [c for c in certs if c["subject"] == "CN=kube-apiserver"]
    assert api and "DNS:kubernetes" in api[0]["sans"] and "IP:192.168.255.10" in api[0]["sans"], api
    assert "O=system:nodes, CN=system:node:dlws-master" in subjects, subjects
if "dlws-worker1" in want_nodes:
    assert "O=system:nodes, CN=system:node:dlws-worker1" in subjects, subjects
if want_type == "iso":
    et = [(e["platform"], e["path"], e["bootable"]) for e in m["boot"]["el_torito"]]
    assert et == [("BIOS", "isolinux/isolinux.bin", True), ("UEFI", "boot/efi.img", True)], et
    menus = {x["file"]: x["entries"] for x in m["boot"]["menus"]}
    assert menus["isolinux/isolinux.cfg"] == ["master", "dlws-master", "rescue"], menus
    assert any(e["path"].startswith("/usr/share/oem/dlws/large/") for man in segs["master/shared.cpio.zst"]["manifests"] for e in man["entries"])
if want_type in ("pxe-tree", "pxe-tar"):
    macs = sorted(x["mac"] for x in m["boot"]["per_mac"] if x["file"].startswith("pxelinux.cfg/"))
    assert macs == ["52:54:00:00:10:01", "52:54:00:00:11:01", "52:54:00:00:21:01", "52:54:00:00:21:02"], macs
    assert "nodes/dlws-worker2.cpio.zst" in segs and "worker/role.cpio.zst" in segs, list(segs)
# The entries read from the menus themselves are the metadata's: the
# pxelinux and GRUB menus' (no MAC there), the iPXE script's with each
# node's MAC from its per-MAC dispatch (no title: iPXE has none), each
# per-MAC file's its node's.
def key(e, mac=True):
    return (e["label"], e["title"], e["kernel"], e["initrds"], e["cmdline"]) + ((e["mac"],) if mac else ())
built_entries = [e for r in (m["build"] or {}).get("recipes", []) for e in r["entries"]]
boot = m["boot"]
menus = {x["file"]: x for x in boot["menus"]}
if want_type in ("pxe-tree", "pxe-tar"):
    assert sorted(menus) == ["grub.cfg", "pxelinux.cfg/default"], list(menus)
    for f, x in menus.items():
        assert [key(e, False) for e in x["items"]] == [key(e, False) for e in built_entries], (f, x["items"])
        assert x["entries"] == [e["label"] for e in built_entries] and x["default"] == "master", x
        assert all(e["mac"] is None for e in x["items"]), x
    assert [x["file"] for x in boot["ipxe"]] == ["boot.ipxe"], boot["ipxe"]
    ipxe = boot["ipxe"][0]
    assert [(e["label"], e["kernel"], e["initrds"], e["cmdline"], e["mac"]) for e in ipxe["items"]] == \
           [(e["label"], e["kernel"], e["initrds"], e["cmdline"], e["mac"]) for e in built_entries], ipxe["items"]
    assert all(e["title"] is None for e in ipxe["items"]) and ipxe["default"] == "master", ipxe
    by_mac = {e["mac"]: e for e in built_entries if e["mac"]}
    assert len(by_mac) == len(want_nodes), by_mac
    for kind in ("pxelinux.cfg/", "grub/"):
        files = [x for x in boot["per_mac"] if x["file"].startswith(kind)]
        assert sorted(x["mac"] for x in files) == sorted(by_mac), files
        for x in files:
            be = by_mac[x["mac"]]
            assert [key(e) for e in x["items"]] == [key(be)] and x["default"] == be["label"], x
elif want_type == "iso":
    assert sorted(menus) == ["boot/grub/grub.cfg", "isolinux/isolinux.cfg"], list(menus)
    for f, x in menus.items():
        assert [key(e) for e in x["items"]] == [key(e) for e in built_entries] and x["default"] == "dlws-master", (f, x)
    assert boot["ipxe"] == [] and boot["per_mac"] == []
else:
    assert boot["menus"] == [] and boot["ipxe"] == [] and boot["per_mac"] == [], boot
if any(s.startswith("nodes/") or s.startswith("node-") or s.endswith(".cpio.zst") for s in segs):
    cfgs = [c["path"] for c in m["configs"]]
    if want_nodes:
        assert "/usr/share/oem/dlws/rootfs/var/lib/flatcar-install/user_data" in cfgs and "/usr/share/oem/config.ign" in cfgs, cfgs
        assert all(c["text"] for c in m["configs"])
# The configs: the text files of a node's or a role's own segment (every
# template its recipe renders, wherever the dest), none of a shared one,
# never a certificate, key or manifest.
per_node = {s["path"] for s in m["segments"] if any(x["name"] in ("node", "role") for x in s["manifests"])}
R = "/usr/share/oem/dlws/rootfs"
shown = {}
for c in m["configs"]:
    assert c["segment"] in per_node and c["omitted"] is None and c["text"], c
    assert not c["path"].endswith((".crt", ".key", ".pub")) and "/manifest.d/" not in c["path"], c["path"]
    assert "BEGIN" not in c["text"].split("\n", 1)[0], c["path"]
    shown.setdefault(c["segment"], {})[c["path"]] = c["text"]
assert set(shown) == per_node, (set(shown), per_node)
for s in per_node:
    recipe = re.search(r"^DLWS_RECIPE=(\S+)$", shown[s]["/usr/share/oem/dlws/node.env"], re.M).group(1)
    for d in re.findall(r"template:\s*[^,}]+,\s*dest:\s*([^,}\s]+)", open(f"recipes/{recipe}.recipe").read()):
        assert R + d in shown[s], (s, d, sorted(shown[s]))
    if recipe == "master" and s.startswith("nodes/"):
        assert 'token-secret: "(hidden)"' in shown[s][R + "/etc/kubernetes/dlws/bootstrap-token.yaml"]
        assert "client-key-data: (hidden)" in shown[s][R + "/etc/kubernetes/admin.conf"]
PY
	check "inspect_${name}_documented_shape" python3 "$ROOT/tests/lib/check-json-shape.py" "$ROOT/man/dlws-mkimage.1" Outputs: "$WORK/$name.json"
}
inspect_json iso out/master.iso iso master dlws-master
inspect_json pxe_tree out/pxe pxe-tree "master worker etcd" "dlws-master dlws-worker1 dlws-worker2 dlws-etcd1"
inspect_json pxe_tar out/pxe.tar pxe-tar "master worker etcd" "dlws-master dlws-worker1 dlws-worker2 dlws-etcd1"
inspect_json initrd_dir out/worker-initrd initrd-dir worker "dlws-worker1 dlws-worker2"
inspect_json segment out/pxe/nodes/dlws-master.cpio.zst segment "" "dlws-master"
# Without SOURCE_DATE_EPOCH the metadata records no build time.
cp -a "$WORK/p" "$WORK/p2"
cd "$WORK/p2"
if env -u SOURCE_DATE_EPOCH "$MK" -q recipes/master.recipe recipes/worker.recipe recipes/etcd.recipe; then
	inspect_json no_build_time out/pxe pxe-tree "master worker etcd" "dlws-master dlws-worker1 dlws-worker2 dlws-etcd1" ""
else
	fail inspect_no_build_time "the build failed"
fi
cd "$WORK/p"
# --json is the answer, whatever -q says; without -v the manifests leave
# their entries out, as the man page says, and nothing else changes.
"$MK" -q inspect --json out/master.iso >"$WORK/quiet.json" 2>"$WORK/quiet.err"
if [ $? = 0 ] && python3 "$ROOT/tests/lib/check-json-shape.py" "$ROOT/man/dlws-mkimage.1" Outputs: "$WORK/quiet.json" &&
	python3 - "$WORK/quiet.json" "$WORK/iso.json" <<'PY'
import json, sys
q, v = (json.load(open(f)) for f in sys.argv[1:3])
for s in q["segments"]:
    for m in s["manifests"]:
        assert "entries" not in m, m
        m2 = [x for x in v["segments"] if x["path"] == s["path"]][0]["manifests"]
        assert {k: m[k] for k in ("name", "files", "bytes")} in [{k: x[k] for k in ("name", "files", "bytes")} for x in m2]
assert q["type"] == v["type"] and q["build"] == v["build"] and q["certificates"] == v["certificates"], "differs"
PY
then
	pass inspect_json_quiet_without_entries
else
	fail inspect_json_quiet_without_entries "$(head -c 300 "$WORK/quiet.json") $(cat "$WORK/quiet.err")"
fi
secret=$(cut -d. -f2 keys/bootstrap-token)
keylines=$(for k in keys/*-key.pem keys/service-account-key.pem; do sed -n 2p "$k"; done)
if ! grep -q 'PRIVATE KEY' "$WORK"/*.json "$WORK"/*.txt && ! grep -qF "$secret" "$WORK"/*.json "$WORK"/*.txt &&
	! grep -qF "$keylines" "$WORK"/*.json "$WORK"/*.txt && grep -q 'token' "$WORK"/pxe_tree.json; then
	pass inspect_no_private_key_or_token_secret
else
	fail inspect_no_private_key_or_token_secret "$(grep -l -e 'PRIVATE KEY' -e "$secret" "$WORK"/*.json "$WORK"/*.txt)"
fi

# verify on fresh outputs.
for o in out/master.iso out/pxe out/pxe.tar out/worker-initrd out/pxe/nodes/dlws-worker1.cpio.zst; do
	if v=$("$MK" verify "$o" 2>&1) && grep -qE "^$o: verified [1-9][0-9]* files$" <<<"$v"; then
		pass "verify_fresh_$(basename "$o")"
	else
		fail "verify_fresh_$(basename "$o")" "$v"
	fi
done

# One byte of a large payload file flipped on the ISO.
cp out/master.iso "$WORK/bad.iso"
off=$(grep -obUaF 'DLWS-TEST-KUBECTL-MARKER' "$WORK/bad.iso" | head -1 | cut -d: -f1)
flip_byte "$WORK/bad.iso" $((off + 100))
v=$("$MK" verify "$WORK/bad.iso" 2>&1)
rc=$?
if [ $rc = 1 ] && grep -q "master/shared.cpio.zst: 'dlws/large/rootfs/opt/bin/kubectl (/usr/share/oem/dlws/large/rootfs/opt/bin/kubectl)' does not match" <<<"$v" &&
	[ "$(grep -c 'does not match' <<<"$v")" = 1 ]; then
	pass verify_iso_flipped_large_file
else
	fail verify_iso_flipped_large_file "rc=$rc $v"
fi

# A file inside a PXE segment changed, the segment repacked as valid cpio.
cp -a out/pxe "$WORK/pxe1"
seg="$WORK/pxe1/nodes/dlws-worker1.cpio.zst"
mkdir "$WORK/x" && bsdtar -xf "$seg" -C "$WORK/x"
sed -i 's/^DLWS_HOSTNAME=dlws-worker1/DLWS_HOSTNAME=dlws-workerX/' "$WORK/x/usr/share/oem/dlws/node.env"
(cd "$WORK/x" && find usr | sort | bsdcpio -o --quiet --format newc | zstd -q) >"$seg"
v2=""
v=$("$MK" verify "$WORK/pxe1" 2>&1)
rc=$?
if [ $rc = 1 ] && grep -q "nodes/dlws-worker1.cpio.zst: '/usr/share/oem/dlws/node.env' does not match" <<<"$v" &&
	grep -q "SHA256SUMS: 'nodes/dlws-worker1.cpio.zst' does not match" <<<"$v" && [ "$(grep -c 'does not match' <<<"$v")" = 2 ] &&
	v2=$("$MK" verify "$seg" 2>&1); [ $? = 1 ] && grep -q "'/usr/share/oem/dlws/node.env' does not match" <<<"$v2"; then
	pass verify_pxe_segment_flipped_file
else
	fail verify_pxe_segment_flipped_file "rc=$rc $v"
fi

# A plain file of a PXE tree, and a missing one.
cp -a out/pxe "$WORK/pxe2"
flip_byte "$WORK/pxe2/boot.ipxe" 10
rm "$WORK/pxe2/menu.c32"
v=$("$MK" verify "$WORK/pxe2" 2>&1)
rc=$?
if [ $rc = 1 ] && grep -q "SHA256SUMS: 'boot.ipxe' does not match" <<<"$v" && grep -q "SHA256SUMS: 'menu.c32' is missing" <<<"$v" &&
	grep -q '2 of [0-9]* files failed verification' <<<"$v"; then
	pass verify_pxe_tree_plain_file
else
	fail verify_pxe_tree_plain_file "rc=$rc $v"
fi

# A tampered iPXE script and a per-MAC file not named after a MAC: what
# cannot be an entry of ours is left out and named, the rest is shown.
cp -a out/pxe "$WORK/pxe3"
sed -i -e '0,/^kernel master\/vmlinuz /s//kernel ..\/..\/..\/etc\/passwd /' \
	-e '3i iseq ${mac} 52:54:00:00:99:99 \&\& goto nowhere ||' "$WORK/pxe3/boot.ipxe"
cp "$WORK/pxe3/grub/52:54:00:00:10:01.cfg" "$WORK/pxe3/grub/evil.cfg"
"$MK" inspect --json "$WORK/pxe3" >"$WORK/pxe3.out" 2>"$WORK/pxe3.err"
rc=$?
if [ $rc = 1 ] && ! grep -q 'AddressSanitizer\|runtime error' "$WORK/pxe3.err" &&
	grep -q "error: boot.ipxe:3: goto 'nowhere' names no entry" "$WORK/pxe3.err" &&
	python3 - "$WORK/pxe3.out" <<'PY'; then
import json, re, sys
m = json.load(open(sys.argv[1]))
p = m["problems"]
assert "boot.ipxe:3: goto 'nowhere' names no entry" in p, p
assert any(re.fullmatch(r"boot\.ipxe:11: refusing path '\.\./\.\./\.\./etc/passwd': not a plain path inside the boot root", x) for x in p), p
assert "boot.ipxe:8: the default 'master' names no entry" in p, p
assert "grub/evil.cfg: not named after a MAC address" in p, p
assert len(p) == 4, p
items = m["boot"]["ipxe"][0]["items"]
assert [e["label"] for e in items] == ["dlws-master", "worker", "dlws-worker1", "dlws-worker2", "etcd", "dlws-etcd1"], items
assert m["boot"]["ipxe"][0]["default"] is None and not any("passwd" in json.dumps(e) for e in items)
assert "evil" not in json.dumps(m["boot"]["per_mac"])
PY
	pass hostile_ipxe_script
else
	fail hostile_ipxe_script "rc=$rc $(cat "$WORK/pxe3.err")"
fi

# Hostile inputs: refused with a message, exit 1, nothing written.
mkdir "$WORK/h"
cd "$WORK/h"
python3 - <<'PY'
import io, tarfile, hashlib, os, subprocess, gzip
def add(t, name, data):
    i = tarfile.TarInfo(name); i.size = len(data); t.addfile(i, io.BytesIO(data))
with tarfile.open("evil.tar", "w", format=tarfile.USTAR_FORMAT) as t:
    add(t, "pxe/SHA256SUMS", b"0" * 64 + b"  boot.ipxe\n")
    add(t, "pxe/../evil", b"evil\n")
with tarfile.open("abs.tar", "w", format=tarfile.USTAR_FORMAT) as t:
    add(t, "/tmp/evil-abs", b"evil\n")
# a segment whose manifest names a path outside the payload
os.makedirs("m/usr/share/oem/dlws/manifest.d")
open("m/usr/share/oem/dlws/manifest.d/node", "w").write(
    "# dlws payload manifest\n" + hashlib.sha256(b"x").hexdigest() + " 1 0644 /../../etc/passwd\n")
subprocess.run("cd m && find usr | sort | bsdcpio -o --quiet --format newc | gzip -n >../passwd.cpio.gz", shell=True, check=True)
open("m/usr/share/oem/dlws/manifest.d/node", "w").write(
    "# dlws payload manifest\n" + hashlib.sha256(b"x").hexdigest() + " 99999999999999999999999 0644 /usr/x\n")
subprocess.run("cd m && find usr | sort | bsdcpio -o --quiet --format newc | gzip -n >../absurd.cpio.gz", shell=True, check=True)
# a tar entry claiming 8 GiB with 1 KiB behind it
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as t:
    add(t, "pxe/big.bin", b"y" * 1024)
raw = bytearray(buf.getvalue())
raw[124:136] = b"77777777777\0"
s = sum(raw[:148]) + 8 * 32 + sum(raw[156:512])
raw[148:156] = b"%06o\0 " % s
open("huge.tar", "wb").write(bytes(raw[:2048]))
PY
head -c $(( $(stat -c %s "$WORK/p/out/master.iso") / 2 )) "$WORK/p/out/master.iso" >truncated.iso
find "$WORK" | sort >"$WORK/h.before"
hostile() { # NAME FILE PATTERN
	local out rc out2 rc2
	out=$("$MK" verify "$2" 2>&1)
	rc=$?
	out2=$("$MK" inspect --json "$2" 2>&1 >/dev/null)
	rc2=$?
	if [ $rc = 1 ] && [ $rc2 = 1 ] && grep -qE "$3" <<<"$out" && grep -qE "$3" <<<"$out2" && ! grep -q 'AddressSanitizer\|runtime error' <<<"$out$out2"; then
		pass "hostile_$1"
	else
		fail "hostile_$1" "verify rc=$rc inspect rc=$rc2: $out | $out2"
	fi
}
hostile tar_dotdot evil.tar "refusing entry 'pxe/\.\./evil'"
hostile tar_absolute abs.tar "refusing entry '/tmp/evil-abs'"
hostile manifest_dotdot passwd.cpio.gz "refusing path '/\.\./\.\./etc/passwd'"
hostile manifest_absurd_size absurd.cpio.gz "absurd size '99999999999999999999999'"
hostile tar_absurd_size huge.tar "cannot read .*huge.tar"
hostile truncated_iso truncated.iso "truncated.iso"
find "$WORK" | sort >"$WORK/h.after"
if diff -q <(grep -v "/h\.before$" "$WORK/h.before") <(grep -v -e "/h\.before$" -e "/h\.after$" "$WORK/h.after") >/dev/null && [ ! -e "$WORK/evil" ] && [ ! -e /tmp/evil-abs ] && [ ! -e "$WORK/h/evil" ]; then
	pass hostile_nothing_written
else
	fail hostile_nothing_written "$(diff <(grep -v "/h\.before$" "$WORK/h.before") <(grep -v -e "/h\.before$" -e "/h\.after$" "$WORK/h.after"))"
fi
v=$("$MK" verify "$WORK/p/recipes" 2>&1)
if [ $? = 1 ] && grep -q "'$WORK/p/recipes' is not an output of dlws-mkimage" <<<"$v"; then pass not_an_output; else fail not_an_output "$v"; fi
finish
