/* libpe vulkan backend: merge the split-KV partials of attn_*.comp.
 * For split s: acc_s[row][d] (unnormalised), m_s (base-2 max), l_s (sum).
 *   M = max_s m_s;  L = sum_s l_s 2^(m_s - M);
 *   O = sum_s acc_s 2^(m_s - M) / L   (0 for a row that sees no key).
 * One invocation per output element; float32 throughout. */
#version 450
#extension GL_GOOGLE_include_directive : require

layout(constant_id = 1) const int D = 64;
layout(local_size_x = 64) in;

#include "pe_common.glsl"

layout(set = 0, binding = 6, std430) writeonly buffer OutBuf { float o[]; };
layout(set = 0, binding = 7, std430) readonly buffer PartBuf { float part[]; };

layout(push_constant) uniform Push { PE_PUSH_FIELDS } pc;

void main() {
  uint e = (gl_WorkGroupID.y * pc.xdim + gl_WorkGroupID.x) * 64u +
           gl_LocalInvocationID.x;
  if (e >= pc.total) return;
  const float NEG_INF = uintBitsToFloat(0xff800000u);
  int rows = int(pc.total / uint(D));
  int row = int(e / uint(D));
  int ns = int(pc.nsplit);
  int mlb = ns * rows * D;
  float M = NEG_INF;
  for (int s = 0; s < ns; s++) M = max(M, part[mlb + (s * rows + row) * 2]);
  float muse = M == NEG_INF ? 0.0 : M;
  float L = 0.0, acc = 0.0;
  for (int s = 0; s < ns; s++) {
    float ms = part[mlb + (s * rows + row) * 2];
    float w = ms == NEG_INF ? 0.0 : exp2(ms - muse);
    L += part[mlb + (s * rows + row) * 2 + 1] * w;
    acc += part[(s * rows + row) * D + int(e % uint(D))] * w;
  }
  o[e] = L > 0.0 ? acc / L : 0.0;
}
