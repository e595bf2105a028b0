#!/usr/bin/env bash
# Secrets audit: after a full build of every shipped recipe, each private key
# (and the bootstrap token's secret) is exactly where the node that uses it
# boots, nowhere else: not in another node's media, not in a log, not in
# `render`. Searched by content, in every form a build could write it (the
# PEM text, base64 of the PEM as kubeconfigs and cloud-configs embed it, the
# DER bytes), in every byte of every output after unpacking every container
# (ISO, its EFI image, tar, gzip, cpio). The shipped recipes declare no disk
# output, so disks are not part of this audit.
. "$(dirname "$0")/../lib/e2e.sh"
. "$ROOT/tests/lib/unpack.sh"
export LC_ALL=C
cd "$WORK"
make_project p
pxe_tar p
recipes=(recipes/master.recipe recipes/etcd.recipe recipes/worker.recipe)

# Where each key must be, and so may be: from pki_items_for_node and
# items_for_unlisted in builder/pki.c, for the shipped cluster.yaml. A node
# is its node segment; "role:R" is what every node of role R boots (the
# role's shared and default-entry segments). The CA keys stay in keys/
# (include_ca_key is false in every shipped recipe); etcd's peer and server
# keys go to their etcd member only; the apiserver's etcd client key to the
# masters; workers carry no etcd key at all.
#   key (keys/<key>-key.pem, token: the bootstrap token's secret)  where
placement='
ca                          -
etcd-ca                     -
front-proxy-ca              -
apiserver                   dlws-master
apiserver-kubelet-client    dlws-master
apiserver-etcd-client       dlws-master
front-proxy-client          dlws-master
service-account             dlws-master
admin                       dlws-master
super-admin                 dlws-master
controller-manager          dlws-master
scheduler                   dlws-master
kubelet-dlws-master         dlws-master
kubelet-dlws-worker1        dlws-worker1
kubelet-dlws-worker2        dlws-worker2
kube-proxy                  role:worker dlws-worker1 dlws-worker2
etcd-dlws-etcd1-server      dlws-etcd1
etcd-dlws-etcd1-peer        dlws-etcd1
token                       role:worker dlws-worker1 dlws-worker2 dlws-master
'
# The nodes of the shipped cluster.yaml, by role.
declare -A role_of=([dlws-master]=master [dlws-etcd1]=etcd [dlws-worker1]=worker [dlws-worker2]=worker)

(cd p && "$MK" -v "${recipes[@]}" >"$WORK/build.out" 2>"$WORK/build.err") ||
	{ fail setup "build failed: $(cat "$WORK/build.err")"; finish; }

# The outputs the recipes declare (the PXE tree's tar is written beside it).
mapfile -t outputs < <(sed -n 's|^  [a-z]*: { path: \.\./out/\([^,} ]*\).*|\1|p' "${recipes[@]/#/p/}" | sort -u)
[ -d p/out/pxe ] && outputs+=(pxe.tar)
missing=
for o in "${outputs[@]}"; do [ -e "p/out/$o" ] || missing+=" $o"; done
if grep -q '^  disk:' "${recipes[@]/#/p/}"; then
	fail outputs_declared "a shipped recipe declares a disk: this audit must unpack disks too"
elif [ ${#outputs[@]} -lt 7 ] || [ -n "$missing" ]; then
	fail outputs_declared "outputs: ${outputs[*]}; missing:$missing"
else
	pass outputs_declared
fi

# Needles: one file per key with each form of it on a line of its own (grep
# -F -f). PEM: the middle line of its body, from the key's random part. base64 of the PEM:
# a window inside one 76-column line, so wrapped or not it is there. DER: 24
# bytes from the middle of the key material (the same bytes in PKCS#1 and
# PKCS#8), chosen without a newline or NUL so grep can take them.
mkdir needles
pem_needles() { # KEYFILE
	local pem=$1 line der off len hex
	line=$(awk '!/-----/ { b[++n] = $0 } END { print b[int((n + 1) / 2)] }' "$pem")
	printf '%s\n' "$line"
	# as a data URL would percent-encode it
	[ "$line" = "${line//[+\/=]/}" ] || printf '%s\n' "$(sed 's|+|%2B|g; s|/|%2F|g; s|=|%3D|g' <<<"$line")"
	base64 -w0 "$pem" | cut -c233-280
	der=$(openssl pkey -in "$pem" -outform DER | od -An -v -tx1 | tr -d ' \n')
	len=$((${#der} / 2))
	for ((off = len / 2; off + 24 <= len; off += 24)); do
		hex=${der:off*2:48}
		if ! grep -qE '^(..)*(00|0a)' <<<"$hex"; then
			printf '%b\n' "$(sed 's/../\\x&/g' <<<"$hex")"
			return 0
		fi
	done
	return 1
}
keys=()
while read -r key _; do
	[ -n "$key" ] || continue
	keys+=("$key")
	if [ "$key" = token ]; then
		secret=$(cut -d. -f2 p/keys/bootstrap-token)
		printf '%s\n%s\n' "$secret" "$(printf %s "$secret" | base64)" >needles/token
	else
		pem_needles "p/keys/$key-key.pem" >"needles/$key" || { fail needles "no DER window in $key"; finish; }
	fi
done <<<"$placement"
cat needles/* >needles.all

# holders TREE: "KEY OUTPUT HOLDER" for every file of TREE (unpacked
# outputs) that holds KEY. HOLDER is a node ("nodes/<host>.cpio.zst" in ISO
# and PXE tree, "node-<host>.cpio.zst" in an initrd directory), a role
# ("role:R": R's directory in an ISO or PXE tree, an initrd directory's
# shared and role segments) or "elsewhere:<path>".
holders() {
	local tree=$1 key
	for key in "${keys[@]}"; do
		(cd "$tree" && grep -rlaF -f "$WORK/needles/$key" . 2>/dev/null) | sed 's|^\./||' |
			awk -v key="$key" '{
				out = $0; sub(/\/.*/, "", out); sub(/\.d$/, "", out)
				rest = substr($0, length(out) + 1); sub(/^(\.d)?\/?/, "", rest)
				if (out == "pxe.tar") sub(/^pxe\//, "", rest) # the tree, under its name
				if (match(rest, /(^|\/)nodes\/[^\/]+\.cpio\.zst(\.d\/|$)/)) {
					h = substr(rest, RSTART, RLENGTH); sub(/^\/?nodes\//, "", h); sub(/\.cpio\.zst.*/, "", h)
				} else if (match(rest, /(^|\/)node-[^\/]+\.cpio\.zst(\.d\/|$)/)) {
					h = substr(rest, RSTART, RLENGTH); sub(/^\/?node-/, "", h); sub(/\.cpio\.zst.*/, "", h)
				} else if (out ~ /-initrd$/ && rest ~ /^(shared|role)\.cpio\.zst(\.d\/|$)/) {
					h = out; sub(/-initrd$/, "", h); h = "role:" h
				} else if (rest ~ /^(master|etcd|worker)\//) {
					h = rest; sub(/\/.*/, "", h); h = "role:" h
				} else {
					h = "elsewhere:" $0
				}
				print key, out, h
			}'
	done | sort -u
}

# expected_holders: "KEY OUTPUT HOLDER" from the table: an ISO or initrd
# directory of role R holds what R's nodes hold, the PXE tree and its tar
# what every node holds.
expected_holders() {
	local key where h o r
	while read -r key where; do
		[ -n "$key" ] || continue
		for h in $where; do
			[ "$h" = - ] && continue
			r=${h#role:}
			[ "$r" = "$h" ] && r=${role_of[$h]}
			for o in "${outputs[@]}"; do
				case $o in
				pxe | pxe.tar) echo "$key $o $h" ;;
				"$r.iso" | "$r-initrd") echo "$key $o $h" ;;
				esac
			done
		done
	done <<<"$placement" | sort -u
}

# Unpack every output once: an ISO, its EFI image, the segments in it...
if unpack_all "${outputs[@]/#/p/out/}" U 2>unpack.err; then
	pass unpack_every_output
else
	fail unpack_every_output "$(cat unpack.err)"
fi
# The audit is only as good as its unpacking: segments read as cpio, the
# ISO's EFI image as FAT, the .tar.
n_cpio=$(find U -path '*.cpio.zst.d/data.d' -type d | wc -l)
n_segments=$(find U -name '*.cpio.zst' -type f | wc -l)
if [ "$n_segments" -ge 20 ] && [ "$n_cpio" = "$n_segments" ] &&
	[ -d U/master.iso.d/boot/efi.img.d/EFI ] && [ -d U/pxe.tar.d/pxe/nodes ]; then
	pass unpack_reaches_every_segment
else
	fail unpack_reaches_every_segment "$n_cpio of $n_segments segments unpacked, or the EFI image or .tar not read"
fi

holders U >found
expected_holders >expected
if diff expected found >placement.diff; then
	pass keys_only_where_they_must_be
else
	fail keys_only_where_they_must_be "(< expected, > found) $(grep '^[<>]' placement.diff | tr '\n' ';')"
fi
# No CA key anywhere, stated on its own.
if grep -qE '^(ca|etcd-ca|front-proxy-ca) ' found; then
	fail no_ca_key_in_outputs "$(grep -E '^(ca|etcd-ca|front-proxy-ca) ' found | tr '\n' ';')"
else
	pass no_ca_key_in_outputs
fi
# No node's segment holds another node's kubelet or etcd key.
cross=$(awk '$3 !~ /^(role:|elsewhere:)/ && $1 ~ /^(kubelet|etcd)-dlws-/ && index($1, $3) == 0' found)
if [ -z "$cross" ] && grep -q '^kubelet-dlws-worker1 worker.iso dlws-worker1$' found; then
	pass no_node_holds_another_nodes_key
else
	fail no_node_holds_another_nodes_key "$cross"
fi
# Workers carry no etcd key, in any form.
if awk '$1 ~ /etcd/ && ($2 ~ /^worker/ || $3 ~ /worker/)' found | grep -q .; then
	fail workers_hold_no_etcd_key "$(awk '$1 ~ /etcd/ && ($2 ~ /^worker/ || $3 ~ /worker/)' found | tr '\n' ';')"
else
	pass workers_hold_no_etcd_key
fi

# Keys inside outputs: 0600 in the segment, and 0600 in the manifest that
# the node's payload step applies. (One stat and one awk for all: a process
# per file costs seconds here.)
grep -rlaF -f needles.all U | grep '/data\.d/' | grep -v '\.cpio\.zst$' | sort >key_files
xargs -d '\n' stat -c '%a %n' <key_files >key_modes
find U -path '*/data.d/usr/share/oem/dlws/manifest.d/*' -type f -exec grep -H '' {} + >manifests
bad_modes=$(awk '
	FNR == NR { # manifests: "SEGMENT/usr/share/oem/dlws/manifest.d/X:sha size mode path"
		split($0, a, ":"); seg = a[1]; sub(/\/usr\/share\/oem\/dlws\/manifest\.d\/[^\/]*$/, "", seg)
		if (NF == 4) listed[seg $4] = $3
		next
	}
	{
		f = substr($0, index($0, " ") + 1); seg = f; sub(/\/data\.d\/.*/, "/data.d", seg)
		rel = substr(f, length(seg) + 1)
		n++
		if ($1 != "600" || listed[seg rel] != "0600")
			printf " %s (mode %s, manifest \047%s\047)", f, $1, listed[seg rel]
	}
	END { if (n < 40) printf " only %d files checked", n }' manifests key_modes)
if [ -z "$bad_modes" ]; then
	pass keys_in_outputs_are_0600
else
	fail keys_in_outputs_are_0600 "$bad_modes"
fi

# keys/: 0700, and every file holding a private key or the token 0600.
bad_keys=
[ "$(stat -c %a p/keys)" = 700 ] || bad_keys+=" keys/ is $(stat -c %a p/keys)"
n_secret=0
for f in $(grep -laF -f needles.all p/keys/*) p/keys/*-key.pem; do
	n_secret=$((n_secret + 1))
	[ "$(stat -c %a "$f")" = 600 ] || bad_keys+=" ${f#p/} is $(stat -c %a "$f")"
done
if [ -z "$bad_keys" ] && [ "$n_secret" -ge 40 ]; then
	pass keys_dir_0700_secrets_0600
else
	fail keys_dir_0700_secrets_0600 "$n_secret files;$bad_keys"
fi

# Logs and every command that prints about the cluster: the build's with
# -v, render of each recipe (all nodes, and each node alone), certs --list,
# inspect and verify of each output.
mkdir logs
cp build.out build.err logs/
cd p
for r in "${recipes[@]}"; do
	b=$(basename "$r" .recipe)
	"$MK" render "$r" >"../logs/render-$b" 2>&1 || fail "render_$b" "exit $?"
	"$MK" certs --list "$r" >"../logs/certs-$b" 2>&1
	"$MK" certs --list --json "$r" >"../logs/certs-json-$b" 2>&1
done
for h in "${!role_of[@]}"; do
	"$MK" render --node "$h" "recipes/${role_of[$h]}.recipe" >"../logs/render-node-$h" 2>&1
done
for o in "${outputs[@]}"; do
	"$MK" inspect "out/$o" >"../logs/inspect-$o" 2>&1
	"$MK" inspect --json "out/$o" >"../logs/inspect-json-$o" 2>&1
	"$MK" -v verify "out/$o" >"../logs/verify-$o" 2>&1
done
cd ..
if leaks=$(grep -laF -f needles.all logs/*); then
	fail no_key_in_logs_or_render "$leaks"
elif ! grep -q '^# --- dlws-master: /etc/kubernetes/dlws/kubeadm.yaml' logs/render-master ||
	! grep -q '^created ca.pem' logs/build.err || [ "$(ls logs | wc -l)" -lt 30 ]; then
	fail no_key_in_logs_or_render "the logs are not what was meant: $(ls logs)"
else
	pass no_key_in_logs_or_render
fi

# The audit can fail. Planted in a rebuilt copy of the worker ISO: the etcd
# member's peer key, base64 as a kubeconfig embeds it, in a worker's node
# segment; the CA key's DER bytes, gzipped, beside it. And the
# service-account key's PEM in a log.
mkdir -p plant/iso seg planted
cp -a U/worker.iso.d/. plant/iso/
find plant/iso -name '*.d' -prune -exec rm -rf {} +
(cd seg && bsdtar -xpf ../U/worker.iso.d/nodes/dlws-worker1.cpio.zst) &&
	printf 'users:\n- user:\n    client-key-data: %s\n' "$(base64 -w0 p/keys/etcd-dlws-etcd1-peer-key.pem)" >seg/leak.conf &&
	(cd seg && find . | bsdtar --format newc -cf - -T - | zstd -q) >plant/iso/nodes/dlws-worker1.cpio.zst &&
	openssl pkey -in p/keys/ca-key.pem -outform DER | gzip >plant/iso/extra.bin.gz &&
	xorriso -as mkisofs -quiet -R -o planted/worker.iso plant/iso 2>/dev/null ||
	{ fail audit_catches_planted_keys "cannot plant"; finish; }
unpack_all planted/worker.iso P 2>/dev/null
holders P >planted.found
cp logs/render-worker planted.log && cat p/keys/service-account-key.pem >>planted.log
if grep -q '^etcd-dlws-etcd1-peer worker.iso dlws-worker1$' planted.found &&
	grep -q '^ca worker.iso elsewhere:worker.iso.d/extra.bin.gz.d/data$' planted.found &&
	[ "$(grep -laF -f needles/service-account planted.log)" = planted.log ] &&
	! grep -q '^etcd-dlws-etcd1-peer worker.iso dlws-worker1$' found; then
	pass audit_catches_planted_keys
else
	fail audit_catches_planted_keys "found in the planted outputs: $(tr '\n' ';' <planted.found)"
fi
finish
