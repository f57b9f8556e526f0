"""Seed lists from the command line: '0-9', '3', '0,2,5', '0-2,7'."""
from __future__ import annotations

import re

from ..errors import ConfigError

_PART = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$")


def parse_seeds(text: str | int | list[int]) -> list[int]:
    if isinstance(text, int) and not isinstance(text, bool):
        return [text]
    if isinstance(text, (list, tuple)):
        seeds = list(text)
    else:
        seeds = []
        for part in str(text).split(","):
            m = _PART.match(part)
            if not m:
                raise ConfigError("seeds", text, "a list like '0-9', '3' or '0,2,5-7' of non-negative integers")
            lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
            if hi < lo:
                raise ConfigError("seeds", text, "ranges written low-high, e.g. '0-9'")
            seeds.extend(range(lo, hi + 1))
    if not seeds or any(not isinstance(s, int) or isinstance(s, bool) or s < 0 for s in seeds):
        raise ConfigError("seeds", text, "at least one non-negative integer seed")
    if len(set(seeds)) != len(seeds):
        raise ConfigError("seeds", text, "distinct seeds")
    return seeds
