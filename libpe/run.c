/* Running a workload on a backend: open, prepare, warm up, time, fetch,
 * describe, verify against the oracle, release.  Every failure ends up in
 * the result with its reason; nothing falls back silently. */
#include "internal.h"
#include "text_fit.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct run_state {
  pe_ctx *ctx;
  const pe_workload *w;
  const pe_plugin *plugin;
  pe__values options;
  void *backend;
  void *run;
  pe_result *r;
  float *output;
} run_state;

static int set_status(run_state *st, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int set_status(run_state *st, int code, const char *fmt, ...) {
  pe_result *r = st->r;
  r->error = code;
  r->status = code == PE_EUNSUPPORTED ? PE_RUN_UNSUPPORTED : PE_RUN_FAILED;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(r->message, sizeof r->message, fmt, ap);
  va_end(ap);
  pe__fail(st->ctx, code, "%s: %s", r->label, r->message);
  return code;
}

/* A backend callback `what` ("open", "execute"...) returned rc != 0. */
static int callback_failed(run_state *st, const char *what, int rc, const char *err) {
  char msg[1200];
  int code = pe__plugin_failure(rc, PE_EDEVICE, err, msg, sizeof msg);
  return set_status(st, code, "%s%s%s", what, what[0] ? ": " : "", msg);
}

/* Which config section configures `name`: a label, else the plugin a
 * section loads (a path in the config is relative to the config, `name`
 * to the working directory: equal only when they are the same file). */
static const pe__backend_section *find_section(const pe_config *cfg, const char *name) {
  if (!cfg) return NULL;
  for (size_t i = 0; i < cfg->n_backends; i++)
    if (!strcmp(cfg->backends[i].label, name)) return &cfg->backends[i];
  for (size_t i = 0; i < cfg->n_backends; i++) {
    char *plugin = pe__config_plugin_path(cfg, cfg->backends[i].plugin);
    bool same = plugin && !strcmp(plugin, name);
    free(plugin);
    if (same) return &cfg->backends[i];
  }
  return NULL;
}

/* `name` as the caller gave it (a path relative to the working directory)
 * or, when a section of `cfg` configures it, that section's plugin (a path
 * relative to the config's directory). */
static int load_backend_plugin(pe_ctx *ctx, const pe_config *cfg, const char *name,
                               const pe__backend_section *sec, const pe_plugin **out) {
  char *path = sec ? pe__config_plugin_path(cfg, sec->plugin) : NULL;
  if (sec && !path) return pe__fail(ctx, PE_ENOMEM, "out of memory");
  int rc = pe_plugin_load(ctx, path ? path : name, PE_PLUGIN_BACKEND, out);
  free(path);
  return rc;
}

/* The backend's option values: its config section's, else its defaults. */
static int backend_options(pe_ctx *ctx, const pe_config *cfg, const pe__backend_section *sec,
                           const pe_plugin *p, pe__values *out) {
  char owner[128];
  snprintf(owner, sizeof owner, "backend %s", p->desc.name);
  if (sec) return pe__values_build(ctx, cfg, sec->section, NULL, pe_plugin_params(p), owner, out);
  pe_config empty = {.name = (char *)"(defaults)"};
  return pe__values_build(ctx, &empty, "backend", NULL, pe_plugin_params(p), owner, out);
}

static int open_backend(run_state *st, const pe_config *cfg, const char *name) {
  const pe__backend_section *sec = find_section(cfg, name);
  int rc = load_backend_plugin(st->ctx, cfg, name, sec, &st->plugin);
  if (rc) return set_status(st, rc, "%s", st->ctx->err);
  snprintf(st->r->backend, sizeof st->r->backend, "%s", st->plugin->desc.name);
  rc = backend_options(st->ctx, cfg, sec, st->plugin, &st->options);
  if (rc) return set_status(st, rc, "%s", st->ctx->err);
  char err[1024] = "";
  rc = st->plugin->backend.open(&st->ctx->host, st->options.ptrs, &st->backend, err, sizeof err);
  if (rc) {
    st->backend = NULL;
    return callback_failed(st, "", rc, err);
  }
  return 0;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static int prepare_run(run_state *st) {
  char err[1024] = "";
  double t0 = pe__now_ms();
  int rc = st->plugin->backend.prepare(st->backend, &st->w->task, &st->run, err, sizeof err);
  st->r->prepare_ms = pe__now_ms() - t0;
  if (rc) {
    st->run = NULL;
    return callback_failed(st, "", rc, err);
  }
  return 0;
}

/* Execution i (warm-ups first) of a prepared run, timed into the arrays. */
static int timed_execute(run_state *st, uint32_t i, double *wall, double *dev) {
  char err[1024] = "";
  double device_ms = -1;
  double t0 = pe__now_ms();
  int rc = st->plugin->backend.execute(st->run, &device_ms, err, sizeof err);
  double t1 = pe__now_ms();
  if (rc) return callback_failed(st, "execute", rc, err);
  if (i >= st->r->warmup) {
    wall[i - st->r->warmup] = t1 - t0;
    dev[i - st->r->warmup] = device_ms;
  }
  return 0;
}

static double median_sorted(const double *x, uint32_t n) {
  return n % 2 ? x[n / 2] : 0.5 * (x[n / 2 - 1] + x[n / 2]);
}

/* min/median/max and the rates from the timed executions (sorts them). */
static void summarize_times(run_state *st, double *wall, double *dev) {
  pe_result *r = st->r;
  uint32_t n = r->iterations;
  qsort(wall, n, sizeof *wall, cmp_double);
  qsort(dev, n, sizeof *dev, cmp_double);
  r->time_min_ms = wall[0];
  r->time_max_ms = wall[n - 1];
  r->time_median_ms = median_sorted(wall, n);
  r->device_median_ms = dev[0] < 0 ? -1 : median_sorted(dev, n);
  double secs = r->time_median_ms * 1e-3;
  r->gflops = secs > 0 ? st->w->info.flops / secs * 1e-9 : 0;
  r->gbps = secs > 0 ? st->w->info.bytes / secs * 1e-9 : 0;
}

static int fetch_output(run_state *st) {
  const pe_workload_info *in = &st->w->info;
  size_t nq = (size_t)in->batch * in->q_heads * in->q_len * in->head_dim;
  size_t nk = (size_t)in->batch * in->kv_heads * in->kv_len * in->head_dim;
  size_t n = in->op == PE_OP_ENCODE ? nq + nk : nq;
  if (!(st->output = malloc(n * sizeof(float)))) return set_status(st, PE_ENOMEM, "%s", "out of memory");
  st->r->output = st->output; /* owned by the result from here on */
  st->r->output_len = n;
  /* NaN-fill: a backend that skips writes cannot pass verification. */
  for (size_t i = 0; i < n; i++) st->output[i] = NAN;
  char err[1024] = "";
  int rc = st->plugin->backend.fetch(st->run, st->output,
                                     in->op == PE_OP_ENCODE ? st->output + nq : NULL, err, sizeof err);
  if (rc) return callback_failed(st, "fetch", rc, err);
  return 0;
}

static void accumulate(pe_result *r, double got, double want, double *sq, size_t *count) {
  double e = fabs(got - want);
  if (!(e <= r->max_abs_err)) r->max_abs_err = isnan(e) ? INFINITY : e;
  *sq += isnan(e) ? INFINITY : e * e;
  (*count)++;
}

static int verify(run_state *st) {
  const pe_workload *w = st->w;
  const pe_workload_info *in = &w->info;
  pe_result *r = st->r;
  uint32_t d = in->head_dim;
  double sq = 0;
  size_t count = 0;
  double *want = NULL;
  uint64_t *rows = NULL;
  int rc;
  if (in->op == PE_OP_ENCODE) {
    if (!(want = malloc(r->output_len * sizeof(double)))) return set_status(st, PE_ENOMEM, "%s", "out of memory");
    rc = pe_oracle(st->ctx, w, 0, 0, want);
    for (size_t i = 0; rc == 0 && i < r->output_len; i++) accumulate(r, r->output[i], want[i], &sq, &count);
    r->verified_rows = r->total_rows = in->q_len;
  } else {
    size_t n = pe__verify_rows(w, &rows);
    size_t per_head = n * d;
    want = n ? malloc((size_t)in->batch * in->q_heads * per_head * sizeof(double)) : NULL;
    if (!rows || !want) {
      free(rows), free(want);
      return set_status(st, PE_ENOMEM, "%s", "out of memory for verification");
    }
    rc = pe__oracle_rows(st->ctx, w, rows, n, want);
    for (size_t bh = 0; rc == 0 && bh < (size_t)in->batch * in->q_heads; bh++)
      for (size_t k = 0; k < n; k++)
        for (uint32_t c = 0; c < d; c++)
          accumulate(r, r->output[(bh * in->q_len + rows[k]) * d + c], want[(bh * n + k) * d + c], &sq, &count);
    r->verified_rows = n;
    r->total_rows = in->q_len;
  }
  free(rows);
  free(want);
  if (rc) return set_status(st, rc, "oracle: %s", st->ctx->err);
  r->verified = 1;
  r->rms_err = count ? sqrt(sq / (double)count) : NAN;
  if (!(r->max_abs_err <= r->tolerance)) {
    char why[160];
    snprintf(why, sizeof why, "max abs error %.3g exceeds the tolerance %.3g", r->max_abs_err, r->tolerance);
    return set_status(st, PE_EVERIFY, "verification failed: %s", why);
  }
  return 0;
}

/* The backend's description of its device into the result; describe's
 * return code.  What a failing describe wrote is not kept. */
static int describe(run_state *st) {
  pe_device_info *dev = &st->r->device;
  memset(dev, 0, sizeof *dev);
  dev->struct_size = sizeof *dev;
  int rc = st->backend ? st->plugin->backend.describe(st->backend, dev) : 0;
  if (rc) memset(dev, 0, sizeof *dev);
  pe__device_info_terminate(dev);
  return rc;
}

static pe_result *new_result(const pe_workload *w, const char *backend) {
  pe_result *r = calloc(1, sizeof *r);
  if (!r) return NULL;
  r->struct_size = sizeof *r;
  r->status = PE_RUN_OK;
  r->device_median_ms = -1;
  r->max_abs_err = r->rms_err = NAN; /* until verified: nothing was compared */
  r->warmup = w->set.warmup;
  r->iterations = w->set.iterations;
  r->tolerance = w->set.tolerance;
  /* a plugin given by a long path keeps its file name */
  pe_text_fit(r->label, sizeof r->label, backend, sizeof r->label - 1);
  pe_text_fit(r->backend, sizeof r->backend, backend, sizeof r->backend - 1);
  return r;
}

/* Device description, release of the run and the backend, then the
 * oracle comparison (after the release: the oracle needs no device). */
static int finish(run_state *st, int rc) {
  /* A failing describe is the backend failing (its device is unknown, so
   * the result could not be reported truthfully); an earlier failure of
   * the run stays the one reported. */
  int drc = describe(st);
  if (drc && rc == 0) rc = callback_failed(st, "describe", drc, "");
  if (st->run) st->plugin->backend.release(st->run);
  if (st->backend) st->plugin->backend.close(st->backend);
  st->run = st->backend = NULL;
  pe__values_free(&st->options);
  if (rc == 0 && st->w->set.verify) rc = verify(st);
  else st->r->total_rows = st->w->info.q_len; /* verified_rows stays 0 */
  return rc;
}

/* One backend of an interleaved run. */
typedef struct lane {
  run_state st;
  double *wall, *dev;
  int rc;
} lane;

/* Round i executes every live lane once: forward on even rounds, backward
 * on odd ones (A B B A ...), so a slow drift of the machine's speed
 * (another tenant, clocks) falls on every backend alike. */
static void run_round(lane *ln, size_t n, uint32_t i) {
  for (size_t k = 0; k < n; k++) {
    lane *l = &ln[i % 2 ? n - 1 - k : k];
    if (l->rc == 0) l->rc = timed_execute(&l->st, i, l->wall, l->dev);
  }
}

static int open_lane(pe_ctx *ctx, const pe_workload *w, const pe_config *cfg, const char *backend,
                     lane *l) {
  pe_result *r = new_result(w, backend);
  if (!r) return PE_ENOMEM;
  l->st = (run_state){.ctx = ctx, .w = w, .r = r};
  l->rc = pe__workload_runnable(ctx, w);
  if (l->rc) set_status(&l->st, l->rc, "%s", ctx->err);
  if (l->rc == 0) l->rc = open_backend(&l->st, cfg, backend);
  if (l->rc == 0) l->rc = prepare_run(&l->st);
  if (l->rc == 0) {
    l->wall = malloc(r->iterations * sizeof *l->wall);
    l->dev = malloc(r->iterations * sizeof *l->dev);
    if (!l->wall || !l->dev) l->rc = set_status(&l->st, PE_ENOMEM, "%s", "out of memory");
  }
  return 0;
}

int pe_run_interleaved(pe_ctx *ctx, const pe_workload *w, const pe_config *cfg,
                       const char *const *backends, size_t n, pe_result **out) {
  for (size_t k = 0; k < n; k++) out[k] = NULL;
  lane *ln = calloc(n ? n : 1, sizeof *ln);
  if (!ln) return pe__fail(ctx, PE_ENOMEM, "out of memory");
  int rc = 0;
  for (size_t k = 0; k < n && rc == 0; k++) rc = open_lane(ctx, w, cfg, backends[k], &ln[k]);
  if (rc == 0) {
    uint32_t rounds = w->set.warmup + w->set.iterations;
    for (uint32_t i = 0; i < rounds; i++) run_round(ln, n, i);
  }
  int first = rc ? pe__fail(ctx, rc, "out of memory") : 0;
  for (size_t k = 0; k < n; k++) {
    lane *l = &ln[k];
    if (!l->st.r) continue;
    if (rc && l->rc == 0) l->rc = set_status(&l->st, rc, "%s", "out of memory");
    if (l->rc == 0) {
      summarize_times(&l->st, l->wall, l->dev);
      l->rc = fetch_output(&l->st);
    }
    l->rc = finish(&l->st, l->rc);
    if (l->rc && !first) first = l->rc;
    free(l->wall);
    free(l->dev);
    out[k] = l->st.r;
  }
  free(ln);
  return first;
}

/* One backend is an interleaved run of one: the same open, prepare, timed
 * executions, fetch, release and verification. */
int pe_run(pe_ctx *ctx, const pe_workload *w, const pe_config *cfg, const char *backend,
           pe_result **out) {
  pe_result *r = NULL;
  int rc = pe_run_interleaved(ctx, w, cfg, &backend, 1, &r);
  if (out) *out = r;
  else pe_result_free(r);
  return rc;
}

void pe_result_free(pe_result *r) {
  if (!r) return;
  free((void *)r->output);
  free(r);
}

/* ---- runners: a backend kept open ------------------------------------- */
struct pe_runner {
  run_state st;
  pe_result result; /* label, messages, device */
  bool described;   /* result.device is describe's answer since the last run */
};

int pe_runner_open(pe_ctx *ctx, const pe_config *cfg, const char *backend, pe_runner **out) {
  *out = NULL;
  pe_runner *r = calloc(1, sizeof *r);
  if (!r) return pe__fail(ctx, PE_ENOMEM, "out of memory");
  r->result.struct_size = sizeof r->result;
  snprintf(r->result.label, sizeof r->result.label, "%s", backend);
  r->st = (run_state){.ctx = ctx, .r = &r->result};
  pe__ctx_hold(ctx, &ctx->live_runners);
  int rc = open_backend(&r->st, cfg, backend);
  if (rc) {
    pe_runner_close(r);
    return rc;
  }
  *out = r;
  return 0;
}

int pe_runner_run(pe_runner *r, const pe_workload *w, float *out0, float *out1) {
  run_state *st = &r->st;
  const pe_backend_ops *b = &st->plugin->backend;
  char err[1024] = "";
  void *run = NULL;
  double device_ms;
  if (pe__workload_runnable(st->ctx, w)) return PE_ESTATE;
  r->described = false; /* a run may change what describe says (kernel, device) */
  int rc = b->prepare(st->backend, &w->task, &run, err, sizeof err);
  if (rc == 0) rc = b->execute(run, &device_ms, err, sizeof err);
  if (rc == 0) rc = b->fetch(run, out0, out1, err, sizeof err);
  if (run) b->release(run);
  if (rc) return callback_failed(st, "", rc, err);
  return 0;
}

const pe_device_info *pe_runner_device(pe_runner *r) {
  if (r->described) return &r->result.device;
  r->described = true;
  int rc = describe(&r->st);
  if (rc) { /* no status to fail here: say so, the device stays blank */
    char msg[1200];
    pe__plugin_failure(rc, PE_EDEVICE, "", msg, sizeof msg);
    pe__log(r->st.ctx, PE_LOG_WARN, r->st.plugin->desc.name, "describe failed: %s", msg);
  }
  return &r->result.device;
}

void pe_runner_close(pe_runner *r) {
  if (!r) return;
  pe_ctx *ctx = r->st.ctx;
  if (r->st.backend) r->st.plugin->backend.close(r->st.backend);
  pe__values_free(&r->st.options);
  free(r);
  pe__ctx_release(ctx, &ctx->live_runners); /* last: may unload the backend */
}

int pe_config_check_backend(pe_ctx *ctx, const pe_config *cfg, const char *backend) {
  if (!cfg || !backend) return pe__fail(ctx, PE_EINVAL, "pe_config_check_backend: NULL argument");
  const pe__backend_section *sec = find_section(cfg, backend);
  const pe_plugin *p;
  int rc = load_backend_plugin(ctx, cfg, backend, sec, &p);
  pe__values v;
  if (rc == 0 && (rc = backend_options(ctx, cfg, sec, p, &v)) == 0) pe__values_free(&v);
  return rc;
}
