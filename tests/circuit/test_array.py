import pytest
import torch

from ferristor.circuit.transfer import GeneratorNoise
from hypothesis import given, settings, strategies as st

from ferristor.circuit.array import ArrayConfig, HybridArray
from ferristor.circuit.charge_transfer import CircuitTransfer
from ferristor.circuit.ledger import LedgerConfig
from ferristor.physics.cell import FECAP, MEMRISTOR
from ferristor.physics.presets import martemucci2025


@pytest.fixture(scope="module")
def paper_array():
    g = torch.Generator().manual_seed(0)
    a = HybridArray(generator=g)
    a.initialize(g)
    return a, g


def test_paper_array_has_the_digest_geometry(paper_array):
    a, _ = paper_array
    assert a.n_synapses == 1024
    assert int((a.cells.mode == FECAP).sum()) == 16384 and int((a.cells.mode == MEMRISTOR).sum()) == 2048
    assert a.fecap_idx.shape == (1024, 14) and a.mem_idx.shape == (1024, 2)
    used = torch.cat([a.fecap_idx.flatten(), a.mem_idx.flatten()])
    assert used.unique().numel() == used.numel()  # no cell shared between synapses
    assert int(a.synapse_index(127, 7)) == 1023
    with pytest.raises(IndexError):
        a.synapse_index(128, 0)


def test_transfer_reproduces_the_chain_and_counts_ops_and_energy():
    g = torch.Generator().manual_seed(1)
    a = HybridArray(generator=g)
    a.initialize(g)
    syn = torch.arange(a.n_synapses)
    vals = torch.randint(-511, 512, (a.n_synapses,), generator=g)
    a.write_hidden(syn, vals)
    a.transfer(None, g)
    level = (vals.abs() >> 6)
    sign = torch.where(vals < 0, -1.0, 1.0).double()
    w = a.weights(None, g)
    assert bool((w * sign > 0)[level > 0].all())
    assert float(w[level == 0].abs().max()) < 0.2  # both devices in LCS
    ref = CircuitTransfer(martemucci2025()).program(torch.ones(1, 8000), torch.arange(8).repeat_interleave(1000)[None],
                                                      GeneratorNoise([torch.Generator().manual_seed(2)])).view(8, -1).double()
    for lvl in range(8):
        got = (w * sign)[level == lvl]
        assert abs(float(got.mean()) - float(ref[lvl].mean())) < 0.35, lvl  # ≈ 128 draws a level
    assert torch.equal(a.read_hidden(syn, g), vals)  # the transfer restored every FeCAP bit
    fe = a.cells.fecap.ops[a.fecap_idx]
    led = LedgerConfig()
    # write 1 + transfer 4 (sign/MSB cells) + read 2
    assert bool((fe[:, :8] == 1 + led.fecap_ops_per_transfer + 2).all()) and bool((fe[:, 8:] == 3).all())
    me = a.cells.memristor.ops[a.mem_idx]
    assert bool((me.sum(1) == 3).all())  # RESET both, SET the selected one
    rep = a.report()
    assert rep["memristor_ops"]["total"] == 3 * 1024
    assert rep["energy_nJ"]["memristor_total"] == pytest.approx(3 * 1024 * led.memristor_energy_pj * 1e-3)
    assert rep["energy_nJ"]["fecap_total"] == pytest.approx(rep["fecap_ops"]["total"] * led.fecap_energy_fj * 1e-6)


@settings(max_examples=25, deadline=None)
@given(values=st.lists(st.integers(-511, 511), min_size=16, max_size=16), deltas=st.lists(st.integers(-40, 40), min_size=16, max_size=16),
       seed=st.integers(0, 1000))
def test_hidden_weights_round_trip_and_update_saturates(values, deltas, seed):
    g = torch.Generator().manual_seed(seed)
    a = HybridArray(ArrayConfig(lines=2), generator=g)
    a.initialize(g)
    syn = torch.arange(16)
    v = torch.tensor(values)
    a.write_hidden(syn, v)
    assert torch.equal(a.read_hidden(syn, g), v)
    new = a.update_hidden(syn, torch.tensor(deltas), g)
    assert torch.equal(new, (v + torch.tensor(deltas)).clamp(-511, 511))
    assert torch.equal(a.read_hidden(syn, g), new)
    ops = a.fecap_ops()
    assert int(ops.max()) == 1 + 2 + 2 + 2  # write, read, update (read + write), read


def test_one_synapse_addressed_by_line_and_index():
    g = torch.Generator().manual_seed(4)
    a = HybridArray(ArrayConfig(lines=3), generator=g)
    a.initialize(g)
    s = a.synapse_index(2, 5)
    a.write_hidden(s, torch.tensor([-448]))  # level −7
    a.transfer(s, g)
    g_pair = a.conductances(s, g)[0]
    assert float(g_pair[1]) > 60 and float(g_pair[0]) < 5  # G− programmed, G+ left in LCS
    others = a.cells.memristor.ops[a.mem_idx[torch.arange(a.n_synapses) != s]]
    assert int(others.sum()) == 0


def test_device_energy_uses_the_ledger_costs():
    g = torch.Generator().manual_seed(5)
    led = LedgerConfig(fecap_energy_fj=50.0, memristor_energy_pj=2.0)
    a = HybridArray(ArrayConfig(lines=1), ledger=led, generator=g)
    a.initialize(g)
    a.write_hidden(torch.arange(8), torch.arange(8) * 60)
    a.transfer(None, g)
    fe, me = a.device_energy()
    assert torch.equal(fe, a.fecap_ops().double() * 50.0) and torch.equal(me, a.memristor_ops().double() * 2.0)
    assert float(fe.max()) == 50.0 * 5 and float(me.max()) == 2.0 * 2
