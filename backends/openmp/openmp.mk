# backends/openmp: filled in by its owner
