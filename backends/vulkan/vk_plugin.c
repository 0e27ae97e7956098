/* libpe vulkan backend: the module entry point, options and devices.
 *
 * Runs the NUMERICS.md contract with Vulkan compute shaders through the
 * Vulkan loader: lavapipe (Mesa's CPU driver) here, any GPU driver
 * elsewhere.  The shaders are GLSL files in this folder compiled to SPIR-V
 * at build time and embedded.  See vk_internal.h for the file map.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vk_internal.h"

/* ---- options ([backend] keys) ----------------------------------------- */

static const pe_param_decl opt_device = {
    .struct_size = sizeof(pe_param_decl),
    .type = PE_PARAM_STRING,
    .name = "device",
    .doc = "Vulkan device: index or name substring (default: first discrete "
           "GPU, else integrated GPU, else CPU)"};
static const pe_param_decl opt_kernel = {
    .struct_size = sizeof(pe_param_decl),
    .type = PE_PARAM_CHOICE,
    .name = "kernel",
    .doc = "attention shader: cpu (SIMD-style, for CPU drivers), gpu "
           "(shared-memory tiles), auto (by device type)",
    .default_value = "auto",
    .choices = "auto|cpu|gpu"};
static const pe_param_decl opt_validation = {
    .struct_size = sizeof(pe_param_decl),
    .type = PE_PARAM_BOOL,
    .name = "validation",
    .doc = "enable VK_LAYER_KHRONOS_validation; any message fails the run",
    .default_value = "false"};
static const pe_param_decl opt_rows = {
    .struct_size = sizeof(pe_param_decl),
    .type = PE_PARAM_INTEGER,
    .flags = PE_PARAM_HAS_MIN | PE_PARAM_HAS_MAX,
    .name = "tile_rows",
    .doc = "query rows per workgroup (0: auto, 16; the cpu kernel takes at "
           "most 16, and 2048 / head_dim beyond head_dim 128 (at least 4), "
           "as its compile time grows with rows x head_dim; the gpu kernel "
           "needs rows x 4 or 8 invocations within the device's workgroup "
           "limit, in whole subgroups)",
    .default_value = "0",
    .min = 0,
    .max = 256};
static const pe_param_decl opt_keys = {
    .struct_size = sizeof(pe_param_decl),
    .type = PE_PARAM_INTEGER,
    .flags = PE_PARAM_HAS_MIN | PE_PARAM_HAS_MAX,
    .name = "tile_keys",
    .doc = "gpu kernel: keys per shared-memory tile, a power of two that "
           "fits shared memory (8 x head_dim bytes per key); 0: 32, fewer "
           "if shared memory is short (kernel = cpu refuses a value; auto "
           "on a CPU driver warns that it does not apply)",
    .default_value = "0",
    .min = 0,
    .max = 256};
static const pe_param_decl opt_splits = {
    .struct_size = sizeof(pe_param_decl),
    .type = PE_PARAM_INTEGER,
    .flags = PE_PARAM_HAS_MIN | PE_PARAM_HAS_MAX,
    .name = "kv_splits",
    .doc = "split-KV: key ranges per row tile, merged afterwards (0: auto, "
           "when there are too few row tiles to fill the device)",
    .default_value = "0",
    .min = 0,
    .max = 1024};
static const pe_param_decl opt_cache = {
    .struct_size = sizeof(pe_param_decl),
    .type = PE_PARAM_BOOL,
    .name = "pipeline_cache",
    .doc = "keep compiled pipelines in the user cache directory",
    .default_value = "true"};

enum { O_DEVICE, O_KERNEL, O_VALIDATION, O_ROWS, O_KEYS, O_SPLITS, O_CACHE, O_COUNT };

static const pe_param_decl *const vkb_options[] = {
    &opt_device, &opt_kernel, &opt_validation, &opt_rows, &opt_keys,
    &opt_splits, &opt_cache, NULL};

static const pe_param_value *opt(const pe_param_value *const *v, int i) {
  return v && v[i] && v[i]->present ? v[i] : NULL;
}

/* ---- backend ops ------------------------------------------------------ */

static void vkb_close(void *backend) {
  vkb *b = backend;
  if (!b) return;
  if (b->dev) vkb_cache_close(b);
  vkb_device_close(b);
  free(b);
}

static int vkb_open(const pe_host *host, const pe_param_value *const *options,
                    void **backend, char *err, size_t err_size) {
  *backend = NULL;
  vkb *b = calloc(1, sizeof *b);
  if (!b) return pe_plugin_error(err, err_size, PE_ENOMEM, "out of memory");
  b->host = host;
  const pe_param_value *v;
  b->validation = (v = opt(options, O_VALIDATION)) ? v->integer != 0 : 0;
  b->kernel_opt = (v = opt(options, O_KERNEL)) ? (int)v->integer : VKB_KERNEL_AUTO;
  b->rows_opt = (v = opt(options, O_ROWS)) ? v->integer : 0;
  b->keys_opt = (v = opt(options, O_KEYS)) ? v->integer : 0;
  b->splits_opt = (v = opt(options, O_SPLITS)) ? v->integer : 0;
  b->use_cache = (v = opt(options, O_CACHE)) ? v->integer != 0 : 1;
  const char *want = (v = opt(options, O_DEVICE)) ? v->text : NULL;

  int rc = vkb_instance_create(b->validation, b, &b->instance, err, err_size);
  if (rc == 0) rc = vkb_device_open(b, want, err, err_size);
  if (rc < 0) {
    vkb_close(b);
    return rc;
  }
  if (b->kernel_opt == VKB_KERNEL_AUTO)
    b->kernel = b->info.props.deviceType == VK_PHYSICAL_DEVICE_TYPE_CPU
                    ? VKB_KERNEL_CPU
                    : VKB_KERNEL_GPU;
  else
    b->kernel = b->kernel_opt;
  vkb_cache_open(b);
  if ((rc = vkb_check_validation(b, err, err_size)) < 0) {
    vkb_close(b);
    return rc;
  }
  *backend = b;
  return 0;
}

/* Append `src` at *o in buf (truncating at the end). */
static void append(char *buf, size_t size, size_t *o, const char *src) {
  vkb_copy(buf + *o, size - *o, src);
  *o += strlen(buf + *o);
}

/* The pipeline cache's state, in a few words. */
static void cache_state(const vkb *b, char *out, size_t size) {
  if (!b->pcache)
    vkb_copy(out, size, "no pipeline cache");
  else if (!b->cache_path[0])
    vkb_copy(out, size, b->use_cache ? "pipeline cache not persisted (no "
                                       "cache directory)"
                                     : "pipeline cache not persisted "
                                       "(pipeline_cache = false)");
  else if (b->cache_error[0])
    snprintf(out, size, "pipeline cache not persisted (%s)", b->cache_error);
  else
    vkb_copy(out, size, "pipeline cache persisted");
}

/* details: the short facts first (choice, kernel, cache, validation, the
 * last kernel path), then the device limits, which may be cut at the end
 * of pe_device_info.details. */
static int vkb_describe(void *backend, pe_device_info *info) {
  vkb *b = backend;
  vkb_physinfo_describe(&b->info, info);
  char buf[2048], cache[192];
  cache_state(b, cache, sizeof cache);
  int n = snprintf(buf, sizeof buf, "%s; kernel %s (%s); %s; %s", b->choice,
                   b->kernel == VKB_KERNEL_CPU ? "cpu" : "gpu",
                   b->kernel_opt == VKB_KERNEL_AUTO
                       ? (b->kernel == VKB_KERNEL_CPU ? "auto: CPU driver"
                                                      : "auto: GPU")
                       : "kernel option",
                   cache, b->validation ? "validation on; " : "");
  size_t o = n > 0 && (size_t)n < sizeof buf ? (size_t)n : 0;
  if (b->last_kernel[0]) {
    append(buf, sizeof buf, &o, b->last_kernel);
    append(buf, sizeof buf, &o, "; ");
  }
  append(buf, sizeof buf, &o, info->details);
  vkb_copy(info->details, sizeof info->details, buf);
  return 0;
}

static int vkb_enumerate(const pe_host *host, pe_device_emit_fn emit, void *user,
                         char *err, size_t err_size) {
  (void)host;
  VkInstance inst;
  int rc = vkb_instance_create(0, NULL, &inst, err, err_size);
  if (rc < 0) return rc;
  uint32_t n = 0;
  VkResult r = vkEnumeratePhysicalDevices(inst, &n, NULL);
  VkPhysicalDevice *phys = n ? calloc(n, sizeof *phys) : NULL;
  if (r == VK_SUCCESS && n && phys) r = vkEnumeratePhysicalDevices(inst, &n, phys);
  if (r != VK_SUCCESS && r != VK_INCOMPLETE) {
    rc = vkb_fail(NULL, r, err, err_size, "vkEnumeratePhysicalDevices");
  } else if (!n) {
    rc = pe_plugin_error(err, err_size, PE_EUNSUPPORTED,
                         "unsupported: no device (the Vulkan loader found no "
                         "physical device)");
  } else if (!phys) {
    rc = pe_plugin_error(err, err_size, PE_ENOMEM, "out of memory");
  } else {
    for (uint32_t i = 0; i < n; i++) {
      vkb_physinfo pi;
      pe_device_info info;
      memset(&info, 0, sizeof info);
      info.struct_size = sizeof info;
      if (vkb_physinfo_get(phys[i], i, &pi) < 0) {
        rc = pe_plugin_error(err, err_size, PE_ENOMEM, "out of memory");
        break;
      }
      vkb_physinfo_describe(&pi, &info);
      emit(user, &info);
    }
  }
  free(phys);
  vkDestroyInstance(inst, NULL);
  return rc;
}

static const pe_backend_ops vkb_ops = {
    .struct_size = sizeof(pe_backend_ops),
    .options = vkb_options,
    .open = vkb_open,
    .close = vkb_close,
    .describe = vkb_describe,
    .prepare = vkb_prepare,
    .execute = vkb_execute,
    .fetch = vkb_fetch,
    .release = vkb_release,
    .enumerate = vkb_enumerate};

static const pe_plugin_desc vkb_desc = {
    .struct_size = sizeof(pe_plugin_desc),
    .abi_version = PE_ABI_VERSION,
    .kind = PE_PLUGIN_BACKEND,
    .name = VKB_NAME,
    .version = "1.0.0",
    .summary = "Vulkan compute (SPIR-V built from GLSL): lavapipe or any GPU",
    .backend = &vkb_ops};

PE_PLUGIN_EXPORT int pe_plugin_entry(uint32_t host_abi, const pe_host *host,
                                     const pe_plugin_desc **desc, char *err,
                                     size_t err_size);
PE_PLUGIN_EXPORT int pe_plugin_entry(uint32_t host_abi, const pe_host *host,
                                     const pe_plugin_desc **desc, char *err,
                                     size_t err_size) {
  (void)host;
  if (host_abi < PE_ABI_VERSION)
    return pe_plugin_error(err, err_size, PE_EABI,
                           "vulkan backend needs plugin ABI %u, host speaks %u",
                           PE_ABI_VERSION, host_abi);
  *desc = &vkb_desc;
  return 0;
}
