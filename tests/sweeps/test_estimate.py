"""The dry run's CPU-time estimate follows what a trial costs: replicas, k, and the transfer model."""
import dataclasses

from ferristor.sweeps import configs
from ferristor.sweeps.estimate import trial_cpu_seconds


def _seconds(**overrides):
    return trial_cpu_seconds(dataclasses.asdict(configs.resolve(overrides)), 60_000, 10_000)


def test_the_circuit_transfer_is_costed_as_the_device_chain_it_runs():
    table, circuit = _seconds(**{"mode": "hm-var"}), _seconds(**{"mode": "hm-var", "transfer.model": "circuit"})
    assert circuit > 2 * table  # 50.6 ms a transfer of every weight against 0.77 (BENCHMARKS.md)
    assert _seconds(mode="hm-var", **{"rule.k": 10}) > table > _seconds(mode="hm-var", **{"rule.k": 1000})
    assert _seconds(mode="fp") < table
