"""The generic ledger: any rule's device groups priced by the device costs; the hybrid's numbers unchanged."""
import math

import pytest
import torch

from ferristor.circuit.devices import DeviceGroup, device_costs, devices_report
from ferristor.circuit.ledger import LayerCounts, LedgerConfig, groups_report, hybrid_groups, layer_report


def test_costs_come_from_the_ledger_config():
    c = device_costs(LedgerConfig(fecap_energy_fj=50.0, memristor_energy_pj=2.0, memristor_endurance_cycles=1e4))
    assert c["fecap"].energy_nJ_per_op == pytest.approx(50e-6) and c["fecap"].endurance_cycles == 1e7
    assert c["memristor"].energy_nJ_per_op == pytest.approx(2e-3) and c["memristor"].endurance_cycles == 1e4
    assert c["digital"].energy_nJ_per_op is None


def test_report_by_hand():
    # 3 synapses: a memristor pair each (ops per device 2, 0, 6) and a digital accumulator (ops 5, 5, 1)
    groups = [DeviceGroup("memristor", "pair", 2, torch.tensor([2, 0, 6])),
              DeviceGroup("digital", "accumulator χ", 1, torch.tensor([5, 5, 1]))]
    rep = devices_report(groups, LedgerConfig())
    mem = rep["kinds"]["memristor"]
    assert mem["devices"] == 6 and mem["ops"] == {"mean": 16 / 6, "worst": 6.0, "total": 16.0}
    assert mem["energy_nJ"]["total"] == pytest.approx(16e-3)  # 1 pJ per operation (digest §5)
    assert mem["endurance"]["worst_cycles"] == 3 and mem["endurance"]["margin"] == pytest.approx(1e5 / 3)
    dig = rep["kinds"]["digital"]
    assert dig["ops"]["total"] == 11 and dig["energy_nJ"] is None and "not a device" in dig["not_a_device"]
    assert rep["energy_nJ_total"] == pytest.approx(16e-3)  # the digital part is not priced
    assert rep["written"] == ["memristor", "digital"] and "fecap" not in rep["kinds"]


def test_roles_pool_across_layers_and_the_worst_is_the_kinds_worst():
    a = [DeviceGroup("memristor", "fast pair A", 2, torch.tensor([4, 8])),
         DeviceGroup("memristor", "slow pair C", 2, torch.tensor([2, 2]))]
    b = [DeviceGroup("memristor", "fast pair A", 2, torch.tensor([10])),
         DeviceGroup("memristor", "slow pair C", 2, torch.tensor([0]))]
    mem = devices_report(a + b, LedgerConfig())["kinds"]["memristor"]
    assert mem["roles"]["fast pair A"] == {"per_synapse": 2, "devices": 6, "total": 44.0, "worst": 10.0,
                                           "mean": 44 / 6}
    assert mem["devices"] == 12 and mem["ops"]["worst"] == 10 and mem["ops"]["mean"] == pytest.approx(52 / 12)


def test_hybrid_numbers_through_the_generic_ledger_are_the_paper_counting():
    # 2 weights, 5 and 3 updates, 2 transfers, every pair written at each transfer
    c = LayerCounts(torch.tensor([5, 3]), 2, torch.tensor([2, 2]))
    cfg = LedgerConfig()
    g = hybrid_groups(c, cfg)
    assert [(x.kind, x.role, x.per_synapse) for x in g] == [("fecap", "sign/MSB cells", 8), ("fecap", "LSB cells", 6),
                                                            ("memristor", "pair", 2)]
    r = layer_report(c, cfg)
    # sign/MSB cells: 2·updates + 4·transfers = 18 and 14; LSB: 10 and 6 (digest §5)
    assert r["fecap_ops"]["worst"] == 18 and r["fecap_ops"]["mean_sign_msb_cell"] == 16
    assert r["fecap_ops"]["mean_lsb_cell"] == 8
    assert r["fecap_ops"]["total"] == 8 * (18 + 14) + 6 * (10 + 6)
    assert r["memristor_ops"] == {"mean": 4.0, "worst": 4.0, "total": 16.0}
    dev = r["devices"]["kinds"]
    assert dev["fecap"]["ops"]["total"] == r["fecap_ops"]["total"]
    assert dev["fecap"]["energy_nJ"]["total"] == pytest.approx(r["energy_nJ"]["fecap_total"])
    assert dev["memristor"]["energy_nJ"]["total"] == pytest.approx(r["energy_nJ"]["memristor_total"])


def test_a_rule_without_fecaps_reports_zero_fecap_operations():
    r = groups_report([DeviceGroup("memristor", "pair", 2, torch.tensor([2.0, 4.0]))], 0, LedgerConfig())
    assert r["fecap_ops"]["total"] == 0 and r["energy_nJ"]["fecap_total"] == 0
    assert math.isinf(r["endurance"]["fecap_margin"]) and r["endurance"]["memristor_margin"] == pytest.approx(1e5 / 2)
    assert sum(r["histogram"]["memristor_ops"]["counts"]) == 2


def test_bad_kind_is_refused():
    with pytest.raises(ValueError, match="device kind"):
        DeviceGroup("sram", "x", 1, torch.zeros(1))
