/* roofline: this machine's fp32 FMA peak (GFLOP/s) and STREAM-copy
 * bandwidth (GB/s), measured with a given number of OpenMP threads, so
 * that benchmark results can be read as a fraction of what the machine can
 * do (make bench).
 *
 * FMA peak: every thread runs independent chains of vector FMAs (enough of
 * them to cover the FMA latency on two pipes: 12 chains of 8 floats with
 * AVX2+FMA, 24 chains of 16 floats with AVX-512F, picked at run time by
 * __builtin_cpu_supports), counted as 2 flops per lane per FMA.  Best of
 * several timed repetitions.
 *
 * STREAM copy: c[i] = a[i] over arrays far larger than the last-level
 * cache (default 128 MiB each), split statically across the threads, pages
 * first touched by the thread that uses them; counted as in STREAM: 2 x
 * 4 bytes per element (read + write, the write-allocate read not counted).
 * Regular (cached) stores, as STREAM's copy kernel is written; best of
 * several repetitions.  On x86 the same copy with non-temporal stores is
 * reported too (stream_copy_nt_gbps): a kernel that streams its output
 * with such stores (the openmp backend's op = encode) can exceed the
 * regular copy, since it skips the read-for-ownership of the destination.
 *
 * STREAM read: the sum of one such array (4 bytes per element, read only),
 * the same split and repetitions.  Decode (q_len == 1) only reads K and V,
 * so this, not copy, is the ceiling it can approach; on a machine whose
 * cores keep few misses in flight it sits below copy, which counts the
 * written bytes too (stream_read_gbps).
 *
 * Output (one `key value` per line, easy to read from make):
 *   isa avx2
 *   threads 2
 *   fma_peak_gflops 187.2
 *   stream_copy_gbps 31.4
 *   stream_copy_nt_gbps 40.2
 *   stream_read_gbps 27.9
 * or with --json one JSON object holding the same keys.
 *
 * `roofline --summary ROOFLINE.txt... RESULT.json...` measures nothing: it
 * reads saved measurements (the best of them is the roofline) and
 * `pe-bench --format json` reports, and prints every result as a fraction
 * of the roofline -- attention (q_len > 1) against the FMA peak, encode and
 * decode (q_len == 1) against STREAM copy -- and, where a report holds
 * several backends timed in the same interleaved rounds, each one's speed
 * relative to openmp (make bench, bench/roofline.mk). */
#include <float.h>
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define RL_X86 1
#else
#define RL_X86 0
#endif

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ------------------------------------------------------------ FMA peak */

/* Fully unrolled chains keep every accumulator in a register. */
#if defined(__clang__)
#define RL_UNROLL _Pragma("clang loop unroll(full)")
#else
#define RL_UNROLL _Pragma("GCC unroll 32")
#endif

/* Each returns the flops it performed; `seed` keeps the compiler from
 * folding the chains, the result is written to `sink`. */
#if RL_X86
__attribute__((target("avx512f"))) static double fma_avx512(long iters,
                                                             float seed,
                                                             float *sink) {
  __m512 a[24];
  const __m512 x = _mm512_set1_ps(0.999999f), y = _mm512_set1_ps(1e-7f);
  for (int i = 0; i < 24; i++) a[i] = _mm512_set1_ps(seed + (float)i);
  for (long it = 0; it < iters; it++) {
RL_UNROLL
    for (int i = 0; i < 24; i++) a[i] = _mm512_fmadd_ps(a[i], x, y);
  }
  __m512 s = a[0];
  for (int i = 1; i < 24; i++) s = _mm512_add_ps(s, a[i]);
  *sink = _mm512_reduce_add_ps(s);
  return (double)iters * 24 * 16 * 2;
}

__attribute__((target("avx2,fma"))) static double fma_avx2(long iters,
                                                           float seed,
                                                           float *sink) {
  __m256 a[12];
  const __m256 x = _mm256_set1_ps(0.999999f), y = _mm256_set1_ps(1e-7f);
  for (int i = 0; i < 12; i++) a[i] = _mm256_set1_ps(seed + (float)i);
  for (long it = 0; it < iters; it++) {
RL_UNROLL
    for (int i = 0; i < 12; i++) a[i] = _mm256_fmadd_ps(a[i], x, y);
  }
  __m256 s = a[0];
  for (int i = 1; i < 12; i++) s = _mm256_add_ps(s, a[i]);
  float tmp[8];
  _mm256_storeu_ps(tmp, s);
  *sink = tmp[0] + tmp[1] + tmp[2] + tmp[3] + tmp[4] + tmp[5] + tmp[6] +
          tmp[7];
  return (double)iters * 12 * 8 * 2;
}
#endif

/* Portable: 8 independent scalar multiply-add chains. */
static double fma_scalar(long iters, float seed, float *sink) {
  float a[8];
  for (int i = 0; i < 8; i++) a[i] = seed + (float)i;
  for (long it = 0; it < iters; it++) {
    for (int i = 0; i < 8; i++) a[i] = a[i] * 0.999999f + 1e-7f;
  }
  float s = 0;
  for (int i = 0; i < 8; i++) s += a[i];
  *sink = s;
  return (double)iters * 8 * 2;
}

typedef double (*fma_fn)(long, float, float *);

static double measure_fma(fma_fn fn, int threads, long iters, int reps) {
  double best = 0.0;
  for (int rep = 0; rep < reps; rep++) {
    double flops = 0.0, t0 = 0.0, t1 = 0.0;
#pragma omp parallel num_threads(threads) reduction(+ : flops)
    {
      float sink;
      fn(iters / 16, 1.0f, &sink); /* warm the core's clock */
#pragma omp barrier
#pragma omp master
      t0 = now_s();
      flops += fn(iters, (float)omp_get_thread_num(), &sink);
      if (sink == 12345.678f) flops += 1; /* keep `sink` alive */
#pragma omp barrier
#pragma omp master
      t1 = now_s();
    }
    const double g = flops / (t1 - t0) * 1e-9;
    if (g > best) best = g;
  }
  return best;
}

/* --------------------------------------------------------- STREAM copy */

#if RL_X86
__attribute__((target("avx2"))) static void copy_avx2(float *restrict c,
                                                      const float *restrict a,
                                                      size_t n) {
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    _mm256_store_ps(c + i, _mm256_load_ps(a + i));
    _mm256_store_ps(c + i + 8, _mm256_load_ps(a + i + 8));
    _mm256_store_ps(c + i + 16, _mm256_load_ps(a + i + 16));
    _mm256_store_ps(c + i + 24, _mm256_load_ps(a + i + 24));
  }
  for (; i < n; i++) c[i] = a[i];
}

/* The same with non-temporal stores (no read-for-ownership of c): what a
 * streaming kernel that writes its output once can reach. */
__attribute__((target("avx2"))) static void copy_nt_avx2(float *restrict c,
                                                         const float *restrict a,
                                                         size_t n) {
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    _mm256_stream_ps(c + i, _mm256_load_ps(a + i));
    _mm256_stream_ps(c + i + 8, _mm256_load_ps(a + i + 8));
    _mm256_stream_ps(c + i + 16, _mm256_load_ps(a + i + 16));
    _mm256_stream_ps(c + i + 24, _mm256_load_ps(a + i + 24));
  }
  for (; i < n; i++) c[i] = a[i];
  _mm_sfence();
}

static void copy_sse(float *restrict c, const float *restrict a, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    _mm_store_ps(c + i, _mm_load_ps(a + i));
    _mm_store_ps(c + i + 4, _mm_load_ps(a + i + 4));
  }
  for (; i < n; i++) c[i] = a[i];
}
#else
static void copy_sse(float *restrict c, const float *restrict a, size_t n) {
  volatile float *vc = c; /* no memcpy: keep STREAM's plain stores */
  for (size_t i = 0; i < n; i++) vc[i] = a[i];
}
#endif

typedef void (*copy_fn)(float *restrict, const float *restrict, size_t);

/* ------------------------------------------------------------ STREAM read */

#if RL_X86
/* Four independent sums, so the adds never wait on each other: the loads
 * alone set the pace. */
__attribute__((target("avx2"))) static float read_avx2(const float *a,
                                                      size_t n) {
  __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    s0 = _mm256_add_ps(s0, _mm256_load_ps(a + i));
    s1 = _mm256_add_ps(s1, _mm256_load_ps(a + i + 8));
    s2 = _mm256_add_ps(s2, _mm256_load_ps(a + i + 16));
    s3 = _mm256_add_ps(s3, _mm256_load_ps(a + i + 24));
  }
  float out[8], sum = 0.0f;
  _mm256_storeu_ps(out, _mm256_add_ps(_mm256_add_ps(s0, s1),
                                      _mm256_add_ps(s2, s3)));
  for (int j = 0; j < 8; j++) sum += out[j];
  for (; i < n; i++) sum += a[i];
  return sum;
}
#endif

static float read_plain(const float *a, size_t n) {
  float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    s0 += a[i];
    s1 += a[i + 1];
    s2 += a[i + 2];
    s3 += a[i + 3];
  }
  for (; i < n; i++) s0 += a[i];
  return (s0 + s1) + (s2 + s3);
}

typedef float (*read_fn)(const float *, size_t);

/* ---------------------------------------------- STREAM copy and read runs */

static float *alloc_array(size_t n) {
  float *a = NULL;
  if (posix_memalign((void **)&a, 64, n * sizeof(float))) {
    fprintf(stderr, "roofline: cannot allocate %zu MiB\n",
            n * sizeof(float) >> 20);
    exit(1);
  }
  return a;
}

/* STREAM copy (`copy`: c = a, counted read + write) or read (`read`: the
 * sum of a, counted read only) over n floats: 64-byte aligned slices, the
 * same split for the first touch and the runs, best of `reps`. */
static double measure_stream(copy_fn copy, read_fn read, int threads,
                             size_t n, int reps) {
  float *a = alloc_array(n), *c = copy ? alloc_array(n) : NULL;
  const double bytes = (copy ? 2.0 : 1.0) * (double)n * sizeof(float);
  double best = 0.0;
  volatile float sink = 0.0f; /* the sums are used: the reads stay */
#pragma omp parallel num_threads(threads)
  {
    const int nt = omp_get_num_threads(), id = omp_get_thread_num();
    const size_t per = (n / (size_t)nt) / 16 * 16;
    const size_t lo = per * (size_t)id;
    const size_t hi = id == nt - 1 ? n : lo + per;
    for (size_t i = lo; i < hi; i++) {
      a[i] = 1.0f + (float)(i & 1023);
      if (c) c[i] = 0.0f;
    }
    for (int rep = 0; rep < reps; rep++) {
      double t0 = 0.0;
      float sum = 0.0f;
#pragma omp barrier
#pragma omp master
      t0 = now_s();
      if (copy)
        copy(c + lo, a + lo, hi - lo);
      else
        sum = read(a + lo, hi - lo);
#pragma omp barrier
#pragma omp master
      {
        const double g = bytes / (now_s() - t0) * 1e-9;
        if (g > best) best = g;
      }
      if (!copy) {
#pragma omp critical
        sink += sum;
      }
    }
  }
  (void)sink;
  if (c && c[n - 1] != a[n - 1])
    fprintf(stderr, "roofline: copy check failed\n");
  free(a);
  free(c);
  return best;
}

/* ------------------------------------------------------------- summary */

/* Read a whole file; NULL on failure. */
static char *slurp(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  size_t cap = 1 << 16, len = 0;
  char *buf = malloc(cap);
  size_t n;
  while (buf && (n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
    len += n;
    if (len + 1 == cap) {
      char *nb = realloc(buf, cap *= 2);
      if (!nb) free(buf);
      buf = nb;
    }
  }
  fclose(f);
  if (buf) buf[len] = '\0';
  return buf;
}

/* The text after `"key": ` at or after `from` and before `end` (NULL: the
 * end of the string); NULL when absent. */
static const char *json_at(const char *from, const char *end,
                           const char *key) {
  char pat[64];
  snprintf(pat, sizeof pat, "\"%s\": ", key);
  const char *p = strstr(from, pat);
  if (!p || (end && p >= end)) return NULL;
  return p + strlen(pat);
}

/* A number value (NAN for null or absent). */
static double json_num(const char *from, const char *end, const char *key) {
  const char *p = json_at(from, end, key);
  if (!p || !strncmp(p, "null", 4)) return NAN;
  return strtod(p, NULL);
}

/* A string value, copied (without unescaping) into buf. */
static const char *json_str(const char *from, const char *end,
                            const char *key, char *buf, size_t size) {
  const char *p = json_at(from, end, key);
  buf[0] = '\0';
  if (!p || *p != '"') return buf;
  p++;
  size_t n = 0;
  while (*p && *p != '"' && n + 1 < size) {
    if (*p == '\\' && p[1]) p++;
    buf[n++] = *p++;
  }
  buf[n] = '\0';
  return buf;
}

/* Base name of a path, without ".json". */
static void stem(const char *path, char *buf, size_t size) {
  const char *b = strrchr(path, '/');
  snprintf(buf, size, "%s", b ? b + 1 : path);
  char *dot = strstr(buf, ".json");
  if (dot) *dot = '\0';
}

/* One result record of a pe-bench JSON file. */
typedef struct rec {
  char backend[64], status[32], details[512], message[512];
  double median, gflops, gbps;
} rec;

/* The records of `json` (at most `max`): each starts at `{"cell": `. */
static int read_recs(const char *json, rec *out, int max) {
  const char *res = json_at(json, NULL, "results");
  /* the top-level "agreement" array ends the records (each record has an
   * "agreement" object too) */
  const char *agree = res ? strstr(res, "\"agreement\": [") : NULL;
  int n = 0;
  for (const char *r = res ? strstr(res, "{\"cell\": ") : NULL;
       r && (!agree || r < agree) && n < max;
       r = strstr(r + 1, "{\"cell\": ")) {
    const char *next = strstr(r + 1, "{\"cell\": ");
    const char *end = next && (!agree || next < agree) ? next : agree;
    rec *x = &out[n++];
    json_str(r, end, "backend", x->backend, sizeof x->backend);
    json_str(r, end, "status", x->status, sizeof x->status);
    json_str(r, end, "details", x->details, sizeof x->details);
    json_str(r, end, "message", x->message, sizeof x->message);
    const char *tm = json_at(r, end, "time_ms");
    x->median = tm ? json_num(tm, end, "median") : NAN;
    x->gflops = json_num(r, end, "gflops");
    x->gbps = json_num(r, end, "gbps");
  }
  return n;
}

typedef struct roof {
  double peak, copy, copy_nt, read;
  int threads;
  char isa[32];
} roof;

static int read_roof(const char *path, roof *rf) {
  char *rl = slurp(path);
  if (!rl) return -1;
  *rf = (roof){NAN, NAN, NAN, NAN, 0, "?"};
  for (char *line = strtok(rl, "\n"); line; line = strtok(NULL, "\n")) {
    sscanf(line, "fma_peak_gflops %lf", &rf->peak);
    sscanf(line, "stream_copy_gbps %lf", &rf->copy);
    sscanf(line, "stream_copy_nt_gbps %lf", &rf->copy_nt);
    sscanf(line, "stream_read_gbps %lf", &rf->read);
    sscanf(line, "threads %d", &rf->threads);
    sscanf(line, "isa %31s", rf->isa);
  }
  free(rl);
  return 0;
}

/* "59.3% of FMA peak", "103.6% of STREAM copy (72% of NT)" (encode) or
 * "46.5% of STREAM copy (68% of read), K/V streamed" (decode: it only
 * reads) */
static void fraction(const roof *rf, const rec *x, int compute, int decode,
                     char *buf, size_t size) {
  char also[48] = "";
  if (decode && !isnan(rf->read))
    snprintf(also, sizeof also, " (%.0f%% of read)", 100 * x->gbps / rf->read);
  else if (!decode && !isnan(rf->copy_nt))
    snprintf(also, sizeof also, " (%.0f%% of NT)", 100 * x->gbps / rf->copy_nt);
  if (compute)
    snprintf(buf, size, "%5.1f%% of FMA peak", 100 * x->gflops / rf->peak);
  else
    snprintf(buf, size, "%5.1f%% of STREAM copy%s%s",
             100 * x->gbps / rf->copy, also, decode ? ", K/V streamed" : "");
}

/* Ends in ".txt": a saved roofline measurement. */
static int is_txt(const char *path) {
  const size_t n = strlen(path);
  return n > 4 && !strcmp(path + n - 4, ".txt");
}

static double max_known(double a, double b) {
  return isnan(a) ? b : isnan(b) ? a : a > b ? a : b;
}

/* Every leading .txt argument is a roofline measurement; the machine's
 * roofline is the best of them (make bench measures before and after the
 * runs: a busy moment lowers one measurement, never the machine). */
static int summary(int argc, char **argv) {
  roof rf = {NAN, NAN, NAN, NAN, 0, "?"};
  int nroof = 0;
  for (; nroof < argc && is_txt(argv[nroof]); nroof++) {
    roof one;
    if (read_roof(argv[nroof], &one) != 0) {
      fprintf(stderr, "roofline: --summary: cannot read %s\n", argv[nroof]);
      return 2;
    }
    rf.peak = max_known(rf.peak, one.peak);
    rf.copy = max_known(rf.copy, one.copy);
    rf.copy_nt = max_known(rf.copy_nt, one.copy_nt);
    rf.read = max_known(rf.read, one.read);
    rf.threads = one.threads;
    snprintf(rf.isa, sizeof rf.isa, "%s", one.isa);
  }
  if (!nroof) {
    fprintf(stderr, "roofline: --summary: no roofline measurement (.txt)\n");
    return 2;
  }
  argc -= nroof - 1;
  argv += nroof - 1;
  printf("roofline (%d threads, %s): fp32 FMA peak %.1f GFLOP/s, "
         "STREAM copy %.1f GB/s",
         rf.threads, rf.isa, rf.peak, rf.copy);
  if (!isnan(rf.copy_nt)) printf(" (non-temporal stores: %.1f GB/s)", rf.copy_nt);
  if (!isnan(rf.read)) printf(", STREAM read %.1f GB/s", rf.read);
  printf("\n\n");
  printf("%-22s %-8s %-8s %-8s %10s %9s %8s %7s  %s\n", "config", "backend",
         "status", "kind", "median ms", "GFLOP/s", "GB/s", "vs omp",
         "fraction of the roofline");
  int bad = 0;
  for (int i = 1; i < argc; i++) {
    char name[128], op[32];
    stem(argv[i], name, sizeof name);
    char *j = slurp(argv[i]);
    rec recs[8];
    const int n = j ? read_recs(j, recs, 8) : 0;
    if (n == 0) {
      printf("%-22s %-8s (no result: see pe-bench's message above)\n", name,
             "missing");
      bad = 1;
      free(j);
      continue;
    }
    const char *res = json_at(j, NULL, "results");
    json_str(j, res, "op", op, sizeof op);
    const double q_len = json_num(j, res, "q_len");
    free(j);
    const int decode = !strcmp(op, "attention") && q_len == 1;
    const int compute = !strcmp(op, "attention") && !decode;
    const char *kind = compute ? "prefill" : decode ? "decode" : op;
    double omp = NAN; /* the openmp median of the same (interleaved) run */
    for (int k = 0; k < n; k++)
      if (!strcmp(recs[k].backend, "openmp") && !strcmp(recs[k].status, "ok"))
        omp = recs[k].median;
    for (int k = 0; k < n; k++) {
      const rec *x = &recs[k];
      char frac[96] = "-", ratio[16] = "-";
      if (!strcmp(x->status, "unsupported"))
        ; /* no device for it here: said, not a failure */
      else if (strcmp(x->status, "ok") != 0)
        bad = 1;
      else
        fraction(&rf, x, compute, decode, frac, sizeof frac);
      if (!isnan(omp) && !strcmp(x->status, "ok"))
        snprintf(ratio, sizeof ratio, "%.2fx", omp / x->median);
      if (strcmp(x->status, "ok") != 0) {
        printf("%-22s %-8s %-8s %-8s %s\n", k ? "" : name, x->backend,
               x->status, kind, x->message);
        continue;
      }
      printf("%-22s %-8s %-8s %-8s %10.2f %9.1f %8.1f %7s  %s\n",
             k ? "" : name, x->backend, x->status, kind, x->median,
             compute ? x->gflops : NAN, x->gbps, ratio, frac);
    }
    for (int k = 0; k < n; k++)
      if (recs[k].details[0])
        printf("%-22s   %s: %s\n", "", recs[k].backend, recs[k].details);
  }
  printf("\nvs omp: openmp's median time / this backend's (>1: faster), both "
         "timed in the same\ninterleaved rounds; fractions: this run's median "
         "against the roofline above.\n");
  return bad;
}

/* ---------------------------------------------------------------- main */

static void usage(FILE *f) {
  fprintf(f,
          "usage: roofline [--threads N] [--isa auto|avx512|avx2|scalar]\n"
          "                [--mib N] [--json]\n"
          "       roofline --summary ROOFLINE.txt... RESULT.json...\n"
          "  measures fp32 FMA peak (GFLOP/s), STREAM copy and read (GB/s)\n"
          "  with N OpenMP threads (default: the OpenMP default);\n"
          "  --mib: size of each copy array (default 128).\n"
          "  --summary: print pe-bench JSON results as fractions of saved\n"
          "  measurements, the best of them (attention: FMA peak; encode,\n"
          "  decode: copy, and decode also read), and each backend's speed\n"
          "  relative to openmp.\n");
}

int main(int argc, char **argv) {
  int threads = omp_get_max_threads(), json = 0;
  const char *isa = "auto";
  size_t mib = 128;
  if (argc >= 3 && !strcmp(argv[1], "--summary"))
    return summary(argc - 2, argv + 2);
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
      threads = atoi(argv[++i]);
      if (threads <= 0) threads = omp_get_max_threads();
    } else if (!strcmp(argv[i], "--isa") && i + 1 < argc) {
      isa = argv[++i];
    } else if (!strcmp(argv[i], "--mib") && i + 1 < argc) {
      mib = (size_t)strtoul(argv[++i], NULL, 10);
      if (mib < 1) mib = 1;
    } else if (!strcmp(argv[i], "--json")) {
      json = 1;
    } else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      usage(stdout);
      return 0;
    } else {
      usage(stderr);
      return 2;
    }
  }

  fma_fn fma = fma_scalar;
  copy_fn copy = copy_sse, copy_nt = NULL;
  read_fn rd = read_plain;
  const char *used = "scalar";
#if RL_X86
  __builtin_cpu_init();
  const int has512 = __builtin_cpu_supports("avx512f") != 0;
  const int has2 =
      __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (!strcmp(isa, "auto")) {
    isa = has512 ? "avx512" : has2 ? "avx2" : "scalar";
  }
  if (!strcmp(isa, "avx512")) {
    if (!has512) {
      fprintf(stderr, "roofline: --isa avx512: this CPU has no AVX-512F\n");
      return 1;
    }
    fma = fma_avx512;
    copy = copy_avx2;
    copy_nt = copy_nt_avx2;
    rd = read_avx2;
    used = "avx512";
  } else if (!strcmp(isa, "avx2")) {
    if (!has2) {
      fprintf(stderr, "roofline: --isa avx2: this CPU lacks AVX2/FMA\n");
      return 1;
    }
    fma = fma_avx2;
    copy = copy_avx2;
    copy_nt = copy_nt_avx2;
    rd = read_avx2;
    used = "avx2";
  } else if (strcmp(isa, "scalar") != 0) {
    fprintf(stderr, "roofline: unknown --isa %s\n", isa);
    return 2;
  }
#else
  if (strcmp(isa, "auto") && strcmp(isa, "scalar")) {
    fprintf(stderr, "roofline: --isa %s: not an x86 build\n", isa);
    return 1;
  }
#endif

  /* Many short repetitions, best kept: on a shared machine some of them
   * run undisturbed, and that is the machine's peak. */
  const double gflops = measure_fma(fma, threads, 2000000L, 40);
  const size_t n = mib * (size_t)(1u << 20) / sizeof(float);
  const double gbps = measure_stream(copy, NULL, threads, n, 10);
  const double nt =
      copy_nt ? measure_stream(copy_nt, NULL, threads, n, 10) : NAN;
  const double rgbps = measure_stream(NULL, rd, threads, n, 10);
  if (json) {
    printf("{\"isa\": \"%s\", \"threads\": %d, \"fma_peak_gflops\": %.2f, "
           "\"stream_copy_gbps\": %.2f, \"stream_copy_nt_gbps\": ",
           used, threads, gflops, gbps);
    if (isnan(nt))
      printf("null");
    else
      printf("%.2f", nt);
    printf(", \"stream_read_gbps\": %.2f}\n", rgbps);
  } else {
    printf("isa %s\nthreads %d\nfma_peak_gflops %.2f\nstream_copy_gbps %.2f\n",
           used, threads, gflops, gbps);
    if (!isnan(nt)) printf("stream_copy_nt_gbps %.2f\n", nt);
    printf("stream_read_gbps %.2f\n", rgbps);
  }
  return 0;
}
