"""The graphed GPU chunks (``nn.train_gpu`` via ``experiments.fast_step``) train as the plain loop
does: the same masks (event counts equal exactly), the same transfers and counters, hidden weights
equal but where the passes' float sums, ordered differently, tip a rounding. On a CPU the same step
code runs eagerly, with the Triton kernel in its interpreter; on a GPU also graphed."""
import numpy as np
import pytest
import torch

pytest.importorskip("triton", reason="Triton is in the dev extra (make install)")

from ferristor.backend import use_backend  # noqa: E402
from ferristor.experiments import fast_step  # noqa: E402
from ferristor.nn import HybridConfig, HybridMLP  # noqa: E402
from ferristor.nn import functional as F  # noqa: E402
from ferristor.nn.mlp import NetworkSpec  # noqa: E402
from ferristor.optim import HybridSGD  # noqa: E402

SIZES, R, N, STEPS = (20, 12, 8, 4), 3, 50, 24
# Tests that run the Triton kernels in the interpreter on a CPU (~0.1 s a program): 5 steps at k = 2
# still make two transfers, chunks of several steps and a step after the last transfer, in ~1/5 of
# the interpreter's time of 24 steps at k = 7.
SHORT = {"steps": 5, "k": 2}
DEV = "cuda" if torch.cuda.is_available() else "cpu"  # on a CPU the Triton kernel runs in its interpreter


def _problem(mode, device=DEV, transfer=None, steps=STEPS, k=7, **spec):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(N, SIZES[0], generator=g)
    y = torch.randint(0, SIZES[-1], (N,), generator=g)
    idx = torch.randint(0, N, (R, steps), generator=g).numpy()
    cfg = HybridConfig(mode=mode) if transfer is None else HybridConfig(mode=mode, transfer=transfer)
    model = HybridMLP(NetworkSpec(sizes=SIZES, **spec), config=cfg, replicas=R,
                      seeds=[5, 6, 7]).to(device)
    opt = HybridSGD(model.parameters(), lr=0.5, p=0.4, k=k)
    return model, opt, x.to(device), y.to(device), idx


def _plain(model, opt, x, y, idx):
    for t in range(idx.shape[1]):
        xb, yb = x[idx[:, t:t + 1]], y[idx[:, t:t + 1]]
        loss = F.cross_entropy(model(xb), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return float(loss.detach())


def _graphed(model, opt, x, y, idx, graphs=True, piece=None):
    """The chunks over idx, handed over ``piece`` steps at a time (default: all at once)."""
    groups = {id(p): g for g in opt.param_groups for p in g["params"]}
    plan = fast_step._GpuChunks(model, opt, groups, x, y)
    plan.steps.graphs_on &= graphs
    model.last_plan = plan
    piece = piece or idx.shape[1]
    for start in range(0, idx.shape[1], piece):
        loss = fast_step._run_chunks(plan, x, y, idx[:, start:start + piece], min(piece, idx.shape[1] - start))
    return float(loss)


def _state(model):
    model.flush_counts()
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


# One case in `make test`; every mode and pass on a CPU (Triton's interpreter, ~15 s each) in `make test-slow`.
@pytest.mark.parametrize("mode,spec,passes", [
    ("hm-var", {}, "fused"),
    *[pytest.param(m, s, p, marks=pytest.mark.slow) for m, s in (("hm-var", {}), ("hm", {"norm": "none"}), ("fp", {"output_norm": False}))
      for p in ("torch", "fused") if (m, p) != ("hm-var", "fused")]])
def test_chunks_follow_the_plain_loop(mode, spec, passes, monkeypatch):
    monkeypatch.setenv("FERRISTOR_GPU_PASSES", passes)
    with use_backend("torch"):
        ref_model, ref_opt, x, y, idx = _problem(mode, **SHORT, **spec)
        ref_loss = _plain(ref_model, ref_opt, x, y, idx)
    model, opt, x, y, idx = _problem(mode, **SHORT, **spec)
    loss = _graphed(model, opt, x, y, idx, graphs=False)
    # hm's transfers draw nothing: inside the chunks; hm-var's need the fused GPU transfer for that
    assert model.last_plan.in_graph == (mode != "hm-var" or DEV == "cuda")
    assert (model.last_plan.steps.fused is not None) == (passes == "fused")
    ref, got = _state(ref_model), _state(model)
    assert ref.keys() == got.keys()
    for name in ref:
        if name.endswith(("_events", "_transfers", "_updates", "seeds")):
            assert torch.equal(ref[name], got[name]), name  # masks and schedule: exactly the loop's
        elif mode == "fp":
            assert torch.allclose(ref[name], got[name], atol=1e-3), name
        else:  # hidden integers and the levels transferred from them
            assert (ref[name] == got[name]).float().mean() > 0.99, name
    if mode != "fp":
        assert int(ref["layers.0.weight_transfers"][0]) == SHORT["steps"] // SHORT["k"] == 2  # transfers happened
    assert loss == pytest.approx(ref_loss, rel=1e-3)
    for p in opt.param_groups[0]["params"]:
        assert opt.state[p]["inputs"] == SHORT["steps"]


@pytest.mark.slow
def test_a_sequential_mlp_runs_the_gpu_chunks_through_its_view():
    """A user's Sequential of the same layers takes the same graphed chunks as the HybridMLP (fit's
    path on a GPU): the same steps, the same bits."""
    import copy

    from ferristor.nn import Normalize
    from ferristor.nn.mlp import mlp_view
    model, opt, x, y, idx = _problem("hm")
    twin = copy.deepcopy(model)
    mods = []
    for li, (layer, norm) in enumerate(zip(twin.layers, twin.norms)):
        mods += [layer, norm] + ([torch.nn.ReLU()] if li < len(twin.layers) - 1 else [])
    assert all(isinstance(n, Normalize) for n in twin.norms)
    view = mlp_view(torch.nn.Sequential(*mods))
    assert view is not None and view.spec == model.spec
    twin_opt = HybridSGD(view.parameters(), lr=0.5, p=0.4, k=7)
    assert _graphed(view, twin_opt, x, y, idx, graphs=False) == _graphed(model, opt, x, y, idx, graphs=False)
    for a, b in zip(_state(model).values(), _state(view).values()):
        assert torch.equal(a, b)


@pytest.mark.slow
def test_passes_at_once_between_transfers_train_as_step_by_step(monkeypatch):
    """The steps between two transfers run their passes as one batch (``_segments``): the same masks
    and schedule as the passes step by step, the same hidden integers but where a float sum ordered
    otherwise tips a rounding; and the segments are cut after every step where a transfer falls."""
    import ferristor.nn.train_gpu as TG
    states = []
    for at_once in (True, False):
        monkeypatch.setattr(TG, "BLOCK_PASSES", at_once)
        model, opt, x, y, idx = _problem("hm")
        _graphed(model, opt, x, y, idx, graphs=False)
        steps = model.last_plan.steps
        assert steps.block_steps == (TG.MAX_GRAPH_STEPS if at_once else 1)
        states.append(_state(model))
    a, b = states
    for name in a:
        if name.endswith(("_events", "_transfers", "_updates")):
            assert torch.equal(a[name], b[name]), name
        else:
            assert (a[name] == b[name]).float().mean() > 0.99, name
    steps.block_steps = 5
    assert steps._segments(16, {6: [0], 8: [0, 1]}) == [(0, 5), (5, 7), (7, 9), (9, 14), (14, 16)]
    steps.block_steps = 1
    assert steps._segments(3, {0: [0]}) == [(0, 1), (1, 2), (2, 3)]


def test_the_block_of_steps_is_bounded_by_memory(monkeypatch):
    import ferristor.nn.train_gpu as TG
    monkeypatch.setattr(TG, "BLOCK_BYTES", 4 * 4 * R * sum(SIZES) * 10)
    model, opt, x, y, idx = _problem("hm")
    _graphed(model, opt, x, y, idx[:, :2], graphs=False)
    assert model.last_plan.steps.block_steps == 10


@pytest.mark.parametrize("transfer", [None, pytest.param("quantiles", marks=pytest.mark.slow)])
def test_noisy_transfers_inside_the_chunks_follow_the_plain_loop(transfer, monkeypatch):
    """hm-var's transfers in the chunks, numbered from a counter on the device: on a CPU, by making
    the layers take the fused transfer (Triton's interpreter) as a GPU would. ``quantiles``: the
    circuit transfer from its tabulated distribution, whose fused kernel graphs capture too."""
    import ferristor.nn.hybrid as H
    from ferristor.circuit.transfer import TransferConfig
    tc = None if transfer is None else TransferConfig(model="circuit", circuit_sampler="quantiles", circuit_table_draws=4096)
    with use_backend("torch"):
        ref_model, ref_opt, x, y, idx = _problem("hm-var", "cpu", transfer=tc, **SHORT)
        _plain(ref_model, ref_opt, x, y, idx)
    model, opt, x, y, idx = _problem("hm-var", "cpu", transfer=tc, **SHORT)
    monkeypatch.setattr(H, "triton_for", lambda t, sampler="dense": True)
    _graphed(model, opt, x, y, idx, graphs=False)
    assert model.last_plan.in_graph
    ref, got = _state(ref_model), _state(model)
    assert int(ref["layers.0.weight_transfers"][0]) == 2  # two noisy transfers: the counter moved on between them
    for name in ref:
        if name.endswith(("_events", "_transfers", "_updates")):
            assert torch.equal(ref[name], got[name]), name
        elif name.endswith(("_hidden", "weight")):
            assert (ref[name] == got[name]).float().mean() > 0.99, name


def test_an_unknown_passes_choice_is_refused_by_name(monkeypatch):
    from ferristor.errors import ConfigError
    monkeypatch.setenv("FERRISTOR_GPU_PASSES", "fast")
    model, opt, x, y, idx = _problem("hm")
    with pytest.raises(ConfigError, match="FERRISTOR_GPU_PASSES"):
        _graphed(model, opt, x, y, idx)
    from ferristor.experiments.config import task_config
    task_config("mnist", "hm")  # a CPU run does not read it
    import ferristor.config_base as C
    monkeypatch.setattr(C, "available_devices", lambda: ["cpu", "cuda", "cuda:0"])
    with pytest.raises(ConfigError, match="FERRISTOR_GPU_PASSES"):  # a GPU run: before any work
        task_config("mnist", "hm", device="cuda")


def test_a_model_with_gpu_chunks_still_copies_and_pickles():
    """The cached chunks (and on a GPU their captured graphs) stay with the process, not the model."""
    import copy
    import io
    model, opt, x, y, idx = _problem("hm", DEV)
    fast_step._run_chunks(fast_step._gpu_plan(model, opt, x, y), x, y, idx[:, :3], 3)
    assert model._gpu_chunks is not None
    twin = copy.deepcopy(model)
    assert not hasattr(twin, "_gpu_chunks") and torch.equal(twin.layers[0].weight, model.layers[0].weight)
    torch.save(model, io.BytesIO())


def test_applies_only_where_the_graphed_chunks_can_run():
    model, opt, x, y, idx = _problem("hm", "cpu")
    xb = x[idx[:, :1]]
    assert not fast_step.gpu_applies(model, opt, xb)  # CPU tensors: the numba chunks instead
    assert fast_step.applies(model, opt, True, xb) == model.fused_ok(xb)


@pytest.mark.gpu
@pytest.mark.parametrize("passes", ["torch", "fused"])
@pytest.mark.parametrize("mode", ["hm-var", "hm"])
def test_graphs_replay_what_the_eager_steps_compute(mode, passes, monkeypatch):
    monkeypatch.setenv("FERRISTOR_GPU_PASSES", passes)
    """hm-var: chunks of k = 7 steps cut at the transfers; hm: the transfers inside the chunks, here
    handed 14 steps at a time, so that every chunk after the second replays a captured graph."""
    a, b = _problem(mode, "cuda"), _problem(mode, "cuda")
    idx = np.concatenate([a[4], a[4]], 1)  # 48 steps: pieces of 14, 14, 14 and 6
    a, b = a[:4] + (idx,), b[:4] + (idx,)
    la = _graphed(*a, graphs=False, piece=14)
    lb = _graphed(*b, graphs=True, piece=14)
    assert b[0].last_plan.steps._graphs  # something was captured and replayed
    assert la == lb and all(torch.equal(u, v) for u, v in zip(_state(a[0]).values(), _state(b[0]).values()))


@pytest.mark.gpu
def test_fit_on_the_gpu_runs_the_graphed_chunks_with_the_cpu_masks():
    """``run_fit`` on a GPU takes the graphed chunks, and draws what the CPU run draws: the event
    counts (masks only, count_zero) and transfers equal the numba chunks' exactly."""
    from ferristor.experiments.fit import run_fit
    states = []
    for dev in ("cpu", "cuda"):
        model, opt, x, y, _ = _problem("hm-var", dev)
        if dev == "cuda":
            assert fast_step.applies(model, opt, True, x[:R, None])
        run_fit(model, (x.cpu(), y.cpu()), (x.cpu(), y.cpu()), epochs=4, optimizer=opt, progress=False)
        assert (getattr(model, "_gpu_chunks", None) is not None) == (dev == "cuda")
        states.append(_state(model))
    cpu, gpu = states
    for name in cpu:
        if name.endswith(("_events", "_transfers", "_updates")):
            assert torch.equal(cpu[name], gpu[name]), name
        elif name.endswith("_hidden"):
            assert (cpu[name] == gpu[name]).float().mean() > 0.9, name


@pytest.mark.slow
def test_a_failed_capture_runs_the_chunk_eagerly_and_ends_captures_for_the_process(monkeypatch):
    """PyTorch cannot begin a capture again once one has failed in the process; the chunks then run
    eagerly, with the results of chunks that never tried (here on a CPU, with the capture faked)."""
    import contextlib
    from ferristor.errors import FerristorWarning
    from ferristor.nn import train_gpu
    attempts = []

    @contextlib.contextmanager
    def failing_capture(*args, **kwargs):
        attempts.append(kwargs)
        raise RuntimeError("captures_underway.empty() INTERNAL ASSERT FAILED")
        yield

    class Fake:
        def wait_stream(self, other):
            pass

    monkeypatch.setattr(train_gpu, "_graphs_broken", [])
    monkeypatch.setattr(train_gpu, "_capture_stream", lambda device: Fake())
    monkeypatch.setattr(torch.cuda, "CUDAGraph", Fake)
    monkeypatch.setattr(torch.cuda, "graph", failing_capture)
    monkeypatch.setattr(torch.cuda, "current_stream", lambda *a: Fake())
    monkeypatch.setattr(torch.cuda, "stream", lambda s: contextlib.nullcontext())
    ref_model, ref_opt, x, y, idx = _problem("hm", "cpu")
    _graphed(ref_model, ref_opt, x, y, idx, graphs=False)
    model, opt, x, y, idx = _problem("hm", "cpu")
    groups = {id(p): g for g in opt.param_groups for p in g["params"]}
    plan = fast_step._GpuChunks(model, opt, groups, x, y)
    plan.steps.graphs_on = True  # as on a GPU: the second chunk of a shape is captured
    with pytest.warns(FerristorWarning, match="capture failed"):
        for start in range(0, STEPS, 7):  # k = 7: chunks of 7, 7, 7 and 3 steps, a transfer after each 7
            n = min(7, STEPS - start)
            fast_step._run_chunks(plan, x, y, idx[:, start:start + n], n)
    assert len(attempts) == 1 and attempts[0]["capture_error_mode"] == "thread_local"
    assert len(train_gpu._graphs_broken) == 1 and not plan.steps._graphs
    ref, got = _state(ref_model), _state(model)
    assert all(torch.equal(ref[k], got[k]) for k in ref)


@pytest.mark.slow
def test_the_fused_passes_read_column_major_data_as_row_major(monkeypatch):
    """The fused passes index a sample's features by the data's row stride: the chunks take a
    contiguous copy, so a transposed (column-major) training set trains alike."""
    monkeypatch.setenv("FERRISTOR_GPU_PASSES", "fused")
    states = []
    for layout in ("rows", "columns"):
        model, opt, x, y, idx = _problem("hm")
        if layout == "columns":
            x = x.t().contiguous().t()
            assert not x.is_contiguous()
        _graphed(model, opt, x, y, idx, graphs=False)
        assert model.last_plan.steps.fused is not None
        states.append(_state(model))
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])


@pytest.mark.gpu
def test_captures_never_run_on_a_stream_a_trial_may_hold():
    """Trials' streams come from torch's pool of 32 per priority, handed out in turn; the capture
    stream is none of them, however many are handed out."""
    from ferristor.nn import train_gpu
    trial_streams = [torch.cuda.Stream() for _ in range(70)]
    capture = train_gpu._capture_stream(torch.device("cuda"))
    assert all(s.cuda_stream != capture.cuda_stream for s in trial_streams)
    assert train_gpu._capture_stream(torch.device("cuda")) is capture
