/* openmp backend: multi-threaded CPU attention and encoding.
 *
 * The driver: plugin entry, options, CPU-feature dispatch, the task plan,
 * and every OpenMP parallel region.  The kernels (kern_*.c from
 * kern_tmpl.h) are single-threaded work functions:
 *
 *   attention, q_len > 1: flash attention.  Work units are (batch, query
 *     head, query block), scheduled dynamically, most expensive first under
 *     a causal mask.  Each unit walks the key blocks its queries can see
 *     (fully masked tiles are never visited), encodes K on the fly, and
 *     keeps an online softmax; see kern_tmpl.h.
 *   attention, q_len == 1 (decode): split-KV.  Units are (batch, chunk of
 *     keys); each walks every kv head over its chunk (so the cos/sin rows
 *     of the chunk are read from memory once), leaving a partial (m, l, o)
 *     per query head; a second pass combines the chunks.
 *   encode: Q' and K' rows in parallel, a streaming pass over units of
 *     positions of two heads that share each cos/sin row.
 *
 * All work of a run happens inside execute(); prepare() only allocates
 * (and touches) the output and scratch memory. */
#include <float.h>
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "libpe/pe_plugin.h"
#include "omp_internal.h"

#define OMP_PLUGIN_NAME "openmp"

/* ------------------------------------------------------------- options */

enum {
  OPT_THREADS,
  OPT_KERNEL,
  OPT_BLOCK_Q,
  OPT_BLOCK_K,
  OPT_CHUNK,
  OPT_K_ENCODE,
  OPT_N
};

static const pe_param_decl opt_threads = {
    sizeof(pe_param_decl), PE_PARAM_INTEGER, PE_PARAM_HAS_MIN | PE_PARAM_HAS_MAX,
    "threads", "OpenMP threads (0: the OpenMP default, OMP_NUM_THREADS)",
    "0", 0, 4096, NULL};
static const pe_param_decl opt_kernel = {
    sizeof(pe_param_decl), PE_PARAM_CHOICE, 0, "kernel",
    "SIMD path: auto picks the widest the CPU supports at run time", "auto",
    0, 0, "auto|avx512|avx2|scalar"};
static const pe_param_decl opt_block_q = {
    sizeof(pe_param_decl), PE_PARAM_INTEGER, PE_PARAM_HAS_MIN | PE_PARAM_HAS_MAX,
    "block_q",
    "queries per flash tile (0: auto; else a multiple of the kernel's "
    "column granule: 24 avx2, 32 avx512, 4 scalar)",
    "0", 0, 1024, NULL};
static const pe_param_decl opt_block_k = {
    sizeof(pe_param_decl), PE_PARAM_INTEGER, PE_PARAM_HAS_MIN | PE_PARAM_HAS_MAX,
    "block_k", "keys per flash tile (0: auto)", "0", 0, 1024, NULL};
static const pe_param_decl opt_chunk = {
    sizeof(pe_param_decl), PE_PARAM_INTEGER, PE_PARAM_HAS_MIN | PE_PARAM_HAS_MAX,
    "decode_chunk", "keys per split-KV chunk for q_len = 1 (0: auto)", "0", 0,
    1 << 20, NULL};

static const pe_param_decl opt_k_encode = {
    sizeof(pe_param_decl), PE_PARAM_CHOICE, 0, "k_encode",
    "prefill: encode K once per run in a parallel pre-pass (prepass), or "
    "per key block inside every query block (fused); auto: prepass when "
    "more than one query block or query head reads each kv head, else "
    "fused",
    "auto", 0, 0, "auto|prepass|fused"};

static const pe_param_decl *const omp_options[] = {
    &opt_threads, &opt_kernel,   &opt_block_q, &opt_block_k,
    &opt_chunk,   &opt_k_encode, NULL};

/* ------------------------------------------------------------- the CPU */

static int cpu_has_avx512(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") != 0;
#else
  return 0;
#endif
}

static int cpu_has_avx2(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
  return 0;
#endif
}

/* "model name" of /proc/cpuinfo, else a generic name. */
static void cpu_model(char *buf, size_t size) {
  FILE *f = fopen("/proc/cpuinfo", "r");
  char line[512];
  snprintf(buf, size, "%s", "CPU");
  if (!f) return;
  while (fgets(line, sizeof line, f)) {
    if (strncmp(line, "model name", 10) == 0) {
      char *c = strchr(line, ':');
      if (c) {
        c++;
        while (*c == ' ' || *c == '\t') c++;
        size_t n = strcspn(c, "\n");
        while (n > 0 && c[n - 1] == ' ') n--;
        snprintf(buf, size, "%.*s", (int)n, c);
      }
      break;
    }
  }
  fclose(f);
}

/* ------------------------------------------------------------ backend */

typedef struct omp_backend {
  const omp_kernels *kern;
  int kernel_auto;
  int threads;
  uint32_t block_q, block_k; /* 0: auto */
  uint64_t chunk;            /* 0: auto */
  int k_encode;              /* 0 auto, 1 prepass, 2 fused */
  char cpu[96];
  char last[256]; /* what the last prepare chose, for describe() */
} omp_backend;

typedef struct omp_run {
  omp_backend *be;
  omp_plan plan;
  int threads;     /* the backend's thread count (describe, scratch) */
  int run_threads; /* threads execute() uses: 1 for tiny work */
  float *slopes2;
  float *scratch; /* threads * scratch_stride floats */
  size_t scratch_stride;
  size_t out0_len, out1_len; /* floats */
} omp_run;

static void *alloc_floats(size_t n) {
  void *p = NULL;
  size_t bytes = (n ? n : 1) * sizeof(float);
  bytes = (bytes + 63) / 64 * 64;
  if (posix_memalign(&p, 64, bytes) != 0) return NULL;
  memset(p, 0, bytes); /* touch the pages now, not in execute() */
  return p;
}

static int omp_open(const pe_host *host, const pe_param_value *const *opt,
                    void **backend, char *err, size_t err_size) {
  (void)host;
  omp_backend *be = calloc(1, sizeof *be);
  if (!be)
    return pe_plugin_error(err, err_size, PE_ENOMEM,
                           "openmp: out of memory opening the backend");
  be->threads = (int)opt[OPT_THREADS]->integer;
  const int64_t kchoice = opt[OPT_KERNEL]->integer; /* auto|avx512|avx2|scalar */
  const int has512 = cpu_has_avx512(), has2 = cpu_has_avx2();
  switch (kchoice) {
  case 1:
    if (!has512) {
      free(be);
      return pe_plugin_error(err, err_size, PE_EUNSUPPORTED,
                             "openmp: kernel = avx512: this CPU has no "
                             "AVX-512F (use kernel = auto, avx2 or scalar)");
    }
    be->kern = &omp_kernels_avx512;
    break;
  case 2:
    if (!has2) {
      free(be);
      return pe_plugin_error(err, err_size, PE_EUNSUPPORTED,
                             "openmp: kernel = avx2: this CPU lacks AVX2 "
                             "and FMA (use kernel = auto or scalar)");
    }
    be->kern = &omp_kernels_avx2;
    break;
  case 3:
    be->kern = &omp_kernels_scalar;
    break;
  default:
    be->kernel_auto = 1;
    be->kern = has512 ? &omp_kernels_avx512
               : has2 ? &omp_kernels_avx2
                      : &omp_kernels_scalar;
    break;
  }
  be->block_q = (uint32_t)opt[OPT_BLOCK_Q]->integer;
  if (be->block_q % be->kern->granule) {
    const omp_kernels *k = be->kern;
    free(be);
    return pe_plugin_error(err, err_size, PE_ECONFIG,
                           "openmp: block_q = %u: must be 0 (auto) or a "
                           "multiple of %u for the %s kernel",
                           (unsigned)opt[OPT_BLOCK_Q]->integer,
                           (unsigned)k->granule, k->name);
  }
  be->block_k = (uint32_t)opt[OPT_BLOCK_K]->integer;
  be->chunk = (uint64_t)opt[OPT_CHUNK]->integer;
  be->k_encode = (int)opt[OPT_K_ENCODE]->integer;
  cpu_model(be->cpu, sizeof be->cpu);
  snprintf(be->last, sizeof be->last, "%s%s, not run yet",
           be->kern->detail, be->kernel_auto ? " (auto)" : "");
  *backend = be;
  return 0;
}

static void omp_close(void *backend) { free(backend); }

static int effective_threads(const omp_backend *be) {
  return be->threads > 0 ? be->threads : omp_get_max_threads();
}

static void fill_info(const omp_backend *be, pe_device_info *info,
                      const char *details) {
  info->type = PE_DEVICE_CPU;
  const int nt = effective_threads(be);
  snprintf(info->name, sizeof info->name, "%s (%d thread%s)", be->cpu, nt,
           nt == 1 ? "" : "s");
#if defined(__clang__)
  snprintf(info->driver, sizeof info->driver, "OpenMP %d, clang %d.%d",
           (int)_OPENMP, __clang_major__, __clang_minor__);
#elif defined(__GNUC__)
  snprintf(info->driver, sizeof info->driver, "OpenMP %d, gcc %d.%d",
           (int)_OPENMP, __GNUC__, __GNUC_MINOR__);
#else
  snprintf(info->driver, sizeof info->driver, "OpenMP %d", (int)_OPENMP);
#endif
  snprintf(info->details, sizeof info->details, "%s", details);
}

static int omp_describe(void *backend, pe_device_info *info) {
  const omp_backend *be = backend;
  fill_info(be, info, be->last);
  return 0;
}

static int omp_enumerate(const pe_host *host, pe_device_emit_fn emit,
                         void *user, char *err, size_t err_size) {
  (void)host;
  (void)err;
  (void)err_size;
  omp_backend be;
  memset(&be, 0, sizeof be);
  be.kern = cpu_has_avx512() ? &omp_kernels_avx512
            : cpu_has_avx2() ? &omp_kernels_avx2
                             : &omp_kernels_scalar;
  cpu_model(be.cpu, sizeof be.cpu);
  pe_device_info info;
  memset(&info, 0, sizeof info);
  info.struct_size = sizeof info;
  char det[160];
  snprintf(det, sizeof det, "auto kernel: %s", be.kern->detail);
  fill_info(&be, &info, det);
  emit(user, &info);
  return 0;
}

/* Multiply with overflow check. */
static int mul_ok(size_t *acc, uint64_t x) {
  if (x && *acc > SIZE_MAX / x) return 0;
  *acc *= (size_t)x;
  return 1;
}

static void run_free(omp_run *r) {
  if (!r) return;
  free(r->slopes2);
  free(r->scratch);
  free(r->plan.partial);
  free(r->plan.kprime);
  free(r->plan.out0);
  free(r->plan.out1);
  free(r);
}

static uint64_t ceil_div(uint64_t a, uint64_t b) { return (a + b - 1) / b; }

static int omp_prepare(void *backend, const pe_task *t, void **out, char *err,
                       size_t err_size) {
  omp_backend *be = backend;
  const omp_kernels *k = be->kern;
  if (!PE_HAS_FIELD(t, pe_task, slopes))
    return pe_plugin_error(err, err_size, PE_EINVAL,
                           "openmp: task struct too small (%u bytes)",
                           (unsigned)t->struct_size);
  if (t->op != PE_OP_ATTENTION && t->op != PE_OP_ENCODE)
    return pe_plugin_error(err, err_size, PE_EUNSUPPORTED,
                           "openmp: unknown op %u", (unsigned)t->op);
  if (t->kind < PE_KIND_NONE || t->kind > PE_KIND_BIAS)
    return pe_plugin_error(err, err_size, PE_EUNSUPPORTED,
                           "openmp: unknown encoding kind %u",
                           (unsigned)t->kind);
  if (t->head_dim == 0 || t->head_dim > OMP_MAX_HEAD_DIM)
    return pe_plugin_error(err, err_size, PE_EUNSUPPORTED,
                           "openmp: head_dim = %u: this backend supports "
                           "head_dim 1..%u",
                           (unsigned)t->head_dim, OMP_MAX_HEAD_DIM);
  if (!t->batch || !t->q_heads || !t->kv_heads || !t->q_len || !t->kv_len ||
      t->q_heads % t->kv_heads)
    return pe_plugin_error(err, err_size, PE_EINVAL,
                           "openmp: bad shape (batch %u, q_heads %u, "
                           "kv_heads %u, q_len %llu, seq_len %llu)",
                           (unsigned)t->batch, (unsigned)t->q_heads,
                           (unsigned)t->kv_heads,
                           (unsigned long long)t->q_len,
                           (unsigned long long)t->kv_len);
  if (t->q_len > t->kv_len)
    return pe_plugin_error(err, err_size, PE_EUNSUPPORTED,
                           "openmp: q_len = %llu > seq_len = %llu: the "
                           "queries must be the last q_len tokens",
                           (unsigned long long)t->q_len,
                           (unsigned long long)t->kv_len);
  if (t->kind == PE_KIND_ROTARY &&
      (t->rotary_dim % 2 || t->rotary_dim > t->head_dim ||
       (t->pairing != PE_PAIRING_NEOX &&
        t->pairing != PE_PAIRING_INTERLEAVED) ||
       (t->rotary_dim && (!t->rope_cos || !t->rope_sin))))
    return pe_plugin_error(err, err_size, PE_EINVAL,
                           "openmp: bad rotary tables (rotary_dim %u, "
                           "head_dim %u, pairing %u)",
                           (unsigned)t->rotary_dim, (unsigned)t->head_dim,
                           (unsigned)t->pairing);
  if (t->kind == PE_KIND_ADDITIVE && !t->additive)
    return pe_plugin_error(err, err_size, PE_EINVAL,
                           "openmp: additive kind without a table");
  if (t->kind == PE_KIND_BIAS && t->op == PE_OP_ATTENTION && !t->slopes)
    return pe_plugin_error(err, err_size, PE_EINVAL,
                           "openmp: bias kind without slopes");
  if (!t->q || !t->k || (t->op == PE_OP_ATTENTION && !t->v))
    return pe_plugin_error(err, err_size, PE_EINVAL,
                           "openmp: missing input tensor");

  size_t qn = 1, kn = 1;
  if (!mul_ok(&qn, t->batch) || !mul_ok(&qn, t->q_heads) ||
      !mul_ok(&qn, t->q_len) || !mul_ok(&qn, t->head_dim) ||
      !mul_ok(&kn, t->batch) || !mul_ok(&kn, t->kv_heads) ||
      !mul_ok(&kn, t->kv_len) || !mul_ok(&kn, t->head_dim) ||
      qn > SIZE_MAX / 8 || kn > SIZE_MAX / 8)
    return pe_plugin_error(err, err_size, PE_ELIMIT,
                           "openmp: tensor sizes overflow");

  omp_run *r = calloc(1, sizeof *r);
  if (!r) goto nomem;
  r->be = be;
  r->threads = effective_threads(be);
  omp_plan *p = &r->plan;
  p->op = t->op;
  p->kind = t->kind;
  p->batch = t->batch;
  p->hq = t->q_heads;
  p->hkv = t->kv_heads;
  p->d = t->head_dim;
  p->group = t->q_heads / t->kv_heads;
  p->sq = t->q_len;
  p->skv = t->kv_len;
  p->causal = t->causal != 0;
  /* |pq - pk| <= seq_len - 1 always: a wider window masks nothing (and
   * keeps the kernels' signed arithmetic far from overflow) */
  p->window = t->window >= t->kv_len ? 0 : t->window;
  p->rot_half = t->kind == PE_KIND_ROTARY ? t->rotary_dim / 2 : 0;
  p->interleaved = t->pairing == PE_PAIRING_INTERLEAVED;
  p->qscale = (float)((double)t->softmax_scale * OMP_LOG2E);
  p->q = t->q;
  p->k = t->k;
  p->v = t->v;
  p->cos = t->rope_cos;
  p->sin = t->rope_sin;
  p->add = t->additive;
  if (t->kind == PE_KIND_BIAS && t->op == PE_OP_ATTENTION) {
    if (!(r->slopes2 = alloc_floats(t->q_heads))) goto nomem;
    for (uint32_t h = 0; h < t->q_heads; h++)
      r->slopes2[h] = (float)((double)t->slopes[h] * OMP_LOG2E);
    p->slopes2 = r->slopes2;
  }

  if (t->op == PE_OP_ENCODE) {
    r->out0_len = qn;
    r->out1_len = kn;
    if (!(p->out0 = alloc_floats(qn)) || !(p->out1 = alloc_floats(kn)))
      goto nomem;
    snprintf(be->last, sizeof be->last, "%s%s; encode: Q'/K' rows, %s, %d thread%s",
             k->detail, be->kernel_auto ? " (auto)" : "",
             k->nt_stores && p->d % k->width == 0
                 ? "written with non-temporal stores"
                 : "regular stores",
             r->threads, r->threads == 1 ? "" : "s");
  } else if (t->q_len == 1) {
    /* decode: the one query row sees keys [key_lo, skv) */
    const uint64_t row = p->skv - 1;
    p->key_lo = p->window && row + 1 > p->window ? row + 1 - p->window : 0;
    p->key_hi = p->skv;
    const uint64_t range = p->key_hi - p->key_lo;
    uint64_t ch = be->chunk;
    if (!ch) {
      ch = ceil_div(range, 8 * (uint64_t)r->threads);
      ch = ceil_div(ch, 32) * 32;
      /* long chunks stream each kv head's K and V rows in longer runs;
       * 1024 keys keep a chunk's cos/sin rows (512 KiB at D = 128) about
       * L2-sized.  Measured at L = 32768, H = 32/8, 2 threads: 1024 ran
       * 1.03-1.07x faster than 256 and about 1.03x faster than 512; 2048
       * gained only 1.02-1.04x over 256 */
      if (ch > 1024) ch = 1024;
    }
    p->chunk = ch;
    p->nchunks = ceil_div(range, ch);
    size_t pn = (size_t)p->batch * p->nchunks;
    if (!mul_ok(&pn, p->hq) || !mul_ok(&pn, (uint64_t)p->d + 2)) goto nomem;
    r->out0_len = qn;
    if (!(p->out0 = alloc_floats(qn)) || !(p->partial = alloc_floats(pn)))
      goto nomem;
    snprintf(be->last, sizeof be->last,
             "%s%s; split-KV decode, %llu chunks of %llu keys, %d thread%s",
             k->detail, be->kernel_auto ? " (auto)" : "",
             (unsigned long long)p->nchunks, (unsigned long long)ch,
             r->threads, r->threads == 1 ? "" : "s");
  } else {
    const uint32_t g = k->granule;
    uint32_t bq = be->block_q;
    if (!bq) {
      /* Every query block streams the K'/V rows it sees from the shared
       * cache or memory: longer contexts want taller blocks (measured on
       * AVX2, D = 128: 96 best at L = 1024, 288 at 4096, 7-13% faster
       * than 96 there; with the 4x24 kernel 288 and 432 measured alike). */
      const uint32_t base = g >= 24 ? 4 : g >= 16 ? 6 : 16;
      const uint32_t mult = p->skv <= 1536 ? 1 : p->skv <= 3072 ? 2 : 3;
      bq = g * base * mult;
      /* keep enough units for the threads (most of all under causal
       * masking, where the last blocks cost the most) */
      const uint64_t heads = (uint64_t)p->batch * p->hq;
      while (bq > g && heads * ceil_div(p->sq, bq) < 4 * (uint64_t)r->threads)
        bq -= g;
    }
    if (bq > ceil_div(p->sq, g) * g) bq = (uint32_t)(ceil_div(p->sq, g) * g);
    p->bq = bq;
    p->bk = be->block_k ? be->block_k : 64;
    r->out0_len = qn;
    if (!(p->out0 = alloc_floats(qn))) goto nomem;
    /* K needs encoding (rotary, additive): by default once per run, in a
     * parallel pre-pass into a K' buffer that the units read (their next
     * block's K' rows prefetched spread over the block's tiles), when more
     * than one unit reads each kv head; else inside the one query block.
     * Interleaved runs, fused / pre-pass times, 2 threads: causal
     * L = 4096 1.00-1.04 (median 1.022, 8 runs), GQA 32/8 0.98-1.13
     * (median 1.015, 5 runs), L = 1024 about even (0.99-1.04, 8 runs).
     * (Before the prefetch was spread, fused had been 1-5% faster; see
     * backends/openmp/README.md.) */
    const int k_enc = t->kind == PE_KIND_ROTARY || t->kind == PE_KIND_ADDITIVE;
    const int prepass =
        k_enc && (be->k_encode == 1 ||
                  (be->k_encode == 0 &&
                   (ceil_div(p->sq, p->bq) > 1 || p->group > 1)));
    if (prepass) {
      size_t kpn = (size_t)p->batch * p->hkv;
      if (!mul_ok(&kpn, p->skv) || !mul_ok(&kpn, OMP_PADDED_DIM(p->d)))
        goto nomem;
      if (!(p->kprime = alloc_floats(kpn))) goto nomem;
    }
    snprintf(be->last, sizeof be->last,
             "%s%s; flash attention, %u-query x %u-key tiles, %s, "
             "%d thread%s",
             k->detail, be->kernel_auto ? " (auto)" : "", p->bq, p->bk,
             !k_enc     ? "no K encoding"
             : prepass ? "Q encoded per tile, K in a parallel pre-pass"
                       : "Q and K encoded per tile (fused)",
             r->threads, r->threads == 1 ? "" : "s");
  }
  /* Work too small to pay for waking the thread team (under about 2^18
   * multiply-adds, or floats encoded) runs on the calling thread. */
  {
    double work;
    if (t->op == PE_OP_ENCODE)
      work = (double)(qn + kn);
    else if (t->q_len == 1)
      work = (double)p->batch * p->hq * (double)(p->key_hi - p->key_lo) * p->d;
    else
      work = (double)qn * (double)(p->window && p->window < p->skv
                                       ? p->window
                                       : p->skv);
    r->run_threads = work < (double)(1u << 18) ? 1 : r->threads;
    if (r->run_threads != r->threads) {
      const size_t len = strlen(be->last);
      snprintf(be->last + len, sizeof be->last - len,
               " (this small run: 1 thread)");
    }
  }
  if (t->op == PE_OP_ATTENTION) {
    const size_t s = k->scratch(p);
    r->scratch_stride = (s + 15) / 16 * 16;
    p->scratch_floats = r->scratch_stride;
    if (!(r->scratch = alloc_floats(r->scratch_stride * (size_t)r->threads)))
      goto nomem;
  }
  *out = r;
  return 0;
nomem:
  run_free(r);
  return pe_plugin_error(err, err_size, PE_ENOMEM,
                         "openmp: out of memory preparing the run");
}

/* Decode, second pass: merge the chunks' (m, l, o) of one (batch, head). */
static void decode_combine(const omp_plan *p, uint32_t b, uint32_t h) {
  const uint32_t d = p->d;
  const size_t stride = (size_t)p->hq * (d + 2);
  const float *base = p->partial + ((uint64_t)b * p->nchunks * p->hq + h) *
                                       (d + 2);
  float *o = p->out0 + ((uint64_t)b * p->hq + h) * d;
  float m = -INFINITY;
  for (uint64_t c = 0; c < p->nchunks; c++) {
    const float mc = base[c * stride];
    m = mc > m ? mc : m;
  }
  for (uint32_t dd = 0; dd < d; dd++) o[dd] = 0.0f;
  if (m == -INFINITY) return; /* no visible key: 0, never NaN */
  float l = 0.0f;
  for (uint64_t c = 0; c < p->nchunks; c++) {
    const float *part = base + c * stride;
    if (part[0] == -INFINITY) continue;
    const float w = exp2f(part[0] - m);
    l += w * part[1];
    for (uint32_t dd = 0; dd < d; dd++) o[dd] += w * part[2 + dd];
  }
  const float inv = l > 0.0f ? 1.0f / l : 0.0f;
  for (uint32_t dd = 0; dd < d; dd++) o[dd] *= inv;
}

/* op = encode: positions and heads per unit (see omp_execute) */
#define ENC_POS_BLOCK 512u
#define ENC_HEADS 2u

static int omp_execute(void *run, double *device_ms, char *err,
                       size_t err_size) {
  (void)err;
  (void)err_size;
  omp_run *r = run;
  const omp_plan *p = &r->plan;
  const omp_kernels *k = r->be->kern;
  const int nt = r->run_threads;
  if (device_ms) *device_ms = -1.0;

  if (p->op == PE_OP_ENCODE) {
    /* Units of ENC_POS_BLOCK positions of ENC_HEADS (batch, head)s,
     * position block by position block (the static schedule gives each
     * thread a run of consecutive units): a block's 256 KiB of cos/sin
     * rows (D = 128) stay in L2 while every head encodes it, instead of
     * the whole table streaming through once per head.  1.01-1.06x
     * faster than 64-row blocks in head order (6 of 6 interleaved rounds,
     * AVX-512 Zen 5, 32 heads x 8192, 2 threads); 64- and 2048-position
     * blocks measured 0.96-1.04x and 0.98-1.02x of that.  The heads of a
     * unit share each table row (encode_rows). */
    const uint64_t qheads = (uint64_t)p->batch * p->hq;
    const uint64_t kheads = (uint64_t)p->batch * p->hkv;
    const uint64_t qgroups = ceil_div(qheads, ENC_HEADS);
    const uint64_t kgroups = ceil_div(kheads, ENC_HEADS);
    const uint64_t qu = qgroups * ceil_div(p->sq, ENC_POS_BLOCK);
    const uint64_t ku = kgroups * ceil_div(p->skv, ENC_POS_BLOCK);
    const int64_t total = (int64_t)(qu + ku);
#pragma omp parallel for schedule(static) num_threads(nt)
    for (int64_t u = 0; u < total; u++) {
      const int which = (uint64_t)u >= qu;
      const uint64_t v = (uint64_t)u - (which ? qu : 0);
      const uint64_t groups = which ? kgroups : qgroups;
      const uint64_t heads = which ? kheads : qheads;
      const uint64_t len = which ? p->skv : p->sq;
      const uint64_t head = v % groups * ENC_HEADS;
      const uint64_t pos = v / groups * ENC_POS_BLOCK;
      const uint64_t n = len - pos < ENC_POS_BLOCK ? len - pos : ENC_POS_BLOCK;
      const uint32_t nh =
          (uint32_t)(heads - head < ENC_HEADS ? heads - head : ENC_HEADS);
      k->encode_rows(p, which, head * len + pos, head * len + pos + n, nh);
    }
    return 0;
  }

  if (p->sq == 1) {
    const int64_t units = (int64_t)(p->batch * p->nchunks);
    const int64_t heads = (int64_t)p->batch * p->hq;
#pragma omp parallel num_threads(nt)
    {
      float *scr = r->scratch + (size_t)omp_get_thread_num() * r->scratch_stride;
#pragma omp for schedule(dynamic, 1)
      for (int64_t u = 0; u < units; u++) {
        const uint32_t b = (uint32_t)((uint64_t)u / p->nchunks);
        const uint64_t c = (uint64_t)u % p->nchunks;
        const uint64_t n0 = p->key_lo + c * p->chunk;
        const uint64_t n1 =
            n0 + p->chunk < p->key_hi ? n0 + p->chunk : p->key_hi;
        k->decode_chunk(p, b, c, n0, n1, scr);
      }
#pragma omp for schedule(static)
      for (int64_t u = 0; u < heads; u++)
        decode_combine(p, (uint32_t)(u / p->hq), (uint32_t)(u % p->hq));
    }
    return 0;
  }

  const uint64_t nqb = ceil_div(p->sq, p->bq);
  const uint64_t heads = (uint64_t)p->batch * p->hq;
  const int64_t units = (int64_t)(nqb * heads);
  const uint64_t kprows = p->kprime ? (uint64_t)p->batch * p->hkv * p->skv : 0;
  const int64_t kpblocks = (int64_t)ceil_div(kprows, 64);
#pragma omp parallel num_threads(nt)
  {
    float *scr = r->scratch + (size_t)omp_get_thread_num() * r->scratch_stride;
    /* K' = enc(K), once per run (the implicit barrier ends it) */
    if (kpblocks) {
#pragma omp for schedule(static)
      for (int64_t u = 0; u < kpblocks; u++) {
        const uint64_t r0 = (uint64_t)u * 64;
        k->encode_rows(p, 2, r0, r0 + 64 < kprows ? r0 + 64 : kprows, 1);
      }
    }
    /* Head-major order: the threads work on the same (batch, head) at the
     * same time, so its K/V (and the shared cos/sin rows) are read from
     * memory once and then hit the shared cache.  Within a head the last
     * query blocks, which see the most keys, go first, so the run ends on
     * the cheapest units. */
#pragma omp for schedule(dynamic, 1)
    for (int64_t u = 0; u < units; u++) {
      const uint64_t bh = (uint64_t)u / nqb;
      const uint64_t qb = nqb - 1 - (uint64_t)u % nqb;
      const uint64_t q0 = qb * p->bq;
      const uint32_t nq =
          (uint32_t)(q0 + p->bq <= p->sq ? p->bq : p->sq - q0);
      k->prefill_unit(p, (uint32_t)(bh / p->hq), (uint32_t)(bh % p->hq), q0,
                      nq, scr);
    }
  }
  return 0;
}

static int omp_fetch(void *run, float *out0, float *out1, char *err,
                     size_t err_size) {
  omp_run *r = run;
  if (!out0 || (r->out1_len && !out1))
    return pe_plugin_error(err, err_size, PE_EINVAL,
                           "openmp: fetch without an output buffer");
  memcpy(out0, r->plan.out0, r->out0_len * sizeof(float));
  if (r->out1_len) memcpy(out1, r->plan.out1, r->out1_len * sizeof(float));
  return 0;
}

static void omp_release(void *run) { run_free(run); }

static const pe_backend_ops omp_ops = {
    sizeof(pe_backend_ops), omp_options, omp_open,    omp_close,
    omp_describe,           omp_prepare, omp_execute, omp_fetch,
    omp_release,            omp_enumerate};

static const pe_plugin_desc omp_desc = {
    sizeof(pe_plugin_desc),
    PE_ABI_VERSION,
    PE_PLUGIN_BACKEND,
    OMP_PLUGIN_NAME,
    "1.0.0",
    "OpenMP CPU backend: fused encoding + flash attention, AVX-512/AVX2/C "
    "kernels chosen at run time",
    NULL,
    &omp_ops};

PE_PLUGIN_EXPORT int pe_plugin_entry(uint32_t host_abi, const pe_host *host,
                                     const pe_plugin_desc **desc, char *err,
                                     size_t err_size);
PE_PLUGIN_EXPORT int pe_plugin_entry(uint32_t host_abi, const pe_host *host,
                                     const pe_plugin_desc **desc, char *err,
                                     size_t err_size) {
  (void)host;
  if (host_abi < 1)
    return pe_plugin_error(err, err_size, PE_EABI,
                           "openmp: needs plugin ABI >= 1, host speaks %u",
                           (unsigned)host_abi);
  *desc = &omp_desc;
  return 0;
}
