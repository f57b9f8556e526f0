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

from functools import lru_cache

import numpy as np
from numba import njit, prange

from . import random_math as RM
from .random_cpu import column_table, next_event, row_key, row_keys, word
from ..kernel_cache import register

register()  # before any @njit: the caches follow every kernel source (kernel_cache)

ROUNDING_CODE = {"stochastic": 0, "nearest": 1, "truncate": 2}
_f32 = np.float32


@njit(inline="always")
def _rounding_terms(rounding):
    # floor(v + off·a + b): off·1 + 0 is exactly off (stochastic), off·0 + ½ exactly ½ (nearest);
    # truncation selects trunc(v). Branch-free, so the inner loop vectorises.
    zero = _f32(0.0)
    return (_f32(1.0) if rounding == 0 else zero), (_f32(0.5) if rounding == 1 else zero), rounding == 2


@njit(inline="always")
def _hidden_step(h, v, msk, off, a, b, trunc_mode, max_h):
    """One weight: given its mask and its rounding uniform ``off`` ∈ [0, 1), round, saturate →
    (h', rounded change). Every sampler and kernel applies the rule through this function."""
    d = np.trunc(v) if trunc_mode else np.floor(v + (off * a + b))
    d = d if msk else _f32(0.0)
    return min(max(h + d, -max_h), max_h), d


@njit(inline="always")
def _fp_step(w, g, msk, lr):
    step = lr * g
    return w - (step if msk else _f32(0.0))


@njit(inline="always")
def _index(z):
    return np.int32(z >> np.uint32(8))


@njit(inline="always")
def _dense_draw(z, p24, c):
    """The dense sampler's mask and rounding uniform from one word: m = its top 24 bits, masked in
    iff m < P; given the mask, m·c = m/(p·2^24) is uniform on [0, 1)."""
    m = _index(z)
    return m < p24, _f32(m) * c


@njit(inline="always")
def _stochastic_step(h, v, msk, off, max_h):
    """The default case (stochastic rounding, every masked-in update counted) without the branch-free
    selects of the general step: the same arithmetic (off·1 + 0 is exactly off), ~15 % faster."""
    d = np.floor(v + off)
    d = d if msk else _f32(0.0)
    return min(max(h + d, -max_h), max_h)


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
        ka, kb = rk[r, 0, i], rk[r, 1, i]
        xi = x[r, i]
        if fast:
            for o in range(n_out):
                msk, off = _dense_draw(word(ka, kb, tab[o]), p24, c)
                hidden[r, i, o] = _stochastic_step(hidden[r, i, o], xi * s[r, o], msk, off, max_h)
                pending[r, i, o] += np.uint8(msk)
        else:
            for o in range(n_out):
                msk, off = _dense_draw(word(ka, kb, tab[o]), p24, c)
                hidden[r, i, o], d = _hidden_step(hidden[r, i, o], xi * s[r, o], msk, off, a, b, trunc_mode, max_h)
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
        ka, kb = rk[r, 0, i], rk[r, 1, i]
        if fast:
            for o in range(n_out):
                msk, off = _dense_draw(word(ka, kb, tab[o]), p24, c)
                hidden[r, i, o] = _stochastic_step(hidden[r, i, o], neg_coef * grad[r, i, o], msk, off, max_h)
                pending[r, i, o] += np.uint8(msk)
        else:
            for o in range(n_out):
                msk, off = _dense_draw(word(ka, kb, tab[o]), p24, c)
                hidden[r, i, o], d = _hidden_step(hidden[r, i, o], neg_coef * grad[r, i, o], msk, off, a, b, trunc_mode,
                                                  max_h)
                pending[r, i, o] += np.uint8(msk and (count_zero or d != _f32(0.0)))


# --- several steps at once: the hidden weights between two transfers ---------------------------
# The passes read the analogue weights, which change only at transfers, never the hidden integers:
# the hidden updates of the steps between two transfers can wait and run together, each row's T
# updates in turn while the row sits in a buffer. Same draws, same arithmetic, each weight's steps
# in the same order, so the bits equal T calls of _hybrid_rank1; what changes is the work around
# the rule. A row of 200 columns is 12 whole vectors and a scalar tail of 8 costing ~a fifth of the
# row (~a half at 100 columns, all of it at 10): the buffer is padded to whole vectors (the padding
# lanes compute on zeros and are dropped), the event counts add up in int32 lanes and reach the
# uint8 counters once, and the per-row and per-call costs are paid once for T steps.

STEPS_PAD = 16  # buffer columns padded to a multiple of this: one 512-bit vector of float32 (two of AVX2's)
STEPS_ROWS_PER_TASK = 16  # rows per parallel task (its buffers are allocated once per task)


@njit(parallel=True, cache=True, boundscheck=False, error_model="numpy")
def _hybrid_rank1_steps(hidden, pending, deltas, xs, keys, step0, neg_coef, p24, c, rounding, max_h, count_zero):
    """T consecutive masked updates from rank-1 factors, steps step0…step0 + T − 1: ``deltas``
    (R, T, O) and ``xs`` (R, I, T) (the layout each loop reads contiguously). Equals T calls of
    ``_hybrid_rank1`` bit for bit; the caller must not read ``hidden`` in between (see above)."""
    n_rep, n_in, n_out = hidden.shape
    n_steps = deltas.shape[1]
    a, b, trunc_mode = _rounding_terms(rounding)
    fast = rounding == 0 and count_zero
    width = (n_out + STEPS_PAD - 1) // STEPS_PAD * STEPS_PAD
    s = np.zeros((n_rep, n_steps, width), np.float32)
    for r in range(n_rep):
        for t in range(n_steps):
            for o in range(n_out):
                s[r, t, o] = neg_coef * deltas[r, t, o]
    tab = column_table(width)
    tasks = (n_in + STEPS_ROWS_PER_TASK - 1) // STEPS_ROWS_PER_TASK
    for task in prange(n_rep * tasks):
        r = task // tasks
        i0 = (task - r * tasks) * STEPS_ROWS_PER_TASK
        h = np.zeros(width, np.float32)
        counts = np.zeros(width, np.int32)
        ka, kb = np.empty(n_steps, np.uint32), np.empty(n_steps, np.uint32)
        for i in range(i0, min(n_in, i0 + STEPS_ROWS_PER_TASK)):
            for t in range(n_steps):  # the row's keys of every step: Philox vectorises across steps
                ka[t], kb[t], _, _ = row_key(keys[r, 0], keys[r, 1], i, step0 + t)
            for o in range(n_out):
                h[o] = hidden[r, i, o]
            counts[:] = 0
            for t in range(n_steps):
                kat, kbt, xi = ka[t], kb[t], xs[r, i, t]
                if fast:
                    for o in range(width):
                        msk, off = _dense_draw(word(kat, kbt, tab[o]), p24, c)
                        h[o] = _stochastic_step(h[o], xi * s[r, t, o], msk, off, max_h)
                        counts[o] += np.int32(msk)
                else:
                    for o in range(width):
                        msk, off = _dense_draw(word(kat, kbt, tab[o]), p24, c)
                        h[o], d = _hidden_step(h[o], xi * s[r, t, o], msk, off, a, b, trunc_mode, max_h)
                        counts[o] += np.int32(msk and (count_zero or d != _f32(0.0)))
            for o in range(n_out):
                hidden[r, i, o] = h[o]
                pending[r, i, o] += np.uint8(counts[o])


@njit(parallel=True, cache=True, boundscheck=False, error_model="numpy")
def _fp_rank1(weight, pending, delta, x, keys, step, lr, p24):
    n_rep, n_in, n_out = weight.shape
    rk = row_keys(keys, step, n_rep, n_in)
    tab = column_table(n_out)
    for t in prange(n_rep * n_in):
        r = t // n_in
        i = t - r * n_in
        ka, kb = rk[r, 0, i], rk[r, 1, i]
        xi = x[r, i]
        for o in range(n_out):
            msk = _index(word(ka, kb, tab[o])) < p24
            weight[r, i, o] = _fp_step(weight[r, i, o], xi * delta[r, o], msk, lr)
            pending[r, i, o] += np.uint8(msk)


@njit(parallel=True, cache=True, boundscheck=False, error_model="numpy")
def _fp_dense(weight, pending, grad, keys, step, lr, p24):
    n_rep, n_in, n_out = weight.shape
    rk = row_keys(keys, step, n_rep, n_in)
    tab = column_table(n_out)
    for t in prange(n_rep * n_in):
        r = t // n_in
        i = t - r * n_in
        ka, kb = rk[r, 0, i], rk[r, 1, i]
        for o in range(n_out):
            msk = _index(word(ka, kb, tab[o])) < p24
            weight[r, i, o] = _fp_step(weight[r, i, o], grad[r, i, o], msk, lr)
            pending[r, i, o] += np.uint8(msk)


@njit(parallel=True, cache=True, boundscheck=False, error_model="numpy")
def _sparse(state, pending, delta, x, grad, keys, step, fp, coef, rounding, max_h, count_zero, thresholds, buckets):
    """The sparse sampler: per row, walk from one masked-in column to the next by geometric gaps
    (``random_cpu.next_event``; words ``word(a, b, T[e])``), and only there draw the rounding
    uniform — ``word(c, d, T[e])`` of the word e that placed the column — and apply the rule; the
    rest of the row is not touched. Rank-1 factors ``delta`` (R, O), ``x`` (R, I) with ``grad``
    empty, or a dense ``grad`` (R, I, O); hybrid (coef = −lr/lsb) or, with ``fp``, float weights
    (coef = lr). Counts each event into ``pending`` as the dense kernels do."""
    n_rep, n_in, n_out = state.shape
    rank1 = grad.shape[0] == 0
    a, b, trunc_mode = _rounding_terms(rounding)
    s = np.empty((n_rep, n_out if rank1 else 0), np.float32)
    for r in range(s.shape[0]):
        for o in range(s.shape[1]):
            s[r, o] = delta[r, o] if fp else coef * delta[r, o]
    rk = row_keys(keys, step, n_rep, n_in)
    tab = column_table(n_out)
    for t in prange(n_rep * n_in):
        r = t // n_in
        i = t - r * n_in
        ka, kb, kc, kd = rk[r, 0, i], rk[r, 1, i], rk[r, 2, i], rk[r, 3, i]
        xi = x[r, i] if rank1 else _f32(0.0)
        j, e_at, e = next_event(ka, kb, tab, 0, -1, n_out, thresholds, buckets)
        while j < n_out:
            if fp:
                g = xi * s[r, j] if rank1 else grad[r, i, j]
                state[r, i, j] = _fp_step(state[r, i, j], g, True, coef)
                pending[r, i, j] += np.uint8(1)
            else:
                v = xi * s[r, j] if rank1 else coef * grad[r, i, j]
                off = _f32(_index(word(kc, kd, tab[e_at]))) * _f32(2.0 ** -24)
                state[r, i, j], d = _hidden_step(state[r, i, j], v, True, off, a, b, trunc_mode, max_h)
                pending[r, i, j] += np.uint8(count_zero or d != _f32(0.0))
            j, e_at, e = next_event(ka, kb, tab, e, j, n_out, thresholds, buckets)


@njit(cache=True, boundscheck=False, error_model="numpy")
def all_finite(a):
    """Whether every value of ``a`` is finite: x·0 is 0 for finite x and NaN for NaN or ±inf, so the
    sum stays 0 exactly when all are (a loop that vectorises; numpy's reductions cost ~10× more
    at the sizes a step checks)."""
    acc = a.dtype.type(0.0)
    for v in a.ravel():
        acc += v * a.dtype.type(0.0)
    return acc == a.dtype.type(0.0)


_NO_GRAD = np.zeros((0, 0, 0), np.float32)
_NO_FACTORS = np.zeros((0, 0), np.float32)


def mask_threshold(p: float) -> int:
    """The 24-bit threshold P with P(m < P) = P/2^24 for a uniform 24-bit m: p (as float32) rounded
    up to a multiple of 2^-24, exactly what ``u < p`` gives for u = m·2^-24. Both samplers use
    this p: the dense one as the threshold, the sparse one in the gaps' q = 1 − P·2^-24."""
    return int(np.ceil(np.float64(np.float32(p)) * 16777216.0))


def rounding_scale(p: float) -> np.float32:
    """c = 2^-24 / p (float32): m·c equals (m·2^-24)·(1/p) exactly (a power of two is exact)."""
    return np.float32(np.float32(1.0 / float(p)) * np.float32(2.0 ** -24))


@lru_cache(maxsize=64)
def gap_tables(p: float) -> tuple[np.ndarray, np.ndarray]:
    """The sparse sampler's thresholds S_0…S_(L−1) and a sentinel 0 (uint32, L + 1) and its buckets
    (int32) for probability p (``random_math``), built once per p."""
    th = RM.gap_thresholds(mask_threshold(p))
    return np.array(th + (0,), np.uint32), np.array(RM.gap_buckets(th), np.int32)


def update_constants(*, fp: bool, sampler: str, lr, p, lsb=None, rounding="stochastic", max_hidden=0,
                     count_zero=True) -> tuple:
    """The trailing scalar arguments (after keys and step) of the kernel that ``rank1_`` and
    ``dense_`` call for this rule."""
    if sampler == "sparse":
        coef = _f32(lr) if fp else -_f32(lr / lsb)
        return (fp, coef, ROUNDING_CODE[rounding], _f32(max_hidden), count_zero, *gap_tables(p))
    if fp:
        return _f32(lr), np.int32(mask_threshold(p))
    return (-_f32(lr / lsb), np.int32(mask_threshold(p)), rounding_scale(p), ROUNDING_CODE[rounding], _f32(max_hidden),
            count_zero)


def check_shapes(state, pending, keys, grad=None, delta=None, x=None) -> None:
    """The kernels index without bounds checks (their speed): a gradient, factor, counter or key array
    of another shape than the crossbar (R, I, O) would be read or written out of bounds, so it is
    refused here, at the boundary, naming the shapes."""
    n_rep, n_in, n_out = state.shape
    want = [("pending", pending, (n_rep, n_in, n_out)), ("keys", keys, (n_rep, 2))]
    if grad is not None:
        want.append(("grad", grad, (n_rep, n_in, n_out)))
    else:
        want += [("delta", delta, (n_rep, n_out)), ("x", x, (n_rep, n_in))]
    for what, a, shape in want:
        if a.shape != shape:
            raise ValueError(f"the update of a {state.shape} crossbar got {what} of shape {a.shape}, expected {shape}")


def rank1_(fp: bool, sampler: str, state, pending, delta, x, keys, step, consts) -> None:
    """One masked update from rank-1 factors δ (R, O), x (R, I), in place on numpy arrays."""
    check_shapes(state, pending, keys, delta=delta, x=x)
    if sampler == "sparse":
        _sparse(state, pending, delta, x, _NO_GRAD, keys, step, *consts)
    elif fp:
        _fp_rank1(state, pending, delta, x, keys, step, *consts)
    else:
        _hybrid_rank1(state, pending, delta, x, keys, step, *consts)


def dense_(fp: bool, sampler: str, state, pending, grad, keys, step, consts) -> None:
    """One masked update from a dense gradient (R, I, O), in place on numpy arrays."""
    check_shapes(state, pending, keys, grad=grad)
    if sampler == "sparse":
        _sparse(state, pending, _NO_FACTORS, _NO_FACTORS, grad, keys, step, *consts)
    elif fp:
        _fp_dense(state, pending, grad, keys, step, *consts)
    else:
        _hybrid_dense(state, pending, grad, keys, step, *consts)


def hybrid_update_(hidden, pending, keys, step, *, lr, lsb, p, rounding, max_hidden, count_zero=True,
                   sampler="dense", grad=None, delta=None, x=None):
    """In place on numpy arrays: hidden float32 (R, I, O), pending uint8 (R, I, O), keys uint32 (R, 2).
    Either ``grad`` (R, I, O) = ∂L/∂W, or the rank-1 factors ``delta`` (R, O) and ``x`` (R, I)."""
    consts = update_constants(fp=False, sampler=sampler, lr=lr, lsb=lsb, p=p, rounding=rounding,
                              max_hidden=max_hidden, count_zero=count_zero)
    _apply(False, sampler, hidden, pending, keys, step, consts, grad, delta, x)


def hybrid_update_steps_(hidden, pending, keys, step0, *, lr, lsb, p, rounding, max_hidden, deltas, xs,
                         count_zero=True):
    """T consecutive dense-sampler updates at steps step0…step0 + T − 1 from the rank-1 factors of
    each step: ``deltas`` (T, R, O), ``xs`` (T, R, I) — what T calls of ``hybrid_update_`` with
    ``delta=deltas[t], x=xs[t]`` do, in one pass over the crossbar."""
    for t in range(len(deltas)):
        check_shapes(hidden, pending, keys, delta=deltas[t], x=xs[t])
    neg_coef, p24, c, code, max_h, count_zero = update_constants(
        fp=False, sampler="dense", lr=lr, lsb=lsb, p=p, rounding=rounding, max_hidden=max_hidden,
        count_zero=count_zero)
    _hybrid_rank1_steps(hidden, pending, np.ascontiguousarray(deltas.transpose(1, 0, 2)),
                        np.ascontiguousarray(xs.transpose(1, 2, 0)), keys, np.int64(step0), neg_coef, p24, c, code,
                        max_h, count_zero)


def fp_update_(weight, pending, keys, step, *, lr, p, sampler="dense", grad=None, delta=None, x=None):
    """The floating-point baseline: float32 weights, the same masks, no grid."""
    _apply(True, sampler, weight, pending, keys, step, update_constants(fp=True, sampler=sampler, lr=lr, p=p), grad,
           delta, x)


def _apply(fp, sampler, state, pending, keys, step, consts, grad, delta, x):
    if grad is not None:
        dense_(fp, sampler, state, pending, grad, keys, np.int64(step), consts)
    else:
        rank1_(fp, sampler, state, pending, delta, x, keys, np.int64(step), consts)
