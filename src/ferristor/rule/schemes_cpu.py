"""Fused CPU kernels (numba) of the baseline rules: what their composed form (``rule.compose``) does
in tensor passes, in one pass per step, on the same counter-based draws and in the same float32
order, so both give the same bits (tested). Arrays are (R, I, O) crossbars as in ``kernels_cpu``;
rows are independent, so any thread count gives the same result. No fastmath.

A memristor pair's level is a one's-complement code (``rule.compose``): c = level on G+, −1 − level
on G−. Programming a pair draws its value from the table transfer model: level mean (ideal
integers or the measured means) + σ·z, the sign guard, times one level's real size.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from .random_cpu import column_table, normal, row_key, row_keys, word
from ..kernel_cache import register

register()  # before any @njit: the caches follow every kernel source (kernel_cache)

_f32 = np.float32


@njit(inline="always")
def _idx(z):
    return np.int32(z >> np.uint32(8))


@njit(inline="always")
def _round(v, m, c, rounding):
    """0 stochastic (u = m·c), 1 nearest, 2 truncate — as ``quantize.round_to_grid``; selects, not
    branches, so the loop around it vectorises."""
    u = _f32(m) * c if rounding == 0 else _f32(0.5)
    return np.trunc(v) if rounding == 2 else np.floor(v + u)


@njit(inline="always")
def _step_code(code, d, limit):
    """New one's-complement code after moving the level by d (saturating at ±limit), in selects."""
    zero, one = _f32(0.0), _f32(1.0)
    s = code if code >= zero else code + one
    ns = min(max(s + d, -limit), limit)
    side = -one if code < zero else zero
    return ns if ns > zero else (ns - one if ns < zero else side)


@njit(cache=True, error_model="numpy")
def _program(code, ka, kb, t0, t1, means, ideal, sigma, noisy, fold, level_step):
    """The programmed weight (real units) of a pair holding ``code`` (TableTransfer.program's order).
    Called only for the pairs a step writes (a few per cent), outside the vectorised loops."""
    zero = _f32(0.0)
    neg = code < zero
    mag = (_f32(-1.0) - code) if neg else code
    if ideal:
        v = mag
    else:
        v = means[0]
        for k in range(1, 8):
            v = means[k] if mag >= _f32(k) else v
    if noisy:
        z = normal(word(ka, kb, t0), word(ka, kb, t1))
        v = _f32(v + _f32(z * sigma))
        v = (-v if fold else zero) if v < zero else v
    return _f32((-v if neg else v) * level_step)


# Each kernel runs two parallel loops over the lines: the first, free of branches, moves every level,
# marks the pairs to write and counts them per line (it vectorises); the second programs the marked
# pairs, drawing their noise, and stops after a line's last mark, so a line with none (most: a few
# pairs in a thousand are written per step) costs nothing. Both in one loop body, the first loop ran
# ~1.5× slower, and scanning every mark one by one had cost as much again (BENCHMARKS.md, "The
# baseline rules' kernels").

@njit(inline="always")
def _program_marked(flags, n_marked, code, value, writes, wa, wb, tab, means, ideal, sigma, noisy, fold, level_step):
    o = 0
    while n_marked > 0:
        if flags[o]:
            n_marked -= 1
            writes[o] += 1
            value[o] = _program(code[o], wa, wb, tab[2 * o], tab[2 * o + 1], means, ideal, sigma, noisy, fold, level_step)
        o += 1


@njit(inline="always")
def _program_lines(flags, marks, code, value, writes, wk, tab, means, ideal, sigma, noisy, fold, level_step):
    """The second loop over every line (R × I) of a crossbar, its write keys ``wk`` (R, 4, I)."""
    n_rep, n_in = code.shape[0], code.shape[1]
    for t in prange(n_rep * n_in):
        r = t // n_in
        i = t - r * n_in
        _program_marked(flags[t], marks[t], code[r, i], value[r, i], writes[r, i], wk[r, 0, i], wk[r, 1, i], tab, means, ideal,
                        sigma, noisy, fold, level_step)


@njit(parallel=True, cache=True, boundscheck=False, error_model="numpy")
def level_update_rank1(code, value, pending, writes, delta, x, ukeys, step, wkeys, windex, neg_coef, p24, c, rounding,
                       limit, every_update, means, ideal, sigma, noisy, fold, level_step):
    """memristor-SGD (and Tiki-Taka's fast array): masked, rounded change in levels, the level moved,
    the pair programmed when its code changes (or at every masked-in update)."""
    n_rep, n_in, n_out = code.shape
    s = np.empty((n_rep, n_out), np.float32)
    for r in range(n_rep):
        for o in range(n_out):
            s[r, o] = neg_coef * delta[r, o]
    rk = row_keys(ukeys, step, n_rep, n_in)
    wk = row_keys(wkeys, windex, n_rep, n_in)
    tab = column_table(2 * n_out)
    flags = np.empty((n_rep * n_in, n_out), np.uint8)
    marks = np.empty(n_rep * n_in, np.int32)
    zero = _f32(0.0)
    for t in prange(n_rep * n_in):
        r = t // n_in
        i = t - r * n_in
        ka, kb = rk[r, 0, i], rk[r, 1, i]
        xi = x[r, i]
        crow, prow, frow = code[r, i], pending[r, i], flags[t]
        marked = np.int32(0)
        for o in range(n_out):
            m = _idx(word(ka, kb, tab[o]))
            msk = m < p24
            d = _round(xi * s[r, o], m, c, rounding)
            d = d if msk else zero
            old = crow[o]
            new = _step_code(old, d, limit)
            crow[o] = new
            prow[o] += np.uint8(msk)
            flag = msk if every_update else new != old
            frow[o] = np.uint8(flag)
            marked += np.int32(flag)
        marks[t] = marked
    _program_lines(flags, marks, code, value, writes, wk, tab, means, ideal, sigma, noisy, fold, level_step)


@njit(parallel=True, cache=True, boundscheck=False, error_model="numpy")
def chi_update_rank1(chi, pending, delta, x, ukeys, step, neg_coef, p24):
    """Mixed precision: χ += the masked change in levels (float32, not rounded)."""
    n_rep, n_in, n_out = chi.shape
    s = np.empty((n_rep, n_out), np.float32)
    for r in range(n_rep):
        for o in range(n_out):
            s[r, o] = neg_coef * delta[r, o]
    rk = row_keys(ukeys, step, n_rep, n_in)
    tab = column_table(n_out)
    zero = _f32(0.0)
    for t in prange(n_rep * n_in):
        r = t // n_in
        i = t - r * n_in
        ka, kb = rk[r, 0, i], rk[r, 1, i]
        xi = x[r, i]
        for o in range(n_out):
            msk = _idx(word(ka, kb, tab[o])) < p24
            v = xi * s[r, o]
            chi[r, i, o] = chi[r, i, o] + (v if msk else zero)
            pending[r, i, o] += np.uint8(msk)


@njit(parallel=True, cache=True, boundscheck=False, error_model="numpy")
def chi_threshold(chi, code, value, writes, wkeys, windex, eps, limit, means, ideal, sigma, noisy, fold, level_step):
    """Mixed precision's transfer: n = trunc(χ/ε); χ −= n·ε; the level moves n·ε, programmed if changed."""
    n_rep, n_in, n_out = chi.shape
    wk = row_keys(wkeys, windex, n_rep, n_in)
    tab = column_table(2 * n_out)
    flags = np.empty((n_rep * n_in, n_out), np.uint8)
    marks = np.empty(n_rep * n_in, np.int32)
    for t in prange(n_rep * n_in):
        r = t // n_in
        i = t - r * n_in
        hrow, crow, frow = chi[r, i], code[r, i], flags[t]
        marked = np.int32(0)
        for o in range(n_out):
            h = hrow[o]
            step = np.trunc(h / eps) * eps
            hrow[o] = h - step
            old = crow[o]
            new = _step_code(old, step, limit)
            crow[o] = new
            frow[o] = np.uint8(new != old)
            marked += np.int32(new != old)
        marks[t] = marked
    _program_lines(flags, marks, code, value, writes, wk, tab, means, ideal, sigma, noisy, fold, level_step)


@njit(parallel=True, cache=True, boundscheck=False, error_model="numpy")
def line_transfer(fast_code, fast, resets, code, value, writes, rows, rkeys, rindex, wkeys, windex, transfer_lr, rounding,
                  limit, reset, means, ideal, sigma, noisy, fold, level_step):
    """Tiki-Taka's transfer of the given input lines: read A (levels), C moves by the rounded
    transfer_lr × read (programmed if changed), A is RESET where it is not at 0."""
    n_rep, n_in, n_out = code.shape
    n_rows = rows.shape[0]
    zero = _f32(0.0)
    one24 = _f32(1.0 / 16777216.0)
    tab = column_table(2 * n_out)
    flags = np.empty((n_rep * n_rows, n_out), np.uint8)
    marks = np.empty(n_rep * n_rows, np.int32)
    for t in prange(n_rep * n_rows):
        r = t // n_rows
        i = rows[t - r * n_rows]
        ra, rb, _, _ = row_key(rkeys[r, 0], rkeys[r, 1], i, rindex)
        crow, frow, acode, aval, arst = code[r, i], flags[t], fast_code[r, i], fast[r, i], resets[r, i]
        marked = np.int32(0)
        for o in range(n_out):
            a = aval[o] / level_step
            v = transfer_lr * a
            d = _round(v, _idx(word(ra, rb, tab[o])), one24, rounding)
            old = crow[o]
            new = _step_code(old, d, limit)
            crow[o] = new
            frow[o] = np.uint8(new != old)
            marked += np.int32(new != old)
            if reset:
                hit = acode[o] != zero or aval[o] != zero
                acode[o] = zero if hit else acode[o]
                aval[o] = zero if hit else aval[o]
                arst[o] += np.int64(hit)
        marks[t] = marked
    for t in prange(n_rep * n_rows):
        r = t // n_rows
        i = rows[t - r * n_rows]
        wa, wb, _, _ = row_key(wkeys[r, 0], wkeys[r, 1], i, windex)
        _program_marked(flags[t], marks[t], code[r, i], value[r, i], writes[r, i], wa, wb, tab, means, ideal, sigma, noisy, fold,
                        level_step)
