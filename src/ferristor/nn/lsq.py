"""LSQ: learned step size quantisation of weights (Esser et al., "Learned Step Size Quantization",
ICLR 2020), for any model.

A weight tensor w of a layer is replaced in the forward pass by ŵ = s·q with the integer code
q = clamp(round(w/s), −Q_N, Q_P), where the step size s is a learned parameter of the layer. For
b-bit signed weights Q_N = 2^(b−1) and Q_P = 2^(b−1) − 1 (4 bits: codes −8…7). The gradients
are those of the paper (its Eq. 3 and the straight-through estimator):

    ∂ŵ/∂w = 1 where −Q_N < w/s < Q_P, else 0
    ∂ŵ/∂s = round(w/s) − w/s where −Q_N < w/s < Q_P, −Q_N below, Q_P above

and the step's gradient is multiplied by g = 1/√(N_W·Q_P) (N_W: weights per layer, per step
size), the paper's gradient scale. The step is initialised to 2·mean|w|/√Q_P (the paper's
initialisation). Activations stay in float here [I]: the issue asks for 4-bit weights.

Use: ``quantize_weights_(model, bits=4)`` swaps every ``nn.Conv2d`` and ``nn.Linear`` (or those
``include`` picks) for an ``LSQConv2d``/``LSQLinear`` that keeps the float weight (the "latent"
weight the optimiser updates, key ``weight`` as before) and adds the parameter ``weight_step``.
"""
from __future__ import annotations

import fnmatch
import math
from typing import Callable, Iterable

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError

MIN_BITS, MAX_BITS = 2, 16


def qrange(bits: int, signed: bool = True) -> tuple[int, int]:
    """(Q_N, Q_P): codes run from −Q_N to Q_P (Esser et al. §2.1)."""
    if isinstance(bits, bool) or not isinstance(bits, int) or not MIN_BITS <= bits <= MAX_BITS:
        raise ConfigError("bits", bits, f"an integer in [{MIN_BITS}, {MAX_BITS}]")
    return (2 ** (bits - 1), 2 ** (bits - 1) - 1) if signed else (0, 2 ** bits - 1)


def init_step(w: torch.Tensor, bits: int, signed: bool = True) -> torch.Tensor:
    """The paper's initial step size 2·mean|w|/√Q_P (a tiny positive floor for an all-zero tensor)."""
    _, qp = qrange(bits, signed)
    s = 2 * w.detach().abs().mean() / math.sqrt(qp)
    return torch.clamp(s, min=1e-8).to(torch.float32)


def grad_scale(n_weights: int, bits: int, signed: bool = True) -> float:
    """g = 1/√(N_W·Q_P), the paper's scale of the step size's gradient."""
    _, qp = qrange(bits, signed)
    return 1.0 / math.sqrt(n_weights * qp)


class _LSQ(torch.autograd.Function):
    @staticmethod
    def forward(ctx, w, s, qn, qp, g):
        v = w / s
        q = torch.clamp(torch.round(v), -qn, qp)
        ctx.save_for_backward(v, q)
        ctx.g, ctx.qn, ctx.qp, ctx.s_shape = g, qn, qp, s.shape
        return q * s

    @staticmethod
    def backward(ctx, grad):
        v, q = ctx.saved_tensors
        below, above = v <= -ctx.qn, v >= ctx.qp
        inside = ~(below | above)
        grad_w = grad * inside
        ds = torch.where(inside, q - v, q)  # outside, q is the bound (−Q_N or Q_P)
        grad_s = _reduce_to(grad * ds, ctx.s_shape) * ctx.g
        return grad_w, grad_s, None, None, None


def _reduce_to(t: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """Sum ``t`` over the dimensions a tensor of ``shape`` was broadcast along."""
    while t.dim() > len(shape):
        t = t.sum(0)
    for i, n in enumerate(shape):
        if n == 1 and t.shape[i] != 1:
            t = t.sum(i, keepdim=True)
    return t


def lsq_quantize(w: torch.Tensor, step: torch.Tensor, bits: int = 4, signed: bool = True,
                 grad_scale_: float | None = None) -> torch.Tensor:
    """ŵ = s·clamp(round(w/s), −Q_N, Q_P) with LSQ's gradients (module doc). ``step`` broadcasts
    against ``w`` (a scalar per layer, or one per replica); ``grad_scale_`` defaults to the paper's
    1/√(N_W·Q_P) with N_W the weights per step size."""
    qn, qp = qrange(bits, signed)
    if grad_scale_ is None:
        grad_scale_ = 1.0 / math.sqrt(max(1, w.numel() // max(1, step.numel())) * qp)
    return _LSQ.apply(w, step, qn, qp, grad_scale_)


def lsq_codes(w: torch.Tensor, step: torch.Tensor, bits: int = 4, signed: bool = True) -> torch.Tensor:
    """The integer codes q (int64) of ``w`` at ``step``."""
    qn, qp = qrange(bits, signed)
    return torch.clamp(torch.round(w.detach() / step.detach()), -qn, qp).to(torch.int64)


class LSQMixin:
    """What ``LSQConv2d`` and ``LSQLinear`` add to their float base: ``bits``, the learned
    ``weight_step`` and the quantised weight the forward pass uses."""

    bits: int

    def _setup_lsq(self, bits: int) -> None:
        qrange(bits)
        self.bits = bits
        self.weight_step = nn.Parameter(init_step(self.weight, bits))

    def quantized_weight(self) -> torch.Tensor:
        return lsq_quantize(self.weight, self.weight_step, self.bits)

    def codes(self) -> torch.Tensor:
        return lsq_codes(self.weight, self.weight_step, self.bits)

    def reset_step(self) -> None:
        """Re-initialise the step size from the current float weights (after loading new ones)."""
        with torch.no_grad():
            self.weight_step.copy_(init_step(self.weight, self.bits))


class LSQConv2d(LSQMixin, nn.Conv2d):
    """``nn.Conv2d`` whose forward pass uses LSQ-quantised weights (bias stays float [I])."""

    def __init__(self, *args, bits: int = 4, **kwargs):
        super().__init__(*args, **kwargs)
        self._setup_lsq(bits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, self.quantized_weight(), self.bias)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", bits={self.bits}"


class LSQLinear(LSQMixin, nn.Linear):
    """``nn.Linear`` whose forward pass uses LSQ-quantised weights (bias stays float [I])."""

    def __init__(self, *args, bits: int = 4, **kwargs):
        super().__init__(*args, **kwargs)
        self._setup_lsq(bits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.quantized_weight(), self.bias)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", bits={self.bits}"


def _from_float(m: nn.Module, bits: int) -> nn.Module:
    dev, dtype = m.weight.device, m.weight.dtype
    if isinstance(m, nn.Conv2d):
        q = LSQConv2d(m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding, m.dilation, m.groups,
                      m.bias is not None, m.padding_mode, bits=bits, device=dev, dtype=dtype)
    else:
        q = LSQLinear(m.in_features, m.out_features, m.bias is not None, bits=bits, device=dev, dtype=dtype)
    with torch.no_grad():
        q.weight.copy_(m.weight)
        if m.bias is not None:
            q.bias.copy_(m.bias)
    q.reset_step()
    q.train(m.training)
    return q


def quantize_weights_(model: nn.Module, bits: int = 4,
                      include: str | Iterable[str] | Callable[[str, nn.Module], bool] | None = None) -> list[str]:
    """Swap, in place, the ``nn.Conv2d``/``nn.Linear`` layers of ``model`` (those ``include`` picks:
    a glob or globs on module names, or a predicate) for LSQ layers with ``bits``-bit weights, their
    steps initialised from the current weights. Returns the names of the swapped layers. The float
    weights keep their keys, so load a float state_dict (e.g. torchvision's) *before* this call."""
    qrange(bits)
    if include is None:
        pick = lambda name, m: True  # noqa: E731
    elif callable(include):
        pick = include
    else:
        globs = [include] if isinstance(include, str) else list(include)
        pick = lambda name, m: any(fnmatch.fnmatchcase(name, g) for g in globs)  # noqa: E731
    swapped = []
    for name, m in list(model.named_modules()):
        if type(m) in (nn.Conv2d, nn.Linear) and name and pick(name, m):
            parent_name, _, child = name.rpartition(".")
            parent = model.get_submodule(parent_name) if parent_name else model
            setattr(parent, child, _from_float(m, bits))
            swapped.append(name)
    return swapped


def lsq_layers(model: nn.Module) -> list[tuple[str, LSQMixin]]:
    return [(n, m) for n, m in model.named_modules() if isinstance(m, LSQMixin)]


def level_usage(model: nn.Module) -> dict[str, dict]:
    """Per LSQ layer: bits, step size and how many of the 2^bits codes its weights use (a histogram)."""
    out = {}
    for name, m in lsq_layers(model):
        qn, qp = qrange(m.bits)
        counts = torch.bincount((m.codes() + qn).flatten(), minlength=qn + qp + 1)
        out[name] = {"bits": m.bits, "step": float(m.weight_step.detach().flatten()[0]),
                     "levels_used": int((counts > 0).sum()), "histogram": counts.tolist()}
    return out
