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
