"""Checks of a run against its data, made once the data are loaded and before the first step."""
from __future__ import annotations

import warnings

from ..data.validate import check_fits
from ..errors import ConfigError, FerristorWarning


def planned_samples(cfg, n_train: int) -> int:
    """Samples each replica trains on (the step plan of ``experiments.train.train``)."""
    steps_per_epoch = n_train // cfg.batch
    return max(1, round(cfg.epochs * steps_per_epoch)) * cfg.batch


def check_data(cfg, data) -> None:
    """Refuse a dataset the network cannot learn or a batch larger than the data; warn when ``k`` is
    larger than the run, so that no transfer would ever happen."""
    check_fits(data, cfg.network.sizes, cfg.network.output)
    n = len(data.x_train)
    if cfg.batch > n:
        raise ConfigError("batch", cfg.batch, f"at most {n:,}, the training samples of {data.name}")
    samples = planned_samples(cfg, n)
    if cfg.mode != "fp" and cfg.rule.k > samples:
        warnings.warn(FerristorWarning(
            f"larger than the {samples:,} samples this run trains each replica on: no transfer will happen, "
            f"so the memristors keep their initial weights", field="rule.k", value=cfg.rule.k), stacklevel=2)
