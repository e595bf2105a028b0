/* Keys made ahead on threads: every key asked for comes, of the type asked
 * for, each a different one; more keys than were made ahead are made when
 * asked; a pool stopped early frees what it made; no pool for one key. */
#include <openssl/evp.h>
#include <string.h>

#include "check.h"
#include "keygen.h"

static bool is_p256(EVP_PKEY *k) {
	char group[64];
	size_t len;
	return k && EVP_PKEY_is_a(k, "EC") && EVP_PKEY_get_group_name(k, group, sizeof(group), &len) == 1 &&
	       (strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0);
}

/* Keys made ahead, and two more than that made when asked: all distinct. */
static void test_all_keys_come(void) {
	enum { AHEAD = 6, ASKED = AHEAD + 2 };
	struct keygen *g = keygen_start(PKI_KEY_ECDSA_P256, AHEAD, 2);
	CHECK(g != NULL);
	EVP_PKEY *keys[ASKED] = { 0 };
	for (int i = 0; i < ASKED; i++) {
		keys[i] = keygen_take(g, PKI_KEY_ECDSA_P256);
		CHECK(is_p256(keys[i]));
	}
	for (int i = 0; i < ASKED; i++)
		for (int j = i + 1; j < ASKED; j++)
			CHECK(keys[i] && keys[j] && EVP_PKEY_eq(keys[i], keys[j]) != 1);
	keygen_stop(g);
	for (int i = 0; i < ASKED; i++)
		EVP_PKEY_free(keys[i]);
}

/* A key of another type than the pool's is made when asked. */
static void test_other_type(void) {
	struct keygen *g = keygen_start(PKI_KEY_ECDSA_P256, 2, 2);
	EVP_PKEY *k = keygen_take(g, PKI_KEY_RSA2048);
	CHECK(k && EVP_PKEY_is_a(k, "RSA") && EVP_PKEY_get_bits(k) == 2048);
	EVP_PKEY_free(k);
	keygen_stop(g);         /* frees the two it made (ASan: no leak) */
}

/* Stopped before anything is taken: waits for its threads, frees all. */
static void test_stop_early(void) {
	struct keygen *g = keygen_start(PKI_KEY_RSA2048, 20, 2);
	CHECK(g != NULL);
	keygen_stop(g);
}

/* One key, or one thread: no pool; keys made when asked. */
static void test_no_pool(void) {
	CHECK(keygen_start(PKI_KEY_ECDSA_P256, 1, 8) == NULL);
	CHECK(keygen_start(PKI_KEY_ECDSA_P256, 10, 1) == NULL);
	EVP_PKEY *k = keygen_take(NULL, PKI_KEY_ECDSA_P256);
	CHECK(is_p256(k));
	EVP_PKEY_free(k);
	keygen_stop(NULL);
}

int main(void) {
	test_all_keys_come();
	test_other_type();
	test_stop_early();
	test_no_pool();
	return check_summary("test_keygen");
}
