/* A scheme plugin to start from (docs/PLUGINS.md): copy this file, rename
 * "myscheme" (the file, the descriptor's name, the log origin) and replace
 * the formula.  It needs nothing but the installed header
 * <libpe/pe_plugin.h> and links nothing from libpe:
 *
 *   cc -std=gnu11 -O2 -fPIC -shared -fvisibility=hidden $(pkg-config --cflags libpe) \
 *      -o myscheme.so myscheme.c -lm
 *   PE_PLUGIN_PATH=$PWD pe-bench list
 *
 * (gnu11: a strict -std=c11 hides M_PI and the other POSIX names of
 * <math.h>.)  tests/test_install.sh builds it exactly so against an
 * installed libpe and runs it; it is no part of the product.
 *
 * The scheme: RoPE (docs/spec/NUMERICS.md) with base b on the first R
 * dims of each head,
 *   inv_freq[j] = b^(-2j/R),  j = 0 .. R/2-1,
 * the other head_dim - R dims passed through. */
#include <libpe/pe_plugin.h>
#include <math.h>

/* ---- parameters: the config keys, checked and defaulted by the host ---- */
static const pe_param_decl p_base = {
    .struct_size = sizeof(pe_param_decl), .type = PE_PARAM_NUMBER,
    .flags = PE_PARAM_HAS_MIN | PE_PARAM_MIN_OPEN, .min = 1.0,
    .name = "base", .doc = "b in inv_freq[j] = b^(-2j/R)", .default_value = "10000"};
/* No default and not required: absent unless given (then R = head_dim). */
static const pe_param_decl p_rotary_dim = {
    .struct_size = sizeof(pe_param_decl), .type = PE_PARAM_INTEGER,
    .flags = PE_PARAM_HAS_MIN, .min = 2,
    .name = "rotary_dim", .doc = "R, the dims rotated (even, <= head_dim; default head_dim)"};
static const pe_param_decl *const params[] = {&p_base, &p_rotary_dim, NULL};
enum { P_BASE, P_ROTARY_DIM }; /* values[i] belongs to params[i] */

/* ---- compute: parameters and shape in, float64 tables out ---- */
static int compute(const pe_host *host, const pe_param_value *const *values,
                   const pe_shape *shape, pe_scheme_tables *out, char *err,
                   size_t err_size) {
  double base = values[P_BASE]->number;
  int64_t r = values[P_ROTARY_DIM]->present ? values[P_ROTARY_DIM]->integer : shape->head_dim;
  /* What depends on the shape or on several values is checked here, with
   * a message naming the parameter and its value. */
  if (r % 2 || r > shape->head_dim)
    return pe_plugin_error(err, err_size, PE_ESCHEME,
                           "rotary_dim = %lld: must be even and <= head_dim (%u)",
                           (long long)r, shape->head_dim);
  out->kind = PE_KIND_ROTARY;
  out->rotary_dim = (uint32_t)r;
  out->pairing = PE_PAIRING_NEOX;
  for (uint32_t j = 0; j < r / 2; j++) out->inv_freq[j] = pow(base, -2.0 * j / (double)r);
  /* Legal but suspicious values: a warning through the host, not an error. */
  double slowest = 2.0 * M_PI / out->inv_freq[r / 2 - 1]; /* positions per turn */
  if (slowest < (double)shape->context_len)
    pe_plugin_log(host, PE_LOG_WARN, "myscheme",
                  "base = %g: the slowest pair turns every %.0f positions, within the "
                  "context (%llu): distant positions look alike to it",
                  base, slowest, (unsigned long long)shape->context_len);
  snprintf(out->note, sizeof out->note, "myscheme: base %g on %lld dims", base, (long long)r);
  return 0;
}

/* ---- the descriptor and the one exported symbol ---- */
static const pe_scheme_ops scheme_ops = {
    .struct_size = sizeof(pe_scheme_ops), .params = params, .compute = compute};

static const pe_plugin_desc descriptor = {
    .struct_size = sizeof(pe_plugin_desc),
    .abi_version = PE_ABI_VERSION,
    .kind = PE_PLUGIN_SCHEME,
    .name = "myscheme", /* = the file name, myscheme.so */
    .version = "1.0.0",
    .summary = "RoPE with base b on the first R dims (a template)",
    .scheme = &scheme_ops,
};

PE_PLUGIN_EXPORT int pe_plugin_entry(uint32_t host_abi, const pe_host *host,
                                     const pe_plugin_desc **desc, char *err,
                                     size_t err_size);
PE_PLUGIN_EXPORT int pe_plugin_entry(uint32_t host_abi, const pe_host *host,
                                     const pe_plugin_desc **desc, char *err,
                                     size_t err_size) {
  (void)host;
  if (host_abi < 1) return pe_plugin_error(err, err_size, PE_EABI, "needs ABI >= 1");
  *desc = &descriptor;
  return 0;
}
