# pe-probe: research probes of the encodings (docs/PROBES.md).
bin_PROGRAMS += bench/pe-probe
bench_pe_probe_SOURCES = bench/pe-probe.c bench/probe/probe.h \
	bench/probe/doc.c bench/probe/cfg.c bench/probe/table.c bench/probe/table.h \
	bench/probe/svg.c bench/probe/svg.h \
	bench/probe/freq.c bench/probe/perm.c bench/probe/relative.c \
	bench/probe/decay.c bench/probe/base.c bench/probe/extrapolate.c
bench_pe_probe_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/bench
bench_pe_probe_CFLAGS = $(AM_CFLAGS)
bench_pe_probe_LDADD = bench/needle/libneedle.la libpe/libpe.la $(INIH_LIBS) -lm
bench_pe_probe_LDFLAGS = $(OPENMP_CFLAGS)
if HAVE_LAPACKE
bench_pe_probe_CFLAGS += $(LAPACKE_CFLAGS)
bench_pe_probe_LDADD += $(LAPACKE_LIBS)
endif
