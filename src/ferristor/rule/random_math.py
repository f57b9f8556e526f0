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

# --- geometric gaps: the sparse sampler's masks ------------------------------------------------
# Within a crossbar row the masked-in columns are reached by gaps G (masked-out columns skipped),
# P(G ≥ k) = q^k with q = 1 − p: exactly the gaps between successes of independent Bernoulli(p)
# trials. A 32-bit word u gives G = #{k : u < S_k} with S_k = q^(k+1)·2^32 rounded to an integer
# (so P(G ≥ k) = S_(k−1)/2^32 = q^k within 2^-33); past the table (G = L) the gap goes on with the
# next word, which is exact because the geometric distribution forgets (P(G ≥ L + m | G ≥ L) = q^m).
GAP_TABLE_MAX = 4096  # thresholds at most; p ≥ ~0.02 ends the table before (q^k·2^32 < ½)
GAP_BUCKET_SHIFT = 20  # u >> 20: 4,096 buckets of the word's top 12 bits


def gap_thresholds(p24: int) -> tuple[int, ...]:
    """S_0 ≥ S_1 ≥ … ≥ S_(L−1) > 0: round(q^(k+1)·2^32) with q = 1 − p24·2^-24, in exact integer
    arithmetic (no float64 pow, no libm), so every machine builds the same table; (0,) when p = 1."""
    num, out, power = (1 << 24) - p24, [], 1
    for k in range(1, GAP_TABLE_MAX + 1):
        power *= num  # q^k·2^(24k), exact
        s = ((power << 32) + (1 << (24 * k - 1))) >> (24 * k)  # round half up
        if s == 0:
            break
        out.append(s)
    return tuple(out) or (0,)


def gap_of(u: int, thresholds: tuple[int, ...]) -> int:
    """#{k : u < S_k}, by bisection over the decreasing thresholds (the definition, in Python)."""
    lo, hi = 0, len(thresholds)
    while lo < hi:
        mid = (lo + hi) // 2
        if u < thresholds[mid]:
            lo = mid + 1
        else:
            hi = mid
    return lo


def gap_buckets(thresholds: tuple[int, ...]) -> list[int]:
    """Per bucket b of u's top bits: the gap G(u) is lo or lo + 1 for every u in the bucket, with
    lo = G(top of the bucket) and G = lo + [u < S_lo] — or −1 where more thresholds share the bucket
    (small u: long gaps, rare for moderate p) and a bisection decides."""
    out = []
    for b in range(1 << (32 - GAP_BUCKET_SHIFT)):
        top, bottom = ((b + 1) << GAP_BUCKET_SHIFT) - 1, b << GAP_BUCKET_SHIFT
        lo, hi = gap_of(top, thresholds), gap_of(bottom, thresholds)
        out.append(lo if hi <= lo + 1 else -1)
    return out
