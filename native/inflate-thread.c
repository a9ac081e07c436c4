/*
 * gunzip on a thread of its own, so that decompressing a layer runs beside its extraction.
 * node:zlib's stream inflates one output chunk per thread-pool job and asks for the next from
 * the event loop, so a reader that works through a buffered megabyte in one go leaves it idle
 * meanwhile: the two take turns. This thread inflates ahead of the reader, up to `out_slots`
 * chunks, whatever the reader is doing.
 *
 * Semantics are Go's multistream gzip reader's: members follow one another; input ending
 * inside a member is an error ("unexpected end of file"), and so are bytes after a member
 * that do not start another (zlib's "incorrect header check").
 *
 * zlib is Node's own (its symbols are exported for addons), found with dlsym as sha256-thread.c
 * finds OpenSSL: a Node without it only loses this path.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "inflate-thread.h"

typedef struct {
  int (*init2)(z_streamp, int, const char *, int);
  int (*inflate)(z_streamp, int);
  int (*reset)(z_streamp);
  int (*end)(z_streamp);
} zlib_t;

static zlib_t zl;
static int zl_ok;

static void find_zlib(void) {
  zl.init2 = (int (*)(z_streamp, int, const char *, int))dlsym(RTLD_DEFAULT, "inflateInit2_");
  zl.inflate = (int (*)(z_streamp, int))dlsym(RTLD_DEFAULT, "inflate");
  zl.reset = (int (*)(z_streamp))dlsym(RTLD_DEFAULT, "inflateReset");
  zl.end = (int (*)(z_streamp))dlsym(RTLD_DEFAULT, "inflateEnd");
  zl_ok = zl.init2 && zl.inflate && zl.reset && zl.end;
}

enum { RUNNING, DONE, FAILED };

struct inflate_thread {
  pthread_t thread;
  pthread_mutex_t lock;
  pthread_cond_t wake;  /* for the thread: input pushed, a slot freed, input ended, stop */
  pthread_cond_t ready; /* for the reader: a chunk made, input consumed, done, failed */
  const unsigned char *in[INFLATE_IN_QUEUE];
  size_t in_len[INFLATE_IN_QUEUE];
  uint64_t pushed, consumed;
  int input_ended;
  unsigned char **out;
  size_t *out_len;
  unsigned out_slots;
  uint64_t made, taken;
  size_t out_size;
  int state, stop;
  char message[128];
  z_stream zs;
};

/* Under the lock: the slot being filled goes to the reader. */
static void deliver(inflate_thread_t *h, size_t len) {
  h->out_len[h->made % h->out_slots] = len;
  h->made++;
  pthread_cond_broadcast(&h->ready);
}

/* Under the lock. */
static void fail(inflate_thread_t *h, const char *message) {
  snprintf(h->message, sizeof h->message, "%s", message);
  h->state = FAILED;
  pthread_cond_broadcast(&h->ready);
}

static void *run(void *arg) {
  inflate_thread_t *h = arg;
  unsigned char *buf = NULL;
  size_t fill = 0, offset = 0; /* output so far in buf; bytes of the current input used */
  int between = 0; /* at the end of a member: the input may end here */
  pthread_mutex_lock(&h->lock);
  for (;;) {
    while (!h->stop && (h->consumed == h->pushed
                            ? !h->input_ended
                            : buf == NULL && h->made - h->taken >= h->out_slots))
      pthread_cond_wait(&h->wake, &h->lock);
    if (h->stop) break;
    /* At the end of the input, zlib may still hold output: inflate drains it. */
    int at_end = h->consumed == h->pushed;
    if (at_end && between) {
      if (fill > 0) deliver(h, fill);
      buf = NULL;
      h->state = DONE;
      pthread_cond_broadcast(&h->ready);
      break;
    }
    size_t slot = h->consumed % INFLATE_IN_QUEUE;
    const unsigned char *in = at_end ? NULL : h->in[slot] + offset;
    size_t avail = at_end ? 0 : h->in_len[slot] - offset;
    if (buf == NULL) { /* the next free output slot (the reader only reads taken..made) */
      while (!h->stop && h->made - h->taken >= h->out_slots)
        pthread_cond_wait(&h->wake, &h->lock);
      if (h->stop) break;
      buf = h->out[h->made % h->out_slots];
    }
    pthread_mutex_unlock(&h->lock);

    int ret = Z_OK;
    size_t used = 0;
    if (avail > 0 || at_end) {
      if (between) ret = zl.reset(&h->zs); /* more bytes: another member must start here */
      between = 0;
      if (ret == Z_OK) {
        h->zs.next_in = (unsigned char *)in;
        h->zs.avail_in = (uInt)(avail > 0x40000000 ? 0x40000000 : avail);
        h->zs.next_out = buf + fill;
        h->zs.avail_out = (uInt)(h->out_size - fill);
        uInt before = h->zs.avail_in;
        ret = zl.inflate(&h->zs, Z_NO_FLUSH);
        used = before - h->zs.avail_in;
        fill = h->out_size - h->zs.avail_out;
      }
    }

    pthread_mutex_lock(&h->lock);
    if (ret == Z_STREAM_END) {
      between = 1;
    } else if (at_end && ret == Z_BUF_ERROR) {
      fail(h, "unexpected end of file");
      break;
    } else if (ret != Z_OK && ret != Z_BUF_ERROR) {
      fail(h, h->zs.msg ? h->zs.msg : "invalid gzip data");
      break;
    }
    if (!at_end) {
      offset += used;
      if (offset == h->in_len[slot]) {
        offset = 0;
        h->consumed++;
        pthread_cond_broadcast(&h->ready);
      }
    }
    if (fill == h->out_size) {
      deliver(h, fill);
      buf = NULL;
      fill = 0;
    }
  }
  pthread_mutex_unlock(&h->lock);
  return NULL;
}

inflate_thread_t *inflate_thread_start(size_t out_size, unsigned out_slots) {
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, find_zlib);
  if (!zl_ok || out_size == 0 || out_slots == 0) return NULL;
  inflate_thread_t *h = calloc(1, sizeof *h);
  if (!h) return NULL;
  h->out = calloc(out_slots, sizeof *h->out);
  h->out_len = calloc(out_slots, sizeof *h->out_len);
  h->out_size = out_size;
  h->out_slots = out_slots;
  if (!h->out || !h->out_len) goto fail;
  for (unsigned i = 0; i < out_slots; i++)
    if (!(h->out[i] = malloc(out_size))) goto fail;
  /* 16 + 15: a gzip wrapper, the largest window. */
  if (zl.init2(&h->zs, 16 + 15, ZLIB_VERSION, sizeof h->zs) != Z_OK) goto fail;
  pthread_mutex_init(&h->lock, NULL);
  pthread_cond_init(&h->wake, NULL);
  pthread_cond_init(&h->ready, NULL);
  if (pthread_create(&h->thread, NULL, run, h) != 0) {
    zl.end(&h->zs);
    pthread_mutex_destroy(&h->lock);
    pthread_cond_destroy(&h->wake);
    pthread_cond_destroy(&h->ready);
    goto fail;
  }
  return h;
fail:
  for (unsigned i = 0; h->out && i < out_slots; i++) free(h->out[i]);
  free(h->out);
  free(h->out_len);
  free(h);
  return NULL;
}

uint64_t inflate_thread_push(inflate_thread_t *h, const void *data, size_t len) {
  pthread_mutex_lock(&h->lock);
  uint64_t seq = 0;
  if (h->pushed - h->consumed < INFLATE_IN_QUEUE && !h->input_ended) {
    h->in[h->pushed % INFLATE_IN_QUEUE] = data;
    h->in_len[h->pushed % INFLATE_IN_QUEUE] = len;
    seq = ++h->pushed;
    pthread_cond_signal(&h->wake);
  }
  pthread_mutex_unlock(&h->lock);
  return seq;
}

void inflate_thread_end_input(inflate_thread_t *h) {
  pthread_mutex_lock(&h->lock);
  h->input_ended = 1;
  pthread_cond_signal(&h->wake);
  pthread_mutex_unlock(&h->lock);
}

int inflate_thread_take(inflate_thread_t *h, int wait, const unsigned char **chunk,
                        size_t *len, uint64_t *consumed) {
  int status;
  pthread_mutex_lock(&h->lock);
  for (;;) {
    if (h->taken < h->made) {
      *chunk = h->out[h->taken % h->out_slots];
      *len = h->out_len[h->taken % h->out_slots];
      status = INFLATE_CHUNK;
      break;
    }
    if (h->state == DONE) {
      status = INFLATE_END;
      break;
    }
    if (h->state == FAILED) {
      status = INFLATE_ERROR;
      break;
    }
    if (h->consumed == h->pushed && !h->input_ended) {
      status = INFLATE_NEED_INPUT;
      break;
    }
    if (!wait) {
      status = INFLATE_NOT_YET;
      break;
    }
    pthread_cond_wait(&h->ready, &h->lock);
  }
  *consumed = h->consumed;
  pthread_mutex_unlock(&h->lock);
  return status;
}

void inflate_thread_release(inflate_thread_t *h) {
  pthread_mutex_lock(&h->lock);
  h->taken++;
  pthread_cond_signal(&h->wake);
  pthread_mutex_unlock(&h->lock);
}

const char *inflate_thread_message(inflate_thread_t *h) { return h->message; }

void inflate_thread_end(inflate_thread_t *h) {
  pthread_mutex_lock(&h->lock);
  h->stop = 1;
  pthread_cond_signal(&h->wake);
  pthread_mutex_unlock(&h->lock);
  pthread_join(h->thread, NULL);
  for (unsigned i = 0; i < h->out_slots; i++) free(h->out[i]);
  zl.end(&h->zs);
  pthread_mutex_destroy(&h->lock);
  pthread_cond_destroy(&h->wake);
  pthread_cond_destroy(&h->ready);
  free(h->out);
  free(h->out_len);
  free(h);
}
