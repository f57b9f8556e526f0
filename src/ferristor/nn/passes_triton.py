"""A batch-1 training pass of an MLP in a few Triton launches (the GPU chunks' ``passes='fused'``).

Per layer, one launch for the forward (crossbar product, LayerNorm without affine, ReLU) and one
for the backward (LayerNorm's backward, then the input gradient through the transposed crossbar
and ReLU's mask), plus one for the loss and its gradient: 2L + 1 launches, against ~22 torch
kernels, with one program per replica holding a whole activation row; the layer sizes are compile-time
constants (one build per layer shape). At batch 1 a GPU step is a
chain of small dependent kernels, each costing a few µs however little it does, so the count is
what matters. Equal to the torch-operation pass to float32 rounding (the sums run in another
order; tests/nn/test_passes_triton.py), as that is to the CPU's.

Layers up to ``MAX_WIDTH`` outputs (a row lives in registers); wider networks keep the torch pass.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from ..backend import TRITON_LAUNCH

MAX_WIDTH = 1024
TILE = 16384  # weights per iteration of a product (rows × the padded row width)
PER_THREAD = 32  # of them per thread: with the next tile in flight, well inside 255 registers, no spills
# (tests/test_gpu_builds.py builds every launch for sm_80 and sm_90 and reads the registers back)


def _block_rows(width: int) -> int:
    return min(64, max(4, TILE // width))


def _warps(width: int) -> int:
    return min(16, max(4, _block_rows(width) * width // (32 * PER_THREAD)))


@triton.jit
def _forward(a_ptr, a_rs, idx_ptr, x_out_ptr, w_ptr, w_r, w_i, w_o, n_ptr, rstd_ptr, act_ptr, eps,
             n_in: tl.constexpr, n_out: tl.constexpr, GATHER: tl.constexpr, NORM: tl.constexpr, RELU: tl.constexpr,
             BK: tl.constexpr, BO: tl.constexpr):
    r = tl.program_id(0)
    if GATHER:  # the first layer reads its sample from the data set and keeps a copy (the update's x)
        a_base = a_ptr + tl.load(idx_ptr + r).to(tl.int64) * a_rs
    else:
        a_base = a_ptr + r.to(tl.int64) * a_rs
    cols = tl.arange(0, BO)
    cm = cols < n_out
    w_base = w_ptr + r.to(tl.int64) * w_r
    # Latency, not arithmetic, bounds a batch-1 product: each tile's loads are issued one iteration
    # ahead (the last prefetch is wholly masked: no traffic), and the products accumulate per
    # element, reduced across the tile's rows once at the end instead of every iteration.
    ks = tl.arange(0, BK)
    km = ks < n_in
    a = tl.load(a_base + ks, mask=km, other=0.0)
    w = tl.load(w_base + ks[:, None].to(tl.int64) * w_i + cols[None, :] * w_o, mask=km[:, None] & cm[None, :],
                other=0.0)
    acc2 = tl.zeros((BK, BO), tl.float32)
    for k0 in range(BK, n_in + BK, BK):
        kn = k0 + tl.arange(0, BK)
        kmn = kn < n_in
        a_next = tl.load(a_base + kn, mask=kmn, other=0.0)
        w_next = tl.load(w_base + kn[:, None].to(tl.int64) * w_i + cols[None, :] * w_o,
                         mask=kmn[:, None] & cm[None, :], other=0.0)
        if GATHER:
            tl.store(x_out_ptr + r.to(tl.int64) * n_in + ks, a, mask=km)
        acc2 += a[:, None] * w
        a, w, ks, km = a_next, w_next, kn, kmn
    acc = tl.sum(acc2, axis=0)
    if NORM:
        mean = tl.sum(acc, axis=0) / n_out
        c = tl.where(cm, acc - mean, 0.0)
        rstd = 1.0 / tl.sqrt_rn(tl.sum(c * c, axis=0) / n_out + eps)
        out = c * rstd
        tl.store(rstd_ptr + r, rstd)
    else:
        out = acc
    tl.store(n_ptr + r * n_out + cols, out, mask=cm)
    if RELU:
        tl.store(act_ptr + r * n_out + cols, tl.maximum(out, 0.0), mask=cm)


@triton.jit
def _loss_grad(n_ptr, y_ptr, idx_ptr, g_ptr, loss_ptr, n_cls: tl.constexpr, SIGMOID: tl.constexpr, BC: tl.constexpr):
    r = tl.program_id(0)
    label = tl.load(y_ptr + tl.load(idx_ptr + r).to(tl.int64))
    cols = tl.arange(0, BC)
    cm = cols < n_cls
    if SIGMOID:
        z = tl.load(n_ptr + r * n_cls + cols, mask=cm, other=0.0)
        t = label.to(tl.float32)
        g = 1.0 / (1.0 + tl.exp(-z)) - t
        loss = tl.sum(tl.where(cm, tl.maximum(z, 0.0) - z * t + tl.log(1.0 + tl.exp(-tl.abs(z))), 0.0), axis=0)
    else:
        z = tl.load(n_ptr + r * n_cls + cols, mask=cm, other=-float("inf"))
        zmax = tl.max(z, axis=0)
        e = tl.where(cm, tl.exp(z - zmax), 0.0)
        s = tl.sum(e, axis=0)
        hit = cols == label.to(tl.int32)
        g = e / s - tl.where(hit, 1.0, 0.0)
        loss = tl.log(s) + zmax - tl.sum(tl.where(hit, z, 0.0), axis=0)
    tl.store(g_ptr + r * n_cls + cols, g, mask=cm)
    tl.store(loss_ptr + r, loss)


@triton.jit
def _backward(g_ptr, n_ptr, rstd_ptr, delta_ptr, w_ptr, w_r, w_i, w_o, act_ptr, g_prev_ptr,
              n_in: tl.constexpr, n_out: tl.constexpr, NORM: tl.constexpr, PREV: tl.constexpr,
              BI: tl.constexpr, BO: tl.constexpr):
    r = tl.program_id(0)
    cols = tl.arange(0, BO)
    cm = cols < n_out
    g = tl.load(g_ptr + r * n_out + cols, mask=cm, other=0.0)
    if NORM:  # LayerNorm without affine: δ = rstd·(g − mean g − n·mean(g·n))
        n = tl.load(n_ptr + r * n_out + cols, mask=cm, other=0.0)
        rstd = tl.load(rstd_ptr + r)
        d = rstd * (g - tl.sum(g, axis=0) / n_out - n * (tl.sum(g * n, axis=0) / n_out))
        d = tl.where(cm, d, 0.0)
    else:
        d = g
    tl.store(delta_ptr + r * n_out + cols, d, mask=cm)
    if PREV:  # ∂L/∂(the previous layer's normalised output): W·δ through ReLU's mask
        w_base = w_ptr + r.to(tl.int64) * w_r
        rows = tl.arange(0, BI)
        im = rows < n_in
        w = tl.load(w_base + rows[:, None].to(tl.int64) * w_i + cols[None, :] * w_o, mask=im[:, None] & cm[None, :],
                    other=0.0)
        for i0 in range(BI, n_in + BI, BI):  # the next tile's loads ahead of this one's sums, as above
            rn = i0 + tl.arange(0, BI)
            imn = rn < n_in
            w_next = tl.load(w_base + rn[:, None].to(tl.int64) * w_i + cols[None, :] * w_o,
                             mask=imn[:, None] & cm[None, :], other=0.0)
            gp = tl.sum(w * d[None, :], axis=1)
            a = tl.load(act_ptr + r * n_in + rows, mask=im, other=0.0)
            tl.store(g_prev_ptr + r * n_in + rows, tl.where(a > 0.0, gp, 0.0), mask=im)
            w, rows, im = w_next, rn, imn


def fits(sizes) -> bool:
    """Whether every layer's outputs fit one program's row (``MAX_WIDTH``)."""
    return max(sizes[1:]) <= MAX_WIDTH


class FusedPass:
    """The buffers of one replica-batched pass and the launches that fill them: ``acts[l]`` (the
    input of layer l, the update's x) and ``deltas[l]`` (its δ) after :meth:`run`."""

    def __init__(self, weights: list[torch.Tensor], *, norm: bool, norm_last: bool, sigmoid: bool, eps: float):
        self.weights = weights
        n_rep, dev = weights[0].shape[0], weights[0].device
        sizes = [weights[0].shape[1]] + [w.shape[2] for w in weights]
        self.sizes, self.n_rep = sizes, n_rep
        self.norms = [norm and (norm_last or li < len(weights) - 1) for li in range(len(weights))]
        self.sigmoid, self.eps = sigmoid, float(eps)
        new = lambda n: torch.zeros((n_rep, n), dtype=torch.float32, device=dev)  # noqa: E731
        self.acts = [new(s) for s in sizes[:-1]]
        self.normed = [new(s) for s in sizes[1:]]
        self.grads = [new(s) for s in sizes[1:]]  # ∂L/∂(normalised output) of each layer
        self.deltas = [new(s) for s in sizes[1:]]
        self.rstd = torch.ones((len(weights), n_rep), dtype=torch.float32, device=dev)
        self.losses = torch.zeros(n_rep, dtype=torch.float32, device=dev)

    def run(self, x_data: torch.Tensor, y_data: torch.Tensor, ids: torch.Tensor) -> None:
        """One pass for sample ids[r] of every replica r: forward, loss, backward."""
        with TRITON_LAUNCH:
            self._launch(x_data, y_data, ids)

    def _launch(self, x_data: torch.Tensor, y_data: torch.Tensor, ids: torch.Tensor) -> None:
        n_layers, grid = len(self.weights), (self.n_rep,)
        for li, w in enumerate(self.weights):
            first, last = li == 0, li == n_layers - 1
            src = x_data if first else self.acts[li]
            _forward[grid](src, src.stride(0), ids, self.acts[0], w, *w.stride(),
                           self.normed[li], self.rstd[li], self.acts[li + 1] if not last else self.normed[li], self.eps,
                           n_in=self.sizes[li], n_out=self.sizes[li + 1], GATHER=first, NORM=self.norms[li],
                           RELU=not last,
                           BK=_block_rows(self._width(li)), BO=self._width(li), num_warps=_warps(self._width(li)))
        n_cls = self.sizes[-1]
        _loss_grad[grid](self.normed[-1], y_data, ids, self.grads[-1], self.losses, n_cls=n_cls, SIGMOID=self.sigmoid,
                         BC=max(16, triton.next_power_of_2(n_cls)))
        for li in range(n_layers - 1, -1, -1):
            w = self.weights[li]
            prev = li > 0
            _backward[grid](self.grads[li], self.normed[li], self.rstd[li], self.deltas[li], w, *w.stride(),
                            self.acts[li], self.grads[li - 1] if prev else self.grads[li],
                            n_in=self.sizes[li], n_out=self.sizes[li + 1], NORM=self.norms[li], PREV=prev,
                            BI=_block_rows(self._width(li)), BO=self._width(li), num_warps=_warps(self._width(li)))

    def _width(self, li: int) -> int:
        """Layer li's outputs padded to a power of two (≥ 16): one program's row."""
        return max(16, triton.next_power_of_2(self.sizes[li + 1]))
