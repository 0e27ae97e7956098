/* longrope: LongRoPE (Ding et al. 2024, "LongRoPE: Extending LLM Context
 * Window Beyond 2 Million Tokens", arXiv:2402.13753), as shipped in Phi-3
 * and Phi-3.5 (Hugging Face rope_type "longrope").
 *
 * Each pair has its own rescale factor, found by the paper's evolutionary
 * search; a model ships two sets, one for short contexts and one for long:
 *
 *     f = long_factor if L > Lo else short_factor   (R/2 values each)
 *     inv_freq[j] = theta_j / f_j
 *     s = factor if given, else max_position_embeddings / Lo
 *     a = attention_factor if given, else 1 if s <= 1,
 *         else sqrt(1 + ln s / ln Lo)
 *
 * Length-dependent: L = position_offset + seq_len comes from the host, and
 * the note records which set was used.  The switch is strict: L == Lo
 * still uses short_factor.
 */
#include "scheme_common.h"

enum {
  P_BASE,
  P_FACTOR,
  P_LO,
  P_MAX_POS,
  P_SHORT,
  P_LONG,
  P_ATTENTION_FACTOR,
  P_ROTARY_DIM,
  P_PAIRING,
  P_COUNT
};

static const pe_param_decl longrope_factor = {
    .struct_size = sizeof(pe_param_decl),
    .type = PE_PARAM_NUMBER,
    .flags = PE_PARAM_HAS_MIN | PE_PARAM_MIN_OPEN,
    .name = "factor",
    .doc =
        "scale s for the attention factor (default max_position_embeddings/Lo)",
};

static const pe_param_decl longrope_max_pos = {
    .struct_size = sizeof(pe_param_decl),
    .type = PE_PARAM_INTEGER,
    .flags = PE_PARAM_HAS_MIN,
    .name = "max_position_embeddings",
    .doc =
        "extended context length; s = max_position_embeddings/Lo when factor "
        "is absent",
    .min = 1.0,
};

static const pe_param_decl longrope_short = {
    .struct_size = sizeof(pe_param_decl),
    .type = PE_PARAM_LIST,
    .flags = PE_PARAM_REQUIRED | PE_PARAM_HAS_MIN | PE_PARAM_MIN_OPEN,
    .name = "short_factor",
    .doc = "R/2 per-pair rescale factors used while L <= Lo",
};

static const pe_param_decl longrope_long = {
    .struct_size = sizeof(pe_param_decl),
    .type = PE_PARAM_LIST,
    .flags = PE_PARAM_REQUIRED | PE_PARAM_HAS_MIN | PE_PARAM_MIN_OPEN,
    .name = "long_factor",
    .doc = "R/2 per-pair rescale factors used when L > Lo",
};

static const pe_param_decl *const longrope_params[P_COUNT + 1] = {
    [P_BASE] = &scheme_param_base,
    [P_FACTOR] = &longrope_factor,
    [P_LO] = &scheme_param_lo_required,
    [P_MAX_POS] = &longrope_max_pos,
    [P_SHORT] = &longrope_short,
    [P_LONG] = &longrope_long,
    [P_ATTENTION_FACTOR] = &scheme_param_attention_factor,
    [P_ROTARY_DIM] = &scheme_param_rotary_dim,
    [P_PAIRING] = &scheme_param_pairing,
    [P_COUNT] = NULL,
};

/* Both lists must hold one factor per rotary pair. */
static int longrope_check_list(const char *name, const pe_param_value *v,
                               uint32_t r, char *err, size_t err_size) {
  if (v->list_len == r / 2) return 0;
  return pe_plugin_error(err, err_size, PE_ESCHEME,
                         "%s has %u values, expected R/2 = %u "
                         "(one per rotary pair, R = %u)",
                         name, (unsigned)v->list_len, (unsigned)(r / 2),
                         (unsigned)r);
}

static int longrope_compute(const pe_host *host,
                            const pe_param_value *const *values,
                            const pe_shape *shape, pe_scheme_tables *out,
                            char *err, size_t err_size) {
  double base = values[P_BASE]->number;
  int64_t lo = values[P_LO]->integer;
  const pe_param_value *max_pos = values[P_MAX_POS];
  const pe_param_value *af = values[P_ATTENTION_FACTOR];
  uint64_t l = shape->context_len;
  int use_long = l > (uint64_t)lo;
  const pe_param_value *f = use_long ? values[P_LONG] : values[P_SHORT];
  double s, a;
  uint32_t r = 0;
  int rc;

  (void)host;
  rc = scheme_rotary_begin(values[P_ROTARY_DIM], values[P_PAIRING], shape, out,
                           &r, err, err_size);
  if (rc < 0) return rc;
  /* Both lists are checked whichever one this L uses, so that a config is
   * valid or invalid independently of its sequence length. */
  rc = longrope_check_list("short_factor", values[P_SHORT], r, err, err_size);
  if (rc < 0) return rc;
  rc = longrope_check_list("long_factor", values[P_LONG], r, err, err_size);
  if (rc < 0) return rc;

  if (values[P_FACTOR]->present) {
    s = values[P_FACTOR]->number;
  } else if (max_pos->present) {
    s = (double)max_pos->integer / (double)lo;
  } else {
    return pe_plugin_error(err, err_size, PE_ESCHEME,
                           "give factor, or max_position_embeddings "
                           "(then factor = max_position_embeddings / "
                           "original_max_position_embeddings = %lld)",
                           (long long)lo);
  }

  if (af->present) {
    a = af->number;
  } else if (s <= 1.0) {
    a = 1.0;
  } else if (lo < 2) {
    return pe_plugin_error(err, err_size, PE_ESCHEME,
                           "original_max_position_embeddings = %lld "
                           "makes sqrt(1 + ln s / ln Lo) undefined; give "
                           "attention_factor or Lo >= 2",
                           (long long)lo);
  } else {
    a = sqrt(1.0 + log(s) / log((double)lo));
  }

  for (uint32_t j = 0; j < r / 2; j++)
    out->inv_freq[j] = scheme_theta(base, j, r) / f->list[j];
  out->attention_factor = a;
  snprintf(out->note, sizeof out->note,
           "longrope: L=%llu %s Lo=%lld, %s, s = %.10g, attention_factor = "
           "%.10g",
           (unsigned long long)l, use_long ? ">" : "<=", (long long)lo,
           use_long ? "long_factor" : "short_factor", s, a);
  return 0;
}

static const pe_scheme_ops longrope_ops = {
    .struct_size = sizeof(pe_scheme_ops),
    .params = longrope_params,
    .compute = longrope_compute,
};

static const pe_plugin_desc longrope_desc = {
    .struct_size = sizeof(pe_plugin_desc),
    .abi_version = PE_ABI_VERSION,
    .kind = PE_PLUGIN_SCHEME,
    .name = "longrope",
    .version = SCHEME_PLUGIN_VERSION,
    .summary = "LongRoPE per-pair rescaling, short/long factor sets (Ding et "
               "al. 2024)",
    .scheme = &longrope_ops,
    .backend = NULL,
};

SCHEME_DEFINE_ENTRY(longrope_desc)
