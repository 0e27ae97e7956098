/* Fuzz target: the INI config loader and its validation (pe_config_parse),
 * then, for configs that parse, the workload build with the scheme plugin
 * they name (pe_workload_build: settings, limits, scheme parameters, .npy
 * inputs, tables) and, for tiny workloads, a run on the reference backend
 * with verification against the oracle and a JSON report.
 *
 * Built two ways (tests/reliability.mk): with libFuzzer (`make fuzz`:
 * clang -fsanitize=fuzzer,address,undefined) and with tests/fuzz/replay.c
 * as a plain program that replays the seed corpus and every crash
 * regression input in `make check`.
 *
 * Cost caps, so that every input stays cheap: [run] max_memory is forced to
 * 8 MiB (the workload's own limit check refuses anything larger), a run
 * happens only below FLOPS_CAP, and every '/' of the input becomes '_' (no
 * absolute or parent paths: a config may only name plugins on the plugin
 * path and .npy files in the data directory).  Environment:
 *   PE_PLUGIN_PATH    where the scheme and backend plugins are (required)
 *   PE_FUZZ_DATA_DIR  base directory for [inputs] paths (default: the
 *                     golden case rope-decode, which has q.npy k.npy v.npy)
 *   PE_FUZZ_OUT_DIR   scratch directory for reports (default: a new one in
 *                     /dev/shm or $TMPDIR) */
#include "fuzz_common.h"

#define FLOPS_CAP 2e5

static pe_ctx *ctx;
static char out_dir[4096];
static char data_dir[4096];

static void init(void) {
  if (ctx) return;
  if (pe_ctx_new(&ctx) != 0) fuzz_die("pe_ctx_new failed");
  pe_ctx_set_log(ctx, fuzz_quiet_log, NULL);
  fuzz_scratch_dir(out_dir, sizeof out_dir);
  const char *d = getenv("PE_FUZZ_DATA_DIR");
  if (d && d[0]) snprintf(data_dir, sizeof data_dir, "%s", d);
  else snprintf(data_dir, sizeof data_dir, "%s/tests/golden/attention/rope-decode", PE_FUZZ_SRCDIR);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  init();
  return 0;
}

/* Every failure must leave a message. */
static void expect_message(int rc, const char *what) {
  if (rc != 0 && !pe_ctx_error(ctx)[0]) fuzz_die("%s failed (%s) without a message", what, pe_err_name(rc));
  if (rc > 0) fuzz_die("%s returned a positive code %d", what, rc);
}

static void run_one(const pe_config *cfg, const pe_workload *w, const char *backend) {
  pe_result *r = NULL;
  int rc = pe_run(ctx, w, cfg, backend, &r);
  if (!r) fuzz_die("pe_run(%s) stored no result (rc %d)", backend, rc);
  if (rc != 0 && !r->message[0]) fuzz_die("pe_run(%s) failed without a message", backend);
  if (rc == 0 && (r->status != PE_RUN_OK || (r->output_len && !r->output)))
    fuzz_die("pe_run(%s) returned 0 with status %u", backend, r->status);
  char path[4200];
  snprintf(path, sizeof path, "%s/report.json", out_dir);
  const pe_result *const rs[1] = {r};
  expect_message(pe_report_write(ctx, cfg, w, rs, 1, PE_FORMAT_JSON, path), "pe_report_write");
  snprintf(path, sizeof path, "%s/report.csv", out_dir);
  expect_message(pe_report_write(ctx, cfg, w, rs, 1, PE_FORMAT_CSV, path), "pe_report_write");
  pe_result_free(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  init();
  if (size > 65536) return 0;
  char *text = fuzz_cstring(data, size);
  for (char *p = text; (p = strchr(p, '/'));) *p = '_';
  pe_config *cfg = NULL;
  int rc = pe_config_parse(ctx, text, "fuzz.ini", data_dir, &cfg);
  expect_message(rc, "pe_config_parse");
  if (rc == 0) {
    /* Accessors must be consistent. */
    if (strcmp(pe_config_text(cfg), text) != 0) fuzz_die("pe_config_text differs from the input");
    for (size_t i = 0; i < pe_config_backend_count(cfg); i++)
      if (!pe_config_backend_label(cfg, i) || !pe_config_backend_plugin(cfg, i))
        fuzz_die("backend %zu has no label or plugin", i);
    rc = pe_config_set(ctx, cfg, "run", "max_memory", "8M");
    if (rc == 0) rc = pe_config_set(ctx, cfg, "run", "iterations", "1");
    if (rc == 0) rc = pe_config_set(ctx, cfg, "run", "warmup", "0");
    expect_message(rc, "pe_config_set");
    pe_workload *w = NULL;
    if (rc == 0) {
      rc = pe_workload_build(ctx, cfg, &w);
      expect_message(rc, "pe_workload_build");
      if ((rc == 0) != (w != NULL)) fuzz_die("pe_workload_build: rc %d but workload %p", rc, (void *)w);
    }
    if (w) {
      const pe_workload_info *in = pe_workload_get_info(w);
      double elems = (double)in->batch * in->q_heads * (double)in->q_len * in->head_dim;
      if (in->flops <= FLOPS_CAP && elems <= 65536) {
        size_t n = pe_config_backend_count(cfg), ran = 0;
        for (size_t i = 0; i < n && ran < 2; i++)
          if (!strcmp(pe_config_backend_plugin(cfg, i), "reference"))
            run_one(cfg, w, pe_config_backend_label(cfg, i)), ran++;
        if (!ran) run_one(cfg, w, "reference");
      }
      pe_workload_free(w);
    }
  }
  pe_config_free(cfg);
  free(text);
  return 0;
}
