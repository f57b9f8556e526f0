"""Which implementation runs the rule and the passes: chosen by the device the tensors live on, here only.

``numba``: ferristor's fused CPU kernels (deterministic, the same bits on every x86 CPU).
``torch``: tensor operations, the reference the kernels are tested against, and the passes of a GPU.
``triton``: the fused update kernel a CUDA GPU runs (``rule.kernels_triton``, dense sampler), when
Triton imports (CUDA builds of torch ship it); equal to the torch path bit for bit.
On a CPU tensor the numba path runs when numba is installed, unless :func:`use_backend` forces torch;
forcing torch also keeps a GPU on the tensor operations.
"""
from __future__ import annotations

import contextlib
import threading
from functools import lru_cache
from typing import Iterator

import torch

from .errors import ConfigError

BACKENDS = ("auto", "numba", "torch")
# per thread: trials side by side in threads (sweeps.executors.ThreadExecutor) each force their own
_local = threading.local()


def _forced() -> str:
    return getattr(_local, "forced", "auto")


@lru_cache(maxsize=None)
def _importable(name: str) -> bool:
    import importlib
    try:
        importlib.import_module(name)
    except ImportError:
        return False
    return True


def numba_available() -> bool:
    return _importable("numba")


def backend_for(device: torch.device | str) -> str:
    """'numba' or 'torch' for tensors on ``device``."""
    kind = device.type if isinstance(device, torch.device) else torch.device(device).type
    if kind != "cpu":
        return "torch"
    if _forced() == "torch":
        return "torch"
    if not numba_available():
        if _forced() == "numba":
            raise ConfigError("backend", "numba", "'auto' or 'torch': numba is not installed")
        return "torch"
    return "numba"


@contextlib.contextmanager
def use_backend(name: str) -> Iterator[None]:
    """Run a block with the CPU backend forced: ``with use_backend("torch"): …`` (tests, reference runs);
    in this thread only."""
    if name not in BACKENDS:
        raise ConfigError("backend", name, "one of " + ", ".join(repr(b) for b in BACKENDS))
    previous, _local.forced = _forced(), name
    try:
        yield
    finally:
        _local.forced = previous


def numba_for(t: torch.Tensor) -> bool:
    """Whether tensor ``t`` is handled by the numba kernels (a CPU tensor, the backend not forced to torch)."""
    return t.is_cpu and cpu_kernels()


def cpu_kernels() -> bool:
    """Whether CPU tensors run the numba kernels now (``backend_for('cpu') == 'numba'``, without the
    device object: this is asked once per parameter and step)."""
    return _forced() != "torch" and numba_available()


def triton_available() -> bool:
    return _importable("triton")


def triton_for(t: torch.Tensor, sampler: str = "dense") -> bool:
    """Whether an update of tensor ``t`` runs the fused Triton kernel: a CUDA tensor on a GPU that
    Triton supports, the dense sampler, Triton present, the backend not forced to torch."""
    return (t.is_cuda and sampler == "dense" and _forced() != "torch" and triton_available()
            and _triton_gpu(t.device.index if t.device.index is not None else torch.cuda.current_device()))


# Held around every Triton launch. Trials in threads (sweeps.executors.ThreadExecutor) start together,
# and a kernel's first launch loads its binary with the GIL released after Triton has already made
# it visible to other threads, so a second thread could launch it before it is loaded. Replays of
# captured graphs launch nothing from Python, so only eager and captured chunks take it.
TRITON_LAUNCH = threading.Lock()

TRITON_MIN_CAPABILITY = (7, 0)  # Triton compiles for NVIDIA GPUs from Volta on; older ones keep the tensor path


@lru_cache(maxsize=None)
def _triton_gpu(index: int) -> bool:
    if torch.version.hip is not None:  # AMD GPUs: Triton's own backend
        return True
    return torch.cuda.get_device_capability(index) >= TRITON_MIN_CAPABILITY


ENV_GPU_PASSES = "FERRISTOR_GPU_PASSES"
GPU_PASSES = ("torch", "fused")


def gpu_passes() -> str:
    """The passes of the GPU chunks' steps (``nn.train_gpu``), from ``FERRISTOR_GPU_PASSES``: 'torch'
    (the default: ~22 torch kernels per step, measured on an H200) or 'fused' (2L + 1 Triton
    launches, ``nn.passes_triton``; tested in Triton's interpreter, not yet timed on a GPU)."""
    import os
    value = os.environ.get(ENV_GPU_PASSES, "torch")
    if value not in GPU_PASSES:
        raise ConfigError(ENV_GPU_PASSES, value, "'torch' or 'fused'")
    return value


_modules: dict = {}


def cpu_module(name: str):
    """A module of kernels (numba's ``'nn.passes_cpu'``, ``'rule.kernels_cpu'``…, or Triton's
    ``'rule.kernels_triton'``), imported on first use: numba and Triton take a moment to import and
    torch-only paths never need them; an ``import`` statement in a
    per-step function would cost more than a small kernel."""
    mod = _modules.get(name)
    if mod is None:
        import importlib
        mod = _modules[name] = importlib.import_module(f"ferristor.{name}")
    return mod
