/* Private helpers shared by the scheme plugins (never installed).
 *
 * Every scheme module includes this header and nothing else of libpe's
 * internals: a scheme plugin sees only the public plugin ABI
 * (libpe/pe_plugin.h).  What lives here is what would otherwise be copied
 * into ten modules:
 *
 *   - the entry-point boilerplate (ABI negotiation) as scheme_entry();
 *   - the parameter declarations every RoPE-family scheme shares
 *     (base, rotary_dim, pairing) and the common "factor" shapes;
 *   - scheme_rotary_begin(): validate rotary_dim and pairing against the
 *     shape and fill the rotary fields of the output tables;
 *   - scheme_theta(): theta_j = base^(-2j/R), the one place it is computed,
 *     so every plugin evaluates it identically (NUMERICS.md).
 *
 * All helpers are static (inline), so each module carries its own copy and
 * exports nothing but pe_plugin_entry.
 */
#ifndef PE_SCHEME_COMMON_H
#define PE_SCHEME_COMMON_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "libpe/pe_plugin.h"

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

/* The version every scheme module reports; bump on any change of a table
 * a scheme produces or of its parameters. */
#define SCHEME_PLUGIN_VERSION "1.0.0"

/* The one exported symbol.  Declared here so that -Wmissing-prototypes is
 * satisfied and every module defines it with exactly the ABI's signature. */
PE_PLUGIN_EXPORT int pe_plugin_entry(uint32_t host_abi, const pe_host *host,
                                     const pe_plugin_desc **desc, char *err,
                                     size_t err_size);

/* Entry-point body shared by every scheme: ABI 1 is the oldest and newest
 * ABI these modules speak, so any host that speaks at least ABI 1 gets the
 * descriptor; an older (nonexistent) one is refused with a message. */
static inline int scheme_entry(uint32_t host_abi, const pe_plugin_desc *mine,
                               const pe_plugin_desc **desc, char *err,
                               size_t err_size) {
  if (!desc)
    return pe_plugin_error(err, err_size, PE_EINVAL,
                           "%s: no descriptor pointer", mine->name);
  *desc = NULL;
  if (host_abi < PE_ABI_VERSION)
    return pe_plugin_error(
        err, err_size, PE_EABI, "%s: needs plugin ABI %u, host speaks %u",
        mine->name, (unsigned)PE_ABI_VERSION, (unsigned)host_abi);
  *desc = mine;
  return 0;
}

/* Define the exported entry point of a module whose descriptor is `desc`:
 * exactly the function rope.c and none.c spell out. */
#define SCHEME_DEFINE_ENTRY(desc_var)                                          \
  PE_PLUGIN_EXPORT int pe_plugin_entry(uint32_t host_abi, const pe_host *host, \
                                       const pe_plugin_desc **desc, char *err, \
                                       size_t err_size) {                      \
    (void)host;                                                                \
    return scheme_entry(host_abi, &(desc_var), desc, err, err_size);           \
  }

/* ---- shared parameter declarations ------------------------------------ */

/* RoPE base (RoFormer's 10000).  Must exceed 1: theta_j = base^(-2j/R) has
 * to decrease with j, and YaRN divides by ln(base). */
static const pe_param_decl scheme_param_base = {
    .struct_size = sizeof(pe_param_decl),
    .type = PE_PARAM_NUMBER,
    .flags = PE_PARAM_HAS_MIN | PE_PARAM_MIN_OPEN,
    .name = "base",
    .doc = "RoPE base: theta_j = base^(-2j/R)",
    .default_value = "10000",
    .min = 1.0,
};

/* Rotary dims R.  Optional with no default: absent means R = head_dim.
 * Evenness and R <= head_dim depend on the shape and are checked in
 * scheme_rotary_begin(). */
static const pe_param_decl scheme_param_rotary_dim = {
    .struct_size = sizeof(pe_param_decl),
    .type = PE_PARAM_INTEGER,
    .flags = PE_PARAM_HAS_MIN,
    .name = "rotary_dim",
    .doc =
        "rotated dims R (even, <= head_dim; default head_dim); dims R.. pass "
        "through",
    .min = 2.0,
};

/* Which dims form a rotary pair; the index of the choice is
 * SCHEME_PAIRING_NEOX / SCHEME_PAIRING_INTERLEAVED. */
static const pe_param_decl scheme_param_pairing = {
    .struct_size = sizeof(pe_param_decl),
    .type = PE_PARAM_CHOICE,
    .name = "pairing",
    .doc = "pair j is dims (j, j+R/2) (neox) or (2j, 2j+1) (interleaved)",
    .default_value = "neox",
    .choices = "neox|interleaved",
};
enum { SCHEME_PAIRING_NEOX = 0, SCHEME_PAIRING_INTERLEAVED = 1 };

/* Context-extension factor s for the schemes where s < 1 means nothing
 * (it would shrink the context instead of extending it): required, >= 1. */
static const pe_param_decl scheme_param_factor_required = {
    .struct_size = sizeof(pe_param_decl),
    .type = PE_PARAM_NUMBER,
    .flags = PE_PARAM_REQUIRED | PE_PARAM_HAS_MIN,
    .name = "factor",
    .doc = "context extension factor s (>= 1)",
    .min = 1.0,
};

/* The pre-training context length Lo, where a scheme cannot do without. */
static const pe_param_decl scheme_param_lo_required = {
    .struct_size = sizeof(pe_param_decl),
    .type = PE_PARAM_INTEGER,
    .flags = PE_PARAM_REQUIRED | PE_PARAM_HAS_MIN,
    .name = "original_max_position_embeddings",
    .doc = "pre-training context length Lo",
    .min = 1.0,
};

/* An explicit attention factor a that overrides the scheme's formula. */
static const pe_param_decl scheme_param_attention_factor = {
    .struct_size = sizeof(pe_param_decl),
    .type = PE_PARAM_NUMBER,
    .flags = PE_PARAM_HAS_MIN | PE_PARAM_MIN_OPEN,
    .name = "attention_factor",
    .doc = "override the attention factor a (q and k are scaled by a)",
};

/* ---- shared computation ------------------------------------------------ */

/* theta_j = base^(-2j/R) (RoFormer, Su et al. 2021, eq. 15).  Every scheme
 * computes it through this one expression so that tables agree bit for bit
 * where the math says they must (e.g. dynamic-ntk at L <= Lo and rope). */
static inline double scheme_theta(double base, uint32_t j, uint32_t r) {
  return pow(base, -2.0 * (double)j / (double)r);
}

/* Validate rotary_dim and pairing against the shape and fill the rotary
 * fields of `out`: kind ROTARY, R, pairing, attention factor 1.  On
 * success returns 0 and stores R in *r; otherwise a PE_ESCHEME message
 * naming the parameter and its value.  (Messages from compute() do not
 * repeat the scheme's name: the host prefixes it, with the config.) */
static inline int scheme_rotary_begin(const pe_param_value *rotary_dim,
                                      const pe_param_value *pairing,
                                      const pe_shape *shape,
                                      pe_scheme_tables *out, uint32_t *r,
                                      char *err, size_t err_size) {
  uint32_t d = shape->head_dim;
  int64_t rd = rotary_dim->present ? rotary_dim->integer : (int64_t)d;

  if (rd > (int64_t)d)
    return pe_plugin_error(err, err_size, PE_ESCHEME,
                           "rotary_dim = %lld exceeds head_dim = %u",
                           (long long)rd, (unsigned)d);
  if (rd < 2 || rd % 2 != 0) {
    if (rotary_dim->present)
      return pe_plugin_error(err, err_size, PE_ESCHEME,
                             "rotary_dim = %lld must be even and >= 2 "
                             "(dims are rotated in pairs)",
                             (long long)rd);
    return pe_plugin_error(err, err_size, PE_ESCHEME,
                           "head_dim = %u is odd; set an even rotary_dim "
                           "<= %u (dims are rotated in pairs)",
                           (unsigned)d, (unsigned)(d & ~1u));
  }
  if (!out->inv_freq || out->inv_freq_capacity < (uint32_t)rd / 2)
    return pe_plugin_error(
        err, err_size, PE_EINVAL, "host gave room for %u frequencies, need %u",
        (unsigned)out->inv_freq_capacity, (unsigned)(rd / 2));
  out->kind = PE_KIND_ROTARY;
  out->rotary_dim = (uint32_t)rd;
  out->pairing =
      pairing->present && pairing->integer == SCHEME_PAIRING_INTERLEAVED
          ? PE_PAIRING_INTERLEAVED
          : PE_PAIRING_NEOX;
  out->attention_factor = 1.0;
  *r = (uint32_t)rd;
  return 0;
}

/* Plain RoPE table: inv_freq[j] = theta_j(base) / s for j < R/2 (s = 1 is
 * RoPE, s > 1 position interpolation; a changed base is NTK scaling). */
static inline void scheme_fill_theta(double *inv_freq, double base, double s,
                                     uint32_t r) {
  for (uint32_t j = 0; j < r / 2; j++)
    inv_freq[j] = scheme_theta(base, j, r) / s; /* x / 1.0 == x exactly */
}

/* The NTK-aware base change (bloc97 2023): base' = base * k^(R/(R-2)),
 * which keeps the highest frequency (j = 0) and stretches the lowest one
 * (j = R/2-1) by exactly k.  Needs R > 2. */
static inline double scheme_ntk_base(double base, double k, uint32_t r) {
  return base * pow(k, (double)r / ((double)r - 2.0));
}

/* scheme_rotary_begin() for the NTK-style schemes, which also need R >= 4:
 * the exponent R/(R-2) of the base change has no value at R = 2.  Checked
 * whatever the branch, so that a config is valid or invalid independently
 * of its sequence length. */
static inline int scheme_ntk_begin(const pe_param_value *rotary_dim,
                                   const pe_param_value *pairing,
                                   const pe_shape *shape, pe_scheme_tables *out,
                                   uint32_t *r, char *err, size_t err_size) {
  int rc =
      scheme_rotary_begin(rotary_dim, pairing, shape, out, r, err, err_size);
  if (rc < 0 || *r >= 4) return rc;
  return pe_plugin_error(err, err_size, PE_ESCHEME,
                         "rotary_dim = %u is too small: base' = base * "
                         "k^(R/(R-2)) needs R >= 4",
                         (unsigned)*r);
}

#endif /* PE_SCHEME_COMMON_H */
