/* yarn: YaRN, "Yet another RoPE extensioN" (Peng, Quesnelle, Fan and
 * Shippole 2023, "YaRN: Efficient Context Window Extension of Large
 * Language Models", arXiv:2309.00071; Hugging Face rope_type "yarn").
 *
 * "NTK-by-parts" interpolation plus an attention temperature.  A pair
 * whose wavelength is short compared with the pre-training length Lo
 * (many rotations within Lo) keeps its frequency; a pair whose wavelength
 * is long (less than one rotation within Lo) is interpolated like pi; a
 * linear ramp blends the two in between (NUMERICS.md, "YaRN"):
 *
 *     c(r)   = R ln(Lo / (2 pi r)) / (2 ln base)   (pair index completing
 *                                                    r rotations within Lo)
 *     lo     = c(beta_fast),  hi = c(beta_slow)     (floor/ceil if truncate)
 *     lo     = max(lo, 0),    hi = min(hi, R-1),    hi += 0.001 if lo == hi
 *     ramp_j = clamp((j - lo) / (hi - lo), 0, 1),   g_j = 1 - ramp_j
 *     inv_freq[j] = (theta_j / s)(1 - g_j) + theta_j g_j
 *
 * The attention factor (the paper's sqrt(1/t), section 3.4) is
 *     the attention_factor parameter if given;
 *     else m(s, mscale) / m(s, mscale_all_dim) if both are given, non-zero
 *          (DeepSeek-V2/V3 style);
 *     else m(s, 1),  with m(s, k) = 1 if s <= 1 else 0.1 k ln s + 1.
 */
#include "scheme_common.h"

enum {
  P_BASE,
  P_FACTOR,
  P_LO,
  P_BETA_FAST,
  P_BETA_SLOW,
  P_MSCALE,
  P_MSCALE_ALL_DIM,
  P_ATTENTION_FACTOR,
  P_TRUNCATE,
  P_ROTARY_DIM,
  P_PAIRING,
  P_COUNT
};

static const pe_param_decl yarn_beta_fast = {
    .struct_size = sizeof(pe_param_decl),
    .type = PE_PARAM_NUMBER,
    .flags = PE_PARAM_HAS_MIN | PE_PARAM_MIN_OPEN,
    .name = "beta_fast",
    .doc =
        "ramp start: pairs with more than beta_fast rotations within Lo keep "
        "theta_j",
    .default_value = "32",
};

static const pe_param_decl yarn_beta_slow = {
    .struct_size = sizeof(pe_param_decl),
    .type = PE_PARAM_NUMBER,
    .flags = PE_PARAM_HAS_MIN | PE_PARAM_MIN_OPEN,
    .name = "beta_slow",
    .doc = "ramp end: pairs with fewer than beta_slow rotations within Lo get "
           "theta_j/s",
    .default_value = "1",
};

static const pe_param_decl yarn_mscale = {
    .struct_size = sizeof(pe_param_decl),
    .type = PE_PARAM_NUMBER,
    .flags = PE_PARAM_HAS_MIN,
    .name = "mscale",
    .doc = "k of the numerator m(s,k) of the attention factor (with "
           "mscale_all_dim)",
};

static const pe_param_decl yarn_mscale_all_dim = {
    .struct_size = sizeof(pe_param_decl),
    .type = PE_PARAM_NUMBER,
    .flags = PE_PARAM_HAS_MIN,
    .name = "mscale_all_dim",
    .doc = "k of the denominator m(s,k) of the attention factor (with mscale)",
};

static const pe_param_decl yarn_truncate = {
    .struct_size = sizeof(pe_param_decl),
    .type = PE_PARAM_BOOL,
    .name = "truncate",
    .doc = "round the ramp bounds outwards to whole pair indices (floor/ceil)",
    .default_value = "true",
};

static const pe_param_decl *const yarn_params[P_COUNT + 1] = {
    [P_BASE] = &scheme_param_base,
    [P_FACTOR] = &scheme_param_factor_required,
    [P_LO] = &scheme_param_lo_required,
    [P_BETA_FAST] = &yarn_beta_fast,
    [P_BETA_SLOW] = &yarn_beta_slow,
    [P_MSCALE] = &yarn_mscale,
    [P_MSCALE_ALL_DIM] = &yarn_mscale_all_dim,
    [P_ATTENTION_FACTOR] = &scheme_param_attention_factor,
    [P_TRUNCATE] = &yarn_truncate,
    [P_ROTARY_DIM] = &scheme_param_rotary_dim,
    [P_PAIRING] = &scheme_param_pairing,
    [P_COUNT] = NULL,
};

/* Pair index that completes `rotations` full turns within Lo positions:
 * solve Lo * theta_c / (2 pi) = rotations for c (continuous). */
static double yarn_correction_dim(double rotations, uint32_t r, double lo,
                                  double base) {
  return (double)r * log(lo / (2.0 * M_PI * rotations)) / (2.0 * log(base));
}

/* m(s, k): the attention temperature of YaRN's section 3.4. */
static double yarn_mscale_fn(double s, double k) {
  return s <= 1.0 ? 1.0 : 0.1 * k * log(s) + 1.0;
}

static int yarn_compute(const pe_host *host,
                        const pe_param_value *const *values,
                        const pe_shape *shape, pe_scheme_tables *out, char *err,
                        size_t err_size) {
  double base = values[P_BASE]->number;
  double s = values[P_FACTOR]->number;
  double lo_ctx = (double)values[P_LO]->integer;
  double beta_fast = values[P_BETA_FAST]->number;
  double beta_slow = values[P_BETA_SLOW]->number;
  const pe_param_value *ms = values[P_MSCALE];
  const pe_param_value *ms_all = values[P_MSCALE_ALL_DIM];
  const pe_param_value *af = values[P_ATTENTION_FACTOR];
  int truncate = values[P_TRUNCATE]->integer != 0;
  double lo, hi, a;
  const char *a_rule;
  uint32_t r = 0;
  int rc;

  rc = scheme_rotary_begin(values[P_ROTARY_DIM], values[P_PAIRING], shape, out,
                           &r, err, err_size);
  if (rc < 0) return rc;

  /* The reference implementations (Hugging Face's rope validation) only
   * warn here; the ramp then runs backwards.  Do the same. */
  if (beta_fast < beta_slow)
    pe_plugin_log(host, PE_LOG_WARN, "yarn",
                  "beta_fast = %g < beta_slow = %g: expected beta_fast >= "
                  "beta_slow; continuing with the ramp reversed",
                  beta_fast, beta_slow);

  /* Ramp bounds. */
  lo = yarn_correction_dim(beta_fast, r, lo_ctx, base);
  hi = yarn_correction_dim(beta_slow, r, lo_ctx, base);
  if (truncate) {
    lo = floor(lo);
    hi = ceil(hi);
  }
  lo = fmax(lo, 0.0);
  hi = fmin(hi, (double)(r - 1));
  if (lo == hi) hi += 0.001; /* avoid dividing by zero in the ramp */

  for (uint32_t j = 0; j < r / 2; j++) {
    double theta = scheme_theta(base, j, r);
    double ramp = ((double)j - lo) / (hi - lo);
    double g; /* extrapolation weight: 1 keeps theta_j, 0 gives theta_j/s */
    ramp = ramp < 0.0 ? 0.0 : ramp > 1.0 ? 1.0 : ramp;
    g = 1.0 - ramp;
    out->inv_freq[j] = (theta / s) * (1.0 - g) + theta * g;
  }

  /* Attention factor: first rule that applies. */
  if (af->present) {
    a = af->number;
    a_rule = "given";
  } else if (ms->present && ms_all->present && ms->number != 0.0 &&
             ms_all->number != 0.0) {
    a = yarn_mscale_fn(s, ms->number) / yarn_mscale_fn(s, ms_all->number);
    a_rule = "m(s,mscale)/m(s,mscale_all_dim)";
  } else {
    if (ms->present != ms_all->present)
      pe_plugin_log(host, PE_LOG_WARN, "yarn",
                    "%s given without %s: it is ignored and the attention "
                    "factor is m(s,1); give both to use their ratio",
                    ms->present ? "mscale" : "mscale_all_dim",
                    ms->present ? "mscale_all_dim" : "mscale");
    a = yarn_mscale_fn(s, 1.0);
    a_rule = "m(s,1)";
  }
  out->attention_factor = a;
  snprintf(out->note, sizeof out->note,
           "yarn: s = %.6g, Lo = %lld, ramp lo = %.6g, hi = %.6g (pairs < "
           "lo keep theta, > hi get theta/s), attention_factor = %.10g (%s)",
           s, (long long)values[P_LO]->integer, lo, hi, a, a_rule);
  return 0;
}

static const pe_scheme_ops yarn_ops = {
    .struct_size = sizeof(pe_scheme_ops),
    .params = yarn_params,
    .compute = yarn_compute,
};

static const pe_plugin_desc yarn_desc = {
    .struct_size = sizeof(pe_plugin_desc),
    .abi_version = PE_ABI_VERSION,
    .kind = PE_PLUGIN_SCHEME,
    .name = "yarn",
    .version = SCHEME_PLUGIN_VERSION,
    .summary =
        "YaRN: NTK-by-parts interpolation with attention temperature (Peng et "
        "al. 2023)",
    .scheme = &yarn_ops,
    .backend = NULL,
};

SCHEME_DEFINE_ENTRY(yarn_desc)
