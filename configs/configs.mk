# Shipped workload configs, installed under $(pkgdatadir)/configs.
dist_configs_DATA += $(wildcard $(srcdir)/configs/*.ini)
