/* Small files read in batches on the thread pool (see read-files.c). */
#ifndef LAYERSTORE_READ_FILES_H
#define LAYERSTORE_READ_FILES_H
#include <node_api.h>

/* Adds readFiles to `exports`. */
void define_read_files_bindings(napi_env env, napi_value exports);

#endif
