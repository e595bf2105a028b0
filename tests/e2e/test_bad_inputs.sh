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
# compression: a method name, or a map of method and level.
L=$(( $(wc -l <"$WORK/base/$R") + 1 ))
case_ unknown_compression $R \
	"recipes/master.recipe:$L:14: error: unknown compression 'lz4' (expected zstd, xz or gzip)" \
	"echo 'compression: lz4' >>$R"
case_ compression_level_out_of_range $R \
	"recipes/master.recipe:$L:37: error: invalid zstd level '25' (expected 1 to 19; default 3)" \
	"echo 'compression: { method: zstd, level: 25 }' >>$R"
case_ compression_missing_method $R \
	"recipes/master.recipe:$L:14: error: missing required key 'method' in compression" \
	"echo 'compression: { level: 3 }' >>$R"
case_ compression_wrong_type $R \
	"recipes/master.recipe:$L:14: error: 'compression' must be zstd, xz or gzip, or a map with 'method' and 'level'" \
	"echo 'compression: [zstd]' >>$R"
case_ role_without_nodes recipes/etcd.recipe \
	"recipes/etcd.recipe:6:10: error: 'recipes/cluster.yaml' lists no etcd nodes for role 'etcd'" \
	"sed -i '/dlws-etcd1/d; s/^etcd:/etcd: []/' recipes/cluster.yaml"

# cluster.yaml: ranges, nodes, names and versions (builder/cluster.c).
C=recipes/cluster.yaml
case_ cidr_host_bits $R \
	"recipes/cluster.yaml:6:15: error: 'pod_ip_range' has host bits set in '10.2.0.1/16' (did you mean a network address?)" \
	"sed -i 's|^pod_ip_range: .*|pod_ip_range: 10.2.0.1/16|' $C"
case_ range_too_small $R \
	"recipes/cluster.yaml:7:27: error: 'service_cluster_ip_range' is too small: '10.3.0.0/31' (at most /30)" \
	"sed -i 's|^service_cluster_ip_range: .*|service_cluster_ip_range: 10.3.0.0/31|' $C"
case_ invalid_hostname $R \
	"recipes/cluster.yaml:25:17: error: invalid hostname 'Dlws_W2' (lowercase letters, digits, '-' and '.')" \
	"sed -i 's/hostname: dlws-worker2/hostname: Dlws_W2/' $C"
case_ invalid_ip $R \
	"recipes/cluster.yaml:25:35: error: invalid IPv4 address '192.168.255.300'" \
	"sed -i 's/192.168.255.22/192.168.255.300/' $C"
case_ node_ip_in_service_range $R \
	"recipes/cluster.yaml:25:35: error: node IP '10.3.0.5' is inside the service range '10.3.0.0/16'" \
	"sed -i 's/192.168.255.22/10.3.0.5/' $C"
case_ duplicate_hostname $R \
	"recipes/cluster.yaml:25:17: error: duplicate hostname 'dlws-worker1' (also at 24:17)" \
	"sed -i 's/hostname: dlws-worker2/hostname: dlws-worker1/' $C"
case_ duplicate_mac $R \
	"recipes/cluster.yaml:25:56: error: duplicate MAC '52:54:00:00:21:01' (also used by 'dlws-worker1' at 24:56)" \
	"sed -i 's/52:54:00:00:21:02/52:54:00:00:21:01/' $C"
case_ invalid_cluster_name $R \
	"recipes/cluster.yaml:4:15: error: invalid cluster_name 'DLWS_lab' (lowercase letters, digits, '-' and '.')" \
	"sed -i 's|^cluster_name: .*|cluster_name: DLWS_lab|' $C"
case_ invalid_domain $R \
	"recipes/cluster.yaml:5:9: error: invalid domain '-bad..local'" \
	"sed -i 's|^domain: .*|domain: -bad..local|' $C"
case_ invalid_kubernetes_version $R \
	"recipes/cluster.yaml:11:21: error: invalid kubernetes_version '1.34' (expected e.g. v1.34.2)" \
	"sed -i 's|^kubernetes_version: .*|kubernetes_version: 1.34|' $C"
case_ invalid_image_tag $R \
	"recipes/cluster.yaml:12:18: error: invalid image tag 'v0.27 4'" \
	"sed -i 's|^flannel_version: .*|flannel_version: \"v0.27 4\"|' $C"
case_ not_an_ssh_key $R \
	"recipes/cluster.yaml:17:5: error: 'hello world...' does not look like an SSH public key" \
	"sed -i 's|^  - ssh-ed25519 .*|  - hello world|' $C"
case_ cluster_unknown_key $R \
	"recipes/cluster.yaml:6:1: error: unknown key 'pod_ip_rang' in cluster (did you mean 'pod_ip_range'?)" \
	"sed -i 's|^pod_ip_range:|pod_ip_rang:|' $C"
case_ cluster_not_yaml $R \
	"recipes/cluster.yaml:20:3: error: while parsing a flow node did not find expected node content" \
	"sed -i 's|^masters:|masters: [|' $C"
case_ yaml_anchor $R \
	"recipes/cluster.yaml:38:9: error: anchors are not supported" \
	"sed -i 's|^values:|values: \&v|' $C"
case_ cluster_file_missing $R \
	"recipes/master.recipe:9:10: error: cannot find 'recipes/cluster.yaml': No such file or directory" \
	"rm $C"

# cluster.yaml: the boot server of the PXE bundles.
case_ boot_address_without_prefix $R \
	"recipes/cluster.yaml:31:12: error: invalid boot_server.address '192.168.255.1' (expected the server's IPv4 address with its network's prefix, e.g. 192.168.255.1/24)" \
	"sed -i 's|address: 192.168.255.1/24|address: 192.168.255.1|' $C"
case_ boot_address_broadcast $R \
	"recipes/cluster.yaml:31:12: error: boot_server.address '192.168.255.255/24' is its network's own or broadcast address" \
	"sed -i 's|address: 192.168.255.1/24|address: 192.168.255.255/24|' $C"
case_ boot_dhcp_mode $R \
	"recipes/cluster.yaml:32:9: error: boot_server.dhcp is 'proxy' or 'full', not 'relay'" \
	"sed -i 's|dhcp: full |dhcp: relay|' $C"
case_ boot_range_reversed $R \
	"recipes/cluster.yaml:33:10: error: invalid boot_server.range '192.168.255.199-192.168.255.100' (expected FIRST-LAST, e.g. 192.168.255.100-192.168.255.199)" \
	"sed -i 's|range: 192.168.255.100-192.168.255.199|range: 192.168.255.199-192.168.255.100|' $C"
case_ boot_range_outside_network $R \
	"recipes/cluster.yaml:33:10: error: boot_server.range '10.9.0.1-10.9.0.9' is not inside the boot network of 192.168.255.1/24" \
	"sed -i 's|range: 192.168.255.100-192.168.255.199|range: 10.9.0.1-10.9.0.9|' $C"
case_ boot_range_in_proxy_mode $R \
	"recipes/cluster.yaml:33:10: error: boot_server.range is for 'dhcp: full' (in proxy mode the network's own DHCP server hands out addresses)" \
	"sed -i 's|dhcp: full |dhcp: proxy|' $C"
case_ boot_full_dhcp_without_range $R \
	"recipes/cluster.yaml:31:3: error: boot_server with 'dhcp: full' needs a range: (the addresses for machines not listed, e.g. workers that join by their MAC)" \
	"sed -i '/^  range: /d' $C"
case_ boot_root_relative $R \
	"recipes/cluster.yaml:34:9: error: invalid boot_server.root 'srv/boot' (an absolute path of letters, digits, '/', '.', '_' and '-')" \
	"sed -i 's|root: /srv/boot|root: srv/boot|' $C"
case_ boot_http_port $R \
	"recipes/cluster.yaml:35:14: error: invalid boot_server.http_port '70000' (1 to 65535)" \
	"sed -i 's|^  root: /srv/boot|&\n  http_port: 70000|' $C"
case_ boot_node_outside_network $R \
	"recipes/cluster.yaml:25:35: error: dlws-worker2's ip 192.168.254.22 is outside the boot network 192.168.255.1/24: with 'dhcp: full' dnsmasq gives listed nodes their addresses" \
	"sed -i 's/192.168.255.22/192.168.254.22/' $C"
case_ boot_unknown_key $R \
	"recipes/cluster.yaml:34:3: error: unknown key 'rootdir' in boot_server (did you mean 'root'?)" \
	"sed -i 's|^  root: /srv/boot|  rootdir: /srv/boot|' $C"

# Recipe keys (builder/recipe.c).
case_ recipe_version $R \
	"recipes/master.recipe:6:9: error: unsupported recipe version '2' (this dlws-mkimage reads version 1)" \
	"sed -i 's|^recipe: 1|recipe: 2|' $R"
case_ recipe_not_a_map $R \
	"recipes/master.recipe:1:1: error: a recipe must be a map, not a string" \
	"echo 'just a string' >$R"
case_ invalid_recipe_name $R \
	"recipes/master.recipe:7:7: error: invalid name 'Master_1' (lowercase letters, digits, '-' and '.')" \
	"sed -i 's|^name: master|name: Master_1|' $R"
case_ unknown_role $R \
	"recipes/master.recipe:8:7: error: unknown role 'gpu' (expected master, etcd or worker)" \
	"sed -i 's|^role: master|role: gpu|' $R"
case_ pki_key_type $R \
	"recipes/master.recipe:20:32: error: 'key_type' must be 'rsa' or 'ecdsa', not 'dsa'" \
	"sed -i 's|^pki: .*|pki: { dir: ../keys, key_type: dsa }|' $R"
case_ pki_include_ca_key_not_bool $R \
	"recipes/master.recipe:20:38: error: 'include_ca_key' must be true or false" \
	"sed -i 's|^pki: .*|pki: { dir: ../keys, include_ca_key: maybe }|' $R"
case_ base_kernel_is_a_directory $R \
	"recipes/master.recipe:16:11: error: 'recipes/../out/base' is not a regular file" \
	"sed -i 's|kernel: ../out/base/vmlinuz|kernel: ../out/base|' $R"
case_ cmdline_two_lines $R \
	"recipes/master.recipe:18:12: error: 'cmdline' must be one line" \
	"sed -i 's|^  cmdline: .*|  cmdline: \"a\\\\nb\"|' $R"
case_ template_missing $R \
	"recipes/master.recipe:25:17: error: cannot find 'recipes/templates/nope.toml': No such file or directory" \
	"sed -i 's|templates/containerd-config.toml|templates/nope.toml|' $R"
case_ mode_wrong_type $R \
	"recipes/master.recipe:33:65: error: 'mode' must be a string, not a list" \
	"sed -i 's/mode: \"0755\"/mode: [7]/' $R"
case_ file_src_missing $R \
	"recipes/master.recipe:33:12: error: cannot find 'recipes/../vendor/bin/kubelet': No such file or directory" \
	"sed -i 's|src: ../vendor/bin/kubectl|src: ../vendor/bin/kubelet|; s|sha256sums: ../vendor/SHA256SUMS|sha256: $(printf %064d 0)|' $R"
case_ sha256_and_sha256sums $R \
	"recipes/master.recipe:33:85: error: give either 'sha256' or 'sha256sums', not both" \
	"sed -i 's|sha256sums: ../vendor/SHA256SUMS|sha256sums: ../vendor/SHA256SUMS, sha256: $(printf %064d 0)|' $R"
case_ file_not_pinned $R \
	"recipes/master.recipe:33:5: error: missing required key 'sha256' in files entry (every file is pinned)" \
	"sed -i 's|, sha256sums: ../vendor/SHA256SUMS||' $R"
case_ sha256_not_hex $R \
	"recipes/master.recipe:33:81: error: 'sha256' must be 64 hex digits" \
	"sed -i 's|sha256sums: ../vendor/SHA256SUMS|sha256: 12345|' $R"
case_ sha256sums_lacks_file $R \
	"recipes/master.recipe:33:85: error: 'recipes/../vendor/SHA256SUMS' has no sum for 'kubectl'" \
	"sed -i '/kubectl/d' vendor/SHA256SUMS"
case_ sha256sums_invalid_sum $R \
	"recipes/master.recipe:33:85: error: 'recipes/../vendor/SHA256SUMS' has an invalid sum for 'kubectl' (expected 64 hex digits)" \
	"sed -i 's/^[0-9a-f]* \( *kubectl\)/xyz \1/' vendor/SHA256SUMS"
case_ overlay_missing $R \
	"recipes/master.recipe:35:56: error: cannot find overlay 'recipes/../overlays/nope': No such file or directory" \
	"sed -i 's|../overlays/master\]|../overlays/nope]|' $R"
case_ overlay_not_a_directory $R \
	"recipes/master.recipe:35:56: error: overlay 'recipes/../vendor/SHA256SUMS' is not a directory" \
	"sed -i 's|../overlays/master\]|../vendor/SHA256SUMS]|' $R"
case_ image_missing $R \
	"recipes/master.recipe:42:12: error: cannot find 'recipes/../images/pause.tar': No such file or directory" \
	"printf 'images:\n  - { src: ../images/pause.tar, sha256: $(printf %064d 0) }\n' >>$R"
# Image archives are read for every recipe, with or without a kubelet: the
# node imports them at boot. Each problem is placed at its images: entry.
case_ image_not_a_tar $R \
	"recipes/master.recipe:42:5: error: 'recipes/../vendor/bin/kubectl' is not a tar archive (plain, gzip- or zstd-compressed)" \
	"printf 'images:\n  - { src: ../vendor/bin/kubectl, sha256sums: ../vendor/SHA256SUMS }\n' >>$R"
mut_image() { # RECIPE MEMBER-FILE...: a tar of the files as images/app.tar, pinned, in the recipe
	local recipe=$1
	shift
	mkdir -p images && tar -cf images/app.tar "$@" && (cd images && sha256sum app.tar >SHA256SUMS) &&
		printf 'images:\n  - { src: ../images/app.tar, sha256sums: ../images/SHA256SUMS }\n' >>"$recipe"
}
case_ image_without_manifest $R \
	"recipes/master.recipe:42:5: error: 'recipes/../images/app.tar' is not a container image archive (no manifest.json or index.json)" \
	"mut_image $R vendor/SHA256SUMS"
case_ image_without_name recipes/etcd.recipe \
	"recipes/etcd.recipe:30:5: error: 'recipes/../images/app.tar' holds an image without a name (docker save IMAGE:TAG, not an image id)" \
	"echo '[{\"Config\":\"c.json\",\"RepoTags\":null,\"Layers\":[]}]' >manifest.json && mut_image recipes/etcd.recipe manifest.json"
case_ image_manifest_not_json recipes/worker.recipe \
	"recipes/worker.recipe:32:5: error: 'recipes/../images/app.tar': manifest.json is not valid JSON: unexpected end of data at byte 2" \
	"echo '[' >manifest.json && mut_image recipes/worker.recipe manifest.json"

# Two explicit entries writing one path (overlays may layer, files: and
# config: entries may not): at the later entry's dest, naming the first.
case_ config_dest_twice $R \
	"recipes/master.recipe:27:52: error: '/etc/kubernetes/dlws/kubeadm.yaml' is already the dest of a config entry (at 24:5)" \
	"sed -i 's|dest: /etc/kubernetes/dlws/kube-flannel.yaml|dest: /etc/kubernetes/dlws/kubeadm.yaml|' $R"
case_ file_dest_is_config_dest $R \
	"recipes/master.recipe:33:41: error: '/etc/containerd/config.toml' is already the dest of a config entry (at 25:5)" \
	"sed -i 's|dest: /opt/bin/kubectl|dest: /etc/containerd/config.toml|' $R"
case_ file_dest_twice $R \
	"recipes/master.recipe:34:41: error: '/opt/bin/kubectl' is already the dest of a files entry (at 33:5)" \
	"sed -i '33p' $R"
case_ file_dest_below_config_dest $R \
	"recipes/master.recipe:33:41: error: '/etc/containerd/config.toml/kubectl' and '/etc/containerd/config.toml' (the dest of a config entry at 25:5) cannot both be files: one lies below the other" \
	"sed -i 's|dest: /opt/bin/kubectl|dest: /etc/containerd/config.toml/kubectl|' $R"

# install: and the outputs (a stand-in OS image: only its presence counts here).
with_image="sed -i 's|^  cmdline:|  image: ../out/base/initrd.img\n&|' $R"
case_ install_without_os_image $R \
	"recipes/master.recipe:41:10: error: 'install' needs 'base.image': the OS image to write to the disk" \
	"echo 'install: { device: auto, after: poweroff }' >>$R"
case_ install_device $R \
	"recipes/master.recipe:42:20: error: 'device' must be 'auto' or a path under /dev, not 'sda'" \
	"$with_image; echo 'install: { device: sda, after: poweroff }' >>$R"
case_ install_after $R \
	"recipes/master.recipe:42:33: error: 'after' must be poweroff, reboot or shell, not 'halt'" \
	"$with_image; echo 'install: { device: auto, after: halt }' >>$R"
case_ install_wipe_not_bool $R \
	"recipes/master.recipe:42:32: error: 'wipe' must be true or false" \
	"$with_image; echo 'install: { device: auto, wipe: yes please }' >>$R"
case_ outputs_empty $R \
	"recipes/master.recipe:37:10: error: 'outputs' lists nothing to build" \
	"sed -i '/^outputs:/,\$d' $R; echo 'outputs: {}' >>$R"
case_ iso_label $R \
	"recipes/master.recipe:40:56: error: invalid volume label 'master-1' (1 to 32 of A-Z, 0-9 and '_')" \
	"sed -i 's|max_size: 4G }|max_size: 4G, label: master-1 }|' $R"
case_ iso_max_size $R \
	"recipes/master.recipe:40:45: error: invalid size '4X' (expected e.g. 4G)" \
	"sed -i 's|max_size: 4G }|max_size: 4X }|' $R"
case_ iso_large_file_size $R \
	"recipes/master.recipe:40:66: error: invalid size 'lots' (expected e.g. 1M)" \
	"sed -i 's|max_size: 4G }|max_size: 4G, large_file_size: lots }|' $R"
case_ pxe_max_initrd $R \
	"recipes/master.recipe:39:40: error: invalid size '5Q' (expected e.g. 64M or 4G)" \
	"sed -i 's|pxe: { path: ../out/pxe }|pxe: { path: ../out/pxe, max_initrd: 5Q }|' $R"
case_ initrd_max_size $R \
	"recipes/master.recipe:38:51: error: invalid size '-1' (expected e.g. 64M or 4G)" \
	"sed -i 's|initrd: { path: ../out/master-initrd }|initrd: { path: ../out/master-initrd, max_size: -1 }|' $R"
case_ disk_without_os_image $R \
	"recipes/master.recipe:41:9: error: 'outputs.disk' needs 'base.image': the OS image the disks are made from" \
	"echo '  disk: { path: ../out/disks, format: raw, size: 8G }' >>$R"
case_ disk_format $R \
	"recipes/master.recipe:42:39: error: 'format' must be raw or qcow2, not 'vmdk'" \
	"$with_image; echo '  disk: { path: ../out/disks, format: vmdk, size: 8G }' >>$R"
case_ disk_size_not_sectors $R \
	"recipes/master.recipe:42:50: error: 'size' 1001 is not a whole number of 512-byte sectors" \
	"$with_image; echo '  disk: { path: ../out/disks, format: raw, size: 1001 }' >>$R"
case_ disk_size_invalid $R \
	"recipes/master.recipe:42:50: error: invalid size 'big' (expected e.g. 8G)" \
	"$with_image; echo '  disk: { path: ../out/disks, format: raw, size: big }' >>$R"

# sysext: (a made image of one pinned file, appended at line 41).
sysext() { # NAME VERSION DEST [EXTRA-KEY-LINE]
	printf 'sysext:\n  - name: %s\n    version: %s\n%b    files:\n      - { src: ../vendor/bin/kubectl, dest: %s, mode: "0755", sha256sums: ../vendor/SHA256SUMS }\n' \
		"$1" "$2" "${4:+    $4\n}" "$3" >>$R
}
case_ sysext_dest_not_merged $R \
	"recipes/master.recipe:45:45: error: 'dest' '/etc/kubectl' is not below /usr or /opt, the only trees systemd-sysext merges" \
	"sysext k8s v1 /etc/kubectl"
case_ sysext_invalid_name $R \
	"recipes/master.recipe:42:11: error: invalid image name 'k8s.raw' (up to 64 letters, digits, '.', '_' and '-', starting with a letter or digit, without '.raw')" \
	"sysext k8s.raw v1 /opt/bin/k"
case_ sysext_invalid_version $R \
	"recipes/master.recipe:43:14: error: invalid version 'v 1' (up to 64 letters, digits, '.', '_', '+' and '-', starting with a letter or digit)" \
	"sysext k8s '\"v 1\"' /opt/bin/k"
case_ sysext_architecture $R \
	"recipes/master.recipe:44:19: error: 'architecture' must be 'x86-64' or '_any' (the media boot x86-64 machines), not 'arm64'" \
	"sysext k8s v1 /opt/bin/k 'architecture: arm64'"
case_ sysext_listed_twice $R \
	"recipes/master.recipe:46:11: error: image 'k8s' is listed twice (first at 42:11): both would be /etc/extensions/k8s.raw" \
	"sysext k8s v1 /opt/bin/k && sed -i '\$a\  - name: k8s\n    version: v2\n    files:\n      - { src: ../vendor/bin/kubectl, dest: /opt/bin/k, mode: \"0755\", sha256sums: ../vendor/SHA256SUMS }' $R"
case_ sysext_src_and_files $R \
	"recipes/master.recipe:44:12: error: give either 'src' (a prebuilt image) or 'files' (an image to make), not both" \
	"printf 'sysext:\n  - name: k8s\n    src: ../vendor/bin/kubectl\n    files: []\n' >>$R"
case_ sysext_neither_src_nor_files $R \
	"recipes/master.recipe:42:5: error: a sysext entry needs 'src' (a prebuilt image) or 'files' (an image to make)" \
	"printf 'sysext:\n  - name: k8s\n    version: v1\n' >>$R"
case_ sysext_no_files $R \
	"recipes/master.recipe:44:12: error: 'files' lists no file: an image needs at least one" \
	"printf 'sysext:\n  - name: k8s\n    version: v1\n    files: []\n' >>$R"
case_ sysext_level_with_any_id $R \
	"recipes/master.recipe:45:19: error: 'sysext_level' is not compared when 'id' is '_any': leave it out" \
	"sysext k8s v1 /opt/bin/k 'id: _any\n    sysext_level: \"1.0\"'"

# Templates (builder/template.c), in the shipped cloud-config.
T=recipes/templates/cloud-config.yml
hostname_line() { sed -i "s/^hostname: {{ node.hostname | yaml }}/hostname: $1/" $T; }
case_ template_unclosed_tag $R \
	"recipes/templates/cloud-config.yml:11:11: error: unclosed '{{'" \
	"hostname_line '{{ node.hostname | yaml'"
case_ template_unknown_filter $R \
	"recipes/templates/cloud-config.yml:11:30: error: unknown filter 'yam' (did you mean 'yaml'?)" \
	"hostname_line '{{ node.hostname | yam }}'"
case_ template_if_never_closed $R \
	"recipes/templates/cloud-config.yml:10:1: error: 'if' at 10:1 is never closed" \
	"sed -i '12d' $T"
case_ template_second_else $R \
	"recipes/templates/cloud-config.yml:13:1: error: second 'else' for 'if' at 10:1" \
	"sed -i '11a {{ else }}\n{{ else }}' $T"
case_ template_unclosed_comment $R \
	"recipes/templates/cloud-config.yml:2:1: error: unclosed comment" \
	"sed -i '9s/ #}}//' $T"
case_ template_unterminated_string $R \
	"recipes/templates/cloud-config.yml:39:22: error: unterminated string" \
	"sed -i 's/{{ if recipe.role == \"etcd\" }}/{{ if recipe.role == \"etcd }}/' $T"
case_ template_unknown_escape $R \
	"recipes/templates/cloud-config.yml:39:25: error: unknown escape '\\q' in string (use \\n, \\t, \\\\ or \\\")" \
	"sed -i 's/{{ if recipe.role == \"etcd\" }}/{{ if recipe.role == \"et\\\\qcd\" }}/' $T"
case_ template_unexpected_character $R \
	"recipes/templates/cloud-config.yml:11:28: error: unexpected character ';'" \
	"hostname_line '{{ node.hostname ; }}'"
case_ template_index_out_of_range $R \
	"recipes/templates/cloud-config.yml:11:14: error: undefined name 'cluster.masters.5.hostname' ('cluster.masters' has 1 items)" \
	"hostname_line '{{ cluster.masters.5.hostname | yaml }}'"
case_ template_indent_without_number $R \
	"recipes/templates/cloud-config.yml:11:30: error: filter 'indent' needs a number of spaces from 0 to 256" \
	"hostname_line '{{ node.hostname | indent }}'"
case_ template_join_without_separator $R \
	"recipes/templates/cloud-config.yml:11:33: error: filter 'join' needs a separator string, as in join \", \"" \
	"hostname_line '{{ cluster.ssh_keys | join }}'"
case_ template_filter_needs_scalar $R \
	"recipes/templates/cloud-config.yml:11:32: error: filter 'base64' needs a scalar, but 'cluster.masters' is a list" \
	"hostname_line '{{ cluster.masters | base64 }}'"

# The rendered cloud-config against coreos-cloudinit's schema
# (builder/cloudconfig.c). Units: the etcd recipe's cloud-config has one.
E=recipes/etcd.recipe
case_ cloud_config_unknown_unit_key $E \
	"recipes/templates/cloud-config.yml:45:7: error: unknown key 'drop-ins' in coreos.units[0] (did you mean 'drop_ins'?)" \
	"sed -i 's/^      command: start\$/&\n      drop-ins: []/' $T"
case_ cloud_config_unit_without_type $E \
	"recipes/templates/cloud-config.yml:43:13: error: unit name 'etcd' in coreos.units[0] does not end in a unit type such as '.service'" \
	"sed -i 's/- name: etcd.service/- name: etcd/' $T"
case_ cloud_config_unit_command $E \
	"recipes/templates/cloud-config.yml:44:16: error: invalid command 'begin' in coreos.units[0] (expected start, stop, restart, reload, try-restart, reload-or-restart or reload-or-try-restart)" \
	"sed -i '0,/command: start/s//command: begin/' $T"
case_ cloud_config_not_bool $E \
	"recipes/templates/cloud-config.yml:45:15: error: 'coreos.units[0].enable' must be true or false, not 'maybe'" \
	"sed -i 's/^      command: start\$/&\n      enable: maybe/' $T"
case_ cloud_config_drop_in_name $E \
	"recipes/templates/cloud-config.yml:46:17: error: drop-in name '10-x' in coreos.units[0].drop_ins[0] does not end in '.conf' (systemd ignores it)" \
	"sed -i 's/^      command: start\$/&\n      drop_ins:\n        - name: 10-x\n          content: x/' $T"
case_ cloud_config_decimal_permissions $R \
	"recipes/templates/cloud-config.yml:21:18: error: permissions '420' in write_files[0] are read as octal, not decimal (did you mean '0644'?)" \
	"sed -i 's/permissions: \"0644\"/permissions: 420/' $T"
case_ cloud_config_invalid_permissions $R \
	"recipes/templates/cloud-config.yml:21:18: error: invalid permissions 'rw-r--r--' in write_files[0] (expected an octal string such as '0644')" \
	"sed -i 's/permissions: \"0644\"/permissions: \"rw-r--r--\"/' $T"
case_ cloud_config_relative_path $R \
	"recipes/templates/cloud-config.yml:20:11: error: path 'etc/hosts' in write_files[0] is not absolute" \
	"sed -i 's|- path: /etc/hosts|- path: etc/hosts|' $T"
case_ cloud_config_path_on_usr $R \
	"recipes/templates/cloud-config.yml:20:11: error: path '/usr/lib/hosts' in write_files[0] is on the read-only /usr" \
	"sed -i 's|- path: /etc/hosts|- path: /usr/lib/hosts|' $T"
case_ cloud_config_unknown_key $R \
	"recipes/templates/cloud-config.yml:11:1: error: unknown key 'hostnme' in cloud-config (did you mean 'hostname'?)" \
	"sed -i 's/^hostname:/hostnme:/' $T"
case_ cloud_config_bad_base64 $R \
	"recipes/templates/cloud-config.yml:23:14: error: content in write_files[0] is not valid base64 (encoding 'b64')" \
	"sed -i 's/^    content: |/    encoding: b64\n&/' $T"
case_ cloud_config_missing_path $R \
	"recipes/templates/cloud-config.yml:20:5: error: missing required key 'path' in write_files[0]" \
	"sed -i 's|  - path: /etc/hosts|  - permissions: \"0600\"|; /^    permissions: \"0644\"/d' $T"
case_ cloud_config_not_a_map $R \
	"recipes/templates/cloud-config.yml:2:1: error: a cloud-config must be a map, not a list" \
	"printf '#cloud-config\n- a\n' >$T"

# Other rendered configs: a flag the cluster's Kubernetes removed, a
# manifest that is not YAML.
case_ kubernetes_removed_flag recipes/worker.recipe \
	"recipes/templates/kubeadm-flags.env:3:23: error: '--network-plugin' was removed from kubelet in Kubernetes 1.24 (the cluster runs v1.34.2): remove it (the container runtime sets up CNI)" \
	"sed -i 's/--node-ip=/--network-plugin=cni &/' recipes/templates/kubeadm-flags.env"
case_ manifest_not_yaml $R \
	"recipes/templates/bootstrap-rbac.yaml: error: rendered config for '/etc/kubernetes/dlws/bootstrap-rbac.yaml' is not valid YAML: rendered line 3:9: while parsing a flow sequence did not find expected ',' or ']'" \
	"sed -i '6s/^kind: ClusterRoleBinding\$/kind: [ClusterRoleBinding/' recipes/templates/bootstrap-rbac.yaml"

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
