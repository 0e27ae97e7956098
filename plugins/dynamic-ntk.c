/* dynamic-ntk: dynamically scaled NTK-aware RoPE (emozilla 2023,
 * "Dynamically Scaled RoPE further increases performance of long context
 * LLaMA with zero fine-tuning", r/LocalLLaMA; Hugging Face rope_type
 * "dynamic"; YaRN paper, Peng et al. 2023, section 3.3).
 *
 * Length-dependent: the table depends on the context length L the host
 * passes (L = position_offset + seq_len, NUMERICS.md).  While L <= Lo the
 * scheme is plain RoPE; beyond, the NTK base change (ntk.c) is applied with
 * a factor that grows with L:
 *
 *     k = s*L/Lo - (s-1),   base' = base * k^(R/(R-2)),   a = 1,
 *
 * so k = 1 at L = Lo and k = s at L = s*Lo.  The note records the branch
 * and base' used at this L.
 */
#include "scheme_common.h"

enum { P_BASE, P_FACTOR, P_LO, P_ROTARY_DIM, P_PAIRING, P_COUNT };

static const pe_param_decl *const dynntk_params[P_COUNT + 1] = {
    [P_BASE] = &scheme_param_base,
    [P_FACTOR] = &scheme_param_factor_required,
    [P_LO] = &scheme_param_lo_required,
    [P_ROTARY_DIM] = &scheme_param_rotary_dim,
    [P_PAIRING] = &scheme_param_pairing,
    [P_COUNT] = NULL,
};

static int dynntk_compute(const pe_host *host,
                          const pe_param_value *const *values,
                          const pe_shape *shape, pe_scheme_tables *out,
                          char *err, size_t err_size) {
  double base = values[P_BASE]->number;
  double s = values[P_FACTOR]->number;
  int64_t lo = values[P_LO]->integer;
  uint64_t l = shape->context_len;
  uint32_t r = 0;
  int rc;

  (void)host;
  rc = scheme_ntk_begin(values[P_ROTARY_DIM], values[P_PAIRING], shape, out, &r,
                        err, err_size);
  if (rc < 0) return rc;

  if (l <= (uint64_t)lo) {
    /* Short branch: exactly rope's table. */
    scheme_fill_theta(out->inv_freq, base, 1.0, r);
    snprintf(out->note, sizeof out->note,
             "dynamic-ntk: L=%llu <= Lo=%lld, base = %.10g (plain RoPE)",
             (unsigned long long)l, (long long)lo, base);
  } else {
    double k = s * (double)l / (double)lo - (s - 1.0);
    double base2 = scheme_ntk_base(base, k, r);
    scheme_fill_theta(out->inv_freq, base2, 1.0, r);
    snprintf(out->note, sizeof out->note,
             "dynamic-ntk: L=%llu > Lo=%lld, k = %.10g, base' = %.10g",
             (unsigned long long)l, (long long)lo, k, base2);
  }
  return 0;
}

static const pe_scheme_ops dynntk_ops = {
    .struct_size = sizeof(pe_scheme_ops),
    .params = dynntk_params,
    .compute = dynntk_compute,
};

static const pe_plugin_desc dynntk_desc = {
    .struct_size = sizeof(pe_plugin_desc),
    .abi_version = PE_ABI_VERSION,
    .kind = PE_PLUGIN_SCHEME,
    .name = "dynamic-ntk",
    .version = SCHEME_PLUGIN_VERSION,
    .summary =
        "NTK-aware RoPE whose base grows with the context length L past Lo "
        "(emozilla 2023)",
    .scheme = &dynntk_ops,
    .backend = NULL,
};

SCHEME_DEFINE_ENTRY(dynntk_desc)
