/*
 * mount(source, target, fstype, flags, data, cwd?) and umount2(target, flags): Promise<void>,
 * each on a thread of libuv's pool, so the main thread goes on while the kernel works.
 * With `cwd`, the mount(2) call runs in a thread of its own that first unshares its
 * filesystem context (CLONE_FS) and changes into `cwd`: relative paths in `data` (overlayfs'
 * lowerdir=l/ABC:...) then resolve there, while the process's working directory, which
 * every other thread shares, never moves. Needed when absolute paths do not fit in a page.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <unistd.h>

#include "mount.h"
#include "napi-util.h"

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
  settle_void(env, m->deferred, status, m->err, m->syscall ? m->syscall : "mount", m->target);
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

void define_mount_bindings(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"mount", NULL, js_mount, NULL, NULL, NULL, napi_enumerable, NULL},
      {"umount2", NULL, js_umount2, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}
