"""``convert``: a copy of any model with its ``nn.Linear``/``nn.Conv2d`` layers on hybrid synapses."""
from __future__ import annotations

import copy
import dataclasses
import fnmatch
import math
import warnings
from typing import Callable, Iterable

import torch
from torch import nn

from ..circuit.layout import PAPER_LAYOUT
from ..errors import ConfigError, FerristorWarning
from ..rule.streams import check_seed
from .config import HybridConfig, as_config
from .conv import HybridConv2d
from .hybrid import HybridModule
from .linear import HybridLinear

WEIGHT_SCALES = ("paper", "fit")  # or a number, or a function (name, weight) -> LSB

# Warned about: a layer whose weights or bias lie beyond its grid by more than this many analogue
# levels (64 LSB each). A value clipped by less loses less than the level truncation costs every
# weight (the analogue weight of a value on the top already reads as level 7), and PyTorch's default
# init draws biases from the same range as the weights, so under 'fit' a small layer's largest bias
# often sits a few LSB beyond the largest |weight|: worth no warning.
CLIP_WARN_LEVELS = 1
# Warned about: a layer in which more than this fraction of its nonzero float weights read as 0 on
# the chip (hidden integer below the first analogue level). 'paper' on PyTorch's default init puts
# every weight of a LeNet-5's last four layers there (100 %); bell-shaped trained weights under
# 'fit' put 30-87 % there and the layer still computes with its largest ones, so a lower threshold
# would warn about the recommended scale on most trained networks.
VANISH_WARN_FRACTION = 0.9


def _selector(include) -> Callable[[str, nn.Module], bool]:
    if include is None:
        return lambda name, module: True
    if callable(include):
        return include
    patterns = [include] if isinstance(include, str) else include
    if not isinstance(patterns, (list, tuple, set, frozenset)) or not all(isinstance(p, str) for p in patterns):
        raise ConfigError("include", include, "None, a glob on module names, a list of globs or a predicate (name, module)")
    return lambda name, module: any(fnmatch.fnmatchcase(name, p) for p in patterns)


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
        follows = getattr(scale, "follows_layout", False)  # quantile_scale without its own max_hidden
        value = scale(name, weight.detach(), config.layout.max_hidden) if follows else scale(name, weight.detach())
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


def _scale_text(scale) -> str:
    if callable(scale):
        return f"weight_scale={getattr(scale, '__name__', type(scale).__name__)}"
    return f"weight_scale={scale!r}"


def _ceil3(x: float) -> float:
    """x rounded up to 3 significant digits: a bound that, printed, still holds."""
    e = math.floor(math.log10(x)) - 2
    return math.ceil(x / 10 ** e - 1e-9) * 10 ** e


def _quantisation_problems(name: str, module: nn.Module, config: HybridConfig, lsb: float, scale) -> list[str]:
    """What rounding ``module``'s float weights (and bias) onto the grid of ``lsb`` loses, in words:
    values clipped beyond the grid (``CLIP_WARN_LEVELS``) and weights that read as 0 (``VANISH_WARN_FRACTION``).
    Rounded as ``HybridModule.set_float_weights_`` rounds them (float32, nearest)."""
    m, step = config.layout.max_hidden, 2 ** config.layout.level_shift
    top = m * lsb
    who = f"layer {name!r}" if name else "the model (one layer)"
    problems = []
    # a weight_scale function chose its LSB seeing the weights: saturating some is its choice (quantile_scale)
    slots = ("bias",) if callable(scale) else ("weight", "bias")
    clipped = []  # (slot, how many, of how many, largest |value|)
    for slot in slots:
        value = getattr(module, slot, None)
        if value is None:
            continue
        v = value.detach().to(torch.float32)
        out = torch.round(v / lsb).abs() > m
        if out.any():
            clipped.append((slot, int(out.sum()), v.numel(), float(v.abs().max())))
    largest = max((c[3] for c in clipped), default=0.0)
    if clipped and largest / lsb > m + CLIP_WARN_LEVELS * step:
        what = " and ".join(f"{n:,} of {total:,} {slot} values" for slot, n, total, _ in clipped)
        need = _ceil3(largest / m)
        tops = {slot: top_value for slot, _, _, top_value in clipped}
        why = ""
        if "bias" in tops and (scale == "fit" or callable(scale)):
            why = " (a bias is rounded on its layer's scale, which the weights alone set)"
        fixes = [f"a weight_scale of ≥ {need:.3g} per LSB for this layer holds them, with levels "
                 f"{need / lsb:.3g}× as coarse (a number sets every layer's LSB, a function (name, weight) -> LSB "
                 "this one's)"]
        if "weight" in tops and scale != "fit":
            bias_larger = tops.get("bias", 0.0) > float(module.weight.detach().abs().max())
            fixes.append("weight_scale='fit' holds every weight" + (" (not the larger bias)" if bias_larger else ""))
        fixes.append("or leave the layer in float (include=…)")
        problems.append(f"{what} lie beyond its grid and were clipped: the largest |value| is {largest:.4g}, the "
                        f"grid holds ±{top:.4g} (±{m} LSB of {lsb:.4g}, {_scale_text(scale)}){why}; "
                        + ", ".join(fixes))
    w = module.weight.detach().to(torch.float32)
    nonzero = w != 0
    n = int(nonzero.sum())
    zero = int((nonzero & (torch.round(w / lsb).abs() < step)).sum())
    if n and zero / n > VANISH_WARN_FRACTION:
        if scale == "fit":
            fix = ("weight_scale=quantile_scale(0.99) (ferristor.nn) puts each layer's 99th percentile of |w| on the top "
                   "of the grid: finer levels for the bulk, the largest 1 % saturated")
        elif callable(scale):
            fix = "a weight_scale giving this layer a smaller LSB ('fit', or quantile_scale(q) with a smaller q)"
        else:
            fix = ("weight_scale='fit' puts each layer's largest |weight| on the top of the grid "
                   "(a level every max|w|/8)")
        problems.append(f"{zero:,} of its {n:,} nonzero weights ({math.floor(100 * zero / n)} %) read as 0 on the "
                        f"chip: below the first analogue level, {step} LSB = {step * lsb:.4g} ({_scale_text(scale)}), "
                        f"where its largest |weight| is {float(w.abs().max()):.4g}; {fix}")
    return [f"convert: {who}: " + "; also ".join(problems)] if problems else []


def quantile_scale(q: float, max_hidden: int | None = None) -> Callable[[str, torch.Tensor], float | None]:
    """A ``weight_scale`` putting the q-quantile of each layer's |weight| on the top of the grid,
    ``max_hidden`` LSB (``q=1`` is ``'fit'``): finer levels for the bulk of the weights, the largest
    (1 − q) saturated. An all-zero layer keeps the config's LSB. ``max_hidden`` None: the top of
    the converted layers' own layout (``convert`` passes it; 511 for the paper's 10 bits)."""
    if isinstance(q, bool) or not isinstance(q, (int, float)) or not 0 < q <= 1:
        raise ConfigError("q", q, "a quantile in (0, 1]")

    def scale(name: str, weight: torch.Tensor, layout_max: int = PAPER_LAYOUT.max_hidden) -> float | None:
        a = weight.abs().flatten().to(torch.float64)
        top = float(a.max() if q == 1 else torch.quantile(a, q))
        return top / (max_hidden or layout_max) if top > 0 else None
    scale.__name__ = f"quantile_scale({q:g})"
    scale.follows_layout = max_hidden is None
    return scale


def _hybrid_of(name: str, m: nn.Module, config: HybridConfig, seed: int) -> HybridModule:
    kw = dict(config=config, seeds=seed, name=name, device=m.weight.device)
    if isinstance(m, nn.Linear):
        return HybridLinear(m.in_features, m.out_features, m.bias is not None, **kw)
    return HybridConv2d(m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding, m.dilation, m.groups,
                        m.bias is not None, m.padding_mode, **kw)


_MODULE_HOOKS = {"_forward_pre_hooks": "forward pre-hook", "_forward_hooks": "forward hook",
                 "_backward_pre_hooks": "backward pre-hook", "_backward_hooks": "backward hook",
                 "_state_dict_pre_hooks": "state_dict pre-hook", "_state_dict_hooks": "state_dict hook",
                 "_load_state_dict_pre_hooks": "load_state_dict pre-hook",
                 "_load_state_dict_post_hooks": "load_state_dict post-hook"}
_TENSOR_HOOKS = {"_backward_hooks": "gradient hook", "_post_accumulate_grad_hooks": "post-accumulate-grad hook"}


def _modules_and_paths(model: nn.Module) -> list[tuple[nn.Module, list[str]]]:
    """Every module of ``model`` once, with every path it is reachable under (a module used twice,
    ``self.block`` and ``self.blocks = nn.ModuleList([block, block])``, has several), in the order
    ``named_modules()`` visits them: the first path is the one ``named_modules()`` gives."""
    found: dict[int, tuple[nn.Module, list[str]]] = {}
    for name, module in model.named_modules(remove_duplicate=False):
        found.setdefault(id(module), (module, []))[1].append(name)
    return list(found.values())


def _param_path(module_path: str, name: str) -> str:
    return f"{module_path}.{name}" if module_path else name


def _check_untied(name: str, module: nn.Module, holders: dict[int, list[tuple[int, str, str]]]) -> None:
    """A layer's weight or bias held elsewhere too (``b.weight = a.weight``, an output layer tied to an
    embedding): one chip cannot be two layers' synapses, and two chips would silently untie them."""
    for slot in ("weight", "bias"):
        param = module._parameters.get(slot)
        if param is None:
            continue
        others = [path for owner, pname, path in holders[id(param)] if (owner, pname) != (id(module), slot)]
        if others:
            raise ConfigError(_param_path(name, slot), f"the same Parameter as {', '.join(others)}",
                              reason="tied parameters cannot be one chip in two layers (a hybrid layer keeps its "
                              "synapses to itself); untie them, or leave these layers in float (include=…)")


def _hooks_of(name: str, module: nn.Module) -> list[str]:
    """The hooks registered on a (float, original) layer or on its weight/bias, which its hybrid
    replacement does not have."""
    found = [f"{kind} on {name or '(the model itself)'}" for attr, kind in _MODULE_HOOKS.items()
             for _ in getattr(module, attr, None) or ()]
    for slot in ("weight", "bias"):
        param = module._parameters.get(slot)
        if param is not None:
            found += [f"{kind} on {_param_path(name, slot)}" for attr, kind in _TENSOR_HOOKS.items()
                      for _ in getattr(param, attr, None) or ()]
    return found


def _config_differences(kept: HybridConfig, asked: HybridConfig) -> str:
    """'mode hm-var, not fp' for the fields in which a hybrid layer's config differs from the one asked
    (its own LSB aside: convert chooses one per layer); '' where none does."""
    asked = asked.replace(hidden_lsb=kept.hidden_lsb)
    out = []
    for f in dataclasses.fields(kept):
        mine, theirs = getattr(kept, f.name), getattr(asked, f.name)
        if mine != theirs:  # a nested config is named, not printed whole
            out.append(f"{f.name} differs" if dataclasses.is_dataclass(mine) else f"{f.name} {mine!r}, not {theirs!r}")
    return ", ".join(out)


def convert(model: nn.Module, config: HybridConfig | str | None = None, include=None, *, seed: int | None = None,
            weight_scale="paper") -> nn.Module:
    """A copy of ``model`` with its ``nn.Linear`` and ``nn.Conv2d`` layers replaced by ``HybridLinear``
    / ``HybridConv2d`` (one chip), their float weights mapped onto the hidden grid and programmed.

    Args:
        config: the hybrid layers' config, or a mode name (``'hm-var'``) for the paper's config in that mode.
        include: which layers — None (all), a glob or list of globs on module names (``"classifier.*"``),
            or a predicate ``f(name, module) -> bool``. One that picks no layer is a ConfigError listing
            the layers it could pick (but ``[]``, which keeps the model in float on purpose).
        seed: the chip's seed (its layers' random streams differ by name); default: drawn from torch.
        weight_scale: real value of one hidden LSB per layer — ``'paper'`` (the config's, 2⁻⁹, digest §4
            [I]), ``'fit'`` (the layer's largest |weight| on the top of the 10-bit grid), a number, or a
            function ``(layer name, float weight) -> LSB`` such as :func:`quantile_scale` ``(0.99)``.
            Weights (and the bias, on its layer's scale) are rounded to the nearest LSB and saturate at
            ±511 LSB; the layer keeps that LSB (``layer.config.hidden_lsb``), so its analogue weights
            are levels of 64 LSB on the same scale as the float weights, and its updates too. One
            FerristorWarning per layer names what this loses: values clipped beyond the grid by more
            than ``CLIP_WARN_LEVELS`` level (a bias larger than the weights under ``'fit'``; weights too,
            but for a function's LSB), and more than ``VANISH_WARN_FRACTION`` of its nonzero weights
            reading as 0 — with the weight_scale that keeps them.

    The initial programming is reported apart in the ledger. Layers with parameters of other types
    (normalisations, embeddings, …) stay as they are, in float; they are listed in a warning and in
    ``converted.hybrid_conversion`` with the layers that were converted. Layers already hybrid (a
    converted model converted again) are kept as they are, with their hidden state, listed as "already
    hybrid"; a FerristorWarning names those whose config differs from ``config``.

    A layer reachable under several paths (the same module used twice) becomes ONE hybrid layer placed
    at every path — one chip used twice, as the float layer was — named (stream name, ledger, listing)
    by its first path in ``named_modules()`` order; ``hybrid_conversion['shared']`` maps that name to
    its other paths. ``include`` must pick all its paths or none. A weight or bias tied to another
    module's (``b.weight = a.weight``) is refused (ConfigError naming both). Each hybrid layer keeps
    its float layer's ``requires_grad`` (weight and bias) and ``training`` flag; hooks registered on
    the float layer or its parameters are not carried over (a FerristorWarning names them).
    """
    config = as_config(config)
    select = _selector(include)
    seed = int(torch.randint(0, 2 ** 62, ())) if seed is None else check_seed(seed)
    converted = copy.deepcopy(model)
    entries = _modules_and_paths(converted)
    holders: dict[int, list[tuple[int, str, str]]] = {}  # id(parameter) -> (id(module), its name there, path)
    for module, paths in entries:
        for pname, param in module._parameters.items():
            if param is not None:
                holders.setdefault(id(param), []).append((id(module), pname, _param_path(paths[0], pname)))
    done, left, shared, hooks, lost, others = [], [], {}, [], [], []
    for module, paths in entries:
        name = paths[0]
        if type(module) in (nn.Linear, nn.Conv2d):
            picked = [select(path, module) for path in paths]
            if any(picked) and not all(picked):
                yes = [p for p, s in zip(paths, picked) if s]
                no = [p for p, s in zip(paths, picked) if not s]
                raise ConfigError("include", getattr(include, "__name__", include) if callable(include) else include,
                                  reason=f"it picks {', '.join(yes)} but not {', '.join(no)}, the same layer under "
                                  "other paths: pick all of its paths or none (one chip cannot also stay in float)")
            if len(paths) > 1:
                shared[name] = list(paths[1:])
            if not picked[0]:
                left.append((name, type(module).__name__, "not included"))
                continue
            _check_untied(name, module, holders)
            _check_finite(name, "weight", module.weight)
            if module.bias is not None:
                _check_finite(name, "bias", module.bias)
            lsb = _lsb(name, module.weight, config, weight_scale)
            # the layer's own LSB: its analogue weights (level × 2^shift LSB) and its updates are on this scale
            hybrid = _hybrid_of(name, module, config.replace(hidden_lsb=lsb), seed)
            if hybrid.mode != "fp":  # fp copies the floats: nothing is rounded
                lost += _quantisation_problems(name, module, hybrid.config, lsb, weight_scale)
            hybrid.set_float_weights_("weight", module.weight)
            hybrid.weight.requires_grad_(module.weight.requires_grad)
            if module.bias is not None:
                hybrid.set_float_weights_("bias", module.bias)
                hybrid.bias.requires_grad_(module.bias.requires_grad)
            hybrid.train(module.training)
            hooks += _hooks_of(name, model.get_submodule(name))  # the copy lost its parameters' hooks
            for path in paths:  # the same hybrid layer everywhere the float one was
                if path:
                    _replace(converted, path, hybrid)
                else:  # the model is itself one layer
                    converted = hybrid
            done.append((name, type(module).__name__))
        elif isinstance(module, HybridModule):  # a chip already: kept, its hidden state with it, never reprogrammed
            left.append((name, type(module).__name__, "already hybrid"))
            if len(paths) > 1:
                shared[name] = list(paths[1:])
            differ = _config_differences(module.config, config)
            if differ:
                others.append(f"{name or '(the model itself)'} ({differ})")
        elif any(True for _ in module.parameters(recurse=False)):
            left.append((name, type(module).__name__, "unsupported type"))
            if len(paths) > 1:
                shared[name] = list(paths[1:])
    _check_picked(include, done, left)
    converted.hybrid_conversion = {"converted": done, "left": left, "shared": shared}
    if include is None and not done and not any(why == "already hybrid" for _, _, why in left):
        # a model with no nn.Linear/nn.Conv2d (nor a chip already) comes back all float: said, not silent
        warnings.warn(FerristorWarning("convert converted nothing: the model has no nn.Linear or nn.Conv2d layer "
                                       "(only those have a hybrid version), so the copy computes all in float"),
                      stacklevel=2)
    unsupported = [f"{n or '(the model itself)'} ({t})" for n, t, why in left if why == "unsupported type"]
    if unsupported:
        warnings.warn(FerristorWarning("left in float (no hybrid version of their type): " + ", ".join(unsupported)),
                      stacklevel=2)
    if others:
        warnings.warn(FerristorWarning("kept as they are, already hybrid with another config than asked (convert "
                                       "programs float layers; convert the float model to change theirs): "
                                       + "; ".join(others)), stacklevel=2)
    for message in lost:  # one per layer
        warnings.warn(FerristorWarning(message), stacklevel=2)
    if hooks:
        warnings.warn(FerristorWarning("hooks not carried over to the hybrid layers (register them again on the "
                                       "converted model if they apply): " + "; ".join(hooks)), stacklevel=2)
    return converted


def _check_picked(include, done: list, left: list) -> None:
    """An ``include`` that picks no layer (a glob with a typo, a predicate that never holds) had returned
    an all-float model without a word: refused, listing the layers it could pick. An empty list of
    globs picks none on purpose (it keeps the model in float) and is taken."""
    if include is None or done or (isinstance(include, (list, tuple, set, frozenset)) and not include):
        return
    shown = getattr(include, "__name__", include) if callable(include) else include
    pickable = [name or "(the model itself)" for name, _, why in left if why == "not included"]
    if pickable:
        listed = ", ".join(pickable[:10]) + (f" and {len(pickable) - 10} more" if len(pickable) > 10 else "")
        raise ConfigError("include", shown, reason=f"it picks none of the model's nn.Linear/nn.Conv2d layers "
                          f"({listed}), so nothing would be converted: pick some of them by name (a glob matches "
                          "the whole module path: 'fc' does not pick 'head.fc', '*fc' does), or leave include out to convert them all")
    chips = [name or "(the model itself)" for name, _, why in left if why == "already hybrid"]
    kept = f" (its hybrid layers {', '.join(chips[:10])} are kept as they are, whatever include says)" if chips else ""
    raise ConfigError("include", shown, reason=f"the model has no nn.Linear or nn.Conv2d layer for it to pick{kept}, "
                      "so nothing would be converted: leave include out")


def _replace(root: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = root.get_submodule(parent_name) if parent_name else root
    setattr(parent, child, new)


def converted_layers(model: nn.Module) -> Iterable[tuple[str, HybridModule]]:
    return ((n, m) for n, m in model.named_modules() if isinstance(m, HybridModule))
