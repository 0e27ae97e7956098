# bench/roofline and `make bench`.
#
# bench/roofline measures this machine's fp32 FMA peak (GFLOP/s), STREAM
# copy and read-only bandwidth (GB/s) with a given number of OpenMP threads.
# `make bench` runs it, then pe-bench on each workload of bench/configs
# with the openmp and opencl backends (the same number of threads for
# openmp; PoCL uses every core), timed in interleaved rounds
# (pe-bench --interleave) so that their ratio holds on a shared machine,
# and prints every result as a fraction of the roofline (measured before
# and after the runs, the better of the two) -- prefill
# attention against the FMA peak, encode and decode (q_len = 1, K/V
# streamed) against STREAM copy, decode also against the read-only
# figure -- and each backend's speed relative to
# openmp in the same rounds.
#
#   make bench                       2 threads (the issue's setting)
#   make bench BENCH_THREADS=16      another thread count
#   make bench BENCH_BACKENDS=openmp only openmp (e.g. no OpenCL device)
#   make bench BENCH_CONFIGS='bench/configs/decode-32768.ini'
#
# pe-bench runs with OMP_WAIT_POLICY=passive unless the environment sets
# it: libgomp's idle threads otherwise spin after each openmp run and slow
# the backend timed next in the interleaved rounds (docs/RESULTS.md).
#
# The JSON reports and the roofline measurement are kept in bench-results/
# of the build tree.  Exit status: non-zero when a run failed or did not
# verify against the oracle (a backend without a device is reported as
# unsupported, not as a failure).
noinst_PROGRAMS += bench/roofline
bench_roofline_SOURCES = bench/roofline.c
bench_roofline_CFLAGS = $(AM_CFLAGS) $(OPENMP_CFLAGS)
bench_roofline_LDFLAGS = $(OPENMP_CFLAGS)
bench_roofline_LDADD = -lm

BENCH_THREADS = 2
BENCH_BACKENDS = openmp opencl
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
	backends=; for b in $(BENCH_BACKENDS); do backends="$$backends --backend $$b"; done; \
	for c in $(BENCH_CONFIGS); do \
	  n=`basename $$c .ini`; \
	  echo "== pe-bench $$c --interleave$$backends (openmp threads $(BENCH_THREADS))"; \
	  rm -f $(BENCH_RESULTS)/$$n.json; \
	  OMP_WAIT_POLICY="$${OMP_WAIT_POLICY:-passive}" \
	  $(PE_RUN_ENV) bench/pe-bench$(EXEEXT) $(srcdir)/$$c --interleave $$backends \
	    --set backend.threads=$(BENCH_THREADS) --no-roofline \
	    --format json --output $(BENCH_RESULTS)/$$n.json >/dev/null; \
	  test -s $(BENCH_RESULTS)/$$n.json || status=1; \
	  results="$$results $(BENCH_RESULTS)/$$n.json"; \
	done; \
	echo "== bench/roofline --threads $(BENCH_THREADS) (again: the best of both is the roofline)"; \
	bench/roofline$(EXEEXT) --threads $(BENCH_THREADS) \
	  > $(BENCH_RESULTS)/roofline-after.txt; \
	echo; \
	bench/roofline$(EXEEXT) --summary $(BENCH_RESULTS)/roofline.txt \
	  $(BENCH_RESULTS)/roofline-after.txt $$results || status=1; \
	exit $$status
.PHONY: bench
