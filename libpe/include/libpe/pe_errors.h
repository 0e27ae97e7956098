/* libpe error codes: one table gives the enum, pe_strerror and pe_err_name.
 *
 * Values are negative, explicit and never reused.  New codes are appended
 * at the end of the table with the next free value (see docs/ABI.md). */
#ifndef PE_ERRORS_H
#define PE_ERRORS_H

#define PE_ERRNO_MAP(XX)                                                    \
  XX(OK,           0,  "success")                                          \
  XX(EINVAL,      -1,  "invalid argument")                                 \
  XX(ENOMEM,      -2,  "out of memory")                                    \
  XX(EIO,         -3,  "input/output error")                               \
  XX(ECONFIG,     -4,  "invalid configuration")                            \
  XX(ENPY,        -5,  "invalid .npy file")                                \
  XX(EPLUGIN,     -6,  "plugin could not be loaded")                       \
  XX(EABI,        -7,  "plugin ABI mismatch")                              \
  XX(ENOTFOUND,   -8,  "not found")                                        \
  XX(EUNSUPPORTED,-9,  "unsupported")                                      \
  XX(EDEVICE,    -10,  "device error")                                     \
  XX(EVERIFY,    -11,  "verification failed")                              \
  XX(ELIMIT,     -12,  "limit exceeded")                                   \
  XX(ESTATE,     -13,  "invalid state")                                    \
  XX(ESCHEME,    -14,  "invalid scheme parameters")                        \
  /* ABI 1 ends here; append new codes below with the next value. */

typedef enum pe_errno {
#define PE_ERRNO_ENUM_(name, value, text) PE_##name = (value),
  PE_ERRNO_MAP(PE_ERRNO_ENUM_)
#undef PE_ERRNO_ENUM_
  PE_ERRNO_LAST_ = -15 /* never use: one past the last code */
} pe_errno;

#endif /* PE_ERRORS_H */
