/* libpe vulkan backend: op = encode.  One invocation per element of Q'
 * (or K'): out[row][d] = pe_encode(x[row], table row prow_off + row % seq).
 * Memory-bound; the grid is folded into x and y. */
#version 450
#extension GL_GOOGLE_include_directive : require

layout(constant_id = 1) const int D = 64;
layout(constant_id = 3) const int KIND = 1;
layout(constant_id = 4) const int R = 0;
layout(constant_id = 5) const int PAIRING = 1;
layout(local_size_x = 64) in;

#include "pe_common.glsl"

const int HR = R / 2;

layout(set = 0, binding = 0, std430) readonly buffer XBuf { float xb[]; };
layout(set = 0, binding = 3, std430) readonly buffer Tab0 { float tab0[]; };
layout(set = 0, binding = 4, std430) readonly buffer Tab1 { float tab1[]; };
layout(set = 0, binding = 6, std430) writeonly buffer OutBuf { float o[]; };

layout(push_constant) uniform Push { PE_PUSH_FIELDS } pc;

#define X_LOAD(WHICH, IDX) xb[IDX]
#define TAB0_LOAD(IDX) tab0[IDX]
#define TAB1_LOAD(IDX) tab1[IDX]
#include "pe_encode.glsl"

void main() {
  uint e = (gl_WorkGroupID.y * pc.xdim + gl_WorkGroupID.x) * 64u +
           gl_LocalInvocationID.x;
  if (e >= pc.total) return;
  int row = int(e / uint(D)), d = int(e % uint(D));
  int prow = int(pc.prow_off) + row % int(pc.seq);
  o[e] = pe_encode(0, row * D, prow, d);
}
