/* Recipes: a temp project with the files a recipe names, a table of recipe
 * texts with every error as "L:C: message", a good recipe resolved field by
 * field, and parse_size. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "check.h"
#include "diag.h"
#include "fsutil.h"
#include "recipe.h"
#include "util.h"
#include "value.h"

/* sha256 of "kubelet binary\n" and of "hello\n" (bin/kubectl), from sha256sum(1). */
#define KUBELET_SUM "ba13b0bed708854fc0ee7c4bee3a27a80f723da8b96881a599eaf1a4891692e6"
#define KUBECTL_SUM "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"
#define KUBELET_SUM_UPPER "BA13B0BED708854FC0EE7C4BEE3A27A80F723DA8B96881A599EAF1A4891692E6"

/* The recipe lives in recipes/, so every path it names starts with "../". */
#define L_VERSION "recipe: 1\n"
#define L_NAME "name: m\n"
#define L_ROLE "role: master\n"
#define L_CLUSTER "cluster: ../cluster.yaml\n"
#define L_BASE "base: { kernel: ../base/vmlinuz, initrd: ../base/initrd.img }\n"
#define L_OUTPUTS "outputs: { initrd: { path: ../out } }\n"
/* Six valid lines: what a case adds starts on line 7. */
#define HEAD L_VERSION L_NAME L_ROLE L_CLUSTER L_BASE L_OUTPUTS
/* An install needs an OS image to write. */
#define L_BASE_IMG "base: { kernel: ../base/vmlinuz, initrd: ../base/initrd.img, image: ../base/initrd.img }\n"
#define HEAD_IMG L_VERSION L_NAME L_ROLE L_CLUSTER L_BASE_IMG L_OUTPUTS
#define FILES "files:\n"
/* src at column 12, dest at 34, the next key at 52 and its value at 58..64. */
#define KUBELET "  - { src: ../bin/kubelet, dest: /opt/bin/kubelet, "

/* sysext entries: a made image's head (its files start on line 11) and one of its files. */
#define SYSEXT "sysext:\n"
#define SX_MADE "  - name: kubernetes\n    version: v1.34.2\n    files:\n"
#define SX_KUBELET "      - { src: ../bin/kubelet, dest: /usr/bin/kubelet, mode: '0755', sha256: " KUBELET_SUM " }\n"
/* The same, inline: "files: [...]". */
#define SX_FILES "files: [{ src: ../bin/kubelet, dest: /usr/bin/kubelet, sha256: " KUBELET_SUM " }]"

static const struct { const char *text, *want; } error_cases[] = {
	/* unknown keys, at every level */
	{ HEAD "overlay: [../overlays/common]\n", "7:1: unknown key 'overlay' in recipe (did you mean 'overlays'?)" },
	{ HEAD "frobnicate: 1\n", "7:1: unknown key 'frobnicate' in recipe" },
	{ L_VERSION L_NAME L_ROLE L_CLUSTER "base: { kernle: ../base/vmlinuz, initrd: ../base/initrd.img }\n" L_OUTPUTS,
	  "5:9: unknown key 'kernle' in base (did you mean 'kernel'?)\n"
	  "5:7: missing required key 'kernel' in base" },
	{ L_VERSION L_NAME L_ROLE L_CLUSTER L_BASE "outputs: { initrd: { paht: ../out } }\n",
	  "6:22: unknown key 'paht' in outputs.initrd (did you mean 'path'?)\n"
	  "6:20: missing required key 'path' in outputs.initrd" },
	{ L_VERSION L_NAME L_ROLE L_CLUSTER L_BASE "outputs: { dvd: { path: ../out/m.iso } }\n",
	  "6:12: unknown key 'dvd' in outputs" },
	{ HEAD "pki: { dri: ../keys }\n", "7:8: unknown key 'dri' in pki (did you mean 'dir'?)" },
	{ HEAD_IMG "install: { device: auto, aftr: reboot }\n", "7:26: unknown key 'aftr' in install (did you mean 'after'?)" },
	{ HEAD FILES KUBELET "sha256: " KUBELET_SUM ", mod: '0755' }\n",
	  "8:126: unknown key 'mod' in files entry (did you mean 'mode'?)" },
	{ HEAD "config:\n  - { templte: ../templates/cloud-config.yml, dest: /var/lib/flatcar-install/user_data }\n",
	  "8:7: unknown key 'templte' in config entry (did you mean 'template'?)\n"
	  "8:5: missing required key 'template' in config entry" },
	/* dests Flatcar would not apply or could not take */
	{ HEAD "config:\n  - { template: ../templates/cloud-config.yml, dest: /usr/share/oem/cloud-config.yml }\n",
	  "8:54: Flatcar 4722+ does not apply '/usr/share/oem/cloud-config.yml' (and stable would apply it twice): "
	  "use dest '/var/lib/flatcar-install/user_data'" },
	{ HEAD "config:\n  - { template: ../templates/cloud-config.yml, dest: /usr/share/oem/config.ign }\n",
	  "8:54: '/usr/share/oem/config.ign' is the node's Ignition config, which dlws-mkimage writes: put units in the cloud-config" },
	{ HEAD FILES "  - { src: ../bin/kubelet, dest: /usr/bin/kubelet, sha256: " KUBELET_SUM " }\n",
	  "8:34: 'dest' '/usr/bin/kubelet' is under /usr, which is read-only on Flatcar (use /opt or /etc)" },
	{ HEAD "container_runtime: crio\n", "7:20: 'container_runtime' must be containerd or docker, not 'crio'" },
	/* two explicit entries writing one path: at the later one, naming the first */
	{ HEAD "config:\n"
	  "  - { template: ../templates/cloud-config.yml, dest: /etc/a.conf }\n"
	  "  - { template: ../templates/cloud-config.yml, dest: /etc//./a.conf }\n",
	  "9:54: '/etc/a.conf' is already the dest of a config entry (at 8:5)" },
	{ HEAD "config:\n  - { template: ../templates/cloud-config.yml, dest: /opt/bin/kubelet }\n"
	  FILES KUBELET "sha256: " KUBELET_SUM " }\n",
	  "10:34: '/opt/bin/kubelet' is already the dest of a config entry (at 8:5)" },
	{ HEAD FILES KUBELET "sha256: " KUBELET_SUM " }\n" KUBELET "sha256: " KUBELET_SUM " }\n",
	  "9:34: '/opt/bin/kubelet' is already the dest of a files entry (at 8:5)" },
	/* config: entries are checked first, so a files: entry is the one blamed
	 * wherever it stands; a dest below another's is a clash too */
	{ HEAD FILES KUBELET "sha256: " KUBELET_SUM " }\n"
	  "config:\n  - { template: ../templates/cloud-config.yml, dest: /opt/bin }\n",
	  "8:34: '/opt/bin/kubelet' and '/opt/bin' (the dest of a config entry at 10:5) cannot both be files: one lies below "
	  "the other" },
	/* a third copy is reported once, against the first */
	{ HEAD FILES KUBELET "sha256: " KUBELET_SUM " }\n" KUBELET "sha256: " KUBELET_SUM " }\n"
	  KUBELET "sha256: " KUBELET_SUM " }\n",
	  "9:34: '/opt/bin/kubelet' is already the dest of a files entry (at 8:5)\n"
	  "10:34: '/opt/bin/kubelet' is already the dest of a files entry (at 8:5)" },
	/* wrong types */
	{ "- recipe: 1\n", "1:1: a recipe must be a map, not a list" },
	{ L_VERSION "name: [m]\n" L_ROLE L_CLUSTER L_BASE L_OUTPUTS, "2:7: 'name' must be a string, not a list" },
	{ L_VERSION L_NAME L_ROLE L_CLUSTER "base: ../base/vmlinuz\n" L_OUTPUTS, "5:7: 'base' must be a map, not a string" },
	{ L_VERSION L_NAME L_ROLE L_CLUSTER L_BASE "outputs: [../out]\n", "6:10: 'outputs' must be a map, not a list" },
	{ HEAD "files: {}\n", "7:8: 'files' must be a list, not a map" },
	{ HEAD "files: [../bin/kubelet]\n", "7:9: a 'files' entry must be a map, not a string" },
	{ HEAD "config: [../templates/cloud-config.yml]\n", "7:10: a 'config' entry must be a map, not a string" },
	{ HEAD "overlays: ../overlays/common\n", "7:11: 'overlays' must be a list, not a string" },
	{ HEAD "overlays: [[../overlays/common]]\n", "7:12: an overlay must be a string, not a list" },
	{ HEAD_IMG "install: { device: /dev/sda, wipe: maybe }\n", "7:36: 'wipe' must be true or false" },
	{ HEAD "pki: { include_ca_key: 'yes' }\n", "7:24: 'include_ca_key' must be true or false" },
	{ HEAD "pki: ../keys\n", "7:6: 'pki' must be a map, not a string" },
	{ HEAD "values: [a]\n", "7:9: 'values' must be a map, not a list" },
	{ HEAD FILES KUBELET "sha256: " KUBELET_SUM ", mode: [7, 5, 5] }\n", "8:132: 'mode' must be a string, not a list" },
	/* missing required keys */
	{ "",
	  "1:1: missing required key 'recipe' in recipe\n"
	  "1:1: missing required key 'name' in recipe\n"
	  "1:1: missing required key 'role' in recipe\n"
	  "1:1: missing required key 'cluster' in recipe\n"
	  "1:1: missing required key 'base' in recipe\n"
	  "1:1: missing required key 'outputs' in recipe" },
	{ L_NAME L_ROLE L_CLUSTER L_BASE L_OUTPUTS, "1:1: missing required key 'recipe' in recipe" },
	{ L_VERSION L_NAME L_ROLE L_CLUSTER "base: { initrd: ../base/initrd.img }\n" L_OUTPUTS,
	  "5:7: missing required key 'kernel' in base" },
	{ L_VERSION L_NAME L_ROLE L_CLUSTER L_BASE "outputs: {}\n", "6:10: 'outputs' lists nothing to build" },
	{ L_VERSION L_NAME L_ROLE L_CLUSTER L_BASE "outputs:\n", "1:1: missing required key 'outputs' in recipe" },
	/* a null output is no output: building must not succeed with nothing written */
	{ L_VERSION L_NAME L_ROLE L_CLUSTER L_BASE "outputs: { initrd: ~ }\n", "6:10: 'outputs' lists nothing to build" },
	{ HEAD_IMG "install: { wipe: true }\n", "7:10: missing required key 'device' in install" },
	{ HEAD FILES "  - { dest: /opt/bin/kubelet, sha256: " KUBELET_SUM " }\n", "8:5: missing required key 'src' in files entry" },
	{ HEAD FILES "  - { src: ../bin/kubelet, sha256: " KUBELET_SUM " }\n", "8:5: missing required key 'dest' in files entry" },
	{ HEAD FILES KUBELET "mode: '0755' }\n", "8:5: missing required key 'sha256' in files entry (every file is pinned)" },
	{ HEAD "config:\n  - { template: ../templates/cloud-config.yml }\n", "8:5: missing required key 'dest' in config entry" },
	/* version, name, role */
	{ "recipe: 2\n" L_NAME L_ROLE L_CLUSTER L_BASE L_OUTPUTS,
	  "1:9: unsupported recipe version '2' (this dlws-mkimage reads version 1)" },
	{ "recipe: 1.0\n" L_NAME L_ROLE L_CLUSTER L_BASE L_OUTPUTS,
	  "1:9: unsupported recipe version '1.0' (this dlws-mkimage reads version 1)" },
	{ "recipe: [1]\n" L_NAME L_ROLE L_CLUSTER L_BASE L_OUTPUTS, "1:9: 'recipe' must be a string, not a list" },
	{ L_VERSION "name: Master\n" L_ROLE L_CLUSTER L_BASE L_OUTPUTS,
	  "2:7: invalid name 'Master' (lowercase letters, digits, '-' and '.')" },
	{ L_VERSION L_NAME "role: gpu\n" L_CLUSTER L_BASE L_OUTPUTS, "3:7: unknown role 'gpu' (expected master, etcd or worker)" },
	{ L_VERSION L_NAME "role: masters\n" L_CLUSTER L_BASE L_OUTPUTS,
	  "3:7: unknown role 'masters' (expected master, etcd or worker)" },
	/* files the recipe names must exist, with the right type */
	{ L_VERSION L_NAME L_ROLE "cluster: ../nope.yaml\n" L_BASE L_OUTPUTS,
	  "4:10: cannot find 'recipes/../nope.yaml': No such file or directory" },
	{ L_VERSION L_NAME L_ROLE L_CLUSTER "base: { kernel: ../base/nope, initrd: ../base/initrd.img }\n" L_OUTPUTS,
	  "5:17: cannot find 'recipes/../base/nope': No such file or directory" },
	{ L_VERSION L_NAME L_ROLE L_CLUSTER "base: { kernel: ../base, initrd: ../base/initrd.img }\n" L_OUTPUTS,
	  "5:17: 'recipes/../base' is not a regular file" },
	{ L_VERSION L_NAME L_ROLE L_CLUSTER "base:\n  kernel: ../base/vmlinuz\n  initrd: ../base/initrd.img\n  image: ../base/os.bin.bz2\n" L_OUTPUTS,
	  "8:10: cannot find 'recipes/../base/os.bin.bz2': No such file or directory" },
	{ HEAD "config:\n  - { template: ../templates/nope.yml, dest: /etc/x }\n",
	  "8:17: cannot find 'recipes/../templates/nope.yml': No such file or directory" },
	{ HEAD FILES "  - { src: ../bin/nope, dest: /opt/bin/nope, sha256: " KUBELET_SUM " }\n",
	  "8:12: cannot find 'recipes/../bin/nope': No such file or directory" },
	{ HEAD "overlays: [../overlays/common, ../overlays/nope]\n",
	  "7:32: cannot find overlay 'recipes/../overlays/nope': No such file or directory" },
	{ HEAD "overlays: [../overlays/file]\n", "7:12: overlay 'recipes/../overlays/file' is not a directory" },
	/* pins */
	{ HEAD FILES KUBELET "sha256: abc123 }\n", "8:60: 'sha256' must be 64 hex digits" },
	{ HEAD FILES KUBELET "sha256: " KUBELET_SUM "0 }\n", "8:60: 'sha256' must be 64 hex digits" },
	{ HEAD FILES KUBELET "sha256: g" KUBELET_SUM_UPPER "}\n" /* 65: one too many */, "8:60: 'sha256' must be 64 hex digits" },
	{ HEAD FILES KUBELET "sha256: " KUBELET_SUM ", sha256sums: ../bin/SHA256SUMS }\n",
	  "8:138: give either 'sha256' or 'sha256sums', not both" },
	{ HEAD FILES "  - { src: ../bin/kubeadm, dest: /opt/bin/kubeadm, sha256sums: ../bin/SHA256SUMS }\n",
	  "8:64: 'recipes/../bin/SHA256SUMS' has no sum for 'kubeadm'" },
	{ HEAD FILES KUBELET "sha256sums: ../bin/NOSUMS }\n",
	  "8:64: cannot open 'recipes/../bin/NOSUMS': No such file or directory" },
	/* modes and destinations */
	{ HEAD FILES KUBELET "mode: '0999', sha256: " KUBELET_SUM " }\n", "8:58: invalid mode '0999' (expected octal like \"0644\")" },
	{ HEAD FILES KUBELET "mode: rwxr-xr-x, sha256: " KUBELET_SUM " }\n", "8:58: invalid mode 'rwxr-xr-x' (expected octal like \"0644\")" },
	{ HEAD FILES KUBELET "mode: '17777', sha256: " KUBELET_SUM " }\n", "8:58: invalid mode '17777' (expected octal like \"0644\")" },
	{ HEAD FILES KUBELET "mode: '', sha256: " KUBELET_SUM " }\n", "8:58: invalid mode '' (expected octal like \"0644\")" },
	{ HEAD "config:\n  - { template: ../templates/cloud-config.yml, dest: /etc/x, mode: '0x1ff' }\n",
	  "8:68: invalid mode '0x1ff' (expected octal like \"0644\")" },
	{ HEAD FILES "  - { src: ../bin/kubelet, dest: opt/bin/kubelet, sha256: " KUBELET_SUM " }\n",
	  "8:34: 'dest' must be an absolute path inside the node's file system, not 'opt/bin/kubelet'" },
	{ HEAD FILES "  - { src: ../bin/kubelet, dest: /opt/../../etc/passwd, sha256: " KUBELET_SUM " }\n",
	  "8:34: 'dest' must be an absolute path inside the node's file system, not '/opt/../../etc/passwd'" },
	{ HEAD "config:\n  - { template: ../templates/cloud-config.yml, dest: / }\n",
	  "8:54: 'dest' must be an absolute path inside the node's file system, not '/'" },
	/* install */
	{ HEAD_IMG "install: { device: sda }\n", "7:20: 'device' must be 'auto' or a path under /dev, not 'sda'" },
	{ HEAD_IMG "install: { device: /dev/sda, after: halt }\n", "7:37: 'after' must be poweroff, reboot or shell, not 'halt'" },
	{ HEAD_IMG "install: { device: /dev/sda, after: [reboot] }\n",
	  "7:37: 'after' must be a string, not a list" },
	/* the rest */
	{ HEAD "pki: { key_type: dsa }\n", "7:18: 'key_type' must be 'rsa' or 'ecdsa', not 'dsa'" },
	{ L_VERSION L_NAME L_ROLE L_CLUSTER L_BASE "outputs: { initrd: { path: ../out, max_size: lots } }\n",
	  "6:46: invalid size 'lots' (expected e.g. 64M or 4G)" },
	/* outputs.disk: a directory of disks, one per node, made from base.image */
	{ L_VERSION L_NAME L_ROLE L_CLUSTER L_BASE "outputs: { disk: { path: ../out/disks } }\n",
	  "6:18: 'outputs.disk' needs 'base.image': the OS image the disks are made from" },
	{ L_VERSION L_NAME L_ROLE L_CLUSTER L_BASE_IMG "outputs: { disk: { path: ../out/m.img } }\n",
	  "6:26: 'path' is the directory that gets one disk per node (<hostname>.img or, with format: qcow2, "
	  "<hostname>.qcow2), not a file name like '../out/m.img'" },
	{ L_VERSION L_NAME L_ROLE L_CLUSTER L_BASE_IMG "outputs: { disk: { path: ../out/d, format: vmdk } }\n",
	  "6:44: 'format' must be raw or qcow2, not 'vmdk'" },
	{ L_VERSION L_NAME L_ROLE L_CLUSTER L_BASE_IMG "outputs: { disk: { path: ../out/d, size: huge } }\n",
	  "6:42: invalid size 'huge' (expected e.g. 8G)" },
	{ L_VERSION L_NAME L_ROLE L_CLUSTER L_BASE_IMG "outputs: { disk: { path: ../out/d, size: 1000 } }\n",
	  "6:42: 'size' 1000 is not a whole number of 512-byte sectors" },
	{ L_VERSION L_NAME L_ROLE L_CLUSTER L_BASE_IMG "outputs: { disk: { path: ../out/d, sise: 8G } }\n",
	  "6:36: unknown key 'sise' in outputs.disk (did you mean 'size'?)" },
	{ L_VERSION L_NAME L_ROLE L_CLUSTER "base: { kernel: ../base/vmlinuz, initrd: ../base/initrd.img, cmdline: \"a\\nb\" }\n" L_OUTPUTS,
	  "5:71: 'cmdline' must be one line" },
	/* sysext: images made from files (dests under /usr and /opt), or prebuilt */
	{ HEAD "sysexts: []\n", "7:1: unknown key 'sysexts' in recipe (did you mean 'sysext'?)" },
	{ HEAD "sysext: { name: kubernetes }\n", "7:9: 'sysext' must be a list, not a map" },
	{ HEAD "sysext: [kubernetes]\n", "7:10: a 'sysext' entry must be a map, not a string" },
	{ HEAD SYSEXT "  - { name: kubernetes, versoin: v1.34.2, " SX_FILES " }\n",
	  "8:25: unknown key 'versoin' in sysext entry (did you mean 'version'?)\n"
	  "8:5: missing required key 'version' in sysext entry" },
	{ HEAD SYSEXT "  - { version: v1.34.2, " SX_FILES " }\n", "8:5: missing required key 'name' in sysext entry" },
	{ HEAD SYSEXT "  - { name: kube rnetes, version: v1.34.2, " SX_FILES " }\n",
	  "8:13: invalid image name 'kube rnetes' (up to 64 letters, digits, '.', '_' and '-', starting with a letter or digit, "
	  "without '.raw')" },
	{ HEAD SYSEXT "  - { name: kubernetes.raw, version: v1.34.2, " SX_FILES " }\n",
	  "8:13: invalid image name 'kubernetes.raw' (up to 64 letters, digits, '.', '_' and '-', starting with a letter or digit, "
	  "without '.raw')" },
	{ HEAD SYSEXT "  - { name: ../etc, src: ../bin/kubectl, sha256: " KUBECTL_SUM " }\n",
	  "8:13: invalid image name '../etc' (up to 64 letters, digits, '.', '_' and '-', starting with a letter or digit, "
	  "without '.raw')" },
	{ HEAD SYSEXT "  - { name: kubernetes, version: 'v1.34 2', " SX_FILES " }\n",
	  "8:34: invalid version 'v1.34 2' (up to 64 letters, digits, '.', '_', '+' and '-', starting with a letter or digit)" },
	{ HEAD SYSEXT "  - { name: kubernetes, version: v1.34.2 }\n",
	  "8:5: a sysext entry needs 'src' (a prebuilt image) or 'files' (an image to make)" },
	{ HEAD SYSEXT "  - { name: kubernetes, src: ../bin/kubectl, sha256: " KUBECTL_SUM ", " SX_FILES " }\n",
	  "8:127: give either 'src' (a prebuilt image) or 'files' (an image to make), not both" },
	{ HEAD SYSEXT "  - { name: kubernetes, src: ../bin/kubectl }\n",
	  "8:5: missing required key 'sha256' in sysext entry (every file is pinned)" },
	{ HEAD SYSEXT "  - { name: kubernetes, src: ../bin/nope.raw, sha256: " KUBECTL_SUM " }\n",
	  "8:30: cannot find 'recipes/../bin/nope.raw': No such file or directory" },
	{ HEAD SYSEXT "  - { name: kubernetes, src: ../bin/kubeadm, sha256sums: ../bin/SHA256SUMS }\n",
	  "8:58: 'recipes/../bin/SHA256SUMS' has no sum for 'kubeadm'" },
	{ HEAD SYSEXT "  - { name: kubernetes, src: ../bin/kubectl, sha256: " KUBECTL_SUM ", version: v1, id: _any }\n",
	  "8:129: 'version' is for an image made from 'files': a prebuilt image keeps its own file name and extension-release\n"
	  "8:137: 'id' is for an image made from 'files': a prebuilt image keeps its own file name and extension-release" },
	{ HEAD SYSEXT "  - { name: kubernetes, version: v1.34.2, sha256: " KUBECTL_SUM ", " SX_FILES " }\n",
	  "8:51: an image made from 'files' is not pinned itself: pin each of its files" },
	{ HEAD SYSEXT "  - { name: kubernetes, version: v1.34.2, files: [] }\n", "8:50: 'files' lists no file: an image needs at least one" },
	{ HEAD SYSEXT "  - { name: kubernetes, version: v1.34.2, files: {} }\n", "8:50: 'files' must be a list, not a map" },
	{ HEAD SYSEXT SX_MADE SX_KUBELET "  - { name: kubernetes, src: ../bin/kubectl, sha256: " KUBECTL_SUM " }\n",
	  "12:13: image 'kubernetes' is listed twice (first at 8:11): both would be /etc/extensions/kubernetes.raw" },
	/* what the image's extension-release says */
	{ HEAD SYSEXT "  - { name: kubernetes, version: v1.34.2, id: Flatcar, " SX_FILES " }\n",
	  "8:47: invalid 'id' 'Flatcar' (lowercase letters, digits, '.', '_' and '-', as in os-release; '_any' matches every OS)" },
	{ HEAD SYSEXT "  - { name: kubernetes, version: v1.34.2, id: _any, sysext_level: '1.0', " SX_FILES " }\n",
	  "8:67: 'sysext_level' is not compared when 'id' is '_any': leave it out" },
	{ HEAD SYSEXT "  - { name: kubernetes, version: v1.34.2, sysext_level: 1 0, " SX_FILES " }\n",
	  "8:57: invalid 'sysext_level' '1 0' (lowercase letters, digits, '.', '_' and '-', as in os-release)" },
	{ HEAD SYSEXT "  - { name: kubernetes, version: v1.34.2, architecture: arm64, " SX_FILES " }\n",
	  "8:57: 'architecture' must be 'x86-64' or '_any' (the media boot x86-64 machines), not 'arm64'" },
	{ HEAD SYSEXT "  - { name: kubernetes, version: v1.34.2, reload_manager: maybe, " SX_FILES " }\n",
	  "8:59: 'reload_manager' must be true or false" },
	/* the image's files: pinned, under /usr or /opt, one file per path */
	{ HEAD SYSEXT SX_MADE "      - { src: ../bin/kubelet, dest: /etc/kubernetes/kubelet.env, sha256: " KUBELET_SUM " }\n",
	  "11:38: 'dest' '/etc/kubernetes/kubelet.env' is not below /usr or /opt, the only trees systemd-sysext merges" },
	{ HEAD SYSEXT SX_MADE "      - { src: ../bin/kubelet, dest: /usr, sha256: " KUBELET_SUM " }\n",
	  "11:38: 'dest' '/usr' is not below /usr or /opt, the only trees systemd-sysext merges" },
	{ HEAD SYSEXT SX_MADE "      - { src: ../bin/kubelet, dest: usr/bin/kubelet, sha256: " KUBELET_SUM " }\n",
	  "11:38: 'dest' must be an absolute path inside the image, not 'usr/bin/kubelet'" },
	{ HEAD SYSEXT SX_MADE "      - { src: ../bin/kubelet, dest: /usr/lib/extension-release.d/extension-release.kubernetes, sha256: " KUBELET_SUM " }\n",
	  "11:38: 'dest' '/usr/lib/extension-release.d/extension-release.kubernetes' is the image's metadata, which dlws-mkimage "
	  "writes (set 'id', 'sysext_level', 'architecture')" },
	{ HEAD SYSEXT SX_MADE "      - { src: ../bin/kubelet, dest: /usr/lib/os-release, sha256: " KUBELET_SUM " }\n",
	  "11:38: 'dest' '/usr/lib/os-release' would replace the host's os-release when the image is merged" },
	{ HEAD SYSEXT SX_MADE SX_KUBELET "      - { src: ../bin/kubectl, dest: /usr//bin/./kubelet, sha256: " KUBECTL_SUM " }\n",
	  "12:38: '/usr/bin/kubelet' is already a file of this image (at 11:9)" },
	{ HEAD SYSEXT SX_MADE SX_KUBELET "      - { src: ../bin/kubectl, dest: /usr/bin/kubelet/kubectl, sha256: " KUBECTL_SUM " }\n",
	  "12:38: '/usr/bin/kubelet/kubectl' and '/usr/bin/kubelet' (at 11:9) cannot both be files: one lies below the other" },
	{ HEAD SYSEXT SX_MADE "      - { src: ../bin/kubelet, dest: /usr/bin/kubelet, mode: '0755' }\n",
	  "11:9: missing required key 'sha256' in sysext files entry (every file is pinned)" },
	{ HEAD SYSEXT SX_MADE "      - { src: ../bin/kubelet, dest: /usr/bin/kubelet, mode: '0855', sha256: " KUBELET_SUM " }\n",
	  "11:62: invalid mode '0855' (expected octal like \"0644\")" },
	{ HEAD SYSEXT SX_MADE "      - { src: ../bin/nope, dest: /usr/bin/nope, sha256: " KUBELET_SUM " }\n",
	  "11:16: cannot find 'recipes/../bin/nope': No such file or directory" },
	{ HEAD SYSEXT SX_MADE "      - { src: ../bin/kubelet, dets: /usr/bin/kubelet, sha256: " KUBELET_SUM " }\n",
	  "11:32: unknown key 'dets' in sysext files entry (did you mean 'dest'?)\n"
	  "11:9: missing required key 'dest' in sysext files entry" },
	{ HEAD SYSEXT SX_MADE "      - /usr/bin/kubelet\n", "11:9: a sysext 'files' entry must be a map, not a string" },
	/* YAML */
	{ HEAD "name: n\n", "7:1: duplicate key 'name' (first defined at 2:1)" },
	{ L_VERSION "name: [m\n", "3:1: while parsing a flow sequence did not find expected ',' or ']'" },
	/* every problem in one run, in the order the recipe is checked */
	{ "recipe: 2\n"
	  "name: m\n"
	  "role: wroker\n"
	  "cluster: ../cluster.yaml\n"
	  "base: { kernel: ../base/vmlinuz, initrd: ../base/initrd.gz }\n"
	  "pki: { key_type: dsa }\n"
	  "files:\n"
	  "  - { src: ../bin/kubelet, dest: opt/bin/kubelet, mode: '0755', sha256: abc }\n"
	  "overlays: [../overlays/nope]\n"
	  "install: { device: sda }\n"
	  "outputs: { initrd: { path: ../out, max_size: 4X } }\n"
	  "extra: 1\n",
	  "12:1: unknown key 'extra' in recipe\n"
	  "1:9: unsupported recipe version '2' (this dlws-mkimage reads version 1)\n"
	  "3:7: unknown role 'wroker' (expected master, etcd or worker)\n"
	  "5:42: cannot find 'recipes/../base/initrd.gz': No such file or directory\n"
	  "6:18: 'key_type' must be 'rsa' or 'ecdsa', not 'dsa'\n"
	  "8:34: 'dest' must be an absolute path inside the node's file system, not 'opt/bin/kubelet'\n"
	  "8:73: 'sha256' must be 64 hex digits\n"
	  "9:12: cannot find overlay 'recipes/../overlays/nope': No such file or directory\n"
	  "10:20: 'device' must be 'auto' or a path under /dev, not 'sda'\n"
	  "10:10: 'install' needs 'base.image': the OS image to write to the disk\n"
	  "11:46: invalid size '4X' (expected e.g. 64M or 4G)" },
};

static const char good_recipe[] =
	"# a master with everything\n"
	"recipe: 1\n"
	"name: master\n"
	"role: master\n"
	"cluster: ../cluster.yaml\n"
	"base:\n"
	"  kernel: ../base/vmlinuz\n"
	"  initrd: ../base/initrd.img\n"
	"  image: ../base/initrd.img\n"
	"  cmdline: \"console=ttyS0,115200n8 flatcar.autologin\"\n"
	"config:\n"
	"  - { template: ../templates/cloud-config.yml, dest: /var/lib/flatcar-install/user_data }\n"
	"  - { template: ../templates/cloud-config.yml, dest: /etc//kubernetes/./kubelet.env, mode: \"0600\" }\n"
	"files:\n"
	"  - { src: ../bin/kubelet, dest: /opt/bin/kubelet, mode: \"0755\", sha256: " KUBELET_SUM_UPPER " }\n"
	"  - { src: ../bin/kubectl, dest: /opt/bin/kubectl, sha256sums: ../bin/SHA256SUMS }\n"
	"overlays: [../overlays/common]\n"
	"install: { device: /dev/sda }\n"
	"outputs:\n"
	"  initrd: { path: ../out/master, max_size: 64M }\n"
	"values:\n"
	"  etcd_node_num: 3\n"
	"  hyperkube: { image: gcr.io/hyperkube, tag: v1.9 }\n";

/* Every diagnostic as "L:C: message", one per line. */
static char *format_diags(const struct diags *d) {
	struct buf b = BUF_INIT;
	for (size_t i = 0; i < d->n; i++)
		buf_printf(&b, "%s%d:%d: %s", i ? "\n" : "", d->v[i].line, d->v[i].col, d->v[i].msg);
	return buf_steal(&b, NULL);
}

static void write_text(const char *path, const char *text) {
	struct diags d = DIAGS_INIT;
	if (write_file_atomic(path, text, strlen(text), 0644, &d) < 0) {
		diags_print(&d, stderr);
		exit(1);
	}
	diags_release(&d);
}

/* The project every case refers to, in the current (temp) directory. */
static void make_project(void) {
	static const char *const dirs[] = { "recipes", "base", "templates", "bin", "overlays/common" };
	for (size_t i = 0; i < ARRAY_SIZE(dirs); i++)
		if (mkdir_p(dirs[i], 0755) < 0) {
			perror(dirs[i]);
			exit(1);
		}
	write_text("cluster.yaml", "cluster_name: lab\n");
	write_text("base/vmlinuz", "kernel");
	write_text("base/initrd.img", "initrd");
	write_text("templates/cloud-config.yml", "#cloud-config\nhostname: {{ node.hostname }}\n");
	write_text("bin/kubelet", "kubelet binary\n");
	write_text("bin/kubectl", "hello\n");
	write_text("bin/kubeadm", "not in the sums file\n");
	/* sha256sum's format: text mode, binary mode ('*'), and paths with folders */
	write_text("bin/SHA256SUMS",
		   "0000000000000000000000000000000000000000000000000000000000000000  other\n"
		   "short line\n"
		   "5891B5B522D5DF086D0FF0B110FBD9D21BB4FC7163AF34D08286A2E846F6BE03 *dist/kubectl\n"
		   KUBELET_SUM "  kubelet\n");
	write_text("overlays/file", "not a directory\n");
}

static int load(const char *text, struct recipe **ret, char **ret_diags) {
	write_text("recipes/master.recipe", text);
	struct diags d = DIAGS_INIT;
	*ret = NULL;
	int r = recipe_load("recipes/master.recipe", ret, &d);
	for (size_t i = 0; i < d.n; i++)
		CHECK_STREQ(d.v[i].file, "recipes/master.recipe");
	*ret_diags = format_diags(&d);
	diags_release(&d);
	return r;
}

static void test_errors(void) {
	for (size_t i = 0; i < ARRAY_SIZE(error_cases); i++) {
		struct recipe *rc;
		char *diags;
		int r = load(error_cases[i].text, &rc, &diags);
		if (r != -EINVAL)
			fprintf(stderr, "case error[%zu]:\n%s\n", i, error_cases[i].text);
		CHECK_INTEQ(r, -EINVAL);
		CHECK(rc == NULL);
		recipe_free(rc);
		CHECK_STREQ(diags, error_cases[i].want);
		free(diags);
	}
}

/* A bad line in a SHA256SUMS file is reported where the recipe names that
 * file, and names it: the recipe has no 'sha256' key to point at. */
static void test_bad_sum_in_sums_file(void) {
	write_text("bin/BADSUMS", "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz  kubelet\n");
	struct recipe *rc;
	char *diags;
	CHECK_INTEQ(load(HEAD FILES KUBELET "sha256sums: ../bin/BADSUMS }\n", &rc, &diags), -EINVAL);
	CHECK(startswith(diags, "8:64: "));
	CHECK(strstr(diags, "BADSUMS") != NULL);
	if (!startswith(diags, "8:64: ") || !strstr(diags, "BADSUMS"))
		fprintf(stderr, "  got: \"%s\"\n", diags);
	free(diags);
}

static void test_unreadable(void) {
	struct diags d = DIAGS_INIT;
	struct recipe *rc = NULL;
	CHECK_INTEQ(recipe_load("recipes/none.recipe", &rc, &d), -ENOENT);
	CHECK(rc == NULL);
	CHECK_INTEQ(d.n, 1);
	CHECK_STREQ(d.v[0].msg, "cannot open 'recipes/none.recipe': No such file or directory");
	diags_release(&d);
}

static struct recipe *load_ok(const char *text) {
	struct recipe *rc;
	char *diags;
	int r = load(text, &rc, &diags);
	CHECK_INTEQ(r, 0);
	CHECK_STREQ(diags, "");
	free(diags);
	return r == 0 ? rc : NULL;
}

static void test_good(void) {
	struct recipe *rc = load_ok(good_recipe);
	if (!rc)
		return;
	CHECK_STREQ(rc->path, "recipes/master.recipe");
	CHECK_STREQ(rc->name, "master");
	CHECK_INTEQ(rc->role, ROLE_MASTER);
	/* paths are relative to the recipe, as written */
	CHECK_STREQ(rc->cluster_path, "recipes/../cluster.yaml");
	CHECK_INTEQ(rc->cluster_loc.line, 5);
	CHECK_INTEQ(rc->cluster_loc.col, 10);
	CHECK_STREQ(rc->base.kernel, "recipes/../base/vmlinuz");
	CHECK_STREQ(rc->base.initrd, "recipes/../base/initrd.img");
	CHECK_STREQ(rc->base.cmdline, "console=ttyS0,115200n8 flatcar.autologin");
	CHECK_STREQ(rc->base.image, "recipes/../base/initrd.img");
	/* pki defaults: ../keys beside the recipes, RSA, the CA key stays home */
	CHECK_STREQ(rc->pki.dir, "recipes/../keys");
	CHECK_INTEQ(rc->pki.key_type, PKI_KEY_RSA2048);
	CHECK(!rc->pki.include_ca_key);

	CHECK_INTEQ(rc->n_configs, 2);
	CHECK_STREQ(rc->configs[0].template, "recipes/../templates/cloud-config.yml");
	CHECK_STREQ(rc->configs[0].dest, "/var/lib/flatcar-install/user_data");
	CHECK_INTEQ(rc->configs[0].mode, 0600); /* the cloud-config: 0600 as flatcar-install leaves it */
	CHECK_INTEQ(rc->configs[0].loc.line, 12);
	CHECK_STREQ(rc->configs[1].dest, "/etc/kubernetes/kubelet.env");
	CHECK_INTEQ(rc->configs[1].mode, 0600);

	CHECK_INTEQ(rc->n_files, 2);
	CHECK_STREQ(rc->files[0].src, "recipes/../bin/kubelet");
	CHECK_STREQ(rc->files[0].dest, "/opt/bin/kubelet");
	CHECK_INTEQ(rc->files[0].mode, 0755);
	CHECK_STREQ(rc->files[0].sha256, KUBELET_SUM);
	CHECK_STREQ(rc->files[0].loc.file, rc->path);
	CHECK_INTEQ(rc->files[0].loc.line, 15);
	/* looked up by file name in SHA256SUMS, '*' and folders ignored, lowercased */
	CHECK_STREQ(rc->files[1].sha256, KUBECTL_SUM);
	CHECK_INTEQ(rc->files[1].mode, 0644);

	CHECK_INTEQ(rc->n_overlays, 1);
	CHECK_STREQ(rc->overlays[0].dir, "recipes/../overlays/common");
	CHECK_INTEQ(rc->overlays[0].loc.line, 17);

	CHECK(rc->install.enabled);
	CHECK_STREQ(rc->install.device, "/dev/sda");
	CHECK_STREQ(rc->install.after, "poweroff");
	CHECK(!rc->install.wipe);

	CHECK_STREQ(rc->outputs.initrd, "recipes/../out/master");
	CHECK_INTEQ(rc->outputs.max_initrd, 64 << 20);
	CHECK_INTEQ(rc->outputs.initrd_loc.line, 20);

	CHECK(rc->values != value_map_get(rc->doc, "values"));
	CHECK_STREQ(value_lookup(rc->values, "etcd_node_num")->text, "3");
	CHECK_STREQ(value_lookup(rc->values, "hyperkube.tag")->text, "v1.9");
	recipe_free(rc);
}

/* The least a recipe can say, and the other spellings of its options. */
static void test_minimal_and_options(const char *tmp) {
	struct recipe *rc = load_ok(HEAD);
	if (rc) {
		CHECK_STREQ(rc->base.cmdline, "");
		CHECK_INTEQ(rc->n_configs + rc->n_files + rc->n_overlays, 0);
		CHECK(!rc->install.enabled);
		CHECK_INTEQ(rc->outputs.max_initrd, 0);
		CHECK(rc->values && rc->values->kind == VALUE_MAP && rc->values->n == 0);
		recipe_free(rc);
	}

	/* Absolute paths are kept; the other roles and options. */
	char *text = xasprintf(
		"recipe: 1\n"
		"name: worker-gpu\n"
		"role: worker\n"
		"cluster: %s/cluster.yaml\n"
		"base: { kernel: %s/base/vmlinuz, initrd: ../base/initrd.img, image: ../base/initrd.img }\n"
		"pki: { dir: %s/pki, key_type: ecdsa, include_ca_key: yes }\n"
		"install: { device: auto, after: reboot, wipe: true }\n"
		"outputs: { initrd: { path: /srv/out, max_size: 1GiB } }\n",
		tmp, tmp, tmp);
	rc = load_ok(text);
	if (rc) {
		char *want = xasprintf("%s/cluster.yaml", tmp);
		CHECK_STREQ(rc->cluster_path, want);
		free(want);
		want = xasprintf("%s/pki", tmp);
		CHECK_STREQ(rc->pki.dir, want);
		free(want);
		CHECK_INTEQ(rc->role, ROLE_WORKER);
		CHECK_STREQ(rc->base.image, "recipes/../base/initrd.img");
		CHECK_INTEQ(rc->pki.key_type, PKI_KEY_ECDSA_P256);
		CHECK(rc->pki.include_ca_key);
		CHECK_STREQ(rc->install.device, "auto");
		CHECK_STREQ(rc->install.after, "reboot");
		CHECK(rc->install.wipe);
		CHECK_STREQ(rc->outputs.initrd, "/srv/out");
		CHECK_INTEQ(rc->outputs.max_initrd, 1 << 30);
		recipe_free(rc);
	}
	free(text);

	/* outputs.disk: raw by default, no size; qcow2 with a size. */
	rc = load_ok(L_VERSION L_NAME L_ROLE L_CLUSTER L_BASE_IMG "outputs: { disk: { path: ../out/disks } }\n");
	if (rc) {
		CHECK_STREQ(rc->outputs.disk, "recipes/../out/disks");
		CHECK(!rc->outputs.disk_qcow2);
		CHECK_INTEQ(rc->outputs.disk_size, 0);
		CHECK_INTEQ(rc->outputs.disk_loc.line, 6);
		CHECK_INTEQ(rc->outputs.disk_loc.col, 18);
		recipe_free(rc);
	}
	rc = load_ok(L_VERSION L_NAME L_ROLE L_CLUSTER L_BASE_IMG "outputs: { disk: { path: ../out/disks, format: qcow2, size: 8G } }\n");
	if (rc) {
		CHECK(rc->outputs.disk_qcow2);
		CHECK_INTEQ(rc->outputs.disk_size, (uint64_t)8 << 30);
		CHECK_INTEQ(rc->outputs.disk_size_loc.col, 61);
		recipe_free(rc);
	}

	/* Versions are usually quoted in YAML files ("version: '3'"); a quoted
	 * 1 is still version 1, as "0755" is still a mode. */
	rc = load_ok("recipe: '1'\n" L_NAME L_ROLE L_CLUSTER L_BASE L_OUTPUTS);
	recipe_free(rc);
}

/* sysext: an image made from files (defaults, and every option) and a
 * prebuilt one, resolved field by field. */
static void test_sysext_good(void) {
	struct recipe *rc = load_ok(HEAD SYSEXT SX_MADE SX_KUBELET
				    "      - { src: ../bin/kubectl, dest: /opt//cni/bin/./bridge, sha256sums: ../bin/SHA256SUMS }\n"
				    "  - { name: nvidia-driver, src: ../bin/kubectl, sha256sums: ../bin/SHA256SUMS }\n"
				    "  - { name: tools_2.x, version: 1.0+git-3, id: _any, architecture: _any, reload_manager: yes, "
				    "files: [{ src: ../bin/kubelet, dest: /usr/bin/tool, sha256: " KUBELET_SUM_UPPER " }] }\n"
				    "  - { name: ver, version: '3', id: debian, sysext_level: '12', files: [{ src: ../bin/kubelet, dest: /opt/x, sha256: " KUBELET_SUM " }] }\n");
	if (!rc)
		return;
	CHECK_INTEQ(rc->n_sysexts, 4);
	const struct recipe_sysext *x = &rc->sysexts[0];
	CHECK_STREQ(x->name, "kubernetes");
	CHECK(x->src == NULL);
	CHECK_STREQ(x->version, "v1.34.2");
	CHECK_STREQ(x->id, "flatcar");
	CHECK_STREQ(x->sysext_level, "1.0");
	CHECK_STREQ(x->architecture, "x86-64");
	CHECK(!x->reload_manager);
	CHECK_INTEQ(x->loc.line, 8);
	CHECK_INTEQ(x->name_loc.line, 8);
	CHECK_INTEQ(x->name_loc.col, 11);
	CHECK_INTEQ(x->n_files, 2);
	CHECK_STREQ(x->files[0].src, "recipes/../bin/kubelet");
	CHECK_STREQ(x->files[0].dest, "/usr/bin/kubelet");
	CHECK_INTEQ(x->files[0].mode, 0755);
	CHECK_STREQ(x->files[0].sha256, KUBELET_SUM);
	CHECK_INTEQ(x->files[0].loc.line, 11);
	CHECK_STREQ(x->files[1].dest, "/opt/cni/bin/bridge");
	CHECK_INTEQ(x->files[1].mode, 0644);
	CHECK_STREQ(x->files[1].sha256, KUBECTL_SUM);

	x = &rc->sysexts[1];
	CHECK_STREQ(x->name, "nvidia-driver");
	CHECK_STREQ(x->src, "recipes/../bin/kubectl");
	CHECK_STREQ(x->sha256, KUBECTL_SUM);
	CHECK(x->version == NULL && x->id == NULL && x->n_files == 0);

	x = &rc->sysexts[2];
	CHECK_STREQ(x->name, "tools_2.x");
	CHECK_STREQ(x->version, "1.0+git-3");
	CHECK_STREQ(x->id, "_any");
	CHECK(x->sysext_level == NULL); /* not compared with ID=_any, so not written */
	CHECK_STREQ(x->architecture, "_any");
	CHECK(x->reload_manager);
	CHECK_STREQ(x->files[0].sha256, KUBELET_SUM);

	x = &rc->sysexts[3];
	CHECK_STREQ(x->id, "debian");
	CHECK_STREQ(x->sysext_level, "12");
	CHECK_STREQ(x->files[0].dest, "/opt/x");
	recipe_free(rc);
}

static const struct { const char *text; int want; uint64_t bytes; } size_cases[] = {
	{ "12", 0, 12 },
	{ "0", 0, 0 },
	{ "100K", 0, 100 << 10 },
	{ "512M", 0, 512ull << 20 },
	{ "4G", 0, 4ull << 30 },
	{ "2T", 0, 2ull << 40 },
	{ "4g", 0, 4ull << 30 },
	{ "4GiB", 0, 4ull << 30 },
	{ "4GB", 0, 4ull << 30 },
	{ "4Gi", 0, 4ull << 30 },
	{ "18446744073709551615", 0, UINT64_MAX },
	{ "16777215T", 0, 16777215ull << 40 },
	{ "16777216T", -EINVAL, 0 },
	{ "18446744073709551616", -EINVAL, 0 },
	{ "", -EINVAL, 0 },
	{ "G", -EINVAL, 0 },
	{ "-1", -EINVAL, 0 },
	{ " 1", -EINVAL, 0 },
	{ "+1", -EINVAL, 0 },
	{ "1.5G", -EINVAL, 0 },
	{ "4X", -EINVAL, 0 },
	{ "4Gx", -EINVAL, 0 },
	{ "4iB", -EINVAL, 0 },
	{ "4 G", -EINVAL, 0 },
	{ "bad", -EINVAL, 0 },
};

static void test_parse_size(void) {
	for (size_t i = 0; i < ARRAY_SIZE(size_cases); i++) {
		uint64_t n = 12345;
		int r = parse_size(size_cases[i].text, &n);
		if (r != size_cases[i].want)
			fprintf(stderr, "size case '%s'\n", size_cases[i].text);
		CHECK_INTEQ(r, size_cases[i].want);
		CHECK(n == (r == 0 ? size_cases[i].bytes : 12345));
	}
}

int main(void) {
	char tmpl[] = "/tmp/test_recipe.XXXXXX";
	char *dir = mkdtemp(tmpl);
	char *cwd = getcwd(NULL, 0);
	if (!dir || !cwd || chdir(dir) < 0) {
		perror("test_recipe: temp dir");
		return 1;
	}
	make_project();
	test_errors();
	test_bad_sum_in_sums_file();
	test_unreadable();
	test_good();
	test_minimal_and_options(dir);
	test_sysext_good();
	test_parse_size();
	if (chdir(cwd) < 0)
		perror("test_recipe: chdir back");
	CHECK_INTEQ(rm_rf(dir), 0);
	free(cwd);
	return check_summary("test_recipe");
}
