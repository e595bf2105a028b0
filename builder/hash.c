#include "hash.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <string.h>
#include <unistd.h>

#include "fsutil.h"
#include "util.h"

static void to_hex(const unsigned char *md, char hex[SHA256_HEX_LEN + 1]) {
	static const char digits[] = "0123456789abcdef";
	for (int i = 0; i < 32; i++) {
		hex[2 * i] = digits[md[i] >> 4];
		hex[2 * i + 1] = digits[md[i] & 15];
	}
	hex[SHA256_HEX_LEN] = '\0';
}

void sha256_hex(const void *data, size_t len, char hex[SHA256_HEX_LEN + 1]) {
	unsigned char md[32];
	unsigned int n = 0;
	if (!EVP_Digest(data, len, md, &n, EVP_sha256(), NULL))
		abort(); /* only fails on allocation failure */
	to_hex(md, hex);
}

/* The EVP context is the whole state; the struct only hides its type. */
struct sha256 {
	EVP_MD_CTX *ctx;
};

struct sha256 *sha256_new(void) {
	struct sha256 *h = xmalloc(sizeof(*h));
	h->ctx = EVP_MD_CTX_new();
	if (!h->ctx || !EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL))
		die_oom(); /* only fails on allocation failure */
	return h;
}

void sha256_update(struct sha256 *h, const void *data, size_t len) {
	EVP_DigestUpdate(h->ctx, data, len);
}

void sha256_final_hex(struct sha256 *h, char hex[SHA256_HEX_LEN + 1]) {
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	EVP_DigestFinal_ex(h->ctx, md, &n);
	to_hex(md, hex);
	sha256_free(h);
}

void sha256_free(struct sha256 *h) {
	if (!h)
		return;
	EVP_MD_CTX_free(h->ctx);
	free(h);
}

static int digest_sink(void *ctx, const void *data, size_t len) {
	sha256_update(ctx, data, len);
	return 0;
}

int sha256_file_hex(const char *path, char hex[SHA256_HEX_LEN + 1], uint64_t *ret_size, struct diags *d) {
	struct sha256 *h = sha256_new();
	int r = stream_file(path, digest_sink, h, ret_size, d);
	if (r < 0) {
		sha256_free(h);
		return r;
	}
	sha256_final_hex(h, hex);
	return 0;
}

char *base64_encode(const void *data, size_t len) {
	size_t out_len = 4 * ((len + 2) / 3);
	char *out = xmalloc(out_len + 1);
	/* EVP_EncodeBlock takes an int length; payload files stay far below that. */
	int n = EVP_EncodeBlock((unsigned char *)out, data, (int)len);
	out[n] = '\0';
	return out;
}
