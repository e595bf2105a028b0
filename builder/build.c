#include "build.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "filesum.h"
#include "fsutil.h"
#include "bootcfg.h"
#include "cloudconfig.h"
#include "buildinfo.h"
#include "cache.h"
#include "compress.h"
#include "hash.h"
#include "imagearchive.h"
#include "kubernetes.h"
#include "rawimage.h"
#include "sysext.h"
#include "schema.h"
#include "template.h"
#include "units.h"
#include "yamldoc.h"

#define TEMPLATE_FILE_LIMIT ((size_t)1 << 20)
#define RENDER_LIMIT ((size_t)4 << 20)
#define PEM_LIMIT ((size_t)64 << 10)
#define APISERVER_PORT 443
#define APISERVER_PORT_TEXT "443"

/* Where a node of `rc` finds binary `name` (kubelet, kubeadm, kubectl):
 * a files: dest, a made sysext's file, or a prebuilt sysext named
 * "kubernetes" (Flatcar's, with them in /usr/bin and its own
 * kubelet.service). NULL when the media do not carry it. With
 * `ret_has_unit`, whether that source brings a kubelet.service too. */
static char *recipe_binary(const struct recipe *rc, const char *name, bool *ret_has_unit) {
	_cleanup_free_ char *suffix = xasprintf("/%s", name);
	char *found = NULL;
	bool unit = false;
	for (size_t i = 0; i < rc->n_files && !found; i++)
		if (endswith(rc->files[i].dest, suffix))
			found = xstrdup(rc->files[i].dest);
	for (size_t i = 0; i < rc->n_sysexts && !found; i++) {
		const struct recipe_sysext *x = &rc->sysexts[i];
		if (x->src && streq(x->name, "kubernetes")) {
			found = xasprintf("/usr/bin/%s", name);
			unit = true;
		}
		for (size_t k = 0; k < x->n_files; k++) {
			if (!found && endswith(x->files[k].dest, suffix))
				found = xstrdup(x->files[k].dest);
			unit |= endswith(x->files[k].dest, "/systemd/system/kubelet.service");
		}
		if (!found)
			unit = false;
	}
	if (ret_has_unit)
		*ret_has_unit = unit;
	return found;
}

/* Does a node of this recipe run a kubelet? Then it runs pods, whose
 * images must all come with the media. */
static bool runs_kubelet(const struct recipe *rc) {
	_cleanup_free_ char *kubelet = recipe_binary(rc, "kubelet", NULL);
	return kubelet != NULL;
}

/* Every images: entry must be an archive `ctr images import` (or `docker
 * load`) takes, whatever the role: a node that runs no kubelet imports
 * them too, and a bad one would only fail there, at boot. Read before
 * anything is written, each problem at its entry. Sets *ret_have to the
 * references they hold. */
static int read_images(const struct recipe *rc, struct strv *ret_have, struct diags *d) {
	struct strv have = STRV_INIT;
	int r = 0;
	for (size_t i = 0; i < rc->n_images; i++) {
		struct strv refs = STRV_INIT;
		int k = image_archive_refs(rc->images[i].src, &rc->images[i].loc, &refs, d);
		if (k < 0)
			r = k;
		for (size_t j = 0; j < refs.n; j++)
			strv_push(&have, refs.v[j]);
		strv_release(&refs);
	}
	if (r < 0) {
		strv_release(&have);
		return r;
	}
	*ret_have = have;
	return 0;
}

/* Every image the cluster's Kubernetes release and CNI run on this role
 * must be in images: (read from the archives themselves): nothing may be
 * pulled at boot, and a missing one would only show as a pod stuck in
 * ErrImageNeverPull on the node. */
static int check_images(const struct build *b, struct diags *d) {
	const struct recipe *rc = b->recipe;
	const struct cluster *c = b->cluster;
	struct k8s_version kv;
	struct strv have = STRV_INIT;
	int r = read_images(rc, &have, d);
	/* A broken archive is the one error: what it lacks would only repeat it. */
	if (r < 0 || !runs_kubelet(rc) || k8s_version_parse(c->kubernetes_version, &kv) < 0) {
		strv_release(&have);
		return r;
	}
	size_t missing = 0;
	size_t n = k8s_images_for_role(&kv, rc->role, c->flannel_version, c->flannel_cni_plugin_version, NULL, 0);
	char **need = xcalloc(n + 1, sizeof(*need));
	k8s_images_for_role(&kv, rc->role, c->flannel_version, c->flannel_cni_plugin_version, need, n);
	for (size_t i = 0; i < n; i++) {
		_cleanup_free_ char *norm = image_ref_normalize(need[i]);
		if (!strv_contains(&have, norm)) {
			diag_error(d, schema_loc(rc->doc, "images"),
				   "images: lacks '%s', which a %s of Kubernetes %s runs (nodes pull nothing: add its archive, "
				   "e.g. from `ctr images export` or `docker save`)",
				   need[i], role_name(rc->role), c->kubernetes_version);
			missing++;
		}
		free(need[i]);
	}
	free(need);
	strv_release(&have);
	return missing ? -ENOENT : 0;
}

/* The template context but `node` and `pki`, and the templates' text:
 * the same for every node, so a cluster of 1,000 is not 1,000 times the
 * work of walking all 1,000 nodes. */
/* Workers making node segments at most (one per core). */
#define MAX_SEGMENT_THREADS 8

struct build_memo {
	struct value *ctx;
	char **templates;       /* parallel to recipe->configs, read on first use */
	size_t *template_lens;
	/* The CA's hash and the bootstrap token's id, of the PKI in `pki_dir`
	 * (b->pki.dir moves to the PKI's stage and back). */
	char *pki_dir, *ca_hash, *token_id;
	/* node_input_key's part that every node shares; "" until made. */
	char inputs_key[SHA256_HEX_LEN + 1];
	/* node_input_key of the role (no node), for build_inputs_sum; "" until made. */
	char role_key[SHA256_HEX_LEN + 1];
	/* Every word of the templates (sorted): a value whose key is not
	 * among them is read by no template. */
	struct strv words;
	/* Each node's input key, once per build (the PKI is made before any
	 * segment), parallel to b->nodes; "" until made. */
	char (*node_keys)[SHA256_HEX_LEN + 1];
	/* The last node asked for, in the PKI at `last_dir`: its context's
	 * `node` and `pki` are in ctx (when ctx_set), its PKI items in items
	 * (when items_set). A node's input key and then its segment ask for
	 * the same node. */
	const struct node *ctx_node, *items_node;
	char *ctx_dir, *items_dir;
	bool ctx_set, items_set;
	struct pki_item *items;
	size_t n_items;
};

static bool same_dir(const char *a, const char *b) {
	return a && b ? streq(a, b) : a == b;
}

int build_load(const char *recipe_path, const struct build_opts *opts, struct build **ret, struct diags *d) {
	struct build *b = xcalloc(1, sizeof(*b));
	b->opts = opts;
	b->memo = xcalloc(1, sizeof(*b->memo));
	b->sysext = sysext_work_new();
	int r = recipe_load(recipe_path, &b->recipe, d);
	if (r < 0)
		goto fail;
	r = cluster_load(b->recipe->cluster_path, &b->cluster, d);
	if (r < 0)
		goto fail;
	const struct cluster *c = b->cluster;
	b->n_nodes = cluster_nodes_of(c, b->recipe->role, NULL, 0);
	if (b->n_nodes == 0) {
		diag_error(d, &b->recipe->cluster_loc, "'%s' lists no %s nodes for role '%s'", c->path,
			   role_name(b->recipe->role), role_name(b->recipe->role));
		r = -EINVAL;
		goto fail;
	}
	b->nodes = xcalloc(b->n_nodes, sizeof(*b->nodes));
	cluster_nodes_of(c, b->recipe->role, b->nodes, b->n_nodes);
	const struct node *master = NULL;
	cluster_nodes_of(c, ROLE_MASTER, &master, 1);
	b->apiserver_url = master ? xasprintf("https://%s:%d", master->ip, APISERVER_PORT) : xstrdup("");
	b->pki = (struct pki_config){
		.dir = b->recipe->pki.dir,
		.key_type = b->recipe->pki.key_type,
		.now = opts->now,
		.cluster = c,
		.apiserver_url = b->apiserver_url,
	};
	r = check_images(b, d);
	if (r < 0)
		goto fail;
	*ret = b;
	return 0;
fail:
	build_free(b);
	return r;
}

void build_free(struct build *b) {
	if (!b)
		return;
	sysext_work_free(b->sysext);
	if (b->memo && b->recipe)
		for (size_t i = 0; b->memo->templates && i < b->recipe->n_configs; i++)
			free(b->memo->templates[i]);
	if (b->memo) {
		value_free(b->memo->ctx);
		free(b->memo->pki_dir);
		free(b->memo->ca_hash);
		free(b->memo->token_id);
		strv_release(&b->memo->words);
		free(b->memo->node_keys);
		free(b->memo->ctx_dir);
		free(b->memo->items_dir);
		pki_items_free(b->memo->items, b->memo->n_items);
		free(b->memo->templates);
		free(b->memo->template_lens);
		free(b->memo);
	}
	recipe_free(b->recipe);
	cluster_free(b->cluster);
	free(b->nodes);
	free(b->apiserver_url);
	free(b);
}

void rendered_free(struct rendered *v, size_t n) {
	for (size_t i = 0; i < n; i++)
		free(v[i].text);
	free(v);
}

/* The master that runs `kubeadm init`: the first one listed. */
static const struct node *first_master(const struct cluster *c) {
	const struct node *first = NULL;
	cluster_nodes_of(c, ROLE_MASTER, &first, 1);
	return first;
}

/* A node of the cluster values, or with n NULL the node a role's default
 * boot entry boots: no name, no address (a worker whose MAC is not listed). */
static struct value *node_value(const struct node *first, const struct node *n, enum node_role role) {
	struct value *v = value_new_map(n ? &n->loc : NULL);
	value_map_set_str(v, "hostname", n ? n->hostname : "");
	value_map_set_str(v, "ip", n ? n->ip : "");
	value_map_set_str(v, "mac", n && n->mac ? n->mac : "");
	value_map_set_str(v, "role", role_name(n ? n->role : role));
	value_map_set_str(v, "first_master", n && n == first ? "yes" : "");
	return v;
}

/* The Kubernetes release: its version, the images it runs, where the
 * control plane answers. */
static void kubernetes_values(const struct build *b, struct value *v) {
	const struct cluster *c = b->cluster;
	struct k8s_version kv;
	value_map_set_str(v, "kubernetes_version", c->kubernetes_version);
	value_map_set_str(v, "apiserver_port", APISERVER_PORT_TEXT);
	const struct node *first = first_master(c);
	_cleanup_free_ char *endpoint = first ? xasprintf("%s:%s", first->ip, APISERVER_PORT_TEXT) : xstrdup("");
	value_map_set_str(v, "controlplane_endpoint", endpoint);
	if (k8s_version_parse(c->kubernetes_version, &kv) < 0)
		return; /* cluster_load reported it */
	_cleanup_free_ char *minor = xasprintf("%d.%d", kv.major, kv.minor);
	value_map_set_str(v, "kubernetes_minor", minor);
	struct value *images = value_new_map(NULL);
	static const char *const names[] = { "apiserver", "controller_manager", "scheduler", "proxy", "coredns", "pause" };
	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		_cleanup_free_ char *ref = k8s_image(&kv, names[i]);
		value_map_set_str(images, names[i], ref);
	}
	_cleanup_free_ char *flannel = xasprintf(K8S_FLANNEL_REGISTRY "/flannel:%s", c->flannel_version);
	_cleanup_free_ char *flannel_cni = xasprintf(K8S_FLANNEL_REGISTRY "/flannel-cni-plugin:%s", c->flannel_cni_plugin_version);
	value_map_set_str(images, "flannel", flannel);
	value_map_set_str(images, "flannel_cni_plugin", flannel_cni);
	value_map_set(v, "images", images);
}

static struct value *cluster_value(const struct build *b) {
	const struct cluster *c = b->cluster;
	const struct node *first = first_master(c);
	struct value *v = value_new_map(NULL);
	value_map_set_str(v, "name", c->name);
	value_map_set_str(v, "domain", c->domain);
	value_map_set_str(v, "pod_ip_range", c->pod_range_text);
	value_map_set_str(v, "service_ip_range", c->service_range_text);
	value_map_set_str(v, "service_ip", c->service_ip);
	value_map_set_str(v, "dns_ip", c->dns_ip);
	value_map_set_str(v, "apiserver_url", b->apiserver_url);
	struct value *keys = value_new_list(NULL);
	for (size_t i = 0; i < c->n_ssh_keys; i++)
		value_list_push(keys, value_new_scalar(c->ssh_keys[i], NULL));
	value_map_set(v, "ssh_keys", keys);

	static const char *const lists[_ROLE_MAX] = { "masters", "etcd", "workers" };
	struct buf endpoints = BUF_INIT, initial = BUF_INIT;
	for (int role = 0; role < _ROLE_MAX; role++) {
		struct value *list = value_new_list(NULL);
		for (size_t i = 0; i < c->n_nodes; i++) {
			const struct node *n = &c->nodes[i];
			if ((int)n->role != role)
				continue;
			value_list_push(list, node_value(first, n, n->role));
			if (role == ROLE_ETCD) {
				/* A static initial cluster: no discovery URL, nothing to reach at boot. */
				buf_printf(&endpoints, "%shttps://%s:2379", endpoints.len ? "," : "", n->ip);
				buf_printf(&initial, "%s%s=https://%s:2380", initial.len ? "," : "", n->hostname, n->ip);
			}
		}
		value_map_set(v, lists[role], list);
	}
	value_map_set_str(v, "etcd_endpoints", endpoints.data ? endpoints.data : "");
	value_map_set_str(v, "etcd_initial_cluster", initial.data ? initial.data : "");
	kubernetes_values(b, v);
	buf_release(&endpoints);
	buf_release(&initial);
	return v;
}

/* What a node receives of the PKI; with node NULL, what the role's
 * default entry carries (an unlisted worker: no node's identity). */
static int node_pki_items(const struct build *b, const struct node *node, const struct pki_item **ret, size_t *ret_n,
			  struct diags *d) {
	struct build_memo *m = b->memo;
	if (!m->items_set || m->items_node != node || !same_dir(m->items_dir, b->pki.dir)) {
		pki_items_free(m->items, m->n_items);
		free(m->items_dir);
		m->items = NULL;
		m->n_items = 0;
		m->items_dir = NULL;
		m->items_set = false;
		int r = node ? pki_items_for_node(&b->pki, node, b->recipe->pki.include_ca_key, &m->items, &m->n_items, d)
			     : pki_items_for_role(&b->pki, b->recipe->role, &m->items, &m->n_items, d);
		if (r < 0)
			return r;
		m->items_set = true;
		m->items_node = node;
		m->items_dir = b->pki.dir ? xstrdup(b->pki.dir) : NULL;
	}
	*ret = m->items;
	*ret_n = m->n_items;
	return 0;
}

bool build_has_role_segment(const struct build *b) {
	return b->recipe->role == ROLE_WORKER;
}

/* pki.<id>.<part> (cert, key, pub, conf) are the paths on the node;
 * pki.<id>.cert_pem is the certificate text; pki.ca.hash (kubeadm's
 * caCertHashes entry) and pki.bootstrap_token.id are public values.
 * Private key material, kubeconfigs and the token's secret never enter the
 * template context, so no rendered config (nor `render`) can expose them. */
static int pki_value(const struct build *b, const struct node *node, struct value **ret, struct diags *d) {
	const struct pki_item *items = NULL;
	size_t n = 0;
	int r = node_pki_items(b, node, &items, &n, d);
	if (r < 0)
		return r;
	struct value *v = value_new_map(NULL);
	for (size_t i = 0; i < n && r == 0; i++) {
		struct value *entry = value_map_get(v, items[i].id);
		if (!entry) {
			entry = value_new_map(NULL);
			value_map_set(v, items[i].id, entry);
		}
		value_map_set_str(entry, items[i].part, items[i].dest);
		if (streq(items[i].part, "cert")) {
			char *pem = NULL;
			size_t len;
			r = read_file(items[i].src, PEM_LIMIT, &pem, &len, d);
			if (r == 0)
				value_map_set_str(entry, "cert_pem", pem);
			free(pem);
		}
	}
	struct build_memo *m = b->memo;
	if (r == 0 && (!m->pki_dir || !streq(m->pki_dir, b->pki.dir))) {
		free(m->pki_dir);
		free(m->ca_hash);
		free(m->token_id);
		m->pki_dir = m->ca_hash = m->token_id = NULL;
		r = pki_ca_cert_hash(b->pki.dir, &m->ca_hash, d);
		if (r == 0)
			r = pki_bootstrap_token_id(b->pki.dir, &m->token_id, d);
		if (r == 0)
			m->pki_dir = xstrdup(b->pki.dir);
	}
	const char *hash = m->ca_hash, *token_id = m->token_id;
	if (r == 0) {
		struct value *ca = value_map_get(v, "ca");
		if (!ca) {
			ca = value_new_map(NULL);
			value_map_set(v, "ca", ca);
		}
		value_map_set_str(ca, "hash", hash);
		struct value *token = value_new_map(NULL);
		value_map_set_str(token, "id", token_id);
		value_map_set(v, "bootstrap_token", token);
	}
	if (r < 0) {
		value_free(v);
		return r;
	}
	*ret = v;
	return 0;
}

static struct value *merged_values(const struct build *b) {
	struct value *v = value_copy(b->cluster->values);
	const struct value *rv = b->recipe->values;
	for (size_t i = 0; i < rv->n; i++)
		value_map_set(v, rv->keys[i], value_copy(rv->items[i]));
	return v;
}

static int apply_sets(struct value *ctx, const struct build_opts *opts, struct diags *d) {
	for (size_t i = 0; i < opts->n_sets; i++) {
		const char *eq = strchr(opts->sets[i], '=');
		if (!eq || eq == opts->sets[i]) {
			diag_error(d, NULL, "invalid --set '%s' (expected KEY=VALUE)", opts->sets[i]);
			return -EINVAL;
		}
		_cleanup_free_ char *key = xstrndup(opts->sets[i], (size_t)(eq - opts->sets[i]));
		if (value_set_path(ctx, key, value_new_scalar(eq + 1, &(struct srcloc){ "--set", 0, 0 })) < 0) {
			diag_error(d, NULL, "cannot --set '%s': a part of the path is not a map", key);
			return -EINVAL;
		}
	}
	return 0;
}

/* payload.kubelet, .kubeadm, .kubectl: where the node finds them, only
 * when its media carry them (a unit must not start a binary the node does
 * not have: Flatcar has none of them). payload.kubelet_unit when the
 * kubelet is a plain file: a sysext brings its own kubelet.service. */
static void payload_binaries(const struct recipe *rc, struct value *payload) {
	static const char *const names[] = { "kubelet", "kubeadm", "kubectl" };
	for (size_t k = 0; k < ARRAY_SIZE(names); k++) {
		bool has_unit = false;
		_cleanup_free_ char *path = recipe_binary(rc, names[k], &has_unit);
		value_map_set_str(payload, names[k], path ? path : "");
		if (k == 0)
			value_map_set_str(payload, "kubelet_unit", path && !has_unit ? "yes" : "");
	}
}

static void context_for(struct build_memo *m, const struct node *node, const char *pki_dir) {
	free(m->ctx_dir);
	m->ctx_dir = pki_dir ? xstrdup(pki_dir) : NULL;
	m->ctx_node = node;
	m->ctx_set = true;
}

/* The context for `node`: the shared part made on first use, then this
 * node's `node` and `pki` put in (and --set applied again). Owned by b. */
static int build_context(const struct build *b, const struct node *node, struct value **ret, struct diags *d) {
	struct build_memo *m = b->memo;
	struct value *ctx = m->ctx;
	if (ctx && m->ctx_set && m->ctx_node == node && same_dir(m->ctx_dir, b->pki.dir)) {
		*ret = ctx;
		return 0;
	}
	m->ctx_set = false;
	if (ctx) {
		value_map_set(ctx, "node", node_value(first_master(b->cluster), node, b->recipe->role));
		struct value *pki = NULL;
		int r = pki_value(b, node, &pki, d);
		if (r < 0)
			return r;
		value_map_set(ctx, "pki", pki);
		r = apply_sets(ctx, b->opts, d);
		if (r == 0)
			context_for(m, node, b->pki.dir);
		if (r == 0)
			*ret = ctx;
		return r;
	}
	ctx = value_new_map(NULL);
	struct value *recipe = value_new_map(NULL);
	value_map_set_str(recipe, "name", b->recipe->name);
	value_map_set_str(recipe, "role", role_name(b->recipe->role));
	value_map_set(ctx, "recipe", recipe);
	value_map_set(ctx, "cluster", cluster_value(b));
	value_map_set(ctx, "node", node_value(first_master(b->cluster), node, b->recipe->role));
	value_map_set(ctx, "values", merged_values(b));
	struct value *payload = value_new_map(NULL);
	value_map_set_str(payload, "dir", "/" PAYLOAD_DIR);
	value_map_set_str(payload, "rootfs", "/" PAYLOAD_ROOTFS);
	payload_binaries(b->recipe, payload);
	value_map_set(ctx, "payload", payload);
	/* install.* only when the recipe installs: templates test `defined install`. */
	if (b->recipe->install.enabled) {
		struct value *inst = value_new_map(NULL);
		value_map_set_str(inst, "device", b->recipe->install.device);
		value_map_set_str(inst, "after", b->recipe->install.after);
		value_map_set_str(inst, "agent", "/" PAYLOAD_DIR "/install");
		value_map_set(ctx, "install", inst);
	}
	struct value *pki = NULL;
	int r = pki_value(b, node, &pki, d);
	if (r == 0) {
		value_map_set(ctx, "pki", pki);
		r = apply_sets(ctx, b->opts, d);
	}
	if (r < 0) {
		value_free(ctx);
		return r;
	}
	m->ctx = ctx;
	context_for(m, node, b->pki.dir);
	*ret = ctx;
	return 0;
}

static bool is_yaml_dest(const char *dest) {
	return endswith(dest, ".yml") || endswith(dest, ".yaml") || endswith(dest, ".kubeconfig");
}

/* A rendered cloud-config (or any .yml config) must be YAML, and a
 * cloud-config must say so in its first line, or coreos-cloudinit ignores it.
 * A cloud-config must also fit coreos-cloudinit's schema, as it ignores keys
 * it does not know: those findings are shown at the template's lines (`map`). */
static int check_rendered(const struct recipe_config *cfg, const char *text, size_t len, const struct template_map *map,
			  struct diags *d) {
	struct srcloc at = { cfg->template, 0, 0 };
	bool cloud_config = streq(cfg->dest, RECIPE_CLOUD_CONFIG_DEST) || endswith(cfg->dest, "cloud-config.yml");
	if (cloud_config && !startswith(text, "#cloud-config\n")) {
		diag_error(d, &at, "rendered cloud-config must start with a '#cloud-config' line");
		return -EINVAL;
	}
	cloud_config = cloud_config || cloudconfig_is_header(text, len);
	if (!cloud_config && !is_yaml_dest(cfg->dest))
		return 0;
	struct diags yd = DIAGS_INIT;
	struct value *doc = NULL;
	/* A cloud-config is one document; Kubernetes manifests may hold several. */
	int r = cloud_config ? yaml_parse("rendered", text, len, &doc, &yd) : yaml_check_stream("rendered", text, len, &yd);
	if (r == 0 && cloud_config) {
		struct diags cd = DIAGS_INIT;
		r = cloudconfig_check(doc, &cd);
		template_map_diags(map, &cd, d);
		diags_release(&cd);
	}
	value_free(doc);
	if (r < 0 && yd.n) {
		/* Show the rendered line: the mistake is often in a value, not the template. */
		int line = yd.v[0].line;
		const char *p = text;
		for (int i = 1; i < line && p; i++) {
			p = strchr(p, '\n');
			if (p)
				p++;
		}
		int width = p ? (int)(strchrnul(p, '\n') - p) : 0;
		diag_error(d, &at, "rendered config for '%s' is not valid YAML: rendered line %d:%d: %s", cfg->dest, line,
			   yd.v[0].col, yd.v[0].msg);
		diag_note(d, &at, "rendered line %d is: %.*s", line, width > 200 ? 200 : width, p ? p : "");
	}
	diags_release(&yd);
	return r;
}

/* A flag the cluster's Kubernetes release no longer accepts stops that
 * component at start: an error at the template's place. */
static int check_removed_flags(const struct build *b, const char *text, const struct template_map *map, struct diags *d) {
	struct k8s_version kv;
	size_t off = 0;
	if (k8s_version_parse(b->cluster->kubernetes_version, &kv) < 0)
		return 0;
	const struct k8s_removed_flag *f = k8s_find_removed_flag(&kv, text, &off);
	if (!f)
		return 0;
	int line = 1, col = 1;
	for (size_t i = 0; i < off; i++, col++)
		if (text[i] == '\n')
			line++, col = 0;
	struct srcloc at = template_map_loc(map, line, col);
	diag_error(d, &at, "'%s' was removed from %s in Kubernetes 1.%d (the cluster runs %s): %s", f->flag, f->component,
		   f->removed_in, b->cluster->kubernetes_version, f->instead);
	return -EINVAL;
}

/* The text of the recipe's config `i`, read once per build. */
static int template_text(const struct build *b, size_t i, struct diags *d) {
	const struct recipe *rc = b->recipe;
	struct build_memo *m = b->memo;
	if (!m->templates) {
		m->templates = xcalloc(rc->n_configs + 1, sizeof(*m->templates));
		m->template_lens = xcalloc(rc->n_configs + 1, sizeof(*m->template_lens));
	}
	if (m->templates[i])
		return 0;
	return read_file(rc->configs[i].template, TEMPLATE_FILE_LIMIT, &m->templates[i], &m->template_lens[i], d);
}

int build_render(const struct build *b, const struct node *node, struct rendered **ret, size_t *ret_n, struct diags *d) {
	struct value *ctx = NULL;
	int r = build_context(b, node, &ctx, d);
	if (r < 0)
		return r;
	const struct recipe *rc = b->recipe;
	struct build_memo *m = b->memo;
	struct rendered *out = xcalloc(rc->n_configs + 1, sizeof(*out));
	int result = 0;
	for (size_t i = 0; i < rc->n_configs; i++) {
		const struct recipe_config *cfg = &rc->configs[i];
		r = template_text(b, i, d);
		if (r < 0) {
			result = r;
			continue;
		}
		struct buf text = { .limit = RENDER_LIMIT };
		struct template_map *map = NULL;
		r = template_render_map(cfg->template, m->templates[i], m->template_lens[i], ctx, &text, &map, d);
		if (r == 0)
			r = check_rendered(cfg, text.data ? text.data : "", text.len, map, d);
		if (r == 0)
			r = check_removed_flags(b, text.data ? text.data : "", map, d);
		template_map_free(map);
		out[i].config = cfg;
		out[i].text = buf_steal(&text, &out[i].len);
		if (r < 0)
			result = r;
	}
	if (result < 0) {
		rendered_free(out, rc->n_configs);
		return result;
	}
	*ret = out;
	*ret_n = rc->n_configs;
	return 0;
}

/* What the builder puts in every payload from out/agent/ (`make agent`):
 * where `env` says; else, for an installed tool (PREFIX/bin/dlws-mkimage),
 * in PREFIX/lib/dlws-mkimage/ (`make install`), found from this program's
 * own path so that it works from any directory; else in the checkout it was
 * built in (out/agent/ beside the binary, or one up from build/). */
static char *agent_file(const char *name, const char *env) {
	const char *set = getenv(env);
	if (set && *set)
		return xstrdup(set);
	_cleanup_free_ char *rel = xasprintf("out/agent/%s", name);
	_cleanup_free_ char *up = xasprintf("../%s", rel);
	_cleanup_free_ char *installed = xasprintf("../lib/dlws-mkimage/%s", name);
	char exe[4096];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n < 0)
		return xstrdup(rel);
	exe[n] = '\0';
	char *slash = strrchr(exe, '/');
	if (slash)
		*slash = '\0';
	const char *const candidates[] = { installed, rel, up };
	for (size_t i = 0; i < ARRAY_SIZE(candidates); i++) {
		char *p = path_join(exe, candidates[i]);
		if (path_exists(p))
			return p;
		free(p);
	}
	return path_join(exe, rel);
}

/* The live system's payload step (dlws-payload.service on Flatcar, /init on
 * the default base), in every payload. */
static int stage_payload_script(struct stage *s, struct diags *d) {
	_cleanup_free_ char *script = agent_file("dlws-payload", "DLWS_PAYLOAD_SCRIPT");
	if (!path_exists(script)) {
		diag_error(d, NULL, "cannot find the payload script '%s' (run 'make', or set DLWS_PAYLOAD_SCRIPT)", script);
		return -ENOENT;
	}
	return stage_add_file(s, PAYLOAD_SCRIPT, script, 0755, NULL, NULL, d);
}

/* What an unattended install needs in the live system: the agent, the OS
 * image (or where to fetch it) and install.conf (see layout.h and agent/). */
static int stage_install(const struct build *b, const char *image_url, struct stage *s, struct diags *d) {
	const struct recipe *rc = b->recipe;
	_cleanup_free_ char *agent = agent_file("dlws-install", "DLWS_AGENT");
	if (!path_exists(agent)) {
		diag_error(d, &rc->install_loc, "cannot find the install agent '%s' (run 'make', or set DLWS_AGENT)", agent);
		return -ENOENT;
	}
	int r = stage_add_file(s, PAYLOAD_DIR "/install", agent, 0755, NULL, NULL, d);
	uint64_t size = 0, stored = 0;
	char sha[SHA256_HEX_LEN + 1];
	if (r == 0)
		r = rawimage_size(rc->base.image, &size, d);
	const char *base = strrchr(rc->base.image, '/') ? strrchr(rc->base.image, '/') + 1 : rc->base.image;
	_cleanup_free_ char *image = image_url ? xstrdup(image_url) : xasprintf("/" PAYLOAD_DIR "/os/%s", base);
	/* The agent checks the image's sum as it streams it, from the medium or
	 * from the boot server. */
	if (r == 0 && image_url)
		r = filesum(rc->base.image, sha, &stored, d);
	else if (r == 0) {
		r = stage_add_file(s, image + 1, rc->base.image, 0644, NULL, NULL, d);
		if (r == 0)
			memcpy(sha, stage_find(s, image + 1)->sha256, sizeof(sha));
	}
	if (r < 0)
		return r;
	_cleanup_free_ char *conf = xasprintf("DLWS_INSTALL_DEVICE=%s\nDLWS_INSTALL_WIPE=%d\nDLWS_INSTALL_AFTER=%s\n"
					      "DLWS_INSTALL_IMAGE=%s\nDLWS_INSTALL_IMAGE_SIZE=%llu\nDLWS_INSTALL_IMAGE_SHA256=%s\n",
					      rc->install.device, rc->install.wipe ? 1 : 0, rc->install.after, image,
					      (unsigned long long)size, sha);
	return stage_add_data(s, PAYLOAD_DIR "/install.conf", conf, strlen(conf), 0644, d);
}

static int check_pin(const struct recipe_file *f, struct diags *d) {
	char sum[SHA256_HEX_LEN + 1];
	uint64_t size;
	if (access(f->src, R_OK) < 0) {
		int r = -errno;
		diag_error(d, &f->loc, "cannot open '%s': %s", f->src, strerror(errno));
		return r;
	}
	int r = filesum(f->src, sum, &size, d);
	if (r == 0 && f->sha256[0] && !streq(sum, f->sha256)) {
		diag_error(d, &f->loc, "sha256 mismatch for '%s': expected %s, got %s", f->src, f->sha256, sum);
		r = -EBADMSG;
	}
	return r;
}

int build_check_pins(const struct build *b, struct diags *d) {
	const struct recipe *rc = b->recipe;
	int r = 0;
	for (size_t i = 0; i < rc->n_files; i++) {
		int k = check_pin(&rc->files[i], d);
		if (k < 0 && r == 0)
			r = k;
	}
	for (size_t i = 0; i < rc->n_images; i++) {
		int k = check_pin(&rc->images[i], d);
		if (k < 0 && r == 0)
			r = k;
	}
	return r;
}

int build_stage_shared(const struct build *b, const struct segment_opts *o, struct stage *ret, struct diags *d) {
	const struct recipe *rc = b->recipe;
	struct stage s = STAGE_INIT;
	int r = 0;
	/* Overlays first, files: last, so a pinned file always wins. */
	for (size_t i = 0; i < rc->n_overlays && r == 0; i++)
		r = stage_add_tree(&s, PAYLOAD_ROOTFS, rc->overlays[i].dir, &rc->overlays[i].loc, d);
	for (size_t i = 0; i < rc->n_files; i++) {
		const struct recipe_file *f = &rc->files[i];
		_cleanup_free_ char *path = stage_payload_path(f->dest);
		int k = stage_add_file(&s, path, f->src, f->mode, f->sha256, &f->loc, d);
		if (k < 0 && r == 0)
			r = k;
	}
	/* systemd-sysext images (and their /etc/extensions links) in the rootfs. */
	if (r == 0)
		r = sysext_stage(b->sysext, rc, b->opts->epoch, &s, d);
	if (r == 0)
		r = stage_payload_script(&s, d);
	if (r == 0 && rc->install.enabled && !o->installed)
		r = stage_install(b, o->image_url, &s, d);
	for (size_t i = 0; i < rc->n_images && r == 0; i++) {
		const struct recipe_file *f = &rc->images[i];
		const char *base = strrchr(f->src, '/') ? strrchr(f->src, '/') + 1 : f->src;
		_cleanup_free_ char *path = xasprintf(PAYLOAD_DIR "/images/%s", base);
		r = stage_add_file(&s, path, f->src, 0644, f->sha256, &f->loc, d);
	}
	if (r == 0 && o->large_threshold)
		stage_move_large(&s, o->large_threshold, d);
	if (r == 0)
		r = stage_add_manifest(&s, "shared", d);
	if (r < 0) {
		stage_release(&s);
		return r;
	}
	*ret = s;
	return 0;
}

int build_stage_node(const struct build *b, const struct node *node, struct stage *ret, struct diags *d) {
	struct rendered *configs = NULL;
	size_t n_configs = 0;
	int r = build_render(b, node, &configs, &n_configs, d);
	if (r < 0)
		return r;
	struct stage s = STAGE_INIT;
	for (size_t i = 0; i < n_configs; i++) {
		_cleanup_free_ char *path = stage_payload_path(configs[i].config->dest);
		stage_add_data(&s, path, configs[i].text, configs[i].len, configs[i].config->mode, d);
	}
	rendered_free(configs, n_configs);
	/* The units that put this payload in place, through Flatcar's
	 * documented route for live boots (flatcar.first_boot=1 on the
	 * node's boot entries) and the OEM partition for installs. */
	_cleanup_free_ char *ign = units_ignition_config(b->recipe);
	stage_add_data(&s, PAYLOAD_IGNITION, ign, strlen(ign), 0600, d);

	const struct pki_item *items = NULL;
	size_t n_items = 0;
	r = node_pki_items(b, node, &items, &n_items, d);
	for (size_t i = 0; i < n_items && r == 0; i++) {
		_cleanup_free_ char *path = stage_payload_path(items[i].dest);
		r = stage_add_file(&s, path, items[i].src, items[i].mode, NULL, NULL, d);
	}

	if (r == 0) {
		/* A role's default entry has no name or address: the node finds its own. */
		_cleanup_free_ char *env = node
			? xasprintf("DLWS_HOSTNAME=%s\nDLWS_IP=%s\nDLWS_ROLE=%s\nDLWS_CLUSTER=%s\nDLWS_RECIPE=%s\n", node->hostname,
				    node->ip, role_name(node->role), b->cluster->name, b->recipe->name)
			: xasprintf("DLWS_ROLE=%s\nDLWS_CLUSTER=%s\nDLWS_RECIPE=%s\n", role_name(b->recipe->role),
				    b->cluster->name, b->recipe->name);
		stage_add_data(&s, PAYLOAD_DIR "/node.env", env, strlen(env), 0644, d);
		r = stage_add_manifest(&s, node ? "node" : "role", d);
	}
	if (r < 0) {
		stage_release(&s);
		return r;
	}
	*ret = s;
	return 0;
}

/* Everything a node's segment is made of, short of making it: the
 * template context (what all nodes share hashed once, then the node's
 * `node` and `pki`), the templates, the Ignition config, the node's PKI
 * files by sum, the compression and mtime. A rebuild finds a node whose
 * key it has seen by the key (cache_read), without rendering or staging:
 * a cluster of 1,000 rebuilt after one node changed renders one. */
static bool word_char(char c) {
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

/* Adds the words of `text` ([A-Za-z0-9_-]+) to `words`. */
static void add_words(const char *text, size_t len, struct strv *words) {
	for (size_t i = 0; i < len;) {
		if (!word_char(text[i])) {
			i++;
			continue;
		}
		size_t j = i;
		while (j < len && word_char(text[j]))
			j++;
		strv_push_take(words, xstrndup(text + i, j - i));
		i = j;
	}
}

/* A template reads a value only by naming its key in a path (filters
 * take scalars and lists of scalars, never a map whole), so a key no
 * template names changes no rendered byte. */
static bool named_in_templates(const char *key, void *ctx) {
	return strv_sorted_contains(ctx, key);
}

static int node_input_key(const struct build *b, const struct node *node, char key[SHA256_HEX_LEN + 1],
			  struct diags *d) {
	struct value *ctx = NULL;
	int r = build_context(b, node, &ctx, d);
	if (r < 0)
		return r;
	const struct recipe *rc = b->recipe;
	struct build_memo *m = b->memo;
	if (!m->inputs_key[0]) {
		struct sha256 *h = sha256_new();
		_cleanup_free_ char *how = compress_describe(&rc->compression);
		/* and what the segment takes from outside the context: the
		 * release whose removed flags are refused (check_removed_flags) */
		_cleanup_free_ char *salt = xasprintf("dlws-mkimage %s node inputs\n%s\nmtime %lld\nkubernetes %s\n",
						      DLWS_VERSION, how, (long long)b->opts->epoch,
						      b->cluster->kubernetes_version ? b->cluster->kubernetes_version : "");
		sha256_update(h, salt, strlen(salt));
		for (size_t i = 0; i < rc->n_configs && r == 0; i++) {
			r = template_text(b, i, d);
			if (r < 0)
				break;
			add_words(m->templates[i], m->template_lens[i], &m->words);
			_cleanup_free_ char *cfg = xasprintf("config %s %s %o %zu\n", rc->configs[i].template,
							     rc->configs[i].dest, rc->configs[i].mode, m->template_lens[i]);
			sha256_update(h, cfg, strlen(cfg));
			sha256_update(h, m->templates[i], m->template_lens[i]);
		}
		_cleanup_free_ char *ign = units_ignition_config(rc);
		sha256_update(h, ign, strlen(ign) + 1);
		if (r < 0) {
			sha256_free(h);
			return r;
		}
		strv_sort(&m->words);
		for (size_t i = 0; i < ctx->n; i++)
			if (!streq(ctx->keys[i], "node") && !streq(ctx->keys[i], "pki")) {
				sha256_update(h, ctx->keys[i], strlen(ctx->keys[i]) + 1);
				value_hash(ctx->items[i], named_in_templates, &m->words, h);
			}
		sha256_final_hex(h, m->inputs_key);
	}
	struct sha256 *h = sha256_new();
	sha256_update(h, m->inputs_key, SHA256_HEX_LEN);
	/* node.env's values, whatever the templates name */
	_cleanup_free_ char *env = node ? xasprintf("env %s %s %s %s %s\n", node->hostname, node->ip, role_name(node->role),
						    b->cluster->name, rc->name)
					: xasprintf("env - - %s %s %s\n", role_name(rc->role), b->cluster->name, rc->name);
	sha256_update(h, env, strlen(env));
	value_hash(value_map_get(ctx, "node"), named_in_templates, &m->words, h);
	value_hash(value_map_get(ctx, "pki"), named_in_templates, &m->words, h);
	const struct pki_item *items = NULL;
	size_t n_items = 0;
	r = node_pki_items(b, node, &items, &n_items, d);
	for (size_t i = 0; i < n_items && r == 0; i++) {
		char sum[SHA256_HEX_LEN + 1];
		r = filesum(items[i].src, sum, NULL, d);
		_cleanup_free_ char *line = xasprintf("pki %s %o %s\n", items[i].dest, items[i].mode, sum);
		sha256_update(h, line, strlen(line));
	}
	if (r < 0) {
		sha256_free(h);
		return r;
	}
	sha256_final_hex(h, key);
	return 0;
}

/* A node's segment made before from the same inputs: 1 and `path` holds
 * it, its size and manifest sum returned; 0 when there is none. */
static int node_segment_cached(const struct build *b, const char *in_key, const char *path, uint64_t *ret_size,
			       char manifest[SHA256_HEX_LEN + 1], struct diags *d) {
	char *note = NULL;
	if (cache_read(b->opts->cache, in_key, &note, d) != 1)
		return 0;
	char seg[SHA256_HEX_LEN + 2], man[SHA256_HEX_LEN + 2];
	bool ok = sscanf(note, "%65s %65s", seg, man) == 2 && strlen(seg) == SHA256_HEX_LEN &&
		  strlen(man) == SHA256_HEX_LEN;
	free(note);
	if (!ok)
		return 0;
	int r = cache_get(b->opts->cache, seg, path, 0644, d);
	struct stat st;
	if (r == 1 && stat(path, &st) == 0) {
		*ret_size = (uint64_t)st.st_size;
		memcpy(manifest, man, SHA256_HEX_LEN + 1);
	}
	return r;
}

/* A segment's manifest sum, for segment_sizes.payload_sha256. */
static void manifest_sum(const struct stage *s, const char *segment, struct buf *sums) {
	_cleanup_free_ char *path = xasprintf(PAYLOAD_MANIFESTS "/%s", segment);
	const struct stage_entry *e = stage_find(s, path);
	buf_printf(sums, "%s %s\n", e ? e->sha256 : "-", segment);
}

char *build_segment_file(const struct build *b, const char *name) {
	return xasprintf("%s%s", name, compress_suffix(b->recipe->compression.method));
}

/* One segment: from the cache when it holds one made of the same entries,
 * else written and added to it. */
static int segment_write(const struct build *b, const struct stage *s, const char *path, uint64_t *ret_size,
			 char key[SHA256_HEX_LEN + 1], struct diags *d) {
	struct cache *c = b->opts->cache;
	key[0] = '\0';
	if (c && c->dir) {
		_cleanup_free_ char *how = compress_describe(&b->recipe->compression);
		_cleanup_free_ char *salt = xasprintf("dlws-mkimage %s segment newc %s mtime %lld", DLWS_VERSION, how,
						      (long long)b->opts->epoch);
		stage_key(s, salt, key);
		int r = cache_get(c, key, path, 0644, d);
		if (r < 0)
			return r;
		struct stat st;
		if (r == 1 && stat(path, &st) == 0) {
			*ret_size = (uint64_t)st.st_size;
			return 0;
		}
	}
	int r = initrd_write(s, path, &b->recipe->compression, b->opts->epoch, b->opts->progress, ret_size, d);
	if (r == 0 && key[0])
		cache_put(c, key, path, d);
	return r;
}

/* ---- node segments, on every core -------------------------------------- */

/* One node's segment: its size and manifest sum, and what it said. */
struct node_work {
	uint64_t size;
	char manifest[SHA256_HEX_LEN + 1];
	struct diags d;
	int r;
};

/* One node's segment: from the cache when its inputs were seen, else
 * made (and its inputs noted). `b` is a worker's view (worker_init). */
static int node_segment(const struct build *b, size_t i, const char *node_dir, const char *node_prefix,
			struct node_work *w) {
	struct diags *d = &w->d;
	_cleanup_free_ char *name = xasprintf("%s/%s%s%s", node_dir, node_prefix, b->nodes[i]->hostname,
					      compress_suffix(b->recipe->compression.method));
	bool cached = b->opts->cache && b->opts->cache->dir;
	char in_key[SHA256_HEX_LEN + 1] = "", key[SHA256_HEX_LEN + 1];
	int r = 0;
	/* wanted without a cache too: the build's inputs_sha256 */
	if (!b->memo->node_keys[i][0])
		r = node_input_key(b, b->nodes[i], b->memo->node_keys[i], d);
	if (r < 0)
		return r;
	if (cached) {
		memcpy(in_key, b->memo->node_keys[i], sizeof(in_key));
		int k = node_segment_cached(b, in_key, name, &w->size, w->manifest, d);
		if (k != 0)
			return k < 0 ? k : 0;
	}
	struct stage s = STAGE_INIT;
	r = build_stage_node(b, b->nodes[i], &s, d);
	if (r < 0)
		return r;
	const struct stage_entry *me = stage_find(&s, PAYLOAD_MANIFESTS "/node");
	memcpy(w->manifest, me ? me->sha256 : "-", me ? SHA256_HEX_LEN + 1 : 2);
	r = segment_write(b, &s, name, &w->size, key, d);
	if (r == 0 && in_key[0] && key[0] && me) {
		_cleanup_free_ char *note = xasprintf("%s %s\n", key, w->manifest);
		cache_write(b->opts->cache, in_key, note, d);
	}
	stage_release(&s);
	return r;
}

/* The nodes, shared by the workers: each takes the next one. */
struct node_pool {
	const char *node_dir, *node_prefix;
	struct node_work *work;
	size_t n, next;
	size_t failed;          /* the first node that failed; n: none */
	pthread_mutex_t lock;
};

/* A worker's own view of the build: the memo's shared parts (templates,
 * the shared input key, the CA's hash, node_keys: made by the first node,
 * read-only after) borrowed, its own context and PKI items; its own
 * cache counts and options (no progress line). */
struct worker {
	struct node_pool *pool;
	struct build view;
	struct build_opts opts;
	struct build_memo memo;
	struct cache cache;
	pthread_t thread;
	bool started;
};

static void worker_init(struct worker *w, struct node_pool *pool, const struct build *b) {
	*w = (struct worker){ .pool = pool, .view = *b, .opts = *b->opts, .memo = *b->memo };
	w->memo.ctx = b->memo->ctx ? value_copy(b->memo->ctx) : NULL;
	w->memo.ctx_set = w->memo.items_set = false;
	w->memo.ctx_dir = w->memo.items_dir = NULL;
	w->memo.items = NULL;
	w->memo.n_items = 0;
	if (b->opts->cache) {
		w->cache = *b->opts->cache;
		w->cache.hits = w->cache.misses = w->cache.damaged = 0;
		w->cache.added = 0;
		w->cache.made_paths = (struct strv)STRV_INIT;
		w->cache.made_keys = (struct strv)STRV_INIT;
		w->opts.cache = &w->cache;
	}
	w->opts.progress = NULL;
	w->view.opts = &w->opts;
	w->view.memo = &w->memo;
}

/* Its counts to the build's cache; what it made its own freed. */
static void worker_end(struct worker *w, const struct build *b) {
	if (b->opts->cache) {
		b->opts->cache->hits += w->cache.hits;
		b->opts->cache->misses += w->cache.misses;
		b->opts->cache->damaged += w->cache.damaged;
		b->opts->cache->added += w->cache.added;
	}
	value_free(w->memo.ctx);
	if (w->memo.pki_dir != b->memo->pki_dir) {     /* made by the worker: none was shared */
		free(w->memo.pki_dir);
		free(w->memo.ca_hash);
		free(w->memo.token_id);
	}
	free(w->memo.ctx_dir);
	free(w->memo.items_dir);
	pki_items_free(w->memo.items, w->memo.n_items);
}

static void *worker_run(void *arg) {
	struct worker *w = arg;
	struct node_pool *p = w->pool;
	for (;;) {
		pthread_mutex_lock(&p->lock);
		size_t i = p->next++;
		bool stop = i >= p->n || p->failed < i;
		pthread_mutex_unlock(&p->lock);
		if (stop)
			break;
		struct node_work *nw = &p->work[i];
		nw->r = node_segment(&w->view, i, p->node_dir, p->node_prefix, nw);
		if (nw->r < 0) {
			pthread_mutex_lock(&p->lock);
			if (i < p->failed)
				p->failed = i;
			pthread_mutex_unlock(&p->lock);
		}
	}
	return NULL;
}

static void *worker_thread(void *arg) {
	worker_run(arg);
	compress_thread_end();
	return NULL;
}

/* Every node's segment, on every core: the first node on this thread
 * (it makes what all share: the context, the templates read, the shared
 * input key), then the rest on a worker per core. What the nodes said is
 * told in their order, up to the first that failed, as one thread would
 * have. */
static int node_segments(const struct build *b, const char *node_dir, const char *node_prefix, uint64_t *sizes,
			 struct buf *sums, struct diags *d) {
	size_t n = b->n_nodes;
	if (!b->memo->node_keys)
		b->memo->node_keys = xcalloc(n, sizeof(*b->memo->node_keys));
	struct node_pool p = { .node_dir = node_dir, .node_prefix = node_prefix, .work = xcalloc(n, sizeof(*p.work)),
			       .n = n, .next = 1, .failed = n };
	pthread_mutex_init(&p.lock, NULL);
	p.work[0].r = node_segment(b, 0, node_dir, node_prefix, &p.work[0]);
	if (p.work[0].r < 0)
		p.failed = 0;
	if (p.failed == n && n > 1) {
		unsigned workers = n > 2 ? cores_available(MAX_SEGMENT_THREADS) : 1;
		struct worker *w = xcalloc(workers, sizeof(*w));
		for (unsigned t = 0; t < workers; t++)
			worker_init(&w[t], &p, b);
		/* this thread is the last worker */
		for (unsigned t = 0; t + 1 < workers; t++)
			w[t].started = pthread_create(&w[t].thread, NULL, worker_thread, &w[t]) == 0;
		worker_run(&w[workers - 1]);
		for (unsigned t = 0; t < workers; t++) {
			if (w[t].started)
				pthread_join(w[t].thread, NULL);
			worker_end(&w[t], b);
		}
		free(w);
	}
	int r = 0;
	for (size_t i = 0; i < n; i++) {
		if (i <= p.failed)
			diags_append(d, &p.work[i].d);
		else
			diags_release(&p.work[i].d);
		if (i == p.failed)
			r = p.work[i].r;
		if (i < p.failed) {
			sizes[i] = p.work[i].size;
			buf_printf(sums, "%s node\n", p.work[i].manifest);
		}
	}
	pthread_mutex_destroy(&p.lock);
	free(p.work);
	return r;
}

/* One input file's line: its sum, or "-" for none (an optional base
 * file the recipe leaves out). */
static int input_line(struct sha256 *h, const char *what, const char *path, struct diags *d) {
	char sum[SHA256_HEX_LEN + 1] = "-";
	if (path) {
		int r = filesum(path, sum, NULL, d);
		if (r < 0)
			return r;
	}
	_cleanup_free_ char *line = xasprintf("%s %s\n", what, sum);
	sha256_update(h, line, strlen(line));
	return 0;
}

int build_inputs_sum(const struct build *b, const struct stage *shared, size_t first, size_t n,
		     char ret[SHA256_HEX_LEN + 1], struct diags *d) {
	const struct recipe *rc = b->recipe;
	struct sha256 *h = sha256_new();
	_cleanup_free_ char *how = compress_describe(&rc->compression);
	_cleanup_free_ char *salt = xasprintf("dlws-mkimage %s inputs\n%s\nmtime %lld\n", DLWS_VERSION, how,
					      (long long)b->opts->epoch);
	sha256_update(h, salt, strlen(salt));
	int r = input_line(h, "recipe", rc->path, d);
	if (r == 0)
		r = input_line(h, "cluster", rc->cluster_path, d);
	if (r == 0)
		r = input_line(h, "kernel", rc->base.kernel, d);
	if (r == 0)
		r = input_line(h, "initrd", rc->base.initrd, d);
	if (r == 0)
		r = input_line(h, "image", rc->base.image, d);
	/* The files the payload takes from outside as they are (overlays,
	 * files, images, the agent), by the path the initrd would give them
	 * (a medium keeps large ones elsewhere) and in that order; the OS
	 * image is above, whether an output carries it or serves it. What
	 * the build writes itself is made from the recipe, and from the
	 * templates and values the keys below hold. */
	struct strv files = STRV_INIT;
	for (size_t i = 0; i < shared->n && r == 0; i++) {
		const struct stage_entry *e = &shared->v[i];
		if (e->type != STAGE_FILE || !e->src || (rc->base.image && streq(e->src, rc->base.image)))
			continue;
		const char *path = e->path;
		_cleanup_free_ char *inner = NULL;
		if (e->on_medium && strncmp(path, PAYLOAD_LARGE "/", strlen(PAYLOAD_LARGE "/")) == 0)
			path = inner = path_join(PAYLOAD_DIR, path + strlen(PAYLOAD_LARGE "/"));
		strv_push_take(&files, xasprintf("file %s %o %s\n", path, e->mode, e->sha256));
	}
	strv_sort(&files);
	for (size_t i = 0; i < files.n; i++)
		sha256_update(h, files.v[i], strlen(files.v[i]));
	strv_release(&files);
	/* once per build: each output asks (and a context made for no node
	 * is one the next node's must be made again from) */
	if (r == 0 && build_has_role_segment(b) && !b->memo->role_key[0])
		r = node_input_key(b, NULL, b->memo->role_key, d);
	if (r == 0 && build_has_role_segment(b)) {
		sha256_update(h, "role ", 5);
		sha256_update(h, b->memo->role_key, SHA256_HEX_LEN);
	}
	if (r == 0 && n && !b->memo->node_keys)
		b->memo->node_keys = xcalloc(b->n_nodes, sizeof(*b->memo->node_keys));
	for (size_t i = first; i < first + n && r == 0; i++) {
		if (!b->memo->node_keys[i][0])
			r = node_input_key(b, b->nodes[i], b->memo->node_keys[i], d);
		if (r == 0) {
			_cleanup_free_ char *line = xasprintf("node %s %s\n", b->nodes[i]->hostname, b->memo->node_keys[i]);
			sha256_update(h, line, strlen(line));
		}
	}
	if (r < 0) {
		sha256_free(h);
		return r;
	}
	sha256_final_hex(h, ret);
	return 0;
}

int build_write_segments(const struct build *b, const char *shared_path, const char *node_dir, const char *node_prefix,
			 const struct segment_opts *o, struct stage *ret_shared, struct segment_sizes *ret, struct diags *d) {
	struct stat st;
	*ret = (struct segment_sizes){ .node = xcalloc(b->n_nodes + 1, sizeof(uint64_t)) };
	if (stat(b->recipe->base.initrd, &st) == 0)
		ret->base = (uint64_t)st.st_size;
	struct stage s = STAGE_INIT;
	struct buf sums = BUF_INIT;
	char key[SHA256_HEX_LEN + 1];
	int r = build_stage_shared(b, o, &s, d);
	if (r == 0)
		manifest_sum(&s, "shared", &sums);
	if (r == 0)
		r = segment_write(b, &s, shared_path, &ret->shared, key, d);
	if (r == 0 && build_has_role_segment(b)) {
		_cleanup_free_ char *dir = xstrndup(shared_path, (size_t)(strrchr(shared_path, '/') - shared_path));
		_cleanup_free_ char *role_file = build_segment_file(b, BUILD_ROLE_SEGMENT);
		_cleanup_free_ char *role_path = path_join(dir, role_file);
		struct stage rs = STAGE_INIT;
		r = build_stage_node(b, NULL, &rs, d);
		if (r == 0)
			manifest_sum(&rs, "role", &sums);
		if (r == 0)
			r = segment_write(b, &rs, role_path, &ret->role, key, d);
		stage_release(&rs);
	}
	if (r == 0 && b->n_nodes)
		r = node_segments(b, node_dir, node_prefix, ret->node, &sums, d);
	if (r == 0)
		r = build_inputs_sum(b, &s, 0, b->n_nodes, ret->inputs_sha256, d);
	if (r == 0 && ret_shared)
		*ret_shared = s;
	else
		stage_release(&s);
	sha256_hex(sums.data ? sums.data : "", sums.len, ret->payload_sha256);
	buf_release(&sums);
	return r;
}

void segment_sizes_release(struct segment_sizes *s) {
	free(s->node);
	s->node = NULL;
}

int build_check_initrd_size(const struct build *b, const struct segment_sizes *s, uint64_t max, const struct srcloc *at,
			    const char *what, struct diags *d) {
	int r = 0;
	for (size_t i = 0; max && i < b->n_nodes; i++) {
		uint64_t total = s->base + s->shared + s->node[i];
		if (total <= max)
			continue;
		diag_error(d, at, "initrds for '%s' take %llu bytes (base %llu + shared %llu + node %llu), more than %s %llu",
			   b->nodes[i]->hostname, (unsigned long long)total, (unsigned long long)s->base,
			   (unsigned long long)s->shared, (unsigned long long)s->node[i], what, (unsigned long long)max);
		r = -EFBIG;
	}
	return r;
}

int build_write_initrd_output(const struct build *b, struct pending *out, struct diags *d) {
	const struct recipe *rc = b->recipe;
	_cleanup_free_ char *tmp = xasprintf("%s.tmp", rc->outputs.initrd);
	rm_rf(tmp);
	int r = mkdir_p(tmp, 0755);
	if (r < 0) {
		diag_error(d, NULL, "cannot create '%s': %s", tmp, strerror(-r));
		return r;
	}
	_cleanup_free_ char *shared_file = build_segment_file(b, "shared");
	_cleanup_free_ char *shared = path_join(tmp, shared_file);
	struct segment_sizes sizes;
	r = build_write_segments(b, shared, tmp, "node-", &(struct segment_opts){ 0 }, NULL, &sizes, d);
	if (r == 0)
		r = build_check_initrd_size(b, &sizes, rc->outputs.max_initrd, &rc->outputs.initrd_loc, "max_size", d);
	struct buildinfo info;
	buildinfo_init(&info, &b, 1);
	buildinfo_add_build(&info, b, rc->outputs.initrd, sizes.payload_sha256, sizes.inputs_sha256, NULL, 0);
	segment_sizes_release(&sizes);
	if (r == 0) {
		_cleanup_free_ char *meta = path_join(tmp, BUILDINFO_FILE);
		_cleanup_free_ char *json = buildinfo_json(&info);
		r = write_file_atomic(meta, json, strlen(json), 0644, d);
	}
	buildinfo_release(&info);
	if (r == 0)
		r = sha256sums_write(tmp, "SHA256SUMS", d);
	if (r < 0) {
		rm_rf(tmp);
		return r;
	}
	if (tree_up_to_date(tmp, rc->outputs.initrd, "SHA256SUMS"))
		pending_fresh(out, tmp, rc->outputs.initrd);
	else
		pending_add(out, tmp, rc->outputs.initrd);
	return 0;
}

void build_menu_entries(const struct build *b, const char *extra, struct boot_menu *m) {
	const struct recipe *rc = b->recipe;
	_cleanup_free_ char *k = xasprintf("%s/vmlinuz", rc->name);
	/* An install's after-step is the live system's to take (dlws.after). */
	_cleanup_free_ char *after = rc->install.enabled ? xasprintf(" dlws.after=%s", rc->install.after) : xstrdup("");
	_cleanup_free_ char *cmdline = xasprintf("%s%sdlws.recipe=%s%s%s%s", rc->base.cmdline, rc->base.cmdline[0] ? " " : "",
						 rc->name, after, extra[0] ? " " : "", extra);

	/* A worker's default entry joins the cluster (role segment): Ignition
	 * must run its units as on a node's entry. */
	bool role_seg = build_has_role_segment(b);
	const char *suffix = compress_suffix(rc->compression.method);
	_cleanup_free_ char *role_cmd = role_seg ? xasprintf("%s " FLATCAR_FIRST_BOOT, cmdline) : xstrdup(cmdline);
	_cleanup_free_ char *title = role_seg
		? xasprintf("%s: a %s that joins with the bootstrap token", rc->name, role_name(rc->role))
		: xasprintf("%s: %s without node configuration", rc->name, role_name(rc->role));
	struct boot_entry *e = boot_menu_add(m, rc->name, title, k, role_cmd);
	strv_push_take(&e->initrds, xasprintf("%s/base.img", rc->name));
	strv_push_take(&e->initrds, xasprintf("%s/shared%s", rc->name, suffix));
	if (role_seg)
		strv_push_take(&e->initrds, xasprintf("%s/" BUILD_ROLE_SEGMENT "%s", rc->name, suffix));
	for (size_t i = 0; i < b->n_nodes; i++) {
		const struct node *n = b->nodes[i];
		_cleanup_free_ char *ntitle = xasprintf("%s: %s %s", n->hostname, role_name(n->role), n->ip);
		/* Ignition runs the node's config.ign only on a first boot; a
		 * live system's every boot is one. */
		_cleanup_free_ char *ncmd = xasprintf("%s dlws.node=%s " FLATCAR_FIRST_BOOT, cmdline, n->hostname);
		struct boot_entry *ne = boot_menu_add(m, n->hostname, ntitle, k, ncmd);
		strv_push_take(&ne->initrds, xasprintf("%s/base.img", rc->name));
		strv_push_take(&ne->initrds, xasprintf("%s/shared%s", rc->name, suffix));
		strv_push_take(&ne->initrds, xasprintf("nodes/%s%s", n->hostname, suffix));
		if (n->mac)
			ne->mac = xstrdup(n->mac);
	}
}
