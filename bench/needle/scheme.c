/* libpe workloads for the model's attention: one scheme, one shape.  The
 * scheme's parameters come from the needle config's [scheme.NAME]; `base`
 * (when the plugin takes one and the section does not say) is the training
 * scheme's, and original_max_position_embeddings is L_train, so that every
 * inference-time scheme extends the model that was actually trained. */
#include "needle.h"

#include <stdlib.h>
#include <string.h>

/* Does "key = value" INI text set `key`? */
static const char *lines_value(const char *text, const char *key, char *buf, size_t n) {
  size_t kl = strlen(key);
  for (const char *p = text; p && *p;) {
    while (*p == ' ' || *p == '\t') p++;
    if (!strncmp(p, key, kl) && (p[kl] == ' ' || p[kl] == '=' || p[kl] == '\t')) {
      const char *eq = strchr(p, '=');
      const char *nl = strchr(p, '\n');
      if (eq && (!nl || eq < nl)) {
        eq++;
        while (*eq == ' ') eq++;
        size_t l = nl ? (size_t)(nl - eq) : strlen(eq);
        while (l && (eq[l - 1] == ' ' || eq[l - 1] == '\r')) l--;
        if (l >= n) l = n - 1;
        memcpy(buf, eq, l);
        buf[l] = '\0';
        return buf;
      }
    }
    p = strchr(p, '\n');
    if (p) p++;
  }
  return NULL;
}

static bool declares(const pe_plugin *p, const char *key) {
  const pe_param_decl *const *d = pe_plugin_params(p);
  for (; d && *d; d++)
    if (!strcmp((*d)->name, key)) return true;
  return false;
}

char *nd_scheme_text(pe_ctx *ctx, const nd_config *c, const char *scheme, char *err,
                     size_t errlen) {
  const pe_plugin *p;
  if (pe_plugin_load(ctx, scheme, PE_PLUGIN_SCHEME, &p)) {
    snprintf(err, errlen, "scheme %s: %s", scheme, pe_ctx_error(ctx));
    return NULL;
  }
  const char *own = nd_scheme_lines(c, scheme);
  const char *trained = nd_scheme_lines(c, c->train.scheme);
  size_t cap = strlen(own) + strlen(trained) + 512;
  char *t = malloc(cap);
  if (!t) return NULL;
  size_t n = (size_t)snprintf(t, cap, "plugin = %s\n%s", scheme, own);
  char buf[256];
  if (declares(p, "base") && !lines_value(own, "base", buf, sizeof buf) &&
      lines_value(trained, "base", buf, sizeof buf))
    n += (size_t)snprintf(t + n, cap - n, "base = %s\n", buf);
  if (declares(p, "original_max_position_embeddings") &&
      !lines_value(own, "original_max_position_embeddings", buf, sizeof buf))
    n += (size_t)snprintf(t + n, cap - n, "original_max_position_embeddings = %u\n",
                          c->train.seq_len);
  return t;
}

int nd_workload(pe_ctx *ctx, const nd_config *c, const char *scheme, size_t B, size_t S,
                size_t Sq, pe_config **cfg_out, pe_workload **w_out, char *err, size_t errlen) {
  *cfg_out = NULL;
  *w_out = NULL;
  char *st = nd_scheme_text(ctx, c, scheme, err, errlen);
  if (!st) return 2;
  size_t cap = strlen(st) + 1024;
  char *text = malloc(cap);
  if (!text) return free(st), 1;
  snprintf(text, cap,
           "[workload]\nbatch = %zu\nq_heads = %u\nkv_heads = %u\nhead_dim = %u\n"
           "seq_len = %zu\nq_len = %zu\ncausal = true\n\n[scheme]\n%s\n"
           "[run]\nverify = false\nwarmup = 0\niterations = 1\n",
           B, c->arch.heads, c->arch.heads, c->arch.head_dim, S, Sq, st);
  free(st);
  char name[4400];
  if (snprintf(name, sizeof name, "%s [scheme.%s]", c->path, scheme) >= (int)sizeof name)
    snprintf(name, sizeof name, "[scheme.%s]", scheme);
  int rc = pe_config_parse(ctx, text, name, NULL, cfg_out);
  if (rc == 0) rc = pe_workload_build(ctx, *cfg_out, w_out);
  free(text);
  if (rc) {
    snprintf(err, errlen, "%s", pe_ctx_error(ctx));
    pe_config_free(*cfg_out);
    *cfg_out = NULL;
    return 2;
  }
  return 0;
}
