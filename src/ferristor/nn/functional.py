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


class _Loss(torch.autograd.Function):
    """Loss and its gradient in one pass; on the CPU by ferristor's kernels (``passes_cpu.loss_grad``,
    with exp/log from ``detmath``), whose bits do not depend on the machine."""

    @staticmethod
    def forward(ctx, logits, y, sigmoid, batch):
        from .passes_cpu import loss_grad
        z = logits.detach().reshape(-1, logits.shape[-1]).contiguous()
        grad = torch.empty_like(z)
        losses = loss_grad(z.numpy(), y.reshape(-1).contiguous().numpy(), sigmoid, 1.0 / batch, grad.numpy())
        ctx.grad = grad.view(logits.shape)
        return torch.tensor(float(losses.sum()) / batch, dtype=logits.dtype)

    @staticmethod
    def backward(ctx, g):
        if torch.is_grad_enabled():  # create_graph=True: this gradient is a constant, its Hessian would be 0
            from .autograd_util import refuse_create_graph
            refuse_create_graph("ferristor.nn.functional's loss (use torch.nn.functional's for a second order)")
        return ctx.grad * g, None, None, None


def _batch(y: torch.Tensor) -> int:
    return y.shape[-1] if y.dim() else 1


def _check(logits: torch.Tensor, y: torch.Tensor, what: str, classes: bool) -> None:
    from ..errors import ConfigError
    if tuple(logits.shape[:-1]) != tuple(y.shape):
        raise ConfigError(f"{what} target shape", tuple(y.shape), f"{tuple(logits.shape[:-1])} (the logits' but the last)")
    if classes and (y.dtype.is_floating_point or y.dtype == torch.bool):
        raise ConfigError(f"{what} target dtype", str(y.dtype), "integer class indices")


def cross_entropy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Softmax + cross-entropy, averaged over the last batch dimension of ``y`` and summed over leading
    ones (replicas): logits (B, C) with y (B,) is ``F.cross_entropy``'s batch mean; (R, B, C) with
    (R, B) gives each replica its own mean gradient. On the CPU the same bits on every machine."""
    _check(logits, y, "cross_entropy", True)
    from ..backend import backend_for
    if backend_for(logits.device) == "numba" and logits.dtype == torch.float32:
        return _Loss.apply(logits, y, False, _batch(y))
    flat = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), reduction="sum")
    return flat / _batch(y)


def binary_cross_entropy_with_logits(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Sigmoid + binary cross-entropy of one logit per sample (logits (..., 1), y (...) in {0, 1}),
    reduced as :func:`cross_entropy`."""
    _check(logits, y, "binary_cross_entropy_with_logits", False)
    from ..backend import backend_for
    if backend_for(logits.device) == "numba" and logits.dtype == torch.float32:
        return _Loss.apply(logits, y.to(torch.float32), True, _batch(y))
    flat = torch.nn.functional.binary_cross_entropy_with_logits(logits.reshape(-1), y.reshape(-1).to(logits.dtype),
                                                                reduction="sum")
    return flat / _batch(y)
