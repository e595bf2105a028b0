/* The cluster PKI, made with libcrypto, in the set kubeadm expects: three
 * CAs, the control plane's certificates, each identity's kubeconfig, the
 * service-account key pair and a bootstrap token for joining workers, kept
 * in one directory (0700).
 *
 * Files in the directory (keys, kubeconfigs and the token 0600; certificates
 * and the public key 0644):
 *   ca.pem ca-key.pem                          CA "kube-ca"
 *   etcd-ca.pem etcd-ca-key.pem                CA "etcd-ca": signs the etcd certificates only
 *   front-proxy-ca.pem front-proxy-ca-key.pem  CA "front-proxy-ca"
 *   apiserver.pem/-key.pem                     CN kube-apiserver (server)
 *   apiserver-kubelet-client.pem/-key.pem      CN kube-apiserver-kubelet-client, O kubeadm:cluster-admins
 *   apiserver-etcd-client.pem/-key.pem         CN kube-apiserver-etcd-client, O system:masters (etcd-ca)
 *   front-proxy-client.pem/-key.pem            CN front-proxy-client (front-proxy-ca)
 *   etcd-<host>-server.pem/-key.pem            per etcd node (etcd-ca)
 *   etcd-<host>-peer.pem/-key.pem              per etcd node (etcd-ca)
 *   controller-manager.pem/-key.pem            CN system:kube-controller-manager
 *   scheduler.pem/-key.pem                     CN system:kube-scheduler
 *   kube-proxy.pem/-key.pem                    CN system:kube-proxy
 *   admin.pem/-key.pem                         CN kubernetes-admin, O kubeadm:cluster-admins
 *   super-admin.pem/-key.pem                   CN kubernetes-super-admin, O system:masters
 *   kubelet-<host>.pem/-key.pem                per master and worker: CN system:node:<host>, O system:nodes
 *   service-account-key.pem service-account.pem   the service-account key pair (sa.key, sa.pub)
 *   admin.conf super-admin.conf controller-manager.conf scheduler.conf kube-proxy.conf
 *   kubelet-<host>.conf bootstrap-kubelet.conf    kubeconfigs, certificate and key embedded
 *   bootstrap-token                            "<id>.<secret>", made once
 *   bootstrap-token.yaml                       its kube-system Secret, for the first master
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <time.h>
#include "cluster.h"
#include "diag.h"
#include "util.h"

enum pki_key_type { PKI_KEY_RSA2048, PKI_KEY_ECDSA_P256 };

struct pki_config {
	const char *dir;
	enum pki_key_type key_type;
	time_t now;                     /* for validity decisions and notBefore */
	const struct cluster *cluster;
	const char *apiserver_url;      /* every kubeconfig's server; its host is an apiserver SAN */
	bool rotate_token;              /* pki_ensure makes a new bootstrap token */
	/* Where pki_ensure remembers the leaves it found sound (a file of the
	 * build cache; NULL: none): one whose certificate and key hold the
	 * bytes they held then, signed by the same CA certificate, for the
	 * same subject, SANs, usage and key type, is not parsed again; only
	 * its expiry date (remembered) is looked at. */
	const char *checked;
};

enum pki_action { PKI_CREATED, PKI_REUSED, PKI_REISSUED, PKI_REMOVED };

struct pki_event {
	char *name;             /* file name, e.g. "apiserver.pem", "admin.conf", "bootstrap-token" */
	enum pki_action action;
	char *reason;           /* REISSUED: "SANs changed", "expires in 12 days", "rotated", ...;
				 * REMOVED: why; else NULL */
};

struct pki_report {
	struct pki_event *v;
	size_t n, cap;
};
#define PKI_REPORT_INIT { 0 }
void pki_report_release(struct pki_report *r);

/* Creates what is missing, reuses what is valid, re-issues what changed.
 * A changed CA re-issues everything it signed; a kubeconfig is rewritten
 * when its certificate, key, CA, server or token changed. Returns 0 or
 * -errno. */
int pki_ensure(const struct pki_config *cfg, struct pki_report *ret_report, struct diags *d);
/* What pki_ensure would do, looked at without writing: 1 when it would
 * change nothing (the report it would give, every file reused), 0 when it
 * would create, re-issue, remove or narrow the mode of a file (it stops
 * there: no report), or -errno with the message pki_ensure would give. A
 * build looks first, and stages the directory (pki_stage_begin, which
 * links every file) only to change it. */
int pki_unchanged(const struct pki_config *cfg, struct pki_report *ret_report, struct diags *d);

/* A PKI directory being changed, invisible until committed: pki_ensure
 * runs on `tmp`, "<dir>.new" holding hard links of `dir`'s files (files
 * change by renames, so `dir` stays as it was), and the commit exchanges
 * the two directories in one rename. A build commits it with its outputs,
 * so a failed or killed build leaves the PKI it found, never a half-made
 * one (a CA without the certificates it signs). The caller holds the
 * directory's lock (lock.h): the name "<dir>.new" is then ours. */
struct pki_stage {
	char *dir, *tmp;
};
#define PKI_STAGE_INIT { NULL, NULL }
int pki_stage_begin(const char *dir, struct pki_stage *ret, struct diags *d);
/* Whether the report says pki_ensure changed anything (else there is
 * nothing to commit: abort). */
bool pki_report_changed(const struct pki_report *r);
int pki_stage_commit(struct pki_stage *s, struct diags *d);
void pki_stage_abort(struct pki_stage *s);

struct pki_cert_info {
	char *file;
	char *subject;          /* one line, e.g. "CN=kube-apiserver" */
	char *issuer;
	char **sans;            /* "DNS:kubernetes", "IP:10.3.0.1", ... */
	size_t n_sans;
	time_t not_after;
};
/* The first certificate in PEM text `pem` (from an output: untrusted);
 * `name` becomes ret->file and names it in messages. */
int pki_cert_info_parse(const char *pem, size_t len, const char *name, struct pki_cert_info *ret, struct diags *d);
/* Every certificate in `dir`, sorted by file name. */
int pki_list(const char *dir, struct pki_cert_info **ret, size_t *ret_n, struct diags *d);
void pki_cert_info_free(struct pki_cert_info *v, size_t n);

/* Where the bootstrap token reaches a node (see pki_items_for_node). */
#define PKI_NODE_BOOTSTRAP_KUBELET_CONF "/etc/kubernetes/bootstrap-kubelet.conf"
#define PKI_NODE_BOOTSTRAP_TOKEN_SECRET "/etc/kubernetes/dlws/bootstrap-token.yaml"

/* The bootstrap token's public part. The secret never leaves the module
 * but in the files that must carry it. */
struct pki_token_info {
	char *id;               /* the 6-character token id */
	struct strv used_in;    /* files of the PKI dir that carry the token */
};
int pki_token_info(const char *dir, struct pki_token_info *ret, struct diags *d);
void pki_token_info_release(struct pki_token_info *t);

/* Public values for templates: kubeadm's caCertHashes entry for the
 * cluster CA ("sha256:" + hex SHA-256 of its DER SubjectPublicKeyInfo),
 * and the bootstrap token's id. Each returns 0 or -errno (reported). */
int pki_ca_cert_hash(const char *dir, char **ret, struct diags *d);
int pki_bootstrap_token_id(const char *dir, char **ret, struct diags *d);

/* What one node receives, in kubeadm's layout: each item is a file of
 * `dir` and the path it gets on the node. `id` names it for templates
 * ("ca", "apiserver", "etcd_server", "kubelet_conf", ...); `part` is
 * "cert", "key", "pub" (a PEM public key) or "conf" (a kubeconfig or the
 * token Secret). Keys and confs are 0600, certificates and pubs 0644.
 * Masters get ca.key and front-proxy-ca.key only with include_ca_key
 * (a controller-manager that signs kubelet CSRs needs the CA key); no
 * other role ever gets a CA key. */
struct pki_item {
	char *id;
	char *part;
	char *src;              /* path in the PKI dir */
	char *dest;             /* absolute path on the node */
	unsigned mode;
};
int pki_items_for_node(const struct pki_config *cfg, const struct node *node, bool include_ca_key, struct pki_item **ret, size_t *ret_n, struct diags *d);
/* What a node of `role` that the cluster does not list gets (the role's
 * default boot entry): nothing of any node. A worker gets the CA
 * certificate, kube-proxy's kubeconfig and the bootstrap kubeconfig, so it
 * can join and get its kubelet certificate by TLS bootstrapping; a master
 * or etcd node only its CA certificate (it has no identity to run with). */
int pki_items_for_role(const struct pki_config *cfg, enum node_role role, struct pki_item **ret, size_t *ret_n, struct diags *d);
void pki_items_free(struct pki_item *v, size_t n);
