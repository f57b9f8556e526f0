"""``HybridLinear``: a fully connected layer whose weights live on hybrid FeCAP/memristor synapses."""
from __future__ import annotations

import numpy as np
import torch

from ..errors import ConfigError
from ..backend import numba_for
from . import passes
from .config import HybridConfig
from .autograd_util import check_unmodified, grad_use, is_compiling, outside_compile, refuse_create_graph
from .hybrid import HybridModule, _Slot, positive_int


class _LinearFunction(torch.autograd.Function):
    """x·Wᵀ (+ b) whose backward hands the weight gradient to the layer as its factors (x, δ)
    — the rank-1 form the rule's kernels consume — instead of forming ∂L/∂W when an optimizer
    captures them. Takes and returns the user's shapes: the (R, B, features) views are numpy
    reshapes on the CPU path (a torch call costs more than a small layer's kernel)."""

    @staticmethod
    def forward(ctx, x, weight, bias, layer):
        ctx.layer, ctx.has_bias = layer, bias is not None
        ctx.x_in, ctx.x_version = x, x._version  # x3 below may be a view of x: backward checks it is unchanged
        lead, n_rep = x.shape[:-1], layer.n_replicas
        if numba_for(x):  # cached numpy views of the crossbars: no torch call per step
            x3 = np.ascontiguousarray(x.detach().numpy()).reshape(n_rep, -1, layer.in_features)
            ctx.x3 = x3
            w = layer._cpu_arrays("weight")["param"]
            b = layer._cpu_arrays("bias")["param"][:, 0] if bias is not None else None
            out = passes.linear_forward_np(w, x3, b)  # (R, B, O): already the user's shape for (R, B, in)
            return out if len(lead) == 2 and lead[0] == n_rep else out.view(*lead, layer.out_features)
        x3 = x.detach().reshape(n_rep, -1, layer.in_features).contiguous()
        ctx.x3 = x3
        b = layer.crossbar("bias", bias.detach())[:, 0] if bias is not None else None
        return passes.linear_forward(layer.crossbar("weight", weight.detach()), x3, b).reshape(*lead, layer.out_features)

    @staticmethod
    def backward(ctx, g):
        layer, x3 = ctx.layer, ctx.x3
        if torch.is_grad_enabled():  # create_graph=True: the gradients below have no graph
            refuse_create_graph(f"HybridLinear {layer.rng_name!r}" if layer.rng_name else "HybridLinear")
        shape_in = (*g.shape[:-1], layer.in_features)
        cpu = isinstance(x3, np.ndarray)
        g3 = np.ascontiguousarray(g.numpy()).reshape(x3.shape[0], -1, layer.out_features) if cpu else \
            g.reshape(x3.shape[0], -1, layer.out_features).contiguous()
        gx = gw = gb = None
        if ctx.needs_input_grad[0]:
            if cpu:
                gx = passes.linear_backward_input_np(layer._cpu_arrays("weight")["param"], g3).view(shape_in)
            else:
                gx = passes.linear_backward_input(layer.crossbar("weight", layer.weight.detach()), g3).reshape(shape_in)
        # a parameter's gradient is handed to the layer (kept for HybridSGD's next step) only when the
        # engine accumulates it: not in torch.autograd.grad(loss, x) nor backward(inputs=[x])
        if ctx.needs_input_grad[1]:
            if ctx.x_in._version != ctx.x_version:  # x3 reads x: an in-place change would corrupt ∂L/∂W
                check_unmodified(ctx.x_in, ctx.x_version, f"HybridLinear {layer.rng_name or ''}".rstrip())
            gw = layer._hand_over("weight", x3, g3, grad_use(ctx, 1))
        if ctx.has_bias and ctx.needs_input_grad[2]:
            gb = layer._hand_over("bias", None, g3, grad_use(ctx, 2))
        return gx, gw, gb, None


class HybridLinear(HybridModule):
    """y = x·Wᵀ (+ b) with W (and b) stored on hybrid synapses: the value is the analogue weight the
    memristor pairs hold; the hidden FeCAP integers, the levels and the ledger counters are buffers.

    Args:
        in_features, out_features: as ``torch.nn.Linear``.
        bias: a bias column — physically one more crossbar row driven by a constant input, made of the
            same synapses and counted in the ledger with them. ``False`` is the paper's setting.
        config: :class:`HybridConfig` (mode, hidden LSB, init, transfer, ledger costs); the layer keeps a
            copy (``layer.config``), fixed from then on (``HybridModule.check_config``).
        replicas: ``None`` for one chip (inputs (..., in), weight (out, in)); R for R independent chips
            trained at once (inputs (R, ..., in), weight (R, out, in)), each equal to its seed alone.
        seeds: one per replica (an int for one chip); default: drawn from torch's global generator.
        name: the layer's identity in the random streams; layers that share seeds need distinct names.
        device: where the state lives; ``.to(device)`` later moves it and the backend follows.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = False, *, config: HybridConfig | None = None,
                 replicas: int | None = None, seeds=None, name: str | None = None, device=None):
        super().__init__(config, replicas, seeds, name)
        in_features, out_features = positive_int("in_features", in_features), positive_int("out_features", out_features)
        self.in_features, self.out_features = in_features, out_features
        n, single = self.n_replicas, replicas is None
        self.weight = self._add_hybrid("weight", _Slot("linear", (n, in_features, out_features), single), device)
        if bias:
            self.bias = self._add_hybrid("bias", _Slot("bias", (n, out_features), single), device)
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def check_input(self, x: torch.Tensor) -> None:
        """A clear error for a wrong dtype or shape, before any work."""
        self._check_dtype(x)
        if x.dim() == 0 or x.shape[-1] != self.in_features:
            raise ConfigError("HybridLinear input shape", tuple(x.shape), f"(..., {self.in_features}) (in_features)")
        if self.replicas is not None and (x.dim() < 2 or x.shape[0] != self.replicas):
            raise ConfigError("HybridLinear input shape", tuple(x.shape),
                              f"({self.replicas}, ..., {self.in_features}): one leading entry per replica")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if is_compiling():  # torch.compile: this layer runs eagerly (autograd_util.outside_compile)
            return outside_compile(HybridLinear.forward, self, x)
        self.check_input(x)
        self.check_written()
        if torch.is_grad_enabled() and (x.requires_grad or self.weight.requires_grad
                                        or (self.bias is not None and self.bias.requires_grad)):
            return _LinearFunction.apply(x, self.weight, self.bias, self)
        x3 = x.reshape(self.n_replicas, -1, self.in_features)
        b = self.crossbar("bias", self.bias.detach())[:, 0] if self.bias is not None else None
        out = passes.linear_eval(self.crossbar("weight", self.weight.detach()), x3, b)
        return out.reshape(*x.shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}, "
                f"mode={self.mode}, replicas={self.replicas}" + (f", name={self.rng_name!r}" if self.rng_name else ""))
