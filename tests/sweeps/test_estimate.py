"""The dry run's CPU-time estimate follows what a trial costs: replicas, k, and the transfer model."""
import dataclasses

from ferristor.sweeps import configs
from ferristor.sweeps.estimate import trial_cpu_seconds


def _seconds(**overrides):
    return trial_cpu_seconds(dataclasses.asdict(configs.resolve(overrides)), 60_000, 10_000)


def test_the_circuit_transfer_is_costed_as_the_device_chain_it_runs():
    table, circuit = _seconds(**{"mode": "hm-var"}), _seconds(**{"mode": "hm-var", "transfer.model": "circuit"})
    assert circuit > 2 * table  # 46.8 ms a transfer of every weight against 0.77 (BENCHMARKS.md)
    assert _seconds(mode="hm-var", **{"rule.k": 10}) > table > _seconds(mode="hm-var", **{"rule.k": 1000})
    assert _seconds(mode="fp") < table


def test_the_circuit_samplers_and_the_torch_backend_are_costed_apart():
    chain = _seconds(**{"mode": "hm-var", "transfer.model": "circuit"})
    quantiles = _seconds(**{"mode": "hm-var", "transfer.model": "circuit", "transfer.circuit_sampler": "quantiles"})
    assert quantiles < chain / 2
    # the torch backend slows the step, not the chain (tensor operations either way)
    torch_table = _seconds(**{"mode": "hm-var", "backend": "torch"})
    torch_chain = _seconds(**{"mode": "hm-var", "backend": "torch", "transfer.model": "circuit"})
    assert torch_chain - torch_table < 1.5 * (chain - _seconds(**{"mode": "hm-var"}))
    # quantiles on numba: a fused kernel, ~ the table's fused transfer (0.71 against 0.58 ms)
    assert quantiles < 1.03 * _seconds(**{"mode": "hm-var"})  # tensor operations cost +8–13 %


def test_a_tiny_trial_costs_its_start():
    """0.001 epoch had been estimated at 0.2 s where a trial takes ~0.8 s and a sweep ~9 s more to
    start its workers (sweeps/estimate.py, measured)."""
    from ferristor.sweeps.estimate import TRIAL_START_S
    tiny = _seconds(**{"epochs": 0.001, "seeds": [0]})
    assert TRIAL_START_S < tiny < TRIAL_START_S + 1.0
