/* The fixed sections of a config: [workload], [inputs], [run] and the
 * plugin name of [scheme], declared with the same pe_param_decl tables
 * plugins use, so they are checked by the same code. */
#include "internal.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NUM(n, f, dflt, lo, hi, doc_) \
  {sizeof(pe_param_decl), PE_PARAM_INTEGER, (f), (n), (doc_), (dflt), (lo), (hi), NULL}
#define MIN_MAX (PE_PARAM_HAS_MIN | PE_PARAM_HAS_MAX)

/* Hard limits: refuse absurd shapes before any allocation (docs/CONFIG.md). */
#define MAX_LEN (1u << 30)       /* tokens */
#define MAX_POSITION 4294967296.0 /* 2^32: float64 angles stay ~1e-6 rad exact */

static const pe_param_decl workload_decls[] = {
    {sizeof(pe_param_decl), PE_PARAM_CHOICE, 0, "op",
     "attention (full attention pass) or encode (apply the scheme to Q and K only)",
     "attention", 0, 0, "attention|encode"},
    NUM("batch", MIN_MAX, "1", 1, 65536, "batch size B"),
    NUM("q_heads", MIN_MAX, "1", 1, 65536, "query heads Hq"),
    NUM("kv_heads", MIN_MAX, NULL, 1, 65536, "key/value heads Hkv (divides Hq; default Hq)"),
    NUM("head_dim", MIN_MAX | PE_PARAM_REQUIRED, NULL, 1, PE_MAX_HEAD_DIM, "head dimension D"),
    NUM("seq_len", MIN_MAX | PE_PARAM_REQUIRED, NULL, 1, MAX_LEN, "keys Skv (context length)"),
    NUM("q_len", MIN_MAX, NULL, 1, MAX_LEN, "queries Sq <= seq_len: the last Sq tokens (default seq_len)"),
    {sizeof(pe_param_decl), PE_PARAM_BOOL, 0, "causal", "mask keys after the query", "true", 0, 0, NULL},
    NUM("window", MIN_MAX, "0", 0, MAX_LEN, "sliding window: keys with |pq - pk| < window; 0 = none"),
    NUM("position_offset", MIN_MAX, "0", 0, MAX_POSITION, "position of key 0"),
    /* bounded so that the backends' float32 copy is a normal, finite number */
    {sizeof(pe_param_decl), PE_PARAM_NUMBER, PE_PARAM_HAS_MIN | PE_PARAM_HAS_MAX,
     "softmax_scale", "logit scale (default 1/sqrt(head_dim))", NULL, 1e-30, 1e30, NULL},
};

static const pe_param_decl inputs_decls[] = {
    {sizeof(pe_param_decl), PE_PARAM_STRING, 0, "q", "Q as .npy [B][Hq][Sq][D] (relative to the config)", NULL, 0, 0, NULL},
    {sizeof(pe_param_decl), PE_PARAM_STRING, 0, "k", "K as .npy [B][Hkv][Skv][D]", NULL, 0, 0, NULL},
    {sizeof(pe_param_decl), PE_PARAM_STRING, 0, "v", "V as .npy [B][Hkv][Skv][D]", NULL, 0, 0, NULL},
    {sizeof(pe_param_decl), PE_PARAM_CHOICE, 0, "distribution",
     "generated inputs: normal (N(0, scale^2)) or uniform ([-scale, scale))", "normal", 0, 0, "normal|uniform"},
    {sizeof(pe_param_decl), PE_PARAM_NUMBER, PE_PARAM_HAS_MIN | PE_PARAM_MIN_OPEN | PE_PARAM_HAS_MAX,
     "scale", "generated inputs: standard deviation or half-width", "1", 0, 1e6, NULL},
};

static const pe_param_decl run_decls[] = {
    NUM("warmup", MIN_MAX, "1", 0, 1000, "untimed runs before timing"),
    NUM("iterations", MIN_MAX, "5", 1, 100000, "timed runs (min/median/max reported)"),
    {sizeof(pe_param_decl), PE_PARAM_BOOL, 0, "verify", "compare with the float64 oracle", "true", 0, 0, NULL},
    NUM("verify_rows", MIN_MAX, "0", 0, MAX_LEN, "query rows per head to verify; 0 = all when cheap, else a sample"),
    {sizeof(pe_param_decl), PE_PARAM_NUMBER, PE_PARAM_HAS_MIN | PE_PARAM_MIN_OPEN, "tolerance",
     "max abs error allowed on the output", "2e-4", 0, 0, NULL},
    NUM("seed", PE_PARAM_HAS_MIN, "0", 0, 0, "seed of the input generator"),
    {sizeof(pe_param_decl), PE_PARAM_STRING, 0, "max_memory",
     "refuse workloads needing more host memory: bytes, or with K/M/G/T suffix (default: half of RAM, or of the cgroup memory limit when lower)", NULL, 0, 0, NULL},
};

enum { W_OP, W_BATCH, W_QH, W_KVH, W_D, W_SEQ, W_QLEN, W_CAUSAL, W_WINDOW, W_OFFSET, W_SCALE, W_N };
enum { I_Q, I_K, I_V, I_DIST, I_SCALE, I_N };
enum { R_WARMUP, R_ITER, R_VERIFY, R_VROWS, R_TOL, R_SEED, R_MAXMEM, R_N };

static int build(pe_ctx *ctx, const pe_config *cfg, const char *section,
                 const pe_param_decl *decls, size_t n, pe__values *out) {
  const pe_param_decl *ptrs[16];
  for (size_t i = 0; i < n; i++) ptrs[i] = &decls[i];
  ptrs[n] = NULL;
  char owner[32];
  snprintf(owner, sizeof owner, "[%s]", section);
  return pe__values_build(ctx, cfg, section, NULL, ptrs, owner, out);
}

/* A cgroup memory limit file ("max" or bytes); UINT64_MAX when none. */
static uint64_t read_limit(const char *path) {
  FILE *fp = fopen(path, "r");
  if (!fp) return UINT64_MAX;
  unsigned long long v;
  uint64_t limit = fscanf(fp, "%llu", &v) == 1 ? (uint64_t)v : UINT64_MAX;
  fclose(fp);
  return limit;
}

/* The tightest memory limit of this process's cgroup and its ancestors
 * (cgroup v2 memory.max, v1 memory.limit_in_bytes): in a container, half
 * of the host's RAM can be far more than the container may use, and the
 * OOM killer does not give a message. */
static uint64_t cgroup_limit(void) {
  uint64_t best = UINT64_MAX;
  FILE *fp = fopen("/proc/self/cgroup", "r");
  char line[1024];
  while (fp && fgets(line, sizeof line, fp)) {
    line[strcspn(line, "\n")] = '\0';
    char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
    if (!c2 || c2[1] != '/') continue;
    *c2 = '\0';
    const char *controllers = c1 + 1, *file;
    char base[64];
    if (!controllers[0]) { /* v2 */
      snprintf(base, sizeof base, "/sys/fs/cgroup");
      file = "memory.max";
    } else if (strstr(controllers, "memory")) {
      snprintf(base, sizeof base, "/sys/fs/cgroup/memory");
      file = "memory.limit_in_bytes";
    } else {
      continue;
    }
    /* The group and every ancestor, then the mount root (a container
     * often sees its own group there). */
    char dir[1024], path[1200];
    snprintf(dir, sizeof dir, "%s", c2 + 1);
    for (;;) {
      snprintf(path, sizeof path, "%s%s/%s", base, dir, file);
      uint64_t v = read_limit(path);
      if (v < best) best = v;
      char *slash = strrchr(dir, '/');
      if (!slash || !dir[0]) break;
      *slash = '\0';
    }
  }
  if (fp) fclose(fp);
  return best;
}

static uint64_t physical_memory(void) {
  long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGESIZE);
  uint64_t ram = pages > 0 && size > 0 ? (uint64_t)pages * (uint64_t)size : (uint64_t)8 << 30;
  uint64_t cg = cgroup_limit();
  return cg < ram && cg > 0 ? cg : ram;
}

static int parse_bytes(const char *t, uint64_t *out) {
  char *end;
  double v = strtod(t, &end);
  if (end == t || !isfinite(v) || v <= 0) return PE_EINVAL;
  double mul = 1;
  switch (toupper((unsigned char)*end)) {
  case 'K': mul = 1024.0; end++; break;
  case 'M': mul = 1048576.0; end++; break;
  case 'G': mul = 1073741824.0; end++; break;
  case 'T': mul = 1099511627776.0; end++; break;
  default: break;
  }
  if (toupper((unsigned char)*end) == 'B') end++;
  if (*end || v * mul >= 1.8e19) return PE_EINVAL;
  *out = (uint64_t)(v * mul);
  return 0;
}

static int read_workload(pe_ctx *ctx, const pe_config *cfg, pe__settings *s) {
  pe__values v;
  int rc = build(ctx, cfg, "workload", workload_decls, W_N, &v);
  if (rc) return rc;
  const pe_param_value *const *p = v.ptrs;
  s->op = p[W_OP]->integer == 0 ? PE_OP_ATTENTION : PE_OP_ENCODE;
  s->batch = (uint32_t)p[W_BATCH]->integer;
  s->q_heads = (uint32_t)p[W_QH]->integer;
  s->kv_heads = p[W_KVH]->present ? (uint32_t)p[W_KVH]->integer : s->q_heads;
  s->head_dim = (uint32_t)p[W_D]->integer;
  s->kv_len = (uint64_t)p[W_SEQ]->integer;
  s->q_len = p[W_QLEN]->present ? (uint64_t)p[W_QLEN]->integer : s->kv_len;
  s->causal = p[W_CAUSAL]->integer != 0;
  s->window = (uint64_t)p[W_WINDOW]->integer;
  s->position_offset = (uint64_t)p[W_OFFSET]->integer;
  s->softmax_scale = p[W_SCALE]->present ? p[W_SCALE]->number : 0;
  pe__values_free(&v);
  if (s->q_heads % s->kv_heads)
    return pe__fail(ctx, PE_ECONFIG, "%s: [workload] q_heads = %u is not a multiple of "
                    "kv_heads = %u (grouped-query attention needs Hq %% Hkv == 0)",
                    cfg->name, s->q_heads, s->kv_heads);
  if (s->q_len > s->kv_len)
    return pe__fail(ctx, PE_ECONFIG, "%s: [workload] q_len = %llu exceeds seq_len = %llu "
                    "(queries are the last q_len of the seq_len tokens)", cfg->name,
                    (unsigned long long)s->q_len, (unsigned long long)s->kv_len);
  if ((double)s->position_offset + (double)s->kv_len > MAX_POSITION)
    return pe__fail(ctx, PE_ECONFIG, "%s: [workload] position_offset + seq_len = %.0f "
                    "exceeds 2^32 positions", cfg->name,
                    (double)s->position_offset + (double)s->kv_len);
  return 0;
}

static int read_inputs(pe_ctx *ctx, const pe_config *cfg, pe__settings *s) {
  pe__values v;
  int rc = build(ctx, cfg, "inputs", inputs_decls, I_N, &v);
  if (rc) return rc;
  int given = 0;
  for (int i = 0; i < 3; i++) given += v.ptrs[i]->present;
  bool need_v = s->op == PE_OP_ATTENTION;
  if (given && (!v.ptrs[I_Q]->present || !v.ptrs[I_K]->present || (need_v && !v.ptrs[I_V]->present))) {
    pe__values_free(&v);
    return pe__fail(ctx, PE_ECONFIG, "%s: [inputs] gives some of q, k, v but not all: "
                    "give q, k%s as .npy files, or none to generate them", cfg->name,
                    need_v ? " and v" : "");
  }
  static const char *const names[3] = {"q", "k", "v"};
  for (int i = 0; i < 3 && rc == 0; i++) {
    if (!v.ptrs[i]->present) continue;
    if (!*v.ptrs[i]->text) {
      const pe__entry *e = pe__config_find(cfg, "inputs", names[i]);
      rc = pe__fail(ctx, PE_ECONFIG, "%s: [inputs] %s is empty: give the path of a .npy "
                    "file", PE_AT(cfg, e ? e->line : 0), names[i]);
    } else if (!(s->input_path[i] = pe__path_join(cfg->base_dir, v.ptrs[i]->text))) {
      rc = pe__fail(ctx, PE_ENOMEM, "out of memory");
    }
  }
  s->distribution = (uint32_t)v.ptrs[I_DIST]->integer + 1;
  s->input_scale = v.ptrs[I_SCALE]->number;
  pe__values_free(&v);
  return rc;
}

static int read_run(pe_ctx *ctx, const pe_config *cfg, pe__settings *s) {
  pe__values v;
  int rc = build(ctx, cfg, "run", run_decls, R_N, &v);
  if (rc) return rc;
  const pe_param_value *const *p = v.ptrs;
  s->warmup = (uint32_t)p[R_WARMUP]->integer;
  s->iterations = (uint32_t)p[R_ITER]->integer;
  s->verify = p[R_VERIFY]->integer != 0;
  s->verify_rows = (uint64_t)p[R_VROWS]->integer;
  s->tolerance = p[R_TOL]->number;
  s->seed = (uint64_t)p[R_SEED]->integer;
  s->max_memory = physical_memory() / 2;
  if (p[R_MAXMEM]->present && parse_bytes(p[R_MAXMEM]->text, &s->max_memory) != 0) {
    const pe__entry *e = pe__config_find(cfg, "run", "max_memory");
    rc = pe__fail(ctx, PE_ECONFIG, "%s: [run] max_memory = %s: not a size (accepted: "
                  "bytes > 0, or with a K, M, G or T suffix, e.g. 8G)",
                  PE_AT(cfg, e ? e->line : 0), p[R_MAXMEM]->text);
  }
  pe__values_free(&v);
  return rc;
}

static bool has_word(const char *list, const char *word) {
  size_t n = strlen(word);
  for (const char *p = list; (p = strstr(p, word)); p += n)
    if ((p == list || isspace((unsigned char)p[-1])) && (!p[n] || isspace((unsigned char)p[n])))
      return true;
  return false;
}

/* [scheme.NAME] applies when plugin = NAME, or when a [sweep] runs NAME;
 * anywhere else its keys would be silently unused: refuse. */
static int check_scheme_sections(pe_ctx *ctx, const pe_config *cfg, const char *plugin) {
  const pe__entry *sweep = pe__config_find(cfg, "sweep", "scheme.plugin");
  for (size_t i = 0; i < cfg->n_entries; i++) {
    const pe__entry *e = &cfg->entries[i];
    if (strncmp(e->section, "scheme.", 7)) continue;
    const char *name = e->section + 7;
    if (!strcmp(name, plugin) || (sweep && has_word(sweep->value, name))) continue;
    return pe__fail(ctx, PE_ECONFIG, "%s: [%s] applies only when [scheme] plugin = %s, "
                    "but plugin = %s and no [sweep] scheme.plugin lists %s", PE_AT(cfg, e->line),
                    e->section, name, plugin, name);
  }
  return 0;
}

static int read_scheme(pe_ctx *ctx, const pe_config *cfg, pe__settings *s) {
  const pe__entry *e = pe__config_find(cfg, "scheme", "plugin");
  if (!e)
    return pe__fail(ctx, PE_ECONFIG, "%s: [scheme] missing required key 'plugin' (e.g. "
                    "plugin = rope; 'pe-bench list' shows the schemes found)", cfg->name);
  if (!e->value[0] || e->continued)
    return pe__fail(ctx, PE_ECONFIG, "%s: [scheme] plugin = %s: expected one plugin name "
                    "or path", PE_AT(cfg, e->line), e->value);
  s->scheme_plugin = pe__strdup(e->value);
  if (!s->scheme_plugin) return pe__fail(ctx, PE_ENOMEM, "out of memory");
  return check_scheme_sections(ctx, cfg, s->scheme_plugin);
}

int pe__settings_read(pe_ctx *ctx, const pe_config *cfg, pe__settings *s) {
  memset(s, 0, sizeof *s);
  int rc = read_workload(ctx, cfg, s);
  if (rc == 0) rc = read_inputs(ctx, cfg, s);
  if (rc == 0) rc = read_run(ctx, cfg, s);
  if (rc == 0) rc = read_scheme(ctx, cfg, s);
  if (rc) pe__settings_free(s);
  return rc;
}

void pe__settings_free(pe__settings *s) {
  for (int i = 0; i < 3; i++) free(s->input_path[i]);
  free(s->scheme_plugin);
  memset(s, 0, sizeof *s);
}
