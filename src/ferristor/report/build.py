"""One self-contained HTML page for runs and sweeps: the page, and its figures for static copies."""
from __future__ import annotations

import json
import time
from pathlib import Path

from ..atomic import atomic_write
from .figures import Figure, Trace, figure_html, plotly_script
from .inputs import resolve
from .lifetime import DEFAULT_KS, check_rate
from .markup import count, esc, flatten, mean_std, page, para, pct, section, slug, table
from .paper import run_accuracy_value
from .run_page import describe, run_section
from .runs import Run
from .sweep_page import sweep_section


def differing(configs: list[dict], ignored=()) -> tuple[list[str], list[str]]:
    """(fields that differ, the rest): the one notion of what differs between runs, the report's and
    ``ferristor compare``'s. Values a run's own settings leave unread (σ of the ideal transfer in hm,
    the whole transfer in fp: report.paper's notion, on experiments.summary.unread_transfer_paths) are
    not compared: a field differs where the runs that read it hold different values. ``ignored``:
    field names (a path's last part) left out altogether (compare's: where a run executed, its seeds)."""
    from ..experiments.summary import under
    from .paper import _unused
    flat = [flatten(c) for c in configs]
    unread = [_unused(c) for c in configs]
    keys = [k for k in dict.fromkeys(k for f in flat for k in f) if k.rsplit(".", 1)[-1] not in ignored]
    read = lambda k: [f for f, u in zip(flat, unread) if not under(k, u)]  # noqa: E731
    diff = [k for k in keys if len({json.dumps(f.get(k), sort_keys=True, default=str) for f in read(k)}) > 1]
    return diff, [k for k in keys if k not in diff]


def compared_section(runs: list[Run], figs: list[Figure]) -> str:
    """Several runs side by side: what differs, final accuracy, accuracy over training."""
    diff, same = differing([r.config for r in runs])
    head = ["run", *diff, "number of seeds", "final accuracy % mean ± std", "paper %"]  # 'seeds' may be a differing field
    rows = []
    for r in runs:
        flat, pv = flatten(r.config), run_accuracy_value(r.config)
        rows.append([r.name, *(str(flat.get(k, "–")) for k in diff), str(len(r.accuracy)), pct(r.accuracy),
                     f"{pv.paper:.1f}" if pv else "–"])
    body = table(head, rows, id="runs-compared-table")
    traces = []
    for r in runs:
        if r.history:
            ms = [mean_std(h.accuracy) for h in r.history]
            traces.append(Trace(r.name, [h.epoch for h in r.history], [m for m, _ in ms], error=[s for _, s in ms]))
    if traces:
        fig = Figure("runs-compared-accuracy", "Test accuracy per evaluation, mean ± std over seeds", "epoch",
                     "test accuracy (%)", traces)
        figs.append(fig)
        body += figure_html(fig)
    cfg_rows = [[k, *(str(flatten(r.config).get(k, "–")) for r in runs)] for k in diff + same]
    body += para(f"Configuration fields that differ between the runs: {len(diff)} (highlighted, listed first).")
    body += ("<details><summary>configuration of every run</summary>"
             + table(["field", *(r.name for r in runs)], cfg_rows, id="runs-config",
                     row_classes=["diff"] * len(diff) + [""] * len(same)) + "</details>")
    return section("runs-compared", f"{len(runs)} runs compared", body)


def build_report(paths: list[str], rate: float = 1.0, ks=DEFAULT_KS, arg: str = "PATH") -> tuple[str, list[Figure]]:
    """The page's HTML and its figures. ``paths``: run folders, results.json files, sweep folders or
    folders of those; ``rate``: samples per second for the lifetime projection."""
    rate = check_rate(rate)
    js = plotly_script()  # fails early, with the install hint, when plotly is missing
    skipped: list[str] = []
    runs, sweeps = resolve(paths, arg, skipped)
    figs: list[Figure] = []
    parts, nav, used = [], [], set()
    if skipped:  # said on the page too: a reader of the page never saw the command's warnings
        parts.append(section("skipped", "Left out", para("Found in the folders given, but not on this page:")
                             + '<ul id="skipped-list">' + "".join(f"<li>{esc(m)}</li>" for m in skipped) + "</ul>"))
        nav.append(("skipped", "left out"))

    def sid_for(prefix: str, name: str) -> str:
        sid, i = f"{prefix}-{slug(name)}", 2
        while sid in used:
            sid, i = f"{prefix}-{slug(name)}-{i}", i + 1
        used.add(sid)
        return sid

    if len(runs) > 1:
        parts.append(compared_section(runs, figs))
        nav.append(("runs-compared", "runs compared"))
    for r in runs:
        sid = sid_for("run", r.name)
        parts.append(run_section(r, sid, rate, ks, figs, with_config=len(runs) == 1))
        nav.append((sid, r.name))
    for s in sweeps:
        sid = sid_for("sweep", s.name)
        parts.append(sweep_section(s, sid, rate, figs))
        nav.append((sid, s.name))
    what = [count(len(runs), "run")] if runs else []
    what += [count(len(sweeps), "sweep")] if sweeps else []
    title = (f"ferristor report: {runs[0].name}" if len(runs) == 1 and not sweeps else
             f"ferristor report: {sweeps[0].name}" if len(sweeps) == 1 and not runs else f"ferristor report: {', '.join(what)}")
    from .. import __version__
    subtitle = [" · ".join(describe(r.config) for r in runs[:3]) if runs and len(runs) <= 3 else " and ".join(what),
                f"generated {time.strftime('%Y-%m-%d %H:%M:%S')} by ferristor {__version__} from {', '.join(paths)}"]
    return page(title, subtitle, nav, "".join(parts), js, rate), figs


def write_report(paths: list[str], out: str | Path, rate: float = 1.0, ks=DEFAULT_KS, figures_dir: str | Path | None = None,
                 arg: str = "PATH") -> tuple[Path, list[Path]]:
    """Write the page atomically (and, with ``figures_dir``, SVG + PNG copies of its figures)."""
    html, figs = build_report(paths, rate, ks, arg)
    statics = []
    if figures_dir is not None:
        from .static import write_static
        statics = write_static(figs, figures_dir)
    out = Path(out)
    with atomic_write(out, "w") as f:
        f.write(html)
    return out, statics
