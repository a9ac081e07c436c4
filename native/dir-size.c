/*
 * directorySize(path): Promise<number>, on a thread of libuv's pool. The bytes a tree's
 * non-directory nodes take by lstat size (a symlink counts its target's length, an empty file
 * or a whiteout device nothing), an inode with several links once; entries that vanish during
 * the walk are skipped, as Docker's directory.Size skips them. A walk in JavaScript cost the
 * main thread ~7 µs an entry (an lstat call with BigInt stats); here it is one fstatat, and
 * none for what readdir already says is a directory.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dir-size.h"
#include "napi-util.h"

/* (dev, ino) pairs of the multiply-linked inodes counted so far: open addressing. */
typedef struct {
  uint64_t *dev, *ino;
  size_t cap, n;
} inode_set_t;

static size_t slot_of(const inode_set_t *s, uint64_t dev, uint64_t ino) {
  size_t i = (size_t)((ino * 0x9e3779b97f4a7c15ULL) ^ dev) & (s->cap - 1);
  while (s->ino[i] != 0 && (s->ino[i] != ino || s->dev[i] != dev)) i = (i + 1) & (s->cap - 1);
  return i;
}

/* Adds the pair; 1 when added, 0 when present, -1 without memory. Inode 0 is never used. */
static int inode_set_add(inode_set_t *s, uint64_t dev, uint64_t ino) {
  if (2 * (s->n + 1) > s->cap) {
    inode_set_t g = {calloc(s->cap ? 2 * s->cap : 64, 8), calloc(s->cap ? 2 * s->cap : 64, 8),
                     s->cap ? 2 * s->cap : 64, 0};
    if (!g.dev || !g.ino) {
      free(g.dev);
      free(g.ino);
      return -1;
    }
    for (size_t i = 0; i < s->cap; i++) {
      if (s->ino[i] == 0) continue;
      size_t j = slot_of(&g, s->dev[i], s->ino[i]);
      g.dev[j] = s->dev[i];
      g.ino[j] = s->ino[i];
      g.n++;
    }
    free(s->dev);
    free(s->ino);
    *s = g;
  }
  size_t i = slot_of(s, dev, ino);
  if (s->ino[i] != 0) return 0;
  s->dev[i] = dev;
  s->ino[i] = ino;
  s->n++;
  return 1;
}

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  char *root;
  double size;
  int err;
  const char *syscall;
  char *err_path;
} size_job_t;

/* dir + "/" + name, malloc'd. */
static char *child_path(const char *dir, const char *name) {
  size_t a = strlen(dir), b = strlen(name);
  char *p = malloc(a + b + 2);
  if (!p) return NULL;
  memcpy(p, dir, a);
  p[a] = '/';
  memcpy(p + a + 1, name, b + 1);
  return p;
}

static void size_execute(napi_env env, void *data) {
  (void)env;
  size_job_t *j = data;
  inode_set_t seen = {0};
  size_t depth = 0, cap = 16;
  char **stack = malloc(cap * sizeof *stack);
  char *root = strdup(j->root);
  if (!stack || !root) {
    free(root);
    j->err = ENOMEM;
    j->syscall = "malloc";
    goto out;
  }
  stack[depth++] = root;
  uint64_t size = 0;
  while (depth > 0 && j->err == 0) {
    char *dir = stack[--depth];
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = fd < 0 ? NULL : fdopendir(fd);
    if (!d) {
      j->err = errno;
      j->syscall = "scandir";
      j->err_path = dir;
      if (fd >= 0) close(fd);
      break;
    }
    for (;;) {
      errno = 0;
      struct dirent *e = readdir(d);
      if (!e) {
        if (errno != 0) {
          j->err = errno;
          j->syscall = "scandir";
        }
        break;
      }
      const char *n = e->d_name;
      if (n[0] == '.' && (n[1] == 0 || (n[1] == '.' && n[2] == 0))) continue;
      struct stat st;
      bool is_dir = e->d_type == DT_DIR;
      if (!is_dir) {
        if (fstatat(fd, n, &st, AT_SYMLINK_NOFOLLOW) != 0) {
          if (errno == ENOENT) continue; /* vanished meanwhile */
          j->err = errno;
          j->syscall = "lstat";
          break;
        }
        is_dir = S_ISDIR(st.st_mode);
      }
      if (is_dir) {
        char *child = child_path(dir, n);
        char **grown = depth < cap ? stack : realloc(stack, 2 * cap * sizeof *stack);
        if (!child || !grown) {
          free(child);
          j->err = ENOMEM;
          j->syscall = "malloc";
          break;
        }
        if (grown != stack) cap *= 2;
        stack = grown;
        stack[depth++] = child;
        continue;
      }
      if (st.st_size == 0) continue;
      if (st.st_nlink > 1) {
        int added = inode_set_add(&seen, (uint64_t)st.st_dev, (uint64_t)st.st_ino);
        if (added < 0) {
          j->err = ENOMEM;
          j->syscall = "malloc";
          break;
        }
        if (added == 0) continue;
      }
      size += (uint64_t)st.st_size;
    }
    closedir(d);
    if (j->err != 0 && j->err_path == NULL) j->err_path = dir;
    else if (j->err_path != dir) free(dir);
  }
  j->size = (double)size;
  while (depth > 0) free(stack[--depth]);
out:
  free(stack);
  free(seen.dev);
  free(seen.ino);
}

static void size_complete(napi_env env, napi_status status, void *data) {
  size_job_t *j = data;
  napi_value v;
  if (status != napi_ok && j->err == 0) {
    j->err = ECANCELED;
    j->syscall = "directorySize";
  }
  if (j->err == 0) {
    napi_create_double(env, j->size, &v);
    napi_resolve_deferred(env, j->deferred, v);
  } else {
    napi_reject_deferred(env, j->deferred,
                         make_errno_error(env, j->err, j->syscall, j->err_path ? j->err_path : j->root));
  }
  napi_delete_async_work(env, j->work);
  free(j->err_path);
  free(j->root);
  free(j);
}

static napi_value js_directory_size(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  void *data;
  size_t len;
  if (!get_args(env, info, 1, argv) || !get_bytes(env, argv[0], &data, &len) ||
      memchr(data, 0, len) != NULL)
    return throw_type(env, "directorySize(path: Buffer without NUL)");
  size_job_t *j = calloc(1, sizeof *j);
  char *root = malloc(len + 1);
  if (!j || !root) {
    free(j);
    free(root);
    return throw_errno(env, ENOMEM, "directorySize", NULL);
  }
  memcpy(root, data, len);
  root[len] = 0;
  j->root = root;
  return queue_promise_work(env, "layerstore.directorySize", size_execute, size_complete, j,
                            &j->work, &j->deferred);
}

void define_dir_size_bindings(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"directorySize", NULL, js_directory_size, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}
