"""``ferristor compare RUN...`` — finished runs side by side, with the settings that differ."""
from __future__ import annotations

from pathlib import Path

import click


@click.command("compare")
@click.argument("runs", nargs=-1, required=True, type=click.Path(exists=True))
def compare(runs):
    """Accuracy statistics of finished runs (folders holding results.json) as a Markdown table.
    Exits non-zero where nothing could be compared (only sweep folders, or runs still going)."""
    from ..errors import DataError
    from ..experiments.compare import compare_table, load_runs
    # a sweep keeps its trials in its store, not in run folders: said, with where to see them
    sweeps = [(p, s) for p in runs if not _nested(Path(p)) and (s := _sweep(Path(p)))]
    for p, how in sweeps:
        click.echo(f"skipped, a sweep folder, not a run: {p}; {how}", err=True)
    swept = {p for p, _ in sweeps}
    # a folder of runs (one or two levels down: compare-rules' OUT/<dataset>/<rule>) stands for them
    found, unfinished = load_runs([r for p in runs if p not in swept for r in (_nested(Path(p)) or [p])])
    for p in unfinished:
        click.echo(f"skipped, no results.json yet: {p}", err=True)
    if not found:
        named = ", ".join(map(str, runs[:3])) + (f" and {len(runs) - 3} more" if len(runs) > 3 else "")
        raise DataError(f"nothing to compare: no finished run in {named} (a run folder holds results.json)")
    click.echo(compare_table(found))


def _sweep(p: Path) -> str | None:
    """How to see the trials of ``p`` where it is a sweep folder (as ``ferristor results`` and
    ``report`` recognise one), else None."""
    from ..report.sweeps import SqliteStore, find_source
    source = find_source(p) if p.is_dir() and not (p / "results.json").exists() else None
    if source is None:
        return None
    if isinstance(source, SqliteStore):
        return f"its trials are in {source.name}: ferristor results {p} --final (or ferristor report {p})"
    return f"its trials are in {source.name}: ferristor report {p}"  # an older layout, which results cannot read


def _nested(p: Path) -> list[Path]:
    """The runs below ``p`` where it is not a run itself (a run still going has no runs below it)."""
    from ..report.inputs import runs_below
    return runs_below(p) if p.is_dir() and not (p / "results.json").exists() else []
