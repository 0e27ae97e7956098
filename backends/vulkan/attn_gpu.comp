/* libpe vulkan backend: fused encoding + tiled flash attention for GPUs.
 *
 * A workgroup owns BR query rows of one (batch, kv head) group and walks
 * the keys in tiles of BC:
 *   - TPR invocations per row (a power of two no larger than the subgroup),
 *     each holding D/TPR dims of the encoded, pre-scaled q row and of the
 *     output accumulator in registers (dims t, t + TPR, ...);
 *   - per key tile the workgroup loads K (encoded on load) and V into
 *     shared memory, then every row scores the BC keys (partial dot
 *     products reduced across the row's TPR lanes with subgroupShuffleXor),
 *     updates its online softmax once per tile and accumulates P.V;
 *   - tiles wholly outside the causal/window band of the workgroup's rows
 *     are never loaded; masks handle the edge tiles.
 * Online softmax in base 2 (q pre-scaled by softmax_scale * log2 e), float32
 * accumulation (NUMERICS.md).  Rows r = i * G + g inside a group as in
 * attn_cpu.comp.  Workgroups run the most expensive causal tiles first.
 */
#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_shuffle : require
#extension GL_EXT_control_flow_attributes : require

layout(constant_id = 0) const int TPR = 4;      /* invocations per row */
layout(constant_id = 1) const int D = 64;       /* head_dim */
layout(constant_id = 2) const int BR = 16;      /* rows per workgroup */
layout(constant_id = 3) const int KIND = 1;
layout(constant_id = 4) const int R = 0;
layout(constant_id = 5) const int PAIRING = 1;
layout(constant_id = 6) const int G = 1;
layout(constant_id = 7) const bool CAUSAL = false;
layout(constant_id = 8) const bool WINDOWED = false;
layout(constant_id = 9) const bool PARTIAL = false;
layout(constant_id = 10) const int BC = 16;     /* keys per tile */
layout(constant_id = 11) const int WG = 64;     /* = BR * TPR */
layout(constant_id = 12) const int LOG2TPR = 2; /* log2(TPR) */
layout(local_size_x_id = 11) in;

#include "pe_common.glsl"

const int DPT = (D + TPR - 1) / TPR; /* dims per invocation */
const int HR = R / 2;

layout(set = 0, binding = 0, std430) readonly buffer QBuf { float qb[]; };
layout(set = 0, binding = 1, std430) readonly buffer KBuf { float kbuf[]; };
layout(set = 0, binding = 2, std430) readonly buffer VBuf { float vbuf[]; };
layout(set = 0, binding = 3, std430) readonly buffer Tab0 { float tab0[]; };
layout(set = 0, binding = 4, std430) readonly buffer Tab1 { float tab1[]; };
layout(set = 0, binding = 5, std430) readonly buffer Slopes { float slopes[]; };
layout(set = 0, binding = 6, std430) writeonly buffer OutBuf { float o[]; };
layout(set = 0, binding = 7, std430) writeonly buffer PartBuf { float part[]; };

layout(push_constant) uniform Push { PE_PUSH_FIELDS } pc;

/* element idx of q (which = 0) or k (which = 1) */
float x_load(int which, int idx) { return which == 0 ? qb[idx] : kbuf[idx]; }
#define X_LOAD(WHICH, IDX) x_load(WHICH, IDX)
#define TAB0_LOAD(IDX) tab0[IDX]
#define TAB1_LOAD(IDX) tab1[IDX]
#include "pe_encode.glsl"

shared float ks[BC * D];
shared float vs[BC * D];

void main() {
  const int sq = int(pc.sq), skv = int(pc.skv);
  const int nrows = G * sq;
  const int qoff = skv - sq;
  /* With full subgroups this enumerates 0..WG-1 subgroup by subgroup, so
   * the TPR lanes of a row are neighbours in one subgroup. */
  const int lid = int(gl_SubgroupID * gl_SubgroupSize + gl_SubgroupInvocationID);
  const int rloc = lid / TPR, t = lid % TPR;

  uint lin = gl_WorkGroupID.y * pc.xdim + gl_WorkGroupID.x;
  if (lin >= pc.ntiles * pc.ngroups) return; /* uniform: whole workgroup */
  int grp = int(lin % pc.ngroups);
  int tile = int(pc.ntiles) - 1 - int(lin / pc.ngroups); /* big first */
  int split = int(gl_WorkGroupID.z);

  int r0 = tile * BR;
  int nr = min(BR, nrows - r0);
  int imin = r0 / G, imax = (r0 + nr - 1) / G;
  int lo = 0, hi = skv;
  if (CAUSAL) hi = min(hi, qoff + imax + 1);
  if (WINDOWED) {
    lo = max(lo, qoff + imin - int(pc.window) + 1);
    if (!CAUSAL) hi = min(hi, qoff + imax + int(pc.window));
  }
  lo = (lo / BC) * BC;
  int span = max(hi - lo, 0);
  int slen = ((span + int(pc.nsplit) - 1) / int(pc.nsplit) + BC - 1) / BC * BC;
  int s_lo = lo + split * slen;
  int s_hi = min(hi, s_lo + slen);

  const float NEG_INF = uintBitsToFloat(0xff800000u);
  bool valid = rloc < nr;
  int r = r0 + min(rloc, nr - 1);
  int i = r / G, g = r % G;
  int qrow = qoff + i;
  int qbase = ((grp * G + g) * sq + i) * D;
  float slope = 0.0;
  if (KIND == PE_KIND_BIAS)
    slope = slopes[((int(pc.grp0) + grp) % int(pc.hkv)) * G + g];

  float qv[DPT], acc[DPT];
  [[unroll]] for (int c = 0; c < DPT; c++) {
    int d = t + TPR * c;
    qv[c] = d < D ? pe_encode(0, qbase, qrow, d) * pc.qscale : 0.0;
    acc[c] = 0.0;
  }
  float m = NEG_INF, l = 0.0;

  for (int n0 = s_lo; n0 < s_hi; n0 += BC) {
    barrier();
    /* constant trip count: unrolled, so the key loop stays the only rolled
     * loop (llvmpipe's 65535-iteration limit, see vk_run.c) */
    [[unroll]] for (int it = 0; it < (BC * D + WG - 1) / WG; it++) {
      int e = lid + it * WG;
      if (e >= BC * D) break;
      int j = e / D, d = e % D;
      int n = min(n0 + j, skv - 1);
      int kbase = (grp * skv + n) * D;
      ks[e] = pe_encode(1, kbase, n, d);
      vs[e] = vbuf[kbase + d];
    }
    barrier();
    float s[BC];
    float mt = NEG_INF;
    [[unroll]] for (int j = 0; j < BC; j++) {
      float part_ = 0.0;
      [[unroll]] for (int c = 0; c < DPT; c++) {
        int d = t + TPR * c;
        if (d < D) part_ += qv[c] * ks[j * D + d];
      }
      [[unroll]] for (int st = 0; st < LOG2TPR; st++)
        part_ += subgroupShuffleXor(part_, uint(1 << st));
      int n = n0 + j;
      bool vis = n < s_hi;
      if (CAUSAL) vis = vis && n <= qrow;
      if (WINDOWED) vis = vis && abs(qrow - n) < int(pc.window);
      if (KIND == PE_KIND_BIAS) part_ += slope * float(n - qrow);
      s[j] = vis ? part_ : NEG_INF;
      mt = max(mt, s[j]);
    }
    float mnew = max(m, mt);
    float muse = mnew == NEG_INF ? 0.0 : mnew;
    float corr = exp2(m - muse);
    m = mnew;
    l *= corr;
    [[unroll]] for (int c = 0; c < DPT; c++) acc[c] *= corr;
    [[unroll]] for (int j = 0; j < BC; j++) {
      float p = s[j] == NEG_INF ? 0.0 : exp2(s[j] - muse);
      l += p;
      [[unroll]] for (int c = 0; c < DPT; c++) {
        int d = t + TPR * c;
        if (d < D) acc[c] += p * vs[j * D + d];
      }
    }
  }

  if (!valid) return;
  int row = (grp * G + g) * sq + i;
  if (PARTIAL) {
    int rows = int(pc.ngroups) * nrows;
    [[unroll]] for (int c = 0; c < DPT; c++) {
      int d = t + TPR * c;
      if (d < D) part[(split * rows + row) * D + d] = acc[c];
    }
    if (t == 0) {
      int mb = int(pc.nsplit) * rows * D + (split * rows + row) * 2;
      part[mb] = m;
      part[mb + 1] = l;
    }
  } else {
    float inv = l > 0.0 ? 1.0 / l : 0.0;
    [[unroll]] for (int c = 0; c < DPT; c++) {
      int d = t + TPR * c;
      if (d < D) o[row * D + d] = acc[c] * inv;
    }
  }
}
