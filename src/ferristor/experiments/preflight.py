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
    larger than the run, so that no transfer would ever happen, and when the hidden LSB is the 10-bit
    default on another width (here, at the start of training: not on every reload of a saved config)."""
    _check_lsb(cfg)
    check_fits(data, cfg.network.sizes, cfg.network.output)
    n = len(data.x_train)
    if cfg.batch > n:
        raise ConfigError("batch", cfg.batch, f"at most {n:,}, the training samples of {data.name}")
    samples = planned_samples(cfg, n)
    if cfg.mode != "fp" and cfg.rule.k > samples:
        warnings.warn(FerristorWarning(
            f"larger than the {samples:,} samples this run trains each replica on: no transfer will happen, "
            f"so the memristors keep their initial weights", field="rule.k", value=cfg.rule.k), stacklevel=2)


def _check_lsb(cfg) -> None:
    from ..circuit.layout import PAPER_LAYOUT
    from ..rule.config import RuleConfig
    bits = cfg.layout.hidden_bits
    if bits != PAPER_LAYOUT.hidden_bits and cfg.rule.hidden_lsb == RuleConfig().hidden_lsb:
        warnings.warn(FerristorWarning(
            f"with rule.hidden_lsb at its 10-bit default (2^-9) the weights span ±{cfg.layout.max_hidden * cfg.rule.hidden_lsb:.3g} "
            f"instead of (−1, 1); rule.hidden_lsb={2.0 ** -(bits - 1):g} keeps the range with the new resolution",
            field="layout.hidden_bits", value=bits), stacklevel=3)
