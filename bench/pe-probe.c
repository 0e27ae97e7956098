/* pe-probe: research probes of positional encodings (properties of the
 * encodings themselves, not of trained models).  See `pe-probe --help`
 * and docs/PROBES.md. */
#include "needle/needle.h"
#include "probe/probe.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static const probe_cmd *const commands[] = {&probe_freq_cmd,  &probe_perm_cmd, &probe_relative_cmd,
                                            &probe_decay_cmd, &probe_base_cmd, &probe_extrapolate_cmd};
#define N_COMMANDS (sizeof commands / sizeof commands[0])

static void usage(FILE *fp) {
  fputs("usage: pe-probe SUBCOMMAND CONFIG [options]\n"
        "       pe-probe SUBCOMMAND --help\n"
        "\n"
        "Probes of the encodings themselves (their frequencies and algebra), not of\n"
        "trained models.  Subcommands:\n"
        "  freq         per-pair frequencies, wavelengths, scaling bands, critical dimension\n"
        "  perm         permutation equivariance of attention, run on a backend\n"
        "  relative     score(m+t, n+t) - score(m, n): float64, a backend, naive float32\n"
        "  decay        RoFormer long-term-decay bound and mean cos vs distance\n"
        "  base         smallest RoPE base whose cos sum stays >= 0 up to L (Men et al.)\n"
        "  extrapolate  PI paper's fit: extrapolation vs interpolation of a(s)\n"
        "  needle       train a tiny transformer, needle-in-a-haystack by scheme (see --help)\n"
        "\n"
        "common options:\n"
        "  -f, --format FMT   table (default), csv or json\n"
        "  -o, --output FILE  write the report to FILE atomically (default: stdout)\n"
        "  -p, --plot FILE    write a chart as SVG (atomically)\n"
        "  -h, --help         this text, or a subcommand's\n"
        "\n"
        "Plugins are searched in PE_PLUGIN_PATH, then the installed plugin directory.\n"
        "A plugin path in CONFIG ([scheme] plugin = ./x.so) is relative to CONFIG's\n"
        "directory; one on the command line (--compare, --backend) to the working one.\n"
        "Exit status: 0 success; 1 a run failed or a probe is unsupported here; 2 usage\n"
        "or config errors.\n",
        fp);
}

int probe_fail(const probe_opts *o, int status, const char *fmt, ...) {
  va_list ap;
  fprintf(stderr, "pe-probe %s: ", o && o->sub ? o->sub : "");
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  return status;
}

static int parse_u64(const char *opt, const char *arg, uint64_t lo, uint64_t *out) {
  char *end;
  errno = 0;
  double v = strtod(arg, &end); /* accepts 1e6 and 1048576 */
  if (errno || end == arg || *end || v < (double)lo || v > 1e15 || v != (double)(uint64_t)v)
    return fprintf(stderr, "pe-probe: %s %s: expected an integer >= %llu\n", opt, arg,
                   (unsigned long long)lo), 2;
  *out = (uint64_t)v;
  return 0;
}

static int parse_pos(const char *opt, const char *arg, double *out) {
  char *end;
  *out = strtod(arg, &end);
  if (end == arg || *end || !(*out > 0) || *out > 1e300)
    return fprintf(stderr, "pe-probe: %s %s: expected a positive number\n", opt, arg), 2;
  return 0;
}

/* A --compare word goes on a generated config line "plugin = WORD" and
 * libpe refuses a line over 199 characters (docs/CONFIG.md), blaming a
 * line of the user's config: refuse a longer word here, by name. */
static int check_compare(const char *list) {
  const int line_max = 199;
  const size_t max = (size_t)line_max - strlen("plugin = ");
  for (const char *p = list; *p;) {
    size_t n = strcspn(p, ",");
    if (n > max)
      return fprintf(stderr, "pe-probe: --compare %.*s: %zu characters, at most %zu for a scheme name or plugin "
                             "path (a config line holds %d); use a shorter path or a symlink\n",
                     (int)n, p, n, max, line_max), 2;
    p += n + (p[n] == ',');
  }
  return 0;
}

static const struct option longopts[] = {
    {"format", required_argument, NULL, 'f'},   {"output", required_argument, NULL, 'o'},
    {"plot", required_argument, NULL, 'p'},     {"backend", required_argument, NULL, 'b'},
    {"compare", required_argument, NULL, 'c'},  {"seq-len", required_argument, NULL, 'L'},
    {"max-len", required_argument, NULL, 'm'},  {"tokens", required_argument, NULL, 't'},
    {"max-shift", required_argument, NULL, 'T'}, {"train-len", required_argument, NULL, 'N'},
    {"head-dim", required_argument, NULL, 'd'}, {"seeds", required_argument, NULL, 'S'},
    {"seed", required_argument, NULL, 's'},     {"factor", required_argument, NULL, 'F'},
    {"base", required_argument, NULL, 'B'},     {"range", required_argument, NULL, 'R'},
    {"rcond", required_argument, NULL, 'r'},
    {"help", no_argument, NULL, 'h'},           {NULL, 0, NULL, 0}};

static const char *long_name(int c) {
  for (const struct option *p = longopts; p->name; p++)
    if (p->val == c) return p->name;
  return "?";
}

static int set_option(probe_opts *o, int c, const char *a) {
  uint64_t u;
  int rc = 0;
  switch (c) {
  case 'f':
    if ((o->format = pe_format_parse(a)) < 0)
      return fprintf(stderr, "pe-probe: --format %s: expected table, csv or json\n", a), 2;
    break;
  case 'o': o->output = a; break;
  case 'p': o->plot = a; break;
  case 'b': o->backend = a; break;
  case 'c': rc = check_compare(a), o->compare = a; break;
  case 'L': rc = parse_u64("--seq-len", a, 1, &o->seq_len); break;
  case 'm': rc = parse_u64("--max-len", a, 1, &o->max_len); break;
  case 't': rc = parse_u64("--tokens", a, 2, &o->tokens); break;
  case 'T': rc = parse_u64("--max-shift", a, 1, &o->max_shift); break;
  case 'N': rc = parse_u64("--train-len", a, 8, &o->train_len); break;
  case 'd': rc = parse_u64("--head-dim", a, 2, &u), o->head_dim = (uint32_t)u; break;
  case 'S': rc = parse_u64("--seeds", a, 1, &u), o->seeds = (uint32_t)u; break;
  case 's': rc = parse_u64("--seed", a, 0, &o->seed); break;
  case 'F': rc = parse_pos("--factor", a, &o->factor); break;
  case 'B': rc = parse_pos("--base", a, &o->base); break;
  case 'R': rc = parse_pos("--range", a, &o->range); break;
  case 'r': rc = parse_pos("--rcond", a, &o->rcond); break;
  default: return 2;
  }
  return rc;
}

static int parse_args(int argc, char **argv, const probe_cmd *cmd, probe_opts *o) {
  o->format = PE_FORMAT_TABLE;
  optind = 2;
  for (int c; (c = getopt_long(argc, argv, "f:o:p:b:c:L:m:t:T:N:d:S:s:F:B:R:r:h", longopts, NULL)) != -1;) {
    if (c == 'h') {
      fputs(cmd->help, stdout);
      exit(0);
    }
    if (c == '?') return fprintf(stderr, "(see pe-probe %s --help)\n", cmd->name), 2;
    if (!strchr(cmd->options, c) && !strchr("fop", c))
      return fprintf(stderr, "pe-probe %s: --%s does not apply to this probe\n", cmd->name,
                     long_name(c)), 2;
    int rc = set_option(o, c, optarg);
    if (rc) return rc;
  }
  if (optind + 1 != argc)
    return fprintf(stderr, "usage: pe-probe %s CONFIG [options] (see --help)\n", cmd->name), 2;
  o->config = argv[optind];
  return 0;
}

static int run_command(const probe_cmd *cmd, int argc, char **argv) {
  probe_opts o = {.sub = cmd->name};
  int rc = parse_args(argc, argv, cmd, &o);
  if (rc) return rc;
  pe_ctx *ctx;
  if (pe_ctx_new(&ctx) != 0) return probe_fail(&o, 2, "cannot create a libpe context");
  probe_doc d;
  doc_init(&d, cmd->name);
  rc = cmd->run(ctx, &o, &d);
  if (rc == 0) rc = doc_emit(ctx, &d, &o);
  doc_free(&d);
  pe_ctx_free(ctx);
  return rc;
}

int main(int argc, char **argv) {
  if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
    usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  if (!strcmp(argv[1], "-V") || !strcmp(argv[1], "--version")) {
    printf("pe-probe (libpe) %s, plugin ABI %u\n", pe_version_string(), pe_abi_version());
    return 0;
  }
  /* needle trains and evaluates a model: its own options (docs/NEEDLE.md). */
  if (!strcmp(argv[1], "needle")) return pe_needle_main(argc - 1, argv + 1);
  for (size_t i = 0; i < N_COMMANDS; i++)
    if (!strcmp(argv[1], commands[i]->name)) return run_command(commands[i], argc, argv);
  fprintf(stderr, "pe-probe: unknown subcommand '%s'\n\n", argv[1]);
  usage(stderr);
  return 2;
}
