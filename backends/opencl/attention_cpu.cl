/* libpe opencl backend: flash attention shaped for CPU devices (PoCL).
 *
 * One work-item per work-group, so the device runs each group as one
 * straight function on one core, and all data parallelism is explicit:
 * VW-wide float vectors run along the tile's query rows.  Everything a
 * tile needs lives in __local (plain memory on a CPU device; no barriers):
 *
 *   Qt[D][BQ]   Q' of the tile, transposed, scaled by softmax_scale*log2(e)
 *   Kt[BK][D]   K' of the key tile (encoding fused into the load)
 *   Vt[BK][DP]  V of the key tile, zero padded to DP (a multiple of DB),
 *               only when D % DB != 0 (else P V reads V in place)
 *   S[BK][RB]   logits, then probabilities, of one row group
 *   Ot[DP][BQ]  unnormalised output, transposed
 *
 * Q'K'^T and PV are register-blocked outer products: RB row vectors times
 * KB keys (or DB dims) per block, a scalar broadcast per FMA, no
 * horizontal reductions; the row statistics m, l are vectors too.
 * Online softmax in base 2 (p = 2^(s - m)), float32 accumulation.
 * Extra constants: VW (4, 8 or 16), RB, KB, DB, DP.
 */
#define VT PE_CAT(float, VW)
#define IVT PE_CAT(int, VW)
#define NV (BQ / VW)
#define VLOADF PE_CAT(vload, VW)

#if VW == 4
#define PE_IOTA ((int4)(0, 1, 2, 3))
#elif VW == 8
#define PE_IOTA ((int8)(0, 1, 2, 3, 4, 5, 6, 7))
#elif VW == 16
#define PE_IOTA ((int16)(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15))
#else
#error "VW must be 4, 8 or 16"
#endif

/* P V reads V in place when whole DB-blocks cover a row, else from a
 * zero-padded copy in Vt. */
#if D % DB == 0
#define PE_V_DIRECT 1
#define PE_V_STRIDE D
#else
#define PE_V_DIRECT 0
#define PE_V_STRIDE DP
#endif

#if NV % RB != 0 || BK % KB != 0 || DP % DB != 0 || BQ % VW != 0
#error "tile sizes must divide: BQ % VW, (BQ/VW) % RB, BK % KB, DP % DB"
#endif

__kernel __attribute__((reqd_work_group_size(1, 1, 1))) void
pe_attn_cpu(__global const float *restrict q, __global const float *restrict k,
            __global const float *restrict v, __global const float *restrict tc,
            __global const float *restrict ts,
            __global const float *restrict ta,
            __global const float *restrict slopes,
            __global float *restrict out, __global float *restrict ml,
            const float qscale) {
  __local VT Qt[D * NV];
  __local float Kt[BK * D];
#if !PE_V_DIRECT
  __local float Vt[BK * DP];
#endif
  __local VT S[BK * RB];    /* logits of one row group */
  __local VT Ot[DP * NV];
  __local int rpos[BQ];      /* table row of each tile row */
  __local float rslope[BQ];  /* log2(e) * slope of the row's head */
  __local float rinv[BQ];
  __local float *Qf = (__local float *)Qt;
  __local float *Of = (__local float *)Ot;

  const pe_tile t = pe_tile_of(get_group_id(0));
  (void)tc;
  (void)ts;
  (void)ta;
  (void)slopes;

  /* Q' tile, transposed and prescaled; padding rows are zero and take the
   * position of the last valid row so that they never see an empty row. */
  for (int r = 0; r < BQ; ++r) {
    int h, i;
    if (pe_row_of(&t, r, &h, &i)) {
      const __global float *src = q + (((size_t)t.b * HQ + h) * SQ + i) * D;
      rpos[r] = QPOS0 + i;
#if KIND == PE_KIND_BIAS
      rslope[r] = slopes[h] * PE_LOG2E;
#endif
#define PE_STORE_Q(d, val) Qf[(d) * BQ + r] = (val) * qscale
      PE_ENCODE_ROW(src, QPOS0 + i, PE_STORE_Q);
#undef PE_STORE_Q
    } else {
      rpos[r] = t.pmax;
#if KIND == PE_KIND_BIAS
      rslope[r] = 0.0f;
#endif
      for (int d = 0; d < D; ++d) Qf[d * BQ + r] = 0.0f;
    }
  }
  for (int x = 0; x < DP * NV; ++x) Ot[x] = (VT)(0.0f);
#if !PE_V_DIRECT
  for (int x = 0; x < BK * DP; ++x) Vt[x] = 0.0f;
#endif

  VT mrow[NV], lrow[NV];
  for (int rv = 0; rv < NV; ++rv) {
    mrow[rv] = (VT)(-INFINITY);
    lrow[rv] = (VT)(0.0f);
  }

  const __global float *kh = k + ((size_t)t.b * HKV + t.hk) * SKV * D;
  const __global float *vh = v + ((size_t)t.b * HKV + t.hk) * SKV * D;

  for (int kt = t.kt0; kt < t.kt1; ++kt) {
    const int k0 = kt * BK;
    const int nk = min(BK, SKV - k0);
    const int nkc = (nk + KB - 1) / KB * KB; /* keys computed, KB multiple */

    /* K' and V tiles; rows nk..nkc-1 are zero */
    for (int n = 0; n < nk; ++n) {
      const __global float *ksrc = kh + (size_t)(k0 + n) * D;
      const __global float *vsrc = vh + (size_t)(k0 + n) * D;
#define PE_STORE_K(d, val) Kt[n * D + (d)] = (val)
      PE_ENCODE_ROW(ksrc, k0 + n, PE_STORE_K);
#undef PE_STORE_K
#if !PE_V_DIRECT
      for (int d = 0; d < D; ++d) Vt[n * DP + d] = vsrc[d];
#else
      (void)vsrc;
#endif
    }
    for (int n = nk; n < nkc; ++n)
      for (int d = 0; d < D; ++d) Kt[n * D + d] = 0.0f;

#if KIND == PE_KIND_BIAS
    const int masked = 1;
#else
    const int masked = !pe_tile_full(&t, kt);
#endif
    /* One group of RB row vectors at a time: its logits, softmax and P V,
     * so that its slices of Qt, S and Ot stay in L1 while K' and V stream
     * from L2. */
    for (int rg = 0; rg < NV; rg += RB) {
      /* S = Q' K'^T: RB row vectors x KB keys per register block */
      for (int kg = 0; kg < nkc; kg += KB) {
        VT acc[RB][KB];
#pragma unroll
        for (int a = 0; a < RB; ++a)
#pragma unroll
          for (int c = 0; c < KB; ++c) acc[a][c] = (VT)(0.0f);
        const __local VT *qp = Qt + rg;
        const __local float *kp = Kt + kg * D;
        for (int d = 0; d < D; ++d, qp += NV, ++kp) {
          VT qv[RB];
#pragma unroll
          for (int a = 0; a < RB; ++a) qv[a] = qp[a];
#pragma unroll
          for (int c = 0; c < KB; ++c) {
            const VT kk = (VT)(kp[c * D]);
#pragma unroll
            for (int a = 0; a < RB; ++a) acc[a][c] = fma(qv[a], kk, acc[a][c]);
          }
        }
#pragma unroll
        for (int a = 0; a < RB; ++a)
#pragma unroll
          for (int c = 0; c < KB; ++c) S[(kg + c) * RB + a] = acc[a][c];
      }

      /* mask (edge tiles only) and bias */
      if (masked) {
#pragma unroll
        for (int a = 0; a < RB; ++a) {
          const IVT pq = PE_CAT(vload, VW)(rg + a, rpos);
#if KIND == PE_KIND_BIAS
          const VT sl = VLOADF(rg + a, rslope);
#endif
          for (int n = 0; n < nkc; ++n) {
            const IVT pk = (IVT)(k0 + n);
            IVT vis = (IVT)(n < nk ? -1 : 0);
#if CAUSAL
            vis &= pk <= pq;
#endif
#if WINDOW > 0
            vis &= abs_diff(pq, pk) < (uint)WINDOW;
#endif
            VT sv = S[n * RB + a];
#if KIND == PE_KIND_BIAS
            /* logit += -slope * (pq - pk), in log2 units */
            sv = fma(sl, PE_CAT(convert_float, VW)(pk - pq), sv);
#endif
            S[n * RB + a] = select((VT)(-INFINITY), sv, vis);
          }
        }
      }

      /* online softmax: new row max, rescale factor, probabilities */
      VT alpha[RB];
#pragma unroll
      for (int a = 0; a < RB; ++a) {
        const VT mold = mrow[rg + a];
        VT mt = mold;
        for (int n = 0; n < nkc; ++n) mt = fmax(mt, S[n * RB + a]);
        const VT ms = select(mt, (VT)(0.0f), isinf(mt));
        alpha[a] = exp2(mold - ms);
        VT ls = (VT)(0.0f);
        for (int n = 0; n < nkc; ++n) {
          const VT pr = exp2(S[n * RB + a] - ms);
          S[n * RB + a] = pr;
          ls += pr;
        }
        lrow[rg + a] = fma(lrow[rg + a], alpha[a], ls);
        mrow[rg + a] = mt;
      }

      /* O = alpha O + P V: RB row vectors x DB dims per register block */
      for (int dg = 0; dg < DP; dg += DB) {
        VT acc[RB][DB];
        __local VT *op = Ot + dg * NV + rg;
#pragma unroll
        for (int a = 0; a < RB; ++a)
#pragma unroll
          for (int c = 0; c < DB; ++c) acc[a][c] = op[c * NV + a] * alpha[a];
        const __local VT *sp = S;
#if PE_V_DIRECT
        const __global float *vp = vh + (size_t)k0 * D + dg;
#else
        const __local float *vp = Vt + dg;
#endif
        for (int n = 0; n < nk; ++n, sp += RB, vp += PE_V_STRIDE) {
          VT pr[RB];
#pragma unroll
          for (int a = 0; a < RB; ++a) pr[a] = sp[a];
#pragma unroll
          for (int c = 0; c < DB; ++c) {
            const VT vv = (VT)(vp[c]);
#pragma unroll
            for (int a = 0; a < RB; ++a) acc[a][c] = fma(pr[a], vv, acc[a][c]);
          }
        }
#pragma unroll
        for (int a = 0; a < RB; ++a)
#pragma unroll
          for (int c = 0; c < DB; ++c) op[c * NV + a] = acc[a][c];
      }
    }
  }

  /* write back: O / l (NSPLIT == 1) or the unnormalised partial + (m, l) */
  for (int rv = 0; rv < NV; ++rv) {
#if NSPLIT == 1
    const VT inv = select(1.0f / lrow[rv], (VT)(0.0f), lrow[rv] <= 0.0f);
    PE_CAT(vstore, VW)(inv, rv, rinv);
#else
    PE_CAT(vstore, VW)(mrow[rv], rv, rinv);
    PE_CAT(vstore, VW)(lrow[rv], rv, rslope);
#endif
  }
  for (int r = 0; r < BQ; ++r) {
    int h, i;
    if (!pe_row_of(&t, r, &h, &i)) continue;
    const size_t row = ((size_t)t.b * HQ + h) * SQ + i;
#if NSPLIT == 1
    __global float *dst = out + row * D;
    const float inv = rinv[r];
    for (int d = 0; d < D; ++d) dst[d] = Of[d * BQ + r] * inv;
#else
    const size_t prow = (size_t)t.sp * ((size_t)B * HQ * SQ) + row;
    __global float *dst = out + prow * D;
    for (int d = 0; d < D; ++d) dst[d] = Of[d * BQ + r];
    ml[prow * 2] = rinv[r];
    ml[prow * 2 + 1] = rslope[r];
#endif
  }
}
