/* libpe plugin ABI: what a scheme or backend module and the host exchange.
 *
 * The rules (docs/ABI.md has the long form):
 *   - A module exports exactly one symbol, pe_plugin_entry (PE_PLUGIN_ENTRY).
 *     The host passes the newest ABI it speaks and its services table; the
 *     module answers with a const descriptor, or a negative PE_E* code and
 *     a message.
 *   - Every struct that crosses the boundary begins with `struct_size`.
 *     The host copies min(struct_size, sizeof) bytes into a zero-filled
 *     struct of its own, so a field an older module lacks reads as 0/NULL.
 *     Every ABI-1 field is required: a struct smaller than its ABI-1 size
 *     is refused.  A module reading a host struct checks PE_HAS_FIELD first.
 *   - Fields are only ever appended; each batch is marked with the ABI
 *     version that added it.  Every enum value is explicit; none is ever
 *     renumbered or reused.
 *   - Errors are negative PE_E* codes (pe_errors.h) with a human message
 *     written into the caller's buffer with pe_plugin_error().
 */
#ifndef PE_PLUGIN_H
#define PE_PLUGIN_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "pe_errors.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The newest plugin ABI this header describes. */
#define PE_ABI_VERSION 1u

/* The one symbol a module exports. */
#define PE_PLUGIN_ENTRY pe_plugin_entry
#define PE_PLUGIN_ENTRY_NAME "pe_plugin_entry"

#if defined(__GNUC__) || defined(__clang__)
#define PE_PLUGIN_EXPORT __attribute__((visibility("default")))
#else
#define PE_PLUGIN_EXPORT
#endif

/* True when the struct at `p` (which starts with struct_size) is large
 * enough to hold `field`: use it before reading a field appended in a later
 * ABI than the oldest one the module supports. */
#define PE_HAS_FIELD(p, type, field)                                          \
  ((p)->struct_size >= offsetof(type, field) + sizeof(((type *)0)->field))

typedef enum pe_plugin_kind {
  PE_PLUGIN_SCHEME = 1,
  PE_PLUGIN_BACKEND = 2
} pe_plugin_kind;

typedef enum pe_log_level {
  PE_LOG_ERROR = 1,
  PE_LOG_WARN = 2,
  PE_LOG_INFO = 3,
  PE_LOG_DEBUG = 4
} pe_log_level;

/* ------------------------------------------------------------------------
 * Host services: a table the host hands to every entry call and callback.
 * ---------------------------------------------------------------------- */
typedef struct pe_host pe_host;
struct pe_host {
  uint32_t struct_size;
  uint32_t abi_version; /* the newest ABI the host speaks */
  /* ABI 1 */
  void *host_data; /* opaque, for the host's own callbacks */
  /* Report a warning or note; `plugin` is the module's name. */
  void (*log)(const pe_host *host, int level, const char *plugin,
              const char *message);
  /* A per-user cache directory for compiled kernels (created on demand,
   * honours PE_CACHE_DIR, XDG_CACHE_HOME, HOME); NULL when none is usable
   * (the host has then said why, once: a file, not writable, ...). */
  const char *(*cache_dir)(const pe_host *host);
};

/* Write a message into an error buffer; returns `code` for tail calls. */
static inline int pe_plugin_error(char *err, size_t err_size, int code,
                                  const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static inline int pe_plugin_error(char *err, size_t err_size, int code,
                                  const char *fmt, ...) {
  if (err && err_size) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_size, fmt, ap);
    va_end(ap);
  }
  return code;
}

/* printf-style logging through the host table. */
static inline void pe_plugin_log(const pe_host *host, int level,
                                 const char *plugin, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static inline void pe_plugin_log(const pe_host *host, int level,
                                 const char *plugin, const char *fmt, ...) {
  char buf[1024];
  va_list ap;
  if (!host || !PE_HAS_FIELD(host, pe_host, log) || !host->log) return;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  host->log(host, level, plugin, buf);
}

/* ------------------------------------------------------------------------
 * Parameters: a plugin declares its config keys; the host parses, checks
 * type and range, applies defaults, and passes the values back in
 * declaration order.  Unknown keys never reach a plugin: they are errors.
 * ---------------------------------------------------------------------- */
typedef enum pe_param_type {
  PE_PARAM_NUMBER = 1,  /* double */
  PE_PARAM_INTEGER = 2, /* int64 */
  PE_PARAM_BOOL = 3,    /* true/false, yes/no, on/off, 1/0 */
  PE_PARAM_CHOICE = 4,  /* one word of `choices` ("a|b|c"), as its index */
  PE_PARAM_LIST = 5,    /* space-separated numbers, may continue on lines */
  PE_PARAM_STRING = 6   /* free text */
} pe_param_type;

typedef enum pe_param_flags {
  PE_PARAM_REQUIRED = 1u << 0, /* a config must give it */
  PE_PARAM_HAS_MIN = 1u << 1,  /* min applies (numbers, list elements) */
  PE_PARAM_HAS_MAX = 1u << 2,  /* max applies */
  PE_PARAM_MIN_OPEN = 1u << 3, /* value must be > min, not >= */
  PE_PARAM_MAX_OPEN = 1u << 4  /* value must be < max, not <= */
} pe_param_flags;

typedef struct pe_param_decl {
  uint32_t struct_size;
  uint32_t type;  /* pe_param_type */
  uint32_t flags; /* pe_param_flags */
  const char *name;
  const char *doc;           /* one line */
  const char *default_value; /* as config text; NULL: absent unless given */
  double min, max;           /* bounds, see flags */
  const char *choices;       /* PE_PARAM_CHOICE: "neox|interleaved" */
  /* ABI 1 ends here */
} pe_param_decl;

typedef struct pe_param_value {
  uint32_t struct_size;
  uint32_t given;     /* 1: the config set it */
  uint32_t present;   /* 1: given or defaulted; 0: optional and absent */
  uint32_t list_len;  /* PE_PARAM_LIST: number of elements */
  double number;      /* NUMBER; also INTEGER and BOOL as double */
  int64_t integer;    /* INTEGER, BOOL (0/1), CHOICE (index) */
  const char *text;   /* the value as written (defaults: the default text) */
  const double *list; /* PE_PARAM_LIST */
  /* ABI 1 ends here */
} pe_param_value;

/* ------------------------------------------------------------------------
 * Scheme plugins: pure math, parameters in, float64 tables out.
 * ---------------------------------------------------------------------- */
typedef enum pe_encoding_kind {
  PE_KIND_NONE = 1,     /* identity */
  PE_KIND_ROTARY = 2,   /* rotate pairs by p * inv_freq[j], scale by a */
  PE_KIND_ADDITIVE = 3, /* x += [sin(p f_j), cos(p f_j)] interleaved */
  PE_KIND_BIAS = 4      /* logit += -slope_h * (pq - pk) */
} pe_encoding_kind;

typedef enum pe_pairing {
  PE_PAIRING_NEOX = 1,       /* pair j = dims (j, j + R/2) */
  PE_PAIRING_INTERLEAVED = 2 /* pair j = dims (2j, 2j + 1) */
} pe_pairing;

/* The workload shape a scheme sees (NUMERICS.md "Tensors and positions"). */
typedef struct pe_shape {
  uint32_t struct_size;
  uint32_t batch;
  uint32_t q_heads;
  uint32_t kv_heads;
  uint32_t head_dim;
  uint64_t q_len;
  uint64_t kv_len;          /* seq_len */
  uint64_t position_offset;
  uint64_t context_len;     /* L = position_offset + kv_len */
  /* ABI 1 ends here */
} pe_shape;

/* Filled by a scheme's compute().  The host allocates the arrays and
 * pre-fills the defaults: rotary_dim = head_dim, pairing NEOX,
 * attention_factor 1.  `kind` has no default: compute() must set it (the
 * host refuses a scheme that leaves it 0). */
typedef struct pe_scheme_tables {
  uint32_t struct_size;
  uint32_t kind;            /* pe_encoding_kind */
  uint32_t rotary_dim;      /* ROTARY: R, even, <= head_dim */
  uint32_t pairing;         /* ROTARY: pe_pairing */
  double attention_factor;  /* ROTARY: a (q and k are both scaled by a) */
  double *inv_freq;         /* ROTARY: R/2 entries; ADDITIVE: head_dim/2 */
  uint32_t inv_freq_capacity; /* = head_dim / 2 */
  uint32_t slopes_capacity;   /* = q_heads */
  double *slopes;           /* BIAS: one per query head */
  char note[256];           /* one line: branch/base used at this L */
  /* ABI 1 ends here */
} pe_scheme_tables;

typedef struct pe_scheme_ops {
  uint32_t struct_size;
  /* NULL-terminated list of the scheme's parameters. */
  const pe_param_decl *const *params;
  /* Required.  Check the values against the shape and fill `out`.
   * `values[i]` belongs to `params[i]`.  Return 0 or a negative PE_E* code
   * with a message naming the parameter and the accepted values. */
  int (*compute)(const pe_host *host, const pe_param_value *const *values,
                 const pe_shape *shape, pe_scheme_tables *out, char *err,
                 size_t err_size);
  /* ABI 1 ends here */
} pe_scheme_ops;

/* ------------------------------------------------------------------------
 * Backend plugins: devices, memory, kernels.  They never see a scheme's
 * name, only its kind and the tables the core derived in float64.
 * ---------------------------------------------------------------------- */
typedef enum pe_op {
  PE_OP_ATTENTION = 1, /* O = softmax(scale Q'K'^T + bias, masked) V */
  PE_OP_ENCODE = 2     /* Q' and K' only (memory-bound) */
} pe_op;

typedef enum pe_device_type {
  PE_DEVICE_CPU = 1,
  PE_DEVICE_GPU = 2,
  PE_DEVICE_ACCELERATOR = 3,
  PE_DEVICE_OTHER = 4
} pe_device_type;

/* One workload as a backend receives it.  The host owns every pointer and
 * keeps it valid until release().  Tensors are row-major float32:
 *   q[B][Hq][Sq][D], k and v [B][Hkv][Skv][D].
 * Position tables are indexed by key row n = 0..Skv-1 (position pk(n) =
 * offset + n); query i sits at row Skv - Sq + i.  The core allocates
 * every array below on a 64-byte boundary: a backend may count on that
 * for speed (whole-line vector loads of 64-byte rows), never for
 * correctness (older cores and other hosts of this ABI need not). */
typedef struct pe_task {
  uint32_t struct_size;
  uint32_t op;   /* pe_op */
  uint32_t kind; /* pe_encoding_kind */
  uint32_t batch, q_heads, kv_heads, head_dim;
  uint64_t q_len, kv_len, position_offset;
  uint32_t causal;     /* 0/1 */
  uint64_t window;     /* 0: none; else |pq - pk| < window */
  float softmax_scale; /* multiplies <q', k'> */
  uint32_t rotary_dim; /* ROTARY: R */
  uint32_t pairing;    /* ROTARY: pe_pairing */
  const float *q, *k, *v;
  /* ROTARY: a*cos(p inv_freq[j]) and a*sin(...), [Skv][R/2], each computed
   * in float64 and rounded once. */
  const float *rope_cos, *rope_sin;
  /* ADDITIVE: pe(p) for every key row, [Skv][D]. */
  const float *additive;
  /* BIAS: slope per query head, [Hq]. */
  const float *slopes;
  /* ABI 1 ends here */
} pe_task;

typedef struct pe_device_info {
  uint32_t struct_size;
  uint32_t type;     /* pe_device_type */
  char name[128];    /* "AMD EPYC 9B14 (2 threads)", "llvmpipe (LLVM 15)" */
  char driver[128];  /* "PoCL 3.1", "Mesa 22.3.6" */
  char details[512]; /* kernel path, limits: free text for reports */
  /* ABI 1 ends here */
} pe_device_info;

typedef void (*pe_device_emit_fn)(void *user, const pe_device_info *info);

typedef struct pe_backend_ops {
  uint32_t struct_size;
  /* NULL-terminated list of the backend's options ([backend] keys). */
  const pe_param_decl *const *options;
  /* Required.  Pick the device.  PE_EUNSUPPORTED with a reason when there
   * is none ("unsupported: no device"). */
  int (*open)(const pe_host *host, const pe_param_value *const *options,
              void **backend, char *err, size_t err_size);
  /* Required. */
  void (*close)(void *backend);
  /* Required.  Fill what is known (after prepare: the kernel path too).
   * Returns 0; an error code fails the run, the device left blank. */
  int (*describe)(void *backend, pe_device_info *info);
  /* Required.  Compile, allocate, upload.  PE_EUNSUPPORTED with a reason
   * for a workload the backend cannot run. */
  int (*prepare)(void *backend, const pe_task *task, void **run, char *err,
                 size_t err_size);
  /* Required.  Run once, synchronously.  *device_ms: device time of this
   * run, or a negative value when the backend has no device timer. */
  int (*execute)(void *run, double *device_ms, char *err, size_t err_size);
  /* Required.  Copy results to host memory: ATTENTION: out0 = O
   * [B][Hq][Sq][D]; ENCODE: out0 = Q' (shape of q), out1 = K' (of k). */
  int (*fetch)(void *run, float *out0, float *out1, char *err,
               size_t err_size);
  /* Required. */
  void (*release)(void *run);
  /* Optional.  List the devices the backend could use. */
  int (*enumerate)(const pe_host *host, pe_device_emit_fn emit, void *user,
                   char *err, size_t err_size);
  /* ABI 1 ends here */
} pe_backend_ops;

/* ------------------------------------------------------------------------
 * The descriptor and the entry point.
 * ---------------------------------------------------------------------- */
typedef struct pe_plugin_desc {
  uint32_t struct_size;
  uint32_t abi_version; /* the ABI the module was written for */
  uint32_t kind;        /* pe_plugin_kind */
  const char *name;     /* "rope", "openmp": matches the module file name */
  const char *version;  /* the module's own version, "1.0.0" */
  const char *summary;  /* one line */
  const pe_scheme_ops *scheme;   /* kind == PE_PLUGIN_SCHEME */
  const pe_backend_ops *backend; /* kind == PE_PLUGIN_BACKEND */
  /* ABI 1 ends here */
} pe_plugin_desc;

/* `host_abi` is the newest ABI the host speaks; a module that needs a newer
 * one refuses with PE_EABI.  On success *desc points at a static
 * descriptor that stays valid until the module is unloaded. */
typedef int (*pe_plugin_entry_fn)(uint32_t host_abi, const pe_host *host,
                                  const pe_plugin_desc **desc, char *err,
                                  size_t err_size);

#ifdef __cplusplus
}
#endif
#endif /* PE_PLUGIN_H */
