"""Forward and backward passes of a batch-1 MLP over R replicas in one compiled call (numba).

The same maths as :mod:`ferristor.nn.functional` (LayerNorm or none, ReLU, softmax + cross-entropy
or sigmoid + binary cross-entropy), without a torch op per tensor: at batch 1 the passes cost less
than the dispatch of the ~50 torch ops they replace. Sums run in another order than torch's, so the
two agree to float32 rounding, not bit for bit; each is deterministic on its own, and replicas never
interact (the parallel loop runs over replicas).
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange
from numba.typed import List

NORM_CODE = {"none": 0, "layer": 1}
OUTPUT_CODE = {"softmax": 0, "sigmoid": 1}


@njit(inline="always")
def _mean(a):
    s = np.float32(0.0)
    for i in range(a.shape[0]):
        s += a[i]
    return s / np.float32(a.shape[0])


# reassoc lets the dot products vectorise (a fixed, deterministic summation order per build).
@njit(parallel=True, cache=True, boundscheck=False, error_model="numpy", fastmath={"reassoc", "contract"})
def _forward_backward(weights, acts, normed, deltas, invs, y, norm, output, eps):
    """y (R,) float32 targets; weights[l] (R, O, I); acts[l] (R, I) layer inputs (acts[0] = x, given); normed[l] (R, O) the
    normalised outputs; deltas[l] (R, O) receives δ_l = ∂L/∂(pre-activation); invs (R, L) 1/σ."""
    n_layers = len(weights)
    for r in prange(acts[0].shape[0]):
        for li in range(n_layers):
            w, h, z = weights[li][r], acts[li][r], normed[li][r]
            for o in range(w.shape[0]):
                s = np.float32(0.0)
                for i in range(w.shape[1]):
                    s += w[o, i] * h[i]
                z[o] = s
            if norm == 1:
                mu = _mean(z)
                for o in range(z.shape[0]):
                    z[o] -= mu
                var = np.float32(0.0)
                for o in range(z.shape[0]):
                    var += z[o] * z[o]
                inv = np.float32(1.0) / np.sqrt(var / np.float32(z.shape[0]) + eps)
                invs[r, li] = inv
                for o in range(z.shape[0]):
                    z[o] *= inv
            if li < n_layers - 1:
                nxt = acts[li + 1][r]
                for o in range(z.shape[0]):
                    nxt[o] = max(z[o], np.float32(0.0))
        last = n_layers - 1
        z, g = normed[last][r], deltas[last][r]
        if output == 0:  # softmax + cross-entropy: p − onehot
            m = z[0]
            for o in range(z.shape[0]):
                m = max(m, z[o])
            tot = np.float32(0.0)
            for o in range(z.shape[0]):
                g[o] = np.exp(z[o] - m)
                tot += g[o]
            for o in range(z.shape[0]):
                g[o] /= tot
            g[np.int64(y[r])] -= np.float32(1.0)
        else:  # sigmoid + binary cross-entropy: σ − y
            g[0] = np.float32(1.0) / (np.float32(1.0) + np.exp(-z[0])) - np.float32(y[r])
        for li in range(last, -1, -1):
            g, z = deltas[li][r], normed[li][r]
            if norm == 1:
                mg = _mean(g)
                mgz = np.float32(0.0)
                for o in range(g.shape[0]):
                    mgz += g[o] * z[o]
                mgz /= np.float32(g.shape[0])
                inv = invs[r, li]
                for o in range(g.shape[0]):
                    g[o] = inv * (g[o] - mg - z[o] * mgz)
            if li:
                w, prev, zp = weights[li][r], deltas[li - 1][r], normed[li - 1][r]
                for i in range(w.shape[1]):
                    prev[i] = np.float32(0.0)
                for o in range(w.shape[0]):
                    go = g[o]
                    for i in range(w.shape[1]):
                        prev[i] += go * w[o, i]
                for i in range(w.shape[1]):  # ReLU: gradient only where the unit was active
                    if zp[i] <= 0:
                        prev[i] = np.float32(0.0)


class FusedPasses:
    """Buffers and one call per sample: ``run(weights, x, y)`` → (deltas, inputs) per layer, numpy."""

    def __init__(self, sizes, replicas: int, norm: str, output: str, eps: float = 1e-5):
        self.norm, self.output, self.eps = NORM_CODE[norm], OUTPUT_CODE[output], np.float32(eps)
        self.acts = List([np.zeros((replicas, n), np.float32) for n in sizes[:-1]])
        self.normed = List([np.zeros((replicas, n), np.float32) for n in sizes[1:]])
        self.deltas = List([np.zeros((replicas, n), np.float32) for n in sizes[1:]])
        self.invs = np.ones((replicas, len(sizes) - 1), np.float32)
        # Plain lists of the same arrays for the caller (reading a typed List from Python is slow).
        self._acts, self._deltas = list(self.acts), list(self.deltas)
        self._weights, self._weight_ptrs = None, None

    def run(self, weights: list[np.ndarray], x: np.ndarray, y: np.ndarray):
        ptrs = [w.ctypes.data for w in weights]
        if ptrs != self._weight_ptrs:  # building a typed List costs more than the passes: do it once
            self._weights, self._weight_ptrs = List(weights), ptrs
        self._acts[0][:] = x
        _forward_backward(self._weights, self.acts, self.normed, self.deltas, self.invs, y.astype(np.float32),
                          self.norm, self.output, self.eps)
        return self._deltas, self._acts
