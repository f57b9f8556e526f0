"""The counter-based draws of ``random_cpu`` as tensor operations, for the torch path (any device).

Integers are held in int64 tensors with values in [0, 2^32); products are split into 16-bit
halves so that nothing overflows int64 (signed overflow is undefined in the C++ and CUDA kernels
underneath). Floating-point steps are the same IEEE operations in the same order as the numba
code, so the two agree bit for bit (tested).
"""
from __future__ import annotations

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


def row_keys(keys: torch.Tensor, rows: torch.Tensor, step: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(a, b) of every replica's rows: keys int64 (R, 2), rows int64 (n,) → two (R, n) tensors."""
    k0, k1 = keys[:, 0:1], keys[:, 1:2]
    z = torch.zeros((), dtype=torch.int64, device=keys.device)
    a, b, _, _ = philox4x32(rows & _MASK32, rows >> 32, z + (step & _MASK32), z + (step >> 32), k0, k1)
    return a, b


def words(keys: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor, step: int) -> torch.Tensor:
    """int64 (R, len(rows), len(cols)) words in [0, 2^32): ``random_cpu.word`` of each (row, col)."""
    a, b = row_keys(keys, rows, step)
    inner = lowbias32(cols[None, None, :] ^ a[..., None])
    return lowbias32((inner + b[..., None]) & _MASK32)


def _horner(coeffs, x: torch.Tensor) -> torch.Tensor:
    acc = torch.full_like(x, coeffs[0])
    for c in coeffs[1:]:
        acc = acc * x + c
    return acc


def normal(z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
    """Box–Muller with series ln/cos, as ``random_cpu.normal``: float64 from two int64 word tensors."""
    n = z1 + 1
    e = torch.zeros_like(n)
    for s in (32, 16, 8, 4, 2, 1):
        e = e + (torch.bitwise_right_shift(n, e + s) > 0).to(torch.int64) * s
    m = torch.bitwise_left_shift(n, 32 - e).to(torch.float64) * (1.0 / 4294967296.0)
    big = m >= K.SQRT2
    m = torch.where(big, m * 0.5, m)
    e = e + big.to(torch.int64)
    s = (m - 1.0) / (m + 1.0)
    ln_u = (e - 32).to(torch.float64) * K.LN2 + 2.0 * s * _horner(K.LOG_SERIES, s * s)
    r = torch.sqrt(-2.0 * ln_u)
    q = z2 >> 30
    phi = (z2 & 0x3FFFFFFF).to(torch.float64) * K.TWO_PI_OVER_2_32
    x2 = phi * phi
    c = _horner(K.COS_SERIES, x2)
    sn = phi * _horner(K.SIN_SERIES, x2)
    cos_theta = torch.where(q == 0, c, torch.where(q == 1, -sn, torch.where(q == 2, -c, sn)))
    return r * cos_theta


def normals(keys: torch.Tensor, rows: torch.Tensor, n_cols: int, step: int) -> torch.Tensor:
    """float32 (R, len(rows), n_cols): as ``random_cpu.normals``."""
    cols = torch.arange(2 * n_cols, dtype=torch.int64, device=keys.device)
    w = words(keys, rows, cols, step)
    return normal(w[..., 0::2], w[..., 1::2]).to(torch.float32)
