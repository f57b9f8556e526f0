"""The hand-written backward pass equals autograd's gradients."""
import pytest
import torch

from ferristor.nn import functional as F


@pytest.mark.parametrize("norm,output,sizes,batch", [
    ("layer", "softmax", (12, 9, 7, 4), 1),
    ("none", "sigmoid", (6, 11, 1), 1),
    ("batch", "softmax", (12, 9, 4), 5),
    ("layer", "softmax", (12, 9, 4), 3),
])
def test_backward_matches_autograd(norm, output, sizes, batch):
    torch.manual_seed(0)
    R = 2
    ws = [torch.randn(R, o, i, dtype=torch.float64) for i, o in zip(sizes[:-1], sizes[1:])]
    x = torch.randn(R, batch, sizes[0], dtype=torch.float64)
    y = torch.randint(0, sizes[-1], (R, batch)) if output == "softmax" else torch.randint(0, 2, (R, batch)).double()
    out, cache = F.forward(ws, x, norm, output)
    factors = F.backward(ws, cache, F.loss_grad(out, y, output), norm)

    wg = [w.clone().requires_grad_(True) for w in ws]
    out2, _ = F.forward(wg, x, norm, output)
    F.loss_value(out2, y, output).mean(-1).sum().backward()
    for (delta, inp), w in zip(factors, wg):
        grad = torch.bmm(delta.transpose(1, 2), inp)
        torch.testing.assert_close(grad, w.grad, rtol=1e-9, atol=1e-11)
