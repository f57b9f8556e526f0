"""Per-sample training on a CUDA GPU: ferristor's graphed chunks against the plain-PyTorch ways of
doing the same work on the same GPU, in one process, µs per sample-replica (and per step), on the
paper's MNIST network (784–200–100–10, LayerNorm, batch 1), p = 0.2, hm-var and k = 100 unless
``--mode``/``--k`` say otherwise:

  - plain PyTorch loop on the GPU: nn.Linear + LayerNorm + autograd + optim.SGD, one network (R = 1);
  - replica-batched float: R plain networks in one bmm/autograd program (the fair anchor for R chips);
  - ferristor's module path: HybridMLP + HybridSGD in the plain loop (autograd), with the update as
    torch tensor operations and as the fused Triton kernel;
  - ferristor's chunks eager (the same steps, no CUDA graph) and graphed (what ``ferristor train
    --device cuda`` runs), with the transfers every k = 100 inputs between chunks.

    python bench/bench_gpu.py [--replicas 1,10,100,1000] [--steps 1000] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_step import SIZES, _BatchedMLP, _mlp_layers  # noqa: E402

from ferristor.cpus import describe  # noqa: E402
from ferristor.atomic import atomic_write  # noqa: E402
from ferristor.backend import use_backend  # noqa: E402
from ferristor.experiments import fast_step  # noqa: E402
from ferristor.nn import HybridConfig, HybridMLP, NetworkSpec  # noqa: E402
from ferristor.nn import functional as nnF  # noqa: E402
from ferristor.optim import HybridSGD  # noqa: E402

N_DATA = 60000


def _data(dev, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(N_DATA, SIZES[0], generator=g) * 2 - 1).to(dev), torch.randint(0, 10, (N_DATA,), generator=g).to(dev)


def _sync():
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _timed(fn, steps: int, reps: int = 3, warm: int = 300) -> float:
    """Seconds per step: the fastest of ``reps`` runs of ``fn(steps)`` (after a warm-up), GPU synchronised."""
    fn(warm)
    best = float("inf")
    for _ in range(reps):
        _sync()
        t = time.perf_counter()
        fn(steps)
        _sync()
        best = min(best, (time.perf_counter() - t) / steps)
    return best


def _loop(model, opt, loss_fn, replicas, x, y):
    def run(steps):
        for k in range(steps):
            idx = (torch.arange(replicas, device=x.device) * 7 + k) % N_DATA
            xb, yb = (x[idx][:, None], y[idx][:, None]) if replicas > 1 else (x[idx], y[idx])
            loss = loss_fn(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
    return run


def plain_loop(x, y):
    torch.manual_seed(0)
    net = _mlp_layers(lambda a, b, i: torch.nn.Linear(a, b, bias=False),
                      lambda b: torch.nn.LayerNorm(b, elementwise_affine=False)).to(x.device)
    return _loop(net, torch.optim.SGD(net.parameters(), lr=0.1), F.cross_entropy, 1, x, y)


def batched_float(replicas, x, y):
    net = _BatchedMLP(replicas).to(x.device)
    loss = lambda out, yy: F.cross_entropy(out.reshape(-1, 10), yy.reshape(-1), reduction="sum")  # noqa: E731
    return _loop(net, torch.optim.SGD(net.parameters(), lr=0.1), loss, replicas, x, y)


RULE = {"mode": "hm-var", "k": 100}  # --mode, --k


def _model(replicas, dev):
    m = HybridMLP(NetworkSpec(SIZES), config=HybridConfig(mode=RULE["mode"]), replicas=replicas,
                  seeds=list(range(replicas))).to(dev)
    return m, HybridSGD(m.parameters(), lr=0.1, p=0.2, k=RULE["k"])


def module_path(replicas, x, y, backend="auto"):
    """The plain loop on hybrid modules; backend 'torch': the update as tensor operations (no Triton)."""
    m, opt = _model(replicas, x.device)
    loop = _loop(m, opt, nnF.cross_entropy, replicas, x, y)

    def run(steps):
        with use_backend(backend):
            loop(steps)
    return run


def chunks(replicas, x, y, graphs: bool, at_once: bool = True):
    """``at_once=False``: the torch passes step by step rather than the steps between two transfers
    at once (``nn.train_gpu.BLOCK_PASSES``, read when the plan is built)."""
    from ferristor.nn import train_gpu
    m, opt = _model(replicas, x.device)
    start = [0]

    def run(steps):
        idx = (np.arange(replicas)[:, None] * 7 + start[0] + np.arange(steps)[None, :]) % N_DATA
        start[0] += steps
        block, train_gpu.BLOCK_PASSES = train_gpu.BLOCK_PASSES, at_once
        try:
            plan = fast_step._gpu_plan(m, opt, x, y)
        finally:
            train_gpu.BLOCK_PASSES = block
        plan.steps.graphs_on = graphs
        fast_step._run_chunks(plan, x, y, idx, steps)
    return run


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--replicas", default="1,10,100,1000")
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--slow-steps", type=int, default=200, help="steps of the slow rows (module path, eager chunks)")
    ap.add_argument("--mode", default="hm-var", choices=["fp", "hm", "hm-var"],
                    help="hm: transfers inside the graphs (they draw nothing); hm-var: between chunks")
    ap.add_argument("--k", type=int, default=100, help="transfer period")
    ap.add_argument("--passes", default="torch", choices=["torch", "torch-steps", "fused", "both", "all"],
                    help="the chunks' passes: torch operations (the steps between transfers at once), the same "
                         "step by step, the fused Triton pass (FERRISTOR_GPU_PASSES); both: torch and fused; all: the three")
    ap.add_argument("--json", default=None)
    ap.add_argument("--device", default="cuda", help=argparse.SUPPRESS)  # 'cpu': a smoke test of the script
    args = ap.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("bench_gpu.py needs a CUDA GPU (torch.cuda.is_available() is False)")
    dev = torch.device(args.device)
    RULE.update(mode=args.mode, k=args.k)
    x, y = _data(dev)
    rows = []
    device_name = torch.cuda.get_device_name() if dev.type == "cuda" else "cpu"

    def save():  # after every row: a run stopped by its time limit keeps what it measured
        if args.json:
            with atomic_write(args.json, "w") as f:
                f.write(json.dumps({"device": device_name, "rows": rows}, indent=1))

    def row(name, replicas, fn, steps):
        try:
            s = _timed(fn, steps)
            rows.append({"row": name, "R": replicas, "us_per_step": s * 1e6, "us_per_sample_replica": s * 1e6 / replicas})
        except Exception as e:  # one failing row must not hide the others
            rows.append({"row": name, "R": replicas, "error": f"{type(e).__name__}: {e}"})
        print(rows[-1], flush=True)
        save()

    row("plain PyTorch loop (nn.Linear + LayerNorm + autograd + SGD)", 1, plain_loop(x, y), args.slow_steps)
    for r in [int(v) for v in args.replicas.split(",")]:
        if r > 1:
            row("replica-batched float (bmm + autograd + SGD)", r, batched_float(r, x, y), args.slow_steps)
        if r <= 10:
            row("ferristor module path, update as torch operations", r, module_path(r, x, y, "torch"), max(1, args.slow_steps // 4))
        if r <= 100:
            row("ferristor module path, fused Triton update", r, module_path(r, x, y), max(1, args.slow_steps // 2))
        chosen = {"both": ("torch", "fused"), "all": ("torch", "torch-steps", "fused")}.get(args.passes, (args.passes,))
        for passes in chosen:
            os.environ["FERRISTOR_GPU_PASSES"] = "fused" if passes == "fused" else "torch"
            tag = {"torch": "", "torch-steps": ", passes step by step", "fused": ", fused Triton passes"}[passes]
            at_once = passes != "torch-steps"
            row(f"ferristor chunks, eager{tag}", r, chunks(r, x, y, False, at_once), args.slow_steps)
            row(f"ferristor chunks, CUDA graphs{tag}", r, chunks(r, x, y, True, at_once), args.steps)
    plain = next(r_["us_per_sample_replica"] for r_ in rows if r_["row"].startswith("plain") and "error" not in r_)
    print(f"\nferristor rows: {args.mode}, k = {args.k}")
    print(f"{device_name} · torch {torch.__version__} · {describe()}")
    print(f"{'row':62} {'R':>5} {'µs/step':>10} {'µs/sample-replica':>18} {'× plain loop':>13}")
    for r_ in rows:
        if "error" in r_:
            print(f"{r_['row']:62} {r_['R']:>5} {r_['error']}")
            continue
        print(f"{r_['row']:62} {r_['R']:>5} {r_['us_per_step']:>10.1f} {r_['us_per_sample_replica']:>18.3f} "
              f"{r_['us_per_sample_replica'] / plain:>13.4f}")


if __name__ == "__main__":
    main()
