"""nn.schemes: a baseline rule's device groups count as the hybrid's do (the ledger's options)."""
import pytest
import torch
from torch import nn

from ferristor import HybridConfig, HybridLinear, HybridSGD, Normalize
from ferristor.circuit.ledger import LedgerConfig
from ferristor.nn.functional import cross_entropy
from ferristor.nn.ledger import ledger
from ferristor.rule.schemes import SchemeConfig


def _trained(rule: str, unselected, steps: int = 40):
    cfg = HybridConfig(mode="hm-var", scheme=SchemeConfig(rule=rule), ledger=LedgerConfig(memristor_ops_unselected=unselected))
    torch.manual_seed(0)
    x, y = torch.randn(steps, 12), torch.randint(0, 3, (steps,))
    model = nn.Sequential(HybridLinear(12, 6, config=cfg, seeds=[0], name="fc1"), Normalize(), nn.ReLU(),
                          HybridLinear(6, 3, config=cfg, seeds=[0], name="fc2"), Normalize())
    opt = HybridSGD(model.parameters(), lr=0.5, p=0.5, k=1)
    for i in range(steps):
        loss = cross_entropy(model(x[i:i + 1]), y[i:i + 1])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model


def _roles(model, replica=0):
    out = {}
    for layer in (m for m in model if isinstance(m, HybridLinear)):
        groups, _ = layer.device_groups(replica)
        for g in groups:
            out[g.role] = out.get(g.role, 0.0) + float(g.ops.sum()) * g.per_synapse
    return out


@pytest.mark.parametrize("rule", ["tiki-taka", "memristor-sgd"])
def test_unselected_memristors_take_their_own_operations(rule):
    """--memristor-ops-unselected 1 had changed memristor-sgd's and mixed precision's counts but not
    Tiki-Taka's: both its pairs were counted at 2 operations per memristor per write whatever it said."""
    every, one = _trained(rule, None), _trained(rule, 1)
    a, b = _roles(every), _roles(one)
    pairs = ("fast pair A", "slow pair C") if rule == "tiki-taka" else ("pair",)
    for pair in pairs:
        assert set(b) >= {f"{pair}, selected", f"{pair}, unselected"} and pair not in b
        sel, unsel = b[f"{pair}, selected"], b[f"{pair}, unselected"]
        assert a[pair] == 2 * sel > 0  # the same training: the selected memristor as before
        # per write, the unselected memristor takes 1 operation instead of 2; a RESET of A takes 1 on each
        resets = sel - unsel  # selected: 2·writes + resets, unselected: writes + resets → writes
        assert unsel < sel and resets > 0
    net_every, net_one = ledger(every)[0]["network"], ledger(one)[0]["network"]
    assert net_one["memristor_ops"]["total"] < net_every["memristor_ops"]["total"]
    assert net_one["energy_nJ"]["memristor_total"] < net_every["energy_nJ"]["memristor_total"]


def test_tiki_taka_counts_a_reset_of_a_on_both_memristors_and_its_writes_apart():
    model = _trained("tiki-taka", 1)
    layer = model[0]
    writes = layer.crossbar("weight", layer.weight_fast_writes)[0].reshape(-1).double()
    resets = layer.crossbar("weight", layer.weight_fast_resets)[0].reshape(-1).double()
    groups = {g.role: g.ops for g in layer.scheme_runner.groups(layer, 0)}
    n = writes.numel()
    assert torch.equal(groups["fast pair A, selected"][:n], writes * 2 + resets)
    assert torch.equal(groups["fast pair A, unselected"][:n], writes * 1 + resets)
    assert resets.sum() > 0 and writes.sum() > 0
    initial = {g.role: (g.per_synapse, float(g.ops[0])) for g in layer.scheme_runner.initial_groups(layer)}
    assert initial == {"fast pair A": (2, 1.0), "slow pair C, selected": (1, 2.0), "slow pair C, unselected": (1, 1.0)}


def test_lines_per_transfer_beyond_a_layers_inputs_is_warned_naming_it():
    """lines_per_transfer above a layer's input lines had been cut to them unsaid (SelectLines' min)."""
    import warnings

    from ferristor.errors import FerristorWarning
    cfg = HybridConfig(mode="hm-var", scheme=SchemeConfig(rule="tiki-taka", lines_per_transfer=8))
    with pytest.warns(FerristorWarning, match=r"more than the 6 input lines of fc\.weight: each of its transfers "
                                              r"reads all 6 lines of A once, not 8") as w:
        HybridLinear(6, 4, config=cfg, seeds=[0], bias=True, name="fc")
    assert [m.message.field for m in w] == ["scheme.lines_per_transfer"]  # the bias, one line, is read whole
    with warnings.catch_warnings():
        warnings.simplefilter("error", FerristorWarning)
        HybridLinear(8, 4, config=cfg, seeds=[0], name="fc2")


def test_rules_md_counts_a_reset_of_a_as_resetlines_does():
    """rules.md had said reset_fast costs '1 operation per memristor'; ResetLines counts only the pairs
    not at 0 already."""
    from pathlib import Path

    from ferristor.rule import compose
    state = {"fast_code": torch.tensor([[[0.0, 2.0], [-1.0, 0.0]]]), "fast": torch.tensor([[[0.0, 0.5], [-0.1, 0.0]]]),
             "fast_resets": torch.zeros(1, 2, 2, dtype=torch.int64)}
    compose.ResetLines("fast_code", "fast", "fast_resets")({}, state, None)
    assert state["fast_resets"].tolist() == [[[0, 1], [1, 0]]]
    doc = (Path(__file__).parents[2] / "docs" / "rules.md").read_text(encoding="utf-8")
    row = next(line for line in doc.splitlines() if line.startswith("| `reset_fast`"))
    assert "not at 0 already" in row and "a pair at 0 is not reset" in row
