"""Figures as plain data (:class:`Figure`), drawn by two back-ends from the same description:
interactive Plotly in the HTML page (here) and static SVG/PNG for papers (``static.py``).

Why Plotly: it is maintained (releases every few weeks, MIT), its wheel carries plotly.js, so a
page embeds the library once and opens with no network; hover values, zoom, pan and a per-plot
SVG download come built in; and figures are JSON, so the page is plain text we can test.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

PALETTE = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3", "#8c8c8c", "#ccb974", "#64b5cd")
PLOT_CONFIG = {"displaylogo": False, "responsive": True,
               # the camera button saves an SVG: a vector figure for a paper, straight from the page
               "toImageButtonOptions": {"format": "svg", "scale": 1}}


@dataclass
class Trace:
    name: str
    x: list
    y: list
    kind: str = "line"  # "line" (lines + markers), "markers" or "bar"
    error: list | None = None  # symmetric error bars (e.g. std over seeds)
    color: str | None = None
    symbol: str = "circle"  # e.g. "diamond-open" for the paper's values
    dash: bool = False
    size: int = 7
    opacity: float = 1.0
    hover: list[str] | None = None  # extra text per point
    group: str | None = None  # on a categorical axis, traces of one group sit side by side with other groups
    width: list[float] | None = None  # a bar's width in x units (a histogram's bins), centred on its x


@dataclass
class Figure:
    id: str  # the page's element id; tests look plots up by it
    title: str
    x_title: str
    y_title: str
    traces: list[Trace] = field(default_factory=list)
    x_log: bool = False
    y_log: bool = False
    categorical_x: bool = False
    note: str = ""  # caption under the plot: what is measured, what is projected
    data_attrs: dict[str, str] = field(default_factory=dict)  # extra attributes on the plot's element (for scripts)
    barmode: str = "group"  # "overlay": bars of several traces drawn over each other (histograms sharing bins)


def _clean(values: list) -> list:
    """JSON has no inf/nan: plotly skips None."""
    return [None if isinstance(v, float) and not math.isfinite(v) else v for v in values]


def _plotly_trace(t: Trace, i: int) -> dict:
    color = t.color or PALETTE[i % len(PALETTE)]
    d: dict = {"name": t.name, "x": _clean(list(t.x)), "y": _clean(list(t.y)), "opacity": t.opacity}
    if t.kind == "bar":
        d.update(type="bar", marker={"color": color, "line": {"width": 0}})
        if t.width is not None:
            d["width"] = list(t.width)
    else:
        d.update(type="scatter", mode="lines+markers" if t.kind == "line" else "markers",
                 marker={"color": color, "symbol": t.symbol, "size": t.size},
                 line={"color": color, "dash": "dash" if t.dash else "solid"})
    if t.error is not None:
        d["error_y"] = {"type": "data", "array": _clean(list(t.error)), "visible": True}
    if t.group is not None:
        d["offsetgroup"] = t.group
    if t.hover is not None:
        d["text"] = t.hover
        d["hovertemplate"] = "%{x}: %{y}<br>%{text}<extra>%{fullData.name}</extra>"
    return d


def plotly_json(fig: Figure) -> tuple[list[dict], dict]:
    """(data, layout) for ``Plotly.newPlot``."""
    axis = lambda title, log: {"title": {"text": title}, "type": "log" if log else "-", "zeroline": False,  # noqa: E731
                               "gridcolor": "#e5e5e5", "automargin": True}
    x_axis = axis(fig.x_title, fig.x_log)
    if fig.categorical_x:
        x_axis["type"] = "category"
    # title on the left: the mode bar (top right) would cover a centred one on a narrow plot
    layout = {"title": {"text": fig.title, "font": {"size": 15}, "x": 0.01, "xanchor": "left"}, "xaxis": x_axis, "yaxis": axis(fig.y_title, fig.y_log),
              "barmode": fig.barmode, "height": 380, "margin": {"l": 60, "r": 20, "t": 50, "b": 50},
              "legend": {"font": {"size": 11}}, "plot_bgcolor": "white", "hovermode": "closest"}
    ys = [y for t in fig.traces for y in t.y if isinstance(y, (int, float)) and math.isfinite(y) and y > 0]
    if fig.y_log and ys and any(t.kind == "bar" for t in fig.traces):
        # bars on a log axis start at its bottom: put it at a power of ten below the lowest bar, not just under it
        layout["yaxis"]["range"] = [math.floor(math.log10(min(ys))), math.log10(max(ys)) + 0.15]
    if fig.categorical_x:
        layout["scattermode"] = "group"  # markers of each offsetgroup dodge, like grouped bars
    return [_plotly_trace(t, i) for i, t in enumerate(fig.traces)], layout


def plotly_script() -> str:
    """plotly.js as shipped in the plotly wheel (≈4.7 MB), to inline once per page."""
    try:
        from plotly.offline import get_plotlyjs
    except ImportError:
        from ..errors import FerristorError
        raise FerristorError("ferristor report draws its plots with plotly: pip install 'ferristor[report]'") from None
    return get_plotlyjs()


def figure_html(fig: Figure) -> str:
    """A div and the script that draws ``fig`` into it (plotly.js must be loaded before)."""
    from html import escape
    data, layout = plotly_json(fig)
    attrs = "".join(f' {escape(k)}="{escape(v)}"' for k, v in fig.data_attrs.items())
    payload = json.dumps({"data": data, "layout": layout, "config": PLOT_CONFIG}, allow_nan=False).replace("</", "<\\/")
    note = f'<p class="note">{escape(fig.note)}</p>' if fig.note else ""
    return (f'<figure class="plot"><div id="{escape(fig.id)}" class="plotly-target"{attrs}></div>{note}'
            f'<script type="application/json" id="{escape(fig.id)}-data">{payload}</script></figure>')
