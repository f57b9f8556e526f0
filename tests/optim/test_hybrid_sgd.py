"""HybridSGD: the torch.optim interface — state_dict resume bit for bit, schedulers, plain parameters,
clear errors — around the one implementation of the rule."""
import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ferristor.errors import ConfigError
from ferristor.nn import HybridConfig, HybridLinear, HybridMLP, NetworkSpec
from ferristor.optim import HybridSGD, hybrid_parameters, plain_parameters

SPEC = NetworkSpec(sizes=(12, 10, 3))


def _batches(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [(torch.rand(1, 12, generator=g) * 2 - 1, torch.randint(0, 3, (1,), generator=g)) for _ in range(n)]


def _steps(model, opt, batches, scheduler=None):
    for x, y in batches:
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if scheduler is not None:
            scheduler.step()


def _make(mode="hm-var", seed=1, **opt_kw):
    model = HybridMLP(SPEC, config=HybridConfig(mode=mode), seeds=seed)
    opt = HybridSGD(model.parameters(), **{"lr": 0.3, "p": 0.5, "k": 4, **opt_kw})
    return model, opt


@pytest.mark.parametrize("mode", ["fp", "hm", "hm-var"])
def test_state_dict_resume_is_bit_for_bit(mode, tmp_path):
    data = _batches(30)
    model, opt = _make(mode)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=7, gamma=0.5)
    _steps(model, opt, data[:13], sched)  # stop between transfers (k = 4) and mid-schedule
    torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict()}, tmp_path / "s.pt")
    _steps(model, opt, data[13:], sched)

    saved = torch.load(tmp_path / "s.pt")
    fresh, fresh_opt = _make(mode, seed=77)  # other seeds and weights: everything must come from the files
    fresh_sched = torch.optim.lr_scheduler.StepLR(fresh_opt, step_size=7, gamma=0.5)
    fresh.load_state_dict(saved["model"])
    fresh_opt.load_state_dict(saved["opt"])
    fresh_sched.load_state_dict(saved["sched"])
    _steps(fresh, fresh_opt, data[13:], fresh_sched)
    for (name, a), (_, b) in zip(model.state_dict().items(), fresh.state_dict().items()):
        assert torch.equal(a, b), name


def test_scheduler_sets_the_rules_learning_rate():
    data = _batches(12)
    a, opt_a = _make()
    sched = torch.optim.lr_scheduler.StepLR(opt_a, step_size=5, gamma=0.1)
    _steps(a, opt_a, data, sched)
    b, opt_b = _make()
    for i, batch in enumerate(data):
        for g in opt_b.param_groups:
            g["lr"] = 0.3 * 0.1 ** (i // 5)
        _steps(b, opt_b, [batch])
    assert torch.equal(a.layers[0].weight_hidden, b.layers[0].weight_hidden)
    c, opt_c = _make()
    _steps(c, opt_c, data)
    assert not torch.equal(a.layers[0].weight_hidden, c.layers[0].weight_hidden)


def test_plain_parameters_get_plain_sgd_and_hybrid_ones_the_rule():
    torch.manual_seed(0)
    hyb = HybridLinear(12, 6, seeds=0, config=HybridConfig(mode="hm"))
    head = torch.nn.Linear(6, 3)
    model = torch.nn.Sequential(hyb, torch.nn.ReLU(), head)
    ref_head = copy.deepcopy(head)
    opt = HybridSGD([{"params": hybrid_parameters(model)},
                     {"params": plain_parameters(model), "momentum": 0.9}], lr=0.2, p=1.0, k=2)
    ref_opt = torch.optim.SGD(ref_head.parameters(), lr=0.2, momentum=0.9)
    hidden0 = hyb.weight_hidden.clone()
    for x, y in _batches(5):
        feats = torch.relu(hyb(x)).detach()
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        ref_loss = F.cross_entropy(ref_head(feats), y)
        ref_opt.zero_grad()
        ref_loss.backward()
        ref_opt.step()
        # keep the reference's features in step with the hybrid layer, which changes only at transfers
    assert torch.equal(head.weight, ref_head.weight) and torch.equal(head.bias, ref_head.bias)
    assert not torch.equal(hyb.weight_hidden, hidden0)  # the rule moved the hidden integers
    assert torch.equal(hyb.weight_hidden, hyb.weight_hidden.round())


def test_clear_errors():
    model = HybridMLP(SPEC, seeds=0)
    with pytest.raises(ConfigError, match="momentum"):
        HybridSGD(model.parameters(), momentum=0.9)
    with pytest.raises(ConfigError, match="p=1.5"):
        HybridSGD(model.parameters(), p=1.5)
    for lr in (-1, 0):  # torch's SGD refused a negative lr first, naming no option
        with pytest.raises(ConfigError, match=f"lr={lr} is not allowed"):
            HybridSGD(model.parameters(), lr=lr)
    with pytest.raises(ConfigError, match="k=0.5"):
        HybridSGD(model.parameters(), k=0.5)
    mixed = torch.nn.Sequential(HybridLinear(4, 3, seeds=0), torch.nn.Linear(3, 2))
    with pytest.raises(ConfigError, match="1.weight"):
        HybridSGD(mixed.named_parameters(), plain="error")
    twins = torch.nn.Sequential(HybridLinear(4, 4, seeds=0), HybridLinear(4, 4, seeds=0))
    with pytest.raises(ConfigError, match="share seed 0"):
        HybridSGD(twins.parameters())
    HybridSGD(torch.nn.Sequential(HybridLinear(4, 4, seeds=0, name="a"), HybridLinear(4, 4, seeds=0, name="b")).parameters())


def test_transfers_count_inputs_and_can_be_told_the_batch():
    model, opt = _make(mode="hm", k=6)
    x, y = torch.rand(3, 12), torch.randint(0, 3, (3,))
    for _ in range(4):  # a batch of 3 advances the count by 3: transfers after 6 and 12 inputs
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert int(model.layers[0].weight_transfers[0]) == 2
    loss = F.cross_entropy(model(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step(inputs=6)
    assert int(model.layers[0].weight_transfers[0]) == 3


def test_zero_grad_drops_captured_factors_and_unused_parameters_are_left_alone():
    model, opt = _make()
    x, y = _batches(1)[0]
    F.cross_entropy(model(x), y).backward()
    assert model.layers[0]._tapes
    opt.zero_grad()
    assert not model.layers[0]._tapes
    before = [layer.weight_hidden.clone() for layer in model.layers]
    opt.step()  # no gradient since zero_grad: nothing changes, no update is counted
    assert all(torch.equal(b, layer.weight_hidden) for b, layer in zip(before, model.layers))
    assert all(int(layer.weight_updates) == 0 for layer in model.layers)


def _chip(model) -> dict:
    return {k: v.clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("set_to_none", [True, False])
def test_model_zero_grad_drops_the_captured_gradient_as_for_a_float_layer(set_to_none):
    """model.zero_grad() (nn.Module's, on the model holding the layers) between backward() and step()
    had left the gradient the hybrid layers keep as factors, and the step applied it, while the float
    layer beside them, its .grad cleared, was skipped. Before backward() it clears nothing to come."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(HybridLinear(12, 10, config=HybridConfig(mode="hm-var"), seeds=0, name="fc1"),
                                torch.nn.ReLU(), torch.nn.Linear(10, 3))
    opt = HybridSGD(model.parameters(), lr=0.3, p=0.5, k=1)
    data = _batches(3)
    _steps(model, opt, data[:1])
    before = _chip(model)
    x, y = data[1]
    F.cross_entropy(model(x), y).backward()
    model.zero_grad(set_to_none=set_to_none)  # after backward: the step has nothing to apply
    opt.step()
    after = _chip(model)
    assert all(torch.equal(after[k], before[k]) for k in before)  # hidden, analogue, counters, the float layer
    # before backward, as a loop clears: the same chip as the loop that clears with opt.zero_grad()
    twin = copy.deepcopy(model)
    twin_opt = HybridSGD(twin.parameters(), lr=0.3, p=0.5, k=1)
    twin_opt.load_state_dict(opt.state_dict())
    _steps(twin, twin_opt, data[1:])
    for x, y in data[1:]:
        model.zero_grad(set_to_none=set_to_none)
        F.cross_entropy(model(x), y).backward()
        opt.step()
    twin_chip, chip = _chip(twin), _chip(model)
    assert all(torch.equal(chip[k], twin_chip[k]) for k in chip) and not torch.equal(chip["0.weight_hidden"],
                                                                                       before["0.weight_hidden"])


def test_an_assigned_grad_replaces_the_captured_gradient():
    """weight.grad = None drops the gradient the layer keeps as factors, and an assigned tensor is the
    gradient the step applies, alone: the step had applied the factors, and added the tensor to them."""
    layer = HybridLinear(5, 3, config=HybridConfig(mode="hm"), seeds=0, name="fc")
    alone = copy.deepcopy(layer)
    opt, alone_opt = HybridSGD(layer.parameters(), lr=0.5, p=1.0), HybridSGD(alone.parameters(), lr=0.5, p=1.0)
    before = _chip(layer)
    layer(torch.randn(1, 5)).sum().backward()
    layer.weight.grad = None
    opt.step()
    assert all(torch.equal(v, before[k]) for k, v in _chip(layer).items())
    g = torch.full((3, 5), 0.01)
    layer(torch.randn(1, 5)).sum().backward()
    layer.weight.grad = g.clone()
    opt.step()
    alone.weight.grad = g.clone()  # no backward: the tensor alone
    alone_opt.step()
    assert all(torch.equal(v, _chip(alone)[k]) for k, v in _chip(layer).items())
    assert not torch.equal(layer.weight_hidden, before["weight_hidden"])


def test_loading_a_state_into_a_used_model_forgets_its_unflushed_events():
    data = _batches(20)
    model, opt = _make(mode="hm")
    _steps(model, opt, data[:5])
    saved = copy.deepcopy(model.state_dict())
    _steps(model, opt, data[5:12])  # events counted since, still pending (flushed every 250 steps)
    model.load_state_dict(saved)
    fresh, _ = _make(mode="hm", seed=9)
    fresh.load_state_dict(saved)
    for (name, a), (_, b) in zip(model.state_dict().items(), fresh.state_dict().items()):
        assert torch.equal(a, b), name


@pytest.mark.parametrize("mode", ["fp", "hm"])
@pytest.mark.parametrize("capture", [True, False])
def test_an_empty_batch_is_no_step(mode, capture):
    """An empty batch had made a (R, 0, O) bias gradient that the kernels read past its end (the bias
    jumped at random); it covers no input, so the rule takes no step and counts nothing."""
    torch.manual_seed(0)
    layer = HybridLinear(5, 3, bias=True, config=HybridConfig(mode=mode), seeds=0, name="fc")
    opt = HybridSGD(layer.parameters(), lr=0.5, p=1.0, k=1)
    layer.capture_factors = capture
    before = {k: v.clone() for k, v in layer.state_dict().items()}
    for _ in range(3):
        opt.zero_grad()
        layer(torch.randn(0, 5)).sum().backward()
        opt.step()
    after = layer.state_dict()
    for k in before:
        assert torch.equal(before[k], after[k]), k
    assert opt.state[layer.weight].get("inputs", 0) == 0


def test_the_kernels_refuse_a_gradient_of_another_shape_than_the_crossbar():
    import numpy as np
    from ferristor.rule import kernels_cpu as K
    state, pending = np.zeros((1, 4, 3), np.float32), np.zeros((1, 4, 3), np.uint8)
    keys = np.zeros((1, 2), np.uint32)
    consts = K.update_constants(fp=False, sampler="dense", lr=0.1, p=0.5, lsb=2 ** -9, max_hidden=511)
    with pytest.raises(ValueError, match=r"got grad of shape \(1, 0, 3\), expected \(1, 4, 3\)"):
        K.dense_(False, "dense", state, pending, np.zeros((1, 0, 3), np.float32), keys, 0, consts)
    with pytest.raises(ValueError, match=r"got x of shape \(1, 5\), expected \(1, 4\)"):
        K.rank1_(False, "dense", state, pending, np.zeros((1, 3), np.float32), np.zeros((1, 5), np.float32), keys,
                 0, consts)


def test_layers_capture_only_while_a_hybrid_sgd_holds_them():
    """Capturing had stayed on after any HybridSGD (fit's own included): a later Adam found no .grad and
    never trained the layer, while captured factors piled up. Now it follows the optimizers alive."""
    import gc
    torch.manual_seed(0)
    layer = HybridLinear(5, 3, config=HybridConfig(mode="fp"), seeds=0, name="fc")
    opt = HybridSGD(layer.parameters(), lr=0.1)
    assert layer.capture_factors
    copy_model, copy_opt = copy.deepcopy((layer, opt))  # a copy captures for the copied optimizer
    assert copy_model.capture_factors and copy_opt.param_groups[0]["params"][0].owner is copy_model
    lonely = copy.deepcopy(layer)  # a model copied without an optimizer captures for none
    assert not lonely.capture_factors
    del opt, copy_opt
    gc.collect()
    assert not layer.capture_factors and not copy_model.capture_factors
    adam = torch.optim.Adam(layer.parameters(), lr=0.01)
    before = layer.weight.detach().clone()
    for _ in range(3):
        adam.zero_grad()
        layer(torch.randn(1, 5)).sum().backward()
        adam.step()
    assert layer.weight.grad is not None and not torch.equal(layer.weight.detach(), before)
    assert not layer._tapes


def test_an_older_hybrid_sgd_on_the_same_parameters_refuses_to_step_while_a_newer_one_holds_them():
    """A second HybridSGD on the same hybrid parameters had been taken and its step changed nothing
    (the first consumed the captured gradient); or the first's, if the second stepped first. Now the
    newest holds a parameter and an older one refuses to step, naming the layer, before anything moves
    — until the newer one is released or gone. Refusing the second at construction would refuse
    ``opt = HybridSGD(...)`` run again (the old one is still bound while the new one is built)."""
    import gc
    torch.manual_seed(0)
    a = HybridLinear(4, 3, config=HybridConfig(mode="hm"), seeds=0, name="a")
    b = HybridLinear(3, 2, config=HybridConfig(mode="hm"), seeds=0, name="b")
    model = torch.nn.Sequential(a, torch.nn.ReLU(), b, torch.nn.Linear(2, 2))
    old = HybridSGD(model.parameters(), lr=0.5, p=1.0, k=1)
    new = HybridSGD(a.parameters(), lr=0.5, p=1.0, k=1)
    other = HybridSGD(HybridLinear(4, 3, config=HybridConfig(mode="hm"), seeds=0, name="a").parameters())
    model(torch.randn(2, 4)).sum().backward()
    before = copy.deepcopy(model.state_dict())
    with pytest.raises(ConfigError, match=r"params='a.weight': a HybridSGD built after this one holds this parameter"):
        old.step()
    with pytest.raises(ConfigError, match="a.weight"):
        old.hybrid_step()
    for name, tensor in model.state_dict().items():  # neither a's nor b's nor the plain head's
        assert torch.equal(tensor, before[name]), name
    new.step()  # the newer one takes the gradient the older one had consumed
    assert not torch.equal(a.weight_hidden, before["0.weight_hidden"])
    other.step()  # another layer's optimizer (the same stream name) is no business of theirs

    new.release()  # released (as fit does with its own) or gone: the older one holds a again
    model(torch.randn(2, 4)).sum().backward()
    state = copy.deepcopy(model.state_dict())
    old.step()
    assert not torch.equal(a.weight_hidden, state["0.weight_hidden"])
    del new
    newest = HybridSGD(model.parameters(), lr=0.5, p=1.0, k=1)
    del newest
    gc.collect()
    model(torch.randn(2, 4)).sum().backward()
    old.step()

    opt = HybridSGD(b.parameters(), lr=0.5)  # the same line run twice: the old one is still bound meanwhile
    opt = HybridSGD(b.parameters(), lr=0.5)
    opt.load_state_dict(opt.state_dict())  # loading a state leaves who holds what as it is
    copied_model, copied_opt = copy.deepcopy((model, opt))  # copies hold their copies; the originals still step
    for m, o in ((model, opt), (copied_model, copied_opt)):
        m(torch.randn(2, 4)).sum().backward()
        state = copy.deepcopy(m.state_dict())
        o.step()
        assert not torch.equal(m[2].weight_hidden, state["2.weight_hidden"])
    shallow = copy.copy(opt)  # a shallow copy shares the parameters: the copy is the newer
    model(torch.randn(2, 4)).sum().backward()
    with pytest.raises(ConfigError, match="b.weight"):
        opt.step()
    shallow.step()


def test_fit_releases_the_optimizer_it_built():
    from ferristor.experiments.fit import fit
    torch.manual_seed(0)
    layer = HybridLinear(5, 3, config=HybridConfig(mode="hm"), seeds=0, name="fc")
    x, y = torch.randn(40, 5), torch.randint(0, 3, (40,))
    fit(layer, (x, y), (x, y), epochs=1, progress=False, k=10)
    assert not layer.capture_factors
    own = HybridSGD(layer.parameters(), lr=0.1, k=10)
    fit(layer, (x, y), (x, y), epochs=1, progress=False, optimizer=own)
    assert layer.capture_factors  # the caller's optimizer is the caller's


@pytest.mark.parametrize("change", ["maximize", "momentum", "weight_decay"])
def test_what_the_rule_has_not_is_refused_also_when_set_later(change):
    layer = HybridLinear(5, 3, config=HybridConfig(mode="hm"), seeds=0, name="fc")
    if change == "maximize":
        with pytest.raises(ConfigError, match="maximize=True is not allowed"):
            HybridSGD(layer.parameters(), maximize=True)
    opt = HybridSGD(layer.parameters())
    opt.param_groups[0][change] = True if change == "maximize" else 0.9  # as OneCycleLR sets momentum
    layer(torch.randn(1, 5)).sum().backward()
    with pytest.raises(ConfigError, match=change):
        opt.step()


@pytest.mark.parametrize("key, value, allowed", [
    ("p", 0.0, r"a value in \(0, 1\]"), ("p", 2.0, r"a value in \(0, 1\]"), ("k", 0, r"a value in \[1, inf\)"),
    ("k", 2.5, "an integer"), ("k", 2.0, "an integer"), ("lr", -0.1, r"a value in \[0, inf\)"), ("rounding", "up", "one of 'stochastic'"),
    ("sampler", "fast", "one of 'dense'"), ("k_unit", "steps", "one of 'inputs'"), ("momentum", 0.9, "0 for a group"),
    ("nesterov", True, "False for a group")])
def test_group_values_set_after_construction_are_checked_as_the_constructor_does(key, value, allowed):
    """A group's values live in param_groups for a scheduler to set; set there, p=0 and k=0 had ended in
    ZeroDivisionError, rounding='up' in a KeyError, and p=2 or lr=-0.1 trained silently. Now the step
    refuses them with the constructor's own ConfigError, naming the group, before anything moves —
    the plain head in the group before included."""
    torch.manual_seed(0)
    layer = HybridLinear(4, 3, config=HybridConfig(mode="hm"), seeds=0, name="a")
    head = torch.nn.Linear(3, 2)
    model = torch.nn.Sequential(layer, head)
    opt = HybridSGD([{"params": head.parameters()}, {"params": layer.parameters()}], lr=0.1, p=0.5, k=2)
    for _ in range(2):  # checked and cached, then changed
        opt.zero_grad()
        model(torch.randn(2, 4)).sum().backward()
        opt.step()
    opt.param_groups[1][key] = value
    before = copy.deepcopy(model.state_dict())
    opt.zero_grad()
    model(torch.randn(2, 4)).sum().backward()
    with pytest.raises(ConfigError, match=rf"param_groups\[1\]\['{key}'\]={value!r} is not allowed: expected {allowed}"):
        opt.step()
    with pytest.raises(ConfigError, match=rf"param_groups\[1\]\['{key}'\]"):
        opt.hybrid_step()  # the compiled loop's entry (experiments.fast_step) checks the same
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, before[name]), name


def test_a_schedule_may_end_at_lr_zero_and_a_tensor_lr_changed_in_place_is_checked():
    """lr = 0 is refused at construction (a mistake there) but taken at a step: schedulers end there
    (CosineAnnealingLR's eta_min=0). A tensor lr is read as a number, so a change in place is seen."""
    layer = HybridLinear(4, 3, config=HybridConfig(mode="hm"), seeds=0, name="a")
    opt = HybridSGD(layer.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.LinearLR(opt, start_factor=1.0, end_factor=0.0, total_iters=2)
    for _ in range(4):
        layer(torch.randn(1, 4)).sum().backward()
        opt.step()
        sched.step()
    assert opt.param_groups[0]["lr"] == 0.0
    lr = torch.tensor(0.1)
    opt = HybridSGD(layer.parameters(), lr=lr)
    layer(torch.randn(1, 4)).sum().backward()
    opt.step()
    lr.fill_(-0.1)
    layer(torch.randn(1, 4)).sum().backward()
    with pytest.raises(ConfigError, match=r"param_groups\[0\]\['lr'\]=-0.1"):
        opt.step()


def test_a_tensor_lr_is_taken():
    torch.manual_seed(0)
    a, b = (HybridLinear(5, 3, config=HybridConfig(mode="hm"), seeds=0, name="fc") for _ in range(2))
    for layer, lr in ((a, 0.3), (b, torch.tensor(0.3))):
        opt = HybridSGD(layer.parameters(), lr=lr, p=1.0)
        layer(torch.ones(1, 5)).sum().backward()
        opt.step()
    assert torch.equal(a.weight_hidden, b.weight_hidden)


def test_an_lr_schedule_keeps_the_kernel_constants_cache_small():
    layer = HybridLinear(5, 3, config=HybridConfig(mode="hm"), seeds=0, name="fc")
    opt = HybridSGD(layer.parameters(), lr=0.1)
    for i in range(50):
        opt.param_groups[0]["lr"] = 0.1 / (1 + i)
        opt.zero_grad()
        layer(torch.randn(1, 5)).sum().backward()
        opt.step()
    assert len(layer._cpu_arrays("weight")["consts"]) <= 8


@pytest.mark.parametrize("batch, steps, transfers", [(3, 8, 6), (4, 6, 6), (6, 4, 4), (9, 2, 2)])
def test_a_transfer_follows_each_step_that_passes_a_multiple_of_k_at_most_once(batch, steps, transfers):
    """k = 4 inputs. A batch below k or equal to it transfers every k inputs (N/k: 24 inputs, 6); a
    larger one once per step (two transfers between the same two updates would write the same levels),
    fewer than N/k, which a FerristorWarning says once — where the docs had promised N/k."""
    import warnings

    from ferristor.errors import FerristorWarning
    model, opt = _make(mode="hm", k=4)
    x, y = torch.rand(batch, 12), torch.randint(0, 3, (batch,))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(steps):
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()
    assert [int(layer.weight_transfers[0]) for layer in model.layers] == [transfers] * 2
    assert opt.state[model.layers[0].weight]["inputs"] == batch * steps
    warned = [w.message for w in caught if issubclass(w.category, FerristorWarning)]
    if batch <= 4:
        assert not warned
    else:  # once for the optimizer, not per step or layer
        assert len(warned) == 1 and warned[0].field == "k" and warned[0].value == 4
        assert f"k=4: less than the {batch} inputs one step took: a step makes at most one transfer" in str(warned[0])
        assert [w.filename for w in caught if issubclass(w.category, FerristorWarning)] == [__file__]


def test_the_batch_above_k_warning_names_the_line_that_called_hybrid_step():
    """hybrid_step (fast_step's entry) sits one frame nearer than step(), which torch wraps."""
    import warnings

    from ferristor.errors import FerristorWarning
    model, opt = _make(mode="hm", k=4)
    x, y = torch.rand(6, 12), torch.randint(0, 3, (6,))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        F.cross_entropy(model(x), y).backward()
        opt.hybrid_step()
    assert [w.filename for w in caught if issubclass(w.category, FerristorWarning)] == [__file__]


def test_k_can_count_updates_instead_of_inputs():
    """k's unit at batch > 1 is open (digest §4 gives k = 100 only): 'updates' counts a step as one."""
    model, opt = _make(mode="hm", k=2, k_unit="updates")
    x, y = torch.rand(3, 12), torch.randint(0, 3, (3,))
    for _ in range(4):  # four steps of three inputs: two transfers (by inputs four: one per step, warned)
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert int(model.layers[0].weight_transfers[0]) == 2
    with pytest.raises(ConfigError, match="k_unit='steps'"):
        _make(k_unit="steps")


@pytest.mark.parametrize("mode", ["hm", "hm-var"])
def test_a_plain_optimizer_may_not_step_hybrid_synapses_in_the_hybrid_modes(mode):
    """Without a HybridSGD, autograd fills weight.grad; a plain optimizer stepping it had written
    float values between the levels a memristor pair holds, past the hidden integers and the ledger,
    silently (nn/foreign_step.py). In mode 'fp' the synapses are float weights: any optimizer may."""
    from ferristor.experiments import fast_step
    torch.manual_seed(0)
    model = torch.nn.Sequential(HybridLinear(5, 3, config=HybridConfig(mode=mode), seeds=0, name="fc1"),
                                torch.nn.Linear(3, 2))
    before = model[0].weight.detach().clone()
    sgd = torch.optim.SGD(model.parameters(), lr=0.1)
    F.cross_entropy(model(torch.randn(4, 5)), torch.tensor([0, 1, 0, 1])).backward()
    with pytest.raises(ConfigError, match=r"SGD params='fc1.weight' is not allowed: expected parameters off hybrid "
                                          r"synapses: in mode '" + mode + "'.*HybridSGD"):
        sgd.step()
    assert torch.equal(model[0].weight.detach(), before)
    # the documented split: the rule for hybrid parameters, Adam for the rest (Adam skips a None .grad)
    rule, adam = HybridSGD(hybrid_parameters(model), lr=0.1, plain="error"), torch.optim.Adam(model.parameters())
    adam.zero_grad(), rule.zero_grad()
    F.cross_entropy(model(torch.randn(4, 5)), torch.tensor([0, 1, 0, 1])).backward()
    rule.step(), adam.step()
    fp = HybridLinear(5, 3, config=HybridConfig(mode="fp"), seeds=0, name="fc")
    plain = torch.optim.SGD(fp.parameters(), lr=0.1)
    fp(torch.randn(2, 5)).sum().backward()
    plain.step()
    # the guard is a global step hook, but not one that stops the compiled chunks
    mlp = HybridMLP(NetworkSpec((6, 5, 3)), config=HybridConfig(mode=mode), seeds=0)
    assert fast_step.applies(mlp, HybridSGD(mlp.parameters(), lr=0.1), True, torch.zeros(1, 6))


def test_a_nan_gradient_is_refused_before_anything_moves():
    """A NaN input had turned ~p of the first layer's hidden integers into NaN and counted the step
    as work. Now the step is refused — no hidden integer, analogue weight, counter or plain
    parameter moves — and the next finite step trains as if it never came."""
    torch.manual_seed(0)

    def build():
        m = torch.nn.Sequential(HybridLinear(6, 5, config=HybridConfig(mode="hm-var"), seeds=0, name="fc1"),
                                torch.nn.LayerNorm(5), HybridLinear(5, 3, config=HybridConfig(mode="hm-var"), seeds=0,
                                                                    name="fc2"))
        return m, HybridSGD(m.parameters(), lr=0.5, p=0.5, k=2)

    def step(m, opt, x, y):
        opt.zero_grad()
        F.cross_entropy(m(x), y).backward()
        opt.step()

    x, y = torch.randn(1, 6), torch.tensor([2])
    bad = x.clone()
    bad[0, 3] = float("nan")
    a, a_opt = build()
    b, b_opt = build()
    step(a, a_opt, x, y)
    step(b, b_opt, x, y)
    state = copy.deepcopy(b.state_dict())
    with pytest.raises(ConfigError, match=r"fc1.weight gradient='NaN/inf': the step was refused"):
        step(b, b_opt, bad, y)
    for key, value in b.state_dict().items():
        assert torch.equal(value, state[key]), key
    for m, opt in ((a, a_opt), (b, b_opt)):
        step(m, opt, x, y)
    for (key, u), (_, v) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(u, v), key
    b[2]._tapes["weight"] = [(torch.ones(1, 1, 5), torch.full((1, 1, 3), float("inf")), None)]  # fc2's alone
    with pytest.raises(ConfigError, match="fc2.weight gradient"):
        b_opt.hybrid_step()


def test_gradients_no_step_consumes_warn_once_they_pile_up(monkeypatch):
    """A loop that steps and clears only another optimizer (a warm-up) left the captured gradients
    growing one per backward pass, unseen; now a warning names the way out."""
    from ferristor.errors import FerristorWarning
    from ferristor.nn import hybrid
    monkeypatch.setattr(hybrid, "TAPE_WARN", 5)
    layer = HybridLinear(4, 2, config=HybridConfig(mode="hm"), seeds=0, name="fc")
    model = torch.nn.Sequential(layer)
    opt = HybridSGD(layer.parameters(), lr=0.1)
    warm_up = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)  # holds no hybrid parameter
    for _ in range(4):
        model(torch.randn(1, 4)).sum().backward()
        warm_up.step(), warm_up.zero_grad()
    with pytest.warns(FerristorWarning, match=r"fc.weight: 5 gradients recorded and no HybridSGD step.*"
                                              r"opt.zero_grad\(\) of the HybridSGD, or model.zero_grad\(\)"):
        model(torch.randn(1, 4)).sum().backward()
    opt.zero_grad()
    assert not layer._tapes


def test_an_infinite_input_behind_a_relu_and_a_closure_are_refused_before_anything_moves():
    """-inf through a ReLU leaves δ finite while x·δ is NaN (the check had read δ alone and let NaN
    into the hidden integers); with a closure, the plain head had stepped on NaN before the refusal."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(HybridLinear(3, 2, config=HybridConfig(mode="hm"), seeds=0, name="fc1"), torch.nn.ReLU(),
                                torch.nn.Linear(2, 2))
    opt = HybridSGD(model.parameters(), lr=0.5, p=1.0)
    before = copy.deepcopy(model.state_dict())
    x = torch.tensor([[-float("inf"), 0.5, 0.2]])
    opt.zero_grad()
    F.cross_entropy(model(x), torch.tensor([1])).backward()
    with pytest.raises(ConfigError, match="fc1.weight gradient"):
        opt.step()

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(model(torch.tensor([[float("nan"), 0.5, 0.2]])), torch.tensor([1]))
        loss.backward()
        return loss
    with pytest.raises(ConfigError, match="gradient='NaN/inf'"):
        opt.step(closure)
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key
    opt.zero_grad()
    F.cross_entropy(model(torch.randn(1, 3)), torch.tensor([1])).backward()
    assert opt.step(lambda: torch.tensor(1.0)) is not None  # a closure's loss is returned


def test_the_plain_optimizer_guard_follows_param_groups_edited_in_place():
    plain = torch.nn.Linear(3, 2)
    layer = HybridLinear(3, 2, config=HybridConfig(mode="hm"), seeds=0, name="fc")
    sgd = torch.optim.SGD(plain.parameters(), lr=0.1)
    plain(torch.randn(1, 3)).sum().backward()
    sgd.step()
    sgd.param_groups[0]["params"] = list(layer.parameters())  # the same count, other parameters
    layer(torch.randn(1, 3)).sum().backward()
    with pytest.raises(ConfigError, match="fc.weight"):
        sgd.step()


@pytest.mark.parametrize("inputs", [0, -3, 2.5, 6.0, True, False, "6", torch.tensor(2.5), torch.tensor(True),
                                    np.float64(3.0), torch.tensor([6]), np.bool_(True)])
def test_step_inputs_other_than_an_integer_of_at_least_one_are_refused_before_anything_moves(inputs):
    """step(inputs=-3) had taken three inputs back from the transfer schedule (and 2.5 made it fractional,
    True counted one): the count is a number of inputs, an integer ≥ 1."""
    _inputs_refused_before_anything_moves(dict(mode="hm", k=6), inputs, r"^inputs=.* is not allowed: expected an "
                                          r"integer ≥ 1 \(the inputs this step covered; by default the batch the "
                                          r"layers recorded\)$")


def _inputs_refused_before_anything_moves(make: dict, inputs, match: str) -> tuple:
    """step(inputs=…) and hybrid_step(inputs=…) refused, the model and optimizer as they were; returns both."""
    model, opt = _make(**make)
    x, y = torch.rand(3, 12), torch.randint(0, 3, (3,))
    F.cross_entropy(model(x), y).backward()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    for step in (opt.step, opt.hybrid_step):
        with pytest.raises(ConfigError, match=match):
            step(inputs=inputs)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items()) and not opt.state
    return model, opt


@pytest.mark.parametrize("inputs", [6, np.int64(6), torch.tensor(6)])
def test_step_inputs_takes_python_numpy_and_torch_integers(inputs):
    model, opt = _make(mode="hm", k=6)
    x, y = torch.rand(3, 12), torch.randint(0, 3, (3,))
    F.cross_entropy(model(x), y).backward()
    opt.step(inputs=inputs)
    assert int(model.layers[0].weight_transfers[0]) == 1
    assert all(type(s["inputs"]) is int and s["inputs"] == 6 for s in opt.state.values())


# --- clipping: opt.clip_grad_norm_ reads what the layers keep ------------------------------------------

def _two_layers(replicas=None, seeds=1, bias=True):
    torch.manual_seed(0)
    kw = dict(replicas=replicas, seeds=seeds, config=HybridConfig(mode="hm-var"))
    return torch.nn.Sequential(HybridLinear(6, 5, bias=bias, name="fc1", **kw), torch.nn.ReLU(),
                               HybridLinear(5, 3, bias=bias, name="fc2", **kw))


def _kept(model) -> list:
    """Each hybrid parameter's kept gradient, dense in its logical shape."""
    out = []
    for layer in (model[0], model[2]):
        for name in layer.hybrid_names():
            tape = [(torch.as_tensor(x) if x is not None else None, torch.as_tensor(d), g)
                    for x, d, g in layer._tapes[name]]
            out.append(layer._slots[name].from_crossbar(layer._dense_sum(tape)))
    return out


def test_clip_grad_norm_is_torchs_on_the_gradient_the_layers_keep():
    """torch's clip_grad_norm_ reads .grad, None while a HybridSGD keeps the factors: the optimizer's
    own reads the factors and gives torch's norm and torch's clipped gradient (to float rounding:
    ∂L/∂W is summed in another order), here on a float copy whose autograd fills .grad."""
    x, y = torch.randn(5, 6, generator=torch.Generator().manual_seed(3)), torch.tensor([0, 2, 1, 1, 0])
    model = _two_layers()
    reference = copy.deepcopy(model)  # no optimizer: autograd fills .grad
    opt = HybridSGD(model.parameters(), lr=0.3, p=0.5, k=8)
    for net in (model, reference):
        F.cross_entropy(net(x), y).backward()
    for max_norm, norm_type in ((0.05, 2.0), (0.02, float("inf")), (100.0, 1.0)):
        expected = torch.nn.utils.clip_grad_norm_(reference.parameters(), max_norm, norm_type)
        norm = opt.clip_grad_norm_(max_norm, norm_type)
        assert norm.shape == (1,) and torch.allclose(norm[0], expected, rtol=1e-5)
        for ours, theirs in zip(_kept(model), [p.grad for p in reference.parameters()]):
            assert torch.allclose(ours, theirs, rtol=1e-5, atol=1e-8)
    assert opt.clip_grad_norm_(1e9)[0] < 0.05  # clipped: the norm is now at most the smallest max_norm
    opt.step()
    assert int(model[0].weight_updates) == 1


@pytest.mark.filterwarnings("ignore:Full backward hook is firing")
def test_clip_grad_norm_clips_the_gradient_the_step_applies():
    """The clipped δ is what the rule takes: clipping equals scaling ∂L/∂output by the same factor
    in a backward pre-hook, bit for bit, over a few steps (one layer: δ is ∂L/∂output)."""
    g = torch.Generator().manual_seed(4)
    data = [(torch.randn(1, 6, generator=g), torch.randint(0, 3, (1,), generator=g)) for _ in range(6)]
    runs = []
    for hooked in (False, True):
        torch.manual_seed(0)
        layer = HybridLinear(6, 3, seeds=2, config=HybridConfig(mode="hm-var"), name="fc")
        opt = HybridSGD(layer.parameters(), lr=0.5, p=0.5, k=2)
        coefs = []
        if hooked:
            layer.register_full_backward_pre_hook(lambda m, grad_output: (grad_output[0] * coefs[-1],))
        for step, (x, y) in enumerate(data):
            if hooked:
                coefs.append(runs[0][1][step])
            F.cross_entropy(layer(x), y).backward()
            if not hooked:
                coefs.append(torch.clamp(0.2 / (opt.clip_grad_norm_(0.2)[0] + 1e-6), max=1.0))
            opt.step()
            opt.zero_grad()
        runs.append((layer.state_dict(), coefs))
    assert any(c < 1 for c in runs[0][1])  # some steps clipped
    for key, value in runs[0][0].items():
        assert torch.equal(value, runs[1][0][key]), key


def test_each_chip_clips_its_own_gradients():
    """R replicas clip as R separate trainings would: per replica, the norm over its own gradients
    and its own factor — the same as each seed trained alone."""
    x = torch.randn(3, 4, 6, generator=torch.Generator().manual_seed(5))  # (R, B, features)
    y = torch.randint(0, 3, (3, 4), generator=torch.Generator().manual_seed(6))
    many = _two_layers(replicas=3, seeds=[1, 2, 3])
    opt = HybridSGD(many.parameters(), lr=0.3, p=0.5, k=4)
    F.cross_entropy(many(x).reshape(-1, 3), y.reshape(-1), reduction="sum").backward()
    norms = opt.clip_grad_norm_(0.5)
    assert norms.shape == (3,) and len(set(norms.tolist())) == 3
    for r, seed in enumerate([1, 2, 3]):
        alone = _two_layers(seeds=seed)
        alone_opt = HybridSGD(alone.parameters(), lr=0.3, p=0.5, k=4)
        F.cross_entropy(alone(x[r]), y[r], reduction="sum").backward()
        assert torch.allclose(alone_opt.clip_grad_norm_(0.5)[0], norms[r], rtol=1e-6)
        for ours, theirs in zip(_kept(many), _kept(alone)):
            assert torch.allclose(ours[r], theirs, rtol=1e-6, atol=1e-9)


def test_clip_grad_norm_takes_plain_parameters_on_one_chip_and_checks_its_arguments():
    from ferristor.errors import NonFiniteGradientError
    head = torch.nn.Linear(3, 2)
    model = torch.nn.Sequential(_two_layers(), head)
    reference = copy.deepcopy(model)
    opt = HybridSGD(model.parameters(), lr=0.3, p=0.5, k=4)
    x = torch.randn(4, 6, generator=torch.Generator().manual_seed(7))
    for net in (model, reference):
        net(x).square().sum().backward()
    expected = torch.nn.utils.clip_grad_norm_(reference.parameters(), 0.1)
    assert torch.allclose(opt.clip_grad_norm_(0.1)[0], expected, rtol=1e-5)
    assert torch.allclose(head.weight.grad, reference[1].weight.grad, rtol=1e-5)  # clipped as torch clips it
    for bad, field in (({"max_norm": -1.0}, "max_norm"), ({"max_norm": 1.0, "norm_type": 0}, "norm_type")):
        with pytest.raises(ConfigError, match=field):
            opt.clip_grad_norm_(**bad)
    model[1].weight.grad[0, 0] = float("nan")
    with pytest.raises(NonFiniteGradientError, match="plain parameter"):
        opt.clip_grad_norm_(0.1, error_if_nonfinite=True)
    many = torch.nn.Sequential(_two_layers(replicas=2, seeds=[1, 2]), torch.nn.Linear(3, 2))
    many_opt = HybridSGD(many.parameters(), lr=0.3, p=0.5, k=4)
    many(torch.randn(2, 1, 6)).square().sum().backward()
    with pytest.raises(ConfigError, match="no replica axis"):
        many_opt.clip_grad_norm_(0.1)


@pytest.mark.filterwarnings("ignore:.*grad reads None")  # the scaler reads .grad: the FerristorWarning
def test_a_grad_scaler_is_refused_before_anything_moves():
    """An enabled GradScaler unscales and checks .grad, which hybrid gradients kept as factors are not
    in: the rule would write them times the loss scale (65,536). The step refuses it, naming it; a
    disabled scaler steps as usual."""
    model, opt = _make()
    before = copy.deepcopy(model.state_dict())
    x, y = _batches(1)[0]
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0 ** 16)
    scaler.scale(F.cross_entropy(model(x), y)).backward()
    with pytest.raises(ConfigError, match="GradScaler=.enabled. is not allowed"):
        scaler.step(opt)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    opt.zero_grad()
    off = torch.amp.GradScaler("cpu", enabled=False)
    off.scale(F.cross_entropy(model(x), y)).backward()
    off.step(opt)
    assert int(model.layers[0].weight_updates) == 1


def test_clip_grad_norm_reaches_a_convolution_and_a_float_head():
    """A convolution keeps a dense gradient, not factors: clipped as torch clips it, beside a plain
    nn.Linear head on one chip."""
    from ferristor.nn import HybridConv2d
    torch.manual_seed(0)
    conv = HybridConv2d(2, 3, 3, padding=1, bias=True, seeds=1, config=HybridConfig(mode="hm-var"), name="conv")
    model = torch.nn.Sequential(conv, torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(3 * 5 * 5, 2))
    reference = copy.deepcopy(model)
    opt = HybridSGD(model.parameters(), lr=0.1, p=0.5, k=4)
    x = torch.randn(3, 2, 5, 5, generator=torch.Generator().manual_seed(8))
    for net in (model, reference):
        net(x).square().sum().backward()
    expected = torch.nn.utils.clip_grad_norm_(reference.parameters(), 0.5)
    assert torch.allclose(opt.clip_grad_norm_(0.5)[0], expected, rtol=1e-5) and expected > 0.5
    for name in ("weight", "bias"):
        kept = conv._dense_sum([tuple(None if a is None else torch.as_tensor(a) for a in entry)
                                for entry in conv._tapes[name]])
        assert torch.allclose(conv._slots[name].from_crossbar(kept), getattr(reference[0], name).grad, rtol=1e-5,
                              atol=1e-8), name
    assert torch.allclose(model[3].weight.grad, reference[3].weight.grad, rtol=1e-5)


def test_a_plain_sgd_state_is_refused_before_anything_changes_and_an_older_hybrid_state_still_loads():
    """torch.optim.SGD's state (an fp warm-up's checkpoint) had loaded without a word and the next step
    died with KeyError 'p': its groups hold none of the rule's settings, nor its counters."""
    model, opt = _make(mode="hm")
    _steps(model, opt, _batches(3))
    saved = opt.state_dict()
    twin = [torch.nn.Parameter(p.detach().clone()) for p in model.parameters()]  # the same counts, as torch checks
    plain = torch.optim.SGD(twin, lr=0.05).state_dict()
    with pytest.raises(ConfigError, match=r"^state_dict='param_groups\[0\] without p, k, rounding': not a HybridSGD "
                                          r"state \(one saved by torch\.optim\.SGD.*build the HybridSGD fresh"):
        opt.load_state_dict(plain)
    assert opt.state_dict() == saved and opt.state  # unchanged, and it steps on
    _steps(model, opt, _batches(1, seed=1))
    # a HybridSGD state saved before sampler and k_unit existed loads with their old defaults
    older = opt.state_dict()
    for group in older["param_groups"]:
        del group["sampler"], group["k_unit"]
    fresh_model, fresh = _make(mode="hm", sampler="sparse", k_unit="updates")
    fresh.load_state_dict(older)
    assert (fresh.param_groups[0]["sampler"], fresh.param_groups[0]["k_unit"]) == ("dense", "inputs")
    _steps(fresh_model, fresh, _batches(1, seed=2))


def test_step_inputs_is_refused_where_k_counts_updates_which_would_ignore_it():
    """step(inputs=50) under k_unit='updates' had been checked, then dropped: one step counts one."""
    model, opt = _inputs_refused_before_anything_moves(dict(mode="hm", k=2, k_unit="updates"), 50,
                                                       r"^inputs=50: ignored: with k_unit='updates' one step is one "
                                                       r"update whatever its batch.*leave inputs out")
    opt.step()
    assert all(s["inputs"] == 1 for s in opt.state.values())

    # groups of both units: refused naming the group that would ignore it; taken once none would
    x, y = torch.rand(3, 12), torch.randint(0, 3, (3,))
    model = HybridMLP(SPEC, config=HybridConfig(mode="hm"), seeds=1)
    opt = HybridSGD([{"params": model.layers[0].parameters()},
                     {"params": model.layers[1].parameters(), "k_unit": "updates"}], lr=0.3, p=0.5, k=6)
    F.cross_entropy(model(x), y).backward()
    with pytest.raises(ConfigError, match=r"^inputs=6: ignored by param_groups\[1\] \(with k_unit='updates'.*\), "
                                          r"while the other groups would count it"):
        opt.step(inputs=6)
    assert not opt.state
    opt.param_groups[1]["k_unit"] = "inputs"
    opt.step(inputs=6)
    assert [opt.state[p]["inputs"] for p in hybrid_parameters(model)] == [6, 6]
