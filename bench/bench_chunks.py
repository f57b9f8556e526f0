"""Compiled chunks of the paper's MNIST network (``ferristor train``'s path, hm-var, batch 1, k = 100),
µs per sample-replica at R = 1 and R = 10 — for an A/B of two checkouts, in alternating processes
(this host's speed drifts): ``--src`` puts another checkout's ``src`` first on the import path.

    OMP_NUM_THREADS=1 python bench/bench_chunks.py --threads 1 [--src /path/to/other/checkout/src]
"""
from __future__ import annotations

import argparse
import sys
import time


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--src", default=None, help="import ferristor from this src folder (a worktree of another commit)")
    a = ap.parse_args()
    if a.src:
        sys.path.insert(0, a.src)
    import numpy as np
    import torch

    import ferristor
    from ferristor.experiments import fast_step
    from ferristor.experiments.fit import set_threads
    from ferristor.nn import HybridConfig, HybridMLP, NetworkSpec
    from ferristor.optim import HybridSGD
    set_threads(a.threads)
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(1000, 784, generator=g) * 2 - 1).numpy()
    y = torch.randint(0, 10, (1000,), generator=g).numpy()
    out = []
    for r in (1, 10):
        m = HybridMLP(NetworkSpec((784, 200, 100, 10)), config=HybridConfig(mode="hm-var"), replicas=r,
                      seeds=list(range(r)))
        opt = HybridSGD(m.parameters(), lr=0.1, p=0.2, k=100)
        idx = (np.arange(r)[:, None] * 7 + np.arange(a.steps)[None, :]) % len(x)
        fast_step.run(m, opt, x, y, idx)  # compile or load, warm up
        best = float("inf")
        for _ in range(a.rounds):
            t = time.perf_counter()
            fast_step.run(m, opt, x, y, idx)
            best = min(best, time.perf_counter() - t)
        out.append(f"R={r}: {best / a.steps / r * 1e6:.1f}")
    print(f"{ferristor.__file__}, threads={a.threads}, µs per sample-replica (min of {a.rounds}): " + "  ".join(out))


if __name__ == "__main__":
    main()
