# pe-bench (issue 8): sweep expansion, agreement between backends, result
# files (JSON round trip, CSV), compare, --resume and atomic writes under
# an interrupted run, plots.  docs/RESULTS.md, docs/CONFIG.md "[sweep]".

# Test-only backend: the reference backend, deliberately wrong in one row.
check_LTLIBRARIES += tests/wrong_backend.la
tests_wrong_backend_la_SOURCES = tests/plugins/wrong_backend.c tests/plugins/ref_wrapper.h
tests_wrong_backend_la_LDFLAGS = $(PE_TEST_MODULE_FLAGS)
tests_wrong_backend_la_LIBADD = -lm

# Test-only scheme: a warning from compute, printed once per cell.
check_LTLIBRARIES += tests/warner.la
tests_warner_la_SOURCES = tests/plugins/warner.c
tests_warner_la_LDFLAGS = $(PE_TEST_MODULE_FLAGS)

if HAVE_CRITERION
check_PROGRAMS += tests/test_bench
tests_test_bench_SOURCES = tests/test_bench.c tests/helpers.h $(PE_BENCH_PARTS)
tests_test_bench_CPPFLAGS = $(PE_BENCH_CPPFLAGS) -I$(top_srcdir)/bench
tests_test_bench_CFLAGS = $(TEST_CFLAGS) $(OPENMP_CFLAGS)
tests_test_bench_LDADD = $(TEST_LIBS)
tests_test_bench_LDFLAGS = $(OPENMP_CFLAGS)
TESTS += tests/test_bench
endif

# pe-bench end to end (TAP).
TESTS += tests/test_bench.sh
EXTRA_DIST += tests/test_bench.sh
