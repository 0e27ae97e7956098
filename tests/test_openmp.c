/* The openmp backend: every golden attention case (against o.npy and the
 * oracle), randomized cross-checks against the float64 oracle over shapes
 * that stress the tile edges (L not a multiple of the tile, head_dim 64..256
 * and odd sizes, windows smaller and larger than a tile, q_len 1..17, GQA
 * ratios 1/2/4/8, every encoding kind, encode op), each with 1 and 2
 * threads and on every SIMD path the CPU has, and its refusals.
 *
 * Shapes stay small: the whole file runs in seconds, also under ASan. */
#include "helpers.h"

#include <stdarg.h>

static int cpu_has(const char *what) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  if (!strcmp(what, "avx512")) return __builtin_cpu_supports("avx512f") != 0;
  if (!strcmp(what, "avx2"))
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
  (void)what;
  return 0;
}

/* Backend sections appended to every test config: 1 and 2 threads on the
 * auto path (K' pre-pass when several units read a kv head, else K
 * encoded per tile), the portable path, K encoded per tile (fused) with
 * small, odd tiles (so one small shape crosses many tile edges), and on an
 * AVX-512 machine the AVX2 path too. */
static const char omp_sections[] =
    "[backend.t1]\nplugin = openmp\nthreads = 1\n"
    "[backend.t2]\nplugin = openmp\nthreads = 2\n"
    "[backend.scalar]\nplugin = openmp\nthreads = 2\nkernel = scalar\n"
    "[backend.fused]\nplugin = openmp\nthreads = 2\nk_encode = fused\n"
    "block_k = 13\ndecode_chunk = 7\n";
/* On an AVX-512 machine, where auto is avx512, the AVX2 path as well. */
static const char avx2_section[] =
    "[backend.avx2]\nplugin = openmp\nthreads = 2\nkernel = avx2\n";
static const char *const omp_labels[] = {"t1", "t2", "scalar", "fused", "avx2"};
#define N_LABELS (sizeof omp_labels / sizeof omp_labels[0])

static int avx2_too(void) { return cpu_has("avx512") && cpu_has("avx2"); }

/* Build a config from text plus the backend sections, run it on every
 * label, expect verification against the oracle (all query rows for these
 * sizes) within 2e-4. */
static void check_text(const char *ini) {
  char *text = malloc(strlen(ini) + sizeof omp_sections + sizeof avx2_section + 64);
  cr_assert_not_null(text);
  sprintf(text, "%s\n%s%s", ini, omp_sections, avx2_too() ? avx2_section : "");
  pe_ctx *ctx = pe_test_ctx();
  pe_config *cfg;
  cr_assert_eq(pe_config_parse(ctx, text, "test_openmp.ini", NULL, &cfg), 0,
               "%s\n%s", pe_ctx_error(ctx), text);
  pe_workload *w;
  cr_assert_eq(pe_workload_build(ctx, cfg, &w), 0, "%s\n%s", pe_ctx_error(ctx),
               text);
  for (size_t i = 0; i < N_LABELS - !avx2_too(); i++) {
    pe_result *r = NULL;
    int rc = pe_run(ctx, w, cfg, omp_labels[i], &r);
    cr_assert_not_null(r);
    cr_expect_eq(rc, 0, "openmp [%s]: %s (max err %.3g)\nconfig:\n%s",
                 omp_labels[i], r->message, r->max_abs_err, ini);
    cr_expect(r->verified, "openmp [%s] not verified\nconfig:\n%s",
              omp_labels[i], ini);
    cr_expect_leq(r->max_abs_err, 2e-4, "openmp [%s]: max err %.3g\n%s",
                  omp_labels[i], r->max_abs_err, ini);
    pe_result_free(r);
  }
  pe_workload_free(w);
  pe_config_free(cfg);
  pe_ctx_free(ctx);
  free(text);
}

/* printf into a static buffer, then check_text. */
static void checkf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void checkf(const char *fmt, ...) {
  char buf[4096];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  check_text(buf);
}

/* ---- golden attention cases ---------------------------------------------- */

#define GOLDEN_CASES(X)                                                         \
  X(none_causal, "none-causal") X(rope_neox_causal, "rope-neox-causal")         \
  X(rope_interleaved, "rope-interleaved") X(rope_decode, "rope-decode")         \
  X(rope_window, "rope-window")                                                 \
  X(rope_window_noncausal, "rope-window-noncausal")                             \
  X(alibi_causal, "alibi-causal") X(sinusoidal_causal, "sinusoidal-causal")     \
  X(dynntk_long, "dynntk-long") X(yarn_gqa_causal, "yarn-gqa-causal")           \
  X(yarn_far_positions, "yarn-far-positions")

/* The case on the default openmp options (helpers.h: o.npy and oracle),
 * then on 1 and 2 threads and the portable path, against o.npy. */
static void golden(const char *name) {
  pe_test_golden_case("openmp", name, 2e-4);

  pe_ctx *ctx = pe_test_ctx();
  char path[4096];
  snprintf(path, sizeof path, "%s/attention/%s/case.ini", pe_test_golden_dir(),
           name);
  pe_config *cfg;
  cr_assert_eq(pe_config_load(ctx, path, &cfg), 0, "%s", pe_ctx_error(ctx));
  cr_assert_eq(pe_config_set(ctx, cfg, "run", "iterations", "1"), 0);
  cr_assert_eq(pe_config_set(ctx, cfg, "run", "warmup", "0"), 0);
  static const char *const set[][3] = {
      {"backend.t1", "plugin", "openmp"}, {"backend.t1", "threads", "1"},
      {"backend.t2", "plugin", "openmp"}, {"backend.t2", "threads", "2"},
      {"backend.scalar", "plugin", "openmp"},
      {"backend.scalar", "kernel", "scalar"},
      {"backend.fused", "plugin", "openmp"},
      {"backend.fused", "k_encode", "fused"},
      {"backend.fused", "block_k", "5"}};
  for (size_t i = 0; i < sizeof set / sizeof set[0]; i++)
    cr_assert_eq(pe_config_set(ctx, cfg, set[i][0], set[i][1], set[i][2]), 0,
                 "%s", pe_ctx_error(ctx));
  if (avx2_too()) {
    cr_assert_eq(pe_config_set(ctx, cfg, "backend.avx2", "plugin", "openmp"), 0);
    cr_assert_eq(pe_config_set(ctx, cfg, "backend.avx2", "kernel", "avx2"), 0);
  }
  pe_workload *w;
  cr_assert_eq(pe_workload_build(ctx, cfg, &w), 0, "%s", pe_ctx_error(ctx));
  snprintf(path, sizeof path, "%s/attention/%s/o.npy", pe_test_golden_dir(),
           name);
  pe_tensor o;
  cr_assert_eq(pe_npy_read(ctx, path, &o), 0, "%s", pe_ctx_error(ctx));
  size_t n = 1;
  for (uint32_t i = 0; i < o.ndim; i++) n *= o.shape[i];
  for (size_t l = 0; l < N_LABELS - !avx2_too(); l++) {
    pe_result *r = NULL;
    int rc = pe_run(ctx, w, cfg, omp_labels[l], &r);
    cr_assert_not_null(r);
    cr_expect_eq(rc, 0, "%s [%s]: %s", name, omp_labels[l], r->message);
    cr_assert_eq(r->output_len, n);
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
      double e = fabs((double)r->output[i] - (double)o.data[i]);
      if (!(e <= worst)) worst = isnan(e) ? INFINITY : e;
    }
    cr_expect_leq(worst, 2e-4, "%s [%s]: max abs error vs o.npy %.3g", name,
                  omp_labels[l], worst);
    pe_result_free(r);
  }
  pe_tensor_free(&o);
  pe_workload_free(w);
  pe_config_free(cfg);
  pe_ctx_free(ctx);
}

#define GOLDEN_TEST(id, name) \
  Test(openmp_golden, id) { golden(name); }
GOLDEN_CASES(GOLDEN_TEST)

/* ---- tile edges ------------------------------------------------------------ */

#define RUN "[run]\nwarmup = 0\niterations = 1\nseed = %d\n"

/* head_dim 64/80/96/128/256 and sizes that are no multiple of a vector,
 * seq_len no multiple of any tile. */
Test(openmp_edges, head_dims) {
  static const int dims[] = {64, 80, 96, 128, 256, 8, 20, 36, 72, 130};
  for (size_t i = 0; i < sizeof dims / sizeof dims[0]; i++)
    checkf("[workload]\nq_heads = 2\nhead_dim = %d\nseq_len = 101\n"
           "[scheme]\nplugin = rope\n" RUN,
           dims[i], (int)i + 1);
}

Test(openmp_edges, lengths_not_multiple_of_tile) {
  static const int lens[] = {1, 2, 5, 17, 63, 65, 97, 161, 200};
  for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++)
    checkf("[workload]\nq_heads = 3\nhead_dim = 48\nseq_len = %d\n"
           "[scheme]\nplugin = rope\n" RUN,
           lens[i], (int)i + 11);
}

/* Windows far below a tile, near it, and longer than the context; causal
 * and not. */
Test(openmp_edges, windows) {
  static const int wins[] = {1, 3, 16, 40, 97, 150, 1000};
  for (size_t i = 0; i < sizeof wins / sizeof wins[0]; i++)
    for (int causal = 0; causal < 2; causal++)
      checkf("[workload]\nq_heads = 2\nkv_heads = 1\nhead_dim = 32\n"
             "seq_len = 170\ncausal = %s\nwindow = %d\n"
             "[scheme]\nplugin = rope\n" RUN,
             causal ? "true" : "false", wins[i], (int)i + 21);
}

/* q_len 1..17: decode (split-KV) and short query blocks at the end of a
 * longer context, windowed too. */
Test(openmp_edges, short_queries) {
  for (int sq = 1; sq <= 17; sq++)
    checkf("[workload]\nq_heads = 4\nkv_heads = 2\nhead_dim = 64\n"
           "q_len = %d\nseq_len = 133\nwindow = %d\n"
           "[scheme]\nplugin = rope\n" RUN,
           sq, sq % 3 == 0 ? 50 : 0, sq + 30);
}

Test(openmp_edges, gqa_ratios) {
  static const int ratios[] = {1, 2, 4, 8};
  for (size_t i = 0; i < 4; i++)
    for (int sq = 1; sq <= 40; sq += 39)
      checkf("[workload]\nbatch = 2\nq_heads = 8\nkv_heads = %d\n"
             "head_dim = 40\nq_len = %d\nseq_len = 77\n"
             "[scheme]\nplugin = yarn\nfactor = 4\n"
             "original_max_position_embeddings = 32\n" RUN,
             8 / ratios[i], sq, (int)i + 50);
}

/* Every kind, partial and interleaved rotary, positions near 2^20. */
Test(openmp_edges, kinds) {
  static const char *const schemes[] = {
      "plugin = none",
      "plugin = rope\npairing = interleaved",
      "plugin = rope\nrotary_dim = 24",
      "plugin = rope\nrotary_dim = 22\npairing = interleaved",
      "plugin = sinusoidal",
      "plugin = alibi",
      "plugin = yarn\nfactor = 16\noriginal_max_position_embeddings = 4096",
  };
  for (size_t i = 0; i < sizeof schemes / sizeof schemes[0]; i++)
    for (int causal = 0; causal < 2; causal++)
      for (int sq = 1; sq <= 70; sq += 69)
        checkf("[workload]\nq_heads = 4\nkv_heads = 2\nhead_dim = 40\n"
               "q_len = %d\nseq_len = 90\ncausal = %s\n"
               "position_offset = %d\n[scheme]\n%s\n" RUN,
               sq, causal ? "true" : "false", i % 2 ? 1000000 : 0,
               schemes[i], (int)i + 60);
}

Test(openmp_edges, encode_op) {
  static const char *const schemes[] = {
      "plugin = none", "plugin = rope", "plugin = rope\npairing = interleaved",
      "plugin = rope\nrotary_dim = 30", "plugin = sinusoidal",
      "plugin = alibi"};
  for (size_t i = 0; i < sizeof schemes / sizeof schemes[0]; i++)
    checkf("[workload]\nop = encode\nbatch = 2\nq_heads = 4\nkv_heads = 2\n"
           "head_dim = 36\nq_len = 19\nseq_len = 70\nposition_offset = 77\n"
           "[scheme]\n%s\n" RUN,
           schemes[i], (int)i + 70);
}

/* op = encode where every row is whole aligned vectors on the SIMD paths
 * (rows written straight from the registers with non-temporal stores),
 * over several 512-position units per head with a short last one, q_len
 * shorter than seq_len, and every pairing: neox, interleaved, a partial
 * rotary_dim (pass-through dims), additive and none. */
Test(openmp_edges, encode_op_vector_rows) {
  static const char *const schemes[] = {
      "plugin = rope", "plugin = rope\npairing = interleaved",
      "plugin = rope\nrotary_dim = 32", "plugin = sinusoidal",
      "plugin = none"};
  for (size_t i = 0; i < sizeof schemes / sizeof schemes[0]; i++)
    checkf("[workload]\nop = encode\nbatch = 2\nq_heads = 4\nkv_heads = 2\n"
           "head_dim = 64\nq_len = 700\nseq_len = 1100\n"
           "[scheme]\n%s\n" RUN,
           schemes[i], (int)i + 80);
  /* two heads a unit sharing each cos/sin row: an odd number of heads
   * over the batch (a pair across batch items, a last unit of one head)
   * and q_len shorter than seq_len */
  static const int pair_dims[] = {32, 64, 128};
  for (size_t i = 0; i < sizeof pair_dims / sizeof pair_dims[0]; i++)
    checkf("[workload]\nop = encode\nbatch = 3\nq_heads = 1\n"
           "head_dim = %d\nq_len = 300\nseq_len = 700\n"
           "[scheme]\nplugin = rope\n" RUN,
           pair_dims[i], (int)i + 100);
  /* neox rows read whole (encode_whole_rows): 1 to 4 rotated vectors a
   * half-row on AVX-512 and AVX2, and longer rows */
  static const int dims[] = {16, 32, 48, 96, 128, 256};
  for (size_t i = 0; i < sizeof dims / sizeof dims[0]; i++)
    checkf("[workload]\nop = encode\nq_heads = 2\nhead_dim = %d\nseq_len = 600\n"
           "[scheme]\nplugin = rope\n" RUN,
           dims[i], (int)i + 90);
}

/* Decode with K rotated in registers inside the logit loop (AVX-512:
 * neox pairs over the whole head_dim, four query heads of a kv head at a
 * time, then the rest of the group together): groups of 4, 8, 6, 5 and 7
 * (four, then a pass of 2, 1 or 3), 3 and 1 (MHA), at head_dim 64 (P V
 * of up to four heads a pass) and 128 (two), odd block tails (the fused
 * section's 7-key chunks), and the shapes that keep K' rows (interleaved,
 * also with single heads after the fours; a partial rotary_dim).  Every
 * head_dim the whole-row kernels take (rows of 1-4 rotated vectors and
 * longer ones; P V over rows of 4, 5, 6, 8 and 16 vectors) and one they
 * do not (32). */
Test(openmp_edges, decode_rotary_groups) {
  static const struct {
    int hq, hkv, d;
    const char *scheme;
  } cases[] = {{8, 2, 128, "plugin = rope"},
               {12, 2, 64, "plugin = rope\nbase = 500000"},
               {16, 2, 64, "plugin = rope"},
               {8, 2, 64, "plugin = rope\npairing = interleaved"},
               {8, 2, 64, "plugin = rope\nrotary_dim = 32"},
               {8, 2, 96, "plugin = rope"},
               {8, 2, 32, "plugin = rope"},
               {8, 2, 256, "plugin = rope"},
               {8, 2, 80, "plugin = alibi"},
               {12, 3, 256, "plugin = none"},
               {5, 1, 64, "plugin = rope"},
               {3, 1, 128, "plugin = rope"},
               {3, 1, 64, "plugin = rope"},
               {7, 1, 128, "plugin = rope"},
               {6, 1, 64, "plugin = rope\npairing = interleaved"},
               {2, 2, 128, "plugin = rope"},
               {2, 2, 32, "plugin = rope"},
               {2, 2, 96, "plugin = rope"},
               {2, 2, 256, "plugin = rope"},
               {2, 2, 64, "plugin = rope\nrotary_dim = 32"},
               {2, 2, 80, "plugin = alibi"}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    checkf("[workload]\nq_heads = %d\nkv_heads = %d\nhead_dim = %d\n"
           "q_len = 1\nseq_len = 1234\nposition_offset = 3000\n"
           "[scheme]\n%s\n" RUN,
           cases[i].hq, cases[i].hkv, cases[i].d, cases[i].scheme,
           (int)i + 85);
}

/* Shapes with enough work that execute() engages the whole thread team
 * (smaller ones run on the calling thread): prefill, windowed prefill,
 * GQA decode with many split-KV chunks, and encode. */
Test(openmp_edges, thread_team) {
  checkf("[workload]\nq_heads = 4\nkv_heads = 2\nhead_dim = 64\n"
         "seq_len = 333\n[scheme]\nplugin = rope\n" RUN, 90);
  checkf("[workload]\nq_heads = 3\nhead_dim = 80\nseq_len = 400\n"
         "window = 37\ncausal = false\n[scheme]\nplugin = alibi\n" RUN, 91);
  checkf("[workload]\nq_heads = 16\nkv_heads = 2\nhead_dim = 64\n"
         "q_len = 1\nseq_len = 1500\n[scheme]\nplugin = rope\n" RUN, 92);
  checkf("[workload]\nop = encode\nq_heads = 8\nkv_heads = 4\n"
         "head_dim = 96\nseq_len = 500\n[scheme]\nplugin = sinusoidal\n"
         RUN, 93);
}

/* ---- randomized shapes ------------------------------------------------------ */

/* A fixed-seed generator: the same shapes on every run, printed on
 * failure with the rest of the config. */
static uint32_t lcg(uint32_t *s) {
  *s = *s * 1664525u + 1013904223u;
  return *s >> 8;
}

Test(openmp_random, shapes) {
  static const int dims[] = {64, 80, 96, 128, 256, 16, 24, 48};
  static const int ratios[] = {1, 2, 4, 8};
  static const char *const schemes[] = {
      "plugin = rope", "plugin = rope\npairing = interleaved",
      "plugin = llama3", "plugin = sinusoidal", "plugin = alibi",
      "plugin = none"};
  uint32_t s = 12345;
  for (int t = 0; t < 24; t++) {
    const int d = dims[lcg(&s) % 8];
    const int g = ratios[lcg(&s) % 4];
    const int hkv = 1 + (int)(lcg(&s) % 2);
    const int skv = 1 + (int)(lcg(&s) % (d >= 128 ? 140 : 260));
    const int sq = lcg(&s) % 3 == 0 ? 1 + (int)(lcg(&s) % 17)
                                     : 1 + (int)(lcg(&s) % (uint32_t)skv);
    const int q_len = sq <= skv ? sq : skv;
    const int causal = (int)(lcg(&s) % 4 != 0);
    const int window = lcg(&s) % 3 == 0 ? 1 + (int)(lcg(&s) % 120) : 0;
    checkf("[workload]\nq_heads = %d\nkv_heads = %d\nhead_dim = %d\n"
           "q_len = %d\nseq_len = %d\ncausal = %s\nwindow = %d\n"
           "position_offset = %u\n[scheme]\n%s\n" RUN,
           hkv * g, hkv, d, q_len, skv, causal ? "true" : "false", window,
           lcg(&s) % 5000, schemes[lcg(&s) % 6], t + 100);
  }
}

/* ---- refusals and reports ------------------------------------------------------ */

static pe_result *run_one(pe_ctx *ctx, const char *ini, const char *label) {
  pe_config *cfg;
  cr_assert_eq(pe_config_parse(ctx, ini, "refusal.ini", NULL, &cfg), 0, "%s",
               pe_ctx_error(ctx));
  pe_workload *w;
  cr_assert_eq(pe_workload_build(ctx, cfg, &w), 0, "%s", pe_ctx_error(ctx));
  pe_result *r = NULL;
  (void)pe_run(ctx, w, cfg, label, &r);
  cr_assert_not_null(r);
  pe_workload_free(w);
  pe_config_free(cfg);
  return r;
}

Test(openmp_refusals, head_dim_over_256) {
  pe_ctx *ctx = pe_test_ctx();
  pe_result *r = run_one(ctx,
                         "[workload]\nhead_dim = 264\nseq_len = 4\n"
                         "[scheme]\nplugin = none\n[run]\nverify = false\n",
                         "openmp");
  cr_expect_eq(r->status, PE_RUN_UNSUPPORTED, "status %u: %s", r->status,
               r->message);
  cr_expect(strstr(r->message, "head_dim") != NULL, "reason: %s", r->message);
  pe_result_free(r);
  pe_ctx_free(ctx);
}

/* Decode without encoding of K (none, ALiBi): K rows copied into the
 * block scratch with prefetching, four heads at a time (GQA 4 and 8) and
 * head_dim 36 (a tail shorter than a vector), with and without a window. */
Test(openmp_edges, decode_unencoded_four_heads) {
  static const char *const schemes[] = {"plugin = none", "plugin = alibi"};
  for (int i = 0; i < 2; i++)
    for (int g = 4; g <= 8; g += 4)
      for (int win = 0; win <= 200; win += 200)
        checkf("[workload]\nq_heads = %d\nkv_heads = 2\nhead_dim = 36\n"
               "q_len = 1\nseq_len = 333\ncausal = true\nwindow = %d\n"
               "[scheme]\n%s\n" RUN,
               2 * g, win, schemes[i], 80 + i * 4 + g / 4 + win / 100);
}

/* A kernel the CPU lacks is refused with the reason; one it has runs and
 * says so in the device details. */
Test(openmp_refusals, kernel_choice) {
  static const char *const names[] = {"avx512", "avx2", "scalar"};
  for (size_t i = 0; i < 3; i++) {
    char ini[512];
    snprintf(ini, sizeof ini,
             "[workload]\nhead_dim = 16\nseq_len = 20\n[scheme]\nplugin = rope\n"
             "[backend.k]\nplugin = openmp\nkernel = %s\n"
             "[run]\nwarmup = 0\niterations = 1\n",
             names[i]);
    pe_ctx *ctx = pe_test_ctx();
    pe_result *r = run_one(ctx, ini, "k");
    const int has = i == 2 || cpu_has(names[i]);
    if (has) {
      cr_expect_eq(r->status, PE_RUN_OK, "kernel = %s: %s", names[i],
                   r->message);
      cr_expect(strstr(r->device.details, i == 2 ? "portable" : names[i]) !=
                    NULL,
                "kernel = %s, details: %s", names[i], r->device.details);
    } else {
      cr_expect_eq(r->status, PE_RUN_UNSUPPORTED, "kernel = %s: status %u",
                   names[i], r->status);
      cr_expect(strstr(r->message, "CPU") != NULL, "reason: %s", r->message);
    }
    pe_result_free(r);
    pe_ctx_free(ctx);
  }
}

Test(openmp_refusals, block_q_granule) {
  pe_ctx *ctx = pe_test_ctx();
  pe_result *r = run_one(ctx,
                         "[workload]\nhead_dim = 16\nseq_len = 20\n"
                         "[scheme]\nplugin = rope\n"
                         "[backend.b]\nplugin = openmp\nblock_q = 3\n"
                         "kernel = avx2\n[run]\nwarmup = 0\niterations = 1\n",
                         "b");
  cr_expect_neq(r->status, PE_RUN_OK, "block_q = 3 accepted");
  pe_result_free(r);
  pe_ctx_free(ctx);
}

Test(openmp_report, device_describes_cpu_and_path) {
  pe_ctx *ctx = pe_test_ctx();
  pe_result *r = run_one(ctx,
                         "[workload]\nhead_dim = 16\nseq_len = 40\n"
                         "[scheme]\nplugin = rope\n[backend.t]\n"
                         "plugin = openmp\nthreads = 2\n"
                         "[run]\nwarmup = 0\niterations = 1\n",
                         "t");
  cr_expect_eq(r->status, PE_RUN_OK, "%s", r->message);
  cr_expect_eq(r->device.type, PE_DEVICE_CPU);
  cr_expect(strstr(r->device.name, "(2 threads)") != NULL, "name: %s",
            r->device.name);
  cr_expect(strstr(r->device.details, "micro-kernel") != NULL, "details: %s",
            r->device.details);
  cr_expect(strstr(r->device.details, "flash attention") != NULL,
            "details: %s", r->device.details);
  pe_result_free(r);
  pe_ctx_free(ctx);
}

/* k_encode = auto encodes K once per run (pre-pass) when more than one
 * unit reads each kv head -- several query blocks, or several query heads
 * of a GQA group -- and inside the one query block otherwise, on every
 * path; the details say which ran. */
Test(openmp_report, k_encode_auto_choice) {
  static const struct {
    const char *pairing, *kernel;
    int seq_len, q_heads, kv_heads;
    const char *expect;
  } cases[] = {{"neox", "auto", 600, 1, 1, "pre-pass"},
               {"interleaved", "scalar", 600, 1, 1, "pre-pass"},
               {"neox", "auto", 20, 1, 1, "(fused)"},
               {"neox", "scalar", 4, 1, 1, "(fused)"},
               {"neox", "auto", 20, 2, 1, "pre-pass"}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char ini[512];
    snprintf(ini, sizeof ini,
             "[workload]\nhead_dim = 16\nseq_len = %d\nq_heads = %d\n"
             "kv_heads = %d\n[scheme]\nplugin = rope\npairing = %s\n"
             "[backend.t]\nplugin = openmp\nthreads = 2\nkernel = %s\n"
             "[run]\nwarmup = 0\niterations = 1\n",
             cases[i].seq_len, cases[i].q_heads, cases[i].kv_heads,
             cases[i].pairing, cases[i].kernel);
    pe_ctx *ctx = pe_test_ctx();
    pe_result *r = run_one(ctx, ini, "t");
    cr_expect_eq(r->status, PE_RUN_OK, "%s", r->message);
    cr_expect(strstr(r->device.details, cases[i].expect) != NULL,
              "pairing %s, kernel %s, details: %s", cases[i].pairing,
              cases[i].kernel, r->device.details);
    pe_result_free(r);
    pe_ctx_free(ctx);
  }
}
