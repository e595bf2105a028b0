/* A new cluster's recipe tree (dlws-mkimage init): cluster.yaml generated
 * from the nodes, keys and boot server given, the recipes, templates and
 * overlays copied from the tool's shipped examples. */
#pragma once
#include <stddef.h>
#include "cluster.h"
#include "diag.h"
#include "util.h"

struct scaffold_node {
	char *hostname, *ip, *mac;      /* owned; mac may be NULL */
	enum node_role role;
};

struct scaffold {
	char *name;                     /* cluster_name, owned */
	struct scaffold_node *nodes;    /* owned, in the order given */
	size_t n_nodes, n_nodes_cap;
	struct strv ssh_keys;           /* public key lines */
	char *boot_server;              /* "IP/PREFIX" or NULL, owned */
	/* NULL: the shipped cluster's. Owned. */
	char *pod_range, *service_range, *kubernetes_version;
};
#define SCAFFOLD_INIT { 0 }
void scaffold_release(struct scaffold *s);

/* Adds a node from "HOST=IP[,MAC]"; -EINVAL when the text lacks that
 * shape (the values themselves are checked by cluster_load). */
int scaffold_add_node(struct scaffold *s, enum node_role role, const char *spec);

/* The shipped examples (a directory holding recipes/ and overlays/):
 * $DLWS_EXAMPLES_DIR, else <exe>/../share/dlws-mkimage/examples when
 * installed, else the checkout beside the binary. Never NULL; owned. */
char *scaffold_examples_dir(void);

/* cluster.yaml's text: the values of `s`, the rest (ranges, versions, free
 * values) from `defaults`, the shipped cluster. Owned by the caller. */
char *scaffold_cluster_yaml(const struct scaffold *s, const struct cluster *defaults);

/* Writes `dir`/recipes/{cluster.yaml, master.recipe, etcd.recipe,
 * worker.recipe, templates/} and `dir`/overlays/ from `examples`. `dir`
 * must be absent or empty. Everything goes to "<dir>.tmp" first and is
 * renamed at the end; the generated values are validated by cluster_load
 * before any copying, and a failure leaves nothing behind. The recipes'
 * paths to the base and vendored binaries ("../out/base/", "../vendor/")
 * are pointed at the examples' own, so the tree builds where it stands;
 * keys/ and out/ stay relative, beside `dir`/recipes. */
int scaffold_write(const struct scaffold *s, const char *examples, const char *dir, struct diags *d);
