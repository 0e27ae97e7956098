/* libpe vulkan backend: element d of one encoded row (NUMERICS.md).
 * The including shader defines KIND, PAIRING, R, HR, D and the loaders
 * X_LOAD(which, idx), TAB0_LOAD(idx), TAB1_LOAD(idx).
 *   rotary: pair (x, y) -> (x cos - y sin, y cos + x sin), the tables
 *           holding a*cos(p inv_freq[j]) and a*sin(...) at row `prow`;
 *           neox pairs (j, j + R/2), interleaved (2j, 2j + 1); dims >= R
 *           pass through;
 *   additive: x + pe(p)[d];  bias, none: x. */
#ifndef PE_ENCODE_GLSL
#define PE_ENCODE_GLSL
float pe_encode(int which, int base, int prow, int d) {
  float x = X_LOAD(which, base + d);
  if (KIND == PE_KIND_ROTARY) {
    if (d >= R) return x;
    int pd, j;
    float sgn;
    if (PAIRING == PE_PAIRING_INTERLEAVED) {
      pd = d ^ 1;
      j = d >> 1;
      sgn = (d & 1) == 0 ? -1.0 : 1.0;
    } else {
      pd = d < HR ? d + HR : d - HR;
      j = d < HR ? d : d - HR;
      sgn = d < HR ? -1.0 : 1.0;
    }
    int ti = prow * HR + j;
    return x * TAB0_LOAD(ti) + sgn * X_LOAD(which, base + pd) * TAB1_LOAD(ti);
  }
  if (KIND == PE_KIND_ADDITIVE) return x + TAB0_LOAD(prow * D + d);
  return x;
}
#endif
