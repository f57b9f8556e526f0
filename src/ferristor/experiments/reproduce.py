"""One-command reproduction of the paper's Fig. 5c–f: predefined sweeps on the sweep engine
(``ferristor.sweeps``), with the same store, resume, retries and lock as ``ferristor sweep``.

A trial is one (setting, mode, k) with all its seeds as replicas of one tensor program; trials are
keyed by their resolved configuration and data, so a rerun skips every finished point and resumes
the rest from its latest checkpoint (kept in ``OUT/<figure>/sweep.sqlite``).
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..config_base import to_dict
from . import paper_values as pv
from .config import run_identity, task_config
from .presets import PRESETS, Preset

# Fig. 5f settings → (dataset, overrides) (digest §4 table [P]).
SETTINGS: dict[str, tuple[str, dict]] = {
    "mnist-online": ("mnist", {}),
    "fashion-mnist-online": ("fashion-mnist", {}),
    "ecg-online": ("ecg", {}),
    # BatchNorm γ = 1, β = 0 in place of LayerNorm, batch 10, 100 epochs (digest §4 [P]).
    "mnist-minibatch": ("mnist", {"norm": "batch", "batch": 10, "epochs": 100}),
}
FIG5C_KS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 600)  # the paper sweeps k from 1 to ≈600 on MNIST (digest §4)
FIG5C_MODE = "hm"  # 96.7 % at k = 100 is the HM w/o Var value (digest §6)
DEFAULT_PRESET = "paper"  # the README's headline table; 'stochastic' is the library's defaults


def _cfg(trial: dict, data_dir: str | None = None, threads: int = 1, device: str = "cpu"):
    dataset, over = SETTINGS[trial["setting"]]
    over = dict(over)
    epochs = over.pop("epochs", 10) * trial["epoch_scale"]
    over.update(trial.get("options", {}))
    return task_config(dataset, trial["mode"], k=trial["k"], epochs=epochs, seeds=trial["seeds"],
                       eval_every=epochs, data_dir=data_dir, threads=threads, device=device, **over)


def point_of(results: dict, k: int) -> dict:
    """A figure's point from a trial's training results: accuracy in % per seed, k, time, counts."""
    # null: a seed that recorded no accuracy (a strict writer's nan): nan, shown n/a, not a TypeError
    # that had left the whole trial out (and its point looking complete)
    point = {"accuracy": [math.nan if a is None else 100 * a for a in results["final_test_accuracy"]], "k": k,
             "seconds": results["timing"]["train_seconds"], "samples_per_replica": results["samples_per_replica"]}
    if results["ledger"]:
        net = [rep["network"] for rep in results["ledger"]]
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


def _run(trials: list[dict], out: Path, data_dir, threads: int, progress: bool, workers: int,
         device: str = "cpu") -> list[dict]:
    """Run the trials not yet in ``out``'s results store, as a sweep on the sweep engine (one trial:
    one (setting, mode, k) with its seeds as replicas); return their points in order."""
    from ..sweeps.driver import run_sweep
    from ..sweeps.executors import make_executor, share_a_gpu
    from ..sweeps.configs import canonical
    from ..sweeps.provenance import data_key, load_datasets
    from ..sweeps.store import open_store
    from ..sweeps.trials import trial_of_config

    configs = [_cfg(t, data_dir, threads, device) for t in trials]
    data, prints = load_datasets(sorted({data_key(canonical(c)) for c in configs}), data_dir)
    labels = [{k: v for k, v in t.items() if k != "train_config"} for t in trials]
    keyed = [trial_of_config(lab, c, prints) for lab, c in zip(labels, configs)]
    unique = list({t.key: t for t in keyed}.values())  # the fp point shared by variants runs once
    on_gpu = share_a_gpu([device], workers)
    outcome = run_sweep(unique, out, data, executor=make_executor(workers, in_process=workers == 1, threads=on_gpu),
                        progress=progress, name=out.name)
    if outcome.count("failed"):
        from ..errors import FerristorError
        failed = [t for t in unique if outcome.status[t.key] == "failed"]
        raise FerristorError(f"{len(failed)} trial(s) of {out} failed: " + "; ".join(
            f"{t.params} ({(outcome.errors[t.key] or '').strip().splitlines()[0]})" for t in failed))
    store = open_store(out, readonly=True)
    try:
        done = {t["key"]: t["result"] for t in store.trials("done")}
    finally:
        store.close()
    unreadable = [t for t in unique if t.key not in done]  # done, but its row left out as damaged (store.trials)
    if unreadable:
        from ..errors import DataError
        raise DataError(f"{out / 'sweep.sqlite'}: the result of {len(unreadable)} finished trial(s) cannot be read "
                        f"(a damaged row): {'; '.join(str(t.params) for t in unreadable[:3])}; rerun with --fresh "
                        "to train them again: it discards this figure's whole store and retrains every trial "
                        "of it, not only the damaged ones")
    return [point_of(done[t.key], trial["k"]) for t, trial in zip(keyed, trials)]


def _get(d: dict, path: tuple):
    for p in path:
        d = d[p]
    return d


def _keyed(trial: dict) -> dict:
    """A trial carries its fully resolved training config, so a changed default never reuses a stale point."""
    return {**trial, "train_config": run_identity(to_dict(_cfg(trial)))}


def _trial(figure: str, setting: str, mode: str, k: int, seeds: list[int], epoch_scale: float,
           preset: Preset, options: dict | None) -> dict:
    """One point; ``options`` (None values: unset) override the preset's. A mode's trial carries only
    the options that reach it, so the fp point is shared by presets that differ in hybrid options."""
    trial = {"figure": figure, "setting": setting, "mode": mode, "k": k, "seeds": seeds, "epoch_scale": epoch_scale}
    chosen = preset.options(mode, setting, **(options or {}))
    if chosen:  # only present when set, so the default trials keep their keys
        trial["options"] = chosen
    return _keyed(trial)


def fig5f_trials(seeds: list[int], epoch_scale: float = 1.0, settings=tuple(SETTINGS),
                 options: dict | None = None, preset: Preset = PRESETS[DEFAULT_PRESET]) -> list[dict]:
    return [_trial("fig5f", s, m, 100, seeds, epoch_scale, preset, options)
            for s in settings for m in pv.FIG5F_VARIANTS]


def k_trials(seeds: list[int], epoch_scale: float = 1.0, ks=FIG5C_KS, options: dict | None = None,
             preset: Preset = PRESETS[DEFAULT_PRESET]) -> list[dict]:
    return [_trial("fig5c", "mnist-online", FIG5C_MODE, k, seeds, epoch_scale, preset, options) for k in ks]


def reproduce_fig5f(out: Path, seeds: list[int], epoch_scale: float = 1.0, settings=tuple(SETTINGS), *,
                    options: dict | None = None, preset: Preset = PRESETS[DEFAULT_PRESET], data_dir=None,
                    threads=1, progress=True, workers=1, device="cpu") -> dict:
    """``preset`` fixes the open choices (``presets``); ``options`` override its values, e.g.
    ``{"rounding": "stochastic"}``."""
    trials = fig5f_trials(seeds, epoch_scale, settings, options, preset)
    results = _run(trials, out, data_dir, threads, progress, workers, device)
    table: dict[str, dict[str, list[float]]] = {}
    for t, r in zip(trials, results):
        table.setdefault(t["setting"], {})[t["mode"]] = r["accuracy"]
    from .plots import plot_fig5f
    plot_fig5f(table, pv.FIG5F, out / "fig5f.png")
    return table


def reproduce_k_sweep(out: Path, seeds: list[int], epoch_scale: float = 1.0, ks=FIG5C_KS, *,
                      options: dict | None = None, preset: Preset = PRESETS[DEFAULT_PRESET], data_dir=None,
                      threads=1, progress=True, workers=1, device="cpu") -> list[dict]:
    trials = k_trials(seeds, epoch_scale, ks, options, preset)
    points = _run(trials, out, data_dir, threads, progress, workers, device)
    from .plots import plot_accuracy_vs_k, plot_energy_vs_k, plot_ops_vs_k
    plot_accuracy_vs_k(points, out / "fig5c.png")
    plot_ops_vs_k(points, out / "fig5d.png")
    plot_energy_vs_k(points, out / "fig5e.png")
    return points


# Issue "one preset that explains the paper": a cell agrees when within this of the paper's value,
# or within two standard errors of our seed mean.
AGREE_PP = 0.5
AGREE_SEM = 2.0


def agreement(acc, ref: float) -> dict:
    """Our seeds' mean against the paper's value: Δ (pp), s.e.m., and whether |Δ| ≤ AGREE_PP or
    |Δ| ≤ AGREE_SEM · s.e.m. One seed has no standard error (None, not 0.0): its verdict is the
    AGREE_PP rule's alone."""
    acc = np.asarray(acc, dtype=np.float64)
    mean = float(acc.mean())
    sem = float(acc.std(ddof=1) / np.sqrt(acc.size)) if acc.size > 1 else None
    delta = mean - float(ref)
    return {"mean": mean, "sem": sem, "delta": delta,
            "agrees": abs(delta) <= AGREE_PP + 1e-9 or (sem is not None and abs(delta) <= AGREE_SEM * sem)}


def fig5f_table(table: dict) -> str:
    """Markdown: our mean ± std next to the paper's value, per setting and mode, with Δ and ✓ where
    the cell agrees (``agreement``) or ✗ where it does not. A cell of one seed has no std or
    standard error: n/a, and its ✓/✗ is the 0.5 pp rule's alone (said under the table)."""
    single = False
    lines = ["| setting | " + " | ".join(pv.FIG5F_VARIANT_LABELS[m] for m in pv.FIG5F_VARIANTS) + " |",
             "|---|" + "---|" * len(pv.FIG5F_VARIANTS)]
    for s, row in table.items():
        cells = []
        for m in pv.FIG5F_VARIANTS:
            acc, ours = _recorded(row.get(m, []))
            ref = pv.FIG5F.get(s, {}).get(m)
            std = f"{acc.std(ddof=1):.2f}" if acc.size > 1 else "n/a"  # one seed: no spread, not a measured 0
            ours = f"{acc.mean():.2f} ± {std}{ours}" if acc.size else "–" if not ours else f"n/a{ours}"
            if ref is not None and acc.size:
                a = agreement(acc, ref)
                mark = "✓" if a["agrees"] else "✗"
                sem = f"{a['sem']:.2f}" if a["sem"] is not None else "n/a"
                single |= a["sem"] is None
                cells.append(f"{ours} (paper {ref}, Δ {a['delta']:+.2f}, s.e. {sem} {mark})")
            else:
                cells.append(f"{ours} (paper {ref})" if ref is not None else ours)
        lines.append(f"| {pv.FIG5F_SETTING_LABELS.get(s, s).replace(chr(10), ' ')} | " + " | ".join(cells) + " |")
    lines.append(f"\n✓: within {AGREE_PP} pp of the paper or within {AGREE_SEM:g} standard errors of our mean"
                 + (f"; with one seed (no standard error: n/a), within {AGREE_PP} pp only." if single else "."))
    return "\n".join(lines)


def _recorded(values) -> tuple[np.ndarray, str]:
    """The seeds' accuracies that were recorded (a null one is nan: a damaged or hand-edited store),
    and, where some were not, what to say of it (' (2 of 3 seeds)'): a nan must not make the cell's
    mean, spread and verdict nan."""
    acc = np.asarray(values, dtype=np.float64)
    kept = acc[~np.isnan(acc)]
    return kept, "" if kept.size == acc.size else f" ({kept.size} of {acc.size} seeds)"


def k_table(points: list[dict]) -> str:
    lines = ["| k | accuracy % (mean, min–max) | FeCAP ops/device | memristor ops/device | energy/device nJ (FeCAP + memristor) |",
             "|---|---|---|---|---|"]
    for p in sorted(points, key=lambda p: p["k"]):
        a, note = _recorded(p["accuracy"])
        acc = f"{a.mean():.2f} ({a.min():.2f}–{a.max():.2f}){note}" if a.size else f"n/a{note}"
        lines.append(f"| {p['k']} | {acc} | {p.get('fecap_ops_per_device', 0):,.0f} | "
                     f"{p.get('memristor_ops_per_device', 0):,.0f} | {p.get('energy_fecap_nJ', 0):.2f} + {p.get('energy_memristor_nJ', 0):.2f} |")
    return "\n".join(lines)
