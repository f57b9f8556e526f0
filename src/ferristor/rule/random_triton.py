"""The counter-based draws of ``random_cpu`` as Triton device functions (the GPU kernels' streams).

The same integer operations on uint32 (wrapping products, ``umulhi``) and the same IEEE float32
operations in the same order — division and square root correctly rounded (``div_rn``,
``sqrt_rn``: Triton's plain ``/`` and ``sqrt`` are approximate on NVIDIA GPUs) — so every word and
every normal equals the CPU's and the torch path's bit for bit (tests/rule/test_kernels_triton.py,
tests/circuit/test_transfer_triton.py). Kernels call these with ``enable_fp_fusion=False``.
"""
from __future__ import annotations

import numpy as np
import triton
import triton.language as tl

from . import random_math as RM

_M0, _M1 = tl.constexpr(RM.PHILOX_M0), tl.constexpr(RM.PHILOX_M1)
_W0, _W1 = tl.constexpr(RM.PHILOX_W0), tl.constexpr(RM.PHILOX_W1)
_H1, _H2 = tl.constexpr(RM.LB_H1), tl.constexpr(RM.LB_H2)
_ROUNDS = tl.constexpr(RM.PHILOX_ROUNDS)


def _f32(v: float) -> tl.constexpr:
    """A constant rounded to float32 first, as the CPU code holds it."""
    return tl.constexpr(float(np.float32(v)))


_LN2, _SQRT2, _ANGLE = _f32(RM.LN2), _f32(RM.SQRT2), _f32(RM.HALF_PI_OVER_2_22)
_L0, _L1, _L2, _L3, _L4 = (_f32(v) for v in RM.LOG_SERIES)
_C0, _C1, _C2, _C3, _C4, _C5, _C6 = (_f32(v) for v in RM.COS_SERIES)
_S0, _S1, _S2, _S3, _S4, _S5, _S6 = (_f32(v) for v in RM.SIN_SERIES)


@triton.jit
def lowbias32(x):
    x = x ^ (x >> 16)
    x = x * tl.full((), _H1, tl.uint32)
    x = x ^ (x >> 15)
    x = x * tl.full((), _H2, tl.uint32)
    return x ^ (x >> 16)


@triton.jit
def row_key(keys_ptr, r, rows, step, BI: tl.constexpr):
    """(a, b) of the Philox-4x32-10 row keys of ``rows`` (BI rows) of replica r at ``step`` (int64):
    counter (row, 0, step lo, step hi), key = the replica's (k0, k1) (``random_cpu.row_key``)."""
    zero = tl.zeros((BI,), tl.uint32)
    k0 = tl.load(keys_ptr + 2 * r).to(tl.uint32) + zero
    k1 = tl.load(keys_ptr + 2 * r + 1).to(tl.uint32) + zero
    c0 = rows.to(tl.uint32)
    c1 = zero
    c2 = (step & 0xFFFFFFFF).to(tl.uint32) + zero
    c3 = (step >> 32).to(tl.uint32) + zero
    for _ in tl.static_range(_ROUNDS):
        m0 = tl.full((), _M0, tl.uint32)
        m1 = tl.full((), _M1, tl.uint32)
        hi0 = tl.umulhi(c0, m0)
        lo0 = c0 * m0
        hi1 = tl.umulhi(c2, m1)
        lo1 = c2 * m1
        c0, c1, c2, c3 = hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0
        k0 = k0 + tl.full((), _W0, tl.uint32)
        k1 = k1 + tl.full((), _W1, tl.uint32)
    return c0, c1


@triton.jit
def words(a, b, cols):
    """The (rows × columns) words of columns ``cols`` in rows keyed (a, b): lowbias32((T[j] ^ a) + b)."""
    t = lowbias32(cols.to(tl.uint32))
    return lowbias32((t[None, :] ^ a[:, None]) + b[:, None])


@triton.jit
def normal(z1, z2):
    """Box–Muller in float32 from two words, ln and cos by fixed series (``random_cpu.normal``)."""
    x = ((z1 >> 8).to(tl.int32) + 1).to(tl.float32)
    e = tl.zeros_like(x)
    t = x >= 65536.0
    x = tl.where(t, x * (1.0 / 65536.0), x)
    e = tl.where(t, e + 16.0, e)
    t = x >= 256.0
    x = tl.where(t, x * (1.0 / 256.0), x)
    e = tl.where(t, e + 8.0, e)
    t = x >= 16.0
    x = tl.where(t, x * (1.0 / 16.0), x)
    e = tl.where(t, e + 4.0, e)
    t = x >= 4.0
    x = tl.where(t, x * 0.25, x)
    e = tl.where(t, e + 2.0, e)
    t = x >= 2.0
    m = tl.where(t, x * 0.5, x)
    e = tl.where(t, e + 1.0, e)
    big = m >= _SQRT2
    m = tl.where(big, m * 0.5, m)
    e = tl.where(big, e + 1.0, e)
    s = tl.div_rn(m - 1.0, m + 1.0)
    s2 = s * s
    log_series = (((_L0 * s2 + _L1) * s2 + _L2) * s2 + _L3) * s2 + _L4
    ln_u = (e - 24.0) * _LN2 + 2.0 * s * log_series
    r = tl.sqrt_rn(-2.0 * ln_u)
    q = z2 >> 30
    phi = ((z2 >> 8) & 0x3FFFFF).to(tl.int32).to(tl.float32) * _ANGLE
    x2 = phi * phi
    c = (((((_C0 * x2 + _C1) * x2 + _C2) * x2 + _C3) * x2 + _C4) * x2 + _C5) * x2 + _C6
    sn = phi * ((((((_S0 * x2 + _S1) * x2 + _S2) * x2 + _S3) * x2 + _S4) * x2 + _S5) * x2 + _S6)
    val = tl.where((q & 1) == 1, sn, c)
    return r * tl.where(((q + 1) & 2) == 2, -val, val)
