"""The walk from a folder given on the command line down to the runs in it: one level below the
folder, else two (compare-rules' OUT/<dataset>/<rule>). report and lifetime (:mod:`.inputs`) and
compare (:mod:`ferristor.cli.compare`) walk alike; what each takes (report also sweeps) and how it
words what it leaves out are its own."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

RUN_DEPTH = 2  # compare-rules writes OUT/<dataset>/<rule>/results.json, the deepest layout a command writes
UNLISTED = "cannot be listed: "  # how a folder that cannot be listed is named

Kind = Callable[[Path], "str | None"]


def walk(folder: Path, kind: Kind, left_out: Kind, beside: Callable[[Path, list[Path]], str] | None = None
         ) -> tuple[list[tuple[str, Path]], list[str]]:
    """The folders one level below ``folder`` that ``kind`` names a kind of, with it, else those two
    levels below; and a message for each folder left out on the way, in folder order: one that cannot
    be listed, one ``left_out`` says why of (not looked into), and, with ``beside``, one beside those
    found that holds some of its own (``beside(folder, what it holds)``: named, not looked into) or
    holds a folder that cannot be listed (named).

    A folder left out one level down does not end the search: the others are still looked into."""
    left: list[str] = []
    parents = [folder]
    for _ in range(RUN_DEPTH):
        dirs = sorted(d for p in parents for d in subdirs(p, left))
        kinds = {d: kind(d) for d in dirs}
        parents = []
        for d in (d for d, k in kinds.items() if not k):
            why = left_out(d)
            if why:
                left.append(why)
            else:
                parents.append(d)
        found = [(k, d) for d, k in kinds.items() if k]
        if found:
            if beside is not None:
                left += [m for d in parents for m in _beside(d, kind, left_out, beside)]
            return found, left
    return [], left


def _beside(d: Path, kind: Kind, left_out: Kind, beside: Callable[[Path, list[Path]], str]) -> list[str]:
    """What is said of ``d``, a folder beside those found: what it holds, that it would stand for given by
    itself (``beside``); else the folders in it that cannot be listed, which may hold some (they had
    been left out without a word); else nothing."""
    found, left = walk(d, kind, left_out)
    if found:
        return [beside(d, [p for _, p in found])]
    return [m for m in left if m.startswith(UNLISTED)]


def subdirs(p: Path, left: list[str]) -> list[Path]:
    """The folders in ``p``; none where it cannot be listed, which is said in ``left``."""
    try:
        return [d for d in p.iterdir() if is_dir(d)]
    except OSError as e:  # unreadable: named, not a traceback
        left.append(f"{UNLISTED}{p} ({e.strerror or type(e).__name__})")
        return []


def safe(f, p: Path):
    """``f(p)``, or None where the file system refuses to show what is in ``p``."""
    try:
        return f(p)
    except OSError:
        return None


def is_dir(p: Path) -> bool:
    try:
        return p.is_dir()
    except (OSError, ValueError):
        return False


def is_file(p: Path) -> bool:
    try:
        return p.is_file()
    except (OSError, ValueError):
        return False
