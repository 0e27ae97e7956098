/* decay: RoFormer's long-term-decay bound (Su et al. 2021, "RoFormer:
 * Enhanced Transformer with Rotary Position Embedding", arXiv:2104.09864,
 * section 3.4.3) and the mean cosine, against relative distance s:
 *
 *   bound(s)    = (1/(R/2)) sum_{j=1..R/2} |S_j(s)|,
 *                 S_j(s) = sum_{k<j} exp(i s inv_freq[k])     (32.5 at s=0, R=128)
 *   mean_cos(s) = (1/(R/2)) sum_j cos(s inv_freq[j])
 *
 * for the config's scheme, or for several schemes (--compare), each with
 * the config's parameters where it declares them. */
#include "probe.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SCHEMES 8

typedef struct curve {
  char *name; /* the --compare word or the config's plugin, as given (any length) */
  uint32_t half;
  int additive; /* sinusoidal: mean_cos(s) = <pe(m), pe(m+s)> / (D/2) */
  double *inv;
} curve;

static void bound_at(const curve *c, double s, double *bound, double *mean_cos) {
  double re = 0, im = 0, sum = 0, cs = 0;
  for (uint32_t k = 0; k < c->half; k++) {
    double phi = s * c->inv[k];
    re += cos(phi), im += sin(phi);
    sum += hypot(re, im); /* |S_{k+1}(s)| */
    cs += cos(phi);
  }
  *bound = sum / c->half, *mean_cos = cs / c->half;
}

/* The inv_freq of one scheme at L (its own section, or a compared one). */
static int load_curve(pe_ctx *ctx, const probe_opts *o, const probe_cfg *pc, const char *name,
                      uint64_t L, curve *c) {
  char *text = name ? scheme_text_for(ctx, pc, name, probe_factor(o, pc), o->factor > 0) : NULL;
  if (name && !text) return probe_fail(o, 2, "--compare %s: %s", name, pe_ctx_error(ctx));
  pe_workload *w;
  /* a --compare name is relative to the working directory, the config's
   * own plugin to the config's directory */
  int rc = text ? tables_at(ctx, pc, text, NULL, L, &w) : tables_at(ctx, pc, pc->scheme_text, pc->dir, L, &w);
  free(text);
  if (rc) return probe_fail(o, 2, "%s", pe_ctx_error(ctx));
  const pe_scheme_tables *t = pe_workload_get_info(w)->tables;
  if (!(c->name = strdup(name ? name : pc->scheme))) return pe_workload_free(w), probe_fail(o, 1, "out of memory");
  if (t->kind != PE_KIND_ROTARY && t->kind != PE_KIND_ADDITIVE) {
    /* the tables belong to w: read them before it goes */
    const char *why = t->kind == PE_KIND_BIAS ? "a bias -slope_h * s, linear in the distance s" : "the identity";
    pe_workload_free(w);
    return probe_fail(o, 1, "scheme %s has no frequencies (%s): nothing to bound", c->name, why);
  }
  c->additive = t->kind == PE_KIND_ADDITIVE;
  c->half = t->kind == PE_KIND_ROTARY ? t->rotary_dim / 2 : pe_workload_get_info(w)->head_dim / 2;
  c->inv = malloc(c->half * sizeof *c->inv);
  if (c->inv) memcpy(c->inv, t->inv_freq, c->half * sizeof *c->inv);
  pe_workload_free(w);
  return c->inv ? 0 : probe_fail(o, 1, "out of memory");
}

static int load_curves(pe_ctx *ctx, const probe_opts *o, const probe_cfg *pc, uint64_t L,
                       curve *cv, size_t *n) {
  if (!o->compare) return *n = 1, load_curve(ctx, o, pc, NULL, L, &cv[0]);
  char *list = strdup(o->compare), *save = NULL;
  int rc = 0;
  *n = 0;
  for (char *tok = strtok_r(list, ",", &save); tok && rc == 0; tok = strtok_r(NULL, ",", &save)) {
    if (*n == MAX_SCHEMES) rc = probe_fail(o, 2, "--compare: at most %d schemes", MAX_SCHEMES);
    else rc = load_curve(ctx, o, pc, tok, L, &cv[(*n)++]);
  }
  free(list);
  return rc;
}

/* Columns s, bound_NAME, mean_cos_NAME, ... (plain bound, mean_cos for the
 * config's own scheme).  NAME is a --compare word, maybe a plugin path with
 * ':' or '%': added by pt_col, never parsed as a pt_cols spec. */
static void add_cols(ptab *t, const char *nm, const char *fmt) {
  static const char *const what[] = {"bound", "mean_cos"};
  for (int i = 0; i < 2; i++) {
    char *col = probe_strf("%s%s%s", what[i], *nm ? "_" : "", nm);
    if (!col) abort(); /* as ptab does: a report without a column would be wrong */
    pt_col(t, col, fmt);
    free(col);
  }
}

static void fill(probe_doc *d, const curve *cv, size_t n, uint64_t N, int compare) {
  pt_cols(&d->data, "s");
  pt_cols(&d->view, "s");
  for (size_t i = 0; i < n; i++) {
    add_cols(&d->data, compare ? cv[i].name : "", NULL);
    add_cols(&d->view, compare ? cv[i].name : "", "%.4f");
  }
  double *x = malloc((N + 1) * sizeof *x), *y = malloc(n * (N + 1) * sizeof *y);
  for (uint64_t s = 0; s <= N; s++) {
    int shown = s == 0 || s == N || (s & (s - 1)) == 0;
    pt_num(&d->data, (double)s);
    if (shown) pt_num(&d->view, (double)s);
    for (size_t i = 0; i < n; i++) {
      double b, mc;
      bound_at(&cv[i], (double)s, &b, &mc);
      pt_num(&d->data, b), pt_num(&d->data, mc);
      if (shown) pt_num(&d->view, b), pt_num(&d->view, mc);
      if (x && y) x[s] = (double)s, y[i * (N + 1) + s] = b;
    }
  }
  for (size_t i = 0; x && y && i < n; i++) svg_add(&d->plot, cv[i].name, x, y + i * (N + 1), N + 1, 0);
  free(x), free(y);
}

static int run(pe_ctx *ctx, const probe_opts *o, probe_doc *d) {
  probe_cfg pc;
  if (probe_cfg_load(ctx, o->config, &pc) != 0)
    return probe_cfg_free(&pc), probe_fail(o, 2, "%s", pe_ctx_error(ctx));
  uint64_t L = o->seq_len ? o->seq_len : pc.L, N = o->max_len ? o->max_len : L;
  curve cv[MAX_SCHEMES] = {0};
  size_t n = 0;
  int rc = load_curves(ctx, o, &pc, L, cv, &n);
  if (rc == 0) {
    doc_head(d, "decay: %s, schemes at L = %llu\n", o->config, (unsigned long long)L);
    if (o->compare)
      doc_head(d, "compared with the config's parameters where declared, factor %g, L_train %llu\n",
               probe_factor(o, &pc), (unsigned long long)pc.L_train);
    doc_head(d, "bound(s) = mean_j |sum_{k<j} exp(i s inv_freq[k])| (RoFormer 3.4.3); "
                "mean_cos(s) = mean_j cos(s inv_freq[j])\n(table: s = 0, powers of two, %llu; "
                "--format csv has every s)\n\n", (unsigned long long)N);
    for (size_t i = 0; i < n; i++)
      if (cv[i].additive)
        doc_head(d, "%s is additive: from its frequencies f_j; mean_cos(s) = <pe(m), pe(m+s)> / (D/2)\n\n",
                 cv[i].name);
    fill(d, cv, n, N, o->compare != NULL);
    double b0, m0;
    bound_at(&cv[0], 0, &b0, &m0);
    doc_foot(d, "\nat s = 0: bound = %g (= (R/2 + 1)/2 for R = %u), mean_cos = %g\n", b0, 2 * cv[0].half, m0);
    doc_num(d, "L", (double)L), doc_num(d, "max_distance", (double)N);
    doc_num(d, "bound_at_0", b0), doc_num(d, "mean_cos_at_0", m0);
    svg_plot *p = &d->plot;
    p->title = probe_strf("RoFormer long-term decay bound: %s", o->config);
    snprintf(p->xlabel, sizeof p->xlabel, "relative distance s");
    snprintf(p->ylabel, sizeof p->ylabel, "(1/(R/2)) sum_j |S_j(s)|");
  }
  for (size_t i = 0; i < n; i++) free(cv[i].inv), free(cv[i].name);
  probe_cfg_free(&pc);
  return rc;
}

const probe_cmd probe_decay_cmd = {
    "decay", "LmcF",
    "usage: pe-probe decay CONFIG [--max-len N] [--seq-len L] [--compare rope,pi,ntk,yarn]\n"
    "                             [--factor S] [--format table|csv|json] [--output FILE]\n"
    "                             [--plot FILE.svg]\n"
    "\n"
    "For relative distance s = 0..N, from the scheme's float64 inv_freq (R/2 pairs):\n"
    "  bound(s)    = (1/(R/2)) sum_{j=1..R/2} |S_j(s)|,  S_j(s) = sum_{k<j} exp(i s inv_freq[k])\n"
    "  mean_cos(s) = (1/(R/2)) sum_j cos(s inv_freq[j])\n"
    "Source: Su et al. 2021, RoFormer (arXiv:2104.09864), section 3.4.3: by Abel summation\n"
    "|sum_j h_j exp(i s theta_j)| <= (max_j |h_{j+1} - h_j|) sum_j |S_j(s)|, so the bound\n"
    "is the long-term decay of the attention score's upper bound (32.5 at s = 0, R = 128).\n"
    "mean_cos(s) is the score of q = k = all-ones vectors, normalised.\n"
    "\n"
    "  -m, --max-len N    largest distance s (default: L)\n"
    "  -L, --seq-len L    the context length length-dependent schemes see (default:\n"
    "                     the config's position_offset + seq_len)\n"
    "  -c, --compare LIST schemes to lay side by side (e.g. rope,pi,ntk,yarn); each gets\n"
    "                     the config's parameters it declares (base, factor,\n"
    "                     original_max_position_embeddings, ...); a factor it needs and\n"
    "                     the config lacks is --factor (default 4), a missing\n"
    "                     original_max_position_embeddings is the config's L_train\n"
    "  -F, --factor S     the factor of the compared schemes (overrides the config's)\n"
    "\n"
    "Does not claim: that attention decays in a trained model.  The bound is an upper\n"
    "bound over all query/key pairs with slowly varying h_j; real scores depend on the\n"
    "learned q and k.\n",
    run};
