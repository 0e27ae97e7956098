# backends/opencl: the OpenCL backend module (opencl.so), built when
# configure finds the ICD loader and headers (--enable-opencl, default auto).
#
# The kernels live in backends/opencl/*.cl and are embedded at build time
# into the generated opencl_kernels.c (embed.sh: POSIX sh + od + sed, so it
# works in `make distcheck`: read-only srcdir, separate builddir).

PE_OCL_CL_FILES = \
	backends/opencl/common.cl \
	backends/opencl/attention_cpu.cl \
	backends/opencl/attention_gpu.cl \
	backends/opencl/encode.cl

EXTRA_DIST += $(PE_OCL_CL_FILES) backends/opencl/embed.sh \
	backends/opencl/README.md
CLEANFILES += backends/opencl/opencl_kernels.c

if BUILD_OPENCL
plugin_LTLIBRARIES += backends/opencl.la
backends_opencl_la_SOURCES = \
	backends/opencl/ocl_internal.h \
	backends/opencl/opencl.c \
	backends/opencl/cache.c
nodist_backends_opencl_la_SOURCES = backends/opencl/opencl_kernels.c
backends_opencl_la_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/backends/opencl
backends_opencl_la_CFLAGS = $(AM_CFLAGS) $(OPENCL_CFLAGS) $(PTHREAD_CFLAGS) \
	-DCL_TARGET_OPENCL_VERSION=120
# -z nodelete: the OpenCL ICD loader and PoCL keep process-wide state
# (worker threads, caches) that must not be unmapped when a context unloads
# the module; dlclose still succeeds, the code stays mapped.
backends_opencl_la_LDFLAGS = $(PE_MODULE_LDFLAGS) -Wl,-z,nodelete
backends_opencl_la_LIBADD = $(OPENCL_LIBS) $(PTHREAD_LIBS)
BUILT_SOURCES += backends/opencl/opencl_kernels.c
endif

PE_OCL_CL_SRCDIR = \
	$(srcdir)/backends/opencl/common.cl \
	$(srcdir)/backends/opencl/attention_cpu.cl \
	$(srcdir)/backends/opencl/attention_gpu.cl \
	$(srcdir)/backends/opencl/encode.cl

backends/opencl/opencl_kernels.c: $(PE_OCL_CL_SRCDIR) \
		$(srcdir)/backends/opencl/embed.sh
	$(AM_V_GEN)$(MKDIR_P) backends/opencl && \
	$(SHELL) $(srcdir)/backends/opencl/embed.sh $(PE_OCL_CL_SRCDIR) \
		> $@-t && mv -f $@-t $@
