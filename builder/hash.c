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

static int digest_sink(void *ctx, const void *data, size_t len) {
	EVP_DigestUpdate(ctx, data, len);
	return 0;
}

int sha256_file_hex(const char *path, char hex[SHA256_HEX_LEN + 1], uint64_t *ret_size, struct diags *d) {
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	if (!ctx || !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL))
		abort(); /* only fails on allocation failure */
	int r = stream_file(path, digest_sink, ctx, ret_size, d);
	if (r == 0) {
		unsigned char md[32];
		unsigned int mdlen = 0;
		EVP_DigestFinal_ex(ctx, md, &mdlen);
		to_hex(md, hex);
	}
	EVP_MD_CTX_free(ctx);
	return r;
}

char *base64_encode(const void *data, size_t len) {
	size_t out_len = 4 * ((len + 2) / 3);
	char *out = xmalloc(out_len + 1);
	/* EVP_EncodeBlock takes an int length; payload files stay far below that. */
	int n = EVP_EncodeBlock((unsigned char *)out, data, (int)len);
	out[n] = '\0';
	return out;
}
