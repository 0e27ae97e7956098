/* Line charts as plain SVG 1.1 (no scripts, no CSS beyond attributes), so
 * they render the same in browsers and in rsvg-convert: axes with ticks,
 * linear or log10 scales, one polyline with markers per series, a legend
 * beside the plot. */
#include "bench_svg.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { W = 1000, H = 580, ML = 84, MR = 320, MT = 64, MB = 64, MAX_LEGEND = 26, LEGEND_CHARS = 36 };
static const char *const palette[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                                      "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22"};
static const char *const dashes[] = {"", "6,3", "2,3", "8,3,2,3"};

chart_series *chart_series_add(chart *c, const char *name) {
  if (c->n == c->cap) {
    size_t cap = c->cap ? 2 * c->cap : 8;
    chart_series *g = realloc(c->s, cap * sizeof *g);
    if (!g) return NULL;
    c->s = g, c->cap = cap;
  }
  chart_series *s = &c->s[c->n++];
  memset(s, 0, sizeof *s);
  snprintf(s->name, sizeof s->name, "%s", name);
  s->color = s->dash = -1;
  return s;
}

int chart_point(chart_series *s, double x, double y) {
  if (s->n == s->cap) {
    size_t cap = s->cap ? 2 * s->cap : 16;
    double *px = realloc(s->x, cap * sizeof *px);
    if (px) s->x = px;
    double *py = px ? realloc(s->y, cap * sizeof *py) : NULL;
    if (py) s->y = py;
    if (!px || !py) return -1;
    s->cap = cap;
  }
  s->x[s->n] = x, s->y[s->n++] = y;
  return 0;
}

void chart_free(chart *c) {
  for (size_t i = 0; i < c->n; i++) free(c->s[i].x), free(c->s[i].y);
  free(c->s);
  c->s = NULL, c->n = c->cap = 0;
}

/* ---- scales ---------------------------------------------------------------------- */
typedef struct axis {
  bool log;
  double lo, hi;   /* in scale space (log10 when log) */
  double p0, p1;   /* pixels */
} axis;

static bool drawable(const axis *a, double v) { return isfinite(v) && (!a->log || v > 0); }
static double scaled(const axis *a, double v) { return a->log ? log10(v) : v; }
static double px(const axis *a, double v) {
  return a->p0 + (scaled(a, v) - a->lo) / (a->hi - a->lo) * (a->p1 - a->p0);
}

static void fit(const chart *c, bool y, axis *a) {
  double lo = INFINITY, hi = -INFINITY;
  for (size_t i = 0; i < c->n; i++)
    for (size_t k = 0; k < c->s[i].n; k++) {
      double v = y ? c->s[i].y[k] : c->s[i].x[k];
      if (!drawable(a, v)) continue;
      lo = fmin(lo, scaled(a, v)), hi = fmax(hi, scaled(a, v));
    }
  if (!isfinite(lo)) lo = 0, hi = 1;
  if (hi - lo < 1e-9 * fmax(1, fabs(hi))) lo -= a->log ? 0.5 : 0.5 * fmax(1, fabs(lo)), hi += a->log ? 0.5 : 0.5 * fmax(1, fabs(hi));
  double pad = 0.05 * (hi - lo);
  a->lo = lo - pad, a->hi = hi + pad;
}

static double nice_step(double range) {
  double raw = range / 6, mag = pow(10, floor(log10(raw))), f = raw / mag;
  return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * mag;
}

static void tick_label(char *buf, size_t size, double v) {
  double a = fabs(v);
  if (v == 0) snprintf(buf, size, "0");
  else if (a >= 1e5 || a < 1e-3) snprintf(buf, size, "%.0e", v);
  else snprintf(buf, size, "%g", v);
}

/* Tick values: decades (with 2 and 5 when few) on log axes, a nice step on
 * linear ones. */
static size_t ticks(const axis *a, double *t, size_t cap) {
  size_t n = 0;
  if (a->log) {
    bool fine = a->hi - a->lo < 2.5;
    for (double e = floor(a->lo); e <= ceil(a->hi) && n < cap; e++)
      for (int m = 1; m <= 5 && n < cap; m += m == 1 ? 1 : 3) {
        double v = pow(10, e) * m, s = log10(v);
        if ((m == 1 || fine) && s >= a->lo && s <= a->hi) t[n++] = v;
      }
    return n;
  }
  double step = nice_step(a->hi - a->lo);
  for (double v = ceil(a->lo / step) * step; v <= a->hi && n < cap; v += step)
    t[n++] = fabs(v) < step * 1e-9 ? 0 : v;
  return n;
}

/* ---- drawing ----------------------------------------------------------------------- */
static void text_escaped(FILE *fp, const char *s) {
  for (; *s; s++) {
    if (*s == '<') fputs("&lt;", fp);
    else if (*s == '>') fputs("&gt;", fp);
    else if (*s == '&') fputs("&amp;", fp);
    else if (*s == '"') fputs("&quot;", fp);
    else fputc(*s, fp);
  }
}

static void label(FILE *fp, double x, double y, const char *anchor, int size, const char *extra,
                  const char *s) {
  fprintf(fp, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\" font-size=\"%d\"%s>", x, y, anchor,
          size, extra);
  text_escaped(fp, s);
  fputs("</text>\n", fp);
}

/* The distinct x values of the data, when there are few (seq_len = 1024
 * 2048 ... reads best with a tick at each); 0 otherwise. */
static size_t data_ticks(const chart *c, const axis *a, double *t, size_t cap) {
  size_t n = 0;
  for (size_t i = 0; i < c->n; i++)
    for (size_t k = 0; k < c->s[i].n; k++) {
      double v = c->s[i].x[k];
      bool seen = !drawable(a, v);
      for (size_t j = 0; j < n && !seen; j++) seen = t[j] == v;
      if (seen) continue;
      if (n == cap) return 0;
      t[n++] = v;
    }
  return n;
}

static void draw_axes(FILE *fp, const chart *c, const axis *ax, const axis *ay) {
  double t[64];
  char buf[32];
  fprintf(fp, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"#333\"/>\n",
          ML, MT, W - ML - MR, H - MT - MB);
  size_t n = ax->log ? data_ticks(c, ax, t, 12) : 0;
  if (n < 2) n = ticks(ax, t, 64);
  for (size_t i = 0; i < n; i++) {
    double x = px(ax, t[i]);
    fprintf(fp, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#ddd\"/>\n", x, MT, x, H - MB);
    tick_label(buf, sizeof buf, t[i]);
    label(fp, x, H - MB + 18, "middle", 12, "", buf);
  }
  n = ticks(ay, t, 64);
  for (size_t i = 0; i < n; i++) {
    double y = px(ay, t[i]);
    fprintf(fp, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", ML, y, W - MR, y);
    tick_label(buf, sizeof buf, t[i]);
    label(fp, ML - 6, y + 4, "end", 12, "", buf);
  }
  label(fp, (ML + W - MR) / 2.0, 26, "middle", 16, " font-weight=\"bold\"", c->title);
  if (c->subtitle[0]) label(fp, (ML + W - MR) / 2.0, 46, "middle", 12, " fill=\"#555\"", c->subtitle);
  label(fp, (ML + W - MR) / 2.0, H - 18, "middle", 13, "", c->xlabel);
  char rot[64];
  snprintf(rot, sizeof rot, " transform=\"rotate(-90 18 %d)\"", (MT + H - MB) / 2);
  label(fp, 18, (MT + H - MB) / 2.0, "middle", 13, rot, c->ylabel);
}

static void draw_series(FILE *fp, const chart_series *s, size_t i, const axis *ax, const axis *ay) {
  const char *color = palette[(s->color >= 0 ? (size_t)s->color : i) % 10];
  const char *dash = dashes[(s->dash >= 0 ? (size_t)s->dash : i / 10) % 4];
  fprintf(fp, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\"%s%s%s points=\"", color,
          dash[0] ? " stroke-dasharray=\"" : "", dash, dash[0] ? "\"" : "");
  for (size_t k = 0; k < s->n; k++)
    if (drawable(ax, s->x[k]) && drawable(ay, s->y[k]))
      fprintf(fp, "%.1f,%.1f ", px(ax, s->x[k]), px(ay, s->y[k]));
  fputs("\"/>\n", fp);
  for (size_t k = 0; k < s->n; k++)
    if (drawable(ax, s->x[k]) && drawable(ay, s->y[k]))
      fprintf(fp, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"/>\n", px(ax, s->x[k]),
              px(ay, s->y[k]), color);
  if (i >= MAX_LEGEND) return;
  double ly = MT + 8 + 19.0 * (double)i;
  fprintf(fp, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"2\"%s%s%s/>\n",
          W - MR + 14, ly, W - MR + 40, ly, color, dash[0] ? " stroke-dasharray=\"" : "", dash,
          dash[0] ? "\"" : "");
  char name[LEGEND_CHARS + 4];
  snprintf(name, sizeof name, "%.*s%s", LEGEND_CHARS, s->name,
           strlen(s->name) > LEGEND_CHARS ? "..." : "");
  label(fp, W - MR + 46, ly + 4, "start", 12, "", name);
}

static int sort_x(const void *a, const void *b) {
  const double *x = a, *y = b;
  return (x[0] > y[0]) - (x[0] < y[0]);
}

/* Order each series by x, so its line runs left to right. */
static void sort_series(chart_series *s) {
  double *xy = malloc(2 * s->n * sizeof *xy);
  if (!xy) return;
  for (size_t k = 0; k < s->n; k++) xy[2 * k] = s->x[k], xy[2 * k + 1] = s->y[k];
  qsort(xy, s->n, 2 * sizeof *xy, sort_x);
  for (size_t k = 0; k < s->n; k++) s->x[k] = xy[2 * k], s->y[k] = xy[2 * k + 1];
  free(xy);
}

int chart_write(void *user, FILE *fp) {
  chart *c = user;
  axis ax = {.log = c->logx, .p0 = ML, .p1 = W - MR}, ay = {.log = c->logy, .p0 = H - MB, .p1 = MT};
  for (size_t i = 0; i < c->n; i++) sort_series(&c->s[i]);
  fit(c, false, &ax);
  fit(c, true, &ay);
  fprintf(fp, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" "
          "width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" font-family=\"sans-serif\">\n"
          "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n", W, H, W, H);
  draw_axes(fp, c, &ax, &ay);
  for (size_t i = 0; i < c->n; i++) draw_series(fp, &c->s[i], i, &ax, &ay);
  if (c->n > MAX_LEGEND)
    fprintf(fp, "<text x=\"%d\" y=\"%d\" font-size=\"12\">... and %zu more series</text>\n",
            W - MR + 14, MT + 8 + 19 * MAX_LEGEND, c->n - MAX_LEGEND);
  if (c->note[0]) label(fp, ML, H - 4, "start", 11, " fill=\"#555\"", c->note);
  fputs("</svg>\n", fp);
  return ferror(fp) ? -1 : 0;
}
