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

import contextlib
import queue
import threading
import warnings
from typing import Any

from ..errors import FerristorError, FerristorWarning
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


def check_installed(option: str) -> None:
    """Refuse ``option`` (--ray, --ray-address) at once where Ray is not installed: before any folder
    is created or any data loaded."""
    import importlib.util
    if importlib.util.find_spec("ray") is None:
        raise RayUnavailable(f"{option} needs Ray: pip install 'ferristor[cluster]'")


def check_reachable(address: str, timeout: float = 5.0) -> None:
    """Fail at once on an address nothing listens at (ray.init would retry it for ever)."""
    import socket
    hostport = address.split("://", 1)[-1]
    if address == "auto":  # the cluster a 'ray start' here recorded (or RAY_ADDRESS names): checked as any
        try:
            from ray._private.services import canonicalize_bootstrap_address
        except ImportError:  # no Ray (start says so) or another Ray's internals: ray.init finds it
            return
        try:
            hostport = canonicalize_bootstrap_address("auto")
        except ConnectionError:
            raise RayUnavailable("--ray-address auto: no Ray cluster found running on this machine; start one with "
                                 "'ray start --head', or give its address (HOST:PORT)") from None
        except Exception:  # noqa: BLE001 — whatever else Ray's lookup meets: ray.init says it
            return
        if not hostport:
            return
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise RayUnavailable(f"--ray-address {address}: expected HOST:PORT (e.g. 10.0.0.1:6379), ray://HOST:PORT or auto")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as e:
        raise RayUnavailable(f"--ray-address {address}: no Ray cluster reachable there ({e.strerror or e}); "
                             f"start one with 'ray start --head' or check the address") from None


_AUTH_WORDS = ("auth", "token", "unauthenticated", "permission denied")


def cannot_reach(address: str | None, error: BaseException, log: str = "") -> str:
    """The one line saying why Ray could not be started (``--ray``) or joined (``--ray-address``):
    the first line of ``error``'s message, and where it, an exception it was raised from or the log
    Ray wrote meanwhile (``log``) speaks of authentication, what to set: Ray 2.60's ``ray start
    --head`` turns token authentication on, and a driver without the cluster's token only sees
    'Failed to connect to Ray cluster'."""
    where = f"--ray-address {address}" if address else "--ray"
    texts, e, seen = [log], error, set()
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        texts.append(f"{type(e).__name__} {getattr(e, 'message', '')} {e}")
        e = e.__cause__ or e.__context__
    first = (str(error).strip().splitlines() or [type(error).__name__])[0]
    if any(w in t.lower() for t in texts for w in _AUTH_WORDS):
        return (f"{where}: the Ray cluster refused this driver's authentication ({first}): the cluster uses token "
                f"authentication (ray start --head turns it on); export RAY_AUTH_MODE=token here and give the "
                f"cluster's token: RAY_AUTH_TOKEN=… or RAY_AUTH_TOKEN_PATH=… (default ~/.ray/auth_token, as on the "
                f"head node; 'ray get-auth-token' there prints it)")
    return f"{where}: cannot start or reach Ray ({first})"


@contextlib.contextmanager
def _stderr_captured():
    """Ray's C++ core writes to file descriptor 2 itself: held in a file meanwhile; yields a function
    returning what was written."""
    import os
    import sys
    import tempfile
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no real stderr (a test's capture): nothing to hold
        yield lambda: ""
        return
    with tempfile.TemporaryFile(mode="w+b") as f:
        os.dup2(f.fileno(), 2)
        try:
            yield lambda: (f.flush(), f.seek(0), f.read().decode(errors="replace"))[-1]
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def _replay(text: str) -> None:
    if text:
        import sys
        sys.stderr.write(text)
        sys.stderr.flush()


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
            captured = ""
            try:
                if self.address:
                    with _stderr_captured() as log:  # Ray's C++ client logs each refused try there, ~20 lines
                        try:
                            ray.init(address=self.address, **kw)
                        finally:
                            captured = log()
                    _replay(captured)  # joined: whatever it said is the user's to read, as before
                else:
                    # a Ray of its own, never a running one that ray.init() would join (whose CPUs are
                    # not --ray-cpus's, and which refuses num_cpus)
                    ray.init(address="local", num_cpus=self.num_cpus, **kw)
            except Exception as e:  # noqa: BLE001 — ConnectionError, RuntimeError, ValueError, AuthenticationError …
                raise RayUnavailable(cannot_reach(self.address, e, captured)) from None
            self.started_ray = True
        self.remote = ray.remote(_trial_events)
        self.refs: dict[str, Any] = {}

    def cpus(self) -> int:
        return int(self.ray.cluster_resources().get("CPU", 1))

    def _check_fits(self, threads: int) -> None:
        """A task asking for more CPUs than any alive node has waits for ever, and Ray's 'cannot be
        scheduled' warning goes to its logs (log_to_driver=False): refused on a Ray started here (its
        nodes are all there will be), said once per count on a cluster (an autoscaler may add a node)."""
        checked = self.__dict__.setdefault("_fits", set())
        if threads in checked:
            return
        checked.add(threads)
        try:
            cpus = [float((n.get("Resources") or {}).get("CPU", 0)) for n in self.ray.nodes() if n.get("Alive")]
        except Exception:  # noqa: BLE001 — no node list (a Ray client): Ray schedules as it can
            return
        if any(c >= threads for c in cpus):
            return
        most = f"its largest alive node has {max(cpus):g}" if cpus else "it has no alive node"
        if not self.address:
            raise RayUnavailable(f"--threads {threads}: each trial asks Ray for {threads} CPUs, and the Ray started "
                                 f"here has {max(cpus, default=0):g}: no trial would ever start; give fewer threads")
        from .progress import bars_aside
        with bars_aside():
            warnings.warn(FerristorWarning(
                f"--threads {threads}: no node of the Ray cluster at {self.address} has {threads} CPUs ({most}): "
                f"its trials wait until such a node joins (an autoscaler may add one), else for ever; "
                f"Ctrl-C stops the sweep, which resumes with fewer threads"), stacklevel=2)

    def has_room(self) -> bool:
        return True  # Ray queues tasks until the cluster has room for them

    def busy(self) -> bool:
        return bool(self.running)

    def submit(self, job: Job) -> None:
        self._check_fits(job.threads)
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
