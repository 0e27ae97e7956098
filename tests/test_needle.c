/* needle (bench/needle): finite-difference gradient checks of every layer's
 * backward pass, the model's attention against the libpe backends, the
 * task generator, deterministic tiny training (the sanity gate), save/load
 * round trip, and identical accuracies on every backend present. */
#include "helpers.h"
#include "needle.h"

#include <dirent.h>
#include <sys/stat.h>
#include <omp.h>
#include <unistd.h>

#define NEEDLE_GOLDEN_HASH 17868565496166263173ull

/* ---- helpers ------------------------------------------------------------ */
static void randn(float *x, size_t n, uint64_t seed, double sd) {
  pe_random_normal(seed, 1, x, n);
  for (size_t i = 0; i < n; i++) x[i] = (float)(x[i] * sd);
}

static double wsum(const float *y, const float *r, size_t n) {
  double s = 0;
  for (size_t i = 0; i < n; i++) s += (double)y[i] * r[i];
  return s;
}

static const char *srcdir(void) {
  const char *d = getenv("PE_TEST_SRCDIR");
  return d && d[0] ? d : ".";
}

/* Numerical vs analytic derivative; float32 central differences. */
#define FD_H 1e-2f
static void check_grad(const char *what, size_t i, double num, double ana) {
  double tol = 2e-3 + 2e-2 * fabs(ana);
  cr_expect_leq(fabs(num - ana), tol, "%s[%zu]: finite difference %.6g, backward %.6g", what, i,
                num, ana);
}

/* A config with the given attention shape and one [scheme.NAME] section. */
static void tiny_cfg(nd_config *c, uint32_t heads, uint32_t head_dim, const char *scheme,
                     const char *lines) {
  nd_config_defaults(c);
  snprintf(c->path, sizeof c->path, "test");
  c->arch.heads = heads;
  c->arch.head_dim = head_dim;
  c->train.seq_len = 16;
  if (scheme) {
    snprintf(c->sec[0].name, sizeof c->sec[0].name, "%s", scheme);
    c->sec[0].text = strdup(lines ? lines : "");
    c->n_sec = 1;
  }
}

static void pos_for(pe_ctx *ctx, nd_config *c, const char *scheme, size_t S, nd_pos *pos) {
  pe_config *wc;
  pe_workload *w;
  char err[2048];
  cr_assert_eq(nd_workload(ctx, c, scheme, 1, S, S, &wc, &w, err, sizeof err), 0, "%s", err);
  cr_assert_eq(nd_pos_init(pos, pe_workload_get_info(w), S), 0);
  pe_workload_free(w);
  pe_config_free(wc);
}

/* ---- layer gradients ---------------------------------------------------- */
Test(needle_grad, linear) {
  const size_t n = 5, k = 7, m = 6;
  float x[35], w[42], y[30], r[30], dx[35], dw[42] = {0};
  randn(x, n * k, 1, 1), randn(w, m * k, 2, 0.5), randn(r, n * m, 3, 1);
  nd_linear_fwd(y, x, w, n, k, m);
  nd_linear_bwd(dx, dw, r, x, w, n, k, m, false);
  for (size_t i = 0; i < n * k; i++) {
    float s = x[i];
    x[i] = s + FD_H, nd_linear_fwd(y, x, w, n, k, m);
    double fp = wsum(y, r, n * m);
    x[i] = s - FD_H, nd_linear_fwd(y, x, w, n, k, m);
    double fm = wsum(y, r, n * m);
    x[i] = s;
    check_grad("linear dx", i, (fp - fm) / (2 * FD_H), dx[i]);
  }
  for (size_t i = 0; i < m * k; i++) {
    float s = w[i];
    w[i] = s + FD_H, nd_linear_fwd(y, x, w, n, k, m);
    double fp = wsum(y, r, n * m);
    w[i] = s - FD_H, nd_linear_fwd(y, x, w, n, k, m);
    double fm = wsum(y, r, n * m);
    w[i] = s;
    check_grad("linear dW", i, (fp - fm) / (2 * FD_H), dw[i]);
  }
}

Test(needle_grad, rmsnorm) {
  const size_t n = 4, c = 9;
  float x[36], g[9], y[36], r[36], rs[4], dx[36], dg[9] = {0};
  randn(x, n * c, 4, 1), randn(g, c, 5, 1), randn(r, n * c, 6, 1);
  nd_rmsnorm_fwd(y, rs, x, g, n, c);
  nd_rmsnorm_bwd(dx, dg, r, x, rs, g, n, c, false);
  for (size_t i = 0; i < n * c; i++) {
    float s = x[i];
    x[i] = s + FD_H, nd_rmsnorm_fwd(y, rs, x, g, n, c);
    double fp = wsum(y, r, n * c);
    x[i] = s - FD_H, nd_rmsnorm_fwd(y, rs, x, g, n, c);
    double fm = wsum(y, r, n * c);
    x[i] = s;
    check_grad("rmsnorm dx", i, (fp - fm) / (2 * FD_H), dx[i]);
  }
  for (size_t i = 0; i < c; i++) {
    float s = g[i];
    g[i] = s + FD_H, nd_rmsnorm_fwd(y, rs, x, g, n, c);
    double fp = wsum(y, r, n * c);
    g[i] = s - FD_H, nd_rmsnorm_fwd(y, rs, x, g, n, c);
    double fm = wsum(y, r, n * c);
    g[i] = s;
    check_grad("rmsnorm dg", i, (fp - fm) / (2 * FD_H), dg[i]);
  }
}

Test(needle_grad, relu) {
  const size_t n = 40;
  float x[40], y[40], r[40], dx[40];
  randn(x, n, 7, 2), randn(r, n, 8, 1);
  nd_relu_bwd(dx, r, x, n);
  for (size_t i = 0; i < n; i++) {
    if (fabsf(x[i]) < 2 * FD_H) continue; /* the kink */
    float s = x[i];
    x[i] = s + FD_H, nd_relu_fwd(y, x, n);
    double fp = wsum(y, r, n);
    x[i] = s - FD_H, nd_relu_fwd(y, x, n);
    double fm = wsum(y, r, n);
    x[i] = s;
    check_grad("relu dx", i, (fp - fm) / (2 * FD_H), dx[i]);
  }
}

Test(needle_grad, cross_entropy) {
  const size_t n = 3, v = 11;
  float l[33], dl[33];
  uint32_t t[3] = {0, 5, 10};
  randn(l, n * v, 9, 2);
  nd_xent(dl, l, t, n, v, NULL);
  for (size_t i = 0; i < n * v; i++) {
    float s = l[i];
    l[i] = s + FD_H;
    double fp = nd_xent(NULL, l, t, n, v, NULL);
    l[i] = s - FD_H;
    double fm = nd_xent(NULL, l, t, n, v, NULL);
    l[i] = s;
    check_grad("xent dlogits", i, (fp - fm) / (2 * FD_H), dl[i]);
  }
}

/* Attention: q, k, v gradients under each encoding kind. */
static void attn_grad(const char *scheme, const char *lines) {
  pe_ctx *ctx = pe_test_ctx();
  const size_t B = 2, H = 2, S = 7, D = 8, n = B * H * S * D;
  nd_config c;
  tiny_cfg(&c, H, D, scheme, lines);
  nd_pos pos;
  pos_for(ctx, &c, scheme, S, &pos);
  float *q = malloc(n * 4), *k = malloc(n * 4), *v = malloc(n * 4), *o = malloc(n * 4);
  float *r = malloc(n * 4), *qe = malloc(n * 4), *ke = malloc(n * 4), *lse = malloc(B * H * S * 4);
  float *dq = malloc(n * 4), *dk = malloc(n * 4), *dv = malloc(n * 4);
  randn(q, n, 11, 1), randn(k, n, 12, 1), randn(v, n, 13, 1), randn(r, n, 14, 1);
  nd_attn_fwd(&pos, B, H, S, S, D, NULL, q, k, v, o, qe, ke, lse);
  nd_attn_bwd(&pos, B, H, S, S, D, NULL, qe, ke, v, o, lse, r, dq, dk, dv);
  float *in[3] = {q, k, v}, *gr[3] = {dq, dk, dv};
  const char *nm[3] = {"dq", "dk", "dv"};
  for (int t = 0; t < 3; t++)
    for (size_t i = 0; i < n; i += 3) { /* every third element keeps it quick */
      float s = in[t][i];
      in[t][i] = s + FD_H;
      nd_attn_fwd(&pos, B, H, S, S, D, NULL, q, k, v, o, NULL, NULL, NULL);
      double fp = wsum(o, r, n);
      in[t][i] = s - FD_H;
      nd_attn_fwd(&pos, B, H, S, S, D, NULL, q, k, v, o, NULL, NULL, NULL);
      double fm = wsum(o, r, n);
      in[t][i] = s;
      char what[96];
      snprintf(what, sizeof what, "attention (%s) %s", scheme, nm[t]);
      check_grad(what, i, (fp - fm) / (2 * FD_H), gr[t][i]);
    }
  free(q), free(k), free(v), free(o), free(r), free(qe), free(ke), free(lse), free(dq), free(dk), free(dv);
  nd_pos_free(&pos);
  nd_config_free(&c);
  pe_ctx_free(ctx);
}

Test(needle_grad, attention_rope) { attn_grad("rope", "base = 100\n"); }
Test(needle_grad, attention_rope_interleaved_partial) {
  attn_grad("rope", "base = 100\nrotary_dim = 4\npairing = interleaved\n");
}
Test(needle_grad, attention_yarn_factor) { attn_grad("yarn", "factor = 4\nbase = 100\n"); }
Test(needle_grad, attention_sinusoidal) { attn_grad("sinusoidal", "base = 100\n"); }
Test(needle_grad, attention_alibi) { attn_grad("alibi", ""); }
Test(needle_grad, attention_none) { attn_grad("none", ""); }

/* The whole model: embedding, every layer's tensors, final norm, head. */
/* A smaller step than FD_H: ReLU kinks are less likely to fall inside it
 * (the loss is a scalar of order 1, so float32 rounding still allows it). */
#define MODEL_H 1e-3f
Test(needle_grad, model) {
  pe_ctx *ctx = pe_test_ctx();
  nd_config c;
  tiny_cfg(&c, 2, 4, "rope", "base = 100\n");
  c.arch = (nd_arch){.vocab = 12, .d_model = 6, .layers = 2, .heads = 2, .head_dim = 4, .d_ff = 10};
  c.task = (nd_taskcfg){.keys = 3};
  const size_t B = 2, T = 8;
  nd_pos pos;
  pos_for(ctx, &c, "rope", T, &pos);
  nd_model m;
  cr_assert_eq(nd_model_alloc(&m, &c.arch), 0);
  nd_model_init(&m, 3);
  nd_train_ws *ws = nd_ws_new(&m, B, T);
  uint32_t tok[16];
  for (size_t i = 0; i < B * T; i++) tok[i] = (uint32_t)((i * 7 + 3) % c.arch.vocab);
  uint32_t tg[4] = {4, 11, 2, 9}, tp[4] = {3, 7, 5, 7}; /* two targets per sequence */
  nd_model_step(&m, ws, &pos, tok, B, T, 2, tp, tg, true, NULL);
  const float *g = nd_ws_grads(ws);
  float *ana = malloc(m.n_params * sizeof(float));
  memcpy(ana, g, m.n_params * sizeof(float));
  nd_tensor_ref t[64];
  size_t nt = nd_model_tensors(&m, t, 64);
  cr_assert_eq(nt, 19, "tensor count %zu", nt);
  for (size_t ti = 0; ti < nt; ti++) {
    size_t len = t[ti].shape[0] * (t[ti].ndim == 2 ? t[ti].shape[1] : 1);
    size_t step = len > 12 ? len / 12 : 1;
    for (size_t j = 0; j < len; j += step) {
      float *p = &t[ti].data[j];
      float s = *p;
      *p = s + MODEL_H;
      double fp = nd_model_step(&m, ws, &pos, tok, B, T, 2, tp, tg, false, NULL);
      *p = s - MODEL_H;
      double fm = nd_model_step(&m, ws, &pos, tok, B, T, 2, tp, tg, false, NULL);
      *p = s;
      check_grad(t[ti].name, j, (fp - fm) / (2 * MODEL_H), ana[p - m.params]);
    }
  }
  free(ana);
  nd_ws_free(ws);
  nd_model_free(&m);
  nd_pos_free(&pos);
  nd_config_free(&c);
  pe_ctx_free(ctx);
}

/* ---- the model's attention vs the backends ------------------------------ */
typedef struct backend_list {
  char name[8][64];
  int n;
} backend_list;

static void visit(void *user, const char *path, const pe_plugin *p, int status, const char *error) {
  (void)path, (void)status, (void)error;
  backend_list *l = user;
  if (p && pe_plugin_descriptor(p)->kind == PE_PLUGIN_BACKEND && l->n < 8)
    snprintf(l->name[l->n++], 64, "%s", pe_plugin_descriptor(p)->name);
}

static backend_list backends_present(void) {
  backend_list l = {.n = 0};
  pe_ctx *ctx = pe_test_ctx();
  pe_plugin_scan(ctx, visit, &l);
  pe_ctx_free(ctx);
  return l;
}

/* True when the backend has no device here (then it is skipped). */
static bool no_device(pe_ctx *ctx, const char *backend) {
  const pe_plugin *p;
  if (pe_plugin_load(ctx, backend, PE_PLUGIN_BACKEND, &p)) return true;
  const char *e = pe_ctx_error(ctx);
  return e && (strstr(e, "no device") || strstr(e, "No device"));
}

static void attn_vs_backends(const char *scheme, const char *lines) {
  backend_list bl = backends_present();
  pe_ctx *ctx = pe_test_ctx();
  const size_t B = 2, H = 2, S = 40, D = 16, n = B * H * S * D;
  nd_config c;
  tiny_cfg(&c, H, D, scheme, lines);
  pe_config *wc;
  pe_workload *w;
  char err[2048];
  cr_assert_eq(nd_workload(ctx, &c, scheme, B, S, S, &wc, &w, err, sizeof err), 0, "%s", err);
  nd_pos pos;
  cr_assert_eq(nd_pos_init(&pos, pe_workload_get_info(w), S), 0);
  float *q = malloc(n * 4), *k = malloc(n * 4), *v = malloc(n * 4), *o = malloc(n * 4), *ob = malloc(n * 4);
  randn(q, n, 21, 1), randn(k, n, 22, 1), randn(v, n, 23, 1);
  nd_attn_fwd(&pos, B, H, S, S, D, NULL, q, k, v, o, NULL, NULL, NULL);
  cr_assert_eq(pe_workload_set_inputs(ctx, w, q, k, v), 0);
  int ran = 0;
  for (int b = 0; b < bl.n; b++) {
    pe_runner *r;
    if (pe_runner_open(ctx, wc, bl.name[b], &r)) {
      cr_log_warn("%s: %s (skipped)", bl.name[b], pe_ctx_error(ctx));
      continue;
    }
    cr_assert_eq(pe_runner_run(r, w, ob, NULL), 0, "%s: %s", bl.name[b], pe_ctx_error(ctx));
    double worst = 0;
    for (size_t i = 0; i < n; i++) worst = fmax(worst, fabs((double)o[i] - ob[i]));
    cr_expect_leq(worst, 2e-5, "%s on %s: model attention vs backend max |diff| %.3g", scheme,
                  bl.name[b], worst);
    pe_runner_close(r);
    ran++;
  }
  cr_expect_geq(ran, 1, "no backend ran");
  free(q), free(k), free(v), free(o), free(ob);
  nd_pos_free(&pos);
  pe_workload_free(w);
  pe_config_free(wc);
  nd_config_free(&c);
  pe_ctx_free(ctx);
}

Test(needle_attn, rope_matches_backends) { attn_vs_backends("rope", "base = 10000\n"); }
Test(needle_attn, yarn_matches_backends) { attn_vs_backends("yarn", "factor = 4\n"); }
Test(needle_attn, dynamic_ntk_matches_backends) { attn_vs_backends("dynamic-ntk", "factor = 4\n"); }
Test(needle_attn, sinusoidal_matches_backends) { attn_vs_backends("sinusoidal", ""); }
Test(needle_attn, alibi_matches_backends) { attn_vs_backends("alibi", ""); }
Test(needle_attn, none_matches_backends) { attn_vs_backends("none", ""); }

/* ---- the task ----------------------------------------------------------- */
Test(needle_task, sequences) {
  nd_taskcfg t = {.keys = 8};
  uint32_t tok[64], tok2[64], p;
  for (uint32_t dist = 0; dist <= 3; dist++)
    for (int d = 0; d <= 10; d++) {
      nd_rng r;
      nd_rng_seed(&r, 5, 64, (uint64_t)d, dist);
      uint32_t ans = nd_make_sequence(&t, 32, 64, d / 10.0, dist, &r, tok, &p);
      cr_assert_eq(tok[0], ND_BOS);
      cr_assert_eq(p, 1 + (uint32_t)floor(d / 10.0 * 60 + 0.5));
      cr_assert_eq(tok[p], tok[63], "the query repeats the needle's key");
      cr_assert_eq(tok[p + 1], ans);
      cr_assert(ans >= 9 && ans < 32, "answer %u is a filler token", ans);
      uint32_t keys = 0;
      for (uint32_t i = 1; i < 63; i++) {
        cr_assert_neq(tok[i], ND_BOS);
        keys += tok[i] >= 1 && tok[i] <= 8;
        if (tok[i] >= 1 && tok[i] <= 8) {
          cr_assert(tok[i + 1] >= 9, "a key is followed by its value (a filler token)");
          cr_assert(i == p || tok[i] != tok[63], "distractor keys differ from the needle's");
        }
      }
      cr_assert_eq(keys, 1 + dist, "%u keys in the haystack, want %u", keys, 1 + dist);
      nd_rng_seed(&r, 5, 64, (uint64_t)d, dist);
      nd_make_sequence(&t, 32, 64, d / 10.0, dist, &r, tok2, NULL);
      cr_assert_arr_eq(tok, tok2, sizeof tok, "seeded: the same sequence again");
    }
  /* Golden: the generator is integer-only, so this holds on every machine. */
  nd_rng r;
  nd_rng_seed(&r, 7, 128, 500, 0);
  uint32_t g[16];
  nd_make_sequence(&t, 32, 16, 0.5, 1, &r, g, NULL);
  uint64_t h = 0;
  for (int i = 0; i < 16; i++) h = h * 31 + g[i];
  cr_expect_eq(h, NEEDLE_GOLDEN_HASH, "golden sequence hash %llu", (unsigned long long)h);
}

Test(needle_task, wilson_and_effective_length) {
  double lo, hi;
  nd_wilson(0, 0, &lo, &hi);
  cr_expect(lo == 0 && hi == 1);
  /* Reference values: Wilson 1927 / statsmodels proportion_confint(method="wilson"). */
  nd_wilson(95, 100, &lo, &hi);
  cr_expect(fabs(lo - 0.88825) < 1e-4 && fabs(hi - 0.97846) < 1e-4, "95/100: [%.5f, %.5f]", lo, hi);
  nd_wilson(0, 100, &lo, &hi);
  cr_expect(lo == 0 && fabs(hi - 0.0369935) < 1e-6, "0/100: [%.5f, %.5f]", lo, hi);
  nd_wilson(100, 100, &lo, &hi);
  cr_expect(fabs(lo - 0.9630065) < 1e-6 && hi == 1, "100/100: [%.5f, %.5f]", lo, hi);
  nd_grid g = {.n_lengths = 4, .n_depths = 2, .lengths = {128, 256, 512, 1024}, .L_train = 128};
  const uint32_t ok[4][2] = {{100, 100}, {90, 80}, {70, 100}, {100, 100}};
  for (int l = 0; l < 4; l++)
    for (int d = 0; d < 2; d++) g.cell[l][d] = (nd_cell){.trials = 100, .correct = ok[l][d]};
  /* pooled: 100%, 85%, 85%, 100% -> 1024 */
  cr_expect_eq(nd_effective_length(&g, 0.8), 1024);
  g.cell[2][0].correct = 50; /* 75% at 512: stops at 256 even though 1024 passes */
  cr_expect_eq(nd_effective_length(&g, 0.8), 256);
  g.cell[0][0].correct = 0;
  cr_expect_eq(nd_effective_length(&g, 0.8), 0);
}

/* ---- tiny training: the sanity gate, determinism, save/load -------------- */
static void load_tiny(nd_config *c) {
  char path[4096], err[2048];
  snprintf(path, sizeof path, "%s/configs/needle/tiny.ini", srcdir());
  nd_config_defaults(c);
  cr_assert_eq(nd_config_load(path, c, err, sizeof err), 0, "%s", err);
}

#define TINY_LOSS_MAX 0.3 /* mean loss over the last 10% of steps */

static void train_tiny(pe_ctx *ctx, nd_config *c, nd_model *m, nd_train_stats *st) {
  char err[2048];
  cr_assert_eq(nd_model_alloc(m, &c->arch), 0);
  nd_model_init(m, c->train.seed);
  cr_assert_eq(nd_train(ctx, c, &c->train, m, NULL, "train", st, err, sizeof err), 0, "%s", err);
}

Test(needle_train, tiny_sanity_gate_and_determinism, .timeout = 300) {
  pe_ctx *ctx = pe_test_ctx();
  nd_config c;
  load_tiny(&c);
  nd_model a;
  nd_train_stats sa;
  omp_set_num_threads(1);
  train_tiny(ctx, &c, &a, &sa);
  cr_log_info("tiny: %u steps in %.2f s (%.0f tokens/s), final loss %.4f", c.train.steps,
              sa.seconds, sa.tokens_per_s, sa.final_loss);
  cr_expect_lt(sa.final_loss, TINY_LOSS_MAX, "tiny final loss %.4f >= %.2f", sa.final_loss, TINY_LOSS_MAX);
  /* >= 95% at L_train (the sanity gate), through the builtin attention */
  c.eval.n_lengths = 1;
  c.eval.lengths[0] = 1;
  c.eval.trials = 100;
  nd_grid g;
  char err[2048];
  cr_assert_eq(nd_eval(ctx, &c, &a, "rope", "builtin", &g, NULL, err, sizeof err), 0, "%s", err);
  double acc = nd_length_accuracy(&g, 0);
  cr_expect_geq(acc, 0.95, "tiny model accuracy at L_train %.3f < 0.95", acc);
  /* Same seed, another thread count: bit-identical weights (a shorter run
   * of the same config, on 1 and on 2 threads). */
  {
    nd_config s = c;
    s.train.steps = 150;
    nd_model x, y;
    nd_train_stats sx, sy;
    omp_set_num_threads(1);
    train_tiny(ctx, &s, &x, &sx);
    omp_set_num_threads(2);
    train_tiny(ctx, &s, &y, &sy);
    cr_expect_eq(memcmp(x.params, y.params, x.n_params * sizeof(float)), 0,
                 "weights differ between 1 and 2 threads");
    cr_expect_eq(sx.final_loss, sy.final_loss);
    nd_model_free(&x);
    nd_model_free(&y);
    s.n_sec = 0; /* shares c's sections */
  }
  /* Save / load round trip. */
  char dir[] = "/tmp/pe-needle-test-XXXXXX";
  cr_assert_not_null(mkdtemp(dir));
  cr_assert_eq(nd_model_save(ctx, &a, &c, dir, "note = test\n", err, sizeof err), 0, "%s", err);
  nd_model l;
  nd_config lc;
  cr_assert_eq(nd_model_load(ctx, dir, &l, &lc, err, sizeof err), 0, "%s", err);
  cr_expect_eq(l.n_params, a.n_params);
  cr_expect_eq(memcmp(l.params, a.params, a.n_params * sizeof(float)), 0, "weights changed");
  cr_expect_eq(memcmp(&lc.arch, &c.arch, sizeof c.arch), 0);
  cr_expect_eq(lc.train.seq_len, c.train.seq_len);
  cr_expect_eq(lc.train.seed, c.train.seed);
  cr_expect_eq(lc.train.lr, c.train.lr, "lr survives the round trip exactly");
  cr_expect_str_eq(lc.train.scheme, "rope");
  cr_expect_str_eq(nd_scheme_lines(&lc, "rope"), nd_scheme_lines(&c, "rope"));
  cr_expect(strstr(lc.record, "note = test") != NULL);
  nd_grid g2;
  cr_assert_eq(nd_eval(ctx, &c, &l, "rope", "builtin", &g2, NULL, err, sizeof err), 0, "%s", err);
  cr_expect_eq(g2.cell[0][0].correct, g.cell[0][0].correct);
  cr_expect_eq(g2.cell[0][0].logp_sum, g.cell[0][0].logp_sum, "identical log-probs after load");
  /* clean up */
  DIR *dp = opendir(dir);
  for (struct dirent *e; dp && (e = readdir(dp));)
    if (e->d_name[0] != '.') {
      char p[4200];
      snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
      unlink(p);
    }
  if (dp) closedir(dp);
  rmdir(dir);
  nd_model_free(&l);
  nd_config_free(&lc);
  nd_model_free(&a);
  nd_config_free(&c);
  pe_ctx_free(ctx);
}

/* ---- the shipped model on every backend --------------------------------- */
static void load_shipped(pe_ctx *ctx, nd_config *c, nd_model *m) {
  char dir[4096], err[2048];
  snprintf(dir, sizeof dir, "%s/configs/models/needle-rope", srcdir());
  cr_assert_eq(nd_model_load(ctx, dir, m, c, err, sizeof err), 0, "%s", err);
}

/* Training forward (loss at the last row) == inference forward. */
Test(needle_model, training_and_inference_forward_agree) {
  pe_ctx *ctx = pe_test_ctx();
  nd_config c;
  nd_model m;
  load_shipped(ctx, &c, &m);
  const size_t B = 3, T = c.train.seq_len, V = c.arch.vocab;
  uint32_t *tok = malloc(B * T * 4), tg[3], tp[3];
  for (size_t b = 0; b < B; b++) {
    nd_rng r;
    nd_rng_seed(&r, 1, 2, 3, b);
    tg[b] = nd_make_sequence(&c.task, (uint32_t)V, (uint32_t)T, 0.3 * b, 0, &r, tok + b * T, NULL);
    tp[b] = (uint32_t)T - 1;
  }
  nd_pos pos;
  pos_for(ctx, &c, "rope", T, &pos);
  nd_train_ws *ws = nd_ws_new(&m, B, T);
  double loss = nd_model_step(&m, ws, &pos, tok, B, T, 1, tp, tg, false, NULL);
  float *lp = malloc(B * V * 4);
  char err[2048];
  cr_assert_eq(nd_logp_on(ctx, &c, &m, "rope", "builtin", tok, B, T, lp, err, sizeof err), 0, "%s", err);
  double l2 = 0;
  for (size_t b = 0; b < B; b++) l2 -= lp[b * V + tg[b]];
  l2 /= B;
  cr_expect_leq(fabs(loss - l2), 1e-4, "training forward %.6f vs inference %.6f", loss, l2);
  free(tok), free(lp);
  nd_ws_free(ws);
  nd_pos_free(&pos);
  nd_model_free(&m);
  nd_config_free(&c);
  pe_ctx_free(ctx);
}

/* Log-probs through every backend present match the builtin attention, and
 * a small grid gives identical accuracies everywhere. */
Test(needle_model, every_backend_same_accuracies, .timeout = 600) {
  backend_list bl = backends_present();
  pe_ctx *ctx = pe_test_ctx();
  nd_config c;
  nd_model m;
  load_shipped(ctx, &c, &m);
  c.eval.n_lengths = 2, c.eval.lengths[0] = 1, c.eval.lengths[1] = 2;
  c.eval.n_depths = 3, c.eval.depths[0] = 0, c.eval.depths[1] = 50, c.eval.depths[2] = 100;
  c.eval.trials = 12;
  c.eval.batch_tokens = 2048;
  const char *schemes[] = {"rope", "yarn"};
  if (!nd_scheme_lines(&c, "yarn")[0] && c.n_sec < ND_MAX_SCHEMES) {
    snprintf(c.sec[c.n_sec].name, 64, "yarn");
    c.sec[c.n_sec++].text = strdup("factor = 4\n");
  }
  char err[2048];
  for (int s = 0; s < 2; s++) {
    nd_grid ref;
    cr_assert_eq(nd_eval(ctx, &c, &m, schemes[s], "builtin", &ref, NULL, err, sizeof err), 0, "%s", err);
    cr_expect_geq(nd_length_accuracy(&ref, 0), s == 0 ? 0.95 : 0.0, "shipped model at L_train");
    int ran = 0;
    for (int b = 0; b < bl.n; b++) {
      if (no_device(ctx, bl.name[b])) continue;
      nd_grid g;
      int rc = nd_eval(ctx, &c, &m, schemes[s], bl.name[b], &g, NULL, err, sizeof err);
      if (rc && (strstr(err, "no device") || strstr(err, "No device"))) {
        cr_log_warn("%s: %s (skipped)", bl.name[b], err);
        continue;
      }
      cr_assert_eq(rc, 0, "%s: %s", bl.name[b], err);
      ran++;
      for (uint32_t l = 0; l < g.n_lengths; l++)
        for (uint32_t d = 0; d < g.n_depths; d++) {
          cr_expect_eq(g.cell[l][d].correct, ref.cell[l][d].correct,
                       "%s on %s: length %u depth %g%%: %u correct, builtin %u", schemes[s],
                       bl.name[b], g.lengths[l], g.depths[d], g.cell[l][d].correct,
                       ref.cell[l][d].correct);
          double dl = fabs(g.cell[l][d].logp_sum - ref.cell[l][d].logp_sum) / g.cell[l][d].trials;
          cr_expect_leq(dl, 1e-3, "%s on %s: mean logprob differs by %.3g", schemes[s], bl.name[b], dl);
        }
    }
    cr_expect_geq(ran, 1, "no backend ran");
  }
  nd_model_free(&m);
  nd_config_free(&c);
  pe_ctx_free(ctx);
}

/* ---- file modes ----------------------------------------------------------- */
static mode_t mode_of(const char *dir, const char *name) {
  char path[4200];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  struct stat st;
  cr_assert_eq(stat(path, &st), 0, "%s", path);
  return st.st_mode & 07777;
}

static void chmod_in(const char *dir, const char *name, mode_t mode) {
  char path[4200];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  cr_assert_eq(chmod(path, mode), 0, "%s", path);
}

static size_t files_in(const char *dir) {
  size_t n = 0;
  DIR *dp = opendir(dir);
  for (struct dirent *e; dp && (e = readdir(dp));) n += e->d_name[0] != '.';
  if (dp) closedir(dp);
  return n;
}

/* `needle CONFIG --replot CSV --out-dir DIR/out -o DIR/report.txt -q`: no
 * training or evaluation, every report and figure writer. */
static int replot_into(const char *dir) {
  char cfg[4096], csv[4096], out[4200], rep[4200];
  snprintf(cfg, sizeof cfg, "%s/configs/needle/default.ini", srcdir());
  snprintf(csv, sizeof csv, "%s/configs/models/needle-rope/eval/needle.csv", srcdir());
  snprintf(out, sizeof out, "%s/out", dir);
  snprintf(rep, sizeof rep, "%s/report.txt", dir);
  char *argv[] = {"needle", cfg, "--replot", csv, "--out-dir", out, "-o", rep, "-q", NULL};
  return pe_needle_main(9, argv);
}

/* Like the rest of libpe (pe_write_atomic): a new file gets 0666 less the
 * umask, a replaced one keeps its mode (fopen + rename gave the umask's). */
Test(needle_files, new_files_follow_umask_replaced_keep_their_mode) {
  char dir[] = "/tmp/pe-needle-modes-XXXXXX", out[4200];
  cr_assert_not_null(mkdtemp(dir));
  snprintf(out, sizeof out, "%s/out", dir);
  umask(022);
  cr_assert_eq(replot_into(dir), 0);
  const char *const outs[] = {"needle.csv", "needle.json", "heatmap-rope.svg", "compare.svg"};
  cr_expect_eq(mode_of(dir, "report.txt"), 0644);
  for (int i = 0; i < 4; i++) cr_expect_eq(mode_of(out, outs[i]), 0644, "%s", outs[i]);
  size_t n = files_in(out);
  chmod_in(dir, "report.txt", 0600);
  for (int i = 0; i < 4; i++) chmod_in(out, outs[i], i % 2 ? 0640 : 0600);
  cr_assert_eq(replot_into(dir), 0);
  cr_expect_eq(mode_of(dir, "report.txt"), 0600, "report.txt: the replaced file's mode");
  for (int i = 0; i < 4; i++) {
    mode_t want = i % 2 ? 0640 : 0600;
    cr_expect_eq(mode_of(out, outs[i]), want, "%s: the replaced file's mode", outs[i]);
  }
  cr_expect_eq(files_in(out), n, "temporary files left behind");
  cr_expect_eq(files_in(dir), 2);
  /* model.ini (the tensors are pe_npy_write's, atomic already) */
  pe_ctx *ctx = pe_test_ctx();
  nd_config c;
  load_tiny(&c);
  nd_model m;
  cr_assert_eq(nd_model_alloc(&m, &c.arch), 0);
  nd_model_init(&m, c.train.seed);
  char err[2048], model[4200];
  snprintf(model, sizeof model, "%s/model", dir);
  cr_assert_eq(nd_model_save(ctx, &m, &c, model, "", err, sizeof err), 0, "%s", err);
  cr_expect_eq(mode_of(model, "model.ini"), 0644);
  chmod_in(model, "model.ini", 0640);
  n = files_in(model);
  cr_assert_eq(nd_model_save(ctx, &m, &c, model, "", err, sizeof err), 0, "%s", err);
  cr_expect_eq(mode_of(model, "model.ini"), 0640, "model.ini: the replaced file's mode");
  cr_expect_eq(files_in(model), n);
  nd_model_free(&m), nd_config_free(&c), pe_ctx_free(ctx);
  snprintf(model, sizeof model, "rm -rf '%s'", dir);
  cr_expect_eq(system(model), 0);
}

/* ---- config errors ------------------------------------------------------ */
Test(needle_cfg, errors_name_file_line_and_key) {
  char path[] = "/tmp/pe-needle-cfg-XXXXXX";
  int fd = mkstemp(path);
  cr_assert_geq(fd, 0);
  const char *text = "[model]\nd_model = 32\n[train]\nstepz = 3\n";
  cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
  close(fd);
  nd_config c;
  nd_config_defaults(&c);
  char err[2048] = "";
  cr_expect_eq(nd_config_load(path, &c, err, sizeof err), 2);
  cr_expect(strstr(err, ":4: [train] stepz = 3: unknown key") != NULL, "%s", err);
  nd_config_free(&c);
  unlink(path);
}
