"""Fused CPU kernel of the table transfer (numba): hidden integers → programmed analogue weights.

One pass does what :meth:`TableTransfer.program` does in tensor passes — split the sign, shift
out the 3 MSBs, look up the level mean, draw and add the scaled noise, keep the sign, scale to
real units — in the same float32 order and with the same counter-based normals
(``rule.random_cpu``: row i, column j uses words 2j and 2j + 1 of the transfer's row key), so
results match it bit for bit. No fastmath: a fused multiply-add would round differently.
"""
from __future__ import annotations

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


def table_transfer_(hidden: np.ndarray, shift: int, means: np.ndarray, keys: np.ndarray | None, index: int,
                    sigma: float, fold: bool, level_step: float, out: np.ndarray) -> None:
    """Write the programmed weights of ``hidden`` (R, I, O) float32 into ``out`` (R, I, O) in place.
    ``means``: the level means (8 entries, or the ideal 0…max as arange)."""
    noisy = keys is not None
    ideal = bool(np.array_equal(means, np.arange(len(means), dtype=np.float32)))
    table = tuple(np.float32(v) for v in (means if len(means) == 8 else np.arange(8)))
    _table_transfer(hidden, np.float32(2.0 ** -shift), table, ideal,
                    keys if noisy else np.zeros((hidden.shape[0], 2), np.uint32), np.int64(index), np.float32(sigma),
                    noisy, fold, np.float32(level_step), out)
