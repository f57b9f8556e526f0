"""The one-writer lock of a folder (ferristor.locking)."""
import subprocess
import sys

import pytest

from ferristor.locking import FolderBusy, exclusive


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
