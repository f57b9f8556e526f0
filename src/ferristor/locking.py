"""One writer per folder: an exclusive, non-blocking ``fcntl.flock`` on a lock file inside it.

The kernel drops the lock when its holder exits, however it exits (kill -9 included), so a stale
lock never needs cleaning up: the next process simply gets it. The file records who holds it (pid,
host, command), for the message a refused second writer prints. Used by the sweep driver; any
command that must be the only writer of a folder can use it too. :func:`is_locked` tells, without
writing, whether a lock file is held (``results`` and ``--dry-run``: does a driver run now?).

``train`` (and every command that claims its ``--out``: ``experiments.run_folder.FolderLock``) holds
``OUT/.lock``; a sweep driver holds ``OUT/.sweep.lock`` and ``OUT/.lock`` too (``sweeps.driver.sweep_lock``),
so a ``train`` and a sweep never write one folder at once. Both write the same record, so either
refusal names the other's holder.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shlex
import socket
import sys
import time
from pathlib import Path
from typing import Iterator

from .errors import FerristorError


class FolderBusy(FerristorError):
    """Another process already writes to this folder."""


_held: dict[Path, int] = {}  # lock files this process holds → nesting depth


@contextlib.contextmanager
def exclusive(folder: str | os.PathLike, what: str = "folder", name: str = ".lock") -> Iterator[Path]:
    """Hold ``folder/name`` exclusively for the block; raise :class:`FolderBusy` at once if another
    process holds it. Reentrant within a process (a command may lock early, its library call again)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = (folder / name).resolve()
    if path in _held:
        _held[path] += 1
        try:
            yield path
        finally:
            _held[path] -= 1
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise FolderBusy(f"{what} {folder} is in use by another process ({_holder(path)}): "
                             f"wait for it to finish or stop it; a killed holder releases it at once") from None
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps(holder_record()).encode())
        _held[path] = 1
        try:
            yield path
        finally:
            del _held[path]
    finally:
        os.close(fd)  # releases the lock


@contextlib.contextmanager
def exclusive_all(folder: str | os.PathLike, names: tuple[str, ...], what: str = "folder",
                  wait_s: float = 0.0) -> Iterator[Path]:
    """Hold each ``folder/name`` of ``names`` (:func:`exclusive`), in order, for the block. One held
    elsewhere is tried again, every 50 ms with none of them held meanwhile, for ``wait_s`` seconds,
    then its FolderBusy is raised: :func:`is_locked` holds a lock file for an instant, which must not
    refuse a writer starting then. Any failure lets go at once of the locks taken so far."""
    deadline = time.monotonic() + wait_s
    while True:
        stack = contextlib.ExitStack()
        try:
            for name in names:
                stack.enter_context(exclusive(folder, what, name))
        except FolderBusy:
            stack.close()
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.05)
            continue
        except BaseException:  # any other failure (a lock path that is a folder): the first lock goes too
            stack.close()
            raise
        break
    with stack:
        yield Path(folder)


def is_locked(path: str | os.PathLike) -> bool:
    """Whether the lock file ``path`` is held now (by :func:`exclusive`, or any exclusive flock through
    another descriptor): a shared, non-blocking probe, let go at once. False where the file is missing
    or cannot be opened or locked (no holder can be told). The probe holds the file for an instant:
    a process taking it exclusively then is refused, so one that may start beside a probe tries again
    for a moment (``sweeps.driver.sweep_lock``)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)  # releases a lock taken here


def holder_record(command: str | None = None) -> dict:
    """What a lock file says about its holder: the record of this module's locks and of
    ``run_folder.FolderLock`` alike (``since`` for one, ``started`` for the other)."""
    now = time.time()
    return {"pid": os.getpid(), "host": socket.gethostname(), "since": now,
            "started": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now)),
            "command": (command or " ".join(shlex.quote(a) for a in sys.argv))[:500]}


# what reading a holder record can raise: the file, its JSON, a field missing or of another type
UNREADABLE_RECORD = (OSError, ValueError, KeyError, TypeError, OverflowError)


def describe_holder(info: dict, word: str = "since") -> str:
    """'pid N on HOST, since T: COMMAND' from a :func:`holder_record` (either lock's); one of
    ``UNREADABLE_RECORD`` if ``info`` is not one."""
    since = info.get("since")
    when = (time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(since)) if isinstance(since, (int, float))
            else info["started"])
    command = f": {info['command']}" if info.get("command") else ""
    return f"pid {info['pid']} on {info['host']}, {word} {when}{command}"


def _holder(path: Path) -> str:
    try:
        return describe_holder(json.loads(path.read_text(encoding="utf-8")))
    except UNREADABLE_RECORD:
        return "holder unknown"
