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

# boot_node HOST [SEGMENT-DIR]: boots the base with the shared and HOST's segments.
boot_node() {
	local host=$1 dir=${2:-out/worker-initrd} log=$logs/payload-boot-$1.log
	cat out/base/initrd.img "$dir/shared.cpio.gz" "$dir/node-$host.cpio.gz" >"$WORK/initrd-$host"
	qemu_boot "payload-$host" 180 "$log" -- -m 768 -kernel out/base/vmlinuz -initrd "$WORK/initrd-$host" \
		-append "console=ttyS0 quiet panic=1 dlws.test"
	local rc=$?
	echo "boot of $host took ${QEMU_BOOT_SECS}s (end: $QEMU_BOOT_END)"
	if [ $rc -ne 0 ]; then
		fail "boot_$host" "QEMU ended with $rc ($QEMU_BOOT_END); console log kept at $log"
		return 1
	fi
	console_text "$log" >"$WORK/console-$host"
}

sha() { sha256sum <"$1" | cut -d' ' -f1; }
conf_path=/usr/share/oem/dlws/rootfs/etc/kubernetes/kubelet.conf
for host in dlws-worker1 dlws-worker2; do
	other=dlws-worker1
	[ $host = dlws-worker1 ] && other=dlws-worker2
	boot_node $host || continue
	c=$WORK/console-$host
	n=$(for s in shared node-$host; do bsdtar -xOf out/worker-initrd/$s.cpio.gz "usr/share/oem/dlws/manifest.d/${s%%-*}"; done | grep -vc '^#')
	if grep -qx "DLWS-PAYLOAD: OK $n files" "$c"; then pass "boot_${host}_manifest_ok"; else fail "boot_${host}_manifest_ok" "$(grep DLWS-PAYLOAD "$c") (expected $n files; log in $logs)"; fi
	if grep -qx "DLWS-HOSTNAME: $host" "$c"; then pass "boot_${host}_hostname"; else fail "boot_${host}_hostname" "$(grep DLWS-HOSTNAME "$c")"; fi
	if grep -qx "DLWS-FILE: $(sha keys/kubelet-$host.conf) $conf_path" "$c"; then pass "boot_${host}_own_key"; else fail "boot_${host}_own_key" "its kubelet.conf is not on the console"; fi
	if grep -qe "$(sha keys/kubelet-$other.conf)" -e "$(sha keys/kubelet-$other-key.pem)" "$c"; then fail "boot_${host}_not_other_key" "$other's kubelet.conf or key reached $host"; else pass "boot_${host}_not_other_key"; fi
	cc=$(bsdtar -xOf out/worker-initrd/node-$host.cpio.gz usr/share/oem/dlws/rootfs/var/lib/flatcar-install/user_data | sha256sum | cut -d' ' -f1)
	if grep -qx "DLWS-FILE: $cc /usr/share/oem/dlws/rootfs/var/lib/flatcar-install/user_data" "$c"; then pass "boot_${host}_cloud_config"; else fail "boot_${host}_cloud_config" "cloud-config not found at its rootfs path (user_data)"; fi
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
