/* openmp backend: the kernels, written once over a small vector layer and
 * compiled per ISA by kern_scalar.c, kern_avx2.c and kern_avx512.c.
 *
 * The including file defines, before including this one:
 *   VF                  the vector type (float for the scalar path)
 *   W                   floats per vector
 *   MR, NV              micro-tile: MR broadcast rows x NV vectors
 *   VZERO() VSET1(x) VLOAD(p) VSTORE(p, v) VBCAST(p)
 *   VFMA(a, b, c) = a*b + c, VMUL VADD VSUB VMAX, VHSUM(v), VHMAX(v)
 *   VEXP2(x) = 2^x for x <= 0 (every use: a score minus a running
 *     maximum): 0, never NaN, for -inf; below about -126 it may be 0
 *   optionally VHSUM4(a, b, c, e, out): out[0..3] = VHSUM of each
 *   optionally DEC_ROT_REGS 1: decode rotates K in registers inside the
 *     logit loop (dec_scores_rot) instead of into K' rows first
 *   optionally VROT_PAIRS(x, c, s): W/2 interleaved rotary pairs
 *   optionally VSTREAM(p, v) (non-temporal store to 64-byte aligned p)
 *     and VSFENCE()
 *   optionally VTRANSPOSE(src, ss, dst, ds, scale): dst[k][j] =
 *     src[j][k] * scale[k] for a W x W block (W must equal QROWS)
 *   KERNELS_NAME        the omp_kernels object to define
 *   KERNELS_STR         its option value, KERNELS_DETAIL its description
 * and has every system header it needs included already (clang's
 * `pragma clang attribute` applies to everything that follows).
 *
 * Attention works on the transposed score tile S^T = K' Q'^T (rows: keys,
 * columns: queries), so that
 *   - Q' is packed once per unit (rotated, scaled, transposed: Qt[d][i]),
 *   - K' is used row-major as it comes (NONE, BIAS) or after a contiguous
 *     rotate of the key block into scratch (ROTARY, ADDITIVE): the encoding
 *     is fused into the attention pass, no rotated copy of K is written,
 *   - the online softmax is column-wise, i.e. plain element-wise vector
 *     max/exp/sum with no horizontal reductions,
 *   - O is accumulated transposed (Ot[d][i] += V[n][d] * P^T[n][i]) with
 *     V read in place through broadcasts, so any head_dim works untouched.
 * Both products are MR x (NV*W) register-blocked outer-product kernels.
 * Scores are in the base-2 domain: Q' carries softmax_scale * log2(e), the
 * ALiBi slope carries log2(e), and the softmax uses 2^x.  Everything
 * accumulates in float32 (NUMERICS.md: float32 or better). */

#define OMP_ALWAYS_INLINE inline __attribute__((always_inline))
#define OMP_ALIGN 16u /* floats: 64 bytes */
#ifndef DEC_BLOCK
/* decode: keys per sub-block (a multiple of W).  With the four-head
 * kernels and 8 keys of prefetch, 16 measured about 1.06x faster than 32
 * at L = 32768 (8 alike, 64 no better than 32); with the prefetch spread
 * over the arithmetic (pf_cursor), 32 no better than 16 */
#define DEC_BLOCK 16u
#endif

/* Fully unroll the small loops over the micro-tile and a row's vectors (so the accumulators
 * live in registers). */
#if defined(__clang__)
#define PRAGMA_UNROLL _Pragma("clang loop unroll(full)")
#else
#define PRAGMA_UNROLL _Pragma("GCC unroll 16")
#endif

static size_t round_up(size_t x, size_t m) { return (x + m - 1) / m * m; }

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

/* Row stride of packed K rows and of the decode buffers. */
static uint32_t padded_dim(const omp_plan *p) { return OMP_PADDED_DIM(p->d); }

/* The positional encoding of one row: y = scale * enc(x) at table row
 * `trow` (NUMERICS.md "Scheme kinds").  ROTARY tables already carry the
 * attention factor a; dims R..D-1 pass through (times `scale` only).
 * `scaled` = 0 leaves the vector multiplies by scale out (rot_row). */
/* One neox pair of vectors rotated by angle (c, s): r1 = x1 c - x2 s,
 * r2 = x2 c + x1 s.  rot_row_as and decode's in-register rotation
 * (dec_scores_rot) both use it, so K' is rounded the same either way. */
static OMP_ALWAYS_INLINE void rot_pair(VF x1, VF x2, VF c, VF s, VF *r1,
                                       VF *r2) {
  *r1 = VSUB(VMUL(x1, c), VMUL(x2, s));
  *r2 = VFMA(x1, s, VMUL(x2, c));
}

#define ROT_SCALE(v) (scaled ? VMUL((v), vs) : (v))
#ifdef VSTREAM
#define ROT_STORE(q, v) (nt ? VSTREAM((q), (v)) : VSTORE((q), (v)))
#else
#define ROT_STORE(q, v) VSTORE((q), (v))
#endif
/* The neox rotation of a whole row of 2 nh vectors (nh <= 4; R = D),
 * every vector loaded front to back before any pair is rotated: the row
 * then streams in address order, not as dims j and j + R/2 at a time.
 * op = encode 1.08-1.09x faster (5 of 5 interleaved rounds, 32 heads x
 * 8192, D = 128, 2 threads, AVX-512 Zen 5; stores in address order as
 * well: 0.98-1.0x); decode's logits and encode_whole_rows read rows the
 * same way. */
static OMP_ALWAYS_INLINE void rot_row_whole(const float *x, const float *c,
                                            const float *s, float *y, VF vs,
                                            const int scaled, const int nt,
                                            const uint32_t nh) {
  VF xv[8];
  (void)nt;
  PRAGMA_UNROLL for (uint32_t v = 0; v < 2 * nh; v++) xv[v] = VLOAD(x + v * W);
  PRAGMA_UNROLL for (uint32_t v = 0; v < nh; v++) {
    VF r1, r2;
    rot_pair(xv[v], xv[v + nh], VLOAD(c + v * W), VLOAD(s + v * W), &r1, &r2);
    ROT_STORE(y + v * W, ROT_SCALE(r1));
    ROT_STORE(y + (v + nh) * W, ROT_SCALE(r2));
  }
}

/* R/2 in vectors when rot_row_whole takes p's rotary rows (neox pairs
 * over the whole head_dim, at most 4 vectors a half), else 0. */
static uint32_t whole_row_nh(const omp_plan *p) {
  const int whole = p->kind == PE_KIND_ROTARY && !p->interleaved &&
                    2 * p->rot_half == p->d && p->rot_half % W == 0 &&
                    p->rot_half <= 4 * W;
  return whole ? p->rot_half / W : 0;
}

static OMP_ALWAYS_INLINE void rot_row_as(const omp_plan *p, const float *x,
                                         uint64_t trow, float scale,
                                         float *y, const int scaled,
                                         const int nt) {
  const uint32_t d = p->d;
  uint32_t j = 0;
  const VF vs = VSET1(scale);
  (void)nt; /* unused where the path has no VSTREAM */
  if (p->kind == PE_KIND_ROTARY) {
    const uint32_t half = p->rot_half;
    const float *c = p->cos + trow * half;
    const float *s = p->sin + trow * half;
    if (!p->interleaved) { /* pair j = dims (j, j + R/2) */
      switch (whole_row_nh(p)) {
      case 1: rot_row_whole(x, c, s, y, vs, scaled, nt, 1); return;
      case 2: rot_row_whole(x, c, s, y, vs, scaled, nt, 2); return;
      case 3: rot_row_whole(x, c, s, y, vs, scaled, nt, 3); return;
      case 4: rot_row_whole(x, c, s, y, vs, scaled, nt, 4); return;
      default: break; /* 0: the halves a vector at a time, below */
      }
      for (; j + W <= half; j += W) {
        VF r1, r2;
        rot_pair(VLOAD(x + j), VLOAD(x + j + half), VLOAD(c + j),
                 VLOAD(s + j), &r1, &r2);
        ROT_STORE(y + j, ROT_SCALE(r1));
        ROT_STORE(y + j + half, ROT_SCALE(r2));
      }
      for (; j < half; j++) {
        float x1 = x[j], x2 = x[j + half];
        y[j] = (x1 * c[j] - x2 * s[j]) * scale;
        y[j + half] = (x2 * c[j] + x1 * s[j]) * scale;
      }
    } else { /* pair j = dims (2j, 2j + 1) */
#ifdef VROT_PAIRS
      for (; j + W / 2 <= half; j += W / 2)
        ROT_STORE(y + 2 * j,
               ROT_SCALE(VROT_PAIRS(VLOAD(x + 2 * j), c + j, s + j)));
#endif
      for (; j < half; j++) {
        float x1 = x[2 * j], x2 = x[2 * j + 1];
        y[2 * j] = (x1 * c[j] - x2 * s[j]) * scale;
        y[2 * j + 1] = (x2 * c[j] + x1 * s[j]) * scale;
      }
    }
    j = 2 * half;
    if (j % W == 0)
      for (; j + W <= d; j += W) ROT_STORE(y + j, ROT_SCALE(VLOAD(x + j)));
    for (; j < d; j++) y[j] = x[j] * scale;
  } else if (p->kind == PE_KIND_ADDITIVE) {
    const float *a = p->add + trow * d;
    for (; j + W <= d; j += W)
      ROT_STORE(y + j, ROT_SCALE(VADD(VLOAD(x + j), VLOAD(a + j))));
    for (; j < d; j++) y[j] = (x[j] + a[j]) * scale;
  } else {
    for (; j + W <= d; j += W) ROT_STORE(y + j, ROT_SCALE(VLOAD(x + j)));
    for (; j < d; j++) y[j] = x[j] * scale;
  }
}

#undef ROT_SCALE
#undef ROT_STORE

/* K rows and op = encode rows have scale 1: x * 1 is exact, so leaving
 * the multiply out gives the same output bit for bit, and the neox
 * rotation drops 2 of its 7 arithmetic instructions per pair of vectors
 * (the interleaved one 1 of 3 per vector)
 * (decode at L = 32768, 32/8 heads, 2 threads, interleaved `pe-bench`
 * rounds: medians 1.020x of 8 and 1.035x of 6, all 0.985-1.087x; encode
 * 1.00x, being bound by memory). */
static void rot_row(const omp_plan *p, const float *x, uint64_t trow,
                    float scale, float *y) {
  if (scale == 1.0f)
    rot_row_as(p, x, trow, 1.0f, y, 0, 0);
  else
    rot_row_as(p, x, trow, scale, y, 1, 0);
}

/* K needs a rotated/added copy of each key block (else it is used in
 * place). */
static int k_needs_pack(const omp_plan *p) {
  return p->kind == PE_KIND_ROTARY || p->kind == PE_KIND_ADDITIVE;
}

/* Rows prefetched this many rows ahead of the one being encoded.  op =
 * encode: 8 measured 1.09-1.23x faster than none at 32 heads x 8192, 16
 * 1.12-1.19x, 32 1.09-1.14x, and prefetching the cos/sin rows too gained
 * nothing there; in a prefill unit's Q encoding the source row alone
 * gained nothing and the cos/sin rows with it did (prefill_unit). */
#define ENC_AHEAD 8u

static OMP_ALWAYS_INLINE void prefetch_row(const float *x, uint32_t d) {
  const char *c = (const char *)x;
  for (size_t off = 0; off < d * sizeof(float); off += 64)
    __builtin_prefetch(c + off, 0, 2);
}

/* The source row x and the table rows that rot_row reads for it. */
static OMP_ALWAYS_INLINE void prefetch_enc_row(const omp_plan *p,
                                               const float *x, uint64_t trow) {
  prefetch_row(x, p->d);
  if (p->kind == PE_KIND_ROTARY) {
    prefetch_row(p->cos + trow * p->rot_half, p->rot_half);
    prefetch_row(p->sin + trow * p->rot_half, p->rot_half);
  } else if (p->kind == PE_KIND_ADDITIVE) {
    prefetch_row(p->add + trow * p->d, p->d);
  }
}

/* ---------------------------------------------------------------- prefill */

/* Rows encoded together before their transpose into Qt. */
#define QROWS 8u
#if defined(VTRANSPOSE) && (NV * W) % QROWS != 0
#error "VTRANSPOSE works on QROWS x QROWS blocks inside one column group"
#endif

/* Scratch layout (floats, each part rounded to 64 bytes):
 *   Qt [bq/G][d][G], Ot [bq/G][d][G], S [bq/G][bk][G], Kp [bk][dp],
 *   m l alpha bias [bq], rows [QROWS][dp].
 * Qt, Ot and S^T are group-major: the G = NV*W query columns one
 * micro-kernel covers are contiguous, so each row of a group is one 64-byte
 * line (AVX2) and a group's slice is one contiguous run, not d lines at a
 * bq-float stride that pile into a few L1 sets. */
static size_t prefill_scratch(const omp_plan *p) {
  const size_t bq = p->bq, bk = p->bk, dp = padded_dim(p);
  return round_up(p->d * bq, OMP_ALIGN) * 2 + round_up(bk * bq, OMP_ALIGN) +
         bk * dp + 4 * round_up(bq, OMP_ALIGN) + QROWS * dp;
}

/* The micro-kernels' reduction loops, unrolled OMP_INNER_UNROLL times
 * (2: 5-10% faster long causal prefill than 1, 4 no better; interleaved
 * A/B runs, AVX2). */
#ifndef OMP_INNER_UNROLL
#define OMP_INNER_UNROLL 2
#endif
#define OMP_PRAGMA_(x) _Pragma(#x)
#define OMP_PRAGMA(x) OMP_PRAGMA_(x) /* x macro-expanded first */
#if defined(__clang__)
#define PRAGMA_UNROLL_INNER OMP_PRAGMA(clang loop unroll_count(OMP_INNER_UNROLL))
#else
#define PRAGMA_UNROLL_INNER OMP_PRAGMA(GCC unroll OMP_INNER_UNROLL)
#endif

/* S^T[r][0..NV*W) = sum_dd K'[r][dd] * Qt[dd][i..] for `nr` key rows;
 * cmax[v] = max(cmax[v], the tile's column maxima) on the way out, which
 * saves the softmax a pass over S^T where no mask or bias follows. */
static OMP_ALWAYS_INLINE void qk_tile(const int nr, const float *kp,
                                      size_t kstride, const float *qt,
                                      size_t bq, uint32_t d, float *s,
                                      VF *cmax) {
  VF acc[MR][NV];
  PRAGMA_UNROLL for (int r = 0; r < nr; r++) {
    PRAGMA_UNROLL for (int v = 0; v < NV; v++) acc[r][v] = VZERO();
  }
  PRAGMA_UNROLL_INNER
  for (uint32_t dd = 0; dd < d; dd++) {
    VF qv[NV];
    PRAGMA_UNROLL for (int v = 0; v < NV; v++) qv[v] =
        VLOAD(qt + dd * bq + v * W);
    PRAGMA_UNROLL for (int r = 0; r < nr; r++) {
      VF kb = VBCAST(kp + r * kstride + dd);
      PRAGMA_UNROLL for (int v = 0; v < NV; v++) acc[r][v] =
          VFMA(kb, qv[v], acc[r][v]);
    }
  }
  PRAGMA_UNROLL for (int r = 0; r < nr; r++) {
    PRAGMA_UNROLL for (int v = 0; v < NV; v++)
        VSTORE(s + r * bq + v * W, acc[r][v]);
  }
  PRAGMA_UNROLL for (int v = 0; v < NV; v++) {
    VF m = cmax[v];
    PRAGMA_UNROLL for (int r = 0; r < nr; r++) m = VMAX(m, acc[r][v]);
    cmax[v] = m;
  }
}

/* Ot[dd0 + r][i..] = alpha * Ot[..] + sum_n V[n][dd0 + r] * P^T[n][i..]
 * for `nr` dims. */
static OMP_ALWAYS_INLINE void pv_tile(const int nr, const float *pt,
                                      size_t bq, const float *vp, size_t vs,
                                      uint32_t nk, const float *alpha,
                                      float *ot) {
  VF acc[MR][NV], al[NV];
  PRAGMA_UNROLL for (int v = 0; v < NV; v++) al[v] = VLOAD(alpha + v * W);
  PRAGMA_UNROLL for (int r = 0; r < nr; r++) {
    PRAGMA_UNROLL for (int v = 0; v < NV; v++) acc[r][v] =
        VMUL(VLOAD(ot + r * bq + v * W), al[v]);
  }
  PRAGMA_UNROLL_INNER
  for (uint32_t n = 0; n < nk; n++) {
    VF pv[NV];
    PRAGMA_UNROLL for (int v = 0; v < NV; v++) pv[v] =
        VLOAD(pt + n * bq + v * W);
    PRAGMA_UNROLL for (int r = 0; r < nr; r++) {
      VF vb = VBCAST(vp + (size_t)n * vs + r);
      PRAGMA_UNROLL for (int v = 0; v < NV; v++) acc[r][v] =
          VFMA(vb, pv[v], acc[r][v]);
    }
  }
  PRAGMA_UNROLL for (int r = 0; r < nr; r++) {
    PRAGMA_UNROLL for (int v = 0; v < NV; v++)
        VSTORE(ot + r * bq + v * W, acc[r][v]);
  }
}

/* Rows [0, len) as tiles: full MR-row tiles, except that a remainder
 * shorter than MR is merged with the last full tile and the two split
 * evenly (D = 128 with MR = 6: 20 tiles of 6, then 4 + 4, rather than a
 * 2-row tile that cannot keep the FMA pipes busy). */
static uint32_t full_tiles(uint32_t len) {
  const uint32_t full = len / MR, rem = len % MR;
  return rem && full ? full - 1 : full;
}

/* The next tile of a tail of `rest` rows (rest < 2 MR). */
static uint32_t tail_tile(uint32_t rest) {
  return rest > MR ? (rest + 1) / 2 : rest;
}

/* Dispatch a row count 1..MR to its constant-folded instance. */
#if MR > 12
#error "MR > 12 not supported by the dispatch below"
#endif
#define TILE_CASE(n, CALL)                                                   \
  case n:                                                                    \
    CALL(n);                                                                 \
    break;
#define TILE_SWITCH(nr, CALL)                                                \
  switch (nr) {                                                              \
    TILE_CASE(1, CALL)                                                       \
    TILE_CASES_2(CALL)                                                       \
  default:                                                                   \
    break;                                                                   \
  }
#define TILE_CASES_2(CALL) TC_IF(2, CALL) TC_IF(3, CALL) TC_IF(4, CALL)     \
  TC_IF(5, CALL) TC_IF(6, CALL) TC_IF(7, CALL) TC_IF(8, CALL)               \
  TC_IF(9, CALL) TC_IF(10, CALL) TC_IF(11, CALL) TC_IF(12, CALL)
/* Cases above MR compile to calls with nr > MR that are never taken; clamp
 * the constant so the accumulator arrays are never overrun. */
#define TC_IF(n, CALL) TILE_CASE(n, CALL)
#define TC_N(n) ((n) <= MR ? (n) : MR)

/* Software prefetch spread over arithmetic: up to PF_RUNS contiguous runs
 * of memory (the next key block's K/K'/V rows), `step` lines of each at
 * every pf_step that the compute loops take, the rest at pf_rest.
 *
 * Decode had issued its prefetches as one burst per key while K was
 * encoded: they stalled on the core's miss buffers and then left the
 * memory idle during the arithmetic (taking the logit and P V work away
 * made decode 1.44x faster).  Spread over the logit and P V loops, decode
 * ran 1.06-1.22x faster (L = 32768, 32/8 heads, 2 threads, interleaved
 * runs); prefetching during the encoding as well, two blocks ahead, or
 * front- or back-loaded measured slower. */
#define PF_RUNS 2
typedef struct pf_cursor {
  const char *run[PF_RUNS];
  size_t len[PF_RUNS]; /* bytes of each run */
  int nrun;
  size_t off, end; /* bytes done; the longest run */
  uint32_t step;   /* lines of each run per step */
} pf_cursor;
#define PF_NONE ((pf_cursor){{NULL}, {0}, 0, 0, 0, 1})

static void pf_add(pf_cursor *c, const float *x, size_t floats) {
  if (c->nrun == PF_RUNS || !floats) return;
  c->run[c->nrun] = (const char *)x;
  c->len[c->nrun] = floats * sizeof(float);
  if (c->len[c->nrun] > c->end) c->end = c->len[c->nrun];
  c->nrun++;
}

/* Spread the lines over `steps` pf_step calls. */
static void pf_spread(pf_cursor *c, size_t steps) {
  const size_t lines = (c->end + 63) / 64;
  c->step = steps ? (uint32_t)((lines + steps - 1) / steps) : 1;
  if (!c->step) c->step = 1;
}

/* Into every cache level (T0).  The T1 hint (2) had measured the same as
 * T0 on the AVX2 EPYC (Zen 3); on the AVX-512 EPYC (Zen 5) T0 made decode
 * 1.05x faster (3 of 3 interleaved rounds, L = 32768, 32/8 heads, 2
 * threads; 0.95-0.97x for NTA) and prefill alike (0.99-1.01x, L = 1024,
 * 4 rounds). */
#define PF_HINT 3
static OMP_ALWAYS_INLINE void pf_line(const pf_cursor *c) {
  for (int i = 0; i < c->nrun; i++)
    if (c->off < c->len[i])
      __builtin_prefetch(c->run[i] + c->off, 0, PF_HINT);
}

static OMP_ALWAYS_INLINE void pf_step(pf_cursor *c) {
  for (uint32_t i = 0; i < c->step && c->off < c->end; i++, c->off += 64)
    pf_line(c);
}

static void pf_rest(pf_cursor *c) {
  for (; c->off < c->end; c->off += 64) pf_line(c);
}

/* The first key that a unit whose first query sits at key row r0 sees
 * (NUMERICS.md "Attention": a window hides the keys before r0 - window
 * + 1). */
static int64_t unit_first_key(const omp_plan *p, int64_t r0) {
  return p->window ? max64(0, r0 - (int64_t)p->window + 1) : 0;
}

/* K' (or K) and V of the kv head that unit (b, h, q0)'s successor in the
 * run's order reads, and that unit's first key block [x0, x1): query block
 * q0 - bq of the same head, else the last of the next head (openmp.c
 * hands units out head-major, the last query block first). */
static void next_unit_first_block(const omp_plan *p, uint32_t b, uint32_t h,
                                  uint64_t q0, const float **xk,
                                  const float **xv, int64_t *x0, int64_t *x1) {
  uint64_t qn = q0;
  if (q0 >= p->bq) {
    qn = q0 - p->bq;
  } else {
    if (++h == p->hq) {
      h = 0;
      if (++b == p->batch) { /* none: nothing to prefetch */
        *x0 = *x1 = 0;
        return;
      }
    }
    qn = (p->sq - 1) / p->bq * p->bq;
  }
  const uint64_t dp = padded_dim(p);
  const uint64_t bkv = (uint64_t)b * p->hkv + h / p->group;
  *xk = p->kprime ? p->kprime + bkv * p->skv * dp : p->k + bkv * p->skv * p->d;
  *xv = p->v + bkv * p->skv * p->d;
  *x0 = unit_first_key(p, (int64_t)(p->skv - p->sq + qn));
  *x1 = min64(*x0 + (int64_t)p->bk, (int64_t)p->skv);
}

static void prefill_unit(const omp_plan *p, uint32_t b, uint32_t h,
                         uint64_t q0, uint32_t nq, float *scr) {
  const uint32_t d = p->d, dp = padded_dim(p);
  const size_t bq = p->bq, bk = p->bk;
  const uint32_t G = NV * W;
  float *qt = scr;
  float *ot = qt + round_up(d * bq, OMP_ALIGN);
  float *st = ot + round_up(d * bq, OMP_ALIGN);
  float *kp = st + round_up(bk * bq, OMP_ALIGN);
  float *mrow = kp + bk * dp;
  float *lrow = mrow + round_up(bq, OMP_ALIGN);
  float *alpha = lrow + round_up(bq, OMP_ALIGN);
  float *biasrow = alpha + round_up(bq, OMP_ALIGN);
  float *row = biasrow + round_up(bq, OMP_ALIGN);

  const uint32_t kvh = h / p->group;
  const float *qbase = p->q + ((uint64_t)b * p->hq + h) * p->sq * d;
  const float *kbase = p->k + ((uint64_t)b * p->hkv + kvh) * p->skv * d;
  const float *vbase = p->v + ((uint64_t)b * p->hkv + kvh) * p->skv * d;
  const int64_t skv = (int64_t)p->skv;
  const int64_t win = (int64_t)p->window;
  const int causal = p->causal != 0;
  /* query i of this unit sits at key-coordinate row r0 + i */
  const int64_t r0 = (int64_t)(p->skv - p->sq + q0);
  const int64_t r1 = r0 + nq;
  const size_t ncol = round_up(nq, G);
  const int bias = p->kind == PE_KIND_BIAS;
  const float slope2 = bias ? p->slopes2[h] : 0.0f;
  const int pack = k_needs_pack(p);
  /* K' encoded once per run by the pre-pass (see openmp.c), or NULL */
  const float *kpre =
      p->kprime ? p->kprime + ((uint64_t)b * p->hkv + kvh) * p->skv * dp
                : NULL;

  /* Q': encode and scale QROWS rows, then transpose them into Qt (each
   * Qt row gets QROWS consecutive floats); zero the padding columns.  The
   * Q row and its cos/sin rows ENC_AHEAD rows on are prefetched: 1.02-
   * 1.05x faster causal prefill at L = 1024 (10 interleaved runs, 1 and 2
   * threads; the encoding had waited on those loads, 4% of the run),
   * within noise at 4096, where there is 4x more attention per Q row;
   * the Q row alone gained nothing. */
  for (uint32_t i0 = 0; i0 < nq; i0 += QROWS) {
    const uint32_t nr = nq - i0 < QROWS ? nq - i0 : QROWS;
    for (uint32_t r = 0; r < nr; r++) {
      const uint32_t i = i0 + r;
      if (i + ENC_AHEAD < nq)
        prefetch_enc_row(p, qbase + (q0 + i + ENC_AHEAD) * d,
                         (uint64_t)(r0 + i + ENC_AHEAD));
      rot_row(p, qbase + (q0 + i) * d, (uint64_t)(r0 + i), p->qscale,
              row + (size_t)r * dp);
    }
    uint32_t dd0 = 0;
#ifdef VTRANSPOSE
    /* whole QROWS x QROWS blocks, the rows all in one column group */
    if (nr == QROWS)
      for (; dd0 + QROWS <= d; dd0 += QROWS)
        VTRANSPOSE(row + dd0, dp, qt + (size_t)(i0 / G) * d * G +
                   (size_t)dd0 * G + i0 % G, G, NULL);
#endif
    for (uint32_t r = 0; r < nr; r++) {
      const uint32_t i = i0 + r;
      float *col = qt + (size_t)(i / G) * d * G + i % G;
      for (uint32_t dd = dd0; dd < d; dd++)
        col[(size_t)dd * G] = row[(size_t)r * dp + dd];
    }
  }
  for (size_t i = nq; i < ncol; i++) {
    float *col = qt + (i / G) * d * G + i % G;
    for (uint32_t dd = 0; dd < d; dd++) col[(size_t)dd * G] = 0.0f;
  }
  for (size_t i = 0; i < (size_t)d * ncol; i++) ot[i] = 0.0f;
  for (size_t i = 0; i < ncol; i++) {
    mrow[i] = -INFINITY;
    lrow[i] = 0.0f;
    biasrow[i] = -slope2 * (float)i;
  }

  /* Keys any query of the unit sees (NUMERICS.md "Attention"). */
  const int64_t nlo = unit_first_key(p, r0);
  int64_t nhi = skv;
  if (win && !causal) nhi = min64(skv, r1 - 1 + win);
  if (causal) nhi = min64(nhi, r1);

  for (int64_t n0 = nlo; n0 < nhi; n0 += (int64_t)bk) {
    const int64_t n1 = min64(n0 + (int64_t)bk, nhi);
    const uint32_t nk = (uint32_t)(n1 - n0);
    const float *vblk = vbase + (uint64_t)n0 * d;
  
    /* K' of the block: from the pre-pass, encoded here into scratch
     * (k_encode = fused), or K itself (no encoding). */
    const float *kblk;
    size_t kstride;
    if (kpre) {
      kblk = kpre + (uint64_t)n0 * dp;
      kstride = dp;
    } else if (pack) {
      for (uint32_t n = 0; n < nk; n++) {
        const uint64_t key = (uint64_t)n0 + n;
        rot_row(p, kbase + key * d, key, 1.0f, kp + (size_t)n * dp);
      }
      kblk = kp;
      kstride = dp;
    } else {
      kblk = kbase + (uint64_t)n0 * d;
      kstride = d;
    }

    /* The next block's K' (pre-pass) or K and V rows are prefetched while
     * this block computes, a share per column group spread over its tiles
     * (pf_cursor; measured faster than leaving it to the hardware
     * prefetchers on long causal prefill, and spread 1.02-1.03x faster
     * than a burst per group at L = 4096, alike at 1024 and on GQA).  The
     * fused path's raw K rows too: 1.01-1.06x at L = 1024 (8 interleaved
     * runs), alike at 4096 and on GQA; its cos/sin rows as well measured
     * slower (0.93-1.0x at L = 1024 and GQA). */
    int64_t x0 = n1, x1 = min64(n1 + (int64_t)bk, nhi);
    const float *xk = kpre ? kpre : kbase, *xv = vbase;
    if (x0 >= nhi) {
      /* the last block: prefetch the first block of the unit that comes
       * next in the run's order, the same head's query block before
       * (its keys from nlo, a block that has left the caches since this
       * unit read it), or the next head's last */
      next_unit_first_block(p, b, h, q0, &xk, &xv, &x0, &x1);
    }
    const size_t ngroups = ncol / G;
    const int64_t xper = (x1 - x0 + (int64_t)ngroups - 1) / (int64_t)ngroups;

    /* One column group (G queries) at a time: S^T slice, mask, softmax and
     * P^T V, all on the keys of the block this group can see. */
    for (size_t i = 0; i < ncol; i += G) {
      pf_cursor pf = PF_NONE;
      {
        const int64_t xa = x0 + (int64_t)(i / G) * xper;
        const size_t nx = xa < x1 ? (size_t)(min64(xa + xper, x1) - xa) : 0;
        const size_t kst = kpre ? dp : d; /* K' rows are padded */
        pf_add(&pf, xk + (uint64_t)xa * kst, nx * kst);
        pf_add(&pf, xv + (uint64_t)xa * d, nx * d);
      }
      const int64_t ga = r0 + (int64_t)i;                  /* first row */
      const int64_t gb = min64(r0 + (int64_t)i + G, r1) - 1; /* last real */
      if (gb < ga) {
        pf_rest(&pf);
        break;
      }
      int64_t ka = n0, ke = n1; /* keys [ka, ke) seen by some row */
      if (win) ka = max64(ka, ga - win + 1);
      if (causal)
        ke = min64(ke, gb + 1);
      else if (win)
        ke = min64(ke, gb + win);
      if (ka >= ke) { /* fully masked: m, l, Ot unchanged */
        pf_rest(&pf);
        continue;
      }
      const uint32_t a = (uint32_t)(ka - n0), e = (uint32_t)(ke - n0);
      pf_spread(&pf, full_tiles(e - a) + full_tiles(d));
      /* does every real row of the group see every key of [ka, ke)? */
      int full = 1;
      if (causal && ke - 1 > ga) full = 0;
      if (win && (gb - ka >= win || ke - 1 - ga >= win)) full = 0;
      float *sg = st + (i / G) * bk * G;
      const float *qg = qt + (i / G) * d * G;
      float *og = ot + (i / G) * d * G;

      /* S^T = K' Qt */
      VF cmax[NV];
      PRAGMA_UNROLL for (int v = 0; v < NV; v++) cmax[v] =
          VLOAD(mrow + i + v * W);
      {
        uint32_t n = a;
        const uint32_t nfull = full_tiles(e - a);
        for (uint32_t t = 0; t < nfull; t++, n += MR) {
          qk_tile(MR, kblk + n * kstride, kstride, qg, G, d, sg + n * G,
                  cmax);
          pf_step(&pf);
        }
        uint32_t rest = e - n;
        while (rest) {
          const uint32_t nr = tail_tile(rest);
#define QK_CALL(c)                                                           \
  qk_tile(TC_N(c), kblk + n * kstride, kstride, qg, G, d, sg + n * G, cmax)
          TILE_SWITCH(nr, QK_CALL)
#undef QK_CALL
          n += nr;
          rest -= nr;
        }
      }

      /* ALiBi bias, then the mask of partly visible tiles. */
      if (bias || !full) {
        for (uint32_t n = a; n < e; n++) {
          float *srow = sg + (size_t)n * G;
          const int64_t key = n0 + n;
          if (bias) {
            const VF base = VSET1(slope2 * (float)(key - r0));
            for (uint32_t c = 0; c < G; c += W)
              VSTORE(srow + c,
                     VADD(VLOAD(srow + c), VADD(base, VLOAD(biasrow + i + c))));
          }
          if (!full) {
            /* key `key` is seen by rows r with lo <= r < hi */
            int64_t lo = ga, hi = ga + G;
            if (causal)
              lo = max64(lo, key);
            else if (win)
              lo = max64(lo, key - win + 1);
            if (win) hi = min64(hi, key + win);
            if (lo > hi) lo = hi;
            for (int64_t r = ga; r < lo; r++) srow[r - ga] = -INFINITY;
            for (int64_t r = hi; r < ga + G; r++) srow[r - ga] = -INFINITY;
          }
        }
      }

      /* Online softmax, column-wise: m, l, alpha; S^T becomes P^T. */
      for (uint32_t c = 0; c < G; c += W) {
        const VF mo = VLOAD(mrow + i + c);
        VF mx = mo;
        if (bias || !full) {
          for (uint32_t n = a; n < e; n++)
            mx = VMAX(mx, VLOAD(sg + (size_t)n * G + c));
        } else {
          mx = cmax[c / W];
        }
        /* a column with no visible key yet keeps m = -inf; subtracting a
         * finite stand-in makes every 2^x exactly 0 instead of NaN */
        const VF ms = VMAX(mx, VSET1(-FLT_MAX));
        VF sum = VZERO();
        for (uint32_t n = a; n < e; n++) {
          float *sp = sg + (size_t)n * G + c;
          VF x = VEXP2(VSUB(VLOAD(sp), ms));
          VSTORE(sp, x);
          sum = VADD(sum, x);
        }
        const VF al = VEXP2(VSUB(mo, ms));
        VSTORE(alpha + i + c, al);
        VSTORE(lrow + i + c, VFMA(VLOAD(lrow + i + c), al, sum));
        VSTORE(mrow + i + c, mx);
      }

      /* Ot = alpha * Ot + V^T P^T */
      {
        const float *pa = sg + (size_t)a * G;
        const float *va = vblk + (size_t)a * d;
        const uint32_t cnt = e - a;
        uint32_t dd = 0;
        const uint32_t nfull = full_tiles(d);
        for (uint32_t t = 0; t < nfull; t++, dd += MR) {
          pv_tile(MR, pa, G, va + dd, d, cnt, alpha + i, og + dd * G);
          pf_step(&pf);
        }
        uint32_t rest = d - dd;
        while (rest) {
          const uint32_t nr = tail_tile(rest);
#define PV_CALL(c)                                                           \
  pv_tile(TC_N(c), pa, G, va + dd, d, cnt, alpha + i, og + dd * G)
          TILE_SWITCH(nr, PV_CALL)
#undef PV_CALL
          dd += nr;
          rest -= nr;
        }
      }
      pf_rest(&pf);
    }
  }

  /* O = Ot^T / l; a row that saw no key (cannot happen for Sq <= Skv, but
   * never NaN) is 0. */
  float *obase = p->out0 + (((uint64_t)b * p->hq + h) * p->sq + q0) * d;
  for (uint32_t i = 0; i < nq; i++)
    alpha[i] = lrow[i] > 0.0f ? 1.0f / lrow[i] : 0.0f;
  for (uint32_t i0 = 0; i0 < nq; i0 += QROWS) {
    const uint32_t nr = nq - i0 < QROWS ? nq - i0 : QROWS;
    float *orow = obase + (size_t)i0 * d;
    uint32_t dd0 = 0;
#ifdef VTRANSPOSE
    if (nr == QROWS)
      for (; dd0 + QROWS <= d; dd0 += QROWS)
        VTRANSPOSE(ot + (size_t)(i0 / G) * d * G + (size_t)dd0 * G + i0 % G,
                   G, orow + dd0, d, alpha + i0);
#endif
    for (uint32_t r = 0; r < nr; r++) {
      const uint32_t i = i0 + r;
      const float *col = ot + (size_t)(i / G) * d * G + i % G;
      for (uint32_t dd = dd0; dd < d; dd++)
        orow[(size_t)r * d + dd] = col[(size_t)dd * G] * alpha[i];
    }
  }
}

/* ----------------------------------------------------------------- decode */

#ifndef DEC_ROT_REGS
#define DEC_ROT_REGS 0
#endif

static float dot_row(const float *a, const float *x, uint32_t d) {
  VF acc0 = VZERO(), acc1 = VZERO();
  uint32_t j = 0;
  for (; j + 2 * W <= d; j += 2 * W) {
    acc0 = VFMA(VLOAD(a + j), VLOAD(x + j), acc0);
    acc1 = VFMA(VLOAD(a + j + W), VLOAD(x + j + W), acc1);
  }
  for (; j + W <= d; j += W) acc0 = VFMA(VLOAD(a + j), VLOAD(x + j), acc0);
  float s = VHSUM(VADD(acc0, acc1));
  for (; j < d; j++) s += a[j] * x[j];
  return s;
}

/* o[0..len) += sum_n pr[n] * V[n][..] for n < cnt (V rows `vs` floats
 * apart), o kept in registers over chunks of 4 vectors. */
static void decode_pv(float *o, const float *pr, const float *vp, size_t vs,
                      uint32_t len, uint32_t cnt, pf_cursor *pf) {
  uint32_t j = 0;
  for (; j + 4 * W <= len; j += 4 * W) {
    pf_step(pf);
    VF a0 = VLOAD(o + j), a1 = VLOAD(o + j + W), a2 = VLOAD(o + j + 2 * W),
       a3 = VLOAD(o + j + 3 * W);
    for (uint32_t n = 0; n < cnt; n++) {
      const float *vr = vp + (size_t)n * vs + j;
      const VF pb = VSET1(pr[n]);
      a0 = VFMA(pb, VLOAD(vr), a0);
      a1 = VFMA(pb, VLOAD(vr + W), a1);
      a2 = VFMA(pb, VLOAD(vr + 2 * W), a2);
      a3 = VFMA(pb, VLOAD(vr + 3 * W), a3);
    }
    VSTORE(o + j, a0);
    VSTORE(o + j + W, a1);
    VSTORE(o + j + 2 * W, a2);
    VSTORE(o + j + 3 * W, a3);
  }
  for (; j + W <= len; j += W) {
    VF a0 = VLOAD(o + j);
    for (uint32_t n = 0; n < cnt; n++)
      a0 = VFMA(VSET1(pr[n]), VLOAD(vp + (size_t)n * vs + j), a0);
    VSTORE(o + j, a0);
  }
  for (; j < len; j++) {
    float a = o[j];
    for (uint32_t n = 0; n < cnt; n++) a += pr[n] * vp[(size_t)n * vs + j];
    o[j] = a;
  }
}

/* Four dot products at once: out[0..3] = sum of each vector's lanes. */
static OMP_ALWAYS_INLINE void hsum4(VF a, VF b, VF c, VF e, float *out) {
#ifdef VHSUM4
  VHSUM4(a, b, c, e, out);
#else
  out[0] = VHSUM(a);
  out[1] = VHSUM(b);
  out[2] = VHSUM(c);
  out[3] = VHSUM(e);
#endif
}

/* Logits of four query heads of one kv head on a block of keys: s[h][n] =
 * q[h] . kb[n], two keys a step (8 accumulators: 6 loads per 8 FMAs, and
 * one 4-way reduction per 4 dot products instead of a horizontal sum
 * each). */
static void dec_scores4(const float *const q[4], const float *kb, size_t ks,
                        uint32_t d, uint32_t cnt, float *const s[4],
                        pf_cursor *pf) {
  const uint32_t dv = d / W * W;
  uint32_t n = 0;
  for (; n < cnt; n += 2) {
    pf_step(pf);
    const float *k0 = kb + (size_t)n * ks;
    const float *k1 = n + 1 < cnt ? k0 + ks : k0; /* odd tail: key twice */
    VF a0 = VZERO(), a1 = VZERO(), a2 = VZERO(), a3 = VZERO();
    VF b0 = VZERO(), b1 = VZERO(), b2 = VZERO(), b3 = VZERO();
    for (uint32_t j = 0; j < dv; j += W) {
      const VF x0 = VLOAD(k0 + j), x1 = VLOAD(k1 + j);
      VF qv = VLOAD(q[0] + j);
      a0 = VFMA(qv, x0, a0);
      b0 = VFMA(qv, x1, b0);
      qv = VLOAD(q[1] + j);
      a1 = VFMA(qv, x0, a1);
      b1 = VFMA(qv, x1, b1);
      qv = VLOAD(q[2] + j);
      a2 = VFMA(qv, x0, a2);
      b2 = VFMA(qv, x1, b2);
      qv = VLOAD(q[3] + j);
      a3 = VFMA(qv, x0, a3);
      b3 = VFMA(qv, x1, b3);
    }
    float r0[4], r1[4];
    hsum4(a0, a1, a2, a3, r0);
    hsum4(b0, b1, b2, b3, r1);
    for (uint32_t j = dv; j < d; j++)
      for (int h = 0; h < 4; h++) {
        r0[h] += q[h][j] * k0[j];
        r1[h] += q[h][j] * k1[j];
      }
    for (int h = 0; h < 4; h++) {
      s[h][n] = r0[h];
      if (n + 1 < cnt) s[h][n + 1] = r1[h];
    }
  }
}

/* dec_scores4 on raw K rows of a rotary (neox pairing, whole head_dim
 * rotated) kv head: each key's pairs rotated in registers on the way
 * (k1 c - k2 s, k2 c + k1 s at the key's table row), no K' rows written
 * to scratch and read back.  Taken where the including file sets
 * DEC_ROT_REGS: on AVX-512 (Zen 5) decode ran 1.04-1.10x faster (4 of 4
 * interleaved rounds, L = 32768, 32/8 heads, 2 threads); the AVX2 path
 * measured 0.92-1.015x on that machine and 0.97-1.05x on a Zen 3 (ninth
 * session), so it keeps the K' rows.
 *
 * Up to 8 vectors a row (head_dim <= 8 W), both rows of the key pair are
 * loaded whole, front to back, before any pair is rotated: K then streams
 * in address order, not as dims j and j + R/2 of two rows at a time,
 * which the hardware prefetcher followed poorly (a plain read of K/V
 * blocks in that order ran 1.6x the time of the front-to-back one).
 * Together with dec_pv_rows: decode 1.03-1.23x faster (6 of 6
 * interleaved rounds, L = 32768, 32/8 heads, 2 threads, Zen 5). */
/* Logits of one key pair (rows k0, k1; table rows c0 s0, c1 s1) for
 * `heads` (1-4) query heads into r0 and r1. */
#define DEC_ROT_HEAD(h, acc, bcc, j, r1, r2, t1, t2)                         \
  if ((h) < heads) {                                                         \
    const VF qa = VLOAD(q[h] + (j)), qb = VLOAD(q[h] + (j) + half);          \
    acc = VFMA(qb, r2, VFMA(qa, r1, acc));                                   \
    bcc = VFMA(qb, t2, VFMA(qa, t1, bcc));                                   \
  }
#define DEC_ROT_HEADS(j, r1, r2, t1, t2)                                     \
  DEC_ROT_HEAD(0, a0, b0, j, r1, r2, t1, t2)                                 \
  DEC_ROT_HEAD(1, a1, b1, j, r1, r2, t1, t2)                                 \
  DEC_ROT_HEAD(2, a2, b2, j, r1, r2, t1, t2)                                 \
  DEC_ROT_HEAD(3, a3, b3, j, r1, r2, t1, t2)
static OMP_ALWAYS_INLINE void dec_rot_pair(const float *const q[4],
                                           const float *k0, const float *k1,
                                           const float *c0, const float *s0,
                                           const float *c1, const float *s1,
                                           uint32_t half, float r0[4],
                                           float r1[4], const uint32_t nh,
                                           const uint32_t heads) {
  VF a0 = VZERO(), a1 = VZERO(), a2 = VZERO(), a3 = VZERO();
  VF b0 = VZERO(), b1 = VZERO(), b2 = VZERO(), b3 = VZERO();
  if (nh) { /* whole rows in registers, loaded in address order */
    VF x[8], y[8];
    PRAGMA_UNROLL for (uint32_t v = 0; v < 2 * nh; v++) x[v] = VLOAD(k0 + v * W);
    PRAGMA_UNROLL for (uint32_t v = 0; v < 2 * nh; v++) y[v] = VLOAD(k1 + v * W);
    PRAGMA_UNROLL for (uint32_t v = 0; v < nh; v++) {
      VF p1, p2, t1, t2;
      rot_pair(x[v], x[v + nh], VLOAD(c0 + v * W), VLOAD(s0 + v * W), &p1, &p2);
      rot_pair(y[v], y[v + nh], VLOAD(c1 + v * W), VLOAD(s1 + v * W), &t1, &t2);
      DEC_ROT_HEADS(v * W, p1, p2, t1, t2)
    }
  } else {
    for (uint32_t j = 0; j < half; j += W) {
      VF p1, p2, t1, t2;
      rot_pair(VLOAD(k0 + j), VLOAD(k0 + j + half), VLOAD(c0 + j),
               VLOAD(s0 + j), &p1, &p2);
      rot_pair(VLOAD(k1 + j), VLOAD(k1 + j + half), VLOAD(c1 + j),
               VLOAD(s1 + j), &t1, &t2);
      DEC_ROT_HEADS(j, p1, p2, t1, t2)
    }
  }
  if (heads == 1) {
    r0[0] = VHSUM(a0);
    r1[0] = VHSUM(b0);
    return;
  }
  hsum4(a0, a1, a2, a3, r0); /* heads 2, 3: the others stay zero */
  hsum4(b0, b1, b2, b3, r1);
}
#undef DEC_ROT_HEADS
#undef DEC_ROT_HEAD

static OMP_ALWAYS_INLINE void dec_scores_rot_n(const omp_plan *p,
                                               const float *const q[4],
                                               const float *kb, uint64_t n0,
                                               uint32_t cnt,
                                               float *const s[4],
                                               pf_cursor *pf,
                                               const uint32_t nh,
                                               const uint32_t heads) {
  const uint32_t d = p->d, half = p->rot_half;
  for (uint32_t n = 0; n < cnt; n += 2) {
    pf_step(pf);
    const uint32_t n1 = n + 1 < cnt ? n + 1 : n; /* odd tail: key twice */
    const float *c0 = p->cos + (n0 + n) * half, *s0 = p->sin + (n0 + n) * half;
    const float *c1 = p->cos + (n0 + n1) * half, *s1 = p->sin + (n0 + n1) * half;
    float r0[4], r1[4];
    dec_rot_pair(q, kb + (size_t)n * d, kb + (size_t)n1 * d, c0, s0, c1, s1,
                 half, r0, r1, nh, heads);
    /* not unrolled: unrolled, GCC 12 spilled about 1.7x as much around
     * the loop and decode ran 0.94-0.98x as fast (four heads, 5 of 5
     * interleaved rounds, L = 32768, 32/8 heads, 2 threads) */
    for (uint32_t h = 0; h < heads; h++) {
      s[h][n] = r0[h];
      if (n + 1 < cnt) s[h][n + 1] = r1[h];
    }
  }
}

/* nh = R/2 in vectors, a constant for each common head_dim; 0: halves
 * too long for registers, read a vector of each at a time */
#define DEC_SCORES_ROT_NH(heads)                                             \
  switch (whole_row_nh(p)) {                                                 \
  case 1: dec_scores_rot_n(p, q, kb, n0, cnt, s, pf, 1, heads); break;       \
  case 2: dec_scores_rot_n(p, q, kb, n0, cnt, s, pf, 2, heads); break;       \
  case 3: dec_scores_rot_n(p, q, kb, n0, cnt, s, pf, 3, heads); break;       \
  case 4: dec_scores_rot_n(p, q, kb, n0, cnt, s, pf, 4, heads); break;       \
  default: dec_scores_rot_n(p, q, kb, n0, cnt, s, pf, 0, heads); break;      \
  }
static void dec_scores_rot(const omp_plan *p, const float *const q[4],
                           const float *kb, uint64_t n0, uint32_t cnt,
                           float *const s[4], pf_cursor *pf, uint32_t heads) {
  switch (heads) {
  case 1: DEC_SCORES_ROT_NH(1) break;
  case 2: DEC_SCORES_ROT_NH(2) break;
  case 3: DEC_SCORES_ROT_NH(3) break;
  default: DEC_SCORES_ROT_NH(4) break;
  }
}
#undef DEC_SCORES_ROT_NH

/* Whether dec_scores_rot applies: neox pairs over the whole head_dim, in
 * whole vectors. */
static int dec_rot_in_regs(const omp_plan *p) {
  return DEC_ROT_REGS && p->kind == PE_KIND_ROTARY && !p->interleaved &&
         2 * p->rot_half == p->d && p->rot_half % W == 0;
}

/* o[h][0..d) += sum_n p[h][n] * V[n][..] for four heads at once: each V
 * vector is loaded once for the four (8 accumulators: 2 loads and 4
 * broadcasts per 8 FMAs). */
static void dec_pv4(float *const o[4], const float *const pr[4],
                    const float *vp, uint32_t d, uint32_t cnt,
                    pf_cursor *pf) {
  uint32_t j = 0;
  for (; j + 2 * W <= d; j += 2 * W) {
    pf_step(pf);
    VF a0 = VLOAD(o[0] + j), a1 = VLOAD(o[1] + j), a2 = VLOAD(o[2] + j),
       a3 = VLOAD(o[3] + j);
    VF b0 = VLOAD(o[0] + j + W), b1 = VLOAD(o[1] + j + W),
       b2 = VLOAD(o[2] + j + W), b3 = VLOAD(o[3] + j + W);
    for (uint32_t n = 0; n < cnt; n++) {
      const float *vr = vp + (size_t)n * d + j;
      const VF v0 = VLOAD(vr), v1 = VLOAD(vr + W);
      VF pb = VBCAST(pr[0] + n);
      a0 = VFMA(pb, v0, a0);
      b0 = VFMA(pb, v1, b0);
      pb = VBCAST(pr[1] + n);
      a1 = VFMA(pb, v0, a1);
      b1 = VFMA(pb, v1, b1);
      pb = VBCAST(pr[2] + n);
      a2 = VFMA(pb, v0, a2);
      b2 = VFMA(pb, v1, b2);
      pb = VBCAST(pr[3] + n);
      a3 = VFMA(pb, v0, a3);
      b3 = VFMA(pb, v1, b3);
    }
    VSTORE(o[0] + j, a0);
    VSTORE(o[1] + j, a1);
    VSTORE(o[2] + j, a2);
    VSTORE(o[3] + j, a3);
    VSTORE(o[0] + j + W, b0);
    VSTORE(o[1] + j + W, b1);
    VSTORE(o[2] + j + W, b2);
    VSTORE(o[3] + j + W, b3);
  }
  if (j < d) /* the rest of the row (under 2 vectors), one head at a time */
    for (int h = 0; h < 4; h++)
      decode_pv(o[h] + j, pr[h], vp + j, d, d - j, cnt, pf);
}

#ifndef DEC_PV_ROWS
#define DEC_PV_ROWS 0
#endif

/* dec_pv4 reading each V row whole, front to back, the rows in order: o
 * of hp heads (hp * nvec <= 16 accumulators) per pass over the block, the
 * first pass from memory, the others from L1.  dec_pv4's two-vector
 * columns down the block had the hardware prefetcher follow V poorly (a
 * plain read of V blocks in that order: 1.6-1.9x the time).  Needs 32
 * vector registers (nvec of a row besides the accumulators): the
 * including file sets DEC_PV_ROWS (AVX-512). */
static OMP_ALWAYS_INLINE void dec_pv_rows_pass(float *const o[],
                                               const float *const pr[],
                                               const float *vp, uint32_t cnt,
                                               pf_cursor *pf, int step,
                                               const uint32_t nvec,
                                               const uint32_t hp) {
  VF acc[16];
  PRAGMA_UNROLL for (uint32_t t = 0; t < hp; t++)
    PRAGMA_UNROLL for (uint32_t v = 0; v < nvec; v++)
      acc[t * nvec + v] = VLOAD(o[t] + v * W);
  for (uint32_t n = 0; n < cnt; n++) {
    if (step && !(n & 1)) /* a step per key pair, as the logits */
      pf_step(pf);
    const float *vr = vp + (size_t)n * nvec * W;
    VF x[16];
    PRAGMA_UNROLL for (uint32_t v = 0; v < nvec; v++) x[v] = VLOAD(vr + v * W);
    PRAGMA_UNROLL for (uint32_t t = 0; t < hp; t++) {
      const VF pb = VBCAST(pr[t] + n);
      PRAGMA_UNROLL for (uint32_t v = 0; v < nvec; v++)
        acc[t * nvec + v] = VFMA(pb, x[v], acc[t * nvec + v]);
    }
  }
  PRAGMA_UNROLL for (uint32_t t = 0; t < hp; t++)
    PRAGMA_UNROLL for (uint32_t v = 0; v < nvec; v++)
      VSTORE(o[t] + v * W, acc[t * nvec + v]);
}

static OMP_ALWAYS_INLINE void dec_pv_rows_n(float *const o[4],
                                            const float *const pr[4],
                                            const float *vp, uint32_t cnt,
                                            pf_cursor *pf, const uint32_t nvec,
                                            const uint32_t heads) {
  const uint32_t fit = nvec <= 4 ? 4 : nvec <= 8 ? 2 : 1;
  const uint32_t full = heads / fit * fit, rest = heads - full;
  for (uint32_t h0 = 0; h0 < full; h0 += fit)
    dec_pv_rows_pass(o + h0, pr + h0, vp, cnt, pf, h0 == 0, nvec, fit);
  if (rest)
    dec_pv_rows_pass(o + full, pr + full, vp, cnt, pf, full == 0, nvec,
                     rest);
}

/* Whether dec_pv_rows takes head_dim d (whole vectors, a common size). */
static int dec_pv_rows_fit(uint32_t d) {
  const uint32_t nvec = d / W;
  return DEC_PV_ROWS && d % W == 0 &&
         (nvec == 4 || nvec == 5 || nvec == 6 || nvec == 8 || nvec == 16);
}

#define DEC_PV_ROWS_SWITCH(heads)                                            \
  switch (d / W) {                                                           \
  case 4: dec_pv_rows_n(o, pr, vp, cnt, pf, 4, heads); break;                \
  case 5: dec_pv_rows_n(o, pr, vp, cnt, pf, 5, heads); break;                \
  case 6: dec_pv_rows_n(o, pr, vp, cnt, pf, 6, heads); break;                \
  case 8: dec_pv_rows_n(o, pr, vp, cnt, pf, 8, heads); break;                \
  default: dec_pv_rows_n(o, pr, vp, cnt, pf, 16, heads); break;              \
  }
/* P V of `heads` (1-4) heads, o[0..heads) */
static void dec_pv_rows(float *const o[4], const float *const pr[4],
                        const float *vp, uint32_t d, uint32_t cnt,
                        pf_cursor *pf, uint32_t heads) {
  switch (heads) {
  case 1: DEC_PV_ROWS_SWITCH(1) break;
  case 2: DEC_PV_ROWS_SWITCH(2) break;
  case 3: DEC_PV_ROWS_SWITCH(3) break;
  default: DEC_PV_ROWS_SWITCH(4) break;
  }
}
#undef DEC_PV_ROWS_SWITCH

/* Online-softmax state of one kv head's g query heads during a chunk:
 * q' rows, output rows (dp floats each), running maximum and sum. */
typedef struct dec_heads {
  float *q, *o, *m, *l;
} dec_heads;

/* Scratch: q' and o rows [group][dp], K' block [DEC_BLOCK][dp], scores
 * [group][DEC_BLOCK], m and l [group] (the vector rows first: dp is whole
 * vectors, so each starts on a vector boundary). */
static size_t decode_scratch(const omp_plan *p) {
  const size_t dp = padded_dim(p), g = p->group;
  return 2 * g * dp + DEC_BLOCK * dp + g * DEC_BLOCK + 2 * g;
}

static dec_heads dec_heads_of(const omp_plan *p, float *scr) {
  const size_t dp = padded_dim(p), g = p->group;
  float *m = scr + 2 * g * dp + DEC_BLOCK * dp + g * DEC_BLOCK;
  return (dec_heads){scr, scr + g * dp, m, m + g};
}

/* Online softmax of one head over a block's logits s[0..cnt): s becomes
 * exp2(s - m) (zero past cnt), o and l rescaled to the new maximum. */
static void dec_softmax(float *s, uint32_t cnt, float *m, float *l, float *o,
                        uint32_t dp) {
  for (uint32_t n = cnt; n < DEC_BLOCK; n++) s[n] = -INFINITY;
  /* the block's maximum in vectors: the scalar loop was a chain of 16
   * dependent compares per head and block */
  VF mxv = VLOAD(s);
  for (uint32_t n = W; n < DEC_BLOCK; n += W) mxv = VMAX(mxv, VLOAD(s + n));
  const float mx = VHMAX(mxv);
  const float mnew = mx > *m ? mx : *m;
  if (mnew == -INFINITY) { /* nothing visible yet: adds nothing */
    for (uint32_t n = 0; n < DEC_BLOCK; n++) s[n] = 0.0f;
    return;
  }
  if (mnew != *m) {
    const float al = exp2f(*m - mnew);
    const VF alv = VSET1(al);
    *l *= al;
    for (uint32_t dd = 0; dd < dp; dd += W) /* o rows: dp floats */
      VSTORE(o + dd, VMUL(VLOAD(o + dd), alv));
    *m = mnew;
  }
  VF sum = VZERO();
  const VF mv = VSET1(mnew);
  for (uint32_t n = 0; n < DEC_BLOCK; n += W) {
    VF e = VEXP2(VSUB(VLOAD(s + n), mv));
    VSTORE(s + n, e);
    sum = VADD(sum, e);
  }
  *l += VHSUM(sum);
}

/* The kernels decode_block takes for a plan. */
typedef struct dec_paths {
  int rot;     /* logits on raw K rows rotated in registers (no K' rows) */
  int pv_rows; /* P V reads V rows whole (dec_pv_rows) */
} dec_paths;

static dec_paths dec_paths_of(const omp_plan *p) {
  return (dec_paths){dec_rot_in_regs(p), dec_pv_rows_fit(p->d)};
}

/* The query heads of one pass of decode_block, from head j0 of the
 * group: four while four are left; then, where the logits rotate K in
 * registers, the rest together (each pass rotates each key once more, as
 * the K' pack would, and the rest's pass is one more, not one per head),
 * else one at a time. */
static uint32_t dec_pass_heads(const dec_paths *t, uint32_t g, uint32_t j0) {
  return g - j0 >= 4 ? 4 : t->rot ? g - j0 : 1;
}

/* The pf_step calls a pass of `heads` takes on a block of cnt keys: the
 * logits a step per key pair (dec_scores_rot, dec_scores4) or per key
 * (dot_row), P V a step per key pair (dec_pv_rows) or per two vectors of
 * head_dim (dec_pv4) or four (decode_pv). */
static size_t dec_pass_steps(const dec_paths *t, uint32_t heads, uint32_t d,
                             uint32_t cnt) {
  const size_t pairs = (cnt + 1) / 2;
  const size_t logits = t->rot || heads == 4 ? pairs : cnt;
  const size_t pv = t->pv_rows ? pairs
                    : heads == 4 ? d / (2 * W)
                                 : d / (4 * W);
  return logits + pv;
}

/* The pf_step calls decode_block makes on a block of cnt keys. */
static size_t dec_steps(const omp_plan *p, const dec_paths *t, uint32_t cnt) {
  size_t steps = 0;
  for (uint32_t j0 = 0, nh; j0 < p->group; j0 += nh) {
    nh = dec_pass_heads(t, p->group, j0);
    steps += dec_pass_steps(t, nh, p->d, cnt);
  }
  return steps;
}

/* One block of cnt keys from key nb for the g query heads of kv head kvh
 * (K and V rows of that head from kbase, vbase), prefetching pf.  On the
 * AVX-512 path with neox pairs over the whole head_dim, K is rotated in
 * registers per pass (dec_scores_rot) and no K' rows are made: for MHA
 * (a pass of one head) that and V rows read whole made decode 1.41-1.48x
 * faster (32/32 heads, L = 32768, 2 threads, Zen 5, 3 of 3 interleaved
 * rounds; the V rows alone 1.19-1.24x). */
static void decode_block(const omp_plan *p, const dec_paths *t, uint32_t kvh,
                         dec_heads hs, const float *kbase, const float *vbase,
                         uint64_t nb, uint32_t cnt, float *kp, float *sc,
                         pf_cursor *pf) {
  const uint32_t d = p->d, dp = padded_dim(p), g = p->group;
  const uint64_t r = p->skv - 1; /* the query row, in key coordinates */
  /* The K rows the logits read when not rotated in registers: raw K in
   * place where it needs no encoding (none, ALiBi), else K' rows encoded
   * into scratch.  Copied into scratch as well, unencoded K had measured
   * 1.05-1.09x faster than in place, before the prefetch was spread over
   * the block; with it, in place is 1.11-1.17x faster at 32/8 heads on
   * both SIMD paths and 1.0-1.02x at 32/32 (ALiBi, L = 32768, 2 threads,
   * Zen 5, 3 of 3 interleaved rounds each). */
  const int in_place = !t->rot && !k_needs_pack(p);
  const float *kr = in_place ? kbase + nb * d : kp;
  const size_t ks = in_place ? d : dp;
  if (!t->rot && !in_place)
    for (uint32_t n = 0; n < cnt; n++)
      rot_row(p, kbase + (nb + n) * d, nb + n, 1.0f, kp + (size_t)n * dp);
  const float *vb = vbase + nb * d;
  for (uint32_t j0 = 0, nh; j0 < g; j0 += nh) {
    nh = dec_pass_heads(t, g, j0);
    const float *qh[4];
    float *sh[4], *oh[4];
    for (uint32_t u = 0; u < nh; u++) {
      qh[u] = hs.q + (size_t)(j0 + u) * dp;
      sh[u] = sc + (size_t)(j0 + u) * DEC_BLOCK;
      oh[u] = hs.o + (size_t)(j0 + u) * dp;
    }
    if (t->rot)
      dec_scores_rot(p, qh, kbase + nb * d, nb, cnt, sh, pf, nh);
    else if (nh == 4)
      dec_scores4(qh, kr, ks, d, cnt, sh, pf);
    else
      for (uint32_t n = 0; n < cnt; n++) {
        pf_step(pf);
        sh[0][n] = dot_row(qh[0], kr + (size_t)n * ks, d);
      }
    for (uint32_t u = 0; u < nh; u++) {
      const uint32_t j = j0 + u;
      if (p->kind == PE_KIND_BIAS) {
        const float sl = p->slopes2[kvh * g + j];
        for (uint32_t n = 0; n < cnt; n++)
          sh[u][n] += sl * (float)((int64_t)(nb + n) - (int64_t)r);
      }
      dec_softmax(sh[u], cnt, hs.m + j, hs.l + j, oh[u], dp);
    }
    if (t->pv_rows)
      dec_pv_rows(oh, (const float *const *)sh, vb, d, cnt, pf, nh);
    else if (nh == 4)
      dec_pv4(oh, (const float *const *)sh, vb, d, cnt, pf);
    else
      decode_pv(oh[0], sh[0], vb, d, d, cnt, pf);
  }
  pf_rest(pf);
}

static const float *dec_k(const omp_plan *p, uint32_t b, uint32_t kvh) {
  return p->k + ((uint64_t)b * p->hkv + kvh) * p->skv * p->d;
}
static const float *dec_v(const omp_plan *p, uint32_t b, uint32_t kvh) {
  return p->v + ((uint64_t)b * p->hkv + kvh) * p->skv * p->d;
}

/* The prefetch cursor over the block that decode_chunk takes after block
 * (kvh, nb) of keys [n0, n1): the next block of the kv head, else the
 * first block of the next kv head.  (Prefetching nothing at the end of
 * each kv head had left one block in 64 to the hardware: the run across
 * kv heads made decode 1.02-1.04x faster, 10 of 10 interleaved rounds,
 * L = 32768, 32/8 heads, 2 threads, AVX-512 Zen 5.) */
static pf_cursor dec_pf_next(const omp_plan *p, const dec_paths *t,
                             uint32_t b, uint32_t kvh, uint64_t nb,
                             uint64_t n0, uint64_t n1, uint32_t cnt) {
  uint64_t pb = nb + DEC_BLOCK;
  if (pb >= n1) {
    kvh++;
    pb = n0;
  }
  pf_cursor c = PF_NONE;
  if (kvh >= p->hkv) return c;
  const uint32_t d = p->d;
  const size_t rows = n1 - pb < DEC_BLOCK ? n1 - pb : DEC_BLOCK;
  pf_add(&c, dec_k(p, b, kvh) + pb * d, rows * d);
  pf_add(&c, dec_v(p, b, kvh) + pb * d, rows * d);
  /* spread over the block's arithmetic (decode_block); dec_pv_rows had
   * left its share to pf_rest, a burst at the end of the block: stepping
   * made decode 1.0-1.08x faster (8 of 8 interleaved rounds, L = 32768,
   * 32/8 heads, 2 threads, Zen 5; a step per key: 0.92-0.96x) */
  pf_spread(&c, dec_steps(p, t, cnt));
  return c;
}

/* Split-KV decode of keys [n0, n1) of batch b: each kv head over the
 * chunk, block by block, leaving a partial (m, l, o) per query head. */
static void decode_chunk(const omp_plan *p, uint32_t b, uint64_t c,
                         uint64_t n0, uint64_t n1, float *scr) {
  const uint32_t d = p->d, dp = padded_dim(p), g = p->group;
  const dec_heads hs = dec_heads_of(p, scr);
  const dec_paths t = dec_paths_of(p);
  float *kp = scr + 2 * (size_t)g * dp, *sc = kp + (size_t)DEC_BLOCK * dp;
  const uint64_t r = p->skv - 1; /* the query row, in key coordinates */

  for (uint32_t kvh = 0; kvh < p->hkv; kvh++) {
    for (uint32_t j = 0; j < g; j++) {
      const uint32_t h = kvh * g + j;
      rot_row(p, p->q + ((uint64_t)b * p->hq + h) * d, r, p->qscale,
              hs.q + (size_t)j * dp);
      hs.m[j] = -INFINITY;
      hs.l[j] = 0.0f;
      for (uint32_t dd = 0; dd < dp; dd++) hs.o[(size_t)j * dp + dd] = 0.0f;
    }
    const float *kbase = dec_k(p, b, kvh), *vbase = dec_v(p, b, kvh);
    for (uint64_t nb = n0; nb < n1; nb += DEC_BLOCK) {
      const uint32_t cnt = (uint32_t)(n1 - nb < DEC_BLOCK ? n1 - nb
                                                          : DEC_BLOCK);
      pf_cursor pf = dec_pf_next(p, &t, b, kvh, nb, n0, n1, cnt);
      decode_block(p, &t, kvh, hs, kbase, vbase, nb, cnt, kp, sc, &pf);
    }
    for (uint32_t j = 0; j < g; j++) {
      const uint32_t h = kvh * g + j;
      float *part =
          p->partial + (((uint64_t)b * p->nchunks + c) * p->hq + h) * (d + 2);
      part[0] = hs.m[j];
      part[1] = hs.l[j];
      for (uint32_t dd = 0; dd < d; dd++)
        part[2 + dd] = hs.o[(size_t)j * dp + dd];
    }
  }
}

/* ----------------------------------------------------------------- encode */

#ifdef VSTREAM
/* rot_row_as stores every float of a row through whole, aligned vectors
 * (no scalar tail), so it may write the output with non-temporal stores
 * directly: d a multiple of W, and the rotary halves too. */
static int rows_all_vector(const omp_plan *p) {
  if (p->d % W) return 0;
  if (p->kind != PE_KIND_ROTARY) return 1;
#ifdef VROT_PAIRS
  if (p->interleaved) return p->rot_half % (W / 2) == 0;
#else
  if (p->interleaved) return 0;
#endif
  return p->rot_half % W == 0;
}

/* encode_rows' streaming loop for whole-row neox rows of 2 nh vectors,
 * the row kind decided once, not per row as in rot_row_as (whose
 * dispatch cost encode 2-4%: 0.96-0.98x in 4 of 4 interleaved rounds).
 * Rows [r0, r1) of `heads` heads (row r + k len of head k) position by
 * position: each cos/sin row is loaded once into registers for all of
 * them.  Two heads made encode 1.21-1.25x faster than one (7 of 7
 * interleaved rounds, AVX-512 Zen 5, 32 heads x 8192, 2 threads), four
 * 1.13-1.18x, eight 1.12-1.16x; two consecutive rows of one head, each
 * with its own table row, 0.92-0.95x: the gain is the table rows read
 * from L2 half as often, against the source and destination streams
 * that more heads interleave. */
static OMP_ALWAYS_INLINE void encode_whole_rows(const omp_plan *p,
                                                const float *src, float *dst,
                                                uint64_t r0, uint64_t r1,
                                                uint64_t rows, uint64_t len,
                                                uint64_t shift,
                                                uint32_t heads,
                                                const uint32_t nh) {
  const uint32_t d = 2 * nh * W, half = nh * W;
  for (uint64_t r = r0; r < r1; r++) {
    const uint64_t tr = r % len + shift;
    VF c[4], s[4];
    PRAGMA_UNROLL for (uint32_t v = 0; v < nh; v++) {
      c[v] = VLOAD(p->cos + tr * half + v * W);
      s[v] = VLOAD(p->sin + tr * half + v * W);
    }
    for (uint32_t k = 0; k < heads; k++) {
      const uint64_t row = r + k * len;
      if (row + ENC_AHEAD < rows) prefetch_row(src + (row + ENC_AHEAD) * d, d);
      const float *x = src + row * d;
      float *y = dst + row * d;
      VF xv[8];
      PRAGMA_UNROLL for (uint32_t v = 0; v < 2 * nh; v++) xv[v] = VLOAD(x + v * W);
      PRAGMA_UNROLL for (uint32_t v = 0; v < nh; v++) {
        VF r1v, r2v;
        rot_pair(xv[v], xv[v + nh], c[v], s[v], &r1v, &r2v);
        VSTREAM(y + v * W, r1v);
        VSTREAM(y + (v + nh) * W, r2v);
      }
    }
  }
}
#endif

/* encode_rows for the rows [r0, r1) of one head. */
static void encode_head_rows(const omp_plan *p, int which, uint64_t r0,
                             uint64_t r1) {
  const uint32_t d = p->d;
  const float *src = which ? p->k : p->q;
  float *dst = which == 2 ? p->kprime : which ? p->out1 : p->out0;
  const size_t stride = which == 2 ? padded_dim(p) : d;
  const uint64_t len = which ? p->skv : p->sq;
  const uint64_t shift = which ? 0 : p->skv - p->sq;
  /* the prefetch runs on past r1: a static schedule gives each thread
   * consecutive blocks */
  const uint64_t rows = (uint64_t)p->batch * (which ? p->hkv : p->hq) * len;
#ifdef VSTREAM
  /* Outputs of op = encode are written once and not read again by this
   * run: stream them out with non-temporal stores (no read-for-ownership
   * of the destination).  Straight from the registers when every store of
   * a row is a whole aligned vector, else through an L1 row buffer: the
   * bounce through the buffer made encode 1.10-1.15x slower (AVX-512,
   * Zen 5, 3 of 3 interleaved rounds; a plain copy loop 1.15-1.2x). */
  if (which != 2 && d % W == 0 && (uintptr_t)dst % 64 == 0) {
    if (rows_all_vector(p)) {
      for (uint64_t r = r0; r < r1; r++) {
        if (r + ENC_AHEAD < rows) prefetch_row(src + (r + ENC_AHEAD) * d, d);
        rot_row_as(p, src + r * d, r % len + shift, 1.0f, dst + r * d, 0, 1);
      }
      VSFENCE();
      return;
    }
    float tmp[OMP_MAX_HEAD_DIM] __attribute__((aligned(64)));
    for (uint64_t r = r0; r < r1; r++) {
      if (r + ENC_AHEAD < rows) prefetch_row(src + (r + ENC_AHEAD) * d, d);
      rot_row(p, src + r * d, r % len + shift, 1.0f, tmp);
      float *o = dst + r * d;
      for (uint32_t j = 0; j < d; j += W) VSTREAM(o + j, VLOAD(tmp + j));
    }
    VSFENCE();
    return;
  }
#endif
  for (uint64_t r = r0; r < r1; r++) {
    if (r + ENC_AHEAD < rows) prefetch_row(src + (r + ENC_AHEAD) * d, d);
    rot_row(p, src + r * d, r % len + shift, 1.0f, dst + r * stride);
  }
}

static void encode_rows(const omp_plan *p, int which, uint64_t r0,
                        uint64_t r1, uint32_t heads) {
  const uint64_t len = which ? p->skv : p->sq;
#ifdef VSTREAM
  float *dst = which ? p->out1 : p->out0;
  const uint32_t nh = whole_row_nh(p);
  if (which != 2 && nh && (uintptr_t)dst % 64 == 0) {
    const float *src = which ? p->k : p->q;
    const uint64_t shift = which ? 0 : p->skv - p->sq;
    const uint64_t rows =
        (uint64_t)p->batch * (which ? p->hkv : p->hq) * len;
    switch (nh) {
    case 1: encode_whole_rows(p, src, dst, r0, r1, rows, len, shift, heads, 1); break;
    case 2: encode_whole_rows(p, src, dst, r0, r1, rows, len, shift, heads, 2); break;
    case 3: encode_whole_rows(p, src, dst, r0, r1, rows, len, shift, heads, 3); break;
    default: encode_whole_rows(p, src, dst, r0, r1, rows, len, shift, heads, 4); break;
    }
    VSFENCE();
    return;
  }
#endif
  for (uint32_t k = 0; k < heads; k++)
    encode_head_rows(p, which, r0 + k * len, r1 + k * len);
}

static size_t kern_scratch(const omp_plan *p) {
  if (p->op == PE_OP_ATTENTION && p->sq == 1) return decode_scratch(p);
  if (p->op == PE_OP_ATTENTION) return prefill_scratch(p);
  return 0;
}

const omp_kernels KERNELS_NAME = {
    KERNELS_STR,
    KERNELS_DETAIL,
    W,
    NV * W,
#ifdef VSTREAM
    1,
#else
    0,
#endif
    kern_scratch,
    prefill_unit,
    decode_chunk,
    encode_rows,
};
