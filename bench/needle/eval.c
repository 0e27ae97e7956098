/* The depth x length grid.  Every layer's attention runs through a libpe
 * backend (pe_runner_run on a workload whose [scheme] is the scheme under
 * test), so swapping the inference-time scheme is changing the workload's
 * config; "builtin" runs the model's own C attention instead (tests). */
#include "needle.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void nd_wilson(uint32_t k, uint32_t n, double *lo, double *hi) {
  if (n == 0) {
    *lo = 0, *hi = 1;
    return;
  }
  /* Wilson 1927: (p + z^2/2n +- z sqrt(p(1-p)/n + z^2/4n^2)) / (1 + z^2/n) */
  const double z = 1.959963984540054, nn = n, p = k / nn, z2 = z * z;
  const double den = 1 + z2 / nn, mid = (p + z2 / (2 * nn)) / den;
  const double half = z * sqrt(p * (1 - p) / nn + z2 / (4 * nn * nn)) / den;
  *lo = k == 0 ? 0 : fmax(0, mid - half); /* exact ends: k = 0 and k = n */
  *hi = k == n ? 1 : fmin(1, mid + half);
}

double nd_length_accuracy(const nd_grid *g, uint32_t li) {
  uint64_t k = 0, n = 0;
  for (uint32_t d = 0; d < g->n_depths; d++) k += g->cell[li][d].correct, n += g->cell[li][d].trials;
  return n ? (double)k / (double)n : NAN;
}

uint32_t nd_effective_length(const nd_grid *g, double threshold) {
  uint32_t idx[ND_MAX_LENGTHS];
  for (uint32_t i = 0; i < g->n_lengths; i++) idx[i] = i;
  for (uint32_t i = 1; i < g->n_lengths; i++) /* ascending lengths */
    for (uint32_t j = i; j > 0 && g->lengths[idx[j - 1]] > g->lengths[idx[j]]; j--) {
      uint32_t t = idx[j];
      idx[j] = idx[j - 1], idx[j - 1] = t;
    }
  uint32_t eff = 0;
  for (uint32_t i = 0; i < g->n_lengths; i++) {
    if (!(nd_length_accuracy(g, idx[i]) >= threshold)) break;
    eff = g->lengths[idx[i]];
  }
  return eff;
}

typedef struct attn_ctx {
  pe_ctx *ctx;
  pe_runner *runner;    /* NULL: builtin */
  pe_workload *full, *last; /* Sq = S and Sq = 1 */
  const nd_pos *pos;
  uint32_t layers;
  size_t B, S, H, D;
  char *err;
  size_t errlen;
} attn_ctx;

static int attn_cb(void *user, uint32_t layer, size_t B, size_t Sq, size_t S, const float *q,
                   const float *k, const float *v, float *o) {
  attn_ctx *a = user;
  if (!a->runner) {
    nd_attn_fwd(a->pos, B, a->H, Sq, S, a->D, NULL, q, k, v, o, NULL, NULL, NULL);
    return 0;
  }
  (void)layer;
  pe_workload *w = Sq == 1 ? a->last : a->full;
  if (B != a->B || S != a->S || !w) return snprintf(a->err, a->errlen, "internal: shape"), 1;
  int rc = pe_workload_set_inputs(a->ctx, w, q, k, v);
  if (rc == 0) rc = pe_runner_run(a->runner, w, o, NULL);
  if (rc) snprintf(a->err, a->errlen, "%s", pe_ctx_error(a->ctx));
  return rc;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Workloads (and, for builtin, positions) for one (batch, length). */
typedef struct shape_set {
  size_t B;
  pe_config *cf, *cl;
  pe_workload *wf, *wl;
  nd_pos pos;
  bool has_pos;
} shape_set;

static void shape_free(shape_set *s) {
  pe_workload_free(s->wf), pe_workload_free(s->wl);
  pe_config_free(s->cf), pe_config_free(s->cl);
  if (s->has_pos) nd_pos_free(&s->pos);
  memset(s, 0, sizeof *s);
}

static int shape_make(pe_ctx *ctx, const nd_config *c, const char *scheme, size_t B, size_t S,
                      bool builtin, uint32_t layers, shape_set *s, char *err, size_t errlen) {
  memset(s, 0, sizeof *s);
  s->B = B;
  int rc = nd_workload(ctx, c, scheme, B, S, 1, &s->cl, &s->wl, err, errlen);
  if (rc == 0 && layers > 1 && !builtin)
    rc = nd_workload(ctx, c, scheme, B, S, S, &s->cf, &s->wf, err, errlen);
  if (rc == 0 && builtin) {
    rc = nd_pos_init(&s->pos, pe_workload_get_info(s->wl), S);
    s->has_pos = rc == 0;
  }
  if (rc) shape_free(s);
  return rc;
}

int nd_eval(pe_ctx *ctx, const nd_config *c, const nd_model *m, const char *scheme,
            const char *backend, nd_grid *g, FILE *progress, char *err, size_t errlen) {
  const nd_evalcfg *e = &c->eval;
  const uint32_t V = m->a.vocab, Ltr = c->train.seq_len;
  const bool builtin = !strcmp(backend, "builtin");
  const bool ft = g->finetuned;
  memset(g, 0, sizeof *g);
  g->finetuned = ft;
  snprintf(g->scheme, sizeof g->scheme, "%s", scheme);
  snprintf(g->backend, sizeof g->backend, "%s", backend);
  g->L_train = Ltr;
  g->n_lengths = e->n_lengths;
  g->n_depths = e->n_depths;
  for (uint32_t i = 0; i < e->n_lengths; i++) g->lengths[i] = (uint32_t)(e->lengths[i] * Ltr);
  for (uint32_t i = 0; i < e->n_depths; i++) g->depths[i] = e->depths[i];
  const double t0 = now_s();
  pe_runner *runner = NULL;
  int rc = 0;
  for (uint32_t li = 0; li < g->n_lengths && rc == 0; li++) {
    const size_t S = g->lengths[li];
    size_t Bt = e->batch_tokens / S;
    if (Bt < 1) Bt = 1;
    if (Bt > e->trials) Bt = e->trials;
    const size_t rem = e->trials % Bt;
    shape_set sets[2] = {{0}, {0}};
    rc = shape_make(ctx, c, scheme, Bt, S, builtin, m->a.layers, &sets[0], err, errlen);
    if (rc == 0 && rem) rc = shape_make(ctx, c, scheme, rem, S, builtin, m->a.layers, &sets[1], err, errlen);
    if (rc == 0 && !builtin && !runner && pe_runner_open(ctx, sets[0].cl, backend, &runner)) {
      snprintf(err, errlen, "backend %s: %s", backend, pe_ctx_error(ctx));
      rc = 1;
    }
    uint32_t *tok = rc ? NULL : malloc(Bt * S * sizeof *tok);
    uint32_t *ans = malloc(Bt * sizeof *ans);
    float *logp = malloc(Bt * V * sizeof *logp);
    if (rc == 0 && (!tok || !ans || !logp)) snprintf(err, errlen, "out of memory"), rc = 1;
    const double tl = now_s();
    for (uint32_t di = 0; di < g->n_depths && rc == 0; di++) {
      nd_cell *cell = &g->cell[li][di];
      const uint64_t dkey = (uint64_t)llround(g->depths[di] * 1000) | ((uint64_t)e->distractors << 32);
      for (uint32_t t0i = 0; t0i < e->trials && rc == 0;) {
        const size_t nb = e->trials - t0i >= Bt ? Bt : rem;
        shape_set *ss = nb == Bt ? &sets[0] : &sets[1];
        for (size_t b = 0; b < nb; b++) {
          nd_rng r;
          nd_rng_seed(&r, e->seed, S, dkey, t0i + b);
          ans[b] = nd_make_sequence(&c->task, V, (uint32_t)S, g->depths[di] / 100.0,
                                    e->distractors, &r, tok + b * S, NULL);
        }
        attn_ctx ac = {.ctx = ctx, .runner = runner, .full = ss->wf, .last = ss->wl,
                       .pos = &ss->pos, .layers = m->a.layers, .B = nb, .S = S,
                       .H = m->a.heads, .D = m->a.head_dim, .err = err, .errlen = errlen};
        rc = nd_model_last_logp(m, tok, nb, S, attn_cb, &ac, logp);
        if (rc) {
          if (!err[0]) snprintf(err, errlen, "evaluation failed (%s)", pe_strerror(rc));
          break;
        }
        for (size_t b = 0; b < nb; b++) {
          const float *lp = logp + b * V;
          uint32_t best = 0;
          for (uint32_t j = 1; j < V; j++)
            if (lp[j] > lp[best]) best = j;
          cell->trials++;
          cell->correct += best == ans[b];
          cell->logp_sum += lp[ans[b]];
        }
        t0i += (uint32_t)nb;
      }
    }
    if (progress && rc == 0)
      fprintf(progress, "eval %s%s on %s: length %zu (%gx L_train): accuracy %.3f (%.1f s)\n",
              scheme, g->finetuned ? " (fine-tuned)" : "", backend, S, (double)S / Ltr,
              nd_length_accuracy(g, li), now_s() - tl);
    free(tok), free(ans), free(logp);
    shape_free(&sets[0]);
    shape_free(&sets[1]);
  }
  pe_runner_close(runner);
  g->seconds = now_s() - t0;
  return rc;
}

int nd_logp_on(pe_ctx *ctx, const nd_config *c, const nd_model *m, const char *scheme,
               const char *backend, const uint32_t *tokens, size_t B, size_t S, float *logp,
               char *err, size_t errlen) {
  const bool builtin = !strcmp(backend, "builtin");
  shape_set ss;
  pe_runner *runner = NULL;
  int rc = shape_make(ctx, c, scheme, B, S, builtin, m->a.layers, &ss, err, errlen);
  if (rc) return rc;
  if (!builtin && pe_runner_open(ctx, ss.cl, backend, &runner)) {
    snprintf(err, errlen, "backend %s: %s", backend, pe_ctx_error(ctx));
    shape_free(&ss);
    return 1;
  }
  attn_ctx ac = {.ctx = ctx, .runner = runner, .full = ss.wf, .last = ss.wl, .pos = &ss.pos,
                 .layers = m->a.layers, .B = B, .S = S, .H = m->a.heads, .D = m->a.head_dim,
                 .err = err, .errlen = errlen};
  rc = nd_model_last_logp(m, tokens, B, S, attn_cb, &ac, logp);
  pe_runner_close(runner);
  shape_free(&ss);
  return rc;
}
