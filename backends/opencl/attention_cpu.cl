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
static inline VT pe_exp2_neg(VT x) {
  x = fmax(x, (VT)(-127.0f));
#ifdef __FAST_RELAXED_MATH__
  const VT n = rint(x);
#else
  /* round to nearest by adding and subtracting 1.5 * 2^23 (exact for
   * |x| < 2^22): two adds, where PoCL expands rint() into a dozen
   * compares and blends (the softmax took ~10% of the kernel).  Relaxed
   * math could fold the pair away, so it keeps rint. */
  const VT n = (x + (VT)(12582912.0f)) - (VT)(12582912.0f);
#endif
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

/* Software prefetch of the next key block's K (or K') and V rows (two
 * contiguous runs of equal length), spread evenly over this block's
 * arithmetic: `step` lines of each at every step of the logit and P V
 * loops -- the openmp backend's scheme (issued in one burst, prefetches
 * stall on the core's miss buffers and then leave the memory idle while
 * the block computes).  PE_PREFETCH: see common.cl. */
typedef struct pe_pf {
  const __global char *k, *v;
  int off, len, step; /* bytes done and in all of each run; lines a step */
} pe_pf;

/* The cursor over `rows` rows (none when rows <= 0) from row r0 of a kv
 * head's K (or K') and V, `steps` steps to spread them over. */
static inline pe_pf pe_pf_rows(const __global float *kh, const __global float *vh,
                        int r0, int rows, int steps) {
  pe_pf c = {(const __global char *)kh, (const __global char *)vh, 0, 0, 1};
  if (rows > 0) {
    c.k = (const __global char *)(kh + (size_t)r0 * D);
    c.v = (const __global char *)(vh + (size_t)r0 * D);
    c.len = rows * D * (int)sizeof(float);
    c.step = steps ? (c.len / 64 + steps) / steps : 1;
  }
  return c;
}

static inline void pe_pf_step(pe_pf *c) {
#if PE_PF
  for (int i = 0; i < c->step && c->off < c->len; ++i, c->off += 64) {
    PE_PREFETCH(c->k + c->off);
    PE_PREFETCH(c->v + c->off);
  }
#else
  (void)c;
#endif
}

static inline void pe_pf_rest(pe_pf *c) {
#if PE_PF
  for (; c->off < c->len; c->off += 64) {
    PE_PREFETCH(c->k + c->off);
    PE_PREFETCH(c->v + c->off);
  }
#else
  (void)c;
#endif
}

#if !DEC
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
     * position of the last valid row so that they never see an empty row.
     * VW rows at a time are encoded into Ot's space (zeroed below), where
     * the stores run along the row and vectorize, then transposed into
     * Qt; the row and its table rows 8 rows on are prefetched. */
    for (int r0 = 0; r0 < BQ; r0 += VW) {
      for (int l = 0; l < VW; ++l) {
        const int r = r0 + l;
        int h, i;
        if (r + 8 < BQ && pe_row_of(&t, r + 8, &h, &i))
          pe_prefetch_enc_row(q + (((size_t)t.b * HQ + h) * SQ + i) * D,
                              QPOS0 + i, tc, ts, ta);
        if (pe_row_of(&t, r, &h, &i)) {
          const __global float *src =
              q + (((size_t)t.b * HQ + h) * SQ + i) * D;
          rpos[r] = QPOS0 + i;
#if KIND == PE_KIND_BIAS
          rslope[r] = slopes[h] * PE_LOG2E;
#endif
#define PE_STORE_Q(d, val) Of[l * D + (d)] = (val) * qscale
          PE_ENCODE_ROW(src, QPOS0 + i, PE_STORE_Q);
#undef PE_STORE_Q
        } else {
          rpos[r] = t.pmax;
#if KIND == PE_KIND_BIAS
          rslope[r] = 0.0f;
#endif
          for (int d = 0; d < D; ++d) Of[l * D + d] = 0.0f;
        }
      }
      for (int d = 0; d < D; ++d) {
        __local float *qv = Qf + PE_GM(d, r0, D);
        for (int l = 0; l < VW; ++l) qv[l] = Of[l * D + d];
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
      /* the next tile's K' (or K) and V rows, over this tile's steps
       * (against no prefetch, interleaved runs on PoCL, median of 5:
       * causal L = 4096 1.02x, GQA 32/8 1.05x, L = 1024 1.05x) */
      pe_pf pf = pe_pf_rows(kh, vh, k0 + BK,
                            kt + 1 < t.kt1 ? min(BK, SKV - k0 - BK) : 0,
                            NV / RB * (BK / KB + DP / DB));
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
          pe_pf_step(&pf);
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
          pe_pf_step(&pf);
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
      pe_pf_rest(&pf);
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
#endif /* !DEC */

#if DEC
/* ---- decode (SQ == 1) ---------------------------------------------------
 * pe_decode_cpu: one work-item per work-group, persistent over (batch,
 * head group, split) items like pe_attn_cpu; the HPT query heads of a kv
 * head run together, so each K row is encoded and each K'/V row read once
 * for all of them.  Vectors run along head_dim (the row tiles of
 * pe_attn_cpu would leave most lanes of a row vector empty with one query
 * row per head): the logits of four heads on two keys a step (8
 * accumulators, one 4-way reduction per four dot products), P V for four
 * heads with each V vector loaded once -- the shapes of the openmp
 * backend's decode kernels.  Same arguments as pe_attn_cpu; writes O, or
 * with NSPLIT > 1 the partials pe_combine merges. */
#define DVP ((D + VW - 1) / VW * VW) /* Q'/K'/O rows, zero padded */
/* P V reads the V rows in place (global memory, the spread prefetch
 * below having brought them in) rather than from a copy in __local: decode
 * 32768 keys, 32/8 heads, 1.04x [0.98-1.08] on PoCL (6 interleaved runs,
 * both orders, OMP_WAIT_POLICY=passive).  Needs rows of whole vectors, D
 * a multiple of VW; else the copy, zero padded.  (Before the prefetch,
 * reading V in place with 32-key blocks had waited on every line.) */
#ifndef PE_DEC_VPLACE
#define PE_DEC_VPLACE (D % VW == 0)
#endif
#if PE_DEC_VPLACE && D % VW != 0
#error "PE_DEC_VPLACE needs D a multiple of VW"
#endif
#if PE_DEC_VPLACE
#define PE_DEC_VAS __global
#else
#define PE_DEC_VAS __local
#endif
#ifndef DBLK
/* keys per block: 8 (a float16 device: 16, the smallest multiple of VW).
 * With the spread prefetch below, 8 ran 1.09-1.23x faster than 8 without
 * it and about 1.1x faster than 16 and 32 with it (decode 32768 keys,
 * 32/8 heads, interleaved runs on PoCL); without prefetch 16, 32 and 64
 * had measured alike. */
#define DBLK (VW > 8 ? VW : 8)
#endif
#if DBLK % VW != 0
#error "DBLK must be a multiple of VW"
#endif

/* (sum a, sum b, sum c, sum e) */
static inline float4 pe_hsum4_8(float8 a, float8 b, float8 c, float8 e) {
  const float8 x = (float8)(a.s02, b.s02, a.s46, b.s46) +
                   (float8)(a.s13, b.s13, a.s57, b.s57);
  const float8 y = (float8)(c.s02, e.s02, c.s46, e.s46) +
                   (float8)(c.s13, e.s13, c.s57, e.s57);
  const float8 z = (float8)(x.s02, y.s02, x.s46, y.s46) +
                   (float8)(x.s13, y.s13, x.s57, y.s57);
  return z.lo + z.hi;
}

static inline float4 pe_hsum4(VT a, VT b, VT c, VT e) {
#if VW == 16
  return pe_hsum4_8(a.lo + a.hi, b.lo + b.hi, c.lo + c.hi, e.lo + e.hi);
#elif VW == 8
  return pe_hsum4_8(a, b, c, e);
#else
  const float4 x = (float4)(a.s02, b.s02) + (float4)(a.s13, b.s13);
  const float4 y = (float4)(c.s02, e.s02) + (float4)(c.s13, e.s13);
  return (float4)(x.s02, y.s02) + (float4)(x.s13, y.s13);
#endif
}

static inline float pe_hsum(VT a) {
#if VW == 16
  a.lo += a.hi;
  const float8 b = a.lo;
#elif VW == 8
  const float8 b = a;
#endif
#if VW >= 8
  const float4 c = b.lo + b.hi;
#else
  const float4 c = a;
#endif
  return c.s0 + c.s1 + c.s2 + c.s3;
}

/* logits of four heads (q rows DVP apart) on cnt keys: p[h][n] */
static inline void pe_dec_scores4(const __local float *qd, const __local float *kd,
                           int cnt, __local float *p, pe_pf *pf) {
  for (int n = 0; n < cnt; n += 2) {
    pe_pf_step(pf);
    const __local float *k0 = kd + n * DVP;
    const __local float *k1 = n + 1 < cnt ? k0 + DVP : k0;
    VT a0 = 0.0f, a1 = 0.0f, a2 = 0.0f, a3 = 0.0f;
    VT b0 = 0.0f, b1 = 0.0f, b2 = 0.0f, b3 = 0.0f;
    for (int j = 0; j < DVP / VW; ++j) {
      const VT x0 = VLOADF(j, k0), x1 = VLOADF(j, k1);
      VT qv = VLOADF(j, qd);
      a0 = fma(qv, x0, a0);
      b0 = fma(qv, x1, b0);
      qv = VLOADF(j, qd + DVP);
      a1 = fma(qv, x0, a1);
      b1 = fma(qv, x1, b1);
      qv = VLOADF(j, qd + 2 * DVP);
      a2 = fma(qv, x0, a2);
      b2 = fma(qv, x1, b2);
      qv = VLOADF(j, qd + 3 * DVP);
      a3 = fma(qv, x0, a3);
      b3 = fma(qv, x1, b3);
    }
    const float4 r0 = pe_hsum4(a0, a1, a2, a3);
    p[n] = r0.s0;
    p[DBLK + n] = r0.s1;
    p[2 * DBLK + n] = r0.s2;
    p[3 * DBLK + n] = r0.s3;
    if (n + 1 < cnt) {
      const float4 r1 = pe_hsum4(b0, b1, b2, b3);
      p[n + 1] = r1.s0;
      p[DBLK + n + 1] = r1.s1;
      p[2 * DBLK + n + 1] = r1.s2;
      p[3 * DBLK + n + 1] = r1.s3;
    }
  }
}

static inline void pe_dec_scores1(const __local float *qd, const __local float *kd,
                           int cnt, __local float *p, pe_pf *pf) {
  for (int n = 0; n < cnt; ++n) {
    pe_pf_step(pf);
    VT a = 0.0f;
    for (int j = 0; j < DVP / VW; ++j)
      a = fma(VLOADF(j, qd), VLOADF(j, kd + n * DVP), a);
    p[n] = pe_hsum(a);
  }
}

/* o[h][d] += sum_n p[h][n] V[n][d] for four heads (o rows DVP apart, p
 * rows DBLK apart) from the block's V rows vd, DVP apart (in place, or
 * the zero-padded copy): two vectors of four heads a step, each V vector
 * loaded once. */
static inline void pe_dec_pv4(__local float *o, const __local float *p,
                       const PE_DEC_VAS float *vd, int cnt, pe_pf *pf) {
  int j = 0;
  for (; j + 2 * VW <= DVP; j += 2 * VW) {
    pe_pf_step(pf);
    VT a0 = VLOADF(0, o + j), a1 = VLOADF(0, o + DVP + j),
       a2 = VLOADF(0, o + 2 * DVP + j), a3 = VLOADF(0, o + 3 * DVP + j);
    VT b0 = VLOADF(0, o + j + VW), b1 = VLOADF(0, o + DVP + j + VW),
       b2 = VLOADF(0, o + 2 * DVP + j + VW),
       b3 = VLOADF(0, o + 3 * DVP + j + VW);
    for (int n = 0; n < cnt; ++n) {
      const VT v0 = VLOADF(0, vd + n * DVP + j);
      const VT v1 = VLOADF(0, vd + n * DVP + j + VW);
      VT pb = (VT)(p[n]);
      a0 = fma(pb, v0, a0);
      b0 = fma(pb, v1, b0);
      pb = (VT)(p[DBLK + n]);
      a1 = fma(pb, v0, a1);
      b1 = fma(pb, v1, b1);
      pb = (VT)(p[2 * DBLK + n]);
      a2 = fma(pb, v0, a2);
      b2 = fma(pb, v1, b2);
      pb = (VT)(p[3 * DBLK + n]);
      a3 = fma(pb, v0, a3);
      b3 = fma(pb, v1, b3);
    }
    PE_CAT(vstore, VW)(a0, 0, o + j);
    PE_CAT(vstore, VW)(a1, 0, o + DVP + j);
    PE_CAT(vstore, VW)(a2, 0, o + 2 * DVP + j);
    PE_CAT(vstore, VW)(a3, 0, o + 3 * DVP + j);
    PE_CAT(vstore, VW)(b0, 0, o + j + VW);
    PE_CAT(vstore, VW)(b1, 0, o + DVP + j + VW);
    PE_CAT(vstore, VW)(b2, 0, o + 2 * DVP + j + VW);
    PE_CAT(vstore, VW)(b3, 0, o + 3 * DVP + j + VW);
  }
  if (j < DVP) { /* an odd number of vectors: the last one */
    VT a0 = VLOADF(0, o + j), a1 = VLOADF(0, o + DVP + j),
       a2 = VLOADF(0, o + 2 * DVP + j), a3 = VLOADF(0, o + 3 * DVP + j);
    for (int n = 0; n < cnt; ++n) {
      const VT v0 = VLOADF(0, vd + n * DVP + j);
      a0 = fma((VT)(p[n]), v0, a0);
      a1 = fma((VT)(p[DBLK + n]), v0, a1);
      a2 = fma((VT)(p[2 * DBLK + n]), v0, a2);
      a3 = fma((VT)(p[3 * DBLK + n]), v0, a3);
    }
    PE_CAT(vstore, VW)(a0, 0, o + j);
    PE_CAT(vstore, VW)(a1, 0, o + DVP + j);
    PE_CAT(vstore, VW)(a2, 0, o + 2 * DVP + j);
    PE_CAT(vstore, VW)(a3, 0, o + 3 * DVP + j);
  }
}

static inline void pe_dec_pv1(__local float *o, const __local float *p,
                       const PE_DEC_VAS float *vd, int cnt, pe_pf *pf) {
  for (int j = 0; j < DVP / VW; ++j) {
    pe_pf_step(pf);
    VT a = VLOADF(j, o);
    for (int n = 0; n < cnt; ++n)
      a = fma((VT)(p[n]), VLOADF(j, vd + n * DVP), a);
    PE_CAT(vstore, VW)(a, j, o);
  }
}

__kernel __attribute__((reqd_work_group_size(1, 1, 1))) void
pe_decode_cpu(__global const float *restrict q,
              __global const float *restrict k,
              __global const float *restrict v,
              __global const float *restrict tc,
              __global const float *restrict ts,
              __global const float *restrict ta,
              __global const float *restrict slopes,
              __global float *restrict out, __global float *restrict ml,
              const float qscale, __global int *restrict next) {
  __local float Qd[HPT * DVP];  /* q' of the heads, scaled, log2 units */
  __local float Kd[DBLK * DVP]; /* K' of a key block */
#if !PE_DEC_VPLACE
  __local float Vd[DBLK * DVP]; /* its V rows, zero padded */
#endif
  __local float Pd[HPT * DBLK]; /* logits, then probabilities */
  __local float Od[HPT * DVP];  /* unnormalised outputs */
  __local float md[HPT], ld[HPT];

  (void)tc;
  (void)ts;
  (void)ta;
  (void)slopes;
  const int pq = QPOS0; /* the query's table row */

  for (;;) {
    const int gi = atomic_inc(next);
    if (gi >= PE_NGROUPS) break;
    const pe_tile t = pe_tile_of(gi);

    for (int hl = 0; hl < HPT; ++hl) {
      const int h = t.hg * HPT + hl;
      const __global float *src = q + ((size_t)t.b * HQ + h) * D;
#define PE_STORE_Q(d, val) Qd[hl * DVP + (d)] = (val) * qscale
      PE_ENCODE_ROW(src, pq, PE_STORE_Q);
#undef PE_STORE_Q
      for (int d = D; d < DVP; ++d) Qd[hl * DVP + d] = 0.0f;
      for (int d = 0; d < DVP; ++d) Od[hl * DVP + d] = 0.0f;
      md[hl] = -INFINITY;
      ld[hl] = 0.0f;
    }
    /* the split's keys; the one query (last row) sees every key up to
     * itself, and with a window only the last WINDOW of them */
    int klo = t.kt0 * BK;
    const int khi = min(t.kt1 * BK, SKV);
#if WINDOW > 0
    klo = max(klo, pq - (WINDOW - 1));
#endif
    const __global float *kh = k + ((size_t)t.b * HKV + t.hk) * SKV * D;
    const __global float *vh = v + ((size_t)t.b * HKV + t.hk) * SKV * D;

    for (int n0 = klo; n0 < khi; n0 += DBLK) {
      const int cnt = min(DBLK, khi - n0);
      /* the next block's rows, over the steps of the loops below */
      pe_pf pf = pe_pf_rows(kh, vh, n0 + DBLK, min(DBLK, khi - n0 - DBLK),
                            HPT / 4 * ((cnt + 1) / 2 + DVP / (2 * VW)) +
                                HPT % 4 * (cnt + DVP / VW));
      /* K' rows of the block into __local, encoded, row by row (and
       * without PE_DEC_VPLACE the V rows beside them: two sequential
       * streams) */
      for (int n = 0; n < cnt; ++n) {
        const __global float *ksrc = kh + (size_t)(n0 + n) * D;
#define PE_STORE_K(d, val) Kd[n * DVP + (d)] = (val)
        PE_ENCODE_ROW(ksrc, n0 + n, PE_STORE_K);
#undef PE_STORE_K
        for (int d = D; d < DVP; ++d) Kd[n * DVP + d] = 0.0f;
#if !PE_DEC_VPLACE
        const __global float *vsrc = vh + (size_t)(n0 + n) * D;
        for (int d = 0; d < D; ++d) Vd[n * DVP + d] = vsrc[d];
        for (int d = D; d < DVP; ++d) Vd[n * DVP + d] = 0.0f;
#endif
      }
#if PE_DEC_VPLACE
      const __global float *vd = vh + (size_t)n0 * D; /* DVP == D */
#else
      const __local float *vd = Vd;
#endif
      int hl = 0;
      for (; hl + 4 <= HPT; hl += 4)
        pe_dec_scores4(Qd + hl * DVP, Kd, cnt, Pd + hl * DBLK, &pf);
      for (; hl < HPT; ++hl)
        pe_dec_scores1(Qd + hl * DVP, Kd, cnt, Pd + hl * DBLK, &pf);

      /* online softmax per head, base 2 */
      for (hl = 0; hl < HPT; ++hl) {
        __local float *s = Pd + hl * DBLK;
#if KIND == PE_KIND_BIAS
        /* logit += -slope * (pq - pk), in log2 units */
        const float sl = slopes[t.hg * HPT + hl] * PE_LOG2E;
        for (int n = 0; n < cnt; ++n) s[n] = fma(sl, (float)(n0 + n - pq), s[n]);
#endif
        float mx = md[hl];
        for (int n = 0; n < cnt; ++n) mx = fmax(mx, s[n]);
        for (int n = cnt; n < DBLK; ++n) s[n] = -INFINITY;
        const float ms = isinf(mx) ? 0.0f : mx;
        if (mx != md[hl]) { /* a new maximum: rescale (rarely, after the
                             * first blocks; the exp is skipped otherwise) */
          const float al = pe_exp2_neg((VT)(md[hl] - ms)).s0;
          for (int d = 0; d < DVP; ++d) Od[hl * DVP + d] *= al;
          ld[hl] *= al;
        }
        VT ls = 0.0f;
        for (int n = 0; n < DBLK / VW; ++n) {
          const VT pr = pe_exp2_neg(VLOADF(n, s) - (VT)(ms));
          PE_CAT(vstore, VW)(pr, n, s);
          ls += pr;
        }
        ld[hl] += pe_hsum(ls);
        md[hl] = mx;
      }

      for (hl = 0; hl + 4 <= HPT; hl += 4)
        pe_dec_pv4(Od + hl * DVP, Pd + hl * DBLK, vd, cnt, &pf);
      for (; hl < HPT; ++hl)
        pe_dec_pv1(Od + hl * DVP, Pd + hl * DBLK, vd, cnt, &pf);
      pe_pf_rest(&pf);
    }

    for (int hl = 0; hl < HPT; ++hl) {
      const size_t row = (size_t)t.b * HQ + t.hg * HPT + hl; /* SQ == 1 */
#if NSPLIT == 1
      const float inv = ld[hl] > 0.0f ? 1.0f / ld[hl] : 0.0f;
      for (int d = 0; d < D; ++d) out[row * D + d] = Od[hl * DVP + d] * inv;
#else
      const size_t prow = (size_t)t.sp * ((size_t)B * HQ) + row;
      for (int d = 0; d < D; ++d) out[prow * D + d] = Od[hl * DVP + d];
      ml[prow * 2] = md[hl];
      ml[prow * 2 + 1] = ld[hl];
#endif
    }
  }
}
#endif /* DEC */
