"""Hidden integers: sign-magnitude bits, truncation to the analogue level, rounding onto the grid."""
from __future__ import annotations

import torch

from ..circuit.layout import PAPER_LAYOUT, SynapseLayout


def to_bits(hidden: torch.Tensor, layout: SynapseLayout = PAPER_LAYOUT) -> torch.Tensor:
    """Integers (any integer or integer-valued float dtype) → sign-magnitude bit planes
    (..., hidden_bits): [sign, MSB1, …, LSB]; sign 1 = negative."""
    mag = hidden.abs().to(torch.int64)
    shifts = torch.arange(layout.hidden_bits - 2, -1, -1, device=hidden.device)
    bits = torch.bitwise_and(torch.bitwise_right_shift(mag[..., None], shifts), 1)
    return torch.cat([(hidden < 0).to(torch.int64)[..., None], bits], dim=-1).to(torch.uint8)


def from_bits(bits: torch.Tensor) -> torch.Tensor:
    """Sign-magnitude bit planes → integers (inverse of :func:`to_bits`; −0 reads as 0)."""
    n = bits.shape[-1] - 1
    weights = 2 ** torch.arange(n - 1, -1, -1, device=bits.device)
    mag = (bits[..., 1:].to(torch.int64) * weights).sum(-1)
    return torch.where(bits[..., 0] == 1, -mag, mag)


def analogue_level(hidden: torch.Tensor, layout: SynapseLayout = PAPER_LAYOUT) -> torch.Tensor:
    """Sign + MSBs by truncation of the magnitude (digest §4 step 4): −511…511 → −7…7."""
    mag = torch.bitwise_right_shift(hidden.abs().to(torch.int64), layout.level_shift)
    return torch.where(hidden < 0, -mag, mag)


def round_to_grid(v: torch.Tensor, mode: str, u: torch.Tensor | None = None) -> torch.Tensor:
    """Real-valued changes (in LSBs) → integer steps. ``u`` ∈ [0, 1) drives stochastic rounding."""
    if mode == "stochastic":
        return torch.floor(v + u)
    if mode == "nearest":
        return torch.floor(v + 0.5)
    if mode == "truncate":
        return torch.trunc(v)
    raise ValueError(f"rounding={mode!r}")
