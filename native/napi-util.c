/* Helpers shared by the addon's bindings (see napi-util.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "napi-util.h"

/* An Error shaped like Node's fs errors: code, errno, syscall, path. */
napi_value make_errno_error(napi_env env, int err, const char *syscall, const char *path) {
  const char *code = strerrorname_np(err);
  char msg[4096 + 160];
  snprintf(msg, sizeof msg, "%s: %s, %s '%s'", code ? code : "EUNKNOWN", strerror(err), syscall,
           path ? path : "");
  napi_value message, error, v;
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &message);
  napi_create_error(env, NULL, message, &error);
  napi_create_string_utf8(env, code ? code : "EUNKNOWN", NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, error, "code", v);
  napi_create_int32(env, -err, &v);
  napi_set_named_property(env, error, "errno", v);
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, error, "syscall", v);
  if (path && *path) {
    napi_create_string_utf8(env, path, NAPI_AUTO_LENGTH, &v);
    napi_set_named_property(env, error, "path", v);
  }
  return error;
}

/* Throws an Error shaped like Node's fs errors. Returns NULL for convenience. */
napi_value throw_errno(napi_env env, int err, const char *syscall, const char *path) {
  napi_throw(env, make_errno_error(env, err, syscall, path));
  return NULL;
}

napi_value throw_type(napi_env env, const char *what) {
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", what);
  return NULL;
}

int get_args(napi_env env, napi_callback_info info, size_t want, napi_value *argv) {
  size_t argc = want;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  return argc == want;
}

/* A path argument: a Buffer (any bytes but NUL) or a string. */
int get_path(napi_env env, napi_value v, char *out, size_t cap) {
  bool is_buf = false;
  napi_is_buffer(env, v, &is_buf);
  if (is_buf) {
    void *data;
    size_t len;
    napi_get_buffer_info(env, v, &data, &len);
    if (len >= cap || memchr(data, 0, len) != NULL) return 0;
    memcpy(out, data, len);
    out[len] = 0;
    return 1;
  }
  size_t len;
  if (napi_get_value_string_utf8(env, v, out, cap, &len) != napi_ok) return 0;
  return len < cap - 1 && strlen(out) == len;
}

int get_i64(napi_env env, napi_value v, int64_t *out) {
  return napi_get_value_int64(env, v, out) == napi_ok;
}

/* The bytes of a Buffer or Uint8Array; false for anything else. */
bool get_bytes(napi_env env, napi_value v, void **base, size_t *len) {
  bool is_buf = false;
  napi_is_buffer(env, v, &is_buf);
  if (is_buf) return napi_get_buffer_info(env, v, base, len) == napi_ok;
  bool is_ta = false;
  napi_is_typedarray(env, v, &is_ta);
  if (!is_ta) return false;
  napi_typedarray_type type;
  napi_value ab;
  size_t off;
  napi_get_typedarray_info(env, v, &type, len, base, &ab, &off);
  return type == napi_uint8_array;
}

napi_value queue_promise_work(napi_env env, const char *name,
                              napi_async_execute_callback execute,
                              napi_async_complete_callback complete, void *data,
                              napi_async_work *work, napi_deferred *deferred) {
  napi_value promise, resource;
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &resource);
  napi_create_promise(env, deferred, &promise);
  napi_create_async_work(env, NULL, resource, execute, complete, data, work);
  napi_queue_async_work(env, *work);
  return promise;
}

void settle_void(napi_env env, napi_deferred deferred, napi_status status, int err,
                 const char *syscall, const char *path) {
  if (status != napi_ok && err == 0) err = ECANCELED;
  if (err == 0) {
    napi_value undef;
    napi_get_undefined(env, &undef);
    napi_resolve_deferred(env, deferred, undef);
  } else {
    napi_reject_deferred(env, deferred, make_errno_error(env, err, syscall, path));
  }
}

typedef struct {
  void *obj;
  void (*end)(void *);
} handle_t;

static void handle_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  handle_t *h = data;
  if (h->obj) h->end(h->obj);
  free(h);
}

napi_value wrap_handle(napi_env env, void *obj, void (*end)(void *)) {
  napi_value result;
  handle_t *h = obj ? malloc(sizeof *h) : NULL;
  if (!h) {
    if (obj) end(obj);
    napi_get_undefined(env, &result);
    return result;
  }
  h->obj = obj;
  h->end = end;
  napi_create_external(env, h, handle_finalize, NULL, &result);
  return result;
}

static handle_t *get_handle(napi_env env, napi_value v) {
  void *data = NULL;
  napi_valuetype type;
  if (napi_typeof(env, v, &type) != napi_ok || type != napi_external) return NULL;
  if (napi_get_value_external(env, v, &data) != napi_ok || !data) return NULL;
  return data;
}

void *handle_object(napi_env env, napi_value v) {
  handle_t *h = get_handle(env, v);
  return h ? h->obj : NULL;
}

void *take_handle(napi_env env, napi_value v) {
  handle_t *h = get_handle(env, v);
  void *obj = h ? h->obj : NULL;
  if (h) h->obj = NULL;
  return obj;
}
