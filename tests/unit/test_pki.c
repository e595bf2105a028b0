/* pki: create, reuse, re-issue with reasons (one CA at a time, the token
 * only when rotated), what each node and each role's default entry gets,
 * the CA hash, listing.
 *
 * With arguments (`test_pki DIR [rsa|ecdsa]`) it only makes the fixed
 * cluster's PKI in DIR and prints its report and "ca-hash sha256:...", for
 * tests/e2e/test_pki_openssl.sh to check with the openssl CLI and kubectl. */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "fsutil.h"
#include "pki.h"
#include "util.h"

#define DAY 86400

struct fixture {
	struct node nodes[4];
	struct cluster cluster;
	struct pki_config cfg;
};

/* With a path, every test runs with pki_config.checked set: each must
 * come out the same when sound leaves are remembered (main runs them all
 * twice). */
static const char *checked_path;

static void fixture_init(struct fixture *f, const char *dir, enum pki_key_type type) {
	memset(f, 0, sizeof(*f));
	f->nodes[0] = (struct node){ .hostname = "m1", .ip = "10.0.0.4", .role = ROLE_MASTER };
	f->nodes[1] = (struct node){ .hostname = "e1", .ip = "10.0.0.10", .role = ROLE_ETCD };
	f->nodes[2] = (struct node){ .hostname = "w1", .ip = "10.0.0.21", .role = ROLE_WORKER };
	f->nodes[3] = (struct node){ .hostname = "w2", .ip = "10.0.0.22", .role = ROLE_WORKER };
	f->cluster = (struct cluster){
		.name = "test-cluster",
		.domain = "cluster.local",
		.service_ip = "10.3.0.1",
		.dns_ip = "10.3.0.2",
		.nodes = f->nodes,
		.n_nodes = 4,
	};
	f->cfg = (struct pki_config){
		.dir = dir,
		.key_type = type,
		.now = time(NULL),
		.cluster = &f->cluster,
		.apiserver_url = "https://10.0.0.4:6443",
		.checked = checked_path,
	};
}


static const struct pki_event *event(const struct pki_report *r, const char *name) {
	for (size_t i = 0; i < r->n; i++)
		if (streq(r->v[i].name, name))
			return &r->v[i];
	return NULL;
}

static int action_of(const struct pki_report *r, const char *name) {
	const struct pki_event *e = event(r, name);
	return e ? (int)e->action : -1;
}

static size_t count_action(const struct pki_report *r, enum pki_action a) {
	size_t n = 0;
	for (size_t i = 0; i < r->n; i++)
		n += r->v[i].action == a;
	return n;
}

static char *path_in(const char *dir, const char *name) {
	return path_join(dir, name);
}

static unsigned file_mode(const char *dir, const char *name) {
	_cleanup_free_ char *p = path_in(dir, name);
	struct stat st;
	return stat(p, &st) < 0 ? 0 : (unsigned)(st.st_mode & 07777);
}

static ino_t file_inode(const char *dir, const char *name) {
	_cleanup_free_ char *p = path_in(dir, name);
	struct stat st;
	return stat(p, &st) < 0 ? 0 : st.st_ino;
}

static char *slurp(const char *dir, const char *name) {
	_cleanup_free_ char *p = path_in(dir, name);
	struct diags d = DIAGS_INIT;
	char *data = NULL;
	size_t len;
	if (read_file(p, 1 << 20, &data, &len, &d) < 0)
		data = NULL;
	diags_release(&d);
	return data;
}

static void copy_pki_file(const char *dir, const char *from, const char *to) {
	_cleanup_free_ char *data = slurp(dir, from);
	_cleanup_free_ char *p = path_in(dir, to);
	struct diags d = DIAGS_INIT;
	CHECK(data && write_file_atomic(p, data, strlen(data), 0600, &d) == 0);
	diags_release(&d);
}

static bool same_file(const char *dir, const char *a, const char *b) {
	_cleanup_free_ char *da = slurp(dir, a);
	_cleanup_free_ char *db = slurp(dir, b);
	return da && db && streq(da, db);
}

/* Every file of the directory with its content, sorted by name. */
struct snapshot {
	struct strv names, contents, modes;
};

static void snapshot_take(const char *dir, struct snapshot *s) {
	*s = (struct snapshot){ STRV_INIT, STRV_INIT, STRV_INIT };
	DIR *dd = opendir(dir);
	if (!dd)
		return;
	for (struct dirent *de; (de = readdir(dd));)
		if (de->d_name[0] != '.')
			strv_push(&s->names, de->d_name);
	closedir(dd);
	strv_sort(&s->names);
	for (size_t i = 0; i < s->names.n; i++) {
		char *c = slurp(dir, s->names.v[i]);
		strv_push_take(&s->contents, c ? c : xstrdup("(unreadable)"));
		strv_push_take(&s->modes, xasprintf("%o", file_mode(dir, s->names.v[i])));
	}
}

static void snapshot_release(struct snapshot *s) {
	strv_release(&s->names);
	strv_release(&s->contents);
	strv_release(&s->modes);
}

/* The same files, bytes and modes. */
static bool snapshot_equal(const struct snapshot *a, const struct snapshot *b) {
	if (a->names.n != b->names.n)
		return false;
	for (size_t i = 0; i < a->names.n; i++)
		if (!streq(a->names.v[i], b->names.v[i]) || !streq(a->contents.v[i], b->contents.v[i]) ||
		    !streq(a->modes.v[i], b->modes.v[i]))
			return false;
	return true;
}

/* Names of the files whose content differs between two snapshots. */
static void snapshot_diff(const struct snapshot *a, const struct snapshot *b, struct strv *ret) {
	for (size_t i = 0; i < a->names.n; i++) {
		size_t k = 0;
		while (k < b->names.n && !streq(a->names.v[i], b->names.v[k]))
			k++;
		if (k == b->names.n || !streq(a->contents.v[i], b->contents.v[k]))
			strv_push(ret, a->names.v[i]);
	}
	for (size_t k = 0; k < b->names.n; k++)
		if (!strv_contains(&a->names, b->names.v[k]))
			strv_push(ret, b->names.v[k]);
}

/* pki_ensure, after pki_unchanged looked at the same directory: the look
 * writes nothing, fails as the run does, and says "unchanged" exactly
 * when the run then leaves every file's bytes and mode as they were,
 * with the report the run gives. Every test below goes through here. */
static int ensure(const struct pki_config *cfg, struct pki_report *report) {
	struct snapshot before, looked, after;
	struct pki_report seen = PKI_REPORT_INIT;
	struct diags ld = DIAGS_INIT, d = DIAGS_INIT;
	snapshot_take(cfg->dir, &before);
	int u = pki_unchanged(cfg, &seen, &ld);
	snapshot_take(cfg->dir, &looked);
	int r = pki_ensure(cfg, report, &d);
	snapshot_take(cfg->dir, &after);
	if (r < 0)
		diags_print(&d, stderr);

	CHECK(snapshot_equal(&before, &looked));
	if (r < 0) {
		CHECK_INTEQ(u, r);
		CHECK(ld.n && d.n && streq(ld.v[0].msg, d.v[0].msg));
	} else {
		CHECK_INTEQ(u, snapshot_equal(&before, &after) ? 1 : 0);
	}
	if (u == 1 && r == 0) {
		CHECK_INTEQ(seen.n, report->n);
		for (size_t i = 0; i < seen.n && i < report->n; i++)
			CHECK(streq(seen.v[i].name, report->v[i].name) && seen.v[i].action == report->v[i].action);
	}
	pki_report_release(&seen);
	snapshot_release(&before);
	snapshot_release(&looked);
	snapshot_release(&after);
	diags_release(&ld);
	diags_release(&d);
	return r;
}

static const char *const expected_order[] = {
	"ca.pem", "etcd-ca.pem", "front-proxy-ca.pem",
	"apiserver.pem", "apiserver-kubelet-client.pem", "apiserver-etcd-client.pem", "front-proxy-client.pem",
	"etcd-e1-server.pem", "etcd-e1-peer.pem",
	"controller-manager.pem", "scheduler.pem", "kube-proxy.pem", "admin.pem", "super-admin.pem",
	"kubelet-m1.pem", "kubelet-w1.pem", "kubelet-w2.pem",
	"service-account.pem", "bootstrap-token",
	"admin.conf", "super-admin.conf", "controller-manager.conf", "scheduler.conf", "kube-proxy.conf",
	"kubelet-m1.conf", "kubelet-w1.conf", "kubelet-w2.conf", "bootstrap-kubelet.conf", "bootstrap-token.yaml",
};
#define N_CERTS 17      /* the .pem certificates of expected_order */

static const char *const secret_files[] = {
	"ca-key.pem", "etcd-ca-key.pem", "front-proxy-ca-key.pem", "apiserver-key.pem",
	"apiserver-kubelet-client-key.pem", "apiserver-etcd-client-key.pem", "front-proxy-client-key.pem",
	"etcd-e1-server-key.pem", "etcd-e1-peer-key.pem", "controller-manager-key.pem", "scheduler-key.pem",
	"kube-proxy-key.pem", "admin-key.pem", "super-admin-key.pem", "kubelet-m1-key.pem", "kubelet-w1-key.pem",
	"kubelet-w2-key.pem", "service-account-key.pem", "bootstrap-token", "admin.conf", "super-admin.conf",
	"controller-manager.conf", "scheduler.conf", "kube-proxy.conf", "kubelet-m1.conf", "kubelet-w1.conf",
	"kubelet-w2.conf", "bootstrap-kubelet.conf", "bootstrap-token.yaml",
};

/* [a-z0-9]{6}\.[a-z0-9]{16}, written out rather than shared with pki.c. */
static bool token_format_ok(const char *t) {
	if (!t || strlen(t) != 23)
		return false;
	for (size_t i = 0; i < 23; i++) {
		bool alnum = (t[i] >= 'a' && t[i] <= 'z') || (t[i] >= '0' && t[i] <= '9');
		if (i == 6 ? t[i] != '.' : !alnum)
			return false;
	}
	return true;
}

/* The token file without its newline. */
static char *token_of(const char *dir) {
	char *t = slurp(dir, "bootstrap-token");
	if (t && *t && t[strlen(t) - 1] == '\n')
		t[strlen(t) - 1] = '\0';
	return t;
}

/* Every event is `action` but those named, which must be `other` with
 * `reason` (a fixed string, or NULL for any). */
static void check_actions(const struct pki_report *rep, enum pki_action action, const char *const *names, size_t n,
			  enum pki_action other, const char *reason, int line) {
	for (size_t i = 0; i < rep->n; i++) {
		bool named = false;
		for (size_t k = 0; k < n; k++)
			named = named || streq(rep->v[i].name, names[k]);
		enum pki_action want = named ? other : action;
		if ((enum pki_action)rep->v[i].action != want
		    || (named && reason && !(rep->v[i].reason && streq(rep->v[i].reason, reason)))) {
			fprintf(stderr, "test_pki.c:%d: %s: action %d (%s), expected %d%s%s\n", line, rep->v[i].name,
				rep->v[i].action, rep->v[i].reason ? rep->v[i].reason : "no reason", want,
				named && reason ? " with " : "", named && reason ? reason : "");
			CHECK(!"unexpected action");
		}
	}
	for (size_t k = 0; k < n; k++)
		if (!event(rep, names[k])) {
			fprintf(stderr, "test_pki.c:%d: no event for %s\n", line, names[k]);
			CHECK(!"missing event");
		}
}
#define CHECK_ACTIONS(rep, action, names, other, reason) \
	check_actions((rep), (action), (names), ARRAY_SIZE(names), (other), (reason), __LINE__)

static void test_create_and_reuse(const char *dir) {
	struct fixture f;
	struct pki_report rep = PKI_REPORT_INIT;
	struct snapshot before, after;
	struct strv changed = STRV_INIT;

	fixture_init(&f, dir, PKI_KEY_ECDSA_P256);
	CHECK_INTEQ(ensure(&f.cfg, &rep), 0);
	CHECK_INTEQ(rep.n, ARRAY_SIZE(expected_order));
	for (size_t i = 0; i < rep.n && i < ARRAY_SIZE(expected_order); i++) {
		CHECK_STREQ(rep.v[i].name, expected_order[i]);
		CHECK_INTEQ(rep.v[i].action, PKI_CREATED);
		CHECK(rep.v[i].reason == NULL);
	}
	pki_report_release(&rep);

	CHECK_INTEQ(file_mode(dir, "."), 0700);
	for (size_t i = 0; i < ARRAY_SIZE(secret_files); i++)
		if (file_mode(dir, secret_files[i]) != 0600) {
			fprintf(stderr, "  %s: mode %o\n", secret_files[i], file_mode(dir, secret_files[i]));
			CHECK(!"a secret file is not 0600");
		}
	for (size_t i = 0; i < ARRAY_SIZE(expected_order); i++)
		if (endswith(expected_order[i], ".pem"))
			CHECK_INTEQ(file_mode(dir, expected_order[i]), 0644);

	_cleanup_free_ char *kc = slurp(dir, "admin.conf");
	CHECK(kc && strstr(kc, "- name: \"test-cluster\"\n"));
	CHECK(kc && strstr(kc, "server: \"https://10.0.0.4:6443\"\n"));
	CHECK(kc && strstr(kc, "- name: \"kubernetes-admin\"\n"));
	CHECK(kc && strstr(kc, "client-key-data: "));
	CHECK(kc && strstr(kc, "current-context: \"kubernetes-admin@test-cluster\"\n"));
	_cleanup_free_ char *kl = slurp(dir, "kubelet-w1.conf");
	CHECK(kl && strstr(kl, "current-context: \"system:node:w1@test-cluster\"\n"));
	_cleanup_free_ char *token = token_of(dir);
	CHECK(token_format_ok(token));
	_cleanup_free_ char *boot = slurp(dir, "bootstrap-kubelet.conf");
	_cleanup_free_ char *want_token = xasprintf("    token: \"%s\"\n", token ? token : "?");
	CHECK(boot && strstr(boot, want_token) && !strstr(boot, "client-key-data"));
	CHECK(boot && strstr(boot, "- name: \"tls-bootstrap-token-user\"\n"));
	_cleanup_free_ char *secret = slurp(dir, "bootstrap-token.yaml");
	_cleanup_free_ char *want_name = xasprintf("  name: bootstrap-token-%.6s\n", token ? token : "?");
	_cleanup_free_ char *want_id = xasprintf("  token-id: \"%.6s\"\n", token ? token : "?");
	_cleanup_free_ char *want_secret = xasprintf("  token-secret: \"%s\"\n", token ? token + 7 : "?");
	CHECK(secret && strstr(secret, want_name) && strstr(secret, want_id) && strstr(secret, want_secret));
	CHECK(secret && strstr(secret, "\ntype: bootstrap.kubernetes.io/token\n") && strstr(secret, "  namespace: kube-system\n"));
	CHECK(secret && strstr(secret, "  usage-bootstrap-authentication: \"true\"\n")
	      && strstr(secret, "  usage-bootstrap-signing: \"true\"\n")
	      && strstr(secret, "  auth-extra-groups: \"system:bootstrappers:kubeadm:default-node-token\"\n")
	      && !strstr(secret, "expiration"));
	ino_t kc_inode = file_inode(dir, "admin.conf");

	snapshot_take(dir, &before);
	CHECK_INTEQ(ensure(&f.cfg, &rep), 0);
	CHECK_INTEQ(rep.n, ARRAY_SIZE(expected_order));
	CHECK_INTEQ(count_action(&rep, PKI_REUSED), rep.n);
	pki_report_release(&rep);
	snapshot_take(dir, &after);
	snapshot_diff(&before, &after, &changed);
	CHECK_INTEQ(changed.n, 0);
	for (size_t i = 0; i < changed.n; i++)
		fprintf(stderr, "  changed on reuse: %s\n", changed.v[i]);
	CHECK(file_inode(dir, "admin.conf") == kc_inode);
	/* no two nodes share a key; the CAs are three */
	CHECK(!same_file(dir, "kubelet-w1-key.pem", "kubelet-w2-key.pem"));
	CHECK(!same_file(dir, "etcd-e1-server-key.pem", "etcd-e1-peer-key.pem"));
	CHECK(!same_file(dir, "ca-key.pem", "etcd-ca-key.pem") && !same_file(dir, "ca-key.pem", "front-proxy-ca-key.pem"));
	strv_release(&changed);
	snapshot_release(&before);
	snapshot_release(&after);
}

/* One item as the tables below write it. */
struct want_item {
	const char *id, *part, *src, *dest;
	unsigned mode;
};

#define P "/etc/kubernetes/pki/"
static const struct want_item master_items[] = {
	{ "ca", "cert", "ca.pem", P "ca.crt", 0644 },
	{ "apiserver", "cert", "apiserver.pem", P "apiserver.crt", 0644 },
	{ "apiserver", "key", "apiserver-key.pem", P "apiserver.key", 0600 },
	{ "apiserver_kubelet_client", "cert", "apiserver-kubelet-client.pem", P "apiserver-kubelet-client.crt", 0644 },
	{ "apiserver_kubelet_client", "key", "apiserver-kubelet-client-key.pem", P "apiserver-kubelet-client.key", 0600 },
	{ "apiserver_etcd_client", "cert", "apiserver-etcd-client.pem", P "apiserver-etcd-client.crt", 0644 },
	{ "apiserver_etcd_client", "key", "apiserver-etcd-client-key.pem", P "apiserver-etcd-client.key", 0600 },
	{ "front_proxy_ca", "cert", "front-proxy-ca.pem", P "front-proxy-ca.crt", 0644 },
	{ "front_proxy_client", "cert", "front-proxy-client.pem", P "front-proxy-client.crt", 0644 },
	{ "front_proxy_client", "key", "front-proxy-client-key.pem", P "front-proxy-client.key", 0600 },
	{ "sa", "key", "service-account-key.pem", P "sa.key", 0600 },
	{ "sa", "pub", "service-account.pem", P "sa.pub", 0644 },
	{ "etcd_ca", "cert", "etcd-ca.pem", P "etcd/ca.crt", 0644 },
	{ "admin_conf", "conf", "admin.conf", "/etc/kubernetes/admin.conf", 0600 },
	{ "super_admin_conf", "conf", "super-admin.conf", "/etc/kubernetes/super-admin.conf", 0600 },
	{ "controller_manager_conf", "conf", "controller-manager.conf", "/etc/kubernetes/controller-manager.conf", 0600 },
	{ "scheduler_conf", "conf", "scheduler.conf", "/etc/kubernetes/scheduler.conf", 0600 },
	{ "kubelet_conf", "conf", "kubelet-m1.conf", "/etc/kubernetes/kubelet.conf", 0600 },
	{ "bootstrap_token_secret", "conf", "bootstrap-token.yaml", "/etc/kubernetes/dlws/bootstrap-token.yaml", 0600 },
};
static const struct want_item master_ca_keys[] = {
	{ "ca", "key", "ca-key.pem", P "ca.key", 0600 },
	{ "front_proxy_ca", "key", "front-proxy-ca-key.pem", P "front-proxy-ca.key", 0600 },
};
static const struct want_item etcd_items[] = {
	{ "etcd_ca", "cert", "etcd-ca.pem", P "etcd/ca.crt", 0644 },
	{ "etcd_server", "cert", "etcd-e1-server.pem", P "etcd/server.crt", 0644 },
	{ "etcd_server", "key", "etcd-e1-server-key.pem", P "etcd/server.key", 0600 },
	{ "etcd_peer", "cert", "etcd-e1-peer.pem", P "etcd/peer.crt", 0644 },
	{ "etcd_peer", "key", "etcd-e1-peer-key.pem", P "etcd/peer.key", 0600 },
};
static const struct want_item worker_items[] = {
	{ "ca", "cert", "ca.pem", P "ca.crt", 0644 },
	{ "kubelet_conf", "conf", "kubelet-w1.conf", "/etc/kubernetes/kubelet.conf", 0600 },
	{ "kube_proxy_conf", "conf", "kube-proxy.conf", "/var/lib/kube-proxy/kubeconfig.conf", 0600 },
	{ "bootstrap_kubelet_conf", "conf", "bootstrap-kubelet.conf", "/etc/kubernetes/bootstrap-kubelet.conf", 0600 },
};
static const struct want_item unlisted_worker_items[] = {
	{ "ca", "cert", "ca.pem", P "ca.crt", 0644 },
	{ "kube_proxy_conf", "conf", "kube-proxy.conf", "/var/lib/kube-proxy/kubeconfig.conf", 0600 },
	{ "bootstrap_kubelet_conf", "conf", "bootstrap-kubelet.conf", "/etc/kubernetes/bootstrap-kubelet.conf", 0600 },
};
static const struct want_item unlisted_master_items[] = {
	{ "ca", "cert", "ca.pem", P "ca.crt", 0644 },
};
static const struct want_item unlisted_etcd_items[] = {
	{ "etcd_ca", "cert", "etcd-ca.pem", P "etcd/ca.crt", 0644 },
};
#undef P

/* Exactly the items of `a` then `b`, in that order, their sources in `dir`. */
static void check_items(const char *what, const char *dir, const struct pki_item *v, size_t n, const struct want_item *a,
			size_t na, const struct want_item *b, size_t nb) {
	if (n != na + nb) {
		fprintf(stderr, "  %s: %zu items, expected %zu\n", what, n, na + nb);
		CHECK(!"wrong number of items");
	}
	for (size_t i = 0; i < n && i < na + nb; i++) {
		const struct want_item *w = i < na ? &a[i] : &b[i - na];
		_cleanup_free_ char *src = path_join(dir, w->src);
		if (!streq(v[i].id, w->id) || !streq(v[i].part, w->part) || !streq(v[i].src, src) || !streq(v[i].dest, w->dest)
		    || v[i].mode != w->mode) {
			fprintf(stderr, "  %s item %zu: %s.%s %s -> %s %o, expected %s.%s %s -> %s %o\n", what, i, v[i].id,
				v[i].part, v[i].src, v[i].dest, v[i].mode, w->id, w->part, src, w->dest, w->mode);
			CHECK(!"item differs");
		}
	}
}

static void test_items(const char *dir) {
	struct fixture f;
	struct diags d = DIAGS_INIT;
	struct pki_item *v = NULL;
	size_t n = 0;

	fixture_init(&f, dir, PKI_KEY_ECDSA_P256);
	CHECK_INTEQ(pki_items_for_node(&f.cfg, &f.nodes[0], false, &v, &n, &d), 0);
	check_items("master", dir, v, n, master_items, ARRAY_SIZE(master_items), NULL, 0);
	pki_items_free(v, n);
	/* the CA keys only when the recipe asks; after the CA certificates */
	CHECK_INTEQ(pki_items_for_node(&f.cfg, &f.nodes[0], true, &v, &n, &d), 0);
	CHECK_INTEQ(n, ARRAY_SIZE(master_items) + 2);
	if (n == ARRAY_SIZE(master_items) + 2) {
		check_items("master with CA keys (ca.key)", dir, &v[1], 1, master_ca_keys, 1, NULL, 0);
		check_items("master with CA keys (front-proxy-ca.key)", dir, &v[9], 1, &master_ca_keys[1], 1, NULL, 0);
	}
	pki_items_free(v, n);

	CHECK_INTEQ(pki_items_for_node(&f.cfg, &f.nodes[1], false, &v, &n, &d), 0);
	check_items("etcd", dir, v, n, etcd_items, ARRAY_SIZE(etcd_items), NULL, 0);
	pki_items_free(v, n);
	/* include_ca_key reaches masters only */
	CHECK_INTEQ(pki_items_for_node(&f.cfg, &f.nodes[1], true, &v, &n, &d), 0);
	check_items("etcd with include_ca_key", dir, v, n, etcd_items, ARRAY_SIZE(etcd_items), NULL, 0);
	pki_items_free(v, n);

	CHECK_INTEQ(pki_items_for_node(&f.cfg, &f.nodes[2], true, &v, &n, &d), 0);
	check_items("worker", dir, v, n, worker_items, ARRAY_SIZE(worker_items), NULL, 0);
	pki_items_free(v, n);

	/* a worker the cluster does not list: join material, nothing of any node */
	CHECK_INTEQ(pki_items_for_role(&f.cfg, ROLE_WORKER, &v, &n, &d), 0);
	check_items("unlisted worker", dir, v, n, unlisted_worker_items, ARRAY_SIZE(unlisted_worker_items), NULL, 0);
	for (size_t i = 0; i < n; i++) {
		CHECK(!streq(v[i].part, "key"));
		CHECK(!strstr(v[i].src, "m1") && !strstr(v[i].src, "w1") && !strstr(v[i].src, "w2") && !strstr(v[i].src, "e1"));
	}
	pki_items_free(v, n);
	CHECK_INTEQ(pki_items_for_role(&f.cfg, ROLE_MASTER, &v, &n, &d), 0);
	check_items("unlisted master", dir, v, n, unlisted_master_items, ARRAY_SIZE(unlisted_master_items), NULL, 0);
	pki_items_free(v, n);
	CHECK_INTEQ(pki_items_for_role(&f.cfg, ROLE_ETCD, &v, &n, &d), 0);
	check_items("unlisted etcd", dir, v, n, unlisted_etcd_items, ARRAY_SIZE(unlisted_etcd_items), NULL, 0);
	pki_items_free(v, n);
	CHECK_INTEQ(d.n_errors, 0);

	/* a node the PKI was not made for */
	struct node stranger = { .hostname = "w9", .ip = "10.0.0.99", .role = ROLE_WORKER };
	CHECK_INTEQ(pki_items_for_node(&f.cfg, &stranger, false, &v, &n, &d), -ENOENT);
	CHECK(d.n == 1 && strstr(d.v[0].msg, "kubelet-w9.conf") && strstr(d.v[0].msg, "node 'w9'"));
	diags_release(&d);
}

/* kubeadm's caCertHashes entry, against a certificate whose hash the
 * openssl CLI gave: `openssl x509 -pubkey -noout | openssl pkey -pubin
 * -outform der | sha256sum`. */
static const char fixed_ca[] =
	"-----BEGIN CERTIFICATE-----\n"
	"MIIBezCCASGgAwIBAgIUM5hp7i21YHJMF2/miaWKuUoIA+gwCgYIKoZIzj0EAwIw\n"
	"EjEQMA4GA1UEAwwHa3ViZS1jYTAgFw0yNjEyMDExNTQ0NDVaGA8yMTI2MTEwNzE1\n"
	"NDQ0NVowEjEQMA4GA1UEAwwHa3ViZS1jYTBZMBMGByqGSM49AgEGCCqGSM49AwEH\n"
	"A0IABNrj0bkbcDyViScbMQZwhhcn/luy5UMRFzA5JnyyTSLYQps6gr3majpCipZi\n"
	"BQWaiCj/5oLY6rUHCAv+dTDwdpajUzBRMB0GA1UdDgQWBBT4GNhnUSjLNMNrI34W\n"
	"AzhXV5aBQDAfBgNVHSMEGDAWgBT4GNhnUSjLNMNrI34WAzhXV5aBQDAPBgNVHRMB\n"
	"Af8EBTADAQH/MAoGCCqGSM49BAMCA0gAMEUCIQDvM/mLLs6/Qn/vQRMSOJA1Zw84\n"
	"ZGqjHb8JYLFH3kYOCAIgORyI8ZvE/HEHzpJOy8PO0DLqgzRiGNF52AGcn09BAyQ=\n"
	"-----END CERTIFICATE-----\n";
#define FIXED_CA_HASH "sha256:c4744f1a167bf2b71a8e5031d1752f7fcd2fe18761a701b5051a6b1e258615d6"

static void test_public_values(const char *dir, const char *scratch) {
	struct diags d = DIAGS_INIT;
	char *v = NULL;

	CHECK(mkdir_p(scratch, 0700) == 0);
	_cleanup_free_ char *ca = path_join(scratch, "ca.pem");
	CHECK(write_file_atomic(ca, fixed_ca, strlen(fixed_ca), 0644, &d) == 0);
	CHECK_INTEQ(pki_ca_cert_hash(scratch, &v, &d), 0);
	CHECK_STREQ(v, FIXED_CA_HASH);
	free(v);
	v = NULL;
	/* no token there yet */
	CHECK_INTEQ(pki_bootstrap_token_id(scratch, &v, &d), -ENOENT);
	CHECK(d.n == 1 && strstr(d.v[0].msg, "bootstrap-token") && strstr(d.v[0].msg, "dlws-mkimage certs"));
	diags_release(&d);

	CHECK_INTEQ(pki_ca_cert_hash(dir, &v, &d), 0);
	CHECK(v && startswith(v, "sha256:") && strlen(v) == 7 + 64);
	free(v);
	v = NULL;
	_cleanup_free_ char *token = token_of(dir);
	CHECK_INTEQ(pki_bootstrap_token_id(dir, &v, &d), 0);
	CHECK(v && token && strlen(v) == 6 && strncmp(v, token, 6) == 0);
	free(v);

	struct pki_token_info t = { 0 };
	CHECK_INTEQ(pki_token_info(dir, &t, &d), 0);
	CHECK(t.id && token && strncmp(t.id, token, 6) == 0 && strlen(t.id) == 6);
	CHECK(t.used_in.n == 2 && strv_contains(&t.used_in, "bootstrap-kubelet.conf")
	      && strv_contains(&t.used_in, "bootstrap-token.yaml"));
	pki_token_info_release(&t);
	CHECK_INTEQ(d.n, 0);
	diags_release(&d);
}

static void test_token(const char *dir) {
	struct fixture f;
	struct diags d = DIAGS_INIT;
	struct pki_report rep = PKI_REPORT_INIT;
	static const char *const carriers[] = { "bootstrap-token", "bootstrap-kubelet.conf", "bootstrap-token.yaml" };

	fixture_init(&f, dir, PKI_KEY_ECDSA_P256);
	_cleanup_free_ char *old = token_of(dir);
	f.cfg.rotate_token = true;
	CHECK_INTEQ(ensure(&f.cfg, &rep), 0);
	CHECK_ACTIONS(&rep, PKI_REUSED, carriers, PKI_REISSUED, NULL);
	const struct pki_event *e = event(&rep, "bootstrap-token");
	CHECK(e && e->reason && streq(e->reason, "rotated"));
	e = event(&rep, "bootstrap-kubelet.conf");
	CHECK(e && e->reason && streq(e->reason, "token changed"));
	e = event(&rep, "bootstrap-token.yaml");
	CHECK(e && e->reason && streq(e->reason, "token changed"));
	pki_report_release(&rep);
	_cleanup_free_ char *now = token_of(dir);
	CHECK(token_format_ok(now) && old && !streq(old, now));
	_cleanup_free_ char *boot = slurp(dir, "bootstrap-kubelet.conf");
	_cleanup_free_ char *secret = slurp(dir, "bootstrap-token.yaml");
	CHECK(boot && now && strstr(boot, now) && old && !strstr(boot, old + 7));
	CHECK(secret && now && strstr(secret, now + 7) && old && !strstr(secret, old + 7));
	CHECK_INTEQ(file_mode(dir, "bootstrap-token"), 0600);

	/* and it stays */
	f.cfg.rotate_token = false;
	CHECK_INTEQ(ensure(&f.cfg, &rep), 0);
	CHECK_INTEQ(count_action(&rep, PKI_REUSED), rep.n);
	pki_report_release(&rep);
	_cleanup_free_ char *again = token_of(dir);
	CHECK(now && again && streq(now, again));

	/* a damaged token is an error, never silently replaced (media carry it),
	 * and the message does not show what the file holds */
	_cleanup_free_ char *path = path_in(dir, "bootstrap-token");
	CHECK(write_file_atomic(path, "Abcdef.0123456789abcdef\n", 24, 0600, &d) == 0);
	CHECK_INTEQ(pki_ensure(&f.cfg, &rep, &d), -EINVAL);
	CHECK(d.n == 1 && strstr(d.v[0].msg, "is not a bootstrap token") && strstr(d.v[0].msg, "--rotate-token")
	      && !strstr(d.v[0].msg, "0123456789abcdef"));
	diags_release(&d);
	/* which a rotation mends */
	f.cfg.rotate_token = true;
	CHECK_INTEQ(ensure(&f.cfg, &rep), 0);
	e = event(&rep, "bootstrap-token");
	CHECK(e && e->action == PKI_REISSUED && e->reason && streq(e->reason, "rotated"));
	pki_report_release(&rep);
	_cleanup_free_ char *mended = token_of(dir);
	CHECK(token_format_ok(mended));
	f.cfg.rotate_token = false;
	CHECK_INTEQ(ensure(&f.cfg, &rep), 0);
	CHECK_INTEQ(count_action(&rep, PKI_REUSED), rep.n);
	pki_report_release(&rep);
	diags_release(&d);
}

/* A PKI made before kubeadm's layout kept admin.kubeconfig, whose
 * system:masters certificate admin.conf replaces. */
static void test_superseded(const char *dir) {
	struct fixture f;
	struct pki_report rep = PKI_REPORT_INIT;
	struct diags d = DIAGS_INIT;

	fixture_init(&f, dir, PKI_KEY_ECDSA_P256);
	_cleanup_free_ char *old = path_in(dir, "admin.kubeconfig");
	CHECK(write_file_atomic(old, "apiVersion: v1\n", 15, 0600, &d) == 0);
	CHECK_INTEQ(ensure(&f.cfg, &rep), 0);
	const struct pki_event *e = event(&rep, "admin.kubeconfig");
	CHECK(e && e->action == PKI_REMOVED && e->reason && streq(e->reason, "replaced by admin.conf"));
	CHECK_INTEQ(count_action(&rep, PKI_REUSED), rep.n - 1);
	pki_report_release(&rep);
	CHECK(!path_exists(old));
	diags_release(&d);
}

static const struct pki_cert_info *info_of(const struct pki_cert_info *v, size_t n, const char *file) {
	for (size_t i = 0; i < n; i++)
		if (streq(v[i].file, file))
			return &v[i];
	return NULL;
}

static bool has_san(const struct pki_cert_info *c, const char *san) {
	for (size_t i = 0; c && i < c->n_sans; i++)
		if (streq(c->sans[i], san))
			return true;
	return false;
}

static void check_names(const struct pki_cert_info *v, size_t n, const char *file, const char *subject, const char *issuer) {
	const struct pki_cert_info *c = info_of(v, n, file);
	if (!c || !streq(c->subject, subject) || !streq(c->issuer, issuer)) {
		fprintf(stderr, "  %s: subject '%s' issuer '%s', expected '%s' and '%s'\n", file, c ? c->subject : "(none)",
			c ? c->issuer : "(none)", subject, issuer);
		CHECK(!"subject or issuer");
	}
}

static void test_list(const char *dir) {
	struct diags d = DIAGS_INIT;
	struct pki_cert_info *v = NULL;
	size_t n = 0;
	time_t now = time(NULL);

	CHECK_INTEQ(pki_list(dir, &v, &n, &d), 0);
	CHECK_INTEQ(n, N_CERTS);     /* every certificate; keys and the SA public key are skipped */
	for (size_t i = 1; i < n; i++)
		CHECK(strcmp(v[i - 1].file, v[i].file) < 0);
	const struct pki_cert_info *api = info_of(v, n, "apiserver.pem");
	CHECK(api != NULL);
	if (api) {
		CHECK_INTEQ(api->n_sans, 8);
		static const char *const want[] = {
			"DNS:kubernetes", "DNS:kubernetes.default", "DNS:kubernetes.default.svc",
			"DNS:kubernetes.default.svc.cluster.local", "DNS:m1", "IP:10.3.0.1", "IP:127.0.0.1", "IP:10.0.0.4",
		};
		for (size_t i = 0; i < ARRAY_SIZE(want); i++)
			CHECK(has_san(api, want[i]));
		CHECK(api->not_after > now + 364 * DAY && api->not_after <= now + 365 * DAY + 60);
	}
	static const char *const kube[][2] = {
		{ "apiserver.pem", "CN=kube-apiserver" },
		{ "apiserver-kubelet-client.pem", "O=kubeadm:cluster-admins, CN=kube-apiserver-kubelet-client" },
		{ "controller-manager.pem", "CN=system:kube-controller-manager" },
		{ "scheduler.pem", "CN=system:kube-scheduler" },
		{ "kube-proxy.pem", "CN=system:kube-proxy" },
		{ "admin.pem", "O=kubeadm:cluster-admins, CN=kubernetes-admin" },
		{ "super-admin.pem", "O=system:masters, CN=kubernetes-super-admin" },
		{ "kubelet-m1.pem", "O=system:nodes, CN=system:node:m1" },
		{ "kubelet-w1.pem", "O=system:nodes, CN=system:node:w1" },
		{ "kubelet-w2.pem", "O=system:nodes, CN=system:node:w2" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(kube); i++)
		check_names(v, n, kube[i][0], kube[i][1], "CN=kube-ca");
	check_names(v, n, "apiserver-etcd-client.pem", "O=system:masters, CN=kube-apiserver-etcd-client", "CN=etcd-ca");
	check_names(v, n, "etcd-e1-server.pem", "CN=e1", "CN=etcd-ca");
	check_names(v, n, "etcd-e1-peer.pem", "CN=e1", "CN=etcd-ca");
	check_names(v, n, "front-proxy-client.pem", "CN=front-proxy-client", "CN=front-proxy-ca");
	check_names(v, n, "ca.pem", "CN=kube-ca", "CN=kube-ca");
	check_names(v, n, "etcd-ca.pem", "CN=etcd-ca", "CN=etcd-ca");
	check_names(v, n, "front-proxy-ca.pem", "CN=front-proxy-ca", "CN=front-proxy-ca");
	/* client identities name no host; the kubelet makes its own serving cert */
	const struct pki_cert_info *w1 = info_of(v, n, "kubelet-w1.pem");
	CHECK(w1 && w1->n_sans == 0);
	CHECK(info_of(v, n, "kubelet-e1.pem") == NULL);
	const struct pki_cert_info *ca = info_of(v, n, "ca.pem");
	CHECK(ca && ca->not_after > now + 3649 * (time_t)DAY);
	const struct pki_cert_info *es = info_of(v, n, "etcd-e1-server.pem");
	CHECK(has_san(es, "DNS:localhost") && has_san(es, "IP:127.0.0.1") && has_san(es, "IP:10.0.0.10") && has_san(es, "DNS:e1"));
	const struct pki_cert_info *adm = info_of(v, n, "admin.pem");
	CHECK(adm && adm->n_sans == 0);
	CHECK(info_of(v, n, "service-account.pem") == NULL);
	pki_cert_info_free(v, n);
	diags_release(&d);
}

static const char *const kubeconfigs[] = {
	"admin.conf", "super-admin.conf", "controller-manager.conf", "scheduler.conf", "kube-proxy.conf",
	"kubelet-m1.conf", "kubelet-w1.conf", "kubelet-w2.conf", "bootstrap-kubelet.conf",
};

static void test_san_change(const char *dir) {
	struct fixture f;
	struct pki_report rep = PKI_REPORT_INIT;
	struct snapshot before, after;
	struct strv changed = STRV_INIT;
	static const char *const api_only[] = { "apiserver.pem" };

	/* the master's address is a SAN; the kubeconfigs name the url */
	fixture_init(&f, dir, PKI_KEY_ECDSA_P256);
	f.nodes[0].ip = "10.0.0.5";
	snapshot_take(dir, &before);
	CHECK_INTEQ(ensure(&f.cfg, &rep), 0);
	CHECK_ACTIONS(&rep, PKI_REUSED, api_only, PKI_REISSUED, "SANs changed (added IP:10.0.0.5)");
	pki_report_release(&rep);

	/* only the certificate changed; its key was kept */
	snapshot_take(dir, &after);
	snapshot_diff(&before, &after, &changed);
	CHECK_INTEQ(changed.n, 1);
	CHECK(strv_contains(&changed, "apiserver.pem"));
	strv_release(&changed);
	snapshot_release(&before);
	snapshot_release(&after);

	/* a name in the url becomes a SAN, and every kubeconfig follows */
	f.cfg.apiserver_url = "https://api.lab.example:6443";
	CHECK_INTEQ(ensure(&f.cfg, &rep), 0);
	const struct pki_event *api = event(&rep, "apiserver.pem");
	CHECK(api && api->action == PKI_REISSUED && api->reason
	      && streq(api->reason, "SANs changed (added DNS:api.lab.example, removed IP:10.0.0.4)"));
	for (size_t i = 0; i < ARRAY_SIZE(kubeconfigs); i++) {
		const struct pki_event *e = event(&rep, kubeconfigs[i]);
		CHECK(e && e->action == PKI_REISSUED && e->reason && streq(e->reason, "server changed"));
	}
	CHECK_INTEQ(count_action(&rep, PKI_REISSUED), 1 + ARRAY_SIZE(kubeconfigs));
	pki_report_release(&rep);
	_cleanup_free_ char *kc = slurp(dir, "kubelet-w2.conf");
	CHECK(kc && strstr(kc, "    server: \"https://api.lab.example:6443\"\n"));

	/* and it settles */
	CHECK_INTEQ(ensure(&f.cfg, &rep), 0);
	CHECK_INTEQ(count_action(&rep, PKI_REUSED), rep.n);
	pki_report_release(&rep);

	/* back to the fixture's values for the tests that follow */
	fixture_init(&f, dir, PKI_KEY_ECDSA_P256);
	CHECK_INTEQ(ensure(&f.cfg, &rep), 0);
	api = event(&rep, "apiserver.pem");
	CHECK(api && api->reason && streq(api->reason, "SANs changed (added IP:10.0.0.4, removed DNS:api.lab.example, removed IP:10.0.0.5)"));
	CHECK_INTEQ(count_action(&rep, PKI_REISSUED), 1 + ARRAY_SIZE(kubeconfigs));
	pki_report_release(&rep);
}

static void test_key_problems(const char *dir) {
	struct fixture f;
	struct pki_report rep = PKI_REPORT_INIT;

	fixture_init(&f, dir, PKI_KEY_ECDSA_P256);
	/* another node's key where w1's should be: never kept */
	copy_pki_file(dir, "kubelet-w2-key.pem", "kubelet-w1-key.pem");
	/* w1's certificate where w2's should be */
	copy_pki_file(dir, "kubelet-w1.pem", "kubelet-w2.pem");
	_cleanup_free_ char *w1_cert = slurp(dir, "kubelet-w1.pem");
	_cleanup_free_ char *w2_key = slurp(dir, "kubelet-w2-key.pem");
	_cleanup_free_ char *api_path = path_in(dir, "apiserver-key.pem");
	CHECK(chmod(api_path, 0644) == 0);
	_cleanup_free_ char *conf_path = path_in(dir, "admin.conf");
	CHECK(chmod(conf_path, 0644) == 0);

	CHECK_INTEQ(ensure(&f.cfg, &rep), 0);
	const struct pki_event *w1 = event(&rep, "kubelet-w1.pem");
	const struct pki_event *w2 = event(&rep, "kubelet-w2.pem");
	CHECK(w1 && w1->action == PKI_REISSUED && w1->reason && streq(w1->reason, "key does not match"));
	CHECK(w2 && w2->action == PKI_REISSUED && w2->reason && strstr(w2->reason, "subject changed")
	      && strstr(w2->reason, "key does not match"));
	const struct pki_event *c1 = event(&rep, "kubelet-w1.conf");
	const struct pki_event *c2 = event(&rep, "kubelet-w2.conf");
	CHECK(c1 && c1->action == PKI_REISSUED && c1->reason && streq(c1->reason, "certificate changed; key changed"));
	CHECK(c2 && c2->action == PKI_REISSUED && c2->reason && streq(c2->reason, "certificate changed; key changed"));
	CHECK_INTEQ(action_of(&rep, "apiserver.pem"), PKI_REUSED);
	CHECK_INTEQ(action_of(&rep, "admin.conf"), PKI_REUSED);
	CHECK_INTEQ(count_action(&rep, PKI_REISSUED), 4);
	pki_report_release(&rep);
	CHECK(!same_file(dir, "kubelet-w1-key.pem", "kubelet-w2-key.pem"));
	_cleanup_free_ char *w1_key_now = slurp(dir, "kubelet-w1-key.pem");
	CHECK(w1_key_now && w2_key && !streq(w1_key_now, w2_key));
	CHECK_INTEQ(file_mode(dir, "apiserver-key.pem"), 0600);
	CHECK_INTEQ(file_mode(dir, "kubelet-w1-key.pem"), 0600);
	CHECK_INTEQ(file_mode(dir, "admin.conf"), 0600);

	/* a missing key is replaced and its certificate re-issued */
	_cleanup_free_ char *admin_key = path_in(dir, "admin-key.pem");
	CHECK(unlink(admin_key) == 0);
	_cleanup_free_ char *kc_before = slurp(dir, "admin.conf");
	CHECK_INTEQ(ensure(&f.cfg, &rep), 0);
	const struct pki_event *adm = event(&rep, "admin.pem");
	CHECK(adm && adm->action == PKI_REISSUED && adm->reason && streq(adm->reason, "key missing"));
	const struct pki_event *admc = event(&rep, "admin.conf");
	CHECK(admc && admc->action == PKI_REISSUED && admc->reason && streq(admc->reason, "certificate changed; key changed"));
	CHECK_INTEQ(count_action(&rep, PKI_REISSUED), 2);
	pki_report_release(&rep);
	_cleanup_free_ char *kc_after = slurp(dir, "admin.conf");
	CHECK(kc_before && kc_after && !streq(kc_before, kc_after));
	CHECK_INTEQ(file_mode(dir, "admin.conf"), 0600);
}

/* pki_unchanged on its own: each lone change a run would make is seen,
 * and left as it is (ensure() checks the look against every run). */
static int look(const struct pki_config *cfg) {
	struct pki_report rep = PKI_REPORT_INIT;
	struct diags d = DIAGS_INIT;
	int r = pki_unchanged(cfg, &rep, &d);
	CHECK(r == 1 ? rep.n > 0 && count_action(&rep, PKI_REUSED) == rep.n : rep.n == 0);
	pki_report_release(&rep);
	diags_release(&d);
	return r;
}

static void test_look(const char *dir) {
	struct fixture f;
	struct pki_report rep = PKI_REPORT_INIT;
	fixture_init(&f, dir, PKI_KEY_ECDSA_P256);
	CHECK_INTEQ(ensure(&f.cfg, &rep), 0);
	pki_report_release(&rep);
	CHECK_INTEQ(look(&f.cfg), 1);

	/* a key's mode: only narrowed by a run */
	_cleanup_free_ char *key = path_in(dir, "kubelet-w2-key.pem");
	CHECK(chmod(key, 0640) == 0);
	CHECK_INTEQ(look(&f.cfg), 0);
	CHECK_INTEQ(file_mode(dir, "kubelet-w2-key.pem"), 0640);
	CHECK_INTEQ(ensure(&f.cfg, &rep), 0);
	CHECK_INTEQ(count_action(&rep, PKI_REUSED), rep.n);
	pki_report_release(&rep);
	CHECK_INTEQ(file_mode(dir, "kubelet-w2-key.pem"), 0600);
	CHECK_INTEQ(look(&f.cfg), 1);

	/* a certificate gone, then the token rotated: nothing made by the look */
	_cleanup_free_ char *cert = path_in(dir, "scheduler.pem");
	CHECK(unlink(cert) == 0);
	CHECK_INTEQ(look(&f.cfg), 0);
	CHECK(!path_exists(cert));
	CHECK_INTEQ(ensure(&f.cfg, &rep), 0);
	CHECK_INTEQ(action_of(&rep, "scheduler.pem"), PKI_CREATED);
	pki_report_release(&rep);
	_cleanup_free_ char *token = slurp(dir, "bootstrap-token");
	f.cfg.rotate_token = true;
	CHECK_INTEQ(look(&f.cfg), 0);
	_cleanup_free_ char *token_after = slurp(dir, "bootstrap-token");
	CHECK(token && token_after && streq(token, token_after));
	f.cfg.rotate_token = false;

	/* a kubeconfig edited by hand */
	_cleanup_free_ char *conf = path_in(dir, "admin.conf");
	_cleanup_free_ char *text = slurp(dir, "admin.conf");
	struct diags d = DIAGS_INIT;
	CHECK(text && write_file_atomic(conf, "apiVersion: v1\n", 15, 0600, &d) == 0);
	CHECK_INTEQ(look(&f.cfg), 0);
	CHECK_INTEQ(ensure(&f.cfg, &rep), 0);
	CHECK_INTEQ(action_of(&rep, "admin.conf"), PKI_REISSUED);
	pki_report_release(&rep);
	_cleanup_free_ char *restored = slurp(dir, "admin.conf");
	CHECK(restored && streq(restored, text));

	/* no directory: nothing made */
	_cleanup_free_ char *none = xasprintf("%s.none", dir);
	fixture_init(&f, none, PKI_KEY_ECDSA_P256);
	CHECK_INTEQ(look(&f.cfg), 0);
	CHECK(!path_exists(none));
	diags_release(&d);
}

static void test_removed_node(const char *dir) {
	struct fixture f;
	struct pki_report rep = PKI_REPORT_INIT;

	fixture_init(&f, dir, PKI_KEY_ECDSA_P256);
	f.cluster.n_nodes = 3;  /* w2 leaves the cluster */
	CHECK_INTEQ(ensure(&f.cfg, &rep), 0);
	CHECK(event(&rep, "kubelet-w2.pem") == NULL && event(&rep, "kubelet-w2.conf") == NULL);
	CHECK_INTEQ(rep.n, ARRAY_SIZE(expected_order) - 2);
	CHECK_INTEQ(count_action(&rep, PKI_REUSED), rep.n);
	pki_report_release(&rep);
	/* its files stay: the operator decides when they go */
	CHECK(file_mode(dir, "kubelet-w2.pem") == 0644 && file_mode(dir, "kubelet-w2-key.pem") == 0600
	      && file_mode(dir, "kubelet-w2.conf") == 0600);
}

/* What kube-ca signs, and what embeds it. */
static const char *const kube_ca_signed[] = {
	"apiserver.pem", "apiserver-kubelet-client.pem", "controller-manager.pem", "scheduler.pem", "kube-proxy.pem",
	"admin.pem", "super-admin.pem", "kubelet-m1.pem", "kubelet-w1.pem", "kubelet-w2.pem",
};

static void test_ca_changed(const char *dir) {
	struct fixture f;
	struct pki_report rep = PKI_REPORT_INIT;
	_cleanup_free_ char *ca = path_in(dir, "ca.pem");
	_cleanup_free_ char *ca_key = path_in(dir, "ca-key.pem");
	_cleanup_free_ char *w1_key = slurp(dir, "kubelet-w1-key.pem");

	fixture_init(&f, dir, PKI_KEY_ECDSA_P256);
	CHECK(unlink(ca) == 0 && unlink(ca_key) == 0);
	CHECK_INTEQ(ensure(&f.cfg, &rep), 0);
	CHECK_INTEQ(action_of(&rep, "ca.pem"), PKI_CREATED);
	for (size_t i = 0; i < rep.n; i++) {
		const struct pki_event *e = &rep.v[i];
		bool signed_ = false, conf = false;
		for (size_t k = 0; k < ARRAY_SIZE(kube_ca_signed); k++)
			signed_ = signed_ || streq(e->name, kube_ca_signed[k]);
		for (size_t k = 0; k < ARRAY_SIZE(kubeconfigs); k++)
			conf = conf || streq(e->name, kubeconfigs[k]);
		if (streq(e->name, "ca.pem"))
			continue;
		if (signed_)
			CHECK(e->action == PKI_REISSUED && e->reason && streq(e->reason, "CA changed"));
		else if (streq(e->name, "bootstrap-kubelet.conf"))
			CHECK(e->action == PKI_REISSUED && e->reason && streq(e->reason, "CA changed"));
		else if (conf)
			CHECK(e->action == PKI_REISSUED && e->reason && streq(e->reason, "CA changed; certificate changed"));
		else if (e->action != PKI_REUSED) {
			/* the other CAs and what they signed, the SA pair, the token */
			fprintf(stderr, "  %s: action %d after a kube-ca change\n", e->name, e->action);
			CHECK(!"reused");
		}
	}
	pki_report_release(&rep);
	/* a new CA needs new certificates, not new keys */
	_cleanup_free_ char *w1_key_now = slurp(dir, "kubelet-w1-key.pem");
	CHECK(w1_key && w1_key_now && streq(w1_key, w1_key_now));
}

/* Only what the etcd CA signs follows it; no kubeconfig embeds it. */
static void test_etcd_ca_changed(const char *dir) {
	struct fixture f;
	struct pki_report rep = PKI_REPORT_INIT;
	static const char *const etcd_signed[] = { "apiserver-etcd-client.pem", "etcd-e1-server.pem", "etcd-e1-peer.pem" };
	_cleanup_free_ char *ca = path_in(dir, "etcd-ca.pem");
	_cleanup_free_ char *ca_key = path_in(dir, "etcd-ca-key.pem");
	_cleanup_free_ char *kube_ca_before = slurp(dir, "ca.pem");

	fixture_init(&f, dir, PKI_KEY_ECDSA_P256);
	CHECK(unlink(ca) == 0 && unlink(ca_key) == 0);
	CHECK_INTEQ(ensure(&f.cfg, &rep), 0);
	CHECK_INTEQ(action_of(&rep, "etcd-ca.pem"), PKI_CREATED);
	static const char *const created[] = { "etcd-ca.pem" };
	/* everything else: reused or, for the three, re-issued */
	for (size_t i = 0; i < rep.n; i++) {
		const struct pki_event *e = &rep.v[i];
		bool signed_ = false;
		for (size_t k = 0; k < ARRAY_SIZE(etcd_signed); k++)
			signed_ = signed_ || streq(e->name, etcd_signed[k]);
		if (streq(e->name, created[0]))
			continue;
		if (signed_)
			CHECK(e->action == PKI_REISSUED && e->reason && streq(e->reason, "CA changed"));
		else if (e->action != PKI_REUSED) {
			fprintf(stderr, "  %s: action %d after an etcd-ca change\n", e->name, e->action);
			CHECK(!"reused");
		}
	}
	CHECK_INTEQ(count_action(&rep, PKI_REISSUED), 3);
	pki_report_release(&rep);
	_cleanup_free_ char *kube_ca_after = slurp(dir, "ca.pem");
	CHECK(kube_ca_before && kube_ca_after && streq(kube_ca_before, kube_ca_after));
}

static void test_ca_errors(const char *dir) {
	struct fixture f;
	struct diags d = DIAGS_INIT;
	struct pki_report rep = PKI_REPORT_INIT;
	_cleanup_free_ char *ca = path_in(dir, "ca.pem");
	_cleanup_free_ char *ca_key = path_in(dir, "ca-key.pem");
	_cleanup_free_ char *ca_key_saved = slurp(dir, "ca-key.pem");

	fixture_init(&f, dir, PKI_KEY_ECDSA_P256);
	/* the CA is never replaced behind the operator's back */
	CHECK(unlink(ca_key) == 0);
	CHECK_INTEQ(pki_ensure(&f.cfg, &rep, &d), -ENOENT);
	CHECK(rep.n == 0 && d.n_errors == 1);
	CHECK(d.n && strstr(d.v[0].msg, "ca-key.pem") && strstr(d.v[0].msg, "cannot load"));
	diags_release(&d);

	copy_pki_file(dir, "kubelet-w1-key.pem", "ca-key.pem");
	CHECK(pki_ensure(&f.cfg, &rep, &d) == -EINVAL);
	CHECK(d.n && strstr(d.v[0].msg, "does not match"));
	diags_release(&d);

	CHECK(write_file_atomic(ca_key, ca_key_saved, strlen(ca_key_saved), 0600, &d) == 0);
	_cleanup_free_ char *ca_saved = slurp(dir, "ca.pem");
	CHECK(write_file_atomic(ca, "garbage\n", 8, 0644, &d) == 0);
	CHECK(pki_ensure(&f.cfg, &rep, &d) == -EINVAL);
	CHECK(d.n && strstr(d.v[0].msg, "ca.pem' is not a PEM certificate (damaged or truncated?)"));
	/* the message names the file and the reason, never key bytes */
	CHECK(d.n && !strstr(d.v[0].msg, "BEGIN"));
	diags_release(&d);
	CHECK(write_file_atomic(ca, ca_saved, strlen(ca_saved), 0644, &d) == 0);

	/* the same holds for the etcd CA */
	_cleanup_free_ char *etcd_key = path_in(dir, "etcd-ca-key.pem");
	_cleanup_free_ char *etcd_key_saved = slurp(dir, "etcd-ca-key.pem");
	CHECK(unlink(etcd_key) == 0);
	CHECK_INTEQ(pki_ensure(&f.cfg, &rep, &d), -ENOENT);
	CHECK(d.n && strstr(d.v[0].msg, "etcd-ca-key.pem") && strstr(d.v[0].msg, "remove '"));
	diags_release(&d);
	CHECK(write_file_atomic(etcd_key, etcd_key_saved, strlen(etcd_key_saved), 0600, &d) == 0);

	CHECK_INTEQ(ensure(&f.cfg, &rep), 0);
	CHECK_INTEQ(count_action(&rep, PKI_REUSED), rep.n);
	pki_report_release(&rep);
	diags_release(&d);
}

static void test_ecdsa(const char *dir) {
	struct fixture f;
	struct pki_report rep = PKI_REPORT_INIT;

	fixture_init(&f, dir, PKI_KEY_ECDSA_P256);
	CHECK_INTEQ(ensure(&f.cfg, &rep), 0);
	CHECK_INTEQ(count_action(&rep, PKI_CREATED), ARRAY_SIZE(expected_order));
	pki_report_release(&rep);
	/* a P-256 PKCS#8 key is a few hundred bytes, an RSA-2048 one ~1.7k */
	_cleanup_free_ char *k = slurp(dir, "kubelet-w1-key.pem");
	CHECK(k && startswith(k, "-----BEGIN PRIVATE KEY-----") && strlen(k) < 400);
	CHECK_INTEQ(ensure(&f.cfg, &rep), 0);
	CHECK_INTEQ(count_action(&rep, PKI_REUSED), rep.n);
	pki_report_release(&rep);

	/* switching the key type does not by itself rotate working keys, but a
	 * re-issue then gets a key of the new type */
	f.cfg.key_type = PKI_KEY_RSA2048;
	f.nodes[1].ip = "10.0.0.11";
	CHECK_INTEQ(ensure(&f.cfg, &rep), 0);
	CHECK_INTEQ(action_of(&rep, "kubelet-w2.pem"), PKI_REUSED);
	CHECK_INTEQ(action_of(&rep, "etcd-e1-server.pem"), PKI_REISSUED);
	CHECK_INTEQ(action_of(&rep, "etcd-e1-peer.pem"), PKI_REISSUED);
	pki_report_release(&rep);
	_cleanup_free_ char *k2 = slurp(dir, "etcd-e1-server-key.pem");
	CHECK(k2 && strlen(k2) > 1000);

	/* node names longer than X.509's 64-character CN bound still work */
	char longname[] = "gpu-worker-0123456789-0123456789-0123456789-0123456789-rack7";
	f.nodes[3].hostname = longname;
	CHECK_INTEQ(ensure(&f.cfg, &rep), 0);
	_cleanup_free_ char *long_cert = xasprintf("kubelet-%s.pem", longname);
	_cleanup_free_ char *long_conf = xasprintf("kubelet-%s.conf", longname);
	CHECK_INTEQ(action_of(&rep, long_cert), PKI_CREATED);
	CHECK_INTEQ(action_of(&rep, long_conf), PKI_CREATED);
	pki_report_release(&rep);
	struct diags d = DIAGS_INIT;
	struct pki_cert_info *v = NULL;
	size_t n = 0;
	CHECK_INTEQ(pki_list(dir, &v, &n, &d), 0);
	const struct pki_cert_info *lc = info_of(v, n, long_cert);
	_cleanup_free_ char *long_subject = xasprintf("O=system:nodes, CN=system:node:%s", longname);
	CHECK(lc && streq(lc->subject, long_subject));
	pki_cert_info_free(v, n);
	diags_release(&d);
	CHECK_INTEQ(ensure(&f.cfg, &rep), 0);
	CHECK_INTEQ(count_action(&rep, PKI_REUSED), rep.n);
	pki_report_release(&rep);
}

static bool is_ca_file(const char *name) {
	return streq(name, "ca.pem") || streq(name, "etcd-ca.pem") || streq(name, "front-proxy-ca.pem");
}

static void test_expiry(const char *dir) {
	struct fixture f;
	struct pki_report rep = PKI_REPORT_INIT;
	time_t now = time(NULL);

	fixture_init(&f, dir, PKI_KEY_ECDSA_P256);
	f.cfg.now = now - 340 * DAY;
	CHECK_INTEQ(ensure(&f.cfg, &rep), 0);
	pki_report_release(&rep);
	_cleanup_free_ char *key_before = slurp(dir, "apiserver-key.pem");
	_cleanup_free_ char *token_before = token_of(dir);

	/* every leaf is renewed, with its key; the CAs and the token stay, and
	 * the kubeconfigs take the new certificates */
	f.cfg.now = now;
	CHECK_INTEQ(ensure(&f.cfg, &rep), 0);
	for (size_t i = 0; i < rep.n; i++) {
		const struct pki_event *e = &rep.v[i];
		if (is_ca_file(e->name) || streq(e->name, "service-account.pem") || startswith(e->name, "bootstrap-"))
			CHECK_INTEQ(e->action, PKI_REUSED);
		else if (endswith(e->name, ".pem"))
			CHECK(e->action == PKI_REISSUED && e->reason && streq(e->reason, "expires in 25 days"));
		else
			CHECK(e->action == PKI_REISSUED && e->reason && streq(e->reason, "certificate changed"));
	}
	pki_report_release(&rep);
	_cleanup_free_ char *key_after = slurp(dir, "apiserver-key.pem");
	CHECK(key_before && key_after && streq(key_before, key_after));
	_cleanup_free_ char *token_after = token_of(dir);
	CHECK(token_before && token_after && streq(token_before, token_after));

	/* far past the end: the CAs are renewed with their own keys, so leaves stay */
	f.cfg.now = now + 3700 * (time_t)DAY;
	CHECK_INTEQ(ensure(&f.cfg, &rep), 0);
	for (int i = 0; i < 3; i++) {
		static const char *const cas[] = { "ca.pem", "etcd-ca.pem", "front-proxy-ca.pem" };
		const struct pki_event *ca = event(&rep, cas[i]);
		CHECK(ca && ca->action == PKI_REISSUED && ca->reason && startswith(ca->reason, "expired on "));
	}
	const struct pki_event *api = event(&rep, "apiserver.pem");
	CHECK(api && api->reason && startswith(api->reason, "expired on ") && !strstr(api->reason, "CA changed"));
	const struct pki_event *peer = event(&rep, "etcd-e1-peer.pem");
	CHECK(peer && peer->reason && startswith(peer->reason, "expired on ") && !strstr(peer->reason, "CA changed"));
	pki_report_release(&rep);
}

static void test_bad_clusters(const char *dir) {
	struct fixture f;
	struct diags d = DIAGS_INIT;
	struct pki_report rep = PKI_REPORT_INIT;

	/* "w1" and "w1-key" would both own kubelet-w1-key.pem */
	fixture_init(&f, dir, PKI_KEY_ECDSA_P256);
	f.nodes[3].hostname = "w1-key";
	CHECK_INTEQ(pki_ensure(&f.cfg, &rep, &d), -EINVAL);
	CHECK(d.n && strstr(d.v[0].msg, "'kubelet-w1-key.pem'"));
	CHECK(!path_exists(dir));
	diags_release(&d);

	fixture_init(&f, dir, PKI_KEY_ECDSA_P256);
	f.nodes[2].ip = "10.0.0.300";
	CHECK_INTEQ(pki_ensure(&f.cfg, &rep, &d), -EINVAL);
	CHECK(d.n && strstr(d.v[0].msg, "invalid IP address '10.0.0.300' for node 'w1'"));
	CHECK(!path_exists(dir));
	diags_release(&d);
	CHECK(rep.n == 0);
}

static int make_only(const char *dir, const char *type) {
	struct fixture f;
	struct pki_report rep = PKI_REPORT_INIT;
	fixture_init(&f, dir, type && streq(type, "ecdsa") ? PKI_KEY_ECDSA_P256 : PKI_KEY_RSA2048);
	int r = ensure(&f.cfg, &rep);
	static const char *const words[] = { "created", "reused", "reissued", "removed" };
	for (size_t i = 0; i < rep.n; i++)
		printf("%s %s%s%s\n", words[rep.v[i].action], rep.v[i].name, rep.v[i].reason ? ": " : "",
		       rep.v[i].reason ? rep.v[i].reason : "");
	pki_report_release(&rep);
	/* kubeadm's caCertHashes entry, for the openssl CLI to recompute */
	struct diags d = DIAGS_INIT;
	char *hash = NULL;
	if (r == 0 && (r = pki_ca_cert_hash(dir, &hash, &d)) == 0)
		printf("ca-hash %s\n", hash);
	free(hash);
	diags_print(&d, stderr);
	diags_release(&d);
	return r < 0 ? 1 : 0;
}

int main(int argc, char **argv) {
	if (argc > 1)
		return make_only(argv[1], argc > 2 ? argv[2] : NULL);

	char tmpl[] = "/tmp/test_pki.XXXXXX";
	char *tmp = mkdtemp(tmpl);
	if (!tmp) {
		perror("mkdtemp");
		return 1;
	}
	_cleanup_free_ char *checked = path_join(tmp, "checked");
	for (int pass = 0; pass < 2; pass++) {
		checked_path = pass ? checked : NULL;
		_cleanup_free_ char *main_dir = xasprintf("%s/keys%d", tmp, pass);
		_cleanup_free_ char *ec_dir = xasprintf("%s/ec%d", tmp, pass);
		_cleanup_free_ char *exp_dir = xasprintf("%s/expiry%d", tmp, pass);
		_cleanup_free_ char *bad_dir = xasprintf("%s/bad%d", tmp, pass);
		_cleanup_free_ char *fixed_dir = xasprintf("%s/fixed%d", tmp, pass);

		test_create_and_reuse(main_dir);
		test_items(main_dir);
		test_public_values(main_dir, fixed_dir);
		test_list(main_dir);
		test_token(main_dir);
		test_superseded(main_dir);
		test_san_change(main_dir);
		test_key_problems(main_dir);
		test_look(main_dir);
		test_removed_node(main_dir);
		test_ca_changed(main_dir);
		test_etcd_ca_changed(main_dir);
		test_ca_errors(main_dir);
		test_ecdsa(ec_dir);
		test_expiry(exp_dir);
		test_bad_clusters(bad_dir);
	}
	/* the second pass remembered what it found sound */
	CHECK(path_exists(checked));

	rm_rf(tmp);
	return check_summary("test_pki");
}
