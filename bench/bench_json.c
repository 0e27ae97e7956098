/* The JSON results document (docs/RESULTS.md).  Numbers are written with
 * the fewest digits that read back to the same double, so a document read
 * and written again (--resume, compare) is unchanged; non-finite numbers
 * are null.  Strings are quoted by pe_report_json_string (valid UTF-8). */
#include "bench.h"
#include "json_write.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* {"seq_len": "1024", "scheme.plugin": "rope"} from "seq_len=1024 ...". */
static void j_cell(FILE *fp, const char *cell) {
  fputc('{', fp);
  for (const char *p = cell, *sep = ""; *p; sep = ", ") {
    size_t len = strcspn(p, " "), klen = strcspn(p, "=");
    if (klen > len) klen = len;
    char *key = strndup(p, klen), *value = strndup(p + klen + (klen < len), len - klen - (klen < len));
    fputs(sep, fp);
    pe_report_json_string(fp, key);
    fputs(": ", fp);
    pe_report_json_string(fp, value);
    free(key);
    free(value);
    p += len + (p[len] == ' ');
  }
  fputc('}', fp);
}

static void j_work(FILE *fp, const bench_work *w) {
  const pe_json_work j = {
      .op = w->op, .inputs = w->inputs, .batch = (double)w->batch,
      .q_heads = (double)w->q_heads, .kv_heads = (double)w->kv_heads,
      .head_dim = (double)w->head_dim, .q_len = (double)w->q_len,
      .seq_len = (double)w->seq_len,
      .position_offset = (double)w->position_offset,
      .window = (double)w->window, .softmax_scale = w->softmax_scale,
      .flops = w->flops, .bytes = w->bytes, .causal = w->causal};
  pe_json_workload(fp, &j);
}

static void j_scheme(FILE *fp, const bench_work *w) {
  pe_json_kstr(fp, "{", "plugin", w->scheme);
  pe_json_kstr(fp, ", ", "note", w->note);
  pe_json_knum(fp, ", ", "attention_factor", w->attention_factor);
  fputc('}', fp);
}

static void j_array(FILE *fp, const double *v, size_t n) {
  fputc('[', fp);
  for (size_t i = 0; i < n; i++) {
    if (i) fputs(", ", fp);
    pe_json_num(fp, v[i]);
  }
  fputc(']', fp);
}

static void j_strings(FILE *fp, char *const *v, size_t n) {
  fputc('[', fp);
  for (size_t i = 0; i < n; i++) {
    if (i) fputs(", ", fp);
    pe_report_json_string(fp, v[i]);
  }
  fputc(']', fp);
}

static const char *device_type_name(uint32_t t) {
  static const char *const names[] = {"unknown", "cpu", "gpu", "accelerator", "other"};
  return t <= PE_DEVICE_OTHER ? names[t] : "unknown";
}

static void j_rec_extras(FILE *fp, const bench_rec *r) {
  pe_json_key(fp, ",\n     ", "roofline");
  pe_json_knum(fp, "{", "fraction_of_peak", r->frac_peak);
  pe_json_knum(fp, ", ", "fraction_of_bandwidth", r->frac_bandwidth);
  pe_json_key(fp, "}, ", "agreement");
  pe_json_knum(fp, "{", "max_abs", r->agree_max_abs);
  pe_json_knum(fp, ", ", "rms", r->agree_rms);
  fputc('}', fp);
  pe_json_key(fp, ",\n     ", "workload");
  if (r->has_work) j_work(fp, &r->work);
  else fputs("null", fp);
  pe_json_key(fp, ",\n     ", "scheme");
  if (r->has_work) j_scheme(fp, &r->work);
  else fputs("null", fp);
  if (r->saved_path) {
    char hash[24];
    snprintf(hash, sizeof hash, "%016llx", (unsigned long long)r->saved_hash);
    pe_json_key(fp, ",\n     ", "saved_output");
    pe_json_kstr(fp, "{", "path", r->saved_path);
    pe_json_kstr(fp, ", ", "fnv1a64", hash);
    fputc('}', fp);
  }
  if (!r->n_err) return;
  pe_json_key(fp, ",\n     ", "error_by_position");
  pe_json_key(fp, "{", "position");
  j_array(fp, r->err_pos, r->n_err);
  pe_json_key(fp, ", ", "max_abs_err");
  j_array(fp, r->err_max, r->n_err);
  fputc('}', fp);
}

static void j_rec(FILE *fp, const bench_rec *r) {
  pe_json_key(fp, "    {", "cell");
  j_cell(fp, r->cell);
  pe_json_kstr(fp, ", ", "backend", r->backend);
  pe_json_kstr(fp, ", ", "plugin", r->plugin);
  pe_json_kstr(fp, ", ", "device", r->device);
  pe_json_kstr(fp, ", ", "device_type", device_type_name(r->device_type));
  pe_json_kstr(fp, ", ", "driver", r->driver);
  pe_json_kstr(fp, ", ", "details", r->details);
  pe_json_kstr(fp, ",\n     ", "status", r->status);
  pe_json_kstr(fp, ", ", "message", r->message);
  pe_json_key(fp, ",\n     ", "time_ms");
  pe_json_knum(fp, "{", "min", r->t_min);
  pe_json_knum(fp, ", ", "median", r->t_median);
  pe_json_knum(fp, ", ", "max", r->t_max);
  pe_json_knum(fp, "}, ", "device_time_ms", r->device_ms);
  pe_json_knum(fp, ", ", "prepare_ms", r->prepare_ms);
  pe_json_knum(fp, ", ", "warmup", r->warmup);
  pe_json_knum(fp, ", ", "iterations", r->iterations);
  pe_json_kbool(fp, ", ", "interleaved", r->interleaved);
  pe_json_knum(fp, ",\n     ", "gflops", r->gflops);
  pe_json_knum(fp, ", ", "gbps", r->gbps);
  pe_json_knum(fp, ", ", "max_abs_err", r->max_abs_err);
  pe_json_knum(fp, ", ", "rms_err", r->rms_err);
  pe_json_knum(fp, ", ", "tolerance", r->tolerance);
  pe_json_kbool(fp, ", ", "verified", r->verified);
  pe_json_knum(fp, ", ", "verified_rows", (double)r->verified_rows);
  pe_json_knum(fp, ", ", "total_rows", (double)r->total_rows);
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
    pe_json_kstr(fp, n++ ? ",\n                {" : "\n                {", "backend", r->backend);
    pe_json_kstr(fp, ", ", "device", r->device);
    pe_json_kstr(fp, ", ", "driver", r->driver);
    fputc('}', fp);
  }
  fputc(']', fp);
}

static void j_machine(FILE *fp, const bench_doc *d) {
  const bench_machine *m = &d->machine;
  pe_json_kstr(fp, "{", "cpu", m->cpu);
  pe_json_knum(fp, ", ", "cores", m->cores);
  pe_json_knum(fp, ", ", "memory_bytes", m->memory_bytes);
  pe_json_kstr(fp, ",\n              ", "os", m->os);
  pe_json_kstr(fp, ", ", "compiler", m->compiler);
  pe_json_kstr(fp, ", ", "libpe_version", m->libpe_version);
  pe_json_knum(fp, ", ", "abi_version", m->abi_version);
  pe_json_kstr(fp, ", ", "created", m->created);
  pe_json_key(fp, ",\n              ", "roofline");
  if (m->has_roofline) {
    pe_json_kstr(fp, "{", "isa", m->isa);
    pe_json_knum(fp, ", ", "threads", m->roof_threads);
    pe_json_knum(fp, ", ", "fma_peak_gflops", m->peak_gflops);
    pe_json_knum(fp, ", ", "copy_gbps", m->copy_gbps);
    fputc('}', fp);
  } else {
    fputs("null", fp);
  }
  pe_json_key(fp, ",\n              ", "devices");
  j_devices(fp, d);
  pe_json_key(fp, ",\n              ", "plugins");
  fputc('[', fp);
  for (size_t i = 0; i < m->n_plugins; i++) {
    const bench_plugin *p = &m->plugins[i];
    pe_json_kstr(fp, i ? ",\n                {" : "\n                {", "name", p->name);
    pe_json_kstr(fp, ", ", "kind", p->kind);
    pe_json_kstr(fp, ", ", "version", p->version);
    pe_json_knum(fp, ", ", "abi_version", p->abi);
    pe_json_kstr(fp, ", ", "path", p->path);
    fputc('}', fp);
  }
  fputs("]}", fp);
}

static void j_agree(FILE *fp, const bench_agree *a) {
  pe_json_key(fp, "    {", "cell");
  j_cell(fp, a->cell);
  pe_json_kstr(fp, ", ", "a", a->a);
  pe_json_kstr(fp, ", ", "b", a->b);
  pe_json_knum(fp, ", ", "max_abs", a->max_abs);
  pe_json_knum(fp, ", ", "rms", a->rms);
  pe_json_knum(fp, ", ", "tolerance", a->tolerance);
  pe_json_kbool(fp, ", ", "ok", a->ok);
  fputc('}', fp);
}

static void j_gap(FILE *fp, const bench_gap *g) {
  pe_json_key(fp, "    {", "cell");
  j_cell(fp, g->cell);
  pe_json_kstr(fp, ", ", "a", g->a);
  pe_json_kstr(fp, ", ", "b", g->b);
  pe_json_kstr(fp, ", ", "why", g->why);
  fputc('}', fp);
}

/* A single-config document also carries its workload and scheme at the
 * top, as before sweeps existed. */
static void j_single(FILE *fp, const bench_doc *d) {
  if (d->n_keys) return;
  for (size_t i = 0; i < d->n_recs; i++) {
    if (!d->recs[i].has_work) continue;
    pe_json_key(fp, "", "workload");
    j_work(fp, &d->recs[i].work);
    pe_json_key(fp, ",\n  ", "scheme");
    j_scheme(fp, &d->recs[i].work);
    fputs(",\n  ", fp);
    return;
  }
}

int bench_write_json(FILE *fp, const bench_doc *d) {
  pe_json_kstr(fp, "{\n  ", "schema", BENCH_SCHEMA);
  pe_json_kstr(fp, ",\n  ", "libpe_version", pe_version_string());
  pe_json_knum(fp, ",\n  ", "abi_version", pe_abi_version());
  pe_json_kstr(fp, ",\n  ", "config", d->config_name);
  pe_json_kstr(fp, ",\n  ", "config_text", d->config_text);
  pe_json_key(fp, ",\n  ", "machine");
  j_machine(fp, d);
  pe_json_key(fp, ",\n  ", "overrides");
  j_strings(fp, d->sets, d->n_sets);
  pe_json_key(fp, ",\n  ", "sweep");
  pe_json_key(fp, "{", "keys");
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
  fputs("  ],\n  \"not_compared\": [\n", fp);
  for (size_t i = 0; i < d->n_gaps; i++) {
    j_gap(fp, &d->gaps[i]);
    fputs(i + 1 < d->n_gaps ? ",\n" : "\n", fp);
  }
  fputs("  ]\n}\n", fp);
  return ferror(fp) ? -1 : 0;
}
