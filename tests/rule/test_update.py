"""The masked update: the fused kernel equals the reference bit for bit; the draws have the rule's statistics."""
import numpy as np
import pytest
import torch

from ferristor.rule import kernels_cpu
from ferristor.rule.rng import replica_key, step_keys
from ferristor.rule.update import counter_uniforms, fp_update, hybrid_update

R, O, I = 3, 17, 29


def _factors(seed=0):
    g = torch.Generator().manual_seed(seed)
    delta = torch.randn(R, O, generator=g) * 0.05
    x = torch.rand(R, I, generator=g) * 2 - 1
    hidden = torch.randint(-511, 512, (R, O, I), generator=g).to(torch.int16)
    hidden[0, 0, :5] = torch.tensor([511, -511, 510, -510, 0], dtype=torch.int16)  # saturation cases
    return hidden, delta, x


def _keys(step=7, layer=1):
    return step_keys(np.array([replica_key(s, 2) for s in (3, 4, 5)], dtype=np.uint64), step, layer)


@pytest.mark.parametrize("rounding", ["stochastic", "nearest", "truncate"])
@pytest.mark.parametrize("count_zero", [True, False])
def test_kernel_equals_reference_bit_for_bit(rounding, count_zero):
    hidden, delta, x = _factors()
    keys = _keys()
    u = counter_uniforms(keys, O * I).view(R, O, I)
    kw = dict(lr=3.0, lsb=2 ** -9, p=0.3, rounding=rounding, max_hidden=511, count_zero=count_zero)
    ref_h, ref_ev = hybrid_update(hidden, u, delta=delta, x=x, **kw)
    h, pend = hidden.numpy().copy(), np.zeros((R, O, I), np.uint8)
    kernels_cpu.hybrid_update_rank1_(h, pend, delta.numpy(), x.numpy(), keys, **kw)
    assert np.array_equal(h, ref_h.numpy())
    assert np.array_equal(pend, ref_ev.numpy().astype(np.uint8))
    assert (ref_h != hidden).any()  # the test moved weights
    assert ref_h.abs().max() <= 511


def test_fp_kernel_equals_reference():
    _, delta, x = _factors()
    keys = _keys()
    w = torch.randn(R, O, I)
    u = counter_uniforms(keys, O * I).view(R, O, I)
    ref_w, ref_m = fp_update(w, u, delta=delta, x=x, lr=0.1, p=0.3)
    ww, pend = w.numpy().copy(), np.zeros((R, O, I), np.uint8)
    kernels_cpu.fp_update_rank1_(ww, pend, delta.numpy(), x.numpy(), keys, lr=0.1, p=0.3)
    assert np.array_equal(ww, ref_w.numpy())
    assert np.array_equal(pend, ref_m.numpy().astype(np.uint8))


def test_dense_gradient_equals_rank1_factors():
    hidden, delta, x = _factors()
    u = counter_uniforms(_keys(), O * I).view(R, O, I)
    kw = dict(lr=1.0, lsb=2 ** -9, p=0.5, rounding="nearest", max_hidden=511)
    a, _ = hybrid_update(hidden, u, delta=delta, x=x, **kw)
    b, _ = hybrid_update(hidden, u, grad=delta[:, :, None] * x[:, None, :], **kw)
    assert torch.equal(a, b)


def test_counter_uniforms_are_uniform_and_independent():
    keys = step_keys(np.array([replica_key(s, 2) for s in range(4)], dtype=np.uint64), 11, 0)
    u = counter_uniforms(keys, 250_000)
    n = u.numel()
    hist = torch.histc(u, bins=20, min=0, max=1)
    chi2 = (((hist - n / 20) ** 2) / (n / 20)).sum().item()
    assert chi2 < 45  # 19 dof: P(chi2 > 45) ≈ 7e-4
    # neighbouring weights, replicas and steps are uncorrelated
    assert abs(np.corrcoef(u[0, :-1], u[0, 1:])[0, 1]) < 0.01
    assert abs(np.corrcoef(u[0], u[1])[0, 1]) < 0.01
    u2 = counter_uniforms(step_keys(np.array([replica_key(0, 2)], dtype=np.uint64), 12, 0), 250_000)
    assert abs(np.corrcoef(u[0], u2[0])[0, 1]) < 0.01


@pytest.mark.parametrize("p", [0.05, 0.2, 1.0])
def test_mask_frequency_is_p_and_rounding_unbiased(p):
    """Over many steps each weight is masked in with probability p, and the mean change equals p·v."""
    o, i, steps = 40, 50, 400
    pend = np.zeros((1, o, i), np.uint8)
    base = np.array([replica_key(1, 2)], dtype=np.uint64)
    delta = torch.full((1, o), -0.3 * 2 ** -9)  # v = -lr·δ·x/lsb = 0.3 LSB with lr = 1, x = 1
    x = torch.ones(1, i)
    total = np.zeros((1, o, i))
    events = np.zeros((1, o, i))
    for s in range(steps):
        h = np.zeros((1, o, i), np.int16)
        pend[:] = 0
        kernels_cpu.hybrid_update_rank1_(h, pend, delta.numpy(), x.numpy(), step_keys(base, s, 0),
                                         lr=1.0, lsb=2 ** -9, p=p, rounding="stochastic", max_hidden=511)
        total += h
        events += pend
    n = o * i * steps
    freq = events.sum() / n
    assert abs(freq - p) <= 5 * (p * (1 - p) / n) ** 0.5 + 1e-12
    mean_change = total.sum() / n
    assert abs(mean_change - p * 0.3) < 5 * (p * 0.3 / n) ** 0.5
    assert set(np.unique(total / 1).tolist()) <= set(range(0, steps + 1))


@pytest.mark.parametrize("rounding", ["stochastic", "nearest"])
def test_dense_kernel_equals_reference(rounding):
    hidden, delta, x = _factors(1)
    g = torch.randn(R, O, I) * 0.01
    keys = _keys(3, 2)
    u = counter_uniforms(keys, O * I).view(R, O, I)
    kw = dict(lr=2.0, lsb=2 ** -9, p=0.4, rounding=rounding, max_hidden=511)
    ref_h, ref_ev = hybrid_update(hidden, u, grad=g, **kw)
    h, pend = hidden.numpy().copy(), np.zeros((R, O, I), np.uint8)
    kernels_cpu.hybrid_update_dense_(h, pend, g.numpy(), keys, **kw)
    assert np.array_equal(h, ref_h.numpy()) and np.array_equal(pend, ref_ev.numpy().astype(np.uint8))
    w = torch.randn(R, O, I)
    ref_w, _ = fp_update(w, u, grad=g, lr=0.1, p=0.4)
    ww = w.numpy().copy()
    kernels_cpu.fp_update_dense_(ww, np.zeros((R, O, I), np.uint8), g.numpy(), keys, lr=0.1, p=0.4)
    assert np.array_equal(ww, ref_w.numpy())


def test_compiled_step_keys_equal_numpy_reference():
    base = np.array([replica_key(s, 2) for s in range(5)], dtype=np.uint64)
    for step, layer in [(0, 0), (1, 2), (123456, 1), (2**31, 3)]:
        assert np.array_equal(kernels_cpu.step_keys_fast(base, step, layer), step_keys(base, step, layer))
