/* libpe vulkan backend: instance, validation messenger, device choice.
 *
 * Device choice is deterministic: an explicit `device` option (index or
 * case-insensitive name substring) or, without one, the first device of the
 * best type: discrete GPU, integrated GPU, virtual GPU, CPU, other.  A
 * device must offer Vulkan 1.1, a compute queue and subgroup
 * basic + shuffle operations in compute shaders; when the choice is
 * explicit and the device cannot, that is the answer (no fallback).
 */
#define _GNU_SOURCE /* dl_iterate_phdr, RTLD_NOLOAD, RTLD_NODELETE */
#include "config.h"

#include <ctype.h>
#include <dlfcn.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vk_internal.h"

const char *vkb_result_name(VkResult r) {
  switch (r) {
#define VKB_R_(x) \
  case x:         \
    return #x;
    VKB_R_(VK_SUCCESS)
    VKB_R_(VK_NOT_READY)
    VKB_R_(VK_TIMEOUT)
    VKB_R_(VK_INCOMPLETE)
    VKB_R_(VK_ERROR_OUT_OF_HOST_MEMORY)
    VKB_R_(VK_ERROR_OUT_OF_DEVICE_MEMORY)
    VKB_R_(VK_ERROR_INITIALIZATION_FAILED)
    VKB_R_(VK_ERROR_DEVICE_LOST)
    VKB_R_(VK_ERROR_MEMORY_MAP_FAILED)
    VKB_R_(VK_ERROR_LAYER_NOT_PRESENT)
    VKB_R_(VK_ERROR_EXTENSION_NOT_PRESENT)
    VKB_R_(VK_ERROR_FEATURE_NOT_PRESENT)
    VKB_R_(VK_ERROR_INCOMPATIBLE_DRIVER)
    VKB_R_(VK_ERROR_TOO_MANY_OBJECTS)
    VKB_R_(VK_ERROR_FORMAT_NOT_SUPPORTED)
    VKB_R_(VK_ERROR_FRAGMENTED_POOL)
    VKB_R_(VK_ERROR_UNKNOWN)
    VKB_R_(VK_ERROR_OUT_OF_POOL_MEMORY)
    VKB_R_(VK_ERROR_INVALID_EXTERNAL_HANDLE)
    VKB_R_(VK_ERROR_FRAGMENTATION)
    VKB_R_(VK_PIPELINE_COMPILE_REQUIRED)
#undef VKB_R_
    default:
      return "VK_ERROR_(unknown)";
  }
}

int vkb_fail(vkb *b, VkResult r, char *err, size_t err_size,
             const char *what) {
  const char *hint = "";
  int code = PE_EDEVICE;
  switch (r) {
    case VK_ERROR_DEVICE_LOST:
      if (b) b->lost = 1;
      hint = " (device lost: the driver reset or removed the device)";
      break;
    case VK_ERROR_OUT_OF_DEVICE_MEMORY:
      hint = " (out of device memory)";
      break;
    case VK_ERROR_OUT_OF_HOST_MEMORY:
      hint = " (out of host memory)";
      code = PE_ENOMEM;
      break;
    case VK_ERROR_INCOMPATIBLE_DRIVER:
      hint = " (no Vulkan driver (ICD) installed, or none supports Vulkan 1.1)";
      code = PE_EUNSUPPORTED;
      break;
    case VK_ERROR_LAYER_NOT_PRESENT:
    case VK_ERROR_EXTENSION_NOT_PRESENT:
    case VK_ERROR_FEATURE_NOT_PRESENT:
      code = PE_EUNSUPPORTED;
      break;
    default:
      break;
  }
  return pe_plugin_error(err, err_size, code, "%s%s: %s (%d)%s",
                         code == PE_EUNSUPPORTED ? "unsupported: " : "", what,
                         vkb_result_name(r), (int)r, hint);
}

/* ---- validation ------------------------------------------------------- */

static VKAPI_ATTR VkBool32 VKAPI_CALL
vkb_messenger_cb(VkDebugUtilsMessageSeverityFlagBitsEXT severity,
                 VkDebugUtilsMessageTypeFlagsEXT types,
                 const VkDebugUtilsMessengerCallbackDataEXT *data, void *user) {
  vkb *b = user;
  (void)types;
  if (!b) return VK_FALSE;
  if (b->vmsg_count++ == 0)
    snprintf(b->vmsg, sizeof b->vmsg, "%s: %s",
             severity >= VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT
                 ? "error"
                 : "warning",
             data && data->pMessage ? data->pMessage : "(no text)");
  pe_plugin_log(b->host, PE_LOG_ERROR, VKB_NAME, "validation: %s",
                data && data->pMessage ? data->pMessage : "(no text)");
  return VK_FALSE;
}

static void vkb_messenger_info(vkb *b, VkDebugUtilsMessengerCreateInfoEXT *mi) {
  memset(mi, 0, sizeof *mi);
  mi->sType = VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT;
  mi->messageSeverity = VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT |
                        VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT;
  mi->messageType = VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT |
                    VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT |
                    VK_DEBUG_UTILS_MESSAGE_TYPE_PERFORMANCE_BIT_EXT;
  mi->pfnUserCallback = vkb_messenger_cb;
  mi->pUserData = b;
}

int vkb_check_validation(vkb *b, char *err, size_t err_size) {
  if (!b->vmsg_count) return 0;
  unsigned n = b->vmsg_count;
  b->vmsg_count = 0;
  return pe_plugin_error(err, err_size, PE_EDEVICE,
                         "Vulkan validation reported %u message%s; first: %s",
                         n, n == 1 ? "" : "s", b->vmsg);
}

static int has_layer(const char *name) {
  uint32_t n = 0;
  int found = 0;
  if (vkEnumerateInstanceLayerProperties(&n, NULL) != VK_SUCCESS || !n) return 0;
  VkLayerProperties *lp = calloc(n, sizeof *lp);
  if (!lp) return 0;
  if (vkEnumerateInstanceLayerProperties(&n, lp) == VK_SUCCESS)
    for (uint32_t i = 0; i < n && !found; i++)
      found = !strcmp(lp[i].layerName, name);
  free(lp);
  return found;
}

/* `b` may be NULL (enumerate): no validation then. */
/* The Vulkan loader dlopens the driver (ICD) in vkCreateInstance and
 * dlcloses it in vkDestroyInstance.  Drivers keep process-wide state they
 * never free (lavapipe: LLVM), which is why this module is linked with
 * -z nodelete; once the driver is unloaded that memory is reported by
 * LeakSanitizer against a module with no name, which no suppression can
 * match, and every later instance loads the driver (and LLVM) again.  So
 * the objects an instance creation loads are pinned for the life of the
 * process, like this module: dlopen(RTLD_NOLOAD | RTLD_NODELETE) on an
 * object already loaded marks it never to be unloaded. */
typedef struct vkb_objects {
  char **names;
  size_t n, cap;
} vkb_objects;

static int add_object(struct dl_phdr_info *info, size_t size, void *user) {
  (void)size;
  vkb_objects *o = user;
  if (!info->dlpi_name || !info->dlpi_name[0]) return 0; /* the program */
  if (o->n == o->cap) {
    size_t cap = o->cap ? 2 * o->cap : 64;
    char **names = realloc(o->names, cap * sizeof *names);
    if (!names) return 1; /* stop: pinning is best effort */
    o->names = names;
    o->cap = cap;
  }
  if ((o->names[o->n] = strdup(info->dlpi_name)) != NULL) o->n++;
  return 0;
}

static void objects_free(vkb_objects *o) {
  for (size_t i = 0; i < o->n; i++) free(o->names[i]);
  free(o->names);
}

static void pin_new_objects(const vkb_objects *before) {
  vkb_objects now = {0};
  dl_iterate_phdr(add_object, &now);
  for (size_t i = 0; i < now.n; i++) {
    size_t j = 0;
    while (j < before->n && strcmp(before->names[j], now.names[i])) j++;
    if (j < before->n) continue;
    void *h = dlopen(now.names[i], RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);
    if (h) dlclose(h); /* drops our reference; the object stays */
  }
  objects_free(&now);
}

int vkb_instance_create(int validation, vkb *b, VkInstance *out, char *err,
                        size_t err_size) {
  static const char *layer = "VK_LAYER_KHRONOS_validation";
  static const char *ext = VK_EXT_DEBUG_UTILS_EXTENSION_NAME;
  uint32_t loader = VK_API_VERSION_1_0;
  PFN_vkEnumerateInstanceVersion eiv = (PFN_vkEnumerateInstanceVersion)(
      void (*)(void))vkGetInstanceProcAddr(NULL, "vkEnumerateInstanceVersion");
  if (eiv && eiv(&loader) != VK_SUCCESS) loader = VK_API_VERSION_1_0;
  if (loader < VK_API_VERSION_1_1)
    return pe_plugin_error(err, err_size, PE_EUNSUPPORTED,
                           "unsupported: the Vulkan loader speaks %u.%u; 1.1 "
                           "is needed",
                           VK_API_VERSION_MAJOR(loader),
                           VK_API_VERSION_MINOR(loader));
  VkApplicationInfo ai = {.sType = VK_STRUCTURE_TYPE_APPLICATION_INFO,
                          .pApplicationName = "libpe",
                          .pEngineName = "libpe",
                          .apiVersion = loader < VK_API_VERSION_1_3
                                            ? loader
                                            : VK_API_VERSION_1_3};
  VkInstanceCreateInfo ci = {.sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO,
                             .pApplicationInfo = &ai};
  VkDebugUtilsMessengerCreateInfoEXT mi;
  if (validation && b) {
    if (!has_layer(layer))
      return pe_plugin_error(err, err_size, PE_EUNSUPPORTED,
                             "unsupported: validation = true but %s is not "
                             "installed (Debian: vulkan-validationlayers)",
                             layer);
    vkb_messenger_info(b, &mi);
    ci.pNext = &mi; /* messages from vkCreate/DestroyInstance too */
    ci.enabledLayerCount = 1;
    ci.ppEnabledLayerNames = &layer;
    ci.enabledExtensionCount = 1;
    ci.ppEnabledExtensionNames = &ext;
  }
  vkb_objects before = {0};
  dl_iterate_phdr(add_object, &before);
  VkResult r = vkCreateInstance(&ci, NULL, out);
  if (r == VK_SUCCESS) pin_new_objects(&before);
  objects_free(&before);
  if (r != VK_SUCCESS) {
    *out = VK_NULL_HANDLE;
    if (r == VK_ERROR_INCOMPATIBLE_DRIVER)
      return pe_plugin_error(err, err_size, PE_EUNSUPPORTED,
                             "unsupported: no device (vkCreateInstance: "
                             "VK_ERROR_INCOMPATIBLE_DRIVER (-9): no Vulkan "
                             "driver (ICD) installed)");
    return vkb_fail(b, r, err, err_size, "vkCreateInstance");
  }
  if (validation && b) {
    PFN_vkCreateDebugUtilsMessengerEXT cm =
        (PFN_vkCreateDebugUtilsMessengerEXT)vkGetInstanceProcAddr(
            *out, "vkCreateDebugUtilsMessengerEXT");
    if (!cm || (r = cm(*out, &mi, NULL, &b->messenger)) != VK_SUCCESS) {
      vkDestroyInstance(*out, NULL);
      *out = VK_NULL_HANDLE;
      return cm ? vkb_fail(b, r, err, err_size, "vkCreateDebugUtilsMessengerEXT")
                : pe_plugin_error(err, err_size, PE_EUNSUPPORTED,
                                  "unsupported: %s without "
                                  "vkCreateDebugUtilsMessengerEXT",
                                  ext);
    }
  }
  return 0;
}

/* ---- physical devices ------------------------------------------------- */

static int has_device_ext(VkPhysicalDevice phys, const char *name) {
  uint32_t n = 0;
  int found = 0;
  if (vkEnumerateDeviceExtensionProperties(phys, NULL, &n, NULL) != VK_SUCCESS)
    return 0;
  VkExtensionProperties *ep = calloc(n ? n : 1, sizeof *ep);
  if (!ep) return 0;
  if (vkEnumerateDeviceExtensionProperties(phys, NULL, &n, ep) == VK_SUCCESS)
    for (uint32_t i = 0; i < n && !found; i++)
      found = !strcmp(ep[i].extensionName, name);
  free(ep);
  return found;
}

int vkb_physinfo_get(VkPhysicalDevice phys, uint32_t index, vkb_physinfo *pi) {
  memset(pi, 0, sizeof *pi);
  pi->phys = phys;
  pi->index = index;
  pi->compute_family = -1;
  vkGetPhysicalDeviceProperties(phys, &pi->props);
  uint32_t api = pi->props.apiVersion;
  if (api < VK_API_VERSION_1_1) return 0;
  int v12 = api >= VK_API_VERSION_1_2, v13 = api >= VK_API_VERSION_1_3;
  int ext_sc = !v13 && has_device_ext(phys, VK_EXT_SUBGROUP_SIZE_CONTROL_EXTENSION_NAME);
  int ext_drv = !v12 && has_device_ext(phys, VK_KHR_DRIVER_PROPERTIES_EXTENSION_NAME);
  int ext_f16 = !v12 && has_device_ext(phys, VK_KHR_SHADER_FLOAT16_INT8_EXTENSION_NAME);

  VkPhysicalDeviceSubgroupProperties sp = {
      .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES};
  VkPhysicalDeviceDriverProperties dp = {
      .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_DRIVER_PROPERTIES};
  VkPhysicalDeviceSubgroupSizeControlProperties scp = {
      .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_PROPERTIES};
  VkPhysicalDeviceProperties2 p2 = {
      .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, .pNext = &sp};
  void **tail = &sp.pNext;
  if (v12 || ext_drv) { *tail = &dp; tail = &dp.pNext; }
  if (v13 || ext_sc) { *tail = &scp; tail = &scp.pNext; }
  vkGetPhysicalDeviceProperties2(phys, &p2);
  pi->subgroup_size = sp.subgroupSize;
  pi->subgroup_ops = sp.supportedOperations;
  pi->subgroup_stages = sp.supportedStages;
  if (v12 || ext_drv) {
    snprintf(pi->driver_name, sizeof pi->driver_name, "%s", dp.driverName);
    snprintf(pi->driver_info, sizeof pi->driver_info, "%s", dp.driverInfo);
  }

  VkPhysicalDeviceSubgroupSizeControlFeatures scf = {
      .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_FEATURES};
  VkPhysicalDeviceShaderFloat16Int8Features f16 = {
      .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_FLOAT16_INT8_FEATURES};
  VkPhysicalDeviceFeatures2 f2 = {
      .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2};
  tail = &f2.pNext;
  if (v13 || ext_sc) { *tail = &scf; tail = &scf.pNext; }
  if (v12 || ext_f16) { *tail = &f16; tail = &f16.pNext; }
  vkGetPhysicalDeviceFeatures2(phys, &f2);
  if ((v13 || ext_sc) && scf.subgroupSizeControl &&
      (scp.requiredSubgroupSizeStages & VK_SHADER_STAGE_COMPUTE_BIT)) {
    pi->size_control = 1;
    pi->min_subgroup = scp.minSubgroupSize;
    pi->max_subgroup = scp.maxSubgroupSize;
  }
  pi->full_subgroups = (v13 || ext_sc) && scf.computeFullSubgroups;
  pi->fp16 = (v12 || ext_f16) && f16.shaderFloat16;

  uint32_t nq = 0;
  vkGetPhysicalDeviceQueueFamilyProperties(phys, &nq, NULL);
  VkQueueFamilyProperties *qf = calloc(nq ? nq : 1, sizeof *qf);
  if (!qf) return PE_ENOMEM;
  vkGetPhysicalDeviceQueueFamilyProperties(phys, &nq, qf);
  /* A compute-only family first (async compute on GPUs), else any. */
  for (int pass = 0; pass < 2 && pi->compute_family < 0; pass++)
    for (uint32_t i = 0; i < nq && pi->compute_family < 0; i++)
      if ((qf[i].queueFlags & VK_QUEUE_COMPUTE_BIT) && qf[i].queueCount &&
          (pass || !(qf[i].queueFlags & VK_QUEUE_GRAPHICS_BIT))) {
        pi->compute_family = (int)i;
        pi->timestamp_bits = qf[i].timestampValidBits;
      }
  free(qf);

  VkPhysicalDeviceMemoryProperties mp;
  vkGetPhysicalDeviceMemoryProperties(phys, &mp);
  for (uint32_t i = 0; i < mp.memoryHeapCount; i++)
    if ((mp.memoryHeaps[i].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT) &&
        mp.memoryHeaps[i].size > pi->device_local_heap)
      pi->device_local_heap = mp.memoryHeaps[i].size;
  return 0;
}

static const char *type_word(VkPhysicalDeviceType t) {
  switch (t) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return "discrete GPU";
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return "integrated GPU";
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return "virtual GPU";
    case VK_PHYSICAL_DEVICE_TYPE_CPU: return "CPU";
    default: return "other";
  }
}

/* Why the device cannot run our kernels, or NULL. */
static const char *unusable(const vkb_physinfo *pi) {
  if (pi->props.apiVersion < VK_API_VERSION_1_1)
    return "it supports Vulkan 1.0 only (1.1 needed for subgroup operations)";
  if (pi->compute_family < 0) return "it has no compute queue";
  if (!(pi->subgroup_stages & VK_SHADER_STAGE_COMPUTE_BIT))
    return "it has no subgroup operations in compute shaders";
  if ((pi->subgroup_ops & (VK_SUBGROUP_FEATURE_BASIC_BIT |
                           VK_SUBGROUP_FEATURE_SHUFFLE_BIT)) !=
      (VK_SUBGROUP_FEATURE_BASIC_BIT | VK_SUBGROUP_FEATURE_SHUFFLE_BIT))
    return "it lacks subgroup basic/shuffle operations";
  if (pi->subgroup_size < 4 || pi->subgroup_size > 128 ||
      (pi->subgroup_size & (pi->subgroup_size - 1)))
    return "its subgroup size is not a power of two in 4..128";
  return NULL;
}

void vkb_physinfo_describe(const vkb_physinfo *pi, pe_device_info *info) {
  const VkPhysicalDeviceLimits *lim = &pi->props.limits;
  static const char *opnames[] = {"basic", "vote", "arithmetic", "ballot",
                                  "shuffle", "shuffle_relative", "clustered",
                                  "quad"};
  char ops[160] = "";
  size_t o = 0;
  for (unsigned i = 0; i < 8; i++)
    if (pi->subgroup_ops & (1u << i))
      o += (size_t)snprintf(ops + o, o < sizeof ops ? sizeof ops - o : 0,
                            "%s%s", o ? "," : "", opnames[i]);
  info->type = pi->props.deviceType == VK_PHYSICAL_DEVICE_TYPE_CPU
                   ? PE_DEVICE_CPU
               : pi->props.deviceType == VK_PHYSICAL_DEVICE_TYPE_OTHER
                   ? PE_DEVICE_OTHER
                   : PE_DEVICE_GPU;
  vkb_copy(info->name, sizeof info->name, pi->props.deviceName);
  if (pi->driver_name[0]) {
    char drv[sizeof pi->driver_name + sizeof pi->driver_info + 2];
    size_t n = strlen(pi->driver_name);
    memcpy(drv, pi->driver_name, n);
    drv[n] = ' ';
    vkb_copy(drv + n + 1, sizeof drv - n - 1, pi->driver_info);
    vkb_copy(info->driver, sizeof info->driver, drv);
  } else
    snprintf(info->driver, sizeof info->driver, "driver version 0x%x",
             pi->props.driverVersion);
  char sg[64];
  if (pi->size_control && pi->min_subgroup != pi->max_subgroup)
    snprintf(sg, sizeof sg, "%u (%u..%u)", pi->subgroup_size, pi->min_subgroup,
             pi->max_subgroup);
  else
    snprintf(sg, sizeof sg, "%u", pi->subgroup_size);
  const char *why = unusable(pi);
  snprintf(info->details, sizeof info->details,
           "vulkan device %u, %s, Vulkan %u.%u.%u; shared memory %u KiB; "
           "max workgroup %u invocations (%u x %u x %u); subgroup %s [%s]; "
           "fp16 %s; maxStorageBufferRange %.0f MiB; maxTexelBufferElements "
           "%u; device-local heap %.0f MiB; timestamps %s%s%s",
           pi->index, type_word(pi->props.deviceType),
           VK_API_VERSION_MAJOR(pi->props.apiVersion),
           VK_API_VERSION_MINOR(pi->props.apiVersion),
           VK_API_VERSION_PATCH(pi->props.apiVersion),
           lim->maxComputeSharedMemorySize / 1024,
           lim->maxComputeWorkGroupInvocations, lim->maxComputeWorkGroupSize[0],
           lim->maxComputeWorkGroupSize[1], lim->maxComputeWorkGroupSize[2], sg,
           ops, pi->fp16 ? "yes" : "no",
           lim->maxStorageBufferRange / 1048576.0, lim->maxTexelBufferElements,
           pi->device_local_heap / 1048576.0,
           pi->timestamp_bits && lim->timestampPeriod > 0 ? "yes" : "no",
           why ? "; unusable: " : "", why ? why : "");
}

static int type_rank(VkPhysicalDeviceType t) {
  switch (t) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return 5;
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return 4;
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return 3;
    case VK_PHYSICAL_DEVICE_TYPE_CPU: return 2;
    default: return 1;
  }
}

static int ci_contains(const char *hay, const char *needle) {
  size_t n = strlen(needle);
  for (; *hay; hay++) {
    size_t i = 0;
    while (i < n && hay[i] &&
           tolower((unsigned char)hay[i]) == tolower((unsigned char)needle[i]))
      i++;
    if (i == n) return 1;
  }
  return n == 0;
}

static int list_devices(const vkb_physinfo *pi, uint32_t n, char *buf,
                        size_t size) {
  size_t o = 0;
  buf[0] = 0;
  for (uint32_t i = 0; i < n && o < size; i++)
    o += (size_t)snprintf(buf + o, size - o, "%s%u: %s (%s)", i ? "; " : "", i,
                          pi[i].props.deviceName,
                          type_word(pi[i].props.deviceType));
  return 0;
}

int vkb_device_open(vkb *b, const char *want, char *err, size_t err_size) {
  uint32_t n = 0;
  VkResult r = vkEnumeratePhysicalDevices(b->instance, &n, NULL);
  if (r != VK_SUCCESS) return vkb_fail(b, r, err, err_size, "vkEnumeratePhysicalDevices");
  if (!n)
    return pe_plugin_error(err, err_size, PE_EUNSUPPORTED,
                           "unsupported: no device (the Vulkan loader found no "
                           "physical device)");
  VkPhysicalDevice *phys = calloc(n, sizeof *phys);
  vkb_physinfo *pi = calloc(n, sizeof *pi);
  char names[1024];
  int rc = 0;
  if (!phys || !pi) {
    rc = pe_plugin_error(err, err_size, PE_ENOMEM, "out of memory");
    goto out;
  }
  r = vkEnumeratePhysicalDevices(b->instance, &n, phys);
  if (r != VK_SUCCESS && r != VK_INCOMPLETE) {
    rc = vkb_fail(b, r, err, err_size, "vkEnumeratePhysicalDevices");
    goto out;
  }
  for (uint32_t i = 0; i < n; i++)
    if ((rc = vkb_physinfo_get(phys[i], i, &pi[i])) < 0) {
      rc = pe_plugin_error(err, err_size, rc, "out of memory");
      goto out;
    }
  list_devices(pi, n, names, sizeof names);
  b->device_count = n;

  int pick = -1;
  if (want && *want) {
    char *end;
    unsigned long idx = strtoul(want, &end, 10);
    if (isdigit((unsigned char)*want) && !*end) {
      if (idx >= n) {
        rc = pe_plugin_error(err, err_size, PE_EUNSUPPORTED,
                             "unsupported: device = %s, but the Vulkan loader "
                             "lists %u device%s (%s)",
                             want, n, n == 1 ? "" : "s", names);
        goto out;
      }
      pick = (int)idx;
    } else {
      for (uint32_t i = 0; i < n && pick < 0; i++)
        if (ci_contains(pi[i].props.deviceName, want)) pick = (int)i;
      if (pick < 0) {
        rc = pe_plugin_error(err, err_size, PE_EUNSUPPORTED,
                             "unsupported: no Vulkan device name contains "
                             "'%s' (devices: %s)",
                             want, names);
        goto out;
      }
    }
    const char *why = unusable(&pi[pick]);
    if (why) {
      rc = pe_plugin_error(err, err_size, PE_EUNSUPPORTED,
                           "unsupported: device %d (%s) cannot run the "
                           "kernels: %s",
                           pick, pi[pick].props.deviceName, why);
      goto out;
    }
    snprintf(b->choice, sizeof b->choice,
             "device %d of %u (%s), chosen by the device option '%s'", pick, n,
             type_word(pi[pick].props.deviceType), want);
  } else {
    int best = 0;
    for (uint32_t i = 0; i < n; i++)
      if (!unusable(&pi[i]) && type_rank(pi[i].props.deviceType) > best) {
        best = type_rank(pi[i].props.deviceType);
        pick = (int)i;
      }
    if (pick < 0) {
      rc = pe_plugin_error(err, err_size, PE_EUNSUPPORTED,
                           "unsupported: no device can run the kernels (%s): "
                           "device 0: %s",
                           names, unusable(&pi[0]));
      goto out;
    }
    const char *why = n == 1 ? "the only device"
                      : pi[pick].props.deviceType == VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU
                          ? "the first discrete GPU"
                      : pi[pick].props.deviceType == VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU
                          ? "no discrete GPU; the first integrated GPU"
                          : "no discrete or integrated GPU";
    snprintf(b->choice, sizeof b->choice,
             "device %d of %u (%s), chosen automatically: %s (preference: "
             "discrete GPU, integrated GPU, virtual GPU, CPU)",
             pick, n, type_word(pi[pick].props.deviceType), why);
  }
  b->info = pi[pick];

  /* Logical device: one compute queue, full-subgroup and subgroup-size
   * control features when offered. */
  float prio = 1.0f;
  VkDeviceQueueCreateInfo qi = {.sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO,
                                .queueFamilyIndex = (uint32_t)b->info.compute_family,
                                .queueCount = 1,
                                .pQueuePriorities = &prio};
  VkPhysicalDeviceSubgroupSizeControlFeatures scf = {
      .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_FEATURES,
      .subgroupSizeControl = b->info.size_control ? VK_TRUE : VK_FALSE,
      .computeFullSubgroups = b->info.full_subgroups ? VK_TRUE : VK_FALSE};
  const char *exts[1];
  uint32_t next = 0;
  VkDeviceCreateInfo dci = {.sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO,
                            .queueCreateInfoCount = 1,
                            .pQueueCreateInfos = &qi};
  if (b->info.size_control || b->info.full_subgroups) {
    dci.pNext = &scf;
    if (b->info.props.apiVersion < VK_API_VERSION_1_3)
      exts[next++] = VK_EXT_SUBGROUP_SIZE_CONTROL_EXTENSION_NAME;
  }
  dci.enabledExtensionCount = next;
  dci.ppEnabledExtensionNames = next ? exts : NULL;
  r = vkCreateDevice(b->info.phys, &dci, NULL, &b->dev);
  if (r != VK_SUCCESS) {
    b->dev = VK_NULL_HANDLE;
    rc = vkb_fail(b, r, err, err_size, "vkCreateDevice");
    goto out;
  }
  vkGetDeviceQueue(b->dev, qi.queueFamilyIndex, 0, &b->queue);
  vkGetPhysicalDeviceMemoryProperties(b->info.phys, &b->mem);
  VkCommandPoolCreateInfo pci = {.sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
                                 .flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT,
                                 .queueFamilyIndex = qi.queueFamilyIndex};
  r = vkCreateCommandPool(b->dev, &pci, NULL, &b->pool);
  if (r != VK_SUCCESS) {
    b->pool = VK_NULL_HANDLE;
    rc = vkb_fail(b, r, err, err_size, "vkCreateCommandPool");
    goto out;
  }
  rc = vkb_check_validation(b, err, err_size);
out:
  free(phys);
  free(pi);
  return rc;
}

void vkb_device_close(vkb *b) {
  if (b->dev) {
    vkDeviceWaitIdle(b->dev);
    if (b->pool) vkDestroyCommandPool(b->dev, b->pool, NULL);
    vkDestroyDevice(b->dev, NULL);
  }
  b->dev = VK_NULL_HANDLE;
  b->pool = VK_NULL_HANDLE;
  if (b->messenger) {
    PFN_vkDestroyDebugUtilsMessengerEXT dm =
        (PFN_vkDestroyDebugUtilsMessengerEXT)vkGetInstanceProcAddr(
            b->instance, "vkDestroyDebugUtilsMessengerEXT");
    if (dm) dm(b->instance, b->messenger, NULL);
    b->messenger = VK_NULL_HANDLE;
  }
  if (b->instance) vkDestroyInstance(b->instance, NULL);
  b->instance = VK_NULL_HANDLE;
}
