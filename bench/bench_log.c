/* The messages plugins log during a pe-bench run, each printed once per
 * cell.  A scheme's compute runs three times for a cell: when every cell is
 * checked before the first run, then when the cell runs (pe_sweep_cell
 * checks it again, pe_workload_build derives its tables).  The warnings are
 * printed when the cells are checked, before any run (so --dry-run shows
 * them too), and the same messages are dropped when the cell is built
 * again; a message only the build logs is printed once. */
#include "bench.h"

#include <stdlib.h>
#include <string.h>

struct bench_seen {
  size_t cell;
  uint64_t hash;
};

/* FNV-1a 64 of the level, origin and message. */
static uint64_t message_hash(int level, const char *origin, const char *message) {
  uint64_t h = 0xcbf29ce484222325u;
  const unsigned char lv = (unsigned char)level;
  const unsigned char *parts[] = {&lv, (const unsigned char *)(origin ? origin : ""),
                                  (const unsigned char *)message};
  const size_t lens[] = {1, strlen((const char *)parts[1]) + 1, strlen(message)};
  for (size_t p = 0; p < 3; p++)
    for (size_t i = 0; i < lens[p]; i++) h = (h ^ parts[p][i]) * 0x100000001b3u;
  return h;
}

/* The checked pass sees the cells in order, so `checked` is sorted by cell. */
static bool was_checked(const bench_log *lg, uint64_t hash) {
  size_t lo = 0, hi = lg->n_checked;
  while (lo < hi) { /* the first entry of the cell */
    size_t mid = lo + (hi - lo) / 2;
    if (lg->checked[mid].cell < lg->cell) lo = mid + 1;
    else hi = mid;
  }
  for (size_t i = lo; i < lg->n_checked && lg->checked[i].cell == lg->cell; i++)
    if (lg->checked[i].hash == hash) return true;
  return false;
}

static bool was_built(const bench_log *lg, uint64_t hash) {
  for (size_t i = 0; i < lg->n_built; i++)
    if (lg->built[i].hash == hash) return true;
  return false;
}

/* Remember a message printed for the current cell (without memory, it may
 * print again: no harm). */
static void remember(struct bench_seen **v, size_t *n, size_t *cap, size_t cell, uint64_t hash) {
  if (*n == *cap) {
    size_t c = *cap ? 2 * *cap : 16;
    struct bench_seen *g = realloc(*v, c * sizeof *g);
    if (!g) return;
    *v = g, *cap = c;
  }
  (*v)[(*n)++] = (struct bench_seen){cell, hash};
}

static void print(const bench_log *lg, int level, const char *origin, const char *message) {
  const char *what = level <= PE_LOG_ERROR ? "error" : level == PE_LOG_WARN ? "warning" : "note";
  const char *cell = lg && lg->phase != BENCH_LOG_SETUP && lg->label ? lg->label : "";
  if (lg && lg->progress) fputs("\r\033[K", stderr);
  /* libpe's own format, with the cell of a sweep */
  fprintf(stderr, "libpe: %s: %s: %s%s%s\n", what, origin ? origin : "core", cell,
          cell[0] ? ": " : "", message);
}

static void on_log(void *user, int level, const char *origin, const char *message) {
  bench_log *lg = user;
  if (!lg || (lg->phase != BENCH_LOG_CHECK && lg->phase != BENCH_LOG_BUILD)) {
    print(lg, level, origin, message);
    return;
  }
  uint64_t h = message_hash(level, origin, message);
  if (lg->phase == BENCH_LOG_CHECK) {
    remember(&lg->checked, &lg->n_checked, &lg->cap_checked, lg->cell, h);
  } else {
    if (was_checked(lg, h) || was_built(lg, h)) return;
    remember(&lg->built, &lg->n_built, &lg->cap_built, lg->cell, h);
  }
  print(lg, level, origin, message);
}

void bench_log_attach(pe_ctx *ctx, bench_log *lg) { pe_ctx_set_log(ctx, on_log, lg); }

void bench_log_phase(bench_log *lg, int phase, size_t cell, const char *label) {
  if (phase == BENCH_LOG_BUILD && (lg->phase != BENCH_LOG_BUILD || lg->cell != cell))
    lg->n_built = 0; /* a new cell */
  lg->phase = phase;
  lg->cell = cell;
  lg->label = label;
}

void bench_log_detach(pe_ctx *ctx, bench_log *lg) {
  pe_ctx_set_log(ctx, on_log, NULL); /* plain printing: lg is about to go */
  free(lg->checked);
  free(lg->built);
  memset(lg, 0, sizeof *lg);
}
