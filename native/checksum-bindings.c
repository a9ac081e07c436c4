/*
 * The checksums' bindings: crc64Update (native/crc64.c) and the sha256Thread* calls
 * (native/sha256-thread.c).
 */
#include <errno.h>
#include <stdlib.h>

#include "checksum-bindings.h"
#include "crc64.h"
#include "napi-util.h"
#include "sha256-thread.h"

/* crc64Update(register, data): `register` is a Uint32Array [low, high], updated in place. */
static napi_value js_crc64_update(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  bool is_ta = false;
  if (argc < 2 || napi_is_typedarray(env, argv[0], &is_ta) != napi_ok || !is_ta) {
    return throw_type(env, "register must be a Uint32Array of 2");
  }
  napi_typedarray_type type;
  size_t n_reg;
  void *reg;
  napi_value ab;
  size_t off;
  napi_get_typedarray_info(env, argv[0], &type, &n_reg, &reg, &ab, &off);
  if (type != napi_uint32_array || n_reg != 2) return throw_type(env, "register must be a Uint32Array of 2");
  void *data;
  size_t len;
  if (!get_bytes(env, argv[1], &data, &len)) return throw_type(env, "data must be a Uint8Array");
  uint32_t *r = reg;
  uint64_t crc = crc64_update(((uint64_t)r[1] << 32) | r[0], data, len);
  r[0] = (uint32_t)crc;
  r[1] = (uint32_t)(crc >> 32);
  return NULL;
}

static void end_hash(void *h) { sha256_thread_end(h, NULL); }

/* sha256ThreadStart(): a handle, or undefined where there is no OpenSSL to hash with. */
static napi_value js_sha256_thread_start(napi_env env, napi_callback_info info) {
  (void)info;
  return wrap_handle(env, sha256_thread_start(), end_hash);
}

/* sha256ThreadPush(handle, chunk): the chunk's sequence number. */
static napi_value js_sha256_thread_push(napi_env env, napi_callback_info info) {
  napi_value argv[2], result;
  void *data;
  size_t len;
  sha256_thread_t *h;
  if (!get_args(env, info, 2, argv) || !(h = handle_object(env, argv[0])) ||
      !get_bytes(env, argv[1], &data, &len))
    return throw_type(env, "sha256ThreadPush(handle, chunk: Uint8Array)");
  napi_create_double(env, (double)sha256_thread_push(h, data, len), &result);
  return result;
}

/* sha256ThreadWait(handle, seq): returns once chunk `seq` is hashed. */
static napi_value js_sha256_thread_wait(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  double seq;
  sha256_thread_t *h;
  if (!get_args(env, info, 2, argv) || !(h = handle_object(env, argv[0])) ||
      napi_get_value_double(env, argv[1], &seq) != napi_ok)
    return throw_type(env, "sha256ThreadWait(handle, seq)");
  sha256_thread_wait(h, (uint64_t)seq);
  return NULL;
}

/* sha256ThreadEnd(handle, digest: boolean): the 32-byte digest, or undefined. */
static napi_value js_sha256_thread_end(napi_env env, napi_callback_info info) {
  napi_value argv[2], result;
  bool want = false;
  sha256_thread_t *h;
  if (!get_args(env, info, 2, argv) || napi_get_value_bool(env, argv[1], &want) != napi_ok ||
      !(h = take_handle(env, argv[0])))
    return throw_type(env, "sha256ThreadEnd(handle, digest: boolean)");
  unsigned char out[32];
  int ok = sha256_thread_end(h, want ? out : NULL);
  if (!want) {
    napi_get_undefined(env, &result);
    return result;
  }
  if (!ok) return throw_errno(env, EIO, "sha256", NULL);
  void *copy;
  napi_create_buffer_copy(env, 32, out, &copy, &result);
  return result;
}

void define_checksum_bindings(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"crc64Update", NULL, js_crc64_update, NULL, NULL, NULL, napi_enumerable, NULL},
      {"sha256ThreadStart", NULL, js_sha256_thread_start, NULL, NULL, NULL, napi_enumerable, NULL},
      {"sha256ThreadPush", NULL, js_sha256_thread_push, NULL, NULL, NULL, napi_enumerable, NULL},
      {"sha256ThreadWait", NULL, js_sha256_thread_wait, NULL, NULL, NULL, napi_enumerable, NULL},
      {"sha256ThreadEnd", NULL, js_sha256_thread_end, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  crc64_init();
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}
