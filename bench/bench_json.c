/* The JSON results document (docs/RESULTS.md).  Numbers are written with
 * the fewest digits that read back to the same double, so a document read
 * and written again (--resume, compare) is unchanged; non-finite numbers
 * are null.  Strings are quoted by pe_report_json_string (valid UTF-8). */
#include "bench.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void j_str(FILE *fp, const char *s) { pe_report_json_string(fp, s); }

static void j_num(FILE *fp, double v) {
  char buf[40];
  fputs(bench_num(buf, sizeof buf, v, "null"), fp);
}

/* `"key": ` with a leading separator. */
static void j_key(FILE *fp, const char *sep, const char *key) {
  fprintf(fp, "%s\"%s\": ", sep, key);
}

static void j_kstr(FILE *fp, const char *sep, const char *key, const char *v) {
  j_key(fp, sep, key);
  j_str(fp, v);
}

static void j_knum(FILE *fp, const char *sep, const char *key, double v) {
  j_key(fp, sep, key);
  j_num(fp, v);
}

static void j_kbool(FILE *fp, const char *sep, const char *key, bool v) {
  j_key(fp, sep, key);
  fputs(v ? "true" : "false", fp);
}

/* {"seq_len": "1024", "scheme.plugin": "rope"} from "seq_len=1024 ...". */
static void j_cell(FILE *fp, const char *cell) {
  fputc('{', fp);
  for (const char *p = cell, *sep = ""; *p; sep = ", ") {
    size_t len = strcspn(p, " "), klen = strcspn(p, "=");
    if (klen > len) klen = len;
    char *key = strndup(p, klen), *value = strndup(p + klen + (klen < len), len - klen - (klen < len));
    fputs(sep, fp);
    j_str(fp, key);
    fputs(": ", fp);
    j_str(fp, value);
    free(key);
    free(value);
    p += len + (p[len] == ' ');
  }
  fputc('}', fp);
}

static void j_work(FILE *fp, const bench_work *w) {
  j_kstr(fp, "{", "op", w->op);
  j_knum(fp, ", ", "batch", (double)w->batch);
  j_knum(fp, ", ", "q_heads", (double)w->q_heads);
  j_knum(fp, ", ", "kv_heads", (double)w->kv_heads);
  j_knum(fp, ", ", "head_dim", (double)w->head_dim);
  j_knum(fp, ", ", "q_len", (double)w->q_len);
  j_knum(fp, ", ", "seq_len", (double)w->seq_len);
  j_knum(fp, ", ", "position_offset", (double)w->position_offset);
  j_kbool(fp, ", ", "causal", w->causal);
  j_knum(fp, ", ", "window", (double)w->window);
  j_knum(fp, ", ", "softmax_scale", w->softmax_scale);
  j_knum(fp, ", ", "flops", w->flops);
  j_knum(fp, ", ", "bytes", w->bytes);
  j_kstr(fp, ", ", "inputs", w->inputs);
  fputc('}', fp);
}

static void j_scheme(FILE *fp, const bench_work *w) {
  j_kstr(fp, "{", "plugin", w->scheme);
  j_kstr(fp, ", ", "note", w->note);
  j_knum(fp, ", ", "attention_factor", w->attention_factor);
  fputc('}', fp);
}

static void j_array(FILE *fp, const double *v, size_t n) {
  fputc('[', fp);
  for (size_t i = 0; i < n; i++) {
    if (i) fputs(", ", fp);
    j_num(fp, v[i]);
  }
  fputc(']', fp);
}

static void j_strings(FILE *fp, char *const *v, size_t n) {
  fputc('[', fp);
  for (size_t i = 0; i < n; i++) {
    if (i) fputs(", ", fp);
    j_str(fp, v[i]);
  }
  fputc(']', fp);
}

static const char *device_type_name(uint32_t t) {
  static const char *const names[] = {"unknown", "cpu", "gpu", "accelerator", "other"};
  return t <= PE_DEVICE_OTHER ? names[t] : "unknown";
}

static void j_rec_extras(FILE *fp, const bench_rec *r) {
  j_key(fp, ",\n     ", "roofline");
  j_knum(fp, "{", "fraction_of_peak", r->frac_peak);
  j_knum(fp, ", ", "fraction_of_bandwidth", r->frac_bandwidth);
  j_key(fp, "}, ", "agreement");
  j_knum(fp, "{", "max_abs", r->agree_max_abs);
  j_knum(fp, ", ", "rms", r->agree_rms);
  fputc('}', fp);
  j_key(fp, ",\n     ", "workload");
  if (r->has_work) j_work(fp, &r->work);
  else fputs("null", fp);
  j_key(fp, ",\n     ", "scheme");
  if (r->has_work) j_scheme(fp, &r->work);
  else fputs("null", fp);
  if (!r->n_err) return;
  j_key(fp, ",\n     ", "error_by_position");
  j_key(fp, "{", "position");
  j_array(fp, r->err_pos, r->n_err);
  j_key(fp, ", ", "max_abs_err");
  j_array(fp, r->err_max, r->n_err);
  fputc('}', fp);
}

static void j_rec(FILE *fp, const bench_rec *r) {
  j_key(fp, "    {", "cell");
  j_cell(fp, r->cell);
  j_kstr(fp, ", ", "backend", r->backend);
  j_kstr(fp, ", ", "plugin", r->plugin);
  j_kstr(fp, ", ", "device", r->device);
  j_kstr(fp, ", ", "device_type", device_type_name(r->device_type));
  j_kstr(fp, ", ", "driver", r->driver);
  j_kstr(fp, ", ", "details", r->details);
  j_kstr(fp, ",\n     ", "status", r->status);
  j_kstr(fp, ", ", "message", r->message);
  j_key(fp, ",\n     ", "time_ms");
  j_knum(fp, "{", "min", r->t_min);
  j_knum(fp, ", ", "median", r->t_median);
  j_knum(fp, ", ", "max", r->t_max);
  j_knum(fp, "}, ", "device_time_ms", r->device_ms);
  j_knum(fp, ", ", "prepare_ms", r->prepare_ms);
  j_knum(fp, ", ", "warmup", r->warmup);
  j_knum(fp, ", ", "iterations", r->iterations);
  j_kbool(fp, ", ", "interleaved", r->interleaved);
  j_knum(fp, ",\n     ", "gflops", r->gflops);
  j_knum(fp, ", ", "gbps", r->gbps);
  j_knum(fp, ", ", "max_abs_err", r->max_abs_err);
  j_knum(fp, ", ", "rms_err", r->rms_err);
  j_knum(fp, ", ", "tolerance", r->tolerance);
  j_kbool(fp, ", ", "verified", r->verified);
  j_knum(fp, ", ", "verified_rows", (double)r->verified_rows);
  j_knum(fp, ", ", "total_rows", (double)r->total_rows);
  j_rec_extras(fp, r);
  fputc('}', fp);
}

/* Devices as the results name them, once each. */
static void j_devices(FILE *fp, const bench_doc *d) {
  fputc('[', fp);
  size_t n = 0;
  for (size_t i = 0; i < d->n_recs; i++) {
    const bench_rec *r = &d->recs[i];
    bool seen = !r->device[0];
    for (size_t j = 0; j < i && !seen; j++)
      seen = !strcmp(d->recs[j].backend, r->backend) && !strcmp(d->recs[j].device, r->device) &&
             !strcmp(d->recs[j].driver, r->driver);
    if (seen) continue;
    j_kstr(fp, n++ ? ",\n                {" : "\n                {", "backend", r->backend);
    j_kstr(fp, ", ", "device", r->device);
    j_kstr(fp, ", ", "driver", r->driver);
    fputc('}', fp);
  }
  fputc(']', fp);
}

static void j_machine(FILE *fp, const bench_doc *d) {
  const bench_machine *m = &d->machine;
  j_kstr(fp, "{", "cpu", m->cpu);
  j_knum(fp, ", ", "cores", m->cores);
  j_knum(fp, ", ", "memory_bytes", m->memory_bytes);
  j_kstr(fp, ",\n              ", "os", m->os);
  j_kstr(fp, ", ", "compiler", m->compiler);
  j_kstr(fp, ", ", "libpe_version", m->libpe_version);
  j_knum(fp, ", ", "abi_version", m->abi_version);
  j_kstr(fp, ", ", "created", m->created);
  j_key(fp, ",\n              ", "roofline");
  if (m->has_roofline) {
    j_kstr(fp, "{", "isa", m->isa);
    j_knum(fp, ", ", "threads", m->roof_threads);
    j_knum(fp, ", ", "fma_peak_gflops", m->peak_gflops);
    j_knum(fp, ", ", "copy_gbps", m->copy_gbps);
    fputc('}', fp);
  } else {
    fputs("null", fp);
  }
  j_key(fp, ",\n              ", "devices");
  j_devices(fp, d);
  j_key(fp, ",\n              ", "plugins");
  fputc('[', fp);
  for (size_t i = 0; i < m->n_plugins; i++) {
    const bench_plugin *p = &m->plugins[i];
    j_kstr(fp, i ? ",\n                {" : "\n                {", "name", p->name);
    j_kstr(fp, ", ", "kind", p->kind);
    j_kstr(fp, ", ", "version", p->version);
    j_knum(fp, ", ", "abi_version", p->abi);
    j_kstr(fp, ", ", "path", p->path);
    fputc('}', fp);
  }
  fputs("]}", fp);
}

static void j_agree(FILE *fp, const bench_agree *a) {
  j_key(fp, "    {", "cell");
  j_cell(fp, a->cell);
  j_kstr(fp, ", ", "a", a->a);
  j_kstr(fp, ", ", "b", a->b);
  j_knum(fp, ", ", "max_abs", a->max_abs);
  j_knum(fp, ", ", "rms", a->rms);
  j_knum(fp, ", ", "tolerance", a->tolerance);
  j_kbool(fp, ", ", "ok", a->ok);
  fputc('}', fp);
}

/* A single-config document also carries its workload and scheme at the
 * top, as before sweeps existed. */
static void j_single(FILE *fp, const bench_doc *d) {
  if (d->n_keys) return;
  for (size_t i = 0; i < d->n_recs; i++) {
    if (!d->recs[i].has_work) continue;
    j_key(fp, "", "workload");
    j_work(fp, &d->recs[i].work);
    j_key(fp, ",\n  ", "scheme");
    j_scheme(fp, &d->recs[i].work);
    fputs(",\n  ", fp);
    return;
  }
}

int bench_write_json(FILE *fp, const bench_doc *d) {
  j_kstr(fp, "{\n  ", "schema", BENCH_SCHEMA);
  j_kstr(fp, ",\n  ", "libpe_version", pe_version_string());
  j_knum(fp, ",\n  ", "abi_version", pe_abi_version());
  j_kstr(fp, ",\n  ", "config", d->config_name);
  j_kstr(fp, ",\n  ", "config_text", d->config_text);
  j_key(fp, ",\n  ", "machine");
  j_machine(fp, d);
  j_key(fp, ",\n  ", "overrides");
  j_strings(fp, d->sets, d->n_sets);
  j_key(fp, ",\n  ", "sweep");
  j_key(fp, "{", "keys");
  j_strings(fp, d->keys, d->n_keys);
  fputs("},\n  ", fp);
  j_single(fp, d);
  fputs("\"results\": [\n", fp);
  for (size_t i = 0; i < d->n_recs; i++) {
    j_rec(fp, &d->recs[i]);
    fputs(i + 1 < d->n_recs ? ",\n" : "\n", fp);
  }
  fputs("  ],\n  \"agreement\": [\n", fp);
  for (size_t i = 0; i < d->n_agree; i++) {
    j_agree(fp, &d->agree[i]);
    fputs(i + 1 < d->n_agree ? ",\n" : "\n", fp);
  }
  fputs("  ]\n}\n", fp);
  return ferror(fp) ? -1 : 0;
}
