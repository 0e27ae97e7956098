/* openmp backend: the AVX-512F path (16 floats a vector, 8x32
 * micro-kernel: 16 accumulators, 2 loads and 8 broadcasts per 16 FMAs).
 * Compiled with a per-file target so one build holds every path; the
 * driver calls it only when __builtin_cpu_supports says the CPU has
 * AVX-512F.  kern_tmpl.h has the kernels. */
#include <float.h>
#include <immintrin.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "omp_internal.h"

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f"))),           \
                             apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f")
#endif

typedef __m512 VF;
#define W 16
/* tile shape: OMP_AVX512_MR keys (P V: dims) x OMP_AVX512_NV vectors */
#ifndef OMP_AVX512_MR
#define OMP_AVX512_MR 8
#define OMP_AVX512_NV 2
#endif
#define MR OMP_AVX512_MR
#define NV OMP_AVX512_NV
#define VZERO() _mm512_setzero_ps()
#define VSET1(x) _mm512_set1_ps(x)
#define VLOAD(p) _mm512_loadu_ps(p)
#define VSTORE(p, v) _mm512_storeu_ps((p), (v))
#define VBCAST(p) _mm512_set1_ps(*(p))
#define VFMA(a, b, c) _mm512_fmadd_ps((a), (b), (c))
#define VMUL(a, b) _mm512_mul_ps((a), (b))
#define VADD(a, b) _mm512_add_ps((a), (b))
#define VSUB(a, b) _mm512_sub_ps((a), (b))
#define VMAX(a, b) _mm512_max_ps((a), (b))
#define VEXP2(x) vexp2(x)
#define VSTREAM(p, v) _mm512_stream_ps((p), (v))
#define VSFENCE() _mm_sfence()
#define VHSUM(v) _mm512_reduce_add_ps(v)
#define VHMAX(v) _mm512_reduce_max_ps(v)

/* 2^x for x <= 0 (every use: a score minus its running maximum): the
 * Cephes exp2f polynomial of kern_avx2.c on f = x - n, n = round(x), times
 * 2^n.  Here n is rounded by adding and subtracting 1.5 * 2^23 and 2^n
 * applied by vscalefps, masked to exact 0 where n would be -127 (x <
 * -126.5, -inf included), as the exponent-field construction gives: 12
 * vector instructions instead of 15.  The softmax is bound by the FP
 * ports' throughput on AVX-512 (~7% of prefill's cycles); this measured
 * 1.016-1.030x on causal prefill at L = 1024 in 4 of 4 interleaved
 * rounds (2 threads of a Xeon), 0.96-1.07x at 4096 and on GQA (noise). */
static inline __m512 vexp2(__m512 x) {
  const __mmask16 live =
      _mm512_cmp_ps_mask(x, _mm512_set1_ps(-126.5f), _CMP_GE_OQ);
  x = _mm512_max_ps(x, _mm512_set1_ps(-127.0f));
  const __m512 n = _mm512_sub_ps(_mm512_add_ps(x, _mm512_set1_ps(12582912.0f)),
                                 _mm512_set1_ps(12582912.0f));
  const __m512 f = _mm512_sub_ps(x, n);
  __m512 y = _mm512_set1_ps(1.535336188319500e-4f);
  y = _mm512_fmadd_ps(y, f, _mm512_set1_ps(1.339887440266574e-3f));
  y = _mm512_fmadd_ps(y, f, _mm512_set1_ps(9.618437357674640e-3f));
  y = _mm512_fmadd_ps(y, f, _mm512_set1_ps(5.550332471162809e-2f));
  y = _mm512_fmadd_ps(y, f, _mm512_set1_ps(2.402264791363012e-1f));
  y = _mm512_fmadd_ps(y, f, _mm512_set1_ps(6.931472028550421e-1f));
  y = _mm512_fmadd_ps(y, f, _mm512_set1_ps(1.0f));
  return _mm512_maskz_scalef_ps(live, y, n);
}

/* out[0..3] = the lane sums of a, b, c, e: a 4-vector reduction tree (14
 * instructions instead of 4 x 8 for four _mm512_reduce_add_ps): decode's
 * logits 1.04x faster with K/V in L2 (3 of 3 rounds, one thread), 0.98-1.0x
 * at L = 32768. */
static inline void vhsum4(__m512 a, __m512 b, __m512 c, __m512 e,
                          float *out) {
  const __m512 ab = _mm512_add_ps(_mm512_shuffle_f32x4(a, b, 0x44),
                                  _mm512_shuffle_f32x4(a, b, 0xEE));
  const __m512 ce = _mm512_add_ps(_mm512_shuffle_f32x4(c, e, 0x44),
                                  _mm512_shuffle_f32x4(c, e, 0xEE));
  /* 128-bit lane i: four partial sums of the i-th vector */
  __m512 v = _mm512_add_ps(_mm512_shuffle_f32x4(ab, ce, 0x88),
                           _mm512_shuffle_f32x4(ab, ce, 0xDD));
  v = _mm512_add_ps(v, _mm512_permute_ps(v, 0x4E));
  v = _mm512_add_ps(v, _mm512_permute_ps(v, 0xB1));
  const __m512i first = _mm512_set_epi32(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                         12, 8, 4, 0);
  _mm_storeu_ps(out, _mm512_castps512_ps128(_mm512_permutexvar_ps(first, v)));
}
#define VHSUM4(a, b, c, e, out) vhsum4(a, b, c, e, out)

/* Interleaved rotary pairs (2j, 2j + 1), eight pairs a vector, as on the
 * AVX2 path: one fmaddsub on the pair-swapped x, the cos/sin lanes
 * duplicated by a permute. */
static inline __m512 vrot_pairs(__m512 x, const float *c, const float *s) {
  const __m512i dup = _mm512_set_epi32(7, 7, 6, 6, 5, 5, 4, 4, 3, 3, 2, 2, 1,
                                       1, 0, 0);
  const __m512 cd =
      _mm512_permutexvar_ps(dup, _mm512_castps256_ps512(_mm256_loadu_ps(c)));
  const __m512 sd =
      _mm512_permutexvar_ps(dup, _mm512_castps256_ps512(_mm256_loadu_ps(s)));
  const __m512 xs = _mm512_permute_ps(x, 0xB1); /* (x1 x0 x3 x2 ...) */
  return _mm512_fmaddsub_ps(x, cd, _mm512_mul_ps(xs, sd));
}
#define VROT_PAIRS(x, c, s) vrot_pairs(x, c, s)

/* decode: K rotated in registers inside the logit loop (kern_tmpl.h,
 * dec_scores_rot) */
#define DEC_ROT_REGS 1
/* decode: P V reads V rows whole, in order (kern_tmpl.h, dec_pv_rows) */
#define DEC_PV_ROWS 1

#include "kern_x86.h" /* VTRANSPOSE: 8 x 8 blocks (AVX) */

#define KERNELS_NAME omp_kernels_avx512
#define KERNELS_STR "avx512"
#define KERNELS_DETAIL "avx512f 8x32 micro-kernel"

#include "kern_tmpl.h"

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
