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


_NONE = object()  # a base path the spec does not set


def _comparable(d: dict) -> dict:
    """A recorded spec (``spec.describe``) without what does not change a trial's numbers: its name and
    the execution fields (threads, …: a rerun on other threads resumes)."""
    def keep(tree: dict) -> dict:
        return {k: v for k, v in tree.items() if k.split(".")[0] not in sp.EXECUTION_FIELDS}
    return {"base": keep(d.get("base") or {}), "grid": keep(d.get("grid") or {}),
            "points": [keep(pt) for pt in (d.get("points") or [{}])] or [{}],
            "seeds": list(d.get("seeds") or []), "seeds_per_trial": d.get("seeds_per_trial")}


def _j(v) -> str:
    return json.dumps(v, sort_keys=True)


def _show(v) -> str:
    return v if isinstance(v, str) else _j(v)


def spec_changes(old: dict, new: dict) -> tuple[list[str], list[str]]:
    """(what the folder's recorded spec ``old`` has that the spec ``new`` drops or changes, what
    ``new`` adds to it): both ``spec.describe`` records. The first list empty: ``new`` is ``old``, or
    extends it with grid values, points or seeds (its trials include the folder's), so it resumes."""
    old, new = _comparable(old), _comparable(new)
    changed, added = [], []
    for path in dict.fromkeys([*old["base"], *new["base"]]):
        a, b = old["base"].get(path, _NONE), new["base"].get(path, _NONE)
        if _j(a) != _j(b):
            there = f"{path}={_show(a)}" if a is not _NONE else f"no {path}"
            here = f"{path}={_show(b)}" if b is not _NONE else f"no {path}"
            changed.append(f"{there} there, {here} here")
    for axis in dict.fromkeys([*old["grid"], *new["grid"]]):
        if axis not in new["grid"]:
            changed.append(f"--grid {axis} there, not here")
        elif axis not in old["grid"]:
            changed.append(f"--grid {axis} here, not there")
        else:
            gone = [_show(v) for v in old["grid"][axis] if _j(v) not in {_j(w) for w in new["grid"][axis]}]
            more = [_show(v) for v in new["grid"][axis] if _j(v) not in {_j(w) for w in old["grid"][axis]}]
            if gone:
                changed.append(f"{axis}={','.join(gone)} there, not here")
            if more:
                added.append(f"{axis}={','.join(more)}")
    old_pts, new_pts = [_j(pt) for pt in old["points"]], [_j(pt) for pt in new["points"]]
    changed += [f"the point {pt} there, not here" for pt in old_pts if pt not in new_pts]
    added += [f"the point {pt}" for pt in new_pts if pt not in old_pts]
    gone = [s for s in old["seeds"] if s not in new["seeds"]]
    if gone:
        changed.append(f"seeds {','.join(map(str, gone))} there, not here")
    if more := [s for s in new["seeds"] if s not in old["seeds"]]:
        added.append(f"seeds {','.join(map(str, more))}")
    if old["seeds_per_trial"] != new["seeds_per_trial"]:
        changed.append(f"seeds_per_trial {old['seeds_per_trial'] or 'all'} there, {new['seeds_per_trial'] or 'all'} here")
    return changed, added


def check_folder(spec: sp.SweepSpec, folder: str | Path, merge: bool = False) -> None:
    """Refuse an ``--out`` a sweep must not write into, before any work: a ``train`` run's folder
    (its results.json or checkpoint.pt), or, without ``merge``, one whose store holds another sweep:
    a recorded spec this one drops or changes anything of, or trials of no recorded spec (imported
    runs, a ``reproduce`` figure). The same spec again, or one that only adds grid values, points or
    seeds, resumes."""
    from ..errors import ConfigError
    from ..experiments.run_folder import CHECKPOINT, RESULTS
    folder = Path(folder)
    hint = "give another --out, or --merge to add this sweep's trials to it (its results then hold both)"
    for name in (RESULTS, CHECKPOINT):
        if (folder / name).is_file():
            raise ConfigError("out", str(folder), reason=f"holds a train run ({name}), not a sweep: give another --out "
                                                         f"(ferristor results SWEEP --import {folder} adds the run to a sweep)")
    if merge or not store_path(folder).exists():
        return
    store = open_store(folder, readonly=True)
    try:
        recorded, n = store.meta("spec"), len(store.status())
    finally:
        store.close()
    if recorded is None:
        if n:
            raise ConfigError("out", str(folder), reason=f"holds {n} trial{'s' if n != 1 else ''} of no recorded sweep "
                                                         f"(imported runs, or a ferristor reproduce figure): {hint}")
        return
    try:
        old = json.loads(recorded)
        changed, _ = spec_changes(old, sp.describe(spec))
    except (ValueError, TypeError, AttributeError):
        changed = ["its recorded spec cannot be read"]
    if changed:
        raise ConfigError("out", str(folder), reason=f"holds another sweep ({'; '.join(changed)}): {hint}")


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
