/* `pe-bench CONFIG`: expand the config's [sweep] into cells, check every
 * cell before running any, run each cell on every backend, compare the
 * backends' outputs with each other, and write the report after every cell
 * (atomically), so an interrupted run leaves a complete report of the cells
 * done and --resume carries on from it. */
#include "bench.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct run_state {
  pe_ctx *ctx;
  bench_opts *o;
  pe_config *cfg;
  pe_sweep *sw;
  bench_names backends; /* labels or plugin names */
  bool explicit_backends; /* unsupported counts as a failure */
  bench_doc doc;
  size_t cell, skipped;
  size_t input_errors; /* cells whose workload could not be built */
  size_t carried;      /* doc.recs[0 .. carried) came from the --resume file */
  bool fatal;          /* the single config's workload could not be built */
  bench_log log;       /* plugins' messages, once per cell */
} run_state;

static volatile sig_atomic_t interrupted;

static void on_signal(int sig) { interrupted = sig; }

/* SIGINT and SIGTERM end the run after the current backend run, with the
 * report written; a signal ignored on entry (nohup, a background job)
 * stays ignored. */
static void catch_signals(void) {
  static const int sigs[] = {SIGINT, SIGTERM};
  for (size_t i = 0; i < 2; i++) {
    struct sigaction sa, old;
    if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler == SIG_IGN) continue;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = (int)SA_RESETHAND; /* a second one ends the run at once */
    sigaction(sigs[i], &sa, NULL);
  }
}

/* ---- messages and progress --------------------------------------------------- */
static void progress_clear(const run_state *st) {
  if (st->o->progress) fputs("\r\033[K", stderr);
}

static void progress(const run_state *st, const char *cell, const char *backend) {
  if (!st->o->progress) return;
  fprintf(stderr, "\r\033[K[%zu/%zu] %.60s%s%s", st->cell + 1, pe_sweep_cell_count(st->sw), cell,
          cell[0] ? ": " : "", backend);
  fflush(stderr);
}

static void say(const run_state *st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(const run_state *st, const char *fmt, ...) {
  progress_clear(st);
  fputs("pe-bench: ", stderr);
  va_list ap;
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
}

/* ---- setup ---------------------------------------------------------------------- */
/* SECTION.KEY=VALUE: the last dot ends the section ([scheme.yarn] factor,
 * [backend.fast] threads), except in sweep.KEY, whose keys hold dots. */
static int apply_set(pe_ctx *ctx, pe_config *cfg, const char *arg) {
  const char *eq = strchr(arg, '='), *dot = NULL;
  for (const char *p = arg; eq && p < eq; p++)
    if (*p == '.' && !(dot && !strncmp(arg, "sweep.", 6))) dot = p;
  if (!dot) {
    fprintf(stderr, "pe-bench: --set %s: expected SECTION.KEY=VALUE\n", arg);
    return 2;
  }
  char section[128], key[128];
  const size_t slen = (size_t)(dot - arg), klen = (size_t)(eq - dot - 1);
  if (slen >= sizeof section || klen >= sizeof key) {
    fprintf(stderr, "pe-bench: --set %.60s...: the %s name is longer than %zu characters\n", arg,
            slen >= sizeof section ? "section" : "key", sizeof section - 1);
    return 2;
  }
  snprintf(section, sizeof section, "%.*s", (int)slen, arg);
  snprintf(key, sizeof key, "%.*s", (int)klen, dot + 1);
  if (pe_config_set(ctx, cfg, section, key, eq + 1) != 0) {
    fprintf(stderr, "pe-bench: --set %s: %s\n", arg, pe_ctx_error(ctx));
    return 2;
  }
  return 0;
}

void bench_names_add(bench_names *ns, const char *name) {
  char *copy = strdup(name);
  if (copy && ns->n < BENCH_MAX_BACKENDS) ns->v[ns->n++] = copy;
  else free(copy);
}

void bench_names_free(bench_names *ns) {
  for (size_t i = 0; i < ns->n; i++) free(ns->v[i]);
  ns->n = 0;
}

static void collect_backend(void *user, const char *path, const pe_plugin *p, int status,
                            const char *error) {
  if (!p) {
    fprintf(stderr, "pe-bench: skipping %s: %s (%s)\n", path, error, pe_err_name(status));
    return;
  }
  const pe_plugin_desc *d = pe_plugin_descriptor(p);
  if (d->kind == PE_PLUGIN_BACKEND) bench_names_add(user, d->name);
}

void bench_scan_backends(pe_ctx *ctx, bench_names *ns) { pe_plugin_scan(ctx, collect_backend, ns); }

/* --backend, else [sweep] backend, else the config's backend sections
 * (all of these are asked for by name), else every backend found. */
static int pick_backends(run_state *st) {
  const bench_opts *o = st->o;
  bench_names *ns = &st->backends;
  size_t in_sweep = pe_sweep_backend_count(st->sw);
  size_t in_config = pe_config_backend_count(st->cfg);
  size_t asked = o->n_backends ? o->n_backends : in_sweep ? in_sweep : in_config;
  if (asked > BENCH_MAX_BACKENDS) { /* --backend counts its own */
    fprintf(stderr, "pe-bench: %s: %zu %s, more than the %d one run takes\n",
            pe_config_name(st->cfg), asked,
            in_sweep ? "backends in [sweep] backend" : "backend sections",
            BENCH_MAX_BACKENDS);
    return 2;
  }
  if (o->n_backends)
    for (size_t i = 0; i < o->n_backends; i++) bench_names_add(ns, o->backends[i]);
  else if (in_sweep)
    for (size_t i = 0; i < in_sweep; i++) bench_names_add(ns, pe_sweep_backend(st->sw, i));
  else
    for (size_t i = 0; i < in_config; i++)
      bench_names_add(ns, pe_config_backend_label(st->cfg, i));
  st->explicit_backends = ns->n > 0;
  if (!ns->n) bench_scan_backends(st->ctx, ns);
  if (ns->n) return 0;
  fprintf(stderr, "pe-bench: no backend plugin found (set PE_PLUGIN_PATH)\n");
  return 2;
}

static char *cell_label(const pe_sweep *sw, size_t c) {
  size_t n = pe_sweep_cell_label(sw, c, NULL, 0);
  char *s = malloc(n + 1);
  if (s) pe_sweep_cell_label(sw, c, s, n + 1);
  return s;
}

/* Build every cell's config once: a bad value anywhere stops the run
 * before the first benchmark.  The scheme's warnings of each cell are
 * printed here, before any run. */
static int check_cells(run_state *st) {
  for (size_t c = 0; c < pe_sweep_cell_count(st->sw); c++) {
    pe_config *cell;
    char *label = cell_label(st->sw, c);
    bench_log_phase(&st->log, BENCH_LOG_CHECK, c, label ? label : "");
    int rc = pe_sweep_cell(st->ctx, st->sw, c, &cell);
    bench_log_phase(&st->log, BENCH_LOG_SETUP, 0, "");
    free(label);
    if (rc != 0) {
      fprintf(stderr, "pe-bench: %s\n", pe_ctx_error(st->ctx));
      return 2;
    }
    pe_config_free(cell);
  }
  return 0;
}

/* A bad option in a backend's section is the config's error (exit 2,
 * before any run, --dry-run included), not that backend's failure; a
 * backend that cannot be loaded is reported by its run as before. */
static int check_backend_options(run_state *st) {
  for (size_t i = 0; i < st->backends.n; i++) {
    int rc = pe_config_check_backend(st->ctx, st->cfg, st->backends.v[i]);
    if (rc == PE_ECONFIG) {
      fprintf(stderr, "pe-bench: %s\n", pe_ctx_error(st->ctx));
      return 2;
    }
  }
  return 0;
}

static int dry_run(run_state *st) {
  size_t n = pe_sweep_cell_count(st->sw);
  printf("%s: %zu cell%s x %zu backend%s, every cell checked\n", st->o->config, n,
         n == 1 ? "" : "s", st->backends.n, st->backends.n == 1 ? "" : "s");
  printf("backends:");
  for (size_t i = 0; i < st->backends.n; i++) printf(" %s", st->backends.v[i]);
  printf("%s\n", st->explicit_backends ? "" : " (every backend found)");
  for (size_t c = 0; c < n; c++) {
    char *label = cell_label(st->sw, c);
    printf("  %zu: %s\n", c + 1, label && label[0] ? label : "(the config as written)");
    free(label);
  }
  return 0;
}

static int init_doc(run_state *st) {
  bench_doc *d = &st->doc;
  bench_machine_describe(&d->machine);
  d->config_name = strdup(st->o->config);
  d->config_text = strdup(pe_config_text(st->cfg));
  d->keys = calloc(pe_sweep_key_count(st->sw) + 1, sizeof *d->keys);
  d->sets = calloc(st->o->n_sets + 1, sizeof *d->sets);
  if (!d->config_name || !d->config_text || !d->keys || !d->sets) return 2;
  for (size_t k = 0; k < pe_sweep_key_count(st->sw); k++)
    if (!(d->keys[d->n_keys++] = strdup(pe_sweep_key(st->sw, k)))) return 2;
  for (size_t k = 0; k < st->o->n_sets; k++)
    if (!(d->sets[d->n_sets++] = strdup(st->o->sets[k]))) return 2;
  return 0;
}

/* ---- --resume ----------------------------------------------------------------- */
static bool same_sets(const bench_doc *a, const bench_doc *b) {
  if (a->n_sets != b->n_sets) return false;
  for (size_t i = 0; i < a->n_sets; i++)
    if (strcmp(a->sets[i], b->sets[i])) return false;
  return true;
}

/* Why `old` cannot be resumed into `d`, or NULL. */
static const char *resume_mismatch(const bench_doc *d, const bench_doc *old) {
  if (strcmp(old->config_text, d->config_text)) return "was written for another config text";
  if (!same_sets(d, old)) return "was written with other --set overrides";
  if (strcmp(old->machine.cpu, d->machine.cpu) || old->machine.cores != d->machine.cores)
    return "was written on another machine (compare them instead)";
  return NULL;
}

/* Keep the old results that need no rerun (ok, unsupported), the
 * comparisons between them and the plugins the old run used. */
static int carry_over(bench_doc *d, const bench_doc *old) {
  bench_machine_merge_plugins(&d->machine, &old->machine);
  for (size_t i = 0; i < old->n_recs; i++) {
    const bench_rec *r = &old->recs[i];
    if (!strcmp(r->status, "failed")) continue;
    bench_rec *n = bench_doc_add_rec(d, r->cell);
    if (!n) return 2;
    char *cell = n->cell;
    *n = *r;
    n->cell = cell;
    n->err_pos = n->n_err ? malloc(r->n_err * sizeof *n->err_pos) : NULL;
    n->err_max = n->n_err ? malloc(r->n_err * sizeof *n->err_max) : NULL;
    if (n->n_err && (!n->err_pos || !n->err_max)) return 2;
    if (n->n_err) memcpy(n->err_pos, r->err_pos, r->n_err * sizeof *n->err_pos);
    if (n->n_err) memcpy(n->err_max, r->err_max, r->n_err * sizeof *n->err_max);
    if (r->saved_path && !(n->saved_path = strdup(r->saved_path))) return 2;
  }
  for (size_t i = 0; i < old->n_agree; i++) {
    const bench_agree *a = &old->agree[i];
    if (!bench_doc_find(d, a->cell, a->a) || !bench_doc_find(d, a->cell, a->b)) continue;
    bench_agree *n = bench_doc_add_agree(d, a->cell);
    if (!n) return 2;
    char *cell = n->cell;
    *n = *a;
    n->cell = cell;
  }
  for (size_t i = 0; i < old->n_gaps; i++) {
    const bench_gap *g = &old->gaps[i];
    if (!bench_doc_find(d, g->cell, g->a) || !bench_doc_find(d, g->cell, g->b)) continue;
    bench_gap *n = bench_doc_add_gap(d, g->cell);
    if (!n) return 2;
    char *cell = n->cell;
    *n = *g;
    n->cell = cell;
  }
  return 0;
}

static int resume(run_state *st) {
  const char *path = st->o->output;
  if (!path || st->o->format != PE_FORMAT_JSON) {
    fprintf(stderr, "pe-bench: --resume needs --output FILE and --format json\n");
    return 2;
  }
  if (access(path, F_OK) != 0) return 0; /* nothing to resume: a fresh run */
  bench_doc old;
  char err[1024];
  if (bench_read_json(path, &old, err, sizeof err) != 0) {
    fprintf(stderr, "pe-bench: --resume: %s\n", err);
    return 2;
  }
  const char *why = resume_mismatch(&st->doc, &old);
  int rc = why ? 2 : carry_over(&st->doc, &old);
  st->carried = st->doc.n_recs;
  if (why) fprintf(stderr, "pe-bench: --resume: %s %s; use another --output\n", path, why);
  bench_doc_free(&old);
  return rc;
}

/* ---- one cell ----------------------------------------------------------------- */
static void fill_work(bench_rec *rec, const pe_workload_info *in) {
  bench_work *w = &rec->work;
  rec->has_work = true;
  snprintf(w->op, sizeof w->op, "%s", in->op == PE_OP_ENCODE ? "encode" : "attention");
  w->batch = in->batch, w->q_heads = in->q_heads, w->kv_heads = in->kv_heads;
  w->head_dim = in->head_dim, w->q_len = in->q_len, w->seq_len = in->kv_len;
  w->position_offset = in->position_offset, w->window = in->window, w->causal = in->causal;
  w->softmax_scale = in->softmax_scale, w->flops = in->flops, w->bytes = in->bytes;
  snprintf(w->inputs, sizeof w->inputs, "%s", in->inputs ? in->inputs : "");
  snprintf(w->scheme, sizeof w->scheme, "%s", in->scheme ? in->scheme : "");
  snprintf(w->note, sizeof w->note, "%s", in->scheme_note ? in->scheme_note : "");
  w->attention_factor = in->tables ? in->tables->attention_factor : NAN;
}

static void fill_result(bench_rec *rec, const pe_result *r) {
  snprintf(rec->backend, sizeof rec->backend, "%s", r->label);
  snprintf(rec->plugin, sizeof rec->plugin, "%s", r->backend);
  snprintf(rec->device, sizeof rec->device, "%s", r->device.name);
  snprintf(rec->driver, sizeof rec->driver, "%s", r->device.driver);
  snprintf(rec->details, sizeof rec->details, "%s", r->device.details);
  snprintf(rec->status, sizeof rec->status, "%s", pe_run_status_name(r->status));
  snprintf(rec->message, sizeof rec->message, "%s", r->message);
  rec->device_type = r->device.type;
  rec->t_min = r->time_min_ms, rec->t_median = r->time_median_ms, rec->t_max = r->time_max_ms;
  rec->device_ms = r->device_median_ms >= 0 ? r->device_median_ms : NAN;
  rec->prepare_ms = r->prepare_ms, rec->warmup = r->warmup, rec->iterations = r->iterations;
  rec->gflops = r->gflops, rec->gbps = r->gbps, rec->tolerance = r->tolerance;
  rec->max_abs_err = r->max_abs_err, rec->rms_err = r->rms_err, rec->verified = r->verified;
  rec->verified_rows = r->verified_rows, rec->total_rows = r->total_rows;
}

/* A failed record for a backend of a cell that could not be built. */
static void add_failed(run_state *st, const char *cell, const char *backend, const char *why) {
  bench_rec *rec = bench_doc_add_rec(&st->doc, cell);
  if (!rec) return;
  snprintf(rec->backend, sizeof rec->backend, "%s", backend);
  snprintf(rec->status, sizeof rec->status, "failed");
  snprintf(rec->message, sizeof rec->message, "%s", why);
}

static bool needs_run(const run_state *st, const char *cell, const char *backend) {
  return !bench_doc_find(&st->doc, cell, backend);
}

static void note_plugins(run_state *st, const pe_result *r, const pe_workload_info *in) {
  const pe_plugin *p;
  if (in && pe_plugin_load(st->ctx, in->scheme, PE_PLUGIN_SCHEME, &p) == 0)
    bench_machine_add_plugin(&st->doc.machine, p);
  if (r->status != PE_RUN_FAILED || r->device.name[0])
    if (pe_plugin_load(st->ctx, r->backend, PE_PLUGIN_BACKEND, &p) == 0)
      bench_machine_add_plugin(&st->doc.machine, p);
}

/* Names in paths: '/' -> '_', ' ' -> ','. */
static void path_safe(char *s) {
  for (; *s; s++)
    if (*s == '/' || *s == ' ') *s = *s == '/' ? '_' : ',';
}

/* DIR/LABEL.npy, or DIR/CELL/LABEL.npy in a sweep; the record keeps the
 * path and a hash of the values, so that a --resume can compare them with
 * backends it runs later in the cell. */
static int save_output(run_state *st, const char *cell, const pe_workload_info *in,
                       const pe_result *r, bench_rec *rec) {
  char sub[1024], name[128], path[4096];
  /* the cell's name made safe before the separator is added, or the '/'
   * would become '_' and the files land beside DIR/CELL, not in it */
  snprintf(sub, sizeof sub, "%s", cell);
  snprintf(name, sizeof name, "%s", r->label);
  path_safe(sub);
  path_safe(name);
  mkdir(st->o->save_dir, 0755);
  if (cell[0]) {
    snprintf(path, sizeof path, "%s/%s", st->o->save_dir, sub);
    mkdir(path, 0755);
  }
  snprintf(path, sizeof path, "%s/%s%s%s.npy", st->o->save_dir, sub, cell[0] ? "/" : "", name);
  uint64_t shape[4] = {in->batch, in->q_heads, in->q_len, in->head_dim};
  if (pe_npy_write(st->ctx, path, r->output, 4, shape) == 0) {
    free(rec->saved_path);
    rec->saved_path = strdup(path);
    rec->saved_hash = bench_hash(r->output, (size_t)(shape[0] * shape[1] * shape[2] * shape[3]));
    return 0;
  }
  say(st, "--save-output: %s", pe_ctx_error(st->ctx));
  return 1;
}

/* The record of one backend's result (r NULL: it could not even start). */
static void record_result(run_state *st, const char *cell, const pe_workload *w,
                          const char *backend, pe_result *r, int rc, bench_output *out) {
  if (!r) return add_failed(st, cell, backend, pe_ctx_error(st->ctx));
  bench_rec *rec = bench_doc_add_rec(&st->doc, cell);
  if (!rec) return pe_result_free(r);
  const pe_workload_info *in = pe_workload_get_info(w);
  fill_result(rec, r);
  rec->interleaved = st->o->interleave;
  fill_work(rec, in);
  bench_roofline_fractions(&st->doc.machine, rec);
  note_plugins(st, r, in);
  if (rc != 0)
    say(st, "%s%s%s: %s: %s", cell, cell[0] ? " " : "", r->label, pe_run_status_name(r->status),
        bench_reason(r->backend, pe_run_status_name(r->status), r->message));
  if (rc == 0 && st->o->save_dir && save_output(st, cell, in, r, rec))
    snprintf(rec->status, sizeof rec->status, "failed");
  out->r = r;
  out->rec = rec;
}

static void run_backend(run_state *st, const char *cell, pe_config *cc, const pe_workload *w,
                        const char *backend, bench_output *out) {
  progress(st, cell, backend);
  pe_result *r = NULL;
  int rc = pe_run(st->ctx, w, cc, backend, &r);
  record_result(st, cell, w, backend, r, rc, out);
}

/* --interleave: the cell's backends timed together in rounds. */
static size_t run_interleaved(run_state *st, const char *cell, pe_config *cc, const pe_workload *w,
                              bench_output *outs) {
  const char *names[BENCH_MAX_BACKENDS];
  pe_result *rs[BENCH_MAX_BACKENDS];
  size_t n = 0;
  for (size_t b = 0; b < st->backends.n; b++)
    if (needs_run(st, cell, st->backends.v[b])) names[n++] = st->backends.v[b];
  progress(st, cell, "(interleaved)");
  pe_run_interleaved(st->ctx, w, cc, names, n, rs);
  for (size_t k = 0; k < n; k++) {
    /* each result's own status says what happened to it (a failed
     * verification is PE_RUN_FAILED too) */
    int rc = rs[k] && rs[k]->status == PE_RUN_OK ? 0 : 1;
    record_result(st, cell, w, names[k], rs[k], rc, &outs[k]);
  }
  return n;
}

/* Pointers into doc.recs move as it grows: find the records again. */
static void relink(run_state *st, const char *cell, bench_output *outs, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (outs[i].r) outs[i].rec = bench_doc_find(&st->doc, cell, outs[i].r->label);
}

/* ---- results carried over into a cell that runs again ---------------------------- */
/* A carried-over result's output, read back from the file its run saved. */
typedef struct carried_out {
  pe_result r;
  pe_tensor t;
} carried_out;

static bool usable(const bench_output *o) {
  return o->r && o->r->status == PE_RUN_OK && o->r->output;
}

/* Read `rec`'s saved output into c; 0, or why it cannot be compared with
 * outputs of `len` values (into why). */
static int load_carried(run_state *st, const bench_rec *rec, size_t len, bool encode,
                        carried_out *c, char *why, size_t size) {
  const char *b = rec->backend, *lead = "was carried over by --resume and its";
  if (!rec->saved_path)
    return snprintf(why, size, "%s %s output was not saved when it ran (--save-output)", b, lead), 1;
  if (pe_npy_read(st->ctx, rec->saved_path, &c->t) != 0)
    return snprintf(why, size, "%s %s saved output cannot be read: %s", b, lead,
                    pe_ctx_error(st->ctx)), 1;
  size_t count = 1;
  for (uint32_t k = 0; k < c->t.ndim; k++) count *= (size_t)c->t.shape[k];
  if (bench_hash(c->t.data, count) != rec->saved_hash)
    snprintf(why, size, "%s %s saved output %s has changed since (its hash differs)", b, lead,
             rec->saved_path);
  else if (count != len)
    snprintf(why, size, "%s %s saved output %s holds %zu values, the outputs %zu%s", b, lead,
             rec->saved_path, count, len, encode ? " (op = encode saves Q' only)" : "");
  else {
    c->r.struct_size = sizeof c->r;
    c->r.status = PE_RUN_OK;
    snprintf(c->r.label, sizeof c->r.label, "%s", rec->backend);
    snprintf(c->r.backend, sizeof c->r.backend, "%s", rec->plugin);
    c->r.tolerance = rec->tolerance;
    c->r.output = c->t.data;
    c->r.output_len = count;
    return 0;
  }
  pe_tensor_free(&c->t);
  return 1;
}

/* Record (and say) that `rec` and the cell's new outputs were not compared. */
static void add_gaps(run_state *st, const char *cell, const bench_rec *rec, const char *why,
                     const bench_output *outs, size_t n) {
  char names[512] = "";
  for (size_t j = 0; j < n; j++) {
    if (!usable(&outs[j])) continue;
    bench_gap *g = bench_doc_add_gap(&st->doc, cell);
    if (!g) return;
    snprintf(g->a, sizeof g->a, "%s", rec->backend);
    snprintf(g->b, sizeof g->b, "%s", outs[j].rec->backend);
    snprintf(g->why, sizeof g->why, "%s", why);
    size_t used = strlen(names);
    snprintf(names + used, sizeof names - used, "%s%s", used ? ", " : "", g->b);
  }
  say(st, "%s%s%s and %s not compared: %s", cell, cell[0] ? ": " : "", rec->backend, names, why);
}

/* The cell's results carried over by --resume, ok, and not run again, after
 * its n new outputs: those whose saved output reads back join outs (from
 * outs[n]); the pairs of the others with the new outputs are recorded as
 * not compared.  Returns the count of outputs. */
static size_t add_carried(run_state *st, const char *cell, const pe_workload_info *in,
                          bench_output *outs, size_t n, carried_out *co) {
  size_t len = 0, m = n;
  for (size_t j = 0; j < n && !len; j++) len = usable(&outs[j]) ? outs[j].r->output_len : 0;
  if (!len) return n; /* nothing new to compare them with */
  for (size_t i = 0; i < st->carried; i++) {
    bench_rec *rec = &st->doc.recs[i];
    if (strcmp(rec->cell, cell) || !bench_rec_ok(rec)) continue;
    char why[512];
    carried_out *c = &co[m - n];
    if (m - n == BENCH_MAX_BACKENDS)
      snprintf(why, sizeof why, "%s was carried over by --resume, one of over %d such results "
               "in the cell", rec->backend, BENCH_MAX_BACKENDS);
    else if (load_carried(st, rec, len, in->op == PE_OP_ENCODE, c, why, sizeof why) == 0) {
      outs[m++] = (bench_output){.r = &c->r, .rec = rec, .carried = true};
      continue;
    }
    add_gaps(st, cell, rec, why, outs, n);
  }
  return m;
}

/* Compare the n new outputs with each other and with the results carried
 * over into the cell (outs has room for 2 * BENCH_MAX_BACKENDS). */
static void compare_cell(run_state *st, const char *cell, const pe_workload *w,
                         bench_output *outs, size_t n) {
  relink(st, cell, outs, n);
  if (st->o->plot_dir && bench_position_errors(st->ctx, w, outs, n) != 0)
    say(st, "error vs position: %s", pe_ctx_error(st->ctx));
  carried_out *co = st->carried ? calloc(BENCH_MAX_BACKENDS, sizeof *co) : NULL;
  if (st->carried && !co) say(st, "out of memory: no comparison with the results carried over");
  size_t m = co ? add_carried(st, cell, pe_workload_get_info(w), outs, n, co) : n;
  bool agree = bench_agreement(&st->doc, cell, outs, m);
  for (size_t i = 0; i < m - n; i++) pe_tensor_free(&co[i].t);
  free(co);
  if (agree) return;
  progress_clear(st);
  fprintf(stderr, "pe-bench: %s%sthe backends' outputs disagree beyond the tolerance:\n", cell,
          cell[0] ? ": " : "");
  bench_print_matrix(stderr, &st->doc, cell);
}

/* A cell whose workload cannot be built (inputs, memory limit): a config
 * or input error.  A single config stops there with no report; a sweep
 * records the cell's backends as failed and goes on. */
static void cell_failed(run_state *st, const char *cell) {
  say(st, "%s%s%s", cell, cell[0] ? ": " : "", pe_ctx_error(st->ctx));
  if (!cell[0]) {
    st->fatal = true;
    return;
  }
  st->input_errors++;
  for (size_t b = 0; b < st->backends.n; b++)
    if (needs_run(st, cell, st->backends.v[b])) add_failed(st, cell, st->backends.v[b], pe_ctx_error(st->ctx));
}

static void run_cell(run_state *st, const char *cell) {
  size_t todo = 0;
  for (size_t b = 0; b < st->backends.n; b++) todo += needs_run(st, cell, st->backends.v[b]);
  if (!todo) {
    st->skipped++;
    return;
  }
  pe_config *cc = NULL;
  pe_workload *w = NULL;
  /* the scheme computes twice more: its messages were printed by check_cells */
  bench_log_phase(&st->log, BENCH_LOG_BUILD, st->cell, cell);
  int rc = pe_sweep_cell(st->ctx, st->sw, st->cell, &cc);
  if (rc == 0) rc = pe_workload_build(st->ctx, cc, &w);
  bench_log_phase(&st->log, BENCH_LOG_RUN, st->cell, cell);
  if (rc != 0) {
    cell_failed(st, cell);
    pe_config_free(cc);
    return;
  }
  bench_output outs[2 * BENCH_MAX_BACKENDS] = {{0}};
  size_t n = 0;
  if (st->o->interleave)
    n = run_interleaved(st, cell, cc, w, outs);
  else
    for (size_t b = 0; b < st->backends.n && !interrupted; b++)
      if (needs_run(st, cell, st->backends.v[b])) run_backend(st, cell, cc, w, st->backends.v[b], &outs[n++]);
  if (!interrupted) compare_cell(st, cell, w, outs, n);
  for (size_t i = 0; i < n; i++) pe_result_free((pe_result *)outs[i].r);
  pe_workload_free(w);
  pe_config_free(cc);
}

/* ---- the run -------------------------------------------------------------------- */
static int checkpoint(run_state *st) {
  if (!st->o->output) return 0;
  if (bench_write(st->ctx, &st->doc, st->o->format, st->o->output) == 0) return 0;
  progress_clear(st);
  fprintf(stderr, "pe-bench: %s\n", pe_ctx_error(st->ctx));
  return 1;
}

static int run_cells(run_state *st) {
  size_t n = pe_sweep_cell_count(st->sw);
  for (st->cell = 0; st->cell < n && !interrupted; st->cell++) {
    char *cell = cell_label(st->sw, st->cell);
    if (!cell) return 2;
    run_cell(st, cell);
    bench_log_phase(&st->log, BENCH_LOG_SETUP, 0, "");
    free(cell);
    if (st->fatal) return 2;
    if (checkpoint(st)) return 1;
  }
  progress_clear(st);
  if (st->skipped)
    fprintf(stderr, "pe-bench: --resume: %zu of %zu cells were already done in %s\n", st->skipped,
            n, st->o->output);
  return 0;
}

static int final_status(run_state *st) {
  int rc = 0;
  for (size_t i = 0; i < st->doc.n_recs; i++)
    if (bench_rec_failed(&st->doc.recs[i], st->explicit_backends)) rc = 1;
  if (st->input_errors) {
    fprintf(stderr, "pe-bench: %zu cell%s could not be built (see above)\n", st->input_errors,
            st->input_errors == 1 ? "" : "s");
    rc = 2;
  }
  if (interrupted) {
    fprintf(stderr, "pe-bench: interrupted after %zu of %zu cells%s\n", st->cell,
            pe_sweep_cell_count(st->sw), st->o->output ? "; --resume carries on" : "");
    return 128 + (int)interrupted;
  }
  return rc;
}

static int report(run_state *st) {
  int rc = 0;
  if (!st->o->output && bench_write(st->ctx, &st->doc, st->o->format, NULL) != 0) rc = 1;
  else if (st->o->output && checkpoint(st)) return 1;
  if (rc) fprintf(stderr, "pe-bench: %s\n", pe_ctx_error(st->ctx));
  char err[1024];
  if (st->o->plot_dir && bench_plot(st->ctx, &st->doc, st->o->plot_dir, err, sizeof err) != 0) {
    fprintf(stderr, "pe-bench: --plot %s: %s\n", st->o->plot_dir, err);
    rc = 1;
  }
  return rc;
}

static int setup(run_state *st) {
  bench_opts *o = st->o;
  if (pe_config_load(st->ctx, o->config, &st->cfg) != 0) {
    fprintf(stderr, "pe-bench: %s\n", pe_ctx_error(st->ctx));
    return 2;
  }
  int rc = 0;
  for (size_t i = 0; i < o->n_sets && rc == 0; i++) rc = apply_set(st->ctx, st->cfg, o->sets[i]);
  if (rc == 0 && pe_sweep_expand(st->ctx, st->cfg, &st->sw) != 0) {
    fprintf(stderr, "pe-bench: %s\n", pe_ctx_error(st->ctx));
    rc = 2;
  }
  if (rc == 0) rc = check_cells(st);
  if (rc == 0) rc = pick_backends(st);
  if (rc == 0) rc = check_backend_options(st);
  return rc;
}

static int run_all(run_state *st) {
  int rc = init_doc(st);
  if (rc == 0 && st->o->resume) rc = resume(st);
  if (rc) return rc;
  if (!st->o->no_roofline) bench_machine_roofline(&st->doc.machine);
  for (size_t i = 0; i < st->doc.n_recs; i++)
    bench_roofline_fractions(&st->doc.machine, &st->doc.recs[i]);
  catch_signals();
  if ((rc = run_cells(st)) == 0 && (rc = report(st)) == 0) rc = final_status(st);
  return rc;
}

int bench_run(pe_ctx *ctx, bench_opts *o) {
  run_state st = {.ctx = ctx, .o = o, .log = {.progress = o->progress, .label = ""}};
  bench_log_attach(ctx, &st.log);
  int rc = setup(&st);
  if (rc == 0) rc = o->dry_run ? dry_run(&st) : run_all(&st);
  bench_names_free(&st.backends);
  bench_doc_free(&st.doc);
  pe_sweep_free(st.sw);
  pe_config_free(st.cfg);
  bench_log_detach(ctx, &st.log);
  return rc;
}
