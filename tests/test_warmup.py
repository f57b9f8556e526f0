"""``python -m ferristor.warmup``: the scenarios build (or load) the kernels they name."""
import importlib

import pytest

from ferristor import warmup

KERNEL_MODULES = ("nn.train_cpu", "nn.passes_cpu", "circuit.transfer_cpu", "rule.kernels_cpu", "rule.schemes_cpu")


def _built(name: str) -> bool:
    """Whether kernel ``name`` (or, for a module path, any kernel of that module) has a build in this process."""
    if "." in name:
        mod = importlib.import_module(f"ferristor.{name}")
        return any(getattr(getattr(mod, a), "signatures", None) for a in dir(mod))
    for m in KERNEL_MODULES:
        kernel = getattr(importlib.import_module(f"ferristor.{m}"), name, None)
        if kernel is not None:
            return bool(kernel.signatures)
    raise AssertionError(f"no kernel {name}")


def test_each_scenario_builds_the_kernels_it_names():
    assert list(warmup.SCENARIOS) == list(warmup.RUN)
    seconds = warmup.warm(0)  # in this process (make test has compiled them: loaded from the cache)
    assert list(seconds) == list(warmup.SCENARIOS) and all(s >= 0 for s in seconds.values())
    for scenario, what in warmup.SCENARIOS.items():
        for name in what.rsplit(": ", 1)[1].split(", "):
            assert _built(name), (scenario, name)


def test_a_negative_job_count_is_refused(capsys):
    with pytest.raises(SystemExit) as e:
        warmup.main(["--jobs", "-1"])
    assert e.value.code == 2 and "--jobs -1" in capsys.readouterr().err
