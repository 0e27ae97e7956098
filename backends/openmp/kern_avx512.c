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

/* 2^x as in kern_avx2.c: Cephes exp2f polynomial on [-1/2, 1/2] times 2^n
 * in the exponent field; x clamped to [-127, 127], n = -127 gives 0. */
static inline __m512 vexp2(__m512 x) {
  x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-127.0f)),
                    _mm512_set1_ps(127.0f));
  const __m512 n =
      _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m512 f = _mm512_sub_ps(x, n);
  __m512 y = _mm512_set1_ps(1.535336188319500e-4f);
  y = _mm512_fmadd_ps(y, f, _mm512_set1_ps(1.339887440266574e-3f));
  y = _mm512_fmadd_ps(y, f, _mm512_set1_ps(9.618437357674640e-3f));
  y = _mm512_fmadd_ps(y, f, _mm512_set1_ps(5.550332471162809e-2f));
  y = _mm512_fmadd_ps(y, f, _mm512_set1_ps(2.402264791363012e-1f));
  y = _mm512_fmadd_ps(y, f, _mm512_set1_ps(6.931472028550421e-1f));
  y = _mm512_fmadd_ps(y, f, _mm512_set1_ps(1.0f));
  const __m512i e = _mm512_slli_epi32(
      _mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
  return _mm512_mul_ps(y, _mm512_castsi512_ps(e));
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
