/* SVG charts for pe-probe: axes with ticks, linear or log10 scales, one
 * polyline (or dots) per series, a legend.  Plain SVG 1.1, no scripts, so
 * it renders in any browser and in rsvg-convert. */
#include "svg.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { W = 860, H = 520, ML = 90, MR = 200, MT = 44, MB = 62 };
static const char *const colors[SVG_MAX_SERIES] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e",
                                                   "#9467bd", "#8c564b", "#e377c2", "#17becf"};

void svg_add(svg_plot *p, const char *name, const double *x, const double *y, size_t n, int dots) {
  if (p->ns == SVG_MAX_SERIES) return;
  svg_series *s = &p->s[p->ns++];
  s->name = strdup(name);
  s->x = malloc((n + 1) * sizeof *s->x);
  s->y = malloc((n + 1) * sizeof *s->y);
  s->dots = dots;
  s->n = 0;
  for (size_t i = 0; i < n && s->x && s->y; i++) {
    if (!isfinite(x[i]) || !isfinite(y[i])) continue;
    if ((p->logx && x[i] <= 0) || (p->logy && y[i] <= 0)) continue;
    s->x[s->n] = x[i], s->y[s->n++] = y[i];
  }
}

void svg_free(svg_plot *p) {
  for (size_t i = 0; i < p->ns; i++) free(p->s[i].name), free(p->s[i].x), free(p->s[i].y);
  p->ns = 0;
  free(p->title);
  p->title = NULL;
}

typedef struct axis {
  double lo, hi; /* in plot space (log10 when log) */
  int log;
  double px0, px1;
} axis;

static double tr(const axis *a, double v) {
  double t = a->log ? log10(v) : v;
  return a->px0 + (t - a->lo) / (a->hi - a->lo) * (a->px1 - a->px0);
}

static void bounds(const svg_plot *p, int want_y, axis *a) {
  double lo = INFINITY, hi = -INFINITY;
  for (size_t i = 0; i < p->ns; i++)
    for (size_t k = 0; k < p->s[i].n; k++) {
      double v = want_y ? p->s[i].y[k] : p->s[i].x[k];
      v = a->log ? log10(v) : v;
      lo = fmin(lo, v), hi = fmax(hi, v);
    }
  if (!isfinite(lo)) lo = 0, hi = 1;
  if (hi - lo < 1e-12 * fmax(1, fabs(hi))) lo -= 0.5, hi += 0.5;
  double pad = want_y ? 0.04 * (hi - lo) : 0;
  a->lo = lo - pad, a->hi = hi + pad;
}

static double nice_step(double range) {
  double raw = range / 6, mag = pow(10, floor(log10(raw))), f = raw / mag;
  return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * mag;
}

static void esc(FILE *fp, const char *s) {
  for (; s && *s; s++) { /* NULL (a copy out of memory): nothing */
    if (*s == '<') fputs("&lt;", fp);
    else if (*s == '>') fputs("&gt;", fp);
    else if (*s == '&') fputs("&amp;", fp);
    else fputc(*s, fp);
  }
}

static void tick(FILE *fp, const axis *a, int vertical, double v, double other0, double other1) {
  double t = tr(a, v);
  if (vertical) {
    fprintf(fp, "<line x1='%.1f' y1='%.1f' x2='%.1f' y2='%.1f' stroke='#ddd'/>\n", t, other0, t, other1);
    fprintf(fp, "<text x='%.1f' y='%.1f' text-anchor='middle'>%g</text>\n", t, other0 + 18, v);
  } else {
    fprintf(fp, "<line x1='%.1f' y1='%.1f' x2='%.1f' y2='%.1f' stroke='#ddd'/>\n", other0, t, other1, t);
    fprintf(fp, "<text x='%.1f' y='%.1f' text-anchor='end'>%.4g</text>\n", other0 - 6, t + 4, v);
  }
}

static void ticks(FILE *fp, const axis *a, int vertical, double o0, double o1) {
  if (a->log) {
    int n = 0;
    for (double e = ceil(a->lo); e <= a->hi && n < 40; e++, n++) tick(fp, a, vertical, pow(10, e), o0, o1);
    if (a->hi - a->lo < 2.5) /* few decades: 2 and 5 too */
      for (double e = floor(a->lo); e <= a->hi; e++)
        for (int m = 2; m <= 5; m += 3)
          if (log10(m) + e >= a->lo && log10(m) + e <= a->hi) tick(fp, a, vertical, m * pow(10, e), o0, o1);
    return;
  }
  double st = nice_step(a->hi - a->lo);
  for (double v = ceil(a->lo / st) * st; v <= a->hi + 1e-9 * st; v += st)
    tick(fp, a, vertical, fabs(v) < 1e-9 * st ? 0 : v, o0, o1);
}

/* A polyline, decimated to the min and max of each pixel column. */
static void polyline(FILE *fp, const svg_series *s, const axis *ax, const axis *ay, const char *c) {
  fprintf(fp, "<polyline fill='none' stroke='%s' stroke-width='1.6' points='", c);
  long col = -1;
  double lo = 0, hi = 0, x = 0;
  for (size_t k = 0; k <= s->n; k++) {
    long px = k < s->n ? lround(tr(ax, s->x[k])) : -2;
    double py = k < s->n ? tr(ay, s->y[k]) : 0;
    if (px != col) {
      if (col != -1) fprintf(fp, "%.1f,%.1f %.1f,%.1f ", x, lo, x, hi);
      col = px, lo = hi = py, x = k < s->n ? tr(ax, s->x[k]) : 0;
    } else {
      lo = fmin(lo, py), hi = fmax(hi, py);
    }
  }
  fputs("'/>\n", fp);
}

static void series(FILE *fp, const svg_plot *p, const axis *ax, const axis *ay) {
  fprintf(fp, "<g clip-path='url(#plot)'>\n");
  for (size_t i = 0; i < p->ns; i++) {
    const svg_series *s = &p->s[i];
    if (!s->dots) polyline(fp, s, ax, ay, colors[i]);
    else
      for (size_t k = 0; k < s->n; k++)
        fprintf(fp, "<circle cx='%.1f' cy='%.1f' r='1.6' fill='%s'/>\n", tr(ax, s->x[k]),
                tr(ay, s->y[k]), colors[i]);
  }
  fputs("</g>\n", fp);
  for (size_t i = 0; i < p->ns; i++) {
    double y = MT + 16 + 20.0 * (double)i;
    fprintf(fp, "<rect x='%d' y='%.0f' width='14' height='4' fill='%s'/>", W - MR + 14, y - 4, colors[i]);
    fprintf(fp, "<text x='%d' y='%.0f'>", W - MR + 34, y + 2);
    esc(fp, p->s[i].name);
    fputs("</text>\n", fp);
  }
}

char *svg_render(const svg_plot *p, size_t *len) {
  char *buf = NULL;
  FILE *fp = open_memstream(&buf, len);
  if (!fp) return NULL;
  axis ax = {.log = p->logx, .px0 = ML, .px1 = W - MR}, ay = {.log = p->logy, .px0 = H - MB, .px1 = MT};
  bounds(p, 0, &ax);
  bounds(p, 1, &ay);
  fprintf(fp, "<?xml version='1.0' encoding='UTF-8'?>\n"
              "<svg xmlns='http://www.w3.org/2000/svg' width='%d' height='%d' viewBox='0 0 %d %d' "
              "font-family='sans-serif' font-size='12'>\n<rect width='100%%' height='100%%' fill='white'/>\n"
              "<defs><clipPath id='plot'><rect x='%d' y='%d' width='%d' height='%d'/></clipPath></defs>\n",
          W, H, W, H, ML, MT, W - ML - MR, H - MT - MB);
  ticks(fp, &ax, 1, H - MB, MT);
  ticks(fp, &ay, 0, ML, W - MR);
  fprintf(fp, "<rect x='%d' y='%d' width='%d' height='%d' fill='none' stroke='#333'/>\n", ML, MT,
          W - ML - MR, H - MT - MB);
  series(fp, p, &ax, &ay);
  fprintf(fp, "<text x='%d' y='24' font-size='15' text-anchor='middle'>", (ML + W - MR) / 2);
  esc(fp, p->title);
  fprintf(fp, "</text>\n<text x='%d' y='%d' text-anchor='middle'>", (ML + W - MR) / 2, H - 16);
  esc(fp, p->xlabel);
  fprintf(fp, "%s</text>\n<text transform='translate(22 %d) rotate(-90)' text-anchor='middle'>",
          p->logx ? " (log)" : "", (MT + H - MB) / 2);
  esc(fp, p->ylabel);
  fprintf(fp, "%s</text>\n</svg>\n", p->logy ? " (log)" : "");
  if (fclose(fp) != 0) {
    free(buf);
    return NULL;
  }
  return buf;
}
