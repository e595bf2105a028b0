#!/usr/bin/env bash
# asan-pass: no (runs the payload script on fake roots; no dlws-mkimage code)
# The payload step (agent/dlws-payload.sh) on fake live roots (DLWS_ROOT),
# under the two shells it meets: bash with GNU coreutils and util-linux
# (Flatcar's /bin/sh and /usr/bin) and busybox (the default base). The boots
# prove it in a VM; this proves each branch quickly, with the payload of a
# real build.
. "$(dirname "$0")/../lib/e2e.sh"
SCRIPT=$ROOT/agent/dlws-payload.sh
cd "$WORK"
make_project p
(cd p && "$MK" -q recipes/worker.recipe) || { fail build "worker recipe did not build"; finish; }
seg_shared=p/out/worker-initrd/shared.cpio.zst
seg_node=p/out/worker-initrd/node-dlws-worker1.cpio.zst
seg_role=p/out/worker-initrd/role.cpio.zst

shells=("bash")
if command -v busybox >/dev/null; then shells+=("busybox sh"); else skip busybox "busybox is not installed"; fi

# live_root DIR: the two segments unpacked as the kernel unpacks them.
live_root() {
	rm -rf "$1" && mkdir -p "$1" && bsdtar -xpf "$seg_shared" -C "$1" && bsdtar -xpf "$seg_node" -C "$1"
}
mode() { stat -c %a "$1"; }

for sh in "${shells[@]}"; do
	tag=${sh%% *}
	r=$WORK/root-$tag
	live_root "$r"
	out=$(DLWS_ROOT=$r $sh "$SCRIPT" place 2>&1)
	rc=$?
	n=$(cat "$r"/usr/share/oem/dlws/manifest.d/* | grep -vc '^#')
	if [ $rc = 0 ] && grep -qx "DLWS-PAYLOAD: OK $n files" <<<"$out" && ! grep -q '^DLWS-VERIFY' <<<"$out"; then
		pass "${tag}_place_verifies_every_initrd_file"
	else
		fail "${tag}_place_verifies_every_initrd_file" "rc $rc: $(grep DLWS-PAYLOAD <<<"$out")"
	fi
	ud=$r/var/lib/flatcar-install/user_data
	if [ -f "$ud" ] && [ "$(mode "$ud")" = 600 ] && [ "$(mode "$r/var/lib/flatcar-install")" = 700 ] &&
		head -1 "$ud" | grep -qx '#cloud-config' && [ "$(mode "$r/etc/kubernetes/kubelet.conf")" = 600 ] &&
		cmp -s "$r/etc/kubernetes/kubelet.conf" p/keys/kubelet-dlws-worker1.conf &&
		[ "$(mode "$r/var/lib/kube-proxy/kubeconfig.conf")" = 600 ] && [ "$(mode "$r/etc/kubernetes/bootstrap-kubelet.conf")" = 600 ] &&
		[ -f "$r/etc/kubernetes/pki/ca.crt" ] && [ -f "$r/var/lib/kubelet/config.yaml" ] &&
		[ -x "$r/opt/bin/kubectl" ] && [ -f "$r/etc/sysctl.d/90-dlws.conf" ] && [ -f "$r/etc/modules-load.d/dlws.conf" ] &&
		[ -f "$r/etc/systemd/system/containerd.service.d/10-dlws-config.conf" ]; then
		pass "${tag}_place_puts_rootfs_and_cloud_config_in_place"
	else
		fail "${tag}_place_puts_rootfs_and_cloud_config_in_place" "$(ls -l "$ud" "$r/opt/bin" "$r/etc/kubernetes" 2>&1 | tr '\n' ' ')"
	fi
	# The role's default entry: shared and role segments, no node's identity.
	rr=$WORK/role-$tag
	rm -rf "$rr" && mkdir -p "$rr" && bsdtar -xpf "$seg_shared" -C "$rr" && bsdtar -xpf "$seg_role" -C "$rr"
	out=$(DLWS_ROOT=$rr $sh "$SCRIPT" place 2>&1)
	rc=$?
	n=$(cat "$rr"/usr/share/oem/dlws/manifest.d/* | grep -vc '^#')
	if [ $rc = 0 ] && grep -qx "DLWS-PAYLOAD: OK $n files" <<<"$out" && [ "$(mode "$rr/etc/kubernetes/bootstrap-kubelet.conf")" = 600 ] &&
		[ -f "$rr/etc/kubernetes/pki/ca.crt" ] && [ ! -e "$rr/etc/kubernetes/kubelet.conf" ] && [ -x "$rr/opt/bin/kubectl" ]; then
		pass "${tag}_place_role_segment"
	else
		fail "${tag}_place_role_segment" "rc $rc: $(grep DLWS-PAYLOAD <<<"$out") $(ls "$rr/etc/kubernetes" 2>&1 | tr '\n' ' ')"
	fi
	# Nothing on a medium here (a PXE boot): `large` has nothing to do.
	out=$(DLWS_ROOT=$r $sh "$SCRIPT" large 2>&1)
	if [ $? = 0 ] && [ -z "$out" ]; then pass "${tag}_large_without_large_files_is_quiet"; else fail "${tag}_large_without_large_files_is_quiet" "$out"; fi

	# One flipped byte: named, nothing copied, exit 1.
	live_root "$r"
	k=$r/usr/share/oem/dlws/rootfs/etc/kubernetes/kubelet.conf
	flip_byte "$k" 40
	out=$(DLWS_ROOT=$r $sh "$SCRIPT" place 2>&1)
	rc=$?
	if [ $rc = 1 ] && grep -q '^DLWS-VERIFY: FAIL /usr/share/oem/dlws/rootfs/etc/kubernetes/kubelet.conf: sha256 ' <<<"$out" &&
		grep -q '^DLWS-PAYLOAD: FAIL 1 of ' <<<"$out" && [ ! -e "$r/etc/kubernetes" ] && [ ! -e "$r/var/lib/flatcar-install" ]; then
		pass "${tag}_damaged_payload_is_not_put_in_place"
	else
		fail "${tag}_damaged_payload_is_not_put_in_place" "rc $rc: $out"
	fi

	# Large files (as on an ISO) already reachable: verified, then linked;
	# container images linked where dlws-load-images.service imports them.
	live_root "$r"
	d=$r/usr/share/oem/dlws
	mkdir -p "$d/large/rootfs/opt/bin" "$d/large/images" "$d/images"
	printf 'big kubelet\n' >"$d/large/rootfs/opt/bin/kubelet" && chmod 0755 "$d/large/rootfs/opt/bin/kubelet"
	printf 'an image\n' >"$d/large/images/pause.tar" && printf 'small image\n' >"$d/images/coredns.tar"
	chmod 0644 "$d/large/images/pause.tar" "$d/images/coredns.tar"
	{
		for f in large/rootfs/opt/bin/kubelet large/images/pause.tar images/coredns.tar; do
			printf '%s %s 0%s /usr/share/oem/dlws/%s\n' "$(sha256sum <"$d/$f" | cut -d' ' -f1)" "$(stat -c %s "$d/$f")" "$(mode "$d/$f")" "$f"
		done
	} >"$d/manifest.d/zz-test"
	out=$(DLWS_ROOT=$r $sh "$SCRIPT" place 2>&1 && DLWS_ROOT=$r $sh "$SCRIPT" large 2>&1)
	if [ $? = 0 ] && grep -qx 'DLWS-LARGE: OK 2 files' <<<"$out" &&
		[ "$(readlink "$r/opt/bin/kubelet")" = /usr/share/oem/dlws/large/rootfs/opt/bin/kubelet ] &&
		[ "$(readlink "$r/var/lib/dlws/images/pause.tar")" = /usr/share/oem/dlws/large/images/pause.tar ] &&
		[ "$(readlink "$r/var/lib/dlws/images/coredns.tar")" = /usr/share/oem/dlws/images/coredns.tar ]; then
		pass "${tag}_large_files_and_images_linked_into_place"
	else
		fail "${tag}_large_files_and_images_linked_into_place" "$out $(ls -l "$r/opt/bin" "$r/var/lib/dlws/images" 2>&1 | tr '\n' ' ')"
	fi
	# A damaged large file: named, not linked, exit 1.
	rm -f "$r/opt/bin/kubelet"
	printf 'tampered\n' >"$d/large/rootfs/opt/bin/kubelet"
	out=$(DLWS_ROOT=$r $sh "$SCRIPT" large 2>&1)
	if [ $? = 1 ] && grep -q '^DLWS-VERIFY: FAIL /usr/share/oem/dlws/large/rootfs/opt/bin/kubelet: ' <<<"$out" &&
		grep -qx 'DLWS-LARGE: FAIL 1 of 2 files' <<<"$out" && [ ! -e "$r/opt/bin/kubelet" ]; then
		pass "${tag}_damaged_large_file_is_not_linked"
	else
		fail "${tag}_damaged_large_file_is_not_linked" "$out"
	fi
done
# The node's name before its kubelet starts: from node.env, else (an
# unlisted worker) from its first Ethernet MAC unless DHCP named it.
# With DLWS_ROOT the script only prints the name it would set.
for sh in "${shells[@]}"; do
	tag=${sh%% *}
	r=$WORK/name-$tag
	rm -rf "$r" && mkdir -p "$r/usr/share/oem/dlws" "$r/proc/sys/kernel" "$r/sys/class/net/lo" "$r/sys/class/net/eth0"
	printf '772\n' >"$r/sys/class/net/lo/type" && printf '00:00:00:00:00:00\n' >"$r/sys/class/net/lo/address"
	printf '1\n' >"$r/sys/class/net/eth0/type" && printf '52:54:00:ab:cd:ef\n' >"$r/sys/class/net/eth0/address"
	printf 'localhost\n' >"$r/proc/sys/kernel/hostname"
	printf 'DLWS_HOSTNAME=dlws-worker1\nDLWS_ROLE=worker\n' >"$r/usr/share/oem/dlws/node.env"
	a=$(DLWS_ROOT=$r $sh "$SCRIPT" hostname 2>&1)
	printf 'DLWS_ROLE=worker\nDLWS_CLUSTER=lab\n' >"$r/usr/share/oem/dlws/node.env"
	b=$(DLWS_ROOT=$r $sh "$SCRIPT" hostname 2>&1)
	printf 'rack7-node3\n' >"$r/proc/sys/kernel/hostname"
	c=$(DLWS_ROOT=$r $sh "$SCRIPT" hostname 2>&1)
	rm -rf "$r/sys/class/net/eth0" && printf 'localhost\n' >"$r/proc/sys/kernel/hostname"
	e=$(DLWS_ROOT=$r $sh "$SCRIPT" hostname 2>&1)
	erc=$?
	if [ "$a" = 'DLWS-NODENAME: dlws-worker1' ] && [ "$b" = 'DLWS-NODENAME: worker-525400abcdef' ] &&
		[ "$c" = 'DLWS-NODENAME: rack7-node3 (DHCP)' ] && [ $erc = 1 ] && grep -q '^DLWS-NODENAME: NONE' <<<"$e"; then
		pass "${tag}_hostname_from_media_mac_or_dhcp"
	else
		fail "${tag}_hostname_from_media_mac_or_dhcp" "listed [$a] unlisted [$b] dhcp [$c] none [$e] rc $erc"
	fi
done
finish
