# Scheme plugins: one loadable module each, pure math (parameters in,
# float64 tables out; NUMERICS.md).  Each exports only pe_plugin_entry.
# plugins/scheme_common.h is their private shared header: never installed.

plugin_LTLIBRARIES += plugins/none.la
plugins_none_la_SOURCES = plugins/none.c plugins/scheme_common.h
plugins_none_la_LDFLAGS = $(PE_MODULE_LDFLAGS)
plugins_none_la_LIBADD = -lm

plugin_LTLIBRARIES += plugins/rope.la
plugins_rope_la_SOURCES = plugins/rope.c plugins/scheme_common.h
plugins_rope_la_LDFLAGS = $(PE_MODULE_LDFLAGS)
plugins_rope_la_LIBADD = -lm

plugin_LTLIBRARIES += plugins/pi.la
plugins_pi_la_SOURCES = plugins/pi.c plugins/scheme_common.h
plugins_pi_la_LDFLAGS = $(PE_MODULE_LDFLAGS)
plugins_pi_la_LIBADD = -lm

plugin_LTLIBRARIES += plugins/ntk.la
plugins_ntk_la_SOURCES = plugins/ntk.c plugins/scheme_common.h
plugins_ntk_la_LDFLAGS = $(PE_MODULE_LDFLAGS)
plugins_ntk_la_LIBADD = -lm

plugin_LTLIBRARIES += plugins/dynamic-ntk.la
plugins_dynamic_ntk_la_SOURCES = plugins/dynamic-ntk.c plugins/scheme_common.h
plugins_dynamic_ntk_la_LDFLAGS = $(PE_MODULE_LDFLAGS)
plugins_dynamic_ntk_la_LIBADD = -lm

plugin_LTLIBRARIES += plugins/yarn.la
plugins_yarn_la_SOURCES = plugins/yarn.c plugins/scheme_common.h
plugins_yarn_la_LDFLAGS = $(PE_MODULE_LDFLAGS)
plugins_yarn_la_LIBADD = -lm

plugin_LTLIBRARIES += plugins/llama3.la
plugins_llama3_la_SOURCES = plugins/llama3.c plugins/scheme_common.h
plugins_llama3_la_LDFLAGS = $(PE_MODULE_LDFLAGS)
plugins_llama3_la_LIBADD = -lm

plugin_LTLIBRARIES += plugins/longrope.la
plugins_longrope_la_SOURCES = plugins/longrope.c plugins/scheme_common.h
plugins_longrope_la_LDFLAGS = $(PE_MODULE_LDFLAGS)
plugins_longrope_la_LIBADD = -lm

plugin_LTLIBRARIES += plugins/sinusoidal.la
plugins_sinusoidal_la_SOURCES = plugins/sinusoidal.c plugins/scheme_common.h
plugins_sinusoidal_la_LDFLAGS = $(PE_MODULE_LDFLAGS)
plugins_sinusoidal_la_LIBADD = -lm

plugin_LTLIBRARIES += plugins/alibi.la
plugins_alibi_la_SOURCES = plugins/alibi.c plugins/scheme_common.h
plugins_alibi_la_LDFLAGS = $(PE_MODULE_LDFLAGS)
plugins_alibi_la_LIBADD = -lm
