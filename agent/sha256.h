/* SHA-256 for the agent: of a whole file (the manifest's lines) or of data
 * that passes by in pieces (the OS image as it streams). The one module that
 * talks to libcrypto. */
#pragma once
#include <stddef.h>

enum { SHA256_HEX = 64 };

struct sha256;

/* NULL when out of memory (or libcrypto has no SHA-256). */
struct sha256 *sha256_new(void);
/* Frees; accepts NULL. */
void sha256_free(struct sha256 *h);
int sha256_update(struct sha256 *h, const void *data, size_t n);
/* hex = 64 lowercase hex digits and a NUL. The hash cannot be updated after. */
int sha256_final(struct sha256 *h, char hex[SHA256_HEX + 1]);

/* The sha256 of a file, read to its end. */
int sha256_file(const char *path, char hex[SHA256_HEX + 1]);
