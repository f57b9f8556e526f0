"""The masked hidden-weight update (digest §4 step 3) as tensor operations: the path any device runs.

For every weight: a 32-bit counter-based word z (``random_torch``); its top 24 bits m decide the
mask (m < P, probability p) and, given the mask, m·c = m/(p·2^24) is uniform on [0, 1) and drives
stochastic rounding — one draw serves both, with exact statistics. The change in LSBs
v = −lr·g/lsb is rounded onto the integer grid and the hidden integer saturates at ±max_hidden.
The CPU kernels (``kernels_cpu``) compute the same arithmetic on the same words, bit for bit.
Arrays are (R, I, O) crossbars, as there.
"""
from __future__ import annotations

import torch

from . import random_torch
from .kernels_cpu import mask_threshold, rounding_scale
from .quantize import round_to_grid


def crossbar_words(keys: torch.Tensor, shape: tuple[int, int, int], step: int) -> torch.Tensor:
    """The 24-bit draw index m (int64, shape (R, I, O)) of every weight at ``step``."""
    _, n_in, n_out = shape
    dev = keys.device
    rows = torch.arange(n_in, dtype=torch.int64, device=dev)
    cols = torch.arange(n_out, dtype=torch.int64, device=dev)
    return random_torch.words(keys, rows, cols, step) >> 8


def _change(grad, delta, x, coef: torch.Tensor) -> torch.Tensor:
    """v = −coef·g from a dense gradient (R, I, O), or from rank-1 factors: x (R, I), δ (R, O)."""
    if grad is not None:
        return (-coef) * grad
    return x[:, :, None] * ((-coef) * delta)[:, None, :]


def hybrid_update(hidden: torch.Tensor, m: torch.Tensor, *, grad=None, delta=None, x=None, lr: float, lsb: float,
                  p: float, rounding: str, max_hidden: int, count_zero: bool = True):
    """New hidden values (float32 integers) and the update events (bool) of one step."""
    f32, dev = torch.float32, hidden.device
    v = _change(grad, delta, x, torch.tensor(lr / lsb, dtype=f32, device=dev))
    mask = m < mask_threshold(p)
    off = m.to(f32) * torch.tensor(float(rounding_scale(p)), dtype=f32, device=dev) if rounding == "stochastic" else None
    d = torch.where(mask, round_to_grid(v, rounding, off), torch.zeros((), dtype=f32, device=dev))
    new = (hidden + d).clamp(-max_hidden, max_hidden)
    events = mask if count_zero else mask & (d != 0)
    return new, events


def fp_update(weight: torch.Tensor, m: torch.Tensor, *, grad=None, delta=None, x=None, lr: float, p: float):
    """The floating-point baseline: float32 weights, the same Bernoulli(p) mask, no grid."""
    f32, dev = torch.float32, weight.device
    g = grad if grad is not None else x[:, :, None] * delta[:, None, :]
    mask = m < mask_threshold(p)
    step = torch.tensor(lr, dtype=f32, device=dev) * g
    return weight - torch.where(mask, step, torch.zeros((), dtype=f32, device=dev)), mask
