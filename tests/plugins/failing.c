/* Test-only backend `failing`: the reference backend, plus an injected
 * failure on the Nth call of one callback, counted over the whole process
 * (so in a sweep, "the 2nd prepare" is the 2nd cell this module runs).
 * It checks that a backend failing mid-sweep or mid-run is reported as
 * failed with its message and that the other runs go on.
 *
 *   [backend.flaky]
 *   plugin = /path/to/tests/.libs/failing.so
 *   fail_in = execute       ; open | prepare | execute | fetch | describe
 *   fail_call = 2           ; the 2nd call of that callback fails
 *   fail_code = device      ; device (PE_EDEVICE) | unsupported | nomem | raw
 *   raw_code = -999         ; fail_code = raw: return this, even if it is no
 *                           ; libpe error code (a plugin breaking the contract)
 *
 * The reference backend's code is compiled in (its entry renamed), so the
 * runs that do not fail produce verified results. */
#include "ref_wrapper.h"

#include <stdatomic.h>
#include <stdint.h>

static const pe_param_decl opt_fail_in = {
    .struct_size = sizeof(pe_param_decl),
    .type = PE_PARAM_CHOICE,
    .name = "fail_in",
    .doc = "callback that fails",
    .default_value = "execute",
    .choices = "open|prepare|execute|fetch|describe",
};
static const pe_param_decl opt_fail_call = {
    .struct_size = sizeof(pe_param_decl),
    .type = PE_PARAM_INTEGER,
    .flags = PE_PARAM_HAS_MIN,
    .name = "fail_call",
    .doc = "which call of that callback fails, counted over the process (0: none)",
    .default_value = "1",
    .min = 0,
};
static const pe_param_decl opt_fail_code = {
    .struct_size = sizeof(pe_param_decl),
    .type = PE_PARAM_CHOICE,
    .name = "fail_code",
    .doc = "error returned",
    .default_value = "device",
    .choices = "device|unsupported|nomem|raw",
};
static const pe_param_decl opt_raw_code = {
    .struct_size = sizeof(pe_param_decl),
    .type = PE_PARAM_INTEGER,
    .flags = PE_PARAM_HAS_MIN | PE_PARAM_HAS_MAX,
    .name = "raw_code",
    .doc = "fail_code = raw: the value returned (any int, so also no libpe code)",
    .default_value = "-999",
    .min = -2147483648.0,
    .max = 2147483647.0,
};
/* The reference backend's option first: ref_open reads values[0]. */
static const pe_param_decl *const failing_options[] = {&opt_accumulate, &opt_fail_in, &opt_fail_call,
                                                       &opt_fail_code, &opt_raw_code, NULL};
enum { F_OPEN, F_PREPARE, F_EXECUTE, F_FETCH, F_DESCRIBE, F_N };
static const char *const callback_names[F_N] = {"open", "prepare", "execute", "fetch", "describe"};

static atomic_uint_fast64_t calls[F_N];

typedef struct failing {
  void *ref;
  int fail_in;
  uint64_t fail_call;
  int code;
} failing;

typedef struct failing_run {
  void *ref;
  const failing *b;
} failing_run;

/* True (with the message written) when this call is the one to fail. */
static int injected(const failing *b, int callback, char *err, size_t err_size) {
  uint64_t n = atomic_fetch_add(&calls[callback], 1) + 1;
  if (b->fail_in != callback || n != b->fail_call) return 0;
  return pe_plugin_error(err, err_size, b->code, "injected failure in %s, call %llu",
                         callback_names[callback], (unsigned long long)n);
}

static int failing_open(const pe_host *host, const pe_param_value *const *values, void **out, char *err,
                  size_t err_size) {
  failing *b = calloc(1, sizeof *b);
  if (!b) return pe_plugin_error(err, err_size, PE_ENOMEM, "out of memory");
  b->fail_in = (int)values[1]->integer;
  b->fail_call = (uint64_t)values[2]->integer;
  static const int codes[] = {PE_EDEVICE, PE_EUNSUPPORTED, PE_ENOMEM};
  b->code = values[3]->integer < 3 ? codes[values[3]->integer] : (int)values[4]->integer;
  int rc = injected(b, F_OPEN, err, err_size);
  if (rc == 0) rc = ref_open(host, values, &b->ref, err, err_size);
  if (rc) {
    free(b);
    return rc;
  }
  *out = b;
  return 0;
}

static void failing_close(void *vb) {
  failing *b = vb;
  ref_close(b->ref);
  free(b);
}

static int failing_describe(void *vb, pe_device_info *info) {
  failing *b = vb;
  char err[8]; /* describe has no message: the code alone */
  int rc = injected(b, F_DESCRIBE, err, sizeof err);
  if (rc == 0) rc = ref_describe(b->ref, info);
  snprintf(info->name, sizeof info->name, "failing (reference, fails in %s call %llu)",
           callback_names[b->fail_in], (unsigned long long)b->fail_call);
  return rc;
}

static int failing_prepare(void *vb, const pe_task *task, void **out, char *err, size_t err_size) {
  failing *b = vb;
  failing_run *r = calloc(1, sizeof *r);
  if (!r) return pe_plugin_error(err, err_size, PE_ENOMEM, "out of memory");
  r->b = b;
  int rc = injected(b, F_PREPARE, err, err_size);
  if (rc == 0) rc = ref_prepare(b->ref, task, &r->ref, err, err_size);
  if (rc) {
    free(r);
    return rc;
  }
  *out = r;
  return 0;
}

static int failing_execute(void *vr, double *device_ms, char *err, size_t err_size) {
  failing_run *r = vr;
  int rc = injected(r->b, F_EXECUTE, err, err_size);
  return rc ? rc : ref_execute(r->ref, device_ms, err, err_size);
}

static int failing_fetch(void *vr, float *out0, float *out1, char *err, size_t err_size) {
  failing_run *r = vr;
  int rc = injected(r->b, F_FETCH, err, err_size);
  return rc ? rc : ref_fetch(r->ref, out0, out1, err, err_size);
}

static void failing_release(void *vr) {
  failing_run *r = vr;
  ref_release(r->ref);
  free(r);
}

PE_REF_WRAPPER(failing, "failing", "test only: the reference backend with one injected failure")
