/* Error codes, their names and texts: generated from PE_ERRNO_MAP. */
#include "internal.h"

#include <stdio.h>

const char *pe_strerror(int err) {
  switch (err) {
#define PE_STRERROR_CASE_(name, value, text) \
  case (value):                             \
    return text;
    PE_ERRNO_MAP(PE_STRERROR_CASE_)
#undef PE_STRERROR_CASE_
  default:
    return "unknown error";
  }
}

const char *pe_err_name(int err) {
  switch (err) {
#define PE_ERRNAME_CASE_(name, value, text) \
  case (value):                            \
    return "PE_" #name;
    PE_ERRNO_MAP(PE_ERRNAME_CASE_)
#undef PE_ERRNAME_CASE_
  default:
    return "PE_UNKNOWN";
  }
}

bool pe__is_error_code(int rc) { return rc < 0 && rc > PE_ERRNO_LAST_; }

int pe__plugin_failure(int rc, int fallback, const char *err, char *msg, size_t size) {
  const char *what = err && err[0] ? err : NULL;
  if (pe__is_error_code(rc)) {
    snprintf(msg, size, "%s", what ? what : pe_strerror(rc));
    return rc;
  }
  /* Not from the table: a positive value, INT_MIN, a made-up code.  Say so
   * (pe_strerror would only say "unknown error") and report `fallback`. */
  snprintf(msg, size, "the plugin returned %d, which is not a libpe error code (contract "
           "violation)%s%s", rc, what ? ": " : "", what ? what : "");
  return fallback;
}

const char *pe_version_string(void) { return PE_VERSION_STRING; }

uint32_t pe_abi_version(void) { return PE_ABI_VERSION; }

const char *pe_run_status_name(uint32_t status) {
  switch (status) {
  case PE_RUN_OK:
    return "ok";
  case PE_RUN_UNSUPPORTED:
    return "unsupported";
  case PE_RUN_FAILED:
    return "failed";
  default:
    return "unknown";
  }
}
