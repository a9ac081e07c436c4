/*
 * readFiles(paths: Buffer[], dest: Uint8Array, layout: Float64Array): Promise<Float64Array>.
 * Reads small files into one buffer on a thread of libuv's pool, a batch per job: `layout`
 * holds (offset, size) per file, and each file's bytes go to dest[offset, offset + size). One
 * result per file: the bytes read (fewer than size: the file is shorter), size + 1 when it
 * is larger than size, or -errno when it cannot be opened (O_NOFOLLOW: a symlink is ELOOP).
 * Layer export reads tens of thousands of small files: an open, read and close from
 * JavaScript cost the main thread ~12 µs a file.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "napi-util.h"
#include "read-files.h"

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  napi_ref keep;
  uint32_t n;
  char **paths;
  unsigned char *dest;
  double *layout; /* a copy */
  double *results;
} read_batch_t;

static double read_one(const char *path, unsigned char *to, size_t size) {
  int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return -(double)errno;
  struct stat st;
  double result;
  if (fstat(fd, &st) == 0 && st.st_size > (off_t)size) {
    result = (double)size + 1;
  } else {
    size_t got = 0;
    while (got < size) {
      ssize_t r = read(fd, to + got, size - got);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) break; /* an error or EOF: what was read fails the checksum */
      got += (size_t)r;
    }
    result = (double)got;
  }
  close(fd);
  return result;
}

static void read_execute(napi_env env, void *data) {
  (void)env;
  read_batch_t *b = data;
  for (uint32_t i = 0; i < b->n; i++)
    b->results[i] = read_one(b->paths[i], b->dest + (size_t)b->layout[2 * i],
                             (size_t)b->layout[2 * i + 1]);
}

static void batch_free(read_batch_t *b) {
  for (uint32_t i = 0; i < b->n; i++) free(b->paths[i]);
  free(b->paths);
  free(b->layout);
  free(b);
}

static void read_complete(napi_env env, napi_status status, void *data) {
  read_batch_t *b = data;
  napi_value ab, results;
  void *out;
  if (status != napi_ok) {
    napi_reject_deferred(env, b->deferred, make_errno_error(env, ECANCELED, "readFiles", NULL));
  } else {
    napi_create_arraybuffer(env, (size_t)b->n * sizeof(double), &out, &ab);
    if (b->n > 0) memcpy(out, b->results, (size_t)b->n * sizeof(double));
    napi_create_typedarray(env, napi_float64_array, b->n, ab, 0, &results);
    napi_resolve_deferred(env, b->deferred, results);
  }
  napi_delete_reference(env, b->keep);
  napi_delete_async_work(env, b->work);
  free(b->results);
  batch_free(b);
}

static napi_value js_read_files(napi_env env, napi_callback_info info) {
  napi_value argv[3], keep;
  bool is_array = false, is_ta = false;
  uint32_t n = 0;
  void *dest, *layout;
  size_t dest_len, layout_len, off;
  napi_typedarray_type type;
  napi_value ab;
  if (!get_args(env, info, 3, argv) || napi_is_array(env, argv[0], &is_array) != napi_ok ||
      !is_array || !get_bytes(env, argv[1], &dest, &dest_len) ||
      napi_is_typedarray(env, argv[2], &is_ta) != napi_ok || !is_ta)
    return throw_type(env, "readFiles(paths: Buffer[], dest: Uint8Array, layout: Float64Array)");
  napi_get_array_length(env, argv[0], &n);
  napi_get_typedarray_info(env, argv[2], &type, &layout_len, &layout, &ab, &off);
  if (type != napi_float64_array || layout_len < 2 * (size_t)n)
    return throw_type(env, "readFiles: layout must hold (offset, size) per path");
  const double *l = layout;
  for (uint32_t i = 0; i < n; i++) {
    double o = l[2 * i], s = l[2 * i + 1];
    if (!(o >= 0 && s >= 0 && o + s <= (double)dest_len))
      return throw_type(env, "readFiles: a file's place is outside dest");
  }
  read_batch_t *b = calloc(1, sizeof *b);
  if (!b) return throw_errno(env, ENOMEM, "readFiles", NULL);
  b->paths = calloc(n > 0 ? n : 1, sizeof *b->paths);
  b->results = malloc((n > 0 ? n : 1) * sizeof(double));
  b->layout = malloc((n > 0 ? 2 * n : 1) * sizeof(double));
  if (!b->paths || !b->results || !b->layout) {
    free(b->results);
    free(b->layout);
    free(b->paths);
    free(b);
    return throw_errno(env, ENOMEM, "readFiles", NULL);
  }
  for (uint32_t i = 0; i < n; i++) {
    napi_value p;
    void *data;
    size_t len;
    napi_get_element(env, argv[0], i, &p);
    if (!get_bytes(env, p, &data, &len) || memchr(data, 0, len) != NULL ||
        !(b->paths[i] = malloc(len + 1))) {
      b->n = i;
      free(b->results);
      batch_free(b);
      return throw_type(env, "readFiles: a path must be a Buffer without NUL");
    }
    memcpy(b->paths[i], data, len);
    b->paths[i][len] = 0;
  }
  b->n = n;
  b->dest = dest;
  if (n > 0) memcpy(b->layout, l, 2 * (size_t)n * sizeof(double));
  /* dest stays alive (and unmoved: off-heap) until completion. */
  napi_create_array_with_length(env, 1, &keep);
  napi_set_element(env, keep, 0, argv[1]);
  napi_create_reference(env, keep, 1, &b->keep);
  return queue_promise_work(env, "layerstore.readFiles", read_execute, read_complete, b, &b->work,
                            &b->deferred);
}

void define_read_files_bindings(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"readFiles", NULL, js_read_files, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}
