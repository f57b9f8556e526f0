"""What a cheaper random stream could gain: the dense hidden update of layer 1 (784×200) with the
counter-based hash ferristor uses (lowbias32: two 32-bit multiplies per weight and step), with a
one-multiply hash, and with no hash at all (the cost of everything else: mask test, rounding,
saturation, event count). A what-if, not a code path: the other two rows draw other numbers, so
adopting either would change every recorded result. Same loop as ``rule.kernels_cpu.
_hybrid_rank1_steps``' fast path (stochastic rounding, every masked-in update counted), one row
at a time, 50 steps per row, serial, each row padded to 208 columns as that kernel pads it (costs
are per one of the 200 real weights).

    python bench/bench_hash_floor.py [--rounds 7]
"""
from __future__ import annotations

import argparse
import time

import numpy as np
from numba import njit

from ferristor.cpus import describe
from ferristor.rule.kernels_cpu import STEPS_PAD, _dense_draw, _stochastic_step
from ferristor.rule.random_cpu import _u32, column_table, word

ROWS, COLS, STEPS = 784, 200, 50
PADDED = -(-COLS // STEPS_PAD) * STEPS_PAD  # 208, as the steps kernel pads its rows


@njit
def _lowbias32(a, b, t):
    return word(a, b, t)


@njit
def _one_multiply(a, b, t):
    z = _u32((t ^ a) + b)
    z = _u32(z ^ (z >> _u32(15)))
    z = _u32(z * _u32(0x846CA68B))
    return _u32(z ^ (z >> _u32(16)))


@njit
def _no_hash(a, b, t):
    return _u32((t ^ a) + b)


@njit(boundscheck=False, error_model="numpy")
def _update(draw, hidden, counts, s, xs, ka, kb, p24, c, max_h):
    """One specialisation per ``draw`` (numba compiles a function argument into the loop)."""
    tab = column_table(hidden.shape[1])
    for i in range(hidden.shape[0]):
        h = hidden[i]
        for t in range(s.shape[0]):
            a, b, xi = ka[t], kb[t], xs[i, t]
            for o in range(h.shape[0]):
                msk, off = _dense_draw(draw(a, b, tab[o]), p24, c)
                h[o] = _stochastic_step(h[o], xi * s[t, o], msk, off, max_h)
                counts[i, o] += np.int32(msk)


HASHES = {"lowbias32 (ferristor's stream)": _lowbias32, "one-multiply hash": _one_multiply,
          "no hash: the rest of the update": _no_hash}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=7)
    a = ap.parse_args()
    rng = np.random.default_rng(0)
    hidden = rng.integers(-255, 256, (ROWS, PADDED)).astype(np.float32)
    counts = np.zeros((ROWS, PADDED), np.int32)
    s = (rng.standard_normal((STEPS, PADDED)) * 0.01).astype(np.float32)
    xs = rng.random((ROWS, STEPS)).astype(np.float32)
    ka, kb = (rng.integers(0, 2 ** 32, STEPS, dtype=np.uint32) for _ in range(2))
    p = 0.2
    args = (np.int32(int(p * 2 ** 24)), np.float32(1 / (p * 2 ** 24)), np.float32(511))
    best = {name: float("inf") for name in HASHES}
    for draw in HASHES.values():  # compile
        _update(draw, hidden, counts, s, xs, ka, kb, *args)
    for _ in range(a.rounds):  # alternating, min of rounds
        for name, draw in HASHES.items():
            t0 = time.perf_counter()
            _update(draw, hidden, counts, s, xs, ka, kb, *args)
            best[name] = min(best[name], time.perf_counter() - t0)
    print(f"\nmachine: {describe()}, one thread, min of {a.rounds} alternating rounds, p = {p}")
    print(f"{'layer-1 dense update (784×200), 50 steps per row':52s} {'ns/weight-step':>15s} {'µs/replica-step':>16s}")
    for name in HASHES:
        ns = best[name] / (ROWS * COLS * STEPS) * 1e9
        print(f"{name:52s} {ns:15.3f} {ns * ROWS * COLS / 1e3:16.1f}")


if __name__ == "__main__":
    main()
