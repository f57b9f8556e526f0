"""Projected wall time of the full Fig. 5c (its k grid × 10 seeds × 10 MNIST epochs, HM) on N nodes.

Per-trial CPU time comes from the measured per-sample costs (BENCHMARKS.md: a + b/R µs per
sample-replica per step, plus one transfer every k samples; the same model as `sweep --dry-run`),
trials are packed longest-first onto N × cores slots (Ray's queue does about this), and every trial
pays the measured per-trial overhead of the executor; each node also pulls the data once.

    python bench/project_cluster.py --cores 2 --overhead 3 --nodes 1,2,5,10,45
"""
from __future__ import annotations

import argparse
import heapq

from ferristor.experiments.reproduce import FIG5C_KS as KS  # the figure's k grid, wherever it is set
from ferristor.sweeps.estimate import trial_cpu_seconds
from ferristor.sweeps.spec import build_spec
from ferristor.sweeps.trials import expand



def makespan(times: list[float], slots: int) -> float:
    loads = [0.0] * slots
    for t in sorted(times, reverse=True):
        heapq.heapreplace(loads, loads[0] + t)
    return max(loads)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cores", type=int, default=2, help="cores per node (one trial per core, 1 thread each)")
    ap.add_argument("--overhead", type=float, default=3.0, help="measured per-trial overhead of the executor, s")
    ap.add_argument("--data-seconds", type=float, default=2.0, help="shipping MNIST (~220 MB) to a node once, s")
    ap.add_argument("--nodes", default="1,2,5,10,45")
    a = ap.parse_args()
    fp = {"mnist": "0" * 64}
    print("| seeds per trial | trials | CPU-hours | " + " | ".join(f"{n} node{'s' if n > 1 else ''}" for n in map(int, a.nodes.split(","))) + " |")
    print("|---|---|---|" + "---|" * len(a.nodes.split(",")))
    for per in (10, 5, 1):
        spec = build_spec(None, sets=("mode=hm", "epochs=10", "eval_every=1"), grids=(f"rule.k={','.join(map(str, KS))}",),
                          seeds="0-9", seeds_per_trial=per)
        times = [trial_cpu_seconds(t.config, 60000, 10000) + a.overhead for t in expand(spec, fp)]
        cells = []
        for n in map(int, a.nodes.split(",")):
            wall = makespan(times, n * a.cores) + a.data_seconds
            cells.append(f"{wall / 3600:.2f} h" if wall >= 3600 else f"{wall / 60:.0f} min")
        print(f"| {per} | {len(times)} | {sum(times) / 3600:.2f} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
