/*
 * CRC-64/ISO (Go's crc64.ISO, the checksum tar-split records for every file): reflected
 * polynomial x^64 + x^4 + x^3 + x + 1, register kept inverted between calls as Go does.
 *
 * On x86-64 with PCLMULQDQ the data is folded 128 bytes at a time with carry-less multiplies
 * (eight 128-bit lanes, each multiplied forward by x^1024 mod P), then folded to one lane and
 * finished with the table, so the multiply constants are the only ones not derived from the
 * table. Elsewhere, and for short inputs, slicing-by-8 tables. The constants are computed at
 * load time from the polynomial, not written out.
 *
 * Reflected arithmetic: a 64-bit lane loaded little-endian holds a polynomial with its
 * highest power in bit 0. The carry-less product of two such lanes is their product times x
 * (bit k of the 128-bit result is the coefficient of x^(126-k)), so folding a lane forward by
 * d bits uses x^(d-1) mod P, and by d+64 bits x^(d+63) mod P.
 */
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "crc64.h"

#define POLY_NORMAL 0x1BULL /* x^4 + x^3 + x + 1; the x^64 term is implicit */
#define POLY_REFLECTED 0xD800000000000000ULL

static uint64_t table[8][256];

static uint64_t reflect64(uint64_t v) {
  uint64_t r = 0;
  for (int i = 0; i < 64; i++) r |= ((v >> i) & 1) << (63 - i);
  return r;
}

/* x^n mod P, reflected. */
static uint64_t xpow_mod(unsigned n) {
  uint64_t v = 1;
  for (unsigned i = 0; i < n; i++) v = (v << 1) ^ ((v >> 63) ? POLY_NORMAL : 0);
  return reflect64(v);
}

static uint64_t update_table(uint64_t crc, const uint8_t *p, size_t n) {
  while (n >= 8) {
    uint64_t w;
    memcpy(&w, p, 8);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    w = __builtin_bswap64(w);
#endif
    w ^= crc;
    crc = table[7][w & 0xff] ^ table[6][(w >> 8) & 0xff] ^ table[5][(w >> 16) & 0xff] ^
          table[4][(w >> 24) & 0xff] ^ table[3][(w >> 32) & 0xff] ^
          table[2][(w >> 40) & 0xff] ^ table[1][(w >> 48) & 0xff] ^ table[0][w >> 56];
    p += 8;
    n -= 8;
  }
  while (n--) crc = table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
  return crc;
}

#if defined(__x86_64__)
#include <immintrin.h>

static __m128i fold_1024; /* lanes: x^(1024+63), x^(1024-1) mod P */
static __m128i fold_128;  /* lanes: x^(128+63), x^(128-1) mod P */
static int have_clmul;

__attribute__((target("pclmul,sse2"))) static inline __m128i fold(__m128i x, __m128i k,
                                                                 __m128i next) {
  __m128i a = _mm_clmulepi64_si128(x, k, 0x00);
  __m128i b = _mm_clmulepi64_si128(x, k, 0x11);
  return _mm_xor_si128(_mm_xor_si128(a, b), next);
}

/* n >= 128. */
__attribute__((target("pclmul,sse2"))) static uint64_t update_clmul(uint64_t crc,
                                                                    const uint8_t *p,
                                                                    size_t n) {
  __m128i x[8];
  for (int i = 0; i < 8; i++) x[i] = _mm_loadu_si128((const __m128i *)(p + 16 * i));
  /* The register joins the first 64 bits of the message. */
  x[0] = _mm_xor_si128(x[0], _mm_cvtsi64_si128((long long)crc));
  p += 128;
  n -= 128;
  while (n >= 128) {
    for (int i = 0; i < 8; i++) {
      x[i] = fold(x[i], fold_1024, _mm_loadu_si128((const __m128i *)(p + 16 * i)));
    }
    p += 128;
    n -= 128;
  }
  __m128i acc = x[0];
  for (int i = 1; i < 8; i++) acc = fold(acc, fold_128, x[i]);
  while (n >= 16) {
    acc = fold(acc, fold_128, _mm_loadu_si128((const __m128i *)p));
    p += 16;
    n -= 16;
  }
  /* acc is congruent to the message so far: its CRC from a zero register carries on. */
  uint8_t rest[16];
  _mm_storeu_si128((__m128i *)rest, acc);
  return update_table(update_table(0, rest, 16), p, n);
}
#endif

static void build(void) {
  for (unsigned i = 0; i < 256; i++) {
    uint64_t c = i;
    for (int b = 0; b < 8; b++) c = (c >> 1) ^ ((c & 1) ? POLY_REFLECTED : 0);
    table[0][i] = c;
  }
  for (unsigned i = 0; i < 256; i++) {
    for (int k = 1; k < 8; k++) {
      uint64_t prev = table[k - 1][i];
      table[k][i] = table[0][prev & 0xff] ^ (prev >> 8);
    }
  }
#if defined(__x86_64__)
  __builtin_cpu_init();
  have_clmul = __builtin_cpu_supports("pclmul") && __builtin_cpu_supports("sse2");
  if (have_clmul) {
    fold_1024 = _mm_set_epi64x((long long)xpow_mod(1024 - 1), (long long)xpow_mod(1024 + 63));
    fold_128 = _mm_set_epi64x((long long)xpow_mod(128 - 1), (long long)xpow_mod(128 + 63));
  }
#endif
}

/* Module initialisation may run once per worker thread; the tables are built once. */
void crc64_init(void) {
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, build);
}

uint64_t crc64_update(uint64_t crc, const uint8_t *p, size_t n) {
#if defined(__x86_64__)
  if (have_clmul && n >= 256) return update_clmul(crc, p, n);
#endif
  return update_table(crc, p, n);
}
