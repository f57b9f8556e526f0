"""What runs where a trial runs (this process, a worker process, a Ray worker): train one trial and
report events to the driver through ``emit``.

Events, in order: ``("started", {"host", "pid", "attempt"})``, then ``("checkpoint_dropped", why)``
when the checkpoint it was given cannot be used (unreadable, or not loading into the trial's
network: the trial starts over from step 0, which gives the same numbers, training being
deterministic), then ``("eval", record)`` per
evaluation and ``("checkpoint", {"step", "state"})`` per checkpoint (``state``: bytes of ``torch.save`` of train's state), then
``("done", results)``, or ``("error", text)`` when the trial raised. A worker that dies sends nothing
more; the executor reports that as ``("crashed", text)``. The driver alone writes anything down.
A worker process or Ray task also sends ``("warning", …)`` for each warning it shows
(:func:`warnings_to`), at any time: its executor raises it again in the driver (``executors.warn_again``).
"""
from __future__ import annotations

import contextlib
import io
import os
import pickle
import socket
import traceback
import warnings
from dataclasses import dataclass
from typing import Any, Callable

import torch

Emit = Callable[[str, Any], None]


@dataclass
class Job:
    key: str
    config: dict  # the trial's resolved config (configs.canonical form)
    attempt: int  # 1 for the first try
    resume: bytes | None = None  # the latest checkpoint the driver holds, or None
    threads: int = 1

    @property
    def dataset(self) -> str:
        """The key of the data it trains on (``provenance.data_key``)."""
        from .provenance import data_key
        return data_key(self.config)


def state_to_bytes(state: dict) -> bytes:
    buf = io.BytesIO()
    torch.save(state, buf)
    return buf.getvalue()


def state_from_bytes(blob: bytes) -> dict:
    """A state from :func:`state_to_bytes`. Tensors, numbers, strings and containers only (``weights_only``,
    as ``train`` reads its checkpoint.pt): anything else in the store is refused, never unpickled."""
    return torch.load(io.BytesIO(blob), weights_only=True)


def _first_line(e: BaseException) -> str:
    return f"{type(e).__name__}: {(str(e).strip().splitlines() or [''])[0][:200]}".rstrip(": ")


def load_resume(blob: bytes, cfg) -> tuple[dict | None, str | None]:
    """(the state to resume ``cfg``'s trial from, None), or (None, why the checkpoint ``blob`` cannot
    be used): unreadable, not a checkpoint, or not loading into the network and optimizer the trial
    builds (a checkpoint of another code version, say). Loaded into a copy of them built here, the
    way ``train`` builds its own, so a checkpoint that passes loads there too."""
    from ..experiments.run_folder import _CHECKPOINT_FIELDS, restore_torch_rng
    from ..experiments.run_folder import damaged_member
    damaged = damaged_member(io.BytesIO(blob))  # None for what is no zip: torch.load says what it is
    if damaged is not None:
        return None, f"its bytes are corrupt ({damaged} fails its checksum)"
    try:
        state = state_from_bytes(blob)
    except Exception as e:  # noqa: BLE001 — whatever torch says of a truncated or foreign blob
        return None, f"it cannot be read ({_first_line(e)})"
    if not isinstance(state, dict):
        return None, f"it holds a {type(state).__name__}, not a checkpoint"
    missing = [repr(k) for k in _CHECKPOINT_FIELDS if k not in state]
    if missing:
        return None, "it lacks " + ", ".join(missing)
    wrong = [f"{k!r} is a {type(state[k]).__name__}" for k, t in _CHECKPOINT_FIELDS.items()
             if not isinstance(state[k], t) or isinstance(state[k], bool)]
    if wrong or state["step"] < 0:
        return None, "; ".join(wrong) or f"its step is {state['step']}"
    from ..backend import use_backend
    from ..experiments.train import build_model, build_optimizer
    with use_backend(cfg.backend):
        model = build_model(cfg)  # its errors are the trial's own: train meets them again
        optimizer = build_optimizer(cfg, model)
        try:
            with torch.random.fork_rng(devices=[]):  # this check draws nothing and sets nothing of the trial's
                model.load_state_dict(state["model"])
                optimizer.load_state_dict(state["optimizer"])
                restore_torch_rng(state)
        except Exception as e:  # noqa: BLE001 — any refusal of the state
            return None, f"it does not load into the trial's network ({_first_line(e)})"
        finally:
            optimizer.release()
    return state, None


@contextlib.contextmanager
def warnings_to(emit: Emit):
    """Send the warnings this process shows to the driver, as ``("warning", (message, category,
    filename, lineno))`` events, instead of printing them raw (file, line and source of the ``warn``
    call) on a stderr the user shares with the driver or never sees (Ray's logs). The driver raises
    them again, so a command line shows them as its own: one ``warning: …`` line, once (the driver has
    often shown the same one already: it checks every trial's config before any runs)."""
    from ..errors import FerristorWarning

    def show(message, category, filename, lineno, file=None, line=None):
        payload = (message, category, filename, lineno)
        # ferristor's and Python's own classes unpickle in any driver; another package's warning (or
        # one that does not pickle) goes as its text, lest unpickling it fail there as a crash of the trial
        if not (isinstance(message, FerristorWarning) or category.__module__ == "builtins") or not _pickles(payload):
            payload = (f"{category.__name__}: {message}", UserWarning, filename, lineno)
        emit("warning", payload)
    with warnings.catch_warnings():
        warnings.showwarning = show
        yield


def _pickles(obj) -> bool:
    """Whether ``obj`` survives the trip: a warning whose __init__ takes other arguments than its args
    (NoEffectWarning) pickles, then fails to unpickle at the driver."""
    try:
        pickle.loads(pickle.dumps(obj))
        return True
    except Exception:  # noqa: BLE001 — whatever pickle refuses
        return False


def run_job(job: Job, dataset, emit: Emit) -> None:
    """Train ``job`` on ``dataset``, emitting events; never raises for a failure of the trial itself."""
    from ..experiments.train import train
    from .configs import build

    emit("started", {"host": socket.gethostname(), "pid": os.getpid(), "attempt": job.attempt})
    try:
        cfg = build({**job.config, "threads": job.threads, "data_dir": None})
        resume = None
        if job.resume is not None:
            resume, why = load_resume(job.resume, cfg)
            if why:  # the driver drops it and says so; the trial starts over, to the same numbers
                emit("checkpoint_dropped", why)
        results = train(cfg, None, progress=False, dataset=dataset, resume_state=resume,
                        on_eval=lambda record: emit("eval", dict(record)),
                        on_checkpoint=lambda state: emit("checkpoint", {"step": state["step"],
                                                                         "state": state_to_bytes(state)}))
    except Exception as e:  # noqa: BLE001 — the driver records it, retries and reports it
        emit("error", f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=8)}")
        return
    emit("done", results)
