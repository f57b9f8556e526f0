"""The fused Triton pass (``nn.passes_triton``) computes what autograd computes through the same
network: activations, each layer's δ = ∂L/∂(crossbar output), the loss — to float32 rounding, for
LayerNorm or none, with and without the output's norm, softmax and sigmoid outputs, strided
crossbars. Triton's interpreter on a CPU, compiled on a GPU."""
import pytest
import torch

pytest.importorskip("triton", reason="Triton is in the dev extra (make install)")

from ferristor.nn import functional as F  # noqa: E402
from ferristor.nn.passes_triton import FusedPass  # noqa: E402

DEV = "cuda" if torch.cuda.is_available() else "cpu"


def _reference(ws, x, y, norm, norm_last, sigmoid):
    ws = [w.detach().clone().requires_grad_(False) for w in ws]
    h, zs, acts = x, [], []
    for li, w in enumerate(ws):
        acts.append(h)
        z = torch.bmm(h[:, None, :], w)[:, 0].requires_grad_(True) if li == 0 else torch.bmm(h[:, None, :], w)[:, 0]
        z.retain_grad()
        zs.append(z)
        n = F.normalize(z, -1)[0] if norm and (norm_last or li < len(ws) - 1) else z
        h = torch.relu(n) if li < len(ws) - 1 else n
    if sigmoid:
        losses = torch.nn.functional.binary_cross_entropy_with_logits(h[:, 0], y.float(), reduction="none")
    else:
        losses = torch.nn.functional.cross_entropy(h, y, reduction="none")
    losses.sum().backward()
    return [a.detach() for a in acts], [z.grad for z in zs], losses.detach()


@pytest.mark.parametrize("sizes,norm,norm_last,sigmoid", [((37, 20, 12, 5), True, True, False),
                                                         ((45, 300, 12, 5), True, True, False),  # 512-wide rows
                                                         ((37, 20, 5), True, False, False),
                                                         ((37, 20, 12, 1), False, True, True),
                                                         ((784, 200, 100, 10), True, True, False)])  # MNIST: 13 tiles
def test_fused_pass_equals_autograd(sizes, norm, norm_last, sigmoid):
    g = torch.Generator().manual_seed(0)
    R, N = 3, 11
    ws = [(torch.randn(R, o, i, generator=g) * i ** -0.5).transpose(1, 2) for i, o in zip(sizes[:-1], sizes[1:])]
    x_data = torch.rand(N, sizes[0], generator=g)
    y_data = torch.randint(0, 2 if sigmoid else sizes[-1], (N,), generator=g)
    ids = torch.tensor([4, 0, 9])
    p = FusedPass([w.to(DEV) for w in ws], norm=norm, norm_last=norm_last, sigmoid=sigmoid, eps=F.EPS)
    p.run(x_data.to(DEV), y_data.to(DEV), ids.to(DEV))
    acts, deltas, losses = _reference(ws, x_data[ids], y_data[ids], norm, norm_last, sigmoid)
    for li in range(len(ws)):
        assert torch.allclose(p.acts[li].cpu(), acts[li], rtol=1e-5, atol=1e-6), li
        assert torch.allclose(p.deltas[li].cpu(), deltas[li], rtol=1e-4, atol=1e-6), li
    assert torch.allclose(p.losses.cpu(), losses, rtol=1e-5)
