"""``run.driver_running`` (the probe of ``results`` and ``--dry-run``) holds ``.sweep.lock`` shared for
an instant: a driver starting in that instant waits it out instead of refusing the folder as "in use
by another process", naming the last driver the lock file records (a stale holder)."""
import fcntl
import os
import threading
import time

import pytest

from ferristor.locking import FolderBusy
from ferristor.sweeps import driver
from ferristor.sweeps.driver import LOCK_NAME, sweep_lock


def _shared(folder):
    """The probe's lock: LOCK_SH on the lock file, through a descriptor of its own."""
    fd = os.open(folder / LOCK_NAME, os.O_RDONLY | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    return fd


def test_a_driver_waits_out_a_probe(tmp_path):
    """Before: FolderBusy at once."""
    fd = _shared(tmp_path)
    threading.Timer(0.2, os.close, (fd,)).start()  # the probe lets go
    with sweep_lock(tmp_path) as held:
        assert held == tmp_path


def test_a_folder_held_longer_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(driver, "LOCK_WAIT_S", 0.3)
    fd = _shared(tmp_path)
    try:
        start = time.monotonic()
        with pytest.raises(FolderBusy, match=f"sweep folder {tmp_path} is in use by another process"):
            with sweep_lock(tmp_path):
                pass
        assert time.monotonic() - start >= 0.3
    finally:
        os.close(fd)
    with sweep_lock(tmp_path), sweep_lock(tmp_path):  # free again, reentrant
        pass


def test_a_failure_taking_the_second_lock_lets_go_of_the_first(tmp_path):
    """Only FolderBusy had closed the first lock: another error (here the run lock's path is a
    folder) left .sweep.lock held until the exception was collected."""
    from ferristor import locking
    (tmp_path / ".lock").mkdir()
    with pytest.raises(OSError) as failed:
        with sweep_lock(tmp_path):
            pass
    assert failed.value is not None  # the exception (and its frames) still alive, as in a caller handling it
    assert not any(path.parent == tmp_path for path in locking._held)  # released, not left to the collector



def test_a_driver_waits_out_the_real_probe(tmp_path, monkeypatch):
    """As above with ``run.driver_running`` itself (``locking.is_locked``), its instant stretched to
    0.2 s: the driver starting then takes the folder once the probe lets go, and the probe, first,
    saw it free."""
    import types

    from ferristor import locking
    from ferristor.sweeps.run import driver_running
    (tmp_path / LOCK_NAME).touch()
    probing, release = threading.Event(), threading.Event()

    def flock(fd, op):
        fcntl.flock(fd, op)
        if op == fcntl.LOCK_SH | fcntl.LOCK_NB:  # the probe's lock, taken: held until released
            probing.set()
            release.wait(10)
    monkeypatch.setattr(locking, "fcntl", types.SimpleNamespace(
        flock=flock, **{k: getattr(fcntl, k) for k in ("LOCK_SH", "LOCK_EX", "LOCK_NB", "LOCK_UN")}))
    seen = []
    prober = threading.Thread(target=lambda: seen.append(driver_running(tmp_path)))
    prober.start()
    try:
        assert probing.wait(10)
        threading.Timer(0.2, release.set).start()
        with sweep_lock(tmp_path):
            assert driver_running(tmp_path) is True
    finally:
        release.set()
        prober.join()
    assert seen == [False] and driver_running(tmp_path) is False
