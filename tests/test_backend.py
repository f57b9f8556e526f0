"""Which implementation runs: numba on the CPU, the fused Triton kernels on a GPU that Triton
supports, torch's tensor operations where forced or where neither applies."""
from types import SimpleNamespace

import pytest
import torch

import ferristor.backend as B


def _gpu_tensor(index=0):
    return SimpleNamespace(is_cuda=True, device=torch.device("cuda", index))


@pytest.fixture
def triton_present(monkeypatch):
    monkeypatch.setattr(B, "triton_available", lambda: True)
    monkeypatch.setattr(torch.version, "hip", None)
    B._triton_gpu.cache_clear()
    yield
    B._triton_gpu.cache_clear()


@pytest.mark.parametrize("capability,fused", [((6, 0), False), ((7, 0), True), ((9, 0), True)])
def test_triton_runs_on_gpus_it_supports_and_the_dense_sampler(monkeypatch, triton_present, capability, fused):
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda index: capability)
    assert B.triton_for(_gpu_tensor()) == fused
    assert not B.triton_for(_gpu_tensor(), "sparse")
    with B.use_backend("torch"):
        assert not B.triton_for(_gpu_tensor())


def test_cpu_tensors_never_take_triton(triton_present):
    assert not B.triton_for(torch.zeros(1))
    assert B.backend_for("cpu") == ("numba" if B.numba_available() else "torch")
    with B.use_backend("torch"):
        assert B.backend_for("cpu") == "torch"


def test_a_forced_backend_holds_in_its_own_thread_only():
    """Trials side by side in threads each force their own backend (sweeps.executors.ThreadExecutor)."""
    import threading
    seen = {}
    inside, release = threading.Event(), threading.Event()

    def other():
        with B.use_backend("torch"):
            seen["other, forced"] = B.backend_for("cpu")
            inside.set()
            release.wait(5)

    t = threading.Thread(target=other)
    t.start()
    inside.wait(5)
    seen["main, meanwhile"] = B.backend_for("cpu")
    release.set()
    t.join()
    assert seen == {"other, forced": "torch", "main, meanwhile": "numba" if B.numba_available() else "torch"}
    assert B.backend_for("cpu") == seen["main, meanwhile"]
