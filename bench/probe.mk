# bench/probe.mk: filled in by its owner
