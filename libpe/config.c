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
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* libinih's limits (ini.c of Debian's libinih 55: INI_MAX_LINE 200 with
 * the terminating NUL, MAX_SECTION and MAX_NAME 50): a longer line is cut
 * and its rest parsed as a new line, a longer section or key name is
 * silently truncated.  We refuse all three. */
#define INI_LINE_CHARS 199
#define INI_NAME_CHARS 49

typedef struct reader {
  const char *text; /* remaining input */
  int line;         /* line number of the line last handed to inih */
  bool continuation; /* that line continues the previous key */
  bool has_key;     /* a key has been set since the last [section] */
  int section_line; /* line of the last [section] header */
  int bad_line;     /* first line the reader refused, 0 if none */
  char why[256];    /* and why */
  struct header {   /* every [section] header, keys or not */
    char name[INI_NAME_CHARS + 1];
    int line;
  } *headers;
  size_t n_headers;
  bool oom;
} reader;

typedef struct parse_state {
  pe_ctx *ctx;
  pe_config *cfg;
  reader rd;
  int rc;
} parse_state;

static bool section_known(const char *s) {
  return !strcmp(s, "workload") || !strcmp(s, "inputs") || !strcmp(s, "scheme") ||
         !strcmp(s, "run") || !strcmp(s, "sweep") || !strcmp(s, "backend") ||
         (!strncmp(s, "backend.", 8) && s[8]) || (!strncmp(s, "scheme.", 7) && s[7]);
}

#define ACCEPTED_SECTIONS                                                    \
  "(accepted: [workload] [inputs] [scheme] [scheme.NAME] [run] [backend] "   \
  "[backend.LABEL] [sweep])"

static void refuse_line(reader *rd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void refuse_line(reader *rd, const char *fmt, ...) {
  if (rd->bad_line) return;
  rd->bad_line = rd->line;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(rd->why, sizeof rd->why, fmt, ap);
  va_end(ap);
}

static void add_header(reader *rd, const char *name) {
  struct header *h = realloc(rd->headers, (rd->n_headers + 1) * sizeof *h);
  if (!h) {
    rd->oom = true;
    return;
  }
  rd->headers = h;
  h += rd->n_headers++;
  snprintf(h->name, sizeof h->name, "%s", name);
  h->line = rd->line;
}

/* Classify a line the way inih's ini_parse_stream will (comment,
 * continuation, [section], key), so the handler knows which calls are
 * continuations and headers without keys are checked too.  inih forgets
 * the previous key at a [section] header: an indented line right after
 * one is a new key, not a continuation. */
static void classify(reader *rd, const char *str) {
  const char *p = str;
  if (rd->line == 1 && !strncmp(p, "\xEF\xBB\xBF", 3)) p += 3; /* BOM */
  const char *start = p;
  while (*start && isspace((unsigned char)*start)) start++;
  rd->continuation = false;
  if (!*start || *start == ';' || *start == '#') return; /* blank, comment */
  if (rd->has_key && start > p) {
    rd->continuation = true;
    return;
  }
  if (*start == '[') {
    rd->section_line = rd->line;
    rd->has_key = false;
    const char *close = strchr(start, ']');
    if (!close) { /* stop here, before the keys it leaves outside any section */
      refuse_line(rd, "syntax error: '[' without a closing ']'");
      return;
    }
    int len = (int)(close - start - 1);
    if (len > INI_NAME_CHARS)
      refuse_line(rd, "section name [%.20s...] longer than 49 characters (libinih's limit)",
                  start + 1);
    else {
      char name[INI_NAME_CHARS + 1];
      snprintf(name, sizeof name, "%.*s", len, start + 1);
      if (!section_known(name))
        refuse_line(rd, "unknown section [%s] " ACCEPTED_SECTIONS, name);
      else
        add_header(rd, name);
    }
    return;
  }
  const char *eq = start + strcspn(start, "=:");
  const char *end = eq;
  while (end > start && isspace((unsigned char)end[-1])) end--;
  if (*eq && end - start > INI_NAME_CHARS)
    refuse_line(rd, "key '%.20s...' longer than 49 characters (libinih's limit)", start);
  rd->has_key = *eq != '\0';
}

/* inih's reader interface: copy one line into `str` (without its line
 * break: inih strips trailing space anyway, and a line of exactly 199
 * characters must not leave its newline behind as a line of its own).
 * Returns NULL (the end) at the first line we refuse. */
static char *read_line(char *str, int num, void *stream) {
  reader *rd = stream;
  if (!*rd->text || rd->bad_line) return NULL;
  const char *nl = strchr(rd->text, '\n');
  size_t len = nl ? (size_t)(nl - rd->text) : strlen(rd->text);
  const char *next = nl ? nl + 1 : rd->text + len;
  if (len && rd->text[len - 1] == '\r') len--;
  rd->line++;
  if (len > INI_LINE_CHARS || len > (size_t)num - 1) {
    refuse_line(rd, "line longer than 199 characters (libinih's limit); continue "
                "long lists on indented lines");
    return NULL;
  }
  memcpy(str, rd->text, len);
  str[len] = '\0';
  rd->text = next;
  classify(rd, str);
  return rd->bad_line ? NULL : str;
}

const char *pe__at(char *buf, const pe_config *cfg, int line) {
  if (line > 0)
    snprintf(buf, PE_AT_SIZE, "%s:%d", cfg->name, line);
  else if (line == PE_LINE_SET) /* not in the file: no line to point at */
    snprintf(buf, PE_AT_SIZE, "%s (value set by --set / pe_config_set)", cfg->name);
  else
    snprintf(buf, PE_AT_SIZE, "%s", cfg->name);
  return buf;
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

static int handler(void *user, const char *section, const char *name,
                   const char *value) {
  parse_state *st = user;
  if (st->rc) return 1; /* report the first error only */
  pe_config *cfg = st->cfg;
  int line = st->rd.line;
  if (!*section) {
    st->rc = pe__fail(st->ctx, PE_ECONFIG, "%s:%d: key '%s' outside any section (put it "
                      "under [workload], [scheme], ...)", cfg->name, line, name);
    return 0;
  }
  if (!section_known(section)) { /* the reader refuses these first */
    st->rc = pe__fail(st->ctx, PE_ECONFIG, "%s:%d: unknown section [%s] " ACCEPTED_SECTIONS,
                      cfg->name, st->rd.section_line, section);
    return 0;
  }
  pe__entry *prev = find_mut(cfg, section, name);
  if (prev && st->rd.continuation) { /* continuation line: append */
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

/* File order (sections set later through pe_config_set, PE_LINE_SET,
 * last). */
static unsigned file_order(int line) { return line > 0 ? (unsigned)line : ~0u; }

static void sort_backends(pe_config *cfg) {
  for (size_t i = 1; i < cfg->n_backends; i++) {
    pe__backend_section b = cfg->backends[i];
    unsigned key = file_order(b.line);
    size_t j = i;
    for (; j > 0 && file_order(cfg->backends[j - 1].line) > key; j--)
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
      return pe__fail(ctx, PE_ECONFIG, "%s: [backend] needs 'plugin = NAME' "
                      "(e.g. reference, openmp, opencl, vulkan)", PE_AT(cfg, e->line));
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
        return pe__fail(ctx, PE_ECONFIG, "%s: backend label '%s' is used twice "
                        "(first: %s); name sections [backend.LABEL]",
                        PE_AT(cfg, b->line), b->label, PE_AT(cfg, cfg->backends[j].line));
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
static int add_bare_backends(pe_ctx *ctx, pe_config *cfg, const reader *rd) {
  for (size_t h = 0; h < rd->n_headers; h++) {
    const char *name = rd->headers[h].name;
    const int line = rd->headers[h].line;
    if (strcmp(name, "backend") && strncmp(name, "backend.", 8)) continue;
    bool has_keys = false;
    for (size_t i = 0; i < cfg->n_entries && !has_keys; i++)
      has_keys = !strcmp(cfg->entries[i].section, name);
    if (has_keys) continue;
    if (!strcmp(name, "backend"))
      return pe__fail(ctx, PE_ECONFIG, "%s:%d: [backend] needs 'plugin = NAME' "
                      "(e.g. reference, openmp, opencl, vulkan)", cfg->name, line);
    int rc = add_entry(ctx, cfg, name, "plugin", name + 8, line);
    if (rc) return rc;
  }
  return 0;
}

/* Feed the text to inih; the first error in file order wins. */
static int parse_lines(pe_ctx *ctx, pe_config *cfg, parse_state *st) {
  int rc = ini_parse_stream(read_line, &st->rd, handler, st);
  /* The handler's errors come from lines before the one the reader
   * stopped at; inih's syntax errors may come from either side. */
  if (st->rc) return st->rc;
  if (st->rd.oom) return pe__fail(ctx, PE_ENOMEM, "out of memory");
  if (st->rd.bad_line && (rc <= 0 || st->rd.bad_line < rc))
    return pe__fail(ctx, PE_ECONFIG, "%s:%d: %s", cfg->name, st->rd.bad_line, st->rd.why);
  if (rc > 0)
    return pe__fail(ctx, PE_ECONFIG, "%s:%d: syntax error (expected [section], "
                    "key = value, an indented continuation, or a ; comment)",
                    cfg->name, rc);
  if (rc < 0) return pe__fail(ctx, PE_ENOMEM, "%s: out of memory while parsing", cfg->name);
  return 0;
}

static int parse_text(pe_ctx *ctx, pe_config *cfg) {
  parse_state st = {.ctx = ctx, .cfg = cfg, .rd = {.text = cfg->text}};
  int rc = parse_lines(ctx, cfg, &st);
  if (rc == 0) rc = add_bare_backends(ctx, cfg, &st.rd);
  free(st.rd.headers);
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
  size_t n, total = 0;
  const char *nul = NULL;
  while (!nul && (n = fread(buf, 1, sizeof buf, fp)) > 0 && !s.oom &&
         s.len < PE_MAX_CONFIG_BYTES) {
    /* a NUL byte would end the text early: the file is not a config */
    if ((nul = memchr(buf, '\0', n)) != NULL) break;
    pe__str_addf(&s, "%.*s", (int)n, buf);
    total += n;
  }
  const int read_errno = ferror(fp) ? errno : 0;
  fclose(fp);
  if (read_errno || nul || s.oom || s.len >= PE_MAX_CONFIG_BYTES) {
    pe__str_free(&s);
    if (read_errno)
      return pe__fail(ctx, PE_EIO, "%s: cannot read: %s", path, strerror(read_errno));
    if (nul)
      return pe__fail(ctx, PE_ECONFIG, "%s: NUL byte at offset %zu: not a text config",
                      path, total + (size_t)(nul - buf));
    return pe__fail(ctx, s.oom ? PE_ENOMEM : PE_ELIMIT, "%s: %s", path,
                    s.oom ? "out of memory" : "larger than 16 MiB: not a config");
  }
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
/* [backend.LABEL] names the backend labelled LABEL: where the file has no
 * such section but a plain [backend] with plugin = LABEL, that one (else
 * the set would add a second backend of the same label). */
static const char *backend_by_label(const pe_config *cfg, const char *section) {
  if (strncmp(section, "backend.", 8)) return section;
  for (size_t i = 0; i < cfg->n_backends; i++)
    if (!strcmp(cfg->backends[i].section, section)) return section;
  for (size_t i = 0; i < cfg->n_backends; i++)
    if (!strcmp(cfg->backends[i].label, section + 8)) return cfg->backends[i].section;
  return section;
}

int pe_config_set(pe_ctx *ctx, pe_config *cfg, const char *section,
                  const char *key, const char *value) {
  if (!cfg || !section || !key || !value)
    return pe__fail(ctx, PE_EINVAL, "pe_config_set: NULL argument");
  if (!section_known(section))
    return pe__fail(ctx, PE_ECONFIG, "unknown section [%s]", section);
  section = backend_by_label(cfg, section);
  pe__entry *e = find_mut(cfg, section, key);
  char *old = NULL;
  bool old_continued = false;
  int old_line = 0;
  if (e) {
    char *v = pe__strdup(value);
    if (!v) return pe__fail(ctx, PE_ENOMEM, "out of memory");
    old = e->value;
    old_continued = e->continued;
    old_line = e->line;
    e->value = v;
    e->continued = false;
    e->line = PE_LINE_SET;
  } else {
    size_t before = cfg->n_entries;
    int rc = add_entry(ctx, cfg, section, key, value, PE_LINE_SET);
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
    e->line = old_line;
  } else {
    drop_last_entry(cfg);
  }
  free_backends(cfg);
  collect_backends(ctx, cfg);
  if (ctx) memcpy(ctx->err, msg, sizeof msg);
  return rc;
}

char *pe__config_plugin_path(const pe_config *cfg, const char *value) {
  /* A name is looked up on the plugin path; a path written in a config is
   * relative to the config's directory, like [inputs] paths. */
  if (!strchr(value, '/') || value[0] == '/' || !strcmp(cfg->base_dir, "."))
    return pe__strdup(value);
  return pe__path_join(cfg->base_dir, value);
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
