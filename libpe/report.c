/* Reports of a workload's runs: a table for people, CSV and JSON for
 * tools (schema in docs/RESULTS.md).  Written atomically. */
#include "internal.h"
#include "json_write.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

int pe_format_parse(const char *name) {
  if (!strcasecmp(name, "table")) return PE_FORMAT_TABLE;
  if (!strcasecmp(name, "csv")) return PE_FORMAT_CSV;
  if (!strcasecmp(name, "json")) return PE_FORMAT_JSON;
  return PE_EINVAL;
}

/* Length of the well-formed UTF-8 sequence starting at p (2..4), or 0
 * (Unicode 15, table 3-7: no overlong forms, no surrogates D800..DFFF,
 * nothing above U+10FFFF; the second byte's range depends on the first). */
static int utf8_len(const unsigned char *p) {
  int n = p[0] < 0xc2 ? 0 : p[0] < 0xe0 ? 2 : p[0] < 0xf0 ? 3 : p[0] < 0xf5 ? 4 : 0;
  unsigned lo = 0x80, hi = 0xbf;
  if (p[0] == 0xe0) lo = 0xa0;      /* overlong below U+0800 */
  else if (p[0] == 0xed) hi = 0x9f; /* surrogates */
  else if (p[0] == 0xf0) lo = 0x90; /* overlong below U+10000 */
  else if (p[0] == 0xf4) hi = 0x8f; /* above U+10FFFF */
  if (n && (p[1] < lo || p[1] > hi)) return 0;
  for (int i = 2; i < n; i++)
    if ((p[i] & 0xc0) != 0x80) return 0;
  return n;
}

void pe_report_json_string(FILE *fp, const char *s) {
  static const char plain_escapes[] = "\"\\\n\t", escaped[] = "\"\\nt";
  fputc('"', fp);
  for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
    const char *e = strchr(plain_escapes, *p);
    int n = *p >= 0x80 ? utf8_len(p) : 1;
    if (e) fprintf(fp, "\\%c", escaped[e - plain_escapes]);
    else if (*p < 0x20 || n == 0) fprintf(fp, "\\u%04x", *p);
    else fwrite(p, 1, (size_t)n, fp), p += n - 1;
  }
  fputc('"', fp);
}


/* An error column: "-" when nothing was verified (NaN). */
static const char *err_text(char buf[16], double e) {
  if (isnan(e)) return "-";
  snprintf(buf, 16, "%.2e", e);
  return buf;
}

static const char *num_or_empty(char buf[16], double v) {
  if (isnan(v)) return "";
  snprintf(buf, 16, "%.6g", v);
  return buf;
}

static const char *op_name(uint32_t op) { return op == PE_OP_ENCODE ? "encode" : "attention"; }

static void shape_line(FILE *fp, const pe_workload_info *in) {
  fprintf(fp, "B=%u Hq=%u Hkv=%u D=%u Sq=%llu Skv=%llu offset=%llu %s%s", in->batch, in->q_heads,
          in->kv_heads, in->head_dim, (unsigned long long)in->q_len, (unsigned long long)in->kv_len,
          (unsigned long long)in->position_offset, in->causal ? "causal" : "bidirectional",
          in->window ? "" : "");
  if (in->window) fprintf(fp, " window=%llu", (unsigned long long)in->window);
}

static void write_table(FILE *fp, const pe_config *cfg, const pe_workload_info *in,
                        const pe_result *const *rs, size_t n) {
  fprintf(fp, "config    %s\n", pe_config_name(cfg));
  fprintf(fp, "workload  %s: ", op_name(in->op));
  shape_line(fp, in);
  fprintf(fp, "\nscheme    %s (%s)\ninputs    %s\n", in->scheme, in->scheme_note, in->inputs);
  if (in->op == PE_OP_ATTENTION)
    fprintf(fp, "work      %.4g GFLOP per run (%llu visible query-key pairs)\n\n", in->flops * 1e-9,
            (unsigned long long)in->visible_pairs);
  else
    fprintf(fp, "work      %.4g MB moved per run\n\n", in->bytes * 1e-6);
  fprintf(fp, "%-12s %-11s %10s %10s %10s %10s %10s  %-s\n", "backend", "status", "min ms", "median ms",
          in->op == PE_OP_ATTENTION ? "GFLOP/s" : "GB/s", "max err", "rms err", "device");
  for (size_t i = 0; i < n; i++) {
    const pe_result *r = rs[i];
    if (r->status != PE_RUN_OK && !r->verified && r->time_median_ms == 0) {
      fprintf(fp, "%-12s %-11s %10s %10s %10s %10s %10s  %s\n", r->label, pe_run_status_name(r->status),
              "-", "-", "-", "-", "-", r->device.name[0] ? r->device.name : "-");
      continue;
    }
    char e1[16], e2[16];
    fprintf(fp, "%-12s %-11s %10.3f %10.3f %10.2f %10s %10s  %s\n", r->label,
            pe_run_status_name(r->status), r->time_min_ms, r->time_median_ms,
            in->op == PE_OP_ATTENTION ? r->gflops : r->gbps, err_text(e1, r->max_abs_err),
            err_text(e2, r->rms_err), r->device.name[0] ? r->device.name : "-");
  }
  fputc('\n', fp);
  for (size_t i = 0; i < n; i++) {
    const pe_result *r = rs[i];
    fprintf(fp, "%s: ", r->label);
    if (r->status == PE_RUN_OK) {
      if (r->verified)
        fprintf(fp, "verified %llu of %llu query rows per head against the float64 oracle "
                "(tolerance %.1e)", (unsigned long long)r->verified_rows,
                (unsigned long long)r->total_rows, r->tolerance);
      else
        fprintf(fp, "not verified ([run] verify = false)");
      fprintf(fp, "; prepare %.1f ms", r->prepare_ms);
      if (r->device_median_ms >= 0) fprintf(fp, "; device time %.3f ms", r->device_median_ms);
    } else {
      fprintf(fp, "%s: %s", pe_run_status_name(r->status), r->message);
    }
    if (r->device.driver[0]) fprintf(fp, "; driver %s", r->device.driver);
    if (r->device.details[0]) fprintf(fp, "; %s", r->device.details);
    fputc('\n', fp);
  }
}

void pe_report_csv_string(FILE *fp, const char *s) {
  fputc('"', fp);
  for (const char *p = s ? s : ""; *p;) {
    size_t n = strcspn(p, "\"");
    fwrite(p, 1, n, fp);
    p += n;
    if (*p) fputs("\"\"", fp), p++;
  }
  fputc('"', fp);
}

static void write_csv(FILE *fp, const pe_config *cfg, const pe_workload_info *in,
                      const pe_result *const *rs, size_t n) {
  fputs("config,scheme,op,batch,q_heads,kv_heads,head_dim,q_len,seq_len,position_offset,causal,"
        "window,backend,plugin,device,status,time_min_ms,time_median_ms,time_max_ms,"
        "device_median_ms,prepare_ms,gflops,gbps,max_abs_err,rms_err,verified_rows,total_rows,"
        "message\n", fp);
  for (size_t i = 0; i < n; i++) {
    const pe_result *r = rs[i];
    pe_report_csv_string(fp, pe_config_name(cfg));
    fprintf(fp, ",%s,%s,%u,%u,%u,%u,%llu,%llu,%llu,%u,%llu,", in->scheme, op_name(in->op), in->batch,
            in->q_heads, in->kv_heads, in->head_dim, (unsigned long long)in->q_len,
            (unsigned long long)in->kv_len, (unsigned long long)in->position_offset, in->causal,
            (unsigned long long)in->window);
    pe_report_csv_string(fp, r->label);
    fprintf(fp, ",%s,", r->backend);
    pe_report_csv_string(fp, r->device.name);
    char e1[16], e2[16]; /* a missing number is empty */
    fprintf(fp, ",%s,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%s,%s,%llu,%llu,", pe_run_status_name(r->status),
            r->time_min_ms, r->time_median_ms, r->time_max_ms, r->device_median_ms, r->prepare_ms,
            r->gflops, r->gbps, num_or_empty(e1, r->max_abs_err), num_or_empty(e2, r->rms_err),
            (unsigned long long)r->verified_rows, (unsigned long long)r->total_rows);
    pe_report_csv_string(fp, r->message);
    fputc('\n', fp);
  }
}

static void json_result(FILE *fp, const pe_result *r) {
  pe_json_kstr(fp, "    {", "backend", r->label);
  pe_json_kstr(fp, ", ", "plugin", r->backend);
  pe_json_kstr(fp, ", ", "device", r->device.name);
  pe_json_kstr(fp, ", ", "driver", r->device.driver);
  pe_json_kstr(fp, ", ", "details", r->device.details);
  pe_json_kstr(fp, ",\n     ", "status", pe_run_status_name(r->status));
  pe_json_kstr(fp, ", ", "message", r->message);
  pe_json_key(fp, ",\n     ", "time_ms");
  pe_json_knum(fp, "{", "min", r->time_min_ms);
  pe_json_knum(fp, ", ", "median", r->time_median_ms);
  pe_json_knum(fp, ", ", "max", r->time_max_ms);
  /* < 0: the backend has no device timer */
  pe_json_knum(fp, "}, ", "device_time_ms", r->device_median_ms >= 0 ? r->device_median_ms : NAN);
  pe_json_knum(fp, ", ", "prepare_ms", r->prepare_ms);
  pe_json_knum(fp, ", ", "warmup", r->warmup);
  pe_json_knum(fp, ", ", "iterations", r->iterations);
  pe_json_knum(fp, ",\n     ", "gflops", r->gflops);
  pe_json_knum(fp, ", ", "gbps", r->gbps);
  pe_json_knum(fp, ", ", "max_abs_err", r->max_abs_err);
  pe_json_knum(fp, ", ", "rms_err", r->rms_err);
  pe_json_knum(fp, ", ", "tolerance", r->tolerance);
  pe_json_kbool(fp, ", ", "verified", r->verified);
  pe_json_knum(fp, ", ", "verified_rows", (double)r->verified_rows);
  pe_json_knum(fp, ", ", "total_rows", (double)r->total_rows);
  fputc('}', fp);
}

static void json_workload(FILE *fp, const pe_workload_info *in) {
  const pe_json_work w = {
      .op = op_name(in->op), .inputs = in->inputs, .batch = in->batch,
      .q_heads = in->q_heads, .kv_heads = in->kv_heads,
      .head_dim = in->head_dim, .q_len = (double)in->q_len,
      .seq_len = (double)in->kv_len,
      .position_offset = (double)in->position_offset,
      .window = (double)in->window, .softmax_scale = in->softmax_scale,
      .flops = in->flops, .bytes = in->bytes, .causal = in->causal != 0};
  pe_json_workload(fp, &w);
}

static void write_json(FILE *fp, const pe_config *cfg, const pe_workload_info *in,
                       const pe_result *const *rs, size_t n) {
  pe_json_kstr(fp, "{\n  ", "libpe_version", pe_version_string());
  pe_json_knum(fp, ",\n  ", "abi_version", pe_abi_version());
  pe_json_kstr(fp, ",\n  ", "config", pe_config_name(cfg));
  pe_json_key(fp, ",\n  ", "workload");
  json_workload(fp, in);
  pe_json_key(fp, ",\n  ", "scheme");
  pe_json_kstr(fp, "{", "plugin", in->scheme);
  pe_json_kstr(fp, ", ", "note", in->scheme_note);
  pe_json_knum(fp, ", ", "attention_factor", in->tables->attention_factor);
  fputs("},\n  \"results\": [\n", fp);
  for (size_t i = 0; i < n; i++) {
    json_result(fp, rs[i]);
    fputs(i + 1 < n ? ",\n" : "\n", fp);
  }
  fputs("  ]\n}\n", fp);
}

/* The writer returned rc != 0: its PE_E* code, else PE_EIO. */
static int writer_failed(pe_ctx *ctx, int rc, const char *what) {
  return pe__fail(ctx, pe__is_error_code(rc) ? rc : PE_EIO, "%s (the writer failed)", what);
}

int pe_write_atomic(pe_ctx *ctx, const char *path, pe_write_fn fn, void *user) {
  if (!path) {
    int rc = fn(user, stdout);
    int flushed = fflush(stdout);
    if (rc) return writer_failed(ctx, rc, "stdout: output incomplete");
    if (flushed != 0 || ferror(stdout)) return pe__fail(ctx, PE_EIO, "write to stdout failed");
    return 0;
  }
  pe__atomic_file af;
  int rc = pe__atomic_open(ctx, path, &af);
  if (rc) return rc;
  if ((rc = fn(user, af.fp)) != 0) {
    pe__atomic_abort(&af);
    char what[4200];
    snprintf(what, sizeof what, "%.4000s: not written", path);
    return writer_failed(ctx, rc, what);
  }
  return pe__atomic_commit(ctx, &af);
}

typedef struct report_job {
  const pe_config *cfg;
  const pe_workload_info *in;
  const pe_result *const *results;
  size_t n;
  int format;
} report_job;

static int write_report(void *user, FILE *fp) {
  const report_job *j = user;
  if (j->format == PE_FORMAT_TABLE) write_table(fp, j->cfg, j->in, j->results, j->n);
  else if (j->format == PE_FORMAT_CSV) write_csv(fp, j->cfg, j->in, j->results, j->n);
  else write_json(fp, j->cfg, j->in, j->results, j->n);
  return 0;
}

int pe_report_write(pe_ctx *ctx, const pe_config *cfg, const pe_workload *w,
                    const pe_result *const *results, size_t n, int format, const char *path) {
  if (format < PE_FORMAT_TABLE || format > PE_FORMAT_JSON)
    return pe__fail(ctx, PE_EINVAL, "unknown report format %d", format);
  report_job job = {cfg, pe_workload_get_info(w), results, n, format};
  return pe_write_atomic(ctx, path, write_report, &job);
}
