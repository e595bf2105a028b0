#include "cluster.h"
#include "kubernetes.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "fsutil.h"
#include "schema.h"
#include "util.h"
#include "yamldoc.h"

#define CLUSTER_FILE_LIMIT ((size_t)1 << 20)

static const char *const role_names[_ROLE_MAX] = { "master", "etcd", "worker" };
/* The list in the cluster file that holds each role's nodes. */
static const char *const role_lists[_ROLE_MAX] = { "masters", "etcd", "workers" };

const char *role_name(enum node_role r) {
	return r < _ROLE_MAX ? role_names[r] : "?";
}

int role_from_name(const char *name, enum node_role *ret) {
	for (int i = 0; i < _ROLE_MAX; i++)
		if (streq(name, role_names[i])) {
			*ret = (enum node_role)i;
			return 0;
		}
	return -EINVAL;
}

int ipv4_parse(const char *text, uint32_t *ret) {
	struct in_addr a;
	/* inet_pton accepts only dotted quads, no octal or short forms. */
	if (inet_pton(AF_INET, text, &a) != 1)
		return -EINVAL;
	*ret = ntohl(a.s_addr);
	return 0;
}

char *ipv4_format(uint32_t addr) {
	return xasprintf("%u.%u.%u.%u", addr >> 24, (addr >> 16) & 255, (addr >> 8) & 255, addr & 255);
}

static uint32_t prefix_mask(int prefix) {
	return prefix == 0 ? 0 : 0xffffffffu << (32 - prefix);
}

int cidr_parse(const char *text, struct cidr *ret) {
	const char *slash = strchr(text, '/');
	if (!slash || !slash[1])
		return -EINVAL;
	char *ip = xstrndup(text, (size_t)(slash - text));
	uint32_t addr;
	int r = ipv4_parse(ip, &addr);
	free(ip);
	if (r < 0)
		return r;
	char *end;
	long prefix = strtol(slash + 1, &end, 10);
	if (*end || !isdigit((unsigned char)slash[1]) || prefix < 0 || prefix > 32)
		return -EINVAL;
	/* Host bits set ("10.2.0.5/16") usually means a typo; refuse it. */
	if (addr & ~prefix_mask((int)prefix))
		return -EDOM;
	*ret = (struct cidr){ addr, (int)prefix };
	return 0;
}

bool cidr_contains(const struct cidr *c, uint32_t addr) {
	return (addr & prefix_mask(c->prefix)) == c->addr;
}

bool cidr_overlaps(const struct cidr *a, const struct cidr *b) {
	int p = a->prefix < b->prefix ? a->prefix : b->prefix;
	return (a->addr & prefix_mask(p)) == (b->addr & prefix_mask(p));
}

bool hostname_valid(const char *s) {
	/* RFC 1123 names, as Kubernetes node names: lowercase labels. */
	size_t len = strlen(s);
	if (len == 0 || len > 253)
		return false;
	size_t label = 0;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (c == '.') {
			if (label == 0 || s[i - 1] == '-')
				return false;
			label = 0;
			continue;
		}
		if (!(islower((unsigned char)c) || isdigit((unsigned char)c) || c == '-'))
			return false;
		if (c == '-' && label == 0)
			return false;
		if (++label > 63)
			return false;
	}
	return s[len - 1] != '-' && s[len - 1] != '.';
}

int mac_normalize(const char *text, char ret[18]) {
	if (strlen(text) != 17)
		return -EINVAL;
	char sep = text[2];
	if (sep != ':' && sep != '-')
		return -EINVAL;
	for (int i = 0; i < 17; i++) {
		if (i % 3 == 2) {
			if (text[i] != sep)
				return -EINVAL;
			ret[i] = ':';
		} else {
			if (!isxdigit((unsigned char)text[i]))
				return -EINVAL;
			ret[i] = (char)tolower((unsigned char)text[i]);
		}
	}
	ret[17] = '\0';
	return 0;
}

static int load_range(const struct value *doc, const char *key, const char *def, char **ret_text, struct cidr *ret, struct diags *d) {
	const char *text = schema_str(doc, key, false, "cluster", d);
	if (!text)
		text = def;
	int r = cidr_parse(text, ret);
	if (r == -EDOM)
		diag_error(d, schema_loc(doc, key), "'%s' has host bits set in '%s' (did you mean a network address?)", key, text);
	else if (r < 0)
		diag_error(d, schema_loc(doc, key), "'%s' is not a valid IPv4 CIDR: '%s'", key, text);
	else if (ret->prefix > 30)
		diag_error(d, schema_loc(doc, key), "'%s' is too small: '%s' (at most /30)", key, text);
	*ret_text = xstrdup(text);
	return r < 0 ? r : 0;
}

static void load_nodes(struct cluster *c, const struct value *doc, enum node_role role, struct diags *d) {
	static const char *const keys[] = { "hostname", "ip", "mac" };
	const struct value *list = schema_get(doc, role_lists[role], VALUE_LIST, false, "cluster", d);
	if (!list)
		return;
	for (size_t i = 0; i < list->n; i++) {
		const struct value *item = list->items[i];
		if (!schema_is(item, VALUE_MAP, "a node", d))
			continue;
		char *what = xasprintf("node of '%s'", role_lists[role]);
		schema_keys(item, keys, ARRAY_SIZE(keys), what, d);
		const char *hostname = schema_str(item, "hostname", true, what, d);
		const char *ip = schema_str(item, "ip", true, what, d);
		const char *mac = schema_str(item, "mac", false, what, d);
		free(what);
		if (!hostname || !ip)
			continue;
		GROW(c->nodes, c->n_nodes_cap, c->n_nodes + 1);
		struct node *n = &c->nodes[c->n_nodes++];
		n->hostname = xstrdup(hostname);
		n->ip = xstrdup(ip);
		n->role = role;
		n->loc = item->loc;
		n->hostname_loc = *schema_loc(item, "hostname");
		n->ip_loc = *schema_loc(item, "ip");
		if (mac) {
			char norm[18];
			if (mac_normalize(mac, norm) < 0)
				diag_error(d, schema_loc(item, "mac"), "malformed MAC address '%s' (expected six hex pairs like 52:54:00:12:34:56)", mac);
			else
				n->mac = xstrdup(norm);
			n->mac_loc = *schema_loc(item, "mac");
		}
	}
}

static void validate_nodes(struct cluster *c, bool ranges_ok, struct diags *d) {
	for (size_t i = 0; i < c->n_nodes; i++) {
		struct node *n = &c->nodes[i];
		if (!hostname_valid(n->hostname))
			diag_error(d, &n->hostname_loc, "invalid hostname '%s' (lowercase letters, digits, '-' and '.')", n->hostname);
		uint32_t addr;
		if (ipv4_parse(n->ip, &addr) < 0) {
			diag_error(d, &n->ip_loc, "invalid IPv4 address '%s'", n->ip);
		} else if (!ranges_ok) {
			/* nothing to compare against */
		} else if (cidr_contains(&c->pod_range, addr)) {
			diag_error(d, &n->ip_loc, "node IP '%s' is inside the pod range '%s'", n->ip, c->pod_range_text);
		} else if (cidr_contains(&c->service_range, addr)) {
			diag_error(d, &n->ip_loc, "node IP '%s' is inside the service range '%s'", n->ip, c->service_range_text);
		}
		for (size_t j = 0; j < i; j++) {
			const struct node *m = &c->nodes[j];
			if (streq(n->hostname, m->hostname))
				diag_error(d, &n->hostname_loc, "duplicate hostname '%s' (also at %d:%d)", n->hostname, m->hostname_loc.line, m->hostname_loc.col);
			if (streq(n->ip, m->ip))
				diag_error(d, &n->ip_loc, "duplicate IP '%s' (also used by '%s' at %d:%d)", n->ip, m->hostname, m->ip_loc.line, m->ip_loc.col);
			if (n->mac && m->mac && streq(n->mac, m->mac))
				diag_error(d, &n->mac_loc, "duplicate MAC '%s' (also used by '%s' at %d:%d)", n->mac, m->hostname, m->mac_loc.line, m->mac_loc.col);
		}
	}
}

/* An OCI tag: [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}. */
static bool image_tag_valid(const char *s) {
	size_t n = strlen(s);
	if (n == 0 || n > 128 || s[0] == '.' || s[0] == '-')
		return false;
	for (; *s; s++)
		if (!(isalnum((unsigned char)*s) || *s == '_' || *s == '.' || *s == '-'))
			return false;
	return true;
}

/* A path that goes as-is into dnsmasq's and nginx's configs. */
static bool server_path_valid(const char *s) {
	if (s[0] != '/' || strstr(s, "/../") || endswith(s, "/..") || strlen(s) > 200)
		return false;
	for (; *s; s++)
		if (!(isalnum((unsigned char)*s) || strchr("/._-", *s)))
			return false;
	return true;
}

static void load_boot_server(struct cluster *c, const struct value *doc, struct diags *d) {
	static const char *const keys[] = { "address", "dhcp", "range", "root", "http_port" };
	struct boot_server *bs = &c->boot_server;
	const struct value *m = schema_get(doc, "boot_server", VALUE_MAP, false, "cluster", d);
	bs->root = xstrdup("/srv/boot");
	bs->http_port = 80;
	if (!m)
		return;
	bs->set = true;
	bs->loc = m->loc;
	schema_keys(m, keys, ARRAY_SIZE(keys), "boot_server", d);
	const char *addr = schema_str(m, "address", true, "boot_server", d);
	if (addr) {
		const char *slash = strchr(addr, '/');
		_cleanup_free_ char *host = slash ? xstrndup(addr, (size_t)(slash - addr)) : xstrdup(addr);
		uint32_t a;
		char *end = NULL;
		long prefix = slash ? strtol(slash + 1, &end, 10) : -1;
		if (!slash || *end || end == slash + 1 || prefix < 8 || prefix > 30 || ipv4_parse(host, &a) < 0) {
			diag_error(d, schema_loc(m, "address"),
				   "invalid boot_server.address '%s' (expected the server's IPv4 address with its network's "
				   "prefix, e.g. 192.168.255.1/24)", addr);
		} else {
			uint32_t mask = 0xffffffffu << (32 - prefix);
			bs->address = xstrdup(host);
			bs->network = (struct cidr){ .addr = a & mask, .prefix = (int)prefix };
			if (a == bs->network.addr || (a & ~mask) == ~mask)
				diag_error(d, schema_loc(m, "address"), "boot_server.address '%s' is its network's own or broadcast address", addr);
		}
	}
	size_t errors_before_dhcp = d->n_errors;
	const char *dhcp = schema_str(m, "dhcp", false, "boot_server", d);
	if (dhcp && streq(dhcp, "full"))
		bs->dhcp = DHCP_FULL;
	else if (dhcp && !streq(dhcp, "proxy"))
		diag_error(d, schema_loc(m, "dhcp"), "boot_server.dhcp is 'proxy' or 'full', not '%s'", dhcp);
	/* Whether range: belongs depends on the mode: with the mode itself
	 * wrong (or of the wrong type), the range is not a second mistake. */
	bool dhcp_known = d->n_errors == errors_before_dhcp;
	const char *range = schema_str(m, "range", false, "boot_server", d);
	if (range) {
		const char *dash = strchr(range, '-');
		_cleanup_free_ char *lo = dash ? xstrndup(range, (size_t)(dash - range)) : NULL;
		uint32_t a = 0, b = 0;
		if (!dash || ipv4_parse(lo, &a) < 0 || ipv4_parse(dash + 1, &b) < 0 || a > b)
			diag_error(d, schema_loc(m, "range"), "invalid boot_server.range '%s' (expected FIRST-LAST, e.g. "
				   "192.168.255.100-192.168.255.199)", range);
		else if (bs->address && (!cidr_contains(&bs->network, a) || !cidr_contains(&bs->network, b)))
			diag_error(d, schema_loc(m, "range"), "boot_server.range '%s' is not inside the boot network of %s/%d",
				   range, bs->address, bs->network.prefix);
		else {
			bs->range_start = ipv4_format(a);
			bs->range_end = ipv4_format(b);
		}
		if (dhcp_known && bs->dhcp != DHCP_FULL)
			diag_error(d, schema_loc(m, "range"), "boot_server.range is for 'dhcp: full' (in proxy mode the "
				   "network's own DHCP server hands out addresses)");
	}
	if (bs->dhcp == DHCP_FULL && !range)
		diag_error(d, &m->loc, "boot_server with 'dhcp: full' needs a range: (the addresses for machines not "
			   "listed, e.g. workers that join by their MAC)");
	const char *root = schema_str(m, "root", false, "boot_server", d);
	if (root && !server_path_valid(root))
		diag_error(d, schema_loc(m, "root"), "invalid boot_server.root '%s' (an absolute path of letters, digits, "
			   "'/', '.', '_' and '-')", root);
	else if (root) {
		free(bs->root);
		bs->root = xstrdup(root);
		while (strlen(bs->root) > 1 && endswith(bs->root, "/"))
			bs->root[strlen(bs->root) - 1] = '\0';
	}
	const struct value *port = schema_get(m, "http_port", VALUE_SCALAR, false, "boot_server", d);
	if (port) {
		char *end;
		long p = strtol(port->text, &end, 10);
		if (*end || end == port->text || p < 1 || p > 65535)
			diag_error(d, &port->loc, "invalid boot_server.http_port '%s' (1 to 65535)", port->text);
		else
			bs->http_port = (int)p;
	}
}

/* Full DHCP gives listed nodes their addresses: they must be on its network. */
static void check_boot_network(const struct cluster *c, struct diags *d) {
	const struct boot_server *bs = &c->boot_server;
	if (!bs->address || bs->dhcp != DHCP_FULL)
		return;
	for (size_t i = 0; i < c->n_nodes; i++) {
		const struct node *n = &c->nodes[i];
		uint32_t a;
		/* An address in the pod or service range is already reported. */
		if (n->mac && ipv4_parse(n->ip, &a) == 0 && !cidr_contains(&bs->network, a) &&
		    !cidr_contains(&c->pod_range, a) && !cidr_contains(&c->service_range, a))
			diag_error(d, &n->ip_loc, "%s's ip %s is outside the boot network %s/%d: with 'dhcp: full' dnsmasq "
				   "gives listed nodes their addresses", n->hostname, n->ip, bs->address, bs->network.prefix);
	}
}

int cluster_load(const char *path, struct cluster **ret, struct diags *d) {
	static const char *const keys[] = {
		"cluster_name", "domain", "pod_ip_range", "service_cluster_ip_range",
		"kubernetes_version", "flannel_version", "flannel_cni_plugin_version",
		"ssh_keys", "masters", "etcd", "workers", "boot_server", "values",
	};
	size_t errors_before = d->n_errors;
	char *text = NULL;
	size_t len;
	int r = read_file(path, CLUSTER_FILE_LIMIT, &text, &len, d);
	if (r < 0)
		return r;
	struct cluster *c = xcalloc(1, sizeof(*c));
	c->path = xstrdup(path);
	r = yaml_parse(c->path, text, len, &c->doc, d);
	free(text);
	if (r < 0) {
		cluster_free(c);
		return r;
	}
	const struct value *doc = c->doc;
	if (!schema_is(doc, VALUE_MAP, "the cluster file", d)) {
		cluster_free(c);
		return -EINVAL;
	}
	schema_keys(doc, keys, ARRAY_SIZE(keys), "cluster", d);

	const char *name = schema_str(doc, "cluster_name", true, "cluster", d);
	c->name = xstrdup(name ? name : "");
	if (name && !hostname_valid(name))
		diag_error(d, schema_loc(doc, "cluster_name"), "invalid cluster_name '%s' (lowercase letters, digits, '-' and '.')", name);
	const char *domain = schema_str(doc, "domain", false, "cluster", d);
	c->domain = xstrdup(domain ? domain : "cluster.local");
	if (!hostname_valid(c->domain))
		diag_error(d, schema_loc(doc, "domain"), "invalid domain '%s'", c->domain);

	/* Pinned: kubeadm would otherwise ask the internet for stable-1.txt. */
	const char *kv = schema_str(doc, "kubernetes_version", false, "cluster", d);
	struct k8s_version k8s;
	int kr = k8s_version_parse(kv ? kv : CLUSTER_DEFAULT_K8S, &k8s);
	if (kr == -ERANGE)
		diag_error(d, schema_loc(doc, "kubernetes_version"),
			   "kubernetes_version '%s' is not one this dlws-mkimage knows (1.%d to 1.%d): its images and flags are unknown",
			   kv, K8S_OLDEST_MINOR, K8S_NEWEST_MINOR);
	else if (kr < 0)
		diag_error(d, schema_loc(doc, "kubernetes_version"), "invalid kubernetes_version '%s' (expected e.g. v1.34.2)", kv);
	c->kubernetes_version = kr == 0 ? xasprintf("v%d.%d.%d", k8s.major, k8s.minor, k8s.patch) : xstrdup("");
	const char *fv = schema_str(doc, "flannel_version", false, "cluster", d);
	c->flannel_version = xstrdup(fv ? fv : CLUSTER_DEFAULT_FLANNEL);
	const char *fc = schema_str(doc, "flannel_cni_plugin_version", false, "cluster", d);
	c->flannel_cni_plugin_version = xstrdup(fc ? fc : CLUSTER_DEFAULT_FLANNEL_CNI);
	if (!image_tag_valid(c->flannel_version))
		diag_error(d, schema_loc(doc, "flannel_version"), "invalid image tag '%s'", c->flannel_version);
	if (!image_tag_valid(c->flannel_cni_plugin_version))
		diag_error(d, schema_loc(doc, "flannel_cni_plugin_version"), "invalid image tag '%s'", c->flannel_cni_plugin_version);

	int rp = load_range(doc, "pod_ip_range", "10.2.0.0/16", &c->pod_range_text, &c->pod_range, d);
	int rs = load_range(doc, "service_cluster_ip_range", "10.3.0.0/16", &c->service_range_text, &c->service_range, d);
	if (rp == 0 && rs == 0) {
		/* Point at whichever range the user wrote; the other may be a default. */
		const char *blame = value_map_get(doc, "service_cluster_ip_range") ? "service_cluster_ip_range" : "pod_ip_range";
		if (cidr_overlaps(&c->pod_range, &c->service_range))
			diag_error(d, schema_loc(doc, blame), "service range '%s' overlaps the pod range '%s'",
				   c->service_range_text, c->pod_range_text);
		/* Kubernetes takes the first host of the service range for its own
		 * service; cluster DNS conventionally takes the second. */
		c->service_ip = ipv4_format(c->service_range.addr + 1);
		c->dns_ip = ipv4_format(c->service_range.addr + 2);
	} else {
		c->service_ip = xstrdup("");
		c->dns_ip = xstrdup("");
	}

	const struct value *keys_list = schema_get(doc, "ssh_keys", VALUE_LIST, false, "cluster", d);
	if (keys_list) {
		c->ssh_keys = xcalloc(keys_list->n + 1, sizeof(char *));
		for (size_t i = 0; i < keys_list->n; i++) {
			const struct value *k = keys_list->items[i];
			if (!schema_is(k, VALUE_SCALAR, "an SSH key", d))
				continue;
			if (!startswith(k->text, "ssh-") && !startswith(k->text, "ecdsa-") && !startswith(k->text, "sk-"))
				diag_error(d, &k->loc, "'%.20s...' does not look like an SSH public key", k->text);
			else if (strchr(k->text, '\n'))
				diag_error(d, &k->loc, "an SSH key must be one line");
			c->ssh_keys[c->n_ssh_keys++] = xstrdup(k->text);
		}
	}
	for (int role = 0; role < _ROLE_MAX; role++)
		load_nodes(c, doc, (enum node_role)role, d);
	validate_nodes(c, rp == 0 && rs == 0, d);
	load_boot_server(c, doc, d);
	check_boot_network(c, d);

	const struct value *values = schema_get(doc, "values", VALUE_MAP, false, "cluster", d);
	c->values = values ? value_copy(values) : value_new_map(&doc->loc);

	if (d->n_errors > errors_before) {
		cluster_free(c);
		return -EINVAL;
	}
	*ret = c;
	return 0;
}

void cluster_free(struct cluster *c) {
	if (!c)
		return;
	for (size_t i = 0; i < c->n_nodes; i++) {
		free(c->nodes[i].hostname);
		free(c->nodes[i].ip);
		free(c->nodes[i].mac);
	}
	free(c->nodes);
	for (size_t i = 0; i < c->n_ssh_keys; i++)
		free(c->ssh_keys[i]);
	free(c->ssh_keys);
	free(c->name);
	free(c->domain);
	free(c->kubernetes_version);
	free(c->flannel_version);
	free(c->flannel_cni_plugin_version);
	free(c->pod_range_text);
	free(c->service_range_text);
	free(c->service_ip);
	free(c->dns_ip);
	free(c->boot_server.address);
	free(c->boot_server.range_start);
	free(c->boot_server.range_end);
	free(c->boot_server.root);
	value_free(c->values);
	value_free(c->doc);
	free(c->path);
	free(c);
}

size_t cluster_nodes_of(const struct cluster *c, enum node_role r, const struct node **ret, size_t max) {
	size_t n = 0;
	for (size_t i = 0; i < c->n_nodes; i++)
		if (c->nodes[i].role == r) {
			if (n < max)
				ret[n] = &c->nodes[i];
			n++;
		}
	return n;
}

const struct node *cluster_find_node(const struct cluster *c, const char *hostname) {
	for (size_t i = 0; i < c->n_nodes; i++)
		if (streq(c->nodes[i].hostname, hostname))
			return &c->nodes[i];
	return NULL;
}
