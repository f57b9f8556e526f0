"""Fused Triton kernel of the table transfer (the GPU's): hidden integers → programmed weights.

One launch does for every replica what :meth:`TableTransfer.program` does in ~8 tensor passes
(~200 with noise: the draws alone are ~190): split the sign, shift out the MSBs, take the level
mean, draw and add the scaled noise (row i, column j: words 2j and 2j + 1 of the transfer's row
key), keep the sign, scale to real units — the float32 order of ``transfer_cpu`` and of the torch
path, bit for bit (tests/circuit/test_transfer_triton.py). The transfer's number (the noise
counter) may be read from a device tensor plus an offset, so a CUDA graph can hold transfers
whose numbers change from replay to replay (``nn.train_gpu``).
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from ..backend import TRITON_LAUNCH
from ..rule import random_triton as RT

BLOCK_ROWS, BLOCK_COLS = 16, 64


@triton.jit
def _tile(n_in, n_out, BI: tl.constexpr, BO: tl.constexpr):
    """This program's replica, rows, columns and in-bounds mask of the (R, I, O) crossbar."""
    pid = tl.program_id(0)
    n_ib = tl.cdiv(n_in, BI)
    r = pid // n_ib
    rows = (pid - r * n_ib) * BI + tl.arange(0, BI)
    cols = tl.program_id(1) * BO + tl.arange(0, BO)
    return r, rows, cols, (rows[:, None] < n_in) & (cols[None, :] < n_out)


@triton.jit
def _at(r, rows, cols, s_r, s_i, s_o):
    """Element offsets of the tile in a crossbar of strides (s_r, s_i, s_o), in int64."""
    return r.to(tl.int64) * s_r + rows[:, None].to(tl.int64) * s_i + cols[None, :].to(tl.int64) * s_o


@triton.jit
def _normals(keys_ptr, index_ptr, index_off, r, rows, cols, INDEX_PTR: tl.constexpr, BI: tl.constexpr):
    """Each weight's normal of the transfer stream (row i, column j: words 2j and 2j + 1 of the row
    key) at counter ``index_off`` (+ the device value at ``index_ptr``)."""
    if INDEX_PTR:
        index = tl.load(index_ptr).to(tl.int64) + index_off
    else:
        index = index_off.to(tl.int64)
    a, b = RT.row_key(keys_ptr, r, rows, index, BI)
    return RT.normal(RT.words(a, b, 2 * cols), RT.words(a, b, 2 * cols + 1))


@triton.jit(do_not_specialize=["index_off"])
def _table_transfer(hidden_ptr, out_ptr, means_ptr, keys_ptr, index_ptr, index_off, n_in, n_out,
                    h_r, h_i, h_o, o_r, o_i, o_o, inv_div, sigma, level_step,
                    IDEAL: tl.constexpr, NOISY: tl.constexpr, FOLD: tl.constexpr, INDEX_PTR: tl.constexpr,
                    BI: tl.constexpr, BO: tl.constexpr):
    r, rows, cols, inside = _tile(n_in, n_out, BI, BO)
    h = tl.load(hidden_ptr + _at(r, rows, cols, h_r, h_i, h_o), mask=inside, other=0.0)
    neg = h < 0
    level = tl.floor(tl.where(neg, -h, h) * inv_div)  # exact: |h| < 2^24, a power-of-two scale
    if IDEAL:
        value = level
    else:
        value = tl.load(means_ptr + level.to(tl.int32), mask=inside, other=0.0)
    if NOISY:
        value = value + _normals(keys_ptr, index_ptr, index_off, r, rows, cols, INDEX_PTR, BI) * sigma
        if FOLD:  # the sign never flips
            value = tl.where(value < 0.0, -value, value)
        else:
            value = tl.where(value < 0.0, 0.0, value)
    out = tl.where(neg, -value, value) * level_step
    tl.store(out_ptr + _at(r, rows, cols, o_r, o_i, o_o), out, mask=inside)


def table_transfer_(hidden: torch.Tensor, out: torch.Tensor, *, shift: int, means: torch.Tensor, ideal: bool,
                    sigma: float, fold: bool, level_step: float, keys: torch.Tensor | None = None, index: int = 0,
                    index_tensor: torch.Tensor | None = None) -> None:
    """Write the programmed weights of ``hidden`` (R, I, O) into ``out`` (R, I, O), crossbar views of
    any strides on one CUDA device (or CPU tensors under Triton's interpreter). ``means``: the level
    means on the device; ``keys`` int64 (R, 2) of the transfer stream when ``sigma`` > 0; the noise
    counter is ``index`` (+ the value of ``index_tensor``, a one-element int64 device tensor)."""
    n_rep, n_in, n_out = hidden.shape
    noisy = sigma > 0
    if noisy and keys is None:
        raise ValueError("a noisy transfer needs the transfer stream's keys")
    grid = (n_rep * -(-n_in // BLOCK_ROWS), -(-n_out // BLOCK_COLS))
    counter = index_tensor if index_tensor is not None else means  # an unused pointer stands in
    with TRITON_LAUNCH:
        _table_transfer[grid](hidden, out, means, keys if noisy else means, counter,
                              int(index), n_in, n_out, *hidden.stride(), *out.stride(), float(2.0 ** -shift), float(sigma),
                              float(level_step), IDEAL=bool(ideal), NOISY=noisy, FOLD=bool(fold),
                              INDEX_PTR=index_tensor is not None, BI=BLOCK_ROWS, BO=BLOCK_COLS, enable_fp_fusion=False)


@triton.jit(do_not_specialize=["index_off"])
def _quantile_transfer(hidden_ptr, out_ptr, table_ptr, keys_ptr, index_ptr, index_off, n_in, n_out,
                       h_r, h_i, h_o, o_r, o_i, o_o, inv_div, z_lo, z_scale, level_step,
                       STEPS: tl.constexpr, TOP_LEVEL: tl.constexpr, INDEX_PTR: tl.constexpr,
                       BI: tl.constexpr, BO: tl.constexpr):
    """``transfer_cpu._quantile_transfer`` on the GPU: the same words, normals and float32 order."""
    r, rows, cols, inside = _tile(n_in, n_out, BI, BO)
    h = tl.load(hidden_ptr + _at(r, rows, cols, h_r, h_i, h_o), mask=inside, other=0.0)
    neg = h < 0
    level = tl.minimum(tl.floor(tl.where(neg, -h, h) * inv_div), TOP_LEVEL).to(tl.int32)
    z = _normals(keys_ptr, index_ptr, index_off, r, rows, cols, INDEX_PTR, BI)
    pos = tl.minimum(tl.maximum((z + z_lo) * z_scale, 0.0), STEPS * 1.0)
    cell = tl.minimum(tl.floor(pos), STEPS - 1.0)
    frac = pos - cell
    at = table_ptr + level * (STEPS + 1) + cell.to(tl.int32)
    lo = tl.load(at, mask=inside, other=0.0)
    hi = tl.load(at + 1, mask=inside, other=0.0)
    value = lo + frac * (hi - lo)
    out = tl.where(neg, -value, value) * level_step
    tl.store(out_ptr + _at(r, rows, cols, o_r, o_i, o_o), out, mask=inside)


def quantile_transfer_(hidden: torch.Tensor, out: torch.Tensor, *, shift: int, table: torch.Tensor, z_range: float,
                       level_step: float, keys: torch.Tensor, index: int = 0,
                       index_tensor: torch.Tensor | None = None) -> None:
    """:func:`table_transfer_` for the circuit transfer drawn from its quantile ``table`` (levels,
    steps + 1) float32 on the device, contiguous (``QuantileCircuitTransfer``)."""
    n_rep, n_in, n_out = hidden.shape
    steps = table.shape[1] - 1
    grid = (n_rep * -(-n_in // BLOCK_ROWS), -(-n_out // BLOCK_COLS))
    counter = index_tensor if index_tensor is not None else table  # an unused pointer stands in
    with TRITON_LAUNCH:
        _quantile_transfer[grid](hidden, out, table.contiguous(), keys, counter, int(index), n_in, n_out,
                                 *hidden.stride(), *out.stride(), float(2.0 ** -shift), float(z_range),
                                 float(steps / (2 * z_range)), float(level_step), STEPS=steps,
                                 TOP_LEVEL=table.shape[0] - 1, INDEX_PTR=index_tensor is not None,
                                 BI=BLOCK_ROWS, BO=BLOCK_COLS, enable_fp_fusion=False)
