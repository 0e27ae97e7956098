/* pe-probe internals: options, the report document every probe fills, the
 * config helpers and the subcommands.  Private to bench/ (never installed).
 */
#ifndef PE_PROBE_H
#define PE_PROBE_H

#include <libpe.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "svg.h"
#include "table.h"

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

/* ---- options (one struct for every subcommand; each checks its own) ---- */
typedef struct probe_opts {
  const char *sub, *config;
  int format;               /* PE_FORMAT_* */
  const char *output, *plot;
  const char *backend;      /* perm, relative (default "reference") */
  const char *compare;      /* decay, extrapolate: "rope,pi,ntk,yarn" */
  uint64_t seq_len;         /* 0: the config's L */
  uint64_t max_len;         /* decay: max distance; base: max L */
  uint64_t tokens;          /* perm, relative: tokens per workload */
  uint64_t max_shift;       /* relative */
  uint64_t train_len;       /* extrapolate: 0 = the config's L_train */
  uint32_t head_dim;        /* base: 0 = the config's rotary dim */
  uint32_t seeds;           /* extrapolate */
  uint64_t seed;
  double factor;            /* 0: the config's, else 4 */
  double base;              /* base: 0 = the config's */
  double range;             /* extrapolate: evaluate up to range * L_train */
  double rcond;             /* extrapolate: dgelsd cut-off (0: FLT_EPSILON) */
} probe_opts;

/* ---- the report: a data table (csv, json), a view for people (table),
 * text before and after the view, a JSON summary and an optional plot --- */
typedef struct probe_kv {
  char key[48];   /* the probe's own literal */
  char *text;     /* text value (owned, any length: a plugin path), or NULL for a number */
  double num;
} probe_kv;

typedef struct probe_doc {
  const char *probe;
  ptab data;       /* CSV/JSON rows; the view too when `view` is empty */
  ptab view;       /* table rows for people (optional) */
  char *head, *foot; /* table-format text before/after the view */
  size_t head_len, foot_len;
  FILE *head_fp, *foot_fp;
  probe_kv kv[48];
  size_t n_kv;
  svg_plot plot;
} probe_doc;

void doc_init(probe_doc *d, const char *probe);
void doc_free(probe_doc *d);
void doc_head(probe_doc *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void doc_foot(probe_doc *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void doc_num(probe_doc *d, const char *key, double v);
void doc_str(probe_doc *d, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* printf into a new string (malloc'd, any length); NULL when out of memory. */
char *probe_strf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Write the report in o->format to o->output (atomically) or stdout, and
 * the plot to o->plot when asked.  Returns 0 or an exit status. */
int doc_emit(pe_ctx *ctx, const probe_doc *d, const probe_opts *o);

/* Write `len` bytes to `path` atomically (pe_write_atomic: temp file +
 * rename; a new file gets 0666 less the umask, a replaced one keeps its
 * mode).  0, or a libpe error with the reason in pe_ctx_error(ctx). */
int probe_write_file(pe_ctx *ctx, const char *path, const char *data, size_t len);

/* ---- configs -------------------------------------------------------------- */
/* What pe-probe reads from a config besides the tables. */
typedef struct probe_cfg {
  const char *path;
  char *dir;           /* the config's directory (a relative plugin path in it is relative here) */
  pe_config *cfg;      /* the loaded config (backend sections for pe_run) */
  char *text;          /* the config text */
  char *scheme_text;   /* the [scheme] section's lines, verbatim */
  char *scheme;        /* [scheme] plugin as written: a name or a path, any length */
  char *plugin;        /* that plugin as pe_plugin_load finds it (a path joined to dir) */
  uint32_t head_dim, q_heads;
  uint64_t L;          /* position_offset + seq_len */
  uint64_t L_train;    /* original_max_position_embeddings, else L */
  bool has_lo;         /* the scheme has original_max_position_embeddings */
  double base;         /* the scheme's base (10000 when it has none) */
  double factor;       /* the scheme's factor (0 when it has none) */
} probe_cfg;

int probe_cfg_load(pe_ctx *ctx, const char *path, probe_cfg *pc);
void probe_cfg_free(probe_cfg *pc);
/* The value of `key` in `section` of INI `text` (continuation lines
 * joined by spaces) into buf; 1 when present. */
int ini_get(const char *text, const char *section, const char *key, char *buf, size_t n);
/* A scheme parameter: the config's value, else the declared default of
 * `plugin` (a name or a path pe_plugin_load takes as is); 1 when either
 * exists. */
int scheme_param(pe_ctx *ctx, const char *plugin, const char *scheme_text, const char *key,
                 double *out);
/* The scheme tables at context length L (seq_len = L, no inputs:
 * pe_workload_build_tables) with `scheme_text` as the [scheme] section.
 * A relative plugin path in it is relative to `base_dir`: pc->dir for the
 * config's own section, NULL (the working directory) for a text of
 * scheme_text_for, whose name comes from the command line. */
int tables_at(pe_ctx *ctx, const probe_cfg *pc, const char *scheme_text, const char *base_dir,
              uint64_t L, pe_workload **out);
/* [scheme] text for plugin `name` (a --compare word: a path is relative to
 * the working directory) with the keys it declares copied from the config; a missing factor (or any factor, with force_factor) is `factor`,
 * a missing original_max_position_embeddings pc->L_train.  Caller frees. */
char *scheme_text_for(pe_ctx *ctx, const probe_cfg *pc, const char *name, double factor,
                      int force_factor);
/* Build a workload from config `text` and run it on o->backend (default
 * reference; options from the user's config section for it, if any).
 * `text` holds the config's own [scheme] section or a plugin name: a
 * relative plugin path in it is relative to the config's directory.
 * Returns 0, or an exit status with the reason printed. */
int run_text(pe_ctx *ctx, const probe_opts *o, const probe_cfg *pc, const char *text,
             pe_workload **w, pe_result **r);
/* theta_j = base^(-2j/R), j < R/2 (plain RoPE; NUMERICS.md). */
double rope_theta(double base, uint32_t R, uint32_t j);
/* The factor compared schemes use: --factor, else the config's, else 4. */
double probe_factor(const probe_opts *o, const probe_cfg *pc);

/* ---- subcommands ---------------------------------------------------------- */
typedef struct probe_cmd {
  const char *name;
  const char *options; /* letters of the options it accepts */
  const char *help;
  int (*run)(pe_ctx *ctx, const probe_opts *o, probe_doc *d);
} probe_cmd;

extern const probe_cmd probe_freq_cmd, probe_perm_cmd, probe_relative_cmd, probe_decay_cmd,
    probe_base_cmd, probe_extrapolate_cmd;

/* Report an error on stderr ("pe-probe SUB: ...") and return `status`. */
int probe_fail(const probe_opts *o, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif /* PE_PROBE_H */
