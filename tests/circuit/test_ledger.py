"""Ledger counts on a tiny network, checked by hand."""
import pytest
import torch

from ferristor.circuit.ledger import LayerCounts, LedgerConfig, layer_report
import torch.nn.functional as F

from ferristor.nn import HybridConfig, HybridMLP, NetworkSpec
from ferristor.nn.ledger import ledger
from ferristor.optim import HybridSGD

from ..loaded_once import first_rows


class _Tiny:
    def __init__(self, p=1.0, k=2, steps=5, **ledger_options):
        cfg = HybridConfig(mode="hm", ledger=LedgerConfig(**ledger_options))
        self.model = HybridMLP(NetworkSpec(sizes=(3, 2, 2), norm="none"), config=cfg, seeds=0)
        opt = HybridSGD(self.model.parameters(), lr=0.1, p=p, k=k)
        g = torch.Generator().manual_seed(0)
        for _ in range(steps):
            loss = F.cross_entropy(self.model(torch.rand(1, 3, generator=g)), torch.randint(0, 2, (1,), generator=g))
            opt.zero_grad()
            loss.backward()
            opt.step()
        self.layer0 = self.model.layers[0]

    def ledger_report(self):
        return ledger(self.model)


def _tiny(**kw):
    return _Tiny(**kw)


def test_counts_by_hand_p1():
    # p = 1: every weight updated on each of 5 samples; k = 2: transfers after samples 2 and 4.
    rep = _tiny().ledger_report()[0]
    layer = rep["layers"][0]
    assert layer["transfers"] == 2
    # sign/MSB cells: 2 ops × 5 updates + 4 ops × 2 transfers = 18; LSB cells: 10
    assert layer["fecap_ops"]["worst"] == 18
    assert layer["fecap_ops"]["mean"] == pytest.approx((8 * 18 + 6 * 10) / 14)
    assert layer["memristor_ops"]["mean"] == 4 and layer["memristor_ops"]["worst"] == 4
    # totals over the 6 weights of layer 0
    assert layer["fecap_ops"]["total"] == 6 * (8 * 18 + 6 * 10)
    assert layer["memristor_ops"]["total"] == 6 * 2 * 4
    e = layer["energy_nJ"]
    assert e["fecap_total"] == pytest.approx(6 * 204 * 100e-6)
    assert e["memristor_total"] == pytest.approx(48 * 1e-3)
    assert e["per_device"] == pytest.approx(18 * 100e-6 + 4 * 1e-3)
    assert layer["endurance"]["fecap_margin"] == pytest.approx(1e7 / 9)
    assert layer["endurance"]["memristor_margin"] == pytest.approx(1e5 / 2)
    init = rep["initial_programming"]
    assert init["memristor_ops"]["per_device"] == 2
    assert init["fecap_ops"]["total"] == 10 * (14 * 1 + 8 * 4)


def test_masked_counts_match_the_mask():
    m = _tiny(p=0.5, steps=40)
    ev = m.layer0.counts(0).update_events
    assert ev.sum() > 0 and ev.max() <= 40 and (ev < 40).any()
    rep = m.ledger_report()[0]["layers"][0]
    assert rep["fecap_ops"]["worst"] == 2 * ev.max().item() + 4 * 20


def test_skip_zero_updates_counts_fewer():
    full = _tiny(p=1.0, steps=20).layer0.counts(0).update_events.sum()
    skip = _tiny(p=1.0, steps=20, count_zero_updates=False).layer0.counts(0).update_events.sum()
    assert skip < full == 20 * 6


def test_skip_unchanged_transfers():
    m = _tiny(p=1.0, k=1, steps=20, transfer_writes_unchanged=False)
    writes = m.layer0.counts(0).memristor_writes
    assert (writes <= 20).all() and (writes < 20).any()


def test_report_names_layers_and_histograms_count_every_device():
    rep = _tiny(p=0.5, steps=30).ledger_report()[0]
    assert [layer["name"] for layer in rep["layers"]] == ["layers.0", "layers.1"]
    for layer in rep["layers"]:
        for kind in ("memristor_ops", "fecap_ops"):
            h = layer["histogram"][kind]
            assert sum(h["counts"]) == layer["weights"] and len(h["edges"]) == len(h["counts"]) + 1
            assert h["edges"][-1] > layer[kind]["worst"] >= h["edges"][0]


def test_fp_model_has_no_device_ledger():
    assert ledger(HybridMLP(NetworkSpec(sizes=(3, 2), output_norm=False), config=HybridConfig(mode="fp"), seeds=0)) is None


def test_layer_report_from_counts():
    c = LayerCounts(torch.tensor([[3, 5]]), 2, torch.tensor([[2, 1]]))
    r = layer_report(c, LedgerConfig())
    assert r["fecap_ops"]["worst"] == 2 * 5 + 8
    assert r["memristor_ops"]["worst"] == 4 and r["memristor_ops"]["mean"] == 3


def test_the_unselected_memristor_can_be_counted_as_the_transfer_chain_resets_it_only():
    """Digest §5 counts RESET + SET on both memristors of a pair (2N/k each); its §3 chain RESETs both
    and SETs the selected one: memristor_ops_unselected=1 counts 3 operations a write, not 4."""
    from ferristor.circuit.ledger import initial_programming_report
    c = LayerCounts(torch.tensor([[3, 5]]), 2, torch.tensor([[2, 1]]))
    four, three = layer_report(c, LedgerConfig()), layer_report(c, LedgerConfig(memristor_ops_unselected=1))
    assert four["memristor_ops"]["total"] == (2 + 1) * 4 and three["memristor_ops"]["total"] == (2 + 1) * 3
    assert three["memristor_ops"]["worst"] == four["memristor_ops"]["worst"] == 4  # the selected device, 2 writes
    assert three["memristor_ops"]["mean"] == 2.25  # (3 writes × 3 ops) / 4 devices
    assert three["energy_nJ"]["memristor_total"] == pytest.approx(0.75 * four["energy_nJ"]["memristor_total"])
    assert initial_programming_report(10, LedgerConfig(memristor_ops_unselected=1))["memristor_ops"] == {
        "per_device": 1.5, "total": 30}
    with pytest.raises(ValueError, match="memristor_ops_unselected=3"):
        LedgerConfig(memristor_ops_unselected=3)


def test_the_default_count_leaves_the_ledger_as_it_was():
    base = _tiny().ledger_report()
    same = _tiny(memristor_ops_unselected=2).ledger_report()
    assert base == same


COSTS = dict(fecap_energy_fj=37.5, memristor_energy_pj=0.3, fecap_endurance_cycles=3e6, memristor_endurance_cycles=7e4,
             ops_per_cycle=3)


@pytest.mark.parametrize("rule", ["hybrid", "memristor-sgd", "tiki-taka"])
def test_recost_equals_the_report_made_with_the_new_costs(rule):
    """A finished run priced again (recost: the counted operations × other costs and ratings) is, to the
    bit, the report the same training gives with those costs — every energy, margin and device kind,
    the initial programming included. What lets a sweep re-price a finished trial without training."""
    import dataclasses
    import json

    from ferristor.circuit.ledger import recost
    from ferristor.rule.schemes import SchemeConfig
    assert set(COSTS) == set(LedgerConfig.REPORT_ONLY)

    def trained(**costs):
        cfg = HybridConfig(mode="hm-var", ledger=LedgerConfig(**costs), scheme=SchemeConfig(rule=rule))
        model = HybridMLP(NetworkSpec(sizes=(5, 4, 3)), config=cfg, replicas=2, seeds=[0, 1])
        opt = HybridSGD(model.parameters(), lr=0.3, p=0.5, k=3)
        g = torch.Generator().manual_seed(0)
        for _ in range(10):
            loss = F.cross_entropy(model(torch.rand(2, 1, 5, generator=g)).flatten(0, 1),
                                   torch.randint(0, 3, (2,), generator=g))
            opt.zero_grad()
            loss.backward()
            opt.step()
        return json.loads(json.dumps(ledger(model)))  # as results.json and a sweep's store hold it

    default, other = trained(), trained(**COSTS)
    assert default != other  # the costs reach the report
    for a, b in zip(default, other):
        assert recost(a, LedgerConfig(**COSTS)) == b
        assert recost(b, dataclasses.replace(LedgerConfig(), **{k: getattr(LedgerConfig(), k) for k in COSTS})) == a


COUNTS = dict(fecap_ops_per_update=3, fecap_ops_per_transfer=5, memristor_ops_per_transfer=4, memristor_ops_unselected=1,
              fecap_ops_initial_write=2)


def _trained_model(rule: str, **ledger_options):
    from ferristor.rule.schemes import SchemeConfig
    cfg = HybridConfig(mode="hm-var", ledger=LedgerConfig(**ledger_options), scheme=SchemeConfig(rule=rule))
    model = HybridMLP(NetworkSpec(sizes=(5, 4, 3)), config=cfg, replicas=2, seeds=[0, 1])
    opt = HybridSGD(model.parameters(), lr=0.3, p=0.5, k=3)
    g = torch.Generator().manual_seed(0)
    for _ in range(10):
        loss = F.cross_entropy(model(torch.rand(2, 1, 5, generator=g)).flatten(0, 1), torch.randint(0, 3, (2,), generator=g))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model


@pytest.mark.parametrize("rule", ["hybrid", "memristor-sgd", "tiki-taka"])
def test_operations_per_event_are_read_by_the_report_only(rule):
    """LedgerConfig.RECOUNTED: training counts the same events whatever they are, and a model's ledger made
    from a checkpoint's counters with other values is the one training with them gives — what lets a
    finished or checkpointed run take them without training again (run_folder.report_only)."""
    from ferristor.experiments.run_folder import report_only
    assert set(COUNTS) == set(LedgerConfig.RECOUNTED) and not set(COUNTS) & set(LedgerConfig.REPORT_ONLY)
    assert {f"ledger.{k}" for k in COUNTS} <= set(report_only())
    default, other = _trained_model(rule), _trained_model(rule, **COUNTS)
    state = default.state_dict()
    assert all(torch.equal(state[k], v) for k, v in other.state_dict().items())  # the same training, bit for bit
    assert ledger(default) != ledger(other)  # the values reach the report
    reread = HybridMLP(NetworkSpec(sizes=(5, 4, 3)), config=other.layers[0].config, replicas=2, seeds=[0, 1])
    reread.load_state_dict(state)
    assert ledger(reread) == ledger(other)


def test_a_finished_run_is_reported_again_with_other_operations_per_event(mnist_data_dir, tmp_path, monkeypatch):
    """Operations per event (LedgerConfig.RECOUNTED) had forced a retrain ("holds a checkpoint of another
    configuration"): they re-report the finished run from its checkpoint, results.json rewritten with
    the figures a fresh run with them gives, to the bit, and their values (which ``lifetime`` reads)."""
    import json

    from click.testing import CliRunner

    import ferristor.experiments.train as T
    from ferristor.cli.main import cli
    # MNIST read from its files once for the three commands, its first 6,000 training rows: 600 samples
    # at --epochs 0.1, as 0.01 of the full set (loading and hashing 60,000 rows thrice had been half the test)
    monkeypatch.setattr(T, "load_dataset", first_rows(T.load_dataset, 6000))
    data = ["--data-dir", mnist_data_dir] if mnist_data_dir else []
    base = ["train", "--epochs", "0.1", "--test-limit", "200", "--threads", "1", "--no-progress", *data]
    counts = ["--set", "ledger.fecap_ops_per_update=3", "--set", "ledger.fecap_ops_initial_write=2",
              "--memristor-ops-unselected", "1"]
    first = CliRunner().invoke(cli, [*base, "--out", str(tmp_path / "run")])
    assert first.exit_code == 0, first.output
    before = json.loads((tmp_path / "run" / "results.json").read_text())
    again = CliRunner().invoke(cli, [*base, "--out", str(tmp_path / "run"), *counts])
    assert again.exit_code == 0, again.output
    assert "already complete" in again.output and "reported again with" in again.output
    assert all(s in again.output for s in ("ledger.fecap_ops_per_update=3", "ledger.fecap_ops_initial_write=2",
                                           "ledger.memristor_ops_unselected=1"))
    after = json.loads((tmp_path / "run" / "results.json").read_text())
    assert after["timing"] == before["timing"]  # nothing trained
    assert after["config"]["ledger"]["fecap_ops_initial_write"] == 2
    assert after["config"]["ledger"]["memristor_ops_unselected"] == 1
    fresh = CliRunner().invoke(cli, [*base, "--out", str(tmp_path / "fresh"), *counts])
    assert fresh.exit_code == 0, fresh.output
    trained = json.loads((tmp_path / "fresh" / "results.json").read_text())
    assert after["ledger"] == trained["ledger"] != before["ledger"] and after["config"] == trained["config"]


def test_layers_priced_or_laid_out_otherwise_are_refused():
    """ledger(model) priced every layer with the first layer's LedgerConfig: a layer with 10× the
    energy costs came out at the first one's, silently. Layers of other synapse layouts (hidden bits)
    failed deep in the device pooling with a ValueError."""
    from torch import nn

    from ferristor.circuit.layout import SynapseLayout
    from ferristor.errors import ConfigError
    from ferristor.nn import HybridLinear
    from ferristor.nn.ledger import device_ledger
    base = HybridConfig(mode="hm")
    costly = HybridConfig(mode="hm", ledger=LedgerConfig(fecap_energy_fj=1000.0, memristor_energy_pj=10.0))
    eight = HybridConfig(mode="hm", hidden_lsb=2.0 ** -7, layout=SynapseLayout(hidden_bits=8))
    for other, part in ((costly, "ledger"), (eight, "layout")):
        model = nn.Sequential(HybridLinear(5, 4, config=base, seeds=0, name="fc1"),
                              HybridLinear(4, 3, config=other, seeds=0, name="fc2"))
        for report in (ledger, device_ledger):
            with pytest.raises(ConfigError, match=rf"config.{part}=.*module 1 \(fc2\) than in module 0 \(fc1\)"):
                report(model)
        assert model[1].ledger_report()[0]["network"]["weights"] == 12  # each layer's own report still works
    same = nn.Sequential(HybridLinear(5, 4, config=costly, seeds=0), HybridLinear(4, 3, config=costly, seeds=1))
    assert ledger(same)[0]["network"]["energy_nJ"]["total"] == pytest.approx(
        sum(m.ledger_report()[0]["network"]["energy_nJ"]["total"] for m in same))
