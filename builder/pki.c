/* The cluster PKI with libcrypto (OpenSSL 3, no deprecated API).
 *
 * Every run decides per certificate: create it, reuse it, or re-issue it
 * with a stated reason. Re-issuing keeps a good key, so a SAN change does
 * not rotate keys that nodes already hold. Keys and the bootstrap token's
 * secret never reach a message. */
#include "pki.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "buf.h"
#include "filesum.h"
#include "fsutil.h"
#include "hash.h"
#include "keygen.h"
#include "util.h"

#define DAY_SECONDS 86400
#define CA_DAYS 3650
#define LEAF_DAYS 365
#define RENEW_DAYS 30           /* re-issue what expires sooner than this */
#define CLOCK_SKEW 3600         /* notBefore margin for nodes whose clock lags */
#define SERIAL_BITS 159         /* positive and at most 20 octets (RFC 5280) */
#define PEM_LIMIT ((size_t)1 << 20)
#define CERT_MODE 0644
#define KEY_MODE 0600           /* keys, kubeconfigs, the token and its Secret */
#define DEFAULT_DOMAIN "cluster.local"

static void x509_freep(X509 **p) { X509_free(*p); }
static void pkey_freep(EVP_PKEY **p) { EVP_PKEY_free(*p); }
static void bio_freep(BIO **p) { BIO_free(*p); }
static void name_freep(X509_NAME **p) { X509_NAME_free(*p); }
static void gens_freep(GENERAL_NAMES **p) { GENERAL_NAMES_free(*p); }
#define _cleanup_x509_ _cleanup_(x509_freep)
#define _cleanup_pkey_ _cleanup_(pkey_freep)
#define _cleanup_bio_ _cleanup_(bio_freep)
#define _cleanup_name_ _cleanup_(name_freep)
#define _cleanup_gens_ _cleanup_(gens_freep)

/* File contents that may hold a private key: wiped before they are freed. */
struct secret {
	char *data;
	size_t len;
};
static void secret_release(struct secret *s) {
	if (s->data) {
		OPENSSL_cleanse(s->data, s->len);
		free(s->data);
	}
	s->data = NULL;
	s->len = 0;
}
static void secret_freep(char **p) {
	if (*p) {
		OPENSSL_cleanse(*p, strlen(*p));
		free(*p);
	}
}
#define _cleanup_secret_ _cleanup_(secret_release)
#define _cleanup_secret_str_ _cleanup_(secret_freep)

/* ---- libcrypto errors ------------------------------------------------- */

/* The first queued libcrypto error as a short reason. The queue is emptied
 * so that a later message never shows a stale cause. */
static void crypto_reason(char *out, size_t size) {
	unsigned long e = ERR_get_error();
	const char *reason = e ? ERR_reason_error_string(e) : NULL;
	if (reason)
		snprintf(out, size, "%s", reason);
	else if (e)
		ERR_error_string_n(e, out, size);
	else
		snprintf(out, size, "unknown libcrypto error");
	ERR_clear_error();
}

static int crypto_fail(struct diags *d, int r, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int crypto_fail(struct diags *d, int r, const char *fmt, ...) {
	char reason[256];
	struct buf b = BUF_INIT;
	va_list ap;

	crypto_reason(reason, sizeof(reason));
	va_start(ap, fmt);
	(void)buf_vprintf(&b, fmt, ap);
	va_end(ap);
	diag_error(d, NULL, "%s: %s", b.data ? b.data : "", reason);
	buf_release(&b);
	return r;
}

/* ---- files ------------------------------------------------------------ */

/* A missing file is -ENOENT without a message: whether that is an error
 * depends on the caller. Other I/O errors are reported. */
static int read_pem(const char *path, struct secret *ret, struct diags *d) {
	struct stat st;
	if (stat(path, &st) < 0) {
		int r = -errno;
		if (r == -ENOENT)
			return r;
		diag_error(d, NULL, "cannot read '%s': %s", path, strerror(-r));
		return r;
	}
	return read_file(path, PEM_LIMIT, &ret->data, &ret->len, d);
}

/* Never let libcrypto prompt on the terminal for an encrypted key. */
static int no_passphrase(char *buf, int size, int rwflag, void *u) {
	return -1;
}

enum pem_kind { PEM_CERT, PEM_PRIVATE_KEY, PEM_PUBLIC_KEY };

/* Returns 0, -ENOENT (silent), -EBADMSG when the file is not PEM of that
 * kind (silent; the libcrypto queue holds why), or another reported -errno. */
static int load_pem(const char *path, enum pem_kind kind, void **ret, struct diags *d) {
	_cleanup_secret_ struct secret s = { 0 };
	int r = read_pem(path, &s, d);
	if (r < 0)
		return r;
	_cleanup_bio_ BIO *bio = BIO_new_mem_buf(s.data, (int)s.len);
	if (!bio)
		return crypto_fail(d, -ENOMEM, "cannot load '%s'", path);
	void *obj = kind == PEM_CERT ? (void *)PEM_read_bio_X509(bio, NULL, NULL, NULL)
		: kind == PEM_PRIVATE_KEY ? (void *)PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL)
		: (void *)PEM_read_bio_PUBKEY(bio, NULL, no_passphrase, NULL);
	if (!obj)
		return -EBADMSG;
	*ret = obj;
	return 0;
}

static int load_cert(const char *path, X509 **ret, struct diags *d) {
	return load_pem(path, PEM_CERT, (void **)ret, d);
}

static int load_key(const char *path, EVP_PKEY **ret, struct diags *d) {
	return load_pem(path, PEM_PRIVATE_KEY, (void **)ret, d);
}

/* The rename gives the file the temp's mode, but a key that already sat
 * there with a wider mode (copied by hand) is narrowed too. */
static int ensure_mode(const char *path, mode_t mode, struct diags *d) {
	struct stat st;
	if (stat(path, &st) < 0 || (st.st_mode & 07777) == mode)
		return 0;
	if (chmod(path, mode) < 0) {
		int r = -errno;
		diag_error(d, NULL, "cannot change mode of '%s': %s", path, strerror(-r));
		return r;
	}
	return 0;
}

/* write_file_atomic, and the sum of what it wrote noted (filesum_note):
 * a file read back at once for its sum is too fresh for that sum to be
 * kept (filesum.h), and the next build would read all of a new PKI again.
 * Nothing but this run writes to the directory (it holds its lock). */
static int write_noted(const char *path, const void *data, size_t len, mode_t mode, struct diags *d) {
	int r = write_file_atomic(path, data, len, mode, d);
	if (r == 0) {
		char sum[SHA256_HEX_LEN + 1];
		sha256_hex(data, len, sum);
		filesum_note(path, sum);
	}
	return r;
}

static int save_bio(const char *path, BIO *bio, mode_t mode, struct diags *d) {
	char *data = NULL;
	long len = BIO_get_mem_data(bio, &data);
	if (len <= 0 || !data) {
		diag_error(d, NULL, "cannot encode '%s'", path);
		return -EIO;
	}
	int r = write_noted(path, data, (size_t)len, mode, d);
	return r < 0 ? r : ensure_mode(path, mode, d);
}

static int save_key(const char *path, EVP_PKEY *key, struct diags *d) {
	/* secure-heap memory is wiped when freed */
	_cleanup_bio_ BIO *bio = BIO_new(BIO_s_secmem());
	if (!bio || !PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL))
		return crypto_fail(d, -EIO, "cannot encode '%s'", path);
	return save_bio(path, bio, KEY_MODE, d);
}

static int save_cert(const char *path, X509 *x, struct diags *d) {
	_cleanup_bio_ BIO *bio = BIO_new(BIO_s_mem());
	if (!bio || !PEM_write_bio_X509(bio, x))
		return crypto_fail(d, -EIO, "cannot encode '%s'", path);
	return save_bio(path, bio, CERT_MODE, d);
}

static int save_pubkey(const char *path, EVP_PKEY *key, struct diags *d) {
	_cleanup_bio_ BIO *bio = BIO_new(BIO_s_mem());
	if (!bio || !PEM_write_bio_PUBKEY(bio, key))
		return crypto_fail(d, -EIO, "cannot encode '%s'", path);
	return save_bio(path, bio, CERT_MODE, d);
}

/* ---- keys, names, SANs, times ----------------------------------------- */

static int key_generate(struct keygen *keys, enum pki_key_type type, const char *path, EVP_PKEY **ret, struct diags *d) {
	EVP_PKEY *k = keygen_take(keys, type);
	if (!k)
		return crypto_fail(d, -EIO, "cannot generate a key for '%s'", path);
	int r = save_key(path, k, d);
	if (r < 0) {
		EVP_PKEY_free(k);
		return r;
	}
	*ret = k;
	return 0;
}

static bool key_is_type(const EVP_PKEY *k, enum pki_key_type type) {
	if (type == PKI_KEY_ECDSA_P256) {
		char group[64];
		size_t len;
		return EVP_PKEY_is_a(k, "EC")
			&& EVP_PKEY_get_group_name(k, group, sizeof(group), &len) == 1
			&& (streq(group, "prime256v1") || streq(group, "P-256"));
	}
	return EVP_PKEY_is_a(k, "RSA") && EVP_PKEY_get_bits(k) >= 2048;
}

/* UTF8String as RFC 5280 prefers. Given as a plain string type, OpenSSL
 * skips its 64-character limit for CN: Kubernetes node names may be longer
 * and "system:node:<name>" must hold the whole name (Go's x509, which
 * Kubernetes uses, has no such limit either). */
static X509_NAME *name_make(const char *org, const char *cn) {
	X509_NAME *n = X509_NAME_new();
	if (!n)
		return NULL;
	if ((org && !X509_NAME_add_entry_by_NID(n, NID_organizationName, V_ASN1_UTF8STRING, (const unsigned char *)org, -1, -1, 0))
	    || !X509_NAME_add_entry_by_NID(n, NID_commonName, V_ASN1_UTF8STRING, (const unsigned char *)cn, -1, -1, 0)) {
		X509_NAME_free(n);
		return NULL;
	}
	return n;
}

/* "O=system:nodes, CN=system:node:w1": the order the name is written in. */
static char *name_oneline(const X509_NAME *n) {
	_cleanup_bio_ BIO *bio = BIO_new(BIO_s_mem());
	char *data = NULL;
	if (!bio || X509_NAME_print_ex(bio, n, 0, XN_FLAG_ONELINE & ~XN_FLAG_SPC_EQ) < 0) {
		ERR_clear_error();
		return xstrdup("?");
	}
	long len = BIO_get_mem_data(bio, &data);
	return len > 0 ? xstrndup(data, (size_t)len) : xstrdup("");
}

static char *san_string(const GENERAL_NAME *g) {
	int type;
	const void *val = GENERAL_NAME_get0_value(g, &type);
	const ASN1_STRING *s = val;
	switch (type) {
	case GEN_DNS:
	case GEN_EMAIL:
	case GEN_URI:
		return xasprintf("%s:%.*s", type == GEN_DNS ? "DNS" : type == GEN_EMAIL ? "email" : "URI",
				 ASN1_STRING_length(s), (const char *)ASN1_STRING_get0_data(s));
	case GEN_IPADD: {
		char text[INET6_ADDRSTRLEN];
		int len = ASN1_STRING_length(s);
		if ((len != 4 && len != 16)
		    || !inet_ntop(len == 4 ? AF_INET : AF_INET6, ASN1_STRING_get0_data(s), text, sizeof(text)))
			return xstrdup("IP:?");
		return xasprintf("IP:%s", text);
	}
	default:
		return xasprintf("othername:%d", type);
	}
}

static void cert_sans(const X509 *x, struct strv *ret) {
	GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	for (int i = 0; gens && i < sk_GENERAL_NAME_num(gens); i++)
		strv_push_take(ret, san_string(sk_GENERAL_NAME_value(gens, i)));
	GENERAL_NAMES_free(gens);
}

static int time_from_asn1(const ASN1_TIME *t, time_t *ret) {
	struct tm tm;
	if (!t || !ASN1_TIME_to_tm(t, &tm)) {
		ERR_clear_error();
		return -EINVAL;
	}
	*ret = timegm(&tm);
	return 0;
}

/* NULL when the certificate stays valid long enough to keep. */
static char *expiry_reason(const X509 *x, time_t now) {
	time_t not_after;
	if (time_from_asn1(X509_get0_notAfter(x), &not_after) < 0)
		return xstrdup("expiry date unreadable");
	if (not_after - now > (time_t)RENEW_DAYS * DAY_SECONDS)
		return NULL;
	if (not_after <= now) {
		struct tm tm;
		char date[32];
		gmtime_r(&not_after, &tm);
		strftime(date, sizeof(date), "%Y-%m-%d", &tm);
		return xasprintf("expired on %s", date);
	}
	long long days = (long long)((not_after - now) / DAY_SECONDS);
	return xasprintf("expires in %lld day%s", days, days == 1 ? "" : "s");
}


/* ---- issuing ---------------------------------------------------------- */

/* The three CAs, as kubeadm keeps them apart: a client certificate of one
 * is worthless to a server that trusts another, so a kubelet's identity
 * cannot reach etcd. */
enum ca_id { CA_KUBE, CA_ETCD, CA_FRONT_PROXY, N_CAS };
static const struct {
	const char *base;       /* files <base>.pem and <base>-key.pem */
	const char *cn;
} ca_defs[N_CAS] = {
	[CA_KUBE] = { "ca", "kube-ca" },
	[CA_ETCD] = { "etcd-ca", "etcd-ca" },
	[CA_FRONT_PROXY] = { "front-proxy-ca", "front-proxy-ca" },
};

/* The extended key usages of a leaf, as kubeadm sets them. */
enum usage { USE_CLIENT, USE_SERVER, USE_SERVER_CLIENT };

/* What a certificate should say. */
struct leaf {
	char *base;             /* files <base>.pem and <base>-key.pem */
	char *cn;
	const char *org;        /* static string or NULL */
	struct strv dns, ips;
	enum usage usage;
	enum ca_id signer;
};

static void leaves_free(struct leaf *v, size_t n) {
	for (size_t i = 0; i < n; i++) {
		free(v[i].base);
		free(v[i].cn);
		strv_release(&v[i].dns);
		strv_release(&v[i].ips);
	}
	free(v);
}

/* The wanted SANs both as an extension value and as strings, deduplicated
 * (a master may well be called "kubernetes"). */
static int sans_make(const struct leaf *l, GENERAL_NAMES **ret, struct strv *ret_strs, struct diags *d) {
	GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
	if (!gens)
		return crypto_fail(d, -ENOMEM, "cannot make SANs for '%s.pem'", l->base);
	for (size_t i = 0; i < l->dns.n + l->ips.n; i++) {
		bool is_dns = i < l->dns.n;
		const char *v = is_dns ? l->dns.v[i] : l->ips.v[i - l->dns.n];
		GENERAL_NAME *g = GENERAL_NAME_new();
		ASN1_STRING *s = NULL;
		if (is_dns) {
			s = ASN1_IA5STRING_new();
			if (s && !ASN1_STRING_set(s, v, -1)) {
				ASN1_STRING_free(s);
				s = NULL;
			}
		} else {
			s = a2i_IPADDRESS(v);
		}
		if (!g || !s) {
			GENERAL_NAME_free(g);
			ASN1_STRING_free(s);
			GENERAL_NAMES_free(gens);
			if (!is_dns) {
				ERR_clear_error();
				diag_error(d, NULL, "invalid IP address '%s' for '%s.pem'", v, l->base);
				return -EINVAL;
			}
			return crypto_fail(d, -ENOMEM, "cannot make SAN '%s'", v);
		}
		GENERAL_NAME_set0_value(g, is_dns ? GEN_DNS : GEN_IPADD, s);
		char *str = san_string(g);
		if (strv_contains(ret_strs, str) || !sk_GENERAL_NAME_push(gens, g)) {
			free(str);
			GENERAL_NAME_free(g);
			continue;
		}
		strv_push_take(ret_strs, str);
	}
	*ret = gens;
	return 0;
}

/* "SANs changed (added IP:10.0.0.5, removed IP:10.0.0.4)", or NULL. */
static char *sans_diff(const struct strv *have, const struct strv *want) {
	struct buf b = BUF_INIT;
	const char *sep = "SANs changed (";
	for (size_t i = 0; i < want->n; i++)
		if (!strv_contains(have, want->v[i])) {
			buf_printf(&b, "%sadded %s", sep, want->v[i]);
			sep = ", ";
		}
	for (size_t i = 0; i < have->n; i++)
		if (!strv_contains(want, have->v[i])) {
			buf_printf(&b, "%sremoved %s", sep, have->v[i]);
			sep = ", ";
		}
	if (!b.len)
		return NULL;
	buf_putc(&b, ')');
	return buf_steal(&b, NULL);
}

static uint32_t usage_flags(enum usage u) {
	return u == USE_CLIENT ? XKU_SSL_CLIENT : u == USE_SERVER ? XKU_SSL_SERVER : XKU_SSL_SERVER | XKU_SSL_CLIENT;
}

/* "usage changed (now client only)", or NULL: an older PKI gave kubelets
 * and the apiserver both usages. */
static char *usage_diff(X509 *x, enum usage want) {
	uint32_t xku = X509_get_extended_key_usage(x);
	ERR_clear_error();
	uint32_t have = xku == UINT32_MAX ? 0 : xku & (XKU_SSL_SERVER | XKU_SSL_CLIENT);
	if (have == usage_flags(want))
		return NULL;
	return xasprintf("usage changed (now %s)", want == USE_CLIENT ? "client only"
			 : want == USE_SERVER ? "server only" : "server and client");
}

static int add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value) {
	X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
	int ok = ext && X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	return ok ? 0 : -1;
}

static int serial_randomize(X509 *x) {
	BIGNUM *bn = BN_new();
	ASN1_INTEGER *serial = NULL;
	int ok = bn && BN_rand(bn, SERIAL_BITS, BN_RAND_TOP_ONE, BN_RAND_BOTTOM_ANY)
		&& (serial = BN_to_ASN1_INTEGER(bn, NULL)) && X509_set_serialNumber(x, serial);
	ASN1_INTEGER_free(serial);
	BN_free(bn);
	return ok ? 0 : -1;
}

/* Issues a certificate for `key`: a self-signed CA when `ca` is NULL, else
 * a leaf signed by ca/ca_key. */
static int cert_issue(time_t now, const X509_NAME *subject, const GENERAL_NAMES *sans, enum usage usage,
		      EVP_PKEY *key, X509 *ca, EVP_PKEY *ca_key, const char *path, X509 **ret, struct diags *d) {
	_cleanup_x509_ X509 *x = X509_new();
	bool is_ca = !ca;
	X509V3_CTX ctx;

	if (!x || !X509_set_version(x, X509_VERSION_3) || serial_randomize(x) < 0
	    || !ASN1_TIME_adj(X509_getm_notBefore(x), now, 0, -CLOCK_SKEW)
	    || !ASN1_TIME_adj(X509_getm_notAfter(x), now, is_ca ? CA_DAYS : LEAF_DAYS, 0)
	    || !X509_set_subject_name(x, subject)
	    || !X509_set_issuer_name(x, is_ca ? subject : X509_get_subject_name(ca))
	    || !X509_set_pubkey(x, key))
		return crypto_fail(d, -EIO, "cannot issue '%s'", path);

	memset(&ctx, 0, sizeof(ctx));
	X509V3_set_ctx(&ctx, is_ca ? x : ca, x, NULL, NULL, 0);
	const char *key_usage = is_ca ? "critical,keyCertSign,cRLSign,digitalSignature"
		/* ECDSA keys cannot encipher; RSA key exchange needs it */
		: EVP_PKEY_is_a(key, "RSA") ? "critical,digitalSignature,keyEncipherment"
		: "critical,digitalSignature";
	const char *eku = usage == USE_CLIENT ? "clientAuth" : usage == USE_SERVER ? "serverAuth" : "serverAuth,clientAuth";
	if (add_ext(x, &ctx, NID_basic_constraints, is_ca ? "critical,CA:TRUE" : "critical,CA:FALSE") < 0
	    || add_ext(x, &ctx, NID_key_usage, key_usage) < 0
	    || add_ext(x, &ctx, NID_subject_key_identifier, "hash") < 0
	    || (!is_ca && add_ext(x, &ctx, NID_authority_key_identifier, "keyid:always") < 0)
	    || (!is_ca && add_ext(x, &ctx, NID_ext_key_usage, eku) < 0)
	    || (sans && sk_GENERAL_NAME_num(sans) > 0
		&& !X509_add1_ext_i2d(x, NID_subject_alt_name, (void *)sans, 0, X509V3_ADD_DEFAULT))
	    || !X509_sign(x, is_ca ? key : ca_key, EVP_sha256()))
		return crypto_fail(d, -EIO, "cannot issue '%s'", path);

	*ret = x;
	x = NULL;
	return 0;
}

static bool signed_by(X509 *x, X509 *ca) {
	bool ok = X509_NAME_cmp(X509_get_issuer_name(x), X509_get_subject_name(ca)) == 0
		&& X509_verify(x, X509_get0_pubkey(ca)) == 1;
	ERR_clear_error();
	return ok;
}

/* ---- one run ---------------------------------------------------------- */

struct pki_run {
	const struct pki_config *cfg;
	struct diags *d;
	time_t now;
	X509 *ca[N_CAS];
	EVP_PKEY *ca_key[N_CAS];
	char *token;            /* "<id>.<secret>": wiped when the run ends */
	struct keygen *keys;    /* the keys this run lacks, made ahead */
	bool look;              /* pki_unchanged: nothing written, stops at the first change */
	struct pki_report report;
	/* cfg->checked: "<base> <cert sum> <key sum> <CA cert sum> <what
	 * it should say, hashed> <notAfter>" per leaf found sound, as read
	 * (sorted) and as this run finds them. */
	struct strv checked_old, checked_new;
};

/* A look (pki_unchanged) stops where a run would write: WOULD_CHANGE,
 * passed up as it is, never written. */
#define WOULD_CHANGE 1

/* ensure_mode, or for a look whether it would change the mode. */
static int run_mode(struct pki_run *run, const char *path, mode_t mode) {
	struct stat st;
	if (run->look)
		return stat(path, &st) == 0 && (st.st_mode & 07777) != mode ? WOULD_CHANGE : 0;
	return ensure_mode(path, mode, run->d);
}

static void report_add(struct pki_report *r, const char *name, enum pki_action action, char *reason) {
	GROW(r->v, r->cap, r->n + 1);
	r->v[r->n++] = (struct pki_event){ .name = xstrdup(name), .action = action, .reason = reason };
}

void pki_report_release(struct pki_report *r) {
	for (size_t i = 0; i < r->n; i++) {
		free(r->v[i].name);
		free(r->v[i].reason);
	}
	free(r->v);
	*r = (struct pki_report)PKI_REPORT_INIT;
}

/* A CA is made once. A CA certificate without its key is an error, never
 * a reason to replace the CA: that would invalidate every node's
 * certificate. Near expiry it is re-issued with the same key and name, so
 * what it signed stays valid. */
static int ensure_ca(struct pki_run *run, enum ca_id id) {
	struct diags *d = run->d;
	_cleanup_free_ char *cert_name = xasprintf("%s.pem", ca_defs[id].base);
	_cleanup_free_ char *key_name = xasprintf("%s-key.pem", ca_defs[id].base);
	_cleanup_free_ char *cert_path = path_join(run->cfg->dir, cert_name);
	_cleanup_free_ char *key_path = path_join(run->cfg->dir, key_name);
	_cleanup_x509_ X509 *old = NULL;
	_cleanup_pkey_ EVP_PKEY *key = NULL;
	_cleanup_name_ X509_NAME *subject = NULL;
	char *reason = NULL;
	enum pki_action action;
	int r;

	r = load_cert(cert_path, &old, d);
	if (r == -ENOENT) {
		action = PKI_CREATED;
		/* a key left without its certificate is reused, so that what it
		 * signed earlier still verifies */
		r = load_key(key_path, &key, d);
		if (r == -EBADMSG || (r == 0 && !key_is_type(key, run->cfg->key_type))) {
			ERR_clear_error();
			EVP_PKEY_free(key);
			key = NULL;
		} else if (r < 0 && r != -ENOENT) {
			return r;
		}
		subject = name_make(NULL, ca_defs[id].cn);
		if (!subject)
			return crypto_fail(d, -EIO, "cannot issue '%s'", cert_path);
	} else if (r == -EBADMSG) {
		ERR_clear_error();
		diag_error(d, NULL, "'%s' is not a PEM certificate (damaged or truncated?): restore it, or remove it and '%s' "
			   "to make a new CA", cert_path, key_path);
		return -EINVAL;
	} else if (r < 0) {
		return r;
	} else {
		r = load_key(key_path, &key, d);
		if (r == -ENOENT) {
			diag_error(d, NULL, "cannot load '%s': no such file (restore it, or remove '%s' to make a new CA)", key_path, cert_path);
			return r;
		}
		if (r == -EBADMSG) {
			/* Never replaced silently: a new CA key re-issues everything and
			 * every node would have to be rebuilt. */
			ERR_clear_error();
			diag_error(d, NULL, "'%s' is not a PEM private key (damaged or truncated?): restore it, or remove it and "
				   "'%s' to make a new CA", key_path, cert_path);
			return -EINVAL;
		}
		if (r < 0)
			return r;
		if (EVP_PKEY_eq(X509_get0_pubkey(old), key) != 1) {
			ERR_clear_error();
			diag_error(d, NULL, "'%s' does not match '%s'", key_path, cert_path);
			return -EINVAL;
		}
		if (X509_check_ca(old) == 0) {
			diag_error(d, NULL, "'%s' is not a CA certificate", cert_path);
			return -EINVAL;
		}
		reason = expiry_reason(old, run->now);
		if (!reason) {
			r = run_mode(run, key_path, KEY_MODE);
			if (r != 0)
				return r;
			report_add(&run->report, cert_name, PKI_REUSED, NULL);
			run->ca[id] = old;
			run->ca_key[id] = key;
			old = NULL;
			key = NULL;
			return 0;
		}
		if (X509_check_issued(old, old) != X509_V_OK) {
			diag_error(d, NULL, "CA '%s' %s and is not self-signed: renew it with its issuer", cert_path, reason);
			free(reason);
			return -EINVAL;
		}
		action = PKI_REISSUED;
		subject = X509_NAME_dup(X509_get_subject_name(old));
		if (!subject) {
			free(reason);
			return crypto_fail(d, -ENOMEM, "cannot issue '%s'", cert_path);
		}
	}

	if (run->look) {
		free(reason);
		return WOULD_CHANGE;
	}
	X509 *ca = NULL;
	r = key ? ensure_mode(key_path, KEY_MODE, d) : key_generate(run->keys, run->cfg->key_type, key_path, &key, d);
	if (r >= 0)
		r = cert_issue(run->now, subject, NULL, USE_CLIENT, key, NULL, NULL, cert_path, &ca, d);
	if (r >= 0) {
		r = save_cert(cert_path, ca, d);
		if (r < 0)
			X509_free(ca);
	}
	if (r < 0) {
		free(reason);
		return r;
	}
	report_add(&run->report, cert_name, action, reason);
	run->ca[id] = ca;
	run->ca_key[id] = key;
	key = NULL;
	return 0;
}

static void reason_add(struct buf *reasons, char *reason) {
	if (!reason)
		return;
	if (reasons->len)
		buf_puts(reasons, "; ");
	buf_puts(reasons, reason);
	free(reason);
}

/* ---- leaves found sound before (cfg->checked) ------------------------- */

static void checked_load(struct pki_run *run) {
	char *text = NULL;
	size_t len = 0;
	struct diags quiet = DIAGS_INIT;
	if (run->cfg->checked && read_file(run->cfg->checked, 64u << 20, &text, &len, &quiet) == 0) {
		for (char *line = text, *nl; line && *line; line = nl ? nl + 1 : NULL) {
			nl = strchr(line, '\n');
			if (nl)
				*nl = '\0';
			if (*line)
				strv_push(&run->checked_old, line);
		}
		strv_sort(&run->checked_old);
	}
	free(text);
	diags_release(&quiet);
}

static void checked_save(struct pki_run *run) {
	if (!run->cfg->checked)
		return;
	strv_sort(&run->checked_new);
	struct buf b = BUF_INIT;
	for (size_t i = 0; i < run->checked_new.n; i++)
		buf_printf(&b, "%s\n", run->checked_new.v[i]);
	struct diags quiet = DIAGS_INIT;
	write_file_atomic(run->cfg->checked, b.data ? b.data : "", b.len, 0600, &quiet);
	diags_release(&quiet);
	buf_release(&b);
}

/* "<base> <cert sum> <key sum> <CA sum> <what it should say> ": the line's
 * start for `l` as its files are now; NULL when one cannot be read. */
static char *checked_prefix(struct pki_run *run, const struct leaf *l, const char *cert_path, const char *key_path,
			    const struct strv *want_sans) {
	struct diags quiet = DIAGS_INIT;
	char cert[SHA256_HEX_LEN + 1], key[SHA256_HEX_LEN + 1], ca[SHA256_HEX_LEN + 1], want[SHA256_HEX_LEN + 1];
	_cleanup_free_ char *ca_name = xasprintf("%s.pem", ca_defs[l->signer].base);
	_cleanup_free_ char *ca_path = path_join(run->cfg->dir, ca_name);
	bool ok = filesum(cert_path, cert, NULL, &quiet) == 0 && filesum(key_path, key, NULL, &quiet) == 0 &&
		  filesum(ca_path, ca, NULL, &quiet) == 0;
	diags_release(&quiet);
	if (!ok)
		return NULL;
	struct buf b = BUF_INIT;
	buf_printf(&b, "%s\n%s\n%d\n%d\n%d\n", l->org ? l->org : "", l->cn, (int)l->usage, (int)l->signer,
		   (int)run->cfg->key_type);
	for (size_t i = 0; i < want_sans->n; i++)
		buf_printf(&b, "%s\n", want_sans->v[i]);
	sha256_hex(b.data, b.len, want);
	buf_release(&b);
	return xasprintf("%s %s %s %s %s ", l->base, cert, key, ca, want);
}

/* The remembered notAfter of the line starting with `prefix`, or -1. */
static long long checked_find(const struct pki_run *run, const char *prefix) {
	size_t lo = 0, hi = run->checked_old.n, n = strlen(prefix);
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strncmp(run->checked_old.v[mid], prefix, n);
		if (c == 0) {
			char *end = NULL;
			long long t = strtoll(run->checked_old.v[mid] + n, &end, 10);
			return end && *end == '\0' && t > 0 ? t : -1;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

/* The line of a leaf found sound: its checked_prefix and notAfter. */
static void checked_keep(struct pki_run *run, const char *prefix, long long not_after) {
	strv_push_take(&run->checked_new, xasprintf("%s%lld", prefix, not_after));
}

/* Remembers `l` as found sound, with `x` its certificate. */
static void checked_add(struct pki_run *run, const struct leaf *l, const char *cert_path, const char *key_path,
			const struct strv *want_sans, const X509 *x) {
	time_t not_after;
	if (!run->cfg->checked || time_from_asn1(X509_get0_notAfter(x), &not_after) < 0)
		return;
	_cleanup_free_ char *prefix = checked_prefix(run, l, cert_path, key_path, want_sans);
	if (prefix)
		checked_keep(run, prefix, (long long)not_after);
}

static int ensure_leaf(struct pki_run *run, const struct leaf *l) {
	struct diags *d = run->d;
	_cleanup_free_ char *cert_name = xasprintf("%s.pem", l->base);
	_cleanup_free_ char *cert_path = path_join(run->cfg->dir, cert_name);
	_cleanup_free_ char *key_name = xasprintf("%s-key.pem", l->base);
	_cleanup_free_ char *key_path = path_join(run->cfg->dir, key_name);
	_cleanup_x509_ X509 *old = NULL;
	_cleanup_x509_ X509 *x = NULL;
	_cleanup_pkey_ EVP_PKEY *key = NULL;
	_cleanup_name_ X509_NAME *subject = name_make(l->org, l->cn);
	_cleanup_gens_ GENERAL_NAMES *sans = NULL;
	X509 *ca = run->ca[l->signer];
	struct strv want_sans = STRV_INIT, have_sans = STRV_INIT;
	struct buf reasons = BUF_INIT;
	int r;

	if (!subject) {
		r = crypto_fail(d, -EINVAL, "cannot make the subject of '%s' (CN '%s')", cert_name, l->cn);
		goto out;
	}
	r = sans_make(l, &sans, &want_sans, d);
	if (r < 0)
		goto out;

	/* Found sound before, the same bytes: only its expiry can have moved. */
	char *prefix = run->cfg->checked ? checked_prefix(run, l, cert_path, key_path, &want_sans) : NULL;
	long long not_after = prefix ? checked_find(run, prefix) : -1;
	if (not_after > 0 && not_after - (long long)run->now > (long long)RENEW_DAYS * DAY_SECONDS) {
		r = run_mode(run, key_path, KEY_MODE);
		if (r == 0) {
			report_add(&run->report, cert_name, PKI_REUSED, NULL);
			checked_keep(run, prefix, not_after);
		}
		free(prefix);
		goto out;
	}
	free(prefix);

	r = load_cert(cert_path, &old, d);
	if (r == -EBADMSG) {
		ERR_clear_error();
		reason_add(&reasons, xstrdup("certificate unreadable"));
	} else if (r < 0 && r != -ENOENT) {
		goto out;
	}
	r = load_key(key_path, &key, d);
	if (r == -EBADMSG || r == -ENOENT) {
		ERR_clear_error();
		if (old)
			reason_add(&reasons, xstrdup(r == -ENOENT ? "key missing" : "key unreadable"));
	} else if (r < 0) {
		goto out;
	}
	r = 0;

	if (old) {
		if (key && EVP_PKEY_eq(X509_get0_pubkey(old), key) != 1) {
			/* someone else's key, perhaps: never keep it */
			ERR_clear_error();
			reason_add(&reasons, xstrdup("key does not match"));
			EVP_PKEY_free(key);
			key = NULL;
		}
		if (!signed_by(old, ca))
			reason_add(&reasons, xstrdup("CA changed"));
		if (X509_NAME_cmp(X509_get_subject_name(old), subject) != 0)
			reason_add(&reasons, xstrdup("subject changed"));
		cert_sans(old, &have_sans);
		reason_add(&reasons, sans_diff(&have_sans, &want_sans));
		reason_add(&reasons, usage_diff(old, l->usage));
		reason_add(&reasons, expiry_reason(old, run->now));
		if (!reasons.len) {
			r = run_mode(run, key_path, KEY_MODE);
			if (r == 0) {
				report_add(&run->report, cert_name, PKI_REUSED, NULL);
				checked_add(run, l, cert_path, key_path, &want_sans, old);
			}
			goto out;
		}
	}

	if (run->look) {
		r = WOULD_CHANGE;
		goto out;
	}
	if (key && !key_is_type(key, run->cfg->key_type)) {
		EVP_PKEY_free(key);
		key = NULL;
	}
	if (key)
		r = ensure_mode(key_path, KEY_MODE, d);
	else
		r = key_generate(run->keys, run->cfg->key_type, key_path, &key, d);
	if (r < 0)
		goto out;
	r = cert_issue(run->now, subject, sans, l->usage, key, ca, run->ca_key[l->signer], cert_path, &x, d);
	if (r < 0)
		goto out;
	r = save_cert(cert_path, x, d);
	if (r < 0)
		goto out;
	checked_add(run, l, cert_path, key_path, &want_sans, x);
	if (old || reasons.len)
		report_add(&run->report, cert_name, PKI_REISSUED, buf_steal(&reasons, NULL));
	else
		report_add(&run->report, cert_name, PKI_CREATED, NULL);
out:
	strv_release(&want_sans);
	strv_release(&have_sans);
	buf_release(&reasons);
	return r;
}

/* The service-account key signs tokens; a new one invalidates every token
 * issued, so an existing readable key is always kept. */
static int ensure_service_account(struct pki_run *run) {
	struct diags *d = run->d;
	_cleanup_free_ char *key_path = path_join(run->cfg->dir, "service-account-key.pem");
	_cleanup_free_ char *pub_path = path_join(run->cfg->dir, "service-account.pem");
	_cleanup_pkey_ EVP_PKEY *key = NULL;
	_cleanup_pkey_ EVP_PKEY *pub = NULL;
	enum pki_action action = PKI_REUSED;
	char *reason = NULL;
	int r;

	r = load_key(key_path, &key, d);
	if (r == -ENOENT || r == -EBADMSG) {
		ERR_clear_error();
		action = r == -ENOENT ? PKI_CREATED : PKI_REISSUED;
		if (r == -EBADMSG)
			reason = xstrdup("key unreadable");
		r = run->look ? WOULD_CHANGE : key_generate(run->keys, run->cfg->key_type, key_path, &key, d);
	} else if (r == 0) {
		r = run_mode(run, key_path, KEY_MODE);
	}
	if (r != 0)
		goto fail;

	r = load_pem(pub_path, PEM_PUBLIC_KEY, (void **)&pub, d);
	if (r < 0 && r != -ENOENT && r != -EBADMSG)
		goto fail;
	ERR_clear_error();
	if (r < 0 || EVP_PKEY_eq(pub, key) != 1) {
		ERR_clear_error();
		if (action == PKI_REUSED) {
			action = PKI_REISSUED;
			reason = xstrdup(r == -ENOENT ? "public key missing"
					 : r < 0 ? "public key unreadable" : "public key does not match");
		}
		r = run->look ? WOULD_CHANGE : save_pubkey(pub_path, key, d);
		if (r != 0)
			goto fail;
	}
	report_add(&run->report, "service-account.pem", action, reason);
	return 0;
fail:
	free(reason);
	return r;
}

/* ---- the bootstrap token ---------------------------------------------- */

#define TOKEN_FILE "bootstrap-token"
#define TOKEN_SECRET_FILE "bootstrap-token.yaml"
#define TOKEN_ID_LEN 6
#define TOKEN_SECRET_LEN 16
#define TOKEN_LEN (TOKEN_ID_LEN + 1 + TOKEN_SECRET_LEN)
#define TOKEN_CHARS "abcdefghijklmnopqrstuvwxyz0123456789"
/* The group kubeadm gives its default token: kubeadm's RBAC lets it post
 * node CSRs, have them approved and read what joining needs. */
#define TOKEN_GROUPS "system:bootstrappers:kubeadm:default-node-token"

/* [a-z0-9]{6}\.[a-z0-9]{16}, the format the apiserver's bootstrap
 * authenticator accepts. */
static bool token_valid(const char *s, size_t len) {
	if (len != TOKEN_LEN)
		return false;
	for (size_t i = 0; i < len; i++)
		if (i == TOKEN_ID_LEN ? s[i] != '.' : !s[i] || !strchr(TOKEN_CHARS, s[i]))
			return false;
	return true;
}

/* Uniform over the 36 characters: bytes of 252 and up are dropped, so no
 * character is likelier than another. */
static int token_generate(char ret[TOKEN_LEN + 1], struct diags *d) {
	unsigned char buf[64];
	size_t n = 0;
	while (n < TOKEN_LEN) {
		if (RAND_bytes(buf, sizeof(buf)) != 1)
			return crypto_fail(d, -EIO, "cannot make a bootstrap token");
		for (size_t i = 0; i < sizeof(buf) && n < TOKEN_LEN; i++) {
			if (n == TOKEN_ID_LEN) {
				ret[n++] = '.';
				continue;
			}
			if (buf[i] < 252)
				ret[n++] = TOKEN_CHARS[buf[i] % 36];
		}
	}
	ret[TOKEN_LEN] = '\0';
	OPENSSL_cleanse(buf, sizeof(buf));
	return 0;
}

/* The token of `dir` (a trailing newline allowed): -ENOENT silently,
 * -EINVAL with a message when the file holds something else. */
static int token_read(const char *dir, struct secret *ret, struct diags *d) {
	_cleanup_free_ char *path = path_join(dir, TOKEN_FILE);
	_cleanup_secret_ struct secret s = { 0 };
	int r = read_pem(path, &s, d);
	if (r < 0)
		return r;
	size_t len = s.len;
	if (len && s.data[len - 1] == '\n')
		len--;
	if (!token_valid(s.data, len)) {
		diag_error(d, NULL, "'%s' is not a bootstrap token (6 and 16 characters of a-z and 0-9 joined by '.'): "
			   "restore it, or make a new one with 'dlws-mkimage certs --rotate-token'", path);
		return -EINVAL;
	}
	s.data[len] = '\0';
	s.len = len;
	*ret = s;
	s = (struct secret){ 0 };
	return 0;
}

/* Made once and kept: every worker medium built so far carries it. A
 * rotation replaces it whatever the file holds. */
static int ensure_token(struct pki_run *run) {
	struct diags *d = run->d;
	_cleanup_free_ char *path = path_join(run->cfg->dir, TOKEN_FILE);
	_cleanup_secret_ struct secret old = { 0 };
	char fresh[TOKEN_LEN + 2];
	bool existed = path_exists(path);
	int r;
	if (!run->cfg->rotate_token) {
		r = token_read(run->cfg->dir, &old, d);
		if (r < 0 && r != -ENOENT)
			return r;
		if (r == 0) {
			r = run_mode(run, path, KEY_MODE);
			if (r != 0)
				return r;
			run->token = xstrdup(old.data);
			report_add(&run->report, TOKEN_FILE, PKI_REUSED, NULL);
			return 0;
		}
	}
	if (run->look)
		return WOULD_CHANGE;
	r = token_generate(fresh, d);
	if (r == 0) {
		fresh[TOKEN_LEN] = '\n';
		r = write_noted(path, fresh, TOKEN_LEN + 1, KEY_MODE, d);
		fresh[TOKEN_LEN] = '\0';
	}
	if (r == 0)
		r = ensure_mode(path, KEY_MODE, d);
	if (r == 0) {
		run->token = xstrdup(fresh);
		report_add(&run->report, TOKEN_FILE, existed ? PKI_REISSUED : PKI_CREATED, existed ? xstrdup("rotated") : NULL);
	}
	OPENSSL_cleanse(fresh, sizeof(fresh));
	return r;
}

/* ---- kubeconfigs and the token Secret ----------------------------------- */

/* A double-quoted YAML scalar, whatever the text holds. */
static char *yaml_quote(const char *s) {
	struct buf b = BUF_INIT;
	buf_putc(&b, '"');
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			buf_printf(&b, "\\%c", *p);
		else if (*p < 0x20 || *p == 0x7f)
			buf_printf(&b, "\\x%02x", *p);
		else
			buf_putc(&b, (char)*p);
	}
	buf_putc(&b, '"');
	return buf_steal(&b, NULL);
}

static char *default_apiserver_url(const struct cluster *c) {
	for (size_t i = 0; i < c->n_nodes; i++)
		if (c->nodes[i].role == ROLE_MASTER)
			return xasprintf("https://%s:6443", c->nodes[i].ip);
	return NULL;
}

static const char *cluster_name(const struct cluster *c) {
	return c->name && *c->name ? c->name : "kubernetes";
}

/* The value of the first "<key>: " line of a file we wrote, or NULL. */
static const char *field_of(const char *text, const char *key, size_t *ret_len) {
	size_t klen = strlen(key);
	for (const char *line = text; line && *line;) {
		const char *p = line + strspn(line, " ");
		const char *end = strchrnul(p, '\n');
		if ((size_t)(end - p) > klen + 1 && memcmp(p, key, klen) == 0 && p[klen] == ':' && p[klen + 1] == ' ') {
			*ret_len = (size_t)(end - p) - klen - 2;
			return p + klen + 2;
		}
		line = *end ? end + 1 : NULL;
	}
	return NULL;
}

struct field_label {
	const char *key, *label;
};

static const struct field_label kubeconfig_fields[] = {
	{ "server", "server changed" },
	{ "certificate-authority-data", "CA changed" },
	{ "client-certificate-data", "certificate changed" },
	{ "client-key-data", "key changed" },
	{ "token", "token changed" },
};

static const struct field_label token_secret_fields[] = {
	{ "token-id", "token changed" },
	{ "token-secret", "token changed" },
};

/* What changed between the file we wrote before and now, by its fields;
 * never a field's value (some are secret). */
static char *derived_diff(const char *old, const char *now, const struct field_label *fields, size_t n) {
	struct buf b = BUF_INIT;
	for (size_t i = 0; i < n; i++) {
		size_t la = 0, lb = 0;
		const char *a = field_of(old, fields[i].key, &la);
		const char *c = field_of(now, fields[i].key, &lb);
		bool same = (!a && !c) || (a && c && la == lb && memcmp(a, c, la) == 0);
		if (same || (b.data && strstr(b.data, fields[i].label)))
			continue;
		buf_printf(&b, "%s%s", b.len ? "; " : "", fields[i].label);
	}
	if (!b.len)
		buf_puts(&b, "content changed");
	return buf_steal(&b, NULL);
}

/* A file made from others (a kubeconfig, the token Secret): 0600, and
 * rewritten only when its content changes, so that an unchanged PKI leaves
 * it untouched. */
static int ensure_derived(struct pki_run *run, const char *name, const char *text, const struct field_label *fields,
			  size_t n_fields) {
	struct diags *d = run->d;
	_cleanup_free_ char *path = path_join(run->cfg->dir, name);
	_cleanup_secret_ struct secret old = { 0 };
	size_t len = strlen(text);
	int r = read_pem(path, &old, d);
	if (r < 0 && r != -ENOENT)
		return r;
	if (r == 0 && old.len == len && memcmp(old.data, text, len) == 0) {
		r = run_mode(run, path, KEY_MODE);
		if (r == 0)
			report_add(&run->report, name, PKI_REUSED, NULL);
		return r;
	}
	if (run->look)
		return WOULD_CHANGE;
	r = write_noted(path, text, len, KEY_MODE, d);
	if (r == 0)
		r = ensure_mode(path, KEY_MODE, d);
	if (r == 0)
		report_add(&run->report, name, old.data ? PKI_REISSUED : PKI_CREATED,
			   old.data ? derived_diff(old.data, text, fields, n_fields) : NULL);
	return r;
}

/* One kubeconfig as kubeadm writes them: the cluster named after ours,
 * user `user`, context "<user>@<cluster>"; a client certificate and key
 * (files <cert_base>.pem, -key.pem) or, without cert_base, the bootstrap
 * token. */
struct kubeconfig {
	char *file;
	char *user;
	char *cert_base;        /* NULL: token auth */
};

static void kubeconfigs_free(struct kubeconfig *v, size_t n) {
	for (size_t i = 0; i < n; i++) {
		free(v[i].file);
		free(v[i].user);
		free(v[i].cert_base);
	}
	free(v);
}

static int ensure_kubeconfig(struct pki_run *run, const struct kubeconfig *k) {
	struct diags *d = run->d;
	const struct cluster *c = run->cfg->cluster;
	_cleanup_free_ char *path = path_join(run->cfg->dir, k->file);
	_cleanup_free_ char *ca_path = path_join(run->cfg->dir, "ca.pem");
	_cleanup_free_ char *url = run->cfg->apiserver_url && *run->cfg->apiserver_url ? xstrdup(run->cfg->apiserver_url)
		: default_apiserver_url(c);
	_cleanup_secret_ struct secret ca = { 0 }, cert = { 0 }, key = { 0 };
	_cleanup_free_ char *ca64 = NULL, *cert64 = NULL, *qname = NULL, *qurl = NULL, *quser = NULL, *qcontext = NULL;
	_cleanup_secret_str_ char *key64 = NULL, *qtoken = NULL, *creds = NULL, *text = NULL;
	int r;

	if (!url) {
		diag_error(d, NULL, "cannot write '%s': no apiserver url and no master node", path);
		return -EINVAL;
	}
	r = read_pem(ca_path, &ca, d);
	if (r == 0 && k->cert_base) {
		_cleanup_free_ char *cert_path = xasprintf("%s/%s.pem", run->cfg->dir, k->cert_base);
		_cleanup_free_ char *key_path = xasprintf("%s/%s-key.pem", run->cfg->dir, k->cert_base);
		r = read_pem(cert_path, &cert, d);
		if (r == 0)
			r = read_pem(key_path, &key, d);
	}
	if (r < 0) {
		if (r == -ENOENT)
			diag_error(d, NULL, "cannot write '%s': a certificate or key is missing", path);
		return r;
	}
	if (k->cert_base) {
		cert64 = base64_encode(cert.data, cert.len);
		key64 = base64_encode(key.data, key.len);
		creds = xasprintf("    client-certificate-data: %s\n"
				  "    client-key-data: %s\n", cert64, key64);
	} else {
		qtoken = yaml_quote(run->token);
		creds = xasprintf("    token: %s\n", qtoken);
	}
	ca64 = base64_encode(ca.data, ca.len);
	const char *name = cluster_name(c);
	qname = yaml_quote(name);
	qurl = yaml_quote(url);
	quser = yaml_quote(k->user);
	_cleanup_free_ char *context = xasprintf("%s@%s", k->user, name);
	qcontext = yaml_quote(context);
	text = xasprintf("apiVersion: v1\n"
			 "kind: Config\n"
			 "clusters:\n"
			 "- name: %s\n"
			 "  cluster:\n"
			 "    server: %s\n"
			 "    certificate-authority-data: %s\n"
			 "users:\n"
			 "- name: %s\n"
			 "  user:\n"
			 "%s"
			 "contexts:\n"
			 "- name: %s\n"
			 "  context:\n"
			 "    cluster: %s\n"
			 "    user: %s\n"
			 "current-context: %s\n",
			 qname, qurl, ca64, quser, creds, qcontext, qname, quser, qcontext);
	return ensure_derived(run, k->file, text, kubeconfig_fields, ARRAY_SIZE(kubeconfig_fields));
}

/* The Secret that makes the token valid, as kubeadm creates it (no
 * expiration: media built today must still join a worker next year). */
static int ensure_token_secret(struct pki_run *run) {
	_cleanup_free_ char *id = xstrndup(run->token, TOKEN_ID_LEN);
	_cleanup_secret_str_ char *text = xasprintf(
		"# The bootstrap token workers join with, made by dlws-mkimage: the first\n"
		"# master applies it. Rotate with 'dlws-mkimage certs --rotate-token'.\n"
		"apiVersion: v1\n"
		"kind: Secret\n"
		"metadata:\n"
		"  name: bootstrap-token-%s\n"
		"  namespace: kube-system\n"
		"type: bootstrap.kubernetes.io/token\n"
		"stringData:\n"
		"  description: \"dlws-mkimage: the token workers join with\"\n"
		"  token-id: \"%s\"\n"
		"  token-secret: \"%s\"\n"
		"  usage-bootstrap-authentication: \"true\"\n"
		"  usage-bootstrap-signing: \"true\"\n"
		"  auth-extra-groups: \"" TOKEN_GROUPS "\"\n",
		id, id, run->token + TOKEN_ID_LEN + 1);
	return ensure_derived(run, TOKEN_SECRET_FILE, text, token_secret_fields, ARRAY_SIZE(token_secret_fields));
}

/* The kubeconfig the PKI once wrote with a system:masters certificate:
 * admin.conf replaces it, and a stale copy of that power does not stay
 * behind in the directory. */
#define OLD_ADMIN_KUBECONFIG "admin.kubeconfig"

static int remove_superseded(struct pki_run *run) {
	_cleanup_free_ char *path = path_join(run->cfg->dir, OLD_ADMIN_KUBECONFIG);
	if (run->look)
		return path_exists(path) ? WOULD_CHANGE : 0;
	if (unlink(path) < 0) {
		if (errno == ENOENT)
			return 0;
		int r = -errno;
		diag_error(run->d, NULL, "cannot remove '%s': %s", path, strerror(-r));
		return r;
	}
	report_add(&run->report, OLD_ADMIN_KUBECONFIG, PKI_REMOVED, xstrdup("replaced by admin.conf"));
	return 0;
}

/* ---- what to issue ---------------------------------------------------- */

static struct leaf *leaf_add(struct leaf **v, size_t *n, size_t *cap, char *base, char *cn, const char *org,
			     enum usage usage, enum ca_id signer) {
	GROW(*v, *cap, *n + 1);
	struct leaf *l = &(*v)[(*n)++];
	*l = (struct leaf){ .base = base, .cn = cn, .org = org, .usage = usage, .signer = signer,
			    .dns = STRV_INIT, .ips = STRV_INIT };
	return l;
}

static bool ip_valid(const char *ip) {
	ASN1_OCTET_STRING *o = ip ? a2i_IPADDRESS(ip) : NULL;
	ASN1_OCTET_STRING_free(o);
	ERR_clear_error();
	return o != NULL;
}

static bool has_kubelet(const struct node *n) {
	return n->role == ROLE_MASTER || n->role == ROLE_WORKER;
}

/* Hostnames become file names: a clash ("a" and "a-key" both give
 * kubelet-a-key.pem) would let one node's key overwrite another's cert. */
static int check_file_names(const struct leaf *v, size_t n, const struct kubeconfig *k, size_t n_k, struct diags *d) {
	static const char *const fixed[] = { "service-account.pem", "service-account-key.pem", TOKEN_FILE,
					     TOKEN_SECRET_FILE, OLD_ADMIN_KUBECONFIG };
	struct strv names = STRV_INIT;
	int r = 0;
	for (size_t i = 0; i < ARRAY_SIZE(fixed); i++)
		strv_push(&names, fixed[i]);
	for (size_t i = 0; i < N_CAS; i++) {
		strv_push_take(&names, xasprintf("%s.pem", ca_defs[i].base));
		strv_push_take(&names, xasprintf("%s-key.pem", ca_defs[i].base));
	}
	for (size_t i = 0; i < n + n_k && r == 0; i++)
		for (int j = 0; j < (i < n ? 2 : 1) && r == 0; j++) {
			char *name = i >= n ? xstrdup(k[i - n].file) : xasprintf(j ? "%s-key.pem" : "%s.pem", v[i].base);
			if (strv_contains(&names, name)) {
				diag_error(d, NULL, "two files of the pki would share the name '%s': rename one of the nodes", name);
				free(name);
				r = -EINVAL;
			} else {
				strv_push_take(&names, name);
			}
		}
	strv_release(&names);
	return r;
}

/* The host of "https://host:port/...", for the apiserver's SANs (a load
 * balancer's name, say); NULL when there is none. */
static char *url_host(const char *url) {
	const char *p = url ? strstr(url, "://") : NULL;
	if (!p)
		return NULL;
	p += 3;
	if (*p == '[') {
		const char *end = strchr(p, ']');
		return end ? xstrndup(p + 1, (size_t)(end - p - 1)) : NULL;
	}
	size_t len = strcspn(p, ":/");
	return len ? xstrndup(p, len) : NULL;
}

/* In report order: apiserver, apiserver-kubelet-client,
 * apiserver-etcd-client, front-proxy-client, etcd per node, the control
 * plane's identities, admin, super-admin, kubelet per master and worker. */
static int leaves_for_cluster(const struct pki_config *cfg, struct leaf **ret, size_t *ret_n, struct diags *d) {
	const struct cluster *c = cfg->cluster;
	struct leaf *v = NULL, *l;
	size_t n = 0, cap = 0;

	/* checked before anything is written, so bad input leaves no half PKI */
	if (!ip_valid(c->service_ip)) {
		diag_error(d, NULL, "invalid service IP '%s' for the apiserver certificate", c->service_ip ? c->service_ip : "");
		return -EINVAL;
	}
	for (size_t i = 0; i < c->n_nodes; i++) {
		const struct node *node = &c->nodes[i];
		if (!node->hostname || !hostname_valid(node->hostname)) {
			diag_error(d, &node->loc, "invalid hostname '%s' for a certificate", node->hostname ? node->hostname : "");
			return -EINVAL;
		}
		if (!ip_valid(node->ip)) {
			diag_error(d, &node->loc, "invalid IP address '%s' for node '%s'", node->ip ? node->ip : "", node->hostname);
			return -EINVAL;
		}
	}

	l = leaf_add(&v, &n, &cap, xstrdup("apiserver"), xstrdup("kube-apiserver"), NULL, USE_SERVER, CA_KUBE);
	strv_push(&l->dns, "kubernetes");
	strv_push(&l->dns, "kubernetes.default");
	strv_push(&l->dns, "kubernetes.default.svc");
	strv_push_take(&l->dns, xasprintf("kubernetes.default.svc.%s", c->domain ? c->domain : DEFAULT_DOMAIN));
	strv_push(&l->ips, c->service_ip);
	strv_push(&l->ips, "127.0.0.1");
	for (size_t i = 0; i < c->n_nodes; i++)
		if (c->nodes[i].role == ROLE_MASTER) {
			strv_push(&l->dns, c->nodes[i].hostname);
			strv_push(&l->ips, c->nodes[i].ip);
		}
	char *host = url_host(cfg->apiserver_url);
	if (host && ip_valid(host))
		strv_push_take(&l->ips, host);
	else if (host && hostname_valid(host))
		strv_push_take(&l->dns, host);
	else
		free(host);

	leaf_add(&v, &n, &cap, xstrdup("apiserver-kubelet-client"), xstrdup("kube-apiserver-kubelet-client"),
		 "kubeadm:cluster-admins", USE_CLIENT, CA_KUBE);
	leaf_add(&v, &n, &cap, xstrdup("apiserver-etcd-client"), xstrdup("kube-apiserver-etcd-client"), "system:masters",
		 USE_CLIENT, CA_ETCD);
	leaf_add(&v, &n, &cap, xstrdup("front-proxy-client"), xstrdup("front-proxy-client"), NULL, USE_CLIENT,
		 CA_FRONT_PROXY);

	for (size_t i = 0; i < c->n_nodes; i++) {
		const struct node *node = &c->nodes[i];
		if (node->role != ROLE_ETCD)
			continue;
		l = leaf_add(&v, &n, &cap, xasprintf("etcd-%s-server", node->hostname), xstrdup(node->hostname), NULL,
			     USE_SERVER_CLIENT, CA_ETCD);
		strv_push(&l->dns, "localhost");
		strv_push(&l->dns, node->hostname);
		strv_push(&l->ips, "127.0.0.1");
		strv_push(&l->ips, node->ip);
		/* peers dial each other by name or IP and present this as client too */
		l = leaf_add(&v, &n, &cap, xasprintf("etcd-%s-peer", node->hostname), xstrdup(node->hostname), NULL,
			     USE_SERVER_CLIENT, CA_ETCD);
		strv_push(&l->dns, node->hostname);
		strv_push(&l->ips, node->ip);
	}

	leaf_add(&v, &n, &cap, xstrdup("controller-manager"), xstrdup("system:kube-controller-manager"), NULL, USE_CLIENT, CA_KUBE);
	leaf_add(&v, &n, &cap, xstrdup("scheduler"), xstrdup("system:kube-scheduler"), NULL, USE_CLIENT, CA_KUBE);
	leaf_add(&v, &n, &cap, xstrdup("kube-proxy"), xstrdup("system:kube-proxy"), NULL, USE_CLIENT, CA_KUBE);
	leaf_add(&v, &n, &cap, xstrdup("admin"), xstrdup("kubernetes-admin"), "kubeadm:cluster-admins", USE_CLIENT, CA_KUBE);
	leaf_add(&v, &n, &cap, xstrdup("super-admin"), xstrdup("kubernetes-super-admin"), "system:masters", USE_CLIENT, CA_KUBE);

	/* The kubelet's client identity, for its kubelet.conf; it makes its
	 * own serving certificate, as under kubeadm. */
	for (size_t i = 0; i < c->n_nodes; i++) {
		const struct node *node = &c->nodes[i];
		if (has_kubelet(node))
			leaf_add(&v, &n, &cap, xasprintf("kubelet-%s", node->hostname), xasprintf("system:node:%s", node->hostname),
				 "system:nodes", USE_CLIENT, CA_KUBE);
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

static void kubeconfig_add(struct kubeconfig **v, size_t *n, size_t *cap, char *file, const char *user, char *cert_base) {
	GROW(*v, *cap, *n + 1);
	(*v)[(*n)++] = (struct kubeconfig){ .file = file, .user = xstrdup(user), .cert_base = cert_base };
}

/* The kubeconfigs kubeadm writes, with its user names. */
static void kubeconfigs_for_cluster(const struct cluster *c, struct kubeconfig **ret, size_t *ret_n) {
	struct kubeconfig *v = NULL;
	size_t n = 0, cap = 0;
	kubeconfig_add(&v, &n, &cap, xstrdup("admin.conf"), "kubernetes-admin", xstrdup("admin"));
	kubeconfig_add(&v, &n, &cap, xstrdup("super-admin.conf"), "kubernetes-super-admin", xstrdup("super-admin"));
	kubeconfig_add(&v, &n, &cap, xstrdup("controller-manager.conf"), "system:kube-controller-manager", xstrdup("controller-manager"));
	kubeconfig_add(&v, &n, &cap, xstrdup("scheduler.conf"), "system:kube-scheduler", xstrdup("scheduler"));
	kubeconfig_add(&v, &n, &cap, xstrdup("kube-proxy.conf"), "system:kube-proxy", xstrdup("kube-proxy"));
	for (size_t i = 0; i < c->n_nodes; i++) {
		const struct node *node = &c->nodes[i];
		if (!has_kubelet(node))
			continue;
		_cleanup_free_ char *user = xasprintf("system:node:%s", node->hostname);
		kubeconfig_add(&v, &n, &cap, xasprintf("kubelet-%s.conf", node->hostname), user,
			       xasprintf("kubelet-%s", node->hostname));
	}
	kubeconfig_add(&v, &n, &cap, xstrdup("bootstrap-kubelet.conf"), "tls-bootstrap-token-user", NULL);
	*ret = v;
	*ret_n = n;
}

/* How many keys a run will make: those of the CAs, certificates and the
 * service account whose key file is missing (a CA's only with its
 * certificate missing too). Keys found unreadable or of another type are
 * made too, when asked for. */
static size_t keys_missing(const struct pki_config *cfg, const struct leaf *leaves, size_t n_leaves) {
	size_t n = 0;
	for (int i = 0; i < N_CAS; i++) {
		_cleanup_free_ char *cert = xasprintf("%s/%s.pem", cfg->dir, ca_defs[i].base);
		_cleanup_free_ char *key = xasprintf("%s/%s-key.pem", cfg->dir, ca_defs[i].base);
		n += !path_exists(cert) && !path_exists(key);
	}
	for (size_t i = 0; i < n_leaves; i++) {
		_cleanup_free_ char *key = xasprintf("%s/%s-key.pem", cfg->dir, leaves[i].base);
		n += !path_exists(key);
	}
	_cleanup_free_ char *sa = path_join(cfg->dir, "service-account-key.pem");
	return n + !path_exists(sa);
}

/* pki_ensure, or with `look` pki_unchanged's look: WOULD_CHANGE at the
 * first file it would write. */
static int pki_run(const struct pki_config *cfg, bool look, struct pki_report *ret_report, struct diags *d) {
	struct pki_run run = { .cfg = cfg, .d = d, .look = look, .report = PKI_REPORT_INIT };
	struct leaf *leaves = NULL;
	struct kubeconfig *confs = NULL;
	size_t n_leaves = 0, n_confs = 0;
	int r;

	if (!cfg->dir || !cfg->cluster) {
		diag_error(d, NULL, "the pki needs a directory and a cluster");
		return -EINVAL;
	}
	run.now = cfg->now ? cfg->now : time(NULL);
	ERR_clear_error();

	r = leaves_for_cluster(cfg, &leaves, &n_leaves, d);
	if (r < 0)
		return r;
	kubeconfigs_for_cluster(cfg->cluster, &confs, &n_confs);
	r = check_file_names(leaves, n_leaves, confs, n_confs, d);
	if (r < 0)
		goto out;
	if (look && !path_exists(cfg->dir)) {
		r = WOULD_CHANGE;
		goto out;
	}
	if (!path_exists(cfg->dir)) {
		r = mkdir_p(cfg->dir, 0700);
		if (r < 0) {
			diag_error(d, NULL, "cannot create '%s': %s", cfg->dir, strerror(-r));
			goto out;
		}
	}
	size_t missing = keys_missing(cfg, leaves, n_leaves);
	if (look && missing) {
		r = WOULD_CHANGE;
		goto out;
	}
	checked_load(&run);
	if (!look)
		run.keys = keygen_start(cfg->key_type, missing, cores_available(8));
	for (int i = 0; r == 0 && i < N_CAS; i++)
		r = ensure_ca(&run, (enum ca_id)i);
	for (size_t i = 0; r == 0 && i < n_leaves; i++)
		r = ensure_leaf(&run, &leaves[i]);
	if (r == 0)
		r = ensure_service_account(&run);
	if (r == 0)
		r = ensure_token(&run);
	for (size_t i = 0; r == 0 && i < n_confs; i++)
		r = ensure_kubeconfig(&run, &confs[i]);
	if (r == 0)
		r = ensure_token_secret(&run);
	if (r == 0)
		r = remove_superseded(&run);
	if (r == 0)
		checked_save(&run);
	if (r == 0 && ret_report) {
		*ret_report = run.report;
		run.report = (struct pki_report)PKI_REPORT_INIT;
	}
out:
	keygen_stop(run.keys);
	leaves_free(leaves, n_leaves);
	kubeconfigs_free(confs, n_confs);
	pki_report_release(&run.report);
	for (int i = 0; i < N_CAS; i++) {
		X509_free(run.ca[i]);
		EVP_PKEY_free(run.ca_key[i]);
	}
	secret_freep(&run.token);
	strv_release(&run.checked_old);
	strv_release(&run.checked_new);
	ERR_clear_error();
	return r;
}

int pki_ensure(const struct pki_config *cfg, struct pki_report *ret_report, struct diags *d) {
	int r = pki_run(cfg, false, ret_report, d);
	return r < 0 ? r : 0;
}

int pki_unchanged(const struct pki_config *cfg, struct pki_report *ret_report, struct diags *d) {
	int r = pki_run(cfg, true, ret_report, d);
	return r < 0 ? r : r == WOULD_CHANGE ? 0 : 1;
}

/* ---- listing and public values ---------------------------------------- */

void pki_cert_info_free(struct pki_cert_info *v, size_t n) {
	for (size_t i = 0; i < n; i++) {
		free(v[i].file);
		free(v[i].subject);
		free(v[i].issuer);
		for (size_t k = 0; k < v[i].n_sans; k++)
			free(v[i].sans[k]);
		free(v[i].sans);
	}
	free(v);
}

int pki_list(const char *dir, struct pki_cert_info **ret, size_t *ret_n, struct diags *d) {
	struct strv names = STRV_INIT;
	struct pki_cert_info *v = NULL;
	size_t n = 0, cap = 0;
	int r = 0;

	DIR *dd = opendir(dir);
	if (!dd) {
		r = -errno;
		diag_error(d, NULL, "cannot open '%s': %s", dir, strerror(-r));
		return r;
	}
	for (struct dirent *de; (de = readdir(dd));)
		if (endswith(de->d_name, ".pem"))
			strv_push(&names, de->d_name);
	closedir(dd);
	strv_sort(&names);

	for (size_t i = 0; i < names.n; i++) {
		_cleanup_free_ char *path = path_join(dir, names.v[i]);
		_cleanup_secret_ struct secret s = { 0 };
		struct stat st;
		if (stat(path, &st) < 0 || !S_ISREG(st.st_mode))
			continue;
		r = read_pem(path, &s, d);
		if (r == -ENOENT)
			continue;       /* removed while we looked */
		if (r < 0)
			goto fail;
		/* keys and the service-account public key live here too */
		if (!strstr(s.data, "-----BEGIN CERTIFICATE-----"))
			continue;
		_cleanup_x509_ X509 *x = NULL;
		r = load_cert(path, &x, d);
		if (r == -EBADMSG)
			r = crypto_fail(d, -EINVAL, "cannot load '%s'", path);
		if (r < 0)
			goto fail;

		GROW(v, cap, n + 1);
		struct pki_cert_info *info = &v[n++];
		struct strv sans = STRV_INIT;
		cert_sans(x, &sans);
		*info = (struct pki_cert_info){
			.file = xstrdup(names.v[i]),
			.subject = name_oneline(X509_get_subject_name(x)),
			.issuer = name_oneline(X509_get_issuer_name(x)),
			.sans = sans.v,
			.n_sans = sans.n,
		};
		if (time_from_asn1(X509_get0_notAfter(x), &info->not_after) < 0) {
			diag_error(d, NULL, "cannot load '%s': unreadable expiry date", path);
			r = -EINVAL;
			goto fail;
		}
	}
	strv_release(&names);
	*ret = v;
	*ret_n = n;
	return 0;
fail:
	strv_release(&names);
	pki_cert_info_free(v, n);
	ERR_clear_error();
	return r;
}

int pki_cert_info_parse(const char *pem, size_t len, const char *name, struct pki_cert_info *ret, struct diags *d) {
	if (len > PEM_LIMIT) {
		diag_error(d, NULL, "'%s' is larger than %zu bytes", name, PEM_LIMIT);
		return -EFBIG;
	}
	_cleanup_bio_ BIO *bio = BIO_new_mem_buf(pem, (int)len);
	if (!bio)
		return crypto_fail(d, -ENOMEM, "cannot load '%s'", name);
	_cleanup_x509_ X509 *x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	if (!x)
		return crypto_fail(d, -EINVAL, "cannot load '%s'", name);
	struct strv sans = STRV_INIT;
	time_t not_after;
	if (time_from_asn1(X509_get0_notAfter(x), &not_after) < 0) {
		diag_error(d, NULL, "cannot load '%s': unreadable expiry date", name);
		return -EINVAL;
	}
	cert_sans(x, &sans);
	*ret = (struct pki_cert_info){
		.file = xstrdup(name),
		.subject = name_oneline(X509_get_subject_name(x)),
		.issuer = name_oneline(X509_get_issuer_name(x)),
		.sans = sans.v,
		.n_sans = sans.n,
		.not_after = not_after,
	};
	ERR_clear_error();
	return 0;
}

int pki_ca_cert_hash(const char *dir, char **ret, struct diags *d) {
	_cleanup_free_ char *path = path_join(dir, "ca.pem");
	_cleanup_x509_ X509 *x = NULL;
	unsigned char *der = NULL;
	int r = load_cert(path, &x, d);
	if (r == -ENOENT)
		diag_error(d, NULL, "cannot read '%s': no such file (run 'dlws-mkimage certs')", path);
	if (r == -EBADMSG)
		r = crypto_fail(d, -EINVAL, "cannot load '%s'", path);
	if (r < 0)
		return r;
	/* the SubjectPublicKeyInfo, as kubeadm's pubkeypin hashes it */
	int len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &der);
	if (len <= 0)
		return crypto_fail(d, -EIO, "cannot encode the public key of '%s'", path);
	char hex[SHA256_HEX_LEN + 1];
	sha256_hex(der, (size_t)len, hex);
	OPENSSL_free(der);
	*ret = xasprintf("sha256:%s", hex);
	return 0;
}

int pki_bootstrap_token_id(const char *dir, char **ret, struct diags *d) {
	_cleanup_secret_ struct secret s = { 0 };
	int r = token_read(dir, &s, d);
	if (r == -ENOENT) {
		_cleanup_free_ char *path = path_join(dir, TOKEN_FILE);
		diag_error(d, NULL, "cannot read '%s': no such file (run 'dlws-mkimage certs')", path);
	}
	if (r < 0)
		return r;
	*ret = xstrndup(s.data, TOKEN_ID_LEN);
	return 0;
}

void pki_token_info_release(struct pki_token_info *t) {
	free(t->id);
	strv_release(&t->used_in);
	t->id = NULL;
}

int pki_token_info(const char *dir, struct pki_token_info *ret, struct diags *d) {
	static const char *const carriers[] = { TOKEN_SECRET_FILE, "bootstrap-kubelet.conf" };
	_cleanup_secret_ struct secret s = { 0 };
	int r = token_read(dir, &s, d);
	if (r < 0)
		return r;
	struct pki_token_info t = { .id = xstrndup(s.data, TOKEN_ID_LEN), .used_in = STRV_INIT };
	for (size_t i = 0; i < ARRAY_SIZE(carriers); i++) {
		_cleanup_free_ char *path = path_join(dir, carriers[i]);
		_cleanup_secret_ struct secret f = { 0 };
		r = read_pem(path, &f, d);
		if (r == -ENOENT)
			continue;
		if (r < 0) {
			pki_token_info_release(&t);
			return r;
		}
		/* the secret part: an older token's id could still be there */
		if (strstr(f.data, s.data + TOKEN_ID_LEN + 1))
			strv_push(&t.used_in, carriers[i]);
	}
	*ret = t;
	return 0;
}

/* ---- what a node receives --------------------------------------------- */

void pki_items_free(struct pki_item *v, size_t n) {
	for (size_t i = 0; i < n; i++) {
		free(v[i].id);
		free(v[i].part);
		free(v[i].src);
		free(v[i].dest);
	}
	free(v);
}

struct item_list {
	struct pki_item *v;
	size_t n, cap;
	const char *dir;
};

static void item_add(struct item_list *l, const char *id, const char *part, const char *src_name, const char *dest) {
	GROW(l->v, l->cap, l->n + 1);
	bool secret = streq(part, "key") || streq(part, "conf");
	l->v[l->n++] = (struct pki_item){
		.id = xstrdup(id),
		.part = xstrdup(part),
		.src = path_join(l->dir, src_name),
		.dest = xstrdup(dest),
		.mode = secret ? KEY_MODE : CERT_MODE,
	};
}

/* kubeadm's layout: "<base>.pem"/"<base>-key.pem" of the PKI dir become
 * "<dest>.crt"/"<dest>.key" on the node. */
static void item_add_pair(struct item_list *l, const char *id, const char *base, const char *dest) {
	_cleanup_free_ char *src_cert = xasprintf("%s.pem", base);
	_cleanup_free_ char *src_key = xasprintf("%s-key.pem", base);
	_cleanup_free_ char *dest_cert = xasprintf("%s.crt", dest);
	_cleanup_free_ char *dest_key = xasprintf("%s.key", dest);
	item_add(l, id, "cert", src_cert, dest_cert);
	item_add(l, id, "key", src_key, dest_key);
}

#define K8S "/etc/kubernetes"
#define K8S_PKI K8S "/pki"
#define KUBE_PROXY_CONF "/var/lib/kube-proxy/kubeconfig.conf"

static void items_for_unlisted(struct item_list *l, enum node_role role) {
	if (role == ROLE_ETCD) {
		item_add(l, "etcd_ca", "cert", "etcd-ca.pem", K8S_PKI "/etcd/ca.crt");
		return;
	}
	item_add(l, "ca", "cert", "ca.pem", K8S_PKI "/ca.crt");
	if (role == ROLE_WORKER) {
		item_add(l, "kube_proxy_conf", "conf", "kube-proxy.conf", KUBE_PROXY_CONF);
		item_add(l, "bootstrap_kubelet_conf", "conf", "bootstrap-kubelet.conf", PKI_NODE_BOOTSTRAP_KUBELET_CONF);
	}
}

static int items_finish(struct item_list *l, const struct srcloc *at, const char *who, struct pki_item **ret,
			size_t *ret_n, struct diags *d) {
	int r = 0;
	for (size_t i = 0; i < l->n; i++)
		if (!path_exists(l->v[i].src)) {
			diag_error(d, at, "cannot find '%s' for %s (the pki has not been made for it: run 'dlws-mkimage certs')",
				   l->v[i].src, who);
			r = -ENOENT;
		}
	if (r < 0) {
		pki_items_free(l->v, l->n);
		return r;
	}
	*ret = l->v;
	*ret_n = l->n;
	return 0;
}

int pki_items_for_node(const struct pki_config *cfg, const struct node *node, bool include_ca_key,
		       struct pki_item **ret, size_t *ret_n, struct diags *d) {
	struct item_list l = { .dir = cfg->dir };

	if (!node->hostname || !hostname_valid(node->hostname)) {
		diag_error(d, &node->loc, "invalid hostname '%s'", node->hostname ? node->hostname : "");
		return -EINVAL;
	}
	_cleanup_free_ char *kubelet_conf = xasprintf("kubelet-%s.conf", node->hostname);
	switch (node->role) {
	case ROLE_MASTER:
		item_add(&l, "ca", "cert", "ca.pem", K8S_PKI "/ca.crt");
		if (include_ca_key)
			item_add(&l, "ca", "key", "ca-key.pem", K8S_PKI "/ca.key");
		item_add_pair(&l, "apiserver", "apiserver", K8S_PKI "/apiserver");
		item_add_pair(&l, "apiserver_kubelet_client", "apiserver-kubelet-client", K8S_PKI "/apiserver-kubelet-client");
		item_add_pair(&l, "apiserver_etcd_client", "apiserver-etcd-client", K8S_PKI "/apiserver-etcd-client");
		item_add(&l, "front_proxy_ca", "cert", "front-proxy-ca.pem", K8S_PKI "/front-proxy-ca.crt");
		if (include_ca_key)
			item_add(&l, "front_proxy_ca", "key", "front-proxy-ca-key.pem", K8S_PKI "/front-proxy-ca.key");
		item_add_pair(&l, "front_proxy_client", "front-proxy-client", K8S_PKI "/front-proxy-client");
		/* the apiserver verifies service-account tokens with the public
		 * half, the controller-manager signs them with the key */
		item_add(&l, "sa", "key", "service-account-key.pem", K8S_PKI "/sa.key");
		item_add(&l, "sa", "pub", "service-account.pem", K8S_PKI "/sa.pub");
		item_add(&l, "etcd_ca", "cert", "etcd-ca.pem", K8S_PKI "/etcd/ca.crt");
		item_add(&l, "admin_conf", "conf", "admin.conf", K8S "/admin.conf");
		item_add(&l, "super_admin_conf", "conf", "super-admin.conf", K8S "/super-admin.conf");
		item_add(&l, "controller_manager_conf", "conf", "controller-manager.conf", K8S "/controller-manager.conf");
		item_add(&l, "scheduler_conf", "conf", "scheduler.conf", K8S "/scheduler.conf");
		item_add(&l, "kubelet_conf", "conf", kubelet_conf, K8S "/kubelet.conf");
		item_add(&l, "bootstrap_token_secret", "conf", TOKEN_SECRET_FILE, PKI_NODE_BOOTSTRAP_TOKEN_SECRET);
		break;
	case ROLE_ETCD: {
		_cleanup_free_ char *server = xasprintf("etcd-%s-server", node->hostname);
		_cleanup_free_ char *peer = xasprintf("etcd-%s-peer", node->hostname);
		item_add(&l, "etcd_ca", "cert", "etcd-ca.pem", K8S_PKI "/etcd/ca.crt");
		item_add_pair(&l, "etcd_server", server, K8S_PKI "/etcd/server");
		item_add_pair(&l, "etcd_peer", peer, K8S_PKI "/etcd/peer");
		break;
	}
	default:
		/* its own kubelet.conf, and the bootstrap one for when that
		 * expires: the kubelet then asks for a new certificate */
		item_add(&l, "ca", "cert", "ca.pem", K8S_PKI "/ca.crt");
		item_add(&l, "kubelet_conf", "conf", kubelet_conf, K8S "/kubelet.conf");
		item_add(&l, "kube_proxy_conf", "conf", "kube-proxy.conf", KUBE_PROXY_CONF);
		item_add(&l, "bootstrap_kubelet_conf", "conf", "bootstrap-kubelet.conf", PKI_NODE_BOOTSTRAP_KUBELET_CONF);
		break;
	}
	_cleanup_free_ char *who = xasprintf("node '%s'", node->hostname);
	return items_finish(&l, &node->loc, who, ret, ret_n, d);
}

int pki_items_for_role(const struct pki_config *cfg, enum node_role role, struct pki_item **ret, size_t *ret_n,
		       struct diags *d) {
	struct item_list l = { .dir = cfg->dir };
	items_for_unlisted(&l, role);
	_cleanup_free_ char *who = xasprintf("the %s role's default entry", role_name(role));
	return items_finish(&l, NULL, who, ret, ret_n, d);
}

/* ---- staging ------------------------------------------------------------ */

int pki_stage_begin(const char *dir, struct pki_stage *ret, struct diags *d) {
	*ret = (struct pki_stage){ .dir = xstrdup(dir), .tmp = xasprintf("%s.new", dir) };
	/* Left by a build that was killed: before its commit (a partial new
	 * PKI) or after it (the old one). Either way not the PKI. */
	rm_rf(ret->tmp);
	int r;
	if (path_exists(dir)) {
		r = dir_link_copy(dir, ret->tmp, 0700, d);
	} else {
		_cleanup_free_ char *parent = xstrdup(dir);
		char *slash = strrchr(parent, '/');
		if (slash && slash != parent)
			*slash = '\0';
		r = slash && slash != parent ? mkdir_p(parent, 0755) : 0;
		if (r == 0 && mkdir(ret->tmp, 0700) < 0)
			r = -errno;
		if (r < 0)
			diag_error(d, NULL, "cannot create '%s': %s", ret->tmp, strerror(-r));
	}
	if (r < 0)
		pki_stage_abort(ret);
	return r;
}

bool pki_report_changed(const struct pki_report *r) {
	for (size_t i = 0; i < r->n; i++)
		if (r->v[i].action != PKI_REUSED)
			return true;
	return false;
}

int pki_stage_commit(struct pki_stage *s, struct diags *d) {
	int fd = open(s->tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		(void)fsync(fd);
		close(fd);
	}
	int r = dir_replace(s->tmp, s->dir, d);
	pki_stage_abort(s);
	return r;
}

void pki_stage_abort(struct pki_stage *s) {
	if (s->tmp)
		rm_rf(s->tmp);
	free(s->dir);
	free(s->tmp);
	*s = (struct pki_stage)PKI_STAGE_INIT;
}
