/* Test-only backends built around the reference backend (failing.c,
 * wrong_backend.c): the reference code compiled in with its entry point
 * renamed, and one macro for the parts every such module spells the same
 * way -- the ops table, the descriptor and the entry point.  The including
 * file defines PREFIX_open, _close, _describe, _prepare, _execute, _fetch,
 * _release and PREFIX_options, then invokes
 *
 *   PE_REF_WRAPPER(PREFIX, "plugin-name", "one-line summary")
 */
#ifndef PE_TEST_REF_WRAPPER_H
#define PE_TEST_REF_WRAPPER_H

#define pe_plugin_entry pe_reference_entry_unused
#include "../../backends/reference/reference.c"
#undef pe_plugin_entry

#define PE_REF_WRAPPER(prefix, plugin_name, plugin_summary)                   \
  static const pe_backend_ops prefix##_ops = {                               \
      .struct_size = sizeof(pe_backend_ops),                                 \
      .options = prefix##_options,                                           \
      .open = prefix##_open,                                                 \
      .close = prefix##_close,                                               \
      .describe = prefix##_describe,                                         \
      .prepare = prefix##_prepare,                                           \
      .execute = prefix##_execute,                                           \
      .fetch = prefix##_fetch,                                               \
      .release = prefix##_release,                                           \
  };                                                                         \
  static const pe_plugin_desc prefix##_descriptor = {                        \
      .struct_size = sizeof(pe_plugin_desc),                                 \
      .abi_version = PE_ABI_VERSION,                                         \
      .kind = PE_PLUGIN_BACKEND,                                             \
      .name = plugin_name,                                                   \
      .version = "1.0.0",                                                    \
      .summary = plugin_summary,                                             \
      .backend = &prefix##_ops,                                              \
  };                                                                         \
  PE_PLUGIN_EXPORT int pe_plugin_entry(uint32_t host_abi,                    \
                                       const pe_host *host,                  \
                                       const pe_plugin_desc **desc,          \
                                       char *err, size_t err_size);          \
  PE_PLUGIN_EXPORT int pe_plugin_entry(uint32_t host_abi,                    \
                                       const pe_host *host,                  \
                                       const pe_plugin_desc **desc,          \
                                       char *err, size_t err_size) {         \
    (void)host, (void)host_abi, (void)err, (void)err_size;                   \
    *desc = &prefix##_descriptor;                                            \
    return 0;                                                                \
  }

#endif /* PE_TEST_REF_WRAPPER_H */
