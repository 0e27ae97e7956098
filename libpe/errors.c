/* Error codes, their names and texts: generated from PE_ERRNO_MAP. */
#include "internal.h"

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
