# backends/openmp: the OpenMP CPU backend module (openmp.so).
#
# One build holds every SIMD path: kern_avx512.c and kern_avx2.c compile
# the same kernels (kern_tmpl.h) under a per-file target pragma, the driver
# (openmp.c) picks one at run time with __builtin_cpu_supports, so no
# -march flag is needed and the module runs on any x86-64 (and, through
# kern_scalar.c, anywhere).
plugin_LTLIBRARIES += backends/openmp.la
backends_openmp_la_SOURCES = \
	backends/openmp/omp_internal.h \
	backends/openmp/kern_tmpl.h \
	backends/openmp/kern_x86.h \
	backends/openmp/openmp.c \
	backends/openmp/kern_scalar.c \
	backends/openmp/kern_avx2.c \
	backends/openmp/kern_avx512.c
backends_openmp_la_CFLAGS = $(AM_CFLAGS) $(OPENMP_CFLAGS)
# -z nodelete: the OpenMP runtime keeps its worker threads parked inside
# its own code after a parallel region; unloading the module (and with it
# the runtime, when nothing else uses it) would pull that code from under
# them (SIGSEGV at the next wake-up).  dlclose() stays legal, it just
# leaves the module mapped.
backends_openmp_la_LDFLAGS = $(PE_MODULE_LDFLAGS) $(OPENMP_CFLAGS) \
	-Wl,-z,nodelete
backends_openmp_la_LIBADD = -lm
EXTRA_DIST += backends/openmp/README.md
