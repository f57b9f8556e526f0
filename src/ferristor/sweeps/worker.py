"""What runs where a trial runs (this process, a worker process, a Ray worker): train one trial and
report events to the driver through ``emit``.

Events, in order: ``("started", {"host", "pid", "attempt"})``, then ``("eval", record)`` per
evaluation and ``("checkpoint", {"step", "state"})`` per checkpoint (``state``: bytes of ``torch.save`` of train's state), then
``("done", results)``, or ``("error", text)`` when the trial raised. A worker that dies sends nothing
more; the executor reports that as ``("crashed", text)``. The driver alone writes anything down.
"""
from __future__ import annotations

import io
import os
import socket
import traceback
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
        return self.config["dataset"]


def state_to_bytes(state: dict) -> bytes:
    buf = io.BytesIO()
    torch.save(state, buf)
    return buf.getvalue()


def state_from_bytes(blob: bytes) -> dict:
    return torch.load(io.BytesIO(blob), weights_only=False)


def run_job(job: Job, dataset, emit: Emit) -> None:
    """Train ``job`` on ``dataset``, emitting events; never raises for a failure of the trial itself."""
    from ..experiments.train import train
    from .configs import build

    emit("started", {"host": socket.gethostname(), "pid": os.getpid(), "attempt": job.attempt})
    try:
        cfg = build({**job.config, "threads": job.threads, "data_dir": None})
        resume = state_from_bytes(job.resume) if job.resume is not None else None
        results = train(cfg, None, progress=False, dataset=dataset, resume_state=resume,
                        on_eval=lambda record: emit("eval", dict(record)),
                        on_checkpoint=lambda state: emit("checkpoint", {"step": state["step"],
                                                                         "state": state_to_bytes(state)}))
    except Exception as e:  # noqa: BLE001 — the driver records it, retries and reports it
        emit("error", f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=8)}")
        return
    emit("done", results)
