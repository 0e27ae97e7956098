/* The vulkan backend: every golden attention case (against o.npy and the
 * oracle), oracle cross-checks on seeded random inputs over shapes that
 * stress the tile edges (seq_len no multiple of a tile, head_dim
 * 64/80/96/128, windows smaller and larger than a tile, q_len 1..17, GQA
 * 1/2/4/8, every encoding kind, split-KV, op = encode), the gpu kernel on
 * small shapes, device selection errors, no driver, device listing and the
 * pipeline cache.
 *
 * Where no Vulkan device exists every test skips with the backend's
 * reason; where the backend was not built (tests.mk defines
 * PE_TEST_HAVE_VULKAN when configure enabled it) every test skips saying
 * so.  With PE_VK_VALIDATION=1 (tests/vulkan-validation.sh, run by
 * make check) each run enables VK_LAYER_KHRONOS_validation through the
 * backend's `validation` option, whose messenger turns any validation
 * message into a failed run.
 *
 * JIT time dominates on lavapipe: every distinct specialisation (head_dim,
 * kind, GQA ratio, causal/window, rows per workgroup...) is compiled once,
 * while lengths, windows and offsets are push constants and cost nothing;
 * the cases are chosen with that in mind (tile_rows = 4 where the default
 * would only make the shader larger). */
#include "helpers.h"

#include <dirent.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <unistd.h>

static void need_vulkan(void) {
#ifndef PE_TEST_HAVE_VULKAN
  cr_skip_test("vulkan backend not built (configure found no Vulkan loader, "
               "glslangValidator or spirv-val)");
#endif
}

static int validation(void) {
  const char *v = getenv("PE_VK_VALIDATION");
  return v && *v && strcmp(v, "0");
}

/* Backend sections: the defaults, small row tiles, the gpu kernel and
 * forced key splits. */
static void sections(char *buf, size_t size) {
  const char *val = validation() ? "validation = true\n" : "";
  snprintf(buf, size,
           "[backend.vk]\nplugin = vulkan\n%s"
           "[backend.vk4]\nplugin = vulkan\ntile_rows = 4\n%s"
           "[backend.vkgpu]\nplugin = vulkan\nkernel = gpu\ntile_rows = 4\n"
           "tile_keys = 8\n%s"
           "[backend.vksplit]\nplugin = vulkan\ntile_rows = 4\nkv_splits = 3\n%s",
           val, val, val, val);
}

/* Skip (visibly) when the backend cannot run here at all. */
static void skip_if_unavailable(const pe_result *r, const char *label) {
  if (pe_test_no_device(r)) cr_skip_test("vulkan [%s]: %s", label, r->message);
  if (r->status == PE_RUN_UNSUPPORTED && strstr(r->message, "not installed"))
    cr_skip_test("vulkan [%s]: %s", label, r->message);
}

static void run_label(pe_ctx *ctx, const pe_workload *w, const pe_config *cfg,
                      const char *label, const char *what) {
  pe_result *r = NULL;
  int rc = pe_run(ctx, w, cfg, label, &r);
  cr_assert_not_null(r);
  skip_if_unavailable(r, label);
  cr_expect_eq(rc, 0, "vulkan [%s]: %s (max err %.3g)\n%s", label, r->message,
               r->max_abs_err, what);
  cr_expect(r->verified, "vulkan [%s] not verified\n%s", label, what);
  cr_expect_leq(r->max_abs_err, 2e-4, "vulkan [%s]: max err %.3g\n%s", label,
                r->max_abs_err, what);
  pe_result_free(r);
}

/* Build a config from `ini` plus the backend sections; run it on `labels`
 * (comma-separated), each verified against the oracle within 2e-4. */
static void check_on(const char *labels, const char *ini) {
  need_vulkan();
  char sec[1024];
  sections(sec, sizeof sec);
  char *text = malloc(strlen(ini) + strlen(sec) + 2);
  cr_assert_not_null(text);
  sprintf(text, "%s\n%s", ini, sec);
  pe_ctx *ctx = pe_test_ctx();
  pe_config *cfg;
  cr_assert_eq(pe_config_parse(ctx, text, "test_vulkan.ini", NULL, &cfg), 0,
               "%s\n%s", pe_ctx_error(ctx), text);
  pe_workload *w;
  cr_assert_eq(pe_workload_build(ctx, cfg, &w), 0, "%s\n%s", pe_ctx_error(ctx),
               text);
  char list[128];
  snprintf(list, sizeof list, "%s", labels);
  for (char *save = NULL, *l = strtok_r(list, ",", &save); l;
       l = strtok_r(NULL, ",", &save))
    run_label(ctx, w, cfg, l, ini);
  pe_workload_free(w);
  pe_config_free(cfg);
  pe_ctx_free(ctx);
  free(text);
}

static void checkf(const char *labels, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void checkf(const char *labels, const char *fmt, ...) {
  char buf[4096];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  check_on(labels, buf);
}

/* A small deterministic generator for the lengths (inputs come from the
 * library's seeded generator). */
static uint64_t rng_state;
static int rnd(int lo, int hi) {
  rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
  return lo + (int)((rng_state >> 33) % (uint64_t)(hi - lo + 1));
}
static void rnd_seed(uint64_t s) {
  const char *e = getenv("PE_TEST_SEED");
  rng_state = e && *e ? strtoull(e, NULL, 10) * 7919u + s : s;
}

/* ---- golden attention cases ------------------------------------------- */

#define GOLDEN_CASES(X)                                                         \
  X(none_causal, "none-causal") X(rope_neox_causal, "rope-neox-causal")         \
  X(rope_interleaved, "rope-interleaved") X(rope_decode, "rope-decode")         \
  X(rope_window, "rope-window")                                                 \
  X(rope_window_noncausal, "rope-window-noncausal")                             \
  X(alibi_causal, "alibi-causal") X(sinusoidal_causal, "sinusoidal-causal")     \
  X(dynntk_long, "dynntk-long") X(yarn_gqa_causal, "yarn-gqa-causal")           \
  X(yarn_far_positions, "yarn-far-positions")

/* The case on the default options: against o.npy and the oracle. */
static void golden(const char *name) {
  need_vulkan();
  pe_ctx *ctx = pe_test_ctx();
  char path[4096];
  snprintf(path, sizeof path, "%s/attention/%s/case.ini", pe_test_golden_dir(),
           name);
  pe_config *cfg;
  cr_assert_eq(pe_config_load(ctx, path, &cfg), 0, "%s", pe_ctx_error(ctx));
  cr_assert_eq(pe_config_set(ctx, cfg, "run", "iterations", "1"), 0);
  cr_assert_eq(pe_config_set(ctx, cfg, "run", "warmup", "0"), 0);
  cr_assert_eq(pe_config_set(ctx, cfg, "backend.vk", "plugin", "vulkan"), 0,
               "%s", pe_ctx_error(ctx));
  if (validation())
    cr_assert_eq(pe_config_set(ctx, cfg, "backend.vk", "validation", "true"), 0,
                 "%s", pe_ctx_error(ctx));
  pe_workload *w;
  cr_assert_eq(pe_workload_build(ctx, cfg, &w), 0, "%s", pe_ctx_error(ctx));
  pe_result *r = NULL;
  int rc = pe_run(ctx, w, cfg, "vk", &r);
  cr_assert_not_null(r);
  skip_if_unavailable(r, "vk");
  cr_assert_eq(rc, 0, "%s: %s", name, r->message);
  cr_expect(r->verified, "%s: not verified", name);
  snprintf(path, sizeof path, "%s/attention/%s/o.npy", pe_test_golden_dir(),
           name);
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
  cr_expect_leq(worst, 2e-4, "%s: max abs error vs o.npy %.3g", name, worst);
  cr_expect_leq(r->max_abs_err, 2e-4, "%s: max abs error vs oracle %.3g", name,
                r->max_abs_err);
  pe_tensor_free(&o);
  pe_result_free(r);
  pe_workload_free(w);
  pe_config_free(cfg);
  pe_ctx_free(ctx);
}

#define GOLDEN_TEST(id, name) \
  Test(vulkan_golden, id) { golden(name); }
GOLDEN_CASES(GOLDEN_TEST)

/* ---- randomized oracle cross-checks ------------------------------------ */

#define RUN "[run]\nwarmup = 0\niterations = 1\nseed = %d\n"

/* head_dim 64/80/96/128, seq_len no multiple of 8 or 16; 128 on the
 * default rows per workgroup (the benchmark's shader), the rest on 4. */
Test(vulkan_edges, head_dims) {
  static const int dims[] = {64, 80, 96, 128};
  rnd_seed(1);
  for (size_t i = 0; i < sizeof dims / sizeof dims[0]; i++) {
    int L = 8 * rnd(5, 20) + rnd(1, 7);
    checkf(dims[i] == 128 ? "vk" : "vk4",
           "[workload]\nq_heads = 2\nhead_dim = %d\nseq_len = %d\n"
           "[scheme]\nplugin = rope\n" RUN,
           dims[i], L, (int)i + 1);
  }
}

/* Lengths around the key block (8 or 16 keys) and row tile. */
Test(vulkan_edges, lengths_not_multiple_of_tile) {
  static const int lens[] = {1, 2, 7, 9, 17, 63, 65, 97};
  for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++)
    checkf("vk", "[workload]\nq_heads = 3\nhead_dim = 32\nseq_len = %d\n"
           "[scheme]\nplugin = rope\n" RUN,
           lens[i], (int)i + 11);
}

/* Windows below a key block, near a row tile, and beyond the context;
 * causal and not. */
Test(vulkan_edges, windows) {
  static const int wins[] = {1, 3, 9, 40, 150, 1000};
  rnd_seed(2);
  for (size_t i = 0; i < sizeof wins / sizeof wins[0]; i++)
    for (int causal = 0; causal < 2; causal++)
      checkf("vk", "[workload]\nq_heads = 2\nkv_heads = 1\nhead_dim = 32\n"
             "seq_len = %d\ncausal = %s\nwindow = %d\n"
             "[scheme]\nplugin = rope\n" RUN,
             rnd(120, 180), causal ? "true" : "false", wins[i], (int)i + 21);
}

/* q_len 1..17 at the end of a longer context (decode uses split-KV),
 * windowed too; head_dim 48 leaves lanes idle in the last dim group. */
Test(vulkan_edges, short_queries) {
  rnd_seed(3);
  for (int sq = 1; sq <= 17; sq++)
    checkf("vk4", "[workload]\nq_heads = 4\nkv_heads = 2\nhead_dim = 48\n"
           "q_len = %d\nseq_len = %d\nwindow = %d\n"
           "[scheme]\nplugin = rope\n" RUN,
           sq, rnd(100, 700), sq % 3 == 0 ? 50 : 0, sq + 30);
}

Test(vulkan_edges, gqa_ratios) {
  static const int ratios[] = {1, 2, 4, 8};
  rnd_seed(4);
  for (size_t i = 0; i < sizeof ratios / sizeof ratios[0]; i++)
    checkf("vk", "[workload]\nbatch = 2\nq_heads = %d\nkv_heads = 2\n"
           "head_dim = 16\nq_len = %d\nseq_len = %d\n"
           "[scheme]\nplugin = yarn\nfactor = 4\n"
           "original_max_position_embeddings = 16\n" RUN,
           2 * ratios[i], rnd(1, 40), rnd(40, 90), (int)i + 41);
}

/* Every encoding kind, partial rotary, interleaved pairs, far positions. */
Test(vulkan_edges, kinds) {
  static const char *const schemes[] = {
      "plugin = none\n",
      "plugin = sinusoidal\n",
      "plugin = alibi\n",
      "plugin = rope\npairing = interleaved\n",
      "plugin = rope\nrotary_dim = 12\n",
      "plugin = ntk\nfactor = 8\n",
  };
  rnd_seed(5);
  for (size_t i = 0; i < sizeof schemes / sizeof schemes[0]; i++)
    checkf("vk", "[workload]\nq_heads = 4\nkv_heads = 2\nhead_dim = 32\n"
           "q_len = %d\nseq_len = 77\nposition_offset = %d\n[scheme]\n%s" RUN,
           rnd(1, 77), i % 2 ? 0 : 100000, schemes[i], (int)i + 51);
}

/* Forced key splits (partials + merge) on prefill, causal and windowed;
 * the split-KV decode path at head_dim 128 with GQA 8 on the defaults. */
Test(vulkan_edges, split_kv) {
  checkf("vksplit", "[workload]\nq_heads = 2\nhead_dim = 32\nseq_len = 203\n"
         "[scheme]\nplugin = rope\n" RUN, 61);
  checkf("vksplit", "[workload]\nq_heads = 2\nhead_dim = 32\nseq_len = 203\n"
         "causal = false\nwindow = 30\n[scheme]\nplugin = alibi\n" RUN, 62);
  checkf("vk", "[workload]\nq_heads = 16\nkv_heads = 2\nhead_dim = 128\n"
         "q_len = 1\nseq_len = 3001\n[scheme]\nplugin = sinusoidal\n" RUN, 63);
}

Test(vulkan_edges, encode_op) {
  checkf("vk", "[workload]\nop = encode\nq_heads = 4\nkv_heads = 2\n"
         "head_dim = 40\nq_len = 7\nseq_len = 53\nposition_offset = 70000\n"
         "[scheme]\nplugin = rope\n" RUN, 71);
  checkf("vk", "[workload]\nop = encode\nq_heads = 2\nhead_dim = 16\n"
         "seq_len = 33\n[scheme]\nplugin = sinusoidal\n" RUN, 72);
}

/* The shared-memory gpu kernel (what a GPU gets) on small shapes. */
Test(vulkan_gpu_kernel, small_shapes) {
  checkf("vkgpu", "[workload]\nq_heads = 4\nkv_heads = 2\nhead_dim = 16\n"
         "seq_len = 45\nwindow = 11\n[scheme]\nplugin = rope\n" RUN, 81);
  checkf("vkgpu", "[workload]\nq_heads = 2\nhead_dim = 16\nseq_len = 37\n"
         "causal = false\n[scheme]\nplugin = alibi\n" RUN, 82);
  checkf("vkgpu", "[workload]\nq_heads = 8\nkv_heads = 2\nhead_dim = 16\n"
         "q_len = 3\nseq_len = 700\n[scheme]\nplugin = rope\n" RUN, 83);
}

/* ---- errors, devices, cache --------------------------------------------- */

/* Log lines of the runs below, when a test wants them. */
static char log_text[4096];
static int log_on;

static void capture(void *user, int level, const char *origin,
                    const char *message) {
  size_t len = strlen(log_text);
  (void)user;
  (void)level;
  snprintf(log_text + len, sizeof log_text - len, "%s: %s\n",
           origin ? origin : "core", message);
}

/* One run of a small rope workload with head_dim `dim`. */
static pe_result *run_dim(unsigned dim, const char *extra_options,
                          const char *label) {
  need_vulkan();
  char text[2048];
  snprintf(text, sizeof text,
           "[workload]\nq_heads = 2\nhead_dim = %u\nseq_len = 9\n"
           "[scheme]\nplugin = rope\n[run]\nwarmup = 0\niterations = 1\n"
           "[backend.%s]\nplugin = vulkan\n%s%s",
           dim, label, extra_options,
           validation() ? "validation = true\n" : "");
  pe_ctx *ctx = pe_test_ctx();
  if (log_on) pe_ctx_set_log(ctx, capture, NULL);
  pe_config *cfg;
  cr_assert_eq(pe_config_parse(ctx, text, "test_vulkan.ini", NULL, &cfg), 0,
               "%s", pe_ctx_error(ctx));
  pe_workload *w;
  cr_assert_eq(pe_workload_build(ctx, cfg, &w), 0, "%s", pe_ctx_error(ctx));
  pe_result *r = NULL;
  pe_run(ctx, w, cfg, label, &r);
  cr_assert_not_null(r);
  pe_workload_free(w);
  pe_config_free(cfg);
  pe_ctx_free(ctx);
  return r;
}

static pe_result *run_one(const char *extra_options, const char *label) {
  return run_dim(8, extra_options, label);
}

Test(vulkan_errors, unknown_device_name) {
  pe_result *r = run_one("device = no-such-device-xyz\n", "vk");
  skip_if_unavailable(r, "vk");
  cr_expect_eq(r->status, PE_RUN_UNSUPPORTED, "status %u: %s", r->status, r->message);
  cr_expect(strstr(r->message, "no-such-device-xyz") != NULL, "%s", r->message);
  cr_expect(strstr(r->message, "devices:") != NULL, "lists the devices: %s", r->message);
  pe_result_free(r);
}

Test(vulkan_errors, device_index_out_of_range) {
  pe_result *r = run_one("device = 99\n", "vk");
  skip_if_unavailable(r, "vk");
  cr_expect_eq(r->status, PE_RUN_UNSUPPORTED, "status %u: %s", r->status, r->message);
  cr_expect(strstr(r->message, "device = 99") != NULL, "%s", r->message);
  pe_result_free(r);
}

/* No driver at all: vkCreateInstance answers VK_ERROR_INCOMPATIBLE_DRIVER
 * (-9); the run is unsupported with the reason, nothing crashes. */
Test(vulkan_errors, no_driver) {
  setenv("VK_DRIVER_FILES", "/nonexistent/libpe-no-icd.json", 1);
  setenv("VK_ICD_FILENAMES", "/nonexistent/libpe-no-icd.json", 1);
  pe_result *r = run_one("", "vk");
  cr_expect_eq(r->status, PE_RUN_UNSUPPORTED, "status %u: %s", r->status, r->message);
  cr_expect(strstr(r->message, "no device") != NULL, "%s", r->message);
  pe_result_free(r);
}

/* A refused tile option: the run fails naming `want` (each of the
 * '|'-separated words) before any pipeline is compiled. */
static void expect_refused(unsigned dim, const char *options, const char *want) {
  pe_result *r = run_dim(dim, options, "vk");
  skip_if_unavailable(r, "vk");
  cr_expect_neq(r->status, PE_RUN_OK, "[%s] accepted: %s", options,
                r->device.details);
  char words[256];
  snprintf(words, sizeof words, "%s", want);
  for (char *save = NULL, *w = strtok_r(words, "|", &save); w;
       w = strtok_r(NULL, "|", &save))
    cr_expect(strstr(r->message, w) != NULL, "[%s] lacks '%s': %s", options,
              w, r->message);
  pe_result_free(r);
}

/* The cpu kernel's compile time grows with rows x head_dim: explicit
 * tile_rows above its limit are refused, not compiled for minutes. */
Test(vulkan_options, cpu_tile_rows_limit) {
  expect_refused(8, "kernel = cpu\ntile_rows = 256\n",
                 "tile_rows = 256|above 16|cpu kernel");
  expect_refused(256, "kernel = cpu\ntile_rows = 16\n",
                 "tile_rows = 16|above 8|head_dim 256");
}

/* tile_keys belongs to the gpu kernel: refused when kernel = cpu is asked
 * for (with auto on a CPU driver it is only said not to apply). */
Test(vulkan_options, cpu_kernel_refuses_tile_keys) {
  expect_refused(8, "kernel = cpu\ntile_keys = 16\n", "tile_keys = 16|gpu kernel only|kernel = cpu");
}

/* Explicit gpu tiles are used as given or refused with the numbers. */
Test(vulkan_options, gpu_tiles_refused_not_changed) {
  expect_refused(8, "kernel = gpu\ntile_keys = 3\n",
                 "tile_keys = 3|not a power of two");
  expect_refused(512, "kernel = gpu\ntile_keys = 256\n",
                 "tile_keys = 256|needs 1048576 bytes of shared memory|"
                 "the device has");
  expect_refused(64, "kernel = gpu\ntile_rows = 256\n",
                 "tile_rows = 256|2048 invocations|the device allows");
}

/* The gpu kernel with explicit tiles that fit runs them as given. */
Test(vulkan_options, gpu_tiles_used_as_given) {
  pe_result *r = run_one("kernel = gpu\ntile_rows = 4\ntile_keys = 4\n", "vk");
  skip_if_unavailable(r, "vk");
  cr_expect_eq(r->status, PE_RUN_OK, "%s", r->message);
  cr_expect(strstr(r->device.details, "4 rows x") &&
                strstr(r->device.details, "4 keys per tile"),
            "%s", r->device.details);
  pe_result_free(r);
}

/* The device is reported with the reason it was chosen, and the kernel. */
Test(vulkan_devices, describe_reports_choice) {
  pe_result *r = run_one("", "vk");
  skip_if_unavailable(r, "vk");
  cr_expect_eq(r->status, PE_RUN_OK, "%s", r->message);
  cr_expect(strstr(r->device.details, "chosen automatically") != NULL, "%s",
            r->device.details);
  cr_expect(strstr(r->device.details, "kernel ") != NULL, "%s", r->device.details);
  pe_result_free(r);
}

static void count_device(void *user, const pe_device_info *info) {
  int *n = user;
  cr_expect(info->name[0] != 0, "device without a name");
  cr_expect(strstr(info->details, "shared memory") != NULL, "%s", info->details);
  cr_expect(strstr(info->details, "subgroup") != NULL, "%s", info->details);
  cr_expect(strstr(info->details, "fp16") != NULL, "%s", info->details);
  (*n)++;
}

Test(vulkan_devices, enumerate) {
  need_vulkan();
  pe_ctx *ctx = pe_test_ctx();
  const pe_plugin *p;
  cr_assert_eq(pe_plugin_load(ctx, "vulkan", PE_PLUGIN_BACKEND, &p), 0, "%s",
               pe_ctx_error(ctx));
  int n = 0;
  int rc = pe_plugin_devices(ctx, p, count_device, &n);
  if (rc == PE_EUNSUPPORTED) cr_skip_test("vulkan: %s", pe_ctx_error(ctx));
  cr_expect_eq(rc, 0, "%s", pe_ctx_error(ctx));
  cr_expect_geq(n, 1, "no device listed");
  pe_ctx_free(ctx);
}

/* The pipeline cache lands in PE_CACHE_DIR; a corrupt file is ignored and
 * replaced, never fatal. */
static int find_cache(const char *dir, char *path, size_t size) {
  DIR *d = opendir(dir);
  int found = 0;
  if (!d) return 0;
  for (struct dirent *e; !found && (e = readdir(d));)
    if (!strncmp(e->d_name, "vulkan-", 7) && strstr(e->d_name, ".bin") &&
        !strstr(e->d_name, ".bin.")) {
      snprintf(path, size, "%s/%s", dir, e->d_name);
      found = 1;
    }
  closedir(d);
  return found;
}

Test(vulkan_cache, persisted_and_corrupt_ignored) {
  char dir[] = "/tmp/libpe-vkcache-XXXXXX";
  cr_assert_not_null(mkdtemp(dir));
  setenv("PE_CACHE_DIR", dir, 1);
  pe_result *r = run_one("", "vk");
  skip_if_unavailable(r, "vk");
  cr_expect_eq(r->status, PE_RUN_OK, "%s", r->message);
  pe_result_free(r);
  char path[4200];
  cr_assert(find_cache(dir, path, sizeof path), "no vulkan-*.bin in %s", dir);
  FILE *f = fopen(path, "wb");
  cr_assert_not_null(f);
  fputs("PEVKPC01 this is not a pipeline cache", f);
  fclose(f);
  r = run_one("", "vk");
  cr_expect_eq(r->status, PE_RUN_OK, "corrupt cache: %s", r->message);
  pe_result_free(r);
  f = fopen(path, "rb");
  cr_assert_not_null(f);
  char magic[8] = {0};
  cr_expect_eq(fread(magic, 1, 8, f), 8u);
  fclose(f);
  cr_expect(!memcmp(magic, "PEVKPC01", 8), "cache file not rewritten");
  unlink(path);
  rmdir(dir);
}

/* The cache state comes before the long limits list, so it is never cut;
 * an unwritable cache directory is said once per run, not again at close. */
Test(vulkan_cache, state_in_details_and_write_failure_said_once) {
  pe_result *r = run_one("pipeline_cache = false\n", "vk");
  skip_if_unavailable(r, "vk");
  cr_expect(strstr(r->device.details, "pipeline cache not persisted") != NULL,
            "%s", r->device.details);
  pe_result_free(r);

  /* the file name the device's cache takes, from a run in a good dir */
  char dir[] = "/tmp/libpe-vkcache-XXXXXX", path[4200];
  cr_assert_not_null(mkdtemp(dir));
  setenv("PE_CACHE_DIR", dir, 1);
  r = run_one("", "vk");
  pe_result_free(r);
  cr_assert(find_cache(dir, path, sizeof path), "no vulkan-*.bin in %s", dir);
  /* a directory where the file goes: the save fails, said once */
  cr_assert_eq(unlink(path), 0);
  cr_assert_eq(mkdir(path, 0755), 0);
  log_text[0] = 0;
  log_on = 1;
  r = run_one("", "vk");
  log_on = 0;
  cr_expect_eq(r->status, PE_RUN_OK, "%s", r->message);
  cr_expect(strstr(r->device.details, "pipeline cache not persisted "
                                      "(could not write") != NULL,
            "%s", r->device.details);
  const char *w = strstr(log_text, "could not write pipeline cache");
  cr_expect(w != NULL, "no warning: %s", log_text);
  cr_expect(w && !strstr(w + 1, "could not write pipeline cache"),
            "said more than once: %s", log_text);
  pe_result_free(r);
  rmdir(path);
  rmdir(dir);
}

/* PE_CACHE_DIR naming a plain file: the core says so once, the backend
 * runs without a cache and adds no warnings of its own about it. */
Test(vulkan_cache, cache_dir_that_is_a_file) {
  char file[] = "/tmp/libpe-vkcache-file-XXXXXX";
  int fd = mkstemp(file);
  cr_assert_geq(fd, 0);
  close(fd);
  setenv("PE_CACHE_DIR", file, 1);
  log_text[0] = 0;
  log_on = 1;
  pe_result *r = run_one("", "vk");
  log_on = 0;
  skip_if_unavailable(r, "vk");
  cr_expect_eq(r->status, PE_RUN_OK, "%s", r->message);
  cr_expect(strstr(r->device.details, "pipeline cache not persisted (no cache directory)"),
            "%s", r->device.details);
  const char *w = strstr(log_text, ": not a directory; compiled kernels are not cached");
  cr_expect(w != NULL, "no warning: %s", log_text);
  cr_expect(w && !strstr(w + 16, "not a directory"), "said more than once: %s", log_text);
  cr_expect(!strstr(log_text, "pipeline cache /"), "backend warned too: %s", log_text);
  pe_result_free(r);
  unlink(file);
}
