/* A small column table: numbers and text cells, written as an aligned
 * table for people, as CSV or as JSON rows. */
#ifndef PE_PROBE_TABLE_H
#define PE_PROBE_TABLE_H

#include <stddef.h>
#include <stdio.h>

#define PT_MAX_COLS 24

typedef struct pcell {
  double v;
  char *s; /* text cell when non-NULL */
} pcell;

typedef struct ptab {
  size_t ncols, nrows, cap;
  char *cols[PT_MAX_COLS];
  char *fmt[PT_MAX_COLS];  /* view format of numbers; NULL: "%.6g" */
  pcell *cells;
  size_t fill; /* cells of the row being built */
} ptab;

/* Columns from "a,b,c"; a name may end in ":FMT" (view format, default
 * "%.6g"), e.g. "wavelength:%.1f".  The spec is the probe's own literal:
 * its formats reach snprintf, so a name from input (a scheme plugin path)
 * goes through pt_col, never into a spec. */
void pt_cols(ptab *t, const char *spec);
/* Append one column: `name` verbatim (any bytes), `fmt` a view format
 * (NULL: "%.6g"). */
void pt_col(ptab *t, const char *name, const char *fmt);
void pt_num(ptab *t, double v); /* next cell; a row ends after ncols cells */
void pt_str(ptab *t, const char *s);
void pt_free(ptab *t);
double pt_get(const ptab *t, size_t row, size_t col);

void pt_print(FILE *fp, const ptab *t);    /* aligned, for people */
void pt_csv(FILE *fp, const ptab *t);      /* header + rows, %.17g; RFC 4180 */
/* "columns": [...], "rows": [...]; text by pe_report_json_string (valid
 * UTF-8 whatever the bytes: a plugin path, a config's text) */
void pt_json_rows(FILE *fp, const ptab *t);
void json_number(FILE *fp, double v);      /* null for NaN/inf */

#endif /* PE_PROBE_TABLE_H */
