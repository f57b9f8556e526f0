"""ECG: do the paper's lr 0.3 and our 0.01 train on standardised or on raw |FFT| features?

The paper does not say how its ECG features are scaled (``ECGConfig.feature_scaling``). This trains
fp and hm-var at both rates on both scalings and prints the validation accuracy per seed (10 % of the
training beats held out; the test record is never read). RESULTS.md, "ECG learning rate".

    OMP_NUM_THREADS=1 python bench/ecg_feature_scaling.py --data-dir ../shared/data [--epochs 2] [--seeds 0-4]
"""
from __future__ import annotations

import argparse
import json
import warnings

from ferristor.data.ecg import FEATURE_SCALINGS, ECGConfig, load_ecg
from ferristor.errors import DivergedError
from ferristor.experiments.config import task_config
from ferristor.experiments.fit import run_fit, set_threads
from ferristor.experiments.seeds import parse_seeds
from ferristor.experiments.train import build_model, build_optimizer


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--epochs", type=float, default=2.0)
    ap.add_argument("--seeds", default="0-4")
    ap.add_argument("--lrs", default="0.3,0.01")
    args = ap.parse_args()
    set_threads(1)
    warnings.simplefilter("ignore")
    seeds, out = parse_seeds(args.seeds), {}
    for scaling in FEATURE_SCALINGS:
        data = load_ecg(args.data_dir, ECGConfig(feature_scaling=scaling))
        print(f"{scaling}: training features in [{float(data.x_train.min()):.3g}, {float(data.x_train.max()):.4g}]")
        for mode in ("fp", "hm-var"):
            for lr in (float(v) for v in args.lrs.split(",")):
                cfg = task_config("ecg", mode, lr=lr, epochs=args.epochs, seeds=seeds, validation=0.1)
                model = build_model(cfg)
                try:
                    r = run_fit(model, data, optimizer=build_optimizer(cfg, model), epochs=cfg.epochs,
                                validation=cfg.validation, progress=False, name="ecg", warn_k=False).results
                    val = [round(100 * a, 2) for a in r["final_val_accuracy"]]
                except DivergedError as e:
                    val = f"loss diverged at {e.unit} {e.at}"
                out[f"{scaling}, {mode}, lr {lr:g}"] = val
                print(f"  {mode:6s} lr {lr:<5g} validation %: {val}", flush=True)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
