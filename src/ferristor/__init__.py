"""ferristor: on-chip learning with the hybrid ferroelectric–memristor memory (Martemucci et al. 2025).

The PyTorch API at a glance (imported on first use, so ``import ferristor`` stays light)::

    from ferristor import HybridLinear, HybridConv2d, HybridMLP, HybridConfig, HybridSGD, convert, ledger, fit
    from ferristor import set_threads  # torch's and the numba kernels' threads, together
"""
__version__ = "0.1.0"

_EXPORTS = {
    "HybridConfig": "ferristor.nn.config",
    "HybridLinear": "ferristor.nn.linear",
    "HybridConv2d": "ferristor.nn.conv",
    "HybridMLP": "ferristor.nn.mlp",
    "NetworkSpec": "ferristor.nn.mlp",
    "Normalize": "ferristor.nn.norm",
    "HybridSGD": "ferristor.optim.hybrid_sgd",
    "convert": "ferristor.nn.convert",
    "ledger": "ferristor.nn.ledger",
    "fit": "ferristor.experiments.fit",
    "use_backend": "ferristor.backend",
    "set_threads": "ferristor.experiments.fit",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        import importlib
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'ferristor' has no attribute {name!r}")
