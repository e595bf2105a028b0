/* Keys made ahead, on every core.
 *
 * A new cluster's PKI is a key per CA and per certificate, some twenty,
 * made one after the other; an RSA key takes from a tenth to half a second
 * (a search for primes). The PKI knows before it starts how many keys it
 * lacks: those are made on threads while it goes on, and handed out in
 * turn as it asks for keys. */
#pragma once
#include <openssl/evp.h>
#include <stddef.h>

#include "pki.h"

struct keygen;

/* Starts making `n` keys of `type` on up to `threads` threads; NULL when
 * that would not help (fewer than 2 keys or threads): keygen_take then
 * makes each key when asked. */
struct keygen *keygen_start(enum pki_key_type type, size_t n, unsigned threads);

/* A new key of `type`: one made ahead by `g` when it has or is making one
 * (waiting for it), else one made now. NULL on failure, with OpenSSL's
 * error queue saying why. */
EVP_PKEY *keygen_take(struct keygen *g, enum pki_key_type type);

/* Stops `g` (NULL is fine): makes no more keys, waits for its threads and
 * frees the keys not taken. */
void keygen_stop(struct keygen *g);
