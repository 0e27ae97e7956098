# pe-probe tests (Criterion; the probes run as subprocesses of bench/pe-probe).
if HAVE_CRITERION
check_PROGRAMS += tests/test_probe
tests_test_probe_SOURCES = tests/test_probe.c
tests_test_probe_CFLAGS = $(TEST_CFLAGS)
tests_test_probe_LDADD = $(TEST_LIBS)
TESTS += tests/test_probe
endif
