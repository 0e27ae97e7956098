/* Small JSON writers shared by libpe's reports (report.c) and pe-bench's
 * results document (bench/bench_json.c).  Private: never installed; each
 * user compiles its own static copy.  Numbers are written with the fewest
 * digits (15, else 17) that read back to the same double, so a document
 * read and written again is unchanged; JSON has no NaN/Infinity, so a
 * non-finite number is null.  Strings go through pe_report_json_string
 * (escaped, valid UTF-8). */
#ifndef PE_JSON_WRITE_H
#define PE_JSON_WRITE_H

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "libpe.h"

/* The shortest round-trip digits of v into buf, or `missing` when v is not
 * finite. */
static inline const char *pe_json_digits(char *buf, size_t size, double v,
                                         const char *missing) {
  if (!isfinite(v)) return missing;
  snprintf(buf, size, "%.15g", v);
  if (strtod(buf, NULL) != v) snprintf(buf, size, "%.17g", v);
  return buf;
}

static inline void pe_json_num(FILE *fp, double v) {
  char buf[40];
  fputs(pe_json_digits(buf, sizeof buf, v, "null"), fp);
}

/* `"key": ` after the separator `sep` ("{", ", ", ",\n  ", ...). */
static inline void pe_json_key(FILE *fp, const char *sep, const char *key) {
  fprintf(fp, "%s\"%s\": ", sep, key);
}

static inline void pe_json_kstr(FILE *fp, const char *sep, const char *key,
                                const char *v) {
  pe_json_key(fp, sep, key);
  pe_report_json_string(fp, v);
}

static inline void pe_json_knum(FILE *fp, const char *sep, const char *key,
                                double v) {
  pe_json_key(fp, sep, key);
  pe_json_num(fp, v);
}

static inline void pe_json_kbool(FILE *fp, const char *sep, const char *key,
                                 bool v) {
  pe_json_key(fp, sep, key);
  fputs(v ? "true" : "false", fp);
}

/* The "workload" object, one key list for libpe's report (filled from
 * pe_workload_info) and pe-bench's results (from a record that may have
 * been read back from JSON). */
typedef struct pe_json_work {
  const char *op, *inputs;
  double batch, q_heads, kv_heads, head_dim, q_len, seq_len, position_offset,
      window, softmax_scale, flops, bytes;
  bool causal;
} pe_json_work;

static inline void pe_json_workload(FILE *fp, const pe_json_work *w) {
  pe_json_kstr(fp, "{", "op", w->op);
  pe_json_knum(fp, ", ", "batch", w->batch);
  pe_json_knum(fp, ", ", "q_heads", w->q_heads);
  pe_json_knum(fp, ", ", "kv_heads", w->kv_heads);
  pe_json_knum(fp, ", ", "head_dim", w->head_dim);
  pe_json_knum(fp, ", ", "q_len", w->q_len);
  pe_json_knum(fp, ", ", "seq_len", w->seq_len);
  pe_json_knum(fp, ", ", "position_offset", w->position_offset);
  pe_json_kbool(fp, ", ", "causal", w->causal);
  pe_json_knum(fp, ", ", "window", w->window);
  pe_json_knum(fp, ", ", "softmax_scale", w->softmax_scale);
  pe_json_knum(fp, ", ", "flops", w->flops);
  pe_json_knum(fp, ", ", "bytes", w->bytes);
  pe_json_kstr(fp, ", ", "inputs", w->inputs);
  fputc('}', fp);
}

#endif /* PE_JSON_WRITE_H */
