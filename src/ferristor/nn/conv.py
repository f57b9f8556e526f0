"""``HybridConv2d``: a 2-D convolution whose kernel lives on hybrid FeCAP/memristor synapses.

The kernel is a crossbar of (in_channels/groups · kh · kw) rows × out_channels columns: each
output position reads the same synapses, so the weight gradient is the usual sum over positions —
a dense gradient, which the rule's dense kernels take. Passes are torch's own convolution ops
(``aten.convolution`` and its backward, exactly what ordinary autograd runs).
"""
from __future__ import annotations

import torch
from torch.nn.modules.utils import _pair

from ..errors import ConfigError
from .config import HybridConfig
from .hybrid import HybridModule, _Slot


def _grouped(layer: "HybridConv2d", x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None):
    """Replicas as groups of one convolution: (R, N, C, H, W) → (N, R·C, H, W), weights (R·O, …)."""
    if layer.replicas is None:
        return x, weight, bias, layer.groups
    n_rep = layer.replicas
    xr = x.transpose(0, 1).reshape(x.shape[1], n_rep * x.shape[2], *x.shape[3:])
    wr = weight.reshape(n_rep * weight.shape[1], *weight.shape[2:])
    br = bias.reshape(-1) if bias is not None else None
    return xr, wr, br, layer.groups * n_rep


def _ungroup(layer: "HybridConv2d", out: torch.Tensor) -> torch.Tensor:
    if layer.replicas is None:
        return out
    n, _, h, w = out.shape
    return out.view(n, layer.replicas, layer.out_channels, h, w).transpose(0, 1)


class _ConvFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, layer):
        xr, wr, br, groups = _grouped(layer, x, weight.detach(), bias.detach() if bias is not None else None)
        ctx.save_for_backward(xr, wr)
        ctx.layer, ctx.groups, ctx.has_bias = layer, groups, bias is not None
        out = torch.ops.aten.convolution(xr, wr, br, layer.stride, layer.padding, layer.dilation, False, [0, 0], groups)
        return _ungroup(layer, out)

    @staticmethod
    def backward(ctx, g):
        xr, wr = ctx.saved_tensors
        layer = ctx.layer
        if layer.replicas is not None:
            g = g.transpose(0, 1).reshape(g.shape[1], -1, *g.shape[3:])
        mask = [ctx.needs_input_grad[0], ctx.needs_input_grad[1], ctx.has_bias and ctx.needs_input_grad[2]]
        gx, gw, gb = torch.ops.aten.convolution_backward(
            g.contiguous(), xr, wr, [wr.shape[0]] if ctx.has_bias else None, layer.stride, layer.padding,
            layer.dilation, False, [0, 0], ctx.groups, mask)
        n = xr.shape[0]
        if gx is not None and layer.replicas is not None:
            gx = gx.view(n, layer.replicas, -1, *gx.shape[2:]).transpose(0, 1)
        grad_w = grad_b = None
        if mask[1]:
            gw = gw.view(layer.weight.shape)
            dense = layer._record_gradient("weight", n, dense=layer.crossbar("weight", gw))
            grad_w = gw if dense is not None else None
        if mask[2]:
            gb = gb.view(layer.bias.shape)
            dense = layer._record_gradient("bias", n, dense=layer.crossbar("bias", gb))
            grad_b = gb if dense is not None else None
        return gx, grad_w, grad_b, None


class HybridConv2d(HybridModule):
    """As ``torch.nn.Conv2d`` (no padding modes other than zeros), with the kernel (and a bias column,
    if asked) on hybrid synapses. Inputs (N, C, H, W) for one chip; (R, N, C, H, W) with ``replicas=R``.
    ``config``, ``seeds``, ``name``, ``device``: as :class:`HybridLinear`."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 groups: int = 1, bias: bool = False, *, config: HybridConfig | None = None,
                 replicas: int | None = None, seeds=None, name: str | None = None, device=None):
        super().__init__(config, replicas, seeds, name)
        for arg, v in (("in_channels", in_channels), ("out_channels", out_channels), ("groups", groups)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ConfigError(arg, v, "an integer ≥ 1")
        if in_channels % groups or out_channels % groups:
            raise ConfigError("groups", groups, f"a divisor of in_channels={in_channels} and out_channels={out_channels}")
        if isinstance(padding, str):
            raise ConfigError("padding", padding, "integers (string padding modes are not supported)")
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size, self.stride = _pair(kernel_size), _pair(stride)
        self.padding, self.dilation = _pair(padding), _pair(dilation)
        n, single = self.n_replicas, replicas is None
        shape = (n, out_channels, in_channels // groups, *self.kernel_size)
        self.weight = self._add_hybrid("weight", _Slot("conv", shape, single), device)
        if bias:
            self.bias = self._add_hybrid("bias", _Slot("bias", (n, out_channels), single), device)
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def check_input(self, x: torch.Tensor) -> None:
        self._check_dtype(x)
        want = 5 if self.replicas is not None else 4
        if x.dim() != want or x.shape[-3] != self.in_channels or (self.replicas is not None and x.shape[0] != self.replicas):
            lead = f"{self.replicas}, " if self.replicas is not None else ""
            raise ConfigError("HybridConv2d input shape", tuple(x.shape), f"({lead}N, {self.in_channels}, H, W)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        if torch.is_grad_enabled() and (x.requires_grad or self.weight.requires_grad):
            return _ConvFunction.apply(x.contiguous(), self.weight, self.bias, self)
        xr, wr, br, groups = _grouped(self, x, self.weight.detach(), self.bias.detach() if self.bias is not None else None)
        out = torch.ops.aten.convolution(xr, wr, br, self.stride, self.padding, self.dilation, False, [0, 0], groups)
        return _ungroup(self, out)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}, groups={self.groups}, bias={self.bias is not None}, mode={self.mode}, "
                f"replicas={self.replicas}" + (f", name={self.rng_name!r}" if self.rng_name else ""))
