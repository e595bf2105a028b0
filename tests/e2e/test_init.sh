#!/usr/bin/env bash
# `init` writes a new cluster's tree that renders the names and addresses
# it was given and builds at once; a non-empty DIR and a bad value are
# refused with nothing written. The examples it copies are a make_project
# copy (stand-in base and vendored binaries), named by DLWS_EXAMPLES_DIR.
. "$(dirname "$0")/../lib/e2e.sh"
cd "$WORK"
make_project shipped
export DLWS_EXAMPLES_DIR=$WORK/shipped
ssh-keygen -q -t ed25519 -N '' -C operator@new -f op >/dev/null 2>&1 ||
	printf 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG5ldy1jbHVzdGVyLXRlc3Qta2V5LW5vdC1yZWFs operator@new\n' >op.pub
mkdir p

if "$MK" init --name newlab --master nm1=10.9.0.10 --etcd ne1=10.9.0.11 \
	--worker nw1=10.9.0.21,52-54-00-AB-CD-01 --worker nw2=10.9.0.22 --ssh-key op.pub \
	--boot-server 10.9.0.1/24 p/c >"$WORK/out" 2>"$WORK/err" &&
	[ -f p/c/recipes/cluster.yaml ] && [ -f p/c/recipes/worker.recipe ] && [ -f p/c/recipes/templates/cloud-config.yml ] &&
	[ -f p/c/overlays/common/etc/sysctl.d/90-dlws.conf ] && [ ! -e p/c.tmp ]; then
	pass init_writes_tree
else
	fail init_writes_tree "$(cat "$WORK/err")"
fi
cmp -s shipped/recipes/templates/kubeadm.yaml p/c/recipes/templates/kubeadm.yaml &&
	diff -r shipped/overlays p/c/overlays >/dev/null &&
	grep -qF "$(cat op.pub)" p/c/recipes/cluster.yaml &&
	grep -q '^cluster_name: "newlab"' p/c/recipes/cluster.yaml &&
	pass init_copies_examples_and_key || fail init_copies_examples_and_key "templates, overlays or the key differ"

out=$("$MK" render p/c/recipes/worker.recipe 2>"$WORK/err")
if [ $? = 0 ] && grep -q '^# --- nw1: ' <<<"$out" && grep -q '^# --- nw2: ' <<<"$out" &&
	grep -q 'operator@new' <<<"$out" && grep -q '10.9.0.10' <<<"$out" && ! grep -q 'dlws-worker1' <<<"$out"; then
	pass init_render_shows_nodes
else
	fail init_render_shows_nodes "$(cat "$WORK/err")"
fi

if "$MK" -q p/c/recipes/master.recipe p/c/recipes/etcd.recipe p/c/recipes/worker.recipe 2>"$WORK/err" &&
	[ -f p/c/out/master.iso ] && [ -f p/c/out/worker.iso ] && [ -f p/c/out/etcd.iso ] && [ -d p/c/keys ]; then
	pass init_builds_at_once
else
	fail init_builds_at_once "$(cat "$WORK/err")"
fi
out=$("$MK" inspect p/c/out/master.iso 2>&1)
grep -q 'nm1' <<<"$out" && pass init_build_names_master || fail init_build_names_master "inspect shows no nm1"

"$MK" init --name other --master m=10.0.0.1 p/c >/dev/null 2>"$WORK/err"
rc=$?
if [ $rc = 1 ] && grep -q "'p/c' is not empty" "$WORK/err" && grep -q '^cluster_name: "newlab"' p/c/recipes/cluster.yaml; then
	pass init_refuses_non_empty_dir
else
	fail init_refuses_non_empty_dir "rc=$rc $(cat "$WORK/err")"
fi

mkdir empty
"$MK" init --name bad --master m=300.1.1.1 empty >/dev/null 2>"$WORK/err"
rc=$?
if [ $rc = 1 ] && grep -q "invalid IPv4 address '300.1.1.1'" "$WORK/err" && [ -z "$(ls -A empty)" ] && [ ! -e empty.tmp ]; then
	pass init_bad_ip_writes_nothing
else
	fail init_bad_ip_writes_nothing "rc=$rc $(cat "$WORK/err")"
fi
[ -e op ] || printf -- '-----BEGIN OPENSSH PRIVATE KEY-----\n' >op
"$MK" init --name bad --master m=10.0.0.1 --ssh-key op absent >/dev/null 2>"$WORK/err"
rc=$?
if [ $rc = 1 ] && grep -q "is a private key" "$WORK/err" && [ ! -e absent ] && [ ! -e absent.tmp ]; then
	pass init_refuses_private_key
else
	fail init_refuses_private_key "rc=$rc $(cat "$WORK/err")"
fi
"$MK" init --name bad --master m absent >/dev/null 2>"$WORK/err"
[ $? = 2 ] && grep -q 'HOST=IP' "$WORK/err" && [ ! -e absent ] &&
	pass init_usage_error || fail init_usage_error "$(cat "$WORK/err")"

# --from-dlws: the original project's config.yaml (tests/fixtures), its
# ssh_cert's .pub where deploy.py kept it, and a worker added by option.
mkdir -p dl/deploy/sshkey
cp "$ROOT/tests/fixtures/dlws-config.yaml" dl/config.yaml
cp op.pub dl/deploy/sshkey/id_rsa.pub
if "$MK" init --from-dlws dl/config.yaml --worker cli-w1=10.12.0.31 dl/c >"$WORK/out" 2>"$WORK/err" &&
	grep -q '^cluster_name: "dlwsold"' dl/c/recipes/cluster.yaml && grep -q '^kubernetes_version: "v1.33.5"' dl/c/recipes/cluster.yaml &&
	grep -q 'hostname: "cli-w1", ip: "10.12.0.31"' dl/c/recipes/cluster.yaml &&
	grep -q 'hostname: "dlwsold-worker01", ip: "10.12.0.21", mac: "9c:b6:54:8c:cf:8f"' dl/c/recipes/cluster.yaml; then
	pass init_from_dlws_writes_tree
else
	fail init_from_dlws_writes_tree "$(cat "$WORK/err")"
fi
grep -q "config.yaml:22:1: warning: ignoring 'basic_auth'" "$WORK/err" &&
	grep -q "config.yaml:24:1: warning: ignoring 'pxe_docker_image'" "$WORK/err" && ! grep -q 'error' "$WORK/err" &&
	pass init_from_dlws_warns_unused_keys || fail init_from_dlws_warns_unused_keys "$(cat "$WORK/err")"

out=$("$MK" render dl/c/recipes/worker.recipe 2>"$WORK/err")
if [ $? = 0 ] && grep -q '^# --- dlwsold-worker01: ' <<<"$out" && grep -q '^# --- dlwsold-worker02: ' <<<"$out" &&
	grep -q '^# --- cli-w1: ' <<<"$out" && grep -q '10.12.0.10' <<<"$out" && grep -qF "$(cut -d' ' -f2 op.pub)" <<<"$out"; then
	pass init_from_dlws_render_shows_values
else
	fail init_from_dlws_render_shows_values "$(cat "$WORK/err")"
fi
out=$("$MK" render dl/c/recipes/etcd.recipe 2>"$WORK/err")
[ $? = 0 ] && grep -q 'dlwsold-etcd1' <<<"$out" && grep -q '10.12.0.11' <<<"$out" &&
	pass init_from_dlws_render_etcd || fail init_from_dlws_render_etcd "$(cat "$WORK/err")"

if "$MK" -q dl/c/recipes/master.recipe dl/c/recipes/etcd.recipe dl/c/recipes/worker.recipe 2>"$WORK/err" &&
	[ -f dl/c/out/master.iso ] && [ -f dl/c/out/worker.iso ] && [ -f dl/c/out/etcd.iso ]; then
	pass init_from_dlws_builds_at_once
else
	fail init_from_dlws_builds_at_once "$(cat "$WORK/err")"
fi

# A bad value is an error at its place in the file; nothing is written.
sed 's|^pod_ip_range : 10.2.0.0/16|pod_ip_range : 10.2.0.0/33|' dl/config.yaml >dl/bad.yaml
"$MK" init --from-dlws dl/bad.yaml dl/bad >/dev/null 2>"$WORK/err"
rc=$?
if [ $rc = 1 ] && grep -q "^dl/bad.yaml:20:16: error: 'pod_ip_range' is not a valid IPv4 CIDR: '10.2.0.0/33'" "$WORK/err" &&
	[ ! -e dl/bad ] && [ ! -e dl/bad.tmp ]; then
	pass init_from_dlws_bad_value_writes_nothing
else
	fail init_from_dlws_bad_value_writes_nothing "rc=$rc $(cat "$WORK/err")"
fi

# Completion: a config file after --from-dlws (.yaml or .yml), not others.
out=$(cd dl && touch other.txt old.yml && bash -c '. "$1"; COMP_WORDS=(dlws-mkimage init --from-dlws ""); COMP_CWORD=3
	_dlws_mkimage; printf "%s\n" "${COMPREPLY[@]}"' _ "$ROOT/completions/dlws-mkimage.bash" 2>&1)
grep -qx config.yaml <<<"$out" && grep -qx old.yml <<<"$out" && ! grep -q other.txt <<<"$out" &&
	pass init_from_dlws_completes_yaml || fail init_from_dlws_completes_yaml "$out"

out=$("$ROOT/tests/lib/check-man-options.sh" "$MK" "$ROOT/man/dlws-mkimage.1" 2>&1)
[ $? = 0 ] && pass init_help_matches_man || fail init_help_matches_man "$out"
finish
