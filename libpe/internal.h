/* libpe private declarations: never installed.  Internal non-static names
 * start with pe__. */
#ifndef PE_INTERNAL_H
#define PE_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "libpe.h"

#define PE_ERRMSG_SIZE 2048
#define PE_MAX_PLUGIN_DIRS 64
#define PE_MAX_HEAD_DIM 4096

/* ---- context ----------------------------------------------------------- */
struct pe_ctx {
  char err[PE_ERRMSG_SIZE];
  pe_log_fn log_fn;
  void *log_user;
  char *plugin_dirs[PE_MAX_PLUGIN_DIRS];
  size_t n_dirs;
  struct pe_plugin **plugins; /* loaded modules */
  size_t n_plugins;
  /* Lifetime: one reference for the caller (dropped by pe_ctx_free) and
   * one per live workload and runner; the last one frees the context and
   * unloads its modules.  Atomic so that the last frees may run on
   * different threads. */
  atomic_uint refs;
  atomic_uint live_workloads; /* workloads holding a scheme plugin */
  atomic_uint live_runners;   /* runners holding an open backend */
  pe_host host;
  char cache_dir[4096];
  int cache_state; /* 0 unknown, 1 usable, -1 none */
};

/* Set the context's message; returns `code`. */
int pe__fail(pe_ctx *ctx, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Prefix the current message: "what: <old message>". */
int pe__fail_prefix(pe_ctx *ctx, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void pe__log(pe_ctx *ctx, int level, const char *origin, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* A workload or runner keeps its context alive: hold when it is made,
 * release when it is freed (last: the context may go with it). */
void pe__ctx_hold(pe_ctx *ctx, atomic_uint *live);
void pe__ctx_release(pe_ctx *ctx, atomic_uint *live);
/* True for a code of the table in pe_errors.h other than PE_OK. */
bool pe__is_error_code(int rc);
/* A plugin callback returned rc != 0 with message `err` (may be empty):
 * write what to report into msg -- err, else the code's text; for a code
 * outside the table, that the plugin broke the contract -- and return the
 * code to report: rc when it is in the table, else `fallback`. */
int pe__plugin_failure(int rc, int fallback, const char *err, char *msg, size_t size);

/* ---- plugins ----------------------------------------------------------- */
struct pe_plugin {
  pe_ctx *ctx;
  void *handle;
  char *path;
  pe_plugin_desc desc;      /* host copy */
  pe_scheme_ops scheme;     /* host copy (scheme plugins) */
  pe_backend_ops backend;   /* host copy (backend plugins) */
  pe_param_decl *decls;     /* host copies of the declarations */
  const pe_param_decl **decl_ptrs; /* NULL-terminated, into decls */
  size_t n_params;
};

/* Make a device description a well-formed host struct: struct_size of
 * this libpe, every string terminated within its array. */
void pe__device_info_terminate(pe_device_info *info);

/* ---- parameter values -------------------------------------------------- */
/* A config entry as written: section, key, value and where. */
typedef struct pe__entry {
  char *section;
  char *key;
  char *value;     /* continuation lines joined with a space */
  int line;        /* in the file; PE_LINE_SET: set by pe_config_set */
  bool continued;  /* had indented continuation lines */
} pe__entry;
#define PE_LINE_SET (-1)

/* Values for a plugin's parameters, in declaration order. */
typedef struct pe__values {
  size_t n;
  pe_param_value *vals;
  const pe_param_value **ptrs; /* what plugins receive */
  double *list_storage;
  char **texts;
} pe__values;

/* Check the entries of `section` of `cfg` against the plugin's declarations
 * and build values (defaults applied).  Messages name the config file,
 * line, key and accepted values. */
/* `alt` (may be NULL) is a second section whose keys count as `section`'s
 * ([scheme.NAME] beside [scheme]). */
int pe__values_build(pe_ctx *ctx, const pe_config *cfg, const char *section, const char *alt,
                     const pe_param_decl *const *decls, const char *owner,
                     pe__values *out);
/* Describe a declaration's accepted values: "a number > 0", "neox|interleaved". */
void pe__param_accepted(const pe_param_decl *d, char *buf, size_t size);
const char *pe__param_type_name(uint32_t type);
void pe__values_free(pe__values *v);
/* Whether d->default_value (not NULL) parses as a value of `d`: 0, or an
 * error code with the reason in `why` ("out of range"). */
int pe__param_check_default(const pe_param_decl *d, char *why, size_t why_size);

/* Parse `text` as the given type; message in `why` on failure. */
int pe__parse_bool(const char *text, bool *out);
int pe__parse_i64(const char *text, int64_t *out);
int pe__parse_double(const char *text, double *out);

/* ---- configs ----------------------------------------------------------- */
typedef struct pe__backend_section {
  char *label;   /* "fast" of [backend.fast]; plugin name for [backend] */
  char *section; /* "backend.fast" */
  char *plugin;
  int line;
} pe__backend_section;

struct pe_config {
  char *name;     /* file path or caller's name */
  char *base_dir; /* relative input paths resolve here */
  char *text;     /* verbatim */
  pe__entry *entries;
  size_t n_entries, cap_entries;
  pe__backend_section *backends;
  size_t n_backends;
};

/* The entry of `section`/`key`, or NULL. */
/* Where a config value came from, for messages: "FILE:LINE", or "FILE"
 * for a value set through pe_config_set (line 0).  PE_AT's buffer lives
 * until the end of the enclosing block. */
#define PE_AT_SIZE 4200
const char *pe__at(char *buf, const pe_config *cfg, int line);
#define PE_AT(cfg, line) pe__at((char[PE_AT_SIZE]){0}, (cfg), (line))
const pe__entry *pe__config_find(const pe_config *cfg, const char *section,
                                 const char *key);
/* What to load for a [scheme] or [backend] plugin of `cfg`: a name as it
 * is, a relative path joined to the config's directory.  NULL: out of
 * memory. */
char *pe__config_plugin_path(const pe_config *cfg, const char *value);
/* Workload, input and run settings after validation. */
typedef struct pe__settings {
  uint32_t op;
  uint32_t batch, q_heads, kv_heads, head_dim;
  uint64_t q_len, kv_len, position_offset, window;
  bool causal;
  double softmax_scale; /* 0: 1/sqrt(D) */
  char *input_path[3];  /* q, k, v (absolute or relative to cwd); NULL */
  uint32_t distribution; /* 1 normal, 2 uniform */
  double input_scale;
  uint32_t warmup, iterations;
  bool verify;
  uint64_t verify_rows; /* 0: automatic sample */
  double tolerance;
  uint64_t seed;
  uint64_t max_memory; /* bytes */
  char *scheme_plugin;
} pe__settings;

int pe__settings_read(pe_ctx *ctx, const pe_config *cfg, pe__settings *s);
void pe__settings_free(pe__settings *s);

/* ---- workloads --------------------------------------------------------- */
struct pe_workload {
  pe_ctx *ctx;
  pe__settings set;
  const pe_plugin *scheme;
  pe__values scheme_values;
  pe_scheme_tables tables;
  double *inv_freq, *slopes; /* storage behind tables */
  char note[256];
  pe_workload_info info;
  pe_task task;
  bool tables_only; /* pe_workload_build_tables: no inputs, cannot run */
  float *q, *k, *v;
  float *rope_cos, *rope_sin, *additive, *slopes_f;
  char inputs_desc[512];
};

/* PE_ESTATE with a message for a tables-only workload. */
int pe__workload_runnable(pe_ctx *ctx, const pe_workload *w);
/* Query rows to verify for a workload: every row when cheap, else an even
 * deterministic sample that always holds the first and last row. */
size_t pe__verify_rows(const pe_workload *w, uint64_t **rows);
/* float64 oracle over the given query rows: out[B][Hq][nrows][D]. */
int pe__oracle_rows(pe_ctx *ctx, const pe_workload *w, const uint64_t *rows,
                    size_t nrows, double *out);
/* Number of keys query row i sees (NUMERICS.md visibility). */
uint64_t pe__visible_keys(const pe_workload_info *info, uint64_t i,
                          uint64_t *first);

/* Uniform in [-1, 1), bit-identical everywhere. */
void pe__random_uniform(uint64_t seed, uint64_t stream, float *out, size_t n);

/* ---- utilities --------------------------------------------------------- */
char *pe__strdup(const char *s);
char *pe__strndup(const char *s, size_t n);
char *pe__asprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Memory for the arrays a backend reads (pe_task: inputs, tables): start
 * on a 64-byte line so that no aligned-width vector load of a row whose
 * byte offset is a multiple of 64 straddles two cache lines (glibc's
 * malloc gives large blocks 16-byte alignment).  Zero-filled when `zero`;
 * NULL when out of memory; freed with free(). */
#define PE_ARRAY_ALIGN 64
void *pe__alloc_array(size_t bytes, bool zero);
/* a*b*... with overflow detection: false when the product overflows. */
bool pe__mul_u64(uint64_t a, uint64_t b, uint64_t *out);
double pe__now_ms(void);
/* Join `base_dir` and `path` unless `path` is absolute. */
char *pe__path_join(const char *base_dir, const char *path);
char *pe__dirname(const char *path);

/* Atomic output: open a temp file beside `path`, then commit (fsync +
 * rename) or abort (unlink). */
typedef struct pe__atomic_file {
  FILE *fp;
  char *path;
  char *tmp_path;
} pe__atomic_file;
int pe__atomic_open(pe_ctx *ctx, const char *path, pe__atomic_file *af);
int pe__atomic_commit(pe_ctx *ctx, pe__atomic_file *af);
void pe__atomic_abort(pe__atomic_file *af);

/* Growable string. */
typedef struct pe__str {
  char *buf;
  size_t len, cap;
  bool oom;
} pe__str;
void pe__str_addf(pe__str *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void pe__str_free(pe__str *s);

#endif /* PE_INTERNAL_H */
