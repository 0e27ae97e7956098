/* libpe vulkan backend: one workload on the open device.
 *
 * prepare: check the shape against the device limits, split the
 *   (batch, kv head) groups into chunks whose buffers respect
 *   maxStorageBufferRange / maxTexelBufferElements (a single group that does
 *   not fit is refused with the numbers), allocate device-local buffers and
 *   upload (mapped directly when device-local memory is host-visible, as on
 *   lavapipe and unified-memory GPUs, else through a bounded staging
 *   buffer), create the pipelines (specialised to the shape) through the
 *   persistent pipeline cache, and record one command buffer;
 * execute: submit it, wait, and read the two timestamps around it;
 * fetch: copy the outputs back (mapped, or through a readback buffer).
 *
 * Kernels (see the .comp files): attn_cpu (SIMD-style, for CPU drivers),
 * attn_gpu (shared-memory tiles), attn_combine (split-KV merge), encode.
 */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "vk_internal.h"

#include "backends/vulkan/attn_combine.spv.h"
#include "backends/vulkan/attn_cpu.spv.h"
#include "backends/vulkan/attn_gpu.spv.h"
#include "backends/vulkan/encode.spv.h"

#define VKB_STAGING_MAX ((VkDeviceSize)64 << 20)
#define VKB_MAX_HEAD_DIM 512u
#define VKB_LOCAL 64u /* workgroup size of encode and attn_combine */

typedef struct vkb_buf {
  VkBuffer buf;
  VkDeviceMemory mem;
  VkDeviceSize size;
  void *map; /* non-NULL: host-visible, coherent, mapped */
  VkBufferView view;  /* R32_SFLOAT */
  VkBufferView view4; /* R32G32B32A32_SFLOAT */
} vkb_buf;

typedef struct vkb_chunk {
  uint32_t grp0, ngrp;
  vkb_buf q, k, v, o, o2, part; /* encode: o = Q', o2 = K' */
  vkb_buf kenc;                 /* attn_cpu with a K pre-pass: K' */
  VkDescriptorSet set_a, set_b; /* attention + combine, or encode q + k */
  VkDescriptorSet set_e;        /* the K pre-pass */
  uint32_t xdim, ydim;          /* folded grid of the main dispatch */
} vkb_chunk;

typedef struct vkb_run {
  vkb *b;
  pe_task t;
  uint32_t G, groups;
  uint64_t q_group, kv_group; /* floats per group */
  uint32_t nchunks;
  vkb_chunk *ch;
  vkb_buf tab0, tab1, slopes, dummy;
  VkDescriptorSetLayout dsl_tex, dsl_ssbo;
  VkPipelineLayout pl_tex, pl_ssbo;
  VkPipeline attn, comb, enc;
  VkDescriptorPool dpool;
  VkCommandBuffer cmd;
  VkFence fence;
  VkQueryPool qpool;
  int kernel;
  uint32_t sg, rows, tpr, bc, nsplit, nsplit_min, ntiles;
  int window_on;
  int kpre; /* attn_cpu: encode K once in a pre-pass (rotary, additive) */
  int vec;  /* attn_cpu: 4 = K and V read as vec4 texels */
  int ran;
} vkb_run;

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* ---- memory ----------------------------------------------------------- */

static int find_type(const vkb *b, uint32_t bits, VkMemoryPropertyFlags need,
                     VkMemoryPropertyFlags want) {
  int best = -1;
  for (uint32_t i = 0; i < b->mem.memoryTypeCount; i++) {
    VkMemoryPropertyFlags f = b->mem.memoryTypes[i].propertyFlags;
    if (!(bits & (1u << i)) || (f & need) != need) continue;
    if (best < 0 || ((f & want) == want &&
                     (b->mem.memoryTypes[best].propertyFlags & want) != want))
      best = (int)i;
  }
  return best;
}

enum { VKB_MEM_DEVICE = 0, VKB_MEM_HOST = 1, VKB_MEM_READBACK = 2 };

static int buf_create(vkb *b, vkb_buf *bf, VkDeviceSize size,
                      VkBufferUsageFlags usage, int where, const char *what,
                      char *err, size_t err_size) {
  memset(bf, 0, sizeof *bf);
  bf->size = size;
  VkBufferCreateInfo bi = {.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
                           .size = size ? size : 16,
                           .usage = usage,
                           .sharingMode = VK_SHARING_MODE_EXCLUSIVE};
  VkResult r = vkCreateBuffer(b->dev, &bi, NULL, &bf->buf);
  if (r != VK_SUCCESS) {
    bf->buf = VK_NULL_HANDLE;
    return vkb_fail(b, r, err, err_size, "vkCreateBuffer");
  }
  VkMemoryRequirements mr;
  vkGetBufferMemoryRequirements(b->dev, bf->buf, &mr);
  const VkMemoryPropertyFlags hv = VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT |
                                   VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
  int type;
  if (where == VKB_MEM_DEVICE) /* device-local, mapped directly if we can */
    type = find_type(b, mr.memoryTypeBits, VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT, hv);
  else
    type = find_type(b, mr.memoryTypeBits, hv,
                     where == VKB_MEM_READBACK ? VK_MEMORY_PROPERTY_HOST_CACHED_BIT : 0);
  if (type < 0 && where == VKB_MEM_DEVICE)
    type = find_type(b, mr.memoryTypeBits, 0, 0);
  if (type < 0)
    return pe_plugin_error(err, err_size, PE_EUNSUPPORTED,
                           "unsupported: no memory type for the %s buffer", what);
  VkMemoryAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO,
                             .allocationSize = mr.size,
                             .memoryTypeIndex = (uint32_t)type};
  r = vkAllocateMemory(b->dev, &ai, NULL, &bf->mem);
  if (r != VK_SUCCESS) {
    bf->mem = VK_NULL_HANDLE;
    if (r == VK_ERROR_OUT_OF_DEVICE_MEMORY || r == VK_ERROR_OUT_OF_HOST_MEMORY)
      return pe_plugin_error(err, err_size, PE_EUNSUPPORTED,
                             "unsupported: out of %s memory allocating the %s "
                             "buffer (%.1f MiB; device-local heap %.0f MiB)",
                             r == VK_ERROR_OUT_OF_DEVICE_MEMORY ? "device" : "host",
                             what, mr.size / 1048576.0,
                             b->info.device_local_heap / 1048576.0);
    return vkb_fail(b, r, err, err_size, "vkAllocateMemory");
  }
  r = vkBindBufferMemory(b->dev, bf->buf, bf->mem, 0);
  if (r != VK_SUCCESS) return vkb_fail(b, r, err, err_size, "vkBindBufferMemory");
  if ((b->mem.memoryTypes[type].propertyFlags & hv) == hv) {
    r = vkMapMemory(b->dev, bf->mem, 0, VK_WHOLE_SIZE, 0, &bf->map);
    if (r != VK_SUCCESS) bf->map = NULL;
  }
  return 0;
}

static void buf_destroy(vkb *b, vkb_buf *bf) {
  if (bf->view) vkDestroyBufferView(b->dev, bf->view, NULL);
  if (bf->view4) vkDestroyBufferView(b->dev, bf->view4, NULL);
  if (bf->buf) vkDestroyBuffer(b->dev, bf->buf, NULL);
  if (bf->mem) vkFreeMemory(b->dev, bf->mem, NULL); /* unmaps */
  memset(bf, 0, sizeof *bf);
}

/* The R32 view, and with `vec4` the RGBA32 view too. */
static int buf_view(vkb *b, vkb_buf *bf, int vec4, char *err, size_t err_size) {
  VkBufferViewCreateInfo vi = {.sType = VK_STRUCTURE_TYPE_BUFFER_VIEW_CREATE_INFO,
                               .buffer = bf->buf,
                               .format = VK_FORMAT_R32_SFLOAT,
                               .offset = 0,
                               .range = VK_WHOLE_SIZE};
  VkResult r = vkCreateBufferView(b->dev, &vi, NULL, &bf->view);
  if (r != VK_SUCCESS) {
    bf->view = VK_NULL_HANDLE;
    return vkb_fail(b, r, err, err_size, "vkCreateBufferView");
  }
  if (vec4) {
    vi.format = VK_FORMAT_R32G32B32A32_SFLOAT;
    r = vkCreateBufferView(b->dev, &vi, NULL, &bf->view4);
    if (r != VK_SUCCESS) {
      bf->view4 = VK_NULL_HANDLE;
      return vkb_fail(b, r, err, err_size, "vkCreateBufferView");
    }
  }
  return 0;
}

/* Submit a one-off command buffer and wait. */
static int one_shot(vkb *b, void (*rec)(VkCommandBuffer, void *), void *user,
                    char *err, size_t err_size) {
  VkCommandBufferAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
                                    .commandPool = b->pool,
                                    .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
                                    .commandBufferCount = 1};
  VkCommandBuffer cb;
  VkFence fence = VK_NULL_HANDLE;
  VkResult r = vkAllocateCommandBuffers(b->dev, &ai, &cb);
  if (r != VK_SUCCESS) return vkb_fail(b, r, err, err_size, "vkAllocateCommandBuffers");
  VkCommandBufferBeginInfo bi = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
                                 .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT};
  VkFenceCreateInfo fi = {.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
  const char *what = "vkBeginCommandBuffer";
  if ((r = vkBeginCommandBuffer(cb, &bi)) != VK_SUCCESS) goto out;
  rec(cb, user);
  what = "vkEndCommandBuffer";
  if ((r = vkEndCommandBuffer(cb)) != VK_SUCCESS) goto out;
  what = "vkCreateFence";
  if ((r = vkCreateFence(b->dev, &fi, NULL, &fence)) != VK_SUCCESS) goto out;
  VkSubmitInfo si = {.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO,
                     .commandBufferCount = 1,
                     .pCommandBuffers = &cb};
  what = "vkQueueSubmit";
  if ((r = vkQueueSubmit(b->queue, 1, &si, fence)) != VK_SUCCESS) goto out;
  what = "vkWaitForFences";
  r = vkWaitForFences(b->dev, 1, &fence, VK_TRUE, UINT64_MAX);
out:
  if (fence) vkDestroyFence(b->dev, fence, NULL);
  vkFreeCommandBuffers(b->dev, b->pool, 1, &cb);
  return r == VK_SUCCESS ? 0 : vkb_fail(b, r, err, err_size, what);
}

typedef struct copy_job {
  VkBuffer src, dst;
  VkDeviceSize src_off, dst_off, size;
  int to_host; /* readback: wait for shader writes, make the copy host-visible */
} copy_job;

static void rec_copy(VkCommandBuffer cb, void *user) {
  const copy_job *j = user;
  VkMemoryBarrier mb = {.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER};
  if (j->to_host) {
    mb.srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT;
    mb.dstAccessMask = VK_ACCESS_TRANSFER_READ_BIT;
    vkCmdPipelineBarrier(cb, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT,
                         VK_PIPELINE_STAGE_TRANSFER_BIT, 0, 1, &mb, 0, NULL, 0, NULL);
  }
  VkBufferCopy c = {.srcOffset = j->src_off, .dstOffset = j->dst_off, .size = j->size};
  vkCmdCopyBuffer(cb, j->src, j->dst, 1, &c);
  mb.srcAccessMask = VK_ACCESS_TRANSFER_WRITE_BIT;
  mb.dstAccessMask = j->to_host ? VK_ACCESS_HOST_READ_BIT : VK_ACCESS_SHADER_READ_BIT;
  vkCmdPipelineBarrier(cb, VK_PIPELINE_STAGE_TRANSFER_BIT,
                       j->to_host ? VK_PIPELINE_STAGE_HOST_BIT
                                  : VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT,
                       0, 1, &mb, 0, NULL, 0, NULL);
}

/* Host -> buffer, directly or through a staging buffer of at most 64 MiB. */
static int upload(vkb *b, vkb_buf *dst, const void *src, size_t n, char *err,
                  size_t err_size) {
  if (!n) return 0;
  if (dst->map) {
    memcpy(dst->map, src, n);
    return 0;
  }
  vkb_buf st;
  VkDeviceSize piece = n < VKB_STAGING_MAX ? n : VKB_STAGING_MAX;
  int rc = buf_create(b, &st, piece, VK_BUFFER_USAGE_TRANSFER_SRC_BIT, VKB_MEM_HOST,
                      "staging", err, err_size);
  if (rc == 0 && !st.map)
    rc = pe_plugin_error(err, err_size, PE_EDEVICE, "staging buffer not mappable");
  for (size_t off = 0; rc == 0 && off < n; off += piece) {
    size_t len = n - off < piece ? n - off : (size_t)piece;
    memcpy(st.map, (const char *)src + off, len);
    copy_job j = {st.buf, dst->buf, 0, off, len, 0};
    rc = one_shot(b, rec_copy, &j, err, err_size);
  }
  buf_destroy(b, &st);
  return rc;
}

static int download(vkb *b, vkb_buf *srcb, void *dst, size_t n, char *err,
                    size_t err_size) {
  if (!n) return 0;
  if (srcb->map) {
    memcpy(dst, srcb->map, n);
    return 0;
  }
  vkb_buf st;
  VkDeviceSize piece = n < VKB_STAGING_MAX ? n : VKB_STAGING_MAX;
  int rc = buf_create(b, &st, piece, VK_BUFFER_USAGE_TRANSFER_DST_BIT,
                      VKB_MEM_READBACK, "readback", err, err_size);
  if (rc == 0 && !st.map)
    rc = pe_plugin_error(err, err_size, PE_EDEVICE, "readback buffer not mappable");
  for (size_t off = 0; rc == 0 && off < n; off += piece) {
    size_t len = n - off < piece ? n - off : (size_t)piece;
    copy_job j = {srcb->buf, st.buf, off, 0, len, 1};
    rc = one_shot(b, rec_copy, &j, err, err_size);
    if (rc == 0) memcpy((char *)dst + off, st.map, len);
  }
  buf_destroy(b, &st);
  return rc;
}

/* ---- pipelines -------------------------------------------------------- */

typedef struct spec {
  uint32_t n;
  VkSpecializationMapEntry e[16];
  uint32_t v[16];
} spec;

static void spec_add(spec *s, uint32_t id, uint32_t value) {
  s->e[s->n].constantID = id;
  s->e[s->n].offset = s->n * 4;
  s->e[s->n].size = 4;
  s->v[s->n++] = value;
}

static int make_pipeline(vkb_run *rn, const uint32_t *code, size_t code_size,
                         const spec *sp, VkPipelineLayout layout,
                         uint32_t local_x, VkPipeline *out, const char *what,
                         char *err, size_t err_size) {
  vkb *b = rn->b;
  VkShaderModuleCreateInfo mi = {.sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO,
                                 .codeSize = code_size,
                                 .pCode = code};
  VkShaderModule mod;
  VkResult r = vkCreateShaderModule(b->dev, &mi, NULL, &mod);
  if (r != VK_SUCCESS) return vkb_fail(b, r, err, err_size, "vkCreateShaderModule");
  VkSpecializationInfo si = {.mapEntryCount = sp->n,
                             .pMapEntries = sp->e,
                             .dataSize = sp->n * 4,
                             .pData = sp->v};
  VkPipelineShaderStageRequiredSubgroupSizeCreateInfo rs = {
      .sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_REQUIRED_SUBGROUP_SIZE_CREATE_INFO,
      .requiredSubgroupSize = rn->sg};
  VkComputePipelineCreateInfo ci = {
      .sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO,
      .stage = {.sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO,
                .stage = VK_SHADER_STAGE_COMPUTE_BIT,
                .module = mod,
                .pName = "main",
                .pSpecializationInfo = &si},
      .layout = layout};
  /* Subgroup kernels need whole subgroups of the size they were
   * specialised for; the helper kernels (local_x 0) do not care. */
  if (local_x && b->info.size_control && rn->sg >= b->info.min_subgroup &&
      rn->sg <= b->info.max_subgroup) {
    ci.stage.pNext = &rs;
    if (b->info.full_subgroups && local_x % rn->sg == 0)
      ci.stage.flags |= VK_PIPELINE_SHADER_STAGE_CREATE_REQUIRE_FULL_SUBGROUPS_BIT;
  } else if (local_x && b->info.full_subgroups &&
             local_x % (b->info.max_subgroup ? b->info.max_subgroup
                                             : b->info.subgroup_size) == 0) {
    ci.stage.flags |= VK_PIPELINE_SHADER_STAGE_CREATE_REQUIRE_FULL_SUBGROUPS_BIT;
  }
  r = vkCreateComputePipelines(b->dev, b->pcache, 1, &ci, NULL, out);
  vkDestroyShaderModule(b->dev, mod, NULL);
  if (r != VK_SUCCESS) {
    *out = VK_NULL_HANDLE;
    char w[96];
    snprintf(w, sizeof w, "vkCreateComputePipelines (%s)", what);
    return vkb_fail(b, r, err, err_size, w);
  }
  return 0;
}

/* Bindings 0..5 inputs, 6..7 outputs (storage); the texel layout adds
 * 8..9, the vec4 views of k and v. */
static int make_layout(vkb *b, VkDescriptorType in_type,
                       VkDescriptorSetLayout *dsl, VkPipelineLayout *pl,
                       char *err, size_t err_size) {
  VkDescriptorSetLayoutBinding bind[10];
  uint32_t n = in_type == VK_DESCRIPTOR_TYPE_UNIFORM_TEXEL_BUFFER ? 10 : 8;
  for (uint32_t i = 0; i < n; i++)
    bind[i] = (VkDescriptorSetLayoutBinding){
        .binding = i,
        .descriptorType = i < 6 || i >= 8 ? in_type : VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
        .descriptorCount = 1,
        .stageFlags = VK_SHADER_STAGE_COMPUTE_BIT};
  VkDescriptorSetLayoutCreateInfo li = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO,
                                        .bindingCount = n,
                                        .pBindings = bind};
  VkResult r = vkCreateDescriptorSetLayout(b->dev, &li, NULL, dsl);
  if (r != VK_SUCCESS) {
    *dsl = VK_NULL_HANDLE;
    return vkb_fail(b, r, err, err_size, "vkCreateDescriptorSetLayout");
  }
  VkPushConstantRange pr = {.stageFlags = VK_SHADER_STAGE_COMPUTE_BIT,
                            .offset = 0,
                            .size = sizeof(vkb_push)};
  VkPipelineLayoutCreateInfo pi = {.sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO,
                                   .setLayoutCount = 1,
                                   .pSetLayouts = dsl,
                                   .pushConstantRangeCount = 1,
                                   .pPushConstantRanges = &pr};
  r = vkCreatePipelineLayout(b->dev, &pi, NULL, pl);
  if (r != VK_SUCCESS) {
    *pl = VK_NULL_HANDLE;
    return vkb_fail(b, r, err, err_size, "vkCreatePipelineLayout");
  }
  return 0;
}

/* Write a set: bindings 0..5 inputs (texel views or storage buffers),
 * 6..7 outputs; NULL entries get the dummy buffer. */
static int write_set(vkb_run *rn, VkDescriptorSetLayout dsl, int texel,
                     vkb_buf *const in[6], vkb_buf *const outs[2],
                     VkDescriptorSet *set, char *err, size_t err_size) {
  vkb *b = rn->b;
  VkDescriptorSetAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO,
                                    .descriptorPool = rn->dpool,
                                    .descriptorSetCount = 1,
                                    .pSetLayouts = &dsl};
  VkResult r = vkAllocateDescriptorSets(b->dev, &ai, set);
  if (r != VK_SUCCESS) return vkb_fail(b, r, err, err_size, "vkAllocateDescriptorSets");
  VkWriteDescriptorSet w[10];
  VkDescriptorBufferInfo bi[10];
  VkBufferView views[10];
  uint32_t n = texel ? 10 : 8;
  for (uint32_t i = 0; i < n; i++) {
    vkb_buf *bf = i < 6 ? in[i] : i < 8 ? outs[i - 6] : in[i == 8 ? 1 : 2];
    if (bf && bf->buf && i >= 8 && !bf->view4) bf = NULL;
    if (!bf || !bf->buf) bf = &rn->dummy;
    w[i] = (VkWriteDescriptorSet){.sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET,
                                  .dstSet = *set,
                                  .dstBinding = i,
                                  .descriptorCount = 1};
    if ((i < 6 || i >= 8) && texel) {
      views[i] = i < 8 ? bf->view : bf->view4;
      w[i].descriptorType = VK_DESCRIPTOR_TYPE_UNIFORM_TEXEL_BUFFER;
      w[i].pTexelBufferView = &views[i];
    } else {
      bi[i] = (VkDescriptorBufferInfo){.buffer = bf->buf, .offset = 0, .range = VK_WHOLE_SIZE};
      w[i].descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER;
      w[i].pBufferInfo = &bi[i];
    }
  }
  vkUpdateDescriptorSets(b->dev, n, w, 0, NULL);
  return 0;
}

/* ---- prepare ---------------------------------------------------------- */

static uint32_t pow2_floor(uint32_t x) {
  uint32_t p = 1;
  while (p * 2 <= x) p *= 2;
  return p;
}

static uint32_t log2u(uint32_t x) {
  uint32_t l = 0;
  while ((1u << (l + 1)) <= x) l++;
  return l;
}

static uint32_t host_threads(void) {
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  const char *env = getenv("LP_NUM_THREADS"); /* lavapipe's own knob */
  if (env && atoi(env) > 0) n = atoi(env);
  return n > 0 ? (uint32_t)n : 1;
}

static void fold_grid(const vkb *b, uint64_t total, uint32_t *x, uint32_t *y) {
  uint32_t xm = b->info.props.limits.maxComputeWorkGroupCount[0];
  *x = total < xm ? (uint32_t)(total ? total : 1) : xm;
  *y = (uint32_t)((total + *x - 1) / *x);
  if (!*y) *y = 1;
}

void vkb_release(void *run) {
  vkb_run *rn = run;
  if (!rn) return;
  vkb *b = rn->b;
  if (b->dev) vkQueueWaitIdle(b->queue);
  for (uint32_t c = 0; c < rn->nchunks && rn->ch; c++) {
    vkb_chunk *ch = &rn->ch[c];
    buf_destroy(b, &ch->q);
    buf_destroy(b, &ch->k);
    buf_destroy(b, &ch->v);
    buf_destroy(b, &ch->o);
    buf_destroy(b, &ch->o2);
    buf_destroy(b, &ch->part);
    buf_destroy(b, &ch->kenc);
  }
  free(rn->ch);
  buf_destroy(b, &rn->tab0);
  buf_destroy(b, &rn->tab1);
  buf_destroy(b, &rn->slopes);
  buf_destroy(b, &rn->dummy);
  if (rn->cmd) vkFreeCommandBuffers(b->dev, b->pool, 1, &rn->cmd);
  if (rn->fence) vkDestroyFence(b->dev, rn->fence, NULL);
  if (rn->qpool) vkDestroyQueryPool(b->dev, rn->qpool, NULL);
  if (rn->dpool) vkDestroyDescriptorPool(b->dev, rn->dpool, NULL);
  if (rn->attn) vkDestroyPipeline(b->dev, rn->attn, NULL);
  if (rn->comb) vkDestroyPipeline(b->dev, rn->comb, NULL);
  if (rn->enc) vkDestroyPipeline(b->dev, rn->enc, NULL);
  if (rn->pl_tex) vkDestroyPipelineLayout(b->dev, rn->pl_tex, NULL);
  if (rn->pl_ssbo) vkDestroyPipelineLayout(b->dev, rn->pl_ssbo, NULL);
  if (rn->dsl_tex) vkDestroyDescriptorSetLayout(b->dev, rn->dsl_tex, NULL);
  if (rn->dsl_ssbo) vkDestroyDescriptorSetLayout(b->dev, rn->dsl_ssbo, NULL);
  free(rn);
}

/* attn_cpu: the most rows per workgroup at this head_dim (padded to the
 * subgroup), also the automatic choice before the decode cut.  The shader
 * unrolls its rows: code size and JIT time grow with rows x head_dim, the
 * gathers per flop fall with rows.  16 rows up to head_dim 128 (about 0.25x
 * openmp on lavapipe), fewer beyond, at least 4.  On lavapipe at head_dim
 * 128, 16 rows JIT in about a second, 20 in about 30 s, 32 in about two
 * minutes, and 256 run away (gigabytes, minutes). */
static uint32_t cpu_max_rows(uint32_t dpad) {
  uint32_t rb = 2048 / dpad;
  if (rb < 4) rb = 4;
  if (rb > 16) rb = 16;
  return rb;
}

/* attn_cpu: rows per workgroup; an explicit tile_rows is used as given up
 * to cpu_max_rows, refused above. */
static int plan_cpu_rows(vkb_run *rn, uint64_t rows_per_group, char *err,
                         size_t err_size) {
  const vkb *b = rn->b;
  uint32_t D = rn->t.head_dim;
  uint32_t dpad = (D + rn->sg - 1) / rn->sg * rn->sg;
  uint32_t rb = cpu_max_rows(dpad);
  if (b->rows_opt > (int64_t)rb)
    return pe_plugin_error(err, err_size, PE_EINVAL,
                           "vulkan: tile_rows = %lld is above %u, the most the "
                           "cpu kernel takes at head_dim %u (it unrolls its "
                           "rows: compile time grows with rows x head_dim and "
                           "runs away beyond); use 1..%u or 0 (auto)",
                           (long long)b->rows_opt, rb, D, rb);
  if (b->rows_opt > 0) {
    rn->rows = (uint32_t)b->rows_opt;
    return 0;
  }
  /* No more rows than a (batch, kv head) group has (decode: G rows):
   * rows past the end are computed and thrown away. */
  while (rb > 1 && rb / 2 >= rows_per_group) rb /= 2;
  rn->rows = rb;
  return 0;
}

static uint32_t workgroup_max(const VkPhysicalDeviceLimits *lim) {
  return lim->maxComputeWorkGroupInvocations < lim->maxComputeWorkGroupSize[0]
             ? lim->maxComputeWorkGroupInvocations
             : lim->maxComputeWorkGroupSize[0];
}

/* attn_gpu: invocations per row and rows per workgroup.  The workgroup
 * (rows x invocations per row) must fit the device and be whole
 * subgroups; tile_rows = 0 adapts, an explicit value is used as given or
 * refused. */
static int plan_gpu_rows(vkb_run *rn, char *err, size_t err_size) {
  const vkb *b = rn->b;
  uint32_t D = rn->t.head_dim;
  uint32_t minsg = b->info.size_control ? b->info.min_subgroup : rn->sg;
  uint32_t wgmax = workgroup_max(&b->info.props.limits);
  rn->tpr = D >= 64 ? 8 : 4;
  if (rn->tpr > minsg) rn->tpr = minsg;
  if (b->rows_opt > 0) {
    uint64_t rows = (uint64_t)b->rows_opt, wg = rows * rn->tpr;
    if (wg > wgmax)
      return pe_plugin_error(err, err_size, PE_EUNSUPPORTED,
                             "vulkan: tile_rows = %llu with the gpu kernel "
                             "needs a workgroup of %llu invocations (%u per "
                             "row at head_dim %u), the device allows %u: use "
                             "at most %u, or 0 (auto)",
                             (unsigned long long)rows, (unsigned long long)wg,
                             rn->tpr, D, wgmax, wgmax / rn->tpr);
    if (wg % rn->sg)
      return pe_plugin_error(err, err_size, PE_EINVAL,
                             "vulkan: tile_rows = %llu with the gpu kernel "
                             "makes a workgroup of %llu invocations (%u per "
                             "row), not whole subgroups of %u: use a multiple "
                             "of %u, or 0 (auto)",
                             (unsigned long long)rows, (unsigned long long)wg,
                             rn->tpr, rn->sg, rn->sg / rn->tpr);
    rn->rows = (uint32_t)rows;
    return 0;
  }
  rn->rows = 16;
  while (rn->rows > 1 && rn->rows * rn->tpr > wgmax) rn->rows /= 2;
  while (rn->rows * rn->tpr % rn->sg) rn->rows *= 2;
  if (rn->rows * rn->tpr > wgmax)
    return pe_plugin_error(err, err_size, PE_EUNSUPPORTED,
                           "unsupported: workgroup limit %u below the "
                           "subgroup size %u",
                           wgmax, rn->sg);
  return 0;
}

/* attn_gpu: keys per shared-memory tile (K and V: 8 x head_dim bytes per
 * key).  tile_keys = 0 takes 32, fewer if shared memory is short; an
 * explicit value is used as given or refused. */
static int plan_gpu_keys(vkb_run *rn, char *err, size_t err_size) {
  const vkb *b = rn->b;
  uint32_t D = rn->t.head_dim;
  uint32_t shm = b->info.props.limits.maxComputeSharedMemorySize;
  uint64_t per_key = 8ull * D;
  uint32_t fit = per_key <= shm ? pow2_floor((uint32_t)(shm / per_key)) : 0;
  if (b->keys_opt > 0) {
    uint64_t k = (uint64_t)b->keys_opt;
    if (k & (k - 1))
      return pe_plugin_error(err, err_size, PE_EINVAL,
                             "vulkan: tile_keys = %llu is not a power of two "
                             "(the gpu kernel takes 1, 2, 4, ... 256, or 0: "
                             "auto)",
                             (unsigned long long)k);
    if (k * per_key > shm)
      return pe_plugin_error(err, err_size, PE_EUNSUPPORTED,
                             "vulkan: tile_keys = %llu needs %llu bytes of "
                             "shared memory at head_dim %u, the device has %u "
                             "(%s%u fits)",
                             (unsigned long long)k,
                             (unsigned long long)(k * per_key), D, shm,
                             fit ? "tile_keys = " : "no tile: ", fit);
    rn->bc = (uint32_t)k;
    return 0;
  }
  if (!fit)
    return pe_plugin_error(err, err_size, PE_EUNSUPPORTED,
                           "unsupported: head_dim %u needs %u bytes of shared "
                           "memory per key, the device has %u",
                           D, 8 * D, shm);
  rn->bc = fit < 32 ? fit : 32;
  return 0;
}

/* tile_keys is the gpu kernel's: with kernel = cpu asked for, an explicit
 * value is refused; when auto picked the cpu kernel (a CPU driver) it is
 * said not to apply, so a config written for a GPU still runs here. */
static int plan_cpu_keys_option(vkb_run *rn, char *err, size_t err_size) {
  const vkb *b = rn->b;
  if (b->keys_opt <= 0) return 0;
  if (b->kernel_opt == VKB_KERNEL_CPU)
    return pe_plugin_error(err, err_size, PE_EINVAL,
                           "vulkan: tile_keys = %lld applies to the gpu kernel "
                           "only (kernel = cpu); leave it 0",
                           (long long)b->keys_opt);
  pe_plugin_log(b->host, PE_LOG_WARN, VKB_NAME,
                "tile_keys = %lld not used: kernel = auto chose the cpu kernel "
                "on this device, which has no key tiles",
                (long long)b->keys_opt);
  return 0;
}

/* Check the shape and choose kernel parameters and chunks. */
static int plan(vkb_run *rn, char *err, size_t err_size) {
  vkb *b = rn->b;
  const pe_task *t = &rn->t;
  const VkPhysicalDeviceLimits *lim = &b->info.props.limits;
  int attention = t->op == PE_OP_ATTENTION;

  if (t->op != PE_OP_ATTENTION && t->op != PE_OP_ENCODE)
    return pe_plugin_error(err, err_size, PE_EUNSUPPORTED,
                           "unsupported: op %u", t->op);
  if (t->kind < PE_KIND_NONE || t->kind > PE_KIND_BIAS)
    return pe_plugin_error(err, err_size, PE_EUNSUPPORTED,
                           "unsupported: encoding kind %u", t->kind);
  if (!t->batch || !t->q_heads || !t->kv_heads || !t->head_dim || !t->q_len ||
      !t->kv_len || t->q_heads % t->kv_heads || t->q_len > t->kv_len)
    return pe_plugin_error(err, err_size, PE_EINVAL,
                           "invalid shape (batch %u, heads %u/%u, head_dim %u, "
                           "q_len %llu, seq_len %llu)",
                           t->batch, t->q_heads, t->kv_heads, t->head_dim,
                           (unsigned long long)t->q_len,
                           (unsigned long long)t->kv_len);
  if (t->head_dim > VKB_MAX_HEAD_DIM)
    return pe_plugin_error(err, err_size, PE_EUNSUPPORTED,
                           "unsupported: head_dim %u > %u", t->head_dim,
                           VKB_MAX_HEAD_DIM);
  if (t->kind == PE_KIND_ROTARY &&
      (t->rotary_dim % 2 || t->rotary_dim > t->head_dim ||
       (t->pairing != PE_PAIRING_NEOX && t->pairing != PE_PAIRING_INTERLEAVED)))
    return pe_plugin_error(err, err_size, PE_EINVAL,
                           "invalid rotary table (rotary_dim %u, pairing %u)",
                           t->rotary_dim, t->pairing);
  /* In-shader indices are 32-bit signed. */
  if (t->kv_len >= ((uint64_t)1 << 30))
    return pe_plugin_error(err, err_size, PE_EUNSUPPORTED,
                           "unsupported: seq_len %llu >= 2^30",
                           (unsigned long long)t->kv_len);
  uint32_t D = t->head_dim;
  rn->G = t->q_heads / t->kv_heads;
  rn->groups = t->batch * t->kv_heads;
  rn->q_group = (uint64_t)rn->G * t->q_len * D;
  rn->kv_group = t->kv_len * D;
  rn->window_on = t->window > 0 && t->window < t->kv_len;
  rn->kernel = b->kernel;
  rn->sg = b->info.subgroup_size;

  uint64_t rows_per_group = (uint64_t)rn->G * t->q_len;
  if (attention && rn->kernel == VKB_KERNEL_CPU) {
    int rc = plan_cpu_keys_option(rn, err, err_size);
    if (rc == 0) rc = plan_cpu_rows(rn, rows_per_group, err, err_size);
    if (rc < 0) return rc;
  } else if (attention) {
    int rc = plan_gpu_rows(rn, err, err_size);
    if (rc == 0) rc = plan_gpu_keys(rn, err, err_size);
    if (rc < 0) return rc;
  }
  if (attention) {
    uint64_t nt = (rows_per_group + rn->rows - 1) / rn->rows;
    rn->ntiles = (uint32_t)nt;
    /* attn_cpu reads every key block once per row tile: encoding K there
     * would redo it ntiles times, so then K' comes from one encode pass;
     * with a single tile (decode) encoding on load is cheaper.  K and V
     * are read as vec4 texels when K needs no encoding on load. */
    rn->kpre = rn->kernel == VKB_KERNEL_CPU && nt > 1 &&
               (t->kind == PE_KIND_ROTARY || t->kind == PE_KIND_ADDITIVE);
    rn->vec = D % 4 == 0 && (rn->kpre || t->kind == PE_KIND_NONE ||
                             t->kind == PE_KIND_BIAS)
                  ? 4
                  : 1;
    /* Keys one row tile may see at most. */
    uint64_t span = t->kv_len;
    if (rn->window_on) {
      uint64_t w = (t->causal ? 1 : 2) * t->window + rn->rows / rn->G + 2;
      if (w < span) span = w;
    }
    /* llvmpipe stops every loop of a workgroup after 65535 iterations in
     * all (LP_MAX_TGSI_LOOP_ITERATIONS, a silent wrong answer).  The key
     * loop is the only rolled loop of both kernels, so cap the key blocks
     * a workgroup walks by splitting the keys. */
    uint32_t block = rn->kernel == VKB_KERNEL_CPU ? rn->sg : rn->bc;
    uint64_t max_blocks = 60000;
    uint64_t blocks = (span + block - 1) / block + 1;
    uint64_t ns_min = (blocks + max_blocks - 2) / (max_blocks - 1);
    /* Decode split-KV: when there are too few workgroups to fill the
     * device, split each tile's keys; at least 256 keys per split. */
    uint32_t target = rn->kernel == VKB_KERNEL_CPU ? 4 * host_threads() : 512;
    uint64_t wgs = nt * rn->groups;
    uint64_t ns = 1;
    if (b->splits_opt > 0)
      ns = (uint64_t)b->splits_opt;
    else if (wgs < target)
      ns = (target + wgs - 1) / wgs;
    if (b->splits_opt <= 0 && ns > span / 256) ns = span / 256;
    if (ns < ns_min) ns = ns_min;
    if (ns < 1) ns = 1;
    if (ns > lim->maxComputeWorkGroupCount[2] || ns > 4096)
      return pe_plugin_error(err, err_size, PE_EUNSUPPORTED,
                             "unsupported: seq_len %llu needs %llu key splits",
                             (unsigned long long)t->kv_len, (unsigned long long)ns);
    rn->nsplit = (uint32_t)ns;
    rn->nsplit_min = (uint32_t)ns_min;
  } else {
    rn->nsplit = 1;
  }

  /* Chunks of whole groups within the binding limits. */
  uint64_t in_lim = attention && rn->kernel == VKB_KERNEL_CPU
                        ? (uint64_t)lim->maxTexelBufferElements * 4
                        : lim->maxStorageBufferRange;
  uint64_t out_lim = lim->maxStorageBufferRange;
  const uint64_t idx_lim = (uint64_t)1 << 33; /* 2^31 floats */
  if (in_lim > idx_lim) in_lim = idx_lim;
  if (out_lim > idx_lim) out_lim = idx_lim;
  const char *in_name = attention && rn->kernel == VKB_KERNEL_CPU
                            ? "maxTexelBufferElements"
                            : "maxStorageBufferRange";
  struct {
    const char *what;
    uint64_t bytes, limit;
    const char *lname;
  } need[4] = {
      {"q", rn->q_group * 4, in_lim, in_name},
      {"k/v", rn->kv_group * 4, in_lim, in_name},
      {"output", (attention ? rn->q_group : (rn->q_group > rn->kv_group ? rn->q_group : rn->kv_group)) * 4,
       out_lim, "maxStorageBufferRange"},
      {"split-KV partials",
       rn->nsplit > 1 ? (uint64_t)rn->nsplit * rows_per_group * (D + 2) * 4 : 0,
       out_lim, "maxStorageBufferRange"}};
  uint64_t per = rn->groups;
  for (int i = 0; i < 4; i++) {
    if (!need[i].bytes) continue;
    if (need[i].bytes > need[i].limit)
      return pe_plugin_error(
          err, err_size, PE_EUNSUPPORTED,
          "unsupported: the %s of one (batch, kv head) group takes %.1f MiB, "
          "more than one buffer binding may address on this device (%s: "
          "%.1f MiB); buffers are split by head but not within a head",
          need[i].what, need[i].bytes / 1048576.0, need[i].lname,
          need[i].limit / 1048576.0);
    uint64_t fit = need[i].limit / need[i].bytes;
    if (fit < per) per = fit;
  }
  uint64_t tab = t->kind == PE_KIND_ROTARY     ? t->kv_len * (t->rotary_dim / 2) * 4
                 : t->kind == PE_KIND_ADDITIVE ? t->kv_len * D * 4
                                               : 0;
  if (tab > in_lim)
    return pe_plugin_error(err, err_size, PE_EUNSUPPORTED,
                           "unsupported: the position table takes %.1f MiB, more "
                           "than one binding may address (%s: %.1f MiB)",
                           tab / 1048576.0, in_name, in_lim / 1048576.0);
  rn->nchunks = (uint32_t)((rn->groups + per - 1) / per);
  rn->ch = calloc(rn->nchunks, sizeof *rn->ch);
  if (!rn->ch) return pe_plugin_error(err, err_size, PE_ENOMEM, "out of memory");
  for (uint32_t c = 0; c < rn->nchunks; c++) {
    vkb_chunk *ch = &rn->ch[c];
    ch->grp0 = (uint32_t)(c * per);
    ch->ngrp = (uint32_t)(rn->groups - ch->grp0 < per ? rn->groups - ch->grp0 : per);
    uint64_t total = attention ? (uint64_t)rn->ntiles * ch->ngrp : 0;
    if (!attention) {
      uint64_t e = (rn->q_group > rn->kv_group ? rn->q_group : rn->kv_group) * ch->ngrp;
      total = (e + VKB_LOCAL - 1) / VKB_LOCAL;
    }
    fold_grid(b, total, &ch->xdim, &ch->ydim);
    if (ch->ydim > lim->maxComputeWorkGroupCount[1])
      return pe_plugin_error(err, err_size, PE_EUNSUPPORTED,
                             "unsupported: %llu workgroups exceed the device's "
                             "grid limits",
                             (unsigned long long)total);
  }
  return 0;
}

static int create_buffers(vkb_run *rn, char *err, size_t err_size) {
  vkb *b = rn->b;
  const pe_task *t = &rn->t;
  int attention = t->op == PE_OP_ATTENTION;
  int texel = attention && rn->kernel == VKB_KERNEL_CPU;
  const VkBufferUsageFlags in_use = VK_BUFFER_USAGE_TRANSFER_DST_BIT |
                                   VK_BUFFER_USAGE_UNIFORM_TEXEL_BUFFER_BIT |
                                   VK_BUFFER_USAGE_STORAGE_BUFFER_BIT;
  const VkBufferUsageFlags out_use =
      VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT;
  uint32_t D = t->head_dim;
  int rc;
#define VKB_TRY(x) \
  if ((rc = (x)) < 0) return rc
  VKB_TRY(buf_create(b, &rn->dummy, 16, in_use | out_use, VKB_MEM_DEVICE, "dummy", err, err_size));
  if (texel) VKB_TRY(buf_view(b, &rn->dummy, 1, err, err_size));

  /* Position tables (shared by every chunk) and slopes. */
  size_t tab_n = 0;
  if (t->kind == PE_KIND_ROTARY) tab_n = t->kv_len * (t->rotary_dim / 2);
  if (t->kind == PE_KIND_ADDITIVE) tab_n = t->kv_len * D;
  if (tab_n) {
    const float *t0 = t->kind == PE_KIND_ROTARY ? t->rope_cos : t->additive;
    if (!t0 || (t->kind == PE_KIND_ROTARY && !t->rope_sin))
      return pe_plugin_error(err, err_size, PE_EINVAL, "task lacks its position tables");
    VKB_TRY(buf_create(b, &rn->tab0, tab_n * 4, in_use, VKB_MEM_DEVICE, "table", err, err_size));
    VKB_TRY(upload(b, &rn->tab0, t0, tab_n * 4, err, err_size));
    if (texel) VKB_TRY(buf_view(b, &rn->tab0, 0, err, err_size));
    if (t->kind == PE_KIND_ROTARY) {
      VKB_TRY(buf_create(b, &rn->tab1, tab_n * 4, in_use, VKB_MEM_DEVICE, "table", err, err_size));
      VKB_TRY(upload(b, &rn->tab1, t->rope_sin, tab_n * 4, err, err_size));
      if (texel) VKB_TRY(buf_view(b, &rn->tab1, 0, err, err_size));
    }
  }
  if (attention && t->kind == PE_KIND_BIAS) {
    if (!t->slopes) return pe_plugin_error(err, err_size, PE_EINVAL, "task lacks its slopes");
    float *s = malloc(t->q_heads * sizeof *s);
    if (!s) return pe_plugin_error(err, err_size, PE_ENOMEM, "out of memory");
    /* base-2 logits: slope * log2(e), rounded once from double */
    for (uint32_t h = 0; h < t->q_heads; h++) s[h] = (float)(t->slopes[h] * M_LOG2E);
    rc = buf_create(b, &rn->slopes, t->q_heads * 4, in_use, VKB_MEM_DEVICE, "slopes", err, err_size);
    if (rc == 0) rc = upload(b, &rn->slopes, s, t->q_heads * 4, err, err_size);
    free(s);
    if (rc < 0) return rc;
    if (texel) VKB_TRY(buf_view(b, &rn->slopes, 0, err, err_size));
  }
  if (!t->q || !t->k || (attention && !t->v))
    return pe_plugin_error(err, err_size, PE_EINVAL, "task lacks q, k or v");

  for (uint32_t c = 0; c < rn->nchunks; c++) {
    vkb_chunk *ch = &rn->ch[c];
    size_t qn = rn->q_group * ch->ngrp, kn = rn->kv_group * ch->ngrp;
    VKB_TRY(buf_create(b, &ch->q, qn * 4, in_use, VKB_MEM_DEVICE, "q", err, err_size));
    VKB_TRY(upload(b, &ch->q, t->q + rn->q_group * ch->grp0, qn * 4, err, err_size));
    VKB_TRY(buf_create(b, &ch->k, kn * 4, in_use, VKB_MEM_DEVICE, "k", err, err_size));
    VKB_TRY(upload(b, &ch->k, t->k + rn->kv_group * ch->grp0, kn * 4, err, err_size));
    if (texel) {
      VKB_TRY(buf_view(b, &ch->q, 0, err, err_size));
      VKB_TRY(buf_view(b, &ch->k, rn->vec == 4 && !rn->kpre, err, err_size));
    }
    if (attention) {
      VKB_TRY(buf_create(b, &ch->v, kn * 4, in_use, VKB_MEM_DEVICE, "v", err, err_size));
      VKB_TRY(upload(b, &ch->v, t->v + rn->kv_group * ch->grp0, kn * 4, err, err_size));
      if (texel) VKB_TRY(buf_view(b, &ch->v, rn->vec == 4, err, err_size));
      VKB_TRY(buf_create(b, &ch->o, qn * 4, out_use, VKB_MEM_DEVICE, "output", err, err_size));
      if (rn->kpre) {
        VKB_TRY(buf_create(b, &ch->kenc, kn * 4, in_use | out_use, VKB_MEM_DEVICE, "K'", err,
                           err_size));
        VKB_TRY(buf_view(b, &ch->kenc, rn->vec == 4, err, err_size));
      }
      if (rn->nsplit > 1)
        VKB_TRY(buf_create(b, &ch->part, (VkDeviceSize)rn->nsplit * (qn / D) * (D + 2) * 4,
                           out_use, VKB_MEM_DEVICE, "split-KV partials", err, err_size));
    } else {
      VKB_TRY(buf_create(b, &ch->o, qn * 4, out_use, VKB_MEM_DEVICE, "Q'", err, err_size));
      VKB_TRY(buf_create(b, &ch->o2, kn * 4, out_use, VKB_MEM_DEVICE, "K'", err, err_size));
    }
  }
#undef VKB_TRY
  return 0;
}

static int create_pipelines(vkb_run *rn, char *err, size_t err_size) {
  vkb *b = rn->b;
  const pe_task *t = &rn->t;
  int rc;
  spec sp = {0};
  uint32_t D = t->head_dim;
  uint32_t R = t->kind == PE_KIND_ROTARY ? t->rotary_dim : 0;
  uint32_t pairing = t->kind == PE_KIND_ROTARY ? t->pairing : PE_PAIRING_NEOX;
  if (t->op == PE_OP_ENCODE) {
    if ((rc = make_layout(b, VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, &rn->dsl_ssbo, &rn->pl_ssbo, err, err_size)))
      return rc;
    spec_add(&sp, 1, D);
    spec_add(&sp, 3, t->kind);
    spec_add(&sp, 4, R);
    spec_add(&sp, 5, pairing);
    return make_pipeline(rn, vkb_spv_encode, sizeof vkb_spv_encode, &sp, rn->pl_ssbo, 0, &rn->enc,
                         "encode", err, err_size);
  }
  int cpu = rn->kernel == VKB_KERNEL_CPU;
  if (rn->kpre) {
    spec e = {0};
    spec_add(&e, 1, D);
    spec_add(&e, 3, t->kind);
    spec_add(&e, 4, R);
    spec_add(&e, 5, pairing);
    if ((rc = make_layout(b, VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, &rn->dsl_ssbo, &rn->pl_ssbo, err,
                          err_size)) ||
        (rc = make_pipeline(rn, vkb_spv_encode, sizeof vkb_spv_encode, &e, rn->pl_ssbo, 0,
                            &rn->enc, "encode", err, err_size)))
      return rc;
  }
  if (cpu && (rc = make_layout(b, VK_DESCRIPTOR_TYPE_UNIFORM_TEXEL_BUFFER, &rn->dsl_tex,
                               &rn->pl_tex, err, err_size)))
    return rc;
  if ((!cpu || rn->nsplit > 1) && !rn->dsl_ssbo &&
      (rc = make_layout(b, VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, &rn->dsl_ssbo, &rn->pl_ssbo, err,
                        err_size)))
    return rc;
  spec_add(&sp, 0, cpu ? rn->sg : rn->tpr);
  spec_add(&sp, 1, D);
  spec_add(&sp, 2, rn->rows);
  spec_add(&sp, 3, t->kind);
  spec_add(&sp, 4, R);
  spec_add(&sp, 5, pairing);
  spec_add(&sp, 6, rn->G);
  spec_add(&sp, 7, t->causal ? 1 : 0);
  spec_add(&sp, 8, rn->window_on ? 1 : 0);
  spec_add(&sp, 9, rn->nsplit > 1 ? 1 : 0);
  if (cpu) {
    spec_add(&sp, 12, log2u(rn->sg));
    spec_add(&sp, 13, rn->kpre ? 1 : 0);
    spec_add(&sp, 14, rn->vec);
    rc = make_pipeline(rn, vkb_spv_attn_cpu, sizeof vkb_spv_attn_cpu, &sp, rn->pl_tex, rn->sg, &rn->attn,
                       "attn_cpu", err, err_size);
  } else {
    spec_add(&sp, 10, rn->bc);
    spec_add(&sp, 11, rn->rows * rn->tpr);
    spec_add(&sp, 12, log2u(rn->tpr));
    rc = make_pipeline(rn, vkb_spv_attn_gpu, sizeof vkb_spv_attn_gpu, &sp, rn->pl_ssbo, rn->rows * rn->tpr,
                       &rn->attn, "attn_gpu", err, err_size);
  }
  if (rc == 0 && rn->nsplit > 1) {
    spec c = {0};
    spec_add(&c, 1, D);
    rc = make_pipeline(rn, vkb_spv_attn_combine, sizeof vkb_spv_attn_combine, &c, rn->pl_ssbo, 0, &rn->comb,
                       "attn_combine", err, err_size);
  }
  return rc;
}

static void base_push(const vkb_run *rn, const vkb_chunk *ch, vkb_push *p) {
  const pe_task *t = &rn->t;
  memset(p, 0, sizeof *p);
  p->sq = (uint32_t)t->q_len;
  p->skv = (uint32_t)t->kv_len;
  p->window = rn->window_on ? (uint32_t)t->window : 0;
  p->ntiles = rn->ntiles;
  p->ngroups = ch->ngrp;
  p->nsplit = rn->nsplit;
  p->grp0 = ch->grp0;
  p->hkv = t->kv_heads;
  p->xdim = ch->xdim;
  p->qscale = (float)((double)t->softmax_scale * M_LOG2E);
}

static int record(vkb_run *rn, char *err, size_t err_size) {
  vkb *b = rn->b;
  const pe_task *t = &rn->t;
  VkCommandBufferAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
                                    .commandPool = b->pool,
                                    .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
                                    .commandBufferCount = 1};
  VkResult r = vkAllocateCommandBuffers(b->dev, &ai, &rn->cmd);
  if (r != VK_SUCCESS) {
    rn->cmd = VK_NULL_HANDLE;
    return vkb_fail(b, r, err, err_size, "vkAllocateCommandBuffers");
  }
  VkCommandBufferBeginInfo bi = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
  if ((r = vkBeginCommandBuffer(rn->cmd, &bi)) != VK_SUCCESS)
    return vkb_fail(b, r, err, err_size, "vkBeginCommandBuffer");
  VkCommandBuffer cb = rn->cmd;
  if (rn->qpool) {
    vkCmdResetQueryPool(cb, rn->qpool, 0, 2);
    vkCmdWriteTimestamp(cb, VK_PIPELINE_STAGE_TOP_OF_PIPE_BIT, rn->qpool, 0);
  }
  /* Earlier uploads and the previous run's reads/writes come first. */
  VkMemoryBarrier mb = {.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
                        .srcAccessMask = VK_ACCESS_TRANSFER_WRITE_BIT | VK_ACCESS_HOST_WRITE_BIT |
                                         VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_SHADER_READ_BIT,
                        .dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT};
  vkCmdPipelineBarrier(cb,
                       VK_PIPELINE_STAGE_TRANSFER_BIT | VK_PIPELINE_STAGE_HOST_BIT |
                           VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT,
                       VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, 0, 1, &mb, 0, NULL, 0, NULL);
  vkb_push p;
  if (t->op == PE_OP_ENCODE) {
    vkCmdBindPipeline(cb, VK_PIPELINE_BIND_POINT_COMPUTE, rn->enc);
    for (uint32_t c = 0; c < rn->nchunks; c++) {
      vkb_chunk *ch = &rn->ch[c];
      for (int which = 0; which < 2; which++) {
        base_push(rn, ch, &p);
        uint64_t per = which ? rn->kv_group : rn->q_group;
        p.total = (uint32_t)(per * ch->ngrp);
        p.seq = (uint32_t)(which ? t->kv_len : t->q_len);
        p.prow_off = which ? 0 : (uint32_t)(t->kv_len - t->q_len);
        uint32_t x, y;
        fold_grid(b, (p.total + VKB_LOCAL - 1) / VKB_LOCAL, &x, &y);
        p.xdim = x;
        vkCmdBindDescriptorSets(cb, VK_PIPELINE_BIND_POINT_COMPUTE, rn->pl_ssbo, 0, 1,
                                which ? &ch->set_b : &ch->set_a, 0, NULL);
        vkCmdPushConstants(cb, rn->pl_ssbo, VK_SHADER_STAGE_COMPUTE_BIT, 0, sizeof p, &p);
        vkCmdDispatch(cb, x, y, 1);
      }
    }
  } else {
    VkPipelineLayout pl = rn->kernel == VKB_KERNEL_CPU ? rn->pl_tex : rn->pl_ssbo;
    if (rn->kpre) {
      vkCmdBindPipeline(cb, VK_PIPELINE_BIND_POINT_COMPUTE, rn->enc);
      for (uint32_t c = 0; c < rn->nchunks; c++) {
        vkb_chunk *ch = &rn->ch[c];
        base_push(rn, ch, &p);
        p.total = (uint32_t)(rn->kv_group * ch->ngrp);
        p.seq = (uint32_t)t->kv_len;
        p.prow_off = 0;
        uint32_t x, y;
        fold_grid(b, (p.total + VKB_LOCAL - 1) / VKB_LOCAL, &x, &y);
        p.xdim = x;
        vkCmdBindDescriptorSets(cb, VK_PIPELINE_BIND_POINT_COMPUTE, rn->pl_ssbo, 0, 1,
                                &ch->set_e, 0, NULL);
        vkCmdPushConstants(cb, rn->pl_ssbo, VK_SHADER_STAGE_COMPUTE_BIT, 0, sizeof p, &p);
        vkCmdDispatch(cb, x, y, 1);
      }
      mb.srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT;
      mb.dstAccessMask = VK_ACCESS_SHADER_READ_BIT;
      vkCmdPipelineBarrier(cb, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT,
                           VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, 0, 1, &mb, 0, NULL, 0, NULL);
    }
    vkCmdBindPipeline(cb, VK_PIPELINE_BIND_POINT_COMPUTE, rn->attn);
    for (uint32_t c = 0; c < rn->nchunks; c++) {
      vkb_chunk *ch = &rn->ch[c];
      base_push(rn, ch, &p);
      vkCmdBindDescriptorSets(cb, VK_PIPELINE_BIND_POINT_COMPUTE, pl, 0, 1, &ch->set_a, 0, NULL);
      vkCmdPushConstants(cb, pl, VK_SHADER_STAGE_COMPUTE_BIT, 0, sizeof p, &p);
      vkCmdDispatch(cb, ch->xdim, ch->ydim, rn->nsplit);
    }
    if (rn->nsplit > 1) {
      mb.srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT;
      mb.dstAccessMask = VK_ACCESS_SHADER_READ_BIT;
      vkCmdPipelineBarrier(cb, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT,
                           VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, 0, 1, &mb, 0, NULL, 0, NULL);
      vkCmdBindPipeline(cb, VK_PIPELINE_BIND_POINT_COMPUTE, rn->comb);
      for (uint32_t c = 0; c < rn->nchunks; c++) {
        vkb_chunk *ch = &rn->ch[c];
        base_push(rn, ch, &p);
        p.total = (uint32_t)(rn->q_group * ch->ngrp);
        uint32_t x, y;
        fold_grid(b, (p.total + VKB_LOCAL - 1) / VKB_LOCAL, &x, &y);
        p.xdim = x;
        vkCmdBindDescriptorSets(cb, VK_PIPELINE_BIND_POINT_COMPUTE, rn->pl_ssbo, 0, 1,
                                &ch->set_b, 0, NULL);
        vkCmdPushConstants(cb, rn->pl_ssbo, VK_SHADER_STAGE_COMPUTE_BIT, 0, sizeof p, &p);
        vkCmdDispatch(cb, x, y, 1);
      }
    }
  }
  /* Results visible to the host (mapped outputs) and to transfers. */
  mb.srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT;
  mb.dstAccessMask = VK_ACCESS_HOST_READ_BIT | VK_ACCESS_TRANSFER_READ_BIT;
  vkCmdPipelineBarrier(cb, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT,
                       VK_PIPELINE_STAGE_HOST_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT, 0, 1, &mb,
                       0, NULL, 0, NULL);
  if (rn->qpool) vkCmdWriteTimestamp(cb, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, rn->qpool, 1);
  if ((r = vkEndCommandBuffer(cb)) != VK_SUCCESS)
    return vkb_fail(b, r, err, err_size, "vkEndCommandBuffer");
  return 0;
}

static int prepare_run(vkb_run *rn, char *err, size_t err_size) {
  vkb *b = rn->b;
  const pe_task *t = &rn->t;
  int rc;
  if ((rc = plan(rn, err, err_size))) return rc;
  if ((rc = create_buffers(rn, err, err_size))) return rc;
  double t0 = now_ms();
  if ((rc = create_pipelines(rn, err, err_size))) return rc;
  double jit = now_ms() - t0;
  vkb_cache_save(b);

  /* Descriptor sets: up to three per chunk. */
  VkDescriptorPoolSize ps[2] = {
      {VK_DESCRIPTOR_TYPE_UNIFORM_TEXEL_BUFFER, 8 * rn->nchunks},
      {VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, 24 * rn->nchunks}};
  VkDescriptorPoolCreateInfo pi = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO,
                                   .maxSets = 3 * rn->nchunks,
                                   .poolSizeCount = 2,
                                   .pPoolSizes = ps};
  VkResult r = vkCreateDescriptorPool(b->dev, &pi, NULL, &rn->dpool);
  if (r != VK_SUCCESS) {
    rn->dpool = VK_NULL_HANDLE;
    return vkb_fail(b, r, err, err_size, "vkCreateDescriptorPool");
  }
  for (uint32_t c = 0; c < rn->nchunks; c++) {
    vkb_chunk *ch = &rn->ch[c];
    if (t->op == PE_OP_ENCODE) {
      vkb_buf *inq[6] = {&ch->q, NULL, NULL, &rn->tab0, &rn->tab1, NULL};
      vkb_buf *ink[6] = {&ch->k, NULL, NULL, &rn->tab0, &rn->tab1, NULL};
      vkb_buf *oq[2] = {&ch->o, NULL}, *ok[2] = {&ch->o2, NULL};
      if ((rc = write_set(rn, rn->dsl_ssbo, 0, inq, oq, &ch->set_a, err, err_size)) ||
          (rc = write_set(rn, rn->dsl_ssbo, 0, ink, ok, &ch->set_b, err, err_size)))
        return rc;
      continue;
    }
    int cpu = rn->kernel == VKB_KERNEL_CPU;
    vkb_buf *in[6] = {&ch->q, rn->kpre ? &ch->kenc : &ch->k, &ch->v, &rn->tab0, &rn->tab1,
                      &rn->slopes};
    if (rn->kpre) {
      vkb_buf *ink[6] = {&ch->k, NULL, NULL, &rn->tab0, &rn->tab1, NULL};
      vkb_buf *ok[2] = {&ch->kenc, NULL};
      if ((rc = write_set(rn, rn->dsl_ssbo, 0, ink, ok, &ch->set_e, err, err_size))) return rc;
    }
    vkb_buf *outs[2] = {&ch->o, &ch->part};
    if ((rc = write_set(rn, cpu ? rn->dsl_tex : rn->dsl_ssbo, cpu, in, outs, &ch->set_a, err,
                        err_size)))
      return rc;
    if (rn->nsplit > 1) {
      vkb_buf *none[6] = {NULL, NULL, NULL, NULL, NULL, NULL};
      if ((rc = write_set(rn, rn->dsl_ssbo, 0, none, outs, &ch->set_b, err, err_size)))
        return rc;
    }
  }

  if (b->info.timestamp_bits && b->info.props.limits.timestampPeriod > 0) {
    VkQueryPoolCreateInfo qi = {.sType = VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO,
                                .queryType = VK_QUERY_TYPE_TIMESTAMP,
                                .queryCount = 2};
    if (vkCreateQueryPool(b->dev, &qi, NULL, &rn->qpool) != VK_SUCCESS)
      rn->qpool = VK_NULL_HANDLE;
  }
  VkFenceCreateInfo fi = {.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
  if ((r = vkCreateFence(b->dev, &fi, NULL, &rn->fence)) != VK_SUCCESS) {
    rn->fence = VK_NULL_HANDLE;
    return vkb_fail(b, r, err, err_size, "vkCreateFence");
  }
  if ((rc = record(rn, err, err_size))) return rc;

  if (t->op == PE_OP_ENCODE)
    snprintf(b->last_kernel, sizeof b->last_kernel,
             "encode.comp, %u chunk%s; pipeline %.0f ms", rn->nchunks,
             rn->nchunks == 1 ? "" : "s", jit);
  else if (rn->kernel == VKB_KERNEL_CPU)
    snprintf(b->last_kernel, sizeof b->last_kernel,
             "attn_cpu.comp (SIMD lanes over head_dim)%s: subgroup %u, %u rows "
             "per workgroup, %u key split%s, %u chunk%s; pipelines %.0f ms",
             rn->kpre ? " after an encode pass over K" : "", rn->sg, rn->rows, rn->nsplit,
             rn->nsplit == 1 ? "" : "s", rn->nchunks,
             rn->nchunks == 1 ? "" : "s", jit);
  else
    snprintf(b->last_kernel, sizeof b->last_kernel,
             "attn_gpu.comp (shared-memory tiles): %u rows x %u invocations, "
             "%u keys per tile, %u key split%s, %u chunk%s; pipelines %.0f ms",
             rn->rows, rn->tpr, rn->bc, rn->nsplit, rn->nsplit == 1 ? "" : "s",
             rn->nchunks, rn->nchunks == 1 ? "" : "s", jit);
  return vkb_check_validation(b, err, err_size);
}

int vkb_prepare(void *backend, const pe_task *task, void **run, char *err,
                size_t err_size) {
  vkb *b = backend;
  *run = NULL;
  if (b->lost)
    return pe_plugin_error(err, err_size, PE_EDEVICE, "device lost earlier; reopen the backend");
  if (!task || task->struct_size < offsetof(pe_task, slopes) + sizeof task->slopes)
    return pe_plugin_error(err, err_size, PE_EINVAL, "task struct too small");
  vkb_run *rn = calloc(1, sizeof *rn);
  if (!rn) return pe_plugin_error(err, err_size, PE_ENOMEM, "out of memory");
  rn->b = b;
  memcpy(&rn->t, task, sizeof rn->t);
  int rc = prepare_run(rn, err, err_size);
  if (rc < 0) {
    vkb_release(rn);
    return rc;
  }
  *run = rn;
  return 0;
}

int vkb_execute(void *run, double *device_ms, char *err, size_t err_size) {
  vkb_run *rn = run;
  vkb *b = rn->b;
  if (device_ms) *device_ms = -1;
  if (b->lost)
    return pe_plugin_error(err, err_size, PE_EDEVICE, "device lost earlier; reopen the backend");
  VkResult r = vkResetFences(b->dev, 1, &rn->fence);
  if (r != VK_SUCCESS) return vkb_fail(b, r, err, err_size, "vkResetFences");
  VkSubmitInfo si = {.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO,
                     .commandBufferCount = 1,
                     .pCommandBuffers = &rn->cmd};
  if ((r = vkQueueSubmit(b->queue, 1, &si, rn->fence)) != VK_SUCCESS)
    return vkb_fail(b, r, err, err_size, "vkQueueSubmit");
  if ((r = vkWaitForFences(b->dev, 1, &rn->fence, VK_TRUE, UINT64_MAX)) != VK_SUCCESS)
    return vkb_fail(b, r, err, err_size, "vkWaitForFences");
  if (rn->qpool && device_ms) {
    uint64_t ts[2];
    r = vkGetQueryPoolResults(b->dev, rn->qpool, 0, 2, sizeof ts, ts, sizeof ts[0],
                              VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT);
    if (r == VK_SUCCESS) {
      uint64_t mask = b->info.timestamp_bits >= 64
                          ? ~(uint64_t)0
                          : (((uint64_t)1 << b->info.timestamp_bits) - 1);
      uint64_t dt = (ts[1] - ts[0]) & mask;
      *device_ms = dt * (double)b->info.props.limits.timestampPeriod / 1e6;
    } else if (r == VK_ERROR_DEVICE_LOST) {
      return vkb_fail(b, r, err, err_size, "vkGetQueryPoolResults");
    }
  }
  rn->ran = 1;
  return vkb_check_validation(b, err, err_size);
}

int vkb_fetch(void *run, float *out0, float *out1, char *err, size_t err_size) {
  vkb_run *rn = run;
  vkb *b = rn->b;
  const pe_task *t = &rn->t;
  int rc = 0;
  if (b->lost)
    return pe_plugin_error(err, err_size, PE_EDEVICE, "device lost earlier; reopen the backend");
  if (!rn->ran)
    return pe_plugin_error(err, err_size, PE_ESTATE, "fetch before execute");
  for (uint32_t c = 0; c < rn->nchunks && rc == 0; c++) {
    vkb_chunk *ch = &rn->ch[c];
    size_t qn = rn->q_group * ch->ngrp, kn = rn->kv_group * ch->ngrp;
    if (out0)
      rc = download(b, &ch->o, out0 + rn->q_group * ch->grp0, qn * 4, err, err_size);
    if (rc == 0 && t->op == PE_OP_ENCODE && out1)
      rc = download(b, &ch->o2, out1 + rn->kv_group * ch->grp0, kn * 4, err, err_size);
  }
  if (rc) return rc;
  return vkb_check_validation(b, err, err_size);
}
