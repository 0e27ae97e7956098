/* needle: a tiny decoder-only transformer trained here on a synthetic
 * needle-in-a-haystack task, and a depth x length evaluation of
 * context-extension schemes whose attention runs through a libpe backend.
 * Private to bench/ (never installed).  docs/NEEDLE.md is the long form.
 *
 * Layout of the code:
 *   cfg.c     the needle INI (configs/needle/NAME.ini) and model.ini
 *   task.c    seeded haystack generators (identical on every machine)
 *   layers.c  float32 layers with hand-written backward passes
 *   attn.c    the model's own attention (forward + backward) for every
 *             encoding kind, from a scheme's float64 tables
 *   model.c   parameters, training forward/backward, AdamW, inference
 *             forward (attention through a callback), save/load (.npy)
 *   train.c   the training loop (progress line, determinism)
 *   eval.c    the depth x length grid, Wilson intervals, effective length,
 *             attention through pe_runner_run
 *   report.c  table, CSV, JSON; svg.c the heatmaps
 *   main.c    pe_needle_main: the command line
 */
#ifndef PE_NEEDLE_H
#define PE_NEEDLE_H

#include <libpe.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* The entry point of `pe-probe needle` and `pe-needle`: argv[0] is the
 * command's name ("needle" or "pe-needle"), argv[1..] its arguments.
 * Returns the exit status (0 ok, 1 a run failed, 2 usage/config error). */
int pe_needle_main(int argc, char **argv);

#define ND_MAX_SCHEMES 16
#define ND_MAX_LENGTHS 16
#define ND_MAX_DEPTHS 32
#define ND_MAX_BACKENDS 8

/* ---- configuration ------------------------------------------------------ */
typedef struct nd_arch {
  uint32_t vocab, d_model, layers, heads, head_dim, d_ff;
} nd_arch;

typedef struct nd_taskcfg {
  uint32_t keys; /* token ids: 0 BOS, 1..keys the keys, then the filler tokens,
                   which also serve as values */
} nd_taskcfg;

typedef struct nd_traincfg {
  char scheme[64];      /* scheme plugin of the attention while training */
  uint32_t seq_len;     /* L_train (finetune: the longer length) */
  uint32_t min_len;     /* sequence lengths uniform in [min_len, max]; 0: all seq_len */
  double curriculum;    /* max grows from min_len to seq_len over this fraction of steps */
  uint32_t steps, batch, warmup;
  uint32_t distractors; /* each sequence has 0..distractors extra pairs */
  uint32_t repeats;     /* each pair is mentioned 1..1+repeats times */
  double lr, min_lr, weight_decay, grad_clip;
  uint64_t seed;
} nd_traincfg;

/* A [scheme.NAME] section: the parameters a scheme gets, as INI lines. */
typedef struct nd_schemesec {
  char name[64];
  char *text; /* "key = value\n" lines, malloc'd */
} nd_schemesec;

typedef struct nd_evalcfg {
  char schemes[ND_MAX_SCHEMES][64];
  uint32_t n_schemes;
  double lengths[ND_MAX_LENGTHS]; /* multiples of L_train */
  uint32_t n_lengths;
  double depths[ND_MAX_DEPTHS]; /* percent */
  uint32_t n_depths;
  uint32_t trials, distractors, batch_tokens;
  uint64_t seed;
  double threshold; /* effective length: accuracy >= threshold */
  char backends[ND_MAX_BACKENDS][64];
  uint32_t n_backends;
  char model[4096]; /* model directory (resolved), "" when none */
} nd_evalcfg;

typedef struct nd_config {
  char path[4096], dir[4096];
  nd_arch arch;
  nd_taskcfg task;
  nd_traincfg train;
  nd_traincfg finetune; /* steps 0: no fine-tune */
  nd_evalcfg eval;
  nd_schemesec sec[ND_MAX_SCHEMES];
  uint32_t n_sec;
  /* model.ini only: what training recorded */
  char record[2048];
} nd_config;

/* Defaults, then the file.  Unknown sections/keys and bad values are
 * errors with "FILE:LINE: [section] key = value: why". */
void nd_config_defaults(nd_config *c);
int nd_config_load(const char *path, nd_config *c, char *err, size_t errlen);
void nd_config_free(nd_config *c);
/* The [scheme.NAME] lines of the config ("" when it has none). */
const char *nd_scheme_lines(const nd_config *c, const char *name);
int nd_config_check(const nd_config *c, char *err, size_t errlen);

/* ---- the task ----------------------------------------------------------- */
/* Token ids. */
#define ND_BOS 0u
static inline uint32_t nd_key_tok(const nd_taskcfg *t, uint32_t i) { (void)t; return 1 + i; }
static inline uint32_t nd_filler0(const nd_taskcfg *t) { return 1 + t->keys; }

/* A deterministic 64-bit generator (splitmix64-seeded xoshiro256**). */
typedef struct nd_rng {
  uint64_t s[4];
} nd_rng;
void nd_rng_seed(nd_rng *r, uint64_t seed, uint64_t a, uint64_t b, uint64_t c);
uint64_t nd_rng_next(nd_rng *r);
uint32_t nd_rng_below(nd_rng *r, uint32_t n); /* uniform in [0, n), unbiased */

/* One sequence: tokens[0..len-1] = BOS, a haystack of uniform filler
 * tokens with the needle pair (KEY VALUE) whose key sits at needle_pos,
 * `distractors` other pairs (distinct keys, random values), then the query
 * KEY at len-1.  VALUE is a filler token too, so the model must find the
 * key and copy the token after it (an induction head: a previous-token
 * head and a key match); keys never occur in the filler.  The answer is
 * VALUE, predicted at position len-1.  depth in [0, 1]: needle_pos = 1 +
 * round(depth * (len - 4)), so 0 puts it right after BOS and 1 right before
 * the query.  depth < 0: uniform.  Returns the answer token. */
uint32_t nd_make_sequence(const nd_taskcfg *t, uint32_t vocab, uint32_t len, double depth,
                          uint32_t distractors, nd_rng *rng, uint32_t *tokens,
                          uint32_t *needle_pos);

/* A training sequence: BOS, filler, 1 + distractors pairs with distinct
 * keys, each mentioned 1..1+repeats times (same value every time) at free
 * slots, and a final query of one of the keys at len-1.  Every mention of a
 * key after its first, and the final query, is a target: (tpos, ttok),
 * ascending, at most `cap`.  Returns the number of targets (0: no room). */
uint32_t nd_make_train_sequence(const nd_taskcfg *t, uint32_t vocab, uint32_t len,
                                uint32_t distractors, uint32_t repeats, nd_rng *rng,
                                uint32_t *tokens, uint32_t *tpos, uint32_t *ttok, uint32_t cap);

/* ---- positions (a scheme's tables, turned into float32 per position) ---- */
typedef struct nd_pos {
  uint32_t kind, rot_dim, pairing, head_dim, heads;
  size_t len;          /* positions 0..len-1 */
  float *cos, *sin;    /* ROTARY: a*cos(p f_j), a*sin(p f_j), [len][R/2] */
  float *add;          /* ADDITIVE: [len][D] */
  float *slopes;       /* BIAS: [heads] */
  float scale;         /* softmax scale */
} nd_pos;

/* From the float64 tables of a workload (pe_workload_get_info()->tables),
 * in float64, rounded once: the same numbers the core hands backends. */
int nd_pos_init(nd_pos *p, const pe_workload_info *info, size_t len);
void nd_pos_free(nd_pos *p);

/* ---- layers (layers.c, attn.c): float32, row-major ---------------------- */
/* y[N][M] = x[N][K] W[M][K]^T */
void nd_linear_fwd(float *y, const float *x, const float *w, size_t n, size_t k, size_t m);
/* dx[N][K] (+)= dy W ; dW[M][K] += dy^T x.  dx may be NULL. */
void nd_linear_bwd(float *dx, float *dw, const float *dy, const float *x, const float *w,
                   size_t n, size_t k, size_t m, bool accumulate_dx);
/* y = x / rms(x) * g per row; rs[N] keeps 1/rms. */
void nd_rmsnorm_fwd(float *y, float *rs, const float *x, const float *g, size_t n, size_t c);
/* dx (+)= ..., dg += ... */
void nd_rmsnorm_bwd(float *dx, float *dg, const float *dy, const float *x, const float *rs,
                    const float *g, size_t n, size_t c, bool accumulate_dx);
void nd_relu_fwd(float *y, const float *x, size_t n);
void nd_relu_bwd(float *dx, const float *dy, const float *x, size_t n);
/* Mean cross-entropy of rows `rows` of logits[n][V] against targets; also
 * fills dlogits (d mean loss), and counts argmax hits.  Returns the loss. */
double nd_xent(float *dlogits, const float *logits, const uint32_t *targets, size_t n, size_t v,
               uint32_t *hits);

/* Attention over heads laid out [B][H][S][D] (q: [B][H][Sq][D], k, v:
 * [B][H][Skv][D]); query i of batch b sits at position qpos[b*Sq + i], or
 * Skv - Sq + i when qpos is NULL; key n at n; causal.  The encoding (pos) is applied to q and k inside (as backends
 * do).  qe/ke receive the encoded q and k (for backward; may be NULL when
 * lse is NULL), lse the per-row log-sum-exp (may be NULL). */
void nd_attn_fwd(const nd_pos *pos, size_t B, size_t H, size_t Sq, size_t Skv, size_t D,
                 const uint32_t *qpos, const float *q, const float *k, const float *v, float *o, float *qe, float *ke,
                 float *lse);
/* Backward of nd_attn_fwd (from its qe, ke, lse): dq [B][H][Sq][D], dk
 * and dv [B][H][Skv][D] overwritten. */
void nd_attn_bwd(const nd_pos *pos, size_t B, size_t H, size_t Sq, size_t Skv, size_t D,
                 const uint32_t *qpos, const float *qe, const float *ke, const float *v, const float *o,
                 const float *lse, const float *dout, float *dq, float *dk, float *dv);
/* Encoding alone (used by the tests): x'[S][D] of one head at positions
 * pos0..pos0+S-1, and its transpose applied to a gradient. */
void nd_encode_rows(const nd_pos *pos, size_t S, size_t D, size_t pos0, const float *x, float *y);
void nd_encode_rows_bwd(const nd_pos *pos, size_t S, size_t D, size_t pos0, const float *dy,
                        float *dx);

/* ---- the model ---------------------------------------------------------- */
typedef struct nd_layer {
  float *attn_norm, *wq, *wk, *wv, *wo, *mlp_norm, *w1, *w2;
} nd_layer;

typedef struct nd_model {
  nd_arch a;
  float *params; /* one block; the pointers below point into it */
  size_t n_params;
  float *tok_emb;  /* [V][C] */
  nd_layer *layer; /* [layers] */
  float *final_norm, *lm_head; /* [C], [V][C] */
} nd_model;

/* Every parameter tensor by name, in a fixed order (save/load, AdamW). */
typedef struct nd_tensor_ref {
  char name[48];
  float *data;
  uint32_t ndim;
  uint64_t shape[2];
  bool decay; /* AdamW weight decay applies (matrices) */
} nd_tensor_ref;
size_t nd_model_tensors(const nd_model *m, nd_tensor_ref *out, size_t cap);

int nd_model_alloc(nd_model *m, const nd_arch *a);
void nd_model_free(nd_model *m);
void nd_model_init(nd_model *m, uint64_t seed);
int nd_model_copy(nd_model *dst, const nd_model *src);

/* Training workspace for (B, T); grads live here. */
typedef struct nd_train_ws nd_train_ws;
/* For B sequences of at most T tokens. */
nd_train_ws *nd_ws_new(const nd_model *m, size_t B, size_t T);
void nd_ws_free(nd_train_ws *ws);
float *nd_ws_grads(nd_train_ws *ws);
/* Loss: mean cross-entropy of the next token at nt positions of each
 * sequence tokens[B][T] (positions tpos[b*nt + j], next tokens
 * targets[b*nt + j]).  Only the keys and values of the last layer are
 * needed at every position, so the last layer runs its queries, MLP and
 * head on the target rows only.  With backward, the workspace's grads are
 * overwritten with d loss / d params. */
double nd_model_step(nd_model *m, nd_train_ws *ws, const nd_pos *pos, const uint32_t *tokens,
                     size_t B, size_t T, size_t nt, const uint32_t *tpos, const uint32_t *targets,
                     bool backward, uint32_t *hits);

/* Inference: the attention of layer `layer` (q: [B][H][Sq][D], k, v:
 * [B][H][S][D], Sq = S, or 1 for the last layer) into o [B][H][Sq][D]. */
typedef int (*nd_attn_fn)(void *user, uint32_t layer, size_t B, size_t Sq, size_t S,
                          const float *q, const float *k, const float *v, float *o);
/* Log-probabilities of the next token at the last position of each of the
 * B sequences tokens[B][S]: logp[B][V]. */
int nd_model_last_logp(const nd_model *m, const uint32_t *tokens, size_t B, size_t S,
                       nd_attn_fn attn, void *user, float *logp);

/* Save as a directory: model.ini (architecture, task, training record,
 * the training scheme's section) and one .npy per tensor. */
int nd_model_save(pe_ctx *ctx, const nd_model *m, const nd_config *c, const char *dir,
                  const char *record, char *err, size_t errlen);
/* Load a directory; `c` receives the model.ini (architecture, task, train,
 * scheme section). */
int nd_model_load(pe_ctx *ctx, const char *dir, nd_model *m, nd_config *c, char *err,
                  size_t errlen);

/* ---- workloads and training --------------------------------------------- */
/* Build the libpe workload of scheme `scheme` for (B, H, D, S, Sq) with the
 * scheme's parameters from the config ([scheme.NAME]; base and
 * original_max_position_embeddings default to the model's). */
int nd_workload(pe_ctx *ctx, const nd_config *c, const char *scheme, size_t B, size_t S,
                size_t Sq, pe_config **cfg_out, pe_workload **w_out, char *err, size_t errlen);
/* The [scheme] text used for `scheme` (for reports); malloc'd. */
char *nd_scheme_text(pe_ctx *ctx, const nd_config *c, const char *scheme, char *err,
                     size_t errlen);

typedef struct nd_train_stats {
  double final_loss, final_acc, seconds, tokens_per_s;
  uint64_t tokens;
  int threads;
} nd_train_stats;

/* Train `m` with tc (steps, seq_len, scheme, ...) from its current
 * weights.  Progress on `progress` (NULL: silent). */
int nd_train(pe_ctx *ctx, const nd_config *c, const nd_traincfg *tc, nd_model *m,
             FILE *progress, const char *label, nd_train_stats *st, char *err, size_t errlen);

/* ---- evaluation --------------------------------------------------------- */
typedef struct nd_cell {
  uint32_t trials, correct;
  double logp_sum;
} nd_cell;

typedef struct nd_grid {
  char scheme[64];
  char backend[64];
  bool finetuned;
  uint32_t L_train;
  uint32_t n_lengths, n_depths;
  uint32_t lengths[ND_MAX_LENGTHS];
  double depths[ND_MAX_DEPTHS];
  nd_cell cell[ND_MAX_LENGTHS][ND_MAX_DEPTHS];
  double seconds;
} nd_grid;

/* Wilson score interval (z = 1.959964, 95%) for k successes of n. */
void nd_wilson(uint32_t k, uint32_t n, double *lo, double *hi);
/* Accuracy pooled over depths at length index li. */
double nd_length_accuracy(const nd_grid *g, uint32_t li);
/* The longest grid length L such that every grid length <= L has pooled
 * accuracy >= threshold; 0 when the shortest one already fails. */
uint32_t nd_effective_length(const nd_grid *g, double threshold);

/* Evaluate model m under `scheme` on `backend` ("builtin": the model's own
 * C attention, not a libpe backend).  Progress on `progress`. */
int nd_eval(pe_ctx *ctx, const nd_config *c, const nd_model *m, const char *scheme,
            const char *backend, nd_grid *g, FILE *progress, char *err, size_t errlen);

/* Log-probabilities at the last position of tokens[B][S] under `scheme`,
 * every layer's attention on `backend` (or "builtin"): one batch of what
 * nd_eval does, for tests and cross-checks. */
int nd_logp_on(pe_ctx *ctx, const nd_config *c, const nd_model *m, const char *scheme,
               const char *backend, const uint32_t *tokens, size_t B, size_t S, float *logp,
               char *err, size_t errlen);

/* ---- reports ------------------------------------------------------------ */
typedef struct nd_report {
  const nd_config *cfg;
  const char *model_dir; /* loaded from, or "" */
  const char *model_note; /* how it was obtained */
  nd_train_stats train;
  bool trained;
  nd_grid *grids;
  size_t n_grids;
  char scheme_text[ND_MAX_SCHEMES][512];
  double ft_seconds[ND_MAX_SCHEMES];
  char agreement[4096]; /* backend agreement summary */
} nd_report;

void nd_report_table(FILE *fp, const nd_report *r);
int nd_report_csv(FILE *fp, const nd_report *r);
int nd_report_json(FILE *fp, const nd_report *r);
/* One heatmap of a grid; the side-by-side comparison of several. */
char *nd_svg_heatmap(const nd_grid *g, double threshold, size_t *len);
char *nd_svg_compare(const nd_grid *const *g, size_t n, double threshold, const char *title,
                     size_t *len);
/* Write `len` bytes to `path` with libpe's pe_write_atomic, as every needle
 * file is written: temp file + rename (a new file 0666 less the umask, a
 * replaced one keeps its mode), a device or pipe in place.  0, or a libpe
 * error with the reason in pe_ctx_error(ctx). */
int nd_write_file(pe_ctx *ctx, const char *path, const char *data, size_t len);

#endif /* PE_NEEDLE_H */
