/* dlws-mkimage init's tree: see scaffold.h. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "fsutil.h"
#include "scaffold.h"

static const char *const recipe_names[] = { "master.recipe", "etcd.recipe", "worker.recipe" };

void scaffold_release(struct scaffold *s) {
	if (!s)
		return;
	for (size_t i = 0; i < s->n_nodes; i++) {
		free(s->nodes[i].hostname);
		free(s->nodes[i].ip);
		free(s->nodes[i].mac);
	}
	free(s->nodes);
	free(s->name);
	free(s->boot_server);
	free(s->pod_range);
	free(s->service_range);
	free(s->kubernetes_version);
	strv_release(&s->ssh_keys);
	*s = (struct scaffold)SCAFFOLD_INIT;
}

int scaffold_add_node(struct scaffold *s, enum node_role role, const char *spec) {
	const char *eq = strchr(spec, '=');
	if (!eq || eq == spec || !eq[1])
		return -EINVAL;
	const char *comma = strchr(eq + 1, ',');
	if (comma && (comma == eq + 1 || !comma[1]))
		return -EINVAL;
	GROW(s->nodes, s->n_nodes_cap, s->n_nodes + 1);
	struct scaffold_node *n = &s->nodes[s->n_nodes++];
	n->hostname = xstrndup(spec, (size_t)(eq - spec));
	n->ip = comma ? xstrndup(eq + 1, (size_t)(comma - eq - 1)) : xstrdup(eq + 1);
	n->mac = comma ? xstrdup(comma + 1) : NULL;
	n->role = role;
	return 0;
}

char *scaffold_examples_dir(void) {
	const char *set = getenv("DLWS_EXAMPLES_DIR");
	if (set && *set)
		return xstrdup(set);
	char exe[4096];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n < 0)
		return xstrdup(".");
	exe[n] = '\0';
	char *slash = strrchr(exe, '/');
	if (slash)
		*slash = '\0';
	/* Installed: bin/../share/dlws-mkimage/examples; a checkout: the
	 * binary sits at the top, recipes/ beside it. */
	const char *const candidates[] = { "../share/dlws-mkimage/examples", "." };
	for (size_t i = 0; i < ARRAY_SIZE(candidates); i++) {
		_cleanup_free_ char *p = path_join(exe, candidates[i]);
		_cleanup_free_ char *probe = path_join(p, "recipes/cluster.yaml");
		if (path_exists(probe))
			return realpath(p, NULL) ?: xstrdup(p);
	}
	return xstrdup(exe);
}

/* A double-quoted YAML scalar: whatever an option held stays one scalar
 * (a ':' or a newline cannot add keys), and cluster_load sees its text. */
static void put_quoted(struct buf *b, const char *s) {
	buf_putc(b, '"');
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			buf_printf(b, "\\%c", *p);
		else if (*p == '\n')
			buf_puts(b, "\\n");
		else if (*p < 0x20 || *p == 0x7f)
			buf_printf(b, "\\x%02x", *p);
		else
			buf_putc(b, (char)*p);
	}
	buf_putc(b, '"');
}

static bool plain_key(const char *k) {
	if (!*k)
		return false;
	for (; *k; k++)
		if (!(('a' <= *k && *k <= 'z') || ('A' <= *k && *k <= 'Z') || ('0' <= *k && *k <= '9') || *k == '_' || *k == '-'))
			return false;
	return true;
}

static void put_nodes(struct buf *b, const struct scaffold *s, enum node_role role, const char *key) {
	bool any = false;
	for (size_t i = 0; i < s->n_nodes; i++) {
		const struct scaffold_node *n = &s->nodes[i];
		if (n->role != role)
			continue;
		if (!any)
			buf_printf(b, "%s:\n", key);
		any = true;
		buf_puts(b, "  - { hostname: ");
		put_quoted(b, n->hostname);
		buf_puts(b, ", ip: ");
		put_quoted(b, n->ip);
		if (n->mac) {
			buf_puts(b, ", mac: ");
			put_quoted(b, n->mac);
		}
		buf_puts(b, " }\n");
	}
	if (!any)
		buf_printf(b, "%s: []\n", key);
}

char *scaffold_cluster_yaml(const struct scaffold *s, const struct cluster *defaults) {
	struct buf b = BUF_INIT;
	buf_puts(&b, "# Cluster-wide values, in the spirit of DL Workspace's config.yaml, written\n"
		     "# by `dlws-mkimage init`. Every recipe of the cluster points here;\n"
		     "# `dlws-mkimage render RECIPE` shows how they land in each node's configs.\n"
		     "cluster_name: ");
	put_quoted(&b, s->name);
	buf_puts(&b, "\ndomain: ");
	put_quoted(&b, defaults->domain);
	buf_puts(&b, "\npod_ip_range: ");
	put_quoted(&b, s->pod_range ? s->pod_range : defaults->pod_range_text ? defaults->pod_range_text : "");
	buf_puts(&b, "\nservice_cluster_ip_range: ");
	const char *range = s->service_range ? s->service_range : defaults->service_range_text ? defaults->service_range_text : "";
	put_quoted(&b, range);
	/* The first two hosts of the range, as cluster_load takes them; a bad
	 * range gets no comment here and its error from cluster_load. */
	struct cidr sr;
	if (cidr_parse(range, &sr) == 0 && sr.prefix <= 30) {
		_cleanup_free_ char *svc = ipv4_format(sr.addr + 1);
		_cleanup_free_ char *dns = ipv4_format(sr.addr + 2);
		buf_printf(&b, "   # kubernetes service %s, DNS %s", svc, dns);
	}
	buf_putc(&b, '\n');
	buf_puts(&b, "\n# Pinned: the images every node needs follow from it, and kubeadm never\n"
		     "# asks the internet for a version.\nkubernetes_version: ");
	put_quoted(&b, s->kubernetes_version ? s->kubernetes_version : defaults->kubernetes_version);
	buf_puts(&b, "\nflannel_version: ");
	put_quoted(&b, defaults->flannel_version);
	buf_puts(&b, "\nflannel_cni_plugin_version: ");
	put_quoted(&b, defaults->flannel_cni_plugin_version);
	buf_puts(&b, "\n\n# Logins for user `core`.\n");
	if (s->ssh_keys.n) {
		buf_puts(&b, "ssh_keys:\n");
		for (size_t i = 0; i < s->ssh_keys.n; i++) {
			buf_puts(&b, "  - ");
			put_quoted(&b, s->ssh_keys.v[i]);
			buf_putc(&b, '\n');
		}
	} else
		buf_puts(&b, "ssh_keys: []\n");
	buf_puts(&b, "\n# The nodes: hostname, fixed IP and (optional) MAC. A MAC-listed node's\n"
		     "# PXE entry is its own; a worker without one names itself after its MAC.\n");
	put_nodes(&b, s, ROLE_MASTER, "masters");
	put_nodes(&b, s, ROLE_ETCD, "etcd");
	put_nodes(&b, s, ROLE_WORKER, "workers");
	if (s->boot_server) {
		buf_puts(&b, "\n# The boot server of the PXE bundles (`dlws-mkimage publish`): proxy DHCP\n"
			     "# beside the network's own DHCP server; see dlws-mkimage(1) for dhcp: full.\n"
			     "boot_server:\n  address: ");
		put_quoted(&b, s->boot_server);
		buf_puts(&b, "\n  dhcp: proxy\n  root: /srv/boot\n");
	}
	const struct value *v = defaults->values;
	bool header = false;
	for (size_t i = 0; v && v->kind == VALUE_MAP && i < v->n; i++) {
		/* Scalars only: the shipped values are; anything else stays the
		 * user's to write. */
		if (v->items[i]->kind != VALUE_SCALAR || !plain_key(v->keys[i]))
			continue;
		if (!header)
			buf_puts(&b, "\n# Free values for templates ({{ values.NAME }}); a recipe's own `values:`\n"
				     "# and `--set values.NAME=...` override them.\nvalues:\n");
		header = true;
		buf_printf(&b, "  %s: ", v->keys[i]);
		put_quoted(&b, v->items[i]->text);
		buf_putc(&b, '\n');
	}
	return buf_steal(&b, NULL);
}

/* A directory that is absent or empty; the rest is refused. */
static int check_target(const char *dir, struct diags *d) {
	DIR *h = opendir(dir);
	if (!h) {
		if (errno == ENOENT)
			return 0;
		int r = -errno;
		if (errno == ENOTDIR)
			diag_error(d, NULL, "'%s' exists and is not a directory", dir);
		else
			diag_error(d, NULL, "cannot open '%s': %s", dir, strerror(errno));
		return r;
	}
	struct dirent *e;
	bool empty = true;
	while ((e = readdir(h)))
		if (!streq(e->d_name, ".") && !streq(e->d_name, ".."))
			empty = false;
	closedir(h);
	if (!empty) {
		diag_error(d, NULL, "'%s' is not empty (init writes a new cluster's tree; choose a new directory)", dir);
		return -EEXIST;
	}
	return 0;
}

/* Only what needs no quoting inside a YAML flow mapping. */
static bool yaml_safe_path(const char *p) {
	for (; *p; p++)
		if (!(('a' <= *p && *p <= 'z') || ('A' <= *p && *p <= 'Z') || ('0' <= *p && *p <= '9') || strchr("/._+-", *p)))
			return false;
	return true;
}

static char *replace_all(const char *text, const char *from, const char *to) {
	struct buf b = BUF_INIT;
	size_t n = strlen(from);
	for (const char *p = text, *q; *p; p = q + n) {
		q = strstr(p, from);
		if (!q) {
			buf_puts(&b, p);
			break;
		}
		buf_append(&b, p, (size_t)(q - p));
		buf_puts(&b, to);
	}
	return b.data ? buf_steal(&b, NULL) : xstrdup("");
}

static int copy_recipe(const char *examples, const char *name, const char *dst_dir, struct diags *d) {
	_cleanup_free_ char *src = xasprintf("%s/recipes/%s", examples, name);
	_cleanup_free_ char *dst = path_join(dst_dir, name);
	_cleanup_free_ char *text = NULL;
	int r = read_file(src, 1 << 20, &text, NULL, d);
	if (r < 0)
		return r;
	_cleanup_free_ char *base = xasprintf("%s/out/base/", examples);
	_cleanup_free_ char *vendor = xasprintf("%s/vendor/", examples);
	_cleanup_free_ char *a = replace_all(text, "../out/base/", base);
	_cleanup_free_ char *out = replace_all(a, "../vendor/", vendor);
	return write_file_atomic(dst, out, strlen(out), 0644, d);
}

static int copy_tree(const char *src, const char *dst, struct diags *d) {
	struct strv files = STRV_INIT;
	if (mkdir(dst, 0755) < 0 && errno != EEXIST) {
		int r = -errno;
		diag_error(d, NULL, "cannot create '%s': %s", dst, strerror(errno));
		return r;
	}
	int r = tree_list(src, &files, d);
	for (size_t i = 0; r == 0 && i < files.n; i++) {
		_cleanup_free_ char *from = path_join(src, files.v[i]);
		_cleanup_free_ char *to = path_join(dst, files.v[i]);
		struct stat st;
		if (stat(from, &st) < 0) {
			r = -errno;
			diag_error(d, NULL, "cannot read '%s': %s", from, strerror(errno));
			break;
		}
		r = mkdirs_for_file(dst, files.v[i], 0755, d);
		if (r == 0)
			r = copy_file(from, to, st.st_mode & 0777, d);
	}
	strv_release(&files);
	return r;
}

int scaffold_write(const struct scaffold *s, const char *examples, const char *dir, struct diags *d) {
	int r = check_target(dir, d);
	if (r < 0)
		return r;
	_cleanup_free_ char *abs_examples = realpath(examples, NULL);
	if (!abs_examples) {
		r = -errno;
		diag_error(d, NULL, "cannot find the examples '%s': %s (set DLWS_EXAMPLES_DIR)", examples, strerror(errno));
		return r;
	}
	if (!yaml_safe_path(abs_examples)) {
		diag_error(d, NULL, "the examples' path '%s' has characters the recipes cannot hold unquoted", abs_examples);
		return -EINVAL;
	}
	_cleanup_free_ char *shipped = path_join(abs_examples, "recipes/cluster.yaml");
	struct cluster *defaults = NULL;
	r = cluster_load(shipped, &defaults, d);
	if (r < 0)
		return r;
	_cleanup_free_ char *yaml = scaffold_cluster_yaml(s, defaults);
	cluster_free(defaults);

	_cleanup_free_ char *tmp = xasprintf("%s.tmp", dir);
	if (mkdir(tmp, 0755) < 0) {
		r = -errno;
		if (errno == EEXIST)
			diag_error(d, NULL, "'%s' exists (left by an earlier init? remove it)", tmp);
		else
			diag_error(d, NULL, "cannot create '%s': %s", tmp, strerror(errno));
		return r;
	}
	_cleanup_free_ char *recipes = path_join(tmp, "recipes");
	_cleanup_free_ char *cluster_path = path_join(recipes, "cluster.yaml");
	struct cluster *c = NULL;
	r = mkdirs_under(tmp, "recipes", 0755, d);
	if (r == 0)
		r = write_file_atomic(cluster_path, yaml, strlen(yaml), 0644, d);
	/* The same rules and messages as a hand-written file, before any copy. */
	if (r == 0)
		r = cluster_load(cluster_path, &c, d);
	cluster_free(c);
	for (size_t i = 0; r == 0 && i < ARRAY_SIZE(recipe_names); i++)
		r = copy_recipe(abs_examples, recipe_names[i], recipes, d);
	if (r == 0) {
		_cleanup_free_ char *from = path_join(abs_examples, "recipes/templates");
		_cleanup_free_ char *to = path_join(recipes, "templates");
		r = copy_tree(from, to, d);
	}
	if (r == 0) {
		_cleanup_free_ char *from = path_join(abs_examples, "overlays");
		_cleanup_free_ char *to = path_join(tmp, "overlays");
		r = copy_tree(from, to, d);
	}
	/* rename(2) replaces an empty directory: the target appears whole. */
	if (r == 0 && rename(tmp, dir) < 0) {
		r = -errno;
		diag_error(d, NULL, "cannot rename '%s' to '%s': %s", tmp, dir, strerror(errno));
	}
	if (r < 0)
		rm_rf(tmp);
	return r;
}
