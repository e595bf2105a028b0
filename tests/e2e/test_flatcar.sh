#!/usr/bin/env bash
# What we write for Flatcar, read by the real consumers Debian packages and
# checked against /work/shared/FLATCAR.md (what current Flatcar does with our
# outputs):
#   1. every node's Ignition config (usr/share/oem/config.ign) is accepted by
#      ignition-validate (Debian's ignition 2.14), spec 3.3.0, units enabled,
#      no Flatcar-only oem:// URL;
#   2. every systemd unit and drop-in the payload carries (config.ign,
#      the rendered cloud-config's coreos.units, the payload rootfs) passes
#      `systemd-analyze verify` (Debian's systemd 252) in a fake Flatcar root
#      that has only what Flatcar's /usr has plus the payload;
#   3. boot entries and payload paths as Flatcar stable and beta need them;
#   4. the ordering contract of dlws-mkimage's own units.
# Needs ignition, systemd, jq, libarchive-tools, python3 and python3-yaml.
. "$(dirname "$0")/../lib/e2e.sh"

# Debian's python3 (python3-yaml) when there is one, whatever PATH says.
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
for t in ignition-validate systemd-analyze jq bsdtar "$PY"; do
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
mkdir -p images/layer && echo layer >images/layer/layer.tar && tar -C images -cf images/app.tar layer
app_sum=$(sha256sum <images/app.tar | cut -d' ' -f1)
sed -e 's/^name: master$/name: masterinst/' \
	-e 's|\.\./out/master-initrd|../out/masterinst-initrd|; s|\.\./out/master\.iso|../out/masterinst.iso|; s|\.\./out/pxe\b|../out/pxe-inst|' \
	-e 's|^  cmdline: .*|&\n  image: ../out/os.img.gz|' recipes/master.recipe >recipes/masterinst.recipe
printf 'install: { device: auto, after: poweroff }\nimages:\n  - { src: ../images/app.tar, sha256: %s }\n' "$app_sum" >>recipes/masterinst.recipe
if "$MK" -q recipes/masterinst.recipe && [ -f out/masterinst-initrd/node-dlws-master.cpio.gz ] && [ -d out/pxe-inst ]; then
	pass build_install_variant
else
	fail build_install_variant "master with install: and images: did not build"
	finish
fi

# Every ISO, read back with bsdtar into $WORK/iso/<name>/ (boot configs, segments).
isos=()
for iso in out/*.iso; do
	n=$(basename "$iso" .iso)
	mkdir -p "$WORK/iso/$n" && bsdtar -xf "$iso" -C "$WORK/iso/$n" || { fail "read_iso_$n" "bsdtar cannot read $iso"; continue; }
	isos+=("$n")
done

# Every payload segment of every output: initrd bundles, PXE trees, ISOs.
node_segs=(out/*-initrd/node-*.cpio.gz out/pxe*/nodes/*.cpio.gz)
shared_segs=(out/*-initrd/shared.cpio.gz out/pxe*/*/shared.cpio.gz)
for n in "${isos[@]}"; do
	node_segs+=("$WORK"/iso/"$n"/nodes/*.cpio.gz)
	shared_segs+=("$WORK"/iso/"$n"/*/shared.cpio.gz)
done
# Each segment extracted once into $WORK/seg/N (SEGDIR), listed once
# (bsdtar -tv, as a cpio listing) into LIST, and named in messages as out/...
# or NAME.iso:/path (SHOW).
declare -A SEGDIR SHOW LIST
nseg=0
for s in "${node_segs[@]}" "${shared_segs[@]}"; do
	nseg=$((nseg + 1))
	SEGDIR[$s]=$WORK/seg/$nseg
	mkdir -p "$WORK/seg/$nseg" && bsdtar -xpf "$s" -C "$WORK/seg/$nseg" || fail "read_segment_$nseg" "bsdtar cannot read $s"
	LIST[$s]=$(bsdtar -tvf "$s")
	case $s in "$WORK"/iso/*) r=${s#"$WORK"/iso/} SHOW[$s]="${r%%/*}.iso:/${r#*/}" ;; *) SHOW[$s]=$s ;; esac
done
echo "segments: ${#node_segs[@]} node, ${#shared_segs[@]} shared (ISOs: ${isos[*]})"

# Python (stdlib + PyYAML): the cloud-config's units, boot config entries.
cat >"$WORK/fc.py" <<'EOF'
import json, os, re, sys, yaml

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

def bootcheck(tree, files):
    """Every entry that boots a node: flatcar.first_boot=1, and exactly the
    base initrd, the role's shared segment and the node's own segment, in
    that order, all present in TREE. Prints problems, then 'NODES f h...'."""
    bad = 0
    for path in files:
        rel = os.path.relpath(path, tree)
        nodes = set()
        for e in entries(path):
            args = dict(a.split("=", 1) for a in e["cmdline"] if "=" in a)
            initrds = [i.lstrip("/") for i in e["initrds"]]
            node, recipe = args.get("dlws.node"), args.get("dlws.recipe")
            if not node and not any(i.startswith("nodes/") for i in initrds):
                continue            # a role's default entry
            where = "%s: entry %s" % (rel, e["label"])
            if not node or not recipe:
                print("%s loads %s without dlws.node/dlws.recipe" % (where, initrds)); bad = 1; continue
            nodes.add(node)
            if "flatcar.first_boot=1" not in e["cmdline"]:
                print("%s: no flatcar.first_boot=1 in %r" % (where, " ".join(e["cmdline"]))); bad = 1
            want = ["%s/base.img" % recipe, "%s/shared.cpio.gz" % recipe, "nodes/%s.cpio.gz" % node]
            if initrds != want:
                print("%s: initrds %s, want %s" % (where, initrds, want)); bad = 1
            if "efi_initrds" in e and e["efi_initrds"] != [os.path.basename(w) for w in want]:
                print("%s: kernel initrd= %s, want %s" % (where, e["efi_initrds"], [os.path.basename(w) for w in want])); bad = 1
            for f in initrds + [(e["kernel"] or "").lstrip("/")]:
                if not os.path.isfile(os.path.join(tree, f)):
                    print("%s: %s is not in the tree" % (where, f)); bad = 1
        print("NODES %s %s" % (rel, " ".join(sorted(nodes))))
    return bad

if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "cc-units":
        sys.exit(cc_units(sys.argv[2], sys.argv[3]))
    if cmd == "bootcheck":
        sys.exit(bootcheck(sys.argv[2], sys.argv[3:]))
    if cmd == "entries":
        print(json.dumps(entries(sys.argv[2]), indent=1))
EOF
fc() { "$PY" "$WORK/fc.py" "$@"; }

########################################################################
# 1. Ignition: Debian's ignition-validate, spec 3.3.0, units enabled.
########################################################################
why_valid="" why_version="" why_enabled="" why_oem=""
igns=()
declare -A IGN_SEG
for s in "${node_segs[@]}"; do
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
# Nothing Flatcar lacks: no kubelet, kubeadm, etcd server, CNI plugins, and
# nothing in /opt -- those must come from the payload.
flatcar_usr_bin=(ctr crictl containerd docker dockerd systemctl etcdctl etcdutl cp mount ln mkdir mv sh bash)
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

verify_unit() { # ROOT UNIT: systemd-analyze verify's whole output (empty = accepted)
	systemd-analyze verify --root="$1" --man=no "$2" 2>&1
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
if grep -q '/usr/bin/not-in-flatcar is not executable' <<<"$o_broken" && grep -q "Unknown key 'Frobnicate'" <<<"$o_broken" &&
	grep -q '/opt/bin/kubelet is not executable' <<<"$o_kubelet" && grep -q '/opt/bin/etcd is not executable' <<<"$o_etcd" && [ -z "$o_fine" ]; then
	pass systemd_verify_rejects_broken_units
else
	fail systemd_verify_rejects_broken_units "broken: [$o_broken] kubelet: [$o_kubelet] etcd: [$o_etcd] fine (must be empty): [$o_fine]"
fi

# One fake Flatcar root per node of every initrd bundle (the complete
# payload: on an ISO large files stay on the medium until dlws-medium.service).
declare -A VFAIL VNODES
why_keys=""
nodes_checked=0
for nseg in out/*-initrd/node-*.cpio.gz; do
	bundle=${nseg%/*}
	host=${nseg##*/node-}
	host=${host%.cpio.gz}
	label="${bundle##*/}/$host"
	label=${label/-initrd\//\/}
	r=$WORK/root-${label//\//-}
	cp -a "$base" "$r"
	# (a) the payload as the kernel unpacks the segments, then its rootfs
	# copied into / as dlws-payload does.
	bsdtar -xpf "$bundle/shared.cpio.gz" -C "$r" && bsdtar -xpf "$nseg" -C "$r" || { fail "extract_$label" "bsdtar"; continue; }
	[ -d "$r/usr/share/oem/dlws/rootfs" ] && cp -a "$r/usr/share/oem/dlws/rootfs/." "$r/"
	names=()
	# The units of config.ign, as Ignition writes them: NAME (contents) and
	# NAME.d/DROPIN, read as NUL-separated path/text pairs.
	ign=$r/usr/share/oem/config.ign
	sd=$r/etc/systemd/system
	while IFS= read -r -d '' rel && IFS= read -r -d '' text; do
		case $rel in */*) mkdir -p "$sd/${rel%/*}" ;; esac
		printf '%s' "$text" >"$sd/$rel"
	done < <(jq -j '.systemd.units[]? | (select(has("contents")) | .name, "\u0000", .contents, "\u0000"),
		(.name as $n | (.dropins // [])[] | $n + ".d/" + .name, "\u0000", (.contents // ""), "\u0000")' "$ign")
	mapfile -t names < <(jq -r '.systemd.units[]?.name' "$ign")
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
	# name (Flatcar's own unit plus the payload's drop-ins) otherwise.
	declare -A seen=()
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
		out=$(verify_unit "$r" "$target")
		VNODES[$name]="${VNODES[$name]:-}${VNODES[$name]:+ }$label"
		if [ -n "$out" ]; then
			VFAIL[$name]="${VFAIL[$name]:-}[$label] ${out//$r/}"$'\n'
		fi
	done
	unset seen
	nodes_checked=$((nodes_checked + 1))
done
for name in $(printf '%s\n' "${!VNODES[@]}" | sort); do
	if [ -z "${VFAIL[$name]:-}" ]; then
		pass "systemd_verify_$name (${VNODES[$name]})"
	else
		fail "systemd_verify_$name" "$(printf '%s' "${VFAIL[$name]}" | sed '/^$/d' | tr '\n' ' ')"
	fi
done
[ "$nodes_checked" -ge 5 ] || fail systemd_verify_every_node "only $nodes_checked node payloads were checked"
# The PXE and ISO node segments carry the very same units (config.ign and
# cloud-config) as the initrd bundle's segment of that node and recipe.
why_same=""
for s in "${node_segs[@]}"; do
	h=${s##*/}
	h=${h%.cpio.gz}
	case ${SHOW[$s]} in
	out/*-initrd/*) continue ;;
	out/pxe-inst/*) ref=out/masterinst-initrd/node-$h.cpio.gz ;;
	out/pxe/*) ref=$(ls out/{master,etcd,worker}-initrd/node-"$h".cpio.gz 2>/dev/null | head -1) ;;
	*.iso:*) n=${SHOW[$s]%%.iso:*} ref=out/$n-initrd/node-$h.cpio.gz ;;
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
# bootcheck_tree NAME TREE FAMILY...: every node entry is right, and every
# node in TREE/nodes has an entry in each FAMILY (a list of config files).
bootcheck_tree() {
	local name=$1 tree=$2 why="" out
	shift 2
	local fam files want have f
	want=$(cd "$tree/nodes" && ls -- *.cpio.gz 2>/dev/null | sed 's/\.cpio\.gz$//' | sort)
	[ -n "$want" ] || why="no node segments in ${tree#"$PWD"/}/nodes;"
	for fam in "$@"; do
		read -ra files <<<"$fam"
		for f in "${files[@]}"; do [ -f "$tree/$f" ] || why="$why $f missing;"; done
		out=$(cd "$tree" && fc bootcheck "$tree" "${files[@]/#/$tree/}")
		[ $? = 0 ] || why="$why $(grep -v '^NODES ' <<<"$out" | tr '\n' ';')"
		have=$(grep '^NODES ' <<<"$out" | cut -d' ' -f3- | tr ' ' '\n' | sed '/^$/d' | sort -u)
		[ "$have" = "$want" ] || why="$why ${files[0]}...: entries for [$(echo $have)], nodes [$(echo $want)];"
	done
	[ -z "$why" ] && pass "$name" || fail "$name" "$why"
}
for tree in out/pxe out/pxe-inst; do
	t=$(basename "$tree")
	bootcheck_tree "boot_entries_${t//-/_}_first_boot_and_initrd_order" "$PWD/$tree" \
		"$(cd "$tree" && echo pxelinux.cfg/*)" "$(cd "$tree" && echo grub.cfg grub/*.cfg)" boot.ipxe
done
for n in "${isos[@]}"; do
	bootcheck_tree "boot_entries_${n}_iso_first_boot_and_initrd_order" "$WORK/iso/$n" isolinux/isolinux.cfg boot/grub/grub.cfg
done

# The node segment is a documented PXE "custom OEM": usr/share/oem/config.ign.
# No usr/share/oem/cloud-config.yml in any segment: beta 4722+ ignores it,
# stable would run it a second time next to user_data.
# The cloud-config is the rootfs's /var/lib/flatcar-install/user_data (0600),
# run by user-config.target on stable and beta.
why_ign="" why_oemcc="" why_ud="" why_paths="" why_usr=""
for s in "${node_segs[@]}" "${shared_segs[@]}"; do
	is_node=0
	case " ${node_segs[*]} " in *" $s "*) is_node=1 ;; esac
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
why_p="" why_m="" why_i="" why_l="" n_i=0 n_l=0 n_inst=0 inst=0
for s in "${node_segs[@]}"; do
	ign=${SEGDIR[$s]}/usr/share/oem/config.ign
	[ -f "$ign" ] || continue
	w=${SHOW[$s]}
	inst=0
	case $w in out/masterinst-initrd/* | out/pxe-inst/* | masterinst.iso:*) inst=1 n_inst=$((n_inst + 1)) ;; esac
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
		# after: poweroff, as ExecStartPost only: a failed install must not
		# power the node off (nor reboot it into another attempt).
		post=0 other=""
		while IFS= read -r line; do
			case $line in
			ExecStartPost=*systemctl*poweroff*) post=$((post + 1)) ;;
			*poweroff*) other="$other [$line]" ;;
			esac
		done <<<"$u"
		[ $post = 1 ] && [ -z "$other" ] || why_i="$why_i $w: poweroff in $post ExecStartPost lines, elsewhere:$other;"
	fi
	u=${U[dlws-load-images.service]:-}
	[ -n "$u" ] || [ $inst = 0 ] || why_l="$why_l $w: no dlws-load-images.service;"
	[ -z "$u" ] || [ $inst = 1 ] || why_l="$why_l $w: dlws-load-images.service without images:;"
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
# PXE, ISO), the shipped recipes neither.
[ "$n_inst" -ge 3 ] || why_i="$why_i only $n_inst node segments of the install variant;"
[ -z "$why_p" ] && pass order_dlws_payload_early || fail order_dlws_payload_early "$why_p"
[ -z "$why_m" ] && pass order_dlws_medium_before_runtimes || fail order_dlws_medium_before_runtimes "$why_m"
[ -z "$why_i" ] && pass order_dlws_install_no_timeout_after_step_post || fail order_dlws_install_no_timeout_after_step_post "$why_i"
[ -z "$why_l" ] && pass order_dlws_load_images_ctr_before_kubelet || fail order_dlws_load_images_ctr_before_kubelet "$why_l"
finish
