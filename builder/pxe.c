#include "pxe.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bootcfg.h"
#include "buildinfo.h"
#include "buf.h"
#include "cache.h"
#include "filesum.h"
#include "fsutil.h"
#include "hash.h"
#include "loaders.h"
#include "tarball.h"
#include "util.h"

#define MENU_TIMEOUT_S 3

/* Whether `live` is a file of mode 0644 holding exactly `text`. */
static bool holds(const char *live, const char *text, size_t len) {
	int fd = open(live, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return false;
	struct stat st;
	bool same = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 07777) == 0644 && (uint64_t)st.st_size == len;
	if (same) {
		char *have = xmalloc(len + 1);
		same = read(fd, have, len + 1) == (ssize_t)len && memcmp(have, text, len) == 0;
		free(have);
	}
	close(fd);
	return same;
}

/* The file `rel` of the bundle's stage (pxe_write_bundle's <path>.tmp):
 * a hard link of the live bundle's `rel` when that holds these bytes
 * already, else written. A rebuild of 1,000 nodes after one changed thus
 * makes two new files, not two thousand menus. */
static int write_text(const char *tmp, const char *bundle, const char *rel, char *text, struct diags *d) {
	_cleanup_free_ char *path = path_join(tmp, rel);
	_cleanup_free_ char *live = path_join(bundle, rel);
	size_t len = strlen(text);
	int r = 0;
	if (holds(live, text, len) && link(live, path) == 0) {
		char hex[SHA256_HEX_LEN + 1];
		sha256_hex(text, len, hex);
		filesum_note(path, hex);
	} else {
		r = write_file_staged(path, text, len, 0644, d);
	}
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
static int add_recipe(const struct build *b, const char *tmp, struct boot_menu *menu, char payload[SHA256_HEX_LEN + 1],
		      char inputs[SHA256_HEX_LEN + 1], struct diags *d) {
	const struct recipe *rc = b->recipe;
	_cleanup_free_ char *dir = path_join(tmp, rc->name);
	_cleanup_free_ char *nodes = path_join(tmp, "nodes");
	if (mkdir_p(dir, 0755) < 0 || mkdir_p(nodes, 0755) < 0) {
		diag_error(d, NULL, "cannot create '%s': %s", dir, strerror(errno));
		return -errno;
	}
	_cleanup_free_ char *kernel = path_join(dir, "vmlinuz");
	_cleanup_free_ char *base = path_join(dir, "base.img");
	_cleanup_free_ char *shared_file = build_segment_file(b, "shared");
	_cleanup_free_ char *shared = path_join(dir, shared_file);
	_cleanup_free_ char *url = image_url(b);
	struct cache *cache = b->opts->cache;
	int r = cache_copy(cache, rc->base.kernel, kernel, d);
	if (r == 0)
		r = cache_copy(cache, rc->base.initrd, base, d);
	if (r == 0 && url) {
		_cleanup_free_ char *os = path_join(dir, PXE_IMAGE_DIR);
		_cleanup_free_ char *image = path_join(os, strrchr(url, '/') + 1);
		r = mkdir_p(os, 0755);
		if (r < 0)
			diag_error(d, NULL, "cannot create '%s': %s", os, strerror(-r));
		else
			r = cache_copy(cache, rc->base.image, image, d);
	}
	struct segment_sizes sizes = { 0 };
	if (r == 0)
		r = build_write_segments(b, shared, nodes, "", &(struct segment_opts){ .image_url = url }, NULL, &sizes, d);
	if (r == 0)
		r = build_check_initrd_size(b, &sizes, rc->outputs.max_pxe_initrd, &rc->outputs.pxe_loc, "max_initrd", d);
	memcpy(payload, sizes.payload_sha256, SHA256_HEX_LEN + 1);
	memcpy(inputs, sizes.inputs_sha256, SHA256_HEX_LEN + 1);
	segment_sizes_release(&sizes);
	if (r < 0)
		return r;

	build_menu_entries(b, "", menu);
	return 0;
}

/* A bundle keeps serving every recipe it served: building some of its
 * recipes keeps the others' entries and files from the bundle's last build
 * (dlws-build.json), checked against its SHA256SUMS; they must still fit
 * the cluster values, else the message says how to rebuild them together. */
static bool rebuilt(const struct build *const *builds, size_t n, const char *name) {
	for (size_t k = 0; k < n; k++)
		if (streq(builds[k]->recipe->name, name))
			return true;
	return false;
}

static char *rebuild_command(const struct build *const *builds, size_t n, const char *path, const struct buildinfo *info) {
	struct buf cmd = BUF_INIT;
	buf_puts(&cmd, "dlws-mkimage");
	for (size_t i = 0; i < n; i++)
		buf_printf(&cmd, " %s", builds[i]->recipe->path);
	for (size_t i = 0; i < info->n_recipes; i++)
		if (!rebuilt(builds, n, info->recipes[i].name)) {
			_cleanup_free_ char *rp = buildinfo_recipe_path(path, info->recipes[i].recipe);
			buf_printf(&cmd, " %s", rp);
		}
	return buf_steal(&cmd, NULL);
}

static int check_kept(const struct build *const *builds, size_t n, const char *path, struct strv *labels, struct strv *macs,
		      struct diags *d) {
	_cleanup_free_ char *meta = path_join(path, BUILDINFO_FILE);
	struct buildinfo info;
	int r = buildinfo_read(meta, &info, d);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	const struct cluster *c = builds[0]->cluster;
	for (size_t i = 0; i < info.n_recipes; i++) {
		const struct buildinfo_recipe *k = &info.recipes[i];
		if (rebuilt(builds, n, k->name))
			continue;
		_cleanup_free_ char *why = NULL;
		if (!streq(info.cluster, c->name))
			why = xasprintf("it was built for cluster '%s', not '%s'", info.cluster, c->name);
		for (size_t j = 0; j < k->nodes.n && !why; j++) {
			const struct node *node = cluster_find_node(c, k->nodes.v[j]);
			if (!node || !streq(role_name(node->role), k->role))
				why = xasprintf("'%s' is no longer a%s %s node in '%s'", k->nodes.v[j],
						k->role[0] == 'e' ? "n" : "", k->role, c->path);
		}
		for (size_t j = 0; j < k->entries.n && !why; j++) {
			const struct boot_entry *e = &k->entries.v[j];
			if (strv_contains(labels, e->label))
				why = xasprintf("its entry '%s' is now another recipe's", e->label);
			else if (e->mac && strv_contains(macs, e->mac))
				why = xasprintf("MAC '%s' is now another node's", e->mac);
			strv_push(labels, e->label);
			if (e->mac)
				strv_push(macs, e->mac);
		}
		if (why) {
			_cleanup_free_ char *cmd = rebuild_command(builds, n, path, &info);
			diag_error(d, &builds[0]->recipe->outputs.pxe_loc,
				   "the PXE bundle '%s' also serves '%s', which cannot be kept from its last build: %s; "
				   "build them together: %s", path, k->name, why, cmd);
			r = -EINVAL;
		}
	}
	buildinfo_release(&info);
	return r;
}

/* SHA256SUMS of the bundle's last build: "sum  path" lines. */
static int read_sums(const char *path, struct strv *ret, struct diags *d) {
	_cleanup_free_ char *file = path_join(path, "SHA256SUMS");
	char *text = NULL;
	size_t len;
	int r = read_file(file, 64u << 20, &text, &len, d);
	if (r < 0)
		return r;
	for (char *line = text, *next; line && *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		if (strlen(line) > SHA256_HEX_LEN + 2 && line[SHA256_HEX_LEN] == ' ')
			strv_push(ret, line);
	}
	free(text);
	return 0;
}

static const char *sum_of(const struct strv *sums, const char *name) {
	size_t n = strlen(name);
	for (size_t i = 0; i < sums->n; i++) {
		const char *p = sums->v[i] + SHA256_HEX_LEN + 2;
		if (strncmp(p, name, n) == 0 && p[n] == '\0')
			return sums->v[i];
	}
	return NULL;
}

/* Puts `name` of the old bundle into `tmp` (a hard link where it can),
 * checked against the old SHA256SUMS. */
static int keep_file(const char *path, const char *tmp, const char *name, const struct strv *sums, struct diags *d) {
	_cleanup_free_ char *src = path_join(path, name);
	_cleanup_free_ char *dst = path_join(tmp, name);
	if (path_exists(dst))
		return 0;
	const char *line = sum_of(sums, name);
	if (!line) {
		diag_error(d, NULL, "cannot keep '%s': it is not in the bundle's SHA256SUMS", src);
		return -ENOENT;
	}
	char *slash = strrchr(dst, '/');
	*slash = '\0';
	int r = mkdir_p(dst, 0755);
	*slash = '/';
	if (r < 0) {
		diag_error(d, NULL, "cannot create the directory of '%s': %s", dst, strerror(-r));
		return r;
	}
	if (link(src, dst) < 0 && (r = copy_file(src, dst, 0644, d)) < 0)
		return r;
	char sum[SHA256_HEX_LEN + 1];
	r = filesum(dst, sum, NULL, d);
	if (r == 0 && strncmp(sum, line, SHA256_HEX_LEN) != 0) {
		diag_error(d, NULL, "cannot keep '%s': it differs from the bundle's SHA256SUMS (damaged); rebuild its recipe", src);
		r = -EBADMSG;
	}
	return r;
}

/* A recipe of the bundle's last build that this build does not make: its
 * files into `tmp`, its entries into the menu. */
static int keep_recipe(const struct buildinfo_recipe *k, const char *path, const char *tmp, const struct strv *sums,
		       struct boot_menu *menu, struct diags *d) {
	/* Its directory (kernel, base, shared segment, OS image) whole. */
	_cleanup_free_ char *dir = path_join(path, k->name);
	struct strv files = STRV_INIT;
	int r = path_exists(dir) ? tree_list(dir, &files, d) : 0;
	for (size_t j = 0; j < files.n && r == 0; j++) {
		_cleanup_free_ char *name = path_join(k->name, files.v[j]);
		r = keep_file(path, tmp, name, sums, d);
	}
	strv_release(&files);
	for (size_t j = 0; j < k->entries.n && r == 0; j++) {
		const struct boot_entry *e = &k->entries.v[j];
		r = keep_file(path, tmp, e->kernel, sums, d);
		for (size_t m = 0; m < e->initrds.n && r == 0; m++)
			r = keep_file(path, tmp, e->initrds.v[m], sums, d);
		struct boot_entry *c = boot_menu_add(menu, e->label, e->title, e->kernel, e->cmdline);
		for (size_t m = 0; m < e->initrds.n; m++)
			strv_push(&c->initrds, e->initrds.v[m]);
		if (e->mac)
			c->mac = xstrdup(e->mac);
	}
	return r;
}

/* Every recipe of the bundle: those of its last build in their order (so
 * the menus, their default included, stay as they were), rebuilt or kept,
 * then the new ones. */
static int add_recipes(const struct build *const *builds, size_t n, const char *path, const char *tmp,
		       struct boot_menu *menu, struct buildinfo *info, struct strv *kept, struct diags *d) {
	_cleanup_free_ char *meta = path_join(path, BUILDINFO_FILE);
	struct buildinfo old;
	struct strv sums = STRV_INIT;
	int r = buildinfo_read(meta, &old, d);
	if (r == -ENOENT)
		r = 0;
	else if (r == 0)
		r = read_sums(path, &sums, d);
	bool *done = xcalloc(n + 1, sizeof(bool));
	for (size_t i = 0; i < old.n_recipes && r == 0; i++) {
		const struct buildinfo_recipe *k = &old.recipes[i];
		size_t b = 0;
		while (b < n && !streq(builds[b]->recipe->name, k->name))
			b++;
		size_t first = menu->n;
		char payload[SHA256_HEX_LEN + 1] = "", inputs[SHA256_HEX_LEN + 1] = "";
		if (b < n) {
			r = add_recipe(builds[b], tmp, menu, payload, inputs, d);
			buildinfo_add_build(info, builds[b], path, payload, inputs, menu, first);
			done[b] = true;
		} else {
			r = keep_recipe(k, path, tmp, &sums, menu, d);
			buildinfo_add_kept(info, k);
			strv_push(kept, k->name);
		}
	}
	for (size_t b = 0; b < n && r == 0; b++) {
		if (done[b])
			continue;
		size_t first = menu->n;
		char payload[SHA256_HEX_LEN + 1] = "", inputs[SHA256_HEX_LEN + 1] = "";
		r = add_recipe(builds[b], tmp, menu, payload, inputs, d);
		buildinfo_add_build(info, builds[b], path, payload, inputs, menu, first);
	}
	free(done);
	strv_release(&sums);
	buildinfo_release(&old);
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
		r = check_kept(builds, n, builds[0]->recipe->outputs.pxe, &labels, &macs, d);
	strv_release(&labels);
	strv_release(&macs);
	return r;
}

static char *server_url(const struct boot_server *bs) {
	if (bs->http_port == 80)
		return xasprintf("http://%s", bs->address);
	return xasprintf("http://%s:%d", bs->address, bs->http_port);
}

/* Every node entry's MAC, with its name and address from the cluster. */
static void dnsmasq_hosts(struct buf *b, const struct boot_menu *m, const struct cluster *c) {
	buf_puts(b, "# The cluster's nodes, by MAC: fixed addresses and names.\n");
	for (size_t i = 0; i < m->n; i++) {
		const struct node *node = m->v[i].mac ? cluster_find_node(c, m->v[i].label) : NULL;
		if (node)
			buf_printf(b, "dhcp-host=%s,%s,%s\n", m->v[i].mac, node->ip, node->hostname);
	}
}

/* Without boot_server: a snippet for an existing DHCP+TFTP set-up, every
 * file over TFTP. */
static char *dnsmasq_conf_tftp(const struct boot_menu *m, const struct cluster *c, const char *bundle) {
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
	dnsmasq_hosts(&b, m, c);
	return buf_steal(&b, NULL);
}

/* With boot_server: the boot server's dnsmasq. TFTP serves the first stage
 * only (iPXE); iPXE then loads boot.ipxe, and by it kernels and segments,
 * over HTTP from nginx. */
static char *dnsmasq_conf(const struct boot_menu *m, const struct cluster *c) {
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
		dnsmasq_hosts(&b, m, c);
	} else {
		/* x86-64 UEFI firmware says client-arch 7 or 9 (dnsmasq's
		 * X86-64_EFI and BC_EFI), as full mode's dhcp-match lines take. */
		buf_printf(&b, "pxe-service=tag:!ipxe,x86PC,\"DL Workspace %s (BIOS)\"," IPXE_BIOS "\n"
			       "pxe-service=tag:!ipxe,X86-64_EFI,\"DL Workspace %s (UEFI)\"," IPXE_EFI "\n"
			       "pxe-service=tag:!ipxe,BC_EFI,\"DL Workspace %s (UEFI)\"," IPXE_EFI "\n",
			       c->name, c->name, c->name);
	}
	return buf_steal(&b, NULL);
}

/* The boot server's HTTP side: a server block for nginx's http context. */
static char *nginx_conf(const struct cluster *c) {
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

static int write_menus(const struct boot_menu *m, const struct cluster *c, const char *tmp, const char *bundle,
		       const struct buildinfo *info, struct diags *d) {
	_cleanup_free_ char *pxecfg = path_join(tmp, "pxelinux.cfg");
	_cleanup_free_ char *grubdir = path_join(tmp, "grub");
	if (mkdir_p(pxecfg, 0755) < 0 || mkdir_p(grubdir, 0755) < 0) {
		diag_error(d, NULL, "cannot create '%s': %s", pxecfg, strerror(errno));
		return -errno;
	}
	int r = write_text(tmp, bundle, "pxelinux.cfg/default", bootcfg_syslinux(m, NULL, ""), d);
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
		r = write_text(tmp, bundle, "grub.cfg", buf_steal(&grub, NULL), d);
	buf_release(&grub);
	for (size_t i = 0; i < m->n && r == 0; i++) {
		const struct boot_entry *e = &m->v[i];
		if (!e->mac)
			continue;
		_cleanup_free_ char *name = bootcfg_pxelinux_mac_name(e->mac);
		_cleanup_free_ char *rel = xasprintf("pxelinux.cfg/%s", name);
		r = write_text(tmp, bundle, rel, bootcfg_syslinux(m, e, ""), d);
		_cleanup_free_ char *grel = xasprintf("grub/%s.cfg", e->mac);
		if (r == 0)
			r = write_text(tmp, bundle, grel, bootcfg_grub(m, e), d);
	}
	if (r == 0)
		r = write_text(tmp, bundle, "boot.ipxe", bootcfg_ipxe(m), d);
	bool server = c->boot_server.address != NULL;
	if (r == 0)
		r = write_text(tmp, bundle, "dnsmasq.conf", server ? dnsmasq_conf(m, c) : dnsmasq_conf_tftp(m, c, bundle), d);
	if (r == 0 && server)
		r = write_text(tmp, bundle, "nginx.conf", nginx_conf(c), d);
	if (r == 0 && server)
		r = loaders_copy_ipxe(tmp, d);
	if (r == 0)
		r = write_text(tmp, bundle, BUILDINFO_FILE, buildinfo_json(info), d);
	return r;
}

int pxe_write_bundle(const struct build *const *builds, size_t n, const char *path, struct strv *kept, struct pending *out,
		     struct diags *d) {
	int r = 0;
	_cleanup_free_ char *tmp = xasprintf("%s.tmp", path);
	rm_rf(tmp);
	if (mkdir_p(tmp, 0755) < 0) {
		diag_error(d, NULL, "cannot create '%s': %s", tmp, strerror(errno));
		return -errno;
	}
	struct boot_menu menu = { .timeout_s = MENU_TIMEOUT_S };
	struct buildinfo info;
	buildinfo_init(&info, builds, n);
	r = add_recipes(builds, n, path, tmp, &menu, &info, kept, d);
	if (r == 0)
		r = write_menus(&menu, builds[0]->cluster, tmp, path, &info, d);
	buildinfo_release(&info);
	if (r == 0)
		r = loaders_copy_pxelinux(tmp, d);
	if (r == 0) {
		_cleanup_free_ char *efi = path_join(tmp, "bootx64.efi");
		r = loaders_grub_netboot(efi, builds[0]->opts->cache, d);
	}
	boot_menu_release(&menu);
	if (r == 0)
		r = sha256sums_write(tmp, "SHA256SUMS", d);
	_cleanup_free_ char *tar_tmp = xasprintf("%s.tar", tmp);
	_cleanup_free_ char *tar = xasprintf("%s.tar", path);
	/* The tar is made of the tree: its key is the tree's sums, its top
	 * directory's name and the mtime of its entries. */
	const char *top = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	struct cache *cache = builds[0]->opts->cache;
	bool want_tar = false;
	for (size_t i = 0; i < n; i++)
		want_tar |= builds[i]->recipe->outputs.pxe_tar;
	char tar_key[SHA256_HEX_LEN + 1] = "";
	if (r == 0 && cache && want_tar) {
		_cleanup_free_ char *sums_path = path_join(tmp, "SHA256SUMS");
		char sums[SHA256_HEX_LEN + 1];
		r = filesum(sums_path, sums, NULL, d);
		_cleanup_free_ char *what = xasprintf("dlws-mkimage %s pxe tar\ntop %s\nepoch %lld\nsums %s\n", DLWS_VERSION, top,
						      (long long)builds[0]->opts->epoch, sums);
		sha256_hex(what, strlen(what), tar_key);
	}
	bool tar_fresh = r == 0 && tar_key[0] && cache_output_fresh(cache, tar, tar_key);
	if (r == 0 && want_tar && !tar_fresh)
		r = tarball_write(tmp, top, tar_tmp, builds[0]->opts->epoch, d);
	if (r < 0) {
		rm_rf(tmp);
		return r;
	}
	if (tree_up_to_date(tmp, path, "SHA256SUMS"))
		pending_fresh(out, tmp, path);
	else
		pending_add(out, tmp, path);
	if (!want_tar) {
		pending_remove(out, tar);
	} else if (tar_fresh) {
		pending_fresh(out, NULL, tar);
	} else {
		pending_add(out, tar_tmp, tar);
		if (tar_key[0])
			cache_output_made(cache, tar, tar_key, NULL);
	}
	return 0;
}
