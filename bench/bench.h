/* pe-bench's parts: result records and documents (the JSON schema of
 * docs/RESULTS.md held in memory), the machine, runs, agreement, writers,
 * the JSON reader, compare and plots.  Never installed. */
#ifndef PE_BENCH_H
#define PE_BENCH_H

#include <libpe.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define BENCH_SCHEMA "libpe-bench/2"
#define BENCH_MAX_BACKENDS 64
#define BENCH_MAX_SETS 64

/* ---- records ------------------------------------------------------------ */
/* What a result ran: the workload and scheme of its cell. */
typedef struct bench_work {
  char op[16];
  uint64_t batch, q_heads, kv_heads, head_dim, q_len, seq_len, position_offset, window;
  bool causal;
  double softmax_scale, flops, bytes;
  char inputs[512];
  char scheme[64], note[256];
  double attention_factor;
} bench_work;

/* One (cell, backend) result.  Doubles that may be absent are NaN. */
typedef struct bench_rec {
  char *cell; /* "seq_len=1024 scheme.plugin=rope" in sweep order; "" */
  bool has_work;
  bench_work work;
  char backend[64], plugin[64], device[128], driver[128], details[512];
  char status[16], message[1024];
  uint32_t device_type; /* pe_device_type; 0 unknown */
  double t_min, t_median, t_max, device_ms, prepare_ms;
  uint32_t warmup, iterations;
  double gflops, gbps, max_abs_err, rms_err, tolerance;
  bool verified;
  bool interleaved; /* timed in rounds with the cell's other backends */
  uint64_t verified_rows, total_rows;
  double frac_peak, frac_bandwidth;  /* roofline fractions, NaN: none */
  double agree_max_abs, agree_rms;   /* worst against the cell's others */
  double *err_pos, *err_max;         /* error vs position (--plot) */
  size_t n_err;
  char *saved_path;    /* --save-output file (malloc'd), or NULL */
  uint64_t saved_hash; /* bench_hash of the values saved there */
} bench_rec;

/* Two backends' outputs compared elementwise in one cell. */
typedef struct bench_agree {
  char *cell;
  char a[64], b[64];
  double max_abs, rms, tolerance;
  bool ok;
} bench_agree;

/* A pair of backends of a cell that could not be compared: one result was
 * carried over by --resume without an output to compare (docs/RESULTS.md
 * "--resume"). */
typedef struct bench_gap {
  char *cell;
  char a[64], b[64];
  char why[512];
} bench_gap;

typedef struct bench_plugin {
  char name[64], kind[16], version[32], path[512];
  uint32_t abi;
} bench_plugin;

typedef struct bench_machine {
  char cpu[256], os[256], compiler[128], libpe_version[32], created[32];
  uint32_t cores, abi_version;
  double memory_bytes;
  bench_plugin *plugins;
  size_t n_plugins;
  bool has_roofline;
  char isa[16];
  uint32_t roof_threads;
  double peak_gflops, copy_gbps;
} bench_machine;

/* A results document: what pe-bench writes and compare reads. */
typedef struct bench_doc {
  char *config_name, *config_text;
  char **keys; /* swept keys */
  size_t n_keys;
  char **sets; /* --set overrides, "SECTION.KEY=VALUE" */
  size_t n_sets;
  bench_machine machine;
  bench_rec *recs;
  size_t n_recs, cap_recs;
  bench_agree *agree;
  size_t n_agree, cap_agree;
  bench_gap *gaps; /* pairs not compared */
  size_t n_gaps, cap_gaps;
} bench_doc;

bench_rec *bench_doc_add_rec(bench_doc *d, const char *cell);
bench_agree *bench_doc_add_agree(bench_doc *d, const char *cell);
bench_gap *bench_doc_add_gap(bench_doc *d, const char *cell);
/* FNV-1a 64 of n floats' bytes: ties a saved output file to its record. */
uint64_t bench_hash(const float *v, size_t n);
void bench_doc_free(bench_doc *d);
void bench_rec_init(bench_rec *r);
/* The record of (cell, backend), or NULL. */
bench_rec *bench_doc_find(const bench_doc *d, const char *cell, const char *backend);
/* A cell label with its pairs sorted: equal for the same cell whatever the
 * order of the [sweep] keys (malloc'd). */
char *bench_cell_canonical(const char *cell);
bool bench_rec_ok(const bench_rec *r);
const char *bench_reason(const char *plugin, const char *status, const char *msg);
/* The fewest digits that read back as `v` (into buf), or `missing` when v
 * is not finite. */
const char *bench_num(char *buf, size_t size, double v, const char *missing);
bool bench_rec_failed(const bench_rec *r, bool unsupported_fails);

/* ---- the machine -------------------------------------------------------- */
void bench_machine_describe(bench_machine *m);
/* FMA peak and copy bandwidth of the whole CPU (about 0.3 s). */
void bench_machine_roofline(bench_machine *m);
void bench_machine_add_plugin(bench_machine *m, const pe_plugin *p);
/* Add `from`'s plugins that `m` lacks (--resume: those of the results
 * carried over). */
void bench_machine_merge_plugins(bench_machine *m, const bench_machine *from);
void bench_machine_free(bench_machine *m);
/* Fractions of the machine's roofline for a CPU result. */
void bench_roofline_fractions(const bench_machine *m, bench_rec *r);

/* ---- writers ------------------------------------------------------------- */
int bench_write_json(FILE *fp, const bench_doc *d);
int bench_write_csv(FILE *fp, const bench_doc *d);
int bench_write_table(FILE *fp, const bench_doc *d);
/* Write in `format` (pe_format) to `path` atomically, or to stdout. */
int bench_write(pe_ctx *ctx, const bench_doc *d, int format, const char *path);
/* Backend labels in text columns: as wide as the longest label, at least
 * `min` and at most BENCH_LABEL_MAX columns; a longer label keeps its end
 * after "...", so that backends given by path (-b dir/a.so -b dir/b.so)
 * stay apart. */
#define BENCH_LABEL_MAX 40
int bench_label_width(size_t longest, int min);
/* `s` in at most `width` (<= BENCH_LABEL_MAX) columns, into buf. */
const char *bench_fit(char *buf, size_t size, const char *s, int width);
/* The agreement matrix of one cell (nothing when under two backends). */
void bench_print_matrix(FILE *fp, const bench_doc *d, const char *cell);

/* ---- the JSON reader ------------------------------------------------------ */
/* Read a document pe-bench wrote; message names the file and what is wrong. */
int bench_read_json(const char *path, bench_doc *d, char *err, size_t err_size);

/* ---- commands ------------------------------------------------------------- */
typedef struct bench_opts {
  const char *config;
  char *backends[BENCH_MAX_BACKENDS];
  size_t n_backends;
  int format;
  const char *output, *save_dir, *plot_dir;
  const char *sets[BENCH_MAX_SETS];
  size_t n_sets;
  bool resume, dry_run, no_roofline, progress, interleave;
} bench_opts;

int bench_run(pe_ctx *ctx, bench_opts *o);

/* ---- plugin messages -------------------------------------------------------- */
/* What a run is doing, for the log (bench/bench_log.c): a scheme's compute
 * runs when its cell is checked and again when it is built, and each of its
 * messages is printed once per cell, when the cell is checked. */
enum { BENCH_LOG_SETUP, BENCH_LOG_CHECK, BENCH_LOG_BUILD, BENCH_LOG_RUN };
typedef struct bench_log {
  bool progress;     /* clear the progress line before a message */
  int phase;         /* BENCH_LOG_* */
  size_t cell;       /* the cell checked, built or run */
  const char *label; /* its label in a sweep, else "" */
  struct bench_seen *checked, *built; /* messages printed for a cell */
  size_t n_checked, cap_checked, n_built, cap_built;
} bench_log;
/* The context's log goes through lg until bench_log_detach. */
void bench_log_attach(pe_ctx *ctx, bench_log *lg);
void bench_log_phase(bench_log *lg, int phase, size_t cell, const char *label);
void bench_log_detach(pe_ctx *ctx, bench_log *lg);

/* Backend names (strdup'd), at most BENCH_MAX_BACKENDS. */
typedef struct bench_names {
  char *v[BENCH_MAX_BACKENDS];
  size_t n;
} bench_names;
void bench_names_add(bench_names *ns, const char *name);
void bench_names_free(bench_names *ns);
/* Every backend plugin on the search path (a module that fails to load is
 * reported on stderr and skipped). */
void bench_scan_backends(pe_ctx *ctx, bench_names *ns);
int bench_compare(int argc, char **argv);

/* ---- agreement ------------------------------------------------------------ */
typedef struct bench_output {
  const pe_result *r; /* NULL: no usable output */
  bench_rec *rec;
  bool carried; /* a result carried over by --resume (its saved output) */
} bench_output;
/* Compare every pair of outputs of a cell, but for two carried-over ones
 * (compared when they ran); false when a pair disagrees. */
bool bench_agreement(bench_doc *d, const char *cell, bench_output *outs, size_t n);
/* Max abs error vs the oracle at sampled query positions (for plots). */
int bench_position_errors(pe_ctx *ctx, const pe_workload *w, bench_output *outs, size_t n);

/* ---- plots ------------------------------------------------------------------ */
/* SVG charts into `dir` (docs/RESULTS.md "Plots"). */
int bench_plot(pe_ctx *ctx, const bench_doc *d, const char *dir, char *err, size_t err_size);

#endif /* PE_BENCH_H */
