/* sinusoidal: the fixed additive encoding of the original Transformer
 * (Vaswani et al. 2017, "Attention Is All You Need", arXiv:1706.03762,
 * section 3.5).
 *
 *     pe(p)[2j]   = sin(p f_j),   pe(p)[2j+1] = cos(p f_j),
 *     f_j = base^(-2j/D),   j = 0 .. D/2-1,
 *
 * added to Q and K at their positions (V untouched; NUMERICS.md,
 * "additive").  The paper adds it to the token embedding once; libpe adds
 * it to the attention inputs so every scheme sees the same workload.  The
 * plugin hands the host the D/2 frequencies f_j in inv_freq; the host
 * builds the sin/cos rows in float64.
 */
#include "scheme_common.h"

enum { P_BASE, P_COUNT };

static const pe_param_decl sinusoidal_base = {
    .struct_size = sizeof(pe_param_decl),
    .type = PE_PARAM_NUMBER,
    .flags = PE_PARAM_HAS_MIN | PE_PARAM_MIN_OPEN,
    .name = "base",
    .doc = "wavelength base: f_j = base^(-2j/D)",
    .default_value = "10000",
    .min = 1.0,
};

static const pe_param_decl *const sinusoidal_params[P_COUNT + 1] = {
    [P_BASE] = &sinusoidal_base,
    [P_COUNT] = NULL,
};

static int sinusoidal_compute(const pe_host *host,
                              const pe_param_value *const *values,
                              const pe_shape *shape, pe_scheme_tables *out,
                              char *err, size_t err_size) {
  double base = values[P_BASE]->number;
  uint32_t d = shape->head_dim;

  (void)host;
  /* sin and cos alternate, so every dim needs its partner. */
  if (d == 0 || d % 2 != 0)
    return pe_plugin_error(err, err_size, PE_ESCHEME,
                           "head_dim = %u must be even (dims 2j "
                           "and 2j+1 hold sin and cos of one frequency)",
                           (unsigned)d);
  if (!out->inv_freq || out->inv_freq_capacity < d / 2)
    return pe_plugin_error(err, err_size, PE_EINVAL,
                           "host gave room for %u frequencies, "
                           "need %u",
                           (unsigned)out->inv_freq_capacity, (unsigned)(d / 2));
  out->kind = PE_KIND_ADDITIVE;
  out->attention_factor = 1.0;
  /* Same expression as theta_j with R = D. */
  scheme_fill_theta(out->inv_freq, base, 1.0, d);
  snprintf(out->note, sizeof out->note,
           "sinusoidal: base = %.10g, D = %u (%u frequencies), added to Q "
           "and K",
           base, (unsigned)d, (unsigned)(d / 2));
  return 0;
}

static const pe_scheme_ops sinusoidal_ops = {
    .struct_size = sizeof(pe_scheme_ops),
    .params = sinusoidal_params,
    .compute = sinusoidal_compute,
};

static const pe_plugin_desc sinusoidal_desc = {
    .struct_size = sizeof(pe_plugin_desc),
    .abi_version = PE_ABI_VERSION,
    .kind = PE_PLUGIN_SCHEME,
    .name = "sinusoidal",
    .version = SCHEME_PLUGIN_VERSION,
    .summary = "fixed sin/cos encoding added to Q and K (Vaswani et al. 2017)",
    .scheme = &sinusoidal_ops,
    .backend = NULL,
};

SCHEME_DEFINE_ENTRY(sinusoidal_desc)
