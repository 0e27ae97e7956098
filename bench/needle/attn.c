/* The model's own attention, forward and backward, for every encoding kind
 * (NUMERICS.md): used while training, and as the "builtin" evaluation path
 * that the tests compare with the backends.  The encoding comes from a
 * scheme's float64 tables (pe_workload_get_info()->tables), turned into
 * per-position float32 rows in float64 and rounded once, exactly as the
 * core prepares them for backends. */
#include "needle.h"
#include "simd.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int nd_pos_init(nd_pos *p, const pe_workload_info *info, size_t len) {
  const pe_scheme_tables *t = info->tables;
  memset(p, 0, sizeof *p);
  p->kind = t->kind;
  p->head_dim = info->head_dim;
  p->heads = info->q_heads;
  p->len = len;
  p->scale = (float)info->softmax_scale;
  const size_t D = info->head_dim;
  if (t->kind == PE_KIND_ROTARY) {
    p->rot_dim = t->rotary_dim;
    p->pairing = t->pairing;
    size_t half = t->rotary_dim / 2;
    p->cos = malloc(len * half * sizeof(float) + 1);
    p->sin = malloc(len * half * sizeof(float) + 1);
    if (!p->cos || !p->sin) return nd_pos_free(p), PE_ENOMEM;
    for (size_t n = 0; n < len; n++)
      for (size_t j = 0; j < half; j++) {
        double phi = (double)n * t->inv_freq[j];
        p->cos[n * half + j] = (float)(t->attention_factor * cos(phi));
        p->sin[n * half + j] = (float)(t->attention_factor * sin(phi));
      }
  } else if (t->kind == PE_KIND_ADDITIVE) {
    if (!(p->add = malloc(len * D * sizeof(float) + 1))) return nd_pos_free(p), PE_ENOMEM;
    for (size_t n = 0; n < len; n++)
      for (size_t j = 0; j < D / 2; j++) {
        p->add[n * D + 2 * j] = (float)sin((double)n * t->inv_freq[j]);
        p->add[n * D + 2 * j + 1] = (float)cos((double)n * t->inv_freq[j]);
      }
  } else if (t->kind == PE_KIND_BIAS) {
    if (!(p->slopes = malloc(info->q_heads * sizeof(float)))) return nd_pos_free(p), PE_ENOMEM;
    for (uint32_t h = 0; h < info->q_heads; h++) p->slopes[h] = (float)t->slopes[h];
  }
  return 0;
}

void nd_pos_free(nd_pos *p) {
  free(p->cos);
  free(p->sin);
  free(p->add);
  free(p->slopes);
  p->cos = p->sin = p->add = p->slopes = NULL;
}

/* One row x[D] at position n -> y[D] (y may equal x). */
static inline void enc_row(const nd_pos *p, size_t D, size_t n, const float *x, float *y) {
  if (p->kind == PE_KIND_ROTARY) {
    const size_t half = p->rot_dim / 2;
    const float *c = p->cos + n * half, *s = p->sin + n * half;
    const size_t st = p->pairing == PE_PAIRING_INTERLEAVED ? 1 : half;
    const size_t mul = p->pairing == PE_PAIRING_INTERLEAVED ? 2 : 1;
    for (size_t j = 0; j < half; j++) {
      size_t i0 = j * mul, i1 = i0 + st;
      float a = x[i0], b = x[i1];
      y[i0] = a * c[j] - b * s[j];
      y[i1] = b * c[j] + a * s[j];
    }
    if (y != x)
      for (size_t d = p->rot_dim; d < D; d++) y[d] = x[d];
  } else if (p->kind == PE_KIND_ADDITIVE) {
    const float *a = p->add + n * D;
    for (size_t d = 0; d < D; d++) y[d] = x[d] + a[d];
  } else if (y != x) {
    memcpy(y, x, D * sizeof *y);
  }
}

/* The transpose of enc_row's Jacobian applied to dy (dx may equal dy). */
static inline void enc_row_bwd(const nd_pos *p, size_t D, size_t n, const float *dy, float *dx) {
  if (p->kind == PE_KIND_ROTARY) {
    const size_t half = p->rot_dim / 2;
    const float *c = p->cos + n * half, *s = p->sin + n * half;
    const size_t st = p->pairing == PE_PAIRING_INTERLEAVED ? 1 : half;
    const size_t mul = p->pairing == PE_PAIRING_INTERLEAVED ? 2 : 1;
    for (size_t j = 0; j < half; j++) {
      size_t i0 = j * mul, i1 = i0 + st;
      float a = dy[i0], b = dy[i1];
      dx[i0] = a * c[j] + b * s[j];
      dx[i1] = b * c[j] - a * s[j];
    }
    if (dx != dy)
      for (size_t d = p->rot_dim; d < D; d++) dx[d] = dy[d];
  } else if (dx != dy) {
    memcpy(dx, dy, D * sizeof *dx);
  }
}

void nd_encode_rows(const nd_pos *pos, size_t S, size_t D, size_t pos0, const float *x, float *y) {
  for (size_t i = 0; i < S; i++) enc_row(pos, D, pos0 + i, x + i * D, y + i * D);
}

void nd_encode_rows_bwd(const nd_pos *pos, size_t S, size_t D, size_t pos0, const float *dy,
                        float *dx) {
  for (size_t i = 0; i < S; i++) enc_row_bwd(pos, D, pos0 + i, dy + i * D, dx + i * D);
}

/* Scores of query row qi (encoded, position pq) against keys 0..pq, keys
 * transposed kt[D][ld]: sc[n] = scale <qi, k_n> - slope (pq - n). */
static inline void scores(float *sc, const float *qi, const float *kt, size_t ld, size_t D,
                          size_t pq, float scale, float slope) {
  const size_t nv = pq + 1;
  memset(sc, 0, nv * sizeof *sc);
  for (size_t d = 0; d < D; d++) {
    const float a = scale * qi[d];
    const float *kd = kt + d * ld;
#pragma omp simd
    for (size_t n = 0; n < nv; n++) sc[n] += a * kd[n];
  }
  if (slope != 0.0f)
    for (size_t n = 0; n < nv; n++) sc[n] -= slope * (float)(pq - n);
}

static void transpose_to(float *t, const float *x, size_t rows, size_t cols) {
  for (size_t i = 0; i < rows; i++)
    for (size_t j = 0; j < cols; j++) t[j * rows + i] = x[i * cols + j];
}

/* One (batch, head): forward.  scratch: kt[D][Skv], sc[Skv]. */
/* Position of query i: qp[i], or the last Sq rows when qp is NULL. */
static inline size_t qpos_of(const uint32_t *qp, size_t Sq, size_t Skv, size_t i) {
  return qp ? qp[i] : Skv - Sq + i;
}

static void encode_queries(const nd_pos *pos, size_t Sq, size_t Skv, size_t D, const uint32_t *qp,
                           const float *x, float *y) {
  if (!qp) nd_encode_rows(pos, Sq, D, Skv - Sq, x, y);
  else
    for (size_t i = 0; i < Sq; i++) nd_encode_rows(pos, 1, D, qp[i], x + i * D, y + i * D);
}

static void encode_queries_bwd(const nd_pos *pos, size_t Sq, size_t Skv, size_t D,
                               const uint32_t *qp, float *g) {
  if (!qp) nd_encode_rows_bwd(pos, Sq, D, Skv - Sq, g, g);
  else
    for (size_t i = 0; i < Sq; i++) nd_encode_rows_bwd(pos, 1, D, qp[i], g + i * D, g + i * D);
}

ND_HOT static void attn_fwd_head(const nd_pos *pos, size_t h, size_t Sq, size_t Skv, size_t D,
                                 const uint32_t *qp, const float *qh, const float *kh,
                                 const float *vh, float *oh, float *qe, float *ke, float *lse,
                                 float *kt, float *sc) {
  nd_encode_rows(pos, Skv, D, 0, kh, ke);
  encode_queries(pos, Sq, Skv, D, qp, qh, qe);
  transpose_to(kt, ke, Skv, D);
  const float slope = pos->kind == PE_KIND_BIAS ? pos->slopes[h] : 0.0f;
  for (size_t i = 0; i < Sq; i++) {
    const size_t pq = qpos_of(qp, Sq, Skv, i), nv = pq + 1;
    scores(sc, qe + i * D, kt, Skv, D, pq, pos->scale, slope);
    float mx = -INFINITY;
    for (size_t n = 0; n < nv; n++) mx = sc[n] > mx ? sc[n] : mx;
    float z = 0;
    for (size_t n = 0; n < nv; n++) z += (sc[n] = expf(sc[n] - mx));
    float *oi = oh + i * D;
    memset(oi, 0, D * sizeof *oi);
    const float iz = 1.0f / z;
    for (size_t n = 0; n < nv; n++) {
      const float pn = sc[n] * iz;
      const float *vn = vh + n * D;
#pragma omp simd
      for (size_t d = 0; d < D; d++) oi[d] += pn * vn[d];
    }
    if (lse) lse[i] = mx + logf(z);
  }
}

void nd_attn_fwd(const nd_pos *pos, size_t B, size_t H, size_t Sq, size_t Skv, size_t D,
                 const uint32_t *qpos, const float *q, const float *k, const float *v, float *o,
                 float *qe_out, float *ke_out, float *lse) {
#pragma omp parallel if (B * H > 1 && Sq * Skv * D > 4096)
  {
    const bool own = !(qe_out && ke_out);
    float *buf = malloc((Skv * D + Skv + (own ? (Skv + Sq) * D : 0)) * sizeof(float) + 1);
    if (!buf) abort();
    float *kt = buf, *sc = kt + Skv * D, *kbuf = sc + Skv;
#pragma omp for schedule(dynamic, 1)
    for (size_t bh = 0; bh < B * H; bh++)
      attn_fwd_head(pos, bh % H, Sq, Skv, D, qpos ? qpos + (bh / H) * Sq : NULL, q + bh * Sq * D,
                    k + bh * Skv * D, v + bh * Skv * D,
                    o + bh * Sq * D, own ? kbuf + Skv * D : qe_out + bh * Sq * D,
                    own ? kbuf : ke_out + bh * Skv * D, lse ? lse + bh * Sq : NULL, kt, sc);
    free(buf);
  }
}

/* One (batch, head): backward, recomputing the probabilities from lse.
 * scratch: kt, vt [D][Skv], p, ds [Skv]. */
ND_HOT static void attn_bwd_head(const nd_pos *pos, size_t h, size_t Sq, size_t Skv, size_t D,
                                 const uint32_t *qp, const float *qe, const float *ke, const float *v,
                                 const float *o, const float *lse, const float *dout,
                                 float *dq, float *dk, float *dv, float *kt, float *vt, float *p,
                                 float *ds) {
  transpose_to(kt, ke, Skv, D);
  transpose_to(vt, v, Skv, D);
  memset(dq, 0, Sq * D * sizeof(float));
  memset(dk, 0, Skv * D * sizeof(float));
  memset(dv, 0, Skv * D * sizeof(float));
  const float slope = pos->kind == PE_KIND_BIAS ? pos->slopes[h] : 0.0f;
  const float scale = pos->scale;
  for (size_t i = 0; i < Sq; i++) {
    const size_t pq = qpos_of(qp, Sq, Skv, i), nv = pq + 1;
    const float *qi = qe + i * D, *doi = dout + i * D, *oi = o + i * D;
    scores(p, qi, kt, Skv, D, pq, scale, slope);
    const float l = lse[i];
    for (size_t n = 0; n < nv; n++) p[n] = expf(p[n] - l);
    float delta = 0;
    for (size_t d = 0; d < D; d++) delta += doi[d] * oi[d];
    /* dp[n] = <dO_i, v_n>; ds = p (dp - delta) scale */
    memset(ds, 0, nv * sizeof *ds);
    for (size_t d = 0; d < D; d++) {
      const float a = doi[d];
      const float *vd = vt + d * Skv;
#pragma omp simd
      for (size_t n = 0; n < nv; n++) ds[n] += a * vd[n];
    }
#pragma omp simd
    for (size_t n = 0; n < nv; n++) ds[n] = p[n] * (ds[n] - delta) * scale;
    float *dqi = dq + i * D;
    for (size_t n = 0; n < nv; n++) {
      const float *kn = ke + n * D;
      float *dkn = dk + n * D, *dvn = dv + n * D;
      const float sn = ds[n], pn = p[n];
#pragma omp simd
      for (size_t d = 0; d < D; d++) {
        dqi[d] += sn * kn[d];
        dkn[d] += sn * qi[d];
        dvn[d] += pn * doi[d];
      }
    }
  }
  encode_queries_bwd(pos, Sq, Skv, D, qp, dq);
  nd_encode_rows_bwd(pos, Skv, D, 0, dk, dk);
}

void nd_attn_bwd(const nd_pos *pos, size_t B, size_t H, size_t Sq, size_t Skv, size_t D,
                 const uint32_t *qpos, const float *qe, const float *ke, const float *v, const float *o,
                 const float *lse, const float *dout, float *dq, float *dk, float *dv) {
#pragma omp parallel if (B * H > 1)
  {
    float *buf = malloc((2 * Skv * D + 2 * Skv) * sizeof(float) + 1);
    if (!buf) abort();
#pragma omp for schedule(dynamic, 1)
    for (size_t bh = 0; bh < B * H; bh++)
      attn_bwd_head(pos, bh % H, Sq, Skv, D, qpos ? qpos + (bh / H) * Sq : NULL, qe + bh * Sq * D, ke + bh * Skv * D,
                    v + bh * Skv * D, o + bh * Sq * D, lse + bh * Sq, dout + bh * Sq * D,
                    dq + bh * Sq * D, dk + bh * Skv * D, dv + bh * Skv * D, buf,
                    buf + Skv * D, buf + 2 * Skv * D, buf + 2 * Skv * D + Skv);
    free(buf);
  }
}
