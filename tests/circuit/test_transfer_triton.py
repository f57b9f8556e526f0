"""The fused Triton transfer equals the tensor path bit for bit: ideal and measured level means,
with and without noise, both sign guards, strided crossbars, a noise counter read from a device
tensor. Without a GPU it runs in Triton's interpreter (tests/conftest.py), on a GPU compiled."""
import numpy as np
import pytest
import torch

pytest.importorskip("triton", reason="Triton is in the dev extra (make install)")

from ferristor.circuit.transfer import CounterNoise, TableTransfer, TransferConfig, split_sign  # noqa: E402
from ferristor.circuit.transfer_triton import table_transfer_  # noqa: E402
from ferristor.rule.streams import STREAM_TRANSFER, stream_keys  # noqa: E402

DEV = "cuda" if torch.cuda.is_available() else "cpu"
R, I, O, SHIFT, STEP = 3, 21, 70, 6, 2.0 ** -3


def _hidden():
    g = torch.Generator().manual_seed(4)
    h = torch.randint(-511, 512, (R, I, O), generator=g).to(torch.float32)
    h[0, 0, :4] = torch.tensor([0.0, -1.0, 63.0, -64.0])  # level edges and a negative level 0
    return h


@pytest.mark.parametrize("model,means,guard", [("table", "ideal", "clip"), ("table", "measured", "fold"),
                                               ("ideal", "measured", "clip"), ("ideal", "ideal", "clip")])
def test_fused_transfer_equals_the_tensor_path(model, means, guard):
    cfg = TransferConfig(model=model, level_means=means, sign_guard=guard)
    t = TableTransfer(cfg)
    keys = stream_keys([1, 2, 3], "fc1.weight", STREAM_TRANSFER)
    hidden = _hidden()
    index = 2 ** 33 + 5
    sign, mag = split_sign(hidden, SHIFT)
    ref = t.program(sign, mag, CounterNoise(keys, index)).mul_(STEP)
    store = torch.zeros(R, O, I, device=DEV)  # a strided crossbar view (R, I, O), as a conv layer's
    t.program_hidden_triton_(hidden.to(DEV), SHIFT, STEP, CounterNoise(keys, index), store.transpose(1, 2))
    assert torch.equal(store.transpose(1, 2).cpu(), ref)
    if t.sigma:
        assert not torch.equal(ref, t.program(sign, mag, CounterNoise(keys, index + 1)).mul_(STEP))


def test_noise_counter_from_a_device_tensor_plus_an_offset():
    t = TableTransfer(TransferConfig(model="table"))
    keys = stream_keys([7], "fc2.weight", STREAM_TRANSFER)
    hidden = _hidden()[:1].to(DEV)
    a, b = torch.empty_like(hidden), torch.empty_like(hidden)
    t.program_hidden_triton_(hidden, SHIFT, STEP, CounterNoise(keys, 12), a)
    t.program_hidden_triton_(hidden, SHIFT, STEP, CounterNoise(keys, 2, on_device=torch.tensor([10], device=DEV)), b)
    assert torch.equal(a, b)
    with pytest.raises(ValueError, match="fused GPU transfer"):
        CounterNoise(keys, 2, on_device=torch.tensor([10])).normals((1, I, O), "cpu")


def test_a_noisy_transfer_without_keys_is_refused():
    with pytest.raises(ValueError, match="keys"):
        table_transfer_(_hidden(), torch.empty(R, I, O), shift=SHIFT, means=torch.arange(8.0), ideal=True,
                        sigma=0.5, fold=False, level_step=STEP)
    assert np.float32(STEP) == STEP


def test_fused_quantile_transfer_equals_the_tensor_path():
    """The circuit transfer from its quantile table (QuantileCircuitTransfer), on a strided crossbar,
    with the noise counter given directly and read from a device tensor."""
    from ferristor.circuit.charge_transfer import QuantileCircuitTransfer
    t = QuantileCircuitTransfer(draws=4096)
    keys = stream_keys([1, 2, 3], "fc1.weight", STREAM_TRANSFER)
    hidden = _hidden()
    sign, mag = split_sign(hidden, SHIFT)
    ref = t.program(sign, mag, CounterNoise(keys, 9)).mul_(STEP)
    store = torch.zeros(R, O, I, device=DEV)
    t.program_hidden_triton_(hidden.to(DEV), SHIFT, STEP, CounterNoise(keys, 9), store.transpose(1, 2))
    assert torch.equal(store.transpose(1, 2).cpu(), ref)
    again = torch.empty_like(hidden, device=DEV)
    t.program_hidden_triton_(hidden.to(DEV), SHIFT, STEP, CounterNoise(keys, 4, on_device=torch.tensor([5], device=DEV)),
                             again)
    assert torch.equal(again.cpu(), ref)
