/* Reports for people (table, agreement matrices) and for spreadsheets
 * (CSV, RFC 4180), and the atomic write of any format. */
#include "bench.h"
#include "text_fit.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- CSV ------------------------------------------------------------------- */
/* The columns of the single-config CSV first, in their old order. */
static const char csv_header[] =
    "config,scheme,op,batch,q_heads,kv_heads,head_dim,q_len,seq_len,position_offset,causal,"
    "window,backend,plugin,device,status,time_min_ms,time_median_ms,time_max_ms,"
    "device_median_ms,prepare_ms,gflops,gbps,max_abs_err,rms_err,verified_rows,total_rows,"
    "message,cell,driver,device_type,tolerance,verified,fraction_of_peak,fraction_of_bandwidth,"
    "agree_max_abs,agree_rms,machine_cpu,machine_cores,machine_os,compiler,libpe_version,"
    "created,config_text\n";

/* A quoted field (RFC 4180) and its separator. */
static void csv_field(FILE *fp, const char *s, char end) {
  pe_report_csv_string(fp, s);
  fputc(end, fp);
}

static void csv_str(FILE *fp, const char *s) { csv_field(fp, s, ','); }

static void csv_num(FILE *fp, double v) {
  char buf[40];
  fprintf(fp, "%s,", bench_num(buf, sizeof buf, v, ""));
}

static void csv_nums(FILE *fp, const double *v, size_t n) {
  for (size_t i = 0; i < n; i++) csv_num(fp, v[i]);
}

static void csv_rec(FILE *fp, const bench_doc *d, const bench_rec *r) {
  const bench_work *w = &r->work;
  csv_str(fp, d->config_name);
  csv_str(fp, w->scheme);
  csv_str(fp, w->op);
  const double shape[] = {(double)w->batch, (double)w->q_heads, (double)w->kv_heads,
                          (double)w->head_dim, (double)w->q_len, (double)w->seq_len,
                          (double)w->position_offset, w->causal, (double)w->window};
  if (r->has_work) csv_nums(fp, shape, 9);
  else fputs(",,,,,,,,,", fp);
  csv_str(fp, r->backend);
  csv_str(fp, r->plugin);
  csv_str(fp, r->device);
  csv_str(fp, r->status);
  const double stats[] = {r->t_min, r->t_median, r->t_max, r->device_ms, r->prepare_ms,
                          r->gflops, r->gbps, r->max_abs_err, r->rms_err,
                          (double)r->verified_rows, (double)r->total_rows};
  csv_nums(fp, stats, 11);
  csv_str(fp, r->message);
  csv_str(fp, r->cell);
  csv_str(fp, r->driver);
  fprintf(fp, "%u,", r->device_type);
  const double more[] = {r->tolerance, r->verified, r->frac_peak, r->frac_bandwidth,
                         r->agree_max_abs, r->agree_rms};
  csv_nums(fp, more, 6);
  const bench_machine *m = &d->machine;
  csv_str(fp, m->cpu);
  fprintf(fp, "%u,", m->cores);
  csv_str(fp, m->os);
  csv_str(fp, m->compiler);
  csv_str(fp, m->libpe_version);
  csv_str(fp, m->created);
  csv_field(fp, d->config_text, '\n');
}

int bench_write_csv(FILE *fp, const bench_doc *d) {
  fputs(csv_header, fp);
  for (size_t i = 0; i < d->n_recs; i++) csv_rec(fp, d, &d->recs[i]);
  return ferror(fp) ? -1 : 0;
}

/* ---- labels in columns --------------------------------------------------------- */
const char *bench_fit(char *buf, size_t size, const char *s, int width) {
  return pe_text_fit(buf, size, s, width > 0 ? (size_t)width : 0);
}

int bench_label_width(size_t longest, int min) {
  if (longest > BENCH_LABEL_MAX) longest = BENCH_LABEL_MAX;
  return (int)longest > min ? (int)longest : min;
}

/* The width of the backend column: the longest label of d. */
static int backend_width(const bench_doc *d, int min) {
  size_t w = 0;
  for (size_t i = 0; i < d->n_recs; i++)
    if (strlen(d->recs[i].backend) > w) w = strlen(d->recs[i].backend);
  return bench_label_width(w, min);
}

/* ---- agreement matrices ------------------------------------------------------ */
static const bench_agree *find_pair(const bench_doc *d, const char *cell, const char *a,
                                    const char *b) {
  for (size_t i = 0; i < d->n_agree; i++) {
    const bench_agree *g = &d->agree[i];
    if (strcmp(g->cell, cell)) continue;
    if ((!strcmp(g->a, a) && !strcmp(g->b, b)) || (!strcmp(g->a, b) && !strcmp(g->b, a))) return g;
  }
  return NULL;
}

/* The backends of a cell that take part in its comparisons. */
static size_t matrix_backends(const bench_doc *d, const char *cell, const bench_rec **out,
                              size_t cap) {
  size_t n = 0;
  for (size_t i = 0; i < d->n_recs && n < cap; i++) {
    const bench_rec *r = &d->recs[i];
    bool paired = false;
    for (size_t j = 0; j < d->n_agree && !paired; j++)
      paired = !strcmp(d->agree[j].cell, cell) &&
               (!strcmp(d->agree[j].a, r->backend) || !strcmp(d->agree[j].b, r->backend));
    if (!strcmp(r->cell, cell) && paired) out[n++] = r;
  }
  return n;
}

static void matrix_entry(FILE *fp, int width, double max_abs, double rms, bool bad) {
  char e[48];
  snprintf(e, sizeof e, "%.1e/%.1e%s", max_abs, rms, bad ? " !" : "");
  fprintf(fp, " %-*s", width, e);
}

static void matrix_row(FILE *fp, const bench_doc *d, const char *cell, const bench_rec *const *rs,
                       size_t n, size_t i, int lw, int ew) {
  char label[BENCH_LABEL_MAX + 1];
  fprintf(fp, "%-*s", lw, bench_fit(label, sizeof label, rs[i]->backend, lw));
  if (rs[i]->verified)
    matrix_entry(fp, ew, rs[i]->max_abs_err, rs[i]->rms_err, !(rs[i]->max_abs_err <= rs[i]->tolerance));
  else
    fprintf(fp, " %-*s", ew, "not verified");
  for (size_t j = 0; j < n; j++) {
    const bench_agree *g = i == j ? NULL : find_pair(d, cell, rs[i]->backend, rs[j]->backend);
    if (g) matrix_entry(fp, ew, g->max_abs, g->rms, !g->ok);
    else fprintf(fp, " %-*s", ew, "-");
  }
  fputc('\n', fp);
}

void bench_print_matrix(FILE *fp, const bench_doc *d, const char *cell) {
  const bench_rec *rs[BENCH_MAX_BACKENDS];
  size_t n = matrix_backends(d, cell, rs, BENCH_MAX_BACKENDS), longest = 0;
  if (n < 2) return;
  for (size_t i = 0; i < n; i++)
    if (strlen(rs[i]->backend) > longest) longest = strlen(rs[i]->backend);
  /* rows and columns as wide as the longest label (within reason), and the
   * columns at least as wide as an entry ("1.0e-03/1.0e-04 !") */
  int lw = bench_label_width(longest, 16), ew = bench_label_width(longest, 19);
  char label[BENCH_LABEL_MAX + 1];
  fprintf(fp, "agreement%s%s: max abs / rms difference of the outputs (tolerance %.1e; "
          "! = beyond)\n%-*s %-*s", cell[0] ? ", " : "", cell, rs[0]->tolerance, lw, "", ew, "oracle");
  for (size_t j = 0; j < n; j++) fprintf(fp, " %-*s", ew, bench_fit(label, sizeof label, rs[j]->backend, ew));
  fputc('\n', fp);
  for (size_t i = 0; i < n; i++) matrix_row(fp, d, cell, rs, n, i, lw, ew);
  for (size_t i = 0; i < n; i++)
    if (rs[i]->verified && rs[i]->verified_rows < rs[i]->total_rows)
      fprintf(fp, "(%s: the oracle checked %llu of %llu query rows per head; the backends are "
              "compared on all)\n", rs[i]->backend, (unsigned long long)rs[i]->verified_rows,
              (unsigned long long)rs[i]->total_rows);
}

/* ---- table ------------------------------------------------------------------- */
static void table_header(FILE *fp, const bench_doc *d) {
  const bench_machine *m = &d->machine;
  fprintf(fp, "config    %s\n", d->config_name ? d->config_name : "");
  fprintf(fp, "machine   %s, %u CPUs, %s, %s, libpe %s\n", m->cpu, m->cores, m->os, m->compiler,
          m->libpe_version);
  if (m->has_roofline)
    fprintf(fp, "roofline  fp32 FMA peak %.1f GFLOP/s (%s, %u threads), copy %.1f GB/s\n",
            m->peak_gflops, m->isa, m->roof_threads, m->copy_gbps);
  if (d->n_keys) {
    fprintf(fp, "sweep    ");
    for (size_t i = 0; i < d->n_keys; i++) fprintf(fp, " %s", d->keys[i]);
    fputc('\n', fp);
    return;
  }
  const bench_rec *r = d->n_recs && d->recs[0].has_work ? &d->recs[0] : NULL;
  if (!r) return;
  const bench_work *w = &r->work;
  fprintf(fp, "workload  %s: B=%llu Hq=%llu Hkv=%llu D=%llu Sq=%llu Skv=%llu offset=%llu %s", w->op,
          (unsigned long long)w->batch, (unsigned long long)w->q_heads,
          (unsigned long long)w->kv_heads, (unsigned long long)w->head_dim,
          (unsigned long long)w->q_len, (unsigned long long)w->seq_len,
          (unsigned long long)w->position_offset, w->causal ? "causal" : "bidirectional");
  if (w->window) fprintf(fp, " window=%llu", (unsigned long long)w->window);
  fprintf(fp, "\nscheme    %s (%s)\ninputs    %s\nwork      %.4g GFLOP, %.4g MB per run\n",
          w->scheme, w->note, w->inputs, w->flops * 1e-9, w->bytes * 1e-6);
}

static int cell_width(const bench_doc *d) {
  size_t w = 4;
  for (size_t i = 0; i < d->n_recs; i++)
    if (strlen(d->recs[i].cell) > w) w = strlen(d->recs[i].cell);
  return (int)(w > 60 ? 60 : w);
}

static void percent(char *buf, size_t size, double f) {
  if (isfinite(f)) snprintf(buf, size, "%.1f%%", 100 * f);
  else snprintf(buf, size, "-");
}

/* An error against the oracle, or "-" when the output was not verified
 * (a run that failed after timing, in fetch, has none). */
static void error_cell(char *buf, size_t size, const bench_rec *r, double e) {
  if (r->verified) snprintf(buf, size, "%.2e", e);
  else snprintf(buf, size, "-");
}

static void table_row(FILE *fp, const bench_rec *r, int cw, int bw) {
  char label[BENCH_LABEL_MAX + 1];
  if (cw) fprintf(fp, "%-*.*s ", cw, cw, r->cell);
  fprintf(fp, "%-*s %-11s ", bw, bench_fit(label, sizeof label, r->backend, bw), r->status);
  if (!bench_rec_ok(r) && r->t_median == 0) {
    fprintf(fp, "%10s %10s %10s %7s %9s %9s %9s  %s\n", "-", "-", "-", "-", "-", "-", "-",
            r->device[0] ? r->device : "-");
    return;
  }
  bool attn = !r->has_work || !strcmp(r->work.op, "attention");
  char peak[16], agree[16], max_err[16], rms_err[16];
  percent(peak, sizeof peak, attn ? r->frac_peak : r->frac_bandwidth);
  if (isfinite(r->agree_max_abs)) snprintf(agree, sizeof agree, "%.2e", r->agree_max_abs);
  else snprintf(agree, sizeof agree, "-");
  error_cell(max_err, sizeof max_err, r, r->max_abs_err);
  error_cell(rms_err, sizeof rms_err, r, r->rms_err);
  fprintf(fp, "%10.3f %10.3f %10.2f %7s %9s %9s %9s  %s\n", r->t_min, r->t_median,
          attn ? r->gflops : r->gbps, peak, max_err, rms_err, agree, r->device[0] ? r->device : "-");
}

/* One line per result that did not verify; for a single config, per
 * result (as pe-bench always printed). */
static void table_notes(FILE *fp, const bench_doc *d) {
  for (size_t i = 0; i < d->n_recs; i++) {
    const bench_rec *r = &d->recs[i];
    bool good = bench_rec_ok(r) && r->verified;
    if (good && d->n_keys) continue;
    fprintf(fp, "%s%s%s: ", r->cell, r->cell[0] ? " " : "", r->backend);
    if (!bench_rec_ok(r))
      fprintf(fp, "%s: %s", r->status, bench_reason(r->plugin, r->status, r->message));
    else if (!r->verified) fprintf(fp, "not verified ([run] verify = false)");
    else fprintf(fp, "verified %llu of %llu query rows per head against the float64 oracle "
                 "(tolerance %.1e); prepare %.1f ms", (unsigned long long)r->verified_rows,
                 (unsigned long long)r->total_rows, r->tolerance, r->prepare_ms);
    if (good && isfinite(r->device_ms)) fprintf(fp, "; device time %.3f ms", r->device_ms);
    if (r->driver[0]) fprintf(fp, "; driver %s", r->driver);
    if (r->details[0]) fprintf(fp, "; %s", r->details);
    fputc('\n', fp);
  }
}

int bench_write_table(FILE *fp, const bench_doc *d) {
  table_header(fp, d);
  int cw = d->n_keys ? cell_width(d) : 0, bw = backend_width(d, 12);
  fputc('\n', fp);
  if (cw) fprintf(fp, "%-*s ", cw, "cell");
  fprintf(fp, "%-*s %-11s %10s %10s %10s %7s %9s %9s %9s  %s\n", bw, "backend", "status", "min ms",
          "median ms", "GFLOP/s", "%peak", "max err", "rms err", "agree", "device");
  for (size_t i = 0; i < d->n_recs; i++) table_row(fp, &d->recs[i], cw, bw);
  fputc('\n', fp);
  table_notes(fp, d);
  for (size_t i = 0; i < d->n_recs; i++) {
    bool first = true; /* one matrix per cell */
    for (size_t j = 0; j < i && first; j++) first = strcmp(d->recs[j].cell, d->recs[i].cell) != 0;
    if (first) bench_print_matrix(fp, d, d->recs[i].cell);
  }
  return ferror(fp) ? -1 : 0;
}

/* ---- atomic write ------------------------------------------------------------ */
typedef struct write_job {
  const bench_doc *d;
  int format;
} write_job;

static int write_any(void *user, FILE *fp) {
  const write_job *j = user;
  if (j->format == PE_FORMAT_JSON) return bench_write_json(fp, j->d);
  if (j->format == PE_FORMAT_CSV) return bench_write_csv(fp, j->d);
  return bench_write_table(fp, j->d);
}

int bench_write(pe_ctx *ctx, const bench_doc *d, int format, const char *path) {
  write_job job = {d, format};
  return pe_write_atomic(ctx, path, write_any, &job);
}
