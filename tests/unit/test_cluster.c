/* The cluster file: a table of bad files, each with every error as
 * "L:C: message", then good files and the address helpers underneath. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "check.h"
#include "cluster.h"
#include "diag.h"
#include "fsutil.h"
#include "util.h"
#include "value.h"

#define NODE_M1 "masters:\n  - { hostname: m1, ip: 10.0.0.1 }\n"

static const struct { const char *yaml, *want; } error_cases[] = {
	/* keys */
	{ "cluster_name: lab\npod_ip_rang: 10.2.0.0/16\n",
	  "2:1: unknown key 'pod_ip_rang' in cluster (did you mean 'pod_ip_range'?)" },
	{ "cluster_name: lab\nworker:\n  - { hostname: w1, ip: 10.0.0.1 }\n",
	  "2:1: unknown key 'worker' in cluster (did you mean 'workers'?)" },
	{ "cluster_name: lab\nfrobnicate: 1\n", "2:1: unknown key 'frobnicate' in cluster" },
	{ "domain: lab.local\n", "1:1: missing required key 'cluster_name' in cluster" },
	{ "", "1:1: missing required key 'cluster_name' in cluster" },
	{ "cluster_name:\n", "1:1: missing required key 'cluster_name' in cluster" },
	{ "cluster_name: lab\netcd:\n  - { hostname: e1, ip: 10.0.0.5, macc: '52:54:00:00:00:01' }\n",
	  "3:35: unknown key 'macc' in node of 'etcd' (did you mean 'mac'?)" },
	{ "cluster_name: lab\nmasters:\n  - hostname: m1\n", "3:5: missing required key 'ip' in node of 'masters'" },
	{ "cluster_name: lab\nworkers:\n  - { ip: 10.0.0.1 }\n", "3:5: missing required key 'hostname' in node of 'workers'" },
	/* types */
	{ "- lab\n", "1:1: the cluster file must be a map, not a list" },
	{ "cluster_name: [lab]\n", "1:15: 'cluster_name' must be a string, not a list" },
	{ "cluster_name: lab\nmasters: { hostname: m1 }\n", "2:10: 'masters' must be a list, not a map" },
	{ "cluster_name: lab\nmasters:\n  - m1\n", "3:5: a node must be a map, not a string" },
	{ "cluster_name: lab\nworkers:\n  - { hostname: [w1], ip: 10.0.0.1 }\n",
	  "3:17: 'hostname' must be a string, not a list" },
	{ "cluster_name: lab\nssh_keys: ssh-rsa AAAA\n", "2:11: 'ssh_keys' must be a list, not a string" },
	{ "cluster_name: lab\nssh_keys: [[ssh-rsa AAAA]]\n", "2:12: an SSH key must be a string, not a list" },
	{ "cluster_name: lab\nvalues: [a]\n", "2:9: 'values' must be a map, not a list" },
	{ "cluster_name: lab\npod_ip_range: { a: 1 }\n", "2:15: 'pod_ip_range' must be a string, not a map" },
	/* names */
	{ "cluster_name: Lab\n", "1:15: invalid cluster_name 'Lab' (lowercase letters, digits, '-' and '.')" },
	{ "cluster_name: lab\ndomain: Cluster.Local\n", "2:9: invalid domain 'Cluster.Local'" },
	/* ranges */
	{ "cluster_name: lab\npod_ip_range: 10.2.0.0/33\n", "2:15: 'pod_ip_range' is not a valid IPv4 CIDR: '10.2.0.0/33'" },
	{ "cluster_name: lab\npod_ip_range: 10.2.0.5/16\n",
	  "2:15: 'pod_ip_range' has host bits set in '10.2.0.5/16' (did you mean a network address?)" },
	{ "cluster_name: lab\nservice_cluster_ip_range: banana\n",
	  "2:27: 'service_cluster_ip_range' is not a valid IPv4 CIDR: 'banana'" },
	{ "cluster_name: lab\nservice_cluster_ip_range: 10.3.0.0\n",
	  "2:27: 'service_cluster_ip_range' is not a valid IPv4 CIDR: '10.3.0.0'" },
	{ "cluster_name: lab\npod_ip_range: 10.2.0.0/31\n", "2:15: 'pod_ip_range' is too small: '10.2.0.0/31' (at most /30)" },
	{ "cluster_name: lab\npod_ip_range: 10.2.0.0/16\nservice_cluster_ip_range: 10.2.128.0/24\n",
	  "3:27: service range '10.2.128.0/24' overlaps the pod range '10.2.0.0/16'" },
	{ "cluster_name: lab\npod_ip_range: 10.0.0.0/8\nservice_cluster_ip_range: 10.3.0.0/16\n",
	  "3:27: service range '10.3.0.0/16' overlaps the pod range '10.0.0.0/8'" },
	/* The default service range is not in the file: the map itself is the place. */
	{ "cluster_name: lab\npod_ip_range: 10.0.0.0/8\n", "2:15: service range '10.3.0.0/16' overlaps the pod range '10.0.0.0/8'" },
	{ "cluster_name: lab\npod_ip_range: x\nservice_cluster_ip_range: 10.3.0.1/16\n",
	  "2:15: 'pod_ip_range' is not a valid IPv4 CIDR: 'x'\n"
	  "3:27: 'service_cluster_ip_range' has host bits set in '10.3.0.1/16' (did you mean a network address?)" },
	/* nodes */
	{ "cluster_name: lab\n" NODE_M1 "workers:\n  - { hostname: m1, ip: 10.0.0.2 }\n",
	  "5:17: duplicate hostname 'm1' (also at 3:17)" },
	{ "cluster_name: lab\n" NODE_M1 "workers:\n  - { hostname: w1, ip: 10.0.0.1 }\n",
	  "5:25: duplicate IP '10.0.0.1' (also used by 'm1' at 3:25)" },
	{ "cluster_name: lab\nmasters:\n  - { hostname: m1, ip: 10.0.0.1, mac: '52:54:00:AA:BB:CC' }\n"
	  "workers:\n  - { hostname: w1, ip: 10.0.0.2, mac: 52-54-00-aa-bb-cc }\n",
	  "5:40: duplicate MAC '52:54:00:aa:bb:cc' (also used by 'm1' at 3:40)" },
	{ "cluster_name: lab\nworkers:\n  - { hostname: w1, ip: 10.0.0.1, mac: '52:54:00:aa:bb' }\n",
	  "3:40: malformed MAC address '52:54:00:aa:bb' (expected six hex pairs like 52:54:00:12:34:56)" },
	{ "cluster_name: lab\nworkers:\n  - { hostname: w1, ip: 10.0.0.1, mac: '52:54:00:aa:bb:gg' }\n",
	  "3:40: malformed MAC address '52:54:00:aa:bb:gg' (expected six hex pairs like 52:54:00:12:34:56)" },
	{ "cluster_name: lab\nworkers:\n  - { hostname: w1, ip: 10.0.0.1, mac: '52:54-00:aa:bb:cc' }\n",
	  "3:40: malformed MAC address '52:54-00:aa:bb:cc' (expected six hex pairs like 52:54:00:12:34:56)" },
	{ "cluster_name: lab\nworkers:\n  - { hostname: W1, ip: 10.0.0.1 }\n",
	  "3:17: invalid hostname 'W1' (lowercase letters, digits, '-' and '.')" },
	{ "cluster_name: lab\nworkers:\n  - { hostname: w_1, ip: 10.0.0.1 }\n",
	  "3:17: invalid hostname 'w_1' (lowercase letters, digits, '-' and '.')" },
	{ "cluster_name: lab\nworkers:\n  - { hostname: '-w1', ip: 10.0.0.1 }\n",
	  "3:17: invalid hostname '-w1' (lowercase letters, digits, '-' and '.')" },
	{ "cluster_name: lab\nworkers:\n  - { hostname: w1, ip: 10.0.0 }\n", "3:25: invalid IPv4 address '10.0.0'" },
	{ "cluster_name: lab\nworkers:\n  - { hostname: w1, ip: 10.0.0.01 }\n", "3:25: invalid IPv4 address '10.0.0.01'" },
	{ "cluster_name: lab\nworkers:\n  - { hostname: w1, ip: 10.2.3.4 }\n",
	  "3:25: node IP '10.2.3.4' is inside the pod range '10.2.0.0/16'" },
	{ "cluster_name: lab\nworkers:\n  - { hostname: w1, ip: 10.3.0.10 }\n",
	  "3:25: node IP '10.3.0.10' is inside the service range '10.3.0.0/16'" },
	{ "cluster_name: lab\nservice_cluster_ip_range: 192.168.0.0/24\nworkers:\n  - { hostname: w1, ip: 192.168.0.200 }\n",
	  "4:25: node IP '192.168.0.200' is inside the service range '192.168.0.0/24'" },
	/* SSH keys */
	{ "cluster_name: lab\nssh_keys:\n  - not a key at all, but long\n",
	  "3:5: 'not a key at all, bu...' does not look like an SSH public key" },
	{ "cluster_name: lab\nssh_keys:\n  - \"ssh-rsa AAAA\\nssh-rsa BBBB\"\n", "3:5: an SSH key must be one line" },
	/* YAML itself (libyaml counts from 0, we print from 1) */
	{ "cluster_name: a\ncluster_name: b\n", "2:1: duplicate key 'cluster_name' (first defined at 1:1)" },
	{ "cluster_name: lab\nmasters:\n  - { hostname: m1, ip: 10.0.0.1, hostname: m2 }\n",
	  "3:35: duplicate key 'hostname' (first defined at 3:7)" },
	{ "cluster_name: lab\n  domain: x\n", "2:9: mapping values are not allowed in this context" },
	{ "cluster_name: lab\nmasters: [\n", "3:1: while parsing a flow node did not find expected node content" },
	{ "cluster_name: lab\n\tdomain: x\n", "2:1: while scanning a plain scalar found a tab character that violates indentation" },
	{ "cluster_name: &n lab\n", "1:15: anchors are not supported" },
	/* boot_server: a wrong dhcp mode is one mistake, not also the range's */
	{ "cluster_name: lab\nboot_server:\n  address: 10.0.0.254/24\n  dhcp: relay\n  range: 10.0.0.100-10.0.0.199\n",
	  "4:9: boot_server.dhcp is 'proxy' or 'full', not 'relay'" },
	{ "cluster_name: lab\nboot_server:\n  address: 10.0.0.254/24\n  dhcp: [full]\n  range: 10.0.0.100-10.0.0.199\n",
	  "4:9: 'dhcp' must be a string, not a list" },
	/* ... but a range that is wrong in itself still is */
	{ "cluster_name: lab\nboot_server:\n  address: 10.0.0.254/24\n  dhcp: relay\n  range: 10.0.0.199-10.0.0.100\n",
	  "4:9: boot_server.dhcp is 'proxy' or 'full', not 'relay'\n"
	  "5:10: invalid boot_server.range '10.0.0.199-10.0.0.100' (expected FIRST-LAST, e.g. 192.168.255.100-192.168.255.199)" },
	{ "cluster_name: lab\nboot_server:\n  address: 10.0.0.254/24\n  dhcp: proxy\n  range: 10.0.0.100-10.0.0.199\n",
	  "5:10: boot_server.range is for 'dhcp: full' (in proxy mode the network's own DHCP server hands out addresses)" },
	/* Every problem of a file in one run, in file order within each check. */
	{ "cluster_name: lab\n"
	  "pod_ip_range: 10.2.0.0/16\n"
	  "sevice_cluster_ip_range: 10.3.0.0/16\n"
	  "ssh_keys: [ssh-ed25519 AAAA ok, bogus]\n"
	  "masters:\n"
	  "  - { hostname: m1, ip: 10.0.0.1, mac: '52:54:00:00:00:01' }\n"
	  "  - { hostname: M2, ip: 10.2.0.9, mac: '52:54:00:00:00:0z' }\n"
	  "workers:\n"
	  "  - { hostname: m1, ip: 10.0.0.1, mac: '52-54-00-00-00-01' }\n"
	  "  - { ip: 10.0.0.4 }\n",
	  "3:1: unknown key 'sevice_cluster_ip_range' in cluster (did you mean 'service_cluster_ip_range'?)\n"
	  "4:33: 'bogus...' does not look like an SSH public key\n"
	  "7:40: malformed MAC address '52:54:00:00:00:0z' (expected six hex pairs like 52:54:00:12:34:56)\n"
	  "10:5: missing required key 'hostname' in node of 'workers'\n"
	  "7:17: invalid hostname 'M2' (lowercase letters, digits, '-' and '.')\n"
	  "7:25: node IP '10.2.0.9' is inside the pod range '10.2.0.0/16'\n"
	  "9:17: duplicate hostname 'm1' (also at 6:17)\n"
	  "9:25: duplicate IP '10.0.0.1' (also used by 'm1' at 6:25)\n"
	  "9:40: duplicate MAC '52:54:00:00:00:01' (also used by 'm1' at 6:40)" },
	/* A bad range must not hide the node problems that do not depend on it. */
	{ "cluster_name: lab\npod_ip_range: 10.2.0.0/33\n" NODE_M1 "workers:\n  - { hostname: m1, ip: 10.0.0.2 }\n",
	  "2:15: 'pod_ip_range' is not a valid IPv4 CIDR: '10.2.0.0/33'\n"
	  "6:17: duplicate hostname 'm1' (also at 4:17)" },
};

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

/* Loads `yaml` as cluster.yaml in the current (temp) directory. */
static int load(const char *yaml, struct cluster **ret, char **ret_diags) {
	write_text("cluster.yaml", yaml);
	struct diags d = DIAGS_INIT;
	*ret = NULL;
	int r = cluster_load("cluster.yaml", ret, &d);
	for (size_t i = 0; i < d.n; i++)
		CHECK_STREQ(d.v[i].file, "cluster.yaml");
	*ret_diags = format_diags(&d);
	diags_release(&d);
	return r;
}

static void test_errors(void) {
	for (size_t i = 0; i < ARRAY_SIZE(error_cases); i++) {
		struct cluster *c;
		char *diags;
		int r = load(error_cases[i].yaml, &c, &diags);
		if (r != -EINVAL)
			fprintf(stderr, "case error[%zu]:\n%s\n", i, error_cases[i].yaml);
		CHECK_INTEQ(r, -EINVAL);
		CHECK(c == NULL);
		cluster_free(c);
		CHECK_STREQ(diags, error_cases[i].want);
		free(diags);
	}
}

static void test_missing_file(void) {
	struct diags d = DIAGS_INIT;
	struct cluster *c = NULL;
	CHECK_INTEQ(cluster_load("no-such.yaml", &c, &d), -ENOENT);
	CHECK(c == NULL);
	CHECK_INTEQ(d.n, 1);
	CHECK_STREQ(d.v[0].msg, "cannot open 'no-such.yaml': No such file or directory");
	diags_release(&d);
}

static struct cluster *load_ok(const char *yaml) {
	struct cluster *c;
	char *diags;
	int r = load(yaml, &c, &diags);
	CHECK_INTEQ(r, 0);
	CHECK_STREQ(diags, "");
	free(diags);
	if (r < 0)
		exit(1);
	return c;
}

static void test_defaults(void) {
	struct cluster *c = load_ok("cluster_name: lab\n");
	CHECK_STREQ(c->name, "lab");
	CHECK_STREQ(c->domain, "cluster.local");
	CHECK_STREQ(c->pod_range_text, "10.2.0.0/16");
	CHECK_STREQ(c->service_range_text, "10.3.0.0/16");
	CHECK_INTEQ(c->pod_range.addr, 0x0a020000);
	CHECK_INTEQ(c->pod_range.prefix, 16);
	CHECK_INTEQ(c->service_range.addr, 0x0a030000);
	CHECK_STREQ(c->service_ip, "10.3.0.1");
	CHECK_STREQ(c->dns_ip, "10.3.0.2");
	CHECK_INTEQ(c->n_nodes, 0);
	CHECK_INTEQ(c->n_ssh_keys, 0);
	CHECK(c->values && c->values->kind == VALUE_MAP && c->values->n == 0);
	cluster_free(c);
}

static void test_custom(void) {
	struct cluster *c = load_ok(
		"cluster_name: gpu-lab.example\n"
		"domain: k8s.example\n"
		"pod_ip_range: 192.168.0.0/16\n"
		"service_cluster_ip_range: 172.16.0.0/24\n"
		"ssh_keys:\n"
		"  - ssh-rsa AAAAB3 core@lab\n"
		"  - ssh-ed25519 AAAAC3 ops\n"
		"  - ecdsa-sha2-nistp256 AAAAE2 x\n"
		"  - sk-ssh-ed25519@openssh.com AAAA y\n"
		"values:\n"
		"  basic_auth: secret,admin,1\n"
		"  image: { name: hyperkube, tag: v1.9 }\n"
		"  flags: [a, b]\n");
	CHECK_STREQ(c->name, "gpu-lab.example");
	CHECK_STREQ(c->domain, "k8s.example");
	CHECK_STREQ(c->pod_range_text, "192.168.0.0/16");
	CHECK_STREQ(c->service_range_text, "172.16.0.0/24");
	CHECK_STREQ(c->service_ip, "172.16.0.1");
	CHECK_STREQ(c->dns_ip, "172.16.0.2");
	CHECK_INTEQ(c->n_ssh_keys, 4);
	CHECK_STREQ(c->ssh_keys[1], "ssh-ed25519 AAAAC3 ops");
	/* values are a copy that outlives nothing but the cluster */
	const struct value *in_doc = value_map_get(c->doc, "values");
	CHECK(c->values != in_doc);
	CHECK_STREQ(value_lookup(c->values, "basic_auth")->text, "secret,admin,1");
	CHECK_STREQ(value_lookup(c->values, "image.tag")->text, "v1.9");
	CHECK_STREQ(value_lookup(c->values, "flags.1")->text, "b");
	CHECK_INTEQ(value_lookup(c->values, "image.tag")->loc.line, 12);
	CHECK(value_lookup(c->values, "flags.1") != value_lookup(in_doc, "flags.1"));
	cluster_free(c);
}

static void test_nodes(void) {
	/* Lists in a different order from the roles: nodes_of keeps file order per role. */
	struct cluster *c = load_ok(
		"cluster_name: lab\n"
		"workers:\n"
		"  - { hostname: w1, ip: 10.0.0.21, mac: '52:54:00:AB:CD:EF' }\n"
		"  - { hostname: w2, ip: 10.0.0.22, mac: 52-54-00-0a-0B-0c }\n"
		"  - { hostname: w3, ip: 10.0.0.23 }\n"
		"etcd:\n"
		"  - { hostname: e1, ip: 10.0.0.10 }\n"
		"masters:\n"
		"  - { hostname: m2, ip: 10.0.0.5 }\n"
		"  - { hostname: m1, ip: 10.0.0.4 }\n");
	CHECK_INTEQ(c->n_nodes, 6);
	const struct node *got[8];
	CHECK_INTEQ(cluster_nodes_of(c, ROLE_MASTER, got, 8), 2);
	CHECK_STREQ(got[0]->hostname, "m2");
	CHECK_STREQ(got[1]->hostname, "m1");
	CHECK_INTEQ(cluster_nodes_of(c, ROLE_ETCD, got, 8), 1);
	CHECK_STREQ(got[0]->ip, "10.0.0.10");
	CHECK_INTEQ(got[0]->role, ROLE_ETCD);
	CHECK_INTEQ(cluster_nodes_of(c, ROLE_WORKER, got, 8), 3);
	CHECK_STREQ(got[0]->hostname, "w1");
	CHECK_STREQ(got[2]->hostname, "w3");
	/* MACs are normalised to lowercase with colons */
	CHECK_STREQ(got[0]->mac, "52:54:00:ab:cd:ef");
	CHECK_STREQ(got[1]->mac, "52:54:00:0a:0b:0c");
	CHECK(got[2]->mac == NULL);
	/* Locations point at the values, in the cluster's own copy of its path. */
	CHECK_INTEQ(got[1]->hostname_loc.line, 4);
	CHECK_INTEQ(got[1]->hostname_loc.col, 17);
	CHECK_INTEQ(got[1]->ip_loc.col, 25);
	CHECK_INTEQ(got[1]->mac_loc.col, 41);
	CHECK(got[1]->ip_loc.file == c->path);
	/* A short array gets the count and as many as fit. */
	const struct node *two[2] = { NULL, NULL };
	CHECK_INTEQ(cluster_nodes_of(c, ROLE_WORKER, two, 2), 3);
	CHECK_STREQ(two[1]->hostname, "w2");
	CHECK_INTEQ(cluster_nodes_of(c, ROLE_WORKER, NULL, 0), 3);
	const struct node *e1 = cluster_find_node(c, "e1");
	CHECK(e1 && streq(e1->ip, "10.0.0.10"));
	CHECK(cluster_find_node(c, "E1") == NULL);
	cluster_free(c);
}

static void test_roles(void) {
	enum node_role r = _ROLE_MAX;
	CHECK_INTEQ(role_from_name("etcd", &r), 0);
	CHECK_INTEQ(r, ROLE_ETCD);
	CHECK_INTEQ(role_from_name("worker", &r), 0);
	CHECK_INTEQ(r, ROLE_WORKER);
	CHECK_INTEQ(role_from_name("Master", &r), -EINVAL);
	CHECK_INTEQ(role_from_name("workers", &r), -EINVAL);
	CHECK_STREQ(role_name(ROLE_MASTER), "master");
	CHECK_STREQ(role_name(_ROLE_MAX), "?");
}

static const struct { const char *text; int want; uint32_t addr; int prefix; } cidr_cases[] = {
	{ "10.2.0.0/16", 0, 0x0a020000, 16 },
	{ "0.0.0.0/0", 0, 0, 0 },
	{ "10.2.0.1/32", 0, 0x0a020001, 32 },
	{ "172.16.0.0/12", 0, 0xac100000, 12 },
	/* the prefix is read as decimal, leading zero or not */
	{ "10.0.0.0/08", 0, 0x0a000000, 8 },
	{ "10.2.0.5/16", -EDOM, 0, 0 },
	{ "10.3.0.0/15", -EDOM, 0, 0 },
	{ "10.2.0.0/15", 0, 0x0a020000, 15 },
	{ "1.0.0.0/0", -EDOM, 0, 0 },
	{ "10.2.0.0/33", -EINVAL, 0, 0 },
	{ "10.2.0.0/-1", -EINVAL, 0, 0 },
	{ "10.2.0.0/+8", -EINVAL, 0, 0 },
	{ "10.2.0.0/ 8", -EINVAL, 0, 0 },
	{ "10.2.0.0/8x", -EINVAL, 0, 0 },
	{ "10.2.0.0/16/2", -EINVAL, 0, 0 },
	{ "10.2.0.0/99999999999999999999", -EINVAL, 0, 0 },
	{ "10.2.0.0/", -EINVAL, 0, 0 },
	{ "10.2.0.0", -EINVAL, 0, 0 },
	{ "/16", -EINVAL, 0, 0 },
	{ "10.2.0/16", -EINVAL, 0, 0 },
	{ "010.2.0.0/16", -EINVAL, 0, 0 },
	{ "256.0.0.0/8", -EINVAL, 0, 0 },
	{ "banana", -EINVAL, 0, 0 },
	{ "", -EINVAL, 0, 0 },
};

static const struct { const char *a, *b; bool want; } overlap_cases[] = {
	{ "10.2.0.0/16", "10.3.0.0/16", false },
	{ "10.0.0.0/8", "10.3.0.0/16", true },
	{ "10.2.0.0/16", "10.2.0.0/16", true },
	{ "10.2.0.0/16", "10.2.255.0/24", true },
	{ "10.2.0.0/24", "10.2.1.0/24", false },
	{ "0.0.0.0/0", "192.168.1.0/24", true },
	{ "192.168.1.4/32", "192.168.1.4/30", true },
	{ "192.168.1.8/32", "192.168.1.4/30", false },
};

static void test_cidr(void) {
	for (size_t i = 0; i < ARRAY_SIZE(cidr_cases); i++) {
		struct cidr c = { 0xdeadbeef, -1 };
		int r = cidr_parse(cidr_cases[i].text, &c);
		if (r != cidr_cases[i].want)
			fprintf(stderr, "cidr case '%s'\n", cidr_cases[i].text);
		CHECK_INTEQ(r, cidr_cases[i].want);
		if (cidr_cases[i].want == 0) {
			CHECK_INTEQ(c.addr, cidr_cases[i].addr);
			CHECK_INTEQ(c.prefix, cidr_cases[i].prefix);
		} else {
			/* ret is only written on success */
			CHECK(c.addr == 0xdeadbeef && c.prefix == -1);
		}
	}
	for (size_t i = 0; i < ARRAY_SIZE(overlap_cases); i++) {
		struct cidr a, b;
		CHECK_INTEQ(cidr_parse(overlap_cases[i].a, &a), 0);
		CHECK_INTEQ(cidr_parse(overlap_cases[i].b, &b), 0);
		CHECK_INTEQ(cidr_overlaps(&a, &b), overlap_cases[i].want);
		CHECK_INTEQ(cidr_overlaps(&b, &a), overlap_cases[i].want);
	}
	struct cidr c;
	CHECK_INTEQ(cidr_parse("10.3.0.0/16", &c), 0);
	CHECK(cidr_contains(&c, 0x0a030000));
	CHECK(cidr_contains(&c, 0x0a03ffff));
	CHECK(!cidr_contains(&c, 0x0a040000));
	CHECK(!cidr_contains(&c, 0x0a02ffff));
}

static const struct { const char *text; int want; uint32_t addr; } ipv4_cases[] = {
	{ "10.0.0.1", 0, 0x0a000001 },
	{ "0.0.0.0", 0, 0 },
	{ "255.255.255.255", 0, 0xffffffff },
	/* inet_pton takes dotted quads only: no short, octal, hex or padded forms */
	{ "1.2.3", -EINVAL, 0 },
	{ "01.2.3.4", -EINVAL, 0 },
	{ "1.2.3.04", -EINVAL, 0 },
	{ "0x1.2.3.4", -EINVAL, 0 },
	{ "1.2.3.4.5", -EINVAL, 0 },
	{ "256.1.1.1", -EINVAL, 0 },
	{ " 1.2.3.4", -EINVAL, 0 },
	{ "1.2.3.4 ", -EINVAL, 0 },
	{ "1..2.3", -EINVAL, 0 },
	{ "16843009", -EINVAL, 0 },
	{ "", -EINVAL, 0 },
};

static void test_ipv4(void) {
	for (size_t i = 0; i < ARRAY_SIZE(ipv4_cases); i++) {
		uint32_t addr = 0;
		int r = ipv4_parse(ipv4_cases[i].text, &addr);
		if (r != ipv4_cases[i].want)
			fprintf(stderr, "ipv4 case '%s'\n", ipv4_cases[i].text);
		CHECK_INTEQ(r, ipv4_cases[i].want);
		if (r == 0)
			CHECK_INTEQ(addr, ipv4_cases[i].addr);
	}
	char *s = ipv4_format(0xac100001);
	CHECK_STREQ(s, "172.16.0.1");
	free(s);
	s = ipv4_format(0xffffffff);
	CHECK_STREQ(s, "255.255.255.255");
	free(s);
}

static const struct { const char *name; bool valid; } hostname_cases[] = {
	{ "m1", true },
	{ "master-1.lab", true },
	{ "1node", true },
	{ "a", true },
	{ "M1", false },
	{ "m_1", false },
	{ "-m1", false },
	{ "m1-", false },
	{ "a..b", false },
	{ ".a", false },
	{ "a.", false },
	{ "a-.b", false },
	{ "a.-b", false },
	{ "m 1", false },
	{ "", false },
};

static void test_hostnames(void) {
	for (size_t i = 0; i < ARRAY_SIZE(hostname_cases); i++) {
		if (hostname_valid(hostname_cases[i].name) != hostname_cases[i].valid)
			fprintf(stderr, "hostname case '%s'\n", hostname_cases[i].name);
		CHECK_INTEQ(hostname_valid(hostname_cases[i].name), hostname_cases[i].valid);
	}
	/* Labels up to 63 characters, names up to 253. */
	char label[80], name[300];
	memset(label, 'a', 63);
	label[63] = '\0';
	CHECK(hostname_valid(label));
	strcpy(label + 63, "b");
	CHECK(!hostname_valid(label));
	memset(name, 'a', 253);
	for (int i = 63; i < 253; i += 64)
		name[i] = '.';
	name[253] = '\0';
	CHECK(hostname_valid(name));
	strcpy(name + 253, "a");
	CHECK(!hostname_valid(name));
}

static const struct { const char *text, *want; } mac_cases[] = {
	{ "52:54:00:ab:cd:ef", "52:54:00:ab:cd:ef" },
	{ "52:54:00:AB:cD:EF", "52:54:00:ab:cd:ef" },
	{ "52-54-00-AB-CD-EF", "52:54:00:ab:cd:ef" },
	{ "52:54-00:ab:cd:ef", NULL },
	{ "52-54:00-ab-cd-ef", NULL },
	{ "5254.00ab.cdef", NULL },
	{ "525400abcdef", NULL },
	{ "52:54:00:ab:cd:e", NULL },
	{ "52:54:00:ab:cd:efa", NULL },
	{ "52::54:00:ab:cd:e", NULL },
	{ "g2:54:00:ab:cd:ef", NULL },
	{ "52 54 00 ab cd ef", NULL },
	{ "", NULL },
};

static void test_macs(void) {
	for (size_t i = 0; i < ARRAY_SIZE(mac_cases); i++) {
		char out[18] = "";
		int r = mac_normalize(mac_cases[i].text, out);
		if (mac_cases[i].want) {
			CHECK_INTEQ(r, 0);
			CHECK_STREQ(out, mac_cases[i].want);
		} else {
			if (r != -EINVAL)
				fprintf(stderr, "mac case '%s'\n", mac_cases[i].text);
			CHECK_INTEQ(r, -EINVAL);
		}
	}
}

int main(void) {
	char tmpl[] = "/tmp/test_cluster.XXXXXX";
	char *dir = mkdtemp(tmpl);
	char *cwd = getcwd(NULL, 0);
	if (!dir || !cwd || chdir(dir) < 0) {
		perror("test_cluster: temp dir");
		return 1;
	}
	test_errors();
	test_missing_file();
	test_defaults();
	test_custom();
	test_nodes();
	test_roles();
	test_cidr();
	test_ipv4();
	test_hostnames();
	test_macs();
	if (chdir(cwd) < 0)
		perror("test_cluster: chdir back");
	CHECK_INTEQ(rm_rf(dir), 0);
	free(cwd);
	return check_summary("test_cluster");
}
