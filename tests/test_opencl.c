/* OpenCL backend tests: every golden attention case, randomized oracle
 * cross-checks on shapes that stress the tile edges, op = encode, the
 * options, the error paths and the program-binary cache.
 *
 * Where no OpenCL device exists (no ICD, or no device behind it) each test
 * skips with the backend's reason; where configure did not build the
 * backend at all (PE_TEST_HAVE_OPENCL undefined) they skip saying so.
 * PoCL compiles every distinct shape anew (seconds each), so the shapes
 * below are few and small; the program-binary cache (PE_CACHE_DIR) and
 * PoCL's own (POCL_CACHE_DIR) make later runs cheap. */
#if defined(__SANITIZE_ADDRESS__)
#define PE_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define PE_TEST_ASAN 1
#endif
#endif
#ifndef PE_TEST_ASAN
#define PE_TEST_ASAN 0
#endif
#include "helpers.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#define TOL 2e-4

/* Skip unless the opencl backend is built and sees at least one device;
 * the number of GPUs among them. */
typedef struct device_census {
  int devices, gpus;
} device_census;

static void count_device(void *user, const pe_device_info *info) {
  device_census *c = user;
  ++c->devices;
  if (info->type == PE_DEVICE_GPU) ++c->gpus;
}

static int need_opencl(void) {
  pe_ctx *ctx = pe_test_ctx();
  const pe_plugin *p = NULL;
  int rc = pe_plugin_load(ctx, "opencl", PE_PLUGIN_BACKEND, &p);
#ifndef PE_TEST_HAVE_OPENCL
  if (rc) {
    pe_ctx_free(ctx);
    cr_skip_test("opencl backend not built (configure found no OpenCL ICD "
                 "loader and headers)");
  }
#endif
  cr_assert_eq(rc, 0, "opencl plugin does not load: %s", pe_ctx_error(ctx));
  device_census n = {0, 0};
  rc = pe_plugin_devices(ctx, p, count_device, &n);
  if (rc == PE_EUNSUPPORTED || (rc == 0 && n.devices == 0)) {
    char why[1024];
    snprintf(why, sizeof why, "%s", rc ? pe_ctx_error(ctx) : "no device");
    pe_ctx_free(ctx);
    cr_skip_test("opencl: %s", why);
  }
  cr_assert_eq(rc, 0, "opencl device enumeration: %s", pe_ctx_error(ctx));
  pe_ctx_free(ctx);
  return n.gpus;
}

/* Skip unless the default device (the first GPU, else the first device)
 * is a CPU: for the tests of the cpu kernel's tiles, which are sized for
 * a CPU device's local memory (a GPU's 48 KiB does not hold them: the
 * backend says so, "set block_q/block_k smaller").  `what`: the test's
 * subject, for the skip message. */
static void need_cpu_default_device(const char *what) {
  if (need_opencl() > 0)
    cr_skip_test("the default OpenCL device is a GPU; this test checks %s "
                 "on a CPU device",
                 what);
}

/* Build the workload of `ini` and run it on backend `label`. */
typedef struct ocl_case {
  pe_ctx *ctx;
  pe_config *cfg;
  pe_workload *w;
  pe_result *r;
  int rc;
} ocl_case;

static void case_run(ocl_case *c, const char *ini, const char *label) {
  memset(c, 0, sizeof *c);
  c->ctx = pe_test_ctx();
  cr_assert_eq(pe_config_parse(c->ctx, ini, "test_opencl.ini", NULL, &c->cfg),
               0, "%s", pe_ctx_error(c->ctx));
  cr_assert_eq(pe_workload_build(c->ctx, c->cfg, &c->w), 0, "%s",
               pe_ctx_error(c->ctx));
  c->rc = pe_run(c->ctx, c->w, c->cfg, label, &c->r);
  cr_assert_not_null(c->r);
  if (pe_test_no_device(c->r)) cr_skip_test("opencl: %s", c->r->message);
}

static void case_free(ocl_case *c) {
  pe_result_free(c->r);
  pe_workload_free(c->w);
  pe_config_free(c->cfg);
  pe_ctx_free(c->ctx);
}

/* The run succeeded and verified within TOL. */
static void expect_verified(const ocl_case *c, const char *ini,
                            const char *label) {
  cr_expect_eq(c->rc, 0, "%s: %s\nconfig:\n%s", label, c->r->message, ini);
  cr_expect(c->r->verified, "not verified");
  cr_expect_leq(c->r->max_abs_err, TOL, "max abs err %.3g\nconfig:\n%s",
                c->r->max_abs_err, ini);
}

/* A config that must verify against the oracle within TOL, every row. */
static void oracle(const char *ini, const char *label) {
  ocl_case c;
  need_opencl();
  case_run(&c, ini, label);
  expect_verified(&c, ini, label);
  cr_expect_eq(c.r->verified_rows, c.r->total_rows, "only %llu of %llu rows",
               (unsigned long long)c.r->verified_rows,
               (unsigned long long)c.r->total_rows);
  case_free(&c);
}

/* A config that must verify (its verify_rows) and whose run details name
 * the kernel path the test is about: `want` and `also` (NULL: none). */
static void oracle_path(const char *ini, const char *label, const char *want,
                        const char *also) {
  ocl_case c;
  need_opencl();
  case_run(&c, ini, label);
  expect_verified(&c, ini, label);
  cr_expect(strstr(c.r->device.details, want) &&
                (!also || strstr(c.r->device.details, also)),
            "details: %s", c.r->device.details);
  case_free(&c);
}

#define RUN1 "[run]\nwarmup = 0\niterations = 1\n"

/* ---- golden cases --------------------------------------------------------- */
#define OCL_GOLDEN(X)                                                          \
  X(none_causal, "none-causal")                                                \
  X(rope_neox_causal, "rope-neox-causal")                                      \
  X(rope_interleaved, "rope-interleaved")                                      \
  X(rope_decode, "rope-decode")                                                \
  X(rope_window, "rope-window")                                                \
  X(rope_window_noncausal, "rope-window-noncausal")                            \
  X(alibi_causal, "alibi-causal")                                              \
  X(sinusoidal_causal, "sinusoidal-causal")                                    \
  X(dynntk_long, "dynntk-long")                                                \
  X(yarn_gqa_causal, "yarn-gqa-causal")                                        \
  X(yarn_far_positions, "yarn-far-positions")

#define OCL_GOLDEN_TEST(id, name)                                              \
  Test(opencl_golden, id, .timeout = 300) {                                    \
    need_opencl();                                                             \
    pe_test_golden_case("opencl", name, TOL);                                  \
  }
OCL_GOLDEN(OCL_GOLDEN_TEST)

/* Every case directory is in the list above (new golden data is noticed). */
Test(opencl_golden, list_is_complete) {
  static const char *const known[] = {
#define OCL_NAME(id, name) name,
      OCL_GOLDEN(OCL_NAME)
#undef OCL_NAME
  };
  char path[4096];
  snprintf(path, sizeof path, "%s/attention", pe_test_golden_dir());
  DIR *d = opendir(path);
  cr_assert_not_null(d, "%s: %s", path, strerror(errno));
  struct dirent *e;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    int found = 0;
    for (size_t i = 0; i < sizeof known / sizeof known[0]; ++i)
      found |= !strcmp(known[i], e->d_name);
    cr_expect(found, "golden case %s is not run on opencl", e->d_name);
  }
  closedir(d);
}

/* ---- randomized oracle cross-checks (seeded generator, no [inputs]) -------
 * Default tiles on a CPU device: 96 query rows (float8; 64 with float16)
 * x 64 keys; GPU: 64 rows x 32 keys.  The shapes put L off the tile
 * multiples, windows inside and across tiles, q_len 1..17 with GQA 1..8
 * (several heads packed into one tile), head_dim 64/80/96/128 and odd
 * ones, and far positions. */
Test(opencl_oracle, rope_gqa4_ragged_prefill, .timeout = 300) {
  oracle("[workload]\nbatch = 1\nq_heads = 4\nkv_heads = 1\nhead_dim = 64\n"
         "seq_len = 130\ncausal = true\n"
         "[scheme]\nplugin = rope\n" RUN1 "seed = 11\n",
         "opencl");
}

Test(opencl_oracle, interleaved_partial_rotary_window_in_tile,
     .timeout = 300) {
  oracle("[workload]\nbatch = 2\nq_heads = 8\nkv_heads = 4\nhead_dim = 80\n"
         "q_len = 17\nseq_len = 200\ncausal = true\nwindow = 40\n"
         "[scheme]\nplugin = rope\nrotary_dim = 48\npairing = interleaved\n"
         RUN1 "seed = 12\n",
         "opencl");
}

Test(opencl_oracle, yarn_gqa8_far_positions, .timeout = 300) {
  oracle("[workload]\nq_heads = 8\nkv_heads = 1\nhead_dim = 96\nq_len = 9\n"
         "seq_len = 300\nposition_offset = 1000000\ncausal = true\n"
         "[scheme]\nplugin = yarn\nfactor = 16\n"
         "original_max_position_embeddings = 4096\n" RUN1 "seed = 13\n",
         "opencl");
}

Test(opencl_oracle, llama3_decode_gqa8_split_kv, .timeout = 300) {
  oracle("[workload]\nq_heads = 8\nkv_heads = 1\nhead_dim = 128\nq_len = 1\n"
         "seq_len = 1500\nposition_offset = 70000\ncausal = true\n"
         "[scheme]\nplugin = llama3\nbase = 500000\n" RUN1 "seed = 14\n",
         "opencl");
}

Test(opencl_oracle, alibi_6_heads_noncausal_window_over_tile,
     .timeout = 300) {
  oracle("[workload]\nq_heads = 6\nkv_heads = 3\nhead_dim = 64\n"
         "seq_len = 100\ncausal = false\nwindow = 90\n"
         "[scheme]\nplugin = alibi\n" RUN1 "seed = 15\n",
         "opencl");
}

/* several query tiles per kv head: K' from the pre-pass, window across
 * key tiles, row groups trimmed at the window's edges */
Test(opencl_oracle, rope_causal_window_across_tiles_long, .timeout = 300) {
  oracle("[workload]\nq_heads = 4\nkv_heads = 2\nhead_dim = 64\n"
         "q_len = 300\nseq_len = 3100\ncausal = true\nwindow = 100\n"
         "[scheme]\nplugin = rope\n" RUN1 "seed = 16\nverify_rows = 300\n",
         "opencl");
}

Test(opencl_oracle, sinusoidal_odd_head_dim_float4, .timeout = 300) {
  oracle("[workload]\nq_heads = 2\nkv_heads = 1\nhead_dim = 20\nq_len = 5\n"
         "seq_len = 70\ncausal = false\n[scheme]\nplugin = sinusoidal\n" RUN1
         "seed = 17\n[backend.ocl]\nplugin = opencl\nkernel = cpu\n"
         "vector_width = 4\n",
         "ocl");
}

/* Past 3072 keys with K copied per tile (no encoding): 3x taller tiles
 * (up to 288 rows with float8), causal diagonal trimming per row group. */
Test(opencl_oracle, none_long_context_tall_tiles, .timeout = 300) {
  need_cpu_default_device("the cpu kernel's automatic tiles");
  /* 900 rows in tiles of at most 288: 4 equal tiles of 225, padded to a
   * register block of 24 rows */
  oracle_path("[workload]\nq_heads = 2\nkv_heads = 2\nhead_dim = 64\n"
              "q_len = 900\nseq_len = 3100\ncausal = true\n"
              "[scheme]\nplugin = none\n" RUN1 "seed = 19\nverify_rows = 64\n"
              "[backend.ocl]\nplugin = opencl\nkernel = cpu\n"
              "vector_width = 8\n",
              "ocl", "BQ 240", "K' per tile");
}

/* Long GQA prefill: a tile holds the same 24 rows of the 4 heads of a
 * group (K'/V tiles loaded once for all four), rows not a multiple of the
 * tile, a window across key tiles. */
Test(opencl_oracle, gqa4_long_heads_per_tile, .timeout = 300) {
  need_cpu_default_device("the cpu kernel's automatic tiles");
  oracle_path("[workload]\nq_heads = 8\nkv_heads = 2\nhead_dim = 64\n"
              "q_len = 250\nseq_len = 400\ncausal = true\nwindow = 150\n"
              "[scheme]\nplugin = rope\n" RUN1 "seed = 20\nverify_rows = 250\n"
              "[backend.ocl]\nplugin = opencl\nkernel = cpu\n"
              "vector_width = 8\n",
              "ocl", "heads/tile 4", "K' pre-pass");
}

/* Several query tiles per kv head with an additive scheme: K' comes from
 * the pre-pass (auto; rows past seq_len zero-padded to the key tile), or
 * is encoded per tile when asked; D % 4 != 0 (V through the padded copy),
 * the last key tile partial. */
Test(opencl_oracle, sinusoidal_kprime_prepass_odd_dim, .timeout = 300) {
  static const char *const how[][2] = {{"auto", "K' pre-pass"},
                                       {"fused", "K' per tile"}};
  for (int i = 0; i < 2; i++) {
    char ini[1024];
    snprintf(ini, sizeof ini,
             "[workload]\nq_heads = 4\nkv_heads = 2\nhead_dim = 20\n"
             "q_len = 150\nseq_len = 170\ncausal = true\n"
             "[scheme]\nplugin = sinusoidal\n" RUN1 "seed = 18\n"
             "verify_rows = 150\n[backend.ocl]\nplugin = opencl\n"
             "kernel = cpu\nblock_q = 32\nvector_width = 8\nk_encode = %s\n",
             how[i][0]);
    oracle_path(ini, "ocl", how[i][1], NULL);
  }
}

/* The other kernel shape and other vector widths, forced by options. */
Test(opencl_oracle, gpu_kernel_gqa2_window, .timeout = 300) {
  oracle("[workload]\nq_heads = 4\nkv_heads = 2\nhead_dim = 64\nq_len = 13\n"
         "seq_len = 90\ncausal = true\nwindow = 20\n"
         "[scheme]\nplugin = rope\n" RUN1 "seed = 19\n"
         "[backend.ocl]\nplugin = opencl\nkernel = gpu\n",
         "ocl");
}

Test(opencl_oracle, gpu_kernel_decode_split, .timeout = 300) {
  oracle("[workload]\nq_heads = 2\nkv_heads = 2\nhead_dim = 96\nq_len = 1\n"
         "seq_len = 257\n[scheme]\nplugin = alibi\n" RUN1 "seed = 20\n"
         "[backend.ocl]\nplugin = opencl\nkernel = gpu\nsplits = 3\n",
         "ocl");
}

/* The gpu kernel's register blocks: D = 128 with a ragged second query
 * tile (4 rows x 16 columns a work-item), D = 256 (2 rows, 32 columns),
 * D = 65 (columns past D in the last block), ALiBi with 4 heads a tile. */
Test(opencl_oracle, gpu_kernel_d128_ragged_tiles, .timeout = 300) {
  oracle_path("[workload]\nq_heads = 2\nkv_heads = 1\nhead_dim = 128\n"
              "q_len = 70\nseq_len = 200\ncausal = true\n"
              "[scheme]\nplugin = rope\n" RUN1 "seed = 31\n"
              "[backend.ocl]\nplugin = opencl\nkernel = gpu\n",
              "ocl", "gpu (BQ 48, work-group 96", NULL);
}

Test(opencl_oracle, gpu_kernel_d256_noncausal_window, .timeout = 300) {
  oracle_path("[workload]\nq_heads = 2\nkv_heads = 2\nhead_dim = 256\n"
              "q_len = 40\nseq_len = 90\ncausal = false\nwindow = 30\n"
              "[scheme]\nplugin = yarn\nfactor = 4\n"
              "original_max_position_embeddings = 64\n" RUN1 "seed = 32\n"
              "[backend.ocl]\nplugin = opencl\nkernel = gpu\n",
              "ocl", "gpu (BQ 32, work-group 128", NULL);
}

Test(opencl_oracle, gpu_kernel_odd_dim_alibi_heads_per_tile, .timeout = 300) {
  oracle_path("[workload]\nq_heads = 8\nkv_heads = 2\nhead_dim = 65\n"
              "q_len = 5\nseq_len = 140\ncausal = true\n"
              "[scheme]\nplugin = alibi\n" RUN1 "seed = 33\n"
              "[backend.ocl]\nplugin = opencl\nkernel = gpu\nblock_k = 8\n",
              "ocl", "BK 8, heads/tile 4", NULL);
}

Test(opencl_oracle, cpu_kernel_float16_small_tiles_split, .timeout = 300) {
  oracle("[workload]\nq_heads = 4\nkv_heads = 4\nhead_dim = 64\n"
         "seq_len = 100\ncausal = true\n[scheme]\nplugin = rope\n" RUN1
         "seed = 21\n[backend.ocl]\nplugin = opencl\nkernel = cpu\n"
         "vector_width = 16\nblock_q = 32\nblock_k = 24\nsplits = 2\n",
         "ocl");
}

/* The cpu decode kernel (q_len = 1: vectors along head_dim, the heads of
 * a kv head together) over its paths: groups of 4 heads and single heads
 * (GQA 1, 3, 4, 5, 16), head_dim whole and odd vector counts,
 * float4/8/16, ALiBi, additive, interleaved and no encoding, windows,
 * splits 1 to 5 and auto. */
Test(opencl_oracle, cpu_decode_kernel_paths, .timeout = 300) {
  /* ini, and how P V reads V: in place when head_dim is a multiple of
   * the vector width, else from a zero-padded copy */
  static const char *const cases[][2] = {
      {"[workload]\nq_heads = 6\nkv_heads = 2\nhead_dim = 36\nq_len = 1\n"
       "seq_len = 333\ncausal = true\nwindow = 100\n[scheme]\n"
       "plugin = alibi\n" RUN1 "seed = 31\n[backend.ocl]\nplugin = opencl\n"
       "kernel = cpu\nvector_width = 8\n",
       "V copied to local"},
      {"[workload]\nq_heads = 10\nkv_heads = 2\nhead_dim = 20\nq_len = 1\n"
       "seq_len = 70\n[scheme]\nplugin = sinusoidal\n" RUN1 "seed = 32\n"
       "[backend.ocl]\nplugin = opencl\nkernel = cpu\nvector_width = 4\n"
       "splits = 1\n",
       "V read in place"},
      {"[workload]\nbatch = 2\nq_heads = 8\nkv_heads = 2\nhead_dim = 80\n"
       "q_len = 1\nseq_len = 150\ncausal = false\n[scheme]\nplugin = rope\n"
       "pairing = interleaved\nrotary_dim = 48\n" RUN1 "seed = 33\n"
       "[backend.ocl]\nplugin = opencl\nkernel = cpu\nvector_width = 16\n"
       "splits = 3\n",
       "V read in place"},
      {"[workload]\nq_heads = 3\nkv_heads = 3\nhead_dim = 64\nq_len = 1\n"
       "seq_len = 700\nposition_offset = 9000\ncausal = true\nwindow = 300\n"
       "[scheme]\nplugin = none\n" RUN1 "seed = 34\n[backend.ocl]\n"
       "plugin = opencl\nkernel = cpu\nsplits = 5\n",
       "V read in place"},
      {"[workload]\nq_heads = 32\nkv_heads = 2\nhead_dim = 64\nq_len = 1\n"
       "seq_len = 2000\ncausal = true\n[scheme]\nplugin = rope\n" RUN1
       "seed = 35\n[backend.ocl]\nplugin = opencl\nkernel = cpu\n",
       "V read in place"},
      /* the copy forced on whole vectors: the same result */
      {"[workload]\nq_heads = 8\nkv_heads = 2\nhead_dim = 64\nq_len = 1\n"
       "seq_len = 900\ncausal = true\n[scheme]\nplugin = rope\n" RUN1
       "seed = 36\n[backend.ocl]\nplugin = opencl\nkernel = cpu\n"
       "build_options = -DPE_DEC_VPLACE=0\n",
       "V copied to local"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    oracle_path(cases[i][0], "ocl", "cpu decode", cases[i][1]);
}

/* ---- op = encode ----------------------------------------------------------- */
Test(opencl_encode, rope_neox, .timeout = 300) {
  oracle("[workload]\nop = encode\nq_heads = 4\nkv_heads = 2\nhead_dim = 64\n"
         "q_len = 7\nseq_len = 40\nposition_offset = 500000\n"
         "[scheme]\nplugin = rope\n" RUN1 "seed = 23\n",
         "opencl");
}

Test(opencl_encode, interleaved_partial_gpu_kernel, .timeout = 300) {
  oracle("[workload]\nop = encode\nq_heads = 2\nhead_dim = 24\nseq_len = 30\n"
         "[scheme]\nplugin = rope\nrotary_dim = 16\npairing = interleaved\n"
         RUN1 "seed = 24\n[backend.ocl]\nplugin = opencl\nkernel = gpu\n",
         "ocl");
}

/* the cpu encode kernel's vector path for interleaved pairs (four pairs
 * a vector), a partial rotary dim, far positions */
Test(opencl_encode, interleaved_partial_cpu_vectors, .timeout = 300) {
  oracle("[workload]\nop = encode\nq_heads = 4\nkv_heads = 2\nhead_dim = 64\n"
         "q_len = 9\nseq_len = 50\nposition_offset = 300000\n"
         "[scheme]\nplugin = rope\nrotary_dim = 48\npairing = interleaved\n"
         RUN1 "seed = 26\n[backend.ocl]\nplugin = opencl\nkernel = cpu\n",
         "ocl");
}

Test(opencl_encode, sinusoidal, .timeout = 300) {
  oracle("[workload]\nop = encode\nbatch = 2\nq_heads = 2\nhead_dim = 32\n"
         "seq_len = 30\n[scheme]\nplugin = sinusoidal\n" RUN1 "seed = 25\n",
         "opencl");
}

/* cpu encode kernel: a partial rotary dim (dims R..D-1 pass through in
 * vectors), rows not a multiple of the 32 per work-item; interleaved
 * pairs with an odd head_dim (rotary dim not a multiple of 8) take the
 * scalar row path. */
Test(opencl_encode, cpu_partial_rotary_vectors, .timeout = 300) {
  oracle("[workload]\nop = encode\nq_heads = 3\nkv_heads = 1\nhead_dim = 48\n"
         "q_len = 11\nseq_len = 37\n[scheme]\nplugin = rope\nrotary_dim = 32\n"
         RUN1 "seed = 26\n[backend.ocl]\nplugin = opencl\nkernel = cpu\n",
         "ocl");
}

Test(opencl_encode, cpu_interleaved_odd_dim_scalar, .timeout = 300) {
  oracle("[workload]\nop = encode\nq_heads = 2\nhead_dim = 22\nseq_len = 45\n"
         "[scheme]\nplugin = rope\nrotary_dim = 14\npairing = interleaved\n"
         RUN1 "seed = 27\n[backend.ocl]\nplugin = opencl\nkernel = cpu\n",
         "ocl");
}

/* ---- devices, options, errors ---------------------------------------------- */
static void check_info(void *user, const pe_device_info *info) {
  ++*(int *)user;
  cr_expect(info->name[0], "device without a name");
  cr_expect(strstr(info->details, "compute units"), "details: %s",
            info->details);
  cr_expect(info->type >= PE_DEVICE_CPU && info->type <= PE_DEVICE_OTHER);
}

Test(opencl_devices, enumerate_lists_limits) {
  need_opencl();
  pe_ctx *ctx = pe_test_ctx();
  const pe_plugin *p;
  cr_assert_eq(pe_plugin_load(ctx, "opencl", PE_PLUGIN_BACKEND, &p), 0);
  int n = 0;
  cr_expect_eq(pe_plugin_devices(ctx, p, check_info, &n), 0, "%s",
               pe_ctx_error(ctx));
  cr_expect_gt(n, 0);
  pe_ctx_free(ctx);
}

#define SMALL                                                                  \
  "[workload]\nq_heads = 2\nhead_dim = 8\nseq_len = 16\n"                      \
  "[scheme]\nplugin = rope\n" RUN1

Test(opencl_devices, describe_names_kernel_and_build) {
  ocl_case c;
  need_opencl();
  case_run(&c, SMALL, "opencl");
  cr_assert_eq(c.rc, 0, "%s", c.r->message);
  cr_expect(c.r->device.name[0]);
  cr_expect(strstr(c.r->device.details, "kernel cpu") ||
                strstr(c.r->device.details, "kernel gpu"),
            "details: %s", c.r->device.details);
  cr_expect(strstr(c.r->device.details, "program "), "details: %s",
            c.r->device.details);
  cr_expect_geq(c.r->device_median_ms, 0.0, "no device time from events");
  case_free(&c);
}

/* Two threads, each with its own context, open and run opencl at the same
 * moment: the first platform/device discovery of the process happens in
 * both at once (PoCL 3.1 crashed there, libpe or not; the backend
 * serializes it).  Nothing touches OpenCL before the threads start. */
typedef struct ocl_job {
  pthread_barrier_t *go;
  int rc, no_device;
  char msg[1024];
} ocl_job;

static void *open_and_run(void *arg) {
  ocl_job *j = arg;
  pe_ctx *ctx = NULL;
  pe_config *cfg = NULL;
  pe_workload *w = NULL;
  pe_result *r = NULL;
  j->rc = pe_ctx_new(&ctx);
  if (!j->rc) pe_ctx_set_log(ctx, NULL, NULL);
  if (!j->rc) j->rc = pe_config_parse(ctx, SMALL, "threads.ini", NULL, &cfg);
  if (!j->rc) j->rc = pe_workload_build(ctx, cfg, &w);
  pthread_barrier_wait(j->go);
  if (!j->rc) {
    j->rc = pe_run(ctx, w, cfg, "opencl", &r);
    j->no_device = pe_test_no_device(r);
    snprintf(j->msg, sizeof j->msg, "%s", r ? r->message : pe_ctx_error(ctx));
  } else {
    snprintf(j->msg, sizeof j->msg, "%s", ctx ? pe_ctx_error(ctx) : "pe_ctx_new failed");
  }
  pe_result_free(r);
  pe_workload_free(w);
  pe_config_free(cfg);
  pe_ctx_free(ctx);
  return NULL;
}

Test(opencl_threads, two_contexts_open_and_run_at_once, .timeout = 300) {
#ifndef PE_TEST_HAVE_OPENCL
  cr_skip_test("opencl backend not built");
#endif
#if PE_TEST_ASAN
  /* A thread that opens a PoCL device runs LLVM, which installs its own
   * alternate signal stack (libLLVM-15 calls sigaltstack); at that
   * thread's exit ASan tries to unmap the stack as its own and aborts
   * ("CHECK failed: unable to unmap"), whatever libpe does.  The normal
   * build runs this test. */
  cr_skip_test("ASan build: LLVM's per-thread signal stack aborts ASan at thread exit");
#endif
  pthread_barrier_t go;
  pthread_barrier_init(&go, NULL, 2);
  ocl_job jobs[2] = {{.go = &go}, {.go = &go}};
  pthread_t t[2];
  for (int i = 0; i < 2; i++) cr_assert_eq(pthread_create(&t[i], NULL, open_and_run, &jobs[i]), 0);
  for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
  pthread_barrier_destroy(&go);
  if (jobs[0].no_device && jobs[1].no_device) cr_skip_test("opencl: %s", jobs[0].msg);
  for (int i = 0; i < 2; i++)
    cr_expect_eq(jobs[i].rc, 0, "thread %d: %s: %s", i, pe_err_name(jobs[i].rc), jobs[i].msg);
}

Test(opencl_errors, unknown_device_is_unsupported_with_list) {
  ocl_case c;
  need_opencl();
  case_run(&c,
           SMALL "[backend.ocl]\nplugin = opencl\ndevice = no-such-device-x\n",
           "ocl");
  cr_expect_neq(c.rc, 0);
  cr_expect_eq(c.r->status, PE_RUN_UNSUPPORTED, "status %s: %s",
               pe_run_status_name(c.r->status), c.r->message);
  cr_expect(strstr(c.r->message, "no-such-device-x") &&
                strstr(c.r->message, "available"),
            "message: %s", c.r->message);
  case_free(&c);
}

Test(opencl_errors, build_failure_reports_the_log) {
  ocl_case c;
  need_opencl();
  case_run(&c,
           SMALL "[backend.ocl]\nplugin = opencl\nkernel = cpu\n"
                 "build_options = -Drestrict=+\n",
           "ocl");
  cr_expect_neq(c.rc, 0);
  cr_expect_eq(c.r->status, PE_RUN_FAILED, "status %s: %s",
               pe_run_status_name(c.r->status), c.r->message);
  cr_expect(strstr(c.r->message, "build log") &&
                strstr(c.r->message, "error"),
            "message: %s", c.r->message);
  case_free(&c);
}

/* build_options may not define what the host sizes buffers and grids by
 * (the kernel would disagree with the host): refused, naming it, in any
 * spelling of -D / -U.  A quote that never closes is refused at its
 * position. */
Test(opencl_errors, build_options_host_constants_refused) {
  static const char *const bad[][2] = {
      {"-DBQ=32", "BQ is set by the backend"},
      {"-O2 -D SKV=5", "SKV is set by the backend"},
      {"-DRB=2 -DD", "D is set by the backend"},
      {"-UKPRE", "KPRE is set by the backend"},
      {"-DRB=0", "RB takes an integer from 1 to 16"},
      {"-DKB=4x", "KB takes an integer from 1 to 16"},
      {"-DPE_PF=2", "PE_PF takes an integer from 0 to 1"},
      {"-URB", "leave RB out for the backend's choice"},
      {"-D\"RB=2\"", "quoted or escaped is not read"},
      {"-O2 '-DBQ=8'", "quoted or escaped is not read"},
      {"-D RB=\\2", "quoted or escaped is not read"},
      {"\"-D\" KB=2", "quoted or escaped is not read"},
      {"\\-DDB=2", "quoted or escaped is not read"},
      {"'-DFOO=1", "the quote at character 1 is never closed"},
      {"-DTAG=\"a b -DX='1'", "the quote at character 7 is never closed"},
      {"-DX=1 \\", "the backslash at character 7 ends the options"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    char ini[512];
    snprintf(ini, sizeof ini,
             SMALL "[backend.ocl]\nplugin = opencl\nkernel = cpu\n"
                   "build_options = %s\n",
             bad[i][0]);
    ocl_case c;
    need_opencl();
    case_run(&c, ini, "ocl");
    cr_expect_neq(c.rc, 0, "%s accepted", bad[i][0]);
    cr_expect(strstr(c.r->message, "build_options") &&
                  strstr(c.r->message, bad[i][1]),
              "%s: message: %s", bad[i][0], c.r->message);
    case_free(&c);
  }
}

/* The register blocks and decode's key block set in build_options are the
 * plan's: tiles padded to whole RB blocks, DP a multiple of DB (head_dim
 * 60 with DB 8: V copied, zero padded to 64), DBLK in decode's local
 * memory; each verifies, and the details show the values.  A quoted
 * definition of a name the backend does not read passes to the compiler. */
Test(opencl_oracle, build_options_tunables_shape_the_plan, .timeout = 300) {
  need_cpu_default_device(
      "the cpu kernel's tiles with build_options tunables");
  oracle_path("[workload]\nq_heads = 4\nkv_heads = 2\nhead_dim = 60\n"
              "q_len = 37\nseq_len = 150\ncausal = true\n"
              "[scheme]\nplugin = rope\n" RUN1 "seed = 41\n"
              "[backend.ocl]\nplugin = opencl\nkernel = cpu\n"
              "vector_width = 8\n"
              "build_options = -DRB=2 -D KB=5 -DDB=8\n",
              "ocl", "RB 2 KB 5 DB 8", NULL);
  oracle_path("[workload]\nq_heads = 8\nkv_heads = 2\nhead_dim = 64\n"
              "q_len = 1\nseq_len = 700\ncausal = true\n"
              "[scheme]\nplugin = rope\n" RUN1 "seed = 42\n"
              "[backend.ocl]\nplugin = opencl\nkernel = cpu\n"
              "vector_width = 8\nbuild_options = -DDBLK=24 -DPE_TAG=\"a b\"\n",
              "ocl", "cpu decode", "24-key blocks");
}

/* What the tunables need is checked with the workload: a DBLK too large
 * for local memory is "unsupported" with the sizes (the host had sized
 * decode's arrays with the default DBLK), PE_DEC_VPLACE=1 on rows of no
 * whole vectors and a block_q no multiple of VW x RB are config errors,
 * and the cpu kernel's blocks asked of the gpu kernel are refused. */
Test(opencl_errors, build_options_tunables_checked_against_the_plan) {
  static const char *const bad[][2] = {
      {"head_dim = 4096\nq_len = 1\nseq_len = 600\n[scheme]\nplugin = "
       "none\n" RUN1 "[backend.ocl]\nplugin = opencl\nkernel = cpu\n"
       "build_options = -DDBLK=256\n",
       "local memory"},
      {"head_dim = 36\nq_len = 1\nseq_len = 40\n[scheme]\nplugin = "
       "none\n" RUN1 "[backend.ocl]\nplugin = opencl\nkernel = cpu\n"
       "vector_width = 8\nbuild_options = -DPE_DEC_VPLACE=1\n",
       "PE_DEC_VPLACE = 1 needs head_dim a multiple"},
      {"head_dim = 32\nq_len = 40\nseq_len = 40\n[scheme]\nplugin = "
       "none\n" RUN1 "[backend.ocl]\nplugin = opencl\nkernel = cpu\n"
       "vector_width = 8\nblock_q = 48\nbuild_options = -DRB=4\n",
       "vector_width 8 x RB 4"},
      {"head_dim = 32\nq_len = 40\nseq_len = 40\n[scheme]\nplugin = "
       "none\n" RUN1 "[backend.ocl]\nplugin = opencl\nkernel = gpu\n"
       "build_options = -DKB=2\n",
       "shape the cpu kernel"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    char ini[1024];
    snprintf(ini, sizeof ini, "[workload]\nq_heads = 2\n%s", bad[i][0]);
    ocl_case c;
    need_opencl();
    case_run(&c, ini, "ocl");
    cr_expect_neq(c.rc, 0, "accepted:\n%s", ini);
    cr_expect(strstr(c.r->message, bad[i][1]), "%s\nmessage: %s", ini,
              c.r->message);
    case_free(&c);
  }
}

Test(opencl_errors, bad_vector_width) {
  ocl_case c;
  need_opencl();
  case_run(&c, SMALL "[backend.ocl]\nplugin = opencl\nvector_width = 6\n",
           "ocl");
  cr_expect_neq(c.rc, 0);
  cr_expect(strstr(c.r->message, "vector_width"), "message: %s",
            c.r->message);
  case_free(&c);
}

Test(opencl_errors, gpu_block_k_not_multiple_of_8) {
  ocl_case c;
  need_opencl();
  case_run(&c, SMALL "[backend.ocl]\nplugin = opencl\nkernel = gpu\n"
                     "block_k = 12\n",
           "ocl");
  cr_expect_neq(c.rc, 0);
  cr_expect(strstr(c.r->message, "block_k = 12") &&
                strstr(c.r->message, "multiple of 8"),
            "message: %s", c.r->message);
  case_free(&c);
}

Test(opencl_errors, block_q_not_multiple_of_vector) {
  ocl_case c;
  need_opencl();
  case_run(&c,
           SMALL "[backend.ocl]\nplugin = opencl\nkernel = cpu\n"
                 "vector_width = 8\nblock_q = 12\n",
           "ocl");
  cr_expect_neq(c.rc, 0);
  cr_expect(strstr(c.r->message, "block_q"), "message: %s", c.r->message);
  case_free(&c);
}

/* ---- program-binary cache ------------------------------------------------- */
typedef struct log_capture {
  char text[4096];
} log_capture;

static void capture(void *user, int level, const char *origin,
                    const char *message) {
  log_capture *lc = user;
  size_t len = strlen(lc->text);
  (void)level;
  snprintf(lc->text + len, sizeof lc->text - len, "%s: %s\n",
           origin ? origin : "core", message);
}

static void cached_run(const char *dir, char *details, size_t size) {
  ocl_case c;
  setenv("PE_CACHE_DIR", dir, 1);
  case_run(&c,
           "[workload]\nq_heads = 2\nhead_dim = 16\nseq_len = 24\n"
           "[scheme]\nplugin = rope\n" RUN1
           "[backend.ocl]\nplugin = opencl\nkernel = cpu\nblock_k = 40\n",
           "ocl");
  cr_assert_eq(c.rc, 0, "%s", c.r->message);
  snprintf(details, size, "%s", c.r->device.details);
  case_free(&c);
}

static void remove_tree(const char *dir) {
  char sub[512], path[1024];
  snprintf(sub, sizeof sub, "%s/opencl", dir);
  DIR *d = opendir(sub);
  struct dirent *e;
  while (d && (e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    snprintf(path, sizeof path, "%s/%s", sub, e->d_name);
    unlink(path);
  }
  if (d) closedir(d);
  rmdir(sub);
  rmdir(dir);
}

/* Runs in one process, so the three runs share nothing but the files. */
Test(opencl_cache, hit_then_corrupt_entry_is_rebuilt, .timeout = 300) {
  char dir[] = "/tmp/pe-ocl-cache-XXXXXX", sub[256], path[512], d[512];
  log_capture lc = {{0}};
  need_opencl();
  cr_assert_not_null(mkdtemp(dir));
  cached_run(dir, d, sizeof d);
  cr_expect(strstr(d, "built, cached"), "first run: %s", d);
  cached_run(dir, d, sizeof d);
  cr_expect(strstr(d, "binary from cache"), "second run: %s", d);

  /* corrupt every entry: flip bytes in the binary */
  snprintf(sub, sizeof sub, "%s/opencl", dir);
  DIR *dd = opendir(sub);
  cr_assert_not_null(dd, "%s: %s", sub, strerror(errno));
  struct dirent *e;
  int entries = 0;
  while ((e = readdir(dd))) {
    if (e->d_name[0] == '.') continue;
    cr_expect(strstr(e->d_name, ".tmp.") == NULL, "temp file left: %s",
              e->d_name);
    snprintf(path, sizeof path, "%s/%s", sub, e->d_name);
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    FILE *f = fopen(path, "r+b");
    cr_assert_not_null(f);
    fseek(f, (long)st.st_size - 16, SEEK_SET);
    fputs("garbage-garbage!", f);
    fclose(f);
    ++entries;
  }
  closedir(dd);
  cr_expect_eq(entries, 1, "%d cache entries", entries);

  /* the corrupt entry is detected, rebuilt and rewritten */
  pe_ctx *ctx = pe_test_ctx();
  pe_ctx_set_log(ctx, capture, &lc);
  pe_config *cfg;
  pe_workload *w;
  pe_result *r = NULL;
  setenv("PE_CACHE_DIR", dir, 1);
  cr_assert_eq(pe_config_parse(ctx,
                               "[workload]\nq_heads = 2\nhead_dim = 16\n"
                               "seq_len = 24\n[scheme]\nplugin = rope\n" RUN1
                               "[backend.ocl]\nplugin = opencl\n"
                               "kernel = cpu\nblock_k = 40\n",
                               "cache.ini", NULL, &cfg),
               0);
  cr_assert_eq(pe_workload_build(ctx, cfg, &w), 0);
  cr_expect_eq(pe_run(ctx, w, cfg, "ocl", &r), 0, "%s", r ? r->message : "");
  cr_expect(strstr(r->device.details, "built, cached"), "after corruption: %s",
            r->device.details);
  cr_expect(strstr(lc.text, "unusable"), "no warning logged: %s", lc.text);
  pe_result_free(r);
  pe_workload_free(w);
  pe_config_free(cfg);
  pe_ctx_free(ctx);

  cached_run(dir, d, sizeof d);
  cr_expect(strstr(d, "binary from cache"), "after rebuild: %s", d);
  remove_tree(dir);
}

/* An entry that cannot be written (a directory where the file should go)
 * is reported: describe() must not say "cached". */
Test(opencl_cache, unwritable_entry_not_reported_cached, .timeout = 300) {
  char dir[] = "/tmp/pe-ocl-cache-XXXXXX", sub[256], path[512] = "", d[512];
  need_opencl();
  cr_assert_not_null(mkdtemp(dir));
  cached_run(dir, d, sizeof d);
  cr_expect(strstr(d, "built, cached"), "first run: %s", d);
  snprintf(sub, sizeof sub, "%s/opencl", dir);
  DIR *dd = opendir(sub);
  cr_assert_not_null(dd, "%s: %s", sub, strerror(errno));
  for (struct dirent *e; !path[0] && (e = readdir(dd));)
    if (e->d_name[0] != '.')
      snprintf(path, sizeof path, "%s/%s", sub, e->d_name);
  closedir(dd);
  cr_assert(path[0], "no cache entry in %s", sub);
  cr_assert_eq(unlink(path), 0, "%s: %s", path, strerror(errno));
  cr_assert_eq(mkdir(path, 0700), 0, "%s: %s", path, strerror(errno));
  cached_run(dir, d, sizeof d);
  cr_expect(strstr(d, "built, not cached (could not write the entry: "),
            "unwritable entry: %s", d);
  cr_expect(!strstr(d, "built, cached"), "unwritable entry: %s", d);
  rmdir(path);
  remove_tree(dir);
}
