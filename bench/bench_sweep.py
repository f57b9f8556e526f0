"""Sweep throughput: the same small Fig. 5c sweep run serially and with worker processes.

Each trial is a batch-1 training (one thread), so a machine with C cores can run C trials at once.
Prints wall time per configuration, the speed-up over one worker, and checks that every point is
identical whichever way it ran.

    python bench/bench_sweep.py --data-dir ../shared/data [--workers 1,2] [--epoch-scale 0.05]
"""
from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

from ferristor.experiments.reproduce import reproduce_k_sweep


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--ks", default="20,50,100,200")
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--epoch-scale", type=float, default=0.05)
    a = ap.parse_args()
    ks = tuple(int(k) for k in a.ks.split(","))
    rows, reference = [], None
    for w in (int(x) for x in a.workers.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            t = time.perf_counter()
            points = reproduce_k_sweep(Path(tmp), list(range(a.seeds)), a.epoch_scale, ks, data_dir=a.data_dir,
                                       threads=1, progress=False, workers=w)
            wall = time.perf_counter() - t
        same = [{**p, "seconds": 0} for p in points]
        reference = reference or same
        rows.append((w, wall, same == reference))
    n = len(ks)
    print(f"\nmachine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; {n} trials "
          f"(MNIST hm, k = {a.ks}, {a.seeds} seeds, {a.epoch_scale} × 10 epochs), 1 thread per trial")
    print(f"{'workers':>7s} {'wall s':>8s} {'trials/min':>10s} {'speed-up':>9s} {'same points':>12s}")
    for w, wall, same in rows:
        print(f"{w:7d} {wall:8.1f} {60 * n / wall:10.2f} {rows[0][1] / wall:9.2f} {str(same):>12s}")


if __name__ == "__main__":
    main()
