"""The sections of one sweep: its points in a table, and accuracy, operations, energy (and, over k,
lifetime) against each swept axis, with the paper's values where a point trains a paper setting."""
from __future__ import annotations

import json
import math

from ..experiments import paper_values as pv
from ..experiments.config import LOCAL_FIELDS
from . import paper
from .figures import Figure, Trace, figure_html
from .lifetime import format_days, trial_lifetime
from .markup import Raw, esc, flatten, fmt, kv_table, mean_std, num, para, pct, section, shown, table, worst
from .run_page import FECAP_COLOR, MEMRISTOR_COLOR, PAPER_COLOR, _stamp, days_attr, lifetime_figure, lifetime_html
from .sweeps import SEEDS, Sweep, Trial

# Categories keep the paper's order where it has one.
_KNOWN_ORDER = [*pv.FIG5F_SETTINGS, *pv.FIG5F_VARIANTS]


# A swept k: a reproduce trial's own field, or the config path a plain sweep's --grid names.
K_AXES = ("k", "rule.k")


def _key(v) -> str:
    return json.dumps(v, sort_keys=True)


def _all_params(sweep: Sweep) -> list[dict]:
    """The own fields of every point the store holds, done or not: an interrupted sweep's axes are
    its plan's (one done k of three is still a k sweep)."""
    return [t.params for t in sweep.trials] + [u.params for u in sweep.unfinished]


def axes(sweep: Sweep) -> list[str]:
    """The fields that vary between points: the trials' own fields, else their resolved configs'."""
    params = _all_params(sweep)
    # seeds are never an axis: a point's seeds split into trials (seeds_per_trial) are one point, and
    # points of other seeds are the same setting, their seeds listed per point
    keys = list(dict.fromkeys(k for p in params for k in p if k != SEEDS))
    varying = [k for k in keys if len({_key(p.get(k)) for p in params}) > 1]
    if varying or len(sweep.trials) < 2:
        return varying
    flat = [flatten(t.train_config) for t in sweep.trials]
    keys = list(dict.fromkeys(k for f in flat for k in f if k.split(".")[0] not in LOCAL_FIELDS and k != SEEDS))
    return [k for k in keys if len({_key(f.get(k)) for f in flat}) > 1]


def _points(sweep: Sweep, ax: list[str]) -> list[dict]:
    """Every point's value on each axis: the done ones', and the others' own fields."""
    return ([{a: coord(t, a) for a in ax} for t in sweep.trials]
            + [{a: u.params.get(a) for a in ax} for u in sweep.unfinished if all(a in u.params for a in ax)])


def _follows(points: list[dict], b: str, a: str) -> bool:
    """Whether every value of axis ``a`` comes with one value of ``b``: b then restates a."""
    seen: dict[str, str] = {}
    return all(seen.setdefault(_key(p[a]), _key(p[b])) == _key(p[b]) for p in points)


def restated(sweep: Sweep, ax: list[str]) -> dict[str, str]:
    """axis → the axis it only restates: Fig. 5f's 'options' (none for fp, rounding=nearest for hm and
    hm-var) follows 'mode', so plots against it would repeat those against mode. Of two axes that
    restate each other, the later one is the restatement, but a k axis (:data:`K_AXES`) never is (its
    lifetime section and labels hang on it): zipped with another ([[points]] of rule.lr and rule.k),
    the other restates k."""
    points, out = _points(sweep, ax), {}
    for b in ax:
        if b in K_AXES:  # k is never a restatement: its lifetime section and labels hang on it
            continue
        a = next((a for a in ax if a != b and a not in out and _follows(points, b, a)
                  and not (_follows(points, a, b) and ax.index(a) > ax.index(b) and a not in K_AXES)), None)
        if a is not None:
            out[b] = a
    return out


def coord(trial: Trial, axis: str):
    return trial.params[axis] if axis in trial.params else flatten(trial.train_config).get(axis)


def _numeric(values: list) -> bool:
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def ordered(values: list) -> list:
    uniq = list({_key(v): v for v in values}.values())
    if _numeric(uniq):
        return sorted(uniq)
    return sorted(uniq, key=lambda v: (_KNOWN_ORDER.index(v) if v in _KNOWN_ORDER else len(_KNOWN_ORDER), str(v)))


def _series(sweep: Sweep, axis: str, others: list[str]) -> list[tuple[str, list[Trial]]]:
    """Points grouped by the other axes' values, each group sorted along ``axis``."""
    groups: dict[str, list[Trial]] = {}
    for t in sweep.trials:
        label = ", ".join(f"{o}={shown(coord(t, o))}" for o in others)
        groups.setdefault(label, []).append(t)
    order = ordered([coord(t, axis) for t in sweep.trials])
    pos = {_key(v): i for i, v in enumerate(order)}
    return [(label, sorted(ts, key=lambda t: pos[_key(coord(t, axis))])) for label, ts in groups.items()]


def _p(t: Trial):
    return t.train_config.get("rule", {}).get("p")


def _reference(t: Trial) -> dict | None:
    """The paper's counting at this point's k, N and p (hybrid, batch-1 points only)."""
    k, n, p = t.k, t.metrics.get("samples_per_replica"), _p(t)
    if not (k and n and p is not None and "memristor_ops_per_device" in t.metrics and t.train_config.get("batch", 1) == 1):
        return None
    return paper.counting_reference(k, n, p)


def _axis_figures(sweep: Sweep, axis: str, all_axes: list[str], sid: str) -> list[Figure]:
    others = [a for a in all_axes if a != axis]
    values = [coord(t, axis) for t in sweep.trials]
    numeric = _numeric(values)
    log = numeric and min(values) > 0 and max(values) / min(values) >= 20
    series = _series(sweep, axis, others)
    kind = "line" if numeric else "markers"
    fid = f"{sid}-{axis.replace('.', '-').replace('_', '-')}"
    acc, ops, energy = [], [], []
    for i, (label, ts) in enumerate(series):
        name = lambda what: f"{what}{', ' + label if label else ''}"  # noqa: E731
        xs = [coord(t, axis) if numeric else shown(coord(t, axis)) for t in ts]
        group = label or "all"
        ms = [mean_std(t.accuracy) for t in ts]
        acc.append(Trace(name("ours, mean ± std"), xs, [m for m, _ in ms], kind=kind, error=[s for _, s in ms], group=group,
                         hover=[f"seeds: {', '.join(fmt(a, '.2f') for a in t.accuracy)}" for t in ts]))
        refs = [paper.point_accuracy_value(t.params, t.train_config)[0] for t in ts]
        if any(r is not None for r in refs):
            acc.append(Trace(name("paper"), xs, [math.nan if r is None else r for r in refs], kind="markers",
                             symbol="diamond-open", size=11, color=PAPER_COLOR, group=group))
        for metric, label_, color, dash in (("fecap_ops_per_device", "FeCAP sign/MSB, mean", FECAP_COLOR, False),
                                            ("fecap_ops_worst", "FeCAP, worst", FECAP_COLOR, True),
                                            ("memristor_ops_per_device", "memristor, mean", MEMRISTOR_COLOR, False),
                                            ("memristor_ops_worst", "memristor, worst", MEMRISTOR_COLOR, True)):
            ys = [t.metrics.get(metric, math.nan) for t in ts]
            if any(not math.isnan(y) for y in ys):
                ops.append(Trace(name(label_), xs, ys, kind=kind, color=color if len(series) == 1 else None, dash=dash,
                                 symbol="triangle-up" if dash else "circle", group=group))
        for metric, label_, color in (("energy_fecap_nJ", "FeCAP", FECAP_COLOR), ("energy_memristor_nJ", "memristor", MEMRISTOR_COLOR)):
            ys = [t.metrics.get(metric, math.nan) for t in ts]
            if any(not math.isnan(y) for y in ys):
                energy.append(Trace(name(label_), xs, ys, kind=kind, color=color if len(series) == 1 else None, group=group))
        refs = [_reference(t) for t in ts]
        if any(refs):
            get = lambda key: [r[key] if r else math.nan for r in refs]  # noqa: E731
            for key, target, what in (("fecap_ops_per_device", ops, "paper's counting, FeCAP"),
                                      ("memristor_ops_per_device", ops, "paper's counting, memristor"),
                                      ("energy_fecap_nJ", energy, "paper's counting, FeCAP"),
                                      ("energy_memristor_nJ", energy, "paper's counting, memristor")):
                target.append(Trace(name(what), xs, get(key), kind="markers", symbol="diamond-open", size=11,
                                    color=PAPER_COLOR, group=group))
    common = dict(x_log=log, categorical_x=not numeric)
    figs = [Figure(f"{fid}-accuracy", f"Test accuracy against {axis}", axis, "test accuracy (%)", acc,
                   note="Error bars: std over seeds; open diamonds: the paper's value where a point trains a paper "
                   "setting (the table of points lists how each such point differs from it).", **common)]
    if ops:
        figs.append(Figure(f"{fid}-ops", f"Operations per device against {axis}", axis, "operations per device", ops,
                           y_log=True, note="Circles: the mean device; triangles (dashed): the worst device (each the mean over seeds). "
                           "Diamonds: " + paper.COUNTING_SOURCE + ", at each point's N.", **common))
    if energy:
        figs.append(Figure(f"{fid}-energy", f"Energy per device against {axis}", axis, "energy per device (nJ)", energy,
                           y_log=True, note="One sign/MSB FeCAP and one memristor, over training.", **common))
    return figs


def in_order(sweep: Sweep, ax: list[str]) -> list[Trial]:
    """The sweep's points ordered along its axes (the first axis slowest), each axis in :func:`ordered`'s order."""
    order = {a: [_key(v) for v in ordered([coord(t, a) for t in sweep.trials])] for a in ax}
    return sorted(sweep.trials, key=lambda t: [order[a].index(_key(coord(t, a))) for a in ax])


def _trials_table(sweep: Sweep, ax: list[str], sid: str, rate: float) -> str:
    head = [*ax, "seeds", "accuracy % mean ± std", "min–max", "paper %", "FeCAP ops mean / worst",
            "memristor ops mean / worst", "energy/device nJ", "memristor lifetime", "FeCAP lifetime",
            "seconds"]
    rows, attrs, caveats = [], {}, {}  # caveats: each distinct list, numbered, → the points it holds for
    for i, t in enumerate(in_order(sweep, ax)):
        m = t.metrics
        ref, why = paper.point_accuracy_value(t.params, t.train_config)
        mark = ""
        if ref is not None and why:
            points = caveats.setdefault(tuple(why), [])
            points.append(", ".join(f"{a}={shown(coord(t, a))}" for a in ax) or t.key)
            mark = f"<sup>{list(caveats).index(tuple(why)) + 1}</sup>"
        life = trial_lifetime(t)
        days = life.days(rate) if life else (math.nan, math.nan)
        e = (m["energy_fecap_nJ"] + m["energy_memristor_nJ"]) if "energy_fecap_nJ" in m and "energy_memristor_nJ" in m else None
        rows.append([*(shown(coord(t, a)) for a in ax), str(len(t.accuracy)), pct(t.accuracy),
                     f"{fmt(worst(t.accuracy, min), '.2f')}–{fmt(worst(t.accuracy), '.2f')}", Raw(f'<span class="paper">{ref:.1f}</span>{mark}') if ref is not None else "–",
                     f"{num(m.get('fecap_ops_per_device'))} / {num(m.get('fecap_ops_worst'))}",
                     f"{num(m.get('memristor_ops_per_device'))} / {num(m.get('memristor_ops_worst'))}",
                     num(e), format_days(days[0]) if life else "–", format_days(days[1]) if life else "–", num(m.get("seconds"), 3)])
        if life:
            n = len(ax)
            for col, d in ((n + 7, life.memristor_days_at_1), (n + 8, life.fecap_days_at_1)):
                attrs[(i, col)] = f'data-days-at-1="{days_attr(d)}"'
    notes = "".join(f'<p class="note paper"><sup>{n}</sup> {esc("; ".join(points))}: {esc("; ".join(why))}.</p>'
                    for n, (why, points) in enumerate(caveats.items(), 1))
    return table(head, rows, id=f"{sid}-trials", cell_attrs=attrs) + notes


def _lifetime(sweep: Sweep, ax: list[str], sid: str, rate: float, figs: list[Figure]) -> str:
    k_axis = next((a for a in ax if a in K_AXES), None)
    if k_axis is None:
        return ""
    others = [a for a in ax if a != k_axis]
    series = [(label, [p for t in ts if (p := trial_lifetime(t))]) for label, ts in _series(sweep, k_axis, others)]
    series = [(label, pts) for label, pts in series if pts]
    if not series:
        return ""
    fig = lifetime_figure(f"{sid}-lifetime-plot", series, rate)
    figs.append(fig)
    points = [p for _, pts in series for p in pts] if len(series) == 1 else []
    caption = ("Measured at each point's k, in steady on-line learning: the worst device (the mean over seeds of each "
               "chip's worst device), from its operations in the point's training, until the rated endurance of the "
               "point's ledger config, less the initial programming. Memristor: its operations per transfer, one "
               "transfer every k samples (every mini-batch where one is larger than k: a step makes at most one); "
               "FeCAP: its update writes per sample + one transfer's reads every k samples. Transfers are counted per "
               "transfer, not per sample of the training, so a point that ends between two transfers does not "
               "understate them. A baseline rule's point writes at its updates: its operations per sample, as measured.")
    if points:
        return section(f"{sid}-lifetime-section", "Lifetime against k", lifetime_html(points, rate, f"{sid}-lifetime", fig, caption), 3)
    return section(f"{sid}-lifetime-section", "Lifetime against k", para(caption) + figure_html(fig), 3)


def _config(sweep: Sweep, sid: str) -> str:
    flat = [flatten(t.train_config) for t in sweep.trials]
    keys = list(dict.fromkeys(k for f in flat for k in f))
    varying = [k for k in keys if len({_key(f.get(k)) for f in flat}) > 1]
    rows = [[k, _values([f.get(k) for f in flat])] for k in varying]
    rows += [[k, shown(flat[0].get(k))] for k in keys if k not in varying]
    classes = ["diff"] * len(varying) + [""] * (len(rows) - len(varying))
    body = (para(f"Fields of the resolved training config that differ between points: {len(varying)} (highlighted, listed first).")
            + "<details><summary>all fields</summary>" + table(["field", "values"], rows, id=f"{sid}-config", row_classes=classes)
            + "</details>")
    return section(f"{sid}-config-section", "Configuration", body, 3)


def _values(values: list) -> str:
    return ", ".join(shown(v) for v in ordered(values))


def _swept(sweep: Sweep, ax: list[str], follows: dict[str, str]) -> str:
    """Each axis with the values of its done points, and those planned where some are not done."""
    parts, params = [], _all_params(sweep)
    for a in ax:
        done, planned = _values([coord(t, a) for t in sweep.trials]), _values([p.get(a) for p in params])
        own = any(a in p for p in params)  # not an axis of the resolved configs, which only done points show
        parts.append(f"{a}: {done}" + (f" (planned: {planned})" if own and planned != done else "")
                     + (f" (follows {follows[a]})" if a in follows else ""))
    return "; ".join(parts) or "nothing (one point)"


def _not_done(sweep: Sweep, ax: list[str]) -> str:
    """The points not done, each by its axes' values (its key where it has none) and its status."""
    def what(u):
        label = ", ".join([f"{a}={shown(u.params.get(a))}" for a in ax]
                          + ([f"seeds={shown(u.params[SEEDS])}"] if sweep.split_seeds and SEEDS in u.params else [])) or u.key
        return f"{label}: {u.status}" + (f" ({u.error})" if u.error else "")
    return "; ".join(what(u) for u in sweep.unfinished)


def partial(t: Trial) -> bool:
    """Whether a point is shown with some of its seeds only: the others still to train, or in a
    stored trial that cannot be read."""
    return bool(t.pending_seeds or t.left_out)


def points_text(sweep: Sweep) -> str:
    """'2', or '1 of 3 done; 1 more shown with the seeds done so far': the points done, of all the
    store holds, and those shown with some of their seeds."""
    some = sum(partial(t) for t in sweep.trials)
    done = len(sweep.trials) - some
    text = f"{done} of {sweep.total} done" if sweep.total is not None and sweep.total != done else str(done)
    return text + (f"; {some} more shown with the seeds done so far" if some else "")


def left_out(sweep: Sweep, ax: list[str]) -> list[tuple[str, str]]:
    """What the sweep's page and ``ferristor lifetime`` say it leaves out, as (what, which) pairs: the
    points not done, the unreadable ones, and the seeds stored twice (counted once)."""
    pairs = []
    if sweep.unfinished:
        pairs.append(("not done (left out)", _not_done(sweep, ax)))
    if sweep.skipped:
        pairs.append(("unreadable points (left out)", "; ".join(sweep.skipped)))
    if sweep.duplicates:  # two groupings of the same seeds in one folder (--merge): each seed counted once
        pairs.append(("seeds stored twice (counted once)", "; ".join(sweep.duplicates)))
    return pairs


def sweep_section(sweep: Sweep, sid: str, rate: float, figs: list[Figure]) -> str:
    ax = axes(sweep)
    follows = restated(sweep, ax)
    plotted = [a for a in ax if a not in follows]  # an axis that restates another gets no plots of its own
    seeds = sorted({len(t.accuracy) for t in sweep.trials})
    fixed = [k for k in dict.fromkeys(k for t in sweep.trials for k in t.params) if k not in ax
             and not (k == SEEDS and len({_key(t.params.get(k)) for t in sweep.trials}) > 1)]  # seeds per point: in the table
    some = any(partial(t) for t in sweep.trials)
    pairs = [("folder", str(sweep.path)), ("store", sweep.source),
             ("points", points_text(sweep)),
             ("seeds per point", ", ".join(map(str, seeds))),
             ("swept", _swept(sweep, ax, follows)),
             ("fixed", "; ".join(f"{k}: {shown(sweep.trials[0].params.get(k))}" for k in fixed) or "–"),
             ("training time, all points", f"{sum(t.metrics.get('seconds', 0.0) for t in sweep.trials):,.1f} s"),
             ("newest point written", _stamp(sweep.newest))]
    pairs += left_out(sweep, ax)
    body = kv_table(pairs, id=f"{sid}-summary")
    if sweep.unfinished:  # an interrupted or running sweep must not read as a complete one
        body += para(f"Not finished: {sweep.unfinished_points} of its {sweep.total} points are not done; this page "
                     "shows the done ones" + (" (a point with some seeds done, with those)" if some else "")
                     + ". Running the sweep (or reproduce) again with the same folder resumes it; "
                     "a point shown running may be training now or have stopped with its driver.", "note paper")
    scales = {t.params.get("epoch_scale") for t in sweep.trials} - {None, 1, 1.0}
    if scales:  # a quick look must not read as a reproduction
        body += para(f"Trained at {', '.join(f'{s:g}' for s in sorted(scales))} × the paper's epochs: the paper's "
                     "accuracies are after its full training, so they sit above the accuracies of these short runs.", "note paper")
    body += section(f"{sid}-points-section", "Points", _trials_table(sweep, ax, sid, rate), 3)
    plots = []
    for a in plotted:
        for fig in _axis_figures(sweep, a, plotted, sid):
            figs.append(fig)
            plots.append(figure_html(fig))
    if plots:
        body += section(f"{sid}-axes-section", "Against each swept axis", '<div class="grid">' + "".join(plots) + "</div>", 3)
    body += _lifetime(sweep, plotted, sid, rate, figs)
    body += _config(sweep, sid)
    return section(sid, f"Sweep {sweep.name}", body)
