#!/usr/bin/env bash
# What we write for Flatcar, read by the real consumers Debian packages and
# checked against /work/shared/FLATCAR.md (what current Flatcar does with our
# outputs):
#   1. every node's (and role's) Ignition config (usr/share/oem/config.ign)
#      is accepted by ignition-validate (Debian's ignition 2.14), spec
#      3.3.0, units enabled, no Flatcar-only oem:// URL;
#   2. every systemd unit and drop-in the payload carries (config.ign,
#      the rendered cloud-config's coreos.units, the payload rootfs, the
#      sysext images it links from /etc/extensions) passes
#      `systemd-analyze verify` (Debian's systemd 252), and every command of
#      its Exec*= lists exists, in a fake Flatcar root that has only what
#      Flatcar's /usr has plus the payload, its sysexts merged as
#      systemd-sysext does;
#   3. boot entries (node and role default entries) and payload paths as
#      Flatcar stable and beta need them;
#   4. the ordering contract of dlws-mkimage's own units.
# Of the shipped recipes (recipes/*.recipe), an install variant of the
# master, and the production recipes (recipes/flatcar/*.recipe, with
# stand-ins for supplied/ and a Kubernetes sysext laid out like Flatcar's):
# every node segment, and every worker recipe's role segment (what a worker
# whose MAC is not listed boots).
# Needs ignition, systemd, jq, libarchive-tools, squashfs-tools, python3 and
# python3-yaml.
. "$(dirname "$0")/../lib/e2e.sh"

# Debian's python3 (python3-yaml) when there is one, whatever PATH says.
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
for t in ignition-validate systemd-analyze jq bsdtar mksquashfs unsquashfs "$PY"; do
	command -v "$t" >/dev/null || { fail setup "'$t' is not installed (make deps)"; finish; }
done
"$PY" -c 'import yaml' 2>/dev/null || { fail setup "$PY has no yaml module (Debian package python3-yaml)"; finish; }
agent=${DLWS_AGENT:-$ROOT/out/agent/dlws-install}
[ -x "$agent" ] || { fail setup "no install agent at $agent (run 'make')"; finish; }
export DLWS_AGENT=$agent

cd "$WORK"
make_project p
cd p
if "$MK" -q recipes/worker.recipe recipes/etcd.recipe recipes/master.recipe; then
	pass build_shipped_recipes
else
	fail build_shipped_recipes "a shipped recipe did not build"
	finish
fi
# The master with an unattended install and one pinned container image, so
# that dlws-install.service and dlws-load-images.service appear. Its own
# outputs: the same node must not be listed twice in one PXE tree.
head -c 1048576 /dev/zero | gzip -n >out/os.img.gz
mkdir -p images && image_standin images/app.tar example.com/app:1
app_sum=$(sha256sum <images/app.tar | cut -d' ' -f1)
sed -e 's/^name: master$/name: masterinst/' \
	-e 's|\.\./out/master-initrd|../out/masterinst-initrd|; s|\.\./out/master\.iso|../out/masterinst.iso|; s|\.\./out/pxe\b|../out/pxe-inst|' \
	-e 's|^  cmdline: .*|&\n  image: ../out/os.img.gz|' recipes/master.recipe >recipes/masterinst.recipe
printf 'install: { device: auto, after: poweroff }\nimages:\n  - { src: ../images/app.tar, sha256: %s }\n' "$app_sum" >>recipes/masterinst.recipe
if "$MK" -q recipes/masterinst.recipe && [ -f out/masterinst-initrd/node-dlws-master.cpio.zst ] && [ -d out/pxe-inst ]; then
	pass build_install_variant
else
	fail build_install_variant "master with install: and images: did not build"
	finish
fi

# The production recipes (recipes/flatcar/) with stand-ins for supplied/ as
# tests/e2e/test_kubernetes.sh makes them, but a Kubernetes sysext laid out
# as Flatcar's own is: flatcar/sysext-bakery (main, 2026)
# kubernetes.sysext/create.sh, its files/ and lib/generate.sh (the older
# create_kubernetes_sysext.sh and bake.sh made the same tree):
#   usr/bin/{kubelet,kubeadm,kubectl}
#   usr/lib/systemd/system/kubelet.service (ExecStart=/usr/bin/kubelet)
#     and kubelet.service.d/10-kubeadm.conf, kubeadm's drop-in: the
#     KUBELET_* arguments, ExecStartPre mkdir/cp the CNI plugins from
#     /usr/local/bin/cni to /opt/cni/bin and the version to /etc
#   usr/lib/systemd/system/multi-user.target.d/10-kubelet-service.conf
#     (Upholds=kubelet.service)
#   usr/local/bin/cni/* (containernetworking/plugins' release archive)
#   usr/local/share/kubernetes-version, kubernetes-cni-version
#   usr/libexec/kubernetes/kubelet-plugins/volume/exec -> /var/kubernetes/...
#   usr/lib/extension-release.d/extension-release.kubernetes: ID=flatcar
#     (--os flatcar; the bakery's default is _any), SYSEXT_LEVEL=1.0,
#     ARCHITECTURE=x86-64, EXTENSION_RELOAD_MANAGER=1 (create.sh sets
#     RELOAD_SERVICES_ON_MERGE)
# as a squashfs made with mksquashfs -all-root -noappend.
S=supplied
supplied_standins $S
sx=$WORK/sysext-kubernetes
mkdir -p "$sx/usr/bin" "$sx/usr/local/bin/cni" "$sx/usr/local/share" "$sx/usr/libexec/kubernetes/kubelet-plugins/volume" \
	"$sx/usr/lib/extension-release.d" "$sx/usr/lib/systemd/system/kubelet.service.d" "$sx/usr/lib/systemd/system/multi-user.target.d"
for b in kubelet kubeadm kubectl; do printf '#!/bin/sh\necho %s v1.34.2 stand-in\n' $b >"$sx/usr/bin/$b"; done
for b in bandwidth bridge dhcp dummy firewall host-device host-local ipvlan loopback macvlan portmap ptp sbr static tap tuning vlan vrf; do
	printf '#!/bin/sh\necho CNI %s stand-in\n' $b >"$sx/usr/local/bin/cni/$b"
done
chmod 0755 "$sx"/usr/bin/* "$sx"/usr/local/bin/cni/*
echo v1.34.2 >"$sx/usr/local/share/kubernetes-version"
echo v1.8.0 >"$sx/usr/local/share/kubernetes-cni-version"
ln -s /var/kubernetes/kubelet-plugins/volume/exec "$sx/usr/libexec/kubernetes/kubelet-plugins/volume/exec"
printf 'ID=flatcar\nSYSEXT_LEVEL=1.0\nARCHITECTURE=x86-64\nEXTENSION_RELOAD_MANAGER=1\n' >"$sx/usr/lib/extension-release.d/extension-release.kubernetes"
cat >"$sx/usr/lib/systemd/system/kubelet.service" <<'UNIT'
[Unit]
Description=kubelet: The Kubernetes Node Agent (sysext-bakery layout, stand-in)
Documentation=https://kubernetes.io/docs/home/
Wants=network-online.target
After=network-online.target
[Service]
ExecStart=/usr/bin/kubelet
Restart=always
StartLimitInterval=0
RestartSec=10
[Install]
WantedBy=multi-user.target
UNIT
cat >"$sx/usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf" <<'UNIT'
[Service]
Environment="KUBELET_KUBECONFIG_ARGS=--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf --kubeconfig=/etc/kubernetes/kubelet.conf"
Environment="KUBELET_CONFIG_ARGS=--config=/var/lib/kubelet/config.yaml"
EnvironmentFile=-/var/lib/kubelet/kubeadm-flags.env
EnvironmentFile=-/etc/sysconfig/kubelet
ExecStart=
ExecStartPre=/usr/bin/mkdir -p /opt/cni/bin
ExecStartPre=/usr/bin/cp -r /usr/local/bin/cni/. /opt/cni/bin/
ExecStartPre=/usr/bin/cp /usr/local/share/kubernetes-version /etc/kubernetes-version
ExecStartPre=/usr/bin/mkdir -p /var/kubernetes/kubelet-plugins/volume/exec/
ExecStart=/usr/bin/kubelet $KUBELET_KUBECONFIG_ARGS $KUBELET_CONFIG_ARGS $KUBELET_KUBEADM_ARGS $KUBELET_EXTRA_ARGS
UNIT
printf '[Unit]\nUpholds=kubelet.service\n' >"$sx/usr/lib/systemd/system/multi-user.target.d/10-kubelet-service.conf"
mksquashfs "$sx" $S/sysext/kubernetes-v1.34.2-x86-64.raw -all-root -noappend -quiet >/dev/null
# The GPU workers' NVIDIA extension, as test_kubernetes.sh makes it.
sx=$WORK/sysext-nvidia-runtime
mkdir -p "$sx/usr/lib/extension-release.d" "$sx/usr/bin"
printf 'ID=flatcar\nSYSEXT_LEVEL=1.0\n' >"$sx/usr/lib/extension-release.d/extension-release.nvidia-runtime"
printf '#!/bin/sh\necho nvidia-smi\n' >"$sx/usr/bin/nvidia-smi" && chmod 0755 "$sx/usr/bin/nvidia-smi"
mksquashfs "$sx" $S/sysext/nvidia-runtime-x86-64.raw -all-root -noappend -quiet >/dev/null
k8s_images $S/images >/dev/null
rm $S/images/SHA256SUMS
(cd $S && sha256sum */* >SHA256SUMS)
# Each also writes an initrd bundle: the complete payload of every node
# and of the role segment, for the fake roots of section 2.
R=recipes/flatcar
for n in master worker etcd gpu-worker; do
	sed -i "s|^outputs:\$|&\n  initrd: { path: ../../out/flatcar/$n-initrd }|" $R/$n.recipe
done
if err=$("$MK" -q $R/master.recipe $R/worker.recipe $R/etcd.recipe $R/gpu-worker.recipe 2>&1) &&
	[ -f out/flatcar/master-initrd/node-dlws-master.cpio.zst ] && [ -f out/flatcar/gpu-worker-initrd/role.cpio.zst ]; then
	pass build_production_recipes
else
	fail build_production_recipes "${err:-no initrd bundle in out/flatcar}"
	finish
fi
# The recipes whose role is worker (their role's default entry loads the
# role segment), as name lists for the shipped and the production trees.
workers_of() { sed -n 's/^name: //p' $(grep -lx 'role: worker' "$@") | sort | tr '\n' ' '; }
workers_shipped=$(workers_of recipes/*.recipe)
workers_prod=$(workers_of $R/*.recipe)

# Every ISO, read back with bsdtar into $WORK/iso/<key>/ (boot configs,
# segments), the key its path below out/ without .iso, / as -.
isos=()
declare -A ISOSRC
for iso in out/*.iso out/flatcar/*.iso; do
	n=${iso#out/}
	n=${n%.iso}
	n=${n//\//-}
	ISOSRC[$n]=$iso
	mkdir -p "$WORK/iso/$n" && bsdtar -xf "$iso" -C "$WORK/iso/$n" || { fail "read_iso_$n" "bsdtar cannot read $iso"; continue; }
	isos+=("$n")
done

# Every payload segment of every output: initrd bundles, PXE trees, ISOs.
# A role segment (role.cpio.zst) is what a worker recipe's default entry
# loads instead of a node segment: checked like one.
some() { local f; for f; do [ -f "$f" ] && printf '%s\n' "$f"; done; }
mapfile -t node_segs < <(some out/*-initrd/node-*.cpio.zst out/flatcar/*-initrd/node-*.cpio.zst out/pxe*/nodes/*.cpio.zst out/flatcar/pxe/nodes/*.cpio.zst)
mapfile -t role_segs < <(some out/*-initrd/role.cpio.zst out/flatcar/*-initrd/role.cpio.zst out/pxe*/*/role.cpio.zst out/flatcar/pxe/*/role.cpio.zst)
mapfile -t shared_segs < <(some out/*-initrd/shared.cpio.zst out/flatcar/*-initrd/shared.cpio.zst out/pxe*/*/shared.cpio.zst out/flatcar/pxe/*/shared.cpio.zst)
for n in "${isos[@]}"; do
	mapfile -t -O "${#node_segs[@]}" node_segs < <(some "$WORK"/iso/"$n"/nodes/*.cpio.zst)
	mapfile -t -O "${#role_segs[@]}" role_segs < <(some "$WORK"/iso/"$n"/*/role.cpio.zst)
	mapfile -t -O "${#shared_segs[@]}" shared_segs < <(some "$WORK"/iso/"$n"/*/shared.cpio.zst)
done
# The segments that carry a config.ign: nodes' and roles'.
cfg_segs=("${node_segs[@]}" "${role_segs[@]}")
# Each segment extracted once into $WORK/seg/N (SEGDIR), listed once
# (bsdtar -tv, as a cpio listing) into LIST, and named in messages as out/...
# or out/NAME.iso:/path (SHOW).
declare -A SEGDIR SHOW LIST
nseg=0
for s in "${cfg_segs[@]}" "${shared_segs[@]}"; do
	nseg=$((nseg + 1))
	SEGDIR[$s]=$WORK/seg/$nseg
	mkdir -p "$WORK/seg/$nseg" && bsdtar -xpf "$s" -C "$WORK/seg/$nseg" || fail "read_segment_$nseg" "bsdtar cannot read $s"
	LIST[$s]=$(bsdtar -tvf "$s")
	case $s in "$WORK"/iso/*) r=${s#"$WORK"/iso/} SHOW[$s]="${ISOSRC[${r%%/*}]}:/${r#*/}" ;; *) SHOW[$s]=$s ;; esac
done
echo "segments: ${#node_segs[@]} node, ${#role_segs[@]} role, ${#shared_segs[@]} shared (ISOs: ${isos[*]})"

# Python (stdlib + PyYAML): the cloud-config's units, boot config entries.
cat >"$WORK/fc.py" <<'EOF'
import json, os, re, shlex, sys, yaml

UNIT_KEYS = {"name", "command", "enable", "runtime", "mask", "content", "drop_ins"}
DROPIN_KEYS = {"name", "content"}

def cc_units(path, root):
    """Write the coreos.units of a cloud-config into ROOT as coreos-cloudinit
    does (content -> etc/systemd/system/NAME, drop_ins -> NAME.d/, runtime ->
    run/systemd/system); print each unit's name; keys coreos-cloudinit does not
    know (e.g. drop-ins, silently ignored since Flatcar 3975) to stderr."""
    doc = yaml.safe_load(open(path)) or {}
    bad = 0
    for u in ((doc.get("coreos") or {}).get("units") or []):
        name = u.get("name")
        for k in sorted(set(u) - UNIT_KEYS):
            print("%s: unit %s: unknown key %r" % (path, name, k), file=sys.stderr); bad = 1
        d = os.path.join(root, "run" if u.get("runtime") else "etc", "systemd/system")
        os.makedirs(d, exist_ok=True)
        if "content" in u:
            with open(os.path.join(d, name), "w") as f:
                f.write(u["content"])
        for di in (u.get("drop_ins") or []):
            for k in sorted(set(di) - DROPIN_KEYS):
                print("%s: drop-in %s of %s: unknown key %r" % (path, di.get("name"), name, k), file=sys.stderr); bad = 1
            os.makedirs(os.path.join(d, name + ".d"), exist_ok=True)
            with open(os.path.join(d, name + ".d", di["name"]), "w") as f:
                f.write(di["content"])
        print(name)
    return bad

def entries(path):
    """Boot entries of a pxelinux/isolinux, GRUB or iPXE config:
    {label, kernel, initrds, cmdline}."""
    text = open(path).read()
    out = []
    if text.startswith("#!ipxe"):
        cur = None
        for line in text.splitlines():
            line = line.strip()
            if line.startswith(":"):
                cur = {"label": line[1:], "kernel": None, "initrds": [], "cmdline": [], "efi_initrds": []}
                out.append(cur)
            elif cur and line.split(" ")[0] in ("kernel", "chain"):
                w = line.split()[1:]
                cur["kernel"] = w[0]
                cur["efi_initrds"] = [a[len("initrd="):] for a in w[1:] if a.startswith("initrd=")]
                cur["cmdline"] = [a for a in w[1:] if not a.startswith("initrd=")]
            elif cur and line.startswith("initrd "):
                cur["initrds"].append(line.split()[1])
    elif re.search(r"^\s*menuentry\b", text, re.M) or "configfile" in text:
        cur = None
        for line in text.splitlines():
            line = line.strip()
            m = re.match(r"menuentry\s+'([^']*)'.*--id\s+(\S+)", line) or re.match(r"menuentry\s+'([^']*)'()", line)
            if m:
                cur = {"label": m.group(2) or m.group(1), "kernel": None, "initrds": [], "cmdline": []}
                out.append(cur)
            elif cur and re.match(r"(linux|linuxefi)\s", line):
                w = line.split()[1:]
                cur["kernel"], cur["cmdline"] = w[0], w[1:]
            elif cur and re.match(r"(initrd|initrdefi)\s", line):
                cur["initrds"] += line.split()[1:]
            elif line == "}":
                cur = None
    else:
        cur = None
        for line in text.splitlines():
            w = line.split(None, 1)
            if not w:
                continue
            k, v = w[0].upper(), (w[1] if len(w) > 1 else "")
            if k == "LABEL":
                cur = {"label": v.strip(), "kernel": None, "initrds": [], "cmdline": []}
                out.append(cur)
            elif cur and k in ("KERNEL", "LINUX"):
                cur["kernel"] = v.strip()
            elif cur and k == "INITRD":
                cur["initrds"] += v.strip().split(",")
            elif cur and k == "APPEND":
                for a in v.split():
                    if a.startswith("initrd="):
                        cur["initrds"] += a[len("initrd="):].split(",")
                    else:
                        cur["cmdline"].append(a)
    return out

def bootcheck(tree, workers, families):
    """Every entry that boots a node: flatcar.first_boot=1, and exactly the
    base initrd, the role's shared segment and the node's own segment, in
    that order, all present in TREE. Every role's default (or rescue)
    entry: base initrd and shared segment, and for a recipe in WORKERS
    (comma-separated names) then its role segment, with flatcar.first_boot=1.
    Each FAMILY (config files, space-separated, relative to TREE) has an
    entry for every node in TREE/nodes and a role segment entry for every
    worker recipe in TREE. Prints each problem."""
    workers = set(w for w in workers.split(",") if w)
    bad = []
    nd = os.path.join(tree, "nodes")
    want_nodes = sorted(f[:-len(".cpio.zst")] for f in os.listdir(nd) if f.endswith(".cpio.zst")) if os.path.isdir(nd) else []
    if not want_nodes:
        bad.append("no node segments in nodes/")
    want_roles = sorted(d for d in os.listdir(tree) if d in workers and os.path.isfile(os.path.join(tree, d, "base.img")))
    def loads(where, e, initrds, want):
        if initrds != want:
            bad.append("%s: initrds %s, want %s" % (where, initrds, want))
        if "efi_initrds" in e and e["efi_initrds"] != [os.path.basename(w) for w in want]:
            bad.append("%s: kernel initrd= %s, want %s" % (where, e["efi_initrds"], [os.path.basename(w) for w in want]))
        for f in initrds + [(e["kernel"] or "").lstrip("/")]:
            if not os.path.isfile(os.path.join(tree, f)):
                bad.append("%s: %s is not in the tree" % (where, f))
    for fam in families:
        files = fam.split()
        nodes, roles = set(), set()
        for rel in files:
            path = os.path.join(tree, rel)
            if not os.path.isfile(path):
                bad.append("%s missing" % rel)
                continue
            for e in entries(path):
                args = dict(a.split("=", 1) for a in e["cmdline"] if "=" in a)
                initrds = [i.lstrip("/") for i in e["initrds"]]
                node, recipe = args.get("dlws.node"), args.get("dlws.recipe")
                where = "%s: entry %s" % (rel, e["label"])
                if not node and not any(i.startswith("nodes/") for i in initrds):
                    # a role's default entry (or its rescue entry)
                    if not recipe:
                        bad.append("%s loads %s without dlws.recipe" % (where, initrds))
                        continue
                    want = ["%s/base.img" % recipe, "%s/shared.cpio.zst" % recipe]
                    if recipe in workers:
                        want.append("%s/role.cpio.zst" % recipe)
                        roles.add(recipe)
                        if "flatcar.first_boot=1" not in e["cmdline"]:
                            bad.append("%s (role segment): no flatcar.first_boot=1 in %r" % (where, " ".join(e["cmdline"])))
                    loads(where, e, initrds, want)
                    continue
                if not node or not recipe:
                    bad.append("%s loads %s without dlws.node/dlws.recipe" % (where, initrds))
                    continue
                nodes.add(node)
                if "flatcar.first_boot=1" not in e["cmdline"]:
                    bad.append("%s: no flatcar.first_boot=1 in %r" % (where, " ".join(e["cmdline"])))
                loads(where, e, initrds, ["%s/base.img" % recipe, "%s/shared.cpio.zst" % recipe, "nodes/%s.cpio.zst" % node])
        if sorted(nodes) != want_nodes:
            bad.append("%s...: entries for [%s], nodes [%s]" % (files[0] if files else "(none)", " ".join(sorted(nodes)), " ".join(want_nodes)))
        if sorted(roles) != want_roles:
            bad.append("%s...: role segment entries for [%s], worker recipes [%s]" % (files[0] if files else "(none)", " ".join(sorted(roles)), " ".join(want_roles)))
    for b in bad:
        print(b)
    return 1 if bad else 0

UNIT_DIRS = ("etc/systemd/system", "run/systemd/system", "usr/local/lib/systemd/system", "usr/lib/systemd/system")
EXEC_KEYS = ("ExecCondition", "ExecStartPre", "ExecStart", "ExecStartPost", "ExecReload", "ExecStop", "ExecStopPost")

def unit_settings(path):
    """(section, key, value) of a unit file, continued lines joined."""
    out, sec, buf = [], None, ""
    for line in open(path, errors="replace"):
        line = buf + line.rstrip("\n")
        if line.endswith("\\"):
            buf = line[:-1] + " "
            continue
        buf = ""
        t = line.strip()
        if not t or t[0] in "#;":
            continue
        if t.startswith("[") and t.endswith("]"):
            sec = t[1:-1]
        elif "=" in t:
            k, v = t.split("=", 1)
            out.append((sec, k.strip(), v.strip()))
    return out

def in_root(root, p):
    """P resolved inside ROOT (absolute links stay in ROOT)."""
    parts, done = [x for x in p.split("/") if x], ""
    for _ in range(64):
        if not parts:
            break
        cur = done + "/" + parts.pop(0)
        full = root + cur
        if os.path.islink(full):
            t = os.readlink(full)
            parts = [x for x in t.split("/") if x] + parts
            if t.startswith("/"):
                done = ""
            continue
        done = cur
    return root + done

def execs(root, targets):
    """Every command of every Exec*= list of each unit (NAME=TARGET: its
    file, the drop-ins of all unit dirs, an empty value resetting the list):
    systemd 252's verify looks at the first of each list only. Prints
    'NAME<TAB>problem' for a command that is not executable in ROOT."""
    bad = 0
    for t in targets:
        name, target = t.split("=", 1)
        main = root + target if target.startswith("/") else next(
            (root + "/" + d + "/" + name for d in UNIT_DIRS if os.path.isfile(root + "/" + d + "/" + name)), None)
        if not main:
            continue
        dropins = {}
        for d in UNIT_DIRS:
            dd = root + "/" + d + "/" + name + ".d"
            if os.path.isdir(dd):
                for f in os.listdir(dd):
                    if f.endswith(".conf"):
                        dropins.setdefault(f, dd + "/" + f)
        cmds = {}
        for f in [main] + [dropins[k] for k in sorted(dropins)]:
            for sec, k, v in unit_settings(f):
                if sec != "Service" or k not in EXEC_KEYS:
                    continue
                if not v:
                    cmds[k] = []
                    continue
                cmds.setdefault(k, []).append((v, os.path.relpath(f, root)))
        for k, lst in cmds.items():
            for v, f in lst:
                exe = v.lstrip("-@:+!|")
                try:
                    exe = shlex.split(exe)[0]
                except (ValueError, IndexError):
                    exe = (exe.split() or [""])[0]
                if not exe or "%" in exe or "$" in exe:
                    continue
                cands = [exe] if exe.startswith("/") else ["/usr/local/sbin/" + exe, "/usr/local/bin/" + exe, "/usr/sbin/" + exe, "/usr/bin/" + exe]
                if not any(os.path.isfile(in_root(root, c)) and os.access(in_root(root, c), os.X_OK) for c in cands):
                    print("%s\t%s: Command %s is not executable (%s= in /%s)" % (name, name, exe, k, f)); bad = 1
    return bad

if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "cc-units":
        sys.exit(cc_units(sys.argv[2], sys.argv[3]))
    if cmd == "bootcheck":
        sys.exit(bootcheck(sys.argv[2], sys.argv[3], sys.argv[4:]))
    if cmd == "execs":
        sys.exit(execs(sys.argv[2], sys.argv[3:]))
    if cmd == "entries":
        print(json.dumps(entries(sys.argv[2]), indent=1))
EOF
fc() { "$PY" "$WORK/fc.py" "$@"; }

########################################################################
# 1. Ignition: Debian's ignition-validate, spec 3.3.0, units enabled
# (node and role segments).
########################################################################
why_valid="" why_version="" why_enabled="" why_oem=""
igns=()
declare -A IGN_SEG
for s in "${cfg_segs[@]}"; do
	ign=${SEGDIR[$s]}/usr/share/oem/config.ign
	[ -f "$ign" ] || { why_valid="$why_valid ${SHOW[$s]}: no usr/share/oem/config.ign;"; continue; }
	igns+=("$ign")
	IGN_SEG[$ign]=${SHOW[$s]}
	# Accepted means exit 0 and not a word of output (warnings included).
	out=$(ignition-validate "$ign" 2>&1)
	rc=$?
	[ $rc = 0 ] && [ -z "$out" ] || why_valid="$why_valid ${SHOW[$s]}: rc $rc: $out;"
done
# One jq over every config: file|version|units not enabled|number of units.
while IFS='|' read -r f v off n; do
	[ "$v" = 3.3.0 ] || why_version="$why_version ${IGN_SEG[$f]}: $v;"
	[ "$n" -gt 0 ] || off="(no units)"
	[ -z "$off" ] || why_enabled="$why_enabled ${IGN_SEG[$f]}: $off;"
done < <(jq -r '[input_filename, .ignition.version, ([.systemd.units[]? | select(.enabled != true) | .name] | join(" ")), (.systemd.units // [] | length | tostring)] | join("|")' "${igns[@]}")
oem=$(grep -l 'oem://' "${igns[@]}")
for f in $oem; do why_oem="$why_oem ${IGN_SEG[$f]};"; done
[ -z "$why_valid" ] && [ ${#igns[@]} -gt 0 ] && pass ignition_validate_accepts_every_config || fail ignition_validate_accepts_every_config "${why_valid:- no configs}"
[ -z "$why_version" ] && pass ignition_version_is_3_3_0 || fail ignition_version_is_3_3_0 "$why_version"
[ -z "$why_enabled" ] && pass ignition_units_all_enabled || fail ignition_units_all_enabled "$why_enabled"
[ -z "$why_oem" ] && pass ignition_no_oem_url || fail ignition_no_oem_url "oem:// in$why_oem"

########################################################################
# 2. systemd-analyze verify in a fake Flatcar root.
########################################################################
base=$WORK/flatcar-root
mkdir -p "$base/usr/lib/systemd" "$base/usr/bin" "$base/etc/systemd/system"
ln -s usr/bin "$base/bin"
# systemd's own units and targets (sysinit.target, systemd-sysctl.service, ...).
cp -a /lib/systemd/system "$base/usr/lib/systemd/"
# What Flatcar's /usr has, from /work/shared/FLATCAR.md "What the base image
# has": containerd 2.x as a built-in sysext (ctr, crictl, containerd), docker
# (docker, dockerd), systemd (systemctl), etcdctl/etcdutl, cp, mount, ln,
# mkdir; /bin -> usr/bin. mv, sh and bash are not in that list: they are
# Flatcar's coreutils and bash (sys-apps/coreutils, app-shells/bash in
# flatcar/scripts coreos-base/coreos/coreos-0.0.1.ebuild).
# systemd-sysext (dlws-medium.service runs `systemd-sysext refresh` when a
# recipe has sysexts) and hostnamectl (dlws-hostname.service runs it, in
# its sh -c) are systemd's: flatcar/scripts portage-stable
# sys-apps/systemd/systemd-259.4-r2.ebuild builds with -Dhostnamed=true and
# keeps meson's sysext option on (Flatcar merges its own containerd and
# docker sysexts with it).
# Nothing Flatcar lacks: no kubelet, kubeadm, etcd server, CNI plugins, and
# nothing in /opt -- those must come from the payload (kubelet, kubeadm and
# kubectl from the Kubernetes sysext, merged below as systemd-sysext does).
flatcar_usr_bin=(ctr crictl containerd docker dockerd systemctl systemd-sysext hostnamectl etcdctl etcdutl cp mount ln mkdir mv sh bash)
# The wrappers Flatcar's own flanneld/etcd-member units run (flatcar/scripts,
# coreos-overlay app-admin/{flannel,etcd}-wrapper: exeinto /usr/lib/flatcar);
# only the stub units below name them.
flatcar_usr_lib=(flatcar/flannel-wrapper flatcar/etcd-wrapper)
for b in "${flatcar_usr_bin[@]}"; do printf '#!/bin/sh\nexit 0\n' >"$base/usr/bin/$b"; done
for b in "${flatcar_usr_lib[@]}"; do mkdir -p "$base/usr/lib/${b%/*}" && printf '#!/bin/sh\nexit 0\n' >"$base/usr/lib/$b"; done
chmod 0755 "$base"/usr/bin/* "$base"/usr/lib/flatcar/*
# Flatcar's own units that the payload's units name (Requires=, Wants=,
# drop-ins), as trimmed copies (their dependencies and ExecStart), checked in
# flatcar/scripts (main, Aug 2026), sdk_container/src/third_party/coreos-overlay/:
#   containerd.service          coreos/sysext/containerd/usr/lib/systemd/system/
#   docker.service, .socket     coreos/sysext/docker/usr/lib/systemd/system/
#   flanneld.service, flannel-docker-opts.service   app-admin/flannel-wrapper/files/
#   etcd-member.service         app-admin/etcd-wrapper/files/
#   user-config.target, system-config.target   coreos-base/coreos-cloudinit
#                               (systemd_dounit units/*.target of flatcar/coreos-cloudinit)
# (all pulled into the image by coreos-base/coreos/coreos-0.0.1.ebuild or its
# sysexts). Not kubelet.service (only the sysext-bakery's kubernetes sysext
# has one) and not etcd.service: Flatcar ships neither.
flatcar_units=(containerd.service docker.service docker.socket flanneld.service flannel-docker-opts.service
	etcd-member.service user-config.target system-config.target)
# A host package's unit of one of these names must not stand in for Flatcar's,
# nor one for a unit Flatcar lacks.
for u in "${flatcar_units[@]}" kubelet.service etcd.service etcd2.service; do rm -rf "$base/usr/lib/systemd/system/$u"; done
fu=$base/usr/lib/systemd/system
printf '[Unit]\nDescription=containerd container runtime (Flatcar stub)\nAfter=network.target\n[Service]\nType=notify\nExecStart=/usr/bin/containerd --config /usr/share/containerd/config.toml\n[Install]\nWantedBy=multi-user.target\n' >"$fu/containerd.service"
printf '[Unit]\nDescription=Docker (Flatcar stub)\nAfter=containerd.service docker.socket network-online.target\nWants=network-online.target\nRequires=containerd.service docker.socket\n[Service]\nType=notify\nExecStart=/usr/bin/dockerd --host=fd://\n[Install]\nWantedBy=multi-user.target\n' >"$fu/docker.service"
printf '[Unit]\nDescription=Docker socket (Flatcar stub)\nPartOf=docker.service\n[Socket]\nListenStream=/run/docker.sock\n[Install]\nWantedBy=sockets.target\n' >"$fu/docker.socket"
printf '[Unit]\nDescription=flannel (Flatcar stub)\nAfter=etcd.service etcd2.service etcd-member.service\nRequires=flannel-docker-opts.service\n[Service]\nType=notify\nEnvironmentFile=-/run/flannel/options.env\nExecStart=/usr/lib/flatcar/flannel-wrapper $FLANNEL_OPTS\n[Install]\nWantedBy=multi-user.target\n' >"$fu/flanneld.service"
printf '[Unit]\nDescription=flannel docker opts (Flatcar stub)\nPartOf=flanneld.service\nRequires=flanneld.service\nAfter=flanneld.service\n[Service]\nType=oneshot\nRemainAfterExit=true\nExecStart=/usr/lib/flatcar/flannel-wrapper -d /run/flannel/flannel_docker_opts.env -i\n' >"$fu/flannel-docker-opts.service"
printf '[Unit]\nDescription=etcd (Flatcar stub)\nWants=network-online.target network.target\nAfter=network-online.target\nConflicts=etcd.service etcd2.service\n[Service]\nType=notify\nExecStart=/usr/lib/flatcar/etcd-wrapper $ETCD_OPTS\n[Install]\nWantedBy=multi-user.target\n' >"$fu/etcd-member.service"
printf '[Unit]\nDescription=Load user-provided cloud configs (Flatcar stub)\nRequires=system-config.target\nAfter=system-config.target\n' >"$fu/user-config.target"
printf '[Unit]\nDescription=Load system-provided cloud configs (Flatcar stub)\n' >"$fu/system-config.target"

verify_unit() { # ROOT UNIT...: systemd-analyze verify's whole output (empty = accepted)
	systemd-analyze verify --root="$1" --man=no "${@:2}" 2>&1
}

# The harness can fail: an ExecStart Flatcar does not have, an unknown
# directive, and the binaries Flatcar lacks (they are not stubbed).
br=$WORK/root-broken
cp -a "$base" "$br"
printf '[Unit]\nDescription=broken on purpose\n[Service]\nExecStart=/usr/bin/not-in-flatcar\nFrobnicate=yes\n' >"$br/etc/systemd/system/dlws-broken.service"
printf '[Unit]\nDescription=kubelet from Flatcar alone\n[Service]\nExecStart=/opt/bin/kubelet\n' >"$br/etc/systemd/system/dlws-kubelet.service"
printf '[Unit]\nDescription=etcd from Flatcar alone\n[Service]\nExecStart=/opt/bin/etcd\n' >"$br/etc/systemd/system/dlws-etcd.service"
printf '[Unit]\nDescription=fine\n[Service]\nType=oneshot\nExecStart=/usr/bin/ctr --namespace k8s.io images ls\n' >"$br/etc/systemd/system/dlws-fine.service"
o_broken=$(verify_unit "$br" /etc/systemd/system/dlws-broken.service)
o_kubelet=$(verify_unit "$br" /etc/systemd/system/dlws-kubelet.service)
o_etcd=$(verify_unit "$br" /etc/systemd/system/dlws-etcd.service)
o_fine=$(verify_unit "$br" /etc/systemd/system/dlws-fine.service)
# Without a sysext merged there is no kubeadm and no kubelet.service.
printf '[Unit]\nDescription=kubeadm without the sysext\n[Service]\nType=oneshot\nExecStart=/usr/bin/kubeadm init\n' >"$br/etc/systemd/system/dlws-kubeadm.service"
o_kubeadm=$(verify_unit "$br" /etc/systemd/system/dlws-kubeadm.service)
o_kubelet_unit=$(verify_unit "$br" kubelet.service)
# systemd-analyze verify checks the first command of an Exec*= list only:
# fc execs checks the others (here the unit's drop-in's second ExecStartPre).
mkdir -p "$br/etc/systemd/system/dlws-fine.service.d"
printf '[Service]\nExecStartPre=/usr/bin/mkdir -p /run/x\nExecStartPre=/usr/bin/not-in-flatcar-2\n' >"$br/etc/systemd/system/dlws-fine.service.d/10-second.conf"
o_second=$(verify_unit "$br" /etc/systemd/system/dlws-fine.service; fc execs "$br" dlws-fine.service=/etc/systemd/system/dlws-fine.service)
if grep -q '/usr/bin/not-in-flatcar is not executable' <<<"$o_broken" && grep -q "Unknown key 'Frobnicate'" <<<"$o_broken" &&
	grep -q '/opt/bin/kubelet is not executable' <<<"$o_kubelet" && grep -q '/opt/bin/etcd is not executable' <<<"$o_etcd" && [ -z "$o_fine" ] &&
	grep -q '/usr/bin/kubeadm is not executable' <<<"$o_kubeadm" && grep -q 'kubelet.service not found' <<<"$o_kubelet_unit" &&
	[ "$o_second" = "dlws-fine.service	dlws-fine.service: Command /usr/bin/not-in-flatcar-2 is not executable (ExecStartPre= in /etc/systemd/system/dlws-fine.service.d/10-second.conf)" ]; then
	pass systemd_verify_rejects_broken_units
else
	fail systemd_verify_rejects_broken_units "broken: [$o_broken] kubelet: [$o_kubelet] etcd: [$o_etcd] fine (must be empty): [$o_fine] kubeadm: [$o_kubeadm] kubelet.service: [$o_kubelet_unit] second ExecStartPre: [$o_second]"
fi

# One fake Flatcar root per node and per role segment of every initrd
# bundle (the complete payload: on an ISO large files stay on the medium
# until dlws-medium.service), named BUNDLE/HOST or BUNDLE:role.
declare -A VFAIL VNODES
why_keys="" why_sysext="" why_cover=""
nodes_checked=0 prod_checked=0 roles_checked=0
mapfile -t vsegs < <(some out/*-initrd/node-*.cpio.zst out/*-initrd/role.cpio.zst out/flatcar/*-initrd/node-*.cpio.zst out/flatcar/*-initrd/role.cpio.zst)
for nseg in "${vsegs[@]}"; do
	bundle=${nseg%/*}
	label=${bundle#out/}
	label=${label%-initrd}
	case ${nseg##*/} in
	role.cpio.zst) label="$label:role" ;;
	*) host=${nseg##*/node-} label="$label/${host%.cpio.zst}" ;;
	esac
	r=$WORK/root-${label//[\/:]/-}
	cp -a "$base" "$r"
	# (a) the payload as the kernel unpacks the segments, then its rootfs
	# copied into / as dlws-payload does.
	bsdtar -xpf "$bundle/shared.cpio.zst" -C "$r" && bsdtar -xpf "$nseg" -C "$r" || { fail "extract_$label" "bsdtar"; continue; }
	[ -d "$r/usr/share/oem/dlws/rootfs" ] && cp -a "$r/usr/share/oem/dlws/rootfs/." "$r/"
	names=()
	# (b) systemd-sysext as Flatcar runs it (systemd-sysext.service, early in
	# boot; dlws-medium.service refreshes it): every image in its search
	# paths, here the /etc/extensions/NAME.raw links the payload put in
	# place, whose usr/lib/extension-release.d/extension-release.NAME
	# matches Flatcar's os-release (ID=flatcar SYSEXT_LEVEL=1.0, x86-64; or
	# ID=_any) has its /usr and /opt, and nothing else, merged over the
	# host's. Its units join the ones verified below.
	for x in "$r"/etc/extensions/*.raw "$r"/run/extensions/*.raw "$r"/var/lib/extensions/*.raw; do
		[ -e "$x" ] || [ -L "$x" ] || continue
		xn=${x##*/}
		xn=${xn%.raw}
		img=$x t=""
		if [ -L "$x" ]; then
			t=$(readlink "$x")
			case $t in /*) img=$r$t ;; *) img=${x%/*}/$t ;; esac
		fi
		where="[$label] ${x#"$r"}${t:+ -> $t}"
		[ -f "$img" ] || { why_sysext="$why_sysext $where: no such image;"; continue; }
		xrel=$(unsquashfs -cat "$img" "usr/lib/extension-release.d/extension-release.$xn" 2>/dev/null | tr -d '"')
		xid=$(sed -n 's/^ID=//p' <<<"$xrel")
		xlvl=$(sed -n 's/^SYSEXT_LEVEL=//p' <<<"$xrel")
		xarch=$(sed -n 's/^ARCHITECTURE=//p' <<<"$xrel")
		if [ -z "$xrel" ]; then
			why_sysext="$why_sysext $where: no usr/lib/extension-release.d/extension-release.$xn;"
			continue
		elif ! { [ "$xid" = _any ] || { [ "$xid" = flatcar ] && [ "$xlvl" = 1.0 ]; }; } || ! case $xarch in "" | x86-64 | _any) true ;; *) false ;; esac; then
			why_sysext="$why_sysext $where: extension-release ID=$xid SYSEXT_LEVEL=$xlvl ARCHITECTURE=$xarch does not match Flatcar;"
			continue
		fi
		unsquashfs -f -d "$r" "$img" usr opt >/dev/null 2>&1 || { why_sysext="$why_sysext $where: unsquashfs cannot read it;"; continue; }
		while IFS= read -r f; do
			f=${f#/usr/lib/systemd/system/}
			case $f in /* | *.wants/* | *.requires/*) ;; */*) names+=("${f%%.d/*}") ;; *) names+=("$f") ;; esac
		done < <(unsquashfs -d '' -lc "$img" usr/lib/systemd/system 2>/dev/null)
	done
	# The units of config.ign, as Ignition writes them: NAME (contents) and
	# NAME.d/DROPIN, read as NUL-separated path/text pairs.
	ign=$r/usr/share/oem/config.ign
	sd=$r/etc/systemd/system
	while IFS= read -r -d '' rel && IFS= read -r -d '' text; do
		case $rel in */*) mkdir -p "$sd/${rel%/*}" ;; esac
		printf '%s' "$text" >"$sd/$rel"
	done < <(jq -j '.systemd.units[]? | (select(has("contents")) | .name, "\u0000", .contents, "\u0000"),
		(.name as $n | (.dropins // [])[] | $n + ".d/" + .name, "\u0000", (.contents // ""), "\u0000")' "$ign")
	mapfile -t -O "${#names[@]}" names < <(jq -r '.systemd.units[]?.name' "$ign")
	# The units of the rendered cloud-config, as coreos-cloudinit writes them.
	ud=$r/var/lib/flatcar-install/user_data
	if [ -f "$ud" ]; then
		cc_names=$(fc cc-units "$ud" "$r" 2>"$WORK/keys.err") || { e=$(<"$WORK/keys.err"); why_keys="$why_keys [$label] ${e//$r/};"; }
		mapfile -t -O "${#names[@]}" names <<<"$cc_names"
	fi
	# Every unit and drop-in now in /etc/systemd/system and /run/systemd/system
	# (config.ign, cloud-config, payload rootfs).
	for dir in etc/systemd/system run/systemd/system; do
		[ -d "$r/$dir" ] || continue
		for f in "$r/$dir"/*; do
			[ -e "$f" ] && [ ! -L "$f" ] || continue
			b=${f##*/}
			case $b in
			*.wants | *.requires) ;;
			*.d) names+=("${b%.d}") ;;
			*) names+=("$b") ;;
			esac
		done
	done
	# Verify each unit once: by its path when the payload carries it, by
	# name (Flatcar's own unit plus the payload's drop-ins) otherwise. All
	# of the root's units in one run; only when that says anything, each
	# on its own, to name the unit (and what only the joint run said, as
	# "(together)").
	declare -A seen=()
	targets=() paths=()
	for name in "${names[@]}"; do
		[ -n "$name" ] && [ -z "${seen[$name]:-}" ] || continue
		seen[$name]=1
		if [ -f "$r/etc/systemd/system/$name" ]; then
			target=/etc/systemd/system/$name
		elif [ -f "$r/run/systemd/system/$name" ]; then
			target=/run/systemd/system/$name
		else
			target=$name
		fi
		VNODES[$name]="${VNODES[$name]:-}${VNODES[$name]:+ }$label"
		targets+=("$name=$target")
		paths+=("$target")
	done
	all=$(verify_unit "$r" "${paths[@]}")
	if [ -n "$all" ]; then
		said=0
		for t in "${targets[@]}"; do
			out=$(verify_unit "$r" "${t#*=}")
			[ -n "$out" ] || continue
			said=1
			VFAIL[${t%%=*}]="${VFAIL[${t%%=*}]:-}[$label] ${out//$r/}"$'\n'
		done
		[ $said = 1 ] || VFAIL["(together)"]="${VFAIL["(together)"]:-}[$label] ${all//$r/}"$'\n'
	fi
	# and every later command of each Exec*= list, which verify skips.
	while IFS=$'\t' read -r name out; do
		[ -n "$name" ] && VFAIL[$name]="${VFAIL[$name]:-}[$label] $out"$'\n'
	done < <(fc execs "$r" "${targets[@]}")
	# The first master runs kubeadm from the sysext, every production node
	# but etcd (a role segment too) the sysext's kubelet.service: verified
	# here, with /usr/bin/kubeadm and kubelet.service from the merged image.
	case $label in
	flatcar/etcd/*) ;;
	flatcar/*)
		[ -x "$r/usr/bin/kubeadm" ] && [ -f "$r/usr/lib/systemd/system/kubelet.service" ] && [ -n "${seen[kubelet.service]:-}" ] &&
			[ -n "${seen[multi-user.target]:-}" ] || why_cover="$why_cover [$label] kubelet.service, its Upholds= and /usr/bin/kubeadm not verified from a merged sysext;"
		;;
	esac
	case $label in flatcar/master/*) [ -n "${seen[dlws-kubeadm.service]:-}" ] || why_cover="$why_cover [$label] no dlws-kubeadm.service;" ;; esac
	unset seen
	nodes_checked=$((nodes_checked + 1))
	case $label in flatcar/*) prod_checked=$((prod_checked + 1)) ;; esac
	case $label in *:role) roles_checked=$((roles_checked + 1)) ;; esac
done
for name in $(printf '%s\n' "${!VNODES[@]}" | sort); do
	if [ -z "${VFAIL[$name]:-}" ]; then
		pass "systemd_verify_$name (${VNODES[$name]})"
	else
		fail "systemd_verify_$name" "$(printf '%s' "${VFAIL[$name]}" | sed '/^$/d' | tr '\n' ' ')"
	fi
done
[ -z "${VFAIL["(together)"]:-}" ] || fail "systemd_verify_(together)" "$(printf '%s' "${VFAIL["(together)"]}" | sed '/^$/d' | tr '\n' ' ')"
# Every node and role segment of every bundle, the production recipes'
# (4 recipes, 6 nodes, 2 role segments) and the shipped worker's role.
[ "$nodes_checked" = "${#vsegs[@]}" ] && [ "$nodes_checked" -ge 14 ] && [ "$prod_checked" -ge 8 ] && [ "$roles_checked" -ge 3 ] ||
	fail systemd_verify_every_node "$nodes_checked of ${#vsegs[@]} payloads checked ($prod_checked production, $roles_checked role segments)"
[ -z "$why_sysext" ] && pass sysext_merges_on_flatcar || fail sysext_merges_on_flatcar "$why_sysext"
[ -z "$why_cover" ] && pass systemd_verify_covers_sysext_units || fail systemd_verify_covers_sysext_units "$why_cover"
# The PXE and ISO node and role segments carry the very same units
# (config.ign and cloud-config) as the initrd bundle's segment of that node
# (or role) and recipe.
why_same=""
for s in "${cfg_segs[@]}"; do
	h=${s##*/}
	h=${h%.cpio.zst}
	rn=${s%/*}
	rn=${rn##*/}
	ref=""
	case ${SHOW[$s]}:$h in
	out/*-initrd/*) continue ;;
	out/pxe-inst/*) ref=out/masterinst-initrd/node-$h.cpio.zst ;;
	out/pxe/*:role) ref=out/$rn-initrd/role.cpio.zst ;;
	out/pxe/*) ref=$(ls out/{master,etcd,worker}-initrd/node-"$h".cpio.zst 2>/dev/null | head -1) ;;
	out/flatcar/pxe/*:role) ref=out/flatcar/$rn-initrd/role.cpio.zst ;;
	out/flatcar/pxe/*) ref=$(ls out/flatcar/{master,etcd,worker}-initrd/node-"$h".cpio.zst 2>/dev/null | head -1) ;;
	*.iso:*:role) ref=${SHOW[$s]%%.iso:*}-initrd/role.cpio.zst ;;
	*.iso:*) ref=${SHOW[$s]%%.iso:*}-initrd/node-$h.cpio.zst ;;
	esac
	for f in usr/share/oem/config.ign usr/share/oem/dlws/rootfs/var/lib/flatcar-install/user_data; do
		[ -n "$ref" ] && [ -n "${SEGDIR[$ref]:-}" ] && cmp -s "${SEGDIR[$s]}/$f" "${SEGDIR[$ref]}/$f" ||
			why_same="$why_same ${SHOW[$s]}: /$f differs from ${ref:-(no initrd segment)};"
	done
done
[ -z "$why_same" ] && pass units_same_on_pxe_and_iso || fail units_same_on_pxe_and_iso "$why_same"
# coreos-cloudinit knows only these unit keys; since its yaml.v3 switch
# (Flatcar 3975+) anything else, e.g. drop-ins, is silently ignored.
[ -z "$why_keys" ] && pass cloud_config_unit_keys_known || fail cloud_config_unit_keys_known "$why_keys"

########################################################################
# 3. Boot entries and payload paths, for Flatcar stable and beta.
########################################################################
# bootcheck_tree NAME TREE WORKERS FAMILY...: every node and role entry is
# right, every node in TREE/nodes has an entry in each FAMILY (a list of
# config files), and so has every worker recipe of the tree (WORKERS, the
# worker recipes' names) a default entry loading its role segment.
bootcheck_tree() {
	local name=$1 tree=$2 workers=$3 out
	shift 3
	if out=$(fc bootcheck "$tree" "${workers// /,}" "$@"); then pass "$name"; else fail "$name" "$(tr '\n' ';' <<<"$out")"; fi
}
for tree in out/pxe out/pxe-inst out/flatcar/pxe; do
	t=${tree#out/}
	w=$workers_shipped
	case $tree in out/flatcar/*) w=$workers_prod ;; esac
	bootcheck_tree "boot_entries_${t//[\/-]/_}_first_boot_and_initrd_order" "$PWD/$tree" "$w" \
		"$(cd "$tree" && echo pxelinux.cfg/*)" "$(cd "$tree" && echo grub.cfg grub/*.cfg)" boot.ipxe
done
for n in "${isos[@]}"; do
	w=$workers_shipped
	case ${ISOSRC[$n]} in out/flatcar/*) w=$workers_prod ;; esac
	bootcheck_tree "boot_entries_${n//-/_}_iso_first_boot_and_initrd_order" "$WORK/iso/$n" "$w" isolinux/isolinux.cfg boot/grub/grub.cfg
done

# The node segment is a documented PXE "custom OEM": usr/share/oem/config.ign.
# No usr/share/oem/cloud-config.yml in any segment: beta 4722+ ignores it,
# stable would run it a second time next to user_data.
# The cloud-config is the rootfs's /var/lib/flatcar-install/user_data (0600),
# run by user-config.target on stable and beta.
why_ign="" why_oemcc="" why_ud="" why_paths="" why_usr=""
for s in "${cfg_segs[@]}" "${shared_segs[@]}"; do
	is_node=0
	case " ${cfg_segs[*]} " in *" $s "*) is_node=1 ;; esac
	has_ign=0 has_ud=0 outside="" inusr=""
	# The cpio listing: mode links uid gid size month day year path
	# [-> target | link to target].
	while read -r mode _ _ _ _ _ _ _ path; do
		path=${path%% -> *}
		path=${path%% link to *}
		path=${path#./}
		path=${path%/}
		case $path in
		usr/share/oem/config.ign) [[ $mode == -* ]] && has_ign=1 ;;
		usr/share/oem/dlws/rootfs/var/lib/flatcar-install/user_data) [ "$mode" = -rw------- ] && has_ud=1 ;;
		usr/share/oem/cloud-config.yml) why_oemcc="$why_oemcc ${SHOW[$s]};" ;;
		esac
		# Only the OEM tree is carried into the booted system.
		case $path in usr | usr/share | usr/share/oem | usr/share/oem/?*) ;; *) outside="$outside $path" ;; esac
		# /usr is read-only on Flatcar: the rootfs must not target it
		# (but /usr/share/oem, the OEM tree, is writable).
		case $path in
		usr/share/oem/dlws/rootfs/usr/share/oem | usr/share/oem/dlws/rootfs/usr/share/oem/*) ;;
		usr/share/oem/dlws/rootfs/usr | usr/share/oem/dlws/rootfs/usr/*) inusr="$inusr /${path#usr/share/oem/dlws/rootfs/}" ;;
		esac
	done <<<"${LIST[$s]}"
	[ -z "$outside" ] || why_paths="$why_paths ${SHOW[$s]}:$outside;"
	[ -z "$inusr" ] || why_usr="$why_usr ${SHOW[$s]}:$inusr;"
	[ $is_node = 1 ] || continue
	[ $has_ign = 1 ] || why_ign="$why_ign ${SHOW[$s]};"
	first=""
	ud=${SEGDIR[$s]}/usr/share/oem/dlws/rootfs/var/lib/flatcar-install/user_data
	[ -f "$ud" ] && read -r first <"$ud"
	[ $has_ud = 1 ] || why_ud="$why_ud ${SHOW[$s]}: no user_data of mode 0600;"
	[ "$first" = '#cloud-config' ] || why_ud="$why_ud ${SHOW[$s]}: user_data does not start with #cloud-config;"
done
[ -z "$why_ign" ] && pass node_segment_has_oem_config_ign || fail node_segment_has_oem_config_ign "no usr/share/oem/config.ign in$why_ign"
[ -z "$why_oemcc" ] && pass no_oem_cloud_config_yml || fail no_oem_cloud_config_yml "usr/share/oem/cloud-config.yml in$why_oemcc"
[ -z "$why_ud" ] && pass cloud_config_is_rootfs_user_data || fail cloud_config_is_rootfs_user_data "$why_ud"
[ -z "$why_paths" ] && pass payload_paths_under_usr_share_oem || fail payload_paths_under_usr_share_oem "$why_paths"
[ -z "$why_usr" ] && pass rootfs_nothing_in_readonly_usr || fail rootfs_nothing_in_readonly_usr "$why_usr"

########################################################################
# 4. The ordering contract of dlws-mkimage's own units (config.ign text).
########################################################################
# has TEXT KEY WORD: a KEY= line of unit TEXT lists WORD.
has() {
	local line w
	while IFS= read -r line; do
		[[ $line == "$2="* ]] || continue
		read -ra w <<<"${line#*=}"
		for w in "${w[@]}"; do [ "$w" = "$3" ] && return 0; done
	done <<<"$1"
	return 1
}
why_p="" why_m="" why_i="" why_l="" n_i=0 n_l=0 n_inst=0 inst=0 imgs=0
declare -A RWANTS   # recipe file: "INSTALL IMAGES AFTER" (1/0 1/0 step or -)
for s in "${cfg_segs[@]}"; do
	ign=${SEGDIR[$s]}/usr/share/oem/config.ign
	[ -f "$ign" ] || continue
	w=${SHOW[$s]}
	case $w in out/masterinst-initrd/* | out/pxe-inst/* | out/masterinst.iso:*) n_inst=$((n_inst + 1)) ;; esac
	# What the segment's recipe (DLWS_RECIPE of its node.env, in recipes/
	# or, for out/flatcar/, recipes/flatcar/) asks for: install: (and its
	# after-step), images:.
	rec=""
	while IFS== read -r k v; do [ "$k" = DLWS_RECIPE ] && rec=$v; done 2>/dev/null <"${SEGDIR[$s]}/usr/share/oem/dlws/node.env"
	rf=recipes/$rec.recipe
	case $w in out/flatcar/*) rf=$R/$rec.recipe ;; esac
	if [ -z "$rec" ] || [ ! -f "$rf" ]; then why_i="$why_i $w: its node.env names no recipe of the fixture ('$rec');"; continue; fi
	if [ -z "${RWANTS[$rf]:-}" ]; then
		RWANTS[$rf]="0 0 -"
		grep -q '^install:' "$rf" && RWANTS[$rf]="1 0 $(sed -n 's/^install:.*after: *\([a-z]*\).*/\1/p' "$rf")"
		grep -q '^images:' "$rf" && RWANTS[$rf]="${RWANTS[$rf]/ 0 / 1 }"
	fi
	read -r inst imgs after <<<"${RWANTS[$rf]}"
	[ "$after" != - ] || after=""
	declare -A U=()
	while IFS= read -r -d '' name && IFS= read -r -d '' text; do U[$name]=$text; done \
		< <(jq -j '.systemd.units[]? | .name, "\u0000", (.contents // ""), "\u0000"' "$ign")
	u=${U[dlws-payload.service]:-}
	if [ -z "$u" ]; then why_p="$why_p $w: none;"; else
		has "$u" DefaultDependencies no || why_p="$why_p $w: no DefaultDependencies=no;"
		for t in systemd-modules-load.service systemd-sysctl.service sysinit.target; do has "$u" Before "$t" || why_p="$why_p $w: not Before=$t;"; done
		has "$u" WantedBy sysinit.target || why_p="$why_p $w: not WantedBy=sysinit.target;"
	fi
	u=${U[dlws-medium.service]:-}
	if [ -z "$u" ]; then why_m="$why_m $w: none;"; else
		for t in containerd.service kubelet.service; do has "$u" Before "$t" || why_m="$why_m $w: not Before=$t;"; done
	fi
	u=${U[dlws-install.service]:-}
	[ -n "$u" ] || [ $inst = 0 ] || why_i="$why_i $w: no dlws-install.service;"
	[ -z "$u" ] || [ $inst = 1 ] || why_i="$why_i $w: dlws-install.service without install:;"
	if [ -n "$u" ]; then
		n_i=$((n_i + 1))
		has "$u" TimeoutStartSec infinity || why_i="$why_i $w: no TimeoutStartSec=infinity;"
		# after: poweroff (or reboot), as ExecStartPost only: a failed
		# install must not power the node off (nor reboot it into another
		# attempt); after: shell, neither.
		post=0 other="" want_post=0
		case $after in poweroff | reboot) want_post=1 ;; esac
		while IFS= read -r line; do
			if [ $want_post = 1 ] && [[ $line == ExecStartPost=*systemctl*" $after"* ]]; then
				post=$((post + 1))
			elif [[ $line == *poweroff* || $line == *reboot* ]]; then
				other="$other [$line]"
			fi
		done <<<"$u"
		[ $post = $want_post ] && [ -z "$other" ] || why_i="$why_i $w: after: ${after:-?}: $post ExecStartPost lines (want $want_post), elsewhere:$other;"
	fi
	u=${U[dlws-load-images.service]:-}
	[ -n "$u" ] || [ $imgs = 0 ] || why_l="$why_l $w: no dlws-load-images.service;"
	[ -z "$u" ] || [ $imgs = 1 ] || why_l="$why_l $w: dlws-load-images.service without images:;"
	if [ -n "$u" ]; then
		n_l=$((n_l + 1))
		[[ $'\n'$u == *$'\n'ExecStart=*"ctr --namespace k8s.io images import"* ]] || why_l="$why_l $w: ExecStart does not run ctr --namespace k8s.io images import;"
		has "$u" Before kubelet.service || why_l="$why_l $w: not Before=kubelet.service;"
		has "$u" After containerd.service || why_l="$why_l $w: not After=containerd.service;"
	fi
	unset U
	# dlws-install.service is in no cloud-config (coreos-cloudinit would stop
	# waiting for it after 10 minutes).
	ud=${SEGDIR[$s]}/usr/share/oem/dlws/rootfs/var/lib/flatcar-install/user_data
	[ -f "$ud" ] && [[ $(<"$ud") == *dlws-install* ]] && why_i="$why_i $w: named in the cloud-config;"
done
# The install variant has both in every one of its node segments (initrd,
# PXE, ISO), the shipped recipes neither; the production recipes install,
# all but etcd with images.
[ "$n_inst" -ge 3 ] || why_i="$why_i only $n_inst node segments of the install variant;"
[ -z "$why_p" ] && pass order_dlws_payload_early || fail order_dlws_payload_early "$why_p"
[ -z "$why_m" ] && pass order_dlws_medium_before_runtimes || fail order_dlws_medium_before_runtimes "$why_m"
[ -z "$why_i" ] && pass order_dlws_install_no_timeout_after_step_post || fail order_dlws_install_no_timeout_after_step_post "$why_i"
[ -z "$why_l" ] && pass order_dlws_load_images_ctr_before_kubelet || fail order_dlws_load_images_ctr_before_kubelet "$why_l"
finish
