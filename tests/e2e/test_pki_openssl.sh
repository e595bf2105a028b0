#!/usr/bin/env bash
# The PKI that pki.c makes, read back with an independent tool: the openssl
# CLI verifies chains, purposes, hostnames/IPs, extensions, key/cert pairs,
# validity periods and file modes, for RSA and ECDSA keys.
#
#   tests/e2e/test_pki_openssl.sh build/tests/test_pki
#
# test_pki with a DIR argument makes the fixed test cluster's PKI there:
# master m1 10.0.0.4, etcd e1 10.0.0.10, workers w1 10.0.0.21, w2 10.0.0.22,
# service IP 10.3.0.1, domain cluster.local.
set -u

bin=${1:-${DLWS_UNIT_DIR:-build/tests}/test_pki}
failed=0
pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; failed=1; }

if ! command -v openssl >/dev/null; then
	echo "SKIP test_pki_openssl: the openssl command is not installed"
	exit 0
fi
if [ ! -x "$bin" ]; then
	echo "FAIL setup: '$bin' is not an executable (build it with 'make $bin')"
	exit 1
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# name  subject(RFC2253)  EKU  SANs (sorted, comma-separated)
certs=(
	"apiserver|CN=kube-apiserver|server,client|DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,DNS:m1,IP Address:10.0.0.4,IP Address:10.3.0.1,IP Address:127.0.0.1"
	"apiserver-etcd-client|CN=kube-apiserver-etcd-client|client|"
	"etcd-e1-server|CN=e1|server,client|DNS:e1,DNS:localhost,IP Address:10.0.0.10,IP Address:127.0.0.1"
	"etcd-e1-peer|CN=e1|server,client|DNS:e1,IP Address:10.0.0.10"
	"kubelet-m1|CN=system:node:m1,O=system:nodes|server,client|DNS:m1,IP Address:10.0.0.4"
	"kubelet-e1|CN=system:node:e1,O=system:nodes|server,client|DNS:e1,IP Address:10.0.0.10"
	"kubelet-w1|CN=system:node:w1,O=system:nodes|server,client|DNS:w1,IP Address:10.0.0.21"
	"kubelet-w2|CN=system:node:w2,O=system:nodes|server,client|DNS:w2,IP Address:10.0.0.22"
	"admin|CN=admin,O=system:masters|client|"
)

# Prints the text of one extension's value (the lines after its header).
ext_text() { # cert extension-name
	openssl x509 -noout -ext "$2" -in "$1" 2>/dev/null | tail -n +2 | sed 's/^ *//'
}
ext_critical() { # cert extension-name
	openssl x509 -noout -ext "$2" -in "$1" 2>/dev/null | head -1 | grep -q critical
}
sorted_sans() {
	ext_text "$1" subjectAltName | tr ',' '\n' | sed 's/^ *//' | grep -v '^$' | sort | paste -sd, -
}
epoch() { date -u -d "$1" +%s; }
validity_seconds() {
	local nb na
	nb=$(openssl x509 -noout -startdate -in "$1" | cut -d= -f2)
	na=$(openssl x509 -noout -enddate -in "$1" | cut -d= -f2)
	echo $(($(epoch "$na") - $(epoch "$nb")))
}
pub_of_cert() { openssl x509 -noout -pubkey -in "$1"; }
pub_of_key() { openssl pkey -pubout -in "$1" 2>/dev/null; }

check_dir() { # dir keytype
	local dir=$1 type=$2 t="[$2]"
	local out
	out=$("$bin" "$dir" "$type" 2>&1) || { fail "$t make" "$out"; return; }
	[ "$(echo "$out" | grep -c '^created ')" = 11 ] && pass "$t all 11 created" || fail "$t all created" "$out"

	[ "$(stat -c %a "$dir")" = 700 ] && pass "$t dir mode 0700" || fail "$t dir mode" "$(stat -c %a "$dir")"
	local bad=""
	for k in "$dir"/*-key.pem "$dir"/admin.kubeconfig; do
		[ "$(stat -c %a "$k")" = 600 ] || bad="$bad $(basename "$k"):$(stat -c %a "$k")"
	done
	[ -z "$bad" ] && pass "$t keys and kubeconfig 0600" || fail "$t key modes" "$bad"

	# CA
	local ca=$dir/ca.pem
	[ "$(openssl x509 -noout -subject -nameopt RFC2253 -in "$ca")" = "subject=CN=kube-ca" ] \
		&& pass "$t ca subject" || fail "$t ca subject" "$(openssl x509 -noout -subject -in "$ca")"
	openssl verify -CAfile "$ca" "$ca" >/dev/null 2>&1 && pass "$t ca self-signed" || fail "$t ca self-signed" "openssl verify failed"
	ext_critical "$ca" basicConstraints && [ "$(ext_text "$ca" basicConstraints)" = "CA:TRUE" ] \
		&& pass "$t ca basicConstraints critical CA:TRUE" || fail "$t ca basicConstraints" "$(ext_text "$ca" basicConstraints)"
	ext_critical "$ca" keyUsage && ext_text "$ca" keyUsage | grep -q "Certificate Sign, CRL Sign" \
		&& pass "$t ca keyUsage" || fail "$t ca keyUsage" "$(ext_text "$ca" keyUsage)"
	local ca_ski
	ca_ski=$(ext_text "$ca" subjectKeyIdentifier)
	[ -n "$ca_ski" ] && pass "$t ca SKI" || fail "$t ca SKI" "missing"
	local v
	v=$(validity_seconds "$ca")
	[ "$v" = $((3650 * 86400 + 3600)) ] && pass "$t ca validity 10 years" || fail "$t ca validity" "$v seconds"
	[ "$(pub_of_cert "$ca")" = "$(pub_of_key "$dir/ca-key.pem")" ] && pass "$t ca key matches" || fail "$t ca key" "does not match"

	local want_ku="Digital Signature, Key Encipherment"
	[ "$type" = ecdsa ] && want_ku="Digital Signature"
	local entry name subject eku sans c
	for entry in "${certs[@]}"; do
		IFS='|' read -r name subject eku sans <<<"$entry"
		c=$dir/$name.pem
		local n="$t $name"
		local errs=""
		openssl verify -CAfile "$ca" "$c" >/dev/null 2>&1 || errs="$errs; does not verify against ca.pem"
		[ "$(openssl x509 -noout -subject -nameopt RFC2253 -in "$c")" = "subject=$subject" ] \
			|| errs="$errs; subject $(openssl x509 -noout -subject -nameopt RFC2253 -in "$c")"
		[ "$(sorted_sans "$c")" = "$sans" ] || errs="$errs; SANs '$(sorted_sans "$c")'"
		{ ext_critical "$c" basicConstraints && [ "$(ext_text "$c" basicConstraints)" = "CA:FALSE" ]; } \
			|| errs="$errs; basicConstraints '$(ext_text "$c" basicConstraints)'"
		{ ext_critical "$c" keyUsage && [ "$(ext_text "$c" keyUsage)" = "$want_ku" ]; } \
			|| errs="$errs; keyUsage '$(ext_text "$c" keyUsage)'"
		local want_eku="TLS Web Client Authentication"
		[ "$eku" = "server,client" ] && want_eku="TLS Web Server Authentication, TLS Web Client Authentication"
		[ "$(ext_text "$c" extendedKeyUsage)" = "$want_eku" ] || errs="$errs; EKU '$(ext_text "$c" extendedKeyUsage)'"
		[ -n "$(ext_text "$c" subjectKeyIdentifier)" ] || errs="$errs; no SKI"
		ext_text "$c" authorityKeyIdentifier | grep -q "$ca_ski" || errs="$errs; AKI is not the CA's SKI"
		[ "$(pub_of_cert "$c")" = "$(pub_of_key "$dir/$name-key.pem")" ] || errs="$errs; key does not match"
		v=$(validity_seconds "$c")
		[ "$v" = $((365 * 86400 + 3600)) ] || errs="$errs; validity $v seconds"
		openssl x509 -noout -text -in "$c" | grep -q "Signature Algorithm: .*\(sha256WithRSAEncryption\|ecdsa-with-SHA256\)" \
			|| errs="$errs; not signed with SHA-256"
		# a positive serial of at most 20 octets (159 random bits)
		local serial
		serial=$(openssl x509 -noout -serial -in "$c" | cut -d= -f2)
		{ [ ${#serial} -le 40 ] && [ ${#serial} -ge 38 ] && [[ $serial != [89A-F]* || ${#serial} -lt 40 ]]; } \
			|| errs="$errs; serial $serial"
		# what TLS peers check: purpose, and names for servers
		openssl verify -CAfile "$ca" -purpose sslclient "$c" >/dev/null 2>&1 || errs="$errs; not usable as TLS client"
		if [ "$eku" = "server,client" ]; then
			openssl verify -CAfile "$ca" -purpose sslserver "$c" >/dev/null 2>&1 || errs="$errs; not usable as TLS server"
		elif openssl verify -CAfile "$ca" -purpose sslserver "$c" >/dev/null 2>&1; then
			errs="$errs; usable as TLS server but should not be"
		fi
		[ -z "$errs" ] && pass "$n" || fail "$n" "${errs#; }"
	done

	local key_type_errs=""
	for k in "$dir"/*-key.pem; do
		if [ "$type" = ecdsa ]; then
			openssl pkey -noout -text -in "$k" 2>/dev/null | grep -q "prime256v1" || key_type_errs="$key_type_errs $(basename "$k")"
		else
			openssl pkey -noout -text -in "$k" 2>/dev/null | grep -q "Private-Key: (2048 bit" || key_type_errs="$key_type_errs $(basename "$k")"
		fi
	done
	[ -z "$key_type_errs" ] && pass "$t key type of every key" || fail "$t key type" "$key_type_errs"
	local keys_unique
	keys_unique=$(for k in "$dir"/*-key.pem; do pub_of_key "$k" | sha256sum; done | sort | uniq -d)
	[ -z "$keys_unique" ] && pass "$t no key shared" || fail "$t no key shared" "duplicate keys"

	openssl verify -CAfile "$ca" -verify_hostname kubernetes.default.svc.cluster.local "$dir/apiserver.pem" >/dev/null 2>&1 \
		&& openssl verify -CAfile "$ca" -verify_ip 10.3.0.1 "$dir/apiserver.pem" >/dev/null 2>&1 \
		&& openssl verify -CAfile "$ca" -verify_ip 10.0.0.4 "$dir/apiserver.pem" >/dev/null 2>&1 \
		&& pass "$t apiserver hostname and IPs verify" || fail "$t apiserver names" "openssl verify -verify_hostname/-verify_ip failed"
	if openssl verify -CAfile "$ca" -verify_ip 10.0.0.21 "$dir/apiserver.pem" >/dev/null 2>&1; then
		fail "$t apiserver foreign IP" "a worker IP verifies"
	else
		pass "$t apiserver rejects a foreign IP"
	fi

	[ "$(pub_of_key "$dir/service-account-key.pem")" = "$(openssl pkey -pubin -pubout -in "$dir/service-account.pem" 2>/dev/null)" ] \
		&& pass "$t service-account pair" || fail "$t service-account pair" "public key does not match"

	# admin.kubeconfig holds exactly the files beside it
	local kc=$dir/admin.kubeconfig field
	for field in certificate-authority-data:ca.pem client-certificate-data:admin.pem client-key-data:admin-key.pem; do
		if sed -n "s/^ *${field%%:*}: //p" "$kc" | base64 -d 2>/dev/null | cmp -s - "$dir/${field#*:}"; then
			pass "$t kubeconfig ${field%%:*}"
		else
			fail "$t kubeconfig ${field%%:*}" "differs from ${field#*:}"
		fi
	done
	grep -q '^    server: "https://10.0.0.4:6443"$' "$kc" && pass "$t kubeconfig server" || fail "$t kubeconfig server" "$(grep server: "$kc")"

	# a second run changes nothing
	local before after
	before=$(cd "$dir" && sha256sum ./* | sort)
	out=$("$bin" "$dir" "$type" 2>&1) || { fail "$t second run" "$out"; return; }
	after=$(cd "$dir" && sha256sum ./* | sort)
	[ "$(echo "$out" | grep -c '^reused ')" = 11 ] && [ "$before" = "$after" ] \
		&& pass "$t second run reuses everything" || fail "$t second run" "$out"
}

check_dir "$tmp/rsa/keys" rsa
check_dir "$tmp/ecdsa/keys" ecdsa

exit $failed
