/* New small files created in batches on the thread pool (see create-files.c). */
#ifndef LAYERSTORE_CREATE_FILES_H
#define LAYERSTORE_CREATE_FILES_H
#include <node_api.h>

/* Adds createFiles to `exports`. */
void define_create_files_bindings(napi_env env, napi_value exports);

#endif
