#!/usr/bin/env bash
# `render` (dry run, --set, --node) and `certs` (create, reuse, re-issue on
# SAN change, --list), checked with the openssl command as independent reader.
. "$(dirname "$0")/../lib/e2e.sh"
cd "$WORK"
make_project p
cd p

# render before any build: prints every node's configs, writes nothing.
out=$("$MK" render recipes/worker.recipe 2>"$WORK/err")
if [ $? = 0 ] && grep -q '^# --- dlws-worker1: /var/lib/flatcar-install/user_data' <<<"$out" &&
	grep -q '^# --- dlws-worker2: /etc/kubernetes/kubelet.env' <<<"$out" && [ ! -e keys ] && [ ! -e out/worker-initrd ]; then
	pass render_dry_run_writes_nothing
else
	fail render_dry_run_writes_nothing "$(cat "$WORK/err")"
fi
if grep -q 'PRIVATE KEY' <<<"$out"; then fail render_prints_no_secrets "a private key was printed"; else pass render_prints_no_secrets; fi
out=$("$MK" render --node dlws-worker2 --set values.hyperkube_image=registry.local/hyperkube:v9 recipes/worker.recipe 2>/dev/null)
if grep -q 'image: "registry.local/hyperkube:v9"' <<<"$out" && ! grep -q dlws-worker1: <<<"$out"; then
	pass render_set_and_node
else
	fail render_set_and_node "override or node filter not applied"
fi
"$MK" render --node nosuch recipes/worker.recipe >/dev/null 2>"$WORK/err"
if [ $? = 1 ] && grep -q "no node 'nosuch'" "$WORK/err"; then pass render_unknown_node; else fail render_unknown_node "$(cat "$WORK/err")"; fi

# certs: created once, then reused, nothing rewritten.
"$MK" certs recipes/master.recipe >"$WORK/out1" 2>&1
if grep -q '^created ca.pem$' "$WORK/out1" && grep -q '^created kubelet-dlws-worker2.pem$' "$WORK/out1"; then pass certs_created; else fail certs_created "$(cat "$WORK/out1")"; fi
bad_modes=$(find keys -name '*key*.pem' ! -perm 0600; find keys -name '*.kubeconfig' ! -perm 0600)
if [ -z "$bad_modes" ] && [ "$(stat -c %a keys)" = 700 ]; then pass keys_are_0600; else fail keys_are_0600 "$bad_modes"; fi
sha256sum keys/* >"$WORK/sums"
"$MK" certs recipes/master.recipe >"$WORK/out2" 2>&1
if ! grep -qv '^reused ' "$WORK/out2" && sha256sum --quiet -c "$WORK/sums"; then pass certs_second_run_changes_nothing; else fail certs_second_run_changes_nothing "$(grep -v '^reused' "$WORK/out2")"; fi

# Every certificate verifies against the CA (independent: openssl CLI).
bad=""
for c in keys/*.pem; do
	openssl x509 -noout -in "$c" 2>/dev/null || continue
	[ "$c" = keys/ca.pem ] && continue
	openssl verify -CAfile keys/ca.pem "$c" >/dev/null 2>&1 || bad="$bad $c"
done
if [ -z "$bad" ]; then pass openssl_verifies_all; else fail openssl_verifies_all "$bad"; fi
sans=$(openssl x509 -noout -ext subjectAltName -in keys/apiserver.pem)
if grep -q 'DNS:kubernetes.default.svc.cluster.local' <<<"$sans" && grep -q 'DNS:dlws-master' <<<"$sans" &&
	grep -q 'IP Address:10.3.0.1' <<<"$sans" && grep -q 'IP Address:192.168.255.10' <<<"$sans" && grep -q 'IP Address:127.0.0.1' <<<"$sans"; then
	pass apiserver_sans
else
	fail apiserver_sans "$sans"
fi

# A changed master IP re-issues the certificates that name it, and only those.
sed -i 's/192.168.255.10/192.168.255.100/' recipes/cluster.yaml
"$MK" certs recipes/master.recipe >"$WORK/out3" 2>&1
changed=$(grep -v '^reused ' "$WORK/out3" | sort)
expected=$'reissued apiserver.pem: SANs changed (added IP:192.168.255.100, removed IP:192.168.255.10)\nreissued kubelet-dlws-master.pem: SANs changed (added IP:192.168.255.100, removed IP:192.168.255.10)'
if [ "$changed" = "$expected" ]; then pass master_ip_change_reissues_apiserver; else fail master_ip_change_reissues_apiserver "$changed"; fi
if openssl x509 -noout -ext subjectAltName -in keys/apiserver.pem | grep -q 'IP Address:192.168.255.100'; then pass reissued_cert_has_new_ip; else fail reissued_cert_has_new_ip "SAN missing"; fi
if cmp -s <(grep ca-key "$WORK/sums" | cut -d' ' -f1) <(sha256sum keys/ca-key.pem | cut -d' ' -f1) &&
	cmp -s <(grep ' keys/apiserver-key.pem' "$WORK/sums" | cut -d' ' -f1) <(sha256sum keys/apiserver-key.pem | cut -d' ' -f1); then
	pass reissue_keeps_keys
else
	fail reissue_keeps_keys "the CA or apiserver key changed"
fi

list=$("$MK" certs --list recipes/master.recipe)
if grep -q '^apiserver.pem$' <<<"$list" && grep -q 'subject: CN=kube-apiserver' <<<"$list" && grep -qE 'expires: [0-9]{4}-[0-9]{2}-[0-9]{2} \((36[45]) days\)' <<<"$list" &&
	grep -q 'IP:192.168.255.100' <<<"$list"; then
	pass certs_list
else
	fail certs_list "$list"
fi

# ECDSA on request; the CA key only where a recipe explicitly asks.
mkdir -p ../q && cp -a recipes overlays out vendor ../q/ && cd ../q
sed -i 's|^pki: { dir: ../keys }|pki: { dir: ../keys, key_type: ecdsa, include_ca_key: true }|' recipes/master.recipe
"$MK" -q recipes/master.recipe
if openssl x509 -noout -text -in keys/apiserver.pem | grep -q 'id-ecPublicKey' && openssl x509 -noout -text -in keys/apiserver.pem | grep -q 'prime256v1'; then
	pass ecdsa_p256_selectable
else
	fail ecdsa_p256_selectable "apiserver key is not P-256"
fi
if bsdtar -xOf out/master-initrd/node-dlws-master.cpio.gz usr/share/oem/dlws/rootfs/etc/kubernetes/ssl/ca-key.pem | cmp -s - keys/ca-key.pem; then
	pass ca_key_only_when_asked
else
	fail ca_key_only_when_asked "include_ca_key: true did not ship the CA key"
fi
finish
