/* libpe opencl backend: NUMERICS.md attention through the Khronos ICD loader.
 *
 * Linked against libOpenCL (ocl-icd or any ICD loader), never a vendor
 * library, so one build runs on PoCL and on GPU drivers alike.  Only the
 * OpenCL 1.2 API is used.
 *
 *   open      pick the platform and device (options platform, device),
 *             create a context and a profiling queue
 *   prepare   choose the kernel variant (cpu: one work-item per group,
 *             explicit vectors along query rows; gpu: one work-item per
 *             query row, __local key tiles) and the tiles, build the
 *             program with the shape as -D constants (or load the binary
 *             from the cache), allocate and upload
 *   execute   enqueue attention (+ combine for split-KV) or encode; device
 *             time from the profiling events
 *   fetch     read the output back
 *
 * Everything that cannot run says so (PE_EUNSUPPORTED or PE_EDEVICE with
 * the reason); there is no fallback to another device or backend.
 */
#include <ctype.h>
#include <math.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ocl_internal.h"

#define PE_OCL_VERSION "1.0.0"
/* Bump when the kernel interface or the cache key format changes. */
#define PE_OCL_CACHE_FORMAT 1
#define PE_OCL_LOG2E 1.44269504088896340736

/* ------------------------------------------------------------------------
 * OpenCL error names
 * ---------------------------------------------------------------------- */
const char *pe_ocl_strerror(cl_int err, char *buf, size_t size) {
  static const struct {
    cl_int code;
    const char *name;
  } names[] = {
#define E(x) {x, #x}
      E(CL_SUCCESS),
      E(CL_DEVICE_NOT_FOUND),
      E(CL_DEVICE_NOT_AVAILABLE),
      E(CL_COMPILER_NOT_AVAILABLE),
      E(CL_MEM_OBJECT_ALLOCATION_FAILURE),
      E(CL_OUT_OF_RESOURCES),
      E(CL_OUT_OF_HOST_MEMORY),
      E(CL_PROFILING_INFO_NOT_AVAILABLE),
      E(CL_BUILD_PROGRAM_FAILURE),
      E(CL_INVALID_VALUE),
      E(CL_INVALID_DEVICE),
      E(CL_INVALID_BINARY),
      E(CL_INVALID_BUILD_OPTIONS),
      E(CL_INVALID_PROGRAM_EXECUTABLE),
      E(CL_INVALID_KERNEL_NAME),
      E(CL_INVALID_KERNEL_ARGS),
      E(CL_INVALID_WORK_GROUP_SIZE),
      E(CL_INVALID_WORK_ITEM_SIZE),
      E(CL_INVALID_GLOBAL_WORK_SIZE),
      E(CL_INVALID_BUFFER_SIZE),
      E(CL_INVALID_EVENT),
      E(CL_INVALID_OPERATION),
      E(CL_INVALID_PLATFORM),
      E(CL_INVALID_CONTEXT),
      E(CL_INVALID_COMMAND_QUEUE),
      E(CL_INVALID_MEM_OBJECT),
      E(CL_INVALID_PROGRAM),
      E(CL_INVALID_KERNEL),
      E(CL_INVALID_ARG_INDEX),
      E(CL_INVALID_ARG_VALUE),
      E(CL_INVALID_ARG_SIZE),
      E(CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST),
#undef E
      {-1001, "CL_PLATFORM_NOT_FOUND_KHR"},
  };
  for (size_t i = 0; i < sizeof names / sizeof names[0]; ++i)
    if (names[i].code == err) return names[i].name;
  pe_ocl_fmt(buf, size, "CL error %d", (int)err);
  return buf;
}

/* "clFoo(what) on DEVICE: CL_..." with PE_EDEVICE, or PE_ENOMEM /
 * PE_EUNSUPPORTED-worthy codes spelled out. */
static int cl_fail(char *err, size_t err_size, cl_int e, const char *call,
                   const char *device) {
  char b[32];
  const char *hint = "";
  if (e == CL_OUT_OF_RESOURCES || e == CL_MEM_OBJECT_ALLOCATION_FAILURE ||
      e == CL_OUT_OF_HOST_MEMORY)
    hint = " (out of device resources: try a smaller workload or tiles)";
  return pe_plugin_error(err, err_size, PE_EDEVICE,
                         "opencl: %s failed on '%s': %s%s", call,
                         device ? device : "?", pe_ocl_strerror(e, b, sizeof b),
                         hint);
}

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* ------------------------------------------------------------------------
 * Options ([backend] keys)
 * ---------------------------------------------------------------------- */
enum {
  OPT_PLATFORM,
  OPT_DEVICE,
  OPT_KERNEL,
  OPT_BLOCK_Q,
  OPT_BLOCK_K,
  OPT_VECTOR_WIDTH,
  OPT_WORK_GROUP,
  OPT_SPLITS,
  OPT_BUILD_OPTIONS,
  OPT_CACHE,
  OPT_K_ENCODE,
  OPT_COUNT
};
enum { KENC_AUTO = 0, KENC_PREPASS = 1, KENC_FUSED = 2 };
enum { VARIANT_AUTO = 0, VARIANT_CPU = 1, VARIANT_GPU = 2 };

#define DECL(t, f, n, d, def, lo, hi, ch)                                     \
  {sizeof(pe_param_decl), (t), (f), (n), (d), (def), (lo), (hi), (ch)}
static const pe_param_decl opt_platform =
    DECL(PE_PARAM_STRING, 0, "platform",
         "OpenCL platform: index or name substring (default: all)", NULL, 0,
         0, NULL);
static const pe_param_decl opt_device = DECL(
    PE_PARAM_STRING, 0, "device",
    "device: index (in the chosen platform, else over all) or name "
    "substring (default: the first GPU, else the first device)",
    NULL, 0, 0, NULL);
static const pe_param_decl opt_kernel =
    DECL(PE_PARAM_CHOICE, 0, "kernel",
         "kernel shape: auto (by device type), cpu or gpu", "auto", 0, 0,
         "auto|cpu|gpu");
static const pe_param_decl opt_block_q = DECL(
    PE_PARAM_INTEGER, PE_PARAM_HAS_MIN | PE_PARAM_HAS_MAX, "block_q",
    "query rows per tile, 0: auto (cpu: 12 float8 or 4 float16 vectors, 3x "
    "that beyond 3072 keys, a multiple of vector_width; gpu: 64, 32 for "
    "head_dim > 128; the gpu work-group is block_q / 4 x 8 work-items, "
    "block_q / 2 x 8 beyond 128)",
    "0", 0, 1024, NULL);
static const pe_param_decl opt_block_k =
    DECL(PE_PARAM_INTEGER, PE_PARAM_HAS_MIN | PE_PARAM_HAS_MAX, "block_k",
         "keys per tile, 0: auto (cpu 64; gpu 32 or what local memory fits, a "
         "multiple of 8)",
         "0", 0, 1024, NULL);
static const pe_param_decl opt_vector_width =
    DECL(PE_PARAM_INTEGER, PE_PARAM_HAS_MIN | PE_PARAM_HAS_MAX,
         "vector_width",
         "cpu kernel float vector width 4, 8 or 16, 0: auto (the device's "
         "native width)",
         "0", 0, 16, NULL);
static const pe_param_decl opt_work_group =
    DECL(PE_PARAM_INTEGER, PE_PARAM_HAS_MIN | PE_PARAM_HAS_MAX, "work_group",
         "work-group size of the encode and combine kernels, 0: auto", "0",
         0, 4096, NULL);
static const pe_param_decl opt_splits =
    DECL(PE_PARAM_INTEGER, PE_PARAM_HAS_MIN | PE_PARAM_HAS_MAX, "splits",
         "split-KV: key-range splits per query tile, 0: auto (when there "
         "are too few tiles to fill the device, as in decode), 1: off",
         "0", 0, 256, NULL);
static const pe_param_decl opt_build_options =
    DECL(PE_PARAM_STRING, 0, "build_options",
         "extra OpenCL compiler options, appended to the generated ones",
         "", 0, 0, NULL);
static const pe_param_decl opt_cache = DECL(
    PE_PARAM_BOOL, 0, "cache",
    "keep compiled program binaries in the host cache directory", "true", 0,
    0, NULL);
static const pe_param_decl opt_k_encode = DECL(
    PE_PARAM_CHOICE, 0, "k_encode",
    "cpu kernel, prefill with rotary/additive schemes: encode K once per "
    "run in a pre-pass kernel (prepass) or into every key tile that a query "
    "tile loads (fused); auto: prepass when several query tiles read each "
    "kv head",
    "auto", 0, 0, "auto|prepass|fused");
#undef DECL

static const pe_param_decl *const ocl_options[OPT_COUNT + 1] = {
    &opt_platform,  &opt_device,       &opt_kernel,
    &opt_block_q,   &opt_block_k,      &opt_vector_width,
    &opt_work_group, &opt_splits,      &opt_build_options,
    &opt_cache,     &opt_k_encode,     NULL};

/* ------------------------------------------------------------------------
 * Devices
 * ---------------------------------------------------------------------- */
typedef struct ocl_devinfo {
  cl_platform_id platform;
  cl_device_id device;
  int plat_index, dev_index; /* dev_index within its platform */
  cl_device_type type;
  char plat_name[128], plat_version[128];
  char name[128], version[128], c_version[64], driver[64];
  cl_uint compute_units, native_vw, pref_vw;
  size_t max_wg;
  cl_ulong local_mem, global_mem, max_alloc;
  cl_bool available, compiler;
} ocl_devinfo;

static void query_device(ocl_devinfo *di) {
  cl_device_id d = di->device;
  clGetDeviceInfo(d, CL_DEVICE_TYPE, sizeof di->type, &di->type, NULL);
  clGetDeviceInfo(d, CL_DEVICE_NAME, sizeof di->name, di->name, NULL);
  clGetDeviceInfo(d, CL_DEVICE_VERSION, sizeof di->version, di->version,
                  NULL);
  clGetDeviceInfo(d, CL_DEVICE_OPENCL_C_VERSION, sizeof di->c_version,
                  di->c_version, NULL);
  clGetDeviceInfo(d, CL_DRIVER_VERSION, sizeof di->driver, di->driver, NULL);
  clGetDeviceInfo(d, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof di->compute_units,
                  &di->compute_units, NULL);
  clGetDeviceInfo(d, CL_DEVICE_NATIVE_VECTOR_WIDTH_FLOAT,
                  sizeof di->native_vw, &di->native_vw, NULL);
  clGetDeviceInfo(d, CL_DEVICE_PREFERRED_VECTOR_WIDTH_FLOAT,
                  sizeof di->pref_vw, &di->pref_vw, NULL);
  clGetDeviceInfo(d, CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof di->max_wg,
                  &di->max_wg, NULL);
  clGetDeviceInfo(d, CL_DEVICE_LOCAL_MEM_SIZE, sizeof di->local_mem,
                  &di->local_mem, NULL);
  clGetDeviceInfo(d, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof di->global_mem,
                  &di->global_mem, NULL);
  clGetDeviceInfo(d, CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof di->max_alloc,
                  &di->max_alloc, NULL);
  clGetDeviceInfo(d, CL_DEVICE_AVAILABLE, sizeof di->available,
                  &di->available, NULL);
  clGetDeviceInfo(d, CL_DEVICE_COMPILER_AVAILABLE, sizeof di->compiler,
                  &di->compiler, NULL);
  di->name[sizeof di->name - 1] = 0;
  di->version[sizeof di->version - 1] = 0;
  di->c_version[sizeof di->c_version - 1] = 0;
  di->driver[sizeof di->driver - 1] = 0;
}

/* ------------------------------------------------------------------------
 * One lock for the process
 *
 * libpe promises that two threads may each use their own context, and each
 * context opens its own backend instance.  The OpenCL runtime is shared by
 * the whole process, though, and not every implementation makes its global
 * state thread-safe: PoCL 3.1 crashes (SIGSEGV inside libpocl) when two
 * threads discover platforms and devices at the same time, even without
 * libpe (clGetPlatformIDs / clGetDeviceIDs / clGetDeviceInfo from two
 * threads).  So everything here that touches the runtime's global state --
 * platform and device discovery, creating and releasing contexts, queues
 * and programs (building included) -- runs under this process-wide mutex.
 * Buffers, kernels, enqueues and reads act on objects of one instance's
 * own context and are not serialized, so runs in different threads still
 * execute concurrently.  The module is linked with -z nodelete: the lock
 * outlives any context that unloads it.
 * ---------------------------------------------------------------------- */
static pthread_mutex_t ocl_lock = PTHREAD_MUTEX_INITIALIZER;

static void ocl_serialize(void) { pthread_mutex_lock(&ocl_lock); }
static void ocl_unserialize(void) { pthread_mutex_unlock(&ocl_lock); }

/* Every device of every platform, in ICD order (deterministic); called
 * with the lock held. */
static int discover_devices(ocl_devinfo **out, size_t *count, char *err,
                            size_t err_size) {
  cl_uint np = 0;
  cl_int e = clGetPlatformIDs(0, NULL, &np);
  *out = NULL;
  *count = 0;
  if (e == -1001 /* CL_PLATFORM_NOT_FOUND_KHR */ || (e == CL_SUCCESS && !np))
    return pe_plugin_error(
        err, err_size, PE_EUNSUPPORTED,
        "unsupported: no device (no OpenCL platform: clGetPlatformIDs "
        "returned %s; is an ICD installed under /etc/OpenCL/vendors?)",
        e == CL_SUCCESS ? "0 platforms" : "-1001 CL_PLATFORM_NOT_FOUND_KHR");
  if (e != CL_SUCCESS) return cl_fail(err, err_size, e, "clGetPlatformIDs", "");
  cl_platform_id *pl = calloc(np, sizeof *pl);
  if (!pl) return pe_plugin_error(err, err_size, PE_ENOMEM, "opencl: out of memory");
  e = clGetPlatformIDs(np, pl, NULL);
  if (e != CL_SUCCESS) {
    free(pl);
    return cl_fail(err, err_size, e, "clGetPlatformIDs", "");
  }
  ocl_devinfo *all = NULL;
  size_t n = 0;
  for (cl_uint p = 0; p < np; ++p) {
    cl_uint nd = 0;
    e = clGetDeviceIDs(pl[p], CL_DEVICE_TYPE_ALL, 0, NULL, &nd);
    if (e == CL_DEVICE_NOT_FOUND || nd == 0) continue;
    if (e != CL_SUCCESS) continue; /* a broken platform hides no others */
    cl_device_id *dv = calloc(nd, sizeof *dv);
    ocl_devinfo *grow = realloc(all, (n + nd) * sizeof *all);
    if (!dv || !grow) {
      free(dv);
      free(grow ? grow : all);
      free(pl);
      return pe_plugin_error(err, err_size, PE_ENOMEM, "opencl: out of memory");
    }
    all = grow;
    if (clGetDeviceIDs(pl[p], CL_DEVICE_TYPE_ALL, nd, dv, NULL) != CL_SUCCESS)
      nd = 0;
    for (cl_uint d = 0; d < nd; ++d) {
      ocl_devinfo *di = &all[n++];
      memset(di, 0, sizeof *di);
      di->platform = pl[p];
      di->device = dv[d];
      di->plat_index = (int)p;
      di->dev_index = (int)d;
      clGetPlatformInfo(pl[p], CL_PLATFORM_NAME, sizeof di->plat_name,
                        di->plat_name, NULL);
      clGetPlatformInfo(pl[p], CL_PLATFORM_VERSION, sizeof di->plat_version,
                        di->plat_version, NULL);
      di->plat_name[sizeof di->plat_name - 1] = 0;
      di->plat_version[sizeof di->plat_version - 1] = 0;
      query_device(di);
    }
    free(dv);
  }
  free(pl);
  if (!n) {
    free(all);
    return pe_plugin_error(err, err_size, PE_EUNSUPPORTED,
                           "unsupported: no device (%u OpenCL platform%s, "
                           "none with a device)",
                           np, np == 1 ? "" : "s");
  }
  *out = all;
  *count = n;
  return 0;
}

static int list_devices(ocl_devinfo **out, size_t *count, char *err,
                        size_t err_size) {
  ocl_serialize();
  const int rc = discover_devices(out, count, err, err_size);
  ocl_unserialize();
  return rc;
}

static int is_index(const char *s) {
  if (!s || !*s) return 0;
  for (; *s; ++s)
    if (!isdigit((unsigned char)*s)) return 0;
  return 1;
}

static int contains_ci(const char *hay, const char *needle) {
  const size_t n = strlen(needle);
  for (; *hay; ++hay) {
    size_t i = 0;
    while (i < n && hay[i] &&
           tolower((unsigned char)hay[i]) == tolower((unsigned char)needle[i]))
      ++i;
    if (i == n) return 1;
  }
  return n == 0;
}

static const char *type_word(cl_device_type t) {
  if (t & CL_DEVICE_TYPE_GPU) return "gpu";
  if (t & CL_DEVICE_TYPE_CPU) return "cpu";
  if (t & CL_DEVICE_TYPE_ACCELERATOR) return "accelerator";
  return "other";
}

static uint32_t pe_type(cl_device_type t) {
  if (t & CL_DEVICE_TYPE_GPU) return PE_DEVICE_GPU;
  if (t & CL_DEVICE_TYPE_CPU) return PE_DEVICE_CPU;
  if (t & CL_DEVICE_TYPE_ACCELERATOR) return PE_DEVICE_ACCELERATOR;
  return PE_DEVICE_OTHER;
}

/* "0: 'Portable Computing Language' / 0: 'pthread-haswell' (cpu); ..." */
static void list_text(const ocl_devinfo *all, size_t n, char *buf,
                      size_t size) {
  size_t len = 0;
  buf[0] = 0;
  for (size_t i = 0; i < n && len + 1 < size; ++i) {
    int w = pe_ocl_fmt(buf + len, size - len, "%splatform %d '%s' device %d '%s' (%s)",
                     i ? "; " : "", all[i].plat_index, all[i].plat_name,
                     all[i].dev_index, all[i].name, type_word(all[i].type));
    if (w < 0) break;
    len += (size_t)w;
  }
}

/* Pick the device by the platform/device options; deterministic. */
static int select_device(const char *plat, const char *dev, ocl_devinfo *out,
                         char *err, size_t err_size) {
  ocl_devinfo *all;
  size_t n;
  char avail[600];
  int rc = list_devices(&all, &n, err, err_size);
  if (rc) return rc;
  list_text(all, n, avail, sizeof avail);

  /* candidates: devices of the matching platform(s) */
  size_t nc = 0;
  ocl_devinfo *cand = calloc(n, sizeof *cand);
  if (!cand) {
    free(all);
    return pe_plugin_error(err, err_size, PE_ENOMEM, "opencl: out of memory");
  }
  for (size_t i = 0; i < n; ++i) {
    int match = 1;
    if (plat && *plat)
      match = is_index(plat) ? all[i].plat_index == atoi(plat)
                             : contains_ci(all[i].plat_name, plat);
    if (match) cand[nc++] = all[i];
  }
  if (!nc) {
    rc = pe_plugin_error(err, err_size, PE_EUNSUPPORTED,
                         "unsupported: platform = '%s' matches none of the "
                         "OpenCL platforms (available: %s)",
                         plat, avail);
    goto done;
  }
  const ocl_devinfo *pick = NULL;
  if (dev && *dev) {
    if (is_index(dev)) {
      const size_t idx = (size_t)strtoul(dev, NULL, 10);
      if (idx < nc) pick = &cand[idx];
    } else {
      for (size_t i = 0; i < nc && !pick; ++i)
        if (contains_ci(cand[i].name, dev)) pick = &cand[i];
    }
    if (!pick) {
      rc = pe_plugin_error(err, err_size, PE_EUNSUPPORTED,
                           "unsupported: device = '%s'%s%s%s matches none of "
                           "the OpenCL devices (available: %s)",
                           dev, plat && *plat ? " in platform '" : "",
                           plat && *plat ? plat : "", plat && *plat ? "'" : "",
                           avail);
      goto done;
    }
  } else {
    for (size_t i = 0; i < nc && !pick; ++i)
      if (cand[i].type & CL_DEVICE_TYPE_GPU) pick = &cand[i];
    if (!pick) pick = &cand[0];
  }
  if (!pick->available) {
    rc = pe_plugin_error(err, err_size, PE_EUNSUPPORTED,
                         "unsupported: device '%s' reports itself unavailable",
                         pick->name);
    goto done;
  }
  if (!pick->compiler) {
    rc = pe_plugin_error(err, err_size, PE_EUNSUPPORTED,
                         "unsupported: device '%s' has no OpenCL C compiler",
                         pick->name);
    goto done;
  }
  *out = *pick;
  rc = 0;
done:
  free(cand);
  free(all);
  return rc;
}

/* ------------------------------------------------------------------------
 * build_options: the kernel constants a user may set
 * ---------------------------------------------------------------------- */

/* Register blocks and decode's key block of the cpu kernels, and the
 * prefetch switch: build_options may set these (-DRB=2), and the plan
 * sizes local memory and tiles with the values set.  A field below its
 * knob's lowest value (0, or -1 for the switches): not set, the plan's
 * own choice. */
typedef struct ocl_tune {
  int rb, kb, db; /* cpu prefill: row vectors x keys (P V: x dims) */
  int dblk;       /* cpu decode: keys per block */
  int vplace;     /* cpu decode: P V reads V in place (0/1), -1 unset */
  int pf;         /* software prefetch (0/1), -1 unset */
} ocl_tune;

/* The tunables: kernel macro, field, accepted range. */
static const struct ocl_knob {
  const char *name;
  size_t off;
  int lo, hi;
} ocl_knobs[] = {
    {"RB", offsetof(ocl_tune, rb), 1, 16},
    {"KB", offsetof(ocl_tune, kb), 1, 16},
    {"DB", offsetof(ocl_tune, db), 1, 16},
    {"DBLK", offsetof(ocl_tune, dblk), 1, 256},
    {"PE_DEC_VPLACE", offsetof(ocl_tune, vplace), 0, 1},
    {"PE_PF", offsetof(ocl_tune, pf), 0, 1},
};
#define OCL_NKNOBS (sizeof ocl_knobs / sizeof ocl_knobs[0])

static int *knob_field(ocl_tune *t, const struct ocl_knob *k) {
  return (int *)((char *)t + k->off);
}

/* The knob named by the len bytes at name, or NULL. */
static const struct ocl_knob *find_knob(const char *name, size_t len) {
  for (size_t i = 0; i < OCL_NKNOBS; ++i)
    if (strlen(ocl_knobs[i].name) == len &&
        memcmp(ocl_knobs[i].name, name, len) == 0)
      return &ocl_knobs[i];
  return NULL;
}

/* Whether build_options set tunable `name` (never for other names). */
static int tune_is_set(const ocl_tune *t, const char *name) {
  const struct ocl_knob *k = find_knob(name, strlen(name));
  return k && *(const int *)((const char *)t + k->off) >= k->lo;
}

/* Constants the host derives from the workload and its plan and sizes
 * buffers, grids and local memory by: a user's definition would leave the
 * kernel and the host disagreeing, so build_options may not touch them. */
static const char *const host_owned[] = {
    "D",   "R",    "HALF", "KIND", "PAIRING", "B",   "HQ",    "HKV",
    "G",   "SQ",   "SKV",  "QPOS0", "CAUSAL", "WINDOW", "HPT", "QT",
    "NQT", "BQ",   "BK",   "NSPLIT", "VW",   "DP",  "KPRE",  "PE_V_COPY",
    "DEC", "SKVP", "RM",   "TX",   "ENC_ROWS", NULL};

static int is_host_owned(const char *name, size_t len) {
  for (const char *const *h = host_owned; *h; ++h)
    if (strlen(*h) == len && memcmp(*h, name, len) == 0) return 1;
  return 0;
}

/* One "-DNAME[=V]" / "-UNAME" of build_options (flag 'D' or 'U', the
 * name and value without the flag) into tune, or an error naming it;
 * names neither host-owned nor tunable pass. */
static int tune_one(ocl_tune *tune, char flag, const char *def, size_t len,
                    char *err, size_t err_size) {
  const char *eq = memchr(def, '=', len);
  const size_t nlen = eq ? (size_t)(eq - def) : len;
  if (is_host_owned(def, nlen))
    return pe_plugin_error(
        err, err_size, PE_ECONFIG,
        "opencl: build_options '-%c%.*s': %.*s is set by the backend from "
        "the workload and its tiles (use block_q, block_k, vector_width, "
        "splits); build_options may set RB, KB, DB, DBLK, PE_DEC_VPLACE "
        "and PE_PF",
        flag, (int)len, def, (int)nlen, def);
  const struct ocl_knob *k = find_knob(def, nlen);
  if (!k) return 0;
  /* -UNAME would remove the host's definition (RB, KB, DB have no
   * default in the kernel); leaving NAME out gives the plan's choice */
  if (flag == 'U')
    return pe_plugin_error(err, err_size, PE_ECONFIG,
                           "opencl: build_options '-U%.*s': leave %s out "
                           "for the backend's choice, or set it (-D%s=)",
                           (int)len, def, k->name, k->name);
  char text[24] = "1", *end; /* -DNAME alone means 1 to the compiler */
  if (eq)
    pe_ocl_fmt(text, sizeof text, "%.*s", (int)(len - nlen - 1), eq + 1);
  const long v = strtol(text, &end, 10);
  if (end == text || *end || v < k->lo || v > k->hi || len - nlen > 20)
    return pe_plugin_error(err, err_size, PE_ECONFIG,
                           "opencl: build_options '-D%.*s': %s takes an "
                           "integer from %d to %d",
                           (int)len, def, k->name, k->lo, k->hi);
  *knob_field(tune, k) = (int)v;
  return 0;
}

static int is_quoting(char c) { return c == '"' || c == '\'' || c == '\\'; }

/* Whether a quoted or escaped definition names a constant the backend reads
 * or owns (-D"RB=2", -DR\B=2): the compiler unquotes it, so read as
 * written it would pass unchecked.  `quoted`: the word began with a
 * quote or escape.  Other names (a user's own string macro, -DTAG="a b") pass
 * through as before. */
static int quoted_known(const char *def, size_t len, int quoted) {
  char name[32];
  size_t n = 0;
  for (size_t i = 0; i < len && def[i] != '='; ++i) {
    if (is_quoting(def[i])) {
      quoted = 1;
      continue;
    }
    if (n + 1 < sizeof name) name[n++] = def[i];
  }
  for (size_t i = 0; i < len && !quoted; ++i) quoted = is_quoting(def[i]);
  return quoted && (find_knob(name, n) || is_host_owned(name, n));
}

/* Where a quote in opts opens that never closes, or where a final
 * backslash stands, read as OpenCL compilers split options (shell rules:
 * '...' literal, "..." with backslash escapes, a backslash escaping one
 * character outside quotes); -1 when every quote closes.  The word
 * reader below cannot tell such a definition's name, and the compiler
 * would fail on it only at build time. */
static long unclosed_quote(const char *s) {
  long open = -1;
  char q = 0;
  for (long i = 0; s[i]; ++i) {
    if (q == '\'') {
      if (s[i] == '\'') q = 0;
    } else if (s[i] == '\\') {
      if (!s[i + 1]) return i;
      ++i;
    } else if (q == '"') {
      if (s[i] == '"') q = 0;
    } else if (s[i] == '"' || s[i] == '\'') {
      q = s[i];
      open = i;
    }
  }
  return q ? open : -1;
}

/* Reads the user's -D/-U definitions (forms -DNAME=V, -DNAME, -D NAME=V)
 * into tune; other compiler options pass through unread.  A quoted or
 * escaped definition of a tunable or host-owned constant ("-DRB=2",
 * -D"BQ=8") is refused (quoted_known). */
static int parse_tune(const char *opts, ocl_tune *tune, char *err,
                      size_t err_size) {
  for (size_t i = 0; i < OCL_NKNOBS; ++i) /* all unset */
    *knob_field(tune, &ocl_knobs[i]) = ocl_knobs[i].lo - 1;
  const char *s = opts ? opts : "";
  const long uq = unclosed_quote(s);
  if (uq >= 0)
    return pe_plugin_error(err, err_size, PE_ECONFIG,
                           "opencl: build_options '%s': the %s at character "
                           "%ld %s",
                           s, s[uq] == '\\' ? "backslash" : "quote", uq + 1,
                           s[uq] == '\\' ? "ends the options, escaping nothing"
                                         : "is never closed");
  while (*s) {
    while (*s == ' ' || *s == '\t') ++s;
    const char *tok = s;
    while (*s && *s != ' ' && *s != '\t') ++s;
    const char *bare = tok; /* past any opening quotes or escapes */
    while (bare < s && is_quoting(*bare)) ++bare;
    if (s - bare < 2 || bare[0] != '-' || (bare[1] != 'D' && bare[1] != 'U'))
      continue;
    const char flag = bare[1];
    const char *def = bare + 2;
    int quoted = bare != tok;
    const char *rest = def;
    while (rest < s && is_quoting(*rest)) ++rest;
    if (rest == s) { /* "-D NAME" (or "-D" NAME): the next word */
      quoted |= def != s;
      while (*s == ' ' || *s == '\t') ++s;
      def = s;
      while (*s && *s != ' ' && *s != '\t') ++s;
    }
    if (quoted_known(def, (size_t)(s - def), quoted))
      return pe_plugin_error(err, err_size, PE_ECONFIG,
                             "opencl: build_options '%.*s': a tunable or "
                             "backend constant quoted or escaped is not "
                             "read; write -DNAME=V without quotes",
                             (int)(s - tok), tok);
    int rc = tune_one(tune, flag, def, (size_t)(s - def), err, err_size);
    if (rc) return rc;
  }
  return 0;
}

/* ------------------------------------------------------------------------
 * The backend (one device)
 * ---------------------------------------------------------------------- */
typedef struct ocl_backend {
  const pe_host *host;
  ocl_devinfo di;
  cl_context ctx;
  cl_command_queue queue;
  int variant;      /* VARIANT_* from the options */
  int block_q, block_k, vector_width, work_group, splits;
  int k_encode; /* KENC_* */
  char *build_options;
  ocl_tune tune; /* what build_options set */
  int use_cache;
  char details[512]; /* after prepare: what ran */
} ocl_backend;

static void backend_close(void *p) {
  ocl_backend *be = p;
  if (!be) return;
  ocl_serialize();
  if (be->queue) clReleaseCommandQueue(be->queue);
  if (be->ctx) clReleaseContext(be->ctx);
  ocl_unserialize();
  free(be->build_options);
  free(be);
}

/* The instance's context and profiling queue (under the lock). */
static int create_context(ocl_backend *be, char *err, size_t err_size) {
  cl_int e;
  int rc = 0;
  ocl_serialize();
  be->ctx = clCreateContext(NULL, 1, &be->di.device, NULL, NULL, &e);
  if (!be->ctx)
    rc = cl_fail(err, err_size, e, "clCreateContext", be->di.name);
  if (!rc)
    be->queue = clCreateCommandQueue(be->ctx, be->di.device,
                                     CL_QUEUE_PROFILING_ENABLE, &e);
  if (!rc && !be->queue)
    rc = cl_fail(err, err_size, e, "clCreateCommandQueue", be->di.name);
  ocl_unserialize();
  return rc;
}

static int backend_open(const pe_host *host,
                        const pe_param_value *const *opt, void **out,
                        char *err, size_t err_size) {
  const char *plat = opt && opt[OPT_PLATFORM]->present ? opt[OPT_PLATFORM]->text : NULL;
  const char *dev = opt && opt[OPT_DEVICE]->present ? opt[OPT_DEVICE]->text : NULL;
  ocl_backend *be = calloc(1, sizeof *be);
  int rc;
  *out = NULL;
  if (!be) return pe_plugin_error(err, err_size, PE_ENOMEM, "opencl: out of memory");
  be->host = host;
  be->use_cache = 1;
  if (opt) {
    be->variant = (int)opt[OPT_KERNEL]->integer;
    be->block_q = (int)opt[OPT_BLOCK_Q]->integer;
    be->block_k = (int)opt[OPT_BLOCK_K]->integer;
    be->vector_width = (int)opt[OPT_VECTOR_WIDTH]->integer;
    be->work_group = (int)opt[OPT_WORK_GROUP]->integer;
    be->splits = (int)opt[OPT_SPLITS]->integer;
    be->k_encode = (int)opt[OPT_K_ENCODE]->integer;
    be->use_cache = !opt[OPT_CACHE]->present || opt[OPT_CACHE]->integer != 0;
    if (opt[OPT_BUILD_OPTIONS]->present && opt[OPT_BUILD_OPTIONS]->text)
      be->build_options = strdup(opt[OPT_BUILD_OPTIONS]->text);
  }
  if (be->vector_width != 0 && be->vector_width != 4 &&
      be->vector_width != 8 && be->vector_width != 16) {
    const int vw = be->vector_width;
    backend_close(be);
    return pe_plugin_error(err, err_size, PE_ECONFIG,
                           "opencl: vector_width = %d: accepted 0 (auto), 4, "
                           "8, 16",
                           vw);
  }
  rc = parse_tune(be->build_options, &be->tune, err, err_size);
  if (rc) {
    backend_close(be);
    return rc;
  }
  rc = select_device(plat, dev, &be->di, err, err_size);
  if (rc) {
    backend_close(be);
    return rc;
  }
  rc = create_context(be, err, err_size);
  if (rc) {
    backend_close(be);
    return rc;
  }
  pe_ocl_fmt(be->details, sizeof be->details,
           "platform %d device %d, %s, %u compute units, kernel %s",
           be->di.plat_index, be->di.dev_index, be->di.version,
           be->di.compute_units,
           be->variant == VARIANT_CPU   ? "cpu (forced)"
           : be->variant == VARIANT_GPU ? "gpu (forced)"
           : (be->di.type & CL_DEVICE_TYPE_CPU) ? "cpu (auto)"
                                                : "gpu (auto)");
  *out = be;
  return 0;
}

static void fill_info(const ocl_devinfo *di, pe_device_info *info) {
  const uint32_t size = info->struct_size;
  memset(info, 0, size < sizeof *info ? size : sizeof *info);
  info->struct_size = size;
  info->type = pe_type(di->type);
  pe_ocl_fmt(info->name, sizeof info->name, "%s", di->name);
  pe_ocl_fmt(info->driver, sizeof info->driver, "%s %s", di->plat_name,
           di->driver);
}

static int backend_describe(void *p, pe_device_info *info) {
  ocl_backend *be = p;
  if (!PE_HAS_FIELD(info, pe_device_info, details)) return PE_EINVAL;
  fill_info(&be->di, info);
  pe_ocl_fmt(info->details, sizeof info->details, "%s", be->details);
  return 0;
}

static int backend_enumerate(const pe_host *host, pe_device_emit_fn emit,
                             void *user, char *err, size_t err_size) {
  ocl_devinfo *all;
  size_t n;
  (void)host;
  int rc = list_devices(&all, &n, err, err_size);
  if (rc) return rc;
  for (size_t i = 0; i < n; ++i) {
    const ocl_devinfo *di = &all[i];
    pe_device_info info;
    info.struct_size = sizeof info;
    fill_info(di, &info);
    pe_ocl_fmt(info.details, sizeof info.details,
             "platform %d '%s' (%s) device %d: %s, %s, %u compute units, "
             "max work-group %zu, local mem %llu KiB, global mem %llu MiB, "
             "max alloc %llu MiB, native float width %u, kernel %s%s",
             di->plat_index, di->plat_name, di->plat_version, di->dev_index,
             di->version, di->c_version, di->compute_units, di->max_wg,
             (unsigned long long)(di->local_mem >> 10),
             (unsigned long long)(di->global_mem >> 20),
             (unsigned long long)(di->max_alloc >> 20), di->native_vw,
             (di->type & CL_DEVICE_TYPE_CPU) ? "cpu" : "gpu",
             di->available ? "" : ", unavailable");
    emit(user, &info);
  }
  free(all);
  return 0;
}

/* ------------------------------------------------------------------------
 * Plans: kernel variant, tiles, -D constants
 * ---------------------------------------------------------------------- */
typedef struct ocl_plan {
  int variant; /* VARIANT_CPU / VARIANT_GPU (attention) */
  int op;
  int D, R, HALF, KIND, PAIRING, B, HQ, HKV, G, SQ, SKV, CAUSAL, WINDOW;
  int HPT, QT, NQT, BQ, BK, NSPLIT;
  int VW, RB, KB, DB, DP; /* cpu */
  int KPRE, SKVP;         /* cpu: K' pre-pass, its rows per (b, kv head) */
  int VCOPY;              /* cpu: V tiles copied into __local */
  int DEC;                /* cpu: q_len = 1, the pe_decode_cpu kernel */
  int DBLK;               /* cpu decode: keys per block */
  int VPLACE;             /* cpu decode: P V reads V in place (D % VW == 0) */
  int RM, TX, WG;         /* gpu: rows per work-item, work-items per row, work-group */
  size_t groups;          /* attention work-groups */
  size_t local_bytes;
  int wg_small; /* encode / combine work-group */
} ocl_plan;

static int round_up(int x, int m) { return (x + m - 1) / m * m; }

/* gpu kernel (attention_gpu.cl): work-items sharing a row (TX) */
#define PE_OCL_GPU_TX 8

/* Local memory of the gpu kernel: Qs[D][BQ], K/V tile [BK][D],
 * Ps[BK][BQ], Rs[BQ][TX]. */
static size_t gpu_local_bytes(const ocl_plan *pl, int bk) {
  return sizeof(float) * ((size_t)pl->D * pl->BQ + (size_t)bk * pl->D +
                          (size_t)bk * pl->BQ + (size_t)pl->BQ * pl->TX);
}

/* Rows per work-item of the cpu encode kernel (ENC_ROWS). */
#define PE_OCL_ENC_ROWS 32

/* The row tiling: a tile holds HPT heads of one GQA group times QT rows,
 * at most bq_target rows, padded to `granule` rows (cpu: a register block
 * of row vectors) or at least to `row_multiple` (cpu: a vector).  Long query ranges
 * are cut into equal tiles (Sq = 100 with 96-row tiles: 2 x 56, not
 * 96 + 4 padded to 96). */
static void plan_rows(ocl_plan *pl, int bq_target, int granule,
                      int row_multiple, int pack_long) {
  /* long GQA prefill (cpu kernel): a tile holds the same rows of every
   * head of a group (up to bq_target rows in all), so each K'/V tile is
   * loaded once for all of them rather than once per head */
  int hpt_long = 1;
  for (int c = 1; pack_long && c <= pl->G; ++c)
    if (pl->G % c == 0 && c * granule <= bq_target) hpt_long = c;
  if (pl->SQ > bq_target && hpt_long > 1) {
    const int per_head = bq_target / hpt_long / granule * granule;
    pl->HPT = hpt_long;
    pl->NQT = (pl->SQ + per_head - 1) / per_head;
    pl->QT = round_up((pl->SQ + pl->NQT - 1) / pl->NQT, granule);
    pl->BQ = pl->HPT * pl->QT;
  } else if (pl->SQ > bq_target) {
    pl->HPT = 1;
    pl->NQT = (pl->SQ + bq_target - 1) / bq_target;
    pl->QT = round_up((pl->SQ + pl->NQT - 1) / pl->NQT, granule);
    if (pl->QT > bq_target) pl->QT = bq_target;
    pl->BQ = pl->QT;
  } else {
    int hpt = 1;
    for (int c = 1; c <= pl->G; ++c)
      if (pl->G % c == 0 && c * pl->SQ <= bq_target) hpt = c;
    pl->HPT = hpt;
    pl->QT = pl->SQ;
    pl->NQT = 1;
    /* pad to a whole register block unless that costs over 25% more rows
     * than padding to the row multiple (decode: 4 rows -> 8, not 24) */
    const int rows = hpt * pl->SQ;
    const int fine = round_up(rows, row_multiple);
    const int coarse = round_up(rows, granule);
    pl->BQ = 4 * coarse <= 5 * fine ? coarse : fine;
    if (pl->BQ > bq_target) pl->BQ = bq_target;
  }
}

/* The device's compute units (at least 1). */
static size_t compute_units(const ocl_backend *be) {
  return be->di.compute_units ? be->di.compute_units : 1;
}

/* Split-KV when the tiles alone cannot fill the device (decode): about
 * `target` work-groups in all. */
static void plan_splits(ocl_plan *pl, const ocl_backend *be, size_t target) {
  const size_t tiles = (size_t)pl->B * (pl->HQ / pl->HPT) * pl->NQT;
  const int nkt = (pl->SKV + pl->BK - 1) / pl->BK;
  int ns = 1;
  if (be->splits > 0) {
    ns = be->splits;
  } else {
    if (tiles < target) ns = (int)((target + tiles - 1) / tiles);
    if (ns > nkt / 2) ns = nkt / 2; /* at least two key tiles a split */
    if (ns > 64) ns = 64;
    if (ns < 1) ns = 1;
  }
  pl->NSPLIT = ns;
  pl->groups = tiles * (size_t)ns;
}

static int make_plan(const ocl_backend *be, const pe_task *t, ocl_plan *pl,
                     char *err, size_t err_size) {
  memset(pl, 0, sizeof *pl);
  pl->op = (int)t->op;
  pl->D = (int)t->head_dim;
  pl->KIND = (int)t->kind;
  pl->R = t->kind == PE_KIND_ROTARY ? (int)t->rotary_dim : 0;
  pl->HALF = pl->R / 2;
  pl->PAIRING = t->pairing == PE_PAIRING_INTERLEAVED ? 2 : 1;
  pl->B = (int)t->batch;
  pl->HQ = (int)t->q_heads;
  pl->HKV = (int)t->kv_heads;
  pl->G = pl->HKV ? pl->HQ / pl->HKV : 0;
  pl->SQ = (int)t->q_len;
  pl->SKV = (int)t->kv_len;
  pl->CAUSAL = t->causal ? 1 : 0;
  /* |pq - pk| <= Skv - 1 < window masks nothing: drop it */
  pl->WINDOW = t->window >= t->kv_len ? 0 : (int)t->window;
  pl->wg_small = be->work_group > 0 ? be->work_group : 64;
  if (pl->wg_small > (int)be->di.max_wg) pl->wg_small = (int)be->di.max_wg;

  /* shape limits: 32-bit rows and positions inside the kernels */
  const double rows = (double)t->batch * t->q_heads * t->q_len;
  const double krows = (double)t->batch * t->kv_heads * t->kv_len;
  if (t->q_len < 1 || t->kv_len < 1 || t->q_len > t->kv_len ||
      t->head_dim < 1 || t->batch < 1 || t->kv_heads < 1 ||
      t->q_heads % t->kv_heads != 0)
    return pe_plugin_error(err, err_size, PE_EUNSUPPORTED,
                           "unsupported: shape B=%u Hq=%u Hkv=%u D=%u Sq=%llu "
                           "Skv=%llu (need Hq %% Hkv == 0, 1 <= Sq <= Skv)",
                           t->batch, t->q_heads, t->kv_heads, t->head_dim,
                           (unsigned long long)t->q_len,
                           (unsigned long long)t->kv_len);
  if (rows > 2147483647.0 || krows > 2147483647.0 || t->kv_len >= (1u << 30) ||
      t->head_dim > 4096)
    return pe_plugin_error(err, err_size, PE_EUNSUPPORTED,
                           "unsupported: shape too large for 32-bit row "
                           "indices (%.0f query rows, %.0f key rows, D=%u)",
                           rows, krows, t->head_dim);
  if (t->kind == PE_KIND_ROTARY &&
      (pl->R < 2 || pl->R % 2 || pl->R > pl->D))
    return pe_plugin_error(err, err_size, PE_EUNSUPPORTED,
                           "unsupported: rotary_dim %d with head_dim %d",
                           pl->R, pl->D);
  if (t->kind < PE_KIND_NONE || t->kind > PE_KIND_BIAS)
    return pe_plugin_error(err, err_size, PE_EUNSUPPORTED,
                           "unsupported: encoding kind %u", t->kind);
  pl->variant = be->variant != VARIANT_AUTO ? be->variant
                : (be->di.type & CL_DEVICE_TYPE_CPU) ? VARIANT_CPU
                                                     : VARIANT_GPU;
  if (t->op == PE_OP_ENCODE) return 0;
  if (t->op != PE_OP_ATTENTION)
    return pe_plugin_error(err, err_size, PE_EUNSUPPORTED,
                           "unsupported: op %u", t->op);

  const size_t lmem = (size_t)be->di.local_mem;
  if (pl->variant == VARIANT_CPU) {
    int vw = be->vector_width;
    if (!vw) vw = be->di.native_vw >= 16 ? 16 : be->di.native_vw >= 8 ? 8 : 4;
    pl->VW = vw;
    /* auto: 12 row vectors (float8: 96 rows) in register blocks of 3,
     * float16: 4 row vectors (64 rows) in blocks of 4 */
    const ocl_tune *tu = &be->tune;
    const int rb_pref = tu->rb ? tu->rb : vw >= 16 ? 4 : 3;
    int bq = be->block_q ? be->block_q : vw * (vw >= 16 ? 4 : 12);
    if (!be->block_q && tu->rb) bq = round_up(bq, vw * tu->rb);
    /* long contexts with K copied into each tile (none, bias): 3x taller
     * tiles, so each copy serves more rows (measured ~10% less CPU time at
     * L = 4096 when K was still encoded per tile).  With encoded K the
     * base tiles measured as fast or faster, from the pre-pass
     * (interleaved runs, L = 4096: 96 rows 0.94-1.04x openmp causal, 288
     * rows 0.87-1.0x; GQA 32/8: 0.92-1.06x vs 0.86-1.16x) and encoded per
     * tile on the current kernel (causal L = 4096: 96 rows 0.88-0.92x
     * openmp, 192 rows 0.85-0.90x, 288 rows 0.81-0.85x) */
    const int k_encoded =
        pl->KIND == PE_KIND_ROTARY || pl->KIND == PE_KIND_ADDITIVE;
    if (!be->block_q && !k_encoded && pl->SKV > 3072 && pl->SQ >= 3 * bq)
      bq *= 3;
    if (bq % vw)
      return pe_plugin_error(err, err_size, PE_ECONFIG,
                             "opencl: block_q = %d must be a multiple of "
                             "vector_width %d",
                             bq, vw);
    if (tu->rb && bq % (vw * tu->rb))
      return pe_plugin_error(err, err_size, PE_ECONFIG,
                             "opencl: block_q = %d must be a multiple of "
                             "vector_width %d x RB %d (build_options)",
                             bq, vw, tu->rb);
    pl->BK = be->block_k ? be->block_k : 64;
    if (tu->kb && pl->BK % tu->kb) {
      if (be->block_k)
        return pe_plugin_error(err, err_size, PE_ECONFIG,
                               "opencl: block_k = %d must be a multiple of "
                               "KB %d (build_options)",
                               pl->BK, tu->kb);
      pl->BK = round_up(pl->BK, tu->kb);
    }
    /* with RB set, every tile is whole register blocks (rows padded) */
    plan_rows(pl, bq, vw * rb_pref, tu->rb ? vw * tu->rb : vw, 1);
    /* Register blocks of RB row vectors x KB keys (PV: x DB dims), the
     * accumulators plus the operands within the register file: float16
     * (AVX-512, 32 registers): 4 x 4; float8 (AVX2, 16 registers) and
     * float4: 3 x 4 (4 x 4 spills on AVX2 and runs at half speed).
     * build_options may override them (-DRB=2). */
    const int nv = pl->BQ / vw;
    int rb = rb_pref < nv ? rb_pref : nv;
    while (nv % rb) --rb;
    pl->RB = tu->rb ? tu->rb : rb; /* plan_rows made nv a multiple */
    /* One row vector (a short q_len times the heads of a GQA group):
     * blocks of 8 keys and 8 dims, and V copied into __local row by row
     * (streamed) rather than read in place 8 dims at a time down the rows
     * (measured on decode before it had its own kernel: 32768 keys, 32/8
     * heads, 36.8 -> 30.7 ms against openmp's 27.5 in the same rounds) */
    const int one_vector = nv == 1;
    int kb = one_vector ? 8 : 4;
    while (pl->BK % kb) --kb;
    pl->KB = tu->kb ? tu->kb : kb;
    pl->DB = tu->db ? tu->db : one_vector ? 8 : 4;
    pl->DP = round_up(pl->D, pl->DB);
    pl->VCOPY = one_vector || pl->D % pl->DB != 0;
    /* q_len = 1: pe_decode_cpu, vectors along head_dim and the heads of a
     * group together (decode 32768 keys, 32/8 heads: 0.71x -> 0.90-1.02x
     * openmp against the row-vector tile); the tile sizes above only
     * feed the shared code's constants there */
    pl->DEC = pl->SQ == 1;
    if (pl->DEC) { /* its __local arrays (attention_cpu.cl pe_decode_cpu) */
      const size_t dvp = (size_t)round_up(pl->D, vw);
      /* keys per block: 8, or the vector when wider (attention_cpu.cl) */
      pl->DBLK = tu->dblk ? tu->dblk : vw > 8 ? vw : 8;
      if (pl->DBLK % vw)
        return pe_plugin_error(err, err_size, PE_ECONFIG,
                               "opencl: build_options DBLK = %d must be a "
                               "multiple of the vector width %d",
                               pl->DBLK, vw);
      /* V read in place when its rows are whole vectors */
      pl->VPLACE = tu->vplace >= 0 ? tu->vplace : pl->D % vw == 0;
      if (pl->VPLACE && pl->D % vw)
        return pe_plugin_error(err, err_size, PE_ECONFIG,
                               "opencl: build_options PE_DEC_VPLACE = 1 needs "
                               "head_dim a multiple of the vector width "
                               "(%d, %d)",
                               pl->D, vw);
      pl->KPRE = 0;
      pl->VCOPY = 0;
      pl->local_bytes =
          sizeof(float) * (2 * pl->HPT * dvp +
                           (pl->VPLACE ? 1u : 2u) * (size_t)pl->DBLK * dvp +
                           (size_t)pl->DBLK * pl->HPT + 2u * pl->HPT);
    } else {
      /* K needs encoding: once per run by pe_kprep_cpu into a K' buffer the
       * tiles read in place (prepass), or into each key tile a query tile
       * loads (fused).  auto: the pre-pass when several query tiles read
       * each kv head.  Interleaved A/B runs at L = 4096 (96-row tiles) came
       * out within noise: causal fused/prepass 0.92-1.07 over 13 runs (the
       * pre-pass ahead in a calm hour), GQA 32/8 the pre-pass about 1.015x
       * faster, L = 1024 alike. */
      pl->KPRE = (pl->KIND == PE_KIND_ROTARY ||
                  pl->KIND == PE_KIND_ADDITIVE) &&
                 (be->k_encode == KENC_PREPASS ||
                  (be->k_encode == KENC_AUTO &&
                   pl->NQT * (pl->G / pl->HPT) > 1));
      for (;;) {
        pl->local_bytes = sizeof(float) *
                          ((size_t)pl->D * pl->BQ +
                           (pl->KPRE ? 0 : (size_t)pl->BK * pl->D) +
                           (pl->VCOPY ? (size_t)pl->BK * pl->DP : 0) +
                           (size_t)pl->BK * pl->RB * pl->VW +
                           (size_t)pl->DP * pl->BQ + 3u * pl->BQ);
        if (pl->local_bytes <= lmem || be->block_k || pl->BK <= pl->KB ||
            (tu->kb && (pl->BK / 2) % tu->kb))
          break;
        pl->BK /= 2; /* auto: shrink the key tile until it fits */
        while (pl->BK % pl->KB) --pl->KB;
      }
    }
    pl->SKVP = round_up(pl->SKV, pl->BK);
    /* decode: split the keys finely even when the head groups alone
     * could fill the cores -- the groups running together then share one
     * key range, and its rows of the position tables come from cache
     * (2 cores: 8 splits, 39.5 -> 31.7 ms at 32768 keys, 32/8 heads).
     * About 8 groups a core, at least 64: on 16 Xeon cores (PoCL 5.0)
     * 16 splits ran in 7.4 ms, 64 splits (32 groups a core) in 10.3 ms,
     * in one interleaved run. */
    const size_t cus = compute_units(be);
    plan_splits(pl, be,
                pl->DEC      ? (8 * cus > 64 ? 8 * cus : 64)
                : one_vector ? 32 * cus
                             : 2 * cus);
  } else {
    const ocl_tune *tu = &be->tune;
    if (tu->rb || tu->kb || tu->db || tu->dblk || tu->vplace >= 0)
      return pe_plugin_error(err, err_size, PE_ECONFIG,
                             "opencl: build_options RB, KB, DB, DBLK and "
                             "PE_DEC_VPLACE shape the cpu kernel; this run "
                             "uses the gpu kernel on '%s' (kernel = cpu "
                             "forces the other)",
                             be->di.name);
    /* RM rows x BK / TX keys per work-item; two rows beyond D = 128 keep
     * the output block (RM x D / TX floats) in registers */
    pl->VW = 1;
    pl->TX = PE_OCL_GPU_TX;
    pl->RM = pl->D > 128 ? 2 : 4;
    const int bq = be->block_q ? be->block_q : (pl->D > 128 ? 32 : 64);
    plan_rows(pl, bq, 16 < bq ? 16 : bq, 16 < bq ? 16 : bq, 0);
    pl->BQ = round_up(pl->BQ, pl->RM); /* padding rows, if any */
    pl->WG = pl->BQ / pl->RM * pl->TX;
    int bk = be->block_k ? be->block_k : 32;
    if (bk % pl->TX)
      return pe_plugin_error(err, err_size, PE_EINVAL,
                             "opencl: block_k = %d: the gpu kernel needs a "
                             "multiple of %d",
                             bk, pl->TX);
    while (!be->block_k && bk > pl->TX && gpu_local_bytes(pl, bk) > lmem)
      bk /= 2;
    pl->BK = bk;
    pl->local_bytes = gpu_local_bytes(pl, bk);
    plan_splits(pl, be, 4 * compute_units(be));
  }
  char dblk[24] = "";
  if (pl->DEC) pe_ocl_fmt(dblk, sizeof dblk, ", DBLK=%d", pl->DBLK);
  if (pl->local_bytes > lmem)
    return pe_plugin_error(err, err_size, PE_EUNSUPPORTED,
                           "unsupported: the %s kernel needs %zu bytes of "
                           "local memory for D=%d, BQ=%d, BK=%d%s; '%s' has "
                           "%llu (%s)",
                           pl->DEC ? "cpu decode"
                           : pl->variant == VARIANT_CPU ? "cpu" : "gpu",
                           pl->local_bytes, pl->D, pl->BQ, pl->BK,
                           dblk,
                           be->di.name, (unsigned long long)lmem,
                           pl->DEC ? "a smaller build_options -DDBLK= may fit"
                                   : "set block_q/block_k smaller");
  if (pl->variant == VARIANT_GPU && (size_t)pl->WG > be->di.max_wg)
    return pe_plugin_error(err, err_size, PE_EUNSUPPORTED,
                           "unsupported: gpu kernel work-group %d (BQ %d) > "
                           "device maximum %zu (set block_q smaller)",
                           pl->WG, pl->BQ, be->di.max_wg);
  return 0;
}

/* Append " -DNAME=v" unless build_options set NAME, a tunable whose
 * value the plan has taken (-DRB=3, in any spelling parse_tune reads; it
 * refuses the host-owned constants). */
static void add_def(char *buf, size_t size, const ocl_tune *tune,
                    const char *name, long v) {
  if (tune_is_set(tune, name)) return;
  size_t len = strlen(buf);
  pe_ocl_fmt(buf + len, size - len, " -D%s=%ld", name, v);
}

/* Append " -DNAME=v" whatever build_options say. */
static void force_def(char *buf, size_t size, const char *name, long v) {
  size_t len = strlen(buf);
  pe_ocl_fmt(buf + len, size - len, " -D%s=%ld", name, v);
}

/* Whether the kernels may use clang's __builtin_prefetch (common.cl
 * PE_PF): PoCL's CPU devices, where the prefetches were measured.  NVIDIA's
 * compiler rejects the builtin on __global pointers. */
static int prefetch_builtin_ok(const ocl_devinfo *di) {
  return (di->type & CL_DEVICE_TYPE_CPU) &&
         strstr(di->plat_name, "Portable Computing Language") != NULL;
}

static void build_options(const ocl_backend *be, const ocl_plan *pl,
                          char *buf, size_t size) {
  const char *u = be->build_options;
  buf[0] = 0;
  /* OpenCL C 1.2 where the device offers it ("OpenCL C 1.2 ..."). */
  if (strncmp(be->di.c_version, "OpenCL C ", 9) == 0 &&
      strcmp(be->di.c_version + 9, "1.2") >= 0)
    pe_ocl_fmt(buf, size, "-cl-std=CL1.2");
#define A(n, v) add_def(buf, size, &be->tune, n, (long)(v))
  A("D", pl->D);
  A("R", pl->R);
  A("HALF", pl->HALF);
  A("KIND", pl->KIND);
  A("PAIRING", pl->PAIRING);
  A("B", pl->B);
  A("HQ", pl->HQ);
  A("HKV", pl->HKV);
  A("G", pl->G);
  A("SQ", pl->SQ);
  A("SKV", pl->SKV);
  A("QPOS0", pl->SKV - pl->SQ);
  A("CAUSAL", pl->CAUSAL);
  A("WINDOW", pl->WINDOW);
  A("PE_PF", prefetch_builtin_ok(&be->di));
  if (pl->op == PE_OP_ATTENTION) {
    A("HPT", pl->HPT);
    A("QT", pl->QT);
    A("NQT", pl->NQT);
    A("BQ", pl->BQ);
    A("BK", pl->BK);
    A("NSPLIT", pl->NSPLIT);
    if (pl->variant == VARIANT_CPU) {
      A("VW", pl->VW);
      A("RB", pl->RB);
      A("KB", pl->KB);
      A("DB", pl->DB);
      A("DP", pl->DP);
      /* not overridable: the host passes K' or K according to it */
      force_def(buf, size, "KPRE", pl->KPRE);
      force_def(buf, size, "PE_V_COPY", pl->VCOPY);
      force_def(buf, size, "DEC", pl->DEC);
      if (pl->DEC) {
        A("PE_DEC_VPLACE", pl->VPLACE);
        A("DBLK", pl->DBLK);
      }
      A("SKVP", pl->SKVP);
    } else {
      /* not overridable: the host launches WG = BQ / RM * TX work-items */
      force_def(buf, size, "RM", pl->RM);
      force_def(buf, size, "TX", pl->TX);
    }
  } else {
    force_def(buf, size, "ENC_ROWS", PE_OCL_ENC_ROWS);
    /* encode uses the row macros only; keep the shared code compiling */
    A("HPT", 1);
    A("QT", 1);
    A("NQT", 1);
    A("BQ", 1);
    A("BK", 1);
    A("NSPLIT", 1);
  }
#undef A
  /* float16 rows on a PoCL CPU device without AVX-512 (vector_width = 16
   * asked for): clang warns, once per helper call, that such vectors
   * change the x86 calling convention -- true and harmless inside one
   * kernel module, and dozens of lines on stderr.  PoCL refuses
   * -Wno-psabi; OpenCL's -w silences warnings in this case only. */
  if (prefetch_builtin_ok(&be->di) && pl->VW > (int)be->di.native_vw) {
    size_t len = strlen(buf);
    pe_ocl_fmt(buf + len, size - len, " -w");
  }
  if (u && *u) {
    size_t len = strlen(buf);
    pe_ocl_fmt(buf + len, size - len, " %s", u);
  }
}

/* ------------------------------------------------------------------------
 * Runs
 * ---------------------------------------------------------------------- */
typedef struct ocl_run {
  ocl_backend *be;
  ocl_plan plan;
  cl_program prog;
  cl_kernel kmain, kcomb, kprep;
  cl_mem q, k, v, tc, ts, ta, sl, kp;
  cl_mem next; /* cpu attention: the persistent groups' tile counter */
  cl_mem out0, out1, part, ml;
  size_t out0_bytes, out1_bytes;
  size_t gsz_main, lsz_main, gsz_comb, lsz_comb, gsz_kprep, lsz_kprep;
} ocl_run;

static void run_release(void *p) {
  ocl_run *r = p;
  if (!r) return;
  cl_mem *mems[] = {&r->q,    &r->k,    &r->v,    &r->tc,   &r->ts,  &r->ta,
                    &r->sl,   &r->out0, &r->out1, &r->part, &r->ml,
                    &r->kp,   &r->next};
  for (size_t i = 0; i < sizeof mems / sizeof mems[0]; ++i)
    if (*mems[i]) clReleaseMemObject(*mems[i]);
  if (r->kmain) clReleaseKernel(r->kmain);
  if (r->kcomb) clReleaseKernel(r->kcomb);
  if (r->kprep) clReleaseKernel(r->kprep);
  if (r->prog) {
    ocl_serialize();
    clReleaseProgram(r->prog);
    ocl_unserialize();
  }
  free(r);
}

/* A buffer of `bytes` (at least 4), filled from `src` when non-NULL. */
static int make_buffer(ocl_run *r, cl_mem *m, size_t bytes, const void *src,
                       cl_mem_flags flags, const char *what, char *err,
                       size_t err_size) {
  ocl_backend *be = r->be;
  cl_int e;
  if (bytes < 4) bytes = 4;
  if (bytes > be->di.max_alloc)
    return pe_plugin_error(err, err_size, PE_EUNSUPPORTED,
                           "unsupported: buffer '%s' needs %.1f MiB, '%s' "
                           "allows %.1f MiB per allocation",
                           what, bytes / 1048576.0, be->di.name,
                           be->di.max_alloc / 1048576.0);
  *m = clCreateBuffer(be->ctx, flags | (src ? CL_MEM_COPY_HOST_PTR : 0), bytes,
                      (void *)src, &e);
  if (!*m) {
    char call[96];
    pe_ocl_fmt(call, sizeof call, "clCreateBuffer(%s, %zu bytes)", what, bytes);
    return cl_fail(err, err_size, e, call, be->di.name);
  }
  return 0;
}

/* Build from source, with the log on failure (printed whole through the
 * host log, truncated in the message). */
static int build_source(ocl_run *r, const char *src, const char *opts,
                        char *err, size_t err_size) {
  ocl_backend *be = r->be;
  cl_int e;
  r->prog = clCreateProgramWithSource(be->ctx, 1, &src, NULL, &e);
  if (!r->prog)
    return cl_fail(err, err_size, e, "clCreateProgramWithSource", be->di.name);
  e = clBuildProgram(r->prog, 1, &be->di.device, opts, NULL, NULL);
  if (e == CL_SUCCESS) return 0;
  size_t len = 0;
  char *log = NULL;
  clGetProgramBuildInfo(r->prog, be->di.device, CL_PROGRAM_BUILD_LOG, 0, NULL,
                        &len);
  if (len) log = malloc(len + 1);
  if (log) {
    if (clGetProgramBuildInfo(r->prog, be->di.device, CL_PROGRAM_BUILD_LOG,
                              len, log, NULL) != CL_SUCCESS)
      len = 0;
    log[len] = 0;
  }
  pe_plugin_log(be->host, PE_LOG_ERROR, PE_OCL_NAME,
                "kernel build failed on '%s' with options '%s'; build log:\n%s",
                be->di.name, opts, log ? log : "(none)");
  char b[32];
  /* the message keeps the start of the log, where the first error is */
  pe_plugin_error(err, err_size, PE_EDEVICE,
                  "opencl: kernel build failed on '%s' (%s); build log: %.500s%s",
                  be->di.name, pe_ocl_strerror(e, b, sizeof b),
                  log && *log ? log : "(empty)",
                  log && strlen(log) > 500 ? " [...]" : "");
  free(log);
  clReleaseProgram(r->prog);
  r->prog = NULL;
  return PE_EDEVICE;
}

/* Load the program binary from the cache; 1 when it built from there. */
static int build_cached(ocl_run *r, const char *path, const char *key,
                        const char *opts) {
  ocl_backend *be = r->be;
  unsigned char *bin = NULL;
  size_t len = 0;
  char why[512];
  cl_int e, st = CL_SUCCESS;
  const int got = pe_ocl_cache_read(path, key, &bin, &len, why, sizeof why);
  if (got < 0)
    pe_plugin_log(be->host, PE_LOG_WARN, PE_OCL_NAME,
                  "program cache entry unusable, rebuilding: %s", why);
  if (got <= 0) return 0;
  const unsigned char *bp = bin;
  r->prog = clCreateProgramWithBinary(be->ctx, 1, &be->di.device, &len, &bp,
                                      &st, &e);
  free(bin);
  if (r->prog && e == CL_SUCCESS && st == CL_SUCCESS &&
      clBuildProgram(r->prog, 1, &be->di.device, opts, NULL, NULL) ==
          CL_SUCCESS)
    return 1;
  pe_plugin_log(be->host, PE_LOG_WARN, PE_OCL_NAME,
                "program cache entry %s rejected by the driver, rebuilding",
                path);
  if (r->prog) clReleaseProgram(r->prog);
  r->prog = NULL;
  return 0;
}

/* Write the program's binary to the cache.  0: stored; -1: not stored,
 * with a short reason in `why_short` for describe() (the warning has the
 * paths). */
static int store_cached(ocl_run *r, const char *path, const char *key,
                        char *why_short, size_t why_short_size) {
  ocl_backend *be = r->be;
  size_t len = 0;
  char why[512] = "";
  if (clGetProgramInfo(r->prog, CL_PROGRAM_BINARY_SIZES, sizeof len, &len,
                       NULL) != CL_SUCCESS ||
      !len) {
    pe_ocl_fmt(why_short, why_short_size, "the driver gave no binary");
    return -1;
  }
  unsigned char *bin = malloc(len);
  if (!bin) {
    pe_ocl_fmt(why_short, why_short_size, "out of memory");
    return -1;
  }
  unsigned char *bins[1] = {bin};
  int rc = -1;
  if (clGetProgramInfo(r->prog, CL_PROGRAM_BINARIES, sizeof bins, bins,
                       NULL) != CL_SUCCESS) {
    pe_ocl_fmt(why_short, why_short_size, "the driver gave no binary");
  } else if (pe_ocl_cache_write(path, key, bin, len, why, sizeof why) != 0) {
    pe_plugin_log(be->host, PE_LOG_WARN, PE_OCL_NAME,
                  "could not write program cache entry: %s", why);
    const char *tail = strrchr(why, ':');
    pe_ocl_fmt(why_short, why_short_size, "could not write the entry: %s",
               tail ? tail + 2 : why);
  } else {
    rc = 0;
  }
  free(bin);
  return rc;
}

/* The program, from the cache when it holds it, else built from source
 * (and stored): all under the lock. */
static int make_program(ocl_run *r, const char *src, const char *opts,
                        const char *key, int *from_cache, int *cacheable,
                        int *cached, char *not_cached, size_t not_cached_size,
                        char *err, size_t err_size) {
  const ocl_backend *be = r->be;
  char path[4200];
  const char *dir = NULL;
  int rc = 0;
  *from_cache = *cacheable = *cached = 0;
  if (be->use_cache && be->host && PE_HAS_FIELD(be->host, pe_host, cache_dir) &&
      be->host->cache_dir)
    dir = be->host->cache_dir(be->host);
  ocl_serialize();
  if (dir && *dir && pe_ocl_cache_path(dir, key, path, sizeof path) == 0) {
    *cacheable = 1;
    *from_cache = build_cached(r, path, key, opts);
  }
  if (!*from_cache) {
    rc = build_source(r, src, opts, err, err_size);
    if (!rc && *cacheable)
      *cached = store_cached(r, path, key, not_cached, not_cached_size) == 0;
  }
  ocl_unserialize();
  return rc;
}

static int set_args(cl_kernel k, const char *name, const char *dev,
                    size_t n, const cl_mem *mems, const float *scale,
                    char *err, size_t err_size) {
  cl_int e = CL_SUCCESS;
  cl_uint i;
  for (i = 0; i < n && e == CL_SUCCESS; ++i)
    e = clSetKernelArg(k, i, sizeof(cl_mem), &mems[i]);
  if (e == CL_SUCCESS && scale) e = clSetKernelArg(k, i, sizeof(float), scale);
  if (e != CL_SUCCESS) {
    char call[64];
    pe_ocl_fmt(call, sizeof call, "clSetKernelArg(%s)", name);
    return cl_fail(err, err_size, e, call, dev);
  }
  return 0;
}

/* The K' pre-pass buffer (zeroed: its rows SKV..SKVP-1 pad the last key
 * tile) and the arguments and size of pe_kprep_cpu. */
static int make_kprime(ocl_run *r, char *err, size_t err_size) {
  const ocl_plan *pl = &r->plan;
  ocl_backend *be = r->be;
  const size_t bytes =
      (size_t)pl->B * pl->HKV * pl->SKVP * pl->D * sizeof(float);
  int rc = make_buffer(r, &r->kp, bytes, NULL, CL_MEM_READ_WRITE, "k prime",
                       err, err_size);
  if (rc) return rc;
  const float zero = 0.0f;
  cl_int e = clEnqueueFillBuffer(be->queue, r->kp, &zero, sizeof zero, 0,
                                 bytes, 0, NULL, NULL);
  if (e != CL_SUCCESS)
    return cl_fail(err, err_size, e, "clEnqueueFillBuffer(k prime)",
                   be->di.name);
  const cl_mem args[5] = {r->k, r->tc, r->ts, r->ta, r->kp};
  rc = set_args(r->kprep, "pe_kprep_cpu", be->di.name, 5, args, NULL, err,
                err_size);
  if (rc) return rc;
  const size_t rows = (size_t)pl->B * pl->HKV * pl->SKV;
  r->lsz_kprep = (size_t)pl->wg_small;
  r->gsz_kprep = (rows + r->lsz_kprep - 1) / r->lsz_kprep * r->lsz_kprep;
  return 0;
}

static int run_prepare(void *p, const pe_task *task, void **out, char *err,
                       size_t err_size) {
  ocl_backend *be = p;
  ocl_run *r;
  ocl_plan pl;
  cl_int e;
  int rc;
  *out = NULL;
  if (!task || !PE_HAS_FIELD(task, pe_task, slopes))
    return pe_plugin_error(err, err_size, PE_EINVAL,
                           "opencl: task struct too small");
  rc = make_plan(be, task, &pl, err, err_size);
  if (rc) return rc;
  r = calloc(1, sizeof *r);
  if (!r) return pe_plugin_error(err, err_size, PE_ENOMEM, "opencl: out of memory");
  r->be = be;
  r->plan = pl;

  /* ---- program: source, options, cache key ---- */
  const char *parts[3] = {pe_ocl_src_common,
                          pl.op == PE_OP_ENCODE ? pe_ocl_src_encode
                          : pl.variant == VARIANT_CPU
                              ? pe_ocl_src_attention_cpu
                              : pe_ocl_src_attention_gpu,
                          NULL};
  size_t slen = 0;
  for (int i = 0; parts[i]; ++i) slen += strlen(parts[i]);
  char *src = malloc(slen + 1);
  char opts[2048], key[4096], variant_text[160];
  if (!src) {
    run_release(r);
    return pe_plugin_error(err, err_size, PE_ENOMEM, "opencl: out of memory");
  }
  src[0] = 0;
  for (int i = 0; parts[i]; ++i) strcat(src, parts[i]);
  build_options(be, &pl, opts, sizeof opts);
  pe_ocl_fmt(key, sizeof key,
           "libpe-opencl cache format %d\nsource fnv1a64 %016llx\n"
           "options %s\nplatform %s | %s\ndevice %s | %s | %s\ndriver %s\n",
           PE_OCL_CACHE_FORMAT,
           (unsigned long long)pe_ocl_hash(PE_OCL_FNV_OFFSET, src, slen), opts,
           be->di.plat_name, be->di.plat_version, be->di.name,
           be->di.version, be->di.c_version, be->di.driver);

  const double t0 = now_ms();
  int from_cache, cacheable, cached;
  char not_cached[160] = "";
  rc = make_program(r, src, opts, key, &from_cache, &cacheable, &cached, not_cached,
                    sizeof not_cached, err, err_size);
  free(src);
  if (rc) {
    run_release(r);
    return rc;
  }
  const double build_ms = now_ms() - t0;

  /* ---- kernels ---- */
  const char *kname =
      pl.op == PE_OP_ENCODE
          ? (pl.variant == VARIANT_CPU ? "pe_encode_rows_cpu" : "pe_encode_gpu")
      : pl.variant == VARIANT_GPU ? "pe_attn_gpu"
      : pl.DEC                    ? "pe_decode_cpu"
                                  : "pe_attn_cpu";
  r->kmain = clCreateKernel(r->prog, kname, &e);
  if (!r->kmain) {
    rc = cl_fail(err, err_size, e, "clCreateKernel", be->di.name);
    run_release(r);
    return rc;
  }
  if (pl.op == PE_OP_ATTENTION && pl.NSPLIT > 1) {
    r->kcomb = clCreateKernel(r->prog, "pe_combine", &e);
    if (!r->kcomb) {
      rc = cl_fail(err, err_size, e, "clCreateKernel(pe_combine)", be->di.name);
      run_release(r);
      return rc;
    }
  }
  if (pl.op == PE_OP_ATTENTION && pl.variant == VARIANT_CPU && pl.KPRE) {
    r->kprep = clCreateKernel(r->prog, "pe_kprep_cpu", &e);
    if (!r->kprep) {
      rc = cl_fail(err, err_size, e, "clCreateKernel(pe_kprep_cpu)", be->di.name);
      run_release(r);
      return rc;
    }
  }
  if (pl.op == PE_OP_ATTENTION) {
    size_t kwg = 0;
    clGetKernelWorkGroupInfo(r->kmain, be->di.device, CL_KERNEL_WORK_GROUP_SIZE,
                             sizeof kwg, &kwg, NULL);
    const size_t need = pl.variant == VARIANT_CPU ? 1 : (size_t)pl.WG;
    if (kwg && kwg < need) {
      run_release(r);
      return pe_plugin_error(err, err_size, PE_EUNSUPPORTED,
                             "unsupported: '%s' runs %s with at most %zu "
                             "work-items per group, the tile needs %zu (set "
                             "block_q smaller)",
                             be->di.name, kname, kwg, need);
    }
  }

  /* ---- buffers ---- */
  const size_t f = sizeof(float);
  const size_t nq = (size_t)pl.B * pl.HQ * pl.SQ * pl.D;
  const size_t nk = (size_t)pl.B * pl.HKV * pl.SKV * pl.D;
  const cl_mem_flags ro = CL_MEM_READ_ONLY, rw = CL_MEM_READ_WRITE;
  const int rot = pl.KIND == PE_KIND_ROTARY, add = pl.KIND == PE_KIND_ADDITIVE;
  const int bias = pl.KIND == PE_KIND_BIAS;
  if ((rot && (!task->rope_cos || !task->rope_sin)) ||
      (add && !task->additive) || (bias && !task->slopes) || !task->q ||
      !task->k || (pl.op == PE_OP_ATTENTION && !task->v)) {
    run_release(r);
    return pe_plugin_error(err, err_size, PE_EINVAL,
                           "opencl: task lacks a tensor or table");
  }
  r->out0_bytes = nq * f;
  r->out1_bytes = pl.op == PE_OP_ENCODE ? nk * f : 0;
  if ((rc = make_buffer(r, &r->q, nq * f, task->q, ro, "q", err, err_size)) ||
      (rc = make_buffer(r, &r->k, nk * f, task->k, ro, "k", err, err_size)) ||
      (rc = make_buffer(r, &r->tc, rot ? (size_t)pl.SKV * pl.HALF * f : 0,
                        rot ? task->rope_cos : NULL, ro, "rope_cos", err,
                        err_size)) ||
      (rc = make_buffer(r, &r->ts, rot ? (size_t)pl.SKV * pl.HALF * f : 0,
                        rot ? task->rope_sin : NULL, ro, "rope_sin", err,
                        err_size)) ||
      (rc = make_buffer(r, &r->ta, add ? (size_t)pl.SKV * pl.D * f : 0,
                        add ? task->additive : NULL, ro, "additive", err,
                        err_size)) ||
      (rc = make_buffer(r, &r->out0, r->out0_bytes, NULL, rw, "output", err,
                        err_size))) {
    run_release(r);
    return rc;
  }
  if (pl.op == PE_OP_ENCODE) {
    if ((rc = make_buffer(r, &r->out1, r->out1_bytes, NULL, rw, "output k",
                          err, err_size))) {
      run_release(r);
      return rc;
    }
    const cl_mem args[7] = {r->q, r->k, r->tc, r->ts, r->ta, r->out0, r->out1};
    if ((rc = set_args(r->kmain, kname, be->di.name, 7, args, NULL, err,
                       err_size))) {
      run_release(r);
      return rc;
    }
    /* cpu: a work-item per PE_OCL_ENC_ROWS rows, one per work-group;
     * gpu: a work-item per element */
    const size_t rows = (size_t)pl.B * pl.HQ * pl.SQ +
                        (size_t)pl.B * pl.HKV * pl.SKV;
    if (pl.variant == VARIANT_CPU) {
      r->lsz_main = 1;
      r->gsz_main = (rows + PE_OCL_ENC_ROWS - 1) / PE_OCL_ENC_ROWS;
      pe_ocl_fmt(variant_text, sizeof variant_text,
                 "encode cpu (%d rows per work-item, vectors along the "
                 "row, non-temporal stores)",
                 PE_OCL_ENC_ROWS);
    } else {
      const size_t items = rows * (size_t)pl.D;
      r->lsz_main = (size_t)pl.wg_small;
      r->gsz_main = (items + r->lsz_main - 1) / r->lsz_main * r->lsz_main;
      pe_ocl_fmt(variant_text, sizeof variant_text,
                 "encode gpu (an element per work-item), work-group %zu",
                 r->lsz_main);
    }
  } else {
    const size_t nrows = (size_t)pl.B * pl.HQ * pl.SQ;
    if ((rc = make_buffer(r, &r->v, nk * f, task->v, ro, "v", err,
                          err_size)) ||
        (rc = make_buffer(r, &r->sl, bias ? (size_t)pl.HQ * f : 0,
                          bias ? task->slopes : NULL, ro, "slopes", err,
                          err_size)) ||
        (pl.NSPLIT > 1 &&
         ((rc = make_buffer(r, &r->part, nrows * pl.NSPLIT * pl.D * f, NULL,
                            rw, "split partials", err, err_size)) ||
          (rc = make_buffer(r, &r->ml, nrows * pl.NSPLIT * 2 * f, NULL, rw,
                            "split statistics", err, err_size))))) {
      run_release(r);
      return rc;
    }
    if (r->kprep && (rc = make_kprime(r, err, err_size))) {
      run_release(r);
      return rc;
    }
    /* scale folded into Q' in log2 units: softmax via exp2 */
    const float qscale = (float)((double)task->softmax_scale * PE_OCL_LOG2E);
    const cl_mem args[9] = {r->q,  r->kprep ? r->kp : r->k,  r->v,
                            r->tc, r->ts, r->ta,
                            r->sl, pl.NSPLIT > 1 ? r->part : r->out0,
                            pl.NSPLIT > 1 ? r->ml : r->out0};
    if ((rc = set_args(r->kmain, kname, be->di.name, 9, args, &qscale, err,
                       err_size))) {
      run_release(r);
      return rc;
    }
    r->lsz_main = pl.variant == VARIANT_CPU ? 1 : (size_t)pl.WG;
    r->gsz_main = pl.groups * r->lsz_main;
    if (pl.variant == VARIANT_CPU) {
      /* one persistent work-group per compute unit (see attention_cpu.cl) */
      const size_t cus = compute_units(be);
      if (r->gsz_main > cus) r->gsz_main = cus;
      if ((rc = make_buffer(r, &r->next, sizeof(cl_int), NULL,
                            CL_MEM_READ_WRITE, "tile counter", err,
                            err_size))) {
        run_release(r);
        return rc;
      }
      e = clSetKernelArg(r->kmain, 10, sizeof(cl_mem), &r->next);
      if (e != CL_SUCCESS) {
        rc = cl_fail(err, err_size, e, "clSetKernelArg(next)", be->di.name);
        run_release(r);
        return rc;
      }
    }
    if (r->kcomb) {
      const cl_mem cargs[3] = {r->part, r->ml, r->out0};
      if ((rc = set_args(r->kcomb, "pe_combine", be->di.name, 3, cargs, NULL,
                         err, err_size))) {
        run_release(r);
        return rc;
      }
      r->lsz_comb = (size_t)pl.wg_small;
      r->gsz_comb = (nrows + r->lsz_comb - 1) / r->lsz_comb * r->lsz_comb;
    }
    if (pl.variant == VARIANT_CPU && pl.DEC)
      pe_ocl_fmt(variant_text, sizeof variant_text,
               "cpu decode (float%d along head_dim, %d heads a work-item, "
               "splits %d of %d-key tiles, %d-key blocks, V %s)",
               pl.VW, pl.HPT, pl.NSPLIT, pl.BK, pl.DBLK,
               pl.VPLACE ? "read in place" : "copied to local");
    else if (pl.variant == VARIANT_CPU)
      pe_ocl_fmt(variant_text, sizeof variant_text,
               "cpu (float%d, BQ %d, BK %d, RB %d KB %d DB %d, heads/tile %d, "
               "splits %d, %s)",
               pl.VW, pl.BQ, pl.BK, pl.RB, pl.KB, pl.DB, pl.HPT, pl.NSPLIT,
               pl.KPRE ? "K' pre-pass" : "K' per tile");
    else
      pe_ocl_fmt(variant_text, sizeof variant_text,
               "gpu (BQ %d, work-group %d, BK %d, heads/tile %d, splits %d)",
               pl.BQ, pl.WG, pl.BK, pl.HPT, pl.NSPLIT);
  }
  /* uploads done before the first timed run */
  e = clFinish(be->queue);
  if (e != CL_SUCCESS) {
    rc = cl_fail(err, err_size, e, "clFinish(upload)", be->di.name);
    run_release(r);
    return rc;
  }
  char program[200];
  if (from_cache)
    pe_ocl_fmt(program, sizeof program, "binary from cache");
  else if (cached)
    pe_ocl_fmt(program, sizeof program, "built, cached");
  else if (cacheable)
    pe_ocl_fmt(program, sizeof program, "built, not cached (%s)", not_cached);
  else
    pe_ocl_fmt(program, sizeof program, "built, no cache");
  pe_ocl_fmt(be->details, sizeof be->details,
           "platform %d device %d, %s; kernel %s%s; program %s (%.0f ms)",
           be->di.plat_index, be->di.dev_index, be->di.version, variant_text,
           be->variant == VARIANT_AUTO ? "" : " [forced]", program, build_ms);
  *out = r;
  return 0;
}

/* Enqueue kernel `k` (what: for messages) with its event in ev[*nev]. */
static int enqueue(ocl_run *r, cl_kernel k, size_t gsz, size_t lsz,
                   const char *what, cl_event *ev, cl_uint *nev, char *err,
                   size_t err_size) {
  cl_int e = clEnqueueNDRangeKernel(r->be->queue, k, 1, NULL, &gsz, &lsz, 0,
                                    NULL, &ev[*nev]);
  if (e != CL_SUCCESS) {
    char call[96];
    pe_ocl_fmt(call, sizeof call, "clEnqueueNDRangeKernel(%s)", what);
    return cl_fail(err, err_size, e, call, r->be->di.name);
  }
  ++*nev;
  return 0;
}

/* K' pre-pass (when planned), the main kernel, the split combine (when
 * planned), in order on the in-order queue; device time from the first
 * command's start to the last one's end. */
static int run_execute(void *p, double *device_ms, char *err,
                       size_t err_size) {
  ocl_run *r = p;
  ocl_backend *be = r->be;
  cl_event ev[4] = {NULL, NULL, NULL, NULL};
  cl_uint nev = 0;
  cl_int e;
  if (device_ms) *device_ms = -1.0;
  int rc = 0;
  if (r->next) {
    const cl_int zero = 0;
    e = clEnqueueFillBuffer(be->queue, r->next, &zero, sizeof zero, 0,
                            sizeof zero, 0, NULL, &ev[nev]);
    if (e != CL_SUCCESS)
      return cl_fail(err, err_size, e, "clEnqueueFillBuffer(tile counter)",
                     be->di.name);
    ++nev;
  }
  if (!rc && r->kprep)
    rc = enqueue(r, r->kprep, r->gsz_kprep, r->lsz_kprep, "k prime", ev, &nev,
                 err, err_size);
  if (!rc)
    rc = enqueue(r, r->kmain, r->gsz_main, r->lsz_main, "main", ev, &nev, err,
                 err_size);
  if (!rc && r->kcomb)
    rc = enqueue(r, r->kcomb, r->gsz_comb, r->lsz_comb, "combine", ev, &nev,
                 err, err_size);
  if (rc) {
    clFinish(be->queue);
    for (cl_uint i = 0; i < nev; ++i) clReleaseEvent(ev[i]);
    return rc;
  }
  e = clWaitForEvents(nev, ev);
  /* a failed command reports its own code (CL_OUT_OF_RESOURCES, ...) */
  for (cl_uint i = 0; i < nev && !rc; ++i) {
    cl_int st = CL_COMPLETE;
    if (clGetEventInfo(ev[i], CL_EVENT_COMMAND_EXECUTION_STATUS, sizeof st,
                       &st, NULL) == CL_SUCCESS &&
        st < 0)
      rc = cl_fail(err, err_size, st, "kernel execution", be->di.name);
  }
  if (!rc && e != CL_SUCCESS)
    rc = cl_fail(err, err_size, e, "clWaitForEvents", be->di.name);
  if (!rc && device_ms) {
    cl_ulong start = 0, end = 0;
    if (clGetEventProfilingInfo(ev[0], CL_PROFILING_COMMAND_START,
                                sizeof start, &start, NULL) == CL_SUCCESS &&
        clGetEventProfilingInfo(ev[nev - 1], CL_PROFILING_COMMAND_END,
                                sizeof end, &end, NULL) == CL_SUCCESS &&
        end >= start)
      *device_ms = (double)(end - start) * 1e-6;
  }
  for (cl_uint i = 0; i < nev; ++i) clReleaseEvent(ev[i]);
  return rc;
}

static int run_fetch(void *p, float *out0, float *out1, char *err,
                     size_t err_size) {
  ocl_run *r = p;
  ocl_backend *be = r->be;
  cl_int e;
  if (out0) {
    e = clEnqueueReadBuffer(be->queue, r->out0, CL_TRUE, 0, r->out0_bytes,
                            out0, 0, NULL, NULL);
    if (e != CL_SUCCESS)
      return cl_fail(err, err_size, e, "clEnqueueReadBuffer(out0)", be->di.name);
  }
  if (out1 && r->out1) {
    e = clEnqueueReadBuffer(be->queue, r->out1, CL_TRUE, 0, r->out1_bytes,
                            out1, 0, NULL, NULL);
    if (e != CL_SUCCESS)
      return cl_fail(err, err_size, e, "clEnqueueReadBuffer(out1)", be->di.name);
  }
  return 0;
}

/* ------------------------------------------------------------------------
 * Entry
 * ---------------------------------------------------------------------- */
static const pe_backend_ops ocl_ops = {
    .struct_size = sizeof(pe_backend_ops),
    .options = ocl_options,
    .open = backend_open,
    .close = backend_close,
    .describe = backend_describe,
    .prepare = run_prepare,
    .execute = run_execute,
    .fetch = run_fetch,
    .release = run_release,
    .enumerate = backend_enumerate,
};

static const pe_plugin_desc ocl_desc = {
    .struct_size = sizeof(pe_plugin_desc),
    .abi_version = PE_ABI_VERSION,
    .kind = PE_PLUGIN_BACKEND,
    .name = PE_OCL_NAME,
    .version = PE_OCL_VERSION,
    .summary = "OpenCL 1.2 through the ICD loader: fused encoding + flash "
               "attention, cpu- and gpu-shaped kernels",
    .scheme = NULL,
    .backend = &ocl_ops,
};

PE_PLUGIN_EXPORT int pe_plugin_entry(uint32_t host_abi, const pe_host *host,
                                     const pe_plugin_desc **desc, char *err,
                                     size_t err_size);
PE_PLUGIN_EXPORT int pe_plugin_entry(uint32_t host_abi, const pe_host *host,
                                     const pe_plugin_desc **desc, char *err,
                                     size_t err_size) {
  (void)host;
  if (host_abi < 1)
    return pe_plugin_error(err, err_size, PE_EABI,
                           "opencl: needs plugin ABI >= 1, host speaks %u",
                           host_abi);
  *desc = &ocl_desc;
  return 0;
}
