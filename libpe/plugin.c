/* The plugin loader: dlopen, version negotiation, size-prefixed copies of
 * every struct a module hands over, required-callback checks, discovery on
 * the search path, unloading. */
#include "internal.h"

#include <dirent.h>
#include <dlfcn.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Copy min(struct_size, sizeof) bytes of a module's struct into a zeroed
 * host struct (nbdkit's rule): fields an older module lacks read as 0. */
static void copy_sized(void *dst, size_t dst_size, const void *src) {
  uint32_t src_size;
  memset(dst, 0, dst_size);
  memcpy(&src_size, src, sizeof src_size);
  memcpy(dst, src, src_size < dst_size ? src_size : dst_size);
  memcpy(dst, &dst_size, sizeof src_size); /* now describes the host copy */
}

static const char *kind_name(uint32_t kind) {
  return kind == PE_PLUGIN_SCHEME    ? "scheme"
         : kind == PE_PLUGIN_BACKEND ? "backend"
                                     : "unknown";
}

static void plugin_free(pe_plugin *p) {
  if (!p) return;
  if (p->handle) dlclose(p->handle);
  free(p->decls);
  free(p->decl_ptrs);
  free(p->path);
  free(p);
}

/* A struct's size in ABI 1, `last_field` being its last ABI-1 member: the
 * smallest we accept, since every field of ABI 1 is required (a module
 * built against any libpe header has at least that much).  Anything
 * smaller is a module built against a broken or hand-cut header. */
#define ABI1_SIZE(type, last_field) \
  (offsetof(type, last_field) + sizeof(((type *)0)->last_field))

/* "<module>: <what> struct_size N is smaller than ABI 1's M". */
static int too_small(pe_ctx *ctx, const char *path, const char *what, uint32_t size,
                     size_t abi1) {
  return pe__fail(ctx, PE_EABI, "%s: %s struct_size %u is smaller than ABI 1's %zu (every "
                  "field of ABI 1 is required)", path, what, size, abi1);
}

/* A config key: lower-case letters, digits and '_', starting with a letter. */
static bool is_identifier(const char *s) {
  if (!(*s >= 'a' && *s <= 'z')) return false;
  for (; *s; s++)
    if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_')) return false;
  return true;
}

/* "a|b": no empty choice (a word "" could never be written in a config). */
static bool choices_ok(const char *choices) {
  if (!choices[0] || choices[0] == '|') return false;
  size_t n = strlen(choices);
  return choices[n - 1] != '|' && !strstr(choices, "||");
}

/* Bounds a value can satisfy: none is NaN, and min..max is not empty. */
static bool bounds_ok(const pe_param_decl *d) {
  bool lo = d->flags & PE_PARAM_HAS_MIN, hi = d->flags & PE_PARAM_HAS_MAX;
  if ((lo && isnan(d->min)) || (hi && isnan(d->max))) return false;
  if (!lo || !hi) return true;
  bool open = d->flags & (PE_PARAM_MIN_OPEN | PE_PARAM_MAX_OPEN);
  return d->min < d->max || (d->min == d->max && !open);
}

static int bad_decl(pe_ctx *ctx, const pe_plugin *p, const pe_param_decl *d, const char *fmt,
                    ...) __attribute__((format(printf, 4, 5)));
static int bad_decl(pe_ctx *ctx, const pe_plugin *p, const pe_param_decl *d, const char *fmt,
                    ...) {
  char why[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why, sizeof why, fmt, ap);
  va_end(ap);
  return pe__fail(ctx, PE_EABI, "%s: parameter '%s': %s", p->path, d->name, why);
}

/* Declaration i, checked against the ones before it: everything the host
 * relies on when it parses a config, so that a broken declaration fails
 * at load, naming the module, rather than in every config using it. */
static int check_decl(pe_ctx *ctx, const pe_plugin *p, size_t i) {
  const pe_param_decl *d = &p->decls[i];
  if (!d->name || !d->name[0] || d->type < PE_PARAM_NUMBER || d->type > PE_PARAM_STRING ||
      (d->type == PE_PARAM_CHOICE && !d->choices))
    return pe__fail(ctx, PE_EABI, "%s: parameter %zu (%s) is malformed "
                    "(needs a name, a known type, choices for a choice)",
                    p->path, i, d->name ? d->name : "?");
  if (!is_identifier(d->name))
    return bad_decl(ctx, p, d, "not a valid key name (lower-case letters, digits and '_', "
                    "starting with a letter)");
  if (!strcmp(d->name, "plugin"))
    return bad_decl(ctx, p, d, "the name is reserved (it names the plugin in [scheme] and "
                    "[backend] sections)");
  for (size_t j = 0; j < i; j++)
    if (!strcmp(p->decls[j].name, d->name))
      return bad_decl(ctx, p, d, "declared twice (parameters %zu and %zu)", j, i);
  if (d->type == PE_PARAM_CHOICE && !choices_ok(d->choices))
    return bad_decl(ctx, p, d, "choices '%s' has an empty choice", d->choices);
  if (!bounds_ok(d))
    return bad_decl(ctx, p, d, "no value is in range (min %g%s, max %g%s)", d->min,
                    d->flags & PE_PARAM_HAS_MIN ? "" : " unused", d->max,
                    d->flags & PE_PARAM_HAS_MAX ? "" : " unused");
  char why[160], acc[256];
  if (d->default_value && pe__param_check_default(d, why, sizeof why) != 0) {
    pe__param_accepted(d, acc, sizeof acc);
    return bad_decl(ctx, p, d, "default '%s': %s (accepted: %s)", d->default_value, why, acc);
  }
  return 0;
}

static int copy_params(pe_ctx *ctx, pe_plugin *p,
                       const pe_param_decl *const *params) {
  size_t n = 0;
  while (params && params[n]) n++;
  p->decls = calloc(n ? n : 1, sizeof *p->decls);
  p->decl_ptrs = calloc(n + 1, sizeof *p->decl_ptrs);
  if (!p->decls || !p->decl_ptrs) return pe__fail(ctx, PE_ENOMEM, "out of memory");
  for (size_t i = 0; i < n; i++) {
    if (params[i]->struct_size < ABI1_SIZE(pe_param_decl, choices)) {
      char what[64];
      snprintf(what, sizeof what, "parameter %zu: pe_param_decl", i);
      return too_small(ctx, p->path, what, params[i]->struct_size,
                       ABI1_SIZE(pe_param_decl, choices));
    }
    copy_sized(&p->decls[i], sizeof p->decls[i], params[i]);
    int rc = check_decl(ctx, p, i);
    if (rc) return rc;
    p->decl_ptrs[i] = &p->decls[i];
  }
  p->n_params = n;
  return 0;
}

static int check_scheme(pe_ctx *ctx, pe_plugin *p) {
  if (!p->desc.scheme)
    return pe__fail(ctx, PE_EABI, "%s: scheme plugin without scheme ops", p->path);
  if (p->desc.scheme->struct_size < ABI1_SIZE(pe_scheme_ops, compute))
    return too_small(ctx, p->path, "pe_scheme_ops", p->desc.scheme->struct_size,
                     ABI1_SIZE(pe_scheme_ops, compute));
  copy_sized(&p->scheme, sizeof p->scheme, p->desc.scheme);
  if (!p->scheme.compute)
    return pe__fail(ctx, PE_EABI, "%s: required callback compute is NULL", p->path);
  return copy_params(ctx, p, p->scheme.params);
}

static int check_backend(pe_ctx *ctx, pe_plugin *p) {
  if (!p->desc.backend)
    return pe__fail(ctx, PE_EABI, "%s: backend plugin without backend ops", p->path);
  if (p->desc.backend->struct_size < ABI1_SIZE(pe_backend_ops, enumerate))
    return too_small(ctx, p->path, "pe_backend_ops", p->desc.backend->struct_size,
                     ABI1_SIZE(pe_backend_ops, enumerate));
  copy_sized(&p->backend, sizeof p->backend, p->desc.backend);
  const pe_backend_ops *b = &p->backend;
  const char *missing = !b->open       ? "open"
                        : !b->close    ? "close"
                        : !b->describe ? "describe"
                        : !b->prepare  ? "prepare"
                        : !b->execute  ? "execute"
                        : !b->fetch    ? "fetch"
                        : !b->release  ? "release"
                                       : NULL;
  if (missing)
    return pe__fail(ctx, PE_EABI, "%s: required callback %s is NULL", p->path, missing);
  return copy_params(ctx, p, b->options);
}

/* Ask the module's entry for its descriptor and check it. */
static int negotiate(pe_ctx *ctx, pe_plugin *p) {
  pe_plugin_entry_fn entry;
  void *sym = dlsym(p->handle, PE_PLUGIN_ENTRY_NAME);
  if (!sym)
    return pe__fail(ctx, PE_EPLUGIN, "%s: not a libpe plugin: no symbol %s",
                    p->path, PE_PLUGIN_ENTRY_NAME);
  memcpy(&entry, &sym, sizeof entry);
  const pe_plugin_desc *desc = NULL;
  char err[1024] = "";
  int rc = entry(PE_ABI_VERSION, &ctx->host, &desc, err, sizeof err);
  if (rc == 0 && !desc)
    return pe__fail(ctx, PE_EPLUGIN, "%s: the plugin's entry returned 0 but no descriptor",
                    p->path);
  if (rc != 0) {
    char msg[1200];
    bool known = pe__is_error_code(rc);
    rc = pe__plugin_failure(rc, PE_EPLUGIN, err, msg, sizeof msg);
    return pe__fail(ctx, rc, "%s: the plugin refused to load: %s (%s)", p->path,
                    err[0] || !known ? msg : "no message", pe_err_name(rc));
  }
  if (desc->struct_size < ABI1_SIZE(pe_plugin_desc, backend))
    return too_small(ctx, p->path, "pe_plugin_desc (the descriptor)", desc->struct_size,
                     ABI1_SIZE(pe_plugin_desc, backend));
  if (desc->abi_version == 0 || desc->abi_version > PE_ABI_VERSION)
    return pe__fail(ctx, PE_EABI, "%s: plugin ABI %u, but this libpe speaks ABI "
                    "1 to %u", p->path, desc->abi_version, PE_ABI_VERSION);
  copy_sized(&p->desc, sizeof p->desc, desc);
  if (!p->desc.name || !p->desc.name[0])
    return pe__fail(ctx, PE_EABI, "%s: descriptor has no name", p->path);
  if (!p->desc.version) p->desc.version = "?";
  if (!p->desc.summary) p->desc.summary = "";
  switch (p->desc.kind) {
  case PE_PLUGIN_SCHEME:
    return check_scheme(ctx, p);
  case PE_PLUGIN_BACKEND:
    return check_backend(ctx, p);
  default:
    return pe__fail(ctx, PE_EABI, "%s: unknown plugin kind %u", p->path, p->desc.kind);
  }
}

static int load_path(pe_ctx *ctx, const char *path, pe_plugin **out) {
  *out = NULL;
  pe_plugin *p = calloc(1, sizeof *p);
  if (!p || !(p->path = pe__strdup(path))) {
    plugin_free(p);
    return pe__fail(ctx, PE_ENOMEM, "out of memory");
  }
  p->ctx = ctx;
  p->handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!p->handle) {
    const char *why = dlerror();
    plugin_free(p);
    return pe__fail(ctx, PE_EPLUGIN, "cannot load plugin %s: %s", path,
                    why ? why : "dlopen failed");
  }
  int rc = negotiate(ctx, p);
  if (rc != 0) {
    plugin_free(p);
    return rc;
  }
  *out = p;
  return 0;
}

static int remember(pe_ctx *ctx, pe_plugin *p) {
  pe_plugin **list = realloc(ctx->plugins, (ctx->n_plugins + 1) * sizeof *list);
  if (!list) {
    plugin_free(p);
    return pe__fail(ctx, PE_ENOMEM, "out of memory");
  }
  ctx->plugins = list;
  ctx->plugins[ctx->n_plugins++] = p;
  return 0;
}

static pe_plugin *find_loaded(pe_ctx *ctx, const char *path) {
  for (size_t i = 0; i < ctx->n_plugins; i++)
    if (strcmp(ctx->plugins[i]->path, path) == 0) return ctx->plugins[i];
  return NULL;
}

static bool is_file(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static bool valid_name(const char *name) {
  if (!name[0]) return false;
  for (const char *c = name; *c; c++)
    if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
          (*c >= '0' && *c <= '9') || *c == '-' || *c == '_' || *c == '.'))
      return false;
  return name[0] != '.';
}

/* The rule for a module found by name: file NAME.so calls itself NAME. */
static int check_name(pe_ctx *ctx, const char *path, const pe_plugin *p, const char *name) {
  if (strcmp(p->desc.name, name) != 0)
    return pe__fail(ctx, PE_EPLUGIN, "%s: module calls itself '%s', expected '%s' (the "
                    "file name)", path, p->desc.name, name);
  return 0;
}

static int check_kind(pe_ctx *ctx, const pe_plugin *p, int kind) {
  if (kind && p->desc.kind != (uint32_t)kind)
    return pe__fail(ctx, PE_EPLUGIN, "plugin %s (%s) is a %s plugin, not a %s plugin",
                    p->desc.name, p->path, kind_name(p->desc.kind),
                    kind_name((uint32_t)kind));
  return 0;
}

static int load_by_path(pe_ctx *ctx, const char *path, int kind,
                        const pe_plugin **out) {
  pe_plugin *p = find_loaded(ctx, path);
  if (!p) {
    int rc = load_path(ctx, path, &p);
    if (rc == 0) rc = remember(ctx, p);
    if (rc != 0) return rc;
  }
  int rc = check_kind(ctx, p, kind);
  if (rc == 0) *out = p;
  return rc;
}

static int load_by_name(pe_ctx *ctx, const char *name, int kind,
                        const pe_plugin **out) {
  if (!valid_name(name))
    return pe__fail(ctx, PE_EINVAL, "plugin name '%s' is not valid (letters, digits, "
                    "'-', '_', '.'; or a path containing '/')", name);
  /* Search the directories every time (load_by_path reuses a module
   * loaded from the same file): a module of that name loaded from some
   * other path -- another build, compared against this one -- is not the
   * one the name finds. */
  for (size_t i = 0; i < ctx->n_dirs; i++) {
    char *path = pe__asprintf("%s/%s.so", ctx->plugin_dirs[i], name);
    if (!path) return pe__fail(ctx, PE_ENOMEM, "out of memory");
    int rc = is_file(path) ? load_by_path(ctx, path, kind, out) : PE_ENOTFOUND;
    if (rc == 0) rc = check_name(ctx, path, *out, name);
    if (rc != 0 && rc != PE_ENOTFOUND) *out = NULL;
    free(path);
    if (rc != PE_ENOTFOUND) return rc;
  }
  pe__str dirs = {0};
  for (size_t i = 0; i < ctx->n_dirs; i++)
    pe__str_addf(&dirs, "%s%s", i ? ":" : "", ctx->plugin_dirs[i]);
  int rc = pe__fail(ctx, PE_ENOTFOUND, "no %s%splugin '%s' (looked for %s.so in %s; "
                    "set PE_PLUGIN_PATH or give a path)",
                    kind ? kind_name((uint32_t)kind) : "", kind ? " " : "", name, name,
                    dirs.buf ? dirs.buf : "(no directories)");
  pe__str_free(&dirs);
  return rc;
}

int pe_plugin_load(pe_ctx *ctx, const char *name, int kind, const pe_plugin **out) {
  *out = NULL;
  if (!name) return pe__fail(ctx, PE_EINVAL, "plugin name is NULL");
  if (kind != 0 && kind != PE_PLUGIN_SCHEME && kind != PE_PLUGIN_BACKEND)
    return pe__fail(ctx, PE_EINVAL, "pe_plugin_load: kind %d is not a plugin kind (%d scheme, "
                    "%d backend, 0 any)", kind, PE_PLUGIN_SCHEME, PE_PLUGIN_BACKEND);
  if (strchr(name, '/')) return load_by_path(ctx, name, kind, out);
  return load_by_name(ctx, name, kind, out);
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Module names (file names without .so) in one directory, sorted. */
static size_t list_modules(const char *dir, char ***out) {
  *out = NULL;
  DIR *d = opendir(dir);
  if (!d) return 0;
  char **names = NULL;
  size_t n = 0;
  for (struct dirent *e; (e = readdir(d));) {
    size_t len = strlen(e->d_name);
    if (len < 4 || strcmp(e->d_name + len - 3, ".so") != 0 || e->d_name[0] == '.')
      continue;
    char **grown = realloc(names, (n + 1) * sizeof *names);
    if (!grown) break;
    names = grown;
    if (!(names[n] = pe__strndup(e->d_name, len - 3))) break;
    n++;
  }
  closedir(d);
  qsort(names, n, sizeof *names, cmp_str);
  *out = names;
  return n;
}

int pe_plugin_scan(pe_ctx *ctx, pe_plugin_visit_fn fn, void *user) {
  char **seen = NULL;
  size_t n_seen = 0;
  for (size_t i = 0; i < ctx->n_dirs; i++) {
    char **names;
    size_t n = list_modules(ctx->plugin_dirs[i], &names);
    for (size_t j = 0; j < n; j++) {
      bool dup = false;
      for (size_t k = 0; k < n_seen && !dup; k++) dup = !strcmp(seen[k], names[j]);
      char **grown = dup ? NULL : realloc(seen, (n_seen + 1) * sizeof *seen);
      if (dup || !grown) {
        free(names[j]);
        continue;
      }
      seen = grown;
      seen[n_seen++] = names[j];
      char *path = pe__asprintf("%s/%s.so", ctx->plugin_dirs[i], names[j]);
      const pe_plugin *p = NULL;
      int rc = path ? pe_plugin_load(ctx, path, 0, &p) : PE_ENOMEM;
      /* Listed modules are the ones a config can name: the same rules as
       * load_by_name (a module calling itself something else is an error). */
      if (rc == 0 && !valid_name(names[j]))
        rc = pe__fail(ctx, PE_EPLUGIN, "%s: '%s' is not a valid plugin name (letters, digits, "
                      "'-', '_', '.')", path, names[j]);
      if (rc == 0) rc = check_name(ctx, path, p, names[j]);
      fn(user, path ? path : names[j], rc == 0 ? p : NULL, rc,
         rc == 0 ? "" : ctx->err);
      free(path);
    }
    free(names);
  }
  for (size_t k = 0; k < n_seen; k++) free(seen[k]);
  free(seen);
  return 0;
}

int pe_ctx_unload_plugins(pe_ctx *ctx) {
  unsigned workloads = atomic_load(&ctx->live_workloads);
  unsigned runners = atomic_load(&ctx->live_runners);
  if (workloads || runners)
    return pe__fail(ctx, PE_ESTATE, "%u workload(s) and %u runner(s) still use plugins of "
                    "this context: free them first (pe_workload_free, pe_runner_close)",
                    workloads, runners);
  for (size_t i = 0; i < ctx->n_plugins; i++) plugin_free(ctx->plugins[i]);
  free(ctx->plugins);
  ctx->plugins = NULL;
  ctx->n_plugins = 0;
  return 0;
}

const pe_plugin_desc *pe_plugin_descriptor(const pe_plugin *p) { return &p->desc; }

const char *pe_plugin_path(const pe_plugin *p) { return p->path; }

const pe_param_decl *const *pe_plugin_params(const pe_plugin *p) {
  return (const pe_param_decl *const *)p->decl_ptrs;
}

void pe__device_info_terminate(pe_device_info *info) {
  info->struct_size = sizeof *info;
  info->name[sizeof info->name - 1] = info->driver[sizeof info->driver - 1] = '\0';
  info->details[sizeof info->details - 1] = '\0';
}

/* What pe_plugin_devices hands the module as `user`: the caller's
 * callback, and the first device refused. */
typedef struct emit_state {
  pe_device_emit_fn emit;
  void *user;
  unsigned n;        /* devices the module emitted */
  unsigned bad;      /* the first one refused (1-based); 0: none */
  uint32_t bad_size; /* its struct_size */
} emit_state;

/* The module's device goes to the caller as a host copy, like every
 * struct a module hands over: sized, its strings terminated.  A struct
 * smaller than ABI 1's is not passed on. */
static void host_emit(void *user, const pe_device_info *info) {
  emit_state *es = user;
  es->n++;
  uint32_t size = info ? info->struct_size : 0;
  if (size < ABI1_SIZE(pe_device_info, details)) {
    if (!es->bad) es->bad = es->n, es->bad_size = size;
    return;
  }
  pe_device_info copy;
  copy_sized(&copy, sizeof copy, info);
  pe__device_info_terminate(&copy);
  es->emit(es->user, &copy);
}

int pe_plugin_devices(pe_ctx *ctx, const pe_plugin *backend,
                      pe_device_emit_fn emit, void *user) {
  if (backend->desc.kind != PE_PLUGIN_BACKEND)
    return pe__fail(ctx, PE_EINVAL, "%s is not a backend plugin", backend->desc.name);
  if (!backend->backend.enumerate)
    return pe__fail(ctx, PE_EUNSUPPORTED, "backend %s cannot list its devices",
                    backend->desc.name);
  if (!emit) return pe__fail(ctx, PE_EINVAL, "pe_plugin_devices: emit is NULL");
  char err[1024] = "";
  emit_state es = {.emit = emit, .user = user};
  int rc = backend->backend.enumerate(&ctx->host, host_emit, &es, err, sizeof err);
  if (rc == 0 && es.bad)
    return pe__fail(ctx, PE_EABI, "backend %s (%s): device %u: pe_device_info struct_size %u is "
                    "smaller than ABI 1's %zu: not listed", backend->desc.name, backend->path,
                    es.bad, es.bad_size, ABI1_SIZE(pe_device_info, details));
  if (rc != 0) {
    char msg[1200];
    rc = pe__plugin_failure(rc, PE_EDEVICE, err, msg, sizeof msg);
    return pe__fail(ctx, rc, "backend %s: %s", backend->desc.name, msg);
  }
  return 0;
}
