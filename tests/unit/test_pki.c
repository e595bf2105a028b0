/* pki: create, reuse, re-issue with reasons, what each node gets, listing.
 *
 * With arguments (`test_pki DIR [rsa|ecdsa]`) it only makes the fixed
 * cluster's PKI in DIR, for tests/e2e/test_pki_openssl.sh to check with the
 * openssl CLI. */
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
	};
}

static int ensure(const struct pki_config *cfg, struct pki_report *report) {
	struct diags d = DIAGS_INIT;
	int r = pki_ensure(cfg, report, &d);
	if (r < 0)
		diags_print(&d, stderr);
	diags_release(&d);
	return r;
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
	struct strv names, contents;
};

static void snapshot_take(const char *dir, struct snapshot *s) {
	*s = (struct snapshot){ STRV_INIT, STRV_INIT };
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
	}
}

static void snapshot_release(struct snapshot *s) {
	strv_release(&s->names);
	strv_release(&s->contents);
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

static const char *const expected_order[] = {
	"ca.pem", "apiserver.pem", "apiserver-etcd-client.pem", "etcd-e1-server.pem", "etcd-e1-peer.pem",
	"kubelet-m1.pem", "kubelet-e1.pem", "kubelet-w1.pem", "kubelet-w2.pem", "admin.pem", "service-account.pem",
};

static const char *const key_files[] = {
	"ca-key.pem", "apiserver-key.pem", "apiserver-etcd-client-key.pem", "etcd-e1-server-key.pem",
	"etcd-e1-peer-key.pem", "kubelet-m1-key.pem", "kubelet-e1-key.pem", "kubelet-w1-key.pem",
	"kubelet-w2-key.pem", "admin-key.pem", "service-account-key.pem", "admin.kubeconfig",
};

static void test_create_and_reuse(const char *dir) {
	struct fixture f;
	struct pki_report rep = PKI_REPORT_INIT;
	struct snapshot before, after;
	struct strv changed = STRV_INIT;

	fixture_init(&f, dir, PKI_KEY_RSA2048);
	CHECK_INTEQ(ensure(&f.cfg, &rep), 0);
	CHECK_INTEQ(rep.n, ARRAY_SIZE(expected_order));
	for (size_t i = 0; i < rep.n && i < ARRAY_SIZE(expected_order); i++) {
		CHECK_STREQ(rep.v[i].name, expected_order[i]);
		CHECK_INTEQ(rep.v[i].action, PKI_CREATED);
		CHECK(rep.v[i].reason == NULL);
	}
	pki_report_release(&rep);

	CHECK_INTEQ(file_mode(dir, "."), 0700);
	for (size_t i = 0; i < ARRAY_SIZE(key_files); i++)
		CHECK_INTEQ(file_mode(dir, key_files[i]), 0600);
	for (size_t i = 0; i < ARRAY_SIZE(expected_order); i++)
		CHECK_INTEQ(file_mode(dir, expected_order[i]), 0644);

	_cleanup_free_ char *kc = slurp(dir, "admin.kubeconfig");
	CHECK(kc && strstr(kc, "- name: \"test-cluster\"\n"));
	CHECK(kc && strstr(kc, "server: \"https://10.0.0.4:6443\"\n"));
	CHECK(kc && strstr(kc, "client-key-data: "));
	CHECK(kc && strstr(kc, "current-context: \"admin@test-cluster\"\n"));
	ino_t kc_inode = file_inode(dir, "admin.kubeconfig");

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
	CHECK(file_inode(dir, "admin.kubeconfig") == kc_inode);
	/* no two nodes share a key */
	CHECK(!same_file(dir, "kubelet-w1-key.pem", "kubelet-w2-key.pem"));
	CHECK(!same_file(dir, "etcd-e1-server-key.pem", "etcd-e1-peer-key.pem"));
	strv_release(&changed);
	snapshot_release(&before);
	snapshot_release(&after);
}

static bool has_item(const struct pki_item *v, size_t n, const char *id, const char *part, const char *src_name,
		     const char *dest, unsigned mode) {
	for (size_t i = 0; i < n; i++)
		if (streq(v[i].id, id) && streq(v[i].part, part) && endswith(v[i].src, src_name)
		    && streq(v[i].dest, dest) && v[i].mode == mode)
			return true;
	return false;
}

static void test_items(const char *dir) {
	struct fixture f;
	struct diags d = DIAGS_INIT;
	struct pki_item *v = NULL;
	size_t n = 0;

	fixture_init(&f, dir, PKI_KEY_RSA2048);
	/* a worker: the CA certificate and its own kubelet pair, nothing else */
	CHECK_INTEQ(pki_items_for_node(&f.cfg, &f.nodes[2], false, &v, &n, &d), 0);
	CHECK_INTEQ(n, 3);
	CHECK(has_item(v, n, "ca", "cert", "/ca.pem", "/etc/kubernetes/ssl/ca.pem", 0644));
	CHECK(has_item(v, n, "kubelet", "cert", "/kubelet-w1.pem", "/etc/kubernetes/ssl/kubelet.pem", 0644));
	CHECK(has_item(v, n, "kubelet", "key", "/kubelet-w1-key.pem", "/etc/kubernetes/ssl/kubelet-key.pem", 0600));
	for (size_t i = 0; i < n; i++)
		if (streq(v[i].part, "key"))
			CHECK(endswith(v[i].src, "/kubelet-w1-key.pem"));
	pki_items_free(v, n);

	CHECK_INTEQ(pki_items_for_node(&f.cfg, &f.nodes[2], true, &v, &n, &d), 0);
	CHECK(has_item(v, n, "ca", "key", "/ca-key.pem", "/etc/kubernetes/ssl/ca-key.pem", 0600));
	pki_items_free(v, n);

	CHECK_INTEQ(pki_items_for_node(&f.cfg, &f.nodes[0], false, &v, &n, &d), 0);
	CHECK(has_item(v, n, "apiserver", "key", "/apiserver-key.pem", "/etc/kubernetes/ssl/apiserver-key.pem", 0600));
	CHECK(has_item(v, n, "etcd_client", "cert", "/apiserver-etcd-client.pem", "/etc/kubernetes/ssl/apiserver-etcd-client.pem", 0644));
	CHECK(has_item(v, n, "service_account", "key", "/service-account-key.pem", "/etc/kubernetes/ssl/service-account-key.pem", 0600));
	CHECK(has_item(v, n, "service_account", "cert", "/service-account.pem", "/etc/kubernetes/ssl/service-account.pem", 0644));
	CHECK(has_item(v, n, "admin", "key", "/admin-key.pem", "/etc/kubernetes/ssl/admin-key.pem", 0600));
	CHECK(has_item(v, n, "kubelet", "key", "/kubelet-m1-key.pem", "/etc/kubernetes/ssl/kubelet-key.pem", 0600));
	CHECK(!has_item(v, n, "ca", "key", "/ca-key.pem", "/etc/kubernetes/ssl/ca-key.pem", 0600));
	pki_items_free(v, n);

	CHECK_INTEQ(pki_items_for_node(&f.cfg, &f.nodes[1], false, &v, &n, &d), 0);
	CHECK(has_item(v, n, "etcd_ca", "cert", "/ca.pem", "/etc/ssl/etcd/ca.pem", 0644));
	CHECK(has_item(v, n, "etcd_server", "cert", "/etcd-e1-server.pem", "/etc/ssl/etcd/server.pem", 0644));
	CHECK(has_item(v, n, "etcd_server", "key", "/etcd-e1-server-key.pem", "/etc/ssl/etcd/server-key.pem", 0600));
	CHECK(has_item(v, n, "etcd_peer", "key", "/etcd-e1-peer-key.pem", "/etc/ssl/etcd/peer-key.pem", 0600));
	CHECK(has_item(v, n, "kubelet", "cert", "/kubelet-e1.pem", "/etc/kubernetes/ssl/kubelet.pem", 0644));
	CHECK(!has_item(v, n, "apiserver", "key", "/apiserver-key.pem", "/etc/kubernetes/ssl/apiserver-key.pem", 0600));
	pki_items_free(v, n);
	CHECK_INTEQ(d.n_errors, 0);

	/* a node the PKI was not made for */
	struct node stranger = { .hostname = "w9", .ip = "10.0.0.99", .role = ROLE_WORKER };
	CHECK_INTEQ(pki_items_for_node(&f.cfg, &stranger, false, &v, &n, &d), -ENOENT);
	CHECK(d.n && strstr(d.v[0].msg, "kubelet-w9.pem"));
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

static void test_list(const char *dir) {
	struct diags d = DIAGS_INIT;
	struct pki_cert_info *v = NULL;
	size_t n = 0;
	time_t now = time(NULL);

	CHECK_INTEQ(pki_list(dir, &v, &n, &d), 0);
	CHECK_INTEQ(n, 10);     /* every certificate; keys and the SA public key are skipped */
	for (size_t i = 1; i < n; i++)
		CHECK(strcmp(v[i - 1].file, v[i].file) < 0);
	const struct pki_cert_info *api = info_of(v, n, "apiserver.pem");
	CHECK(api != NULL);
	if (api) {
		CHECK_STREQ(api->subject, "CN=kube-apiserver");
		CHECK_STREQ(api->issuer, "CN=kube-ca");
		CHECK_INTEQ(api->n_sans, 8);
		static const char *const want[] = {
			"DNS:kubernetes", "DNS:kubernetes.default", "DNS:kubernetes.default.svc",
			"DNS:kubernetes.default.svc.cluster.local", "DNS:m1", "IP:10.3.0.1", "IP:127.0.0.1", "IP:10.0.0.4",
		};
		for (size_t i = 0; i < ARRAY_SIZE(want); i++)
			CHECK(has_san(api, want[i]));
		CHECK(api->not_after > now + 364 * DAY && api->not_after <= now + 365 * DAY + 60);
	}
	const struct pki_cert_info *w1 = info_of(v, n, "kubelet-w1.pem");
	CHECK(w1 && streq(w1->subject, "O=system:nodes, CN=system:node:w1"));
	CHECK(has_san(w1, "DNS:w1") && has_san(w1, "IP:10.0.0.21"));
	const struct pki_cert_info *ca = info_of(v, n, "ca.pem");
	CHECK(ca && ca->not_after > now + 3649 * (time_t)DAY);
	const struct pki_cert_info *es = info_of(v, n, "etcd-e1-server.pem");
	CHECK(has_san(es, "DNS:localhost") && has_san(es, "IP:127.0.0.1") && has_san(es, "IP:10.0.0.10"));
	const struct pki_cert_info *adm = info_of(v, n, "admin.pem");
	CHECK(adm && streq(adm->subject, "O=system:masters, CN=admin") && adm->n_sans == 0);
	CHECK(info_of(v, n, "service-account.pem") == NULL);
	pki_cert_info_free(v, n);
	diags_release(&d);
}

static void test_san_change(const char *dir) {
	struct fixture f;
	struct pki_report rep = PKI_REPORT_INIT;
	struct snapshot before, after;
	struct strv changed = STRV_INIT;

	fixture_init(&f, dir, PKI_KEY_RSA2048);
	f.nodes[0].ip = "10.0.0.5";
	snapshot_take(dir, &before);
	CHECK_INTEQ(ensure(&f.cfg, &rep), 0);
	const struct pki_event *api = event(&rep, "apiserver.pem");
	const struct pki_event *m1 = event(&rep, "kubelet-m1.pem");
	CHECK(api && api->action == PKI_REISSUED);
	CHECK(api && api->reason && streq(api->reason, "SANs changed (added IP:10.0.0.5, removed IP:10.0.0.4)"));
	CHECK(m1 && m1->action == PKI_REISSUED && m1->reason && strstr(m1->reason, "SANs changed"));
	CHECK_INTEQ(count_action(&rep, PKI_REISSUED), 2);
	CHECK_INTEQ(count_action(&rep, PKI_REUSED), rep.n - 2);
	pki_report_release(&rep);

	/* only the two certificates changed; their keys were kept */
	snapshot_take(dir, &after);
	snapshot_diff(&before, &after, &changed);
	CHECK_INTEQ(changed.n, 2);
	CHECK(strv_contains(&changed, "apiserver.pem"));
	CHECK(strv_contains(&changed, "kubelet-m1.pem"));
	strv_release(&changed);
	snapshot_release(&before);
	snapshot_release(&after);

	/* and it settles */
	CHECK_INTEQ(ensure(&f.cfg, &rep), 0);
	CHECK_INTEQ(count_action(&rep, PKI_REUSED), rep.n);
	pki_report_release(&rep);

	/* back to the fixture's address for the tests that follow */
	f.nodes[0].ip = "10.0.0.4";
	CHECK_INTEQ(ensure(&f.cfg, &rep), 0);
	api = event(&rep, "apiserver.pem");
	CHECK(api && api->reason && streq(api->reason, "SANs changed (added IP:10.0.0.4, removed IP:10.0.0.5)"));
	CHECK_INTEQ(count_action(&rep, PKI_REISSUED), 2);
	pki_report_release(&rep);
}

static void test_key_problems(const char *dir) {
	struct fixture f;
	struct pki_report rep = PKI_REPORT_INIT;

	fixture_init(&f, dir, PKI_KEY_RSA2048);
	/* another node's key where w1's should be: never kept */
	copy_pki_file(dir, "kubelet-w2-key.pem", "kubelet-w1-key.pem");
	/* w1's certificate where w2's should be */
	copy_pki_file(dir, "kubelet-w1.pem", "kubelet-w2.pem");
	_cleanup_free_ char *w1_cert = slurp(dir, "kubelet-w1.pem");
	_cleanup_free_ char *w2_key = slurp(dir, "kubelet-w2-key.pem");
	_cleanup_free_ char *api_path = path_in(dir, "apiserver-key.pem");
	CHECK(chmod(api_path, 0644) == 0);

	CHECK_INTEQ(ensure(&f.cfg, &rep), 0);
	const struct pki_event *w1 = event(&rep, "kubelet-w1.pem");
	const struct pki_event *w2 = event(&rep, "kubelet-w2.pem");
	CHECK(w1 && w1->action == PKI_REISSUED && w1->reason && streq(w1->reason, "key does not match"));
	CHECK(w2 && w2->action == PKI_REISSUED && w2->reason && strstr(w2->reason, "subject changed")
	      && strstr(w2->reason, "key does not match"));
	CHECK_INTEQ(action_of(&rep, "apiserver.pem"), PKI_REUSED);
	pki_report_release(&rep);
	CHECK(!same_file(dir, "kubelet-w1-key.pem", "kubelet-w2-key.pem"));
	_cleanup_free_ char *w1_key_now = slurp(dir, "kubelet-w1-key.pem");
	CHECK(w1_key_now && w2_key && !streq(w1_key_now, w2_key));
	CHECK_INTEQ(file_mode(dir, "apiserver-key.pem"), 0600);
	CHECK_INTEQ(file_mode(dir, "kubelet-w1-key.pem"), 0600);

	/* a missing key is replaced and its certificate re-issued */
	_cleanup_free_ char *admin_key = path_in(dir, "admin-key.pem");
	CHECK(unlink(admin_key) == 0);
	_cleanup_free_ char *kc_before = slurp(dir, "admin.kubeconfig");
	CHECK_INTEQ(ensure(&f.cfg, &rep), 0);
	const struct pki_event *adm = event(&rep, "admin.pem");
	CHECK(adm && adm->action == PKI_REISSUED && adm->reason && streq(adm->reason, "key missing"));
	CHECK_INTEQ(count_action(&rep, PKI_REISSUED), 1);
	pki_report_release(&rep);
	_cleanup_free_ char *kc_after = slurp(dir, "admin.kubeconfig");
	CHECK(kc_before && kc_after && !streq(kc_before, kc_after));
	CHECK_INTEQ(file_mode(dir, "admin.kubeconfig"), 0600);
}

static void test_removed_node(const char *dir) {
	struct fixture f;
	struct pki_report rep = PKI_REPORT_INIT;

	fixture_init(&f, dir, PKI_KEY_RSA2048);
	f.cluster.n_nodes = 3;  /* w2 leaves the cluster */
	CHECK_INTEQ(ensure(&f.cfg, &rep), 0);
	CHECK(event(&rep, "kubelet-w2.pem") == NULL);
	CHECK_INTEQ(rep.n, ARRAY_SIZE(expected_order) - 1);
	CHECK_INTEQ(count_action(&rep, PKI_REUSED), rep.n);
	pki_report_release(&rep);
	/* its files stay: the operator decides when they go */
	CHECK(file_mode(dir, "kubelet-w2.pem") == 0644 && file_mode(dir, "kubelet-w2-key.pem") == 0600);
}

static void test_ca_changed(const char *dir) {
	struct fixture f;
	struct pki_report rep = PKI_REPORT_INIT;
	_cleanup_free_ char *ca = path_in(dir, "ca.pem");
	_cleanup_free_ char *ca_key = path_in(dir, "ca-key.pem");
	_cleanup_free_ char *w1_key = slurp(dir, "kubelet-w1-key.pem");

	fixture_init(&f, dir, PKI_KEY_RSA2048);
	CHECK(unlink(ca) == 0 && unlink(ca_key) == 0);
	CHECK_INTEQ(ensure(&f.cfg, &rep), 0);
	CHECK_INTEQ(action_of(&rep, "ca.pem"), PKI_CREATED);
	for (size_t i = 1; i + 1 < rep.n; i++) {
		CHECK_INTEQ(rep.v[i].action, PKI_REISSUED);
		CHECK(rep.v[i].reason && streq(rep.v[i].reason, "CA changed"));
	}
	CHECK_INTEQ(action_of(&rep, "service-account.pem"), PKI_REUSED);
	pki_report_release(&rep);
	/* a new CA needs new certificates, not new keys */
	_cleanup_free_ char *w1_key_now = slurp(dir, "kubelet-w1-key.pem");
	CHECK(w1_key && w1_key_now && streq(w1_key, w1_key_now));
}

static void test_ca_errors(const char *dir) {
	struct fixture f;
	struct diags d = DIAGS_INIT;
	struct pki_report rep = PKI_REPORT_INIT;
	_cleanup_free_ char *ca = path_in(dir, "ca.pem");
	_cleanup_free_ char *ca_key = path_in(dir, "ca-key.pem");
	_cleanup_free_ char *ca_key_saved = slurp(dir, "ca-key.pem");

	fixture_init(&f, dir, PKI_KEY_RSA2048);
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
	CHECK(d.n && strstr(d.v[0].msg, "cannot load '") && strstr(d.v[0].msg, "ca.pem': "));
	/* the message names the file and the reason, never key bytes */
	CHECK(d.n && !strstr(d.v[0].msg, "BEGIN"));
	diags_release(&d);
	CHECK(write_file_atomic(ca, ca_saved, strlen(ca_saved), 0644, &d) == 0);

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
	f.nodes[2].ip = "10.0.0.31";
	CHECK_INTEQ(ensure(&f.cfg, &rep), 0);
	CHECK_INTEQ(action_of(&rep, "kubelet-w2.pem"), PKI_REUSED);
	CHECK_INTEQ(action_of(&rep, "kubelet-w1.pem"), PKI_REISSUED);
	pki_report_release(&rep);
	_cleanup_free_ char *k2 = slurp(dir, "kubelet-w1-key.pem");
	CHECK(k2 && strlen(k2) > 1000);

	/* node names longer than X.509's 64-character CN bound still work */
	char longname[] = "gpu-worker-0123456789-0123456789-0123456789-0123456789-rack7";
	f.nodes[3].hostname = longname;
	CHECK_INTEQ(ensure(&f.cfg, &rep), 0);
	_cleanup_free_ char *long_cert = xasprintf("kubelet-%s.pem", longname);
	CHECK_INTEQ(action_of(&rep, long_cert), PKI_CREATED);
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

static void test_expiry(const char *dir) {
	struct fixture f;
	struct pki_report rep = PKI_REPORT_INIT;
	time_t now = time(NULL);

	fixture_init(&f, dir, PKI_KEY_ECDSA_P256);
	f.cfg.now = now - 340 * DAY;
	CHECK_INTEQ(ensure(&f.cfg, &rep), 0);
	pki_report_release(&rep);
	_cleanup_free_ char *key_before = slurp(dir, "apiserver-key.pem");

	f.cfg.now = now;
	CHECK_INTEQ(ensure(&f.cfg, &rep), 0);
	CHECK_INTEQ(action_of(&rep, "ca.pem"), PKI_REUSED);
	CHECK_INTEQ(action_of(&rep, "service-account.pem"), PKI_REUSED);
	for (size_t i = 1; i + 1 < rep.n; i++) {
		CHECK_INTEQ(rep.v[i].action, PKI_REISSUED);
		CHECK(rep.v[i].reason && streq(rep.v[i].reason, "expires in 25 days"));
	}
	pki_report_release(&rep);
	_cleanup_free_ char *key_after = slurp(dir, "apiserver-key.pem");
	CHECK(key_before && key_after && streq(key_before, key_after));

	/* far past the end: the CA is renewed with its own key, so leaves stay */
	f.cfg.now = now + 3700 * (time_t)DAY;
	CHECK_INTEQ(ensure(&f.cfg, &rep), 0);
	const struct pki_event *ca = event(&rep, "ca.pem");
	CHECK(ca && ca->action == PKI_REISSUED && ca->reason && startswith(ca->reason, "expired on "));
	const struct pki_event *api = event(&rep, "apiserver.pem");
	CHECK(api && api->reason && startswith(api->reason, "expired on ") && !strstr(api->reason, "CA changed"));
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
	for (size_t i = 0; i < rep.n; i++)
		printf("%s %s%s%s\n", rep.v[i].action == PKI_CREATED ? "created" : rep.v[i].action == PKI_REUSED ? "reused" : "reissued",
		       rep.v[i].name, rep.v[i].reason ? ": " : "", rep.v[i].reason ? rep.v[i].reason : "");
	pki_report_release(&rep);
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
	_cleanup_free_ char *main_dir = path_join(tmp, "keys");
	_cleanup_free_ char *ec_dir = path_join(tmp, "ec");
	_cleanup_free_ char *exp_dir = path_join(tmp, "expiry");
	_cleanup_free_ char *bad_dir = path_join(tmp, "bad");

	test_create_and_reuse(main_dir);
	test_items(main_dir);
	test_list(main_dir);
	test_san_change(main_dir);
	test_key_problems(main_dir);
	test_removed_node(main_dir);
	test_ca_changed(main_dir);
	test_ca_errors(main_dir);
	test_ecdsa(ec_dir);
	test_expiry(exp_dir);
	test_bad_clusters(bad_dir);

	rm_rf(tmp);
	return check_summary("test_pki");
}
