"""Classifier heads on frozen features, R runs (cross-validation folds) trained side by side.

Every head is one fully connected layer D → C without bias (the chip's setting, digest §2 [I] for a
head) on standardised features: each run subtracts the mean and divides by the standard deviation
of its own training rows [I]. Run r trains on its rows only, in its own seeded order; the runs share
nothing but the tensor program, so each equals its run trained alone.

* **Offline** (``OfflineConfig``): float or b-bit LSQ weights (``bits``), Adam, mini-batches — the
  paper's FP and 4-bit baselines (Adam, batch 128, lr 1e-4 [issue 9]). The R heads are one (R, C, D)
  tensor: Adam is elementwise and the loss a sum of per-run batch means, so each run's update is its own.
* **Online** (``OnlineConfig``): ``HybridLinear`` with R replicas and ``HybridSGD``, one sample per
  step — the chip (p = 1, k = 512, lr 0.1: digest §6) in 'hm-var' (with transfer variability),
  'hm' (ideal transfers) or 'fp' (float weights, the same rule: the online float control); the
  transfer's σ and level means and the ledger's costs are ``OnlineConfig`` fields (``hybrid()``).
"""
from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..circuit.ledger import LedgerConfig
from ..circuit.transfer import TransferConfig, check_level_model
from ..config_base import FLOAT32_SCALE, check_choice, check_number, param, param_like
from ..errors import ConfigError, DivergedError, FerristorWarning, NonFiniteGradientError, _as_written
from ..nn import HybridConfig, HybridLinear
from ..nn.lsq import init_step, lsq_quantize, qrange
from ..rule.config import ROUNDING_MODES


STREAM_OFFLINE, STREAM_ONLINE = 13, 14
CHUNK = 512  # online steps whose inputs are gathered at once


@dataclass
class Runs:
    """R runs: seeds (R,), training rows (R, n) of the pool — the same n for every run — and named
    evaluation rows (R, m) (e.g. 'val' or 'test')."""

    seeds: list[int]
    train: np.ndarray
    evals: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self):
        self.train = np.asarray(self.train)
        if self.train.ndim != 2 or self.train.shape[0] != len(self.seeds):
            raise ValueError(f"train rows {self.train.shape} for {len(self.seeds)} runs: expected (R, n), equal n")

    def select(self, which: list[int]) -> "Runs":
        return Runs([self.seeds[i] for i in which], self.train[which], {k: v[which] for k, v in self.evals.items()})


def standardiser(features: torch.Tensor, rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Per run: mean and standard deviation (R, 1, D) of its training rows (σ floored at 1e-6)."""
    mu = torch.stack([features[r].mean(0) for r in torch.from_numpy(rows)])
    sd = torch.stack([features[r].std(0) for r in torch.from_numpy(rows)]).clamp_min(1e-6)
    return mu.unsqueeze(1), sd.unsqueeze(1)


def gather(features: torch.Tensor, rows: np.ndarray, mu: torch.Tensor, sd: torch.Tensor) -> torch.Tensor:
    """Standardised features (R, m, D) of rows (R, m), each run with its own statistics."""
    return ((features[torch.from_numpy(rows)] - mu) / sd).contiguous()


def _orders(seeds: list[int], stream: int, epoch: int, n: int) -> np.ndarray:
    return np.stack([np.random.default_rng([s, stream, epoch]).permutation(n) for s in seeds])


# --- offline -------------------------------------------------------------------------------------

@dataclass
class OfflineConfig:
    bits: int = param(0, unit="bit", source="digest §6 (4-bit extractor); [I] for the head", doc="0: float32 weights; 4: LSQ 4-bit weights (Esser et al. 2020)")
    lr: float = param(1e-4, unit="1", source="[issue 9: the paper's]", doc="Adam's learning rate")
    batch: int = param(128, unit="sample", source="[issue 9: the paper's]", doc="samples per Adam step")
    epochs: int = param(30, unit="epoch", source="[I]", doc="the most; the number used is chosen per run on its training folds")
    weight_decay: float = param(0.0, unit="1", source="[I]", doc="Adam's weight decay")

    def __post_init__(self):
        if self.bits:
            qrange(self.bits)
        check_number("lr", self.lr, lo=0, lo_open=True)
        check_number("batch", self.batch, lo=1, integer=True)
        check_number("epochs", self.epochs, lo=1, integer=True)
        check_number("weight_decay", self.weight_decay, lo=0)


class BatchedLinear(nn.Module):
    """R independent D → C linear maps without bias, weights (R, C, D) initialised as ``nn.Linear``
    (uniform ±1/√D) from each run's seed; with ``bits``, LSQ-quantised with a step per run."""

    def __init__(self, d: int, c: int, seeds: list[int], bits: int = 0):
        super().__init__()
        bound = 1 / math.sqrt(d)
        w = [torch.rand(c, d, generator=torch.Generator().manual_seed(int(s) + 1)) * 2 * bound - bound for s in seeds]
        self.weight = nn.Parameter(torch.stack(w))
        self.bits = bits
        if bits:
            self.step = nn.Parameter(torch.stack([init_step(wr, bits) for wr in w]).view(-1, 1, 1))
            self.g = 1 / math.sqrt(c * d * qrange(bits)[1])

    def effective_weight(self) -> torch.Tensor:
        return lsq_quantize(self.weight, self.step, self.bits, self.g) if self.bits else self.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (R, B, D) → (R, B, C)
        return torch.bmm(x, self.effective_weight().transpose(1, 2))


@torch.no_grad()
def _accuracy(model, x: torch.Tensor, y: torch.Tensor, chunk: int = 4096) -> np.ndarray:
    correct = torch.zeros(x.shape[0], dtype=torch.int64)
    for i in range(0, x.shape[1], chunk):
        correct += (model(x[:, i:i + chunk]).argmax(-1) == y[:, i:i + chunk]).sum(1)
    return (correct.double() / max(1, x.shape[1])).numpy()


def train_offline(features: torch.Tensor, labels: torch.Tensor, runs: Runs, cfg: OfflineConfig, n_classes: int,
                  progress: bool = False, desc: str = "offline head") -> dict:
    """Train R offline heads; returns {'history': {eval: (R, epochs) accuracies}, 'seconds', 'model'}."""
    mu, sd = standardiser(features, runs.train)
    x_tr = gather(features, runs.train, mu, sd)
    y_tr = labels[torch.from_numpy(runs.train)]
    evals = {k: (gather(features, rows, mu, sd), labels[torch.from_numpy(rows)]) for k, rows in runs.evals.items()}
    r, n = runs.train.shape
    model = BatchedLinear(features.shape[1], n_classes, runs.seeds, cfg.bits)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    history = {k: np.zeros((r, cfg.epochs)) for k in evals}
    ar = torch.arange(r).unsqueeze(1)
    t0 = time.perf_counter()
    epochs = range(cfg.epochs)
    if progress:
        from tqdm.auto import tqdm
        epochs = tqdm(epochs, desc=desc, unit="epoch", mininterval=1.0, dynamic_ncols=True)
    for e in epochs:
        order = torch.from_numpy(_orders(runs.seeds, STREAM_OFFLINE, e, n))
        for i in range(0, n, cfg.batch):
            idx = order[:, i:i + cfg.batch]
            xb, yb = x_tr[ar, idx], y_tr[ar, idx]
            logits = model(xb)
            loss = F.cross_entropy(logits.reshape(-1, n_classes), yb.reshape(-1), reduction="sum") / yb.shape[1]
            opt.zero_grad()
            loss.backward()
            opt.step()
        for k, (xe, ye) in evals.items():
            history[k][:, e] = _accuracy(model, xe, ye)
    return {"history": history, "seconds": time.perf_counter() - t0, "model": model}


# --- online (on chip) ----------------------------------------------------------------------------

ONLINE_MODES = ("hm-var", "hm", "fp")


@dataclass
class OnlineConfig:
    mode: str = param("hm-var", source="digest §6 (HM online)", doc="'hm-var', 'hm' or 'fp' (the head's synapses)")
    lr: float = param(0.1, unit="1", source="digest §6 [P]")
    p: float = param(1.0, unit="1", source="digest §6 [P]", doc="update probability")
    k: int = param(512, unit="sample", source="digest §6 [P]", doc="a transfer every k inputs")
    epochs: int = param(3, unit="epoch", source="[I] chosen for the CPU budget (RESULTS.md)")
    decay: float = param(0.1, unit="1", source="[issue 9: \"lr 0.1 with decay 0.1\"; when: I]", doc="lr × decay from decay_epoch on")
    decay_epoch: int = param(2, unit="epoch", source="[I]", doc="the epoch from which the lr decays")
    hidden_lsb: float = param(2.0 ** -9, unit="weight", source="[I]", doc="the head's weight scale; chosen per run on its training folds from ProtocolConfig.lsb_grid")
    rounding: str = param("stochastic", source="[I] as the rest of ferristor", doc="how an update lands on the hidden grid: 'stochastic', 'nearest' or 'truncate'")
    sigma_levels: float = param_like(TransferConfig, "sigma_levels", doc="std of a transferred weight around its level mean (mode 'hm-var' only: 'hm' transfers ideally)")
    level_means: str = param_like(TransferConfig, "level_means", doc="the analogue levels' means, 'ideal' (0…7 integers) or 'measured' (the compressive measured means); modes 'hm-var' and 'hm'")
    ledger: LedgerConfig = param(LedgerConfig(), source="digest §5 [P] (LedgerConfig)", doc="what the hybrid heads' ledger counts and costs: operations per update and transfer, energies, endurance")

    def __post_init__(self):
        check_choice("mode", self.mode, ONLINE_MODES)
        check_choice("rounding", self.rounding, ROUNDING_MODES)
        check_level_model("", self.sigma_levels, self.level_means)
        if not isinstance(self.ledger, LedgerConfig):
            raise ConfigError("ledger", type(self.ledger).__name__, "a LedgerConfig (ferristor.circuit.ledger)")
        check_number("lr", self.lr, lo=0, lo_open=True)
        check_number("p", self.p, lo=0, hi=1, lo_open=True)
        check_number("k", self.k, lo=1, integer=True)
        check_number("epochs", self.epochs, lo=1, integer=True)
        check_number("decay", self.decay, lo=0, lo_open=True, hi=1)
        check_number("decay_epoch", self.decay_epoch, lo=0, integer=True)
        check_number("hidden_lsb", self.hidden_lsb, lo=FLOAT32_SCALE[0], hi=FLOAT32_SCALE[1])

    def lr_at(self, epoch: int) -> float:
        return self.lr * (self.decay if epoch >= self.decay_epoch else 1.0)

    def hybrid(self) -> HybridConfig:
        """The head's synapses: the mode's transfer (a Gaussian table with σ for hm-var, ideal for hm;
        none for fp), the level means and the ledger of this config."""
        if self.mode == "fp":
            return HybridConfig(mode="fp", hidden_lsb=self.hidden_lsb, ledger=self.ledger)
        transfer = TransferConfig(model="table" if self.mode == "hm-var" else "ideal", sigma_levels=self.sigma_levels,
                                  level_means=self.level_means)
        return HybridConfig(mode=self.mode, hidden_lsb=self.hidden_lsb, transfer=transfer, ledger=self.ledger)


class NoEffectWarning(FerristorWarning):
    """A setting that cannot act given another one; both are named as the front end names them
    ('--decay-epoch 5 has no effect with --online-epochs 1: …')."""

    def __init__(self, field: str, value, other: str, other_value, why: str):
        self.other, self.other_value = other, other_value
        super().__init__(why, field=field, value=value)

    def __reduce__(self):  # pickled whole (a worker relays it so), not as the base's one-argument call
        return type(self), (self.field, self.value, self.other, self.other_value, self.message)

    def render(self, namer=None) -> str:
        return (f"{_as_written(self.field, self.value, namer)} has no effect with "
                f"{_as_written(self.other, self.other_value, namer)}: {self.message}")


def warn_decay_never_applies(cfg: OnlineConfig, stacklevel: int = 3) -> None:
    """The lr decays from epoch ``decay_epoch`` (0-based) on: at or past the last epoch it never does."""
    if cfg.decay != 1 and cfg.decay_epoch >= cfg.epochs:
        last = "epoch 0 only" if cfg.epochs == 1 else f"epochs 0–{cfg.epochs - 1}"
        warnings.warn(NoEffectWarning(
            "OnlineConfig.decay_epoch", cfg.decay_epoch, "OnlineConfig.epochs", cfg.epochs,
            f"the online lr is multiplied by {cfg.decay:g} from that epoch on (0-based) and the heads train {last}, "
            f"so it never decays; set it below the online epochs"), stacklevel=stacklevel)


def compiled_head(model: HybridLinear, opt) -> "HybridMLP | None":
    """The HybridMLP view of a head (one layer, no norm) whose compiled chunks (``experiments.fast_step``)
    run the online loop below on the CPU — the same steps, bit for bit; None where they do not apply
    (a GPU, a baseline rule)."""
    from ..experiments import fast_step
    if model.out_features < 2 or model.weight.device.type != "cpu":  # one output: the view would train
        return None  # it with sigmoid + BCE, the loop with softmax; the chunks below take numpy arrays
    view = fast_step.compiled_model(nn.Sequential(model))
    probe = torch.zeros(model.n_replicas, 1, model.in_features)
    return view if view is not None and fast_step.applies(view, opt, True, probe) else None


K_ADVICE = "raise --per-class or --online-epochs, or lower k (fig6: --set protocol.online.k=N)"


def trains_on(cfg: OnlineConfig, rows: int, who: str) -> str:
    """'the 400 samples WHO trains on (200 training rows × 2 epochs)': an online head of ``rows`` rows."""
    return (f"the {rows * cfg.epochs:,} samples {who} trains on ({rows:,} training rows × {cfg.epochs} "
            f"epoch{'s' * (cfg.epochs != 1)})")


def train_online(features: torch.Tensor, labels: torch.Tensor, runs: Runs, cfg: OnlineConfig, n_classes: int,
                 progress: bool = False, desc: str = "online head", warn_k: bool = True) -> dict:
    """Train R on-chip heads, one sample per step; returns {'history': {eval: (R, epochs)}, 'ledger':
    one report per run (None in fp mode), 'transfers' (R,), 'seconds', 'model'}. ``warn_k``: warn where
    k exceeds what a head trains on (a caller that says it its own way, ``run_protocol``, passes False)."""
    from ..experiments import fast_step
    from ..nn import ledger as model_ledger
    from ..nn.functional import cross_entropy
    from ..optim import HybridSGD

    mu, sd = standardiser(features, runs.train)
    y_all = labels
    evals = {k: (gather(features, rows, mu, sd), labels[torch.from_numpy(rows)]) for k, rows in runs.evals.items()}
    r, n = runs.train.shape
    if warn_k and cfg.mode != "fp" and cfg.k > n * cfg.epochs:  # as train's preflight warns: the chip would keep its first weights
        warnings.warn(FerristorWarning(
            f"larger than {trains_on(cfg, n, 'each online head')}: no transfer will happen, so the hybrid heads keep "
            f"their initial weights; {K_ADVICE}", field="OnlineConfig.k", value=cfg.k), stacklevel=2)
    model = HybridLinear(features.shape[1], n_classes, bias=False, replicas=r, seeds=list(runs.seeds), name="head",
                         config=cfg.hybrid())
    opt = HybridSGD(model.parameters(), lr=cfg.lr, p=cfg.p, k=cfg.k, rounding=cfg.rounding)
    history = {k: np.zeros((r, cfg.epochs)) for k in evals}
    ar = np.arange(r)[:, None]
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=cfg.epochs * n, desc=desc, unit="step", mininterval=1.0, dynamic_ncols=True)
    t0 = time.perf_counter()
    compiled = compiled_head(model, opt) if features.dtype == torch.float32 else None
    for e in range(cfg.epochs):
        for g in opt.param_groups:
            g["lr"] = cfg.lr_at(e)
        order = _orders(runs.seeds, STREAM_ONLINE, e, n)
        for i in range(0, n, CHUNK):
            rows = runs.train[ar, order[:, i:i + CHUNK]]
            xc, yc = gather(features, rows, mu, sd), y_all[torch.from_numpy(rows)]
            m = xc.shape[1]
            if compiled is not None:  # run r's sample t is row r·m + t of the flattened chunk
                loss = fast_step.run(compiled, opt, xc.reshape(r * m, -1).numpy(), yc.reshape(-1).numpy(),
                                     np.arange(r * m).reshape(r, m))
            else:
                for t in range(m):
                    loss = cross_entropy(model(xc[:, t:t + 1]), yc[:, t:t + 1], replicas=r)
                    opt.zero_grad()
                    loss.backward()
                    try:
                        opt.step()
                    except NonFiniteGradientError:
                        raise DivergedError("online.lr", cfg.lr, "epoch", e) from None
            if bar is not None:
                bar.update(m)
        if not math.isfinite(float(loss.detach() if torch.is_tensor(loss) else loss)):
            raise DivergedError("online.lr", cfg.lr, "epoch", e)
        model.eval()
        for k, (xe, ye) in evals.items():
            history[k][:, e] = _accuracy(model, xe, ye)
        model.train()
    if bar is not None:
        bar.close()
    reports = model_ledger(model)
    return {"history": history, "seconds": time.perf_counter() - t0, "model": model, "ledger": reports,
            "transfers": model.weight_transfers.tolist()}
