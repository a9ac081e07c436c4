/* Helpers shared by the addon's bindings: argument reading, fs-style errors, promise work. */
#ifndef LAYERSTORE_NAPI_UTIL_H
#define LAYERSTORE_NAPI_UTIL_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <node_api.h>

/* An Error shaped like Node's fs errors: code, errno, syscall, path. */
napi_value make_errno_error(napi_env env, int err, const char *syscall, const char *path);
/* Throws such an Error; returns NULL for convenience. */
napi_value throw_errno(napi_env env, int err, const char *syscall, const char *path);
/* Throws a TypeError (ERR_INVALID_ARG_TYPE); returns NULL. */
napi_value throw_type(napi_env env, const char *what);
/* Room for a path argument (PATH_MAX), and for an xattr name or a filesystem type. */
#define PATH_BUF 4096
#define NAME_BUF 256

/* Exactly `want` arguments into argv. */
int get_args(napi_env env, napi_callback_info info, size_t want, napi_value *argv);
/* A path argument: a Buffer (any bytes but NUL) or a string, NUL-terminated in out[cap]. */
int get_path(napi_env env, napi_value v, char *out, size_t cap);
/* A number argument as an int64_t. */
int get_i64(napi_env env, napi_value v, int64_t *out);
/* The bytes of a Buffer or Uint8Array; false for anything else. */
bool get_bytes(napi_env env, napi_value v, void **base, size_t *len);
/*
 * Queues `execute` on libuv's thread pool and `complete` after it on the main thread; returns
 * the promise that `complete` settles through `*deferred`.
 */
napi_value queue_promise_work(napi_env env, const char *name,
                              napi_async_execute_callback execute,
                              napi_async_complete_callback complete, void *data,
                              napi_async_work *work, napi_deferred *deferred);
/*
 * Settles a promise of queue_promise_work that has no value: undefined when `err` is 0 (and
 * the work ran: `status` napi_ok), else rejected with an fs-style error.
 */
void settle_void(napi_env env, napi_deferred deferred, napi_status status, int err,
                 const char *syscall, const char *path);

/*
 * A native object (a thread of ours) behind an External: `end` runs when the External is
 * collected, unless the object was taken from it before. undefined when `obj` is NULL.
 */
napi_value wrap_handle(napi_env env, void *obj, void (*end)(void *));
/* The object behind a handle; NULL for anything else, or once taken. */
void *handle_object(napi_env env, napi_value v);
/* The object, which the handle no longer ends: the caller does. NULL as handle_object. */
void *take_handle(napi_env env, napi_value v);

#endif
