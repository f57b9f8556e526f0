"""Per-sample training cost of the models a user writes, against plain PyTorch doing the same work.

Alternating rounds (min of rounds; fair on a drifting host), µs per sample at batch 1, one network,
in this process at one thread count:
  - MLP 784–200–100–10 with LayerNorm: the plain PyTorch loop (nn.Linear + LayerNorm + autograd +
    optim.SGD) against the same ``nn.Sequential`` of ``HybridLinear`` + ``Normalize`` + ReLU trained
    (a) by the same autograd loop with ``HybridSGD`` and (b) by ``fit``'s compiled chunks of its
    ``HybridMLP`` view (``fast_step.compiled_model``; the same steps bit for bit) — and
    ``HybridMLP`` itself, for reference;
  - a float MLP 784–200–100–10 with biases and ReLU (no norm) converted by ``ferristor.convert``: the
    plain PyTorch loop against the converted network by autograd and by ``fit``'s compiled chunks;
  - LeNet-5 (conv 6@5×5 → pool → conv 16@5×5 → pool → 120 → 84 → 10): plain PyTorch against the same
    network converted by ``ferristor.convert`` (``HybridConv2d`` + ``HybridLinear``), autograd loop
    (no compiled path for convolutions).

    OMP_NUM_THREADS=1 python bench/bench_models.py --threads 1 [--steps 200] [--rounds 5] [--json out.json]
    [--only LeNet] [--numba-threads N]   # rows whose name contains a string; numba's pool apart from torch's
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_step import SIZES, _alternate, _data, _mlp_layers  # noqa: E402

from ferristor.cpus import describe  # noqa: E402
import ferristor  # noqa: E402
from ferristor.atomic import atomic_write  # noqa: E402
from ferristor.experiments import fast_step  # noqa: E402
from ferristor.experiments.fit import set_threads  # noqa: E402
from ferristor.nn import HybridConfig, HybridLinear, HybridMLP, NetworkSpec, Normalize  # noqa: E402
from ferristor.nn import functional as nnF  # noqa: E402
from ferristor.optim import HybridSGD  # noqa: E402


def _autograd_fn(net, opt, loss_fn, steps: int, image: bool = False):
    x, y = _data(steps)
    if image:
        x = x.reshape(-1, 1, 28, 28)

    def run():
        for k in range(steps):
            loss = loss_fn(net(x[k:k + 1]), y[k:k + 1])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return run


def _hybrid_sequential():
    return _mlp_layers(lambda a, b, i: HybridLinear(a, b, seeds=0, name=f"fc{i + 1}"), lambda b: Normalize())


def _chunks_fn(model, steps: int):
    opt = HybridSGD(model.parameters(), lr=0.1, p=0.2, k=100)
    runner = fast_step.compiled_model(model)
    assert runner is not None and fast_step.applies(runner, opt, True, torch.zeros(1, SIZES[0]))
    x, y = (t.numpy() for t in _data(steps))
    idx = np.arange(steps)[None, :]
    return lambda: fast_step.run(runner, opt, x, y, idx)


def _float_mlp():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(784, 200), nn.ReLU(), nn.Linear(200, 100), nn.ReLU(), nn.Linear(100, 10))


def _converted_mlp():
    return ferristor.convert(_float_mlp(), config=HybridConfig(mode="hm-var"), seed=0, weight_scale="fit")


def _lenet(hybrid: bool):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5), nn.ReLU(),
                        nn.MaxPool2d(2), nn.Flatten(), nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
                        nn.Linear(84, 10))
    if not hybrid:
        return net, torch.optim.SGD(net.parameters(), lr=0.01)
    net = ferristor.convert(net, config=HybridConfig(mode="hm-var"), seed=0, weight_scale="fit")
    return net, HybridSGD(net.parameters(), lr=0.01, p=0.2, k=100)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--json", default=None)
    ap.add_argument("--only", default=None, help="time only the rows whose name contains this string")
    ap.add_argument("--numba-threads", type=int, default=None, help="numba's threads (default: --threads)")
    a = ap.parse_args()
    set_threads(a.threads)
    if a.numba_threads:
        import numba
        numba.set_num_threads(a.numba_threads)
    torch.manual_seed(0)
    plain = _mlp_layers(lambda a_, b, i: nn.Linear(a_, b, bias=False), lambda b: nn.LayerNorm(b, elementwise_affine=False))
    own = _hybrid_sequential()
    mlp = HybridMLP(NetworkSpec(SIZES), config=HybridConfig(mode="hm-var"), seeds=0)
    rows = {
        "MLP: plain PyTorch loop (nn.Linear + LayerNorm + autograd + SGD)":
            _autograd_fn(plain, torch.optim.SGD(plain.parameters(), lr=0.1), F.cross_entropy, a.steps),
        "MLP: own Sequential of HybridLinear + Normalize + ReLU, autograd loop + HybridSGD":
            _autograd_fn(own, HybridSGD(own.parameters(), lr=0.1, p=0.2, k=100), nnF.cross_entropy, a.steps),
        "MLP: the same Sequential in fit's compiled chunks (its HybridMLP view)": _chunks_fn(_hybrid_sequential(), a.steps),
        "MLP: HybridMLP in compiled chunks (ferristor train)": _chunks_fn(mlp, a.steps),
    }
    fl, cv = _float_mlp(), _converted_mlp()
    rows.update({
        "float MLP with biases: plain PyTorch loop (nn.Linear + ReLU + autograd + SGD)":
            _autograd_fn(fl, torch.optim.SGD(fl.parameters(), lr=0.01), F.cross_entropy, a.steps),
        "float MLP with biases: converted (hm-var), autograd loop + HybridSGD":
            _autograd_fn(cv, HybridSGD(cv.parameters(), lr=0.01, p=0.2, k=100), nnF.cross_entropy, a.steps),
        "float MLP with biases: converted, in fit's compiled chunks": _chunks_fn(_converted_mlp(), a.steps),
    })
    for hybrid in (False, True):
        net, opt = _lenet(hybrid)
        label = "converted to HybridConv2d + HybridLinear (hm-var), autograd loop + HybridSGD" if hybrid else \
            "plain PyTorch loop (nn.Conv2d + nn.Linear + autograd + SGD)"
        rows[f"LeNet-5: {label}"] = _autograd_fn(net, opt, F.cross_entropy, a.steps, image=True)
    rows = {k: fn for k, fn in rows.items() if a.only is None or a.only in k}
    best = _alternate({k: (fn, a.steps) for k, fn in rows.items()}, a.rounds)
    anchor = {kind: best[next(k for k in rows if k.startswith(kind + ":"))]
              for kind in ("MLP", "float MLP with biases", "LeNet-5") if any(k.startswith(kind + ":") for k in rows)}
    print(f"\n{describe()}, threads={a.threads}, batch 1, min of {a.rounds} "
          f"alternating rounds of {a.steps} steps")
    print(f"{'what':96} {'µs/sample':>10} {'× plain':>8}")
    for name, s in best.items():
        print(f"{name:96} {s * 1e6:10.1f} {s / anchor[name.split(':')[0]]:8.3f}")
    if a.json:
        with atomic_write(a.json, "w") as f:
            json.dump({"threads": a.threads, "steps": a.steps, "rounds": a.rounds,
                       "us_per_sample": {k: v * 1e6 for k, v in best.items()}}, f, indent=1)


if __name__ == "__main__":
    main()
