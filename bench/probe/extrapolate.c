/* extrapolate: the central experiment of Position Interpolation (Chen et
 * al. 2023, "Extending Context Window of Large Language Models via
 * Positional Interpolation", arXiv:2306.15595, section 2.3, fig. 2).
 *
 * A "trained" score function a(s) = Re sum_j h_j exp(i s theta_j) with RoPE
 * frequencies theta_j = base^(-2j/R) is fitted by least squares (complex h,
 * LAPACK dgelsd) to N(0,1) targets at
 * s = 0 .. L-1.  Each compared scheme then evaluates the same h with its
 * own frequencies, a_X(p) = Re sum_j h_j exp(i p inv_freq_X[j]), at p in
 * [0, L) (the fitted positions) and [L, range * L] (every position past
 * them, p = L included): plain RoPE extrapolates (unbounded, the paper's
 * "beyond 8000"), PI interpolates (p / s stays within the fitted range).
 * Over many seeds; medians and extremes.
 *
 * The design matrix is extremely ill-conditioned (low frequencies are
 * nearly collinear on [0, L)), so the size of the blow-up depends on the
 * cut-off: rcond = FLT_EPSILON (default) drops directions a float32 model
 * could not resolve and gives the paper's magnitudes (~1e4 at L = 2048);
 * numpy's lstsq default (L * DBL_EPSILON) gives ~1e10.  PI stays O(1) at
 * any cut-off. */
#include "probe.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#ifdef HAVE_LAPACKE
#include <lapacke.h>
#endif

#define MAX_SCHEMES 8

typedef struct ex_ctx {
  const probe_opts *o;
  uint32_t half, seeds;
  uint64_t L, P;       /* fit on [0, L); evaluate on [0, P] */
  double *h;           /* [seeds][R]: Re h_j, then -Im h_j, per pair */
  double *y;           /* targets [seeds][L] */
  double resid_rms;    /* median over seeds */
  double rcond;        /* dgelsd: singular values below rcond * max are dropped */
} ex_ctx;

#ifdef HAVE_LAPACKE
static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double median(double *v, size_t n) {
  qsort(v, n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Least squares for every seed at once: one SVD of the L x R design. */
static int fit(ex_ctx *e, double base) {
  uint32_t R = 2 * e->half, S = e->seeds;
  size_t L = e->L;
  double *A = malloc(L * R * sizeof *A), *B = malloc(L * S * sizeof *B), *sv = malloc(R * sizeof *sv);
  e->y = malloc(L * S * sizeof *e->y), e->h = malloc((size_t)R * S * sizeof *e->h);
  float *tmp = malloc(L * sizeof *tmp);
  if (!A || !B || !sv || !e->y || !e->h || !tmp) return free(A), free(B), free(sv), free(tmp), -1;
  for (uint32_t j = 0; j < e->half; j++)
    for (size_t s = 0; s < L; s++) { /* column-major */
      double phi = (double)s * rope_theta(base, R, j);
      A[(2 * j) * L + s] = cos(phi), A[(2 * j + 1) * L + s] = sin(phi);
    }
  for (uint32_t k = 0; k < S; k++) {
    pe_random_normal(e->o->seed + k, 0, tmp, L);
    for (size_t s = 0; s < L; s++) B[k * L + s] = e->y[k * L + s] = tmp[s];
  }
  lapack_int rank;
  int info = (int)LAPACKE_dgelsd(LAPACK_COL_MAJOR, (lapack_int)L, (lapack_int)R, (lapack_int)S, A,
                                 (lapack_int)L, B, (lapack_int)L, sv, e->rcond, &rank);
  for (uint32_t k = 0; k < S; k++) memcpy(e->h + (size_t)k * R, B + k * L, R * sizeof *e->h);
  free(A), free(B), free(sv), free(tmp);
  return info;
}

/* max |a_X| on [0, L) and [L, P] for every seed; seed 0's curve.
 * Positions are 0-based: the fit saw s = 0 .. L-1, so p = L is the first
 * position out of range. */
static void evaluate(const ex_ctx *e, const double *inv, double *in_max, double *out_max, double *curve) {
  uint32_t R = 2 * e->half;
  double *cs = malloc(R * sizeof *cs);
  for (uint32_t k = 0; k < e->seeds; k++) in_max[k] = out_max[k] = 0;
  for (uint64_t p = 0; cs && p <= e->P; p++) {
    for (uint32_t j = 0; j < e->half; j++) cs[2 * j] = cos((double)p * inv[j]), cs[2 * j + 1] = sin((double)p * inv[j]);
    for (uint32_t k = 0; k < e->seeds; k++) {
      const double *h = e->h + (size_t)k * R;
      double a = 0;
      for (uint32_t c = 0; c < R; c++) a += h[c] * cs[c];
      double *m = p < e->L ? &in_max[k] : &out_max[k];
      *m = fmax(*m, fabs(a));
      if (k == 0) curve[p] = a;
    }
  }
  free(cs);
}

static double residual_rms(const ex_ctx *e, double base, uint32_t k) {
  double sq = 0;
  for (uint64_t s = 0; s < e->L; s++) {
    double a = 0;
    for (uint32_t j = 0; j < e->half; j++) {
      double phi = (double)s * rope_theta(base, 2 * e->half, j);
      a += e->h[(size_t)k * 2 * e->half + 2 * j] * cos(phi) + e->h[(size_t)k * 2 * e->half + 2 * j + 1] * sin(phi);
    }
    sq += (a - e->y[k * e->L + s]) * (a - e->y[k * e->L + s]);
  }
  return sqrt(sq / (double)e->L);
}

static void add_row(probe_doc *d, const char *name, double *in, double *out, uint32_t n) {
  pt_str(&d->data, name);
  pt_num(&d->data, median(in, n)), pt_num(&d->data, in[0]), pt_num(&d->data, in[n - 1]);
  pt_num(&d->data, median(out, n)), pt_num(&d->data, out[0]), pt_num(&d->data, out[n - 1]);
}

/* One compared scheme: its tables at L = P + 1, evaluation, row, curve. */
static int scheme(pe_ctx *ctx, const ex_ctx *e, const probe_cfg *pc, const char *name, probe_doc *d,
                  double *xs) {
  char *text = scheme_text_for(ctx, pc, name, probe_factor(e->o, pc), e->o->factor > 0);
  pe_workload *w = NULL;
  if (!text || tables_at(ctx, pc, text, NULL, e->P + 1, &w) != 0)
    return free(text), probe_fail(e->o, 2, "--compare %s: %s", name, pe_ctx_error(ctx));
  free(text);
  const pe_scheme_tables *t = pe_workload_get_info(w)->tables;
  if (t->kind != PE_KIND_ROTARY || t->rotary_dim != 2 * e->half)
    return pe_workload_free(w), probe_fail(e->o, 2, "--compare %s: not rotary with R = %u", name, 2 * e->half);
  double *in = malloc(e->seeds * sizeof *in), *out = malloc(e->seeds * sizeof *out);
  double *curve = malloc((e->P + 1) * sizeof *curve);
  if (in && out && curve) {
    evaluate(e, t->inv_freq, in, out, curve);
    add_row(d, name, in, out, e->seeds);
    svg_add(&d->plot, name, xs, curve, e->P + 1, 0);
  }
  free(in), free(out), free(curve);
  pe_workload_free(w);
  return 0;
}

static void targets_plot(probe_doc *d, const ex_ctx *e, const double *xs) {
  size_t step = e->L > 4096 ? e->L / 4096 : 1, n = 0;
  double *x = malloc(e->L * sizeof *x), *y = malloc(e->L * sizeof *y);
  for (size_t s = 0; x && y && s < e->L; s += step) x[n] = xs[s], y[n++] = e->y[s];
  if (x && y) svg_add(&d->plot, "targets (seed 0)", x, y, n, 1);
  free(x), free(y);
}

static int compare(pe_ctx *ctx, ex_ctx *e, const probe_cfg *pc, probe_doc *d) {
  pt_cols(&d->data, "scheme,in_max_median:%.4g,in_max_min:%.4g,in_max_max:%.4g,out_max_median:%.4g,"
                    "out_max_min:%.4g,out_max_max:%.4g");
  double *xs = malloc((e->P + 1) * sizeof *xs);
  if (!xs) return probe_fail(e->o, 1, "out of memory");
  for (uint64_t p = 0; p <= e->P; p++) xs[p] = (double)p;
  targets_plot(d, e, xs);
  char *list = strdup(e->o->compare ? e->o->compare : "rope,pi,ntk,yarn"), *save = NULL;
  int rc = 0, n = 0;
  for (char *tok = strtok_r(list, ",", &save); tok && rc == 0; tok = strtok_r(NULL, ",", &save))
    rc = ++n > MAX_SCHEMES ? probe_fail(e->o, 2, "--compare: at most %d schemes", MAX_SCHEMES)
                           : scheme(ctx, e, pc, tok, d, xs);
  free(list), free(xs);
  return rc;
}

static int probe(pe_ctx *ctx, ex_ctx *e, const probe_cfg *pc, probe_doc *d) {
  if (fit(e, pc->base) != 0) return probe_fail(e->o, 1, "least squares (dgelsd) failed");
  double *r = malloc(e->seeds * sizeof *r);
  for (uint32_t k = 0; r && k < e->seeds; k++) r[k] = residual_rms(e, pc->base, k);
  e->resid_rms = r ? median(r, e->seeds) : NAN;
  free(r);
  doc_head(d, "extrapolate: %s; fit RoPE (base %g, R = %u) to N(0,1) targets at s = 0..%llu, %u seeds;\n"
              "schemes evaluate the fitted h with their own frequencies (factor %g) up to p = %llu.\n"
              "dgelsd rcond %.3g; median fit residual rms %.3f (targets: 1)\n\n",
           e->o->config, pc->base, 2 * e->half, (unsigned long long)e->L - 1, e->seeds,
           probe_factor(e->o, pc), (unsigned long long)e->P, e->rcond, e->resid_rms);
  doc_num(d, "train_len", (double)e->L), doc_num(d, "eval_len", (double)e->P);
  doc_num(d, "seeds", e->seeds), doc_num(d, "fit_residual_rms", e->resid_rms);
  doc_num(d, "rcond", e->rcond);
  svg_plot *p = &d->plot;
  p->title = probe_strf("extrapolate: a(s) fitted on [0, %llu), seed %llu",
                        (unsigned long long)e->L, (unsigned long long)e->o->seed);
  snprintf(p->xlabel, sizeof p->xlabel, "position p");
  snprintf(p->ylabel, sizeof p->ylabel, "a(p)");
  int rc = compare(ctx, e, pc, d);
  doc_foot(d, "\nin_max: max |a| over the fitted p in [0, L) = 0..%llu; out_max: over the p past them,\n"
              "[L, %llu]; median [min, max] over seeds.\n",
           (unsigned long long)e->L - 1, (unsigned long long)e->P);
  free(e->h), free(e->y);
  return rc;
}
#endif

static int run(pe_ctx *ctx, const probe_opts *o, probe_doc *d) {
#ifndef HAVE_LAPACKE
  (void)ctx, (void)d;
  return probe_fail(o, 1, "unsupported: pe-probe was built without LAPACKE (install liblapacke-dev "
                          "and re-run configure)");
#else
  probe_cfg pc;
  pe_workload *w = NULL;
  if (probe_cfg_load(ctx, o->config, &pc) != 0 || tables_at(ctx, &pc, pc.scheme_text, pc.dir, pc.L, &w) != 0)
    return probe_cfg_free(&pc), probe_fail(o, 2, "%s", pe_ctx_error(ctx));
  const pe_scheme_tables *t = pe_workload_get_info(w)->tables;
  ex_ctx e = {.o = o, .seeds = o->seeds ? o->seeds : 16, .L = o->train_len ? o->train_len : pc.L_train,
              .rcond = o->rcond ? o->rcond : FLT_EPSILON};
  e.half = (t->kind == PE_KIND_ROTARY ? t->rotary_dim : pc.head_dim) / 2;
  e.P = (uint64_t)((o->range ? o->range : probe_factor(o, &pc)) * (double)e.L);
  pe_workload_free(w);
  int rc = e.L < 2 * e.half ? probe_fail(o, 2, "--train-len %llu: need at least R = %u points",
                                         (unsigned long long)e.L, 2 * e.half)
                            : probe(ctx, &e, &pc, d);
  probe_cfg_free(&pc);
  return rc;
#endif
}

const probe_cmd probe_extrapolate_cmd = {
    "extrapolate", "cFNRSsr",
    "usage: pe-probe extrapolate CONFIG [--compare rope,pi,ntk,yarn] [--factor S] [--train-len L]\n"
    "                                   [--range K] [--seeds N] [--seed S] [--format table|csv|json]\n"
    "                                   [--output FILE] [--plot FILE.svg]\n"
    "\n"
    "Position Interpolation's argument (Chen et al. 2023, arXiv:2306.15595, section 2.3 and\n"
    "fig. 2): fit a(s) = Re sum_j h_j exp(i s theta_j), theta_j = base^(-2j/R) (RoPE with the\n"
    "config's base and rotary dims), complex h by least squares (LAPACK dgelsd) to N(0,1)\n"
    "targets at s = 0 .. L-1 (seeds S, S+1, ..; libpe's Philox generator).\n"
    "Then each compared scheme (its tables from its plugin, with the config's parameters\n"
    "where declared, at context length K L) evaluates the same h with its frequencies:\n"
    "max |a| on [0, L) and on [L, K L] (positions are 0-based: p = L is the first one past\n"
    "the fit).  RoPE extrapolates and blows up; PI maps [L, sL] to p/s in [L/s, L], back\n"
    "into the fitted span, and stays bounded.  Table: median, min, max over seeds.\n"
    "The plot shows seed S's curves and targets.\n"
    "\n"
    "  -c, --compare LIST  schemes (default rope,pi,ntk,yarn)\n"
    "  -F, --factor S      factor of the compared schemes (default: the config's, else 4)\n"
    "  -N, --train-len L   fitted range (default: the config's L_train)\n"
    "  -R, --range K       evaluate up to K L (default: the factor)\n"
    "  -S, --seeds N       number of target draws (default 16)\n"
    "  -s, --seed S        first seed (default 0)\n"
    "  -r, --rcond X       dgelsd cut-off (default FLT_EPSILON = 1.2e-7: directions a\n"
    "                      float32 model cannot resolve are dropped; this gives the\n"
    "                      paper's ~1e4 at L = 2048; numpy's default L*DBL_EPSILON gives\n"
    "                      ~1e10).  The RoPE/PI contrast holds at any cut-off\n"
    "\n"
    "Does not claim: that a trained model's attention behaves like this fit; it shows, as\n"
    "the paper does, how loosely extrapolation of such functions is constrained compared\n"
    "with interpolation.  Attention factors are not applied (they scale a uniformly).\n",
    run};
