/* Scheme plugins: golden tables, validation errors, length switches.
 *
 * Everything goes through the public API (pe_config_parse/_load,
 * pe_workload_build, pe_workload_get_info()->tables), so these tests cover
 * the host's parameter handling and the plugins together.
 *
 * Environment (set by the test harness):
 *   PE_GOLDEN_DIR    golden data root (default "tests/golden")
 *   PE_PLUGIN_PATH   where the built scheme modules are (when unset, the
 *                    build tree's plugins/.libs is tried)
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include <dirent.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "libpe.h"

#define REL_TOL 1e-12

/* ---- helpers ------------------------------------------------------------ */

/* Warnings the plugins log through the host, captured per test. */
static char g_log[8192];

static void capture_log(void *user, int level, const char *origin,
                        const char *message) {
  size_t n = strlen(g_log);
  (void)user;
  snprintf(g_log + n, sizeof g_log - n, "%d %s: %s\n", level,
           origin ? origin : "?", message);
}

static pe_ctx *new_ctx(void) {
  pe_ctx *ctx = pe_test_ctx();
  if (!getenv("PE_PLUGIN_PATH"))
    pe_ctx_prepend_plugin_path(ctx, "plugins/.libs:plugins");
  g_log[0] = '\0';
  pe_ctx_set_log(ctx, capture_log, NULL);
  return ctx;
}

/* Build a workload from config text; returns the status code. */
static int build_text(pe_ctx *ctx, const char *text, pe_config **cfg,
                      pe_workload **w) {
  int rc = pe_config_parse(ctx, text, "test.ini", NULL, cfg);
  *w = NULL;
  if (rc != 0) return rc;
  return pe_workload_build_tables(ctx, *cfg, w);
}

static double rel_err(double got, double want) {
  if (want == 0.0) return fabs(got);
  return fabs(got - want) / fabs(want);
}

/* Expect config `text` to fail with `code` and a message containing every
 * one of the NULL-terminated strings that follow. */
static void expect_error(const char *text, int code, ...) {
  pe_ctx *ctx = new_ctx();
  pe_config *cfg = NULL;
  pe_workload *w = NULL;
  int rc = build_text(ctx, text, &cfg, &w);
  const char *msg = pe_ctx_error(ctx);
  va_list ap;

  cr_expect_eq(rc, code, "expected %s, got %s (%d): %s", pe_err_name(code),
               pe_err_name(rc), rc, msg ? msg : "(no message)");
  va_start(ap, code);
  for (const char *want = va_arg(ap, const char *); want;
       want = va_arg(ap, const char *))
    cr_expect(msg && strstr(msg, want), "message lacks \"%s\": %s", want,
              msg ? msg : "(no message)");
  va_end(ap);
  pe_workload_free(w);
  pe_config_free(cfg);
  pe_ctx_free(ctx);
}

/* The tables of a config that must build; the caller frees via done(). */
typedef struct built {
  pe_ctx *ctx;
  pe_config *cfg;
  pe_workload *w;
  const pe_workload_info *info;
  const pe_scheme_tables *t;
} built;

static built build_ok(const char *text) {
  built b = {new_ctx(), NULL, NULL, NULL, NULL};
  int rc = build_text(b.ctx, text, &b.cfg, &b.w);
  cr_assert_eq(rc, 0, "build failed: %s (%d): %s", pe_err_name(rc), rc,
               pe_ctx_error(b.ctx));
  b.info = pe_workload_get_info(b.w);
  cr_assert_not_null(b.info);
  b.t = b.info->tables;
  cr_assert_not_null(b.t);
  return b;
}

static void done(built *b) {
  pe_workload_free(b->w);
  pe_config_free(b->cfg);
  pe_ctx_free(b->ctx);
}

/* A minimal workload section; head_dim, seq_len, offset, heads vary. */
#define WORKLOAD(d, seq, off, heads)                                           \
  "[workload]\nbatch = 1\nq_heads = " #heads "\nkv_heads = " #heads            \
  "\nhead_dim = " #d "\nq_len = 1\nseq_len = " #seq                            \
  "\nposition_offset = " #off "\n[run]\nverify = false\n"

/* ---- golden scheme cases ------------------------------------------------ */

typedef struct golden_case {
  char name[128]; /* file stem, e.g. "yarn-d128-f16-4k" */
} golden_case;

static int cmp_case(const void *a, const void *b) {
  return strcmp(((const golden_case *)a)->name, ((const golden_case *)b)->name);
}

/* Every <case>.ini under PE_GOLDEN_DIR/schemes, sorted; *n gets the count. */
static golden_case *list_golden(size_t *n, int shared) {
  char dir[4096];
  DIR *dp;
  struct dirent *de;
  size_t cap = 256, len = 0;
  golden_case *v =
      shared ? cr_malloc(cap * sizeof *v) : malloc(cap * sizeof *v);

  *n = 0;
  if (!v) return NULL;
  snprintf(dir, sizeof dir, "%s/schemes", pe_test_golden_dir());
  if (!(dp = opendir(dir))) return v;
  while ((de = readdir(dp)) != NULL) {
    size_t l = strlen(de->d_name);
    if (l < 5 || strcmp(de->d_name + l - 4, ".ini") || l - 4 >= 128 ||
        len == cap)
      continue;
    memset(&v[len], 0, sizeof v[len]);
    memcpy(v[len].name, de->d_name, l - 4);
    len++;
  }
  closedir(dp);
  qsort(v, len, sizeof *v, cmp_case);
  *n = len;
  return v;
}

static void free_cases(struct criterion_test_params *p) { cr_free(p->params); }

ParameterizedTestParameters(golden, scheme) {
  size_t n;
  golden_case *v = list_golden(&n, 1);
  return cr_make_param_array(golden_case, v, n, free_cases);
}

/* Every case: attention_factor and each inv_freq[j] within 1e-12 relative
 * of the independently computed .expected table, and exactly R/2 of them. */
ParameterizedTest(golden_case *gc, golden, scheme) {
  char ini[4096], expected[4096];
  pe_ctx *ctx = new_ctx();
  pe_config *cfg = NULL;
  pe_workload *w = NULL;
  const pe_scheme_tables *t;
  FILE *f;
  double want_af, x;
  uint32_t n = 0;
  int rc;

  snprintf(ini, sizeof ini, "%s/schemes/%s.ini", pe_test_golden_dir(),
           gc->name);
  snprintf(expected, sizeof expected, "%s/schemes/%s.expected",
           pe_test_golden_dir(), gc->name);
  rc = pe_config_load(ctx, ini, &cfg);
  cr_assert_eq(rc, 0, "%s: %s", ini, pe_ctx_error(ctx));
  rc = pe_workload_build_tables(ctx, cfg, &w);
  cr_assert_eq(rc, 0, "%s: %s", ini, pe_ctx_error(ctx));
  t = pe_workload_get_info(w)->tables;
  cr_assert_not_null(t);
  cr_assert_eq(t->kind, PE_KIND_ROTARY, "%s: kind %u", gc->name, t->kind);

  f = fopen(expected, "r");
  cr_assert_not_null(f, "cannot open %s", expected);
  cr_assert_eq(fscanf(f, " attention_factor %lf", &want_af), 1,
               "%s: bad first line", expected);
  cr_expect_leq(rel_err(t->attention_factor, want_af), REL_TOL,
                "%s: attention_factor %.17g, expected %.17g", gc->name,
                t->attention_factor, want_af);
  while (fscanf(f, "%lf", &x) == 1) {
    if (n < t->rotary_dim / 2)
      cr_expect_leq(rel_err(t->inv_freq[n], x), REL_TOL,
                    "%s: inv_freq[%u] = %.17g, expected %.17g", gc->name, n,
                    t->inv_freq[n], x);
    n++;
  }
  fclose(f);
  cr_expect_eq(n, t->rotary_dim / 2, "%s: %u expected values, R/2 = %u",
               gc->name, n, t->rotary_dim / 2);
  pe_workload_free(w);
  pe_config_free(cfg);
  pe_ctx_free(ctx);
}

/* The parameterized test above is silently empty when the directory is
 * missing: make that a failure, and insist on every case's .expected. */
Test(golden, scheme_cases_present) {
  size_t n;
  golden_case *v = list_golden(&n, 0);
  cr_assert_not_null(v);
  cr_expect_geq(n, 13, "only %zu golden scheme cases under %s/schemes", n,
                pe_test_golden_dir());
  for (size_t i = 0; i < n; i++) {
    char p[4096];
    FILE *f;
    snprintf(p, sizeof p, "%s/schemes/%s.expected", pe_test_golden_dir(),
             v[i].name);
    f = fopen(p, "r");
    cr_expect_not_null(f, "missing %s", p);
    if (f) fclose(f);
  }
  free(v);
}

/* ---- descriptors -------------------------------------------------------- */

static const char *const k_schemes[] = {
    "none",   "rope",     "pi",         "ntk",   "dynamic-ntk", "yarn",
    "llama3", "longrope", "sinusoidal", "alibi", NULL};

/* Parameter names NUMERICS.md allows. */
static int known_param(const char *name) {
  static const char *const names[] = {"base",
                                      "factor",
                                      "original_max_position_embeddings",
                                      "max_position_embeddings",
                                      "beta_fast",
                                      "beta_slow",
                                      "mscale",
                                      "mscale_all_dim",
                                      "attention_factor",
                                      "truncate",
                                      "low_freq_factor",
                                      "high_freq_factor",
                                      "short_factor",
                                      "long_factor",
                                      "rotary_dim",
                                      "pairing",
                                      "max_bias",
                                      NULL};
  for (size_t i = 0; names[i]; i++)
    if (!strcmp(names[i], name)) return 1;
  return 0;
}

static const pe_param_decl *find_param(const pe_param_decl *const *ps,
                                       const char *name) {
  for (size_t i = 0; ps && ps[i]; i++)
    if (!strcmp(ps[i]->name, name)) return ps[i];
  return NULL;
}

Test(descriptors, every_scheme_declares_itself) {
  pe_ctx *ctx = new_ctx();
  for (size_t i = 0; k_schemes[i]; i++) {
    const pe_plugin *p = NULL;
    const pe_plugin_desc *d;
    const pe_param_decl *const *ps;
    int rc = pe_plugin_load(ctx, k_schemes[i], PE_PLUGIN_SCHEME, &p);
    cr_assert_eq(rc, 0, "%s: %s", k_schemes[i], pe_ctx_error(ctx));
    d = pe_plugin_descriptor(p);
    cr_assert_str_eq(d->name, k_schemes[i]);
    cr_expect_eq(d->kind, PE_PLUGIN_SCHEME);
    cr_expect_eq(d->abi_version, PE_ABI_VERSION);
    cr_expect(d->version && *d->version, "%s: no version", d->name);
    cr_expect(d->summary && *d->summary, "%s: no summary", d->name);
    cr_assert_not_null(d->scheme);
    cr_expect_not_null(d->scheme->compute);
    ps = pe_plugin_params(p);
    cr_assert_not_null(ps);
    for (size_t j = 0; ps[j]; j++) {
      cr_expect(known_param(ps[j]->name), "%s: parameter %s not in NUMERICS.md",
                d->name, ps[j]->name);
      cr_expect(ps[j]->doc && *ps[j]->doc, "%s.%s: no doc", d->name,
                ps[j]->name);
    }
    /* RoPE family: base, rotary_dim (optional, no default), pairing. */
    if (strcmp(d->name, "none") && strcmp(d->name, "sinusoidal") &&
        strcmp(d->name, "alibi")) {
      const pe_param_decl *rd = find_param(ps, "rotary_dim");
      cr_expect_not_null(find_param(ps, "base"), "%s: no base", d->name);
      cr_expect_not_null(find_param(ps, "pairing"), "%s: no pairing", d->name);
      cr_assert_not_null(rd, "%s: no rotary_dim", d->name);
      cr_expect_null(rd->default_value, "%s: rotary_dim has a default",
                     d->name);
      cr_expect_eq(rd->flags & PE_PARAM_REQUIRED, 0u, "%s: rotary_dim required",
                   d->name);
    }
  }
  pe_ctx_free(ctx);
}

/* ---- tables of the schemes without golden scheme cases ------------------ */

Test(tables, none_is_identity) {
  built b = build_ok(WORKLOAD(8, 4, 0, 2) "[scheme]\nplugin = none\n");
  cr_expect_eq(b.t->kind, PE_KIND_NONE);
  done(&b);
}

Test(tables, sinusoidal_frequencies) {
  built b = build_ok(
      WORKLOAD(16, 4, 0, 1) "[scheme]\nplugin = sinusoidal\nbase = 10000\n");
  cr_expect_eq(b.t->kind, PE_KIND_ADDITIVE);
  for (uint32_t j = 0; j < 8; j++)
    cr_expect_leq(rel_err(b.t->inv_freq[j], pow(10000.0, -2.0 * j / 16.0)),
                  REL_TOL, "f_%u = %.17g", j, b.t->inv_freq[j]);
  done(&b);
}

/* Press et al.'s get_slopes(): powers of two, and 12 heads = 8 + 4 odd
 * positions of the 16-head set. */
Test(tables, alibi_slopes) {
  static const double want12[12] = {0.5,
                                    0.25,
                                    0.125,
                                    0.0625,
                                    0.03125,
                                    0.015625,
                                    0.0078125,
                                    0.00390625,
                                    0.70710678118654752,
                                    0.35355339059327376,
                                    0.17677669529663688,
                                    0.088388347648318440};
  built b = build_ok(WORKLOAD(8, 4, 0, 12) "[scheme]\nplugin = alibi\n");
  cr_expect_eq(b.t->kind, PE_KIND_BIAS);
  for (uint32_t h = 0; h < 12; h++)
    cr_expect_leq(rel_err(b.t->slopes[h], want12[h]), REL_TOL,
                  "slope[%u] = %.17g, expected %.17g", h, b.t->slopes[h],
                  want12[h]);
  done(&b);

  b = build_ok(WORKLOAD(8, 4, 0, 4) "[scheme]\nplugin = alibi\nmax_bias = 4\n");
  for (uint32_t h = 0; h < 4; h++)
    cr_expect_leq(rel_err(b.t->slopes[h], pow(2.0, -4.0 * (h + 1) / 4.0)),
                  REL_TOL, "slope[%u] = %.17g", h, b.t->slopes[h]);
  done(&b);
}

Test(tables, rope_interleaved_pairing) {
  built b = build_ok(
      WORKLOAD(8, 4, 0, 1) "[scheme]\nplugin = rope\npairing = interleaved\n");
  cr_expect_eq(b.t->pairing, PE_PAIRING_INTERLEAVED);
  cr_expect_eq(b.t->rotary_dim, 8u);
  done(&b);
  b = build_ok(WORKLOAD(8, 4, 0, 1) "[scheme]\nplugin = rope\n");
  cr_expect_eq(b.t->pairing, PE_PAIRING_NEOX);
  done(&b);
}

/* ---- length switches: exactly at L > Lo --------------------------------- */

/* dynamic-ntk, Lo = 16, s = 4, R = 16: plain RoPE at L <= 16, NTK base
 * change with k = s L / Lo - (s - 1) from L = 17 on. */
static void check_dynntk(const char *text, uint64_t l) {
  built b = build_ok(text);
  double base = 10000.0;
  cr_assert_eq(b.t->rotary_dim, 16u);
  if (l > 16) base *= pow(4.0 * (double)l / 16.0 - 3.0, 16.0 / 14.0);
  for (uint32_t j = 0; j < 8; j++)
    cr_expect_leq(rel_err(b.t->inv_freq[j], pow(base, -2.0 * j / 16.0)),
                  REL_TOL, "L=%llu inv_freq[%u] = %.17g", (unsigned long long)l,
                  j, b.t->inv_freq[j]);
  cr_expect(strstr(b.info->scheme_note, l > 16 ? "> Lo" : "<= Lo"),
            "L=%llu note: %s", (unsigned long long)l, b.info->scheme_note);
  done(&b);
}

#define DYNNTK                                                                 \
  "[scheme]\nplugin = dynamic-ntk\nbase = 10000\nfactor = 4\n"                 \
  "original_max_position_embeddings = 16\n"

Test(switch, dynamic_ntk_at_lo) {
  check_dynntk(WORKLOAD(16, 16, 0, 1) DYNNTK, 16);
  check_dynntk(WORKLOAD(16, 17, 0, 1) DYNNTK, 17);
  /* L counts the offset: L = position_offset + seq_len. */
  check_dynntk(WORKLOAD(16, 8, 8, 1) DYNNTK, 16);
  check_dynntk(WORKLOAD(16, 8, 9, 1) DYNNTK, 17);
}

Test(switch, dynamic_ntk_at_lo_matches_rope) {
  built a = build_ok(WORKLOAD(16, 16, 0, 1) DYNNTK);
  built r = build_ok(WORKLOAD(16, 16, 0, 1) "[scheme]\nplugin = rope\n");
  for (uint32_t j = 0; j < 8; j++)
    cr_expect_eq(a.t->inv_freq[j], r.t->inv_freq[j], "inv_freq[%u]", j);
  done(&a);
  done(&r);
}

#define LONGROPE                                                               \
  "[scheme]\nplugin = longrope\nbase = 10000\n"                                \
  "original_max_position_embeddings = 16\nmax_position_embeddings = 64\n"      \
  "short_factor = 1.0 1.25 1.5 2.0\nlong_factor = 2 3 5\n  7\n"

/* longrope, Lo = 16, R = 8: short_factor at L <= 16, long_factor from 17;
 * the attention factor sqrt(1 + ln 4 / ln 16) = sqrt(1.5) at both. */
static void check_longrope(const char *text, uint64_t l) {
  static const double sf[4] = {1.0, 1.25, 1.5, 2.0}, lf[4] = {2, 3, 5, 7};
  built b = build_ok(text);
  const double *f = l > 16 ? lf : sf;
  cr_assert_eq(b.t->rotary_dim, 8u);
  for (uint32_t j = 0; j < 4; j++)
    cr_expect_leq(rel_err(b.t->inv_freq[j], pow(1e4, -2.0 * j / 8.0) / f[j]),
                  REL_TOL, "L=%llu inv_freq[%u] = %.17g", (unsigned long long)l,
                  j, b.t->inv_freq[j]);
  cr_expect_leq(rel_err(b.t->attention_factor, sqrt(1.5)), REL_TOL,
                "attention_factor %.17g", b.t->attention_factor);
  cr_expect(
      strstr(b.info->scheme_note, l > 16 ? "long_factor" : "short_factor"),
      "L=%llu note: %s", (unsigned long long)l, b.info->scheme_note);
  done(&b);
}

Test(switch, longrope_at_lo) {
  check_longrope(WORKLOAD(8, 16, 0, 1) LONGROPE, 16);
  check_longrope(WORKLOAD(8, 17, 0, 1) LONGROPE, 17);
  check_longrope(WORKLOAD(8, 4, 12, 1) LONGROPE, 16);
  check_longrope(WORKLOAD(8, 4, 13, 1) LONGROPE, 17);
}

/* ---- validation: one test per error ------------------------------------- */

Test(validate, rotary_dim_odd) {
  expect_error(
      WORKLOAD(64, 8, 0, 1) "[scheme]\nplugin = rope\nrotary_dim = 63\n",
      PE_ESCHEME, "rotary_dim = 63", "even", NULL);
}

Test(validate, rotary_dim_above_head_dim) {
  expect_error(
      WORKLOAD(64, 8, 0,
               1) "[scheme]\nplugin = yarn\nfactor = 4\n"
                  "original_max_position_embeddings = 4096\nrotary_dim = 128\n",
      PE_ESCHEME, "rotary_dim = 128", "head_dim = 64", NULL);
}

Test(validate, head_dim_odd_without_rotary_dim) {
  expect_error(WORKLOAD(63, 8, 0, 1) "[scheme]\nplugin = pi\nfactor = 2\n",
               PE_ESCHEME, "head_dim = 63", "rotary_dim", NULL);
}

Test(validate, rotary_dim_below_minimum) {
  expect_error(
      WORKLOAD(64, 8, 0, 1) "[scheme]\nplugin = rope\nrotary_dim = 0\n",
      PE_ECONFIG, "rotary_dim", NULL);
}

Test(validate, ntk_rotary_dim_two) {
  expect_error(WORKLOAD(64, 8, 0, 1) "[scheme]\nplugin = ntk\nfactor = 2\n"
                                     "rotary_dim = 2\n",
               PE_ESCHEME, "rotary_dim = 2", "R >= 4", NULL);
}

Test(validate, factor_below_one) {
  static const char *const heads[] = {
      "[scheme]\nplugin = pi\nfactor = 0.5\n",
      "[scheme]\nplugin = ntk\nfactor = 0.5\n",
      "[scheme]\nplugin = dynamic-ntk\nfactor = 0.5\n"
      "original_max_position_embeddings = 16\n",
      "[scheme]\nplugin = yarn\nfactor = 0.5\n"
      "original_max_position_embeddings = 16\n",
      "[scheme]\nplugin = llama3\nfactor = 0.5\n",
      NULL};
  for (size_t i = 0; heads[i]; i++) {
    char text[1024];
    snprintf(text, sizeof text, "%s%s", WORKLOAD(16, 8, 0, 1), heads[i]);
    expect_error(text, PE_ECONFIG, "factor", "0.5", NULL);
  }
}

Test(validate, factor_missing) {
  expect_error(WORKLOAD(16, 8, 0, 1) "[scheme]\nplugin = ntk\n", PE_ECONFIG,
               "factor", NULL);
}

Test(validate, beta_fast_below_beta_slow_warns) {
  built b =
      build_ok(WORKLOAD(16, 8, 0, 1) "[scheme]\nplugin = yarn\nfactor = 4\n"
                                     "original_max_position_embeddings = 64\n"
                                     "beta_fast = 1\nbeta_slow = 32\n");
  cr_expect(strstr(g_log, "beta_fast") && strstr(g_log, "beta_slow"),
            "no warning logged: %s", g_log);
  cr_expect_eq(b.t->kind, PE_KIND_ROTARY);
  done(&b);
}

Test(validate, mscale_without_mscale_all_dim_warns) {
  built b = build_ok(WORKLOAD(
      16, 8, 0, 1) "[scheme]\nplugin = yarn\nfactor = 4\n"
                   "original_max_position_embeddings = 64\nmscale = 0.7\n");
  cr_expect(strstr(g_log, "mscale_all_dim"), "no warning logged: %s", g_log);
  cr_expect_leq(rel_err(b.t->attention_factor, 0.1 * log(4.0) + 1.0), REL_TOL,
                "attention_factor %.17g", b.t->attention_factor);
  done(&b);
}

Test(validate, short_factor_wrong_length) {
  expect_error(
      WORKLOAD(8, 8, 0, 1) "[scheme]\nplugin = longrope\n"
                           "original_max_position_embeddings = 16\nfactor = 4\n"
                           "short_factor = 1 1 1\nlong_factor = 1 2 3 4\n",
      PE_ESCHEME, "short_factor", "expected R/2 = 4", "has 3", NULL);
}

Test(validate, long_factor_wrong_length) {
  expect_error(
      WORKLOAD(8, 8, 0, 1) "[scheme]\nplugin = longrope\n"
                           "original_max_position_embeddings = 16\nfactor = 4\n"
                           "short_factor = 1 1 1 1\nlong_factor = 1 2 3 4 5\n",
      PE_ESCHEME, "long_factor", "expected R/2 = 4", "has 5", NULL);
}

Test(validate, longrope_factor_list_element_not_positive) {
  expect_error(
      WORKLOAD(8, 8, 0, 1) "[scheme]\nplugin = longrope\n"
                           "original_max_position_embeddings = 16\nfactor = 4\n"
                           "short_factor = 1 0 1 1\nlong_factor = 1 2 3 4\n",
      PE_ECONFIG, "short_factor", NULL);
}

Test(validate, longrope_needs_factor_or_max_position_embeddings) {
  expect_error(
      WORKLOAD(8, 8, 0, 1) "[scheme]\nplugin = longrope\n"
                           "original_max_position_embeddings = 16\n"
                           "short_factor = 1 1 1 1\nlong_factor = 1 2 3 4\n",
      PE_ESCHEME, "factor", "max_position_embeddings", NULL);
}

Test(validate, high_freq_factor_not_above_low) {
  expect_error(
      WORKLOAD(16, 8, 0, 1) "[scheme]\nplugin = llama3\nlow_freq_factor = 4\n"
                            "high_freq_factor = 4\n",
      PE_ESCHEME, "high_freq_factor = 4", "low_freq_factor = 4", NULL);
}

Test(validate, original_max_position_embeddings_missing) {
  static const char *const heads[] = {
      "[scheme]\nplugin = yarn\nfactor = 4\n",
      "[scheme]\nplugin = dynamic-ntk\nfactor = 4\n",
      "[scheme]\nplugin = longrope\nfactor = 4\nshort_factor = 1 1 1 1 1 1 1 "
      "1\n"
      "long_factor = 1 1 1 1 1 1 1 1\n",
      NULL};
  for (size_t i = 0; heads[i]; i++) {
    char text[1024];
    snprintf(text, sizeof text, "%s%s", WORKLOAD(16, 8, 0, 1), heads[i]);
    expect_error(text, PE_ECONFIG, "original_max_position_embeddings", NULL);
  }
}

Test(validate, sinusoidal_odd_head_dim) {
  expect_error(WORKLOAD(7, 8, 0, 1) "[scheme]\nplugin = sinusoidal\n",
               PE_ESCHEME, "head_dim = 7", "even", NULL);
}

Test(validate, alibi_max_bias_not_positive) {
  expect_error(WORKLOAD(8, 8, 0, 4) "[scheme]\nplugin = alibi\nmax_bias = 0\n",
               PE_ECONFIG, "max_bias", NULL);
}

Test(validate, base_not_above_one) {
  expect_error(WORKLOAD(8, 8, 0, 1) "[scheme]\nplugin = rope\nbase = 1\n",
               PE_ECONFIG, "base", NULL);
}

Test(validate, pairing_unknown) {
  expect_error(WORKLOAD(8, 8, 0, 1) "[scheme]\nplugin = rope\npairing = gptj\n",
               PE_ECONFIG, "pairing", "neox|interleaved", NULL);
}

Test(validate, key_of_another_scheme) {
  expect_error(WORKLOAD(8, 8, 0, 1) "[scheme]\nplugin = rope\nfactor = 4\n",
               PE_ECONFIG, "factor", NULL);
}

/* ---- the host's checks of what a scheme returns ------------------------- */

/* A config running tests/.libs/hostile_scheme.so with misbehave = `how`. */
static const char *hostile(const char *workload, const char *how) {
  static char text[8192];
  const char *b = getenv("PE_TEST_BUILDDIR");
  snprintf(text, sizeof text, "%s[scheme]\nplugin = %s/tests/.libs/hostile_scheme.so\nmisbehave = %s\n",
           workload, b ? b : ".", how);
  return text;
}

Test(contract, plain_hostile_scheme_builds) {
  built b = build_ok(hostile(WORKLOAD(8, 8, 0, 2), "none"));
  cr_expect_eq(b.t->kind, PE_KIND_ROTARY);
  done(&b);
}

Test(contract, compute_returns_code_outside_the_table) {
  expect_error(hostile(WORKLOAD(8, 8, 0, 2), "return_999"), PE_ESCHEME,
               "[scheme] hostile_scheme: the plugin returned -999, which is not a libpe error code "
               "(contract violation): hostile: -999 on purpose", NULL);
  expect_error(hostile(WORKLOAD(8, 8, 0, 2), "return_5"), PE_ESCHEME,
               "the plugin returned 5, which is not a libpe error code (contract violation)", NULL);
}

/* A scheme that never sets out->kind is refused, not run as "none". */
Test(contract, kind_not_set) {
  expect_error(hostile(WORKLOAD(8, 8, 0, 2), "no_kind"), PE_ESCHEME,
               "scheme hostile_scheme did not set its encoding kind", NULL);
}

/* Every table backends receive is checked, after rounding to float32,
 * and a bad one blamed on the scheme, naming the entry. */
Test(contract, tables_not_finite) {
  expect_error(hostile(WORKLOAD(8, 8, 0, 2), "inv_freq_nan"), PE_ESCHEME,
               "scheme hostile_scheme: inv_freq[3] = nan: not finite", NULL);
  expect_error(hostile(WORKLOAD(8, 8, 0, 2), "slope_nan"), PE_ESCHEME,
               "scheme hostile_scheme: slopes[0] = nan: not finite", NULL);
  expect_error(hostile(WORKLOAD(8, 8, 0, 2), "slope_inf"), PE_ESCHEME,
               "scheme hostile_scheme: slopes[0] = inf: not finite", NULL);
}

Test(contract, tables_not_finite_in_float32) {
  expect_error(hostile(WORKLOAD(8, 8, 0, 2), "slope_float_inf"), PE_ESCHEME,
               "slopes[0] = 1e+300: not finite once rounded to float32", NULL);
  expect_error(hostile(WORKLOAD(8, 8, 0, 2), "factor_float_inf"), PE_ESCHEME,
               "attention_factor = 1e+300: not finite once rounded to float32", NULL);
  expect_error(hostile(WORKLOAD(8, 8, 0, 2), "factor_float_zero"), PE_ESCHEME,
               "attention_factor = 1e-300: 0 or subnormal once rounded to float32", NULL);
}

/* The per-position tables exist only in a runnable workload. */
static void expect_run_tables_error(const char *text, const char *needle) {
  pe_ctx *ctx = new_ctx();
  pe_config *cfg = NULL;
  pe_workload *w = NULL;
  cr_assert_eq(pe_config_parse(ctx, text, "test.ini", NULL, &cfg), 0, "%s", pe_ctx_error(ctx));
  cr_expect_eq(pe_workload_build_tables(ctx, cfg, &w), 0, "tables only: %s", pe_ctx_error(ctx));
  pe_workload_free(w);
  int rc = pe_workload_build(ctx, cfg, &w);
  cr_expect_eq(rc, PE_ESCHEME, "got %s: %s", pe_err_name(rc), pe_ctx_error(ctx));
  cr_expect(strstr(pe_ctx_error(ctx), needle), "message lacks \"%s\": %s", needle, pe_ctx_error(ctx));
  pe_workload_free(w);
  pe_config_free(cfg);
  pe_ctx_free(ctx);
}

Test(contract, position_tables_overflow) {
  expect_run_tables_error(hostile(WORKLOAD(8, 8, 0, 2), "inv_freq_overflow"),
                          "scheme hostile_scheme: rotary cos/sin table, key row 2 (position 2), pair 0 = "
                          "nan: not finite (position * inv_freq[0] = inf)");
  expect_run_tables_error(hostile(WORKLOAD(8, 8, 0, 2), "additive_overflow"),
                          "scheme hostile_scheme: additive table, key row 2 (position 2), pair 0 = nan");
}
