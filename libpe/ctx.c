/* Contexts: error messages, logging, the plugin search path and the host
 * services table handed to plugins. */
#include "internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int pe__fail(pe_ctx *ctx, int code, const char *fmt, ...) {
  if (!ctx) return code;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(ctx->err, sizeof ctx->err, fmt, ap);
  va_end(ap);
  return code;
}

int pe__fail_prefix(pe_ctx *ctx, int code, const char *fmt, ...) {
  if (!ctx) return code;
  char old[PE_ERRMSG_SIZE], prefix[512];
  memcpy(old, ctx->err, sizeof old);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(prefix, sizeof prefix, fmt, ap);
  va_end(ap);
  snprintf(ctx->err, sizeof ctx->err, "%.500s: %.1500s", prefix, old);
  return code;
}

static void default_log(void *user, int level, const char *origin,
                        const char *message) {
  (void)user;
  const char *what = level <= PE_LOG_ERROR  ? "error"
                     : level == PE_LOG_WARN ? "warning"
                                            : "note";
  fprintf(stderr, "libpe: %s: %s: %s\n", what, origin ? origin : "core",
          message);
}

void pe__log(pe_ctx *ctx, int level, const char *origin, const char *fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (ctx->log_fn) ctx->log_fn(ctx->log_user, level, origin, buf);
}

static void host_log(const pe_host *host, int level, const char *plugin,
                     const char *message) {
  pe_ctx *ctx = host->host_data;
  if (ctx->log_fn) ctx->log_fn(ctx->log_user, level, plugin, message);
}

static bool make_dirs(char *path) {
  for (char *p = path + 1; *p; p++) {
    if (*p != '/') continue;
    *p = '\0';
    int rc = mkdir(path, 0755);
    *p = '/';
    if (rc != 0 && errno != EEXIST) return false;
  }
  return mkdir(path, 0755) == 0 || errno == EEXIST;
}

/* Why `path` cannot hold cache files (NULL: it can): it is made when
 * missing; an existing file or a directory without write access is
 * refused here, once, rather than by each backend at each save. */
static const char *cache_dir_problem(char *path) {
  struct stat st;
  if (!make_dirs(path)) return strerror(errno);
  if (stat(path, &st) != 0) return strerror(errno);
  if (!S_ISDIR(st.st_mode)) return "not a directory";
  if (access(path, W_OK | X_OK) != 0) return "not writable";
  return NULL;
}

/* PE_CACHE_DIR, else $XDG_CACHE_HOME/libpe, else $HOME/.cache/libpe. */
static const char *host_cache_dir(const pe_host *host) {
  pe_ctx *ctx = host->host_data;
  if (ctx->cache_state) return ctx->cache_state > 0 ? ctx->cache_dir : NULL;
  const char *env = getenv("PE_CACHE_DIR"), *xdg = getenv("XDG_CACHE_HOME");
  const char *home = getenv("HOME"), *from = NULL;
  int n = -1;
  if (env && env[0])
    n = snprintf(ctx->cache_dir, sizeof ctx->cache_dir, "%s", from = env);
  else if (xdg && xdg[0] == '/')
    n = snprintf(ctx->cache_dir, sizeof ctx->cache_dir, "%s/libpe", from = xdg);
  else if (home && home[0] == '/')
    n = snprintf(ctx->cache_dir, sizeof ctx->cache_dir, "%s/.cache/libpe", from = home);
  ctx->cache_state = -1;
  if (n <= 0) return NULL; /* nowhere to look: no cache, quietly */
  const char *why = (size_t)n < sizeof ctx->cache_dir ? cache_dir_problem(ctx->cache_dir)
                                                      : "path too long";
  if (why) {
    pe__log(ctx, PE_LOG_WARN, "cache", "directory %s (from %s): %s; compiled kernels "
            "are not cached", ctx->cache_dir, from == env ? "PE_CACHE_DIR" : from == xdg
            ? "XDG_CACHE_HOME" : "HOME", why);
    return NULL;
  }
  ctx->cache_state = 1;
  return ctx->cache_dir;
}

static int add_dirs(pe_ctx *ctx, const char *dirs, bool front) {
  char *list[PE_MAX_PLUGIN_DIRS];
  size_t n = 0;
  for (const char *p = dirs; p && *p;) {
    const char *colon = strchr(p, ':');
    size_t len = colon ? (size_t)(colon - p) : strlen(p);
    if (len) {
      if (n + ctx->n_dirs >= PE_MAX_PLUGIN_DIRS) {
        for (size_t i = 0; i < n; i++) free(list[i]);
        return pe__fail(ctx, PE_ELIMIT, "plugin path: more than %d directories",
                        PE_MAX_PLUGIN_DIRS);
      }
      if (!(list[n++] = pe__strndup(p, len))) {
        for (size_t i = 0; i + 1 < n; i++) free(list[i]);
        return pe__fail(ctx, PE_ENOMEM, "out of memory");
      }
    }
    p = colon ? colon + 1 : p + len;
  }
  if (front) {
    memmove(ctx->plugin_dirs + n, ctx->plugin_dirs, ctx->n_dirs * sizeof(char *));
    memcpy(ctx->plugin_dirs, list, n * sizeof(char *));
  } else {
    memcpy(ctx->plugin_dirs + ctx->n_dirs, list, n * sizeof(char *));
  }
  ctx->n_dirs += n;
  return 0;
}

int pe_ctx_new(pe_ctx **out) {
  *out = NULL;
  pe_ctx *ctx = calloc(1, sizeof *ctx);
  if (!ctx) return PE_ENOMEM;
  atomic_init(&ctx->refs, 1); /* the caller's */
  atomic_init(&ctx->live_workloads, 0);
  atomic_init(&ctx->live_runners, 0);
  ctx->log_fn = default_log;
  ctx->host.struct_size = sizeof ctx->host;
  ctx->host.abi_version = PE_ABI_VERSION;
  ctx->host.host_data = ctx;
  ctx->host.log = host_log;
  ctx->host.cache_dir = host_cache_dir;
  int rc = add_dirs(ctx, getenv("PE_PLUGIN_PATH"), false);
  if (rc == 0) rc = add_dirs(ctx, PE_PLUGIN_DIR, false);
  if (rc != 0) {
    pe_ctx_free(ctx);
    return rc;
  }
  *out = ctx;
  return 0;
}

/* No workload or runner is left: nothing uses the modules any more. */
static void ctx_destroy(pe_ctx *ctx) {
  pe_ctx_unload_plugins(ctx);
  for (size_t i = 0; i < ctx->n_dirs; i++) free(ctx->plugin_dirs[i]);
  free(ctx);
}

void pe__ctx_hold(pe_ctx *ctx, atomic_uint *live) {
  atomic_fetch_add(&ctx->refs, 1);
  atomic_fetch_add(live, 1);
}

void pe__ctx_release(pe_ctx *ctx, atomic_uint *live) {
  if (live) atomic_fetch_sub(live, 1);
  if (atomic_fetch_sub(&ctx->refs, 1) == 1) ctx_destroy(ctx);
}

/* Drops the caller's reference: the context goes now, or with its last
 * workload or runner. */
void pe_ctx_free(pe_ctx *ctx) {
  if (ctx) pe__ctx_release(ctx, NULL);
}

const char *pe_ctx_error(const pe_ctx *ctx) { return ctx ? ctx->err : ""; }

void pe_ctx_set_log(pe_ctx *ctx, pe_log_fn fn, void *user) {
  ctx->log_fn = fn;
  ctx->log_user = user;
}

int pe_ctx_prepend_plugin_path(pe_ctx *ctx, const char *dirs) {
  return add_dirs(ctx, dirs, true);
}
