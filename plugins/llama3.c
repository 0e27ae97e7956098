/* llama3: the frequency-dependent interpolation of Llama 3.1 (Meta 2024,
 * "The Llama 3 Herd of Models", arXiv:2407.21783; reference code
 * apply_scaling() in meta-llama/llama-models; Hugging Face rope_type
 * "llama3").
 *
 * Like YaRN's NTK-by-parts, but the bands are set by wavelength
 * w_j = 2 pi / theta_j against the pre-training length Lo (NUMERICS.md):
 *
 *     w_j < Lo / high_freq_factor:  inv_freq[j] = theta_j        (kept)
 *     w_j > Lo / low_freq_factor:   inv_freq[j] = theta_j / s    (pi)
 *     otherwise, t = (Lo / w_j - low_freq_factor)
 *                    / (high_freq_factor - low_freq_factor),
 *                  inv_freq[j] = (1 - t) theta_j / s + t theta_j
 *
 * and a = 1.  Defaults are Llama 3.1's published values (factor 8, low 1,
 * high 4, Lo 8192); its base 500000 must be given like any other base.
 */
#include "scheme_common.h"

enum {
  P_BASE,
  P_FACTOR,
  P_LOW,
  P_HIGH,
  P_LO,
  P_ROTARY_DIM,
  P_PAIRING,
  P_COUNT
};

static const pe_param_decl llama3_factor = {
    .struct_size = sizeof(pe_param_decl),
    .type = PE_PARAM_NUMBER,
    .flags = PE_PARAM_HAS_MIN,
    .name = "factor",
    .doc = "context extension factor s applied to the low frequencies (>= 1)",
    .default_value = "8",
    .min = 1.0,
};

static const pe_param_decl llama3_low = {
    .struct_size = sizeof(pe_param_decl),
    .type = PE_PARAM_NUMBER,
    .flags = PE_PARAM_HAS_MIN | PE_PARAM_MIN_OPEN,
    .name = "low_freq_factor",
    .doc = "wavelengths above Lo/low_freq_factor are interpolated (theta_j/s)",
    .default_value = "1",
};

static const pe_param_decl llama3_high = {
    .struct_size = sizeof(pe_param_decl),
    .type = PE_PARAM_NUMBER,
    .flags = PE_PARAM_HAS_MIN | PE_PARAM_MIN_OPEN,
    .name = "high_freq_factor",
    .doc = "wavelengths below Lo/high_freq_factor are kept (theta_j)",
    .default_value = "4",
};

static const pe_param_decl llama3_lo = {
    .struct_size = sizeof(pe_param_decl),
    .type = PE_PARAM_INTEGER,
    .flags = PE_PARAM_HAS_MIN,
    .name = "original_max_position_embeddings",
    .doc = "pre-training context length Lo",
    .default_value = "8192",
    .min = 1.0,
};

static const pe_param_decl *const llama3_params[P_COUNT + 1] = {
    [P_BASE] = &scheme_param_base,
    [P_FACTOR] = &llama3_factor,
    [P_LOW] = &llama3_low,
    [P_HIGH] = &llama3_high,
    [P_LO] = &llama3_lo,
    [P_ROTARY_DIM] = &scheme_param_rotary_dim,
    [P_PAIRING] = &scheme_param_pairing,
    [P_COUNT] = NULL,
};

static int llama3_compute(const pe_host *host,
                          const pe_param_value *const *values,
                          const pe_shape *shape, pe_scheme_tables *out,
                          char *err, size_t err_size) {
  double base = values[P_BASE]->number;
  double s = values[P_FACTOR]->number;
  double low = values[P_LOW]->number;
  double high = values[P_HIGH]->number;
  double lo_ctx = (double)values[P_LO]->integer;
  double low_freq_wavelen, high_freq_wavelen;
  uint32_t r = 0, kept = 0, scaled = 0;
  int rc;

  (void)host;
  rc = scheme_rotary_begin(values[P_ROTARY_DIM], values[P_PAIRING], shape, out,
                           &r, err, err_size);
  if (rc < 0) return rc;
  /* The blend divides by high - low, and the bands must not overlap. */
  if (high <= low)
    return pe_plugin_error(err, err_size, PE_ESCHEME,
                           "high_freq_factor = %g must be greater "
                           "than low_freq_factor = %g",
                           high, low);

  low_freq_wavelen = lo_ctx / low;
  high_freq_wavelen = lo_ctx / high;
  for (uint32_t j = 0; j < r / 2; j++) {
    double theta = scheme_theta(base, j, r);
    double w = 2.0 * M_PI / theta;
    if (w < high_freq_wavelen) {
      out->inv_freq[j] = theta;
      kept++;
    } else if (w > low_freq_wavelen) {
      out->inv_freq[j] = theta / s;
      scaled++;
    } else {
      double t = (lo_ctx / w - low) / (high - low);
      out->inv_freq[j] = (1.0 - t) * theta / s + t * theta;
    }
  }
  snprintf(out->note, sizeof out->note,
           "llama3: s = %.10g, wavelength bands %.10g / %.10g: %u pairs kept, "
           "%u blended, %u divided by s",
           s, high_freq_wavelen, low_freq_wavelen, (unsigned)kept,
           (unsigned)(r / 2 - kept - scaled), (unsigned)scaled);
  return 0;
}

static const pe_scheme_ops llama3_ops = {
    .struct_size = sizeof(pe_scheme_ops),
    .params = llama3_params,
    .compute = llama3_compute,
};

static const pe_plugin_desc llama3_desc = {
    .struct_size = sizeof(pe_plugin_desc),
    .abi_version = PE_ABI_VERSION,
    .kind = PE_PLUGIN_SCHEME,
    .name = "llama3",
    .version = SCHEME_PLUGIN_VERSION,
    .summary = "Llama 3.1 wavelength-banded interpolation (Meta 2024)",
    .scheme = &llama3_ops,
    .backend = NULL,
};

SCHEME_DEFINE_ENTRY(llama3_desc)
