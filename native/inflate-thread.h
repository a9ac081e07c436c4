/* gunzip on a thread of its own (inflate-thread.c). */
#ifndef LAYERSTORE_INFLATE_THREAD_H
#define LAYERSTORE_INFLATE_THREAD_H
#include <stddef.h>
#include <stdint.h>

/* Input chunks the thread holds at most: push no more than this many ahead of `consumed`. */
#define INFLATE_IN_QUEUE 64

typedef struct inflate_thread inflate_thread_t;

/* What inflate_thread_take found. */
enum {
  INFLATE_CHUNK,      /* an output chunk: read it, then inflate_thread_release */
  INFLATE_NEED_INPUT, /* every chunk pushed is consumed: push more, or end the input */
  INFLATE_END,        /* the stream ended at the end of a gzip member; nothing more comes */
  INFLATE_ERROR,      /* corrupt or truncated data; see inflate_thread_message */
  INFLATE_NOT_YET,    /* (without waiting) the thread is still working on its input */
};

/* A thread inflating into chunks of `out_size` bytes, at most `out_slots` of them ready
 * ahead of the reader. NULL where the process has no zlib to inflate with. */
inflate_thread_t *inflate_thread_start(size_t out_size, unsigned out_slots);
/* Queues a chunk of gzip data, read in place: it must stay alive and unchanged until
 * `consumed` (from take) passes its sequence number, which this returns. 0: the queue is
 * full (INFLATE_IN_QUEUE chunks not consumed). */
uint64_t inflate_thread_push(inflate_thread_t *h, const void *data, size_t len);
/* No more input will come. */
void inflate_thread_end_input(inflate_thread_t *h);
/* Waits until one of the outcomes above (`wait` 0: returns INFLATE_NOT_YET instead of
 * waiting); `*consumed` gets how many input chunks are done. */
int inflate_thread_take(inflate_thread_t *h, int wait, const unsigned char **chunk,
                        size_t *len, uint64_t *consumed);
/* Gives the chunk take returned back to the thread. */
void inflate_thread_release(inflate_thread_t *h);
/* Why it failed (zlib's message). */
const char *inflate_thread_message(inflate_thread_t *h);
/* Stops the thread and frees everything but chunks already taken. */
void inflate_thread_end(inflate_thread_t *h);

#endif
