/* Test-only scheme `hostile_scheme`: RoPE (base 10000, every dimension
 * rotated), unless `misbehave` names a way to break the scheme contract,
 * so the host's checks of what compute() returns can be tested one by one.
 *
 *   [scheme]
 *   plugin = /path/to/tests/.libs/hostile_scheme.so
 *   misbehave = return_999   ; see the choices below; none: plain RoPE
 */
#include <libpe/pe_plugin.h>

#include <math.h>

/* The choices of `misbehave`, in the order of the enum below. */
#define HOSTILE_CHOICES                                                               \
  "none|return_999|return_5|no_kind|inv_freq_nan|slope_nan|slope_inf|slope_float_inf|" \
  "factor_float_inf|factor_float_zero|inv_freq_overflow|additive_overflow"
enum {
  H_NONE,            /* plain RoPE */
  H_RETURN_999,      /* fails with a code outside the table */
  H_RETURN_POSITIVE, /* fails with a positive code */
  H_NO_KIND,         /* RoPE's tables, but out->kind never set */
  H_INV_FREQ_NAN,    /* inv_freq[3] = NaN */
  H_SLOPE_NAN,       /* bias, every slope NaN */
  H_SLOPE_INF,       /* bias, every slope +inf */
  H_SLOPE_FLOAT_INF, /* bias, slope 1e300: finite, but inf in float32 */
  H_FACTOR_FLOAT_INF,  /* attention_factor 1e300: inf in float32 */
  H_FACTOR_FLOAT_ZERO, /* attention_factor 1e-300: 0 in float32 */
  H_INV_FREQ_OVERFLOW, /* inv_freq[0] = 1e308: position 2 * 1e308 overflows */
  H_ADDITIVE_OVERFLOW, /* the same for an additive scheme */
};

static const pe_param_decl p_misbehave = {
    .struct_size = sizeof(pe_param_decl),
    .type = PE_PARAM_CHOICE,
    .name = "misbehave",
    .doc = "how compute() breaks the contract",
    .default_value = "none",
    .choices = HOSTILE_CHOICES,
};
static const pe_param_decl *const params[] = {&p_misbehave, NULL};

static void rope(const pe_shape *shape, pe_scheme_tables *out) {
  out->rotary_dim = shape->head_dim;
  out->attention_factor = 1.0;
  for (uint32_t j = 0; j < shape->head_dim / 2; j++)
    out->inv_freq[j] = pow(10000.0, -2.0 * j / shape->head_dim);
}

static int compute(const pe_host *host, const pe_param_value *const *values,
                   const pe_shape *shape, pe_scheme_tables *out, char *err, size_t err_size) {
  (void)host;
  if (values[0]->integer != H_NO_KIND) out->kind = PE_KIND_ROTARY;
  rope(shape, out);
  switch (values[0]->integer) {
  case H_RETURN_999:
    return pe_plugin_error(err, err_size, -999, "hostile: -999 on purpose");
  case H_RETURN_POSITIVE:
    return 5;
  case H_INV_FREQ_NAN:
    out->inv_freq[3] = NAN;
    return 0;
  case H_SLOPE_NAN:
  case H_SLOPE_INF:
  case H_SLOPE_FLOAT_INF:
    out->kind = PE_KIND_BIAS;
    for (uint32_t h = 0; h < shape->q_heads; h++)
      out->slopes[h] = values[0]->integer == H_SLOPE_NAN ? NAN
                       : values[0]->integer == H_SLOPE_INF ? INFINITY : 1e300;
    return 0;
  case H_FACTOR_FLOAT_INF:
    out->attention_factor = 1e300;
    return 0;
  case H_FACTOR_FLOAT_ZERO:
    out->attention_factor = 1e-300;
    return 0;
  case H_ADDITIVE_OVERFLOW:
    out->kind = PE_KIND_ADDITIVE;
    /* fall through */
  case H_INV_FREQ_OVERFLOW:
    out->inv_freq[0] = 1e308;
    return 0;
  default:
    return 0;
  }
}

static const pe_scheme_ops ops = {
    .struct_size = sizeof(pe_scheme_ops), .params = params, .compute = compute};

static const pe_plugin_desc descriptor = {
    .struct_size = sizeof(pe_plugin_desc),
    .abi_version = PE_ABI_VERSION,
    .kind = PE_PLUGIN_SCHEME,
    .name = "hostile_scheme",
    .version = "0",
    .summary = "test only: RoPE, or a scheme breaking the contract on request",
    .scheme = &ops,
};

PE_PLUGIN_EXPORT int pe_plugin_entry(uint32_t host_abi, const pe_host *host,
                                     const pe_plugin_desc **desc, char *err, size_t err_size);
PE_PLUGIN_EXPORT int pe_plugin_entry(uint32_t host_abi, const pe_host *host,
                                     const pe_plugin_desc **desc, char *err, size_t err_size) {
  (void)host, (void)host_abi, (void)err, (void)err_size;
  *desc = &descriptor;
  return 0;
}
