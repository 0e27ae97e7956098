/* Test-only backend `wrong_backend`: the reference backend whose output is
 * deliberately wrong by `error` in one query row of every (batch, head),
 * so pe-bench's agreement check must fail the run even where the oracle's
 * row sample misses the row; and a `delay_ms` per execute, so a test can
 * interrupt a sweep mid-run.
 *
 *   [backend.wrong]
 *   plugin = /path/to/tests/.libs/wrong_backend.so
 *   error = 1e-3      ; added to every element of the row (0: right)
 *   row = 1           ; query row made wrong (-1: every row)
 *   delay_ms = 0      ; sleep in every execute
 *
 * The reference backend's code is compiled in (its entry renamed). */
#include "ref_wrapper.h"

#include <stdint.h>
#include <time.h>

static const pe_param_decl opt_error = {
    .struct_size = sizeof(pe_param_decl),
    .type = PE_PARAM_NUMBER,
    .flags = PE_PARAM_HAS_MIN,
    .name = "error",
    .doc = "added to every element of the wrong row",
    .default_value = "1e-3",
    .min = 0,
};
static const pe_param_decl opt_row = {
    .struct_size = sizeof(pe_param_decl),
    .type = PE_PARAM_INTEGER,
    .flags = PE_PARAM_HAS_MIN,
    .name = "row",
    .doc = "query row made wrong in every (batch, head); -1: all rows",
    .default_value = "1",
    .min = -1,
};
static const pe_param_decl opt_delay = {
    .struct_size = sizeof(pe_param_decl),
    .type = PE_PARAM_INTEGER,
    .flags = PE_PARAM_HAS_MIN | PE_PARAM_HAS_MAX,
    .name = "delay_ms",
    .doc = "sleep this long in every execute",
    .default_value = "0",
    .min = 0,
    .max = 60000,
};
/* The reference backend's option first: ref_open reads values[0]. */
static const pe_param_decl *const wrong_options[] = {&opt_accumulate, &opt_error, &opt_row,
                                                     &opt_delay, NULL};

/* The backend and each run: the reference object it wraps plus the
 * options (a run copies its backend's). */
typedef struct wrong {
  void *ref;
  double error;
  int64_t row, delay_ms;
  const pe_task *task;
} wrong;

static int wrong_open(const pe_host *host, const pe_param_value *const *values, void **out, char *err,
                  size_t err_size) {
  wrong *w = calloc(1, sizeof *w);
  if (!w) return pe_plugin_error(err, err_size, PE_ENOMEM, "out of memory");
  w->error = values[1]->number;
  w->row = values[2]->integer;
  w->delay_ms = values[3]->integer;
  int rc = ref_open(host, values, &w->ref, err, err_size);
  if (rc) free(w);
  else *out = w;
  return rc;
}

static void wrong_close(void *vw) {
  wrong *w = vw;
  ref_close(w->ref);
  free(w);
}

static int wrong_describe(void *vw, pe_device_info *info) {
  const wrong *w = vw;
  ref_describe(w->ref, info);
  snprintf(info->name, sizeof info->name, "wrong (reference + %g in row %lld)", w->error,
           (long long)w->row);
  return 0;
}

static int wrong_prepare(void *vw, const pe_task *task, void **out, char *err, size_t err_size) {
  const wrong *w = vw;
  wrong *r = malloc(sizeof *r);
  if (!r) return pe_plugin_error(err, err_size, PE_ENOMEM, "out of memory");
  *r = *w;
  r->task = task;
  int rc = ref_prepare(w->ref, task, &r->ref, err, err_size);
  if (rc) free(r);
  else *out = r;
  return rc;
}

static int wrong_execute(void *vr, double *device_ms, char *err, size_t err_size) {
  const wrong *r = vr;
  struct timespec ts = {(time_t)(r->delay_ms / 1000), (long)(r->delay_ms % 1000) * 1000000L};
  if (r->delay_ms) nanosleep(&ts, NULL);
  return ref_execute(r->ref, device_ms, err, err_size);
}

static int wrong_fetch(void *vr, float *out0, float *out1, char *err, size_t err_size) {
  const wrong *r = vr;
  int rc = ref_fetch(r->ref, out0, out1, err, err_size);
  const pe_task *t = r->task;
  for (uint64_t bh = 0; rc == 0 && bh < (uint64_t)t->batch * t->q_heads; bh++)
    for (uint64_t i = 0; i < t->q_len; i++)
      for (uint32_t c = 0; (r->row < 0 || (uint64_t)r->row == i) && c < t->head_dim; c++)
        out0[(bh * t->q_len + i) * t->head_dim + c] += (float)r->error;
  return rc;
}

static void wrong_release(void *vr) {
  wrong *r = vr;
  ref_release(r->ref);
  free(r);
}

PE_REF_WRAPPER(wrong, "wrong_backend", "test only: the reference backend, deliberately wrong in one row")
