/* libpe opencl backend: op = encode, Q' and K' only (memory-bound).
 *
 * Rows 0 .. B*HQ*SQ-1 are query rows (table row QPOS0 + i), the rest key
 * rows (table row n).  V is untouched and the softmax scale is not
 * applied (NUMERICS.md "Scheme kinds").
 */

/* CPU devices: one work-item per work-group, ENC_ROWS (a -D constant the
 * host sets and sizes the launch by) consecutive rows
 * each, float8 vectors along the row and non-temporal stores where the
 * compiler has them (the outputs are not read again by this run; no
 * read-for-ownership of the destination, as the openmp backend).  A row
 * per work-item ran at 0.76x openmp (encode 32 heads x 8192 x 128): PoCL
 * vectorizes across work-items, i.e. across rows 512 bytes apart.  Rows
 * whose pairs or dims do not come in whole vectors
 * (interleaved pairing, D % 8 != 0) take the scalar row macro. */
#if (KIND == PE_KIND_ROTARY && PAIRING == PE_PAIRING_NEOX &&                 \
     HALF % 8 == 0 && D % 8 == 0) ||                                         \
    (KIND == PE_KIND_ROTARY && PAIRING == PE_PAIRING_INTERLEAVED &&          \
     HALF % 4 == 0 && D % 8 == 0) ||                                         \
    ((KIND == PE_KIND_ADDITIVE || KIND == PE_KIND_NONE) && D % 8 == 0)
#define PE_ENC_VEC 1
#else
#define PE_ENC_VEC 0
#endif
#if defined(__has_builtin)
#if __has_builtin(__builtin_nontemporal_store)
#define PE_NT8(v, p) __builtin_nontemporal_store((v), (__global float8 *)(p))
#endif
#endif
#ifndef PE_NT8
#define PE_NT8(v, p) vstore8((v), 0, (p))
#endif

__kernel __attribute__((reqd_work_group_size(1, 1, 1))) void
pe_encode_rows_cpu(__global const float *restrict q,
                   __global const float *restrict k,
                   __global const float *restrict tc,
                   __global const float *restrict ts,
                   __global const float *restrict ta,
                   __global float *restrict oq, __global float *restrict ok) {
  const size_t nq = (size_t)B * HQ * SQ;
  const size_t nk = (size_t)B * HKV * SKV;
  const size_t r0 = get_global_id(0) * ENC_ROWS;
  const size_t r1 = min(r0 + ENC_ROWS, nq + nk);
  for (size_t row = r0; row < r1; ++row) {
    const __global float *src;
    __global float *dst;
    int p;
    if (row < nq) {
      src = q + row * D;
      dst = oq + row * D;
      p = QPOS0 + (int)(row % SQ);
    } else {
      src = k + (row - nq) * D;
      dst = ok + (row - nq) * D;
      p = (int)((row - nq) % SKV);
    }
#if PE_ENC_VEC && KIND == PE_KIND_ROTARY && PAIRING == PE_PAIRING_INTERLEAVED
    /* four pairs (2j, 2j + 1) a vector: x c + x' (-s, s) with x' the
     * pair-swapped row (the element loop ran 1.6x the neox time) */
    const __global float *c = tc + (size_t)p * HALF;
    const __global float *s = ts + (size_t)p * HALF;
    for (int j = 0; j < HALF; j += 4) {
      const float8 x = vload8(0, src + 2 * j);
      const float4 c4 = vload4(0, c + j), s4 = vload4(0, s + j);
      const float8 cd = (float8)(c4.s00, c4.s11, c4.s22, c4.s33);
      const float8 sd = (float8)(s4.s00, s4.s11, s4.s22, s4.s33) *
                        (float8)(-1.0f, 1.0f, -1.0f, 1.0f, -1.0f, 1.0f, -1.0f,
                                 1.0f);
      PE_NT8(fma(x, cd, x.s10325476 * sd), dst + 2 * j);
    }
    for (int d = R; d < D; d += 8) PE_NT8(vload8(0, src + d), dst + d);
#elif PE_ENC_VEC && KIND == PE_KIND_ROTARY
    const __global float *c = tc + (size_t)p * HALF;
    const __global float *s = ts + (size_t)p * HALF;
    for (int j = 0; j < HALF; j += 8) {
      const float8 x = vload8(0, src + j), y = vload8(0, src + j + HALF);
      const float8 cv = vload8(0, c + j), sv = vload8(0, s + j);
      PE_NT8(x * cv - y * sv, dst + j);
      PE_NT8(y * cv + x * sv, dst + j + HALF);
    }
    for (int d = R; d < D; d += 8) PE_NT8(vload8(0, src + d), dst + d);
#elif PE_ENC_VEC && KIND == PE_KIND_ADDITIVE
    const __global float *a = ta + (size_t)p * D;
    for (int d = 0; d < D; d += 8)
      PE_NT8(vload8(0, src + d) + vload8(0, a + d), dst + d);
#elif PE_ENC_VEC
    for (int d = 0; d < D; d += 8) PE_NT8(vload8(0, src + d), dst + d);
#else
#define PE_STORE_E(d, val) dst[d] = (val)
    PE_ENCODE_ROW(src, p, PE_STORE_E);
#undef PE_STORE_E
#endif
  }
  (void)tc;
  (void)ts;
  (void)ta;
}

/* The same, one work-item per element (row-major, d fastest): coalesced
 * loads and stores on GPUs. */
__kernel void pe_encode_gpu(__global const float *restrict q,
                             __global const float *restrict k,
                             __global const float *restrict tc,
                             __global const float *restrict ts,
                             __global const float *restrict ta,
                             __global float *restrict oq,
                             __global float *restrict ok) {
  const size_t nq = (size_t)B * HQ * SQ;
  const size_t nk = (size_t)B * HKV * SKV;
  const size_t x = get_global_id(0);
  const size_t row = x / D;
  const int d = (int)(x - row * D);
  if (row < nq) {
    const int p = QPOS0 + (int)(row % SQ);
    oq[x] = pe_encode_elem(q + row * D, p, d, tc, ts, ta);
  } else if (row < nq + nk) {
    const size_t kr = row - nq;
    const int p = (int)(kr % SKV);
    ok[kr * D + d] = pe_encode_elem(k + kr * D, p, d, tc, ts, ta);
  }
}
