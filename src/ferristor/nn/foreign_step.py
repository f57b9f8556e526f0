"""A plain ``torch.optim`` optimizer must not step hybrid synapses in the hybrid modes.

Once no :class:`ferristor.optim.HybridSGD` holds a layer, autograd fills ``weight.grad`` as for any
parameter (docs/pytorch.md). A plain optimizer stepping it would write float values into
memristor pairs that hold only the levels a transfer programs, leave the hidden FeCAP integers
and the ledger untouched, and be overwritten by the next transfer: a silent wrong result. In
mode ``'fp'`` the synapses are float weights, and any optimizer may train them.

One process-wide pre-hook on every optimizer's ``step`` refuses that, naming the parameter. It scans
the optimizer's parameters at every step (a type test each, ~50 ns): a cache could go stale where
param_groups are edited in place.
"""
from __future__ import annotations

from torch.optim.optimizer import register_optimizer_step_pre_hook

_registered = False


def register() -> None:
    """Install the hook once per process (``nn.hybrid`` calls this when it is imported)."""
    global _registered
    if not _registered:
        register_optimizer_step_pre_hook(_refuse_float_steps)
        _registered = True


def is_guard(hook) -> bool:
    """Whether a global step pre-hook is this guard (``HybridSGD.is_pure`` looks past it)."""
    return hook is _refuse_float_steps


def _hybrid_params(optimizer) -> list:
    from .hybrid import HybridParameter
    return [p for g in optimizer.param_groups for p in g["params"] if isinstance(p, HybridParameter)]


def _refuse_float_steps(optimizer, args, kwargs) -> None:
    if getattr(optimizer, "applies_hybrid_rule", False):
        return
    from .hybrid import _AUTOGRAD_GRAD  # .grad without HybridParameter's note on kept factors
    for p in _hybrid_params(optimizer):
        if _AUTOGRAD_GRAD.__get__(p) is not None and p.owner is not None and p.owner.config.mode != "fp":
            from ..errors import ConfigError
            raise ConfigError(f"{type(optimizer).__name__} params", p.owner.stream_name(p.slot),
                              f"parameters off hybrid synapses: in mode {p.owner.config.mode!r} a plain optimizer "
                              "would write float values into memristor pairs that hold only transferred levels, "
                              "past the hidden FeCAP integers and the ledger. Give hybrid parameters to "
                              "ferristor.optim.HybridSGD and the rest to this optimizer (plain_parameters(model)), "
                              "or use mode 'fp' to train the synapses as float weights")
