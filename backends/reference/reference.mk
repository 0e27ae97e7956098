# backends/reference: filled in by its owner
