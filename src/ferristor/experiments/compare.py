"""Side-by-side accuracy of finished runs, with the configuration fields in which they differ.

Meant for analyses such as "which open choice explains this cell": point it at the run folders
and it lists each run's accuracy statistics next to the settings that set it apart.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..config_base import flatten
from ..errors import DataError
from ..report.markup import NA, known, mean_std, worst
from .config import LOCAL_FIELDS
from .summary import margin_text

_IGNORED = {*LOCAL_FIELDS, "seeds", "eval_every", "test_limit"}


def _flatten(d: dict) -> dict:
    """The fields that say what a run computed, as {dotted path: value}, lists as JSON text."""
    return {k: json.dumps(v) if isinstance(v, (list, tuple)) else v for k, v in flatten(d).items()
            if k.rsplit(".", 1)[-1] not in _IGNORED}


# What the table reads; checked by the report's own rules (report.runs.FIELDS), so both commands
# refuse the same hand-edited file with the same message.
COMPARED = ("config", "final_test_accuracy", "ledger.*.network.energy_nJ.per_device", "ledger.*.network.memristor_ops.mean",
            "ledger.*.network.endurance.fecap_margin", "ledger.*.network.endurance.memristor_margin")


# Validation accuracy per seed (runs trained with ``validation`` > 0), which the report does not read:
# checked here with the report's rules for an accuracy, and against the seeds (``_check_validation``).
VALIDATION = "final_val_accuracy"


def _validation_fields():
    from ..report.runs import ACCURACY, LIST, or_null
    return [(VALIDATION, or_null(LIST)), (f"{VALIDATION}.*", ACCURACY)]


def load_runs(paths: list[str | Path]) -> tuple[list[tuple[str, dict]], list[Path]]:
    """(name, results) for each folder (or results.json) given, and the folders without results yet
    (runs still going); an unreadable results file, or one with a field the table reads that is not
    what it must be, is a DataError naming the file and the field."""
    from ..report.inputs import run_names
    from ..report.runs import fields_of, load_results
    fields = fields_of(*COMPARED) + _validation_fields()
    runs, unfinished = [], []
    names = run_names([Path(p) for p in paths])  # folder names, or longer where two clash (mnist/hm, ecg/hm)
    for p in map(Path, paths):
        f = p / "results.json" if p.is_dir() else p
        if p.is_dir() and not f.exists():
            unfinished.append(p)
            continue
        try:
            results = load_results(f, fields)
            _check_validation(results, f)
            runs.append((names[p], results))
        except FileNotFoundError:
            if not p.is_dir():  # a results file named that is not there: no run, not an unfinished one
                raise DataError(f"{f}: no such results file") from None
            unfinished.append(p)  # gone since listed
    return runs, unfinished


def _check_validation(results: dict, file: Path) -> None:
    """A DataError where the validation accuracies are not one per seed, as the test accuracies are
    (a shorter list would be a mean over other seeds than the test column's, silently)."""
    val, n = results.get(VALIDATION), len(results["final_test_accuracy"])
    if val is not None and len(val) != n:
        raise DataError(f"{file}: '{VALIDATION}' has {len(val)} entries, 'final_test_accuracy' {n}: expected one per seed")


def differing_fields(configs: list[dict]) -> list[str]:
    """The fields in which the runs differ, as the report finds them (``report.build.differing``: a
    value a run's own settings leave unread, as σ of an hm run's ideal transfer, is not compared),
    less where and how a run executed and its seeds (``_IGNORED``); sorted."""
    from ..report.build import differing
    return sorted(differing(configs, _IGNORED)[0])


def compare_table(runs: list[tuple[str, dict]]) -> str:
    """Markdown: run, differing fields, seeds, mean ± std, standard error, median, min, max (accuracy %);
    std and standard error are n/a for a run of one seed. Where any run recorded validation accuracy
    (trained with ``validation`` > 0), a column of its mean ± std over the seeds, n/a for a run without."""
    from .config import with_legacy_defaults  # a run saved before a field existed compares at its value
    runs = [(name, {**r, "config": with_legacy_defaults(r["config"])}) for name, r in runs]
    fields = differing_fields([r["config"] for _, r in runs])
    devices = any(device_cells(r) for _, r in runs)
    validation = any(r.get(VALIDATION) is not None for _, r in runs)
    head = ["run", *fields, "seeds", "mean ± std %", "s.e.m.", "median", "min", "max"]
    head += ["validation accuracy mean ± std %"] if validation else []
    head += ["energy / device", "memristor ops / device", "endurance margin FeCAP · memristor"] if devices else []
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, r in runs:
        flat = _flatten(r["config"])
        acc = r["final_test_accuracy"]
        a = _percent(acc)
        seeds = str(len(acc)) if a.size == len(acc) else f"{a.size} of {len(acc)}"
        cells = [name, *(str(flat.get(f, "–")) for f in fields), seeds, *_statistics(a)]
        cells += [_validation_cell(r.get(VALIDATION))] if validation else []
        cells += (device_cells(r) or ["–"] * 3) if devices else []
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def device_cells(results: dict) -> list[str] | None:
    """What a device study compares beside accuracy, from the run's ledger (the mean over its
    replicas of the network's figures): energy and memristor operations per device, and the worst
    device's endurance margins over the run; None for a run without a ledger."""
    ledgers = results.get("ledger")
    if not ledgers:  # none, or an fp run's empty list
        return None
    try:
        nets = [rep["network"] for rep in ledgers]
        # as the report: a mean over the replicas that record a value, a worst margin n/a where any is
        energy = mean_std([n["energy_nJ"]["per_device"] for n in nets])[0]
        mem_ops = mean_std([n["memristor_ops"]["mean"] for n in nets])[0]
        margins = [worst([n["endurance"][f"{kind}_margin"] for n in nets], pick=min) for kind in ("fecap", "memristor")]
    except (TypeError, KeyError, ValueError):
        return None
    return [f"{energy:.3g} nJ" if known(energy) else NA, f"{mem_ops:,.0f}" if known(mem_ops) else NA,
            " · ".join(margin_text(m) if known(m) else NA for m in margins)]


def _statistics(a: np.ndarray) -> list[str]:
    """mean ± std, s.e.m., median, min, max of accuracies (%); n/a where none is recorded."""
    if not a.size:
        return [NA] * 5
    # one seed has no spread: n/a, not a 0.00 that reads as a measured one
    std = f"{a.std(ddof=1):.2f}" if a.size > 1 else NA
    sem = f"{a.std(ddof=1) / np.sqrt(a.size):.2f}" if a.size > 1 else NA
    return [f"{a.mean():.2f} ± {std}", sem, f"{np.median(a):.2f}", f"{a.min():.2f}", f"{a.max():.2f}"]


def _percent(accuracies: list) -> np.ndarray:
    """The recorded accuracies (fractions) of a run's seeds, in percent; null: a seed that recorded none."""
    return 100 * np.asarray([v for v in accuracies if v is not None], dtype=float)


def _validation_cell(val: list | None) -> str:
    """mean ± std (%) of the validation accuracies of a run's seeds; n/a for a run without, and
    "k of n seeds" where some seeds recorded none (null), as the seeds column says of the test's."""
    if val is None:
        return NA
    a = _percent(val)
    return _statistics(a)[0] + (f" ({a.size} of {len(val)} seeds)" if 0 < a.size < len(val) else "")
