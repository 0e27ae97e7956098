/* The needle model: a pre-norm decoder-only transformer in float32.
 *   x = tok_emb[token]
 *   per layer: x += Wo attn(enc(Wq n), enc(Wk n), Wv n),  n = rmsnorm(x) g1
 *              x += W2 relu(W1 rmsnorm(x) g2)
 *   logits = lm_head rmsnorm(x) gf
 * The positional scheme lives inside attention (enc, or a bias), as in
 * libpe's backends.  Training runs the model's own attention (attn.c);
 * inference takes the attention as a callback so that it can run through a
 * libpe backend (eval.c). */
#include "needle.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_TENSORS 256

size_t nd_model_tensors(const nd_model *m, nd_tensor_ref *out, size_t cap) {
  const nd_arch *a = &m->a;
  const uint64_t C = a->d_model, HD = (uint64_t)a->heads * a->head_dim, F = a->d_ff;
  size_t n = 0;
#define ADD(nm, ptr, d0, d1, dec)                                                       \
  do {                                                                                  \
    if (n < cap) {                                                                      \
      nd_tensor_ref *t = &out[n];                                                       \
      memset(t, 0, sizeof *t);                                                          \
      snprintf(t->name, sizeof t->name, "%s", nm);                                      \
      t->data = ptr;                                                                    \
      t->ndim = (d1) ? 2 : 1;                                                           \
      t->shape[0] = d0;                                                                 \
      t->shape[1] = d1;                                                                 \
      t->decay = dec;                                                                   \
    }                                                                                   \
    n++;                                                                                \
  } while (0)
  ADD("tok_emb", m->tok_emb, a->vocab, C, false);
  for (uint32_t l = 0; l < a->layers; l++) {
    const nd_layer *L = &m->layer[l];
    char nm[48];
#define LADD(field, d0, d1, dec)                                                        \
  snprintf(nm, sizeof nm, "layers.%u." #field, l);                                      \
  ADD(nm, L->field, d0, d1, dec)
    LADD(attn_norm, C, 0, false);
    LADD(wq, HD, C, true);
    LADD(wk, HD, C, true);
    LADD(wv, HD, C, true);
    LADD(wo, C, HD, true);
    LADD(mlp_norm, C, 0, false);
    LADD(w1, F, C, true);
    LADD(w2, C, F, true);
#undef LADD
  }
  ADD("final_norm", m->final_norm, C, 0, false);
  ADD("lm_head", m->lm_head, a->vocab, C, true);
#undef ADD
  return n;
}

int nd_model_alloc(nd_model *m, const nd_arch *a) {
  memset(m, 0, sizeof *m);
  m->a = *a;
  const size_t C = a->d_model, HD = (size_t)a->heads * a->head_dim, F = a->d_ff, V = a->vocab;
  const size_t per_layer = 2 * C + 4 * HD * C + 2 * F * C;
  m->n_params = V * C + a->layers * per_layer + C + V * C;
  m->params = calloc(m->n_params, sizeof(float));
  m->layer = calloc(a->layers, sizeof *m->layer);
  if (!m->params || !m->layer) return nd_model_free(m), PE_ENOMEM;
  float *p = m->params;
  m->tok_emb = p, p += V * C;
  for (uint32_t l = 0; l < a->layers; l++) {
    nd_layer *L = &m->layer[l];
    L->attn_norm = p, p += C;
    L->wq = p, p += HD * C;
    L->wk = p, p += HD * C;
    L->wv = p, p += HD * C;
    L->wo = p, p += C * HD;
    L->mlp_norm = p, p += C;
    L->w1 = p, p += F * C;
    L->w2 = p, p += C * F;
  }
  m->final_norm = p, p += C;
  m->lm_head = p, p += V * C;
  return 0;
}

void nd_model_free(nd_model *m) {
  free(m->params);
  free(m->layer);
  memset(m, 0, sizeof *m);
}

/* Normal(0, 1/fan_in) matrices (the residual outputs also / sqrt(2 layers)),
 * unit embeddings and gains.  Philox streams per tensor: identical on every
 * machine. */
void nd_model_init(nd_model *m, uint64_t seed) {
  nd_tensor_ref t[MAX_TENSORS];
  size_t n = nd_model_tensors(m, t, MAX_TENSORS);
  for (size_t i = 0; i < n; i++) {
    size_t len = t[i].shape[0] * (t[i].ndim == 2 ? t[i].shape[1] : 1);
    if (t[i].ndim == 1) {
      for (size_t j = 0; j < len; j++) t[i].data[j] = 1.0f;
      continue;
    }
    pe_random_normal(seed, 1000 + i, t[i].data, len);
    double sd = !strcmp(t[i].name, "tok_emb") ? 1.0 : 1.0 / sqrt((double)t[i].shape[1]);
    const char *dot = strrchr(t[i].name, '.');
    if (dot && (!strcmp(dot, ".wo") || !strcmp(dot, ".w2"))) sd /= sqrt(2.0 * m->a.layers);
    for (size_t j = 0; j < len; j++) t[i].data[j] = (float)(t[i].data[j] * sd);
  }
}

int nd_model_copy(nd_model *dst, const nd_model *src) {
  int rc = nd_model_alloc(dst, &src->a);
  if (rc) return rc;
  memcpy(dst->params, src->params, src->n_params * sizeof(float));
  return 0;
}

/* [B][T][H][D] <-> [B][H][T][D] */
static void to_heads(float *dst, const float *src, size_t B, size_t T, size_t H, size_t D) {
#pragma omp parallel for schedule(static) if (B * T * H * D > 65536)
  for (size_t b = 0; b < B; b++)
    for (size_t t = 0; t < T; t++)
      for (size_t h = 0; h < H; h++)
        memcpy(dst + ((b * H + h) * T + t) * D, src + ((b * T + t) * H + h) * D, D * sizeof(float));
}

static void from_heads(float *dst, const float *src, size_t B, size_t T, size_t H, size_t D) {
#pragma omp parallel for schedule(static) if (B * T * H * D > 65536)
  for (size_t b = 0; b < B; b++)
    for (size_t t = 0; t < T; t++)
      for (size_t h = 0; h < H; h++)
        memcpy(dst + ((b * T + t) * H + h) * D, src + ((b * H + h) * T + t) * D, D * sizeof(float));
}

/* ---- training ----------------------------------------------------------- */
/* Activations of one layer.  Rows: N = B*T for everything of a full layer;
 * the last layer keeps N rows up to k/v and B rows (the last position of
 * each sequence) from its queries on. */
typedef struct layer_acts {
  float *x_in, *n1, *rs1, *qe, *ke, *v, *o, *lse, *att, *x_mid, *n2, *rs2, *hpre, *hact;
  float *xq, *n1q; /* last layer: x_in and n1 at the query rows */
} layer_acts;

struct nd_train_ws {
  size_t B, T;
  float *grads;
  layer_acts *la;
  float *xf, *nf, *rsf, *logits, *dlogits;
  /* scratch */
  float *tmpC, *tmpHD, *qh, *kh, *dq, *dk, *dv, *dqr, *dkr, *dvr, *dxa, *dxb, *dn, *dn2,
      *dF, *dF2, *doh, *dxf;
  float *block;
};

nd_train_ws *nd_ws_new(const nd_model *m, size_t B, size_t T) {
  const nd_arch *a = &m->a;
  const size_t N = B * T, C = a->d_model, HD = (size_t)a->heads * a->head_dim, F = a->d_ff;
  const size_t H = a->heads, V = a->vocab;
  nd_train_ws *ws = calloc(1, sizeof *ws);
  if (!ws) return NULL;
  ws->B = B, ws->T = T;
  const size_t per_layer = 6 * N * C + 2 * N + 5 * N * HD + B * H * T + 2 * N * F;
  const size_t scratch = 6 * N * C + 10 * N * HD + 2 * N * F;
  const size_t total = m->n_params + a->layers * per_layer + N * (2 * C + 1 + 2 * V) + scratch;
  ws->block = calloc(total, sizeof(float));
  ws->la = calloc(a->layers, sizeof *ws->la);
  if (!ws->block || !ws->la) return nd_ws_free(ws), NULL;
  float *p = ws->block;
#define TAKE(ptr, n) (ptr = p, p += (n))
  TAKE(ws->grads, m->n_params);
  for (uint32_t l = 0; l < a->layers; l++) {
    layer_acts *A = &ws->la[l];
    TAKE(A->x_in, N * C);
    TAKE(A->n1, N * C);
    TAKE(A->rs1, N);
    TAKE(A->qe, N * HD);
    TAKE(A->ke, N * HD);
    TAKE(A->v, N * HD);
    TAKE(A->o, N * HD);
    TAKE(A->lse, B * H * T);
    TAKE(A->att, N * HD);
    TAKE(A->x_mid, N * C);
    TAKE(A->n2, N * C);
    TAKE(A->rs2, N);
    TAKE(A->hpre, N * F);
    TAKE(A->hact, N * F);
    TAKE(A->xq, N * C);
    TAKE(A->n1q, N * C);
  }
  TAKE(ws->xf, N * C);
  TAKE(ws->nf, N * C);
  TAKE(ws->rsf, N);
  TAKE(ws->logits, N * V);
  TAKE(ws->dlogits, N * V);
  TAKE(ws->tmpC, N * C);
  TAKE(ws->dn2, N * C);
  TAKE(ws->tmpHD, N * HD);
  TAKE(ws->qh, N * HD);
  TAKE(ws->kh, N * HD);
  TAKE(ws->dq, N * HD);
  TAKE(ws->dk, N * HD);
  TAKE(ws->dv, N * HD);
  TAKE(ws->dqr, N * HD);
  TAKE(ws->dkr, N * HD);
  TAKE(ws->dvr, N * HD);
  TAKE(ws->doh, N * HD);
  TAKE(ws->dxa, N * C);
  TAKE(ws->dxb, N * C);
  TAKE(ws->dn, N * C);
  TAKE(ws->dF, N * F);
  TAKE(ws->dF2, N * F);
  TAKE(ws->dxf, N * C);
#undef TAKE
  if ((size_t)(p - ws->block) != total) abort(); /* the sizes above are exact */
  return ws;
}

void nd_ws_free(nd_train_ws *ws) {
  if (!ws) return;
  free(ws->block);
  free(ws->la);
  free(ws);
}

float *nd_ws_grads(nd_train_ws *ws) { return ws->grads; }

static float *grad_of(const nd_model *m, nd_train_ws *ws, const float *param) {
  return ws->grads + (param - m->params);
}

static void add_to(float *y, const float *x, size_t n) {
  for (size_t i = 0; i < n; i++) y[i] += x[i];
}

/* Rows tpos[b*nt + j] of sequence b of x[B*T][C] into out[B*nt][C]. */
static void gather(float *out, const float *x, size_t B, size_t T, size_t nt, const uint32_t *tpos,
                   size_t C) {
  for (size_t b = 0; b < B; b++)
    for (size_t j = 0; j < nt; j++)
      memcpy(out + (b * nt + j) * C, x + (b * T + tpos[b * nt + j]) * C, C * sizeof(float));
}

static void scatter_add(float *x, const float *in, size_t B, size_t T, size_t nt,
                        const uint32_t *tpos, size_t C) {
  for (size_t b = 0; b < B; b++)
    for (size_t j = 0; j < nt; j++) add_to(x + (b * T + tpos[b * nt + j]) * C, in + (b * nt + j) * C, C);
}

double nd_model_step(nd_model *m, nd_train_ws *ws, const nd_pos *pos, const uint32_t *tokens,
                     size_t B, size_t T, size_t nt, const uint32_t *tpos, const uint32_t *targets,
                     bool backward, uint32_t *hits) {
  const nd_arch *a = &m->a;
  const size_t N = B * T, C = a->d_model, H = a->heads, D = a->head_dim, HD = H * D;
  const size_t F = a->d_ff, V = a->vocab, NL = a->layers;
  if (B != ws->B || T > ws->T) abort();
  /* forward */
  for (size_t r = 0; r < N; r++)
    memcpy(ws->la[0].x_in + r * C, m->tok_emb + (size_t)tokens[r] * C, C * sizeof(float));
  for (size_t l = 0; l < NL; l++) {
    const nd_layer *L = &m->layer[l];
    layer_acts *A = &ws->la[l];
    const bool last = l + 1 == NL;
    const size_t Sq = last ? nt : T, R = B * Sq; /* query rows */
    float *xout = last ? ws->xf : ws->la[l + 1].x_in;
    nd_rmsnorm_fwd(A->n1, A->rs1, A->x_in, L->attn_norm, N, C);
    nd_linear_fwd(ws->tmpHD, A->n1, L->wk, N, C, HD);
    to_heads(ws->kh, ws->tmpHD, B, T, H, D);
    nd_linear_fwd(ws->tmpHD, A->n1, L->wv, N, C, HD);
    to_heads(A->v, ws->tmpHD, B, T, H, D);
    const float *xq = A->x_in, *nq = A->n1;
    if (last) {
      gather(A->xq, A->x_in, B, T, nt, tpos, C);
      gather(A->n1q, A->n1, B, T, nt, tpos, C);
      xq = A->xq, nq = A->n1q;
    }
    nd_linear_fwd(ws->tmpHD, nq, L->wq, R, C, HD);
    to_heads(ws->qh, ws->tmpHD, B, Sq, H, D);
    nd_attn_fwd(pos, B, H, Sq, T, D, last ? tpos : NULL, ws->qh, ws->kh, A->v, A->o, A->qe, A->ke, A->lse);
    from_heads(A->att, A->o, B, Sq, H, D);
    nd_linear_fwd(ws->tmpC, A->att, L->wo, R, HD, C);
    for (size_t i = 0; i < R * C; i++) A->x_mid[i] = xq[i] + ws->tmpC[i];
    nd_rmsnorm_fwd(A->n2, A->rs2, A->x_mid, L->mlp_norm, R, C);
    nd_linear_fwd(A->hpre, A->n2, L->w1, R, C, F);
    nd_relu_fwd(A->hact, A->hpre, R * F);
    nd_linear_fwd(ws->tmpC, A->hact, L->w2, R, F, C);
    for (size_t i = 0; i < R * C; i++) xout[i] = A->x_mid[i] + ws->tmpC[i];
  }
  const size_t NT = B * nt;
  nd_rmsnorm_fwd(ws->nf, ws->rsf, ws->xf, m->final_norm, NT, C);
  nd_linear_fwd(ws->logits, ws->nf, m->lm_head, NT, C, V);
  double loss = nd_xent(backward ? ws->dlogits : NULL, ws->logits, targets, NT, V, hits);
  if (!backward) return loss;

  /* backward; dxo holds d loss / d (the current layer's output) */
  memset(ws->grads, 0, m->n_params * sizeof(float));
  nd_linear_bwd(ws->dn, grad_of(m, ws, m->lm_head), ws->dlogits, ws->nf, m->lm_head, NT, C, V, false);
  nd_rmsnorm_bwd(ws->dxf, grad_of(m, ws, m->final_norm), ws->dn, ws->xf, ws->rsf, m->final_norm, NT, C, false);
  float *dxo = ws->dxf, *dxi = ws->dxa;
  for (size_t l = NL; l-- > 0;) {
    const nd_layer *L = &m->layer[l];
    layer_acts *A = &ws->la[l];
    const bool last = l + 1 == NL;
    const size_t Sq = last ? nt : T, R = B * Sq;
    const float *nq = last ? A->n1q : A->n1;
    /* MLP: out = mid + W2 relu(W1 n2), n2 = rmsnorm(mid): dmid = dout + ... */
    float *dmid = ws->dn2;
    memcpy(dmid, dxo, R * C * sizeof(float));
    nd_linear_bwd(ws->dF, grad_of(m, ws, L->w2), dxo, A->hact, L->w2, R, F, C, false);
    nd_relu_bwd(ws->dF2, ws->dF, A->hpre, R * F);
    nd_linear_bwd(ws->dn, grad_of(m, ws, L->w1), ws->dF2, A->n2, L->w1, R, C, F, false);
    nd_rmsnorm_bwd(dmid, grad_of(m, ws, L->mlp_norm), ws->dn, A->x_mid, A->rs2, L->mlp_norm, R, C, true);
    /* attention: mid = x_q + Wo att */
    nd_linear_bwd(ws->tmpHD, grad_of(m, ws, L->wo), dmid, A->att, L->wo, R, HD, C, false);
    to_heads(ws->doh, ws->tmpHD, B, Sq, H, D);
    nd_attn_bwd(pos, B, H, Sq, T, D, last ? tpos : NULL, A->qe, A->ke, A->v, A->o, A->lse, ws->doh, ws->dq, ws->dk, ws->dv);
    from_heads(ws->dqr, ws->dq, B, Sq, H, D);
    from_heads(ws->dkr, ws->dk, B, T, H, D);
    from_heads(ws->dvr, ws->dv, B, T, H, D);
    /* dn1 over all rows from k and v; the query rows add q's part */
    nd_linear_bwd(ws->dn, grad_of(m, ws, L->wk), ws->dkr, A->n1, L->wk, N, C, HD, false);
    nd_linear_bwd(ws->dn, grad_of(m, ws, L->wv), ws->dvr, A->n1, L->wv, N, C, HD, true);
    if (last) {
      nd_linear_bwd(ws->tmpC, grad_of(m, ws, L->wq), ws->dqr, nq, L->wq, R, C, HD, false);
      scatter_add(ws->dn, ws->tmpC, B, T, nt, tpos, C);
    } else {
      nd_linear_bwd(ws->dn, grad_of(m, ws, L->wq), ws->dqr, nq, L->wq, N, C, HD, true);
    }
    /* dx_in = rmsnorm'(dn1) + the residual dmid at the query rows */
    nd_rmsnorm_bwd(dxi, grad_of(m, ws, L->attn_norm), ws->dn, A->x_in, A->rs1, L->attn_norm, N, C, false);
    if (last)
      scatter_add(dxi, dmid, B, T, nt, tpos, C);
    else
      add_to(dxi, dmid, N * C);
    dxo = dxi;
    dxi = dxi == ws->dxa ? ws->dxb : ws->dxa;
  }
  float *demb = grad_of(m, ws, m->tok_emb);
  for (size_t r = 0; r < N; r++) add_to(demb + (size_t)tokens[r] * C, dxo + r * C, C);
  return loss;
}

/* ---- inference ---------------------------------------------------------- */
int nd_model_last_logp(const nd_model *m, const uint32_t *tokens, size_t B, size_t S,
                       nd_attn_fn attn, void *user, float *logp) {
  const nd_arch *a = &m->a;
  const size_t N = B * S, C = a->d_model, H = a->heads, D = a->head_dim, HD = H * D;
  const size_t F = a->d_ff, V = a->vocab;
  float *x = malloc(N * C * sizeof(float)), *n = malloc(N * C * sizeof(float));
  float *r1 = malloc(N * HD * sizeof(float)), *qh = malloc(N * HD * sizeof(float));
  float *kh = malloc(N * HD * sizeof(float)), *vh = malloc(N * HD * sizeof(float));
  float *oh = malloc(N * HD * sizeof(float)), *hb = malloc(N * F * sizeof(float));
  float *hb2 = malloc(N * F * sizeof(float)), *t = malloc(N * (C > HD ? C : HD) * sizeof(float));
  int rc = 0;
  if (!x || !n || !r1 || !qh || !kh || !vh || !oh || !hb || !hb2 || !t) {
    rc = PE_ENOMEM;
    goto out;
  }
  for (size_t r = 0; r < N; r++) memcpy(x + r * C, m->tok_emb + (size_t)tokens[r] * C, C * sizeof(float));
  size_t rows = N; /* rows of x still needed: all, then the B last ones */
  for (uint32_t l = 0; l < a->layers; l++) {
    const nd_layer *L = &m->layer[l];
    const bool last = l + 1 == a->layers;
    nd_rmsnorm_fwd(n, NULL, x, L->attn_norm, N, C);
    nd_linear_fwd(r1, n, L->wk, N, C, HD);
    to_heads(kh, r1, B, S, H, D);
    nd_linear_fwd(r1, n, L->wv, N, C, HD);
    to_heads(vh, r1, B, S, H, D);
    size_t Sq = S;
    if (last) {
      /* Only the last query of each sequence matters from here on. */
      Sq = 1;
      for (size_t b = 0; b < B; b++) {
        memcpy(n + b * C, n + (b * S + S - 1) * C, C * sizeof(float));
        memmove(x + b * C, x + (b * S + S - 1) * C, C * sizeof(float));
      }
      rows = B;
    }
    nd_linear_fwd(r1, n, L->wq, rows, C, HD);
    to_heads(qh, r1, B, Sq, H, D);
    if ((rc = attn(user, l, B, Sq, S, qh, kh, vh, oh))) goto out;
    from_heads(r1, oh, B, Sq, H, D);
    nd_linear_fwd(t, r1, L->wo, rows, HD, C);
    for (size_t i = 0; i < rows * C; i++) x[i] += t[i];
    nd_rmsnorm_fwd(n, NULL, x, L->mlp_norm, rows, C);
    nd_linear_fwd(hb, n, L->w1, rows, C, F);
    nd_relu_fwd(hb2, hb, rows * F);
    nd_linear_fwd(t, hb2, L->w2, rows, F, C);
    for (size_t i = 0; i < rows * C; i++) x[i] += t[i];
  }
  nd_rmsnorm_fwd(n, NULL, x, m->final_norm, B, C);
  nd_linear_fwd(t, n, m->lm_head, B, C, V);
  for (size_t b = 0; b < B; b++) {
    const float *lr = t + b * V;
    double mx = lr[0], z = 0;
    for (size_t j = 1; j < V; j++)
      if (lr[j] > mx) mx = lr[j];
    for (size_t j = 0; j < V; j++) z += exp((double)lr[j] - mx);
    double lz = mx + log(z);
    for (size_t j = 0; j < V; j++) logp[b * V + j] = (float)((double)lr[j] - lz);
  }
out:
  free(x), free(n), free(r1), free(qh), free(kh), free(vh), free(oh), free(hb), free(hb2), free(t);
  return rc;
}

/* ---- save / load -------------------------------------------------------- */
static int mkdir_p(const char *dir) {
  char tmp[4096];
  snprintf(tmp, sizeof tmp, "%s", dir);
  for (char *p = tmp + 1; *p; p++)
    if (*p == '/') {
      *p = '\0';
      if (mkdir(tmp, 0777) && errno != EEXIST) return -1;
      *p = '/';
    }
  if (mkdir(tmp, 0777) && errno != EEXIST) return -1;
  return 0;
}

static void write_train(FILE *fp, const char *sec, const nd_traincfg *t) {
  fprintf(fp, "[%s]\nscheme = %s\nseq_len = %u\nmin_len = %u\ncurriculum = %.17g\nsteps = %u\nbatch = %u\nwarmup = %u\n"
          "distractors = %u\nrepeats = %u\nlr = %.17g\nmin_lr = %.17g\nweight_decay = %.17g\n"
          "grad_clip = %.17g\nseed = %llu\n\n",
          sec, t->scheme, t->seq_len, t->min_len, t->curriculum, t->steps, t->batch, t->warmup, t->distractors, t->repeats, t->lr,
          t->min_lr, t->weight_decay, t->grad_clip, (unsigned long long)t->seed);
}

/* model.ini's content, for pe_write_atomic. */
typedef struct model_ini {
  const nd_model *m;
  const nd_config *c;
  const char *record;
} model_ini;

static int put_model_ini(void *user, FILE *fp) {
  const model_ini *mi = user;
  const nd_model *m = mi->m;
  const nd_config *c = mi->c;
  fprintf(fp, "; A needle model (docs/NEEDLE.md): a tiny transformer trained by pe-needle\n"
          "; on the synthetic needle-in-a-haystack task.  One .npy per tensor (float32,\n"
          "; [out][in] for matrices).  [train] and [scheme.*] say how it was trained;\n"
          "; rerunning that training (same config, seed and steps) reproduces it.\n");
  fprintf(fp, "[model]\nvocab = %u\nd_model = %u\nlayers = %u\nheads = %u\nhead_dim = %u\n"
          "d_ff = %u\n\n", m->a.vocab, m->a.d_model, m->a.layers, m->a.heads, m->a.head_dim,
          m->a.d_ff);
  fprintf(fp, "[task]\nkeys = %u\n\n", c->task.keys);
  write_train(fp, "train", &c->train);
  fprintf(fp, "[scheme.%s]\n%s\n", c->train.scheme, nd_scheme_lines(c, c->train.scheme));
  if (mi->record && mi->record[0]) fprintf(fp, "[record]\n%s", mi->record);
  return ferror(fp) ? 1 : 0;
}

int nd_model_save(pe_ctx *ctx, const nd_model *m, const nd_config *c, const char *dir,
                  const char *record, char *err, size_t errlen) {
  if (mkdir_p(dir)) {
    snprintf(err, errlen, "%s: cannot create the directory: %s", dir, strerror(errno));
    return 1;
  }
  nd_tensor_ref t[MAX_TENSORS];
  size_t n = nd_model_tensors(m, t, MAX_TENSORS);
  char path[4200];
  for (size_t i = 0; i < n; i++) {
    if (snprintf(path, sizeof path, "%s/%s.npy", dir, t[i].name) >= (int)sizeof path)
      return snprintf(err, errlen, "%s: path too long", dir), 1;
    if (pe_npy_write(ctx, path, t[i].data, t[i].ndim, t[i].shape)) {
      snprintf(err, errlen, "%s", pe_ctx_error(ctx));
      return 1;
    }
  }
  snprintf(path, sizeof path, "%s/model.ini", dir);
  model_ini mi = {m, c, record};
  if (pe_write_atomic(ctx, path, put_model_ini, &mi)) {
    snprintf(err, errlen, "%s", pe_ctx_error(ctx));
    return 1;
  }
  return 0;
}

int nd_model_load(pe_ctx *ctx, const char *dir, nd_model *m, nd_config *c, char *err,
                  size_t errlen) {
  char path[4200];
  snprintf(path, sizeof path, "%s/model.ini", dir);
  nd_config_defaults(c);
  int rc = nd_config_load(path, c, err, errlen);
  if (rc) return rc;
  if ((rc = nd_model_alloc(m, &c->arch))) {
    snprintf(err, errlen, "out of memory");
    return 1;
  }
  nd_tensor_ref t[MAX_TENSORS];
  size_t n = nd_model_tensors(m, t, MAX_TENSORS);
  for (size_t i = 0; i < n; i++) {
    if (snprintf(path, sizeof path, "%s/%s.npy", dir, t[i].name) >= (int)sizeof path) {
      snprintf(err, errlen, "%s: path too long", dir);
      nd_model_free(m);
      return 1;
    }
    pe_tensor x;
    if (pe_npy_read(ctx, path, &x)) {
      snprintf(err, errlen, "%s", pe_ctx_error(ctx));
      nd_model_free(m);
      return 1;
    }
    bool ok = x.ndim == t[i].ndim && x.shape[0] == t[i].shape[0] &&
              (t[i].ndim == 1 || x.shape[1] == t[i].shape[1]);
    if (ok) {
      size_t len = t[i].shape[0] * (t[i].ndim == 2 ? t[i].shape[1] : 1);
      memcpy(t[i].data, x.data, len * sizeof(float));
    } else {
      snprintf(err, errlen, "%s: shape does not match model.ini (want %llu x %llu)", path,
               (unsigned long long)t[i].shape[0], (unsigned long long)t[i].shape[1]);
    }
    pe_tensor_free(&x);
    if (!ok) {
      nd_model_free(m);
      return 1;
    }
  }
  return 0;
}
