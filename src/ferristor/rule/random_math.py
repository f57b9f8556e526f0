"""Constants shared by the CPU (numba) and torch implementations of the counter-based draws.

Both implementations evaluate the same operations on the same constants (rounded to float32 where
the arithmetic is float32) in the same order, using only integer arithmetic and IEEE-754
``+ − × ÷ sqrt`` (correctly rounded on every CPU and GPU), never a math library's ``log``/``cos`` (whose last bits differ between libm versions, SIMD
variants and GPUs). That is what makes a seed give the same numbers everywhere.
"""
from __future__ import annotations

import math

# Philox-4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011).
PHILOX_M0, PHILOX_M1 = 0xD2511F53, 0xCD9E8D57
PHILOX_W0, PHILOX_W1 = 0x9E3779B9, 0xBB67AE85
PHILOX_ROUNDS = 10
# lowbias32 (C. Wellons, "Prospecting for hash functions", 2018): a 32-bit bijective mixer.
LB_H1, LB_H2 = 0x7FEB352D, 0x846CA68B

INV_2_24 = 1.0 / 16777216.0  # a 24-bit integer → uniform on [0, 1) (as float32 torch.rand)

# Box–Muller normals in float32 (8 lanes per AVX2 vector, twice float64's): u1 ∈ (0, 1] and the
# angle from 24 bits each, so |z| ≤ √(2·24·ln 2) = 5.77σ (P(|z| > 5.77) ≈ 8e-9 for a true normal).
LN2 = 0.6931471805599453
SQRT2 = 1.4142135623730951
HALF_PI_OVER_2_22 = (math.pi / 2) / 2.0 ** 22  # the angle within a quadrant from 22 bits
# ln(m), m ∈ [1/√2, √2): 2s·Σ s^2k/(2k+1) with s = (m−1)/(m+1), |s| ≤ 0.172 — truncation < 2e-9.
LOG_SERIES = tuple(1.0 / (2 * k + 1) for k in range(4, -1, -1))  # Horner order: highest first
# cos φ, sin φ/φ for φ ∈ [0, π/2): Taylor to φ^12 / φ^13 — truncation < 7e-9.
COS_SERIES = tuple((-1) ** n / math.factorial(2 * n) for n in range(6, -1, -1))
SIN_SERIES = tuple((-1) ** n / math.factorial(2 * n + 1) for n in range(6, -1, -1))
