# The scalar reference backend (the template for backend authors).
plugin_LTLIBRARIES += backends/reference.la
backends_reference_la_SOURCES = backends/reference/reference.c
backends_reference_la_LDFLAGS = $(PE_MODULE_LDFLAGS)
backends_reference_la_LIBADD = -lm
