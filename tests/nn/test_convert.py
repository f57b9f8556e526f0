"""``convert``: which layers become hybrid, how float weights land on the hidden grid and in the
memristors, what is left in float, and that the original model is never touched."""
import re
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ferristor.circuit.ledger import LedgerConfig, initial_programming_report
from ferristor.errors import ConfigError, FerristorWarning
from ferristor.nn import HybridConfig, HybridConv2d, HybridLinear, convert, ledger
from ferristor.optim import HybridSGD

MAX = 511  # the 10-bit hidden grid: ±511 LSB
STEP = 64  # one analogue level: the 3 MSBs of the magnitude = 2^6 LSB


class Net(nn.Module):
    """A small CNN with a normalisation (no hybrid version) and an attention-style nn.Linear subclass."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.BatchNorm2d(4), nn.MaxPool2d(2))
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(4 * 4 * 4, 12), nn.ReLU(), nn.Linear(12, 3, bias=False))
        self.odd = nn.modules.linear.NonDynamicallyQuantizableLinear(3, 3)  # a subclass: not ours to convert

    def forward(self, x):
        return self.classifier(self.features(x))


def _net(seed=0):
    torch.manual_seed(seed)
    return Net()


def _convert(model, *args, **kw):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = convert(model, *args, **kw)
    return out, [w.message for w in caught if isinstance(w.message, FerristorWarning)]


def _levels(hidden):
    """The ideal analogue level of each hidden integer: sign × its 3 MSBs."""
    return torch.sign(hidden) * torch.floor(hidden.abs() / STEP)


def test_all_linear_and_conv_layers_are_converted_and_the_rest_listed():
    model = _net()
    conv, warned = _convert(model, HybridConfig(mode="hm"), seed=1)
    assert isinstance(conv.features[0], HybridConv2d) and isinstance(conv.classifier[1], HybridLinear)
    assert isinstance(conv.classifier[3], HybridLinear) and conv.classifier[3].bias is None
    assert type(conv.features[2]) is nn.BatchNorm2d and type(conv.odd) is nn.modules.linear.NonDynamicallyQuantizableLinear
    assert conv.hybrid_conversion == {
        "converted": [("features.0", "Conv2d"), ("classifier.1", "Linear"), ("classifier.3", "Linear")],
        "left": [("features.2", "BatchNorm2d", "unsupported type"),
                 ("odd", "NonDynamicallyQuantizableLinear", "unsupported type")],
        "shared": {}}
    assert len(warned) == 2 and "features.2 (BatchNorm2d)" in str(warned[0]) and "odd (" in str(warned[0])
    assert "layer 'classifier.1': 758 of its 768 nonzero weights (98 %) read as 0" in str(warned[1])  # 'paper' on torch's init
    # the layers keep their module paths as stream names, so one seed drives them all and HybridSGD accepts them
    assert [m.rng_name for m in (conv.features[0], conv.classifier[1])] == ["features.0", "classifier.1"]
    HybridSGD(conv.parameters(), lr=0.1)
    assert conv(torch.randn(2, 1, 8, 8)).shape == (2, 3)


@pytest.mark.parametrize("include,converted", [
    ("classifier.*", ["classifier.1", "classifier.3"]),
    (["features.0", "classifier.3"], ["features.0", "classifier.3"]),
    (lambda name, m: isinstance(m, nn.Linear) and m.out_features == 3, ["classifier.3"]),
])
def test_include_globs_and_predicates_choose_the_layers(include, converted):
    conv, _ = _convert(_net(), HybridConfig(mode="hm"), include, seed=1)
    assert [n for n, _ in conv.hybrid_conversion["converted"]] == converted
    for name in ("features.0", "classifier.1", "classifier.3"):
        layer = conv.get_submodule(name)
        if name in converted:
            assert isinstance(layer, (HybridLinear, HybridConv2d))
        else:  # left in float, untouched, and listed as not included
            assert type(layer) in (nn.Linear, nn.Conv2d)
            assert torch.equal(layer.weight, _net().get_submodule(name).weight)
            assert (name, type(layer).__name__, "not included") in conv.hybrid_conversion["left"]


def _scaled_linear(scale, bias=True):
    torch.manual_seed(3)
    layer = nn.Linear(40, 30, bias=bias)
    with torch.no_grad():
        layer.weight.mul_(scale)
        if bias:
            layer.bias.mul_(scale)
    return layer


@pytest.mark.parametrize("weight_scale", ["paper", "fit", 2.0 ** -10])
def test_weights_are_rounded_onto_the_grid_saturated_and_programmed(weight_scale):
    model = nn.Sequential(_scaled_linear(12.0))  # |w| up to ≈ 1.9: beyond the paper's grid (±511·2⁻⁹ ≈ ±1)
    w, b = model[0].weight.detach(), model[0].bias.detach()
    conv, _ = _convert(model, HybridConfig(mode="hm"), seed=4, weight_scale=weight_scale)
    layer = conv[0]
    lsb = {"paper": 2.0 ** -9, "fit": float(w.abs().max()) / MAX}.get(weight_scale, weight_scale)
    assert layer.config.hidden_lsb == lsb  # the layer keeps its scale: updates and levels use it
    want = torch.round(w / lsb).clamp(-MAX, MAX)
    assert torch.equal(layer.weight_hidden, want)
    assert torch.equal(layer.bias_hidden, torch.round(b / lsb).clamp(-MAX, MAX))  # the bias on its layer's scale
    if weight_scale != "fit":
        assert (want.abs() == MAX).sum() > 10  # some weights saturate
    else:
        top = int(w.abs().flatten().argmax())  # the largest |weight| lands on the top of the grid, and none beyond
        assert want.flatten()[top] == MAX * torch.sign(w.flatten()[top]) and want.abs().max() == MAX
    # ideal transfer: the analogue weights are the levels of the hidden integers, in real units
    assert torch.equal(layer.weight, _levels(want) * (STEP * lsb))
    assert torch.equal(layer.bias, _levels(layer.bias_hidden) * (STEP * lsb))


def test_fit_scale_keeps_the_float_function_to_within_the_level_step():
    """With 'fit', a layer computes with its float weights quantised to 3-bit levels, on their own scale."""
    model = nn.Sequential(_scaled_linear(0.3, bias=False).requires_grad_(False))  # small weights: all on level 0 at the paper's scale
    x = torch.randn(8, 40)
    fit, _ = _convert(model, HybridConfig(mode="hm"), seed=4, weight_scale="fit")
    paper, _ = _convert(model, HybridConfig(mode="hm"), seed=4)
    step = STEP * float(model[0].weight.abs().max()) / MAX
    assert (fit[0].weight - model[0].weight).abs().max() <= step  # truncation to a level: less than one step
    torch.testing.assert_close(fit(x), x @ fit[0].weight.detach().T)  # the passes read the analogue weights
    assert not paper[0].weight.any()  # |w| < 64 LSB everywhere: every memristor pair at level 0


def test_hm_var_programs_noisy_levels_around_the_grid_and_fp_copies_the_floats():
    model = nn.Sequential(_scaled_linear(4.0, bias=False).requires_grad_(False))
    lsb = 2.0 ** -9
    var, _ = _convert(model, HybridConfig(mode="hm-var"), seed=5)
    levels = _levels(var[0].weight_hidden)
    analogue = var[0].weight.detach() / (STEP * lsb)
    assert torch.equal(var[0].weight_hidden, torch.round(model[0].weight / lsb).clamp(-MAX, MAX))
    assert not torch.equal(analogue, levels)  # variability
    assert ((analogue * levels) >= 0).all()  # never across zero (sign guard 'clip')
    far = levels.abs() >= 3  # clear of the clip at zero: the spread is the table's σ = 0.594 level
    err = (analogue - levels)[far]
    assert far.sum() > 300 and abs(float(err.mean())) < 0.1 and 0.5 < float(err.std()) < 0.7
    fp, _ = _convert(model, HybridConfig(mode="fp"), seed=5)
    assert torch.equal(fp[0].weight, model[0].weight) and "weight_hidden" not in fp[0].state_dict()
    assert ledger(fp) is None  # a float baseline has no device ledger


def test_the_original_model_is_untouched_and_shares_nothing():
    model = _net()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    conv, _ = _convert(model, HybridConfig(mode="hm-var"), seed=1, weight_scale="fit")
    opt = HybridSGD(conv.parameters(), lr=0.5, p=1.0, k=1)
    for _ in range(3):
        nn.functional.cross_entropy(conv(torch.randn(4, 1, 8, 8)), torch.tensor([0, 1, 2, 0])).backward()
        opt.step()
        opt.zero_grad()
    assert type(model.features[0]) is nn.Conv2d and type(model.classifier[1]) is nn.Linear
    assert not hasattr(model, "hybrid_conversion")
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert int(conv.classifier[1].weight_transfers[0]) == 3  # the copy did train
    assert not torch.equal(conv.features[2].running_mean, before["features.2.running_mean"])


def test_the_ledger_counts_weights_and_bias_columns_and_reports_the_initial_programming():
    conv, _ = _convert(_net(), HybridConfig(mode="hm"), seed=1)
    rep = ledger(conv)
    assert len(rep) == 1
    names = [layer["name"] for layer in rep[0]["layers"]]
    assert names == ["features.0", "classifier.1", "classifier.3"]
    # a bias is one more crossbar row: its synapses count with the weights
    weights = [layer["weights"] for layer in rep[0]["layers"]]
    assert weights == [4 * 1 * 3 * 3 + 4, 64 * 12 + 12, 12 * 3]
    assert rep[0]["network"]["transfers"] == 0 and rep[0]["network"]["memristor_ops"]["total"] == 0
    assert rep[0]["initial_programming"] == initial_programming_report(sum(weights), LedgerConfig())
    assert rep[0]["initial_programming"]["memristor_ops"]["total"] > 0


def test_a_model_that_is_one_layer_is_converted():
    torch.manual_seed(0)
    layer = nn.Linear(5, 2)
    conv, warned = _convert(layer, HybridConfig(mode="hm"), seed=2)
    assert isinstance(conv, HybridLinear) and conv.hybrid_conversion["converted"] == [("", "Linear")]
    assert torch.equal(conv.weight_hidden, torch.round(layer.weight.detach() / 2 ** -9)) and not warned
    assert type(layer) is nn.Linear


def test_a_models_own_parameters_are_listed_as_left_in_float():
    class Scaled(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 2)
            self.gain = nn.Parameter(torch.ones(2))

        def forward(self, x):
            return self.fc(x) * self.gain

    conv, warned = _convert(Scaled(), seed=0)
    assert conv.hybrid_conversion == {"converted": [("fc", "Linear")], "left": [("", "Scaled", "unsupported type")],
                                      "shared": {}}
    assert len(warned) == 1 and "(the model itself) (Scaled)" in str(warned[0])


def test_the_same_seed_gives_the_same_chip_and_another_seed_another():
    model = _net()
    a, b, c = (_convert(model, HybridConfig(mode="hm-var"), seed=s)[0] for s in (7, 7, 8))
    assert torch.equal(a.classifier[1].weight, b.classifier[1].weight)
    assert torch.equal(a.classifier[1].weight_hidden, c.classifier[1].weight_hidden)  # the same float weights
    assert not torch.equal(a.classifier[1].weight, c.classifier[1].weight)  # another chip's variability


@pytest.mark.parametrize("seed", [1.5, True, -1, "3"])
def test_a_bad_seed_is_named_as_convert_takes_it(seed):
    """convert passed its seed to the layers, whose error named their own argument, seeds."""
    with pytest.raises(ConfigError, match=r"^seed="):
        convert(_net(), seed=seed)


@pytest.mark.parametrize("scale", ["largest", 0, -1.0, True, None])
def test_clear_errors_for_a_bad_weight_scale(scale):
    with pytest.raises(ConfigError, match="weight_scale"):
        convert(_net(), seed=0, weight_scale=scale)


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
@pytest.mark.parametrize("padding,kernel", [(1, 3), ((1, 2), 3), ("same", 4), ("valid", 3)])
@pytest.mark.parametrize("replicas", [None, 2])
def test_every_padding_mode_computes_as_torchs_layer(mode, padding, kernel, replicas):
    """A padding mode other than zeros (convert had refused them): output, input gradient and weight
    gradient equal nn.Conv2d's with the same weights, one chip or several."""
    torch.manual_seed(0)
    float_conv = nn.Conv2d(2, 3, kernel, padding=padding, padding_mode=mode)
    chip = convert(nn.Sequential(float_conv), HybridConfig(mode="fp"), seed=0)[0]
    assert chip.padding_mode == mode and f"padding_mode='{mode}'" in repr(chip)
    hybrid = HybridConv2d(2, 3, kernel, padding=padding, padding_mode=mode, bias=True, replicas=replicas,
                          config=HybridConfig(mode="fp"), seeds=[0] * (replicas or 1), name="c")
    with torch.no_grad():
        hybrid.weight.copy_(chip.weight.expand_as(hybrid.weight))
        hybrid.bias.copy_(chip.bias.expand_as(hybrid.bias))
        float_conv.weight.copy_(chip.weight)
        float_conv.bias.copy_(chip.bias)
    x = torch.randn(*(() if replicas is None else (replicas,)), 2, 2, 7, 6, requires_grad=True)
    out = hybrid(x)
    gx, gw = torch.autograd.grad((out ** 2).sum(), [x, hybrid.weight])
    x0 = x.detach().reshape(-1, 2, 7, 6).requires_grad_()
    ref = float_conv(x0)
    rgx, rgw = torch.autograd.grad((ref ** 2).sum(), [x0, float_conv.weight])
    assert torch.allclose(out.reshape(ref.shape), ref, atol=1e-5)
    assert torch.allclose(gx.reshape(rgx.shape), rgx, atol=1e-4)
    per_chip = gw if replicas is None else gw.sum(0)
    assert torch.allclose(per_chip, rgw, atol=1e-3)


def test_an_unknown_padding_mode_is_a_clear_error():
    with pytest.raises(ConfigError, match=r"padding_mode='mirror' is not allowed: expected 'zeros' or 'reflect'"):
        HybridConv2d(1, 2, 3, padding_mode="mirror")


@pytest.mark.parametrize("padding", ["same", "valid"])
def test_string_paddings_convert_and_compute_as_the_float_layer(padding):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2, 3, 4, padding=padding))
    chip = convert(model, HybridConfig(mode="fp"), seed=0)
    x = torch.randn(2, 2, 7, 7)
    assert chip[0].padding == padding
    assert torch.allclose(chip(x), F.conv2d(x, chip[0].weight, chip[0].bias, padding=padding), atol=1e-6)


def test_the_ledger_prints_per_layer_and_for_the_network():
    from ferristor.nn import format_ledger
    conv, _ = _convert(_net(), HybridConfig(mode="hm"), seed=1)
    opt = HybridSGD(conv.parameters(), lr=0.1, p=1.0, k=2)
    for _ in range(5):
        nn.functional.cross_entropy(conv(torch.randn(1, 1, 8, 8)), torch.tensor([1])).backward()
        opt.step()
        opt.zero_grad()
    rep = ledger(conv)[0]
    lines = format_ledger(rep).splitlines()
    assert lines[0].split()[:4] == ["layer", "synapses", "transfers", "FeCAP"] and len(lines) == 1 + 3 + 1 + 1
    assert "FeCAP ops/sign·MSB cell mean" in lines[0]
    for line, layer in zip(lines[1:], rep["layers"] + [rep["network"]]):
        cells = line.split()
        assert cells[1:3] == [f"{layer['weights']:,}", "2"]  # 5 inputs, k = 2
        assert cells[3] == f"{layer['fecap_ops']['mean_sign_msb_cell']:,.1f}"  # the column it names, not all 14 cells'
        assert cells[5] == f"{layer['memristor_ops']['mean']:,.1f}" == "4.0"  # 2 transfers × 2 ops
    assert lines[-1].startswith("initial programming (apart): 5 ops per sign/MSB FeCAP, 2 per memristor")


def test_a_weight_scale_function_sets_each_layers_lsb():
    from ferristor.nn import quantile_scale
    model = nn.Sequential(_scaled_linear(1.0), nn.ReLU(), _scaled_linear(0.5))
    model[2] = nn.Linear(30, 30)
    seen = []

    def by_name(name, weight):
        seen.append((name, tuple(weight.shape), weight.requires_grad))
        return 2.0 ** -10 if name == "0" else None  # None: the config's LSB
    conv, _ = _convert(model, HybridConfig(mode="hm"), seed=0, weight_scale=by_name)
    assert seen == [("0", (30, 40), False), ("2", (30, 30), False)]
    assert conv[0].config.hidden_lsb == 2.0 ** -10 and conv[2].config.hidden_lsb == 2.0 ** -9
    conv, _ = _convert(model, HybridConfig(mode="hm"), seed=0, weight_scale=quantile_scale(0.9))
    for float_layer, layer in ((model[0], conv[0]), (model[2], conv[2])):
        a = float_layer.weight.detach().abs().flatten().double()
        lsb = float(torch.quantile(a, 0.9)) / MAX
        assert layer.config.hidden_lsb == lsb
        saturated = (layer.weight_hidden.abs() == MAX).float().mean()
        assert 0.09 <= float(saturated) <= 0.11  # the largest tenth sits on the top of the grid
        assert torch.equal(layer.weight_hidden, torch.round(float_layer.weight.detach() / lsb).clamp(-MAX, MAX))
    fit = _convert(model, HybridConfig(mode="hm"), seed=0, weight_scale="fit")[0]
    assert conv_lsbs(_convert(model, HybridConfig(mode="hm"), seed=0, weight_scale=quantile_scale(1))[0]) == conv_lsbs(fit)


def conv_lsbs(model):
    return [m.config.hidden_lsb for m in model.modules() if isinstance(m, HybridLinear)]


@pytest.mark.parametrize("value", [0.0, -1.0, float("nan"), float("inf"), "big", True])
def test_a_weight_scale_function_returning_no_lsb_is_a_clear_error(value):
    with pytest.raises(ConfigError, match=r"weight_scale=.*\('0', …\).*positive, finite LSB"):
        convert(nn.Sequential(nn.Linear(3, 2)), seed=0, weight_scale=lambda name, w: value)


@pytest.mark.parametrize("q", [0, 1.5, True, "0.9"])
def test_quantile_scale_takes_a_quantile(q):
    from ferristor.nn import quantile_scale
    with pytest.raises(ConfigError, match="quantile"):
        quantile_scale(q)


@pytest.mark.parametrize("where", ["weight", "bias"])
@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_float_weights_are_refused_naming_the_layer(where, value):
    """A NaN had been stored as a hidden 'integer' and an inf silently saturated at 511 LSB."""
    model = nn.Sequential(nn.Linear(3, 2), nn.ReLU())
    with torch.no_grad():
        getattr(model[0], where).view(-1)[0] = value
    with pytest.raises(ConfigError, match=rf"0\.{where}='1 non-finite value"):
        convert(model, seed=0)


def test_config_may_be_a_mode_name_and_anything_else_is_a_clear_error():
    layer = convert(nn.Linear(3, 2), "hm", seed=0)
    assert isinstance(layer, HybridLinear) and layer.config.mode == "hm"
    for bad, match in ((5, "config='int'"), ("hm-vr", "mode='hm-vr'")):
        with pytest.raises(ConfigError, match=match):
            convert(nn.Linear(3, 2), bad, seed=0)
    with pytest.raises(ConfigError, match="include=3"):
        convert(nn.Linear(3, 2), include=3, seed=0)


class Reused(nn.Module):
    """One nn.Linear applied twice (a recurrent / weight-shared block), reachable under three paths."""

    def __init__(self):
        super().__init__()
        self.inp = nn.Linear(8, 8)
        self.block = nn.Linear(8, 8)
        self.blocks = nn.ModuleList([self.block, self.block])
        self.head = nn.Linear(8, 3)

    def forward(self, x):
        x = torch.relu(self.inp(x))
        for block in self.blocks:
            x = torch.relu(block(x))
        return self.head(x)


def _reused(seed=0):
    torch.manual_seed(seed)
    return Reused()


def test_a_layer_used_twice_becomes_one_hybrid_layer_at_every_path():
    """named_modules() lists a module once: only `block` had been replaced, and forward ran the float
    layer at blocks.0 and blocks.1 while the listing called it converted."""
    conv, warned = _convert(_reused(), HybridConfig(mode="hm"), seed=0, weight_scale="fit")
    layer = conv.block
    assert isinstance(layer, HybridLinear) and conv.blocks[0] is layer and conv.blocks[1] is layer
    assert layer.rng_name == "block"  # named by its first path: stream, ledger and listing
    assert conv.hybrid_conversion == {"converted": [("inp", "Linear"), ("block", "Linear"), ("head", "Linear")],
                                      "left": [], "shared": {"block": ["blocks.0", "blocks.1"]}}
    assert not warned
    assert all(type(p).__name__ == "HybridParameter" for p in conv.parameters())  # no float layer left behind
    assert [r["name"] for r in ledger(conv)[0]["layers"]] == ["inp", "block", "head"]  # one chip, counted once
    calls = []
    layer.register_forward_hook(lambda m, i, o: calls.append(m))
    conv(torch.randn(2, 8))
    assert calls == [layer, layer]  # forward runs the hybrid layer, once per use


def test_a_layer_used_twice_gets_the_gradient_of_both_uses():
    """In fp mode the hybrid layers hold the float weights: the gradients are the float model's,
    summed over both uses of the shared layer as autograd sums them for the float one."""
    model = _reused()
    conv, _ = _convert(model, HybridConfig(mode="fp"), seed=0)
    x, y = torch.randn(4, 8), torch.tensor([0, 1, 2, 0])
    for m in (model, conv):
        nn.functional.cross_entropy(m(x), y).backward()
    torch.testing.assert_close(conv.block.weight.grad, model.block.weight.grad)
    torch.testing.assert_close(conv.block.bias.grad, model.block.bias.grad)


def test_a_layer_used_twice_trains_through_hybrid_sgd_with_both_uses_as_inputs():
    conv, _ = _convert(_reused(), HybridConfig(mode="hm"), seed=0, weight_scale="fit")
    opt = HybridSGD(conv.parameters(), lr=0.5, p=1.0, k=2)
    before = conv.block.weight_hidden.clone()
    for step in range(3):  # batch 1: the shared layer sees two inputs per sample, the others one
        nn.functional.cross_entropy(conv(torch.randn(1, 8)), torch.tensor([step % 3])).backward()
        opt.step()
        opt.zero_grad()
    block, inp = conv.block, conv.inp
    assert not torch.equal(block.weight_hidden, before)
    assert int(block.weight_updates) == 3 == int(inp.weight_updates)  # one update per step: both uses' gradient summed
    assert opt.state[block.weight]["inputs"] == 6 and opt.state[inp.weight]["inputs"] == 3
    assert int(block.weight_transfers[0]) == 3 and int(inp.weight_transfers[0]) == 1  # a transfer every k = 2 inputs


def test_include_must_pick_every_path_of_a_shared_layer_or_none():
    for include in ("blocks.*", lambda name, m: name == "block"):
        with pytest.raises(ConfigError, match=r"include=.*picks .* but not .*the same layer"):
            convert(_reused(), seed=0, include=include)
    conv, _ = _convert(_reused(), seed=0, include=["block", "blocks.*"])
    assert [n for n, _ in conv.hybrid_conversion["converted"]] == ["block"] and conv.blocks[1] is conv.block
    conv, _ = _convert(_reused(), seed=0, include="inp")  # none of its paths: one float layer, listed once
    assert type(conv.block) is nn.Linear and conv.blocks[0] is conv.block
    assert conv.hybrid_conversion["left"] == [("block", "Linear", "not included"), ("head", "Linear", "not included")]
    assert conv.hybrid_conversion["shared"] == {"block": ["blocks.0", "blocks.1"]}


def test_parameters_tied_between_modules_are_refused_naming_both():
    """Two chips would silently untie them (b.weight = a.weight, an output layer tied to an embedding)."""
    class Tied(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(8, 8, bias=False), nn.Linear(8, 8, bias=False)
            self.b.weight = self.a.weight

        def forward(self, x):
            return self.b(torch.relu(self.a(x)))

    with pytest.raises(ConfigError, match=r"a\.weight='the same Parameter as b\.weight': tied parameters"):
        convert(Tied(), seed=0)
    with pytest.raises(ConfigError, match=r"b\.weight='the same Parameter as a\.weight'"):
        convert(Tied(), seed=0, include="b")  # the other one left in float: still split
    conv, _ = _convert(Tied(), seed=0, include=[])  # both in float: the tie is kept
    assert conv.a.weight is conv.b.weight

    class Lm(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb, self.out = nn.Embedding(5, 4), nn.Linear(4, 5, bias=False)
            self.out.weight = self.emb.weight

    with pytest.raises(ConfigError, match=r"out\.weight='the same Parameter as emb\.weight'"):
        convert(Lm(), seed=0)


def test_a_frozen_layer_stays_frozen_and_training_does_not_change_it():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3))
    model[0].requires_grad_(False)  # a frozen backbone: train the head only
    model[2].bias.requires_grad_(False)
    conv, warned = _convert(model, HybridConfig(mode="hm"), seed=0, weight_scale="fit")
    assert not warned
    assert [(p.requires_grad) for p in (conv[0].weight, conv[0].bias, conv[2].weight, conv[2].bias)] == \
        [False, False, True, False]
    frozen = {k: v.clone() for k, v in conv.state_dict().items() if k.startswith("0.") or k.startswith("2.bias")}
    head = conv[2].weight_hidden.clone()
    opt = HybridSGD(conv.parameters(), lr=0.5, p=1.0, k=1)
    for step in range(4):
        nn.functional.cross_entropy(conv(torch.randn(1, 6)), torch.tensor([step % 3])).backward()
        opt.step()
        opt.zero_grad()
    after = conv.state_dict()
    for k, v in frozen.items():
        assert torch.equal(after[k], v), k
    assert not torch.equal(conv[2].weight_hidden, head) and int(conv[2].weight_transfers[0]) == 4


def test_each_layer_keeps_its_training_flag():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Conv2d(1, 2, 3))
    model[2].eval()
    conv, _ = _convert(model, HybridConfig(mode="hm"), seed=0)
    assert conv.training and conv[0].training and not conv[2].training
    conv, _ = _convert(model.eval(), HybridConfig(mode="hm"), seed=0)
    assert not any(m.training for m in conv.modules())


def test_hooks_on_a_replaced_layer_are_named_in_a_warning():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3))
    model[0].register_forward_hook(lambda m, i, o: None)
    model[0].register_full_backward_hook(lambda m, gi, go: None)
    model[2].weight.register_hook(lambda g: g)
    conv, warned = _convert(model, HybridConfig(mode="hm"), seed=0)
    assert len(warned) == 1
    text = str(warned[0])
    assert "not carried over" in text and "forward hook on 0" in text and "backward hook on 0" in text
    assert "gradient hook on 2.weight" in text
    assert not conv[0]._forward_hooks and isinstance(conv[0], HybridLinear)
    _, warned = _convert(model, HybridConfig(mode="hm"), seed=0, include="2")  # 0 not replaced: its hooks stay
    assert len(warned) == 1 and str(warned[0]).endswith("converted model if they apply): gradient hook on 2.weight")


# --- what rounding onto the grid loses, said in a warning per layer ------------------------------------

class SmallCnn(nn.Module):
    """A CNN without normalisation, as PyTorch initialises it: |w| ≲ 1/√fan_in."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.fc1 = nn.Linear(8 * 8 * 8, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv2(F.relu(self.conv1(x)))), 2)
        return self.fc1(x.flatten(1))


def _small_cnn(seed=0):
    torch.manual_seed(seed)
    return SmallCnn()


def _lost(warned):
    return [str(w) for w in warned if str(w).startswith("convert: ")]


def test_a_bias_beyond_its_layers_weights_is_clipped_with_a_warning():
    """With 'fit' a bias larger than its layer's largest |weight| had been clipped to it, silently
    (weights at 0.01 with a bias of 0.5 became 0.0088)."""
    model = _small_cnn()
    with torch.no_grad():
        model.conv1.weight.uniform_(-0.01, 0.01)
        model.conv1.bias.copy_(torch.tensor([0.5, -0.3, 0.005, 0.0, 0.0, 0.0, 0.0, 0.0]))
    with pytest.warns(FerristorWarning, match=r"layer 'conv1': 2 of 8 bias values lie beyond its grid and were "
                      r"clipped: the largest \|value\| is 0\.5, the grid holds ±0\.00\d+ \(±511 LSB.*weight_scale='fit'.*"
                      r"a weight_scale of ≥ 0\.000979 per LSB for this layer holds them") as caught:
        conv = convert(model, "hm", seed=0, weight_scale="fit")
    assert len(_lost(w.message for w in caught)) == 1  # conv2 and fc1 are well scaled: one warning, one layer
    lsb = conv.conv1.config.hidden_lsb
    assert torch.equal(conv.conv1.bias_hidden, torch.tensor([MAX, -MAX, round(0.005 / lsb)] + [0.0] * 5))  # still clipped


def test_weights_beyond_the_grid_warn_naming_fit():
    with pytest.warns(FerristorWarning, match=r"the model \(one layer\): \d+ of 1,200 weight values and \d+ of 30 "
                      r"bias values lie beyond its grid.*grid holds ±0\.998 \(±511 LSB of 0\.001953, "
                      r"weight_scale='paper'\).*weight_scale='fit' holds every weight"):
        convert(_scaled_linear(12.0), "hm", seed=0)  # |w| up to ≈ 1.9


def test_a_value_clipped_by_less_than_one_level_is_not_worth_a_warning():
    layer = nn.Linear(4, 2)
    with torch.no_grad():
        layer.weight.fill_(0.5)
        layer.bias.copy_(torch.tensor([0.5 * (1 + 60 / MAX), -0.1]))  # 60 LSB beyond the top: less than a level
    conv, warned = _convert(layer, "hm", seed=0, weight_scale="fit")
    assert not _lost(warned) and int(conv.bias_hidden[0]) == MAX
    with torch.no_grad():
        layer.bias[0] = 0.5 * (1 + 70 / MAX)
    with pytest.warns(FerristorWarning, match="1 of 2 bias values lie beyond its grid"):
        convert(layer, "hm", seed=0, weight_scale="fit")


def test_weights_that_all_read_as_zero_warn_per_layer_naming_fit():
    """'paper' (2⁻⁹ per LSB) on PyTorch's default init: conv2's and fc1's weights all sit below the first
    analogue level (64 LSB = 0.125) and read as 0 — the layers computed nothing, silently."""
    conv, warned = _convert(_small_cnn(), "hm-var", seed=0)
    lost = _lost(warned)
    assert len(lost) == 2  # one per layer: conv1's weights (|w| ≲ 1/3) mostly read as levels
    assert lost[0].startswith("convert: layer 'conv2': 576 of its 576 nonzero weights (100 %) read as 0 on the chip: below "
                              "the first analogue level, 64 LSB = 0.125 (weight_scale='paper')")
    assert lost[1].startswith("convert: layer 'fc1': 5,120 of its 5,120 nonzero weights (100 %) read as 0")
    assert all("weight_scale='fit' puts each layer's largest |weight| on the top of the grid" in t for t in lost)
    assert not (conv.fc1.weight_hidden.abs() >= STEP).any()  # what the warning says
    model = nn.Sequential(_scaled_linear(0.5, bias=False))  # |w| ≲ 0.08
    with torch.no_grad():
        model[0].weight[0, 0] = 1.0  # one large weight: with 'fit' all others sit below its first level
    with pytest.warns(FerristorWarning, match=r"layer '0': 1,199 of its 1,200 nonzero weights \(99 %\).*quantile_scale\(0\.99\)"):
        convert(model, "hm", seed=0, weight_scale="fit")


def test_a_well_scaled_conversion_does_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        conv = convert(_small_cnn(), "hm-var", seed=0, weight_scale="fit")
        convert(_small_cnn(), "fp", seed=0)  # fp copies the floats: nothing is lost
        convert(_small_cnn(), "hm", seed=0, include="conv1")  # 'paper' suits conv1 (|w| ≲ 1/3)
        convert(_scaled_linear(12.0), "hm", seed=0, weight_scale=0.004)  # a number that holds them all
    assert conv(torch.randn(2, 1, 16, 16)).shape == (2, 10)


def test_quantile_scale_follows_the_layout_it_converts_to():
    """quantile_scale(q) put the quantile on 511 LSB whatever the layout: on an 8-bit synapse most
    weights saturated at 127. Without its own max_hidden it now takes the layer's."""
    import warnings

    from ferristor.circuit.layout import SynapseLayout
    from ferristor.nn.convert import quantile_scale
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(20, 6, bias=False))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        chip = convert(model, HybridConfig(mode="hm", layout=SynapseLayout(hidden_bits=8)), seed=0,
                       weight_scale=quantile_scale(1.0))
    hidden = chip[0].weight_hidden.abs()
    assert int(hidden.max()) == 127 and int((hidden == 127).sum()) <= 2  # the largest at the top, not most (511 LSB: ~3 in 4)
    assert quantile_scale(1.0, 511)("x", torch.tensor([2.0])) == 2.0 / 511  # an explicit max_hidden is kept


def test_a_converted_model_converted_again_keeps_its_chip():
    """convert(convert(m, 'hm-var'), 'fp') had returned the hm-var layer as it was, listed nowhere and
    without a word: it is kept (reprogramming would lose its hidden state), listed, and the other config
    asked is named; a new float layer beside it is converted."""
    chip = convert(nn.Sequential(nn.Linear(4, 3)), "hm-var", seed=0, weight_scale="fit")
    hidden = chip[0].state_dict()
    grown = nn.Sequential(chip[0], nn.ReLU(), nn.Linear(3, 2))
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        again = convert(grown, "fp", seed=1)
    assert again.hybrid_conversion == {"converted": [("2", "Linear")], "left": [("0", "HybridLinear", "already hybrid")],
                                       "shared": {}}
    assert again[0].mode == "hm-var" and isinstance(again[2], HybridLinear) and again[2].mode == "fp"
    assert all(torch.equal(v, hidden[k]) for k, v in again[0].state_dict().items() if k in hidden)
    (w,) = [str(x.message) for x in seen]
    assert w.startswith("kept as they are, already hybrid with another config than asked") and \
        w.endswith("0 (mode 'hm-var', not 'fp', transfer differs)")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the same config: kept without a word
        assert convert(chip, "hm-var", seed=2).hybrid_conversion["left"] == [("0", "HybridLinear", "already hybrid")]


def test_converted_layers_own_their_configs():
    """convert copied the config per layer shallowly (its own LSB): every converted layer shared the
    caller's transfer, ledger and layout objects, so changing cfg.transfer after convert (for the next
    conversion of a sweep) changed the transfers of a model already converted."""
    cfg = HybridConfig(mode="hm-var")
    chip, _ = _convert(_net(), cfg, seed=0)
    twin, _ = _convert(_net(), HybridConfig(mode="hm-var"), seed=0)
    cfg.transfer.sigma_levels = 0.0
    layers = [m for _, m in chip.named_modules() if isinstance(m, (HybridLinear, HybridConv2d))]
    assert len(layers) == 3 and all(m.config.transfer.sigma_levels == 0.594 for m in layers)
    assert len({id(m.config.transfer) for m in layers} | {id(cfg.transfer)}) == 4
    x = torch.randn(1, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    for model in (chip, twin):
        opt = HybridSGD(model.parameters(), lr=0.1, p=1.0, k=1)
        for _ in range(3):
            opt.zero_grad()
            model(x).square().sum().backward()
            opt.step()
    assert all(torch.equal(a, b) for a, b in zip(chip.state_dict().values(), twin.state_dict().values()))


@pytest.mark.parametrize("include", ["clasifier*", ["features.1", "classifier.0"], lambda name, m: False])
def test_an_include_that_picks_no_layer_is_refused_listing_the_layers_it_could_pick(include):
    """A glob with a typo had returned an all-float model without a word (nothing in the ledger)."""
    model = _net()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    shown = re.escape(repr("<lambda>" if callable(include) else include))
    with pytest.raises(ConfigError, match=rf"^include={shown}: it picks none of the model's nn\.Linear/nn\.Conv2d "
                                          r"layers \(features\.0, classifier\.1, classifier\.3\), so nothing would be "
                                          r"converted: .*leave include out"):
        convert(model, "hm", include, seed=0)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    with pytest.raises(ConfigError, match=r"^include='0': the model has no nn\.Linear or nn\.Conv2d layer for it to "
                                          r"pick \(its hybrid layers 0 are kept"):
        convert(convert(nn.Sequential(nn.Linear(4, 3)), "hm", seed=0), "hm", include="0", seed=1)
    conv, _ = _convert(model, "hm", include=[], seed=0)  # an empty list keeps the model in float on purpose
    assert conv.hybrid_conversion["converted"] == []


def test_a_model_with_no_layer_to_convert_comes_back_in_float_with_a_warning():
    for model in (nn.Sequential(nn.ReLU()), nn.Sequential(nn.Embedding(4, 3), nn.LayerNorm(3))):
        conv, warned = _convert(model, "hm", seed=0)
        assert conv.hybrid_conversion["converted"] == [] and not any(isinstance(m, HybridLinear) for m in conv.modules())
        assert str(warned[0]).startswith("convert converted nothing: the model has no nn.Linear or nn.Conv2d layer")
