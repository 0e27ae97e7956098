/* libpe vulkan backend: flash attention for CPU drivers (lavapipe/llvmpipe).
 *
 * llvmpipe runs a workgroup on one thread and maps the invocations of a
 * subgroup onto SIMD lanes, so this kernel is written as SIMD code.  What
 * shaped it (measured on lavapipe, Mesa 22.3, AVX2):
 *   - every loop of a workgroup shares one limit of 65535 iterations
 *     (LP_MAX_TGSI_LOOP_ITERATIONS), after which loops silently stop: the
 *     key loop is the only rolled loop here, and the host splits the keys
 *     (split-KV) so that no workgroup walks more than 60000 key blocks;
 *   - a dynamically indexed local array becomes per-lane scalar scratch
 *     accesses, and an inner loop whose bound depends on an outer one is
 *     not unrolled: all arrays are indexed by [[unroll]]ed loops with
 *     constant trip counts, so they live in (vector) registers;
 *   - buffer reads are gathers (texel buffers: one vpgatherdd per fetch,
 *     storage buffers: a scalar loop), the dominant cost: K and V come as
 *     vec4 texels, once per key block for all RB rows of the workgroup;
 *   - subgroupShuffle with a constant lane is one permute; barriers and
 *     shared memory are slow to compile and to run, none are used;
 *   - JIT time grows with the unrolled code, about RB x head_dim.
 * The design:
 *   - one workgroup = one full subgroup of SG invocations (8 with AVX2,
 *     16 with 512-bit vectors), lanes over head_dim (see dim_of);
 *   - a workgroup owns RB query rows, held in registers, and walks the keys
 *     in blocks of SG: each lane forms SG partial dot products (one per key)
 *     and a transposing butterfly (SG - 1 subgroupShuffleXor) leaves lane j
 *     with the full score of key j, so masks, bias and exp2 run across keys
 *     as one vector; P.V broadcasts p_j with subgroupShuffle(p, j);
 *   - Q is encoded on load; K comes encoded from one encode.comp pass
 *     (KPRE) for rotary and additive kinds, since each key block is read
 *     once per row tile;
 *   - online softmax in base 2 (q pre-scaled by softmax_scale * log2 e, the
 *     slopes by log2 e), float32 accumulation (NUMERICS.md);
 *   - rows: inside one (batch, kv head) group, row r = i * G + g is query i
 *     of query head kvhead * G + g, so the G heads that share a kv head
 *     share the key blocks (GQA; decode with G > 1 fills the rows);
 *   - lavapipe hands each of its threads a contiguous range of workgroup
 *     ids, so causal tiles (whose cost grows with the tile index) are
 *     interleaved big, small, big, small... for equal work per thread.
 */
#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_shuffle : require
#extension GL_EXT_control_flow_attributes : require

layout(constant_id = 0) const int SG = 8;        /* subgroup = workgroup size */
layout(constant_id = 1) const int D = 64;        /* head_dim */
layout(constant_id = 2) const int RB = 4;        /* query rows per workgroup */
layout(constant_id = 3) const int KIND = 1;      /* pe_encoding_kind */
layout(constant_id = 4) const int R = 0;         /* rotary dim */
layout(constant_id = 5) const int PAIRING = 1;   /* pe_pairing */
layout(constant_id = 6) const int G = 1;         /* query heads per kv head */
layout(constant_id = 7) const bool CAUSAL = false;
layout(constant_id = 8) const bool WINDOWED = false;
layout(constant_id = 9) const bool PARTIAL = false; /* split-KV partials */
layout(constant_id = 12) const int LOG2SG = 3;   /* log2(SG) */
layout(constant_id = 13) const bool KPRE = false; /* k_tex holds K' already */
layout(constant_id = 14) const int VEC = 1;       /* 1 or 4, see DPL */
layout(local_size_x_id = 0) in;

#include "pe_common.glsl"

/* Dims per lane.  VEC = 1: lane l holds dims l, l + SG, l + 2 SG, ...;
 * VEC = 4 (D % 4 == 0): lane l holds the 4-dim groups l, l + SG, ... so that
 * K and V come as one vec4 texel fetch per group (a quarter of the
 * gathers, which dominate on llvmpipe). */
const int DPL = VEC == 4 ? 4 * ((D + 4 * SG - 1) / (4 * SG)) : (D + SG - 1) / SG;
const int HR = R / 2;

layout(set = 0, binding = 0) uniform samplerBuffer q_tex;
layout(set = 0, binding = 1) uniform samplerBuffer k_tex;
layout(set = 0, binding = 2) uniform samplerBuffer v_tex;
layout(set = 0, binding = 3) uniform samplerBuffer tab0_tex; /* cos | pe */
layout(set = 0, binding = 4) uniform samplerBuffer tab1_tex; /* sin */
layout(set = 0, binding = 5) uniform samplerBuffer slope_tex;
layout(set = 0, binding = 6, std430) writeonly buffer OutBuf { float o[]; };
layout(set = 0, binding = 7, std430) writeonly buffer PartBuf { float part[]; };
layout(set = 0, binding = 8) uniform samplerBuffer k4_tex; /* k_tex as vec4 */
layout(set = 0, binding = 9) uniform samplerBuffer v4_tex; /* v_tex as vec4 */

int dim_of(int lane, int c) {
  return VEC == 4 ? 4 * (lane + SG * (c >> 2)) + (c & 3) : lane + SG * c;
}

/* Load and encode one row of q (or of raw k) into the lane's dims.  `BASE`
 * is the row's first element, `PROW` its position table row.  Once per row
 * and workgroup, so the pair partner is simply fetched again. */
#define LOAD_ROW(X_TEX, BASE, PROW, DST)                                      \
  {                                                                           \
    [[unroll]] for (int c = 0; c < DPL; c++) {                                \
      int d = dim_of(lane, c);                                                \
      float e_ = d < D ? texelFetch(X_TEX, int(BASE) + d).r : 0.0;            \
      if (KIND == PE_KIND_ROTARY && d < R) {                                  \
        int pd_, j_;                                                          \
        float sign_;                                                          \
        if (PAIRING == PE_PAIRING_INTERLEAVED) {                              \
          pd_ = d ^ 1;                                                        \
          j_ = d >> 1;                                                        \
          sign_ = (d & 1) == 0 ? -1.0 : 1.0;                                  \
        } else {                                                              \
          pd_ = d < HR ? d + HR : d - HR;                                     \
          j_ = d < HR ? d : d - HR;                                           \
          sign_ = d < HR ? -1.0 : 1.0;                                        \
        }                                                                     \
        int t_ = int(PROW) * HR + j_;                                         \
        e_ = e_ * texelFetch(tab0_tex, t_).r +                                \
             sign_ * texelFetch(X_TEX, int(BASE) + pd_).r *                   \
                 texelFetch(tab1_tex, t_).r;                                  \
      } else if (KIND == PE_KIND_ADDITIVE && d < D) {                         \
        e_ += texelFetch(tab0_tex, int(PROW) * D + d).r;                      \
      }                                                                       \
      DST[c] = e_;                                                            \
    }                                                                         \
  }

layout(push_constant) uniform Push { PE_PUSH_FIELDS } pc;

void main() {
  const int lane = int(gl_SubgroupInvocationID);
  const int sq = int(pc.sq), skv = int(pc.skv);
  const int nrows = G * sq;
  const int qoff = skv - sq; /* table row of query 0 */

  /* Workgroup -> (group, tile), tiles interleaved big/small. */
  uint lin = gl_WorkGroupID.y * pc.xdim + gl_WorkGroupID.x;
  if (lin >= pc.ntiles * pc.ngroups) return;
  int grp = int(lin / pc.ntiles);
  int w = int(lin % pc.ntiles);
  int tile = (w & 1) == 0 ? (w >> 1) : int(pc.ntiles) - 1 - (w >> 1);
  int split = int(gl_WorkGroupID.z);

  int r0 = tile * RB;
  int nr = min(RB, nrows - r0);
  int imin = r0 / G, imax = (r0 + nr - 1) / G;

  /* Keys any row of the tile can see, split into nsplit block-aligned
   * ranges (decode split-KV; the host also splits so that no workgroup
   * walks more than 2^15 key blocks, see the loop limiter note above). */
  int lo = 0, hi = skv;
  if (CAUSAL) hi = min(hi, qoff + imax + 1);
  if (WINDOWED) {
    lo = max(lo, qoff + imin - int(pc.window) + 1);
    if (!CAUSAL) hi = min(hi, qoff + imax + int(pc.window));
  }
  lo = (lo / SG) * SG;
  int span = max(hi - lo, 0);
  int slen = ((span + int(pc.nsplit) - 1) / int(pc.nsplit) + SG - 1) / SG * SG;
  int s_lo = lo + split * slen;
  int s_hi = min(hi, s_lo + slen);

  const float NEG_INF = uintBitsToFloat(0xff800000u);
  int hkv = (int(pc.grp0) + grp) % int(pc.hkv);

  /* The tile's rows live in registers: every index below is a constant
   * once the [[unroll]] loops are unrolled (llvmpipe turns a dynamically
   * indexed array into per-lane scalar scratch accesses).  Rows past the
   * end repeat the last row and are not stored. */
  float qreg[RB * DPL], acc[RB * DPL], mrow[RB], lrow[RB];
  [[unroll]] for (int r = 0; r < RB; r++) {
    int rr = min(r0 + r, nrows - 1);
    int i = rr / G, g = rr % G;
    int qbase = ((grp * G + g) * sq + i) * D;
    float qe[DPL];
    LOAD_ROW(q_tex, qbase, qoff + i, qe)
    [[unroll]] for (int c = 0; c < DPL; c++) {
      qreg[r * DPL + c] = qe[c] * pc.qscale;
      acc[r * DPL + c] = 0.0;
    }
    mrow[r] = NEG_INF;
    lrow[r] = 0.0;
  }

  [[dont_unroll]] for (int n0 = s_lo; n0 < s_hi; n0 += SG) {
    float kb[SG * DPL], vb[SG * DPL];
    [[unroll]] for (int j = 0; j < SG; j++) {
      int n = min(n0 + j, skv - 1);
      int kbase = (grp * skv + n) * D;
      if (VEC == 4) {
        [[unroll]] for (int c4 = 0; c4 < DPL / 4; c4++) {
          int d0 = 4 * (lane + SG * c4);
          vec4 kv = d0 < D ? texelFetch(k4_tex, (kbase + d0) >> 2) : vec4(0.0);
          vec4 vv = d0 < D ? texelFetch(v4_tex, (kbase + d0) >> 2) : vec4(0.0);
          [[unroll]] for (int e = 0; e < 4; e++) {
            kb[j * DPL + 4 * c4 + e] = kv[e];
            vb[j * DPL + 4 * c4 + e] = vv[e];
          }
        }
      } else {
        float ke[DPL];
        if (KPRE) {
          [[unroll]] for (int c = 0; c < DPL; c++) {
            int d = lane + SG * c;
            ke[c] = d < D ? texelFetch(k_tex, kbase + d).r : 0.0;
          }
        } else {
          LOAD_ROW(k_tex, kbase, n, ke)
        }
        [[unroll]] for (int c = 0; c < DPL; c++) {
          int d = lane + SG * c;
          kb[j * DPL + c] = ke[c];
          vb[j * DPL + c] = d < D ? texelFetch(v_tex, kbase + d).r : 0.0;
        }
      }
    }
    int n = n0 + lane; /* the key this lane scores */
    [[unroll]] for (int r = 0; r < RB; r++) {
      int qr = qoff + min(r0 + r, nrows - 1) / G;
      float t[SG];
      [[unroll]] for (int j = 0; j < SG; j++) {
        float s = 0.0;
        [[unroll]] for (int c = 0; c < DPL; c++)
          s += qreg[r * DPL + c] * kb[j * DPL + c];
        t[j] = s;
      }
      /* Transposing butterfly: afterwards t[0] on lane l = score of key l. */
      /* (Both loops need constant trip counts to be unrolled: NIR does not
       * unroll an inner loop whose bound depends on an outer one.) */
      [[unroll]] for (int st = 1; st <= LOG2SG; st++) {
        const int h = SG >> st;
        bool upper = (lane & h) != 0;
        [[unroll]] for (int j = 0; j < SG / 2; j++) {
          if (j < h) {
            float keep = upper ? t[j + h] : t[j];
            float send = upper ? t[j] : t[j + h];
            t[j] = keep + subgroupShuffleXor(send, uint(h));
          }
        }
      }
      float s = t[0];
      bool vis = n < s_hi;
      if (CAUSAL) vis = vis && n <= qr;
      if (WINDOWED) vis = vis && abs(qr - n) < int(pc.window);
      if (KIND == PE_KIND_BIAS)
        s += texelFetch(slope_tex, hkv * G + min(r0 + r, nrows - 1) % G).r *
             float(n - qr);
      s = vis ? s : NEG_INF;
      float mb = s;
      [[unroll]] for (int st = 1; st <= LOG2SG; st++)
        mb = max(mb, subgroupShuffleXor(mb, uint(SG >> st)));
      float mold = mrow[r];
      float mnew = max(mold, mb);
      float muse = mnew == NEG_INF ? 0.0 : mnew;
      float p = vis ? exp2(s - muse) : 0.0;
      float corr = exp2(mold - muse);
      mrow[r] = mnew;
      lrow[r] = lrow[r] * corr + p;
      float a[DPL];
      [[unroll]] for (int c = 0; c < DPL; c++) a[c] = acc[r * DPL + c] * corr;
      [[unroll]] for (int j = 0; j < SG; j++) {
        float pj = subgroupShuffle(p, uint(j));
        [[unroll]] for (int c = 0; c < DPL; c++) a[c] += pj * vb[j * DPL + c];
      }
      [[unroll]] for (int c = 0; c < DPL; c++) acc[r * DPL + c] = a[c];
    }
  }

  int rows = int(pc.ngroups) * nrows;
  [[unroll]] for (int r = 0; r < RB; r++) {
    int rr = min(r0 + r, nrows - 1);
    int i = rr / G, g = rr % G;
    float l = lrow[r];
    [[unroll]] for (int st = 1; st <= LOG2SG; st++)
      l += subgroupShuffleXor(l, uint(SG >> st));
    int row = (grp * G + g) * sq + i; /* row of the chunk's output */
    if (r < nr) {
      if (PARTIAL) {
        /* part: acc [nsplit][rows][D], then (m, l) [nsplit][rows][2] */
        [[unroll]] for (int c = 0; c < DPL; c++) {
          int d = dim_of(lane, c);
          if (d < D) part[(split * rows + row) * D + d] = acc[r * DPL + c];
        }
        if (lane == 0) {
          int mb = int(pc.nsplit) * rows * D + (split * rows + row) * 2;
          part[mb] = mrow[r];
          part[mb + 1] = l;
        }
      } else {
        float inv = l > 0.0 ? 1.0 / l : 0.0;
        [[unroll]] for (int c = 0; c < DPL; c++) {
          int d = dim_of(lane, c);
          if (d < D) o[row * D + d] = acc[r * DPL + c] * inv;
        }
      }
    }
  }
}
