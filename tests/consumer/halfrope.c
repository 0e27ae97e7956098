/* An out-of-tree scheme plugin built only with `pkg-config --cflags libpe`:
 * RoPE on the first half of the head dims with base 10^shift * 10000. */
#include <libpe/pe_plugin.h>
#include <math.h>

static const pe_param_decl p_shift = {.struct_size = sizeof(pe_param_decl), .type = PE_PARAM_INTEGER,
                                      .flags = PE_PARAM_HAS_MIN | PE_PARAM_HAS_MAX, .min = 0, .max = 4,
                                      .name = "shift", .doc = "base = 10^shift * 10000", .default_value = "0"};
static const pe_param_decl *const params[] = {&p_shift, NULL};

static int compute(const pe_host *host, const pe_param_value *const *v, const pe_shape *shape,
                   pe_scheme_tables *out, char *err, size_t err_size) {
  (void)host;
  uint32_t r = shape->head_dim / 2;
  if (r % 2) return pe_plugin_error(err, err_size, PE_ESCHEME, "head_dim/2 = %u must be even", r);
  double base = 10000.0 * pow(10.0, (double)v[0]->integer);
  out->kind = PE_KIND_ROTARY;
  out->rotary_dim = r;
  for (uint32_t j = 0; j < r / 2; j++) out->inv_freq[j] = pow(base, -2.0 * j / r);
  snprintf(out->note, sizeof out->note, "halfrope: base %g on %u dims", base, r);
  return 0;
}

static const pe_scheme_ops ops = {.struct_size = sizeof ops, .params = params, .compute = compute};
static const pe_plugin_desc desc = {.struct_size = sizeof desc, .abi_version = PE_ABI_VERSION,
                                    .kind = PE_PLUGIN_SCHEME, .name = "halfrope", .version = "0.1",
                                    .summary = "out-of-tree test scheme", .scheme = &ops};

PE_PLUGIN_EXPORT int pe_plugin_entry(uint32_t abi, const pe_host *host, const pe_plugin_desc **out,
                                     char *err, size_t err_size);
PE_PLUGIN_EXPORT int pe_plugin_entry(uint32_t abi, const pe_host *host, const pe_plugin_desc **out,
                                     char *err, size_t err_size) {
  (void)abi, (void)host, (void)err, (void)err_size;
  *out = &desc;
  return 0;
}
