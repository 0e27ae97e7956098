/* What pe-probe reads from a config: the shape, the scheme's section and
 * its parameters; tiny workloads that yield a scheme's tables at any L.
 *
 * libpe's public API has no getter for config values, so the text is read
 * here with the INI rules of docs/CONFIG.md (key = value, ';'/'#'
 * comments, indented lines continue a value).  The config itself is
 * validated by pe_config_load first. */
#include "probe.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static char *trim(char *s) {
  while (isspace((unsigned char)*s)) s++;
  char *e = s + strlen(s);
  while (e > s && isspace((unsigned char)e[-1])) *--e = '\0';
  return s;
}

static void strip_comment(char *s) {
  for (char *p = s; *p; p++)
    if (*p == ';' && (p == s || isspace((unsigned char)p[-1]))) {
      *p = '\0';
      return;
    }
}

/* Calls `fn` for every line: its section, and whether it is indented. */
typedef int (*line_fn)(void *user, const char *section, char *line, int indented);

static int each_line(const char *text, line_fn fn, void *user) {
  /* libpe refuses a config line over 199 characters, so a line of a
   * loaded config (or of its [scheme] section) is never cut here */
  char line[4096], section[sizeof line] = "";
  for (const char *p = text; *p;) {
    size_t n = strcspn(p, "\n");
    snprintf(line, sizeof line, "%.*s", (int)(n < sizeof line ? n : sizeof line - 1), p);
    p += n + (p[n] == '\n');
    int indented = line[0] == ' ' || line[0] == '\t';
    char *t = trim(line);
    if (!*t || *t == ';' || *t == '#') continue;
    if (*t == '[' && !indented) {
      snprintf(section, sizeof section, "%.*s", (int)strcspn(t + 1, "]"), t + 1);
      continue;
    }
    if (fn(user, section, t, indented)) return 1;
  }
  return 0;
}

typedef struct get_state {
  const char *section, *key;
  char *buf;
  size_t n;
  int found, in_key;
} get_state;

static int get_line(void *user, const char *section, char *t, int indented) {
  get_state *g = user;
  strip_comment(t);
  if (indented && g->in_key) { /* continuation of the key */
    size_t len = strlen(g->buf);
    snprintf(g->buf + len, g->n - len, " %s", trim(t));
    return 0;
  }
  g->in_key = 0;
  if (strcmp(section, g->section)) return 0;
  size_t k = strcspn(t, "=:");
  if (!t[k]) return 0;
  t[k] = '\0';
  if (strcmp(trim(t), g->key)) return 0;
  snprintf(g->buf, g->n, "%s", trim(t + k + 1));
  g->found = g->in_key = 1;
  return 0;
}

int ini_get(const char *text, const char *section, const char *key, char *buf, size_t n) {
  get_state g = {section, key, buf, n, 0, 0};
  buf[0] = '\0';
  each_line(text, get_line, &g);
  return g.found;
}

/* The [scheme] section's lines, verbatim. */
static char *section_text(const char *text, const char *name) {
  size_t cap = strlen(text) + 1, len = 0;
  char *out = calloc(1, cap);
  int in = 0;
  for (const char *p = text; out && *p;) {
    size_t n = strcspn(p, "\n");
    const char *t = p;
    while (t < p + n && isspace((unsigned char)*t)) t++;
    if (*t == '[' && t == p) in = !strncmp(t + 1, name, strlen(name)) && t[1 + strlen(name)] == ']';
    else if (in) len += (size_t)snprintf(out + len, cap - len, "%.*s\n", (int)n, p);
    p += n + (p[n] == '\n');
  }
  return out;
}

int scheme_param(pe_ctx *ctx, const char *plugin, const char *scheme_text, const char *key,
                 double *out) {
  char buf[256];
  char *text = NULL;
  size_t len = strlen(scheme_text) + 16;
  if ((text = malloc(len))) snprintf(text, len, "[scheme]\n%s", scheme_text);
  int found = text && ini_get(text, "scheme", key, buf, sizeof buf);
  free(text);
  if (found) return *out = strtod(buf, NULL), 1;
  const pe_plugin *p;
  if (pe_plugin_load(ctx, plugin, PE_PLUGIN_SCHEME, &p) != 0) return 0;
  for (const pe_param_decl *const *d = pe_plugin_params(p); *d; d++)
    if (!strcmp((*d)->name, key) && (*d)->default_value)
      return *out = strtod((*d)->default_value, NULL), 1;
  return 0;
}

static uint64_t get_u64(const char *text, const char *key, uint64_t dflt) {
  char buf[64];
  return ini_get(text, "workload", key, buf, sizeof buf) ? strtoull(buf, NULL, 10) : dflt;
}

static void scheme_numbers(pe_ctx *ctx, probe_cfg *pc) {
  double v;
  pc->base = scheme_param(ctx, pc->plugin, pc->scheme_text, "base", &v) ? v : 10000;
  pc->factor = scheme_param(ctx, pc->plugin, pc->scheme_text, "factor", &v) ? v : 0;
  pc->has_lo = scheme_param(ctx, pc->plugin, pc->scheme_text, "original_max_position_embeddings", &v);
  pc->L_train = pc->has_lo ? (uint64_t)v : pc->L;
  double mx;
  if (!pc->factor && pc->has_lo &&
      scheme_param(ctx, pc->plugin, pc->scheme_text, "max_position_embeddings", &mx))
    pc->factor = mx / (double)pc->L_train; /* LongRoPE's s */
}

/* The directory of the config at `path`, as pe_config_load takes it. */
static char *config_dir(const char *path) {
  const char *slash = strrchr(path, '/');
  if (!slash) return strdup(".");
  if (slash == path) return strdup("/");
  return strndup(path, (size_t)(slash - path));
}

/* A plugin `value` written in the config, as libpe loads it for pe-bench
 * (libpe/config.c): a name as is, a relative path joined to the config's
 * directory (like [inputs] paths, docs/CONFIG.md). */
static char *config_plugin_path(const char *dir, const char *value) {
  if (!strchr(value, '/') || value[0] == '/' || !strcmp(dir, ".")) return strdup(value);
  size_t n = strlen(dir) + strlen(value) + 2;
  char *out = malloc(n);
  if (out) snprintf(out, n, "%s/%s", dir, value);
  return out;
}

/* The value of `key` in `section` of `text`, allocated; NULL when absent
 * (or out of memory). */
static char *ini_dup(const char *text, const char *section, const char *key) {
  size_t n = strlen(text) + 1; /* a joined value is never longer than the text */
  char *buf = malloc(n);
  if (buf && !ini_get(text, section, key, buf, n)) free(buf), buf = NULL;
  return buf;
}

int probe_cfg_load(pe_ctx *ctx, const char *path, probe_cfg *pc) {
  memset(pc, 0, sizeof *pc);
  pc->path = path;
  if (pe_config_load(ctx, path, &pc->cfg) != 0) return -1;
  pc->text = strdup(pe_config_text(pc->cfg));
  pc->dir = config_dir(path);
  if (!pc->text || !pc->dir || !(pc->scheme_text = section_text(pc->text, "scheme")))
    return -1;
  if (!(pc->scheme = ini_dup(pc->text, "scheme", "plugin")) && !(pc->scheme = strdup("none")))
    return -1;
  if (!(pc->plugin = config_plugin_path(pc->dir, pc->scheme))) return -1;
  pc->head_dim = (uint32_t)get_u64(pc->text, "head_dim", 0);
  pc->q_heads = (uint32_t)get_u64(pc->text, "q_heads", 1);
  pc->L = get_u64(pc->text, "position_offset", 0) + get_u64(pc->text, "seq_len", 1);
  scheme_numbers(ctx, pc);
  return 0;
}

void probe_cfg_free(probe_cfg *pc) {
  pe_config_free(pc->cfg);
  free(pc->text);
  free(pc->scheme_text);
  free(pc->dir);
  free(pc->scheme);
  free(pc->plugin);
  memset(pc, 0, sizeof *pc);
}

int tables_at(pe_ctx *ctx, const probe_cfg *pc, const char *scheme_text, const char *base_dir,
              uint64_t L, pe_workload **out) {
  size_t n = strlen(scheme_text) + 512;
  char *text = malloc(n);
  if (!text) return PE_ENOMEM;
  /* The scheme sees L = position_offset + seq_len (NUMERICS.md); tables
   * only, so nothing is allocated for inputs whatever L is. */
  snprintf(text, n,
           "[workload]\nhead_dim = %u\nq_heads = %u\nkv_heads = %u\nseq_len = %llu\nq_len = 1\n"
           "[scheme]\n%s",
           pc->head_dim, pc->q_heads, pc->q_heads, (unsigned long long)(L ? L : 1), scheme_text);
  pe_config *cfg;
  int rc = pe_config_parse(ctx, text, pc->path, base_dir, &cfg);
  free(text);
  if (rc) return rc;
  rc = pe_workload_build_tables(ctx, cfg, out);
  pe_config_free(cfg);
  return rc;
}

/* Width at which list values wrap: well under libinih's 199 characters. */
#define LIST_LINE_MAX 100

/* `key = value`; a list (ini_get joined its continuation lines into one,
 * e.g. LongRoPE's 48 factors) goes back on indented continuation lines of
 * at most LIST_LINE_MAX characters, so libpe's line limit holds
 * (docs/CONFIG.md).  Words are never split. */
static void put_value(FILE *fp, const char *key, const char *value, int is_list) {
  if (!is_list) {
    fprintf(fp, "%s = %s\n", key, value);
    return;
  }
  size_t col = (size_t)fprintf(fp, "%s =", key), words = 0;
  for (const char *p = value + strspn(value, " \t"); *p; p += strspn(p, " \t")) {
    size_t n = strcspn(p, " \t");
    if (words && col + 1 + n > LIST_LINE_MAX) {
      fputs("\n ", fp); /* the space below makes the indent */
      col = 1, words = 0;
    }
    col += (size_t)fprintf(fp, " %.*s", (int)n, p);
    words++, p += n;
  }
  fputc('\n', fp);
}

/* One declared key: the config's value, else the fallbacks of
 * scheme_text_for. */
static void put_param(FILE *fp, const probe_cfg *pc, const pe_param_decl *d, char *buf,
                      size_t n, double factor, int force_factor) {
  int is_factor = !strcmp(d->name, "factor");
  if (is_factor && force_factor) fprintf(fp, "factor = %.17g\n", factor);
  else if (ini_get(pc->text, "scheme", d->name, buf, n)) put_value(fp, d->name, buf, d->type == PE_PARAM_LIST);
  else if (is_factor) fprintf(fp, "factor = %.17g\n", factor);
  else if (!strcmp(d->name, "original_max_position_embeddings"))
    fprintf(fp, "%s = %llu\n", d->name, (unsigned long long)pc->L_train);
}

char *scheme_text_for(pe_ctx *ctx, const probe_cfg *pc, const char *name, double factor,
                      int force_factor) {
  const pe_plugin *p;
  if (pe_plugin_load(ctx, name, PE_PLUGIN_SCHEME, &p) != 0) return NULL;
  size_t n = strlen(pc->text) + 1; /* a joined value is never longer than the text */
  char *out = NULL, *buf = malloc(n);
  size_t len;
  FILE *fp = buf ? open_memstream(&out, &len) : NULL;
  if (!fp) return free(buf), NULL;
  fprintf(fp, "plugin = %s\n", name);
  for (const pe_param_decl *const *d = pe_plugin_params(p); *d; d++)
    put_param(fp, pc, *d, buf, n, factor, force_factor);
  int bad = ferror(fp);
  fclose(fp), free(buf);
  if (bad) free(out), out = NULL;
  return out;
}

double rope_theta(double base, uint32_t R, uint32_t j) { return pow(base, -2.0 * j / R); }

double probe_factor(const probe_opts *o, const probe_cfg *pc) {
  return o->factor > 0 ? o->factor : pc->factor > 1 ? pc->factor : 4;
}

int run_text(pe_ctx *ctx, const probe_opts *o, const probe_cfg *pc, const char *text,
             pe_workload **w, pe_result **r) {
  pe_config *cfg = NULL;
  *w = NULL, *r = NULL;
  if (pe_config_parse(ctx, text, pc->path, pc->dir, &cfg) != 0 || pe_workload_build(ctx, cfg, w) != 0) {
    if (cfg) pe_config_free(cfg);
    return probe_fail(o, 2, "%s", pe_ctx_error(ctx));
  }
  pe_config_free(cfg);
  const char *backend = o->backend ? o->backend : "reference";
  int rc = pe_run(ctx, *w, pc->cfg, backend, r);
  if (!*r) return probe_fail(o, 1, "%s", pe_ctx_error(ctx));
  if (rc != 0)
    return probe_fail(o, 1, "backend %s: %s: %s", backend, pe_run_status_name((*r)->status),
                      (*r)->message);
  return 0;
}
