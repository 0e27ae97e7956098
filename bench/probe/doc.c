/* The report document of a probe and how it is written: table (text +
 * view + text), CSV (the data table), JSON (summary + data rows); the
 * plot as SVG.  Files are written atomically (temp file + rename). */
#include "probe.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

void doc_init(probe_doc *d, const char *probe) {
  memset(d, 0, sizeof *d);
  d->probe = probe;
  d->head_fp = open_memstream(&d->head, &d->head_len);
  d->foot_fp = open_memstream(&d->foot, &d->foot_len);
}

void doc_free(probe_doc *d) {
  if (d->head_fp) fclose(d->head_fp);
  if (d->foot_fp) fclose(d->foot_fp);
  free(d->head);
  free(d->foot);
  for (size_t i = 0; i < d->n_kv; i++) free(d->kv[i].text);
  pt_free(&d->data);
  pt_free(&d->view);
  svg_free(&d->plot);
}

void doc_head(probe_doc *d, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vfprintf(d->head_fp, fmt, ap);
  va_end(ap);
}

void doc_foot(probe_doc *d, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vfprintf(d->foot_fp, fmt, ap);
  va_end(ap);
}

static char *vstrf(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));
static char *vstrf(const char *fmt, va_list ap) {
  va_list again;
  va_copy(again, ap);
  int n = vsnprintf(NULL, 0, fmt, again);
  va_end(again);
  char *s = n < 0 ? NULL : malloc((size_t)n + 1);
  if (s) vsnprintf(s, (size_t)n + 1, fmt, ap);
  return s;
}

char *probe_strf(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *s = vstrf(fmt, ap);
  va_end(ap);
  return s;
}

static probe_kv *kv_slot(probe_doc *d, const char *key) {
  if (d->n_kv == sizeof d->kv / sizeof d->kv[0]) return NULL;
  probe_kv *kv = &d->kv[d->n_kv++];
  snprintf(kv->key, sizeof kv->key, "%s", key);
  return kv;
}

void doc_num(probe_doc *d, const char *key, double v) {
  probe_kv *kv = kv_slot(d, key);
  if (kv) kv->text = NULL, kv->num = v;
}

void doc_str(probe_doc *d, const char *key, const char *fmt, ...) {
  probe_kv *kv = kv_slot(d, key);
  if (!kv) return;
  va_list ap;
  va_start(ap, fmt);
  kv->text = vstrf(fmt, ap);
  va_end(ap);
  if (!kv->text) d->n_kv--; /* out of memory: leave the key out rather than write a number */
}

/* The bytes of a buffer, for pe_write_atomic. */
typedef struct bytes {
  const char *data;
  size_t len;
} bytes;

static int write_bytes(void *user, FILE *fp) {
  const bytes *b = user;
  return fwrite(b->data, 1, b->len, fp) != b->len;
}

/* libpe's writer: devices and pipes in place, other files by temp file +
 * rename with the mode fopen would give (or the replaced file's). */
int probe_write_file(pe_ctx *ctx, const char *path, const char *data, size_t len) {
  bytes b = {data, len};
  return pe_write_atomic(ctx, path, write_bytes, &b);
}

/* Strings by libpe's pe_report_json_string: escaped, and a byte that is not
 * UTF-8 (a Latin-1 path) as that Latin-1 character, so the JSON stays valid. */
static void write_json(FILE *fp, const probe_doc *d, const probe_opts *o) {
  fputs("{\n  \"probe\": ", fp);
  pe_report_json_string(fp, d->probe);
  fputs(",\n  \"config\": ", fp);
  pe_report_json_string(fp, o->config);
  fputs(",\n  \"summary\": {", fp);
  for (size_t i = 0; i < d->n_kv; i++) {
    fputs(i ? ",\n    " : "\n    ", fp);
    pe_report_json_string(fp, d->kv[i].key);
    fputs(": ", fp);
    if (d->kv[i].text) pe_report_json_string(fp, d->kv[i].text);
    else json_number(fp, d->kv[i].num);
  }
  fputs(d->n_kv ? "\n  },\n  " : "},\n  ", fp);
  pt_json_rows(fp, &d->data);
  fputs("\n}\n", fp);
}

static void write_report(FILE *fp, const probe_doc *d, const probe_opts *o) {
  if (o->format == PE_FORMAT_CSV) {
    pt_csv(fp, &d->data);
  } else if (o->format == PE_FORMAT_JSON) {
    write_json(fp, d, o);
  } else {
    fwrite(d->head, 1, d->head_len, fp);
    const ptab *v = d->view.ncols ? &d->view : &d->data;
    if (v->nrows) pt_print(fp, v);
    fwrite(d->foot, 1, d->foot_len, fp);
  }
}

static int emit_plot(pe_ctx *ctx, const probe_doc *d, const probe_opts *o) {
  if (!d->plot.ns) return probe_fail(o, 1, "--plot: this probe has nothing to plot here");
  size_t len;
  char *svg = svg_render(&d->plot, &len);
  int rc = 0;
  if (!svg || probe_write_file(ctx, o->plot, svg, len) != 0)
    rc = probe_fail(o, 1, "--plot: %s", svg ? pe_ctx_error(ctx) : "out of memory");
  free(svg);
  return rc;
}

int doc_emit(pe_ctx *ctx, const probe_doc *d, const probe_opts *o) {
  fflush(d->head_fp);
  fflush(d->foot_fp);
  if (o->plot && emit_plot(ctx, d, o) != 0) return 1; /* before the report: all or nothing */
  char *buf = NULL;
  size_t len = 0;
  FILE *fp = open_memstream(&buf, &len);
  if (!fp) return probe_fail(o, 1, "out of memory");
  write_report(fp, d, o);
  fclose(fp);
  int rc = 0;
  if (!o->output) fwrite(buf, 1, len, stdout);
  else if (probe_write_file(ctx, o->output, buf, len) != 0)
    rc = probe_fail(o, 1, "--output: %s", pe_ctx_error(ctx));
  free(buf);
  return rc;
}
