"""Reading sweeps: a :class:`Sweep` of :class:`Trial` points, from whichever store the sweep used.

A store is read by a :class:`SweepSource`; the ones in ``SOURCES`` are tried in order. Today a
sweep is a results store ``sweep.sqlite`` (``ferristor.sweeps``), or, from before it, a folder of
``trials/<key>.json`` files (``{"key", "config", "result"}``, written by ``experiments.sweep``).

A sweep's **point** is what its trials share but their seeds: a spec with ``seeds_per_trial`` splits
each point's seeds into several trials (``params`` then hold each one's ``seeds``), and a folder swept
twice with other groupings (``--merge``) may hold a point's seed in two trials. The readers return one
:class:`Trial` per point (:func:`merge_points`): every seed once, in seed order, its figures combined
over the seeds, so axes, tables, plots and lifetimes are per point, never per stored trial.
"""
from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from ..experiments.config import with_legacy_defaults
from ..sweeps.spec import EXECUTION_FIELDS  # fields that do not change what a trial computes
from ..experiments.results import read_json
from ..errors import DataError
from .runs import (FIELDS as RUN_FIELDS, OBJECT, PERCENT, Endurance, endurance_of, field_problem, fields_of,
                   or_null)

# Per-trial figures a sweep point may carry (experiments.reproduce.TrialRunner); absent for fp trials.
METRICS = ("fecap_ops_per_device", "fecap_ops_worst", "memristor_ops_per_device", "memristor_ops_worst",
           "energy_fecap_nJ", "energy_memristor_nJ", "seconds", "samples_per_replica", "transfers")


def _transfers(result: dict):
    """The transfers each chip made (the network's, the same on every chip), from a trial's full
    train results; None where its ledger does not say. The lifetime takes operations per transfer."""
    counts = {_number((r.get("network") or {}).get("transfers")) for r in result.get("ledger") or [] if isinstance(r, dict)}
    return counts.pop() if len(counts) == 1 else None


@dataclass
class Trial:
    key: str
    params: dict  # what the sweep varied: the trial's own fields, without its resolved training config
    train_config: dict  # the fully resolved training config ({} when the store lacks it)
    accuracy: list[float]  # final test accuracy, percent per seed
    metrics: dict[str, float]  # those of METRICS the point has
    seeds: list | None = None  # the seed of each accuracy, in order; None where the store does not say
    # Each seed's METRICS, where the store keeps them per seed (sweep.sqlite's per-replica ledger);
    # None: the trial's own metrics (means over its seeds) stand for each of its seeds.
    seed_metrics: list[dict] | None = field(default=None, repr=False)
    keys: list[str] = field(default_factory=list)  # the stored trials merged into this point (their keys)
    pending_seeds: list = field(default_factory=list)  # the point's seeds in trials not done (left out)
    identity: str = field(default="", repr=False)  # what the point's trials share but their seeds
    left_out: list[str] = field(default_factory=list)  # keys of the point's stored trials that cannot be read (left out)

    @property
    def k(self):
        """The point's transfer interval: its own field (a reproduce trial's k, a plain sweep's rule.k),
        else its resolved config's; None where neither records it."""
        for value in (self.params.get("k"), self.params.get("rule.k"), self.train_config.get("rule", {}).get("k")):
            if value is not None:
                return value
        return None

    @property
    def endurance(self) -> Endurance:
        return endurance_of(self.train_config)


@dataclass
class Unfinished:
    """A point the store holds that is not done: still to train, training (or stopped while it
    trained: a driver that died leaves 'running'), or given up on."""
    key: str
    params: dict
    status: str  # pending, running or failed
    error: str | None = None  # a failed point's last error, its first line
    identity: str = ""  # its point's (:func:`point_identity`), to tell a point's seeds still to train


@dataclass
class Sweep:
    name: str
    path: Path
    source: str  # which store it was read from, for the provenance table
    trials: list[Trial]
    newest: float | None = None  # modification time of the newest point (epoch seconds)
    skipped: list[str] = field(default_factory=list)  # unreadable points, named so the page says so
    unfinished: list[Unfinished] = field(default_factory=list)  # the store's points not done
    total: int | None = None  # every point the store holds (None: a store that knows only its finished ones)
    duplicates: list[str] = field(default_factory=list)  # seeds of a point stored twice, each counted once

    @property
    def split_seeds(self) -> bool:
        """Whether some point's seeds are in several stored trials, done or not (seeds_per_trial)."""
        # each merged point once per stored trial it holds (its keys), and each trial not done
        idents = [t.identity for t in self.trials if t.seeds is not None for _ in t.keys] + [u.identity for u in self.unfinished]
        return len(idents) != len(set(idents))

    @property
    def unfinished_points(self) -> int:
        """The points with a trial not done (a point whose seeds are split counts once)."""
        return len({u.identity or u.key for u in self.unfinished})


class SweepSource(Protocol):
    name: str

    def detect(self, folder: Path) -> bool:
        """Whether ``folder`` holds a sweep in this store's format."""

    def load(self, folder: Path) -> Sweep:
        """The sweep in ``folder``; a DataError when it holds no readable point."""


def _number(v) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None


SEEDS = "seeds"  # the field that tells apart the trials of one point, never an axis of its own


def _canon(v) -> str:
    return json.dumps(v, sort_keys=True, default=str)


def point_identity(params: dict, config: dict | None, identity: dict | None = None) -> str:
    """What the trials of one point share: their own fields but the seeds, and what their training
    computes but the seeds (the store's trial identity, else the resolved config without its
    execution fields): the trials of a ``seeds_per_trial`` sweep have the same, trials of other data,
    backend or settings do not."""
    what = identity if isinstance(identity, dict) and isinstance(identity.get("config"), dict) else {"config": config or {}}
    what = {**what, "config": {k: v for k, v in what["config"].items() if k != SEEDS and k not in EXECUTION_FIELDS}}
    return _canon([{k: v for k, v in params.items() if k != SEEDS}, what])


def _seeds_of(params: dict, config: dict | None, n: int) -> list | None:
    """A stored trial's seeds, one per accuracy (its own field, else its config's); None where neither
    says or they do not match the accuracies."""
    for seeds in (params.get(SEEDS), (config or {}).get(SEEDS)):
        if isinstance(seeds, list) and len(seeds) == n and len({_canon(x) for x in seeds}) == n:
            return seeds
    return None


def _same(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


def _seed_order(seeds: list) -> list:
    return sorted(seeds, key=lambda x: (not isinstance(x, (int, float)), x if isinstance(x, (int, float)) else str(x)))


def merge_points(trials: list[Trial], unfinished: list[Unfinished] = ()) -> tuple[list[Trial], list[str]]:
    """One :class:`Trial` per point from the stored trials (in their order of first appearance), and a
    note for each seed of a point stored twice.

    A point's accuracies are its seeds' (in seed order); the per-device figures (means, and the
    worst device's counts: each the mean over seeds of one chip's worst device, as ``point_of``
    takes them) are the mean over its seeds, so a trial of five seeds weighs five times one of one;
    ``seconds`` are summed over the trials it takes seeds from; ``samples_per_replica`` and
    ``transfers`` are kept where its trials agree. A seed stored twice (two groupings of the same
    sweep merged into one folder) is counted once: trained from the same config, data and seed, both
    copies are the same numbers by design; it is taken from the trial holding most of the point's
    seeds (so a whole trial is used where one can be), and the note says whether the copies differ.
    Trials whose seeds are not known are not merged."""
    groups: dict[str, list[Trial]] = {}
    for t in trials:
        groups.setdefault(_group(t), []).append(t)
    pending: dict[str, list] = {}
    for u in unfinished:
        if isinstance(u.params.get(SEEDS), list):
            pending.setdefault(u.identity, []).extend(u.params[SEEDS])
    points, notes = [], []
    for ident, group in groups.items():
        point, dup = _merged(group)
        point.pending_seeds = _seed_order([x for x in pending.get(ident, []) if _canon(x) not in {_canon(y) for y in point.seeds or []}])
        points.append(point)
        notes += dup
    return points, notes


def _group(t: Trial) -> str:
    """The point a stored trial is merged into: one of its own where its seeds are not known."""
    return t.identity or t.key if t.seeds is not None else "\0" + t.key


def _label(params: dict, key: str) -> str:
    from .markup import shown
    return ", ".join(f"{k}={shown(v)}" for k, v in params.items() if k != SEEDS) or key[:12]


def _merged(group: list[Trial]) -> tuple[Trial, list[str]]:
    first = group[0]
    if len(group) == 1 or first.seeds is None:
        first.keys = first.keys or [first.key]
        if first.seeds is not None and SEEDS in first.params:
            first.params = {**first.params, SEEDS: first.seeds}
        return first, []
    kept: dict[str, tuple] = {}  # seed → (seed, accuracy, metrics, trial)
    twice: dict[str, list] = {}  # trial kept → [its seeds stored again, the trials holding them again, all the same]
    for t in sorted(group, key=lambda t: -len(t.seeds)):  # stable: store order among equals
        for i, seed in enumerate(t.seeds):
            acc, m = t.accuracy[i], (t.seed_metrics[i] if t.seed_metrics else t.metrics)
            other = kept.get(_canon(seed))
            if other is None:
                kept[_canon(seed)] = (seed, acc, m, t)
                continue
            same = _same(acc, other[1]) and all(_same(m.get(x, math.nan), other[2].get(x, math.nan)) for x in METRICS
                                                if x not in ("seconds",))
            entry = twice.setdefault(other[3].key, [[], {}, True])
            entry[0].append(seed)
            entry[1][t.key] = None
            entry[2] = entry[2] and same
    notes = [f"{_label(first.params, first.key)}: {'seed' if len(dup) == 1 else 'seeds'} {', '.join(map(str, _seed_order(dup)))} "
             f"of trial {kept_key[:12]} also in {'trial' if len(again) == 1 else 'trials'} {', '.join(k[:12] for k in again)} "
             f"({'the same numbers' if same else 'they differ'}; counted once, from {kept_key[:12]})"
             for kept_key, (dup, again, same) in twice.items()]
    seeds = _seed_order([v[0] for v in kept.values()])
    rows = [kept[_canon(x)] for x in seeds]
    used = list({id(r[3]): r[3] for r in rows}.values())
    metrics = {}
    for m in METRICS:
        if m == "seconds":
            values = [t.metrics.get(m) for t in used]
            if all(v is not None for v in values):
                metrics[m] = float(sum(values))
        elif m in ("samples_per_replica", "transfers"):
            values = {r[2].get(m) for r in rows}
            if len(values) == 1 and None not in values:
                metrics[m] = values.pop()
        else:
            values = [r[2].get(m) for r in rows]
            if all(v is not None for v in values):
                metrics[m] = float(sum(values) / len(values))
    params = {**first.params, SEEDS: seeds} if any(SEEDS in t.params for t in group) else dict(first.params)
    config = {**used[0].train_config, SEEDS: seeds} if SEEDS in used[0].train_config else used[0].train_config
    point = Trial(key=used[0].key, params=params, train_config=config, accuracy=[r[1] for r in rows],
                  metrics=metrics, seeds=seeds, keys=[t.key for t in group], identity=first.identity)
    return point, notes


# A point's resolved training config is read as a run's is (a hand-edited trials/*.json included).
TRAIN_CONFIG_FIELDS = [("train_config", or_null(OBJECT))] + [
    ("train_config" + path[len("config"):], kind) for path, kind in RUN_FIELDS if path.startswith("config.")]

# A point's accuracies are percent (experiments.reproduce.point_of); null: a strict writer's nan, shown
# n/a (a TypeError had escaped the trials/ reader: 'unexpected … a bug'). Out of range is refused, as
# a run's is: an edited 5.0 in the store had been shown as 265.00 ± 332.34 %.
RESULT_FIELDS = [("result.accuracy.*", PERCENT)]

# What point_of reads of a done trial's train results (accuracies from 0 to 1 there), by a run's rules.
STORED_RESULT_FIELDS = fields_of("final_test_accuracy", "samples_per_replica", "timing.train_seconds",
                                 *(f"ledger.*.network.{f}" for f in ("fecap_ops.mean_sign_msb_cell", "fecap_ops.worst",
                                                                    "memristor_ops.mean", "memristor_ops.worst",
                                                                    "energy_nJ.per_device_fecap",
                                                                    "energy_nJ.per_device_memristor", "transfers")))


def trial_from_record(record: dict, key: str, identity: dict | None = None) -> Trial:
    """A trial from the JSON record that ``experiments.sweep.save_result`` writes; a ValueError, which
    leaves the point out, where it is malformed. ``identity``: the store's (``sweeps.trials.identity``),
    which tells its point (:func:`point_identity`) better than the config alone."""
    config, result = record.get("config"), record.get("result")
    if not isinstance(config, dict) or not isinstance(result, dict) or not isinstance(result.get("accuracy"), list):
        raise ValueError("needs 'config' and 'result' with an 'accuracy' list")
    problem = field_problem(config, TRAIN_CONFIG_FIELDS) or field_problem({"result": result}, RESULT_FIELDS)
    if problem is not None:
        raise ValueError(problem)
    params = {k: v for k, v in config.items() if k != "train_config"}
    metrics = {m: v for m in METRICS if (v := _number(result.get(m))) is not None}
    # A legacy record (no resolved config) keeps its k in the result only: it becomes the point's own
    # field. Not where the config gives rule.k (Trial.k falls back to it): an unfinished trial of the
    # same point has no result, so a k of the result's would set its done trials apart from it (their
    # point identity), and make a sweep not over k look swept over k.
    rule_k = ((config.get("train_config") or {}).get("rule") or {}).get("k")
    if "k" not in params and "rule.k" not in params and rule_k is None and _number(result.get("k")) is not None:
        params["k"] = result["k"]
    accuracy = [math.nan if a is None else float(a) for a in result["accuracy"]]
    return Trial(key=record.get("key") or key, params=params, train_config=with_legacy_defaults(config["train_config"]) if config.get("train_config") else {},
                 accuracy=accuracy, metrics=metrics, seeds=_seeds_of(params, config.get("train_config"), len(accuracy)),
                 identity=point_identity(params, config.get("train_config"), identity))


class TrialsFolder:
    """``trials/*.json``, one file per finished point."""

    name = "trials/*.json"

    def detect(self, folder: Path) -> bool:
        return (folder / "trials").is_dir()

    def load(self, folder: Path) -> Sweep:
        trials, skipped, newest = [], [], None
        for f in sorted((folder / "trials").glob("*.json")):
            try:
                trials.append(trial_from_record(read_json(f), f.stem))
                newest = max(newest or 0.0, f.stat().st_mtime)
            except (OSError, UnicodeDecodeError, ValueError, AttributeError) as e:
                skipped.append(f"{f.name} ({e})")
        if not trials:
            raise DataError(f"{folder}: no readable trial under trials/ (a sweep writes one JSON file per finished point)")
        trials, duplicates = merge_points(trials)
        return Sweep(name=folder.name, path=folder, source=self.name, trials=trials, newest=newest, skipped=skipped,
                     duplicates=duplicates)


class SqliteStore:
    """``sweep.sqlite``, the results store of ``ferristor sweep`` and ``reproduce`` (one point per done trial)."""

    name = "sweep.sqlite"

    def detect(self, folder: Path) -> bool:
        return (folder / self.name).is_file()

    def load(self, folder: Path) -> Sweep:
        from ..experiments.reproduce import point_of
        from ..sweeps.store import open_store

        store = open_store(folder, readonly=True)
        try:
            every = store.trials()
            unreadable = dict(store.unreadable)  # rows the store left out (and warned of): named on the page too
            damaged = dict(store.damaged)  # those rows, with the columns that can be read
        finally:
            store.close()
        done = [t for t in every if t["status"] == "done"]
        unfinished = [Unfinished(t["key"], t["params"], t["status"], _first_line(t["error"]) if t["status"] == "failed" else None,
                                 point_identity(t["params"], t["config"], t["identity"]))
                      for t in every if t["status"] != "done"]
        trials, stored, skipped = [], [], [f"{key} ({why})" for key, why in unreadable.items()]
        left_out = {key: _row_identity(damaged.get(key)) for key in unreadable}  # key → its point, where that can be read
        for t in done:
            try:
                problem = field_problem(t["result"], STORED_RESULT_FIELDS) if t["result"] is not None else "no result"
                if problem is not None:
                    raise ValueError(f"trials.result: {problem}")
                k = t["params"].get("k", t["config"]["rule"]["k"])
                point = point_of(t["result"], k)
                point["transfers"] = _transfers(t["result"])
                trial = trial_from_record({"key": t["key"], "config": {**t["params"], "train_config": t["config"]},
                                           "result": point}, t["key"], t["identity"])
                trials.append(trial)
                stored.append((t["result"], k))
            except (KeyError, TypeError, ValueError) as e:
                skipped.append(f"{t['key']} ({e})")
                left_out[t["key"]] = point_identity(t["params"], t["config"], t["identity"])
        if not trials:
            raise DataError(f"{folder}: no finished trial in {self.name}" + "".join(
                f"; {n} {status}" for status in ("running", "pending", "failed")
                if (n := sum(u.status == status for u in unfinished))) + (f"; unreadable: {'; '.join(skipped)}" if skipped else ""))
        newest = max((t["finished"] or 0.0) for t in done)
        _add_seed_metrics(trials, stored)
        # points, not rows: a left-out row of a point whose other seeds are read is that point's, not one more
        total = len({t.identity or t.key for t in trials} | {u.identity or u.key for u in unfinished}
                    | {ident or "\0" + key for key, ident in left_out.items()})
        trials, duplicates = merge_points(trials, unfinished)
        for t in trials:
            t.left_out = [key for key, ident in left_out.items() if ident and ident == t.identity]
        return Sweep(name=folder.name, path=folder, source=self.name, trials=trials, newest=newest, skipped=skipped,
                     unfinished=unfinished, total=total, duplicates=duplicates)


def _row_identity(row: dict | None) -> str | None:
    """The point (:func:`point_identity`) of a trial row the store could not read, from the columns
    it could (its params, its identity or else its config); None where they cannot."""
    if row is None or row["params"] is None or (row["identity"] is None and row["config"] is None):
        return None
    return point_identity(row["params"], row["config"], row["identity"])


def _add_seed_metrics(trials: list[Trial], stored: list[tuple[dict, object]]) -> None:
    """Each seed's own METRICS for the trials of a point whose seeds are in several of them, the only
    ones :func:`merge_points` takes them of; ``stored``: each trial's full train results and k."""
    size = Counter(_group(t) for t in trials)
    for t, (result, k) in zip(trials, stored):
        if size[_group(t)] > 1:
            t.seed_metrics = _seed_metrics(result, k)


def _seed_metrics(result: dict, k) -> list[dict] | None:
    """Each replica's METRICS from a trial's full train results (``point_of`` of that replica alone),
    so a point whose seeds are in several trials takes each seed's own figures; None where the ledger
    is not one per replica."""
    from ..experiments.reproduce import point_of
    ledger, accs = result.get("ledger") or [], result["final_test_accuracy"]
    if ledger and len(ledger) != len(accs):
        return None
    out = []
    for i, a in enumerate(accs):
        one = {**result, "final_test_accuracy": [a], "ledger": [ledger[i]] if ledger else []}
        m = point_of(one, k)
        m["transfers"] = _transfers(one)
        out.append({x: v for x in METRICS if (v := _number(m.get(x))) is not None})
    return out


def _first_line(error: str | None) -> str:
    return (error or "").strip().splitlines()[0] if (error or "").strip() else "?"


SOURCES: list[SweepSource] = [SqliteStore(), TrialsFolder()]
# A store that exists in a folder but that no source above reads: named, so the error says what to do.
UNREAD_STORES: tuple[str, ...] = ()


def find_source(folder: Path) -> SweepSource | None:
    return next((s for s in SOURCES if s.detect(folder)), None)


def read_sweep(folder: str | Path) -> Sweep:
    folder = Path(folder)
    source = find_source(folder)
    if source is None:
        unread = [s for s in UNREAD_STORES if (folder / s).exists()]
        if unread:
            raise DataError(f"{folder}: {unread[0]} is a results store this version cannot read yet")
        raise DataError(f"{folder}: not a sweep (no sweep.sqlite, no trials/ folder)")
    return source.load(folder)
