"""PyTorch-side modules: replica banks of hybrid weights and the networks built from them."""
from .mlp import HybridMLP, NetworkSpec

__all__ = ["HybridMLP", "NetworkSpec"]
