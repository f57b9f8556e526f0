"""Counter-based draws for the CPU kernels (numba): Philox row keys, per-column words, normals.

The crossbar of a parameter is indexed (row, column) = (input line, output). For one key (seed ×
parameter × kind, ``streams``) and one step, every row gets its own 128-bit row key from
Philox-4x32-10 with counter (row, step) — a bijection of the 128-bit counter, so no two
(step, row) pairs of any run share a row key. Within a row, column ``j`` draws the 32-bit word
``lowbias32((T[j] ^ a) + b)``: a fixed scramble of the column, T[j] = lowbias32(j), keyed by 64
bits (a, b) of the row key, then mixed. Two rows' words coincide only where their mixer inputs do
— at random columns, never as a shifted copy (T scrambles the column order; distinct row keys
differ in their 64 bits except with probability 2^-64 per pair). Why not one Philox call per
weight: on AVX2 it costs three times the whole masked update (2.3 vs 0.75 ns/weight), while this
costs one mix per weight and a table read, as the old unkeyed 32-bit hash did, without its
overlaps (old keys were 32-bit and additive: distinct steps shared shifted copies of their draws).

Everything here is integer arithmetic or IEEE ``+ − × ÷ sqrt``, so ``random_torch`` computes the
same bits on any device. No fastmath anywhere: a contracted multiply-add would change them.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from . import random_math as K
from ..kernel_cache import register

register()  # before any @njit: the caches follow every kernel source (kernel_cache)

_u32, _u64 = np.uint32, np.uint64
_M0, _M1 = _u64(K.PHILOX_M0), _u64(K.PHILOX_M1)
_W0, _W1 = _u32(K.PHILOX_W0), _u32(K.PHILOX_W1)
_H1, _H2 = _u32(K.LB_H1), _u32(K.LB_H2)
_LO = _u64(0xFFFFFFFF)


@njit(inline="always")
def philox4x32(c0, c1, c2, c3, k0, k1):
    """Philox-4x32-10 of counter (c0..c3) under key (k0, k1): four uint32 words."""
    for _ in range(K.PHILOX_ROUNDS):
        p0 = _u64(c0) * _M0
        p1 = _u64(c2) * _M1
        n0 = _u32(_u32(p1 >> _u64(32)) ^ c1 ^ k0)
        n2 = _u32(_u32(p0 >> _u64(32)) ^ c3 ^ k1)
        c1 = _u32(p1 & _LO)
        c3 = _u32(p0 & _LO)
        c0, c2 = n0, n2
        k0 = _u32(k0 + _W0)
        k1 = _u32(k1 + _W1)
    return c0, c1, c2, c3


@njit(inline="always")
def lowbias32(x):
    x = _u32(x ^ (x >> _u32(16)))
    x = _u32(x * _H1)
    x = _u32(x ^ (x >> _u32(15)))
    x = _u32(x * _H2)
    return _u32(x ^ (x >> _u32(16)))


@njit(inline="always")
def row_key(k0, k1, row, step):
    """The 128-bit Philox row key (a, b, c, d) of row ``row`` at ``step`` (both non-negative int64)."""
    return philox4x32(_u32(row & 0xFFFFFFFF), _u32(row >> 32), _u32(step & 0xFFFFFFFF), _u32(step >> 32), k0, k1)


@njit(inline="always")
def word(a, b, t):
    """The 32-bit draw of a column whose scramble is ``t`` = T[column], in the row keyed (a, b)."""
    return lowbias32(_u32((t ^ a) + b))


@njit(inline="always")
def column_table(n):
    """T[j] = lowbias32(j) for j < n: the columns' fixed scramble (computed once per call)."""
    t = np.empty(n, np.uint32)
    for j in range(n):
        t[j] = lowbias32(_u32(j))
    return t


_f = np.float32
_L = tuple(_f(c) for c in K.LOG_SERIES)
_C = tuple(_f(c) for c in K.COS_SERIES)
_S = tuple(_f(c) for c in K.SIN_SERIES)
_L0, _L1, _L2, _L3, _L4 = _L
_C0, _C1, _C2, _C3, _C4, _C5, _C6 = _C
_S0, _S1, _S2, _S3, _S4, _S5, _S6 = _S
_LN2, _SQRT2, _ANGLE = _f(K.LN2), _f(K.SQRT2), _f(K.HALF_PI_OVER_2_22)


# The series are written out (Horner, highest power first, in random_math's order) rather than
# looped over a tuple: written out, LLVM vectorises the whole normal draw.

@njit(inline="always")
def _log_series(x):
    return (((_L0 * x + _L1) * x + _L2) * x + _L3) * x + _L4


@njit(inline="always")
def _cos_series(x):
    return (((((_C0 * x + _C1) * x + _C2) * x + _C3) * x + _C4) * x + _C5) * x + _C6


@njit(inline="always")
def _sin_series(x):
    return (((((_S0 * x + _S1) * x + _S2) * x + _S3) * x + _S4) * x + _S5) * x + _S6


@njit(inline="always")
def normal(z1, z2):
    """A standard normal (float32) from two 32-bit words by Box–Muller in float32, with ln and cos
    evaluated by fixed series (``random_math``), so every machine and the torch path get the same
    bits. u1 = n·2^-24 ∈ (0, 1] with n = (z1 >> 8) + 1, exact in float32; m·2^e = n, m ∈ [1, 2),
    found by exact power-of-two scalings (a variable-count shift costs numba a branch per element)."""
    x = _f(np.int32(z1 >> _u32(8)) + np.int32(1))
    e = _f(0.0)
    t = x >= _f(65536.0)
    x = x * _f(1.0 / 65536.0) if t else x
    e = e + _f(16.0) if t else e
    t = x >= _f(256.0)
    x = x * _f(1.0 / 256.0) if t else x
    e = e + _f(8.0) if t else e
    t = x >= _f(16.0)
    x = x * _f(1.0 / 16.0) if t else x
    e = e + _f(4.0) if t else e
    t = x >= _f(4.0)
    x = x * _f(0.25) if t else x
    e = e + _f(2.0) if t else e
    t = x >= _f(2.0)
    m = x * _f(0.5) if t else x
    e = e + _f(1.0) if t else e
    big = m >= _SQRT2
    m = m * _f(0.5) if big else m
    e = e + _f(1.0) if big else e
    s = (m - _f(1.0)) / (m + _f(1.0))
    ln_u = (e - _f(24.0)) * _LN2 + _f(2.0) * s * _log_series(s * s)
    r = np.sqrt(_f(-2.0) * ln_u)
    q = z2 >> _u32(30)
    phi = _f(np.int32((z2 >> _u32(8)) & _u32(0x3FFFFF))) * _ANGLE  # [0, π/2)
    x2 = phi * phi
    c = _cos_series(x2)
    sn = phi * _sin_series(x2)
    # cos(qπ/2 + φ) = c, −s, −c, s for q = 0…3: two selects (a 4-way choice becomes a switch,
    # which stops vectorisation)
    val = sn if (q & _u32(1)) == _u32(1) else c
    return r * (-val if ((q + _u32(1)) & _u32(2)) == _u32(2) else val)


_ROW_BLOCK = 256  # rows per task of the row-key pass: whole vectors, and work for every thread


@njit(inline="always")
def row_keys(keys, step, n_rep, n_rows):
    """(a, b, c, d) of every row of R replicas, uint32 (R, 4, rows): ``rk[r, 0, i]`` is row i's a.
    A pass of its own, laid out so that the rows fill the vector lanes: Philox's 64-bit products
    vectorise across rows (0.9 instead of 9 ns per row), while inlined into a per-column loop
    they stop that loop vectorising (1.8 vs 0.75 ns/weight). Per-column words use (a, b); the
    sparse sampler's rounding words use (c, d)."""
    rk = np.empty((n_rep, 4, n_rows), np.uint32)
    s0, s1 = _u32(step & 0xFFFFFFFF), _u32(step >> 32)
    n_blocks = (n_rows + _ROW_BLOCK - 1) // _ROW_BLOCK
    for t in prange(n_rep * n_blocks):
        r = t // n_blocks
        i0 = (t - r * n_blocks) * _ROW_BLOCK
        n = min(_ROW_BLOCK, n_rows - i0)
        k0, k1, hi = keys[r, 0], keys[r, 1], _u32(i0 >> 32)  # _ROW_BLOCK divides 2^32: one hi per block
        # slices indexed from 0 (not rk[r, 0, i] over i0…i0+n): only this form vectorises
        a, b, c, d = rk[r, 0, i0:i0 + n], rk[r, 1, i0:i0 + n], rk[r, 2, i0:i0 + n], rk[r, 3, i0:i0 + n]
        for j in range(n):
            a[j], b[j], c[j], d[j] = philox4x32(_u32((i0 + j) & 0xFFFFFFFF), hi, s0, s1, k0, k1)
    return rk


# --- the sparse sampler: geometric gaps between masked-in columns (random_math) ------------------

@njit(inline="always")
def gap(u, thresholds, buckets):
    """G(u) = #{k < L : u < S_k} for a 32-bit word u; ``thresholds`` holds S_0 > … > S_(L−1) and a
    sentinel 0 (length L + 1), ``buckets`` ``random_math.gap_buckets``. One table read and one
    comparison in most cases; a bisection where a bucket holds several thresholds."""
    g = buckets[u >> _u32(K.GAP_BUCKET_SHIFT)]
    if g >= 0:
        return g + np.int32(u < thresholds[g])
    lo, hi = np.int32(0), np.int32(thresholds.shape[0] - 1)
    while lo < hi:
        mid = (lo + hi) >> 1
        if u < thresholds[mid]:
            lo = mid + 1
        else:
            hi = mid
    return lo


@njit(inline="always")
def next_event(ka, kb, tab, e, j, n_cols, thresholds, buckets):
    """One step of a row's walk: from the last masked-in column ``j`` (−1 before the first) and the
    next word index ``e``, return (next masked-in column, or ≥ n_cols at the row's end; the index of
    the word that placed it; the next word index). Word e is ``word(a, b, T[e])``; a gap of L (past
    the table) moves on by L columns and draws again. Each word moves ≥ 1 column, so e < n_cols."""
    n = np.int32(thresholds.shape[0] - 1)
    while j < n_cols - 1:
        g = gap(word(ka, kb, tab[e]), thresholds, buckets)
        e += 1
        if g < n:
            return j + g + 1, e - 1, e
        j += n
    return n_cols, e, e


# --- array helpers (tests, initial values) ----------------------------------------------------

@njit(inline="always")
def _keys_of_rows(keys, rows, step):
    rk = np.empty((keys.shape[0], rows.shape[0], 2), np.uint32)
    for t in prange(keys.shape[0] * rows.shape[0]):
        r = t // rows.shape[0]
        i = t - r * rows.shape[0]
        rk[r, i, 0], rk[r, i, 1], _, _ = row_key(keys[r, 0], keys[r, 1], rows[i], step)
    return rk


@njit(parallel=True, cache=True, error_model="numpy")
def words(keys, rows, cols, step):
    """uint32 (R, len(rows), cols): the words of columns 0…cols−1 in the given rows."""
    out = np.empty((keys.shape[0], rows.shape[0], cols), np.uint32)
    rk = _keys_of_rows(keys, rows, step)
    tab = column_table(cols)
    for t in prange(keys.shape[0] * rows.shape[0]):
        r = t // rows.shape[0]
        i = t - r * rows.shape[0]
        a, b = rk[r, i, 0], rk[r, i, 1]
        for j in range(cols):
            out[r, i, j] = word(a, b, tab[j])
    return out


@njit(parallel=True, cache=True, error_model="numpy")
def normals(keys, rows, cols, step):
    """float32 (R, len(rows), cols): column j's normal uses words 2j and 2j + 1 of its row."""
    out = np.empty((keys.shape[0], rows.shape[0], cols), np.float32)
    rk = _keys_of_rows(keys, rows, step)
    tab = column_table(2 * cols)
    for t in prange(keys.shape[0] * rows.shape[0]):
        r = t // rows.shape[0]
        i = t - r * rows.shape[0]
        a, b = rk[r, i, 0], rk[r, i, 1]
        for j in range(cols):
            out[r, i, j] = normal(word(a, b, tab[2 * j]), word(a, b, tab[2 * j + 1]))
    return out
