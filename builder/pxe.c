#include "pxe.h"

#include <errno.h>
#include <string.h>

#include "bootcfg.h"
#include "buf.h"
#include "fsutil.h"
#include "loaders.h"
#include "tarball.h"
#include "util.h"

#define MENU_TIMEOUT_S 3

static int write_text(const char *dir, const char *name, char *text, struct diags *d) {
	_cleanup_free_ char *path = path_join(dir, name);
	int r = write_file_atomic(path, text, strlen(text), 0644, d);
	free(text);
	return r;
}

/* One recipe's part of the bundle: its kernel, base initrd and segments,
 * and its entries in the menu. */
static int add_recipe(const struct build *b, const char *tmp, struct boot_menu *menu, struct diags *d) {
	const struct recipe *rc = b->recipe;
	_cleanup_free_ char *dir = path_join(tmp, rc->name);
	_cleanup_free_ char *nodes = path_join(tmp, "nodes");
	if (mkdir_p(dir, 0755) < 0 || mkdir_p(nodes, 0755) < 0) {
		diag_error(d, NULL, "cannot create '%s': %s", dir, strerror(errno));
		return -errno;
	}
	_cleanup_free_ char *kernel = path_join(dir, "vmlinuz");
	_cleanup_free_ char *base = path_join(dir, "base.img");
	_cleanup_free_ char *shared = path_join(dir, "shared.cpio.gz");
	int r = copy_file(rc->base.kernel, kernel, 0644, d);
	if (r == 0)
		r = copy_file(rc->base.initrd, base, 0644, d);
	struct segment_sizes sizes = { 0 };
	if (r == 0)
		r = build_write_segments(b, shared, nodes, "", 0, NULL, &sizes, d);
	if (r == 0)
		r = build_check_initrd_size(b, &sizes, rc->outputs.max_pxe_initrd, &rc->outputs.pxe_loc, "max_initrd", d);
	segment_sizes_release(&sizes);
	if (r < 0)
		return r;

	build_menu_entries(b, "", menu);
	return 0;
}

int pxe_check(const struct build *const *builds, size_t n, struct diags *d) {
	struct strv labels = STRV_INIT, macs = STRV_INIT;
	int r = 0;
	for (size_t i = 0; i < n; i++) {
		const struct build *b = builds[i];
		if (strv_contains(&labels, b->recipe->name)) {
			diag_error(d, NULL, "two recipes named '%s' write the bundle '%s'", b->recipe->name, b->recipe->outputs.pxe);
			r = -EINVAL;
		}
		strv_push(&labels, b->recipe->name);
		if (b->recipe->pki.include_ca_key) {
			diag_error(d, &b->recipe->outputs.pxe_loc,
				   "a recipe with 'pki.include_ca_key: true' cannot write a PXE tree: TFTP serves every file to "
				   "anyone on the boot network, the CA key with it (install such masters from an ISO, a USB "
				   "stick or a disk image)");
			r = -EINVAL;
		}
		for (size_t k = 0; k < b->n_nodes; k++) {
			const struct node *node = b->nodes[k];
			if (strv_contains(&labels, node->hostname)) {
				diag_error(d, &node->hostname_loc, "'%s' is listed twice in the bundle '%s'", node->hostname, b->recipe->outputs.pxe);
				r = -EINVAL;
			}
			strv_push(&labels, node->hostname);
			if (node->mac && strv_contains(&macs, node->mac)) {
				diag_error(d, &node->mac_loc, "MAC '%s' is listed twice in the bundle '%s'", node->mac, b->recipe->outputs.pxe);
				r = -EINVAL;
			}
			if (node->mac)
				strv_push(&macs, node->mac);
		}
	}
	strv_release(&labels);
	strv_release(&macs);
	return r;
}

static char *dnsmasq_conf(const struct build *const *builds, size_t n, const char *bundle) {
	struct buf b = BUF_INIT;
	const char *name = strrchr(bundle, '/') ? strrchr(bundle, '/') + 1 : bundle;
	buf_printf(&b,
		   "# dnsmasq snippet written by dlws-mkimage: serves this bundle to BIOS and\n"
		   "# UEFI PXE clients and to iPXE. Set tftp-root to where the bundle is\n"
		   "# published, and give dnsmasq a dhcp-range for your network.\n"
		   "enable-tftp\n"
		   "tftp-root=/srv/tftp/%s\n"
		   "# DHCP option 93 (client architecture): 0 BIOS, 7 and 9 x86-64 UEFI.\n"
		   "dhcp-match=set:efi64,option:client-arch,7\n"
		   "dhcp-match=set:efi64,option:client-arch,9\n"
		   "dhcp-userclass=set:ipxe,iPXE\n"
		   "dhcp-boot=tag:ipxe,boot.ipxe\n"
		   "dhcp-boot=tag:!ipxe,tag:efi64,bootx64.efi\n"
		   "dhcp-boot=tag:!ipxe,tag:!efi64,pxelinux.0\n"
		   "# The cluster's nodes, by MAC: fixed addresses and names.\n",
		   name);
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < builds[i]->n_nodes; k++) {
			const struct node *node = builds[i]->nodes[k];
			if (node->mac)
				buf_printf(&b, "dhcp-host=%s,%s,%s\n", node->mac, node->ip, node->hostname);
		}
	return buf_steal(&b, NULL);
}

static int write_menus(const struct boot_menu *m, const struct build *const *builds, size_t n, const char *tmp,
		       const char *bundle, struct diags *d) {
	_cleanup_free_ char *pxecfg = path_join(tmp, "pxelinux.cfg");
	_cleanup_free_ char *grubdir = path_join(tmp, "grub");
	if (mkdir_p(pxecfg, 0755) < 0 || mkdir_p(grubdir, 0755) < 0) {
		diag_error(d, NULL, "cannot create '%s': %s", pxecfg, strerror(errno));
		return -errno;
	}
	int r = write_text(pxecfg, "default", bootcfg_syslinux(m, NULL, ""), d);
	/* GRUB has no per-MAC lookup of its own: grub.cfg hands over to a node's
	 * file when there is one for the MAC it booted from. Over TFTP only -s
	 * can tell (GRUB's -e and -f say no), and configfile, unlike source,
	 * keeps the menu below from overriding the node's default. */
	struct buf grub = BUF_INIT;
	buf_puts(&grub, "if [ -s /grub/${net_default_mac}.cfg ]; then\n  configfile /grub/${net_default_mac}.cfg\nfi\n");
	char *menu = bootcfg_grub(m, NULL);
	buf_puts(&grub, menu);
	free(menu);
	if (r == 0)
		r = write_text(tmp, "grub.cfg", buf_steal(&grub, NULL), d);
	buf_release(&grub);
	for (size_t i = 0; i < m->n && r == 0; i++) {
		const struct boot_entry *e = &m->v[i];
		if (!e->mac)
			continue;
		_cleanup_free_ char *name = bootcfg_pxelinux_mac_name(e->mac);
		r = write_text(pxecfg, name, bootcfg_syslinux(m, e, ""), d);
		_cleanup_free_ char *gname = xasprintf("%s.cfg", e->mac);
		if (r == 0)
			r = write_text(grubdir, gname, bootcfg_grub(m, e), d);
	}
	if (r == 0)
		r = write_text(tmp, "boot.ipxe", bootcfg_ipxe(m), d);
	if (r == 0)
		r = write_text(tmp, "dnsmasq.conf", dnsmasq_conf(builds, n, bundle), d);
	return r;
}

int pxe_write_bundle(const struct build *const *builds, size_t n, const char *path, struct pending *out, struct diags *d) {
	int r = 0;
	_cleanup_free_ char *tmp = xasprintf("%s.tmp", path);
	rm_rf(tmp);
	if (mkdir_p(tmp, 0755) < 0) {
		diag_error(d, NULL, "cannot create '%s': %s", tmp, strerror(errno));
		return -errno;
	}
	struct boot_menu menu = { .timeout_s = MENU_TIMEOUT_S };
	for (size_t i = 0; i < n && r == 0; i++)
		r = add_recipe(builds[i], tmp, &menu, d);
	if (r == 0)
		r = write_menus(&menu, builds, n, tmp, path, d);
	if (r == 0)
		r = loaders_copy_pxelinux(tmp, d);
	if (r == 0) {
		_cleanup_free_ char *efi = path_join(tmp, "bootx64.efi");
		r = loaders_grub_netboot(efi, d);
	}
	boot_menu_release(&menu);
	if (r == 0)
		r = sha256sums_write(tmp, "SHA256SUMS", d);
	_cleanup_free_ char *tar_tmp = xasprintf("%s.tar", tmp);
	_cleanup_free_ char *tar = xasprintf("%s.tar", path);
	if (r == 0) {
		const char *top = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
		r = tarball_write(tmp, top, tar_tmp, builds[0]->opts->epoch, d);
	}
	if (r < 0) {
		rm_rf(tmp);
		return r;
	}
	pending_add(out, tmp, path);
	pending_add(out, tar_tmp, tar);
	return 0;
}
