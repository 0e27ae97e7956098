/* libpe vulkan backend: the VkPipelineCache, persisted across runs.
 *
 * File: <cache_dir>/vulkan-<vendor>-<device>-<pipelineCacheUUID>.bin, where
 * cache_dir is the host's per-user cache directory (PE_CACHE_DIR,
 * XDG_CACHE_HOME/libpe, ~/.cache/libpe); none usable: not persisted.
 * Layout: our 24-byte header (magic "PEVKPC01", payload size, FNV-1a 64 of
 * the payload), then the driver's cache data, whose own header
 * (VkPipelineCacheHeaderVersionOne) must name this device.  Anything that
 * does not check out is ignored with a note: a corrupt or foreign file
 * costs a recompile, never a crash.  Writes go to a temporary file in the
 * same directory, renamed over the old one; after a failed write (said
 * once) the cache stays in memory for the rest of the run.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vk_internal.h"

static const char vkb_magic[8] = {'P', 'E', 'V', 'K', 'P', 'C', '0', '1'};
#define VKB_HDR 24

static uint64_t fnv1a(const unsigned char *p, size_t n) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ull;
  return h;
}

static uint32_t rd32(const unsigned char *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
         (uint32_t)p[3] << 24;
}

static uint64_t rd64(const unsigned char *p) {
  return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

static void wr64(unsigned char *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}

/* Why `data` (a driver cache blob) does not belong to this device, or NULL. */
static const char *foreign(const vkb *b, const unsigned char *data, size_t n) {
  if (n < 16 + VK_UUID_SIZE) return "too short for a pipeline cache header";
  if (rd32(data) < 16 + VK_UUID_SIZE || rd32(data) > n) return "bad header size";
  if (rd32(data + 4) != VK_PIPELINE_CACHE_HEADER_VERSION_ONE)
    return "unknown header version";
  if (rd32(data + 8) != b->info.props.vendorID ||
      rd32(data + 12) != b->info.props.deviceID)
    return "written for another device";
  if (memcmp(data + 16, b->info.props.pipelineCacheUUID, VK_UUID_SIZE))
    return "written by another driver build";
  return NULL;
}

/* Read and check the file; on success *data (malloc'd) and *n. */
static const char *load_file(const vkb *b, const char *path,
                             unsigned char **data, size_t *n) {
  *data = NULL;
  *n = 0;
  FILE *f = fopen(path, "rb");
  if (!f) return errno == ENOENT ? "" : "cannot be opened";
  unsigned char hdr[VKB_HDR];
  const char *why = NULL;
  unsigned char *buf = NULL;
  if (fread(hdr, 1, VKB_HDR, f) != VKB_HDR || memcmp(hdr, vkb_magic, 8)) {
    why = "not a libpe pipeline cache";
    goto out;
  }
  uint64_t size = rd64(hdr + 8);
  if (size == 0 || size > ((uint64_t)1 << 30)) {
    why = "implausible size";
    goto out;
  }
  buf = malloc((size_t)size + 1);
  if (!buf) {
    why = "out of memory";
    goto out;
  }
  if (fread(buf, 1, (size_t)size + 1, f) != size) {
    why = "truncated or has trailing bytes";
    goto out;
  }
  if (fnv1a(buf, (size_t)size) != rd64(hdr + 16)) {
    why = "checksum mismatch (corrupt)";
    goto out;
  }
  if ((why = foreign(b, buf, (size_t)size))) goto out;
  *data = buf;
  *n = (size_t)size;
  buf = NULL;
out:
  free(buf);
  fclose(f);
  return why;
}

void vkb_cache_open(vkb *b) {
  unsigned char *data = NULL;
  size_t n = 0;
  b->cache_path[0] = 0;
  b->cache_error[0] = 0;
  if (b->use_cache && b->host && PE_HAS_FIELD(b->host, pe_host, cache_dir) &&
      b->host->cache_dir) {
    const char *dir = b->host->cache_dir(b->host);
    if (dir && *dir) {
      char uuid[2 * VK_UUID_SIZE + 1];
      for (unsigned i = 0; i < VK_UUID_SIZE; i++)
        snprintf(uuid + 2 * i, 3, "%02x", b->info.props.pipelineCacheUUID[i]);
      int w = snprintf(b->cache_path, sizeof b->cache_path,
                       "%s/vulkan-%04x-%04x-%s.bin", dir,
                       b->info.props.vendorID, b->info.props.deviceID, uuid);
      if (w < 0 || (size_t)w >= sizeof b->cache_path) b->cache_path[0] = 0;
    }
  }
  if (b->cache_path[0]) {
    const char *why = load_file(b, b->cache_path, &data, &n);
    if (why && *why)
      pe_plugin_log(b->host, PE_LOG_WARN, VKB_NAME,
                    "ignoring pipeline cache %s: %s", b->cache_path, why);
  }
  VkPipelineCacheCreateInfo ci = {.sType = VK_STRUCTURE_TYPE_PIPELINE_CACHE_CREATE_INFO,
                                  .initialDataSize = data ? n : 0,
                                  .pInitialData = data};
  if (vkCreatePipelineCache(b->dev, &ci, NULL, &b->pcache) != VK_SUCCESS) {
    /* The driver refused the data: start empty. */
    ci.initialDataSize = 0;
    ci.pInitialData = NULL;
    if (vkCreatePipelineCache(b->dev, &ci, NULL, &b->pcache) != VK_SUCCESS)
      b->pcache = VK_NULL_HANDLE;
  }
  b->cache_saved = data ? n : 0;
  free(data);
}

void vkb_cache_save(vkb *b) {
  size_t n = 0;
  if (!b->pcache || !b->cache_path[0] || b->cache_error[0]) return;
  if (vkGetPipelineCacheData(b->dev, b->pcache, &n, NULL) != VK_SUCCESS || !n ||
      n == b->cache_saved)
    return;
  unsigned char *buf = malloc(VKB_HDR + n);
  if (!buf) return;
  if (vkGetPipelineCacheData(b->dev, b->pcache, &n, buf + VKB_HDR) != VK_SUCCESS ||
      foreign(b, buf + VKB_HDR, n)) {
    free(buf);
    return;
  }
  memcpy(buf, vkb_magic, 8);
  wr64(buf + 8, n);
  wr64(buf + 16, fnv1a(buf + VKB_HDR, n));
  char tmp[4096 + 16];
  snprintf(tmp, sizeof tmp, "%s.XXXXXX", b->cache_path);
  int fd = mkstemp(tmp);
  int ok = fd >= 0;
  if (ok) {
    size_t off = 0, total = VKB_HDR + n;
    while (ok && off < total) {
      ssize_t w = write(fd, buf + off, total - off);
      if (w < 0 && errno == EINTR) continue;
      ok = w > 0;
      if (ok) off += (size_t)w;
    }
    ok = close(fd) == 0 && ok;
    ok = ok && rename(tmp, b->cache_path) == 0;
    if (!ok) unlink(tmp);
  }
  if (ok) {
    b->cache_saved = n;
  } else {
    /* Said once: the retry at close would fail the same way. */
    snprintf(b->cache_error, sizeof b->cache_error, "could not write: %s",
             strerror(errno));
    pe_plugin_log(b->host, PE_LOG_WARN, VKB_NAME,
                  "could not write pipeline cache %s: %s", b->cache_path,
                  strerror(errno));
  }
  free(buf);
}

void vkb_cache_close(vkb *b) {
  if (!b->pcache) return;
  vkb_cache_save(b);
  vkDestroyPipelineCache(b->dev, b->pcache, NULL);
  b->pcache = VK_NULL_HANDLE;
}
