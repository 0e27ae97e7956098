/* libpe opencl backend: flash attention shaped for CPU devices (PoCL).
 *
 * One work-item per work-group, so the device runs each group as one
 * straight function on one core, and all data parallelism is explicit:
 * VW-wide float vectors run along the tile's query rows.  Everything a
 * tile needs lives in __local (plain memory on a CPU device; no barriers):
 *
 *   Qt[NV/RB][D][RB]  Q' of the tile, transposed, scaled by
 *               softmax_scale*log2(e), group-major: the RB row vectors of a
 *               row group are contiguous for each d
 *   Kt[BK][D]   K' of the key tile (encoding fused into the load), or,
 *               with KPRE, none: K' rows are read in place from the
 *               buffer pe_kprep_cpu wrote (rotary/additive, several
 *               query tiles per kv head: each key is encoded once per
 *               run instead of once per query tile)
 *   Vt[BK][DP]  V of the key tile, zero padded to DP (a multiple of DB),
 *               only when D % DB != 0 (else P V reads V in place)
 *   S[BK][RB]   logits, then probabilities, of one row group
 *   Ot[NV/RB][DP][RB]  unnormalised output, transposed, group-major
 * (group-major: a row group's slice is one contiguous run rather than D
 * lines BQ floats apart that crowd a few L1 sets; measured faster).
 *
 * Q'K'^T and PV are register-blocked outer products: RB row vectors times
 * KB keys (or DB dims) per block, a scalar broadcast per FMA, no
 * horizontal reductions; the row statistics m, l are vectors too.
 * Online softmax in base 2 (p = 2^(s - m)), float32 accumulation.
 * Extra constants: VW (4, 8 or 16), RB, KB, DB, DP, KPRE and SKVP (K'
 * rows per (batch, kv head) in the pre-pass buffer: SKV rounded up to BK,
 * the extra rows zero).
 */
#define VT PE_CAT(float, VW)
#define IVT PE_CAT(int, VW)
#define NV (BQ / VW)
#define VLOADF PE_CAT(vload, VW)
/* float index of (dim d, tile row r) in the group-major Qt / Ot */
#define PE_GM(d, r, DIMS)                                                    \
  (((((r) / VW) / RB * (DIMS) + (d)) * RB + ((r) / VW) % RB) * VW + (r) % VW)

#if VW == 4
#define PE_IOTA ((int4)(0, 1, 2, 3))
#elif VW == 8
#define PE_IOTA ((int8)(0, 1, 2, 3, 4, 5, 6, 7))
#elif VW == 16
#define PE_IOTA ((int16)(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15))
#else
#error "VW must be 4, 8 or 16"
#endif

/* 2^x for x <= 0 (softmax weights and rescale factors): round to nearest
 * n, 2^f on [-1/2, 1/2] by the Cephes exp2f polynomial (relative error
 * ~2e-7, as the openmp backend), times 2^n built in the exponent field.
 * x is clamped at -127, where the exponent field is 0: exactly 0, so -inf
 * gives 0.  Measured cheaper than PoCL's exp2 builtin, which handles the
 * whole range. */
inline VT pe_exp2_neg(VT x) {
  x = fmax(x, (VT)(-127.0f));
  const VT n = rint(x);
  const VT f = x - n;
  VT y = (VT)(1.535336188319500e-4f);
  y = fma(y, f, (VT)(1.339887440266574e-3f));
  y = fma(y, f, (VT)(9.618437357674640e-3f));
  y = fma(y, f, (VT)(5.550332471162809e-2f));
  y = fma(y, f, (VT)(2.402264791363012e-1f));
  y = fma(y, f, (VT)(6.931472028550421e-1f));
  y = fma(y, f, (VT)(1.0f));
  const IVT e = (PE_CAT(convert_int, VW)(n) + 127) << 23;
  return y * PE_CAT(as_float, VW)(e);
}

/* P V reads V in place when whole DB-blocks cover a row, else from a
 * zero-padded copy in Vt. */
#ifndef PE_V_COPY
#define PE_V_COPY 0
#endif
#if D % DB == 0 && !PE_V_COPY
#define PE_V_DIRECT 1
#define PE_V_STRIDE D
#else
#define PE_V_DIRECT 0
#define PE_V_STRIDE DP
#endif

#if NV % RB != 0 || BK % KB != 0 || DP % DB != 0 || BQ % VW != 0
#error "tile sizes must divide: BQ % VW, (BQ/VW) % RB, BK % KB, DP % DB"
#endif

/* K' pre-pass: one work-item per key row, into kp[B][HKV][SKVP][D]. */
__kernel void pe_kprep_cpu(__global const float *restrict k,
                           __global const float *restrict tc,
                           __global const float *restrict ts,
                           __global const float *restrict ta,
                           __global float *restrict kp) {
  const size_t row = get_global_id(0);
  if (row >= (size_t)B * HKV * SKV) return;
  const size_t bh = row / SKV;
  const int n = (int)(row - bh * SKV);
  const __global float *src = k + row * D;
  __global float *dst = kp + (bh * SKVP + n) * D;
#define PE_STORE_KP(d, val) dst[d] = (val)
  PE_ENCODE_ROW(src, n, PE_STORE_KP);
#undef PE_STORE_KP
  (void)tc;
  (void)ts;
  (void)ta;
}

__kernel __attribute__((reqd_work_group_size(1, 1, 1))) void
pe_attn_cpu(__global const float *restrict q, __global const float *restrict k,
            __global const float *restrict v, __global const float *restrict tc,
            __global const float *restrict ts,
            __global const float *restrict ta,
            __global const float *restrict slopes,
            __global float *restrict out, __global float *restrict ml,
            const float qscale, __global int *restrict next) {
  __local VT Qt[D * NV];
#if !KPRE
  __local float Kt[BK * D];
#endif
#if !PE_V_DIRECT
  __local float Vt[BK * DP];
#endif
  __local VT S[BK * RB];    /* logits of one row group */
  __local VT Ot[DP * NV];
  __local int rpos[BQ];      /* table row of each tile row */
  __local float rslope[BQ];  /* log2(e) * slope of the row's head */
  __local float rinv[BQ];
  __local int gpmin[NV / RB], gpmax[NV / RB]; /* row group positions */
  __local float *Qf = (__local float *)Qt;
  __local float *Of = (__local float *)Ot;

  (void)tc;
  (void)ts;
  (void)ta;
  (void)slopes;

  /* Persistent work-groups: each takes the next tile from the shared
   * counter until none is left, so tiles run in order (head-major,
   * heaviest first) and the threads balance dynamically; PoCL hands each
   * thread a fixed chunk of work-group ids, so tiles as work-groups left
   * one core idle while the other finished its half on a busy machine. */
  for (;;) {
    const int gi = atomic_inc(next);
    if (gi >= PE_NGROUPS) break;
    const pe_tile t = pe_tile_of(gi);

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
#define PE_STORE_Q(d, val) Qf[PE_GM(d, r, D)] = (val) * qscale
        PE_ENCODE_ROW(src, QPOS0 + i, PE_STORE_Q);
#undef PE_STORE_Q
      } else {
        rpos[r] = t.pmax;
#if KIND == PE_KIND_BIAS
        rslope[r] = 0.0f;
#endif
        for (int d = 0; d < D; ++d) Qf[PE_GM(d, r, D)] = 0.0f;
      }
    }
    for (int g = 0; g < NV / RB; ++g) {
      int lo = rpos[g * RB * VW], hi = lo;
      for (int r = g * RB * VW + 1; r < (g + 1) * RB * VW; ++r) {
        lo = min(lo, rpos[r]);
        hi = max(hi, rpos[r]);
      }
      gpmin[g] = lo;
      gpmax[g] = hi;
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

#if KPRE
    const __global float *kh = k + ((size_t)t.b * HKV + t.hk) * SKVP * D;
#else
    const __global float *kh = k + ((size_t)t.b * HKV + t.hk) * SKV * D;
#endif
    const __global float *vh = v + ((size_t)t.b * HKV + t.hk) * SKV * D;

    for (int kt = t.kt0; kt < t.kt1; ++kt) {
      const int k0 = kt * BK;
      const int nk = min(BK, SKV - k0);
      const int nkc = (nk + KB - 1) / KB * KB; /* keys computed, KB multiple */

      /* K' and V tiles; rows nk..nkc-1 are zero */
#if KPRE
      const __global float *Kt = kh + (size_t)k0 * D;
#endif
      for (int n = 0; n < nk; ++n) {
        const __global float *ksrc = kh + (size_t)(k0 + n) * D;
        const __global float *vsrc = vh + (size_t)(k0 + n) * D;
#if !KPRE
#define PE_STORE_K(d, val) Kt[n * D + (d)] = (val)
        PE_ENCODE_ROW(ksrc, k0 + n, PE_STORE_K);
#undef PE_STORE_K
#else
        (void)ksrc;
#endif
#if !PE_V_DIRECT
        for (int d = 0; d < D; ++d) Vt[n * DP + d] = vsrc[d];
#else
        (void)vsrc;
#endif
      }
#if !KPRE
      for (int n = nk; n < nkc; ++n)
        for (int d = 0; d < D; ++d) Kt[n * D + d] = 0.0f;
#endif

#if KIND == PE_KIND_BIAS
      const int masked = 1;
#else
      const int masked = !pe_tile_full(&t, kt);
#endif
      /* One group of RB row vectors at a time: its logits, softmax and P V,
       * so that its slices of Qt, S and Ot stay in L1 while K' and V stream
       * from L2. */
      for (int rg = 0; rg < NV; rg += RB) {
        /* keys [n_lo, n_hi) of the tile, KB-aligned, that some row of the
         * group can see: on the diagonal (causal) and the window's edges a
         * row group skips the keys no row of it sees rather than computing
         * and masking them (9% of all pairs at L = 4096, 288-row tiles) */
        int n_lo = 0, n_hi = nkc;
        if (masked) {
#if CAUSAL
          n_hi = min(n_hi, (gpmax[rg / RB] - k0 + KB) / KB * KB);
#endif
#if WINDOW > 0
          n_lo = max(0, (gpmin[rg / RB] - (WINDOW - 1) - k0) / KB * KB);
#if !CAUSAL
          n_hi = min(n_hi, (gpmax[rg / RB] + WINDOW - 1 - k0 + KB) / KB * KB);
#endif
#endif
          if (n_hi <= n_lo) continue; /* nothing visible: m, l, O unchanged */
        }
        /* S = Q' K'^T: RB row vectors x KB keys per register block; cm:
         * the rows' running maxima, taken on the way out (the softmax
         * needs no pass of its own over an unmasked tile) */
        VT cm[RB];
#pragma unroll
        for (int a = 0; a < RB; ++a) cm[a] = mrow[rg + a];
        for (int kg = n_lo; kg < n_hi; kg += KB) {
          VT acc[RB][KB];
#pragma unroll
          for (int a = 0; a < RB; ++a)
#pragma unroll
            for (int c = 0; c < KB; ++c) acc[a][c] = (VT)(0.0f);
          const __local VT *qp = Qt + rg * D;
#if KPRE
          const __global float *kp = Kt + kg * D;
#else
          const __local float *kp = Kt + kg * D;
#endif
          /* two steps of d a trip (unrolled by hand: PoCL keeps one
           * step a trip whatever the pragma says) */
#define PE_QK_STEP(o)                                                        \
  do {                                                                       \
    VT qv[RB];                                                               \
    _Pragma("unroll") for (int a = 0; a < RB; ++a) qv[a] = qp[(o) * RB + a]; \
    _Pragma("unroll") for (int c = 0; c < KB; ++c) {                         \
      const VT kk = (VT)(kp[c * D + (o)]);                                   \
      _Pragma("unroll") for (int a = 0; a < RB; ++a) acc[a][c] =             \
          fma(qv[a], kk, acc[a][c]);                                         \
    }                                                                        \
  } while (0)
          for (int d = 0; d + 1 < D; d += 2, qp += 2 * RB, kp += 2) {
            PE_QK_STEP(0);
            PE_QK_STEP(1);
          }
#if D % 2
          PE_QK_STEP(0);
#endif
#undef PE_QK_STEP
#pragma unroll
          for (int a = 0; a < RB; ++a)
#pragma unroll
            for (int c = 0; c < KB; ++c) {
              S[(kg + c) * RB + a] = acc[a][c];
              cm[a] = fmax(cm[a], acc[a][c]);
            }
        }

        /* mask (edge tiles only) and bias */
        if (masked) {
#pragma unroll
          for (int a = 0; a < RB; ++a) {
            const IVT pq = PE_CAT(vload, VW)(rg + a, rpos);
#if KIND == PE_KIND_BIAS
            const VT sl = VLOADF(rg + a, rslope);
#endif
            for (int n = n_lo; n < n_hi; ++n) {
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
          if (masked) /* the mask and bias changed S after cm was taken */
            for (int n = n_lo; n < n_hi; ++n) mt = fmax(mt, S[n * RB + a]);
          else
            mt = cm[a];
          const VT ms = select(mt, (VT)(0.0f), isinf(mt));
          alpha[a] = pe_exp2_neg(mold - ms);
          VT ls = (VT)(0.0f);
          for (int n = n_lo; n < n_hi; ++n) {
            const VT pr = pe_exp2_neg(S[n * RB + a] - ms);
            S[n * RB + a] = pr;
            ls += pr;
          }
          lrow[rg + a] = fma(lrow[rg + a], alpha[a], ls);
          mrow[rg + a] = mt;
        }

        /* O = alpha O + P V: RB row vectors x DB dims per register block */
        for (int dg = 0; dg < DP; dg += DB) {
          VT acc[RB][DB];
          __local VT *op = Ot + rg * DP + dg * RB;
#pragma unroll
          for (int a = 0; a < RB; ++a)
#pragma unroll
            for (int c = 0; c < DB; ++c) acc[a][c] = op[c * RB + a] * alpha[a];
          const __local VT *sp = S + n_lo * RB;
#if PE_V_DIRECT
          const __global float *vp = vh + (size_t)(k0 + n_lo) * D + dg;
#else
          const __local float *vp = Vt + n_lo * DP + dg;
#endif
          const int n_end = min(n_hi, nk);
#define PE_PV_STEP(o)                                                        \
  do {                                                                       \
    VT pr[RB];                                                               \
    _Pragma("unroll") for (int a = 0; a < RB; ++a) pr[a] = sp[(o) * RB + a]; \
    _Pragma("unroll") for (int c = 0; c < DB; ++c) {                         \
      const VT vv = (VT)(vp[(o) * PE_V_STRIDE + c]);                         \
      _Pragma("unroll") for (int a = 0; a < RB; ++a) acc[a][c] =             \
          fma(pr[a], vv, acc[a][c]);                                         \
    }                                                                        \
  } while (0)
          int n = n_lo;
          for (; n + 1 < n_end; n += 2, sp += 2 * RB, vp += 2 * PE_V_STRIDE) {
            PE_PV_STEP(0);
            PE_PV_STEP(1);
          }
          if (n < n_end) PE_PV_STEP(0);
#undef PE_PV_STEP
#pragma unroll
          for (int a = 0; a < RB; ++a)
#pragma unroll
            for (int c = 0; c < DB; ++c) op[c * RB + a] = acc[a][c];
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
      for (int d = 0; d < D; ++d) dst[d] = Of[PE_GM(d, r, DP)] * inv;
#else
      const size_t prow = (size_t)t.sp * ((size_t)B * HQ * SQ) + row;
      __global float *dst = out + prow * D;
      for (int d = 0; d < D; ++d) dst[d] = Of[PE_GM(d, r, DP)];
      ml[prow * 2] = rinv[r];
      ml[prow * 2 + 1] = rslope[r];
#endif
    }
  }
}
