#include "pxe.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "bootcfg.h"
#include "buildinfo.h"
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

/* Where a node of `b` fetches the OS image for an install: the bundle's
 * copy of it, over HTTP from the boot server (NULL without an install). */
static char *image_url(const struct build *b) {
	const struct recipe *rc = b->recipe;
	const struct boot_server *bs = &b->cluster->boot_server;
	if (!rc->install.enabled || !rc->base.image || !bs->address)
		return NULL;
	const char *base = strrchr(rc->base.image, '/') ? strrchr(rc->base.image, '/') + 1 : rc->base.image;
	_cleanup_free_ char *port = bs->http_port == 80 ? xstrdup("") : xasprintf(":%d", bs->http_port);
	return xasprintf("http://%s%s/%s/" PXE_IMAGE_DIR "/%s", bs->address, port, rc->name, base);
}

/* One recipe's part of the bundle: its kernel, base initrd and segments,
 * the OS image its installs fetch, and its entries in the menu. */
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
	_cleanup_free_ char *url = image_url(b);
	int r = copy_file(rc->base.kernel, kernel, 0644, d);
	if (r == 0)
		r = copy_file(rc->base.initrd, base, 0644, d);
	if (r == 0 && url) {
		_cleanup_free_ char *os = path_join(dir, PXE_IMAGE_DIR);
		_cleanup_free_ char *image = path_join(os, strrchr(url, '/') + 1);
		r = mkdir_p(os, 0755);
		if (r < 0)
			diag_error(d, NULL, "cannot create '%s': %s", os, strerror(-r));
		else
			r = copy_file(rc->base.image, image, 0644, d);
	}
	struct segment_sizes sizes = { 0 };
	if (r == 0)
		r = build_write_segments(b, shared, nodes, "", &(struct segment_opts){ .image_url = url }, NULL, &sizes, d);
	if (r == 0)
		r = build_check_initrd_size(b, &sizes, rc->outputs.max_pxe_initrd, &rc->outputs.pxe_loc, "max_initrd", d);
	segment_sizes_release(&sizes);
	if (r < 0)
		return r;

	build_menu_entries(b, "", menu);
	return 0;
}

/* A bundle keeps serving every role it served: building some of its
 * recipes alone would drop the others' entries, and their nodes would no
 * longer boot. */
static int check_kept_roles(const struct build *const *builds, size_t n, const char *path, struct diags *d) {
	_cleanup_free_ char *meta = path_join(path, BUILDINFO_FILE);
	struct buildinfo info;
	int r = buildinfo_read(meta, &info, d);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	struct buf names = BUF_INIT, cmd = BUF_INIT;
	size_t missing = 0;
	for (size_t i = 0; i < n; i++)
		buf_printf(&cmd, " %s", builds[i]->recipe->path);
	for (size_t i = 0; i < info.n_recipes; i++) {
		bool built = false;
		for (size_t k = 0; k < n && !built; k++)
			built = streq(builds[k]->recipe->name, info.recipes[i].name);
		if (built)
			continue;
		_cleanup_free_ char *rp = buildinfo_recipe_path(path, info.recipes[i].recipe);
		buf_printf(&names, "%s%s (%s)", missing++ ? ", " : "", info.recipes[i].name, rp);
		buf_printf(&cmd, " %s", rp);
	}
	if (missing) {
		diag_error(d, &builds[0]->recipe->outputs.pxe_loc,
			   "the PXE bundle '%s' also serves %s: building without %s would drop %s boot entries and those "
			   "nodes would no longer boot; build them together: dlws-mkimage%s (or remove '%s' to start the "
			   "bundle afresh)", path, names.data, missing == 1 ? "it" : "them", missing == 1 ? "its" : "their",
			   cmd.data, path);
		r = -EEXIST;
	}
	buf_release(&names);
	buf_release(&cmd);
	buildinfo_release(&info);
	return r;
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
	/* One cluster per bundle: its boot server serves them all. */
	for (size_t i = 1; i < n; i++)
		if (!streq(builds[i]->cluster->path, builds[0]->cluster->path)) {
			char a[PATH_MAX], b[PATH_MAX];
			if (!realpath(builds[i]->cluster->path, a) || !realpath(builds[0]->cluster->path, b) || !streq(a, b)) {
				diag_error(d, &builds[i]->recipe->outputs.pxe_loc, "recipes of two clusters ('%s' and '%s') "
					   "write the bundle '%s'", builds[0]->cluster->path, builds[i]->cluster->path,
					   builds[i]->recipe->outputs.pxe);
				r = -EINVAL;
			}
		}
	for (size_t i = 0; i < n; i++) {
		const struct recipe *rc = builds[i]->recipe;
		if (rc->install.enabled && rc->base.image && !builds[i]->cluster->boot_server.address) {
			diag_error(d, &rc->install_loc, "a node installed from the PXE bundle '%s' fetches the OS image from "
				   "the boot server over HTTP: set boot_server.address in '%s' (e.g. 192.168.255.1/24)",
				   rc->outputs.pxe, builds[i]->cluster->path);
			r = -EINVAL;
		}
	}
	if (r == 0 && n)
		r = check_kept_roles(builds, n, builds[0]->recipe->outputs.pxe, d);
	return r;
}

static char *server_url(const struct boot_server *bs) {
	if (bs->http_port == 80)
		return xasprintf("http://%s", bs->address);
	return xasprintf("http://%s:%d", bs->address, bs->http_port);
}

static void dnsmasq_hosts(struct buf *b, const struct build *const *builds, size_t n) {
	buf_puts(b, "# The cluster's nodes, by MAC: fixed addresses and names.\n");
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < builds[i]->n_nodes; k++) {
			const struct node *node = builds[i]->nodes[k];
			if (node->mac)
				buf_printf(b, "dhcp-host=%s,%s,%s\n", node->mac, node->ip, node->hostname);
		}
}

/* Without boot_server: a snippet for an existing DHCP+TFTP set-up, every
 * file over TFTP. */
static char *dnsmasq_conf_tftp(const struct build *const *builds, size_t n, const char *bundle) {
	struct buf b = BUF_INIT;
	const char *name = strrchr(bundle, '/') ? strrchr(bundle, '/') + 1 : bundle;
	buf_printf(&b,
		   "# dnsmasq snippet written by dlws-mkimage: serves this bundle to BIOS and\n"
		   "# UEFI PXE clients and to iPXE, every file over TFTP. Set tftp-root to where\n"
		   "# the bundle is published, and give dnsmasq a dhcp-range for your network.\n"
		   "# (With boot_server: in the cluster values, this file is a complete boot\n"
		   "# server's, and kernels and segments go over HTTP.)\n"
		   "enable-tftp\n"
		   "tftp-root=/srv/tftp/%s\n"
		   "# DHCP option 93 (client architecture): 0 BIOS, 7 and 9 x86-64 UEFI.\n"
		   "dhcp-match=set:efi64,option:client-arch,7\n"
		   "dhcp-match=set:efi64,option:client-arch,9\n"
		   "dhcp-userclass=set:ipxe,iPXE\n"
		   "dhcp-boot=tag:ipxe,boot.ipxe\n"
		   "dhcp-boot=tag:!ipxe,tag:efi64,bootx64.efi\n"
		   "dhcp-boot=tag:!ipxe,tag:!efi64,pxelinux.0\n",
		   name);
	dnsmasq_hosts(&b, builds, n);
	return buf_steal(&b, NULL);
}

/* With boot_server: the boot server's dnsmasq. TFTP serves the first stage
 * only (iPXE); iPXE then loads boot.ipxe, and by it kernels and segments,
 * over HTTP from nginx. */
static char *dnsmasq_conf(const struct build *const *builds, size_t n) {
	const struct cluster *c = builds[0]->cluster;
	const struct boot_server *bs = &c->boot_server;
	_cleanup_free_ char *url = server_url(bs);
	_cleanup_free_ char *net = ipv4_format(bs->network.addr);
	_cleanup_free_ char *mask = ipv4_format(bs->network.prefix ? 0xffffffffu << (32 - bs->network.prefix) : 0);
	struct buf b = BUF_INIT;
	buf_printf(&b,
		   "# dnsmasq for the boot network of cluster %s, written by dlws-mkimage.\n"
		   "# %s\n"
		   "# TFTP serves the first stage only: BIOS and UEFI PXE ROMs get iPXE, which\n"
		   "# loads boot.ipxe, kernels and segments over HTTP (nginx.conf).\n"
		   "#   dnsmasq --conf-file=%s/current/dnsmasq.conf --interface=IFACE\n"
		   "# or copy it to /etc/dnsmasq.d/. Paths stay valid across publishes:\n"
		   "# 'dlws-mkimage publish' switches %s/current atomically.\n"
		   "port=0\n"
		   "enable-tftp\n"
		   "tftp-root=%s/current\n",
		   c->name, bs->dhcp == DHCP_FULL ? "Full DHCP: this server hands out the addresses." :
		   "Proxy DHCP: the network's own DHCP server hands out addresses, this one the boot files.",
		   bs->root, bs->root, bs->root);
	if (bs->dhcp == DHCP_FULL)
		buf_printf(&b, "dhcp-range=%s,%s,%s,1h\n", bs->range_start, bs->range_end, mask);
	else
		buf_printf(&b, "dhcp-range=%s,proxy,%s\n", net, mask);
	buf_printf(&b,
		   "# DHCP option 93 (client architecture): 0 BIOS, 7 and 9 x86-64 UEFI.\n"
		   "dhcp-match=set:efi64,option:client-arch,7\n"
		   "dhcp-match=set:efi64,option:client-arch,9\n"
		   "dhcp-userclass=set:ipxe,iPXE\n"
		   "dhcp-boot=tag:ipxe,%s/boot.ipxe\n", url);
	if (bs->dhcp == DHCP_FULL) {
		buf_printf(&b, "dhcp-boot=tag:!ipxe,tag:efi64," IPXE_EFI "\n"
			       "dhcp-boot=tag:!ipxe,tag:!efi64," IPXE_BIOS "\n");
		dnsmasq_hosts(&b, builds, n);
	} else {
		buf_printf(&b, "pxe-service=tag:!ipxe,x86PC,\"DL Workspace %s (BIOS)\"," IPXE_BIOS "\n"
			       "pxe-service=tag:!ipxe,X86-64_EFI,\"DL Workspace %s (UEFI)\"," IPXE_EFI "\n",
			       c->name, c->name);
	}
	return buf_steal(&b, NULL);
}

/* The boot server's HTTP side: a server block for nginx's http context. */
static char *nginx_conf(const struct build *const *builds) {
	const struct cluster *c = builds[0]->cluster;
	const struct boot_server *bs = &c->boot_server;
	struct buf b = BUF_INIT;
	buf_printf(&b,
		   "# nginx site for the boot network of cluster %s, written by dlws-mkimage:\n"
		   "# iPXE loads boot.ipxe, kernels, initrds and segments from it, and installs\n"
		   "# the OS image. Put it in nginx's http block (e.g. copy it to\n"
		   "# /etc/nginx/sites-enabled/dlws-boot) and reload nginx once; publishes\n"
		   "# switch %s/current under it.\n"
		   "server {\n"
		   "\tlisten %s:%d;\n"
		   "\troot %s/current;\n"
		   "\tautoindex off;\n"
		   "\tsendfile on;\n"
		   "\ttcp_nopush on;\n"
		   "\tdefault_type application/octet-stream;\n"
		   "\ttypes { }\n"
		   "\tlocation / {\n"
		   "\t\ttry_files $uri =404;\n"
		   "\t}\n"
		   "}\n",
		   c->name, bs->root, bs->address, bs->http_port, bs->root);
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
	bool server = builds[0]->cluster->boot_server.address != NULL;
	if (r == 0)
		r = write_text(tmp, "dnsmasq.conf", server ? dnsmasq_conf(builds, n) : dnsmasq_conf_tftp(builds, n, bundle), d);
	if (r == 0 && server)
		r = write_text(tmp, "nginx.conf", nginx_conf(builds), d);
	if (r == 0 && server)
		r = loaders_copy_ipxe(tmp, d);
	if (r == 0)
		r = write_text(tmp, BUILDINFO_FILE, buildinfo_json(builds, n, bundle), d);
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
