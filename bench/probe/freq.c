/* freq: a scheme's per-pair frequencies against plain RoPE.
 *
 *   wavelength_j = 2 pi / inv_freq[j]            (tokens per full turn)
 *   ratio_j      = inv_freq[j] / theta_j,  theta_j = base^(-2j/R)
 *   band: ratio 1 = untouched, ratio 1/s = interpolated, between = ramped
 *   d_extra      = 2 ceil((R/2) log_base(L_train / 2 pi))
 *                  (Liu et al. 2024, "Scaling Laws of RoPE-based
 *                  Extrapolation", arXiv:2310.05209: the dims whose RoPE
 *                  period fits in the training length)
 * The CSV (pair,inv_freq,wavelength,attention_factor) is a contract
 * (ARCHITECTURE.md). */
#include "probe.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct freq_ctx {
  const probe_cfg *pc;
  const pe_scheme_tables *t;
  uint64_t L;
  double s; /* the scheme's factor, 0 if none */
  int counts[3]; /* untouched, ramped, interpolated */
  int full, unseen, other;
} freq_ctx;

static const char *band(freq_ctx *f, double ratio) {
  if (fabs(ratio - 1) <= 1e-9) return f->counts[0]++, "untouched";
  if (f->s > 1 && fabs(ratio * f->s - 1) <= 1e-9) return f->counts[2]++, "interpolated";
  if (f->s > 1 && ratio > 1 / f->s && ratio < 1) return f->counts[1]++, "ramped";
  return f->other++, "other";
}

static void pair_rows(probe_doc *d, freq_ctx *f) {
  const pe_scheme_tables *t = f->t;
  uint32_t R = t->rotary_dim;
  double Lt = (double)f->pc->L_train;
  pt_cols(&d->data, "pair,inv_freq,wavelength,attention_factor");
  pt_cols(&d->view, "pair,inv_freq:%.6e,wavelength:%.1f,full_turn_in_Ltrain,ratio_vs_rope:%.6f,"
                    "band,angle_at_L:%.4g,angle_in_training:%.4g,within_training");
  for (uint32_t j = 0; j < R / 2; j++) {
    double inv = t->inv_freq[j], th = rope_theta(f->pc->base, R, j), wl = 2 * M_PI / inv;
    double aL = (double)f->L * inv, aT = Lt * th;
    int full = aT >= 2 * M_PI, seen = full || aL <= aT * (1 + 1e-12);
    f->full += full, f->unseen += !seen;
    pt_num(&d->data, j), pt_num(&d->data, inv), pt_num(&d->data, wl);
    pt_num(&d->data, t->attention_factor);
    pt_num(&d->view, j), pt_num(&d->view, inv), pt_num(&d->view, wl);
    pt_str(&d->view, full ? "yes" : "no"), pt_num(&d->view, inv / th);
    pt_str(&d->view, band(f, inv / th)), pt_num(&d->view, aL), pt_num(&d->view, aT);
    pt_str(&d->view, seen ? "yes" : "NO");
  }
}

static void summary(probe_doc *d, const freq_ctx *f) {
  const probe_cfg *pc = f->pc;
  uint32_t R = f->t->rotary_dim;
  double x = log((double)pc->L_train / (2 * M_PI)) / log(pc->base);
  double dex = fmin(R, fmax(0, 2 * ceil(R / 2.0 * x)));
  double a = f->t->attention_factor;
  doc_foot(d, "\ncritical dimension d_extra = 2 ceil((R/2) log_base(L_train / 2pi)) = %.0f of %u dims "
              "(Liu et al. 2024)\n", dex, R);
  doc_foot(d, "pairs completing a full RoPE turn within L_train = %llu: %d of %u\n",
           (unsigned long long)pc->L_train, f->full, R / 2);
  if (f->s > 1)
    doc_foot(d, "bands vs rope (factor s = %g): %d untouched (ratio 1), %d ramped, %d interpolated "
                "(ratio 1/s), %d with a ratio outside [1/s, 1]\n", f->s, f->counts[0], f->counts[1],
             f->counts[2], f->other);
  else
    doc_foot(d, "bands vs rope: %d untouched (ratio 1), %d changed\n", f->counts[0], R / 2 - f->counts[0]);
  doc_foot(d, "pairs whose angle at L = %llu exceeds any angle seen in training (and had no full turn): %d\n",
           (unsigned long long)f->L, f->unseen);
  doc_foot(d, "attention factor a = %.10g: logits scale by a^2 = %.10g\n", a, a * a);
  doc_num(d, "rotary_dim", R), doc_num(d, "base", pc->base), doc_num(d, "L", (double)f->L);
  doc_num(d, "L_train", (double)pc->L_train), doc_num(d, "d_extra", dex);
  doc_num(d, "full_turn_pairs", f->full), doc_num(d, "factor", f->s);
  doc_num(d, "untouched", f->counts[0]), doc_num(d, "ramped", f->counts[1]);
  doc_num(d, "interpolated", f->counts[2]), doc_num(d, "other", f->other);
  doc_num(d, "unseen_at_L", f->unseen);
  doc_num(d, "attention_factor", a), doc_num(d, "logit_multiplier", a * a);
}

static void plot_rotary(probe_doc *d, const freq_ctx *f) {
  uint32_t half = f->t->rotary_dim / 2;
  double *x = malloc(half * sizeof *x), *y = malloc(half * sizeof *y), *r = malloc(half * sizeof *r);
  if (!x || !y || !r) return free(x), free(y), free(r);
  for (uint32_t j = 0; j < half; j++)
    x[j] = j, y[j] = 2 * M_PI / f->t->inv_freq[j], r[j] = 2 * M_PI / rope_theta(f->pc->base, half * 2, j);
  svg_plot *p = &d->plot;
  p->logy = 1;
  p->title = probe_strf("freq: %s (%s) vs rope", f->pc->path, f->pc->scheme);
  snprintf(p->xlabel, sizeof p->xlabel, "pair j");
  snprintf(p->ylabel, sizeof p->ylabel, "wavelength 2pi/inv_freq (tokens)");
  svg_add(p, f->pc->scheme, x, y, half, 0);
  svg_add(p, "rope (same base)", x, r, half, 0);
  double hx[2] = {0, half - 1.0}, hy[2] = {(double)f->pc->L_train, (double)f->pc->L_train};
  svg_add(p, "L_train", hx, hy, 2, 0);
  free(x), free(y), free(r);
}

static void additive(probe_doc *d, const pe_scheme_tables *t, uint32_t D) {
  doc_head(d, "additive encoding (sinusoidal): no rotation, so no rotary pairs; its frequencies\n"
              "pe(p)[2j] = sin(p f_j), pe(p)[2j+1] = cos(p f_j):\n\n");
  pt_cols(&d->data, "pair,frequency,wavelength");
  for (uint32_t j = 0; j < D / 2; j++)
    pt_num(&d->data, j), pt_num(&d->data, t->inv_freq[j]), pt_num(&d->data, 2 * M_PI / t->inv_freq[j]);
}

static void bias(probe_doc *d, const pe_scheme_tables *t, uint32_t H) {
  doc_head(d, "bias encoding (ALiBi): no frequencies; logit += -slope_h (pq - pk).  Slopes:\n\n");
  pt_cols(&d->data, "head,slope");
  for (uint32_t h = 0; h < H; h++) pt_num(&d->data, h), pt_num(&d->data, t->slopes[h]);
}

static int analyse(probe_doc *d, const probe_cfg *pc, const pe_workload_info *in, uint64_t L) {
  const pe_scheme_tables *t = in->tables;
  doc_head(d, "freq: %s\nscheme %s (%s)\n", pc->path, pc->scheme, t->note);
  doc_str(d, "scheme", "%s", pc->scheme), doc_str(d, "note", "%s", t->note);
  if (t->kind == PE_KIND_ADDITIVE) return additive(d, t, in->head_dim), 0;
  if (t->kind == PE_KIND_BIAS) return bias(d, t, in->q_heads), 0;
  if (t->kind != PE_KIND_ROTARY) {
    doc_head(d, "identity encoding: no frequencies, nothing to analyse\n");
    pt_cols(&d->data, "pair,inv_freq,wavelength,attention_factor");
    return 0;
  }
  freq_ctx f = {.pc = pc, .t = t, .L = L, .s = pc->factor};
  doc_head(d, "R = %u rotary dims, base %g, L = %llu, L_train = %llu (%s)\n\n", t->rotary_dim, pc->base,
           (unsigned long long)L, (unsigned long long)pc->L_train,
           pc->has_lo ? "original_max_position_embeddings" : "the config's position_offset + seq_len");
  pair_rows(d, &f);
  summary(d, &f);
  plot_rotary(d, &f);
  return 0;
}

static int run(pe_ctx *ctx, const probe_opts *o, probe_doc *d) {
  probe_cfg pc;
  pe_workload *w = NULL;
  if (probe_cfg_load(ctx, o->config, &pc) != 0) return probe_cfg_free(&pc), probe_fail(o, 2, "%s", pe_ctx_error(ctx));
  uint64_t L = o->seq_len ? o->seq_len : pc.L;
  int rc = tables_at(ctx, &pc, pc.scheme_text, pc.dir, L, &w);
  if (rc == 0) rc = analyse(d, &pc, pe_workload_get_info(w), L);
  else rc = probe_fail(o, 2, "%s", pe_ctx_error(ctx));
  pe_workload_free(w);
  probe_cfg_free(&pc);
  return rc;
}

const probe_cmd probe_freq_cmd = {
    "freq", "L",
    "usage: pe-probe freq CONFIG [--seq-len N] [--format table|csv|json] [--output FILE]\n"
    "                            [--plot FILE.svg]\n"
    "\n"
    "Per rotary pair j of the config's scheme at context length L: inv_freq, wavelength\n"
    "2pi/inv_freq in tokens, whether plain RoPE's pair completes a full turn within the\n"
    "training length L_train, the ratio inv_freq / theta_j to plain RoPE with the same\n"
    "base (theta_j = base^(-2j/R)) and its band (1: untouched, 1/s: interpolated,\n"
    "between: ramped), the largest angle L*inv_freq reached at L against the largest seen\n"
    "in training, L_train*theta_j.  Summary: the critical dimension\n"
    "d_extra = 2 ceil((R/2) log_base(L_train/2pi)) (Liu et al. 2024, arXiv:2310.05209),\n"
    "the band counts, the attention factor a and its logit multiplier a^2.\n"
    "\n"
    "L_train is the scheme's original_max_position_embeddings when it has one, else the\n"
    "config's context length (position_offset + seq_len).  Tables come from the scheme\n"
    "plugin itself (NUMERICS.md formulas).\n"
    "\n"
    "  -L, --seq-len N   evaluate at context length L = N (default: position_offset +\n"
    "                    seq_len of the config); length-dependent schemes (dynamic-ntk,\n"
    "                    longrope) see this L\n"
    "\n"
    "CSV: pair,inv_freq,wavelength,attention_factor, one row per rotary pair, %.17g.\n"
    "Sinusoidal configs list their additive frequencies (pair,frequency,wavelength),\n"
    "ALiBi its slopes (head,slope); none has nothing to analyse.\n"
    "\n"
    "Does not claim: anything about a trained model.  'Within training' only says\n"
    "whether an angle was reached during training by the RoPE pair, the argument of\n"
    "Liu et al. and of the YaRN/NTK papers; whether a model generalises is not measured.\n",
    run};
