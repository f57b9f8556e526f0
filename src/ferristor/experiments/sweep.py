"""Stable keys of configs: a JSON-normalised form and its sha256.

The sweep engine (``ferristor.sweeps``: specs, executors, the results store, the driver) keys every
trial with :func:`trial_key` of what changes its numbers. The first runner that lived here (one
JSON file per trial) gave way to it; the report still reads the ``trials/*.json`` folders it wrote.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
from typing import Any

from ..errors import ConfigError

KEY_LENGTH = 16  # hex digits of sha256: collisions are negligible for any sweep we will run


def normalise(value: Any, _where: str = "config") -> Any:
    """A JSON-ready copy: dataclasses → dicts, tuples → lists, numpy scalars → Python numbers, paths
    → strings. Dict keys must be strings. Ints and floats stay distinct (1 ≠ 1.0), as in JSON."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    if isinstance(value, dict):
        for k in value:
            if not isinstance(k, str):
                raise ConfigError(f"{_where} key", k, "a string")
        return {k: normalise(v, f"{_where}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [normalise(v, f"{_where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ConfigError(_where, value, "a finite number (NaN/inf have no stable JSON form)")
        return value
    if hasattr(value, "item") and getattr(value, "shape", None) == ():  # numpy / torch scalar
        return normalise(value.item(), _where)
    raise ConfigError(_where, value, "a JSON value (dict, list, str, number, bool, None)")


def canonical_json(config: dict) -> str:
    return json.dumps(normalise(config), sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def trial_key(config: dict) -> str:
    """Stable across runs, processes and dict orderings: the same config always gets the same key."""
    return hashlib.sha256(canonical_json(config).encode("ascii")).hexdigest()[:KEY_LENGTH]
