/* DL Workspace config.yaml → scaffold: a table of files with every
 * diagnostic as "L:C: level: message", then what a good file merges to
 * beneath command-line values. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "check.h"
#include "diag.h"
#include "dlwsconfig.h"
#include "fsutil.h"
#include "scaffold.h"
#include "util.h"

#define PUB "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHVuaXQtdGVzdC1rZXk= unit@test"

static const struct { const char *yaml, *want; int r; } cases[] = {
	/* unused keys: warnings, the rest still read */
	{ "cluster_name : lab\nbasic_auth : pw,admin,admin\n",
	  "2:1: warning: ignoring 'basic_auth': the apiserver trusts client certificates only; Kubernetes 1.19 removed basic auth", 0 },
	{ "cluster_name : lab\nwebserver_docker_image : x/web:1\n",
	  "2:1: warning: ignoring 'webserver_docker_image' (dlws-mkimage has no use for it)", 0 },
	{ "cluster_name : lab\npxe_docker_image :\n", "", 0 },
	{ "cluster_name: lab\nmachines:\n  a1: { role: worker, private-ip: 10.0.0.5, sku: s }\n"
	  "  a2: { role: worker, private-ip: 10.0.0.6, sku: s }\n  nfs1: { role: nfs, private-ip: 10.0.0.7 }\n",
	  "3:45: warning: ignoring 'sku' of machines (dlws-mkimage has no use for it)\n"
	  "5:3: warning: skipping machine 'nfs1' of role 'nfs' (dlws-mkimage makes media for infrastructure and worker machines)", 0 },
	{ "cluster_name: lab\nkubernetes_docker_image: reg:5000/hyperkube:multigpu\n",
	  "2:26: warning: image tag 'multigpu' is not a Kubernetes release; the shipped kubernetes_version stays", 0 },
	{ "cluster_name: lab\nkubernetes_docker_image: quay.io/coreos/hyperkube:v1.5.2_coreos.0\n",
	  "2:26: warning: image tag 'v1.5.2_coreos.0' is a Kubernetes release dlws-mkimage does not know (1.31 to 1.34); "
	  "the shipped kubernetes_version stays", 0 },
	/* types */
	{ "- lab\n", "1:1: error: a DL Workspace config.yaml must be a map, not a list", -EINVAL },
	{ "cluster_name: [lab]\n", "1:15: error: 'cluster_name' must be a string, not a list", -EINVAL },
	{ "cluster_name: lab\nkubernetes_master_node: { a: 1 }\n",
	  "2:25: error: an entry of 'kubernetes_master_node' must be a string, not a map", -EINVAL },
	{ "cluster_name: lab\netcd_node: [[10.0.0.1]]\n",
	  "2:13: error: an entry of 'etcd_node' must be a string, not a list", -EINVAL },
	{ "cluster_name: lab\nmachines: [a]\n", "2:11: error: 'machines' must be a map, not a list", -EINVAL },
	{ "cluster_name: lab\nsshKeys: " PUB "\n", "2:10: error: 'sshKeys' must be a list, not a string", -EINVAL },
	/* values */
	{ "etcd_node_num: 1\n", "1:1: error: missing required key 'cluster_name' (or give --name)", -EINVAL },
	{ "cluster_name: Lab_1\n", "1:15: error: invalid cluster_name 'Lab_1' (lowercase letters, digits, '-' and '.')", -EINVAL },
	{ "cluster_name: lab\npod_ip_range: 10.2.0.0/33\n",
	  "2:15: error: 'pod_ip_range' is not a valid IPv4 CIDR: '10.2.0.0/33'", -EINVAL },
	{ "cluster_name: lab\nservice_cluster_ip_range : 10.3.0.1/16\n",
	  "2:28: error: 'service_cluster_ip_range' has host bits set in '10.3.0.1/16' (did you mean a network address?)", -EINVAL },
	{ "cluster_name: lab\nkubernetes_master_node: 10.0.0.300\n",
	  "2:25: error: invalid IPv4 address '10.0.0.300' in 'kubernetes_master_node'", -EINVAL },
	{ "cluster_name: lab\netcd_node: [m1.example.com]\n",
	  "2:13: error: 'm1.example.com' in 'etcd_node' has no IP address (nodes get fixed ones: give it with "
	  "--etcd m1.example.com=IP)", -EINVAL },
	{ "cluster_name: lab\netcd_node_num: three\n",
	  "2:16: error: 'etcd_node_num' must be a whole number of at least 1, not 'three'", -EINVAL },
	{ "cluster_name: lab\netcd_node_num: 3\netcd_node: [10.0.0.1]\n",
	  "2:16: error: 'etcd_node_num' is 3 but 'etcd_node' lists 1", -EINVAL },
	{ "cluster_name: lab\nmachines:\n  w1: { role: worker, private-ip: 10.0.0.5, mac: '9c:b6:54:8c:cf' }\n",
	  "3:50: error: malformed MAC address '9c:b6:54:8c:cf' (expected six hex pairs like 52:54:00:12:34:56)", -EINVAL },
	{ "cluster_name: lab\nmachines:\n  W1: { role: worker, private-ip: 10.0.0.5 }\n",
	  "3:3: error: invalid hostname 'W1' in 'machines' (lowercase letters, digits, '-' and '.')", -EINVAL },
	{ "cluster_name: lab\nssh_cert: ./nokey/id_rsa\n",
	  "2:11: error: cannot read './nokey/id_rsa.pub', the public key of ssh_cert: No such file or directory", -EINVAL },
	{ "cluster_name: lab\nssh_cert: ./priv\n",
	  "2:11: error: './priv.pub' is a private key (ssh_cert's public key is expected there)", -EINVAL },
	{ "cluster_name: lab\nsshKeys: [not-a-key]\n", "2:11: error: 'not-a-key...' does not look like an SSH public key", -EINVAL },
	{ "cluster_name: lab\nkubernetes_docker_image: 'reg/hyperkube: v1'\n",
	  "2:26: error: invalid image reference 'reg/hyperkube: v1' in 'kubernetes_docker_image'", -EINVAL },
	/* every problem in one run, warnings among them */
	{ "cluster_name: lab\nbasic_auth: x\npod_ip_range: banana\nkubernetes_master_node: [10.0.0.1, Bad_Name]\n",
	  "2:1: warning: ignoring 'basic_auth': the apiserver trusts client certificates only; Kubernetes 1.19 removed basic auth\n"
	  "3:15: error: 'pod_ip_range' is not a valid IPv4 CIDR: 'banana'\n"
	  "4:36: error: 'Bad_Name' in 'kubernetes_master_node' is neither an IPv4 address nor a hostname "
	  "(lowercase letters, digits, '-' and '.')", -EINVAL },
};

static char *format_diags(const struct diags *d) {
	static const char *const levels[] = { "error", "warning", "note" };
	struct buf b = BUF_INIT;
	for (size_t i = 0; i < d->n; i++)
		buf_printf(&b, "%s%d:%d: %s: %s", i ? "\n" : "", d->v[i].line, d->v[i].col, levels[d->v[i].level], d->v[i].msg);
	return b.data ? buf_steal(&b, NULL) : xstrdup("");
}

static void write_text(const char *path, const char *text) {
	struct diags d = DIAGS_INIT;
	if (write_file_atomic(path, text, strlen(text), 0644, &d) < 0) {
		diags_print(&d, stderr);
		exit(1);
	}
	diags_release(&d);
}

static int merge(const char *yaml, struct scaffold *s, char **ret_diags) {
	write_text("config.yaml", yaml);
	struct diags d = DIAGS_INIT;
	int r = dlwsconfig_merge("config.yaml", s, &d);
	for (size_t i = 0; i < d.n; i++)
		CHECK_STREQ(d.v[i].file, "config.yaml");
	*ret_diags = format_diags(&d);
	diags_release(&d);
	return r;
}

static void test_table(void) {
	write_text("priv.pub", "-----BEGIN OPENSSH PRIVATE KEY-----\n");
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct scaffold s = SCAFFOLD_INIT;
		char *diags;
		int r = merge(cases[i].yaml, &s, &diags);
		if (r != cases[i].r)
			fprintf(stderr, "case %zu:\n%s\n", i, cases[i].yaml);
		CHECK_INTEQ(r, cases[i].r);
		CHECK_STREQ(diags, cases[i].want);
		free(diags);
		scaffold_release(&s);
	}
}

/* The i-th node, or an empty one (NULL fields, which CHECK_STREQ reports). */
static const struct scaffold_node *node(const struct scaffold *s, size_t i) {
	static const struct scaffold_node none = { .role = _ROLE_MAX };
	return i < s->n_nodes ? &s->nodes[i] : &none;
}

/* A file beneath command-line values: the file fills what they leave
 * unset, its nodes come first with a same-named command-line node in its
 * place, and the command line's keys and nodes add to the file's. */
static void test_merge(void) {
	mkdir("deploy", 0755);
	write_text("deploy/id_rsa.pub", PUB "\n");
	struct scaffold s = SCAFFOLD_INIT;
	CHECK_INTEQ(scaffold_add_node(&s, ROLE_WORKER, "lab-etcd2=10.0.0.42"), 0);
	CHECK_INTEQ(scaffold_add_node(&s, ROLE_WORKER, "w9=10.0.0.99,52:54:00:00:00:09"), 0);
	strv_push(&s.ssh_keys, "ssh-rsa AAAAcommandline op@cli");
	char *diags;
	int r = merge("cluster_name : lab\n"
		      "etcd_node_num : 2\n"
		      "kubernetes_master_node : 10.0.0.10\n"
		      "etcd_node : [10.0.0.11, 10.0.0.12]\n"
		      "service_cluster_ip_range : 10.96.0.0/12\n"
		      "kubernetes_docker_image : mlcloudreg:5000/hyperkube:v1.33.5_coreos.0\n"
		      "ssh_cert : deploy/id_rsa\n"
		      "machines:\n"
		      "  m2: { role: infrastructure, private-ip: 10.0.0.13, mac: 9C-B6-54-8C-CF-8F }\n",
		      &s, &diags);
	CHECK_INTEQ(r, 0);
	CHECK_STREQ(diags, "");
	free(diags);
	CHECK_STREQ(s.name, "lab");
	CHECK(s.pod_range == NULL);
	CHECK_STREQ(s.service_range, "10.96.0.0/12");
	CHECK_STREQ(s.kubernetes_version, "v1.33.5");
	CHECK_INTEQ(s.ssh_keys.n, 2);
	if (s.ssh_keys.n == 2) {
		CHECK_STREQ(s.ssh_keys.v[0], PUB);
		CHECK_STREQ(s.ssh_keys.v[1], "ssh-rsa AAAAcommandline op@cli");
	}
	CHECK_INTEQ(s.n_nodes, 5);
	CHECK_STREQ(node(&s, 0)->hostname, "lab-master1");
	CHECK_STREQ(node(&s, 0)->ip, "10.0.0.10");
	CHECK_INTEQ(node(&s, 0)->role, ROLE_MASTER);
	CHECK_STREQ(node(&s, 1)->hostname, "lab-etcd1");
	/* The command line's node of that name took the file's place and role. */
	CHECK_STREQ(node(&s, 2)->hostname, "lab-etcd2");
	CHECK_STREQ(node(&s, 2)->ip, "10.0.0.42");
	CHECK_INTEQ(node(&s, 2)->role, ROLE_WORKER);
	CHECK_STREQ(node(&s, 3)->hostname, "m2");
	CHECK_STREQ(node(&s, 3)->mac, "9c:b6:54:8c:cf:8f");
	CHECK_INTEQ(node(&s, 3)->role, ROLE_MASTER);
	CHECK_STREQ(node(&s, 4)->hostname, "w9");
	CHECK_STREQ(node(&s, 4)->mac, "52:54:00:00:00:09");
	scaffold_release(&s);

	/* --name wins over cluster_name, and names the generated hostnames;
	 * a hostname-only entry takes its IP from the command line. */
	s = (struct scaffold)SCAFFOLD_INIT;
	s.name = xstrdup("newname");
	CHECK_INTEQ(scaffold_add_node(&s, ROLE_MASTER, "head.example.com=10.0.0.50"), 0);
	r = merge("cluster_name: old\nkubernetes_master_node: [head.example.com]\netcd_node: 10.0.0.51\n", &s, &diags);
	CHECK_INTEQ(r, 0);
	CHECK_STREQ(diags, "");
	free(diags);
	CHECK_STREQ(s.name, "newname");
	CHECK_INTEQ(s.n_nodes, 2);
	CHECK_STREQ(node(&s, 0)->hostname, "head.example.com");
	CHECK_STREQ(node(&s, 0)->ip, "10.0.0.50");
	CHECK_STREQ(node(&s, 1)->hostname, "newname-etcd1");
	scaffold_release(&s);

	/* Without --name the file must name the cluster; with it, it need not. */
	s = (struct scaffold)SCAFFOLD_INIT;
	s.name = xstrdup("given");
	r = merge("etcd_node: 10.0.0.51\n", &s, &diags);
	CHECK_INTEQ(r, 0);
	CHECK_STREQ(node(&s, 0)->hostname, "given-etcd1");
	free(diags);
	scaffold_release(&s);
}

static void test_missing_file(void) {
	struct scaffold s = SCAFFOLD_INIT;
	struct diags d = DIAGS_INIT;
	CHECK_INTEQ(dlwsconfig_merge("absent.yaml", &s, &d), -ENOENT);
	CHECK_INTEQ(d.n_errors, 1);
	diags_release(&d);
	scaffold_release(&s);
}

int main(void) {
	char dir[] = "/tmp/test_dlwsconfig.XXXXXX";
	if (!mkdtemp(dir) || chdir(dir) < 0) {
		perror("test_dlwsconfig: temp dir");
		return 1;
	}
	test_table();
	test_merge();
	test_missing_file();
	rm_rf(dir);
	return check_summary("test_dlwsconfig");
}
