#!/usr/bin/env bash
# The PKI that pki.c makes, read back with independent tools: the openssl
# CLI verifies chains (each certificate against its own CA and no other),
# subjects and organisations, key usages and EKUs, hostnames/IPs, key/cert
# pairs, validity periods and file modes, the service-account public key,
# kubeadm's CA hash and the bootstrap token, for RSA and ECDSA keys; the
# real kubectl (vendor/bin, from Debian) parses every kubeconfig, whose
# embedded client certificate verifies against the embedded CA.
#
#   tests/e2e/test_pki_openssl.sh build/tests/test_pki
#
# test_pki with a DIR argument makes the fixed test cluster's PKI there:
# master m1 10.0.0.4, etcd e1 10.0.0.10, workers w1 10.0.0.21, w2 10.0.0.22,
# service IP 10.3.0.1, domain cluster.local, cluster test-cluster,
# apiserver https://10.0.0.4:6443.
set -u

ROOT=${DLWS_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
bin=${1:-${DLWS_UNIT_DIR:-build/tests}/test_pki}
kubectl=$ROOT/vendor/bin/kubectl
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

N_FILES=29      # certificates, the SA pair, the token, kubeconfigs, the Secret

# name  subject(RFC2253)  EKU  SANs (sorted, comma-separated)  CA
certs=(
	"apiserver|CN=kube-apiserver|server|DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,DNS:m1,IP Address:10.0.0.4,IP Address:10.3.0.1,IP Address:127.0.0.1|ca"
	"apiserver-kubelet-client|CN=kube-apiserver-kubelet-client,O=kubeadm:cluster-admins|client||ca"
	"apiserver-etcd-client|CN=kube-apiserver-etcd-client,O=system:masters|client||etcd-ca"
	"front-proxy-client|CN=front-proxy-client|client||front-proxy-ca"
	"etcd-e1-server|CN=e1|server,client|DNS:e1,DNS:localhost,IP Address:10.0.0.10,IP Address:127.0.0.1|etcd-ca"
	"etcd-e1-peer|CN=e1|server,client|DNS:e1,IP Address:10.0.0.10|etcd-ca"
	"controller-manager|CN=system:kube-controller-manager|client||ca"
	"scheduler|CN=system:kube-scheduler|client||ca"
	"kube-proxy|CN=system:kube-proxy|client||ca"
	"admin|CN=kubernetes-admin,O=kubeadm:cluster-admins|client||ca"
	"super-admin|CN=kubernetes-super-admin,O=system:masters|client||ca"
	"kubelet-m1|CN=system:node:m1,O=system:nodes|client||ca"
	"kubelet-w1|CN=system:node:w1,O=system:nodes|client||ca"
	"kubelet-w2|CN=system:node:w2,O=system:nodes|client||ca"
)
cas=("ca|kube-ca" "etcd-ca|etcd-ca" "front-proxy-ca|front-proxy-ca")

# file  user  client certificate (empty: the bootstrap token)
kubeconfigs=(
	"admin.conf|kubernetes-admin|admin"
	"super-admin.conf|kubernetes-super-admin|super-admin"
	"controller-manager.conf|system:kube-controller-manager|controller-manager"
	"scheduler.conf|system:kube-scheduler|scheduler"
	"kube-proxy.conf|system:kube-proxy|kube-proxy"
	"kubelet-m1.conf|system:node:m1|kubelet-m1"
	"kubelet-w1.conf|system:node:w1|kubelet-w1"
	"kubelet-w2.conf|system:node:w2|kubelet-w2"
	"bootstrap-kubelet.conf|tls-bootstrap-token-user|"
)

# Every certificate is read once (`openssl x509 -text` and the fields
# below) and picked apart with bash alone: a process costs here.
declare -A D
dump_cert() { # cert name
	local name=$2 line hdr="" in_pub=0 pub=""
	mkdir -p "$tmp/dump"
	openssl x509 -in "$1" -noout -subject -issuer -serial -startdate -enddate -nameopt RFC2253 -text -pubkey \
		>"$tmp/dump/$name" 2>/dev/null
	while IFS= read -r line; do
		case $line in
		subject=* | issuer=* | serial=* | notBefore=* | notAfter=*) D[$name|${line%%=*}]=${line#*=} ;;
		"        Signature Algorithm: "*) D[$name|sigalg]=${line#*: } ;;
		*"-----BEGIN PUBLIC KEY-----") in_pub=1 ;;
		*"-----END PUBLIC KEY-----") in_pub=0 ;;
		"            X509v3 "*:*)
			hdr=${line#            X509v3 }
			D[$name|crit ${hdr%%:*}]=$([[ $hdr == *": critical" ]] && echo y)
			hdr=${hdr%%:*}
			continue ;;
		esac
		[ "$in_pub" = 1 ] && [[ $line != "-----BEGIN PUBLIC KEY-----" ]] && pub+=$line
		if [ -n "$hdr" ]; then
			line=${line#"${line%%[! ]*}"}
			D[$name|$hdr]=$line
			hdr=""
		fi
	done <"$tmp/dump/$name"
	D[$name|pub]=$pub
}
field() { echo "${D[$1|$2]-}"; }          # name subject|issuer|serial|notBefore|notAfter|sigalg
ext_text() { echo "${D[$1|$2]-}"; }       # name "Key Usage"
ext_critical() { [ "${D[$1|crit $2]-}" = y ]; }
cert_pub() { echo "${D[$1|pub]}"; }
# The SANs as a set: "DNS:a,IP Address:b" in any order.
sans_are() { # name wanted(comma-separated)
	local have=() want=() x
	IFS=',' read -ra have <<<"${D[$1|Subject Alternative Name]-}"
	IFS=',' read -ra want <<<"$2"
	[ ${#have[@]} = ${#want[@]} ] || return 1
	for x in "${want[@]}"; do
		[[ ",${D[$1|Subject Alternative Name]-}," == *", $x,"* || ",${D[$1|Subject Alternative Name]-}," == *",$x,"* ]] || return 1
	done
}
# Seconds between notBefore and notAfter of each name, one `date` run.
declare -A VALIDITY
validities() { # names...
	local n dates=() secs=() i=0
	for n in "$@"; do dates+=("${D[$n|notBefore]}" "${D[$n|notAfter]}"); done
	mapfile -t secs < <(printf '%s\n' "${dates[@]}" | date -u -f - +%s)
	for n in "$@"; do
		VALIDITY[$n]=$((secs[i + 1] - secs[i]))
		i=$((i + 2))
	done
}
# A key's public half and its description (type, size), in one run.
read_key() { # key name
	openssl pkey -in "$1" -pubout -text_pub >"$tmp/dump/$2.key" 2>/dev/null
}
key_pub() { # name: the base64 of its key's public half
	# The armour lines exactly: base64 itself may hold "END" or "BEGIN".
	local line in_pub=0 pub=""
	while IFS= read -r line; do
		case $line in
		"-----BEGIN PUBLIC KEY-----") in_pub=1 ;;
		"-----END PUBLIC KEY-----") in_pub=0 ;;
		*) [ "$in_pub" = 1 ] && pub+=$line ;;
		esac
	done <"$tmp/dump/$1.key"
	echo "$pub"
}
# "FILE: OK" per certificate that verifies: one openssl run for many.
verify_ok() { # ca-file purpose|any files...
	local ca=$1 purpose=$2
	shift 2
	if [ "$purpose" = any ]; then
		openssl verify -CAfile "$ca" "$@" 2>/dev/null
	else
		openssl verify -CAfile "$ca" -purpose "$purpose" "$@" 2>/dev/null
	fi | sed -n 's/: OK$//p'
}
ok_in() { [[ $'\n'$1$'\n' == *$'\n'"$2"$'\n'* ]]; } # verify-output file

check_cas() { # dir t
	local dir=$1 t=$2 entry base cn ca v
	for entry in "${cas[@]}"; do
		IFS='|' read -r base cn <<<"$entry"
		ca=$dir/$base.pem
		dump_cert "$ca" "$base"
		read_key "$dir/$base-key.pem" "$base"
		local errs=""
		[ "$(field "$base" subject)" = "CN=$cn" ] || errs="$errs; subject $(field "$base" subject)"
		ok_in "$(verify_ok "$ca" any "$ca")" "$ca" || errs="$errs; not self-signed"
		{ ext_critical "$base" "Basic Constraints" && [ "$(ext_text "$base" "Basic Constraints")" = "CA:TRUE" ]; } \
			|| errs="$errs; basicConstraints '$(ext_text "$base" "Basic Constraints")'"
		{ ext_critical "$base" "Key Usage" && [[ $(ext_text "$base" "Key Usage") == *"Certificate Sign, CRL Sign"* ]]; } \
			|| errs="$errs; keyUsage '$(ext_text "$base" "Key Usage")'"
		[ -n "$(ext_text "$base" "Subject Key Identifier")" ] || errs="$errs; no SKI"
		validities "$base"
		v=${VALIDITY[$base]}
		[ "$v" = $((3650 * 86400 + 3600)) ] || errs="$errs; validity $v seconds"
		[ "$(cert_pub "$base")" = "$(key_pub "$base")" ] || errs="$errs; key does not match"
		[ -z "$errs" ] && pass "$t CA $base ($cn)" || fail "$t CA $base" "${errs#; }"
	done
	local k1 k2 k3
	k1=$(key_pub ca) k2=$(key_pub etcd-ca) k3=$(key_pub front-proxy-ca)
	[ "$k1" != "$k2" ] && [ "$k1" != "$k3" ] && [ "$k2" != "$k3" ] && pass "$t three CAs, three keys" || fail "$t CA keys" "two CAs share a key"
}

check_leaves() { # dir t keytype
	local dir=$1 t=$2 type=$3
	local want_ku="Digital Signature, Key Encipherment"
	[ "$type" = ecdsa ] && want_ku="Digital Signature"
	local entry name subject eku sans issuer c other files=()
	for entry in "${certs[@]}"; do
		IFS='|' read -r name subject eku sans issuer <<<"$entry"
		files+=("$dir/$name.pem")
		dump_cert "$dir/$name.pem" "$name"
		read_key "$dir/$name-key.pem" "$name"
	done
	validities "${certs[@]%%|*}"
	# each CA's verdicts on every leaf, plainly and for each TLS purpose
	declare -A any client server
	for other in ca etcd-ca front-proxy-ca; do
		any[$other]=$(verify_ok "$dir/$other.pem" any "${files[@]}")
		client[$other]=$(verify_ok "$dir/$other.pem" sslclient "${files[@]}")
		server[$other]=$(verify_ok "$dir/$other.pem" sslserver "${files[@]}")
	done
	for entry in "${certs[@]}"; do
		IFS='|' read -r name subject eku sans issuer <<<"$entry"
		c=$dir/$name.pem
		local n="$t $name"
		local errs=""
		ok_in "${any[$issuer]}" "$c" || errs="$errs; does not verify against $issuer.pem"
		# signed by its own CA only: a certificate of one CA is worthless where another is trusted
		for other in ca etcd-ca front-proxy-ca; do
			[ "$other" = "$issuer" ] && continue
			ok_in "${any[$other]}" "$c" && errs="$errs; verifies against $other.pem too"
		done
		[ "$(field "$name" issuer)" = "$(field "$issuer" subject)" ] || errs="$errs; issuer $(field "$name" issuer)"
		[ "$(field "$name" subject)" = "$subject" ] || errs="$errs; subject $(field "$name" subject)"
		sans_are "$name" "$sans" || errs="$errs; SANs '$(ext_text "$name" "Subject Alternative Name")'"
		{ ext_critical "$name" "Basic Constraints" && [ "$(ext_text "$name" "Basic Constraints")" = "CA:FALSE" ]; } \
			|| errs="$errs; basicConstraints '$(ext_text "$name" "Basic Constraints")'"
		{ ext_critical "$name" "Key Usage" && [ "$(ext_text "$name" "Key Usage")" = "$want_ku" ]; } \
			|| errs="$errs; keyUsage '$(ext_text "$name" "Key Usage")'"
		local want_eku="TLS Web Client Authentication"
		[ "$eku" = server ] && want_eku="TLS Web Server Authentication"
		[ "$eku" = "server,client" ] && want_eku="TLS Web Server Authentication, TLS Web Client Authentication"
		[ "$(ext_text "$name" "Extended Key Usage")" = "$want_eku" ] || errs="$errs; EKU '$(ext_text "$name" "Extended Key Usage")'"
		[ -n "$(ext_text "$name" "Subject Key Identifier")" ] || errs="$errs; no SKI"
		[[ $(ext_text "$name" "Authority Key Identifier") == *"$(ext_text "$issuer" "Subject Key Identifier")"* ]] \
			|| errs="$errs; AKI is not the CA's SKI"
		[ "$(cert_pub "$name")" = "$(key_pub "$name")" ] || errs="$errs; key does not match"
		local v=${VALIDITY[$name]}
		[ "$v" = $((365 * 86400 + 3600)) ] || errs="$errs; validity $v seconds"
		[[ $(field "$name" sigalg) == @(sha256WithRSAEncryption|ecdsa-with-SHA256) ]] || errs="$errs; not signed with SHA-256"
		# a positive serial of at most 20 octets (159 random bits)
		local serial
		serial=$(field "$name" serial)
		{ [ ${#serial} -le 40 ] && [ ${#serial} -ge 38 ] && [[ $serial != [89A-F]* || ${#serial} -lt 40 ]]; } \
			|| errs="$errs; serial $serial"
		# what TLS peers check: the purposes, each only where it belongs
		local as_client=no as_server=no
		ok_in "${client[$issuer]}" "$c" && as_client=yes
		ok_in "${server[$issuer]}" "$c" && as_server=yes
		case $eku in
		server) [ "$as_server/$as_client" = yes/no ] || errs="$errs; TLS server $as_server, client $as_client" ;;
		client) [ "$as_server/$as_client" = no/yes ] || errs="$errs; TLS server $as_server, client $as_client" ;;
		*) [ "$as_server/$as_client" = yes/yes ] || errs="$errs; TLS server $as_server, client $as_client" ;;
		esac
		[ -z "$errs" ] && pass "$n" || fail "$n" "${errs#; }"
	done

	read_key "$dir/service-account-key.pem" sa
	local key_type_errs="" k want="Public-Key: (2048 bit)"
	[ "$type" = ecdsa ] && want="ASN1 OID: prime256v1"
	for k in "$tmp"/dump/*.key; do
		[[ $(<"$k") == *"$want"* ]] || key_type_errs="$key_type_errs ${k##*/}"
	done
	[ -z "$key_type_errs" ] && pass "$t key type of every key" || fail "$t key type" "$key_type_errs"
	declare -A seen
	local dups="" p
	for k in "$tmp"/dump/*.key; do
		k=${k##*/}
		p=$(key_pub "${k%.key}")
		[ -n "${seen[$p]-}" ] && dups="$dups ${k%.key}=${seen[$p]}"
		seen[$p]=${k%.key}
	done
	[ -z "$dups" ] && pass "$t no key shared" || fail "$t no key shared" "$dups"

	local ca=$dir/ca.pem
	openssl verify -CAfile "$ca" -verify_hostname kubernetes.default.svc.cluster.local "$dir/apiserver.pem" >/dev/null 2>&1 \
		&& openssl verify -CAfile "$ca" -verify_ip 10.3.0.1 "$dir/apiserver.pem" >/dev/null 2>&1 \
		&& openssl verify -CAfile "$ca" -verify_ip 10.0.0.4 "$dir/apiserver.pem" >/dev/null 2>&1 \
		&& pass "$t apiserver hostname and IPs verify" || fail "$t apiserver names" "openssl verify -verify_hostname/-verify_ip failed"
	if openssl verify -CAfile "$ca" -verify_ip 10.0.0.21 "$dir/apiserver.pem" >/dev/null 2>&1; then
		fail "$t apiserver foreign IP" "a worker IP verifies"
	else
		pass "$t apiserver rejects a foreign IP"
	fi
	openssl verify -CAfile "$dir/etcd-ca.pem" -verify_ip 10.0.0.10 "$dir/etcd-e1-server.pem" >/dev/null 2>&1 \
		&& openssl verify -CAfile "$dir/etcd-ca.pem" -verify_ip 127.0.0.1 "$dir/etcd-e1-server.pem" >/dev/null 2>&1 \
		&& pass "$t etcd server IPs verify" || fail "$t etcd server IPs" "openssl verify -verify_ip failed"
}

check_sa_hash_token() { # dir t make-output
	local dir=$1 t=$2 out=$3
	# sa.pub is a PEM public key, not a certificate
	if openssl pkey -pubin -in "$dir/service-account.pem" -noout 2>/dev/null \
		&& ! openssl x509 -in "$dir/service-account.pem" -noout 2>/dev/null \
		&& openssl pkey -pubin -pubout -in "$dir/service-account.pem" -out "$tmp/dump/sa-pub.key" 2>/dev/null \
		&& [ "$(key_pub sa)" = "$(key_pub sa-pub)" ]; then
		pass "$t service-account pair (sa.key, sa.pub)"
	else
		fail "$t service-account pair" "not a public key of the key"
	fi

	# kubeadm's caCertHashes: SHA-256 of the CA's DER SubjectPublicKeyInfo
	local want got
	want=sha256:$(openssl x509 -pubkey -noout -in "$dir/ca.pem" | openssl pkey -pubin -outform der | sha256sum | cut -d' ' -f1)
	got=$(sed -n 's/^ca-hash //p' <<<"$out")
	[ "$got" = "$want" ] && pass "$t CA hash as openssl computes it" || fail "$t CA hash" "got '$got', openssl '$want'"

	local token
	token=$(cat "$dir/bootstrap-token")
	if grep -Eq '^[a-z0-9]{6}\.[a-z0-9]{16}$' "$dir/bootstrap-token" && [ "$(wc -l <"$dir/bootstrap-token")" = 1 ]; then
		pass "$t bootstrap token format"
	else
		fail "$t bootstrap token format" "not [a-z0-9]{6}.[a-z0-9]{16}"
	fi
	local y=$dir/bootstrap-token.yaml
	if grep -qx "  name: bootstrap-token-${token%%.*}" "$y" && grep -qx "  token-id: \"${token%%.*}\"" "$y" &&
		grep -qx "  token-secret: \"${token#*.}\"" "$y" && grep -qx 'type: bootstrap.kubernetes.io/token' "$y" &&
		grep -qx '  namespace: kube-system' "$y" && grep -qx '  usage-bootstrap-authentication: "true"' "$y" &&
		grep -qx '  usage-bootstrap-signing: "true"' "$y" &&
		grep -qx '  auth-extra-groups: "system:bootstrappers:kubeadm:default-node-token"' "$y" && ! grep -q expiration "$y"; then
		pass "$t the Secret carries the token"
	else
		fail "$t token Secret" "$(grep -v token-secret "$y")"
	fi
}

check_kubeconfigs() { # dir t
	local dir=$1 t=$2 entry file user cert
	if [ ! -x "$kubectl" ]; then
		echo "SKIP $t kubeconfigs: no kubectl in '$kubectl' (run 'make vendor')"
		return
	fi
	# what the real kubectl reads, one field a line
	local jp='{.current-context}{"\n"}{.contexts[0].context.user}{"\n"}{.contexts[0].context.cluster}{"\n"}'
	jp+='{.users[0].name}{"\n"}{.clusters[0].name}{"\n"}{.clusters[0].cluster.server}{"\n"}'
	jp+='{.clusters[0].cluster.certificate-authority-data}{"\n"}{.users[0].user.client-certificate-data}{"\n"}'
	jp+='{.users[0].user.client-key-data}{"\n"}{.users[0].user.token}{"\n"}'
	for entry in "${kubeconfigs[@]}"; do
		IFS='|' read -r file user cert <<<"$entry"
		local f=$dir/$file errs="" fields
		if ! fields=$("$kubectl" config view --raw --kubeconfig "$f" -o jsonpath="$jp" 2>"$tmp/kerr"); then
			fail "$t kubeconfig $file" "kubectl: $(cat "$tmp/kerr")"
			continue
		fi
		local context cuser ccluster uname cname server cadata certdata keydata token
		{ read -r context; read -r cuser; read -r ccluster; read -r uname; read -r cname; read -r server
		  read -r cadata; read -r certdata; read -r keydata; read -r token; } <<<"$fields"
		[ "$(stat -c %a "$f")" = 600 ] || errs="$errs; mode $(stat -c %a "$f")"
		[ "$context" = "$user@test-cluster" ] || errs="$errs; context '$context'"
		[ "$cuser" = "$user" ] && [ "$uname" = "$user" ] || errs="$errs; user '$cuser' '$uname'"
		[ "$ccluster" = test-cluster ] && [ "$cname" = test-cluster ] || errs="$errs; cluster '$ccluster' '$cname'"
		[ "$server" = https://10.0.0.4:6443 ] || errs="$errs; server '$server'"
		base64 -d <<<"$cadata" >"$tmp/kca.pem" 2>/dev/null
		cmp -s "$tmp/kca.pem" "$dir/ca.pem" || errs="$errs; CA data is not ca.pem"
		if [ -n "$cert" ]; then
			base64 -d <<<"$certdata" >"$tmp/kcert.pem" 2>/dev/null
			base64 -d <<<"$keydata" >"$tmp/kkey.pem" 2>/dev/null
			openssl verify -CAfile "$tmp/kca.pem" -purpose sslclient "$tmp/kcert.pem" >/dev/null 2>&1 \
				|| errs="$errs; its client certificate does not verify against its CA"
			# the pair itself was matched above (check_leaves)
			cmp -s "$tmp/kcert.pem" "$dir/$cert.pem" && cmp -s "$tmp/kkey.pem" "$dir/$cert-key.pem" \
				|| errs="$errs; certificate or key is not $cert.pem / $cert-key.pem"
			[ -z "$token" ] || errs="$errs; carries a token"
		else
			[ "$token" = "$(cat "$dir/bootstrap-token")" ] || errs="$errs; token"
			[ -z "$keydata$certdata" ] || errs="$errs; carries a certificate or key"
		fi
		[ -z "$errs" ] && pass "$t kubeconfig $file (kubectl)" || fail "$t kubeconfig $file" "${errs#; }"
	done
}

check_dir() { # dir keytype
	local dir=$1 type=$2 t="[$2]"
	local out
	out=$("$bin" "$dir" "$type" 2>&1) || { fail "$t make" "$out"; return; }
	[ "$(grep -c '^created ' <<<"$out")" = $N_FILES ] && pass "$t all $N_FILES created" || fail "$t all created" "$out"

	[ "$(stat -c %a "$dir")" = 700 ] && pass "$t dir mode 0700" || fail "$t dir mode" "$(stat -c %a "$dir")"
	local bad=""
	for k in "$dir"/*-key.pem "$dir"/*.conf "$dir"/bootstrap-token "$dir"/bootstrap-token.yaml; do
		[ "$(stat -c %a "$k")" = 600 ] || bad="$bad $(basename "$k"):$(stat -c %a "$k")"
	done
	[ -z "$bad" ] && pass "$t keys, kubeconfigs and token 0600" || fail "$t secret modes" "$bad"

	rm -rf "$tmp/dump"
	check_cas "$dir" "$t"
	check_leaves "$dir" "$t" "$type"
	check_sa_hash_token "$dir" "$t" "$out"
	check_kubeconfigs "$dir" "$t"

	# a second run changes nothing
	local before after
	before=$(cd "$dir" && sha256sum ./* | sort)
	out=$("$bin" "$dir" "$type" 2>&1) || { fail "$t second run" "$out"; return; }
	after=$(cd "$dir" && sha256sum ./* | sort)
	[ "$(grep -c '^reused ' <<<"$out")" = $N_FILES ] && [ "$before" = "$after" ] \
		&& pass "$t second run reuses everything" || fail "$t second run" "$out"
}

check_dir "$tmp/rsa/keys" rsa
check_dir "$tmp/ecdsa/keys" ecdsa

# A kubelet certificate of an older PKI (serving and client, with SANs) is
# re-issued as the client identity kubeadm gives it, and its kubeconfig follows.
d=$tmp/ecdsa/keys
openssl req -new -key "$d/kubelet-w1-key.pem" -subj "/O=system:nodes/CN=system:node:w1" 2>/dev/null |
	openssl x509 -req -CA "$d/ca.pem" -CAkey "$d/ca-key.pem" -days 365 -out "$d/kubelet-w1.pem" \
		-extfile <(printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=DNS:w1,IP:10.0.0.21\n') 2>/dev/null
out=$("$bin" "$d" ecdsa 2>&1)
if grep -q '^reissued kubelet-w1.pem: .*SANs changed (removed DNS:w1, removed IP:10.0.0.21); usage changed (now client only)$' <<<"$out" &&
	grep -qx 'reissued kubelet-w1.conf: certificate changed' <<<"$out" &&
	dump_cert "$d/kubelet-w1.pem" w1-now && [ "$(ext_text w1-now "Extended Key Usage")" = "TLS Web Client Authentication" ] &&
	[ "$(grep -vc '^reused \|^ca-hash ' <<<"$out")" = 2 ]; then
	pass "old kubelet certificate re-issued as a client identity"
else
	fail "old kubelet certificate" "$out"
fi

exit $failed
