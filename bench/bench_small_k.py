"""Training at small k: the transfers inside the compiled chunks against chunks that end at every
transfer (Python runs it, then the next chunk starts) — the figures behind
``fast_step.TRANSFERS_IN_CHUNKS``. Alternating rounds (min of rounds), µs per sample-replica on the
paper's MNIST network (batch 1, p = 0.2), for hm (ideal transfer) and hm-var (table transfer with
σ, one normal per weight and transfer) at each k and R, beside the plain PyTorch per-sample loop
(which transfers nothing: the fair anchor for what a step costs).

    OMP_NUM_THREADS=1 python bench/bench_small_k.py --threads 1 [--ks 1,2,5,10,100] [--replicas 1,10]
    OMP_NUM_THREADS=1 python bench/bench_small_k.py --threads 1 --calls-only  # one program_ call per layer shape

``--calls-only`` times one transfer as a user's loop makes it (``HybridModule.program_``, the fused CPU
kernel and the Python around it) on a 784×200 and a 100×10 layer: at k = 1 it runs for every layer
every step, and on a small layer the Python around the kernel is most of it. It uses nothing newer
than ``program_``, so it runs on an older checkout too (``PYTHONPATH=that/src``).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_step import SIZES, _alternate, _data, _plain_fn  # noqa: E402

from bench_step import _best  # noqa: E402

from ferristor.cpus import describe  # noqa: E402
from ferristor.experiments import fast_step  # noqa: E402
from ferristor.experiments.fit import set_threads  # noqa: E402
from ferristor.nn import HybridConfig, HybridLinear, HybridMLP, NetworkSpec  # noqa: E402
from ferristor.optim import HybridSGD  # noqa: E402


def _chunks_fn(mode: str, k: int, replicas: int, steps: int, inside: bool):
    m = HybridMLP(NetworkSpec(SIZES), config=HybridConfig(mode=mode), replicas=replicas, seeds=list(range(replicas)))
    opt = HybridSGD(m.parameters(), lr=0.1, p=0.2, k=k)
    x, y = (t.numpy() for t in _data(steps + 50))
    idx = (np.arange(replicas)[:, None] * 7 + np.arange(steps)[None, :]) % len(x)

    def run():
        chosen = fast_step.TRANSFERS_IN_CHUNKS
        fast_step.TRANSFERS_IN_CHUNKS = inside
        try:
            fast_step.run(m, opt, x, y, idx)
        finally:
            fast_step.TRANSFERS_IN_CHUNKS = chosen
    return run


def program_calls(calls: int = 2000) -> None:
    """µs per ``program_`` call of one layer, by mode and shape (fastest of 3 timed runs)."""
    print("| mode | layer | µs per program_ call |\n|---|---|---|")
    for mode in ("hm", "hm-var"):
        for n_in, n_out in ((784, 200), (100, 10)):
            layer = HybridLinear(n_in, n_out, seeds=0, config=HybridConfig(mode=mode))
            us = _best(lambda: layer.program_("weight"), calls if n_in < 784 else calls // 10) * 1e6
            print(f"| {mode} | {n_in}×{n_out} | {us:.1f} |")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--ks", default="1,2,5,10,100")
    ap.add_argument("--replicas", default="1,10")
    ap.add_argument("--modes", default="hm,hm-var")
    ap.add_argument("--steps", type=int, default=250, help="steps per timed call (250: one flush window)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--calls-only", action="store_true", help="only the table of one program_ call per layer shape")
    a = ap.parse_args()
    set_threads(a.threads)
    if a.calls_only:
        print(f"{describe()}; threads={a.threads}")
        program_calls()
        return
    fns = {"plain PyTorch loop (nn.Linear + LayerNorm + autograd + SGD)": (_plain_fn(200), 200)}
    keys = []
    for mode in a.modes.split(","):
        for r in (int(v) for v in a.replicas.split(",")):
            for k in (int(v) for v in a.ks.split(",")):
                keys.append((mode, r, k))
                for inside in (True, False):
                    fns[(mode, r, k, inside)] = (_chunks_fn(mode, k, r, a.steps, inside), a.steps * r)
    best = {key: s * 1e6 for key, s in _alternate(fns, a.rounds).items()}  # µs per sample-replica
    plain = best[next(iter(fns))]
    print(f"\n{describe()}; threads={a.threads}, calls of {a.steps} steps, min of {a.rounds} alternating rounds")
    print(f"plain PyTorch loop: {plain:.1f} µs per sample\n")
    print("| mode | R | k | transfers inside the chunks, µs | × plain | chunks end at transfers, µs | × plain | speed-up |")
    print("|---|---|---|---|---|---|---|---|")
    for mode, r, k in keys:
        i, o = best[(mode, r, k, True)], best[(mode, r, k, False)]
        print(f"| {mode} | {r} | {k} | {i:.1f} | {i / plain:.3f} | {o:.1f} | {o / plain:.3f} | {o / i:.2f}× |")


if __name__ == "__main__":
    main()
