"""Long-run robustness of the sweep engine: Ctrl-C reaching worker processes, a store write that
SQLite rolled back itself (a full disk), a checkpoint in the store that cannot be used, and one
writer per folder between sweeps and ``train``."""
import contextlib
import io
import os
import signal
import sqlite3
import sys
import threading
import time

import pytest
import torch

from ferristor.errors import ConfigError, FerristorWarning
from ferristor.locking import FolderBusy
from ferristor.sweeps.run import plan, run_plan
from ferristor.sweeps.store import open_store
from ferristor.sweeps.worker import state_to_bytes

from .conftest import rows, small_spec


# --- Ctrl-C: worker processes ignore SIGINT, the driver handles it --------------------------------

@pytest.mark.skipif(not hasattr(signal, "pthread_sigmask"), reason="POSIX signals")
def test_a_worker_process_outlives_ctrl_c_from_its_first_instant(capfd):
    """A terminal's Ctrl-C reaches every process of its group. A worker, while it starts (importing
    torch and numba) and while it waits for trials, neither dies nor prints a traceback: the driver
    alone stops on it, and ends its workers."""
    import multiprocessing

    from ferristor.sweeps.executors import _Worker
    main = threading.current_thread() is threading.main_thread()
    old = signal.getsignal(signal.SIGINT)
    if main:  # as in a terminal, whatever this test process inherited (SIGINT ignored in a background job)
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        w = _Worker(multiprocessing.get_context("spawn"))
    finally:
        if main:
            signal.signal(signal.SIGINT, old)
    with _reaped(w):
        for delay in (0.0, 0.05, 0.3, 1.0, 3.0):  # while Python starts, imports, then waits for a trial
            time.sleep(delay)
            os.kill(w.process.pid, signal.SIGINT)
        assert w.process.is_alive()
        w.conn.send(None)  # what the driver's close() sends an idle worker
        _exits_quietly(w, capfd, "KeyboardInterrupt", timeout=60)


@contextlib.contextmanager
def _reaped(w):
    """The worker ``w``, killed on the way out if it still runs (a failed check)."""
    try:
        yield w
    finally:
        if w.process.is_alive():
            w.process.kill()
            w.process.join()


def _exits_quietly(w, capfd, error: str, timeout: float) -> None:
    """The worker ``w`` ends with status 0 within ``timeout`` s, printing no traceback nor ``error``."""
    w.process.join(timeout=timeout)
    assert w.process.exitcode == 0
    err = capfd.readouterr().err
    assert "Traceback" not in err and error not in err, err


@pytest.mark.slow
def test_the_driver_kills_workers_still_training_when_it_stops_early(tiny_mnist, tmp_path, monkeypatch):
    """Interrupted (Ctrl-C in the driver), the driver does not wait for a worker's trial to end: it
    kills the worker at once; the trial stays resumable from its checkpoint in the store."""
    from ferristor.sweeps.executors import ProcessExecutor
    import ferristor.sweeps.driver as driver
    real = driver._Run.sink
    workers, interrupted = [], []

    def sink(self, key, kind, payload):
        real(self, key, kind, payload)
        if kind == "checkpoint":
            workers.append(self.executor.pool[0].process)
            interrupted.append(time.monotonic())
            raise KeyboardInterrupt
    monkeypatch.setattr(driver._Run, "sink", sink)
    # a trial far longer than the few seconds the driver would otherwise wait for an idle worker
    p = plan(small_spec("rule.k=10", sets=("epochs=50", "checkpoint_every=0.02")), tmp_path, given={"mnist": tiny_mnist})
    with pytest.raises(KeyboardInterrupt):
        run_plan(p, executor=ProcessExecutor(1), progress=False)
    assert time.monotonic() - interrupted[0] < 4 and not workers[0].is_alive()
    store = open_store(tmp_path, readonly=True)
    assert store.checkpoint(p.trials[0].key) is not None
    store.close()


# --- a write SQLite rolled back itself ------------------------------------------------------------

def _full_after(store, pages: int) -> None:
    """The store's file may not grow by more than ``pages`` pages: a real SQLITE_FULL, no disk filled."""
    n = store.db.execute("PRAGMA page_count").fetchone()[0]
    store.db.execute(f"PRAGMA max_page_count = {n + pages}")


def test_a_full_store_raises_its_own_error_not_the_rollbacks(tmp_path, tiny_mnist):
    p = plan(small_spec("rule.k=10"), tmp_path, given={"mnist": tiny_mnist})
    store = open_store(tmp_path)
    store.register(p.trials)
    key = p.trials[0].key
    store.save_checkpoint(key, 1, b"small")
    _full_after(store, 2)
    # SQLITE_FULL: SQLite rolls the transaction back itself; a ROLLBACK after it would fail with
    # "cannot rollback - no transaction is active" and hide the real error
    with pytest.raises(sqlite3.OperationalError, match="database or disk is full"):
        store.save_checkpoint(key, 2, os.urandom(1 << 20))
    assert not store.db.in_transaction
    assert store.checkpoint(key) == (1, b"small")  # the failed write left nothing behind
    store.set_meta("after", "1")  # and the store is usable
    assert store.meta("after") == "1"
    store.close()


def test_a_failing_commit_leaves_no_transaction_open(tmp_path):
    from ferristor.sweeps.store import Store
    store = open_store(tmp_path)

    class FailingCommit:  # a COMMIT that fails (disk I/O error) with the transaction still open
        def __init__(self, db):
            self.db = db

        def execute(self, sql, *a):
            if sql == "COMMIT":
                raise sqlite3.OperationalError("disk I/O error")
            return self.db.execute(sql, *a)

        @property
        def in_transaction(self):
            return self.db.in_transaction
    with pytest.raises(sqlite3.OperationalError, match="disk I/O error"):
        with Store._Tx(FailingCommit(store.db)) as db:
            db.execute("INSERT INTO meta VALUES ('x', '1')")
    assert not store.db.in_transaction and store.meta("x") is None
    store.close()


# --- a checkpoint in the store that cannot be used ------------------------------------------------

def _spec():
    return small_spec("rule.k=10", seeds="0-1")


@pytest.fixture(scope="module")
def reference(tiny_mnist, tmp_path_factory):
    """The uninterrupted sweep's rows, and a genuine mid-trial checkpoint of its trial."""
    folder = tmp_path_factory.mktemp("ref")
    p = plan(_spec(), folder, given={"mnist": tiny_mnist})
    assert run_plan(p, in_process=True, progress=False).count("done") == 1
    from ferristor.experiments.train import train
    from ferristor.sweeps.configs import build
    states = []
    train(build({**p.trials[0].config, "threads": 1, "data_dir": None}), None, progress=False, dataset=tiny_mnist,
          on_checkpoint=lambda s: states.append(state_to_bytes(s)))
    return rows(folder), states[1]


def _no_longer_loading(blob: bytes) -> bytes:
    """A checkpoint of the trial whose network no longer fits it (as after a code change)."""
    state = torch.load(io.BytesIO(blob), weights_only=True)
    name = next(iter(state["model"]))
    state["model"][name] = torch.zeros(3, 3)
    return state_to_bytes(state)


class _RunsCode:
    """Unpickling this makes a folder: a checkpoint must never be read that way."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return os.mkdir, (self.path,)


# every kind of unusable checkpoint, and one left failed for good (--retry-failed makes it pending before any
# checkpoint is read: the other kinds would take the same path through it)
@pytest.mark.parametrize("kind, retry_failed", [*((k, False) for k in ("garbage", "truncated", "not loading",
                                                                      "pickled code", "not a dict")),
                                                ("truncated", True)])
def test_an_unusable_checkpoint_is_dropped_and_its_trial_starts_over(tiny_mnist, tmp_path, reference, kind,
                                                                     retry_failed):
    """The trial is not failed (and --retry-failed does not fail it again): the checkpoint is dropped
    with a warning naming the trial, the trial trains from step 0 and ends with the uninterrupted
    numbers."""
    ref_rows, good = reference
    marker = tmp_path / "code-ran"
    blob = {"garbage": os.urandom(5000), "truncated": good[:len(good) // 2], "not loading": _no_longer_loading(good),
            "pickled code": state_to_bytes({"step": 3, "x": _RunsCode(str(marker))}),
            "not a dict": state_to_bytes([torch.zeros(2)])}[kind]
    folder = tmp_path / "s"
    p = plan(_spec(), folder, given={"mnist": tiny_mnist})
    key = p.trials[0].key
    folder.mkdir()
    store = open_store(folder)
    store.register(p.trials)
    store.save_checkpoint(key, 3, blob)
    if retry_failed:  # what a sweep before this fix left: failed for good, its checkpoint kept
        store.fail(key, "UnpicklingError: could not find MARK", give_up=True)
    store.close()
    with pytest.warns(FerristorWarning, match=f"trial rule.k=10 \\[{key}\\]: its checkpoint in .* cannot be "
                                              f"used: it .*; dropped, the trial starts over from step 0"):
        out = run_plan(p, in_process=True, retry_failed=retry_failed, progress=False)
    assert out.count("done") == 1 and out.ran == 1
    assert not marker.exists()  # refused (weights_only), never unpickled
    assert rows(folder) == ref_rows
    store = open_store(folder, readonly=True)
    t = store.trials()[0]
    assert t["failures"] == 0 and t["attempts"] == 1 and store.checkpoint(key) is None
    store.close()


def test_a_usable_checkpoint_still_resumes_without_a_warning(tiny_mnist, tmp_path, reference, recwarn):
    ref_rows, good = reference
    p = plan(_spec(), tmp_path, given={"mnist": tiny_mnist})
    store = open_store(tmp_path)
    store.register(p.trials)
    store.save_checkpoint(p.trials[0].key, 3, good)
    store.close()
    seen = []
    import ferristor.experiments.train as T
    real = T.train

    def spy(cfg, *a, resume_state=None, **kw):
        seen.append(resume_state["step"] if resume_state else None)
        return real(cfg, *a, resume_state=resume_state, **kw)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(T, "train", spy)
        assert run_plan(p, in_process=True, progress=False).count("done") == 1
    assert seen == [torch.load(io.BytesIO(good), weights_only=True)["step"]] and seen[0] > 0
    assert not [w for w in recwarn if issubclass(w.category, FerristorWarning) and "checkpoint" in str(w.message)]
    assert rows(tmp_path) == ref_rows


# --- one writer per folder: sweeps and train ------------------------------------------------------

def _holding(argv, setup, held, done):
    sys.argv = argv
    names = {}  # kept to the end: a lock that setup names stays held
    exec(setup, names)
    held.set()
    done.wait()  # then exits: the kernel releases its flocks


@contextlib.contextmanager
def _hold(argv, setup):
    """Another process holding a folder as ``argv`` would (``setup`` takes the lock), until the block
    ends; yields its pid. Forked, not a fresh interpreter (~3 s importing torch for the sweep's lock):
    the child only runs ``setup`` on modules imported here and opens its own lock files (flock: its own
    locks), then waits and exits, never touching torch's or numba's threads."""
    import multiprocessing
    ctx = multiprocessing.get_context("fork")
    held, done = ctx.Event(), ctx.Event()
    other = ctx.Process(target=_holding, args=(argv, setup, held, done), daemon=True)
    other.start()
    try:
        assert held.wait(60), "the other process never took the lock"
        yield other.pid
    finally:
        done.set()
        other.join(60)
    assert other.exitcode == 0


def test_a_train_is_refused_on_a_folder_a_sweep_writes(tmp_path, tiny_mnist):
    from ferristor.experiments.train import train
    from ferristor.sweeps.configs import build
    folder = tmp_path / "sweep"
    trial = plan(small_spec("rule.k=10"), tmp_path / "plan", given={"mnist": tiny_mnist}).trials[0]
    with _hold(["ferristor", "sweep", "--out", str(folder)],
               f"from ferristor.sweeps.driver import sweep_lock\nlock = sweep_lock({str(folder)!r})\nlock.__enter__()") as pid:
        cfg = build({**trial.config, "threads": 1, "data_dir": None})
        with pytest.raises(ConfigError, match=f"is in use by another ferristor run \\(pid {pid} .*: "
                                              f"ferristor sweep --out"):
            train(cfg, folder, progress=False, dataset=tiny_mnist)
    assert not (folder / "results.json").exists() and not (folder / "checkpoint.pt").exists()


@pytest.mark.parametrize("holder", ["train", "sweep"])
def test_a_sweep_or_an_import_is_refused_on_a_folder_a_train_or_sweep_writes(tmp_path, tiny_mnist, holder):
    folder = tmp_path / "run"
    setup = {"train": f"from ferristor.experiments.run_folder import FolderLock, prepare\n"
                      f"FolderLock(prepare({str(folder)!r})).acquire()",
             "sweep": f"from ferristor.sweeps.driver import sweep_lock\nlock = sweep_lock({str(folder)!r})\n"
                      f"lock.__enter__()"}[holder]
    with _hold(["ferristor", holder, "--out", str(folder)], setup) as pid:
        p = plan(small_spec("rule.k=10"), folder, given={"mnist": tiny_mnist})
        with pytest.raises(FolderBusy, match=f"sweep folder {folder} is in use by another process \\(pid {pid} "
                                             f".*: ferristor {holder} --out"):
            run_plan(p, in_process=True, progress=False)
        from click.testing import CliRunner

        from ferristor.cli.main import cli
        r = CliRunner().invoke(cli, ["results", str(folder), "--import", str(tmp_path / "nothing")])
        assert r.exit_code == 2 and f"in use by another process (pid {pid} " in r.stderr, r.output
    assert not (folder / "sweep.sqlite").exists()
    assert run_plan(p, in_process=True, progress=False).count("done") == 1  # free again


def test_a_failed_parquet_export_leaves_the_previous_file_whole(tmp_path, monkeypatch):
    """pyarrow wrote straight to the path: a full disk left no file at all where the last export was."""
    pq = pytest.importorskip("pyarrow.parquet")
    from ferristor.sweeps import table
    rows = [{"trial": "a", "test_accuracy": 0.5}, {"trial": "b", "test_accuracy": 0.25}]
    path = tmp_path / "r.parquet"
    table.to_parquet(rows, path)
    before = path.read_bytes()

    def full_disk(tbl, where, *a, **kw):
        where.write(b"PAR1 half")
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(pq, "write_table", full_disk)
    with pytest.raises(OSError):
        table.to_parquet(rows[:1], path)
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["r.parquet"]


def test_a_worker_whose_driver_is_gone_exits_quietly(capfd):
    """kill -9 of the driver: its worker's next event met a broken pipe and printed a full
    BrokenPipeError traceback (worker.run_job → emit → conn.send) before exiting."""
    import multiprocessing

    from ferristor.sweeps.executors import _Worker
    from ferristor.sweeps.worker import Job
    w = _Worker(multiprocessing.get_context("spawn"))
    with _reaped(w):
        w.conn.send(("data", "mnist", None))
        w.conn.send(("job", Job("k" * 64, {"dataset": "mnist"}, 1)))  # its first event, 'started', finds no driver
        w.conn.close()  # as the kernel closes a killed driver's end
        _exits_quietly(w, capfd, "BrokenPipeError", timeout=120)
