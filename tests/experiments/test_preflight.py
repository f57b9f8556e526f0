"""A run that cannot work is refused before its first step, naming what was asked."""
import warnings

import pytest
import torch

from ferristor.data.registry import Dataset
from ferristor.errors import ConfigError, DataError, FerristorWarning
from ferristor.experiments import resources
from ferristor.experiments.config import task_config
from ferristor.experiments.train import train


def data(n=120, features=8, classes=3, labels=None):
    g = torch.Generator().manual_seed(0)
    y = torch.arange(n) % classes if labels is None else labels
    x = torch.randn(n, features, generator=g)
    return Dataset("tiny", x, y, x[:30], y[:30], classes)


def cfg(**over):
    kw = dict(sizes=(8, 6, 3), epochs=1, seeds=[0], eval_every=1, k=10)
    kw.update(over)
    return task_config("mnist", kw.pop("mode", "hm"), **kw)


def test_labels_past_the_outputs_never_reach_the_kernel(monkeypatch):
    from ferristor.nn.mlp import HybridMLP
    monkeypatch.setattr(HybridMLP, "forward", lambda *a: pytest.fail("a step ran"))
    ten_labels = data(features=8, classes=11, labels=torch.arange(120) % 10 + 1)  # labels 1…10
    with pytest.raises(DataError, match=r"labels span 1…10 but the network has 10 outputs \(allowed 0…9\)"):
        train(cfg(sizes=(8, 6, 10)), None, progress=False, dataset=ten_labels)
    digits = data(classes=10, labels=torch.arange(120) % 10)
    with pytest.raises(DataError, match=r"labels span 0…9 but the network has 5 outputs \(allowed 0…4\)"):
        train(cfg(sizes=(8, 6, 5)), None, progress=False, dataset=digits)


def test_float64_inputs_train_like_float32():
    d = data()
    d64 = Dataset("tiny", d.x_train.double(), d.y_train, d.x_test.double(), d.y_test, 3)
    a = train(cfg(), None, progress=False, dataset=d)
    b = train(cfg(), None, progress=False, dataset=d64)
    assert a["final_test_accuracy"] == b["final_test_accuracy"]


def test_a_batch_larger_than_the_data_is_refused():
    with pytest.raises(ConfigError, match=r"batch=100000 is not allowed: expected at most 120, the training samples"):
        train(cfg(batch=100000), None, progress=False, dataset=data())


def test_k_larger_than_the_run_warns_naming_k_and_the_samples():
    with pytest.warns(FerristorWarning, match=r"larger than the 60 samples this run trains each replica on") as w:
        r = train(cfg(k=500, epochs=0.5), None, progress=False, dataset=data())
    assert w[0].message.field == "rule.k" and w[0].message.value == 500
    assert r["ledger"][0]["network"]["transfers"] == 0
    with warnings.catch_warnings():
        warnings.simplefilter("error", FerristorWarning)
        train(cfg(k=60, epochs=0.5), None, progress=False, dataset=data())  # exactly one transfer: no warning
        train(cfg(k=500, epochs=0.5, mode="fp"), None, progress=False, dataset=data())  # fp has no transfers


def test_batchnorm_over_one_sample_is_refused_naming_both_settings():
    with pytest.raises(ConfigError) as e:
        cfg(norm="batch", batch=1)
    assert e.value.field == "batch" and e.value.context == {"network.norm": "batch"}
    assert "BatchNorm over a single sample" in str(e.value)
    cfg(norm="batch", batch=2)


def test_devices_are_checked_before_any_work(monkeypatch):
    with pytest.raises(ConfigError, match="device='bogus' is not allowed: expected a torch device this machine has: cpu"):
        cfg(device="bogus")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match="device='cuda': this torch cannot use CUDA"):
        cfg(device="cuda")
    with pytest.raises(ConfigError, match="numba kernels run on the CPU"):
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
        cfg(device="cuda:0", backend="numba")
    with pytest.raises(ConfigError, match="device='cuda:3'"):
        cfg(device="cuda:3")


@pytest.mark.parametrize("over, field", [
    ({"seeds": str(2**63)}, "seeds"), ({"seeds": str(2**63 - 1)}, None),
    ({"seeds": "0-99999999999"}, "seeds"), ({"epochs": 1e9}, "epochs"), ({"eval_every": 1e-9}, "eval_every"),
    ({"data_dir": ""}, "data_dir"), ({"threads": 10**6}, "threads"), ({"test_limit": 10**30}, None),
])
def test_values_no_run_can_use_are_refused_at_construction(over, field):
    if field is None:
        cfg(**over)
        return
    with pytest.raises(ConfigError) as e:
        cfg(**over)
    assert e.value.field == field


def test_replicas_that_do_not_fit_in_memory_are_refused_with_the_estimate(monkeypatch):
    big = task_config("mnist", "hm-var", seeds="0-100000")
    per_replica = resources.estimate_bytes(big) / 100001
    assert 4e6 < per_replica < 2e7  # 177,800 weights × 25 bytes, plus the activations of one evaluation chunk
    with pytest.raises(ConfigError, match=r"seeds='0-100000': 100,001 replicas need about .* GiB of memory \(.* per "
                                          r"replica\), but 16.0 GiB is available on cpu; use at most [\d,]+ seeds"):
        resources.check_memory(big, available=16 * 2**30)
    resources.check_memory(task_config("mnist", "hm-var", seeds="0-9"), available=16 * 2**30)
    # through train: refused before any allocation or data loading
    monkeypatch.setattr(resources, "available_bytes", lambda device: 16 * 2**30)
    with pytest.raises(ConfigError, match="100,001 replicas"):
        train(big, None, progress=False)
    assert resources.available_bytes.__module__  # the real one reads /proc/meminfo
