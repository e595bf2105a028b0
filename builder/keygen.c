/* Keys made ahead on threads (keygen.h). */
#include "keygen.h"

#include <pthread.h>
#include <stdlib.h>

#include "util.h"

#define MAX_THREADS 8

struct keygen {
	pthread_mutex_t lock;
	pthread_cond_t made;    /* a key is ready, or one failed */
	enum pki_key_type type;
	size_t want;            /* keys to make in all */
	size_t started;         /* keys a thread has begun */
	size_t done;            /* keys finished, made or failed */
	EVP_PKEY **ready;       /* made and not taken yet (want at most) */
	size_t n_ready;
	pthread_t threads[MAX_THREADS];
	unsigned n_threads;
};

static EVP_PKEY *make(enum pki_key_type type) {
	return type == PKI_KEY_ECDSA_P256 ? EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256")
					  : EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
}

static void *worker(void *arg) {
	struct keygen *g = arg;
	pthread_mutex_lock(&g->lock);
	while (g->started < g->want) {
		g->started++;
		pthread_mutex_unlock(&g->lock);
		EVP_PKEY *k = make(g->type);
		pthread_mutex_lock(&g->lock);
		/* A failure is the taker's to see: it makes that key itself. */
		if (k)
			g->ready[g->n_ready++] = k;
		g->done++;
		pthread_cond_broadcast(&g->made);
	}
	pthread_mutex_unlock(&g->lock);
	return NULL;
}

struct keygen *keygen_start(enum pki_key_type type, size_t n, unsigned threads) {
	if (n < 2 || threads < 2)
		return NULL;
	struct keygen *g = xcalloc(1, sizeof(*g));
	pthread_mutex_init(&g->lock, NULL);
	pthread_cond_init(&g->made, NULL);
	g->type = type;
	g->want = n;
	g->ready = xcalloc(n, sizeof(*g->ready));
	if (threads > MAX_THREADS)
		threads = MAX_THREADS;
	if (threads > n)
		threads = (unsigned)n;
	for (unsigned i = 0; i < threads; i++)
		if (pthread_create(&g->threads[g->n_threads], NULL, worker, g) == 0)
			g->n_threads++;
	if (!g->n_threads) {    /* no threads to be had: keys made when asked */
		keygen_stop(g);
		return NULL;
	}
	return g;
}

EVP_PKEY *keygen_take(struct keygen *g, enum pki_key_type type) {
	EVP_PKEY *k = NULL;
	if (g && g->type == type) {
		pthread_mutex_lock(&g->lock);
		while (!g->n_ready && g->done < g->want)
			pthread_cond_wait(&g->made, &g->lock);
		if (g->n_ready)
			k = g->ready[--g->n_ready];
		pthread_mutex_unlock(&g->lock);
	}
	return k ? k : make(type);
}

void keygen_stop(struct keygen *g) {
	if (!g)
		return;
	pthread_mutex_lock(&g->lock);
	g->want = g->started;
	pthread_mutex_unlock(&g->lock);
	for (unsigned i = 0; i < g->n_threads; i++)
		pthread_join(g->threads[i], NULL);
	for (size_t i = 0; i < g->n_ready; i++)
		EVP_PKEY_free(g->ready[i]);
	free(g->ready);
	pthread_cond_destroy(&g->made);
	pthread_mutex_destroy(&g->lock);
	free(g);
}
