"""Per-sample training cost of each learning rule on the paper's MNIST network (784–200–100–10,
LayerNorm, batch 1), R replicas at once, in this process at one thread count: the whole training
step (``ferristor train``'s fused step), on the rules' fused CPU kernels and on their composed
form (``rule.compose``, the torch backend's path) — beside a plain PyTorch per-sample loop of the same
network (float32, autograd, optim.SGD: ``bench_step.plain_pytorch``) in the same process.

    python bench/bench_rules.py --threads 1 [--steps 200] [--replicas 5] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from ferristor.atomic import atomic_write
from ferristor.backend import use_backend
from ferristor.experiments import fast_step
from ferristor.experiments.fit import set_threads
from ferristor.nn import HybridConfig, HybridMLP, NetworkSpec
from ferristor.optim import HybridSGD
from ferristor.rule.schemes import SchemeConfig

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_step import plain_pytorch  # noqa: E402

RULES = [("fp", "fp", {}, 100), ("hm-var", "hm-var", {}, 100), ("memristor-sgd", "hm-var", {"rule": "memristor-sgd"}, 100),
         ("mixed-precision", "hm-var", {"rule": "mixed-precision"}, 1), ("tiki-taka", "hm-var", {"rule": "tiki-taka"}, 1)]


def _time(label, mode, scheme, k, steps, replicas, backend):
    with use_backend(backend):
        cfg = HybridConfig(mode=mode, scheme=SchemeConfig(**scheme))
        model = HybridMLP(NetworkSpec(), config=cfg, replicas=replicas, seeds=list(range(replicas)))
        opt = HybridSGD(model.parameters(), lr=0.1, p=0.2, k=k)
        g = torch.Generator().manual_seed(0)
        x = (torch.rand(steps + 20, replicas, 1, 784, generator=g) * 2 - 1)
        y = torch.randint(0, 10, (steps + 20, replicas, 1), generator=g)
        fast = backend == "numba" and fast_step.applies(model, opt, True, x[0])
        from ferristor.nn import functional as nnF

        def step(i):
            if fast:
                fast_step.step(model, opt, x[i].numpy(), y[i].numpy())
            else:
                loss = nnF.cross_entropy(model(x[i]), y[i])
                opt.zero_grad()
                loss.backward()
                opt.step()
        for i in range(20):  # compile and warm up
            step(i)
        t0 = time.perf_counter()
        for i in range(20, 20 + steps):
            step(i)
        dt = time.perf_counter() - t0
    return {"rule": label, "backend": backend, "us_per_sample_replica": 1e6 * dt / (steps * replicas)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--replicas", type=int, default=5)
    ap.add_argument("--torch-steps", type=int, default=20, help="steps of the composed (torch) path, 0 to skip")
    ap.add_argument("--json")
    args = ap.parse_args()
    set_threads(args.threads)
    rows = [{"rule": "plain PyTorch", "backend": "torch", "us_per_sample_replica": plain_pytorch(args.steps)}]
    for label, mode, scheme, k in RULES:
        rows.append(_time(label, mode, scheme, k, args.steps, args.replicas, "numba"))
        if args.torch_steps:
            rows.append(_time(label, mode, scheme, k, args.torch_steps, args.replicas, "torch"))
    print(f"MNIST 784-200-100-10, batch 1, R = {args.replicas}, {args.threads} thread(s): µs per sample-replica")
    plain = rows[0]["us_per_sample_replica"]
    print(f"  {'rule':<16} {'path':<6} {'µs':>9} {'× plain':>8}")
    for r in rows:
        print(f"  {r['rule']:<16} {r['backend']:<6} {r['us_per_sample_replica']:9.1f} {r['us_per_sample_replica'] / plain:8.2f}")
    if args.json:
        with atomic_write(args.json, "w") as f:
            json.dump({"threads": args.threads, "replicas": args.replicas, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
