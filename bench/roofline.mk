# bench/roofline.mk: filled in by its owner
