#!/usr/bin/env bash
# The payload segments of the shipped recipes, read back with independent
# tools: cpio/bsdtar listings, modes and owners, the manifest against the
# staged files, what each role and node receives, reproducibility.
. "$(dirname "$0")/../lib/e2e.sh"
cd "$WORK"
make_project p
cd p
# Overlays keep symlinks: one in the fixture's common overlay (every role).
ln -s /etc/kubernetes/admin.conf overlays/common/etc/kube-admin-link

if "$MK" -q recipes/master.recipe && "$MK" -q recipes/worker.recipe && "$MK" -q recipes/etcd.recipe; then
	pass build_shipped_recipes
else
	fail build_shipped_recipes "a shipped recipe did not build"
	finish
fi

m=out/master-initrd
w=out/worker-initrd
e=out/etcd-initrd
check segments_are_newc_cpio_zstd bash -c "zstd -qdc $m/shared.cpio.zst | cpio -it --quiet >/dev/null && zstd -qdc $m/node-dlws-master.cpio.zst | cpio -it --quiet >/dev/null"
check bundle_sha256sums bash -c "cd $m && sha256sum --quiet -c SHA256SUMS"

check cloud_config_as_user_data bash -c "segment_cat() { bsdtar -xOf \"\$1\" \"\$2\"; }; segment_cat $m/node-dlws-master.cpio.zst usr/share/oem/dlws/rootfs/var/lib/flatcar-install/user_data | head -1 | grep -qx '#cloud-config'"
check binaries_in_shared_segment bash -c "bsdtar -tvf $m/shared.cpio.zst | grep -E '^-rwxr-xr-x .* 0 +0 .* usr/share/oem/dlws/rootfs/opt/bin/kubectl$' >/dev/null"
check owner_root_everywhere bash -c "! bsdtar -tvf $m/node-dlws-master.cpio.zst | awk '{print \$3, \$4}' | grep -v '^0 0$'"
# Keys and kubeconfigs (which embed a client key or a token) are 0600 in
# every node segment: each role's, and there is at least one of each kind.
keys_0600() { # SEGMENT MIN-COUNT
	local l
	l=$(bsdtar -tvf "$1" | grep -E ' usr/share/oem/dlws/rootfs/(.*\.key|etc/kubernetes/[^/]*\.conf|var/lib/kube-proxy/kubeconfig\.conf|etc/kubernetes/dlws/bootstrap-token\.yaml)$')
	[ "$(grep -c . <<<"$l")" -ge "$2" ] && ! grep -qv '^-rw------- ' <<<"$l"
}
keys_0600_everywhere() {
	bsdtar -tvf $m/node-dlws-master.cpio.zst | grep -qE '^-rw------- .* usr/share/oem/dlws/rootfs/etc/kubernetes/kubelet\.conf$' &&
		bsdtar -tvf $m/node-dlws-master.cpio.zst | grep -qE '^-rw------- .* usr/share/oem/dlws/rootfs/etc/kubernetes/pki/apiserver\.key$' &&
		keys_0600 $m/node-dlws-master.cpio.zst 11 && keys_0600 $w/node-dlws-worker1.cpio.zst 3 &&
		keys_0600 $w/role.cpio.zst 2 && keys_0600 $e/node-dlws-etcd1.cpio.zst 2
}
check keys_0600_in_segment keys_0600_everywhere

# The manifest of every segment matches what the segment holds.
verify_manifest() {
	local seg=$1 dir
	dir=$(mktemp -d "$WORK/x.XXXX")
	bsdtar -xpf "$seg" -C "$dir" || return 1
	local n=0 sum size mode path
	while read -r sum size mode path; do
		[[ $sum == \#* || -z $sum ]] && continue
		local f=$dir$path
		[ -f "$f" ] || { echo "missing $path"; return 1; }
		[ "$(sha256sum <"$f" | cut -d' ' -f1)" = "$sum" ] || { echo "sum $path"; return 1; }
		[ "$(stat -c %s "$f")" = "$size" ] || { echo "size $path"; return 1; }
		[ "$(printf '%04o' "0$(stat -c %a "$f")")" = "$mode" ] || { echo "mode $path"; return 1; }
		n=$((n + 1))
	done < <(cat "$dir"/usr/share/oem/dlws/manifest.d/*)
	# Every file but the manifest itself is listed.
	local files
	files=$(find "$dir" -type f ! -path '*/manifest.d/*' | wc -l)
	[ "$files" = "$n" ] || { echo "manifest lists $n of $files files"; return 1; }
}
for seg in $m/shared.cpio.zst $m/node-dlws-master.cpio.zst $w/node-dlws-worker1.cpio.zst $w/role.cpio.zst $e/node-dlws-etcd1.cpio.zst; do
	check "manifest_matches_$(basename "$(dirname "$seg")")_$(basename "$seg" .cpio.zst)" verify_manifest "$seg"
done

# keys_found DIR: the keys/*-key.pem whose material is somewhere in DIR,
# as PEM or base64-embedded the way a kubeconfig carries it (client-key-data).
keys_found() {
	local k
	for k in keys/*-key.pem; do
		grep -rqF -e "$(sed -n 2p "$k")" -e "$(base64 -w0 <"$k")" "$1" && basename "$k"
	done | sort
}
# secret_files DIR: files in DIR that carry a private key or a bearer token.
secret_files() {
	grep -rlE -e '-----BEGIN [A-Z ]*PRIVATE KEY-----' -e '^ *client-key-data: ' -e '^ *token: ' "$1" | sed "s|^$1/||" | sort
}
unpack() { local d; d=$(mktemp -d "$WORK/u.XXXX"); bsdtar -xpf "$1" -C "$d" && echo "$d"; }
w1d=$(unpack $w/node-dlws-worker1.cpio.zst)
rd=$(unpack $w/role.cpio.zst)
R=usr/share/oem/dlws/rootfs

# A worker's identity is its kubelet.conf (client certificate and key
# embedded): worker1 gets its own, from keys/, and not worker2's.
w1_conf=$(sha256sum <"$w1d/$R/etc/kubernetes/kubelet.conf")
w2_conf=$(segment_cat $w/node-dlws-worker2.cpio.zst $R/etc/kubernetes/kubelet.conf | sha256sum)
w1_key=$(sed -n 's/^ *client-key-data: //p' "$w1d/$R/etc/kubernetes/kubelet.conf" | base64 -d | sha256sum)
if [ "$w1_conf" = "$(sha256sum <keys/kubelet-dlws-worker1.conf)" ] && [ "$w2_conf" = "$(sha256sum <keys/kubelet-dlws-worker2.conf)" ] &&
	[ "$w1_conf" != "$w2_conf" ] && [ "$w1_key" = "$(sha256sum <keys/kubelet-dlws-worker1-key.pem)" ]; then
	pass worker_has_own_key
else
	fail worker_has_own_key "worker1's segment does not hold its own kubelet.conf (with its own key)"
fi
# "One key only" in kubeadm's layout: the segment holds exactly one NODE
# identity, its own kubelet.conf, and no other node's key. Besides it, the
# only secret-bearing files are the role's shared credentials, which every
# worker of the role gets alike (and which are in the role segment too):
# bootstrap-kubelet.conf (the bootstrap token) and kube-proxy's kubeconfig
# (system:kube-proxy's key). No other key from keys/, raw or embedded.
want_secrets="$R/etc/kubernetes/bootstrap-kubelet.conf
$R/etc/kubernetes/kubelet.conf
$R/var/lib/kube-proxy/kubeconfig.conf"
got_secrets=$(secret_files "$w1d")
got_keys=$(keys_found "$w1d" | tr '\n' ' ')
if [ "$got_secrets" = "$want_secrets" ] && [ "$got_keys" = "kube-proxy-key.pem kubelet-dlws-worker1-key.pem " ] &&
	[ "$(grep -rl 'system:node:' "$w1d" | sed "s|^$w1d/||")" = "$R/etc/kubernetes/kubelet.conf" ] &&
	cmp -s "$w1d/$R/etc/kubernetes/bootstrap-kubelet.conf" keys/bootstrap-kubelet.conf &&
	cmp -s "$w1d/$R/var/lib/kube-proxy/kubeconfig.conf" keys/kube-proxy.conf; then
	pass worker_gets_one_key_only
else
	fail worker_gets_one_key_only "worker1's segment: secret files [$(tr '\n' ' ' <<<"$got_secrets")], keys [$got_keys]"
fi

# The role's default entry (role.cpio.zst, any worker not in cluster.yaml):
# the CA certificate, the shared join credentials, the role's configs and
# Ignition config, a node.env without a node, and no node's identity.
why=""
grep -qx "[0-9a-f]\{64\}  role.cpio.zst" $w/SHA256SUMS || why="$why not in SHA256SUMS;"
cmp -s "$rd/$R/etc/kubernetes/pki/ca.crt" keys/ca.pem || why="$why ca.crt;"
cmp -s "$rd/$R/etc/kubernetes/bootstrap-kubelet.conf" keys/bootstrap-kubelet.conf || why="$why bootstrap-kubelet.conf;"
cmp -s "$rd/$R/var/lib/kube-proxy/kubeconfig.conf" keys/kube-proxy.conf || why="$why kube-proxy kubeconfig;"
for f in var/lib/kubelet/config.yaml var/lib/kubelet/kubeadm-flags.env etc/containerd/config.toml; do
	[ -s "$rd/$R/$f" ] || why="$why no $f;"
done
head -1 "$rd/$R/var/lib/flatcar-install/user_data" | grep -qx '#cloud-config' || why="$why no cloud-config;"
grep -q '^hostname:' "$rd/$R/var/lib/flatcar-install/user_data" && why="$why cloud-config names a host;"
[ "$(stat -c %a "$rd/usr/share/oem/config.ign")" = 600 ] || why="$why config.ign mode;"
[ "$(cut -d= -f1 "$rd/usr/share/oem/dlws/node.env" | sort | tr '\n' ' ')" = "DLWS_CLUSTER DLWS_RECIPE DLWS_ROLE " ] || why="$why node.env: $(tr '\n' ' ' <"$rd/usr/share/oem/dlws/node.env");"
[ -e "$rd/$R/etc/kubernetes/kubelet.conf" ] && why="$why has a kubelet.conf;"
grep -rq 'system:node:' "$rd" && why="$why a node identity: $(grep -rl 'system:node:' "$rd" | head -1);"
[ "$(secret_files "$rd")" = "$R/etc/kubernetes/bootstrap-kubelet.conf
$R/var/lib/kube-proxy/kubeconfig.conf" ] || why="$why secret files: $(secret_files "$rd" | tr '\n' ' ');"
[ "$(keys_found "$rd")" = kube-proxy-key.pem ] || why="$why keys: $(keys_found "$rd" | tr '\n' ' ');"
if [ -z "$why" ]; then pass worker_role_segment_without_node_identity; else fail worker_role_segment_without_node_identity "$why"; fi

# No CA key (kube-ca, etcd-ca, front-proxy-ca) is in any segment of any
# role, node or PXE tree, as a file, as PEM text or embedded in base64.
leak="" n=0
for seg in out/*/*.cpio.zst out/pxe/*/*.cpio.zst; do
	d=$(unpack "$seg")
	n=$((n + 1))
	for k in ca-key.pem etcd-ca-key.pem front-proxy-ca-key.pem; do
		keys_found "$d" | grep -qx "$k" && leak="$leak $k in $seg;"
		find "$d" -type f -exec sha256sum {} + | grep -q "^$(sha256sum <keys/$k | cut -d' ' -f1) " && leak="$leak $k as a file in $seg;"
	done
done
if [ -z "$leak" ] && [ $n -ge 8 ] && ls out/*/*.cpio.zst | grep -q '/role\.cpio\.zst$'; then pass ca_key_never_in_payload; else fail ca_key_never_in_payload "${leak:-only $n segments scanned}"; fi
cn=$(sed -n 's/^ *client-certificate-data: //p' "$w1d/$R/etc/kubernetes/kubelet.conf" | base64 -d | openssl x509 -noout -subject)
if [[ $cn == *"O = system:nodes, CN = system:node:dlws-worker1"* ]]; then pass worker_cert_is_its_own; else fail worker_cert_is_its_own "$cn"; fi
if segment_cat $e/node-dlws-etcd1.cpio.zst usr/share/oem/dlws/rootfs/etc/etcd/etcd.env | grep -qx 'ETCD_INITIAL_CLUSTER=dlws-etcd1=https://192.168.255.11:2380'; then
	pass etcd_static_initial_cluster
else
	fail etcd_static_initial_cluster "etcd.env has no static initial cluster"
fi
check etcd_gets_peer_cert bash -c "bsdtar -tf $e/node-dlws-etcd1.cpio.zst | grep -q 'rootfs/etc/kubernetes/pki/etcd/peer\.key$' && bsdtar -tf $e/node-dlws-etcd1.cpio.zst | grep -q 'rootfs/etc/kubernetes/pki/etcd/peer\.crt$'"
# An etcd node gets the etcd CA's certificates only: nothing of kube-ca,
# no kubelet identity, no key but its own two.
etcd_only_etcd_pki() {
	local d
	d=$(unpack $e/node-dlws-etcd1.cpio.zst)
	[ ! -e "$d/$R/etc/kubernetes/pki/ca.crt" ] && [ ! -e "$d/$R/etc/kubernetes/kubelet.conf" ] &&
		cmp -s "$d/$R/etc/kubernetes/pki/etcd/ca.crt" keys/etcd-ca.pem &&
		[ "$(keys_found "$d" | tr '\n' ' ')" = "etcd-dlws-etcd1-peer-key.pem etcd-dlws-etcd1-server-key.pem " ]
}
check etcd_gets_nothing_of_kube_ca etcd_only_etcd_pki
check master_gets_apiserver_cert bash -c "bsdtar -tf $m/node-dlws-master.cpio.zst | grep -q 'rootfs/etc/kubernetes/pki/apiserver\.key$' && bsdtar -tf $m/node-dlws-master.cpio.zst | grep -q 'rootfs/etc/kubernetes/pki/apiserver\.crt$'"
check overlay_symlink_kept bash -c "for s in $m/shared.cpio.zst $w/shared.cpio.zst $e/shared.cpio.zst; do bsdtar -tvf \$s | grep -q '^l.* usr/share/oem/dlws/rootfs/etc/kube-admin-link -> /etc/kubernetes/admin.conf$' || exit 1; done"

# Nothing the media do at boot reaches the network.
all=$(for seg in out/*/*.cpio.zst; do d=$(mktemp -d "$WORK/z.XXXX"); bsdtar -xf "$seg" -C "$d"; cat $(find "$d" -type f ! -name kubectl -size -200k); done 2>/dev/null)
if grep -qiE 'discovery\.etcd\.io|8\.8\.8\.8|curl |wget |https?://(storage|dl|get|github)' <<<"$all"; then
	fail nothing_downloads "a config refers to a download: $(grep -iE 'discovery\.etcd\.io|8\.8\.8\.8|curl |wget ' <<<"$all" | head -1)"
else
	pass nothing_downloads
fi

# Identical inputs give identical bytes (SOURCE_DATE_EPOCH, reused PKI).
sha256sum out/*/*.cpio.zst >"$WORK/first"
SOURCE_DATE_EPOCH=0 "$MK" -q recipes/master.recipe && "$MK" -q recipes/worker.recipe && "$MK" -q recipes/etcd.recipe
if sha256sum -c --quiet "$WORK/first"; then pass reproducible_segments; else fail reproducible_segments "a second build differs"; fi
SOURCE_DATE_EPOCH=1700000000 "$MK" -q recipes/master.recipe
if bsdtar -tvf $m/shared.cpio.zst | grep -q 'Nov 14  2023'; then pass source_date_epoch_sets_mtimes; else fail source_date_epoch_sets_mtimes "$(bsdtar -tvf $m/shared.cpio.zst | head -1)"; fi
# Build metadata: the build time is SOURCE_DATE_EPOCH's (null without it),
# and inputs_sha256 names what the payload is made from, whatever output
# carries it: equal in the initrd directory, the PXE tree and the ISO,
# the same with or without the build cache, changed by a changed input.
meta() { # OUTPUT-DIR-OR-ISO -> dlws-build.json on stdout
	if [ -d "$1" ]; then
		cat "$1/dlws-build.json"
	else
		rm -f "$WORK/iso-meta" && xorriso -osirrox on -indev "$1" -extract /dlws-build.json "$WORK/iso-meta" >/dev/null 2>&1
		cat "$WORK/iso-meta"
	fi
}
field() { # OUTPUT PYTHON-EXPR over m (the metadata) and r (the master recipe's entry)
	meta "$1" | python3 -c "import json, sys; m = json.load(sys.stdin); r = [x for x in m['recipes'] if x['name'] == 'master'][0]; print($2)"
}
built=$(field $m "m['built']")
if [ "$built" = 2023-11-14T22:13:20Z ]; then pass build_time_is_source_date_epoch; else fail build_time_is_source_date_epoch "built $built"; fi
"$MK" -q recipes/master.recipe
in_initrd=$(field $m "r['inputs_sha256']") in_pxe=$(field out/pxe "r['inputs_sha256']") in_iso=$(field out/master.iso "r['inputs_sha256']")
if [ "$(field $m "m['built']")" = None ] && [ ${#in_initrd} = 64 ] && [ "$in_initrd" = "$in_pxe" ] && [ "$in_pxe" = "$in_iso" ]; then
	pass inputs_sha256_same_in_every_output
else
	fail inputs_sha256_same_in_every_output "built $(field $m "m['built']"); initrd $in_initrd, pxe $in_pxe, iso $in_iso"
fi
"$MK" -q --no-cache recipes/master.recipe
if [ "$(field $m "r['inputs_sha256']")" = "$in_initrd" ] && [ "$(field out/master.iso "r['inputs_sha256']")" = "$in_iso" ]; then
	pass inputs_sha256_without_cache
else
	fail inputs_sha256_without_cache "$(field $m "r['inputs_sha256']") against $in_initrd"
fi
# A template, an overlay file, an operator's key: each changes it (and a
# build with that input put back gives the first value again).
changed=
for mut in "echo '# edited' >>recipes/templates/kubeadm.yaml" "echo edited >>overlays/common/etc/sysctl.d/90-dlws.conf" \
	"sed -i 's/operator@dlws-lab/operator2@dlws-lab/' recipes/cluster.yaml"; do
	cp -a recipes "$WORK/recipes.keep" && cp -a overlays "$WORK/overlays.keep"
	eval "$mut"
	"$MK" -q recipes/master.recipe && [ "$(field $m "r['inputs_sha256']")" != "$in_initrd" ] || changed="$changed [$mut]"
	rm -rf recipes overlays && mv "$WORK/recipes.keep" recipes && mv "$WORK/overlays.keep" overlays
done
"$MK" -q recipes/master.recipe
if [ -z "$changed" ] && [ "$(field $m "r['inputs_sha256']")" = "$in_initrd" ]; then
	pass inputs_sha256_follows_inputs
else
	fail inputs_sha256_follows_inputs "unchanged by:$changed; back: $(field $m "r['inputs_sha256']") against $in_initrd"
fi
sha256sum out/master-initrd/* >"$WORK/before-bad-epoch"
err=$(SOURCE_DATE_EPOCH=1e9 "$MK" recipes/master.recipe 2>&1 >/dev/null)
rc=$?
if [ $rc = 1 ] && [ "$err" = "dlws-mkimage: error: SOURCE_DATE_EPOCH is '1e9', not a count of seconds since 1970" ] && sha256sum --quiet -c "$WORK/before-bad-epoch"; then
	pass bad_source_date_epoch_refused
else
	fail bad_source_date_epoch_refused "rc $rc: $err"
fi
finish
