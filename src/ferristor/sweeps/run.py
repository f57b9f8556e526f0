"""From a spec to a finished sweep: load and fingerprint the data, expand the trials, list them
(``--dry-run``) or run them on the chosen executor, and summarise per trial."""
from __future__ import annotations

import collections
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import spec as sp
from .driver import Outcome, run_sweep
from .estimate import WORKER_START_S, trial_cpu_seconds
from .executors import make_executor, share_a_gpu
from .progress import label, seeds_word
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

    def dry_run_text(self, workers: int = 1, note: str | None = None, retry_failed: bool = False) -> str:
        status, trained = self.status(), self.trained()
        # 'running' in a store no driver holds: a driver killed or interrupted mid-trial (the next run
        # resumes it from its checkpoint), not a trial running now
        stale = "interrupted" if not driver_running(self.folder) else "running"
        lines, total, todo, to_train, failed_s, n_failed = [], 0.0, 0.0, 0, 0.0, 0
        for i, t in enumerate(self.trials):
            d = self.datasets[data_key(t.config)]
            s = trial_cpu_seconds(t.config, len(d.x_train), len(d.x_test))
            st = status.get(t.key, "new")
            st = stale if st == "running" else st
            tk = training_key(t.identity)
            if st in ("new", "pending", "interrupted") and tk in trained:  # a twin's training (other ledger costs) prices it
                st, s = "priced", 0.0
            total += s
            if st == "failed" and not retry_failed:  # runs only with --retry-failed
                failed_s += s
                n_failed += 1
            elif st != "done":
                todo += s
                to_train += st != "priced"
                trained.add(tk)
            point = {k: v for k, v in t.params.items() if k != "seeds"}  # the seeds have their own column
            lines.append(f"{i + 1:4d}  {t.key}  {st:11s} {_hms(s):>9s}  seeds {_seeds(t.seeds)}  {label(point)}")
        n = len(self.trials)
        head = f"{n} trial{'s' if n != 1 else ''} in {self.folder} (a CPU-time estimate per trial from BENCHMARKS.md, 1 thread):"
        if any(line.split()[2] == "priced" for line in lines):
            head += "\n(priced: differs from another trial only in the ledger's costs and ratings, priced from its training)"
        if any(line.split()[2] == "interrupted" for line in lines):
            head += "\n(interrupted: its driver stopped mid-trial; this sweep resumes it from its latest checkpoint)"
        busy = max(1, min(workers, to_train or 1))
        wall = todo / busy + (WORKER_START_S if todo else 0.0)  # the workers start side by side
        failed = (f" (and {_hms(failed_s)} in {n_failed} trial{'s' if n_failed != 1 else ''} recorded as failed, "
                  f"run only with --retry-failed)") if n_failed else ""
        tail = (f"CPU time: {_hms(total)} in all, {_hms(todo)} still to run{failed}; with {workers} trial{'s' if workers != 1 else ''} at once about "
                f"{_hms(wall)} of wall time, their start included" + (f" ({note})" if note else ""))
        return "\n".join([head, *lines, tail])


def driver_running(folder: Path) -> bool:
    """Whether a driver (or another writer) holds the sweep folder now: its lock file is locked
    (``locking.is_locked``). The probe holds it shared for an instant; a driver starting then waits
    it out (``driver.LOCK_WAIT_S``)."""
    from ..locking import is_locked
    from .driver import LOCK_NAME
    return is_locked(Path(folder) / LOCK_NAME)


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
    the execution fields (threads, …: a rerun on other threads resumes). ValueError where it is not
    such a record (a hand edit, a damaged store)."""
    def keep(tree, what: str) -> dict:
        if not isinstance(tree, dict):
            raise ValueError(f"{what}: expected an object")
        return {k: v for k, v in tree.items() if k.split(".")[0] not in sp.EXECUTION_FIELDS}
    grid = keep(d.get("grid") or {}, "grid")
    if not all(isinstance(v, list) for v in grid.values()):
        raise ValueError("grid: expected lists of values")
    points = d.get("points") or [{}]
    if not isinstance(points, list):
        raise ValueError("points: expected a list")
    seeds = d.get("seeds") or []
    if not isinstance(seeds, list):
        raise ValueError("seeds: expected a list")
    return {"base": keep(d.get("base") or {}, "base"), "grid": grid, "points": [keep(pt, "point") for pt in points] or [{}],
            "seeds": list(seeds), "seeds_per_trial": d.get("seeds_per_trial")}


def _j(v) -> str:
    return json.dumps(v, sort_keys=True)


def _show(v) -> str:
    return v if isinstance(v, str) else _j(v)


def spec_changes(old: dict, new: dict) -> tuple[list[str], list[str]]:
    """(what the recorded spec ``old`` has that the spec ``new`` drops or changes, what ``new`` adds
    to it): both ``spec.describe`` records, values compared as the config takes them (1e1 is 10).
    Seeds are left out: they do not make a point (:func:`check_folder`). The words of a refusal."""
    old, new = _comparable(old), _comparable(new)
    changed, added = [], []
    for path in dict.fromkeys([*old["base"], *new["base"]]):
        a, b = old["base"].get(path, _NONE), new["base"].get(path, _NONE)
        if a is _NONE or b is _NONE or sp.config_key(a, path) != sp.config_key(b, path):  # a path set on one side only differs
            there = f"{path}={_show(a)}" if a is not _NONE else f"no {path}"
            here = f"{path}={_show(b)}" if b is not _NONE else f"no {path}"
            changed.append(f"{there} there, {here} here")
    for axis in dict.fromkeys([*old["grid"], *new["grid"]]):
        if axis not in new["grid"]:
            changed.append(f"--grid {axis} there, not here")
        elif axis not in old["grid"]:
            changed.append(f"--grid {axis} here, not there")
        else:
            olds, news = ({sp.config_key(v, axis) for v in side["grid"][axis]} for side in (old, new))
            gone = [_show(v) for v in old["grid"][axis] if sp.config_key(v, axis) not in news]
            more = [_show(v) for v in new["grid"][axis] if sp.config_key(v, axis) not in olds]
            if gone:
                changed.append(f"{axis}={','.join(gone)} there, not here")
            if more:
                added.append(f"{axis}={','.join(more)}")
    old_pts, new_pts = ([sp.config_key(pt) for pt in side["points"]] for side in (old, new))
    changed += [f"the point {_j(pt)} there, not here" for pt, k in zip(old["points"], old_pts) if k not in new_pts]
    added += [f"the point {_j(pt)}" for pt, k in zip(new["points"], new_pts) if k not in old_pts]
    return changed, added


def _point(identity_config: dict) -> str:
    """A point: what a trial computes (its identity's config, ``trials.identity``) without its seeds,
    with the fields a store written before they existed leaves out filled in, as JSON."""
    from ..experiments.config import with_legacy_defaults
    return _j(with_legacy_defaults({k: v for k, v in identity_config.items() if k != "seeds"}))


def spec_points(spec: sp.SweepSpec) -> set[str]:
    """The points (:func:`_point`) of a spec's trials: each resolved, canonical config as its trial's
    key sees it (``auto`` backends resolved, execution fields out), so values written otherwise
    (rule.k=1e1, a --set at its default) are the same point. No data is loaded."""
    from ..experiments.sweep import normalise
    from . import configs
    from .trials import identity
    points = set()
    for _, overrides in spec.points_overrides():
        plain = {p: v for p, v in overrides.items() if p.split(".")[0] not in sp.EXECUTION_FIELDS}
        config = normalise(configs.canonical(configs.resolve(plain)))
        points.add(_point(identity(config, "")["config"]))
    return points


def _stored_groups(rows: list[dict]) -> dict[str, set[tuple]]:
    """Each point of a store's trials (``Store.trials``) → the seed groups its trials hold; imported
    runs left out (their identity is their results.json's config as written, keyed by their file:
    never a sweep's point)."""
    out: dict[str, set[tuple]] = {}
    for r in rows:
        ident = r.get("identity")
        if isinstance(ident, dict) and isinstance(ident.get("config"), dict) and "imported_from" not in ident:
            seeds = ident["config"].get("seeds") or ()
            out.setdefault(_point(ident["config"]), set()).add(tuple(sorted(seeds)) if isinstance(seeds, list) else ())
    return out


def _same_axes(old: dict, new: dict) -> bool:
    """Whether two comparable specs (:func:`_comparable`) sweep the same axes from the same base
    (compared as the config reads it) with the same [[points]]: then only the axes' values differ."""
    def base(d):
        return spec_points(sp.SweepSpec(base=d["base"]))
    try:
        return set(old["grid"]) == set(new["grid"]) and old["points"] == new["points"] and base(old) == base(new)
    except Exception:  # noqa: BLE001 - a recorded base that no longer resolves: not the same
        return False


def _regrouped(spec: sp.SweepSpec, ours: set[str], groups: dict[str, set[tuple]]) -> list[int]:
    """Seeds of this sweep's points that the store holds in trials grouped otherwise: a trial of
    another seed group is another trial, so they would be trained (and stored) again."""
    again: set[int] = set()
    for point in ours & set(groups):
        done = {s for g in groups[point] for s in g}
        for group in spec.seed_groups():
            if tuple(sorted(group)) not in groups[point]:
                again |= done & set(group)
    return sorted(again)


def check_folder(spec: sp.SweepSpec, folder: str | Path, merge: bool = False) -> None:
    """Refuse an ``--out`` a sweep must not write into, before any work: a ``train`` run's folder
    (its results.json or checkpoint.pt), or, without ``merge``, one whose store holds another sweep.

    The rule is by points, not by the spec's text: a *point* is a trial's config without its seeds
    (:func:`spec_points`). A spec is the same sweep, and resumes, when its points are all among the
    folder's (its trials' and its recorded spec's: a rerun, part of it, other seeds, values written
    otherwise, a --set at its default, other threads — so the command that made a folder still runs
    after it grew or took a --merge), when they include all the recorded spec's (a grid grown), or
    when it sweeps the same axes from the same base (other values along them). Anything else — a
    sweep over another axis, even one sharing the default point — is another sweep, refused naming
    how its spec differs; so is a store of trials of no recorded spec (imported runs, a
    ``reproduce`` figure). Seeds of its points that the store holds in trials grouped otherwise
    (another seeds_per_trial) are refused too: they would be trained again."""
    import warnings

    from ..errors import ConfigError, FerristorWarning
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
        with warnings.catch_warnings():  # a row that cannot be read is no point; the results say so themselves
            warnings.simplefilter("ignore", FerristorWarning)
            recorded, rows = store.meta("spec"), store.trials()
        n = len(store.status())
    finally:
        store.close()
    if recorded is None:
        if n:
            raise ConfigError("out", str(folder), reason=f"holds {n} trial{'s' if n != 1 else ''} of no recorded sweep "
                                                         f"(imported runs, or a ferristor reproduce figure): {hint}")
        return
    try:  # only the reading: a bug comparing two readable specs is no "unreadable spec"
        old = _comparable(json.loads(recorded))
    except (ValueError, TypeError, AttributeError):
        old = None
    ours, groups = spec_points(spec), _stored_groups(rows)
    theirs: set[str] = set()
    if old is not None:
        try:
            theirs = spec_points(sp.SweepSpec(base=old["base"], grid=old["grid"], points=old["points"]))
        except Exception:  # noqa: BLE001 - a recorded spec that no longer resolves (its trials decide)
            theirs = set()
    if (ours <= set(groups) | theirs or (theirs and ours >= theirs)
            or (old is not None and _same_axes(old, _comparable(sp.describe(spec))))):
        again = _regrouped(spec, ours, groups)
        if again:
            raise ConfigError("out", str(folder), reason=f"holds seed{'s' if len(again) > 1 else ''} "
                              f"{', '.join(map(str, again))} of this sweep's points in trials grouped otherwise "
                              "(another --seeds-per-trial): they would be trained and stored again; give the "
                              "folder's --seeds-per-trial, other seeds, or --merge to train them again")
        return
    if old is None:
        changed = ["its recorded spec cannot be read, and none of its trials is a point of this sweep"]
    else:
        changed = spec_changes(old, sp.describe(spec))[0] or [
            f"none of its {n} trial{'s' if n != 1 else ''} is a point of this sweep"]
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
    points: dict[str, tuple[dict, list[Trial]]] = {}  # a point's trials (seeds_per_trial splits its seeds)
    for t in p.trials:
        point = {k: v for k, v in t.params.items() if k != "seeds"}
        points.setdefault(json.dumps(point, sort_keys=True), (point, []))[1].append(t)
    lines = []
    for point, trials in points.values():
        accs = [a for t in trials if t.key in done for a in done[t.key]["result"]["final_test_accuracy"]]
        rest = collections.Counter(outcome.status.get(t.key, "?") for t in trials if t.key not in done)
        if accs:
            acc = 100 * np.asarray(accs)
            spread = f" ± {acc.std(ddof=1):.2f}" if acc.size > 1 else ""
            what = f"{acc.mean():.2f}{spread} %" + (f" ({seeds_word(acc.size)})" if len(trials) > 1 else "")
            if rest:  # the seeds of its other trials are not in it: said
                what += "; " + ", ".join(f"{n} trial{'s' if n != 1 else ''} {st}" for st, n in rest.items())
        else:
            what = ", ".join(st if n == 1 and len(trials) == 1 else f"{n} trials {st}" for st, n in rest.items())
        lines.append(f"{label(point):50s}  {what}")
    return "\n".join(lines)


def spec_json(p: Plan) -> str:
    return json.dumps(sp.describe(p.spec), indent=1) if p.spec else "{}"
