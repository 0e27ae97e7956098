/* Training: AdamW (Loshchilov and Hutter 2019) with linear warm-up and a
 * cosine decay to min_lr, global-norm gradient clipping, cross-entropy at
 * the answer position only.  Batches come from (seed, step, row), so a run
 * is reproducible.  Threads split the batch: each sequence runs forward
 * and backward on its own workspace (one parallel region per step, which
 * matters on a loaded machine where every barrier waits for a time slice),
 * and the gradients are summed in sequence order, so the weights do not
 * depend on the thread count either (same machine and build). */
#include "needle.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#define BETA1 0.9
#define BETA2 0.95
#define ADAM_EPS 1e-8

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void fmt_dur(char *buf, size_t n, double s) {
  if (s < 0 || !isfinite(s)) snprintf(buf, n, "?");
  else if (s < 90) snprintf(buf, n, "%.0fs", s);
  else if (s < 5400) snprintf(buf, n, "%dm%02ds", (int)(s / 60), (int)fmod(s, 60));
  else snprintf(buf, n, "%dh%02dm", (int)(s / 3600), (int)fmod(s / 60, 60));
}

static double lr_at(const nd_traincfg *tc, uint32_t step) {
  if (step < tc->warmup) return tc->lr * (double)(step + 1) / (double)tc->warmup;
  uint32_t span = tc->steps > tc->warmup ? tc->steps - tc->warmup : 1;
  double t = (double)(step - tc->warmup) / (double)span;
  return tc->min_lr + 0.5 * (tc->lr - tc->min_lr) * (1.0 + cos(M_PI * t));
}

int nd_train(pe_ctx *ctx, const nd_config *c, const nd_traincfg *tc, nd_model *m,
             FILE *progress, const char *label, nd_train_stats *st, char *err, size_t errlen) {
  memset(st, 0, sizeof *st);
  int levels = 0; /* OpenMP max active levels to restore */
  const size_t B = tc->batch, T = tc->seq_len, V = m->a.vocab;
  pe_config *wcfg;
  pe_workload *w;
  int rc = nd_workload(ctx, c, tc->scheme, 1, T, T, &wcfg, &w, err, errlen);
  if (rc) return rc;
  nd_pos pos;
  rc = nd_pos_init(&pos, pe_workload_get_info(w), T);
  pe_workload_free(w);
  pe_config_free(wcfg);
  if (rc) return snprintf(err, errlen, "out of memory"), 1;

  nd_train_ws **ws = calloc(B, sizeof *ws);
  bool ws_ok = ws != NULL;
  for (size_t b = 0; ws && b < B; b++) ws_ok = (ws[b] = nd_ws_new(m, 1, T)) && ws_ok;
  float *g = malloc(m->n_params * sizeof(float));
  const size_t CH = 4096, nch = (m->n_params + CH - 1) / CH;
  double *part = malloc(nch * sizeof(double)), *losses = malloc(B * sizeof(double));
  uint32_t *hitv = malloc(B * sizeof(uint32_t)), *ntv = malloc(B * sizeof(uint32_t));
  uint32_t *lenv = malloc(B * sizeof(uint32_t));
  uint64_t tokens_done = 0;
  uint32_t *tpos = malloc(B * T * sizeof(uint32_t));
  float *wv = malloc(B * sizeof(float));
  float *m1 = calloc(m->n_params, sizeof(float)), *m2 = calloc(m->n_params, sizeof(float));
  uint32_t *tokens = malloc(B * T * sizeof *tokens), *targets = malloc(B * T * sizeof *targets);
  float *decay = malloc(m->n_params * sizeof(float));
  if (!ws_ok || !g || !part || !losses || !hitv || !ntv || !lenv || !tpos || !wv || !m1 || !m2 || !tokens || !targets || !decay) {
    snprintf(err, errlen, "out of memory for training (batch %zu x %zu)", B, T);
    rc = 1;
    goto out;
  }
  {
    nd_tensor_ref t[256];
    size_t nt = nd_model_tensors(m, t, 256);
    for (size_t i = 0; i < nt; i++) {
      size_t len = t[i].shape[0] * (t[i].ndim == 2 ? t[i].shape[1] : 1);
      size_t off = (size_t)(t[i].data - m->params);
      for (size_t j = 0; j < len; j++) decay[off + j] = t[i].decay ? 1.0f : 0.0f;
    }
  }
#ifdef _OPENMP
  st->threads = omp_get_max_threads();
#else
  st->threads = 1;
#endif
  const bool tty = progress && isatty(fileno(progress));
  const double t0 = now_s();
  double last_print = t0, win_loss = 0, tail_loss = 0;
  uint64_t win_hits = 0, win_n = 0, tail_hits = 0, tail_n = 0, win_tg = 0, tail_tg = 0;
  const uint32_t tail_from = tc->steps - (tc->steps / 10 ? tc->steps / 10 : 1);
#ifdef _OPENMP
  levels = omp_get_max_active_levels();
  omp_set_max_active_levels(1); /* the layers' own regions run serially inside */
#endif
  for (uint32_t step = 0; step < tc->steps; step++) {
    uint64_t step_tokens = 0;
    /* length curriculum: the longest length grows linearly to seq_len */
    uint32_t max_len = (uint32_t)T;
    if (tc->min_len && tc->curriculum > 0 && step < tc->curriculum * tc->steps)
      max_len = tc->min_len + (uint32_t)((T - tc->min_len) * (step / (tc->curriculum * tc->steps)));
    for (size_t b = 0; b < B; b++) {
      nd_rng r;
      nd_rng_seed(&r, tc->seed, 0x747261696eull /* "train" */, step, b);
      uint32_t nd = nd_rng_below(&r, tc->distractors + 1);
      lenv[b] = tc->min_len ? tc->min_len + nd_rng_below(&r, max_len - tc->min_len + 1) : (uint32_t)T;
      step_tokens += lenv[b];
      ntv[b] = nd_make_train_sequence(&c->task, (uint32_t)V, lenv[b], nd, tc->repeats, &r,
                                      tokens + b * T, tpos + b * T, targets + b * T, (uint32_t)T);
    }
#pragma omp parallel for schedule(dynamic, 1)
    for (size_t b = 0; b < B; b++)
      losses[b] = nd_model_step(m, ws[b], &pos, tokens + b * T, 1, lenv[b], ntv[b], tpos + b * T,
                                targets + b * T, true, &hitv[b]);
    /* the mean over every target of the batch: sequence b weighs nt_b / total */
    double loss = 0;
    uint32_t hits = 0, total = 0;
    for (size_t b = 0; b < B; b++) loss += losses[b] * ntv[b], hits += hitv[b], total += ntv[b];
    loss /= (double)total;
    for (size_t b = 0; b < B; b++) wv[b] = (float)ntv[b] / (float)total;
    if (!isfinite(loss)) {
      snprintf(err, errlen, "%s: the loss is not finite at step %u (lower lr?)", label, step);
      rc = 1;
      goto out;
    }
    /* mean gradient (summed in sequence order) and its norm, then clip */
#pragma omp parallel for schedule(static)
    for (size_t ci = 0; ci < nch; ci++) {
      const size_t i1 = (ci + 1) * CH < m->n_params ? (ci + 1) * CH : m->n_params;
      double ss = 0;
      for (size_t i = ci * CH; i < i1; i++) {
        float v = 0;
        for (size_t b = 0; b < B; b++) v += wv[b] * nd_ws_grads(ws[b])[i];
        g[i] = v;
        ss += (double)v * v;
      }
      part[ci] = ss;
    }
    double gn = 0;
    for (size_t ci = 0; ci < nch; ci++) gn += part[ci];
    gn = sqrt(gn);
    const float clip = tc->grad_clip > 0 && gn > tc->grad_clip ? (float)(tc->grad_clip / gn) : 1.0f;
    const double lr = lr_at(tc, step);
    const double bc1 = 1.0 - pow(BETA1, step + 1.0), bc2 = 1.0 - pow(BETA2, step + 1.0);
    const float alr = (float)(lr / bc1), wd = (float)(lr * tc->weight_decay);
    const float ib2 = (float)(1.0 / sqrt(bc2));
    float *p = m->params;
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < m->n_params; i++) {
      float gi = g[i] * clip;
      m1[i] = (float)BETA1 * m1[i] + (float)(1 - BETA1) * gi;
      m2[i] = (float)BETA2 * m2[i] + (float)(1 - BETA2) * gi * gi;
      p[i] -= wd * decay[i] * p[i];
      p[i] -= alr * m1[i] / (sqrtf(m2[i]) * ib2 + (float)ADAM_EPS);
    }
    tokens_done += step_tokens;
    win_loss += loss, win_hits += hits, win_n++, win_tg += total;
    if (step >= tail_from) tail_loss += loss, tail_hits += hits, tail_n++, tail_tg += total;
    double now = now_s();
    if (progress && (now - last_print >= (tty ? 0.5 : 10.0) || step + 1 == tc->steps)) {
      double el = now - t0, tps = (double)tokens_done / el;
      char eta[32], els[32];
      fmt_dur(eta, sizeof eta, el / (step + 1) * (tc->steps - step - 1));
      fmt_dur(els, sizeof els, el);
      fprintf(progress, "%s%s step %u/%u  loss %.4f  acc %.3f  lr %.2e  %.0f tok/s  %s  ETA %s%s",
              tty ? "\r" : "", label, step + 1, tc->steps, win_loss / win_n,
              (double)win_hits / (double)win_tg, lr, tps, els, eta,
              tty ? "   " : "\n");
      if (tty && step + 1 == tc->steps) fputc('\n', progress);
      fflush(progress);
      last_print = now;
      win_loss = 0, win_hits = 0, win_n = 0, win_tg = 0;
    }
  }
  st->seconds = now_s() - t0;
  st->tokens = tokens_done;
  st->tokens_per_s = st->seconds > 0 ? (double)st->tokens / st->seconds : 0;
  st->final_loss = tail_n ? tail_loss / tail_n : NAN;
  st->final_acc = tail_tg ? (double)tail_hits / (double)tail_tg : NAN;
out:
#ifdef _OPENMP
  if (levels > 0) omp_set_max_active_levels(levels);
#endif
  nd_pos_free(&pos);
  for (size_t b = 0; ws && b < B; b++) nd_ws_free(ws[b]);
  free(ws), free(g), free(part), free(losses), free(hitv), free(ntv), free(lenv), free(tpos), free(wv);
  free(m1), free(m2), free(tokens), free(targets), free(decay);
  return rc;
}
