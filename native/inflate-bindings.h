/* The gunzip thread's bindings (inflate-bindings.c). */
#ifndef LAYERSTORE_INFLATE_BINDINGS_H
#define LAYERSTORE_INFLATE_BINDINGS_H
#include <node_api.h>

void define_inflate_bindings(napi_env env, napi_value exports);

#endif
