/* libpe vulkan backend: private declarations shared by its files.
 *
 *   vk_plugin.c  entry point, options, describe, enumerate
 *   vk_device.c  instance, validation messenger, device choice and creation
 *   vk_cache.c   VkPipelineCache persisted in the host's cache directory
 *   vk_run.c     prepare / execute / fetch / release: memory, pipelines,
 *                command buffers, timestamps
 */
#ifndef PE_VK_INTERNAL_H
#define PE_VK_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <vulkan/vulkan.h>

#include "libpe/pe_plugin.h"

#define VKB_NAME "vulkan"

/* Which attention kernel (the `kernel` option; auto picks by device type). */
enum vkb_kernel { VKB_KERNEL_AUTO = 0, VKB_KERNEL_CPU = 1, VKB_KERNEL_GPU = 2 };

/* Everything known about one physical device, for selection and reports. */
typedef struct vkb_physinfo {
  VkPhysicalDevice phys;
  uint32_t index;
  VkPhysicalDeviceProperties props;
  char driver_name[VK_MAX_DRIVER_NAME_SIZE];
  char driver_info[VK_MAX_DRIVER_INFO_SIZE];
  uint32_t subgroup_size, subgroup_ops, subgroup_stages;
  uint32_t min_subgroup, max_subgroup; /* 0: no size control */
  int size_control, full_subgroups;    /* features */
  int fp16;                            /* shaderFloat16 */
  int compute_family;                  /* -1: none */
  uint32_t timestamp_bits;
  VkDeviceSize device_local_heap;      /* bytes of the largest local heap */
} vkb_physinfo;

/* The backend (one open device). */
typedef struct vkb {
  const pe_host *host;
  VkInstance instance;
  VkDebugUtilsMessengerEXT messenger;
  int validation;
  /* Validation messages seen since the last check (messenger callback). */
  unsigned vmsg_count;
  char vmsg[1024];

  vkb_physinfo info;
  uint32_t device_count;
  char choice[384]; /* which device and why */

  VkDevice dev;
  VkQueue queue;
  VkCommandPool pool;
  VkPhysicalDeviceMemoryProperties mem;
  int lost; /* VK_ERROR_DEVICE_LOST seen: every later call fails */

  int kernel_opt;  /* the option: enum vkb_kernel */
  int kernel;      /* resolved: VKB_KERNEL_CPU or VKB_KERNEL_GPU */
  int64_t rows_opt, splits_opt, keys_opt;

  VkPipelineCache pcache;
  int use_cache;
  char cache_path[4096]; /* empty: not persisted */
  size_t cache_saved;    /* bytes written last (or loaded) */
  char cache_error[128]; /* why the last write failed; set: no more tries */

  char last_kernel[256]; /* kernel path of the last prepare, for describe */
} vkb;

/* Per-dispatch scalars, mirrored by PE_PUSH_FIELDS in pe_common.glsl. */
typedef struct vkb_push {
  uint32_t sq, skv, window, ntiles, ngroups, nsplit, grp0, hkv, xdim;
  float qscale;
  uint32_t total, prow_off, seq;
} vkb_push;

/* Copy a C string, truncating to fit (never overflows, always ends). */
static inline void vkb_copy(char *dst, size_t size, const char *src) {
  size_t n = 0;
  if (!size) return;
  while (n + 1 < size && src[n]) n++;
  for (size_t i = 0; i < n; i++) dst[i] = src[i];
  dst[n] = 0;
}

/* vk_device.c */
const char *vkb_result_name(VkResult r);
/* Map a Vulkan failure to a PE_E* code and message ("what: VK_ERROR_..."). */
int vkb_fail(vkb *b, VkResult r, char *err, size_t err_size, const char *what);
int vkb_instance_create(int validation, vkb *b, VkInstance *out, char *err,
                        size_t err_size);
int vkb_physinfo_get(VkPhysicalDevice phys, uint32_t index, vkb_physinfo *pi);
void vkb_physinfo_describe(const vkb_physinfo *pi, pe_device_info *info);
/* Pick a device: `want` is NULL (prefer discrete, integrated, then CPU), a
 * decimal index, or a case-insensitive name substring. */
int vkb_device_open(vkb *b, const char *want, char *err, size_t err_size);
void vkb_device_close(vkb *b);
/* PE_EDEVICE with the first validation message when any arrived. */
int vkb_check_validation(vkb *b, char *err, size_t err_size);

/* vk_cache.c */
void vkb_cache_open(vkb *b);
void vkb_cache_save(vkb *b);
void vkb_cache_close(vkb *b);

/* vk_run.c */
int vkb_prepare(void *backend, const pe_task *task, void **run, char *err,
                size_t err_size);
int vkb_execute(void *run, double *device_ms, char *err, size_t err_size);
int vkb_fetch(void *run, float *out0, float *out1, char *err,
              size_t err_size);
void vkb_release(void *run);

#endif /* PE_VK_INTERNAL_H */
