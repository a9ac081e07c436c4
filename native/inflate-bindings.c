/* The bindings of the gunzip thread (native/inflate-thread.c): inflateThread*. */
#include <errno.h>
#include <stdlib.h>

#include "inflate-bindings.h"
#include "inflate-thread.h"
#include "napi-util.h"

static void end_inflate(void *h) { inflate_thread_end(h); }

/* inflateThreadStart(chunkSize, slots): a handle, or undefined where there is no zlib. */
static napi_value js_start(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  double size, slots;
  if (!get_args(env, info, 2, argv) || napi_get_value_double(env, argv[0], &size) != napi_ok ||
      napi_get_value_double(env, argv[1], &slots) != napi_ok || size < 1 || slots < 1)
    return throw_type(env, "inflateThreadStart(chunkSize, slots)");
  return wrap_handle(env, inflate_thread_start((size_t)size, (unsigned)slots), end_inflate);
}

/* inflateThreadPush(handle, chunk): its sequence number, 0 when the queue is full. */
static napi_value js_push(napi_env env, napi_callback_info info) {
  napi_value argv[2], result;
  void *data;
  size_t len;
  inflate_thread_t *h;
  if (!get_args(env, info, 2, argv) || !(h = handle_object(env, argv[0])) ||
      !get_bytes(env, argv[1], &data, &len))
    return throw_type(env, "inflateThreadPush(handle, chunk: Uint8Array)");
  napi_create_double(env, (double)inflate_thread_push(h, data, len), &result);
  return result;
}

/* inflateThreadEndInput(handle). */
static napi_value js_end_input(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  inflate_thread_t *h;
  if (!get_args(env, info, 1, argv) || !(h = handle_object(env, argv[0])))
    return throw_type(env, "inflateThreadEndInput(handle)");
  inflate_thread_end_input(h);
  return NULL;
}

/*
 * inflateThreadTake(handle, consumed: Float64Array(1), wait: boolean): a Buffer (an output
 * chunk), 1 (need input), 2 (end), 3 (not yet: only without `wait`) or, on failure, the reason
 * (a string). consumed[0] gets the input chunks done with.
 */
static napi_value js_take(napi_env env, napi_callback_info info) {
  napi_value argv[3], result;
  inflate_thread_t *h;
  bool is_ta = false, wait = false;
  if (!get_args(env, info, 3, argv) || !(h = handle_object(env, argv[0])) ||
      napi_is_typedarray(env, argv[1], &is_ta) != napi_ok || !is_ta ||
      napi_get_value_bool(env, argv[2], &wait) != napi_ok)
    return throw_type(env, "inflateThreadTake(handle, consumed: Float64Array, wait: boolean)");
  napi_typedarray_type type;
  size_t n;
  void *out;
  napi_value ab;
  size_t off;
  napi_get_typedarray_info(env, argv[1], &type, &n, &out, &ab, &off);
  if (type != napi_float64_array || n < 1) return throw_type(env, "out must be a Float64Array");
  const unsigned char *chunk = NULL;
  size_t len = 0;
  uint64_t consumed = 0;
  int status = inflate_thread_take(h, wait, &chunk, &len, &consumed);
  ((double *)out)[0] = (double)consumed;
  if (status == INFLATE_CHUNK) {
    /* A copy in memory the garbage collector accounts for (an external buffer would not weigh
     * on it: a 1 GiB bomb then peaked past 200 MB); the slot goes back to the thread. */
    void *copy;
    napi_status s = napi_create_buffer_copy(env, len, chunk, &copy, &result);
    inflate_thread_release(h);
    if (s != napi_ok) return throw_errno(env, ENOMEM, "inflate", NULL);
    return result;
  }
  if (status == INFLATE_ERROR) {
    napi_create_string_utf8(env, inflate_thread_message(h), NAPI_AUTO_LENGTH, &result);
    return result;
  }
  int code = status == INFLATE_NEED_INPUT ? 1 : status == INFLATE_END ? 2 : 3;
  napi_create_int32(env, code, &result);
  return result;
}

/* inflateThreadEnd(handle): stops the thread; the handle is dead afterwards. */
static napi_value js_end(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  inflate_thread_t *h;
  if (!get_args(env, info, 1, argv) || !(h = take_handle(env, argv[0])))
    return throw_type(env, "inflateThreadEnd(handle)");
  inflate_thread_end(h);
  return NULL;
}

void define_inflate_bindings(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"inflateThreadStart", NULL, js_start, NULL, NULL, NULL, napi_enumerable, NULL},
      {"inflateThreadPush", NULL, js_push, NULL, NULL, NULL, napi_enumerable, NULL},
      {"inflateThreadEndInput", NULL, js_end_input, NULL, NULL, NULL, napi_enumerable, NULL},
      {"inflateThreadTake", NULL, js_take, NULL, NULL, NULL, napi_enumerable, NULL},
      {"inflateThreadEnd", NULL, js_end, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}
