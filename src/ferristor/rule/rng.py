"""Counter-based random numbers: every draw is a pure function of (seed, stream, step, layer, index).

This makes a replica's draws independent of how many replicas run beside it, of the thread count
and of the order the kernel visits weights, so a replica trained in a batch equals the same seed
trained alone, bit for bit, and a run resumes from its step counter alone. The mixer is the
SplitMix64 finaliser (Steele et al. 2014); uniforms take its top 24 bits, as float32 ``torch.rand`` does.
"""
from __future__ import annotations

import numpy as np
import torch

GOLDEN = np.uint64(0x9E3779B97F4A7C15)
M1 = np.uint64(0xBF58476D1CE4E5B9)
M2 = np.uint64(0x94D049BB133111EB)
H1 = np.uint32(0x7FEB352D)  # lowbias32 multipliers
H2 = np.uint32(0x846CA68B)

# Streams: one per kind of randomness, so draws of one kind never reuse another's.
STREAM_INIT, STREAM_UPDATE, STREAM_TRANSFER, STREAM_SHUFFLE = 1, 2, 3, 4


def mix64_np(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.uint64)
    with np.errstate(over="ignore"):
        x = x ^ (x >> np.uint64(30)); x = x * M1
        x = x ^ (x >> np.uint64(27)); x = x * M2
        x = x ^ (x >> np.uint64(31))
    return x


def replica_key(seed: int, stream: int) -> np.uint64:
    """The 64-bit key of one seed's stream."""
    with np.errstate(over="ignore"):
        return mix64_np(mix64_np(np.uint64(seed) + GOLDEN) ^ (np.uint64(stream) * M2))


def step_keys(base_keys: np.ndarray, step: int, layer: int) -> np.ndarray:
    """Per-replica 32-bit keys of one (step, layer): uint32 (R,)."""
    with np.errstate(over="ignore"):
        salt = mix64_np(np.uint64(step) * GOLDEN + np.uint64(layer + 1) * M1)
        return (mix64_np(base_keys ^ salt) >> np.uint64(32)).astype(np.uint32)


def torch_generator(seed: int, stream: int, device: str | torch.device = "cpu") -> torch.Generator:
    """A torch.Generator for (seed, stream): used where draws are rare (init, noisy transfers)."""
    g = torch.Generator(device=device)
    g.manual_seed(int(replica_key(seed, stream) >> np.uint64(1)))
    return g
