"""Reading sweeps: a :class:`Sweep` of :class:`Trial` points, from whichever store the sweep used.

A store is read by a :class:`SweepSource`; the ones in ``SOURCES`` are tried in order. Today a
sweep is a results store ``sweep.sqlite`` (``ferristor.sweeps``), or, from before it, a folder of
``trials/<key>.json`` files (``{"key", "config", "result"}``, written by ``experiments.sweep``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from ..experiments.config import with_legacy_defaults
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


class SweepSource(Protocol):
    name: str

    def detect(self, folder: Path) -> bool:
        """Whether ``folder`` holds a sweep in this store's format."""

    def load(self, folder: Path) -> Sweep:
        """The sweep in ``folder``; a DataError when it holds no readable point."""


def _number(v) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None


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


def trial_from_record(record: dict, key: str) -> Trial:
    """A trial from the JSON record that ``experiments.sweep.save_result`` writes; a ValueError, which
    leaves the point out, where it is malformed."""
    config, result = record.get("config"), record.get("result")
    if not isinstance(config, dict) or not isinstance(result, dict) or not isinstance(result.get("accuracy"), list):
        raise ValueError("needs 'config' and 'result' with an 'accuracy' list")
    problem = field_problem(config, TRAIN_CONFIG_FIELDS) or field_problem({"result": result}, RESULT_FIELDS)
    if problem is not None:
        raise ValueError(problem)
    params = {k: v for k, v in config.items() if k != "train_config"}
    metrics = {m: v for m in METRICS if (v := _number(result.get(m))) is not None}
    if "k" not in params and "rule.k" not in params and _number(result.get("k")) is not None:  # not a second k axis
        params["k"] = result["k"]
    return Trial(key=record.get("key") or key, params=params, train_config=with_legacy_defaults(config["train_config"]) if config.get("train_config") else {},
                 accuracy=[math.nan if a is None else float(a) for a in result["accuracy"]], metrics=metrics)


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
        return Sweep(name=folder.name, path=folder, source=self.name, trials=trials, newest=newest, skipped=skipped)


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
        finally:
            store.close()
        done = [t for t in every if t["status"] == "done"]
        unfinished = [Unfinished(t["key"], t["params"], t["status"], _first_line(t["error"]) if t["status"] == "failed" else None)
                      for t in every if t["status"] != "done"]
        trials, skipped = [], [f"{key} ({why})" for key, why in unreadable.items()]
        for t in done:
            try:
                problem = field_problem(t["result"], STORED_RESULT_FIELDS) if t["result"] is not None else "no result"
                if problem is not None:
                    raise ValueError(f"trials.result: {problem}")
                point = point_of(t["result"], t["params"].get("k", t["config"]["rule"]["k"]))
                point["transfers"] = _transfers(t["result"])
                trials.append(trial_from_record({"key": t["key"], "config": {**t["params"], "train_config": t["config"]},
                                                 "result": point}, t["key"]))
            except (KeyError, TypeError, ValueError) as e:
                skipped.append(f"{t['key']} ({e})")
        if not trials:
            raise DataError(f"{folder}: no finished trial in {self.name}" + "".join(
                f"; {n} {status}" for status in ("running", "pending", "failed")
                if (n := sum(u.status == status for u in unfinished))) + (f"; unreadable: {'; '.join(skipped)}" if skipped else ""))
        newest = max((t["finished"] or 0.0) for t in done)
        return Sweep(name=folder.name, path=folder, source=self.name, trials=trials, newest=newest, skipped=skipped,
                     unfinished=unfinished, total=len(every) + len(unreadable))


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
