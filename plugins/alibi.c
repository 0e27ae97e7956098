/* alibi: Attention with Linear Biases (Press, Smith and Lewis 2022, "Train
 * Short, Test Long", ICLR 2022, arXiv:2108.12409; as in BLOOM).
 *
 * No rotation and nothing added to Q or K: each query head h adds a
 * distance penalty to its logits (NUMERICS.md, "bias"),
 *
 *     logit(i, n) += -slope_h * (pq - pk),
 *
 * with a geometric sequence of slopes.  For n = q_heads a power of two,
 * slope_h = 2^(-max_bias (h+1) / n) (the paper's 2^(-8/n) ratio at the
 * default max_bias 8).  Otherwise take the n' = 2^floor(log2 n) slopes of
 * that rule, then the slopes at odd 1-based positions 1, 3, 5, ... of the
 * 2n' rule until there are n (the paper's reference code, get_slopes()).
 */
#include "scheme_common.h"

enum { P_MAX_BIAS, P_COUNT };

static const pe_param_decl alibi_max_bias = {
    .struct_size = sizeof(pe_param_decl),
    .type = PE_PARAM_NUMBER,
    .flags = PE_PARAM_HAS_MIN | PE_PARAM_MIN_OPEN,
    .name = "max_bias",
    .doc = "slope exponent: slope_h = 2^(-max_bias (h+1) / n) for n heads",
    .default_value = "8",
};

static const pe_param_decl *const alibi_params[P_COUNT + 1] = {
    [P_MAX_BIAS] = &alibi_max_bias,
    [P_COUNT] = NULL,
};

static int alibi_compute(const pe_host *host,
                         const pe_param_value *const *values,
                         const pe_shape *shape, pe_scheme_tables *out,
                         char *err, size_t err_size) {
  double max_bias = values[P_MAX_BIAS]->number;
  uint32_t n = shape->q_heads, np = 1;

  (void)host;
  if (n == 0)
    return pe_plugin_error(err, err_size, PE_ESCHEME,
                           "q_heads = 0: need at least one head");
  if (!out->slopes || out->slopes_capacity < n)
    return pe_plugin_error(err, err_size, PE_EINVAL,
                           "host gave room for %u slopes, need %u",
                           (unsigned)out->slopes_capacity, (unsigned)n);
  while (np * 2 <= n)
    np *= 2; /* n' = 2^floor(log2 n) */

  for (uint32_t h = 0; h < np; h++)
    out->slopes[h] = pow(2.0, -max_bias * (double)(h + 1) / (double)np);
  /* Remaining heads: odd positions k = 1, 3, 5, ... of the 2n' rule. */
  for (uint32_t h = np, k = 1; h < n; h++, k += 2)
    out->slopes[h] = pow(2.0, -max_bias * (double)k / (double)(2 * np));

  out->kind = PE_KIND_BIAS;
  out->attention_factor = 1.0;
  snprintf(out->note, sizeof out->note,
           "alibi: %u heads, max_bias = %.10g, slopes %.6g .. %.6g%s",
           (unsigned)n, max_bias, out->slopes[0], out->slopes[n - 1],
           np == n ? "" : " (not a power of two: interleaved 2n' slopes)");
  return 0;
}

static const pe_scheme_ops alibi_ops = {
    .struct_size = sizeof(pe_scheme_ops),
    .params = alibi_params,
    .compute = alibi_compute,
};

static const pe_plugin_desc alibi_desc = {
    .struct_size = sizeof(pe_plugin_desc),
    .abi_version = PE_ABI_VERSION,
    .kind = PE_PLUGIN_SCHEME,
    .name = "alibi",
    .version = SCHEME_PLUGIN_VERSION,
    .summary = "ALiBi: per-head linear distance bias on the logits (Press et "
               "al. 2022)",
    .scheme = &alibi_ops,
    .backend = NULL,
};

SCHEME_DEFINE_ENTRY(alibi_desc)
