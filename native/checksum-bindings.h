/* The checksums' bindings (see checksum-bindings.c). */
#ifndef LAYERSTORE_CHECKSUM_BINDINGS_H
#define LAYERSTORE_CHECKSUM_BINDINGS_H
#include <node_api.h>

/* Adds crc64Update and the sha256Thread* functions to `exports`. */
void define_checksum_bindings(napi_env env, napi_value exports);

#endif
