"""Trials: one resolved config (all its seeds run as replicas in one process) and its key.

A trial's key hashes everything that changes its numbers: the resolved config (with ``backend: auto``
resolved to the backend that will run), the fingerprint of the data it trains on (a hash of the
tensors themselves) and the evaluation chunking. Fields that say only where and how a trial runs
(``EXECUTION_FIELDS``: data folder, threads, checkpoint interval) stay out of it, so a sweep resumes
on another machine or with other threads. The code version is recorded with every row, not keyed.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import torch

from ..experiments.sweep import normalise, trial_key
from . import configs
from .spec import EXECUTION_FIELDS, SweepSpec


@dataclass
class Trial:
    key: str
    params: dict[str, Any]  # what distinguishes it in its sweep (axis values, or a predefined sweep's labels)
    config: dict  # the resolved config, canonical (configs.canonical), execution fields included
    identity: dict = field(repr=False, default_factory=dict)  # what the key hashes

    @property
    def seeds(self) -> list[int]:
        return self.config["seeds"]


def eval_chunk() -> int | None:
    """The default evaluation batch, in every key since before ``TrainConfig.eval_batch`` was a field
    (which keeps the keys of saved sweeps; the field enters a key only when it is not the default)."""
    from ..experiments import fit
    return getattr(fit, "EVAL_CHUNK", None)


def fingerprint(dataset) -> str:
    """sha256 of the tensors a run reads (train and test inputs and targets, with their shapes and
    dtypes): two datasets with the same fingerprint give the same numbers."""
    h = hashlib.sha256()
    for name in ("x_train", "y_train", "x_test", "y_test"):
        t = getattr(dataset, name).detach().cpu().contiguous()
        h.update(f"{name}:{tuple(t.shape)}:{t.dtype};".encode())
        h.update(t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.view(torch.int16).numpy().tobytes())
    return h.hexdigest()


def resolved_backend(backend: str, device: str) -> str:
    """The backend a run with these settings uses here ('auto' → numba or torch)."""
    from ..backend import backend_for, use_backend
    with use_backend(backend):
        return backend_for(device)


def identity(config: dict, data_fingerprint: str) -> dict:
    from ..experiments.config import without_legacy_defaults  # fields added later keep old keys
    keyed = without_legacy_defaults({k: v for k, v in config.items() if k not in EXECUTION_FIELDS})
    keyed["backend"] = resolved_backend(config["backend"], config["device"])
    return {"config": keyed, "data": data_fingerprint, "eval_chunk": eval_chunk()}


def training_key(identity: dict) -> str:
    """The key of what a trial *trains*: its identity without the ledger's costs and ratings
    (``LedgerConfig.REPORT_ONLY``), which only price the counted operations. Trials sharing it train
    the same bits; the driver trains one and prices the others from its results (``priced``)."""
    from ..circuit.ledger import LedgerConfig
    config = dict(identity["config"])
    config["ledger"] = {k: v for k, v in (config.get("ledger") or {}).items() if k not in LedgerConfig.REPORT_ONLY}
    return trial_key({**identity, "config": config})


def priced(t: Trial, results: dict, source_key: str) -> dict:
    """The results of trial ``t`` from those of a trial with the same ``training_key`` (``source_key``):
    the same training, its ledger priced with ``t``'s costs and ratings (``circuit.ledger.recost``)."""
    from ..circuit.ledger import LedgerConfig, recost
    costs = LedgerConfig(**t.config["ledger"])
    # what differs is built anew (recost copies each report); the rest, read only, is the twin's
    return {**results, "ledger": [recost(r, costs) for r in results.get("ledger") or []],
            "config": {k: t.config.get(k, v) for k, v in results["config"].items()}, "priced_from": source_key,
            # no training ran for it: its rows must not add the twin's seconds to a sweep's total again
            "timing": {**results.get("timing", {}), "train_seconds": 0.0, "compile_seconds": 0.0,
                       "sample_replicas_per_second": None, "us_per_sample_replica": None}}


def trial_of_config(params: dict, cfg, fingerprints: dict[str, str]) -> Trial:
    """The trial of a built ``TrainConfig``; ``fingerprints`` maps a dataset name to the fingerprint
    of the data it will train on (``provenance.load_datasets``)."""
    config = normalise(configs.canonical(cfg))
    from .provenance import data_key
    ident = identity(config, fingerprints[data_key(config)])
    return Trial(key=trial_key(ident), params=normalise(params), config=config, identity=ident)


def make_trial(params: dict, overrides: dict, fingerprints: dict[str, str]) -> Trial:
    return trial_of_config(params, configs.resolve(overrides), fingerprints)


def datasets_of(spec: SweepSpec) -> list[str]:
    """The data a spec's trials train on (``provenance.data_key`` of each point's resolved config)."""
    from .provenance import data_key
    return sorted({data_key(configs.canonical(configs.resolve(ov))) for _, ov in spec.points_overrides()})


def devices_of(spec: SweepSpec) -> list[str]:
    """The torch device of each point of a spec (where its trials will train)."""
    return [str(ov.get("device", configs.TrainConfig.device)) for _, ov in spec.points_overrides()]


def expand(spec: SweepSpec, fingerprints: dict[str, str]) -> list[Trial]:
    """Every trial of the spec, in order: points × seed groups; identical trials appear once."""
    groups = spec.seed_groups()
    trials, seen = [], set()
    for params, overrides in spec.points_overrides():
        for seeds in groups:
            p = {**params, "seeds": seeds} if len(groups) > 1 else params
            t = make_trial(p, {**overrides, "seeds": seeds}, fingerprints)
            if t.key not in seen:
                seen.add(t.key)
                trials.append(t)
    return trials
