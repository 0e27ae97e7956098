/* rope: rotary position embedding (RoFormer, Su et al. 2021,
 * arXiv:2104.09864).
 *
 * This module is the template for new RoPE-family schemes: copy it, rename,
 * and change compute().  What a scheme plugin does, and nothing more:
 *
 *   1. declare its parameters (name, type, range, default, one-line doc):
 *      the host parses the [scheme] section of a config against this list,
 *      rejects unknown keys, checks types and declared ranges and applies
 *      defaults, so compute() never sees a malformed value;
 *   2. in compute(), check what depends on several values or on the shape
 *      (here: rotary_dim against head_dim), then fill float64 tables.
 *
 * The math (NUMERICS.md, "rotary"): pair j of a query/key vector at
 * position p is rotated by the angle p * inv_freq[j] with
 *
 *     inv_freq[j] = theta_j = base^(-2j/R),   j = 0 .. R/2-1,
 *
 * R = rotary_dim (default head_dim).  The dot product of a rotated query at
 * p and a rotated key at n then depends on p - n only: the relative
 * property that makes RoPE a relative encoding.  Backends never see the
 * name "rope": the core turns inv_freq into cos/sin tables in float64, and
 * the rotation is the same for every rotary scheme.
 */
#include "scheme_common.h"

/* Parameter indices: the host passes values[i] for params[i], so the two
 * must agree; designated initialisers below keep them in step. */
enum { P_BASE, P_ROTARY_DIM, P_PAIRING, P_COUNT };

static const pe_param_decl *const rope_params[P_COUNT + 1] = {
    [P_BASE] = &scheme_param_base,
    [P_ROTARY_DIM] = &scheme_param_rotary_dim,
    [P_PAIRING] = &scheme_param_pairing,
    [P_COUNT] = NULL, /* the list is NULL-terminated */
};

static int rope_compute(const pe_host *host,
                        const pe_param_value *const *values,
                        const pe_shape *shape, pe_scheme_tables *out, char *err,
                        size_t err_size) {
  double base = values[P_BASE]->number;
  uint32_t r = 0;
  int rc;

  (void)host; /* rope has nothing to warn about */
  /* rotary_dim must be even and <= head_dim: checked against the shape,
   * which the host's per-parameter validation cannot know. */
  rc = scheme_rotary_begin(values[P_ROTARY_DIM], values[P_PAIRING], shape, out,
                           &r, err, err_size);
  if (rc < 0) return rc;

  /* theta_j = base^(-2j/R): RoFormer eq. 15.  Attention factor stays 1. */
  scheme_fill_theta(out->inv_freq, base, 1.0, r);
  snprintf(out->note, sizeof out->note, "rope: base = %.10g, R = %u", base,
           (unsigned)r);
  return 0;
}

static const pe_scheme_ops rope_ops = {
    .struct_size = sizeof(pe_scheme_ops),
    .params = rope_params,
    .compute = rope_compute,
};

static const pe_plugin_desc rope_desc = {
    .struct_size = sizeof(pe_plugin_desc),
    .abi_version = PE_ABI_VERSION,
    .kind = PE_PLUGIN_SCHEME,
    .name = "rope", /* must equal the module's file name (rope.so) */
    .version = SCHEME_PLUGIN_VERSION,
    .summary =
        "rotary position embedding, theta_j = base^(-2j/R) (Su et al. 2021)",
    .scheme = &rope_ops,
    .backend = NULL, /* not a backend */
};

PE_PLUGIN_EXPORT int pe_plugin_entry(uint32_t host_abi, const pe_host *host,
                                     const pe_plugin_desc **desc, char *err,
                                     size_t err_size) {
  (void)host; /* a scheme needs no host service at load time */
  return scheme_entry(host_abi, &rope_desc, desc, err, err_size);
}
