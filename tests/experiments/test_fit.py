"""``fit``: any model with hybrid layers on the user's data — tensors, a torch Dataset or a ferristor
Dataset — with the data's identity recorded and checked, a validation split, bit-for-bit resume, and
clear errors for data it cannot learn from."""
import json
import warnings

import numpy as np
import pytest
import torch
from numba import njit
from torch import nn
from torch.utils.data import TensorDataset

from ferristor.data.registry import Dataset
from ferristor.errors import ConfigError, ConfigMismatchError, DataError, FerristorWarning
from ferristor.experiments import fast_step
from ferristor.experiments.config import task_config
from ferristor.experiments.fit import fingerprint, fit
from ferristor.experiments.train import train
from ferristor.nn import HybridConfig, HybridConv2d, HybridLinear, Normalize
from ferristor.optim import HybridSGD

FAST = dict(epochs=1, k=10, lr=0.2, p=0.5, progress=False)


def blobs(seed, n=120):
    """Three Gaussian blobs in the plane, labels 0…2."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 3, (n,), generator=g)
    centres = torch.tensor([[2.0, 0.0], [-1.0, 1.7], [-1.0, -1.7]])
    return centres[y] + 0.5 * torch.randn(n, 2, generator=g), y


def net(seeds=3, replicas=None, mode="hm-var"):
    cfg = HybridConfig(mode=mode)
    return nn.Sequential(HybridLinear(2, 16, config=cfg, replicas=replicas, seeds=seeds, name="fc1"),
                         Normalize(replicas=replicas), nn.ReLU(),
                         HybridLinear(16, 3, config=cfg, replicas=replicas, seeds=seeds, name="fc2"))


def state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def assert_same_state(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def quiet_fit(*args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fit(*args, **kw)


# --- the data a user brings ------------------------------------------------------------------------

def test_own_tensors_train_and_the_results_name_and_fingerprint_them(tmp_path):
    train_xy, test_xy = blobs(0), blobs(1)
    r = fit(net(), train_xy, test_xy, out=tmp_path, name="blobs", **FAST)
    want = Dataset("blobs", *train_xy, *test_xy, 3)
    assert r.results["dataset"] == {"name": "blobs", "fingerprint": fingerprint(want), "train": 120, "test": 120,
                                    "features": 2, "classes": 3, "validation": 0.0}
    assert r.results["final_test_accuracy"][0] > 0.8  # chance is 1/3
    assert r.results["steps"] == 120 and r.results["ledger"] == r.ledger
    assert r.ledger[0]["network"]["transfers"] == 12  # 120 inputs, k = 10
    assert json.loads((tmp_path / "results.json").read_text())["dataset"]["fingerprint"] == fingerprint(want)
    with pytest.warns(FerristorWarning, match="no test_data: accuracy is measured on the training set") as record:
        alone = fit(net(), train_xy, **FAST)
    assert record[0].filename == __file__  # a FerristorWarning, as every other, named where fit was called
    assert alone.results["dataset"]["name"] == "custom" and alone.results["dataset"]["test"] == 120


def test_a_torch_dataset_trains_exactly_as_its_tensors():
    (x, y), test = blobs(0), blobs(1)
    a = fit(net(), (x, y), test, **FAST)
    b = fit(net(), TensorDataset(x, y), TensorDataset(*test), **FAST)
    assert_same_state(state(a.model), state(b.model))
    assert a.results["dataset"] == b.results["dataset"]
    assert a.results["final_test_accuracy"] == b.results["final_test_accuracy"]


def test_images_are_flattened_and_a_model_unflattens_them():
    g = torch.Generator().manual_seed(0)
    images, y = torch.randn(60, 1, 4, 4, generator=g), torch.randint(0, 3, (60,), generator=g)

    def cnn():
        cfg = HybridConfig(mode="hm")
        return nn.Sequential(nn.Unflatten(1, (1, 4, 4)), HybridConv2d(1, 2, 3, config=cfg, seeds=1, name="conv"),
                             nn.Flatten(), HybridLinear(8, 3, config=cfg, seeds=1, name="fc"))
    a = fit(cnn(), TensorDataset(images, y), (images[:20], y[:20]), **FAST)
    b = fit(cnn(), (images.reshape(60, 16), y), (images[:20].reshape(20, 16), y[:20]), **FAST)
    assert a.results["dataset"]["features"] == 16
    assert_same_state(state(a.model), state(b.model))
    assert int(a.model[1].weight_transfers[0]) == 6


def _image_cnn(replicas=None, unflatten=False, hybrid=True):
    cfg = HybridConfig(mode="hm")
    conv = (HybridConv2d(1, 2, 3, config=cfg, replicas=replicas, seeds=[1, 2][:replicas or 1], name="conv") if hybrid
            else nn.Conv2d(1, 2, 3))
    head = HybridLinear(8, 3, config=cfg, replicas=replicas, seeds=[1, 2][:replicas or 1], name="fc")
    return nn.Sequential(*([nn.Unflatten(2 if replicas else 1, (1, 4, 4))] if unflatten else []), conv,
                         nn.Flatten(-3), head)


@pytest.mark.parametrize("hybrid", [True, False])
def test_images_given_to_a_model_that_does_not_unflatten_them_name_their_shape_and_unflatten(hybrid):
    """The error had named (4, 16), a shape the user never made (fit flattens the samples), from
    deep in the model; a float first layer raised torch's RuntimeError."""
    g = torch.Generator().manual_seed(0)
    images, y = torch.randn(8, 1, 4, 4, generator=g), torch.randint(0, 3, (8,), generator=g)
    for data in ((images, y), TensorDataset(images, y), (images.numpy(), y.numpy())):
        with pytest.raises(ConfigError, match=r"^train_data x shape=\(8, 1, 4, 4\): fit flattens each sample to a "
                           r"vector, so the model got a batch of shape \(4, 16\) and refused it \(.*\); a model "
                           r"taking samples of shape \(1, 4, 4\) starts with nn\.Unflatten\(1, \(1, 4, 4\)\)") as e:
            quiet_fit(_image_cnn(hybrid=hybrid), data, (images, y), **{**FAST, "batch": 4})
        assert isinstance(e.value.__cause__, (ConfigError, RuntimeError))  # the model's own error, chained
    with pytest.raises(ConfigError, match=r"shape \(2, 4, 16\).*nn\.Unflatten\(2, \(1, 4, 4\)\)"):
        quiet_fit(_image_cnn(replicas=2), (images, y), **{**FAST, "batch": 4})  # inputs (R, B, …)
    r = quiet_fit(_image_cnn(unflatten=True, hybrid=hybrid), (images, y), **{**FAST, "batch": 4})  # as documented
    assert r.results["steps"] == 2


def test_a_ferristor_dataset_keeps_its_name_and_its_fingerprint_tells_datasets_apart(mnist):
    data = Dataset("mnist", mnist.x_train[:200], mnist.y_train[:200], mnist.x_test[:50], mnist.y_test[:50], 10)
    model = nn.Sequential(HybridLinear(784, 10, seeds=0, name="fc"))
    r = fit(model, data, epochs=0.5, progress=False, name="ignored for a named Dataset")
    assert r.results["dataset"]["name"] == "mnist" and r.results["dataset"]["fingerprint"] == fingerprint(data)
    relabelled = Dataset("mnist", data.x_train, data.y_train.roll(1), data.x_test, data.y_test, 10)
    retested = Dataset("mnist", data.x_train, data.y_train, mnist.x_test[50:100], mnist.y_test[50:100], 10)
    assert len({fingerprint(d) for d in (data, relabelled, retested)}) == 3


def test_replicas_shuffle_by_their_own_seeds_and_each_equals_its_seed_alone():
    train_xy, test_xy = blobs(0), blobs(1)
    many = fit(net(seeds=[4, 9], replicas=2), train_xy, test_xy, **FAST)
    for r, seed in enumerate([4, 9]):
        alone = fit(net(seeds=seed), train_xy, test_xy, **FAST)
        assert alone.results["final_test_accuracy"][0] == many.results["final_test_accuracy"][r]
        for k, v in state(alone.model).items():
            theirs = many.model.state_dict()[k]
            if k.endswith(("seeds", "_transfers")):  # per replica; (1,) for one chip
                v, theirs = v[0], theirs[r]
            elif not k.endswith(("_updates", "hidden_lsb", "settings")):  # one counter, one setting for all replicas
                theirs = theirs[r]
            assert torch.equal(v, theirs), k


def test_replicas_train_on_ferristors_loss_told_of_them_without_a_warning():
    """fit's default loss reads the leading axis as the chips because fit says so (replicas=): the
    loss's warning about reading it so is for users' own loops, not for fit's (batch 1 or mini-batches)."""
    import warnings

    from ferristor.experiments.train import summed_loss
    from ferristor.nn.functional import cross_entropy
    train_xy, test_xy = blobs(0), blobs(1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit(net(seeds=[4, 9], replicas=2), train_xy, test_xy, **{**FAST, "batch": 4})
        fit(net(seeds=[4, 9], replicas=2), train_xy, test_xy, loss=summed_loss(cross_entropy, 4), **{**FAST, "batch": 4})


def test_the_results_record_a_config_that_compare_report_and_lifetime_read(tmp_path):
    """fit(out=…) had written "config": null, and 'ferristor compare/report/lifetime' refused the folder
    ("'config' is null, expected an object")."""
    from click.testing import CliRunner

    from ferristor.cli.main import cli
    from ferristor.report.runs import read_run
    train_xy, test_xy = blobs(0), blobs(1)
    r = fit(net(seeds=[4, 9], replicas=2), train_xy, test_xy, out=tmp_path / "a", name="blobs", **FAST)
    cfg = json.loads((tmp_path / "a" / "results.json").read_text())["config"]
    assert cfg == r.results["config"]
    assert {k: cfg[k] for k in ("dataset", "mode", "epochs", "batch", "seeds")} == \
        {"dataset": "blobs", "mode": "hm-var", "epochs": 1, "batch": 1, "seeds": [4, 9]}
    assert cfg["rule"] == {"lr": 0.2, "p": 0.5, "k": 10, "k_unit": "inputs", "rounding": "stochastic", "sampler": "dense",
                           "batch_reduction": "mean", "hidden_lsb": 2.0 ** -9, "init_scale": 0.5, "init_shape": "uniform"}
    assert cfg["network"]["sizes"] == [2, 16, 3] and [la["weight"] for la in cfg["network"]["layers"]] == [[16, 2], [3, 16]]
    hybrid = HybridConfig(mode="hm-var")
    assert (cfg["transfer"]["model"], cfg["ledger"]["memristor_endurance_cycles"]) == \
        ("table", hybrid.ledger.memristor_endurance_cycles)
    assert cfg["fit"]["data_fingerprint"] == r.results["dataset"]["fingerprint"] and cfg["fit"]["optimizer"] == "HybridSGD"
    run = read_run(tmp_path / "a")  # the report's reader, with its checks of every field it reads
    assert run.config["rule"]["k"] == 10 and run.seeds == [4, 9] and run.endurance.memristor_cycles == 1e5

    fit(net(), train_xy, test_xy, out=tmp_path / "b", name="blobs", **dict(FAST, lr=0.1))
    runner = CliRunner()
    compared = runner.invoke(cli, ["compare", str(tmp_path / "a"), str(tmp_path / "b")])
    assert compared.exit_code == 0, compared.output
    assert "rule.lr" in compared.output and "| a |" in compared.output and "| b |" in compared.output
    lifetime = runner.invoke(cli, ["lifetime", str(tmp_path / "a"), "--rate", "10"])
    assert lifetime.exit_code == 0 and "blobs · hm-var · k=10 · p=0.5 · lr=0.2" in lifetime.output, lifetime.output
    page = runner.invoke(cli, ["report", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "r.html")])
    assert page.exit_code == 0 and (tmp_path / "r.html").exists(), page.output


def test_the_recorded_config_says_what_it_cannot_know_as_null_and_layers_that_differ_apart():
    x, y = blobs(0, n=40)
    plain = nn.Sequential(nn.Linear(2, 3))
    cfg = quiet_fit(plain, (x, y), epochs=1, progress=False,
                    optimizer=torch.optim.Adam(plain.parameters(), lr=0.01)).results["config"]
    assert cfg["mode"] == "float" and cfg["rule"]["lr"] == 0.01 and cfg["rule"]["p"] is None and cfg["rule"]["k"] is None
    assert "transfer" not in cfg and "ledger" not in cfg and cfg["fit"]["optimizer"] == "Adam"
    mixed = nn.Sequential(HybridLinear(2, 8, config=HybridConfig(mode="hm"), seeds=1, name="fc1"), nn.ReLU(),
                          HybridLinear(8, 3, config=HybridConfig(mode="fp"), seeds=1, name="fc2"))
    cfg = quiet_fit(mixed, (x, y), **FAST).results["config"]
    assert cfg["mode"] == "mixed" and [la["config"] for la in cfg["network"]["layers"]] == [{"mode": "hm"}, {"mode": "fp"}]
    given = {"dataset": "mine", "note": "as given"}
    assert quiet_fit(net(), (x, y), config=given, **FAST).results["config"] == given
    with pytest.raises(ConfigError, match=r"config='TrainConfig' is not allowed: expected a dict"):
        quiet_fit(net(), (x, y), config=task_config("mnist", "hm"), **FAST)


def test_the_recorded_groups_keep_a_plain_groups_settings_and_drop_only_what_repeats_the_rule():
    """The rule's settings were stripped from every group, a plain group's lr included: two runs differing
    only in the float head's lr recorded the same config, and ``ferristor compare`` showed no column."""
    from ferristor.config_base import flatten
    from ferristor.optim import hybrid_parameters, plain_parameters

    def run(head_lr):
        torch.manual_seed(5)
        model = nn.Sequential(HybridLinear(2, 16, config=HybridConfig(mode="hm-var"), seeds=3, name="fc1"),
                              Normalize(), nn.ReLU(), nn.Linear(16, 3))
        opt = HybridSGD([{"params": hybrid_parameters(model)},
                         {"params": plain_parameters(model), "lr": head_lr, "momentum": 0.9}], lr=0.2, p=0.5, k=10)
        return quiet_fit(model, blobs(0, n=40), epochs=1, progress=False, optimizer=opt).results["config"]

    slow, same = run(0.01), run(0.2)
    for cfg, head_lr in ((slow, 0.01), (same, 0.2)):
        hybrid, plain = cfg["fit"]["groups"]
        assert cfg["rule"]["lr"] == 0.2 and cfg["rule"]["p"] == 0.5 and cfg["rule"]["k"] == 10
        assert not {"lr", "p", "k", "rounding"} & hybrid.keys() and hybrid["momentum"] == 0.0  # what the rule says
        assert plain["lr"] == head_lr and plain["momentum"] == 0.9  # a plain group's, even equal to the rule's
    a, b = flatten(slow), flatten(same)
    assert [k for k in a.keys() | b.keys() if a.get(k) != b.get(k)] == ["fit.groups.1.lr"]


# --- an output folder holds one run ------------------------------------------------------------------

def test_a_used_folder_refuses_another_dataset_and_resumes_its_own(tmp_path):
    a, b, test = blobs(0), blobs(2), blobs(1)
    first = fit(net(), a, test, out=tmp_path, **FAST)
    saved = (tmp_path / "results.json").read_text()
    for other in ((b, test), (a, blobs(3))):  # another training set, or only another test set
        with pytest.raises(ConfigMismatchError, match="dataset_fingerprint"):
            fit(net(), *other, out=tmp_path, **FAST)
    assert (tmp_path / "results.json").read_text() == saved
    again = fit(net(), a, test, out=tmp_path, **FAST)  # the same call: the finished run, not a new one
    assert again.results["final_test_accuracy"] == first.results["final_test_accuracy"]
    assert_same_state(state(again.model), state(first.model))
    assert again.results["timing"]["train_seconds"] == first.results["timing"]["train_seconds"]


def test_a_config_given_to_fit_does_not_stand_for_the_model_when_resuming(tmp_path):
    """With config= the folder's identity had been that dict alone: another lr (or model) under the
    same dict resumed the old run. fit's own description of the run is part of it too."""
    a, test = blobs(0), blobs(1)
    given = {"dataset": "mine", "note": "my run"}
    fit(net(), a, test, out=tmp_path, config=given, **FAST)
    with pytest.raises(ConfigMismatchError, match=r"fit\.groups"):
        fit(net(), a, test, out=tmp_path, config=given, **dict(FAST, lr=FAST.get("lr", 0.1) * 2))
    fit(net(), a, test, out=tmp_path, config=given, **FAST)  # the same call: the finished run
    # a folder checkpointed before fit's own description joined a given config (identified by it alone,
    # as config_builds_model keeps it) resumes as it was saved, not refused field by field
    old = tmp_path / "before"
    first = fit(net(), a, test, out=old, config=given, config_builds_model=True, **FAST)
    again = fit(net(), a, test, out=old, config=given, **FAST)
    assert again.results["timing"]["train_seconds"] == first.results["timing"]["train_seconds"]  # not trained again


@pytest.mark.parametrize("replicas, norm_last, batch, modes, bias", [
    (None, True, 1, ("hm-var", "hm-var"), False), (2, False, 1, ("hm-var", "hm-var"), False),
    (None, True, 4, ("hm-var", "hm-var"), False),
    (2, True, 1, ("fp", "hm"), False),  # each layer its own mode
    (2, False, 1, ("hm-var", "hm-var"), True), (None, True, 4, ("hm-var", "fp"), True),  # biases
])
def test_a_plain_sequential_mlp_trains_in_compiled_chunks_bit_for_bit(monkeypatch, replicas, norm_last, batch, modes,
                                                                       bias):
    """fit finds the HybridMLP in a user's Sequential and runs its compiled chunks (batch 1) or fused
    steps (mini-batches) — the same steps as the plain autograd loop, bit for bit (transfers and
    their noise included)."""
    def build():
        seeds = [4, 9] if replicas else 3
        cfg = [HybridConfig(mode=m) for m in modes]
        return nn.Sequential(HybridLinear(2, 16, bias, config=cfg[0], replicas=replicas, seeds=seeds, name="fc1"),
                             Normalize(replicas=replicas), nn.ReLU(),
                             HybridLinear(16, 3, bias, config=cfg[1], replicas=replicas, seeds=seeds, name="fc2"),
                             *([Normalize(replicas=replicas)] if norm_last else []))

    chunks = []
    run = fast_step.run
    monkeypatch.setattr(fast_step, "run", lambda *a, **kw: chunks.append(a[0]) or run(*a, **kw))
    compiled = fit(build(), blobs(0), blobs(1), batch=batch, **FAST)
    assert chunks and all(type(m).__name__ == "HybridMLP" for m in chunks)
    monkeypatch.setattr(fast_step, "compiled_model", lambda model: None)  # the plain loop
    n_chunks = len(chunks)
    plain = fit(build(), blobs(0), blobs(1), batch=batch, **FAST)
    assert len(chunks) == n_chunks
    assert plain.results["history"] == compiled.results["history"]
    assert_same_state(state(plain.model), state(compiled.model))
    assert plain.results["ledger"] == compiled.results["ledger"]


@pytest.mark.parametrize("batch", [1, 4])
def test_frozen_biases_stay_frozen_on_the_compiled_path(monkeypatch, batch):
    """A bias that takes no gradient is not trained: the fused passes and chunks leave such a model to
    autograd, as the layers do."""
    def build():
        m = nn.Sequential(HybridLinear(2, 16, True, seeds=3, name="fc1"), Normalize(), nn.ReLU(),
                          HybridLinear(16, 3, True, seeds=3, name="fc2"))
        for layer in (m[0], m[3]):
            layer.bias.requires_grad_(False)
        return m

    compiled = fit(build(), blobs(0), blobs(1), batch=batch, **FAST)
    monkeypatch.setattr(fast_step, "compiled_model", lambda model: None)
    plain = fit(build(), blobs(0), blobs(1), batch=batch, **FAST)
    assert_same_state(state(plain.model), state(compiled.model))
    assert torch.equal(compiled.model[0].bias, build()[0].bias) and int(compiled.model[3].bias_updates) == 0


def test_kernel_compilation_is_timed_apart_from_the_training_speed(tmp_path):
    @njit
    def first_call_compiles(x):
        return x + 1

    class Compiles(nn.Module):  # builds a kernel in its first training step, as a cold cache does
        def forward(self, x):
            first_call_compiles(1)
            return x

    r = fit(nn.Sequential(Compiles(), net()), blobs(0), blobs(1), out=tmp_path, checkpoint_every=0.5, **FAST)
    t = r.results["timing"]
    assert 0 < t["compile_seconds"] < t["train_seconds"]
    net_seconds = t["train_seconds"] - t["compile_seconds"]
    assert t["sample_replicas_per_second"] == pytest.approx(t["sample_replicas"] / net_seconds)
    assert t["us_per_sample_replica"] == pytest.approx(1e6 * net_seconds / t["sample_replicas"])
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=True)["compile_time"] == t["compile_seconds"]


def test_ferristor_train_refuses_a_folder_trained_on_another_dataset(mnist, tmp_path):
    def subset(lo):
        return Dataset("mnist", mnist.x_train[lo:lo + 200], mnist.y_train[lo:lo + 200], mnist.x_test[:50],
                       mnist.y_test[:50], 10)
    cfg = task_config("mnist", "hm", epochs=0.5, seeds=[0])
    train(cfg, tmp_path, progress=False, dataset=subset(0))
    with pytest.raises(ConfigMismatchError, match="dataset_fingerprint"):
        train(cfg, tmp_path, progress=False, dataset=subset(200))


def _whole_then_killed(make, folder, monkeypatch, die_after_checkpoints):
    """A 2-epoch run of ``make()`` whole, and the same run in ``folder`` killed after its third checkpoint
    (of eight); the killing undone after. Returns (train, test, options, the whole run)."""
    train_xy, test_xy = blobs(0), blobs(1)
    opts = dict(FAST, epochs=2, eval_every=1, checkpoint_every=0.25)
    whole = fit(make(), train_xy, test_xy, **opts)
    die_after_checkpoints(3)
    with pytest.raises(KeyboardInterrupt):
        fit(make(), train_xy, test_xy, out=folder, **opts)
    monkeypatch.undo()
    return train_xy, test_xy, opts, whole


@pytest.mark.parametrize("compiled", [True, False])
def test_an_interrupted_run_resumes_bit_for_bit(tmp_path, monkeypatch, die_after_checkpoints, compiled):
    def autograd_unless_compiled():
        if not compiled:  # the autograd loop, as for any model fit cannot compile
            monkeypatch.setattr(fast_step, "compiled_model", lambda model: None)

    autograd_unless_compiled()
    train_xy, test_xy, opts, whole = _whole_then_killed(net, tmp_path, monkeypatch, die_after_checkpoints)
    autograd_unless_compiled()
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=True)["step"] == 90  # 3 × 0.25 × 120
    steps = []  # the steps that ran: compiled chunks' lengths, or autograd steps
    real_run, real_step = fast_step.run, HybridSGD.step
    monkeypatch.setattr(fast_step, "run", lambda m, o, x, y, idx, *a: steps.append(idx.shape[1]) or real_run(m, o, x, y, idx, *a))
    monkeypatch.setattr(HybridSGD, "step", lambda self, *a, **k: steps.append(1) or real_step(self, *a, **k))
    resumed = fit(net(), train_xy, test_xy, out=tmp_path, **opts)
    assert sum(steps) == 240 - 90  # only the rest ran
    assert_same_state(state(resumed.model), state(whole.model))
    assert resumed.results["history"] == whole.results["history"] and resumed.ledger == whole.ledger


def test_a_model_drawing_from_torchs_generator_resumes_bit_for_bit(tmp_path, monkeypatch, die_after_checkpoints):
    """nn.Dropout draws from torch's global generator: a checkpoint keeps its state, so the resumed
    run draws what the whole run drew (before, the hidden weights parted by hundreds of LSB)."""
    def dropout_net():
        torch.manual_seed(5)  # what a user's script does before building the model
        cfg = HybridConfig(mode="hm")
        return nn.Sequential(HybridLinear(2, 16, config=cfg, seeds=3, name="fc1"), nn.ReLU(), nn.Dropout(0.3),
                             HybridLinear(16, 3, config=cfg, seeds=3, name="fc2"))

    train_xy, test_xy, opts, whole = _whole_then_killed(dropout_net, tmp_path, monkeypatch, die_after_checkpoints)
    torch.manual_seed(123)  # another script's draws in between
    resumed = fit(dropout_net(), train_xy, test_xy, out=tmp_path, **opts)
    assert_same_state(state(resumed.model), state(whole.model))


def test_a_refused_resume_names_the_difference(tmp_path):
    train_xy = blobs(0)
    quiet_fit(net(), train_xy, out=tmp_path, **FAST)
    with pytest.raises(ConfigMismatchError) as e:  # the group's field itself, in the call's own words
        quiet_fit(net(), train_xy, out=tmp_path, **dict(FAST, lr=0.3))
    message = str(e.value)
    assert "groups.0.lr (0.2 there, 0.3 now)" in message and "groups.0.p" not in message
    assert message.startswith(f"the output folder {str(tmp_path)!r} holds a checkpoint")
    assert "rerun with fresh=True" in message and "another output folder" in message and "--" not in message
    with pytest.raises(ConfigMismatchError, match="initial_state"):
        quiet_fit(net(seeds=4), train_xy, out=tmp_path, **FAST)  # another chip
    assert quiet_fit(net(), train_xy, out=tmp_path, fresh=True, **dict(FAST, lr=0.3)).results["steps"] == 120


def test_a_refused_resume_names_the_default_loss_as_the_results_do_and_old_folders_resume(tmp_path):
    """The default loss (loss=None) had been named 'None' in the differences; its stored identity stays
    'None', so a folder checkpointed before still resumes, and only the message names it."""
    train_xy = blobs(0)
    first = quiet_fit(net(), train_xy, out=tmp_path, **FAST)
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=False)["config"]["loss"] == "None"  # as before
    with pytest.raises(ConfigMismatchError, match=r"differing in loss \('default \(cross_entropy\)' there, "
                                                  r"'cross_entropy' now\)"):
        quiet_fit(net(), train_xy, out=tmp_path, loss=nn.functional.cross_entropy, **FAST)
    again = quiet_fit(net(), train_xy, out=tmp_path, **FAST)  # the same call: the finished run
    assert again.results["timing"] == first.results["timing"]
    mine = tmp_path / "mine"
    quiet_fit(net(), train_xy, out=mine, loss=nn.functional.cross_entropy, config={"note": "given"}, **FAST)
    with pytest.raises(ConfigMismatchError, match=r"fit\.loss \('cross_entropy' there, 'default \(cross_entropy\)' now\)"):
        quiet_fit(net(), train_xy, out=mine, config={"note": "given"}, **FAST)
    wide = nn.Sequential(HybridLinear(2, 32, seeds=3, name="fc1"), nn.ReLU(), HybridLinear(32, 3, seeds=3, name="fc2"))
    with pytest.raises(ConfigMismatchError, match=r"loss \('default' there, 'cross_entropy' now\)"):  # another
        quiet_fit(wide, train_xy, out=tmp_path, loss=nn.functional.cross_entropy, **FAST)  # model's default: unnamed


# --- validation -------------------------------------------------------------------------------------

def test_the_validation_split_is_held_out_of_training_and_evaluated(mnist):
    x, y = mnist.x_train[:200], mnist.y_train[:200]
    test = (mnist.x_test[:50], mnist.y_test[:50])

    def model():
        return nn.Sequential(HybridLinear(784, 10, seeds=2, name="fc"))
    opts = dict(epochs=1, progress=False, k=20)
    r = fit(model(), (x, y), test, validation=0.25, validation_seed=7, **opts)
    # documented: the first round(0.25·n) of default_rng([validation_seed, 5]).permutation(n) are held out
    perm = torch.from_numpy(np.random.default_rng([7, 5]).permutation(200))
    held, kept = perm[:50], perm[50:]
    alone = fit(model(), (x[kept], y[kept]), test, **opts)
    assert_same_state(state(r.model), state(alone.model))  # trained on the rest only, in the same order
    assert r.results["steps"] == 150 and r.results["dataset"]["validation"] == 0.25
    with torch.no_grad():
        val = float((r.model(x[held]).argmax(-1) == y[held]).double().mean())
    assert r.results["final_val_accuracy"] == [val] and r.results["history"][-1]["val_accuracy"] == [val]
    assert r.results["final_test_accuracy"] == alone.results["final_test_accuracy"]
    other = fit(model(), (x, y), test, validation=0.25, validation_seed=8, **opts)
    assert not torch.equal(other.model[0].weight_hidden, r.model[0].weight_hidden)


# --- clear errors ------------------------------------------------------------------------------------

def _bad(kind):
    x, y = blobs(0, n=40)
    return {
        "float labels": (x, y.float()),
        "labels beyond the outputs": (x, y + 1),
        "negative labels": (x, y - 1),
        "one-hot labels": (x, nn.functional.one_hot(y, 3)),
        "integer inputs": (x.round().long(), y),
        "non-finite inputs": (x.masked_fill(x > 1.5, float("nan")), y),
        "lengths": (x, y[:30]),
        "empty": (x[:0], y[:0]),
        "three tensors": (x, y, y),
        "a dict": {"x": x, "y": y},
        # what a CSV or a DataFrame gives: torch's TypeError "can't convert np.ndarray of type numpy.str_" had escaped
        "text labels": (x.numpy(), np.array(["N", "V", "A"])[y.numpy()]),
        "object inputs": (x.numpy().astype(object), y.numpy()),
        "object labels": (x.numpy(), y.numpy().astype(object)),
        "ragged inputs": ([[0.0], [1.0, 2.0]], [0, 1]),
        "whole float labels": (x.numpy().astype(np.float64), y.numpy().astype(np.float64)),  # np.loadtxt's
        # had trained as classes 0/1 without a word (a Dataset casts bools; fit converts no labels)
        "bool labels": (x, y > 0),
        "numpy bool labels": (x.numpy(), y.numpy() > 0),
    }[kind]


@pytest.mark.parametrize("kind,error,match", [
    ("float labels", DataError, r"y_train has dtype torch.float32, expected integer class labels"),
    ("labels beyond the outputs", DataError, r"labels span 1…3 but the network has 3 outputs \(allowed 0…2\)"),
    ("negative labels", DataError, r"labels span -1…1"),
    ("one-hot labels", DataError, r"y_train has shape \(40, 3\), expected one label per sample"),
    ("integer inputs", DataError, r"x_train has dtype torch.int64, expected float32"),
    ("non-finite inputs", DataError, r"non-finite values"),
    ("lengths", DataError, r"x_train has 40 samples but y_train has 30 labels"),
    ("empty", DataError, r"at least one sample"),
    ("three tensors", ConfigError, r"train_data='a tuple of 3 items' is not allowed: expected \(x, y\) tensors"),
    ("a dict", ConfigError, r"train_data='dict' is not allowed"),
    ("text labels", DataError, r"^train_data labels \(y\) is text \(dtype <U1, e.g. 'A'\): expected integer class "
                               r"labels 0…n-1; number the classes first, e.g. names, y = np.unique\(y, return_inverse=True\)"),
    ("object inputs", DataError, r"^train_data inputs \(x\) is an array of dtype object \(what pandas gives .*\) "
                                 r"holding float: expected numbers \(float32\); convert it with x.astype\(np.float32\)"),
    ("object labels", DataError, r"^train_data labels \(y\) is an array of dtype object .* holding int: expected integer "
                                 r"class labels 0…n-1; convert it with y.astype\(int\)"),
    ("ragged inputs", DataError, r"^train_data inputs \(x\) cannot be read as one array \(.*inhomogeneous.*\): expected "
                                 r"samples of one shape"),
    ("whole float labels", DataError, r"y_train has dtype torch.float64, expected integer class labels \(int64\); they "
                                      r"are whole numbers: convert them with y.astype\(int\) \(numpy\) or y.long\(\) \(torch\)"),
    ("bool labels", DataError, r"^train_data labels \(y\) has dtype bool: expected integer class labels 0…n-1; if "
                               r"False and True are classes 0 and 1, convert them with y.astype\(int\) \(numpy\) or "
                               r"y.long\(\) \(torch\)$"),
    ("numpy bool labels", DataError, r"^train_data labels \(y\) has dtype bool: expected integer class labels"),
])
def test_data_it_cannot_learn_from_is_a_clear_error(kind, error, match):
    with pytest.raises(error, match=match):
        quiet_fit(net(), _bad(kind), **FAST)


def test_inputs_of_the_wrong_width_name_the_layer():
    x, y = blobs(0, n=40)
    with pytest.raises(ConfigError, match=r"HybridLinear input shape=\(1, 3\).*\(\.\.\., 2\) \(in_features\)"):
        quiet_fit(net(), (torch.cat([x, x[:, :1]], 1), y), **FAST)


def test_float64_and_numpy_inputs_are_taken_as_float32():
    x, y = blobs(0, n=40)
    ref = quiet_fit(net(), (x, y), **FAST)
    for data in ((x.double(), y), (x.numpy(), y.numpy()), (x, y.to(torch.uint8))):
        assert_same_state(state(quiet_fit(net(), data, **FAST).model), state(ref.model))


@pytest.mark.parametrize("option,value,match", [
    ("batch", 0, r"batch=0 is not allowed: expected an integer in \[1, 120\]"),
    ("batch", 121, r"batch=121"), ("batch", 1.5, r"batch=1.5"), ("epochs", 0, r"epochs=0"),
    ("validation", 1.0, r"validation=1.0 is not allowed: expected a fraction in \[0, 1\)"),
    ("validation", "0.1", r"validation='0.1' is not allowed: expected a fraction in \[0, 1\)"),  # had been a TypeError
    # had said batch=1 is not allowed: expected an integer in [1, 0]
    ("validation", 0.999, r"^validation=0.999: leaves 0 of the 120 training samples to train on \(it holds out 120\): "
                          r"expected a fraction in \[0, 1\) holding out at most 119 of them \(round\(validation × 120\) "
                          r"≤ 119\)$"),
    # a negative limit had sliced the test set (x_test[:-1]: all but the last sample), silently
    ("test_limit", -1, r"test_limit=-1 is not allowed: expected a value in \[0, inf\)"),
    ("test_limit", 1.5, r"test_limit=1.5 is not allowed: expected an integer"),
    ("checkpoint_every", -1, r"checkpoint_every=-1"), ("seed", -1, r"seed=-1"),
    ("validation_seed", -1, r"validation_seed=-1"), ("eval_batch", 0, r"eval_batch=0"),
])
def test_bad_options_are_clear_errors(option, value, match):
    with pytest.raises(ConfigError, match=match):
        quiet_fit(net(), blobs(0), **{**FAST, option: value})


def test_rule_settings_beside_an_optimizer_are_refused_naming_them(tmp_path):
    """lr/p/k/rounding build the HybridSGD fit makes without an optimizer: beside a given one they had
    been dropped silently (k=3 trained with the optimizer's k=10)."""
    model = net()
    opt = HybridSGD(model.parameters(), lr=0.2, p=0.5, k=10)
    before = state(model)
    with pytest.raises(ConfigError, match=r"^lr=0.5: with p=0.9, k=3, rounding='nearest', given beside optimizer="
                                          r"HybridSGD, whose param_groups hold them \(param_groups\[0\]: lr=0.2, p=0.5, "
                                          r"k=10, rounding='stochastic'\): fit would ignore these; set them in the "
                                          r"optimizer .* or leave optimizer= out"):
        quiet_fit(model, blobs(0), optimizer=opt, lr=0.5, p=0.9, k=3, rounding="nearest", epochs=1, progress=False)
    for name, value in (("lr", 0.1), ("p", 0.2), ("k", 100), ("rounding", "stochastic")):  # a default's value, passed
        with pytest.raises(ConfigError, match=f"^{name}={value!r}: given beside optimizer=HybridSGD"):
            quiet_fit(model, blobs(0), optimizer=opt, epochs=1, progress=False, **{name: value})
    assert_same_state(state(model), before)


def test_the_rule_settings_defaults_are_the_documented_ones_and_as_passed(tmp_path):
    """Without an optimizer fit builds HybridSGD(lr=0.1, p=0.2, k=100, rounding='stochastic'): the same
    run, recorded config and identity as those values passed."""
    data = blobs(0)
    omitted = quiet_fit(net(), data, epochs=1, progress=False, out=tmp_path)
    assert {k: omitted.results["config"]["rule"][k] for k in ("lr", "p", "k", "rounding")} == {
        "lr": 0.1, "p": 0.2, "k": 100, "rounding": "stochastic"}
    passed = quiet_fit(net(), data, epochs=1, progress=False, out=tmp_path, lr=0.1, p=0.2, k=100, rounding="stochastic")
    assert passed.results["timing"] == omitted.results["timing"]  # the finished run, resumed: the same identity
    assert_same_state(state(passed.model), state(omitted.model))


# --- labels of a torch Dataset and test_data beside a ferristor Dataset -------------------------------

def test_a_dataloader_is_refused_pointing_at_its_dataset():
    loader = torch.utils.data.DataLoader(TensorDataset(*blobs(0)), batch_size=4)
    with pytest.raises(ConfigError, match=r"train_data='a DataLoader' is not allowed: expected its dataset \(loader.dataset\)"):
        quiet_fit(net(), loader, **FAST)
    quiet_fit(net(), loader.dataset, **FAST)


def test_a_torch_dataset_with_one_hot_labels_is_a_clear_error():
    x, y = blobs(0, n=40)
    with pytest.raises(DataError, match="label"):
        quiet_fit(net(), TensorDataset(x, nn.functional.one_hot(y, 3)), **FAST)


def test_a_torch_dataset_with_float_labels_is_refused_like_tensors():
    x, y = blobs(0, n=40)
    with pytest.raises(DataError, match=r"expected integer class labels \(int64\); some are not whole numbers "
                                        r"\(e.g. [0-2].5\): a class label is an integer"):
        quiet_fit(net(), TensorDataset(x, y.float() + 0.5), **FAST)


class _Items(torch.utils.data.Dataset):
    """A torch Dataset whose item i is make(i)."""

    def __init__(self, n, make):
        self.n, self.make = n, make

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return self.make(i)


@pytest.mark.parametrize("make,match", [
    # KeyError: 0, torch's "stack expects each tensor to be equal size", and a silent accept had been the answers
    (lambda x, y, i: {"x": x[i], "y": y[i]}, r"^train_data\[0\] is a dict with keys \['x', 'y'\], expected an \(x, y\) pair"),
    (lambda x, y, i: x[i, :1 + i % 2], r"^train_data\[0\] is a Tensor, expected an \(x, y\) pair"),
    (lambda x, y, i: (x[i, :1 + i % 2], y[i]), r"^train_data\[1\] has an input of shape \(2,\) but train_data\[0\] has "
                                               r"\(1,\): every sample must have one shape"),
    (lambda x, y, i: (x[i], y[i], i), r"^train_data\[0\] is a tuple of 3 items \(Tensor, Tensor, int\), expected an "
                                      r"\(x, y\) pair \(input, class label\)"),
    (lambda x, y, i: (x[i], "NVA"[int(y[i])]), r"^train_data\[0\] label is text \(dtype <U1, e.g. '[NVA]'\)"),
    (lambda x, y, i: (x[i], bool(y[i] > 0)), r"^train_data\[0\] label has dtype bool: expected integer class labels"),
])
def test_a_torch_dataset_of_anything_but_x_y_pairs_is_a_data_error_naming_the_sample(make, match):
    x, y = blobs(0, n=40)
    with pytest.raises(DataError, match=match):
        quiet_fit(net(), _Items(40, lambda i: make(x, y, i)), **FAST)
    with pytest.raises(DataError, match=match.replace("train_data", "test_data")):
        quiet_fit(net(), (x, y), _Items(40, lambda i: make(x, y, i)), **FAST)


def test_a_list_of_samples_trains_as_a_map_style_dataset_and_as_its_tensors():
    (x, y), test = blobs(0), blobs(1)
    ref = quiet_fit(net(), (x, y), test, **FAST)
    for data in ([(x[i], y[i]) for i in range(len(x))], [(x[i].tolist(), int(y[i])) for i in range(len(x))],
                 [x.tolist(), y.tolist()]):  # the last: the (x, y) pair as a list of two lists
        r = quiet_fit(net(), data, test, **FAST)
        assert_same_state(state(r.model), state(ref.model))
        assert r.results["dataset"]["fingerprint"] == ref.results["dataset"]["fingerprint"]
    with pytest.raises(DataError, match=r"^train_data\[3\] is a tuple of 3 items"):
        quiet_fit(net(), [(x[i], y[i]) if i != 3 else (x[i], y[i], 0) for i in range(len(x))], **FAST)


def test_a_pandas_dataframe_is_taken_and_its_text_columns_named():
    pd = pytest.importorskip("pandas")
    (x, y), test = blobs(0), blobs(1)
    frame = pd.DataFrame({"a": x[:, 0].numpy(), "b": x[:, 1].numpy(), "beat": np.array(list("NVA"))[y.numpy()]})
    ref = quiet_fit(net(), (x, y), test, **FAST)
    assert_same_state(state(quiet_fit(net(), (frame[["a", "b"]], pd.Series(y.numpy())), test, **FAST).model),
                      state(ref.model))
    with pytest.raises(DataError, match=r"^train_data inputs \(x\) is an array of dtype object .* holding float, str"):
        quiet_fit(net(), (frame, y), test, **FAST)
    with pytest.raises(DataError, match=r"^train_data labels \(y\) is text \(dtype object, e.g. '[NVA]'\)"):
        quiet_fit(net(), (frame[["a", "b"]], frame["beat"]), test, **FAST)


def test_an_iterable_dataset_is_refused_saying_map_style():
    class Stream(torch.utils.data.IterableDataset):
        def __iter__(self):
            return iter([])
    with pytest.raises(ConfigError, match=r"train_data='an IterableDataset \(Stream\)' is not allowed: expected a map-style"):
        quiet_fit(net(), Stream(), **FAST)


def test_test_data_beside_a_ferristor_dataset_is_not_silently_ignored():
    (x, y), (xt, yt) = blobs(0), blobs(1)
    data = Dataset("blobs", x, y, xt[:10], yt[:10], 3)
    try:
        r = quiet_fit(net(), data, (xt, yt), **FAST)
    except (ConfigError, DataError):
        return  # refusing the ambiguity is as good as using the test_data given
    assert r.results["dataset"]["test"] == 120


def test_a_diverged_loss_is_a_diverged_error_with_its_step():
    from ferristor.errors import DivergedError
    with pytest.raises(DivergedError, match=r"lr=3e\+38 is not allowed: expected a smaller value: the loss diverged") as e:
        quiet_fit(net(mode="fp"), blobs(0), **{**FAST, "lr": 3e38})
    assert e.value.unit == "step" and e.value.at >= 1 and e.value.field == "lr"


def test_test_labels_out_of_range_name_the_test_split():
    (x, y), (xt, yt) = blobs(0, n=40), blobs(1, n=40)
    with pytest.raises(DataError, match=r"test labels span 0…5 but the network has 3 outputs"):
        quiet_fit(net(), (x, y), (xt, yt + (yt == 2) * 3), **FAST)


def test_training_labels_of_one_class_are_warned_of_naming_the_classes_and_the_outputs():
    """All labels of one class had trained and reported a perfect accuracy without a word."""
    (x, y), test = blobs(0, n=40), blobs(1, n=40)
    with pytest.warns(FerristorWarning, match=r"^the train_data labels hold 1 class \(label 2, all 40 samples\) but "
                      r"the model's 3 outputs learn 3 classes: it can only learn to answer 2") as record:
        fit(net(), (x, torch.full_like(y, 2)), test, **FAST)
    assert record[0].filename == __file__  # named where fit was called
    one_output = nn.Sequential(HybridLinear(2, 1, config=HybridConfig(mode="hm"), seeds=1, name="fc"))
    with pytest.warns(FerristorWarning, match=r"hold 1 class \(label 0, all 40 samples\) but the model's 1 output "
                                              r"learn 2 classes"):
        fit(one_output, (x, torch.zeros_like(y)), (x, y.clamp(max=1)), **FAST)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FerristorWarning)
        fit(net(), (x, y.clamp(max=1)), test, **FAST)  # two of three classes: fine, not warned of


def test_a_model_without_hybrid_layers_trains_with_a_warning_saying_so():
    x, y = blobs(0, n=40)
    with pytest.warns(FerristorWarning, match="no hybrid layers: it trains in float"):
        fit(nn.Sequential(nn.Linear(2, 3)), (x, y), blobs(1, n=40), epochs=1, progress=False)


@pytest.mark.parametrize("n", [0, -1, 1.0, 10 ** 6])
def test_set_threads_refuses_what_this_machine_cannot_run(n):
    import ferristor
    with pytest.raises(ConfigError, match=r"threads="):
        ferristor.set_threads(n)


def test_set_threads_sets_torch_and_the_numba_kernels_together():
    import numba

    import ferristor
    before = torch.get_num_threads(), numba.get_num_threads()
    try:
        ferristor.set_threads(1)
        assert torch.get_num_threads() == 1 and numba.get_num_threads() == 1
    finally:
        torch.set_num_threads(before[0])
        numba.set_num_threads(before[1])


# --- evaluation batches: part of the result under BatchNorm ------------------------------------------


def bn_net(seeds=3):
    cfg = HybridConfig(mode="hm")
    return nn.Sequential(HybridLinear(2, 16, config=cfg, seeds=seeds, name="fc1"), Normalize("batch"), nn.ReLU(),
                         HybridLinear(16, 3, config=cfg, seeds=seeds, name="fc2"), Normalize("batch"))


def test_eval_batches_join_a_single_last_sample_to_the_batch_before():
    from ferristor.experiments.fit import eval_batches
    assert eval_batches(10, 4) == [(0, 4), (4, 8), (8, 10)]
    assert eval_batches(9, 4) == [(0, 4), (4, 9)]
    assert eval_batches(1, 4) == [(0, 1)] and eval_batches(8, 8) == [(0, 8)]


def test_the_eval_batch_sets_batchnorms_test_statistics_and_nothing_else():
    from ferristor.experiments.fit import evaluate
    x, y = blobs(1, n=301)
    bn, ln = bn_net(), net()
    for m in (bn, ln):  # some training, so that the predictions depend on the statistics
        quiet_fit(m, (x, y), (x, y), **{**FAST, "batch": 10})
    accuracies = {b: evaluate(bn, x, y, None, b) for b in (2, 7, 300)}
    assert len(set(map(tuple, accuracies.values()))) > 1  # BatchNorm: the batch is part of the result
    assert len({tuple(evaluate(ln, x, y, None, b)) for b in (1, 7, 300)}) == 1  # LayerNorm: it is not


def test_a_batchnorm_model_refuses_single_sample_evaluation_before_training():
    with pytest.raises(ConfigError, match=r"eval_batch=1 is not allowed: expected a value in \[2, inf\)"):
        quiet_fit(bn_net(), blobs(0), **{**FAST, "batch": 10, "eval_batch": 1})
    with pytest.raises(ConfigError, match=r"eval_batch=1 is not allowed.*network.norm"):
        task_config("mnist", "hm", norm="batch", batch=10, eval_batch=1)


def test_the_eval_batch_enters_a_runs_identity_only_off_its_default():
    from ferristor.config_base import to_dict
    from ferristor.experiments.config import run_identity
    assert "eval_batch" not in run_identity(to_dict(task_config("mnist", "hm")))  # saved runs keep resuming
    assert run_identity(to_dict(task_config("mnist", "hm", eval_batch=500)))["eval_batch"] == 500
