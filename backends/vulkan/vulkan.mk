# backends/vulkan: the Vulkan compute backend, backends/vulkan.la.
#
# The kernels are GLSL compute shaders (*.comp, sharing *.glsl includes).
# At build time glslangValidator compiles each to SPIR-V, spirv-val checks
# the binary, and glslangValidator --vn embeds it as a uint32_t array in
# backends/vulkan/NAME.spv.h (build dir), which vk_run.c includes.
vk_shader_names = attn_cpu attn_gpu attn_combine encode
VK_SHADER_SRC = \
	backends/vulkan/attn_cpu.comp \
	backends/vulkan/attn_gpu.comp \
	backends/vulkan/attn_combine.comp \
	backends/vulkan/encode.comp
VK_SHADER_INC = \
	backends/vulkan/pe_common.glsl \
	backends/vulkan/pe_encode.glsl
vk_spv_built = \
	backends/vulkan/attn_cpu.spv.h \
	backends/vulkan/attn_gpu.spv.h \
	backends/vulkan/attn_combine.spv.h \
	backends/vulkan/encode.spv.h
EXTRA_DIST += $(VK_SHADER_SRC) $(VK_SHADER_INC) tests/vulkan-validation.sh

if BUILD_VULKAN
plugin_LTLIBRARIES += backends/vulkan.la
backends_vulkan_la_SOURCES = \
	backends/vulkan/vk_internal.h \
	backends/vulkan/vk_plugin.c \
	backends/vulkan/vk_device.c \
	backends/vulkan/vk_cache.c \
	backends/vulkan/vk_run.c
nodist_backends_vulkan_la_SOURCES = $(vk_spv_built)
backends_vulkan_la_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_builddir)
backends_vulkan_la_CFLAGS = $(AM_CFLAGS) $(VULKAN_CFLAGS)
# -z nodelete: the Vulkan loader and its drivers (lavapipe's LLVM) keep process-wide state
# (worker threads, caches) that must not be unmapped when a context unloads
# the module; dlclose still succeeds, the code stays mapped.
backends_vulkan_la_LDFLAGS = $(PE_MODULE_LDFLAGS) -Wl,-z,nodelete
backends_vulkan_la_LIBADD = $(VULKAN_LIBS) -lm
BUILT_SOURCES += $(vk_spv_built)
CLEANFILES += $(vk_spv_built) \
	backends/vulkan/attn_cpu.spv backends/vulkan/attn_gpu.spv \
	backends/vulkan/attn_combine.spv backends/vulkan/encode.spv

# $(vk_spv_rule): NAME.comp -> NAME.spv (validated) -> NAME.spv.h
vk_glslc = $(GLSLANG) -V --target-env vulkan1.1 --quiet
vk_spv_rule = \
	n=`basename $@ .spv.h`; \
	src=$(srcdir)/backends/vulkan/$$n.comp; \
	$(MKDIR_P) backends/vulkan && \
	$(vk_glslc) -o backends/vulkan/$$n.spv $$src && \
	$(SPIRV_VAL) --target-env vulkan1.1 backends/vulkan/$$n.spv && \
	$(vk_glslc) --vn vkb_spv_$$n -o $@.tmp $$src && \
	mv -f $@.tmp $@

backends/vulkan/attn_cpu.spv.h: backends/vulkan/attn_cpu.comp $(VK_SHADER_INC)
	$(AM_V_GEN)$(vk_spv_rule)
backends/vulkan/attn_gpu.spv.h: backends/vulkan/attn_gpu.comp $(VK_SHADER_INC)
	$(AM_V_GEN)$(vk_spv_rule)
backends/vulkan/attn_combine.spv.h: backends/vulkan/attn_combine.comp $(VK_SHADER_INC)
	$(AM_V_GEN)$(vk_spv_rule)
backends/vulkan/encode.spv.h: backends/vulkan/encode.comp $(VK_SHADER_INC)
	$(AM_V_GEN)$(vk_spv_rule)
endif
