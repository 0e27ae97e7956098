/* pe-bench: run an INI workload on backends, verify each against the
 * float64 oracle, time it, report.  See `pe-bench --help`. */
#include <libpe.h>

#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_BACKENDS 64

static void usage(FILE *fp) {
  fputs("usage: pe-bench CONFIG [options]    run a workload, verify, time, report\n"
        "       pe-bench list                 plugins found, versions, parameters\n"
        "       pe-bench devices [BACKEND]... devices each backend can use\n"
        "\n"
        "options:\n"
        "  -b, --backend NAME      run this backend (a [backend.LABEL] label or a plugin\n"
        "                          name/path; repeatable).  Default: the config's backend\n"
        "                          sections, or every backend plugin found\n"
        "  -f, --format FMT        table (default), csv or json\n"
        "  -o, --output FILE       write the report to FILE atomically (default: stdout)\n"
        "  -s, --save-output DIR   write each backend's output to DIR/LABEL.npy\n"
        "      --set SEC.KEY=VAL   override a config key, e.g. --set workload.seq_len=8192\n"
        "  -h, --help              this text\n"
        "  -V, --version           library and plugin ABI versions\n"
        "\n"
        "Plugins are searched in PE_PLUGIN_PATH (colon-separated), then the installed\n"
        "plugin directory.  Exit status: 0 when every requested run succeeded and\n"
        "verified; 1 when a run failed, did not verify, or a requested backend is\n"
        "unsupported; 2 for usage, config and input errors.\n",
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

typedef struct names {
  char *v[MAX_BACKENDS];
  size_t n;
} names;

static void collect_backend(void *user, const char *path, const pe_plugin *p, int status,
                            const char *error) {
  names *ns = user;
  if (!p) {
    fprintf(stderr, "pe-bench: skipping %s: %s (%s)\n", path, error, pe_err_name(status));
    return;
  }
  const pe_plugin_desc *d = pe_plugin_descriptor(p);
  if (d->kind == PE_PLUGIN_BACKEND && ns->n < MAX_BACKENDS) ns->v[ns->n++] = strdup(d->name);
}

static int cmd_devices(pe_ctx *ctx, int argc, char **argv) {
  names ns = {0};
  if (argc > 0)
    for (int i = 0; i < argc && ns.n < MAX_BACKENDS; i++) ns.v[ns.n++] = strdup(argv[i]);
  else
    pe_plugin_scan(ctx, collect_backend, &ns);
  int rc = 0;
  for (size_t i = 0; i < ns.n; i++) {
    const pe_plugin *p;
    printf("%s:\n", ns.v[i]);
    if (pe_plugin_load(ctx, ns.v[i], PE_PLUGIN_BACKEND, &p) != 0 ||
        pe_plugin_devices(ctx, p, device_emit, NULL) != 0) {
      printf("    %s\n", pe_ctx_error(ctx));
      rc = 1;
    }
    free(ns.v[i]);
  }
  return rc;
}

static int apply_set(pe_ctx *ctx, pe_config *cfg, const char *arg) {
  const char *dot = strchr(arg, '.'), *eq = strchr(arg, '=');
  if (!dot || !eq || dot > eq) {
    fprintf(stderr, "pe-bench: --set %s: expected SECTION.KEY=VALUE\n", arg);
    return 2;
  }
  char section[128], key[128];
  snprintf(section, sizeof section, "%.*s", (int)(dot - arg), arg);
  snprintf(key, sizeof key, "%.*s", (int)(eq - dot - 1), dot + 1);
  if (pe_config_set(ctx, cfg, section, key, eq + 1) != 0) {
    fprintf(stderr, "pe-bench: --set %s: %s\n", arg, pe_ctx_error(ctx));
    return 2;
  }
  return 0;
}

static int save_output(pe_ctx *ctx, const char *dir, const pe_workload *w, const pe_result *r) {
  const pe_workload_info *in = pe_workload_get_info(w);
  if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
    fprintf(stderr, "pe-bench: --save-output %s: %s\n", dir, strerror(errno));
    return 1;
  }
  char path[4096];
  snprintf(path, sizeof path, "%s/%s.npy", dir, r->label);
  uint64_t shape[4] = {in->batch, in->q_heads, in->q_len, in->head_dim};
  if (pe_npy_write(ctx, path, r->output, 4, shape) != 0) {
    fprintf(stderr, "pe-bench: %s\n", pe_ctx_error(ctx));
    return 1;
  }
  return 0;
}

typedef struct options {
  const char *config;
  names backends;
  bool explicit_backends;
  int format;
  const char *output, *save_dir;
  const char *sets[64];
  size_t n_sets;
} options;

static int parse_args(int argc, char **argv, options *o) {
  static const struct option longopts[] = {
      {"backend", required_argument, NULL, 'b'}, {"format", required_argument, NULL, 'f'},
      {"output", required_argument, NULL, 'o'},  {"save-output", required_argument, NULL, 's'},
      {"set", required_argument, NULL, 'S'},     {"help", no_argument, NULL, 'h'},
      {"version", no_argument, NULL, 'V'},       {NULL, 0, NULL, 0}};
  o->format = PE_FORMAT_TABLE;
  for (int c; (c = getopt_long(argc, argv, "b:f:o:s:hV", longopts, NULL)) != -1;) {
    switch (c) {
    case 'b':
      if (o->backends.n == MAX_BACKENDS) return fprintf(stderr, "pe-bench: too many --backend\n"), 2;
      o->backends.v[o->backends.n++] = strdup(optarg);
      o->explicit_backends = true;
      break;
    case 'f':
      if ((o->format = pe_format_parse(optarg)) < 0)
        return fprintf(stderr, "pe-bench: --format %s: expected table, csv or json\n", optarg), 2;
      break;
    case 'o': o->output = optarg; break;
    case 's': o->save_dir = optarg; break;
    case 'S':
      if (o->n_sets == 64) return fprintf(stderr, "pe-bench: too many --set\n"), 2;
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

static int run_config(pe_ctx *ctx, options *o) {
  pe_config *cfg;
  if (pe_config_load(ctx, o->config, &cfg) != 0) {
    fprintf(stderr, "pe-bench: %s\n", pe_ctx_error(ctx));
    return 2;
  }
  int rc = 0;
  for (size_t i = 0; i < o->n_sets && rc == 0; i++) rc = apply_set(ctx, cfg, o->sets[i]);
  pe_workload *w = NULL;
  if (rc == 0 && pe_workload_build(ctx, cfg, &w) != 0) {
    fprintf(stderr, "pe-bench: %s\n", pe_ctx_error(ctx));
    rc = 2;
  }
  if (rc == 0 && !o->explicit_backends) {
    for (size_t i = 0; i < pe_config_backend_count(cfg) && o->backends.n < MAX_BACKENDS; i++)
      o->backends.v[o->backends.n++] = strdup(pe_config_backend_label(cfg, i));
    o->explicit_backends = o->backends.n > 0;
    if (!o->backends.n) pe_plugin_scan(ctx, collect_backend, &o->backends);
    if (!o->backends.n) {
      fprintf(stderr, "pe-bench: no backend plugin found (set PE_PLUGIN_PATH)\n");
      rc = 2;
    }
  }
  pe_result *results[MAX_BACKENDS] = {0};
  size_t n = 0;
  for (size_t i = 0; rc == 0 && i < o->backends.n; i++, n++) {
    int st = pe_run(ctx, w, cfg, o->backends.v[i], &results[i]);
    if (!results[i]) {
      fprintf(stderr, "pe-bench: %s\n", pe_ctx_error(ctx));
      rc = 1;
      break;
    }
    bool counts = o->explicit_backends || results[i]->status != PE_RUN_UNSUPPORTED;
    if (st != 0) fprintf(stderr, "pe-bench: %s: %s: %s\n", results[i]->label,
                         pe_run_status_name(results[i]->status), results[i]->message);
    if (st != 0 && counts) rc = 1;
    if (results[i]->status == PE_RUN_OK && o->save_dir && results[i]->output &&
        save_output(ctx, o->save_dir, w, results[i]) != 0)
      rc = 1;
  }
  if (w && n && pe_report_write(ctx, cfg, w, (const pe_result *const *)results, n, o->format,
                                o->output) != 0) {
    fprintf(stderr, "pe-bench: %s\n", pe_ctx_error(ctx));
    rc = rc ? rc : 1;
  }
  for (size_t i = 0; i < n; i++) pe_result_free(results[i]);
  pe_workload_free(w);
  pe_config_free(cfg);
  return rc;
}

int main(int argc, char **argv) {
  pe_ctx *ctx;
  if (pe_ctx_new(&ctx) != 0) {
    fprintf(stderr, "pe-bench: cannot create a libpe context\n");
    return 2;
  }
  int rc;
  if (argc >= 2 && !strcmp(argv[1], "list")) rc = cmd_list(ctx);
  else if (argc >= 2 && !strcmp(argv[1], "devices")) rc = cmd_devices(ctx, argc - 2, argv + 2);
  else {
    options o = {0};
    rc = parse_args(argc, argv, &o);
    if (rc == 0) rc = run_config(ctx, &o);
    for (size_t i = 0; i < o.backends.n; i++) free(o.backends.v[i]);
  }
  pe_ctx_free(ctx);
  return rc;
}
