/* The needle INI (configs/needle/NAME.ini, docs/NEEDLE.md "Config") and the
 * model.ini of a saved model, which uses the same sections.  Every key is
 * known; anything else is an error with its file and line. */
#include "needle.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

void nd_config_defaults(nd_config *c) {
  memset(c, 0, sizeof *c);
  c->arch = (nd_arch){.vocab = 32, .d_model = 64, .layers = 2, .heads = 4, .head_dim = 16,
                      .d_ff = 256};
  c->task = (nd_taskcfg){.keys = 8};
  c->train = (nd_traincfg){.scheme = "rope", .seq_len = 128, .min_len = 40, .curriculum = 0.5,
                           .steps = 1500, .batch = 32, .warmup = 50, .distractors = 3,
                           .repeats = 2, .lr = 5e-3, .min_lr = 3e-4,
                           .weight_decay = 0.1, .grad_clip = 1.0, .seed = 1};
  c->finetune = c->train;
  c->finetune.steps = 0;
  c->finetune.min_lr = 1e-4;
  c->finetune.min_len = 0;
  c->finetune.curriculum = 0;
  c->finetune.seq_len = 512;
  c->finetune.batch = 8;
  c->finetune.warmup = 10;
  c->finetune.lr = 1e-3;
  c->finetune.seed = 2;
  nd_evalcfg *e = &c->eval;
  snprintf(e->schemes[0], sizeof e->schemes[0], "rope");
  e->n_schemes = 1;
  const double mult[] = {1, 2, 4, 8, 16};
  for (uint32_t i = 0; i < 5; i++) e->lengths[i] = mult[i];
  e->n_lengths = 5;
  for (uint32_t i = 0; i <= 10; i++) e->depths[i] = 10.0 * i;
  e->n_depths = 11;
  e->trials = 100;
  e->distractors = 0;
  e->batch_tokens = 16384;
  e->seed = 7;
  e->threshold = 0.8;
  snprintf(e->backends[0], sizeof e->backends[0], "openmp");
  e->n_backends = 1;
}

void nd_config_free(nd_config *c) {
  for (uint32_t i = 0; i < c->n_sec; i++) free(c->sec[i].text);
  c->n_sec = 0;
}

const char *nd_scheme_lines(const nd_config *c, const char *name) {
  for (uint32_t i = 0; i < c->n_sec; i++)
    if (!strcmp(c->sec[i].name, name)) return c->sec[i].text;
  return "";
}

typedef struct parse_state {
  nd_config *c;
  char *err;
  size_t errlen;
  int failed;
  int lineno_hint;
} parse_state;

static int fail(parse_state *s, const char *sec, const char *key, const char *val,
                const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static int fail(parse_state *s, const char *sec, const char *key, const char *val,
                const char *fmt, ...) {
  if (s->failed) return 0;
  s->failed = 1;
  char why[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why, sizeof why, fmt, ap);
  va_end(ap);
  snprintf(s->err, s->errlen, "[%s] %s = %s: %s", sec, key, val, why);
  return 0;
}

static int get_u32(const char *v, double lo, double hi, uint32_t *out) {
  char *end;
  errno = 0;
  double d = strtod(v, &end);
  if (errno || end == v || *end || d < lo || d > hi || d != floor(d)) return -1;
  *out = (uint32_t)d;
  return 0;
}

static int get_u64(const char *v, uint64_t *out) {
  char *end;
  errno = 0;
  unsigned long long u = strtoull(v, &end, 10);
  if (errno || end == v || *end || v[0] == '-') return -1;
  *out = u;
  return 0;
}

static int get_num(const char *v, double lo, double hi, double *out) {
  char *end;
  errno = 0;
  double d = strtod(v, &end);
  if (errno || end == v || *end || !(d >= lo && d <= hi)) return -1;
  *out = d;
  return 0;
}

/* Space-separated numbers. */
static int get_list(const char *v, double lo, double hi, double *out, uint32_t cap,
                    uint32_t *n) {
  *n = 0;
  const char *p = v;
  while (*p) {
    while (isspace((unsigned char)*p) || *p == ',') p++;
    if (!*p) break;
    char *end;
    double d = strtod(p, &end);
    if (end == p || !(d >= lo && d <= hi) || *n >= cap) return -1;
    if (*end && !isspace((unsigned char)*end) && *end != ',') return -1;
    out[(*n)++] = d;
    p = end;
  }
  return *n ? 0 : -1;
}

static int get_words(const char *v, char (*out)[64], uint32_t cap, uint32_t *n) {
  *n = 0;
  const char *p = v;
  while (*p) {
    while (isspace((unsigned char)*p) || *p == ',') p++;
    if (!*p) break;
    size_t l = 0;
    while (p[l] && !isspace((unsigned char)p[l]) && p[l] != ',') l++;
    if (l >= 64 || *n >= cap) return -1;
    memcpy(out[*n], p, l);
    out[*n][l] = '\0';
    (*n)++;
    p += l;
  }
  return *n ? 0 : -1;
}

static int valid_name(const char *s) {
  if (!*s) return 0;
  for (; *s; s++)
    if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_' && *s != '.') return 0;
  return 1;
}

static int train_key(parse_state *s, const char *sec, nd_traincfg *t, const char *k,
                     const char *v) {
#define U32(name, lo, hi)                                                                  \
  if (!strcmp(k, #name))                                                                   \
    return get_u32(v, lo, hi, &t->name)                                                    \
               ? fail(s, sec, k, v, "expected an integer in [%g, %g]", (double)(lo),       \
                      (double)(hi))                                                        \
               : 1;
#define NUM(name, lo, hi)                                                                  \
  if (!strcmp(k, #name))                                                                   \
    return get_num(v, lo, hi, &t->name)                                                    \
               ? fail(s, sec, k, v, "expected a number in [%g, %g]", (double)(lo),         \
                      (double)(hi))                                                        \
               : 1;
  if (!strcmp(k, "scheme")) {
    if (!valid_name(v) || strlen(v) >= sizeof t->scheme)
      return fail(s, sec, k, v, "expected a scheme plugin name (rope, sinusoidal, alibi, none, ...)");
    snprintf(t->scheme, sizeof t->scheme, "%s", v);
    return 1;
  }
  U32(seq_len, 4, 1 << 20)
  U32(min_len, 0, 1 << 20)
  U32(steps, 0, 1e8)
  U32(batch, 1, 65536)
  U32(warmup, 0, 1e8)
  U32(distractors, 0, 63)
  U32(repeats, 0, 3)
  NUM(lr, 0, 10)
  NUM(min_lr, 0, 10)
  NUM(weight_decay, 0, 10)
  NUM(grad_clip, 0, 1e9)
  NUM(curriculum, 0, 1)
  if (!strcmp(k, "seed"))
    return get_u64(v, &t->seed) ? fail(s, sec, k, v, "expected an integer >= 0") : 1;
#undef U32
#undef NUM
  return fail(s, sec, k, v, "unknown key (accepted: scheme seq_len min_len curriculum steps batch "
              "warmup distractors repeats lr min_lr weight_decay grad_clip seed)");
}

static int handler(void *user, const char *sec, const char *k, const char *v) {
  parse_state *s = user;
  nd_config *c = s->c;
  if (s->failed) return 1; /* report the first error only */
  if (!strcmp(sec, "model")) {
    uint32_t *f = NULL;
    double lo = 1, hi = 65536;
    if (!strcmp(k, "vocab")) f = &c->arch.vocab, lo = 4;
    else if (!strcmp(k, "d_model")) f = &c->arch.d_model;
    else if (!strcmp(k, "layers")) f = &c->arch.layers, hi = 64;
    else if (!strcmp(k, "heads")) f = &c->arch.heads, hi = 256;
    else if (!strcmp(k, "head_dim")) f = &c->arch.head_dim, lo = 2, hi = 1024;
    else if (!strcmp(k, "d_ff")) f = &c->arch.d_ff;
    else
      return fail(s, sec, k, v, "unknown key (accepted: vocab d_model layers heads head_dim d_ff)");
    return get_u32(v, lo, hi, f) ? fail(s, sec, k, v, "expected an integer in [%g, %g]", lo, hi)
                                 : 1;
  }
  if (!strcmp(sec, "task")) {
    if (strcmp(k, "keys")) return fail(s, sec, k, v, "unknown key (accepted: keys)");
    return get_u32(v, 2, 65536, &c->task.keys) ? fail(s, sec, k, v, "expected an integer >= 2") : 1;
  }
  if (!strcmp(sec, "train")) return train_key(s, sec, &c->train, k, v);
  if (!strcmp(sec, "finetune")) return train_key(s, sec, &c->finetune, k, v);
  if (!strcmp(sec, "eval")) {
    nd_evalcfg *e = &c->eval;
    if (!strcmp(k, "schemes"))
      return get_words(v, e->schemes, ND_MAX_SCHEMES, &e->n_schemes)
                 ? fail(s, sec, k, v, "expected 1..%d scheme names", ND_MAX_SCHEMES) : 1;
    if (!strcmp(k, "backends") || !strcmp(k, "backend"))
      return get_words(v, e->backends, ND_MAX_BACKENDS, &e->n_backends)
                 ? fail(s, sec, k, v, "expected 1..%d backend names", ND_MAX_BACKENDS) : 1;
    if (!strcmp(k, "lengths"))
      return get_list(v, 0.01, 1 << 16, e->lengths, ND_MAX_LENGTHS, &e->n_lengths)
                 ? fail(s, sec, k, v, "expected 1..%d positive multiples of L_train",
                        ND_MAX_LENGTHS) : 1;
    if (!strcmp(k, "depths"))
      return get_list(v, 0, 100, e->depths, ND_MAX_DEPTHS, &e->n_depths)
                 ? fail(s, sec, k, v, "expected 1..%d percentages in [0, 100]", ND_MAX_DEPTHS) : 1;
    if (!strcmp(k, "trials"))
      return get_u32(v, 1, 1e7, &e->trials) ? fail(s, sec, k, v, "expected an integer >= 1") : 1;
    if (!strcmp(k, "distractors"))
      return get_u32(v, 0, 64, &e->distractors) ? fail(s, sec, k, v, "expected 0..64") : 1;
    if (!strcmp(k, "batch_tokens"))
      return get_u32(v, 1, 1 << 26, &e->batch_tokens) ? fail(s, sec, k, v, "expected an integer >= 1") : 1;
    if (!strcmp(k, "seed"))
      return get_u64(v, &e->seed) ? fail(s, sec, k, v, "expected an integer >= 0") : 1;
    if (!strcmp(k, "threshold"))
      return get_num(v, 0, 1, &e->threshold) ? fail(s, sec, k, v, "expected a number in [0, 1]") : 1;
    if (!strcmp(k, "model")) {
      int n = v[0] == '/' || !c->dir[0] ? snprintf(e->model, sizeof e->model, "%s", v)
                                         : snprintf(e->model, sizeof e->model, "%s/%s", c->dir, v);
      return n < 0 || (size_t)n >= sizeof e->model ? fail(s, sec, k, v, "path too long") : 1;
    }
    return fail(s, sec, k, v, "unknown key (accepted: schemes backends lengths depths trials "
                "distractors batch_tokens seed threshold model)");
  }
  if (!strncmp(sec, "scheme.", 7)) {
    const char *name = sec + 7;
    if (!valid_name(name) || strlen(name) >= 64)
      return fail(s, sec, k, v, "bad scheme section name");
    if (!strcmp(k, "plugin"))
      return fail(s, sec, k, v, "the plugin is the section's name; write [scheme.NAME]");
    nd_schemesec *ss = NULL;
    for (uint32_t i = 0; i < c->n_sec; i++)
      if (!strcmp(c->sec[i].name, name)) ss = &c->sec[i];
    if (!ss) {
      if (c->n_sec >= ND_MAX_SCHEMES) return fail(s, sec, k, v, "too many [scheme.*] sections");
      ss = &c->sec[c->n_sec++];
      snprintf(ss->name, sizeof ss->name, "%s", name);
      ss->text = calloc(1, 1);
    }
    size_t old = strlen(ss->text), add = strlen(k) + strlen(v) + 5;
    char *t = realloc(ss->text, old + add);
    if (!t) return fail(s, sec, k, v, "out of memory");
    snprintf(t + old, add, "%s = %s\n", k, v);
    ss->text = t;
    return 1;
  }
  if (!strcmp(sec, "record")) {
    size_t old = strlen(c->record);
    snprintf(c->record + old, sizeof c->record - old, "%s = %s\n", k, v);
    return 1;
  }
  return fail(s, sec, k, v, "unknown section (accepted: model task train finetune eval "
              "scheme.NAME record)");
}

int nd_config_load(const char *path, nd_config *c, char *err, size_t errlen) {
  snprintf(c->path, sizeof c->path, "%s", path);
  snprintf(c->dir, sizeof c->dir, "%s", path);
  char *slash = strrchr(c->dir, '/');
  if (slash) *slash = '\0';
  else snprintf(c->dir, sizeof c->dir, ".");
  char why[1024] = "";
  parse_state s = {.c = c, .err = why, .errlen = sizeof why};
  FILE *fp = fopen(path, "r");
  if (!fp) {
    snprintf(err, errlen, "%s: %s", path, strerror(errno));
    return 2;
  }
  int line = ini_parse_file(fp, handler, &s);
  fclose(fp);
  if (line != 0 || s.failed) {
    if (s.failed) snprintf(err, errlen, "%s:%d: %s", path, line > 0 ? line : 0, why);
    else snprintf(err, errlen, "%s:%d: syntax error", path, line);
    return 2;
  }
  return nd_config_check(c, err, errlen);
}

int nd_config_check(const nd_config *c, char *err, size_t errlen) {
  const nd_arch *a = &c->arch;
  if (1 + c->task.keys + 2 > a->vocab) {
    snprintf(err, errlen, "%s: [task] keys %u + BOS leave fewer than 2 filler tokens in "
             "vocab %u", c->path, c->task.keys, a->vocab);
    return 2;
  }
  if (c->train.distractors + 1 > c->task.keys || c->eval.distractors + 1 > c->task.keys) {
    snprintf(err, errlen, "%s: distractors need distinct keys: at most [task] keys - 1 = %u",
             c->path, c->task.keys - 1);
    return 2;
  }
  /* room for every pair: each blocks at most 3 of the len - 3 starts */
  uint32_t need = 6 + 3 * (c->train.distractors > c->eval.distractors ? c->train.distractors
                                                                      : c->eval.distractors);
  /* training: every mention of every pair */
  const nd_traincfg *tr[2] = {&c->train, &c->finetune};
  for (int i = 0; i < 2; i++) {
    uint32_t pairs = (1 + tr[i]->distractors) * (1 + tr[i]->repeats);
    uint32_t shortest = tr[i]->min_len ? tr[i]->min_len : tr[i]->seq_len;
    if ((i == 0 || c->finetune.steps) && (shortest < 4 + 3 * pairs || shortest > tr[i]->seq_len)) {
      snprintf(err, errlen, "%s: [%s] min_len %u / seq_len %u: every length needs room for %u "
               "pairs (distractors and repeats), so >= %u, and min_len <= seq_len", c->path,
               i ? "finetune" : "train", tr[i]->min_len, tr[i]->seq_len, pairs, 4 + 3 * pairs);
      return 2;
    }
  }
  if (c->train.seq_len < need || (c->finetune.steps && c->finetune.seq_len < need)) {
    snprintf(err, errlen, "%s: seq_len must be >= %u (BOS, the pairs and the query)", c->path,
             need);
    return 2;
  }
  for (uint32_t i = 0; i < c->eval.n_lengths; i++) {
    double L = c->eval.lengths[i] * c->train.seq_len;
    if (L < need || L != floor(L)) {
      snprintf(err, errlen, "%s: [eval] lengths: %g x L_train = %g is not an integer length "
               ">= %u", c->path, c->eval.lengths[i], L, need);
      return 2;
    }
  }
  return 0;
}
