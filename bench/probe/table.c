/* Column tables for pe-probe reports (see table.h). */
#include "table.h"

#include <libpe.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

void pt_cols(ptab *t, const char *spec) {
  memset(t, 0, sizeof *t);
  const char *p = spec;
  while (*p && t->ncols < PT_MAX_COLS) {
    size_t n = strcspn(p, ",");
    char *name = strndup(p, n), *colon = strchr(name, ':');
    if (colon) *colon = '\0';
    pt_col(t, name, colon ? colon + 1 : NULL);
    free(name);
    p += n + (p[n] == ',');
  }
}

void pt_col(ptab *t, const char *name, const char *fmt) {
  if (t->ncols == PT_MAX_COLS) return;
  t->fmt[t->ncols] = fmt ? strdup(fmt) : NULL;
  t->cols[t->ncols++] = strdup(name);
}

static pcell *next_cell(ptab *t) {
  size_t need = (t->nrows * t->ncols) + t->fill + 1;
  if (need > t->cap) {
    size_t cap = t->cap ? t->cap * 2 : 256;
    while (cap < need) cap *= 2;
    pcell *c = realloc(t->cells, cap * sizeof *c);
    if (!c) abort();
    t->cells = c;
    t->cap = cap;
  }
  pcell *c = &t->cells[t->nrows * t->ncols + t->fill];
  if (++t->fill == t->ncols) t->fill = 0, t->nrows++;
  return c;
}

void pt_num(ptab *t, double v) { *next_cell(t) = (pcell){v, NULL}; }
void pt_str(ptab *t, const char *s) { *next_cell(t) = (pcell){NAN, strdup(s ? s : "")}; }

void pt_free(ptab *t) {
  for (size_t i = 0; i < t->nrows * t->ncols + t->fill; i++) free(t->cells[i].s);
  for (size_t c = 0; c < t->ncols; c++) free(t->cols[c]), free(t->fmt[c]);
  free(t->cells);
  memset(t, 0, sizeof *t);
}

double pt_get(const ptab *t, size_t row, size_t col) { return t->cells[row * t->ncols + col].v; }

/* A cell as the view shows it: a text cell itself (any length: a plugin
 * path), a number formatted into buf (formats come from the probes' own
 * column specs, never from input). */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
static const char *view_cell(const ptab *t, size_t r, size_t c, char *buf, size_t n) {
  const pcell *x = &t->cells[r * t->ncols + c];
  if (x->s) return x->s;
  if (isnan(x->v)) snprintf(buf, n, "-");
  else if (t->fmt[c]) snprintf(buf, n, t->fmt[c], x->v);
  else snprintf(buf, n, "%.6g", x->v);
  return buf;
}
#pragma GCC diagnostic pop

void pt_print(FILE *fp, const ptab *t) {
  size_t w[PT_MAX_COLS];
  char buf[128];
  for (size_t c = 0; c < t->ncols; c++) w[c] = strlen(t->cols[c]);
  for (size_t r = 0; r < t->nrows; r++)
    for (size_t c = 0; c < t->ncols; c++) {
      size_t len = strlen(view_cell(t, r, c, buf, sizeof buf));
      if (len > w[c]) w[c] = len;
    }
  for (size_t c = 0; c < t->ncols; c++) fprintf(fp, "%s%*s", c ? "  " : "", (int)w[c], t->cols[c]);
  fputc('\n', fp);
  for (size_t r = 0; r < t->nrows; r++) {
    for (size_t c = 0; c < t->ncols; c++) {
      fprintf(fp, "%s%*s", c ? "  " : "", (int)w[c], view_cell(t, r, c, buf, sizeof buf));
    }
    fputc('\n', fp);
  }
}

/* A header name: as is when CSV-safe (so the documented headers read as
 * before), else quoted like a text cell (a scheme path in `bound_NAME`). */
static void csv_name(FILE *fp, const char *name) {
  if (name[strcspn(name, ",\"\r\n")]) pe_report_csv_string(fp, name);
  else fputs(name, fp);
}

/* RFC 4180, as pe-bench writes it: text cells always quoted (quotes
 * doubled), numbers bare, a missing number empty. */
void pt_csv(FILE *fp, const ptab *t) {
  for (size_t c = 0; c < t->ncols; c++) {
    if (c) fputc(',', fp);
    csv_name(fp, t->cols[c]);
  }
  fputc('\n', fp);
  for (size_t r = 0; r < t->nrows; r++) {
    for (size_t c = 0; c < t->ncols; c++) {
      const pcell *x = &t->cells[r * t->ncols + c];
      if (c) fputc(',', fp);
      if (x->s) pe_report_csv_string(fp, x->s);
      else if (!isnan(x->v)) fprintf(fp, "%.17g", x->v);
    }
    fputc('\n', fp);
  }
}

void json_number(FILE *fp, double v) {
  if (isfinite(v)) fprintf(fp, "%.17g", v);
  else fputs("null", fp);
}

void pt_json_rows(FILE *fp, const ptab *t) {
  fputs("\"columns\": [", fp);
  for (size_t c = 0; c < t->ncols; c++) {
    if (c) fputs(", ", fp);
    pe_report_json_string(fp, t->cols[c]);
  }
  fputs("],\n  \"rows\": [", fp);
  for (size_t r = 0; r < t->nrows; r++) {
    fputs(r ? ",\n    [" : "\n    [", fp);
    for (size_t c = 0; c < t->ncols; c++) {
      const pcell *x = &t->cells[r * t->ncols + c];
      if (c) fputs(", ", fp);
      if (x->s) pe_report_json_string(fp, x->s);
      else json_number(fp, x->v);
    }
    fputc(']', fp);
  }
  fputs("]", fp);
}
