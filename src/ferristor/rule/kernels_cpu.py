"""Fused CPU kernels of the masked update (numba): one pass over a parameter's crossbar.

Arrays are (R, I, O): R replicas (chips), I crossbar rows (input lines), O columns (outputs) —
the layout the chip has and the one that lets every loop vectorise without reordering a sum.
Per weight a kernel draws its 32-bit word (``random_cpu``), tests the mask, rounds, saturates and
counts, with the arithmetic of ``rule.update`` (the torch path) in the same order, so both agree
bit for bit. Rows are independent (counter-based draws), so the parallel loop gives the same
result at any thread count, and no fastmath is used, so every x86 CPU gives the same bits.

Hidden FeCAP integers are stored as float32 holding exact integers in [−max, max]: the vector
units convert nothing, which keeps the keyed draws as cheap as the old unkeyed hash was.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from .random_cpu import column_table, row_keys, word

ROUNDING_CODE = {"stochastic": 0, "nearest": 1, "truncate": 2}
_f32 = np.float32


@njit(inline="always")
def _rounding_terms(rounding):
    # floor(v + off·a + b): off·1 + 0 is exactly off (stochastic), off·0 + ½ exactly ½ (nearest);
    # truncation selects trunc(v). Branch-free, so the inner loop vectorises.
    zero = _f32(0.0)
    return (_f32(1.0) if rounding == 0 else zero), (_f32(0.5) if rounding == 1 else zero), rounding == 2


@njit(inline="always")
def _hidden_step(h, v, m, p24, c, a, b, trunc_mode, max_h):
    """One weight: mask (m < p24), round, saturate → (h', rounded change, mask). ``m`` is the word's
    top 24 bits; given the mask, m·c = m/(p·2^24) is uniform on [0, 1) and drives stochastic rounding."""
    zero = _f32(0.0)
    msk = m < p24
    d = np.trunc(v) if trunc_mode else np.floor(v + (_f32(m) * c * a + b))
    d = d if msk else zero
    return min(max(h + d, -max_h), max_h), d, msk


@njit(inline="always")
def _fp_step(w, g, m, p24, lr):
    msk = m < p24
    step = lr * g
    return w - (step if msk else _f32(0.0)), np.uint8(msk)


@njit(inline="always")
def _index(z):
    return np.int32(z >> np.uint32(8))


@njit(inline="always")
def _stochastic_step(h, v, m, p24, c, max_h):
    """The default case (stochastic rounding, every masked-in update counted) without the branch-free
    selects of the general step: the same arithmetic (m·c·1 + 0 is exactly m·c), ~15 % faster."""
    zero = _f32(0.0)
    msk = m < p24
    d = np.floor(v + _f32(m) * c)
    d = d if msk else zero
    return min(max(h + d, -max_h), max_h), msk


# The options are tested outside the inner loops (one loop per case): inside, their selects cost
# ~15 % of the whole update. Arrays are indexed [r, i, o] in the loop rather than sliced per row,
# which spares numba a view per row.

@njit(parallel=True, cache=True, boundscheck=False, error_model="numpy")
def _hybrid_rank1(hidden, pending, delta, x, keys, step, neg_coef, p24, c, rounding, max_h, count_zero):
    n_rep, n_in, n_out = hidden.shape
    a, b, trunc_mode = _rounding_terms(rounding)
    s = np.empty((n_rep, n_out), np.float32)
    for r in range(n_rep):
        for o in range(n_out):
            s[r, o] = neg_coef * delta[r, o]
    rk = row_keys(keys, step, n_rep, n_in)
    tab = column_table(n_out)
    fast = rounding == 0 and count_zero
    for t in prange(n_rep * n_in):
        r = t // n_in
        i = t - r * n_in
        ka, kb = rk[r, i, 0], rk[r, i, 1]
        xi = x[r, i]
        if fast:
            for o in range(n_out):
                hidden[r, i, o], msk = _stochastic_step(hidden[r, i, o], xi * s[r, o], _index(word(ka, kb, tab[o])), p24, c,
                                                        max_h)
                pending[r, i, o] += np.uint8(msk)
        else:
            for o in range(n_out):
                hidden[r, i, o], d, msk = _hidden_step(hidden[r, i, o], xi * s[r, o], _index(word(ka, kb, tab[o])), p24, c,
                                                       a, b, trunc_mode, max_h)
                pending[r, i, o] += np.uint8(msk and (count_zero or d != _f32(0.0)))


@njit(parallel=True, cache=True, boundscheck=False, error_model="numpy")
def _hybrid_dense(hidden, pending, grad, keys, step, neg_coef, p24, c, rounding, max_h, count_zero):
    n_rep, n_in, n_out = hidden.shape
    a, b, trunc_mode = _rounding_terms(rounding)
    rk = row_keys(keys, step, n_rep, n_in)
    tab = column_table(n_out)
    fast = rounding == 0 and count_zero
    for t in prange(n_rep * n_in):
        r = t // n_in
        i = t - r * n_in
        ka, kb = rk[r, i, 0], rk[r, i, 1]
        if fast:
            for o in range(n_out):
                hidden[r, i, o], msk = _stochastic_step(hidden[r, i, o], neg_coef * grad[r, i, o],
                                                        _index(word(ka, kb, tab[o])), p24, c, max_h)
                pending[r, i, o] += np.uint8(msk)
        else:
            for o in range(n_out):
                hidden[r, i, o], d, msk = _hidden_step(hidden[r, i, o], neg_coef * grad[r, i, o],
                                                       _index(word(ka, kb, tab[o])), p24, c, a, b, trunc_mode, max_h)
                pending[r, i, o] += np.uint8(msk and (count_zero or d != _f32(0.0)))


@njit(parallel=True, cache=True, boundscheck=False, error_model="numpy")
def _fp_rank1(weight, pending, delta, x, keys, step, lr, p24):
    n_rep, n_in, n_out = weight.shape
    rk = row_keys(keys, step, n_rep, n_in)
    tab = column_table(n_out)
    for t in prange(n_rep * n_in):
        r = t // n_in
        i = t - r * n_in
        ka, kb = rk[r, i, 0], rk[r, i, 1]
        xi = x[r, i]
        for o in range(n_out):
            weight[r, i, o], ev = _fp_step(weight[r, i, o], xi * delta[r, o], _index(word(ka, kb, tab[o])), p24, lr)
            pending[r, i, o] += ev


@njit(parallel=True, cache=True, boundscheck=False, error_model="numpy")
def _fp_dense(weight, pending, grad, keys, step, lr, p24):
    n_rep, n_in, n_out = weight.shape
    rk = row_keys(keys, step, n_rep, n_in)
    tab = column_table(n_out)
    for t in prange(n_rep * n_in):
        r = t // n_in
        i = t - r * n_in
        ka, kb = rk[r, i, 0], rk[r, i, 1]
        for o in range(n_out):
            weight[r, i, o], ev = _fp_step(weight[r, i, o], grad[r, i, o], _index(word(ka, kb, tab[o])), p24, lr)
            pending[r, i, o] += ev


def mask_threshold(p: float) -> int:
    """The 24-bit threshold P with P(m < P) = P/2^24 for a uniform 24-bit m: p (as float32) rounded
    up to a multiple of 2^-24, exactly what ``u < p`` gives for u = m·2^-24."""
    return int(np.ceil(np.float64(np.float32(p)) * 16777216.0))


def rounding_scale(p: float) -> np.float32:
    """c = 2^-24 / p (float32): m·c equals (m·2^-24)·(1/p) exactly (a power of two is exact)."""
    return np.float32(np.float32(1.0 / float(p)) * np.float32(2.0 ** -24))


def rank1_constants(*, lr, lsb, p, rounding, max_hidden, count_zero=True) -> tuple:
    """The hybrid kernels' trailing scalar arguments (after keys and step)."""
    return (-_f32(lr / lsb), np.int32(mask_threshold(p)), rounding_scale(p), ROUNDING_CODE[rounding], _f32(max_hidden),
            count_zero)


def fp_constants(*, lr, p) -> tuple:
    return _f32(lr), np.int32(mask_threshold(p))


def hybrid_update_(hidden, pending, keys, step, *, lr, lsb, p, rounding, max_hidden, count_zero=True,
                   grad=None, delta=None, x=None):
    """In place on numpy arrays: hidden float32 (R, I, O), pending uint8 (R, I, O), keys uint32 (R, 2).
    Either ``grad`` (R, I, O) = ∂L/∂W, or the rank-1 factors ``delta`` (R, O) and ``x`` (R, I)."""
    args = (keys, np.int64(step), *rank1_constants(lr=lr, lsb=lsb, p=p, rounding=rounding, max_hidden=max_hidden,
                                                    count_zero=count_zero))
    if grad is not None:
        _hybrid_dense(hidden, pending, grad, *args)
    else:
        _hybrid_rank1(hidden, pending, delta, x, *args)


def fp_update_(weight, pending, keys, step, *, lr, p, grad=None, delta=None, x=None):
    """The floating-point baseline: float32 weights, the same masks, no grid."""
    args = (keys, np.int64(step), *fp_constants(lr=lr, p=p))
    if grad is not None:
        _fp_dense(weight, pending, grad, *args)
    else:
        _fp_rank1(weight, pending, delta, x, *args)
