"""What every hybrid layer shares (``nn.hybrid.HybridModule``): its saved settings, its dtype, loading."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from torch import nn

from ferristor.errors import ConfigError, FerristorWarning
from ferristor.nn import HybridConfig, HybridConv2d, HybridLinear
from ferristor.optim import HybridSGD


def _layer(mode="hm", lsb=2.0 ** -9, seed=0, kind="linear"):
    cfg = HybridConfig(mode=mode, hidden_lsb=lsb)
    if kind == "conv":
        return HybridConv2d(2, 3, 3, config=cfg, seeds=seed, name="fc")
    return HybridLinear(6, 4, bias=True, config=cfg, seeds=seed, name="fc")


def _train(layer, steps=30, k=7):
    opt = HybridSGD(layer.parameters(), lr=0.2, p=0.5, k=k)
    g = torch.Generator().manual_seed(1)
    shape = (1, 2, 5, 5) if isinstance(layer, HybridConv2d) else (1, 6)
    for _ in range(steps):
        opt.zero_grad()
        layer(torch.randn(shape, generator=g)).square().sum().backward()
        opt.step()
    return opt


@pytest.mark.parametrize("kind", ["linear", "conv"])
def test_a_state_loads_with_its_own_grid_scale(kind):
    """convert gives each layer its own LSB: a state loaded into a layer built on another scale had
    kept the new layer's, and every weight shrank at the next transfer (no error)."""
    saved = _layer(lsb=2.0 ** -7, kind=kind)
    _train(saved)
    fresh = _layer(lsb=2.0 ** -9, seed=5, kind=kind)
    fresh.load_state_dict(saved.state_dict())
    assert fresh.config.hidden_lsb == 2.0 ** -7
    _train(saved)
    _train(fresh)
    for k, v in saved.state_dict().items():
        assert torch.equal(v, fresh.state_dict()[k]), k


def test_a_state_of_another_mode_is_refused_naming_both():
    state = _layer("hm").state_dict()
    with pytest.raises(ConfigError, match=r"state_dict=\"mode='hm'\" is not allowed with layer='fc'.*mode='hm-var' here"):
        _layer("hm-var").load_state_dict(state)


def test_a_state_saved_before_layers_kept_their_settings_still_loads():
    state = {k: v for k, v in _layer().state_dict().items() if k not in ("hidden_lsb", "settings")}
    layer = _layer(seed=3)
    layer.load_state_dict(state)  # strict: the two keys it lacks are not missing
    assert torch.equal(layer.weight_hidden, state["weight_hidden"])


def test_loading_with_assign_keeps_the_parameters_hybrid():
    saved = _layer()
    _train(saved)
    fresh = _layer(seed=4)
    fresh.load_state_dict(saved.state_dict(), assign=True)
    assert type(fresh.weight).__name__ == "HybridParameter" and fresh.weight.owner is fresh
    before = fresh.weight_hidden.clone()
    _train(fresh, steps=3)
    assert not torch.equal(before, fresh.weight_hidden)  # the rule trained it, not float SGD


@pytest.mark.parametrize("convert", [lambda m: m.double(), lambda m: m.half(), lambda m: m.to(torch.bfloat16)])
def test_the_synapses_stay_float32(convert):
    model = nn.Sequential(_layer())
    with pytest.raises(ConfigError, match=r"dtype='(float64|float16|bfloat16)' is not allowed with layer='fc'"):
        convert(model)
    assert model[0].weight.dtype == torch.float32 and model[0].weight_hidden.dtype == torch.float32
    model.float().to("cpu")  # what keeps float32 is fine


def test_a_refused_cast_names_the_layers_it_already_converted():
    """torch converts children in order: a float layer before the hybrid one is float64 by the time
    the hybrid layer refuses, and the message must say so and how to undo it."""
    model = nn.Sequential(nn.Linear(4, 6), _layer())
    with pytest.raises(ConfigError, match=r"already converted: model\.float\(\) brings them back"):
        model.double()
    assert model[0].weight.dtype == torch.float64  # what the message warns of
    model.float()
    assert model[0].weight.dtype == torch.float32 and model[1].weight_hidden.dtype == torch.float32


def test_copies_of_a_block_are_refused_until_their_streams_are_named():
    """The nn.TransformerEncoder idiom (deepcopy one block N times) made N layers drawing the same
    masks; the error pointed at a constructor argument the copies can no longer take."""
    import copy

    from ferristor.nn import name_streams
    block = nn.Sequential(HybridLinear(6, 6, config=HybridConfig(mode="hm"), seeds=0, name="fc"), nn.ReLU())
    stack = nn.Sequential(*(copy.deepcopy(block) for _ in range(3)))
    with pytest.raises(ConfigError, match=r"name='fc.weight'.*ferristor.nn.name_streams\(model\)"):
        HybridSGD(stack.parameters())
    name_streams(stack)
    assert [m.rng_name for m in stack.modules() if hasattr(m, "rng_name")] == ["0.0", "1.0", "2.0"]
    opt = HybridSGD(stack.parameters(), lr=0.2, p=0.5)
    stack(torch.randn(1, 6)).sum().backward()
    opt.step()
    masks = [m.state_dict()["weight_events"] for m in stack.modules() if hasattr(m, "rng_name")]  # flushed
    assert not torch.equal(masks[0], masks[1])  # their own draws now


def test_an_input_gradient_of_the_fused_mlp_leaves_the_chip_alone():
    """HybridMLP's fused pass had handed its layers their gradients in torch.autograd.grad(loss, x)
    too (input saliency, adversarial examples): the next step applied them."""
    from ferristor.nn import HybridMLP, NetworkSpec
    model = HybridMLP(NetworkSpec((6, 5, 3)), config=HybridConfig(mode="hm"), seeds=0)
    opt = HybridSGD(model.parameters(), lr=0.5, p=1.0, k=1)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.randn(1, 6, generator=torch.Generator().manual_seed(0), requires_grad=True)
    w = torch.tensor([1.0, -2.0, 3.0])  # not a sum of squares: of normalised outputs it is a constant (no gradient)
    (gx,) = torch.autograd.grad((model(x) * w).sum(), x)
    assert gx.shape == x.shape and gx.abs().sum() > 0
    opt.step()
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
    (gw,) = torch.autograd.grad((model(x) * w).sum(), model.layers[0].weight)  # returned, not applied
    assert gw.shape == model.layers[0].weight.shape and gw.abs().sum() > 0
    opt.step()
    (model(x.detach()) * w).sum().backward()
    opt.step()
    assert not torch.equal(model.state_dict()["layers.0.weight_hidden"], before["layers.0.weight_hidden"])


@pytest.mark.parametrize("kind", ["linear", "conv"])
@pytest.mark.parametrize("transfer", [{"model": "table", "level_means": "measured"},
                                      {"model": "circuit", "circuit_sampler": "quantiles", "circuit_table_draws": 4096}])
def test_the_fused_cpu_transfer_trains_as_the_tensor_path(kind, transfer, monkeypatch):
    """A layer's transfers on the fused kernel (``circuit.transfer_cpu``) and as tensor operations:
    the same weights, hidden integers and counters after training, for a crossbar that is a view
    (the conv layer's) and for each model with a fused kernel."""
    from ferristor.circuit.transfer import TransferConfig
    from ferristor.nn import hybrid
    states = []
    for fused in (True, False):
        monkeypatch.setattr(hybrid, "fused_transfer", (lambda m: True) if fused else (lambda m: False))
        cfg = HybridConfig(mode="hm-var", transfer=TransferConfig(**transfer))
        layer = (HybridConv2d(2, 3, 3, config=cfg, seeds=4, name="fc") if kind == "conv"
                 else HybridLinear(6, 4, bias=True, config=cfg, seeds=4, name="fc"))
        _train(layer, steps=40, k=5)
        states.append(layer.state_dict())
    for (name, a), (_, b) in zip(*(s.items() for s in states)):
        assert torch.equal(a, b), name
    assert int(states[0]["weight_transfers"].max()) >= 7


def test_a_channels_last_model_keeps_its_hybrid_layers_in_their_layout():
    """``model.to(memory_format=torch.channels_last)`` had made a conv layer's backward fail on a
    crossbar view (an obscure RuntimeError); the hybrid layers now keep their standard layout while
    the rest converts, and train as in a contiguous model."""
    def build():
        torch.manual_seed(0)
        return nn.Sequential(HybridConv2d(2, 4, 3, config=HybridConfig(mode="hm-var"), seeds=0, name="c1"), nn.ReLU(),
                             nn.Flatten(), HybridLinear(4 * 6 * 6, 3, config=HybridConfig(mode="hm-var"), seeds=0, name="fc"))
    x, y = torch.randn(2, 2, 8, 8), torch.tensor([0, 2])
    states = []
    for channels_last in (False, True):
        m = build()
        if channels_last:
            m = m.to(memory_format=torch.channels_last)
            assert m[0].weight.is_contiguous()
        opt = HybridSGD(m.parameters(), lr=0.1, p=0.5, k=2)
        for _ in range(5):
            opt.zero_grad()
            nn.functional.cross_entropy(m(x.to(memory_format=torch.channels_last) if channels_last else x), y).backward()
            opt.step()
        states.append(m.state_dict())
    for key, value in states[0].items():
        assert torch.equal(value, states[1][key]), key


def test_a_state_programmed_by_another_transfer_loads_with_a_warning(recwarn):
    """A state records the transfer configuration that programmed its analogue weights. Loading it
    into a layer of another one is an experiment (a chip trained on one device, read on another),
    so it loads — with a warning, where it had loaded silently; the same configuration, a state
    saved before the tag existed, and mode 'fp' load without one."""
    import warnings

    from ferristor.circuit.transfer import TransferConfig
    from ferristor.errors import FerristorWarning

    def layer(sigma, mode="hm-var"):
        cfg = HybridConfig(mode=mode, transfer=TransferConfig(model="table", sigma_levels=sigma))
        return HybridLinear(6, 4, config=cfg, seeds=0, name="fc")
    state = layer(0.594).state_dict()
    with pytest.warns(FerristorWarning, match=r"fc: the loaded state's analogue weights were programmed by another "
                                              r"transfer configuration"):
        layer(0.2).load_state_dict(state)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        layer(0.594).load_state_dict(state)
        layer(0.2).load_state_dict({k: v for k, v in state.items() if k != "transfer_settings"})
        layer(0.2, "fp").load_state_dict(layer(0.594, "fp").state_dict())


def test_the_transfer_tag_ignores_settings_the_model_does_not_read():
    """sigma under the ideal model (hm) reads nothing: a state loads without a warning."""
    import warnings

    from ferristor.circuit.transfer import TransferConfig
    a = HybridLinear(6, 4, config=HybridConfig(mode="hm", transfer=TransferConfig(model="ideal", sigma_levels=0.2)),
                     seeds=0, name="fc")
    b = HybridLinear(6, 4, config=HybridConfig(mode="hm"), seeds=0, name="fc")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        b.load_state_dict(a.state_dict())


def test_a_layer_pickled_before_the_transfer_tag_takes_a_state_that_has_one():
    """A layer unpickled from before layers tagged their transfer lacked the buffer, so a newer state
    failed a strict load ('Unexpected key')."""
    import pickle
    layer = _layer("hm-var")
    state = layer.state_dict()
    del layer._buffers["transfer_settings"]  # as pickled by an older ferristor
    old = pickle.loads(pickle.dumps(layer))
    old.load_state_dict(state)
    assert "transfer_settings" in old.state_dict()


@pytest.mark.parametrize("kind", ["linear", "conv"])
def test_a_tensor_hook_on_a_captured_weight_is_told_it_gets_none_and_the_module_hook_works(kind):
    """While a HybridSGD holds the layer the gradient is kept as factors and tensor hooks get None (a
    clipping hook crashed on it without a word why): a FerristorWarning names the parameter and the
    module hook that works. That hook's replacement of ∂L/∂output is what the rule takes."""
    from ferristor.errors import FerristorWarning
    shape = (2, 2, 5, 5) if kind == "conv" else (2, 6)
    x = torch.randn(shape, generator=torch.Generator().manual_seed(2))
    layer = _layer(kind=kind)
    free = _layer(kind=kind)  # no optimizer: the hook sees ∂L/∂W, as on any parameter
    seen = []
    free.weight.register_hook(lambda g: seen.append(g))
    free(x).square().sum().backward()
    assert seen[0] is not None and seen[0].shape == free.weight.shape
    opt = HybridSGD(layer.parameters(), lr=0.2, p=1.0, k=2)
    seen.clear()
    layer.weight.register_hook(lambda g: seen.append(g))
    with pytest.warns(FerristorWarning, match=r"fc\.weight: its tensor hooks .* called with None .*"
                                              r"register_full_backward_pre_hook.*opt\.release\(\)"):
        layer(x).square().sum().backward()
    with pytest.warns(FerristorWarning, match=r"fc\.weight: \.grad reads None, but this parameter has a gradient"):
        assert seen == [None] and layer.weight.grad is None
    layer.weight._backward_hooks.clear()
    # the module hook: doubling ∂L/∂output trains the chip as the doubled loss does
    twin = _layer(kind=kind)
    twin_opt = HybridSGD(twin.parameters(), lr=0.2, p=1.0, k=2)
    (2 * twin(x).square().sum()).backward()
    twin_opt.step()
    opt.zero_grad()
    layer.register_full_backward_pre_hook(lambda m, grad_output: (2 * grad_output[0],))
    layer(x.clone().requires_grad_(True)).square().sum().backward()  # (a module hook wants an input needing grad)
    opt.step()
    assert torch.equal(layer.weight_hidden, twin.weight_hidden) and torch.equal(layer.weight, twin.weight)


def _chip(layer) -> dict:
    return {k: v.clone() for k, v in layer.state_dict().items()}


def _same_chip(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_layer_owns_a_copy_of_its_config():
    """A layer had kept the HybridConfig it was given: the next layer of a sweep built from the same
    config, changed (hidden_lsb, transfer.sigma_levels), changed the layer already built — in part:
    its updates took the new LSB while its weights stayed on the old grid (no error)."""
    cfg = HybridConfig(mode="hm-var")
    a = HybridLinear(6, 4, bias=True, config=cfg, seeds=0, name="fc")
    reference = HybridLinear(6, 4, bias=True, config=HybridConfig(mode="hm-var"), seeds=0, name="fc")
    cfg.hidden_lsb = 2.0 ** -7  # for the next layer
    cfg.transfer.sigma_levels = 0.0
    b = HybridLinear(6, 4, config=cfg, seeds=0, name="fc")
    assert a.config is not cfg and a.config.transfer is not cfg.transfer
    assert (a.config.hidden_lsb, a.config.transfer.sigma_levels) == (2.0 ** -9, 0.594)
    assert (b.config.hidden_lsb, b.config.transfer.sigma_levels) == (2.0 ** -7, 0.0)
    _train(a), _train(reference)
    assert _same_chip(_chip(a), _chip(reference))


def test_a_changed_layer_config_is_refused_before_anything_moves():
    """A field of layer.config changed after the layer was built had taken effect in part (the LSB
    at the updates, not on the grid or in the saved buffer; a transfer setting at the next build of
    the transfer model): the next step, state_dict() and the ledger refuse it, naming the field."""
    import copy

    import ferristor
    layer, untouched = _layer(mode="hm-var"), _layer(mode="hm-var")
    opt, untouched_opt = _train(layer, steps=3), _train(untouched, steps=3)
    x = torch.randn(1, 6)
    layer(x).square().sum().backward()
    before = _chip(layer)
    for path, value, was in [("hidden_lsb", 2.0 ** -7, 2.0 ** -9), ("transfer.sigma_levels", 0.0, 0.594),
                             ("ledger.count_zero_updates", False, True)]:
        *parents, field = path.split(".")
        owner = getattr(layer.config, parents[0]) if parents else layer.config
        setattr(owner, field, value)
        for call in (opt.step, layer.state_dict, lambda: ferristor.ledger(nn.Sequential(layer))):
            with pytest.raises(ConfigError, match=rf"fc\.config\.{path}={value!r}: changed after the layer was "
                                                  rf"built \(it was {was!r}\).*build a new layer"):
                call()
        setattr(owner, field, was)  # set back: the layer goes on
    layer.config = HybridConfig(mode="hm")
    with pytest.raises(ConfigError, match=r"fc\.config\.mode='hm': changed after"):
        opt.step()
    layer.config = copy.deepcopy(untouched.config)  # an equal config is the same config
    assert _same_chip(_chip(layer), before)
    opt.step()
    untouched(x).square().sum().backward()
    untouched_opt.step()
    assert _same_chip(_chip(layer), _chip(untouched)) and not _same_chip(_chip(layer), before)


def test_reading_none_from_grad_while_a_gradient_is_kept_says_so_and_a_plain_loop_stays_quiet():
    """clip_grad_norm_ and GradScaler read .grad: a hybrid gradient kept as factors would be left out
    without a word. A loop that only steps, zeroes and moves the model reads nothing of the kind."""
    import warnings
    torch.manual_seed(0)
    model = torch.nn.Sequential(HybridLinear(4, 3, config=HybridConfig(mode="hm-var"), name="fc"), torch.nn.ReLU(),
                                torch.nn.Linear(3, 2))
    opt = HybridSGD(model.parameters(), lr=0.1, p=1.0, k=2)
    x, y = torch.randn(1, 4), torch.tensor([1])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(3):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            model.to("cpu")
            opt.step()
        model.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
    with pytest.warns(FerristorWarning, match=r"fc\.weight: \.grad reads None.*clip_grad_norm_.*opt\.release\(\)"):
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.zero_grad()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert model[0].weight.grad is None  # nothing kept any more: None is the truth


# --- a hybrid parameter's value is the layer's to write -------------------------------------------

_WRITES = {
    "nn.init": lambda w: nn.init.zeros_(w),
    "copy_": lambda w: w.copy_(torch.zeros_like(w)),
    ".data =": lambda w: setattr(w, "data", torch.zeros_like(w)),
    "vector_to_parameters": lambda w: torch.nn.utils.vector_to_parameters(torch.zeros(w.numel()), [w]),
}


@pytest.mark.parametrize("write", sorted(_WRITES))
@pytest.mark.parametrize("kind", ["linear", "conv"])
def test_a_weight_written_from_outside_is_refused_before_the_transfer_undoes_it(write, kind):
    """nn.init.zeros_ (and any torch write) changed the analogue weight only: the hidden integers kept
    their values, and the first transfer wrote the old weights back, silently."""
    layer = _layer(kind=kind)
    opt = HybridSGD(layer.parameters(), lr=0.1, p=0.5, k=1)
    with torch.no_grad():
        _WRITES[write](layer.weight)
    shape = (1, 2, 5, 5) if kind == "conv" else (1, 6)
    with pytest.raises(ConfigError, match=r"fc\.weight=.*written from outside the layer.*set_float_weights_"):
        layer(torch.randn(shape))
    assert opt.state == {} or all(int(s.get("inputs", 0)) == 0 for s in opt.state.values())


def test_a_write_after_the_forward_is_refused_by_the_step_and_set_float_weights_is_the_way():
    layer = _layer()
    opt = HybridSGD(layer.parameters(), lr=0.1, p=0.5, k=1)
    layer(torch.randn(1, 6)).square().sum().backward()
    with torch.no_grad():
        layer.weight.mul_(2)
    hidden = layer.weight_hidden.clone()
    with pytest.raises(ConfigError, match="written from outside"):
        opt.step()
    assert torch.equal(layer.weight_hidden, hidden)  # refused before any update
    layer.set_float_weights_("weight", torch.zeros(4, 6))  # the layer's own write: programmed, accepted
    assert torch.count_nonzero(layer.weight) == 0 and torch.count_nonzero(layer.weight_hidden) == 0
    opt.zero_grad()
    layer(torch.randn(1, 6)).square().sum().backward()
    opt.step()


def test_the_layers_own_writes_pass_a_move_a_reload_a_copy_and_a_pickle():
    import copy
    import io
    layer = _layer()
    _train(layer, steps=5, k=2)
    layer.to("cpu")._apply(lambda t: t.clone())  # new tensors behind every parameter, as a device move makes
    layer.load_state_dict(_layer(seed=3).state_dict())
    buf = io.BytesIO()
    torch.save(layer, buf)
    buf.seek(0)
    for other in (copy.deepcopy(layer), torch.load(buf, weights_only=False)):
        _train(other, steps=3, k=2)
    _train(layer, steps=3, k=2)


def test_a_plain_parameter_cannot_replace_a_hybrid_one_but_assign_loads_stay_hybrid():
    """A plain nn.Parameter assigned over a hybrid weight made it a float weight that HybridSGD trained
    by plain SGD, while the ledger went on counting it as synapses."""
    layer = _layer()
    with pytest.raises(ConfigError, match=r"fc\.weight=.*Parameter assigned in place"):
        layer.weight = nn.Parameter(torch.zeros(4, 6))
    with pytest.raises(ConfigError, match="assigned in place"):
        layer.weight = _layer(seed=2).weight  # another layer's synapses
    layer.load_state_dict(_layer(seed=4).state_dict(), assign=True)
    from ferristor.nn.hybrid import HybridParameter
    assert isinstance(layer.weight, HybridParameter) and layer.weight.owner is layer
    _train(layer, steps=2)


def test_a_float_models_weights_without_their_synapses_state_are_refused_on_load():
    """load_state_dict(float_model.state_dict(), strict=False) put off-grid floats into the analogue
    weights only; the first transfer overwrote them from the hidden integers."""
    layer = _layer()
    before = {k: v.clone() for k, v in layer.state_dict().items()}
    with pytest.raises(RuntimeError, match=r"weight: a hybrid parameter's value without its synapses' state.*convert"):
        layer.load_state_dict(nn.Linear(6, 4).state_dict(), strict=False)
    assert all(torch.equal(v, layer.state_dict()[k]) for k, v in before.items())


def test_a_state_loaded_into_a_layer_of_another_stream_name_is_warned_about():
    """The stream name picks the masks and the noise: a state resumed under another name continued on
    other streams, silently (a transfer-config mismatch was warned about; this was not)."""
    saved = _layer()
    _train(saved, steps=4)
    other = HybridLinear(6, 4, bias=True, config=saved.config, seeds=0, name="head")
    with pytest.warns(FerristorWarning, match=r"another stream name than this one \('head'\).*name="):
        other.load_state_dict(saved.state_dict())
    same = HybridLinear(6, 4, bias=True, config=saved.config, seeds=0, name="fc")
    old = {k: v for k, v in saved.state_dict().items() if k != "stream_settings"}  # saved before layers kept it
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        same.load_state_dict(saved.state_dict())
        other.load_state_dict(old)


@pytest.mark.parametrize("seeds, said", [
    (1.5, "seeds=1.5"), (True, "seeds=True"), ("3", "seeds='3'"), (torch.tensor(2.0), "seeds='a torch.float32 Tensor'"),
    (np.array([1.0]), "seeds='a float64 ndarray'"), ([0, 1], r"seeds=\[0, 1\].*1 seed"),
])
def test_seeds_of_the_wrong_kind_are_named(seeds, said):
    with pytest.raises(ConfigError, match=said):
        HybridLinear(3, 2, seeds=seeds)


def test_integer_seeds_sizes_and_a_mode_name_are_taken_as_torch_and_convert_take_them():
    for seeds in (np.int64(3), np.array(3), torch.tensor(3), [np.int32(3)]):
        assert HybridLinear(3, 2, seeds=seeds).seeds.tolist() == [3]
    assert HybridLinear(np.int64(4), np.int32(3), seeds=0).weight.shape == (3, 4)
    assert HybridConv2d(np.int64(2), 3, 3, seeds=0).in_channels == 2
    assert HybridLinear(3, 2, seeds=0, config="hm-var").mode == "hm-var"
    with pytest.raises(ConfigError, match=r"config='dict'"):
        HybridLinear(3, 2, seeds=0, config={"mode": "hm"})
    with pytest.raises(ConfigError, match="name=5"):
        HybridLinear(3, 2, seeds=0, name=5)
