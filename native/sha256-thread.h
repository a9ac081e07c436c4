/* SHA-256 of a stream on a thread of its own (see sha256-thread.c). */
#ifndef LAYERSTORE_SHA256_THREAD_H
#define LAYERSTORE_SHA256_THREAD_H
#include <stddef.h>
#include <stdint.h>

typedef struct sha256_thread sha256_thread_t;

/* A new hash and its thread; NULL when OpenSSL is not in the process or a thread can't start. */
sha256_thread_t *sha256_thread_start(void);

/*
 * Queues `len` bytes at `data`, hashed after everything pushed before; returns the chunk's
 * sequence number (1, 2, ...). Blocks while 64 chunks are queued.
 */
uint64_t sha256_thread_push(sha256_thread_t *h, const void *data, size_t len);

/* Returns once chunk `seq` (and every chunk before it) is hashed. */
void sha256_thread_wait(sha256_thread_t *h, uint64_t seq);

/*
 * Hashes what is queued, writes the digest to `out` and frees everything. With `out` NULL,
 * drops the chunks not yet started (an abandoned hash). Returns 1 when a digest was written.
 */
int sha256_thread_end(sha256_thread_t *h, unsigned char out[32]);

#endif
