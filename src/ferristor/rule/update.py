"""The masked hidden-weight update (digest §4 step 3) — the reference implementation in torch.

For every weight: draw u ~ U[0, 1); the weight is updated iff u < p (a fresh Bernoulli(p) mask);
its change in LSBs is v = −lr·g/lsb, rounded onto the integer grid; the hidden integer saturates at
±max_hidden. One uniform serves both the mask and stochastic rounding: given u < p, u/p is again
uniform on [0, 1) and independent of the mask, so the rule's statistics are exact while drawing half
as many numbers. The fast CPU kernels (``kernels_cpu``) compute the very same arithmetic on the very
same counter-based uniforms, so both agree bit for bit; tests check that.
"""
from __future__ import annotations

import numpy as np
import torch

from .quantize import round_to_grid
from .rng import H1, H2

_M32 = 0xFFFFFFFF


def counter_uniforms(keys: np.ndarray, n: int, device="cpu") -> torch.Tensor:
    """u[r, idx] = top 24 bits of lowbias32(keys[r] + idx) · 2^-24, float32 (R, n).

    int64 arithmetic masked to 32 bits: products wrap but keep their low 32 bits exact.
    """
    k = torch.from_numpy(np.asarray(keys, dtype=np.uint32).astype(np.int64)).to(device)
    z = (k[:, None] + torch.arange(n, dtype=torch.int64, device=device)[None, :]) & _M32
    z = z ^ (z >> 16)
    z = (z * int(H1)) & _M32
    z = z ^ (z >> 15)
    z = (z * int(H2)) & _M32
    z = z ^ (z >> 16)
    return (z >> 8).to(torch.float32) * (1.0 / 16777216.0)


def _scaled_change(grad, delta, x, coef: torch.Tensor) -> torch.Tensor:
    """v = −coef·g, from a dense gradient or from the rank-1 factors of a batch-1 linear layer."""
    if grad is not None:
        return (-coef) * grad
    return ((-coef) * delta)[..., :, None] * x[..., None, :]


def hybrid_update(hidden: torch.Tensor, u: torch.Tensor, *, grad=None, delta=None, x=None,
                  lr: float, lsb: float, p: float, rounding: str, max_hidden: int,
                  count_zero: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """New hidden integers and the per-weight update events (bool) of one step.

    ``u`` has the weight's shape. Give either ``grad`` (dense ∂L/∂W_a) or ``delta`` and ``x`` with
    ∂L/∂W_a = δ·xᵀ. Events are masked-in weights (``count_zero``) or only those that changed.
    """
    f32 = torch.float32
    coef = torch.tensor(lr / lsb, dtype=f32, device=hidden.device)
    v = _scaled_change(grad, delta, x, coef)
    mask = u < torch.tensor(p, dtype=f32)
    w = u * torch.tensor(1.0 / p, dtype=f32) if rounding == "stochastic" else None
    d = torch.where(mask, round_to_grid(v, rounding, w), torch.zeros((), dtype=f32, device=v.device))
    new = (hidden.to(f32) + d).clamp(-max_hidden, max_hidden).to(hidden.dtype)
    events = mask if count_zero else mask & (d != 0)
    return new, events


def fp_update(weight: torch.Tensor, u: torch.Tensor, *, grad=None, delta=None, x=None,
              lr: float, p: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The floating-point baseline: float32 weights, the same Bernoulli(p) mask, no grid."""
    f32 = torch.float32
    g = grad if grad is not None else delta[..., :, None] * x[..., None, :]
    mask = u < torch.tensor(p, dtype=f32)
    step = torch.tensor(lr, dtype=f32, device=weight.device) * g
    return weight - torch.where(mask, step, torch.zeros((), dtype=f32, device=g.device)), mask
