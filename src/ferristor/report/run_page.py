"""The sections of one run: summary, paper, accuracy per evaluation, ledger per layer, lifetime,
provenance and configuration. Each builder returns HTML and appends its figures to ``figs``."""
from __future__ import annotations

import json
import math
import time

from . import paper
from .figures import Figure, Trace, figure_html
from .lifetime import BOUND_MARKS, LifetimePoint, bounds_note, format_days, run_lifetime
from .markup import NA, count, flatten, fmt, known, kv_table, mean_std, num, para, pct, section, table, worst
from .runs import LayerLedger, Run
from ..experiments.summary import learning_rule

FECAP_COLOR, MEMRISTOR_COLOR, PAPER_COLOR = "#4c72b0", "#c44e52", "#7a4a00"


def _stamp(t: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)) if t else "–"


def describe(cfg: dict) -> str:
    """The run header: what ``ferristor train``'s summary names (a baseline rule, a synapse layout other than the paper's
    10/3 bits, transfer settings other than the defaults, k's unit where it is not inputs) and batch, epochs."""
    from ..experiments.summary import k_text, layout_bits, learning_rule, transfer_model, transfer_settings
    rule = cfg.get("rule", {})
    shown = lambda v: NA if v is None else v  # noqa: E731  (null in results.json: not recorded)
    parts = [cfg.get("dataset", "?"), cfg.get("mode", "?")]
    parts += [t for t in (learning_rule(cfg), transfer_model(cfg), layout_bits(cfg)) if t] + transfer_settings(cfg)
    if cfg.get("mode") != "fp":
        parts.append(k_text({**cfg, "rule": {**rule, "k": shown(rule.get("k"))}}))
    parts += [f"p={shown(rule.get('p'))}", f"lr={shown(rule.get('lr'))}", f"batch={cfg.get('batch', 1)}",
              f"epochs={shown(cfg.get('epochs'))}"]
    return " · ".join(str(p) for p in parts)


def summary(run: Run, sid: str) -> str:
    pv = paper.run_accuracy_value(run.config)
    pairs = [("configuration", describe(run.config)),
             ("samples per chip", num(run.samples_per_replica)),
             ("seeds (chips)", ", ".join(map(str, run.seeds))),
             ("final test accuracy %", f"{pct(run.accuracy)}  (per seed: {', '.join(fmt(a, '.2f') for a in run.accuracy)})")]
    if pv:
        pairs.append(("paper", f"{pv.paper:.1f} % — {pv.what}" + (f" ({'; '.join(pv.caveats)})" if pv.caveats else "")))
    net = run.network
    if net is not None:  # as train's summary: the mean over chips
        m = lambda xs: mean_std(xs)[0]  # noqa: E731
        from ..experiments.summary import energy_text  # the terminal's wording and units
        fe, mem = m(net.energy_fecap_nJ), m(net.energy_memristor_nJ)
        dev = [m(x) for x in (net.energy_per_device_nJ, net.energy_device_fecap_nJ, net.energy_device_memristor_nJ)]
        pairs.append(("energy, whole network", energy_text(fe + mem, fe, mem, largest="µJ") + "), mean over chips"
                      if known(fe + mem) else NA))
        pairs.append(("energy / device", energy_text(*dev) + "): one sign/MSB FeCAP + one memristor over training, the "
                      "paper's per-device figure" if all(map(known, dev)) else NA))
    return kv_table(pairs, id=f"{sid}-summary")


def paper_section(run: Run, sid: str) -> str:
    """Ours beside the paper's: Fig. 5f accuracy, and per-device counts by the paper's formulas."""
    rows, notes = [], []
    pv = paper.run_accuracy_value(run.config)
    if pv:
        rows.append([pv.what, pct(run.accuracy), f"{pv.paper:.1f}", pv.source])
        notes += pv.caveats
    rule, net = run.config.get("rule", {}), run.network
    if net is not None and run.samples_per_replica and run.config.get("batch", 1) == 1 and rule.get("k") and rule.get("p") is not None:
        ref = paper.counting_reference(rule["k"], run.samples_per_replica, rule["p"])
        m = lambda xs: mean_std(xs)[0]  # noqa: E731
        for what, ours, theirs in (
                ("memristor ops per device", m(net.memristor_mean), ref["memristor_ops_per_device"]),
                ("FeCAP ops per device (sign/MSB cell)", m(net.fecap_msb_mean), ref["fecap_ops_per_device"]),
                ("energy per device, memristor (nJ)", m(net.energy_device_memristor_nJ), ref["energy_memristor_nJ"]),
                ("energy per device, FeCAP (nJ)", m(net.energy_device_fecap_nJ), ref["energy_fecap_nJ"])):
            rows.append([what, num(ours), num(theirs), f"paper's counting at N = {run.samples_per_replica:,}, k = {rule['k']}, p = {rule['p']}"])
        notes.append("Counts: " + paper.COUNTING_SOURCE + "; ours are counted from what the simulation did, "
                     "energies from the run's ledger costs (means over chips).")
    if not rows:
        return ""
    body = table(["quantity", "ours", "paper", "paper's source"], rows, id=f"{sid}-paper") + "".join(para(n) for n in notes)
    return section(f"{sid}-paper-section", "Paper beside ours", body, 3)


def accuracy_section(run: Run, sid: str, figs: list[Figure]) -> str:
    hist = run.history or []
    if not hist:
        return section(f"{sid}-accuracy-section", "Test accuracy", para("This results file records no evaluation history."), 3)
    traces = []
    for j, seed in enumerate(run.seeds):
        traces.append(Trace(f"seed {seed}", [h.epoch for h in hist],
                            [h.accuracy[j] if j < len(h.accuracy) else math.nan for h in hist],
                            opacity=0.45, size=5))
    ms = [mean_std(h.accuracy) for h in hist]
    traces.append(Trace("mean ± std", [h.epoch for h in hist], [m for m, _ in ms], error=[s for _, s in ms],
                        color="#222", size=8))
    fig = Figure(f"{sid}-accuracy", "Test accuracy per evaluation", "epoch", "test accuracy (%)", traces,
                 note="1 seed." if len(run.seeds) == 1 else f"{len(run.seeds)} seeds; error bars: std over seeds.")
    figs.append(fig)
    head = ["epoch", "step", *[f"seed {s}" for s in run.seeds], "mean ± std"]
    rows = [[fmt(h.epoch, "g"), num(h.step), *[fmt(a, ".2f") for a in h.accuracy], pct(h.accuracy)] for h in hist]
    return section(f"{sid}-accuracy-section", "Test accuracy per evaluation (%)",
                   figure_html(fig) + table(head, rows, id=f"{sid}-accuracy-table"), 3)


def _ledger_row(layer: LayerLedger) -> list:
    m = lambda xs: mean_std(xs)[0]  # noqa: E731
    return [layer.name, num(layer.weights), num(m(layer.transfers)),
            num(m(layer.fecap_mean)), num(m(layer.fecap_msb_mean)), num(worst(layer.fecap_worst)),
            num(m(layer.memristor_mean)), num(worst(layer.memristor_worst)),
            num(m(layer.energy_fecap_nJ) / 1e3), num(m(layer.energy_memristor_nJ) / 1e3), num(m(layer.energy_per_device_nJ)),
            _margin(layer.fecap_margin), _margin(layer.memristor_margin)]


def _margin(per_chip: list[float]) -> str:
    v = worst(per_chip, min)  # inf (∞×): a device never written
    return f"{fmt(v, ',.1f')}×" if known(v) else NA


# Per-device write histograms: one panel per device kind (their operation counts lie decades apart).
_HISTOGRAM_KINDS = (("memristor_ops", "memristor", "memristor", "operations per memristor (each of a pair)", MEMRISTOR_COLOR),
                    ("fecap_ops", "fecap", "FeCAP sign/MSB cell", "operations per sign/MSB FeCAP cell", FECAP_COLOR))


def _histogram_traces(run: Run, device: str, label: str, color: str) -> list[Trace]:
    """One trace per layer of ``device``'s per-device write histogram, chips added up where they share
    bins; each bar as wide as its bin, drawn over the other layers' (see docs/report.md)."""
    traces = []
    for i, layer in enumerate(run.layers):
        # a chip's histogram with an edge not recorded (null) cannot be placed: left out
        hs = [h.get(device) for h in layer.histograms if h and isinstance(h.get(device), dict)
              and all(known(e) and math.isfinite(e) for e in h[device].get("edges", []))]
        if not hs:
            continue
        edges = hs[0].get("edges", [])
        same = [h for h in hs if h.get("edges") == edges]  # chips share bins: add them up
        counts = [sum(c) for c in zip(*[h.get("counts", []) for h in same])]
        if len(edges) != len(counts) + 1:
            continue
        traces.append(Trace(f"{label}, {layer.name}", [(a + b) / 2 for a, b in zip(edges, edges[1:])], counts, kind="bar",
                            opacity=0.6 if len(run.layers) > 1 else 0.85, color=None if i else color,
                            width=[b - a for a, b in zip(edges, edges[1:])]))
    return traces


def _histogram_figures(run: Run, sid: str) -> list[Figure]:
    figs = []
    for device, key, label, x_title, color in _HISTOGRAM_KINDS:
        traces = _histogram_traces(run, device, label, color)
        if not traces:
            continue
        counts = [c for t in traces for c in t.y if c > 0]
        log = bool(counts) and max(counts) / min(counts) >= 100  # a spike beside a tail: both visible
        figs.append(Figure(f"{sid}-writes-{key}", f"Writes per device: {label} (histogram over devices, all chips)",
                           x_title, "devices" + (" (log)" if log else ""), traces, y_log=log, barmode="overlay",
                           note="From the engine's per-device write histograms: each bar spans its bin; layers are drawn "
                                "over each other."))
    return figs


def ledger_section(run: Run, sid: str, figs: list[Figure]) -> str:
    if not run.layers:
        why = "A floating-point run programs no device." if run.config.get("mode") == "fp" else "This results file records no ledger."
        return section(f"{sid}-ledger-section", "Ledger", para(why), 3)
    head = ["layer", "weights", "transfers", "FeCAP ops mean", "FeCAP sign/MSB mean", "FeCAP worst",
            "memristor ops mean", "memristor worst", "FeCAP energy µJ", "memristor energy µJ", "energy/device nJ",
            "FeCAP margin", "memristor margin"]
    rows = [_ledger_row(layer) for layer in run.layers]
    classes = [""] * len(rows)
    if run.network is not None:
        rows.append(_ledger_row(run.network))
        classes.append("total")
    body = table(head, rows, id=f"{sid}-ledger", row_classes=classes)
    chips = ("means, worst values and margins are those of the run's one chip" if len(run.seeds) == 1 else
             f"means are averaged over the {len(run.seeds)} chips, worst values and margins are the worst chip's")
    over = (f"over the {count(run.samples_per_replica, 'training sample')} of each chip" if known(run.samples_per_replica)
            else "over training (the results do not record how many samples)")
    unknown = (" n/a: not recorded in results.json (null); a worst value or margin is n/a when any chip's is."
               if any(NA in row for row in rows) else "")
    body += para(f"Operations per device {over}; {chips}.{unknown} "
                 f"Margin = rated cycles ({run.endurance.fecap_cycles:.0e} FeCAP, {run.endurance.memristor_cycles:.0e} "
                 f"memristor) / the worst device's cycles (operations / {run.endurance.ops_per_cycle:g}). "
                 "Energy/device: one sign/MSB FeCAP cell and one memristor over training, the paper's per-device figure.")
    hist = _histogram_figures(run, sid) or [_writes_per_layer(run, sid)]
    figs.extend(hist)
    plots = figure_html(hist[0]) if len(hist) == 1 else '<div class="grid">' + "".join(map(figure_html, hist)) + "</div>"
    return section(f"{sid}-ledger-section", "Ledger per layer", body + plots, 3)


def _writes_per_layer(run: Run, sid: str) -> Figure:
    """Without per-device histograms (an older engine): the mean and the worst device of each layer."""
    names = [layer.name for layer in run.layers]
    m = lambda xs: mean_std(xs)[0]  # noqa: E731
    return Figure(f"{sid}-writes", "Writes per device: mean and worst per layer", "layer", "operations per device", [
        Trace("FeCAP sign/MSB, mean", names, [m(x.fecap_msb_mean) for x in run.layers], kind="bar", color=FECAP_COLOR, opacity=0.55),
        Trace("FeCAP, worst", names, [worst(x.fecap_worst) for x in run.layers], kind="bar", color=FECAP_COLOR),
        Trace("memristor, mean", names, [m(x.memristor_mean) for x in run.layers], kind="bar", color=MEMRISTOR_COLOR, opacity=0.55),
        Trace("memristor, worst", names, [worst(x.memristor_worst) for x in run.layers], kind="bar", color=MEMRISTOR_COLOR)],
        y_log=True, categorical_x=True,
        note="This results file has no per-device histogram (an engine that records one gets a histogram here); "
             "the bars show the mean and the worst device of each layer.")


def days_attr(d: float) -> str:
    """A lifetime for the page's script: 'inf' (never reached), 'nan' (not recorded, n/a) or the days."""
    return "inf" if math.isinf(d) else "nan" if math.isnan(d) else repr(d)


def lifetime_html(points: list[LifetimePoint], rate: float, tid: str, fig: Figure, caption: str) -> str:
    """The table (its cells rescaled by the page's rate box) and the plot."""
    rows, attrs = [], {}
    for i, p in enumerate(points):
        mem, fe = p.days(rate)
        ops_mark, days_mark = BOUND_MARKS[p.bound]
        kind = " (measured)" if p.measured else f" (projected, a bound: {p.bound})" if p.bound else " (projected)"
        rows.append([f"{p.k:g}" + kind, ops_mark + fmt(p.memristor_ops_per_sample, ".4g"),
                     days_mark + format_days(mem), fmt(p.fecap_ops_per_sample, ".4g"), format_days(fe)])
        for col, d, mark in ((2, p.memristor_days_at_1, days_mark), (4, p.fecap_days_at_1, "")):
            attrs[(i, col)] = f'data-days-at-1="{days_attr(d)}"' + (f' data-mark="{mark}"' if mark else "")
    tab = table(["k", "memristor ops/sample (worst)", "memristor lifetime", "FeCAP ops/sample (worst)", "FeCAP lifetime"],
                rows, id=tid, cell_attrs=attrs, row_classes=["measured" if p.measured else "" for p in points])
    note = bounds_note(points)
    return tab + para(caption) + (para(note) if note else "") + figure_html(fig)


def lifetime_figure(fid: str, series: list[tuple[str, list[LifetimePoint]]], rate: float) -> Figure:
    traces, base = [], []
    for label, pts in series:
        for device, color, idx in (("memristor", MEMRISTOR_COLOR, 0), ("FeCAP", FECAP_COLOR, 1)):
            days1 = [(p.memristor_days_at_1, p.fecap_days_at_1)[idx] for p in pts]
            name = f"{device}{', ' + label if label else ''}"
            traces.append(Trace(name, [p.k for p in pts], [d / rate for d in days1], color=color if len(series) == 1 else None,
                                hover=["measured" if p.measured else f"projected, {p.bound}" if p.bound else "projected"
                                       for p in pts]))
            base.append([d if math.isfinite(d) else None for d in days1])  # strict JSON: never drawn, n/a
    title = "Days until the worst device reaches its rated endurance (sample rate {rate}/s)"
    return Figure(fid, title.format(rate=f"{rate:g}"), "transfer period k (samples)",
                  "days of on-line learning", traces, x_log=True, y_log=True,
                  data_attrs={"data-lifetime": json.dumps(base), "data-title": title})


def lifetime_section(run: Run, sid: str, rate: float, ks, figs: list[Figure]) -> str:
    points = run_lifetime(run, ks)
    if not points:
        why = ("a floating-point run programs no device" if run.config.get("mode") == "fp" else
               "the results record no ledger" if run.network is None else "the results lack samples or k")
        return section(f"{sid}-lifetime-section", "Lifetime projection", para(f"No projection: {why}."), 3)
    fig = lifetime_figure(f"{sid}-lifetime-plot", [("", points)], rate)
    figs.append(fig)
    e = run.endurance
    chips = "the run's one chip" if len(run.seeds) == 1 else f"the worst of {len(run.seeds)} chips"
    caption = (f"The worst device of {chips}, in steady on-line learning at k, from its operations in this run "
               f"({count(run.samples_per_replica, 'sample')}), until {e.memristor_cycles:.0e} memristor / {e.fecap_cycles:.0e} "
               f"FeCAP cycles (× {e.ops_per_cycle:g} operations, less the initial programming), from the run's ledger config. "
               f"k = {run.config.get('rule', {}).get('k')} is measured; other k are projected. Memristor: its operations "
               "per transfer in the run, one transfer every k samples; FeCAP: its update writes per sample + one "
               "transfer's reads every k samples. Transfers are counted per transfer, not per sample of the run, so a "
               "run that ends between two transfers does not understate them. A short run overstates the worst "
               "device's update writes (their random excess shrinks as training goes on), so short-run lifetimes are conservative.")
    if learning_rule(run.config) is not None:
        caption = (f"The worst device of {chips}, written at its rate in this run ({count(run.samples_per_replica, 'sample')}), "
                   f"until {e.memristor_cycles:.0e} memristor / {e.fecap_cycles:.0e} FeCAP cycles (× {e.ops_per_cycle:g} "
                   "operations, less the initial programming). A baseline rule writes at its updates, not at transfers "
                   "every k samples: measured at the run's k only, not projected to others.")
    else:
        rule, batch = run.config.get("rule") or {}, run.config.get("batch", 1) or 1
        if rule.get("k_unit", "inputs") == "updates":
            caption += f" This run counts k in optimizer updates: a transfer every k steps of {count(batch, 'sample')}."
        elif batch > 1:
            caption += (f" A step of this run's mini-batch ({count(batch, 'sample')}) makes at most one transfer: at a k "
                        f"below {batch:g}, one transfer every {batch:g} samples.")
        if run.config.get("ledger", {}).get("transfer_writes_unchanged") is False:
            caption += " This run skips unchanged levels at transfers: its memristor's operations per transfer are measured, an average."
    return section(f"{sid}-lifetime-section", "Lifetime projection",
                   lifetime_html(points, rate, f"{sid}-lifetime", fig, caption), 3)


def provenance_section(run: Run, sid: str) -> str:
    v, t, cfg = run.versions, run.timing, run.config
    pairs = [("results file", str(run.path / "results.json")), ("written", _stamp(run.written)),
             ("code version", run.code_version or "not recorded in results.json")]
    pairs += [(f"version: {k}", val) for k, val in v.items() if k not in ("platform", "processor", "code", "git", "commit")]
    pairs += [("machine", f"{v.get('platform', '–')} ({v.get('processor', '–')})"),
              ("execution", f"threads={cfg.get('threads', '–')} · backend={cfg.get('backend', '–')} · device={cfg.get('device', '–')}")]
    if t:
        # a number may be null (a strict writer's nan: the speed of a run that trained 0 s) or absent: n/a
        unit = lambda text, what: NA if text == NA else f"{text} {what}"  # noqa: E731
        speed = unit(num(t.get("sample_replicas_per_second")), "sample-replicas/s")
        pairs.append(("wall time (training)", unit(fmt(t.get("train_seconds"), ",.1f"), "s")))
        if "compile_seconds" in t:  # results written before compilation was timed apart include it in the speed
            pairs += [("of which compiling or loading kernels", unit(fmt(t["compile_seconds"], ",.1f"),
                                                                      "s (compiled once per machine, then loaded from cache)")),
                      ("speed (without them)", speed)]
        else:
            pairs.append(("speed", speed))
    for k, val in flatten(run.extra).items():  # fields a newer engine adds: code version, dataset fingerprint…
        pairs.append((k, json.dumps(val) if not isinstance(val, (str, int, float)) else val))
    return section(f"{sid}-provenance-section", "Provenance", kv_table(pairs, id=f"{sid}-provenance"), 3)


def config_section(run: Run, sid: str) -> str:
    flat = flatten(run.config)
    body = "<details><summary>all fields</summary>" + table(["field", "value"], [[k, str(v)] for k, v in flat.items()],
                                                            id=f"{sid}-config") + "</details>"
    return section(f"{sid}-config-section", "Configuration", body, 3)


def run_section(run: Run, sid: str, rate: float, ks, figs: list[Figure], with_config: bool = True) -> str:
    parts = [summary(run, sid), paper_section(run, sid), accuracy_section(run, sid, figs), ledger_section(run, sid, figs),
             lifetime_section(run, sid, rate, ks, figs), provenance_section(run, sid)]
    if with_config:
        parts.append(config_section(run, sid))
    return section(sid, f"Run {run.name}", "".join(parts))

