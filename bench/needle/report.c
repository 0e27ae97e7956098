/* Reports of a needle run: a table for people, CSV (one row per cell) and
 * JSON (the run, every cell, the summaries). */
#include "needle.h"
#include "json_write.h"

#include <math.h>
#include <string.h>

static const char *DISCLAIMER =
    "synthetic key-value retrieval on a tiny transformer trained here; not comparable "
    "to LLM needle-in-a-haystack scores";

static void summary_line(FILE *fp, const nd_report *r, const char *scheme, const char *backend) {
  const nd_grid *a = NULL, *b = NULL;
  for (size_t i = 0; i < r->n_grids; i++) {
    const nd_grid *g = &r->grids[i];
    if (strcmp(g->scheme, scheme) || strcmp(g->backend, backend)) continue;
    if (g->finetuned) b = g;
    else a = g;
  }
  const double thr = r->cfg->eval.threshold;
  fprintf(fp, "  %-13s", scheme);
  for (int k = 0; k < 2; k++) {
    const nd_grid *g = k ? b : a;
    if (!g) {
      fprintf(fp, " %-18s", "-");
      continue;
    }
    char buf[64];
    uint32_t e = nd_effective_length(g, thr);
    snprintf(buf, sizeof buf, "%u (%gx)", e, (double)e / g->L_train);
    fprintf(fp, " %-18s", buf);
  }
  fprintf(fp, " ");
  for (int k = 0; k < 2; k++) {
    const nd_grid *g = k ? b : a;
    if (!g) continue;
    fprintf(fp, "%s", k ? "  |  " : "");
    for (uint32_t l = 0; l < g->n_lengths; l++)
      fprintf(fp, "%s%.0f", l ? " " : "", 100 * nd_length_accuracy(g, l));
  }
  fputc('\n', fp);
}

void nd_report_table(FILE *fp, const nd_report *r) {
  const nd_config *c = r->cfg;
  const nd_arch *a = &c->arch;
  fprintf(fp, "needle: %s.\n\n", DISCLAIMER);
  fprintf(fp, "model    %u layers, d_model %u, %u heads x %u, d_ff %u, vocab %u (%s)\n",
          a->layers, a->d_model, a->heads, a->head_dim, a->d_ff, a->vocab, r->model_note);
  fprintf(fp, "trained  scheme %s at L_train %u: %u steps x batch %u, seed %llu\n",
          c->train.scheme, c->train.seq_len, c->train.steps, c->train.batch,
          (unsigned long long)c->train.seed);
  if (r->trained)
    fprintf(fp, "         here: %.1f s, %.0f tokens/s on %d threads, final loss %.4f, "
            "accuracy %.3f (last 10%% of steps)\n", r->train.seconds, r->train.tokens_per_s,
            r->train.threads, r->train.final_loss, r->train.final_acc);
  fprintf(fp, "task     %u keys, %u filler tokens (also the values); %u distractor pair(s); %u "
          "trials per cell; chance %.1f%%\n", c->task.keys, a->vocab - 1 - c->task.keys,
          c->eval.distractors, c->eval.trials, 100.0 / (a->vocab - 1 - c->task.keys));
  if (c->finetune.steps)
    fprintf(fp, "finetune %u steps x batch %u at length %u, lr %g, with each scheme applied\n",
            c->finetune.steps, c->finetune.batch, c->finetune.seq_len, c->finetune.lr);
  for (size_t i = 0; i < r->n_grids; i++) {
    const nd_grid *g = &r->grids[i];
    fprintf(fp, "\n%s%s on %s (%.1f s): accuracy %% by needle depth (rows) and context length "
            "(columns)\n", g->scheme, g->finetuned ? " + fine-tune" : "", g->backend, g->seconds);
    for (uint32_t s = 0; s < c->eval.n_schemes; s++)
      if (!strcmp(c->eval.schemes[s], g->scheme) && r->scheme_text[s][0]) {
        char line[512];
        snprintf(line, sizeof line, "%s", r->scheme_text[s]);
        for (char *p = line; *p; p++)
          if (*p == '\n') *p = p[1] ? ',' : '\0';
        fprintf(fp, "[scheme] %s\n", line);
      }
    fprintf(fp, "  depth");
    for (uint32_t l = 0; l < g->n_lengths; l++) fprintf(fp, " %7u", g->lengths[l]);
    fputc('\n', fp);
    for (uint32_t d = 0; d < g->n_depths; d++) {
      fprintf(fp, "  %4g%%", g->depths[d]);
      for (uint32_t l = 0; l < g->n_lengths; l++) {
        const nd_cell *cl = &g->cell[l][d];
        fprintf(fp, " %7.1f", cl->trials ? 100.0 * cl->correct / cl->trials : NAN);
      }
      fputc('\n', fp);
    }
    fprintf(fp, "    all");
    for (uint32_t l = 0; l < g->n_lengths; l++) fprintf(fp, " %7.1f", 100 * nd_length_accuracy(g, l));
    fprintf(fp, "\n   logp");
    for (uint32_t l = 0; l < g->n_lengths; l++) {
      double s = 0, n = 0;
      for (uint32_t d = 0; d < g->n_depths; d++) s += g->cell[l][d].logp_sum, n += g->cell[l][d].trials;
      fprintf(fp, " %7.3f", n ? s / n : NAN);
    }
    uint32_t e = nd_effective_length(g, c->eval.threshold);
    fprintf(fp, "\n  effective length %u (%gx L_train)\n", e, (double)e / g->L_train);
  }
  /* summary per backend */
  for (size_t i = 0; i < r->n_grids; i++) {
    const nd_grid *g = &r->grids[i];
    bool first = true;
    for (size_t j = 0; j < i; j++)
      if (!strcmp(r->grids[j].backend, g->backend)) first = false;
    if (!first) continue;
    fprintf(fp, "\nsummary on %s: effective length = the longest length whose accuracy over all "
            "depths, and every shorter length's, is >= %.0f%%\n", g->backend,
            100 * c->eval.threshold);
    fprintf(fp, "  %-13s %-18s %-18s accuracy %% by length (no fine-tune | fine-tuned)\n",
            "scheme", "no fine-tune", "fine-tuned");
    for (size_t j = 0; j < r->n_grids; j++) {
      bool seen = false;
      for (size_t k = 0; k < j; k++)
        if (!strcmp(r->grids[k].scheme, r->grids[j].scheme) &&
            !strcmp(r->grids[k].backend, r->grids[j].backend))
          seen = true;
      if (!seen && !strcmp(r->grids[j].backend, g->backend))
        summary_line(fp, r, r->grids[j].scheme, g->backend);
    }
  }
  if (r->agreement[0]) fprintf(fp, "\n%s", r->agreement);
}

int nd_report_csv(FILE *fp, const nd_report *r) {
  fprintf(fp, "scheme,finetuned,backend,length,length_x,depth,trials,correct,accuracy,"
          "wilson_lo,wilson_hi,mean_logprob\n");
  for (size_t i = 0; i < r->n_grids; i++) {
    const nd_grid *g = &r->grids[i];
    for (uint32_t l = 0; l < g->n_lengths; l++)
      for (uint32_t d = 0; d < g->n_depths; d++) {
        const nd_cell *c = &g->cell[l][d];
        double lo, hi;
        nd_wilson(c->correct, c->trials, &lo, &hi);
        fprintf(fp, "%s,%d,%s,%u,%g,%g,%u,%u,%.6f,%.6f,%.6f,%.6f\n", g->scheme, g->finetuned,
                g->backend, g->lengths[l], (double)g->lengths[l] / g->L_train, g->depths[d],
                c->trials, c->correct, c->trials ? (double)c->correct / c->trials : NAN, lo, hi,
                c->trials ? c->logp_sum / c->trials : NAN);
      }
  }
  return ferror(fp) ? 1 : 0;
}

/* The JSON writers libpe's reports use: escaped, valid UTF-8 strings;
 * shortest round-trip numbers, null for non-finite ones. */
#define json_str pe_report_json_string
#define json_num pe_json_num

int nd_report_json(FILE *fp, const nd_report *r) {
  const nd_config *c = r->cfg;
  const nd_arch *a = &c->arch;
  fprintf(fp, "{\n  \"probe\": \"needle\",\n  \"what\": ");
  json_str(fp, DISCLAIMER);
  fprintf(fp, ",\n  \"config\": ");
  json_str(fp, c->path);
  fprintf(fp, ",\n  \"model\": {\"source\": ");
  json_str(fp, r->model_note);
  fprintf(fp, ", \"vocab\": %u, \"d_model\": %u, \"layers\": %u, \"heads\": %u, \"head_dim\": %u, "
          "\"d_ff\": %u, \"keys\": %u},\n", a->vocab, a->d_model, a->layers,
          a->heads, a->head_dim, a->d_ff, c->task.keys);
  fprintf(fp, "  \"train\": {\"scheme\": ");
  json_str(fp, c->train.scheme);
  fprintf(fp, ", \"L_train\": %u, \"steps\": %u, \"batch\": %u, \"seed\": %llu, \"trained_here\": %s",
          c->train.seq_len, c->train.steps, c->train.batch, (unsigned long long)c->train.seed,
          r->trained ? "true" : "false");
  if (r->trained) {
    fprintf(fp, ", \"seconds\": ");
    json_num(fp, r->train.seconds);
    fprintf(fp, ", \"tokens_per_s\": ");
    json_num(fp, r->train.tokens_per_s);
    fprintf(fp, ", \"threads\": %d, \"final_loss\": ", r->train.threads);
    json_num(fp, r->train.final_loss);
  }
  fprintf(fp, "},\n  \"finetune\": {\"steps\": %u, \"seq_len\": %u, \"batch\": %u, \"lr\": ",
          c->finetune.steps, c->finetune.seq_len, c->finetune.batch);
  json_num(fp, c->finetune.lr);
  fprintf(fp, "},\n  \"eval\": {\"trials\": %u, \"distractors\": %u, \"seed\": %llu, "
          "\"threshold\": ", c->eval.trials, c->eval.distractors, (unsigned long long)c->eval.seed);
  json_num(fp, c->eval.threshold);
  fprintf(fp, "},\n  \"summary\": [");
  for (size_t i = 0; i < r->n_grids; i++) {
    const nd_grid *g = &r->grids[i];
    fprintf(fp, "%s\n    {\"scheme\": ", i ? "," : "");
    json_str(fp, g->scheme);
    fprintf(fp, ", \"finetuned\": %s, \"backend\": ", g->finetuned ? "true" : "false");
    json_str(fp, g->backend);
    uint32_t e = nd_effective_length(g, c->eval.threshold);
    fprintf(fp, ", \"effective_length\": %u, \"effective_length_x\": ", e);
    json_num(fp, (double)e / g->L_train);
    fprintf(fp, ", \"seconds\": ");
    json_num(fp, g->seconds);
    fprintf(fp, ", \"accuracy_by_length\": [");
    for (uint32_t l = 0; l < g->n_lengths; l++) {
      fprintf(fp, "%s{\"length\": %u, \"accuracy\": ", l ? ", " : "", g->lengths[l]);
      json_num(fp, nd_length_accuracy(g, l));
      fputc('}', fp);
    }
    fprintf(fp, "]}");
  }
  fprintf(fp, "\n  ],\n  \"cells\": [");
  bool first = true;
  for (size_t i = 0; i < r->n_grids; i++) {
    const nd_grid *g = &r->grids[i];
    for (uint32_t l = 0; l < g->n_lengths; l++)
      for (uint32_t d = 0; d < g->n_depths; d++) {
        const nd_cell *cl = &g->cell[l][d];
        double lo, hi;
        nd_wilson(cl->correct, cl->trials, &lo, &hi);
        fprintf(fp, "%s\n    {\"scheme\": ", first ? "" : ",");
        first = false;
        json_str(fp, g->scheme);
        fprintf(fp, ", \"finetuned\": %s, \"backend\": ", g->finetuned ? "true" : "false");
        json_str(fp, g->backend);
        fprintf(fp, ", \"length\": %u, \"depth\": %g, \"trials\": %u, \"correct\": %u, "
                "\"accuracy\": ", g->lengths[l], g->depths[d], cl->trials, cl->correct);
        json_num(fp, cl->trials ? (double)cl->correct / cl->trials : NAN);
        fprintf(fp, ", \"wilson95\": [");
        json_num(fp, lo);
        fprintf(fp, ", ");
        json_num(fp, hi);
        fprintf(fp, "], \"mean_logprob\": ");
        json_num(fp, cl->trials ? cl->logp_sum / cl->trials : NAN);
        fputc('}', fp);
      }
  }
  fprintf(fp, "\n  ],\n  \"backend_agreement\": ");
  json_str(fp, r->agreement);
  fprintf(fp, "\n}\n");
  return ferror(fp) ? 1 : 0;
}
