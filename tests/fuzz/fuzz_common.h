/* Shared helpers of libpe's fuzz targets (header-only, static).  The
 * targets use the public API only, so the same source builds with libFuzzer
 * against the library sources and with replay.c against libpe.la. */
#ifndef PE_FUZZ_COMMON_H
#define PE_FUZZ_COMMON_H

#include <libpe.h>

#include <dirent.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef PE_FUZZ_SRCDIR
#define PE_FUZZ_SRCDIR "."
#endif

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A broken invariant: report and abort, so libFuzzer keeps the input. */
static void fuzz_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn, unused));
static void fuzz_die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("fuzz: invariant broken: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  abort();
}

static void __attribute__((unused)) fuzz_quiet_log(void *user, int level, const char *origin, const char *message) {
  (void)user, (void)level, (void)origin, (void)message;
}

/* The input as a C string (cut at the first NUL byte, as a file would be
 * by the loader's string handling). */
static __attribute__((unused)) char *fuzz_cstring(const uint8_t *data, size_t size) {
  char *s = malloc(size + 1);
  if (!s) fuzz_die("out of memory");
  memcpy(s, data, size);
  s[size] = '\0';
  return s;
}

static char fuzz_made_dir_[4096];

/* Remove the scratch directory we made (files only, no subdirectories). */
static void __attribute__((unused)) fuzz_cleanup_(void) {
  DIR *d = opendir(fuzz_made_dir_);
  if (!d) return;
  char path[8192];
  for (struct dirent *e; (e = readdir(d));) {
    if (e->d_name[0] == '.') continue;
    snprintf(path, sizeof path, "%s/%s", fuzz_made_dir_, e->d_name);
    unlink(path);
  }
  closedir(d);
  rmdir(fuzz_made_dir_);
}

/* PE_FUZZ_OUT_DIR, else a new directory in /dev/shm (no disk writes, cheap
 * fsync), else in $TMPDIR or /tmp, removed at exit. */
static void __attribute__((unused)) fuzz_scratch_dir(char *dir, size_t size) {
  const char *env = getenv("PE_FUZZ_OUT_DIR");
  if (env && env[0]) {
    snprintf(dir, size, "%s", env);
    mkdir(dir, 0700);
    return;
  }
  const char *tmp = getenv("TMPDIR");
  const char *bases[] = {"/dev/shm", tmp && tmp[0] ? tmp : "/tmp", "/tmp"};
  for (size_t i = 0; i < 3; i++) {
    snprintf(dir, size, "%s/pe-fuzz-XXXXXX", bases[i]);
    if (mkdtemp(dir)) {
      snprintf(fuzz_made_dir_, sizeof fuzz_made_dir_, "%s", dir);
      atexit(fuzz_cleanup_);
      return;
    }
  }
  fuzz_die("cannot create a scratch directory");
}

#endif /* PE_FUZZ_COMMON_H */
