"""``convert``: a copy of any model with its ``nn.Linear``/``nn.Conv2d`` layers on hybrid synapses."""
from __future__ import annotations

import copy
import fnmatch
import warnings
from typing import Callable, Iterable

import torch
from torch import nn

from ..circuit.layout import PAPER_LAYOUT
from ..errors import ConfigError, FerristorWarning
from .config import HybridConfig
from .conv import HybridConv2d
from .hybrid import HybridModule
from .linear import HybridLinear

WEIGHT_SCALES = ("paper", "fit")  # or a number, or a function (name, weight) -> LSB


def _selector(include) -> Callable[[str, nn.Module], bool]:
    if include is None:
        return lambda name, module: True
    if callable(include):
        return include
    patterns = [include] if isinstance(include, str) else include
    if not isinstance(patterns, (list, tuple, set, frozenset)) or not all(isinstance(p, str) for p in patterns):
        raise ConfigError("include", include, "None, a glob on module names, a list of globs or a predicate (name, module)")
    return lambda name, module: any(fnmatch.fnmatchcase(name, p) for p in patterns)


def _config(config) -> HybridConfig:
    """The layers' config: a HybridConfig, a mode name (``'hm-var'``: the paper's config in that mode), or None."""
    if config is None:
        return HybridConfig()
    if isinstance(config, str):
        return HybridConfig(mode=config)  # HybridConfig checks the mode and names it
    if not isinstance(config, HybridConfig):
        raise ConfigError("config", type(config).__name__, "a HybridConfig, a mode name such as 'hm-var', or None")
    return config


def _check_finite(name: str, kind: str, tensor: torch.Tensor) -> None:
    bad = ~torch.isfinite(tensor.detach())
    if bad.any():
        raise ConfigError(f"{name or '(the model itself)'}.{kind}", f"{int(bad.sum())} non-finite value(s) (NaN or ±inf)",
                          "finite float weights to map onto the hidden grid")


def _lsb(name: str, weight: torch.Tensor, config: HybridConfig, scale) -> float:
    """Real value of one hidden LSB for a layer's float weights: the paper's (``'paper'``), one
    that puts the largest |weight| on the top of the grid (``'fit'``), a number, or what a function
    ``scale(name, weight)`` returns (None: the config's)."""
    if callable(scale):
        value = scale(name, weight.detach())
        if value is None:
            return config.hidden_lsb
        if isinstance(value, torch.Tensor) and value.numel() == 1:
            value = float(value)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 or value == float("inf"):
            raise ConfigError("weight_scale", f"{getattr(scale, '__name__', scale)}({name!r}, …) = {value!r}",
                              "a positive, finite LSB value from a weight_scale function")
        return float(value)
    if scale == "paper":
        return config.hidden_lsb
    if scale == "fit":
        top = float(weight.detach().abs().max())
        return top / config.layout.max_hidden if top > 0 else config.hidden_lsb
    if isinstance(scale, (int, float)) and not isinstance(scale, bool) and scale > 0:
        return float(scale)
    raise ConfigError("weight_scale", scale, "'paper', 'fit', a positive LSB value or a function (name, weight) -> LSB")


def quantile_scale(q: float, max_hidden: int = PAPER_LAYOUT.max_hidden) -> Callable[[str, torch.Tensor], float | None]:
    """A ``weight_scale`` putting the q-quantile of each layer's |weight| on the top of the grid,
    ``max_hidden`` LSB (``q=1`` is ``'fit'``): finer levels for the bulk of the weights, the largest
    (1 − q) saturated. An all-zero layer keeps the config's LSB."""
    if isinstance(q, bool) or not isinstance(q, (int, float)) or not 0 < q <= 1:
        raise ConfigError("q", q, "a quantile in (0, 1]")

    def scale(name: str, weight: torch.Tensor) -> float | None:
        a = weight.abs().flatten().to(torch.float64)
        top = float(a.max() if q == 1 else torch.quantile(a, q))
        return top / max_hidden if top > 0 else None
    scale.__name__ = f"quantile_scale({q:g})"
    return scale


def _hybrid_of(name: str, m: nn.Module, config: HybridConfig, seed: int) -> HybridModule:
    kw = dict(config=config, seeds=seed, name=name, device=m.weight.device)
    if isinstance(m, nn.Linear):
        return HybridLinear(m.in_features, m.out_features, m.bias is not None, **kw)
    if m.padding_mode != "zeros" or isinstance(m.padding, str):
        raise ConfigError(f"{name}.padding", m.padding if isinstance(m.padding, str) else m.padding_mode,
                          "integer zero padding (or leave the layer out with include=…)")
    return HybridConv2d(m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding, m.dilation, m.groups,
                        m.bias is not None, **kw)


def convert(model: nn.Module, config: HybridConfig | str | None = None, include=None, *, seed: int | None = None,
            weight_scale="paper") -> nn.Module:
    """A copy of ``model`` with its ``nn.Linear`` and ``nn.Conv2d`` layers replaced by ``HybridLinear``
    / ``HybridConv2d`` (one chip), their float weights mapped onto the hidden grid and programmed.

    Args:
        config: the hybrid layers' config, or a mode name (``'hm-var'``) for the paper's config in that mode.
        include: which layers — None (all), a glob or list of globs on module names (``"classifier.*"``),
            or a predicate ``f(name, module) -> bool``.
        seed: the chip's seed (its layers' random streams differ by name); default: drawn from torch.
        weight_scale: real value of one hidden LSB per layer — ``'paper'`` (the config's, 2⁻⁹, digest §4
            [I]), ``'fit'`` (the layer's largest |weight| on the top of the 10-bit grid), a number, or a
            function ``(layer name, float weight) -> LSB`` such as :func:`quantile_scale` ``(0.99)``.
            Weights (and the bias, on its layer's scale) are rounded to the nearest LSB and saturate at
            ±511 LSB; the layer keeps that LSB (``layer.config.hidden_lsb``), so its analogue weights
            are levels of 64 LSB on the same scale as the float weights, and its updates too.

    The initial programming is reported apart in the ledger. Layers with parameters of other types
    (normalisations, embeddings, …) stay as they are, in float; they are listed in a warning and in
    ``converted.hybrid_conversion`` with the layers that were converted.
    """
    config = _config(config)
    select = _selector(include)
    if seed is None:
        seed = int(torch.randint(0, 2 ** 62, ()))
    converted = copy.deepcopy(model)
    done, left = [], []
    for name, module in list(converted.named_modules()):
        if type(module) in (nn.Linear, nn.Conv2d):
            if not select(name, module):
                left.append((name, type(module).__name__, "not included"))
                continue
            _check_finite(name, "weight", module.weight)
            if module.bias is not None:
                _check_finite(name, "bias", module.bias)
            lsb = _lsb(name, module.weight, config, weight_scale)
            # the layer's own LSB: its analogue weights (level × 2^shift LSB) and its updates are on this scale
            hybrid = _hybrid_of(name, module, config.replace(hidden_lsb=lsb), seed)
            hybrid.set_float_weights_("weight", module.weight)
            if module.bias is not None:
                hybrid.set_float_weights_("bias", module.bias)
            if name:
                _replace(converted, name, hybrid)
            else:  # the model is itself one layer
                converted = hybrid
            done.append((name, type(module).__name__))
        elif not isinstance(module, HybridModule) and any(True for _ in module.parameters(recurse=False)):
            left.append((name, type(module).__name__, "unsupported type"))
    converted.hybrid_conversion = {"converted": done, "left": left}
    unsupported = [f"{n or '(the model itself)'} ({t})" for n, t, why in left if why == "unsupported type"]
    if unsupported:
        warnings.warn(FerristorWarning("left in float (no hybrid version of their type): " + ", ".join(unsupported)),
                      stacklevel=2)
    return converted


def _replace(root: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = root.get_submodule(parent_name) if parent_name else root
    setattr(parent, child, new)


def converted_layers(model: nn.Module) -> Iterable[tuple[str, HybridModule]]:
    return ((n, m) for n, m in model.named_modules() if isinstance(m, HybridModule))
