"""The one-writer lock of a folder (ferristor.locking)."""
import subprocess
import sys

import pytest

import threading
import time

from ferristor.locking import FolderBusy, exclusive, exclusive_all, is_locked


def test_lock_is_released_when_its_holder_dies(tmp_path):
    code = (f"import os; from ferristor.locking import exclusive\nwith exclusive({str(tmp_path)!r}):\n"
            f"    print('held', flush=True); os.kill(os.getpid(), 9)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == "held" and proc.returncode == -9
    with exclusive(tmp_path):
        pass


def test_a_second_holder_is_refused_naming_the_first(tmp_path, lock_held_elsewhere):
    with lock_held_elsewhere(tmp_path, "run folder") as pid:
        with pytest.raises(FolderBusy, match=f"run folder {tmp_path} is in use by another process \\(pid {pid} on "):
            with exclusive(tmp_path, "run folder"):
                pass
    with exclusive(tmp_path) as path:  # free again, and reentrant within a process
        with exclusive(tmp_path):
            pass
        assert path.name == ".lock"


def test_the_probe_tells_a_held_lock_and_leaves_none_behind(tmp_path, lock_held_elsewhere):
    """``is_locked`` (``results`` and ``--dry-run`` asking whether a driver runs): held by another
    process → True; missing or free → False, and the file is not made, nor left locked (a writer
    takes it at once after)."""
    path = tmp_path / ".lock"
    assert not is_locked(path) and not path.exists()
    with lock_held_elsewhere(tmp_path, "run folder"):
        assert is_locked(path)
    assert not is_locked(path)
    with exclusive(tmp_path):  # not refused: the probe let go
        assert is_locked(path)  # its own descriptor sees this process's lock too
    assert not is_locked(tmp_path)  # a folder: cannot be locked, no holder to tell


def test_exclusive_all_retries_for_its_wait_then_names_the_holder(tmp_path, lock_held_elsewhere):
    """Held elsewhere past ``wait_s``: FolderBusy after that long, none of the locks left held;
    released within it: taken. A failure other than FolderBusy lets go of the first lock at once."""
    from ferristor import locking
    with lock_held_elsewhere(tmp_path, "run folder", ".b") as pid:
        start = time.monotonic()
        with pytest.raises(FolderBusy, match=f"run folder {tmp_path} is in use by another process \\(pid {pid} on "):
            with exclusive_all(tmp_path, (".a", ".b"), "run folder", wait_s=0.3):
                pass
        assert time.monotonic() - start >= 0.3 and not is_locked(tmp_path / ".a")
    import fcntl
    import os
    fd = os.open(tmp_path / ".b", os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)  # a probe, letting go after 0.2 s
    threading.Timer(0.2, os.close, (fd,)).start()
    with exclusive_all(tmp_path, (".a", ".b"), wait_s=5.0) as held:
        assert held == tmp_path and is_locked(tmp_path / ".a") and is_locked(tmp_path / ".b")
    (tmp_path / ".c").mkdir()
    with pytest.raises(OSError):
        with exclusive_all(tmp_path, (".a", ".c"), wait_s=5.0):
            pass
    assert not any(path.parent == tmp_path for path in locking._held)
