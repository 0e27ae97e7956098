# pe-bench and pe-probe.
bin_PROGRAMS += bench/pe-bench
bench_pe_bench_SOURCES = bench/pe-bench.c
bench_pe_bench_LDADD = libpe/libpe.la

# Run uninstalled programs against the plugins of this build tree.
PE_RUN_ENV = PE_PLUGIN_PATH='$(abs_top_builddir)/plugins/.libs:$(abs_top_builddir)/backends/.libs' \
	POCL_CACHE_DIR="$${POCL_CACHE_DIR:-$(abs_top_builddir)/.cache/pocl}" \
	PE_CACHE_DIR="$${PE_CACHE_DIR:-$(abs_top_builddir)/.cache/libpe}"

# The main job: the quickstart workload on every backend found.
quickstart: all
	@$(MKDIR_P) .cache/pocl .cache/libpe
	$(PE_RUN_ENV) $(builddir)/bench/pe-bench $(srcdir)/configs/quickstart.ini
.PHONY: quickstart
