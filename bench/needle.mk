# needle: a tiny transformer trained here on a synthetic needle-in-a-haystack
# task, evaluated across context-extension schemes through libpe backends
# (docs/NEEDLE.md).  A convenience library with pe_needle_main() for
# `pe-probe needle`, and the same as a program of its own, `pe-needle`.
noinst_LTLIBRARIES += bench/needle/libneedle.la
bench_needle_libneedle_la_SOURCES = bench/needle/needle.h bench/needle/simd.h bench/needle/cfg.c \
	bench/needle/task.c bench/needle/layers.c bench/needle/attn.c bench/needle/model.c \
	bench/needle/scheme.c bench/needle/train.c bench/needle/eval.c bench/needle/report.c \
	bench/needle/svg.c bench/needle/main.c
bench_needle_libneedle_la_CFLAGS = $(AM_CFLAGS) $(OPENMP_CFLAGS) $(INIH_CFLAGS)
bench_needle_libneedle_la_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/libpe
# What a program linking libneedle.la adds to its LDADD / LDFLAGS.
PE_NEEDLE_LINK = bench/needle/libneedle.la libpe/libpe.la $(INIH_LIBS) -lm
PE_NEEDLE_LINKFLAGS = $(OPENMP_CFLAGS)

bin_PROGRAMS += bench/pe-needle
bench_pe_needle_SOURCES = bench/needle/pe-needle.c
bench_pe_needle_CFLAGS = $(AM_CFLAGS) $(OPENMP_CFLAGS)
bench_pe_needle_LDFLAGS = $(PE_NEEDLE_LINKFLAGS)
bench_pe_needle_LDADD = $(PE_NEEDLE_LINK)

# Needle configs and the shipped trained model, installed next to the other
# configs (the configs find the model as ../models/needle-rope).
needleconfigsdir = $(pkgdatadir)/configs/needle
dist_needleconfigs_DATA = $(wildcard $(srcdir)/configs/needle/*.ini)
needlemodeldir = $(pkgdatadir)/configs/models/needle-rope
dist_needlemodel_DATA = $(wildcard $(srcdir)/configs/models/needle-rope/*.ini) \
	$(wildcard $(srcdir)/configs/models/needle-rope/*.npy)

# Tests: gradient checks, deterministic tiny training, save/load, backends.
if HAVE_CRITERION
check_PROGRAMS += tests/test_needle
tests_test_needle_SOURCES = tests/test_needle.c tests/helpers.h
tests_test_needle_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/bench/needle
tests_test_needle_CFLAGS = $(TEST_CFLAGS) $(OPENMP_CFLAGS)
tests_test_needle_LDFLAGS = $(PE_NEEDLE_LINKFLAGS)
tests_test_needle_LDADD = bench/needle/libneedle.la $(TEST_LIBS) $(INIH_LIBS)
TESTS += tests/test_needle
endif
# The shipped model's evaluation record (docs/NEEDLE.md "Results").
EXTRA_DIST += configs/models/needle-rope/eval/needle.csv \
	configs/models/needle-rope/eval/report.txt configs/models/needle-rope/eval/compare.svg
