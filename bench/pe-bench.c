/* pe-bench: run an INI workload or a sweep of them on backends, verify each
 * against the float64 oracle and the other backends, time it, report;
 * compare reports.  See `pe-bench --help`; the parts are in bench/bench_*.c. */
#include "bench.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>


static void usage(FILE *fp) {
  fputs("usage: pe-bench CONFIG [options]    run a workload or a sweep, verify, time, report\n"
        "       pe-bench compare A.json B.json [--threshold PCT]\n"
        "                                     side by side, ratios, regressions\n"
        "       pe-bench plot RESULTS.json DIR  the --plot charts of a results file\n"
        "       pe-bench list                 plugins found, versions, parameters\n"
        "       pe-bench devices [BACKEND]... devices each backend can use\n"
        "\n"
        "options:\n"
        "  -b, --backend NAME      run this backend (a [backend.LABEL] label or a plugin\n"
        "                          name/path; repeatable).  Default: [sweep] backend, else\n"
        "                          the config's backend sections, else every backend found\n"
        "  -f, --format FMT        table (default), csv or json\n"
        "  -o, --output FILE       write the report to FILE atomically, after every cell\n"
        "                          (default: stdout at the end)\n"
        "  -r, --resume            with --output FILE (json): keep its results, run only the\n"
        "                          (cell, backend) pairs it lacks or that failed; new results\n"
        "                          are compared with kept ones through the outputs the earlier\n"
        "                          run saved (--save-output), else listed as not compared\n"
        "  -s, --save-output DIR   write each backend's output to DIR/LABEL.npy (in a sweep\n"
        "                          DIR/CELL/LABEL.npy)\n"
        "  -p, --plot DIR          write SVG charts to DIR (time, GFLOP/s, error vs position)\n"
        "      --set SEC.KEY=VAL   override a config key, e.g. --set workload.seq_len=8192\n"
        "  -n, --dry-run           check every cell of the sweep, list them, run nothing\n"
        "  -i, --interleave        time the backends of a cell in alternating rounds\n"
        "                          (A B B A ...) rather than one after the other, so their\n"
        "                          ratios hold on a machine whose speed drifts\n"
        "      --no-roofline       skip measuring the CPU's FMA peak and copy bandwidth\n"
        "      --no-progress       no progress line (there is none unless stderr is a terminal)\n"
        "  -h, --help              this text\n"
        "  -V, --version           library and plugin ABI versions\n"
        "\n"
        "A config's [sweep] section runs the cartesian product of its value lists\n"
        "(docs/CONFIG.md); docs/RESULTS.md describes the report formats.  Plugins are\n"
        "searched in PE_PLUGIN_PATH (colon-separated), then the installed plugin\n"
        "directory.  Exit status: 0 when every requested run succeeded, verified and\n"
        "agreed with the other backends; 1 when one failed, did not verify, disagreed,\n"
        "or a requested backend is unsupported; 2 for usage, config and input errors;\n"
        "128+N when interrupted by signal N.\n",
        fp);
}

static const char *kind_name(uint32_t kind) {
  return kind == PE_PLUGIN_SCHEME ? "scheme" : kind == PE_PLUGIN_BACKEND ? "backend" : "?";
}

static const char *type_name(uint32_t type) {
  static const char *const names[] = {"?", "number", "integer", "bool", "choice", "list", "string"};
  return type <= PE_PARAM_STRING ? names[type] : "?";
}

static void print_param(const pe_param_decl *d) {
  char range[128] = "";
  if (d->type == PE_PARAM_CHOICE) snprintf(range, sizeof range, "%s", d->choices);
  else if (d->flags & (PE_PARAM_HAS_MIN | PE_PARAM_HAS_MAX)) {
    int n = 0;
    if (d->flags & PE_PARAM_HAS_MIN)
      n = snprintf(range, sizeof range, "%s%g", d->flags & PE_PARAM_MIN_OPEN ? ">" : ">=", d->min);
    if (d->flags & PE_PARAM_HAS_MAX)
      snprintf(range + n, sizeof range - (size_t)n, "%s%s%g", n ? " " : "",
               d->flags & PE_PARAM_MAX_OPEN ? "<" : "<=", d->max);
  }
  printf("      %-34s %-8s default %-10s %-18s %s\n", d->name, type_name(d->type),
         d->flags & PE_PARAM_REQUIRED ? "(required)" : d->default_value ? d->default_value : "-",
         range, d->doc ? d->doc : "");
}

static void list_visit(void *user, const char *path, const pe_plugin *p, int status,
                       const char *error) {
  int *bad = user;
  if (!p) {
    printf("  %s: cannot load: %s (%s)\n", path, error, pe_err_name(status));
    (*bad)++;
    return;
  }
  const pe_plugin_desc *d = pe_plugin_descriptor(p);
  printf("  %-12s %-7s v%-8s ABI %u  %s\n      %s\n", d->name, kind_name(d->kind), d->version,
         d->abi_version, d->summary, path);
  for (const pe_param_decl *const *pp = pe_plugin_params(p); *pp; pp++) print_param(*pp);
}

static int cmd_list(pe_ctx *ctx) {
  int bad = 0;
  printf("libpe %s, plugin ABI %u\n", pe_version_string(), pe_abi_version());
  pe_plugin_scan(ctx, list_visit, &bad);
  return bad ? 1 : 0;
}

static void device_emit(void *user, const pe_device_info *info) {
  (void)user;
  static const char *const types[] = {"?", "cpu", "gpu", "accelerator", "other"};
  printf("    [%s] %s | %s | %s\n", info->type <= 4 ? types[info->type] : "?", info->name,
         info->driver, info->details);
}

/* One backend's devices; 1 when it cannot be loaded or listing fails.
 * PE_EUNSUPPORTED is no failure: `enumerate` is optional (the reference
 * backend has none), and a backend may find no device here. */
static int list_devices(pe_ctx *ctx, const char *name) {
  const pe_plugin *p;
  printf("%s:\n", name);
  if (pe_plugin_load(ctx, name, PE_PLUGIN_BACKEND, &p) != 0) {
    printf("    %s\n", pe_ctx_error(ctx));
    return 1;
  }
  int rc = pe_plugin_devices(ctx, p, device_emit, NULL);
  if (rc == PE_EUNSUPPORTED) printf("    does not list devices (%s)\n", pe_ctx_error(ctx));
  else if (rc != 0) printf("    %s\n", pe_ctx_error(ctx));
  return rc != 0 && rc != PE_EUNSUPPORTED;
}

static int cmd_devices(pe_ctx *ctx, int argc, char **argv) {
  bench_names ns = {0};
  if (argc > 0)
    for (int i = 0; i < argc; i++) bench_names_add(&ns, argv[i]);
  else
    bench_scan_backends(ctx, &ns);
  int rc = 0;
  for (size_t i = 0; i < ns.n; i++) rc |= list_devices(ctx, ns.v[i]);
  bench_names_free(&ns);
  return rc;
}

static int parse_args(int argc, char **argv, bench_opts *o) {
  enum { OPT_SET = 256, OPT_NO_ROOFLINE, OPT_NO_PROGRESS };
  static const struct option longopts[] = {
      {"backend", required_argument, NULL, 'b'},  {"format", required_argument, NULL, 'f'},
      {"output", required_argument, NULL, 'o'},   {"save-output", required_argument, NULL, 's'},
      {"set", required_argument, NULL, OPT_SET},  {"resume", no_argument, NULL, 'r'},
      {"plot", required_argument, NULL, 'p'},     {"dry-run", no_argument, NULL, 'n'},
      {"no-roofline", no_argument, NULL, OPT_NO_ROOFLINE},
      {"interleave", no_argument, NULL, 'i'},
      {"no-progress", no_argument, NULL, OPT_NO_PROGRESS},
      {"help", no_argument, NULL, 'h'},           {"version", no_argument, NULL, 'V'},
      {NULL, 0, NULL, 0}};
  o->format = PE_FORMAT_TABLE;
  o->progress = isatty(STDERR_FILENO);
  for (int c; (c = getopt_long(argc, argv, "b:f:o:s:p:rnihV", longopts, NULL)) != -1;) {
    switch (c) {
    case 'b':
      if (o->n_backends == BENCH_MAX_BACKENDS) return fprintf(stderr, "pe-bench: too many --backend\n"), 2;
      o->backends[o->n_backends++] = optarg;
      break;
    case 'f':
      if ((o->format = pe_format_parse(optarg)) < 0)
        return fprintf(stderr, "pe-bench: --format %s: expected table, csv or json\n", optarg), 2;
      break;
    case 'o': o->output = optarg; break;
    case 's': o->save_dir = optarg; break;
    case 'p': o->plot_dir = optarg; break;
    case 'r': o->resume = true; break;
    case 'n': o->dry_run = true; break;
    case 'i': o->interleave = true; break;
    case OPT_NO_ROOFLINE: o->no_roofline = true; break;
    case OPT_NO_PROGRESS: o->progress = false; break;
    case OPT_SET:
      if (o->n_sets == BENCH_MAX_SETS) return fprintf(stderr, "pe-bench: too many --set\n"), 2;
      o->sets[o->n_sets++] = optarg;
      break;
    case 'h': usage(stdout); exit(0);
    case 'V':
      printf("pe-bench (libpe) %s, plugin ABI %u\n", pe_version_string(), pe_abi_version());
      exit(0);
    default: usage(stderr); return 2;
    }
  }
  if (optind + 1 != argc) {
    usage(stderr);
    return 2;
  }
  o->config = argv[optind];
  return 0;
}

/* pe-bench plot RESULTS.json DIR: the --plot charts of a results file. */
static int cmd_plot(pe_ctx *ctx, int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: pe-bench plot RESULTS.json DIR\n");
    return 2;
  }
  bench_doc d;
  char err[1024];
  if (bench_read_json(argv[0], &d, err, sizeof err) != 0) {
    fprintf(stderr, "pe-bench plot: %s\n", err);
    return 2;
  }
  int rc = bench_plot(ctx, &d, argv[1], err, sizeof err) ? 1 : 0;
  if (rc) fprintf(stderr, "pe-bench plot %s: %s\n", argv[1], err);
  bench_doc_free(&d);
  return rc;
}

int main(int argc, char **argv) {
  if (argc >= 2 && !strcmp(argv[1], "compare")) return bench_compare(argc - 1, argv + 1);
  pe_ctx *ctx;
  if (pe_ctx_new(&ctx) != 0) {
    fprintf(stderr, "pe-bench: cannot create a libpe context\n");
    return 2;
  }
  int rc;
  if (argc >= 2 && !strcmp(argv[1], "list")) rc = cmd_list(ctx);
  else if (argc >= 2 && !strcmp(argv[1], "devices")) rc = cmd_devices(ctx, argc - 2, argv + 2);
  else if (argc >= 2 && !strcmp(argv[1], "plot")) rc = cmd_plot(ctx, argc - 2, argv + 2);
  else {
    bench_opts o = {0};
    rc = parse_args(argc, argv, &o);
    if (rc == 0) rc = bench_run(ctx, &o);
  }
  pe_ctx_free(ctx);
  return rc;
}
