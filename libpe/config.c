/* INI workload configs (docs/CONFIG.md), parsed by libinih.
 *
 * libinih hands every key to handler(); an indented line continues the
 * previous key and arrives as a repeated call with the same name.  We read
 * the lines ourselves (ini_parse_stream) so we know each key's line number,
 * whether a call is a continuation, and whether a line was longer than
 * inih's 199-character limit (which it would silently split). */
#include "internal.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct reader {
  const char *text; /* remaining input */
  int line;         /* line number of the line last handed to inih */
  bool last_indented;
  int section_line; /* line of the last [section] header */
  int long_line;    /* first line over the limit, 0 if none */
} reader;

typedef struct parse_state {
  pe_ctx *ctx;
  pe_config *cfg;
  reader rd;
  int rc;
} parse_state;

/* inih's reader interface: copy one line (with its newline) into `str`. */
static char *read_line(char *str, int num, void *stream) {
  reader *rd = stream;
  if (!*rd->text) return NULL;
  const char *nl = strchr(rd->text, '\n');
  size_t len = nl ? (size_t)(nl - rd->text) + 1 : strlen(rd->text);
  rd->line++;
  if (len > (size_t)num - 1) {
    if (!rd->long_line) rd->long_line = rd->line;
    len = (size_t)num - 1;
    memcpy(str, rd->text, len);
    str[len] = '\0';
    rd->text = nl ? nl + 1 : rd->text + strlen(rd->text);
  } else {
    memcpy(str, rd->text, len);
    str[len] = '\0';
    rd->text += len;
  }
  rd->last_indented = str[0] == ' ' || str[0] == '\t';
  const char *p = str;
  while (*p == ' ' || *p == '\t') p++;
  if (*p == '[') rd->section_line = rd->line;
  return str;
}

const pe__entry *pe__config_find(const pe_config *cfg, const char *section,
                                 const char *key) {
  for (size_t i = 0; i < cfg->n_entries; i++)
    if (!strcmp(cfg->entries[i].section, section) && !strcmp(cfg->entries[i].key, key))
      return &cfg->entries[i];
  return NULL;
}

static pe__entry *find_mut(pe_config *cfg, const char *section, const char *key) {
  return (pe__entry *)pe__config_find(cfg, section, key);
}

/* Hard limits, far above any real workload config, that keep hostile
 * ones cheap: lookups are linear and continuation lines append, so without
 * them a 1 MB config of 100000 keys (or of one 20000-line list) takes
 * minutes to parse. */
#define PE_MAX_CONFIG_ENTRIES 4096
#define PE_MAX_VALUE_BYTES (256u << 10)

static int add_entry(pe_ctx *ctx, pe_config *cfg, const char *section,
                     const char *key, const char *value, int line) {
  if (cfg->n_entries >= PE_MAX_CONFIG_ENTRIES)
    return pe__fail(ctx, PE_ELIMIT, "%s:%d: more than %d keys: not a workload config",
                    cfg->name, line, PE_MAX_CONFIG_ENTRIES);
  if (strlen(value) > PE_MAX_VALUE_BYTES)
    return pe__fail(ctx, PE_ELIMIT, "%s:%d: [%s] %s: value longer than %u KiB",
                    cfg->name, line, section, key, PE_MAX_VALUE_BYTES >> 10);
  if (cfg->n_entries == cfg->cap_entries) {
    size_t cap = cfg->cap_entries ? 2 * cfg->cap_entries : 32;
    pe__entry *e = realloc(cfg->entries, cap * sizeof *e);
    if (!e) return pe__fail(ctx, PE_ENOMEM, "out of memory");
    cfg->entries = e;
    cfg->cap_entries = cap;
  }
  pe__entry *e = &cfg->entries[cfg->n_entries];
  memset(e, 0, sizeof *e);
  e->section = pe__strdup(section);
  e->key = pe__strdup(key);
  e->value = pe__strdup(value);
  e->line = line;
  cfg->n_entries++;
  if (!e->section || !e->key || !e->value) return pe__fail(ctx, PE_ENOMEM, "out of memory");
  return 0;
}

static bool section_known(const char *s) {
  return !strcmp(s, "workload") || !strcmp(s, "inputs") || !strcmp(s, "scheme") ||
         !strcmp(s, "run") || !strcmp(s, "sweep") || !strcmp(s, "backend") ||
         (!strncmp(s, "backend.", 8) && s[8]) || (!strncmp(s, "scheme.", 7) && s[7]);
}

static int handler(void *user, const char *section, const char *name,
                   const char *value) {
  parse_state *st = user;
  if (st->rc) return 1; /* report the first error only */
  pe_config *cfg = st->cfg;
  int line = st->rd.line;
  if (!section_known(section)) {
    st->rc = pe__fail(st->ctx, PE_ECONFIG, "%s:%d: unknown section [%s] (accepted: "
                      "[workload] [inputs] [scheme] [scheme.NAME] [run] [backend] [backend.LABEL] [sweep])",
                      cfg->name, st->rd.section_line, section);
    return 0;
  }
  pe__entry *prev = find_mut(cfg, section, name);
  if (prev && st->rd.last_indented) { /* continuation line: append */
    if (strlen(prev->value) + 1 + strlen(value) > PE_MAX_VALUE_BYTES)
      return st->rc = pe__fail(st->ctx, PE_ELIMIT, "%s:%d: [%s] %s: value longer than %u KiB "
                               "(continued from line %d)", cfg->name, line, section, name,
                               PE_MAX_VALUE_BYTES >> 10, prev->line), 0;
    char *joined = pe__asprintf("%s %s", prev->value, value);
    if (!joined) return st->rc = pe__fail(st->ctx, PE_ENOMEM, "out of memory"), 0;
    free(prev->value);
    prev->value = joined;
    prev->continued = true;
    return 1;
  }
  if (prev) {
    st->rc = pe__fail(st->ctx, PE_ECONFIG, "%s:%d: [%s] %s is already set on line %d "
                      "(a key may appear once; continue lists on indented lines)",
                      cfg->name, line, section, name, prev->line);
    return 0;
  }
  st->rc = add_entry(st->ctx, cfg, section, name, value, line);
  return st->rc == 0;
}

/* File order (sections set later through pe_config_set, line 0, last). */
static void sort_backends(pe_config *cfg) {
  for (size_t i = 1; i < cfg->n_backends; i++) {
    pe__backend_section b = cfg->backends[i];
    unsigned key = b.line ? (unsigned)b.line : ~0u;
    size_t j = i;
    for (; j > 0 && (cfg->backends[j - 1].line ? (unsigned)cfg->backends[j - 1].line : ~0u) > key; j--)
      cfg->backends[j] = cfg->backends[j - 1];
    cfg->backends[j] = b;
  }
}

/* Backend sections in file order. */
static int collect_backends(pe_ctx *ctx, pe_config *cfg) {
  for (size_t i = 0; i < cfg->n_entries; i++) {
    const pe__entry *e = &cfg->entries[i];
    if (strcmp(e->section, "backend") && strncmp(e->section, "backend.", 8)) continue;
    bool seen = false;
    for (size_t j = 0; j < cfg->n_backends && !seen; j++)
      seen = !strcmp(cfg->backends[j].section, e->section);
    if (seen) continue;
    const pe__entry *plugin = pe__config_find(cfg, e->section, "plugin");
    const char *label = e->section[7] == '.' ? e->section + 8 : NULL;
    if (!plugin && !label)
      return pe__fail(ctx, PE_ECONFIG, "%s:%d: [backend] needs 'plugin = NAME' "
                      "(e.g. reference, openmp, opencl, vulkan)", cfg->name, e->line);
    pe__backend_section *b = realloc(cfg->backends, (cfg->n_backends + 1) * sizeof *b);
    if (!b) return pe__fail(ctx, PE_ENOMEM, "out of memory");
    cfg->backends = b;
    b = &cfg->backends[cfg->n_backends++];
    b->section = pe__strdup(e->section);
    b->plugin = pe__strdup(plugin ? plugin->value : label);
    b->label = pe__strdup(label ? label : plugin->value);
    b->line = e->line;
    if (!b->section || !b->plugin || !b->label) return pe__fail(ctx, PE_ENOMEM, "out of memory");
    for (size_t j = 0; j + 1 < cfg->n_backends; j++)
      if (!strcmp(cfg->backends[j].label, b->label))
        return pe__fail(ctx, PE_ECONFIG, "%s:%d: backend label '%s' is used twice "
                        "(first on line %d); name sections [backend.LABEL]",
                        cfg->name, b->line, b->label, cfg->backends[j].line);
  }
  sort_backends(cfg);
  return 0;
}

static void free_backends(pe_config *cfg) {
  for (size_t i = 0; i < cfg->n_backends; i++) {
    free(cfg->backends[i].label);
    free(cfg->backends[i].section);
    free(cfg->backends[i].plugin);
  }
  free(cfg->backends);
  cfg->backends = NULL;
  cfg->n_backends = 0;
}

/* libinih reports keys, never sections: a [backend.LABEL] header with no
 * keys would vanish.  It means "plugin LABEL with its defaults", so give it
 * that key explicitly; a bare [backend] header is an error. */
static int add_bare_backends(pe_ctx *ctx, pe_config *cfg) {
  int line = 0;
  for (const char *p = cfg->text; *p; line++) {
    const char *nl = strchr(p, '\n'), *end = nl ? nl : p + strlen(p);
    while (p < end && (*p == ' ' || *p == '\t')) p++;
    const char *close = memchr(p, ']', (size_t)(end - p));
    if (*p == '[' && close && !strncmp(p + 1, "backend", 7)) {
      char name[256];
      snprintf(name, sizeof name, "%.*s", (int)(close - p - 1), p + 1);
      bool has_keys = false;
      for (size_t i = 0; i < cfg->n_entries && !has_keys; i++)
        has_keys = !strcmp(cfg->entries[i].section, name);
      if (!has_keys && !strcmp(name, "backend"))
        return pe__fail(ctx, PE_ECONFIG, "%s:%d: [backend] needs 'plugin = NAME' "
                        "(e.g. reference, openmp, opencl, vulkan)", cfg->name, line + 1);
      int rc = has_keys || strncmp(name, "backend.", 8) ? 0
                                                        : add_entry(ctx, cfg, name, "plugin", name + 8, line + 1);
      if (rc) return rc;
    }
    p = nl ? nl + 1 : end;
  }
  return 0;
}

static int parse_text(pe_ctx *ctx, pe_config *cfg) {
  parse_state st = {.ctx = ctx, .cfg = cfg, .rd = {.text = cfg->text}};
  int rc = ini_parse_stream(read_line, &st.rd, handler, &st);
  if (st.rd.long_line)
    return pe__fail(ctx, PE_ECONFIG, "%s:%d: line longer than 199 characters (libinih's "
                    "limit); continue long lists on indented lines", cfg->name,
                    st.rd.long_line);
  if (st.rc) return st.rc;
  if (rc > 0)
    return pe__fail(ctx, PE_ECONFIG, "%s:%d: syntax error (expected [section], "
                    "key = value, an indented continuation, or a ; comment)",
                    cfg->name, rc);
  if (rc < 0) return pe__fail(ctx, PE_ENOMEM, "%s: out of memory while parsing", cfg->name);
  rc = add_bare_backends(ctx, cfg);
  return rc ? rc : collect_backends(ctx, cfg);
}

void pe_config_free(pe_config *cfg) {
  if (!cfg) return;
  for (size_t i = 0; i < cfg->n_entries; i++) {
    free(cfg->entries[i].section);
    free(cfg->entries[i].key);
    free(cfg->entries[i].value);
  }
  free_backends(cfg);
  free(cfg->entries);
  free(cfg->name);
  free(cfg->base_dir);
  free(cfg->text);
  free(cfg);
}

/* Parse and check the fixed sections, so a bad config fails at load. */
static int finish(pe_ctx *ctx, pe_config *cfg, pe_config **out) {
  pe__settings s;
  int rc = parse_text(ctx, cfg);
  if (rc == 0 && (rc = pe__settings_read(ctx, cfg, &s)) == 0) pe__settings_free(&s);
  if (rc != 0) {
    pe_config_free(cfg);
    return rc;
  }
  *out = cfg;
  return 0;
}

int pe_config_parse(pe_ctx *ctx, const char *text, const char *name,
                    const char *base_dir, pe_config **out) {
  *out = NULL;
  pe_config *cfg = calloc(1, sizeof *cfg);
  if (!cfg) return pe__fail(ctx, PE_ENOMEM, "out of memory");
  cfg->text = pe__strdup(text ? text : "");
  cfg->name = pe__strdup(name ? name : "<config>");
  cfg->base_dir = pe__strdup(base_dir ? base_dir : ".");
  if (!cfg->text || !cfg->name || !cfg->base_dir) {
    pe_config_free(cfg);
    return pe__fail(ctx, PE_ENOMEM, "out of memory");
  }
  return finish(ctx, cfg, out);
}

#define PE_MAX_CONFIG_BYTES (16u << 20)

int pe_config_load(pe_ctx *ctx, const char *path, pe_config **out) {
  *out = NULL;
  FILE *fp = fopen(path, "rb");
  if (!fp) return pe__fail(ctx, PE_EIO, "%s: cannot open: %s", path, strerror(errno));
  pe__str s = {0};
  char buf[8192];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, fp)) > 0 && !s.oom && s.len < PE_MAX_CONFIG_BYTES)
    pe__str_addf(&s, "%.*s", (int)n, buf);
  bool failed = ferror(fp) != 0;
  fclose(fp);
  if (failed || s.oom || s.len >= PE_MAX_CONFIG_BYTES) {
    pe__str_free(&s);
    return pe__fail(ctx, failed ? PE_EIO : PE_ELIMIT, "%s: %s", path,
                    failed ? "read error" : "larger than 16 MiB: not a config");
  }
  /* %.*s stops at a NUL byte; a config containing one is binary garbage. */
  char *dir = pe__dirname(path);
  int rc = pe_config_parse(ctx, s.buf ? s.buf : "", path, dir, out);
  free(dir);
  pe__str_free(&s);
  return rc;
}

static void drop_last_entry(pe_config *cfg) {
  pe__entry *e = &cfg->entries[--cfg->n_entries];
  free(e->section);
  free(e->key);
  free(e->value);
}

/* Re-derive everything computed from the entries (the backend list) and
 * validate the fixed sections. */
static int revalidate(pe_ctx *ctx, pe_config *cfg) {
  free_backends(cfg);
  int rc = collect_backends(ctx, cfg);
  pe__settings s;
  if (rc == 0 && (rc = pe__settings_read(ctx, cfg, &s)) == 0) pe__settings_free(&s);
  return rc;
}

/* All or nothing: a refused value leaves the config as it was. */
int pe_config_set(pe_ctx *ctx, pe_config *cfg, const char *section,
                  const char *key, const char *value) {
  if (!cfg || !section || !key || !value)
    return pe__fail(ctx, PE_EINVAL, "pe_config_set: NULL argument");
  if (!section_known(section))
    return pe__fail(ctx, PE_ECONFIG, "unknown section [%s]", section);
  pe__entry *e = find_mut(cfg, section, key);
  char *old = NULL;
  bool old_continued = false;
  if (e) {
    char *v = pe__strdup(value);
    if (!v) return pe__fail(ctx, PE_ENOMEM, "out of memory");
    old = e->value;
    old_continued = e->continued;
    e->value = v;
    e->continued = false;
  } else {
    size_t before = cfg->n_entries;
    int rc = add_entry(ctx, cfg, section, key, value, 0);
    if (rc) {
      if (cfg->n_entries > before) drop_last_entry(cfg);
      return rc;
    }
  }
  int rc = revalidate(ctx, cfg);
  if (rc == 0) {
    free(old);
    return 0;
  }
  /* Undo, then rebuild what the undone entry changed (keep the message). */
  char msg[PE_ERRMSG_SIZE] = "";
  if (ctx) memcpy(msg, ctx->err, sizeof msg);
  if (e) {
    free(e->value);
    e->value = old;
    e->continued = old_continued;
  } else {
    drop_last_entry(cfg);
  }
  free_backends(cfg);
  collect_backends(ctx, cfg);
  if (ctx) memcpy(ctx->err, msg, sizeof msg);
  return rc;
}

const char *pe_config_name(const pe_config *cfg) { return cfg->name; }
const char *pe_config_get(const pe_config *cfg, const char *section, const char *key) {
  const pe__entry *e = pe__config_find(cfg, section, key);
  return e ? e->value : NULL;
}
const char *pe_config_text(const pe_config *cfg) { return cfg->text; }
size_t pe_config_backend_count(const pe_config *cfg) { return cfg->n_backends; }
const char *pe_config_backend_label(const pe_config *cfg, size_t i) {
  return i < cfg->n_backends ? cfg->backends[i].label : NULL;
}
const char *pe_config_backend_plugin(const pe_config *cfg, size_t i) {
  return i < cfg->n_backends ? cfg->backends[i].plugin : NULL;
}
