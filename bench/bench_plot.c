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

/* A record's line: its backend and the values of its cell's keys other
 * than seq_len ("openmp yarn"); `rest` gets the values alone. */
static void line_name(const bench_rec *r, char *buf, size_t size, char *rest, size_t rest_size) {
  size_t n = 0;
  rest[0] = '\0';
  for (const char *p = r->cell; *p;) {
    size_t len = strcspn(p, " "), eq = strcspn(p, "=");
    if (eq < len && strncmp(p, "seq_len=", 8))
      n += (size_t)snprintf(rest + n, n < rest_size ? rest_size - n : 0, "%s%.*s", n ? " " : "",
                            (int)(len - eq - 1), p + eq + 1);
    p += len + (p[len] == ' ');
  }
  snprintf(buf, size, "%s%s%s", r->backend, rest[0] ? " " : "", rest);
}

/* Distinct words, for colours (the other keys) and dashes (backends). */
typedef struct styles {
  char rest[64][128], backend[64][128];
  int n_rest, n_backend;
} styles;

static int style_index(char (*names)[128], int *n, const char *name) {
  for (int i = 0; i < *n; i++)
    if (!strcmp(names[i], name)) return i;
  if (*n == 64) return 0;
  snprintf(names[*n], 128, "%s", name);
  return (*n)++;
}

/* The series of a record, styled: one colour per combination of the other
 * keys, one dash pattern per backend. */
static chart_series *series_of(chart *c, styles *st, const bench_rec *r, const char *suffix) {
  char name[160], rest[128], full[200];
  line_name(r, name, sizeof name, rest, sizeof rest);
  snprintf(full, sizeof full, "%s%s", name, suffix);
  for (size_t i = 0; i < c->n; i++)
    if (!strcmp(c->s[i].name, full)) return &c->s[i];
  chart_series *s = chart_series_add(c, full);
  if (!s) return NULL;
  s->color = style_index(st->rest, &st->n_rest, rest);
  s->dash = style_index(st->backend, &st->n_backend, r->backend);
  return s;
}

static bool plottable(const bench_rec *r) {
  return bench_rec_ok(r) && r->has_work && !strcmp(r->work.op, "attention");
}

static int fill_speed(chart *time, chart *speed, const bench_doc *d) {
  styles st = {0};
  for (size_t i = 0; i < d->n_recs; i++) {
    const bench_rec *r = &d->recs[i];
    if (!plottable(r)) continue;
    chart_series *t = series_of(time, &st, r, ""), *s = series_of(speed, &st, r, "");
    if (!t || !s || chart_point(t, (double)r->work.seq_len, r->t_median) ||
        chart_point(s, (double)r->work.seq_len, r->gflops))
      return -1;
  }
  return 0;
}

/* Whether `r` is the record of its line with the longest seq_len among
 * those with error samples. */
static bool longest(const bench_doc *d, const bench_rec *r) {
  char name[160], other[160], rest[128];
  line_name(r, name, sizeof name, rest, sizeof rest);
  for (size_t j = 0; j < d->n_recs; j++) {
    const bench_rec *o = &d->recs[j];
    if (!o->n_err || o->work.seq_len <= r->work.seq_len) continue;
    line_name(o, other, sizeof other, rest, sizeof rest);
    if (!strcmp(other, name)) return false;
  }
  return true;
}

static int fill_error(chart *c, const bench_doc *d) {
  styles st = {0};
  char suffix[48];
  for (size_t i = 0; i < d->n_recs; i++) {
    const bench_rec *r = &d->recs[i];
    if (!r->n_err || !longest(d, r)) continue;
    snprintf(suffix, sizeof suffix, " (seq_len %llu)", (unsigned long long)r->work.seq_len);
    chart_series *s = series_of(c, &st, r, suffix);
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

static void titles(chart *c, const bench_doc *d, const char *title, const char *xlabel,
                   const char *ylabel) {
  size_t n = (size_t)snprintf(c->subtitle, sizeof c->subtitle, "lines: backend");
  for (size_t k = 0; k < d->n_keys && n < sizeof c->subtitle; k++)
    if (strcmp(d->keys[k], "seq_len"))
      n += (size_t)snprintf(c->subtitle + n, sizeof c->subtitle - n, ", %s", d->keys[k]);
  const char *config = d->config_name;
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
  titles(&time, d, "Median time per run", "seq_len (keys)", "ms");
  titles(&speed, d, "Attention throughput", "seq_len (keys)", "GFLOP/s");
  titles(&error, d, "Max abs error vs the float64 oracle", "query position", "max abs error");
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
