"""The fused Triton update equals the torch path bit for bit: every rounding mode, both event
counting rules, rank-1 factors and dense gradients, hybrid and fp, strided (conv) crossbars, a
step read from a device tensor. Without a GPU the kernel runs in Triton's interpreter (numpy, the
same integer and IEEE float32 semantics; tests/conftest.py sets it); on a GPU compiled."""
import numpy as np
import pytest
import torch

triton = pytest.importorskip("triton", reason="Triton is in the dev extra (make install)")

from ferristor.rule import kernels_triton as KT  # noqa: E402
from ferristor.rule.streams import STREAM_UPDATE, stream_keys  # noqa: E402
from ferristor.rule.update import crossbar_draws, fp_update, hybrid_update  # noqa: E402

from .conftest import rank1_problem  # noqa: E402

DEV = "cuda" if torch.cuda.is_available() else "cpu"
R, I, O = 3, 37, 70  # rows and columns past one 16 × 64 block: partial blocks on both axes


def _case(seed=0):
    hidden, delta, x = rank1_problem((R, I, O), seed)
    keys = torch.from_numpy(stream_keys([3, 4, 2 ** 40 + 5], "fc1.weight", STREAM_UPDATE).astype(np.int64))
    return hidden, delta, x, keys


def _on(*ts):
    return [t.to(DEV) for t in ts]


@pytest.mark.parametrize("rounding", ["stochastic", "nearest", "truncate"])
@pytest.mark.parametrize("count_zero", [True, False])
def test_rank1_equals_the_torch_path(rounding, count_zero):
    hidden, delta, x, keys = _case()
    step = 2 ** 33 + 7  # both halves of the 64-bit counter
    kw = dict(lr=3.0, lsb=2 ** -9, rounding=rounding, max_hidden=511, count_zero=count_zero)
    ref_h, ref_ev = hybrid_update(hidden, *crossbar_draws(keys, (R, I, O), step, p=0.3), delta=delta, x=x, **kw)
    h, pend, d, xx, k = _on(hidden.clone(), torch.zeros(R, I, O, dtype=torch.uint8), delta, x, keys)
    KT.update_(h, pend, k, step, fp=False, p=0.3, delta=d, x=xx, **kw)
    assert torch.equal(h.cpu(), ref_h) and torch.equal(pend.cpu(), ref_ev.to(torch.uint8))
    assert (ref_h != hidden).any() and 0 < int(ref_ev.sum()) < ref_ev.numel()


def test_dense_gradient_fp_and_a_strided_crossbar_equal_the_torch_path():
    hidden, delta, x, keys = _case(1)
    grad = torch.randn(R, O, I).transpose(1, 2) * 0.01  # a conv layer's crossbar view: not contiguous
    kw = dict(lr=2.0, lsb=2 ** -9, rounding="stochastic", max_hidden=511)
    ref_h, ref_ev = hybrid_update(hidden, *crossbar_draws(keys, (R, I, O), 3, p=0.4), grad=grad, **kw)
    store = hidden.transpose(1, 2).contiguous()  # (R, O, I) storage, crossbar view strided
    pend = torch.zeros(R, O, I, dtype=torch.uint8)
    s, pd, g, k = _on(store, pend, grad, keys)
    KT.update_(s.transpose(1, 2), pd.transpose(1, 2), k, 3, fp=False, p=0.4, grad=g, **kw)
    assert torch.equal(s.transpose(1, 2).cpu(), ref_h) and torch.equal(pd.transpose(1, 2).cpu(), ref_ev.to(torch.uint8))
    w = torch.randn(R, I, O)
    mask = crossbar_draws(keys, (R, I, O), 5, p=0.3)[0]
    for factors in ({"delta": delta, "x": x}, {"grad": grad}):
        ref_w, ref_m = fp_update(w, mask, lr=0.1, **factors)
        ww, pm = _on(w.clone(), torch.zeros(R, I, O, dtype=torch.uint8))
        KT.update_(ww, pm, keys.to(DEV), 5, fp=True, lr=0.1, p=0.3, **{n: t.to(DEV) for n, t in factors.items()})
        assert torch.equal(ww.cpu(), ref_w) and torch.equal(pm.cpu(), ref_m.to(torch.uint8))


def test_step_from_a_device_tensor_plus_an_offset():
    """What a captured CUDA graph does: the counter lives on the device, each step adds its offset."""
    hidden, delta, x, keys = _case(2)
    kw = dict(fp=False, lr=3.0, p=0.3, lsb=2 ** -9, max_hidden=511)
    a, pa = _on(hidden.clone(), torch.zeros(R, I, O, dtype=torch.uint8))
    b, pb = _on(hidden.clone(), torch.zeros(R, I, O, dtype=torch.uint8))
    d, xx, k = _on(delta, x, keys)
    KT.update_(a, pa, k, 41, delta=d, x=xx, **kw)
    KT.update_(b, pb, k, 1, delta=d, x=xx, step_tensor=torch.tensor([40], device=DEV), **kw)
    assert torch.equal(a, b) and torch.equal(pa, pb)
    c = hidden.clone().to(DEV)
    KT.update_(c, torch.zeros_like(pa), k, 42, delta=d, x=xx, **kw)
    assert not torch.equal(a, c)  # another step draws other masks
