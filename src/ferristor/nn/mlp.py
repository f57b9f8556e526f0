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

from ..backend import backend_for
from ..config_base import check_choice, check_number, param
from ..errors import ConfigError
from . import functional as F
from .config import HybridConfig
from .hybrid import _seed_list
from .linear import HybridLinear
from .norm import Normalize


@dataclass
class NetworkSpec:
    sizes: tuple[int, ...] = param((784, 200, 100, 10), unit="neuron", source="digest §4 table [P]")
    norm: str = param("layer", source="digest §4 table [P]", doc="'layer' (LayerNorm γ=1, β=0 after every layer), 'batch' or 'none'")
    output: str = param("softmax", source="digest §4 table [P]", doc="'softmax' + cross-entropy, or 'sigmoid' + binary cross-entropy")
    bias: bool = param(False, source="digest §4 [I]", doc="a bias column per layer (a crossbar row driven by a constant input); the paper has none")

    def __post_init__(self):
        self.sizes = tuple(self.sizes)
        if len(self.sizes) < 2:
            raise ConfigError("sizes", self.sizes, "at least an input and an output size")
        for s in self.sizes:
            check_number("sizes", s, lo=1, integer=True)
        check_choice("norm", self.norm, ("layer", "batch", "none"))
        check_choice("output", self.output, ("softmax", "sigmoid"))
        if self.output == "sigmoid" and self.sizes[-1] != 1:
            raise ConfigError("sizes", self.sizes, "a single output unit with output='sigmoid'")


class _FusedMLP(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, mlp, *weights):
        from .passes_cpu import NORM_CODE, mlp_forward
        n_rep, n_b = x.shape[0], x.shape[1]
        ws = tuple(layer.crossbar("weight", w.detach()).numpy() for layer, w in zip(mlp.layers, weights))
        sizes = mlp.spec.sizes
        acts = tuple([x.detach().numpy().copy()] + [np.empty((n_rep, n_b, s), np.float32) for s in sizes[1:-1]])
        normed = tuple(np.empty((n_rep, n_b, s), np.float32) for s in sizes[1:])
        invs = np.ones((n_rep, n_b, len(ws)), np.float32)
        code = NORM_CODE[mlp.spec.norm]
        mlp_forward(ws, acts, normed, invs, code, np.float32(F.EPS))
        ctx.mlp, ctx.ws, ctx.acts, ctx.normed, ctx.invs, ctx.code = mlp, ws, acts, normed, invs, code
        return torch.from_numpy(normed[-1].copy())

    @staticmethod
    def backward(ctx, g):
        from .passes_cpu import mlp_backward
        deltas = tuple(np.empty_like(n) for n in ctx.normed)
        deltas[-1][:] = g.detach().numpy()
        mlp_backward(ctx.ws, ctx.normed, ctx.invs, deltas, ctx.code)
        grads = []
        for layer, a, d in zip(ctx.mlp.layers, ctx.acts, deltas):
            dense = layer._record_gradient("weight", a.shape[1], x=torch.from_numpy(a), delta=torch.from_numpy(d))
            grads.append(layer._slots["weight"].from_crossbar(dense) if dense is not None else None)
        return (None, None, *grads)


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
        self.norms = nn.ModuleList(Normalize(norm, replicas) if norm != "none" else nn.Identity() for _ in self.layers)
        self.act = nn.ReLU()

    @property
    def mode(self) -> str:
        return self.config.mode

    @property
    def n_replicas(self) -> int:
        return self.replicas or 1

    def _fused(self, x: torch.Tensor) -> bool:
        """The one-call path: CPU training passes of a LayerNorm/none MLP without bias."""
        return (torch.is_grad_enabled() and not x.requires_grad and self.spec.norm != "batch" and not self.spec.bias
                and x.dtype == torch.float32 and backend_for(x.device) == "numba"
                and all(layer.weight.requires_grad and layer.weight.device.type == "cpu" for layer in self.layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.layers[0].check_input(x)
        if self._fused(x):
            lead = x.shape[:-1]
            x3 = x.reshape(self.n_replicas, -1, x.shape[-1]).contiguous()
            out = _FusedMLP.apply(x3, self, *(layer.weight for layer in self.layers))
            return out.reshape(*lead, self.spec.sizes[-1])
        h = x
        last = len(self.layers) - 1
        for li, (layer, norm) in enumerate(zip(self.layers, self.norms)):
            h = norm(layer(h))
            if li < last:
                h = self.act(h)
        return h

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Class predictions: argmax of the logits, or logit > 0 for a sigmoid output."""
        out = self(x)
        return out.argmax(-1) if self.spec.output == "softmax" else (out[..., 0] > 0).long()

    def flush_counts(self) -> None:
        for layer in self.layers:
            layer.flush_counts()
