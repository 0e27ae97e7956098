/* none: no positional encoding at all (the identity).
 *
 * Without positions, attention is permutation-equivariant: permuting the
 * keys and values together leaves every output unchanged, and with causal
 * masking the only position signal left is the mask itself.  pe-probe's
 * permutation probe uses this scheme as its baseline.  (Transformers were
 * introduced with an explicit encoding because of this: Vaswani et al.
 * 2017, section 3.5.)
 *
 * The smallest complete scheme plugin: no parameters, a compute() that
 * only states its kind, and the one exported entry point.  Start from
 * rope.c instead when the scheme has parameters or tables.
 */
#include "scheme_common.h"

/* No parameters: the list is just its NULL terminator.  A config that sets
 * any key under [scheme] besides `plugin` is rejected by the host. */
static const pe_param_decl *const none_params[] = {NULL};

static int none_compute(const pe_host *host,
                        const pe_param_value *const *values,
                        const pe_shape *shape, pe_scheme_tables *out, char *err,
                        size_t err_size) {
  (void)host;
  (void)values;
  (void)shape;
  (void)err;
  (void)err_size;
  /* Identity: backends leave Q and K as they are and add no bias.  The host
   * pre-fills the other fields; none of them is read for kind NONE. */
  out->kind = PE_KIND_NONE;
  out->attention_factor = 1.0;
  snprintf(out->note, sizeof out->note, "none: identity, no positions");
  return 0;
}

static const pe_scheme_ops none_ops = {
    .struct_size = sizeof(pe_scheme_ops),
    .params = none_params,
    .compute = none_compute,
};

static const pe_plugin_desc none_desc = {
    .struct_size = sizeof(pe_plugin_desc),
    .abi_version = PE_ABI_VERSION,
    .kind = PE_PLUGIN_SCHEME,
    .name = "none", /* must equal the module's file name (none.so) */
    .version = SCHEME_PLUGIN_VERSION,
    .summary = "no positional encoding: the permutation-equivariant baseline",
    .scheme = &none_ops,
    .backend = NULL, /* not a backend */
};

PE_PLUGIN_EXPORT int pe_plugin_entry(uint32_t host_abi, const pe_host *host,
                                     const pe_plugin_desc **desc, char *err,
                                     size_t err_size) {
  (void)host; /* a scheme needs no host service at load time */
  return scheme_entry(host_abi, &none_desc, desc, err, err_size);
}
