"""Trials as Ray tasks: ``--ray`` starts a local Ray on this machine's cores, ``--ray-address ADDR``
joins a running cluster (``ray start --head`` on one node, ``ray start --address`` on the others).

* **Resources**: each trial is one task asking ``num_cpus = threads`` (its torch/numba threads), so
  Ray packs as many trials on a node as it has cores for. Every trial is submitted at once; Ray
  queues them until resources free up (and an autoscaling cluster can grow for them).
* **Data through the object store**: the driver loads and fingerprints each dataset once and
  ``ray.put`` s it; each node pulls it once and its tasks share it. Nodes need no data folder and
  cannot train on other data than the key says.
* **Streaming**: a trial is a Ray generator task: its events (start, each evaluation, each checkpoint,
  the results) stream back to the driver as they happen, which records them in the store.
* **Crashes and retries**: a task whose worker or node dies surfaces as a Ray error on its stream.
  Ray's own retry (``max_retries``) would rerun it from the start with its original arguments, so
  it is 0 here and the driver resubmits the trial itself, with the latest checkpoint it holds as an
  argument: mid-trial state survives the loss of a worker or a node without any shared disk.
* **Warnings** a task shows travel to the driver as events (``worker.warnings_to``), which raises
  them again (``executors.warn_again``): the driver's command line shows them, one line each, once.
* **Ctrl-C** is the driver's: it cancels the tasks and shuts its local Ray down (:meth:`close`). Ray's
  workers never see it: each runs in a process group of its own with SIGINT blocked (checked with
  Ray 2.60: Ray starts its raylet that way, ``services.start_ray_process``), their output goes to
  Ray's logs (``log_to_driver=False``), and a trial trains in a thread of its task, where Python
  raises no KeyboardInterrupt; so no worker traceback reaches the terminal.
"""
from __future__ import annotations

import queue
import threading
from typing import Any

from ..errors import FerristorError
from .executors import TERMINAL, Sink, warn_again
from .worker import Job, run_job, warnings_to


class RayUnavailable(FerristorError):
    """Ray is not installed, or the cluster cannot be reached."""


def _trial_events(job: Job, dataset):
    """The body of the Ray task: train in a thread, yield its events as they come."""
    events: queue.Queue = queue.Queue()

    def body():
        emit = lambda kind, payload: events.put((kind, payload))  # noqa: E731
        try:
            with warnings_to(emit):  # else in Ray's logs only (log_to_driver=False)
                run_job(job, dataset, emit)
        finally:
            events.put(None)

    threading.Thread(target=body, daemon=True).start()
    while (event := events.get()) is not None:
        yield event


def check_reachable(address: str, timeout: float = 5.0) -> None:
    """Fail at once on an address nothing listens at (ray.init would retry it for ever)."""
    import socket
    if address == "auto":
        return
    hostport = address.split("://", 1)[-1]
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise RayUnavailable(f"--ray-address {address}: expected HOST:PORT (e.g. 10.0.0.1:6379), ray://HOST:PORT or auto")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as e:
        raise RayUnavailable(f"--ray-address {address}: no Ray cluster reachable there ({e.strerror or e}); "
                             f"start one with 'ray start --head' or check the address") from None


class RayExecutor:
    name = "ray"

    def __init__(self, address: str | None = None, num_cpus: int | None = None, init_kwargs: dict | None = None):
        self.address, self.num_cpus = address, num_cpus
        self.init_kwargs = init_kwargs or {}
        self.running: dict[Any, Job] = {}
        self.started_ray = False
        self.warned: dict = {}  # warn_again's registry

    def start(self, datasets: dict, sink: Sink) -> None:
        try:
            import ray
        except ImportError:
            raise RayUnavailable("--ray needs Ray: pip install 'ferristor[cluster]'") from None
        self.ray, self.sink, self.datasets = ray, sink, datasets
        if self.address:
            check_reachable(self.address)
        if not ray.is_initialized():
            kw = dict(include_dashboard=False, log_to_driver=False, configure_logging=False, **self.init_kwargs)
            try:
                if self.address:
                    ray.init(address=self.address, **kw)
                else:
                    ray.init(num_cpus=self.num_cpus, **kw)
            except (ConnectionError, RuntimeError, ValueError) as e:
                where = f"--ray-address {self.address}" if self.address else "--ray"
                raise RayUnavailable(f"{where}: cannot start or reach Ray ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
            self.started_ray = True
        self.remote = ray.remote(_trial_events)
        self.refs: dict[str, Any] = {}

    def cpus(self) -> int:
        return int(self.ray.cluster_resources().get("CPU", 1))

    def has_room(self) -> bool:
        return True  # Ray queues tasks until the cluster has room for them

    def busy(self) -> bool:
        return bool(self.running)

    def submit(self, job: Job) -> None:
        if job.dataset not in self.refs:
            self.refs[job.dataset] = self.ray.put(self.datasets[job.dataset])
        gen = self.remote.options(num_cpus=job.threads, max_retries=0, retry_exceptions=False,
                                  name=f"trial-{job.key}").remote(job, self.refs[job.dataset])
        self.running[gen] = job

    def poll(self, timeout: float) -> None:
        if not self.running:
            return
        ready, _ = self.ray.wait(list(self.running), num_returns=1, timeout=timeout)
        for gen in ready:
            job = self.running[gen]
            try:
                ref = next(gen)
            except StopIteration:  # the stream ended without a final event: the task died quietly
                del self.running[gen]
                self.sink(job.key, "crashed", "the Ray task ended without a result")
                continue
            try:
                kind, payload = self.ray.get(ref)
            except self.ray.exceptions.RayError as e:
                del self.running[gen]
                self.sink(job.key, "crashed", f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
                continue
            if kind == "warning":
                warn_again(payload, self.warned)
                continue
            if kind in TERMINAL:
                del self.running[gen]
            self.sink(job.key, kind, payload)

    def close(self) -> None:
        for gen in list(self.running):
            try:
                self.ray.cancel(gen, force=True)
            except Exception:  # noqa: BLE001 — shutting down anyway
                pass
        self.running.clear()
        if self.started_ray:
            self.ray.shutdown()
