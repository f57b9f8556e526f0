"""``HybridMLP``: the paper's networks — ``HybridLinear`` layers, each followed by a normalisation and
(but the last) a ReLU — with the whole forward and backward pass in one compiled call on the CPU.

The fused path computes exactly what the layers compute one by one (the same kernels, the same
order), and hands each layer the same (x, δ) factors, so it is only faster, never different.
The model returns logits; the loss (softmax + cross-entropy, or sigmoid + binary cross-entropy)
is the training loop's, as in any PyTorch model.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..backend import backend_for, cpu_module
from ..config_base import check_bool, check_choice, check_number, param
from ..errors import ConfigError
from . import functional as F
from .config import HybridConfig
from .autograd_util import grad_use
from .hybrid import _seed_list
from .linear import HybridLinear
from .norm import NARROWEST_LAYER_NORM, Normalize, narrow_layer_norm


@dataclass
class NetworkSpec:
    sizes: tuple[int, ...] = param((784, 200, 100, 10), unit="neuron", source="digest §4 table [P]")
    norm: str = param("layer", source="digest §4 table [P]", doc="'layer' (LayerNorm γ=1, β=0 after every layer), 'batch' or 'none'")
    output: str = param("softmax", source="digest §4 table [P]", doc="'softmax' + cross-entropy, or 'sigmoid' + binary cross-entropy")
    bias: bool = param(False, source="digest §4 [I]", doc="a bias column per layer (a crossbar row driven by a constant input); the paper does not say (none by default)")
    output_norm: bool = param(True, source="digest §4 table [P] 'after every layer'; False [I]", doc="the normalisation after the output layer too (True, the paper's reading); False leaves the logits raw")

    def __post_init__(self):
        if not isinstance(self.sizes, (list, tuple)):  # a number or a string given where a list belongs
            raise ConfigError("sizes", self.sizes, "a list of layer sizes, input first, e.g. [784, 200, 100, 10]")
        self.sizes = tuple(self.sizes)
        if len(self.sizes) < 2:
            raise ConfigError("sizes", self.sizes, "at least an input and an output size")
        for s in self.sizes:
            check_number("sizes", s, lo=1, integer=True)
        check_choice("norm", self.norm, ("layer", "batch", "none"))
        check_choice("output", self.output, ("softmax", "sigmoid"))
        check_bool("bias", self.bias)
        check_bool("output_norm", self.output_norm)
        if self.output == "sigmoid" and self.sizes[-1] != 1:
            raise ConfigError("sizes", self.sizes, "a single output unit with output='sigmoid'")
        if self.norm == "layer":  # LayerNorm over 1 or 2 values: 0 or ±1 whatever they are, no gradient
            if self.output_norm and self.sizes[-1] < NARROWEST_LAYER_NORM:
                raise ConfigError("output_norm", True, reason=f"with norm 'layer', the output layer's "
                                  f"{narrow_layer_norm(self.sizes[-1])[2:]}: set output_norm to False (raw logits), "
                                  "or norm to 'batch' or 'none'")
            narrow = [s for s in self.sizes[1:-1] if s < NARROWEST_LAYER_NORM]
            if narrow:
                raise ConfigError("sizes", list(self.sizes), reason=f"with norm 'layer', a hidden "
                                  f"{narrow_layer_norm(narrow[0])[2:]}: hidden layers need at least "
                                  f"{NARROWEST_LAYER_NORM} units, or norm 'batch' or 'none'")


_NO_PARTS = np.empty((1, 8, 0), np.float32)  # mlp_train's scratch when it reads the weights row-wise


class _FusedPass:
    """One fused pass's arrays (numba, ``passes_cpu``): the forward, and either the backward from
    ∂L/∂logits (autograd) or the loss and backward in the same call (``train``, the fast step)."""

    def __init__(self, mlp: "HybridMLP", x3: np.ndarray, reuse: bool = False):
        NORM_CODE = cpu_module("nn.passes_cpu").NORM_CODE
        n_rep, n_b = x3.shape[0], x3.shape[1]
        self.mlp, self.code, self.norm_last = mlp, NORM_CODE[mlp.spec.norm], mlp.spec.output_norm
        self.ws, self.bs = mlp._weight_arrays(), mlp._bias_arrays()
        bufs = mlp._buffers_for(n_rep, n_b) if reuse else _allocate(mlp.spec.sizes, n_rep, n_b)
        self.acts, self.normed, self.deltas, self.invs = bufs
        self.acts[0][:] = x3

    def forward(self) -> torch.Tensor:
        P = cpu_module("nn.passes_cpu")
        P.mlp_forward(P.slots(self.ws), P.slots(self.bs), P.slots(self.acts), P.slots(self.normed), self.invs, self.code,
                      self.norm_last, np.float32(F.EPS))
        return torch.from_numpy(self.normed[-1].copy())

    def backward(self, g: torch.Tensor, uses: list | None = None) -> list:
        """Hands every layer its factors (x, δ) from ∂L/∂logits ``g``; returns the dense weight (then
        bias) gradients of layers that do not capture factors (None for those that do). ``uses``: per
        weight (then bias), what ``autograd_util.grad_use`` said (default: all recorded)."""
        self.deltas[-1][:] = g.detach().numpy()
        P = cpu_module("nn.passes_cpu")
        P.mlp_backward(P.slots(self.ws), P.slots(self.normed), self.invs, P.slots(self.deltas), self.code, self.norm_last)
        return self._record(uses)

    def train(self, y: np.ndarray, batch: int) -> float:
        """Forward, loss (``functional.cross_entropy`` / ``binary_cross_entropy_with_logits``) and
        backward in one call; hands the layers their factors; returns the loss."""
        P = cpu_module("nn.passes_cpu")
        sigmoid = self.mlp.spec.output == "sigmoid"
        ws = P.slots(self.ws)
        losses = P.mlp_train(ws, P.slots(self.bs), ws, _NO_PARTS, False, P.slots(self.acts), P.slots(self.normed), self.invs,
                             P.slots(self.deltas), y, sigmoid, 1.0 / batch, self.code, self.norm_last, np.float32(F.EPS))
        self._record()
        return float(np.float32(float(losses.sum()) / batch))  # as functional.cross_entropy returns it

    def _record(self, uses: list | None = None) -> list:
        layers = self.mlp.layers
        n = len(layers)
        grads, bias_grads = [], []
        for li, (layer, a, d) in enumerate(zip(layers, self.acts, self.deltas)):
            grads.append(layer._hand_over("weight", a, d, "record" if uses is None else uses[li]))
            if layer.bias is not None:  # the constant input 1, as HybridLinear's backward records it
                bi = n + len(bias_grads)
                bias_grads.append(layer._hand_over("bias", None, d, "record" if uses is None else uses[bi]))
        return grads + bias_grads


def _allocate(sizes, n_rep: int, n_b: int):
    acts = tuple(np.empty((n_rep, n_b, s), np.float32) for s in sizes[:-1])
    normed = tuple(np.empty((n_rep, n_b, s), np.float32) for s in sizes[1:])
    deltas = tuple(np.empty((n_rep, n_b, s), np.float32) for s in sizes[1:])
    return acts, normed, deltas, np.ones((n_rep, n_b, len(sizes) - 1), np.float32)


class _FusedMLP(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, mlp, *params):
        ctx.fused = _FusedPass(mlp, x.detach().numpy())
        return ctx.fused.forward()

    @staticmethod
    def backward(ctx, g):
        # as HybridLinear: a gradient goes to the layer only where the engine accumulates it
        # (inputs x, mlp, *params: mlp is no tensor, so param i is next_functions[i - 1])
        uses = [grad_use(ctx, i, i - 1) for i in range(2, len(ctx.needs_input_grad))]
        return (None, None, *ctx.fused.backward(g, uses))


class HybridMLP(nn.Module):
    """A multilayer perceptron of hybrid layers (``layers``) with normalisations (``norms``) and ReLU.

    All layers share the chip's seeds (one per replica); their random streams differ by name
    (``fc1``, ``fc2``, …). Inputs (B, in) for one chip, (R, B, in) with ``replicas=R``."""

    def __init__(self, spec: NetworkSpec | tuple = NetworkSpec(), *, config: HybridConfig | None = None,
                 replicas: int | None = None, seeds=None, device=None):
        super().__init__()
        self.spec = spec if isinstance(spec, NetworkSpec) else NetworkSpec(tuple(spec))
        self.config = config or HybridConfig()
        self.replicas = replicas
        seeds = _seed_list(seeds, replicas)
        seeds = seeds if replicas is not None else seeds[0]
        sizes = self.spec.sizes
        self.layers = nn.ModuleList(
            HybridLinear(i, o, self.spec.bias, config=self.config, replicas=replicas, seeds=seeds, name=f"fc{li + 1}",
                         device=device)
            for li, (i, o) in enumerate(zip(sizes[:-1], sizes[1:])))
        norm = self.spec.norm
        normed = [norm != "none"] * (len(self.layers) - 1) + [norm != "none" and self.spec.output_norm]
        self.norms = nn.ModuleList(Normalize(norm, replicas) if on else nn.Identity() for on in normed)
        self.act = nn.ReLU()

    @property
    def mode(self) -> str:
        return self.config.mode

    @property
    def n_replicas(self) -> int:
        return self.replicas or 1

    def __getstate__(self):
        # the GPU chunks' captured graphs (``experiments.fast_step``) are a cache of this process and
        # device: a copy or a pickle of the model starts without them
        state = super().__getstate__()
        state.pop("_gpu_chunks", None)
        return state

    def fused_ok(self, x: torch.Tensor) -> bool:
        return self._fused(x)

    def _fused(self, x: torch.Tensor) -> bool:
        """The one-call path: CPU training passes of a LayerNorm/none MLP."""
        return (torch.is_grad_enabled() and not x.requires_grad and self.spec.norm != "batch"
                and x.dtype == torch.float32 and backend_for(x.device) == "numba"
                and all(layer.weight.requires_grad and layer.weight.device.type == "cpu"
                        and (layer.bias is None or layer.bias.requires_grad) for layer in self.layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.layers[0].check_input(x)
        if self._fused(x):
            lead = x.shape[:-1]
            out = _FusedMLP.apply(self._x3(x), self, *(layer.weight for layer in self.layers),
                                  *(layer.bias for layer in self.layers if layer.bias is not None))
            return out.reshape(*lead, self.spec.sizes[-1])
        h = x
        last = len(self.layers) - 1
        for li, (layer, norm) in enumerate(zip(self.layers, self.norms)):
            h = norm(layer(h))
            if li < last:
                h = self.act(h)
        return h

    def _x3(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(self.n_replicas, -1, x.shape[-1]).contiguous()

    def train_pass(self, x: np.ndarray, y: np.ndarray) -> float:
        """``loss = loss_fn(self(x), y); loss.backward()`` with the default loss in one compiled call,
        without the autograd engine (``experiments.fast_step``): the same kernels, the same bits.
        x (R, B, in) or (B, in) and y as numpy arrays; requires the fused path (:meth:`fused_ok`)."""
        fused = _FusedPass(self, x.reshape(self.n_replicas, -1, x.shape[-1]), reuse=True)
        return fused.train(y.reshape(self.n_replicas, -1), y.shape[-1] if y.ndim else 1)

    def _weight_arrays(self) -> tuple:
        """numpy crossbar views of the layers' analogue weights, cached while their storage stays."""
        ptrs = tuple(layer.weight.data_ptr() for layer in self.layers)
        if getattr(self, "_warrays", (None,))[0] != ptrs:
            self._warrays = (ptrs, tuple(layer.crossbar("weight", layer.weight.detach()).numpy() for layer in self.layers))
        return self._warrays[1]

    def _bias_arrays(self) -> tuple:
        """(R, O) numpy views of the layers' analogue biases, or (R, 0) for layers without; cached
        while their storage stays."""
        ptrs = tuple(layer.bias.data_ptr() if layer.bias is not None else 0 for layer in self.layers)
        if getattr(self, "_barrays", (None,))[0] != ptrs:
            empty = np.zeros((self.n_replicas, 0), np.float32)
            self._barrays = (ptrs, tuple(empty if layer.bias is None else
                                         np.ascontiguousarray(layer._cpu_arrays("bias")["param"][:, 0])
                                         for layer in self.layers))
        return self._barrays[1]

    def _buffers_for(self, n_rep: int, n_b: int):
        key = (n_rep, n_b)
        if getattr(self, "_bufs", (None,))[0] != key:
            self._bufs = (key, _allocate(self.spec.sizes, n_rep, n_b))
        return self._bufs[1]

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Class predictions: argmax of the logits, or logit > 0 for a sigmoid output."""
        out = self(x)
        return out.argmax(-1) if self.spec.output == "softmax" else (out[..., 0] > 0).long()

    def flush_counts(self) -> None:
        for layer in self.layers:
            layer.flush_counts()


_HOOKS = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")


def _hooked(model: nn.Module) -> bool:
    """Hooks on the model, a submodule or every module: the compiled chunks would not call them."""
    from torch.nn.modules import module as M
    return any(getattr(M, "_global" + h, None) for h in _HOOKS) or any(
        getattr(m, h, None) for m in model.modules() for h in _HOOKS)


def mlp_view(model: nn.Module) -> HybridMLP | None:
    """The :class:`HybridMLP` a plain ``nn.Sequential`` of ``HybridLinear`` (all with a bias or none),
    each but the last followed by an optional ``Normalize('layer')`` and a ReLU — the last by an optional
    ``Normalize('layer')`` — computes, built on the very same layers (shared, not copied), so its
    compiled training chunks train the user's model; None for any other model. Bit for bit the
    same steps: the layers, ``Normalize`` and the fused path run the same kernels in the same
    order (``tests/experiments/test_fit.py``). The view is not registered in the model. A model
    with hooks on any module has none (the chunks would not call them)."""
    if type(model) is not nn.Sequential or _hooked(model):  # a subclass may override forward
        return None
    mods, layers, normed = list(model), [], []
    i = 0
    while i < len(mods):
        layer = mods[i]
        if type(layer) is not HybridLinear:
            return None
        layers.append(layer)
        i += 1
        has_norm = i < len(mods) and type(mods[i]) is Normalize and mods[i].kind == "layer"
        normed.append(has_norm)
        i += has_norm
        if i < len(mods):
            if type(mods[i]) is not nn.ReLU:
                return None
            i += 1
            if i == len(mods):  # a ReLU after the last layer: not an MLP's logits
                return None
    if not layers or len({id(layer) for layer in layers}) < len(layers):  # a layer used twice: tied weights
        return None
    hidden = normed[:-1]
    if len(set(hidden)) > 1 or (hidden and not hidden[0] and normed[-1]):
        return None
    if len({layer.replicas for layer in layers}) != 1 or len({layer.bias is None for layer in layers}) != 1 or any(
            a.out_features != b.in_features for a, b in zip(layers, layers[1:])):
        return None
    if any(on and layer.out_features < NARROWEST_LAYER_NORM for on, layer in zip(normed, layers)):
        return None  # a spec would refuse it: the general path runs it, and Normalize warns
    norm = "layer" if (hidden[0] if hidden else normed[-1]) else "none"
    sizes = (layers[0].in_features, *(layer.out_features for layer in layers))
    view = HybridMLP.__new__(HybridMLP)
    nn.Module.__init__(view)
    view.spec = NetworkSpec(sizes, norm=norm, output="sigmoid" if sizes[-1] == 1 else "softmax",
                            bias=layers[0].bias is not None, output_norm=normed[-1] or norm == "none")
    view.config, view.replicas = layers[0].config, layers[0].replicas
    view.layers = nn.ModuleList(layers)
    view.norms = nn.ModuleList(Normalize("layer", view.replicas) if on else nn.Identity() for on in normed)
    view.act = nn.ReLU()
    view.train(model.training)
    return view
