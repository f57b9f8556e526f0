"""Keys of the counter-based random streams: one 64-bit key per (seed, parameter, kind of draw).

Every random number ferristor draws is a pure function of a key and a counter (see
``random_cpu``/``random_torch``): the key says *whose* draw it is — the chip (its seed), the
parameter (a stable name such as ``"layers.0.weight"``) and the kind of randomness (update masks,
transfer noise, initial values) — and the counter says *which* one (step, crossbar row, column).
Distinct names give unrelated keys because the name is hashed with SHA-256, never Python's
``hash()``, which changes between processes.
"""
from __future__ import annotations

import hashlib
from typing import Sequence

import numpy as np

from ..errors import ConfigError

# Kinds of randomness: draws of one kind never reuse another's.
STREAM_INIT, STREAM_UPDATE, STREAM_TRANSFER, STREAM_SHUFFLE = 1, 2, 3, 4

SEED_LIMIT = 2 ** 63  # seeds are non-negative int64 (they live in int64 buffers)

_GOLDEN = 0x9E3779B97F4A7C15
_MASK64 = 2 ** 64 - 1


def _mix64(x: int) -> int:
    """SplitMix64's finaliser (Steele et al. 2014) on Python ints: a bijection of 64-bit words."""
    x &= _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def check_seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= int(seed) < SEED_LIMIT:
        raise ConfigError("seed", seed, f"an integer in [0, 2^63) = [0, {SEED_LIMIT - 1}]")
    return int(seed)


def name_hash(name: str) -> int:
    """A 64-bit hash of a parameter's name, the same in every process and on every machine."""
    return int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:8], "little")


def stream_key(seed: int, name: str, stream: int) -> tuple[int, int]:
    """The Philox key (k0, k1) — two 32-bit words — of one seed's stream for one named parameter."""
    seed = check_seed(seed)
    k = _mix64(_mix64(seed + _GOLDEN) + _mix64(name_hash(name) ^ (stream * _GOLDEN)))
    return k & 0xFFFFFFFF, k >> 32


def derive_seed(key: tuple[int, int], label: str) -> int:
    """A 63-bit seed (for a ``torch.Generator``) derived from a stream key and a label: generators
    for models that draw many kinds of numbers, still a pure function of (seed, parameter, label)."""
    k = (key[1] << 32) | key[0]
    return _mix64(_mix64(k ^ _GOLDEN) + name_hash(label)) >> 1


def stream_keys(seeds: Sequence[int], name: str, stream: int) -> np.ndarray:
    """Keys of R replicas (one seed each): uint32 (R, 2)."""
    return np.array([stream_key(s, name, stream) for s in seeds], dtype=np.uint32).reshape(len(seeds), 2)
