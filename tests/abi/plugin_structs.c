/* Every struct, enum and callback type of the public plugin headers, made
 * reachable from exported functions (one per type, structs by pointer so a
 * struct may grow at its end), so that abidw records their layout:
 * tests/abi/check.sh builds this into a shared object and compares it with
 * tests/abi/plugin-structs.abi.  A new boundary type gets a line here. */
#include <libpe/pe_errors.h>
#include <libpe/pe_plugin.h>

#define BY_POINTER(type) \
  PE_PLUGIN_EXPORT size_t pe_abi_##type(const type *p); \
  PE_PLUGIN_EXPORT size_t pe_abi_##type(const type *p) { return p ? sizeof *p : 0; }
#define BY_VALUE(type) \
  PE_PLUGIN_EXPORT size_t pe_abi_##type(type v); \
  PE_PLUGIN_EXPORT size_t pe_abi_##type(type v) { return sizeof v; }

BY_POINTER(pe_host)
BY_POINTER(pe_param_decl)
BY_POINTER(pe_param_value)
BY_POINTER(pe_shape)
BY_POINTER(pe_scheme_tables)
BY_POINTER(pe_scheme_ops)
BY_POINTER(pe_task)
BY_POINTER(pe_device_info)
BY_POINTER(pe_backend_ops)
BY_POINTER(pe_plugin_desc)
BY_VALUE(pe_plugin_entry_fn)
BY_VALUE(pe_device_emit_fn)
BY_VALUE(pe_errno)
BY_VALUE(pe_plugin_kind)
BY_VALUE(pe_log_level)
BY_VALUE(pe_param_type)
BY_VALUE(pe_param_flags)
BY_VALUE(pe_encoding_kind)
BY_VALUE(pe_pairing)
BY_VALUE(pe_op)
BY_VALUE(pe_device_type)
