/* Cluster-wide values (the cluster: file, in the spirit of DL Workspace's
 * config.yaml): names, IP ranges, nodes, SSH keys and free user values. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "diag.h"
#include "value.h"

struct cidr {
	uint32_t addr;  /* network address, host order */
	int prefix;
};

enum node_role { ROLE_MASTER, ROLE_ETCD, ROLE_WORKER, _ROLE_MAX };

struct node {
	char *hostname;
	char *ip;
	char *mac;              /* lowercase aa:bb:cc:dd:ee:ff, or NULL */
	enum node_role role;
	struct srcloc loc, hostname_loc, ip_loc, mac_loc;
};

/* The boot server that serves the cluster's PXE bundles (boot_server:):
 * dnsmasq for DHCP and the first stage over TFTP, nginx for the rest over
 * HTTP. Optional; a bundle's installs need it (they fetch the OS image). */
enum dhcp_mode { DHCP_PROXY, DHCP_FULL };
struct boot_server {
	bool set;
	char *address;          /* as nodes reach it, "192.168.255.1" */
	struct cidr network;    /* its network, from "address/prefix" */
	enum dhcp_mode dhcp;    /* proxy (default): another server hands out addresses */
	char *range_start, *range_end;  /* full: addresses for machines not listed */
	char *root;             /* where publish puts bundles; served: root/current */
	int http_port;          /* default 80 */
	struct srcloc loc;
};

struct cluster {
	char *path;             /* owned; the srclocs point into it */
	char *name;
	char *domain;           /* default cluster.local */
	char *pod_range_text, *service_range_text;
	struct cidr pod_range, service_range;
	char *service_ip;       /* first host of service range: the kubernetes service */
	char *dns_ip;           /* second host: cluster DNS */
	struct node *nodes;
	size_t n_nodes, n_nodes_cap;
	char **ssh_keys;
	size_t n_ssh_keys;
	char *kubernetes_version;       /* "v1.34.2": validated by k8s_version_parse */
	char *flannel_version;          /* the CNI's image tags */
	char *flannel_cni_plugin_version;
	struct boot_server boot_server;
	struct value *values;   /* free user values ("values:" map), owned */
	struct value *doc;      /* the whole document, owned */
};

const char *role_name(enum node_role r);
int role_from_name(const char *name, enum node_role *ret);

/* Loads and validates the file; every problem is reported before returning
 * -EINVAL. */
int cluster_load(const char *path, struct cluster **ret, struct diags *d);
void cluster_free(struct cluster *c);
/* Nodes of one role, in file order. */
size_t cluster_nodes_of(const struct cluster *c, enum node_role r, const struct node **ret, size_t max);
const struct node *cluster_find_node(const struct cluster *c, const char *hostname);

int cidr_parse(const char *text, struct cidr *ret);
bool cidr_overlaps(const struct cidr *a, const struct cidr *b);
bool cidr_contains(const struct cidr *c, uint32_t addr);
int ipv4_parse(const char *text, uint32_t *ret);
char *ipv4_format(uint32_t addr);
bool hostname_valid(const char *s);
/* Parses and normalises a MAC (":" or "-" separated) into lowercase "aa:bb:..". */
int mac_normalize(const char *text, char ret[18]);
