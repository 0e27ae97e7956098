/* Deterministic inputs: Philox-4x32-10 (Salmon et al., "Parallel random
 * numbers: as easy as 1, 2, 3", SC 2011), a counter-based generator: the
 * value at index i depends only on (seed, stream, i), so every machine
 * and every thread count produce the same tensors. */
#include "internal.h"

#include <math.h>

static void philox_round(uint32_t c[4], const uint32_t k[2]) {
  uint64_t p0 = (uint64_t)0xD2511F53u * c[0];
  uint64_t p1 = (uint64_t)0xCD9E8D57u * c[2];
  uint32_t hi0 = (uint32_t)(p0 >> 32), lo0 = (uint32_t)p0;
  uint32_t hi1 = (uint32_t)(p1 >> 32), lo1 = (uint32_t)p1;
  c[0] = hi1 ^ c[1] ^ k[0];
  c[1] = lo1;
  c[2] = hi0 ^ c[3] ^ k[1];
  c[3] = lo0;
}

static void philox4x32_10(uint64_t counter, uint64_t stream, uint64_t seed, uint32_t out[4]) {
  uint32_t c[4] = {(uint32_t)counter, (uint32_t)(counter >> 32), (uint32_t)stream,
                   (uint32_t)(stream >> 32)};
  uint32_t k[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
  for (int r = 0; r < 10; r++) {
    philox_round(c, k);
    k[0] += 0x9E3779B9u;
    k[1] += 0xBB67AE85u;
  }
  for (int i = 0; i < 4; i++) out[i] = c[i];
}

/* 32 random bits -> a double in (0, 1), never 0 (safe for log). */
static double unit_open(uint32_t x) { return ((double)x + 0.5) * (1.0 / 4294967296.0); }

/* Box-Muller in double precision, rounded once to float.  Each counter
 * value yields four uniforms -> two pairs -> four normals. */
void pe_random_normal(uint64_t seed, uint64_t stream, float *out, size_t n) {
  for (size_t i = 0; i < n; i += 4) {
    uint32_t r[4];
    philox4x32_10(i / 4, stream, seed, r);
    double z[4];
    for (int p = 0; p < 2; p++) {
      double rad = sqrt(-2.0 * log(unit_open(r[2 * p])));
      double ang = 6.283185307179586 * unit_open(r[2 * p + 1]);
      z[2 * p] = rad * cos(ang);
      z[2 * p + 1] = rad * sin(ang);
    }
    for (size_t j = 0; j < 4 && i + j < n; j++) out[i + j] = (float)z[j];
  }
}

/* Uniform in [-1, 1): exact in float (24 random bits), bit-identical
 * everywhere. */
void pe__random_uniform(uint64_t seed, uint64_t stream, float *out, size_t n) {
  for (size_t i = 0; i < n; i += 4) {
    uint32_t r[4];
    philox4x32_10(i / 4, stream, seed, r);
    for (size_t j = 0; j < 4 && i + j < n; j++)
      out[i + j] = (float)((int32_t)(r[j] >> 8) - (1 << 23)) * (1.0f / (float)(1 << 23));
  }
}
