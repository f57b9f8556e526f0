"""Bar plot in the style of the paper's Fig. 6c: per source→target pair, the heads' mean accuracy
(bars), each run (dots), the std (error bars); the paper's gap range shaded under FP offline. The
axis and title say the run's own folds and backbone bits (``run_words``), not the paper's."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from ..atomic import atomic_write
from .paper import FIG6_GAP_IMAGENET_PP, FIG6_SOURCE

LABELS = {"fp-offline": "FP offline", "lsq-offline": "4-bit offline (LSQ)", "hm-var": "HM online w/ Var",
          "hm": "HM online w/o Var", "fp-online": "FP online (batch 1)"}
COLORS = {"fp-offline": "#4c72b0", "lsq-offline": "#8172b3", "hm-var": "#55a868", "hm": "#dd8452",
          "fp-online": "#937860"}


def plot_fig6(pairs: dict[str, dict], path: str | os.PathLike, title: str = "") -> Path:
    """``pairs``: {pair label: protocol result (``run_protocol``'s dict)}."""
    names = list(pairs)
    heads = [h for h in LABELS if any(h in pairs[p]["heads"] for p in names)]
    fig = Figure(figsize=(2.8 * max(1, len(names)) + 2.5, 4.2))
    ax = fig.add_subplot()
    width = 0.8 / max(1, len(heads))
    rng = np.random.default_rng(0)
    lows, shade_label = [], f"paper's gap below FP, {FIG6_GAP_IMAGENET_PP[0]}–{FIG6_GAP_IMAGENET_PP[1]} pp"
    for i, name in enumerate(names):
        res = pairs[name]["heads"]
        if "fp-offline" in res:
            top = res["fp-offline"]["mean"]
            ax.add_patch(_band(i - 0.45, 0.9, top - FIG6_GAP_IMAGENET_PP[1], top - FIG6_GAP_IMAGENET_PP[0], shade_label))
            shade_label = None
        for j, head in enumerate(heads):
            if head not in res:
                continue
            x = i + (j - (len(heads) - 1) / 2) * width
            acc = np.asarray(res[head]["accuracy"], float)
            ax.bar(x, acc.mean(), width * 0.9, color=COLORS[head], alpha=0.8, label=LABELS[head] if i == 0 else None,
                   yerr=acc.std(ddof=1) if len(acc) > 1 else None, capsize=2)
            ax.scatter(x + rng.uniform(-width / 5, width / 5, acc.size), acc, s=6, color="k", zorder=3)
            lows.append(acc.min())
    ax.set_xticks(range(len(names)), [n.replace("->", "→\n") for n in names], fontsize=8)
    folds, backbone = run_words(pairs)
    ax.set_ylabel(f"test accuracy (%), {folds} CV" if folds else "test accuracy (%)")
    if lows:
        ax.set_ylim(max(0.0, np.floor(min(lows)) - 5), 100)
    ax.set_title(title or f"Fig. 6c in kind: transfer learning, frozen {backbone} ({FIG6_SOURCE})", fontsize=9)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.grid(axis="y", alpha=0.3)
    path = Path(path)
    with atomic_write(path) as f:
        fig.savefig(f, format="png", dpi=150, bbox_inches="tight")
    return path


def run_words(pairs: dict[str, dict]) -> tuple[str, str]:
    """('3-fold', 'float backbone'): the cross-validation and the backbone of the runs plotted, read
    from each pair's results (its runs, its backbone's bits), so a plot never states the paper's
    10 folds and 4 bits for a run of others. Pairs that differ are all named ('3/10-fold'); no head:
    no folds (''); a bare ``run_protocol`` result has no backbone record: then 'backbone' alone."""
    folds = sorted({len(next(iter(r["heads"].values()))["accuracy"]) for r in pairs.values() if r["heads"]})
    bits = sorted({r["backbone"]["bits"] for r in pairs.values() if "bits" in r.get("backbone", {})})
    fold_words = "/".join(map(str, folds)) + "-fold" if folds else ""
    if not bits:
        return fold_words, "backbone"
    return fold_words, "/".join("float" if b == 0 else f"{b}-bit" for b in bits) + " backbone"


def _band(x, w, lo, hi, label):
    from matplotlib.patches import Rectangle
    return Rectangle((x, lo), w, hi - lo, color="grey", alpha=0.15, lw=0, label=label)
