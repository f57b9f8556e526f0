"""The fused CPU table transfer equals the tensor path of TableTransfer bit for bit."""
import pytest
import torch

pytest.importorskip("numba")

from ferristor.circuit.transfer import TableTransfer, TransferConfig, split_sign  # noqa: E402


@pytest.mark.parametrize("model,means,guard", [("ideal", "ideal", "clip"), ("ideal", "measured", "clip"),
                                               ("table", "ideal", "clip"), ("table", "measured", "clip"),
                                               ("table", "ideal", "fold")])
def test_fused_transfer_matches_tensor_path(model, means, guard):
    shift, step = 6, 2.0 ** -3
    hidden = torch.randint(-511, 512, (3, 17, 29), generator=torch.Generator().manual_seed(4)).to(torch.int16)
    hidden[0, 0, :4] = torch.tensor([0, -1, -64, 63], dtype=torch.int16)  # sign kept at level 0
    transfer = TableTransfer(TransferConfig(model=model, level_means=means, sign_guard=guard))
    gens = lambda: [torch.Generator().manual_seed(10 + r) for r in range(3)]  # noqa: E731
    sign, magnitude = split_sign(hidden, shift)
    expected = transfer.program(sign, magnitude, gens()).mul_(step)
    out = torch.full_like(expected, float("nan"))
    transfer.program_hidden_cpu_(hidden, shift, step, gens(), out)
    assert torch.equal(out.view(torch.int32), expected.view(torch.int32))  # -0.0 included
