/* CRC-64/ISO of tar-split (see crc64.c). */
#ifndef LAYERSTORE_CRC64_H
#define LAYERSTORE_CRC64_H
#include <stddef.h>
#include <stdint.h>

/* Builds the tables and picks the fastest path for this CPU; call once before crc64_update. */
void crc64_init(void);

/* The register after `n` more bytes; the register is kept inverted, as Go keeps it. */
uint64_t crc64_update(uint64_t crc, const uint8_t *p, size_t n);

#endif
