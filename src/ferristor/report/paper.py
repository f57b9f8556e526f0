"""The paper's value beside ours: which Fig. 5 preset a run or trial matches, and what the paper says.

A run matches a Fig. 5f setting when it trains the same task the same way (dataset, network, batch,
normalisation, p, k = 100, and the paper's lr or the task preset's — ECG's 0.01 is not the paper's
0.3); epochs, a test subset or that lr may differ, and are then listed as caveats so a short run or
another operating point is never read as a reproduction. Operation counts and energies are compared with
the paper's counting formulas (digest §5) at the run's own number of samples.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..experiments import paper_values as pv
from ..experiments.config import TASKS
from ..experiments.reproduce import SETTINGS


@dataclass
class PaperValue:
    what: str
    paper: float
    source: str
    caveats: list[str] = field(default_factory=list)


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
    label = pv.FIG5F_SETTING_LABELS[setting].replace("\n", " ")
    return PaperValue(f"Fig. 5f, {label}, {pv.FIG5F_VARIANT_LABELS[cfg['mode']]}: test accuracy %",
                      pv.FIG5F[setting][cfg["mode"]], pv.FIG5F_SOURCE, caveats)


def trial_accuracy_value(params: dict) -> float | None:
    """The paper's accuracy (%) for a reproduce trial: Fig. 5f by setting and mode, Fig. 5c at its k."""
    setting, mode = params.get("setting"), params.get("mode")
    if params.get("figure") == "fig5c":
        ref = pv.FIG5C_REFERENCE
        return ref["accuracy"] if params.get("k") == ref["k"] and setting == "mnist-online" and mode == "hm" else None
    return pv.FIG5F.get(setting, {}).get(mode) if setting else None


def counting_reference(k: float, n_samples: float, p: float) -> dict:
    """The paper's per-device operation and energy counts (digest §5) at this k, N and p."""
    return pv.reference_point(k, n_samples, p)


COUNTING_SOURCE = f"{pv.FIG5DE_SOURCE}: memristor 2N/k, FeCAP 2pN + 4N/k per device, 1 pJ and 100 fJ per operation"
