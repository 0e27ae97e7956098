/* Deliberately broken test-only plugins, one per BROKEN_* define, to check
 * that the loader refuses each with its own message and never crashes. */
#include <libpe/pe_plugin.h>

#include <stddef.h>

static int noop_open(const pe_host *h, const pe_param_value *const *v, void **b, char *e, size_t n) {
  (void)h, (void)v, (void)e, (void)n;
  static int state;
  *b = &state;
  return 0;
}
static void noop_close(void *b) { (void)b; }
static int noop_describe(void *b, pe_device_info *i) { (void)b, (void)i; return 0; }
static int noop_prepare(void *b, const pe_task *t, void **r, char *e, size_t n) {
  (void)t, (void)e, (void)n;
  *r = b;
  return 0;
}
__attribute__((unused)) static int noop_execute(void *r, double *ms, char *e, size_t n) {
  (void)r, (void)e, (void)n;
  *ms = -1;
  return 0;
}
static int noop_fetch(void *r, float *a, float *b, char *e, size_t n) {
  (void)r, (void)a, (void)b, (void)e, (void)n;
  return 0;
}
static void noop_release(void *r) { (void)r; }

#if defined(BROKEN_DEVICES)
#include <string.h>
/* Devices a careless module emits: strings filling their arrays without a
 * NUL, a struct_size below ABI 1's (its memory full-sized, the rest not
 * NUL), then one well-formed device. */
static int hostile_enumerate(const pe_host *h, pe_device_emit_fn emit, void *user, char *e, size_t n) {
  (void)h, (void)e, (void)n;
  pe_device_info full = {.struct_size = sizeof full, .type = PE_DEVICE_CPU};
  memset(full.name, 'N', sizeof full.name);
  memset(full.driver, 'D', sizeof full.driver);
  memset(full.details, 'X', sizeof full.details);
  emit(user, &full);
  pe_device_info small;
  memset(&small, 'Z', sizeof small);
  small.struct_size = 8;
  small.type = PE_DEVICE_CPU;
  emit(user, &small);
  pe_device_info good = {.struct_size = sizeof good, .type = PE_DEVICE_GPU, .name = "dev0",
                         .driver = "drv", .details = "fine"};
  emit(user, &good);
  return 0;
}
#endif

#if defined(BROKEN_SHORT_PARAM)
/* A declaration cut after `name`: doc, default, bounds, choices missing. */
static const pe_param_decl bad_param = {offsetof(pe_param_decl, doc), PE_PARAM_NUMBER, 0, "cut",
                                        "cut short", NULL, 0, 0, NULL};
#else
static const pe_param_decl bad_param = {sizeof(pe_param_decl), 99, 0, "bogus", "type 99", NULL, 0, 0, NULL};
#endif
__attribute__((unused)) static const pe_param_decl *const bad_params[] = {&bad_param, NULL};

/* Declarations the host must refuse at load: a good one, then a bad one. */
#if defined(BROKEN_PARAM_NAME) || defined(BROKEN_PARAM_RESERVED) || defined(BROKEN_PARAM_DUP) || \
    defined(BROKEN_PARAM_RANGE) || defined(BROKEN_PARAM_CHOICES) || defined(BROKEN_PARAM_DEFAULT) || \
    defined(BROKEN_PARAM_DEFAULT_RANGE)
#define BROKEN_DECL_VARIANT 1
#else
#define BROKEN_DECL_VARIANT 0
#endif
#if BROKEN_DECL_VARIANT
static const pe_param_decl good_decl = {.struct_size = sizeof(pe_param_decl), .type = PE_PARAM_NUMBER,
                                        .name = "a", .doc = "fine", .default_value = "1"};
static const pe_param_decl bad_decl = {
    .struct_size = sizeof(pe_param_decl),
#if defined(BROKEN_PARAM_NAME)
    .type = PE_PARAM_NUMBER, .name = "a b=c", /* could never be written as a key */
#elif defined(BROKEN_PARAM_RESERVED)
    .type = PE_PARAM_STRING, .name = "plugin",
#elif defined(BROKEN_PARAM_DUP)
    .type = PE_PARAM_NUMBER, .name = "a",
#elif defined(BROKEN_PARAM_RANGE)
    .type = PE_PARAM_NUMBER, .name = "r", .flags = PE_PARAM_HAS_MIN | PE_PARAM_HAS_MAX,
    .min = 5, .max = 1,
#elif defined(BROKEN_PARAM_CHOICES)
    .type = PE_PARAM_CHOICE, .name = "c", .choices = "",
#elif defined(BROKEN_PARAM_DEFAULT)
    .type = PE_PARAM_NUMBER, .name = "d", .default_value = "banana",
#else /* BROKEN_PARAM_DEFAULT_RANGE */
    .type = PE_PARAM_INTEGER, .name = "d", .flags = PE_PARAM_HAS_MIN | PE_PARAM_HAS_MAX,
    .min = 1, .max = 8, .default_value = "9",
#endif
    .doc = "broken on purpose"};
static const pe_param_decl *const bad_decls[] = {&good_decl, &bad_decl, NULL};
#endif

static const pe_backend_ops ops = {
#if defined(BROKEN_OLD_OPS)
    /* Cut before `enumerate`, ABI 1's last (optional) member: refused. */
    .struct_size = offsetof(pe_backend_ops, enumerate),
#else
    .struct_size = sizeof(pe_backend_ops),
#endif
#if defined(BROKEN_BAD_PARAM) || defined(BROKEN_SHORT_PARAM)
    .options = bad_params,
#elif BROKEN_DECL_VARIANT
    .options = bad_decls,
#else
    .options = bad_params + 1,
#endif
    .open = noop_open,
    .close = noop_close,
    .describe = noop_describe,
    .prepare = noop_prepare,
#if !defined(BROKEN_MISSING_CALLBACK)
    .execute = noop_execute,
#endif
    .fetch = noop_fetch,
    .release = noop_release,
#if defined(BROKEN_DEVICES)
    .enumerate = hostile_enumerate,
#endif
};

__attribute__((unused)) static const pe_plugin_desc desc = {
#if defined(BROKEN_SMALL_STRUCT)
    .struct_size = 8,
#elif defined(BROKEN_SHORT_DESC)
    .struct_size = offsetof(pe_plugin_desc, scheme), /* cut after summary */
#else
    .struct_size = sizeof(pe_plugin_desc),
#endif
#if defined(BROKEN_ABI_FUTURE)
    .abi_version = 99,
#else
    .abi_version = PE_ABI_VERSION,
#endif
    .kind = PE_PLUGIN_BACKEND,
    .name = PE_TEST_PLUGIN_NAME,
    .version = "0",
    .summary = "deliberately broken test plugin",
    .backend = &ops,
};

#if defined(BROKEN_NO_ENTRY)
#define ENTRY not_the_entry
#else
#define ENTRY pe_plugin_entry
#endif

PE_PLUGIN_EXPORT int ENTRY(uint32_t host_abi, const pe_host *host, const pe_plugin_desc **out,
                           char *err, size_t err_size);
PE_PLUGIN_EXPORT int ENTRY(uint32_t host_abi, const pe_host *host, const pe_plugin_desc **out,
                           char *err, size_t err_size) {
  (void)host_abi, (void)host;
#if defined(BROKEN_ENTRY_ERROR)
  (void)out;
  return pe_plugin_error(err, err_size, PE_EUNSUPPORTED, "this module refuses to load on purpose");
#elif defined(BROKEN_ENTRY_RAW)
  (void)out, (void)err, (void)err_size;
  return -12345; /* no libpe error code */
#else
  (void)err, (void)err_size;
  *out = &desc;
  return 0;
#endif
}
