"""The fused batch-1 passes compute what the torch reference computes, to float32 rounding."""
import numpy as np
import pytest
import torch

from ferristor.nn import functional as F
from ferristor.nn.fused_cpu import FusedPasses


@pytest.mark.parametrize("norm,output,sizes", [("layer", "softmax", (30, 20, 12, 5)), ("none", "sigmoid", (20, 40, 1))])
def test_fused_passes_match_reference(norm, output, sizes):
    torch.manual_seed(1)
    R = 3
    ws = [torch.randn(R, o, i) * 0.3 for i, o in zip(sizes[:-1], sizes[1:])]
    x = torch.rand(R, sizes[0]) * 2 - 1
    y = torch.randint(0, sizes[-1], (R,)) if output == "softmax" else torch.randint(0, 2, (R,)).float()
    out, cache = F.forward(ws, x, norm, output)
    ref = F.backward(ws, cache, F.loss_grad(out, y, output), norm)
    deltas, inputs = FusedPasses(sizes, R, norm, output).run([w.numpy() for w in ws], x.numpy(), y.numpy())
    for (d_ref, x_ref), d, xi in zip(ref, deltas, inputs):
        np.testing.assert_allclose(d, d_ref[:, 0].numpy(), rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(xi, x_ref[:, 0].numpy(), rtol=1e-5, atol=1e-6)
