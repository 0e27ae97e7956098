/* The synthetic retrieval task (docs/NEEDLE.md "Task").  Integer-only
 * generators, so every machine draws the same haystacks. */
#include "needle.h"

#include <math.h>
#include <stdbool.h>

static uint64_t splitmix64(uint64_t *x) {
  uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

void nd_rng_seed(nd_rng *r, uint64_t seed, uint64_t a, uint64_t b, uint64_t c) {
  uint64_t x = seed;
  uint64_t h = splitmix64(&x);
  x = h ^ a;
  h = splitmix64(&x);
  x = h ^ b;
  h = splitmix64(&x);
  x = h ^ c;
  for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

/* xoshiro256** (Blackman and Vigna 2018). */
uint64_t nd_rng_next(nd_rng *r) {
  uint64_t *s = r->s;
  uint64_t out = rotl(s[1] * 5, 7) * 9;
  uint64_t t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 45);
  return out;
}

/* Lemire's multiply-shift with rejection: unbiased. */
uint32_t nd_rng_below(nd_rng *r, uint32_t n) {
  uint64_t m = (uint64_t)(uint32_t)(nd_rng_next(r) >> 32) * n;
  uint32_t lo = (uint32_t)m;
  if (lo < n) {
    uint32_t t = (uint32_t)(-n) % n;
    while (lo < t) {
      m = (uint64_t)(uint32_t)(nd_rng_next(r) >> 32) * n;
      lo = (uint32_t)m;
    }
  }
  return (uint32_t)(m >> 32);
}

uint32_t nd_make_sequence(const nd_taskcfg *t, uint32_t vocab, uint32_t len, double depth,
                          uint32_t distractors, nd_rng *rng, uint32_t *tokens,
                          uint32_t *needle_pos) {
  const uint32_t f0 = nd_filler0(t), nf = vocab - f0;
  tokens[0] = ND_BOS;
  for (uint32_t i = 1; i + 1 < len; i++) tokens[i] = f0 + nd_rng_below(rng, nf);
  const uint32_t key = nd_rng_below(rng, t->keys), val = f0 + nd_rng_below(rng, nf);
  /* The needle's key sits at p in [1, len-3], its value at p+1 <= len-2. */
  uint32_t p;
  if (depth >= 0) p = 1 + (uint32_t)floor(depth * (double)(len - 4) + 0.5);
  else p = 1 + nd_rng_below(rng, len - 3);
  tokens[p] = nd_key_tok(t, key);
  tokens[p + 1] = val;
  /* Distractor pairs: distinct other keys, random values, slots that do
   * not overlap another pair. */
  uint32_t used[65], at[65];
  used[0] = key, at[0] = p;
  for (uint32_t d = 0; d < distractors && d < 64; d++) {
    uint32_t dk;
    for (;;) {
      dk = nd_rng_below(rng, t->keys);
      uint32_t j = 0;
      while (j <= d && used[j] != dk) j++;
      if (j > d) break;
    }
    uint32_t q = 1 + nd_rng_below(rng, len - 3), tries = 0;
    for (;;) {
      uint32_t j = 0;
      while (j <= d && (q + 1 < at[j] || q > at[j] + 1)) j++;
      if (j > d) break; /* free */
      /* Rejection first, then a deterministic scan (slots are scarce). */
      q = ++tries < 64 ? 1 + nd_rng_below(rng, len - 3) : (q % (len - 3)) + 1;
      if (tries > 64 + 2 * len) return UINT32_MAX; /* cannot happen: checked lengths */
    }
    used[d + 1] = dk, at[d + 1] = q;
    tokens[q] = nd_key_tok(t, dk);
    tokens[q + 1] = f0 + nd_rng_below(rng, nf);
  }
  tokens[len - 1] = nd_key_tok(t, key);
  if (needle_pos) *needle_pos = p;
  return val;
}

/* A random start q in [1, len-3] whose pair (q, q+1) overlaps none of the
 * n pairs starting at at[]; 0 when there is none. */
static uint32_t free_slot(nd_rng *rng, uint32_t len, const uint32_t *at, uint32_t n) {
  uint32_t q = 1 + nd_rng_below(rng, len - 3);
  for (uint32_t tries = 0;; tries++) {
    uint32_t j = 0;
    while (j < n && (q + 1 < at[j] || q > at[j] + 1)) j++;
    if (j == n) return q;
    if (tries > 64 + len) return 0;
    /* Rejection first, then a deterministic scan (slots are scarce). */
    q = tries < 64 ? 1 + nd_rng_below(rng, len - 3) : (q % (len - 3)) + 1;
  }
}

#define MAX_PAIRS 64
#define MAX_MENTIONS 256

uint32_t nd_make_train_sequence(const nd_taskcfg *t, uint32_t vocab, uint32_t len,
                                uint32_t distractors, uint32_t repeats, nd_rng *rng,
                                uint32_t *tokens, uint32_t *tpos, uint32_t *ttok, uint32_t cap) {
  const uint32_t f0 = nd_filler0(t), nf = vocab - f0;
  const uint32_t P = 1 + (distractors < MAX_PAIRS - 1 ? distractors : MAX_PAIRS - 1);
  tokens[0] = ND_BOS;
  for (uint32_t i = 1; i + 1 < len; i++) tokens[i] = f0 + nd_rng_below(rng, nf);
  uint32_t key[MAX_PAIRS], val[MAX_PAIRS], at[MAX_MENTIONS], n_at = 0;
  for (uint32_t i = 0; i < P; i++) {
    for (;;) { /* distinct keys */
      key[i] = nd_rng_below(rng, t->keys);
      uint32_t j = 0;
      while (j < i && key[j] != key[i]) j++;
      if (j == i) break;
    }
    val[i] = f0 + nd_rng_below(rng, nf);
  }
  for (uint32_t i = 0; i < P; i++) {
    uint32_t mentions = 1 + nd_rng_below(rng, repeats + 1);
    for (uint32_t k = 0; k < mentions && n_at < MAX_MENTIONS; k++) {
      uint32_t q = free_slot(rng, len, at, n_at);
      if (!q) break; /* full: fewer mentions */
      at[n_at++] = q;
      tokens[q] = nd_key_tok(t, key[i]);
      tokens[q + 1] = val[i];
    }
  }
  tokens[len - 1] = nd_key_tok(t, key[nd_rng_below(rng, P)]);
  /* Targets: every key token whose key was mentioned before. */
  bool seen[MAX_PAIRS] = {false};
  uint32_t n = 0;
  for (uint32_t i = 1; i < len; i++) {
    if (tokens[i] < 1 || tokens[i] > t->keys) continue;
    uint32_t j = 0;
    while (j < P && nd_key_tok(t, key[j]) != tokens[i]) j++;
    if (j == P) continue;
    if (seen[j] && n < cap) tpos[n] = i, ttok[n] = val[j], n++;
    seen[j] = true;
  }
  return n;
}
