/* A tiny SVG line/dot chart writer for pe-probe plots. */
#ifndef PE_PROBE_SVG_H
#define PE_PROBE_SVG_H

#include <stddef.h>

#define SVG_MAX_SERIES 8

typedef struct svg_series {
  char *name;    /* owned copy (a scheme name or plugin path, any length) */
  double *x, *y; /* owned by the plot (svg_add copies) */
  size_t n;
  int dots;      /* 1: markers only; 0: a polyline */
} svg_series;

typedef struct svg_plot {
  char *title;    /* owned, malloc'd (it may name a config path); NULL: none */
  char xlabel[64], ylabel[64]; /* the probes' own literals */
  int logx, logy; /* log10 axes; values <= 0 are dropped */
  svg_series s[SVG_MAX_SERIES];
  size_t ns;
} svg_plot;

/* Copy `n` points into a new series; NaN points are skipped. */
void svg_add(svg_plot *p, const char *name, const double *x, const double *y, size_t n,
             int dots);
void svg_free(svg_plot *p); /* the series and the title */
/* The chart as a malloc'd SVG document (NULL on failure). */
char *svg_render(const svg_plot *p, size_t *len);

#endif /* PE_PROBE_SVG_H */
