"""End-to-end training on MNIST: learns, writes results atomically, resumes, is deterministic, and equals
the same network trained in a plain PyTorch loop, bit for bit."""
import json

import pytest
import torch

from ferristor.data.registry import Dataset
from ferristor.experiments.config import task_config
from ferristor.experiments.train import train


@pytest.fixture(scope="module")
def small_mnist(mnist):
    return Dataset("mnist", mnist.x_train[:3000], mnist.y_train[:3000], mnist.x_test[:1000], mnist.y_test[:1000], 10)


@pytest.mark.parametrize("mode", ["fp", "hm", "hm-var"])
def test_short_run_learns_well_above_chance(small_mnist, mode, tmp_path):
    cfg = task_config("mnist", mode, epochs=1, seeds="0-1", eval_every=0.5)
    r = train(cfg, tmp_path, progress=False, dataset=small_mnist)
    assert min(r["final_test_accuracy"]) > 0.35  # chance is 0.10; 3,000 samples only
    assert len(r["history"]) == 2
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["final_test_accuracy"] == r["final_test_accuracy"]
    assert saved["config"]["mode"] == mode and saved["versions"]["torch"]
    if mode != "fp":
        net = r["ledger"][0]["network"]
        assert net["transfers"] == 30  # 3000 samples / k = 100
        assert net["memristor_ops"]["mean"] == 2 * 3000 / 100


def test_resume_continues_to_the_same_result(small_mnist, tmp_path):
    cfg = task_config("mnist", "hm-var", epochs=0.5, seeds=[0], eval_every=0.25)
    full = train(cfg, tmp_path / "a", progress=False, dataset=small_mnist)
    # run the first half alone, then rerun the full config in the same folder: it resumes
    half = task_config("mnist", "hm-var", epochs=0.25, seeds=[0], eval_every=0.25)
    train(half, tmp_path / "b", progress=False, dataset=small_mnist)
    ckpt = torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=False)
    ckpt["config"] = {**json.loads(json.dumps(full["config"])), "dataset_fingerprint": ckpt["config"]["dataset_fingerprint"]}
    torch.save(ckpt, tmp_path / "b" / "checkpoint.pt")
    resumed = train(cfg, tmp_path / "b", progress=False, dataset=small_mnist)
    assert resumed["final_test_accuracy"] == full["final_test_accuracy"]
    assert resumed["ledger"][0]["network"]["fecap_ops"] == full["ledger"][0]["network"]["fecap_ops"]


def test_checkpoints_between_evaluations_resume_an_interrupted_run(small_mnist, tmp_path, monkeypatch,
                                                                  die_after_checkpoints):
    cfg = task_config("mnist", "hm", epochs=0.5, seeds=[0], eval_every=0.5, checkpoint_every=0.125)
    full = train(cfg, None, progress=False, dataset=small_mnist)
    die_after_checkpoints(2)  # the run is killed right after its second checkpoint
    with pytest.raises(KeyboardInterrupt):
        train(cfg, tmp_path, progress=False, dataset=small_mnist)
    monkeypatch.undo()
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=False)["step"] == 750  # 2 × 0.125 × 3000
    # resumes even under another checkpoint interval: it says how the run executes, not what it computes
    from ferristor.experiments import fast_step
    from ferristor.optim import HybridSGD
    # steps the rule took: one per hybrid_step (the plain loop, the per-call fast step), idx.shape[1]
    # per compiled chunk (which does not return to the optimizer between its steps)
    real_step, real_chunk, steps = HybridSGD.hybrid_step, fast_step._Chunk.run, []
    monkeypatch.setattr(HybridSGD, "hybrid_step", lambda self, *a, **k: steps.append(1) or real_step(self, *a, **k))
    monkeypatch.setattr(fast_step._Chunk, "run", lambda self, x, y, idx: steps.append(idx.shape[1]) or real_chunk(self, x, y, idx))
    resumed = train(task_config("mnist", "hm", epochs=0.5, seeds=[0], eval_every=0.5, checkpoint_every=0),
                    tmp_path, progress=False, dataset=small_mnist)
    assert resumed["final_test_accuracy"] == full["final_test_accuracy"] and len(resumed["history"]) == 1
    assert resumed["ledger"][0]["network"]["fecap_ops"] == full["ledger"][0]["network"]["fecap_ops"]
    assert sum(steps) == 750  # only the second half ran


def test_same_seed_same_result(small_mnist):
    cfg = task_config("mnist", "hm-var", epochs=0.2, seeds=[3])
    a = train(cfg, None, progress=False, dataset=small_mnist)
    b = train(cfg, None, progress=False, dataset=small_mnist)
    assert a["final_test_accuracy"] == b["final_test_accuracy"]
    assert a["ledger"] == b["ledger"]


def test_circuit_transfer_trains_like_the_table(small_mnist):
    """The physical charge-sharing chain (run per weight, or drawn from its tabulated distribution) and
    the measured table give the same accuracy within seed noise."""
    import numpy as np
    from ferristor.sweeps import configs
    accs = {}
    runs = {"table": {"transfer.model": "table", "transfer.level_means": "measured"},
            "chain": {"transfer.model": "circuit"},
            "quantiles": {"transfer.model": "circuit", "transfer.circuit_sampler": "quantiles"}}
    for name, settings in runs.items():
        cfg = configs.resolve({"mode": "hm-var", "epochs": 0.7, "seeds": [0, 1, 2], **settings})
        accs[name] = np.array(train(cfg, None, progress=False, dataset=small_mnist)["final_test_accuracy"])
    table = accs["table"]
    for key in ("chain", "quantiles"):
        noise = np.hypot(table.std(ddof=1), accs[key].std(ddof=1)) / 2  # std of the difference of means
        assert abs(table.mean() - accs[key].mean()) < 4 * noise + 0.02, key
        assert accs[key].mean() > 0.25, (key, accs)  # chance is 0.1; 2,100 samples, so seeds spread widely


def _users_networks(seed):
    """The paper's MLP as a user builds it: the packaged HybridMLP, and the same layers assembled by hand."""
    from torch import nn

    from ferristor.nn import HybridConfig, HybridLinear, HybridMLP, NetworkSpec, Normalize
    cfg = HybridConfig(mode="hm-var")
    yield "HybridMLP", HybridMLP(NetworkSpec((784, 200, 100, 10)), config=cfg, seeds=seed), "layers.{}."
    yield "Sequential", nn.Sequential(
        HybridLinear(784, 200, config=cfg, seeds=seed, name="fc1"), Normalize(), nn.ReLU(),
        HybridLinear(200, 100, config=cfg, seeds=seed, name="fc2"), Normalize(), nn.ReLU(),
        HybridLinear(100, 10, config=cfg, seeds=seed, name="fc3"), Normalize()), "{}."


def _users_loop(model, x, y, seed, epochs, batch, k=100, k_unit="inputs", loss_scale=1):
    """The plain PyTorch loop of docs/pytorch.md, in `ferristor train`'s documented sample order."""
    import numpy as np

    from ferristor.nn.functional import cross_entropy  # ferristor train's loss, the same bits on every CPU
    from ferristor.optim import HybridSGD
    opt = HybridSGD(model.parameters(), lr=0.1, p=0.2, k=k, k_unit=k_unit)
    for epoch in range(epochs):
        order = torch.from_numpy(np.random.default_rng([seed, 4, epoch]).permutation(len(x)))
        for idx in order.split(batch):
            loss = cross_entropy(model(x[idx]), y[idx]) * loss_scale
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model


@pytest.mark.parametrize("batch", [1, 10])
def test_a_plain_pytorch_loop_equals_ferristor_train_bit_for_bit(mnist, batch, tmp_path):
    """The issue's acceptance test: HybridLinear layers + HybridSGD in a 10-line loop = `ferristor train`."""
    seed, epochs, n = 11, 2, 300
    data = Dataset("mnist", mnist.x_train[:n], mnist.y_train[:n], mnist.x_test[:100], mnist.y_test[:100], 10)
    train(task_config("mnist", "hm-var", epochs=epochs, seeds=[seed], batch=batch), tmp_path, progress=False,
          dataset=data)
    saved = torch.load(tmp_path / "checkpoint.pt", weights_only=True)["model"]  # one replica: a leading axis of 1
    kinds = ("weight", "weight_hidden", "weight_events", "weight_transfers", "weight_updates", "seeds")
    assert {k.split(".", 2)[2] for k in saved} == {*kinds, "hidden_lsb", "settings", "transfer_settings", "stream_settings"}  # and the layer's settings
    for label, model, prefix in _users_networks(seed):
        initial = {k: v.clone() for k, v in model.state_dict().items()}
        _users_loop(model, data.x_train, data.y_train, seed, epochs, batch)
        mine = model.state_dict()
        layers = [prefix.format(i) for i in ((0, 1, 2) if label == "HybridMLP" else (0, 3, 6))]
        for li, mp in enumerate(layers):
            assert int(mine[mp + "weight_transfers"][0]) == epochs * n // 100  # every k = 100 inputs
            assert not torch.equal(mine[mp + "weight_hidden"], initial[mp + "weight_hidden"])  # it learned
            for kind in kinds:
                theirs = saved[f"layers.{li}.{kind}"]
                theirs = theirs if kind == "weight_updates" else theirs[0]
                ours = mine[mp + kind]
                ours = ours[0] if kind in ("seeds", "weight_transfers") else ours
                assert torch.equal(ours, theirs), (label, batch, li, kind)


def test_the_mini_batch_choices_are_the_loops_k_per_update_and_summed_loss(mnist, tmp_path):
    """rule.k_unit='updates' and rule.batch_reduction='sum' (open at batch > 1, digest §4) are what a
    user's loop does with HybridSGD(k_unit='updates') and the batch loss times the batch."""
    seed, epochs, n, batch = 3, 2, 300, 10
    data = Dataset("mnist", mnist.x_train[:n], mnist.y_train[:n], mnist.x_test[:100], mnist.y_test[:100], 10)
    train(task_config("mnist", "hm-var", epochs=epochs, seeds=[seed], batch=batch, k=5, k_unit="updates",
                      batch_reduction="sum"), tmp_path, progress=False, dataset=data)
    saved = torch.load(tmp_path / "checkpoint.pt", weights_only=True)["model"]
    _, model, _ = next(_users_networks(seed))
    _users_loop(model, data.x_train, data.y_train, seed, epochs, batch, k=5, k_unit="updates", loss_scale=batch)
    mine = model.state_dict()
    assert int(mine["layers.0.weight_transfers"][0]) == epochs * n // batch // 5  # every 5 updates
    for k in ("weight", "weight_hidden", "weight_events"):
        assert torch.equal(mine[f"layers.0.{k}"], saved[f"layers.0.{k}"][0]), k


def test_hooks_stream_evaluations_and_checkpoints_and_resume_from_a_state(small_mnist, tmp_path):
    """The sweep driver's hooks: evaluations and checkpoint states come out as they happen (no output
    folder needed), and a state passed back in resumes to the same numbers as an uninterrupted run."""
    import io
    cfg = task_config("mnist", "hm-var", epochs=0.5, seeds="0-1", eval_every=0.25, checkpoint_every=0.125)
    evals, states = [], []
    full = train(cfg, None, progress=False, dataset=small_mnist, on_eval=evals.append,
                 on_checkpoint=lambda s: states.append(_to_bytes(s)))
    assert evals == full["history"] and [e["step"] for e in evals] == [750, 1500]
    assert [torch.load(io.BytesIO(b), weights_only=False)["step"] for b in states] == [375, 750, 1125, 1500]
    assert list(tmp_path.iterdir()) == []
    mid = torch.load(io.BytesIO(states[1]), weights_only=False)  # after the first evaluation
    again = []
    resumed = train(cfg, None, progress=False, dataset=small_mnist, resume_state=mid, on_eval=again.append)
    assert resumed["final_test_accuracy"] == full["final_test_accuracy"] and resumed["history"] == full["history"]
    assert resumed["ledger"] == full["ledger"] and [e["step"] for e in again] == [1500]
    other = task_config("mnist", "hm-var", epochs=0.5, seeds="0-1", eval_every=0.25, k=10)
    assert len(train(other, None, progress=False, dataset=small_mnist, resume_state=mid)["history"]) == 2  # ignored


def _to_bytes(state) -> bytes:
    import io
    buf = io.BytesIO()
    torch.save(state, buf)
    return buf.getvalue()


def test_a_finished_run_reported_again_keeps_the_settings_and_versions_it_trained_with(small_mnist, tmp_path,
                                                                                     monkeypatch):
    """A rerun on a finished folder trains nothing (other ledger costs re-report it): its results.json
    had been rewritten with that call's backend, data folder, checkpoint interval and code version, which
    the training never ran with. It keeps the trained run's, and takes only the report-only ledger values."""
    import dataclasses

    import ferristor.experiments.fit as F
    cfg = task_config("mnist", "hm-var", epochs=0.1, seeds=[0])
    first = train(cfg, tmp_path, progress=False, dataset=small_mnist)
    monkeypatch.setattr(F, "code_version", lambda: "another-commit")
    monkeypatch.setattr(F, "versions", lambda: {"ferristor": "another"})
    other = dataclasses.replace(cfg, backend="torch", data_dir=str(tmp_path / "elsewhere"), checkpoint_every=0.5,
                                ledger=dataclasses.replace(cfg.ledger, memristor_energy_pj=0.5))
    again = train(other, tmp_path, progress=False, dataset=small_mnist)
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved == json.loads(json.dumps(again))
    expected = json.loads(json.dumps(first["config"]))
    expected["ledger"]["memristor_energy_pj"] = 0.5
    assert saved["config"] == expected and saved["config"]["backend"] == cfg.backend != "torch"
    assert saved["code_version"] == first["code_version"] and saved["versions"] == json.loads(json.dumps(first["versions"]))
    assert saved["timing"] == first["timing"] and saved["history"] == first["history"]
    net, net0 = saved["ledger"][0]["network"], first["ledger"][0]["network"]
    assert net["energy_nJ"]["per_device_memristor"] == 0.5 * net0["energy_nJ"]["per_device_memristor"]
    # without results.json (a run killed between its last checkpoint and its results): the checkpoint's settings
    (tmp_path / "results.json").unlink()
    third = train(dataclasses.replace(other, ledger=cfg.ledger), tmp_path, progress=False, dataset=small_mnist)
    assert third["config"]["backend"] == cfg.backend and third["config"]["data_dir"] == cfg.data_dir
    assert json.loads(json.dumps(third["config"])) == json.loads(json.dumps(first["config"]))
    assert third["history"] == first["history"]
