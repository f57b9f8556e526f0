"""Importing finished runs (``results.json`` of ``ferristor train --out``) into a sweep's store.

An imported trial is keyed by its recorded config and the file it came from, with its data marked
unknown (a results.json records no data fingerprint), so it never stands in for a trial the sweep
computes; importing the same file twice changes nothing.
"""
from __future__ import annotations

from pathlib import Path

from ..errors import DataError
from ..experiments.results import read_json
from ..experiments.sweep import normalise, trial_key
from .store import Store
from .trials import EXECUTION_FIELDS, Trial


def _results_file(path: Path) -> Path:
    return path / "results.json" if path.is_dir() else path


def import_run(store: Store, path: str | Path) -> Trial:
    file = _results_file(Path(path))
    try:
        results = read_json(file)
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise DataError(f"--import {path}: no readable results.json ({e})") from None
    if not isinstance(results, dict) or not all(k in results for k in ("config", "seeds", "history")) \
            or not results["history"]:
        raise DataError(f"--import {path}: {file} is not a training run's results (needs config, seeds, history)")
    config = normalise(results["config"])
    ident = {"config": {k: v for k, v in config.items() if k not in EXECUTION_FIELDS},
             "data": "unknown (imported)", "imported_from": str(file.resolve())}
    trial = Trial(key=trial_key(ident), params={"imported": file.parent.name}, config=config, identity=ident)
    store.register([trial])
    code = results.get("code_version") or (results.get("versions") or {}).get("code")
    store.finish(trial.key, results, code or "imported (not recorded)")
    return trial
