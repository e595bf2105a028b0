/* The cluster PKI, made with libcrypto: the CA, apiserver, etcd, kubelet
 * (per node), admin and service-account keys, kept in one directory.
 *
 * Files in the directory (keys are 0600, certificates 0644):
 *   ca.pem ca-key.pem                      CA "kube-ca"
 *   apiserver.pem apiserver-key.pem        CN kube-apiserver
 *   apiserver-etcd-client.pem/-key.pem     apiserver's client cert for etcd
 *   etcd-<host>-server.pem/-key.pem        per etcd node
 *   etcd-<host>-peer.pem/-key.pem          per etcd node
 *   kubelet-<host>.pem/-key.pem            per node: CN system:node:<host>, O system:nodes
 *   admin.pem admin-key.pem admin.kubeconfig   O system:masters
 *   service-account-key.pem service-account.pem
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <time.h>
#include "cluster.h"
#include "diag.h"

enum pki_key_type { PKI_KEY_RSA2048, PKI_KEY_ECDSA_P256 };

struct pki_config {
	const char *dir;
	enum pki_key_type key_type;
	time_t now;                     /* for validity decisions and notBefore */
	const struct cluster *cluster;
	const char *apiserver_url;      /* written into admin.kubeconfig */
};

enum pki_action { PKI_CREATED, PKI_REUSED, PKI_REISSUED };

struct pki_event {
	char *name;             /* file name of the certificate, e.g. "apiserver.pem" */
	enum pki_action action;
	char *reason;           /* for REISSUED: "SANs changed", "expires in 12 days", ...; else NULL */
};

struct pki_report {
	struct pki_event *v;
	size_t n, cap;
};
#define PKI_REPORT_INIT { 0 }
void pki_report_release(struct pki_report *r);

/* Creates what is missing, reuses what is valid, re-issues what changed.
 * A changed CA re-issues everything it signed. Returns 0 or -errno. */
int pki_ensure(const struct pki_config *cfg, struct pki_report *ret_report, struct diags *d);

struct pki_cert_info {
	char *file;
	char *subject;          /* one line, e.g. "CN=kube-apiserver" */
	char *issuer;
	char **sans;            /* "DNS:kubernetes", "IP:10.3.0.1", ... */
	size_t n_sans;
	time_t not_after;
};
/* Every certificate in `dir`, sorted by file name. */
int pki_list(const char *dir, struct pki_cert_info **ret, size_t *ret_n, struct diags *d);
void pki_cert_info_free(struct pki_cert_info *v, size_t n);

/* What one node of a role receives: each item is a file of `dir` and the
 * path it gets on the node. `id` names it for templates ("ca", "kubelet",
 * "apiserver", "etcd_server", ...); `part` is "cert" or "key". The CA key
 * is included only when include_ca_key is true. */
struct pki_item {
	char *id;
	char *part;
	char *src;              /* path in the PKI dir */
	char *dest;             /* absolute path on the node */
	unsigned mode;
};
int pki_items_for_node(const struct pki_config *cfg, const struct node *node, bool include_ca_key, struct pki_item **ret, size_t *ret_n, struct diags *d);
void pki_items_free(struct pki_item *v, size_t n);
