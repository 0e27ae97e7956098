/* libpe opencl backend: op = encode, Q' and K' only (memory-bound).
 *
 * One work-item per row: rows 0 .. B*HQ*SQ-1 are query rows (table row
 * QPOS0 + i), the rest key rows (table row n).  V is untouched and the
 * softmax scale is not applied (NUMERICS.md "Scheme kinds").
 */
__kernel void pe_encode_cpu(__global const float *restrict q,
                        __global const float *restrict k,
                        __global const float *restrict tc,
                        __global const float *restrict ts,
                        __global const float *restrict ta,
                        __global float *restrict oq,
                        __global float *restrict ok) {
  const size_t nq = (size_t)B * HQ * SQ;
  const size_t nk = (size_t)B * HKV * SKV;
  const size_t row = get_global_id(0);
  const __global float *src;
  __global float *dst;
  int p;
  if (row < nq) {
    src = q + row * D;
    dst = oq + row * D;
    p = QPOS0 + (int)(row % SQ);
  } else if (row < nq + nk) {
    src = k + (row - nq) * D;
    dst = ok + (row - nq) * D;
    p = (int)((row - nq) % SKV);
  } else {
    return;
  }
#define PE_STORE_E(d, val) dst[d] = (val)
  PE_ENCODE_ROW(src, p, PE_STORE_E);
#undef PE_STORE_E
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
