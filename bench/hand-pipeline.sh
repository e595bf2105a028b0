#!/usr/bin/env bash
# hand-pipeline.sh CONF OUT — the master's media made by hand with standard
# tools, the reference `make bench` compares a build with. It does the job
# `dlws-mkimage recipes/master.recipe` does for an ISO and a PXE bundle, the
# way a careful operator would script it:
#
#   PKI          openssl CLI: three CAs and every certificate and key a
#                master build creates (RSA 2048), the service-account key,
#                kubeconfigs (sed over a kubeconfig template), a token
#   pins         sha256sum -c of the payload's SHA256SUMS
#   configs      sed over templates (@HOSTNAME@, @IP@), heredocs for the
#                boot menus, node.env, dnsmasq and nginx
#   segments     find | cpio -o -H newc | gzip -6: the role's shared segment
#                (everything, for PXE), the ISO's (small files only) and the
#                node's; a manifest "sha256 size mode path" in each
#   PXE          the tree (pxelinux, iPXE, GRUB net image by grub-mkimage),
#                and its SHA256SUMS (no tar of it: the tool writes one
#                only when a recipe asks, outputs.pxe.tar)
#   ISO          GRUB EFI image (grub-mkimage, mkfs.fat, mmd, mcopy) and
#                isolinux; large files stored as files on the medium;
#                xorriso -as mkisofs, hybrid for BIOS and UEFI
#
# It skips what only the tool does (validating recipes, templates and
# cloud-configs, reading the image archive, byte-identical output) and
# stages large files by hard link, not copy, so it is a lean reference.
#
# CONF is a shell fragment (bench/run.sh writes it) setting PAYLOAD,
# TEMPLATES, OVERLAYS, KERNEL, INITRD, PAYLOAD_SCRIPT, CMDLINE, RECIPE,
# ROLE, CLUSTER, DOMAIN, SERVICE_IP, NODE_HOST, NODE_IP, NODE_MAC, MASTERS,
# ETCD, WORKERS ("host=ip ..."), BOOT_ADDR, BOOT_RANGE, BOOT_ROOT, LABEL,
# LARGE. OUT receives keys/, pxe/ and master.iso (replaced).
set -euo pipefail
export LC_ALL=C

prog=bench/hand-pipeline.sh
die() { printf '%s: error: %s\n' "$prog" "$*" >&2; exit 1; }
[ $# -eq 2 ] || { printf 'usage: %s CONF OUT\n' "$prog" >&2; exit 2; }
[ -f "$1" ] || die "no conf file '$1'"
# shellcheck disable=SC1090
. "$1"
mkdir -p "$2"
OUT=$(cd "$2" && pwd)
for t in openssl sed cpio gzip sha256sum xorriso grub-mkimage mkfs.fat mmd mcopy tar; do
	command -v "$t" >/dev/null 2>&1 || die "'$t' not found (make deps installs it)"
done
GRUB_DIR=/usr/lib/grub/x86_64-efi ISOLINUX=/usr/lib/ISOLINUX SYSLINUX=/usr/lib/syslinux/modules/bios
PXELINUX=/usr/lib/PXELINUX/pxelinux.0 IPXE=/usr/lib/ipxe

W=$OUT/.hand-work
rm -rf "$W" "$OUT/keys" "$OUT/pxe" "$OUT/pxe.tar" "$OUT/master.iso"
trap 'rm -rf "$W"' EXIT
K=$OUT/keys
mkdir -p "$W" "$K"
chmod 0700 "$K"

# ---- PKI ---------------------------------------------------------------
ca() {	# NAME CN
	openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 3650 -subj "/CN=$2" \
		-keyout "$K/$1-key.pem" -out "$K/$1.pem" \
		-addext "basicConstraints=critical,CA:TRUE" \
		-addext "keyUsage=critical,digitalSignature,keyEncipherment,keyCertSign" 2>/dev/null
}
leaf() {	# NAME CA SUBJECT EKU [SANS]
	local ext=$W/$1.ext
	{
		echo "basicConstraints=critical,CA:FALSE"
		echo "keyUsage=critical,digitalSignature,keyEncipherment"
		echo "extendedKeyUsage=$4"
		[ -z "${5:-}" ] || echo "subjectAltName=$5"
	} >"$ext"
	openssl req -new -newkey rsa:2048 -nodes -subj "$3" -keyout "$K/$1-key.pem" 2>/dev/null |
		openssl x509 -req -sha256 -days 365 -CA "$K/$2.pem" -CAkey "$K/$2-key.pem" \
			-set_serial "0x$(openssl rand -hex 16)" -extfile "$ext" -out "$K/$1.pem" 2>/dev/null
}
b64() { base64 -w0 "$1"; }
kubeconfig() {	# NAME USER CERT
	sed -e "s|@CA@|$(b64 "$K/ca.pem")|" -e "s|@SERVER@|https://${MASTERS%%[ ]*}|" \
	    -e "s|@USER@|$2|" -e "s|@CERT@|$(b64 "$K/$3.pem")|" -e "s|@KEY@|$(b64 "$K/$3-key.pem")|" \
	    -e "s|@CLUSTER@|$CLUSTER|" "$W/kubeconfig.in" >"$K/$1.conf"
	chmod 0600 "$K/$1.conf"
}
cat >"$W/kubeconfig.in" <<'EOF'
apiVersion: v1
kind: Config
clusters:
- name: @CLUSTER@
  cluster:
    certificate-authority-data: @CA@
    server: @SERVER@:443
contexts:
- name: @USER@@@CLUSTER@
  context: { cluster: @CLUSTER@, user: @USER@ }
current-context: @USER@@@CLUSTER@
users:
- name: @USER@
  user:
    client-certificate-data: @CERT@
    client-key-data: @KEY@
EOF
MASTERS=$(for m in $MASTERS; do printf '%s ' "${m#*=}"; done)
ca ca kube-ca
ca etcd-ca etcd-ca
ca front-proxy-ca front-proxy-ca
sans="DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.$DOMAIN,IP:$SERVICE_IP,IP:127.0.0.1"
for m in $MASTERS; do sans="$sans,IP:$m"; done
leaf apiserver ca /CN=kube-apiserver serverAuth "$sans,DNS:$NODE_HOST"
leaf apiserver-kubelet-client ca "/O=kubeadm:cluster-admins/CN=kube-apiserver-kubelet-client" clientAuth
leaf apiserver-etcd-client etcd-ca "/O=system:masters/CN=kube-apiserver-etcd-client" clientAuth
leaf front-proxy-client front-proxy-ca /CN=front-proxy-client clientAuth
for e in $ETCD; do
	leaf "etcd-${e%%=*}-server" etcd-ca "/CN=${e%%=*}" serverAuth,clientAuth "DNS:${e%%=*},DNS:localhost,IP:${e#*=},IP:127.0.0.1"
	leaf "etcd-${e%%=*}-peer" etcd-ca "/CN=${e%%=*}" serverAuth,clientAuth "DNS:${e%%=*},IP:${e#*=}"
done
leaf controller-manager ca /CN=system:kube-controller-manager clientAuth
leaf scheduler ca /CN=system:kube-scheduler clientAuth
leaf kube-proxy ca /CN=system:kube-proxy clientAuth
leaf admin ca "/O=kubeadm:cluster-admins/CN=kubernetes-admin" clientAuth
leaf super-admin ca "/O=system:masters/CN=kubernetes-super-admin" clientAuth
for n in "$NODE_HOST=$NODE_IP" $WORKERS; do
	leaf "kubelet-${n%%=*}" ca "/O=system:nodes/CN=system:node:${n%%=*}" serverAuth,clientAuth "DNS:${n%%=*},IP:${n#*=}"
done
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$K/service-account-key.pem" 2>/dev/null
openssl pkey -in "$K/service-account-key.pem" -pubout -out "$K/service-account.pem"
token_id=$(openssl rand -hex 3) token_secret=$(openssl rand -hex 8)
printf '%s.%s\n' "$token_id" "$token_secret" >"$K/bootstrap-token"
for c in admin super-admin controller-manager scheduler kube-proxy; do kubeconfig "$c" "$c" "$c"; done
for n in "$NODE_HOST=$NODE_IP" $WORKERS; do kubeconfig "kubelet-${n%%=*}" "system:node:${n%%=*}" "kubelet-${n%%=*}"; done
sed -e "/client-certificate-data/d" -e "s|client-key-data: .*|token: $token_id.$token_secret|" \
	"$K/kubelet-$NODE_HOST.conf" >"$K/bootstrap-kubelet.conf"
chmod 0600 "$K"/*-key.pem "$K/bootstrap-token" "$K/bootstrap-kubelet.conf"

# ---- pins ----------------------------------------------------------------
(cd "$PAYLOAD" && sha256sum -c --quiet SHA256SUMS) || die "a payload file does not match its pin"

# ---- segments --------------------------------------------------------------
oem=usr/share/oem/dlws
# manifest SEGMENT DIR: "sha256 size mode path" of every file in DIR, from
# one find and one sha256sum; a file whose sum was pinned (and just
# checked, listed in $W/pinned) is not hashed again.
manifest() {
	local seg=$1 dir=$2
	mkdir -p "$dir/$oem/manifest.d"
	(cd "$dir" && find . -type f ! -path "./$oem/manifest.d/*" -printf '%s %m /%P\n') | sort -k3 >"$W/files"
	awk 'FILENAME == ARGV[1] {pin[$2] = 1; next} !($3 in pin) {print substr($3, 2)}' "$W/pinned" "$W/files" >"$W/tohash"
	{
		cat "$W/pinned"
		(cd "$dir" && tr '\n' '\0' <"$W/tohash" | xargs -0 -r sha256sum) | awk '{print $1, "/" $2}'
	} >"$W/sums"
	{
		echo "# dlws payload manifest, segment '$seg': sha256 size mode path"
		awk 'NR == FNR {sum[$2] = $1; next} {printf "%s %s %04d %s\n", sum[$3], $1, $2, $3}' "$W/sums" "$W/files"
	} >"$dir/$oem/manifest.d/$seg"
}
segment() {	# DIR OUTFILE
	(cd "$1" && find . -mindepth 1 | sort | cpio -o -H newc -R 0:0 --quiet) | gzip -6 >"$2"
}
place() {	# SRC DEST: a hard link where it can, else a copy
	mkdir -p "$(dirname "$2")"
	ln "$1" "$2" 2>/dev/null || cp "$1" "$2"
}

# The role's shared segment: files, images, overlays, the payload step.
S=$W/shared
: >"$W/pinned"
while read -r src dest mode; do
	place "$PAYLOAD/$src" "$S/$oem/rootfs$dest"
	chmod "$mode" "$S/$oem/rootfs$dest"
	printf '%s /%s\n' "$(grep -m1 " $src\$" "$PAYLOAD/SHA256SUMS" | cut -d' ' -f1)" "$oem/rootfs$dest" >>"$W/pinned"
done <"$PAYLOAD/files.list"
while read -r src; do
	place "$PAYLOAD/$src" "$S/$oem/images/$(basename "$src")"
	printf '%s /%s\n' "$(grep -m1 " $src\$" "$PAYLOAD/SHA256SUMS" | cut -d' ' -f1)" "$oem/images/$(basename "$src")" >>"$W/pinned"
done <"$PAYLOAD/images.list"
for o in $OVERLAYS; do cp -a "$o/." "$S/$oem/rootfs/"; done
install -D -m 0755 "$PAYLOAD_SCRIPT" "$S/$oem/bin/dlws-payload"

# The ISO's shared segment: the same less the large files, which stay on
# the medium under dlws/large/ and are listed under $oem/large/.
I=$W/iso
IS=$W/iso-shared
mkdir -p "$I/dlws" "$IS"
medium_id=$(openssl rand -hex 16)
printf '%s\n' "$medium_id" >"$I/dlws/medium-id"
cp -al "$S/." "$IS/"
(cd "$IS" && find . -type f -size +$((LARGE - 1))c -printf '%P\n') >"$W/large"
while read -r f; do
	mkdir -p "$(dirname "$I/dlws/large/${f#"$oem"/}")"
	mv "$IS/$f" "$I/dlws/large/${f#"$oem"/}"
done <"$W/large"
cp "$I/dlws/medium-id" "$IS/$oem/medium-id"
manifest shared "$S"
manifest shared "$IS"
awk -v oem="/$oem/" 'NR == FNR {large[$1] = 1; next}
	substr($4, 2) in large {p = $4; sub(oem, oem "large/", p); print $1, $2, $3, p}' \
	"$W/large" "$S/$oem/manifest.d/shared" >>"$IS/$oem/manifest.d/shared"

# The node's segment: its configs, certificates, keys and kubeconfigs.
N=$W/node
R=$N/$oem/rootfs
mkdir -p "$R/etc/kubernetes/pki/etcd" "$R/etc/kubernetes/dlws"
(cd "$TEMPLATES" && find . -type f) | while read -r t; do
	t=${t#./}
	case "$t" in usr/share/oem/*) d=$N/$t ;; *) d=$R/$t ;; esac
	mkdir -p "$(dirname "$d")"
	sed -e "s/@HOSTNAME@/$NODE_HOST/g" -e "s/@IP@/$NODE_IP/g" "$TEMPLATES/$t" >"$d"
done
chmod 0600 "$R/var/lib/flatcar-install/user_data" "$N/usr/share/oem/config.ign"
crt() { install -m 0644 "$K/$1.pem" "$R/etc/kubernetes/pki/$2.crt"; }
key() { install -m 0600 "$K/$1-key.pem" "$R/etc/kubernetes/pki/$2.key"; }
crt ca ca; crt etcd-ca etcd/ca; crt front-proxy-ca front-proxy-ca
for c in apiserver apiserver-kubelet-client apiserver-etcd-client front-proxy-client; do crt "$c" "$c"; key "$c" "$c"; done
install -m 0600 "$K/service-account-key.pem" "$R/etc/kubernetes/pki/sa.key"
install -m 0644 "$K/service-account.pem" "$R/etc/kubernetes/pki/sa.pub"
for c in admin super-admin controller-manager scheduler; do install -m 0600 "$K/$c.conf" "$R/etc/kubernetes/$c.conf"; done
install -m 0600 "$K/kubelet-$NODE_HOST.conf" "$R/etc/kubernetes/kubelet.conf"
cat >"$R/etc/kubernetes/dlws/bootstrap-token.yaml" <<EOF
apiVersion: v1
kind: Secret
metadata: { name: bootstrap-token-$token_id, namespace: kube-system }
type: bootstrap.kubernetes.io/token
stringData:
  token-id: "$token_id"
  token-secret: "$token_secret"
  usage-bootstrap-authentication: "true"
  usage-bootstrap-signing: "true"
  auth-extra-groups: system:bootstrappers:kubeadm:default-node-token
EOF
chmod 0600 "$R/etc/kubernetes/dlws/bootstrap-token.yaml"
printf 'DLWS_HOSTNAME=%s\nDLWS_IP=%s\nDLWS_ROLE=%s\nDLWS_CLUSTER=%s\nDLWS_RECIPE=%s\n' \
	"$NODE_HOST" "$NODE_IP" "$ROLE" "$CLUSTER" "$RECIPE" >"$N/$oem/node.env"
: >"$W/pinned"
manifest node "$N"

P=$OUT/pxe
mkdir -p "$P/$RECIPE" "$P/nodes" "$P/pxelinux.cfg" "$P/grub" "$I/$RECIPE" "$I/nodes"
segment "$S" "$P/$RECIPE/shared.cpio.gz"
segment "$IS" "$I/$RECIPE/shared.cpio.gz"
segment "$N" "$P/nodes/$NODE_HOST.cpio.gz"

# ---- PXE tree --------------------------------------------------------------
cp "$KERNEL" "$P/$RECIPE/vmlinuz"
cp "$INITRD" "$P/$RECIPE/base.img"
cp "$PXELINUX" "$P/"
cp "$SYSLINUX/ldlinux.c32" "$SYSLINUX/menu.c32" "$SYSLINUX/libutil.c32" "$P/"
cp "$IPXE/undionly.kpxe" "$IPXE/snponly.efi" "$P/"
grub-mkimage --format=x86_64-efi --directory "$GRUB_DIR" --output "$P/bootx64.efi" --prefix "" \
	efinet tftp http net normal configfile linux echo test serial terminal efi_gop efi_uga all_video gzio sleep regexp
role_initrds="$RECIPE/base.img,$RECIPE/shared.cpio.gz"
node_initrds="$role_initrds,nodes/$NODE_HOST.cpio.gz"
node_args="$CMDLINE dlws.recipe=$RECIPE dlws.node=$NODE_HOST flatcar.first_boot=1"
mac_file=01-$(printf '%s' "$NODE_MAC" | tr ':' '-')
cat >"$P/pxelinux.cfg/default" <<EOF
UI menu.c32
DEFAULT $RECIPE
TIMEOUT 30
LABEL $RECIPE
  KERNEL $RECIPE/vmlinuz
  INITRD $role_initrds
  APPEND $CMDLINE dlws.recipe=$RECIPE
LABEL $NODE_HOST
  KERNEL $RECIPE/vmlinuz
  INITRD $node_initrds
  APPEND $node_args
EOF
sed -n "/^LABEL $NODE_HOST/,\$p" "$P/pxelinux.cfg/default" | sed "1i DEFAULT $NODE_HOST" >"$P/pxelinux.cfg/$mac_file"
cat >"$P/grub.cfg" <<EOF
if [ -s /grub/\${net_default_mac}.cfg ]; then configfile /grub/\${net_default_mac}.cfg; fi
set default=$RECIPE
set timeout=3
menuentry '$RECIPE' { linux /$RECIPE/vmlinuz $CMDLINE dlws.recipe=$RECIPE; initrd /$RECIPE/base.img /$RECIPE/shared.cpio.gz; }
EOF
cat >"$P/grub/$NODE_MAC.cfg" <<EOF
set default=$NODE_HOST
set timeout=0
menuentry '$NODE_HOST' { linux /$RECIPE/vmlinuz $node_args; initrd /$RECIPE/base.img /$RECIPE/shared.cpio.gz /nodes/$NODE_HOST.cpio.gz; }
EOF
cat >"$P/boot.ipxe" <<EOF
#!ipxe
iseq \${mac} $NODE_MAC && goto $NODE_HOST ||
:$NODE_HOST
kernel $RECIPE/vmlinuz initrd=base.img initrd=shared.cpio.gz initrd=$NODE_HOST.cpio.gz $node_args
initrd $RECIPE/base.img
initrd $RECIPE/shared.cpio.gz
initrd nodes/$NODE_HOST.cpio.gz
boot
EOF
cat >"$P/dnsmasq.conf" <<EOF
port=0
enable-tftp
tftp-root=$BOOT_ROOT/current
dhcp-range=$BOOT_RANGE,1h
dhcp-match=set:efi64,option:client-arch,7
dhcp-match=set:efi64,option:client-arch,9
dhcp-userclass=set:ipxe,iPXE
dhcp-boot=tag:ipxe,http://$BOOT_ADDR/boot.ipxe
dhcp-boot=tag:!ipxe,tag:efi64,snponly.efi
dhcp-boot=tag:!ipxe,tag:!efi64,undionly.kpxe
dhcp-host=$NODE_MAC,$NODE_IP,$NODE_HOST
EOF
printf 'server {\n\tlisten %s:80;\n\troot %s/current;\n\tlocation / { try_files $uri =404; }\n}\n' \
	"$BOOT_ADDR" "$BOOT_ROOT" >"$P/nginx.conf"
printf '{"recipe":"%s","nodes":["%s"],"medium":"%s"}\n' "$RECIPE" "$NODE_HOST" "$medium_id" >"$P/dlws-build.json"
(cd "$P" && find . -type f | sed 's|^\./||' | sort | xargs sha256sum >"$W/SHA256SUMS" && mv "$W/SHA256SUMS" SHA256SUMS)

# ---- ISO -------------------------------------------------------------------
cp "$KERNEL" "$I/$RECIPE/vmlinuz"
cp "$INITRD" "$I/$RECIPE/base.img"
cp "$P/nodes/$NODE_HOST.cpio.gz" "$I/nodes/"
cp "$P/dlws-build.json" "$I/"
mkdir -p "$I/isolinux" "$I/boot/grub"
cp "$ISOLINUX/isolinux.bin" "$SYSLINUX/ldlinux.c32" "$SYSLINUX/menu.c32" "$SYSLINUX/libutil.c32" "$I/isolinux/"
iso_args="$node_args dlws.medium=$LABEL"
cat >"$I/isolinux/isolinux.cfg" <<EOF
UI menu.c32
DEFAULT $NODE_HOST
TIMEOUT 30
LABEL $NODE_HOST
  KERNEL /$RECIPE/vmlinuz
  INITRD /$RECIPE/base.img,/$RECIPE/shared.cpio.gz,/nodes/$NODE_HOST.cpio.gz
  APPEND $iso_args
LABEL rescue
  KERNEL /$RECIPE/vmlinuz
  INITRD /$RECIPE/base.img,/$RECIPE/shared.cpio.gz,/nodes/$NODE_HOST.cpio.gz
  APPEND $iso_args dlws.noinstall
EOF
cat >"$I/boot/grub/grub.cfg" <<EOF
set default=$NODE_HOST
set timeout=3
menuentry '$NODE_HOST' --id $NODE_HOST { linux /$RECIPE/vmlinuz $iso_args; initrd /$RECIPE/base.img /$RECIPE/shared.cpio.gz /nodes/$NODE_HOST.cpio.gz; }
menuentry 'rescue' --id rescue { linux /$RECIPE/vmlinuz $iso_args dlws.noinstall; initrd /$RECIPE/base.img /$RECIPE/shared.cpio.gz /nodes/$NODE_HOST.cpio.gz; }
EOF
printf 'search --no-floppy --set=root --label %s\nset prefix=($root)/boot/grub\nconfigfile $prefix/grub.cfg\n' \
	"$LABEL" >"$W/grub-early.cfg"
grub-mkimage --format=x86_64-efi --directory "$GRUB_DIR" --output "$W/BOOTX64.EFI" --prefix /boot/grub \
	--config "$W/grub-early.cfg" part_gpt part_msdos iso9660 fat search search_label normal configfile \
	linux echo test serial terminal efi_gop efi_uga all_video gzio sleep
kib=$(( ($(stat -c %s "$W/BOOTX64.EFI") / 1024 + 512 + 1023) / 1024 * 1024 ))
mkfs.fat -C -n EFIBOOT "$I/boot/efi.img" "$kib" >/dev/null
mmd -i "$I/boot/efi.img" ::/EFI ::/EFI/BOOT
mcopy -i "$I/boot/efi.img" "$W/BOOTX64.EFI" ::/EFI/BOOT/BOOTX64.EFI
xorriso -as mkisofs -quiet -o "$OUT/master.iso" -V "$LABEL" -R -J \
	-isohybrid-mbr "$ISOLINUX/isohdpfx.bin" -c isolinux/boot.cat \
	-b isolinux/isolinux.bin -no-emul-boot -boot-load-size 4 -boot-info-table \
	-eltorito-alt-boot -e boot/efi.img -no-emul-boot -isohybrid-gpt-basdat "$I" 2>"$W/xorriso.log" ||
	{ cat "$W/xorriso.log" >&2; die "xorriso failed"; }
