"""Convert a float LeNet-5 to hybrid FeCAP/memristor synapses and train it on-chip on Fashion-MNIST.

    python examples/convert_lenet.py --data-dir /path/to/data                 # small defaults, about a minute
    # RESULTS.md's measurement (settings chosen on the validation split), ≈ 2–4 min per run on one core:
    python examples/convert_lenet.py --data-dir /path/to/data --train-limit 0 --test-limit 0 --float-epochs 2 \
        --fit-quantile 0.99 --epochs 3 --batch 16 --lr 0.03 --p 0.2 --k 100 --mode hm-var --seed 0

1. A float LeNet-5 (conv 6@5×5 pad 2 → pool → conv 16@5×5 → pool → fc 120 → 84 → 10, ReLU) is built
   and, with ``--float-epochs`` > 0, trained in float with plain SGD (0: converted from its random init).
2. ``ferristor.convert`` maps every conv and linear layer (weights and biases) onto the hidden grid,
   each layer on its own scale (``--weight-scale fit``: its largest |weight| on the top of the grid),
   and programs the memristors (``--fit-quantile 0.99``: each layer's 99th percentile of |w| on the top,
   the largest 1 % saturated — finer levels for the bulk of the weights).
3. ``ferristor.fit`` trains the converted model on-chip with the paper's rule (HybridSGD: masked,
   rounded updates of the hidden weights, a transfer every ``--k`` inputs), in ``--mode`` hm-var, hm or
   fp (the same masked rule on float weights: the baseline).

It prints the accuracy before and after the on-chip training, and the ledger per layer.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import ferristor
from ferristor.data import load_dataset
from ferristor.data.registry import Dataset
from ferristor.experiments.fit import evaluate, set_threads
from ferristor.nn import HybridConfig, format_ledger, quantile_scale


def lenet5() -> nn.Sequential:
    """LeNet-5 for 28×28 inputs given flattened (as ``fit`` gives them): padding 2 on the first conv."""
    return nn.Sequential(
        nn.Unflatten(1, (1, 28, 28)),
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(16 * 5 * 5, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))


def train_float(model: nn.Module, x: torch.Tensor, y: torch.Tensor, epochs: float, lr: float, batch: int,
                seed: int, progress: bool) -> None:
    """Plain float training: SGD with momentum 0.9, mini-batches in a seeded order."""
    from tqdm.auto import tqdm

    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    g = torch.Generator().manual_seed(seed)
    steps = round(epochs * (len(x) // batch))
    order = torch.cat([torch.randperm(len(x), generator=g) for _ in range(int(epochs) + 1)])
    for t in tqdm(range(steps), desc="float pre-training", unit="step", disable=not progress, mininterval=1.0):
        idx = order[t * batch:(t + 1) * batch]
        loss = F.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()


def float_network(args, data: Dataset, progress: bool) -> nn.Sequential:
    """The float LeNet-5 of ``--seed``, trained in float on the samples ``fit`` will not hold out for
    validation (its split: ``default_rng([validation_seed=0, 5]).permutation(n)``), or read from
    ``--float-state`` when that file holds one trained by the same recipe."""
    torch.manual_seed(args.seed)
    model = lenet5()
    recipe = {k: getattr(args, k) for k in ("dataset", "seed", "float_epochs", "float_lr", "float_batch",
                                            "train_limit", "validation")}
    state = Path(args.float_state) if args.float_state else None
    if state is not None and state.exists():
        saved = torch.load(state, weights_only=True)
        if saved["recipe"] != recipe:
            raise SystemExit(f"--float-state {state} holds a network trained with {saved['recipe']}, "
                             f"not {recipe}: remove it or give another file")
        model.load_state_dict(saved["model"])
        return model
    if args.float_epochs > 0:
        n = len(data.x_train)
        n_val = max(1, round(args.validation * n)) if args.validation else 0
        keep = torch.from_numpy(np.random.default_rng([0, 5]).permutation(n))[n_val:]
        train_float(model, data.x_train[keep], data.y_train[keep], args.float_epochs, args.float_lr,
                    args.float_batch, args.seed, progress)
        if state is not None:
            torch.save({"recipe": recipe, "model": model.state_dict()}, state)
    return model


def summary(config: dict, accuracies: dict, result, float_seconds: float, wall: float) -> dict:
    """What ``--json`` writes: the settings, accuracies, history, times and the ledger (no histograms)."""
    res, led = result.results, result.ledger
    return {"config": config, **accuracies, "test_accuracy": res["final_test_accuracy"][0],
            "val_accuracy": res.get("final_val_accuracy", [None])[0], "history": res["history"],
            "float_seconds": float_seconds, "train_seconds": res["timing"]["train_seconds"], "wall_seconds": wall,
            "ledger": {k: v for k, v in led[0].items() if k != "layers"} if led else None,
            "ledger_layers": [{k: v for k, v in layer.items() if k != "histogram"} for layer in led[0]["layers"]]
            if led else None}


def weight_scale(text: str):
    return text if text in ("fit", "paper") else float(text)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", default=None, help="data root holding fashion-mnist/ (else FERRISTOR_DATA, the cache)")
    ap.add_argument("--dataset", default="fashion-mnist", choices=["fashion-mnist", "mnist"])
    ap.add_argument("--mode", default="hm-var", choices=["hm-var", "hm", "fp"])
    ap.add_argument("--seed", type=int, default=0, help="float init and order, the chip (variability, masks), sample order")
    ap.add_argument("--float-epochs", type=float, default=1.0, help="float pre-training (0: convert the random init)")
    ap.add_argument("--float-lr", type=float, default=0.02)
    ap.add_argument("--float-batch", type=int, default=32)
    ap.add_argument("--float-state", default=None, help="a file for the float network: loaded when it exists "
                    "(trained with the same seed and float settings), else trained and saved there")
    ap.add_argument("--weight-scale", type=weight_scale, default="fit", help="'fit', 'paper' or an LSB value")
    ap.add_argument("--fit-quantile", type=float, default=None,
                    help="instead of --weight-scale: each layer's q-quantile of |w| on the grid's top (1 = 'fit')")
    ap.add_argument("--epochs", type=float, default=1.0, help="on-chip training epochs")
    ap.add_argument("--batch", type=int, default=1, help="on-chip mini-batch (1 = online, the paper's setting)")
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--p", type=float, default=0.2)
    ap.add_argument("--k", type=int, default=100)
    ap.add_argument("--rounding", default="stochastic", choices=["stochastic", "nearest", "truncate"],
                    help="how an update lands on the hidden grid")
    ap.add_argument("--train-limit", type=int, default=6000, help="train on the first N training samples (0 = all)")
    ap.add_argument("--test-limit", type=int, default=2000, help="evaluate on the first N test samples (0 = all)")
    ap.add_argument("--validation", type=float, default=0.1, help="fraction of the training set held out")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=None, help="a folder for results.json and checkpoints (a rerun resumes)")
    ap.add_argument("--json", default=None, help="write a summary (accuracies, ledger, times) to this file")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    set_threads(args.threads)
    progress = not args.no_progress
    t_start = time.perf_counter()

    full = load_dataset(args.dataset, args.data_dir)
    n, nt = args.train_limit or len(full.x_train), args.test_limit or len(full.x_test)
    data = Dataset(full.name, full.x_train[:n], full.y_train[:n], full.x_test[:nt], full.y_test[:nt], 10)

    # 1. the float network, trained in float on the training part only (the validation part stays unseen)
    t0 = time.perf_counter()
    model = float_network(args, data, progress)
    float_seconds = time.perf_counter() - t0
    float_acc = evaluate(model, data.x_test, data.y_test, None)[0]

    # 2. convert: every Conv2d and Linear onto hybrid synapses (one chip, seeded)
    scale = args.weight_scale if args.fit_quantile is None else quantile_scale(args.fit_quantile)
    converted = ferristor.convert(model, HybridConfig(mode=args.mode), seed=args.seed, weight_scale=scale)
    converted_acc = evaluate(converted, data.x_test, data.y_test, None)[0]

    # 3. on-chip training with the paper's rule
    config = {k: v for k, v in vars(args).items() if k not in ("out", "json", "no_progress", "float_state")}
    result = ferristor.fit(converted, data, epochs=args.epochs, batch=args.batch, lr=args.lr, p=args.p, k=args.k,
                           rounding=args.rounding, validation=args.validation, out=args.out, progress=progress,
                           config=config, eval_every=min(1.0, args.epochs))
    res = result.results
    wall = time.perf_counter() - t_start

    print(f"\nLeNet-5 on {data.name} ({len(data.x_train):,} training samples, {args.validation:.0%} held out; "
          f"{len(data.x_test):,} test samples), mode {args.mode}, seed {args.seed}")
    print(f"float network after {args.float_epochs:g} float epoch(s): test accuracy {100 * float_acc:.2f} %")
    print(f"converted, before on-chip training:  test accuracy {100 * converted_acc:.2f} %")
    val = f", validation accuracy {100 * res['final_val_accuracy'][0]:.2f} %" if args.validation else ""
    print(f"after {args.epochs:g} on-chip epoch(s) (batch {args.batch}, lr {args.lr}, p {args.p}, k {args.k}): "
          f"test accuracy {100 * res['final_test_accuracy'][0]:.2f} %{val}")
    print(f"time: float {float_seconds:.1f} s, on-chip {res['timing']['train_seconds']:.1f} s, wall {wall:.1f} s")
    if result.ledger:
        print("\nledger (one chip):")
        print(format_ledger(result.ledger[0]))
    else:
        print("\nno device ledger: mode fp keeps float weights")
    out = summary(config, {"float_test_accuracy": float_acc, "converted_test_accuracy": converted_acc}, result,
                  float_seconds, wall)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1, default=str)
    return out


if __name__ == "__main__":
    main()
