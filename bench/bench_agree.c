/* Agreement between backends: every pair of a cell's fetched outputs
 * compared elementwise (max abs and RMS difference, NaN counted as
 * infinite), against the cell's tolerance.  The comparison with the
 * float64 oracle is pe_run's verification; this one also covers the rows
 * verification samples out, and catches two backends that drift apart.
 * Also the error against the oracle at sampled query positions, for the
 * error-vs-position plot. */
#include "bench.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define POSITION_SAMPLES 48

static void compare(const pe_result *a, const pe_result *b, double *max_abs, double *rms) {
  double worst = 0, sq = 0;
  for (size_t i = 0; i < a->output_len; i++) {
    double e = fabs((double)a->output[i] - (double)b->output[i]);
    if (isnan(e)) e = INFINITY;
    if (e > worst) worst = e;
    sq += e * e;
  }
  *max_abs = worst;
  *rms = a->output_len ? sqrt(sq / (double)a->output_len) : 0;
}

static void worse(double *slot, double v) {
  if (isnan(*slot) || v > *slot) *slot = v;
}

static bool usable(const bench_output *o) {
  return o->r && o->r->status == PE_RUN_OK && o->r->output;
}

bool bench_agreement(bench_doc *d, const char *cell, bench_output *outs, size_t n) {
  bool all_ok = true;
  for (size_t i = 0; i < n; i++)
    for (size_t j = i + 1; j < n; j++) {
      if (!usable(&outs[i]) || !usable(&outs[j]) || outs[i].r->output_len != outs[j].r->output_len)
        continue;
      if (outs[i].carried && outs[j].carried) continue; /* its pair was carried over too */
      bench_agree *g = bench_doc_add_agree(d, cell);
      if (!g) return false;
      snprintf(g->a, sizeof g->a, "%s", outs[i].rec->backend);
      snprintf(g->b, sizeof g->b, "%s", outs[j].rec->backend);
      compare(outs[i].r, outs[j].r, &g->max_abs, &g->rms);
      g->tolerance = fmin(outs[i].r->tolerance, outs[j].r->tolerance);
      g->ok = g->max_abs <= g->tolerance;
      all_ok &= g->ok;
      for (size_t k = 0; k < 2; k++) {
        bench_rec *rec = (k ? outs[j] : outs[i]).rec;
        worse(&rec->agree_max_abs, g->max_abs);
        worse(&rec->agree_rms, g->rms);
      }
    }
  return all_ok;
}

/* Max abs error of query row `row` of every (batch, head) against `want`
 * ([B][Hq][D] for that row). */
static double row_error(const pe_workload_info *in, const float *out, uint64_t row,
                        const double *want) {
  double worst = 0;
  size_t d = in->head_dim;
  for (size_t bh = 0; bh < (size_t)in->batch * in->q_heads; bh++)
    for (size_t c = 0; c < d; c++) {
      double e = fabs((double)out[(bh * in->q_len + row) * d + c] - want[bh * d + c]);
      worse(&worst, isnan(e) ? INFINITY : e);
    }
  return worst;
}

static int alloc_positions(bench_output *outs, size_t n, size_t rows) {
  for (size_t k = 0; k < n; k++) {
    bench_rec *r = outs[k].rec;
    if (!usable(&outs[k])) continue;
    free(r->err_pos);
    free(r->err_max);
    r->err_pos = calloc(rows, sizeof *r->err_pos);
    r->err_max = calloc(rows, sizeof *r->err_max);
    r->n_err = 0;
    if (!r->err_pos || !r->err_max) return PE_ENOMEM;
  }
  return 0;
}

int bench_position_errors(pe_ctx *ctx, const pe_workload *w, bench_output *outs, size_t n) {
  const pe_workload_info *in = pe_workload_get_info(w);
  if (in->op != PE_OP_ATTENTION) return 0;
  size_t rows = in->q_len < POSITION_SAMPLES ? (size_t)in->q_len : POSITION_SAMPLES;
  double *want = malloc((size_t)in->batch * in->q_heads * in->head_dim * sizeof *want);
  int rc = want ? alloc_positions(outs, n, rows) : PE_ENOMEM;
  for (size_t s = 0; rc == 0 && s < rows; s++) {
    uint64_t row = rows > 1 ? (uint64_t)((double)s * (double)(in->q_len - 1) / (double)(rows - 1)) : 0;
    rc = pe_oracle(ctx, w, row, 1, want);
    for (size_t k = 0; rc == 0 && k < n; k++) {
      bench_rec *r = outs[k].rec;
      if (!usable(&outs[k])) continue;
      r->err_pos[r->n_err] = (double)(in->position_offset + in->kv_len - in->q_len + row);
      r->err_max[r->n_err++] = row_error(in, outs[k].r->output, row, want);
    }
  }
  free(want);
  return rc;
}
