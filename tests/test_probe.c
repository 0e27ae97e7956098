/* pe-probe: each probe run as a subprocess (the CLI is the contract) and
 * its numbers checked against golden data or brute-force float64.
 *
 * Environment (set by the harness): PE_TEST_BUILDDIR (bench/pe-probe),
 * PE_TEST_SRCDIR (configs/), PE_GOLDEN_DIR, PE_PLUGIN_PATH. */
#include <criterion/criterion.h>

#include <dirent.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- running pe-probe ---------------------------------------------------- */
typedef struct proc {
  int status;
  char *out, *err;
} proc;

static char *slurp(FILE *fp) {
  size_t cap = 1 << 16, len = 0;
  char *buf = malloc(cap);
  for (size_t n; buf && (n = fread(buf + len, 1, cap - len - 1, fp)) > 0;) {
    len += n;
    if (cap - len < 2) buf = realloc(buf, cap *= 2);
  }
  if (buf) buf[len] = '\0';
  return buf;
}

static const char *dir_env(const char *name, const char *dflt) {
  const char *d = getenv(name);
  return d && *d ? d : dflt;
}

/* Run `pe-probe ARGS` (ARGS shell-quoted by the caller) in directory `cwd`
 * (NULL: the test's). */
static proc vprobe(const char *cwd, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
static proc vprobe(const char *cwd, const char *fmt, va_list ap) {
  char args[2048], cmd[4096], errpath[] = "/tmp/pe-probe-test-XXXXXX";
  cr_assert_lt(vsnprintf(args, sizeof args, fmt, ap), (int)sizeof args);
  int fd = mkstemp(errpath);
  cr_assert_geq(fd, 0);
  close(fd);
  /* The Vulkan loader unloads its driver (lavapipe) on vkDestroyInstance,
   * so LeakSanitizer sees the driver's never-freed globals as leaks of an
   * unknown module it cannot suppress by name: no leak check for processes
   * that use a GPU-API driver (addressability is still checked). */
  const char *no_lsan = strstr(args, "--backend vulkan") || strstr(args, "--backend opencl")
                            ? "ASAN_OPTIONS=\"${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0\" "
                            : "";
  cr_assert_lt(snprintf(cmd, sizeof cmd, "%s%s%s%s%s/bench/pe-probe %s 2>%s", cwd ? "cd '" : "", cwd ? cwd : "",
                        cwd ? "' && " : "", no_lsan, dir_env("PE_TEST_BUILDDIR", "."), args, errpath),
               (int)sizeof cmd);
  FILE *fp = popen(cmd, "r");
  cr_assert_not_null(fp, "%s", cmd);
  proc p = {0};
  p.out = slurp(fp);
  int st = pclose(fp);
  p.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  FILE *ef = fopen(errpath, "r");
  p.err = ef ? slurp(ef) : strdup("");
  if (ef) fclose(ef);
  for (size_t n = strlen(p.err); n && p.err[n - 1] == '\n';) p.err[--n] = '\0';
  unlink(errpath);
  return p;
}

__attribute__((format(printf, 1, 2))) static proc probe(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  proc p = vprobe(NULL, fmt, ap);
  va_end(ap);
  return p;
}

__attribute__((format(printf, 2, 3))) static proc probe_in(const char *cwd, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  proc p = vprobe(cwd, fmt, ap);
  va_end(ap);
  return p;
}

static void proc_free(proc *p) { free(p->out), free(p->err); }

static const char *config(const char *name) {
  static char path[8][4096];
  static int k;
  char *p = path[k++ % 8];
  snprintf(p, 4096, "%s/configs/%s", dir_env("PE_TEST_SRCDIR", "."), name);
  return p;
}

/* A config written to a temporary file (removed by the caller). */
static char *temp_config(const char *text) {
  char *path = strdup("/tmp/pe-probe-test-XXXXXX.ini");
  int fd = mkstemps(path, 4);
  cr_assert_geq(fd, 0);
  cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
  close(fd);
  return path;
}

/* ---- CSV ----------------------------------------------------------------- */
typedef struct csv {
  char header[1024];
  size_t rows, cols;
  char *cell[4096][16];
} csv;

/* One RFC 4180 field at *p (quoted: quotes doubled, newlines kept); *p
 * moves past it and its separator; *last: it ended the record. */
static char *csv_field(const char **p, int *last) {
  const char *s = *p;
  char *f;
  if (*s != '"') {
    size_t n = strcspn(s, ",\n");
    f = strndup(s, n), s += n;
  } else {
    f = calloc(strlen(s), 1);
    size_t n = 0;
    for (s++; *s && (*s != '"' || s[1] == '"'); s++) f[n++] = *s == '"' ? *++s : *s;
    s += *s == '"';
  }
  *last = *s != ',';
  *p = s + (*s != '\0');
  return f;
}

static csv *csv_parse(const char *text) {
  csv *c = calloc(1, sizeof *c);
  const char *nl = strchr(text, '\n');
  cr_assert_not_null(nl, "no CSV header in:\n%s", text);
  snprintf(c->header, sizeof c->header, "%.*s", (int)(nl - text), text);
  const char *p = text;
  for (int last = 0; !last; c->cols++) free(csv_field(&p, &last));
  for (; *p && c->rows < 4096; c->rows++) {
    size_t k = 0;
    for (int last = 0; !last;) {
      char *f = csv_field(&p, &last);
      if (k < 16) c->cell[c->rows][k++] = f;
      else free(f);
    }
  }
  return c;
}

static double num(const csv *c, size_t r, size_t k) { return strtod(c->cell[r][k], NULL); }

static void csv_free(csv *c) {
  for (size_t r = 0; r < c->rows; r++)
    for (size_t k = 0; k < 16; k++) free(c->cell[r][k]);
  free(c);
}

/* A number from the JSON summary: "key": value. */
static double json_num(const char *json, const char *key) {
  char pat[128];
  snprintf(pat, sizeof pat, "\"%s\": ", key);
  const char *p = strstr(json, pat);
  cr_assert_not_null(p, "no %s in JSON:\n%s", key, json);
  return strtod(p + strlen(pat), NULL);
}

static double rel_err(double got, double want) { return want == 0 ? fabs(got) : fabs(got - want) / fabs(want); }

#define SKIP_IF_MISSING_BACKEND(p, name)                                                          \
  do {                                                                                            \
    if ((p).status != 0 && strcmp(name, "reference") != 0 &&                                   \
        (strstr((p).err, "no backend plugin") || strstr((p).err, ": unsupported:")))            \
      cr_skip_test("backend %s not available here: %s", name, (p).err);                         \
  } while (0)

/* ---- freq ------------------------------------------------------------------ */
static void freq_golden_case(const char *dir, const char *name) {
  char ini[8192], exp[8192];
  snprintf(ini, sizeof ini, "%s/%s", dir, name);
  snprintf(exp, sizeof exp, "%s/%.*s.expected", dir, (int)(strlen(name) - 4), name);
  proc p = probe("freq '%s' --format csv", ini);
  cr_assert_eq(p.status, 0, "%s: %s", name, p.err);
  csv *c = csv_parse(p.out);
  cr_expect_str_eq(c->header, "pair,inv_freq,wavelength,attention_factor");
  FILE *fp = fopen(exp, "r");
  cr_assert_not_null(fp, "%s", exp);
  double a, want;
  cr_assert_eq(fscanf(fp, "attention_factor %lf", &a), 1);
  size_t r = 0;
  for (; fscanf(fp, "%lf", &want) == 1; r++) {
    cr_assert_lt(r, c->rows, "%s: fewer rows than %s", name, exp);
    cr_expect_eq(num(c, r, 0), (double)r);
    cr_expect_leq(rel_err(num(c, r, 1), want), 1e-12, "%s pair %zu: %.17g vs %.17g", name, r, num(c, r, 1), want);
    cr_expect_leq(rel_err(num(c, r, 2), 2 * M_PI / want), 1e-12, "%s pair %zu wavelength", name, r);
    cr_expect_leq(rel_err(num(c, r, 3), a), 1e-12, "%s attention_factor", name);
  }
  cr_expect_eq(r, c->rows, "%s: %zu rows, golden %zu", name, c->rows, r);
  fclose(fp);
  csv_free(c);
  proc_free(&p);
}

Test(freq, csv_matches_golden_schemes) {
  char dir[4096];
  snprintf(dir, sizeof dir, "%s/schemes", dir_env("PE_GOLDEN_DIR", "tests/golden"));
  DIR *dp = opendir(dir);
  cr_assert_not_null(dp, "%s", dir);
  int n = 0;
  for (struct dirent *de; (de = readdir(dp));) {
    size_t len = strlen(de->d_name);
    if (len > 4 && !strcmp(de->d_name + len - 4, ".ini")) freq_golden_case(dir, de->d_name), n++;
  }
  closedir(dp);
  cr_expect_geq(n, 10, "only %d golden scheme cases", n);
}

Test(freq, yarn_bands_and_critical_dimension) {
  char ini[4096];
  snprintf(ini, sizeof ini, "%s/schemes/yarn-d128-f16-4k.ini", dir_env("PE_GOLDEN_DIR", "tests/golden"));
  proc p = probe("freq '%s' --format json", ini);
  cr_assert_eq(p.status, 0, "%s", p.err);
  cr_expect_eq(json_num(p.out, "untouched"), 21);
  cr_expect_eq(json_num(p.out, "ramped"), 25);
  cr_expect_eq(json_num(p.out, "interpolated"), 18);
  cr_expect_eq(json_num(p.out, "d_extra"), 92);
  double a = json_num(p.out, "attention_factor");
  cr_expect_leq(rel_err(json_num(p.out, "logit_multiplier"), a * a), 1e-15);
  proc_free(&p);
}

Test(freq, every_shipped_config) {
  char dir[4096];
  snprintf(dir, sizeof dir, "%s/configs", dir_env("PE_TEST_SRCDIR", "."));
  DIR *dp = opendir(dir);
  cr_assert_not_null(dp, "%s", dir);
  for (struct dirent *de; (de = readdir(dp));) {
    size_t len = strlen(de->d_name);
    if (len < 5 || strcmp(de->d_name + len - 4, ".ini")) continue;
    proc p = probe("freq '%s/%s'", dir, de->d_name), q = probe("freq '%s/%s' -f csv", dir, de->d_name);
    cr_expect_eq(p.status, 0, "%s: %s", de->d_name, p.err);
    cr_expect_eq(q.status, 0, "%s: %s", de->d_name, q.err);
    proc_free(&p), proc_free(&q);
  }
  closedir(dp);
}

Test(freq, seq_len_reaches_length_dependent_schemes) {
  char *ini = temp_config("[workload]\nhead_dim = 64\nseq_len = 128\n[scheme]\nplugin = dynamic-ntk\n"
                          "factor = 4\noriginal_max_position_embeddings = 256\n");
  proc a = probe("freq %s -f csv", ini), b = probe("freq %s -f csv --seq-len 100000", ini);
  cr_assert_eq(a.status + b.status, 0, "%s %s", a.err, b.err);
  csv *x = csv_parse(a.out), *y = csv_parse(b.out);
  cr_expect_eq(num(x, 31, 1), pow(10000, -62.0 / 64), "short L: plain rope");
  cr_expect_lt(num(y, 31, 1), 0.5 * num(x, 31, 1), "long L: a larger base");
  csv_free(x), csv_free(y), proc_free(&a), proc_free(&b);
  unlink(ini), free(ini);
}

Test(freq, output_and_plot_are_written) {
  char out[] = "/tmp/pe-probe-test-out-XXXXXX";
  cr_assert_not_null(mkdtemp(out));
  proc p = probe("freq '%s' -f csv -o %s/f.csv --plot %s/f.svg", config("llama2-7b.ini"), out, out);
  cr_assert_eq(p.status, 0, "%s", p.err);
  cr_expect_str_empty(p.out, "nothing on stdout with --output");
  char path[256];
  snprintf(path, sizeof path, "%s/f.svg", out);
  FILE *fp = fopen(path, "r");
  cr_assert_not_null(fp);
  char *svg = slurp(fp);
  fclose(fp);
  cr_expect(strstr(svg, "<svg") && strstr(svg, "</svg>"), "not an SVG document");
  free(svg);
  int files = 0;
  DIR *dp = opendir(out);
  for (struct dirent *de; (de = readdir(dp));) files += de->d_name[0] != '.';
  closedir(dp);
  cr_expect_eq(files, 2, "temporary files left behind");
  snprintf(path, sizeof path, "rm -rf '%s'", out);
  cr_expect_eq(system(path), 0);
  proc_free(&p);
}

static mode_t file_mode(const char *dir, const char *name) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  struct stat st;
  cr_assert_eq(stat(path, &st), 0, "%s", path);
  return st.st_mode & 07777;
}

/* New files get 0666 less the umask, like fopen's; a replaced file keeps
 * its mode (they were all 0600). */
Test(freq, output_modes_follow_umask_and_the_replaced_file) {
  char out[] = "/tmp/pe-probe-test-out-XXXXXX";
  cr_assert_not_null(mkdtemp(out));
  mode_t old = umask(022);
  proc p = probe("freq '%s' -f csv -o %s/a.csv -p %s/p.svg", config("llama2-7b.ini"), out, out);
  cr_assert_eq(p.status, 0, "%s", p.err);
  cr_expect_eq(file_mode(out, "a.csv"), 0644);
  cr_expect_eq(file_mode(out, "p.svg"), 0644);
  proc_free(&p);
  char cmd[600];
  snprintf(cmd, sizeof cmd, "chmod 0664 '%s/a.csv'", out);
  cr_assert_eq(system(cmd), 0);
  umask(077);
  p = probe("freq '%s' -o %s/a.csv", config("llama2-7b.ini"), out);
  cr_assert_eq(p.status, 0, "%s", p.err);
  cr_expect_eq(file_mode(out, "a.csv"), 0664, "the replaced file's mode is kept");
  proc_free(&p);
  umask(old);
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", out);
  cr_expect_eq(system(cmd), 0);
}

Test(cli, help_says_what_is_not_claimed) {
  static const char *const subs[] = {"freq", "perm", "relative", "decay", "base", "extrapolate"};
  for (int i = 0; i < 6; i++) {
    proc p = probe("%s --help", subs[i]);
    cr_expect_eq(p.status, 0);
    cr_expect(strstr(p.out, "Does not claim"), "%s --help lacks 'Does not claim'", subs[i]);
    proc_free(&p);
  }
  proc p = probe("freq '%s' --backend reference", config("llama2-7b.ini"));
  cr_expect_eq(p.status, 2, "an option that does not apply is refused");
  proc_free(&p);
}

/* ---- decay ----------------------------------------------------------------- */
Test(decay, roformer_bound_at_zero_and_one) {
  proc p = probe("decay '%s' --max-len 4 -f csv", config("llama2-7b.ini"));
  cr_assert_eq(p.status, 0, "%s", p.err);
  csv *c = csv_parse(p.out);
  cr_expect_str_eq(c->header, "s,bound,mean_cos");
  cr_assert_eq(c->rows, 5);
  cr_expect_leq(fabs(num(c, 0, 1) - 32.5), 1e-12, "bound(0) = %.17g", num(c, 0, 1));
  cr_expect_leq(fabs(num(c, 0, 2) - 1), 1e-15);
  double re = 0, im = 0, sum = 0, mc = 0; /* brute force at s = 1 */
  for (int k = 0; k < 64; k++) {
    double th = pow(10000, -2.0 * k / 128);
    re += cos(th), im += sin(th), sum += hypot(re, im), mc += cos(th);
  }
  cr_expect_leq(fabs(num(c, 1, 1) - sum / 64), 1e-12);
  cr_expect_leq(fabs(num(c, 1, 2) - mc / 64), 1e-12);
  csv_free(c);
  proc_free(&p);
}

Test(decay, compare_several_schemes) {
  proc p = probe("decay '%s' --max-len 8 --compare rope,pi,ntk,yarn -f csv", config("llama2-7b.ini"));
  cr_assert_eq(p.status, 0, "%s", p.err);
  csv *c = csv_parse(p.out);
  cr_expect_str_eq(c->header, "s,bound_rope,mean_cos_rope,bound_pi,mean_cos_pi,bound_ntk,mean_cos_ntk,"
                              "bound_yarn,mean_cos_yarn");
  cr_expect_gt(num(c, 4, 3), num(c, 4, 1), "PI (slower rotation) decays more slowly than RoPE");
  csv_free(c);
  proc_free(&p);
}

/* Compared schemes get the config's lists (LongRoPE's 48 factors, joined
 * from continuation lines) back on lines libpe accepts, unchanged: the
 * compared longrope is the config's own scheme (once exit 2, "line longer
 * than 199 characters"). */
Test(decay, compare_keeps_long_lists) {
  const char *ini = config("phi3-mini-128k.ini");
  proc p = probe("decay '%s' --max-len 16 --compare rope,longrope -f csv", ini);
  proc q = probe("decay '%s' --max-len 16 -f csv", ini);
  cr_assert_eq(p.status, 0, "%s", p.err);
  cr_assert_eq(q.status, 0, "%s", q.err);
  csv *c = csv_parse(p.out), *own = csv_parse(q.out);
  cr_expect_str_eq(c->header, "s,bound_rope,mean_cos_rope,bound_longrope,mean_cos_longrope");
  cr_assert_eq(c->rows, own->rows);
  for (size_t r = 0; r < c->rows; r++) {
    cr_expect_str_eq(c->cell[r][3], own->cell[r][1], "s = %zu", r);
    cr_expect_str_eq(c->cell[r][4], own->cell[r][2], "s = %zu", r);
  }
  csv_free(c), csv_free(own), proc_free(&p), proc_free(&q);
  p = probe("extrapolate '%s' --compare longrope --train-len 256 --seeds 2 -f csv", ini);
  if (!(p.status == 1 && strstr(p.err, "without LAPACKE"))) cr_expect_eq(p.status, 0, "%s", p.err);
  proc_free(&p);
}

/* A --compare plugin path with ':' and '%' is a column name only: it was
 * split at ':' into a view format for snprintf (a crash, or garbage). */
Test(decay, compare_path_is_not_a_format) {
  char dir[] = "/tmp/pe-probe-test-fmt-XXXXXX", cmd[1400];
  cr_assert_not_null(mkdtemp(dir));
  snprintf(cmd, sizeof cmd, "mkdir '%s/a:%%s%%s%%s' '%s/b:%%n' && cp '%s/plugins/.libs/rope.so' '%s/a:%%s%%s%%s/' &&"
           " cp '%s/plugins/.libs/rope.so' '%s/b:%%n/'", dir, dir, dir_env("PE_TEST_BUILDDIR", "."), dir,
           dir_env("PE_TEST_BUILDDIR", "."), dir);
  cr_assert_eq(system(cmd), 0, "%s", cmd);
  char list[700], want[1600];
  snprintf(list, sizeof list, "rope,%s/a:%%s%%s%%s/rope.so,%s/b:%%n/rope.so", dir, dir);
  proc p = probe("decay '%s' --max-len 16 --compare '%s'", config("llama2-7b.ini"), list);
  cr_assert_eq(p.status, 0, "%s", p.err);
  snprintf(want, sizeof want, "  bound_%s/a:%%s%%s%%s/rope.so  mean_cos_%s/a:%%s%%s%%s/rope.so", dir, dir);
  cr_expect(strstr(p.out, want), "%s", p.out);
  int same = 0; /* bound(16) of the three ropes, each in the view's %.4f */
  for (const char *q = p.out; (q = strstr(q, " 15.7750")); q++) same++;
  cr_expect_eq(same, 3, "%s", p.out);
  proc_free(&p);
  p = probe("decay '%s' --max-len 2 --compare '%s' -f csv", config("llama2-7b.ini"), list);
  cr_assert_eq(p.status, 0, "%s", p.err);
  csv *c = csv_parse(p.out);
  snprintf(want, sizeof want, "s,bound_rope,mean_cos_rope,bound_%s/a:%%s%%s%%s/rope.so,mean_cos_%s/a:%%s%%s%%s/"
           "rope.so,bound_%s/b:%%n/rope.so,mean_cos_%s/b:%%n/rope.so", dir, dir, dir, dir);
  cr_expect_str_eq(c->header, want);
  cr_assert_eq(c->rows, 3);
  cr_expect_str_eq(c->cell[2][5], c->cell[2][1], "the copied rope is rope");
  csv_free(c), proc_free(&p);
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  cr_expect_eq(system(cmd), 0);
}

/* ---- perm ------------------------------------------------------------------ */
static csv *perm_csv(const char *backend, proc *p) {
  *p = probe("perm '%s' --tokens 4 --backend %s -f csv", config("llama2-7b.ini"), backend);
  SKIP_IF_MISSING_BACKEND(*p, backend);
  cr_assert_eq(p->status, 0, "%s", p->err);
  csv *c = csv_parse(p->out);
  cr_assert_eq(c->rows, 4);
  return c;
}

Test(perm, equivariance_and_what_breaks_it) {
  proc p;
  csv *c = perm_csv("reference", &p);
  cr_expect_str_eq(c->cell[0][0], "none");
  cr_expect_str_eq(c->cell[0][1], "bidirectional");
  cr_expect_lt(num(c, 0, 2), 1e-6, "none, bidirectional: %g", num(c, 0, 2));
  cr_expect_str_eq(c->cell[1][0], "rope");
  cr_expect_gt(num(c, 1, 2), 1e-3, "rope, bidirectional: %g", num(c, 1, 2));
  cr_expect_str_eq(c->cell[2][1], "causal");
  cr_expect_gt(num(c, 2, 2), 1e-3, "none, causal: %g", num(c, 2, 2));
  csv_free(c);
  proc_free(&p);
}

/* Text fields are quoted (RFC 4180): a scheme plugin path with a comma and
 * a quote stays one field, in a cell and in a `bound_NAME` header. */
Test(perm, csv_quotes_text_fields) {
  char dir[] = "/tmp/pe-probe-test-csv-XXXXXX", so[600], cmd[1400];
  cr_assert_not_null(mkdtemp(dir));
  snprintf(so, sizeof so, "%s/pl,\"x/rope.so", dir);
  snprintf(cmd, sizeof cmd, "mkdir '%s/pl,\"x' && cp '%s/plugins/.libs/rope.so' '%s'", dir,
           dir_env("PE_TEST_BUILDDIR", "."), so);
  cr_assert_eq(system(cmd), 0, "%s", cmd);
  char text[800];
  snprintf(text, sizeof text, "[workload]\nhead_dim = 16\nseq_len = 16\n[scheme]\nplugin = %s\n", so);
  char *ini = temp_config(text);
  proc p = probe("perm %s --tokens 4 -f csv", ini);
  cr_assert_eq(p.status, 0, "%s", p.err);
  csv *c = csv_parse(p.out);
  cr_expect_eq(c->cols, 6);
  cr_assert_eq(c->rows, 4, "%s", p.out);
  cr_expect_str_eq(c->cell[1][0], so);
  cr_expect_str_eq(c->cell[1][1], "bidirectional");
  cr_expect_str_eq(c->cell[1][5], "no");
  cr_expect(strstr(p.out, "\n\"none\",\"bidirectional\","), "%s", p.out);
  csv_free(c), proc_free(&p);
  /* --compare splits at commas: a path with a quote only. */
  snprintf(cmd, sizeof cmd, "mkdir '%s/q\"y' && cp '%s' '%s/q\"y/'", dir, so, dir);
  cr_assert_eq(system(cmd), 0, "%s", cmd);
  p = probe("decay %s --max-len 2 --compare '%s/q\"y/rope.so' -f csv", ini, dir);
  cr_assert_eq(p.status, 0, "%s", p.err);
  char want[800];
  snprintf(want, sizeof want, "s,\"bound_%s/q\"\"y/rope.so\",\"mean_cos_%s/q\"\"y/rope.so\"\n", dir, dir);
  cr_expect(!strncmp(p.out, want, strlen(want)), "%s", p.out);
  proc_free(&p);
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  cr_expect_eq(system(cmd), 0);
  unlink(ini), free(ini);
}

/* ---- plugin paths in a config ------------------------------------------------ */
/* A relative plugin path written in a config is relative to the config's
 * directory, as pe-bench reads it (docs/CONFIG.md): pe-probe loaded it from
 * the working directory, so a config elsewhere failed, or loaded the
 * working directory's file of that name (here a copy of pi).  A --compare
 * path is a command-line path: relative to the working directory. */
Test(config_paths, relative_plugin_path_is_relative_to_the_config) {
  static const char *const runs[][2] = {
      {"freq", ""}, {"decay", "-m 32"}, {"relative", "-t 8 -T 64"}, {"base", "--max-len 64"}};
  char dir[] = "/tmp/pe-probe-test-cfgdir-XXXXXX", cmd[4096], sub[128], other[128], path[256];
  cr_assert_not_null(mkdtemp(dir));
  snprintf(sub, sizeof sub, "%s/sub", dir), snprintf(other, sizeof other, "%s/other", dir);
  const char *bld = dir_env("PE_TEST_BUILDDIR", ".");
  snprintf(cmd, sizeof cmd, "mkdir '%s' '%s' && cp '%s/plugins/.libs/rope.so' '%s/copy-of-rope.so' && "
           "cp '%s/plugins/.libs/pi.so' '%s/copy-of-rope.so'", sub, other, bld, sub, bld, other);
  cr_assert_eq(system(cmd), 0, "%s", cmd);
  static const char *const plugins[] = {"./copy-of-rope.so", "rope"};
  for (int i = 0; i < 2; i++) {
    snprintf(path, sizeof path, "%s/%s.ini", sub, i ? "name" : "path");
    FILE *fp = fopen(path, "w");
    cr_assert_not_null(fp, "%s", path);
    fprintf(fp, "[workload]\nhead_dim = 16\nseq_len = 64\n[scheme]\nplugin = %s\nbase = 500000\n", plugins[i]);
    fclose(fp);
  }
  for (size_t k = 0; k < sizeof runs / sizeof *runs; k++) {
    const char *sub_cmd = runs[k][0], *opts = runs[k][1];
    proc a = probe_in(other, "%s ../sub/path.ini %s -f csv", sub_cmd, opts);
    proc b = probe_in(other, "%s ../sub/name.ini %s -f csv", sub_cmd, opts);
    cr_expect_eq(a.status, 0, "%s: %s", sub_cmd, a.err);
    cr_expect_eq(b.status, 0, "%s: %s", sub_cmd, b.err);
    cr_expect_str_eq(a.out, b.out, "%s: ./copy-of-rope.so and rope differ", sub_cmd);
    proc_free(&a), proc_free(&b);
  }
  proc p = probe_in(other, "perm ../sub/path.ini -t 4 -f csv");
  cr_expect_eq(p.status, 0, "%s", p.err);
  cr_expect(strstr(p.out, "\n\"./copy-of-rope.so\",\"bidirectional\","), "%s", p.out);
  proc_free(&p);
  /* --compare ./copy-of-rope.so: the working directory's (pi), not the config's */
  p = probe_in(other, "decay ../sub/path.ini -m 32 -f csv --compare ./copy-of-rope.so");
  proc q = probe_in(other, "decay ../sub/path.ini -m 32 -f csv --compare pi");
  cr_expect_eq(p.status, 0, "%s", p.err);
  char *p_rows = strchr(p.out, '\n'), *q_rows = strchr(q.out, '\n');
  cr_assert(p_rows && q_rows, "%s\n%s", p.out, q.out);
  cr_expect_str_eq(p_rows, q_rows, "--compare ./copy-of-rope.so is the working directory's copy of pi");
  proc_free(&p), proc_free(&q);
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  cr_expect_eq(system(cmd), 0);
}

static char *slurp_file(const char *path) {
  FILE *fp = fopen(path, "r");
  cr_assert_not_null(fp, "%s", path);
  char *text = slurp(fp);
  fclose(fp);
  return text;
}

/* Plugin names of 64+ characters were cut: the config's scheme (loading
 * another file, or none), decay's column names (63 bytes), table cells
 * (127), plot titles (159) and legends (63). */
Test(config_paths, long_plugin_paths_are_never_cut) {
  char dir[] = "/tmp/pe-probe-test-long-XXXXXX", so[512], cmd[4096], path[600], want[1200];
  cr_assert_not_null(mkdtemp(dir));
  snprintf(so, sizeof so, "%s/%0100d/rope.so", dir, 0); /* a directory named by 100 zeros */
  snprintf(cmd, sizeof cmd, "mkdir '%s/%0100d' && cp '%s/plugins/.libs/rope.so' '%s'", dir, 0,
           dir_env("PE_TEST_BUILDDIR", "."), so);
  cr_assert_eq(system(cmd), 0, "%s", cmd);
  char text[800];
  snprintf(text, sizeof text, "[workload]\nhead_dim = 16\nseq_len = 64\n[scheme]\nplugin = %s\n", so);
  char *ini = temp_config(text), *named = temp_config("[workload]\nhead_dim = 16\nseq_len = 64\n[scheme]\n"
                                                      "plugin = rope\n");
  proc p = probe("freq %s -f csv", ini), q = probe("freq %s -f csv", named);
  cr_assert_eq(p.status, 0, "%s", p.err);
  cr_expect_str_eq(p.out, q.out, "the long path is rope");
  proc_free(&p), proc_free(&q);
  snprintf(path, sizeof path, "%s/freq.svg", dir);
  p = probe("freq %s -f json --plot %s", ini, path);
  cr_assert_eq(p.status, 0, "%s", p.err);
  snprintf(want, sizeof want, "\"scheme\": \"%s\"", so);
  cr_expect(strstr(p.out, want), "%s", p.out);
  char *svg = slurp_file(path);
  snprintf(want, sizeof want, ">freq: %s (%s) vs rope<", ini, so);
  cr_expect(strstr(svg, want), "title: %s", svg);
  snprintf(want, sizeof want, ">%s<", so);
  cr_expect(strstr(svg, want), "legend: %s", svg);
  free(svg), proc_free(&p);
  p = probe("decay %s --max-len 2 --compare 'rope,%s' -f csv", ini, so);
  cr_assert_eq(p.status, 0, "%s", p.err);
  csv *c = csv_parse(p.out);
  snprintf(want, sizeof want, "s,bound_rope,mean_cos_rope,bound_%s,mean_cos_%s", so, so);
  cr_expect_str_eq(c->header, want);
  cr_assert_eq(c->rows, 3);
  cr_expect_str_eq(c->cell[2][3], c->cell[2][1], "the copied rope is rope");
  csv_free(c), proc_free(&p);
  snprintf(path, sizeof path, "%s/perm.svg", dir);
  p = probe("perm %s --tokens 4 --plot %s", ini, path);
  cr_assert_eq(p.status, 0, "%s", p.err);
  snprintf(want, sizeof want, "\n%s  bidirectional  ", so);
  cr_expect(strstr(p.out, want), "table view: %s", p.out);
  svg = slurp_file(path);
  snprintf(want, sizeof want, ">%s, causal<", so);
  cr_expect(strstr(svg, want), "legend: %s", svg);
  free(svg), proc_free(&p);
  /* A --compare word goes on a config line (199 characters): past 190 it
   * is refused by name, not blamed on a line of the user's config. */
  char over[192];
  memset(over, 'x', 191), over[191] = '\0';
  p = probe("decay %s --compare rope,%s", ini, over);
  cr_expect_eq(p.status, 2);
  cr_expect(strstr(p.err, over) && strstr(p.err, "191 characters, at most 190"), "%s", p.err);
  proc_free(&p);
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  cr_expect_eq(system(cmd), 0);
  unlink(ini), free(ini), unlink(named), free(named);
}

/* ---- JSON ------------------------------------------------------------------ */
/* Bytes of valid UTF-8 (RFC 3629: shortest forms, no surrogates, at most
 * U+10FFFF) and no control character but the writer's newlines. */
static int valid_utf8_json(const char *text, const char **bad) {
  const unsigned char *p = (const unsigned char *)text;
  while (*p) {
    *bad = (const char *)p;
    int n = *p < 0x80 ? 1 : *p >= 0xc2 && *p <= 0xdf ? 2 : (*p & 0xf0) == 0xe0 ? 3 : *p >= 0xf0 && *p <= 0xf4 ? 4 : 0;
    if (n == 0 || (*p < 0x20 && *p != '\n')) return 0;
    for (int i = 1; i < n; i++)
      if ((p[i] & 0xc0) != 0x80) return 0;
    unsigned cp = n == 1 ? *p : n == 2 ? *p & 0x1fu : n == 3 ? *p & 0x0fu : *p & 0x07u;
    for (int i = 1; i < n; i++) cp = cp << 6 | (p[i] & 0x3fu);
    if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp < 0xe000))) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
      return 0;
    p += n;
  }
  return 1;
}

static void expect_valid_json(const proc *p, const char *want) {
  const char *bad = NULL;
  cr_expect(valid_utf8_json(p->out, &bad), "not UTF-8 or a raw control byte at offset %td:\n%s",
            bad - p->out, p->out);
  cr_expect(strstr(p->out, want), "no %s in:\n%s", want, p->out);
  if (system("command -v python3 >/dev/null 2>&1") != 0) return;
  FILE *fp = popen("python3 -m json.tool >/dev/null", "w");
  cr_assert_not_null(fp);
  fputs(p->out, fp);
  cr_expect_eq(pclose(fp), 0, "python3 -m json.tool refuses:\n%s", p->out);
}

/* A config path and a plugin path with a Latin-1 byte (0xe9) and a control
 * character: JSON strings stay valid UTF-8 (0xe9 as U+00E9, escaped like
 * pe-bench's), and real UTF-8 (U+00E9 as c3 a9) is kept as it is.  The
 * probe's own writer once copied the 0xe9 byte, which no JSON parser reads. */
Test(json, latin1_and_control_bytes_stay_valid) {
  char dir[] = "/tmp/pe-probe-test-json-XXXXXX", cmd[1400], text[800], ini[600], want[900];
  cr_assert_not_null(mkdtemp(dir));
  snprintf(cmd, sizeof cmd, "mkdir '%s/pl\xe9\x01' && cp '%s/plugins/.libs/rope.so' '%s/pl\xe9\x01/'", dir,
           dir_env("PE_TEST_BUILDDIR", "."), dir);
  cr_assert_eq(system(cmd), 0, "%s", cmd);
  snprintf(text, sizeof text, "[workload]\nhead_dim = 16\nseq_len = 16\n[scheme]\nplugin = %s/pl\xe9\x01/rope.so\n", dir);
  snprintf(ini, sizeof ini, "%s/caf\xe9\x01-\xc3\xa9.ini", dir);
  FILE *fp = fopen(ini, "w");
  cr_assert_not_null(fp, "%s", ini);
  fputs(text, fp);
  fclose(fp);
  proc p = probe("perm '%s' --tokens 4 -f json", ini);
  cr_assert_eq(p.status, 0, "%s", p.err);
  snprintf(want, sizeof want, "\"config\": \"%s/caf\\u00e9\\u0001-\xc3\xa9.ini\"", dir);
  expect_valid_json(&p, want);
  snprintf(want, sizeof want, "[\"%s/pl\\u00e9\\u0001/rope.so\", \"bidirectional\", ", dir);
  expect_valid_json(&p, want);
  proc_free(&p);
  p = probe("decay '%s' --max-len 2 --compare 'rope,%s/pl\xe9\x01/rope.so' -f json", ini, dir);
  cr_assert_eq(p.status, 0, "%s", p.err);
  snprintf(want, sizeof want, "\"bound_%s/pl\\u00e9\\u0001/rope.so\"", dir);
  expect_valid_json(&p, want);
  proc_free(&p);
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  cr_expect_eq(system(cmd), 0);
}

/* ---- base ------------------------------------------------------------------ */
static double f_b(double b, int R, long m) {
  double f = 0;
  for (int j = 0; j < R / 2; j++) f += cos((double)m * pow(b, -2.0 * j / R));
  return f;
}

static long first_neg(double b, int R, long cap) {
  for (long m = 0; m < cap; m++)
    if (f_b(b, R, m) < 0) return m;
  return cap;
}

Test(base, matches_brute_force) {
  proc p = probe("base '%s' --head-dim 8 --max-len 64 -f csv", config("llama2-7b.ini"));
  cr_assert_eq(p.status, 0, "%s", p.err);
  csv *c = csv_parse(p.out);
  cr_expect_str_eq(c->header, "L,min_base,first_negative_m_at_min_base,config_base_ok");
  cr_assert_eq(c->rows, 6, "L = 2 .. 64");
  for (size_t r = 0; r < c->rows; r++) {
    long L = (long)num(c, r, 0);
    double b = num(c, r, 1);
    cr_expect_eq(first_neg(b, 8, 4 * L), (long)num(c, r, 2), "L %ld: first negative m", L);
    cr_expect_geq(first_neg(b, 8, L), L, "L %ld: base %.9g does not support L", L, b);
    for (int i = 0; 2 * pow(10, i / 256.0) < b * (1 - 1e-9); i++) /* the probe's grid below b */
      cr_expect_lt(first_neg(2 * pow(10, i / 256.0), 8, L), L, "L %ld: grid base %g passes", L, 2 * pow(10, i / 256.0));
    cr_expect_eq(num(c, r, 3), first_neg(10000, 8, L) >= L);
  }
  csv_free(c);
  proc_free(&p);
  p = probe("base '%s' --head-dim 8 --max-len 64 -f json", config("llama2-7b.ini"));
  cr_expect_eq(json_num(p.out, "first_negative_m"), first_neg(10000, 8, 1 << 22));
  proc_free(&p);
}

/* ---- relative -------------------------------------------------------------- */
/* Columns: shift, L, min_inv_freq, dev_f64, dev_backend, dev_naive_f32, err_backend_vs_f64. */
static csv *relative_csv(const char *cfg, const char *backend, const char *extra, proc *p) {
  *p = probe("relative '%s' --tokens 8 --backend %s -f csv %s", cfg, backend, extra);
  SKIP_IF_MISSING_BACKEND(*p, backend);
  cr_assert_eq(p->status, 0, "%s", p->err);
  csv *c = csv_parse(p->out);
  cr_expect_str_eq(c->header, "shift,L,min_inv_freq,dev_f64,dev_backend,dev_naive_f32,err_backend_vs_f64");
  return c;
}

Test(relative, rope_exact_in_float64_up_to_2_20) {
  proc p;
  csv *c = relative_csv(config("llama2-7b.ini"), "reference", "", &p);
  cr_assert_eq(c->rows, 22, "shifts 0, 1, 2, .., 2^20");
  cr_expect_eq(num(c, 21, 0), 1048576);
  for (size_t r = 0; r < c->rows; r++) {
    cr_expect_lt(num(c, r, 3), 1e-9, "t = %s: float64 deviation %g", c->cell[r][0], num(c, r, 3));
    cr_expect_lt(num(c, r, 4), 2e-4, "t = %s: backend deviation %g", c->cell[r][0], num(c, r, 4));
  }
  cr_expect_gt(num(c, 21, 5), 100 * num(c, 21, 4), "naive float32 angles drift at 2^20");
  csv_free(c);
  proc_free(&p);
}

Test(relative, sinusoidal_is_not_relative) {
  proc p;
  csv *c = relative_csv(config("transformer-base-sinusoidal.ini"), "reference", "--max-shift 16", &p);
  cr_expect_gt(num(c, 1, 3), 1e-2, "t = 1: %g", num(c, 1, 3));
  csv_free(c);
  proc_free(&p);
}

Test(relative, dynamic_ntk_depends_on_L) {
  char *ini = temp_config("[workload]\nhead_dim = 64\nseq_len = 8\n[scheme]\nplugin = dynamic-ntk\n"
                          "factor = 4\noriginal_max_position_embeddings = 256\n");
  proc p;
  csv *c = relative_csv(ini, "reference", "--max-shift 4096", &p);
  for (size_t r = 1; r < c->rows; r++) {
    if (num(c, r, 1) <= 256) cr_expect_lt(num(c, r, 3), 1e-9, "L = %s <= Lo: relative", c->cell[r][1]);
    else cr_expect_gt(num(c, r, 3), 1e-6, "L = %s > Lo: tables change with L", c->cell[r][1]);
  }
  csv_free(c);
  proc_free(&p);
  unlink(ini), free(ini);
}

/* ---- extrapolate ------------------------------------------------------------ */
Test(extrapolate, rope_blows_up_pi_does_not) {
  char *ini = temp_config("[workload]\nhead_dim = 32\nseq_len = 256\n[scheme]\nplugin = rope\n");
  proc p = probe("extrapolate %s --seeds 4 --compare rope,pi -f csv", ini);
  if (p.status == 1 && strstr(p.err, "without LAPACKE")) cr_skip_test("%s", p.err);
  cr_assert_eq(p.status, 0, "%s", p.err);
  csv *c = csv_parse(p.out);
  cr_assert_eq(c->rows, 2);
  cr_expect_str_eq(c->cell[0][0], "rope");
  cr_expect_str_eq(c->cell[1][0], "pi");
  cr_expect_lt(num(c, 0, 1), 5, "rope in range: %g", num(c, 0, 1));
  cr_expect_lt(num(c, 1, 4), 5, "pi out of range: %g", num(c, 1, 4));
  cr_expect_gt(num(c, 0, 4), 100 * num(c, 1, 4), "rope %g vs pi %g", num(c, 0, 4), num(c, 1, 4));
  csv_free(c);
  proc_free(&p);
  p = probe("extrapolate %s --seeds 4 --compare rope -f json", ini);
  double rms = json_num(p.out, "fit_residual_rms");
  cr_expect(rms > 0.5 && rms < 1, "residual rms %g: below the targets' 1", rms);
  proc_free(&p);
  unlink(ini), free(ini);
}

/* Positions are 0-based: the fit sees s = 0 .. L-1, so p = L is out of
 * range and --range 1 leaves exactly that one position in out_max (the
 * footer and docs once said (L, K L], which would be empty here). */
Test(extrapolate, out_of_range_starts_at_L) {
  char *ini = temp_config("[workload]\nhead_dim = 32\nseq_len = 64\n[scheme]\nplugin = rope\n");
  proc p = probe("extrapolate %s --seeds 3 --compare rope,pi --range 1 -f csv", ini);
  if (p.status == 1 && strstr(p.err, "without LAPACKE")) cr_skip_test("%s", p.err);
  cr_assert_eq(p.status, 0, "%s", p.err);
  csv *c = csv_parse(p.out);
  cr_assert_eq(c->rows, 2);
  for (size_t r = 0; r < 2; r++) cr_expect_gt(num(c, r, 5), 0, "%s: out_max over {L} is |a(L)|", c->cell[r][0]);
  csv_free(c), proc_free(&p);
  p = probe("extrapolate %s --seeds 3 --compare rope --range 1", ini);
  cr_assert_eq(p.status, 0, "%s", p.err);
  cr_expect(strstr(p.out, "s = 0..63,") && strstr(p.out, "[0, L) = 0..63;") && strstr(p.out, "[L, 64];"),
            "%s", p.out);
  proc_free(&p);
  p = probe("extrapolate --help");
  cr_expect(strstr(p.out, "[L, K L]") && !strstr(p.out, "(L, "), "%s", p.out);
  proc_free(&p);
  unlink(ini), free(ini);
}

/* ---- across backends --------------------------------------------------------- */
static void perm_agrees(const char *backend) {
  proc a, b;
  csv *x = perm_csv("reference", &a), *y = perm_csv(backend, &b);
  cr_expect_lt(num(y, 0, 2), 1e-6, "%s: none, bidirectional %g", backend, num(y, 0, 2));
  for (size_t r = 1; r < 4; r++)
    cr_expect_leq(fabs(num(x, r, 2) - num(y, r, 2)), 1e-4, "%s row %zu: %g vs reference %g", backend, r,
                  num(y, r, 2), num(x, r, 2));
  csv_free(x), csv_free(y), proc_free(&a), proc_free(&b);
}

static void relative_agrees(const char *backend) {
  proc a, b;
  csv *x = relative_csv(config("llama2-7b.ini"), "reference", "", &a);
  csv *y = relative_csv(config("llama2-7b.ini"), backend, "", &b);
  cr_assert_eq(x->rows, y->rows);
  for (size_t r = 0; r < x->rows; r++) {
    cr_expect_eq(num(x, r, 3), num(y, r, 3), "float64 column is the backend-independent reference");
    cr_expect_lt(num(y, r, 4), 2e-4, "%s t = %s: %g", backend, y->cell[r][0], num(y, r, 4));
    cr_expect_lt(num(y, r, 6), 2e-4, "%s t = %s: vs float64 %g", backend, y->cell[r][0], num(y, r, 6));
  }
  csv_free(x), csv_free(y), proc_free(&a), proc_free(&b);
}

/* Backends not built here, or without a device, skip with the reason. */
#define CROSS_BACKEND(name)                                       \
  Test(backends, perm_##name) { perm_agrees(#name); }             \
  Test(backends, relative_##name) { relative_agrees(#name); }
CROSS_BACKEND(openmp)
CROSS_BACKEND(opencl)
CROSS_BACKEND(vulkan)
