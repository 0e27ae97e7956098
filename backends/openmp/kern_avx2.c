/* openmp backend: the AVX2 + FMA path (8 floats a vector, 4x24
 * micro-kernel: 12 accumulators, 3 loads and 4 broadcasts per 12 FMAs).
 * Compiled with a per-file target so one build holds every path; the
 * driver calls it only when __builtin_cpu_supports says the CPU has
 * AVX2 and FMA.  kern_tmpl.h has the kernels. */
#include <float.h>
#include <immintrin.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "omp_internal.h"

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma"))),          \
                             apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#endif

typedef __m256 VF;
#define W 8
/* 4 x 24 rather than 6 x 16 (both 12 accumulators): 7 loads per 12 FMAs
 * instead of 8, and whole tiles for D = 64/96/128 and 64-key blocks (6 x 16
 * left 5- and 4-row tail tiles); measured 7-15% faster on long causal
 * prefill, interleaved runs on the same machine. */
#ifndef OMP_AVX2_MR
#define OMP_AVX2_MR 4
#define OMP_AVX2_NV 3
#endif
#define MR OMP_AVX2_MR
#define NV OMP_AVX2_NV
#define VZERO() _mm256_setzero_ps()
#define VSET1(x) _mm256_set1_ps(x)
#define VLOAD(p) _mm256_loadu_ps(p)
#define VSTORE(p, v) _mm256_storeu_ps((p), (v))
#define VBCAST(p) _mm256_broadcast_ss(p)
#define VFMA(a, b, c) _mm256_fmadd_ps((a), (b), (c))
#define VMUL(a, b) _mm256_mul_ps((a), (b))
#define VADD(a, b) _mm256_add_ps((a), (b))
#define VSUB(a, b) _mm256_sub_ps((a), (b))
#define VMAX(a, b) _mm256_max_ps((a), (b))
#define VEXP2(x) vexp2(x)
#define VSTREAM(p, v) _mm256_stream_ps((p), (v))
#define VSFENCE() _mm_sfence()
#define VHSUM(v) vhsum(v)
#define VHMAX(v) vhmax(v)

/* 2^x: round to nearest n, 2^f on [-1/2, 1/2] by the Cephes exp2f
 * polynomial (relative error ~2e-7), times 2^n built in the exponent
 * field.  x is clamped to [-127, 127]; n = -127 gives an exponent field of
 * 0, i.e. exactly 0 (so -inf -> 0, and no denormals). */
static inline __m256 vexp2(__m256 x) {
  x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-127.0f)),
                    _mm256_set1_ps(127.0f));
  const __m256 n =
      _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m256 f = _mm256_sub_ps(x, n);
  __m256 y = _mm256_set1_ps(1.535336188319500e-4f);
  y = _mm256_fmadd_ps(y, f, _mm256_set1_ps(1.339887440266574e-3f));
  y = _mm256_fmadd_ps(y, f, _mm256_set1_ps(9.618437357674640e-3f));
  y = _mm256_fmadd_ps(y, f, _mm256_set1_ps(5.550332471162809e-2f));
  y = _mm256_fmadd_ps(y, f, _mm256_set1_ps(2.402264791363012e-1f));
  y = _mm256_fmadd_ps(y, f, _mm256_set1_ps(6.931472028550421e-1f));
  y = _mm256_fmadd_ps(y, f, _mm256_set1_ps(1.0f));
  const __m256i e = _mm256_slli_epi32(
      _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(y, _mm256_castsi256_ps(e));
}

static inline float vhsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v),
                        _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

/* The largest lane. */
static inline float vhmax(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_shuffle_ps(m, m, 1));
  return _mm_cvtss_f32(m);
}

#include "kern_x86.h" /* VTRANSPOSE: 8 x 8 blocks */

/* out[0..3] = the lane sums of a, b, c, e: three horizontal adds and one
 * 128-bit add for the four. */
static inline void vhsum4(__m256 a, __m256 b, __m256 c, __m256 e,
                          float *out) {
  const __m256 y = _mm256_hadd_ps(_mm256_hadd_ps(a, b), _mm256_hadd_ps(c, e));
  _mm_storeu_ps(out, _mm_add_ps(_mm256_castps256_ps128(y),
                                _mm256_extractf128_ps(y, 1)));
}
#define VHSUM4(a, b, c, e, out) vhsum4(a, b, c, e, out)

/* Interleaved rotary pairs (2j, 2j + 1), four pairs a vector: y = (x c -
 * x' s, x' c + x s) with x' the pair's other element, as one fmaddsub on
 * the pair-swapped x and the cos/sin lanes duplicated (the scalar loop
 * ran encode 1.75x slower than the neox pairing). */
static inline __m256 vrot_pairs(__m256 x, const float *c, const float *s) {
  const __m128 c4 = _mm_loadu_ps(c), s4 = _mm_loadu_ps(s);
  const __m256 cd = _mm256_set_m128(_mm_unpackhi_ps(c4, c4),
                                    _mm_unpacklo_ps(c4, c4));
  const __m256 sd = _mm256_set_m128(_mm_unpackhi_ps(s4, s4),
                                    _mm_unpacklo_ps(s4, s4));
  const __m256 xs = _mm256_permute_ps(x, 0xB1); /* (x1 x0 x3 x2 ...) */
  return _mm256_fmaddsub_ps(x, cd, _mm256_mul_ps(xs, sd));
}
#define VROT_PAIRS(x, c, s) vrot_pairs(x, c, s)

#define KERNELS_NAME omp_kernels_avx2
#define KERNELS_STR "avx2"
#define KERNELS_DETAIL "avx2-fma 4x24 micro-kernel"

#include "kern_tmpl.h"

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
