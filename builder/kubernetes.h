/* What a Kubernetes version needs from the media: the images kubeadm and
 * the kubelet run (nothing may be pulled at boot), and the flags it no
 * longer accepts. One table per fact, from kubeadm's constants and the
 * Kubernetes changelogs of each release (see the notes in kubernetes.c). */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include "cluster.h"

struct k8s_version {
	int major, minor, patch;
};

/* The releases whose facts this table holds. kubeadm's v1beta4 config API
 * (what the templates write) exists since 1.31. */
#define K8S_OLDEST_MINOR 31
#define K8S_NEWEST_MINOR 34

/* The defaults of the cluster values (cluster.yaml). */
#define K8S_FLANNEL_REGISTRY "ghcr.io/flannel-io"
#define CLUSTER_DEFAULT_K8S "v1.34.2"
#define CLUSTER_DEFAULT_FLANNEL "v0.27.4"
#define CLUSTER_DEFAULT_FLANNEL_CNI "v1.7.1-flannel1"

/* "v1.34.2" or "1.34.2" -> version; -EINVAL when malformed, -ERANGE when
 * outside K8S_OLDEST_MINOR..K8S_NEWEST_MINOR. */
int k8s_version_parse(const char *text, struct k8s_version *ret);

/* The image references a node of `role` runs, as registry/name:tag.
 * Returns how many were written to `ret` (at most `max`; call with max 0
 * to count). `flannel` and `flannel_cni` are the CNI's image tags. */
size_t k8s_images_for_role(const struct k8s_version *v, enum node_role role, const char *flannel, const char *flannel_cni,
			   char **ret, size_t max);
/* One image of the version: "apiserver", "controller_manager", "scheduler",
 * "proxy", "coredns", "pause"; NULL for another name. Caller frees. */
char *k8s_image(const struct k8s_version *v, const char *which);

struct k8s_removed_flag {
	const char *flag;       /* "--allow-privileged" */
	const char *component;  /* kubelet, kube-apiserver, ... */
	int removed_in;         /* minor version that removed it */
	const char *instead;    /* what to use now */
};
/* The first flag in `text` (a rendered config) that `v` no longer accepts,
 * or NULL. A flag counts when it stands as a whole word ("--flag" followed
 * by '=', a blank, a quote or the end of a line). */
const struct k8s_removed_flag *k8s_find_removed_flag(const struct k8s_version *v, const char *text, size_t *ret_offset);
