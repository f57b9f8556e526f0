"""The full configuration of a training run, and the per-task presets: the paper's networks, lr and p
(digest §4 table), but ECG's lr (0.01, not the paper's 0.3; ``TASKS``)."""
from __future__ import annotations

import dataclasses
import json
import warnings
from dataclasses import dataclass, field

from ..circuit.charge_transfer import ChargeTransferConfig, changed_settings
from ..circuit.layout import SynapseLayout
from ..circuit.ledger import LedgerConfig
from ..circuit.transfer import IGNORED_BY_MODEL, TransferConfig
from ..data.ecg import ECGConfig
from ..config_base import check_choice, check_device, check_number, param
from ..errors import ConfigError, FerristorWarning, UnusedSettingsWarning
from ..backend import BACKENDS
from ..cpus import available_cpus
from ..nn.config import MODES, check_layout, check_scheme
from ..nn.mlp import NetworkSpec
from ..rule.config import RuleConfig
from ..rule.schemes import SchemeConfig
from .. import vector_width
from .seeds import parse_seeds

MAX_EPOCHS = 10_000  # 100 × the paper's longest run; beyond it a typo (1e9) would run for ever
MAX_STOPS = 100_000  # evaluations (or checkpoints) per run: each is a planned stop of the loop

# Network, lr and p of each task (digest §4 table [P]; Fashion-MNIST normalisation [I]), but ECG's lr.
TASKS = {
    "mnist": dict(sizes=(784, 200, 100, 10), norm="layer", output="softmax", lr=0.1, p=0.2),
    "fashion-mnist": dict(sizes=(784, 200, 100, 100, 10), norm="layer", output="softmax", lr=0.1, p=0.1),
    # lr: the paper's 0.3 (digest §4) makes online SGD on standardised features collapse to one class,
    # here and in a plain PyTorch loop alike. Over 20 seeds, 0.01 trains every mode stably, while at
    # 0.03 and 0.1 some FP seeds collapse (RESULTS.md, "ECG: learning rate and seed noise"; chosen on
    # validation, RESULTS.md "ECG learning rate") [I]. The paper's value: paper_values.PAPER_LR.
    "ecg": dict(sizes=(20, 200, 1), norm="none", output="sigmoid", lr=0.01, p=0.2),
}


@dataclass
class TrainConfig:
    dataset: str = param("mnist", doc="a dataset name: " + ", ".join(TASKS))
    mode: str = param("hm-var", doc="'fp' (float32 baseline), 'hm' (ideal transfer) or 'hm-var' (transfer with variability)")
    epochs: float = param(10, unit="epoch", source="digest §4 table [P]", doc="passes over the training set; a fraction runs part of one")
    batch: int = param(1, unit="sample", source="digest §4 [P]", doc="samples per update (1 = online)")
    seeds: list[int] = param([0], doc="one replica (an independent chip) per seed")
    network: NetworkSpec = field(default_factory=NetworkSpec)
    rule: RuleConfig = field(default_factory=RuleConfig)
    transfer: TransferConfig = field(default_factory=TransferConfig)
    ledger: LedgerConfig = field(default_factory=LedgerConfig)
    scheme: SchemeConfig = field(default_factory=SchemeConfig)  # the learning rule: hybrid, or a baseline (rule.schemes)
    ecg: ECGConfig = param(ECGConfig(), source="digest §4 [P], per field (ferristor params ECGConfig)",
                           doc="how ECG beats become features and which beats train and test (dataset 'ecg' only): e.g. ecg.feature_scaling")
    layout: SynapseLayout = param(SynapseLayout(), source="digest §2 [P], per field (ferristor params SynapseLayout)",
                                  doc="the synapse's bits and cells: layout.hidden_bits (10), layout.analogue_magnitude_bits (3); "
                                      "the cell counts follow unless set")
    eval_every: float = param(1.0, unit="epoch", doc="test accuracy is measured every this many epochs and at the end")
    checkpoint_every: float = param(1.0, unit="epoch", doc="with an output folder, a checkpoint is written this often and at every evaluation (0 = at evaluations only)")
    test_limit: int = param(0, unit="sample", doc="evaluate on the first N test samples only (0 = all)")
    eval_batch: int = param(2000, unit="sample", source="digest §4 [I]", doc="samples evaluated together (test and validation): with norm='batch' each is normalised with its batch's statistics — the paper does not say how BatchNorm runs at test time; with other norms it sets only memory and speed")
    threads: int = param(1, unit="thread", doc="CPU threads for torch and the kernels; per-sample loops run best at 1–2")
    backend: str = param("auto", doc="'auto', 'numba' (fused CPU kernels) or 'torch' (reference, any device)")
    device: str = param("cpu", doc="torch device")
    data_dir: str | None = param(None, doc="data root holding one folder per dataset (else FERRISTOR_DATA, a package, the cache)")
    validation: float = param(0.0, unit="1", source="[I]", doc="fraction of the training set held out (the same for every replica) and evaluated beside the test set: choose open hyperparameters on it, never on the test set. For ECG the held-out beats come from the same training records (within-patient), not from held-out patients")
    validation_seed: int = param(0, doc="seed of the validation split")

    def __post_init__(self):
        check_choice("dataset", self.dataset, TASKS)
        check_choice("mode", self.mode, MODES)
        check_scheme(self.scheme)
        check_number("epochs", self.epochs, lo=0, hi=MAX_EPOCHS, lo_open=True)
        check_number("batch", self.batch, lo=1, integer=True)
        self.seeds = parse_seeds(self.seeds)
        check_number("eval_every", self.eval_every, lo=0, lo_open=True)
        check_number("checkpoint_every", self.checkpoint_every, lo=0)
        for name in ("eval_every", "checkpoint_every"):
            every = getattr(self, name)
            if every and self.epochs / every > MAX_STOPS:
                raise ConfigError(name, every, f"at least {self.epochs / MAX_STOPS:g} epochs (at most {MAX_STOPS:,} stops per run)",
                                  context={"epochs": self.epochs})
        check_number("test_limit", self.test_limit, lo=0, integer=True)
        check_number("eval_batch", self.eval_batch, lo=1, integer=True)
        check_number("validation", self.validation, lo=0, hi=1, hi_open=True)
        check_number("validation_seed", self.validation_seed, lo=0, integer=True)
        check_number("threads", self.threads, lo=1, hi=available_cpus(), integer=True)
        check_choice("backend", self.backend, BACKENDS)
        self.device = check_device("device", self.device)
        if self.backend == "numba" and not self.device.startswith("cpu"):
            raise ConfigError("backend", self.backend, "'auto' or 'torch' (the numba kernels run on the CPU)",
                              context={"device": self.device})
        if not self.device.startswith("cpu"):
            from ..backend import gpu_passes
            gpu_passes()  # FERRISTOR_GPU_PASSES checked before any work
        vector_width.choice()  # FERRISTOR_VECTOR_WIDTH, likewise
        if self.data_dir is not None and (not isinstance(self.data_dir, str) or not self.data_dir.strip()):
            raise ConfigError("data_dir", self.data_dir, "a folder path (leave it unset to use FERRISTOR_DATA, a package or the cache)")
        if self.network.norm == "batch" and self.batch < 2:
            raise ConfigError("batch", self.batch, "at least 2 (BatchNorm over a single sample is identically zero)",
                              context={"network.norm": "batch"})
        if self.network.norm == "batch" and self.eval_batch < 2:
            raise ConfigError("eval_batch", self.eval_batch, "at least 2 (BatchNorm over a single sample is identically zero)",
                              context={"network.norm": "batch"})
        if self.mode == "hm-var" and self.transfer.model == "ideal":
            raise ConfigError("transfer.model", self.transfer.model, "'table' or 'circuit' (variability needs a noisy transfer)",
                              context={"mode": self.mode})
        if self.mode == "hm" and self.transfer.model != "ideal":
            raise ConfigError("transfer.model", self.transfer.model, "'ideal' (use mode 'hm-var' for variability)",
                              context={"mode": self.mode})
        _warn_unused_transfer(self.mode, self.transfer)
        check_layout(self.layout, self.transfer, self.scheme, self.mode)
        _warn_implausible_energy(self.ledger)
        if self.dataset != "ecg" and self.ecg != ECGConfig():
            changed = [(f"ecg.{f.name}", getattr(self.ecg, f.name)) for f in dataclasses.fields(ECGConfig)
                       if getattr(self.ecg, f.name) != getattr(ECGConfig(), f.name)]
            _warn_no_effect(f"dataset {self.dataset!r} is not the ECG", changed)
        if self.mode == "fp" and not self.scheme.is_hybrid:
            raise ConfigError("scheme.rule", self.scheme.rule, "'hybrid' (a baseline rule programs devices: mode 'hm' or 'hm-var')",
                              context={"mode": self.mode})
        check_read_by_rule(self)


# Settings a baseline rule never reads (rule.compose, nn.schemes; checked per rule in
# tests/experiments/test_config.py): a value other than the default would be recorded, shown and
# compared as if it had acted, so it is refused, as SchemeConfig refuses another rule's fields. Mode
# 'fp' is left out on purpose: it ignores rule.k and rule.rounding too (float weights, no transfer, no
# grid), but one base config crosses the modes at one k and one rounding (a sweep's grid over mode,
# Fig. 5f's fp point beside hm and hm-var), so there they stay accepted with a warning
# (warn_unread_in_fp, in ferristor train), and the run's summary says they did nothing (experiments.summary).
_BASELINES_IGNORE = {
    "rule.sampler": "its update masks are always drawn from the dense stream; the sparse sampler is a kernel "
                    "of the hybrid rule and fp only",
    "ledger.count_zero_updates": "it is a counting option of the hybrid rule's FeCAP updates; this rule counts the "
                                 "memristor writes it makes",
    "ledger.transfer_writes_unchanged": "it is an option of the hybrid rule's transfer, which writes every pair or only those "
                                        "whose level changed; this rule's own policy decides which pairs it programs",
}
IGNORED_BY_RULE = {
    "memristor-sgd": {"rule.k": "it has no transfer: an update programs the pair itself, when its level changes or "
                                "at every masked-in update (scheme.write), whatever k",
                      "rule.k_unit": "it has no transfer, so nothing counts k", **_BASELINES_IGNORE},
    "mixed-precision": {"rule.rounding": "it adds the unrounded update to its float χ, and a transfer moves whole "
                                        "steps of scheme.epsilon: nothing is rounded", **_BASELINES_IGNORE},
    "tiki-taka": dict(_BASELINES_IGNORE),
}


def check_read_by_rule(cfg: "TrainConfig") -> None:
    """Refuse a non-default value of a setting the run's learning rule never reads (``IGNORED_BY_RULE``),
    naming the setting, its value and why it would do nothing."""
    ignored = IGNORED_BY_RULE.get(cfg.scheme.rule, {}) if cfg.mode != "fp" else {}
    for path, why in ignored.items():
        section, name = path.split(".")
        value, default = getattr(getattr(cfg, section), name), _SECTION_DEFAULTS[section][name]
        if value != default:
            raise IgnoredSettingError(path, value, default, f"rule {cfg.scheme.rule!r}", why,
                                      context={"scheme.rule": cfg.scheme.rule})


class IgnoredSettingError(ConfigError):
    """A setting that the run's rule (``what``) never reads, at ``value`` instead of its ``default``. A
    command line names a true/false setting by the flag typed: ``--skip-zero-updates: …; leave it out``."""

    def __init__(self, field: str, value, default, what: str, why: str, context: dict | None = None):
        self.default, self.what, self.why = default, what, why
        super().__init__(field, value, reason=f"does nothing for {what}: {why}; leave it at its default ({default!r})",
                         context=context)

    def render(self, namer=None) -> str:
        flag = namer(self.field) if namer and isinstance(self.value, bool) else None
        if flag:
            return f"{flag}: does nothing for {self.what}: {self.why}; leave it out"
        return super().render(namer)


_SECTION_DEFAULTS = {"rule": dataclasses.asdict(RuleConfig()), "ledger": dataclasses.asdict(LedgerConfig())}


# What mode 'fp' never reads of the rule and the ledger: float weights have no transfer (k, counted in
# k_unit) and no grid to round onto, and no devices, so its ledger counts nothing (``nn.ledger`` skips
# fp layers). It reads lr, p, the sampler (its masks), batch_reduction and the initialisation.
_FP_UNREAD_RULE = ("k", "k_unit", "rounding")


def warn_unread_in_fp(cfg: "TrainConfig") -> None:
    """Rule and ledger settings away from their defaults that mode 'fp' never reads: a warning (they would
    be recorded with the results as if they had acted), not an error. One run's front end warns
    (``ferristor train``); TrainConfig itself does not, since a sweep crosses the modes at one k and
    one rounding, every fp point of it would say so (the transfer's settings: :func:`_warn_unused_transfer`)."""
    if cfg.mode != "fp":
        return
    changed = [(f"rule.{n}", getattr(cfg.rule, n)) for n in _FP_UNREAD_RULE
               if getattr(cfg.rule, n) != _SECTION_DEFAULTS["rule"][n]]
    changed += [(f"ledger.{n}", v) for n, v in dataclasses.asdict(cfg.ledger).items()
                if v != _SECTION_DEFAULTS["ledger"][n]]
    if changed:
        warnings.warn(UnusedSettingsWarning("mode 'fp' has float weights: no transfer, no grid to round onto and no "
                                            "devices to count", changed), stacklevel=2)


def _warn_unused_transfer(mode: str, transfer: TransferConfig) -> None:
    """Transfer settings that change nothing — any in mode 'fp' (it writes no memristors), those the
    transfer model ignores otherwise — would be recorded with the results as if they had acted. A
    warning, not an error: a sweep may cross modes or models with one base."""
    default = TransferConfig(model="ideal")
    if mode == "fp":
        fields, why = [f.name for f in dataclasses.fields(transfer)], "mode 'fp' has float weights and writes no memristors"
    else:
        fields, why = IGNORED_BY_MODEL[transfer.model], f"transfer model {transfer.model!r} does not use them"
    changed = [(f"transfer.{n}", getattr(transfer, n)) for n in fields if n != "circuit" and getattr(transfer, n) != getattr(default, n)]
    if "circuit" in fields:  # named leaf by leaf: the device chain has some sixty settings
        changed += [(f"transfer.circuit.{p}", v) for p, v in changed_settings(transfer.circuit, ("",))]
    if changed:
        _warn_no_effect(why, changed)
    if (mode != "fp" and transfer.model == "circuit" and transfer.circuit_sampler == "chain"
            and transfer.circuit_table_draws != default.circuit_table_draws):
        _warn_no_effect("transfer.circuit_sampler 'chain' tabulates nothing",
                        [("transfer.circuit_table_draws", transfer.circuit_table_draws)])
    if transfer.model == "circuit" and mode != "fp":
        unread = changed_settings(transfer.circuit)
        if unread:
            _warn_no_effect("a transfer draws a fresh device chain with no device history (the device figures "
                            "use these settings, training does not)", [(f"transfer.circuit.{p}", v) for p, v in unread])


# Energies per operation outside these (in joules: 1 aJ, near the thermodynamic floor of a switching
# event, to 1 µJ) are no device's: most likely a value in another unit (joules where fJ are asked)
PLAUSIBLE_OP_ENERGY_J = (1e-18, 1e-6)


def _warn_implausible_energy(ledger: LedgerConfig) -> None:
    lo, hi = PLAUSIBLE_OP_ENERGY_J
    for path, value, unit, scale in (("ledger.fecap_energy_fj", ledger.fecap_energy_fj, "fJ", 1e-15),
                                     ("ledger.memristor_energy_pj", ledger.memristor_energy_pj, "pJ", 1e-12)):
        if value and not lo <= value * scale <= hi:
            warnings.warn(FerristorWarning(
                f"{path}={value:g} is {value * scale:.3g} J per operation, outside any device's {lo:g}–{hi:g} J: "
                f"the unit is {unit} per operation (the paper's: {'100 fJ' if unit == 'fJ' else '1 pJ'}, digest §5)"),
                stacklevel=4)


def _warn_no_effect(why: str, changed: list) -> None:
    warnings.warn(UnusedSettingsWarning(why, changed), stacklevel=5)


# Fields that say where and how a run executes, not what it computes: they never enter a trial's key
# and a checkpoint written under other values still resumes.
LOCAL_FIELDS = ("data_dir", "threads", "device", "backend", "checkpoint_every")


# Fields added after results were saved, with the value that computes exactly what runs did before
# them: at that value a field stays out of a run's identity (and a sweep trial's key), so saved
# checkpoints and sweep points keep their keys. The default ``scheme`` (the hybrid rule) likewise.
LEGACY_DEFAULTS = {("rule", "sampler"): "dense", ("rule", "init_shape"): "uniform",
                   ("network", "output_norm"): True, (None, "eval_batch"): 2000,
                   ("ledger", "memristor_ops_unselected"): None, ("rule", "k_unit"): "inputs",
                   ("rule", "batch_reduction"): "mean",
                   ("transfer", "circuit"): dataclasses.asdict(ChargeTransferConfig()),
                   ("transfer", "circuit_sampler"): "chain", ("transfer", "circuit_table_draws"): 65536,
                   (None, "ecg"): dataclasses.asdict(ECGConfig()), (None, "layout"): dataclasses.asdict(SynapseLayout())}


def without_legacy_defaults(cfg_dict: dict) -> dict:
    """``cfg_dict`` without the fields at their ``LEGACY_DEFAULTS`` and without the default scheme."""
    out = {k: v for k, v in cfg_dict.items() if not (k == "scheme" and v == _DEFAULT_SCHEME)}
    for (section, name), value in LEGACY_DEFAULTS.items():
        if section is None:  # a top-level field
            if _plain(out.get(name, value)) == _plain(value):
                out.pop(name, None)
        elif isinstance(out.get(section), dict) and _plain(out[section].get(name, value)) == _plain(value):
            out[section] = {k: v for k, v in out[section].items() if k != name}
    return out


def with_legacy_defaults(cfg_dict: dict) -> dict:
    """``cfg_dict`` (as saved, perhaps before some fields existed) with every ``LEGACY_DEFAULTS`` field
    it lacks filled in, and the default scheme: the form to compare and show runs in, so a run saved
    before a field existed reads as what it computed, not as 'absent' in that field."""
    out = json.loads(json.dumps(cfg_dict, default=str))
    out.setdefault("scheme", _plain(_DEFAULT_SCHEME))
    for (section, name), value in LEGACY_DEFAULTS.items():
        target = out if section is None else out.get(section)
        if isinstance(target, dict):
            target.setdefault(name, _plain(value))
    return out


def _plain(value):
    """A value as JSON would give it back (tuples as lists), so a dict read from results.json and one
    from ``dataclasses.asdict`` compare equal."""
    return json.loads(json.dumps(value)) if isinstance(value, (dict, list, tuple)) else value


def run_identity(cfg_dict: dict) -> dict:
    """A config dict without its ``LOCAL_FIELDS`` (and ``without_legacy_defaults``): what two runs
    must share to compute the same thing."""
    return without_legacy_defaults({k: v for k, v in cfg_dict.items() if k not in LOCAL_FIELDS})


_DEFAULT_SCHEME = dataclasses.asdict(SchemeConfig())


def task_config(dataset: str = "mnist", mode: str = "hm-var", **overrides) -> TrainConfig:
    """A TrainConfig with the task preset for ``dataset`` (``TASKS``: the paper's network, lr and p, but
    ECG's lr 0.01 instead of the paper's 0.3); ``overrides`` may set any
    top-level field, and ``lr``, ``p``, ``k``, ``rounding``, ``hidden_lsb``, ``init_scale``,
    ``sigma_levels``, ``level_means`` and the fields of ``SchemeConfig`` (``rule``, ``epsilon`` …)
    reach the nested configs."""
    check_choice("dataset", dataset, TASKS)
    t = TASKS[dataset]
    rule_keys = {f.name for f in dataclasses.fields(RuleConfig)}
    transfer_keys = {"sigma_levels", "level_means", "sign_guard", "transfer_model", "circuit", "circuit_sampler",
                     "circuit_table_draws"}
    ledger_keys = {f.name for f in dataclasses.fields(LedgerConfig)}
    scheme_keys = {f.name for f in dataclasses.fields(SchemeConfig)}
    rule_kw = {"lr": t["lr"], "p": t["p"]}
    rule_kw.update({k: overrides.pop(k) for k in list(overrides) if k in rule_keys})
    tr_kw = {k: overrides.pop(k) for k in list(overrides) if k in transfer_keys}
    model = tr_kw.pop("transfer_model", "table" if mode == "hm-var" else "ideal")
    led_kw = {k: overrides.pop(k) for k in list(overrides) if k in ledger_keys}
    # "rule" names the learning rule (a string); a RuleConfig object stays the top-level field
    scheme = SchemeConfig(**{k: overrides.pop(k) for k in list(overrides)
                             if k in scheme_keys and not (k == "rule" and isinstance(overrides[k], RuleConfig))})
    net_kw = {k: overrides.pop(k, t[k]) for k in ("sizes", "norm", "output")}
    net_kw.update({k: overrides.pop(k) for k in ("bias", "output_norm") if k in overrides})
    return TrainConfig(dataset=dataset, mode=mode, network=NetworkSpec(**net_kw), rule=RuleConfig(**rule_kw),
                       transfer=TransferConfig(model=model, **tr_kw), ledger=LedgerConfig(**led_kw), scheme=scheme,
                       **overrides)
