#include "sha256.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <openssl/evp.h>

struct sha256 {
	EVP_MD_CTX *ctx;
};

struct sha256 *sha256_new(void)
{
	struct sha256 *h = calloc(1, sizeof *h);

	if (!h)
		return NULL;
	h->ctx = EVP_MD_CTX_new();
	if (!h->ctx || EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL) != 1) {
		sha256_free(h);
		return NULL;
	}
	return h;
}

void sha256_free(struct sha256 *h)
{
	if (!h)
		return;
	EVP_MD_CTX_free(h->ctx);
	free(h);
}

int sha256_update(struct sha256 *h, const void *data, size_t n)
{
	return EVP_DigestUpdate(h->ctx, data, n) == 1 ? 0 : -EIO;
}

int sha256_final(struct sha256 *h, char hex[SHA256_HEX + 1])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int md_len = 0;

	if (EVP_DigestFinal_ex(h->ctx, md, &md_len) != 1 || md_len != 32)
		return -EIO;
	for (unsigned i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	return 0;
}

int sha256_file(const char *path, char hex[SHA256_HEX + 1])
{
	enum { CHUNK = 1 << 20 };
	struct sha256 *h = NULL;
	unsigned char *buf = NULL;
	int fd, r = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	buf = malloc(CHUNK);
	h = sha256_new();
	if (!buf || !h) {
		r = -ENOMEM;
		goto out;
	}
	for (;;) {
		ssize_t got = read(fd, buf, CHUNK);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			r = -errno;
			goto out;
		}
		if (got == 0)
			break;
		r = sha256_update(h, buf, (size_t)got);
		if (r < 0)
			goto out;
	}
	r = sha256_final(h, hex);
out:
	sha256_free(h);
	free(buf);
	close(fd);
	return r;
}
