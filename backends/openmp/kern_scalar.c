/* openmp backend: the portable C path (no ISA extension beyond the
 * compiler's baseline).  Same algorithm and tiling as the SIMD paths, with
 * a "vector" of one float; kern_tmpl.h has the kernels. */
#include <float.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "omp_internal.h"

typedef float VF;
#define W 1
#define MR 4
#define NV 4
#define VZERO() 0.0f
#define VSET1(x) ((float)(x))
#define VLOAD(p) (*(p))
#define VSTORE(p, v) (*(p) = (v))
#define VBCAST(p) (*(p))
#define VFMA(a, b, c) ((a) * (b) + (c))
#define VMUL(a, b) ((a) * (b))
#define VADD(a, b) ((a) + (b))
#define VSUB(a, b) ((a) - (b))
#define VMAX(a, b) ((a) > (b) ? (a) : (b))
#define VEXP2(x) exp2f(x)
#define VHSUM(v) (v)
#define VHMAX(v) (v)
#define KERNELS_NAME omp_kernels_scalar
#define KERNELS_STR "scalar"
#define KERNELS_DETAIL "portable C 4x4 micro-kernel"

#include "kern_tmpl.h"
