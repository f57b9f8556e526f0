"""Per-sample training cost: ferristor's hybrid step vs a plain PyTorch per-sample loop.

Prints a table of µs per sample-replica for the MNIST network (784-200-100-10, LayerNorm):
  - plain PyTorch: nn.Linear + LayerNorm + autograd + optim.SGD, batch 1, float32 (one network);
  - ferristor fp / hm / hm-var at R = 1 and R = 10 replicas, fused numba kernels and torch reference;
and where the time of one hm-var step goes (forward, backward, update per layer, transfer).
All rows run in this process with the same thread count.

    python bench/bench_step.py --threads 1 [--steps 400] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import platform
import time

import torch

from ferristor.circuit.transfer import TransferConfig
from ferristor.experiments.train import set_threads
from ferristor.nn import HybridMLP, NetworkSpec
from ferristor.rule.config import RuleConfig
from ferristor.rule.rng import step_keys

SIZES = (784, 200, 100, 10)


def _data(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, SIZES[0], generator=g) * 2 - 1, torch.randint(0, 10, (n,), generator=g)


def plain_pytorch(steps: int) -> float:
    """µs per sample of the textbook per-sample loop."""
    torch.manual_seed(0)
    layers = []
    for i, (a, b) in enumerate(zip(SIZES[:-1], SIZES[1:])):
        layers += [torch.nn.Linear(a, b, bias=False), torch.nn.LayerNorm(b, elementwise_affine=False)]
        if i < len(SIZES) - 2:
            layers.append(torch.nn.ReLU())
    net = torch.nn.Sequential(*layers)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    loss_fn = torch.nn.CrossEntropyLoss()
    x, y = _data(steps + 50)
    for i in range(50):
        opt.zero_grad(); loss_fn(net(x[i:i + 1]), y[i:i + 1]).backward(); opt.step()
    t = time.perf_counter()
    for i in range(50, 50 + steps):
        opt.zero_grad(); loss_fn(net(x[i:i + 1]), y[i:i + 1]).backward(); opt.step()
    return (time.perf_counter() - t) / steps * 1e6


def _model(mode, replicas, backend):
    tr = TransferConfig(model="table" if mode == "hm-var" else "ideal")
    m = HybridMLP(NetworkSpec(SIZES), list(range(replicas)), mode=mode, rule=RuleConfig(), transfer=tr, backend=backend)
    m.reset_parameters()
    return m


def ferristor_step(mode: str, replicas: int, backend: str, steps: int) -> float:
    """µs per sample-replica of HybridMLP.train_step (transfers every k = 100 included)."""
    m = _model(mode, replicas, backend)
    x, y = _data(steps + 20)
    idx = lambda i: (torch.arange(replicas) * 7 + i) % len(x)  # noqa: E731
    for i in range(20):
        m.train_step(x[idx(i)], y[idx(i)])
    t = time.perf_counter()
    for i in range(20, 20 + steps):
        m.train_step(x[idx(i)], y[idx(i)])
    return (time.perf_counter() - t) / (steps * replicas) * 1e6


def breakdown(replicas: int, steps: int) -> dict[str, float]:
    """µs per sample-replica of each part of an hm-var step (numba backend)."""
    m = _model("hm-var", replicas, "numba")
    x, y = _data(replicas)
    parts: dict[str, float] = {}

    def timed(name, fn, n=steps):
        fn()
        t = time.perf_counter()
        for _ in range(n):
            fn()
        parts[name] = (time.perf_counter() - t) / (n * replicas) * 1e6

    w = [t.numpy() for t in m.weights()]
    xn, yn = x.numpy(), y.numpy()
    timed("forward + backward (fused)", lambda: m._fused.run(w, xn, yn))
    deltas, inputs = m._fused.run(w, xn, yn)
    for li, bank in enumerate(m.banks):
        keys = step_keys(m._update_keys, 1, li)
        d, inp = deltas[li].copy(), inputs[li].copy()
        timed(f"update layer {li + 1} ({bank.out_features}x{bank.in_features})", lambda: bank.update_rank1_numpy(d, inp, keys))
    timed("transfer, all layers (÷ k = 100)", lambda: [b.program(m.generators) for b in m.banks], max(5, steps // 20))
    parts["transfer, all layers (÷ k = 100)"] /= m.rule.k
    return parts


TRANSFER_CASES = (  # (label, mode, transfer model, backend): tensor passes (torch) vs fused kernel (numba)
    ("ideal (hm), torch tensor passes", "hm", "ideal", "torch"),
    ("ideal (hm), fused numba", "hm", "ideal", "numba"),
    ("table (hm-var), torch tensor passes", "hm-var", "table", "torch"),
    ("table (hm-var), fused numba", "hm-var", "table", "numba"),
    ("circuit (hm-var)", "hm-var", "circuit", "numba"),
)


def transfer_cost(replicas: int = 1, repeats: int = 10) -> dict[str, float]:
    """µs to program every weight of the MNIST network once, per transfer model and path."""
    out = {}
    for label, mode, model, backend in TRANSFER_CASES:
        m = HybridMLP(NetworkSpec(SIZES), list(range(replicas)), mode=mode, transfer=TransferConfig(model=model),
                      backend=backend)
        m.reset_parameters()
        n = 3 if model == "circuit" else repeats
        t = time.perf_counter()
        for _ in range(n):
            for b in m.banks:
                b.program(m.generators)
        out[label] = (time.perf_counter() - t) / n * 1e6
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    set_threads(a.threads)
    rows = [("plain PyTorch loop (autograd + SGD)", 1, "torch", plain_pytorch(a.steps))]
    for mode in ("hm-var", "hm", "fp"):
        for r in (1, 10):
            rows.append((f"ferristor {mode}", r, "numba", ferristor_step(mode, r, "numba", a.steps // (1 if r == 1 else 4))))
    rows.append(("ferristor hm-var (torch reference)", 10, "torch", ferristor_step("hm-var", 10, "torch", a.steps // 8)))
    base = rows[0][3]
    print(f"\nmachine: {platform.processor() or platform.machine()}, threads={a.threads}, torch {torch.__version__}")
    print(f"{'what':40s} {'R':>3s} {'backend':>8s} {'µs/sample-replica':>18s} {'× plain':>8s}")
    for name, r, be, us in rows:
        print(f"{name:40s} {r:3d} {be:>8s} {us:18.1f} {us / base:8.2f}")
    parts = breakdown(10, a.steps // 4)
    print("\nwhere an hm-var step goes at R = 10 (µs per sample-replica):")
    for k, v in parts.items():
        print(f"  {k:40s} {v:8.1f}")
    cost = transfer_cost()
    n_w = sum(a * b for a, b in zip(SIZES[:-1], SIZES[1:]))
    print(f"\none transfer of all {n_w:,} weights (R = 1):")
    for k, v in cost.items():
        print(f"  {k:40s} {v / 1e3:8.2f} ms {v * 1e3 / n_w:8.2f} ns/weight")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"threads": a.threads, "rows": rows, "breakdown": parts, "transfer_us": cost}, f, indent=1)


if __name__ == "__main__":
    main()
