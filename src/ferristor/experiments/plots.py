"""Figures of the benchmark suite, drawn like the paper's Fig. 5c–f, with its values overlaid.

Input formats (plain dicts, so sweep results feed them directly):

* Fig. 5f ``results``: ``{setting: {variant: [accuracy % per seed, ...]}}`` with settings from
  ``paper_values.FIG5F_SETTINGS`` and variants ``"fp"``, ``"hm"``, ``"hm-var"``; missing entries
  are left out of the plot. ``paper`` has the same shape with one float per variant
  (``paper_values.FIG5F``); ``None`` draws no paper markers.
* A *k point* (Fig. 5c–e)::

      {"k": int,                           # transfer period, samples per transfer
       "accuracy": [float, ...],           # test accuracy % per seed        (Fig. 5c)
       "fecap_ops_per_device": float,      # operations per FeCAP over training (Fig. 5d)
       "memristor_ops_per_device": float,  # operations per memristor           (Fig. 5d)
       "energy_fecap_nJ": float,           # energy per device, FeCAP part      (Fig. 5e)
       "energy_memristor_nJ": float}       # energy per device, memristor part  (Fig. 5e)

  Each function reads only the keys it plots.

Figures are built on ``matplotlib.figure.Figure`` (Agg, no pyplot state) and written atomically.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from ..atomic import atomic_write
from . import paper_values as pv

_VARIANT_COLORS = {"fp": "#4c72b0", "hm": "#dd8452", "hm-var": "#55a868"}
_FECAP_COLOR, _MEM_COLOR = "#4c72b0", "#c44e52"


def _save(fig: Figure, path: str | os.PathLike) -> Path:
    path = Path(path)
    with atomic_write(path) as f:
        fig.savefig(f, format="png", dpi=150, bbox_inches="tight")
    return path


def _by_k(points: Sequence[Mapping]) -> list[Mapping]:
    return sorted(points, key=lambda p: p["k"])


def plot_fig5f(results: Mapping[str, Mapping[str, Sequence[float]]],
               paper: Mapping[str, Mapping[str, float]] | None, path: str | os.PathLike) -> Path:
    """Bars = mean over seeds, dots = single seeds, black diamonds = the paper's value (Fig. 5f)."""
    settings = [s for s in pv.FIG5F_SETTINGS if s in results] + [s for s in results if s not in pv.FIG5F_SETTINGS]
    fig = Figure(figsize=(2.4 * max(len(settings), 1) + 1.5, 4.2))
    ax = fig.add_subplot()
    width = 0.8 / len(pv.FIG5F_VARIANTS)
    rng = np.random.default_rng(0)  # fixed jitter: the same data always gives the same picture
    lows, paper_label = [], "paper"
    for j, variant in enumerate(pv.FIG5F_VARIANTS):
        label = pv.FIG5F_VARIANT_LABELS[variant]
        for i, setting in enumerate(settings):
            x = i + (j - (len(pv.FIG5F_VARIANTS) - 1) / 2) * width
            seeds = np.asarray(results[setting].get(variant, []), dtype=float)
            if seeds.size:
                ax.bar(x, seeds.mean(), width * 0.9, color=_VARIANT_COLORS[variant], alpha=0.75, label=label)
                ax.scatter(x + rng.uniform(-width / 5, width / 5, seeds.size), seeds, s=10, color="k", zorder=3)
                lows.append(seeds.min())
                label = None  # one legend entry per variant
            ref = (paper or {}).get(setting, {}).get(variant)
            if ref is not None:
                ax.scatter(x, ref, marker="D", s=28, facecolor="white", edgecolor="k", zorder=4, label=paper_label)
                lows.append(ref)
                paper_label = None
    ax.set_xticks(range(len(settings)), [pv.FIG5F_SETTING_LABELS.get(s, s) for s in settings], fontsize=8)
    ax.set_ylabel("test accuracy (%)")
    # Accuracies cluster near the top: start the axis just under the lowest value shown.
    if lows:
        ax.set_ylim(max(0.0, np.floor(min(lows)) - 3), 100)
    ax.set_title("Fig. 5f: FP vs hybrid memory (paper: " + pv.FIG5F_SOURCE.split(";")[0] + ")", fontsize=9)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))  # outside: bars fill the axes
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def plot_accuracy_vs_k(points: Sequence[Mapping], path: str | os.PathLike, reference: bool = True) -> Path:
    """Dots = seeds, line = mean, band = min–max over seeds, against k on a log axis (Fig. 5c)."""
    pts = _by_k(points)
    k = np.array([p["k"] for p in pts], dtype=float)
    accs = [np.asarray(p["accuracy"], dtype=float) for p in pts]
    fig = Figure(figsize=(5.5, 3.8))
    ax = fig.add_subplot()
    for kk, a in zip(k, accs):
        ax.scatter(np.full(a.size, kk), a, s=9, color="0.4", alpha=0.7, zorder=2)
    ax.fill_between(k, [a.min() for a in accs], [a.max() for a in accs], color=_FECAP_COLOR, alpha=0.2, label="min–max")
    ax.plot(k, [a.mean() for a in accs], "o-", color=_FECAP_COLOR, ms=4, label="mean over seeds")
    if reference:
        ref = pv.FIG5C_REFERENCE
        ax.scatter(ref["k"], ref["accuracy"], marker="D", s=30, facecolor="white", edgecolor="k", zorder=4,
                   label=f"paper: {ref['accuracy']} % at k = {ref['k']}")
    ax.set_xscale("log")
    ax.set_xlabel("transfer period k (samples)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("Fig. 5c: accuracy vs k", fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def plot_ops_vs_k(points: Sequence[Mapping], path: str | os.PathLike, reference: bool = True) -> Path:
    """Programming operations per device vs k, log–log, with both endurance limits (Fig. 5d)."""
    pts = _by_k(points)
    k = np.array([p["k"] for p in pts], dtype=float)
    fig = Figure(figsize=(5.5, 3.8))
    ax = fig.add_subplot()
    ax.plot(k, [p["fecap_ops_per_device"] for p in pts], "o-", color=_FECAP_COLOR, ms=4, label="FeCAP")
    ax.plot(k, [p["memristor_ops_per_device"] for p in pts], "s-", color=_MEM_COLOR, ms=4, label="memristor")
    if reference:
        # The paper's counting for the number of samples these points trained on (a quick look
        # trains fewer than the paper's 600,000).
        n = int(pts[0].get("samples_per_replica", pv.MNIST_TRAINING_SAMPLES))
        kk = np.geomspace(k.min(), k.max(), 50)
        ax.plot(kk, [pv.fecap_ops_per_device(x, n) for x in kk], ":", color=_FECAP_COLOR, lw=1,
                label=f"paper counting, FeCAP (N = {n:,})")
        ax.plot(kk, [pv.memristor_ops_per_device(x, n) for x in kk], ":", color=_MEM_COLOR, lw=1,
                label=f"paper counting, memristor (N = {n:,})")
    ax.axhline(pv.FECAP_ENDURANCE_OPS, color=_FECAP_COLOR, ls="--", lw=1)
    ax.axhline(pv.MEMRISTOR_ENDURANCE_OPS, color=_MEM_COLOR, ls="--", lw=1)
    ax.text(k.min(), pv.FECAP_ENDURANCE_OPS * 1.15, "FeCAP endurance (1e7 cycles = 2e7 ops)", fontsize=7, color=_FECAP_COLOR)
    ax.text(k.min(), pv.MEMRISTOR_ENDURANCE_OPS * 1.15, "memristor endurance (1e5 cycles = 2e5 ops)", fontsize=7, color=_MEM_COLOR)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_ylim(top=pv.FECAP_ENDURANCE_OPS * 5)
    ax.set_xlabel("transfer period k (samples)")
    ax.set_ylabel("operations per device")
    ax.set_title("Fig. 5d: programming operations vs k", fontsize=9)
    ax.legend(fontsize=7, loc="lower left")
    ax.grid(alpha=0.3)
    return _save(fig, path)


def plot_energy_vs_k(points: Sequence[Mapping], path: str | os.PathLike, reference: bool = True) -> Path:
    """Energy per device vs k split into its FeCAP and memristor parts, plus their sum (Fig. 5e)."""
    pts = _by_k(points)
    k = np.array([p["k"] for p in pts], dtype=float)
    fecap = np.array([p["energy_fecap_nJ"] for p in pts], dtype=float)
    mem = np.array([p["energy_memristor_nJ"] for p in pts], dtype=float)
    fig = Figure(figsize=(5.5, 3.8))
    ax = fig.add_subplot()
    ax.plot(k, fecap, "o-", color=_FECAP_COLOR, ms=4, label="FeCAP")
    ax.plot(k, mem, "s-", color=_MEM_COLOR, ms=4, label="memristor")
    ax.plot(k, fecap + mem, "^-", color="k", ms=4, label="total")
    n = int(pts[0].get("samples_per_replica", pv.MNIST_TRAINING_SAMPLES))
    if reference and n == pv.MNIST_TRAINING_SAMPLES:
        ref = pv.FIG5E_REFERENCE
        ax.scatter(ref["k"], ref["energy_total_nJ"], marker="D", s=30, facecolor="white", edgecolor="k", zorder=4,
                   label=f"paper: {ref['energy_total_nJ']} nJ at k = {ref['k']}")
    elif reference:
        ref = pv.reference_point(pv.FIG5E_REFERENCE["k"], n)
        ax.scatter(ref["k"], ref["energy_fecap_nJ"] + ref["energy_memristor_nJ"], marker="D", s=30, facecolor="white",
                   edgecolor="k", zorder=4, label=f"paper counting at k = {ref['k']}, N = {n:,}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("transfer period k (samples)")
    ax.set_ylabel("energy per device (nJ)")
    ax.set_title("Fig. 5e: programming energy vs k", fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _save(fig, path)
