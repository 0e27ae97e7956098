/* Fuzz target: the .npy reader (pe_npy_read) on arbitrary file contents,
 * a write/read round trip of whatever it accepts (pe_npy_write), and the
 * workload's input loader (a config whose q is the fuzzed file, with k and
 * v from the golden case rope-decode: shape checks and their messages).
 *
 * Invariants checked besides memory safety: a refusal always has a message
 * naming the file; an accepted tensor's data is exactly the file's payload
 * (product of the shape x 4 bytes); writing it and reading it back gives the
 * same shape and bytes.  Environment: PE_PLUGIN_PATH (the none scheme),
 * PE_FUZZ_OUT_DIR (scratch directory; default: a new one in /dev/shm). */
#include "fuzz_common.h"

#include <fcntl.h>

static pe_ctx *ctx;
static char dir[4096], in_path[4200], out_path[4200], config[16384];

static void init(void) {
  if (ctx) return;
  if (pe_ctx_new(&ctx) != 0) fuzz_die("pe_ctx_new failed");
  pe_ctx_set_log(ctx, fuzz_quiet_log, NULL);
  fuzz_scratch_dir(dir, sizeof dir);
  snprintf(in_path, sizeof in_path, "%s/in.npy", dir);
  snprintf(out_path, sizeof out_path, "%s/out.npy", dir);
  const char *golden = getenv("PE_GOLDEN_DIR");
  char gdir[4096];
  if (golden && golden[0]) snprintf(gdir, sizeof gdir, "%s/attention/rope-decode", golden);
  else snprintf(gdir, sizeof gdir, "%s/tests/golden/attention/rope-decode", PE_FUZZ_SRCDIR);
  snprintf(config, sizeof config,
           "[workload]\nbatch = 1\nq_heads = 2\nhead_dim = 8\nq_len = 1\nseq_len = 33\n"
           "[inputs]\nq = in.npy\nk = %s/k.npy\nv = %s/v.npy\n[scheme]\nplugin = none\n"
           "[run]\nmax_memory = 8M\n", gdir, gdir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  init();
  return 0;
}

static void write_input(const uint8_t *data, size_t size) {
  int fd = open(in_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) fuzz_die("cannot write %s", in_path);
  for (size_t done = 0; done < size;) {
    ssize_t n = write(fd, data + done, size - done);
    if (n <= 0) fuzz_die("short write to %s", in_path);
    done += (size_t)n;
  }
  close(fd);
}

static void check_refusal(int rc, const char *path) {
  if (rc == 0) return;
  if (rc > 0 || !strstr(pe_ctx_error(ctx), path))
    fuzz_die("refusal %d without a message naming %s: '%s'", rc, path, pe_ctx_error(ctx));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  init();
  if (size > (1u << 20)) return 0;
  write_input(data, size);
  pe_tensor t;
  int rc = pe_npy_read(ctx, in_path, &t);
  check_refusal(rc, in_path);
  if (rc == 0) {
    if (t.ndim > 8 || !t.data) fuzz_die("accepted ndim %u, data %p", t.ndim, (void *)t.data);
    uint64_t count = 1;
    for (uint32_t i = 0; i < t.ndim; i++) count *= t.shape[i];
    if (count * 4 > size) fuzz_die("accepted %llu elements from %zu bytes", (unsigned long long)count, size);
    if (count && memcmp(t.data, data + size - count * 4, count * 4))
      fuzz_die("data differs from the file's payload");
    rc = pe_npy_write(ctx, out_path, t.data, t.ndim, t.shape);
    if (rc != 0) fuzz_die("writing back an accepted tensor failed: %s", pe_ctx_error(ctx));
    pe_tensor u;
    rc = pe_npy_read(ctx, out_path, &u);
    if (rc != 0) fuzz_die("reading back a written tensor failed: %s", pe_ctx_error(ctx));
    if (u.ndim != t.ndim || memcmp(u.shape, t.shape, t.ndim * sizeof t.shape[0]) ||
        (count && memcmp(u.data, t.data, count * 4)))
      fuzz_die("round trip changed the tensor");
    pe_tensor_free(&u);
    pe_tensor_free(&t);
  }
  /* The same file as a workload's q. */
  pe_config *cfg;
  rc = pe_config_parse(ctx, config, "npy.ini", dir, &cfg);
  if (rc != 0) fuzz_die("harness config refused: %s", pe_ctx_error(ctx));
  pe_workload *w = NULL;
  rc = pe_workload_build(ctx, cfg, &w);
  check_refusal(rc, "in.npy");
  pe_workload_free(w);
  pe_config_free(cfg);
  return 0;
}
