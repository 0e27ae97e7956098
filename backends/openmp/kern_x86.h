/* openmp backend: x86 helpers shared by the AVX2 and AVX-512 paths
 * (AVX instructions only, which both files' targets include).  Included
 * by kern_avx2.c and kern_avx512.c inside their target pragmas, before
 * kern_tmpl.h. */
#ifndef PE_OMP_KERN_X86_H
#define PE_OMP_KERN_X86_H

#if defined(__clang__)
#define TRANSPOSE_UNROLL _Pragma("clang loop unroll(full)")
#else
#define TRANSPOSE_UNROLL _Pragma("GCC unroll 8")
#endif

/* dst[k][j] = src[j][k] * scale[k] for an 8 x 8 block (row strides ss,
 * ds; scale: 8 floats, or NULL for 1): the Q' -> Qt and Ot -> O
 * transposes of a unit, 8 loads, 24 shuffles and 8 stores instead of 64
 * strided scalar moves (those took 5% of causal prefill at L = 1024 on
 * AVX2).  The AVX-512 path uses the same 8 x 8 blocks: its 32-query
 * column groups hold whole blocks of 8 rows. */
static inline void vtranspose8(const float *src, size_t ss, float *dst,
                               size_t ds, const float *scale) {
  const __m256 sc = scale ? _mm256_loadu_ps(scale) : _mm256_set1_ps(1.0f);
  __m256 r[8], t[8];
  TRANSPOSE_UNROLL for (int j = 0; j < 8; j++)
    r[j] = _mm256_mul_ps(_mm256_loadu_ps(src + (size_t)j * ss), sc);
  TRANSPOSE_UNROLL for (int j = 0; j < 8; j += 2) {
    t[j] = _mm256_unpacklo_ps(r[j], r[j + 1]);
    t[j + 1] = _mm256_unpackhi_ps(r[j], r[j + 1]);
  }
  TRANSPOSE_UNROLL for (int j = 0; j < 8; j += 4) {
    r[j] = _mm256_shuffle_ps(t[j], t[j + 2], _MM_SHUFFLE(1, 0, 1, 0));
    r[j + 1] = _mm256_shuffle_ps(t[j], t[j + 2], _MM_SHUFFLE(3, 2, 3, 2));
    r[j + 2] = _mm256_shuffle_ps(t[j + 1], t[j + 3], _MM_SHUFFLE(1, 0, 1, 0));
    r[j + 3] = _mm256_shuffle_ps(t[j + 1], t[j + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
  TRANSPOSE_UNROLL for (int j = 0; j < 4; j++) {
    _mm256_storeu_ps(dst + (size_t)j * ds,
                     _mm256_permute2f128_ps(r[j], r[j + 4], 0x20));
    _mm256_storeu_ps(dst + (size_t)(j + 4) * ds,
                     _mm256_permute2f128_ps(r[j], r[j + 4], 0x31));
  }
}
#define VTRANSPOSE(src, ss, dst, ds, scale) vtranspose8(src, ss, dst, ds, scale)

#endif
