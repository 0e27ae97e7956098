/* float32 layers of the needle model with their hand-written backward
 * passes.  Each output element is written by exactly one thread and summed
 * in a fixed order, so results do not depend on the thread count. */
#include "needle.h"
#include "simd.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define PAR_MIN 32768 /* multiply-adds below which a loop stays serial */

/* Unaligned 8-float load/store (macros: a function returning a 32-byte
 * vector would change the baseline clone's ABI). */
#define ld8(p) __extension__({ nd_v8 v_; memcpy(&v_, (p), sizeof v_); v_; })
#define st8(p, v) __extension__({ nd_v8 w_ = (v); memcpy((p), &w_, sizeof w_); })

/* C[r0..r1)[N] (+)= A[R][K] B[K][N], rows r0..r1 of C: 4 x 16 register
 * tiles, the reduction over k in order (so every thread count gives the
 * same bits). */
ND_HOT static void gemm_rows(float *C, const float *A, const float *B, size_t r0, size_t r1,
                             size_t K, size_t N, bool acc) {
  size_t r = r0;
  for (; r + 4 <= r1; r += 4) {
    size_t c = 0;
    for (; c + 16 <= N; c += 16) {
      nd_v8 a[4][2];
      for (int i = 0; i < 4; i++)
        for (int j = 0; j < 2; j++)
          a[i][j] = acc ? ld8(C + (r + i) * N + c + 8 * j) : (nd_v8){0};
      const float *a0 = A + r * K, *a1 = a0 + K, *a2 = a1 + K, *a3 = a2 + K;
      for (size_t k = 0; k < K; k++) {
        const nd_v8 b0 = ld8(B + k * N + c), b1 = ld8(B + k * N + c + 8);
        a[0][0] += a0[k] * b0, a[0][1] += a0[k] * b1;
        a[1][0] += a1[k] * b0, a[1][1] += a1[k] * b1;
        a[2][0] += a2[k] * b0, a[2][1] += a2[k] * b1;
        a[3][0] += a3[k] * b0, a[3][1] += a3[k] * b1;
      }
      for (int i = 0; i < 4; i++)
        for (int j = 0; j < 2; j++) st8(C + (r + i) * N + c + 8 * j, a[i][j]);
    }
    for (; c < N; c++)
      for (size_t i = r; i < r + 4; i++) {
        float s = acc ? C[i * N + c] : 0.0f;
        for (size_t k = 0; k < K; k++) s += A[i * K + k] * B[k * N + c];
        C[i * N + c] = s;
      }
  }
  for (; r < r1; r++) {
    float *cr = C + r * N;
    if (!acc) memset(cr, 0, N * sizeof *cr);
    for (size_t k = 0; k < K; k++) {
      const float a = A[r * K + k];
      const float *b = B + k * N;
      for (size_t c = 0; c < N; c++) cr[c] += a * b[c];
    }
  }
}

/* C[R][N] (+)= A[R][K] B[K][N], row-major; threads split the rows of C. */
static void gemm(float *C, const float *A, const float *B, size_t R, size_t K, size_t N, bool acc) {
  const size_t blocks = (R + 3) / 4;
#pragma omp parallel for schedule(static) if (R * K * N > PAR_MIN)
  for (size_t b = 0; b < blocks; b++)
    gemm_rows(C, A, B, 4 * b, 4 * b + 4 < R ? 4 * b + 4 : R, K, N, acc);
}

static float *transpose(const float *x, size_t rows, size_t cols) {
  float *t = malloc(rows * cols * sizeof *t + 1);
  if (!t) abort();
  for (size_t i = 0; i < rows; i++)
    for (size_t j = 0; j < cols; j++) t[j * rows + i] = x[i * cols + j];
  return t;
}

/* y[N][M] = x[N][K] W[M][K]^T */
void nd_linear_fwd(float *y, const float *x, const float *w, size_t n, size_t k, size_t m) {
  float *wt = transpose(w, m, k); /* [K][M] */
  gemm(y, x, wt, n, k, m, false);
  free(wt);
}

void nd_linear_bwd(float *dx, float *dw, const float *dy, const float *x, const float *w,
                   size_t n, size_t k, size_t m, bool accumulate_dx) {
  if (dx) gemm(dx, dy, w, n, m, k, accumulate_dx); /* dx = dy W */
  if (dw) {
    float *dyt = transpose(dy, n, m); /* [M][N] */
    gemm(dw, dyt, x, m, n, k, true);  /* dW += dy^T x */
    free(dyt);
  }
}

#define RMS_EPS 1e-5

void nd_rmsnorm_fwd(float *y, float *rs, const float *x, const float *g, size_t n, size_t c) {
#pragma omp parallel for schedule(static) if (n * c > PAR_MIN)
  for (size_t r = 0; r < n; r++) {
    const float *xr = x + r * c;
    double ss = 0;
    for (size_t j = 0; j < c; j++) ss += (double)xr[j] * xr[j];
    float inv = (float)(1.0 / sqrt(ss / (double)c + RMS_EPS));
    if (rs) rs[r] = inv;
    for (size_t j = 0; j < c; j++) y[r * c + j] = xr[j] * inv * g[j];
  }
}

/* y = xhat g, xhat = x r, r = (mean x^2 + eps)^-1/2:
 * dx = r (dxhat - xhat mean(dxhat xhat)), dxhat = dy g; dg = sum dy xhat. */
void nd_rmsnorm_bwd(float *dx, float *dg, const float *dy, const float *x, const float *rs,
                    const float *g, size_t n, size_t c, bool accumulate_dx) {
#pragma omp parallel for schedule(static) if (n * c > PAR_MIN)
  for (size_t r = 0; r < n; r++) {
    const float *xr = x + r * c, *dyr = dy + r * c;
    const float inv = rs[r];
    double dot = 0;
    for (size_t j = 0; j < c; j++) dot += (double)dyr[j] * g[j] * xr[j] * inv;
    const float mean = (float)(dot / (double)c);
    float *dxr = dx + r * c;
    for (size_t j = 0; j < c; j++) {
      float xhat = xr[j] * inv;
      float v = inv * (dyr[j] * g[j] - xhat * mean);
      dxr[j] = accumulate_dx ? dxr[j] + v : v;
    }
  }
  /* dg: one thread per column keeps the sum order fixed. */
#pragma omp parallel for schedule(static) if (n * c > PAR_MIN)
  for (size_t j = 0; j < c; j++) {
    double s = 0;
    for (size_t r = 0; r < n; r++) s += (double)dy[r * c + j] * x[r * c + j] * rs[r];
    dg[j] += (float)s;
  }
}

/* ReLU (cheap; a tanh GELU cost 16% of the training time here). */
void nd_relu_fwd(float *y, const float *x, size_t n) {
  for (size_t i = 0; i < n; i++) y[i] = x[i] > 0 ? x[i] : 0.0f;
}

void nd_relu_bwd(float *dx, const float *dy, const float *x, size_t n) {
  for (size_t i = 0; i < n; i++) dx[i] = x[i] > 0 ? dy[i] : 0.0f;
}

double nd_xent(float *dlogits, const float *logits, const uint32_t *targets, size_t n, size_t v,
               uint32_t *hits) {
  double loss = 0;
  uint32_t h = 0;
  for (size_t r = 0; r < n; r++) {
    const float *lr = logits + r * v;
    size_t best = 0;
    double mx = lr[0];
    for (size_t j = 1; j < v; j++)
      if (lr[j] > mx) mx = lr[j], best = j;
    double z = 0;
    for (size_t j = 0; j < v; j++) z += exp((double)lr[j] - mx);
    double lz = mx + log(z);
    loss += lz - lr[targets[r]];
    h += best == targets[r];
    if (dlogits)
      for (size_t j = 0; j < v; j++)
        dlogits[r * v + j] =
            (float)((exp((double)lr[j] - lz) - (j == targets[r] ? 1.0 : 0.0)) / (double)n);
  }
  if (hits) *hits = h;
  return n ? loss / (double)n : 0;
}
