"""Machine-learning code of NailSet (plain PyTorch, independent of Django)."""
