"""The one place that reads a run's ``results.json``: everything else in the report sees :class:`Run`.

The training engine may add fields (a code version, a dataset fingerprint, per-device write
histograms) and a report must still open older files, so required fields are few (``config`` and
``final_test_accuracy``) and every other one is optional. Accuracies become percent here.
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, NamedTuple

from ..circuit.ledger import LedgerConfig
from ..errors import DataError
from ..experiments.config import with_legacy_defaults
from ..experiments.results import read_json

# Top-level keys this adapter interprets; any other field the engine adds is shown as provenance.
KNOWN_KEYS = {"config", "seeds", "steps", "samples_per_replica", "final_test_accuracy", "final_test_accuracy_mean",
              "final_test_accuracy_std", "history", "ledger", "timing", "versions"}


@dataclass
class Evaluation:
    epoch: float
    step: int | None
    accuracy: list[float]  # percent, one per seed


@dataclass
class LayerLedger:
    """One layer (or the whole network) with one value per replica for every figure."""

    name: str
    weights: int
    transfers: list[float]
    fecap_mean: list[float]  # over all 14 FeCAPs of a weight
    fecap_msb_mean: list[float]  # sign/MSB cells: the ones transfers read, hence the most written
    fecap_worst: list[float]
    memristor_mean: list[float]
    memristor_worst: list[float]
    energy_fecap_nJ: list[float]  # whole layer
    energy_memristor_nJ: list[float]
    energy_per_device_nJ: list[float]  # one sign/MSB FeCAP + one memristor, the paper's per-device figure
    energy_device_fecap_nJ: list[float]  # its FeCAP part
    energy_device_memristor_nJ: list[float]  # its memristor part
    fecap_margin: list[float]  # rated cycles / worst device's cycles
    memristor_margin: list[float]
    histograms: list[dict | None] = field(default_factory=list)  # per replica, when the engine records one


@dataclass
class Endurance:
    """Rated endurance and operation costs, from the run's own ledger config."""

    fecap_cycles: float
    memristor_cycles: float
    ops_per_cycle: float
    fecap_ops_initial: float  # one-off programming before training, per sign/MSB FeCAP
    memristor_ops_initial: float
    fecap_ops_per_transfer: float
    memristor_ops_per_transfer: float  # rated: a transfer programs every pair (RESET + SET)


@dataclass
class Run:
    name: str
    path: Path
    config: dict
    seeds: list
    accuracy: list[float]  # final test accuracy, percent per seed
    history: list[Evaluation]
    samples_per_replica: int | None
    layers: list[LayerLedger]  # empty for fp runs
    network: LayerLedger | None
    endurance: Endurance
    timing: dict
    versions: dict
    extra: dict  # top-level fields this adapter does not know (e.g. a dataset fingerprint)
    code_version: str | None  # None: the engine that wrote the file did not record one
    written: float | None  # results.json modification time (epoch seconds)


# Where an engine may record the code version that produced a run (first found wins).
CODE_VERSION_KEYS = (("code_version",), ("versions", "code"), ("versions", "git"), ("versions", "commit"))


def code_version(data: dict) -> str | None:
    for path in CODE_VERSION_KEYS:
        v = _dig(data, *path)
        if v:
            return v if isinstance(v, str) else json.dumps(v, sort_keys=True)
    return None


def _num(v) -> float:
    """A JSON number; None (how a writer may store inf/nan) becomes nan."""
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else math.nan


def _dig(d, *path, default=None):
    for p in path:
        if not isinstance(d, dict) or p not in d:
            return default
        d = d[p]
    return d


# A run whose hybrid layers rate their devices differently (fit records each layer's ledger, and no
# common one): each rating at its most conservative over the layers, so a lifetime is a lower bound.
_CONSERVATIVE = (("fecap_endurance_cycles", min), ("memristor_endurance_cycles", min), ("ops_per_cycle", min),
                 ("fecap_ops_initial_write", max), ("fecap_ops_per_transfer", max), ("memristor_ops_per_transfer", max))


def endurance_of(config: dict) -> Endurance:
    """The rated endurance of a run's config; a field an older config lacks takes LedgerConfig's default.
    Without a common ``ledger`` but with the layers' own (``network.layers[*].config.ledger``, as fit
    records layers that differ), each rating is the layers' most conservative (``_CONSERVATIVE``):
    LedgerConfig's defaults had stood in for them."""
    defaults = {f.name: f.default for f in dataclasses.fields(LedgerConfig)}
    led = {**defaults, **(config.get("ledger") or {})}
    layers = (config.get("network") or {}).get("layers") if isinstance(config.get("network"), dict) else None
    own = [la["config"]["ledger"] for la in layers or [] if isinstance(la, dict) and isinstance(la.get("config"), dict)
           and isinstance(la["config"].get("ledger"), dict)]
    if not config.get("ledger") and own:
        for key, pick in _CONSERVATIVE:
            led[key] = pick(float(ledger.get(key, defaults[key])) for ledger in own)
    return Endurance(fecap_cycles=float(led["fecap_endurance_cycles"]),
                     memristor_cycles=float(led["memristor_endurance_cycles"]),
                     ops_per_cycle=float(led["ops_per_cycle"]),
                     fecap_ops_initial=float(led["fecap_ops_initial_write"] + led["fecap_ops_per_transfer"]),
                     memristor_ops_initial=float(led["memristor_ops_per_transfer"]),
                     fecap_ops_per_transfer=float(led["fecap_ops_per_transfer"]),
                     memristor_ops_per_transfer=float(led["memristor_ops_per_transfer"]))


def _layer(name: str, reports: list[dict]) -> LayerLedger:
    col = lambda *p: [_num(_dig(r, *p)) for r in reports]  # noqa: E731
    msb = [_num(_dig(r, "fecap_ops", "mean_sign_msb_cell", default=_dig(r, "fecap_ops", "mean"))) for r in reports]
    weights = _num(_dig(reports[0], "weights"))
    return LayerLedger(
        name=name, weights=int(weights) if math.isfinite(weights) else 0, transfers=col("transfers"),
        fecap_mean=col("fecap_ops", "mean"), fecap_msb_mean=msb, fecap_worst=col("fecap_ops", "worst"),
        memristor_mean=col("memristor_ops", "mean"), memristor_worst=col("memristor_ops", "worst"),
        energy_fecap_nJ=col("energy_nJ", "fecap_total"), energy_memristor_nJ=col("energy_nJ", "memristor_total"),
        energy_per_device_nJ=col("energy_nJ", "per_device"), energy_device_fecap_nJ=col("energy_nJ", "per_device_fecap"),
        energy_device_memristor_nJ=col("energy_nJ", "per_device_memristor"),
        fecap_margin=col("endurance", "fecap_margin"), memristor_margin=col("endurance", "memristor_margin"),
        histograms=[r.get("histogram") if isinstance(r.get("histogram"), dict) else None for r in reports])


def _percent(values) -> list[float]:
    return [100 * _num(a) for a in values]


# --- what the fields the report reads must be -----------------------------------------------------
# A hand-edited or foreign file is refused here, naming the field, rather than failing deep in the
# page (or, worse, drawing a wrong number). Absent fields stay fine: older engines wrote fewer.

def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


class Kind(NamedTuple):
    """What a field must be: ``what`` says it in a message, ``test`` checks a value; a ``required``
    field must be there (any other may be absent: older engines wrote fewer)."""
    what: str
    test: Callable[[object], bool]
    required: bool = False


def or_null(kind: Kind) -> Kind:
    return Kind(f"{kind.what} or null", lambda v: v is None or kind.test(v))


def required(kind: Kind) -> Kind:
    return kind._replace(required=True)


OBJECT, LIST, TEXT = Kind("an object", lambda v: isinstance(v, dict)), Kind("a list", lambda v: isinstance(v, list)), \
    Kind("text", lambda v: isinstance(v, str))
NON_EMPTY_LIST = Kind("a non-empty list", lambda v: isinstance(v, list) and len(v) > 0)
NUMBER = or_null(Kind("a number", _is_number))  # null: how a strict writer stores nan or inf
AMOUNT = Kind("a number ≥ 0", lambda v: _is_number(v) and v >= 0)
COUNT = Kind("a whole number ≥ 0", lambda v: _is_number(v) and v >= 0 and float(v).is_integer())
ACCURACY = or_null(Kind("an accuracy from 0 to 1", lambda v: _is_number(v) and 0 <= v <= 1))
# a sweep point's; nan, as null: a seed that recorded none (experiments.reproduce.point_of reads a null so)
PERCENT = or_null(Kind("an accuracy from 0 to 100 (%)", lambda v: _is_number(v) and (math.isnan(v) or 0 <= v <= 100)))
SEED = Kind("a seed (a whole number)", lambda v: _is_number(v) and float(v).is_integer())
_LAYER = [("weights", COUNT), *((f, OBJECT) for f in ("fecap_ops", "memristor_ops", "energy_nJ", "endurance")),
          *((f, NUMBER) for f in ("transfers", "fecap_ops.mean", "fecap_ops.worst", "fecap_ops.mean_sign_msb_cell",
                                  "memristor_ops.mean", "memristor_ops.worst", "energy_nJ.fecap_total",
                                  "energy_nJ.memristor_total", "energy_nJ.per_device", "energy_nJ.per_device_fecap",
                                  "energy_nJ.per_device_memristor", "endurance.fecap_margin", "endurance.memristor_margin"))]
_HISTOGRAM = [("histogram", or_null(OBJECT)), *((f"histogram.{d}{f}", k) for d in ("memristor_ops", "fecap_ops") for f, k in (
    ("", or_null(OBJECT)), (".edges", LIST), (".edges.*", NUMBER), (".counts", LIST), (".counts.*", AMOUNT)))]

# (field, what it must be) for every field the report reads: "*" stands for each item of a list; a
# field is only looked for inside a parent of the right type, so parents come first.
FIELDS: list[tuple[str, Kind]] = [
    ("config", required(OBJECT)), ("final_test_accuracy", required(NON_EMPTY_LIST)), ("final_test_accuracy.*", ACCURACY),
    ("seeds", or_null(LIST)), ("seeds.*", SEED),
    ("samples_per_replica", or_null(COUNT)),
    ("history", or_null(LIST)), ("history.*", OBJECT), ("history.*.epoch", NUMBER), ("history.*.step", or_null(COUNT)),
    ("history.*.test_accuracy", LIST), ("history.*.test_accuracy.*", ACCURACY),
    ("ledger", or_null(LIST)), ("ledger.*", OBJECT), ("ledger.*.layers", LIST), ("ledger.*.layers.*", OBJECT),
    ("ledger.*.network", OBJECT),
    *((f"ledger.*.layers.*.{f}", k) for f, k in _LAYER + _HISTOGRAM), *((f"ledger.*.network.{f}", k) for f, k in _LAYER),
    ("timing", or_null(OBJECT)), *((f"timing.{f}", NUMBER) for f in ("train_seconds", "compile_seconds", "sample_replicas_per_second")),
    ("versions", or_null(OBJECT)),
    ("config.dataset", TEXT), ("config.mode", TEXT), ("config.epochs", Kind("a number", _is_number)),
    ("config.batch", Kind("a whole number ≥ 1", lambda v: COUNT.test(v) and v >= 1)), ("config.test_limit", or_null(COUNT)),
    ("config.seeds", LIST), ("config.seeds.*", SEED),
    ("config.rule", OBJECT), ("config.rule.k", or_null(Kind("a number > 0", lambda v: _is_number(v) and v > 0))),
    ("config.rule.p", NUMBER), ("config.rule.lr", NUMBER),
    ("config.network", OBJECT), ("config.network.sizes", LIST), ("config.network.sizes.*", COUNT),
    ("config.network.output", or_null(TEXT)), ("config.network.norm", or_null(TEXT)),
    ("config.ledger", OBJECT), ("config.ledger.transfer_writes_unchanged", Kind("true or false", lambda v: isinstance(v, bool))),
    *((f"config.ledger.{f}", AMOUNT) for f in ("fecap_endurance_cycles", "memristor_endurance_cycles", "ops_per_cycle",
                                               "fecap_ops_initial_write", "fecap_ops_per_transfer", "memristor_ops_per_transfer")),
]


def _found(d, path: list[str], where: str = ""):
    """(name, value) of every value at ``path`` in ``d``; '*' stands for each item of a list."""
    if not path:
        yield where, d
        return
    head, rest = path[0], path[1:]
    if head == "*":
        for i, v in enumerate(d if isinstance(d, list) else []):
            yield from _found(v, rest, f"{where}[{i}]")
    elif isinstance(d, dict) and head in d:
        yield from _found(d[head], rest, f"{where}.{head}" if where else head)


def _shown(v) -> str:
    text = json.dumps(v, default=str)
    return text if len(text) <= 40 else text[:37] + "..."


def fields_of(*paths: str) -> list[tuple[str, Kind]]:
    """The entries of FIELDS at ``paths``, below them and above them (a parent is checked first):
    what a reader of only those fields checks (compare), with the report's own rules."""
    unknown = [p for p in paths if p not in dict(FIELDS)]
    if unknown:
        raise KeyError(f"not in FIELDS: {unknown}")
    return [(f, k) for f, k in FIELDS if any(f == p or f.startswith(p + ".") or p.startswith(f + ".") for p in paths)]


def field_problem(data: dict, fields: list[tuple[str, Kind]]) -> str | None:
    """What is wrong with the first of ``fields`` in ``data`` that is missing though required, or not
    what it must be; None: nothing."""
    for path, kind in fields:
        *parent, last = path.split(".")
        for name, d in _found(data, parent) if kind.required else ():
            if isinstance(d, dict) and last not in d:
                return f"'{f'{name}.{last}' if name else last}' is missing, expected {kind.what}"
        for name, value in _found(data, path.split(".")):
            if not kind.test(value):
                return f"'{name}' is {_shown(value)}, expected {kind.what}"
    return None


def results_problem(data, file: Path, fields: list[tuple[str, Kind]] = FIELDS) -> str | None:
    """The one-line message (the file, the field, what it must be) for the first of ``fields`` that
    ``data``, read from ``file``, gets wrong; None: nothing. report and compare both check with it."""
    if not isinstance(data, dict):
        return f"{file}: not a ferristor results file: it holds {_shown(data)}, expected an object"
    problem = field_problem(data, fields)
    return None if problem is None else f"{file}: {problem}"


# What check_seeds counts, checked (as lists) whatever fields a reader asks for: every per-seed list
# is counted against the seeds, so compare, which reads fewer fields, refuses what report refuses.
SEED_FIELDS = [(f, k) for f, k in FIELDS if f in ("config", "final_test_accuracy", "seeds", "seeds.*", "config.seeds",
                                                    "config.seeds.*", "ledger", "history", "history.*",
                                                    "history.*.test_accuracy")]


def load_results(file: Path, fields: list[tuple[str, Kind]] = FIELDS) -> dict:
    """``file`` read and checked against ``fields`` and one entry per seed (:func:`check_seeds`): a
    DataError saying what is wrong, in one line. FileNotFoundError passes (the callers name a
    missing file each their way)."""
    try:
        data = read_json(file)
    except FileNotFoundError:
        raise
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise DataError(f"{file}: cannot read it as JSON ({e})") from None
    problem = results_problem(data, file, [*SEED_FIELDS, *((f, k) for f, k in fields if (f, k) not in SEED_FIELDS)])
    if problem is not None:
        raise DataError(problem)
    check_seeds(data, file)
    return data


def check_seeds(data: dict, file: Path) -> None:
    """A DataError where a list of ``data`` (checked against FIELDS) holds not one entry per seed."""
    n = len(data["final_test_accuracy"])
    # one value per seed (chip) everywhere: a longer or shorter list would shift the page's columns
    seeds = ("seeds", data["seeds"]) if data.get("seeds") is not None else ("config.seeds", data["config"].get("seeds"))
    for name, values in [seeds, ("ledger", data.get("ledger") or None),
                         *((f"history[{i}].test_accuracy", h["test_accuracy"]) for i, h in enumerate(data.get("history") or [])
                           if "test_accuracy" in h)]:
        if values is not None and len(values) != n:
            raise DataError(f"{file}: '{name}' has {len(values)} entries, 'final_test_accuracy' {n}: expected one per seed")


def read_run(path: str | Path, name: str | None = None) -> Run:
    """A run from its folder or its results.json; a missing, corrupt or foreign file is a DataError."""
    path = Path(path)
    file = path / "results.json" if path.is_dir() else path
    try:
        data = load_results(file)
    except FileNotFoundError:
        raise DataError(f"{path}: no results.json (is the run finished?)") from None
    try:
        written = file.stat().st_mtime
    except OSError:
        written = None
    return run_of(data, file, name, written)


def run_of(data: dict, file: Path, name: str | None = None, written: float | None = None) -> Run:
    """A run from results ``data`` already read (and checked: :func:`load_results`) from ``file``:
    what a command that holds a run's results (compare-rules) reads them as, as the report does."""
    file = Path(file)
    history = [Evaluation(_num(h.get("epoch")), h.get("step"), _percent(h.get("test_accuracy", [])))
               for h in data.get("history") or []]
    replicas = [r for r in data.get("ledger") or [] if r.get("layers")]
    layers = [_layer(f"layer {i + 1}", [r["layers"][i] for r in replicas])
              for i in range(min(len(r["layers"]) for r in replicas))] if replicas else []
    network = _layer("network", [r["network"] for r in replicas]) if replicas and all("network" in r for r in replicas) else None
    return Run(
        name=name or (file.parent.name or str(file.parent)), path=file.parent, config=with_legacy_defaults(data["config"]),
        seeds=list(data.get("seeds") or data["config"].get("seeds") or range(len(data["final_test_accuracy"]))),
        accuracy=_percent(data["final_test_accuracy"]), history=history,
        samples_per_replica=data.get("samples_per_replica"), layers=layers, network=network,
        endurance=endurance_of(data["config"]), timing=data.get("timing") or {}, versions=data.get("versions") or {},
        extra={k: v for k, v in data.items() if k not in KNOWN_KEYS and k != "code_version"}, code_version=code_version(data),
        written=written)
