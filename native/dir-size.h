/* The size of a directory tree as Docker's directory.Size counts it (see dir-size.c). */
#ifndef LAYERSTORE_DIR_SIZE_H
#define LAYERSTORE_DIR_SIZE_H
#include <node_api.h>

/* Adds directorySize to `exports`. */
void define_dir_size_bindings(napi_env env, napi_value exports);

#endif
