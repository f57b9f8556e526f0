"""Static copies of the report's figures, SVG and PNG, for papers: the same :class:`Figure`
descriptions drawn with matplotlib (the ``plot`` extra)."""
from __future__ import annotations

import math
from pathlib import Path

from ..atomic import atomic_write
from .figures import PALETTE, Figure

_MARKERS = {"circle": "o", "diamond": "D", "diamond-open": "D", "square": "s", "x": "x", "triangle-up": "^"}


def _finite(xs, ys, errs=None):
    keep = [i for i, y in enumerate(ys) if isinstance(y, (int, float)) and math.isfinite(y)]
    return [xs[i] for i in keep], [ys[i] for i in keep], (None if errs is None else [errs[i] or 0 for i in keep])


def draw(fig: Figure):
    try:
        from matplotlib.figure import Figure as MplFigure
    except ImportError:
        from ..errors import FerristorError
        raise FerristorError("static figures are drawn with matplotlib: pip install 'ferristor[plot]'") from None
    mfig = MplFigure(figsize=(6.4, 3.8))
    ax = mfig.add_subplot()
    cats: list = []
    if fig.categorical_x:  # categories keep their order of first appearance, as in the page
        for t in fig.traces:
            cats += [str(x) for x in t.x if str(x) not in cats]
    bars = [t for t in fig.traces if t.kind == "bar"]
    for i, t in enumerate(fig.traces):
        color = t.color or PALETTE[i % len(PALETTE)]
        xs, ys, errs = _finite(list(t.x), list(t.y), t.error)
        if fig.categorical_x:
            xs = [cats.index(str(x)) for x in xs]
        if t.kind == "bar" and t.width is not None:  # a histogram: bars as wide as their bins
            keep = [i for i, y in enumerate(t.y) if isinstance(y, (int, float)) and math.isfinite(y)]
            ax.bar(xs, ys, [t.width[i] for i in keep], color=color, alpha=t.opacity, label=t.name, align="center")
            continue
        if t.kind == "bar":
            j, width = bars.index(t), 0.8 / len(bars)
            ax.bar([x + (j - (len(bars) - 1) / 2) * width for x in xs], ys, width * 0.95, yerr=errs, color=color,
                   alpha=t.opacity, label=t.name)
            continue
        marker = _MARKERS.get(t.symbol, "o")
        face = "white" if t.symbol.endswith("-open") else color
        # the line style in ls alone: a fmt with "-" and ls="--" both made matplotlib warn (redundant linestyle)
        ax.errorbar(xs, ys, yerr=errs, fmt=marker, color=color, mfc=face, ms=t.size * 0.8,
                    ls=("--" if t.dash else "-") if t.kind == "line" else "none", alpha=t.opacity, label=t.name,
                    capsize=3 if errs else 0)
    if fig.categorical_x:
        ax.set_xticks(range(len(cats)), cats, fontsize=8)
    ax.set_xscale("log" if fig.x_log else "linear")
    ax.set_yscale("log" if fig.y_log else "linear")
    ax.set_title(fig.title, fontsize=10)
    ax.set_xlabel(fig.x_title)
    ax.set_ylabel(fig.y_title)
    ax.grid(alpha=0.3)
    if fig.traces:
        ax.legend(fontsize=7, loc="best")
    return mfig


def write_static(figures: list[Figure], folder: str | Path) -> list[Path]:
    """``<id>.svg`` and ``<id>.png`` for each figure; returns the paths written."""
    folder = Path(folder)
    written = []
    for fig in figures:
        mfig = draw(fig)
        for ext in ("svg", "png"):
            path = folder / f"{fig.id}.{ext}"
            with atomic_write(path) as f:
                mfig.savefig(f, format=ext, dpi=150, bbox_inches="tight")
            written.append(path)
    return written
