"""What the paths given on the command line are: runs, sweeps, or folders holding several of them."""
from __future__ import annotations

import os
from pathlib import Path

from ..errors import DataError
from .runs import Run, read_run
from .sweeps import UNREAD_STORES, Sweep, find_source, read_sweep


def _kind(folder: Path) -> str | None:
    if (folder / "results.json").is_file():
        return "run"
    if find_source(folder) is not None or any((folder / s).exists() for s in UNREAD_STORES):
        return "sweep"
    return None


RUN_DEPTH = 2  # compare-rules writes OUT/<dataset>/<rule>/results.json, the deepest layout a command writes


def runs_below(folder: Path) -> list[Path]:
    """The run folders (holding results.json) one level below ``folder``, else two (compare-rules);
    [] where neither holds any."""
    for depth in range(1, RUN_DEPTH + 1):
        found = sorted(f.parent for f in folder.glob("/".join(["*"] * depth + ["results.json"])) if f.is_file())
        if found:
            return found
    return []


def resolve(paths: list[str], arg: str = "PATH") -> tuple[list[Run], list[Sweep]]:
    """Runs and sweeps named by ``paths``, in order. A folder that is neither stands for the runs and
    sweeps directly inside it (e.g. ``runs/`` or a ``reproduce --out`` folder), else for the runs two
    levels down (``compare-rules``' OUT/<dataset>/<rule>). Errors name ``arg`` and the path as typed."""
    if not paths:
        raise DataError(f"{arg}: give at least one run folder, results.json, or sweep folder")
    found: list[tuple[str, Path]] = []
    for typed in paths:
        p = Path(typed)
        if not p.exists():
            raise DataError(f"{arg} '{typed}': no such file or folder")
        if p.is_file():
            found.append(("run", p))
            continue
        kind = _kind(p)
        if kind:
            found.append((kind, p))
            continue
        inside = [(k, c) for c in sorted(p.iterdir()) if c.is_dir() and (k := _kind(c))]
        inside = inside or [("run", r) for r in runs_below(p)]
        if not inside:
            raise DataError(f"{arg} '{typed}': holds no results.json and no sweep (sweep.sqlite or trials/), "
                            f"nor do the folders in it, down to {RUN_DEPTH} levels")
        found.extend(inside)
    run_paths = [p for k, p in found if k == "run"]
    names = run_names(run_paths)
    runs = [read_run(p, names[p]) for p in run_paths]
    sweeps = [read_sweep(p) for k, p in found if k == "sweep"]
    for s in sweeps:
        s.name = _sweep_name(s.path)
    return runs, sweeps


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
