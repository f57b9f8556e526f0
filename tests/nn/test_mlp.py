"""The paper's MLP: replicas are independent chips (a replica equals its seed alone, bit for bit), the
fused pass equals the same network assembled from layers, transfers follow the inputs."""
import pytest
import torch
import torch.nn.functional as F

from ferristor.backend import use_backend
from ferristor.nn import HybridConfig, HybridLinear, HybridMLP, NetworkSpec, Normalize
from ferristor.optim import HybridSGD

SPEC = NetworkSpec(sizes=(20, 16, 8, 4))


def _data(steps, seed=0, batch=1):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(steps, batch, 20, generator=g) * 2 - 1, torch.randint(0, 4, (steps, batch), generator=g)


def _train(model, seeds, steps=60, k=7, lr=0.5, replicas=True, batch=1, sampler="dense"):
    xs, ys = _data(steps, batch=batch)
    opt = HybridSGD(model.parameters(), lr=lr, p=0.5, k=k, sampler=sampler)
    for t in range(steps):
        # each replica sees its own sample order, as with per-seed shuffling
        idx = torch.tensor([(t * (s + 1)) % steps for s in seeds])
        x, y = xs[idx], ys[idx]  # (R, B, 20), (R, B)
        if not replicas:
            x, y = x[0], y[0]
        loss = F.cross_entropy(model(x).reshape(-1, 4), y.reshape(-1), reduction="sum") / batch
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model


def _mlp(seeds, mode, replicas=True, spec=SPEC):
    return HybridMLP(spec, config=HybridConfig(mode=mode), replicas=len(seeds) if replicas else None,
                     seeds=seeds if replicas else seeds[0])


def _state(model):
    return {k: v for k, v in model.state_dict().items()}


@pytest.mark.parametrize("mode", ["fp", "hm", "hm-var"])
@pytest.mark.parametrize("backend", ["numba", "torch"])
def test_replica_equals_single_run(mode, backend):
    steps = 30  # four transfers at k = 7, in half the time of 60 steps (the torch backend's four runs had been ~3 s)
    with use_backend(backend):
        many = _train(_mlp([0, 1, 2], mode), [0, 1, 2], steps=steps)
        for r, seed in enumerate([0, 1, 2]):
            alone = _train(_mlp([seed], mode, replicas=False), [seed], replicas=False, steps=steps)
            for name, buf in _state(alone).items():
                theirs = _state(many)[name]
                if name.endswith(("_updates", "hidden_lsb", "settings")):  # one for all replicas
                    assert torch.equal(buf, theirs), name
                elif name.endswith(("seeds", "_transfers")):  # per replica, (1,) for one chip
                    assert torch.equal(buf[0], theirs[r]), name
                else:
                    assert torch.equal(buf, theirs[r]), (mode, name)


@pytest.mark.parametrize("mode", ["fp", "hm-var"])
@pytest.mark.parametrize("batch", [1, 3])
def test_sparse_sampler_replica_equals_single_run(mode, batch):
    """The sparse sampler through HybridSGD (rank-1 factors at batch 1, a dense gradient at batch 3):
    each replica is its seed alone, and the run differs from the dense sampler's."""
    spec = NetworkSpec(sizes=(20, 16, 8, 4), norm="none")
    many = _train(_mlp([0, 1], mode, spec=spec), [0, 1], batch=batch, sampler="sparse")
    alone = _train(_mlp([1], mode, replicas=False, spec=spec), [1], replicas=False, batch=batch, sampler="sparse")
    dense = _train(_mlp([1], mode, replicas=False, spec=spec), [1], replicas=False, batch=batch)
    for a, b, d in zip(many.layers, alone.layers, dense.layers):
        assert torch.equal(a.weight[1], b.weight) and torch.equal(a.weight_events[1], b.weight_events)
        assert not torch.equal(b.weight, d.weight)


@pytest.mark.parametrize("mode", ["fp", "hm-var"])
@pytest.mark.parametrize("bias", [False, True])
def test_fused_pass_equals_the_network_assembled_from_layers(mode, bias):
    cfg = HybridConfig(mode=mode)
    seq = torch.nn.Sequential(
        HybridLinear(20, 16, bias, seeds=5, name="fc1", config=cfg), Normalize(), torch.nn.ReLU(),
        HybridLinear(16, 8, bias, seeds=5, name="fc2", config=cfg), Normalize(), torch.nn.ReLU(),
        HybridLinear(8, 4, bias, seeds=5, name="fc3", config=cfg), Normalize())
    fused = _train(HybridMLP(NetworkSpec(SPEC.sizes, bias=bias), config=cfg, seeds=5), [5], replicas=False)
    layered = _train(seq, [5], replicas=False)
    for a, b in zip(fused.layers, [seq[0], seq[3], seq[6]]):
        for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
            assert torch.equal(x, y), name


def test_backends_agree():
    """The rule's kernels are bit-exact across backends (tests/rule); the passes agree to float32
    rounding, which can flip a rare stochastic rounding, so hidden weights agree almost everywhere."""
    with use_backend("numba"):
        a = _train(_mlp([4, 5], "hm"), [4, 5])
    with use_backend("torch"):
        b = _train(_mlp([4, 5], "hm"), [4, 5])
    for la, lb in zip(a.layers, b.layers):
        assert (la.weight_hidden == lb.weight_hidden).float().mean() > 0.98


def test_transfers_happen_every_k_inputs():
    m = _train(_mlp([0], "hm"), [0], steps=60, k=7)
    assert all(int(layer.weight_transfers[0]) == 60 // 7 for layer in m.layers)
    h = m.layers[0].weight_hidden
    # the last transfer came after sample 56: the analogue weights are the hidden levels of then
    level = torch.sign(h) * torch.floor(h.abs() / 64) * 2 ** -3
    assert (m.layers[0].weight != level).any()  # four updates since: the analogue copy lags
    m2 = _train(_mlp([0], "hm"), [0], steps=56, k=7)
    h2 = m2.layers[0].weight_hidden
    assert torch.equal(m2.layers[0].weight, torch.sign(h2) * torch.floor(h2.abs() / 64) * 2 ** -3)


@pytest.mark.parametrize("mode", ["fp", "hm"])
def test_minibatch_advances_the_count_by_the_batch(mode):
    spec = NetworkSpec(sizes=(20, 16, 4), norm="batch")
    m = _train(_mlp([0, 1], mode, spec=spec), [0, 1], steps=7, k=10, batch=5)
    # k = 10 inputs, batch 5: a transfer every 2 steps → 3 transfers in 7 steps
    assert int(m.layers[0].weight_transfers[0]) == (3 if mode != "fp" else 0)


def test_same_seed_same_result_and_seeds_differ():
    a = _train(_mlp([3], "hm-var"), [3])
    b = _train(_mlp([3], "hm-var"), [3])
    c = _train(_mlp([4], "hm-var"), [4])
    assert torch.equal(a.layers[0].weight_hidden, b.layers[0].weight_hidden)
    assert torch.equal(a.layers[0].weight, b.layers[0].weight)
    assert not torch.equal(a.layers[0].weight_hidden, c.layers[0].weight_hidden)


@pytest.mark.parametrize("mode", ["fp", "hm"])
def test_without_output_norm_the_fused_pass_equals_layers_with_raw_logits(mode):
    cfg = HybridConfig(mode=mode)
    seq = torch.nn.Sequential(HybridLinear(20, 16, seeds=2, name="fc1", config=cfg), Normalize(), torch.nn.ReLU(),
                              HybridLinear(16, 8, seeds=2, name="fc2", config=cfg), Normalize(), torch.nn.ReLU(),
                              HybridLinear(8, 4, seeds=2, name="fc3", config=cfg))
    mlp = HybridMLP(NetworkSpec(sizes=(20, 16, 8, 4), output_norm=False), config=cfg, seeds=2)
    x = _data(1)[0][0]
    assert mlp.fused_ok(x) and torch.equal(mlp(x), seq(x))
    assert not torch.equal(mlp(x), HybridMLP(SPEC, config=cfg, seeds=2)(x))
    fused, layered = _train(mlp, [2], replicas=False), _train(seq, [2], replicas=False)
    for a, b in zip(fused.layers, [seq[0], seq[3], seq[6]]):
        for (name, u), (_, v) in zip(a.state_dict().items(), b.state_dict().items()):
            assert torch.equal(u, v), name


def _seq(*mods):
    return torch.nn.Sequential(*mods)


def _hl(i, o, name, bias=False, replicas=None):
    return HybridLinear(i, o, bias, seeds=[1, 2] if replicas else 1, replicas=replicas, name=name)


def _hooked(hook):
    model = _seq(_hl(6, 5, "a"), Normalize(), torch.nn.ReLU(), _hl(5, 3, "b"))
    hook(model)
    return model


def test_a_global_module_hook_leaves_no_mlp_view():
    from ferristor.nn.mlp import mlp_view
    model = _hooked(lambda m: None)
    assert mlp_view(model) is not None
    handle = torch.nn.modules.module.register_module_forward_hook(lambda *a: None)
    try:
        assert mlp_view(model) is None
    finally:
        handle.remove()


@pytest.mark.parametrize("build, spec", [
    (lambda: _seq(_hl(6, 5, "a"), Normalize(), torch.nn.ReLU(), _hl(5, 3, "b"), Normalize()), ((6, 5, 3), "layer", True)),
    (lambda: _seq(_hl(6, 5, "a"), Normalize(), torch.nn.ReLU(), _hl(5, 3, "b")), ((6, 5, 3), "layer", False)),
    (lambda: _seq(_hl(6, 5, "a"), torch.nn.ReLU(), _hl(5, 1, "b")), ((6, 5, 1), "none", True)),
    (lambda: _seq(_hl(6, 3, "a"), Normalize()), ((6, 3), "layer", True)),
    (lambda: _seq(_hl(6, 5, "a", bias=True), torch.nn.ReLU(), _hl(5, 3, "b", bias=True)), ((6, 5, 3), "none", True)),
    (lambda: _seq(_hl(6, 5, "a", replicas=2), Normalize(replicas=2), torch.nn.ReLU(inplace=True), _hl(5, 3, "b", replicas=2)),
     ((6, 5, 3), "layer", False)),
])
def test_a_plain_sequential_mlp_has_a_view_on_its_own_layers(build, spec):
    from ferristor.nn.mlp import mlp_view
    model = build()
    view = mlp_view(model)
    assert (view.spec.sizes, view.spec.norm, view.spec.output_norm) == spec
    assert view.spec.output == ("sigmoid" if spec[0][-1] == 1 else "softmax")
    assert view.spec.bias == (model[0].bias is not None)
    assert all(a is b for a, b in zip(view.layers, [m for m in model if isinstance(m, HybridLinear)]))
    assert set(model.state_dict()) == set(build().state_dict())  # the view is not registered in the model


@pytest.mark.parametrize("build", [
    lambda: _seq(_hl(6, 5, "a", bias=True), Normalize(), torch.nn.ReLU(), _hl(5, 3, "b")),  # a bias on one layer only
    lambda: _seq(_hl(6, 5, "a"), Normalize(), torch.nn.Tanh(), _hl(5, 3, "b")),  # another activation
    lambda: _seq(_hl(6, 5, "a"), Normalize("batch"), torch.nn.ReLU(), _hl(5, 3, "b")),  # BatchNorm
    lambda: _seq(_hl(6, 5, "a"), torch.nn.ReLU(), _hl(5, 3, "b"), Normalize()),  # a norm on the output only
    lambda: _seq(_hl(6, 5, "a"), torch.nn.ReLU(), _hl(5, 3, "b"), torch.nn.ReLU()),  # a ReLU on the logits
    lambda: _seq(_hl(6, 5, "a"), torch.nn.ReLU(), _hl(4, 3, "b")),  # sizes that do not chain
    lambda: _seq(_hl(6, 5, "a", replicas=2), torch.nn.ReLU(), _hl(5, 3, "b")),  # replicas that differ
    lambda: _seq(torch.nn.Flatten(), _hl(6, 3, "a")),  # anything else
    lambda: type("Mine", (torch.nn.Sequential,), {})(_hl(6, 3, "a")),  # a subclass may change forward
    lambda: _seq(),
    lambda: (lambda tied: _seq(tied, Normalize(), torch.nn.ReLU(), tied))(_hl(5, 5, "a")),  # one layer used twice
    lambda: _hooked(lambda m: m[0].register_forward_hook(lambda *a: None)),  # hooks the chunks would skip
    lambda: _hooked(lambda m: m[2].register_forward_pre_hook(lambda *a: None)),
    lambda: _hooked(lambda m: m.register_full_backward_hook(lambda *a: None)),
    lambda: _seq(_hl(6, 5, "a"), Normalize(), torch.nn.ReLU(), _hl(5, 2, "b"), Normalize()),  # a norm that cannot train
])
def test_other_models_have_no_mlp_view(build):
    from ferristor.nn.mlp import mlp_view
    assert mlp_view(build()) is None


def test_normalize_refuses_feature_maps_and_a_batch_without_its_replicas():
    """Normalize takes (batch, features) or (replicas, batch, features). A convolution's (B, C, H, W)
    had been normalised over W alone, silently; a (B, F) batch given to a Normalize built for R
    replicas had been cut into R parts."""
    from ferristor.errors import ConfigError
    for kind in ("layer", "batch"):
        with pytest.raises(ConfigError, match=r"Normalize input shape=\(4, 3, 5, 6\).*nn.Flatten\(\).*BatchNorm2d"):
            Normalize(kind)(torch.randn(4, 3, 5, 6))
    with pytest.raises(ConfigError, match=r"shape=\(4, 6\).*\(replicas=2, batch, features\)"):
        Normalize("batch", 2)(torch.randn(4, 6))
    assert Normalize("batch", 2)(torch.randn(2, 3, 6)).shape == (2, 3, 6)
    assert Normalize()(torch.randn(4, 6)).shape == (4, 6)
    # a replicated batch given to a batch Normalize built without replicas pooled the chips' statistics
    with pytest.raises(ConfigError, match=r"shape=\(2, 3, 6\).*Normalize\('batch', replicas=2\).*\(6, 6\)"):
        Normalize("batch")(torch.randn(2, 3, 6))
    assert Normalize("layer")(torch.randn(2, 3, 6)).shape == (2, 3, 6)  # per sample: no axis is pooled


@pytest.mark.parametrize("spec, field, said", [
    (dict(sizes=(20, 200, 1), output="sigmoid"), "output_norm", "output layer's LayerNorm over 1 unit outputs 0"),
    (dict(sizes=(784, 100, 2)), "output_norm", "LayerNorm over 2 units outputs ±1"),
    (dict(sizes=(784, 2, 10)), "sizes", "a hidden LayerNorm over 2 units outputs ±1"),
])
def test_a_layer_norm_over_one_or_two_units_is_refused(spec, field, said):
    """It outputs 0 or ±1 whatever its input: no gradient passes, and the network predicts one class
    (an ECG run with --norm layer had reported the majority class's share, for every seed)."""
    from ferristor.errors import ConfigError
    with pytest.raises(ConfigError, match=said) as e:
        NetworkSpec(**spec)
    assert e.value.field == field
    NetworkSpec(**spec, norm="batch"), NetworkSpec(**spec, norm="none")  # other norms keep information
    if field == "output_norm":
        NetworkSpec(**spec, output_norm=False)
    NetworkSpec(sizes=(784, 3, 3))  # from three units on, a LayerNorm trains


def test_a_layer_normalize_over_two_features_warns_once():
    import warnings

    from ferristor.errors import FerristorWarning
    norm = Normalize()
    g = torch.Generator().manual_seed(0)  # not the global stream: two features 1e-3 apart would not read ±1
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = norm(torch.randn(4, 2, generator=g))
        norm(torch.randn(4, 2, generator=g))
        Normalize("batch")(torch.randn(4, 2, generator=g)), Normalize()(torch.randn(4, 3, generator=g))
    torch.testing.assert_close(out.abs(), torch.ones(4, 2), atol=1e-3, rtol=0)  # what it warns of
    said = [str(w.message) for w in caught if issubclass(w.category, FerristorWarning)]
    assert len(said) == 1 and "Normalize('layer') over 2 features" in said[0]
