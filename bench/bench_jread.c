/* A small strict JSON reader (RFC 8259: no comments, no trailing commas,
 * no NaN, nesting at most 64 deep; \u escapes as unicode_escape says) and the
 * mapping of pe-bench's own documents (docs/RESULTS.md) onto bench_doc.
 * Fields a document lacks keep their defaults (older documents have no
 * cell, machine or agreement); a field of the wrong type is an error naming
 * the file and the field. */
#include "bench.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 64
#define MAX_FILE (256u << 20)

enum { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ };

typedef struct jv {
  int type;
  bool b;
  double num;
  char *str;
  struct jv *items; /* J_ARR, J_OBJ (values) */
  char **keys;      /* J_OBJ */
  size_t n;
} jv;

typedef struct jparser {
  const char *start, *p;
  int depth;
  const char *why; /* first error */
} jparser;

static void jv_free(jv *v) {
  for (size_t i = 0; i < v->n; i++) {
    jv_free(&v->items[i]);
    if (v->keys) free(v->keys[i]);
  }
  free(v->items);
  free(v->keys);
  free(v->str);
  memset(v, 0, sizeof *v);
}

static int fail(jparser *ps, const char *why) {
  if (!ps->why) ps->why = why;
  return -1;
}

static void skip_ws(jparser *ps) {
  while (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r') ps->p++;
}

static int parse_value(jparser *ps, jv *out);

static int hex4(const char *p, unsigned *out) {
  unsigned v = 0;
  for (int i = 0; i < 4; i++) {
    int c = (unsigned char)p[i];
    if (!isxdigit(c)) return -1;
    v = v * 16 + (unsigned)(isdigit(c) ? c - '0' : tolower(c) - 'a' + 10);
  }
  *out = v;
  return 0;
}

static size_t put_utf8(char *o, unsigned cp) {
  if (cp < 0x80) return o[0] = (char)cp, 1;
  if (cp < 0x800) return o[0] = (char)(0xc0 | cp >> 6), o[1] = (char)(0x80 | (cp & 0x3f)), 2;
  if (cp < 0x10000) {
    o[0] = (char)(0xe0 | cp >> 12), o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
    o[2] = (char)(0x80 | (cp & 0x3f));
    return 3;
  }
  o[0] = (char)(0xf0 | cp >> 18), o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
  o[2] = (char)(0x80 | ((cp >> 6) & 0x3f)), o[3] = (char)(0x80 | (cp & 0x3f));
  return 4;
}

/* \uXXXX, with a surrogate pair when one follows; p points after "\u".
 * The inverse of pe_report_json_string: it writes valid UTF-8 as it is and
 * escapes only single bytes, a control character or a byte that is not
 * UTF-8 (\u0080-\u00ff), so those come back as that one byte, never as the
 * UTF-8 of the Latin-1 character, and a document read and written again is
 * unchanged.  Escapes above \u00ff (another writer's) become UTF-8. */
static int unicode_escape(jparser *ps, char *o, size_t *len) {
  unsigned cp, lo;
  if (hex4(ps->p, &cp)) return fail(ps, "bad \\u escape");
  ps->p += 4;
  if (cp >= 0xd800 && cp < 0xdc00) {
    if (ps->p[0] != '\\' || ps->p[1] != 'u' || hex4(ps->p + 2, &lo) || lo < 0xdc00 || lo > 0xdfff)
      return fail(ps, "unpaired UTF-16 surrogate");
    ps->p += 6;
    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
  } else if (cp >= 0xdc00 && cp < 0xe000) {
    return fail(ps, "unpaired UTF-16 surrogate");
  }
  if (cp < 0x100) o[(*len)++] = (char)cp;
  else *len += put_utf8(o + *len, cp);
  return 0;
}

static int escape(jparser *ps, char *o, size_t *len) {
  static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
  char c = *ps->p++;
  if (c == 'u') return unicode_escape(ps, o, len);
  const char *f = c ? strchr(from, c) : NULL;
  if (!f) return fail(ps, "bad escape in a string");
  o[(*len)++] = to[f - from];
  return 0;
}

/* A string; ps->p at the opening quote.  Decoded text is never longer
 * than the source. */
static int parse_string(jparser *ps, char **out) {
  const char *end = ++ps->p;
  while (*end && *end != '"') end += end[0] == '\\' && end[1] ? 2 : 1;
  size_t len = 0;
  char *o = malloc((size_t)(end - ps->p) + 1);
  if (!o) return fail(ps, "out of memory");
  while (*ps->p != '"') {
    unsigned char c = (unsigned char)*ps->p;
    int rc = 0;
    if (c == '\0') rc = fail(ps, "unterminated string");
    else if (c < 0x20) rc = fail(ps, "control character in a string");
    else if (c == '\\') ps->p++, rc = escape(ps, o, &len);
    else o[len++] = (char)c, ps->p++;
    if (rc) return free(o), -1;
  }
  ps->p++;
  o[len] = '\0';
  *out = o;
  return 0;
}

/* -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? */
static int parse_number(jparser *ps, double *out) {
  const char *p = ps->p;
  if (*p == '-') p++;
  if (*p == '0') p++;
  else if (isdigit((unsigned char)*p)) while (isdigit((unsigned char)*p)) p++;
  else return fail(ps, "expected a value");
  if (*p == '.') {
    if (!isdigit((unsigned char)*++p)) return fail(ps, "expected digits after '.'");
    while (isdigit((unsigned char)*p)) p++;
  }
  if (*p == 'e' || *p == 'E') {
    p += p[1] == '+' || p[1] == '-' ? 2 : 1;
    if (!isdigit((unsigned char)*p)) return fail(ps, "expected an exponent");
    while (isdigit((unsigned char)*p)) p++;
  }
  errno = 0;
  *out = strtod(ps->p, NULL);
  if (!isfinite(*out)) return fail(ps, "number out of range");
  ps->p = p;
  return 0;
}

static int push(jv *v, size_t *cap, char *key) {
  if (v->n == *cap) {
    *cap = *cap ? 2 * *cap : 8;
    jv *items = realloc(v->items, *cap * sizeof *items);
    if (items) v->items = items;
    char **keys = v->type == J_OBJ ? realloc(v->keys, *cap * sizeof *keys) : NULL;
    if (keys) v->keys = keys;
    if (!items || (v->type == J_OBJ && !keys)) return -1;
  }
  memset(&v->items[v->n], 0, sizeof *v->items);
  if (v->type == J_OBJ) v->keys[v->n] = key;
  v->n++;
  return 0;
}

/* An array or object; ps->p at '[' or '{'. */
static int parse_container(jparser *ps, jv *v) {
  char close = *ps->p == '[' ? ']' : '}';
  v->type = close == ']' ? J_ARR : J_OBJ;
  if (++ps->depth > MAX_DEPTH) return fail(ps, "nested deeper than 64");
  ps->p++;
  skip_ws(ps);
  size_t cap = 0;
  for (bool first = true; *ps->p != close; first = false) {
    if (!first && *ps->p++ != ',') return fail(ps, "expected ',' or the end of the list");
    skip_ws(ps);
    char *key = NULL;
    if (v->type == J_OBJ) {
      if (*ps->p != '"') return fail(ps, "expected a \"key\"");
      if (parse_string(ps, &key)) return -1;
      skip_ws(ps);
      if (*ps->p++ != ':') return free(key), fail(ps, "expected ':'");
    }
    if (push(v, &cap, key)) return free(key), fail(ps, "out of memory");
    if (parse_value(ps, &v->items[v->n - 1])) return -1;
    skip_ws(ps);
  }
  ps->p++;
  ps->depth--;
  return 0;
}

static int parse_value(jparser *ps, jv *out) {
  static const struct { const char *word; int type; bool b; } words[] = {
      {"null", J_NULL, false}, {"true", J_BOOL, true}, {"false", J_BOOL, false}};
  skip_ws(ps);
  if (*ps->p == '{' || *ps->p == '[') return parse_container(ps, out);
  if (*ps->p == '"') return out->type = J_STR, parse_string(ps, &out->str);
  for (size_t i = 0; i < 3; i++)
    if (!strncmp(ps->p, words[i].word, strlen(words[i].word))) {
      ps->p += strlen(words[i].word);
      out->type = words[i].type;
      out->b = words[i].b;
      return 0;
    }
  out->type = J_NUM;
  return parse_number(ps, &out->num);
}

/* ---- documents --------------------------------------------------------------- */
typedef struct reader {
  const char *file;
  char *err;
  size_t err_size;
  int rc;
} reader;

static void bad_field(reader *rd, const char *path, const char *key, const char *want) {
  if (rd->rc == 0)
    snprintf(rd->err, rd->err_size, "%s: %s%s%s: expected %s", rd->file, path, path[0] ? "." : "",
             key, want);
  rd->rc = -1;
}

static const jv *get(const jv *obj, const char *key) {
  for (size_t i = 0; obj && obj->type == J_OBJ && i < obj->n; i++)
    if (!strcmp(obj->keys[i], key)) return &obj->items[i];
  return NULL;
}

/* Typed fields: absent leaves *out alone; null reads as NaN / "". */
static void get_str(reader *rd, const jv *o, const char *path, const char *key, char *out,
                    size_t size) {
  const jv *v = get(o, key);
  if (!v || v->type == J_NULL) return;
  if (v->type != J_STR) return bad_field(rd, path, key, "a string");
  snprintf(out, size, "%s", v->str);
}

static void get_num(reader *rd, const jv *o, const char *path, const char *key, double *out) {
  const jv *v = get(o, key);
  if (!v) return;
  if (v->type == J_NULL) *out = NAN;
  else if (v->type == J_NUM) *out = v->num;
  else bad_field(rd, path, key, "a number or null");
}

static void get_u64(reader *rd, const jv *o, const char *path, const char *key, uint64_t *out) {
  double d = (double)*out;
  get_num(rd, o, path, key, &d);
  if (!(d >= 0 && d < 1.8e19 && d == floor(d))) return bad_field(rd, path, key, "a count");
  *out = (uint64_t)d;
}

static void get_u32(reader *rd, const jv *o, const char *path, const char *key, uint32_t *out) {
  uint64_t v = *out;
  get_u64(rd, o, path, key, &v);
  if (v > UINT32_MAX) return bad_field(rd, path, key, "a count below 2^32");
  *out = (uint32_t)v;
}

static void get_bool(reader *rd, const jv *o, const char *path, const char *key, bool *out) {
  const jv *v = get(o, key);
  if (!v) return;
  if (v->type != J_BOOL) return bad_field(rd, path, key, "true or false");
  *out = v->b;
}

/* An object member that must be an object (or absent/null: NULL). */
static const jv *get_obj(reader *rd, const jv *o, const char *path, const char *key) {
  const jv *v = get(o, key);
  if (!v || v->type == J_NULL) return NULL;
  if (v->type != J_OBJ) return bad_field(rd, path, key, "an object"), NULL;
  return v;
}

static const jv *get_arr(reader *rd, const jv *o, const char *path, const char *key) {
  const jv *v = get(o, key);
  if (!v || v->type == J_NULL) return NULL;
  if (v->type != J_ARR) return bad_field(rd, path, key, "an array"), NULL;
  return v;
}

/* {"k": "v", ...} back to "k=v ..." (malloc'd). */
static char *read_cell(reader *rd, const jv *o, const char *path) {
  const jv *c = get_obj(rd, o, path, "cell");
  size_t len = 1;
  for (size_t i = 0; c && i < c->n; i++) {
    if (c->items[i].type != J_STR) return bad_field(rd, path, "cell", "string values"), NULL;
    len += strlen(c->keys[i]) + strlen(c->items[i].str) + 2;
  }
  char *s = calloc(1, len);
  for (size_t i = 0; s && c && i < c->n; i++)
    sprintf(s + strlen(s), "%s%s=%s", i ? " " : "", c->keys[i], c->items[i].str);
  return s;
}

static void read_work(reader *rd, const jv *rec, const char *path, bench_rec *r) {
  const jv *w = get_obj(rd, rec, path, "workload"), *s = get_obj(rd, rec, path, "scheme");
  if (!w || !s) return;
  bench_work *k = &r->work;
  r->has_work = true;
  get_str(rd, w, "workload", "op", k->op, sizeof k->op);
  static const char *const counts[] = {"batch", "q_heads", "kv_heads", "head_dim", "q_len",
                                       "seq_len", "position_offset", "window"};
  uint64_t *dst[] = {&k->batch, &k->q_heads, &k->kv_heads, &k->head_dim, &k->q_len,
                     &k->seq_len, &k->position_offset, &k->window};
  for (size_t i = 0; i < 8; i++) get_u64(rd, w, "workload", counts[i], dst[i]);
  get_bool(rd, w, "workload", "causal", &k->causal);
  get_num(rd, w, "workload", "softmax_scale", &k->softmax_scale);
  get_num(rd, w, "workload", "flops", &k->flops);
  get_num(rd, w, "workload", "bytes", &k->bytes);
  get_str(rd, w, "workload", "inputs", k->inputs, sizeof k->inputs);
  get_str(rd, s, "scheme", "plugin", k->scheme, sizeof k->scheme);
  get_str(rd, s, "scheme", "note", k->note, sizeof k->note);
  get_num(rd, s, "scheme", "attention_factor", &k->attention_factor);
}

static uint32_t device_type_of(const char *name) {
  static const char *const names[] = {"unknown", "cpu", "gpu", "accelerator", "other"};
  for (uint32_t i = 1; i <= PE_DEVICE_OTHER; i++)
    if (!strcmp(name, names[i])) return i;
  return 0;
}

static void read_positions(reader *rd, const jv *rec, const char *path, bench_rec *r) {
  const jv *e = get_obj(rd, rec, path, "error_by_position");
  const jv *pos = e ? get_arr(rd, e, "error_by_position", "position") : NULL;
  const jv *err = e ? get_arr(rd, e, "error_by_position", "max_abs_err") : NULL;
  if (!pos || !err) return;
  if (pos->n != err->n) return bad_field(rd, path, "error_by_position", "arrays of one length");
  r->err_pos = calloc(pos->n + 1, sizeof *r->err_pos);
  r->err_max = calloc(pos->n + 1, sizeof *r->err_max);
  if (!r->err_pos || !r->err_max) return bad_field(rd, path, "error_by_position", "memory");
  for (size_t i = 0; i < pos->n; i++) {
    bool num = pos->items[i].type == J_NUM && (err->items[i].type == J_NUM || err->items[i].type == J_NULL);
    if (!num) return bad_field(rd, path, "error_by_position", "numbers");
    r->err_pos[i] = pos->items[i].num;
    r->err_max[i] = err->items[i].type == J_NUM ? err->items[i].num : NAN;
  }
  r->n_err = pos->n;
}

static void read_stats(reader *rd, const jv *o, const char *p, bench_rec *r) {
  const jv *t = get_obj(rd, o, p, "time_ms");
  get_num(rd, t, "time_ms", "min", &r->t_min);
  get_num(rd, t, "time_ms", "median", &r->t_median);
  get_num(rd, t, "time_ms", "max", &r->t_max);
  get_num(rd, o, p, "device_time_ms", &r->device_ms);
  get_num(rd, o, p, "prepare_ms", &r->prepare_ms);
  get_u32(rd, o, p, "warmup", &r->warmup);
  get_u32(rd, o, p, "iterations", &r->iterations);
  get_bool(rd, o, p, "interleaved", &r->interleaved);
  get_num(rd, o, p, "gflops", &r->gflops);
  get_num(rd, o, p, "gbps", &r->gbps);
  get_num(rd, o, p, "max_abs_err", &r->max_abs_err);
  get_num(rd, o, p, "rms_err", &r->rms_err);
  get_num(rd, o, p, "tolerance", &r->tolerance);
  get_bool(rd, o, p, "verified", &r->verified);
  get_u64(rd, o, p, "verified_rows", &r->verified_rows);
  get_u64(rd, o, p, "total_rows", &r->total_rows);
  const jv *roof = get_obj(rd, o, p, "roofline"), *agree = get_obj(rd, o, p, "agreement");
  get_num(rd, roof, "roofline", "fraction_of_peak", &r->frac_peak);
  get_num(rd, roof, "roofline", "fraction_of_bandwidth", &r->frac_bandwidth);
  get_num(rd, agree, "agreement", "max_abs", &r->agree_max_abs);
  get_num(rd, agree, "agreement", "rms", &r->agree_rms);
}

/* "saved_output": {"path": P, "fnv1a64": "16 hex digits"} (absent: none). */
static void read_saved(reader *rd, const jv *rec, const char *path, bench_rec *r) {
  const jv *s = get_obj(rd, rec, path, "saved_output");
  if (!s) return;
  const jv *file = get(s, "path");
  char hash[24] = "", *end;
  get_str(rd, s, "saved_output", "fnv1a64", hash, sizeof hash);
  unsigned long long h = strtoull(hash, &end, 16);
  if (!file || file->type != J_STR || strspn(hash, "0123456789abcdef") != 16 || *end)
    return bad_field(rd, path, "saved_output", "{\"path\": a string, \"fnv1a64\": 16 hex digits}");
  if (!(r->saved_path = strdup(file->str))) return bad_field(rd, path, "saved_output", "memory");
  r->saved_hash = (uint64_t)h;
}

static void read_rec(reader *rd, bench_doc *d, const jv *o, size_t i) {
  char p[48];
  snprintf(p, sizeof p, "results[%zu]", i);
  if (o->type != J_OBJ) return bad_field(rd, "results", p + 7, "an object");
  char *cell = read_cell(rd, o, p);
  bench_rec *r = cell ? bench_doc_add_rec(d, cell) : NULL;
  free(cell);
  if (!r) return bad_field(rd, p, "cell", "memory");
  char type[16] = "";
  get_str(rd, o, p, "backend", r->backend, sizeof r->backend);
  get_str(rd, o, p, "plugin", r->plugin, sizeof r->plugin);
  get_str(rd, o, p, "device", r->device, sizeof r->device);
  get_str(rd, o, p, "device_type", type, sizeof type);
  get_str(rd, o, p, "driver", r->driver, sizeof r->driver);
  get_str(rd, o, p, "details", r->details, sizeof r->details);
  get_str(rd, o, p, "status", r->status, sizeof r->status);
  get_str(rd, o, p, "message", r->message, sizeof r->message);
  r->device_type = device_type_of(type);
  read_stats(rd, o, p, r);
  read_work(rd, o, p, r);
  read_positions(rd, o, p, r);
  read_saved(rd, o, p, r);
  if (!r->backend[0] || !r->status[0]) bad_field(rd, p, "backend and status", "strings");
}

static void read_agree(reader *rd, bench_doc *d, const jv *o) {
  char *cell = o->type == J_OBJ ? read_cell(rd, o, "agreement") : NULL;
  bench_agree *a = cell ? bench_doc_add_agree(d, cell) : NULL;
  free(cell);
  if (!a) return bad_field(rd, "agreement", "[]", "objects");
  get_str(rd, o, "agreement", "a", a->a, sizeof a->a);
  get_str(rd, o, "agreement", "b", a->b, sizeof a->b);
  get_num(rd, o, "agreement", "max_abs", &a->max_abs);
  get_num(rd, o, "agreement", "rms", &a->rms);
  get_num(rd, o, "agreement", "tolerance", &a->tolerance);
  get_bool(rd, o, "agreement", "ok", &a->ok);
}

static void read_gap(reader *rd, bench_doc *d, const jv *o) {
  char *cell = o->type == J_OBJ ? read_cell(rd, o, "not_compared") : NULL;
  bench_gap *g = cell ? bench_doc_add_gap(d, cell) : NULL;
  free(cell);
  if (!g) return bad_field(rd, "not_compared", "[]", "objects");
  get_str(rd, o, "not_compared", "a", g->a, sizeof g->a);
  get_str(rd, o, "not_compared", "b", g->b, sizeof g->b);
  get_str(rd, o, "not_compared", "why", g->why, sizeof g->why);
}

static void read_plugins(reader *rd, bench_machine *m, const jv *list) {
  m->plugins = list && list->n ? calloc(list->n, sizeof *m->plugins) : NULL;
  for (size_t i = 0; m->plugins && i < list->n; i++) {
    const jv *o = &list->items[i];
    bench_plugin *p = &m->plugins[m->n_plugins++];
    get_str(rd, o, "plugins", "name", p->name, sizeof p->name);
    get_str(rd, o, "plugins", "kind", p->kind, sizeof p->kind);
    get_str(rd, o, "plugins", "version", p->version, sizeof p->version);
    get_str(rd, o, "plugins", "path", p->path, sizeof p->path);
    get_u32(rd, o, "plugins", "abi_version", &p->abi);
  }
}

static void read_machine(reader *rd, bench_machine *m, const jv *top) {
  m->peak_gflops = m->copy_gbps = m->memory_bytes = NAN;
  const jv *o = get_obj(rd, top, "", "machine");
  if (!o) return;
  get_str(rd, o, "machine", "cpu", m->cpu, sizeof m->cpu);
  get_str(rd, o, "machine", "os", m->os, sizeof m->os);
  get_str(rd, o, "machine", "compiler", m->compiler, sizeof m->compiler);
  get_str(rd, o, "machine", "libpe_version", m->libpe_version, sizeof m->libpe_version);
  get_str(rd, o, "machine", "created", m->created, sizeof m->created);
  get_u32(rd, o, "machine", "cores", &m->cores);
  get_u32(rd, o, "machine", "abi_version", &m->abi_version);
  get_num(rd, o, "machine", "memory_bytes", &m->memory_bytes);
  const jv *roof = get_obj(rd, o, "machine", "roofline");
  if (roof) {
    m->has_roofline = true;
    get_str(rd, roof, "roofline", "isa", m->isa, sizeof m->isa);
    get_u32(rd, roof, "roofline", "threads", &m->roof_threads);
    get_num(rd, roof, "roofline", "fma_peak_gflops", &m->peak_gflops);
    get_num(rd, roof, "roofline", "copy_gbps", &m->copy_gbps);
  }
  read_plugins(rd, m, get_arr(rd, o, "machine", "plugins"));
}

/* A top-level string member, "" when absent (malloc'd). */
static char *dup_str(reader *rd, const jv *top, const char *key) {
  const jv *v = get(top, key);
  if (v && v->type != J_STR && v->type != J_NULL) bad_field(rd, "", key, "a string");
  return strdup(v && v->type == J_STR ? v->str : "");
}

/* An array of strings (absent: none). */
static void read_strings(reader *rd, const jv *arr, const char *key, char ***out, size_t *n) {
  *out = arr && arr->n ? calloc(arr->n, sizeof **out) : NULL;
  for (size_t i = 0; *out && i < arr->n; i++) {
    if (arr->items[i].type != J_STR) return bad_field(rd, "", key, "strings");
    (*out)[(*n)++] = strdup(arr->items[i].str);
  }
}

static void read_doc(reader *rd, bench_doc *d, const jv *top) {
  char schema[64] = "";
  get_str(rd, top, "", "schema", schema, sizeof schema);
  if (schema[0] && strcmp(schema, BENCH_SCHEMA))
    return bad_field(rd, "", "schema", "\"" BENCH_SCHEMA "\" (a newer pe-bench wrote this file?)");
  const jv *results = get_arr(rd, top, "", "results");
  if (!results) return bad_field(rd, "", "results", "an array of results");
  d->config_name = dup_str(rd, top, "config");
  d->config_text = dup_str(rd, top, "config_text");
  const jv *sweep = get_obj(rd, top, "", "sweep");
  read_strings(rd, sweep ? get_arr(rd, sweep, "sweep", "keys") : NULL, "sweep.keys", &d->keys,
               &d->n_keys);
  read_strings(rd, get_arr(rd, top, "", "overrides"), "overrides", &d->sets, &d->n_sets);
  read_machine(rd, &d->machine, top);
  for (size_t i = 0; rd->rc == 0 && i < results->n; i++) read_rec(rd, d, &results->items[i], i);
  const jv *agree = get_arr(rd, top, "", "agreement");
  for (size_t i = 0; rd->rc == 0 && agree && i < agree->n; i++) read_agree(rd, d, &agree->items[i]);
  const jv *gaps = get_arr(rd, top, "", "not_compared");
  for (size_t i = 0; rd->rc == 0 && gaps && i < gaps->n; i++) read_gap(rd, d, &gaps->items[i]);
}

static char *slurp(const char *path, char *err, size_t err_size) {
  FILE *fp = fopen(path, "rb");
  if (!fp) return snprintf(err, err_size, "%s: cannot open: %s", path, strerror(errno)), NULL;
  char *buf = NULL;
  size_t len = 0, cap = 0, n;
  do {
    if (len + 65536 > cap) {
      char *g = cap + 65536 > MAX_FILE ? NULL : realloc(buf, cap += 65536 + 1);
      if (!g) {
        snprintf(err, err_size, "%s: larger than 256 MiB or out of memory", path);
        free(buf), fclose(fp);
        return NULL;
      }
      buf = g;
    }
    n = fread(buf + len, 1, 65536, fp);
    len += n;
  } while (n > 0);
  bool bad = ferror(fp) || memchr(buf, '\0', len);
  fclose(fp);
  buf[len] = '\0';
  if (bad) snprintf(err, err_size, "%s: read error or a NUL byte: not a JSON document", path);
  return bad ? (free(buf), NULL) : buf;
}

/* Line and column of offset `at` in `text`. */
static void where(const char *text, const char *at, int *line, int *col) {
  *line = 1, *col = 1;
  for (const char *p = text; p < at; p++) *col = *p == '\n' ? (++*line, 1) : *col + 1;
}

int bench_read_json(const char *path, bench_doc *d, char *err, size_t err_size) {
  memset(d, 0, sizeof *d);
  char *text = slurp(path, err, err_size);
  if (!text) return -1;
  jparser ps = {.start = text, .p = text};
  jv top = {0};
  int rc = parse_value(&ps, &top);
  skip_ws(&ps);
  if (rc == 0 && *ps.p) rc = fail(&ps, "text after the document");
  if (rc == 0 && top.type != J_OBJ) rc = fail(&ps, "the document is not an object");
  if (rc) {
    int line, col;
    where(text, ps.p, &line, &col);
    snprintf(err, err_size, "%s:%d:%d: invalid JSON: %s", path, line, col, ps.why);
  } else {
    reader rd = {path, err, err_size, 0};
    read_doc(&rd, d, &top);
    rc = rd.rc;
  }
  jv_free(&top);
  free(text);
  if (rc) bench_doc_free(d);
  return rc;
}
