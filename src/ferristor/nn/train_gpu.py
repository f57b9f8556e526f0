"""Chunks of batch-1 training steps of a ``HybridMLP`` on a CUDA GPU, replayed as CUDA graphs.

Each step is the plain loop's step for every replica at once — gather the samples, the forward
pass (crossbar products, LayerNorm, ReLU), the loss gradient, the backward pass, and each layer's
masked update by the fused Triton kernel (``rule.kernels_triton``) from its rank-1 factors — about
25 kernels and no autograd engine. At batch 1 the GPU spends a few µs per kernel, but Python and
the launches cost more: so the n steps of a chunk are captured once as a CUDA graph (after one
eager run of that length, which compiles the kernels) and replayed with each chunk's samples and
update counters written into device buffers first. The transfers are part of the graph, after the
step where each falls due (``HybridModule.transfer_capturable``: the fused Triton transfer, its noise
numbered by a counter on the device, or tensor operations that draw nothing), so a chunk runs to
the counters' flush (250 steps) whatever k is; other transfers (the circuit model, a baseline
rule) and the flushes happen between chunks (``experiments.fast_step``), as ``HybridSGD`` does them.

The weights the passes read change only at transfers, and each step's input is a data sample: so
with torch's operations (``passes='torch'``, the default) the steps between two transfers run their
passes at once, as T samples through one network (batched products over (R, T, ·)), and then
their updates one step after another, each reading its step's factors from the block
(``GraphedSteps._segments``): ~25 kernels per segment and one update launch per layer and step,
rather than ~25 kernels per step. fp layers, whose weights change every step, and the
2L + 1 Triton launches of ``'fused'`` (``nn.passes_triton``; ``FERRISTOR_GPU_PASSES``) run step
by step. The random draws are the CPU's (the
same streams and step counters; the update is equal bit for bit given the same factors); the
passes' float sums are ordered differently from the CPU kernels', so a GPU run agrees with a CPU
run statistically, not bit for bit (tests/nn/test_train_gpu.py measures both).
"""
from __future__ import annotations

import threading
import warnings
from dataclasses import dataclass
from typing import Callable

import torch

from ..errors import FerristorWarning
from ..rule import kernels_triton as KT
from . import functional as F

MAX_GRAPH_STEPS = 250  # the longest chunk captured (= the event counters' flush period)
MAX_GRAPHS = 64  # captured chunk shapes kept (length × where transfers fall); the oldest goes first
# The steps between two transfers run their passes at once (``GraphedSteps._segments``): their
# activations, pre-norm values, outputs and gradients (4 float32 per unit, sample and replica) in at
# most this many bytes; False: step by step (for comparison).
BLOCK_BYTES = 256 * 2 ** 20
BLOCK_PASSES = True
# Trials may train side by side in threads, each on its own stream (``sweeps.executors.ThreadExecutor``):
# one capture at a time, and each capture refuses only its own thread's unsafe calls ("thread_local"),
# so another trial's synchronisation or allocation cannot void it.
_CAPTURE = threading.Lock()
# Captures run on one stream per device that nothing else uses. ``torch.cuda.Stream()`` hands out
# one of 32 pooled streams per priority in turn, and the trials' streams come from the default
# priority's pool: a capture on a pooled stream of that priority could share a running trial's
# stream, and would then record that trial's kernels (capture belongs to the stream, not the thread).
_CAPTURE_PRIORITY = -1  # the high-priority pool, which the trials' streams never draw from
_capture_streams: dict[int, torch.cuda.Stream] = {}
# Once a capture has failed, PyTorch's allocator cannot begin another in this process (its list of
# captures under way is left non-empty), so every later chunk runs eagerly: slower, the same result.
_graphs_broken: list[str] = []


def _capture_stream(device: torch.device) -> torch.cuda.Stream:
    """The device's capture stream (called under ``_CAPTURE``)."""
    index = device.index if device.index is not None else torch.cuda.current_device()
    if index not in _capture_streams:
        _capture_streams[index] = torch.cuda.Stream(index, priority=_CAPTURE_PRIORITY)
    return _capture_streams[index]


def _give_up_graphs(error: BaseException) -> None:
    if not _graphs_broken:
        warnings.warn(f"a CUDA graph capture failed ({type(error).__name__}: {error}); the rest of this process "
                      "trains without graphs (same results, slower)", FerristorWarning, stacklevel=3)
    _graphs_broken.append(f"{type(error).__name__}: {error}")


@dataclass
class LayerPlan:
    """One layer's tensors and rule for the chunk: crossbar views (R, I, O) of the analogue weights,
    the updated state (hidden integers, or the weights themselves in fp mode) and the event counters."""
    weight: torch.Tensor
    state: torch.Tensor
    pending: torch.Tensor
    keys: torch.Tensor  # int64 (R, 2) on the device
    fp: bool
    rule: dict  # lr, p, lsb, rounding, max_hidden, count_zero
    # the transfer's device writes, when a graph may capture them: (counter, offset) → transfer
    # number counter's value + offset (the counter: the layer's transfers before the chunk, on the device)
    transfer: Callable[[torch.Tensor, int], None] | None = None


class GraphedSteps:
    """The step computation for fixed tensors; ``run(idx, steps)`` trains n = idx.shape[1] steps."""

    def __init__(self, layers: list[LayerPlan], x_data: torch.Tensor, y_data: torch.Tensor, *, norm: str,
                 norm_last: bool, sigmoid: bool, graphs: bool = True, passes: str = "torch"):
        # the fused passes index rows by stride(0) and labels as a flat array
        self.layers, self.x_data, self.y_data = layers, x_data.contiguous(), y_data.contiguous()
        self.norm, self.norm_last, self.sigmoid = norm, norm_last, sigmoid
        self.fused = None
        sizes = [layers[0].weight.shape[1]] + [layer.weight.shape[2] for layer in layers]
        if passes == "fused":
            from . import passes_triton
            if passes_triton.fits(sizes):  # else the torch passes: a row must fit one program
                self.fused = passes_triton.FusedPass([layer.weight for layer in layers], norm=norm == "layer",
                                                     norm_last=norm_last, sigmoid=sigmoid, eps=F.EPS)
        dev = x_data.device
        self.n_rep = layers[0].weight.shape[0]
        self.graphs_on = graphs and dev.type == "cuda"
        self.idx = torch.zeros((MAX_GRAPH_STEPS, self.n_rep), dtype=torch.int64, device=dev)
        # per layer the stream's step at the chunk's start; 16-byte rows keep every pointer aligned
        self.steps = torch.zeros((len(layers), 2), dtype=torch.int64, device=dev)
        self.transfers = torch.zeros((len(layers), 2), dtype=torch.int64, device=dev)  # each layer's, before the chunk
        self.loss = torch.zeros((), dtype=torch.float32, device=dev)
        self.minus_one = torch.full((self.n_rep, MAX_GRAPH_STEPS, 1), -1.0, device=dev)
        # steps whose passes run at once (``_segments``): a chunk's, bounded by their activations' memory
        at_once = BLOCK_PASSES and self.fused is None and not any(layer.fp for layer in layers)
        self.block_steps = max(1, min(MAX_GRAPH_STEPS, BLOCK_BYTES // (4 * 4 * self.n_rep * sum(sizes)))) \
            if at_once else 1
        self._graphs: dict[tuple, torch.cuda.CUDAGraph] = {}
        self._eager_done: set[tuple] = set()
        # One memory pool for all of this object's graphs rather than one each (with R = 1000 and
        # many chunk shapes, 64 private pools would hold GBs): safe because they replay one at a time,
        # on one stream, and no tensor made in a capture is read by another graph.
        self._pool = torch.cuda.graph_pool_handle() if self.graphs_on else None

    def run(self, idx: torch.Tensor, steps: list[int], due: tuple = (), transfers: list[int] | None = None
            ) -> torch.Tensor:
        """Train n ≤ MAX_GRAPH_STEPS steps: replica r takes sample idx[r, t] at step t (idx int64
        (R, n) on the host); ``steps``: each layer's update counter before the chunk; ``due``: the
        (step, layer) pairs after which a layer's in-graph transfer runs; ``transfers``: each layer's
        transfers so far (numbering the noise of those). Returns the loss of the last step (summed
        over replicas, as ``functional.cross_entropy``), a device scalar."""
        n = idx.shape[1]
        if not 1 <= n <= MAX_GRAPH_STEPS:
            raise ValueError(f"a chunk of {n} steps: 1 to {MAX_GRAPH_STEPS}")
        self.idx[:n].copy_(idx.t())
        self.steps[:, 0].copy_(torch.tensor(steps, dtype=torch.int64))
        if due:
            self.transfers[:, 0].copy_(torch.tensor(transfers, dtype=torch.int64))
        self._run((n, tuple(due)))
        return self.loss

    def _run(self, key: tuple) -> None:
        graph = self._graphs.get(key)
        if graph is not None:
            graph.replay()
        elif self.graphs_on and not _graphs_broken and key in self._eager_done:
            graph = torch.cuda.CUDAGraph()
            try:
                with _CAPTURE:
                    side = _capture_stream(self.x_data.device)
                    side.wait_stream(torch.cuda.current_stream())
                    with torch.cuda.stream(side), torch.cuda.graph(graph, pool=self._pool, stream=side,
                                                                   capture_error_mode="thread_local"):
                        self._body(*key)
                    torch.cuda.current_stream().wait_stream(side)
            except RuntimeError as e:  # nothing captured has run: the chunk runs eagerly instead
                _give_up_graphs(e)
                self._body(*key)
                return
            if len(self._graphs) >= MAX_GRAPHS:  # e.g. a k that does not divide the flush period
                self._graphs.pop(next(iter(self._graphs)))
            self._graphs[key] = graph
            graph.replay()
        else:  # the first chunk of this shape runs eagerly: it compiles what the capture will record
            self._body(*key)
            self._eager_done.add(key)

    def _body(self, n: int, due: tuple) -> None:
        after: dict[int, list[int]] = {}
        for s, li in due:
            after.setdefault(s, []).append(li)
        done = [0] * len(self.layers)
        for s0, s1 in self._segments(n, after):
            acts, deltas = self._passes(s0, s1, last=s1 == n)
            for s in range(s0, s1):
                self._update(s, [a[:, s - s0] for a in acts], [d[:, s - s0] for d in deltas])
                for li in after.get(s, ()):
                    done[li] += 1
                    self.layers[li].transfer(self.transfers[li], done[li])

    def _segments(self, n: int, after: dict) -> list[tuple[int, int]]:
        """The chunk's steps cut where their passes can run at once: the weights the passes read
        change only at transfers, and each step's input is a data sample, so the steps up to the
        next transfer are samples through one network (``block_steps`` at most). One step each
        where a layer is fp (its weights change every step) or the passes are the fused kernels."""
        if self.block_steps == 1:
            return [(s, s + 1) for s in range(n)]
        cuts, s0 = [], 0
        for s in range(n):
            if s + 1 == n or s in after or s + 1 - s0 == self.block_steps:
                cuts.append((s0, s + 1))
                s0 = s + 1
        return cuts

    def _passes(self, s0: int, s1: int, last: bool) -> tuple[list, list]:
        """Forward, loss gradient and backward of steps s0…s1 − 1 at once: per layer its inputs
        (R, T, I) and its gradients δ (R, T, O), T = s1 − s0. The fused kernels take one step."""
        if self.fused is not None:
            p = self.fused
            p.run(self.x_data, self.y_data, self.idx[s0])
            if last:
                self.loss.copy_(p.losses.sum())
            return [a[:, None] for a in p.acts], [d[:, None] for d in p.deltas]
        ids = self.idx[s0:s1].t()
        a = self.x_data[ids]
        y = self.y_data[ids]
        n_layers = len(self.layers)
        acts, normed, stats = [], [], []
        for li, layer in enumerate(self.layers):
            acts.append(a)
            z = torch.bmm(a, layer.weight)
            if self.norm == "layer" and (self.norm_last or li < n_layers - 1):
                out, mean, rstd = torch.native_layer_norm(z, [z.shape[-1]], None, None, F.EPS)
                stats.append((z, mean, rstd))
            else:
                out = z
                stats.append(None)
            normed.append(out)
            if li < n_layers - 1:
                a = torch.relu(out)
        logits = normed[-1]
        if self.sigmoid:
            g = torch.sigmoid(logits) - y.to(logits.dtype)[..., None]
        else:
            g = torch.softmax(logits, -1).scatter_add_(-1, y[..., None], self.minus_one[:, :s1 - s0])
        if last:
            self.loss.copy_(self._loss(logits[:, -1], y[:, -1]))
        deltas = [None] * n_layers
        for li in range(n_layers - 1, -1, -1):
            if stats[li] is not None:
                z, mean, rstd = stats[li]
                g = torch.ops.aten.native_layer_norm_backward(g, z, [z.shape[-1]], mean, rstd, None, None,
                                                              [True, False, False])[0]
            deltas[li] = g
            if li > 0:
                g = torch.bmm(g, self.layers[li].weight.transpose(1, 2))
                g = torch.ops.aten.threshold_backward(g, acts[li], 0)
        return acts, deltas

    def _update(self, s: int, acts: list, deltas: list) -> None:
        for li, layer in enumerate(self.layers):
            KT.update_(layer.state, layer.pending, layer.keys, s, fp=layer.fp, delta=deltas[li], x=acts[li],
                       step_tensor=self.steps[li], **layer.rule)

    def _loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.sigmoid:
            return torch.nn.functional.binary_cross_entropy_with_logits(logits[:, 0], y.to(logits.dtype),
                                                                        reduction="sum")
        return torch.nn.functional.cross_entropy(logits, y, reduction="sum")
