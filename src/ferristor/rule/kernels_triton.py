"""The masked update as one fused Triton kernel: the path a CUDA GPU runs (dense sampler).

One launch updates every weight of every replica: each program takes a block of crossbar rows ×
columns of one replica, computes the rows' Philox keys and the columns' scrambles, draws each
weight's word, tests the mask, rounds, saturates and counts — the arithmetic of ``rule.update``
(the torch path, the reference) and ``rule.kernels_cpu`` (numba) in the same order on the same
words, so all three agree bit for bit (tests/rule/test_kernels_triton.py; the CPU tests run it in
Triton's interpreter). The torch path needs ~60 tensor operations on (R, I, O) int64 temporaries
for the same update.

No floating-point contraction (``enable_fp_fusion=False``): x·s + u fused into one FMA would round
once instead of twice and change which way a weight rounds.

The step (the stream's counter) is read from a device tensor plus a constant offset when the
caller gives one, so a captured CUDA graph of many steps replays with the right counters
(``nn.train_gpu``).
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from ..backend import TRITON_LAUNCH
from . import random_triton as RT
from .kernels_cpu import ROUNDING_CODE, update_constants

BLOCK_ROWS, BLOCK_COLS = 16, 64  # one program: 16 rows × 64 columns of one replica


@triton.jit(do_not_specialize=["step_off"])
def _update(state_ptr, pending_ptr, x_ptr, d_ptr, g_ptr, keys_ptr, step_ptr, step_off,
            n_in, n_out, s_r, s_i, s_o, g_r, g_i, g_o, x_r, d_r,
            coef, p24, c, max_h,
            FP: tl.constexpr, RANK1: tl.constexpr, ROUNDING: tl.constexpr, COUNT_ZERO: tl.constexpr,
            STEP_PTR: tl.constexpr, BI: tl.constexpr, BO: tl.constexpr):
    pid = tl.program_id(0)
    n_ib = tl.cdiv(n_in, BI)
    r = pid // n_ib
    rows = (pid - r * n_ib) * BI + tl.arange(0, BI)
    cols = tl.program_id(1) * BO + tl.arange(0, BO)
    if STEP_PTR:
        step = tl.load(step_ptr).to(tl.int64) + step_off
    else:
        step = step_off.to(tl.int64)
    a, b = RT.row_key(keys_ptr, r, rows, step, BI)
    z = RT.words(a, b, cols)
    m = (z >> 8).to(tl.int32)
    msk = m < p24
    inside = (rows[:, None] < n_in) & (cols[None, :] < n_out)
    at = r.to(tl.int64) * s_r + rows[:, None].to(tl.int64) * s_i + cols[None, :].to(tl.int64) * s_o
    w = tl.load(state_ptr + at, mask=inside, other=0.0)
    if RANK1:
        xi = tl.load(x_ptr + r * x_r + rows, mask=rows < n_in, other=0.0)
        do = tl.load(d_ptr + r * d_r + cols, mask=cols < n_out, other=0.0)
        if FP:
            g = xi[:, None] * do[None, :]
        else:
            g = xi[:, None] * (coef * do)[None, :]  # v = x·(−lr/lsb·δ), the reference's order
    else:
        ga = r.to(tl.int64) * g_r + rows[:, None].to(tl.int64) * g_i + cols[None, :].to(tl.int64) * g_o
        gd = tl.load(g_ptr + ga, mask=inside, other=0.0)
        if FP:
            g = gd
        else:
            g = coef * gd
    if FP:
        new = w - tl.where(msk, coef * g, 0.0)
        event = msk
    else:
        if ROUNDING == 0:
            d = tl.floor(g + m.to(tl.float32) * c)
        elif ROUNDING == 1:
            d = tl.floor(g + 0.5)
        else:
            d = tl.where(g < 0, -tl.floor(-g), tl.floor(g))  # trunc
        d = tl.where(msk, d, 0.0)
        new = tl.minimum(tl.maximum(w + d, -max_h), max_h)
        if COUNT_ZERO:
            event = msk
        else:
            event = msk & (d != 0.0)
    tl.store(state_ptr + at, new, mask=inside)
    pend = tl.load(pending_ptr + at, mask=inside, other=0)
    tl.store(pending_ptr + at, pend + event.to(tl.uint8), mask=inside)


def update_(state: torch.Tensor, pending: torch.Tensor, keys: torch.Tensor, step: int, *, fp: bool, lr: float,
            p: float, lsb: float | None = None, rounding: str = "stochastic", max_hidden: int = 0,
            count_zero: bool = True, grad: torch.Tensor | None = None, delta: torch.Tensor | None = None,
            x: torch.Tensor | None = None, step_tensor: torch.Tensor | None = None) -> None:
    """One masked update (dense sampler) in place: hybrid hidden integers, or fp weights (``fp``).
    ``state``/``pending`` (R, I, O) crossbar views with the same strides (any), ``keys`` int64 (R, 2)
    on the same device, ``grad`` (R, I, O) or the rank-1 factors ``delta`` (R, O) and ``x`` (R, I).
    With ``step_tensor`` (a one-element int64 device tensor) the step is its value + ``step``."""
    n_rep, n_in, n_out = state.shape
    if pending.stride() != state.stride():
        raise ValueError("pending and state must share their layout")
    consts = update_constants(fp=fp, sampler="dense", lr=lr, p=p, lsb=lsb, rounding=rounding, max_hidden=max_hidden,
                              count_zero=count_zero)
    if fp:
        coef, p24, c, code, max_h = float(consts[0]), int(consts[1]), 0.0, 0, 0.0
    else:
        coef, p24, c, code, max_h = float(consts[0]), int(consts[1]), float(consts[2]), ROUNDING_CODE[rounding], \
            float(consts[4])
    rank1 = grad is None
    if rank1:  # each row of x and δ contiguous; rows may be strided (one step's slice of a block)
        x = x if x.stride(-1) == 1 else x.contiguous()
        delta = delta if delta.stride(-1) == 1 else delta.contiguous()
        g, gs = state, (0, 0, 0)
        xr, dr = x.stride(0), delta.stride(0)
    else:
        x = delta = state
        g, gs, xr, dr = grad, grad.stride(), 0, 0
    grid = (n_rep * -(-n_in // BLOCK_ROWS), -(-n_out // BLOCK_COLS))
    with TRITON_LAUNCH:
        _update[grid](state, pending, x, delta, g, keys, step_tensor if step_tensor is not None else keys, int(step),
                        n_in, n_out, *state.stride(), *gs, xr, dr, coef, p24, c, max_h,
                        FP=fp, RANK1=rank1, ROUNDING=code, COUNT_ZERO=bool(count_zero),
                        STEP_PTR=step_tensor is not None, BI=BLOCK_ROWS, BO=BLOCK_COLS, enable_fp_fusion=False)
