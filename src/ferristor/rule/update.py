"""The masked hidden-weight update (digest §4 step 3) as tensor operations: the path any device runs.

Per weight, a mask (probability p) and a rounding uniform u ∈ [0, 1) from the counter-based
streams (``random_torch``), as the rule's ``sampler`` defines them (docs/engine.md, Randomness):
'dense' — one 32-bit word per weight, whose top 24 bits m give the mask (m < P) and, given it,
u = m·c = m/(p·2^24); 'sparse' — geometric gaps between masked-in columns and a word of its own
for each masked-in weight's u. The change in LSBs v = −lr·g/lsb is rounded onto the integer grid
and the hidden integer saturates at ±max_hidden. The CPU kernels (``kernels_cpu``) compute the same
arithmetic on the same words, bit for bit. Arrays are (R, I, O) crossbars, as there.
"""
from __future__ import annotations

import numpy as np
import torch

from . import random_torch
from .kernels_cpu import gap_tables, mask_threshold, rounding_scale
from .random_math import INV_2_24
from .quantize import round_to_grid


def crossbar_words(keys: torch.Tensor, shape: tuple[int, int, int], step: int) -> torch.Tensor:
    """The 24-bit draw index m (int64, shape (R, I, O)) of every weight at ``step``."""
    _, n_in, n_out = shape
    dev = keys.device
    rows = torch.arange(n_in, dtype=torch.int64, device=dev)
    cols = torch.arange(n_out, dtype=torch.int64, device=dev)
    return random_torch.words(keys, rows, cols, step) >> 8


def crossbar_draws(keys: torch.Tensor, shape: tuple[int, int, int], step: int, *, p: float,
                   sampler: str = "dense") -> tuple[torch.Tensor, torch.Tensor]:
    """Every weight's mask (bool) and rounding uniform (float32 in [0, 1), used where masked in) at
    ``step``, shape (R, I, O), as the sampler defines them (docs/engine.md, Randomness)."""
    if sampler == "dense":
        m = crossbar_words(keys, shape, step)
        return m < mask_threshold(p), m.to(torch.float32) * float(rounding_scale(p))
    return sparse_draws(keys, shape, step, p)


def sparse_draws(keys: torch.Tensor, shape: tuple[int, int, int], step: int, p: float):
    """The sparse sampler's draws for the whole crossbar at once — the straightforward reading of the
    stream that ``kernels_cpu._sparse`` walks: row words e = 0…O−1 (each moves the walk ≥ 1 column,
    so O words always reach the row's end), gaps by table, positions by a cumulative sum."""
    _, n_in, n_out = shape
    dev = keys.device
    th, _ = gap_tables(p)
    th = torch.from_numpy(th[:-1][::-1].astype(np.int64)).to(dev)  # ascending, no sentinel
    n = th.numel()
    cols = torch.arange(n_out, dtype=torch.int64, device=dev)
    rk = random_torch.row_keys(keys, torch.arange(n_in, dtype=torch.int64, device=dev), step)
    g = random_torch.gaps(random_torch.row_words(rk, cols, 0), th)
    event = g < n
    pos = torch.cumsum(torch.where(event, g + 1, n), -1) - 1  # the column each event word lands on
    event &= pos < n_out
    at = torch.where(event, pos, n_out)  # other words go to a spare column, dropped below
    off = (random_torch.row_words(rk, cols, 1) >> 8).to(torch.float32) * INV_2_24
    mask = torch.zeros((*g.shape[:2], n_out + 1), dtype=torch.bool, device=dev).scatter_(-1, at, event)
    offs = torch.zeros((*g.shape[:2], n_out + 1), dtype=torch.float32, device=dev).scatter_(-1, at, off)
    return mask[..., :n_out], offs[..., :n_out]


def _change(grad, delta, x, coef: torch.Tensor) -> torch.Tensor:
    """v = −coef·g from a dense gradient (R, I, O), or from rank-1 factors: x (R, I), δ (R, O)."""
    if grad is not None:
        return (-coef) * grad
    return x[:, :, None] * ((-coef) * delta)[:, None, :]


def hybrid_update(hidden: torch.Tensor, mask: torch.Tensor, off: torch.Tensor, *, grad=None, delta=None, x=None,
                  lr: float, lsb: float, rounding: str, max_hidden: int, count_zero: bool = True):
    """New hidden values (float32 integers) and the update events (bool) of one step, from the
    draws (``crossbar_draws``)."""
    f32, dev = torch.float32, hidden.device
    v = _change(grad, delta, x, torch.tensor(lr / lsb, dtype=f32, device=dev))
    d = torch.where(mask, round_to_grid(v, rounding, off), torch.zeros((), dtype=f32, device=dev))
    new = (hidden + d).clamp(-max_hidden, max_hidden)
    events = mask if count_zero else mask & (d != 0)
    return new, events


def fp_update(weight: torch.Tensor, mask: torch.Tensor, *, grad=None, delta=None, x=None, lr: float):
    """The floating-point baseline: float32 weights, the same Bernoulli(p) mask, no grid."""
    f32, dev = torch.float32, weight.device
    g = grad if grad is not None else x[:, :, None] * delta[:, None, :]
    step = torch.tensor(lr, dtype=f32, device=dev) * g
    return weight - torch.where(mask, step, torch.zeros((), dtype=f32, device=dev)), mask
