# Reliability (issue 9; docs/RELIABILITY.md): limit and failure tests, fuzz
# crash replays, the ABI gate and valgrind in `make check`; the libFuzzer
# build and runs, ABI baselines and the full valgrind pass as make targets.

# ---- make check ----------------------------------------------------------
# Limits, hostile .npy files, all-or-nothing config edits, a backend that
# fails mid-run, contexts in threads.
if HAVE_CRITERION
check_PROGRAMS += tests/test_limits
tests_test_limits_SOURCES = tests/test_limits.c tests/helpers.h
tests_test_limits_CFLAGS = $(TEST_CFLAGS) $(PTHREAD_CFLAGS)
tests_test_limits_LDADD = $(TEST_LIBS) $(PTHREAD_LIBS)
TESTS += tests/test_limits
endif

# Test-only backend: the reference backend with one injected failure.
check_LTLIBRARIES += tests/failing.la
tests_failing_la_SOURCES = tests/plugins/failing.c tests/plugins/ref_wrapper.h
tests_failing_la_LDFLAGS = $(PE_TEST_MODULE_FLAGS)
tests_failing_la_LIBADD = -lm

# Fuzz targets replayed without libFuzzer over their seeds and every crash
# regression input (tests/fuzz/regressions/TARGET/).
PE_FUZZ_REPLAY_CPPFLAGS = $(AM_CPPFLAGS) -DPE_FUZZ_SRCDIR='"$(abs_top_srcdir)"'
check_PROGRAMS += tests/fuzz/replay-config tests/fuzz/replay-npy tests/fuzz/replay-sweep
tests_fuzz_replay_config_SOURCES = tests/fuzz/replay.c tests/fuzz/fuzz_config.c tests/fuzz/fuzz_common.h
tests_fuzz_replay_config_CPPFLAGS = $(PE_FUZZ_REPLAY_CPPFLAGS) -DPE_FUZZ_TARGET='"config"'
tests_fuzz_replay_config_LDADD = libpe/libpe.la
tests_fuzz_replay_npy_SOURCES = tests/fuzz/replay.c tests/fuzz/fuzz_npy.c tests/fuzz/fuzz_common.h
tests_fuzz_replay_npy_CPPFLAGS = $(PE_FUZZ_REPLAY_CPPFLAGS) -DPE_FUZZ_TARGET='"npy"'
tests_fuzz_replay_npy_LDADD = libpe/libpe.la
tests_fuzz_replay_sweep_SOURCES = tests/fuzz/replay.c tests/fuzz/fuzz_sweep.c tests/fuzz/fuzz_common.h
tests_fuzz_replay_sweep_CPPFLAGS = $(PE_FUZZ_REPLAY_CPPFLAGS) -DPE_FUZZ_TARGET='"sweep"'
tests_fuzz_replay_sweep_LDADD = libpe/libpe.la
TESTS += tests/fuzz/replay-config tests/fuzz/replay-npy tests/fuzz/replay-sweep

# pe-bench end to end: absurd values refused with exit 2, a failing backend
# among others reported as failed while the others run; the ABI gate (skips
# without abigail-tools); valgrind memcheck of pe-bench (skips without
# valgrind or in a sanitizer build).
TESTS += tests/test_bench_reliability.sh tests/abi/check.sh tests/abi/self_test.sh tests/valgrind.sh
AM_TESTS_ENVIRONMENT += \
	PE_TEST_LIBTOOL='$(abs_top_builddir)/libtool'; export PE_TEST_LIBTOOL;

EXTRA_DIST += tests/test_bench_reliability.sh tests/valgrind.sh tests/valgrind.supp \
	tests/abi/check.sh tests/abi/self_test.sh tests/abi/plugin_structs.c tests/abi/libpe.abi tests/abi/plugin-structs.abi \
	tests/fuzz/build.sh tests/fuzz/run.sh tests/fuzz/config.dict tests/fuzz/npy.dict tests/fuzz/sweep.dict \
	tests/fuzz/seeds tests/fuzz/regressions

# ---- make targets ----------------------------------------------------------
# libFuzzer targets (clang with ASan + UBSan), built without configure:
# the library sources are compiled straight into each fuzzer.
FUZZ_CC = clang
FUZZ_DIR = $(abs_top_builddir)/tests/fuzz/bin
FUZZ_TIME = 60
FUZZ_TARGETS =
fuzz: all
	FUZZ_CC='$(FUZZ_CC)' LIBPE_SOURCES='$(filter %.c,$(libpe_libpe_la_SOURCES))' \
	  $(SHELL) $(top_srcdir)/tests/fuzz/build.sh $(top_srcdir) $(top_builddir) $(FUZZ_DIR) $(FUZZ_TARGETS)
# FUZZ_TIME seconds per target (make fuzz-run FUZZ_TIME=3600 for a long run).
fuzz-run: fuzz
	$(SHELL) $(top_srcdir)/tests/fuzz/run.sh $(top_srcdir) $(FUZZ_DIR) $(FUZZ_TIME) $(FUZZ_TARGETS)

PE_ABI_ENV = PE_TEST_SRCDIR='$(abs_top_srcdir)' PE_TEST_BUILDDIR='$(abs_top_builddir)' PE_TEST_CC='$(CC)'
# Rewrite tests/abi/*.abi from this build (after a deliberate, reviewed
# change: docs/ABI.md).
abi-baseline: all
	$(PE_ABI_ENV) $(SHELL) $(top_srcdir)/tests/abi/check.sh --update
# The gate, failing (not skipping) when abigail-tools or debug info are missing.
abi-check: all
	$(PE_ABI_ENV) $(SHELL) $(top_srcdir)/tests/abi/check.sh --require

# valgrind memcheck of pe-bench on the reference and openmp backends.
valgrind-check: all
	$(PE_ABI_ENV) PE_TEST_LIBTOOL='$(abs_top_builddir)/libtool' \
	  PE_PLUGIN_PATH='$(abs_top_builddir)/plugins/.libs:$(abs_top_builddir)/backends/.libs' \
	  $(SHELL) $(top_srcdir)/tests/valgrind.sh --require

.PHONY: fuzz fuzz-run abi-baseline abi-check valgrind-check
