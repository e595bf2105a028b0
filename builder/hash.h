/* SHA-256 over memory and files (libcrypto EVP underneath). */
#pragma once
#include <stddef.h>
#include <stdint.h>
#include "diag.h"

#define SHA256_HEX_LEN 64
/* hex must hold SHA256_HEX_LEN + 1 bytes. */
void sha256_hex(const void *data, size_t len, char hex[SHA256_HEX_LEN + 1]);
/* Streams a file; also returns its size. Returns 0 or -errno (reported). */
int sha256_file_hex(const char *path, char hex[SHA256_HEX_LEN + 1], uint64_t *ret_size, struct diags *d);

/* A digest fed piece by piece, for data that streams past once (a device
 * being written, a member read out of a tar). sha256_final_hex writes the
 * digest and frees `h`; sha256_free drops one not finished (NULL is fine). */
struct sha256;
struct sha256 *sha256_new(void);
void sha256_update(struct sha256 *h, const void *data, size_t len);
void sha256_final_hex(struct sha256 *h, char hex[SHA256_HEX_LEN + 1]);
void sha256_free(struct sha256 *h);
/* Standard base64 (no line breaks). */
char *base64_encode(const void *data, size_t len);
