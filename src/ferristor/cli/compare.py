"""``ferristor compare RUN...`` — finished runs side by side, with the settings that differ."""
from __future__ import annotations

from pathlib import Path

import click


@click.command("compare")
@click.argument("runs", nargs=-1, required=True, type=click.Path(exists=True))
def compare(runs):
    """Accuracy statistics of finished runs (folders holding results.json) as a Markdown table."""
    from ..experiments.compare import compare_table, load_runs
    # a folder of runs (one or two levels down: compare-rules' OUT/<dataset>/<rule>) stands for them
    found, unfinished = load_runs([r for p in runs for r in (_nested(Path(p)) or [p])])
    for p in unfinished:
        click.echo(f"skipped, no results.json yet: {p}", err=True)
    if found:
        click.echo(compare_table(found))


def _nested(p: Path) -> list[Path]:
    """The runs below ``p`` where it is not a run itself (a run still going has no runs below it)."""
    from ..report.inputs import runs_below
    return runs_below(p) if p.is_dir() and not (p / "results.json").exists() else []
