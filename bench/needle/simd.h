/* Hot loops of the needle model are compiled twice (x86-64-v3: AVX2 + FMA,
 * and the baseline) and picked at load time (GCC target_clones, an ifunc),
 * so the program stays portable.  OpenMP regions call these functions; a
 * clone attribute on the function holding the region would not reach the
 * outlined region body. */
#ifndef PE_NEEDLE_SIMD_H
#define PE_NEEDLE_SIMD_H

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && __GNUC__ >= 11 && \
    defined(__ELF__)
#define ND_HOT __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define ND_HOT
#endif

/* 8 floats; unaligned loads and stores through memcpy. */
typedef float nd_v8 __attribute__((vector_size(32)));

#endif /* PE_NEEDLE_SIMD_H */
