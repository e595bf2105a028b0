#include "kubernetes.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "util.h"

/* Image tags kubeadm uses for each minor release (kubeadm's
 * cmd/kubeadm/app/constants: PauseVersion, CoreDNSVersion), and the pause
 * tag the kubelet of that release expects. */
static const struct {
	int minor;
	const char *pause, *coredns;
} releases[] = {
	{ 31, "3.10", "v1.11.3" },
	{ 32, "3.10", "v1.11.3" },
	{ 33, "3.10", "v1.12.0" },
	{ 34, "3.10.1", "v1.12.1" },
};

#define REGISTRY "registry.k8s.io"

int k8s_version_parse(const char *text, struct k8s_version *ret) {
	struct k8s_version v;
	int n = 0;
	if (!text)
		return -EINVAL;
	if (*text == 'v')
		text++;
	if (sscanf(text, "%d.%d.%d%n", &v.major, &v.minor, &v.patch, &n) != 3 || text[n] != '\0' || !isdigit((unsigned char)*text))
		return -EINVAL;
	if (v.major != 1 || v.minor < K8S_OLDEST_MINOR || v.minor > K8S_NEWEST_MINOR || v.patch < 0)
		return -ERANGE;
	*ret = v;
	return 0;
}

static size_t release_index(const struct k8s_version *v) {
	for (size_t i = 0; i < ARRAY_SIZE(releases); i++)
		if (releases[i].minor == v->minor)
			return i;
	return ARRAY_SIZE(releases) - 1; /* k8s_version_parse keeps minor in range */
}

char *k8s_image(const struct k8s_version *v, const char *which) {
	const char *tag_pause = releases[release_index(v)].pause;
	const char *tag_coredns = releases[release_index(v)].coredns;
	if (streq(which, "apiserver"))
		return xasprintf(REGISTRY "/kube-apiserver:v%d.%d.%d", v->major, v->minor, v->patch);
	if (streq(which, "controller_manager"))
		return xasprintf(REGISTRY "/kube-controller-manager:v%d.%d.%d", v->major, v->minor, v->patch);
	if (streq(which, "scheduler"))
		return xasprintf(REGISTRY "/kube-scheduler:v%d.%d.%d", v->major, v->minor, v->patch);
	if (streq(which, "proxy"))
		return xasprintf(REGISTRY "/kube-proxy:v%d.%d.%d", v->major, v->minor, v->patch);
	if (streq(which, "coredns"))
		return xasprintf(REGISTRY "/coredns/coredns:%s", tag_coredns);
	if (streq(which, "pause"))
		return xasprintf(REGISTRY "/pause:%s", tag_pause);
	return NULL;
}

size_t k8s_images_for_role(const struct k8s_version *v, enum node_role role, const char *flannel, const char *flannel_cni,
			   char **ret, size_t max) {
	/* etcd nodes run etcd from the payload, not in a container. */
	static const char *const master[] = { "apiserver", "controller_manager", "scheduler", "proxy", "coredns", "pause" };
	/* CoreDNS may be scheduled on any node. */
	static const char *const worker[] = { "proxy", "coredns", "pause" };
	const char *const *list = role == ROLE_MASTER ? master : worker;
	size_t n_list = role == ROLE_MASTER ? ARRAY_SIZE(master) : ARRAY_SIZE(worker);
	if (role == ROLE_ETCD)
		return 0;
	size_t n = 0;
	for (size_t i = 0; i < n_list; i++, n++)
		if (n < max)
			ret[n] = k8s_image(v, list[i]);
	/* The CNI: flannel's daemon and its CNI plugin installer. */
	if (n < max)
		ret[n] = xasprintf(K8S_FLANNEL_REGISTRY "/flannel:%s", flannel);
	n++;
	if (n < max)
		ret[n] = xasprintf(K8S_FLANNEL_REGISTRY "/flannel-cni-plugin:%s", flannel_cni);
	n++;
	return n;
}

/* From the changelogs of each release (kubernetes/kubernetes CHANGELOG-1.x.md,
 * "Deprecation"/"Removal"): the flags a current kubelet or control plane
 * refuses to start with. */
static const struct k8s_removed_flag removed_flags[] = {
	{ "--allow-privileged", "kubelet", 15, "remove it (privileged pods are allowed by default; restrict them with Pod Security)" },
	{ "--network-plugin", "kubelet", 24, "remove it (the container runtime sets up CNI)" },
	{ "--cni-bin-dir", "kubelet", 24, "configure CNI in the container runtime" },
	{ "--cni-conf-dir", "kubelet", 24, "configure CNI in the container runtime" },
	{ "--docker-endpoint", "kubelet", 24, "containerRuntimeEndpoint in the KubeletConfiguration" },
	{ "--image-pull-progress-deadline", "kubelet", 24, "remove it (dockershim is gone)" },
	{ "--experimental-check-node-capabilities-before-mount", "kubelet", 24, "remove it" },
	{ "--container-runtime", "kubelet", 27, "remove it (remote is the only runtime)" },
	{ "--master-service-namespace", "kube-apiserver", 27, "remove it" },
	{ "--pod-infra-container-image", "kubelet", 35, "the sandbox image in containerd's config" },
	{ "--insecure-port", "kube-apiserver", 24, "remove it (there is no insecure port)" },
	{ "--insecure-bind-address", "kube-apiserver", 24, "remove it" },
	{ "--port", "kube-controller-manager", 24, "remove it (only the secure port serves)" },
	{ "--address", "kube-controller-manager", 24, "--bind-address" },
	{ "--kubelet-https", "kube-apiserver", 22, "remove it" },
	{ "--deployment-controller-sync-period", "kube-controller-manager", 24, "remove it" },
	{ "--service-account-api-audiences", "kube-apiserver", 24, "--api-audiences" },
	{ "--logtostderr", "all", 26, "remove it (logs go to stderr)" },
	{ "--log-dir", "all", 26, "remove it (logs go to stderr, the journal keeps them)" },
	{ "--log-file", "all", 26, "remove it (logs go to stderr, the journal keeps them)" },
	{ "--alsologtostderr", "all", 26, "remove it" },
	{ "--keep-terminated-pod-volumes", "kubelet", 31, "remove it" },
};

static bool flag_at(const char *text, const char *p, const char *flag) {
	size_t n = strlen(flag);
	if (p > text && !(isspace((unsigned char)p[-1]) || p[-1] == '"' || p[-1] == '\'' || p[-1] == '[' || p[-1] == ','))
		return false;
	char after = p[n];
	return after == '\0' || after == '=' || isspace((unsigned char)after) || after == '"' || after == '\'' || after == ',' ||
	       after == ']';
}

const struct k8s_removed_flag *k8s_find_removed_flag(const struct k8s_version *v, const char *text, size_t *ret_offset) {
	const struct k8s_removed_flag *best = NULL;
	size_t best_off = 0;
	for (size_t i = 0; i < ARRAY_SIZE(removed_flags); i++) {
		const struct k8s_removed_flag *f = &removed_flags[i];
		if (v->minor < f->removed_in)
			continue;
		for (const char *p = strstr(text, f->flag); p; p = strstr(p + 1, f->flag)) {
			if (!flag_at(text, p, f->flag))
				continue;
			size_t off = (size_t)(p - text);
			if (!best || off < best_off) {
				best = f;
				best_off = off;
			}
			break;
		}
	}
	if (best && ret_offset)
		*ret_offset = best_off;
	return best;
}
