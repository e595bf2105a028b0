#!/usr/bin/env bash
# Locks and faults. Builds, certs and render that share a PKI directory or
# an output wait for each other (or, with --no-wait, name the holder); a
# killed holder's lock is free at once; an input error leaves nothing, keys
# included. SIGKILL at random points, a full disk, a read-only output
# directory, an input rewritten while it is read and a damaged PKI each
# leave the previous good outputs and PKI as they were, and no temp file
# once the next build has run.
. "$(dirname "$0")/../lib/e2e.sh"
cd "$WORK"
export TMPDIR=$WORK/tmp
mkdir -p "$TMPDIR"
make_project base
M=recipes/master.recipe W=recipes/worker.recipe
mounts=()
cleanup_mounts() { for m in "${mounts[@]}"; do umount -l "$m" 2>/dev/null; done; }
trap 'cleanup_mounts; [ "$KEEP_WORK" = 1 ] || rm -rf "$WORK"' EXIT

# sums DIR: every file of the PKI and the outputs (not the locks, not the
# stand-in base, not the build cache: a failed build may keep there what it
# made whole, and the sums it took) with its sha256, sorted.
sums() {
	(cd "$1" && find keys out -type f ! -name '.*.lock' ! -path 'out/base/*' ! -path 'out/.cache/*' -print0 2>/dev/null |
		sort -z | xargs -0r sha256sum)
}
# temps DIR: what a build leaves only while it runs.
temps() {
	(cd "$1" && find . "$TMPDIR" -mindepth 1 \( -name '*.tmp' -o -name '*.new' -o -name '*.old' -o -name '*.parts' \
		-o -name '*.pending' -o -path "$TMPDIR/*" \) -print 2>/dev/null)
}
# pki_ok DIR: every certificate verifies against the cluster's CAs and
# matches its key.
pki_ok() {
	local k=$1/keys c key
	[ -f "$k/ca.pem" ] || return 1
	cat "$k/ca.pem" "$k/etcd-ca.pem" "$k/front-proxy-ca.pem" >"$WORK/cas.pem" || return 1
	for c in "$k"/*.pem; do
		case $c in *-key.pem | */service-account.pem) continue ;; esac
		openssl verify -CAfile "$WORK/cas.pem" "$c" >/dev/null 2>&1 || { echo "does not verify: $c"; return 1; }
		key=${c%.pem}-key.pem
		[ "$(openssl x509 -noout -pubkey -in "$c" | sha256sum)" = "$(openssl pkey -pubout -in "$key" 2>/dev/null | sha256sum)" ] ||
			{ echo "key does not match: $c"; return 1; }
	done
}
# outputs_ok DIR: `verify` passes on every output there.
outputs_ok() {
	local o
	for o in "$1"/out/master.iso "$1"/out/worker.iso "$1"/out/pxe; do
		[ -e "$o" ] || continue
		"$MK" verify "$o" >/dev/null 2>&1 || { echo "verify fails: $o"; return 1; }
	done
}
# holder DIR WHAT: a stand-in dlws-mkimage holding DIR/.keys.lock as WHAT,
# its pid in $hpid; it holds until killed.
holder() {
	local f=$1/.keys.lock
	: >"$f"
	( exec 9<>"$f" && flock 9 && echo "$BASHPID $(hostname) $2" >&9 && exec sleep 300 ) 2>/dev/null &
	hpid=$!
	for _ in $(seq 100); do [ -s "$f" ] && break; sleep 0.05; done
}

# ---- locks --------------------------------------------------------------
# The first builds of two recipes and certs at once: all succeed, one PKI.
make_project c1
(cd c1 && "$MK" -q $M >m.log 2>&1; echo $? >m.rc) &
(cd c1 && "$MK" -q $W >w.log 2>&1; echo $? >w.rc) &
(cd c1 && "$MK" -q certs $M >c.log 2>&1; echo $? >c.rc) &
wait
if [ "$(cat c1/m.rc c1/w.rc c1/c.rc | tr -d '\n')" = 000 ] && why=$(pki_ok c1) && why=$(outputs_ok c1) &&
   grep -q '"name": *"master"' c1/out/pxe/dlws-build.json && grep -q '"name": *"worker"' c1/out/pxe/dlws-build.json; then
	pass concurrent_first_builds_share_one_pki
else
	fail concurrent_first_builds_share_one_pki "rc $(cat c1/*.rc | tr '\n' ' ')${why:+($why)}: $(cat c1/*.log)"
fi

cp -a base c2
(cd c2 && "$MK" -q $M) || fail setup "build failed"
holder c2 certs
for cmd in "" certs render; do
	err=$(cd c2 && "$MK" $cmd --no-wait $M 2>&1 >/dev/null)
	rc=$?
	if [ $rc = 1 ] && [ "$err" = "dlws-mkimage: error: 'recipes/../keys' is in use by pid $hpid (certs): not waiting (--no-wait)" ]; then
		pass "no_wait_names_holder${cmd:+_$cmd}"
	else
		fail "no_wait_names_holder${cmd:+_$cmd}" "rc $rc: $err"
	fi
done
(cd c2 && "$MK" $M >wait.log 2>&1; echo $? >wait.rc) &
bpid=$!
for _ in $(seq 200); do grep -q "^waiting for" c2/wait.log 2>/dev/null && break; sleep 0.05; done
sleep 0.5
if grep -qx "waiting for pid $hpid (certs) to finish with 'recipes/../keys'" c2/wait.log && kill -0 $bpid 2>/dev/null &&
   [ ! -e c2/wait.rc ]; then
	pass build_waits_and_says_for_whom
else
	fail build_waits_and_says_for_whom "$(cat c2/wait.log)"
fi
# The holder dies by SIGKILL: its lock is free at once, its words stale.
kill -9 $hpid
wait $bpid
check build_runs_when_holder_dies test "$(cat c2/wait.rc)" = 0
holder c2 build
kill -9 $hpid
wait $hpid 2>/dev/null
if [ -s c2/.keys.lock ] && (cd c2 && "$MK" -q --no-wait $M); then
	pass stale_lock_of_killed_process_taken_over
else
	fail stale_lock_of_killed_process_taken_over "build refused after its holder was killed"
fi

# ---- input errors before anything is written -------------------------------
make_project c3
awk 'NR == 1 { $0 = (substr($0, 1, 1) == "0" ? "1" : "0") substr($0, 2) } 1' c3/vendor/SHA256SUMS >c3/sums &&
	mv c3/sums c3/vendor/SHA256SUMS
err=$(cd c3 && "$MK" $M 2>&1 >/dev/null)
rc=$?
if [ $rc = 1 ] && grep -q "error: sha256 mismatch for 'recipes/../vendor/bin/kubectl'" <<<"$err" &&
   ! grep -q "^created" <<<"$err" && [ ! -e c3/keys ] && [ ! -e c3/keys.new ] && [ "$(ls c3/out)" = base ] &&
   [ -z "$(temps c3)" ]; then
	pass bad_pin_on_first_build_writes_no_pki
else
	fail bad_pin_on_first_build_writes_no_pki "rc $rc, keys: $(ls c3 | tr '\n' ' '), out: $(ls c3/out | tr '\n' ' '): $err"
fi

# ---- SIGKILL at random points -------------------------------------------------
# Each build changes an overlay file, so each does real work; each is killed
# after a random delay within its usual run time. After every kill the PKI
# and each output are the old ones or the new ones, whole.
cp -a base k
(cd k && "$MK" -q $M $W) || fail setup "build failed"
t0=$(date +%s%N)
echo 0 >k/overlays/common/etc/dlws-kill-test 2>/dev/null || { mkdir -p k/overlays/common/etc && echo 0 >k/overlays/common/etc/dlws-kill-test; }
(cd k && "$MK" -q $M $W) || fail setup "build failed"
span=$(( ($(date +%s%N) - t0) / 1000000 ))      # ms of one build
bad=
for i in $(seq 1 12); do
	echo "$i" >k/overlays/common/etc/dlws-kill-test
	(cd k && exec "$MK" -q $M $W >/dev/null 2>&1) &
	p=$!
	sleep "$(awk -v r=$RANDOM -v s="$span" 'BEGIN { printf "%.3f", r / 32767 * s / 1000 }')"
	kill -9 $p 2>/dev/null
	wait $p 2>/dev/null
	why=$(pki_ok k) || { bad="kill $i: $why"; break; }
	why=$(outputs_ok k) || { bad="kill $i: $why"; break; }
	for o in master.iso worker.iso pxe; do [ -e k/out/$o ] || { bad="kill $i: out/$o is gone"; break 2; }; done
done
if [ -z "$bad" ]; then pass "sigkill_12_times_outputs_and_pki_whole (build ${span} ms)"; else fail sigkill_outputs_and_pki_whole "$bad"; fi
(cd k && "$MK" -q $M $W) || fail sigkill_next_build "build after the kills failed"
left=$(temps k)
if [ -z "$left" ] && why=$(pki_ok k) && why=$(outputs_ok k); then
	pass sigkill_next_build_leaves_no_temp
else
	fail sigkill_next_build_leaves_no_temp "left: $left $why"
fi
# Killed during the first build, while the PKI is made: no PKI or a whole one.
bad=
for i in $(seq 1 6); do
	rm -rf k1 && make_project k1
	(cd k1 && exec "$MK" -q $M >/dev/null 2>&1) &
	p=$!
	sleep "$(awk -v r=$RANDOM 'BEGIN { printf "%.3f", r / 32767 * 1.5 }')"
	kill -9 $p 2>/dev/null
	wait $p 2>/dev/null
	if [ -e k1/keys ]; then why=$(pki_ok k1) || { bad="kill $i: $why"; break; }; fi
	(cd k1 && "$MK" -q $M) || { bad="kill $i: the next build failed"; break; }
	[ -z "$(temps k1)" ] || { bad="kill $i: left $(temps k1)"; break; }
done
if [ -z "$bad" ]; then pass sigkill_first_build_no_half_pki; else fail sigkill_first_build_no_half_pki "$bad"; fi

# ---- a full disk, a read-only output directory ------------------------------
# out/ on a small tmpfs: the first build fits, the next one does not.
cp -a base f
(cd f && "$MK" -q $M) || fail setup "build failed"
mv f/out f/out.disk && mkdir f/out
if mount -t tmpfs -o size=16m tmpfs f/out 2>/dev/null; then
	mounts+=("$WORK/f/out")
	cp -a f/out.disk/. f/out/
	before=$(sums f)
	mkdir -p f/overlays/common/etc
	head -c 20M /dev/urandom >f/overlays/common/etc/dlws-big
	err=$(cd f && "$MK" $M 2>&1 >/dev/null)
	rc=$?
	if [ $rc = 1 ] && grep -q "No space left on device" <<<"$err" && [ "$(grep -c 'error:' <<<"$err")" = 1 ] &&
	   [ "$(sums f)" = "$before" ] && [ -z "$(temps f)" ]; then
		pass enospc_leaves_outputs_and_no_temp
	else
		fail enospc_leaves_outputs_and_no_temp "rc $rc, left: $(temps f): $err"
	fi
	rm f/overlays/common/etc/dlws-big
	mount -o remount,ro f/out
	err=$(cd f && "$MK" $M 2>&1 >/dev/null)
	rc=$?
	if [ $rc = 1 ] && grep -q "Read-only file system" <<<"$err" && [ "$(grep -c 'error:' <<<"$err")" = 1 ] &&
	   [ "$(sums f)" = "$before" ]; then
		pass read_only_output_dir_refused_cleanly
	else
		fail read_only_output_dir_refused_cleanly "rc $rc: $err"
	fi
else
	fail enospc_leaves_outputs_and_no_temp "cannot mount a tmpfs (the suite runs as root)"
fi

# ---- an input rewritten while it is read -------------------------------------
# A 48 MiB overlay file flips between two contents of one size for the whole
# build: what is read must be what is shipped, or the build fails saying so.
cp -a base r
(cd r && "$MK" -q $M) || fail setup "build failed"
before=$(sums r)
mkdir -p r/overlays/common/etc
head -c 48M /dev/zero >"$WORK/zeros" && tr '\0' 'x' <"$WORK/zeros" >"$WORK/xs"
cp "$WORK/zeros" r/overlays/common/etc/dlws-moving
( while :; do cp "$WORK/xs" r/overlays/common/etc/dlws-moving.w && cat r/overlays/common/etc/dlws-moving.w >r/overlays/common/etc/dlws-moving
	cp "$WORK/zeros" r/overlays/common/etc/dlws-moving.w && cat r/overlays/common/etc/dlws-moving.w >r/overlays/common/etc/dlws-moving; done ) 2>/dev/null &
flipper=$!
err=$(cd r && "$MK" $M 2>&1 >/dev/null)
rc=$?
kill $flipper 2>/dev/null
wait $flipper 2>/dev/null
rm -f r/overlays/common/etc/dlws-moving.w
if [ $rc = 1 ] && grep -qE "'[^']*dlws-moving' changed while the (payload|output) was written|sha256|changed" <<<"$err" &&
   [ "$(sums r)" = "$before" ]; then
	pass input_rewritten_while_read_fails_cleanly
elif [ $rc = 0 ] && why=$(outputs_ok r); then
	pass "input_rewritten_while_read_shipped_whole (the build read one version)"
else
	fail input_rewritten_while_read "rc $rc ${why:-}: $err"
fi

# ---- a damaged or foreign PKI ----------------------------------------------------
cp -a base p
(cd p && "$MK" -q $M) || fail setup "build failed"
before=$(sums p)
cp p/keys/ca-key.pem "$WORK/ca-key.pem"
head -c 200 "$WORK/ca-key.pem" >p/keys/ca-key.pem
err=$(cd p && "$MK" $M 2>&1 >/dev/null)
rc=$?
if [ $rc = 1 ] &&
   [ "$err" = "dlws-mkimage: error: 'recipes/../keys/ca-key.pem' is not a PEM private key (damaged or truncated?): restore it, or remove it and 'recipes/../keys/ca.pem' to make a new CA" ] &&
   [ -z "$(temps p)" ]; then
	pass truncated_ca_key_refused
else
	fail truncated_ca_key_refused "rc $rc: $err"
fi
openssl genrsa 2048 2>/dev/null >p/keys/ca-key.pem
err=$(cd p && "$MK" $M 2>&1 >/dev/null)
rc=$?
if [ $rc = 1 ] && [ "$err" = "dlws-mkimage: error: 'recipes/../keys/ca-key.pem' does not match 'recipes/../keys/ca.pem'" ]; then
	pass foreign_ca_key_refused
else
	fail foreign_ca_key_refused "rc $rc: $err"
fi
cp "$WORK/ca-key.pem" p/keys/ca-key.pem
check pki_and_outputs_untouched_by_refusals test "$(sums p)" = "$before"
openssl genrsa 2048 2>/dev/null >p/keys/apiserver-key.pem
err=$(cd p && "$MK" $M 2>&1 >/dev/null)
rc=$?
if [ $rc = 0 ] && grep -qx "reissued apiserver.pem: key does not match" <<<"$err" && why=$(pki_ok p); then
	pass foreign_leaf_key_reissues_its_certificate
else
	fail foreign_leaf_key_reissues_its_certificate "rc $rc ${why:-}: $err"
fi
finish
