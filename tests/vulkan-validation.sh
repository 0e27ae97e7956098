#!/bin/sh
# make check: tests/test_vulkan once more with VK_LAYER_KHRONOS_validation.
# PE_VK_VALIDATION=1 makes every test run the backend with
# `validation = true`: the layer is enabled with a debug-utils messenger
# that turns any validation message (warning or error) into a failed run,
# so a single message fails the test that caused it.  Where the layer is
# not installed, or there is no Vulkan device, the tests skip and say why.
bin="${PE_TEST_BUILDDIR:-.}/tests/test_vulkan"
if [ ! -x "$bin" ]; then
  echo "1..0 # SKIP $bin was not built (Criterion missing?)"
  exit 0
fi
PE_VK_VALIDATION=1
export PE_VK_VALIDATION
exec "$bin" --tap=-
