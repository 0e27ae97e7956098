/* openmp backend: what the driver (openmp.c) and the per-ISA kernel files
 * (kern_scalar.c, kern_avx2.c, kern_avx512.c, all built from kern_tmpl.h)
 * share.  Private to the module; never installed.
 *
 * The driver owns the OpenMP parallel regions and the scheduling; a kernel
 * file only provides single-threaded work functions (one prefill unit, one
 * decode chunk, a range of encode rows), so no OpenMP construct ever sits
 * inside a function compiled for another ISA. */
#ifndef PE_OPENMP_INTERNAL_H
#define PE_OPENMP_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "libpe/pe_plugin.h"

/* log2(e): the kernels work in the base-2 domain, so softmax_scale is
 * pre-multiplied by it and exp(x) becomes exp2(x * log2 e). */
#define OMP_LOG2E 1.44269504088896340736

/* Largest head_dim the scratch layout is sized for. */
#define OMP_MAX_HEAD_DIM 256u

/* Row stride (floats) of packed K' rows: head_dim rounded up to 64 bytes. */
#define OMP_PADDED_DIM(d) (((d) + 15u) / 16u * 16u)

/* Everything a kernel needs for one execute(): the task, flattened, plus
 * block sizes, scratch strides and output buffers.  Read-only during a run
 * except for the buffers it points to. */
typedef struct omp_plan {
  uint32_t op;   /* pe_op */
  uint32_t kind; /* pe_encoding_kind */
  uint32_t batch, hq, hkv, d, group; /* group = hq / hkv */
  uint64_t sq, skv;
  uint32_t causal;
  uint64_t window;
  uint32_t rot_half;    /* ROTARY: R/2 */
  uint32_t interleaved; /* ROTARY: pairing is interleaved */
  float qscale;         /* softmax_scale * log2(e), folded into Q' */
  const float *q, *k, *v;
  const float *cos, *sin; /* [skv][rot_half] */
  const float *add;       /* [skv][d] */
  const float *slopes2;   /* BIAS: slope_h * log2(e), [hq] (plan-owned) */

  /* prefill: K' of every (batch, kv head), rows of padded_dim floats,
   * written by the pre-pass at the start of execute(); NULL when K is
   * encoded per key block inside each unit (or needs no encoding) */
  float *kprime;

  /* prefill: query block (columns of S^T, a multiple of the kernel's
   * column granule) and key block (rows of S^T) */
  uint32_t bq, bk;
  size_t scratch_floats; /* per thread */

  /* decode (sq == 1): split-KV over chunks of `chunk` keys */
  uint64_t chunk, nchunks;
  uint64_t key_lo, key_hi; /* visible key range of the single query row */
  float *partial;          /* [batch][nchunks][hq][d + 2]: m, l, o[d] */

  /* outputs, owned by the run: attention O, or encode Q' and K' */
  float *out0, *out1;
} omp_plan;

/* One kernel path.  All functions are single-threaded and reentrant. */
typedef struct omp_kernels {
  const char *name;   /* option value: "avx512", "avx2", "scalar" */
  const char *detail; /* for describe(): "avx2-fma 4x24 micro-kernel" */
  uint32_t width;     /* floats per vector */
  uint32_t granule;   /* bq must be a multiple of this (NV * width) */
  uint32_t nt_stores; /* encode streams rows out (when width divides d) */
  /* Scratch floats one thread needs for this plan (prefill or decode). */
  size_t (*scratch)(const omp_plan *p);
  /* One (batch, head, query block) unit: query rows [q0, q0 + nq). */
  void (*prefill_unit)(const omp_plan *p, uint32_t b, uint32_t h, uint64_t q0,
                       uint32_t nq, float *scratch);
  /* Keys [n0, n1) of batch b, every kv head, for a single query row;
   * writes partial (m, l, o) for chunk `c` of every query head. */
  void (*decode_chunk)(const omp_plan *p, uint32_t b, uint64_t c, uint64_t n0,
                       uint64_t n1, float *scratch);
  /* Encode: rows [r0, r1) of Q (which == 0, into out0), K (1, into out1)
   * or K (2, into kprime with the padded row stride), rows counted over
   * the flattened [B][H][S] index, and the same positions of the next
   * heads - 1 heads (rows r + k S). */
  void (*encode_rows)(const omp_plan *p, int which, uint64_t r0, uint64_t r1,
                      uint32_t heads);
} omp_kernels;

extern const omp_kernels omp_kernels_scalar;
extern const omp_kernels omp_kernels_avx2;
extern const omp_kernels omp_kernels_avx512;

#endif /* PE_OPENMP_INTERNAL_H */
