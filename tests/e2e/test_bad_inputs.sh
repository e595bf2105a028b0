#!/usr/bin/env bash
# Bad inputs: each gets one clear message naming the file and place, exit
# status 1, and no output is left behind (nor a temp file).
. "$(dirname "$0")/../lib/e2e.sh"
cd "$WORK"
make_project base
# Keys are made once and copied, so each case runs in its own fresh tree quickly.
(cd base && "$MK" -q certs recipes/master.recipe) || { fail setup "certs failed"; finish; }

# case NAME RECIPE EXPECTED-STDERR-LINE MUTATION...
# The mutation runs in a fresh copy of the project; EXPECTED is matched as a
# fixed string against the error lines.
case_() {
	local name=$1 recipe=$2 expected=$3
	shift 3
	rm -rf "$WORK/c" && cp -a "$WORK/base" "$WORK/c"
	(cd "$WORK/c" && eval "$*") || { fail "$name" "mutation failed"; return; }
	local err rc
	err=$(cd "$WORK/c" && "$MK" "$recipe" 2>&1 >/dev/null)
	rc=$?
	local errors
	errors=$(grep -c 'error:' <<<"$err")
	if [ $rc -ne 1 ]; then
		fail "$name" "exit status $rc, expected 1 (stderr: $err)"
	elif ! grep -qF -- "$expected" <<<"$err"; then
		fail "$name" "expected '$expected', got: $err"
	elif [ "$errors" -ne 1 ]; then
		fail "$name" "expected one error, got $errors: $err"
	elif ls "$WORK/c/out" | grep -qv '^base$'; then
		fail "$name" "output left behind: $(ls "$WORK/c/out")"
	else
		pass "$name"
	fi
}

R=recipes/master.recipe
case_ unknown_key_did_you_mean $R \
	"recipes/master.recipe:35:1: error: unknown key 'overlay' in recipe (did you mean 'overlays'?)" \
	"sed -i 's/^overlays:/overlay:/' $R"
case_ wrong_type $R \
	"recipes/master.recipe:35:11: error: 'overlays' must be a list, not a string" \
	"sed -i 's|^overlays: .*|overlays: ../overlays/common|' $R"
case_ missing_required_key $R \
	"recipes/master.recipe:6:1: error: missing required key 'role' in recipe" \
	"sed -i '/^role:/d' $R"
case_ duplicate_key $R \
	"recipes/master.recipe:$(( $(wc -l <"$WORK/base/$R") + 1 )):1: error: duplicate key 'name' (first defined at 7:1)" \
	"echo 'name: again' >>$R"
case_ missing_file $R \
	"recipes/master.recipe:16:11: error: cannot find 'recipes/../out/base/vmlinuz-nope': No such file or directory" \
	"sed -i 's|out/base/vmlinuz|out/base/vmlinuz-nope|' $R"
case_ wrong_sha256 $R \
	"recipes/master.recipe:33:5: error: sha256 mismatch for 'recipes/../vendor/bin/kubectl': expected $(cut -d' ' -f1 <"$WORK/base/vendor/SHA256SUMS" | head -1), got" \
	"echo tampered >>vendor/bin/kubectl"
# kubeadm.yaml:12 is the master's advertiseAddress, its node IP (the
# mutation leaves the second use, kubeletExtraArgs at line 20, as it is).
mut_node_ipp="sed -i 's/advertiseAddress: {{ node.ip | yaml }}/advertiseAddress: {{ node.ipp | yaml }}/' recipes/templates/kubeadm.yaml"
case_ undefined_template_variable $R \
	"recipes/templates/kubeadm.yaml:12:24: error: undefined name 'node.ipp'" \
	"$mut_node_ipp"
case_ undefined_names_the_name $R \
	"error: undefined name 'node.ipp' (did you mean 'node.ip'?)" \
	"$mut_node_ipp"
# A cluster value with a newline, inserted as it is (no yaml, indent or
# base64 filter) by the shipped kube-flannel.yaml:66 ("Type": "{{ ... }}").
case_ newline_injection $R \
	"recipes/templates/kube-flannel.yaml:66:32: error: value of 'values.flannel_backend' contains a newline" \
	"grep -q '^  flannel_backend: vxlan$' recipes/cluster.yaml && sed -i 's/^  flannel_backend: .*/  flannel_backend: \"vxlan\\\\nEVIL: 1\"/' recipes/cluster.yaml"
case_ invalid_cidr $R \
	"recipes/cluster.yaml:6:15: error: 'pod_ip_range' is not a valid IPv4 CIDR: '10.2.0.0/33'" \
	"sed -i 's|^pod_ip_range: .*|pod_ip_range: 10.2.0.0/33|' recipes/cluster.yaml"
case_ overlapping_cidr $R \
	"recipes/cluster.yaml:7:27: error: service range '10.2.128.0/20' overlaps the pod range '10.2.0.0/16'" \
	"sed -i 's|^service_cluster_ip_range: .*|service_cluster_ip_range: 10.2.128.0/20|' recipes/cluster.yaml"
case_ duplicate_ip $R \
	"recipes/cluster.yaml:25:35: error: duplicate IP '192.168.255.21' (also used by 'dlws-worker1' at 24:35)" \
	"sed -i 's/192.168.255.22/192.168.255.21/' recipes/cluster.yaml"
case_ malformed_mac $R \
	"recipes/cluster.yaml:24:56: error: malformed MAC address '52:54:00:00:21:0g'" \
	"sed -i 's/52:54:00:00:21:01/52:54:00:00:21:0g/' recipes/cluster.yaml"
case_ node_ip_in_pod_range $R \
	"recipes/cluster.yaml:22:33: error: node IP '10.2.0.9' is inside the pod range '10.2.0.0/16'" \
	"sed -i 's/192.168.255.11/10.2.0.9/' recipes/cluster.yaml"
case_ cloud_config_not_yaml $R \
	"recipes/templates/cloud-config.yml: error: rendered config for '/var/lib/flatcar-install/user_data' is not valid YAML: rendered line 3:" \
	"sed -i 's/^hostname: .*/hostname: [unclosed/' recipes/templates/cloud-config.yml"
case_ cloud_config_header $R \
	"recipes/templates/cloud-config.yml: error: rendered cloud-config must start with a '#cloud-config' line" \
	"sed -i '1d' recipes/templates/cloud-config.yml"
case_ invalid_mode $R \
	"recipes/master.recipe:33:65: error: invalid mode '0855'" \
	"sed -i 's/mode: \"0755\"/mode: \"0855\"/' $R"
case_ bad_dest $R \
	"error: 'dest' must be an absolute path inside the node's file system, not '/opt/../../etc/x'" \
	"sed -i 's|dest: /opt/bin/kubectl|dest: /opt/../../etc/x|' $R"
case_ too_big_for_max_size $R \
	"recipes/master.recipe:38:11: error: initrds for 'dlws-master' take" \
	"sed -i 's|initrd: { path: ../out/master-initrd }|initrd: { path: ../out/master-initrd, max_size: 2K }|' $R"
# What Flatcar would not apply, or could not take, is refused at the recipe.
case_ cloud_config_at_oem_path $R \
	"recipes/master.recipe:23:51: error: Flatcar 4722+ does not apply '/usr/share/oem/cloud-config.yml' (and stable would apply it twice): use dest '/var/lib/flatcar-install/user_data'" \
	"sed -i 's|dest: /var/lib/flatcar-install/user_data|dest: /usr/share/oem/cloud-config.yml|' $R"
case_ dest_under_read_only_usr $R \
	"recipes/master.recipe:33:41: error: 'dest' '/usr/bin/kubectl' is under /usr, which is read-only on Flatcar (use /opt or /etc)" \
	"sed -i 's|dest: /opt/bin/kubectl|dest: /usr/bin/kubectl|' $R"
case_ dest_is_builders_ignition $R \
	"recipes/master.recipe:27:52: error: '/usr/share/oem/config.ign' is the node's Ignition config, which dlws-mkimage writes: put units in the cloud-config" \
	"sed -i 's|dest: /etc/kubernetes/dlws/kube-flannel.yaml|dest: /usr/share/oem/config.ign|' $R"
case_ unknown_container_runtime $R \
	"recipes/master.recipe:41:20: error: 'container_runtime' must be containerd or docker, not 'cri-o'" \
	"echo 'container_runtime: cri-o' >>$R"
case_ role_without_nodes recipes/etcd.recipe \
	"recipes/etcd.recipe:6:10: error: 'recipes/cluster.yaml' lists no etcd nodes for role 'etcd'" \
	"sed -i '/dlws-etcd1/d; s/^etcd:/etcd: []/' recipes/cluster.yaml"

# Every problem of a recipe is reported in one run.
rm -rf "$WORK/c" && cp -a "$WORK/base" "$WORK/c"
sed -i 's/^overlays:/overlay:/; s/^name: master/name: Master_1/; s|out/base/initrd.img|out/base/nope.img|' "$WORK/c/$R"
err=$(cd "$WORK/c" && "$MK" $R 2>&1)
if [ "$(grep -c 'error:' <<<"$err")" = 3 ]; then pass all_errors_in_one_run; else fail all_errors_in_one_run "$err"; fi

# A failed build leaves the earlier good output as it was.
rm -rf "$WORK/c" && cp -a "$WORK/base" "$WORK/c"
cd "$WORK/c"
"$MK" -q $R
before=$(cd out/master-initrd && sha256sum *)
eval "$mut_node_ipp"
"$MK" -q $R 2>/dev/null
rc=$?
after=$(cd out/master-initrd 2>/dev/null && sha256sum *)
if [ $rc = 1 ] && [ -n "$before" ] && [ "$before" = "$after" ] && ! ls out | grep -q tmp; then pass failed_build_keeps_good_output; else fail failed_build_keeps_good_output "rc $rc (expected 1), output changed or temp left"; fi

# Usage errors exit 2; --help and --version exit 0.
"$MK" >/dev/null 2>&1; rc=$?
"$MK" --bogus >/dev/null 2>&1; rc2=$?
if [ $rc = 2 ] && [ $rc2 = 2 ] && "$MK" --help | grep -q '^usage:' && "$MK" --version | grep -q '^dlws-mkimage '; then
	pass usage_exit_codes
else
	fail usage_exit_codes "no args: $rc, bad option: $rc2"
fi

# A CA key never goes into a PXE tree: TFTP serves every file to anyone on
# the boot network. One error, at outputs.pxe, and nothing written.
mut_ca_key_pxe() { # recipe
	sed -i 's|^pki: .*|pki: { dir: ../keys, include_ca_key: true }|' "$1" &&
		{ grep -q '^  pxe:' "$1" || sed -i 's|^outputs:|&\n  pxe: { path: ../out/pxe }|' "$1"; }
}
cp "$WORK/base/$R" "$WORK/ca-key-pxe.recipe" && mut_ca_key_pxe "$WORK/ca-key-pxe.recipe"
case_ ca_key_never_in_pxe_tree $R \
	"$R:$(awk '/^  pxe:/ { print NR ":" index($0, "{"); exit }' "$WORK/ca-key-pxe.recipe"): error: a recipe with 'pki.include_ca_key: true' cannot write a PXE tree: TFTP serves every file to anyone on the boot network" \
	"mut_ca_key_pxe $R"
finish
