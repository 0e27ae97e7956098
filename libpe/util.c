/* Small utilities: strings, overflow-checked products, clocks, paths and
 * atomic output files. */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

char *pe__strdup(const char *s) { return s ? pe__strndup(s, strlen(s)) : NULL; }

char *pe__strndup(const char *s, size_t n) {
  char *d = malloc(n + 1);
  if (!d) return NULL;
  memcpy(d, s, n);
  d[n] = '\0';
  return d;
}

char *pe__asprintf(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0) return NULL;
  char *s = malloc((size_t)n + 1);
  if (!s) return NULL;
  va_start(ap, fmt);
  vsnprintf(s, (size_t)n + 1, fmt, ap);
  va_end(ap);
  return s;
}

void *pe__alloc_array(size_t bytes, bool zero) {
  void *p = NULL;
  size_t n = bytes ? bytes : 1;
  n = (n + PE_ARRAY_ALIGN - 1) / PE_ARRAY_ALIGN * PE_ARRAY_ALIGN;
  if (n < bytes || posix_memalign(&p, PE_ARRAY_ALIGN, n) != 0) return NULL;
  if (zero) memset(p, 0, n);
  return p;
}

bool pe__mul_u64(uint64_t a, uint64_t b, uint64_t *out) {
  return !__builtin_mul_overflow(a, b, out);
}

double pe__now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

char *pe__path_join(const char *base_dir, const char *path) {
  if (path[0] == '/' || !base_dir || !base_dir[0]) return pe__strdup(path);
  return pe__asprintf("%s/%s", base_dir, path);
}

char *pe__dirname(const char *path) {
  const char *slash = strrchr(path, '/');
  if (!slash) return pe__strdup(".");
  if (slash == path) return pe__strdup("/");
  return pe__strndup(path, (size_t)(slash - path));
}

/* Devices and pipes (/dev/null, /dev/stdout, a FIFO) are written in place:
 * renaming over them would replace the special file. */
static bool is_special(const struct stat *st) {
  return !S_ISREG(st->st_mode) && !S_ISDIR(st->st_mode);
}

/* A fresh name for the temporary file: `tmp` ends in six X, replaced here.
 * It need only be unlikely to collide (O_EXCL refuses an existing name),
 * not secret: clock, pid and a process-wide counter, mixed (splitmix64). */
static void temp_name(char *tmp) {
  static const char digits[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  static uint64_t counter;
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  uint64_t z = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^ ((uint64_t)getpid() << 40) ^
               __atomic_add_fetch(&counter, 0x9e3779b97f4a7c15ull, __ATOMIC_RELAXED);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  z ^= z >> 31;
  for (char *x = tmp + strlen(tmp) - 6; *x; x++, z /= 62) *x = digits[z % 62];
}

/* Create the temporary file as fopen creates a file: mode 0666, less the
 * umask (and as the directory's default ACL says), applied by the kernel.
 * Not mkstemp: it creates 0600 whatever the umask, and fixing that with
 * fchmod needs the umask, whose only reader, umask(), also sets it --
 * process-wide, racing with any thread of the host program that creates
 * a file meanwhile (libpe is used from threads). */
static int create_temp(char *tmp) {
  for (int attempt = 0; attempt < 100; attempt++) {
    temp_name(tmp);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd >= 0 || errno != EEXIST) return fd;
  }
  return -1; /* errno EEXIST */
}

static int open_in_place(pe_ctx *ctx, const char *path, pe__atomic_file *af) {
  if (!(af->fp = fopen(path, "wb")))
    return pe__fail(ctx, PE_EIO, "%s: cannot open: %s", path, strerror(errno));
  return 0;
}

int pe__atomic_open(pe_ctx *ctx, const char *path, pe__atomic_file *af) {
  memset(af, 0, sizeof *af);
  struct stat st;
  bool exists = stat(path, &st) == 0;
  if (exists && is_special(&st)) return open_in_place(ctx, path, af);
  af->path = pe__strdup(path);
  af->tmp_path = pe__asprintf("%s.tmp.XXXXXX", path);
  if (!af->path || !af->tmp_path) {
    pe__atomic_abort(af);
    return pe__fail(ctx, PE_ENOMEM, "out of memory");
  }
  int fd = create_temp(af->tmp_path);
  if (fd < 0) {
    int e = errno;
    free(af->tmp_path);
    af->tmp_path = NULL;
    pe__atomic_abort(af);
    return pe__fail(ctx, PE_EIO, "%s: cannot create a temporary file beside it: %s",
                    path, strerror(e));
  }
  /* Replacing a file keeps its permission bits, as writing it in place
   * would.  Best effort: a file system without modes refuses, and the
   * content matters more than the mode. */
  if (exists && S_ISREG(st.st_mode)) (void)fchmod(fd, st.st_mode & 07777);
  af->fp = fdopen(fd, "wb");
  if (!af->fp) {
    close(fd);
    pe__atomic_abort(af);
    return pe__fail(ctx, PE_EIO, "%s: fdopen failed", path);
  }
  return 0;
}

int pe__atomic_commit(pe_ctx *ctx, pe__atomic_file *af) {
  if (!af->tmp_path) { /* a special file written in place */
    int bad = ferror(af->fp) | (fclose(af->fp) != 0);
    af->fp = NULL;
    return bad ? pe__fail(ctx, PE_EIO, "write failed") : 0;
  }
  int bad = ferror(af->fp);
  bad |= fflush(af->fp) != 0;
  bad |= fsync(fileno(af->fp)) != 0;
  bad |= fclose(af->fp) != 0;
  af->fp = NULL;
  if (bad || rename(af->tmp_path, af->path) != 0) {
    int e = errno;
    int rc = pe__fail(ctx, PE_EIO, "%s: write failed: %s", af->path, strerror(e));
    pe__atomic_abort(af);
    return rc;
  }
  free(af->tmp_path);
  af->tmp_path = NULL;
  free(af->path);
  af->path = NULL;
  return 0;
}

void pe__atomic_abort(pe__atomic_file *af) {
  if (af->fp) fclose(af->fp);
  if (af->tmp_path) unlink(af->tmp_path);
  free(af->tmp_path);
  free(af->path);
  memset(af, 0, sizeof *af);
}

void pe__str_addf(pe__str *s, const char *fmt, ...) {
  if (s->oom) return;
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if (s->len + (size_t)n + 1 > s->cap) {
    size_t cap = s->cap ? s->cap : 256;
    while (cap < s->len + (size_t)n + 1) cap *= 2;
    char *b = realloc(s->buf, cap);
    if (!b) {
      s->oom = true;
      return;
    }
    s->buf = b;
    s->cap = cap;
  }
  va_start(ap, fmt);
  vsnprintf(s->buf + s->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  s->len += (size_t)n;
}

void pe__str_free(pe__str *s) {
  free(s->buf);
  memset(s, 0, sizeof *s);
}
