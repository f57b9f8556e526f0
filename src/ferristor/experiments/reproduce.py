"""One-command reproduction of the paper's Fig. 5c–f on top of the resumable sweep runner.

A trial is one (setting, mode, k) with all its seeds as replicas of one tensor program; trials are
keyed by their configuration, so a rerun skips every finished point and resumes the rest.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..config_base import to_dict
from . import paper_values as pv
from .config import run_identity, task_config
from .sweep import make_executor, run_sweep, trial_key
from .train import train

# Fig. 5f settings → (dataset, overrides) (digest §4 table [P]).
SETTINGS: dict[str, tuple[str, dict]] = {
    "mnist-online": ("mnist", {}),
    "fashion-mnist-online": ("fashion-mnist", {}),
    "ecg-online": ("ecg", {}),
    # BatchNorm γ = 1, β = 0 in place of LayerNorm, batch 10, 100 epochs (digest §4 [P]).
    "mnist-minibatch": ("mnist", {"norm": "batch", "batch": 10, "epochs": 100}),
}
FIG5C_KS = (1, 2, 5, 10, 20, 50, 100, 200, 500)
FIG5C_MODE = "hm"  # 96.7 % at k = 100 is the HM w/o Var value (digest §6)
# Open choices of the hybrid rule a reproduction may change (they do not exist for fp, whose trials
# are therefore shared between variants).
HYBRID_OPTIONS = ("rounding", "level_means")


def _cfg(trial: dict, data_dir: str | None = None, threads: int = 1):
    dataset, over = SETTINGS[trial["setting"]]
    over = dict(over)
    epochs = over.pop("epochs", 10) * trial["epoch_scale"]
    over.update(trial.get("hybrid", {}))
    return task_config(dataset, trial["mode"], k=trial["k"], epochs=epochs, seeds=trial["seeds"],
                       eval_every=epochs, data_dir=data_dir, threads=threads, **over)


class TrialRunner:
    """Trains one trial and returns its point; picklable, so a process pool can run it too."""

    def __init__(self, out: Path, data_dir: str | None, threads: int, progress: bool):
        self.out, self.data_dir, self.threads, self.progress = Path(out), data_dir, threads, progress

    def __call__(self, trial: dict) -> dict:
        # Each trial checkpoints in its own folder, so an interrupted point resumes mid-way too.
        r = train(_cfg(trial, self.data_dir, self.threads), self.out / "checkpoints" / trial_key(trial),
                  progress=self.progress)
        point = {"accuracy": [100 * a for a in r["final_test_accuracy"]], "k": trial["k"],
                 "seconds": r["timing"]["train_seconds"], "samples_per_replica": r["samples_per_replica"]}
        if r["ledger"]:
            net = [rep["network"] for rep in r["ledger"]]
            mean = lambda *p: float(np.mean([_get(n, p) for n in net]))  # noqa: E731
            point.update({
                "fecap_ops_per_device": mean("fecap_ops", "mean_sign_msb_cell"),
                "fecap_ops_worst": mean("fecap_ops", "worst"),
                "memristor_ops_per_device": mean("memristor_ops", "mean"),
                "memristor_ops_worst": mean("memristor_ops", "worst"),
                "energy_fecap_nJ": mean("energy_nJ", "per_device_fecap"),
                "energy_memristor_nJ": mean("energy_nJ", "per_device_memristor"),
            })
        return point


def _run(trials: list[dict], out: Path, data_dir, threads: int, progress: bool, workers: int) -> list[dict]:
    """Run the trials not yet saved under ``out/trials``; with workers > 1, that many at once."""
    runner = TrialRunner(out, data_dir, threads, progress and workers == 1)  # one bar per trial only when serial
    return run_sweep(trials, runner, out / "trials", progress=progress, executor=make_executor(workers))


def _get(d: dict, path: tuple):
    for p in path:
        d = d[p]
    return d


def _keyed(trial: dict) -> dict:
    """A trial carries its fully resolved training config, so a changed default never reuses a stale point."""
    return {**trial, "train_config": run_identity(to_dict(_cfg(trial)))}


def _trial(figure: str, setting: str, mode: str, k: int, seeds: list[int], epoch_scale: float,
           hybrid: dict | None) -> dict:
    trial = {"figure": figure, "setting": setting, "mode": mode, "k": k, "seeds": seeds, "epoch_scale": epoch_scale}
    hybrid = {name: v for name, v in (hybrid or {}).items() if v is not None}
    for name in hybrid:
        if name not in HYBRID_OPTIONS:
            from ..errors import ConfigError
            raise ConfigError("hybrid option", name, "one of " + ", ".join(HYBRID_OPTIONS))
    if hybrid and mode != "fp":  # only present when set, so the default trials keep their keys
        trial["hybrid"] = hybrid
    return _keyed(trial)


def fig5f_trials(seeds: list[int], epoch_scale: float = 1.0, settings=tuple(SETTINGS),
                 hybrid: dict | None = None) -> list[dict]:
    return [_trial("fig5f", s, m, 100, seeds, epoch_scale, hybrid) for s in settings for m in pv.FIG5F_VARIANTS]


def k_trials(seeds: list[int], epoch_scale: float = 1.0, ks=FIG5C_KS, hybrid: dict | None = None) -> list[dict]:
    return [_trial("fig5c", "mnist-online", FIG5C_MODE, k, seeds, epoch_scale, hybrid) for k in ks]


def reproduce_fig5f(out: Path, seeds: list[int], epoch_scale: float = 1.0, settings=tuple(SETTINGS), *,
                    hybrid: dict | None = None, data_dir=None, threads=1, progress=True, workers=1) -> dict:
    """``hybrid`` sets open choices of the hybrid modes (``HYBRID_OPTIONS``), e.g. ``{"rounding": "nearest"}``."""
    trials = fig5f_trials(seeds, epoch_scale, settings, hybrid)
    results = _run(trials, out, data_dir, threads, progress, workers)
    table: dict[str, dict[str, list[float]]] = {}
    for t, r in zip(trials, results):
        table.setdefault(t["setting"], {})[t["mode"]] = r["accuracy"]
    from .plots import plot_fig5f
    plot_fig5f(table, pv.FIG5F, out / "fig5f.png")
    return table


def reproduce_k_sweep(out: Path, seeds: list[int], epoch_scale: float = 1.0, ks=FIG5C_KS, *,
                      hybrid: dict | None = None, data_dir=None, threads=1, progress=True, workers=1) -> list[dict]:
    trials = k_trials(seeds, epoch_scale, ks, hybrid)
    points = _run(trials, out, data_dir, threads, progress, workers)
    from .plots import plot_accuracy_vs_k, plot_energy_vs_k, plot_ops_vs_k
    plot_accuracy_vs_k(points, out / "fig5c.png")
    plot_ops_vs_k(points, out / "fig5d.png")
    plot_energy_vs_k(points, out / "fig5e.png")
    return points


def fig5f_table(table: dict) -> str:
    """Markdown: our mean ± std next to the paper's value, per setting and mode."""
    lines = ["| setting | " + " | ".join(pv.FIG5F_VARIANT_LABELS[m] for m in pv.FIG5F_VARIANTS) + " |",
             "|---|" + "---|" * len(pv.FIG5F_VARIANTS)]
    for s, row in table.items():
        cells = []
        for m in pv.FIG5F_VARIANTS:
            acc = np.asarray(row.get(m, []))
            ref = pv.FIG5F.get(s, {}).get(m)
            ours = f"{acc.mean():.2f} ± {acc.std(ddof=1) if acc.size > 1 else 0:.2f}" if acc.size else "–"
            cells.append(f"{ours} (paper {ref})" if ref is not None else ours)
        lines.append(f"| {pv.FIG5F_SETTING_LABELS.get(s, s).replace(chr(10), ' ')} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def k_table(points: list[dict]) -> str:
    lines = ["| k | accuracy % (mean, min–max) | FeCAP ops/device | memristor ops/device | energy/device nJ (FeCAP + memristor) |",
             "|---|---|---|---|---|"]
    for p in sorted(points, key=lambda p: p["k"]):
        a = np.asarray(p["accuracy"])
        lines.append(f"| {p['k']} | {a.mean():.2f} ({a.min():.2f}–{a.max():.2f}) | {p.get('fecap_ops_per_device', 0):,.0f} | "
                     f"{p.get('memristor_ops_per_device', 0):,.0f} | {p.get('energy_fecap_nJ', 0):.2f} + {p.get('energy_memristor_nJ', 0):.2f} |")
    return "\n".join(lines)
