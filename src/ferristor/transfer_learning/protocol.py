"""The head-training protocol of Fig. 6 on cached features: tenfold cross-validation over the target
pool doubled by horizontal flips (flip pairs in one fold), n = 10 runs, five heads.

Heads (``HEADS``):
  fp-offline   float32 weights, Adam, batch 128, lr 1e-4 [issue 9: the paper's FP baseline]
  lsq-offline  4-bit LSQ weights, otherwise as fp-offline [issue 9: the paper's 4-bit baseline]
  hm-var       on chip: HybridLinear + HybridSGD, p = 1, k = 512, lr 0.1 (digest §6), decay 0.1,
               transfers with the measured variability (digest §3–4)
  hm           the same with ideal transfers (control: how much is variability?)
  fp-online    the same rule on float32 weights, one sample per step (control: how much is the lack
               of mini-batches?)

Open hyperparameters are chosen **per run on its training folds only** (nested): run f tests on fold
f; it holds out fold f+1 (mod 10) as validation, trains candidates on the other eight folds, and
keeps the best — the test fold is never seen. Chosen that way:
  * offline heads: the number of epochs (the first epoch of best validation accuracy, ≤ ``offline_epochs``);
  * online heads: ``hidden_lsb``, the real value of one hidden LSB — the weight scale of the grid —
    from ``lsb_grid``, chosen on hm-var and used by all three online heads (so they differ in storage only).
Fixed a priori, not tuned (named in ``ProtocolConfig``): online epochs and the decay epoch, the
feature standardisation, no bias, Adam's weight decay (0), the folds' seed.
"""
from __future__ import annotations

import time
import warnings
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import torch

from ..circuit.ledger import LedgerConfig
from ..config_base import FLOAT32_SCALE, check_number, param
from ..errors import ConfigError, FerristorWarning
from . import folds as fl
from .heads import (K_ADVICE, NoEffectWarning, OfflineConfig, OnlineConfig, Runs, trains_on, train_offline, train_online,
                    warn_decay_never_applies)
from .ledger import summarise

HEADS = ("fp-offline", "lsq-offline", "hm-var", "hm", "fp-online")
OFFLINE_BITS = {"fp-offline": 0, "lsq-offline": 4}
ONLINE_MODE = {"hm-var": "hm-var", "hm": "hm", "fp-online": "fp"}
# Candidate weight scales of the on-chip heads [I], chosen per run on its training folds. 2^-8…2^-12 left
# the choice at the grid's edge (2^-8 in every run) with the HM heads 15 pp under FP on MNIST → Fashion-MNIST;
# 2^-5…2^-8 chose 2^-5/2^-6 on a plateau and closed 11 pp of it (RESULTS.md, Fig. 6).
LSB_GRID = (2.0 ** -5, 2.0 ** -6, 2.0 ** -7, 2.0 ** -8)
# OnlineConfig's fields added after pair results were saved, with the value the heads computed with
# before them (HybridConfig's defaults for the mode): see ProtocolConfig.identity.
ADDED_ONLINE = {"sigma_levels": OnlineConfig().sigma_levels, "level_means": OnlineConfig().level_means,
                "ledger": asdict(LedgerConfig())}


def check_lsb_grid(grid, written=None, how: str = "as OnlineConfig.hidden_lsb takes them") -> tuple[float, ...]:
    """``grid`` as ProtocolConfig.lsb_grid holds it, a tuple of floats: one or more weight scales, each
    in the range of OnlineConfig.hidden_lsb (the heads' 32-bit kernels), each once. Else a ConfigError
    naming ``lsb_grid``, the grid as written and its first bad item; ``written``: each item as its user
    wrote it (``2^-5``; default: the numbers), ``how``: how items are written."""
    values = list(grid) if isinstance(grid, (tuple, list)) else [grid]
    written = [str(v) for v in values] if written is None else [str(w) for w in written]

    def refuse(why: str = ""):
        raise ConfigError("lsb_grid", ",".join(written),  # as written, not a Python tuple
                          f"one or more weight scales (hidden LSBs) in [{FLOAT32_SCALE[0]:g}, {FLOAT32_SCALE[1]:g}], "
                          f"each once, {how}{why}")
    if not values:
        refuse()
    out: list[float] = []
    for v, w in zip(values, written):
        try:
            check_number("hidden_lsb", v, lo=FLOAT32_SCALE[0], hi=FLOAT32_SCALE[1])
        except ConfigError:
            refuse(f" ({w} is not one)")
        if float(v) in out:  # 2^-8 and 0.00390625 are one candidate
            first = written[out.index(float(v))]
            refuse(f" ({w} is given twice" + (f", as {first}" if first != w else "") + ")")
        out.append(float(v))
    return tuple(out)


@dataclass
class ProtocolConfig:
    folds: int = param(10, unit="fold", source="[issue 9: the paper's tenfold cross-validation, n = 10]")
    seed: int = param(0, source="[I]", doc="seed of the folds and the heads' initialisation")
    offline_epochs: int = param(150, unit="epoch", source="[I]", doc="the most an offline head may train; chosen per run on its training folds")
    offline_batch: int = param(128, unit="sample", source="[issue 9: the paper's]", doc="samples per Adam step of the offline heads")
    offline_lr: float = param(1e-4, unit="1", source="[issue 9: the paper's]", doc="Adam's learning rate of the offline heads")
    online: OnlineConfig = field(default_factory=OnlineConfig)
    lsb_grid: tuple[float, ...] = param(LSB_GRID, unit="weight", source="[I]", doc="the online heads' weight scales, one chosen per run on its training folds")
    heads: tuple[str, ...] = param(HEADS, source="digest §6 (FP, 4-bit offline, HM online); [I] the controls", doc="the heads trained and compared")

    def __post_init__(self):
        check_number("folds", self.folds, lo=3, integer=True)
        check_number("seed", self.seed, lo=0, integer=True)
        if not isinstance(self.online, OnlineConfig):
            raise ConfigError("online", type(self.online).__name__,
                              "an OnlineConfig (ferristor.transfer_learning.heads)")
        heads = self.heads if isinstance(self.heads, (tuple, list)) else (self.heads,)
        bad = [str(h) for h in heads if h not in HEADS]
        if bad or not heads:
            raise ConfigError("heads", ",".join(bad), "a comma-separated subset of " + ", ".join(HEADS))
        twice = next((h for i, h in enumerate(heads) if h in heads[:i]), None)
        if twice is not None:
            raise ConfigError("heads", ",".join(heads), f"each head once ({twice} is given twice)")
        self.heads = tuple(heads)
        self.lsb_grid = check_lsb_grid(self.lsb_grid)
        self.offline(HEADS[0])  # the offline heads' settings, whichever heads run: a bad value is refused now
        if any(h in ONLINE_MODE for h in self.heads):  # settings of heads that do not run are not read
            warn_decay_never_applies(self.online, stacklevel=4)
        if "hm-var" not in self.heads and self.online.sigma_levels != ADDED_ONLINE["sigma_levels"]:
            warnings.warn(NoEffectWarning("OnlineConfig.sigma_levels", self.online.sigma_levels, "heads",
                                          ",".join(self.heads), "only the hm-var head transfers with variability"),
                          stacklevel=3)

    def offline(self, head: str) -> OfflineConfig:
        """The OfflineConfig of the offline ``head`` (its bits; this protocol's lr, batch and most epochs):
        its checks are those fields' checks, a value it refuses named as this config's (``offline_lr``)."""
        try:
            return OfflineConfig(bits=OFFLINE_BITS[head], lr=self.offline_lr, batch=self.offline_batch,
                                 epochs=self.offline_epochs)
        except ConfigError as e:
            raise ConfigError(f"offline_{e.field}", e.value, e.allowed, reason=e.reason) from None

    def identity(self) -> dict:
        d = asdict(self)
        d["lsb_grid"], d["heads"] = list(self.lsb_grid), list(self.heads)
        # fields added to OnlineConfig after pairs were saved: at the values the heads had before them
        # they stay out, so a saved pair still matches; any other value is in (and recomputes the pair)
        for name, before in ADDED_ONLINE.items():
            if d["online"][name] == before:
                del d["online"][name]
        return d


def make_runs(pool_folds: np.ndarray, n_folds: int, seed: int, inner: bool) -> Runs:
    """Outer runs (train on nine folds, test on one) or their inner splits (train on eight, validate on
    the next fold) — one run per fold, seeded 1000·seed + fold."""
    trains, evals = [], []
    for f in range(n_folds):
        held = [f, fl.inner_validation_fold(f, n_folds)] if inner else [f]
        train, _ = fl.split(pool_folds, held)
        trains.append(train)
        evals.append(fl.split(pool_folds, held[-1])[1])
    return Runs([1000 * seed + f for f in range(n_folds)], np.stack(trains), {"val" if inner else "test": np.stack(evals)})


def warn_k_exceeds(cfg: OnlineConfig, choosing: int, final: int) -> None:
    """Where k exceeds what the hm-var heads that choose hidden_lsb train on (``choosing`` rows: the
    training folds less the validation fold), or the final heads (``final`` rows), say which: the
    choosing heads never transfer — their candidates then differ in nothing the validation sees — even
    where the final heads, on one fold more, do."""
    if cfg.k <= choosing * cfg.epochs:
        return
    which = trains_on(cfg, choosing, "each hm-var head choosing hidden_lsb")
    if cfg.k > final * cfg.epochs:
        why = (f"larger than {which} and {trains_on(cfg, final, 'each final online head')}: no transfer will "
               f"happen, so the hybrid heads keep their initial weights")
    else:
        why = (f"larger than {which}: those heads never transfer, so hidden_lsb is chosen on their initial weights "
               f"(the candidates may all tie); {trains_on(cfg, final, 'each final head')} and do transfer")
    warnings.warn(FerristorWarning(f"{why}; {K_ADVICE}", field="OnlineConfig.k", value=cfg.k), stacklevel=3)


def _ties(val: np.ndarray) -> list[bool]:
    """Per run (a row of ``val``, one column per candidate): whether every candidate has the same
    validation accuracy, so that argmax's choice, the first grid value, is no choice at all."""
    return [bool(val.shape[1] > 1 and (row == row[0]).all()) for row in val]


def _tie_note(tied: list[bool]) -> str:
    runs = [str(r) for r, t in enumerate(tied) if t]
    if not runs:
        return ""
    which = f"all {len(tied)} runs" if len(runs) == len(tied) else "run" + "s" * (len(runs) > 1) + " " + ", ".join(runs)
    return f"; {which}: a tie (every candidate equal on validation), taken as the first grid value"


def _stats(acc) -> dict:
    a = 100 * np.asarray(acc, dtype=float)
    return {"accuracy": a.tolist(), "mean": float(a.mean()), "std": float(a.std(ddof=1)) if len(a) > 1 else 0.0}


def run_protocol(original: torch.Tensor, flipped: torch.Tensor, y: torch.Tensor, n_classes: int,
                 cfg: ProtocolConfig, progress: bool = False, log=print) -> dict:
    """All heads of ``cfg`` on the pool (features of the originals, of their flips, labels)."""
    features = torch.cat([original, flipped]).float()
    labels = torch.cat([y, y]).long()
    pool_folds = fl.with_flips(fl.assign_folds(y.numpy(), cfg.folds, cfg.seed))
    sizes = np.bincount(pool_folds)
    if len(set(sizes.tolist())) != 1:
        raise ConfigError("pool", sizes.tolist(), "folds of one size (class counts divisible by the folds)")
    outer = make_runs(pool_folds, cfg.folds, cfg.seed, inner=False)
    inner = make_runs(pool_folds, cfg.folds, cfg.seed, inner=True)
    out: dict = {"pool": {"originals": len(y), "rows": len(labels), "features": features.shape[1],
                          "train_rows_per_run": outer.train.shape[1], "test_rows_per_run": outer.evals["test"].shape[1]},
                 "heads": {}}

    for head in [h for h in cfg.heads if h in OFFLINE_BITS]:
        t0 = time.perf_counter()
        ocfg = cfg.offline(head)
        val = train_offline(features, labels, inner, ocfg, n_classes, progress, f"{head} (choosing epochs)")["history"]["val"]
        chosen = val.argmax(1) + 1  # first epoch of best validation accuracy, per run
        test = train_offline(features, labels, outer, replace(ocfg, epochs=int(chosen.max())), n_classes, progress,
                             head)["history"]["test"]
        acc = test[np.arange(cfg.folds), chosen - 1]
        out["heads"][head] = {**_stats(acc), "epochs": chosen.tolist(), "val_best": (100 * val.max(1)).tolist(),
                              "seconds": time.perf_counter() - t0}
        log(f"  {head}: {out['heads'][head]['mean']:.2f} ± {out['heads'][head]['std']:.2f} % "
            f"(epochs chosen {sorted(set(chosen.tolist()))}, {out['heads'][head]['seconds']:.0f} s)")

    online_heads = [h for h in cfg.heads if h in ONLINE_MODE]
    if online_heads:
        t0 = time.perf_counter()
        warn_k_exceeds(cfg.online, inner.train.shape[1], outer.train.shape[1])
        val = np.stack([train_online(features, labels, inner, replace(cfg.online, mode="hm-var", hidden_lsb=lsb), n_classes,
                                     progress, f"hm-var lsb 2^{np.log2(lsb):.0f} (choosing)", warn_k=False)["history"]["val"][:, -1]
                        for lsb in cfg.lsb_grid], axis=1)  # (runs, candidates)
        chosen = [cfg.lsb_grid[j] for j in val.argmax(1)]
        tied = _ties(val)
        out["lsb_choice"] = {"grid": list(cfg.lsb_grid), "val_accuracy": (100 * val).tolist(), "chosen": chosen,
                             "tied": tied, "seconds": time.perf_counter() - t0}
        log(f"  hidden_lsb chosen per run: {[f'2^{np.log2(c):.0f}' for c in chosen]}{_tie_note(tied)} "
            f"({time.perf_counter() - t0:.0f} s)")
        for head in online_heads:
            t0 = time.perf_counter()
            acc, transfers, reports = np.zeros(cfg.folds), np.zeros(cfg.folds, np.int64), [None] * cfg.folds
            for lsb in sorted(set(chosen)):
                which = [r for r in range(cfg.folds) if chosen[r] == lsb]
                res = train_online(features, labels, outer.select(which),
                                   replace(cfg.online, mode=ONLINE_MODE[head], hidden_lsb=lsb), n_classes, progress, head,
                                   warn_k=False)
                acc[which] = res["history"]["test"][:, -1]
                transfers[which] = res["transfers"]
                for i, r in enumerate(which):
                    reports[r] = res["ledger"][i] if res["ledger"] else None
            entry = {**_stats(acc), "hidden_lsb": chosen, "transfers": transfers.tolist(),
                     "seconds": time.perf_counter() - t0}
            if reports[0] is not None:
                entry["ledger"] = summarise(reports)
            out["heads"][head] = entry
            log(f"  {head}: {entry['mean']:.2f} ± {entry['std']:.2f} % ({entry['seconds']:.0f} s)")
    return out
