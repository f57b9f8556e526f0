"""``ferristor compare-rules`` — the hybrid rule and its baselines on the same devices, side by side."""
from __future__ import annotations

from pathlib import Path

import click

from ..experiments.config import MAX_EPOCHS, TASKS
from .common import (FiniteFloat, NonEmptyPath, SeedList, comma_list, cpu_count, explain_divergence, names_options,
                     no_repeats)

RULES_EXAMPLE = "hm,tiki-taka:k=10,gamma=0.1"


def _split_rules(text: str) -> list[str]:
    """Rules are comma-separated, but a rule's settings are too ('tiki-taka:k=10,gamma=0.1'): a comma
    starts a new rule only before a preset's name."""
    from ..experiments.compare_rules import PRESETS
    out: list[str] = []
    for part in comma_list(text, "rules", RULES_EXAMPLE, distinct=False):  # a setting may recur in two rules
        if out and part.split(":")[0] not in PRESETS and "=" in part:
            out[-1] += "," + part
        else:
            out.append(part)
    no_repeats(out, "rules", text)
    return out


@click.command("compare-rules")
@click.option("--datasets", default="mnist,ecg", show_default=True,
              help="comma-separated datasets: " + ", ".join(TASKS) + " (each with the paper's network, lr, p: digest §4)")
@click.option("--rules", default="fp,hm,hm-var,memristor-sgd,mixed-precision,tiki-taka", show_default=True,
              help="comma-separated rules, each a preset with optional settings, e.g. 'tiki-taka:k=10,gamma=0.1' "
                   "or 'memristor-sgd:write=every_update' (settings: k, mode, lr, p, rounding, and SchemeConfig fields)")
@click.option("--baseline-mode", type=click.Choice(["hm-var", "hm"]), default="hm-var", show_default=True,
              help="memristor writes of the baselines: with variability (σ = 0.594 level, digest §3) or ideal")
@click.option("--seeds", type=SeedList(), default="0-4", show_default=True, help="replicas (independent chips) per rule")
@click.option("--epochs", type=FiniteFloat(0, MAX_EPOCHS, min_open=True), default=10, show_default=True, help="epochs per rule")
@click.option("--eval-every", type=FiniteFloat(0, min_open=True), default=0.5, show_default=True,
              help="epochs between test evaluations (the equal-accuracy check reads them)")
@click.option("--test-limit", type=click.IntRange(min=0), default=0, show_default=True, help="evaluate on the first N test samples (0 = all)")
@click.option("--rate", type=FiniteFloat(0, min_open=True), default=1.0, show_default=True,
              help="samples per second for the lifetime projection")
@click.option("--threads", type=click.IntRange(1, cpu_count()), default=1, show_default=True, help="CPU threads")
@click.option("--data-dir", type=NonEmptyPath(file_okay=False), default=None, envvar="FERRISTOR_DATA",
              help="data root holding mnist/, fashion-mnist/, mitdb/ [env FERRISTOR_DATA]")
@click.option("--out", type=NonEmptyPath(file_okay=False), default="runs/compare-rules", show_default=True,
              help="folder: OUT/<dataset>/<rule>/ per run (resumable), tables and the plot")
@click.option("--table-only", is_flag=True,
              help="train nothing: tabulate and plot the runs already in --out (as they were trained; --seeds, "
                   "--epochs, --eval-every, --test-limit, --baseline-mode given here select: a run of other "
                   "settings is refused). Its table, summary and plot go to OUT/<dataset>/table-only.md, "
                   "OUT/summary-table-only.json and OUT/compare-rules-table-only.png: the training's table.md, "
                   "summary.json and compare-rules.png are left as they were")
@click.option("--plot/--no-plot", default=True, show_default=True, help="write OUT/compare-rules.png (needs matplotlib)")
@click.option("--fresh", is_flag=True, help="discard the runs in --out and start over")
@click.option("--progress/--no-progress", default=True, help="show a progress bar")
@names_options(**{"out_dir": "out", "mode": "baseline_mode"})
def compare_rules(datasets, rules, baseline_mode, seeds, epochs, eval_every, test_limit, rate, threads, data_dir, out,
                  table_only, plot, fresh, progress):
    """Train the hybrid rule and its baselines — memristor-only SGD, mixed precision (Nandakumar et al.
    2020), Tiki-Taka (Gokmen & Haensch 2020), fp — on the same devices and count them with the same
    ledger: accuracy, operations per device (mean, worst), energy, lifetime; accuracy against energy."""
    from ..atomic import atomic_write
    from ..errors import ConfigError
    from ..experiments import compare_rules as C
    from ..experiments.results import write_json

    from click.core import ParameterSource
    ctx = click.get_current_context()
    asked = [n for n in (*C.SELECTING, "baseline_mode") if ctx.get_parameter_source(n) is ParameterSource.COMMANDLINE]
    names = comma_list(datasets, "datasets", "mnist,ecg")
    for d in names:
        if d not in TASKS:
            raise ConfigError("datasets", d, "one of " + ", ".join(TASKS))
    specs = [C.parse_rule(r, baseline_mode) for r in _split_rules(rules)]
    if len({s.folder for s in specs}) != len(specs):
        raise ConfigError("rules", rules, reason="two rules share a name")
    for spec in specs:  # every rule's settings, before any training
        for dataset in names:
            try:
                C.rule_config(dataset, spec)
            except ConfigError as e:
                raise ConfigError("rules", spec.label, reason=str(e)) from None
    out = Path(out)
    # a table of some of the saved runs never replaces the training's full one (nor its summary, plot)
    table_md, summary_json, plot_png = (("table-only.md", "summary-table-only.json", "compare-rules-table-only.png")
                                        if table_only else ("table.md", "summary.json", "compare-rules.png"))
    rows_by_dataset, summary = {}, {}
    for dataset in names:
        rows, results = {}, {}
        loaded = {}  # the dataset read once for all its rules (and let go before the next)
        for spec in specs:
            folder = out / dataset / spec.folder
            if table_only:
                # the runs as they were trained; a training option given here selects: a run of other
                # such settings is refused, naming them (the table has no column for them); one not
                # given selects nothing
                given = {n: v for n, v in dict(seeds=seeds, epochs=epochs, eval_every=eval_every,
                                               test_limit=test_limit).items() if n in asked}
                cfg = C.table_config(dataset, spec, folder, given, "baseline_mode" in asked, threads=threads,
                                     data_dir=data_dir) if asked else None
                res = C.finished_results(folder, cfg)
                if res is None:
                    if (folder / "results.json").exists():  # a device rule's results without their device ledger
                        click.echo(f"unfinished: {folder} (its results.json has no device ledger; run compare-rules "
                                   f"without --table-only to finish it)", err=True)
                    else:
                        click.echo(f"no results yet: {folder}", err=True)
                    continue
            else:
                cfg = C.rule_config(dataset, spec, seeds=seeds, epochs=epochs, eval_every=eval_every,
                                    test_limit=test_limit, threads=threads, data_dir=data_dir)
                with explain_divergence("the rule's lr (an lr= setting in --rules)", where=f"{spec.label} on {dataset}, "):
                    res = C.train_rule(cfg, folder, progress=progress, fresh=fresh, loaded=loaded)
            results[spec.label], rows[spec.label] = res, C.rule_row(spec.label, res, rate)
        if not rows:
            continue
        hls = C.headlines(rows, results)
        table = C.format_table(list(rows.values()), rate)
        checks = "\n".join(f"- {C.format_headline(hl)}" for hl in hls) or f"- {C.format_headline(None)}"
        text = f"## {dataset}\n\n{table}\n\n{checks}\n"
        click.echo(text)
        (out / dataset).mkdir(parents=True, exist_ok=True)
        with atomic_write(out / dataset / table_md, "w") as f:  # a result file: whole or absent
            f.write(text)
        others = [] if table_only else C.runs_left_out(out / dataset, specs)
        if others:
            click.echo(f"note: {out / dataset} also holds runs of {', '.join(others)}, not in this table: "
                       f"--table-only with --rules naming them all tabulates them together (table-only.md)", err=True)
        rows_by_dataset[dataset] = list(rows.values())
        summary[dataset] = {"rows": list(rows.values()), "headlines": hls}
    if not summary:
        if table_only:  # as 'compare' with no finished run: nothing was tabulated, which is not a success
            from ..errors import DataError
            raise DataError(f"nothing to tabulate: no finished run of {', '.join(s.label for s in specs)} on "
                            f"{', '.join(names)} in {out} (OUT/<dataset>/<rule>/; run compare-rules without "
                            f"--table-only to train them)")
        return
    write_json(out / summary_json, summary)
    if plot:
        try:
            path = C.plot_rules(rows_by_dataset, out / plot_png)
            click.echo(f"plot: {path}")
        except ImportError:
            click.echo("no plot: matplotlib is not installed (pip install 'ferristor[plot]')", err=True)
    click.echo(f"summary: {out / summary_json}")
