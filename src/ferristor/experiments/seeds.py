"""Seed lists from the command line: '0-9', '3', '0,2,5', '0-2,7'."""
from __future__ import annotations

import re

from ..errors import ConfigError

_PART = re.compile(r"^\s*([0-9]+)\s*(?:-\s*([0-9]+)\s*)?$")
# Seeds live in the layers' int64 seed buffers and feed the streams' keys (rule.streams): 0 … 2**63 − 1.
MAX_SEED = 2**63 - 1
# More replicas than this never fit in memory; the list is refused before it is built. Fewer are
# checked against the memory they need (experiments.resources.check_memory).
MAX_SEEDS = 1_000_000


def parse_seeds(text: str | int | list[int]) -> list[int]:
    if isinstance(text, int) and not isinstance(text, bool):
        text = [text]
    if isinstance(text, (list, tuple)):
        seeds = list(text)
    else:
        seeds, count = [], 0
        ranges = []
        for part in str(text).split(","):
            m = _PART.match(part)
            if not m:
                raise ConfigError("seeds", text, "a list like '0-9', '3' or '0,2,5-7' of non-negative integers")
            if max(len(g or "") for g in m.groups()) > len(str(MAX_SEED)):  # before int(): no 5,000-digit parse
                raise ConfigError("seeds", text, f"seeds in 0…{MAX_SEED} (2^63 − 1, the range of the layers' int64 seed buffer)")
            lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
            if hi < lo:
                raise ConfigError("seeds", text, "ranges written low-high, e.g. '0-9'")
            ranges.append((lo, hi))
            count += hi - lo + 1
        if count > MAX_SEEDS:
            raise ConfigError("seeds", text, f"at most {MAX_SEEDS:,} seeds (this is {count:,})")
        for lo, hi in ranges:
            seeds.extend(range(lo, hi + 1))
    if not seeds or any(not isinstance(s, int) or isinstance(s, bool) or s < 0 for s in seeds):
        raise ConfigError("seeds", text, "at least one non-negative integer seed")
    if max(seeds) > MAX_SEED:
        raise ConfigError("seeds", text, f"seeds in 0…{MAX_SEED} (2^63 − 1, the range of the layers' int64 seed buffer)")
    if len(seeds) > MAX_SEEDS:
        raise ConfigError("seeds", text, f"at most {MAX_SEEDS:,} seeds (this is {len(seeds):,})")
    if len(set(seeds)) != len(seeds):
        raise ConfigError("seeds", text, "distinct seeds")
    return seeds


def format_seeds(seeds: list[int]) -> str:
    """The shortest '0-9,12' text of a seed list, as it would be typed."""
    parts, i = [], 0
    while i < len(seeds):
        j = i
        while j + 1 < len(seeds) and seeds[j + 1] == seeds[j] + 1:
            j += 1
        parts.append(str(seeds[i]) if i == j else f"{seeds[i]}-{seeds[j]}")
        i = j + 1
    return ",".join(parts)
