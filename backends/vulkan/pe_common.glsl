/* libpe vulkan backend: definitions shared by every shader.
 * The host mirrors PE_PUSH_FIELDS in struct vkb_push (vk_internal.h). */
#ifndef PE_COMMON_GLSL
#define PE_COMMON_GLSL

/* pe_encoding_kind and pe_pairing (pe_plugin.h) */
#define PE_KIND_NONE 1
#define PE_KIND_ROTARY 2
#define PE_KIND_ADDITIVE 3
#define PE_KIND_BIAS 4
#define PE_PAIRING_NEOX 1
#define PE_PAIRING_INTERLEAVED 2

/* Per-dispatch scalars (push constants), all 32-bit.
 *   sq, skv   query and key rows of one head
 *   window    visibility window (WINDOWED only), < skv
 *   ntiles    row tiles per (batch, kv head) group
 *   ngroups   (batch, kv head) groups in this chunk
 *   nsplit    key splits (decode split-KV); 1 = none
 *   grp0      global index of the chunk's first group (b * Hkv + hkv)
 *   hkv       kv heads
 *   xdim      workgroups along x (the grid is folded into x and y)
 *   qscale    softmax_scale * log2(e)
 *   total     encode/combine: elements to produce
 *   prow_off  encode: table row of the tensor's row 0 (Skv - Sq for q)
 *   seq       encode: rows per head of the tensor */
#define PE_PUSH_FIELDS                                                        \
  uint sq;                                                                    \
  uint skv;                                                                   \
  uint window;                                                                \
  uint ntiles;                                                                \
  uint ngroups;                                                               \
  uint nsplit;                                                                \
  uint grp0;                                                                  \
  uint hkv;                                                                   \
  uint xdim;                                                                  \
  float qscale;                                                               \
  uint total;                                                                 \
  uint prow_off;                                                              \
  uint seq;

#endif
