/* Replay driver for a fuzz target without libFuzzer: calls the target's
 * LLVMFuzzerTestOneInput on every seed and every crash regression input,
 * and prints TAP (one line per regression input, one per seed set), so
 * `make check` keeps every input that ever crashed libpe from crashing it
 * again, under gcc as well as under the sanitizer build.
 *
 *   replay-TARGET                 seeds + tests/fuzz/regressions/TARGET/
 *   replay-TARGET FILE|DIR...     just these inputs (e.g. a crash-* file)
 *
 * Options starting with "--" are ignored (the test harness passes --tap).
 * Sources are found under $PE_TEST_SRCDIR (else the configured srcdir).
 * The seed sets per target are the ones tests/fuzz/run.sh starts from. */
#include "fuzz_common.h"

#include <dirent.h>
#include <errno.h>
#include <stdbool.h>

#ifndef PE_FUZZ_TARGET
#error "define PE_FUZZ_TARGET (config, npy or sweep)"
#endif

typedef struct list {
  char **v;
  size_t n;
} list;

static void add(list *l, const char *path) {
  char **g = realloc(l->v, (l->n + 1) * sizeof *g);
  if (!g || !(g[l->n] = strdup(path))) fuzz_die("out of memory");
  l->v = g;
  l->n++;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static bool has_suffix(const char *s, const char *suffix) {
  size_t n = strlen(s), m = strlen(suffix);
  return n >= m && !strcmp(s + n - m, suffix);
}

/* Regular files under `dir` (recursively) whose name ends in `suffix` ("" =
 * any), skipping dot files and README*. */
static void collect(list *l, const char *dir, const char *suffix) {
  DIR *d = opendir(dir);
  if (!d) return;
  for (struct dirent *e; (e = readdir(d));) {
    if (e->d_name[0] == '.' || !strncmp(e->d_name, "README", 6)) continue;
    char path[8192];
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    struct stat st;
    if (stat(path, &st) != 0) continue;
    if (S_ISDIR(st.st_mode)) collect(l, path, suffix);
    else if (S_ISREG(st.st_mode) && has_suffix(e->d_name, suffix)) add(l, path);
  }
  closedir(d);
}

static void replay(const char *path) {
  FILE *fp = fopen(path, "rb");
  if (!fp) fuzz_die("%s: %s", path, strerror(errno));
  uint8_t *buf = NULL;
  size_t n = 0, cap = 0;
  for (;;) {
    if (n == cap && !(buf = realloc(buf, cap = cap ? 2 * cap : 65536))) fuzz_die("out of memory");
    size_t got = fread(buf + n, 1, cap - n, fp);
    n += got;
    if (got == 0) break;
  }
  fclose(fp);
  fprintf(stderr, "replay %s (%zu bytes)\n", path, n);
  LLVMFuzzerTestOneInput(buf, n);
  free(buf);
}

static int test_no;

static void replay_set(const char *what, list *l) {
  if (l->n) qsort(l->v, l->n, sizeof *l->v, cmp_str);
  for (size_t i = 0; i < l->n; i++) replay(l->v[i]);
  printf("ok %d - %s: %zu inputs\n", ++test_no, what, l->n);
  fflush(stdout);
  for (size_t i = 0; i < l->n; i++) free(l->v[i]);
  free(l->v);
  *l = (list){0};
}

int main(int argc, char **argv) {
  LLVMFuzzerInitialize(&argc, &argv);
  list l = {0};
  int explicit = 0;
  for (int i = 1; i < argc; i++) {
    if (!strncmp(argv[i], "--", 2)) continue;
    struct stat st;
    if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode)) collect(&l, argv[i], "");
    else add(&l, argv[i]);
    explicit = 1;
  }
  if (explicit) {
    printf("1..1\n");
    replay_set("given inputs", &l);
    return 0;
  }
  const char *src = getenv("PE_TEST_SRCDIR");
  if (!src || !src[0]) src = PE_FUZZ_SRCDIR;
  char dir[8192];
  /* Regressions: one TAP line each, so a log names the input. */
  list reg = {0};
  snprintf(dir, sizeof dir, "%s/tests/fuzz/regressions/%s", src, PE_FUZZ_TARGET);
  collect(&reg, dir, "");
  if (reg.n) qsort(reg.v, reg.n, sizeof *reg.v, cmp_str);
  printf("1..%zu\n", reg.n + 1);
  for (size_t i = 0; i < reg.n; i++) {
    replay(reg.v[i]);
    printf("ok %d - regression %s\n", ++test_no, strrchr(reg.v[i], '/') + 1);
    fflush(stdout);
    free(reg.v[i]);
  }
  free(reg.v);
  /* Seeds. */
  snprintf(dir, sizeof dir, "%s/tests/fuzz/seeds/%s", src, PE_FUZZ_TARGET);
  collect(&l, dir, "");
  if (!strcmp(PE_FUZZ_TARGET, "config") || !strcmp(PE_FUZZ_TARGET, "sweep")) {
    snprintf(dir, sizeof dir, "%s/configs", src);
    collect(&l, dir, ".ini");
    snprintf(dir, sizeof dir, "%s/tests/golden", src);
    collect(&l, dir, ".ini");
  } else if (!strcmp(PE_FUZZ_TARGET, "npy")) {
    snprintf(dir, sizeof dir, "%s/tests/golden", src);
    collect(&l, dir, ".npy");
  }
  replay_set("seed corpus", &l);
  return 0;
}
