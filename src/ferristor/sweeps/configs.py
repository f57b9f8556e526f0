"""Dotted paths into :class:`TrainConfig` (``rule.k``, ``transfer.sigma_levels``, ``epochs``): the
allowed paths, setting values by path, and building a validated config from a plain dict.

Paths are those of ``dataclasses.asdict(TrainConfig())``, read from the dataclasses themselves, so a
field added to a config is sweepable at once. Values are coerced to the field's declared type where
that is lossless (an int for a float field becomes a float, an integral float for an int field an
int), so ``epochs=10`` and ``epochs=10.0`` are one trial, and ``rule.k=1e3`` is k = 1000.
"""
from __future__ import annotations

import dataclasses
import functools
import types
import typing
from typing import Any

from ..circuit.layout import SynapseLayout
from ..config_base import field_default
from ..errors import ConfigError
from ..experiments.config import TASKS, TrainConfig, task_config


@functools.lru_cache(maxsize=None)
def _hints(cls) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _nested_class(cls, name: str):
    """The dataclass type of field ``name`` of ``cls``, or None for a leaf."""
    hint = _hints(cls).get(name)
    return hint if isinstance(hint, type) and dataclasses.is_dataclass(hint) else None


def config_paths(cls=TrainConfig, prefix: str = "") -> list[str]:
    """Every leaf path of ``cls``, in declaration order: 'dataset', ..., 'rule.k', ..."""
    out = []
    for f in dataclasses.fields(cls):
        sub = _nested_class(cls, f.name)
        out.extend(config_paths(sub, f"{prefix}{f.name}.") if sub else [f"{prefix}{f.name}"])
    return out


def find_leaf(path: str, root=TrainConfig):
    """(owning dataclass, field name) of a leaf path of the config class ``root``, or None."""
    cls, parts = root, path.split(".")
    for i, part in enumerate(parts):
        if part not in {f.name for f in dataclasses.fields(cls)}:
            return None
        sub = _nested_class(cls, part)
        if i == len(parts) - 1:
            return (cls, part) if sub is None else None
        if sub is None:
            return None
        cls = sub
    return None


def _leaf(path: str, root=TrainConfig):
    """(owning dataclass, field name) of a path; ConfigError when there is no such leaf."""
    leaf = find_leaf(path, root)
    if leaf is None:
        raise ConfigError("config path", path, expected_paths(path, config_paths(root)))
    return leaf


def allowed_types(path: str, root=TrainConfig) -> set:
    """The types a leaf declares: the members of a union (``float | None``), else the one hint."""
    cls, name = _leaf(path, root)
    hint = _hints(cls)[name]
    union = isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union
    return set(typing.get_args(hint)) if union else {hint}


def expected_paths(path: str, paths: list[str] | None = None, *, lister: str = "ferristor params",
                   listed_as: str = "lists every field", bare_names: bool = False) -> str:
    """What to say of an unknown ``path`` among ``paths`` (train's config paths by default): a section's
    fields, the nearest paths, or the sections (all 110-odd paths in one line would bury the answer).
    ``lister``: the command that lists them all; ``bare_names``: a bare field name ('k') is taken as
    the paths ending in it before any spelling match."""
    import difflib
    paths = config_paths() if paths is None else paths
    under = [p for p in paths if p.startswith(path + ".")]
    if under:
        return (f"one of its fields ('{path}' is a section): " + ", ".join(under[:12])
                + (f" and {len(under) - 12} more ({lister})" if len(under) > 12 else ""))
    near = ([p for p in paths if p.rsplit(".", 1)[-1] == path][:3] if bare_names else []) \
        or difflib.get_close_matches(path, paths, n=3, cutoff=0.75)
    parts = path.split(".")
    prefix = ""
    for cut in range(len(parts) - 1, 0, -1):  # the longest section of the path that exists
        if any(p.startswith(".".join(parts[:cut]) + ".") for p in paths):
            prefix = ".".join(parts[:cut]) + "."
            break
    children = list(dict.fromkeys(prefix + p[len(prefix):].split(".")[0] + (".…" if "." in p[len(prefix):] else "")
                                  for p in paths if p.startswith(prefix)))
    listed = ", ".join(children)
    return (f"{' or '.join(near)}? (one of " if near else "one of ") + listed + (")" if near else "") \
        + f" — {lister} {listed_as}"


def field(path: str, root=TrainConfig) -> dataclasses.Field:
    """The dataclass field a config path names (its default, unit, source and doc)."""
    cls, name = _leaf(path, root)
    return next(f for f in dataclasses.fields(cls) if f.name == name)


def default(path: str, root=TrainConfig):
    """The default a config path declares (read from the dataclasses; no config is built, since a
    config's defaults need not validate together), so a command's options show the config's defaults
    instead of repeating them. A section's default may override its class's (Fig6Config's pretraining
    is a LeNet's): such a value wins; a value a config derives itself (layout.lsb_cells) stays the
    declared one (None: derived)."""
    declared = field_default(field(path, root))
    head, *rest = path.split(".")
    if not rest:
        return declared
    owner = field_default(next(f for f in dataclasses.fields(root) if f.name == head))
    for part in rest[:-1]:
        owner = getattr(owner, part)
    value = getattr(owner, rest[-1])
    return value if value != getattr(type(owner)(), rest[-1]) else declared


def field_is(field: str, path: str, root=TrainConfig, bare: bool = True) -> bool:
    """Whether a ConfigError's ``field`` names the config path ``path``: the path itself, its owner's
    ``Class.name`` (a nested config's own check) or, with ``bare``, the bare field name."""
    if field == path:
        return True
    leaf = find_leaf(path, root)
    if leaf is None:
        return False
    cls, name = leaf
    return field == f"{cls.__name__}.{name}" or (bare and field == name)


def check_path(path: str) -> str:
    _leaf(path)
    return path


NON_FINITE = {"inf", "+inf", "-inf", "infinity", "+infinity", "-infinity", "nan", "+nan", "-nan"}


def _whole(value: Any) -> Any:
    """An integral float as the int it equals (JSON reads ``1e9`` as 1000000000.0); anything else as is."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def coerce(path: str, value: Any) -> Any:
    """``value`` in the type the field declares, when that is lossless; else unchanged (the config's
    own validation then names what is wrong). An int for a float field becomes a float, an integral
    float for an int field the int (``rule.k=1e9``; 1.5 stays and is refused), likewise in a tuple of
    ints; 'inf' or 'nan' (which JSON does not read) for a float field becomes that float, so the
    field's check says it wants a finite number rather than "a number"."""
    allowed = allowed_types(path)
    origins = {typing.get_origin(a) or a for a in allowed}
    if float in origins and int not in origins and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if int in origins and float not in origins:
        value = _whole(value)
    if (float in origins and str not in origins and isinstance(value, str)
            and value.strip().lower() in NON_FINITE):
        return float(value)
    if tuple in origins and isinstance(value, (list, tuple)):
        items = [a for a in allowed if typing.get_origin(a) is tuple]
        if any(typing.get_args(a)[:1] == (int,) for a in items):
            return tuple(_whole(v) for v in value)
        return tuple(value)
    return value


def set_path(d: dict, path: str, value: Any) -> None:
    """Write ``value`` at ``path`` of nested dicts, making the sections it needs."""
    *heads, last = path.split(".")
    for h in heads:
        d = d.setdefault(h, {})
    d[last] = value


def get_path(d: dict, path: str) -> Any:
    for part in path.split("."):
        d = d[part]
    return d


def build(d: dict, cls=TrainConfig):
    """A validated ``cls`` from a dict like ``dataclasses.asdict`` gives (unknown keys are refused)."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(d) - names
    if unknown:
        raise ConfigError(f"{cls.__name__} field", sorted(unknown)[0], "one of " + ", ".join(sorted(names)))
    kwargs = {}
    for name, v in d.items():
        sub = _nested_class(cls, name)
        kwargs[name] = build(v, sub) if sub is not None and isinstance(v, dict) else v
    return cls(**kwargs)


def canonical(cfg: TrainConfig) -> dict:
    """The config as a plain dict with every leaf coerced to its declared type (lists for tuples):
    the form that trial keys and the results store see."""
    d = dataclasses.asdict(cfg)
    for path in config_paths():
        try:
            v = coerce(path, get_path(d, path))
        except KeyError:
            continue
        set_path(d, path, list(v) if isinstance(v, tuple) else v)
    return d


def resolve(overrides: dict[str, Any]) -> TrainConfig:
    """The paper's preset for the dataset and mode (network, lr, p, transfer model: ``task_config``),
    with ``overrides`` (path → value) applied on top and the whole validated."""
    for path in overrides:
        check_path(path)
    dataset = overrides.get("dataset", TrainConfig.dataset)
    mode = overrides.get("mode", TrainConfig.mode)
    if not isinstance(dataset, str) or dataset not in TASKS:
        raise ConfigError("dataset", dataset, "one of " + ", ".join(repr(t) for t in TASKS))
    d = dataclasses.asdict(task_config(dataset, mode))
    for path, value in overrides.items():
        set_path(d, path, coerce(path, value))
    if any(p.startswith("layout.") for p in overrides):  # cell counts follow the bit widths unless set
        for name in SynapseLayout.DERIVED:
            if f"layout.{name}" not in overrides:
                d["layout"][name] = None
    return build(d)
