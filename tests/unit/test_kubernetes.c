/* What a Kubernetes release needs: versions the tool knows, the images
 * each role runs, and the flags a release no longer accepts. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "kubernetes.h"
#include "util.h"

static void test_versions(void) {
	static const struct {
		const char *text;
		int want;
		int minor, patch;
	} cases[] = {
		{ "v1.34.2", 0, 34, 2 },
		{ "1.34.2", 0, 34, 2 },
		{ "v1.31.0", 0, 31, 0 },
		{ "v1.30.9", -ERANGE, 0, 0 },   /* before kubeadm's v1beta4 */
		{ "v1.35.0", -ERANGE, 0, 0 },   /* newer than the table knows */
		{ "v2.34.0", -ERANGE, 0, 0 },
		{ "v1.34", -EINVAL, 0, 0 },
		{ "v1.34.2-rc.1", -EINVAL, 0, 0 },
		{ "latest", -EINVAL, 0, 0 },
		{ "", -EINVAL, 0, 0 },
		{ "vv1.34.2", -EINVAL, 0, 0 },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct k8s_version v = { 0 };
		int r = k8s_version_parse(cases[i].text, &v);
		CHECK_INTEQ(r, cases[i].want);
		if (r == 0) {
			CHECK_INTEQ(v.minor, cases[i].minor);
			CHECK_INTEQ(v.patch, cases[i].patch);
		}
	}
}

static char *joined_images(const char *version, enum node_role role) {
	struct k8s_version v;
	if (k8s_version_parse(version, &v) < 0)
		return NULL;
	size_t n = k8s_images_for_role(&v, role, "v0.27.4", "v1.7.1-flannel1", NULL, 0);
	char **list = xcalloc(n + 1, sizeof(*list));
	CHECK_INTEQ(k8s_images_for_role(&v, role, "v0.27.4", "v1.7.1-flannel1", list, n), n);
	size_t len = 1;
	for (size_t i = 0; i < n; i++)
		len += strlen(list[i]) + 1;
	char *out = xcalloc(len, 1);
	for (size_t i = 0; i < n; i++) {
		strcat(out, list[i]);
		strcat(out, i + 1 < n ? " " : "");
		free(list[i]);
	}
	free(list);
	return out;
}

static void test_images(void) {
	char *m = joined_images("v1.34.2", ROLE_MASTER);
	CHECK_STREQ(m, "registry.k8s.io/kube-apiserver:v1.34.2 registry.k8s.io/kube-controller-manager:v1.34.2 "
		       "registry.k8s.io/kube-scheduler:v1.34.2 registry.k8s.io/kube-proxy:v1.34.2 "
		       "registry.k8s.io/coredns/coredns:v1.12.1 registry.k8s.io/pause:3.10.1 "
		       "ghcr.io/flannel-io/flannel:v0.27.4 ghcr.io/flannel-io/flannel-cni-plugin:v1.7.1-flannel1");
	free(m);
	/* pause 3.10 up to 1.33, 3.10.1 from 1.34 (FLATCAR.md) */
	char *w = joined_images("v1.33.5", ROLE_WORKER);
	CHECK_STREQ(w, "registry.k8s.io/kube-proxy:v1.33.5 registry.k8s.io/coredns/coredns:v1.12.0 registry.k8s.io/pause:3.10 "
		       "ghcr.io/flannel-io/flannel:v0.27.4 ghcr.io/flannel-io/flannel-cni-plugin:v1.7.1-flannel1");
	free(w);
	/* etcd runs from the payload: no image */
	char *e = joined_images("v1.34.2", ROLE_ETCD);
	CHECK_STREQ(e, "");
	free(e);
}

static void test_removed_flags(void) {
	struct k8s_version v134, v123;
	k8s_version_parse("v1.34.2", &v134);
	v123 = (struct k8s_version){ 1, 23, 0 }; /* not parseable as a cluster version, but the table is by minor */
	static const struct {
		const char *text;
		const char *want_flag;  /* NULL: none */
		size_t offset;
	} cases[] = {
		{ "KUBELET_OPTS=\"--network-plugin=cni --allow-privileged=true\"", "--network-plugin", 14 },
		{ "  - --allow-privileged\n", "--allow-privileged", 4 },
		{ "args: [\"--container-runtime\", \"remote\"]", "--container-runtime", 8 },
		{ "--container-runtime-endpoint=unix:///run/containerd/containerd.sock", NULL, 0 },
		{ "--pod-infra-container-image-x=1", NULL, 0 },
		{ "x--allow-privileged", NULL, 0 },
		{ "nothing here", NULL, 0 },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		size_t off = 999;
		const struct k8s_removed_flag *f = k8s_find_removed_flag(&v134, cases[i].text, &off);
		if (!cases[i].want_flag) {
			CHECK(f == NULL);
			continue;
		}
		CHECK(f != NULL);
		if (f) {
			CHECK_STREQ(f->flag, cases[i].want_flag);
			CHECK_INTEQ(off, cases[i].offset);
		}
	}
	/* --network-plugin went in 1.24: a 1.23 kubelet still takes it. */
	CHECK(k8s_find_removed_flag(&v123, "--network-plugin=cni", NULL) == NULL);
	/* --pod-infra-container-image goes in 1.35, not before. */
	CHECK(k8s_find_removed_flag(&v134, "--pod-infra-container-image=pause", NULL) == NULL);
}

int main(void) {
	test_versions();
	test_images();
	test_removed_flags();
	return check_summary("test_kubernetes");
}
