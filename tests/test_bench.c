/* pe-bench's parts: sweep expansion through the public API (shape, order,
 * per-scheme sections, '-', errors naming the [sweep] line, key and value,
 * totality on garbage), the JSON reader/writer round trip and the reader's
 * strictness, compare's regression rule, the text tables' columns. */
#include "helpers.h"

#include <criterion/redirect.h>

#include "bench.h"

#include <unistd.h>

/* ---- sweeps ---------------------------------------------------------------- */
#define BASE                 \
  "[workload]\n"             \
  "head_dim = 8\n"           \
  "seq_len = 16\n"           \
  "q_heads = 2\n"            \
  "[scheme]\n"               \
  "plugin = rope\n"          \
  "[run]\n"                  \
  "iterations = 1\n"         \
  "warmup = 0\n"

static pe_config *parse(pe_ctx *ctx, const char *text) {
  pe_config *cfg = NULL;
  cr_assert_eq(pe_config_parse(ctx, text, "sweep.ini", NULL, &cfg), 0, "%s", pe_ctx_error(ctx));
  return cfg;
}

static pe_sweep *expand(pe_ctx *ctx, const pe_config *cfg) {
  pe_sweep *sw = NULL;
  cr_assert_eq(pe_sweep_expand(ctx, cfg, &sw), 0, "%s", pe_ctx_error(ctx));
  return sw;
}

static void expect_label(const pe_sweep *sw, size_t cell, const char *want) {
  char buf[256];
  size_t n = pe_sweep_cell_label(sw, cell, buf, sizeof buf);
  cr_expect_str_eq(buf, want, "cell %zu", cell);
  cr_expect_eq(n, strlen(want));
}

Test(sweep, cartesian_product_first_key_slowest) {
  pe_ctx *ctx = pe_test_ctx();
  pe_config *cfg = parse(ctx, BASE "[scheme.pi]\nfactor = 2\n[sweep]\nseq_len = 16 32 64\n"
                                   "scheme.plugin = rope\n  pi\nbackend = reference ref2\n");
  pe_sweep *sw = expand(ctx, cfg);
  cr_expect_eq(pe_sweep_cell_count(sw), 6);
  cr_expect_eq(pe_sweep_key_count(sw), 2);
  cr_expect_str_eq(pe_sweep_key(sw, 0), "seq_len");
  cr_expect_str_eq(pe_sweep_key(sw, 1), "scheme.plugin");
  cr_expect_null(pe_sweep_key(sw, 2));
  expect_label(sw, 0, "seq_len=16 scheme.plugin=rope");
  expect_label(sw, 1, "seq_len=16 scheme.plugin=pi");
  expect_label(sw, 5, "seq_len=64 scheme.plugin=pi");
  cr_expect_null(pe_sweep_value(sw, 6, 0));
  cr_expect_eq(pe_sweep_backend_count(sw), 2);
  cr_expect_str_eq(pe_sweep_backend(sw, 1), "ref2");
  cr_expect_null(pe_sweep_backend(sw, 2));
  pe_config *cell = NULL;
  cr_expect_eq(pe_sweep_cell(ctx, sw, 6, &cell), PE_EINVAL);
  cr_expect_null(cell);
  pe_sweep_free(sw);
  pe_config_free(cfg);
  pe_ctx_free(ctx);
}

/* Build cell `c` and its workload; returns the workload (caller frees). */
static pe_workload *cell_workload(pe_ctx *ctx, const pe_sweep *sw, size_t c, pe_config **cell) {
  cr_assert_eq(pe_sweep_cell(ctx, sw, c, cell), 0, "%s", pe_ctx_error(ctx));
  pe_workload *w = NULL;
  cr_assert_eq(pe_workload_build(ctx, *cell, &w), 0, "%s", pe_ctx_error(ctx));
  return w;
}

Test(sweep, cells_carry_their_values_and_scheme_sections) {
  pe_ctx *ctx = pe_test_ctx();
  pe_config *cfg = parse(ctx, BASE "[scheme.pi]\nfactor = 2\n[scheme.yarn]\nfactor = 4\n"
                                   "original_max_position_embeddings = 8\n"
                                   "[sweep]\nscheme.plugin = rope pi yarn\nworkload.seq_len = 32\n");
  pe_sweep *sw = expand(ctx, cfg);
  cr_assert_eq(pe_sweep_cell_count(sw), 3);
  const char *want[] = {"rope", "pi", "yarn"};
  for (size_t c = 0; c < 3; c++) {
    pe_config *cell;
    pe_workload *w = cell_workload(ctx, sw, c, &cell);
    const pe_workload_info *in = pe_workload_get_info(w);
    cr_expect_str_eq(in->scheme, want[c]);
    cr_expect_eq(in->kv_len, 32, "workload.seq_len is the bare key seq_len");
    cr_expect_str_eq(pe_config_text(cell), pe_config_text(cfg), "the verbatim text is the base's");
    if (c == 1) cr_expect(strstr(in->scheme_note, "/ 2") != NULL, "pi factor 2: %s", in->scheme_note);
    pe_workload_free(w);
    pe_config_free(cell);
  }
  cr_expect_str_eq(pe_sweep_key(sw, 1), "seq_len");
  pe_sweep_free(sw);
  pe_config_free(cfg);
  pe_ctx_free(ctx);
}

Test(sweep, order_of_keys_never_matters) {
  pe_ctx *ctx = pe_test_ctx();
  /* q_len = 64 is only valid with seq_len = 64, set by the later key. */
  pe_config *cfg = parse(ctx, BASE "[sweep]\nq_len = 64\nseq_len = 64\n");
  pe_sweep *sw = expand(ctx, cfg);
  pe_config *cell;
  pe_workload *w = cell_workload(ctx, sw, 0, &cell);
  cr_expect_eq(pe_workload_get_info(w)->q_len, 64);
  pe_workload_free(w);
  pe_config_free(cell);
  pe_sweep_free(sw);
  pe_config_free(cfg);
  pe_ctx_free(ctx);
}

Test(sweep, dash_removes_the_key) {
  pe_ctx *ctx = pe_test_ctx();
  pe_config *cfg = parse(ctx, BASE "[sweep]\nq_len = 1 -\n");
  pe_sweep *sw = expand(ctx, cfg);
  uint64_t want[] = {1, 16};
  for (size_t c = 0; c < 2; c++) {
    pe_config *cell;
    pe_workload *w = cell_workload(ctx, sw, c, &cell);
    cr_expect_eq(pe_workload_get_info(w)->q_len, want[c], "cell %zu: decode then prefill", c);
    pe_workload_free(w);
    pe_config_free(cell);
  }
  pe_sweep_free(sw);
  pe_config_free(cfg);
  pe_ctx_free(ctx);
}

Test(sweep, without_sweep_one_cell_and_base_workload_builds) {
  pe_ctx *ctx = pe_test_ctx();
  pe_config *plain = parse(ctx, BASE);
  pe_sweep *sw = expand(ctx, plain);
  cr_expect_eq(pe_sweep_cell_count(sw), 1);
  cr_expect_eq(pe_sweep_key_count(sw), 0);
  expect_label(sw, 0, "");
  pe_config *cell;
  pe_workload *w = cell_workload(ctx, sw, 0, &cell);
  pe_workload_free(w);
  pe_config_free(cell);
  pe_sweep_free(sw);
  /* A config with a [sweep] builds its base workload. */
  pe_config *swept = parse(ctx, BASE "[sweep]\nseq_len = 32 64\n");
  cr_assert_eq(pe_workload_build(ctx, swept, &w), 0, "%s", pe_ctx_error(ctx));
  cr_expect_eq(pe_workload_get_info(w)->kv_len, 16);
  pe_workload_free(w);
  pe_config_free(swept);
  pe_config_free(plain);
  pe_ctx_free(ctx);
}

static void expect_expand_error(const char *sweep, int code, const char *needle) {
  pe_ctx *ctx = pe_test_ctx();
  char text[4096];
  snprintf(text, sizeof text, BASE "[sweep]\n%s", sweep);
  pe_config *cfg = parse(ctx, text);
  pe_sweep *sw = (pe_sweep *)1;
  cr_expect_eq(pe_sweep_expand(ctx, cfg, &sw), code, "%s: %s", sweep, pe_ctx_error(ctx));
  cr_expect_null(sw);
  cr_expect(strstr(pe_ctx_error(ctx), needle) != NULL, "'%s' lacks '%s'", pe_ctx_error(ctx), needle);
  cr_expect(strstr(pe_ctx_error(ctx), "sweep.ini:") != NULL, "names the file: %s", pe_ctx_error(ctx));
  pe_config_free(cfg);
  pe_ctx_free(ctx);
}

Test(sweep, shape_errors) {
  expect_expand_error("seq_len =\n", PE_ECONFIG, "[sweep] seq_len = : no values");
  expect_expand_error("seq_len = 16 32 16\n", PE_ECONFIG, "'16' is listed twice");
  expect_expand_error("backend = reference reference\n", PE_ECONFIG, "'reference' is listed twice");
  expect_expand_error("backend.x.threads = 1 2\n", PE_ECONFIG, "not a sweepable key");
  expect_expand_error("sweep.seq_len = 1\n", PE_ECONFIG, "not a sweepable key");
  expect_expand_error("workload. = 1\n", PE_ECONFIG, "not a sweepable key");
  expect_expand_error("scheme.yarn.plugin = 1\n", PE_ECONFIG, "has no plugin key");
  expect_expand_error("seq_len = 16\nworkload.seq_len = 32\n", PE_ECONFIG,
                      "sweeps seq_len, already swept on line");
  expect_expand_error("batch = 1 2 3 4 5 6 7 8 9 10\nq_heads = 1 2 3 4 5 6 7 8 9 10\n"
                      "seq_len = 1 2 3 4 5 6 7 8 9 10\nhead_dim = 2 4 6 8 10 12 14 16 18 20\n"
                      "run.seed = 1 2 3 4 5 6 7 8 9 10 11\n",
                      PE_ELIMIT, "more than 100000 cells");
}

static void expect_cell_error(const char *extra, size_t cell, int code, const char *needle) {
  pe_ctx *ctx = pe_test_ctx();
  char text[4096];
  snprintf(text, sizeof text, BASE "%s", extra);
  pe_config *cfg = parse(ctx, text);
  pe_sweep *sw = expand(ctx, cfg);
  pe_config *c = (pe_config *)1;
  cr_expect_eq(pe_sweep_cell(ctx, sw, cell, &c), code, "%s", pe_ctx_error(ctx));
  cr_expect_null(c);
  cr_expect(strstr(pe_ctx_error(ctx), needle) != NULL, "'%s' lacks '%s'", pe_ctx_error(ctx), needle);
  pe_sweep_free(sw);
  pe_config_free(cfg);
  pe_ctx_free(ctx);
}

Test(sweep, invalid_values_name_the_sweep_line_key_and_value) {
  /* line 11 of BASE + "[sweep]" is the first [sweep] key */
  expect_cell_error("[sweep]\nseq_len = 16 0\n", 1, PE_ECONFIG,
                    "sweep.ini: [sweep] cell 2 of 2 (seq_len=0): sweep.ini:11: [workload] seq_len = 0: out of range");
  expect_cell_error("[sweep]\nrun.seed = 1\nscheme.base = 10 -5\n", 1, PE_ECONFIG,
                    "(run.seed=1 scheme.base=-5): sweep.ini:12: [scheme] base = -5: out of range");
  expect_cell_error("[sweep]\nseq_lenn = 16\n", 0, PE_ECONFIG, "sweep.ini:11: [workload] unknown key 'seq_lenn'");
  expect_cell_error("[sweep]\nscheme.plugin = rope nosuch\n", 1, PE_ENOTFOUND,
                    "(scheme.plugin=nosuch): sweep.ini: [scheme] plugin = nosuch: no scheme plugin 'nosuch'");
  /* accepted by the parameter's range, refused by the scheme itself */
  expect_cell_error("[sweep]\nscheme.rotary_dim = 4 12\n", 1, PE_ESCHEME, "(scheme.rotary_dim=12): sweep.ini: [scheme] rope:");
  expect_cell_error("[scheme.pi]\nfactor = 0.5\n[sweep]\nscheme.plugin = rope pi\n", 1, PE_ECONFIG,
                    "[scheme.pi] factor = 0.5: out of range");
  expect_cell_error("[sweep]\nq_len = 32\n", 0, PE_ECONFIG, "q_len = 32 exceeds seq_len = 16");
}

/* Random [sweep] sections from fragments: expansion and every cell either
 * work or fail with a message; never crash (run under ASan in CI). */
Test(sweep, total_on_garbage) {
  static const char *const keys[] = {"seq_len", "scheme.plugin", "scheme.base", "run.seed", "backend",
                                     "q_len", "x", ".", "scheme.", "scheme.pi.factor", "inputs.q",
                                     "workload.window", "scheme.a.b.c", "=", "run.tolerance"};
  static const char *const words[] = {"1", "-", "0", "16", "rope", "pi", "1e400", "-1", "nan",
                                      "\xff\xfe", "x=y", "16.5", "  ", "99999999999999999999"};
  pe_ctx *ctx = pe_test_ctx();
  unsigned seed = 12345;
  for (int iter = 0; iter < 300; iter++) {
    char text[2048] = BASE "[sweep]\n";
    for (int line = 0, lines = 1 + (int)(rand_r(&seed) % 4); line < lines; line++) {
      size_t n = strlen(text);
      n += (size_t)snprintf(text + n, sizeof text - n, "%s =", keys[rand_r(&seed) % 15]);
      for (int w = 0, nw = (int)(rand_r(&seed) % 4); w < nw; w++)
        n += (size_t)snprintf(text + n, sizeof text - n, " %s", words[rand_r(&seed) % 14]);
      snprintf(text + n, sizeof text - n, "\n");
    }
    pe_config *cfg = NULL;
    if (pe_config_parse(ctx, text, "garbage.ini", NULL, &cfg) != 0) continue;
    pe_sweep *sw = NULL;
    if (pe_sweep_expand(ctx, cfg, &sw) == 0) {
      for (size_t c = 0; c < pe_sweep_cell_count(sw) && c < 8; c++) {
        pe_config *cell = NULL;
        if (pe_sweep_cell(ctx, sw, c, &cell) != 0) cr_expect(pe_ctx_error(ctx)[0] != '\0');
        pe_config_free(cell);
      }
      pe_sweep_free(sw);
    } else {
      cr_expect(pe_ctx_error(ctx)[0] != '\0');
    }
    pe_config_free(cfg);
  }
  pe_ctx_free(ctx);
}

/* ---- JSON round trip ----------------------------------------------------------- */
static void fill_record(bench_rec *r, int i) {
  snprintf(r->backend, sizeof r->backend, "b%d \"quoted\" \\ tab\t", i);
  snprintf(r->plugin, sizeof r->plugin, "reference");
  snprintf(r->device, sizeof r->device, "caf\xc3\xa9 \xe2\x82\xac GPU");
  snprintf(r->status, sizeof r->status, "%s", i ? "failed" : "ok");
  snprintf(r->message, sizeof r->message, "line one\nline two \x01 latin1 \xe9");
  r->device_type = PE_DEVICE_GPU;
  r->t_min = 0.1, r->t_median = 1.0 / 3.0, r->t_max = 1e300, r->prepare_ms = 5e-324;
  r->gflops = 123.456789012345678, r->gbps = -0.0, r->max_abs_err = 1.9e-7, r->rms_err = 1e-8;
  r->tolerance = 2e-4, r->verified = true, r->verified_rows = 1ull << 40, r->total_rows = 7;
  r->frac_peak = 0.25, r->agree_max_abs = 0, r->iterations = 5, r->warmup = 1;
  r->has_work = true;
  snprintf(r->work.op, sizeof r->work.op, "attention");
  r->work.seq_len = 4096, r->work.q_len = 1, r->work.causal = true, r->work.flops = 1e12;
  snprintf(r->work.scheme, sizeof r->work.scheme, "yarn");
  snprintf(r->work.note, sizeof r->work.note, "s = 4");
  r->work.attention_factor = 1.1386294361119891;
  static double pos[] = {0, 512, 1023}, err[] = {0, 1e-7, 2e-7};
  r->err_pos = malloc(sizeof pos), r->err_max = malloc(sizeof err), r->n_err = 3;
  memcpy(r->err_pos, pos, sizeof pos), memcpy(r->err_max, err, sizeof err);
}

static void make_doc(bench_doc *d) {
  memset(d, 0, sizeof *d);
  bench_machine_describe(&d->machine);
  d->config_name = strdup("x.ini");
  d->config_text = strdup("[sweep]\nseq_len = 1 2\n; \"quoted\" \\ \xf0\x9f\x98\x80 caf\xe9 \xc3\n");
  d->keys = calloc(2, sizeof *d->keys);
  d->keys[d->n_keys++] = strdup("seq_len");
  d->keys[d->n_keys++] = strdup("scheme.plugin");
  for (int i = 0; i < 2; i++) fill_record(bench_doc_add_rec(d, i ? "seq_len=2 scheme.plugin=a=b" : "seq_len=1 scheme.plugin=rope"), i);
  bench_agree *a = bench_doc_add_agree(d, "seq_len=1 scheme.plugin=rope");
  snprintf(a->a, sizeof a->a, "x"), snprintf(a->b, sizeof a->b, "y");
  a->max_abs = 3e-3, a->rms = 1e-4, a->tolerance = 2e-4, a->ok = false;
  d->recs[0].saved_path = strdup("out/seq_len=1,scheme.plugin=rope/b0.npy");
  d->recs[0].saved_hash = 0xfedcba9876543210u;
  bench_gap *g = bench_doc_add_gap(d, "seq_len=2 scheme.plugin=a=b");
  snprintf(g->a, sizeof g->a, "x"), snprintf(g->b, sizeof g->b, "y");
  snprintf(g->why, sizeof g->why, "x was carried over by --resume and its output was not saved");
}

static void expect_same_rec(const bench_rec *a, const bench_rec *b) {
  cr_expect_str_eq(a->cell, b->cell);
  cr_expect_str_eq(a->backend, b->backend);
  cr_expect_str_eq(a->device, b->device);
  cr_expect_eq(b->device_type, a->device_type);
  cr_expect_eq(a->t_min, b->t_min);
  cr_expect_eq(a->t_median, b->t_median, "%.17g vs %.17g", a->t_median, b->t_median);
  cr_expect_eq(a->t_max, b->t_max);
  cr_expect_eq(a->prepare_ms, b->prepare_ms);
  cr_expect_eq(a->gflops, b->gflops);
  cr_expect_eq(a->verified_rows, b->verified_rows);
  cr_expect(isnan(b->device_ms) && isnan(b->frac_bandwidth) && isnan(b->agree_rms));
  cr_expect_eq(a->frac_peak, b->frac_peak);
  cr_expect_eq(a->work.seq_len, b->work.seq_len);
  cr_expect_eq(a->work.attention_factor, b->work.attention_factor);
  cr_expect_str_eq(a->work.scheme, b->work.scheme);
  cr_expect_eq(b->n_err, 3);
  cr_expect_eq(b->err_max[2], 2e-7);
}

Test(json, round_trip_is_exact) {
  bench_doc d, back;
  make_doc(&d);
  char path[] = "/tmp/pe-bench-json-XXXXXX";
  int fd = mkstemp(path);
  cr_assert(fd >= 0);
  FILE *fp = fdopen(fd, "w");
  cr_assert_eq(bench_write_json(fp, &d), 0);
  fclose(fp);
  char err[1024];
  cr_assert_eq(bench_read_json(path, &back, err, sizeof err), 0, "%s", err);
  cr_expect_str_eq(back.config_text, d.config_text);
  cr_expect_eq(back.n_keys, 2);
  cr_expect_str_eq(back.machine.cpu, d.machine.cpu);
  cr_assert_eq(back.n_recs, 2);
  expect_same_rec(&d.recs[0], &back.recs[0]);
  expect_same_rec(&d.recs[1], &back.recs[1]);
  /* a byte that is not UTF-8 (written \u00e9) comes back as that byte,
   * valid UTF-8 and control characters as they were */
  cr_expect_str_eq(back.recs[0].message, d.recs[0].message);
  cr_expect_str_eq(back.recs[0].device, d.recs[0].device);
  cr_assert_eq(back.n_agree, 1);
  cr_expect_eq(back.agree[0].max_abs, 3e-3);
  cr_expect(!back.agree[0].ok);
  cr_assert(back.recs[0].saved_path && !back.recs[1].saved_path);
  cr_expect_str_eq(back.recs[0].saved_path, d.recs[0].saved_path);
  cr_expect_eq(back.recs[0].saved_hash, d.recs[0].saved_hash);
  cr_assert_eq(back.n_gaps, 1);
  cr_expect_str_eq(back.gaps[0].cell, "seq_len=2 scheme.plugin=a=b");
  cr_expect_str_eq(back.gaps[0].b, "y");
  cr_expect_str_eq(back.gaps[0].why, d.gaps[0].why);
  unlink(path);
  bench_doc_free(&d);
  bench_doc_free(&back);
}

static char *slurp(const char *path) {
  FILE *fp = fopen(path, "rb");
  cr_assert(fp);
  static char buf[1 << 16];
  size_t n = fread(buf, 1, sizeof buf - 1, fp);
  fclose(fp);
  buf[n] = '\0';
  return strdup(buf);
}

/* RESULTS.md: a file read and written again (--resume) is unchanged, bytes
 * that are not UTF-8 included. */
Test(json, read_and_written_again_is_unchanged) {
  bench_doc d, back;
  make_doc(&d);
  char p1[] = "/tmp/pe-bench-rw1-XXXXXX", p2[] = "/tmp/pe-bench-rw2-XXXXXX", err[1024];
  int fd = mkstemp(p1);
  cr_assert(fd >= 0);
  FILE *fp = fdopen(fd, "w");
  cr_assert_eq(bench_write_json(fp, &d), 0);
  fclose(fp);
  cr_assert_eq(bench_read_json(p1, &back, err, sizeof err), 0, "%s", err);
  cr_expect_str_eq(back.config_text, d.config_text);
  fd = mkstemp(p2);
  cr_assert(fd >= 0);
  fp = fdopen(fd, "w");
  cr_assert_eq(bench_write_json(fp, &back), 0);
  fclose(fp);
  char *a = slurp(p1), *b = slurp(p2);
  cr_expect(strstr(a, "caf\\u00e9 \\u00c3") != NULL, "the lone bytes are escaped");
  cr_expect_str_eq(a, b);
  free(a);
  free(b);
  unlink(p1);
  unlink(p2);
  bench_doc_free(&d);
  bench_doc_free(&back);
}

static void expect_bad_json(const char *text, const char *needle) {
  char path[] = "/tmp/pe-bench-bad-XXXXXX";
  int fd = mkstemp(path);
  cr_assert(fd >= 0);
  cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
  close(fd);
  bench_doc d;
  char err[1024] = "";
  cr_expect_neq(bench_read_json(path, &d, err, sizeof err), 0, "accepted: %s", text);
  cr_expect(strstr(err, needle) != NULL, "'%s' lacks '%s'", err, needle);
  cr_expect(strstr(err, path) != NULL, "names the file: %s", err);
  unlink(path);
}

Test(json, reader_is_strict) {
  expect_bad_json("{\"results\": [],}", ":1:16: invalid JSON: expected a \"key\"");
  expect_bad_json("{\"results\": [NaN]}", "expected a value");
  expect_bad_json("{\"results\": [\"abc]}", "unterminated string");
  expect_bad_json("{\"results\": [\"\\x\"]}", "bad escape");
  expect_bad_json("{\"results\": [\"\\ud800\"]}", "unpaired UTF-16 surrogate");
  expect_bad_json("{\"results\": [01]}", "expected ',' or the end");
  expect_bad_json("{\"results\": []} x", "text after the document");
  expect_bad_json("[]", "not an object");
  expect_bad_json("{}", "results: expected an array of results");
  expect_bad_json("{\"results\": [{\"backend\": 1, \"status\": \"ok\"}]}", "results[0].backend: expected a string");
  expect_bad_json("{\"results\": [{\"backend\": \"a\", \"status\": \"ok\", \"time_ms\": {\"median\": \"1\"}}]}",
                  "time_ms.median: expected a number");
  expect_bad_json("{\"schema\": \"libpe-bench/9\", \"results\": []}", "schema: expected");
  expect_bad_json("{\"results\": [{\"backend\": \"a\", \"status\": \"ok\", \"saved_output\": "
                  "{\"path\": \"a.npy\", \"fnv1a64\": \"-123\"}}]}", "results[0].saved_output: expected");
  expect_bad_json("{\"results\": [], \"not_compared\": [1]}", "not_compared.[]: expected objects");
  char deep[300] = "{\"results\": ";
  for (int i = 0; i < 70; i++) strcat(deep, "[");
  expect_bad_json(deep, "nested deeper than 64");
}

/* Mutated documents (bytes flipped, cut short, spliced): read or refused
 * with a message, never a crash (ASan in CI). */
Test(json, total_on_mutations) {
  bench_doc d;
  make_doc(&d);
  char *text = NULL;
  size_t len = 0;
  FILE *mem = open_memstream(&text, &len);
  cr_assert_eq(bench_write_json(mem, &d), 0);
  fclose(mem);
  bench_doc_free(&d);
  char path[] = "/tmp/pe-bench-mut-XXXXXX";
  int fd = mkstemp(path);
  cr_assert(fd >= 0);
  close(fd);
  static const char bytes[] = "{}[]\",:0-e.tfn\\u\x01\xff ";
  unsigned seed = 7;
  for (int iter = 0; iter < 400; iter++) {
    char *m = strdup(text);
    size_t n = len;
    for (int k = 0, edits = 1 + (int)(rand_r(&seed) % 4); k < edits; k++)
      m[rand_r(&seed) % n] = bytes[rand_r(&seed) % (sizeof bytes - 1)];
    if (iter % 5 == 0) n = rand_r(&seed) % n;
    FILE *fp = fopen(path, "wb");
    fwrite(m, 1, n, fp);
    fclose(fp);
    char err[1024] = "";
    bench_doc back;
    if (bench_read_json(path, &back, err, sizeof err) == 0) bench_doc_free(&back);
    else cr_expect(strstr(err, path) != NULL, "message without the file: %s", err);
    free(m);
  }
  unlink(path);
  free(text);
}

Test(json, old_single_config_documents_read) {
  const char *old = "{\"libpe_version\": \"0.1.0\", \"results\": [{\"backend\": \"reference\", "
                    "\"status\": \"ok\", \"time_ms\": {\"min\": 1, \"median\": 2, \"max\": 3}, "
                    "\"device_time_ms\": null, \"gflops\": 2.1e0, \"max_abs_err\": 1.9E-07}]}";
  char path[] = "/tmp/pe-bench-old-XXXXXX";
  int fd = mkstemp(path);
  cr_assert_eq(write(fd, old, strlen(old)), (ssize_t)strlen(old));
  close(fd);
  bench_doc d;
  char err[1024];
  cr_assert_eq(bench_read_json(path, &d, err, sizeof err), 0, "%s", err);
  cr_expect_eq(d.n_recs, 1);
  cr_expect_str_eq(d.recs[0].cell, "");
  cr_expect_eq(d.recs[0].t_median, 2);
  cr_expect_eq(d.recs[0].max_abs_err, 1.9e-7);
  unlink(path);
  bench_doc_free(&d);
}

/* --resume: the old file's plugins join the new run's, each module once. */
Test(json, resumed_plugins_merge_without_duplicates) {
  bench_plugin rope = {.name = "rope", .kind = "scheme", .version = "1.0.0", .path = "/p/rope.so", .abi = 1};
  bench_plugin ref = {.name = "reference", .kind = "backend", .version = "1.0.0", .path = "/p/ref.so", .abi = 1};
  bench_plugin rope2 = rope;
  snprintf(rope2.version, sizeof rope2.version, "1.1.0");
  bench_plugin now[] = {rope}, old[] = {ref, rope, rope2, ref};
  bench_machine m = {.n_plugins = 1}, from = {.plugins = old, .n_plugins = 4};
  m.plugins = malloc(sizeof now);
  memcpy(m.plugins, now, sizeof now);
  bench_machine_merge_plugins(&m, &from);
  cr_assert_eq(m.n_plugins, 3, "rope, reference, and rope 1.1.0 (another module)");
  cr_expect_str_eq(m.plugins[0].name, "rope");
  cr_expect_str_eq(m.plugins[1].name, "reference");
  cr_expect_str_eq(m.plugins[2].version, "1.1.0");
  bench_machine_free(&m);
}

/* ---- compare ------------------------------------------------------------------- */
static void write_doc(const bench_doc *d, char *path) {
  int fd = mkstemp(path);
  cr_assert(fd >= 0);
  FILE *fp = fdopen(fd, "w");
  cr_assert_eq(bench_write_json(fp, d), 0);
  fclose(fp);
}

static void quiet(void) {
  cr_redirect_stdout();
  cr_redirect_stderr();
}

Test(compare, regressions_over_the_threshold, .init = quiet) {
  bench_doc a;
  make_doc(&a);
  snprintf(a.recs[1].status, sizeof a.recs[1].status, "ok");
  char pa[] = "/tmp/pe-bench-a-XXXXXX", pb[] = "/tmp/pe-bench-b-XXXXXX", pc[] = "/tmp/pe-bench-c-XXXXXX";
  write_doc(&a, pa);
  /* B: the same cells in another key order, one 10% slower */
  free(a.recs[0].cell);
  a.recs[0].cell = strdup("scheme.plugin=rope seq_len=1");
  a.recs[0].t_median *= 1.10;
  write_doc(&a, pb);
  char *same[] = {"compare", pa, pa}, *slow[] = {"compare", pa, pb};
  char *lax[] = {"compare", pa, pb, "--threshold", "15%"}, *bad[] = {"compare", pa, pb, "--threshold", "x"};
  cr_expect_eq(bench_compare(3, same), 0);
  cr_expect_eq(bench_compare(3, slow), 1, "10%% slower is a regression at 5%%");
  cr_expect_eq(bench_compare(5, lax), 0, "not at 15%%");
  cr_expect_eq(bench_compare(5, bad), 2);
  /* ok in A, failed in B */
  snprintf(a.recs[0].status, sizeof a.recs[0].status, "failed");
  write_doc(&a, pc);
  char *broke[] = {"compare", pa, pc, "--threshold", "15"};
  cr_expect_eq(bench_compare(5, broke), 1);
  unlink(pa);
  unlink(pb);
  unlink(pc);
  bench_doc_free(&a);
}

Test(compare, cells_match_in_any_order) {
  char *c = bench_cell_canonical("z=1 a=2 m=x=y");
  cr_expect_str_eq(c, "a=2 m=x=y z=1");
  free(c);
  c = bench_cell_canonical("");
  cr_expect_str_eq(c, "");
  free(c);
}

/* ---- text tables ------------------------------------------------------------- */
/* What `write` prints, from a temporary file. */
static char *printed(void (*write)(FILE *, const bench_doc *), const bench_doc *d) {
  char path[] = "/tmp/pe-bench-text-XXXXXX";
  int fd = mkstemp(path);
  cr_assert(fd >= 0);
  FILE *fp = fdopen(fd, "w");
  write(fp, d);
  fclose(fp);
  char *s = slurp(path);
  unlink(path);
  return s;
}

static void write_table(FILE *fp, const bench_doc *d) { cr_assert_eq(bench_write_table(fp, d), 0); }
static void write_matrix(FILE *fp, const bench_doc *d) { bench_print_matrix(fp, d, ""); }

/* Two backends given by path in one long directory (PLUGINS.md: -b
 * dir/a.so -b dir/b.so), both verified and compared. */
#define LONG_DIR "/tmp/review-c/a-directory-with-a-long-name/"
/* the 47 characters shortened from the left to 40, the file name kept */
#define FIT_A "...w-c/a-directory-with-a-long-name/a.so"
#define FIT_B "...w-c/a-directory-with-a-long-name/b.so"
static void paths_doc(bench_doc *d) {
  memset(d, 0, sizeof *d);
  d->config_name = strdup("x.ini");
  d->config_text = strdup("");
  for (int i = 0; i < 2; i++) {
    bench_rec *r = bench_doc_add_rec(d, "");
    snprintf(r->backend, sizeof r->backend, LONG_DIR "%s.so", i ? "b" : "a");
    snprintf(r->status, sizeof r->status, "ok");
    r->t_min = r->t_median = r->t_max = 1, r->verified = true, r->tolerance = 2e-4;
    r->max_abs_err = 1e-7, r->rms_err = 1e-8;
  }
  bench_agree *g = bench_doc_add_agree(d, "");
  snprintf(g->a, sizeof g->a, "%s", d->recs[0].backend);
  snprintf(g->b, sizeof g->b, "%s", d->recs[1].backend);
  g->max_abs = 1e-7, g->ok = true;
}

/* Each line that starts with `start` holds `part` (one such line at least). */
static void expect_lines(const char *text, const char *start, const char *part) {
  size_t found = 0, n = strlen(start);
  for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
    if (strncmp(p, start, n)) continue;
    const char *end = strchr(p, '\n');
    char line[1024];
    snprintf(line, sizeof line, "%.*s", end ? (int)(end - p) : (int)strlen(p), p);
    cr_expect(strstr(line, part), "'%s' lacks '%s'", line, part);
    found++;
  }
  cr_expect(found > 0, "no line starts with '%s' in\n%s", start, text);
}

Test(text, long_labels_keep_their_ends) {
  char buf[BENCH_LABEL_MAX + 1];
  cr_expect_str_eq(bench_fit(buf, sizeof buf, "reference", 12), "reference");
  cr_expect_str_eq(bench_fit(buf, sizeof buf, "/tmp/review-c/a.so", 12), "...ew-c/a.so");
  cr_expect_str_eq(bench_fit(buf, sizeof buf, "/d/caf\xc3\xa9.so", 8), "...\xc3\xa9.so", "not from inside é");
  cr_expect_eq(bench_label_width(3, 12), 12);
  cr_expect_eq(bench_label_width(30, 12), 30);
  cr_expect_eq(bench_label_width(63, 12), BENCH_LABEL_MAX);
}

Test(text, table_and_matrix_tell_backends_by_path_apart) {
  bench_doc d;
  paths_doc(&d);
  char *t = printed(write_table, &d);
  expect_lines(t, FIT_A " ok ", "1.00e-07");
  expect_lines(t, FIT_B " ok ", "1.00e-08");
  char head[128];
  snprintf(head, sizeof head, "%-40s %-11s ", "backend", "status");
  expect_lines(t, head, "max err");
  free(t);
  char *m = printed(write_matrix, &d);
  expect_lines(m, FIT_A " ", "1.0e-07/1.0e-08");
  expect_lines(m, FIT_B " ", "1.0e-07/0.0e+00");
  char cols[160];
  snprintf(cols, sizeof cols, "%-40s %s %s", "oracle", FIT_A, FIT_B);
  expect_lines(m, "  ", cols);
  free(m);
  bench_doc_free(&d);
}

/* A run that failed after timing (in fetch) was never verified: its errors
 * are "-", not 0. */
Test(text, unverified_errors_are_dashes) {
  bench_doc d;
  paths_doc(&d);
  bench_rec *r = &d.recs[1];
  snprintf(r->status, sizeof r->status, "failed");
  snprintf(r->message, sizeof r->message, "fetch: lost");
  r->verified = false, r->max_abs_err = r->rms_err = 0;
  char *t = printed(write_table, &d);
  expect_lines(t, FIT_B " failed ", "       -         -         -  -");
  expect_lines(t, FIT_A " ok ", "1.00e-07  1.00e-08");
  free(t);
  bench_doc_free(&d);
}

/* compare's backend column, like the table's. */
Test(compare, long_labels_keep_their_ends) {
  bench_doc d;
  paths_doc(&d);
  char pa[] = "/tmp/pe-bench-a-XXXXXX", out[] = "/tmp/pe-bench-out-XXXXXX";
  write_doc(&d, pa);
  int fd = mkstemp(out), saved = dup(1);
  cr_assert(fd >= 0 && saved >= 0);
  fflush(stdout);
  dup2(fd, 1);
  char *argv[] = {"compare", pa, pa};
  int rc = bench_compare(3, argv);
  fflush(stdout);
  dup2(saved, 1);
  close(saved);
  close(fd);
  cr_expect_eq(rc, 0);
  char *t = slurp(out);
  expect_lines(t, "     " FIT_A " ", "1.000");
  expect_lines(t, "     " FIT_B " ", "1.000");
  free(t);
  unlink(pa);
  unlink(out);
  bench_doc_free(&d);
}
