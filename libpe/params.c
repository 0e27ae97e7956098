/* Parameter values: parse config text by declaration (type, range,
 * choices, default), for plugin sections and the fixed sections alike. */
#include "internal.h"
#include "json_write.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int pe__parse_bool(const char *t, bool *out) {
  static const char *const yes[] = {"true", "yes", "on", "1"};
  static const char *const no[] = {"false", "no", "off", "0"};
  for (size_t i = 0; i < 4; i++) {
    if (!strcasecmp(t, yes[i])) return *out = true, 0;
    if (!strcasecmp(t, no[i])) return *out = false, 0;
  }
  return PE_EINVAL;
}

int pe__parse_i64(const char *t, int64_t *out) {
  char *end;
  errno = 0;
  if (!*t || isspace((unsigned char)*t)) return PE_EINVAL;
  long long v = strtoll(t, &end, 10);
  if (errno == ERANGE) return PE_ELIMIT;
  if (*end) { /* allow exact integers written as 1e6 or 4096.0 */
    double d;
    if (pe__parse_double(t, &d) != 0 || d != floor(d)) return PE_EINVAL;
    if (fabs(d) >= 9.2e18) return PE_ELIMIT;
    v = (long long)d;
  }
  *out = v;
  return 0;
}

int pe__parse_double(const char *t, double *out) {
  char *end;
  errno = 0;
  if (!*t || isspace((unsigned char)*t)) return PE_EINVAL;
  double v = strtod(t, &end);
  if (*end || end == t) return PE_EINVAL;
  if (!isfinite(v) || errno == ERANGE) return PE_ELIMIT;
  *out = v;
  return 0;
}

const char *pe__param_type_name(uint32_t type) {
  switch (type) {
  case PE_PARAM_NUMBER: return "number";
  case PE_PARAM_INTEGER: return "integer";
  case PE_PARAM_BOOL: return "bool";
  case PE_PARAM_CHOICE: return "choice";
  case PE_PARAM_LIST: return "list";
  case PE_PARAM_STRING: return "string";
  default: return "?";
  }
}

void pe__param_accepted(const pe_param_decl *d, char *buf, size_t size) {
  char lo[64] = "", hi[64] = "";
  switch (d->type) {
  case PE_PARAM_BOOL:
    snprintf(buf, size, "true|false");
    return;
  case PE_PARAM_CHOICE:
    snprintf(buf, size, "%s", d->choices);
    return;
  case PE_PARAM_STRING:
    snprintf(buf, size, "any text");
    return;
  default:
    break;
  }
  char a[32], b[32];
  if (d->flags & PE_PARAM_HAS_MIN)
    snprintf(lo, sizeof lo, " %s %s", d->flags & PE_PARAM_MIN_OPEN ? ">" : ">=",
             pe_json_digits(a, sizeof a, d->min, "?"));
  if (d->flags & PE_PARAM_HAS_MAX)
    snprintf(hi, sizeof hi, "%s %s %s", lo[0] ? " and" : "",
             d->flags & PE_PARAM_MAX_OPEN ? "<" : "<=", pe_json_digits(b, sizeof b, d->max, "?"));
  snprintf(buf, size, "%s%s%s",
           d->type == PE_PARAM_LIST      ? "space-separated numbers, each"
           : d->type == PE_PARAM_INTEGER ? "an integer"
                                         : "a number",
           lo, hi);
  if (!lo[0] && !hi[0] && d->type == PE_PARAM_LIST) snprintf(buf, size, "space-separated numbers");
}

static bool in_range(const pe_param_decl *d, double v) {
  if (d->flags & PE_PARAM_HAS_MIN)
    if (d->flags & PE_PARAM_MIN_OPEN ? !(v > d->min) : !(v >= d->min)) return false;
  if (d->flags & PE_PARAM_HAS_MAX)
    if (d->flags & PE_PARAM_MAX_OPEN ? !(v < d->max) : !(v <= d->max)) return false;
  return true;
}

static int choice_index(const char *choices, const char *t) {
  size_t len = strlen(t);
  int idx = 0;
  for (const char *p = choices; *p; idx++) {
    const char *bar = strchr(p, '|');
    size_t n = bar ? (size_t)(bar - p) : strlen(p);
    if (n == len && !strncmp(p, t, n)) return idx;
    p = bar ? bar + 1 : p + n;
  }
  return -1;
}

/* Parse a list of numbers into freshly allocated storage. */
static int parse_list(const char *t, double **out, uint32_t *n_out) {
  size_t cap = 16, n = 0;
  double *v = malloc(cap * sizeof *v);
  if (!v) return PE_ENOMEM;
  for (const char *p = t; *p;) {
    while (isspace((unsigned char)*p) || *p == ',') p++;
    if (!*p) break;
    char *end;
    errno = 0;
    double x = strtod(p, &end);
    if (end == p || !isfinite(x) || errno == ERANGE ||
        (*end && !isspace((unsigned char)*end) && *end != ',')) {
      free(v);
      return PE_EINVAL;
    }
    if (n == cap) {
      double *g = realloc(v, (cap *= 2) * sizeof *v);
      if (!g) return free(v), PE_ENOMEM;
      v = g;
    }
    v[n++] = x;
    p = end;
    if (n > UINT32_MAX / 2) return free(v), PE_ELIMIT;
  }
  *out = v;
  *n_out = (uint32_t)n;
  return 0;
}

typedef struct where {
  const pe_config *cfg;
  int line;
  const char *section;
} where;

static int bad_value(pe_ctx *ctx, const where *w, const pe_param_decl *d,
                     const char *value, const char *why) {
  char acc[256];
  pe__param_accepted(d, acc, sizeof acc);
  return pe__fail(ctx, PE_ECONFIG, "%s: [%s] %s = %s: %s (accepted: %s)",
                  PE_AT(w->cfg, w->line), w->section, d->name, value, why, acc);
}

/* Parse `text` into `v` according to `d`: 0, PE_ENOMEM, or PE_ECONFIG
 * with the reason in `why` ("out of range").  A list goes to *list_out
 * (the caller frees it). */
static int parse_text(const pe_param_decl *d, const char *text, pe_param_value *v,
                      double **list_out, char *why, size_t why_size) {
  bool b;
  int rc;
  const char *bad = NULL;
  switch (d->type) {
  case PE_PARAM_NUMBER:
    if ((rc = pe__parse_double(text, &v->number)) != 0) {
      bad = rc != PE_ELIMIT ? "not a number"
            : isfinite(strtod(text, NULL)) ? "below a double's normal range"
                                           : "not a finite number";
      break;
    }
    if (!in_range(d, v->number)) {
      bad = "out of range";
      break;
    }
    /* The integer view saturates: converting a double beyond int64 is
     * undefined behaviour (base = 1e30 is a valid number). */
    v->integer = v->number >= 0x1p63 ? INT64_MAX : v->number < -0x1p63 ? INT64_MIN
                                                                        : (int64_t)v->number;
    break;
  case PE_PARAM_INTEGER:
    if ((rc = pe__parse_i64(text, &v->integer)) != 0) {
      bad = rc == PE_ELIMIT ? "too large" : "not an integer";
      break;
    }
    v->number = (double)v->integer;
    if (!in_range(d, v->number)) bad = "out of range";
    break;
  case PE_PARAM_BOOL:
    if (pe__parse_bool(text, &b) != 0) bad = "not a bool";
    else v->integer = b, v->number = b;
    break;
  case PE_PARAM_CHOICE:
    if ((v->integer = choice_index(d->choices, text)) < 0) bad = "not one of the choices";
    else v->number = (double)v->integer;
    break;
  case PE_PARAM_LIST:
    if ((rc = parse_list(text, list_out, &v->list_len)) != 0) {
      if (rc == PE_ENOMEM) return rc;
      bad = "not a list of finite numbers";
      break;
    }
    v->list = *list_out;
    for (uint32_t i = 0; i < v->list_len; i++)
      if (!in_range(d, v->list[i])) {
        snprintf(why, why_size, "element %u (%.17g) out of range", i + 1, v->list[i]);
        return PE_ECONFIG;
      }
    break;
  default:
    break;
  }
  if (!bad) return 0;
  snprintf(why, why_size, "%s", bad);
  return PE_ECONFIG;
}

/* Parse `text` into `v` according to `d`; messages name the config line. */
static int parse_value(pe_ctx *ctx, const where *w, const pe_param_decl *d,
                       const char *text, bool continued, pe_param_value *v,
                       double **list_out) {
  if (continued && d->type != PE_PARAM_LIST)
    return bad_value(ctx, w, d, text, "continuation lines are only for lists");
  char why[128];
  int rc = parse_text(d, text, v, list_out, why, sizeof why);
  if (rc == PE_ENOMEM) return pe__fail(ctx, rc, "out of memory");
  return rc ? bad_value(ctx, w, d, text, why) : 0;
}

int pe__param_check_default(const pe_param_decl *d, char *why, size_t why_size) {
  pe_param_value v = {.struct_size = sizeof v};
  double *list = NULL;
  int rc = parse_text(d, d->default_value, &v, &list, why, why_size);
  if (rc == PE_ENOMEM) snprintf(why, why_size, "out of memory");
  free(list);
  return rc;
}

void pe__values_free(pe__values *v) {
  if (v->texts)
    for (size_t i = 0; i < v->n; i++) free(v->texts[i]);
  if (v->vals)
    for (size_t i = 0; i < v->n; i++) free((void *)v->vals[i].list);
  free(v->texts);
  free(v->vals);
  free(v->ptrs);
  memset(v, 0, sizeof *v);
}

static int unknown_key(pe_ctx *ctx, const pe_config *cfg, const pe__entry *e,
                       const pe_param_decl *const *decls, const char *owner) {
  pe__str acc = {0};
  for (size_t i = 0; decls && decls[i]; i++)
    pe__str_addf(&acc, "%s%s", i ? " " : "", decls[i]->name);
  int rc = pe__fail(ctx, PE_ECONFIG, "%s: [%s] unknown key '%s' for %s (accepted: %s)",
                    PE_AT(cfg, e->line), e->section, e->key, owner,
                    acc.buf ? acc.buf : "none");
  pe__str_free(&acc);
  return rc;
}

/* The entry for `key` in `section` or `alt` (NULL: none); a key in both is
 * an error. */
static int find_entry(pe_ctx *ctx, const pe_config *cfg, const char *section, const char *alt,
                      const char *key, const pe__entry **out) {
  const pe__entry *a = pe__config_find(cfg, section, key);
  const pe__entry *b = alt ? pe__config_find(cfg, alt, key) : NULL;
  *out = a ? a : b;
  if (!a || !b) return 0;
  char first[32] = "by --set / pe_config_set";
  if (a->line > 0) snprintf(first, sizeof first, "on line %d", a->line);
  return pe__fail(ctx, PE_ECONFIG, "%s: [%s] %s is also set in [%s] %s (give it once)",
                  PE_AT(cfg, b->line), alt, key, section, first);
}

int pe__values_build(pe_ctx *ctx, const pe_config *cfg, const char *section, const char *alt,
                     const pe_param_decl *const *decls, const char *owner,
                     pe__values *out) {
  memset(out, 0, sizeof *out);
  size_t n = 0;
  while (decls && decls[n]) n++;
  bool plugin_section = strcmp(section, "scheme") == 0 || strncmp(section, "backend", 7) == 0;
  /* Every key of the section must be declared. */
  for (size_t i = 0; i < cfg->n_entries; i++) {
    const pe__entry *e = &cfg->entries[i];
    if (strcmp(e->section, section) && (!alt || strcmp(e->section, alt))) continue;
    if (plugin_section && !strcmp(e->key, "plugin")) continue;
    size_t j = 0;
    while (j < n && strcmp(decls[j]->name, e->key)) j++;
    if (j == n) return unknown_key(ctx, cfg, e, decls, owner);
  }
  out->n = n;
  out->vals = calloc(n ? n : 1, sizeof *out->vals);
  out->ptrs = calloc(n + 1, sizeof *out->ptrs);
  out->texts = calloc(n ? n : 1, sizeof *out->texts);
  if (!out->vals || !out->ptrs || !out->texts) {
    pe__values_free(out);
    return pe__fail(ctx, PE_ENOMEM, "out of memory");
  }
  for (size_t j = 0; j < n; j++) {
    const pe_param_decl *d = decls[j];
    const pe__entry *e;
    int frc = find_entry(ctx, cfg, section, alt, d->name, &e);
    if (frc) {
      pe__values_free(out);
      return frc;
    }
    pe_param_value *v = &out->vals[j];
    v->struct_size = sizeof *v;
    out->ptrs[j] = v;
    const char *text = e ? e->value : d->default_value;
    if (!text) {
      if (d->flags & PE_PARAM_REQUIRED) {
        int rc = pe__fail(ctx, PE_ECONFIG, "%s: [%s] missing required key '%s' for %s: %s",
                          cfg->name, section, d->name, owner, d->doc ? d->doc : "");
        pe__values_free(out);
        return rc;
      }
      continue;
    }
    where w = {cfg, e ? e->line : 0, e ? e->section : section};
    double *list = NULL;
    int rc = parse_value(ctx, &w, d, text, e && e->continued, v, &list);
    if (rc == 0 && !(out->texts[j] = pe__strdup(text))) rc = pe__fail(ctx, PE_ENOMEM, "out of memory");
    if (rc != 0) {
      if (!v->list) free(list);
      if (!e) pe__fail_prefix(ctx, rc, "%s declares a bad default", owner);
      pe__values_free(out);
      return rc;
    }
    v->text = out->texts[j];
    v->given = e != NULL;
    v->present = 1;
  }
  return 0;
}
