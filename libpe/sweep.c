/* Sweeps: a config's [sweep] section expanded into cells (docs/CONFIG.md
 * "[sweep]").  pe_sweep_expand checks only the section's shape, so it is
 * cheap and total; pe_sweep_cell builds one cell's config (a copy of the
 * base with the cell's values in place) and checks it like a loaded
 * config.  The copy sets every swept key before checking anything, so the
 * order of keys never matters (q_len = 4096 with seq_len = 4096 is valid
 * whatever the base seq_len). */
#include "internal.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

/* The value that removes a key from a cell, so its default applies
 * (q_len = 1 - : decode, then prefill). */
#define PE_SWEEP_UNSET "-"

typedef struct sweep_key {
  char *name;    /* canonical: "seq_len", "scheme.plugin", "scheme.yarn.factor" */
  char *section; /* "workload", "scheme", "scheme.yarn" */
  const char *key; /* into name */
  char **values;
  size_t n_values;
  int line;
} sweep_key;

struct pe_sweep {
  const pe_config *base;
  sweep_key *keys;
  size_t n_keys;
  char **backends;
  size_t n_backends;
  size_t n_cells;
};

/* ---- words --------------------------------------------------------------- */
static void free_words(char **w, size_t n) {
  for (size_t i = 0; i < n; i++) free(w[i]);
  free(w);
}

/* Split `text` at white space into fresh strings. */
static int split_words(const char *text, char ***out, size_t *n_out) {
  size_t n = 0, cap = 0;
  char **w = NULL;
  for (const char *p = text;;) {
    while (isspace((unsigned char)*p)) p++;
    if (!*p) break;
    const char *end = p;
    while (*end && !isspace((unsigned char)*end)) end++;
    if (n == cap) {
      char **g = realloc(w, (cap = cap ? 2 * cap : 8) * sizeof *g);
      if (!g) return free_words(w, n), PE_ENOMEM;
      w = g;
    }
    if (!(w[n] = pe__strndup(p, (size_t)(end - p)))) return free_words(w, n), PE_ENOMEM;
    n++;
    p = end;
  }
  *out = w;
  *n_out = n;
  return 0;
}

static int cmp_word(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* *dup: a word that appears twice, or NULL (a sorted copy: n log n). */
static int repeated_word(char *const *w, size_t n, const char **dup) {
  char **sorted = malloc((n ? n : 1) * sizeof *sorted);
  if (!sorted) return PE_ENOMEM;
  memcpy(sorted, w, n * sizeof *sorted);
  qsort(sorted, n, sizeof *sorted, cmp_word);
  *dup = NULL;
  for (size_t i = 1; i < n && !*dup; i++)
    if (!strcmp(sorted[i], sorted[i - 1])) *dup = sorted[i];
  free(sorted);
  return 0;
}

/* ---- expansion ------------------------------------------------------------ */
static int sweep_fail(pe_ctx *ctx, int code, const pe_config *cfg, const pe__entry *e,
                      const char *why) {
  return pe__fail(ctx, code, "%s: [sweep] %s = %s: %s", PE_AT(cfg, e->line), e->key,
                  e->value, why);
}

static bool section_sweepable(const char *s) {
  return !strcmp(s, "workload") || !strcmp(s, "inputs") || !strcmp(s, "run") ||
         !strcmp(s, "scheme") || (!strncmp(s, "scheme.", 7) && s[7] && !strchr(s + 7, '.'));
}

/* "seq_len" -> workload/seq_len; "scheme.yarn.factor" -> scheme.yarn/factor. */
static int split_key(pe_ctx *ctx, const pe_config *cfg, const pe__entry *e, sweep_key *k) {
  const char *dot = strrchr(e->key, '.');
  k->section = dot ? pe__strndup(e->key, (size_t)(dot - e->key)) : pe__strdup("workload");
  if (!k->section) return pe__fail(ctx, PE_ENOMEM, "out of memory");
  const char *key = dot ? dot + 1 : e->key;
  if (!*key || !section_sweepable(k->section))
    return sweep_fail(ctx, PE_ECONFIG, cfg, e,
                      "not a sweepable key (accepted: backend, a [workload] key such as "
                      "seq_len, or SECTION.KEY with SECTION workload, inputs, run, scheme "
                      "or scheme.NAME)");
  if (!strncmp(k->section, "scheme.", 7) && !strcmp(key, "plugin"))
    return sweep_fail(ctx, PE_ECONFIG, cfg, e,
                      "[scheme.NAME] has no plugin key (sweep scheme.plugin instead)");
  bool bare = !strcmp(k->section, "workload");
  k->name = bare ? pe__strdup(key) : pe__asprintf("%s.%s", k->section, key);
  if (!k->name) return pe__fail(ctx, PE_ENOMEM, "out of memory");
  k->key = bare ? k->name : k->name + strlen(k->section) + 1;
  k->line = e->line;
  return 0;
}

/* Words of a [sweep] line: at least one, none repeated. */
static int read_values(pe_ctx *ctx, const pe_config *cfg, const pe__entry *e, char ***w,
                       size_t *n) {
  if (split_words(e->value, w, n)) return pe__fail(ctx, PE_ENOMEM, "out of memory");
  if (*n == 0) return sweep_fail(ctx, PE_ECONFIG, cfg, e, "no values (list them separated by spaces)");
  if (*n > PE_SWEEP_MAX_CELLS)
    return pe__fail(ctx, PE_ELIMIT, "%s: [sweep] %s: %zu values, more than the %d cells a "
                    "sweep may have", PE_AT(cfg, e->line), e->key, *n, PE_SWEEP_MAX_CELLS);
  const char *dup;
  if (repeated_word(*w, *n, &dup)) return pe__fail(ctx, PE_ENOMEM, "out of memory");
  if (!dup) return 0;
  char why[160];
  snprintf(why, sizeof why, "'%.100s' is listed twice (each cell must be distinct)", dup);
  return sweep_fail(ctx, PE_ECONFIG, cfg, e, why);
}

static int add_key(pe_ctx *ctx, pe_sweep *sw, const pe__entry *e) {
  sweep_key *k = &sw->keys[sw->n_keys++];
  int rc = split_key(ctx, sw->base, e, k);
  if (rc == 0) rc = read_values(ctx, sw->base, e, &k->values, &k->n_values);
  for (size_t i = 0; rc == 0 && i + 1 < sw->n_keys; i++)
    if (!strcmp(sw->keys[i].name, k->name))
      rc = pe__fail(ctx, PE_ECONFIG, "%s: [sweep] %s sweeps %s, already swept on line %d",
                    PE_AT(sw->base, e->line), e->key, k->name, sw->keys[i].line);
  if (rc == 0 && sw->n_cells > PE_SWEEP_MAX_CELLS / k->n_values)
    rc = pe__fail(ctx, PE_ELIMIT, "%s: [sweep] %s: the sweep would have more than %d cells "
                  "(the product of the value counts); split it into several configs",
                  PE_AT(sw->base, e->line), e->key, PE_SWEEP_MAX_CELLS);
  if (rc == 0) sw->n_cells *= k->n_values;
  return rc;
}

static int add_entry(pe_ctx *ctx, pe_sweep *sw, const pe__entry *e) {
  if (strcmp(e->key, "backend")) return add_key(ctx, sw, e);
  if (sw->backends) /* unreachable through the parser (a key appears once) */
    return sweep_fail(ctx, PE_ECONFIG, sw->base, e, "backend is given twice");
  return read_values(ctx, sw->base, e, &sw->backends, &sw->n_backends);
}

int pe_sweep_expand(pe_ctx *ctx, const pe_config *cfg, pe_sweep **out) {
  *out = NULL;
  pe_sweep *sw = calloc(1, sizeof *sw);
  if (sw) sw->keys = calloc(cfg->n_entries + 1, sizeof *sw->keys);
  if (!sw || !sw->keys) {
    free(sw);
    return pe__fail(ctx, PE_ENOMEM, "out of memory");
  }
  sw->base = cfg;
  sw->n_cells = 1;
  int rc = 0;
  for (size_t i = 0; rc == 0 && i < cfg->n_entries; i++)
    if (!strcmp(cfg->entries[i].section, "sweep")) rc = add_entry(ctx, sw, &cfg->entries[i]);
  if (rc) {
    pe_sweep_free(sw);
    return rc;
  }
  *out = sw;
  return 0;
}

void pe_sweep_free(pe_sweep *sw) {
  if (!sw) return;
  for (size_t i = 0; i < sw->n_keys; i++) {
    free(sw->keys[i].name);
    free(sw->keys[i].section);
    free_words(sw->keys[i].values, sw->keys[i].n_values);
  }
  free(sw->keys);
  free_words(sw->backends, sw->n_backends);
  free(sw);
}

size_t pe_sweep_cell_count(const pe_sweep *sw) { return sw->n_cells; }
size_t pe_sweep_key_count(const pe_sweep *sw) { return sw->n_keys; }
const char *pe_sweep_key(const pe_sweep *sw, size_t key) {
  return key < sw->n_keys ? sw->keys[key].name : NULL;
}
size_t pe_sweep_backend_count(const pe_sweep *sw) { return sw->n_backends; }
const char *pe_sweep_backend(const pe_sweep *sw, size_t i) {
  return i < sw->n_backends ? sw->backends[i] : NULL;
}

/* Mixed radix, the last key fastest. */
const char *pe_sweep_value(const pe_sweep *sw, size_t cell, size_t key) {
  if (cell >= sw->n_cells || key >= sw->n_keys) return NULL;
  size_t stride = 1;
  for (size_t k = key + 1; k < sw->n_keys; k++) stride *= sw->keys[k].n_values;
  return sw->keys[key].values[(cell / stride) % sw->keys[key].n_values];
}

size_t pe_sweep_cell_label(const pe_sweep *sw, size_t cell, char *buf, size_t size) {
  pe__str s = {0};
  for (size_t k = 0; k < sw->n_keys && cell < sw->n_cells; k++)
    pe__str_addf(&s, "%s%s=%s", k ? " " : "", sw->keys[k].name, pe_sweep_value(sw, cell, k));
  size_t need = s.oom ? 0 : s.len;
  if (size) snprintf(buf, size, "%s", s.buf && !s.oom ? s.buf : "");
  pe__str_free(&s);
  return need;
}

/* ---- cells ------------------------------------------------------------------ */
/* The swept key setting section/key, or NULL. */
static const sweep_key *swept(const pe_sweep *sw, const char *section, const char *key) {
  for (size_t k = 0; k < sw->n_keys; k++)
    if (!strcmp(sw->keys[k].section, section) && !strcmp(sw->keys[k].key, key))
      return &sw->keys[k];
  return NULL;
}

/* Whether a cell running scheme `plugin` keeps an entry of `section`. */
static bool keeps(const char *section, const char *plugin) {
  if (!strcmp(section, "sweep")) return false;
  return strncmp(section, "scheme.", 7) || !strcmp(section + 7, plugin);
}

static int push_entry(pe_config *c, const char *section, const char *key, const char *value,
                      int line, bool continued) {
  pe__entry *e = &c->entries[c->n_entries++];
  e->section = pe__strdup(section);
  e->key = pe__strdup(key);
  e->value = pe__strdup(value);
  e->line = line;
  e->continued = continued;
  return e->section && e->key && e->value ? 0 : PE_ENOMEM;
}

/* The cell's value of a swept key. */
static const char *value_of(const pe_sweep *sw, size_t cell, const sweep_key *k) {
  return pe_sweep_value(sw, cell, (size_t)(k - sw->keys));
}

static int copy_entries(const pe_sweep *sw, size_t cell, const char *plugin, pe_config *c) {
  const pe_config *b = sw->base;
  c->cap_entries = b->n_entries + sw->n_keys + 1;
  if (!(c->entries = calloc(c->cap_entries, sizeof *c->entries))) return PE_ENOMEM;
  int rc = 0;
  for (size_t i = 0; rc == 0 && i < b->n_entries; i++) {
    const pe__entry *e = &b->entries[i];
    if (!keeps(e->section, plugin)) continue;
    const sweep_key *k = swept(sw, e->section, e->key);
    if (k && !strcmp(value_of(sw, cell, k), PE_SWEEP_UNSET)) continue;
    rc = k ? push_entry(c, e->section, e->key, value_of(sw, cell, k), k->line, false)
           : push_entry(c, e->section, e->key, e->value, e->line, e->continued);
  }
  for (size_t k = 0; rc == 0 && k < sw->n_keys; k++) {
    const sweep_key *key = &sw->keys[k];
    const char *v = pe_sweep_value(sw, cell, k);
    if (keeps(key->section, plugin) && strcmp(v, PE_SWEEP_UNSET) &&
        !pe__config_find(b, key->section, key->key))
      rc = push_entry(c, key->section, key->key, v, key->line, false);
  }
  return rc;
}

static int copy_backends(const pe_config *b, pe_config *c) {
  if (!b->n_backends) return 0;
  if (!(c->backends = calloc(b->n_backends, sizeof *c->backends))) return PE_ENOMEM;
  for (size_t i = 0; i < b->n_backends; i++) {
    const pe__backend_section *s = &b->backends[i];
    pe__backend_section *d = &c->backends[c->n_backends++];
    d->label = pe__strdup(s->label);
    d->section = pe__strdup(s->section);
    d->plugin = pe__strdup(s->plugin);
    d->line = s->line;
    if (!d->label || !d->section || !d->plugin) return PE_ENOMEM;
  }
  return 0;
}

/* The scheme plugin a cell runs: its scheme.plugin value, else the base's. */
static const char *cell_plugin(const pe_sweep *sw, size_t cell) {
  const sweep_key *k = swept(sw, "scheme", "plugin");
  if (k) return value_of(sw, cell, k);
  const pe__entry *e = pe__config_find(sw->base, "scheme", "plugin");
  return e ? e->value : "";
}

static int copy_config(const pe_sweep *sw, size_t cell, pe_config **out) {
  const pe_config *b = sw->base;
  pe_config *c = calloc(1, sizeof *c);
  if (!c) return PE_ENOMEM;
  c->name = pe__strdup(b->name);
  c->base_dir = pe__strdup(b->base_dir);
  c->text = pe__strdup(b->text);
  int rc = c->name && c->base_dir && c->text ? 0 : PE_ENOMEM;
  if (rc == 0) rc = copy_entries(sw, cell, cell_plugin(sw, cell), c);
  if (rc == 0) rc = copy_backends(b, c);
  if (rc) {
    pe_config_free(c);
    return rc;
  }
  *out = c;
  return 0;
}

/* The fixed sections, the scheme's parameters and its tables (no inputs:
 * cheap at any length). */
static int check_cell(pe_ctx *ctx, const pe_config *c) {
  pe_workload *w;
  int rc = pe_workload_build_tables(ctx, c, &w);
  if (rc == 0) pe_workload_free(w);
  return rc;
}

int pe_sweep_cell(pe_ctx *ctx, const pe_sweep *sw, size_t cell, pe_config **out) {
  *out = NULL;
  if (cell >= sw->n_cells)
    return pe__fail(ctx, PE_EINVAL, "%s: sweep cell %zu does not exist (%zu cells)",
                    sw->base->name, cell, sw->n_cells);
  pe_config *c;
  if (copy_config(sw, cell, &c)) return pe__fail(ctx, PE_ENOMEM, "out of memory");
  int rc = check_cell(ctx, c);
  if (rc) {
    pe_config_free(c);
    if (sw->n_keys == 0) return rc; /* no [sweep]: the config's own message */
    char label[400];
    pe_sweep_cell_label(sw, cell, label, sizeof label);
    return pe__fail_prefix(ctx, rc, "%s: [sweep] cell %zu of %zu (%s)", sw->base->name,
                           cell + 1, sw->n_cells, label);
  }
  *out = c;
  return 0;
}
