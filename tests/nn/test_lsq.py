"""LSQ (Esser et al. 2020): quantiser values, the step size's gradient, the STE, levels used."""
import math

import pytest
import torch
from torch import nn

from ferristor.errors import ConfigError
from ferristor.nn.lsq import (LSQConv2d, LSQLinear, grad_scale, init_step, level_usage, lsq_codes, lsq_quantize,
                              qrange, quantize_weights_)


def test_qrange_signed_and_unsigned():
    assert qrange(4) == (8, 7)
    assert qrange(4, signed=False) == (0, 15)
    assert qrange(2) == (2, 1)
    for bad in (1, 17, 4.0, True):
        with pytest.raises(ConfigError, match="bits"):
            qrange(bad)


def test_quantiser_values_are_step_times_clamped_rounded_codes():
    s = torch.tensor(0.5)
    w = torch.tensor([-10.0, -4.0, -3.9, -0.26, -0.24, 0.0, 0.74, 0.76, 3.49, 3.6, 100.0])
    q = lsq_quantize(w, s, bits=4)
    # codes: clamp(round(w/s), -8, 7)
    expected_codes = torch.tensor([-8, -8, -8, -1, 0, 0, 1, 2, 7, 7, 7], dtype=torch.float32)
    assert torch.equal(q, expected_codes * 0.5)
    assert torch.equal(lsq_codes(w, s, 4), expected_codes.long())


def test_gradient_of_the_step_size_follows_the_paper_and_is_scaled():
    w = torch.tensor([-5.0, -0.3, 0.2, 0.9, 1.6, 4.0], requires_grad=True)
    s = torch.tensor(0.5, requires_grad=True)
    g = 0.125
    lsq_quantize(w, s, bits=3, grad_scale_=g).sum().backward()  # 3 bits: Q_N = 4, Q_P = 3
    v = w.detach() / 0.5  # [-10, -0.6, 0.4, 1.8, 3.2, 8]
    # below −Q_N: −Q_N; inside: round(v) − v; above Q_P: Q_P
    expected = [-4.0, round(-0.6) - (-0.6), round(0.4) - 0.4, round(1.8) - 1.8, 3.0, 3.0]
    assert s.grad.item() == pytest.approx(g * sum(expected), rel=1e-6)
    # straight-through estimator: 1 inside the range, 0 where clipped
    assert w.grad.tolist() == [0.0, 1.0, 1.0, 1.0, 0.0, 0.0]


def test_default_gradient_scale_is_one_over_sqrt_nw_qp():
    w = torch.randn(6, 5, requires_grad=True)
    s = torch.tensor(0.3, requires_grad=True)
    lsq_quantize(w, s, bits=4).sum().backward()
    g_paper = grad_scale(30, 4)
    assert g_paper == pytest.approx(1 / math.sqrt(30 * 7))
    s2 = s.detach().clone().requires_grad_()
    lsq_quantize(w.detach(), s2, bits=4, grad_scale_=1.0).sum().backward()
    assert s.grad.item() == pytest.approx(s2.grad.item() * g_paper, rel=1e-6)


def test_a_step_per_replica_gets_its_own_gradient():
    w = torch.randn(3, 4, 5)
    s = torch.tensor([0.1, 0.2, 0.3]).view(3, 1, 1).requires_grad_()
    lsq_quantize(w, s, 4).sum().backward()
    for r in range(3):
        sr = s.detach()[r].clone().requires_grad_()
        lsq_quantize(w[r], sr, 4).sum().backward()
        assert s.grad[r].item() == pytest.approx(sr.grad.item(), rel=1e-5)


def test_initial_step_is_two_mean_abs_over_sqrt_qp():
    w = torch.tensor([1.0, -3.0])
    assert init_step(w, 4).item() == pytest.approx(2 * 2.0 / math.sqrt(7))


def test_quantize_weights_keeps_outputs_keys_and_uses_the_4bit_levels():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 4 * 4, 10))
    keys = set(model.state_dict())
    swapped = quantize_weights_(model, bits=4)
    assert swapped == ["0", "3"]
    assert isinstance(model[0], LSQConv2d) and isinstance(model[3], LSQLinear)
    assert set(model.state_dict()) == keys | {"0.weight_step", "3.weight_step"}
    # the forward pass uses the quantised weights: at most 16 distinct values per layer, all multiples of the step
    for layer in (model[0], model[3]):
        qw = layer.quantized_weight().detach()
        assert len(torch.unique(qw)) <= 16
        codes = qw / layer.weight_step.detach()
        assert torch.allclose(codes, codes.round(), atol=1e-5)
    # QAT: a few Adam steps on a toy task learn weights and steps; the 4-bit levels are used
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    x, y = torch.randn(64, 1, 6, 6), torch.randint(0, 10, (64,))
    s0 = model[3].weight_step.item()
    for _ in range(20):
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert model[3].weight_step.item() != s0
    usage = level_usage(model)
    assert usage["3"]["bits"] == 4 and len(usage["3"]["histogram"]) == 16
    assert usage["0"]["levels_used"] >= 12 and usage["3"]["levels_used"] >= 12


def test_include_picks_layers_by_glob():
    model = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 2))
    assert quantize_weights_(model, 4, include="1") == ["1"]
    assert type(model[0]) is nn.Linear
