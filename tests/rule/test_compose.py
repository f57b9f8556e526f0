"""Rules as composable pieces: the hybrid rule built from them equals the engine's kernels bit for bit,
each baseline's fused CPU kernels equal its composed form, and every rule declares the devices it writes."""
import copy

import pytest
import torch

from ferristor.backend import use_backend
from ferristor.circuit.transfer import TransferConfig
from ferristor.circuit.ledger import LedgerConfig
from ferristor.nn import HybridConfig, HybridLinear
from ferristor.rule import compose
from ferristor.rule.schemes import RULE_DEVICES, RULES, SchemeConfig


def _factors(n, n_in, n_out, replicas, seed=0, scale=3.0):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(replicas, 1, n_in, generator=g), scale * torch.randn(replicas, 1, n_out, generator=g))
            for _ in range(n)]


def _drive_engine(layer, factors, lr, p, k, rounding):
    """The layer's own update (what HybridSGD calls), from given factors; a transfer every k steps."""
    for t, (x, delta) in enumerate(factors, start=1):
        layer._tapes["weight"] = [(x, delta, None)]
        layer._inputs["weight"] = 1
        layer.hybrid_step_("weight", lr=lr, p=p, rounding=rounding)
        if t % k == 0:
            layer.program_("weight")
    layer.flush_counts()


def _drive_composed(layer, rule, factors, lr, p, k, rounding):
    """The composed rule on a dict of the layer's state (crossbar tensors), nothing of the engine's update."""
    st = {"weight": layer.crossbar("weight", layer.weight.data).clone(),
          "hidden": layer.crossbar("weight", layer.weight_hidden).clone(),
          "pending": torch.zeros(layer.crossbar("weight", layer.weight_events).shape, dtype=torch.int64),
          "writes": torch.zeros(layer.crossbar("weight", layer.weight_events).shape, dtype=torch.int64),
          "transfers": layer.weight_transfers.clone()}
    cfg = layer.config
    for t, (x, delta) in enumerate(factors, start=1):
        ctx = compose.Context(keys=lambda s: layer.stream_keys("weight", s), transfer_model=layer.transfer_model,
                              level_step=cfg.level_step, hidden_lsb=cfg.hidden_lsb, max_hidden=cfg.layout.max_hidden,
                              max_level=cfg.layout.max_level, level_shift=cfg.layout.level_shift, step=t - 1,
                              transfers=int(st["transfers"][0]), lr=lr, p=p, rounding=rounding,
                              delta=delta[:, 0], x=x[:, 0])
        rule.step(st, ctx)
        if t % k == 0:
            rule.periodic(st, ctx)
    return st


@pytest.mark.parametrize("mode,rounding,count_zero,transfer", [
    ("hm-var", "stochastic", True, {}),
    ("hm", "nearest", True, {}),
    ("hm-var", "truncate", False, {"level_means": "measured"}),
    ("hm-var", "stochastic", True, {"sign_guard": "fold"}),
])
def test_composed_hybrid_rule_equals_the_engine_bit_for_bit(mode, rounding, count_zero, transfer):
    tcfg = TransferConfig(model="table" if mode == "hm-var" else "ideal", **transfer)
    cfg = HybridConfig(mode=mode, transfer=tcfg, ledger=LedgerConfig(count_zero_updates=count_zero))
    layer = HybridLinear(9, 7, config=cfg, replicas=3, seeds=[4, 5, 6], name="fc")
    start = copy.deepcopy(layer)
    factors = _factors(23, 9, 7, 3, scale=0.05)  # changes of a few LSBs: rounding matters, nothing saturates
    _drive_engine(layer, factors, lr=0.2, p=0.4, k=5, rounding=rounding)
    st = _drive_composed(start, compose.hybrid_rule(count_zero), factors, lr=0.2, p=0.4, k=5, rounding=rounding)
    assert torch.equal(st["hidden"], layer.crossbar("weight", layer.weight_hidden))
    assert torch.equal(st["weight"], layer.crossbar("weight", layer.weight.data))
    assert torch.equal(st["pending"], layer.crossbar("weight", layer.weight_events))
    assert torch.equal(st["transfers"], layer.weight_transfers) and int(st["transfers"][0]) == 4
    counts = layer.counts(1)
    assert torch.equal(st["writes"][1].reshape(-1), counts.memristor_writes)  # every pair, every transfer
    moved = st["hidden"] - start.crossbar("weight", start.weight_hidden)
    assert moved.abs().max() < 200 and (moved != 0).float().mean() > 0.5
    assert (st["hidden"].abs() < cfg.layout.max_hidden).all()


BASELINES = [
    SchemeConfig(rule="memristor-sgd"),
    SchemeConfig(rule="memristor-sgd", write="every_update"),
    SchemeConfig(rule="mixed-precision"),
    SchemeConfig(rule="mixed-precision", epsilon=2),
    SchemeConfig(rule="tiki-taka"),
    SchemeConfig(rule="tiki-taka", gamma=0.5, lines_per_transfer=3, transfer_lr=0.7, transfer_rounding="nearest"),
    SchemeConfig(rule="tiki-taka", reset_fast=False, transfer_rounding="truncate"),
]


@pytest.mark.parametrize("scheme", BASELINES, ids=lambda s: f"{s.rule}-{s.write}-{s.epsilon}-{s.gamma}-{s.reset_fast}")
@pytest.mark.parametrize("mode,rounding,means", [("hm-var", "stochastic", "ideal"), ("hm", "nearest", "ideal"),
                                                 ("hm-var", "truncate", "measured")])
def test_baseline_kernels_equal_their_composed_form(scheme, mode, rounding, means):
    tcfg = TransferConfig(model="table" if mode == "hm-var" else "ideal", level_means=means)
    cfg = HybridConfig(mode=mode, transfer=tcfg, scheme=scheme)
    fast = HybridLinear(9, 7, config=cfg, replicas=2, seeds=[1, 2], name="fc")
    slow = copy.deepcopy(fast)
    factors = _factors(31, 9, 7, 2, seed=3, scale=0.3)  # changes of about a level: rounding matters
    _drive_engine(fast, factors, lr=0.3, p=0.6, k=2, rounding=rounding)  # numba kernels
    with use_backend("torch"):
        _drive_engine(slow, factors, lr=0.3, p=0.6, k=2, rounding=rounding)  # composed pieces
    a, b = fast.state_dict(), slow.state_dict()
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert int(a["weight_transfers"][0]) == (15 if scheme.rule != "memristor-sgd" else 0)
    assert int(a["weight_writes"].sum()) > 20 and (a["weight_code"].abs() < 7).float().mean() > 0.5  # written, not saturated


@pytest.mark.parametrize("rule", RULES)
def test_each_rule_declares_the_devices_it_writes(rule):
    built = compose.rule_for(SchemeConfig(rule=rule))
    assert set(built.writes) == set(RULE_DEVICES[rule])
    assert built.name == rule


def test_the_initial_chip_is_the_same_for_every_rule():
    weights = []
    for rule in RULES:
        layer = HybridLinear(20, 6, config=HybridConfig(mode="hm-var", scheme=SchemeConfig(rule=rule)), seeds=9, name="fc")
        weights.append(layer.weight.detach().clone())
    for w in weights[1:]:
        assert torch.equal(w, weights[0])
    g = HybridLinear(20, 6, config=HybridConfig(mode="hm-var", scheme=SchemeConfig(rule="tiki-taka", gamma=0.3)),
                     seeds=9, name="fc")
    assert torch.equal(g.weight.detach(), weights[0]) and not g.weight_fast.any()


def test_pieces_compose_into_a_new_rule():
    """A rule nobody shipped, from the pieces: hybrid accumulation with a mixed-precision-style threshold
    transfer onto the pair (FeCAP integers as the accumulator)."""
    rule = compose.Rule("fecap-threshold",
                        update=compose.Chain(compose.ScaleGradient("hidden_lsb"), compose.BernoulliMask(),
                                             compose.RoundOntoGrid(), compose.Accumulate("hidden", "max_hidden", "fecap")),
                        transfer=compose.Chain(compose.TruncateToLevel(), compose.Program(
                            "code", "weight", "all", 3, "transfer", count="writes"), compose.CountTransfer()))
    assert rule.writes == ("fecap", "memristor")
    layer = HybridLinear(5, 4, config=HybridConfig(mode="hm"), seeds=0)
    st = _drive_composed(layer, rule, _factors(4, 5, 4, 1), lr=0.5, p=1.0, k=2, rounding="nearest")
    assert int(st["transfers"][0]) == 2 and int(st["pending"].max()) == 4


def test_a_piece_refuses_a_device_kind_no_ledger_prices():
    """Accumulate(device='sram') had been accepted and Rule.writes had then listed 'sram'."""
    with pytest.raises(ValueError, match="device='sram': one of 'fecap', 'memristor', 'digital'"):
        compose.Accumulate("hidden", None, device="sram")
    assert compose.Accumulate("chi", None, device="digital").writes == ("digital",)
