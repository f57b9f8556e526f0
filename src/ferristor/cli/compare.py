"""``ferristor compare RUN...`` — finished runs side by side, with the settings that differ."""
from __future__ import annotations

from pathlib import Path

import click


@click.command("compare")
@click.argument("runs", nargs=-1, required=True, type=click.Path(exists=True))
def compare(runs):
    """Accuracy statistics of finished runs (folders holding results.json, or folders holding such
    folders one or two levels down) as a Markdown table. What is left out (a sweep, an unfinished
    run, another command's output) is named on stderr with why. Exits non-zero where nothing could
    be compared."""
    from ..errors import DataError
    from ..experiments.compare import compare_table, load_runs
    from ..report.inputs import check_not_inner_file, once
    for typed in runs:  # sweep.sqlite, a checkpoint: said as report says it, before any work
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
    (compare-rules' OUT/<dataset>/<rule>), as ``report`` resolves a folder (``report.inputs``)."""
    if not _is_dir(p) or _is_file(p / "results.json"):
        return [p], []
    what = _not_runs(p)
    if what:
        return [], [what]
    found, left = _below(p)
    return (found, left) if found or left else ([p], [])


def _below(folder: Path) -> tuple[list[Path], list[str]]:
    """The runs one level below ``folder``, else two, and every folder on the way that is left out,
    with why. The search stops at the first level holding runs; a folder beside them that holds runs
    further down is named, not looked into (give it by itself)."""
    from ..report.inputs import RUN_DEPTH, runs_below
    left: list[str] = []
    parents = [folder]
    for _ in range(RUN_DEPTH):
        dirs = sorted(d for p in parents for d in _subdirs(p, left))
        runs = [d for d in dirs if _is_file(d / "results.json")]
        plain = []
        for d in dirs:
            if d in runs:
                continue
            what = _not_runs(d)
            if what:
                left.append(what)
            else:
                plain.append(d)
        if runs:
            left += [f"a folder of runs beside the runs compared, not looked into: {d}; ferristor compare {d} "
                     "compares them" for d in plain if _safe(runs_below, d)]
            return runs, left
        parents = plain
    return [], left


def _not_runs(p: Path) -> str | None:
    """Why the folder ``p``, which holds no results.json, is not a run nor a folder of runs, with what
    reads it; None where it may hold runs (or is nothing at all)."""
    from ..report.inputs import other_output, unfinished_run
    how = _sweep(p)
    if how:
        return f"a sweep folder, not a run: {p}; {how}"
    figures = _reproduce_output(p)
    if figures:
        return (f"a ferristor reproduce folder, not a run: {p} (its figures {', '.join(d.name for d in figures)} "
                f"are sweeps); ferristor report {p} shows them beside the paper's values, ferristor results "
                f"{figures[0]} --final lists a figure's trials")
    other = _safe(other_output, p)
    if other:
        return f"not a run: {p} is {other}"
    if _safe(unfinished_run, p):
        return (f"unfinished, no results.json yet: {p} (a run still going, or stopped before it finished: "
                "its command, run again, resumes it)")
    return None


def _reproduce_output(p: Path) -> list[Path]:
    """The figures' sweep folders of ``p`` where it is a ``reproduce --out`` folder (no run in it,
    sweeps named as reproduce names its figures' folders), else []."""
    from .reproduce import FRESH_DISCARD  # the folders reproduce writes its figures' sweeps into
    dirs = sorted(_subdirs(p, []))
    if any(_is_file(d / "results.json") for d in dirs):
        return []
    return [d for d in dirs if d.name in FRESH_DISCARD and _sweep(d)]


def _sweep(p: Path) -> str | None:
    """How to see the trials of ``p`` where it is a sweep folder (as ``ferristor results`` and
    ``report`` recognise one), else None."""
    from ..report.sweeps import SqliteStore, find_source
    source = _safe(find_source, p) if _is_dir(p) and not _is_file(p / "results.json") else None
    if source is None:
        return None
    if isinstance(source, SqliteStore):
        return f"its trials are in {source.name}: ferristor results {p} --final (or ferristor report {p})"
    return f"its trials are in {source.name}: ferristor report {p}"  # an older layout, which results cannot read


def _subdirs(p: Path, left: list[str]) -> list[Path]:
    try:
        return [d for d in p.iterdir() if _is_dir(d)]
    except OSError as e:  # unreadable: named, not a traceback
        left.append(f"cannot be listed: {p} ({e.strerror or type(e).__name__})")
        return []


def _safe(f, p: Path):
    """``f(p)``, or None where the file system refuses to show what is in ``p``."""
    try:
        return f(p)
    except OSError:
        return None


def _is_dir(p: Path) -> bool:
    try:
        return p.is_dir()
    except (OSError, ValueError):
        return False


def _is_file(p: Path) -> bool:
    try:
        return p.is_file()
    except (OSError, ValueError):
        return False
