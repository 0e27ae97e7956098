# configs: filled in by its owner
