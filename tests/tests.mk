# Criterion tests, run through automake's TAP driver (one TAP line per test).
LOG_DRIVER = env AM_TAP_AWK='$(AWK)' $(SHELL) $(top_srcdir)/build-aux/tap-driver.sh
LOG_COMPILER = $(top_srcdir)/tests/run-test.sh
AM_TESTS_ENVIRONMENT = \
	PE_PLUGIN_PATH='$(abs_top_builddir)/plugins/.libs:$(abs_top_builddir)/backends/.libs:$(abs_top_builddir)/tests/.libs'; \
	export PE_PLUGIN_PATH; \
	PE_GOLDEN_DIR='$(abs_top_srcdir)/tests/golden'; export PE_GOLDEN_DIR; \
	PE_TEST_SRCDIR='$(abs_top_srcdir)'; export PE_TEST_SRCDIR; \
	PE_TEST_BUILDDIR='$(abs_top_builddir)'; export PE_TEST_BUILDDIR; \
	PE_CACHE_DIR='$(abs_top_builddir)/tests/cache'; export PE_CACHE_DIR; \
	POCL_CACHE_DIR='$(abs_top_builddir)/tests/cache/pocl'; export POCL_CACHE_DIR;
EXTRA_DIST += tests/run-test.sh tests/golden tests/helpers.h

if HAVE_CRITERION
TEST_CFLAGS = $(AM_CFLAGS) $(CRITERION_CFLAGS)
TEST_LIBS = libpe/libpe.la $(CRITERION_LIBS) -lm

check_PROGRAMS += tests/test_core
tests_test_core_SOURCES = tests/test_core.c tests/helpers.h
tests_test_core_CFLAGS = $(TEST_CFLAGS)
tests_test_core_LDADD = $(TEST_LIBS)
TESTS += tests/test_core
endif
