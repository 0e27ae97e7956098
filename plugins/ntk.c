/* ntk: NTK-aware scaled RoPE (bloc97 2023, "NTK-Aware Scaled RoPE allows
 * LLaMA models to have extended (8k+) context size without any fine-tuning
 * and minimal perplexity degradation", reddit r/LocalLLaMA; analysed in the
 * YaRN paper, Peng et al. 2023, section 3.1).
 *
 * Instead of dividing every frequency by s (pi), change the base so that
 * the highest frequency is kept and the lowest one is divided by s:
 *
 *     base' = base * s^(R/(R-2)),   inv_freq[j] = base'^(-2j/R),   a = 1.
 *
 * At j = R/2-1 the exponent gives base'^(-(R-2)/R) = base^(-(R-2)/R) / s.
 */
#include "scheme_common.h"

enum { P_BASE, P_FACTOR, P_ROTARY_DIM, P_PAIRING, P_COUNT };

static const pe_param_decl *const ntk_params[P_COUNT + 1] = {
    [P_BASE] = &scheme_param_base,
    [P_FACTOR] = &scheme_param_factor_required,
    [P_ROTARY_DIM] = &scheme_param_rotary_dim,
    [P_PAIRING] = &scheme_param_pairing,
    [P_COUNT] = NULL,
};

static int ntk_compute(const pe_host *host, const pe_param_value *const *values,
                       const pe_shape *shape, pe_scheme_tables *out, char *err,
                       size_t err_size) {
  double base = values[P_BASE]->number;
  double s = values[P_FACTOR]->number;
  double base2;
  uint32_t r = 0;
  int rc;

  (void)host;
  rc = scheme_ntk_begin(values[P_ROTARY_DIM], values[P_PAIRING], shape, out, &r,
                        err, err_size);
  if (rc < 0) return rc;
  base2 = scheme_ntk_base(base, s, r);
  scheme_fill_theta(out->inv_freq, base2, 1.0, r);
  snprintf(out->note, sizeof out->note,
           "ntk: base' = %.10g (base = %.10g, s = %.10g, R = %u)", base2, base,
           s, (unsigned)r);
  return 0;
}

static const pe_scheme_ops ntk_ops = {
    .struct_size = sizeof(pe_scheme_ops),
    .params = ntk_params,
    .compute = ntk_compute,
};

static const pe_plugin_desc ntk_desc = {
    .struct_size = sizeof(pe_plugin_desc),
    .abi_version = PE_ABI_VERSION,
    .kind = PE_PLUGIN_SCHEME,
    .name = "ntk",
    .version = SCHEME_PLUGIN_VERSION,
    .summary = "NTK-aware RoPE, base' = base * s^(R/(R-2)) (bloc97 2023)",
    .scheme = &ntk_ops,
    .backend = NULL,
};

SCHEME_DEFINE_ENTRY(ntk_desc)
