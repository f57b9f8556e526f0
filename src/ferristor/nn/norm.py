"""``Normalize``: LayerNorm or BatchNorm without affine parameters (γ = 1, β = 0, digest §4).

Replica-aware (BatchNorm statistics are taken per replica) and, for training on the CPU,
computed by the same deterministic kernels as :class:`HybridMLP`'s fused path — so a network
assembled from ``HybridLinear`` + ``Normalize`` + ``nn.ReLU`` trains bit for bit like it.
BatchNorm uses the statistics of the batch it sees, also at evaluation (over each evaluated
chunk) [I]: the paper gives no running averages.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..backend import backend_for
from ..config_base import check_choice
from . import functional as F
from .autograd_util import is_compiling, outside_compile, refuse_create_graph

KINDS = ("layer", "batch")
# LayerNorm without affine over n values: 0 for n = 1, ±1 for n = 2, whatever the values are, so its
# gradient is 0 and nothing before it learns; from 3 values on it keeps information.
NARROWEST_LAYER_NORM = 3


def narrow_layer_norm(n: int) -> str:
    """Why a LayerNorm over ``n`` < NARROWEST_LAYER_NORM features cannot train."""
    out = "0" if n == 1 else "±1"
    return (f"a LayerNorm over {n} unit{'s' if n > 1 else ''} outputs {out} whatever its input, so no gradient "
            "passes it and nothing before it learns")


class _NormFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, z, kind):
        from .passes_cpu import NORM_CODE, norm_forward
        n = z.detach().clone().contiguous()
        code = NORM_CODE[kind]
        inv = np.empty((n.shape[0], n.shape[1] if kind == "layer" else n.shape[2]), np.float32)
        norm_forward(n.numpy(), code, np.float32(F.EPS), inv)
        ctx.save_for_backward(n)
        ctx.inv, ctx.code = inv, code
        return n.clone()

    @staticmethod
    def backward(ctx, g):
        from .passes_cpu import norm_backward
        refuse_create_graph("Normalize")  # its numba backward has no graph: a penalty's part would be lost
        (n,) = ctx.saved_tensors
        gz = g.detach().clone().contiguous()
        norm_backward(gz.numpy(), n.numpy(), ctx.code, ctx.inv)
        return gz, None


class Normalize(nn.Module):
    """``kind='layer'``: each sample over its features; ``'batch'``: each feature over the batch.

    ``replicas``: None when inputs are (B, F) (one chip), R when they are (R, B, F)."""

    def __init__(self, kind: str = "layer", replicas: int | None = None):
        super().__init__()
        check_choice("norm", kind, KINDS)
        self.kind, self.replicas = kind, replicas
        self._warned_narrow = False  # a LayerNorm over < NARROWEST_LAYER_NORM features: said once

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if is_compiling():  # torch.compile: eagerly, as the hybrid layers (autograd_util.outside_compile)
            return outside_compile(Normalize.forward, self, z)
        _check_shape(z, self.replicas)
        if self.kind == "batch" and self.replicas is None and z.ndim == 3:
            from ..errors import ConfigError
            raise ConfigError("Normalize input shape", tuple(z.shape), reason="Normalize('batch') built without "
                              "replicas= takes (batch, features): a leading axis of replicas (chips) would pool their "
                              f"statistics. Build Normalize('batch', replicas={z.shape[0]}) for {z.shape[0]} chips, or "
                              f"reshape a batch of sequences to ({z.shape[0] * z.shape[1]}, {z.shape[2]}) for one "
                              "batch's statistics")
        if self.kind == "layer" and z.shape[-1] < NARROWEST_LAYER_NORM and not getattr(self, "_warned_narrow", False):
            import warnings

            from ..errors import FerristorWarning
            self._warned_narrow = True
            warnings.warn(FerristorWarning(f"Normalize('layer') over {z.shape[-1]} features: "
                                           f"{narrow_layer_norm(z.shape[-1])}; leave it out after a layer this "
                                           "narrow (a binary task's logits), or use kind='batch'"))
        lead = z.shape
        z3 = z.reshape(self.replicas or 1, -1, z.shape[-1]) if self.kind == "batch" else z.reshape(1, -1, z.shape[-1])
        if self.kind == "batch" and z3.shape[1] < 2:
            from ..errors import ConfigError
            raise ConfigError("batch", z3.shape[1], "at least 2 samples for BatchNorm (over one sample it is 0)")
        if z.requires_grad and torch.is_grad_enabled() and backend_for(z.device) == "numba" and z.dtype == torch.float32:
            out = _NormFunction.apply(z3, self.kind)
        else:
            out, _ = F.normalize(z3, -1 if self.kind == "layer" else -2)
        return out.reshape(lead)

    def extra_repr(self) -> str:
        return f"kind={self.kind!r}, affine=False" + (f", replicas={self.replicas}" if self.replicas else "")


def _check_shape(z: torch.Tensor, replicas: int | None) -> None:
    """Refuse what would normalise over the wrong axes silently: a convolution's feature maps
    (..., C, H, W), whose last axis is W, not the features, and a batch whose leading axis is not
    the layer's replicas."""
    from ..errors import ConfigError
    if replicas is not None and (z.ndim != 3 or z.shape[0] != replicas):
        raise ConfigError("Normalize input shape", tuple(z.shape),
                          f"(replicas={replicas}, batch, features): this Normalize was built for {replicas} replicas")
    if z.ndim not in (2, 3):
        raise ConfigError("Normalize input shape", tuple(z.shape),
                          "(batch, features) or (replicas, batch, features): it normalises over the last axis; after a "
                          "convolution, nn.Flatten() first, or torch.nn.BatchNorm2d / GroupNorm for per-channel statistics")
