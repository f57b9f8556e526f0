"""Hybrid layers meet autograd: their gradients are ordinary autograd's, captured factors equal them,
replicas are independent chips, and bad inputs are clear errors."""
import copy
import pickle

import pytest
import torch
import torch.nn.functional as F

from ferristor.backend import backend_for, use_backend
from ferristor.errors import ConfigError
from ferristor.nn import HybridConfig, HybridConv2d, HybridLinear, HybridParameter


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
    a.weight.data = a.weight.data.clone()  # and new tensors behind the weight and hidden values
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
