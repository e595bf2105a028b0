/* The template engine (template.c) on hostile templates, and what a build
 * does with the rendered text next (build.c's check_rendered): YAML,
 * coreos-cloudinit's schema with findings mapped back to template lines,
 * and removed Kubernetes flags.
 *
 * The context has the shape build_context gives templates (recipe, node,
 * cluster, pki, payload, values), with a multi-line PEM, lists of maps and
 * empty values, so the filters, loops and conditions all have something
 * to chew on. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "cloudconfig.h"
#include "diag.h"
#include "fuzz.h"
#include "kubernetes.h"
#include "template.h"
#include "util.h"
#include "value.h"
#include "yamldoc.h"

/* Smaller than the build's 4 MiB: nested loops over the context reach any
 * limit quickly, and the limit path is what matters, not its size. */
#define FUZZ_RENDER_LIMIT ((size_t)256 << 10)

static const char context_yaml[] =
	"recipe: { name: master, role: master }\n"
	"node: { hostname: dlws-master1, ip: 192.168.255.11, mac: '52:54:00:12:34:01', role: master, first_master: 'yes' }\n"
	"cluster:\n"
	"  name: dlws\n"
	"  domain: cluster.local\n"
	"  pod_ip_range: 10.2.0.0/16\n"
	"  service_ip_range: 10.3.0.0/16\n"
	"  service_ip: 10.3.0.1\n"
	"  dns_ip: 10.3.0.2\n"
	"  apiserver_url: https://192.168.255.11:6443\n"
	"  apiserver_port: '6443'\n"
	"  controlplane_endpoint: 192.168.255.11:6443\n"
	"  etcd_endpoints: https://192.168.255.21:2379\n"
	"  etcd_initial_cluster: dlws-etcd1=https://192.168.255.21:2380\n"
	"  kubernetes_version: v1.34.2\n"
	"  kubernetes_minor: '34'\n"
	"  ssh_keys: [ssh-ed25519 AAAAC3Nza one@host, ssh-rsa AAAAB3Nza two@host]\n"
	"  masters: [{ hostname: dlws-master1, ip: 192.168.255.11, mac: '52:54:00:12:34:01' }]\n"
	"  etcd: [{ hostname: dlws-etcd1, ip: 192.168.255.21, mac: '' }]\n"
	"  workers:\n"
	"    - { hostname: dlws-worker1, ip: 192.168.255.31, mac: '' }\n"
	"    - { hostname: dlws-worker2, ip: 192.168.255.32, mac: '' }\n"
	"  images: { apiserver: registry.k8s.io/kube-apiserver:v1.34.2, pause: registry.k8s.io/pause:3.10.1,\n"
	"            flannel: ghcr.io/flannel-io/flannel:v0.27.4 }\n"
	"pki:\n"
	"  ca: { cert: /etc/kubernetes/pki/ca.crt, hash: 'sha256:0123abcd',\n"
	"        cert_pem: \"-----BEGIN CERTIFICATE-----\\nMIIB\\n-----END CERTIFICATE-----\\n\" }\n"
	"  kubelet: { cert: /etc/kubernetes/pki/kubelet.crt, key: /etc/kubernetes/pki/kubelet.key,\n"
	"             conf: /etc/kubernetes/kubelet.conf }\n"
	"  bootstrap_token: { id: abcdef }\n"
	"payload: { dir: /usr/share/oem/dlws, rootfs: /usr/share/oem/dlws/rootfs, kubelet: '', kubeadm: '',\n"
	"           kubectl: /opt/bin/kubectl, kubelet_unit: 'yes' }\n"
	"values: { x: 'a \"quoted\" value', multi: \"one\\ntwo\\n\", empty: '', zero: 0, flag: false,\n"
	"          list: [a, b, c], nested: [[a, b], []] }\n";

static struct value *ctx;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
	struct diags d = DIAGS_INIT;
	if (yaml_parse("context", context_yaml, strlen(context_yaml), &ctx, &d) < 0) {
		diags_print(&d, stderr);
		abort();
	}
	if (getenv("FUZZ_VERBOSE"))
		diags_print(&d, stderr);
	diags_release(&d);
	return 0;
}

/* As build.c's check_rendered and check_removed_flags. */
static void check_rendered(const char *text, size_t len, const struct template_map *map, struct diags *d) {
	struct diags yd = DIAGS_INIT;
	struct value *doc = NULL;
	if (cloudconfig_is_header(text, len)) {
		if (yaml_parse("rendered", text, len, &doc, &yd) == 0) {
			struct diags cd = DIAGS_INIT;
			(void)cloudconfig_check(doc, &cd);
			template_map_diags(map, &cd, d);
			diags_release(&cd);
		}
	} else {
		(void)yaml_check_stream("rendered", text, len, &yd);
	}
	value_free(doc);
	diags_release(&yd);

	struct k8s_version kv;
	size_t off = 0;
	if (k8s_version_parse("v1.34.2", &kv) == 0 && k8s_find_removed_flag(&kv, text, &off)) {
		if (off > len)
			abort();
	}
	/* Every rendered line, and one past the end, maps somewhere. */
	int lines = 1;
	for (size_t i = 0; i < len; i++)
		lines += text[i] == '\n';
	for (int line = 1; line <= lines + 1; line++)
		(void)template_map_loc(map, line, line % 3);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	struct buf out = { .limit = FUZZ_RENDER_LIMIT };
	struct diags d = DIAGS_INIT;
	struct template_map *map = NULL;
	if (template_render_map("fuzz.tpl", (const char *)data, size, ctx, &out, &map, &d) == 0) {
		check_rendered(out.data ? out.data : "", out.len, map, &d);
		template_map_free(map);
	}
	/* Each diagnostic must carry a place the user can find. */
	for (size_t i = 0; i < d.n; i++)
		if (!d.v[i].msg)
			abort();
	diags_release(&d);
	buf_release(&out);
	return 0;
}
