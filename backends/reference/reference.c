/* The `reference` backend: NUMERICS.md written out as plainly as possible,
 * one query row at a time, float32 data with float64 accumulation.  It is
 * slow on purpose and exists for two reasons: a second, independent
 * implementation beside the oracle, and the template for backend authors
 * (docs/PLUGINS.md walks through it).
 *
 * A backend's life cycle, driven by the host (libpe/run.c):
 *   entry -> open(options) -> describe -> prepare(task) -> execute x N
 *   -> fetch -> release -> close.
 * The host owns every array in pe_task; a backend copies what it needs to
 * its device in prepare() and writes results only in fetch(). */
#include <libpe/pe_plugin.h>

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define MAX_HEAD_DIM 4096

/* ---- options: declared here, parsed and range-checked by the host ----- */
static const pe_param_decl opt_accumulate = {
    .struct_size = sizeof(pe_param_decl),
    .type = PE_PARAM_CHOICE,
    .name = "accumulate",
    .doc = "precision of dot products and softmax sums",
    .default_value = "double",
    .choices = "double|float",
};
static const pe_param_decl *const options[] = {&opt_accumulate, NULL};
enum { OPT_ACCUMULATE };

typedef struct backend {
  bool accumulate_float;
} backend;

typedef struct run {
  const pe_task *task; /* host memory, valid until release() */
  bool accumulate_float;
  float *out0, *out1;  /* results of the last execute() */
  float *qrow, *krows; /* scratch: one encoded query row, all encoded keys of one head */
  double *logits;
} run;

static int ref_open(const pe_host *host, const pe_param_value *const *values, void **out,
                    char *err, size_t err_size) {
  (void)host;
  backend *b = calloc(1, sizeof *b);
  if (!b) return pe_plugin_error(err, err_size, PE_ENOMEM, "out of memory");
  b->accumulate_float = values[OPT_ACCUMULATE]->integer == 1;
  *out = b;
  return 0;
}

static void ref_close(void *b) { free(b); }

static int ref_describe(void *vb, pe_device_info *info) {
  backend *b = vb;
  info->type = PE_DEVICE_CPU;
  snprintf(info->name, sizeof info->name, "host CPU (scalar, 1 thread)");
  snprintf(info->driver, sizeof info->driver, "libpe reference");
  snprintf(info->details, sizeof info->details, "accumulate %s",
           b->accumulate_float ? "float" : "double");
  return 0;
}

static size_t q_elems(const pe_task *t) {
  return (size_t)t->batch * t->q_heads * t->q_len * t->head_dim;
}
static size_t kv_elems(const pe_task *t) {
  return (size_t)t->batch * t->kv_heads * t->kv_len * t->head_dim;
}

static void ref_release(void *vr) {
  run *r = vr;
  if (!r) return;
  free(r->out0);
  free(r->out1);
  free(r->qrow);
  free(r->krows);
  free(r->logits);
  free(r);
}

static int ref_prepare(void *vb, const pe_task *t, void **out, char *err, size_t err_size) {
  backend *b = vb;
  /* A backend refuses, with a reason, what it cannot run. */
  if (t->op != PE_OP_ATTENTION && t->op != PE_OP_ENCODE)
    return pe_plugin_error(err, err_size, PE_EUNSUPPORTED, "unknown op %u", t->op);
  if (t->kind < PE_KIND_NONE || t->kind > PE_KIND_BIAS)
    return pe_plugin_error(err, err_size, PE_EUNSUPPORTED, "unknown encoding kind %u", t->kind);
  if (t->head_dim > MAX_HEAD_DIM)
    return pe_plugin_error(err, err_size, PE_EUNSUPPORTED, "head_dim %u > %d", t->head_dim,
                           MAX_HEAD_DIM);
  run *r = calloc(1, sizeof *r);
  if (!r) return pe_plugin_error(err, err_size, PE_ENOMEM, "out of memory");
  r->task = t;
  r->accumulate_float = b->accumulate_float;
  r->out0 = malloc(q_elems(t) * sizeof(float));
  r->out1 = t->op == PE_OP_ENCODE ? malloc(kv_elems(t) * sizeof(float)) : NULL;
  r->qrow = malloc(t->head_dim * sizeof(float));
  r->krows = malloc((size_t)t->kv_len * t->head_dim * sizeof(float));
  r->logits = malloc((size_t)t->kv_len * sizeof(double));
  if (!r->out0 || (t->op == PE_OP_ENCODE && !r->out1) || !r->qrow || !r->krows || !r->logits) {
    ref_release(r);
    return pe_plugin_error(err, err_size, PE_ENOMEM, "out of memory for a %u x %llu workload",
                           t->head_dim, (unsigned long long)t->kv_len);
  }
  *out = r;
  return 0;
}

/* Apply the encoding to one row x of the token at key row n (NUMERICS.md
 * "Scheme kinds").  The tables already hold a*cos and a*sin. */
static void encode_row(const pe_task *t, const float *x, uint64_t n, float *y) {
  uint32_t d = t->head_dim;
  memcpy(y, x, d * sizeof(float));
  if (t->kind == PE_KIND_ROTARY) {
    uint32_t half = t->rotary_dim / 2;
    const float *c = t->rope_cos + n * half, *s = t->rope_sin + n * half;
    for (uint32_t j = 0; j < half; j++) {
      uint32_t i0 = t->pairing == PE_PAIRING_NEOX ? j : 2 * j;
      uint32_t i1 = t->pairing == PE_PAIRING_NEOX ? j + half : 2 * j + 1;
      y[i0] = x[i0] * c[j] - x[i1] * s[j];
      y[i1] = x[i1] * c[j] + x[i0] * s[j];
    }
  } else if (t->kind == PE_KIND_ADDITIVE) {
    const float *pe = t->additive + n * d;
    for (uint32_t i = 0; i < d; i++) y[i] = x[i] + pe[i];
  }
}

static double dot(const run *r, const float *a, const float *b, uint32_t d) {
  if (r->accumulate_float) {
    float s = 0;
    for (uint32_t i = 0; i < d; i++) s += a[i] * b[i];
    return s;
  }
  double s = 0;
  for (uint32_t i = 0; i < d; i++) s += (double)a[i] * b[i];
  return s;
}

/* Visibility (NUMERICS.md "Attention"): query row r sees key n iff
 * (!causal || n <= r) && (window == 0 || |r - n| < window). */
static bool visible(const pe_task *t, uint64_t r, uint64_t n) {
  if (t->causal && n > r) return false;
  uint64_t dist = r > n ? r - n : n - r;
  return t->window == 0 || dist < t->window;
}

static void attend_row(run *r, uint32_t h, uint64_t i, const float *v, float *o) {
  const pe_task *t = r->task;
  uint32_t d = t->head_dim;
  uint64_t row = t->kv_len - t->q_len + i; /* the query's key-row coordinate */
  double slope = t->kind == PE_KIND_BIAS ? t->slopes[h] : 0.0;
  double mx = -INFINITY, sum = 0;
  for (uint64_t n = 0; n < t->kv_len; n++) {
    if (!visible(t, row, n)) continue;
    double s = t->softmax_scale * dot(r, r->qrow, r->krows + n * d, d) -
               slope * ((double)row - (double)n);
    r->logits[n] = s;
    if (s > mx) mx = s;
  }
  double acc[MAX_HEAD_DIM] = {0}; /* prepare() refuses larger heads */
  for (uint64_t n = 0; n < t->kv_len; n++) {
    if (!visible(t, row, n)) continue;
    double p = exp(r->logits[n] - mx); /* subtract the max: no overflow */
    sum += p;
    for (uint32_t c = 0; c < d; c++) acc[c] += p * v[n * d + c];
  }
  for (uint32_t c = 0; c < d; c++) o[c] = sum > 0 ? (float)(acc[c] / sum) : 0.0f;
}

static void run_attention(run *r) {
  const pe_task *t = r->task;
  uint32_t d = t->head_dim, group = t->q_heads / t->kv_heads;
  for (uint32_t b = 0; b < t->batch; b++)
    for (uint32_t kh = 0; kh < t->kv_heads; kh++) {
      size_t kv_base = ((size_t)b * t->kv_heads + kh) * t->kv_len * d;
      for (uint64_t n = 0; n < t->kv_len; n++)
        encode_row(t, t->k + kv_base + n * d, n, r->krows + n * d);
      /* Grouped-query attention: heads kh*group .. read kv head kh. */
      for (uint32_t h = kh * group; h < (kh + 1) * group; h++)
        for (uint64_t i = 0; i < t->q_len; i++) {
          size_t q_off = (((size_t)b * t->q_heads + h) * t->q_len + i) * d;
          encode_row(t, t->q + q_off, t->kv_len - t->q_len + i, r->qrow);
          attend_row(r, h, i, t->v + kv_base, r->out0 + q_off);
        }
    }
}

static void run_encode(run *r) {
  const pe_task *t = r->task;
  uint32_t d = t->head_dim;
  size_t nq = q_elems(t) / d, nk = kv_elems(t) / d;
  for (size_t row = 0; row < nq; row++)
    encode_row(t, t->q + row * d, t->kv_len - t->q_len + row % t->q_len, r->out0 + row * d);
  for (size_t row = 0; row < nk; row++)
    encode_row(t, t->k + row * d, row % t->kv_len, r->out1 + row * d);
}

static int ref_execute(void *vr, double *device_ms, char *err, size_t err_size) {
  (void)err, (void)err_size;
  run *r = vr;
  *device_ms = -1; /* no device timer: the host's wall time is the time */
  if (r->task->op == PE_OP_ENCODE) run_encode(r);
  else run_attention(r);
  return 0;
}

static int ref_fetch(void *vr, float *out0, float *out1, char *err, size_t err_size) {
  (void)err, (void)err_size;
  run *r = vr;
  memcpy(out0, r->out0, q_elems(r->task) * sizeof(float));
  if (r->task->op == PE_OP_ENCODE) memcpy(out1, r->out1, kv_elems(r->task) * sizeof(float));
  return 0;
}

static const pe_backend_ops ops = {
    .struct_size = sizeof(pe_backend_ops),
    .options = options,
    .open = ref_open,
    .close = ref_close,
    .describe = ref_describe,
    .prepare = ref_prepare,
    .execute = ref_execute,
    .fetch = ref_fetch,
    .release = ref_release,
    .enumerate = NULL, /* one device: the host CPU */
};

static const pe_plugin_desc descriptor = {
    .struct_size = sizeof(pe_plugin_desc),
    .abi_version = PE_ABI_VERSION,
    .kind = PE_PLUGIN_BACKEND,
    .name = "reference",
    .version = "1.0.0",
    .summary = "scalar reference implementation of NUMERICS.md (the template for backends)",
    .backend = &ops,
};

/* The module's only exported symbol. */
PE_PLUGIN_EXPORT int pe_plugin_entry(uint32_t host_abi, const pe_host *host,
                                     const pe_plugin_desc **desc, char *err, size_t err_size);
PE_PLUGIN_EXPORT int pe_plugin_entry(uint32_t host_abi, const pe_host *host,
                                     const pe_plugin_desc **desc, char *err, size_t err_size) {
  (void)host;
  /* This module only uses ABI 1 features: any host speaking >= 1 is fine. */
  if (host_abi < 1)
    return pe_plugin_error(err, err_size, PE_EABI, "needs plugin ABI >= 1, host has %u", host_abi);
  *desc = &descriptor;
  return 0;
}
