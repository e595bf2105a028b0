/* The cluster PKI with libcrypto (OpenSSL 3, no deprecated API).
 *
 * Every run decides per certificate: create it, reuse it, or re-issue it
 * with a stated reason. Re-issuing keeps a good key, so a SAN change does
 * not rotate keys that nodes already hold. Keys never reach a message. */
#include "pki.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "buf.h"
#include "fsutil.h"
#include "hash.h"
#include "util.h"

#define DAY_SECONDS 86400
#define CA_DAYS 3650
#define LEAF_DAYS 365
#define RENEW_DAYS 30           /* re-issue what expires sooner than this */
#define CLOCK_SKEW 3600         /* notBefore margin for nodes whose clock lags */
#define SERIAL_BITS 159         /* positive and at most 20 octets (RFC 5280) */
#define PEM_LIMIT ((size_t)1 << 20)
#define CERT_MODE 0644
#define KEY_MODE 0600
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

static int save_bio(const char *path, BIO *bio, mode_t mode, struct diags *d) {
	char *data = NULL;
	long len = BIO_get_mem_data(bio, &data);
	if (len <= 0 || !data) {
		diag_error(d, NULL, "cannot encode '%s'", path);
		return -EIO;
	}
	int r = write_file_atomic(path, data, (size_t)len, mode, d);
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

static int key_generate(enum pki_key_type type, const char *path, EVP_PKEY **ret, struct diags *d) {
	EVP_PKEY *k = type == PKI_KEY_ECDSA_P256
		? EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256")
		: EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
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

/* What a certificate should say. */
struct leaf {
	char *base;             /* files <base>.pem and <base>-key.pem */
	char *cn;
	const char *org;        /* static string or NULL */
	struct strv dns, ips;
	bool server_auth;       /* every leaf is a TLS client too */
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
static int cert_issue(time_t now, const X509_NAME *subject, const GENERAL_NAMES *sans, bool server_auth,
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
	if (add_ext(x, &ctx, NID_basic_constraints, is_ca ? "critical,CA:TRUE" : "critical,CA:FALSE") < 0
	    || add_ext(x, &ctx, NID_key_usage, key_usage) < 0
	    || add_ext(x, &ctx, NID_subject_key_identifier, "hash") < 0
	    || (!is_ca && add_ext(x, &ctx, NID_authority_key_identifier, "keyid:always") < 0)
	    || (!is_ca && add_ext(x, &ctx, NID_ext_key_usage, server_auth ? "serverAuth,clientAuth" : "clientAuth") < 0)
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
	X509 *ca;
	EVP_PKEY *ca_key;
	struct pki_report report;
};

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

/* The CA is made once. A CA certificate without its key is an error, never
 * a reason to replace the CA: that would invalidate every node's
 * certificate. Near expiry it is re-issued with the same key and name, so
 * what it signed stays valid. */
static int ensure_ca(struct pki_run *run) {
	struct diags *d = run->d;
	_cleanup_free_ char *cert_path = path_join(run->cfg->dir, "ca.pem");
	_cleanup_free_ char *key_path = path_join(run->cfg->dir, "ca-key.pem");
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
		subject = name_make(NULL, "kube-ca");
		if (!subject)
			return crypto_fail(d, -EIO, "cannot issue '%s'", cert_path);
	} else if (r == -EBADMSG) {
		return crypto_fail(d, -EINVAL, "cannot load '%s'", cert_path);
	} else if (r < 0) {
		return r;
	} else {
		r = load_key(key_path, &key, d);
		if (r == -ENOENT) {
			diag_error(d, NULL, "cannot load '%s': no such file (restore it, or remove '%s' to make a new CA)", key_path, cert_path);
			return r;
		}
		if (r == -EBADMSG)
			return crypto_fail(d, -EINVAL, "cannot load '%s'", key_path);
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
			r = ensure_mode(key_path, KEY_MODE, d);
			if (r < 0)
				return r;
			report_add(&run->report, "ca.pem", PKI_REUSED, NULL);
			run->ca = old;
			run->ca_key = key;
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

	X509 *ca = NULL;
	r = key ? ensure_mode(key_path, KEY_MODE, d) : key_generate(run->cfg->key_type, key_path, &key, d);
	if (r >= 0)
		r = cert_issue(run->now, subject, NULL, false, key, NULL, NULL, cert_path, &ca, d);
	if (r >= 0) {
		r = save_cert(cert_path, ca, d);
		if (r < 0)
			X509_free(ca);
	}
	if (r < 0) {
		free(reason);
		return r;
	}
	report_add(&run->report, "ca.pem", action, reason);
	run->ca = ca;
	run->ca_key = key;
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
		if (!signed_by(old, run->ca))
			reason_add(&reasons, xstrdup("CA changed"));
		if (X509_NAME_cmp(X509_get_subject_name(old), subject) != 0)
			reason_add(&reasons, xstrdup("subject changed"));
		cert_sans(old, &have_sans);
		reason_add(&reasons, sans_diff(&have_sans, &want_sans));
		reason_add(&reasons, expiry_reason(old, run->now));
		if (!reasons.len) {
			r = ensure_mode(key_path, KEY_MODE, d);
			if (r >= 0)
				report_add(&run->report, cert_name, PKI_REUSED, NULL);
			goto out;
		}
	}

	if (key && !key_is_type(key, run->cfg->key_type)) {
		EVP_PKEY_free(key);
		key = NULL;
	}
	if (key)
		r = ensure_mode(key_path, KEY_MODE, d);
	else
		r = key_generate(run->cfg->key_type, key_path, &key, d);
	if (r < 0)
		goto out;
	r = cert_issue(run->now, subject, sans, l->server_auth, key, run->ca, run->ca_key, cert_path, &x, d);
	if (r < 0)
		goto out;
	r = save_cert(cert_path, x, d);
	if (r < 0)
		goto out;
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
		r = key_generate(run->cfg->key_type, key_path, &key, d);
	} else if (r == 0) {
		r = ensure_mode(key_path, KEY_MODE, d);
	}
	if (r < 0)
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
		r = save_pubkey(pub_path, key, d);
		if (r < 0)
			goto fail;
	}
	report_add(&run->report, "service-account.pem", action, reason);
	return 0;
fail:
	free(reason);
	return r;
}

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

/* admin.kubeconfig embeds the admin key: 0600, and rewritten only when its
 * content changes so that an unchanged PKI leaves it untouched. */
static int write_kubeconfig(struct pki_run *run) {
	struct diags *d = run->d;
	const struct cluster *c = run->cfg->cluster;
	_cleanup_free_ char *path = path_join(run->cfg->dir, "admin.kubeconfig");
	_cleanup_free_ char *ca_path = path_join(run->cfg->dir, "ca.pem");
	_cleanup_free_ char *cert_path = path_join(run->cfg->dir, "admin.pem");
	_cleanup_free_ char *key_path = path_join(run->cfg->dir, "admin-key.pem");
	_cleanup_free_ char *url = run->cfg->apiserver_url ? xstrdup(run->cfg->apiserver_url) : default_apiserver_url(c);
	_cleanup_secret_ struct secret ca = { 0 }, cert = { 0 }, key = { 0 }, old = { 0 };
	_cleanup_free_ char *ca64 = NULL, *cert64 = NULL, *qname = NULL, *qurl = NULL, *qcontext = NULL;
	_cleanup_secret_str_ char *key64 = NULL, *text = NULL;
	int r;

	if (!url) {
		diag_error(d, NULL, "cannot write '%s': no apiserver url and no master node", path);
		return -EINVAL;
	}
	if ((r = read_pem(ca_path, &ca, d)) < 0 || (r = read_pem(cert_path, &cert, d)) < 0
	    || (r = read_pem(key_path, &key, d)) < 0) {
		if (r == -ENOENT)
			diag_error(d, NULL, "cannot write '%s': a certificate or key is missing", path);
		return r;
	}
	ca64 = base64_encode(ca.data, ca.len);
	cert64 = base64_encode(cert.data, cert.len);
	key64 = base64_encode(key.data, key.len);
	const char *name = c->name && *c->name ? c->name : "kubernetes";
	qname = yaml_quote(name);
	qurl = yaml_quote(url);
	_cleanup_free_ char *context = xasprintf("admin@%s", name);
	qcontext = yaml_quote(context);
	text = xasprintf("apiVersion: v1\n"
			 "kind: Config\n"
			 "clusters:\n"
			 "- name: %s\n"
			 "  cluster:\n"
			 "    server: %s\n"
			 "    certificate-authority-data: %s\n"
			 "users:\n"
			 "- name: admin\n"
			 "  user:\n"
			 "    client-certificate-data: %s\n"
			 "    client-key-data: %s\n"
			 "contexts:\n"
			 "- name: %s\n"
			 "  context:\n"
			 "    cluster: %s\n"
			 "    user: admin\n"
			 "current-context: %s\n",
			 qname, qurl, ca64, cert64, key64, qcontext, qname, qcontext);

	r = read_pem(path, &old, d);
	if (r < 0 && r != -ENOENT)
		return r;
	size_t len = strlen(text);
	if (r == 0 && old.len == len && memcmp(old.data, text, len) == 0)
		return ensure_mode(path, KEY_MODE, d);
	r = write_file_atomic(path, text, len, KEY_MODE, d);
	return r < 0 ? r : ensure_mode(path, KEY_MODE, d);
}

/* ---- what to issue ---------------------------------------------------- */

static struct leaf *leaf_add(struct leaf **v, size_t *n, size_t *cap, char *base, char *cn, const char *org, bool server_auth) {
	GROW(*v, *cap, *n + 1);
	struct leaf *l = &(*v)[(*n)++];
	*l = (struct leaf){ .base = base, .cn = cn, .org = org, .server_auth = server_auth,
			    .dns = STRV_INIT, .ips = STRV_INIT };
	return l;
}

static bool ip_valid(const char *ip) {
	ASN1_OCTET_STRING *o = ip ? a2i_IPADDRESS(ip) : NULL;
	ASN1_OCTET_STRING_free(o);
	ERR_clear_error();
	return o != NULL;
}

/* Hostnames become file names: a clash ("a" and "a-key" both give
 * kubelet-a-key.pem) would let one node's key overwrite another's cert. */
static int check_file_names(const struct leaf *v, size_t n, struct diags *d) {
	static const char *const fixed[] = { "ca.pem", "ca-key.pem", "service-account.pem",
					     "service-account-key.pem", "admin.kubeconfig" };
	struct strv names = STRV_INIT;
	int r = 0;
	for (size_t i = 0; i < ARRAY_SIZE(fixed); i++)
		strv_push(&names, fixed[i]);
	for (size_t i = 0; i < n && r == 0; i++)
		for (int k = 0; k < 2 && r == 0; k++) {
			char *name = xasprintf(k ? "%s-key.pem" : "%s.pem", v[i].base);
			if (strv_contains(&names, name)) {
				diag_error(d, NULL, "two certificates would share the file '%s': rename one of the nodes", name);
				free(name);
				r = -EINVAL;
			} else {
				strv_push_take(&names, name);
			}
		}
	strv_release(&names);
	return r;
}

/* In report order: apiserver, apiserver-etcd-client, etcd per node,
 * kubelet per node, admin. */
static int leaves_for_cluster(const struct cluster *c, struct leaf **ret, size_t *ret_n, struct diags *d) {
	struct leaf *v = NULL, *l;
	size_t n = 0, cap = 0;
	int r = 0;

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

	l = leaf_add(&v, &n, &cap, xstrdup("apiserver"), xstrdup("kube-apiserver"), NULL, true);
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

	leaf_add(&v, &n, &cap, xstrdup("apiserver-etcd-client"), xstrdup("kube-apiserver-etcd-client"), NULL, false);

	for (size_t i = 0; i < c->n_nodes; i++) {
		const struct node *node = &c->nodes[i];
		if (node->role != ROLE_ETCD)
			continue;
		l = leaf_add(&v, &n, &cap, xasprintf("etcd-%s-server", node->hostname), xstrdup(node->hostname), NULL, true);
		strv_push(&l->dns, "localhost");
		strv_push(&l->dns, node->hostname);
		strv_push(&l->ips, "127.0.0.1");
		strv_push(&l->ips, node->ip);
		/* peers dial each other by name or IP and present this as client too */
		l = leaf_add(&v, &n, &cap, xasprintf("etcd-%s-peer", node->hostname), xstrdup(node->hostname), NULL, true);
		strv_push(&l->dns, node->hostname);
		strv_push(&l->ips, node->ip);
	}

	for (size_t i = 0; i < c->n_nodes; i++) {
		const struct node *node = &c->nodes[i];
		l = leaf_add(&v, &n, &cap, xasprintf("kubelet-%s", node->hostname),
			     xasprintf("system:node:%s", node->hostname), "system:nodes", true);
		strv_push(&l->dns, node->hostname);
		strv_push(&l->ips, node->ip);
	}

	leaf_add(&v, &n, &cap, xstrdup("admin"), xstrdup("admin"), "system:masters", false);

	r = check_file_names(v, n, d);
	if (r < 0) {
		leaves_free(v, n);
		return r;
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

int pki_ensure(const struct pki_config *cfg, struct pki_report *ret_report, struct diags *d) {
	struct pki_run run = { .cfg = cfg, .d = d, .report = PKI_REPORT_INIT };
	struct leaf *leaves = NULL;
	size_t n_leaves = 0;
	int r;

	if (!cfg->dir || !cfg->cluster) {
		diag_error(d, NULL, "the pki needs a directory and a cluster");
		return -EINVAL;
	}
	run.now = cfg->now ? cfg->now : time(NULL);
	ERR_clear_error();

	r = leaves_for_cluster(cfg->cluster, &leaves, &n_leaves, d);
	if (r < 0)
		return r;
	if (!path_exists(cfg->dir)) {
		r = mkdir_p(cfg->dir, 0700);
		if (r < 0) {
			diag_error(d, NULL, "cannot create '%s': %s", cfg->dir, strerror(-r));
			goto out;
		}
	}
	r = ensure_ca(&run);
	for (size_t i = 0; r >= 0 && i < n_leaves; i++)
		r = ensure_leaf(&run, &leaves[i]);
	if (r >= 0)
		r = write_kubeconfig(&run);
	if (r >= 0)
		r = ensure_service_account(&run);
	if (r >= 0 && ret_report) {
		*ret_report = run.report;
		run.report = (struct pki_report)PKI_REPORT_INIT;
	}
out:
	leaves_free(leaves, n_leaves);
	pki_report_release(&run.report);
	X509_free(run.ca);
	EVP_PKEY_free(run.ca_key);
	ERR_clear_error();
	return r < 0 ? r : 0;
}

/* ---- listing ---------------------------------------------------------- */

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
	l->v[l->n++] = (struct pki_item){
		.id = xstrdup(id),
		.part = xstrdup(part),
		.src = path_join(l->dir, src_name),
		.dest = xstrdup(dest),
		.mode = streq(part, "key") ? KEY_MODE : CERT_MODE,
	};
}

/* A certificate and its key: "<base>.pem" and "<base>-key.pem". */
static void item_add_pair(struct item_list *l, const char *id, const char *base, const char *dest_dir, const char *dest_base) {
	_cleanup_free_ char *src_cert = xasprintf("%s.pem", base);
	_cleanup_free_ char *src_key = xasprintf("%s-key.pem", base);
	_cleanup_free_ char *dest_cert = xasprintf("%s/%s.pem", dest_dir, dest_base);
	_cleanup_free_ char *dest_key = xasprintf("%s/%s-key.pem", dest_dir, dest_base);
	item_add(l, id, "cert", src_cert, dest_cert);
	item_add(l, id, "key", src_key, dest_key);
}

#define K8S_SSL "/etc/kubernetes/ssl"
#define ETCD_SSL "/etc/ssl/etcd"

int pki_items_for_node(const struct pki_config *cfg, const struct node *node, bool include_ca_key,
		       struct pki_item **ret, size_t *ret_n, struct diags *d) {
	struct item_list l = { .dir = cfg->dir };
	int r = 0;

	if (!node->hostname || !hostname_valid(node->hostname)) {
		diag_error(d, &node->loc, "invalid hostname '%s'", node->hostname ? node->hostname : "");
		return -EINVAL;
	}
	_cleanup_free_ char *kubelet = xasprintf("kubelet-%s", node->hostname);
	item_add(&l, "ca", "cert", "ca.pem", K8S_SSL "/ca.pem");
	if (include_ca_key)
		item_add(&l, "ca", "key", "ca-key.pem", K8S_SSL "/ca-key.pem");
	item_add_pair(&l, "kubelet", kubelet, K8S_SSL, "kubelet");

	if (node->role == ROLE_MASTER) {
		item_add_pair(&l, "apiserver", "apiserver", K8S_SSL, "apiserver");
		item_add_pair(&l, "etcd_client", "apiserver-etcd-client", K8S_SSL, "apiserver-etcd-client");
		/* the public half goes out as the "cert" part: the apiserver verifies
		 * tokens with it, the controller-manager signs with the key */
		item_add(&l, "service_account", "cert", "service-account.pem", K8S_SSL "/service-account.pem");
		item_add(&l, "service_account", "key", "service-account-key.pem", K8S_SSL "/service-account-key.pem");
		item_add_pair(&l, "admin", "admin", K8S_SSL, "admin");
	}
	if (node->role == ROLE_ETCD) {
		_cleanup_free_ char *server = xasprintf("etcd-%s-server", node->hostname);
		_cleanup_free_ char *peer = xasprintf("etcd-%s-peer", node->hostname);
		item_add(&l, "etcd_ca", "cert", "ca.pem", ETCD_SSL "/ca.pem");
		item_add_pair(&l, "etcd_server", server, ETCD_SSL, "server");
		item_add_pair(&l, "etcd_peer", peer, ETCD_SSL, "peer");
	}

	for (size_t i = 0; i < l.n; i++)
		if (!path_exists(l.v[i].src)) {
			diag_error(d, &node->loc, "cannot find '%s' for node '%s' (the pki has not been made for it)",
				   l.v[i].src, node->hostname);
			r = -ENOENT;
		}
	if (r < 0) {
		pki_items_free(l.v, l.n);
		return r;
	}
	*ret = l.v;
	*ret_n = l.n;
	return 0;
}
