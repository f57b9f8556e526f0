"""What the paths given on the command line are: runs, sweeps, or folders holding several of them."""
from __future__ import annotations

import os
import warnings
from pathlib import Path

from ..errors import DataError, FerristorWarning
from ..experiments import run_folder
from ..transfer_learning.pretrain import BACKBONE_FILE, RESULTS_FILE as PRETRAIN_RESULTS
from .runs import Run, read_run
from .sweeps import UNREAD_STORES, Sweep, find_source, read_sweep
from .walk import RUN_DEPTH, is_file, safe, walk


def _kind(folder: Path) -> str | None:
    if (folder / "results.json").is_file():
        return "run"
    if find_source(folder) is not None or any((folder / s).exists() for s in UNREAD_STORES):
        return "sweep"
    return None


# What report and lifetime read, for an error about a path that is something else.
ACCEPTED = ("training runs (a folder holding results.json: train, compare-rules), sweeps (sweep.sqlite or "
            "trials/: sweep, reproduce) and folders holding them")


def other_output(folder: Path) -> str | None:
    """What ``folder`` is, when it is another command's output that report does not read (a Fig. 6
    transfer-learning output, a pretrained backbone), worded to follow "is" and naming the files that
    hold its results; None for anything else. Used by report, lifetime and compare to say why a folder
    is left out."""
    if (folder / "fig6.json").is_file() or ((folder / "pairs").is_dir() and
                                            ((folder / "backbones").is_dir() or (folder / "features").is_dir())):
        done = [f for f in ("fig6.png", "fig6.txt") if (folder / f).is_file()]
        where = (f"its figure and table are {' and '.join(done)}" if len(done) == 2 else f"its table is {done[0]}" if done
                 else "unfinished, its finished pairs are in pairs/")
        return f"a Fig. 6 transfer-learning output (ferristor fig6): {where}"
    if (folder / PRETRAIN_RESULTS).is_file() or (folder / BACKBONE_FILE).is_file():
        return (f"a pretrained backbone (ferristor pretrain): its training record is {PRETRAIN_RESULTS}, the backbone "
                f"{BACKBONE_FILE}")
    return None


def output_of_file(p: Path) -> str | None:
    """What the file ``p`` is, when it lies inside another command's output (fig6.json, pairs/<pair>.json,
    a pretraining's pretrain.json): "a file in FOLDER, which is …" (:func:`other_output` of its folder),
    worded to follow "is"; None for anything else, a run's results.json among them. report, lifetime and
    compare had read such a file as a run's results ("'config' is missing, expected an object")."""
    if p.name == run_folder.RESULTS or not is_file(p):
        return None
    for folder in _holders(p):
        other = safe(other_output, folder)
        if other:
            return f"a file in {folder if folder.parts else Path.cwd()}, which is {other}"
    return None


def _holders(p: Path) -> list[Path]:
    """The folders that may be the output holding the file ``p``: its own, and up the layout fig6 writes
    (pairs/<pair>.json, features/<key>.pt, backbones/<source>-<arch>/ holding a pretraining)."""
    folders = [p.parent]
    if p.parent.name in ("pairs", "features"):
        folders.append(p.parent.parent)
    if p.parent.parent.name == "backbones":
        folders.append(p.parent.parent.parent)
    return folders


def _unread(folder: Path) -> str | None:
    """Why ``folder``, holding neither a run nor a sweep, is left out, when it is recognisably something."""
    return other_output(folder) or unfinished_run(folder)


def unfinished_run(folder: Path) -> str | None:
    """'unfinished (no results.json)' where ``folder`` is a run still going or stopped before it
    finished (its checkpoint, or a run's lock with no subfolder: a lock over subfolders is a driver's,
    reproduce's OUT); None otherwise. Used by report, lifetime and compare to say why a folder is left out."""
    if (folder / run_folder.CHECKPOINT).exists() or ((folder / run_folder.LOCK).exists()
                                                     and not any(c.is_dir() for c in folder.iterdir())):
        return "unfinished (no results.json)"
    return None


def _inside(folder: Path) -> tuple[list[tuple[str, Path]], list[str]]:
    """The runs and sweeps directly inside ``folder``, else those two levels down (compare-rules'
    OUT/<dataset>/<rule>, a reproduce --out inside it); with them, the folders left out on the way
    and why (one beside runs, holding runs or sweeps of its own, is named, not looked into; one that
    cannot be listed is named).

    A folder left out one level down (an unfinished run, another command's output) is named and not
    looked into, but it does not end the search: the other folders are still looked into, as they
    were before unfinished runs were named (``nest/a`` unfinished beside ``nest/grp/x/results.json``
    gives ``grp/x`` and a warning about ``a``)."""
    return walk(folder, lambda d: safe(_kind, d), _left_out, _not_looked_into)


def _left_out(folder: Path) -> str | None:
    why = safe(_unread, folder)
    return f"{folder}: {why}" if why else None


def _not_looked_into(folder: Path, inside: list[Path]) -> str:
    """Why ``folder``, beside runs or sweeps, is not looked into: it holds ``inside`` (one level down, else two)."""
    return (f"{folder}: not looked into (only the runs and sweeps directly inside the folder given are), it holds "
            f"{', '.join(str(d.relative_to(folder)) for d in inside)}: give {folder} as a PATH of its own")


def _skip(message: str, skipped: list[str] | None) -> None:
    warnings.warn(FerristorWarning(f"skipped: {message}"), stacklevel=3)
    if skipped is not None:
        skipped.append(message)


def resolve(paths: list[str], arg: str = "PATH", skipped: list[str] | None = None,
            command: str = "report") -> tuple[list[Run], list[Sweep]]:
    """Runs and sweeps named by ``paths``, in order. A folder that is neither stands for the runs and
    sweeps directly inside it (e.g. ``runs/`` or a ``reproduce --out`` folder), else for the runs two
    levels down (``compare-rules``' OUT/<dataset>/<rule>). Errors name ``arg`` and the path as typed.

    A path given is read or refused; of a folder's runs and sweeps, one that cannot be read or has not
    finished is left out with a warning (and its reason appended to ``skipped``, for the page), unless
    nothing in that folder can be read."""
    if not paths:
        raise DataError(f"{arg}: give at least one run folder, results.json, or sweep folder")
    runs: list[tuple[Path, Run]] = []
    sweeps: list[Sweep] = []
    for typed in paths:
        p = Path(typed)
        check_given(p, arg, typed)
        what = output_of_file(p)  # said as its folder is said, not read as a run
        if what:
            raise DataError(f"{arg} '{typed}': {what}; {command} reads {ACCEPTED}")
        check_not_inner_file(p, arg, typed)
        kind = "run" if p.is_file() else _kind(p)
        if kind:
            found, left, given = [(kind, p)], [], True
        else:
            # another command's output first (a fig6 folder holds pretrainings); a lock or checkpoint
            # last: reproduce's OUT holds its sweeps beside the .lock of the command that wrote them
            other = other_output(p)  # once, for the search and the error both
            found, left = ([], []) if other else _inside(p)
            given = False
            if not found and not left:
                why = other or unfinished_run(p) or (f"holds no results.json and no sweep (sweep.sqlite or trials/), "
                                                  f"nor do the folders in it, down to {RUN_DEPTH} levels")
                raise DataError(f"{arg} '{typed}': {why}; {command} reads {ACCEPTED}")
        read = 0
        for k, path in found:
            try:
                if k == "run":
                    runs.append((path, read_run(path)))
                else:
                    sweeps.append(read_sweep(path))
                read += 1
            except DataError as e:
                if given:
                    raise
                left.append(str(e))
        if not read:
            accepted = "" if found else f"; {command} reads {ACCEPTED}"  # only other things in it: say what is read
            raise DataError(f"{arg} '{typed}': no run or sweep in it can be read: {'; '.join(sorted(left))}{accepted}")
        for message in sorted(left):  # each names its path: in folder order
            _skip(message, skipped)
    runs, sweeps = _once(runs, sweeps, skipped)
    names = run_names([path for path, _ in runs])  # after skipping: names shortened among the runs shown
    for path, run in runs:
        run.name = names[path]
    for s in sweeps:
        s.name = _sweep_name(s.path)
    return [run for _, run in runs], sweeps


def check_given(p: Path, arg: str, typed: str) -> None:
    """A DataError where the path given ``p`` is not there, or is there but cannot be read (no
    permission): a folder that cannot be listed or looked into, a file that cannot be opened, a path
    in a folder that cannot be looked into. report, lifetime and compare say it alike, naming the path
    and why as the folder walk names a folder it cannot list; it had ended in 'unexpected
    PermissionError … a bug'."""
    try:
        if p.is_dir():
            for _ in p.iterdir():  # listing it needs read permission
                break
            p.joinpath(run_folder.RESULTS).exists()  # looking into it, search permission
        elif p.is_file():
            with p.open("rb"):
                pass
        there = p.exists()
    except OSError as e:
        raise DataError(f"{arg} '{typed}': cannot be read ({e.strerror or type(e).__name__})") from None
    if not there:
        raise DataError(f"{arg} '{typed}': no such file or folder")


def check_not_inner_file(p: Path, arg: str, typed: str) -> None:
    """A DataError where ``p`` is a file of a run or sweep folder that is not a results file
    (sweep.sqlite, checkpoint.pt, a .lock), saying to give the folder: report, lifetime and compare
    (which had tried to read sweep.sqlite as JSON) say it alike. A file of another command's output
    (fig6.png) is not one: :func:`output_of_file` says what it is."""
    if p.is_file() and p.suffix != ".json" and not output_of_file(p):
        raise DataError(f"{arg} '{typed}': a file in a run or sweep folder, not a results file; give the folder "
                        f"({p.parent}) or a run's results.json")


def once(paths: list[Path]) -> tuple[list[bool], list[str]]:
    """Whether each of ``paths`` is the first of its run or sweep (a folder, or a results.json standing
    for its folder; a results file of another name stands for itself: two of them may share a folder),
    and a message for each repeat: given twice (``report runs/k100 runs/k100``, or a run and its
    results.json), it would be compared with itself. report and compare keep the first."""
    from ..experiments.run_folder import RESULTS
    seen: set[Path] = set()
    firsts, repeats = [], []
    for path in paths:
        where = (path.parent if path.is_file() and path.name == RESULTS else path).resolve()
        firsts.append(where not in seen)
        if where in seen:
            repeats.append(f"{path}: given more than once, shown once")
        seen.add(where)
    return firsts, repeats


def _once(runs: list[tuple[Path, Run]], sweeps: list[Sweep], skipped: list[str] | None):
    """Each run and sweep once, however often it was given (:func:`once`). Repeats are warned of."""
    firsts, repeats = once([p for p, _ in runs] + [s.path for s in sweeps])
    for message in repeats:
        _skip(message, skipped)
    return ([pr for pr, first in zip(runs, firsts) if first],
            [s for s, first in zip(sweeps, firsts[len(runs):]) if first])


def run_names(paths: list[Path]) -> dict[Path, str]:
    """Folder names, or paths relative to the runs' common folder where two names clash."""
    folders = {p: (p.parent if p.is_file() else p) for p in paths}
    short = {p: f.resolve().name for p, f in folders.items()}
    if len(set(short.values())) == len(short):
        return short
    common = Path(os.path.commonpath([str(f.resolve()) for f in folders.values()]))
    return {p: str(f.resolve().relative_to(common)) or f.resolve().name for p, f in folders.items()}


def _sweep_name(path: Path) -> str:
    # reproduce writes OUT/fig5cde and OUT/fig5f: the parent says which reproduction it was
    resolved = path.resolve()
    return f"{resolved.parent.name}/{resolved.name}" if resolved.parent.name else resolved.name
