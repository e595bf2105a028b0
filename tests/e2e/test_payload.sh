#!/usr/bin/env bash
# The payload segments of the shipped recipes, read back with independent
# tools: cpio/bsdtar listings, modes and owners, the manifest against the
# staged files, what each role and node receives, reproducibility.
. "$(dirname "$0")/../lib/e2e.sh"
cd "$WORK"
make_project p
cd p

if "$MK" -q recipes/master.recipe && "$MK" -q recipes/worker.recipe && "$MK" -q recipes/etcd.recipe; then
	pass build_shipped_recipes
else
	fail build_shipped_recipes "a shipped recipe did not build"
	finish
fi

m=out/master-initrd
w=out/worker-initrd
e=out/etcd-initrd
check segments_are_newc_cpio_gzip bash -c "gzip -dc $m/shared.cpio.gz | cpio -it --quiet >/dev/null && gzip -dc $m/node-dlws-master.cpio.gz | cpio -it --quiet >/dev/null"
check bundle_sha256sums bash -c "cd $m && sha256sum --quiet -c SHA256SUMS"

check cloud_config_as_user_data bash -c "segment_cat() { bsdtar -xOf \"\$1\" \"\$2\"; }; segment_cat $m/node-dlws-master.cpio.gz usr/share/oem/dlws/rootfs/var/lib/flatcar-install/user_data | head -1 | grep -qx '#cloud-config'"
check binaries_in_shared_segment bash -c "bsdtar -tvf $m/shared.cpio.gz | grep -E '^-rwxr-xr-x .* 0 +0 .* usr/share/oem/dlws/rootfs/opt/bin/kubectl$' >/dev/null"
check owner_root_everywhere bash -c "! bsdtar -tvf $m/node-dlws-master.cpio.gz | awk '{print \$3, \$4}' | grep -v '^0 0$'"
check keys_0600_in_segment bash -c "bsdtar -tvf $m/node-dlws-master.cpio.gz | grep -E 'kubelet-key.pem$' | grep -q '^-rw------- '"

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
for seg in $m/shared.cpio.gz $m/node-dlws-master.cpio.gz $w/node-dlws-worker1.cpio.gz $e/node-dlws-etcd1.cpio.gz; do
	check "manifest_matches_$(basename "$(dirname "$seg")")_$(basename "$seg" .cpio.gz)" verify_manifest "$seg"
done

# A worker gets its own key and the CA certificate, nothing else secret.
w1=$(bsdtar -tf $w/node-dlws-worker1.cpio.gz)
w1_key=$(segment_cat $w/node-dlws-worker1.cpio.gz usr/share/oem/dlws/rootfs/etc/kubernetes/ssl/kubelet-key.pem | sha256sum)
w2_key=$(segment_cat $w/node-dlws-worker2.cpio.gz usr/share/oem/dlws/rootfs/etc/kubernetes/ssl/kubelet-key.pem | sha256sum)
own_key=$(sha256sum <keys/kubelet-dlws-worker1-key.pem)
if [ "$w1_key" = "$own_key" ] && [ "$w1_key" != "$w2_key" ]; then pass worker_has_own_key; else fail worker_has_own_key "worker1's segment does not hold its own kubelet key"; fi
keys_in_w1=$(grep -c -- '-key.pem$' <<<"$w1")
if [ "$keys_in_w1" = 1 ]; then pass worker_gets_one_key_only; else fail worker_gets_one_key_only "worker1 segment has $keys_in_w1 keys"; fi
ca_key=$(sha256sum <keys/ca-key.pem)
leak=0
for seg in out/*/*.cpio.gz; do
	d=$(mktemp -d "$WORK/y.XXXX"); bsdtar -xf "$seg" -C "$d"
	grep -rqF "$(sed -n 2p keys/ca-key.pem)" "$d" && leak=1
	find "$d" -type f -exec sha256sum {} + | grep -q "${ca_key%% *}" && leak=1
done
if [ $leak = 0 ]; then pass ca_key_never_in_payload; else fail ca_key_never_in_payload "the CA private key is in a payload"; fi
cn=$(segment_cat $w/node-dlws-worker1.cpio.gz usr/share/oem/dlws/rootfs/etc/kubernetes/ssl/kubelet.pem | openssl x509 -noout -subject)
if [[ $cn == *"CN = system:node:dlws-worker1"* ]]; then pass worker_cert_is_its_own; else fail worker_cert_is_its_own "$cn"; fi
if segment_cat $e/node-dlws-etcd1.cpio.gz usr/share/oem/dlws/rootfs/etc/etcd/etcd.env | grep -qx 'ETCD_INITIAL_CLUSTER=dlws-etcd1=https://192.168.255.11:2380'; then
	pass etcd_static_initial_cluster
else
	fail etcd_static_initial_cluster "etcd.env has no static initial cluster"
fi
check etcd_gets_peer_cert bash -c "bsdtar -tf $e/node-dlws-etcd1.cpio.gz | grep -q 'rootfs/etc/ssl/etcd/peer-key.pem$'"
check master_gets_apiserver_cert bash -c "bsdtar -tf $m/node-dlws-master.cpio.gz | grep -q 'rootfs/etc/kubernetes/ssl/apiserver-key.pem$'"
check overlay_symlink_kept bash -c "bsdtar -tvf $w/shared.cpio.gz | grep -q '^l.* usr/share/oem/dlws/rootfs/etc/kubernetes/kubeconfig -> /etc/kubernetes/kubelet-kubeconfig.yaml$'"

# Nothing the media do at boot reaches the network.
all=$(for seg in out/*/*.cpio.gz; do d=$(mktemp -d "$WORK/z.XXXX"); bsdtar -xf "$seg" -C "$d"; cat $(find "$d" -type f ! -name 'kube*' -size -200k); done 2>/dev/null)
if grep -qiE 'discovery\.etcd\.io|8\.8\.8\.8|curl |wget |https?://(storage|dl|get|github)' <<<"$all"; then
	fail nothing_downloads "a config refers to a download: $(grep -iE 'discovery\.etcd\.io|8\.8\.8\.8|curl |wget ' <<<"$all" | head -1)"
else
	pass nothing_downloads
fi

# Identical inputs give identical bytes (SOURCE_DATE_EPOCH, reused PKI).
sha256sum out/*/*.cpio.gz >"$WORK/first"
SOURCE_DATE_EPOCH=0 "$MK" -q recipes/master.recipe && "$MK" -q recipes/worker.recipe && "$MK" -q recipes/etcd.recipe
if sha256sum -c --quiet "$WORK/first"; then pass reproducible_segments; else fail reproducible_segments "a second build differs"; fi
SOURCE_DATE_EPOCH=1700000000 "$MK" -q recipes/master.recipe
if bsdtar -tvf $m/shared.cpio.gz | grep -q 'Nov 14  2023'; then pass source_date_epoch_sets_mtimes; else fail source_date_epoch_sets_mtimes "$(bsdtar -tvf $m/shared.cpio.gz | head -1)"; fi
finish
