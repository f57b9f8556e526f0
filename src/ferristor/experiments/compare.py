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
from .config import LOCAL_FIELDS
from .results import read_json
from .summary import margin_text, worst_margins

_IGNORED = {*LOCAL_FIELDS, "seeds", "eval_every", "test_limit"}


def _flatten(d: dict) -> dict:
    """The fields that say what a run computed, as {dotted path: value}, lists as JSON text."""
    return {k: json.dumps(v) if isinstance(v, (list, tuple)) else v for k, v in flatten(d).items()
            if k.rsplit(".", 1)[-1] not in _IGNORED}


def load_runs(paths: list[str | Path]) -> tuple[list[tuple[str, dict]], list[Path]]:
    """(name, results) for each folder (or results.json) given, and the folders without results yet
    (runs still going); an unreadable or corrupt results file is a DataError."""
    from ..report.inputs import run_names
    runs, unfinished = [], []
    names = run_names([Path(p) for p in paths])  # folder names, or longer where two clash (mnist/hm, ecg/hm)
    for p in map(Path, paths):
        f = p / "results.json" if p.is_dir() else p
        if p.is_dir() and not f.exists():
            unfinished.append(p)
            continue
        try:
            results = read_json(f)
        except (OSError, ValueError) as e:
            raise DataError(f"cannot read results from {f}: {e}") from e
        problem = _results_problem(results)
        if problem:
            raise DataError(f"{f} is not a ferristor results file: {problem}")
        runs.append((names[p], results))
    return runs, unfinished


def _results_problem(results) -> str | None:
    """What makes ``results`` unusable for the table, or None."""
    if not isinstance(results, dict):
        return f"it holds a {type(results).__name__}, not an object"
    if not isinstance(results.get("config"), dict):
        return "it has no 'config' object"
    acc = results.get("final_test_accuracy")
    if not isinstance(acc, list) or not acc or not all(isinstance(a, (int, float)) and not isinstance(a, bool) for a in acc):
        return "its 'final_test_accuracy' is not a list of numbers"
    if not all(0 <= a <= 1 for a in acc):  # percent, say: the table would read 9065 % (the report refuses it too)
        return "its 'final_test_accuracy' holds values outside 0–1 (accuracies are stored as fractions)"
    return None


def differing_fields(configs: list[dict]) -> list[str]:
    flat = [_flatten(c) for c in configs]
    keys = sorted({k for f in flat for k in f})
    return [k for k in keys if len({repr(f.get(k)) for f in flat}) > 1]


def compare_table(runs: list[tuple[str, dict]]) -> str:
    """Markdown: run, differing fields, seeds, mean ± std, standard error, median, min, max (accuracy %);
    std and standard error are n/a for a run of one seed."""
    from .config import with_legacy_defaults  # a run saved before a field existed compares at its value
    runs = [(name, {**r, "config": with_legacy_defaults(r["config"])}) for name, r in runs]
    fields = differing_fields([r["config"] for _, r in runs])
    devices = any(device_cells(r) for _, r in runs)
    head = ["run", *fields, "seeds", "mean ± std %", "s.e.m.", "median", "min", "max"]
    head += ["energy / device", "memristor ops / device", "endurance margin FeCAP · memristor"] if devices else []
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, r in runs:
        flat = _flatten(r["config"])
        a = 100 * np.asarray(r["final_test_accuracy"], dtype=float)
        # one seed has no spread: n/a, not a 0.00 that reads as a measured one
        std = f"{a.std(ddof=1):.2f}" if a.size > 1 else "n/a"
        sem = f"{a.std(ddof=1) / np.sqrt(a.size):.2f}" if a.size > 1 else "n/a"
        cells = [name, *(str(flat.get(f, "–")) for f in fields), str(a.size), f"{a.mean():.2f} ± {std}",
                 sem, f"{np.median(a):.2f}", f"{a.min():.2f}", f"{a.max():.2f}"]
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
        energy = float(np.mean([n["energy_nJ"]["per_device"] for n in nets]))
        mem_ops = float(np.mean([n["memristor_ops"]["mean"] for n in nets]))
        fe_margin, mem_margin = worst_margins(nets)
    except (TypeError, KeyError, ValueError):
        return None
    return [f"{energy:.3g} nJ", f"{mem_ops:,.0f}", f"{margin_text(fe_margin)} · {margin_text(mem_margin)}"]
