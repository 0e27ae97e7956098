/* Shared helpers for libpe's Criterion tests (header-only, static). */
#ifndef PE_TEST_HELPERS_H
#define PE_TEST_HELPERS_H

#include <criterion/criterion.h>
#include <libpe.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static inline const char *pe_test_golden_dir(void) {
  const char *d = getenv("PE_GOLDEN_DIR");
  return d && d[0] ? d : "tests/golden";
}

static inline pe_ctx *pe_test_ctx(void) {
  pe_ctx *ctx = NULL;
  cr_assert_eq(pe_ctx_new(&ctx), 0, "pe_ctx_new failed");
  pe_ctx_set_log(ctx, NULL, NULL); /* tests check messages themselves */
  return ctx;
}

/* True when a backend reports that it has no device here: the caller skips
 * with the reason. */
static inline int pe_test_no_device(const pe_result *r) {
  return r && r->status == PE_RUN_UNSUPPORTED &&
         (strstr(r->message, "no device") || strstr(r->message, "No device"));
}

/* Run golden attention case `name` on `backend`; compare the output with
 * the case's o.npy (max abs error <= tol) and with the oracle (pe_run's
 * verification at `tol` too). */
static inline void pe_test_golden_case(const char *backend, const char *name, double tol) {
  pe_ctx *ctx = pe_test_ctx();
  char path[4096];
  snprintf(path, sizeof path, "%s/attention/%s/case.ini", pe_test_golden_dir(), name);
  pe_config *cfg;
  cr_assert_eq(pe_config_load(ctx, path, &cfg), 0, "%s", pe_ctx_error(ctx));
  char tolbuf[64];
  snprintf(tolbuf, sizeof tolbuf, "%g", tol);
  cr_assert_eq(pe_config_set(ctx, cfg, "run", "tolerance", tolbuf), 0, "%s", pe_ctx_error(ctx));
  cr_assert_eq(pe_config_set(ctx, cfg, "run", "iterations", "1"), 0);
  cr_assert_eq(pe_config_set(ctx, cfg, "run", "warmup", "0"), 0);
  pe_workload *w;
  cr_assert_eq(pe_workload_build(ctx, cfg, &w), 0, "%s", pe_ctx_error(ctx));
  pe_result *r = NULL;
  int rc = pe_run(ctx, w, cfg, backend, &r);
  cr_assert_not_null(r);
  if (pe_test_no_device(r)) cr_skip_test("%s: %s", backend, r->message);
  cr_assert_eq(rc, 0, "%s on %s: %s (%s)", name, backend, r->message, pe_ctx_error(ctx));
  snprintf(path, sizeof path, "%s/attention/%s/o.npy", pe_test_golden_dir(), name);
  pe_tensor o;
  cr_assert_eq(pe_npy_read(ctx, path, &o), 0, "%s", pe_ctx_error(ctx));
  size_t n = 1;
  for (uint32_t i = 0; i < o.ndim; i++) n *= o.shape[i];
  cr_assert_eq(n, r->output_len, "output size %zu, golden %zu", r->output_len, n);
  double worst = 0;
  for (size_t i = 0; i < n; i++) {
    double e = fabs((double)r->output[i] - (double)o.data[i]);
    if (!(e <= worst)) worst = isnan(e) ? INFINITY : e;
  }
  cr_expect_leq(worst, tol, "%s on %s: max abs error vs o.npy %.3g > %.3g", name, backend, worst, tol);
  pe_tensor_free(&o);
  pe_result_free(r);
  pe_workload_free(w);
  pe_config_free(cfg);
  pe_ctx_free(ctx);
}

/* Run an in-memory config on `backend`; it must verify against the oracle
 * within the config's tolerance.  Skips when the backend has no device. */
static inline void pe_test_oracle_text(const char *backend, const char *ini) {
  pe_ctx *ctx = pe_test_ctx();
  pe_config *cfg;
  cr_assert_eq(pe_config_parse(ctx, ini, "test.ini", NULL, &cfg), 0, "%s", pe_ctx_error(ctx));
  pe_workload *w;
  cr_assert_eq(pe_workload_build(ctx, cfg, &w), 0, "%s", pe_ctx_error(ctx));
  pe_result *r = NULL;
  int rc = pe_run(ctx, w, cfg, backend, &r);
  cr_assert_not_null(r);
  if (pe_test_no_device(r)) cr_skip_test("%s: %s", backend, r->message);
  cr_expect_eq(rc, 0, "%s: %s\nconfig:\n%s", backend, r->message, ini);
  cr_expect(r->verified, "not verified");
  pe_result_free(r);
  pe_workload_free(w);
  pe_config_free(cfg);
  pe_ctx_free(ctx);
}

#endif /* PE_TEST_HELPERS_H */
