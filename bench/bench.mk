# pe-bench and pe-probe.
bin_PROGRAMS += bench/pe-bench
bench_pe_bench_SOURCES = bench/pe-bench.c
bench_pe_bench_LDADD = libpe/libpe.la
