"""Stateless tensor functions under the modules: normalisation without affine parameters (the torch path)."""
from __future__ import annotations

import torch

EPS = 1e-5  # LayerNorm/BatchNorm epsilon, as torch.nn.LayerNorm [I]


def normalize(a: torch.Tensor, dim: int, eps: float = EPS) -> tuple[torch.Tensor, torch.Tensor]:
    """(a − mean)/σ over ``dim``, without affine (γ = 1, β = 0, digest §4): returns (n, 1/σ).
    Differentiable by autograd; the CPU training path uses the deterministic kernels of ``passes_cpu``."""
    c = a - a.mean(dim, keepdim=True)
    inv = torch.rsqrt((c * c).mean(dim, keepdim=True) + eps)
    return c * inv, inv
