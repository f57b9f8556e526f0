"""Stateless forward and backward passes of an MLP over R replicas (batch 1 per replica).

Weights are (R, out, in); activations (R, features) — or (R, B, features) for mini-batches. The
backward pass is written out (not autograd) because per-sample training is our hot path; a test
checks it against autograd. It returns, per layer, the factors (δ, x) with ∂L/∂W = δᵀx summed over
the batch, which is what the learning rule consumes.
"""
from __future__ import annotations

import torch

EPS = 1e-5  # LayerNorm epsilon, as torch.nn.LayerNorm [I]


def normalize(a: torch.Tensor, dim: int, eps: float = EPS) -> tuple[torch.Tensor, torch.Tensor]:
    """(a − mean)/σ over ``dim``, without affine (γ = 1, β = 0, digest §4): returns (n, 1/σ)."""
    c = a - a.mean(dim, keepdim=True)
    inv = torch.rsqrt((c * c).mean(dim, keepdim=True) + eps)
    return c * inv, inv


def normalize_backward(g: torch.Tensor, n: torch.Tensor, inv: torch.Tensor, dim: int) -> torch.Tensor:
    return inv * (g - g.mean(dim, keepdim=True) - n * (g * n).mean(dim, keepdim=True))


# LayerNorm normalises each sample over its features; BatchNorm each feature over the batch
# (batch statistics, also at test time over the evaluated chunk [I]).
_NORM_DIM = {"layer": -1, "batch": -2}


def forward(weights: list[torch.Tensor], x: torch.Tensor, norm: str, output: str):
    """Returns (output probabilities, cache for :func:`backward`). ``x`` is (R, in) or (R, B, in)."""
    batched = x.dim() == 3
    h = x if batched else x[:, None, :]
    cache = []
    last = len(weights) - 1
    for li, w in enumerate(weights):
        a = torch.bmm(h, w.transpose(1, 2))  # (R, B, out)
        if norm != "none":
            n, inv = normalize(a, _NORM_DIM[norm])
        else:
            n, inv = a, None
        cache.append((h, n, inv))
        h = torch.relu(n) if li < last else n
    if output == "softmax":
        out = torch.softmax(h, -1)
    else:
        out = torch.sigmoid(h)
    return (out if batched else out[:, 0]), cache


def loss_grad(out: torch.Tensor, target: torch.Tensor, output: str) -> torch.Tensor:
    """∂L/∂(last pre-activation) for softmax + cross-entropy or sigmoid + binary cross-entropy."""
    if output == "softmax":
        return out - torch.nn.functional.one_hot(target, out.shape[-1]).to(out.dtype)
    return out - target.to(out.dtype)[..., None]


def backward(weights: list[torch.Tensor], cache, g_out: torch.Tensor, norm: str):
    """Per-layer (δ, x) with ∂L/∂W_l = Σ_b δ_bᵀ x_b; δ (R, B, out), x (R, B, in).

    For a batch the loss is the batch mean, so δ carries the 1/B factor.
    """
    g = g_out if g_out.dim() == 3 else g_out[:, None, :]
    g = g / g.shape[1]
    factors = [None] * len(weights)
    for li in range(len(weights) - 1, -1, -1):
        h, n, inv = cache[li]
        if li < len(weights) - 1:
            g = g * (n > 0)
        if norm != "none":
            g = normalize_backward(g, n, inv, _NORM_DIM[norm])
        factors[li] = (g, h)
        if li:
            g = torch.bmm(g, weights[li])
    return factors


def loss_value(out: torch.Tensor, target: torch.Tensor, output: str) -> torch.Tensor:
    """Per-replica mean loss (for tests and logging)."""
    if output == "softmax":
        return -torch.log(out.gather(-1, target[..., None]).clamp_min(1e-12)).squeeze(-1)
    t = target.to(out.dtype)[..., None]
    return -(t * torch.log(out.clamp_min(1e-12)) + (1 - t) * torch.log((1 - out).clamp_min(1e-12))).squeeze(-1)
