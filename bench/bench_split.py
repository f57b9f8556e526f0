"""How a compiled chunk should share its work over the threads: each step's rows (and each segment's
samples) split, or whole replicas per thread — the figures behind ``fast_step.by_replica`` and
``_Chunk.run``'s choice. Alternating rounds (min of rounds), µs per sample-replica, chunks of
``--steps`` steps on the paper's MNIST network (batch 1, p = 0.2, k = 100), for hm-var (a segment's
passes at once) and fp (passes step by step) at each R. The split is forced by handing
``fast_step`` the chunk kernel of that split (both kernels take the same arguments; same bits).

    OMP_NUM_THREADS=2 python bench/bench_split.py --threads 2 [--replicas 10,20,40] [--rounds 7]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_step import SIZES, _alternate, _data, _plain_fn  # noqa: E402

from ferristor.experiments import fast_step  # noqa: E402
from ferristor.experiments.fit import set_threads  # noqa: E402
from ferristor.nn import HybridConfig, HybridMLP, NetworkSpec, train_cpu  # noqa: E402
from ferristor.optim import HybridSGD  # noqa: E402


def _chunks_fn(mode: str, replicas: int, steps: int, split: str):
    m = HybridMLP(NetworkSpec(SIZES), config=HybridConfig(mode=mode), replicas=replicas, seeds=list(range(replicas)))
    opt = HybridSGD(m.parameters(), lr=0.1, p=0.2, k=100)
    x, y = (t.numpy() for t in _data(steps + 50))
    idx = (np.arange(replicas)[:, None] * 7 + np.arange(steps)[None, :]) % len(x)
    rows = train_cpu.mlp_train_chunk_dense  # what _Chunk.run takes for dense-sampler layers

    def run():
        chosen = fast_step.by_replica
        fast_step.by_replica = lambda n, threads=None, passes_at_once=False: False  # the rows kernel, always…
        if split == "replicas":  # …which is here the replica split's
            train_cpu.mlp_train_chunk_dense = train_cpu.mlp_train_chunk_by_replica
        try:
            fast_step.run(m, opt, x, y, idx)
        finally:
            fast_step.by_replica, train_cpu.mlp_train_chunk_dense = chosen, rows
    return run


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--replicas", default="10,20,40")
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=7)
    a = ap.parse_args()
    set_threads(a.threads)
    fns = {"plain PyTorch loop (nn.Linear + LayerNorm + autograd + SGD)": (_plain_fn(200), 200)}
    for mode in ("hm-var", "fp"):
        for r in (int(v) for v in a.replicas.split(",")):
            for split in ("rows", "replicas"):
                fns[f"{mode} R={r}, {split} split"] = (_chunks_fn(mode, r, a.steps, split), a.steps * r)
    best = _alternate(fns, a.rounds)
    print(f"\nthreads={a.threads}, chunks of {a.steps} steps, min of {a.rounds} alternating rounds")
    for name, s in best.items():
        print(f"{name:62} {s * 1e6:8.1f} µs/sample-replica")


if __name__ == "__main__":
    main()
