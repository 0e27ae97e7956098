/* .npy read and write (NumPy format 1.0/2.0/3.0), float32 little-endian,
 * C order only.  The reader trusts nothing: magic, version, header length,
 * dict syntax, dtype, order, shape and the exact data size are all checked.
 * Format: https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html */
#include "internal.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#define NPY_MAX_HEADER 65536

static int npy_bad(pe_ctx *ctx, const char *path, const char *why) {
  return pe__fail(ctx, PE_ENPY, "%s: not a valid float32 .npy: %s", path, why);
}

static const char *skip_ws(const char *p) {
  while (*p == ' ' || *p == '\t' || *p == '\n') p++;
  return p;
}

/* Parse "'key': " at p; returns the position after the colon or NULL. */
static const char *parse_key(const char *p, char *key, size_t size) {
  p = skip_ws(p);
  char q = *p;
  if (q != '\'' && q != '"') return NULL;
  const char *end = strchr(p + 1, q);
  if (!end || (size_t)(end - p - 1) >= size) return NULL;
  memcpy(key, p + 1, (size_t)(end - p - 1));
  key[end - p - 1] = '\0';
  p = skip_ws(end + 1);
  return *p == ':' ? skip_ws(p + 1) : NULL;
}

static const char *parse_shape(const char *p, pe_tensor *t) {
  if (*p != '(') return NULL;
  p = skip_ws(p + 1);
  t->ndim = 0;
  while (*p != ')') {
    if (!isdigit((unsigned char)*p) || t->ndim == 8) return NULL;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(p, &end, 10);
    if (errno) return NULL;
    t->shape[t->ndim++] = v;
    p = skip_ws(end);
    if (*p == ',') p = skip_ws(p + 1);
    else if (*p != ')') return NULL;
  }
  return p + 1;
}

static int parse_header(pe_ctx *ctx, const char *path, const char *h, pe_tensor *t) {
  bool have_descr = false, have_order = false, have_shape = false;
  const char *p = skip_ws(h);
  if (*p++ != '{') return npy_bad(ctx, path, "header is not a dict");
  for (;;) {
    p = skip_ws(p);
    if (*p == '}') break;
    char key[32];
    if (!(p = parse_key(p, key, sizeof key))) return npy_bad(ctx, path, "malformed header dict");
    if (!strcmp(key, "descr")) {
      if (strncmp(p, "'<f4'", 5) && strncmp(p, "\"<f4\"", 5)) {
        char got[16] = "";
        sscanf(p, "%15[^,}]", got);
        char why[96];
        snprintf(why, sizeof why, "dtype %s (expected '<f4', little-endian float32)", got);
        return npy_bad(ctx, path, why);
      }
      p += 5;
      have_descr = true;
    } else if (!strcmp(key, "fortran_order")) {
      if (!strncmp(p, "False", 5)) p += 5;
      else if (!strncmp(p, "True", 4)) return npy_bad(ctx, path, "Fortran order (expected C order)");
      else return npy_bad(ctx, path, "fortran_order is not a bool");
      have_order = true;
    } else if (!strcmp(key, "shape")) {
      if (!(p = parse_shape(p, t)))
        return npy_bad(ctx, path, "malformed shape (expected a tuple of at most 8 "
                                  "non-negative integers below 2^64)");
      have_shape = true;
    } else {
      return npy_bad(ctx, path, "unknown header key");
    }
    p = skip_ws(p);
    if (*p == ',') p++;
    else if (*p != '}') return npy_bad(ctx, path, "malformed header dict");
  }
  p = skip_ws(p + 1);
  if (*p) return npy_bad(ctx, path, "junk after the header dict");
  if (!have_descr || !have_order || !have_shape)
    return npy_bad(ctx, path, "header lacks descr, fortran_order or shape");
  return 0;
}

static int read_exact(FILE *fp, void *buf, size_t n) { return fread(buf, 1, n, fp) == n ? 0 : -1; }

static int read_header(pe_ctx *ctx, const char *path, FILE *fp, pe_tensor *t, long *data_off) {
  unsigned char pre[12];
  if (read_exact(fp, pre, 6) || memcmp(pre, "\x93NUMPY", 6))
    return npy_bad(ctx, path, "bad magic (not a .npy file)");
  if (read_exact(fp, pre + 6, 4)) return npy_bad(ctx, path, "truncated before the header");
  uint32_t hlen;
  size_t pre_len;
  if (pre[6] == 1 && pre[7] == 0) {
    hlen = (uint32_t)pre[8] | (uint32_t)pre[9] << 8;
    pre_len = 10;
  } else if ((pre[6] == 2 || pre[6] == 3) && pre[7] == 0) {
    if (read_exact(fp, pre + 10, 2)) return npy_bad(ctx, path, "truncated before the header");
    hlen = (uint32_t)pre[8] | (uint32_t)pre[9] << 8 | (uint32_t)pre[10] << 16 | (uint32_t)pre[11] << 24;
    pre_len = 12;
  } else {
    char why[64];
    snprintf(why, sizeof why, "unsupported format version %u.%u", pre[6], pre[7]);
    return npy_bad(ctx, path, why);
  }
  if (hlen == 0 || hlen > NPY_MAX_HEADER) return npy_bad(ctx, path, "header length out of range");
  char *h = malloc(hlen + 1);
  if (!h) return pe__fail(ctx, PE_ENOMEM, "out of memory");
  if (read_exact(fp, h, hlen)) {
    free(h);
    return npy_bad(ctx, path, "header length runs past the end of the file");
  }
  h[hlen] = '\0';
  if (strlen(h) != hlen) {
    free(h);
    return npy_bad(ctx, path, "NUL byte in the header");
  }
  int rc = parse_header(ctx, path, h, t);
  free(h);
  *data_off = (long)(pre_len + hlen);
  return rc;
}

int pe_npy_read(pe_ctx *ctx, const char *path, pe_tensor *out) {
  memset(out, 0, sizeof *out);
  /* O_NONBLOCK: a FIFO must not hang the open; only regular files are
   * read (the data size is checked against the file's size). */
  int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return pe__fail(ctx, PE_EIO, "%s: cannot open: %s", path, strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return pe__fail(ctx, PE_EIO, "%s: not a regular file", path);
  }
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  FILE *fp = fdopen(fd, "rb");
  if (!fp) {
    close(fd);
    return pe__fail(ctx, PE_EIO, "%s: cannot open: %s", path, strerror(errno));
  }
  pe_tensor t = {0};
  long off = 0;
  int rc = read_header(ctx, path, fp, &t, &off);
  uint64_t count = 1, bytes = 0;
  for (uint32_t i = 0; rc == 0 && i < t.ndim; i++)
    if (!pe__mul_u64(count, t.shape[i], &count)) rc = npy_bad(ctx, path, "shape product overflows");
  if (rc == 0 && !pe__mul_u64(count, 4, &bytes)) rc = npy_bad(ctx, path, "shape product overflows");
  if (rc == 0 && (uint64_t)st.st_size - (uint64_t)off != bytes) {
    char why[160];
    snprintf(why, sizeof why, "data is %lld bytes but the shape needs %llu",
             (long long)st.st_size - off, (unsigned long long)bytes);
    rc = npy_bad(ctx, path, why);
  }
  if (rc == 0 && !(t.data = pe__alloc_array(bytes, false))) rc = pe__fail(ctx, PE_ENOMEM, "%s: out of memory", path);
  if (rc == 0 && read_exact(fp, t.data, bytes)) rc = pe__fail(ctx, PE_EIO, "%s: read error", path);
  fclose(fp);
  if (rc) {
    free(t.data);
    return rc;
  }
  *out = t;
  return 0;
}

void pe_tensor_free(pe_tensor *t) {
  if (!t) return;
  free(t->data);
  t->data = NULL;
}

int pe_npy_write(pe_ctx *ctx, const char *path, const float *data, uint32_t ndim,
                 const uint64_t *shape) {
  if (ndim > 8) return pe__fail(ctx, PE_EINVAL, "%s: at most 8 dimensions", path);
  char dict[512];
  int n = snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, 'shape': (");
  uint64_t count = 1;
  for (uint32_t i = 0; i < ndim; i++) {
    n += snprintf(dict + n, sizeof dict - (size_t)n, "%llu%s", (unsigned long long)shape[i],
                  ndim == 1 ? "," : i + 1 < ndim ? ", " : "");
    if (!pe__mul_u64(count, shape[i], &count))
      return pe__fail(ctx, PE_EINVAL, "%s: shape product overflows", path);
  }
  n += snprintf(dict + n, sizeof dict - (size_t)n, "), }");
  /* Pad with spaces so that the data starts on a 64-byte boundary. */
  size_t total = 10 + (size_t)n + 1;
  size_t pad = (64 - total % 64) % 64;
  size_t hlen = (size_t)n + pad + 1;
  unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0,
                           (unsigned char)(hlen & 0xff), (unsigned char)(hlen >> 8)};
  pe__atomic_file af;
  int rc = pe__atomic_open(ctx, path, &af);
  if (rc) return rc;
  fwrite(pre, 1, sizeof pre, af.fp);
  fwrite(dict, 1, (size_t)n, af.fp);
  for (size_t i = 0; i < pad; i++) fputc(' ', af.fp);
  fputc('\n', af.fp);
  fwrite(data, sizeof(float), count, af.fp);
  return pe__atomic_commit(ctx, &af);
}
