"""Your own tensors through ``ferristor.fit``: two interleaved half-moons, built with torch.

    python examples/own_tensors.py                      # 1,000 points, 10 epochs, about 15 s
    python examples/own_tensors.py --mode fp --epochs 50

A small network of ``HybridLinear`` layers with bias columns (a crossbar row driven by a constant
input, counted in the ledger with the weights) learns the two classes with the paper's rule; ``fit``
holds out a validation split, evaluates, and returns the results — with the dataset's name and
fingerprint — and the ledger. With ``--out`` it writes ``results.json`` and checkpoints there, and the
same command resumes an interrupted run bit for bit.
"""
from __future__ import annotations

import argparse
import math

import torch
from torch import nn

import ferristor
from ferristor.experiments.fit import set_threads
from ferristor.nn import HybridConfig, HybridLinear, Normalize, format_ledger


def two_moons(n: int, noise: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """n points on two interleaved half-circles with Gaussian noise, standardised; labels 0 and 1."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    t = math.pi * torch.rand(n, generator=g)
    upper = torch.stack([torch.cos(t), torch.sin(t)], 1)
    lower = torch.stack([1 - torch.cos(t), 0.5 - torch.sin(t)], 1)
    x = torch.where(y[:, None] == 0, upper, lower) + noise * torch.randn(n, 2, generator=g)
    return (x - torch.tensor([0.5, 0.25])) / torch.tensor([0.87, 0.5]), y


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--samples", type=int, default=1000, help="training points (and as many test points)")
    ap.add_argument("--noise", type=float, default=0.15)
    ap.add_argument("--hidden", type=int, default=32)
    ap.add_argument("--mode", default="hm-var", choices=["hm-var", "hm", "fp"])
    ap.add_argument("--epochs", type=float, default=10)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--p", type=float, default=0.5)
    ap.add_argument("--k", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--validation", type=float, default=0.1)
    ap.add_argument("--out", default=None, help="a folder for results.json and checkpoints (a rerun resumes)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    set_threads(args.threads)

    train = two_moons(args.samples, args.noise, seed=2 * args.seed)
    test = two_moons(args.samples, args.noise, seed=2 * args.seed + 1)
    cfg = HybridConfig(mode=args.mode)
    model = nn.Sequential(
        HybridLinear(2, args.hidden, bias=True, config=cfg, seeds=args.seed, name="fc1"), Normalize(), nn.ReLU(),
        HybridLinear(args.hidden, 2, bias=True, config=cfg, seeds=args.seed, name="fc2"))

    result = ferristor.fit(model, train, test, epochs=args.epochs, batch=args.batch, lr=args.lr, p=args.p, k=args.k,
                           validation=args.validation, name="two-moons", out=args.out, progress=not args.no_progress,
                           eval_every=max(args.epochs / 4, 1 / (args.samples // args.batch)))
    res = result.results
    ds = res["dataset"]
    print(f"\ndataset {ds['name']} (fingerprint {ds['fingerprint']}): {ds['train']:,} training points "
          f"({ds['validation']:.0%} held out), {ds['test']:,} test points, {ds['classes']} classes")
    for h in res["history"]:
        val = f", validation {100 * h['val_accuracy'][0]:.2f} %" if "val_accuracy" in h else ""
        print(f"epoch {h['epoch']:6.2f}: test accuracy {100 * h['test_accuracy'][0]:.2f} %{val}")
    print(f"{args.mode}, seed {args.seed}: test accuracy {100 * res['final_test_accuracy'][0]:.2f} % after "
          f"{res['samples_per_replica']:,} samples ({res['timing']['train_seconds']:.1f} s)")
    print("\nledger (one chip):\n" + format_ledger(result.ledger[0]) if result.ledger else "\nno device ledger in fp mode")


if __name__ == "__main__":
    main()
