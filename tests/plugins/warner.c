/* Test-only scheme `warner`: no positional encoding, and a warning logged
 * from compute when `warning` is given, so that a test can count how often
 * a run prints it (pe-bench: once per cell).
 *
 *   [scheme]
 *   plugin = /path/to/tests/.libs/warner.so
 *   warning = some text      ; logged as "libpe: warning: warner: some text"
 */
#include <libpe/pe_plugin.h>

static const pe_param_decl p_warning = {.struct_size = sizeof(pe_param_decl),
                                        .type = PE_PARAM_STRING,
                                        .name = "warning",
                                        .doc = "logged as a warning each time compute runs"};
static const pe_param_decl *const params[] = {&p_warning, NULL};

static int compute(const pe_host *host, const pe_param_value *const *values, const pe_shape *shape,
                   pe_scheme_tables *out, char *err, size_t err_size) {
  (void)shape, (void)err, (void)err_size;
  if (values[0]->present) pe_plugin_log(host, PE_LOG_WARN, "warner", "%s", values[0]->text);
  out->kind = PE_KIND_NONE;
  snprintf(out->note, sizeof out->note, "warner: none");
  return 0;
}

static const pe_scheme_ops ops = {.struct_size = sizeof ops, .params = params, .compute = compute};
static const pe_plugin_desc desc = {.struct_size = sizeof desc, .abi_version = PE_ABI_VERSION,
                                    .kind = PE_PLUGIN_SCHEME, .name = "warner", .version = "1.0.0",
                                    .summary = "test: logs a warning from compute", .scheme = &ops};

PE_PLUGIN_EXPORT int pe_plugin_entry(uint32_t abi, const pe_host *host, const pe_plugin_desc **out,
                                     char *err, size_t err_size);
PE_PLUGIN_EXPORT int pe_plugin_entry(uint32_t abi, const pe_host *host, const pe_plugin_desc **out,
                                     char *err, size_t err_size) {
  (void)abi, (void)host, (void)err, (void)err_size;
  *out = &desc;
  return 0;
}
