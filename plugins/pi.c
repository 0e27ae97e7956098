/* pi: linear position interpolation (Chen et al. 2023, "Extending Context
 * Window of Large Language Models via Positional Interpolation",
 * arXiv:2306.15595).
 *
 * Positions are divided by the factor s so that a context s times longer
 * than the pre-training one maps onto the angles seen in training:
 *
 *     inv_freq[j] = theta_j / s,   theta_j = base^(-2j/R),   a = 1.
 *
 * (Hugging Face: rope_type "linear".)  Every frequency is compressed alike,
 * so the highest ones lose resolution; ntk, yarn and llama3 refine this.
 */
#include "scheme_common.h"

enum { P_BASE, P_FACTOR, P_ROTARY_DIM, P_PAIRING, P_COUNT };

static const pe_param_decl *const pi_params[P_COUNT + 1] = {
    [P_BASE] = &scheme_param_base,
    [P_FACTOR] = &scheme_param_factor_required,
    [P_ROTARY_DIM] = &scheme_param_rotary_dim,
    [P_PAIRING] = &scheme_param_pairing,
    [P_COUNT] = NULL,
};

static int pi_compute(const pe_host *host, const pe_param_value *const *values,
                      const pe_shape *shape, pe_scheme_tables *out, char *err,
                      size_t err_size) {
  double base = values[P_BASE]->number;
  double s = values[P_FACTOR]->number;
  uint32_t r = 0;
  int rc;

  (void)host;
  rc = scheme_rotary_begin(values[P_ROTARY_DIM], values[P_PAIRING], shape, out,
                           &r, err, err_size);
  if (rc < 0) return rc;
  scheme_fill_theta(out->inv_freq, base, s, r);
  snprintf(out->note, sizeof out->note,
           "pi: positions / %.10g (base = %.10g, R = %u)", s, base,
           (unsigned)r);
  return 0;
}

static const pe_scheme_ops pi_ops = {
    .struct_size = sizeof(pe_scheme_ops),
    .params = pi_params,
    .compute = pi_compute,
};

static const pe_plugin_desc pi_desc = {
    .struct_size = sizeof(pe_plugin_desc),
    .abi_version = PE_ABI_VERSION,
    .kind = PE_PLUGIN_SCHEME,
    .name = "pi",
    .version = SCHEME_PLUGIN_VERSION,
    .summary = "linear position interpolation, theta_j / s (Chen et al. 2023)",
    .scheme = &pi_ops,
    .backend = NULL,
};

SCHEME_DEFINE_ENTRY(pi_desc)
