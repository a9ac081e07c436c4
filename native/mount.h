/* mount and umount2 on the thread pool (see mount.c). */
#ifndef LAYERSTORE_MOUNT_H
#define LAYERSTORE_MOUNT_H
#include <node_api.h>

/* Adds mount and umount2 to `exports`. */
void define_mount_bindings(napi_env env, napi_value exports);

#endif
