/* Reliability tests (issue 9): hard limits refused up front, hostile .npy
 * files, all-or-nothing config edits, a backend failing mid-run, and
 * contexts in threads.  See docs/RELIABILITY.md. */
#include "helpers.h"

#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- helpers -------------------------------------------------------------- */
/* A test that must stay fast (or must not block) dies with SIGALRM after
 * `seconds`: each Criterion test runs in its own process.  (Criterion's own
 * .timeout leaks in its parallel runner under LeakSanitizer.) */
static void deadline(unsigned seconds) { alarm(seconds); }

static const char *BASE_WORKLOAD = "[scheme]\nplugin = rope\n";

/* Parse `text` and build its workload: expect `code` and a message holding
 * each needle. */
static void expect_refused(const char *text, int code, const char *n1, const char *n2) {
  pe_ctx *ctx = pe_test_ctx();
  pe_config *cfg = NULL;
  pe_workload *w = NULL;
  int rc = pe_config_parse(ctx, text, "lim.ini", NULL, &cfg);
  if (rc == 0) rc = pe_workload_build(ctx, cfg, &w);
  cr_expect_eq(rc, code, "got %s: %s\nconfig:\n%s", pe_err_name(rc), pe_ctx_error(ctx), text);
  cr_expect_null(w);
  cr_expect(strstr(pe_ctx_error(ctx), n1), "message '%s' lacks '%s'", pe_ctx_error(ctx), n1);
  if (n2) cr_expect(strstr(pe_ctx_error(ctx), n2), "message '%s' lacks '%s'", pe_ctx_error(ctx), n2);
  pe_workload_free(w);
  pe_config_free(cfg);
  pe_ctx_free(ctx);
}

static char *workload(const char *keys) {
  static __thread char buf[4096];
  snprintf(buf, sizeof buf, "[workload]\n%s\n%s", keys, BASE_WORKLOAD);
  return buf;
}

/* ---- absurd values: refused by the config, before any allocation ------- */
Test(limits, zero_heads) {
  expect_refused(workload("head_dim = 8\nseq_len = 4\nq_heads = 0"), PE_ECONFIG, "q_heads = 0: out of range", ">= 1");
  expect_refused(workload("head_dim = 8\nseq_len = 4\nkv_heads = 0"), PE_ECONFIG, "kv_heads = 0: out of range", NULL);
  expect_refused(workload("head_dim = 8\nseq_len = 4\nbatch = 0"), PE_ECONFIG, "batch = 0: out of range", NULL);
}
Test(limits, zero_head_dim) {
  expect_refused(workload("head_dim = 0\nseq_len = 4"), PE_ECONFIG, "lim.ini:2: [workload] head_dim = 0: out of range",
                 "accepted: an integer >= 1 and <= 4096");
}
Test(limits, zero_and_negative_lengths) {
  expect_refused(workload("head_dim = 8\nseq_len = 0"), PE_ECONFIG, "seq_len = 0: out of range", NULL);
  expect_refused(workload("head_dim = 8\nseq_len = -4"), PE_ECONFIG, "seq_len = -4: out of range", NULL);
  expect_refused(workload("head_dim = 8\nseq_len = 4\nq_len = 0"), PE_ECONFIG, "q_len = 0: out of range", NULL);
}
Test(limits, seq_len_2_pow_40) {
  expect_refused(workload("head_dim = 8\nseq_len = 1099511627776"), PE_ECONFIG,
                 "seq_len = 1099511627776: out of range", "<= 1073741824");
  /* Written as a float, and beyond int64. */
  expect_refused(workload("head_dim = 8\nseq_len = 1.099511627776e12"), PE_ECONFIG, "out of range", NULL);
  expect_refused(workload("head_dim = 8\nseq_len = 1e30"), PE_ECONFIG, "seq_len = 1e30: too large", NULL);
  expect_refused(workload("head_dim = 8\nseq_len = 99999999999999999999999"), PE_ECONFIG, "too large", NULL);
}
Test(limits, huge_head_dim_and_positions) {
  expect_refused(workload("head_dim = 4097\nseq_len = 4"), PE_ECONFIG, "head_dim = 4097: out of range", NULL);
  expect_refused(workload("head_dim = 8\nseq_len = 4\nposition_offset = 4294967295"), PE_ECONFIG,
                 "exceeds 2^32 positions", NULL);
}

/* Through the API: pe_config_set refuses the value and leaves the config
 * as it was (all or nothing), so the workload still builds. */
Test(limits, seq_len_2_pow_40_via_config_set) {
  pe_ctx *ctx = pe_test_ctx();
  pe_config *cfg;
  cr_assert_eq(pe_config_parse(ctx, workload("head_dim = 8\nseq_len = 16"), "set.ini", NULL, &cfg), 0, "%s",
               pe_ctx_error(ctx));
  cr_expect_eq(pe_config_set(ctx, cfg, "workload", "seq_len", "1099511627776"), PE_ECONFIG);
  cr_expect(strstr(pe_ctx_error(ctx), "seq_len = 1099511627776: out of range"), "%s", pe_ctx_error(ctx));
  cr_expect_eq(pe_config_set(ctx, cfg, "workload", "q_heads", "0"), PE_ECONFIG);
  cr_expect_eq(pe_config_set(ctx, cfg, "workload", "no_such_key", "1"), PE_ECONFIG);
  cr_expect(strstr(pe_ctx_error(ctx), "unknown key 'no_such_key'"), "%s", pe_ctx_error(ctx));
  pe_workload *w;
  cr_assert_eq(pe_workload_build(ctx, cfg, &w), 0, "a refused set changed the config: %s", pe_ctx_error(ctx));
  cr_expect_eq(pe_workload_get_info(w)->kv_len, 16);
  cr_expect_eq(pe_workload_get_info(w)->q_heads, 1);
  pe_workload_free(w);
  cr_expect_eq(pe_config_set(ctx, cfg, NULL, "x", "1"), PE_EINVAL);
  pe_config_free(cfg);
  pe_ctx_free(ctx);
}

/* A backend section edited through pe_config_set takes effect (it used to
 * keep the plugin the file named: a silently ignored --set). */
Test(limits, config_set_backend_plugin_takes_effect) {
  pe_ctx *ctx = pe_test_ctx();
  pe_config *cfg;
  cr_assert_eq(pe_config_parse(ctx, "[workload]\nhead_dim=8\nseq_len=4\n[scheme]\nplugin=rope\n"
                               "[backend.fast]\nplugin = no-such-backend\n", "b.ini", NULL, &cfg), 0, "%s",
               pe_ctx_error(ctx));
  cr_expect_str_eq(pe_config_backend_plugin(cfg, 0), "no-such-backend");
  cr_assert_eq(pe_config_set(ctx, cfg, "backend.fast", "plugin", "reference"), 0, "%s", pe_ctx_error(ctx));
  cr_expect_str_eq(pe_config_backend_plugin(cfg, 0), "reference");
  cr_assert_eq(pe_config_set(ctx, cfg, "backend.extra", "plugin", "reference"), 0, "%s", pe_ctx_error(ctx));
  cr_expect_eq(pe_config_backend_count(cfg), 2);
  cr_expect_str_eq(pe_config_backend_label(cfg, 1), "extra");
  /* A bare [backend] without a plugin is refused, and undone. */
  cr_expect_eq(pe_config_set(ctx, cfg, "backend", "accumulate", "float"), PE_ECONFIG);
  cr_expect_eq(pe_config_backend_count(cfg), 2);
  pe_workload *w;
  cr_assert_eq(pe_workload_build(ctx, cfg, &w), 0, "%s", pe_ctx_error(ctx));
  pe_result *r;
  cr_expect_eq(pe_run(ctx, w, cfg, "fast", &r), 0, "%s", pe_ctx_error(ctx));
  cr_expect_str_eq(r->backend, "reference");
  pe_result_free(r);
  pe_workload_free(w);
  pe_config_free(cfg);
  pe_ctx_free(ctx);
}

/* Hostile configs stay cheap: too many keys or one endless list are refused
 * at the limit instead of parsing for minutes (lookups are linear). */
Test(limits, config_too_many_keys) {
  deadline(20);
  size_t cap = 6000 * 16 + 256;
  char *text = malloc(cap);
  size_t n = (size_t)snprintf(text, cap, "[workload]\nhead_dim = 8\nseq_len = 4\n[scheme]\nplugin = rope\n[run]\n");
  for (int i = 0; i < 6000; i++) n += (size_t)snprintf(text + n, cap - n, "k%d = 1\n", i);
  expect_refused(text, PE_ELIMIT, "lim.ini:4100: more than 4096 keys", NULL);
  free(text);
}
Test(limits, config_value_too_long) {
  deadline(20);
  size_t cap = 3000 * 200 + 256;
  char *text = malloc(cap);
  size_t n = (size_t)snprintf(text, cap, "[workload]\nhead_dim = 8\nseq_len = 4\n[scheme]\nplugin = longrope\n"
                              "short_factor = 1\n");
  for (int i = 0; i < 3000; i++) n += (size_t)snprintf(text + n, cap - n, "  %0180d\n", i);
  expect_refused(text, PE_ELIMIT, "[scheme] short_factor: value longer than 256 KiB (continued from line 6)", NULL);
  free(text);
}

/* ---- max_memory: estimated before allocating --------------------------- */
Test(limits, max_memory_refuses_before_allocating) {
  /* 2^20 x 4096 x 4 bytes = 16 GiB of K alone, refused under a 1 GiB limit
   * (if it were allocated, this test would take a while). */
  expect_refused(workload("head_dim = 4096\nseq_len = 1048576\n[run]\nmax_memory = 1G"), PE_ELIMIT,
                 "GiB of host memory", "more than max_memory = 1.0 GiB");
  /* Units in the message follow the limit. */
  expect_refused(workload("head_dim = 64\nseq_len = 65536\n[run]\nmax_memory = 512K"), PE_ELIMIT,
                 "max_memory = 512.0 KiB", "[run] max_memory raises the limit");
}
Test(limits, max_memory_admits_small_workloads) {
  pe_ctx *ctx = pe_test_ctx();
  pe_config *cfg;
  cr_assert_eq(pe_config_parse(ctx, workload("head_dim = 8\nseq_len = 16\n[run]\nmax_memory = 64K"), "ok.ini",
                               NULL, &cfg), 0, "%s", pe_ctx_error(ctx));
  pe_workload *w;
  cr_expect_eq(pe_workload_build(ctx, cfg, &w), 0, "%s", pe_ctx_error(ctx));
  pe_workload_free(w);
  pe_config_free(cfg);
  pe_ctx_free(ctx);
}
/* op = encode keeps K' and the oracle's float64 copies too: the estimate
 * must count them (it used to count attention's buffers only). */
Test(limits, max_memory_counts_encode_outputs) {
  /* K and V: 4 x 2^16 x 64 floats = 64 MiB each; encode adds K' twice and
   * the oracle's float64 Q' and K' (another ~192 MiB). */
  const char *keys = "op = encode\nhead_dim = 64\nseq_len = 65536\nq_len = 1\nkv_heads = 4\nq_heads = 4\n"
                     "[run]\nmax_memory = 256M";
  expect_refused(workload(keys), PE_ELIMIT, "max_memory = 256.0 MiB", NULL);
}
Test(limits, max_memory_syntax) {
  expect_refused(workload("head_dim = 8\nseq_len = 4\n[run]\nmax_memory = lots"), PE_ECONFIG,
                 "[run] max_memory = lots: not a size", "8G");
  expect_refused(workload("head_dim = 8\nseq_len = 4\n[run]\nmax_memory = -1G"), PE_ECONFIG, "not a size", NULL);
  expect_refused(workload("head_dim = 8\nseq_len = 4\n[run]\nmax_memory = 99999999T"), PE_ECONFIG, "not a size",
                 NULL);
}
Test(limits, shape_product_overflows_64_bits) {
  /* Every factor within its own limit, the product beyond 2^64 bytes. */
  expect_refused(workload("head_dim = 4096\nseq_len = 1073741824\nq_heads = 65536\nkv_heads = 65536\n"
                          "batch = 65536\n[run]\nmax_memory = 16000000T"),
                 PE_ELIMIT, "overflows 64 bits", "batch 65536, heads 65536/65536, seq_len 1073741824");
}

/* The visible-pair count (flops) is computed in closed form: it matches
 * NUMERICS.md's visibility rule key by key, and a tables-only workload of
 * 2^30 rows is cheap (it used to loop over every row). */
Test(limits, visible_pairs_closed_form_matches_the_rule) {
  deadline(60);
  pe_ctx *ctx = pe_test_ctx();
  char text[512];
  for (int skv = 1; skv <= 11; skv++)
    for (int sq = 1; sq <= skv; sq++)
      for (int causal = 0; causal <= 1; causal++)
        for (int win = 0; win <= skv + 2; win++) {
          snprintf(text, sizeof text, "[workload]\nhead_dim=2\nseq_len=%d\nq_len=%d\ncausal=%s\nwindow=%d\n"
                   "[scheme]\nplugin=none\n", skv, sq, causal ? "true" : "false", win);
          pe_config *cfg;
          cr_assert_eq(pe_config_parse(ctx, text, "v.ini", NULL, &cfg), 0, "%s", pe_ctx_error(ctx));
          pe_workload *w;
          cr_assert_eq(pe_workload_build_tables(ctx, cfg, &w), 0, "%s", pe_ctx_error(ctx));
          uint64_t want = 0;
          for (int i = 0; i < sq; i++) {
            long r = skv - sq + i;
            for (long n = 0; n < skv; n++)
              want += (!causal || n <= r) && (win == 0 || labs(r - n) < win);
          }
          cr_expect_eq(pe_workload_get_info(w)->visible_pairs, want, "Skv %d Sq %d causal %d window %d: %llu, want %llu",
                       skv, sq, causal, win, (unsigned long long)pe_workload_get_info(w)->visible_pairs,
                       (unsigned long long)want);
          pe_workload_free(w);
          pe_config_free(cfg);
        }
  pe_ctx_free(ctx);
}
Test(limits, tables_only_at_the_largest_shape_is_cheap) {
  deadline(10);
  pe_ctx *ctx = pe_test_ctx();
  pe_config *cfg;
  cr_assert_eq(pe_config_parse(ctx, "[workload]\nhead_dim=4096\nseq_len=1073741824\nbatch=65536\nq_heads=65536\n"
                               "window=1000\n[scheme]\nplugin=rope\n", "big.ini", NULL, &cfg), 0, "%s", pe_ctx_error(ctx));
  pe_workload *w;
  for (int i = 0; i < 20; i++) {
    cr_assert_eq(pe_workload_build_tables(ctx, cfg, &w), 0, "%s", pe_ctx_error(ctx));
    const pe_workload_info *in = pe_workload_get_info(w);
    /* 2^32 heads x ~2^40 pairs: saturated, not wrapped; flops in double. */
    cr_expect_eq(in->visible_pairs, UINT64_MAX);
    cr_expect_gt(in->flops, 1e25);
    pe_workload_free(w);
  }
  /* Building it for real is refused by the memory limit, not attempted. */
  cr_expect_eq(pe_workload_build(ctx, cfg, &w), PE_ELIMIT, "%s", pe_ctx_error(ctx));
  pe_config_free(cfg);
  pe_ctx_free(ctx);
}

/* ---- .npy files that lie -------------------------------------------------- */
static char tmpdir[256];
static void make_tmpdir(void) {
  snprintf(tmpdir, sizeof tmpdir, "/tmp/pe-limits-XXXXXX");
  cr_assert_not_null(mkdtemp(tmpdir));
}

static void write_npy_header(const char *path, const char *shape, off_t extra_bytes) {
  char dict[256];
  int n = snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, 'shape': %s, }", shape);
  while ((10 + n + 1) % 64) dict[n++] = ' ';
  dict[n++] = '\n';
  unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(n & 0xff), (unsigned char)(n >> 8)};
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  cr_assert_geq(fd, 0);
  cr_assert_eq(write(fd, pre, 10), 10);
  cr_assert_eq(write(fd, dict, (size_t)n), n);
  /* A sparse payload: costs no disk. */
  if (extra_bytes) cr_assert_eq(ftruncate(fd, 10 + n + extra_bytes), 0);
  close(fd);
}

/* A header claiming 2^62 bytes in a tiny file is refused from the file's
 * size (an allocation attempt would fail with ENOMEM or abort under ASan). */
Test(limits, npy_huge_shape_small_file) {
  make_tmpdir();
  pe_ctx *ctx = pe_test_ctx();
  char path[512];
  snprintf(path, sizeof path, "%s/huge.npy", tmpdir);
  write_npy_header(path, "(1073741824, 4)", 64);
  pe_tensor t;
  cr_expect_eq(pe_npy_read(ctx, path, &t), PE_ENPY, "%s", pe_ctx_error(ctx));
  cr_expect(strstr(pe_ctx_error(ctx), "data is 64 bytes but the shape needs 17179869184"), "%s",
            pe_ctx_error(ctx));
  snprintf(path, sizeof path, "%s/overflow.npy", tmpdir);
  write_npy_header(path, "(18446744073709551615, 2)", 8);
  cr_expect_eq(pe_npy_read(ctx, path, &t), PE_ENPY);
  cr_expect(strstr(pe_ctx_error(ctx), "shape product overflows"), "%s", pe_ctx_error(ctx));
  snprintf(path, sizeof path, "%s/toolong.npy", tmpdir);
  write_npy_header(path, "(184467440737095516150,)", 8);
  cr_expect_eq(pe_npy_read(ctx, path, &t), PE_ENPY);
  cr_expect(strstr(pe_ctx_error(ctx), "malformed shape"), "%s", pe_ctx_error(ctx));
  pe_ctx_free(ctx);
}

/* A well-formed but huge (sparse, 32 GiB) file named as a small workload's
 * input is refused from its size before it is read. */
Test(limits, npy_input_larger_than_workload_not_read) {
  make_tmpdir();
  pe_ctx *ctx = pe_test_ctx();
  char path[512];
  const char *names[3] = {"q", "k", "v"};
  for (int i = 0; i < 3; i++) {
    snprintf(path, sizeof path, "%s/%s.npy", tmpdir, names[i]);
    if (i == 0) write_npy_header(path, "(8589934592,)", (off_t)8589934592 * 4);
    else write_npy_header(path, "(1, 1, 4, 8)", 128);
  }
  pe_config *cfg;
  cr_assert_eq(pe_config_parse(ctx, "[workload]\nhead_dim=8\nseq_len=4\n[inputs]\nq=q.npy\nk=k.npy\nv=v.npy\n"
                               "[scheme]\nplugin=none\n", "big.ini", tmpdir, &cfg), 0, "%s", pe_ctx_error(ctx));
  pe_workload *w = NULL;
  cr_expect_eq(pe_workload_build(ctx, cfg, &w), PE_ENPY, "%s", pe_ctx_error(ctx));
  cr_expect(strstr(pe_ctx_error(ctx), "too large for the shape the workload needs (1, 1, 4, 8: 128 bytes"), "%s",
            pe_ctx_error(ctx));
  cr_expect(strstr(pe_ctx_error(ctx), "not read"), "%s", pe_ctx_error(ctx));
  pe_config_free(cfg);
  pe_ctx_free(ctx);
}

/* A FIFO (or a device) is refused at once instead of blocking the open. */
Test(limits, npy_fifo_does_not_block) {
  deadline(10);
  make_tmpdir();
  pe_ctx *ctx = pe_test_ctx();
  char path[512];
  snprintf(path, sizeof path, "%s/fifo.npy", tmpdir);
  cr_assert_eq(mkfifo(path, 0600), 0);
  pe_tensor t;
  cr_expect_eq(pe_npy_read(ctx, path, &t), PE_EIO);
  cr_expect(strstr(pe_ctx_error(ctx), "not a regular file"), "%s", pe_ctx_error(ctx));
  cr_expect_eq(pe_npy_read(ctx, "/dev/zero", &t), PE_EIO);
  cr_expect_eq(pe_npy_read(ctx, tmpdir, &t), PE_EIO);
  pe_ctx_free(ctx);
}

/* ---- a backend that fails mid-run ------------------------------------- */
static const char *failing_path(void) {
  static char path[4096];
  const char *b = getenv("PE_TEST_BUILDDIR");
  snprintf(path, sizeof path, "%s/tests/.libs/failing.so", b ? b : ".");
  return path;
}

/* Run `backend` of `cfg_text`; returns the result (caller frees). */
static pe_result *run_text(pe_ctx *ctx, const char *cfg_text, const char *backend, int *rc) {
  pe_config *cfg;
  cr_assert_eq(pe_config_parse(ctx, cfg_text, "fail.ini", NULL, &cfg), 0, "%s", pe_ctx_error(ctx));
  pe_workload *w;
  cr_assert_eq(pe_workload_build(ctx, cfg, &w), 0, "%s", pe_ctx_error(ctx));
  pe_result *r = NULL;
  *rc = pe_run(ctx, w, cfg, backend, &r);
  cr_assert_not_null(r, "pe_run stored no result");
  pe_workload_free(w);
  pe_config_free(cfg);
  return r;
}

/* pe_runner_device asks describe again after a run (a failed describe
 * before it does not stick), and only then. */
static pe_runner *failing_runner(pe_ctx *ctx, pe_config **cfg, pe_workload **w, int describe_call) {
  char text[8192];
  snprintf(text, sizeof text, "[workload]\nhead_dim=8\nseq_len=8\n[scheme]\nplugin=rope\n"
           "[backend.flaky]\nplugin=%s\nfail_in=describe\nfail_call=%d\n", failing_path(), describe_call);
  cr_assert_eq(pe_config_parse(ctx, text, "fail.ini", NULL, cfg), 0, "%s", pe_ctx_error(ctx));
  cr_assert_eq(pe_workload_build(ctx, *cfg, w), 0, "%s", pe_ctx_error(ctx));
  pe_runner *rn;
  cr_assert_eq(pe_runner_open(ctx, *cfg, "flaky", &rn), 0, "%s", pe_ctx_error(ctx));
  return rn;
}

Test(backend_failure, runner_device_is_described_again_after_a_run) {
  pe_ctx *ctx = pe_test_ctx();
  pe_config *cfg;
  pe_workload *w;
  pe_runner *rn = failing_runner(ctx, &cfg, &w, 1);
  cr_expect_str_empty(pe_runner_device(rn)->driver, "describe call 1 fails: blank");
  float out[8 * 8];
  cr_assert_eq(pe_runner_run(rn, w, out, NULL), 0, "%s", pe_ctx_error(ctx));
  cr_expect_str_eq(pe_runner_device(rn)->driver, "libpe reference", "after the run");
  pe_runner_close(rn);
  pe_workload_free(w);
  pe_config_free(cfg);
  pe_ctx_free(ctx);
}

Test(backend_failure, runner_device_is_described_once_per_run) {
  pe_ctx *ctx = pe_test_ctx();
  pe_config *cfg;
  pe_workload *w;
  pe_runner *rn = failing_runner(ctx, &cfg, &w, 2);
  cr_expect_str_eq(pe_runner_device(rn)->driver, "libpe reference");
  cr_expect_str_eq(pe_runner_device(rn)->driver, "libpe reference", "no run: not asked again");
  float out[8 * 8];
  cr_assert_eq(pe_runner_run(rn, w, out, NULL), 0, "%s", pe_ctx_error(ctx));
  cr_expect_str_empty(pe_runner_device(rn)->driver, "asked again after the run (call 2 fails)");
  pe_runner_close(rn);
  pe_workload_free(w);
  pe_config_free(cfg);
  pe_ctx_free(ctx);
}

static void expect_injected(const char *callback, const char *code, int want_rc, uint32_t want_status) {
  pe_ctx *ctx = pe_test_ctx();
  char text[8192];
  snprintf(text, sizeof text, "[workload]\nhead_dim=8\nseq_len=8\n[scheme]\nplugin=rope\n[run]\nwarmup=0\n"
           "iterations=3\n[backend.flaky]\nplugin=%s\nfail_in=%s\nfail_call=1\nfail_code=%s\n", failing_path(),
           callback, code);
  int rc;
  pe_result *r = run_text(ctx, text, "flaky", &rc);
  cr_expect_eq(rc, want_rc, "%s: got %s: %s", callback, pe_err_name(rc), r->message);
  cr_expect_eq(r->status, want_status, "%s: status %s", callback, pe_run_status_name(r->status));
  cr_expect(strstr(r->message, "injected failure in"), "%s: message '%s'", callback, r->message);
  cr_expect(strstr(r->message, callback), "%s: message '%s'", callback, r->message);
  cr_expect_eq(r->verified, 0);
  pe_result_free(r);
  /* The same context runs the next workload normally. */
  r = run_text(ctx, "[workload]\nhead_dim=8\nseq_len=8\n[scheme]\nplugin=rope\n", "reference", &rc);
  cr_expect_eq(rc, 0, "after a failure: %s", r->message);
  pe_result_free(r);
  pe_ctx_free(ctx);
}

Test(backend_failure, in_open) { expect_injected("open", "device", PE_EDEVICE, PE_RUN_FAILED); }
Test(backend_failure, in_prepare) { expect_injected("prepare", "nomem", PE_ENOMEM, PE_RUN_FAILED); }
Test(backend_failure, in_execute) { expect_injected("execute", "device", PE_EDEVICE, PE_RUN_FAILED); }
Test(backend_failure, in_fetch) { expect_injected("fetch", "device", PE_EDEVICE, PE_RUN_FAILED); }
Test(backend_failure, unsupported) { expect_injected("prepare", "unsupported", PE_EUNSUPPORTED, PE_RUN_UNSUPPORTED); }

/* A callback returning a code outside the error table (-999, a positive
 * value, INT_MIN): failed as PE_EDEVICE, the message naming the number as
 * a contract violation, and the plugin's own message kept. */
static void expect_raw(const char *callback, const char *code) {
  pe_ctx *ctx = pe_test_ctx();
  char text[8192], want[160];
  snprintf(text, sizeof text, "[workload]\nhead_dim=8\nseq_len=8\n[scheme]\nplugin=rope\n[run]\nwarmup=0\n"
           "iterations=1\n[backend.flaky]\nplugin=%s\nfail_in=%s\nfail_call=1\nfail_code=raw\n"
           "raw_code=%s\n", failing_path(), callback, code);
  snprintf(want, sizeof want, "the plugin returned %s, which is not a libpe error code "
           "(contract violation): injected failure in %s", code, callback);
  int rc;
  pe_result *r = run_text(ctx, text, "flaky", &rc);
  cr_expect_eq(rc, PE_EDEVICE, "%s %s: got %s: %s", callback, code, pe_err_name(rc), r->message);
  cr_expect_eq(r->status, PE_RUN_FAILED);
  cr_expect(strstr(r->message, want), "message '%s' lacks '%s'", r->message, want);
  cr_expect(strstr(pe_ctx_error(ctx), "flaky: "), "context message: %s", pe_ctx_error(ctx));
  pe_result_free(r);
  pe_ctx_free(ctx);
}
Test(backend_failure, open_returns_code_outside_the_table) { expect_raw("open", "-999"); }
Test(backend_failure, prepare_returns_code_outside_the_table) { expect_raw("prepare", "-999"); }
Test(backend_failure, execute_returns_code_outside_the_table) { expect_raw("execute", "-999"); }
Test(backend_failure, execute_returns_positive_code) { expect_raw("execute", "42"); }
Test(backend_failure, execute_returns_int_min) { expect_raw("execute", "-2147483648"); }
Test(backend_failure, fetch_returns_code_outside_the_table) { expect_raw("fetch", "-999"); }

/* describe() returning an error fails the run, though everything else
 * worked: the result could not say which device produced it. */
Test(backend_failure, in_describe) {
  pe_ctx *ctx = pe_test_ctx();
  char text[8192];
  snprintf(text, sizeof text, "[workload]\nhead_dim=8\nseq_len=8\n[scheme]\nplugin=rope\n[run]\nwarmup=0\n"
           "iterations=1\n[backend.flaky]\nplugin=%s\nfail_in=describe\nfail_call=1\n", failing_path());
  int rc;
  pe_result *r = run_text(ctx, text, "flaky", &rc);
  cr_expect_eq(rc, PE_EDEVICE, "got %s: %s", pe_err_name(rc), r->message);
  cr_expect_eq(r->status, PE_RUN_FAILED);
  cr_expect_str_eq(r->message, "describe: device error");
  cr_expect_str_eq(r->device.name, "", "what a failing describe wrote is not kept");
  cr_expect_eq(r->verified, 0);
  pe_result_free(r);
  pe_ctx_free(ctx);
}

static void keep_log(void *user, int level, const char *origin, const char *message) {
  snprintf(user, 512, "%d %s: %s", level, origin, message);
}

/* A runner has no status to fail: the device stays blank, with a warning. */
Test(backend_failure, in_describe_of_a_runner) {
  pe_ctx *ctx = pe_test_ctx();
  char text[8192], log[512] = "";
  pe_ctx_set_log(ctx, keep_log, log);
  snprintf(text, sizeof text, "[workload]\nhead_dim=8\nseq_len=8\n[scheme]\nplugin=rope\n"
           "[backend.flaky]\nplugin=%s\nfail_in=describe\nfail_call=1\nfail_code=raw\n", failing_path());
  pe_config *cfg;
  cr_assert_eq(pe_config_parse(ctx, text, "fail.ini", NULL, &cfg), 0, "%s", pe_ctx_error(ctx));
  pe_runner *runner;
  cr_assert_eq(pe_runner_open(ctx, cfg, "flaky", &runner), 0, "%s", pe_ctx_error(ctx));
  cr_expect_str_eq(pe_runner_device(runner)->name, "");
  cr_expect(strstr(log, "failing: describe failed: the plugin returned -999, which is not a libpe "
                        "error code"), "log: %s", log);
  pe_runner_close(runner);
  pe_config_free(cfg);
  pe_ctx_free(ctx);
}

/* The 2nd prepare fails: runs 1 and 3 verify, run 2 fails with its message. */
Test(backend_failure, nth_call_only) {
  pe_ctx *ctx = pe_test_ctx();
  char text[8192];
  snprintf(text, sizeof text, "[workload]\nhead_dim=8\nseq_len=8\n[scheme]\nplugin=alibi\n[run]\nwarmup=0\n"
           "iterations=1\n[backend.flaky]\nplugin=%s\nfail_in=prepare\nfail_call=2\n", failing_path());
  for (int i = 1; i <= 3; i++) {
    int rc;
    pe_result *r = run_text(ctx, text, "flaky", &rc);
    if (i == 2) {
      cr_expect_eq(r->status, PE_RUN_FAILED);
      cr_expect(strstr(r->message, "injected failure in prepare, call 2"), "%s", r->message);
    } else {
      cr_expect_eq(rc, 0, "run %d: %s", i, r->message);
      cr_expect(r->verified);
    }
    pe_result_free(r);
  }
  pe_ctx_free(ctx);
}

/* ---- contexts in threads ---------------------------------------------- */
/* Each job: its own context, config, workload and runs; the whole output
 * is kept and compared with the same job run alone. */
typedef struct job {
  const char *text;
  const char *backend;
  int repeat;
  int rc;
  float *out;
  size_t len;
  char err[512];
} job;

static void *run_job(void *arg) {
  job *j = arg;
  for (int k = 0; k < j->repeat && j->rc == 0; k++) {
    pe_ctx *ctx = NULL;
    pe_config *cfg = NULL;
    pe_workload *w = NULL;
    pe_result *r = NULL;
    j->rc = pe_ctx_new(&ctx);
    if (!j->rc) pe_ctx_set_log(ctx, NULL, NULL);
    if (!j->rc) j->rc = pe_config_parse(ctx, j->text, "t.ini", NULL, &cfg);
    if (!j->rc) j->rc = pe_workload_build(ctx, cfg, &w);
    if (!j->rc) j->rc = pe_run(ctx, w, cfg, j->backend, &r);
    if (j->rc) snprintf(j->err, sizeof j->err, "%s", pe_ctx_error(ctx));
    if (!j->rc && !j->out) {
      j->len = r->output_len;
      j->out = malloc(j->len * sizeof(float));
      memcpy(j->out, r->output, j->len * sizeof(float));
    } else if (!j->rc && (r->output_len != j->len || memcmp(r->output, j->out, j->len * sizeof(float)))) {
      j->rc = -1000;
      snprintf(j->err, sizeof j->err, "repeat %d differs from the first", k);
    }
    pe_result_free(r);
    pe_workload_free(w);
    pe_config_free(cfg);
    pe_ctx_free(ctx);
  }
  return NULL;
}

Test(threads, four_contexts_whole_outputs_match_sequential) {
  deadline(120);
  job proto[4] = {
      {"[workload]\nhead_dim=16\nseq_len=64\nq_heads=2\n[scheme]\nplugin=rope\n[run]\nseed=1\n", "reference", 3, 0, 0, 0, ""},
      {"[workload]\nhead_dim=32\nseq_len=48\nwindow=5\ncausal=false\n[scheme]\nplugin=alibi\n[run]\nseed=2\n",
       "reference", 3, 0, 0, 0, ""},
      {"[workload]\nhead_dim=64\nseq_len=40\nq_heads=4\nkv_heads=2\nposition_offset=100000\n[scheme]\nplugin=yarn\n"
       "factor=4\noriginal_max_position_embeddings=4096\n", "reference", 3, 0, 0, 0, ""},
      {"[workload]\nop=encode\nhead_dim=32\nseq_len=100\n[scheme]\nplugin=sinusoidal\n", "reference", 3, 0, 0, 0, ""},
  };
  job seq[4], par[4];
  for (int i = 0; i < 4; i++) {
    seq[i] = proto[i];
    seq[i].repeat = 1;
    run_job(&seq[i]);
    cr_assert_eq(seq[i].rc, 0, "job %d alone: %s", i, seq[i].err);
    par[i] = proto[i];
  }
  pthread_t t[4];
  for (int i = 0; i < 4; i++) cr_assert_eq(pthread_create(&t[i], NULL, run_job, &par[i]), 0);
  for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
  for (int i = 0; i < 4; i++) {
    cr_expect_eq(par[i].rc, 0, "job %d in a thread: %s (%s)", i, pe_err_name(par[i].rc), par[i].err);
    if (par[i].rc) continue;
    cr_expect_eq(par[i].len, seq[i].len);
    cr_expect(!memcmp(par[i].out, seq[i].out, seq[i].len * sizeof(float)),
              "job %d: output in a thread differs from the sequential run", i);
  }
  for (int i = 0; i < 4; i++) free(seq[i].out), free(par[i].out);
}

/* ---- plugin paths in a config ------------------------------------------- */
/* Relative plugin paths in a config resolve against the config's
 * directory, like [inputs]; a backend named by the caller (pe-bench -b)
 * against the working directory. */
Test(config_paths, plugin_paths_relative_to_the_config) {
  char dir[] = "/tmp/pe-cfgdir-XXXXXX", path[PATH_MAX + 64], mods[64], rel[PATH_MAX], abs_[PATH_MAX];
  cr_assert_not_null(mkdtemp(dir));
  const char *b = getenv("PE_TEST_BUILDDIR");
  snprintf(mods, sizeof mods, "%s/mods", dir);
  cr_assert_eq(mkdir(mods, 0700), 0);
  static const char *const links[][2] = {{"plugins/.libs/rope.so", "rope.so"},
                                         {"backends/.libs/reference.so", "reference.so"}};
  for (int i = 0; i < 2; i++) {
    snprintf(rel, sizeof rel, "%s/%s", b ? b : ".", links[i][0]);
    cr_assert_not_null(realpath(rel, abs_), "%s", rel);
    snprintf(path, sizeof path, "%s/%s", mods, links[i][1]);
    cr_assert_eq(symlink(abs_, path), 0);
  }
  snprintf(path, sizeof path, "%s/c.ini", dir);
  FILE *fp = fopen(path, "w");
  cr_assert_not_null(fp);
  fputs("[workload]\nhead_dim=8\nseq_len=8\n[scheme]\nplugin = ./mods/rope.so\n[run]\nwarmup=0\n"
        "iterations=1\n[backend.ref]\nplugin = mods/reference.so\n", fp);
  fclose(fp);
  pe_ctx *ctx = pe_test_ctx();
  pe_config *cfg;
  cr_assert_eq(pe_config_load(ctx, path, &cfg), 0, "%s", pe_ctx_error(ctx));
  pe_workload *w;
  cr_assert_eq(pe_workload_build(ctx, cfg, &w), 0, "%s", pe_ctx_error(ctx));
  pe_result *r = NULL;
  int rc = pe_run(ctx, w, cfg, "ref", &r);
  cr_expect_eq(rc, 0, "%s", r ? r->message : pe_ctx_error(ctx));
  pe_result_free(r);
  rc = pe_run(ctx, w, cfg, "mods/reference.so", &r); /* the working directory has no mods/ */
  cr_expect_eq(rc, PE_EPLUGIN, "%s", r ? r->message : pe_ctx_error(ctx));
  cr_expect(r && strstr(r->message, "cannot load plugin mods/reference.so"), "%s", r ? r->message : "");
  pe_result_free(r);
  pe_workload_free(w);
  pe_config_free(cfg);
  pe_ctx_free(ctx);
  snprintf(rel, sizeof rel, "rm -rf '%s'", dir);
  cr_expect_eq(system(rel), 0);
}
