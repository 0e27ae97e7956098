/* --plot DIR: time.svg and gflops.svg (median time and GFLOP/s against
 * seq_len, one line per backend and per combination of the other swept
 * keys) and error.svg (max abs error against the oracle at sampled query
 * positions, for the longest seq_len of each line). */
#include "bench.h"
#include "bench_svg.h"

#include <errno.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>

/* "backend key=value ..." without seq_len: the line a record belongs to. */
static void line_name(const bench_rec *r, char *buf, size_t size) {
  size_t n = (size_t)snprintf(buf, size, "%s", r->backend);
  for (const char *p = r->cell; *p && n < size;) {
    size_t len = strcspn(p, " ");
    if (strncmp(p, "seq_len=", 8)) n += (size_t)snprintf(buf + n, size - n, " %.*s", (int)len, p);
    p += len + (p[len] == ' ');
  }
}

static bool plottable(const bench_rec *r) {
  return bench_rec_ok(r) && r->has_work && !strcmp(r->work.op, "attention");
}

static int fill_speed(chart *time, chart *speed, const bench_doc *d) {
  char name[160];
  for (size_t i = 0; i < d->n_recs; i++) {
    const bench_rec *r = &d->recs[i];
    if (!plottable(r)) continue;
    line_name(r, name, sizeof name);
    chart_series *t = chart_series_find(time, name), *s = chart_series_find(speed, name);
    if (!t || !s || chart_point(t, (double)r->work.seq_len, r->t_median) ||
        chart_point(s, (double)r->work.seq_len, r->gflops))
      return -1;
  }
  return 0;
}

/* The record of each line with the longest seq_len and error samples. */
static int fill_error(chart *c, const bench_doc *d) {
  char name[160], full[200];
  for (size_t i = 0; i < d->n_recs; i++) {
    const bench_rec *r = &d->recs[i], *best = r;
    if (!r->n_err) continue;
    line_name(r, name, sizeof name);
    for (size_t j = 0; j < d->n_recs; j++) {
      char other[160];
      line_name(&d->recs[j], other, sizeof other);
      if (d->recs[j].n_err && !strcmp(other, name) && d->recs[j].work.seq_len > best->work.seq_len)
        best = &d->recs[j];
    }
    if (best != r) continue;
    snprintf(full, sizeof full, "%s seq_len=%llu", name, (unsigned long long)r->work.seq_len);
    chart_series *s = chart_series_add(c, full);
    for (size_t k = 0; s && k < r->n_err; k++)
      if (chart_point(s, r->err_pos[k], r->err_max[k])) return -1;
    if (!s) return -1;
  }
  return 0;
}

static int save(pe_ctx *ctx, chart *c, const char *dir, const char *file, char *err,
                size_t err_size) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir, file);
  if (pe_write_atomic(ctx, path, chart_write, c) == 0) return 0;
  snprintf(err, err_size, "%s", pe_ctx_error(ctx));
  return -1;
}

static void titles(chart *c, const char *title, const char *xlabel, const char *ylabel,
                   const char *config) {
  snprintf(c->title, sizeof c->title, "%s", title);
  snprintf(c->xlabel, sizeof c->xlabel, "%s", xlabel);
  snprintf(c->ylabel, sizeof c->ylabel, "%s", ylabel);
  snprintf(c->note, sizeof c->note, "%s", config ? config : "");
  c->logx = c->logy = true;
}

int bench_plot(pe_ctx *ctx, const bench_doc *d, const char *dir, char *err, size_t err_size) {
  if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
    snprintf(err, err_size, "cannot create the directory: %s", strerror(errno));
    return -1;
  }
  chart time = {0}, speed = {0}, error = {0};
  titles(&time, "Median time per run", "seq_len (keys)", "ms", d->config_name);
  titles(&speed, "Attention throughput", "seq_len (keys)", "GFLOP/s", d->config_name);
  titles(&error, "Max abs error vs the float64 oracle", "query position", "max abs error",
         d->config_name);
  error.logx = false;
  snprintf(error.note, sizeof error.note, "%s; exact (zero) errors are not drawn on the log scale",
           d->config_name ? d->config_name : "");
  if (d->machine.has_roofline)
    snprintf(speed.note, sizeof speed.note, "%s; CPU FMA peak %.1f GFLOP/s", d->config_name,
             d->machine.peak_gflops);
  int rc = fill_speed(&time, &speed, d) || fill_error(&error, d) ? -1 : 0;
  if (rc) snprintf(err, err_size, "out of memory");
  if (rc == 0) rc = save(ctx, &time, dir, "time.svg", err, err_size);
  if (rc == 0) rc = save(ctx, &speed, dir, "gflops.svg", err, err_size);
  if (rc == 0 && error.n) rc = save(ctx, &error, dir, "error.svg", err, err_size);
  chart_free(&time);
  chart_free(&speed);
  chart_free(&error);
  return rc;
}
