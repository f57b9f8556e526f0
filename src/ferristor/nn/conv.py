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
from .autograd_util import check_unmodified, grad_use, is_compiling, outside_compile, refuse_create_graph
from .config import HybridConfig
from .hybrid import HybridModule, _Slot, positive_int


def _grouped(layer: "HybridConv2d", x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None):
    """Replicas as groups of one convolution: (R, N, C, H, W) → (N, R·C, H, W), weights (R·O, …); the
    extra zeros of an asymmetric ``padding='same'`` added on the right and bottom."""
    if layer.replicas is None:
        xr, wr, br, groups = x, weight, bias, layer.groups
    else:
        n_rep = layer.replicas
        xr = x.transpose(0, 1).reshape(x.shape[1], n_rep * x.shape[2], *x.shape[3:])
        wr = weight.reshape(n_rep * weight.shape[1], *weight.shape[2:])
        br = bias.reshape(-1) if bias is not None else None
        groups = layer.groups * n_rep
    if layer._pad_extra is not None:
        xr = torch.nn.functional.pad(xr, layer._pad_extra)
    return xr, wr, br, groups


def _ungroup(layer: "HybridConv2d", out: torch.Tensor) -> torch.Tensor:
    if layer.replicas is None:
        return out
    n, _, h, w = out.shape
    return out.view(n, layer.replicas, layer.out_channels, h, w).transpose(0, 1)


def _same_padding(kernel_size, dilation) -> tuple[tuple[int, int], tuple[int, int, int, int] | None]:
    """``padding='same'`` as torch computes it (stride 1): d·(k − 1) zeros per dimension, ⌊·/2⌋ before
    and the rest after. Returns the symmetric part the convolution takes and, where a dimension's
    total is odd (an even effective kernel), the one extra zero after it as ``F.pad``'s (left, right,
    top, bottom) — what ``aten::_convolution_mode`` does for ``F.conv2d(…, padding='same')``."""
    before, extra = [], []
    for k, d in zip(kernel_size, dilation):
        total = d * (k - 1)
        before.append(total // 2)
        extra.append(total - 2 * (total // 2))
    return (before[0], before[1]), ((0, extra[1], 0, extra[0]) if any(extra) else None)


class _ConvFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, layer):
        ctx.x_in, ctx.x_version = x, x._version  # replicas and padding save a copy of x, unchecked by torch
        if layer._pad_extra is not None:
            ctx.in_hw = x.shape[-2:]
        xr, wr, br, groups = _grouped(layer, x.contiguous(), weight.detach(),
                                      bias.detach() if bias is not None else None)
        ctx.save_for_backward(xr, wr)
        ctx.layer, ctx.groups, ctx.has_bias = layer, groups, bias is not None
        out = torch.ops.aten.convolution(xr, wr, br, layer.stride, layer._conv_padding, layer.dilation, False, [0, 0],
                                         groups)
        return _ungroup(layer, out)

    @staticmethod
    def backward(ctx, g):
        if torch.is_grad_enabled():  # create_graph=True: the weight's gradient below has no graph
            refuse_create_graph(f"HybridConv2d {ctx.layer.rng_name!r}" if ctx.layer.rng_name else "HybridConv2d")
        if ctx.x_in._version != ctx.x_version:
            check_unmodified(ctx.x_in, ctx.x_version, f"HybridConv2d {ctx.layer.rng_name or ''}".rstrip())
        xr, wr = ctx.saved_tensors
        layer = ctx.layer
        if layer.replicas is not None:
            g = g.transpose(0, 1).reshape(g.shape[1], -1, *g.shape[3:])
        # a parameter's gradient is handed to the layer (kept for HybridSGD's next step) only when the
        # engine accumulates it: not in torch.autograd.grad(loss, x) nor backward(inputs=[x]); it is
        # computed without being recorded for torch.autograd.grad(loss, weight)
        use_w, use_b = grad_use(ctx, 1), grad_use(ctx, 2) if ctx.has_bias else None
        mask = [ctx.needs_input_grad[0], use_w is not None, use_b is not None]
        if not any(mask):
            return None, None, None, None
        gx, gw, gb = torch.ops.aten.convolution_backward(
            g.contiguous(), xr, wr, [wr.shape[0]] if ctx.has_bias else None, layer.stride, layer._conv_padding,
            layer.dilation, False, [0, 0], ctx.groups, mask)
        n = xr.shape[0]
        if gx is not None:
            if layer.replicas is not None:
                gx = gx.view(n, layer.replicas, -1, *gx.shape[2:]).transpose(0, 1)
            if layer._pad_extra is not None:  # the extra zeros' gradient belongs to no input
                gx = gx[..., :ctx.in_hw[0], :ctx.in_hw[1]]
        grad_w = grad_b = None
        if mask[1]:
            grad_w = gw.view(layer.weight.shape)
            if use_w == "record" and layer._record_gradient("weight", n, dense=layer.crossbar("weight", grad_w)) is None:
                grad_w = None
        if mask[2]:
            grad_b = gb.view(layer.bias.shape)
            if use_b == "record" and layer._record_gradient("bias", n, dense=layer.crossbar("bias", grad_b)) is None:
                grad_b = None
        return gx, grad_w, grad_b, None


PADDING_MODES = ("zeros", "reflect", "replicate", "circular")  # torch.nn.Conv2d's


class HybridConv2d(HybridModule):
    """As ``torch.nn.Conv2d`` (padding: integers, ``'valid'`` or ``'same'``; every ``padding_mode``),
    with the kernel (and a bias column, if asked) on hybrid synapses. Inputs (N, C, H, W) for one chip;
    (R, N, C, H, W) with ``replicas=R``; without N, one unbatched input (as ``nn.Conv2d``'s (C, H, W)). A padding mode other than zeros pads the input first, as
    torch's own layer does (``F.pad``, then a convolution without padding): the synapses see the
    padded input, so the weight gradient is torch's.
    ``config``, ``seeds``, ``name``, ``device``: as :class:`HybridLinear`."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 groups: int = 1, bias: bool = False, padding_mode: str = "zeros", *, config: HybridConfig | None = None,
                 replicas: int | None = None, seeds=None, name: str | None = None, device=None):
        super().__init__(config, replicas, seeds, name)
        in_channels, out_channels, groups = (positive_int(arg, v) for arg, v in (
            ("in_channels", in_channels), ("out_channels", out_channels), ("groups", groups)))
        if in_channels % groups or out_channels % groups:
            raise ConfigError("groups", groups, f"a divisor of in_channels={in_channels} and out_channels={out_channels}")
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size, self.stride = _pair(kernel_size), _pair(stride)
        self.dilation = _pair(dilation)
        if isinstance(padding, str):  # as nn.Conv2d: the string stays the layer's padding
            if padding == "valid":
                self._conv_padding, self._pad_extra = (0, 0), None
            elif padding == "same":
                if self.stride != (1, 1):
                    raise ConfigError("padding", padding, f"integers with stride={self.stride} ('same' needs stride 1)")
                self._conv_padding, self._pad_extra = _same_padding(self.kernel_size, self.dilation)
            else:
                raise ConfigError("padding", padding, "'valid', 'same' or integers (zero padding)")
            self.padding = padding
        else:
            self.padding = self._conv_padding = _pair(padding)
            self._pad_extra = None
        if padding_mode not in PADDING_MODES:
            raise ConfigError("padding_mode", padding_mode, " or ".join(map(repr, PADDING_MODES)))
        self.padding_mode = padding_mode
        self._input_pad = None  # F.pad's (left, right, top, bottom) of a mode other than zeros
        if padding_mode != "zeros":
            (ph, pw), extra = self._conv_padding, self._pad_extra or (0, 0, 0, 0)
            self._input_pad = (pw, pw + extra[1], ph, ph + extra[3])
            self._conv_padding, self._pad_extra = (0, 0), None
        n, single = self.n_replicas, replicas is None
        shape = (n, out_channels, in_channels // groups, *self.kernel_size)
        self.weight = self._add_hybrid("weight", _Slot("conv", shape, single), device)
        if bias:
            self.bias = self._add_hybrid("bias", _Slot("bias", (n, out_channels), single), device)
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def __setstate__(self, state):
        super().__setstate__(state)
        if "_conv_padding" not in self.__dict__:  # pickled before string paddings: integer padding
            self._conv_padding, self._pad_extra = self.padding, None
        if "padding_mode" not in self.__dict__:  # pickled before padding modes: zeros
            self.padding_mode, self._input_pad = "zeros", None

    def _padded(self, x: torch.Tensor) -> torch.Tensor:
        """The input with a non-zero padding mode's border (differentiable: torch's own pad op)."""
        if self._input_pad is None:
            return x
        flat = x.reshape(-1, *x.shape[-3:])  # F.pad's modes take (N, C, H, W); replicas fold into N
        out = torch.nn.functional.pad(flat, self._input_pad, mode=self.padding_mode)
        return out.view(*x.shape[:-2], *out.shape[-2:])

    def check_input(self, x: torch.Tensor) -> None:
        self._check_dtype(x)
        want = 5 if self.replicas is not None else 4
        if x.dim() not in (want, want - 1) or x.shape[-3] != self.in_channels or \
                (self.replicas is not None and x.shape[0] != self.replicas):
            lead = f"{self.replicas}, " if self.replicas is not None else ""
            raise ConfigError("HybridConv2d input shape", tuple(x.shape),
                              f"({lead}N, {self.in_channels}, H, W), or ({lead}{self.in_channels}, H, W) unbatched")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if is_compiling():  # torch.compile: this layer runs eagerly (autograd_util.outside_compile)
            return outside_compile(HybridConv2d.forward, self, x)
        self.check_input(x)
        self.check_written()
        if x.dim() == (3 if self.replicas is None else 4):  # unbatched, as nn.Conv2d takes it: one input
            at = 0 if self.replicas is None else 1
            return self.forward(x.unsqueeze(at)).squeeze(at)
        x = self._padded(x)
        if torch.is_grad_enabled() and (x.requires_grad or self.weight.requires_grad
                                        or (self.bias is not None and self.bias.requires_grad)):
            return _ConvFunction.apply(x, self.weight, self.bias, self)
        xr, wr, br, groups = _grouped(self, x, self.weight.detach(), self.bias.detach() if self.bias is not None else None)
        out = torch.ops.aten.convolution(xr, wr, br, self.stride, self._conv_padding, self.dilation, False, [0, 0], groups)
        return _ungroup(self, out)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding!r}, dilation={self.dilation}, groups={self.groups}, bias={self.bias is not None}, "
                + (f"padding_mode={self.padding_mode!r}, " if self.padding_mode != "zeros" else "") +
                f"mode={self.mode}, replicas={self.replicas}" + (f", name={self.rng_name!r}" if self.rng_name else ""))
