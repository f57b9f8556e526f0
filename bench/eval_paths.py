"""How much evaluation depends on the machine: the same trained model evaluated by torch's matmul
(what ferristor's evaluation uses: fast, CPU-dependent last bits) and by ferristor's deterministic
CPU kernels (what training uses). Prints the largest logit difference and how many of the test
predictions differ.

    python bench/eval_paths.py --data-dir ../shared/data [--epochs 1] [--seeds 0-2]
"""
from __future__ import annotations

import argparse

import torch

from ferristor.data import load_dataset
from ferristor.experiments.config import task_config
from ferristor.experiments.seeds import parse_seeds
from ferristor.experiments.train import train


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--epochs", type=float, default=1.0)
    ap.add_argument("--seeds", default="0-2")
    ap.add_argument("--out", default="runs/eval-paths")
    a = ap.parse_args()
    data = load_dataset("mnist", a.data_dir)
    cfg = task_config("mnist", "hm-var", epochs=a.epochs, seeds=parse_seeds(a.seeds), eval_every=a.epochs,
                      data_dir=a.data_dir)
    train(cfg, a.out, progress=True)
    from ferristor.experiments.train import build_model
    model = build_model(cfg)
    model.load_state_dict(torch.load(f"{a.out}/checkpoint.pt", weights_only=False)["model"])
    x = data.x_test.expand(len(cfg.seeds), *data.x_test.shape)
    with torch.no_grad():
        fast = model(x)  # evaluation: torch.bmm
    model.train()
    with torch.enable_grad():
        det = model(x.clone().requires_grad_(False)).detach()  # the training passes (fused numba kernels)
    diff = (fast - det).abs().max().item()
    flips = (fast.argmax(-1) != det.argmax(-1)).sum().item()
    print(f"max |logit difference| {diff:.3g}; predictions that differ: {flips} of {x.shape[0] * x.shape[1]}")


if __name__ == "__main__":
    main()
