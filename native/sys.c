/*
 * The few Linux system calls layerstore needs and Node's fs module lacks: device nodes,
 * extended attributes on the link itself, nanosecond timestamps, syncfs, flock, d_type. Most
 * are thin synchronous wrappers; waits (flock, syncfsAsync) run on libuv's thread pool and
 * return promises. Errors are Node-style (code, errno, syscall, path), so callers handle them
 * exactly like fs errors. The module's init is here too: it adds every binding file's functions.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <node_api.h>

#include "checksum-bindings.h"
#include "create-files.h"
#include "dir-size.h"
#include "inflate-bindings.h"
#include "mount.h"
#include "napi-util.h"
#include "read-files.h"

/* mknod(path, mode, major, minor): mode includes the file type bits (S_IFCHR, S_IFIFO...). */
static napi_value js_mknod(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  char path[PATH_BUF];
  int64_t mode, major, minor;
  if (!get_args(env, info, 4, argv) || !get_path(env, argv[0], path, sizeof path) ||
      !get_i64(env, argv[1], &mode) || !get_i64(env, argv[2], &major) ||
      !get_i64(env, argv[3], &minor))
    return throw_type(env, "mknod(path, mode, major, minor)");
  if (major < 0 || minor < 0 || major > UINT_MAX || minor > UINT_MAX)
    return throw_errno(env, EINVAL, "mknod", path);
  if (mknod(path, (mode_t)mode, makedev((unsigned)major, (unsigned)minor)) != 0)
    return throw_errno(env, errno, "mknod", path);
  return NULL;
}

/* lsetxattr(path, name, value: Buffer): sets an attribute on the link itself. */
static napi_value js_lsetxattr(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  char path[PATH_BUF], name[NAME_BUF];
  void *data;
  size_t len;
  bool is_buf = false;
  if (!get_args(env, info, 3, argv) || !get_path(env, argv[0], path, sizeof path) ||
      !get_path(env, argv[1], name, sizeof name) ||
      napi_is_buffer(env, argv[2], &is_buf) != napi_ok || !is_buf)
    return throw_type(env, "lsetxattr(path, name, value: Buffer)");
  napi_get_buffer_info(env, argv[2], &data, &len);
  if (lsetxattr(path, name, data, len, 0) != 0) return throw_errno(env, errno, "lsetxattr", path);
  return NULL;
}

/* lgetxattr(path, name): the value as a Buffer, or undefined when the attribute is absent. */
static napi_value js_lgetxattr(napi_env env, napi_callback_info info) {
  napi_value argv[2], result;
  char path[PATH_BUF], name[NAME_BUF];
  if (!get_args(env, info, 2, argv) || !get_path(env, argv[0], path, sizeof path) ||
      !get_path(env, argv[1], name, sizeof name))
    return throw_type(env, "lgetxattr(path, name)");
  for (;;) {
    ssize_t n = lgetxattr(path, name, NULL, 0);
    if (n < 0) {
      if (errno == ENODATA || errno == ENOTSUP) {
        napi_get_undefined(env, &result);
        return result;
      }
      return throw_errno(env, errno, "lgetxattr", path);
    }
    void *data;
    napi_create_buffer(env, (size_t)n, &data, &result);
    ssize_t m = n == 0 ? 0 : lgetxattr(path, name, data, (size_t)n);
    if (m == n) return result;
    if (m < 0 && errno != ERANGE) return throw_errno(env, errno, "lgetxattr", path);
    /* The value grew between the two calls: ask again. */
  }
}

/* llistxattr(path): attribute names (Buffers: names are bytes) of the link itself. */
static napi_value js_llistxattr(napi_env env, napi_callback_info info) {
  napi_value argv[1], result;
  char path[PATH_BUF];
  if (!get_args(env, info, 1, argv) || !get_path(env, argv[0], path, sizeof path))
    return throw_type(env, "llistxattr(path)");
  for (;;) {
    ssize_t n = llistxattr(path, NULL, 0);
    if (n < 0) {
      if (errno == ENOTSUP) n = 0;
      else return throw_errno(env, errno, "llistxattr", path);
    }
    char *list = malloc(n > 0 ? (size_t)n : 1);
    if (!list) return throw_errno(env, ENOMEM, "llistxattr", path);
    ssize_t m = n == 0 ? 0 : llistxattr(path, list, (size_t)n);
    if (m < 0) {
      int err = errno;
      free(list);
      if (err == ERANGE) continue;
      return throw_errno(env, err, "llistxattr", path);
    }
    napi_create_array(env, &result);
    uint32_t i = 0;
    for (ssize_t off = 0; off < m;) {
      size_t len = strnlen(list + off, (size_t)(m - off));
      napi_value name;
      void *copy;
      napi_create_buffer_copy(env, len, list + off, &copy, &name);
      napi_set_element(env, result, i++, name);
      off += (ssize_t)len + 1;
    }
    free(list);
    return result;
  }
}

/* lremovexattr(path, name): removes an attribute; absent is not an error. */
static napi_value js_lremovexattr(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  char path[PATH_BUF], name[NAME_BUF];
  if (!get_args(env, info, 2, argv) || !get_path(env, argv[0], path, sizeof path) ||
      !get_path(env, argv[1], name, sizeof name))
    return throw_type(env, "lremovexattr(path, name)");
  if (lremovexattr(path, name) != 0 && errno != ENODATA)
    return throw_errno(env, errno, "lremovexattr", path);
  return NULL;
}

static int get_times(napi_env env, napi_value *argv, struct timespec ts[2]) {
  int64_t v[4];
  for (int i = 0; i < 4; i++)
    if (!get_i64(env, argv[i], &v[i])) return 0;
  ts[0].tv_sec = (time_t)v[0];
  ts[0].tv_nsec = (long)v[1];
  ts[1].tv_sec = (time_t)v[2];
  ts[1].tv_nsec = (long)v[3];
  return v[1] >= 0 && v[1] < 1000000000 && v[3] >= 0 && v[3] < 1000000000;
}

/* lutimens(path, atimeSec, atimeNsec, mtimeSec, mtimeNsec): never follows a final symlink. */
static napi_value js_lutimens(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  char path[PATH_BUF];
  struct timespec ts[2];
  if (!get_args(env, info, 5, argv) || !get_path(env, argv[0], path, sizeof path) ||
      !get_times(env, argv + 1, ts))
    return throw_type(env, "lutimens(path, atimeSec, atimeNsec, mtimeSec, mtimeNsec)");
  if (utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW) != 0)
    return throw_errno(env, errno, "utimensat", path);
  return NULL;
}

/* futimens(fd, atimeSec, atimeNsec, mtimeSec, mtimeNsec). */
static napi_value js_futimens(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  int32_t fd;
  struct timespec ts[2];
  if (!get_args(env, info, 5, argv) || napi_get_value_int32(env, argv[0], &fd) != napi_ok ||
      !get_times(env, argv + 1, ts))
    return throw_type(env, "futimens(fd, atimeSec, atimeNsec, mtimeSec, mtimeNsec)");
  if (futimens(fd, ts) != 0) return throw_errno(env, errno, "futimens", NULL);
  return NULL;
}

/* syncfs(fd): flushes the whole filesystem holding fd (one call instead of fsync per file). */
static napi_value js_syncfs(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int32_t fd;
  if (!get_args(env, info, 1, argv) || napi_get_value_int32(env, argv[0], &fd) != napi_ok)
    return throw_type(env, "syncfs(fd)");
  if (syncfs(fd) != 0) return throw_errno(env, errno, "syncfs", NULL);
  return NULL;
}

/*
 * Calls on a file descriptor that may take long, made on a thread of libuv's pool so the main
 * thread goes on, each settling a promise: flock(fd, exclusive) waits for a whole-file lock
 * (the kernel drops it when the process dies, so a crash never leaves a stale lock behind);
 * syncfsAsync(fd) flushes the filesystem holding fd.
 */
#define OP_SYNCFS (-1)

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  int fd;
  int op; /* a flock(2) operation, or OP_SYNCFS */
  int err;
} fd_call_t;

static void fd_call_execute(napi_env env, void *data) {
  (void)env;
  fd_call_t *c = data;
  if (c->op == OP_SYNCFS) {
    if (syncfs(c->fd) != 0) c->err = errno;
    return;
  }
  while (flock(c->fd, c->op) != 0) {
    if (errno == EINTR) continue;
    c->err = errno;
    return;
  }
}

static void fd_call_complete(napi_env env, napi_status status, void *data) {
  fd_call_t *c = data;
  settle_void(env, c->deferred, status, c->err, c->op == OP_SYNCFS ? "syncfs" : "flock", "");
  napi_delete_async_work(env, c->work);
  free(c);
}

static napi_value queue_fd_call(napi_env env, int fd, int op) {
  fd_call_t *c = calloc(1, sizeof *c);
  if (!c) return throw_errno(env, ENOMEM, op == OP_SYNCFS ? "syncfs" : "flock", NULL);
  c->fd = fd;
  c->op = op;
  return queue_promise_work(env, op == OP_SYNCFS ? "layerstore.syncfs" : "layerstore.flock",
                            fd_call_execute, fd_call_complete, c, &c->work, &c->deferred);
}

static napi_value js_syncfs_async(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int32_t fd;
  if (!get_args(env, info, 1, argv) || napi_get_value_int32(env, argv[0], &fd) != napi_ok)
    return throw_type(env, "syncfsAsync(fd)");
  return queue_fd_call(env, fd, OP_SYNCFS);
}

static napi_value js_flock(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int32_t fd;
  bool exclusive;
  if (!get_args(env, info, 2, argv) || napi_get_value_int32(env, argv[0], &fd) != napi_ok ||
      napi_get_value_bool(env, argv[1], &exclusive) != napi_ok)
    return throw_type(env, "flock(fd, exclusive)");
  return queue_fd_call(env, fd, exclusive ? LOCK_EX : LOCK_SH);
}

/* tryFlock(fd, exclusive): true when the lock was taken at once, false when it is held. */
static napi_value js_try_flock(napi_env env, napi_callback_info info) {
  napi_value argv[2], result;
  int32_t fd;
  bool exclusive;
  if (!get_args(env, info, 2, argv) || napi_get_value_int32(env, argv[0], &fd) != napi_ok ||
      napi_get_value_bool(env, argv[1], &exclusive) != napi_ok)
    return throw_type(env, "tryFlock(fd, exclusive)");
  int rc;
  while ((rc = flock(fd, (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB)) != 0 && errno == EINTR) {
  }
  if (rc != 0 && errno != EWOULDBLOCK) return throw_errno(env, errno, "flock", NULL);
  napi_get_boolean(env, rc == 0, &result);
  return result;
}

/* funlock(fd): releases the lock (closing the fd does too). */
static napi_value js_funlock(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int32_t fd;
  if (!get_args(env, info, 1, argv) || napi_get_value_int32(env, argv[0], &fd) != napi_ok)
    return throw_type(env, "funlock(fd)");
  if (flock(fd, LOCK_UN) != 0) return throw_errno(env, errno, "flock", NULL);
  return NULL;
}

/*
 * hasDirentTypes(dir): whether readdir(3) on `dir` reports file types (d_type). overlayfs
 * needs them on the backing filesystem (xfs made with ftype=0 has none); Node's readdir hides
 * the answer by falling back to lstat.
 */
static napi_value js_has_dirent_types(napi_env env, napi_callback_info info) {
  napi_value argv[1], result;
  char path[PATH_BUF];
  if (!get_args(env, info, 1, argv) || !get_path(env, argv[0], path, sizeof path))
    return throw_type(env, "hasDirentTypes(dir)");
  DIR *d = opendir(path);
  if (!d) return throw_errno(env, errno, "opendir", path);
  bool typed = true;
  struct dirent *e;
  errno = 0;
  while ((e = readdir(d)) != NULL) {
    if (e->d_type == DT_UNKNOWN) {
      typed = false;
      break;
    }
  }
  int err = errno;
  closedir(d);
  if (typed && err != 0) return throw_errno(env, err, "readdir", path);
  napi_get_boolean(env, typed, &result);
  return result;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"mknod", NULL, js_mknod, NULL, NULL, NULL, napi_enumerable, NULL},
      {"lsetxattr", NULL, js_lsetxattr, NULL, NULL, NULL, napi_enumerable, NULL},
      {"lgetxattr", NULL, js_lgetxattr, NULL, NULL, NULL, napi_enumerable, NULL},
      {"llistxattr", NULL, js_llistxattr, NULL, NULL, NULL, napi_enumerable, NULL},
      {"lremovexattr", NULL, js_lremovexattr, NULL, NULL, NULL, napi_enumerable, NULL},
      {"lutimens", NULL, js_lutimens, NULL, NULL, NULL, napi_enumerable, NULL},
      {"futimens", NULL, js_futimens, NULL, NULL, NULL, napi_enumerable, NULL},
      {"syncfs", NULL, js_syncfs, NULL, NULL, NULL, napi_enumerable, NULL},
      {"syncfsAsync", NULL, js_syncfs_async, NULL, NULL, NULL, napi_enumerable, NULL},
      {"flock", NULL, js_flock, NULL, NULL, NULL, napi_enumerable, NULL},
      {"tryFlock", NULL, js_try_flock, NULL, NULL, NULL, napi_enumerable, NULL},
      {"funlock", NULL, js_funlock, NULL, NULL, NULL, napi_enumerable, NULL},
      {"hasDirentTypes", NULL, js_has_dirent_types, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  define_checksum_bindings(env, exports);
  define_inflate_bindings(env, exports);
  define_dir_size_bindings(env, exports);
  define_read_files_bindings(env, exports);
  define_create_files_bindings(env, exports);
  define_mount_bindings(env, exports);
  return exports;
}

NAPI_MODULE_INIT() { return init(env, exports); }
