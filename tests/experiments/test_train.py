"""End-to-end training on MNIST: learns, writes results atomically, resumes, and is deterministic."""
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


def test_checkpoints_between_evaluations_resume_an_interrupted_run(small_mnist, tmp_path, monkeypatch):
    import ferristor.experiments.fit as train_module  # the loop that writes checkpoints
    cfg = task_config("mnist", "hm", epochs=0.5, seeds=[0], eval_every=0.5, checkpoint_every=0.125)
    full = train(cfg, None, progress=False, dataset=small_mnist)
    real_write, writes = train_module.atomic_write, []

    def write_then_die(path, *a, **k):  # the run is killed right after its second checkpoint
        if len(writes) == 2:
            raise KeyboardInterrupt
        writes.append(path)
        return real_write(path, *a, **k)
    monkeypatch.setattr(train_module, "atomic_write", write_then_die)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, tmp_path, progress=False, dataset=small_mnist)
    monkeypatch.undo()
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=False)["step"] == 750  # 2 × 0.125 × 3000
    # resumes even under another checkpoint interval: it says how the run executes, not what it computes
    from ferristor.optim import HybridSGD
    real_step, steps = HybridSGD.hybrid_step, []  # the rule's step, in the fast path and the plain loop alike
    monkeypatch.setattr(HybridSGD, "hybrid_step", lambda self, *a, **k: steps.append(1) or real_step(self, *a, **k))
    resumed = train(task_config("mnist", "hm", epochs=0.5, seeds=[0], eval_every=0.5, checkpoint_every=0),
                    tmp_path, progress=False, dataset=small_mnist)
    assert resumed["final_test_accuracy"] == full["final_test_accuracy"] and len(resumed["history"]) == 1
    assert resumed["ledger"][0]["network"]["fecap_ops"] == full["ledger"][0]["network"]["fecap_ops"]
    assert len(steps) == 750  # only the second half ran


def test_same_seed_same_result(small_mnist):
    cfg = task_config("mnist", "hm-var", epochs=0.2, seeds=[3])
    a = train(cfg, None, progress=False, dataset=small_mnist)
    b = train(cfg, None, progress=False, dataset=small_mnist)
    assert a["final_test_accuracy"] == b["final_test_accuracy"]
    assert a["ledger"] == b["ledger"]


def test_circuit_transfer_trains_like_the_table(small_mnist):
    """The physical charge-sharing chain and the measured table give the same accuracy within seed noise."""
    import numpy as np
    accs = {}
    for model in ("table", "circuit"):
        cfg = task_config("mnist", "hm-var", epochs=0.7, seeds="0-2", transfer_model=model, level_means="measured")
        accs[model] = np.array(train(cfg, None, progress=False, dataset=small_mnist)["final_test_accuracy"])
    noise = np.hypot(accs["table"].std(ddof=1), accs["circuit"].std(ddof=1)) / 2  # std of the difference of means
    assert abs(accs["table"].mean() - accs["circuit"].mean()) < 4 * noise + 0.02
    assert accs["circuit"].min() > 0.3
