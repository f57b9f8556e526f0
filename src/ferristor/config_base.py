"""Conventions shared by every configuration dataclass.

One dataclass per physical or algorithmic concept (as aihwkit does). Each field declares its unit
and its source in ``field(metadata=...)`` through :func:`param`; ``__post_init__`` validates, so a
bad value fails at construction, before any work starts. Presets are subclasses that only change
defaults. Configs stay mutable (``dataclasses.replace`` makes validated copies).
"""
from __future__ import annotations

import copy
import dataclasses
import math
from typing import Any, Iterable

from .errors import ConfigError


def param(default: Any, *, unit: str = "", source: str = "", doc: str = "") -> Any:
    """A dataclass field that records its unit, its source (digest section, figure or [I]) and a doc."""
    kwargs: dict[str, Any] = {"metadata": {"unit": unit, "source": source, "doc": doc}}
    if isinstance(default, (list, dict, set)) or dataclasses.is_dataclass(default):
        # a fresh copy each time, nested configs included (a shallow copy would share them)
        kwargs["default_factory"] = lambda d=default: copy.deepcopy(d)
    else:
        kwargs["default"] = default
    return dataclasses.field(**kwargs)


def field_default(f: dataclasses.Field) -> Any:
    """A dataclass field's default: its value, or a fresh one from its factory."""
    return f.default if f.default is not dataclasses.MISSING else f.default_factory()


def param_like(config_cls, name: str, **changes) -> Any:
    """A field declared as ``config_cls``'s field ``name`` (default, unit, source, doc), with ``changes``
    (e.g. ``doc=``): one declaration for a setting two configs carry."""
    f = next(f for f in dataclasses.fields(config_cls) if f.name == name)
    return param(changes.pop("default", field_default(f)), **{**f.metadata, **changes})


def describe(config_cls) -> list[dict[str, str]]:
    """Rows (name, default, unit, source, doc) for every field: used by docs and ``--help`` tables."""
    rows = []
    for f in dataclasses.fields(config_cls):
        default = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else None)
        rows.append({"name": f.name, "default": repr(default), **{k: str(v) for k, v in f.metadata.items()}})
    return rows


def to_dict(config) -> dict[str, Any]:
    """A JSON-ready dict of a (nested) config dataclass."""
    return dataclasses.asdict(config)


# --- validators: each raises ConfigError naming the field, the value and what is allowed ---------

# Scales the 32-bit kernels hold with room for their products (an LSB of 1e-300 is 0 in float32, a σ
# of 1e300 is inf): a real quantity outside these bounds is refused before any work.
FLOAT32_SCALE = (1e-30, 1e30)


def check_number(name: str, value, *, lo=None, hi=None, lo_open=False, hi_open=False, integer=False):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not isinstance(value, int)):
        raise ConfigError(name, value, "an integer" if integer else "a number")
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(name, value, "a finite number")
    lo_ok = lo is None or (value > lo if lo_open else value >= lo)
    hi_ok = hi is None or (value < hi if hi_open else value <= hi)
    if not (lo_ok and hi_ok):
        left = "-inf" if lo is None else f"{lo}"
        right = "inf" if hi is None else f"{hi}"
        interval = f"{'(' if lo_open or lo is None else '['}{left}, {right}{')' if hi_open or hi is None else ']'}"
        raise ConfigError(name, value, f"a value in {interval}")
    return value


def check_increasing(name: str, value, *, length: int | None = None, lo=None) -> tuple:
    """``value`` as a tuple of finite numbers (not bools), strictly increasing, of ``length`` items if
    given (else at least 2), each ≥ ``lo`` if given; else a ConfigError naming ``name``."""
    want = f"{length if length else 'at least 2'} strictly increasing finite numbers" + (f" ≥ {lo}" if lo is not None else "")
    if not isinstance(value, (list, tuple)) or len(value) != (length or len(value)) or len(value) < 2:
        raise ConfigError(name, value, want)
    for v in value:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or (lo is not None and v < lo):
            raise ConfigError(name, value, want)
    if any(b <= a for a, b in zip(value, value[1:])):
        raise ConfigError(name, value, want)
    return tuple(value)


def check_bool(name: str, value) -> bool:
    """True or False itself: a text such as 'no' or 'maybe' (a --grid or --set value that did not parse
    as a boolean) is truthy, and had silently turned the feature on."""
    if not isinstance(value, bool):
        raise ConfigError(name, value, "true or false")
    return value


def check_choice(name: str, value, choices: Iterable[str]):
    choices = tuple(choices)
    if value not in choices:
        raise ConfigError(name, value, "one of " + ", ".join(repr(c) for c in choices))
    return value


def available_devices() -> list[str]:
    """The torch devices this machine can train on, as they are written ('cpu', 'cuda:0', …)."""
    import torch

    found = ["cpu"]
    if torch.cuda.is_available():
        found += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        found.append("mps")
    xpu = getattr(torch, "xpu", None)
    if xpu is not None and xpu.is_available():
        found += [f"xpu:{i}" for i in range(xpu.device_count())]
    return found


def check_device(name: str, value):
    """A torch device this machine has (e.g. 'cpu', 'cuda', 'cuda:1'): checked before any work, since
    torch only fails at the first tensor placed there, with an assertion."""
    import torch

    here = available_devices()
    allowed = "a torch device this machine has: " + ", ".join(here)
    if isinstance(value, torch.device):
        value = str(value)
    if not isinstance(value, str):
        raise ConfigError(name, value, allowed)
    try:
        dev = torch.device(value)
    except (RuntimeError, ValueError, TypeError):
        raise ConfigError(name, value, allowed) from None
    if dev.type == "cpu":
        return value
    kinds = {d.split(":")[0] for d in here}
    if dev.type not in kinds:
        why = {"cuda": "this torch cannot use CUDA (a CPU-only build, or no GPU visible)"}.get(
            dev.type, f"this torch cannot use {dev.type} devices here")
        raise ConfigError(name, value, reason=f"{why}; devices here: {', '.join(here)}")
    if dev.index is not None and f"{dev.type}:{dev.index}" not in here and dev.type != "mps":
        raise ConfigError(name, value, allowed)
    return value


def flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts, and lists of dicts (an optimizer's parameter groups), as {dotted path: value},
    so a difference names the field that differs: ``groups.0.p``, not the whole list."""
    if isinstance(d, list) and d and all(isinstance(v, dict) for v in d):
        d = {str(i): v for i, v in enumerate(d)}
    if not isinstance(d, dict):
        return {prefix.rstrip("."): d}
    out: dict[str, Any] = {}
    for k, v in d.items():
        nested = isinstance(v, dict) or (isinstance(v, list) and v and all(isinstance(u, dict) for u in v))
        out.update(flatten(v, f"{prefix}{k}.") if nested else {f"{prefix}{k}": v})
    return out
