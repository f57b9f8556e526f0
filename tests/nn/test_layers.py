"""Hybrid layers meet autograd: their gradients are ordinary autograd's, captured factors equal them,
replicas are independent chips, and bad inputs are clear errors."""
import copy
import pickle

import pytest
import torch
import torch.nn.functional as F

from ferristor.backend import backend_for, use_backend
from ferristor.errors import ConfigError, FerristorWarning
from ferristor.nn import HybridConfig, HybridConv2d, HybridLinear, HybridParameter, Normalize


def _weight(layer):
    return layer.weight.detach().clone()


@pytest.mark.parametrize("backend", ["numba", "torch"])
@pytest.mark.parametrize("bias", [False, True])
def test_linear_gradients_equal_autograd(backend, bias):
    with use_backend(backend):
        layer = HybridLinear(7, 5, bias=bias, seeds=3)
        x = torch.randn(4, 7, requires_grad=True)
        out = layer(x)
        (out * torch.arange(5.0)).sum().backward()
        ref_x = x.detach().clone().requires_grad_(True)
        w = _weight(layer).requires_grad_(True)
        b = layer.bias.detach().clone().requires_grad_(True) if bias else None
        ref = F.linear(ref_x, w, b)
        torch.testing.assert_close(out, ref, rtol=1e-6, atol=1e-6)
        (ref * torch.arange(5.0)).sum().backward()
        torch.testing.assert_close(x.grad, ref_x.grad, rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(layer.weight.grad, w.grad, rtol=1e-6, atol=1e-6)
        if bias:
            torch.testing.assert_close(layer.bias.grad, b.grad, rtol=1e-6, atol=1e-6)


def test_captured_factors_are_the_weight_gradient():
    layer = HybridLinear(6, 3, seeds=1)
    layer.capture_factors = True
    x = torch.randn(1, 6)
    (layer(x) ** 2).sum().backward()
    with pytest.warns(FerristorWarning, match=r"\.grad reads None"):
        assert layer.weight.grad is None  # kept as factors: no dense gradient formed
    (xf, delta, dense), = layer._tapes["weight"]
    w = _weight(layer).requires_grad_(True)
    (F.linear(x, w) ** 2).sum().backward()
    assert dense is None
    delta, xf = torch.as_tensor(delta), torch.as_tensor(xf)  # numpy on the CPU path
    torch.testing.assert_close((delta[0].T @ xf[0]), w.grad)  # δᵀx = ∂L/∂W
    assert layer._inputs["weight"] == 1


@pytest.mark.parametrize("bias", [False, True])
def test_conv_gradients_equal_autograd(bias):
    layer = HybridConv2d(3, 4, 3, stride=1, padding=1, bias=bias, seeds=2)
    x = torch.randn(2, 3, 6, 6, requires_grad=True)
    out = layer(x)
    out.square().sum().backward()
    ref_x = x.detach().clone().requires_grad_(True)
    w = _weight(layer).requires_grad_(True)
    b = layer.bias.detach().clone().requires_grad_(True) if bias else None
    ref = F.conv2d(ref_x, w, b, padding=1)
    assert torch.equal(out, ref)
    ref.square().sum().backward()
    assert torch.equal(x.grad, ref_x.grad) and torch.equal(layer.weight.grad, w.grad)
    if bias:
        assert torch.equal(layer.bias.grad, b.grad)


@pytest.mark.parametrize("mode", ["hm-var", "fp"])
def test_a_convolution_trains_on_the_cpu_kernels_as_on_the_tensor_path(mode):
    """The CPU path binds a dense gradient's update arrays and constants once (``_update_cpu``); the
    torch backend runs the same rule as tensor operations — the same bits, transfers included."""
    from ferristor.optim import HybridSGD
    x = torch.randn(9, 2, 2, 2, 6, 6, generator=torch.Generator().manual_seed(0))  # (steps, R, B, C, H, W)

    def run(backend):
        with use_backend(backend):
            conv = HybridConv2d(2, 3, 3, padding=1, bias=True, replicas=2, seeds=[1, 2],
                                config=HybridConfig(mode=mode))
            opt = HybridSGD(conv.parameters(), lr=0.5, p=0.5, k=4)
            for xt in x:
                conv(xt).square().mean().backward()
                opt.step()
                opt.zero_grad()
        return conv.state_dict()

    ours, ref = run("numba"), run("torch")
    for k, v in ref.items():
        assert torch.equal(ours[k], v), k
    assert int(ours["weight_updates"]) == 9 and (mode == "fp" or int(ours["weight_transfers"][0]) == 9 * 2 // 4)


@pytest.mark.parametrize("transfer", ["ideal", "table", "quantiles"])
def test_a_cpu_transfer_binds_its_kernel_once_and_again_when_the_seeds_change(transfer):
    """``program_`` on the CPU runs the fused transfer with its arguments prepared once
    (``_bound_cpu_transfer``: at k = 1 their preparation cost a small layer more than the kernel):
    the same bits as the tensor path, transfer after transfer, and new draws once the seeds change
    (new noise keys: the binding follows the cached views)."""
    from ferristor.circuit.transfer import TransferConfig
    model = "circuit" if transfer == "quantiles" else transfer
    cfg = HybridConfig(mode="hm" if transfer == "ideal" else "hm-var",
                       transfer=TransferConfig(model=model, circuit_sampler="quantiles"))

    def run(backend):
        with use_backend(backend):
            layer = HybridLinear(7, 5, bias=True, replicas=2, seeds=[3, 4], config=cfg)
            values = []
            for seeds in ([3, 4], [3, 4], [8, 9], [8, 9]):
                layer.load_state_dict({**layer.state_dict(), "seeds": torch.tensor(seeds)})
                with torch.no_grad():
                    layer.weight_hidden.add_(37).clamp_(-511, 511)  # a change for the transfer to carry
                layer.program_("weight")
                layer.program_("bias")
                values.append((layer.weight.detach().clone(), layer.bias.detach().clone()))
            return layer, values

    (layer, ours), (_, ref) = run("numba"), run("torch")
    assert layer._bound_cpu_transfer("weight", layer._cpu_arrays("weight")) is not None
    for (w, b), (rw, rb) in zip(ours, ref):  # the torch path draws with the seeds of the moment
        assert torch.equal(w, rw) and torch.equal(b, rb)
    assert int(layer.weight_transfers[0]) == 4

@pytest.mark.parametrize("cls,args,shape", [(HybridLinear, (5, 4), (6, 5)), (HybridConv2d, (2, 3, 3), (2, 2, 5, 5))])
def test_replicas_equal_their_seeds_alone(cls, args, shape):
    torch.manual_seed(0)
    seeds = [4, 9, 2]
    many = cls(*args, replicas=3, seeds=seeds, config=HybridConfig(mode="hm-var"))
    x = torch.randn(3, *shape)
    out = many(x)
    for r, s in enumerate(seeds):
        one = cls(*args, seeds=s, config=HybridConfig(mode="hm-var"))
        assert torch.equal(one.weight, many.weight[r]) and torch.equal(one.weight_hidden, many.weight_hidden[r])
        torch.testing.assert_close(one(x[r]), out[r], rtol=1e-6, atol=1e-6)


def test_analogue_weights_are_the_programmed_levels():
    layer = HybridLinear(30, 20, seeds=0, config=HybridConfig(mode="hm"))
    h = layer.weight_hidden
    level = torch.sign(h) * torch.floor(h.abs() / 64)
    assert torch.equal(layer.weight, level * 2 ** -3)  # level step = 64 LSB × 2⁻⁹
    assert h.abs().max() <= round(0.5 * 511) and torch.equal(h, h.round())  # init within ±init_scale·511, integers


@pytest.mark.parametrize("bad,match", [(torch.randn(2, 6).double(), "dtype"), (torch.randn(2, 5), "shape"),
                                       (torch.randn(6), None)])
def test_clear_errors_for_wrong_inputs(bad, match):
    layer = HybridLinear(6, 3, seeds=0)
    if match is None:
        assert layer(bad).shape == (3,)  # one sample without a batch dimension, as nn.Linear
        return
    with pytest.raises(ConfigError, match=match):
        layer(bad)
    with pytest.raises(ConfigError, match="one leading entry per replica"):
        HybridLinear(6, 3, replicas=2, seeds=[0, 1])(torch.randn(3, 6))


def test_state_dict_round_trip_deepcopy_and_pickle():
    layer = HybridLinear(8, 4, bias=True, seeds=5, name="fc")
    fresh = HybridLinear(8, 4, bias=True, seeds=99, name="fc")
    fresh.load_state_dict(layer.state_dict())
    for k, v in layer.state_dict().items():
        assert torch.equal(v, fresh.state_dict()[k]), k
    for clone in (copy.deepcopy(layer), pickle.loads(pickle.dumps(layer))):
        assert isinstance(clone.weight, HybridParameter) and clone.weight.owner is clone
        assert torch.equal(clone.weight_hidden, layer.weight_hidden)
        assert clone.stream_keys("weight", 2).tolist() == layer.stream_keys("weight", 2).tolist()


def test_the_cpu_path_follows_state_replaced_after_its_views_were_cached():
    """Forward, backward and update read cached numpy views of a layer's state: seeds and counters
    loaded in place, and a weight or hidden tensor swapped for another, must reach the next step."""
    from ferristor.optim import HybridSGD

    def step(layer, x):
        opt = HybridSGD(layer.parameters(), lr=0.5, p=0.5, k=2)
        out = layer(x)
        out.square().sum().backward()
        opt.step()
        return out.detach()

    x = torch.randn(1, 8, generator=torch.Generator().manual_seed(0))
    a, b = HybridLinear(8, 4, bias=True, seeds=1), HybridLinear(8, 4, bias=True, seeds=2)
    step(a, x)  # a's views and keys are cached now
    a.load_state_dict(b.state_dict())  # b's seeds, counters and state, copied in place
    a._apply(lambda t: t.clone())  # and new tensors behind the weight and hidden values (as a .to() makes)
    a.register_buffer("weight_hidden", a.weight_hidden.clone())
    for _ in range(3):
        assert torch.equal(step(a, x), step(b, x))
    for k, v in b.state_dict().items():
        assert torch.equal(a.state_dict()[k], v), k


def test_backend_follows_the_device():
    assert backend_for("cpu") == "numba" and backend_for(torch.device("cuda", 0)) == "torch"
    with use_backend("torch"):
        assert backend_for("cpu") == "torch"
    layer = HybridLinear(3, 2, seeds=0).to("cpu")
    assert layer.weight.owner is layer and backend_for(layer.weight.device) == "numba"
    with pytest.raises(ConfigError, match="backend"):
        with use_backend("cuda"):
            pass


@pytest.mark.gpu
def test_layer_moves_to_the_gpu_and_trains_like_the_cpu_torch_path():
    from ferristor.optim import HybridSGD

    def run(device):
        with use_backend("torch"):
            layer = HybridLinear(10, 4, seeds=3, config=HybridConfig(mode="hm-var")).to(device)
            opt = HybridSGD(layer.parameters(), lr=0.5, p=0.5, k=3)
            g = torch.Generator().manual_seed(0)
            for _ in range(10):
                x, y = torch.randn(1, 10, generator=g).to(device), torch.randint(0, 4, (1,), generator=g).to(device)
                loss = F.cross_entropy(layer(x), y)
                opt.zero_grad()
                loss.backward()
                opt.step()
            return layer.weight_hidden.cpu()
    cpu, gpu = run("cpu"), run("cuda")
    assert (cpu == gpu).float().mean() > 0.99  # same draws; passes agree to float rounding


def test_counters_stay_on_the_host_when_the_layer_moves():
    layer = HybridLinear(4, 3, seeds=0).to("meta")  # any non-CPU device: the synapses move, the counters do not
    assert layer.weight.device.type == "meta" and layer.weight_hidden.device.type == "meta"
    assert layer.weight_updates.is_cpu and layer.weight_transfers.is_cpu


@pytest.mark.parametrize("mode", ["fp", "hm"])
def test_normal_init_has_the_uniforms_variance_and_is_the_same_on_both_backends(mode):
    cfg = HybridConfig(mode=mode, init_shape="normal", init_scale=0.5)
    with use_backend("numba"):
        a = HybridLinear(400, 300, seeds=1, config=cfg)
    with use_backend("torch"):
        b = HybridLinear(400, 300, seeds=1, config=cfg)
    h = a.weight_hidden if mode != "fp" else a.weight.detach() / cfg.hidden_lsb
    assert torch.equal(h, b.weight_hidden if mode != "fp" else b.weight.detach() / cfg.hidden_lsb)
    sigma = 256 / 3 ** 0.5  # the uniform on ±256 has this standard deviation
    assert abs(h.std().item() / sigma - 1) < 0.01 and abs(h.mean().item()) < 0.5
    assert (h.abs() > 256).float().mean() > 0.05  # tails beyond the uniform's bound: a normal, not a uniform
    if mode != "fp":
        assert torch.equal(h, h.round())
    uniform = HybridLinear(400, 300, seeds=1, config=cfg.replace(init_shape="uniform"))
    assert uniform.weight_hidden.abs().max() <= 256 if mode != "fp" else uniform.weight.abs().max() <= 0.5


def _per_replica(fn, replicas, *tensors):
    """fn applied to each replica's slice (or once, for one chip), stacked back."""
    if replicas is None:
        return fn(*tensors)
    return torch.stack([fn(*(t[r] if t is not None else None for t in tensors)) for r in range(replicas)])


@pytest.mark.parametrize("backend", ["numba", "torch"])
@pytest.mark.parametrize("replicas", [None, 2])
def test_linear_keeps_the_inputs_leading_shape_in_every_path(backend, replicas):
    """(B, T, F) → (B, T, O) as nn.Linear, with and without grad (replicas: (R, B, T, F) → (R, B, T, O)),
    and backward gives nn.Linear's gradients in those shapes."""
    lead = (2,) if replicas else ()
    with use_backend(backend):
        layer = HybridLinear(6, 4, bias=True, replicas=replicas, seeds=[1, 2][:replicas] if replicas else 1)
        x = torch.randn(*lead, 3, 5, 6)
        w = _weight(layer).requires_grad_(True)
        b = layer.bias.detach().clone().requires_grad_(True)
        ref_x = x.clone().requires_grad_(True)
        ref = _per_replica(F.linear, replicas, ref_x, w, b)
        assert ref.shape == (*lead, 3, 5, 4)
        with torch.no_grad():
            torch.testing.assert_close(layer(x), ref, rtol=1e-6, atol=1e-6)
        out = layer(x)  # x needs no grad; the weight does
        assert out.shape == ref.shape and out.requires_grad
        xg = x.clone().requires_grad_(True)
        out = layer(xg)
        torch.testing.assert_close(out, ref, rtol=1e-6, atol=1e-6)
        assert out[..., -1, :].shape == ref[..., -1, :].shape  # indexing the sequence axis reads the right entries
        g = torch.randn(ref.shape)
        out.backward(g)
        ref.backward(g)
        torch.testing.assert_close(xg.grad, ref_x.grad, rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(layer.weight.grad, w.grad, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(layer.bias.grad, b.grad, rtol=1e-5, atol=1e-5)


def _chip(layer, opt):
    state = {k: v.clone() for k, v in layer.state_dict().items()}
    state.update({f"opt.{p.slot}.inputs": torch.tensor(opt.state[p].get("inputs", 0)) for p in layer.parameters()})
    return state


def _hybrid_layer(kind, replicas=None):
    seeds = [3, 4][:replicas] if replicas else 3
    if kind == "linear":
        layer = HybridLinear(6, 5, bias=True, replicas=replicas, seeds=seeds, config=HybridConfig(mode="hm"))
        shape = (3, 6)
    else:
        layer = HybridConv2d(2, 3, 3, padding=1, bias=True, replicas=replicas, seeds=seeds,
                             config=HybridConfig(mode="hm"))
        shape = (2, 2, 5, 5)
    return layer, torch.randn(*((replicas,) if replicas else ()), *shape, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("kind", ["linear", "conv"])
@pytest.mark.parametrize("how", ["autograd.grad", "backward(inputs=[x])"])
def test_a_gradient_with_respect_to_the_input_alone_leaves_the_chip_alone(kind, how):
    """Saliency, adversarial examples: torch.autograd.grad(loss, x) and
    loss.backward(inputs=[x]) accumulate into no parameter, so the next opt.step() must change nothing
    on the chip (hidden weights, analogue weights, counters, the optimizer's input count)."""
    from ferristor.optim import HybridSGD
    layer, x = _hybrid_layer(kind)
    opt = HybridSGD(layer.parameters(), lr=0.5, p=1.0, k=1)
    before = _chip(layer, opt)
    xg = x.clone().requires_grad_(True)
    loss = layer(xg).square().sum()
    if how == "autograd.grad":
        gx, = torch.autograd.grad(loss, xg)
    else:
        loss.backward(inputs=[xg])
        gx = xg.grad
    assert gx is not None and gx.abs().sum() > 0
    assert layer.weight.grad is None and layer.bias.grad is None
    opt.step()
    after = _chip(layer, opt)
    for k, v in before.items():
        assert torch.equal(after[k], v), k
    layer(x).square().sum().backward()  # an ordinary backward still trains
    opt.step()
    assert not torch.equal(layer.weight_hidden, before["weight_hidden"])
    assert opt.state[layer.weight]["inputs"] == x.shape[0] and opt.state[layer.bias]["inputs"] == x.shape[0]


@pytest.mark.parametrize("kind", ["linear", "conv"])
def test_a_gradient_with_respect_to_the_weight_is_returned_but_not_applied(kind):
    """torch.autograd.grad(loss, weight) returns ∂L/∂W (even with HybridSGD capturing), records nothing;
    backward(inputs=[weight]) records the weight's gradient and not the bias's."""
    from ferristor.optim import HybridSGD
    layer, x = _hybrid_layer(kind)
    free = copy.deepcopy(layer)  # no optimizer: ordinary autograd
    free(x).square().sum().backward()
    opt = HybridSGD(layer.parameters(), lr=0.5, p=1.0, k=1)
    before = _chip(layer, opt)
    gw, gb = torch.autograd.grad(layer(x).square().sum(), [layer.weight, layer.bias])
    torch.testing.assert_close(gw, free.weight.grad, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(gb, free.bias.grad, rtol=1e-6, atol=1e-6)
    opt.step()
    after = _chip(layer, opt)
    for k, v in before.items():
        assert torch.equal(after[k], v), k
    layer(x).square().sum().backward(inputs=[layer.weight])
    opt.step()
    assert opt.state[layer.weight]["inputs"] == x.shape[0] and opt.state[layer.bias].get("inputs", 0) == 0
    assert not torch.equal(layer.weight_hidden, before["weight_hidden"])
    assert torch.equal(layer.bias_hidden, before["bias_hidden"])


@pytest.mark.parametrize("kind", ["linear", "conv"])
def test_a_frozen_weight_with_a_trainable_bias_trains_the_bias(kind):
    """BitFit-style: the first layer's input needs no grad and its weight is frozen; the bias still
    takes nn.Linear's / nn.Conv2d's gradient."""
    layer, x = _hybrid_layer(kind)
    layer.weight.requires_grad_(False)
    out = layer(x)
    assert out.requires_grad
    out.square().sum().backward()
    b = layer.bias.detach().clone().requires_grad_(True)
    ref = F.linear(x, _weight(layer), b) if kind == "linear" else F.conv2d(x, _weight(layer), b, padding=1)
    ref.square().sum().backward()
    assert layer.weight.grad is None
    torch.testing.assert_close(layer.bias.grad, b.grad, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("backend", ["numba", "torch"])
@pytest.mark.parametrize("kind,replicas", [("linear", None), ("linear", 2), ("conv", None), ("conv", 2)])
def test_an_input_changed_in_place_after_forward_is_torchs_error(backend, kind, replicas):
    """The layers read their input in backward through views torch's saved-tensor check does not see
    (a numpy view, a replica layout's copy): an in-place change after forward (a residual h += f(h))
    would silently give a wrong weight gradient; it is torch's error instead, as with nn.Linear."""
    with use_backend(backend):
        layer, x = _hybrid_layer(kind, replicas)
        pre = x.clone().requires_grad_(True)
        h = pre * 2.0  # a non-leaf activation (x * 2 saves nothing itself)
        out = layer(h)
        h.add_(1.0)
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            out.sum().backward()
        h = pre * 2.0
        out = layer(h)
        h = h + 1.0  # out of place: fine
        out.sum().backward()
        assert layer.weight.grad is not None


@pytest.mark.filterwarnings("ignore:Using padding='same'")  # torch's, about its own reference's padded copy
@pytest.mark.parametrize("padding,kernel,dilation", [("valid", 3, 1), ("same", 3, 1), ("same", 4, 1),
                                                     ("same", (2, 3), (1, 2)), ("same", (4, 5), (3, 1))])
@pytest.mark.parametrize("replicas", [None, 2])
def test_conv_string_paddings_are_torchs(padding, kernel, dilation, replicas):
    """padding='valid' and 'same' as nn.Conv2d, the asymmetric 'same' of an even effective kernel
    included: outputs and gradients equal F.conv2d's on the layer's analogue weights."""
    torch.manual_seed(0)
    layer = HybridConv2d(4, 6, kernel, padding=padding, dilation=dilation, groups=2, bias=True, replicas=replicas,
                         seeds=[1, 2][:replicas] if replicas else 1)
    assert layer.padding == padding and f"padding={padding!r}" in repr(layer) and "dilation=" in repr(layer)
    x = torch.randn(*((replicas,) if replicas else ()), 3, 4, 9, 8)
    w = _weight(layer).requires_grad_(True)
    b = layer.bias.detach().clone().requires_grad_(True)
    ref_x = x.clone().requires_grad_(True)
    ref = _per_replica(lambda xi, wi, bi: F.conv2d(xi, wi, bi, 1, padding, dilation, 2), replicas, ref_x, w, b)
    if padding == "same":
        assert ref.shape[-2:] == x.shape[-2:]
    close = torch.equal if replicas is None else \
        (lambda a, e: torch.allclose(a, e, rtol=1e-5, atol=1e-5))  # replicas run as groups of one convolution
    with torch.no_grad():
        assert close(layer(x), ref)
    xg = x.clone().requires_grad_(True)
    out = layer(xg)
    assert out.shape == ref.shape and close(out, ref)
    g = torch.randn(ref.shape)
    out.backward(g)
    ref.backward(g)
    assert close(xg.grad, ref_x.grad) and close(layer.weight.grad, w.grad) and close(layer.bias.grad, b.grad)


def test_conv_refuses_same_padding_with_a_stride_and_unknown_padding_strings():
    with pytest.raises(ConfigError, match="padding='same'.*stride"):
        HybridConv2d(2, 3, 3, stride=2, padding="same", seeds=0)
    with pytest.raises(ConfigError, match="padding='full'"):
        HybridConv2d(2, 3, 3, padding="full", seeds=0)
    assert "dilation=(2, 1)" in repr(HybridConv2d(2, 3, 3, dilation=(2, 1), seeds=0))


@pytest.mark.filterwarnings("ignore:Using backward\\(\\) with create_graph=True")  # torch's, about .grad cycles
@pytest.mark.parametrize("backend", ["numba", "torch"])
@pytest.mark.parametrize("mode", ["fp", "hm"])
@pytest.mark.parametrize("kind", ["linear", "conv"])
def test_second_order_gradients_are_refused_in_every_mode(backend, mode, kind):
    """A gradient penalty (create_graph=True) through a hybrid layer would silently lose its part
    through the weight (the backward's gradients have no graph: ∂‖∂L/∂x‖²/∂W came out 0 where
    nn.Conv2d gives 128.8); HybridLinear crashed in numpy. Both refuse it, naming the layer, before
    anything is recorded; a first-order backward afterwards trains as before."""
    from ferristor.optim import HybridSGD
    with use_backend(backend):
        cfg = HybridConfig(mode=mode)
        layer = HybridLinear(6, 5, bias=True, seeds=3, name="mine", config=cfg) if kind == "linear" else \
            HybridConv2d(2, 3, 3, padding=1, bias=True, seeds=3, name="mine", config=cfg)
        x = torch.randn(3, 6) if kind == "linear" else torch.randn(2, 2, 5, 5)
        opt = HybridSGD(layer.parameters(), lr=0.5, p=1.0, k=1)
        before = _chip(layer, opt)
        name = "HybridLinear 'mine'" if kind == "linear" else "HybridConv2d 'mine'"
        xg = x.clone().requires_grad_(True)
        with pytest.raises(ConfigError, match=f"create_graph=True: second-order gradients through {name} are "
                                              "not supported.*fp included.*create_graph=False.*float model"):
            torch.autograd.grad(layer(xg).square().sum(), xg, create_graph=True)
        with pytest.raises(ConfigError, match="second-order"):
            layer(xg).square().sum().backward(create_graph=True)
        opt.step()
        after = _chip(layer, opt)
        for k, v in before.items():
            assert torch.equal(after[k], v), k
        layer.capture_factors = False  # the same without an optimizer capturing (ordinary autograd)
        with pytest.raises(ConfigError, match="second-order"):
            torch.autograd.grad(layer(xg).square().sum(), layer.weight, create_graph=True)
        layer.capture_factors = None
        layer(xg).square().sum().backward()
        opt.step()
        assert opt.state[layer.weight]["inputs"] == x.shape[0]


def test_normalize_refuses_second_order_gradients():
    """Its numba backward has no graph either: a penalty's part through it would be lost."""
    z = torch.randn(3, 4, requires_grad=True)
    with pytest.raises(ConfigError, match="create_graph=True: second-order gradients through Normalize"):
        torch.autograd.grad(Normalize("layer")(z).square().sum(), z, create_graph=True)
    (g,) = torch.autograd.grad(Normalize("layer")(z).square().sum(), z)  # once: as before
    assert g.shape == z.shape


def test_ferristors_loss_refuses_second_order_gradients():
    """Its gradient is a constant computed in the forward: its Hessian would silently be 0."""
    from ferristor.nn.functional import binary_cross_entropy_with_logits, cross_entropy
    z = torch.randn(3, 4, requires_grad=True)
    with pytest.raises(ConfigError, match="second-order.*torch.nn.functional"):
        torch.autograd.grad(cross_entropy(z, torch.tensor([0, 1, 3])), z, create_graph=True)
    z1 = torch.randn(3, 1, requires_grad=True)
    with pytest.raises(ConfigError, match="second-order"):
        torch.autograd.grad(binary_cross_entropy_with_logits(z1, torch.tensor([0, 1, 1])), z1, create_graph=True)


@pytest.mark.parametrize("replicas", [None, 2])
@pytest.mark.parametrize("kind,padding_mode", [("linear", None), ("conv", "zeros"), ("conv", "reflect")])
def test_an_unbatched_input_is_one_input_as_in_torch(kind, padding_mode, replicas):
    """nn.Conv2d takes (C, H, W) and nn.Linear (in,): HybridConv2d refused the first. Both layers take
    an input without its batch dimension (after the replica axis, with replicas) as a batch of one: the
    same output without that dimension, the same gradient, one input counted, the same chip after a step."""
    from ferristor.optim import HybridSGD
    seeds = [3, 4][:replicas] if replicas else 3
    lead = (replicas,) if replicas else ()

    def make():
        if kind == "linear":
            return HybridLinear(6, 5, bias=True, replicas=replicas, seeds=seeds, config=HybridConfig(mode="hm"))
        return HybridConv2d(2, 3, 3, padding=1, bias=True, padding_mode=padding_mode, replicas=replicas, seeds=seeds,
                            config=HybridConfig(mode="hm"))
    one = torch.randn(*lead, *((6,) if kind == "linear" else (2, 5, 5)), generator=torch.Generator().manual_seed(0))
    at = len(lead)
    layers, outs, grads = [], [], []
    for x in (one, one.unsqueeze(at)):  # unbatched, and the same sample as a batch of one
        layer = make()
        opt = HybridSGD(layer.parameters(), lr=0.5, p=1.0, k=1)
        xg = x.clone().requires_grad_(True)
        out = layer(xg)
        out.square().sum().backward()
        opt.step()
        assert opt.state[layer.weight]["inputs"] == 1 and opt.state[layer.bias]["inputs"] == 1
        layers.append(layer)
        outs.append(out.detach())
        grads.append(xg.grad)
        with torch.no_grad():
            assert layer(x).shape == out.shape
    assert outs[0].shape == outs[1].squeeze(at).shape and outs[0].dim() == one.dim()
    assert torch.equal(outs[0], outs[1].squeeze(at)) and torch.equal(grads[0], grads[1].squeeze(at))
    for k, v in layers[1].state_dict().items():
        assert torch.equal(layers[0].state_dict()[k], v), k
    if kind == "conv" and replicas is None:
        w = _weight(make())
        ref = F.conv2d(F.pad(one, (1, 1, 1, 1), mode=padding_mode) if padding_mode != "zeros" else one, w,
                       make().bias.detach(), padding=0 if padding_mode != "zeros" else 1)
        torch.testing.assert_close(make()(one), ref)
    with pytest.raises(ConfigError, match="input shape"):
        make()(one[..., 0, :] if kind == "conv" else one[..., :3])


def test_what_counts_as_an_input():
    """docs/pytorch.md: a (B, T, in) input to HybridLinear is B·T inputs (rows the rule sees); a
    convolution counts its batch N, not its output positions; two backward passes of one forward
    (retain_graph=True) are an accumulation: both gradients, both counts."""
    from ferristor.optim import HybridSGD
    lin = HybridLinear(4, 3, seeds=0, name="a", config=HybridConfig(mode="hm"))
    opt = HybridSGD(lin.parameters(), k=100)
    lin(torch.randn(2, 5, 4)).sum().backward()
    opt.step()
    assert opt.state[lin.weight]["inputs"] == 10
    conv = HybridConv2d(1, 2, 3, seeds=0, name="c", config=HybridConfig(mode="hm"))
    opt = HybridSGD(conv.parameters(), k=100)
    conv(torch.randn(2, 1, 8, 8)).sum().backward()  # 36 output positions per sample
    opt.step()
    assert opt.state[conv.weight]["inputs"] == 2
    twice, once = (HybridLinear(4, 3, seeds=0, name="a", config=HybridConfig(mode="fp")) for _ in range(2))
    x = torch.randn(2, 4, generator=torch.Generator().manual_seed(0))
    opt_twice, opt_once = (HybridSGD(m.parameters(), lr=0.1, p=1.0, k=100) for m in (twice, once))
    loss = twice(x).square().sum()
    loss.backward(retain_graph=True)
    loss.backward()
    opt_twice.step()
    (2 * once(x).square().sum()).backward()
    opt_once.step()
    assert opt_twice.state[twice.weight]["inputs"] == 4 and opt_once.state[once.weight]["inputs"] == 2
    torch.testing.assert_close(twice.weight, once.weight, rtol=0, atol=1e-6)


def _compiled_and_eager_models():
    def make():
        cfg = HybridConfig(mode="hm")
        return torch.nn.Sequential(HybridConv2d(1, 3, 3, padding=1, bias=True, seeds=0, name="conv", config=cfg),
                                   torch.nn.ReLU(), torch.nn.Flatten(),
                                   HybridLinear(3 * 6 * 6, 4, seeds=0, name="fc", config=cfg), Normalize("layer"))
    return make(), make()


def test_torch_compile_runs_the_hybrid_layers_eagerly_and_trains_as_eager():
    """Inside torch.compile the hybrid layers run eagerly (their passes are numba kernels Dynamo cannot
    trace): the same outputs and, after steps, the same chip as the model run eagerly."""
    from ferristor.optim import HybridSGD
    eager, model = _compiled_and_eager_models()
    compiled = torch.compile(model, backend="eager")
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(6, 1, 6, 6, generator=g), torch.randint(0, 4, (6,), generator=g)
    opts = [HybridSGD(m.parameters(), lr=0.2, p=0.5, k=2) for m in (eager, model)]
    for step in range(3):
        outs = []
        for run, opt in zip((eager, compiled), opts):
            out = run(x[2 * step:2 * step + 2])
            opt.zero_grad()
            F.cross_entropy(out, y[2 * step:2 * step + 2]).backward()
            opt.step()
            outs.append(out.detach())
        assert torch.equal(*outs)
    with torch.no_grad():
        assert torch.equal(compiled(x), eager(x))
    for (k, a), b in zip(eager.state_dict().items(), model.state_dict().values()):
        assert torch.equal(a, b), k


COLD_COMPILE = """
import torch
from ferristor.nn import HybridConfig, HybridLinear
layer = HybridLinear(4, 3, config=HybridConfig(mode="fp"), seeds=0, name="a")
x = torch.randn(2, 4, requires_grad=True)
out = torch.compile(layer, backend="eager")(x)
assert torch.equal(out, layer(x))
from ferristor.nn.functional import binary_cross_entropy_with_logits, cross_entropy
y = torch.tensor([0, 2])
assert torch.equal(torch.compile(cross_entropy, backend="eager")(out, y), cross_entropy(out, y))
z = out[:, :1]
assert torch.equal(torch.compile(binary_cross_entropy_with_logits, backend="eager")(z, y.float() / 2),
                   binary_cross_entropy_with_logits(z, y.float() / 2))
print("ok")
"""


@pytest.mark.slow
def test_torch_compile_works_before_numba_has_compiled_the_kernels(tmp_path):
    """A kernel's first call compiles it in numba's Python compiler, which failed under Dynamo's tracing
    (KeyError: 'parfor_index…') — torch.compile of a hybrid model on a machine without numba's cache;
    ferristor's losses failed under it even with the cache. Both run eagerly inside a compiled function."""
    import os
    import subprocess
    import sys
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path))  # an empty cache: every kernel compiles here
    r = subprocess.run([sys.executable, "-c", COLD_COMPILE], env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr[-2000:]


def test_is_compiling_is_found_on_every_supported_torch():
    """torch.compiler.is_compiling arrived in torch 2.3; pyproject allows 2.1, whose torch._dynamo has it."""
    import types

    from ferristor.nn import autograd_util as au
    assert au.is_compiling is torch.compiler.is_compiling
    assert au._find_is_compiling(types.SimpleNamespace()) is au._dynamo_is_compiling  # a 2.1 torch.compiler
    assert au._dynamo_is_compiling() is False
