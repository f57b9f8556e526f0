"""The rule's functional core: one masked update of a crossbar, on the backend its device calls for.

Modules and optimizers call these; they know nothing of either. Tensors are (R, I, O) crossbar
views (rows = input lines, columns = outputs), updated in place; ``keys`` is the update stream's
uint32 (R, 2) key array (``rule.streams``) and ``step`` the crossbar's update counter, so the
draws are a pure function of (seed, parameter, step, row, column).
"""
from __future__ import annotations

import threading

import numpy as np
import torch

from ..backend import backend_for, cpu_module, triton_for
from . import update as ref


def _factors_np(grad, delta, x) -> dict:
    if grad is not None:
        return {"grad": grad.detach().numpy()}
    return {"delta": delta.detach().numpy(), "x": x.detach().numpy()}


def _factors_t(grad, delta, x) -> dict:
    return {"grad": grad} if grad is not None else {"delta": delta, "x": x}


def hybrid_update_(hidden: torch.Tensor, pending: torch.Tensor, keys: np.ndarray, step: int, *, lr: float,
                   lsb: float, p: float, rounding: str, max_hidden: int, count_zero: bool = True,
                   sampler: str = "dense", grad: torch.Tensor | None = None, delta: torch.Tensor | None = None,
                   x: torch.Tensor | None = None) -> None:
    """Masked, rounded, saturated update of the hidden FeCAP integers; counts events into ``pending``.
    Give the dense gradient ``grad`` (R, I, O), or the rank-1 factors ``delta`` (R, O), ``x`` (R, I)."""
    kw = dict(lr=lr, lsb=lsb, p=p, rounding=rounding, max_hidden=max_hidden, count_zero=count_zero)
    if backend_for(hidden.device) == "numba":
        from . import kernels_cpu
        kernels_cpu.hybrid_update_(hidden.numpy(), pending.numpy(), keys, step, **kw, sampler=sampler,
                                   **_factors_np(grad, delta, x))
        return
    if triton_for(hidden, sampler):
        cpu_module("rule.kernels_triton").update_(hidden, pending, keys_on(keys, hidden.device), step, fp=False,
                                                  **kw, **_factors_t(grad, delta, x))
        return
    mask, off = ref.crossbar_draws(keys_on(keys, hidden.device), tuple(hidden.shape), step, p=p, sampler=sampler)
    del kw["p"]
    new, events = ref.hybrid_update(hidden, mask, off, **kw, **_factors_t(grad, delta, x))
    hidden.copy_(new)
    pending.add_(events.to(torch.uint8))


def fp_update_(weight: torch.Tensor, pending: torch.Tensor, keys: np.ndarray, step: int, *, lr: float, p: float,
               sampler: str = "dense", grad: torch.Tensor | None = None, delta: torch.Tensor | None = None,
               x: torch.Tensor | None = None) -> None:
    """The floating-point baseline: the same masks on float32 weights, plain SGD steps."""
    if backend_for(weight.device) == "numba":
        from . import kernels_cpu
        kernels_cpu.fp_update_(weight.numpy(), pending.numpy(), keys, step, lr=lr, p=p, sampler=sampler,
                               **_factors_np(grad, delta, x))
        return
    if triton_for(weight, sampler):
        cpu_module("rule.kernels_triton").update_(weight, pending, keys_on(keys, weight.device), step, fp=True, lr=lr,
                                                  p=p, **_factors_t(grad, delta, x))
        return
    mask, _ = ref.crossbar_draws(keys_on(keys, weight.device), tuple(weight.shape), step, p=p, sampler=sampler)
    new, events = ref.fp_update(weight, mask, lr=lr, **_factors_t(grad, delta, x))
    weight.copy_(new)
    pending.add_(events.to(torch.uint8))


# Never evicted: captured CUDA graphs hold raw pointers to these tensors (a freed one would be
# reused for something else and read as keys), and trials in other threads share them. An entry is
# R × 16 bytes (a 512-byte block on a GPU): 10,000 trials' keys take a few MB.
_KEYS: dict = {}
_KEYS_LOCK = threading.Lock()  # one tensor per entry even when trials in threads ask at once


def keys_on(keys: np.ndarray, device) -> torch.Tensor:
    """The keys as an int64 tensor on ``device``, copied there once (a host-to-device copy per step
    would serialise a GPU run). The copy is a blocking one, so the tensor is complete before any
    other stream reads it."""
    tag = (keys.tobytes(), str(device))
    t = _KEYS.get(tag)
    if t is None:
        with _KEYS_LOCK:
            t = _KEYS.get(tag)
            if t is None:
                t = _KEYS[tag] = torch.from_numpy(np.asarray(keys, dtype=np.uint32).astype(np.int64)).to(device)
    return t
