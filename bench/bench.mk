# pe-bench and pe-probe.
bin_PROGRAMS += bench/pe-bench
# The parts shared with tests/test_bench (records, JSON, sweeps' runner).
PE_BENCH_PARTS = bench/bench.h bench/bench_doc.c bench/bench_json.c bench/bench_jread.c \
	bench/bench_text.c bench/bench_machine.c bench/bench_agree.c bench/bench_run.c \
	bench/bench_compare.c bench/bench_plot.c bench/bench_svg.c bench/bench_svg.h bench/bench_log.c \
	libpe/json_write.h libpe/text_fit.h
# libpe/json_write.h, libpe/text_fit.h: private headers libpe uses too
PE_BENCH_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/libpe
bench_pe_bench_SOURCES = bench/pe-bench.c $(PE_BENCH_PARTS)
bench_pe_bench_CPPFLAGS = $(PE_BENCH_CPPFLAGS)
bench_pe_bench_CFLAGS = $(AM_CFLAGS) $(OPENMP_CFLAGS)
bench_pe_bench_LDADD = libpe/libpe.la -lm
bench_pe_bench_LDFLAGS = $(OPENMP_CFLAGS)

# Shipped sweeps (docs/CONFIG.md "[sweep]").
sweepsdir = $(pkgdatadir)/configs/sweeps
dist_sweeps_DATA = configs/sweeps/schemes-lengths.ini configs/sweeps/prefill-decode.ini \
	configs/sweeps/gqa-ratios.ini configs/sweeps/windows.ini

# Run uninstalled programs against the plugins of this build tree.
PE_RUN_ENV = PE_PLUGIN_PATH='$(abs_top_builddir)/plugins/.libs:$(abs_top_builddir)/backends/.libs' \
	POCL_CACHE_DIR="$${POCL_CACHE_DIR:-$(abs_top_builddir)/.cache/pocl}" \
	PE_CACHE_DIR="$${PE_CACHE_DIR:-$(abs_top_builddir)/.cache/libpe}"

# The main job: the quickstart workload on every backend found.
quickstart: all
	@$(MKDIR_P) .cache/pocl .cache/libpe
	$(PE_RUN_ENV) $(builddir)/bench/pe-bench $(srcdir)/configs/quickstart.ini
.PHONY: quickstart
