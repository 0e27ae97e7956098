# bench/roofline and `make bench`.
#
# bench/roofline measures this machine's fp32 FMA peak (GFLOP/s) and
# STREAM-copy bandwidth (GB/s) with a given number of OpenMP threads.
# `make bench` runs it, then pe-bench on each workload of bench/configs
# with the openmp backend and the same number of threads, and prints every
# result as a fraction of the roofline: prefill attention against the FMA
# peak, encode and decode (q_len = 1, K/V streamed) against STREAM copy.
#
#   make bench                       2 threads (the issue's setting)
#   make bench BENCH_THREADS=16      another thread count
#   make bench BENCH_CONFIGS='bench/configs/decode-32768.ini'
#
# The JSON reports and the roofline measurement are kept in bench-results/
# of the build tree.  Exit status: non-zero when a run failed or did not
# verify against the oracle.
noinst_PROGRAMS += bench/roofline
bench_roofline_SOURCES = bench/roofline.c
bench_roofline_CFLAGS = $(AM_CFLAGS) $(OPENMP_CFLAGS)
bench_roofline_LDFLAGS = $(OPENMP_CFLAGS)
bench_roofline_LDADD = -lm

BENCH_THREADS = 2
BENCH_CONFIGS = \
	bench/configs/prefill-causal-4096.ini \
	bench/configs/prefill-causal-1024.ini \
	bench/configs/prefill-gqa-4096.ini \
	bench/configs/encode-rope-8192.ini \
	bench/configs/decode-32768.ini
EXTRA_DIST += $(BENCH_CONFIGS)
BENCH_RESULTS = bench-results

bench: all bench/roofline$(EXEEXT)
	@$(MKDIR_P) $(BENCH_RESULTS) .cache/pocl .cache/libpe
	@echo "== bench/roofline --threads $(BENCH_THREADS)"
	@bench/roofline$(EXEEXT) --threads $(BENCH_THREADS) \
		> $(BENCH_RESULTS)/roofline.txt
	@cat $(BENCH_RESULTS)/roofline.txt
	@status=0; results=; \
	for c in $(BENCH_CONFIGS); do \
	  n=`basename $$c .ini`; \
	  echo "== pe-bench $$c --backend openmp (threads $(BENCH_THREADS))"; \
	  rm -f $(BENCH_RESULTS)/$$n.json; \
	  $(PE_RUN_ENV) bench/pe-bench$(EXEEXT) $(srcdir)/$$c --backend openmp \
	    --set backend.threads=$(BENCH_THREADS) --no-roofline \
	    --format json --output $(BENCH_RESULTS)/$$n.json || status=1; \
	  results="$$results $(BENCH_RESULTS)/$$n.json"; \
	done; \
	echo; \
	bench/roofline$(EXEEXT) --summary $(BENCH_RESULTS)/roofline.txt \
	  $$results || status=1; \
	exit $$status
.PHONY: bench
