"""From a spec to a finished sweep: load and fingerprint the data, expand the trials, list them
(``--dry-run``) or run them on the chosen executor, and summarise per trial."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import spec as sp
from .driver import Outcome, run_sweep
from .estimate import WORKER_START_S, trial_cpu_seconds
from .executors import make_executor, share_a_gpu
from .progress import label
from .provenance import data_key, load_datasets
from .store import open_store, store_path
from .trials import Trial, datasets_of, expand, training_key


@dataclass
class Plan:
    spec: sp.SweepSpec | None
    folder: Path
    trials: list[Trial]
    datasets: dict
    name: str

    def status(self) -> dict[str, str]:
        if not store_path(self.folder).exists():
            return {}
        store = open_store(self.folder, readonly=True)
        try:
            return {k: r["status"] for k, r in store.status([t.key for t in self.trials]).items()}
        finally:
            store.close()

    def trained(self) -> set[str]:
        """The training keys (``trials.training_key``) of the store's finished trials."""
        if not store_path(self.folder).exists():
            return set()
        store = open_store(self.folder, readonly=True)
        try:
            return {training_key(t["identity"]) for t in store.trials("done")}
        finally:
            store.close()

    def dry_run_text(self, workers: int = 1, note: str | None = None) -> str:
        status, trained = self.status(), self.trained()
        lines, total, todo, to_train = [], 0.0, 0.0, 0
        for i, t in enumerate(self.trials):
            d = self.datasets[data_key(t.config)]
            s = trial_cpu_seconds(t.config, len(d.x_train), len(d.x_test))
            st = status.get(t.key, "new")
            tk = training_key(t.identity)
            if st in ("new", "pending") and tk in trained:  # a twin's training (other ledger costs) prices it
                st, s = "priced", 0.0
            total += s
            if st != "done":
                todo += s
                to_train += st != "priced"
                trained.add(tk)
            point = {k: v for k, v in t.params.items() if k != "seeds"}  # the seeds have their own column
            lines.append(f"{i + 1:4d}  {t.key}  {st:8s} {_hms(s):>9s}  seeds {_seeds(t.seeds)}  {label(point)}")
        head = f"{len(self.trials)} trials in {self.folder} (a CPU-time estimate per trial from BENCHMARKS.md, 1 thread):"
        if any(line.split()[2] == "priced" for line in lines):
            head += "\n(priced: differs from another trial only in the ledger's costs and ratings, priced from its training)"
        busy = max(1, min(workers, to_train or 1))
        wall = todo / busy + (WORKER_START_S if todo else 0.0)  # the workers start side by side
        tail = (f"CPU time: {_hms(total)} in all, {_hms(todo)} still to run; with {workers} worker(s) about "
                f"{_hms(wall)} of wall time, their start included" + (f" ({note})" if note else ""))
        return "\n".join([head, *lines, tail])


def _seeds(seeds: list[int]) -> str:
    return f"{seeds[0]}-{seeds[-1]}" if len(seeds) > 2 and seeds == list(range(seeds[0], seeds[-1] + 1)) else ",".join(map(str, seeds))


def _hms(seconds: float) -> str:
    s = int(round(seconds))
    if seconds < 60:
        return f"{seconds:.1f}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def plan(spec: sp.SweepSpec, folder: Path, data_dir: str | None = None, given: dict | None = None) -> Plan:
    data, prints = load_datasets(datasets_of(spec), data_dir, given)
    sp.check_against_data(spec, data)
    return Plan(spec, Path(folder), expand(spec, prints), data, spec.name or Path(folder).name)


def run_plan(p: Plan, *, workers: int = 1, in_process: bool = False, ray: bool = False, ray_address: str | None = None,
             ray_cpus: int | None = None, max_retries: int = 2, retry_failed: bool = False, progress: bool = True,
             executor=None) -> Outcome:
    on_gpu = share_a_gpu([t.config.get("device", "cpu") for t in p.trials], workers, in_process)
    executor = executor or make_executor(workers, in_process=in_process, threads=on_gpu, ray=ray,
                                         ray_address=ray_address, ray_cpus=ray_cpus)
    meta = {"spec": sp.describe(p.spec)} if p.spec is not None else None
    return run_sweep(p.trials, p.folder, p.datasets, executor=executor, max_retries=max_retries,
                     retry_failed=retry_failed, progress=progress, meta=meta, name=p.name)


def trial_table(p: Plan, outcome: Outcome) -> str:
    """One line per trial: its params, status and final accuracy (mean ± std over seeds, %)."""
    store = open_store(p.folder, readonly=True)
    try:
        done = {t["key"]: t for t in store.trials("done")}
    finally:
        store.close()
    lines = []
    for t in p.trials:
        st = outcome.status.get(t.key, "?")
        if t.key in done:
            acc = 100 * np.asarray(done[t.key]["result"]["final_test_accuracy"])
            spread = f" ± {acc.std(ddof=1):.2f}" if acc.size > 1 else ""
            what = f"{acc.mean():.2f}{spread} %"
        else:
            what = st
        lines.append(f"{label(t.params):50s}  {what}")
    return "\n".join(lines)


def spec_json(p: Plan) -> str:
    return json.dumps(sp.describe(p.spec), indent=1) if p.spec else "{}"
