/* Core tests: golden cases on the reference backend and the oracle, the
 * plugin ABI against broken modules, config and .npy validation, the
 * input generator, reports and contexts in threads. */
#include "helpers.h"

#include <limits.h>
#include <pthread.h>
#include <unistd.h>

/* ---- golden attention cases -------------------------------------------- */
#define GOLDEN_CASES(X)                                                           \
  X(none_causal, "none-causal") X(rope_neox_causal, "rope-neox-causal")           \
  X(rope_interleaved, "rope-interleaved") X(rope_decode, "rope-decode")           \
  X(rope_window, "rope-window") X(rope_window_noncausal, "rope-window-noncausal") \
  X(alibi_causal, "alibi-causal") X(sinusoidal_causal, "sinusoidal-causal")       \
  X(dynntk_long, "dynntk-long") X(yarn_gqa_causal, "yarn-gqa-causal")             \
  X(yarn_far_positions, "yarn-far-positions")

#define REFERENCE_CASE(id, name) \
  Test(golden_reference, id) { pe_test_golden_case("reference", name, 2e-5); }
GOLDEN_CASES(REFERENCE_CASE)

/* The oracle alone, every row, against o.npy. */
static void oracle_case(const char *name) {
  pe_ctx *ctx = pe_test_ctx();
  char path[4096];
  snprintf(path, sizeof path, "%s/attention/%s/case.ini", pe_test_golden_dir(), name);
  pe_config *cfg;
  cr_assert_eq(pe_config_load(ctx, path, &cfg), 0, "%s", pe_ctx_error(ctx));
  pe_workload *w;
  cr_assert_eq(pe_workload_build(ctx, cfg, &w), 0, "%s", pe_ctx_error(ctx));
  const pe_workload_info *in = pe_workload_get_info(w);
  size_t n = (size_t)in->batch * in->q_heads * in->q_len * in->head_dim;
  double *out = malloc(n * sizeof *out);
  cr_assert_eq(pe_oracle(ctx, w, 0, in->q_len, out), 0, "%s", pe_ctx_error(ctx));
  snprintf(path, sizeof path, "%s/attention/%s/o.npy", pe_test_golden_dir(), name);
  pe_tensor o;
  cr_assert_eq(pe_npy_read(ctx, path, &o), 0, "%s", pe_ctx_error(ctx));
  double worst = 0;
  for (size_t i = 0; i < n; i++) worst = fmax(worst, fabs(out[i] - o.data[i]));
  /* o.npy is the float64 result rounded to float32: half an ulp of O. */
  cr_expect_leq(worst, 1e-6, "%s: oracle vs o.npy max abs error %.3g", name, worst);
  free(out);
  pe_tensor_free(&o);
  pe_workload_free(w);
  pe_config_free(cfg);
  pe_ctx_free(ctx);
}
#define ORACLE_CASE(id, name) \
  Test(golden_oracle, id) { oracle_case(name); }
GOLDEN_CASES(ORACLE_CASE)

/* ---- plugin ABI ---------------------------------------------------------- */
static void expect_refused(const char *variant, int code, const char *needle) {
  pe_ctx *ctx = pe_test_ctx();
  char path[4096];
  const char *b = getenv("PE_TEST_BUILDDIR");
  snprintf(path, sizeof path, "%s/tests/.libs/broken_%s.so", b ? b : ".", variant);
  const pe_plugin *p = NULL;
  int rc = pe_plugin_load(ctx, path, 0, &p);
  cr_expect_eq(rc, code, "%s: got %s (%s)", variant, pe_err_name(rc), pe_ctx_error(ctx));
  cr_expect_null(p);
  cr_expect(strstr(pe_ctx_error(ctx), needle) != NULL, "%s: message '%s' lacks '%s'", variant,
            pe_ctx_error(ctx), needle);
  cr_expect(strstr(pe_ctx_error(ctx), path) != NULL, "message names the module: %s", pe_ctx_error(ctx));
  pe_ctx_free(ctx);
}

Test(abi, future_abi_version) { expect_refused("abi_future", PE_EABI, "plugin ABI 99"); }
Test(abi, struct_too_small) { expect_refused("small_struct", PE_EABI, "struct_size 8 is smaller"); }
Test(abi, missing_required_callback) {
  expect_refused("missing_callback", PE_EABI, "required callback execute is NULL");
}
Test(abi, missing_entry_symbol) { expect_refused("no_entry", PE_EPLUGIN, "no symbol pe_plugin_entry"); }
Test(abi, entry_returns_error) {
  expect_refused("entry_error", PE_EUNSUPPORTED, "refuses to load on purpose");
}
/* A code outside the error table: said so, with the number, and reported
 * as PE_EPLUGIN (pe_strerror would only say "unknown error"). */
Test(abi, entry_returns_code_outside_the_table) {
  expect_refused("entry_raw", PE_EPLUGIN,
                 "the plugin returned -12345, which is not a libpe error code (contract violation)");
}
Test(abi, malformed_parameter) { expect_refused("bad_param", PE_EABI, "malformed"); }
Test(abi, not_a_module) { expect_refused("does_not_exist", PE_EPLUGIN, "cannot load plugin"); }

/* Declarations are checked at load, naming the module and the parameter. */
Test(abi, param_name_not_a_key) {
  expect_refused("param_name", PE_EABI, "parameter 'a b=c': not a valid key name");
}
Test(abi, param_name_reserved) {
  expect_refused("param_reserved", PE_EABI, "parameter 'plugin': the name is reserved");
}
Test(abi, param_declared_twice) {
  expect_refused("param_dup", PE_EABI, "parameter 'a': declared twice (parameters 0 and 1)");
}
Test(abi, param_min_above_max) {
  expect_refused("param_range", PE_EABI, "parameter 'r': no value is in range (min 5, max 1)");
}
Test(abi, param_choices_empty) {
  expect_refused("param_choices", PE_EABI, "parameter 'c': choices '' has an empty choice");
}
Test(abi, param_default_does_not_parse) {
  expect_refused("param_default", PE_EABI, "parameter 'd': default 'banana': not a number");
}
Test(abi, param_default_out_of_range) {
  expect_refused("param_default_range", PE_EABI,
                 "parameter 'd': default '9': out of range (accepted: an integer >= 1 and <= 8)");
}

/* Every field of ABI 1 is required: a struct cut anywhere before its
 * ABI-1 end is refused, naming the struct and both sizes. */
static void expect_cut(const char *variant, const char *what, size_t size, size_t abi1) {
  char want[256];
  snprintf(want, sizeof want, "%s struct_size %zu is smaller than ABI 1's %zu", what, size, abi1);
  expect_refused(variant, PE_EABI, want);
}
Test(abi, descriptor_cut_after_summary) {
  expect_cut("short_desc", "pe_plugin_desc (the descriptor)", offsetof(pe_plugin_desc, scheme),
             sizeof(pe_plugin_desc));
}
Test(abi, param_decl_cut_after_name) {
  expect_cut("short_param", "parameter 0: pe_param_decl", offsetof(pe_param_decl, doc),
             sizeof(pe_param_decl));
}
Test(abi, backend_ops_cut_before_enumerate) {
  expect_cut("old_ops", "pe_backend_ops", offsetof(pe_backend_ops, enumerate), sizeof(pe_backend_ops));
}

/* An optional callback left NULL (the reference backend has no
 * enumerate): pe_plugin_devices says the backend cannot list devices. */
Test(abi, optional_callback_null) {
  pe_ctx *ctx = pe_test_ctx();
  const pe_plugin *p;
  cr_assert_eq(pe_plugin_load(ctx, "reference", PE_PLUGIN_BACKEND, &p), 0, "%s", pe_ctx_error(ctx));
  cr_expect_eq(pe_plugin_devices(ctx, p, NULL, NULL), PE_EUNSUPPORTED);
  cr_expect_eq(pe_ctx_unload_plugins(ctx), 0);
  pe_ctx_free(ctx);
}

/* pe_plugin_devices hands the caller host copies: sized, strings
 * terminated; a device struct smaller than ABI 1's is not passed on but
 * named in the error. */
typedef struct devices_seen {
  pe_device_info dev[4];
  int n;
} devices_seen;

static void keep_device(void *user, const pe_device_info *info) {
  devices_seen *s = user;
  cr_assert_eq(info->struct_size, sizeof(pe_device_info), "device %d: struct_size %u", s->n + 1,
               info->struct_size);
  if (s->n < 4) s->dev[s->n] = *info;
  s->n++;
}

Test(abi, devices_are_copied_and_terminated) {
  pe_ctx *ctx = pe_test_ctx();
  char path[4096];
  const char *b = getenv("PE_TEST_BUILDDIR");
  snprintf(path, sizeof path, "%s/tests/.libs/broken_devices.so", b ? b : ".");
  const pe_plugin *p;
  cr_assert_eq(pe_plugin_load(ctx, path, PE_PLUGIN_BACKEND, &p), 0, "%s", pe_ctx_error(ctx));
  devices_seen seen = {.n = 0};
  int rc = pe_plugin_devices(ctx, p, keep_device, &seen);
  cr_assert_eq(seen.n, 2, "%d devices passed on, expected 2 (the short one refused)", seen.n);
  const pe_device_info *d = &seen.dev[0];
  cr_expect(memchr(d->name, '\0', sizeof d->name) && memchr(d->driver, '\0', sizeof d->driver) &&
            memchr(d->details, '\0', sizeof d->details), "device 1: a string is not terminated");
  cr_expect_eq(strspn(d->name, "N"), sizeof d->name - 1);
  cr_expect_str_eq(seen.dev[1].name, "dev0");
  cr_expect_eq(rc, PE_EABI, "got %s: %s", pe_err_name(rc), pe_ctx_error(ctx));
  cr_expect(strstr(pe_ctx_error(ctx), "device 2: pe_device_info struct_size 8 is smaller than ABI 1's"),
            "%s", pe_ctx_error(ctx));
  pe_ctx_free(ctx);
}

/* pe_plugin_scan lists only what load by name finds: other_name.so,
 * calling itself broken_devices, is an error there as it is by name. */
typedef struct scan_seen {
  const char *dir;
  int ok, bad;
  char error[1024];
} scan_seen;

static void scan_visit(void *user, const char *path, const pe_plugin *p, int status, const char *error) {
  scan_seen *s = user;
  if (strncmp(path, s->dir, strlen(s->dir)) != 0) return; /* PE_PLUGIN_PATH's modules */
  if (p) {
    s->ok++;
    return;
  }
  s->bad++;
  cr_expect_eq(status, PE_EPLUGIN, "%s: %s", path, error);
  snprintf(s->error, sizeof s->error, "%s", error);
}

Test(abi, scan_applies_the_name_rule) {
  char dir[] = "/tmp/pe-scan-XXXXXX", rel[4096], src[PATH_MAX], good[4200], wrong[4200];
  cr_assert_not_null(mkdtemp(dir));
  const char *b = getenv("PE_TEST_BUILDDIR");
  snprintf(rel, sizeof rel, "%s/tests/.libs/broken_devices.so", b ? b : ".");
  cr_assert_not_null(realpath(rel, src), "%s", rel);
  snprintf(good, sizeof good, "%s/broken_devices.so", dir);
  snprintf(wrong, sizeof wrong, "%s/other_name.so", dir);
  cr_assert_eq(symlink(src, good), 0);
  cr_assert_eq(symlink(src, wrong), 0);
  pe_ctx *ctx = pe_test_ctx();
  cr_assert_eq(pe_ctx_prepend_plugin_path(ctx, dir), 0);
  scan_seen seen = {.dir = dir};
  pe_plugin_scan(ctx, scan_visit, &seen);
  cr_expect_eq(seen.ok, 1);
  cr_expect_eq(seen.bad, 1);
  cr_expect(strstr(seen.error, "other_name.so: module calls itself 'broken_devices', expected "
                               "'other_name'"), "%s", seen.error);
  const pe_plugin *p;
  cr_expect_eq(pe_plugin_load(ctx, "other_name", 0, &p), PE_EPLUGIN);
  cr_expect(strstr(pe_ctx_error(ctx), seen.error) || !strcmp(pe_ctx_error(ctx), seen.error),
            "by name: %s", pe_ctx_error(ctx));
  pe_ctx_free(ctx);
  unlink(good), unlink(wrong), rmdir(dir);
}

Test(abi, plugin_by_name_and_kind) {
  pe_ctx *ctx = pe_test_ctx();
  const pe_plugin *p;
  cr_assert_eq(pe_plugin_load(ctx, "rope", PE_PLUGIN_SCHEME, &p), 0, "%s", pe_ctx_error(ctx));
  cr_expect_str_eq(pe_plugin_descriptor(p)->name, "rope");
  cr_expect_eq(pe_plugin_load(ctx, "rope", PE_PLUGIN_BACKEND, &p), PE_EPLUGIN);
  cr_expect(strstr(pe_ctx_error(ctx), "not a backend plugin"), "%s", pe_ctx_error(ctx));
  cr_expect_eq(pe_plugin_load(ctx, "no-such-plugin", 0, &p), PE_ENOTFOUND);
  cr_expect(strstr(pe_ctx_error(ctx), "PE_PLUGIN_PATH"), "%s", pe_ctx_error(ctx));
  cr_expect_eq(pe_plugin_load(ctx, "../evil", 0, &p), PE_EPLUGIN); /* a path: no such file */
  cr_expect_eq(pe_plugin_load(ctx, "bad name!", 0, &p), PE_EINVAL);
  pe_ctx_free(ctx);
}

/* An invalid kind is refused before anything is loaded; "any" kind's
 * not-found message has no gap where the kind would be. */
Test(abi, plugin_kind_checked_up_front) {
  pe_ctx *ctx = pe_test_ctx();
  const pe_plugin *p = (const pe_plugin *)1;
  cr_expect_eq(pe_plugin_load(ctx, "reference", 7, &p), PE_EINVAL, "%s", pe_ctx_error(ctx));
  cr_expect_null(p);
  cr_expect(strstr(pe_ctx_error(ctx), "kind 7"), "%s", pe_ctx_error(ctx));
  cr_expect_eq(pe_plugin_load(ctx, "no-such-plugin", 0, &p), PE_ENOTFOUND);
  cr_expect(strstr(pe_ctx_error(ctx), "no plugin 'no-such-plugin'"), "%s", pe_ctx_error(ctx));
  cr_expect_eq(pe_plugin_load(ctx, "no-such-plugin", PE_PLUGIN_SCHEME, &p), PE_ENOTFOUND);
  cr_expect(strstr(pe_ctx_error(ctx), "no scheme plugin 'no-such-plugin'"), "%s", pe_ctx_error(ctx));
  pe_ctx_free(ctx);
}

Test(abi, unload_waits_for_workloads) {
  pe_ctx *ctx = pe_test_ctx();
  pe_config *cfg;
  cr_assert_eq(pe_config_parse(ctx, "[workload]\nhead_dim=8\nseq_len=4\n[scheme]\nplugin=rope\n",
                               "t", NULL, &cfg), 0, "%s", pe_ctx_error(ctx));
  pe_workload *w;
  cr_assert_eq(pe_workload_build(ctx, cfg, &w), 0, "%s", pe_ctx_error(ctx));
  cr_expect_eq(pe_ctx_unload_plugins(ctx), PE_ESTATE);
  pe_workload_free(w);
  cr_expect_eq(pe_ctx_unload_plugins(ctx), 0);
  pe_config_free(cfg);
  pe_ctx_free(ctx);
}

/* An open runner uses its backend module: unloading is refused until it
 * is closed (closing it used to call into the unloaded module). */
Test(abi, unload_waits_for_runners) {
  pe_ctx *ctx = pe_test_ctx();
  pe_runner *rn;
  cr_assert_eq(pe_runner_open(ctx, NULL, "reference", &rn), 0, "%s", pe_ctx_error(ctx));
  cr_expect_eq(pe_ctx_unload_plugins(ctx), PE_ESTATE);
  cr_expect(strstr(pe_ctx_error(ctx), "1 runner(s)"), "%s", pe_ctx_error(ctx));
  pe_runner_close(rn);
  cr_expect_eq(pe_ctx_unload_plugins(ctx), 0, "%s", pe_ctx_error(ctx));
  /* A runner that failed to open holds nothing. */
  cr_expect_eq(pe_runner_open(ctx, NULL, "no-such-backend", &rn), PE_ENOTFOUND);
  cr_expect_eq(pe_ctx_unload_plugins(ctx), 0, "%s", pe_ctx_error(ctx));
  pe_ctx_free(ctx);
}

/* Workloads and runners keep their context and its modules: freeing the
 * context first is safe, and they go on working until freed. */
Test(abi, context_freed_before_its_workloads_and_runners) {
  pe_ctx *ctx = pe_test_ctx();
  pe_config *cfg;
  cr_assert_eq(pe_config_parse(ctx, "[workload]\nhead_dim=8\nseq_len=16\n[scheme]\nplugin=rope\n",
                               "t", NULL, &cfg), 0, "%s", pe_ctx_error(ctx));
  pe_workload *w, *w2;
  cr_assert_eq(pe_workload_build(ctx, cfg, &w), 0, "%s", pe_ctx_error(ctx));
  cr_assert_eq(pe_workload_build_tables(ctx, cfg, &w2), 0, "%s", pe_ctx_error(ctx));
  pe_runner *rn;
  cr_assert_eq(pe_runner_open(ctx, cfg, "reference", &rn), 0, "%s", pe_ctx_error(ctx));
  pe_ctx_free(ctx);
  pe_config_free(cfg);
  cr_expect_str_eq(pe_workload_get_info(w)->scheme, "rope"); /* in the module */
  float out[16 * 8];
  cr_expect_eq(pe_runner_run(rn, w, out, NULL), 0);
  cr_expect_str_eq(pe_runner_device(rn)->driver, "libpe reference");
  pe_workload_free(w);
  pe_runner_close(rn);
  cr_expect_str_eq(pe_workload_get_info(w2)->scheme, "rope");
  pe_workload_free(w2); /* the last: frees the context */
}

/* The last frees may run on different threads at once: exactly one of
 * them frees the context (valgrind/helgrind: no leak, no double free). */
static void *free_workload(void *w) {
  pe_workload_free(w);
  return NULL;
}

Test(threads, last_frees_on_different_threads) {
  for (int round = 0; round < 20; round++) {
    pe_ctx *ctx = pe_test_ctx();
    pe_config *cfg;
    cr_assert_eq(pe_config_parse(ctx, "[workload]\nhead_dim=8\nseq_len=4\n[scheme]\nplugin=none\n",
                                 "t", NULL, &cfg), 0, "%s", pe_ctx_error(ctx));
    pe_workload *w[4];
    for (int i = 0; i < 4; i++)
      cr_assert_eq(pe_workload_build_tables(ctx, cfg, &w[i]), 0, "%s", pe_ctx_error(ctx));
    pe_config_free(cfg);
    pthread_t t[4];
    for (int i = 0; i < 4; i++) cr_assert_eq(pthread_create(&t[i], NULL, free_workload, w[i]), 0);
    pe_ctx_free(ctx);
    for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
  }
}

Test(abi, error_table) {
  cr_expect_str_eq(pe_err_name(PE_ECONFIG), "PE_ECONFIG");
  cr_expect_str_eq(pe_strerror(PE_EUNSUPPORTED), "unsupported");
  cr_expect_str_eq(pe_strerror(12345), "unknown error");
  cr_expect_eq(pe_abi_version(), PE_ABI_VERSION);
}

/* ---- configs --------------------------------------------------------------- */
static const char *BASE = "[workload]\nhead_dim = 8\nseq_len = 16\n[scheme]\nplugin = rope\n";

/* Parse `text` (and build a workload from it); expect `code` and a message
 * containing each needle. */
static void expect_config_error(const char *text, int code, const char *n1, const char *n2) {
  pe_ctx *ctx = pe_test_ctx();
  pe_config *cfg = NULL;
  int rc = pe_config_parse(ctx, text, "bad.ini", NULL, &cfg);
  pe_workload *w = NULL;
  if (rc == 0) rc = pe_workload_build(ctx, cfg, &w);
  cr_expect_eq(rc, code, "got %s: %s\nconfig:\n%s", pe_err_name(rc), pe_ctx_error(ctx), text);
  cr_expect(strstr(pe_ctx_error(ctx), n1), "message '%s' lacks '%s'", pe_ctx_error(ctx), n1);
  if (n2) cr_expect(strstr(pe_ctx_error(ctx), n2), "message '%s' lacks '%s'", pe_ctx_error(ctx), n2);
  pe_workload_free(w);
  pe_config_free(cfg);
  pe_ctx_free(ctx);
}

static char *with(const char *extra) {
  static char buf[8192];
  snprintf(buf, sizeof buf, "%s%s", BASE, extra);
  return buf;
}

Test(config, unknown_section) {
  expect_config_error(with("[wrkload]\nx = 1\n"), PE_ECONFIG, "bad.ini:6: unknown section [wrkload]", "accepted");
}
Test(config, unknown_key) {
  expect_config_error("[workload]\nhead_dim = 8\nseq_len = 16\nheads = 4\n[scheme]\nplugin=rope\n",
                      PE_ECONFIG, "bad.ini:4: [workload] unknown key 'heads'", "q_heads");
}
Test(config, unknown_scheme_key) {
  expect_config_error(with("bsae = 10000\n"), PE_ECONFIG, "bad.ini:6: [scheme] unknown key 'bsae' for scheme rope",
                      "accepted: base");
}
Test(config, bad_integer) {
  expect_config_error("[workload]\nhead_dim = eight\nseq_len = 16\n[scheme]\nplugin=rope\n", PE_ECONFIG,
                      "bad.ini:2: [workload] head_dim = eight: not an integer", "accepted: an integer");
}
Test(config, out_of_range) {
  expect_config_error("[workload]\nhead_dim = 0\nseq_len = 16\n[scheme]\nplugin=rope\n", PE_ECONFIG,
                      "head_dim = 0: out of range", ">= 1");
}
Test(config, absurd_seq_len) {
  expect_config_error("[workload]\nhead_dim = 8\nseq_len = 1099511627776\n[scheme]\nplugin=rope\n",
                      PE_ECONFIG, "seq_len = 1099511627776: out of range", NULL);
}
Test(config, bad_choice) {
  expect_config_error(with("pairing = zigzag\n"), PE_ECONFIG, "pairing = zigzag: not one of the choices",
                      "neox|interleaved");
}
Test(config, bad_bool) {
  expect_config_error("[workload]\nhead_dim = 8\nseq_len = 16\ncausal = maybe\n[scheme]\nplugin=rope\n",
                      PE_ECONFIG, "causal = maybe: not a bool", "true|false");
}
Test(config, missing_required) {
  expect_config_error("[workload]\nhead_dim = 8\n[scheme]\nplugin=rope\n", PE_ECONFIG,
                      "missing required key 'seq_len'", NULL);
}
Test(config, missing_scheme) {
  expect_config_error("[workload]\nhead_dim = 8\nseq_len = 4\n", PE_ECONFIG, "[scheme] missing required key 'plugin'", NULL);
}
Test(config, repeated_scalar) {
  expect_config_error(with("base = 10\nbase = 20\n"), PE_ECONFIG, "bad.ini:7: [scheme] base is already set on line 6", NULL);
}
Test(config, continuation_of_scalar) {
  expect_config_error(with("base = 10\n  20\n"), PE_ECONFIG, "continuation lines are only for lists", NULL);
}
Test(config, long_line) {
  char text[1024];
  snprintf(text, sizeof text, "%s; %0300d\n", BASE, 0);
  expect_config_error(text, PE_ECONFIG, "bad.ini:6: line longer than 199 characters", "indented lines");
}
/* inih cuts a line at 199 characters: exactly 199 is whole, with LF or
 * CRLF, and its value arrives intact. */
Test(config, line_of_199_characters_is_whole) {
  for (int crlf = 0; crlf < 2; crlf++) {
    char text[1024];
    /* "base = " is 7 characters; the value fills the line to 199 */
    snprintf(text, sizeof text, "%sbase = 1%0191d%s", BASE, 0, crlf ? "\r\n" : "\n");
    pe_ctx *ctx = pe_test_ctx();
    pe_config *cfg = NULL;
    cr_assert_eq(pe_config_parse(ctx, text, "ok.ini", NULL, &cfg), 0, "%s", pe_ctx_error(ctx));
    cr_expect_eq(strlen(pe_config_get(cfg, "scheme", "base")), 192);
    pe_config_free(cfg);
    pe_ctx_free(ctx);
    snprintf(text, sizeof text, "%sbase = 1%0192d%s", BASE, 0, crlf ? "\r\n" : "\n");
    expect_config_error(text, PE_ECONFIG, "bad.ini:6: line longer than 199 characters", NULL);
  }
}
/* inih forgets the previous key at a [section] header: an indented key
 * after a repeated header is that key again, not a continuation. */
Test(config, repeated_section_is_no_continuation) {
  expect_config_error("[workload]\nhead_dim = 8\nseq_len = 16\n[scheme]\nplugin = rope\n[workload]\n"
                      "  seq_len = 32\n",
                      PE_ECONFIG, "bad.ini:7: [workload] seq_len is already set on line 3", NULL);
}
/* Headers with no keys are checked as well (inih never reports them). */
Test(config, keyless_headers_checked) {
  expect_config_error(with("[Backend.reference]\n"), PE_ECONFIG, "bad.ini:6: unknown section [Backend.reference]",
                      "accepted");
  expect_config_error(with("[backend.]\n"), PE_ECONFIG, "bad.ini:6: unknown section [backend.]", NULL);
  expect_config_error(with("[wrokload]\n"), PE_ECONFIG, "bad.ini:6: unknown section [wrokload]", NULL);
}
/* inih truncates section and key names at 49 characters. */
Test(config, long_names_refused) {
  expect_config_error(with("[backend.rrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrr]\nplugin = reference\n"),
                      PE_ECONFIG, "bad.ini:6: section name", "longer than 49 characters");
  expect_config_error(with("base_base_base_base_base_base_base_base_base_base_x = 1\n"), PE_ECONFIG,
                      "bad.ini:6: key 'base_base_base_base_...' longer than 49", NULL);
}
Test(config, unclosed_header) {
  expect_config_error("[workload\nhead_dim = 8\n", PE_ECONFIG, "bad.ini:1: syntax error: '[' without", NULL);
}
Test(config, key_outside_any_section) {
  expect_config_error("head_dim = 8\n[workload]\nseq_len = 16\n", PE_ECONFIG,
                      "bad.ini:1: key 'head_dim' outside any section", NULL);
}
/* A NUL byte would end the text early and the rest would be ignored. */
Test(config, nul_byte_refused) {
  char path[] = "/tmp/pe_nul_XXXXXX";
  int fd = mkstemp(path);
  cr_assert(fd >= 0);
  static const char text[] = "[workload]\nhead_dim = 8\nseq_len = 1\0" "6\n[scheme]\nplugin = rope\n";
  cr_assert_eq(write(fd, text, sizeof text - 1), (ssize_t)(sizeof text - 1));
  close(fd);
  pe_ctx *ctx = pe_test_ctx();
  pe_config *cfg = NULL;
  cr_expect_eq(pe_config_load(ctx, path, &cfg), PE_ECONFIG);
  cr_expect(strstr(pe_ctx_error(ctx), "NUL byte at offset 35"), "%s", pe_ctx_error(ctx));
  cr_expect_null(cfg);
  cr_expect_eq(pe_config_load(ctx, "/tmp", &cfg), PE_EIO);
  cr_expect(strstr(pe_ctx_error(ctx), "/tmp: cannot read: Is a directory"), "%s", pe_ctx_error(ctx));
  pe_ctx_free(ctx);
  unlink(path);
}
Test(config, syntax_error) {
  expect_config_error(with("this is not ini\n"), PE_ECONFIG, "bad.ini:6: syntax error", NULL);
}
Test(config, gqa_divisibility) {
  expect_config_error("[workload]\nhead_dim=8\nseq_len=4\nq_heads=6\nkv_heads=4\n[scheme]\nplugin=none\n",
                      PE_ECONFIG, "q_heads = 6 is not a multiple of kv_heads = 4", NULL);
}
Test(config, q_len_exceeds_seq_len) {
  expect_config_error("[workload]\nhead_dim=8\nseq_len=4\nq_len=5\n[scheme]\nplugin=none\n", PE_ECONFIG,
                      "q_len = 5 exceeds seq_len = 4", NULL);
}
Test(config, unknown_scheme_plugin) {
  expect_config_error("[workload]\nhead_dim=8\nseq_len=4\n[scheme]\nplugin=ropee\n", PE_ENOTFOUND,
                      "[scheme] plugin = ropee", "no scheme plugin 'ropee'");
}
Test(config, partial_inputs) {
  expect_config_error(with("[inputs]\nq = q.npy\n"), PE_ECONFIG, "gives some of q, k, v but not all", NULL);
}
Test(config, missing_input_file) {
  expect_config_error(with("[inputs]\nq = nope_q.npy\nk = nope_k.npy\nv = nope_v.npy\n"), PE_EIO,
                      "nope_q.npy: cannot open", NULL);
}
Test(config, backend_without_plugin) {
  expect_config_error(with("[backend]\nthreads = 2\n"), PE_ECONFIG, "[backend] needs 'plugin = NAME'", NULL);
}
Test(config, memory_limit) {
  expect_config_error("[workload]\nhead_dim=4096\nseq_len=1048576\nq_heads=64\nbatch=64\n[scheme]\nplugin=none\n",
                      PE_ELIMIT, "GiB of host memory", "max_memory");
}
Test(config, size_overflow) {
  expect_config_error("[workload]\nhead_dim=4096\nseq_len=1073741824\nq_heads=65536\nbatch=65536\n"
                      "[scheme]\nplugin=none\n[run]\nmax_memory=1T\n", PE_ELIMIT, "overflows 64 bits", NULL);
}
Test(config, bad_backend_option) {
  pe_ctx *ctx = pe_test_ctx();
  pe_config *cfg;
  cr_assert_eq(pe_config_parse(ctx, with("[backend.ref]\nplugin = reference\naccumulate = quad\n"), "b.ini",
                               NULL, &cfg), 0, "%s", pe_ctx_error(ctx));
  pe_workload *w;
  cr_assert_eq(pe_workload_build(ctx, cfg, &w), 0, "%s", pe_ctx_error(ctx));
  pe_result *r;
  cr_expect_eq(pe_run(ctx, w, cfg, "ref", &r), PE_ECONFIG);
  cr_expect_eq(r->status, PE_RUN_FAILED);
  cr_expect(strstr(r->message, "b.ini:8: [backend.ref] accumulate = quad"), "%s", r->message);
  pe_result_free(r);
  pe_workload_free(w);
  pe_config_free(cfg);
  pe_ctx_free(ctx);
}
Test(config, list_continuation_and_backends) {
  pe_ctx *ctx = pe_test_ctx();
  pe_config *cfg;
  const char *text = "[workload]\nhead_dim = 8\nseq_len = 4 ; inline comment\n[scheme]\nplugin = rope\n"
                     "[backend.a]\nplugin = reference\n[backend]\nplugin = reference\naccumulate = float\n";
  cr_assert_eq(pe_config_parse(ctx, text, "ok.ini", NULL, &cfg), 0, "%s", pe_ctx_error(ctx));
  cr_expect_eq(pe_config_backend_count(cfg), 2);
  cr_expect_str_eq(pe_config_backend_label(cfg, 0), "a");
  cr_expect_str_eq(pe_config_backend_label(cfg, 1), "reference");
  pe_config_free(cfg);
  pe_ctx_free(ctx);
}

/* ---- .npy ------------------------------------------------------------------ */
static char tmpdir[256];
static void make_tmpdir(void) {
  snprintf(tmpdir, sizeof tmpdir, "/tmp/pe-test-XXXXXX");
  cr_assert_not_null(mkdtemp(tmpdir));
}

/* A name finds the module in the search path, not one of that name loaded
 * from elsewhere (another build under comparison); the same file twice is
 * one module. */
Test(abi, name_does_not_find_a_module_loaded_by_another_path) {
  make_tmpdir();
  pe_ctx *ctx = pe_test_ctx();
  char src[4096], copy[4096], cmd[8400];
  const char *b = getenv("PE_TEST_BUILDDIR");
  snprintf(src, sizeof src, "%s/backends/.libs/reference.so", b ? b : ".");
  snprintf(copy, sizeof copy, "%s/reference.so", tmpdir);
  snprintf(cmd, sizeof cmd, "cp '%s' '%s'", src, copy);
  cr_assert_eq(system(cmd), 0, "%s", cmd);
  const pe_plugin *other, *named, *again;
  cr_assert_eq(pe_plugin_load(ctx, copy, PE_PLUGIN_BACKEND, &other), 0, "%s", pe_ctx_error(ctx));
  cr_assert_eq(pe_plugin_load(ctx, "reference", PE_PLUGIN_BACKEND, &named), 0, "%s", pe_ctx_error(ctx));
  cr_expect_neq(named, other);
  cr_expect_str_eq(pe_plugin_path(other), copy);
  cr_expect_str_neq(pe_plugin_path(named), copy);
  cr_assert_eq(pe_plugin_load(ctx, "reference", PE_PLUGIN_BACKEND, &again), 0, "%s", pe_ctx_error(ctx));
  cr_expect_eq(again, named);
  pe_ctx_free(ctx);
}

static void write_file(const char *path, const void *data, size_t n) {
  FILE *fp = fopen(path, "wb");
  cr_assert_not_null(fp);
  fwrite(data, 1, n, fp);
  fclose(fp);
}

Test(npy, round_trip) {
  make_tmpdir();
  pe_ctx *ctx = pe_test_ctx();
  float data[2 * 3 * 5];
  for (int i = 0; i < 30; i++) data[i] = (float)i * 0.25f - 3.0f;
  uint64_t shape[3] = {2, 3, 5};
  char path[512];
  snprintf(path, sizeof path, "%s/x.npy", tmpdir);
  cr_assert_eq(pe_npy_write(ctx, path, data, 3, shape), 0, "%s", pe_ctx_error(ctx));
  pe_tensor t;
  cr_assert_eq(pe_npy_read(ctx, path, &t), 0, "%s", pe_ctx_error(ctx));
  cr_expect_eq(t.ndim, 3);
  cr_expect_eq(t.shape[2], 5);
  cr_expect_arr_eq(t.data, data, sizeof data);
  pe_tensor_free(&t);
  pe_ctx_free(ctx);
}

static void expect_npy_error(const void *bytes, size_t n, const char *needle) {
  make_tmpdir();
  pe_ctx *ctx = pe_test_ctx();
  char path[512];
  snprintf(path, sizeof path, "%s/bad.npy", tmpdir);
  write_file(path, bytes, n);
  pe_tensor t;
  int rc = pe_npy_read(ctx, path, &t);
  cr_expect_eq(rc, PE_ENPY, "got %s: %s", pe_err_name(rc), pe_ctx_error(ctx));
  cr_expect(strstr(pe_ctx_error(ctx), needle), "message '%s' lacks '%s'", pe_ctx_error(ctx), needle);
  cr_expect(strstr(pe_ctx_error(ctx), "bad.npy"), "message names the file");
  pe_ctx_free(ctx);
}

#define HDR(dict) "\x93NUMPY\x01\x00" dict
static const char good_dict[] = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }\n";

static void npy_with(const char *dict, size_t data_bytes, const char *needle) {
  unsigned char buf[512] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0};
  size_t len = strlen(dict);
  buf[8] = (unsigned char)len;
  buf[9] = 0;
  memcpy(buf + 10, dict, len);
  expect_npy_error(buf, 10 + len + data_bytes, needle);
}

Test(npy, bad_magic) { expect_npy_error("NOTNUMPY", 8, "bad magic"); }
Test(npy, truncated_preamble) { expect_npy_error("\x93NUMPY\x01", 7, "truncated"); }
Test(npy, lying_header_length) {
  unsigned char buf[20] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, 0xff, 0x00, '{'};
  expect_npy_error(buf, sizeof buf, "header length runs past the end");
}
Test(npy, wrong_dtype) { npy_with("{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }\n", 16, "dtype '<f8'"); }
Test(npy, big_endian) { npy_with("{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }\n", 8, "dtype '>f4'"); }
Test(npy, fortran_order) { npy_with("{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }\n", 8, "Fortran order"); }
Test(npy, short_data) { npy_with(good_dict, 4, "data is 4 bytes but the shape needs 8"); }
Test(npy, long_data) { npy_with(good_dict, 12, "data is 12 bytes but the shape needs 8"); }
Test(npy, malformed_shape) { npy_with("{'descr': '<f4', 'fortran_order': False, 'shape': (2,x), }\n", 8, "malformed shape"); }
Test(npy, overflowing_shape) {
  npy_with("{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296, 16), }\n", 8, "overflows");
}
Test(npy, unknown_version) {
  unsigned char buf[16] = {0x93, 'N', 'U', 'M', 'P', 'Y', 9, 0, 4, 0, '{', '}'};
  expect_npy_error(buf, sizeof buf, "unsupported format version 9.0");
}
Test(npy, missing_key) { npy_with("{'descr': '<f4', 'shape': (2,), }\n", 8, "lacks descr, fortran_order or shape"); }

Test(npy, shape_mismatch_with_workload) {
  make_tmpdir();
  pe_ctx *ctx = pe_test_ctx();
  float data[64] = {0};
  uint64_t s_ok[4] = {1, 1, 4, 8}, s_bad[4] = {1, 2, 4, 8};
  char p[512], text[2048];
  const char *names[3] = {"q", "k", "v"};
  for (int i = 0; i < 3; i++) {
    snprintf(p, sizeof p, "%s/%s.npy", tmpdir, names[i]);
    cr_assert_eq(pe_npy_write(ctx, p, data, 4, i == 1 ? s_bad : s_ok), 0, "%s", pe_ctx_error(ctx));
  }
  snprintf(text, sizeof text, "[workload]\nhead_dim=8\nseq_len=4\n[inputs]\nq=q.npy\nk=k.npy\nv=v.npy\n"
           "[scheme]\nplugin=none\n");
  pe_config *cfg;
  cr_assert_eq(pe_config_parse(ctx, text, "m.ini", tmpdir, &cfg), 0, "%s", pe_ctx_error(ctx));
  pe_workload *w;
  cr_expect_eq(pe_workload_build(ctx, cfg, &w), PE_ENPY);
  cr_expect(strstr(pe_ctx_error(ctx), "k has shape (1, 2, 4, 8), the workload needs (1, 1, 4, 8)"), "%s",
            pe_ctx_error(ctx));
  pe_config_free(cfg);
  pe_ctx_free(ctx);
}

/* A NaN or infinity in an input file is refused at load, the file and the
 * element named (it would otherwise fail verification with error nan). */
Test(npy, non_finite_input_refused) {
  make_tmpdir();
  pe_ctx *ctx = pe_test_ctx();
  float data[32] = {0};
  uint64_t shape[4] = {1, 1, 4, 8};
  char p[512];
  const char *names[3] = {"q", "k", "v"};
  static const float bad[2] = {NAN, -INFINITY};
  static const char *const said[2] = {"k[0][0][2][5] is NaN", "k[0][0][2][5] is -inf"};
  for (int b = 0; b < 2; b++) {
    for (int i = 0; i < 3; i++) {
      data[2 * 8 + 5] = i == 1 ? bad[b] : 0.0f;
      snprintf(p, sizeof p, "%s/%s.npy", tmpdir, names[i]);
      cr_assert_eq(pe_npy_write(ctx, p, data, 4, shape), 0, "%s", pe_ctx_error(ctx));
    }
    pe_config *cfg;
    cr_assert_eq(pe_config_parse(ctx, "[workload]\nhead_dim=8\nseq_len=4\n[inputs]\nq=q.npy\n"
                                 "k=k.npy\nv=v.npy\n[scheme]\nplugin=none\n", "m.ini", tmpdir, &cfg),
                 0, "%s", pe_ctx_error(ctx));
    pe_workload *w = NULL;
    cr_expect_eq(pe_workload_build(ctx, cfg, &w), PE_ENPY);
    cr_expect(strstr(pe_ctx_error(ctx), said[b]) && strstr(pe_ctx_error(ctx), "k.npy"), "%s",
              pe_ctx_error(ctx));
    pe_workload_free(w);
    pe_config_free(cfg);
  }
  pe_ctx_free(ctx);
}
Test(config, empty_input_path) {
  expect_config_error(with("[inputs]\nq =\nk = k.npy\nv = v.npy\n"), PE_ECONFIG,
                      "bad.ini:7: [inputs] q is empty", NULL);
}
/* The backends take softmax_scale as a float: it must stay a normal,
 * finite one. */
Test(config, softmax_scale_bounds) {
  expect_config_error("[workload]\nhead_dim = 8\nseq_len = 16\nsoftmax_scale = 1e300\n[scheme]\nplugin=rope\n",
                      PE_ECONFIG, "softmax_scale = 1e300: out of range", "<= 1e+30");
  expect_config_error("[workload]\nhead_dim = 8\nseq_len = 16\nsoftmax_scale = 1e-320\n[scheme]\nplugin=rope\n",
                      PE_ECONFIG, "softmax_scale = 1e-320: below a double's normal range", ">= 1e-30 and");
}
/* A key added after loading (pe_config_set) has no line; a config with no
 * [sweep] reports its own error, not a sweep cell's. */
Test(config, set_key_has_no_line) {
  pe_ctx *ctx = pe_test_ctx();
  pe_config *cfg;
  cr_assert_eq(pe_config_parse(ctx, BASE, "s.ini", NULL, &cfg), 0, "%s", pe_ctx_error(ctx));
  static const char set[] = "s.ini (value set by --set / pe_config_set): ";
  cr_expect_neq(pe_config_set(ctx, cfg, "workload", "window", "-1"), 0);
  cr_expect(!strncmp(pe_ctx_error(ctx), set, strlen(set)) &&
                strstr(pe_ctx_error(ctx), "[workload] window = -1: out of range"),
            "%s", pe_ctx_error(ctx));
  /* a replaced key no longer points at the file's line */
  cr_expect_neq(pe_config_set(ctx, cfg, "workload", "seq_len", "0"), 0);
  cr_expect(!strncmp(pe_ctx_error(ctx), set, strlen(set)) &&
                strstr(pe_ctx_error(ctx), "[workload] seq_len = 0: out of range"),
            "%s", pe_ctx_error(ctx));
  cr_assert_eq(pe_config_set(ctx, cfg, "scheme", "bsae", "3"), 0, "%s", pe_ctx_error(ctx));
  pe_sweep *sw = NULL;
  pe_config *cell = NULL;
  int rc = pe_sweep_expand(ctx, cfg, &sw);
  if (rc == 0) rc = pe_sweep_cell(ctx, sw, 0, &cell);
  cr_expect_eq(rc, PE_ECONFIG);
  cr_expect(!strncmp(pe_ctx_error(ctx), set, strlen(set)) &&
                strstr(pe_ctx_error(ctx), "[scheme] unknown key 'bsae'"),
            "%s", pe_ctx_error(ctx));
  pe_config_free(cell);
  pe_sweep_free(sw);
  pe_config_free(cfg);
  pe_ctx_free(ctx);
}

/* [backend.LABEL] set on a file whose plain [backend] has plugin = LABEL
 * changes that section: no second backend of the same label. */
Test(config, set_backend_by_label) {
  pe_ctx *ctx = pe_test_ctx();
  pe_config *cfg;
  cr_assert_eq(pe_config_parse(ctx, with("[backend]\nplugin = reference\n"), "b.ini", NULL, &cfg), 0,
               "%s", pe_ctx_error(ctx));
  cr_assert_eq(pe_config_set(ctx, cfg, "backend.reference", "accumulate", "float"), 0, "%s",
               pe_ctx_error(ctx));
  cr_expect_eq(pe_config_backend_count(cfg), 1u);
  cr_expect_str_eq(pe_config_backend_label(cfg, 0), "reference");
  /* a label the file does not have adds a section */
  cr_assert_eq(pe_config_set(ctx, cfg, "backend.fast", "plugin", "reference"), 0, "%s",
               pe_ctx_error(ctx));
  cr_expect_eq(pe_config_backend_count(cfg), 2u);
  pe_config_free(cfg);
  pe_ctx_free(ctx);
}

/* JSON strings are always well-formed UTF-8: a byte that does not start a
 * well-formed sequence is written as the Latin-1 character of its value. */
Test(report, json_string_is_well_formed_utf8) {
  static const struct {
    const char *in, *out;
  } cases[] = {
      {"caf\xc3\xa9", "\"caf\xc3\xa9\""},                         /* U+00E9 as is */
      {"\xf0\x9f\x98\x80", "\"\xf0\x9f\x98\x80\""},                 /* U+1F600 as is */
      {"\xed\xa0\x80", "\"\\u00ed\\u00a0\\u0080\""},              /* a surrogate */
      {"\xe0\x80\xaf", "\"\\u00e0\\u0080\\u00af\""},              /* overlong '/' */
      {"\xf4\x90\x80\x80", "\"\\u00f4\\u0090\\u0080\\u0080\""}, /* above U+10FFFF */
      {"\xc0\xaf\x01", "\"\\u00c0\\u00af\\u0001\""},              /* overlong, control */
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    char *buf = NULL;
    size_t len = 0;
    FILE *fp = open_memstream(&buf, &len);
    pe_report_json_string(fp, cases[i].in);
    fclose(fp);
    cr_expect_str_eq(buf, cases[i].out, "case %zu", i);
    free(buf);
  }
}

/* ---- inputs, verification, reports ------------------------------------- */
Test(inputs, generator_is_counter_based) {
  float a[64], b[16];
  pe_random_normal(7, 1, a, 64);
  pe_random_normal(7, 1, b, 16);
  cr_expect_arr_eq(a, b, sizeof b, "a prefix does not depend on the length drawn");
  pe_random_normal(8, 1, b, 16);
  cr_expect(memcmp(a, b, sizeof b) != 0, "another seed gives other numbers");
  double sum = 0, sq = 0;
  static float big[1 << 16];
  pe_random_normal(1, 2, big, 1 << 16);
  for (int i = 0; i < (1 << 16); i++) sum += big[i], sq += (double)big[i] * big[i];
  cr_expect_leq(fabs(sum / 65536), 0.02, "mean %g", sum / 65536);
  cr_expect_leq(fabs(sq / 65536 - 1), 0.03, "variance %g", sq / 65536);
}

/* The arrays of the task a backend gets start on 64-byte lines (the
 * pe_task promise): generated inputs and rotary tables, .npy inputs and
 * additive tables, and large blocks, where malloc gives 16 bytes. */
static void expect_task_aligned(const pe_task *t) {
  const void *arr[] = {t->q, t->k, t->v, t->rope_cos, t->rope_sin, t->additive};
  const char *name[] = {"q", "k", "v", "rope_cos", "rope_sin", "additive"};
  for (int i = 0; i < 6; i++)
    cr_expect((uintptr_t)arr[i] % 64 == 0, "%s at %p is not on a 64-byte line", name[i], arr[i]);
}

Test(inputs, task_arrays_on_64_byte_lines) {
  pe_ctx *ctx = pe_test_ctx();
  pe_config *cfg;
  pe_workload *w;
  /* 8 MiB per input: above glibc's mmap threshold */
  cr_assert_eq(pe_config_parse(ctx, "[workload]\nop=encode\nhead_dim=64\nseq_len=32768\n"
                               "[scheme]\nplugin=rope\n", "a.ini", NULL, &cfg), 0, "%s", pe_ctx_error(ctx));
  cr_assert_eq(pe_workload_build(ctx, cfg, &w), 0, "%s", pe_ctx_error(ctx));
  const pe_task *t = pe_workload_task(w);
  cr_assert(t->rope_cos && t->rope_sin);
  expect_task_aligned(t);
  pe_workload_free(w);
  pe_config_free(cfg);

  make_tmpdir();
  float data[3 * 8] = {0};
  uint64_t shape[4] = {1, 1, 3, 8};
  char p[512], text[1024];
  const char *names[3] = {"q", "k", "v"};
  for (int i = 0; i < 3; i++) {
    snprintf(p, sizeof p, "%s/%s.npy", tmpdir, names[i]);
    cr_assert_eq(pe_npy_write(ctx, p, data, 4, shape), 0, "%s", pe_ctx_error(ctx));
  }
  snprintf(text, sizeof text, "[workload]\nhead_dim=8\nseq_len=3\n[inputs]\nq=q.npy\nk=k.npy\n"
           "v=v.npy\n[scheme]\nplugin=sinusoidal\n");
  cr_assert_eq(pe_config_parse(ctx, text, "n.ini", tmpdir, &cfg), 0, "%s", pe_ctx_error(ctx));
  cr_assert_eq(pe_workload_build(ctx, cfg, &w), 0, "%s", pe_ctx_error(ctx));
  t = pe_workload_task(w);
  cr_assert(t->additive);
  expect_task_aligned(t);
  pe_workload_free(w);
  pe_config_free(cfg);
  pe_ctx_free(ctx);
}

/* A backend named by a path longer than the result's label field keeps
 * its tail (the file name), marked as cut, not its first 63 bytes. */
Test(run, long_backend_path_keeps_its_file_name) {
  pe_ctx *ctx = pe_test_ctx();
  pe_config *cfg;
  cr_assert_eq(pe_config_parse(ctx, BASE, "l.ini", NULL, &cfg), 0, "%s", pe_ctx_error(ctx));
  pe_workload *w;
  cr_assert_eq(pe_workload_build(ctx, cfg, &w), 0, "%s", pe_ctx_error(ctx));
  const char *path = "/nonexistent/a_directory_name_long_enough_to_overflow/"
                     "the_sixty_four_byte_label/mybackend.so";
  pe_result *r = NULL;
  cr_expect_neq(pe_run(ctx, w, cfg, path, &r), 0);
  cr_assert_not_null(r);
  cr_expect_lt(strlen(r->label), sizeof r->label);
  cr_expect(!strncmp(r->label, "...", 3), "%s", r->label);
  cr_expect(strstr(r->label, "/the_sixty_four_byte_label/mybackend.so") != NULL, "%s", r->label);
  pe_result_free(r);
  pe_workload_free(w);
  pe_config_free(cfg);
  pe_ctx_free(ctx);
}

/* A backend result that is wrong must fail verification: the reference
 * backend with float accumulation at a tolerance below its error. */
Test(run, verification_fails_beyond_tolerance) {
  pe_ctx *ctx = pe_test_ctx();
  pe_config *cfg;
  cr_assert_eq(pe_config_parse(ctx, "[workload]\nhead_dim=64\nseq_len=64\n[scheme]\nplugin=rope\n"
                               "[backend]\nplugin=reference\naccumulate=float\n[run]\ntolerance=1e-12\n",
                               "v.ini", NULL, &cfg), 0, "%s", pe_ctx_error(ctx));
  pe_workload *w;
  cr_assert_eq(pe_workload_build(ctx, cfg, &w), 0, "%s", pe_ctx_error(ctx));
  pe_result *r;
  cr_expect_eq(pe_run(ctx, w, cfg, "reference", &r), PE_EVERIFY);
  cr_expect_eq(r->status, PE_RUN_FAILED);
  cr_expect(strstr(r->message, "exceeds the tolerance"), "%s", r->message);
  pe_result_free(r);
  pe_workload_free(w);
  pe_config_free(cfg);
  pe_ctx_free(ctx);
}

Test(run, flops_count_masks_exactly) {
  pe_ctx *ctx = pe_test_ctx();
  pe_config *cfg;
  /* Causal, Sq = Skv = 10, window 3: rows see 1, 2, 3, 3, ... keys = 1+2+3*8 = 27. */
  cr_assert_eq(pe_config_parse(ctx, "[workload]\nhead_dim=4\nseq_len=10\nwindow=3\n[scheme]\nplugin=none\n",
                               "f.ini", NULL, &cfg), 0, "%s", pe_ctx_error(ctx));
  pe_workload *w;
  cr_assert_eq(pe_workload_build(ctx, cfg, &w), 0, "%s", pe_ctx_error(ctx));
  cr_expect_eq(pe_workload_get_info(w)->visible_pairs, 27);
  cr_expect_eq(pe_workload_get_info(w)->flops, 4.0 * 4 * 27);
  pe_workload_free(w);
  pe_config_free(cfg);
  pe_ctx_free(ctx);
}

Test(run, encode_op_verifies) {
  pe_test_oracle_text("reference", "[workload]\nop=encode\nhead_dim=32\nseq_len=40\nq_len=7\nq_heads=4\n"
                                   "kv_heads=2\nposition_offset=1000000\n[scheme]\nplugin=rope\n");
}

Test(run, report_json_atomic) {
  make_tmpdir();
  pe_ctx *ctx = pe_test_ctx();
  pe_config *cfg;
  cr_assert_eq(pe_config_parse(ctx, BASE, "r.ini", NULL, &cfg), 0, "%s", pe_ctx_error(ctx));
  pe_workload *w;
  cr_assert_eq(pe_workload_build(ctx, cfg, &w), 0, "%s", pe_ctx_error(ctx));
  pe_result *r;
  cr_assert_eq(pe_run(ctx, w, cfg, "reference", &r), 0, "%s", pe_ctx_error(ctx));
  char path[512];
  snprintf(path, sizeof path, "%s/report.json", tmpdir);
  cr_assert_eq(pe_report_write(ctx, cfg, w, (const pe_result *const *)&r, 1, PE_FORMAT_JSON, path), 0);
  FILE *fp = fopen(path, "r");
  char buf[8192] = "";
  fread(buf, 1, sizeof buf - 1, fp);
  fclose(fp);
  cr_expect(strstr(buf, "\"results\": ["), "%s", buf);
  cr_expect(strstr(buf, "\"status\": \"ok\""), "%s", buf);
  cr_expect(strstr(buf, "\"time_ms\": {\"min\": "), "%s", buf);
  /* A report into a missing directory fails and leaves nothing behind. */
  snprintf(path, sizeof path, "%s/missing/report.json", tmpdir);
  cr_expect_eq(pe_report_write(ctx, cfg, w, (const pe_result *const *)&r, 1, PE_FORMAT_CSV, path), PE_EIO);
  pe_result_free(r);
  pe_workload_free(w);
  pe_config_free(cfg);
  pe_ctx_free(ctx);
}

/* ---- contexts in threads ---------------------------------------------- */
typedef struct job {
  const char *text;
  float first;
  int rc;
} job;

static void *run_job(void *arg) {
  job *j = arg;
  pe_ctx *ctx;
  pe_ctx_new(&ctx);
  pe_config *cfg;
  pe_workload *w;
  pe_result *r = NULL;
  j->rc = pe_config_parse(ctx, j->text, "t.ini", NULL, &cfg);
  if (!j->rc) j->rc = pe_workload_build(ctx, cfg, &w);
  if (!j->rc) j->rc = pe_run(ctx, w, cfg, "reference", &r);
  if (!j->rc) j->first = r->output[r->output_len - 1];
  pe_result_free(r);
  if (!j->rc) pe_workload_free(w), pe_config_free(cfg);
  pe_ctx_free(ctx);
  return NULL;
}

Test(threads, two_contexts_match_sequential) {
  job a = {"[workload]\nhead_dim=16\nseq_len=64\nq_heads=2\n[scheme]\nplugin=rope\n[run]\nseed=1\n", 0, -1};
  job b = {"[workload]\nhead_dim=32\nseq_len=48\nwindow=5\n[scheme]\nplugin=none\n[run]\nseed=2\n", 0, -1};
  job a1 = a, b1 = b;
  run_job(&a1);
  run_job(&b1);
  pthread_t ta, tb;
  pthread_create(&ta, NULL, run_job, &a);
  pthread_create(&tb, NULL, run_job, &b);
  pthread_join(ta, NULL);
  pthread_join(tb, NULL);
  cr_expect_eq(a.rc, 0);
  cr_expect_eq(b.rc, 0);
  cr_expect_eq(a.first, a1.first);
  cr_expect_eq(b.first, b1.first);
}

/* ---- [scheme.NAME] sections ---------------------------------------------- */
Test(config, stray_scheme_section) {
  expect_config_error(with("[scheme.yarn]\nfactor = 4\n"), PE_ECONFIG,
                      "bad.ini:7: [scheme.yarn] applies only when [scheme] plugin = yarn", NULL);
}
Test(config, scheme_section_applies_to_its_plugin) {
  pe_ctx *ctx = pe_test_ctx();
  pe_config *cfg;
  cr_assert_eq(pe_config_parse(ctx, "[workload]\nhead_dim=8\nseq_len=4\n[scheme]\nplugin=rope\n"
                               "[scheme.rope]\nbase = 100\n", "s.ini", NULL, &cfg), 0, "%s", pe_ctx_error(ctx));
  pe_workload *w;
  cr_assert_eq(pe_workload_build(ctx, cfg, &w), 0, "%s", pe_ctx_error(ctx));
  cr_expect_float_eq(pe_workload_get_info(w)->tables->inv_freq[2], 0.1, 1e-15);
  pe_workload_free(w);
  pe_config_free(cfg);
  pe_ctx_free(ctx);
}
Test(config, key_in_both_scheme_sections) {
  expect_config_error(with("base = 10\n[scheme.rope]\nbase = 100\n"), PE_ECONFIG,
                      "[scheme.rope] base is also set in [scheme] on line 6", NULL);
}

/* ---- runners and caller-provided inputs -------------------------------- */
Test(run, runner_with_caller_inputs_matches_pe_run) {
  pe_ctx *ctx = pe_test_ctx();
  pe_config *cfg;
  cr_assert_eq(pe_config_parse(ctx, "[workload]\nhead_dim=16\nseq_len=20\nq_heads=2\nkv_heads=1\n"
                               "[scheme]\nplugin=rope\n", "r.ini", NULL, &cfg), 0, "%s", pe_ctx_error(ctx));
  pe_workload *w;
  cr_assert_eq(pe_workload_build(ctx, cfg, &w), 0, "%s", pe_ctx_error(ctx));
  float q[2 * 20 * 16], kv[20 * 16];
  for (int i = 0; i < 2 * 20 * 16; i++) q[i] = (float)((i * 37) % 11) / 11.0f - 0.5f;
  for (int i = 0; i < 20 * 16; i++) kv[i] = (float)((i * 53) % 13) / 13.0f - 0.5f;
  cr_assert_eq(pe_workload_set_inputs(ctx, w, q, kv, kv), 0, "%s", pe_ctx_error(ctx));
  pe_runner *rn;
  cr_assert_eq(pe_runner_open(ctx, cfg, "reference", &rn), 0, "%s", pe_ctx_error(ctx));
  float out[2 * 20 * 16];
  cr_assert_eq(pe_runner_run(rn, w, out, NULL), 0, "%s", pe_ctx_error(ctx));
  cr_expect_str_eq(pe_runner_device(rn)->driver, "libpe reference");
  pe_result *r;
  cr_assert_eq(pe_run(ctx, w, cfg, "reference", &r), 0, "%s", r->message);
  cr_expect_arr_eq(out, r->output, sizeof out);
  cr_expect_eq(pe_workload_set_inputs(ctx, w, q, NULL, kv), PE_EINVAL);
  pe_result_free(r);
  pe_runner_close(rn);
  pe_workload_free(w);
  pe_config_free(cfg);
  pe_ctx_free(ctx);
}

Test(run, tables_only_workload) {
  pe_ctx *ctx = pe_test_ctx();
  pe_config *cfg;
  /* 2^30 keys x 64 heads x 128 dims: far beyond memory, yet tables are cheap. */
  cr_assert_eq(pe_config_parse(ctx, "[workload]\nhead_dim=128\nseq_len=1073741824\nq_heads=64\n"
                               "[scheme]\nplugin=rope\n", "t.ini", NULL, &cfg), 0, "%s", pe_ctx_error(ctx));
  pe_workload *w;
  cr_assert_eq(pe_workload_build_tables(ctx, cfg, &w), 0, "%s", pe_ctx_error(ctx));
  cr_expect_float_eq(pe_workload_get_info(w)->tables->inv_freq[0], 1.0, 1e-15);
  pe_result *r;
  cr_expect_eq(pe_run(ctx, w, cfg, "reference", &r), PE_ESTATE);
  cr_expect(strstr(r->message, "only the scheme's tables"), "%s", r->message);
  pe_result_free(r);
  pe_workload_free(w);
  pe_config_free(cfg);
  pe_ctx_free(ctx);
}

/* Reports to a FIFO (or /dev/null) are written in place: an atomic rename
 * would replace the special file with a regular one. */
#include <sys/stat.h>
#include <sys/wait.h>
Test(run, report_to_fifo_keeps_the_fifo) {
  make_tmpdir();
  char fifo[512];
  snprintf(fifo, sizeof fifo, "%s/fifo", tmpdir);
  cr_assert_eq(mkfifo(fifo, 0600), 0);
  pid_t child = fork();
  if (child == 0) { /* drain the FIFO */
    FILE *fp = fopen(fifo, "r");
    char buf[4096];
    while (fp && fread(buf, 1, sizeof buf, fp) > 0) {}
    _exit(0);
  }
  pe_ctx *ctx = pe_test_ctx();
  pe_config *cfg;
  cr_assert_eq(pe_config_parse(ctx, BASE, "f.ini", NULL, &cfg), 0);
  pe_workload *w;
  cr_assert_eq(pe_workload_build(ctx, cfg, &w), 0);
  pe_result *r;
  cr_assert_eq(pe_run(ctx, w, cfg, "reference", &r), 0);
  cr_expect_eq(pe_report_write(ctx, cfg, w, (const pe_result *const *)&r, 1, PE_FORMAT_CSV, fifo), 0,
               "%s", pe_ctx_error(ctx));
  waitpid(child, NULL, 0);
  struct stat st;
  cr_expect(stat(fifo, &st) == 0 && S_ISFIFO(st.st_mode), "the FIFO was replaced");
  cr_expect_str_eq(pe_config_get(cfg, "scheme", "plugin"), "rope");
  cr_expect_null(pe_config_get(cfg, "scheme", "base"));
  pe_result_free(r);
  pe_workload_free(w);
  pe_config_free(cfg);
  pe_ctx_free(ctx);
}

/* Atomic writes create files as fopen would (0666 less the umask) and keep
 * the permission bits of a file they replace (mkstemp alone gave 0600). */
static int write_x(void *user, FILE *fp) { return fputs(user, fp) < 0; }

static mode_t written_mode(pe_ctx *ctx, const char *path) {
  cr_assert_eq(pe_write_atomic(ctx, path, write_x, "x\n"), 0, "%s", pe_ctx_error(ctx));
  struct stat st;
  cr_assert_eq(stat(path, &st), 0);
  return st.st_mode & 07777;
}

/* A writer returning a non-code (1) fails with PE_EIO and a message,
 * to a file and to stdout (path NULL) alike. */
static int fail_quietly(void *user, FILE *fp) {
  (void)fp;
  return *(int *)user;
}

Test(run, atomic_write_failing_writer_is_pe_eio_for_stdout_too) {
  make_tmpdir();
  pe_ctx *ctx = pe_test_ctx();
  char path[512];
  snprintf(path, sizeof path, "%s/w.txt", tmpdir);
  int one = 1, config = PE_ECONFIG;
  cr_expect_eq(pe_write_atomic(ctx, path, fail_quietly, &one), PE_EIO);
  cr_expect(strstr(pe_ctx_error(ctx), "the writer failed"), "%s", pe_ctx_error(ctx));
  cr_expect_eq(pe_write_atomic(ctx, NULL, fail_quietly, &one), PE_EIO);
  cr_expect(strstr(pe_ctx_error(ctx), "stdout"), "%s", pe_ctx_error(ctx));
  cr_expect(strstr(pe_ctx_error(ctx), "the writer failed"), "%s", pe_ctx_error(ctx));
  cr_expect_eq(pe_write_atomic(ctx, NULL, fail_quietly, &config), PE_ECONFIG);
  cr_expect_eq(pe_write_atomic(ctx, path, fail_quietly, &config), PE_ECONFIG);
  pe_ctx_free(ctx);
}

Test(run, atomic_write_mode_follows_umask_and_the_replaced_file) {
  make_tmpdir();
  pe_ctx *ctx = pe_test_ctx();
  char path[512];
  snprintf(path, sizeof path, "%s/a.csv", tmpdir);
  mode_t old = umask(022);
  cr_expect_eq(written_mode(ctx, path), 0644, "new file, umask 022");
  cr_assert_eq(chmod(path, 0640), 0);
  cr_expect_eq(written_mode(ctx, path), 0640, "replaced file keeps its bits");
  snprintf(path, sizeof path, "%s/b.npy", tmpdir);
  umask(077);
  float v = 1;
  uint64_t shape = 1;
  cr_assert_eq(pe_npy_write(ctx, path, &v, 1, &shape), 0, "%s", pe_ctx_error(ctx));
  struct stat st;
  cr_assert_eq(stat(path, &st), 0);
  cr_expect_eq(st.st_mode & 07777, 0600, "new file, umask 077");
  umask(002);
  cr_expect_eq(written_mode(ctx, path), 0600, "replaced file keeps its bits whatever the umask");
  umask(old);
  pe_ctx_free(ctx);
}

Test(config, bare_backend_section_means_its_plugin) {
  pe_ctx *ctx = pe_test_ctx();
  pe_config *cfg;
  cr_assert_eq(pe_config_parse(ctx, with("[backend.reference]\n[backend.fast]\nplugin = reference\n"),
                               "b.ini", NULL, &cfg), 0, "%s", pe_ctx_error(ctx));
  cr_expect_eq(pe_config_backend_count(cfg), 2);
  cr_expect_str_eq(pe_config_backend_plugin(cfg, 0), "reference");
  cr_expect_str_eq(pe_config_backend_label(cfg, 1), "fast");
  pe_config_free(cfg);
  pe_ctx_free(ctx);
  expect_config_error(with("[backend]\n"), PE_ECONFIG, "bad.ini:6: [backend] needs 'plugin = NAME'", NULL);
}
