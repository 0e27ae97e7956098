/* libpe opencl backend: flash attention shaped for GPUs.
 *
 * FlashAttention-2's tiling (Dao 2023, arXiv:2307.08691) in float32 SIMT
 * arithmetic (OpenCL C 1.2 reaches no tensor cores).  A work-group of
 * WG = (BQ / RM) * TX work-items holds one tile of BQ query rows;
 * work-item (ty, tx) owns RM rows, ty * RM + a:
 *   - their scores against KN = BK / TX keys of each key tile, keys
 *     tx * KN + c (a RM x KN register block, summed over D);
 *   - their output columns j * TX + tx (consecutive work-items, consecutive
 *     columns: no bank conflicts, coalesced stores).
 * Local memory: the tile's encoded, scaled queries transposed, Qs[D][BQ]
 * (loaded once); one key tile, encoded K transposed, Ks[D][BK], then V in
 * the same space, Vs[BK][D]; the probabilities transposed, Ps[BK][BQ];
 * the per-work-item row maxima, Rs[BQ][TX].  Per key tile, three barriers:
 * K in -> scores, row-max partials -> new row max, P, V in -> P V.  Each
 * work-item keeps its rows' running max and its own share of the
 * denominator (rescaled like the output); the shares are summed once at
 * the end.  Tile skipping (causal, window) is uniform across the group;
 * softmax in base 2 with the log2(e) factor folded into the query scale.
 *
 * The former kernel (one query row per work-item, q'[D] and o[D] in
 * private arrays) spilled at D = 128 and ran at 4.0 TFLOP/s on an H100
 * (causal prefill, L = 4096, 8 heads). */
#ifndef RM
#define RM 4
#endif
#ifndef TX
#define TX 8
#endif
#define KN (BK / TX)
#define DN ((D + TX - 1) / TX)
#define WG ((BQ / RM) * TX)

#if BK % TX != 0 || BQ % RM != 0
#error "the gpu kernel needs BK a multiple of TX and BQ a multiple of RM"
#endif

/* Keys k0 .. k0 + nk - 1, encoded, into Ks[D][BK] (zeros past nk). */
static inline void pe_gpu_load_k(__local float *Ks, const __global float *kh,
                                 int k0, int nk, int lid,
                                 const __global float *tc,
                                 const __global float *ts,
                                 const __global float *ta) {
  for (int x = lid; x < BK * D; x += WG) {
    const int n = x / D, d = x - n * D;
    Ks[d * BK + n] =
        n < nk ? pe_encode_elem(kh + (size_t)(k0 + n) * D, k0 + n, d, tc, ts,
                                ta)
               : 0.0f;
  }
}

/* The values of keys k0 .. k0 + nk - 1 into Vs[BK][D] (zeros past nk). */
static inline void pe_gpu_load_v(__local float *Vs, const __global float *vh,
                                 int k0, int nk, int lid) {
  const __global float *src = vh + (size_t)k0 * D;
  for (int x = lid; x < BK * D; x += WG)
    Vs[x] = x < nk * D ? src[x] : 0.0f;
}

__kernel __attribute__((reqd_work_group_size(WG, 1, 1))) void
pe_attn_gpu(__global const float *restrict q, __global const float *restrict k,
            __global const float *restrict v, __global const float *restrict tc,
            __global const float *restrict ts,
            __global const float *restrict ta,
            __global const float *restrict slopes,
            __global float *restrict out, __global float *restrict ml,
            const float qscale) {
  __local float Qs[D * BQ];
  __local float KVs[BK * D];
  __local float Ps[BK * BQ];
  __local float Rs[BQ * TX];

  const pe_tile t = pe_tile_of(get_group_id(0));
  const int lid = get_local_id(0);
  const int ty = lid / TX, tx = lid - ty * TX;

  /* the tile's queries, encoded and scaled (padding rows: zeros) */
  for (int x = lid; x < BQ * D; x += WG) {
    const int r = x / D, d = x - r * D;
    int h, i;
    float val = 0.0f;
    if (pe_row_of(&t, r, &h, &i))
      val = pe_encode_elem(q + (((size_t)t.b * HQ + h) * SQ + i) * D,
                           QPOS0 + i, d, tc, ts, ta) *
            qscale;
    Qs[d * BQ + r] = val;
  }

  /* this work-item's rows: table row, validity, ALiBi slope */
  int pq[RM], valid[RM];
#if KIND == PE_KIND_BIAS
  float sl[RM];
#else
  (void)slopes;
#endif
  float o[RM][DN], m[RM], lp[RM];
  for (int a = 0; a < RM; ++a) {
    int h, i;
    valid[a] = pe_row_of(&t, ty * RM + a, &h, &i);
    if (!valid[a]) { /* padding rows behave like the last valid row */
      h = t.hg * HPT;
      i = t.pmax - QPOS0;
    }
    pq[a] = QPOS0 + i;
#if KIND == PE_KIND_BIAS
    sl[a] = slopes[h] * PE_LOG2E;
#endif
    m[a] = -INFINITY;
    lp[a] = 0.0f;
    for (int j = 0; j < DN; ++j) o[a][j] = 0.0f;
  }

  const __global float *kh = k + ((size_t)t.b * HKV + t.hk) * SKV * D;
  const __global float *vh = v + ((size_t)t.b * HKV + t.hk) * SKV * D;

  for (int kt = t.kt0; kt < t.kt1; ++kt) {
    const int k0 = kt * BK;
    const int nk = min(BK, SKV - k0);
    barrier(CLK_LOCAL_MEM_FENCE); /* Qs written; the last P V done */
    pe_gpu_load_k(KVs, kh, k0, nk, lid, tc, ts, ta);
    barrier(CLK_LOCAL_MEM_FENCE);

    float s[RM][KN];
    for (int a = 0; a < RM; ++a)
      for (int c = 0; c < KN; ++c) s[a][c] = 0.0f;
    for (int d = 0; d < D; ++d) {
      const __local float *qd = Qs + d * BQ + ty * RM;
      const __local float *kd = KVs + d * BK + tx * KN;
      float qa[RM], kc[KN];
      for (int a = 0; a < RM; ++a) qa[a] = qd[a];
      for (int c = 0; c < KN; ++c) kc[c] = kd[c];
      for (int a = 0; a < RM; ++a)
        for (int c = 0; c < KN; ++c) s[a][c] = fma(qa[a], kc[c], s[a][c]);
    }

#if KIND == PE_KIND_BIAS
    const int masked = 1;
#else
    const int masked = !pe_tile_full(&t, kt);
#endif
    for (int a = 0; a < RM; ++a) {
      float pm = -INFINITY;
      for (int c = 0; c < KN; ++c) {
        const int n = tx * KN + c, pk = k0 + n;
        float acc = s[a][c];
        if (masked) {
          int vis = n < nk;
#if CAUSAL
          vis = vis && pk <= pq[a];
#endif
#if WINDOW > 0
          vis = vis && abs_diff(pq[a], pk) < (uint)WINDOW;
#endif
#if KIND == PE_KIND_BIAS
          acc = fma(sl[a], (float)(pk - pq[a]), acc);
#endif
          acc = vis ? acc : -INFINITY;
        }
        s[a][c] = acc;
        pm = fmax(pm, acc);
      }
      Rs[(ty * RM + a) * TX + tx] = pm;
    }
    barrier(CLK_LOCAL_MEM_FENCE); /* row-max partials in; Ks read */

    for (int a = 0; a < RM; ++a) {
      float mt = m[a];
      for (int j = 0; j < TX; ++j) mt = fmax(mt, Rs[(ty * RM + a) * TX + j]);
      const float ms = isinf(mt) ? 0.0f : mt;
      const float alpha = exp2(m[a] - ms);
      m[a] = mt;
      lp[a] *= alpha;
      for (int j = 0; j < DN; ++j) o[a][j] *= alpha;
      for (int c = 0; c < KN; ++c) {
        const float p = exp2(s[a][c] - ms);
        lp[a] += p;
        Ps[(tx * KN + c) * BQ + ty * RM + a] = p;
      }
    }
    pe_gpu_load_v(KVs, vh, k0, nk, lid);
    barrier(CLK_LOCAL_MEM_FENCE);

    for (int n = 0; n < BK; ++n) {
      float pa[RM];
      for (int a = 0; a < RM; ++a) pa[a] = Ps[n * BQ + ty * RM + a];
      for (int j = 0; j < DN; ++j) {
        const int c = j * TX + tx;
        const float vv = (D % TX == 0 || c < D) ? KVs[n * D + c] : 0.0f;
        for (int a = 0; a < RM; ++a) o[a][j] = fma(pa[a], vv, o[a][j]);
      }
    }
  }

  /* the denominators: the sum of the TX work-items' shares (the last
   * reads of Rs came before the last barrier of the loop) */
  for (int a = 0; a < RM; ++a) Rs[(ty * RM + a) * TX + tx] = lp[a];
  barrier(CLK_LOCAL_MEM_FENCE);
  for (int a = 0; a < RM; ++a) {
    if (!valid[a]) continue;
    float l = 0.0f;
    for (int j = 0; j < TX; ++j) l += Rs[(ty * RM + a) * TX + j];
    int h, i;
    pe_row_of(&t, ty * RM + a, &h, &i);
    const size_t row = ((size_t)t.b * HQ + h) * SQ + i;
#if NSPLIT == 1
    (void)ml;
    const float inv = l > 0.0f ? 1.0f / l : 0.0f;
    __global float *dst = out + row * D;
    for (int j = 0; j < DN; ++j) {
      const int c = j * TX + tx;
      if (D % TX == 0 || c < D) dst[c] = o[a][j] * inv;
    }
#else
    const size_t prow = (size_t)t.sp * ((size_t)B * HQ * SQ) + row;
    __global float *dst = out + prow * D;
    for (int j = 0; j < DN; ++j) {
      const int c = j * TX + tx;
      if (D % TX == 0 || c < D) dst[c] = o[a][j];
    }
    if (tx == 0) {
      ml[prow * 2] = m[a];
      ml[prow * 2 + 1] = l;
    }
#endif
  }
}
