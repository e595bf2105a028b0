#!/usr/bin/env bash
# Installs the Debian packages that building dlws-mkimage and running its
# tests need. Safe to run again: only missing packages are installed.
set -euo pipefail

packages=(
	# build
	build-essential pkg-config libyaml-dev libssl-dev libarchive-dev zlib1g-dev libisofs-dev libjson-c-dev libsquashfs-dev
	# the install agent is linked statically: the .a files libarchive needs
	# (libzstd and liblzma also compress the builder's segments)
	libbz2-dev liblzma-dev libxml2-dev nettle-dev libzstd-dev liblz4-dev libacl1-dev
	# the built-in default base (base/mkbase.sh)
	linux-image-amd64 busybox-static cpio kmod xz-utils zstd
	# tests: independent readers and boots
	openssl libarchive-tools qemu-system-x86 xorriso genisoimage e2fsprogs gdisk fdisk bzip2
	mandoc man-db  # the man page's lint: mandoc -T lint, man --warnings (test_install)
	# real servers in network namespaces (etcd in test_etcd_tls)
	iproute2
	# systemd-sysext images: mksquashfs/unsquashfs, systemd-dissect
	squashfs-tools systemd-container
	# the real consumers of what we write for Flatcar: Ignition configs, systemd units
	ignition systemd jq python3 python3-yaml
	# PXE bundles and ISOs: bootloaders, UEFI firmware for boot tests
	pxelinux syslinux-common isolinux grub-efi-amd64-bin ovmf ipxe-qemu mtools dosfstools dnsmasq-base
	# boot servers: iPXE's first stage (undionly.kpxe, ipxe.efi) in bundles; publish over
	# rsync+ssh; the servers the tests run against published trees (nginx, sshd)
	ipxe rsync openssh-client openssh-server nginx-light
	# disk images (outputs.disk): libguestfs, and guestfish to read them back in tests
	libguestfs-dev libguestfs-tools qemu-utils
	# flash: losetup, mount, script (progress under a pseudo-terminal)
	util-linux mount bsdutils
	# fuzz/: libFuzzer harnesses (clang -fsanitize=fuzzer); the fuzzer and
	# sanitizer runtimes are only a Recommends of clang, so named here
	clang libclang-rt-dev
	# make bench: GNU time (peak RSS, %M); its payload comes from apt-get download
	time
	# the Debian package (debian/, test_deb): dpkg-buildpackage, dh, lintian
	dpkg-dev debhelper fakeroot lintian
)

missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
	exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps: missing packages: ${missing[*]}" >&2
	echo "install-deps: run 'sudo make deps' (or as root)" >&2
	exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
