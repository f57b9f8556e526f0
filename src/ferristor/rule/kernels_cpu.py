"""Fused CPU kernels of the masked update (numba): one pass over the weights of a layer.

Per weight they hash (key, index) to a uniform, test the mask, round, saturate and count — the
arithmetic of :mod:`ferristor.rule.update` in the same order, so results match it bit for bit.
Rows are independent (counter-based draws), so the parallel loop is deterministic at any thread count.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from .rng import GOLDEN, H1, H2, M1, M2

_ROUNDING_CODE = {"stochastic": 0, "nearest": 1, "truncate": 2}


@njit(inline="always")
def _mix32(x):
    # numba widens uint32 products to 64 bits; the casts keep the hash in 32 bits so it vectorises.
    x = np.uint32(x ^ (x >> np.uint32(16)))
    x = np.uint32(x * H1)
    x = np.uint32(x ^ (x >> np.uint32(15)))
    x = np.uint32(x * H2)
    return np.uint32(x ^ (x >> np.uint32(16)))


@njit(inline="always")
def _mix64(x):
    x ^= x >> np.uint64(30)
    x *= M1
    x ^= x >> np.uint64(27)
    x *= M2
    return x ^ (x >> np.uint64(31))


@njit(cache=True)
def _step_keys(base_keys, step, layer, out):
    salt = _mix64(np.uint64(step) * GOLDEN + np.uint64(layer + 1) * M1)
    for r in range(base_keys.shape[0]):
        out[r] = np.uint32(_mix64(base_keys[r] ^ salt) >> np.uint64(32))
    return out


def step_keys_fast(base_keys: np.ndarray, step: int, layer: int) -> np.ndarray:
    """:func:`ferristor.rule.rng.step_keys` compiled: the same keys without numpy's per-call overhead."""
    return _step_keys(base_keys, step, layer, np.empty(base_keys.shape[0], np.uint32))


@njit(inline="always")
def _uniform(base, j):
    z = _mix32(np.uint32(base + np.uint32(j)))
    return np.float32(np.int32(z >> np.uint32(8))) * np.float32(1.0 / 16777216.0)


@njit(inline="always")
def _hidden_step(h, v, u, p, inv_p, a, b, trunc_mode, max_h, count_zero):
    """One weight: mask, round (floor(v + u/p) | floor(v + 1/2) | trunc v), saturate; → (h', event)."""
    zero = np.float32(0.0)
    m = u < p
    d = np.trunc(v) if trunc_mode else np.floor(v + (u * inv_p * a + b))
    d = d if m else zero
    nh = min(max(np.float32(h) + d, -max_h), max_h)
    return np.int16(nh), np.uint8(m and (count_zero or d != zero))


@njit(inline="always")
def _rounding_terms(rounding):
    # Branch-free rounding so the inner loop vectorises: floor(v + off) with off = u/p (stochastic)
    # or 1/2 (nearest); truncation selects trunc(v). Multiplying by 1 and adding 0 is exact, so the
    # result equals the reference's arithmetic bit for bit.
    zero = np.float32(0.0)
    return (np.float32(1.0) if rounding == 0 else zero), (np.float32(0.5) if rounding == 1 else zero), rounding == 2


@njit(parallel=True, cache=True, boundscheck=False, error_model="numpy")
def _hybrid_rank1(hidden, pending, delta, x, keys, neg_coef, p, inv_p, rounding, max_h, count_zero):
    n_rep, n_out, n_in = hidden.shape
    a, b, trunc_mode = _rounding_terms(rounding)
    for t in prange(n_rep * n_out):
        r = t // n_out
        i = t - r * n_out
        s = neg_coef * delta[r, i]
        base = np.uint32(keys[r] + np.uint32(i * n_in))
        hrow = hidden[r, i]
        crow = pending[r, i]
        xrow = x[r]
        for j in range(n_in):
            hrow[j], ev = _hidden_step(hrow[j], s * xrow[j], _uniform(base, j), p, inv_p, a, b, trunc_mode, max_h, count_zero)
            crow[j] += ev


@njit(inline="always")
def _fp_step(w, g, u, lr, p):
    m = u < p
    step = lr * g
    return w - (step if m else np.float32(0.0)), np.uint8(m)


@njit(parallel=True, cache=True, boundscheck=False, error_model="numpy")
def _fp_rank1(weight, pending, delta, x, keys, lr, p):
    n_rep, n_out, n_in = weight.shape
    for t in prange(n_rep * n_out):
        r = t // n_out
        i = t - r * n_out
        di = delta[r, i]
        base = np.uint32(keys[r] + np.uint32(i * n_in))
        wrow = weight[r, i]
        crow = pending[r, i]
        xrow = x[r]
        for j in range(n_in):
            wrow[j], ev = _fp_step(wrow[j], di * xrow[j], _uniform(base, j), lr, p)
            crow[j] += ev


def hybrid_update_rank1_(hidden, pending, delta, x, keys, *, lr, lsb, p, rounding, max_hidden, count_zero=True):
    """In place on numpy views: hidden int16 (R,O,I), pending uint8 (R,O,I), delta (R,O), x (R,I)."""
    f32 = np.float32
    _hybrid_rank1(hidden, pending, delta, x, keys, -f32(lr / lsb), f32(p), f32(1.0 / p),
                  _ROUNDING_CODE[rounding], f32(max_hidden), count_zero)


def fp_update_rank1_(weight, pending, delta, x, keys, *, lr, p):
    _fp_rank1(weight, pending, delta, x, keys, np.float32(lr), np.float32(p))


@njit(parallel=True, cache=True, boundscheck=False, error_model="numpy")
def _hybrid_dense(hidden, pending, grad, keys, neg_coef, p, inv_p, rounding, max_h, count_zero):
    n_rep, n_out, n_in = hidden.shape
    a, b, trunc_mode = _rounding_terms(rounding)
    for t in prange(n_rep * n_out):
        r = t // n_out
        i = t - r * n_out
        base = np.uint32(keys[r] + np.uint32(i * n_in))
        hrow = hidden[r, i]
        crow = pending[r, i]
        grow = grad[r, i]
        for j in range(n_in):
            hrow[j], ev = _hidden_step(hrow[j], neg_coef * grow[j], _uniform(base, j), p, inv_p, a, b, trunc_mode, max_h, count_zero)
            crow[j] += ev


@njit(parallel=True, cache=True, boundscheck=False, error_model="numpy")
def _fp_dense(weight, pending, grad, keys, lr, p):
    n_rep, n_out, n_in = weight.shape
    for t in prange(n_rep * n_out):
        r = t // n_out
        i = t - r * n_out
        base = np.uint32(keys[r] + np.uint32(i * n_in))
        wrow = weight[r, i]
        crow = pending[r, i]
        grow = grad[r, i]
        for j in range(n_in):
            wrow[j], ev = _fp_step(wrow[j], grow[j], _uniform(base, j), lr, p)
            crow[j] += ev


def hybrid_update_dense_(hidden, pending, grad, keys, *, lr, lsb, p, rounding, max_hidden, count_zero=True):
    """As :func:`hybrid_update_rank1_` from a dense gradient (R, O, I), e.g. a mini-batch's."""
    f32 = np.float32
    _hybrid_dense(hidden, pending, grad, keys, -f32(lr / lsb), f32(p), f32(1.0 / p),
                  _ROUNDING_CODE[rounding], f32(max_hidden), count_zero)


def fp_update_dense_(weight, pending, grad, keys, *, lr, p):
    _fp_dense(weight, pending, grad, keys, np.float32(lr), np.float32(p))
