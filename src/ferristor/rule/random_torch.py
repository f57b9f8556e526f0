"""The counter-based draws of ``random_cpu`` as tensor operations, for the torch path (any device).

Integers are held in int64 tensors with values in [0, 2^32); products are split into 16-bit
halves so that nothing overflows int64 (signed overflow is undefined in the C++ and CUDA kernels
underneath). Floating-point steps are the same IEEE operations in the same order as the numba
code, so the two agree bit for bit (tested).
"""
from __future__ import annotations

import numpy as np
import torch

from . import random_math as K

_MASK32 = 0xFFFFFFFF


def _mulhilo(a: torch.Tensor, m: int) -> tuple[torch.Tensor, torch.Tensor]:
    """High and low 32 bits of a·m for a ∈ [0, 2^32) (int64 tensor) and a 32-bit constant m."""
    p_lo = a * (m & 0xFFFF)  # < 2^48
    p_hi = a * (m >> 16)  # < 2^48
    lo = (p_lo + ((p_hi & 0xFFFF) << 16)) & _MASK32
    hi = (p_hi + (p_lo >> 16)) >> 16
    return hi & _MASK32, lo


def philox4x32(c0, c1, c2, c3, k0, k1):
    """Philox-4x32-10, elementwise over broadcastable int64 tensors (counter c0..c3, key k0, k1)."""
    for _ in range(K.PHILOX_ROUNDS):
        hi0, lo0 = _mulhilo(c0, K.PHILOX_M0)
        hi1, lo1 = _mulhilo(c2, K.PHILOX_M1)
        c0, c1, c2, c3 = hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0
        k0 = (k0 + K.PHILOX_W0) & _MASK32
        k1 = (k1 + K.PHILOX_W1) & _MASK32
    return c0, c1, c2, c3


def _mul32(x: torch.Tensor, m: int) -> torch.Tensor:
    return ((x * (m & 0xFFFF)) + (((x * (m >> 16)) & 0xFFFF) << 16)) & _MASK32


def lowbias32(x: torch.Tensor) -> torch.Tensor:
    x = x ^ (x >> 16)
    x = _mul32(x, K.LB_H1)
    x = x ^ (x >> 15)
    x = _mul32(x, K.LB_H2)
    return x ^ (x >> 16)


def row_keys(keys: torch.Tensor, rows: torch.Tensor, step: int) -> tuple[torch.Tensor, ...]:
    """(a, b, c, d) of every replica's rows: keys int64 (R, 2), rows int64 (n,) → four (R, n) tensors."""
    k0, k1 = keys[:, 0:1], keys[:, 1:2]
    z = torch.zeros((), dtype=torch.int64, device=keys.device)
    return philox4x32(rows & _MASK32, rows >> 32, z + (step & _MASK32), z + (step >> 32), k0, k1)


def words(keys: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor, step: int, half: int = 0) -> torch.Tensor:
    """int64 (R, len(rows), len(cols)) words in [0, 2^32): ``random_cpu.word`` of each (row, col),
    keyed by (a, b) of the row key (``half`` 0) or by (c, d) (``half`` 1)."""
    return row_words(row_keys(keys, rows, step), cols, half)


def row_words(row_key: tuple[torch.Tensor, ...], cols: torch.Tensor, half: int = 0) -> torch.Tensor:
    a, b = row_key[2 * half], row_key[2 * half + 1]
    t = lowbias32(cols)  # the columns' fixed scramble T[j]
    return lowbias32(((t[None, None, :] ^ a[..., None]) + b[..., None]) & _MASK32)


def gaps(u: torch.Tensor, thresholds: torch.Tensor) -> torch.Tensor:
    """G(u) = #{k : u < S_k} (``random_cpu.gap``) for int64 words u; ``thresholds`` int64 ascending
    (S_(L−1) … S_0, without the sentinel)."""
    return thresholds.numel() - torch.searchsorted(thresholds, u, right=True)


def _horner(coeffs, x: torch.Tensor) -> torch.Tensor:
    acc = torch.full_like(x, coeffs[0])
    for c in coeffs[1:]:
        acc = acc * x + c
    return acc


def normal(z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
    """Box–Muller in float32 with series ln/cos, as ``random_cpu.normal``: float32 from two int64 word tensors."""
    f32 = torch.float32
    n = (z1 >> 8) + 1
    x = n.to(f32)
    e = torch.zeros_like(x)
    for bits, scale in ((16, 65536.0), (8, 256.0), (4, 16.0), (2, 4.0), (1, 2.0)):
        t = x >= scale
        x = torch.where(t, x * (1.0 / scale), x)
        e = torch.where(t, e + float(bits), e)
    m = x
    big = m >= _f32(K.SQRT2)
    m = torch.where(big, m * 0.5, m)
    e = torch.where(big, e + 1.0, e)
    s = (m - 1.0) / (m + 1.0)
    ln_u = (e - 24.0) * _f32(K.LN2) + 2.0 * s * _horner(_f32s(K.LOG_SERIES), s * s)
    # torch's float32 sqrt is not correctly rounded on the CPU; float64's is, and rounding it to
    # float32 gives the correctly rounded float32 root (53 ≥ 2·24 + 2 bits), as numba's sqrtf does
    r = torch.sqrt((-2.0 * ln_u).double()).float()
    q = z2 >> 30
    phi = ((z2 >> 8) & 0x3FFFFF).to(f32) * _f32(K.HALF_PI_OVER_2_22)
    x2 = phi * phi
    c = _horner(_f32s(K.COS_SERIES), x2)
    sn = phi * _horner(_f32s(K.SIN_SERIES), x2)
    val = torch.where((q & 1) == 1, sn, c)
    return r * torch.where(((q + 1) & 2) == 2, -val, val)


def _f32(v: float) -> float:
    """A Python float holding v rounded to float32 (torch uses a scalar operand at the tensor's float32)."""
    return float(np.float32(v))


def _f32s(vs) -> tuple:
    return tuple(_f32(v) for v in vs)


def normals(keys: torch.Tensor, rows: torch.Tensor, n_cols: int, step: int) -> torch.Tensor:
    """float32 (R, len(rows), n_cols): as ``random_cpu.normals``."""
    cols = torch.arange(2 * n_cols, dtype=torch.int64, device=keys.device)
    w = words(keys, rows, cols, step)
    return normal(w[..., 0::2], w[..., 1::2])
