/* libpe opencl backend: flash attention shaped for GPUs.
 *
 * A work-group of BQ work-items holds one tile of BQ query rows (one row
 * per work-item: q'[D] and the output accumulator o[D] in registers).  The
 * group loads each key tile cooperatively into __local, with the encoding
 * fused into the load (one element per work-item per step), then every
 * work-item scores its row against the BK keys, updates its online-softmax
 * state (base 2) and accumulates P V.  Barriers only around the tile
 * loads; tile skipping (causal, window) is uniform across the group.
 * float32 accumulation throughout.
 */
__kernel __attribute__((reqd_work_group_size(BQ, 1, 1))) void
pe_attn_gpu(__global const float *restrict q, __global const float *restrict k,
            __global const float *restrict v, __global const float *restrict tc,
            __global const float *restrict ts,
            __global const float *restrict ta,
            __global const float *restrict slopes,
            __global float *restrict out, __global float *restrict ml,
            const float qscale) {
  __local float Ks[BK * D];
  __local float Vs[BK * D];

  const pe_tile t = pe_tile_of(get_group_id(0));
  const int r = get_local_id(0);
  int h, i;
  const int valid = pe_row_of(&t, r, &h, &i);
  if (!valid) { /* padding rows behave like the last valid row */
    h = t.hg * HPT;
    i = t.pmax - QPOS0;
  }
  const int pq = QPOS0 + i;
  const __global float *qrow = q + (((size_t)t.b * HQ + h) * SQ + i) * D;
#if KIND == PE_KIND_BIAS
  const float sl = slopes[h] * PE_LOG2E;
#else
  (void)slopes;
#endif

  float qv[D], ov[D];
  for (int d = 0; d < D; ++d) {
    qv[d] = pe_encode_elem(qrow, pq, d, tc, ts, ta) * qscale;
    ov[d] = 0.0f;
  }
  float m = -INFINITY, l = 0.0f;

  const __global float *kh = k + ((size_t)t.b * HKV + t.hk) * SKV * D;
  const __global float *vh = v + ((size_t)t.b * HKV + t.hk) * SKV * D;

  for (int kt = t.kt0; kt < t.kt1; ++kt) {
    const int k0 = kt * BK;
    const int nk = min(BK, SKV - k0);
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int x = r; x < BK * D; x += BQ) {
      const int n = x / D, d = x - n * D;
      float kv = 0.0f, vv = 0.0f;
      if (n < nk) {
        kv = pe_encode_elem(kh + (size_t)(k0 + n) * D, k0 + n, d, tc, ts, ta);
        vv = vh[(size_t)(k0 + n) * D + d];
      }
      Ks[x] = kv;
      Vs[x] = vv;
    }
    barrier(CLK_LOCAL_MEM_FENCE);

#if KIND == PE_KIND_BIAS
    const int masked = 1;
#else
    const int masked = !pe_tile_full(&t, kt);
#endif
    float s[BK];
    float mt = m;
    for (int n = 0; n < BK; ++n) {
      float acc = 0.0f;
      for (int d = 0; d < D; ++d) acc = fma(qv[d], Ks[n * D + d], acc);
      if (masked) {
        const int pk = k0 + n;
        int vis = n < nk;
#if CAUSAL
        vis = vis && pk <= pq;
#endif
#if WINDOW > 0
        vis = vis && abs_diff(pq, pk) < (uint)WINDOW;
#endif
#if KIND == PE_KIND_BIAS
        acc = fma(sl, (float)(pk - pq), acc);
#endif
        acc = vis ? acc : -INFINITY;
      }
      s[n] = acc;
      mt = fmax(mt, acc);
    }
    const float ms = isinf(mt) ? 0.0f : mt;
    const float alpha = exp2(m - ms);
    float ls = 0.0f;
    for (int n = 0; n < BK; ++n) {
      s[n] = exp2(s[n] - ms);
      ls += s[n];
    }
    l = fma(l, alpha, ls);
    m = mt;
    for (int d = 0; d < D; ++d) {
      float acc = ov[d] * alpha;
      for (int n = 0; n < BK; ++n) acc = fma(s[n], Vs[n * D + d], acc);
      ov[d] = acc;
    }
  }

  if (!valid) return;
  const size_t row = ((size_t)t.b * HQ + h) * SQ + i;
#if NSPLIT == 1
  (void)ml;
  const float inv = l > 0.0f ? 1.0f / l : 0.0f;
  __global float *dst = out + row * D;
  for (int d = 0; d < D; ++d) dst[d] = ov[d] * inv;
#else
  const size_t prow = (size_t)t.sp * ((size_t)B * HQ * SQ) + row;
  __global float *dst = out + prow * D;
  for (int d = 0; d < D; ++d) dst[d] = ov[d];
  ml[prow * 2] = m;
  ml[prow * 2 + 1] = l;
#endif
}
