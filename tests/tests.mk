# Criterion tests, run through automake's TAP driver (one TAP line per test).
LOG_DRIVER = env AM_TAP_AWK='$(AWK)' $(SHELL) $(top_srcdir)/build-aux/tap-driver.sh
LOG_COMPILER = $(top_srcdir)/tests/run-test.sh
AM_TESTS_ENVIRONMENT = \
	PE_PLUGIN_PATH='$(abs_top_builddir)/plugins/.libs:$(abs_top_builddir)/backends/.libs'; \
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
tests_test_core_LDADD = $(TEST_LIBS) $(PTHREAD_LIBS)
tests_test_core_CFLAGS += $(PTHREAD_CFLAGS)
TESTS += tests/test_core
endif

# Deliberately broken test-only plugins (tests/plugins/broken.c), loaded by path.
if HAVE_CRITERION
check_LTLIBRARIES += tests/broken_abi_future.la
tests_broken_abi_future_la_SOURCES = tests/plugins/broken.c
tests_broken_abi_future_la_CPPFLAGS = $(AM_CPPFLAGS) -DBROKEN_ABI_FUTURE -DPE_TEST_PLUGIN_NAME='"broken_abi_future"'
tests_broken_abi_future_la_LDFLAGS = $(PE_TEST_MODULE_FLAGS)
check_LTLIBRARIES += tests/broken_small_struct.la
tests_broken_small_struct_la_SOURCES = tests/plugins/broken.c
tests_broken_small_struct_la_CPPFLAGS = $(AM_CPPFLAGS) -DBROKEN_SMALL_STRUCT -DPE_TEST_PLUGIN_NAME='"broken_small_struct"'
tests_broken_small_struct_la_LDFLAGS = $(PE_TEST_MODULE_FLAGS)
check_LTLIBRARIES += tests/broken_missing_callback.la
tests_broken_missing_callback_la_SOURCES = tests/plugins/broken.c
tests_broken_missing_callback_la_CPPFLAGS = $(AM_CPPFLAGS) -DBROKEN_MISSING_CALLBACK -DPE_TEST_PLUGIN_NAME='"broken_missing_callback"'
tests_broken_missing_callback_la_LDFLAGS = $(PE_TEST_MODULE_FLAGS)
check_LTLIBRARIES += tests/broken_no_entry.la
tests_broken_no_entry_la_SOURCES = tests/plugins/broken.c
tests_broken_no_entry_la_CPPFLAGS = $(AM_CPPFLAGS) -DBROKEN_NO_ENTRY -DPE_TEST_PLUGIN_NAME='"broken_no_entry"'
tests_broken_no_entry_la_LDFLAGS = -module -avoid-version -shared -no-undefined -rpath /nowhere
check_LTLIBRARIES += tests/broken_entry_error.la
tests_broken_entry_error_la_SOURCES = tests/plugins/broken.c
tests_broken_entry_error_la_CPPFLAGS = $(AM_CPPFLAGS) -DBROKEN_ENTRY_ERROR -DPE_TEST_PLUGIN_NAME='"broken_entry_error"'
tests_broken_entry_error_la_LDFLAGS = $(PE_TEST_MODULE_FLAGS)
check_LTLIBRARIES += tests/broken_entry_raw.la
tests_broken_entry_raw_la_SOURCES = tests/plugins/broken.c
tests_broken_entry_raw_la_CPPFLAGS = $(AM_CPPFLAGS) -DBROKEN_ENTRY_RAW -DPE_TEST_PLUGIN_NAME='"broken_entry_raw"'
tests_broken_entry_raw_la_LDFLAGS = $(PE_TEST_MODULE_FLAGS)
check_LTLIBRARIES += tests/broken_devices.la
tests_broken_devices_la_SOURCES = tests/plugins/broken.c
tests_broken_devices_la_CPPFLAGS = $(AM_CPPFLAGS) -DBROKEN_DEVICES -DPE_TEST_PLUGIN_NAME='"broken_devices"'
tests_broken_devices_la_LDFLAGS = $(PE_TEST_MODULE_FLAGS)
check_LTLIBRARIES += tests/broken_short_desc.la
tests_broken_short_desc_la_SOURCES = tests/plugins/broken.c
tests_broken_short_desc_la_CPPFLAGS = $(AM_CPPFLAGS) -DBROKEN_SHORT_DESC -DPE_TEST_PLUGIN_NAME='"broken_short_desc"'
tests_broken_short_desc_la_LDFLAGS = $(PE_TEST_MODULE_FLAGS)
check_LTLIBRARIES += tests/broken_short_param.la
tests_broken_short_param_la_SOURCES = tests/plugins/broken.c
tests_broken_short_param_la_CPPFLAGS = $(AM_CPPFLAGS) -DBROKEN_SHORT_PARAM -DPE_TEST_PLUGIN_NAME='"broken_short_param"'
tests_broken_short_param_la_LDFLAGS = $(PE_TEST_MODULE_FLAGS)
check_LTLIBRARIES += tests/broken_param_name.la
tests_broken_param_name_la_SOURCES = tests/plugins/broken.c
tests_broken_param_name_la_CPPFLAGS = $(AM_CPPFLAGS) -DBROKEN_PARAM_NAME -DPE_TEST_PLUGIN_NAME='"broken_param_name"'
tests_broken_param_name_la_LDFLAGS = $(PE_TEST_MODULE_FLAGS)
check_LTLIBRARIES += tests/broken_param_reserved.la
tests_broken_param_reserved_la_SOURCES = tests/plugins/broken.c
tests_broken_param_reserved_la_CPPFLAGS = $(AM_CPPFLAGS) -DBROKEN_PARAM_RESERVED -DPE_TEST_PLUGIN_NAME='"broken_param_reserved"'
tests_broken_param_reserved_la_LDFLAGS = $(PE_TEST_MODULE_FLAGS)
check_LTLIBRARIES += tests/broken_param_dup.la
tests_broken_param_dup_la_SOURCES = tests/plugins/broken.c
tests_broken_param_dup_la_CPPFLAGS = $(AM_CPPFLAGS) -DBROKEN_PARAM_DUP -DPE_TEST_PLUGIN_NAME='"broken_param_dup"'
tests_broken_param_dup_la_LDFLAGS = $(PE_TEST_MODULE_FLAGS)
check_LTLIBRARIES += tests/broken_param_range.la
tests_broken_param_range_la_SOURCES = tests/plugins/broken.c
tests_broken_param_range_la_CPPFLAGS = $(AM_CPPFLAGS) -DBROKEN_PARAM_RANGE -DPE_TEST_PLUGIN_NAME='"broken_param_range"'
tests_broken_param_range_la_LDFLAGS = $(PE_TEST_MODULE_FLAGS)
check_LTLIBRARIES += tests/broken_param_choices.la
tests_broken_param_choices_la_SOURCES = tests/plugins/broken.c
tests_broken_param_choices_la_CPPFLAGS = $(AM_CPPFLAGS) -DBROKEN_PARAM_CHOICES -DPE_TEST_PLUGIN_NAME='"broken_param_choices"'
tests_broken_param_choices_la_LDFLAGS = $(PE_TEST_MODULE_FLAGS)
check_LTLIBRARIES += tests/broken_param_default.la
tests_broken_param_default_la_SOURCES = tests/plugins/broken.c
tests_broken_param_default_la_CPPFLAGS = $(AM_CPPFLAGS) -DBROKEN_PARAM_DEFAULT -DPE_TEST_PLUGIN_NAME='"broken_param_default"'
tests_broken_param_default_la_LDFLAGS = $(PE_TEST_MODULE_FLAGS)
check_LTLIBRARIES += tests/broken_param_default_range.la
tests_broken_param_default_range_la_SOURCES = tests/plugins/broken.c
tests_broken_param_default_range_la_CPPFLAGS = $(AM_CPPFLAGS) -DBROKEN_PARAM_DEFAULT_RANGE -DPE_TEST_PLUGIN_NAME='"broken_param_default_range"'
tests_broken_param_default_range_la_LDFLAGS = $(PE_TEST_MODULE_FLAGS)
check_LTLIBRARIES += tests/broken_old_ops.la
tests_broken_old_ops_la_SOURCES = tests/plugins/broken.c
tests_broken_old_ops_la_CPPFLAGS = $(AM_CPPFLAGS) -DBROKEN_OLD_OPS -DPE_TEST_PLUGIN_NAME='"broken_old_ops"'
tests_broken_old_ops_la_LDFLAGS = $(PE_TEST_MODULE_FLAGS)
check_LTLIBRARIES += tests/broken_bad_param.la
tests_broken_bad_param_la_SOURCES = tests/plugins/broken.c
tests_broken_bad_param_la_CPPFLAGS = $(AM_CPPFLAGS) -DBROKEN_BAD_PARAM -DPE_TEST_PLUGIN_NAME='"broken_bad_param"'
tests_broken_bad_param_la_LDFLAGS = $(PE_TEST_MODULE_FLAGS)
endif

if HAVE_CRITERION
check_PROGRAMS += tests/test_schemes
tests_test_schemes_SOURCES = tests/test_schemes.c tests/helpers.h
tests_test_schemes_CFLAGS = $(TEST_CFLAGS)
tests_test_schemes_LDADD = $(TEST_LIBS)
TESTS += tests/test_schemes
endif

# Out-of-tree consumer through `make install` + pkg-config, and the plugin
# guide followed as written on the scheme template (docs/PLUGINS.md).
TESTS += tests/test_install.sh
EXTRA_DIST += tests/test_install.sh tests/consumer/consumer.c plugins/template/myscheme.c
# The template also built here, with the project's warnings (never installed).
check_LTLIBRARIES += tests/myscheme.la
tests_myscheme_la_SOURCES = plugins/template/myscheme.c
tests_myscheme_la_LDFLAGS = $(PE_TEST_MODULE_FLAGS)
tests_myscheme_la_LIBADD = -lm
AM_TESTS_ENVIRONMENT += \
	PE_TEST_CC='$(CC)'; export PE_TEST_CC; \
	PE_TEST_CFLAGS='$(CFLAGS)'; export PE_TEST_CFLAGS; \
	PE_TEST_LDFLAGS='$(LDFLAGS)'; export PE_TEST_LDFLAGS; \
	PE_TEST_LIBDIR='$(libdir)'; export PE_TEST_LIBDIR; \
	PE_TEST_BINDIR='$(bindir)'; export PE_TEST_BINDIR; \
	PE_TEST_PLUGINDIR='$(plugindir)'; export PE_TEST_PLUGINDIR; \
	MAKE='$(MAKE)'; export MAKE;

# Backends: golden cases and randomized oracle cross-checks.
if HAVE_CRITERION
check_PROGRAMS += tests/test_openmp tests/test_opencl
tests_test_openmp_SOURCES = tests/test_openmp.c tests/helpers.h
tests_test_openmp_CFLAGS = $(TEST_CFLAGS)
tests_test_openmp_LDADD = $(TEST_LIBS)
tests_test_opencl_SOURCES = tests/test_opencl.c tests/helpers.h
tests_test_opencl_CFLAGS = $(TEST_CFLAGS) $(PTHREAD_CFLAGS)
tests_test_opencl_LDADD = $(TEST_LIBS) $(PTHREAD_LIBS)
if BUILD_OPENCL
tests_test_opencl_CFLAGS += -DPE_TEST_HAVE_OPENCL=1
endif
TESTS += tests/test_openmp tests/test_opencl
endif

# Kernel caches the tests fill (PE_CACHE_DIR, POCL_CACHE_DIR above).
clean-local: clean-local-test-caches
clean-local-test-caches:
	-rm -rf tests/cache .cache
.PHONY: clean-local-test-caches

# The vulkan backend (lavapipe here), and once more under the validation layer.
if HAVE_CRITERION
check_PROGRAMS += tests/test_vulkan
tests_test_vulkan_SOURCES = tests/test_vulkan.c tests/helpers.h
tests_test_vulkan_CFLAGS = $(TEST_CFLAGS)
tests_test_vulkan_LDADD = $(TEST_LIBS)
if BUILD_VULKAN
tests_test_vulkan_CFLAGS += -DPE_TEST_HAVE_VULKAN=1
endif
TESTS += tests/test_vulkan tests/vulkan-validation.sh
endif

# Test-only scheme breaking the scheme contract on request (misbehave = ...).
if HAVE_CRITERION
check_LTLIBRARIES += tests/hostile_scheme.la
tests_hostile_scheme_la_SOURCES = tests/plugins/hostile_scheme.c
tests_hostile_scheme_la_LDFLAGS = $(PE_TEST_MODULE_FLAGS)
tests_hostile_scheme_la_LIBADD = -lm
endif
