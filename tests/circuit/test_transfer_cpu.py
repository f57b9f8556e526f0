"""The fused CPU table transfer equals the tensor path of TableTransfer bit for bit (noise included)."""
import pytest
import torch

pytest.importorskip("numba")

from ferristor.backend import use_backend  # noqa: E402
from ferristor.circuit.transfer import CounterNoise, TableTransfer, TransferConfig, split_sign  # noqa: E402
from ferristor.rule.streams import STREAM_TRANSFER, stream_keys  # noqa: E402


@pytest.mark.parametrize("model,means,guard", [("ideal", "ideal", "clip"), ("ideal", "measured", "clip"),
                                               ("table", "ideal", "clip"), ("table", "measured", "clip"),
                                               ("table", "ideal", "fold")])
def test_fused_transfer_matches_tensor_path(model, means, guard):
    shift, step = 6, 2.0 ** -3
    hidden = torch.randint(-511, 512, (3, 17, 29), generator=torch.Generator().manual_seed(4)).to(torch.float32)
    hidden[0, 0, :4] = torch.tensor([0.0, -1.0, -64.0, 63.0])  # sign kept at level 0
    transfer = TableTransfer(TransferConfig(model=model, level_means=means, sign_guard=guard))
    noise = CounterNoise(stream_keys([10, 11, 12], "fc1.weight", STREAM_TRANSFER), 5)
    sign, magnitude = split_sign(hidden, shift)
    with use_backend("torch"):  # the normals of the tensor path from random_torch
        expected = transfer.program(sign, magnitude, noise).mul_(step)
    out = torch.full_like(expected, float("nan"))
    transfer.program_hidden_cpu_(hidden.numpy(), shift, step, noise, out.numpy())
    assert torch.equal(out.view(torch.int32), expected.view(torch.int32))  # -0.0 included


def test_fused_quantile_transfer_matches_tensor_path():
    """The circuit transfer drawn from its quantile table: the fused kernel equals
    QuantileCircuitTransfer.program bit for bit, signs, level edges and -0.0 included."""
    from ferristor.circuit.charge_transfer import QuantileCircuitTransfer
    shift, step = 6, 2.0 ** -3
    hidden = torch.randint(-511, 512, (3, 17, 29), generator=torch.Generator().manual_seed(4)).to(torch.float32)
    hidden[0, 0, :5] = torch.tensor([0.0, -1.0, -64.0, 63.0, -0.0])
    transfer = QuantileCircuitTransfer(draws=4096)
    noise = CounterNoise(stream_keys([10, 11, 12], "fc1.weight", STREAM_TRANSFER), 5)
    sign, magnitude = split_sign(hidden, shift)
    with use_backend("torch"):
        expected = transfer.program(sign, magnitude, noise).mul_(step)
    out = torch.full_like(expected, float("nan"))
    transfer.program_hidden_cpu_(hidden.numpy(), shift, step, noise, out.numpy())
    assert torch.equal(out.view(torch.int32), expected.view(torch.int32))
    again = torch.full_like(expected, float("nan"))
    transfer.program_hidden_cpu_(hidden.numpy(), shift, step, CounterNoise(noise.keys, 6), again.numpy())
    assert not torch.equal(again, out)  # the counter reaches the draws
