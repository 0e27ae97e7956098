/* libpe opencl backend: private declarations (never installed). */
#ifndef PE_OCL_INTERNAL_H
#define PE_OCL_INTERNAL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdint.h>

#ifndef CL_TARGET_OPENCL_VERSION
#define CL_TARGET_OPENCL_VERSION 120
#endif
#include <CL/cl.h>

#include "libpe/pe_plugin.h"

#define PE_OCL_NAME "opencl"

/* snprintf through vsnprintf: messages are truncated on purpose where
 * they do not fit, without gcc's -Wformat-truncation noise. */
static inline int pe_ocl_fmt(char *buf, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static inline int pe_ocl_fmt(char *buf, size_t size, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  const int n = vsnprintf(buf, size, fmt, ap);
  va_end(ap);
  return n;
}

/* Kernel sources, embedded at build time from backends/opencl/ *.cl by
 * embed.sh (generated file opencl_kernels.c; NUL-terminated). */
extern const char pe_ocl_src_common[];
extern const char pe_ocl_src_attention_cpu[];
extern const char pe_ocl_src_attention_gpu[];
extern const char pe_ocl_src_encode[];

/* "CL_OUT_OF_RESOURCES" for -5, "CL error -123" for unknown codes. */
const char *pe_ocl_strerror(cl_int err, char *buf, size_t size);

/* 64-bit FNV-1a, continued from `h` (start with PE_OCL_FNV_OFFSET). */
#define PE_OCL_FNV_OFFSET UINT64_C(0xcbf29ce484222325)
uint64_t pe_ocl_hash(uint64_t h, const void *data, size_t len);

/* ---- program-binary cache (cache.c) ------------------------------------
 * One file per key under DIR/opencl/: a header (magic, lengths, hashes),
 * the full key text and the device binary.  Entries are written to a
 * temporary file and renamed, so concurrent runs never see half a file;
 * a short, mismatched or corrupt entry is reported and rebuilt. */

/* Path of the entry for `key` (DIR/opencl/<hash>.clbin) into `path`. */
int pe_ocl_cache_path(const char *dir, const char *key, char *path,
                      size_t size);

/* Read the entry: 1 and a malloc'ed binary when it is present and intact,
 * 0 when absent, -1 when present but unusable (reason in `why`). */
int pe_ocl_cache_read(const char *path, const char *key, unsigned char **bin,
                      size_t *bin_len, char *why, size_t why_size);

/* Write the entry atomically; 0, or -1 with the reason in `why`. */
int pe_ocl_cache_write(const char *path, const char *key,
                       const unsigned char *bin, size_t bin_len, char *why,
                       size_t why_size);

#endif /* PE_OCL_INTERNAL_H */
