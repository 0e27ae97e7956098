/* base: the RoPE base a context length needs (Men et al. 2024, "Base of
 * RoPE Bounds Context Length", arXiv:2405.14591):
 *
 *   f_b(m) = sum_{j=0..R/2-1} cos(m b^(-2j/R));  a base b "supports" length
 *   L when f_b(m) >= 0 for every m < L.
 *
 * f_b(m) is evaluated in float64 by rotating (cos, sin)(m theta_j) one step
 * at a time, re-anchored with libm's cos/sin every 256 steps (drift stays
 * ~1e-13).  The smallest supporting b is not monotone in L or b, so it is
 * searched, not bisected: a log grid of 256 points per decade, then two
 * local refinements (32 points each) below the first grid point that
 * passes. */
#include "probe.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define ANCHOR 256
#define GRID_PER_DECADE 256
#define REFINE 32
#define MAX_PAIRS 2048

/* Smallest m < cap with f_b(m) < 0, or cap when there is none. */
static uint64_t first_negative(double b, uint32_t R, uint64_t cap) {
  static double th[MAX_PAIRS], c[MAX_PAIRS], s[MAX_PAIRS], cw[MAX_PAIRS], sw[MAX_PAIRS];
  uint32_t half = R / 2;
  for (uint32_t j = 0; j < half; j++) th[j] = pow(b, -2.0 * j / R), cw[j] = cos(th[j]), sw[j] = sin(th[j]);
  double f = 0;
  for (uint64_t m = 0; m < cap; m++) {
    if (m % ANCHOR == 0) {
      f = 0;
      for (uint32_t j = 0; j < half; j++)
        c[j] = cos((double)m * th[j]), s[j] = sin((double)m * th[j]), f += c[j];
    }
    if (f < 0) return m;
    double next = 0; /* rotate to m + 1 and sum f_b(m + 1) in the same pass */
    for (uint32_t j = 0; j < half; j++) {
      double cn = c[j] * cw[j] - s[j] * sw[j];
      s[j] = s[j] * cw[j] + c[j] * sw[j];
      c[j] = cn;
      next += cn;
    }
    f = next;
  }
  return cap;
}

/* The smallest b of n log-spaced points in (lo, hi] that supports L (hi
 * must); returns the point before it in *prev. */
static double scan(double lo, double hi, int n, uint32_t R, uint64_t L, double *prev) {
  double step = log(hi / lo) / n;
  *prev = lo;
  for (int i = 1; i <= n; i++) {
    double b = i == n ? hi : lo * exp(step * i);
    if (first_negative(b, R, L) >= L) return b;
    *prev = b;
  }
  return hi;
}

typedef struct grid {
  double *b;
  uint64_t *fn; /* first_negative(b, R, max_len) */
  size_t n;
} grid;

/* Grid from b = 2 up to the first point that supports max_len. */
static int make_grid(grid *g, uint32_t R, uint64_t max_len) {
  size_t cap = 13 * GRID_PER_DECADE;
  g->b = malloc(cap * sizeof *g->b), g->fn = malloc(cap * sizeof *g->fn), g->n = 0;
  if (!g->b || !g->fn) return -1;
  for (size_t i = 0; i < cap; i++) {
    g->b[i] = 2 * pow(10, (double)i / GRID_PER_DECADE);
    g->fn[i] = first_negative(g->b[i], R, max_len);
    g->n = i + 1;
    if (g->fn[i] >= max_len) return 0;
  }
  return -1; /* no base up to 2e13 */
}

static double min_base(const grid *g, uint32_t R, uint64_t L) {
  size_t i = 0;
  while (i < g->n && g->fn[i] < L) i++;
  if (i == g->n) return NAN;
  if (i == 0) return g->b[0];
  double prev, b = scan(g->b[i - 1], g->b[i], REFINE, R, L, &prev);
  return scan(prev, b, REFINE, R, L, &prev);
}

static void plot(probe_doc *d, const double *L, const double *b, size_t n, double base) {
  svg_plot *p = &d->plot;
  p->logx = p->logy = 1;
  p->title = probe_strf("smallest RoPE base with sum_j cos(m theta_j) >= 0 for m < L");
  snprintf(p->xlabel, sizeof p->xlabel, "context length L");
  snprintf(p->ylabel, sizeof p->ylabel, "base b");
  svg_add(p, "smallest base", L, b, n, 0);
  double hx[2] = {L[0], L[n - 1]}, hy[2] = {base, base};
  svg_add(p, "config base", hx, hy, 2, 0);
}

static int table(probe_doc *d, uint32_t R, uint64_t max_len, double base) {
  grid g = {0};
  if (make_grid(&g, R, max_len) != 0) return free(g.b), free(g.fn), -1;
  pt_cols(&d->data, "L,min_base:%.6g,first_negative_m_at_min_base,config_base_ok");
  double Ls[8], bs[8];
  size_t n = 0;
  for (int k = 7; k >= 0; k--) {
    uint64_t L = max_len >> k;
    if (L < 2) continue;
    double b = min_base(&g, R, L);
    pt_num(&d->data, (double)L), pt_num(&d->data, b);
    pt_num(&d->data, (double)first_negative(b, R, 4 * L)); /* 4L: none below */
    pt_num(&d->data, first_negative(base, R, L) >= L);
    Ls[n] = (double)L, bs[n++] = b;
  }
  plot(d, Ls, bs, n, base);
  free(g.b), free(g.fn);
  return 0;
}

static int run(pe_ctx *ctx, const probe_opts *o, probe_doc *d) {
  probe_cfg pc;
  pe_workload *w = NULL;
  if (probe_cfg_load(ctx, o->config, &pc) != 0 || tables_at(ctx, &pc, pc.scheme_text, pc.dir, pc.L, &w) != 0)
    return probe_cfg_free(&pc), probe_fail(o, 2, "%s", pe_ctx_error(ctx));
  const pe_scheme_tables *t = pe_workload_get_info(w)->tables;
  uint32_t R = o->head_dim ? o->head_dim : t->kind == PE_KIND_ROTARY ? t->rotary_dim : pc.head_dim;
  uint64_t max_len = o->max_len ? o->max_len : 131072, cap = (uint64_t)1 << 22;
  double base = o->base ? o->base : pc.base;
  pe_workload_free(w);
  probe_cfg_free(&pc);
  if (R % 2 || R / 2 > MAX_PAIRS) return probe_fail(o, 2, "--head-dim %u: expected an even number <= %d", R, 2 * MAX_PAIRS);
  doc_head(d, "base: R = %u rotary dims; f_b(m) = sum_j cos(m b^(-2j/R)) (Men et al. 2024)\n", R);
  uint64_t m0 = first_negative(base, R, cap);
  if (m0 < cap) doc_head(d, "config base %g: f_b first turns negative at m = %llu\n\n", base, (unsigned long long)m0);
  else doc_head(d, "config base %g: f_b stays >= 0 for every m < %llu\n\n", base, (unsigned long long)cap);
  doc_num(d, "rotary_dim", R), doc_num(d, "base", base), doc_num(d, "first_negative_m", (double)m0);
  if (table(d, R, max_len, base) != 0) return probe_fail(o, 1, "no base up to 2e13 supports L = %llu", (unsigned long long)max_len);
  doc_foot(d, "\nmin_base: smallest b on a 256-per-decade log grid from 2, refined twice (to ~3e-6\n"
              "relative), with f_b(m) >= 0 for all m < L; first_negative_m: where f turns negative\n"
              "for that base (4L: not below 4L).  Not monotone in b: a smaller isolated base\n"
              "between grid points may also pass.\n");
  return 0;
}

const probe_cmd probe_base_cmd = {
    "base", "mdB",
    "usage: pe-probe base CONFIG [--head-dim R] [--max-len L] [--base B]\n"
    "                            [--format table|csv|json] [--output FILE] [--plot FILE.svg]\n"
    "\n"
    "For rotary dimension R: f_b(m) = sum_{j=0..R/2-1} cos(m b^(-2j/R)), the first m where\n"
    "f_b turns negative for the config's base, and for L = max_len/128 .. max_len (powers\n"
    "of two; default 1K .. 128K) the smallest base b with f_b(m) >= 0 for every m < L.\n"
    "Source: Men et al. 2024, \"Base of RoPE Bounds Context Length\" (arXiv:2405.14591):\n"
    "f_b(m) is the expected score of similar q and k at distance m, up to a factor; its\n"
    "sign is their criterion for long-context ability.  float64; f_b is evaluated by\n"
    "rotation re-anchored every 256 steps.  The search scans b on a log grid (256 per\n"
    "decade from 2) and refines locally: f_b is not monotone in b, so no bisection.\n"
    "\n"
    "  -d, --head-dim R   rotary dims (default: the config's rotary_dim)\n"
    "  -m, --max-len L    largest L of the table (default 131072)\n"
    "  -B, --base B       the base to check (default: the config's)\n"
    "\n"
    "Does not claim: that a model trained with a larger base handles long contexts, nor\n"
    "that one with a smaller base cannot; it evaluates the paper's bound only.\n",
    run};
