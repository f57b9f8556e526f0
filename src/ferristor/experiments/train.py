"""``ferristor train``: the paper's network, built from a :class:`TrainConfig`, trained by :func:`fit`.

R replicas (one per seed, each an independent chip) train in one tensor program; each draws its
initialisation, shuffling, masks and variability from its seed alone, so a replica equals the same
seed trained by itself, bit for bit. This is the same model, optimizer and loop a user writes in
plain PyTorch (``docs/pytorch.md``): a ``HybridMLP`` of ``HybridLinear`` layers, ``HybridSGD`` and
``loss.backward()``.
"""
from __future__ import annotations

from pathlib import Path

from ..backend import use_backend
from ..config_base import to_dict
from ..data import load_dataset
from ..nn.config import HybridConfig
from ..nn.mlp import HybridMLP
from ..optim import HybridSGD
from . import run_folder
from .config import TrainConfig
from .fit import default_loss, run_fit, set_threads
from .preflight import check_data


def hybrid_config(cfg: TrainConfig) -> HybridConfig:
    """The layers' physical configuration a training config describes."""
    return HybridConfig(mode=cfg.mode, hidden_lsb=cfg.rule.hidden_lsb, init_scale=cfg.rule.init_scale,
                        init_shape=cfg.rule.init_shape,
                        transfer=cfg.transfer, ledger=cfg.ledger, scheme=cfg.scheme, layout=cfg.layout)


def build_model(cfg: TrainConfig) -> HybridMLP:
    return HybridMLP(cfg.network, config=hybrid_config(cfg), replicas=len(cfg.seeds), seeds=cfg.seeds,
                     device=cfg.device)


def build_optimizer(cfg: TrainConfig, model) -> HybridSGD:
    r = cfg.rule
    return HybridSGD(model.parameters(), lr=r.lr, p=r.p, k=r.k, rounding=r.rounding, sampler=r.sampler, k_unit=r.k_unit)


def fit_options(cfg: TrainConfig) -> dict:
    """The options of ``run_fit`` that a TrainConfig sets (its schedule, evaluation and the config recorded)."""
    opts = dict(epochs=cfg.epochs, batch=cfg.batch, eval_every=cfg.eval_every, checkpoint_every=cfg.checkpoint_every,
                test_limit=cfg.test_limit, eval_batch=cfg.eval_batch, validation=cfg.validation,
                validation_seed=cfg.validation_seed, config=to_dict(cfg), config_builds_model=True,
                name=cfg.dataset, warn_k=False)
    if cfg.rule.batch_reduction == "sum" and cfg.batch > 1:  # at batch 1 the mean is the sum: the default loss
        opts["loss"] = summed_loss(default_loss(cfg.network.sizes[-1]), cfg.batch)
    return opts


def summed_loss(mean_loss, batch: int):
    """``mean_loss`` × the batch: each sample's gradient counts whole (RuleConfig.batch_reduction='sum')."""
    def loss(out, y, **kw):
        return mean_loss(out, y, **kw) * batch
    loss.__name__ = f"{mean_loss.__name__}_summed"
    loss.takes_replicas = True  # fit passes replicas= on to ferristor's loss
    return loss


@run_folder.claimed  # memory, then --out: created, writable, locked, same config as its checkpoint (fresh=True discards)
def train(cfg: TrainConfig, out_dir: str | Path | None = None, *, progress: bool = True, dataset=None,
          on_eval=None, on_checkpoint=None, resume_state: dict | None = None) -> dict:
    """Train, evaluate, and return (and, with ``out_dir``, write) the results dict.

    ``on_eval``, ``on_checkpoint``, ``resume_state``: the sweep driver's hooks (see :func:`run_fit`)."""
    set_threads(cfg.threads)
    with use_backend(cfg.backend):
        data = dataset or load_dataset(cfg.dataset, cfg.data_dir, ecg=cfg.ecg)
        check_data(cfg, data)  # labels vs outputs, features, batch ≤ samples; warns when k > the run's samples
        model = build_model(cfg)
        result = run_fit(model, data, optimizer=build_optimizer(cfg, model), out=out_dir, progress=progress,
                         on_eval=on_eval, on_checkpoint=on_checkpoint, resume_state=resume_state, **fit_options(cfg))
    return result.results
