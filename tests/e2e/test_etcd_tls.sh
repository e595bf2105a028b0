#!/usr/bin/env bash
# etcd behind its own CA, proven with the real etcd 3.4 and etcdctl from
# Debian (vendor/bin): two etcd nodes run with their payload's own etcd.env
# and certificates, each in a network namespace on its node's address. The
# apiserver's etcd client certificate (from the master's payload) writes
# and reads; a worker's kubelet identity (from its kubelet.conf) and the
# admin identity are refused, and so is plain http; the members peer with
# their peer certificates. The namespaces and etcd go away at the end,
# whatever happens.
. "$(dirname "$0")/../lib/e2e.sh"

ETCD=$ROOT/vendor/bin/etcd
ETCDCTL=$ROOT/vendor/bin/etcdctl
KUBECTL=$ROOT/vendor/bin/kubectl
for b in "$ETCD" "$ETCDCTL" "$KUBECTL"; do
	if [ ! -x "$b" ]; then
		skip test_etcd_tls "no '$b' (run 'make vendor')"
		finish
	fi
done
if [ "$(id -u)" != 0 ] || ! ip netns list >/dev/null 2>&1; then
	skip test_etcd_tls "network namespaces need root and iproute2's 'ip netns'"
	finish
fi

IP1=192.168.255.11 IP2=192.168.255.12
NS1=dlws-etcd1-$$ NS2=dlws-etcd2-$$
PIDS=()
cleanup() {
	local p
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
	ip netns del "$NS1" 2>/dev/null
	ip netns del "$NS2" 2>/dev/null
	[ "$KEEP_WORK" = 1 ] || rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

cd "$WORK"
make_project p
cd p
# A second etcd node, and only what this test proves: the etcd recipe's
# etcd.env and PKI (not the cloud-config), the master's and a worker's PKI
# from recipes without templates, initrd segments only.
sed -i "/hostname: dlws-etcd1/{p;s/dlws-etcd1/dlws-etcd2/;s/$IP1/$IP2/;s/11:01/11:02/}" recipes/cluster.yaml
sed -i '/templates\/cloud-config.yml/d; /^  pxe:/d; /^  iso:/d' recipes/etcd.recipe
for role in master worker; do
	cat >recipes/pki-$role.recipe <<EOF
recipe: 1
name: pki-$role
role: $role
cluster: cluster.yaml
base: { kernel: ../out/base/vmlinuz, initrd: ../out/base/initrd.img }
pki: { dir: ../keys }
outputs:
  initrd: { path: ../out/pki-$role }
EOF
done
if ! grep -q "hostname: dlws-etcd2" recipes/cluster.yaml ||
	! "$MK" -q recipes/etcd.recipe recipes/pki-master.recipe recipes/pki-worker.recipe 2>"$WORK/err"; then
	fail setup "cannot build the fixture: $(cat "$WORK/err")"
	finish
fi

# Each node's payload as its root would hold it.
rootfs=usr/share/oem/dlws/rootfs
node_root() { # segment dir
	mkdir -p "$2" && bsdtar -xf "$1" -C "$2" && echo "$2/$rootfs"
}
E1=$(node_root out/etcd-initrd/node-dlws-etcd1.cpio.zst "$WORK/etcd1")
E2=$(node_root out/etcd-initrd/node-dlws-etcd2.cpio.zst "$WORK/etcd2")
M=$(node_root out/pki-master/node-dlws-master.cpio.zst "$WORK/master")
W=$(node_root out/pki-worker/node-dlws-worker1.cpio.zst "$WORK/worker1")

env1=$E1/etc/etcd/etcd.env
if grep -qx 'ETCD_CLIENT_CERT_AUTH=true' "$env1" && grep -qx 'ETCD_PEER_CLIENT_CERT_AUTH=true' "$env1" &&
	grep -qx 'ETCD_TRUSTED_CA_FILE=/etc/kubernetes/pki/etcd/ca.crt' "$env1" &&
	grep -qx 'ETCD_PEER_TRUSTED_CA_FILE=/etc/kubernetes/pki/etcd/ca.crt' "$env1" &&
	grep -qx "ETCD_LISTEN_CLIENT_URLS=https://$IP1:2379,https://127.0.0.1:2379" "$env1" &&
	! grep -q 'ETCD_ENABLE_V2' "$env1" && ! grep -q 'http://' "$env1"; then
	pass etcd_env_trusts_the_etcd_ca_only
else
	fail etcd_env_trusts_the_etcd_ca_only "$(cat "$env1")"
fi
# the etcd node holds the etcd CA certificate and its own pairs, no kube-ca, no kubelet
have=$(cd "$E1" && find etc -type f | sort | paste -sd' ' -)
want="etc/etcd/etcd.env etc/kubernetes/pki/etcd/ca.crt etc/kubernetes/pki/etcd/peer.crt etc/kubernetes/pki/etcd/peer.key etc/kubernetes/pki/etcd/server.crt etc/kubernetes/pki/etcd/server.key"
if [ "$have" = "$want" ] && cmp -s "$E1/etc/kubernetes/pki/etcd/ca.crt" keys/etcd-ca.pem; then
	pass etcd_node_gets_etcd_pki_only
else
	fail etcd_node_gets_etcd_pki_only "$have"
fi

# The client identities under test, as the nodes hold them.
ID=$WORK/id
mkdir -p "$ID"
from_kubeconfig() { # kubeconfig name
	"$KUBECTL" config view --raw --kubeconfig "$1" -o jsonpath='{.users[0].user.client-certificate-data}' | base64 -d >"$ID/$2.crt" &&
		"$KUBECTL" config view --raw --kubeconfig "$1" -o jsonpath='{.users[0].user.client-key-data}' | base64 -d >"$ID/$2.key" &&
		openssl x509 -noout -in "$ID/$2.crt" 2>/dev/null
}
if from_kubeconfig "$W/etc/kubernetes/kubelet.conf" kubelet && from_kubeconfig "$M/etc/kubernetes/admin.conf" admin &&
	[ "$(openssl x509 -noout -subject -nameopt RFC2253 -in "$ID/kubelet.crt")" = "subject=CN=system:node:dlws-worker1,O=system:nodes" ]; then
	pass identities_from_kubeconfigs
else
	fail identities_from_kubeconfigs "cannot read the worker's kubelet.conf or the master's admin.conf"
fi
CA=$M/etc/kubernetes/pki/etcd/ca.crt
APICERT=$M/etc/kubernetes/pki/apiserver-etcd-client.crt
APIKEY=$M/etc/kubernetes/pki/apiserver-etcd-client.key

# Two namespaces joined by a veth pair: each etcd listens on its node's
# address and on its own 127.0.0.1, as on the node.
ip netns add "$NS1" && ip netns add "$NS2" &&
	ip link add "dl$$a" netns "$NS1" type veth peer name "dl$$b" netns "$NS2" &&
	ip -n "$NS1" addr add "$IP1/24" dev "dl$$a" && ip -n "$NS2" addr add "$IP2/24" dev "dl$$b" &&
	ip -n "$NS1" link set lo up && ip -n "$NS2" link set lo up &&
	ip -n "$NS1" link set "dl$$a" up && ip -n "$NS2" link set "dl$$b" up
if [ $? != 0 ]; then
	fail setup "cannot make the network namespaces"
	finish
fi

# etcd with exactly the ETCD_* variables of the node's etcd.env, its paths
# taken into the extracted root.
start_etcd() { # ns root
	local vars
	mapfile -t vars < <(grep '^ETCD_' "$2/etc/etcd/etcd.env" | sed "s|=/|=$2/|")
	ip netns exec "$1" env -i PATH=/usr/bin:/bin "${vars[@]}" "$ETCD" >"$2.etcd.log" 2>&1 &
	PIDS+=($!)
}
# etcdctl as a client with that identity; a refused one retries until its
# deadline, so refusals are tried with a short one (QUICK=1).
ctl() { # ns endpoint cert key args...
	local ns=$1 ep=$2 cert=$3 key=$4 wait=3s
	shift 4
	[ "${QUICK:-0}" = 1 ] && wait=1s
	ip netns exec "$ns" env ETCDCTL_API=3 "$ETCDCTL" --endpoints "$ep" --cacert "$CA" --cert "$cert" --key "$key" \
		--dial-timeout "$wait" --command-timeout "$wait" "$@"
}
# How often etcd 1 refused a connection for that reason so far.
refusals() { grep -c "rejected connection .*$1" "$E1.etcd.log"; }

t0=$(date +%s)
start_etcd "$NS1" "$E1"
start_etcd "$NS2" "$E2"
healthy=0
for _ in $(seq 50); do
	if ctl "$NS1" "https://$IP1:2379,https://$IP2:2379" "$APICERT" "$APIKEY" endpoint health >/dev/null 2>&1; then
		healthy=1
		break
	fi
	sleep 0.2
done
if [ $healthy = 1 ]; then
	pass "etcd_cluster_up_with_payload_config ($(($(date +%s) - t0))s)"
else
	fail etcd_cluster_up_with_payload_config "not healthy within 10s: $(tail -5 "$E1.etcd.log")"
	finish
fi

members=$(ctl "$NS1" "https://$IP1:2379" "$APICERT" "$APIKEY" member list 2>&1)
if [ "$(grep -c ', started, ' <<<"$members")" = 2 ] && grep -q ", started, dlws-etcd1, https://$IP1:2380, " <<<"$members" &&
	grep -q ", started, dlws-etcd2, https://$IP2:2380, " <<<"$members"; then
	pass two_members_peer_with_their_certificates
else
	fail two_members_peer_with_their_certificates "$members"
fi

value="written-$$"
if ctl "$NS1" "https://$IP1:2379" "$APICERT" "$APIKEY" put /dlws/probe "$value" >/dev/null 2>&1 &&
	[ "$(ctl "$NS1" "https://$IP2:2379" "$APICERT" "$APIKEY" get --print-value-only /dlws/probe 2>/dev/null)" = "$value" ]; then
	pass apiserver_etcd_client_puts_and_gets
else
	fail apiserver_etcd_client_puts_and_gets "$(ctl "$NS1" "https://$IP1:2379" "$APICERT" "$APIKEY" put /dlws/probe "$value" 2>&1)"
fi
if [ "$(ctl "$NS1" "https://127.0.0.1:2379" "$APICERT" "$APIKEY" get --print-value-only /dlws/probe 2>/dev/null)" = "$value" ]; then
	pass etcd_serves_on_loopback
else
	fail etcd_serves_on_loopback "no answer on https://127.0.0.1:2379"
fi

# Identities of kube-ca: not one request gets through, read or write, and
# etcd says why: the etcd CA did not sign them.
unknown_ca="x509: certificate signed by unknown authority"
for who in kubelet admin; do
	before=$(refusals "$unknown_ca")
	out=$(QUICK=1 ctl "$NS1" "https://$IP1:2379" "$ID/$who.crt" "$ID/$who.key" put /dlws/probe "from-$who" 2>&1)
	rc=$?
	read_out=$(QUICK=1 ctl "$NS1" "https://$IP1:2379" "$ID/$who.crt" "$ID/$who.key" get /dlws/probe 2>&1)
	read_rc=$?
	now=$(ctl "$NS1" "https://$IP1:2379" "$APICERT" "$APIKEY" get --print-value-only /dlws/probe 2>/dev/null)
	if [ $rc != 0 ] && [ $read_rc != 0 ] && [ "$now" = "$value" ] && ! grep -q "$value" <<<"$read_out" &&
		[ "$(refusals "$unknown_ca")" -gt "$before" ]; then
		pass "${who}_identity_refused"
	else
		fail "${who}_identity_refused" "put rc $rc, get rc $read_rc, value now '$now': $out"
	fi
done

before=$(refusals "first record does not look like a TLS handshake")
out=$(ip netns exec "$NS1" env ETCDCTL_API=3 "$ETCDCTL" --endpoints "http://$IP1:2379" --dial-timeout 1s --command-timeout 1s \
	put /dlws/probe plain 2>&1)
rc=$?
now=$(ctl "$NS1" "https://$IP1:2379" "$APICERT" "$APIKEY" get --print-value-only /dlws/probe 2>/dev/null)
if [ $rc != 0 ] && [ "$now" = "$value" ] && [ "$(refusals "first record does not look like a TLS handshake")" -gt "$before" ]; then
	pass plain_http_refused
else
	fail plain_http_refused "rc $rc, value now '$now': $out"
fi

# The v2 API is off (etcd 3.4's default, which etcd.env keeps).
code=$(ip netns exec "$NS1" curl -s -o /dev/null -w '%{http_code}' --max-time 3 --cacert "$CA" --cert "$APICERT" --key "$APIKEY" \
	"https://$IP1:2379/v2/keys/" 2>/dev/null)
if [ "$code" = 404 ]; then pass v2_api_off; else fail v2_api_off "GET /v2/keys/ answered $code"; fi

finish
