"""Dotted paths into :class:`~ferristor.transfer_learning.fig6.Fig6Config` (``protocol.online.k``,
``protocol.online.ledger.fecap_energy_fj``, ``pretrain.test_limit``): what ``ferristor fig6 --set
PATH=VALUE`` takes. Values are parsed as ``ferristor train --set`` parses them (``sweeps.spec.parse_value``:
JSON where it parses, else the text; a tuple field also takes comma-separated items) and checked
against the field's declared type before the configs' own validation, all before any work.

One way in for each value: a path that a command's option sets is refused, naming the option; a path
the figure sets itself (``SET_BY``: each pair's source, each head's mode, the weight scale chosen per
run) is refused, saying what sets it. The values land in the configs, hence in each pair's identity
(``Fig6Config.pair_identity``): a pair computed with other values is computed again, never mixed in.
"""
from __future__ import annotations

import typing
from typing import Any

from ..errors import ConfigError
from ..sweeps import configs
from ..sweeps.spec import SpecError, parse_value
from .fig6 import Fig6Config

# Paths whose value the figure chooses itself, and what chooses it.
SET_BY = {"pretrain.dataset": "each pair's source (--pairs)",
          "protocol.online.mode": "each online head (--heads)",
          "protocol.online.hidden_lsb": "the choice per run from protocol.lsb_grid (--lsb-grid)"}


def all_paths() -> list[str]:
    """Every leaf path of Fig6Config, in declaration order (train's walk of its config)."""
    return configs.config_paths(Fig6Config)


def settable(options: dict[str, str]) -> list[str]:
    """The paths --set takes: all but those of an option (``options``: path → flag) and ``SET_BY``."""
    return [p for p in all_paths() if p not in options and p not in SET_BY]


def field(path: str):
    """The dataclass field of a Fig6Config path (its unit, source and doc)."""
    return configs.field(path, Fig6Config)


def default(path: str):
    """The value Fig6Config() holds at ``path``."""
    return configs.default(path, Fig6Config)


def expected(path: str, paths: list[str]) -> str:
    """What to say of an unknown ``path``, as train says it (``sweeps.configs.expected_paths``), with a
    bare field name ('k') taken for the paths that end in it."""
    return configs.expected_paths(path, paths, lister="ferristor fig6 --list-paths", listed_as="lists them",
                                  bare_names=True)


def _kind(allowed: set) -> str:
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a text", type(None): "null"}
    return " or ".join(names.get(t, getattr(t, "__name__", str(t))) for t in sorted(allowed, key=str))


def _typed(path: str, value: Any, where: str) -> Any:
    """``value`` in the type ``path`` declares (an int for a float field becomes a float; a list or
    comma-separated text for a tuple becomes a tuple), or a SpecError naming ``where``."""
    allowed = configs.allowed_types(path, Fig6Config)
    if value is None and type(None) in allowed:
        return None
    tuples = [a for a in allowed if typing.get_origin(a) is tuple]
    if tuples:
        item = typing.get_args(tuples[0])[0]
        items = value if isinstance(value, list) else [parse_value(t) for t in str(value).split(",")]
        return tuple(_item(path, v, {item}, where) for v in items)
    return _item(path, value, allowed, where)


def _item(path: str, value: Any, allowed: set, where: str) -> Any:
    if float in allowed and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    ok = (isinstance(value, bool) and bool in allowed) or (
        not isinstance(value, bool) and any(t in (int, float, str) and isinstance(value, t) for t in allowed))
    if not ok:
        raise SpecError(f"{where}: {ConfigError(path, value, _kind(allowed)).render()}")
    return value


def parse_sets(texts, options: dict[str, str], option: str = "--set") -> dict[str, Any]:
    """{path: value} of ``--set PATH=VALUE`` texts, each checked: a known, settable path, given
    once, of its field's type. ``options``: path → the command's option that sets it."""
    out: dict[str, Any] = {}
    for text in texts:
        path, eq, raw = text.partition("=")
        path = path.strip()
        if not eq or not path or not raw.strip():
            raise SpecError(f"{option} {text!r}: expected PATH=VALUE, e.g. protocol.online.k=64")
        if path in options:
            raise SpecError(f"{option} {text!r}: {path} has its own option: use {options[path]} {raw.strip()}")
        if path in SET_BY:
            raise SpecError(f"{option} {text!r}: {path} is set by {SET_BY[path]}, not by {option}")
        if configs.find_leaf(path, Fig6Config) is None:
            raise SpecError(f"{option} {text!r}: unknown config path '{path}': expected "
                            f"{expected(path, settable(options))}")
        if path in out:
            raise SpecError(f"{option} {text!r}: {path} is given twice: give it once")
        out[path] = _typed(path, parse_value(raw), f"{option} {path}")
    return out


def apply(tree: dict, sets: dict[str, Any]) -> dict:
    """``tree`` (nested dicts of config fields) with ``sets`` written in, sections made as needed."""
    for path, value in sets.items():
        configs.set_path(tree, path, value)
    return tree


def set_path_of(field: str, sets: dict[str, Any], bare: bool = True) -> str | None:
    """The path of ``sets`` that a config's ``field`` names: the path itself, ``Class.name`` (how the
    configs name a field in their warnings) or, with ``bare``, the bare name (a config's own check,
    which knows no more), or None."""
    return next((path for path in sets if configs.field_is(field, path, Fig6Config, bare=bare)), None)


def blame(e: ConfigError, sets: dict[str, Any]) -> str | None:
    """The path of ``sets`` whose value the ConfigError ``e`` refuses, or None."""
    return set_path_of(e.field, sets)


def namer(sets: dict[str, Any], option: str = "--set", fallback=None):
    """A Namer (``errors.Namer``) for a run with ``sets``: a field they set, as its config names it in a
    warning or a later error (``OnlineConfig.sigma_levels``, not a bare name, which other configs share),
    is ``--set protocol.online.sigma_levels``; any other field is named by ``fallback`` (None: not)."""
    def name(field: str) -> str | None:
        path = set_path_of(field, sets, bare=False)
        if path is not None:
            return f"{option} {path}"
        return fallback(field) if fallback else None
    return name


def build(tree: dict, sets: dict[str, Any], option: str = "--set"):
    """A validated Fig6Config from ``tree`` with ``sets`` applied; a value of ``sets`` that a config
    refuses is named by where it was given (``--set protocol.online.k: k=0 is not allowed: …``)."""
    try:
        return configs.build(apply(tree, sets), Fig6Config)
    except ConfigError as e:
        path = blame(e, sets)
        if path is None:
            raise
        raise SpecError(f"{option} {path}: {e.render()}") from None
