#!/usr/bin/env bash
# inspect and verify read every output type back without unpacking it:
# inspect's JSON checked field by field against the output itself (its
# segments unpacked by bsdtar: payload_sha256 recomputed, every config equal
# to its file but for masked secrets), the recipes and cluster values (roles,
# kernels, initrds, command lines, MACs, the templates each node renders),
# the menus (pxelinux, GRUB, iPXE, per-MAC) and openssl's view of the very
# certificates of keys/, never a private key or token secret in what it
# prints; verify passes on fresh outputs and names the file after
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
SDE=1767225600
if SOURCE_DATE_EPOCH=$SDE "$MK" -q recipes/master.recipe recipes/worker.recipe recipes/etcd.recipe; then pass build_outputs; else fail build_outputs "build failed"; finish; fi
VERSION=$("$MK" --version | awk '{ print $2 }')
export VERSION WORK

# What inspect --json says, checked field by field against the output
# itself (read with bsdtar and openssl), the recipes and the cluster values.
cat >"$WORK/check_inspect.py" <<'PY'
import base64, datetime, difflib, glob, hashlib, json, os, re, subprocess, sys, tarfile, tempfile, time

json_path, txt_path, out, typ = sys.argv[1:5]
want_recipes, want_nodes, built_want = sys.argv[5].split(), sys.argv[6].split(), sys.argv[7]
m = json.load(open(json_path))
txt = open(txt_path).read()
env = os.environ
assert m["type"] == typ, m["type"]
assert m["problems"] == [], m["problems"]
segs = {s["path"]: s for s in m["segments"]}
assert segs and all(s["error"] is None and s["manifests"] for s in segs.values()), segs
for s in segs.values():
    for man in s["manifests"]:
        assert man["files"] == len(man["entries"]) and man["bytes"] == sum(e["size"] for e in man["entries"]), man

# ---- the output's own bytes, read independently -------------------------
_tar = None
def member(rel):
    global _tar
    if typ in ("pxe-tree", "initrd-dir"):
        return open(os.path.join(out, rel), "rb").read()
    if typ == "pxe-tar":
        if _tar is None:
            _tar = tarfile.open(out)
        return _tar.extractfile(f"{_tar.getnames()[0].split('/')[0]}/{rel}").read()
    if typ == "iso":
        return subprocess.run(["bsdtar", "-xOf", out, rel], capture_output=True, check=True).stdout
    return open(out, "rb").read()

_segs = {}
def seg_files(path):
    """Every regular file of a segment: {path: bytes}, unpacked by bsdtar."""
    if path not in _segs:
        d = tempfile.mkdtemp(dir=env["WORK"])
        subprocess.run(["bsdtar", "-xf", "-", "-C", d], input=member(path), check=True)
        files = {}
        for root, _, names in os.walk(d):
            for n in names:
                p = os.path.join(root, n)
                if os.path.isfile(p) and not os.path.islink(p):
                    files[os.path.relpath(p, d)] = open(p, "rb").read()
        _segs[path] = files
    return _segs[path]

def recipe_text(name):
    return open(f"recipes/{name}.recipe").read()

def recipe_field(name, key):
    return re.search(rf'^\s*{key}:\s*"?([^"\n]*)"?\s*$', recipe_text(name), re.M).group(1)

cluster_macs = dict(re.findall(r'hostname:\s*([\w-]+),.*mac:\s*"([0-9a-f:]+)"', open("recipes/cluster.yaml").read()))
per_node = {p for p, s in segs.items() if any(x["name"] in ("node", "role") for x in s["manifests"])}

# ---- build metadata -----------------------------------------------------
b = m["build"]
if want_recipes:
    assert b["tool"] == "dlws-mkimage" and b["version"] == env["VERSION"] and b["cluster"] == "dlws-lab", b
    if built_want:
        assert b["built"] == built_want, b["built"]
        assert f"built by dlws-mkimage {env['VERSION']} at {built_want}, cluster dlws-lab\n" in txt
    else:
        assert b["built"] is None, b["built"]
        assert (f"built by dlws-mkimage {env['VERSION']} (no build time: SOURCE_DATE_EPOCH was not set), "
                "cluster dlws-lab\n") in txt, txt[:300]
    assert [r["name"] for r in b["recipes"]] == want_recipes, b["recipes"]
    assert sorted(n for r in b["recipes"] for n in r["nodes"]) == sorted(want_nodes)
    raw = json.loads(member("dlws-build.json"))
    base_dir = out if typ in ("pxe-tree", "pxe-tar", "initrd-dir") else os.path.dirname(out)
    if typ == "pxe-tar":
        base_dir = out[:-4]
    for r, rr in zip(b["recipes"], raw["recipes"]):
        name = r["name"]
        assert r["role"] == recipe_field(name, "role"), (r["role"], name)
        assert os.path.realpath(os.path.join(base_dir, r["recipe"])) == os.path.realpath(f"recipes/{name}.recipe"), r["recipe"]
        # inputs_sha256: as the metadata has it, 64 hex
        assert r["inputs_sha256"] == rr["inputs_sha256"], (r["inputs_sha256"], rr["inputs_sha256"])
        assert re.fullmatch(r"[0-9a-f]{64}", r["inputs_sha256"]), r["inputs_sha256"]
        assert f"  payload: {r['payload_sha256']}\n  inputs:  {r['inputs_sha256']}\n" in txt
        # payload_sha256: the sum over the segments' manifest sums (build.c
        # manifest_sum, build_write_segments): shared, role, each node.
        if typ == "initrd-dir":
            parts = [("shared.cpio.zst", "shared"), ("role.cpio.zst", "role")] + [(f"node-{h}.cpio.zst", "node") for h in r["nodes"]]
        else:
            parts = [(f"{name}/shared.cpio.zst", "shared"), (f"{name}/role.cpio.zst", "role")] + \
                    [(f"nodes/{h}.cpio.zst", "node") for h in r["nodes"]]
        sums = "".join(f"{hashlib.sha256(seg_files(p)['usr/share/oem/dlws/manifest.d/' + k]).hexdigest()} {k}\n"
                       for p, k in parts if p in segs)
        assert r["payload_sha256"] == hashlib.sha256(sums.encode()).hexdigest(), (name, r["payload_sha256"], sums)
        # the entries against what the recipe and the cluster values say
        base_cmdline = recipe_field(name, "cmdline")
        for e in r["entries"]:
            assert e["kernel"] == f"{name}/vmlinuz" and e["initrds"][:2] == [f"{name}/base.img", f"{name}/shared.cpio.zst"], e
            assert e["cmdline"].startswith(f"{base_cmdline} dlws.recipe={name}"), e
            words = e["cmdline"].split()
            if e["label"] in r["nodes"] or e["label"] == "rescue":
                node = e["label"] if e["label"] in r["nodes"] else r["nodes"][0]
                assert f"dlws.node={node}" in words and e["initrds"][-1] == f"nodes/{node}.cpio.zst", e
                assert e["mac"] == (cluster_macs[node] if typ in ("pxe-tree", "pxe-tar") and e["label"] == node else None), e
                assert e["title"].startswith(f"{e['label']}: "), e
            else:
                assert e["label"] == name and not any(w.startswith("dlws.node=") for w in words) and e["mac"] is None, e
else:
    assert b is None

# ---- boot entries read from the menus ------------------------------------
def key(e, mac=True):
    return (e["label"], e["title"], e["kernel"], e["initrds"], e["cmdline"]) + ((e["mac"],) if mac else ())
boot = m["boot"]
menus = {x["file"]: x for x in boot["menus"]}
built_entries = [e for r in (b["recipes"] if b else []) for e in r["entries"]]
if typ in ("pxe-tree", "pxe-tar"):
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
    assert f"iPXE script boot.ipxe: {', '.join(e['label'] for e in built_entries)} (default master)\n" in txt
    by_mac = {e["mac"]: e for e in built_entries if e["mac"]}
    assert sorted(by_mac) == sorted(cluster_macs[n] for n in want_nodes), by_mac
    assert sorted(e["mac"] for e in ipxe["items"] if e["mac"]) == sorted(by_mac)
    for kind in ("pxelinux.cfg/", "grub/"):
        files = [x for x in boot["per_mac"] if x["file"].startswith(kind)]
        assert sorted(x["mac"] for x in files) == sorted(by_mac), files
        for x in files:
            be = by_mac[x["mac"]]
            assert [key(e) for e in x["items"]] == [key(be)] and x["default"] == be["label"] and x["entries"] == [be["label"]], x
elif typ == "iso":
    et = [(e["platform"], e["path"], e["bootable"]) for e in boot["el_torito"]]
    assert et == [("BIOS", "isolinux/isolinux.bin", True), ("UEFI", "boot/efi.img", True)], et
    assert sorted(menus) == ["boot/grub/grub.cfg", "isolinux/isolinux.cfg"], list(menus)
    assert menus["isolinux/isolinux.cfg"]["entries"] == ["master", "dlws-master", "rescue"], menus
    for f, x in menus.items():
        assert [key(e) for e in x["items"]] == [key(e) for e in built_entries] and x["default"] == "dlws-master", (f, x)
    assert boot["ipxe"] == [] and boot["per_mac"] == []
    assert any(e["path"].startswith("/usr/share/oem/dlws/large/") for man in segs["master/shared.cpio.zst"]["manifests"] for e in man["entries"])
else:
    assert boot["menus"] == [] and boot["ipxe"] == [] and boot["per_mac"] == [], boot
if typ in ("pxe-tree", "pxe-tar"):
    assert "nodes/dlws-worker2.cpio.zst" in segs and "worker/role.cpio.zst" in segs, list(segs)

# ---- certificates: the very ones in keys/, as openssl reads them -------
def pem_blocks(t):
    return re.findall(r"-----BEGIN CERTIFICATE-----\n.*?-----END CERTIFICATE-----", t, re.S)
in_keys = {}
for f in sorted(glob.glob("keys/*.pem")):
    blocks = pem_blocks(open(f).read())
    if blocks:
        in_keys.setdefault(blocks[0], f)
# openssl's view of a file of keys/, kept across the outputs checked
ossl_cache = os.path.join(env["WORK"], "openssl-" + hashlib.sha256(os.getcwd().encode()).hexdigest()[:8] + ".json")
_ossl = json.load(open(ossl_cache)) if os.path.exists(ossl_cache) else {}
def openssl(f):
    if f not in _ossl:
        lines = subprocess.run(["openssl", "x509", "-in", f, "-noout", "-subject", "-issuer", "-enddate", "-ext", "subjectAltName",
                                "-nameopt", "oneline,-space_eq"], capture_output=True, text=True, check=True).stdout.splitlines()
        subj = lines[0].removeprefix("subject=")
        iss = lines[1].removeprefix("issuer=")
        end = datetime.datetime.strptime(lines[2].removeprefix("notAfter="), "%b %d %H:%M:%S %Y %Z")
        sans = [s.strip().replace("IP Address:", "IP:") for s in lines[4].split(",")] if len(lines) > 4 else []
        _ossl[f] = [subj, iss, end.strftime("%Y-%m-%dT%H:%M:%SZ"), sans]
        json.dump(_ossl, open(ossl_cache, "w"))
    return tuple(_ossl[f])
now = time.time()
certs = m["certificates"]
for c in certs:
    data = seg_files(c["segment"])[c["path"][1:]].decode()
    if c["source"] == "file":
        pems = pem_blocks(data)[:1]
    else:
        pems = [pem_blocks(base64.b64decode(v).decode())[0] for v in re.findall(r"client-certificate-data:\s*\"?([A-Za-z0-9+/=]+)", data)]
    srcs = [in_keys[p] for p in pems if p in in_keys]
    assert srcs, ("not a certificate of keys/", c["segment"], c["path"])
    want = [openssl(s) for s in srcs]
    assert (c["subject"], c["issuer"], c["not_after"], c["sans"]) in want, (c, want)
    left = (datetime.datetime.strptime(c["not_after"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc).timestamp() - now) / 86400
    assert abs(c["days_left"] - int(left)) <= 1 and c["days_left"] > 300, (c["days_left"], left)
    assert c["path"].startswith("/usr/share/oem/dlws/rootfs/etc/") or c["path"].startswith("/usr/share/oem/dlws/rootfs/var/"), c
subjects = {c["subject"] for c in certs}
if "dlws-master" in want_nodes:
    api = [c for c in certs if c["subject"] == "CN=kube-apiserver"]
    assert api and "DNS:kubernetes" in api[0]["sans"] and "IP:192.168.255.10" in api[0]["sans"] and api[0]["issuer"] == "CN=kube-ca", api
    assert "O=system:nodes, CN=system:node:dlws-master" in subjects, subjects
if "dlws-worker1" in want_nodes:
    assert "O=system:nodes, CN=system:node:dlws-worker1" in subjects, subjects

# ---- configs: every text file of the per-node segments, masked only ----
markers = ("(hidden)", "(private key hidden)", "****************")
want_configs = set()
for sp in per_node:
    for p, data in seg_files(sp).items():
        try:
            t = data.decode()
        except UnicodeDecodeError:
            continue
        if p.startswith("usr/share/oem/dlws/manifest.d/") or "\0" in t or t.lstrip().startswith("-----BEGIN "):
            continue
        want_configs.add((sp, "/" + p))
shown = {(c["segment"], c["path"]) for c in m["configs"]}
assert shown == want_configs, ("missing", sorted(want_configs - shown), "not a config", sorted(shown - want_configs))
# every config: template of the segment's recipe (node.env names it)
assert per_node or not want_nodes
for sp in per_node:
    recipe = re.search(r"^DLWS_RECIPE=(\S+)$", seg_files(sp)["usr/share/oem/dlws/node.env"].decode(), re.M).group(1)
    dests = re.findall(r"template:\s*[^,}]+,\s*dest:\s*([^,}\s]+)", recipe_text(recipe))
    assert dests, recipe
    for d in dests:
        path = d if d.startswith("/usr/share/oem/") else "/usr/share/oem/dlws/rootfs" + d
        assert (sp, path) in shown, (sp, path, "a rendered config of the recipe is not shown")
for c in m["configs"]:
    assert c["omitted"] is None, c
    orig = seg_files(c["segment"])[c["path"][1:]].decode().splitlines()
    masked = c["text"].splitlines()
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=orig, b=masked, autojunk=False).get_opcodes():
        if op != "equal":
            assert j2 > j1 and all(any(k in line for k in markers) for line in masked[j1:j2]), (c["path"], orig[i1:i2], masked[j1:j2])
            # what precedes a secret on its line stays
            assert all(o.split(":")[0] == x.split(":")[0] or "PRIVATE KEY" in o for o, x in zip(orig[i1:i2], masked[j1:j2])), (orig[i1:i2], masked[j1:j2])
    assert f"config {c['segment']}: {c['path']} (secrets masked)\n" in txt
    assert "".join(f"  | {line}\n" for line in masked) in txt, c["path"]
# no secret of keys/ in what inspect prints
token_secret = open("keys/bootstrap-token").read().strip().split(".")[1]
secrets = [token_secret]
for f in glob.glob("keys/*-key.pem"):
    raw_key = open(f, "rb").read()
    secrets.append(base64.b64encode(raw_key).decode()[:60])
    secrets += [l for l in raw_key.decode().splitlines()[1:-1] if len(l) > 20][:3]
for text in (open(json_path).read(), txt):
    assert "PRIVATE KEY" not in text
    for sec in secrets:
        assert sec not in text, ("a secret of keys/ is shown", sec[:8])
PY

# inspect --json on each output type, field by field.
inspect_json() { # NAME OUTPUT TYPE RECIPES NODES [BUILT]
	local name=$1 out=$2
	if ! "$MK" -v inspect --json "$out" >"$WORK/$name.json" 2>"$WORK/$name.err"; then
		fail "inspect_$name" "exit $?: $(head -3 "$WORK/$name.err")"
		return
	fi
	"$MK" -v inspect "$out" >"$WORK/$name.txt" 2>&1
	if python3 "$WORK/check_inspect.py" "$WORK/$name.json" "$WORK/$name.txt" "$out" "$3" "$4" "$5" "${6-}"; then
		pass "inspect_$name"
	else
		fail "inspect_$name" "see above"
	fi
	check "inspect_${name}_documented_shape" python3 "$ROOT/tests/lib/check-json-shape.py" "$ROOT/man/dlws-mkimage.1" Outputs: "$WORK/$name.json"
}
T=2026-01-01T00:00:00Z
inspect_json iso out/master.iso iso master dlws-master $T
inspect_json pxe_tree out/pxe pxe-tree "master worker etcd" "dlws-master dlws-worker1 dlws-worker2 dlws-etcd1" $T
inspect_json pxe_tar out/pxe.tar pxe-tar "master worker etcd" "dlws-master dlws-worker1 dlws-worker2 dlws-etcd1" $T
inspect_json initrd_dir out/worker-initrd initrd-dir worker "dlws-worker1 dlws-worker2" $T
inspect_json segment out/pxe/nodes/dlws-master.cpio.zst segment "" "dlws-master"
# What must be equal across outputs is: the same payload in a tree and its
# tar, and in the initrd directory; the ISO's shared manifest names kubectl
# at dlws/large/ (its own sum, recomputed above).
if python3 - "$WORK/pxe_tree.json" "$WORK/pxe_tar.json" "$WORK/initrd_dir.json" "$WORK/iso.json" <<'PY'; then
import json, sys
t, tar, ini, iso = (json.load(open(f))["build"]["recipes"] for f in sys.argv[1:5])
p = {r["name"]: r["payload_sha256"] for r in t}
assert p == {r["name"]: r["payload_sha256"] for r in tar}, "tree and tar"
assert p["worker"] == ini[0]["payload_sha256"], "tree and initrd directory"
assert len(set(p.values())) == 3 and iso[0]["payload_sha256"] != p["master"], p
i = {r["name"]: r["inputs_sha256"] for r in t}
assert i == {r["name"]: r["inputs_sha256"] for r in tar}, "inputs_sha256 of tree and tar"
assert i["worker"] == ini[0]["inputs_sha256"] and i["master"] == iso[0]["inputs_sha256"], "inputs_sha256 across outputs"
PY
	pass inspect_payload_sha256_across_outputs
else
	fail inspect_payload_sha256_across_outputs "see above"
fi

# Without SOURCE_DATE_EPOCH and after a template changed: no build time,
# and the payload of the recipes that render the template is another.
cp -a "$WORK/p" "$WORK/p2"
echo '# changed after the first build' >>"$WORK/p2/recipes/templates/containerd-config.toml"
if (cd "$WORK/p2" && env -u SOURCE_DATE_EPOCH "$MK" -q recipes/master.recipe recipes/worker.recipe recipes/etcd.recipe); then
	cd "$WORK/p2"
	inspect_json no_build_time out/pxe pxe-tree "master worker etcd" "dlws-master dlws-worker1 dlws-worker2 dlws-etcd1"
	cd "$WORK/p"
	if python3 - "$WORK/pxe_tree.json" "$WORK/no_build_time.json" <<'PY'; then
import json, sys
a, b = ({r["name"]: r for r in json.load(open(f))["build"]["recipes"]} for f in sys.argv[1:3])
assert a["master"]["payload_sha256"] != b["master"]["payload_sha256"] and a["worker"]["payload_sha256"] != b["worker"]["payload_sha256"], "unchanged"
assert a["etcd"]["payload_sha256"] == b["etcd"]["payload_sha256"], "etcd renders no containerd config"
assert a["master"]["inputs_sha256"] != b["master"]["inputs_sha256"], "inputs_sha256 of master"
cfg = [c for c in json.load(open(sys.argv[2]))["configs"] if c["path"].endswith("/etc/containerd/config.toml")]
assert cfg and all(c["text"].endswith("# changed after the first build\n") for c in cfg), cfg
PY
		pass inspect_template_change_new_payload_and_inputs
	else
		fail inspect_template_change_new_payload_and_inputs "see above"
	fi
else
	fail inspect_template_change_new_payload_and_inputs "the rebuild failed"
fi
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
