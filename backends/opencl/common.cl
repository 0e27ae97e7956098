/* libpe opencl backend: definitions shared by every kernel (OpenCL C 1.2).
 *
 * The host compiles one program per workload with the shape and the tile
 * sizes as -D constants (backends/opencl/opencl.c, pe_ocl_build_options):
 *
 *   D        head_dim                   R, HALF  rotary dim, R/2 (ROTARY)
 *   KIND     pe_encoding_kind (1..4)    PAIRING  1 neox, 2 interleaved
 *   B, HQ, HKV, G = HQ/HKV              SQ, SKV  query rows, key rows
 *   CAUSAL   0/1                        WINDOW   0: none
 *   QPOS0    SKV - SQ: table row of query 0 (NUMERICS.md: pq(i) = offset +
 *            Skv - Sq + i, pk(n) = offset + n; only differences matter, so
 *            positions below are table rows, offset dropped)
 *   HPT, QT, NQT   row tiling: a tile holds HPT query heads of one GQA
 *            group times QT query rows each; NQT tiles per head group
 *   BQ, BK   rows per tile (>= HPT*QT), keys per tile
 *   NSPLIT   key-range splits (decode split-KV); > 1 writes partials
 *
 * Tensors are row-major float32: q[B][HQ][SQ][D], k, v [B][HKV][SKV][D];
 * tables tc/ts [SKV][HALF] (a*cos, a*sin), ta [SKV][D], slopes [HQ].
 * Accumulation is float32 throughout (NUMERICS.md "Attention").
 */
#define PE_KIND_NONE 1
#define PE_KIND_ROTARY 2
#define PE_KIND_ADDITIVE 3
#define PE_KIND_BIAS 4
#define PE_PAIRING_NEOX 1
#define PE_PAIRING_INTERLEAVED 2

/* Software prefetch of one cache line for the cpu kernels: clang's
 * __builtin_prefetch (PoCL compiles OpenCL C with clang; its prefetch()
 * builtin compiles to nothing).  The host defines PE_PF=1 only for PoCL's
 * CPU devices, where it was measured: other OpenCL compilers may reject
 * the builtin on a __global pointer (NVIDIA's does: "changes address
 * space of pointer", seen on an H100).  build_options -DPE_PF=0 or 1
 * overrides it. */
#ifndef PE_PF
#define PE_PF 0
#endif
#if PE_PF
#define PE_PREFETCH(p) __builtin_prefetch((p), 0, 2)
#else
#define PE_PREFETCH(p) ((void)(p))
#endif

#define PE_CAT_(a, b) a##b
#define PE_CAT(a, b) PE_CAT_(a, b)

#define PE_LOG2E 1.44269504088896340736f

/* Encode one D-long row `src` (global) at table row `p` and hand each
 * value to STORE(d, value).  Rotary: the pair (x, y) becomes
 * (x c - y s, y c + x s) with c, s already scaled by the attention factor;
 * dims R..D-1 pass through.  Additive: x + pe(p).  The loops run over
 * contiguous indices so that the compiler can vectorize them. */
#if KIND == PE_KIND_ROTARY && PAIRING == PE_PAIRING_NEOX
#define PE_ENCODE_ROW(src, p, STORE)                                         \
  do {                                                                       \
    const __global float *pe_c_ = tc + (size_t)(p) * HALF;                   \
    const __global float *pe_s_ = ts + (size_t)(p) * HALF;                   \
    for (int pe_j = 0; pe_j < HALF; ++pe_j) {                                \
      const float pe_x = (src)[pe_j], pe_y = (src)[pe_j + HALF];             \
      STORE(pe_j, pe_x * pe_c_[pe_j] - pe_y * pe_s_[pe_j]);                  \
      STORE(pe_j + HALF, pe_y * pe_c_[pe_j] + pe_x * pe_s_[pe_j]);           \
    }                                                                        \
    for (int pe_d = R; pe_d < D; ++pe_d) STORE(pe_d, (src)[pe_d]);           \
  } while (0)
#elif KIND == PE_KIND_ROTARY
#define PE_ENCODE_ROW(src, p, STORE)                                         \
  do {                                                                       \
    const __global float *pe_c_ = tc + (size_t)(p) * HALF;                   \
    const __global float *pe_s_ = ts + (size_t)(p) * HALF;                   \
    for (int pe_j = 0; pe_j < HALF; ++pe_j) {                                \
      const float pe_x = (src)[2 * pe_j], pe_y = (src)[2 * pe_j + 1];        \
      STORE(2 * pe_j, pe_x * pe_c_[pe_j] - pe_y * pe_s_[pe_j]);              \
      STORE(2 * pe_j + 1, pe_y * pe_c_[pe_j] + pe_x * pe_s_[pe_j]);          \
    }                                                                        \
    for (int pe_d = R; pe_d < D; ++pe_d) STORE(pe_d, (src)[pe_d]);           \
  } while (0)
#elif KIND == PE_KIND_ADDITIVE
#define PE_ENCODE_ROW(src, p, STORE)                                         \
  do {                                                                       \
    const __global float *pe_a_ = ta + (size_t)(p) * D;                      \
    for (int pe_d = 0; pe_d < D; ++pe_d)                                     \
      STORE(pe_d, (src)[pe_d] + pe_a_[pe_d]);                                \
  } while (0)
#else
#define PE_ENCODE_ROW(src, p, STORE)                                         \
  do {                                                                       \
    for (int pe_d = 0; pe_d < D; ++pe_d) STORE(pe_d, (src)[pe_d]);           \
  } while (0)
#endif

/* Prefetch a D-long row `src` and the table rows PE_ENCODE_ROW reads for
 * it at table row `p`. */
static inline void pe_prefetch_enc_row(const __global float *src, int p,
                                const __global float *tc,
                                const __global float *ts,
                                const __global float *ta) {
#if PE_PF
  for (int d = 0; d < D; d += 16) PE_PREFETCH(src + d);
#if KIND == PE_KIND_ROTARY
  for (int j = 0; j < HALF; j += 16) {
    PE_PREFETCH(tc + (size_t)p * HALF + j);
    PE_PREFETCH(ts + (size_t)p * HALF + j);
  }
#elif KIND == PE_KIND_ADDITIVE
  for (int d = 0; d < D; d += 16) PE_PREFETCH(ta + (size_t)p * D + d);
#endif
#endif
  (void)src;
  (void)p;
  (void)tc;
  (void)ts;
  (void)ta;
}

/* Element d of the encoded row (one work-item per element). */
static inline float pe_encode_elem(const __global float *src, int p, int d,
                            const __global float *tc,
                            const __global float *ts,
                            const __global float *ta) {
#if KIND == PE_KIND_ROTARY
  if (d < R) {
#if PAIRING == PE_PAIRING_NEOX
    const int j = d < HALF ? d : d - HALF;
    const float x = src[j], y = src[j + HALF];
    const float c = tc[(size_t)p * HALF + j], s = ts[(size_t)p * HALF + j];
    return d < HALF ? x * c - y * s : y * c + x * s;
#else
    const int j = d >> 1;
    const float x = src[2 * j], y = src[2 * j + 1];
    const float c = tc[(size_t)p * HALF + j], s = ts[(size_t)p * HALF + j];
    return (d & 1) ? y * c + x * s : x * c - y * s;
#endif
  }
  return src[d];
#elif KIND == PE_KIND_ADDITIVE
  (void)tc;
  (void)ts;
  return src[d] + ta[(size_t)p * D + d];
#else
  (void)p;
  (void)tc;
  (void)ts;
  (void)ta;
  return src[d];
#endif
}

/* ---- row tiling shared by the attention kernels -------------------------
 * Work-group g -> (batch b, head group hg, query tile qt, split sp).
 * Without splits: query tiles heaviest first (causal: later rows see more
 * keys), then heads, then batch ("head-major, heaviest first").  With
 * splits (decode): split slowest, so the groups that run together share
 * one key range and read its rows of the position tables once. */
#define PE_NHG (HQ / HPT)
#define PE_NGROUPS (B * PE_NHG * NQT * NSPLIT)

typedef struct pe_tile {
  int b, hg, qt, sp;
  int hk;         /* kv head of the group */
  int pmin, pmax; /* table rows of the first and last valid query */
  int kt0, kt1;   /* key tiles [kt0, kt1) of this split */
} pe_tile;

static inline pe_tile pe_tile_of(int g) {
  pe_tile t;
  t.sp = g / (B * PE_NHG * NQT);
  g -= t.sp * (B * PE_NHG * NQT);
  t.qt = NQT - 1 - g % NQT;
  g /= NQT;
  t.hg = g % PE_NHG;
  t.b = g / PE_NHG;
  t.hk = (t.hg * HPT) / G;
  /* valid query rows of the tile: [i0, i1) of every head in it */
  const int i0 = t.qt * QT;
  const int i1 = min(SQ, i0 + QT);
  t.pmin = QPOS0 + i0;
  t.pmax = QPOS0 + i1 - 1;
  /* visible key range, NUMERICS.md: (!causal || pk <= pq) &&
   * (window == 0 || |pq - pk| < window) */
  int kbeg = 0, kend = SKV;
#if CAUSAL
  kend = min(kend, t.pmax + 1);
#endif
#if WINDOW > 0
  kbeg = max(0, t.pmin - (WINDOW - 1));
#if !CAUSAL
  kend = min(kend, t.pmax + WINDOW);
#endif
#endif
  const int a = kbeg / BK;
  const int e = kend > kbeg ? (kend + BK - 1) / BK : a;
  const int n = e - a;
  /* n tiles in NSPLIT contiguous runs, the first n % NSPLIT one longer.
   * 32-bit only: the former ((long)n * sp) / NSPLIT gave every row +inf
   * scores on an H100 (NVIDIA 580 driver; 5 splits of 10 tiles, rotary
   * schemes) and right results with -cl-opt-disable. */
  const int per = n / NSPLIT, extra = n % NSPLIT;
  t.kt0 = a + t.sp * per + min(t.sp, extra);
  t.kt1 = t.kt0 + per + (t.sp < extra ? 1 : 0);
  return t;
}

/* Row r of a tile: head h and query row i; 0 when r is padding. */
static inline int pe_row_of(const pe_tile *t, int r, int *h, int *i) {
  const int hl = r / QT;
  *i = t->qt * QT + r % QT;
  *h = t->hg * HPT + hl;
  return hl < HPT && *i < SQ;
}

/* True when every (row, key) pair of key tile kt is visible for every
 * valid row of the tile (and the key tile is complete): no mask needed. */
static inline int pe_tile_full(const pe_tile *t, int kt) {
  const int k0 = kt * BK, klast = k0 + BK - 1;
  int full = klast < SKV;
#if CAUSAL
  full = full && klast <= t->pmin;
#endif
#if WINDOW > 0
  full = full && t->pmax - k0 < WINDOW && klast - t->pmin < WINDOW;
#endif
  return full;
}

/* Merge split partials: part[NSPLIT][rows][D] unnormalised sums, ml
 * [NSPLIT][rows][2] = (running max m in log2 units, denominator l).
 * O = sum_s 2^(m_s - M) O_s / sum_s 2^(m_s - M) l_s; no visible key -> 0. */
__kernel void pe_combine(__global const float *restrict part,
                         __global const float *restrict ml,
                         __global float *restrict out) {
  const int nrows = B * HQ * SQ;
  const int row = get_global_id(0);
  if (row >= nrows) return;
  float m = -INFINITY;
  for (int s = 0; s < NSPLIT; ++s)
    m = fmax(m, ml[((size_t)s * nrows + row) * 2]);
  const float msafe = isinf(m) ? 0.0f : m;
  float l = 0.0f;
  for (int s = 0; s < NSPLIT; ++s) {
    const size_t o = ((size_t)s * nrows + row) * 2;
    l += exp2(ml[o] - msafe) * ml[o + 1];
  }
  const float inv = l > 0.0f ? 1.0f / l : 0.0f;
  for (int d = 0; d < D; ++d) {
    float acc = 0.0f;
    for (int s = 0; s < NSPLIT; ++s) {
      const float w = exp2(ml[((size_t)s * nrows + row) * 2] - msafe);
      acc += w * part[((size_t)s * nrows + row) * D + d];
    }
    out[(size_t)row * D + d] = acc * inv;
  }
}
