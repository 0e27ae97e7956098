/* Workloads: validate the config against the scheme plugin, read or
 * generate inputs, and derive the tables every backend receives, computed
 * in float64 and rounded once (ARCHITECTURE.md "Scheme -> backend"). */
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *kind_label(uint32_t kind) {
  switch (kind) {
  case PE_KIND_NONE: return "none";
  case PE_KIND_ROTARY: return "rotary";
  case PE_KIND_ADDITIVE: return "additive";
  case PE_KIND_BIAS: return "bias";
  default: return "?";
  }
}

/* An upper bound of the host memory one run of the workload needs, for the
 * max_memory check, counted before anything is allocated.  false: the sum
 * overflows 64 bits.  Per element of Q (B*Hq*Sq*D): the input, the
 * backend's output, the fetched copy (float32) and the oracle's expected
 * values (float64, when verifying; at most every row).  Per element of K
 * and of V (B*Hkv*Skv*D): the inputs; for op = encode also K' as the
 * backend's output, its fetched copy and the oracle's K'.  Per key row and
 * head dim (Skv*D): the float32 tables (cos and sin, or additive), the
 * oracle's float64 K' and V' of one kv head and its cos/sin, a backend's
 * staged K row block.  Per key row: the oracle's and a backend's logits;
 * per query row: the verified row list. */
typedef struct mem_sum {
  uint64_t total;
  bool ok;
} mem_sum;

static void mem_add(mem_sum *m, uint64_t a, uint64_t b) {
  uint64_t p;
  if (!pe__mul_u64(a, b, &p) || m->total + p < m->total) m->ok = false;
  else m->total += p;
}

static bool memory_needed(const pe__settings *s, uint64_t *bytes) {
  uint64_t q = 0, kv = 0, rows_d = 0;
  mem_sum m = {0, true};
  m.ok = pe__mul_u64(s->batch, s->q_heads, &q) && pe__mul_u64(q, s->q_len, &q) &&
         pe__mul_u64(q, s->head_dim, &q) && pe__mul_u64(s->batch, s->kv_heads, &kv) &&
         pe__mul_u64(kv, s->kv_len, &kv) && pe__mul_u64(kv, s->head_dim, &kv) &&
         pe__mul_u64(s->kv_len, s->head_dim, &rows_d);
  bool encode = s->op == PE_OP_ENCODE;
  uint64_t oracle = s->verify ? 8 : 0;
  mem_add(&m, q, 4 + 4 + 4 + oracle);
  mem_add(&m, kv, 4 + 4 + (encode ? 4 + 4 + oracle : 0));
  mem_add(&m, rows_d, 4 + (s->verify ? 16 + 8 : 0) + 4);
  mem_add(&m, s->kv_len, 8 + 8);
  mem_add(&m, s->q_len, 8);
  *bytes = m.total;
  return m.ok;
}

/* "512.0 MiB", "1.5 GiB". */
static void human_bytes(char *buf, size_t size, uint64_t bytes) {
  static const char *const units[] = {"bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  double v = (double)bytes;
  size_t u = 0;
  while (v >= 1024 && u + 1 < sizeof units / sizeof *units) v /= 1024, u++;
  if (u == 0) snprintf(buf, size, "%llu bytes", (unsigned long long)bytes);
  else snprintf(buf, size, "%.1f %s", v, units[u]);
}

static int check_limits(pe_ctx *ctx, const pe_config *cfg, const pe__settings *s) {
  uint64_t need;
  char max_text[32];
  if (!memory_needed(s, &need))
    return pe__fail(ctx, PE_ELIMIT, "%s: the workload's size overflows 64 bits "
                    "(batch %u, heads %u/%u, seq_len %llu, head_dim %u)", cfg->name,
                    s->batch, s->q_heads, s->kv_heads, (unsigned long long)s->kv_len,
                    s->head_dim);
  uint64_t limit = s->max_memory < (uint64_t)SIZE_MAX ? s->max_memory : (uint64_t)SIZE_MAX;
  if (need > limit) {
    human_bytes(max_text, sizeof max_text, limit);
    return pe__fail(ctx, PE_ELIMIT, "%s: the workload needs up to %.3g GiB of host memory, "
                    "more than max_memory = %s (refused before allocating; [run] max_memory "
                    "raises the limit)", cfg->name, (double)need / 1073741824.0, max_text);
  }
  return 0;
}

/* "nan", "inf", "-inf" or %g: the same text on every libc. */
static const char *num_text(char buf[32], double x) {
  if (isnan(x)) return "nan";
  if (isinf(x)) return x > 0 ? "inf" : "-inf";
  snprintf(buf, 32, "%g", x);
  return buf;
}

/* Why x cannot go to the backends, which receive float32: NULL when it
 * can.  zero_ok: whether rounding to 0 or a subnormal is harmless. */
static const char *float32_problem(double x, bool zero_ok) {
  if (!isfinite(x)) return "not finite";
  float f = (float)x;
  if (isinf(f)) return "not finite once rounded to float32 (backends receive float32 tables)";
  if (!zero_ok && x != 0 && fpclassify(f) != FP_NORMAL)
    return "0 or subnormal once rounded to float32 (backends receive float32 tables)";
  return NULL;
}

/* "CONFIG: scheme X: slopes[3] = inf: not finite" (index < 0: no index). */
static int bad_value(pe_ctx *ctx, const pe_config *cfg, const pe_workload *w, const char *name,
                     long index, double x, const char *why) {
  char what[48], buf[32];
  if (index >= 0) snprintf(what, sizeof what, "%s[%ld]", name, index);
  else snprintf(what, sizeof what, "%s", name);
  return pe__fail(ctx, PE_ESCHEME, "%s: scheme %s: %s = %s: %s", cfg->name, w->scheme->desc.name,
                  what, num_text(buf, x), why);
}

/* Every number of the scheme's tables that reaches the backends, checked
 * here so that a bad table is blamed on the scheme, not on a backend
 * failing verification.  The per-position tables are checked as
 * make_tables() rounds them. */
static int check_values(pe_ctx *ctx, const pe_config *cfg, const pe_workload *w) {
  const pe_scheme_tables *t = &w->tables;
  size_t nf = t->kind == PE_KIND_ROTARY     ? t->rotary_dim / 2
              : t->kind == PE_KIND_ADDITIVE ? w->set.head_dim / 2
                                            : 0;
  for (size_t j = 0; j < nf; j++)
    if (!isfinite(t->inv_freq[j]))
      return bad_value(ctx, cfg, w, "inv_freq", (long)j, t->inv_freq[j], "not finite");
  const char *why;
  for (uint32_t h = 0; t->kind == PE_KIND_BIAS && h < w->set.q_heads; h++)
    if ((why = float32_problem(t->slopes[h], true)))
      return bad_value(ctx, cfg, w, "slopes", h, t->slopes[h], why);
  /* The factor scales q and k: rounded to 0 it would erase them. */
  why = t->kind == PE_KIND_ROTARY ? float32_problem(t->attention_factor, false)
        : isfinite(t->attention_factor) ? NULL
                                        : "not finite";
  return why ? bad_value(ctx, cfg, w, "attention_factor", -1, t->attention_factor, why) : 0;
}

static int compute_scheme(pe_ctx *ctx, const pe_config *cfg, pe_workload *w) {
  const pe__settings *s = &w->set;
  char *path = pe__config_plugin_path(cfg, s->scheme_plugin);
  int rc = path ? pe_plugin_load(ctx, path, PE_PLUGIN_SCHEME, &w->scheme)
                : pe__fail(ctx, PE_ENOMEM, "out of memory");
  free(path);
  if (rc) return pe__fail_prefix(ctx, rc, "%s: [scheme] plugin = %s", cfg->name, s->scheme_plugin);
  char owner[128];
  snprintf(owner, sizeof owner, "scheme %s", w->scheme->desc.name);
  /* [scheme.NAME] holds parameters that apply only when plugin = NAME
   * (sweeps over scheme.plugin); settings.c checks none is stray. */
  char alt[160];
  snprintf(alt, sizeof alt, "scheme.%s", s->scheme_plugin);
  rc = pe__values_build(ctx, cfg, "scheme", alt, pe_plugin_params(w->scheme), owner, &w->scheme_values);
  if (rc) return rc;
  w->inv_freq = calloc(s->head_dim / 2 + 1, sizeof(double));
  w->slopes = calloc(s->q_heads, sizeof(double));
  if (!w->inv_freq || !w->slopes) return pe__fail(ctx, PE_ENOMEM, "out of memory");
  pe_scheme_tables *t = &w->tables;
  /* kind 0 is no pe_encoding_kind: a scheme that never sets it is refused
   * below instead of silently running as "no encoding". */
  *t = (pe_scheme_tables){.struct_size = sizeof *t, .kind = 0,
                          .rotary_dim = s->head_dim, .pairing = PE_PAIRING_NEOX,
                          .attention_factor = 1.0, .inv_freq = w->inv_freq,
                          .inv_freq_capacity = s->head_dim / 2,
                          .slopes_capacity = s->q_heads, .slopes = w->slopes};
  pe_shape shape = {sizeof shape, s->batch, s->q_heads, s->kv_heads, s->head_dim,
                    s->q_len, s->kv_len, s->position_offset, s->position_offset + s->kv_len};
  char err[1024] = "";
  rc = w->scheme->scheme.compute(&ctx->host, w->scheme_values.ptrs, &shape, t, err, sizeof err);
  if (rc) {
    char msg[1200];
    rc = pe__plugin_failure(rc, PE_ESCHEME, err, msg, sizeof msg);
    return pe__fail(ctx, rc, "%s: [scheme] %s: %s", cfg->name, w->scheme->desc.name, msg);
  }
  /* Trust nothing a module returns. */
  t->inv_freq = w->inv_freq;
  t->slopes = w->slopes;
  t->note[sizeof t->note - 1] = '\0';
  if (t->kind == 0)
    return pe__fail(ctx, PE_ESCHEME, "%s: scheme %s did not set its encoding kind (out->kind: "
                    "PE_KIND_NONE, PE_KIND_ROTARY, PE_KIND_ADDITIVE or PE_KIND_BIAS)", cfg->name,
                    w->scheme->desc.name);
  if (t->kind == PE_KIND_ROTARY && (t->rotary_dim == 0 || t->rotary_dim % 2 ||
                                    t->rotary_dim > s->head_dim ||
                                    (t->pairing != PE_PAIRING_NEOX && t->pairing != PE_PAIRING_INTERLEAVED)))
    return pe__fail(ctx, PE_ESCHEME, "%s: scheme %s returned rotary_dim %u / pairing %u "
                    "(need even, <= head_dim %u; neox or interleaved)", cfg->name,
                    w->scheme->desc.name, t->rotary_dim, t->pairing, s->head_dim);
  if (t->kind == PE_KIND_ADDITIVE && s->head_dim % 2)
    return pe__fail(ctx, PE_ESCHEME, "%s: additive encodings need an even head_dim, got %u",
                    cfg->name, s->head_dim);
  if (t->kind < PE_KIND_NONE || t->kind > PE_KIND_BIAS)
    return pe__fail(ctx, PE_ESCHEME, "%s: scheme %s returned unknown kind %u", cfg->name,
                    w->scheme->desc.name, t->kind);
  return check_values(ctx, cfg, w);
}

/* A .npy file is its payload plus at most this much preamble and header
 * (npy.c accepts headers up to 64 KiB). */
#define NPY_MAX_OVERHEAD (65536u + 12u)

static int load_input(pe_ctx *ctx, const char *path, const char *what, const uint64_t want[4],
                      float **out) {
  /* Refuse a file too large for the shape before reading it, so that no
   * input allocates more than the workload check_limits() admitted (plus
   * the header): a 100 GiB file named by mistake is never read. */
  uint64_t payload = 4 * want[0] * want[1] * want[2] * want[3]; /* bounded by check_limits */
  struct stat st;
  if (stat(path, &st) == 0 && S_ISREG(st.st_mode) &&
      (uint64_t)st.st_size > payload + NPY_MAX_OVERHEAD)
    return pe__fail(ctx, PE_ENPY, "%s: %s is %llu bytes, too large for the shape the workload "
                    "needs (%llu, %llu, %llu, %llu: %llu bytes of float32); not read", path, what,
                    (unsigned long long)st.st_size, (unsigned long long)want[0],
                    (unsigned long long)want[1], (unsigned long long)want[2],
                    (unsigned long long)want[3], (unsigned long long)payload);
  pe_tensor t;
  int rc = pe_npy_read(ctx, path, &t);
  if (rc) return rc;
  bool ok = t.ndim == 4;
  for (int i = 0; ok && i < 4; i++) ok = t.shape[i] == want[i];
  if (!ok) {
    char got[160] = "";
    for (uint32_t i = 0, n = 0; i < t.ndim; i++)
      n += (uint32_t)snprintf(got + n, sizeof got - n, "%s%llu", i ? ", " : "",
                              (unsigned long long)t.shape[i]);
    pe_tensor_free(&t);
    return pe__fail(ctx, PE_ENPY, "%s: %s has shape (%s), the workload needs (%llu, %llu, "
                    "%llu, %llu)", path, what, got, (unsigned long long)want[0],
                    (unsigned long long)want[1], (unsigned long long)want[2],
                    (unsigned long long)want[3]);
  }
  /* A NaN or infinity would only surface later as a failed verification
   * with an error of inf or nan, the file unnamed. */
  const uint64_t n = want[0] * want[1] * want[2] * want[3];
  for (uint64_t i = 0; i < n; i++)
    if (!isfinite(t.data[i])) {
      const uint64_t d = i % want[3], r = i / want[3];
      const uint64_t sq = r % want[2], h = r / want[2] % want[1], b = r / want[2] / want[1];
      const float x = t.data[i];
      pe_tensor_free(&t);
      return pe__fail(ctx, PE_ENPY, "%s: %s[%llu][%llu][%llu][%llu] is %s: inputs must be "
                      "finite", path, what, (unsigned long long)b, (unsigned long long)h,
                      (unsigned long long)sq, (unsigned long long)d,
                      isnan(x) ? "NaN" : x > 0 ? "+inf" : "-inf");
    }
  *out = t.data;
  return 0;
}

static int make_inputs(pe_ctx *ctx, pe_workload *w) {
  const pe__settings *s = &w->set;
  uint64_t qshape[4] = {s->batch, s->q_heads, s->q_len, s->head_dim};
  uint64_t kvshape[4] = {s->batch, s->kv_heads, s->kv_len, s->head_dim};
  size_t nq = (size_t)(qshape[0] * qshape[1] * qshape[2] * qshape[3]);
  size_t nkv = (size_t)(kvshape[0] * kvshape[1] * kvshape[2] * kvshape[3]);
  if (s->input_path[0]) {
    int rc = load_input(ctx, s->input_path[0], "q", qshape, &w->q);
    if (!rc) rc = load_input(ctx, s->input_path[1], "k", kvshape, &w->k);
    if (!rc && s->input_path[2]) rc = load_input(ctx, s->input_path[2], "v", kvshape, &w->v);
    if (rc) return rc;
    if (!w->v && !(w->v = pe__alloc_array(nkv * sizeof(float), true))) return pe__fail(ctx, PE_ENOMEM, "out of memory");
    snprintf(w->inputs_desc, sizeof w->inputs_desc, "%s %s %s", s->input_path[0],
             s->input_path[1], s->input_path[2] ? s->input_path[2] : "(no v)");
    return 0;
  }
  w->q = pe__alloc_array(nq * sizeof(float), false);
  w->k = pe__alloc_array(nkv * sizeof(float), false);
  w->v = pe__alloc_array(nkv * sizeof(float), false);
  if (!w->q || !w->k || !w->v) return pe__fail(ctx, PE_ENOMEM, "out of memory for inputs");
  float *dst[3] = {w->q, w->k, w->v};
  size_t len[3] = {nq, nkv, nkv};
  for (int i = 0; i < 3; i++) {
    if (s->distribution == 2) pe__random_uniform(s->seed, (uint64_t)i + 1, dst[i], len[i]);
    else pe_random_normal(s->seed, (uint64_t)i + 1, dst[i], len[i]);
    if (s->input_scale != 1.0)
      for (size_t j = 0; j < len[i]; j++) dst[i][j] = (float)(dst[i][j] * s->input_scale);
  }
  snprintf(w->inputs_desc, sizeof w->inputs_desc, "generated: %s, scale %g, seed %llu",
           s->distribution == 2 ? "uniform" : "normal", s->input_scale,
           (unsigned long long)s->seed);
  return 0;
}

/* A per-position table entry that is not finite once rounded: phi =
 * position * inv_freq overflowed (inv_freq itself is finite). */
static int bad_row(pe_ctx *ctx, const pe_config *cfg, const pe_workload *w, const char *table,
                   size_t n, size_t j, float x) {
  char b1[32], b2[32];
  double p = (double)(w->set.position_offset + n);
  return pe__fail(ctx, PE_ESCHEME, "%s: scheme %s: %s table, key row %zu (position %.0f), pair "
                  "%zu = %s: not finite (position * inv_freq[%zu] = %s)", cfg->name,
                  w->scheme->desc.name, table, n, p, j, num_text(b1, x), j,
                  num_text(b2, p * w->tables.inv_freq[j]));
}

/* cos/sin times the attention factor per key position, in float64,
 * rounded once. */
static int rope_tables(pe_ctx *ctx, const pe_config *cfg, pe_workload *w) {
  const pe_scheme_tables *t = &w->tables;
  size_t rows = (size_t)w->set.kv_len, half = t->rotary_dim / 2;
  w->rope_cos = pe__alloc_array(rows * half * sizeof(float), false);
  w->rope_sin = pe__alloc_array(rows * half * sizeof(float), false);
  if (!w->rope_cos || !w->rope_sin) return pe__fail(ctx, PE_ENOMEM, "out of memory for tables");
  for (size_t n = 0; n < rows; n++) {
    double p = (double)(w->set.position_offset + n);
    for (size_t j = 0; j < half; j++) {
      double phi = p * t->inv_freq[j];
      float c = (float)(t->attention_factor * cos(phi));
      float sn = (float)(t->attention_factor * sin(phi));
      if (!isfinite(c) || !isfinite(sn))
        return bad_row(ctx, cfg, w, "rotary cos/sin", n, j, isfinite(c) ? sn : c);
      w->rope_cos[n * half + j] = c;
      w->rope_sin[n * half + j] = sn;
    }
  }
  return 0;
}

/* pe(p) = [sin(p f_j), cos(p f_j)] interleaved per key position. */
static int additive_tables(pe_ctx *ctx, const pe_config *cfg, pe_workload *w) {
  size_t rows = (size_t)w->set.kv_len, d = w->set.head_dim;
  if (!(w->additive = pe__alloc_array(rows * d * sizeof(float), false)))
    return pe__fail(ctx, PE_ENOMEM, "out of memory for tables");
  for (size_t n = 0; n < rows; n++) {
    double p = (double)(w->set.position_offset + n);
    for (size_t j = 0; j < d / 2; j++) {
      double phi = p * w->tables.inv_freq[j];
      float sn = (float)sin(phi), c = (float)cos(phi);
      if (!isfinite(sn) || !isfinite(c))
        return bad_row(ctx, cfg, w, "additive", n, j, isfinite(sn) ? c : sn);
      w->additive[n * d + 2 * j] = sn;
      w->additive[n * d + 2 * j + 1] = c;
    }
  }
  return 0;
}

/* The float32 tables backends receive (check_values() has made sure the
 * slopes round to finite values). */
static int make_tables(pe_ctx *ctx, const pe_config *cfg, pe_workload *w) {
  const pe_scheme_tables *t = &w->tables;
  if (t->kind == PE_KIND_ROTARY) return rope_tables(ctx, cfg, w);
  if (t->kind == PE_KIND_ADDITIVE) return additive_tables(ctx, cfg, w);
  if (t->kind == PE_KIND_BIAS) {
    if (!(w->slopes_f = malloc(w->set.q_heads * sizeof(float))))
      return pe__fail(ctx, PE_ENOMEM, "out of memory");
    for (uint32_t h = 0; h < w->set.q_heads; h++) w->slopes_f[h] = (float)t->slopes[h];
  }
  return 0;
}

uint64_t pe__visible_keys(const pe_workload_info *in, uint64_t i, uint64_t *first) {
  /* Query i sits at key row r = Skv - Sq + i; keys n with n <= r (causal)
   * and |r - n| < window. */
  uint64_t r = in->kv_len - in->q_len + i;
  uint64_t lo = 0, hi = in->kv_len - 1;
  if (in->causal) hi = r;
  if (in->window) {
    lo = r + 1 > in->window ? r + 1 - in->window : 0;
    if (!in->causal && r + in->window - 1 < hi) hi = r + in->window - 1;
  }
  if (first) *first = lo;
  return hi >= lo ? hi - lo + 1 : 0;
}

/* sum over r = a..b of max(0, r - c), a <= b <= 2^32, |c| <= 2^32. */
static uint64_t sum_excess(uint64_t a, uint64_t b, int64_t c) {
  if ((int64_t)b <= c) return 0;
  int64_t m = (int64_t)a > c ? (int64_t)a : c + 1;
  uint64_t first = (uint64_t)(m - c), last = (uint64_t)((int64_t)b - c);
  return (first + last) * (last - first + 1) / 2;
}

/* Visible (query, key) pairs of one head: pe__visible_keys summed over the
 * query rows in closed form (the loop was O(q_len): seconds per workload at
 * 2^30 rows, for every cell of a sweep).  Query i sits at key row
 * r = Skv - Sq + i and sees keys lo(r) .. hi(r), never none. */
static uint64_t visible_pairs_per_head(const pe_workload_info *in) {
  uint64_t n = in->q_len, a = in->kv_len - in->q_len, b = in->kv_len - 1, w = in->window;
  uint64_t sum_hi;
  if (in->causal) sum_hi = (a + b) * n / 2;                        /* hi = r */
  else if (!w) sum_hi = n * (in->kv_len - 1);                     /* hi = Skv - 1 */
  else sum_hi = (a + b) * n / 2 + n * (w - 1) -                   /* min(Skv-1, r+W-1) */
                sum_excess(a, b, (int64_t)in->kv_len - (int64_t)w);
  uint64_t sum_lo = w ? sum_excess(a, b, (int64_t)w - 1) : 0;     /* max(0, r+1-W) */
  return sum_hi - sum_lo + n;
}

static void fill_info(pe_workload *w) {
  const pe__settings *s = &w->set;
  pe_workload_info *in = &w->info;
  *in = (pe_workload_info){.struct_size = sizeof *in, .op = s->op, .batch = s->batch,
                           .q_heads = s->q_heads, .kv_heads = s->kv_heads,
                           .head_dim = s->head_dim, .q_len = s->q_len, .kv_len = s->kv_len,
                           .position_offset = s->position_offset, .window = s->window,
                           .causal = s->causal,
                           .softmax_scale = s->softmax_scale > 0 ? s->softmax_scale
                                                                 : 1.0 / sqrt((double)s->head_dim),
                           .scheme = w->scheme->desc.name, .scheme_note = w->tables.note,
                           .tables = &w->tables, .inputs = w->inputs_desc};
  uint64_t pairs = visible_pairs_per_head(in), heads = (uint64_t)s->batch * s->q_heads;
  if (!pe__mul_u64(pairs, heads, &in->visible_pairs)) in->visible_pairs = UINT64_MAX;
  double qbytes = 4.0 * s->batch * s->q_heads * (double)s->q_len * s->head_dim;
  double kvbytes = 4.0 * s->batch * s->kv_heads * (double)s->kv_len * s->head_dim;
  if (s->op == PE_OP_ATTENTION) {
    /* QK^T and PV: 2 D flops each per visible (query, key) pair. */
    in->flops = 4.0 * s->head_dim * (double)pairs * (double)heads; /* unsaturated */
    in->bytes = 2 * qbytes + 2 * kvbytes;
  } else {
    /* Read and write Q and K once. */
    in->flops = 0;
    in->bytes = 2 * qbytes + 2 * kvbytes;
  }
}

static void fill_task(pe_workload *w) {
  const pe__settings *s = &w->set;
  w->task = (pe_task){.struct_size = sizeof w->task, .op = s->op, .kind = w->tables.kind,
                      .batch = s->batch, .q_heads = s->q_heads, .kv_heads = s->kv_heads,
                      .head_dim = s->head_dim, .q_len = s->q_len, .kv_len = s->kv_len,
                      .position_offset = s->position_offset, .causal = s->causal,
                      .window = s->window, .softmax_scale = (float)w->info.softmax_scale,
                      .rotary_dim = w->tables.kind == PE_KIND_ROTARY ? w->tables.rotary_dim : 0,
                      .pairing = w->tables.pairing, .q = w->q, .k = w->k, .v = w->v,
                      .rope_cos = w->rope_cos, .rope_sin = w->rope_sin,
                      .additive = w->additive, .slopes = w->slopes_f};
}

static int build(pe_ctx *ctx, const pe_config *cfg, bool tables_only, pe_workload **out) {
  *out = NULL;
  pe_workload *w = calloc(1, sizeof *w);
  if (!w) return pe__fail(ctx, PE_ENOMEM, "out of memory");
  w->ctx = ctx;
  w->tables_only = tables_only;
  pe__ctx_hold(ctx, &ctx->live_workloads);
  int rc = pe__settings_read(ctx, cfg, &w->set);
  if (rc == 0 && !tables_only) rc = check_limits(ctx, cfg, &w->set);
  if (rc == 0) rc = compute_scheme(ctx, cfg, w);
  if (rc == 0 && !tables_only) rc = make_inputs(ctx, w);
  if (rc == 0 && !tables_only) rc = make_tables(ctx, cfg, w);
  if (tables_only) snprintf(w->inputs_desc, sizeof w->inputs_desc, "none (tables only)");
  if (rc) {
    pe_workload_free(w);
    return rc;
  }
  fill_info(w);
  fill_task(w);
  if (!w->tables.note[0])
    snprintf(w->tables.note, sizeof w->tables.note, "%s", kind_label(w->tables.kind));
  *out = w;
  return 0;
}

int pe_workload_build(pe_ctx *ctx, const pe_config *cfg, pe_workload **out) {
  return build(ctx, cfg, false, out);
}

int pe_workload_build_tables(pe_ctx *ctx, const pe_config *cfg, pe_workload **out) {
  return build(ctx, cfg, true, out);
}

int pe__workload_runnable(pe_ctx *ctx, const pe_workload *w) {
  if (w->tables_only)
    return pe__fail(ctx, PE_ESTATE, "this workload holds only the scheme's tables "
                    "(pe_workload_build_tables): build it with pe_workload_build to run it");
  return 0;
}

void pe_workload_free(pe_workload *w) {
  if (!w) return;
  pe_ctx *ctx = w->ctx;
  pe__settings_free(&w->set);
  pe__values_free(&w->scheme_values);
  free(w->inv_freq);
  free(w->slopes);
  free(w->q);
  free(w->k);
  free(w->v);
  free(w->rope_cos);
  free(w->rope_sin);
  free(w->additive);
  free(w->slopes_f);
  free(w);
  pe__ctx_release(ctx, &ctx->live_workloads); /* last: may unload the scheme */
}

const pe_workload_info *pe_workload_get_info(const pe_workload *w) { return &w->info; }

const pe_task *pe_workload_task(const pe_workload *w) { return &w->task; }

int pe_workload_set_inputs(pe_ctx *ctx, pe_workload *w, const float *q, const float *k,
                           const float *v) {
  const pe__settings *s = &w->set;
  size_t nq = (size_t)s->batch * s->q_heads * s->q_len * s->head_dim;
  size_t nkv = (size_t)s->batch * s->kv_heads * s->kv_len * s->head_dim;
  if (w->tables_only) return pe__workload_runnable(ctx, w);
  if (!q || !k || (!v && s->op == PE_OP_ATTENTION))
    return pe__fail(ctx, PE_EINVAL, "pe_workload_set_inputs: q, k%s must be given",
                    s->op == PE_OP_ATTENTION ? " and v" : "");
  memcpy(w->q, q, nq * sizeof(float));
  memcpy(w->k, k, nkv * sizeof(float));
  if (v) memcpy(w->v, v, nkv * sizeof(float));
  snprintf(w->inputs_desc, sizeof w->inputs_desc, "caller-provided");
  return 0;
}
