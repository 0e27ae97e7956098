/* pe-bench's SVG line charts. */
#ifndef PE_BENCH_SVG_H
#define PE_BENCH_SVG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

typedef struct chart_series {
  char name[160];
  int color, dash; /* palette indices; -1: by the series' position */
  double *x, *y;
  size_t n, cap;
} chart_series;

typedef struct chart {
  char title[200], subtitle[200], xlabel[80], ylabel[80], note[200];
  bool logx, logy; /* log10 axes; points <= 0 are left out */
  chart_series *s;
  size_t n, cap;
} chart;

chart_series *chart_series_add(chart *c, const char *name);
int chart_point(chart_series *s, double x, double y);
void chart_free(chart *c);
/* Write the chart (a chart *) as an SVG document: a pe_write_fn. */
int chart_write(void *chart, FILE *fp);

#endif /* PE_BENCH_SVG_H */
