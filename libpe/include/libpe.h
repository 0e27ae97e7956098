/* libpe: transformer positional encodings on any hardware, verified.
 *
 * Umbrella header.  Typical use:
 *
 *   pe_ctx *ctx;       pe_ctx_new(&ctx);
 *   pe_config *cfg;    pe_config_load(ctx, "configs/quickstart.ini", &cfg);
 *   pe_workload *w;    pe_workload_build(ctx, cfg, &w);
 *   pe_result *r;      pe_run(ctx, w, cfg, "reference", &r);
 *   printf("%s: %.3f ms, max err %.2e\n", r->backend, r->time_median_ms,
 *          r->max_abs_err);
 *   pe_result_free(r); pe_workload_free(w); pe_config_free(cfg);
 *   pe_ctx_free(ctx);
 *
 * Every function that can fail returns 0 or a negative PE_E* code and
 * leaves a message in pe_ctx_error(ctx).  Contexts share no mutable state:
 * two threads may each use their own context.  A context and the objects
 * made with it (workloads, runners) may move between threads but are used
 * by one thread at a time; only their frees (pe_ctx_free, pe_workload_free,
 * pe_runner_close) may run on different threads at once.
 */
#ifndef LIBPE_H
#define LIBPE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "libpe/pe_errors.h"
#include "libpe/pe_plugin.h"
#include "libpe/pe_version.h"

#ifdef __cplusplus
extern "C" {
#endif

#if defined(PE_BUILDING_LIBPE) && (defined(__GNUC__) || defined(__clang__))
#define PE_EXTERN __attribute__((visibility("default")))
#else
#define PE_EXTERN
#endif

/* ---- errors and versions ---------------------------------------------- */
PE_EXTERN const char *pe_strerror(int err);  /* "invalid configuration" */
PE_EXTERN const char *pe_err_name(int err);  /* "PE_ECONFIG" */
PE_EXTERN const char *pe_version_string(void);
PE_EXTERN uint32_t pe_abi_version(void);     /* PE_ABI_VERSION of the build */

/* ---- context ------------------------------------------------------------ */
typedef struct pe_ctx pe_ctx;
typedef void (*pe_log_fn)(void *user, int level, const char *origin,
                          const char *message);

/* Plugin search path: PE_PLUGIN_PATH (colon-separated), then the installed
 * plugin directory. */
PE_EXTERN int pe_ctx_new(pe_ctx **out);
/* Drop the caller's handle.  Workloads and runners hold a reference to
 * their context: it and its plugins (which the strings of
 * pe_workload_get_info point into) go when the last of the caller's
 * handle, its workloads and its runners is freed, so any free order is
 * safe.  After this call, pass `ctx` to nothing; its live workloads and
 * runners keep working where no context is given (pe_workload_get_info,
 * pe_runner_run, ..., the frees) and may still call its log function.
 * Configs and results do not refer to a context. */
PE_EXTERN void pe_ctx_free(pe_ctx *ctx);
PE_EXTERN const char *pe_ctx_error(const pe_ctx *ctx);
/* Warnings from the core and plugins; default: printed to stderr. */
PE_EXTERN void pe_ctx_set_log(pe_ctx *ctx, pe_log_fn fn, void *user);
/* Directories searched before all others (colon-separated). */
PE_EXTERN int pe_ctx_prepend_plugin_path(pe_ctx *ctx, const char *dirs);

/* ---- plugins ------------------------------------------------------------ */
typedef struct pe_plugin pe_plugin;

/* `name` is a plugin name ("rope") searched on the path, or, when it
 * contains '/', a module path.  `kind` is a pe_plugin_kind, or 0 for any
 * (another value: PE_EINVAL, nothing loaded).
 * A module file is loaded once per context; the context owns it.  A name
 * always finds the module on the search path, never one of that name
 * loaded from another path. */
PE_EXTERN int pe_plugin_load(pe_ctx *ctx, const char *name, int kind,
                             const pe_plugin **out);
/* Load every module on the search path (first one of each name wins) and
 * call `fn` for each; a module that fails to load, or that a config could
 * not name (file NAME.so whose descriptor calls itself otherwise), is
 * reported with its path, a NULL plugin, and the error code (message in
 * `error`). */
typedef void (*pe_plugin_visit_fn)(void *user, const char *path,
                                   const pe_plugin *plugin, int status,
                                   const char *error);
PE_EXTERN int pe_plugin_scan(pe_ctx *ctx, pe_plugin_visit_fn fn, void *user);
/* Unload every plugin of the context: its pe_plugin pointers become
 * invalid.  Fails with PE_ESTATE while a workload or runner of the
 * context is alive (they use its plugins). */
PE_EXTERN int pe_ctx_unload_plugins(pe_ctx *ctx);

PE_EXTERN const pe_plugin_desc *pe_plugin_descriptor(const pe_plugin *p);
PE_EXTERN const char *pe_plugin_path(const pe_plugin *p);
/* Declared parameters (schemes) or options (backends), NULL-terminated. */
PE_EXTERN const pe_param_decl *const *pe_plugin_params(const pe_plugin *p);
/* List a backend's devices: calls `emit` per device. */
PE_EXTERN int pe_plugin_devices(pe_ctx *ctx, const pe_plugin *backend,
                                pe_device_emit_fn emit, void *user);

/* ---- configs ------------------------------------------------------------ */
typedef struct pe_config pe_config;

/* Parse an INI workload description (docs/CONFIG.md).  Syntax, unknown
 * sections and keys of the fixed sections, bad and out-of-range values are
 * reported here as "FILE:LINE: [section] key = value: why (accepted: ...)".
 * Scheme and backend keys are checked when a plugin is known
 * (pe_workload_build, pe_run). */
PE_EXTERN int pe_config_load(pe_ctx *ctx, const char *path, pe_config **out);
/* The same from memory; `name` names it in messages, relative input paths
 * resolve against `base_dir` (NULL: the current directory). */
PE_EXTERN int pe_config_parse(pe_ctx *ctx, const char *text, const char *name,
                              const char *base_dir, pe_config **out);
PE_EXTERN void pe_config_free(pe_config *cfg);
/* Set or replace one key, as if written in the file ("workload",
 * "seq_len", "8192"); scheme keys go to section "scheme". */
PE_EXTERN int pe_config_set(pe_ctx *ctx, pe_config *cfg, const char *section,
                            const char *key, const char *value);
PE_EXTERN const char *pe_config_name(const pe_config *cfg);
/* The value of `key` in `section` as written (continuations joined), or
 * NULL when the config does not set it. */
PE_EXTERN const char *pe_config_get(const pe_config *cfg, const char *section,
                                    const char *key);
PE_EXTERN const char *pe_config_text(const pe_config *cfg); /* verbatim */
/* Backend sections in file order: labels ("openmp", "fast" for
 * [backend.fast]) and their plugin names. */
PE_EXTERN size_t pe_config_backend_count(const pe_config *cfg);
PE_EXTERN const char *pe_config_backend_label(const pe_config *cfg, size_t i);
PE_EXTERN const char *pe_config_backend_plugin(const pe_config *cfg, size_t i);

/* ---- sweeps ------------------------------------------------------------- */
/* A config's [sweep] section (docs/CONFIG.md) lists values for config keys;
 * the run is their cartesian product.  Keys are `SECTION.KEY` (sections
 * workload, inputs, run, scheme, scheme.NAME) or a bare [workload] key;
 * `backend` lists the backends every cell runs.  Values are words separated
 * by white space; the word `-` removes the key from the cell, so its
 * default applies (q_len = 1 -: decode, then prefill).  The first key
 * varies slowest.  A config without [sweep]
 * is one cell with no keys.  The base values (outside [sweep]) must form a
 * valid config on their own: pe_workload_build on a config with a [sweep]
 * builds that base workload and ignores the section. */
typedef struct pe_sweep pe_sweep;

#define PE_SWEEP_MAX_CELLS 100000

/* Check the section's shape (each key names a section and key, listed
 * once; value lists; duplicates; at most PE_SWEEP_MAX_CELLS cells); whether
 * a key exists, and its values, are checked when a cell is built (a
 * scheme's keys are known only once its plugin is loaded).
 * `cfg` must outlive the sweep. */
PE_EXTERN int pe_sweep_expand(pe_ctx *ctx, const pe_config *cfg,
                              pe_sweep **out);
PE_EXTERN void pe_sweep_free(pe_sweep *sw);
PE_EXTERN size_t pe_sweep_cell_count(const pe_sweep *sw);
/* Swept keys in [sweep] order, canonical: "seq_len" for [workload] keys,
 * else "SECTION.KEY" ("scheme.plugin", "scheme.yarn.factor", "run.seed"). */
PE_EXTERN size_t pe_sweep_key_count(const pe_sweep *sw);
PE_EXTERN const char *pe_sweep_key(const pe_sweep *sw, size_t key);
/* The value of `key` in `cell`; NULL when either is out of range. */
PE_EXTERN const char *pe_sweep_value(const pe_sweep *sw, size_t cell,
                                     size_t key);
/* "seq_len=1024 scheme.plugin=rope" (empty without keys), snprintf-style:
 * returns the length the whole label needs. */
PE_EXTERN size_t pe_sweep_cell_label(const pe_sweep *sw, size_t cell,
                                     char *buf, size_t size);
/* [sweep] backend = ...: the backends of every cell (0 when not given). */
PE_EXTERN size_t pe_sweep_backend_count(const pe_sweep *sw);
PE_EXTERN const char *pe_sweep_backend(const pe_sweep *sw, size_t i);
/* Build cell `cell`: a copy of the base config with the cell's values in
 * place, without [sweep] and without the [scheme.NAME] sections of other
 * schemes (in its entries: pe_config_text still gives the base file's
 * text, which is where its line numbers point), checked like a loaded config plus the scheme's parameters and
 * tables (pe_workload_build_tables: loads the scheme plugin, makes no
 * inputs).  An invalid value is an error naming the cell, the [sweep]
 * line, the key and the value. */
PE_EXTERN int pe_sweep_cell(pe_ctx *ctx, const pe_sweep *sw, size_t cell,
                            pe_config **out);

/* ---- workloads ---------------------------------------------------------- */
typedef struct pe_workload pe_workload;

typedef struct pe_workload_info {
  uint32_t struct_size;
  uint32_t op;   /* pe_op */
  uint32_t batch, q_heads, kv_heads, head_dim;
  uint64_t q_len, kv_len, position_offset, window;
  uint32_t causal;
  double softmax_scale;
  const char *scheme;      /* plugin name */
  const char *scheme_note; /* the scheme's note at this L */
  const pe_scheme_tables *tables; /* the scheme's float64 tables */
  double flops;        /* attention: 4 D per visible (query, key) pair */
  double bytes;        /* compulsory traffic of one run (inputs + output) */
  uint64_t visible_pairs;
  const char *inputs;  /* "q.npy k.npy v.npy" or "generated: normal, scale 1, seed 42" */
  /* ABI 1 ends here */
} pe_workload_info;

/* Validate the config, load the scheme, read or generate inputs and derive
 * the backend tables. */
PE_EXTERN int pe_workload_build(pe_ctx *ctx, const pe_config *cfg,
                                pe_workload **out);
/* Only validate the config and compute the scheme's tables (no inputs, no
 * memory for them): for analysis at any length.  Such a workload cannot be
 * run (PE_ESTATE). */
PE_EXTERN int pe_workload_build_tables(pe_ctx *ctx, const pe_config *cfg,
                                       pe_workload **out);
PE_EXTERN void pe_workload_free(pe_workload *w);
PE_EXTERN const pe_workload_info *pe_workload_get_info(const pe_workload *w);
/* The task handed to backends (inputs and tables). */
PE_EXTERN const pe_task *pe_workload_task(const pe_workload *w);

/* float64 oracle: NUMERICS.md attention (or encoding for op = encode) of
 * query rows [row0, row0 + nrows) of every (batch, head): out has
 * B*Hq*nrows*D doubles.  For encode, out holds Q' then K' (all rows). */
PE_EXTERN int pe_oracle(pe_ctx *ctx, const pe_workload *w, uint64_t row0,
                        uint64_t nrows, double *out);

/* ---- runs --------------------------------------------------------------- */
typedef enum pe_run_status {
  PE_RUN_OK = 1,
  PE_RUN_UNSUPPORTED = 2,
  PE_RUN_FAILED = 3
} pe_run_status;

typedef struct pe_result {
  uint32_t struct_size;
  uint32_t status;      /* pe_run_status */
  int error;            /* 0 or the PE_E* code behind status */
  char label[64];       /* backend section label or plugin name (a longer
                         * one, e.g. a path: "..." and its last 60 bytes) */
  char backend[64];     /* plugin name (the same) */
  char message[1024];   /* why unsupported/failed; empty when ok */
  pe_device_info device;
  uint32_t warmup, iterations;
  double prepare_ms;    /* compile + allocate + upload (host wall) */
  double time_min_ms, time_median_ms, time_max_ms; /* host wall per run */
  double device_median_ms; /* backend's device timer; < 0: none */
  double gflops;        /* flops / median time */
  double gbps;          /* bytes / median time */
  uint32_t verified;    /* 1 when compared with the oracle */
  uint64_t verified_rows, total_rows; /* query rows compared, of all */
  double max_abs_err, rms_err, tolerance; /* errors NaN when nothing was verified */
  const float *output;  /* fetched output (attention O; encode Q' then K') */
  size_t output_len;    /* floats */
  /* ABI 1 ends here */
} pe_result;

/* Run the workload on a backend: `backend` is a config backend label, or a
 * plugin name/path (its config section's options when it has one, else its
 * defaults).  Always stores a result when `out` is non-NULL (status says
 * what happened); returns 0 only when the run succeeded and, unless
 * [run] verify = false, verified (then r->verified is 0 and the errors
 * NaN). */
/* Load `backend` as pe_run would and check its options (its config
 * section's, else the defaults) against the plugin's declarations, without
 * opening it: PE_ECONFIG names the section, key and value.  Lets a program
 * refuse a bad option before any run (pe-bench does, exit 2). */
PE_EXTERN int pe_config_check_backend(pe_ctx *ctx, const pe_config *cfg,
                                      const char *backend);
PE_EXTERN int pe_run(pe_ctx *ctx, const pe_workload *w, const pe_config *cfg,
                     const char *backend, pe_result **out);
PE_EXTERN void pe_result_free(pe_result *r);
PE_EXTERN const char *pe_run_status_name(uint32_t status); /* "ok" */

/* pe_run on n backends at once, their timed executions interleaved: every
 * backend is opened and prepared first, then each round runs each backend
 * once (A B .. B A ..: forward, then backward), so drifts in the machine's
 * speed (other tenants, clocks) fall on every backend alike and the ratios
 * of their times mean something on a shared machine.  Holds every
 * backend's prepared buffers at the same time.  out[k] is backends[k]'s
 * result (NULL only when even that could not be allocated); returns the
 * first error, 0 when every backend succeeded and verified. */
PE_EXTERN int pe_run_interleaved(pe_ctx *ctx, const pe_workload *w, const pe_config *cfg,
                                 const char *const *backends, size_t n, pe_result **out);

/* Replace the workload's inputs with caller data of the workload's shapes
 * (q: B*Hq*Sq*D floats, k and v: B*Hkv*Skv*D; v may be NULL for encode).
 * For programs that compute Q, K, V themselves (e.g. a model's layers). */
PE_EXTERN int pe_workload_set_inputs(pe_ctx *ctx, pe_workload *w, const float *q,
                                     const float *k, const float *v);

/* A backend kept open across many runs (no per-run device setup):
 * pe_runner_run prepares, executes once, fetches into out0/out1 (as
 * pe_backend_ops.fetch) and releases.  No timing, no verification. */
typedef struct pe_runner pe_runner;
PE_EXTERN int pe_runner_open(pe_ctx *ctx, const pe_config *cfg, const char *backend,
                             pe_runner **out);
PE_EXTERN int pe_runner_run(pe_runner *r, const pe_workload *w, float *out0, float *out1);
/* The backend's device as describe reports it now: after the runner's
 * last pe_runner_run (the kernel it chose, the device it ran on), or after
 * open when it has not run.  Asked once per run; blank, with a warning
 * logged, when describe fails.  The struct belongs to the runner: valid
 * until pe_runner_close, its content refreshed by the first call after
 * each pe_runner_run. */
PE_EXTERN const pe_device_info *pe_runner_device(pe_runner *r);
PE_EXTERN void pe_runner_close(pe_runner *r);

/* ---- reports ------------------------------------------------------------ */
typedef enum pe_format {
  PE_FORMAT_TABLE = 1,
  PE_FORMAT_CSV = 2,
  PE_FORMAT_JSON = 3
} pe_format;

PE_EXTERN int pe_format_parse(const char *name); /* > 0, or PE_EINVAL */
/* Write the report of `n` results to `path` atomically (temp file +
 * rename), or to stdout when `path` is NULL. */
PE_EXTERN int pe_report_write(pe_ctx *ctx, const pe_config *cfg,
                              const pe_workload *w,
                              const pe_result *const *results, size_t n,
                              int format, const char *path);
/* Write a file atomically: `fn` writes the content into a temporary file
 * beside `path`, which then replaces `path` (fsync + rename), so a reader
 * or an interrupted run never sees a partial file.  When `fn` returns
 * non-zero or a write fails, `path` is left as it was.  `path` NULL: `fn`
 * writes to stdout (what it wrote stays written).  Either way a failing
 * `fn` makes this return its PE_E* code, or PE_EIO for any other non-zero
 * value, with a message. */
typedef int (*pe_write_fn)(void *user, FILE *fp);
PE_EXTERN int pe_write_atomic(pe_ctx *ctx, const char *path, pe_write_fn fn,
                              void *user);
/* Report writers' quoting (pe-bench uses them): `s` as a JSON string
 * (escaped; a byte that is not part of valid UTF-8 is written as the
 * Latin-1 character of that value, so the output is always UTF-8), and as
 * a CSV field (RFC 4180: quoted, quotes doubled, newlines kept). */
PE_EXTERN void pe_report_json_string(FILE *fp, const char *s);
PE_EXTERN void pe_report_csv_string(FILE *fp, const char *s);

/* ---- .npy files --------------------------------------------------------- */
typedef struct pe_tensor {
  uint32_t ndim;
  uint64_t shape[8];
  float *data; /* free with pe_tensor_free */
} pe_tensor;

/* Read a float32 little-endian C-order .npy (format 1.0, 2.0 or 3.0). */
PE_EXTERN int pe_npy_read(pe_ctx *ctx, const char *path, pe_tensor *out);
PE_EXTERN void pe_tensor_free(pe_tensor *t);
/* Write atomically (temp file + rename), format 1.0. */
PE_EXTERN int pe_npy_write(pe_ctx *ctx, const char *path, const float *data,
                           uint32_t ndim, const uint64_t *shape);

/* ---- deterministic inputs ----------------------------------------------- */
/* Counter-based (Philox-4x32-10) standard normal samples: element i of
 * stream `stream` under `seed` is the same on every machine and does not
 * depend on how many others are drawn. */
PE_EXTERN void pe_random_normal(uint64_t seed, uint64_t stream, float *out,
                                size_t n);

#ifdef __cplusplus
}
#endif
#endif /* LIBPE_H */
