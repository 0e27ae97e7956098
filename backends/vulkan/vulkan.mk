# backends/vulkan: filled in by its owner
