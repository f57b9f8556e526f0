"""Optimizers that apply the hybrid learning rule to ``HybridParameter``s."""
from .hybrid_sgd import HybridSGD, hybrid_parameters, plain_parameters

__all__ = ["HybridSGD", "hybrid_parameters", "plain_parameters"]
