/*
 * createFiles(paths: Buffer[], chunks: Uint8Array[][], meta: Float64Array): Promise<(Error |
 * undefined)[]>. Creates new files on a thread of libuv's pool, a batch per job: an N-API job
 * and its promise cost ~15 µs of main-thread time, far more than describing a small file.
 * Each file: open(O_CREAT|O_EXCL|O_NOFOLLOW: never an existing name, never through a symlink),
 * the chunks written, fchown (uid < 0: left as is), fchmod (when asked), futimens, close.
 * `meta` holds 9 numbers per file: mode, uid, gid, atimeSec, atimeNsec, mtimeSec, mtimeNsec,
 * chmod (0/1), unused. Files are created in order; each gets its own result.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "create-files.h"
#include "napi-util.h"

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

void define_create_files_bindings(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"createFiles", NULL, js_create_files, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}
