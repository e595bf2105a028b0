#!/usr/bin/env bash
# The production recipes (recipes/flatcar/) with stand-ins for what the
# operator supplies: they build; a missing image of the release is named;
# a removed flag is refused at the template's line; the first master runs
# kubeadm from the sysext; an unlisted worker's default entry carries the
# join configuration and no node's identity.
. "$(dirname "$0")/../lib/e2e.sh"
cd "$WORK"
make_project p
cd p

# --- stand-ins for supplied/ ---------------------------------------------------
S=supplied
supplied_standins $S
# mk_sysext NAME OUT FILE...: a squashfs sysext as Flatcar's bakery lays it out.
mk_sysext() {
	local name=$1 out=$2 d
	shift 2
	d=$(mktemp -d "$WORK/sx.XXXX")
	mkdir -p "$d/usr/lib/extension-release.d" "$d/usr/bin"
	printf 'ID=flatcar\nSYSEXT_LEVEL=1.0\n' >"$d/usr/lib/extension-release.d/extension-release.$name"
	for f in "$@"; do printf '#!/bin/sh\necho %s\n' "$f" >"$d/usr/bin/$f"; chmod 0755 "$d/usr/bin/$f"; done
	mksquashfs "$d" "$out" -all-root -noappend -quiet >/dev/null
}
mk_sysext kubernetes $S/sysext/kubernetes-v1.34.2-x86-64.raw kubelet kubeadm kubectl
mk_sysext nvidia-runtime $S/sysext/nvidia-runtime-x86-64.raw nvidia-smi
# What Kubernetes v1.34.2 with flannel runs, as the recipes list it.
k8s_images $S/images >/dev/null
rm $S/images/SHA256SUMS
(cd $S && sha256sum */* >SHA256SUMS)

R=recipes/flatcar
if err=$("$MK" -q $R/master.recipe 2>&1); then pass build_production_master; else fail build_production_master "$err"; finish; fi
if err=$("$MK" -q $R/worker.recipe $R/etcd.recipe 2>&1); then pass build_production_workers_and_etcd; else fail build_production_workers_and_etcd "$err"; finish; fi
if err=$("$MK" -q $R/gpu-worker.recipe 2>&1); then pass build_production_gpu_worker; else fail build_production_gpu_worker "$err"; fi

# --- the first master runs kubeadm from the sysext ------------------------------
iso=out/flatcar/master.iso
seg=$WORK/master-node.cpio.zst
bsdtar -xOf $iso nodes/dlws-master.cpio.zst >"$seg"
cc=$(bsdtar -xOf "$seg" usr/share/oem/dlws/rootfs/var/lib/flatcar-install/user_data)
kubeadm_cfg=$(bsdtar -xOf "$seg" usr/share/oem/dlws/rootfs/etc/kubernetes/dlws/kubeadm.yaml)
if grep -q 'ExecStart=/usr/bin/kubeadm init --config /etc/kubernetes/dlws/kubeadm.yaml --skip-token-print' <<<"$cc" &&
	grep -q 'ExecStartPost=/usr/bin/kubectl --kubeconfig /etc/kubernetes/admin.conf apply -f /etc/kubernetes/dlws/bootstrap-token.yaml' <<<"$cc" &&
	! grep -q 'name: kubelet.service' <<<"$cc"; then
	pass first_master_runs_kubeadm_init_from_the_sysext
else
	fail first_master_runs_kubeadm_init_from_the_sysext "$(grep -n 'kubeadm\|kubelet' <<<"$cc")"
fi
if grep -qx 'kubernetesVersion: "v1.34.2"' <<<"$kubeadm_cfg" && grep -qx '  imagePullPolicy: Never' <<<"$kubeadm_cfg" &&
	grep -qx '    caFile: "/etc/kubernetes/pki/etcd/ca.crt"' <<<"$kubeadm_cfg" && grep -qx 'apiVersion: kubeadm.k8s.io/v1beta4' <<<"$kubeadm_cfg" &&
	grep -qx 'cgroupDriver: systemd' <<<"$kubeadm_cfg"; then
	pass kubeadm_config_pinned_offline_external_etcd
else
	fail kubeadm_config_pinned_offline_external_etcd "$kubeadm_cfg"
fi
list=$(bsdtar -tf "$seg")
if grep -qx 'usr/share/oem/dlws/rootfs/etc/kubernetes/pki/ca.key' <<<"$list" &&
	grep -qx 'usr/share/oem/dlws/rootfs/etc/kubernetes/pki/apiserver.crt' <<<"$list" &&
	grep -qx 'usr/share/oem/dlws/rootfs/etc/kubernetes/admin.conf' <<<"$list"; then
	pass master_has_kubeadm_pki_layout_and_ca_key
else
	fail master_has_kubeadm_pki_layout_and_ca_key "$(grep pki <<<"$list")"
fi
shared=$(bsdtar -xOf $iso master/shared.cpio.zst | bsdtar -tvf -)
if grep -q ' usr/share/oem/dlws/rootfs/etc/extensions/kubernetes.raw -> /opt/extensions/kubernetes/kubernetes-v1.34.2-x86-64.raw$' <<<"$shared"; then
	pass sysext_linked_as_flatcar_does
else
	fail sysext_linked_as_flatcar_does "$(grep extensions <<<"$shared")"
fi
containerd=$(bsdtar -xOf "$seg" usr/share/oem/dlws/rootfs/etc/containerd/config.toml)
if grep -qx '  sandbox_image = "registry.k8s.io/pause:3.10.1"' <<<"$containerd" && grep -qx '        SystemdCgroup = true' <<<"$containerd"; then
	pass containerd_pins_the_sandbox_image
else
	fail containerd_pins_the_sandbox_image "$containerd"
fi

# --- an unlisted worker's default entry -----------------------------------------
pxe=out/flatcar/pxe
role=$pxe/worker/role.cpio.zst
rl=$(bsdtar -tf $role 2>/dev/null)
if grep -qx 'usr/share/oem/dlws/rootfs/etc/kubernetes/bootstrap-kubelet.conf' <<<"$rl" &&
	grep -qx 'usr/share/oem/dlws/rootfs/etc/kubernetes/pki/ca.crt' <<<"$rl" &&
	! grep -q 'kubelet.conf$\|\.key$\|-key.pem$' <<<"$(grep -v bootstrap-kubelet.conf <<<"$rl")"; then
	pass role_segment_joins_with_token_and_no_identity
else
	fail role_segment_joins_with_token_and_no_identity "$rl"
fi
rcc=$(bsdtar -xOf $role usr/share/oem/dlws/rootfs/var/lib/flatcar-install/user_data 2>/dev/null)
rign=$(bsdtar -xOf $role usr/share/oem/config.ign 2>/dev/null)
if ! grep -q '^hostname:' <<<"$rcc" && grep -q 'DLWS_ROLE=worker' <<<"$(bsdtar -xOf $role usr/share/oem/dlws/node.env)" &&
	! grep -q 'DLWS_HOSTNAME' <<<"$(bsdtar -xOf $role usr/share/oem/dlws/node.env)" &&
	jq -e '.systemd.units[] | select(.name == "dlws-hostname.service" and .enabled)' <<<"$rign" >/dev/null; then
	pass role_segment_names_itself_after_its_mac
else
	fail role_segment_names_itself_after_its_mac "$rcc"
fi
def=$(cat $pxe/pxelinux.cfg/default)
entry=$(grep -A4 '^LABEL worker$' <<<"$def")
if grep -qx '  INITRD worker/base.img,worker/shared.cpio.zst,worker/role.cpio.zst' <<<"$entry" && grep -q '^  APPEND .* flatcar.first_boot=1' <<<"$entry"; then
	pass role_entry_loads_role_segment_with_first_boot
else
	fail role_entry_loads_role_segment_with_first_boot "$entry"
fi

# --- what the build refuses ------------------------------------------------------
refuse() { # refuse NAME EXPECTED RECIPE MUTATION
	local name=$1 expected=$2 recipe=$3 mutation=$4 err
	rm -rf "$WORK/c" && cp -a "$WORK/p" "$WORK/c"
	(cd "$WORK/c" && eval "$mutation") || { fail "$name" "mutation failed"; return; }
	err=$(cd "$WORK/c" && rm -rf out/flatcar && "$MK" "$recipe" 2>&1)
	local rc=$? left
	left=$(find "$WORK/c/out/flatcar" -type f ! -name '.*.lock' ! -path '*/.cache/*' 2>/dev/null)   # locks and the cache stay
	if [ $rc = 1 ] && grep -qF -- "$expected" <<<"$err" && [ -z "$left" ]; then pass "$name"; else fail "$name" "exit $rc, left: $left; $err"; fi
}
refuse missing_image_is_named \
	"recipes/flatcar/worker.recipe:27:3: error: images: lacks 'ghcr.io/flannel-io/flannel-cni-plugin:v1.7.1-flannel1', which a worker of Kubernetes v1.34.2 runs" \
	$R/worker.recipe "sed -i '/flannel-cni-plugin.tar/d' $R/worker.recipe"
refuse removed_flag_at_template_line \
	"recipes/flatcar/../templates/kubeadm.yaml:54:14: error: '--allow-privileged' was removed from kubelet in Kubernetes 1.15" \
	$R/master.recipe "sed -i 's|^      value: /var/kubernetes/kubelet-plugins/volume/exec\$|&\n    - name: kubelet-extra\n      value: --allow-privileged=true|' recipes/templates/kubeadm.yaml"
refuse unknown_kubernetes_version \
	"recipes/flatcar/../cluster.yaml:11:21: error: kubernetes_version 'v1.29.4' is not one this dlws-mkimage knows (1.31 to 1.34)" \
	$R/master.recipe "sed -i 's/^kubernetes_version: .*/kubernetes_version: v1.29.4/' recipes/cluster.yaml"
finish
