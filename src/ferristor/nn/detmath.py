"""exp and log for the CPU kernels that the same bits on every machine (numba, float64).

A math library's ``exp``/``log`` differ in their last bits between libm versions, their SIMD
variants (chosen per CPU at run time) and GPUs; a loss gradient computed with them would make the
same seed train differently on another CPU. These evaluate fixed polynomials with IEEE ``+ − × ÷``
and the exact ``ldexp``/``frexp``, to ≈ 1e-15 relative — far below the float32 they feed.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit
from ..kernel_cache import register

register()  # before any @njit: the caches follow every kernel source (kernel_cache)

_LN2_HI = 0.693145751953125  # ln 2 split so that k·ln2_hi is exact for |k| < 2^11
_LN2_LO = 1.4286068203094173e-06
_INV_LN2 = 1.4426950408889634
_LN2 = 0.6931471805599453
_SQRT_HALF = 0.7071067811865476
# e^r for |r| ≤ ln2/2: Taylor to r^13 (truncation < 2e-16); Horner, highest power first.
_E13, _E12, _E11, _E10, _E9, _E8, _E7, _E6, _E5, _E4, _E3, _E2, _E1, _E0 = (1.0 / math.factorial(n) for n in range(13, -1, -1))
# ln m for m ∈ [1/√2, √2): 2s·Σ s^2k/(2k+1), s = (m−1)/(m+1), |s| ≤ 0.172 (truncation < 1e-15).
_L8, _L7, _L6, _L5, _L4, _L3, _L2, _L1, _L0 = (1.0 / (2 * k + 1) for k in range(8, -1, -1))


@njit(inline="always")
def exp64(x):
    """e^x (float64); 0 below −745, inf above 709.8."""
    if x < -745.2:
        return 0.0
    if x > 709.78:
        return np.inf
    k = np.floor(x * _INV_LN2 + 0.5)
    r = (x - k * _LN2_HI) - k * _LN2_LO
    p = _E13
    for c in (_E12, _E11, _E10, _E9, _E8, _E7, _E6, _E5, _E4, _E3, _E2, _E1, _E0):
        p = p * r + c
    return math.ldexp(p, int(k))


@njit(inline="always")
def log64(x):
    """ln x (float64) for x > 0."""
    m, e = math.frexp(x)  # x = m·2^e, m ∈ [0.5, 1), exact
    if m < _SQRT_HALF:
        m *= 2.0
        e -= 1
    s = (m - 1.0) / (m + 1.0)
    s2 = s * s
    p = _L8
    for c in (_L7, _L6, _L5, _L4, _L3, _L2, _L1, _L0):
        p = p * s2 + c
    return e * _LN2 + 2.0 * s * p
