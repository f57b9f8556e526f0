"""The masked update: the fused CPU kernels equal the torch path bit for bit, for both samplers (the
sparse kernel walks the stream the torch path reads whole); the rule's statistics hold."""
import numpy as np
import pytest
import torch

from ferristor.backend import use_backend
from ferristor.rule import functional as F_rule
from ferristor.rule import kernels_cpu
from ferristor.rule.streams import STREAM_UPDATE, stream_keys
from ferristor.rule.update import crossbar_draws, fp_update, hybrid_update

from .conftest import rank1_problem

R, I, O = 3, 29, 17  # crossbars are (replicas, rows = inputs, columns = outputs)


def _factors(seed=0):
    return rank1_problem((R, I, O), seed)


def _keys():
    return stream_keys([3, 4, 5], "fc1.weight", STREAM_UPDATE)


def _draws(step, p, sampler="dense"):
    return crossbar_draws(torch.from_numpy(_keys().astype(np.int64)), (R, I, O), step, p=p, sampler=sampler)


SAMPLERS = pytest.mark.parametrize("sampler", ["dense", "sparse"])


@SAMPLERS
@pytest.mark.parametrize("rounding", ["stochastic", "nearest", "truncate"])
@pytest.mark.parametrize("count_zero", [True, False])
def test_kernel_equals_reference_bit_for_bit(rounding, count_zero, sampler):
    hidden, delta, x = _factors()
    kw = dict(lr=3.0, lsb=2 ** -9, rounding=rounding, max_hidden=511, count_zero=count_zero)
    ref_h, ref_ev = hybrid_update(hidden, *_draws(7, 0.3, sampler), delta=delta, x=x, **kw)
    h, pend = hidden.numpy().copy(), np.zeros((R, I, O), np.uint8)
    kernels_cpu.hybrid_update_(h, pend, _keys(), 7, p=0.3, sampler=sampler, delta=delta.numpy(), x=x.numpy(), **kw)
    assert np.array_equal(h, ref_h.numpy())
    assert np.array_equal(pend, ref_ev.numpy().astype(np.uint8))
    assert (ref_h != hidden).any() and ref_h.abs().max() <= 511  # the test moved weights, within range
    assert torch.equal(ref_h, ref_h.round())  # hidden values stay integers


@SAMPLERS
@pytest.mark.parametrize("rounding", ["stochastic", "nearest"])
def test_dense_kernels_equal_reference(rounding, sampler):
    hidden, _, _ = _factors(1)
    g = torch.randn(R, I, O) * 0.01
    kw = dict(lr=2.0, lsb=2 ** -9, rounding=rounding, max_hidden=511)
    ref_h, ref_ev = hybrid_update(hidden, *_draws(3, 0.4, sampler), grad=g, **kw)
    h, pend = hidden.numpy().copy(), np.zeros((R, I, O), np.uint8)
    kernels_cpu.hybrid_update_(h, pend, _keys(), 3, p=0.4, sampler=sampler, grad=g.numpy(), **kw)
    assert np.array_equal(h, ref_h.numpy()) and np.array_equal(pend, ref_ev.numpy().astype(np.uint8))
    w = torch.randn(R, I, O)
    ref_w, ref_m = fp_update(w, _draws(3, 0.4, sampler)[0], grad=g, lr=0.1)
    ww, pend = w.numpy().copy(), np.zeros((R, I, O), np.uint8)
    kernels_cpu.fp_update_(ww, pend, _keys(), 3, grad=g.numpy(), lr=0.1, p=0.4, sampler=sampler)
    assert np.array_equal(ww, ref_w.numpy()) and np.array_equal(pend, ref_m.numpy().astype(np.uint8))


@pytest.mark.parametrize("rounding,count_zero", [("stochastic", True), ("stochastic", False), ("nearest", True),
                                                ("truncate", False)])
@pytest.mark.parametrize("n_out", [6, 16, 17, 35])
def test_several_steps_at_once_equal_one_step_at_a_time(rounding, count_zero, n_out):
    """The kernel that runs a layer's T updates between two transfers together (rows in padded
    buffers, counts in int32 lanes) equals T calls of the one-step kernel bit for bit: widths under,
    at and past a whole vector, saturation cases, steps counted from a non-zero start."""
    n_steps = 9
    hidden, _, _ = rank1_problem((R, I, n_out), 3)
    g = torch.Generator().manual_seed(8)
    deltas = (torch.randn(n_steps, R, n_out, generator=g) * 0.05).numpy()
    xs = (torch.rand(n_steps, R, I, generator=g) * 2 - 1).numpy()
    kw = dict(lr=3.0, lsb=2 ** -9, p=0.3, rounding=rounding, max_hidden=511, count_zero=count_zero)
    one, one_p = hidden.numpy().copy(), np.zeros((R, I, n_out), np.uint8)
    for t in range(n_steps):
        kernels_cpu.hybrid_update_(one, one_p, _keys(), 40 + t, delta=deltas[t], x=xs[t], **kw)
    together, together_p = hidden.numpy().copy(), np.full((R, I, n_out), 3, np.uint8)
    kernels_cpu.hybrid_update_steps_(together, together_p, _keys(), 40, deltas=deltas, xs=xs, **kw)
    assert np.array_equal(together, one) and np.array_equal(together_p, one_p + 3)
    assert (one != hidden.numpy()).any() and np.abs(one).max() == 511 and one_p.max() > 1


@SAMPLERS
def test_fp_rank1_kernel_equals_reference(sampler):
    _, delta, x = _factors()
    w = torch.randn(R, I, O)
    ref_w, ref_m = fp_update(w, _draws(5, 0.3, sampler)[0], delta=delta, x=x, lr=0.1)
    ww, pend = w.numpy().copy(), np.zeros((R, I, O), np.uint8)
    kernels_cpu.fp_update_(ww, pend, _keys(), 5, delta=delta.numpy(), x=x.numpy(), lr=0.1, p=0.3, sampler=sampler)
    assert np.array_equal(ww, ref_w.numpy()) and np.array_equal(pend, ref_m.numpy().astype(np.uint8))


@SAMPLERS
@pytest.mark.parametrize("p", [1.0, 0.97, 0.003, 2.0 ** -12])
def test_sparse_and_dense_kernels_equal_reference_at_extreme_p(p, sampler):
    """p = 1 (every weight), near 1, small (the gap table's bisection buckets) and tiny (gaps past
    the 4,096-entry table: the walk moves on and draws again). Rows wider than the table."""
    n_in, n_out = 4, 9000
    g = torch.Generator().manual_seed(4)
    hidden = torch.randint(-511, 512, (R, n_in, n_out), generator=g).to(torch.float32)
    delta, x = torch.randn(R, n_out, generator=g) * 0.05, torch.rand(R, n_in, generator=g)
    kw = dict(lr=3.0, lsb=2 ** -9, rounding="stochastic", max_hidden=511)
    mask, off = crossbar_draws(torch.from_numpy(_keys().astype(np.int64)), (R, n_in, n_out), 11, p=p, sampler=sampler)
    ref_h, ref_ev = hybrid_update(hidden, mask, off, delta=delta, x=x, **kw)
    h, pend = hidden.numpy().copy(), np.zeros((R, n_in, n_out), np.uint8)
    kernels_cpu.hybrid_update_(h, pend, _keys(), 11, p=p, sampler=sampler, delta=delta.numpy(), x=x.numpy(), **kw)
    assert np.array_equal(h, ref_h.numpy()) and np.array_equal(pend, ref_ev.numpy().astype(np.uint8))
    n = mask.numel()
    assert abs(mask.float().mean().item() - p) <= 5 * (p * (1 - p) / n) ** 0.5 + 1e-12
    if p == 1.0:
        assert mask.all()


@SAMPLERS
def test_functional_core_picks_the_backend_and_agrees(sampler):
    hidden, delta, x = _factors(2)
    kw = dict(lr=1.0, lsb=2 ** -9, p=0.5, rounding="stochastic", max_hidden=511, delta=delta, x=x, sampler=sampler)
    a, pa = hidden.clone(), torch.zeros(R, I, O, dtype=torch.uint8)
    F_rule.hybrid_update_(a, pa, _keys(), 9, **kw)
    with use_backend("torch"):
        b, pb = hidden.clone(), torch.zeros(R, I, O, dtype=torch.uint8)
        F_rule.hybrid_update_(b, pb, _keys(), 9, **kw)
    assert torch.equal(a, b) and torch.equal(pa, pb)


def test_dense_gradient_equals_rank1_factors():
    hidden, delta, x = _factors()
    kw = dict(lr=1.0, lsb=2 ** -9, rounding="nearest", max_hidden=511)
    a, _ = hybrid_update(hidden, *_draws(1, 0.5), delta=delta, x=x, **kw)
    b, _ = hybrid_update(hidden, *_draws(1, 0.5), grad=x[:, :, None] * delta[:, None, :], **kw)
    # −coef·(x·δ) and x·(−coef·δ) round differently in rare ties only; nearest rounding here is exact
    assert (a != b).float().mean() < 1e-3


@SAMPLERS
@pytest.mark.parametrize("p", [0.05, 0.2, 1.0])
def test_mask_frequency_is_p_and_rounding_unbiased(p, sampler):
    """Over many steps each weight is masked in with probability p, and the mean change equals p·v."""
    i, o, steps = 50, 40, 400
    keys = stream_keys([1], "w", STREAM_UPDATE)
    delta = np.full((1, o), -0.3 * 2 ** -9, np.float32)  # v = −lr·δ·x/lsb = 0.3 LSB with lr = 1, x = 1
    x = np.ones((1, i), np.float32)
    total, events = np.zeros((1, i, o)), np.zeros((1, i, o))
    for s in range(steps):
        h, pend = np.zeros((1, i, o), np.float32), np.zeros((1, i, o), np.uint8)
        kernels_cpu.hybrid_update_(h, pend, keys, s, delta=delta, x=x, lr=1.0, lsb=2 ** -9, p=p,
                                   rounding="stochastic", max_hidden=511, sampler=sampler)
        total += h
        events += pend
    n = o * i * steps
    assert abs(events.sum() / n - p) <= 5 * (p * (1 - p) / n) ** 0.5 + 1e-12
    assert abs(total.sum() / n - p * 0.3) < 5 * (p * 0.3 / n) ** 0.5
    per_weight = events[0] / steps  # every position has its own Bernoulli(p), none stuck
    assert np.all(np.abs(per_weight - p) < 6 * (p * (1 - p) / steps) ** 0.5 + 1e-12)


def test_mask_threshold_matches_a_float32_comparison():
    for p in (0.2, 0.1, 1e-3, 0.5, 1.0, 0.7777):
        m = np.arange(0, 2 ** 24, 997, dtype=np.int64)
        u = m.astype(np.float32) * np.float32(2.0 ** -24)
        assert np.array_equal(m < kernels_cpu.mask_threshold(p), u < np.float32(p))
