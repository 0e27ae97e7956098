/* relative: does score(m + t, n + t) equal score(m, n)?
 *
 * RoPE's defining property (Su et al. 2021, RoFormer, eq. 16): <R_m q, R_n k>
 * depends on m - n only.  For each shift t (0, 1, 2, 4, .. max-shift) one
 * op = encode workload puts token i at position t + i (position_offset = t)
 * and runs on the backend; the score matrix S_t[i][j] = <q'_i, k'_j> is
 * compared with S_0.  Three ways to encode:
 *   f64      the scheme's float64 tables, angles and sin/cos in long double
 *            (x87 80-bit or wider), the dot in long double;
 *   backend  the backend's float32 Q', K' (libpe rounds float64 cos/sin
 *            tables once), the dot in float64 so only the encoding's error
 *            counts;
 *   naive32  angle = (float)p * (float)inv_freq and cosf/sinf, as a float32
 *            kernel computing its own angles does; dot in float64.
 * Each shifted workload sees L = t + N, so a length-dependent scheme
 * (dynamic-ntk, longrope) changes its tables with t. */
#include "probe.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct rel_ctx {
  const probe_opts *o;
  const probe_cfg *pc;
  uint32_t D;
  uint64_t N;
  double *s0[3], *st[3]; /* score matrices at shift 0 and t: f64, backend, naive */
  float *q, *k;          /* the inputs (identical at every shift) */
} rel_ctx;

/* Encode one row x at position p: long double, or float32 (naive). */
static void encode_row(const pe_scheme_tables *t, uint32_t D, uint64_t p, const float *x, double *out,
                       int naive) {
  for (uint32_t c = 0; c < D; c++) out[c] = x[c];
  uint32_t half = t->rotary_dim / 2;
  if (t->kind == PE_KIND_ADDITIVE)
    for (uint32_t j = 0; j < D / 2; j++) {
      long double phi = (long double)p * t->inv_freq[j];
      float phf = (float)p * (float)t->inv_freq[j];
      out[2 * j] += naive ? sinf(phf) : (double)sinl(phi);
      out[2 * j + 1] += naive ? cosf(phf) : (double)cosl(phi);
    }
  if (t->kind != PE_KIND_ROTARY) return;
  for (uint32_t j = 0; j < half; j++) {
    uint32_t a = t->pairing == PE_PAIRING_INTERLEAVED ? 2 * j : j;
    uint32_t b = t->pairing == PE_PAIRING_INTERLEAVED ? 2 * j + 1 : j + half;
    if (naive) {
      float phi = (float)p * (float)t->inv_freq[j], f = (float)t->attention_factor;
      float cs = cosf(phi) * f, sn = sinf(phi) * f;
      out[a] = x[a] * cs - x[b] * sn, out[b] = x[b] * cs + x[a] * sn;
    } else {
      long double phi = (long double)p * t->inv_freq[j], f = t->attention_factor;
      long double cs = cosl(phi) * f, sn = sinl(phi) * f;
      out[a] = (double)(x[a] * cs - x[b] * sn), out[b] = (double)(x[b] * cs + x[a] * sn);
    }
  }
}

static double dot(const double *x, const double *y, uint32_t D) {
  long double s = 0;
  for (uint32_t c = 0; c < D; c++) s += (long double)x[c] * y[c];
  return (double)s;
}

/* Scores of the three encodings at shift t into r->st (or s0). */
static void scores(rel_ctx *r, const pe_scheme_tables *t, uint64_t shift, const float *out, double **dst) {
  size_t n = r->N, D = r->D;
  double *qe = malloc(n * D * sizeof *qe), *ke = malloc(n * D * sizeof *ke);
  double bias_slope = t->kind == PE_KIND_BIAS ? t->slopes[0] : 0;
  for (int way = 0; way < 3 && qe && ke; way++) {
    for (size_t i = 0; i < n; i++) {
      if (way == 1) {
        for (size_t c = 0; c < D; c++) qe[i * D + c] = out[i * D + c], ke[i * D + c] = out[(n + i) * D + c];
        continue;
      }
      encode_row(t, r->D, shift + i, r->q + i * D, qe + i * D, way == 2);
      encode_row(t, r->D, shift + i, r->k + i * D, ke + i * D, way == 2);
    }
    for (size_t i = 0; i < n; i++)
      for (size_t j = 0; j < n; j++)
        dst[way][i * n + j] = dot(qe + i * D, ke + j * D, r->D) - bias_slope * ((double)i - (double)j);
  }
  free(qe), free(ke);
}

static double max_diff(const double *a, const double *b, size_t n) {
  double m = 0;
  for (size_t i = 0; i < n; i++) m = fmax(m, fabs(a[i] - b[i]));
  return m;
}

static char *config_text(const rel_ctx *r, uint64_t shift) {
  size_t n = strlen(r->pc->scheme_text) + 512;
  char *t = malloc(n);
  if (t)
    snprintf(t, n, "[workload]\nop = encode\nhead_dim = %u\nseq_len = %llu\nposition_offset = %llu\n"
                   "[run]\nwarmup = 0\niterations = 1\nseed = %llu\n[scheme]\n%s",
             r->D, (unsigned long long)r->N, (unsigned long long)shift, (unsigned long long)r->o->seed,
             r->pc->scheme_text);
  return t;
}

/* One shift: run, score, add the row. */
static int shift_row(pe_ctx *ctx, rel_ctx *r, probe_doc *d, uint64_t shift, double *err0) {
  pe_workload *w;
  pe_result *res;
  char *text = config_text(r, shift);
  int rc = text ? run_text(ctx, r->o, r->pc, text, &w, &res) : probe_fail(r->o, 1, "out of memory");
  free(text);
  if (rc) return pe_result_free(res), pe_workload_free(w), rc;
  const pe_task *task = pe_workload_task(w);
  const pe_workload_info *in = pe_workload_get_info(w);
  size_t nd = r->N * r->D;
  if (!r->q) r->q = malloc(nd * sizeof *r->q), r->k = malloc(nd * sizeof *r->k);
  if (shift == 0 && r->q) memcpy(r->q, task->q, nd * sizeof *r->q), memcpy(r->k, task->k, nd * sizeof *r->k);
  else if (memcmp(r->q, task->q, nd * sizeof *r->q) || memcmp(r->k, task->k, nd * sizeof *r->k))
    rc = probe_fail(r->o, 1, "inputs differ between shifts (generator changed?)");
  if (rc == 0) {
    double **dst = shift == 0 ? r->s0 : r->st;
    size_t nn = r->N * r->N;
    scores(r, in->tables, shift, res->output, dst);
    double errB = max_diff(dst[1], dst[0], nn);
    if (shift == 0) *err0 = errB;
    pt_num(&d->data, (double)shift), pt_num(&d->data, (double)(shift + r->N));
    const pe_scheme_tables *t = in->tables;
    pt_num(&d->data, t->kind == PE_KIND_ROTARY ? t->inv_freq[t->rotary_dim / 2 - 1] : NAN);
    for (int way = 0; way < 3; way++) pt_num(&d->data, shift ? max_diff(dst[way], r->s0[way], nn) : 0);
    pt_num(&d->data, errB);
  }
  pe_result_free(res);
  pe_workload_free(w);
  return rc;
}

static void plot(probe_doc *d, const char *config) {
  svg_plot *p = &d->plot;
  p->logx = p->logy = 1;
  p->title = probe_strf("relative: max |S(m+t, n+t) - S(m, n)| (%s)", config);
  snprintf(p->xlabel, sizeof p->xlabel, "shift t (tokens)");
  snprintf(p->ylabel, sizeof p->ylabel, "max deviation of scores");
  size_t n = d->data.nrows;
  double *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y);
  static const char *const names[] = {"float64", "backend float32", "naive float32 angles"};
  for (int c = 0; x && y && c < 3; c++) {
    for (size_t i = 0; i < n; i++) x[i] = pt_get(&d->data, i, 0), y[i] = fmax(pt_get(&d->data, i, 3 + c), 1e-17);
    svg_add(p, names[c], x, y, n, 0);
  }
  free(x), free(y);
}

static int sweep(pe_ctx *ctx, rel_ctx *r, probe_doc *d) {
  uint64_t max = r->o->max_shift ? r->o->max_shift : (uint64_t)1 << 20;
  pt_cols(&d->data, "shift:%.0f,L:%.0f,min_inv_freq:%.4e,dev_f64:%.3e,dev_backend:%.3e,dev_naive_f32:%.3e,"
                    "err_backend_vs_f64:%.3e");
  double err0 = 0;
  int rc = shift_row(ctx, r, d, 0, &err0);
  for (uint64_t t = 1; rc == 0 && t <= max; t = t * 2 > max && t != max ? max : t * 2)
    rc = shift_row(ctx, r, d, t, &err0);
  if (rc) return rc;
  double scale = 0;
  for (size_t i = 0; i < r->N * r->N; i++) scale = fmax(scale, fabs(r->s0[0][i]));
  size_t last = d->data.nrows - 1;
  doc_foot(d, "\nscores are O(%.3g) (max |S_0|).  At t = %llu: float64 %.3g, backend %.3g, naive float32 %.3g\n",
           scale, (unsigned long long)max, pt_get(&d->data, last, 3), pt_get(&d->data, last, 4),
           pt_get(&d->data, last, 5));
  doc_num(d, "score_scale", scale), doc_num(d, "dev_f64_max", pt_get(&d->data, last, 3));
  doc_num(d, "dev_backend_max", pt_get(&d->data, last, 4));
  doc_num(d, "dev_naive_f32_max", pt_get(&d->data, last, 5));
  plot(d, r->o->config);
  return 0;
}

static int run(pe_ctx *ctx, const probe_opts *o, probe_doc *d) {
  probe_cfg pc;
  if (probe_cfg_load(ctx, o->config, &pc) != 0) return probe_cfg_free(&pc), probe_fail(o, 2, "%s", pe_ctx_error(ctx));
  rel_ctx r = {.o = o, .pc = &pc, .D = pc.head_dim, .N = o->tokens ? o->tokens : 64};
  int rc = 0;
  for (int i = 0; i < 3; i++) {
    r.s0[i] = malloc(r.N * r.N * sizeof(double)), r.st[i] = malloc(r.N * r.N * sizeof(double));
    if (!r.s0[i] || !r.st[i]) rc = probe_fail(o, 1, "out of memory");
  }
  doc_head(d, "relative: %s, scheme %s; %llu tokens at positions t .. t+%llu, head_dim %u, seed %llu,\n"
              "backend %s.  Deviations: max over i, j of |S_t[i][j] - S_0[i][j]|, S = <q'_i, k'_j>.\n\n",
           o->config, pc.scheme, (unsigned long long)r.N, (unsigned long long)r.N - 1, r.D,
           (unsigned long long)o->seed, o->backend ? o->backend : "reference");
  if (rc == 0) rc = sweep(ctx, &r, d);
  for (int i = 0; i < 3; i++) free(r.s0[i]), free(r.st[i]);
  free(r.q), free(r.k);
  probe_cfg_free(&pc);
  return rc;
}

const probe_cmd probe_relative_cmd = {
    "relative", "btTs",
    "usage: pe-probe relative CONFIG [--backend NAME] [--tokens N] [--max-shift T] [--seed S]\n"
    "                                [--format table|csv|json] [--output FILE] [--plot FILE.svg]\n"
    "\n"
    "The relative-position property score(m+t, n+t) = score(m, n) of the config's scheme\n"
    "(Su et al. 2021, RoFormer, eq. 16), over all m, n < N and t = 1, 2, 4, .. T (default\n"
    "2^20): each shift runs an op = encode workload (position_offset = t) on the backend\n"
    "and compares the score matrix <q'_i, k'_j> with t = 0, computed three ways:\n"
    "  dev_f64        from the scheme's float64 tables, angle and sin/cos in long double\n"
    "  dev_backend    the backend's float32 Q', K' (dot in float64)\n"
    "  dev_naive_f32  angles as float32 products with cosf/sinf (what a float32 kernel\n"
    "                 computing its own angles gets: error grows with position)\n"
    "and err_backend_vs_f64 (backend against float64 at the same t).  Rotary schemes\n"
    "keep dev_f64 at rounding level (~1e-13); sinusoidal (additive) fails at every t;\n"
    "ALiBi is relative by construction; a length-dependent scheme (dynamic-ntk) changes\n"
    "its tables with L = t + N (column min_inv_freq) and so fails past\n"
    "original_max_position_embeddings.  Inputs: N(0,1), libpe's generator with --seed.\n"
    "\n"
    "  -b, --backend NAME  backend plugin or the config's backend label (default reference)\n"
    "  -t, --tokens N      tokens per workload (default 64)\n"
    "  -T, --max-shift T   largest shift (default 1048576)\n"
    "  -s, --seed S        input seed (default 0)\n"
    "\n"
    "Does not claim: that a model attends relatively; only what the encoding does to\n"
    "fixed vectors.  The config's own position_offset is not used (positions start at t).\n",
    run};
