"""Every Triton launch of the GPU engine compiles for NVIDIA's sm_80 (A100) and sm_90 (H100, H200)
without spilling registers — checked on a CPU: the launches are recorded under Triton's interpreter
(the papers' three networks, every mode, the fused passes and transfers, every option of the
update and the transfer), then compiled ahead of time (``tests/gpu_builds.py``). The interpreter
alone accepts code the compiler refuses; a spill would turn a fused kernel's registers into memory
traffic. On a machine with a GPU the GPU tests compile these kernels for real instead."""
import pytest
import torch

pytest.importorskip("triton", reason="Triton is in the dev extra (make install)")
if torch.cuda.is_available():
    pytest.skip("a GPU compiles the kernels for real in their own tests", allow_module_level=True)

from . import gpu_builds  # noqa: E402

from ferristor.backend import use_backend  # noqa: E402
from ferristor.circuit.transfer_triton import table_transfer_  # noqa: E402
from ferristor.experiments import fast_step  # noqa: E402
from ferristor.experiments.config import TASKS  # noqa: E402
from ferristor.nn import HybridConfig, HybridMLP  # noqa: E402
from ferristor.nn import hybrid as H  # noqa: E402
from ferristor.nn.mlp import NetworkSpec  # noqa: E402
from ferristor.optim import HybridSGD  # noqa: E402
from ferristor.rule.kernels_triton import update_  # noqa: E402


def _engine_launches(monkeypatch):
    """Two graphed-chunk steps (k = 1: a transfer after each) of each paper network in each mode,
    both kinds of passes, on the layers' fused GPU transfer."""
    monkeypatch.setattr(H, "triton_for", lambda t, sampler="dense": True)
    R, N = 2, 4
    for task in TASKS.values():
        spec = NetworkSpec(sizes=task["sizes"], norm=task["norm"], output=task["output"])
        for mode in ("hm-var", "hm", "fp"):
            for passes in ("torch", "fused"):
                monkeypatch.setenv("FERRISTOR_GPU_PASSES", passes)
                model = HybridMLP(spec, config=HybridConfig(mode=mode), replicas=R, seeds=[1, 2])
                opt = HybridSGD(model.parameters(), lr=task["lr"], p=task["p"], k=1)
                x = torch.rand(N, task["sizes"][0])
                y = torch.zeros(N, dtype=torch.int64)
                idx = torch.zeros((R, 2), dtype=torch.int64).numpy()
                groups = {id(p): g for g in opt.param_groups for p in g["params"]}
                plan = fast_step._GpuChunks(model, opt, groups, x, y)
                plan.steps.graphs_on = False
                fast_step._run_chunks(plan, x, y, idx, 2)


def _option_launches():
    """The update with every rounding, counting rule, kind of gradient and step source; the transfer
    with and without level means, noise, the sign fold and a device counter."""
    R, I, O = 2, 5, 7
    keys, step = torch.ones((R, 2), dtype=torch.int64), torch.zeros(1, dtype=torch.int64)
    state, pending = torch.zeros(R, I, O), torch.zeros(R, I, O, dtype=torch.uint8)
    factors = dict(delta=torch.ones(R, O), x=torch.ones(R, I))
    for fp in (False, True):
        for rounding in ("stochastic", "nearest", "truncate"):
            for count_zero in (True, False):
                for grad in (None, torch.ones(R, I, O)):
                    for step_tensor in (None, step):
                        update_(state, pending, keys, 3, fp=fp, lr=0.1, p=0.2, lsb=2.0 ** -9, rounding=rounding,
                                max_hidden=511, count_zero=count_zero, grad=grad, step_tensor=step_tensor,
                                **({} if grad is not None else factors))
    for ideal in (True, False):
        for sigma in (0.0, 0.1):
            for fold in (True, False):
                for counter in (None, step):
                    table_transfer_(state, torch.empty_like(state), shift=6, means=torch.arange(8.0), ideal=ideal,
                                    sigma=sigma, fold=fold, level_step=0.01, keys=keys, index=2, index_tensor=counter)


@pytest.fixture(scope="module")
def launches():
    with pytest.MonkeyPatch.context() as mp, use_backend("torch"), gpu_builds.recorded_launches() as specs:
        _engine_launches(mp)
        _option_launches()
    return specs


def test_the_engine_launches_every_kernel(launches):
    names = {s["name"] for s in launches}
    assert names == {"_update", "_table_transfer", "_forward", "_backward", "_loss_grad"}
    # the fused passes of all three networks (softmax and sigmoid outputs), hybrid and fp updates
    assert {s["constexprs"]["SIGMOID"] for s in launches if s["name"] == "_loss_grad"} == {True, False}
    assert {s["constexprs"]["n_in"] for s in launches if s["name"] == "_forward"} >= {784, 200, 100, 20}
    assert len([s for s in launches if s["name"] == "_update"]) >= 2 * 3 * 2 * 2 * 2 // 2


def _refused(launches):
    spec = next(s for s in launches if s["name"] == "_forward")
    return {**spec, "constexprs": {**spec["constexprs"], "BO": 100}}  # not a power of two: tl.arange refuses


@pytest.fixture(scope="module")
def built(launches):
    """Every launch and one the compiler refuses, built for each architecture in one process."""
    return gpu_builds.build_all([*launches, _refused(launches)], (80, 90))


@pytest.mark.parametrize("arch", [80, 90])
def test_every_launch_compiles_without_spilling(launches, built, arch):
    assert len(built[arch]) == len(launches) + 1
    results = built[arch][:-1]  # the refused spec last
    failed = [f"{r['name']} {r['constexprs']}: {r['error']}" for r in results if not r["ok"]]
    assert not failed, "\n".join(failed)
    spilled = [f"{r['name']} {r['constexprs']}: {r['regs']} registers, {r['local']} B local, {r['stack']} B stack"
               for r in results if r["local"] or r["stack"]]
    assert not spilled, "\n".join(spilled)
    assert all(r["regs"] <= 255 for r in results)


def test_a_spec_the_compiler_refuses_is_reported_not_hidden(launches, built):
    result = built[90][-1]
    assert result["constexprs"] == _refused(launches)["constexprs"]
    assert not result["ok"] and "power of 2" in result["error"].lower().replace("two", "2")
