"""PyTorch: the same transformer as a module, training and experiments (CPU or CUDA)."""
