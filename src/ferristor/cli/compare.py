"""``ferristor compare RUN...`` — finished runs side by side, with the settings that differ."""
from __future__ import annotations

import click


@click.command("compare")
@click.argument("runs", nargs=-1, required=True, type=click.Path(exists=True))
def compare(runs):
    """Accuracy statistics of finished runs (folders holding results.json) as a Markdown table."""
    from ..experiments.compare import compare_table, load_runs
    found, unfinished = load_runs(list(runs))
    for p in unfinished:
        click.echo(f"skipped, no results.json yet: {p}", err=True)
    if found:
        click.echo(compare_table(found))
