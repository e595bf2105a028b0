#!/usr/bin/env bash
# asan-pass: no (boots bundles that test_pxe and test_publish build and publish under ASan too)
# A boot server as operators run it, from what the bundle carries: in a
# network namespace this test creates, a bridge with the boot server's
# address, dnsmasq (full DHCP + TFTP) started from the published
# dnsmasq.conf and nginx from the published nginx.conf, serving
# `dlws-mkimage publish`'s root/current. QEMU nodes on taps of that bridge
# boot by PXE: UEFI as a server's firmware does (OVMF's own PXE, no option
# ROM, gets snponly.efi over TFTP; dnsmasq's log shows it), BIOS through
# QEMU's iPXE ROM (Debian ships no other BIOS PXE ROM, and SeaBIOS has no
# PXE of its own, so undionly.kpxe is only fetched by TFTP here). iPXE gets
# boot.ipxe, kernels and segments over HTTP (nginx's access log shows them);
# a worker installs with its OS image fetched over HTTP. Then `publish
# --rollback`, and the next boot gets the old release. Last, proxy DHCP: a
# second namespace on the bridge plays the network's own DHCP server, the
# bundle rebuilt with `dhcp: proxy` gives only the boot files, and a UEFI
# node boots from it. Nothing outside the two namespaces is reachable.
. "$(dirname "$0")/../lib/e2e.sh"
. "$ROOT/tests/lib/qemu-boot.sh"
base=$ROOT/out/base
agent=$ROOT/out/agent/dlws-install
[ -f "$base/vmlinuz" ] || { fail setup "no default base in $base (run 'make base')"; finish; }
[ -x "$agent" ] || { fail setup "no install agent at $agent (run 'make')"; finish; }
for t in dnsmasq nginx ip; do
	command -v $t >/dev/null || { fail setup "$t is not installed (make deps)"; finish; }
done
ovmf_code=/usr/share/OVMF/OVMF_CODE_4M.fd ovmf_vars=/usr/share/OVMF/OVMF_VARS_4M.fd
logs=${DLWS_TEST_LOGS:-$ROOT/out/test-logs}
mkdir -p "$logs"
ns=dlws-bs-$$ lan=dlws-bs-lan-$$
srv=$WORK/srv/boot
pids=()
cleanup() {
	# Everything still running in the namespaces (dnsmasq, nginx, a QEMU).
	for n in "$ns" "$lan"; do ip netns pids "$n" 2>/dev/null | xargs -r kill 2>/dev/null; done
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	ip netns del "$ns" 2>/dev/null
	ip netns del "$lan" 2>/dev/null
	[ "$KEEP_WORK" = 1 ] || rm -rf "$WORK"
}
trap cleanup EXIT
in_ns() { ip netns exec "$ns" "$@"; }

cd "$WORK"
make_project p
cp "$base/vmlinuz" "$base/initrd.img" p/out/base/
cd p
export DLWS_AGENT=$agent
bash "$ROOT/tests/lib/mkosimage.sh" out/os.img >/dev/null 2>&1 || { fail setup "mkosimage failed"; finish; }
bzip2 -k out/os.img
sed -i "s|^  root: .*|  root: $srv|" recipes/cluster.yaml
# no_timer_check: on a loaded host a TCG guest can fail the kernel's IO-APIC
# timer check and panic before init (libguestfs boots its appliance with it
# for the same reason).
sed -i 's|^  cmdline: .*|  cmdline: "console=ttyS0 quiet panic=1 no_timer_check dlws.test"|' recipes/*.recipe
sed -i 's|^  cmdline: .*|&\n  image: ../out/os.img.bz2|' recipes/worker.recipe
printf 'install: { device: auto, after: poweroff }\n' >>recipes/worker.recipe
build() { "$MK" -q recipes/etcd.recipe recipes/worker.recipe; }
build || { fail build "the bundle did not build"; finish; }

# The image is served, not carried in RAM: no segment holds it, and the
# worker's install.conf names its URL and sum.
img_sum=$(sha256sum <out/os.img.bz2 | cut -d' ' -f1)
conf=$(bsdtar -xOf out/pxe/worker/shared.cpio.zst usr/share/oem/dlws/install.conf)
if [ "$(sha256sum <out/pxe/worker/os/os.img.bz2 | cut -d' ' -f1)" = "$img_sum" ] &&
	grep -qx "DLWS_INSTALL_IMAGE=http://192.168.255.1/worker/os/os.img.bz2" <<<"$conf" &&
	grep -qx "DLWS_INSTALL_IMAGE_SHA256=$img_sum" <<<"$conf" &&
	! bsdtar -tf out/pxe/worker/shared.cpio.zst | grep -q 'os\.img'; then
	pass image_served_not_in_initrd
else
	fail image_served_not_in_initrd "install.conf: $(tr '\n' ' ' <<<"$conf")"
fi

# Release A, then B (a changed template): B is current, A kept.
"$MK" -q publish out/pxe "$srv" >/dev/null || { fail publish_a "publish failed"; finish; }
cp -a out/pxe "$WORK/release-a"
echo '# release B' >>recipes/templates/cloud-config.yml
build || { fail build_b "the second bundle did not build"; finish; }
"$MK" -q publish out/pxe "$srv" >/dev/null || { fail publish_b "publish failed"; finish; }
check published_b_is_current diff -r out/pxe "$srv/current/"

# The namespace: a bridge with the boot server's address, a tap per VM.
ip netns add "$ns" || { fail setup "cannot create a network namespace"; finish; }
in_ns ip link set lo up
in_ns ip link add br0 type bridge
in_ns ip addr add 192.168.255.1/24 dev br0
in_ns ip link set br0 up
for t in tap0 tap1 tap2 tap3 tap4; do
	in_ns ip tuntap add "$t" mode tap && in_ns ip link set "$t" master br0 up
done
# The servers, from the published configs (dnsmasq and nginx run as root:
# the tree lies in this test's private directory). The options only place
# dnsmasq's files and log what it does (log-dhcp, and every TFTP file sent).
# start_dnsmasq NAME: its pid in $WORK/NAME.pid, its log in $WORK/NAME.log.
start_dnsmasq() {
	in_ns dnsmasq --keep-in-foreground --conf-file="$srv/current/dnsmasq.conf" --interface=br0 --bind-interfaces \
		--user=root --pid-file="$WORK/$1.pid" --dhcp-leasefile="$WORK/$1.leases" --log-dhcp \
		--log-facility="$WORK/$1.log" &
	pids+=($!)
}
start_dnsmasq dnsmasq
cat >"$WORK/nginx-main.conf" <<EOF
daemon off;
user root;
worker_processes 1;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log;
events { worker_connections 64; }
http {
	access_log $WORK/nginx-access.log;
	client_body_temp_path $WORK/nginx-tmp;
	include $srv/current/nginx.conf;
}
EOF
in_ns nginx -t -c "$WORK/nginx-main.conf" >"$WORK/nginx-t.log" 2>&1 &&
	pass nginx_accepts_site || fail nginx_accepts_site "$(tr '\n' ' ' <"$WORK/nginx-t.log")"
in_ns nginx -c "$WORK/nginx-main.conf" &
pids+=($!)
for _ in $(seq 50); do
	[ -s "$WORK/nginx.pid" ] && [ -s "$WORK/dnsmasq.pid" ] && break
	sleep 0.2
done
# TFTP serves the first stage (iPXE) from current.
if in_ns curl -sf -o "$WORK/undionly.kpxe" tftp://192.168.255.1/undionly.kpxe &&
	cmp -s "$WORK/undionly.kpxe" "$srv/current/undionly.kpxe"; then
	pass tftp_serves_first_stage
else
	fail tftp_serves_first_stage "no undionly.kpxe over TFTP ($(tail -3 "$WORK/dnsmasq.log" | tr '\n' ' '))"
fi

printf '#!/bin/sh\nexec ip netns exec %s qemu-system-x86_64 "$@"\n' "$ns" >"$WORK/qemu-ns"
chmod +x "$WORK/qemu-ns"
# net_boot NAME FIRMWARE TAP MAC [QEMU-ARGS...]: FIRMWARE bios is SeaBIOS
# with QEMU's iPXE ROM on the NIC, which asks for boot.ipxe at once; uefi is
# OVMF with no option ROM on the NIC (romfile=): OVMF's own driver and PXE,
# as on a server, fetch the first stage over TFTP.
net_boot() {
	local name=$1 fw=$2 tap=$3 mac=$4 log=$logs/bootserver-$1.log
	shift 4
	local nic="virtio-net-pci,netdev=n0,mac=$mac"
	[ "$fw" = uefi ] && nic="$nic,romfile="
	local args=(-boot n -netdev "tap,id=n0,ifname=$tap,script=no,downscript=no" -device "$nic" -m 1024 "$@")
	if [ "$fw" = uefi ]; then
		cp "$ovmf_vars" "$WORK/vars-$name.fd"
		args+=(-machine q35 -drive "if=pflash,format=raw,readonly=on,file=$ovmf_code"
			-drive "if=pflash,format=raw,file=$WORK/vars-$name.fd")
	fi
	QEMU=$WORK/qemu-ns qemu_boot "bootserver-$name" 300 "$log" -- "${args[@]}"
	local rc=$?
	echo "boot $name took ${QEMU_BOOT_SECS}s (end: $QEMU_BOOT_END)"
	console_text "$log" >"$WORK/console-$name"
	if [ $rc -ne 0 ]; then
		fail "$name" "QEMU ended with $rc ($QEMU_BOOT_END); console log kept at $log"
		return 1
	fi
}
sha() { sha256sum <"$1" | cut -d' ' -f1; }
user_data=usr/share/oem/dlws/rootfs/var/lib/flatcar-install/user_data
# expect_node NAME HOST TREE: the console shows HOST's name and a good
# payload whose cloud-config is TREE's (a release's node segment).
expect_node() {
	local name=$1 host=$2 tree=$3 c=$WORK/console-$1 cc
	cc=$(bsdtar -xOf "$tree/nodes/$host.cpio.zst" $user_data | sha256sum | cut -d' ' -f1)
	if grep -qx "DLWS-HOSTNAME: $host" "$c" && grep -q '^DLWS-PAYLOAD: OK ' "$c" &&
		grep -qx "DLWS-FILE: $cc /$user_data" "$c"; then
		pass "$name"
	else
		fail "$name" "$(grep -E '^DLWS-(HOSTNAME|PAYLOAD|VERIFY)' "$c" | tr '\n' ' ')"
	fi
}
# fetched NAME PATH...: nginx's access log shows each PATH served (200),
# to the address FROM when it is set (the client of one boot).
fetched() {
	local name=$1 missing=""
	shift
	for p in "$@"; do
		grep -q "^${FROM:-[^ ]*} .*\"GET $p HTTP/1\.[01]\" 200 " "$WORK/nginx-access.log" || missing="$missing $p"
	done
	if [ -z "$missing" ]; then pass "$name"; else fail "$name" "not served over HTTP${FROM:+ to $FROM}:$missing"; fi
}
# first_stage_over_tftp NAME BOOT LOG OFFSET IP FILE: dnsmasq's LOG, from
# byte OFFSET on, shows FILE of current sent by TFTP to IP, and BOOT's
# console that the firmware loaded it and iPXE then ran on the firmware's
# network driver (SNP), not from an option ROM.
first_stage_over_tftp() {
	local name=$1 c=$WORK/console-$2 log=$3 offset=$4 ip=$5 file=$6
	local sent
	sent=$(tail -c +$((offset + 1)) "$log" | awk -v f="$srv/current/$file" -v ip="$ip" \
		'$4 ~ /^dnsmasq-tftp/ && $5 == "sent" && $6 == f && $8 == ip { n++ } END { print n + 0 }')
	if [ "$sent" -gt 0 ] && grep -qx "  NBP filename is $file" "$c" && grep -q 'net0: .* using SNP on ' "$c"; then
		pass "$name"
	else
		fail "$name" "TFTP sends of $file to $ip: $sent; console: $(grep -E 'NBP|PXE|net0: .* using' "$c" | tr '\n' ' ')"
	fi
}

: >"$WORK/nginx-access.log"
net_boot bios_etcd1 bios tap0 52:54:00:00:11:01 && expect_node bios_etcd1 dlws-etcd1 out/pxe
fetched bios_etcd1_over_http /boot.ipxe /etcd/vmlinuz /etcd/base.img /etcd/shared.cpio.zst /nodes/dlws-etcd1.cpio.zst
if [ -f "$ovmf_code" ]; then
	: >"$WORK/nginx-access.log"
	offset=$(stat -c %s "$WORK/dnsmasq.log")
	net_boot uefi_etcd1 uefi tap1 52:54:00:00:11:01 && expect_node uefi_etcd1 dlws-etcd1 out/pxe
	first_stage_over_tftp uefi_etcd1_first_stage_over_tftp uefi_etcd1 "$WORK/dnsmasq.log" "$offset" 192.168.255.11 snponly.efi
	FROM=192.168.255.11 fetched uefi_etcd1_over_http /boot.ipxe /etcd/vmlinuz /etcd/base.img /etcd/shared.cpio.zst /nodes/dlws-etcd1.cpio.zst
else
	fail uefi_etcd1 "OVMF is not installed ($ovmf_code; make deps installs ovmf)"
fi

# A worker installs onto a blank disk, its OS image streamed over HTTP.
truncate -s 128M "$WORK/disk.img"
: >"$WORK/nginx-access.log"
if net_boot install_worker1 bios tap2 52:54:00:00:21:01 -drive "file=$WORK/disk.img,format=raw,if=virtio"; then
	c=$WORK/console-install_worker1
	if grep -qx 'DLWS-INSTALL: rc=0' "$c" && [ "$QEMU_BOOT_END" = poweroff ]; then
		pass worker_installed_over_http
	else
		fail worker_installed_over_http "$(grep -E 'DLWS-(INSTALL|PAYLOAD)|dlws-install' "$c" | tail -5 | tr '\n' ' ') end: $QEMU_BOOT_END"
	fi
	fetched os_image_over_http /worker/os/os.img.bz2
	n=$(sgdisk -p "$WORK/disk.img" 2>/dev/null | awk '$7 == "ROOT" {print $1}')
	start=$(sgdisk -i "$n" "$WORK/disk.img" 2>/dev/null | awk '/First sector/ {print $3}')
	end=$(sgdisk -i "$n" "$WORK/disk.img" 2>/dev/null | awk '/Last sector/ {print $3}')
	if [ -n "$n" ] && dd if="$WORK/disk.img" of="$WORK/root.img" bs=512 skip="$start" count=$((end - start + 1)) status=none &&
		[ "$(debugfs -R 'cat /etc/os-release' "$WORK/root.img" 2>/dev/null | sha256sum | cut -d' ' -f1)" = \
			"$(echo 'stand-in OS image for dlws-mkimage tests' | sha256sum | cut -d' ' -f1)" ] &&
		[ "$(debugfs -R "cat /var/lib/flatcar-install/user_data" "$WORK/root.img" 2>/dev/null | sha256sum | cut -d' ' -f1)" = \
			"$(bsdtar -xOf out/pxe/nodes/dlws-worker1.cpio.zst $user_data | sha256sum | cut -d' ' -f1)" ]; then
		pass installed_disk_has_image_and_payload
	else
		fail installed_disk_has_image_and_payload "no ROOT with the stand-in OS and worker1's cloud-config on the disk"
	fi
fi

# Rollback: the next boot gets release A, byte for byte.
if "$MK" -q publish --rollback "$srv" >/dev/null && diff -r "$WORK/release-a" "$srv/current/" >/dev/null; then
	pass rollback_switches_current
else
	fail rollback_switches_current "current is not release A after --rollback"
fi
net_boot bios_etcd1_after_rollback bios tap3 52:54:00:00:11:01 &&
	expect_node bios_etcd1_after_rollback dlws-etcd1 "$WORK/release-a"

# Proxy DHCP (the default): the network's own DHCP server, a plain dnsmasq
# in a second namespace joined to the bridge by a veth, hands out addresses
# (not the nodes' own: it knows nothing of them); the bundle's dnsmasq, built
# and published again (release C) with `dhcp: proxy`, only the boot files.
# A UEFI node boots by its firmware's PXE.
proxy_boot() {
	local mac=52:54:00:00:11:01 ip
	sed -i 's/dhcp: full /dhcp: proxy/; /^  range:/d' recipes/cluster.yaml
	echo '# release C' >>recipes/templates/cloud-config.yml
	if ! build || ! grep -qx 'dhcp-range=192.168.255.0,proxy,255.255.255.0' out/pxe/dnsmasq.conf ||
		! "$MK" -q publish out/pxe "$srv" >/dev/null; then
		fail proxy_publish "the proxy-mode bundle did not build or publish"
		return
	fi
	# The full-mode dnsmasq leaves the bridge (by its pid file: $! is the
	# subshell of in_ns) before the proxy takes its ports.
	local old
	old=$(cat "$WORK/dnsmasq.pid") && kill "$old"
	for _ in $(seq 50); do
		kill -0 "$old" 2>/dev/null || break
		sleep 0.1
	done
	if ! { ip netns add "$lan" && ip netns exec "$lan" ip link set lo up &&
		ip -n "$ns" link add lan0 type veth peer name eth0 netns "$lan" && ip -n "$ns" link set lan0 master br0 up &&
		ip -n "$lan" addr add 192.168.255.254/24 dev eth0 && ip -n "$lan" link set eth0 up; }; then
		fail proxy_setup "cannot join a second namespace to the bridge"
		return
	fi
	ip netns exec "$lan" dnsmasq --keep-in-foreground --conf-file=/dev/null --port=0 --interface=eth0 --bind-interfaces \
		--dhcp-range=192.168.255.50,192.168.255.59,255.255.255.0,1h --user=root --pid-file="$WORK/lan-dhcp.pid" \
		--dhcp-leasefile="$WORK/lan-dhcp.leases" --log-dhcp --log-facility="$WORK/lan-dhcp.log" &
	pids+=($!)
	start_dnsmasq dnsmasq-proxy
	for _ in $(seq 50); do
		[ -s "$WORK/lan-dhcp.pid" ] && [ -s "$WORK/dnsmasq-proxy.pid" ] && break
		sleep 0.2
	done
	: >"$WORK/nginx-access.log"
	net_boot proxy_uefi_etcd1 uefi tap4 $mac && expect_node proxy_uefi_etcd1 dlws-etcd1 out/pxe
	ip=$(awk -v mac=$mac '$2 == mac { print $3 }' "$WORK/lan-dhcp.leases" 2>/dev/null)
	if [[ $ip == 192.168.255.5[0-9] ]] && grep -q "PXE(br0) $mac proxy\$" "$WORK/dnsmasq-proxy.log" &&
		! grep -qE 'DHCP(OFFER|ACK)' "$WORK/dnsmasq-proxy.log"; then
		pass proxy_address_from_network_dhcp
	else
		fail proxy_address_from_network_dhcp "lease '${ip:-none}' from the network's server; proxy: $(grep -E 'PXE\(|DHCP(OFFER|ACK)' "$WORK/dnsmasq-proxy.log" | tail -3 | tr '\n' ' ')"
	fi
	first_stage_over_tftp proxy_first_stage_over_tftp proxy_uefi_etcd1 "$WORK/dnsmasq-proxy.log" 0 "${ip:-none}" snponly.efi
	FROM=${ip:-none} fetched proxy_uefi_etcd1_over_http /boot.ipxe /etcd/vmlinuz /etcd/base.img /etcd/shared.cpio.zst /nodes/dlws-etcd1.cpio.zst
}
if [ -f "$ovmf_code" ]; then
	proxy_boot
else
	fail proxy_uefi_etcd1 "OVMF is not installed ($ovmf_code; make deps installs ovmf)"
fi

if [ "$FAILED" = 1 ]; then
	for f in dnsmasq.log dnsmasq-proxy.log lan-dhcp.log; do
		[ -f "$WORK/$f" ] && cp "$WORK/$f" "$logs/bootserver-$f"
	done
	cp "$WORK/nginx-access.log" "$logs/bootserver-nginx-access.log" 2>/dev/null
	echo "logs kept in $logs (bootserver-*)"
fi
finish
