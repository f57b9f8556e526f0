"""The paper's value beside ours: which Fig. 5 preset a run or trial matches, and what the paper says.

A run matches a Fig. 5f setting when it trains the same task the same way (dataset, network, batch,
normalisation, p, k = 100, and the paper's lr or the task preset's — ECG's 0.01 is not the paper's
0.3); epochs, a test subset or that lr may differ, and are then listed as caveats so a short run or
another operating point is never read as a reproduction. Every other field that changes what the run
computes is compared with the resolved config of that setting's ``ferristor reproduce`` trial (the
closest of its presets), and each one that differs is listed by its config path: a layout, a transfer
setting (level means, σ, model), a rule or scheme choice. Operation counts and energies are compared
with the paper's counting formulas (digest §5) at the run's own number of samples.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache

from ..config_base import flatten
from ..experiments import paper_values as pv
from ..experiments.config import LOCAL_FIELDS, TASKS, with_legacy_defaults
from ..experiments.presets import PRESETS
from ..experiments.reproduce import SETTINGS, fig5f_trials
from ..experiments.summary import plain, under, unread_transfer_paths


@dataclass
class PaperValue:
    what: str
    paper: float
    source: str
    caveats: list[str] = field(default_factory=list)
    preset: str | None = None  # the reproduce preset the run was compared with
    differences: list[tuple[str, object, object]] = field(default_factory=list)  # (path, this run's, the preset's)


def fig5f_setting(cfg: dict) -> tuple[str, float] | None:
    """(setting, the paper's epochs) of the Fig. 5f preset the config trains, or None."""
    dataset = cfg.get("dataset")
    if dataset not in TASKS:
        return None
    task, rule, net = TASKS[dataset], cfg.get("rule", {}), cfg.get("network", {})
    same_task = (list(net.get("sizes", [])) == list(task["sizes"]) and net.get("output") == task["output"]
                 and rule.get("lr") in (task["lr"], pv.PAPER_LR[dataset]) and rule.get("p") == task["p"])
    if not same_task or (cfg.get("mode") != "fp" and rule.get("k") != 100):
        return None
    for setting, (ds, over) in SETTINGS.items():
        if ds == dataset and cfg.get("batch", 1) == over.get("batch", 1) and net.get("norm") == over.get("norm", task["norm"]):
            return setting, over.get("epochs", 10)
    return None


def run_accuracy_value(cfg: dict) -> PaperValue | None:
    """The paper's Fig. 5f accuracy for the setting and mode a run trains, with its caveats."""
    found = fig5f_setting(cfg)
    if found is None or cfg.get("mode") not in pv.FIG5F_VARIANTS:
        return None
    setting, epochs = found
    caveats = []
    lr, paper_lr = cfg.get("rule", {}).get("lr"), pv.PAPER_LR[cfg["dataset"]]
    if lr != paper_lr:
        caveats.append(f"this run trained at lr {lr:g}, the paper at {paper_lr:g} ({pv.PAPER_LR_SOURCE})")
    if cfg.get("epochs") is None:  # an older or foreign file: a match that cannot say how long it trained
        caveats.append(f"this run's results do not record its epochs, the paper trained {epochs:g}")
    elif cfg["epochs"] != epochs:
        caveats.append(f"this run trained {cfg['epochs']:g} epochs, the paper {epochs:g}")
    if cfg.get("test_limit"):
        caveats.append(f"evaluated on the first {cfg['test_limit']:,} test samples, the paper on all")
    preset, differences, unrecorded = preset_differences(cfg, setting)
    if differences:
        caveats.append(f"this run differs from the setting as 'ferristor reproduce --preset {preset}' trains it: "
                       + ", ".join(f"{path} = {_shown(ours)} (preset: {_shown(theirs)})" for path, ours, theirs in differences))
    if unrecorded:
        caveats.append(f"this run's results do not record {len(unrecorded)} of the preset's fields, not compared: "
                       + ", ".join(unrecorded[:5]) + (", …" if len(unrecorded) > 5 else ""))
    label = pv.FIG5F_SETTING_LABELS[setting].replace("\n", " ")
    return PaperValue(f"Fig. 5f, {label}, {pv.FIG5F_VARIANT_LABELS[cfg['mode']]}: test accuracy %",
                      pv.FIG5F[setting][cfg["mode"]], pv.FIG5F_SOURCE, caveats, preset, differences)


# Never listed as a difference from the preset: how and where a run executes (LOCAL_FIELDS), its chips
# (seeds: the paper averaged 5 runs) and when it evaluates (eval_every), which do not change what is
# trained; the ledger's counting rules, energies and ratings, which only cost what ran; and the fields
# the caveats above word themselves (epochs, test subset, lr against the paper's).
NOT_COMPARED = (*LOCAL_FIELDS, "seeds", "eval_every", "ledger", "epochs", "test_limit", "rule.lr")


def _unused(cfg: dict) -> tuple[str, ...]:
    """Config paths this run's own settings leave unread (so a value there computes nothing)."""
    out = unread_transfer_paths(cfg)
    if cfg.get("mode") == "fp":  # float weights: no transfer, no k
        out += ["rule.k", "rule.k_unit"]
    if cfg.get("batch", 1) == 1:  # one input per update: k's unit and a batch's reduction are one
        out += ["rule.k_unit", "rule.batch_reduction"]
    if cfg.get("dataset") != "ecg":
        out.append("ecg")
    if (cfg.get("network") or {}).get("norm") != "batch":  # else test batches only set memory and speed
        out.append("eval_batch")
    if not cfg.get("validation"):
        out.append("validation_seed")
    return tuple(out)


@lru_cache(maxsize=None)
def _preset_config(setting: str, mode: str, preset: str) -> str:
    """The resolved config (JSON) of ``ferristor reproduce``'s Fig. 5f trial of ``setting`` and ``mode``
    under ``preset``: what reproduce trains, legacy defaults filled in as a run's file is read."""
    trial = next(t for t in fig5f_trials([0], settings=(setting,), preset=PRESETS[preset]) if t["mode"] == mode)
    return json.dumps(with_legacy_defaults(trial["train_config"]))


def preset_differences(cfg: dict, setting: str) -> tuple[str, list[tuple[str, object, object]], list[str]]:
    """(preset, differences, unrecorded) of a run of Fig. 5f ``setting`` against the resolved config of
    the reproduce preset it differs least from: each (config path, this run's value, the preset's) of
    a field that changes what the run computes, and the preset's paths the run's config lacks."""
    ours = flatten(plain(with_legacy_defaults(cfg)))
    skip = NOT_COMPARED + _unused(cfg)
    best = None
    for name in PRESETS:
        theirs = flatten(json.loads(_preset_config(setting, cfg["mode"], name)))
        order = list(theirs) + [path for path in ours if path not in theirs]  # the config's own order
        diffs = [(path, ours[path], theirs.get(path)) for path in order
                 if path in ours and not under(path, skip) and ours[path] != theirs.get(path)]
        missing = [path for path in theirs if path not in ours and not under(path, skip)]
        if best is None or len(diffs) < len(best[1]):
            best = (name, diffs, missing)
    return best


def _shown(value) -> str:
    return "not set" if value is None else json.dumps(value) if isinstance(value, (list, dict, bool)) else str(value)


def trial_accuracy_value(params: dict) -> float | None:
    """The paper's accuracy (%) for a reproduce trial: Fig. 5f by setting and mode, Fig. 5c at its k."""
    setting, mode = params.get("setting"), params.get("mode")
    if params.get("figure") == "fig5c":
        ref = pv.FIG5C_REFERENCE
        return ref["accuracy"] if params.get("k") == ref["k"] and setting == "mnist-online" and mode == "hm" else None
    return pv.FIG5F.get(setting, {}).get(mode) if setting else None


def point_accuracy_value(params: dict, train_config: dict) -> tuple[float | None, list[str]]:
    """The paper's accuracy (%) beside a sweep point, and its caveats: a reproduce trial by its
    setting and mode (Fig. 5f) or its k (Fig. 5c); any other point (a plain ``ferristor sweep``) as a
    run of its resolved config, with each way it differs from the paper's setting (run_accuracy_value)."""
    if params.get("figure") or params.get("setting"):
        return trial_accuracy_value(params), []
    found = run_accuracy_value(train_config) if train_config else None
    return (found.paper, found.caveats) if found else (None, [])


def counting_reference(k: float, n_samples: float, p: float) -> dict:
    """The paper's per-device operation and energy counts (digest §5) at this k, N and p."""
    return pv.reference_point(k, n_samples, p)


COUNTING_SOURCE = f"{pv.FIG5DE_SOURCE}: memristor 2N/k, FeCAP 2pN + 4N/k per device, 1 pJ and 100 fJ per operation"
