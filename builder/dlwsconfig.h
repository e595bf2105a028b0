/* DL Workspace's config.yaml (src/ClusterBootstrap/config.yaml of the
 * original project) as the values of a new cluster: what `dlws-mkimage init
 * --from-dlws FILE` reads into a struct scaffold. */
#pragma once
#include "diag.h"
#include "scaffold.h"

/* Merges FILE beneath the values `s` already holds (the command line's),
 * which win:
 *  - cluster_name, pod_ip_range, service_cluster_ip_range and the
 *    Kubernetes version (the tag of kubernetes_docker_image, the hyperkube
 *    image) fill what `s` leaves NULL;
 *  - kubernetes_master_node, etcd_node (an IP, a hostname, or a list of
 *    them) and machines (hostname: { role: infrastructure | worker,
 *    private-ip, mac }) become nodes, before those of `s`; a node of `s`
 *    with the hostname of one of FILE's takes its place. An entry given by
 *    IP alone is named as DL Workspace named it, <cluster_name>-master1;
 *    one given by hostname alone needs its IP from `s`;
 *  - the public key beside ssh_cert (its ".pub") and sshKeys come before
 *    the keys of `s`.
 * A key this tool has no use for is a warning at its place; a wrong type
 * or a bad value an error at file:line:col. Returns 0, or -EINVAL (or the
 * read's -errno) with the errors in `d`; `s` may then hold part of FILE's
 * values (the caller releases it and writes nothing). */
int dlwsconfig_merge(const char *path, struct scaffold *s, struct diags *d);
