"""Atomic file writes: readers see either the old file or the complete new one, never a partial one.

An interrupted run (Ctrl-C, a killed job, a full disk) must not leave a truncated cache or result
that a rerun would trust, so every write goes to a temporary file in the same folder (same file
system, so the rename is atomic) and is moved into place with ``os.replace`` only once complete.
"""
from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path
from typing import IO, Iterator

NEW_FILE_MODE = 0o644  # mkstemp makes files owner-only; results and plots are meant to be shared

_KINDS = ((stat.S_ISDIR, "folder"), (stat.S_ISCHR, "character device"), (stat.S_ISBLK, "block device"),
          (stat.S_ISFIFO, "named pipe (FIFO)"), (stat.S_ISSOCK, "socket"))


def _target(path: Path, name: str) -> tuple[Path, int]:
    """(where to write, the mode to give it) for ``path``: a symbolic link's target, written through
    as a shell's ``>`` would, keeping the link; an existing file keeps its permissions. Anything but a
    regular file or a new name (``/dev/null``, a FIFO, a folder) is refused: replacing it with a file
    would destroy it — a device file, as root. ``name``: the option that gave the path, for errors."""
    from .errors import ConfigError
    real = Path(os.path.realpath(path))
    shown = str(path) if os.path.abspath(path) == str(real) else f"{path} (→ {real})"
    try:
        info = real.stat()
    except FileNotFoundError:
        if path.is_symlink() and not real.parent.is_dir():  # a dangling link: as a shell's > would, no folders made
            raise ConfigError(name, shown, reason="is a symbolic link into a folder that does not exist") from None
        return real, NEW_FILE_MODE
    except OSError as e:  # a loop of links, a folder that cannot be searched
        raise ConfigError(name, shown, reason=f"cannot be written: {e.strerror or e}") from None
    if stat.S_ISREG(info.st_mode):
        return real, stat.S_IMODE(info.st_mode)
    kind = next((label for test, label in _KINDS if test(info.st_mode)), "special file")
    raise ConfigError(name, shown, reason=f"is a {kind}, not a regular file: ferristor writes a "
                      "file whole and then moves it into place, which would replace it; give a file name")


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb", *, name: str = "out") -> Iterator[IO]:
    """Open a temporary file beside ``path``; on a clean exit it replaces ``path``, on an error it is
    removed and ``path`` is left untouched. A symbolic link is written through; an existing file
    keeps its permissions; a path that is not a regular file is refused (:func:`_target`), naming
    ``name`` (the option that gave it: the commands' --out by default)."""
    path, file_mode = _target(Path(path), name)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, file_mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
