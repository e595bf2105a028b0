/* DL Workspace's config.yaml → struct scaffold: see dlwsconfig.h. The key
 * names are the original's (deploy.py and config.yaml.template of
 * microsoft/DLWorkspace), "api_serviers" spelling included. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"
#include "dlwsconfig.h"
#include "fsutil.h"
#include "kubernetes.h"
#include "schema.h"
#include "util.h"
#include "yamldoc.h"

#define DLWS_CONFIG_LIMIT ((size_t)1 << 20)
#define SSH_PUB_LIMIT ((size_t)64 << 10)

/* Keys of the original with a meaning elsewhere in this tool, and why they
 * are left out; any other key gets the plain reason. */
static const struct { const char *key, *why; } unused_keys[] = {
	{ "basic_auth", "the apiserver trusts client certificates only; Kubernetes 1.19 removed basic auth" },
	{ "discovery_url", "etcd gets a static initial cluster, nothing is asked of a discovery service" },
	{ "etcd_endpoints", "they follow from the etcd nodes" },
	{ "api_serviers", "the apiserver URL follows from the masters" },
	{ "api_servers", "the apiserver URL follows from the masters" },
	{ "kubernetes_master_ssh_user", "nodes are logged into as user core" },
	{ "etcd_user", "nodes are logged into as user core" },
	{ "admin_username", "nodes are logged into as user core" },
	{ "network", "its domain names the machines, not the cluster's DNS domain" },
};

/* A node as the file gives it; `ip` NULL when only a hostname was given. */
struct file_node {
	char *hostname, *ip, *mac;
	enum node_role role;
	const char *key;                /* the file's key that listed it */
	struct srcloc loc;
};

struct reader {
	const char *path;
	struct diags *d;
	struct file_node *nodes;
	size_t n_nodes, n_nodes_cap;
	struct strv keys;               /* SSH public key lines */
	const char *name;               /* cluster_name, borrowed from the tree */
};

static const char *scalar(const struct value *v, const char *what, struct diags *d) {
	return schema_is(v, VALUE_SCALAR, what, d) ? v->text : NULL;
}

static void add_node(struct reader *rd, enum node_role role, const char *key, const char *hostname, const char *ip,
		     const char *mac, const struct srcloc *loc) {
	GROW(rd->nodes, rd->n_nodes_cap, rd->n_nodes + 1);
	rd->nodes[rd->n_nodes++] = (struct file_node){
		.hostname = xstrdup(hostname),
		.ip = ip ? xstrdup(ip) : NULL,
		.mac = mac ? xstrdup(mac) : NULL,
		.role = role,
		.key = key,
		.loc = *loc,
	};
}

/* kubernetes_master_node / etcd_node: one entry or a list, each an IP
 * (the node is then named <cluster>-<role><n>, as DL Workspace's deploy.py
 * set its hostname) or a hostname that the command line gives an IP. */
static void read_node_list(struct reader *rd, const struct value *v, const char *key, enum node_role role,
			   const char *name, size_t *ret_count) {
	const struct value *one[] = { v };
	const struct value *const *items = v->kind == VALUE_LIST ? (const struct value *const *)v->items : one;
	size_t n = v->kind == VALUE_LIST ? v->n : 1;
	*ret_count = n;
	for (size_t i = 0; i < n; i++) {
		_cleanup_free_ char *what = xasprintf("an entry of '%s'", key);
		const char *text = scalar(items[i], what, rd->d);
		if (!text)
			continue;
		uint32_t addr;
		if (ipv4_parse(text, &addr) == 0) {
			_cleanup_free_ char *host = xasprintf("%s-%s%zu", name ? name : "node", role_name(role), i + 1);
			add_node(rd, role, key, host, text, NULL, &items[i]->loc);
		} else if (text[strspn(text, "0123456789.")] == '\0')
			/* A valid hostname too, but surely a mistyped address. */
			diag_error(rd->d, &items[i]->loc, "invalid IPv4 address '%s' in '%s'", text, key);
		else if (hostname_valid(text))
			add_node(rd, role, key, text, NULL, NULL, &items[i]->loc);
		else
			diag_error(rd->d, &items[i]->loc, "'%s' in '%s' is neither an IPv4 address nor a hostname (lowercase "
				   "letters, digits, '-' and '.')", text, key);
	}
}

/* machines: (DL Workspace's later layout) hostname → { role, private-ip,
 * mac, ... }. Infrastructure machines ran the control plane; workers ran
 * jobs; other roles (storage, NFS, ...) have no media here. */
static void read_machines(struct reader *rd, const struct value *m) {
	struct strv warned = STRV_INIT;
	for (size_t i = 0; i < m->n; i++) {
		const char *host = m->keys[i];
		const struct value *spec = m->items[i];
		const struct srcloc *at = &m->key_locs[i];
		if (!value_is_null(spec) && !schema_is(spec, VALUE_MAP, "a machine", rd->d))
			continue;
		if (!hostname_valid(host)) {
			diag_error(rd->d, at, "invalid hostname '%s' in 'machines' (lowercase letters, digits, '-' and '.')", host);
			continue;
		}
		const char *role = NULL, *ip = NULL, *mac = NULL;
		char norm[18];
		bool ok = true;
		for (size_t k = 0; spec->kind == VALUE_MAP && k < spec->n; k++) {
			const char *key = spec->keys[k];
			const struct value *v = spec->items[k];
			_cleanup_free_ char *what = xasprintf("'%s'", key);
			if (streq(key, "role"))
				ok = (role = scalar(v, what, rd->d)) && ok;
			else if (streq(key, "private-ip")) {
				uint32_t addr;
				if (!(ip = scalar(v, what, rd->d)))
					ok = false;
				else if (ipv4_parse(ip, &addr) < 0) {
					diag_error(rd->d, &v->loc, "invalid IPv4 address '%s'", ip);
					ok = false;
				}
			} else if (streq(key, "mac")) {
				if (!(mac = scalar(v, what, rd->d)))
					ok = false;
				else if (mac_normalize(mac, norm) < 0) {
					diag_error(rd->d, &v->loc, "malformed MAC address '%s' (expected six hex pairs like "
						   "52:54:00:12:34:56)", mac);
					ok = false;
				}
			} else if (!strv_contains(&warned, key)) {
				/* Once per key: a rack of machines repeats the same ones. */
				strv_push(&warned, key);
				diag_warning(rd->d, &spec->key_locs[k], "ignoring '%s' of machines (dlws-mkimage has no use for it)", key);
			}
		}
		if (!ok)
			continue;
		enum node_role r;
		if (streq(role, "infrastructure"))
			r = ROLE_MASTER;
		else if (streq(role, "worker"))
			r = ROLE_WORKER;
		else {
			diag_warning(rd->d, at, role ? "skipping machine '%s' of role '%s' (dlws-mkimage makes media for "
				     "infrastructure and worker machines)" : "skipping machine '%s', which has no role%s", host,
				     role ? role : "");
			continue;
		}
		add_node(rd, r, "machines", host, ip, mac ? norm : NULL, at);
	}
	strv_release(&warned);
}

/* The key lines of the ".pub" beside ssh_cert (DL Workspace named the
 * private key; its public half is what a node needs). */
static void read_ssh_cert(struct reader *rd, const struct value *v) {
	const char *cert = scalar(v, "'ssh_cert'", rd->d);
	if (!cert)
		return;
	const char *home = getenv("HOME");
	_cleanup_free_ char *expanded = startswith(cert, "~/") && home ? path_join(home, cert + 2) : xstrdup(cert);
	_cleanup_free_ char *priv = path_relative_to(rd->path, expanded);
	_cleanup_free_ char *pub = endswith(priv, ".pub") ? xstrdup(priv) : xasprintf("%s.pub", priv);
	_cleanup_free_ char *text = NULL;
	struct diags io = DIAGS_INIT;
	int r = read_file(pub, SSH_PUB_LIMIT, &text, NULL, &io);
	if (r < 0) {
		diag_error(rd->d, &v->loc, "cannot read '%s', the public key of ssh_cert: %s", pub, strerror(-r));
		diags_release(&io);
		return;
	}
	diags_release(&io);
	if (strstr(text, "PRIVATE KEY")) {
		diag_error(rd->d, &v->loc, "'%s' is a private key (ssh_cert's public key is expected there)", pub);
		return;
	}
	size_t before = rd->keys.n;
	for (char *line = text, *next; line && *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		size_t n = strlen(line);
		while (n && (line[n - 1] == '\r' || line[n - 1] == ' '))
			line[--n] = '\0';
		if (!n || line[0] == '#')
			continue;
		if (!startswith(line, "ssh-") && !startswith(line, "ecdsa-") && !startswith(line, "sk-")) {
			diag_error(rd->d, &v->loc, "'%s' holds '%.20s...', which does not look like an SSH public key", pub, line);
			return;
		}
		strv_push(&rd->keys, line);
	}
	if (rd->keys.n == before)
		diag_error(rd->d, &v->loc, "'%s' is empty (expected ssh_cert's public key)", pub);
}

static void read_ssh_keys(struct reader *rd, const struct value *v) {
	if (!schema_is(v, VALUE_LIST, "'sshKeys'", rd->d))
		return;
	for (size_t i = 0; i < v->n; i++) {
		const char *k = scalar(v->items[i], "an SSH key", rd->d);
		if (!k)
			continue;
		if (!startswith(k, "ssh-") && !startswith(k, "ecdsa-") && !startswith(k, "sk-"))
			diag_error(rd->d, &v->items[i]->loc, "'%.20s...' does not look like an SSH public key", k);
		else if (strchr(k, '\n'))
			diag_error(rd->d, &v->items[i]->loc, "an SSH key must be one line");
		else
			strv_push(&rd->keys, k);
	}
}

static char *read_range(struct reader *rd, const struct value *v, const char *key) {
	_cleanup_free_ char *what = xasprintf("'%s'", key);
	const char *text = scalar(v, what, rd->d);
	if (!text)
		return NULL;
	struct cidr c;
	int r = cidr_parse(text, &c);
	if (r == -EDOM)
		diag_error(rd->d, &v->loc, "'%s' has host bits set in '%s' (did you mean a network address?)", key, text);
	else if (r < 0)
		diag_error(rd->d, &v->loc, "'%s' is not a valid IPv4 CIDR: '%s'", key, text);
	else if (c.prefix > 30)
		diag_error(rd->d, &v->loc, "'%s' is too small: '%s' (at most /30)", key, text);
	return r < 0 || c.prefix > 30 ? NULL : xstrdup(text);
}

/* The hyperkube image's tag is the Kubernetes release it ran
 * ("hyperkube:v1.9.0_coreos.0"); a tag that is no release this tool knows
 * keeps the shipped version, with a warning rather than an error because
 * any real DL Workspace file names a release long gone. */
static char *read_k8s_image(struct reader *rd, const struct value *v) {
	const char *image = scalar(v, "'kubernetes_docker_image'", rd->d);
	if (!image)
		return NULL;
	if (!*image || strpbrk(image, " \t\n")) {
		diag_error(rd->d, &v->loc, "invalid image reference '%s' in 'kubernetes_docker_image'", image);
		return NULL;
	}
	const char *slash = strrchr(image, '/');
	const char *colon = strchr(slash ? slash : image, ':');
	if (!colon || !colon[1]) {
		diag_warning(rd->d, &v->loc, "image '%s' has no tag to take the Kubernetes version from; the shipped "
			     "kubernetes_version stays", image);
		return NULL;
	}
	_cleanup_free_ char *tag = xstrndup(colon + 1, strcspn(colon + 1, "@"));
	_cleanup_free_ char *release = xstrndup(tag, strcspn(tag, "_-+"));
	struct k8s_version k;
	int r = k8s_version_parse(release, &k);
	if (r == 0)
		return xasprintf("v%d.%d.%d", k.major, k.minor, k.patch);
	if (r == -ERANGE)
		diag_warning(rd->d, &v->loc, "image tag '%s' is a Kubernetes release dlws-mkimage does not know (1.%d to "
			     "1.%d); the shipped kubernetes_version stays", tag, K8S_OLDEST_MINOR, K8S_NEWEST_MINOR);
	else
		diag_warning(rd->d, &v->loc, "image tag '%s' is not a Kubernetes release; the shipped kubernetes_version stays", tag);
	return NULL;
}

static void warn_unused(struct reader *rd, const char *key, const struct srcloc *at) {
	for (size_t i = 0; i < ARRAY_SIZE(unused_keys); i++)
		if (streq(key, unused_keys[i].key)) {
			diag_warning(rd->d, at, "ignoring '%s': %s", key, unused_keys[i].why);
			return;
		}
	diag_warning(rd->d, at, "ignoring '%s' (dlws-mkimage has no use for it)", key);
}

static void reader_release(struct reader *rd) {
	for (size_t i = 0; i < rd->n_nodes; i++) {
		free(rd->nodes[i].hostname);
		free(rd->nodes[i].ip);
		free(rd->nodes[i].mac);
	}
	free(rd->nodes);
	strv_release(&rd->keys);
}

static void replace(char **field, char *value) {
	if (!value)
		return;
	free(*field);
	*field = value;
}

/* The file's nodes first, each replaced by the command line's node of the
 * same hostname; then the command line's others. */
static void merge_nodes(struct reader *rd, struct scaffold *s) {
	bool *taken = xcalloc(s->n_nodes + 1, sizeof(bool));
	size_t cap = rd->n_nodes + s->n_nodes + 1;
	struct scaffold_node *out = xcalloc(cap, sizeof(*out));
	size_t n = 0;
	for (size_t i = 0; i < rd->n_nodes; i++) {
		struct file_node *f = &rd->nodes[i];
		size_t j = 0;
		while (j < s->n_nodes && !streq(s->nodes[j].hostname, f->hostname))
			j++;
		if (j < s->n_nodes && !taken[j]) {
			taken[j] = true;
			out[n++] = s->nodes[j];
			continue;
		}
		if (!f->ip) {
			diag_error(rd->d, &f->loc, "'%s' in '%s' has no IP address (nodes get fixed ones: give it with --%s %s=IP)",
				   f->hostname, f->key, role_name(f->role), f->hostname);
			continue;
		}
		out[n++] = (struct scaffold_node){ .hostname = f->hostname, .ip = f->ip, .mac = f->mac, .role = f->role };
		f->hostname = f->ip = f->mac = NULL;
	}
	for (size_t j = 0; j < s->n_nodes; j++)
		if (!taken[j])
			out[n++] = s->nodes[j];
	free(s->nodes);
	s->nodes = out;
	s->n_nodes = n;
	s->n_nodes_cap = cap;
	free(taken);
}

int dlwsconfig_merge(const char *path, struct scaffold *s, struct diags *d) {
	size_t errors_before = d->n_errors;
	_cleanup_free_ char *text = NULL;
	size_t len;
	int r = read_file(path, DLWS_CONFIG_LIMIT, &text, &len, d);
	if (r < 0)
		return r;
	struct value *doc = NULL;
	r = yaml_parse(path, text, len, &doc, d);
	if (r < 0)
		return r;
	if (!schema_is(doc, VALUE_MAP, "a DL Workspace config.yaml", d)) {
		value_free(doc);
		return -EINVAL;
	}
	struct reader rd = { .path = path, .d = d };
	const struct value *v = value_map_get(doc, "cluster_name");
	if (v && !value_is_null(v)) {
		rd.name = scalar(v, "'cluster_name'", d);
		if (rd.name && !hostname_valid(rd.name))
			diag_error(d, &v->loc, "invalid cluster_name '%s' (lowercase letters, digits, '-' and '.')", rd.name);
	} else if (!s->name)
		diag_error(d, &doc->loc, "missing required key 'cluster_name' (or give --name)");
	/* Generated hostnames carry the name the cluster gets: the command line's when given. */
	const char *name = s->name ? s->name : rd.name;

	char *pod = NULL, *service = NULL, *k8s = NULL;
	size_t n_etcd = 0;
	bool have_etcd_list = false;
	for (size_t i = 0; i < doc->n; i++) {
		const char *key = doc->keys[i];
		const struct value *item = doc->items[i];
		if (streq(key, "cluster_name"))
			continue;
		if (value_is_null(item) && !streq(key, "etcd_node_num")) {
			/* An empty key ("pxe_docker_image :") says nothing. */
			continue;
		}
		if (streq(key, "pod_ip_range"))
			replace(&pod, read_range(&rd, item, key));
		else if (streq(key, "service_cluster_ip_range"))
			replace(&service, read_range(&rd, item, key));
		else if (streq(key, "kubernetes_master_node")) {
			size_t n;
			read_node_list(&rd, item, key, ROLE_MASTER, name, &n);
		} else if (streq(key, "etcd_node")) {
			read_node_list(&rd, item, key, ROLE_ETCD, name, &n_etcd);
			have_etcd_list = true;
		} else if (streq(key, "machines")) {
			if (schema_is(item, VALUE_MAP, "'machines'", d))
				read_machines(&rd, item);
		} else if (streq(key, "kubernetes_docker_image"))
			replace(&k8s, read_k8s_image(&rd, item));
		else if (streq(key, "ssh_cert"))
			read_ssh_cert(&rd, item);
		else if (streq(key, "sshKeys"))
			read_ssh_keys(&rd, item);
		else if (!streq(key, "etcd_node_num"))
			warn_unused(&rd, key, &doc->key_locs[i]);
	}
	/* The number of etcd servers deploy.py asked discovery.etcd.io for:
	 * here only a check that the list and the count agree. */
	v = value_map_get(doc, "etcd_node_num");
	if (v) {
		long want;
		if (!value_as_long(v, &want) || want < 1)
			diag_error(d, &v->loc, "'etcd_node_num' must be a whole number of at least 1, not '%s'",
				   v->kind == VALUE_SCALAR ? v->text : value_kind_article(v->kind));
		else if (have_etcd_list && (size_t)want != n_etcd)
			diag_error(d, &v->loc, "'etcd_node_num' is %ld but 'etcd_node' lists %zu", want, n_etcd);
	}
	/* Merged even after an error: every problem of the file is reported
	 * (a node without an IP is found only here), and the caller writes
	 * nothing then. */
	if (!s->name && rd.name)
		s->name = xstrdup(rd.name);
	if (!s->pod_range)
		s->pod_range = pod, pod = NULL;
	if (!s->service_range)
		s->service_range = service, service = NULL;
	if (!s->kubernetes_version)
		s->kubernetes_version = k8s, k8s = NULL;
	/* The file's keys first: the command line's add to them. */
	for (size_t i = 0; i < s->ssh_keys.n; i++)
		if (!strv_contains(&rd.keys, s->ssh_keys.v[i]))
			strv_push(&rd.keys, s->ssh_keys.v[i]);
	strv_release(&s->ssh_keys);
	s->ssh_keys = rd.keys;
	rd.keys = (struct strv)STRV_INIT;
	merge_nodes(&rd, s);
	free(pod);
	free(service);
	free(k8s);
	reader_release(&rd);
	value_free(doc);
	return d->n_errors > errors_before ? -EINVAL : 0;
}
