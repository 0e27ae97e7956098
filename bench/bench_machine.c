/* The machine a run happened on, and its roofline.
 *
 * Description: /proc/cpuinfo's model name, online CPUs, physical memory,
 * uname, the compiler that built pe-bench, libpe's version and every
 * plugin the run used (name, version, ABI, path).
 *
 * Roofline (about 0.5 s, once per pe-bench run): the fp32 FMA peak of all
 * CPUs, every OpenMP thread running independent chains of vector
 * multiply-adds (as wide as the CPU has: AVX-512, AVX2+FMA, or scalar),
 * 2 flops per lane per FMA, best of several repetitions; and the copy
 * bandwidth, memcpy of 64 MiB slices split across the threads, counted as
 * STREAM counts copy (read + write), best of up to 3 within 0.3 s.  A CPU result's
 * fractions are its GFLOP/s over the peak and its GB/s over the copy
 * bandwidth.  GPUs are left out: no portable probe measures them here. */
#include "bench.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

static void cpu_model(char *buf, size_t size) {
  snprintf(buf, size, "unknown CPU");
  FILE *fp = fopen("/proc/cpuinfo", "r");
  if (!fp) return;
  char line[512];
  while (fgets(line, sizeof line, fp)) {
    char *colon = strchr(line, ':');
    if (!colon || strncmp(line, "model name", 10)) continue;
    colon += 1 + strspn(colon + 1, " \t");
    colon[strcspn(colon, "\n")] = '\0';
    snprintf(buf, size, "%s", colon);
    break;
  }
  fclose(fp);
}

void bench_machine_describe(bench_machine *m) {
  memset(m, 0, sizeof *m);
  cpu_model(m->cpu, sizeof m->cpu);
  long n = sysconf(_SC_NPROCESSORS_ONLN), pages = sysconf(_SC_PHYS_PAGES);
  long page = sysconf(_SC_PAGESIZE);
  m->cores = n > 0 ? (uint32_t)n : 0;
  m->memory_bytes = pages > 0 && page > 0 ? (double)pages * (double)page : NAN;
  struct utsname u;
  if (uname(&u) == 0) snprintf(m->os, sizeof m->os, "%s %s %s", u.sysname, u.release, u.machine);
#if defined(__clang__)
  snprintf(m->compiler, sizeof m->compiler, "clang %s", __clang_version__);
#elif defined(__GNUC__)
  snprintf(m->compiler, sizeof m->compiler, "gcc %s", __VERSION__);
#else
  snprintf(m->compiler, sizeof m->compiler, "unknown");
#endif
  snprintf(m->libpe_version, sizeof m->libpe_version, "%s", pe_version_string());
  m->abi_version = pe_abi_version();
  time_t now = time(NULL);
  struct tm tm;
  if (gmtime_r(&now, &tm)) strftime(m->created, sizeof m->created, "%Y-%m-%dT%H:%M:%SZ", &tm);
  m->peak_gflops = m->copy_gbps = NAN;
}

/* The same module: a plugin rebuilt or moved between a run and its
 * --resume is another entry, since results of each were made with it. */
static bool same_plugin(const bench_plugin *a, const bench_plugin *b) {
  return !strcmp(a->name, b->name) && !strcmp(a->kind, b->kind) &&
         !strcmp(a->version, b->version) && !strcmp(a->path, b->path) && a->abi == b->abi;
}

static void push_plugin(bench_machine *m, const bench_plugin *bp) {
  for (size_t i = 0; i < m->n_plugins; i++)
    if (same_plugin(&m->plugins[i], bp)) return;
  bench_plugin *g = realloc(m->plugins, (m->n_plugins + 1) * sizeof *g);
  if (!g) return;
  m->plugins = g;
  g[m->n_plugins++] = *bp;
}

void bench_machine_add_plugin(bench_machine *m, const pe_plugin *p) {
  const pe_plugin_desc *d = pe_plugin_descriptor(p);
  bench_plugin bp;
  memset(&bp, 0, sizeof bp);
  snprintf(bp.name, sizeof bp.name, "%s", d->name);
  snprintf(bp.kind, sizeof bp.kind, "%s", d->kind == PE_PLUGIN_SCHEME ? "scheme" : "backend");
  snprintf(bp.version, sizeof bp.version, "%s", d->version ? d->version : "");
  snprintf(bp.path, sizeof bp.path, "%s", pe_plugin_path(p));
  bp.abi = d->abi_version;
  push_plugin(m, &bp);
}

void bench_machine_merge_plugins(bench_machine *m, const bench_machine *from) {
  for (size_t i = 0; i < from->n_plugins; i++) push_plugin(m, &from->plugins[i]);
}

void bench_machine_free(bench_machine *m) {
  free(m->plugins);
  m->plugins = NULL;
  m->n_plugins = 0;
}

/* ---- roofline -------------------------------------------------------------- */
static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* `chains` independent accumulators of `lanes` floats: a = a * x + y
 * contracts to one FMA per vector where the target has FMA. */
#define FMA_KERNEL(name, attributes, lanes, chains)                                   \
  attributes static double name(long iters, float seed) {                            \
    typedef float vec __attribute__((vector_size(4 * (lanes))));                      \
    vec acc[chains], x, y;                                                            \
    for (int l = 0; l < (lanes); l++) x[l] = 0.999999f, y[l] = 1e-7f;                 \
    for (int c = 0; c < (chains); c++)                                                \
      for (int l = 0; l < (lanes); l++) acc[c][l] = seed + (float)(c + l);            \
    for (long it = 0; it < iters; it++) {                                             \
      _Pragma("GCC unroll 32") for (int c = 0; c < (chains); c++) acc[c] = acc[c] * x + y; \
    }                                                                                 \
    float sum = 0;                                                                    \
    for (int c = 0; c < (chains); c++)                                                \
      for (int l = 0; l < (lanes); l++) sum += acc[c][l];                             \
    return sum == 12345.0f ? 0 : (double)iters * (chains) * (lanes) * 2.0;            \
  }

#if defined(__x86_64__)
FMA_KERNEL(fma_avx512, __attribute__((target("avx512f"))), 16, 24)
FMA_KERNEL(fma_avx2, __attribute__((target("avx2,fma"))), 8, 12)
#endif
FMA_KERNEL(fma_plain, , 4, 8)

typedef double (*fma_fn)(long, float);

static fma_fn pick_fma(char *isa, size_t size) {
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) return snprintf(isa, size, "avx512"), fma_avx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    return snprintf(isa, size, "avx2"), fma_avx2;
#endif
  snprintf(isa, size, "generic");
  return fma_plain;
}

/* Iterations for about 40 ms on one thread, whatever the build (a
 * sanitizer build runs the chains far slower). */
static long calibrate(fma_fn fn) {
  for (long iters = 1 << 14;; iters *= 4) {
    double t0 = now_s();
    fn(iters, 1.0f);
    double dt = now_s() - t0;
    if (dt > 0.005 || iters > (1L << 40)) return (long)((double)iters * 0.04 / dt) + 1;
  }
}

/* Best of 5: every thread warms its core up, then all run the chains. */
static double measure_fma(fma_fn fn, int threads) {
  const long iters = calibrate(fn);
  double best = 0;
  for (int rep = 0; rep < 5; rep++) {
    double flops = 0, t0 = 0, t1 = 0;
#pragma omp parallel num_threads(threads) reduction(+ : flops)
    {
      fn(iters / 8, 1.0f);
#pragma omp barrier
#pragma omp master
      t0 = now_s();
      flops += fn(iters, (float)omp_get_thread_num());
#pragma omp barrier
#pragma omp master
      t1 = now_s();
    }
    if (flops / (t1 - t0) * 1e-9 > best) best = flops / (t1 - t0) * 1e-9;
  }
  return best;
}

/* Best of up to 3 copies after the first (which also touches the pages),
 * stopping after 0.3 s. */
static double measure_copy(int threads) {
  const size_t bytes = (size_t)64 << 20;
  char *a = malloc(bytes), *c = malloc(bytes);
  double best = a && c ? 0 : NAN, start = now_s();
  for (int rep = 0; a && c && rep < 4 && (rep < 2 || now_s() - start < 0.3); rep++) {
    double t0 = now_s();
#pragma omp parallel num_threads(threads)
    {
      size_t per = bytes / (size_t)omp_get_num_threads(), lo = per * (size_t)omp_get_thread_num();
      if (rep == 0) memset(a + lo, 1, per); /* first touch by the copying thread */
      memcpy(c + lo, a + lo, per);
    }
    double g = 2.0 * (double)(bytes / (size_t)threads * (size_t)threads) / (now_s() - t0) * 1e-9;
    if (rep > 0 && g > best) best = g;
  }
  free(a);
  free(c);
  return best;
}

void bench_machine_roofline(bench_machine *m) {
  int threads = omp_get_max_threads();
  fma_fn fn = pick_fma(m->isa, sizeof m->isa);
  m->roof_threads = (uint32_t)threads;
  m->peak_gflops = measure_fma(fn, threads);
  m->copy_gbps = measure_copy(threads);
  m->has_roofline = m->peak_gflops > 0;
}

void bench_roofline_fractions(const bench_machine *m, bench_rec *r) {
  r->frac_peak = r->frac_bandwidth = NAN;
  if (!m->has_roofline || r->device_type != PE_DEVICE_CPU || !bench_rec_ok(r)) return;
  if (r->has_work && !strcmp(r->work.op, "attention")) r->frac_peak = r->gflops / m->peak_gflops;
  if (m->copy_gbps > 0) r->frac_bandwidth = r->gbps / m->copy_gbps;
}
