# backends/opencl: filled in by its owner
