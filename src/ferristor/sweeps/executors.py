"""Where trials run: in this process, in threads of this process (on a GPU, one CUDA stream each),
or in local worker processes. (Ray: ``ray_executor.py``.)

An executor runs :class:`~.worker.Job` s and hands their events to the driver's ``sink(key, kind,
payload)`` from :meth:`poll`; it never writes anything itself (a warning a worker process or Ray
task relays is raised again in the driver: :func:`warn_again`). The driver gives each executor the
datasets it loaded and fingerprinted, and the executor delivers them to its workers (here: pickled
once per worker process), so no worker reads a data folder and every trial trains on exactly the
tensors its key names. A worker that dies is reported as a ``crashed`` event and replaced.

Ctrl-C is the driver's alone: a terminal sends SIGINT to its whole process group, worker processes
included, but they ignore it (a worker would otherwise die mid-trial with a traceback of its own).
The driver stops on it and :meth:`ProcessExecutor.close` ends its workers; the same command again
resumes their trials from the checkpoints in the store.
"""
from __future__ import annotations

import contextlib
import os
import queue
import signal
import threading
import time
import warnings
from contextlib import nullcontext
from typing import Any, Callable, Protocol

from ..errors import ConfigError
from .worker import Job, run_job, warnings_to

Sink = Callable[[str, str, Any], None]
TERMINAL = ("done", "error", "crashed")


class Executor(Protocol):
    name: str

    def start(self, datasets: dict, sink: Sink) -> None: ...
    def has_room(self) -> bool: ...
    def submit(self, job: Job) -> None: ...
    def poll(self, timeout: float) -> None: ...
    def busy(self) -> bool: ...
    def close(self) -> None: ...


class _DriverFailed(BaseException):
    """The driver's own failure (its store cannot be written: a full disk) while a trial ran in its
    process: carried past ``run_job``, which would record it as the trial's error, to the driver."""

    def __init__(self, error: BaseException):
        super().__init__(error)
        self.error = error


class InProcessExecutor:
    """One trial at a time, in this process (the simplest; a crash here is the driver's crash)."""

    name = "in-process"

    def __init__(self):
        self.queue: list[Job] = []

    def start(self, datasets: dict, sink: Sink) -> None:
        self.datasets, self.sink = datasets, sink

    def has_room(self) -> bool:
        return not self.queue

    def submit(self, job: Job) -> None:
        self.queue.append(job)

    def busy(self) -> bool:
        return bool(self.queue)

    def poll(self, timeout: float) -> None:
        if self.queue:
            job = self.queue.pop(0)

            def emit(kind, payload):
                try:
                    self.sink(job.key, kind, payload)
                except Exception as e:  # the driver's, not the trial's: as with a worker, the driver stops
                    raise _DriverFailed(e) from None
            try:
                run_job(job, self.datasets[job.dataset], emit)
            except _DriverFailed as d:
                raise d.error.with_traceback(d.error.__traceback__) from None

    def close(self) -> None:
        pass


class ThreadExecutor:
    """Up to ``workers`` trials at once in threads of this process, each trial that trains on a CUDA
    device on a CUDA stream of its own. What a GPU needs: a batch-1 trial's step is a chain of small
    kernels that leaves most of the chip idle, and kernels of different streams of one process run
    side by side, while worker processes would each hold a CUDA context and take turns. The events
    reach the driver's sink from :meth:`poll`, in the driver's thread."""

    name = "threads"

    def __init__(self, workers: int):
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ConfigError("workers", workers, "an integer ≥ 1")
        self.workers = workers
        self.running = 0
        self.events: queue.Queue = queue.Queue()

    def start(self, datasets: dict, sink: Sink) -> None:
        self.datasets, self.sink = datasets, sink

    def has_room(self) -> bool:
        return self.running < self.workers

    def busy(self) -> bool:
        return self.running > 0 or not self.events.empty()

    def submit(self, job: Job) -> None:
        self.running += 1
        threading.Thread(target=self._run, args=(job,), daemon=True, name="ferristor-sweep-thread").start()

    def _run(self, job: Job) -> None:
        import torch
        emit = lambda kind, payload: self.events.put((job.key, kind, payload))  # noqa: E731
        try:
            device = torch.device(job.config.get("device", "cpu"))
            on_gpu = device.type == "cuda"
            # one of torch's 32 pooled streams of the default priority (graph captures use another
            # priority's: nn.train_gpu); beyond 32 trials at once, two would share one and take turns
            with torch.cuda.stream(torch.cuda.Stream(device)) if on_gpu else nullcontext():
                run_job(job, self.datasets[job.dataset], emit)
        except BaseException as e:  # noqa: BLE001 — run_job reports a trial's own errors; this is the rest
            emit("crashed", f"the trial's thread failed: {type(e).__name__}: {e}")

    def poll(self, timeout: float) -> None:
        try:
            event = self.events.get(timeout=timeout)
        except queue.Empty:
            return
        while True:
            key, kind, payload = event
            if kind in TERMINAL:
                self.running -= 1
            self.sink(key, kind, payload)
            try:
                event = self.events.get_nowait()
            except queue.Empty:
                return

    def close(self) -> None:
        pass  # daemon threads: the driver waits for every trial before closing


def warn_again(payload, registry: dict) -> None:
    """Raise here, in the driver, a warning a worker showed (``worker.warnings_to``) as if raised here:
    a command line then shows it as its own (one line, each text once), any bar stepping aside;
    ``registry`` keeps Python's once-per-place rule across the trials of one executor."""
    from .progress import bars_aside
    message, category, filename, lineno = payload
    with bars_aside():
        warnings.warn_explicit(message, category, filename, lineno, registry=registry)


def _watch_parent(parent: int) -> None:
    """A worker whose driver died (kill -9 included) exits instead of training on for nobody."""
    while True:
        time.sleep(1.0)
        if os.getppid() != parent:
            os._exit(1)


def _driver_gone() -> None:
    """End a worker whose driver cannot be reached, at once and quietly: no trial's events can be
    recorded any more (the same command again resumes the trial from its checkpoint in the store),
    and an exception would unwind through ``run_job`` (recorded there as the trial's error, which
    also fails to send) and print a traceback on the terminal the user shares with this orphan."""
    os._exit(0)


@contextlib.contextmanager
def _sigint_blocked():
    """SIGINT held off in this thread while it starts a worker process: the child inherits the mask, so
    a Ctrl-C while it imports torch and numba (before :func:`_worker_main` ignores it) stays pending
    there instead of killing it with a traceback. This process loses nothing: a SIGINT meanwhile goes
    to one of its other threads, or waits until the mask is restored, and then interrupts the driver."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    from multiprocessing import resource_tracker
    resource_tracker.ensure_running()  # a start of its own there would unblock SIGINT in this thread
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _worker_main(conn, parent: int) -> None:
    # Ctrl-C at the terminal reaches the whole process group; the driver handles it and closes (or
    # kills) its workers, so a worker ignores it rather than die with a traceback mid-trial.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "pthread_sigmask"):  # blocked since the start (_sigint_blocked): now ignored instead
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    datasets: dict = {}
    lock, key = threading.Lock(), [""]  # a warning may come from another thread than the trial's

    def send(kind, payload):
        with lock:
            try:
                conn.send((key[0], kind, payload))
            except OSError:  # BrokenPipeError, ConnectionResetError: the driver is gone (kill -9) or
                _driver_gone()  # closed the pipe; nobody reads the events any more: exit without a traceback
    with warnings_to(send):  # not raw on the terminal the driver draws its bar on
        while True:
            try:
                msg = conn.recv()
            except (EOFError, OSError):
                return
            if msg is None:
                return
            if msg[0] == "data":
                datasets[msg[1]] = msg[2]
            else:
                job = msg[1]
                key[0] = job.key
                run_job(job, datasets[job.dataset], send)


class _Worker:
    def __init__(self, ctx):
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_worker_main, args=(child, os.getpid()), daemon=True,
                                   name="ferristor-sweep-worker")
        with _sigint_blocked():
            self.process.start()
        child.close()
        self.job: Job | None = None
        self.has: set[str] = set()


class ProcessExecutor:
    """Up to ``workers`` trials at once, each in its own spawned worker process (kept for the next
    trial, so torch and numba start once per worker)."""

    name = "processes"

    def __init__(self, workers: int):
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ConfigError("workers", workers, "an integer ≥ 1")
        self.workers = workers
        self.pool: list[_Worker] = []
        self.warned: dict = {}  # warn_again's registry

    def start(self, datasets: dict, sink: Sink) -> None:
        import multiprocessing
        # spawn, not fork: torch and numba keep thread pools that a forked child must not inherit.
        self.ctx = multiprocessing.get_context("spawn")
        self.datasets, self.sink = datasets, sink

    def has_room(self) -> bool:
        return sum(w.job is not None for w in self.pool) < self.workers

    def busy(self) -> bool:
        return any(w.job is not None for w in self.pool)

    def submit(self, job: Job) -> None:
        worker = next((w for w in self.pool if w.job is None), None)
        if worker is None:
            worker = _Worker(self.ctx)
            self.pool.append(worker)
        try:
            if job.dataset not in worker.has:
                worker.conn.send(("data", job.dataset, self.datasets[job.dataset]))
                worker.has.add(job.dataset)
            worker.conn.send(("job", job))
        except (BrokenPipeError, ConnectionResetError, EOFError) as e:
            self._lost(worker, f"worker pid {worker.process.pid} could not take the trial ({e})", job)
            return
        worker.job = job

    def poll(self, timeout: float) -> None:
        from multiprocessing.connection import wait
        busy = [w for w in self.pool if w.job is not None]
        if not busy:
            time.sleep(min(timeout, 0.05))
            return
        ready = set(wait([w.conn for w in busy] + [w.process.sentinel for w in busy], timeout))
        for w in busy:
            if w.conn in ready or w.process.sentinel in ready:
                self._drain(w)

    def _drain(self, w: _Worker) -> None:
        """Deliver every message the worker sent; if it died, report its trial crashed."""
        try:
            while w.job is not None and w.conn.poll():
                key, kind, payload = w.conn.recv()
                if kind == "warning":
                    warn_again(payload, self.warned)
                    continue
                self.sink(key, kind, payload)
                if kind in TERMINAL:
                    w.job = None
        except (EOFError, OSError, ConnectionResetError):
            pass
        if w.job is not None and not w.process.is_alive():
            w.process.join()
            self._lost(w, f"worker pid {w.process.pid} died (exit code {w.process.exitcode})", w.job)

    def _lost(self, w: _Worker, why: str, job: Job) -> None:
        w.job = None
        if w in self.pool:
            self.pool.remove(w)
        w.conn.close()
        if w.process.is_alive():
            w.process.kill()
        self.sink(job.key, "crashed", why)

    def close(self) -> None:
        for w in self.pool:
            if w.job is not None:  # still training: the driver stopped early (Ctrl-C, an error), so it
                w.process.kill()   # does not wait for the trial; the store holds its latest checkpoint
                continue
            try:
                w.conn.send(None)
            except OSError:
                pass
        for w in self.pool:
            w.process.join(timeout=5)
            if w.process.is_alive():
                w.process.kill()
                w.process.join()
        self.pool.clear()


def share_a_gpu(devices, workers: int, in_process: bool = False) -> bool:
    """Whether trials on these devices run as :class:`ThreadExecutor` threads: several at once, all on
    CUDA devices (worker processes would take turns on a GPU)."""
    return not in_process and workers > 1 and all(str(d).startswith("cuda") for d in devices)


def make_executor(workers: int = 1, *, in_process: bool = False, threads: bool = False, ray: bool = False,
                  ray_address: str | None = None, ray_cpus: int | None = None) -> Executor:
    """Ray with ``ray``/``ray_address``; else this process with ``in_process``, ``workers`` threads of
    it with ``threads`` (the GPU's way); else ``workers`` worker processes (the default, one: a
    crashing trial never takes the driver down)."""
    if ray or ray_address:
        from .ray_executor import RayExecutor
        return RayExecutor(address=ray_address, num_cpus=ray_cpus)
    if threads:
        return ThreadExecutor(workers)
    return InProcessExecutor() if in_process else ProcessExecutor(workers)
