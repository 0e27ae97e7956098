/* libpe opencl backend: the on-disk program-binary cache.
 *
 * Entry file DIR/opencl/<16 hex digits>.clbin, the digits being the FNV-1a
 * hash of the key text (kernel source hash, build options, platform, device
 * and driver versions: see opencl.c).  Layout, little-endian as written by
 * this machine (an entry from another byte order fails the magic check):
 *
 *   char     magic[8]   "PEOCLBN1"
 *   uint64_t key_len, bin_len
 *   uint64_t key_hash   FNV-1a of the key text
 *   uint64_t bin_hash   FNV-1a of the binary
 *   key text (key_len bytes), binary (bin_len bytes)
 *
 * A reader accepts an entry only when the file size, both hashes and the
 * whole key text match; anything else is "corrupt or stale" and the
 * caller rebuilds and rewrites it.  Writers go through mkstemp() in the
 * same folder and rename(), which is atomic on POSIX file systems.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ocl_internal.h"

static const char pe_ocl_magic[8] = {'P', 'E', 'O', 'C', 'L', 'B', 'N', '1'};
#define PE_OCL_HEADER_SIZE (8 + 4 * 8)

uint64_t pe_ocl_hash(uint64_t h, const void *data, size_t len) {
  const unsigned char *p = data;
  for (size_t i = 0; i < len; ++i) {
    h ^= p[i];
    h *= UINT64_C(0x100000001b3);
  }
  return h;
}

int pe_ocl_cache_path(const char *dir, const char *key, char *path,
                      size_t size) {
  char sub[4096];
  const uint64_t h = pe_ocl_hash(PE_OCL_FNV_OFFSET, key, strlen(key));
  int n = pe_ocl_fmt(sub, sizeof sub, "%s/opencl", dir);
  if (n < 0 || (size_t)n >= sizeof sub) return -1;
  if (mkdir(sub, 0777) != 0 && errno != EEXIST) return -1;
  n = pe_ocl_fmt(path, size, "%s/%016llx.clbin", sub, (unsigned long long)h);
  return n < 0 || (size_t)n >= size ? -1 : 0;
}

static void put64(unsigned char *p, uint64_t v) { memcpy(p, &v, 8); }
static uint64_t get64(const unsigned char *p) {
  uint64_t v;
  memcpy(&v, p, 8);
  return v;
}

int pe_ocl_cache_read(const char *path, const char *key, unsigned char **bin,
                      size_t *bin_len, char *why, size_t why_size) {
  FILE *f = fopen(path, "rb");
  unsigned char hdr[PE_OCL_HEADER_SIZE];
  unsigned char *buf = NULL;
  const size_t klen = strlen(key);
  struct stat st;
  *bin = NULL;
  *bin_len = 0;
  if (!f) {
    if (errno == ENOENT) return 0;
    pe_ocl_fmt(why, why_size, "%s: %s", path, strerror(errno));
    return -1;
  }
  if (fstat(fileno(f), &st) != 0 ||
      fread(hdr, 1, sizeof hdr, f) != sizeof hdr) {
    pe_ocl_fmt(why, why_size, "%s: shorter than its header", path);
    goto bad;
  }
  if (memcmp(hdr, pe_ocl_magic, 8) != 0) {
    pe_ocl_fmt(why, why_size, "%s: bad magic", path);
    goto bad;
  }
  const uint64_t key_len = get64(hdr + 8), blen = get64(hdr + 16);
  const uint64_t key_hash = get64(hdr + 24), bin_hash = get64(hdr + 32);
  if (key_len != klen || blen == 0 || blen > (uint64_t)st.st_size ||
      (uint64_t)st.st_size != PE_OCL_HEADER_SIZE + key_len + blen) {
    pe_ocl_fmt(why, why_size,
             "%s: length mismatch (file %lld bytes, header says %llu + %llu)",
             path, (long long)st.st_size, (unsigned long long)key_len,
             (unsigned long long)blen);
    goto bad;
  }
  buf = malloc(klen + blen + 1);
  if (!buf || fread(buf, 1, klen + blen, f) != klen + blen) {
    pe_ocl_fmt(why, why_size, "%s: short read", path);
    goto bad;
  }
  if (key_hash != pe_ocl_hash(PE_OCL_FNV_OFFSET, key, klen) ||
      memcmp(buf, key, klen) != 0) {
    pe_ocl_fmt(why, why_size, "%s: key mismatch (hash collision or stale)",
             path);
    goto bad;
  }
  if (bin_hash != pe_ocl_hash(PE_OCL_FNV_OFFSET, buf + klen, blen)) {
    pe_ocl_fmt(why, why_size, "%s: binary hash mismatch (corrupt)", path);
    goto bad;
  }
  memmove(buf, buf + klen, blen);
  fclose(f);
  *bin = buf;
  *bin_len = blen;
  return 1;
bad:
  free(buf);
  fclose(f);
  return -1;
}

int pe_ocl_cache_write(const char *path, const char *key,
                       const unsigned char *bin, size_t bin_len, char *why,
                       size_t why_size) {
  char tmp[4200];
  unsigned char hdr[PE_OCL_HEADER_SIZE];
  const size_t klen = strlen(key);
  int n = pe_ocl_fmt(tmp, sizeof tmp, "%s.tmp.XXXXXX", path);
  if (n < 0 || (size_t)n >= sizeof tmp) {
    pe_ocl_fmt(why, why_size, "%s: path too long", path);
    return -1;
  }
  const int fd = mkstemp(tmp);
  if (fd < 0) {
    pe_ocl_fmt(why, why_size, "%s: %s", tmp, strerror(errno));
    return -1;
  }
  FILE *f = fdopen(fd, "wb");
  if (!f) {
    pe_ocl_fmt(why, why_size, "%s: %s", tmp, strerror(errno));
    close(fd);
    unlink(tmp);
    return -1;
  }
  memcpy(hdr, pe_ocl_magic, 8);
  put64(hdr + 8, klen);
  put64(hdr + 16, bin_len);
  put64(hdr + 24, pe_ocl_hash(PE_OCL_FNV_OFFSET, key, klen));
  put64(hdr + 32, pe_ocl_hash(PE_OCL_FNV_OFFSET, bin, bin_len));
  int ok = fwrite(hdr, 1, sizeof hdr, f) == sizeof hdr &&
           fwrite(key, 1, klen, f) == klen &&
           fwrite(bin, 1, bin_len, f) == bin_len;
  ok = (fclose(f) == 0) && ok;
  if (!ok) {
    pe_ocl_fmt(why, why_size, "%s: write failed: %s", tmp, strerror(errno));
    unlink(tmp);
    return -1;
  }
  if (rename(tmp, path) != 0) {
    pe_ocl_fmt(why, why_size, "rename %s -> %s: %s", tmp, path,
             strerror(errno));
    unlink(tmp);
    return -1;
  }
  return 0;
}
