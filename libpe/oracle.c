/* The float64 oracle: NUMERICS.md evaluated in double precision, from the
 * scheme's float64 tables (not the float32 tables backends get), scalar and
 * straightforward.  Backends are judged against it. */
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct oracle {
  const pe_workload *w;
  const pe_workload_info *in;
  const pe_scheme_tables *t;
  double *cs, *sn; /* [Skv][R/2] a*cos, a*sin of p * inv_freq in float64 */
  double *kenc, *vv; /* one kv head, [Skv][D] */
} oracle;

static int oracle_init(pe_ctx *ctx, const pe_workload *w, oracle *o) {
  memset(o, 0, sizeof *o);
  o->w = w;
  o->in = &w->info;
  o->t = &w->tables;
  size_t rows = (size_t)o->in->kv_len, d = o->in->head_dim;
  size_t half = o->t->kind == PE_KIND_ROTARY ? o->t->rotary_dim / 2
                : o->t->kind == PE_KIND_ADDITIVE ? d / 2 : 0;
  o->kenc = malloc(rows * d * sizeof(double));
  o->vv = malloc(rows * d * sizeof(double));
  if (half) {
    o->cs = malloc(rows * half * sizeof(double));
    o->sn = malloc(rows * half * sizeof(double));
  }
  if (!o->kenc || !o->vv || (half && (!o->cs || !o->sn))) {
    free(o->kenc), free(o->vv), free(o->cs), free(o->sn);
    return pe__fail(ctx, PE_ENOMEM, "out of memory for the float64 oracle");
  }
  double a = o->t->kind == PE_KIND_ROTARY ? o->t->attention_factor : 1.0;
  for (size_t n = 0; n < rows; n++) {
    double p = (double)(o->in->position_offset + n);
    for (size_t j = 0; j < half; j++) {
      double phi = p * o->t->inv_freq[j];
      o->cs[n * half + j] = a * cos(phi);
      o->sn[n * half + j] = a * sin(phi);
    }
  }
  return 0;
}

static void oracle_free(oracle *o) {
  free(o->cs);
  free(o->sn);
  free(o->kenc);
  free(o->vv);
}

/* Encode one row x (float32) at key row n into y (double). */
static void encode_row(const oracle *o, const float *x, uint64_t n, double *y) {
  uint32_t d = o->in->head_dim;
  for (uint32_t i = 0; i < d; i++) y[i] = x[i];
  if (o->t->kind == PE_KIND_ROTARY) {
    uint32_t half = o->t->rotary_dim / 2;
    bool neox = o->t->pairing == PE_PAIRING_NEOX;
    for (uint32_t j = 0; j < half; j++) {
      uint32_t i0 = neox ? j : 2 * j, i1 = neox ? j + half : 2 * j + 1;
      double c = o->cs[n * half + j], s = o->sn[n * half + j];
      y[i0] = x[i0] * c - (double)x[i1] * s;
      y[i1] = x[i1] * c + (double)x[i0] * s;
    }
  } else if (o->t->kind == PE_KIND_ADDITIVE) {
    uint32_t half = d / 2;
    for (uint32_t j = 0; j < half; j++) {
      y[2 * j] += o->sn[n * half + j];
      y[2 * j + 1] += o->cs[n * half + j];
    }
  }
}

/* Attention of one encoded query row r (key-row coordinates) of head h. */
static void attend_row(const oracle *o, uint32_t h, uint64_t i, const double *q, double *out,
                       double *logits) {
  const pe_workload_info *in = o->in;
  uint32_t d = in->head_dim;
  uint64_t first, count = pe__visible_keys(in, i, &first);
  uint64_t r = in->kv_len - in->q_len + i;
  double slope = o->t->kind == PE_KIND_BIAS ? o->t->slopes[h] : 0.0;
  double mx = -INFINITY;
  for (uint64_t m = 0; m < count; m++) {
    uint64_t n = first + m;
    const double *k = o->kenc + n * d;
    double dot = 0;
    for (uint32_t c = 0; c < d; c++) dot += q[c] * k[c];
    logits[m] = in->softmax_scale * dot - slope * ((double)r - (double)n);
    if (logits[m] > mx) mx = logits[m];
  }
  double sum = 0;
  for (uint64_t m = 0; m < count; m++) sum += logits[m] = exp(logits[m] - mx);
  for (uint32_t c = 0; c < d; c++) out[c] = 0;
  for (uint64_t m = 0; m < count; m++) {
    const double *v = o->vv + (first + m) * d;
    double p = logits[m] / sum;
    for (uint32_t c = 0; c < d; c++) out[c] += p * v[c];
  }
}

int pe__oracle_rows(pe_ctx *ctx, const pe_workload *w, const uint64_t *rows, size_t nrows,
                    double *out) {
  oracle o;
  int rc = oracle_init(ctx, w, &o);
  if (rc) return rc;
  const pe_workload_info *in = o.in;
  uint32_t d = in->head_dim, group = in->q_heads / in->kv_heads;
  double *q = malloc(d * sizeof(double));
  double *logits = malloc((size_t)in->kv_len * sizeof(double));
  if (!q || !logits) {
    free(q), free(logits), oracle_free(&o);
    return pe__fail(ctx, PE_ENOMEM, "out of memory for the float64 oracle");
  }
  for (uint32_t b = 0; b < in->batch; b++)
    for (uint32_t kh = 0; kh < in->kv_heads; kh++) {
      size_t base = ((size_t)b * in->kv_heads + kh) * in->kv_len * d;
      for (uint64_t n = 0; n < in->kv_len; n++) {
        encode_row(&o, w->k + base + n * d, n, o.kenc + n * d);
        for (uint32_t c = 0; c < d; c++) o.vv[n * d + c] = w->v[base + n * d + c];
      }
      for (uint32_t h = kh * group; h < (kh + 1) * group; h++)
        for (size_t ri = 0; ri < nrows; ri++) {
          uint64_t i = rows[ri];
          const float *x = w->q + (((size_t)b * in->q_heads + h) * in->q_len + i) * d;
          encode_row(&o, x, in->kv_len - in->q_len + i, q);
          attend_row(&o, h, i, q, out + (((size_t)b * in->q_heads + h) * nrows + ri) * d, logits);
        }
    }
  free(q);
  free(logits);
  oracle_free(&o);
  return 0;
}

/* op = encode: Q' then K', every row. */
static int oracle_encode(pe_ctx *ctx, const pe_workload *w, double *out) {
  oracle o;
  int rc = oracle_init(ctx, w, &o);
  if (rc) return rc;
  const pe_workload_info *in = o.in;
  uint32_t d = in->head_dim;
  size_t nq = (size_t)in->batch * in->q_heads * in->q_len;
  for (size_t row = 0; row < nq; row++)
    encode_row(&o, w->q + row * d, in->kv_len - in->q_len + row % in->q_len, out + row * d);
  double *kout = out + nq * d;
  size_t nk = (size_t)in->batch * in->kv_heads * in->kv_len;
  for (size_t row = 0; row < nk; row++)
    encode_row(&o, w->k + row * d, row % in->kv_len, kout + row * d);
  oracle_free(&o);
  return 0;
}

int pe_oracle(pe_ctx *ctx, const pe_workload *w, uint64_t row0, uint64_t nrows, double *out) {
  if (w->tables_only) return pe__workload_runnable(ctx, w);
  if (w->info.op == PE_OP_ENCODE) return oracle_encode(ctx, w, out);
  if (row0 > w->info.q_len || nrows > w->info.q_len - row0)
    return pe__fail(ctx, PE_EINVAL, "oracle rows [%llu, %llu) outside q_len %llu",
                    (unsigned long long)row0, (unsigned long long)(row0 + nrows),
                    (unsigned long long)w->info.q_len);
  uint64_t *rows = malloc((nrows ? nrows : 1) * sizeof *rows);
  if (!rows) return pe__fail(ctx, PE_ENOMEM, "out of memory");
  for (uint64_t i = 0; i < nrows; i++) rows[i] = row0 + i;
  int rc = pe__oracle_rows(ctx, w, rows, (size_t)nrows, out);
  free(rows);
  return rc;
}

/* About 2^26 multiply-adds of oracle work per verification by default. */
#define VERIFY_BUDGET (64.0 * 1024 * 1024)

size_t pe__verify_rows(const pe_workload *w, uint64_t **rows) {
  const pe_workload_info *in = &w->info;
  uint64_t n = in->q_len;
  if (w->set.verify_rows) {
    if (w->set.verify_rows < n) n = w->set.verify_rows;
  } else {
    double per_row = (double)in->batch * in->q_heads * (double)in->kv_len * in->head_dim;
    double fit = floor(VERIFY_BUDGET / per_row);
    if (fit < (double)n) n = fit < 2 ? 2 : (uint64_t)fit;
    if (n > in->q_len) n = in->q_len;
  }
  *rows = malloc(n * sizeof **rows);
  if (!*rows) return 0;
  /* Evenly spaced, always the first and the last row (the longest causal). */
  for (uint64_t k = 0; k < n; k++)
    (*rows)[k] = n == 1 ? in->q_len - 1 : (uint64_t)llround((double)k * (double)(in->q_len - 1) / (double)(n - 1));
  return (size_t)n;
}
