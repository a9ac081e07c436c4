/*
 * The few Linux system calls layerstore needs and Node's fs module lacks: device nodes,
 * extended attributes on the link itself, nanosecond timestamps, syncfs, flock, mount. Most
 * functions are thin synchronous wrappers; waits, batches and mounts run on libuv's thread
 * pool and return promises. Errors are Node-style (code, errno, syscall, path), so callers
 * handle them exactly like fs errors.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sched.h>
#include <dirent.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <node_api.h>

#include "checksum-bindings.h"
#include "dir-size.h"
#include "read-files.h"
#include "inflate-bindings.h"
#include "napi-util.h"

#define PATH_BUF 4096
#define NAME_BUF 256

/* A path argument: a Buffer (any bytes but NUL) or a string. */
static int get_path(napi_env env, napi_value v, char *out, size_t cap) {
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

static int get_i64(napi_env env, napi_value v, int64_t *out) {
  return napi_get_value_int64(env, v, out) == napi_ok;
}

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
  if (status != napi_ok && c->err == 0) c->err = ECANCELED;
  if (c->err == 0) {
    napi_value undef;
    napi_get_undefined(env, &undef);
    napi_resolve_deferred(env, c->deferred, undef);
  } else {
    const char *syscall = c->op == OP_SYNCFS ? "syncfs" : "flock";
    napi_reject_deferred(env, c->deferred, make_errno_error(env, c->err, syscall, ""));
  }
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
 * createFiles(paths: Buffer[], chunks: Uint8Array[][], meta: Float64Array): Promise<(Error |
 * undefined)[]>. Creates new files on a thread of libuv's pool, a batch per job: an N-API job
 * and its promise cost ~15 µs of main-thread time, far more than describing a small file.
 * Each file: open(O_CREAT|O_EXCL|O_NOFOLLOW: never an existing name, never through a symlink),
 * the chunks written, fchown (uid < 0: left as is), fchmod (when asked), futimens, close.
 * `meta` holds 9 numbers per file: mode, uid, gid, atimeSec, atimeNsec, mtimeSec, mtimeNsec,
 * chmod (0/1), unused. Files are created in order; each gets its own result.
 */
typedef struct {
  char *path;
  struct iovec *iov;
  size_t iovcnt;
  mode_t mode;
  int64_t uid, gid;
  struct timespec ts[2];
  bool chmod;
  int err;
  const char *syscall;
} file_job_t;

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  napi_ref chunks_ref;
  uint32_t n;
  file_job_t *jobs;
} file_batch_t;

static void create_one(file_job_t *j) {
  int fd = open(j->path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, j->mode & 0777);
  if (fd < 0) {
    j->err = errno;
    j->syscall = "open";
    return;
  }
  for (size_t i = 0; i < j->iovcnt; i++) {
    char *p = j->iov[i].iov_base;
    size_t left = j->iov[i].iov_len;
    while (left > 0) {
      ssize_t n = write(fd, p, left);
      if (n < 0) {
        if (errno == EINTR) continue;
        j->err = errno;
        j->syscall = "write";
        close(fd);
        return;
      }
      p += n;
      left -= (size_t)n;
    }
  }
  if (j->uid >= 0 && fchown(fd, (uid_t)j->uid, (gid_t)j->gid) != 0) {
    j->err = errno;
    j->syscall = "fchown";
  } else if (j->chmod && fchmod(fd, j->mode & 07777) != 0) {
    j->err = errno;
    j->syscall = "fchmod";
  } else if (futimens(fd, j->ts) != 0) {
    j->err = errno;
    j->syscall = "futimens";
  }
  if (close(fd) != 0 && j->err == 0) {
    j->err = errno;
    j->syscall = "close";
  }
}

static void batch_free(file_batch_t *b) {
  for (uint32_t i = 0; i < b->n; i++) {
    free(b->jobs[i].path);
    free(b->jobs[i].iov);
  }
  free(b->jobs);
  free(b);
}

static void batch_execute(napi_env env, void *data) {
  (void)env;
  file_batch_t *b = data;
  for (uint32_t i = 0; i < b->n; i++) create_one(&b->jobs[i]);
}

static void batch_complete(napi_env env, napi_status status, void *data) {
  file_batch_t *b = data;
  napi_value results, v;
  napi_create_array_with_length(env, b->n, &results);
  for (uint32_t i = 0; i < b->n; i++) {
    file_job_t *j = &b->jobs[i];
    if (status != napi_ok && j->err == 0) {
      j->err = ECANCELED;
      j->syscall = "createFiles";
    }
    if (j->err == 0) napi_get_undefined(env, &v);
    else v = make_errno_error(env, j->err, j->syscall, j->path);
    napi_set_element(env, results, i, v);
  }
  napi_resolve_deferred(env, b->deferred, results);
  napi_delete_reference(env, b->chunks_ref);
  napi_delete_async_work(env, b->work);
  batch_free(b);
}

static napi_value js_create_files(napi_env env, napi_callback_info info) {
  napi_value argv[3], keep;
  uint32_t n = 0, m = 0;
  bool is_array = false, is_array2 = false, is_ta = false;
  if (!get_args(env, info, 3, argv) || napi_is_array(env, argv[0], &is_array) != napi_ok ||
      !is_array || napi_is_array(env, argv[1], &is_array2) != napi_ok || !is_array2 ||
      napi_is_typedarray(env, argv[2], &is_ta) != napi_ok || !is_ta)
    return throw_type(env, "createFiles(paths, chunks, meta: Float64Array)");
  napi_get_array_length(env, argv[0], &n);
  napi_get_array_length(env, argv[1], &m);
  napi_typedarray_type type;
  size_t meta_len, off;
  void *meta_data;
  napi_value ab;
  napi_get_typedarray_info(env, argv[2], &type, &meta_len, &meta_data, &ab, &off);
  if (type != napi_float64_array || m != n || meta_len < (size_t)n * 9)
    return throw_type(env, "createFiles: paths, chunks and meta (9 per file) must agree");
  const double *meta = meta_data;
  file_batch_t *b = calloc(1, sizeof *b);
  if (!b) return throw_errno(env, ENOMEM, "createFiles", NULL);
  b->jobs = calloc(n > 0 ? n : 1, sizeof *b->jobs);
  if (!b->jobs) {
    free(b);
    return throw_errno(env, ENOMEM, "createFiles", NULL);
  }
  b->n = n;
  for (uint32_t i = 0; i < n; i++) {
    file_job_t *j = &b->jobs[i];
    napi_value p, list, el;
    void *data;
    size_t len;
    uint32_t k = 0;
    napi_get_element(env, argv[0], i, &p);
    bool ok = get_bytes(env, p, &data, &len) && memchr(data, 0, len) == NULL;
    if (ok) {
      j->path = malloc(len + 1);
      ok = j->path != NULL;
      if (ok) {
        memcpy(j->path, data, len);
        j->path[len] = 0;
      }
    }
    napi_get_element(env, argv[1], i, &list);
    bool list_ok = false;
    if (ok) napi_is_array(env, list, &list_ok);
    if (ok && list_ok) {
      napi_get_array_length(env, list, &k);
      j->iov = calloc(k > 0 ? k : 1, sizeof *j->iov);
      ok = j->iov != NULL;
      for (uint32_t c = 0; ok && c < k; c++) {
        napi_get_element(env, list, c, &el);
        ok = get_bytes(env, el, &j->iov[c].iov_base, &j->iov[c].iov_len);
      }
      j->iovcnt = k;
    } else {
      ok = false;
    }
    if (!ok) {
      b->n = i + 1;
      batch_free(b);
      return throw_type(env, "createFiles: a path must be a Buffer without NUL, chunks Uint8Arrays");
    }
    const double *f = meta + (size_t)i * 9;
    j->mode = (mode_t)f[0];
    j->uid = (int64_t)f[1];
    j->gid = (int64_t)f[2];
    j->ts[0].tv_sec = (time_t)f[3];
    j->ts[0].tv_nsec = (long)f[4];
    j->ts[1].tv_sec = (time_t)f[5];
    j->ts[1].tv_nsec = (long)f[6];
    j->chmod = f[7] != 0;
  }
  /* The chunks stay alive (off-heap, unmoved) until completion. */
  napi_create_array_with_length(env, 2, &keep);
  napi_set_element(env, keep, 0, argv[1]);
  napi_set_element(env, keep, 1, argv[0]);
  napi_create_reference(env, keep, 1, &b->chunks_ref);
  return queue_promise_work(env, "layerstore.createFiles", batch_execute, batch_complete, b,
                            &b->work, &b->deferred);
}

/*
 * mount(source, target, fstype, flags, data, cwd?): Promise<void>, on a thread of libuv's pool.
 * With `cwd`, the mount(2) call runs in a thread of its own that first unshares its
 * filesystem context (CLONE_FS) and changes into `cwd`: relative paths in `data` (overlayfs'
 * lowerdir=l/ABC:...) then resolve there, while the process's working directory, which
 * every other thread shares, never moves. Needed when absolute paths do not fit in a page.
 */
typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  char source[PATH_BUF];
  char target[PATH_BUF];
  char fstype[NAME_BUF];
  char cwd[PATH_BUF];
  char *data;
  unsigned long flags;
  bool has_cwd;
  int umount_flags;
  bool is_umount;
  int err;
  const char *syscall;
} mount_t;

static void mount_now(mount_t *m) {
  int rc = m->is_umount ? umount2(m->target, m->umount_flags)
                        : mount(m->source, m->target, m->fstype, m->flags, m->data);
  if (rc != 0) {
    m->err = errno;
    m->syscall = m->is_umount ? "umount2" : "mount";
  }
}

static void *mount_in_dir(void *arg) {
  mount_t *m = arg;
  if (unshare(CLONE_FS) != 0) {
    m->err = errno;
    m->syscall = "unshare";
  } else if (chdir(m->cwd) != 0) {
    m->err = errno;
    m->syscall = "chdir";
  } else {
    mount_now(m);
  }
  return NULL;
}

static void mount_execute(napi_env env, void *data) {
  (void)env;
  mount_t *m = data;
  if (!m->has_cwd) {
    mount_now(m);
    return;
  }
  pthread_t thread;
  int rc = pthread_create(&thread, NULL, mount_in_dir, m);
  if (rc != 0) {
    m->err = rc;
    m->syscall = "pthread_create";
    return;
  }
  pthread_join(thread, NULL);
}

static void mount_complete(napi_env env, napi_status status, void *data) {
  mount_t *m = data;
  if (status != napi_ok && m->err == 0) m->err = ECANCELED;
  if (m->err == 0) {
    napi_value undef;
    napi_get_undefined(env, &undef);
    napi_resolve_deferred(env, m->deferred, undef);
  } else {
    napi_reject_deferred(env, m->deferred,
                         make_errno_error(env, m->err, m->syscall ? m->syscall : "mount", m->target));
  }
  napi_delete_async_work(env, m->work);
  free(m->data);
  free(m);
}

static napi_value queue_mount(napi_env env, mount_t *m) {
  return queue_promise_work(env, m->is_umount ? "layerstore.umount" : "layerstore.mount",
                            mount_execute, mount_complete, m, &m->work, &m->deferred);
}

static napi_value js_mount(napi_env env, napi_callback_info info) {
  napi_value argv[6];
  napi_valuetype cwd_type;
  size_t argc = 6, data_len;
  int64_t flags;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 5)
    return throw_type(env, "mount(source, target, fstype, flags, data, cwd?)");
  mount_t *m = calloc(1, sizeof *m);
  if (!m) return throw_errno(env, ENOMEM, "mount", NULL);
  if (argc < 6 || napi_typeof(env, argv[5], &cwd_type) != napi_ok) cwd_type = napi_undefined;
  m->has_cwd = cwd_type != napi_undefined && cwd_type != napi_null;
  if (!get_path(env, argv[0], m->source, sizeof m->source) ||
      !get_path(env, argv[1], m->target, sizeof m->target) ||
      !get_path(env, argv[2], m->fstype, sizeof m->fstype) || !get_i64(env, argv[3], &flags) ||
      napi_get_value_string_utf8(env, argv[4], NULL, 0, &data_len) != napi_ok ||
      (m->has_cwd && !get_path(env, argv[5], m->cwd, sizeof m->cwd))) {
    free(m);
    return throw_type(env, "mount(source, target, fstype, flags, data, cwd?)");
  }
  m->data = malloc(data_len + 1);
  if (!m->data) {
    free(m);
    return throw_errno(env, ENOMEM, "mount", NULL);
  }
  napi_get_value_string_utf8(env, argv[4], m->data, data_len + 1, &data_len);
  m->flags = (unsigned long)flags;
  return queue_mount(env, m);
}

/* umount2(target, flags): Promise<void>, on a thread of libuv's pool. */
static napi_value js_umount2(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int32_t flags;
  if (!get_args(env, info, 2, argv)) return throw_type(env, "umount2(target, flags)");
  mount_t *m = calloc(1, sizeof *m);
  if (!m) return throw_errno(env, ENOMEM, "umount2", NULL);
  if (!get_path(env, argv[0], m->target, sizeof m->target) ||
      napi_get_value_int32(env, argv[1], &flags) != napi_ok) {
    free(m);
    return throw_type(env, "umount2(target, flags)");
  }
  m->is_umount = true;
  m->umount_flags = flags;
  return queue_mount(env, m);
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
      {"createFiles", NULL, js_create_files, NULL, NULL, NULL, napi_enumerable, NULL},
      {"flock", NULL, js_flock, NULL, NULL, NULL, napi_enumerable, NULL},
      {"tryFlock", NULL, js_try_flock, NULL, NULL, NULL, napi_enumerable, NULL},
      {"funlock", NULL, js_funlock, NULL, NULL, NULL, napi_enumerable, NULL},
      {"mount", NULL, js_mount, NULL, NULL, NULL, napi_enumerable, NULL},
      {"umount2", NULL, js_umount2, NULL, NULL, NULL, napi_enumerable, NULL},
      {"hasDirentTypes", NULL, js_has_dirent_types, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  define_checksum_bindings(env, exports);
  define_inflate_bindings(env, exports);
  define_dir_size_bindings(env, exports);
  define_read_files_bindings(env, exports);
  return exports;
}

NAPI_MODULE_INIT() { return init(env, exports); }
