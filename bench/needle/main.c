/* pe_needle_main: the command line of `pe-needle` and `pe-probe needle`. */
#include "needle.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#ifdef _OPENMP
#include <omp.h>
#endif

static const char *HELP =
    "\n"
    "Needle in a haystack on a tiny transformer trained here, and how far\n"
    "context-extension schemes carry it beyond its training length.\n"
    "\n"
    "What this is: a small decoder-only transformer (float32, written in C, trained\n"
    "on this CPU in minutes) learns a synthetic task: a haystack of random filler\n"
    "tokens holds one \"KEY VALUE\" pair (optionally with distractor pairs), the\n"
    "last token repeats KEY, and the model must answer VALUE.  The model is\n"
    "trained at one length (L_train) with one positional scheme; it is then\n"
    "evaluated at 1..16 x L_train and needle depths 0..100%, with inference-time\n"
    "schemes (rope, pi, ntk, dynamic-ntk, yarn: a new [scheme] in the workload of\n"
    "every layer's attention, which runs through a libpe backend plugin), with and\n"
    "without a short fine-tune at a longer length.\n"
    "What it is not: a measure of any LLM.  The accuracies are not comparable to\n"
    "published needle-in-a-haystack numbers of large models.\n"
    "\n"
    "Model:\n"
    "  --model DIR          evaluate a saved model (default: [eval] model of the\n"
    "                       config when that directory exists, else train)\n"
    "  --train              train from the config even when a model exists\n"
    "  --save DIR           save the trained model (model.ini + one .npy per tensor)\n"
    "  --steps N            training steps (overrides [train] steps)\n"
    "  --no-eval            stop after training (and saving)\n"
    "Evaluation:\n"
    "  -b, --backend NAME   libpe backend for every layer's attention; repeat it to\n"
    "                       compare backends (cells that differ are reported).\n"
    "                       \"builtin\": the model's own C attention (not a libpe\n"
    "                       backend).  Default: [eval] backends of the config\n"
    "  --schemes LIST       inference-time schemes, e.g. rope,pi,ntk,dynamic-ntk,yarn\n"
    "  --lengths LIST       context lengths as multiples of L_train, e.g. 1,2,4,8,16\n"
    "  --depths LIST        needle depths in %, e.g. 0,50,100\n"
    "  --trials N           trials per (length, depth) cell\n"
    "  --distractors N      distractor pairs in every haystack (the second variant)\n"
    "  --finetune-steps N   fine-tune steps per scheme at [finetune] seq_len (0: none)\n"
    "  --no-finetune        same as --finetune-steps 0\n"
    "Output:\n"
    "  -f, --format FMT     table (default), csv or json, on stdout or --output\n"
    "  -o, --output FILE    write the report to FILE (atomically: temp file + rename;\n"
    "                       a replaced file keeps its mode)\n"
    "  --out-dir DIR        write needle.csv, needle.json, one heatmap SVG per scheme\n"
    "                       (heatmap-SCHEME[-ft][-BACKEND].svg) and compare.svg\n"
    "  --replot CSV         no training or evaluation: read the cells of an earlier\n"
    "                       run's needle.csv and write the report and figures again\n"
    "  -j, --threads N      OpenMP threads of the model (and of the openmp backend)\n"
    "  -q, --quiet          no progress lines on stderr\n"
    "  -h, --help           this text\n"
    "\n"
    "Scores: exact-match accuracy per cell with a Wilson 95% interval, the mean\n"
    "log-probability of VALUE, and per scheme the effective length: the longest\n"
    "length whose accuracy over all depths (and every shorter length's) is >= 80%.\n"
    "docs/NEEDLE.md describes the task, the model and the config.\n"
    "Exit status: 0 success; 1 a run failed; 2 usage or config errors.\n";

typedef struct opts {
  const char *config, *model, *save, *output, *out_dir, *replot;
  bool train, no_eval, quiet;
  int format, threads;
  long steps, ft_steps;
  char schemes[512], lengths[512], depths[512], backends[ND_MAX_BACKENDS][64];
  uint32_t n_backends;
  long trials, distractors;
} opts;

static int split_words(const char *s, char (*out)[64], uint32_t cap, uint32_t *n) {
  *n = 0;
  while (*s) {
    while (*s == ',' || isspace((unsigned char)*s)) s++;
    if (!*s) break;
    size_t l = strcspn(s, ", \t");
    if (l >= 64 || *n >= cap) return -1;
    memcpy(out[*n], s, l);
    out[(*n)++][l] = '\0';
    s += l;
  }
  return *n ? 0 : -1;
}

static int split_nums(const char *s, double lo, double hi, double *out, uint32_t cap, uint32_t *n) {
  char w[ND_MAX_DEPTHS + ND_MAX_LENGTHS][64];
  uint32_t k;
  if (split_words(s, w, cap, &k)) return -1;
  for (uint32_t i = 0; i < k; i++) {
    char *end;
    out[i] = strtod(w[i], &end);
    if (end == w[i] || *end || !(out[i] >= lo && out[i] <= hi)) return -1;
  }
  *n = k;
  return 0;
}

static long parse_long(const char *name, const char *v, long lo, long hi) {
  char *end;
  errno = 0;
  long x = strtol(v, &end, 10);
  if (errno || end == v || *end || x < lo || x > hi) {
    fprintf(stderr, "needle: %s %s: expected an integer in [%ld, %ld]\n", name, v, lo, hi);
    return -1;
  }
  return x;
}

static int dir_has_model(const char *dir) {
  char p[4200];
  struct stat st;
  snprintf(p, sizeof p, "%s/model.ini", dir);
  return stat(p, &st) == 0;
}

static int parse_opts(int argc, char **argv, opts *o) {
  enum { O_MODEL = 256, O_TRAIN, O_SAVE, O_STEPS, O_NOEVAL, O_SCHEMES, O_LENGTHS, O_DEPTHS,
         O_TRIALS, O_DISTR, O_FTSTEPS, O_NOFT, O_OUTDIR, O_REPLOT };
  static const struct option lo[] = {
      {"model", required_argument, NULL, O_MODEL}, {"train", no_argument, NULL, O_TRAIN},
      {"save", required_argument, NULL, O_SAVE}, {"steps", required_argument, NULL, O_STEPS},
      {"no-eval", no_argument, NULL, O_NOEVAL}, {"backend", required_argument, NULL, 'b'},
      {"schemes", required_argument, NULL, O_SCHEMES},
      {"lengths", required_argument, NULL, O_LENGTHS},
      {"depths", required_argument, NULL, O_DEPTHS}, {"trials", required_argument, NULL, O_TRIALS},
      {"distractors", required_argument, NULL, O_DISTR},
      {"finetune-steps", required_argument, NULL, O_FTSTEPS},
      {"no-finetune", no_argument, NULL, O_NOFT}, {"format", required_argument, NULL, 'f'},
      {"output", required_argument, NULL, 'o'}, {"out-dir", required_argument, NULL, O_OUTDIR},
      {"replot", required_argument, NULL, O_REPLOT},
      {"threads", required_argument, NULL, 'j'}, {"quiet", no_argument, NULL, 'q'},
      {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
  memset(o, 0, sizeof *o);
  o->format = PE_FORMAT_TABLE;
  /* pe-probe passes argv + 1: name the command as the user typed it */
  const char *prog = !strcmp(argv[0], "needle") ? "pe-probe needle" : argv[0];
  o->steps = o->ft_steps = o->trials = o->distractors = -1;
  optind = 0; /* glibc: full re-initialisation (pe-probe may have used getopt) */
  for (int ch; (ch = getopt_long(argc, argv, "b:f:o:j:qh", lo, NULL)) != -1;) {
    switch (ch) {
    case 'h': printf("usage: %s CONFIG [options]\n", prog), fputs(HELP, stdout), exit(0);
    case O_MODEL: o->model = optarg; break;
    case O_TRAIN: o->train = true; break;
    case O_SAVE: o->save = optarg; break;
    case O_STEPS: if ((o->steps = parse_long("--steps", optarg, 0, 100000000)) < 0) return 2; break;
    case O_NOEVAL: o->no_eval = true; break;
    case 'b':
      if (o->n_backends >= ND_MAX_BACKENDS || strlen(optarg) >= 64)
        return fprintf(stderr, "needle: too many --backend options\n"), 2;
      snprintf(o->backends[o->n_backends++], 64, "%s", optarg);
      break;
    case O_SCHEMES: snprintf(o->schemes, sizeof o->schemes, "%s", optarg); break;
    case O_LENGTHS: snprintf(o->lengths, sizeof o->lengths, "%s", optarg); break;
    case O_DEPTHS: snprintf(o->depths, sizeof o->depths, "%s", optarg); break;
    case O_TRIALS: if ((o->trials = parse_long("--trials", optarg, 1, 10000000)) < 0) return 2; break;
    case O_DISTR: if ((o->distractors = parse_long("--distractors", optarg, 0, 64)) < 0) return 2; break;
    case O_FTSTEPS: if ((o->ft_steps = parse_long("--finetune-steps", optarg, 0, 100000000)) < 0) return 2; break;
    case O_NOFT: o->ft_steps = 0; break;
    case 'f':
      if ((o->format = pe_format_parse(optarg)) < 0)
        return fprintf(stderr, "needle: --format %s: expected table, csv or json\n", optarg), 2;
      break;
    case 'o': o->output = optarg; break;
    case O_OUTDIR: o->out_dir = optarg; break;
    case O_REPLOT: o->replot = optarg; break;
    case 'j': if ((o->threads = (int)parse_long("--threads", optarg, 1, 4096)) < 0) return 2; break;
    case 'q': o->quiet = true; break;
    default: return fprintf(stderr, "(see %s --help)\n", prog), 2;
    }
  }
  if (optind + 1 != argc)
    return fprintf(stderr, "usage: %s CONFIG [options] (see --help)\n", prog), 2;
  if (o->model && o->train)
    return fprintf(stderr, "needle: --model loads a model, --train trains one: give one of them\n"), 2;
  o->config = argv[optind];
  return 0;
}

static int apply_opts(const opts *o, nd_config *c) {
  nd_evalcfg *e = &c->eval;
  if (o->steps >= 0) c->train.steps = (uint32_t)o->steps;
  if (o->ft_steps >= 0) c->finetune.steps = (uint32_t)o->ft_steps;
  if (o->trials > 0) e->trials = (uint32_t)o->trials;
  if (o->distractors >= 0) e->distractors = (uint32_t)o->distractors;
  if (o->schemes[0] && split_words(o->schemes, e->schemes, ND_MAX_SCHEMES, &e->n_schemes))
    return fprintf(stderr, "needle: --schemes %s: expected 1..%d names\n", o->schemes, ND_MAX_SCHEMES), 2;
  if (o->lengths[0] && split_nums(o->lengths, 0.01, 65536, e->lengths, ND_MAX_LENGTHS, &e->n_lengths))
    return fprintf(stderr, "needle: --lengths %s: expected 1..%d positive multiples\n", o->lengths, ND_MAX_LENGTHS), 2;
  if (o->depths[0] && split_nums(o->depths, 0, 100, e->depths, ND_MAX_DEPTHS, &e->n_depths))
    return fprintf(stderr, "needle: --depths %s: expected 1..%d percentages\n", o->depths, ND_MAX_DEPTHS), 2;
  if (o->n_backends) {
    memcpy(e->backends, o->backends, sizeof e->backends);
    e->n_backends = o->n_backends;
  }
  return 0;
}

/* Take architecture, task, training record and training scheme from a
 * loaded model.ini; say so when the config disagrees. */
static void adopt_model(nd_config *c, nd_config *mc, bool quiet) {
  if (!quiet && (memcmp(&c->arch, &mc->arch, sizeof c->arch) || c->train.seq_len != mc->train.seq_len ||
                 strcmp(c->train.scheme, mc->train.scheme)))
    fprintf(stderr, "needle: note: the model's own model.ini sets the architecture, task and "
            "L_train (the config's [model]/[task]/[train] differ and are not used)\n");
  c->arch = mc->arch;
  c->task = mc->task;
  c->train = mc->train;
  memcpy(c->record, mc->record, sizeof c->record);
  const char *lines = nd_scheme_lines(mc, mc->train.scheme);
  nd_schemesec *dst = NULL;
  for (uint32_t i = 0; i < c->n_sec; i++)
    if (!strcmp(c->sec[i].name, mc->train.scheme)) dst = &c->sec[i];
  if (!dst && c->n_sec < ND_MAX_SCHEMES) {
    dst = &c->sec[c->n_sec++];
    snprintf(dst->name, sizeof dst->name, "%s", mc->train.scheme);
    dst->text = NULL;
  }
  if (dst) {
    if (!quiet && dst->text && strcmp(dst->text, lines))
      fprintf(stderr, "needle: note: [scheme.%s] taken from the model (it was trained with it)\n",
              mc->train.scheme);
    free(dst->text);
    dst->text = strdup(lines);
  }
}

typedef struct report_job {
  const nd_report *r;
  int format;
} report_job;

static int put_report(void *user, FILE *fp) {
  const report_job *j = user;
  if (j->format == PE_FORMAT_CSV) return nd_report_csv(fp, j->r);
  if (j->format == PE_FORMAT_JSON) return nd_report_json(fp, j->r);
  nd_report_table(fp, j->r);
  return 0;
}

/* The report to `path` (NULL: stdout) through pe_write_atomic, like the
 * rest of libpe's files (see nd_write_file). */
static int write_report(pe_ctx *ctx, const nd_report *r, int format, const char *path) {
  report_job j = {r, format};
  if (pe_write_atomic(ctx, path, put_report, &j) == 0) return 0;
  fprintf(stderr, "needle: %s\n", path ? pe_ctx_error(ctx) : "write to stdout failed");
  return 1;
}

static void agreement(nd_report *r) {
  size_t n = 0, cap = sizeof r->agreement;
  char *s = r->agreement;
  s[0] = '\0';
  bool any = false;
  for (size_t i = 0; i < r->n_grids; i++)
    for (size_t j = i + 1; j < r->n_grids; j++) {
      const nd_grid *a = &r->grids[i], *b = &r->grids[j];
      if (strcmp(a->scheme, b->scheme) || a->finetuned != b->finetuned || !strcmp(a->backend, b->backend))
        continue;
      bool first = true;
      for (size_t k = 0; k < i; k++)
        if (!strcmp(r->grids[k].scheme, a->scheme) && r->grids[k].finetuned == a->finetuned)
          first = false;
      if (!first) continue; /* compare every backend with the first one */
      any = true;
      uint32_t diff = 0, cells = 0;
      double dl = 0;
      char list[512] = "";
      size_t ln = 0;
      for (uint32_t l = 0; l < a->n_lengths; l++)
        for (uint32_t d = 0; d < a->n_depths; d++) {
          const nd_cell *x = &a->cell[l][d], *y = &b->cell[l][d];
          cells++;
          double la = x->trials ? x->logp_sum / x->trials : 0, lb = y->trials ? y->logp_sum / y->trials : 0;
          if (fabs(la - lb) > dl) dl = fabs(la - lb);
          if (x->correct != y->correct) {
            diff++;
            if (ln < sizeof list - 64)
              ln += (size_t)snprintf(list + ln, sizeof list - ln, " (L %u, depth %g%%: %u vs %u)",
                                     a->lengths[l], a->depths[d], x->correct, y->correct);
          }
        }
      if (n < cap)
        n += (size_t)snprintf(s + n, cap - n, "backend agreement, %s%s: %s vs %s: %u of %u cells "
                              "differ%s%s; max |mean logprob difference| %.2e\n", a->scheme,
                              a->finetuned ? " + fine-tune" : "", a->backend, b->backend, diff,
                              cells, diff ? ":" : " (identical accuracies)", list, dl);
    }
  (void)any;
}

/* The grids of an earlier run's needle.csv (nd_report_csv's columns). */
static int read_csv(const char *path, nd_report *r, char *err, size_t errlen) {
  FILE *fp = fopen(path, "r");
  if (!fp) return snprintf(err, errlen, "%s: %s", path, strerror(errno)), 2;
  char line[1024];
  size_t cap = 0, lineno = 0;
  int rc = 0;
  while (rc == 0 && fgets(line, sizeof line, fp)) {
    if (++lineno == 1) continue; /* header */
    char scheme[64], backend[64];
    int ft;
    unsigned length, trials, correct;
    double lx, depth, acc, lo, hi, lp;
    if (sscanf(line, "%63[^,],%d,%63[^,],%u,%lf,%lf,%u,%u,%lf,%lf,%lf,%lf", scheme, &ft, backend,
               &length, &lx, &depth, &trials, &correct, &acc, &lo, &hi, &lp) != 12 || !(lx > 0)) {
      rc = 2;
      snprintf(err, errlen, "%s:%zu: not a needle.csv row", path, lineno);
      break;
    }
    nd_grid *g = NULL;
    for (size_t i = 0; i < r->n_grids && !g; i++)
      if (!strcmp(r->grids[i].scheme, scheme) && !strcmp(r->grids[i].backend, backend) &&
          r->grids[i].finetuned == (ft != 0))
        g = &r->grids[i];
    if (!g) {
      if (r->n_grids == cap) {
        cap = cap ? 2 * cap : 8;
        nd_grid *ng = realloc(r->grids, cap * sizeof *ng);
        if (!ng) { rc = 1; break; }
        r->grids = ng;
      }
      g = &r->grids[r->n_grids++];
      memset(g, 0, sizeof *g);
      snprintf(g->scheme, sizeof g->scheme, "%s", scheme);
      snprintf(g->backend, sizeof g->backend, "%s", backend);
      g->finetuned = ft != 0;
      g->L_train = (uint32_t)lround(length / lx);
    }
    uint32_t li = 0, di = 0;
    while (li < g->n_lengths && g->lengths[li] != length) li++;
    while (di < g->n_depths && g->depths[di] != depth) di++;
    if ((li == g->n_lengths && li == ND_MAX_LENGTHS) || (di == g->n_depths && di == ND_MAX_DEPTHS)) {
      rc = 2;
      snprintf(err, errlen, "%s:%zu: too many lengths or depths", path, lineno);
      break;
    }
    if (li == g->n_lengths) g->lengths[g->n_lengths++] = length;
    if (di == g->n_depths) g->depths[g->n_depths++] = depth;
    g->cell[li][di] = (nd_cell){.trials = trials, .correct = correct, .logp_sum = lp * trials};
  }
  fclose(fp);
  if (rc == 0 && r->n_grids == 0) rc = 2, snprintf(err, errlen, "%s: no rows", path);
  return rc;
}

int pe_needle_main(int argc, char **argv) {
  opts o;
  int rc = parse_opts(argc, argv, &o);
  if (rc) return rc;
#ifdef _OPENMP
  if (o.threads) omp_set_num_threads(o.threads);
#endif
  char err[4096] = "";
  nd_config c;
  nd_config_defaults(&c);
  if ((rc = nd_config_load(o.config, &c, err, sizeof err))) {
    fprintf(stderr, "needle: %s\n", err);
    nd_config_free(&c);
    return 2;
  }
  if ((rc = apply_opts(&o, &c))) return nd_config_free(&c), rc;
  FILE *prog = o.quiet ? NULL : stderr;
  pe_ctx *ctx = NULL;
  if (pe_ctx_new(&ctx)) return fprintf(stderr, "needle: cannot create a libpe context\n"), 1;

  nd_model m = {0};
  nd_report r = {.cfg = &c};
  char note[4400] = "";
  if (o.replot) {
    if ((rc = read_csv(o.replot, &r, err, sizeof err))) {
      fprintf(stderr, "needle: %s\n", err);
      goto out;
    }
    snprintf(note, sizeof note, "cells re-read from %s", o.replot);
    r.model_note = note;
    c.eval.trials = r.grids[0].cell[0][0].trials;
    c.eval.n_backends = 0;
    for (size_t i = 0; i < r.n_grids; i++) {
      uint32_t b = 0;
      while (b < c.eval.n_backends && strcmp(c.eval.backends[b], r.grids[i].backend)) b++;
      if (b == c.eval.n_backends && b < ND_MAX_BACKENDS)
        snprintf(c.eval.backends[c.eval.n_backends++], 64, "%s", r.grids[i].backend);
    }
    goto emit;
  }
  const char *load = o.model ? o.model : (!o.train && c.eval.model[0] && dir_has_model(c.eval.model) ? c.eval.model : NULL);
  if (load && !o.train) {
    if (o.save) {
      fprintf(stderr, "needle: --save saves a model trained by this run; %s is loaded (add "
              "--train to train one)\n", load);
      rc = 2;
      goto out;
    }
    nd_config mc;
    if ((rc = nd_model_load(ctx, load, &m, &mc, err, sizeof err))) {
      fprintf(stderr, "needle: %s\n", err);
      nd_config_free(&mc);
      rc = 2;
      goto out;
    }
    adopt_model(&c, &mc, o.quiet);
    nd_config_free(&mc);
    snprintf(note, sizeof note, "loaded from %s", load);
    if ((rc = nd_config_check(&c, err, sizeof err))) {
      fprintf(stderr, "needle: %s\n", err);
      goto out;
    }
  } else {
    if (nd_model_alloc(&m, &c.arch)) {
      fprintf(stderr, "needle: out of memory\n");
      rc = 1;
      goto out;
    }
    nd_model_init(&m, c.train.seed);
    if (prog)
      fprintf(prog, "needle: training %zu parameters with %s at L_train %u (%u steps x batch %u)\n",
              m.n_params, c.train.scheme, c.train.seq_len, c.train.steps, c.train.batch);
    if ((rc = nd_train(ctx, &c, &c.train, &m, prog, "train", &r.train, err, sizeof err))) {
      fprintf(stderr, "needle: %s\n", err);
      goto out;
    }
    r.trained = true;
    snprintf(note, sizeof note, "trained here from %s", c.path);
    if (o.save) {
      char rec[8192];
      (void)!snprintf(rec, sizeof rec, "config = %s\nlibpe = %s\nfinal_loss = %.6f\nfinal_accuracy = %.4f\n"
               "train_seconds = %.1f\ntokens_per_second = %.0f\nthreads = %d\n", c.path,
               pe_version_string(), r.train.final_loss, r.train.final_acc, r.train.seconds,
               r.train.tokens_per_s, r.train.threads);
      if ((rc = nd_model_save(ctx, &m, &c, o.save, rec, err, sizeof err))) {
        fprintf(stderr, "needle: %s\n", err);
        goto out;
      }
      if (prog) fprintf(prog, "needle: saved the model to %s\n", o.save);
    }
  }
  r.model_note = note;
  if (o.no_eval) goto out;

  /* Inference-time schemes other than the training one: rotary models only. */
  {
    pe_config *wc;
    pe_workload *w;
    if ((rc = nd_workload(ctx, &c, c.train.scheme, 1, 8, 8, &wc, &w, err, sizeof err))) {
      fprintf(stderr, "needle: %s\n", err);
      goto out;
    }
    bool rotary = pe_workload_get_info(w)->tables->kind == PE_KIND_ROTARY;
    pe_workload_free(w);
    pe_config_free(wc);
    for (uint32_t s = 0; s < c.eval.n_schemes; s++) {
      if (!rotary && strcmp(c.eval.schemes[s], c.train.scheme)) {
        fprintf(stderr, "needle: scheme %s: the model was trained with %s (not rotary); "
                "inference-time scheme swaps apply to RoPE-trained models (use --schemes %s)\n",
                c.eval.schemes[s], c.train.scheme, c.train.scheme);
        rc = 2;
        goto out;
      }
      char *t = nd_scheme_text(ctx, &c, c.eval.schemes[s], err, sizeof err);
      if (!t) {
        fprintf(stderr, "needle: %s\n", err);
        rc = 2;
        goto out;
      }
      snprintf(r.scheme_text[s], sizeof r.scheme_text[s], "%s", t);
      free(t);
    }
  }
  size_t per = c.eval.n_backends * (c.finetune.steps ? 2 : 1);
  r.grids = calloc(c.eval.n_schemes * per, sizeof *r.grids);
  if (!r.grids) {
    rc = 1;
    goto out;
  }
  for (uint32_t s = 0; s < c.eval.n_schemes && rc == 0; s++) {
    const char *scheme = c.eval.schemes[s];
    for (uint32_t b = 0; b < c.eval.n_backends && rc == 0; b++) {
      nd_grid *g = &r.grids[r.n_grids];
      g->finetuned = false;
      if ((rc = nd_eval(ctx, &c, &m, scheme, c.eval.backends[b], g, prog, err, sizeof err)))
        fprintf(stderr, "needle: %s on %s: %s\n", scheme, c.eval.backends[b], err), rc = 1;
      else r.n_grids++;
    }
    if (rc || !c.finetune.steps) continue;
    nd_model ft;
    if (nd_model_copy(&ft, &m)) {
      rc = 1;
      break;
    }
    nd_traincfg tc = c.finetune;
    snprintf(tc.scheme, sizeof tc.scheme, "%s", scheme);
    nd_train_stats fst;
    char label[96];
    snprintf(label, sizeof label, "finetune %s", scheme);
    if ((rc = nd_train(ctx, &c, &tc, &ft, prog, label, &fst, err, sizeof err)))
      fprintf(stderr, "needle: fine-tune %s: %s\n", scheme, err), rc = 1;
    r.ft_seconds[s] = fst.seconds;
    for (uint32_t b = 0; b < c.eval.n_backends && rc == 0; b++) {
      nd_grid *g = &r.grids[r.n_grids];
      g->finetuned = true;
      if ((rc = nd_eval(ctx, &c, &ft, scheme, c.eval.backends[b], g, prog, err, sizeof err)))
        fprintf(stderr, "needle: %s (fine-tuned) on %s: %s\n", scheme, c.eval.backends[b], err), rc = 1;
      else r.n_grids++;
    }
    nd_model_free(&ft);
  }
  if (rc) goto out;
emit:
  agreement(&r);
  if ((rc = write_report(ctx, &r, o.format, o.output))) goto out;
  if (o.out_dir) {
    struct stat st;
    if (stat(o.out_dir, &st) && mkdir(o.out_dir, 0777)) {
      fprintf(stderr, "needle: %s: %s\n", o.out_dir, strerror(errno));
      rc = 1;
      goto out;
    }
    char path[4400];
    snprintf(path, sizeof path, "%s/needle.csv", o.out_dir);
    rc |= write_report(ctx, &r, PE_FORMAT_CSV, path);
    snprintf(path, sizeof path, "%s/needle.json", o.out_dir);
    rc |= write_report(ctx, &r, PE_FORMAT_JSON, path);
    for (size_t i = 0; i < r.n_grids && rc == 0; i++) {
      const nd_grid *g = &r.grids[i];
      size_t len;
      char *svg = nd_svg_heatmap(g, c.eval.threshold, &len);
      if (c.eval.n_backends > 1)
        snprintf(path, sizeof path, "%s/heatmap-%s%s-%s.svg", o.out_dir, g->scheme,
                 g->finetuned ? "-ft" : "", g->backend);
      else
        snprintf(path, sizeof path, "%s/heatmap-%s%s.svg", o.out_dir, g->scheme, g->finetuned ? "-ft" : "");
      if (!svg || nd_write_file(ctx, path, svg, len))
        fprintf(stderr, "needle: %s\n", svg ? pe_ctx_error(ctx) : "out of memory"), rc = 1;
      free(svg);
    }
    /* the comparison figure: the first backend's grids */
    const nd_grid *sel[2 * ND_MAX_SCHEMES];
    size_t ns = 0;
    for (size_t i = 0; i < r.n_grids && ns < 2 * ND_MAX_SCHEMES; i++)
      if (!strcmp(r.grids[i].backend, c.eval.backends[0])) sel[ns++] = &r.grids[i];
    char title[256];
    snprintf(title, sizeof title, "tiny model trained here with %s at L_train = %u (synthetic task, "
             "not an LLM score); %u trials per cell; backend %s", c.train.scheme, c.train.seq_len,
             c.eval.trials, c.eval.backends[0]);
    size_t len;
    char *svg = rc ? NULL : nd_svg_compare(sel, ns, c.eval.threshold, title, &len);
    snprintf(path, sizeof path, "%s/compare.svg", o.out_dir);
    if (rc == 0 && (!svg || nd_write_file(ctx, path, svg, len)))
      fprintf(stderr, "needle: %s\n", svg ? pe_ctx_error(ctx) : "out of memory"), rc = 1;
    free(svg);
    if (rc == 0 && prog) fprintf(prog, "needle: wrote %s/{needle.csv,needle.json,heatmap-*.svg,compare.svg}\n", o.out_dir);
  }
out:
  free(r.grids);
  nd_model_free(&m);
  nd_config_free(&c);
  pe_ctx_free(ctx);
  return rc;
}
