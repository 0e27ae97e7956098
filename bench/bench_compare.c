/* `pe-bench compare A.json B.json [--threshold PCT]`: two results
 * documents side by side.  Results are matched by (cell, backend), the
 * cell's key=value pairs in any order; the ratio is B's median time over
 * A's.  A regression is a ratio above 1 + threshold (default 5%), or a
 * result that was ok in A and is not in B.  Exit status: 0 without
 * regressions, 1 with some, 2 when a file cannot be read. */
#include "bench.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct side {
  const char *path;
  bench_doc doc;
  char **canon; /* canonical cell of each record */
} side;

static int load(side *s, const char *path) {
  char err[1024];
  s->path = path;
  if (bench_read_json(path, &s->doc, err, sizeof err) != 0) {
    fprintf(stderr, "pe-bench compare: %s\n", err);
    return 2;
  }
  s->canon = calloc(s->doc.n_recs + 1, sizeof *s->canon);
  for (size_t i = 0; s->canon && i < s->doc.n_recs; i++)
    if (!(s->canon[i] = bench_cell_canonical(s->doc.recs[i].cell))) return 2;
  return s->canon ? 0 : 2;
}

static void unload(side *s) {
  for (size_t i = 0; s->canon && i < s->doc.n_recs; i++) free(s->canon[i]);
  free(s->canon);
  bench_doc_free(&s->doc);
}

static long find(const side *s, const char *canon, const char *backend) {
  for (size_t i = 0; i < s->doc.n_recs; i++)
    if (!strcmp(s->canon[i], canon) && !strcmp(s->doc.recs[i].backend, backend)) return (long)i;
  return -1;
}

static void describe(const char *tag, const side *s) {
  const bench_machine *m = &s->doc.machine;
  printf("%s: %s\n   %s, %u CPUs, %s, libpe %s, %s\n", tag, s->path, m->cpu[0] ? m->cpu : "?",
         m->cores, m->os[0] ? m->os : "?", m->libpe_version[0] ? m->libpe_version : "?",
         m->created[0] ? m->created : "undated");
  if (s->doc.n_gaps)
    printf("   %zu pair%s of backends not compared after a --resume (its \"not_compared\")\n",
           s->doc.n_gaps, s->doc.n_gaps == 1 ? "" : "s");
}

static int parse_threshold(const char *t, double *out) {
  char *end;
  double v = strtod(t, &end);
  if (end == t || (*end && strcmp(end, "%")) || !(v >= 0) || !isfinite(v)) {
    fprintf(stderr, "pe-bench compare: --threshold %s: expected a percentage >= 0, e.g. 5 or 5%%\n", t);
    return 2;
  }
  *out = v / 100;
  return 0;
}

/* One matched pair; true when it is a regression. */
static bool row(const bench_rec *a, const bench_rec *b, double threshold, int cw, int bw) {
  double ratio = b->t_median / a->t_median;
  bool was_ok = bench_rec_ok(a), is_ok = bench_rec_ok(b);
  bool slower = was_ok && is_ok && ratio > 1 + threshold;
  bool broke = was_ok && !is_ok;
  char ra[24] = "-", rb[24] = "-", rr[24] = "-";
  if (was_ok) snprintf(ra, sizeof ra, "%.4g", a->t_median);
  if (is_ok) snprintf(rb, sizeof rb, "%.4g", b->t_median);
  if (was_ok && is_ok && isfinite(ratio)) snprintf(rr, sizeof rr, "%.3f", ratio);
  char label[BENCH_LABEL_MAX + 1];
  printf("%-*.*s %-*s %12s %12s %8s", cw, cw, a->cell, bw,
         bench_fit(label, sizeof label, a->backend, bw), ra, rb, rr);
  if (slower) printf("  REGRESSION +%.1f%%", 100 * (ratio - 1));
  else if (broke) printf("  REGRESSION %s -> %s", a->status, b->status);
  else if (!was_ok) printf("  (%s in A)", a->status);
  putchar('\n');
  return slower || broke;
}

static void unmatched(const side *s, const side *other, const char *where, int cw, int bw) {
  char label[BENCH_LABEL_MAX + 1];
  for (size_t i = 0; i < s->doc.n_recs; i++)
    if (find(other, s->canon[i], s->doc.recs[i].backend) < 0)
      printf("%-*.*s %-*s only in %s\n", cw, cw, s->doc.recs[i].cell, bw,
             bench_fit(label, sizeof label, s->doc.recs[i].backend, bw), where);
}

static int cell_width(const side *a) {
  size_t w = 4;
  for (size_t i = 0; i < a->doc.n_recs; i++)
    if (strlen(a->doc.recs[i].cell) > w) w = strlen(a->doc.recs[i].cell);
  return (int)(w > 60 ? 60 : w);
}

/* The backend column: the longest label of either side. */
static int backend_width(const side *a, const side *b) {
  size_t w = 0;
  for (int k = 0; k < 2; k++) {
    const bench_doc *d = k ? &b->doc : &a->doc;
    for (size_t i = 0; i < d->n_recs; i++)
      if (strlen(d->recs[i].backend) > w) w = strlen(d->recs[i].backend);
  }
  return bench_label_width(w, 12);
}

static int compare_sides(side *a, side *b, double threshold) {
  describe("A", a);
  describe("B", b);
  int cw = cell_width(a), bw = backend_width(a, b);
  printf("\n%-*s %-*s %12s %12s %8s\n", cw, "cell", bw, "backend", "A median ms", "B median ms",
         "B/A");
  size_t regressions = 0, matched = 0;
  for (size_t i = 0; i < a->doc.n_recs; i++) {
    long j = find(b, a->canon[i], a->doc.recs[i].backend);
    if (j < 0) continue;
    matched++;
    regressions += row(&a->doc.recs[i], &b->doc.recs[j], threshold, cw, bw);
  }
  unmatched(a, b, "A", cw, bw);
  unmatched(b, a, "B", cw, bw);
  printf("\n%zu matched, %zu regression%s over %.1f%%\n", matched, regressions,
         regressions == 1 ? "" : "s", 100 * threshold);
  return regressions ? 1 : 0;
}

int bench_compare(int argc, char **argv) {
  const char *paths[2];
  size_t n = 0;
  double threshold = 0.05;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--threshold") && i + 1 < argc) {
      if (parse_threshold(argv[++i], &threshold)) return 2;
    } else if (!strncmp(argv[i], "--threshold=", 12)) {
      if (parse_threshold(argv[i] + 12, &threshold)) return 2;
    } else if (argv[i][0] != '-' && n < 2) {
      paths[n++] = argv[i];
    } else {
      fprintf(stderr, "usage: pe-bench compare A.json B.json [--threshold PCT]\n");
      return 2;
    }
  }
  if (n != 2) {
    fprintf(stderr, "usage: pe-bench compare A.json B.json [--threshold PCT]\n");
    return 2;
  }
  side a = {0}, b = {0};
  int rc = load(&a, paths[0]);
  if (rc == 0) rc = load(&b, paths[1]);
  if (rc == 0) rc = compare_sides(&a, &b, threshold);
  unload(&a);
  unload(&b);
  return rc;
}
