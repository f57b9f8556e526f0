"""``ferristor compare RUN...`` — finished runs side by side, with the settings that differ."""
from __future__ import annotations

from pathlib import Path

import click


@click.command("compare")
@click.argument("runs", nargs=-1, required=True)  # checked as report checks its paths (check_given)
def compare(runs):
    """Accuracy statistics of finished runs (folders holding results.json, or folders holding such
    folders one or two levels down) as a Markdown table. What is left out (a sweep, an unfinished
    run, another command's output) is named on stderr with why. Exits non-zero where nothing could
    be compared."""
    from ..errors import DataError
    from ..experiments.compare import compare_table, load_runs
    from ..report.inputs import check_given, check_not_inner_file, once
    for typed in runs:  # missing, unreadable, sweep.sqlite, a checkpoint: said as report says it, before any work
        check_given(Path(typed), "RUN", typed)
        check_not_inner_file(Path(typed), "RUN", typed)
    paths: list[Path] = []
    for typed in runs:
        found, left = _runs_in(Path(typed))
        for message in left:
            click.echo(f"skipped, {message}", err=True)
        paths += found
    firsts, repeats = once(paths)  # a run given twice (or as its folder and its results.json): one row, as report
    for message in repeats:
        click.echo(f"skipped, {message}", err=True)
    paths = [p for p, first in zip(paths, firsts) if first]
    found, unfinished = load_runs(paths)
    for p in unfinished:
        click.echo(f"skipped, no results.json yet: {p}", err=True)
    if not found:
        named = ", ".join(map(str, runs[:3])) + (f" and {len(runs) - 3} more" if len(runs) > 3 else "")
        raise DataError(f"nothing to compare: no finished run in {named} (a run folder holds results.json)")
    click.echo(compare_table(found))


def _runs_in(p: Path) -> tuple[list[Path], list[str]]:
    """The runs ``p`` stands for, and what is left out of them, each a message naming its path and
    why. A run (a folder holding results.json, or the file) stands for itself, as does a folder that
    is nothing (``load_runs`` says it has no results yet); a sweep, a ``reproduce`` folder or another
    command's output for nothing; any other folder for the runs one level below it, else two
    (compare-rules' OUT/<dataset>/<rule>), walked as ``report`` walks a folder (``report.walk``); a
    folder beside them that holds runs of its own is named, not looked into (give it by itself). A file
    of another command's output (fig6.json, pretrain.json) stands for nothing, as its folder."""
    from ..report.inputs import output_of_file
    from ..report.walk import is_dir, walk
    if not is_dir(p):  # a file of another command's output (fig6.json) is said as its folder is
        what = output_of_file(p)
        return ([], [f"not a run: {p} is {what}"]) if what else ([p], [])
    if _run(p):
        return [p], []
    what = _not_runs(p)
    if what:
        return [], [what]
    found, left = walk(p, _run, _not_runs, _beside)
    return ([d for _, d in found], left) if found or left else ([p], [])


def _run(p: Path) -> str | None:
    from ..report.walk import is_file
    return "run" if is_file(p / "results.json") else None


def _beside(p: Path, _runs: list[Path]) -> str:
    return f"a folder of runs beside the runs compared, not looked into: {p}; ferristor compare {p} compares them"


def _not_runs(p: Path) -> str | None:
    """Why the folder ``p``, which holds no results.json, is not a run nor a folder of runs, with what
    reads it; None where it may hold runs (or is nothing at all)."""
    from ..report.inputs import other_output, unfinished_run
    from ..report.walk import safe
    how = _sweep(p)
    if how:
        return f"a sweep folder, not a run: {p}; {how}"
    figures = _reproduce_output(p)
    if figures:
        return (f"a ferristor reproduce folder, not a run: {p} (its figures {', '.join(d.name for d in figures)} "
                f"are sweeps); ferristor report {p} shows them beside the paper's values, ferristor results "
                f"{figures[0]} --final lists a figure's trials")
    other = safe(other_output, p)
    if other:
        return f"not a run: {p} is {other}"
    if safe(unfinished_run, p):
        return (f"unfinished, no results.json yet: {p} (a run still going, or stopped before it finished: "
                "its command, run again, resumes it)")
    return None


def _reproduce_output(p: Path) -> list[Path]:
    """The figures' sweep folders of ``p`` where it is a ``reproduce --out`` folder (no run in it,
    sweeps named as reproduce names its figures' folders), else []."""
    from ..report.walk import subdirs
    from .reproduce import FRESH_DISCARD  # the folders reproduce writes its figures' sweeps into
    dirs = sorted(subdirs(p, []))
    if any(_run(d) for d in dirs):
        return []
    return [d for d in dirs if d.name in FRESH_DISCARD and _sweep(d)]


def _sweep(p: Path) -> str | None:
    """How to see the trials of ``p`` where it is a sweep folder (as ``ferristor results`` and
    ``report`` recognise one), else None."""
    from ..report.sweeps import SqliteStore, find_source
    from ..report.walk import is_dir, safe
    source = safe(find_source, p) if is_dir(p) and not _run(p) else None
    if source is None:
        return None
    if isinstance(source, SqliteStore):
        return f"its trials are in {source.name}: ferristor results {p} --final (or ferristor report {p})"
    return f"its trials are in {source.name}: ferristor report {p}"  # an older layout, which results cannot read
