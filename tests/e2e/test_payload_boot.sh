#!/usr/bin/env bash
# The payload contract, proven by booting: the default base's kernel with
# the base initrd followed by the shared and node segments of a real build
# (what a bootloader loading several initrds does), no network. The live
# system checks the manifest and reports on the serial console.
. "$(dirname "$0")/../lib/e2e.sh"
. "$ROOT/tests/lib/qemu-boot.sh"
base=$ROOT/out/base
if [ ! -f "$base/vmlinuz" ] || [ ! -f "$base/initrd.img" ]; then
	fail setup "no default base in $base (run 'make base')"
	finish
fi
cd "$WORK"
make_project p
cp "$base/vmlinuz" "$base/initrd.img" p/out/base/
cd p
"$MK" -q recipes/worker.recipe || { fail build "worker recipe did not build"; finish; }
logs=${DLWS_TEST_LOGS:-$ROOT/out/test-logs}
mkdir -p "$logs"

# boot_node HOST [SEGMENT-DIR [EXT [LABEL]]]: boots the base with the shared
# and HOST's segments (SEGMENT-DIR/shared.EXT, node-HOST.EXT; EXT defaults to
# cpio.zst). LABEL names the log and the console copy (default HOST).
boot_node() {
	local host=$1 dir=${2:-out/worker-initrd} ext=${3:-cpio.zst} label=${4:-$1}
	local log=$logs/payload-boot-$label.log
	cat out/base/initrd.img "$dir/shared.$ext" "$dir/node-$host.$ext" >"$WORK/initrd-$label"
	qemu_boot "payload-$label" 180 "$log" -- -m 768 -kernel out/base/vmlinuz -initrd "$WORK/initrd-$label" \
		-append "console=ttyS0 quiet panic=1 dlws.test"
	local rc=$?
	echo "boot of $label took ${QEMU_BOOT_SECS}s (end: $QEMU_BOOT_END)"
	if [ $rc -ne 0 ]; then
		fail "boot_$label" "QEMU ended with $rc ($QEMU_BOOT_END); console log kept at $log"
		return 1
	fi
	console_text "$log" >"$WORK/console-$label"
}

sha() { sha256sum <"$1" | cut -d' ' -f1; }
conf_path=/usr/share/oem/dlws/rootfs/etc/kubernetes/kubelet.conf
# check_node_boot NAME HOST OTHER DIR EXT LABEL: what HOST's console (booted
# as LABEL from DIR's *.EXT segments) must show: the manifest checked, its
# hostname, its own kubelet.conf and cloud-config, nothing of OTHER's.
check_node_boot() {
	local name=$1 host=$2 other=$3 dir=$4 ext=$5 label=$6 c=$WORK/console-$6 n cc
	n=$(for s in shared node-$host; do bsdtar -xOf "$dir/$s.$ext" "usr/share/oem/dlws/manifest.d/${s%%-*}"; done | grep -vc '^#')
	if grep -qx "DLWS-PAYLOAD: OK $n files" "$c"; then pass "${name}_manifest_ok"; else fail "${name}_manifest_ok" "$(grep DLWS-PAYLOAD "$c") (expected $n files; log in $logs/payload-boot-$label.log)"; fi
	if grep -qx "DLWS-HOSTNAME: $host" "$c"; then pass "${name}_hostname"; else fail "${name}_hostname" "$(grep DLWS-HOSTNAME "$c")"; fi
	if grep -qx "DLWS-FILE: $(sha keys/kubelet-$host.conf) $conf_path" "$c"; then pass "${name}_own_key"; else fail "${name}_own_key" "its kubelet.conf is not on the console"; fi
	if grep -qe "$(sha keys/kubelet-$other.conf)" -e "$(sha keys/kubelet-$other-key.pem)" "$c"; then fail "${name}_not_other_key" "$other's kubelet.conf or key reached $host"; else pass "${name}_not_other_key"; fi
	cc=$(bsdtar -xOf "$dir/node-$host.$ext" usr/share/oem/dlws/rootfs/var/lib/flatcar-install/user_data | sha256sum | cut -d' ' -f1)
	if grep -qx "DLWS-FILE: $cc /usr/share/oem/dlws/rootfs/var/lib/flatcar-install/user_data" "$c"; then pass "${name}_cloud_config"; else fail "${name}_cloud_config" "cloud-config not found at its rootfs path (user_data)"; fi
}

# zstd is the default: every segment of the build is a valid zstd stream.
segs=(out/worker-initrd/*.cpio.zst)
if [ -f "${segs[0]}" ] && [ ${#segs[@]} = 4 ] && ! ls out/worker-initrd | grep -q '\.cpio\.\(gz\|xz\)$' && zstd -qt "${segs[@]}"; then
	pass segments_are_zstd
else
	fail segments_are_zstd "$(ls out/worker-initrd | tr '\n' ' ')"
fi
for host in dlws-worker1 dlws-worker2; do
	other=dlws-worker1
	[ $host = dlws-worker1 ] && other=dlws-worker2
	boot_node $host || continue
	check_node_boot "boot_$host" $host $other out/worker-initrd cpio.zst $host
done

# The other methods a recipe can choose, each booted the same way: a copy of
# the worker recipe beside it (its relative paths stay right) with
# compression: set and its own initrd output only.
for method in xz gzip; do
	ext=cpio.$method
	[ $method = gzip ] && ext=cpio.gz
	name=${method}_segments_boot
	sed -e "s|\.\./out/worker-initrd|../out/worker-$method-initrd|" -e '/^  \(pxe\|iso\):/d' \
		recipes/worker.recipe >recipes/worker-$method.recipe
	printf 'compression: %s\n' $method >>recipes/worker-$method.recipe
	dir=out/worker-$method-initrd
	if ! "$MK" -q recipes/worker-$method.recipe 2>"$WORK/build-$method.err"; then
		fail "${name}_builds" "recipes/worker-$method.recipe did not build: $(head -3 "$WORK/build-$method.err")"
		continue
	fi
	segs=("$dir"/*.cpio.*)
	want="node-dlws-worker1.$ext node-dlws-worker2.$ext role.$ext shared.$ext"
	if [ "$(cd "$dir" && ls -- *.cpio.* | sort | tr '\n' ' ')" = "$want " ]; then pass "${method}_segments_named"; else fail "${method}_segments_named" "$(ls "$dir" | tr '\n' ' ') (expected $want)"; fi
	case $method in
	xz)
		# The kernel's xz decoder takes CRC32 (or no check) only.
		checks=$(for s in "${segs[@]}"; do xz --robot --list "$s" | awk -F'\t' '$1 == "file" { print $7 }'; done | sort -u)
		if [ "$checks" = CRC32 ] && xz -t "${segs[@]}"; then pass xz_segments_check_crc32; else fail xz_segments_check_crc32 "xz --robot --list reports check '$checks'"; fi ;;
	gzip)
		if gzip -t "${segs[@]}"; then pass gzip_segments_valid; else fail gzip_segments_valid "gzip -t failed on ${segs[*]}"; fi ;;
	esac
	# What a boot proves here is the kernel's decoder, not the tool: once.
	if [ -n "${DLWS_ASAN_PASS:-}" ]; then
		echo "ran in the plain pass: ${name} (the boot tests the kernel's $method decoder)"
		continue
	fi
	boot_node dlws-worker1 "$dir" $ext "dlws-worker1-$method" || continue
	check_node_boot "$name" dlws-worker1 dlws-worker2 "$dir" $ext "dlws-worker1-$method"
done

# The built-in default as shipped: real Debian binaries from vendor/ (as
# `make` leaves them), the master recipe, booted the same way.
if [ ! -f "$ROOT/vendor/SHA256SUMS" ]; then
	fail shipped_master_boots "no vendor/ binaries (run 'make vendor')"
	finish
fi
mkdir -p "$WORK/shipped/out" && cd "$WORK/shipped"
cp -r "$ROOT/recipes" "$ROOT/overlays" . && cp -r "$base" out/base && ln -s "$ROOT/vendor" vendor
"$MK" -q recipes/master.recipe || { fail shipped_master_builds "recipes/master.recipe did not build"; finish; }
boot_node dlws-master out/master-initrd || finish
c=$(cat "$WORK/console-dlws-master")
kubectl_sum=$(sha256sum <"$ROOT/vendor/bin/kubectl" | cut -d' ' -f1)
if grep -q '^DLWS-PAYLOAD: OK ' <<<"$c" && grep -qx "DLWS-FILE: $kubectl_sum /usr/share/oem/dlws/rootfs/opt/bin/kubectl" <<<"$c" &&
	grep -qx 'DLWS-HOSTNAME: dlws-master' <<<"$c"; then
	pass shipped_master_boots
else
	fail shipped_master_boots "$(grep -E 'DLWS-(PAYLOAD|VERIFY)' <<<"$c" | head -3) (console log: $logs/payload-boot-dlws-master.log)"
fi
finish
