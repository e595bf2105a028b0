#!/usr/bin/env bash
# `render` (dry run, --set, --node, the public PKI values) and `certs`
# (create, reuse, re-issue on SAN change, --list, --rotate-token), checked
# with the openssl command as independent reader. Neither ever prints a
# private key, a kubeconfig's key data or the bootstrap token's secret.
# Recipes of its own (templates that name the PKI values), so that what it
# proves does not hang on the shipped templates.
. "$(dirname "$0")/../lib/e2e.sh"
cd "$WORK"
make_project p
cd p

cat >recipes/templates/pki-probe.env <<'EOF'
NODE={{ node.hostname }}
CA_HASH={{ pki.ca.hash }}
TOKEN_ID={{ pki.bootstrap_token.id }}
CA_CERT={{ pki.ca.cert }}
CA_PEM={{ pki.ca.cert_pem | base64 }}
{{ if recipe.role == "worker" }}
{{ if node.hostname }}
KUBELET_CONF={{ pki.kubelet_conf.conf }}
{{ end }}
BOOTSTRAP_CONF={{ pki.bootstrap_kubelet_conf.conf }}
PROXY_CONF={{ pki.kube_proxy_conf.conf }}
{{ else }}
SA_KEY={{ pki.sa.key }}
SA_PUB={{ pki.sa.pub }}
ADMIN_CONF={{ pki.admin_conf.conf }}
TOKEN_SECRET_FILE={{ pki.bootstrap_token_secret.conf }}
ETCD_CLIENT={{ pki.apiserver_etcd_client.cert }} {{ pki.apiserver_etcd_client.key }}
ETCD_CA={{ pki.etcd_ca.cert }}
{{ end }}
EXTRA={{ values.probe_extra }}
EOF
for role in master worker; do
	cat >recipes/probe-$role.recipe <<EOF
recipe: 1
name: probe-$role
role: $role
cluster: cluster.yaml
base: { kernel: ../out/base/vmlinuz, initrd: ../out/base/initrd.img }
pki: { dir: ../keys }
config:
  - { template: templates/pki-probe.env, dest: /etc/dlws/pki-probe.env }
values: { probe_extra: default }
outputs:
  initrd: { path: ../out/probe-$role }
EOF
done
W=recipes/probe-worker.recipe
M=recipes/probe-master.recipe

# render before any build: prints every node's configs, writes nothing.
out=$("$MK" render $W 2>"$WORK/err")
if [ $? = 0 ] && grep -q '^# --- dlws-worker1: /etc/dlws/pki-probe.env' <<<"$out" &&
	grep -q '^# --- dlws-worker2: /etc/dlws/pki-probe.env' <<<"$out" && [ ! -e keys ] && [ ! -e out/probe-worker ]; then
	pass render_dry_run_writes_nothing
else
	fail render_dry_run_writes_nothing "$(cat "$WORK/err")"
fi
if grep -q 'PRIVATE KEY\|client-key-data\|token-secret' <<<"$out"; then fail render_prints_no_secrets "a secret was printed"; else pass render_prints_no_secrets; fi
if grep -Eq '^TOKEN_ID=[a-z0-9]{6}$' <<<"$out" && grep -Eq '^CA_HASH=sha256:[0-9a-f]{64}$' <<<"$out" &&
	grep -qx 'KUBELET_CONF=/etc/kubernetes/kubelet.conf' <<<"$out" && grep -qx 'CA_CERT=/etc/kubernetes/pki/ca.crt' <<<"$out"; then
	pass render_public_pki_values
else
	fail render_public_pki_values "$out"
fi
out=$("$MK" render --node dlws-worker2 --set values.probe_extra=overridden $W 2>/dev/null)
if grep -qx 'EXTRA=overridden' <<<"$out" && ! grep -q dlws-worker1: <<<"$out"; then
	pass render_set_and_node
else
	fail render_set_and_node "override or node filter not applied"
fi
"$MK" render --node nosuch $W >/dev/null 2>"$WORK/err"
if [ $? = 1 ] && grep -q "no node 'nosuch'" "$WORK/err"; then pass render_unknown_node; else fail render_unknown_node "$(cat "$WORK/err")"; fi

# certs: created once, then reused, nothing rewritten.
"$MK" certs $M >"$WORK/out1" 2>&1
if grep -qx 'created ca.pem' "$WORK/out1" && grep -qx 'created etcd-ca.pem' "$WORK/out1" &&
	grep -qx 'created front-proxy-ca.pem' "$WORK/out1" && grep -qx 'created kubelet-dlws-worker2.pem' "$WORK/out1" &&
	grep -qx 'created kubelet-dlws-worker2.conf' "$WORK/out1" && grep -qx 'created bootstrap-token' "$WORK/out1" &&
	grep -qx 'created bootstrap-token.yaml' "$WORK/out1" && ! grep -q 'kubelet-dlws-etcd1' "$WORK/out1"; then
	pass certs_created
else
	fail certs_created "$(cat "$WORK/out1")"
fi
bad_modes=$(find keys -type f \( -name '*-key.pem' -o -name '*.conf' -o -name 'bootstrap-token*' \) ! -perm 0600)
if [ -z "$bad_modes" ] && [ "$(stat -c %a keys)" = 700 ]; then pass keys_are_0600; else fail keys_are_0600 "$bad_modes"; fi
sha256sum keys/* >"$WORK/sums"
"$MK" certs $M >"$WORK/out2" 2>&1
if ! grep -qv '^reused ' "$WORK/out2" && sha256sum --quiet -c "$WORK/sums"; then pass certs_second_run_changes_nothing; else fail certs_second_run_changes_nothing "$(grep -v '^reused' "$WORK/out2")"; fi

# Every certificate verifies against its own CA (independent: openssl CLI).
bad=""
for c in keys/*.pem; do
	openssl x509 -noout -in "$c" 2>/dev/null || continue
	case $c in
	keys/ca.pem | keys/etcd-ca.pem | keys/front-proxy-ca.pem) continue ;;
	keys/etcd-* | keys/apiserver-etcd-client.pem) ca=keys/etcd-ca.pem ;;
	keys/front-proxy-client.pem) ca=keys/front-proxy-ca.pem ;;
	*) ca=keys/ca.pem ;;
	esac
	openssl verify -CAfile $ca "$c" >/dev/null 2>&1 || bad="$bad $c"
done
if [ -z "$bad" ]; then pass openssl_verifies_all; else fail openssl_verifies_all "$bad"; fi
sans=$(openssl x509 -noout -ext subjectAltName -in keys/apiserver.pem)
if grep -q 'DNS:kubernetes.default.svc.cluster.local' <<<"$sans" && grep -q 'DNS:dlws-master' <<<"$sans" &&
	grep -q 'IP Address:10.3.0.1' <<<"$sans" && grep -q 'IP Address:192.168.255.10' <<<"$sans" && grep -q 'IP Address:127.0.0.1' <<<"$sans"; then
	pass apiserver_sans
else
	fail apiserver_sans "$sans"
fi

# What render shows once the PKI exists: kubeadm's CA hash as openssl
# computes it, the token's id; never its secret nor any key.
token=$(cat keys/bootstrap-token)
hash=sha256:$(openssl x509 -pubkey -noout -in keys/ca.pem | openssl pkey -pubin -outform der | sha256sum | cut -d' ' -f1)
out=$("$MK" render $M 2>/dev/null)$'\n'$("$MK" render $W 2>/dev/null)
if grep -qx "CA_HASH=$hash" <<<"$out" && grep -qx "TOKEN_ID=${token%%.*}" <<<"$out" &&
	grep -qx 'TOKEN_SECRET_FILE=/etc/kubernetes/dlws/bootstrap-token.yaml' <<<"$out" && grep -qx 'SA_PUB=/etc/kubernetes/pki/sa.pub' <<<"$out"; then
	pass render_ca_hash_and_token_id
else
	fail render_ca_hash_and_token_id "want CA_HASH=$hash TOKEN_ID=${token%%.*}: $(grep -E 'CA_HASH|TOKEN' <<<"$out" | sort -u)"
fi
leaks=""
grep -qF "${token#*.}" <<<"$out" && leaks="$leaks token-secret"
grep -q 'PRIVATE KEY' <<<"$out" && leaks="$leaks private-key"
for kc in keys/admin.conf keys/kubelet-dlws-worker1.conf keys/super-admin.conf; do
	keydata=$(sed -n 's/^ *client-key-data: //p' "$kc")
	[ -n "$keydata" ] && grep -qF "${keydata:0:40}" <<<"$out" && leaks="$leaks $kc"
	# nor the key itself in any encoding render has: PEM lines, base64 of PEM
	line=$(base64 -d <<<"$keydata" | sed -n 2p)
	[ -n "$line" ] && grep -qF "$line" <<<"$out" && leaks="$leaks $kc-pem"
done
if [ -z "$leaks" ]; then pass render_never_shows_secrets; else fail render_never_shows_secrets "$leaks"; fi

# A changed master IP re-issues the apiserver certificate, and only it;
# the kubeconfigs follow the server address.
sed -i "s/ip: 192.168.255.10,/ip: 192.168.255.100,/" recipes/cluster.yaml
"$MK" certs $M >"$WORK/out3" 2>&1
changed=$(grep -v '^reused ' "$WORK/out3" | sort)
expected=$(printf '%s\n' 'reissued apiserver.pem: SANs changed (added IP:192.168.255.100, removed IP:192.168.255.10)' \
	'reissued admin.conf: server changed' 'reissued bootstrap-kubelet.conf: server changed' \
	'reissued controller-manager.conf: server changed' 'reissued kube-proxy.conf: server changed' \
	'reissued kubelet-dlws-master.conf: server changed' 'reissued kubelet-dlws-worker1.conf: server changed' \
	'reissued kubelet-dlws-worker2.conf: server changed' 'reissued scheduler.conf: server changed' \
	'reissued super-admin.conf: server changed' | sort)
if [ "$changed" = "$expected" ]; then pass master_ip_change_reissues_apiserver; else fail master_ip_change_reissues_apiserver "$changed"; fi
if openssl x509 -noout -ext subjectAltName -in keys/apiserver.pem | grep -q 'IP Address:192.168.255.100'; then pass reissued_cert_has_new_ip; else fail reissued_cert_has_new_ip "SAN missing"; fi
if cmp -s <(grep ' keys/ca-key.pem' "$WORK/sums" | cut -d' ' -f1) <(sha256sum keys/ca-key.pem | cut -d' ' -f1) &&
	cmp -s <(grep ' keys/apiserver-key.pem' "$WORK/sums" | cut -d' ' -f1) <(sha256sum keys/apiserver-key.pem | cut -d' ' -f1) &&
	[ "$(cat keys/bootstrap-token)" = "$token" ]; then
	pass reissue_keeps_keys_and_token
else
	fail reissue_keeps_keys_and_token "the CA or apiserver key or the token changed"
fi

list=$("$MK" certs --list $M 2>&1)
if grep -q '^apiserver.pem$' <<<"$list" && grep -q 'subject: CN=kube-apiserver' <<<"$list" && grep -qE 'expires: [0-9]{4}-[0-9]{2}-[0-9]{2} \((36[45]) days\)' <<<"$list" &&
	grep -q 'IP:192.168.255.100' <<<"$list" && grep -q 'issuer:  CN=etcd-ca' <<<"$list"; then
	pass certs_list
else
	fail certs_list "$list"
fi
if grep -qx 'bootstrap-token' <<<"$list" && grep -qx "  id:      ${token%%.*}" <<<"$list" && grep -qx '  secret:  (hidden)' <<<"$list" &&
	grep -qx '  expires: never' <<<"$list" && grep -qx '  used in: bootstrap-token.yaml, bootstrap-kubelet.conf' <<<"$list" &&
	grep -q 'whoever holds a worker' <<<"$list" && ! grep -qF "${token#*.}" <<<"$list" && ! grep -q 'PRIVATE KEY' <<<"$list"; then
	pass certs_list_token_without_secret
else
	fail certs_list_token_without_secret "$(sed -n '/^bootstrap-token/,$p' <<<"$list")"
fi
# The same for scripts: --json, read by python3 and held against openssl.
"$MK" certs --list --json $M >"$WORK/certs.json" 2>"$WORK/certs.err"
want_sans=$(openssl x509 -noout -ext subjectAltName -in keys/apiserver.pem | tail -n +2 | tr -d ' ' | sed 's/IPAddress:/IP:/g')
if python3 - "$WORK/certs.json" "${token%%.*}" "$want_sans" <<'PY' && ! grep -qF "${token#*.}" "$WORK/certs.json"
import json, sys
m = json.load(open(sys.argv[1]))
c = {x["file"]: x for x in m["certificates"]}
a = c["apiserver.pem"]
assert a["subject"] == "CN=kube-apiserver" and a["issuer"] == "CN=kube-ca", a
assert ",".join(a["sans"]) == sys.argv[3], (a["sans"], sys.argv[3])
assert 364 <= a["days_left"] <= 365 and a["not_after"].endswith("Z"), a
assert m["token"]["id"] == sys.argv[2] and m["token"]["used_in"] == ["bootstrap-token.yaml", "bootstrap-kubelet.conf"], m["token"]
assert m["pki_dir"].endswith("keys"), m["pki_dir"]
PY
then
	pass certs_list_json
else
	fail certs_list_json "$(head -c 600 "$WORK/certs.json") $(cat "$WORK/certs.err")"
fi
check certs_list_json_documented_shape python3 "$ROOT/tests/lib/check-json-shape.py" "$ROOT/man/dlws-mkimage.1" Certificates: "$WORK/certs.json"

# --rotate-token: a new token, and what carries it rewritten; nothing else.
"$MK" certs --rotate-token $M >"$WORK/out4" 2>&1
new=$(cat keys/bootstrap-token)
changed=$(grep -v '^reused ' "$WORK/out4" | sort)
expected=$'reissued bootstrap-kubelet.conf: token changed\nreissued bootstrap-token.yaml: token changed\nreissued bootstrap-token: rotated'
if [ "$changed" = "$expected" ] && [ "$new" != "$token" ] && grep -Eqx '[a-z0-9]{6}\.[a-z0-9]{16}' keys/bootstrap-token &&
	grep -qF "${new#*.}" keys/bootstrap-token.yaml && grep -qF "$new" keys/bootstrap-kubelet.conf &&
	! grep -qrF "${token#*.}" keys/; then
	pass rotate_token
else
	fail rotate_token "$changed"
fi
if ! grep -qF "${new#*.}" "$WORK/out4"; then pass rotate_token_prints_no_secret; else fail rotate_token_prints_no_secret "the new secret was printed"; fi
"$MK" certs --list --rotate-token $M >/dev/null 2>&1
[ $? = 2 ] && pass list_and_rotate_is_usage_error || fail list_and_rotate_is_usage_error "not exit 2"

# A PKI from before kubeadm's layout: its admin.kubeconfig (a system:masters
# credential) goes, admin.conf replaces it.
printf 'apiVersion: v1\n' >keys/admin.kubeconfig
"$MK" certs $M >"$WORK/out5" 2>&1
if grep -qx 'removed admin.kubeconfig: replaced by admin.conf' "$WORK/out5" && [ ! -e keys/admin.kubeconfig ]; then
	pass old_admin_kubeconfig_removed
else
	fail old_admin_kubeconfig_removed "$(grep -v '^reused' "$WORK/out5")"
fi

# ECDSA on request; the CA keys only where a master recipe explicitly asks.
mkdir -p ../q && cp -a recipes overlays out vendor ../q/ && cd ../q
sed -i 's|^pki: { dir: ../keys }|pki: { dir: ../keys, key_type: ecdsa, include_ca_key: true }|' $M $W
if "$MK" -q $M $W 2>"$WORK/err"; then
	if openssl x509 -noout -text -in keys/apiserver.pem | grep -q 'id-ecPublicKey' && openssl x509 -noout -text -in keys/apiserver.pem | grep -q 'prime256v1'; then
		pass ecdsa_p256_selectable
	else
		fail ecdsa_p256_selectable "apiserver key is not P-256"
	fi
	seg=out/probe-master/node-dlws-master.cpio.zst
	if bsdtar -xOf $seg usr/share/oem/dlws/rootfs/etc/kubernetes/pki/ca.key | cmp -s - keys/ca-key.pem &&
		bsdtar -xOf $seg usr/share/oem/dlws/rootfs/etc/kubernetes/pki/front-proxy-ca.key | cmp -s - keys/front-proxy-ca-key.pem &&
		! bsdtar -tf out/probe-worker/node-dlws-worker1.cpio.zst | grep -q '\.key$\|ca-key'; then
		pass ca_key_only_to_masters_when_asked
	else
		fail ca_key_only_to_masters_when_asked "include_ca_key: true did not ship the CA keys to the master, or shipped one to a worker"
	fi
else
	fail ecdsa_p256_selectable "build failed: $(cat "$WORK/err")"
fi
finish
