"""Sweep throughput: the same small Fig. 5c sweep through `ferristor.sweeps` on each executor.

Runs the trials in this process, in 1 and 2 worker processes, and on a local Ray (one CPU per
trial), each into a fresh store; prints wall time, trials/hour, the time spent training (from the
store) and the per-trial overhead (wall × parallel trials − training time, per trial: start-up,
data, scheduling, evaluations, recording), and checks
that every executor recorded the same rows. Ray's start-up (ray.init) is timed apart.

    python bench/bench_sweep.py --data-dir ../shared/data [--ks 10,20,50,100] [--seeds 2] [--epoch-scale 0.05]
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from ferristor.cpus import describe
from ferristor.sweeps.spec import build_spec
from ferristor.sweeps.store import open_store
from ferristor.sweeps.run import plan, run_plan


def _rows(folder):
    store = open_store(folder, readonly=True)
    try:
        evals = sorted((e["trial"], e["seed"], e["step"], e["test_accuracy"], e["ledger"]) for e in store.evals())
        train = sum(t["result"]["timing"]["train_seconds"] for t in store.trials("done"))
        return evals, train
    finally:
        store.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--ks", default="10,20,50,100,200,500")
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--epoch-scale", type=float, default=0.05, help="fraction of Fig. 5c's 10 epochs")
    ap.add_argument("--test-limit", type=int, default=0, help="evaluate on the first N test samples (0 = all)")
    ap.add_argument("--executors", default="in-process,processes-1,processes-2,ray-2")
    a = ap.parse_args()
    spec = build_spec(None, sets=("mode=hm", f"epochs={10 * a.epoch_scale}", f"eval_every={10 * a.epoch_scale}",
                                f"test_limit={a.test_limit}"),
                      grids=(f"rule.k={a.ks}",), seeds=f"0-{a.seeds - 1}")
    results, reference = [], None
    for name in a.executors.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            p = plan(spec, Path(tmp), a.data_dir)
            kw, slots, init = {}, 1, 0.0
            if name == "in-process":
                kw["in_process"] = True
            elif name.startswith("processes-"):
                slots = kw["workers"] = int(name.split("-")[1])
            elif name.startswith("ray-"):
                import ray

                from ferristor.sweeps.ray_executor import RayExecutor
                slots = int(name.split("-")[1])
                t = time.perf_counter()
                ray.init(num_cpus=slots, include_dashboard=False, log_to_driver=False, configure_logging=False)
                init = time.perf_counter() - t
                kw["executor"] = RayExecutor()
            t = time.perf_counter()
            out = run_plan(p, progress=False, **kw)
            wall = time.perf_counter() - t
            if name.startswith("ray-"):
                import ray
                ray.shutdown()
            assert out.count("done") == len(p.trials), out.errors
            evals, train = _rows(tmp)
        reference = reference or evals
        n = len(p.trials)
        results.append((name, wall, 3600 * n / wall, train, (wall * slots - train) / n, init, evals == reference))
    print(f"\nmachine: {describe()}, {os.cpu_count()} CPUs; {n} trials "
          f"(MNIST hm, k = {a.ks}, {a.seeds} seeds as replicas, {10 * a.epoch_scale:g} epochs), 1 thread per trial")
    print("| executor | wall s | trials/hour | training s (sum) | overhead s/trial | Ray start s | same rows |")
    print("|---|---|---|---|---|---|---|")
    for name, wall, rate, train, over, init, same in results:
        print(f"| {name} | {wall:.1f} | {rate:.0f} | {train:.1f} | {over:.1f} | {init:.1f} | {same} |")


if __name__ == "__main__":
    main()
