# libpe core: libpe.so, its public headers and pkg-config file.
lib_LTLIBRARIES += libpe/libpe.la
libpe_libpe_la_SOURCES = \
	libpe/internal.h \
	libpe/json_write.h \
	libpe/text_fit.h \
	libpe/errors.c \
	libpe/util.c \
	libpe/ctx.c \
	libpe/plugin.c \
	libpe/params.c \
	libpe/settings.c \
	libpe/config.c \
	libpe/npy.c \
	libpe/random.c \
	libpe/workload.c \
	libpe/oracle.c \
	libpe/run.c \
	libpe/report.c \
	libpe/sweep.c
libpe_libpe_la_CPPFLAGS = $(AM_CPPFLAGS) -DPE_BUILDING_LIBPE \
	-DPE_PLUGIN_DIR='"$(plugindir)"' $(INIH_CFLAGS)
libpe_libpe_la_CFLAGS = $(AM_CFLAGS) $(PTHREAD_CFLAGS)
libpe_libpe_la_LDFLAGS = -no-undefined -version-info $(PE_LT_VERSION_INFO) \
	-export-symbols-regex '^pe_'
libpe_libpe_la_LIBADD = $(INIH_LIBS) $(PTHREAD_LIBS) -lm

include_HEADERS = libpe/include/libpe.h
pe_public_headersdir = $(includedir)/libpe
pe_public_headers_HEADERS = \
	libpe/include/libpe/pe_errors.h \
	libpe/include/libpe/pe_plugin.h
nodist_pe_public_headers_HEADERS = libpe/include/libpe/pe_version.h
EXTRA_DIST += libpe/include/libpe/pe_version.h.in
