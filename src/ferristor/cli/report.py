"""``ferristor report PATH...`` (one HTML page) and ``ferristor lifetime RUN --rate R``."""
from __future__ import annotations

from pathlib import Path

import click

from ..errors import ConfigError, FerristorError
from .common import comma_list, names_options, no_repeats, prepare_file_folder, prepare_folder


def _ks(text: str | None):
    from ..report.lifetime import DEFAULT_KS
    if text is None:
        return DEFAULT_KS
    items = comma_list(text, "--k", "1,10,100", distinct=False)  # outside the try: a ConfigError is a ValueError
    try:
        ks = [float(k) for k in items]
    except ValueError:
        ks = []
    # a transfer every k samples: a whole number ≥ 1, as train's --k (a k of 0.5 had projected a
    # transfer every half sample, and exited 0)
    if not ks or any(not (k >= 1) or k == float("inf") or not k.is_integer() for k in ks):
        raise ConfigError("--k", text, "comma-separated transfer periods, each a whole number of samples ≥ 1, e.g. 1,10,100")
    ks = [int(k) for k in ks]
    no_repeats(ks, "--k", text)  # '10,1e1' is one k
    return ks


@click.command("report")
@click.argument("paths", nargs=-1, metavar="PATH...")
@click.option("--out", default=None, help="the HTML file [default: PATH/report.html for one folder, else ./report.html]")
@click.option("--rate", default="1", show_default=True, help="samples per second for the lifetime projection (the page has a box to change it)")
@click.option("--k", "ks", default=None, help="transfer periods of a run's projected lifetimes [default: 1,2,5,…,1000]")
@click.option("--figures", "figures_dir", default=None, help="also write each figure as SVG and PNG into this folder (needs matplotlib)")
@names_options()
def report(paths, out, rate, ks, figures_dir):
    """One self-contained HTML page (opens offline) for run folders, results.json files, sweep folders,
    or folders holding several of them: configuration and its differences, provenance, accuracy per
    evaluation, ledger per layer, lifetime projection, and the paper's values beside ours."""
    from ..report import write_report
    from ..report.inputs import check_given
    from ..report.lifetime import check_rate
    from ..report.walk import is_dir
    rate = check_rate(rate, "--rate")
    if out is None:
        only = Path(paths[0]) if len(paths) == 1 else None
        out = only / "report.html" if only is not None and is_dir(only) else Path("report.html")
    if is_dir(Path(out)):  # is_dir: a PATH that cannot be read is said below, once the options are checked
        raise ConfigError("--out", out, "a file name (it is a folder)")
    k_list = _ks(ks)
    for typed in paths:  # before --out's folder is made: by default inside the one given, which may not be readable
        check_given(Path(typed), "PATH", typed)
    prepare_file_folder(out, "out")  # before any work, as train's --out
    if figures_dir is not None:
        prepare_folder(figures_dir, "figures_dir")
    page, statics = write_report(paths, out, rate, k_list, figures_dir)
    if statics:
        click.echo(f"figures: {len(statics)} files in {figures_dir}")
    click.echo(f"report: {page.resolve()}")  # absolute: pasted into a browser from anywhere


@click.command("lifetime")
@click.argument("run", metavar="RUN", required=False)
@click.option("--rate", default=None, metavar="RATE",
              help="samples per second the device learns from (e.g. an edge sensor's rate); no default: a lifetime "
                   "in days scales with it (report's page starts at 1 and has a box to change it)  [required]")
@click.option("--k", "ks", default=None, help="transfer periods to project a run to, whole numbers ≥ 1 (a sweep's points are measured at their own k only) [default: 1,2,5,…,1000]")
def lifetime(run, rate, ks):
    """Days until the worst memristor and the worst FeCAP of RUN's chips reach their rated endurance,
    at RATE samples per second, at the run's k (measured) and at other k (projected). RUN may also be
    a sweep folder: then each point's k is measured."""
    from ..report.inputs import resolve
    from ..report.lifetime import check_rate, format_days, lifetime_table, run_lifetime, trial_lifetime
    from ..report.markup import count, shown
    from ..report.run_page import describe
    from ..report.sweep_page import axes, in_order, left_out, points_text, restated
    if rate is None:  # checked here, not by click, so it is one line like every other input error
        raise FerristorError("--rate is missing: give the samples per second the device learns from, e.g. --rate 10")
    rate = check_rate(rate, "--rate")
    k_list = _ks(ks)
    runs, sweeps = resolve([run] if run else [], "RUN", command="lifetime")
    if ks is not None and sweeps and not runs:
        # refused, not ignored: a sweep's results keep each point's worst-device counts at its own k,
        # not the update/transfer split of a run's ledger that a projection to another k needs
        raise ConfigError("--k", ks, reason="a sweep's lifetimes are measured at each point's own k and are not "
                                           "projected to others; leave --k out, or give a run folder")
    for r in runs:
        e = r.endurance
        click.echo(f"run {r.name}: {describe(r.config)}, {count(len(r.seeds), 'chip')} × {count(r.samples_per_replica or 0, 'sample')}")
        points = run_lifetime(r, k_list)
        if not points:
            # as the run page words it: by the run's mode, not by a missing ledger (an older or cut results file)
            why = ("a floating-point run programs no device" if r.config.get("mode") == "fp" else
                   "the results file records no ledger" if r.network is None else "no samples or k recorded")
            click.echo("  no projection: " + why)
            continue
        click.echo(f"rated: memristor {e.memristor_cycles:.0e}, FeCAP {e.fecap_cycles:.0e} cycles ({count(e.ops_per_cycle, 'operation')} each), "
                   f"from the run's ledger config; worst device of the worst chip, at {rate:g} samples/s")
        click.echo(lifetime_table(points, rate))
        click.echo("* measured; other k projected: memristor writes per transfer, one every k samples (every mini-batch "
                   "where one is larger than k: a step makes at most one); FeCAP = measured update writes + a "
                   "transfer's reads every k samples")
    for s in sweeps:
        click.echo(f"sweep {s.name}: worst device (mean over seeds) at each point, at {rate:g} samples/s"
                   + ("; --k does not apply: each point at its own, measured k" if ks is not None else ""))
        ax = axes(s)
        follows = restated(s, ax)  # an axis that only restates another (fig5f's options, after mode): said once
        # what the sweep's page says it leaves out: an interrupted sweep must not read as a complete one
        points, missing = points_text(s), left_out(s, ax)
        if missing or points != str(len(s.trials)):
            click.echo(f"  points: {points}")
        for what, which in missing:
            click.echo(f"  {what}: {which}")
        for t in in_order(s, ax):
            p = trial_lifetime(t)
            hidden = ("seeds", "epoch_scale", "figure", *follows) + (("k",) if "rule.k" in t.params else ())  # k: rule.k again
            label = ", ".join(f"{k}={shown(v)}" for k, v in t.params.items() if k not in hidden) or t.key[:12]
            if t.pending_seeds or t.left_out:  # shown with the seeds done so far
                label += (f" (seeds done so far: {shown(t.seeds)}" + (f"; not done: {shown(t.pending_seeds)}" if t.pending_seeds else "")
                          + (f"; unreadable: {count(len(t.left_out), 'stored trial')}" if t.left_out else "") + ")")
            if p is None:
                click.echo(f"  {label}: no device programmed")
            else:
                mem, fe = p.days(rate)
                click.echo(f"  {label}: memristor {format_days(mem)}, FeCAP {format_days(fe)}")


def register(group: click.Group) -> None:
    group.add_command(report)
    group.add_command(lifetime)
