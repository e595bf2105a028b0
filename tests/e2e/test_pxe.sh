#!/usr/bin/env bash
# PXE bundles read back with independent tools: the tree, its SHA256SUMS,
# the tarball, every segment, the menus and the dnsmasq snippet; and the
# bad inputs that must leave nothing in the output directory.
. "$(dirname "$0")/../lib/e2e.sh"
cd "$WORK"
make_project p
pxe_tar p
cd p
if "$MK" -q recipes/worker.recipe recipes/etcd.recipe; then pass build_bundle_two_recipes; else fail build_bundle_two_recipes "build failed"; finish; fi
b=out/pxe
check bundle_sha256sums bash -c "cd $b && sha256sum --quiet -c SHA256SUMS"
check sums_cover_every_file bash -c "cd $b && [ \$(find . -type f ! -name SHA256SUMS | wc -l) = \$(wc -l <SHA256SUMS) ]"
check tarball_matches_tree bash -c "diff <(bsdtar -tf out/pxe.tar | sed 's|^pxe/||' | sort) <(cd $b && find . -type f | sed 's|^\./||' | sort)"
check tarball_owner_root bash -c "! bsdtar -tvf out/pxe.tar | awk '{print \$3, \$4}' | grep -qv '^root root$'"
bad=""
for seg in $b/*/*.cpio.zst; do zstd -qdc "$seg" | cpio -it --quiet >/dev/null 2>&1 || bad="$bad $seg"; done
if [ -z "$bad" ]; then pass every_segment_is_cpio; else fail every_segment_is_cpio "$bad"; fi
check bootloaders_at_root bash -c "for f in pxelinux.0 ldlinux.c32 menu.c32 libutil.c32 bootx64.efi grub.cfg boot.ipxe dnsmasq.conf pxelinux.cfg/default; do [ -s $b/\$f ] || exit 1; done"
check bootx64_is_efi_app bash -c "file -b $b/bootx64.efi 2>/dev/null | grep -q 'EFI application' || [ \"\$(head -c2 $b/bootx64.efi)\" = MZ ]"
check per_mac_entries bash -c "[ -f $b/pxelinux.cfg/01-52-54-00-00-21-01 ] && [ -f $b/pxelinux.cfg/01-52-54-00-00-11-01 ] && [ -f '$b/grub/52:54:00:00:21:02.cfg' ] && grep -q 'iseq \${mac} 52:54:00:00:21:02 && goto dlws-worker2' $b/boot.ipxe"
check role_labels_in_menu bash -c "grep -q '^LABEL worker$' $b/pxelinux.cfg/default && grep -q '^LABEL etcd$' $b/pxelinux.cfg/default && grep -q '^DEFAULT worker$' $b/pxelinux.cfg/default && grep -qE '^TIMEOUT [1-9][0-9]?$' $b/pxelinux.cfg/default"
check node_entry_loads_three_initrds bash -c "grep -qx '  INITRD worker/base.img,worker/shared.cpio.zst,nodes/dlws-worker1.cpio.zst' $b/pxelinux.cfg/01-52-54-00-00-21-01"
# The role's default entry (unknown MACs) loads the role segment after base
# and shared, with flatcar.first_boot=1; that segment carries no node's kubelet.conf.
check role_entry_loads_role_segment bash -c "grep -A4 '^LABEL worker$' $b/pxelinux.cfg/default | grep -qx '  INITRD worker/base.img,worker/shared.cpio.zst,worker/role.cpio.zst' &&
	grep -A4 '^LABEL worker$' $b/pxelinux.cfg/default | grep -q '^  APPEND .* flatcar.first_boot=1' && grep -q '  worker/role.cpio.zst$' $b/SHA256SUMS &&
	bsdtar -tf $b/worker/role.cpio.zst | grep -qx usr/share/oem/dlws/rootfs/etc/kubernetes/bootstrap-kubelet.conf && ! bsdtar -tf $b/worker/role.cpio.zst | grep -q '/kubelet\.conf$'"
check shared_segment_stored_once bash -c "[ \$(find $b -name 'shared.cpio.zst' | wc -l) = 2 ] && ! bsdtar -tf $b/nodes/dlws-worker1.cpio.zst | grep -q opt/bin/kubectl"
if command -v dnsmasq >/dev/null; then
	check dnsmasq_conf_valid bash -c "dnsmasq --test -C $b/dnsmasq.conf 2>&1 | grep -q 'syntax check OK' && grep -qx 'dhcp-host=52:54:00:00:21:01,192.168.255.21,dlws-worker1' $b/dnsmasq.conf && grep -q 'client-arch,7' $b/dnsmasq.conf && grep -q 'client-arch,9' $b/dnsmasq.conf"
else
	fail dnsmasq_conf_valid "dnsmasq is not installed (make deps installs dnsmasq-base)"
fi
# The boot server's set-up rides in the bundle (boot_server: in the cluster
# values): iPXE's first stage from Debian's ipxe, an nginx site nginx
# accepts, dnsmasq in proxy mode too, and what the bundle serves.
check ipxe_first_stage bash -c "cmp -s $b/undionly.kpxe /usr/lib/ipxe/undionly.kpxe && cmp -s $b/snponly.efi /usr/lib/ipxe/snponly.efi"
check dnsmasq_http_boot bash -c "grep -qx 'dhcp-boot=tag:ipxe,http://192.168.255.1/boot.ipxe' $b/dnsmasq.conf && grep -qx 'tftp-root=/srv/boot/current' $b/dnsmasq.conf &&
	grep -qx 'dhcp-range=192.168.255.100,192.168.255.199,255.255.255.0,1h' $b/dnsmasq.conf && grep -qx 'dhcp-boot=tag:!ipxe,tag:!efi64,undionly.kpxe' $b/dnsmasq.conf"
printf 'daemon off;\npid %s/ngx.pid;\nerror_log stderr;\nevents { }\nhttp { include %s/nginx.conf; }\n' "$WORK" "$PWD/$b" >"$WORK/ngx.conf"
# nginx -t binds the site's address: in a network namespace that has it.
if unshare -n sh -c "ip link set lo up && ip addr add 192.168.255.1/24 dev lo && nginx -t -c $WORK/ngx.conf" >"$WORK/ngx.out" 2>&1 && grep -qx '	root /srv/boot/current;' $b/nginx.conf &&
	grep -qx '	listen 192.168.255.1:80;' $b/nginx.conf; then
	pass nginx_site_valid
else
	fail nginx_site_valid "$(tr '\n' ' ' <"$WORK/ngx.out")"
fi
if python3 - "$b/dlws-build.json" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
assert m["tool"] == "dlws-mkimage" and m["built"] is None and all(len(r["inputs_sha256"]) == 64 for r in m["recipes"]) and m["cluster"] == "dlws-lab", m
assert [(r["name"], r["role"], r["recipe"], r["nodes"]) for r in m["recipes"]] == [
    ("worker", "worker", "../../recipes/worker.recipe", ["dlws-worker1", "dlws-worker2"]),
    ("etcd", "etcd", "../../recipes/etcd.recipe", ["dlws-etcd1"])], m["recipes"]
PY
then pass build_metadata; else fail build_metadata "dlws-build.json"; fi
mkdir -p "$WORK/pp/out" && cp -a recipes overlays vendor keys "$WORK/pp/" && cp -a out/base "$WORK/pp/out/"
sed -i 's/dhcp: full /dhcp: proxy/; /^  range:/d' "$WORK/pp/recipes/cluster.yaml"
if (cd "$WORK/pp" && "$MK" -q recipes/worker.recipe) && dnsmasq --test -C "$WORK/pp/out/pxe/dnsmasq.conf" 2>&1 | grep -q 'syntax check OK' &&
	grep -qx 'dhcp-range=192.168.255.0,proxy,255.255.255.0' "$WORK/pp/out/pxe/dnsmasq.conf" &&
	grep -q '^pxe-service=tag:!ipxe,x86PC,.*,undionly.kpxe$' "$WORK/pp/out/pxe/dnsmasq.conf" &&
	! grep -q '^dhcp-host=' "$WORK/pp/out/pxe/dnsmasq.conf"; then
	pass dnsmasq_proxy_mode
else
	fail dnsmasq_proxy_mode "$(grep -v '^#' "$WORK/pp/out/pxe/dnsmasq.conf" 2>&1 | tr '\n' ' ')"
fi
# x86-64 UEFI firmware says client-arch 7 or 9 (dnsmasq's X86-64_EFI and
# BC_EFI): proxy mode offers iPXE to both, as full mode's dhcp-match does.
check dnsmasq_proxy_mode_uefi_arch_7_and_9 bash -c "grep -q '^pxe-service=tag:!ipxe,X86-64_EFI,.*,snponly.efi$' $WORK/pp/out/pxe/dnsmasq.conf &&
	grep -q '^pxe-service=tag:!ipxe,BC_EFI,.*,snponly.efi$' $WORK/pp/out/pxe/dnsmasq.conf"

# A node's segment holds its own identity (kubelet.conf, the client key
# embedded) and no other node's: neither worker2's kubelet.conf nor its
# key, as a file, as PEM text or base64-embedded.
c1=$(sha256sum <keys/kubelet-dlws-worker1.conf | cut -d' ' -f1)
c2=$(sha256sum <keys/kubelet-dlws-worker2.conf | cut -d' ' -f1)
k2=$(sha256sum <keys/kubelet-dlws-worker2-key.pem | cut -d' ' -f1)
s1=$(bsdtar -xOf $b/nodes/dlws-worker1.cpio.zst usr/share/oem/dlws/rootfs/etc/kubernetes/kubelet.conf | sha256sum | cut -d' ' -f1)
d1=$(mktemp -d "$WORK/n.XXXX") && bsdtar -xf $b/nodes/dlws-worker1.cpio.zst -C "$d1"
all1=$(find "$d1" -type f -exec sha256sum {} + | cut -d' ' -f1)
if [ "$s1" = "$c1" ] && ! grep -qe "$c2" -e "$k2" <<<"$all1" &&
	! grep -rqF -e "$(sed -n 2p keys/kubelet-dlws-worker2-key.pem)" -e "$(base64 -w0 <keys/kubelet-dlws-worker2-key.pem)" -e 'system:node:dlws-worker2' "$d1"; then
	pass node_segment_own_key_only
else
	fail node_segment_own_key_only "worker1's segment"
fi
sha256sum $b/SHA256SUMS out/pxe.tar >"$WORK/sums"
"$MK" -q recipes/worker.recipe recipes/etcd.recipe
if sha256sum --quiet -c "$WORK/sums"; then pass bundle_reproducible; else fail bundle_reproducible "a second build differs"; fi

# The tarball only when a recipe asks (outputs.pxe.tar): without it, the
# tarball of an earlier build goes, so it is never taken for this one.
sed -i 's|pxe: { path: ../out/pxe, tar: true }|pxe: { path: ../out/pxe }|' recipes/worker.recipe recipes/etcd.recipe
if "$MK" -q recipes/worker.recipe recipes/etcd.recipe && [ ! -e out/pxe.tar ] && [ -f $b/SHA256SUMS ]; then
	pass tarball_only_when_asked
else
	fail tarball_only_when_asked "$(ls out)"
fi
sed -i 's|pxe: { path: ../out/pxe }|pxe: { path: ../out/pxe, tar: true }|' recipes/worker.recipe recipes/etcd.recipe
"$MK" -q recipes/worker.recipe recipes/etcd.recipe
check tarball_made_again_when_asked test -f out/pxe.tar

# A bundle never silently loses a role: building one of its recipes keeps
# the others' entries and files from its last build (checked against its
# SHA256SUMS), in their order, so a role rebuilt alone gives the very bundle
# all of them built together give.
cp -a $b "$WORK/both"
"$MK" recipes/worker.recipe 2>"$WORK/keep.err"
rc=$?
if [ $rc = 0 ] && diff -r "$WORK/both" $b >/dev/null &&
	grep -qx "kept etcd in recipes/../out/pxe from its last build (rebuild it with its recipe to refresh it)" "$WORK/keep.err"; then
	pass bundle_keeps_other_roles
else
	fail bundle_keeps_other_roles "rc $rc: $(tr '\n' ' ' <"$WORK/keep.err"); $(diff -rq "$WORK/both" $b | head -3)"
fi
# A kept file that no longer matches the bundle's sums is never carried on.
flip_byte $b/etcd/shared.cpio.zst 100
err=$("$MK" -q recipes/worker.recipe 2>&1)
rc=$?
if [ $rc = 1 ] && grep -qF "error: cannot keep 'recipes/../out/pxe/etcd/shared.cpio.zst': it differs from the bundle's SHA256SUMS (damaged); rebuild its recipe" <<<"$err" && [ ! -e out/pxe.tmp ]; then
	pass damaged_kept_file_refused
else
	fail damaged_kept_file_refused "rc $rc: $err"
fi
check bundle_roles_rebuilt_together "$MK" -q recipes/etcd.recipe recipes/worker.recipe
# A kept recipe whose nodes left the cluster values: refused, with the
# command that rebuilds them together.
cp recipes/cluster.yaml "$WORK/cluster.yaml.orig"
sed -i 's/hostname: dlws-etcd1,/hostname: dlws-etcd9,/' recipes/cluster.yaml
sum_before=$(sha256sum <$b/SHA256SUMS)
err=$("$MK" -q recipes/worker.recipe 2>&1)
rc=$?
if [ $rc = 1 ] && grep -qF "error: the PXE bundle 'recipes/../out/pxe' also serves 'etcd', which cannot be kept from its last build: 'dlws-etcd1' is no longer an etcd node in 'recipes/cluster.yaml'; build them together: dlws-mkimage recipes/worker.recipe recipes/etcd.recipe" <<<"$err" &&
	[ "$(sha256sum <$b/SHA256SUMS)" = "$sum_before" ]; then
	pass stale_kept_role_refused
else
	fail stale_kept_role_refused "rc $rc: $err"
fi
cp "$WORK/cluster.yaml.orig" recipes/cluster.yaml

# Bad inputs: a clear message, exit 1, and nothing in the output directory.
bad_case() {
	local name=$1 expected=$2 mutate=$3
	shift 3
	rm -rf "$WORK/c" && mkdir "$WORK/c" && cp -a recipes overlays vendor "$WORK/c/" && mkdir -p "$WORK/c/out" && cp -a out/base "$WORK/c/out/" && cp -a keys "$WORK/c/"
	(cd "$WORK/c" && eval "$mutate")
	local err
	err=$(cd "$WORK/c" && "$MK" "$@" 2>&1 >/dev/null)
	local rc=$?
	if [ $rc = 1 ] && grep -qF -- "$expected" <<<"$err" && [ "$(ls "$WORK/c/out")" = base ]; then
		pass "$name"
	else
		fail "$name" "rc $rc, out: $(ls "$WORK/c/out" | tr '\n' ' '), stderr: $err"
	fi
}
bad_case missing_kernel "recipes/worker.recipe:10:11: error: cannot find 'recipes/../out/base/vmlinuz-gone'" \
	"sed -i 's|out/base/vmlinuz|out/base/vmlinuz-gone|' recipes/worker.recipe" recipes/worker.recipe
bad_case missing_initrd "recipes/worker.recipe:11:11: error: cannot find 'recipes/../out/base/initrd-gone.img'" \
	"sed -i 's|out/base/initrd.img|out/base/initrd-gone.img|' recipes/worker.recipe" recipes/worker.recipe
bad_case mac_listed_twice_in_cluster "recipes/cluster.yaml:25:56: error: duplicate MAC '52:54:00:00:21:01' (also used by 'dlws-worker1' at 24:56)" \
	"sed -i 's/52:54:00:00:21:02/52:54:00:00:21:01/' recipes/cluster.yaml" recipes/worker.recipe
bad_case mac_listed_twice_in_bundle "error: MAC '52:54:00:00:21:01' is listed twice in the bundle" \
	"sed 's/^name: worker/name: worker-b/; s|worker-initrd|worker-b-initrd|; s|cluster: cluster.yaml|cluster: cluster-b.yaml|' recipes/worker.recipe >recipes/worker-b.recipe && sed 's/dlws-worker/dlws-gpu/; s/192.168.255.2/192.168.255.3/' recipes/cluster.yaml >recipes/cluster-b.yaml" \
	recipes/worker.recipe recipes/worker-b.recipe
bad_case payload_exceeds_max_initrd "recipes/worker.recipe:29:8: error: initrds for 'dlws-worker1' take" \
	"sed -i 's|pxe: { path: ../out/pxe, tar: true }|pxe: { path: ../out/pxe, max_initrd: 4K }|' recipes/worker.recipe" recipes/worker.recipe
bad_case boot_server_address_without_prefix "recipes/cluster.yaml:31:12: error: invalid boot_server.address '192.168.255.1' (expected the server's IPv4 address with its network's prefix, e.g. 192.168.255.1/24)" \
	"sed -i 's|address: 192.168.255.1/24|address: 192.168.255.1|' recipes/cluster.yaml" recipes/worker.recipe
bad_case boot_server_range_outside "recipes/cluster.yaml:33:10: error: boot_server.range '10.0.0.1-10.0.0.9' is not inside the boot network of 192.168.255.1/24" \
	"sed -i 's|range: 192.168.255.100-192.168.255.199|range: 10.0.0.1-10.0.0.9|' recipes/cluster.yaml" recipes/worker.recipe
bad_case boot_server_full_needs_range "recipes/cluster.yaml:31:3: error: boot_server with 'dhcp: full' needs a range: (the addresses for machines not listed, e.g. workers that join by their MAC)" \
	"sed -i '/^  range:/d' recipes/cluster.yaml" recipes/worker.recipe
bad_case boot_server_bad_root "error: invalid boot_server.root 'srv boot'" \
	"sed -i 's|root: /srv/boot|root: srv boot|' recipes/cluster.yaml" recipes/worker.recipe
bad_case pxe_install_needs_boot_server "error: a node installed from the PXE bundle 'recipes/../out/pxe' fetches the OS image from the boot server over HTTP: set boot_server.address in 'recipes/cluster.yaml' (e.g. 192.168.255.1/24)" \
	"sed -i '/^boot_server:/,/^  root:/d' recipes/cluster.yaml && sed -i 's|^  cmdline: .*|&\\n  image: ../out/base/initrd.img|' recipes/worker.recipe && echo 'install: { device: auto }' >>recipes/worker.recipe" recipes/worker.recipe
finish
