/* Results documents in memory: records, agreement pairs, cells. */
#include "bench.h"
#include "json_write.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Grow an array of `size`-byte items to hold one more. */
static void *grow(void *items, size_t *cap, size_t n, size_t size) {
  if (n < *cap) return items;
  size_t c = *cap ? 2 * *cap : 16;
  void *g = realloc(items, c * size);
  if (!g) return NULL;
  *cap = c;
  return g;
}

void bench_rec_init(bench_rec *r) {
  memset(r, 0, sizeof *r);
  r->device_ms = r->frac_peak = r->frac_bandwidth = NAN;
  r->agree_max_abs = r->agree_rms = NAN;
}

bench_rec *bench_doc_add_rec(bench_doc *d, const char *cell) {
  bench_rec *g = grow(d->recs, &d->cap_recs, d->n_recs, sizeof *g);
  if (!g) return NULL;
  d->recs = g;
  bench_rec *r = &g[d->n_recs];
  bench_rec_init(r);
  if (!(r->cell = strdup(cell))) return NULL;
  d->n_recs++;
  return r;
}

bench_agree *bench_doc_add_agree(bench_doc *d, const char *cell) {
  bench_agree *g = grow(d->agree, &d->cap_agree, d->n_agree, sizeof *g);
  if (!g) return NULL;
  d->agree = g;
  bench_agree *a = &g[d->n_agree];
  memset(a, 0, sizeof *a);
  if (!(a->cell = strdup(cell))) return NULL;
  d->n_agree++;
  return a;
}

bench_gap *bench_doc_add_gap(bench_doc *d, const char *cell) {
  bench_gap *g = grow(d->gaps, &d->cap_gaps, d->n_gaps, sizeof *g);
  if (!g) return NULL;
  d->gaps = g;
  bench_gap *a = &g[d->n_gaps];
  memset(a, 0, sizeof *a);
  if (!(a->cell = strdup(cell))) return NULL;
  d->n_gaps++;
  return a;
}

uint64_t bench_hash(const float *v, size_t n) {
  uint64_t h = 0xcbf29ce484222325u;
  const unsigned char *p = (const unsigned char *)v;
  for (size_t i = 0; i < n * sizeof *v; i++) h = (h ^ p[i]) * 0x100000001b3u;
  return h;
}

void bench_doc_free(bench_doc *d) {
  for (size_t i = 0; i < d->n_recs; i++) {
    free(d->recs[i].cell);
    free(d->recs[i].err_pos);
    free(d->recs[i].err_max);
    free(d->recs[i].saved_path);
  }
  for (size_t i = 0; i < d->n_agree; i++) free(d->agree[i].cell);
  for (size_t i = 0; i < d->n_gaps; i++) free(d->gaps[i].cell);
  free(d->gaps);
  for (size_t i = 0; i < d->n_keys; i++) free(d->keys[i]);
  for (size_t i = 0; i < d->n_sets; i++) free(d->sets[i]);
  free(d->keys);
  free(d->sets);
  free(d->recs);
  free(d->agree);
  free(d->config_name);
  free(d->config_text);
  bench_machine_free(&d->machine);
  memset(d, 0, sizeof *d);
}

bench_rec *bench_doc_find(const bench_doc *d, const char *cell, const char *backend) {
  for (size_t i = 0; i < d->n_recs; i++)
    if (!strcmp(d->recs[i].cell, cell) && !strcmp(d->recs[i].backend, backend)) return &d->recs[i];
  return NULL;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

char *bench_cell_canonical(const char *cell) {
  char *copy = strdup(cell), *out = calloc(1, strlen(cell) + 1);
  char **pairs = calloc(strlen(cell) / 2 + 2, sizeof *pairs);
  size_t n = 0;
  if (!copy || !out || !pairs) {
    free(copy), free(out), free(pairs);
    return NULL;
  }
  for (char *save = NULL, *t = strtok_r(copy, " ", &save); t; t = strtok_r(NULL, " ", &save))
    pairs[n++] = t;
  qsort(pairs, n, sizeof *pairs, cmp_str);
  for (size_t i = 0; i < n; i++) {
    if (i) strcat(out, " ");
    strcat(out, pairs[i]);
  }
  free(pairs);
  free(copy);
  return out;
}

bool bench_rec_ok(const bench_rec *r) { return !strcmp(r->status, "ok"); }

/* `msg` without the "PLUGIN: " and "STATUS: " it may already start with
 * (libpe prefixes the plugin's name, backends say "unsupported: no device
 * ..."), so that "LABEL: STATUS: reason" says each once. */
const char *bench_reason(const char *plugin, const char *status, const char *msg) {
  const char *skip[2] = {plugin, status};
  for (int i = 0; i < 2; i++) {
    size_t n = strlen(skip[i]);
    if (n && !strncmp(msg, skip[i], n) && msg[n] == ':' && msg[n + 1] == ' ') msg += n + 2;
  }
  return msg;
}

/* Whether a record makes the run fail: failed, not verified within the
 * tolerance, disagreeing with another backend, or (when the backend was
 * asked for by name) unsupported. */
bool bench_rec_failed(const bench_rec *r, bool unsupported_fails) {
  if (!strcmp(r->status, "unsupported")) return unsupported_fails;
  if (!bench_rec_ok(r)) return true;
  return !(isnan(r->agree_max_abs) || r->agree_max_abs <= r->tolerance);
}

const char *bench_num(char *buf, size_t size, double v, const char *missing) {
  return pe_json_digits(buf, size, v, missing);
}
