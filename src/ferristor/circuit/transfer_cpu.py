"""Fused CPU kernel of the table transfer (numba): hidden integers → programmed analogue weights.

One pass does what :meth:`TableTransfer.program` does in tensor passes — split the sign, shift
out the 3 MSBs, look up the level mean, draw and add the scaled noise, keep the sign, scale to
real units — in the same float32 order and with the same counter-based normals
(``rule.random_cpu``: row i, column j uses words 2j and 2j + 1 of the transfer's row key), so
results match it bit for bit. No fastmath: a fused multiply-add would round differently.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
from numba import njit, prange

from ..rule.random_cpu import column_table, normal, row_keys, word
from ..kernel_cache import register

register()  # before any @njit: the caches follow every kernel source (kernel_cache)


@njit(inline="always")
def _level_mean(h, inv_div, means, ideal):
    """Sign and mean of the level the MSBs of hidden value ``h`` (a float32 integer) select. The
    level is floor(|h|·2^-shift), exact in float32 (a variable-count integer shift costs numba a
    branch per element); the 8 measured means are chosen by selects, not a table read, which
    LLVM cannot vectorise (it cannot bound a data-dependent index)."""
    neg = h < 0
    level = np.floor((-h if neg else h) * inv_div)
    if ideal:
        return neg, level
    v = means[0]
    for k in range(1, 8):
        v = means[k] if level >= np.float32(k) else v
    return neg, v


@njit(parallel=True, cache=True, boundscheck=False, error_model="numpy")
def _table_transfer(hidden, inv_div, means, ideal, keys, index, sigma, noisy, fold, level_step, out):
    zero = np.float32(0.0)
    n_rep, n_in, n_out = hidden.shape
    rk = row_keys(keys, index, n_rep, n_in if noisy else 0)
    tab = column_table(2 * n_out if noisy else 0)
    for t in prange(n_rep * n_in):
        r = t // n_in
        i = t - r * n_in
        hrow, orow = hidden[r, i], out[r, i]
        if noisy:  # two loops, each free of branches, so both vectorise
            ka, kb = rk[r, 0, i], rk[r, 1, i]
            for j in range(n_out):
                neg, value = _level_mean(hrow[j], inv_div, means, ideal)
                z = normal(word(ka, kb, tab[2 * j]), word(ka, kb, tab[2 * j + 1]))
                value = np.float32(value + np.float32(z * sigma))
                value = (-value if fold else zero) if value < zero else value  # the sign never flips
                orow[j] = np.float32((-value if neg else value) * level_step)
        else:
            for j in range(n_out):
                neg, value = _level_mean(hrow[j], inv_div, means, ideal)
                orow[j] = np.float32((-value if neg else value) * level_step)


class Bound:
    """A fused transfer of fixed arrays and constants, run at a given transfer counter. The kernel's
    arguments are worked out once: at k = 1 a transfer runs every step, and preparing them each time
    cost a small layer more than the kernel itself."""

    __slots__ = ("kernel", "head", "tail")

    def __init__(self, kernel, head: tuple, tail: tuple):
        self.kernel, self.head, self.tail = kernel, head, tail

    def __call__(self, index: int) -> None:
        self.kernel(*self.head, np.int64(index), *self.tail)


def bind_table_transfer(hidden: np.ndarray, shift: int, means: np.ndarray, keys: np.ndarray | None, sigma: float,
                        fold: bool, level_step: float, out: np.ndarray) -> Bound:
    """The programmed weights of ``hidden`` (R, I, O) float32 written into ``out`` (R, I, O) in place,
    at the counter the call gives. ``means``: the level means (8 entries, or the ideal 0…max as
    arange); ``keys`` None: no noise."""
    noisy = keys is not None
    table, ideal = _means_table(np.asarray(means, np.float32).tobytes())
    return Bound(_table_transfer, (hidden, np.float32(2.0 ** -shift), table, ideal,
                                   keys if noisy else np.zeros((hidden.shape[0], 2), np.uint32)),
                 (np.float32(sigma), noisy, fold, np.float32(level_step), out))


@lru_cache(maxsize=64)
def _means_table(means: bytes) -> tuple:
    """The kernel's 8 level means (float32 scalars) and whether they are the ideal 0…7, from the
    means' bytes: worked out once, not at every transfer (at k = 1, every step)."""
    m = np.frombuffer(means, np.float32)
    ideal = bool(np.array_equal(m, np.arange(len(m), dtype=np.float32)))
    return tuple(np.float32(v) for v in (m if len(m) == 8 else np.arange(8))), ideal


# --- the circuit transfer drawn from its tabulated distribution (QuantileCircuitTransfer) -------

ROWS_PER_TASK = 16  # rows per parallel task of the quantile transfer (its buffer is allocated once per task)


@njit(parallel=True, cache=True, boundscheck=False, error_model="numpy")
def _quantile_transfer(hidden, inv_div, table, keys, index, z_lo, z_scale, level_step, out):
    """Per weight: its level l and sign from the MSBs, one normal z from the transfer stream (the
    table model's words), and Q_l(z) by linear interpolation in the quantile table — the float32
    order of :meth:`QuantileCircuitTransfer.program` (pos = (z + Z_RANGE)·scale clamped to the grid,
    lo + frac·(hi − lo), the sign, the level step). Two loops per row: the draws and grid positions
    vectorise; the table reads (a data-dependent index, which LLVM will not vectorise here) would
    keep the whole loop scalar, so they run in a second, short loop."""
    n_rep, n_in, n_out = hidden.shape
    steps = table.shape[1] - 1
    flat = table.ravel()
    width = np.float32(steps + 1)
    top, last, top_level = np.float32(steps), np.float32(steps - 1), np.float32(table.shape[0] - 1)
    rk = row_keys(keys, index, n_rep, n_in)
    tab = column_table(2 * n_out)
    tasks = (n_in + ROWS_PER_TASK - 1) // ROWS_PER_TASK
    for task in prange(n_rep * tasks):
        r = task // tasks
        i0 = (task - r * tasks) * ROWS_PER_TASK
        at = np.empty(n_out, np.int32)
        for i in range(i0, min(n_in, i0 + ROWS_PER_TASK)):
            hrow, orow = hidden[r, i], out[r, i]
            ka, kb = rk[r, 0, i], rk[r, 1, i]
            for j in range(n_out):
                level = min(np.floor(abs(hrow[j]) * inv_div), top_level)  # saturated hidden: ≤ top anyway
                z = normal(word(ka, kb, tab[2 * j]), word(ka, kb, tab[2 * j + 1]))
                pos = min(max(np.float32((z + z_lo) * z_scale), np.float32(0.0)), top)
                cell = min(np.floor(pos), last)
                orow[j] = np.float32(pos - cell)  # frac, until the second loop
                at[j] = np.int32(level * width + cell)  # exact: < 2^24 (bind_quantile_transfer)
            for j in range(n_out):
                lo, hi = flat[at[j]], flat[at[j] + 1]
                value = np.float32(lo + np.float32(orow[j] * np.float32(hi - lo)))
                orow[j] = np.float32((-value if hrow[j] < 0 else value) * level_step)


def bind_quantile_transfer(hidden: np.ndarray, shift: int, table: np.ndarray, keys: np.ndarray, z_range: float,
                           level_step: float, out: np.ndarray) -> Bound:
    """The programmed weights of ``hidden`` (R, I, O) float32 written into ``out`` (R, I, O) in place,
    at the counter the call gives: the circuit transfer from its quantile ``table`` (levels, steps + 1)
    float32 over normal scores [−z_range, z_range], noise from ``keys`` (R, 2)."""
    steps = table.shape[1] - 1
    if table.size >= 2 ** 24:
        raise ValueError(f"a quantile table of {table.size} entries: the kernel indexes it in float32 (< 2^24)")
    return Bound(_quantile_transfer, (hidden, np.float32(2.0 ** -shift), np.ascontiguousarray(table, np.float32), keys),
                 (np.float32(z_range), np.float32(steps / (2 * z_range)), np.float32(level_step), out))
